#!/usr/bin/env python3
"""Does a server keep a client connection open after a complete response?

Used by bench/run.sh to explain wrk "read" socket errors: wrk counts an EOF
that arrives between two responses on a keep-alive connection as a read
error. A server that closes every connection after one response without
sending "Connection: close" (tinyproxy 1.11 does) therefore shows one read
error per request even though every response arrived complete.

usage: keepalive_probe.py PORT REQUEST_TARGET HOST
prints "keepalive" or "closes" (or "error: ...") and exits 0.
Loopback only; one connection, bounded by a 3 s timeout.
"""
import socket
import sys


def main():
    port, target, host = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: hopcache-bench/probe\r\n\r\n"
           % (target, host)).encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(req)
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = s.recv(65536)
                if not d:
                    print("error: closed before the response header")
                    return
                buf += d
            head, _, body = buf.partition(b"\r\n\r\n")
            length = None
            close_announced = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value.strip())
                elif name == b"connection" and b"close" in value.lower():
                    close_announced = True
            if length is None:
                print("error: no Content-Length in the response")
                return
            while len(body) < length:
                d = s.recv(65536)
                if not d:
                    print("error: closed before the end of the body")
                    return
                body += d
            if close_announced:
                print("closes")
                return
            s.settimeout(0.5)
            try:
                d = s.recv(1)
                print("closes" if d == b"" else "error: unexpected extra bytes")
            except socket.timeout:
                print("keepalive")
    except OSError as e:
        print("error: %s" % e)


if __name__ == "__main__":
    main()
