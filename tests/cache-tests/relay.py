#!/usr/bin/env python3
"""Origin-form -> absolute-form relay for driving a forward proxy.

The http-cache-tests client talks to its base URL as if that were the origin
(or a reverse proxy): it sends origin-form request lines such as

    GET /test/UUID HTTP/1.1

A forward proxy wants absolute-form. This relay listens on a loopback port,
and for every client connection opens one connection to the forward proxy
under test. For every request on the client connection it rewrites the
request line to

    GET http://ORIGIN_HOST:ORIGIN_PORT/test/UUID HTTP/1.1

and relays every other byte unchanged: the header fields (including Host,
unless --rewrite-host is given), the body, and in the other direction the
proxy's responses, byte for byte. Request heads and bodies are parsed
(Content-Length and chunked, with trailers) so that every request of a
keep-alive or pipelined connection gets its request line rewritten.
Responses are not parsed at all. A request with a body of up to 64 KiB
(Content-Length, no Expect) goes to the proxy in one write together with its
head, as a client talking to the proxy directly would send it; larger and
chunked bodies are streamed as they arrive.

Request lines that are not origin-form (absolute-form, authority-form for
CONNECT, asterisk-form) are passed on untouched; after a CONNECT the
connection becomes an opaque tunnel.

Standard library only. Usage:

    relay.py --proxy HOST:PORT --origin HOST:PORT [--listen 127.0.0.1:0]
             [--rewrite-host] [--log FILE] [--trace DIR] [--idle-timeout S]

The first line on stdout is "relay listening on 127.0.0.1:PORT".
"""

import argparse
import asyncio
import os
import re
import signal
import sys
import time

MAX_HEAD = 1 << 20          # largest request head accepted (bytes)
COPY_CHUNK = 64 * 1024
SMALL_BODY = 64 * 1024      # bodies up to this size go out with their head

_tchar_line = re.compile(rb'^([!#$%&\'*+\-.^_`|~0-9A-Za-z]+) (\S+) (HTTP/\d\.\d)\r?\n$')


class RelayError(Exception):
    pass


def split_hostport(s, what):
    if s.startswith('['):
        host, _, rest = s[1:].partition(']')
        port = rest.lstrip(':')
    else:
        host, _, port = s.rpartition(':')
    if not host or not port.isdigit():
        raise SystemExit(f'relay.py: {what} must be HOST:PORT, got {s!r}')
    return host, int(port)


class TraceWriter:
    """A StreamWriter stand-in that also appends what is written to a file."""

    def __init__(self, inner, path):
        self.inner = inner
        self.f = open(path, 'ab')

    def write(self, data):
        self.f.write(data)
        self.inner.write(data)

    async def drain(self):
        await self.inner.drain()

    def can_write_eof(self):
        return self.inner.can_write_eof()

    def write_eof(self):
        self.f.write(b'\n[relay: client EOF, half-close sent]\n')
        self.inner.write_eof()

    def close(self):
        if not self.f.closed:
            self.f.close()
        self.inner.close()


class Relay:
    def __init__(self, args):
        self.proxy_host, self.proxy_port = split_hostport(args.proxy, '--proxy')
        self.origin = args.origin.encode('ascii')
        self.rewrite_host = args.rewrite_host
        self.idle = args.idle_timeout
        self.log = open(args.log, 'a', buffering=1) if args.log else None
        self.trace = args.trace
        if self.trace:
            os.makedirs(self.trace, exist_ok=True)
        self.conn_seq = 0
        self.requests = 0

    def note(self, msg):
        if self.log:
            self.log.write(f'{time.strftime("%H:%M:%S")} {msg}\n')

    async def read(self, reader, n):
        return await asyncio.wait_for(reader.read(n), self.idle)

    async def readline(self, reader):
        try:
            return await asyncio.wait_for(reader.readuntil(b'\n'), self.idle)
        except asyncio.IncompleteReadError as e:
            if e.partial:
                raise RelayError('connection closed inside a line')
            return b''
        except asyncio.LimitOverrunError:
            raise RelayError('line too long')

    async def copy_exact(self, reader, writer, n):
        while n > 0:
            data = await self.read(reader, min(n, COPY_CHUNK))
            if not data:
                raise RelayError('client closed inside a request body')
            writer.write(data)
            n -= len(data)
            await writer.drain()

    async def copy_until_eof(self, reader, writer):
        while True:
            data = await self.read(reader, COPY_CHUNK)
            if not data:
                return
            writer.write(data)
            await writer.drain()

    async def read_head(self, reader):
        """Return the raw lines of one request head (request line to the
        empty line), or None on a clean EOF between requests. Empty lines
        before the request line (RFC 9112 section 2.2) are returned as a
        prefix list so they are relayed too."""
        prefix = []
        while True:
            line = await self.readline(reader)
            if not line:
                return None, None
            if line in (b'\r\n', b'\n'):
                prefix.append(line)
                continue
            break
        lines = [line]
        size = len(line)
        while True:
            line = await self.readline(reader)
            if not line:
                raise RelayError('client closed inside a request head')
            lines.append(line)
            size += len(line)
            if size > MAX_HEAD:
                raise RelayError('request head too large')
            if line in (b'\r\n', b'\n'):
                return prefix, lines

    def rewrite(self, lines, cid):
        """Rewrite the request line in place; return (method, framing, expect)."""
        m = _tchar_line.match(lines[0])
        if not m:
            raise RelayError(f'unparsable request line {lines[0][:200]!r}')
        method, target, version = m.group(1), m.group(2), m.group(3)
        eol = b'\r\n' if lines[0].endswith(b'\r\n') else b'\n'
        if target.startswith(b'/'):
            new_target = b'http://' + self.origin + target
            lines[0] = method + b' ' + new_target + b' ' + version + eol
        self.requests += 1
        self.note(f'c{cid} {lines[0].rstrip().decode("latin-1")}')

        content_length = None
        expect = False
        chunked = False
        te_other = False
        for i in range(1, len(lines) - 1):
            name, sep, value = lines[i].partition(b':')
            if not sep:
                continue
            lname = name.strip().lower()
            if lname == b'content-length':
                try:
                    cl = int(value.strip().split(b',')[0].strip())
                except ValueError:
                    raise RelayError('bad Content-Length')
                content_length = cl
            elif lname == b'transfer-encoding':
                codings = [c.strip().lower() for c in value.split(b',') if c.strip()]
                if codings and codings[-1] == b'chunked':
                    chunked = True
                elif codings:
                    te_other = True
            elif lname == b'expect':
                expect = True
            elif lname == b'host' and self.rewrite_host and target.startswith(b'/'):
                lines[i] = name + b': ' + self.origin + eol
        if chunked:
            framing = ('chunked', None)
        elif te_other:
            framing = ('eof', None)
        elif content_length:
            framing = ('length', content_length)
        else:
            framing = ('none', None)
        return method, framing, expect

    async def copy_chunked(self, reader, writer):
        while True:
            line = await self.readline(reader)
            if not line:
                raise RelayError('client closed inside a chunked body')
            writer.write(line)
            size_txt = line.split(b';', 1)[0].strip()
            try:
                size = int(size_txt, 16)
            except ValueError:
                raise RelayError(f'bad chunk size {size_txt[:40]!r}')
            if size == 0:
                while True:      # trailer section up to the empty line
                    t = await self.readline(reader)
                    if not t:
                        raise RelayError('client closed inside a trailer')
                    writer.write(t)
                    if t in (b'\r\n', b'\n'):
                        await writer.drain()
                        return
            await self.copy_exact(reader, writer, size)
            crlf = await self.readline(reader)
            writer.write(crlf)
            await writer.drain()

    async def client_to_proxy(self, creader, pwriter, cid):
        while True:
            prefix, lines = await self.read_head(creader)
            if lines is None:
                return
            method, (kind, n), expect = self.rewrite(lines, cid)
            head = b''.join(prefix) + b''.join(lines)
            if kind == 'length' and n <= SMALL_BODY and not expect:
                # Send a small body in the same write as its head, as a
                # client writing straight to the proxy would. Split writes
                # make it likelier that the origin answers before the proxy
                # has forwarded the body, which makes Squid close the client
                # connection after the response (see README).
                try:
                    body = await asyncio.wait_for(creader.readexactly(n), self.idle)
                except asyncio.IncompleteReadError:
                    raise RelayError('client closed inside a request body')
                pwriter.write(head + body)
                await pwriter.drain()
                continue
            pwriter.write(head)
            await pwriter.drain()
            if method == b'CONNECT':
                await self.copy_until_eof(creader, pwriter)
                return
            if kind == 'length':
                await self.copy_exact(creader, pwriter, n)
            elif kind == 'chunked':
                await self.copy_chunked(creader, pwriter)
            elif kind == 'eof':
                await self.copy_until_eof(creader, pwriter)
                return

    async def handle(self, creader, cwriter):
        self.conn_seq += 1
        cid = self.conn_seq
        try:
            preader, pwriter = await asyncio.wait_for(
                asyncio.open_connection(self.proxy_host, self.proxy_port, limit=MAX_HEAD),
                10)
        except (OSError, asyncio.TimeoutError) as e:
            self.note(f'c{cid} cannot connect to proxy: {e}')
            cwriter.write(b'HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n'
                          b'Connection: close\r\n\r\n')
            try:
                await cwriter.drain()
            except OSError:
                pass
            cwriter.close()
            return

        down_trace = None
        if self.trace:
            pwriter = TraceWriter(pwriter, os.path.join(self.trace, f'c{cid}.up'))
            down_trace = open(os.path.join(self.trace, f'c{cid}.down'), 'ab')

        async def up():
            try:
                await self.client_to_proxy(creader, pwriter, cid)
                # the client is done sending: pass the half-close on
                if pwriter.can_write_eof():
                    pwriter.write_eof()
            except asyncio.TimeoutError:
                pass   # reported by down()
            except RelayError as e:
                self.note(f'c{cid} request side: {e}')
                pwriter.close()
            except (OSError, ConnectionError):
                pwriter.close()

        async def down():
            n = 0
            how = 'proxy closed'
            try:
                while True:
                    data = await self.read(preader, COPY_CHUNK)
                    if not data:
                        break
                    n += len(data)
                    if down_trace:
                        down_trace.write(data)
                    cwriter.write(data)
                    await cwriter.drain()
            except asyncio.TimeoutError:
                how = f'idle for {self.idle:g} s'
            except (OSError, ConnectionError) as e:
                how = repr(e)
            self.note(f'c{cid} end ({how}) after {n} response bytes')
            if down_trace:
                down_trace.close()
            # the proxy closed (or failed): the client connection ends too
            cwriter.close()
            pwriter.close()

        t_up = asyncio.ensure_future(up())
        t_down = asyncio.ensure_future(down())
        await t_down
        t_up.cancel()
        try:
            await t_up
        except (asyncio.CancelledError, Exception):
            pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--proxy', required=True, help='forward proxy under test, HOST:PORT')
    ap.add_argument('--origin', required=True,
                    help='authority put in absolute-form targets, HOST:PORT')
    ap.add_argument('--listen', default='127.0.0.1:0', help='default 127.0.0.1:0 (any port)')
    ap.add_argument('--rewrite-host', action='store_true',
                    help='also replace the Host field value with the origin authority')
    ap.add_argument('--log', help='append one line per relayed request line to this file')
    ap.add_argument('--trace', metavar='DIR',
                    help='write the bytes of each connection to DIR/cN.up (as sent '
                         'to the proxy) and DIR/cN.down (as received from it)')
    ap.add_argument('--idle-timeout', type=float, default=120.0,
                    help='seconds a connection may sit idle (default 120)')
    args = ap.parse_args()
    lhost, lport = split_hostport(args.listen, '--listen')
    relay = Relay(args)
    server = await asyncio.start_server(relay.handle, lhost, lport, limit=MAX_HEAD)
    port = server.sockets[0].getsockname()[1]
    print(f'relay listening on {lhost}:{port}', flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    relay.note(f'relay stopping after {relay.conn_seq} connections, {relay.requests} requests')


if __name__ == '__main__':
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
