#!/usr/bin/python3
"""The soak test's origins (asyncio, one process): an HTTP/1.1 origin with
the load's paths and the fault paths, a plain TCP echo server and, with a
certificate, a TLS echo server, all on 127.0.0.1 with kernel-picked ports.

usage: origin.py SEED STALL_SECONDS [CERT KEY]
Prints one JSON line {"http": PORT, "echo": PORT, "tls_echo": PORT|null}
when listening; stops on SIGTERM. Counters go to stderr at exit.

Paths (GET; bodies from soaklib.body_for):
  /hot/N      2 KiB, Cache-Control: max-age=3600
  /cold/N     1-32 KiB, max-age=30, ETag (If-None-Match -> 304)
  /vary/N     Vary: Accept-Language, a body per language, max-age=600
  /nostore/N  no-store
  POST any    the body must be self-checking (soaklib.post_body): 200, else 400
Faults (each on a connection of its own, closed after):
  /fault/reset          head (Content-Length 65536, cacheable) + 1000 bytes, then RST
  /fault/stall          nothing for STALL seconds, then close (no response)
  /fault/stallbody      head + 1000 bytes, nothing for STALL seconds, then close
  /fault/badchunk       chunked head + one chunk + an invalid chunk size, one write
  /fault/badchunk_late  chunked head + one chunk; 0.3 s later an invalid chunk size
  /fault/closehead      the request is read, then the connection is closed
"""

import asyncio
import json
import signal
import socket
import ssl
import struct
import sys
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import soaklib  # noqa: E402

SEED = sys.argv[1]
STALL = float(sys.argv[2])
counts = {}


def count(k):
    counts[k] = counts.get(k, 0) + 1


def rst(writer):
    sock = writer.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


def head(status, reason, fields):
    out = "HTTP/1.1 %d %s\r\n" % (status, reason)
    for k, v in fields:
        out += "%s: %s\r\n" % (k, v)
    return (out + "\r\n").encode()


async def read_body(reader, hdrs):
    te = hdrs.get("transfer-encoding", "").lower()
    if "chunked" in te:
        body = b""
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return body
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    n = int(hdrs.get("content-length", "0") or 0)
    return await reader.readexactly(n) if n else b""


async def fault(kind, path, writer):
    count("fault_" + kind)
    body = soaklib.body_for(SEED, path)
    if kind == "reset":
        writer.write(head(200, "OK", [("Content-Length", len(body)), ("Cache-Control", "max-age=3600"),
                                      ("X-Soak-Sum", soaklib.adler(body))]) + body[:1000])
        await writer.drain()
        await asyncio.sleep(0.05)
        rst(writer)
    elif kind == "stall":
        await asyncio.sleep(STALL)
        writer.close()
    elif kind == "stallbody":
        writer.write(head(200, "OK", [("Content-Length", len(body)), ("Cache-Control", "max-age=3600"),
                                      ("X-Soak-Sum", soaklib.adler(body))]) + body[:1000])
        await writer.drain()
        await asyncio.sleep(STALL)
        writer.close()
    elif kind in ("badchunk", "badchunk_late"):
        first = head(200, "OK", [("Transfer-Encoding", "chunked"), ("Cache-Control", "max-age=3600")])
        first += b"400\r\n" + body[:1024] + b"\r\n"
        bad = b"zz\r\n" + body[1024:1100]
        if kind == "badchunk":
            writer.write(first + bad)
        else:
            writer.write(first)
            await writer.drain()
            await asyncio.sleep(0.3)
            writer.write(bad)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()
    elif kind == "closehead":
        writer.close()
    else:
        writer.write(head(404, "Not Found", [("Content-Length", 0)]))
        await writer.drain()
        writer.close()


async def http_conn(reader, writer):
    try:
        while True:
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = raw.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            hdrs = {}
            for ln in lines[1:]:
                if ln:
                    k, _, v = ln.partition(":")
                    hdrs[k.strip().lower()] = v.strip()
            body = await read_body(reader, hdrs)
            path = target.split("?", 1)[0]
            if path.startswith("http://"):
                path = "/" + path.split("/", 3)[3]
            kind = path.strip("/").split("/", 1)[0]
            if kind == "fault":
                await fault(path.rsplit("/", 1)[-1], path, writer)
                return
            if method == "POST":
                count("post")
                if soaklib.post_body_ok(body):
                    rb = soaklib.post_reply(body)
                    writer.write(head(200, "OK", [("Content-Length", len(rb)), ("Cache-Control", "no-store"),
                                                  ("X-Soak-Sum", soaklib.adler(rb)), ("X-Soak-Kind", "post")]) + rb)
                else:
                    count("post_bad")
                    writer.write(head(400, "Bad Body", [("Content-Length", 0)]))
                await writer.drain()
                continue
            if kind not in ("hot", "cold", "vary", "nostore") or method not in ("GET", "HEAD"):
                count("404")
                writer.write(head(404, "Not Found", [("Content-Length", 0)]))
                await writer.drain()
                continue
            count(kind)
            lang = ""
            if kind == "vary":
                lang = hdrs.get("accept-language", "")
            b = soaklib.body_for(SEED, path, lang)
            s = soaklib.adler(b)
            fields = [("Content-Length", len(b)), ("X-Soak-Sum", s), ("X-Soak-Kind", kind)]
            if kind == "hot":
                fields.append(("Cache-Control", "max-age=3600"))
            elif kind == "cold":
                fields += [("Cache-Control", "max-age=30"), ("ETag", '"%d"' % s)]
                if hdrs.get("if-none-match") == '"%d"' % s:
                    count("304")
                    writer.write(head(304, "Not Modified", [("Cache-Control", "max-age=30"), ("ETag", '"%d"' % s),
                                                            ("X-Soak-Sum", s), ("X-Soak-Kind", kind)]))
                    await writer.drain()
                    continue
            elif kind == "vary":
                fields += [("Cache-Control", "max-age=600"), ("Vary", "Accept-Language"), ("X-Soak-Lang", lang)]
            else:
                fields.append(("Cache-Control", "no-store"))
            writer.write(head(200, "OK", fields) + (b"" if method == "HEAD" else b))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def echo_conn(reader, writer):
    count("echo")
    try:
        while True:
            d = await reader.read(65536)
            if not d:
                break
            writer.write(d)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    srv = await asyncio.start_server(http_conn, "127.0.0.1", 0, backlog=1024, limit=1 << 20)
    echo = await asyncio.start_server(echo_conn, "127.0.0.1", 0, backlog=256)
    tls_port = None
    if len(sys.argv) > 4:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        tls = await asyncio.start_server(echo_conn, "127.0.0.1", 0, ssl=ctx, backlog=256)
        tls_port = tls.sockets[0].getsockname()[1]
    print(json.dumps({"http": srv.sockets[0].getsockname()[1], "echo": echo.sockets[0].getsockname()[1],
                      "tls_echo": tls_port}), flush=True)
    await stop.wait()
    sys.stderr.write("origin counts: %s\n" % json.dumps(counts, sort_keys=True))


if __name__ == "__main__":
    asyncio.run(main())
