#!/usr/bin/env python3
"""Hold N idle keep-alive client connections open to a server (bench scenario m).

Used by bench/run.sh to measure the memory a server holds per idle
keep-alive client connection. Opens CONNS TCP connections to
127.0.0.1:PORT, sends ONE complete request on each ("GET TARGET HTTP/1.1",
Host: HOST, keep-alive), reads each full response (Content-Length or
chunked), and keeps every socket open and idle. At most INFLIGHT
connections are connecting or waiting for their response at any time (so
a proxy needs only a few upstream connections and the listen backlog never
overflows); a connection whose response is complete stays open and the
next one is started.

When every connection is done (or the open phase's deadline passes), it
waits SETTLE seconds, counts the connections the server still holds open
(a non-consuming peek: EOF or reset means the server closed it) and prints

  READY requested=N ok=N failed=N open=N closed=N conn_close=N seconds=S [errors=...]

then waits until the file RELEASE exists (the caller measures the server's
memory in between; bounded by --hold seconds), counts again, prints

  DONE open=N

closes every connection and exits 0. Any failure to set up exits 2 with
"error: ..." on stdout.

Loopback only; non-blocking (selectors); every phase bounded in time.
RLIMIT_NOFILE is raised towards the hard limit if CONNS needs it.

usage: idle_conns.py --port P --target T --host H --conns N
                     [--inflight K] [--settle S] [--open-timeout S]
                     [--hold S] --release FILE
"""
import argparse
import errno
import os
import resource
import selectors
import socket
import sys
import time


class Conn:
    __slots__ = ("sock", "out", "buf", "state", "need", "close_hdr")

    def __init__(self, sock, req):
        self.sock = sock
        self.out = req
        self.buf = b""
        self.state = "connect"   # connect -> send -> head -> body|chunked -> idle
        self.need = 0
        self.close_hdr = False


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return soft
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        return soft
    return want


def chunked_done(body):
    """True when a chunked body (after the header) is complete."""
    pos = 0
    while True:
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            return False
        try:
            size = int(body[pos:eol].split(b";")[0].strip(), 16)
        except ValueError:
            raise ValueError("bad chunk size")
        pos = eol + 2
        if size == 0:
            # trailers end with an empty line
            return body.find(b"\r\n\r\n", pos - 2) >= 0
        pos += size + 2
        if pos > len(body):
            return False


def still_open(sock):
    try:
        d = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return d != b""   # unexpected bytes: still open


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--host", required=True)
    ap.add_argument("--conns", type=int, required=True)
    ap.add_argument("--inflight", type=int, default=100)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--open-timeout", type=float, default=60.0)
    ap.add_argument("--hold", type=float, default=60.0)
    ap.add_argument("--release", required=True)
    a = ap.parse_args()

    limit = raise_nofile(a.conns + 64)
    if limit != resource.RLIM_INFINITY and limit < a.conns + 16:
        print("error: RLIMIT_NOFILE %d is too low for %d connections (hard limit %s)"
              % (limit, a.conns, resource.getrlimit(resource.RLIMIT_NOFILE)[1]), flush=True)
        return 2

    req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: hopcache-bench/idle\r\n"
           "Connection: keep-alive\r\n\r\n" % (a.target, a.host)).encode()
    sel = selectors.DefaultSelector()
    idle = []          # sockets whose response is complete
    started = failed = conn_close = 0
    errors = {}
    active = 0
    t0 = time.monotonic()
    deadline = t0 + a.open_timeout

    def fail(c, why):
        nonlocal failed, active
        errors[why] = errors.get(why, 0) + 1
        failed += 1
        active -= 1
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()

    def finish(c):
        nonlocal active, conn_close
        active -= 1
        sel.unregister(c.sock)
        if c.close_hdr:
            conn_close += 1
        idle.append(c.sock)

    def start_one():
        nonlocal started, active
        started += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        c = Conn(s, req)
        active += 1
        rc = s.connect_ex(("127.0.0.1", a.port))
        if rc not in (0, errno.EINPROGRESS):
            fail(c, "connect: " + os.strerror(rc))
            return
        sel.register(s, selectors.EVENT_WRITE, c)

    def parse_head(c):
        head, sep, rest = c.buf.partition(b"\r\n\r\n")
        if not sep:
            if len(c.buf) > 65536:
                raise ValueError("header too large")
            return False
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ValueError("bad status line")
        if parts[1] != b"200":
            raise ValueError("status " + parts[1].decode("ascii", "replace"))
        length = None
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                chunked = True
            elif name == b"connection" and b"close" in value:
                c.close_hdr = True
        c.buf = rest
        if chunked:
            c.state = "chunked"
        elif length is not None:
            c.state = "body"
            c.need = length
        else:
            raise ValueError("no Content-Length or chunked")
        return True

    def on_event(c, mask):
        if c.state == "connect":
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                fail(c, "connect: " + os.strerror(err))
                return
            c.state = "send"
        if c.state == "send":
            try:
                n = c.sock.send(c.out)
            except BlockingIOError:
                return
            except OSError as e:
                fail(c, "send: " + (e.strerror or str(e)))
                return
            c.out = c.out[n:]
            if not c.out:
                c.state = "head"
                sel.modify(c.sock, selectors.EVENT_READ, c)
            return
        try:
            d = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as e:
            fail(c, "recv: " + (e.strerror or str(e)))
            return
        if not d:
            fail(c, "EOF before the end of the response")
            return
        c.buf += d
        try:
            if c.state == "head" and not parse_head(c):
                return
            if c.state == "body" and len(c.buf) >= c.need:
                if len(c.buf) > c.need:
                    raise ValueError("extra bytes after the body")
                finish(c)
            elif c.state == "chunked" and chunked_done(c.buf):
                finish(c)
        except ValueError as e:
            fail(c, str(e))

    while (started < a.conns or active > 0) and time.monotonic() < deadline:
        while started < a.conns and active < a.inflight:
            start_one()
        if active == 0:
            continue
        for key, mask in sel.select(timeout=0.5):
            on_event(key.data, mask)
    timed_out = active
    for key in list(sel.get_map().values()):
        errors["open phase timed out"] = errors.get("open phase timed out", 0) + 1
        failed += 1
        sel.unregister(key.fileobj)
        key.fileobj.close()
    elapsed = time.monotonic() - t0

    time.sleep(a.settle)
    open_now = sum(1 for s in idle if still_open(s))
    line = ("READY requested=%d ok=%d failed=%d open=%d closed=%d conn_close=%d seconds=%.2f"
            % (a.conns, len(idle), failed, open_now, len(idle) - open_now, conn_close, elapsed))
    if errors:
        line += " errors=" + ",".join("%s:%d" % (k.replace(" ", "_"), v)
                                      for k, v in sorted(errors.items()))
    if timed_out:
        line += " unfinished=%d" % timed_out
    print(line, flush=True)

    hold_end = time.monotonic() + a.hold
    while not os.path.exists(a.release) and time.monotonic() < hold_end:
        time.sleep(0.05)
    open_after = sum(1 for s in idle if still_open(s))
    print("DONE open=%d%s" % (open_after, "" if os.path.exists(a.release) else " (hold timed out)"),
          flush=True)
    for s in idle:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
