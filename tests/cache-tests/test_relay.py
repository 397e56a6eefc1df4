#!/usr/bin/env python3
"""Self-test of relay.py: pipelined requests, Content-Length and chunked
bodies, fragmentation, non-origin-form targets, Host rewriting, and a
byte-for-byte response path. Standard library only; loopback only; bounded.

    python3 tests/cache-tests/test_relay.py      (or: pytest tests/cache-tests)
"""

import os
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ORIGIN = '127.0.0.1:8999'   # only written into request lines, never contacted

REQUESTS = [
    (b'GET /a?x=1 HTTP/1.1\r\nHost: relay:1\r\nAccept: */*\r\n\r\n',
     b'GET http://127.0.0.1:8999/a?x=1 HTTP/1.1\r\nHost: relay:1\r\nAccept: */*\r\n\r\n'),
    # a body that looks like a request line must not be rewritten
    (b'POST /b HTTP/1.1\r\nHost: relay:1\r\ncontent-length: 22\r\n\r\nGET /fake HTTP/1.1\r\n\r\n',
     None),
    # chunked body with an extension and a trailer
    (b'PUT /c HTTP/1.1\r\nHost: relay:1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'
     b'5;ext=1\r\nGET /\r\nA\r\n0123456789\r\n0\r\nX-Trailer: GET /t HTTP/1.1\r\n\r\n',
     b'PUT http://127.0.0.1:8999/c HTTP/1.1\r\nHost: relay:1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'
     b'5;ext=1\r\nGET /\r\nA\r\n0123456789\r\n0\r\nX-Trailer: GET /t HTTP/1.1\r\n\r\n'),
    # already absolute-form and asterisk-form: untouched
    (b'GET http://example.test/abs HTTP/1.1\r\nHost: example.test\r\n\r\n', None),
    (b'OPTIONS * HTTP/1.1\r\nHost: relay:1\r\n\r\n', None),
    # empty lines before a request line are relayed
    (b'\r\nHEAD /d HTTP/1.1\r\nHost: relay:1\r\nContent-Length: 0\r\n\r\n',
     b'\r\nHEAD http://127.0.0.1:8999/d HTTP/1.1\r\nHost: relay:1\r\nContent-Length: 0\r\n\r\n'),
]
REQUESTS[1] = (REQUESTS[1][0], REQUESTS[1][0].replace(b'POST /b', b'POST http://127.0.0.1:8999/b'))
REQUESTS[3] = (REQUESTS[3][0], REQUESTS[3][0])
REQUESTS[4] = (REQUESTS[4][0], REQUESTS[4][0])

RESPONSE = (b'HTTP/1.1 200 OK\r\nContent-Length: 300\r\nX-Odd:  spaced \r\n\r\n'
            + bytes(range(256)) + b'\0' * 44)


class FakeProxy(threading.Thread):
    """Accepts one connection, records everything until EOF, then answers."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(1)
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.received = b''

    def run(self):
        conn, _ = self.sock.accept()
        conn.settimeout(10)
        while True:
            data = conn.recv(65536)
            if not data:
                break
            self.received += data
        conn.sendall(RESPONSE)
        conn.close()
        self.sock.close()


class RelayTest(unittest.TestCase):
    def start_relay(self, proxy_port, *extra):
        p = subprocess.Popen(
            [sys.executable, os.path.join(HERE, 'relay.py'), '--proxy', f'127.0.0.1:{proxy_port}',
             '--origin', ORIGIN, '--listen', '127.0.0.1:0', '--idle-timeout', '10', *extra],
            stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (p.terminate(), p.wait(5), p.stdout.close()))
        line = p.stdout.readline()
        self.assertIn('listening on', line)
        return int(line.rsplit(':', 1)[1])

    def exchange(self, payload, *extra, fragment=None):
        proxy = FakeProxy()
        proxy.start()
        port = self.start_relay(proxy.port, *extra)
        c = socket.create_connection(('127.0.0.1', port), timeout=10)
        if fragment:
            for i in range(0, len(payload), fragment):
                c.sendall(payload[i:i + fragment])
                time.sleep(0.001)
        else:
            c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        got = b''
        while True:
            data = c.recv(65536)
            if not data:
                break
            got += data
        c.close()
        proxy.join(10)
        return proxy.received, got

    def test_pipelined_in_one_write(self):
        sent, _ = zip(*REQUESTS)
        upstream, downstream = self.exchange(b''.join(sent))
        self.assertEqual(upstream, b''.join(exp for _, exp in REQUESTS))
        self.assertEqual(downstream, RESPONSE)

    def test_pipelined_byte_by_byte(self):
        sent = b''.join(s for s, _ in REQUESTS)
        upstream, downstream = self.exchange(sent, fragment=1)
        self.assertEqual(upstream, b''.join(exp for _, exp in REQUESTS))
        self.assertEqual(downstream, RESPONSE)

    def test_large_body_streamed(self):
        body = bytes(range(256)) * 1000          # 256000 bytes, above SMALL_BODY
        req = (b'POST /big HTTP/1.1\r\nContent-Length: %d\r\n\r\n' % len(body)) + body
        nxt = b'GET /after HTTP/1.1\r\n\r\n'
        upstream, _ = self.exchange(req + nxt, fragment=70000)
        self.assertEqual(upstream, req.replace(b'POST /big', b'POST http://127.0.0.1:8999/big')
                         + b'GET http://127.0.0.1:8999/after HTTP/1.1\r\n\r\n')

    def test_rewrite_host(self):
        upstream, _ = self.exchange(REQUESTS[0][0], '--rewrite-host')
        self.assertEqual(upstream, b'GET http://127.0.0.1:8999/a?x=1 HTTP/1.1\r\n'
                                   b'Host: 127.0.0.1:8999\r\nAccept: */*\r\n\r\n')

    def test_proxy_unreachable_gives_502(self):
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        dead = s.getsockname()[1]
        s.close()
        port = self.start_relay(dead)
        c = socket.create_connection(('127.0.0.1', port), timeout=10)
        c.sendall(REQUESTS[0][0])
        self.assertTrue(c.recv(100).startswith(b'HTTP/1.1 502 '))
        c.close()


if __name__ == '__main__':
    unittest.main()
