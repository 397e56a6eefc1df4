#!/usr/bin/python3
"""The soak test's Python clients from the well-behaved address: browser-like
keep-alive connections that pipeline GETs (and send self-checking POSTs),
CONNECT tunnels to the echo origins (plain and TLS inside), and requests for
the origin's fault paths. Every request ends as one JSON line in OUT:

  {"t": end time, "t0": start time, "client": ..., "what": path,
   "cls": CLASS, "detail": text, "reused": bool}

CLASS is
  ok         the expected status and exactly the origin's bytes
  proxy5xx   a 5xx carrying Proxy-Status with error=... (detail: status and error)
  fault_ok   a fault path answered as it should (see FAULT_ANSWERS)
  cut        the connection ended (EOF or reset) before the response was
             complete (the driver decides: lost to a worker kill, or a failure)
  fail       anything else (wrong status, wrong bytes, timeout, no Proxy-Status ...)
  retry      not a result: a GET on a reused keep-alive connection saw the
             connection close before any byte of its response, and is sent
             again on a new connection (RFC 9112 9.3.1); the driver checks
             each retry follows a SIGHUP or a kill.

usage: clients.py CONFIG.json   (stops after config["duration"] s or SIGTERM)
"""

import json
import os
import random
import signal
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import soaklib  # noqa: E402
from soaklib import Cut  # noqa: E402

CFG = json.load(open(sys.argv[1]))
PROXY = ("127.0.0.1", CFG["proxy_port"])
SRC = CFG.get("source", "127.0.0.3")
ORIGIN = "127.0.0.1:%d" % CFG["origin_port"]
SEED = CFG["seed"]
TIMEOUT = CFG.get("timeout", 20.0)
STOP = threading.Event()
OUT_LOCK = threading.Lock()
OUT = open(CFG["out"], "a", buffering=1)

# a fault path's right answers: (statuses, Proxy-Status errors, a cut body after the head is right)
FAULT_ANSWERS = {
    "reset": ({502}, {"connection_terminated", "http_response_incomplete"}, True),
    "stall": ({504}, {"http_response_timeout"}, False),
    "stallbody": ({504}, {"http_response_timeout"}, True),
    "badchunk": ({502}, {"http_response_transfer_coding", "http_protocol_error"}, True),
    "badchunk_late": ({502}, {"http_response_transfer_coding", "http_protocol_error"}, True),
    "closehead": ({502}, {"http_response_incomplete", "connection_terminated"}, False),
}


def emit(client, what, cls, detail="", t0=None, reused=False):
    rec = {"t": time.time(), "t0": t0 or time.time(), "client": client, "what": what, "cls": cls,
           "detail": str(detail)[:300], "reused": reused}
    with OUT_LOCK:
        OUT.write(json.dumps(rec) + "\n")


def req_bytes(method, path, lang=None, body=None, extra=()):
    h = "%s http://%s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: soak-client\r\n" % (method, ORIGIN, path, ORIGIN)
    if lang:
        h += "Accept-Language: %s\r\n" % lang
    for k, v in extra:
        h += "%s: %s\r\n" % (k, v)
    if body is not None:
        h += "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n" % len(body)
    return (h + "\r\n").encode() + (body or b"")


def judge(resp, expect_body):
    """(cls, detail) of a complete response to a request whose right answer is 200 + expect_body."""
    if resp.status == 200:
        if resp.body == expect_body:
            return "ok", ""
        return "fail", "200 but body differs (%d bytes, want %d; sum %s want %d)" % (
            len(resp.body), len(expect_body), resp.get("x-soak-sum"), soaklib.adler(expect_body))
    if 500 <= resp.status <= 599:
        err = soaklib.proxy_status_error(resp.get("proxy-status"))
        if err:
            return "proxy5xx", "%d %s" % (resp.status, err)
        return "fail", "%d without Proxy-Status error" % resp.status
    return "fail", "status %d %s (Proxy-Status %s)" % (resp.status, resp.reason, resp.get("proxy-status"))


class Browser(threading.Thread):
    """One keep-alive connection at a time; pipelines 2-6 GETs, now and then a POST."""

    def __init__(self, idx):
        super().__init__(daemon=True)
        self.rng = random.Random("%s-%s-browser-%d" % (SEED, CFG.get("rng", ""), idx))
        self.name = "browser%d" % idx
        self.sock = None
        self.reader = None
        self.used = 0  # requests answered on this connection

    def close(self):
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    def ensure(self):
        if self.sock is None:
            self.sock = soaklib.connect(PROXY, SRC, TIMEOUT)
            self.reader = soaklib.Reader(self.sock)
            self.used = 0
            self.life = self.rng.randint(10, 80)

    def pick(self):
        r = self.rng.random()
        if r < 0.4:
            return "/hot/%d" % self.rng.randrange(soaklib.HOT_N), None
        if r < 0.7:
            return "/cold/%d" % self.rng.randrange(soaklib.COLD_N), None
        if r < 0.9:
            return "/vary/%d" % self.rng.randrange(soaklib.VARY_N), self.rng.choice(soaklib.LANGS)
        return "/nostore/%d" % self.rng.randrange(soaklib.NOSTORE_N), None

    def batch(self, reqs, retried=False):
        """Send reqs [(path, lang)] pipelined; returns the ones to send again."""
        try:
            self.ensure()
        except OSError as e:
            # a kill never closes the listening socket (the master holds
            # it): a connection that cannot be made is a failure
            for p, _ in reqs:
                emit(self.name, p, "fail", "connect: %s" % e)
            return []
        reused = self.used > 0
        t0 = time.time()
        try:
            self.sock.sendall(b"".join(req_bytes("GET", p, l) for p, l in reqs))
        except OSError:
            pass  # the reads below see what happened
        for i, (p, l) in enumerate(reqs):
            try:
                resp = self.reader.read_response()
            except Cut as e:
                self.close()
                if i == 0 and not e.got_head and reused and not retried:
                    emit(self.name, p, "retry", "%s before any response byte on a reused connection" % e,
                         t0, reused)
                    return reqs  # all idempotent: send again on a new connection
                emit(self.name, p, "cut", "%s (head %s, %d body bytes)" % (e, e.got_head, e.nbody), t0, reused)
                return reqs[i + 1:]
            except socket.timeout:
                self.close()
                emit(self.name, p, "fail", "timeout after %.1fs" % (time.time() - t0), t0, reused)
                return reqs[i + 1:]
            self.used += 1
            cls, det = judge(resp, soaklib.body_for(SEED, p, l or ""))
            if cls == "ok" and p.startswith("/vary/") and resp.get("x-soak-lang") != l:
                cls, det = "fail", "Vary: asked %s, got %s" % (l, resp.get("x-soak-lang"))
            emit(self.name, p, cls, det, t0, reused)
            if resp.close:
                self.close()
                return reqs[i + 1:]  # unanswered pipelined requests go again
        if self.used >= self.life:
            self.close()
        return []

    def post(self):
        p = self.rng.choice(("/post/%d" % self.rng.randrange(100), "/cold/%d" % self.rng.randrange(soaklib.COLD_N)))
        body = soaklib.post_body(self.rng, self.rng.randint(100, 20000))
        try:
            self.ensure()
        except OSError as e:
            emit(self.name, "POST " + p, "fail", "connect: %s" % e)
            return
        reused = self.used > 0
        t0 = time.time()
        try:
            self.sock.sendall(req_bytes("POST", p, body=body))
            resp = self.reader.read_response()
        except Cut as e:
            self.close()
            # a POST is not retried (not idempotent): a cut is a cut
            emit(self.name, "POST " + p, "cut", "%s (head %s)" % (e, e.got_head), t0, reused)
            return
        except (socket.timeout, OSError) as e:
            self.close()
            emit(self.name, "POST " + p, "cut" if isinstance(e, ConnectionError) else "fail", repr(e), t0, reused)
            return
        self.used += 1
        cls, det = judge(resp, soaklib.post_reply(body))
        emit(self.name, "POST " + p, cls, det, t0, reused)
        if resp.close:
            self.close()

    def run(self):
        while not STOP.is_set():
            if self.rng.random() < 0.1:
                self.post()
            else:
                reqs = [self.pick() for _ in range(self.rng.randint(2, 6))]
                again = self.batch(reqs)
                if again:
                    self.batch(again, retried=True)
            STOP.wait(self.rng.uniform(0.05, 0.4))
        self.close()


class Tunnel(threading.Thread):
    """CONNECT to an echo origin (plain, or TLS inside), echo 1-64 KiB, check it."""

    def __init__(self, idx):
        super().__init__(daemon=True)
        self.rng = random.Random("%s-%s-tunnel-%d" % (SEED, CFG.get("rng", ""), idx))
        self.name = "tunnel%d" % idx
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE

    def one(self):
        tls = CFG.get("tls_echo_port") and self.rng.random() < 0.5
        port = CFG["tls_echo_port"] if tls else CFG["echo_port"]
        what = "CONNECT %s:%d" % ("tls" if tls else "plain", port)
        data = self.rng.randbytes(self.rng.randint(1024, 65536))
        t0 = time.time()
        s = None
        try:
            s = soaklib.connect(PROXY, SRC, TIMEOUT)
        except OSError as e:
            emit(self.name, what, "fail", "connect: %s" % e, t0)
            return
        try:
            s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (port, port))
            rd = soaklib.Reader(s)
            resp = rd.read_response(head_request=True)  # a 2xx to CONNECT has no body
            if resp.status != 200:
                cls, det = judge(resp, b"")
                emit(self.name, what, cls if cls != "ok" else "fail", "CONNECT answered %d: %s" % (resp.status, det), t0)
                return
            if rd.buf:
                emit(self.name, what, "fail", "bytes after the CONNECT 200 before we sent any", t0)
                return
            ch = s
            if tls:
                ch = self.ctx.wrap_socket(s, server_hostname="localhost")
            got = b""
            off = 0
            while off < len(data):
                n = min(len(data) - off, self.rng.randint(512, 16384))
                ch.sendall(data[off:off + n])
                off += n
                while len(got) < off:
                    d = ch.recv(65536)
                    if not d:
                        raise Cut("EOF in tunnel after %d of %d echoed bytes" % (len(got), len(data)), True)
                    got += d
            if got != data:
                emit(self.name, what, "fail", "echo differs (%d bytes)" % len(got), t0)
            else:
                emit(self.name, what, "ok", "%d bytes" % len(data), t0)
        except Cut as e:
            emit(self.name, what, "cut", str(e), t0)
        except (ConnectionError, ssl.SSLError) as e:
            emit(self.name, what, "cut", repr(e), t0)
        except (socket.timeout, OSError) as e:
            emit(self.name, what, "fail", repr(e), t0)
        finally:
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass

    def run(self):
        while not STOP.is_set():
            self.one()
            STOP.wait(self.rng.uniform(0.1, 0.5))


class Faults(threading.Thread):
    """The fault paths, one request per new connection, a small share of the load."""

    def __init__(self, idx):
        super().__init__(daemon=True)
        self.rng = random.Random("%s-%s-faults-%d" % (SEED, CFG.get("rng", ""), idx))
        self.name = "faults%d" % idx

    def one(self, kind):
        path = "/fault/%s" % kind
        statuses, errors, cut_ok = FAULT_ANSWERS[kind]
        want = soaklib.body_for(SEED, path)
        t0 = time.time()
        s = None
        try:
            s = soaklib.connect(PROXY, SRC, TIMEOUT)
        except OSError as e:
            emit(self.name, path, "fail", "connect: %s" % e, t0)
            return
        try:
            s.sendall(req_bytes("GET", path))
            rd = soaklib.Reader(s)
            resp = rd.read_response()
        except Cut as e:
            dt = time.time() - t0
            if e.got_head and e.head is not None and cut_ok and e.head.status == 200:
                part = rd.buf if "chunked" not in (e.head.get("transfer-encoding") or "") else None
                emit(self.name, path, "fault_ok", "cut body after the head (%d bytes, %.1fs)%s" % (
                    e.nbody, dt, "" if part is None or want.startswith(part) else " [prefix differs]"), t0)
            else:
                emit(self.name, path, "cut", "%s (head %s, %.1fs)" % (e, e.got_head, dt), t0)
            return
        except socket.timeout:
            emit(self.name, path, "fail", "timeout after %.1fs" % (time.time() - t0), t0)
            return
        except OSError as e:
            emit(self.name, path, "cut" if isinstance(e, ConnectionError) else "fail", repr(e), t0)
            return
        finally:
            if s is not None:
                s.close()
        err = soaklib.proxy_status_error(resp.get("proxy-status"))
        if resp.status in statuses and err in errors:
            emit(self.name, path, "fault_ok", "%d %s" % (resp.status, err), t0)
        elif 500 <= resp.status <= 599 and err:
            emit(self.name, path, "fault_ok", "%d %s (another fault name)" % (resp.status, err), t0)
        else:
            emit(self.name, path, "fail", "fault answered %d, Proxy-Status %r, %d body bytes" % (
                resp.status, resp.get("proxy-status"), len(resp.body)), t0)

    def run(self):
        while not STOP.is_set():
            self.one(self.rng.choice(soaklib.FAULTS))
            STOP.wait(self.rng.uniform(0.3, 1.2))


def main():
    signal.signal(signal.SIGTERM, lambda *a: STOP.set())
    ts = [Browser(i) for i in range(CFG.get("browsers", 3))]
    ts += [Tunnel(i) for i in range(CFG.get("tunnels", 2))]
    ts += [Faults(i) for i in range(CFG.get("faults", 1))]
    for t in ts:
        t.start()
    end = time.time() + CFG["duration"]
    while not STOP.is_set() and time.time() < end:
        STOP.wait(0.2)
    STOP.set()
    for t in ts:
        t.join(TIMEOUT + 5)
    OUT.close()


if __name__ == "__main__":
    main()
