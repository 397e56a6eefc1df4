#!/usr/bin/python3
"""The soak test's abusive client, every socket bound to one address
(127.0.0.2): slowloris (many connections, each sending half a request line,
then a byte now and then) and a flood (keep-alive connections sending
complete requests as fast as a cap allows, plus a stream of new connections
with one request each). Counts what came back; writes a JSON summary to OUT
at the end.

usage: abuser.py CONFIG.json  (stops after config["duration"] s or SIGTERM)

Summary keys: requests (complete requests sent by the flood), ok (200s),
r429 (429s), r429_bad (429 without Retry-After or Proxy-Status error),
ps_errors ({error: count} of the 429s), other ({status: count}),
errors (connect/reset/timeouts), sl_opened, sl_responses ({status: count}),
peak_held (most slowloris connections open at once for more than 2 s with no
answer: connections the proxy accepted and holds), first_request,
last_ok (times), ok_times_first/last.
"""

import collections
import json
import os
import random
import selectors
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import soaklib  # noqa: E402

CFG = json.load(open(sys.argv[1]))
PROXY = ("127.0.0.1", CFG["proxy_port"])
SRC = CFG.get("source", "127.0.0.2")
ORIGIN = "127.0.0.1:%d" % CFG["origin_port"]
STOP = threading.Event()
LOCK = threading.Lock()
S = {"requests": 0, "ok": 0, "r429": 0, "r429_bad": 0, "ps_errors": collections.Counter(),
     "other": collections.Counter(), "errors": collections.Counter(), "sl_opened": 0,
     "sl_responses": collections.Counter(), "peak_held": 0, "first_request": None, "last_ok": None}
rng = random.Random("%s-abuser" % CFG["seed"])


def note(resp):
    with LOCK:
        if resp.status == 200:
            S["ok"] += 1
            S["last_ok"] = time.time()
        elif resp.status == 429:
            S["r429"] += 1
            err = soaklib.proxy_status_error(resp.get("proxy-status"))
            S["ps_errors"][err or "none"] += 1
            if not resp.get("retry-after") or not err:
                S["r429_bad"] += 1
        else:
            S["other"][str(resp.status)] += 1


def request(path, close=False):
    return ("GET http://%s%s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (
        ORIGIN, path, ORIGIN, "Connection: close\r\n" if close else "")).encode()


class Pacer:
    """At most `rate` flood requests a second, over all flood threads."""

    def __init__(self, rate):
        self.gap = 1.0 / rate
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait(self):
        with self.lock:
            now = time.monotonic()
            self.next = max(self.next + self.gap, now - 1.0)
            t = self.next
        d = t - time.monotonic()
        if d > 0:
            STOP.wait(d)


def flood_keepalive(pacer):
    s = rd = None
    while not STOP.is_set():
        try:
            if s is None:
                s = soaklib.connect(PROXY, SRC, 10)
                rd = soaklib.Reader(s)
            pacer.wait()
            with LOCK:
                S["requests"] += 1
                if S["first_request"] is None:
                    S["first_request"] = time.time()
            s.sendall(request("/hot/%d" % rng.randrange(soaklib.HOT_N)))
            resp = rd.read_response()
            note(resp)
            if resp.close:
                s.close()
                s = None
        except (soaklib.Cut, OSError) as e:
            with LOCK:
                S["errors"][type(e).__name__] += 1
            if s is not None:
                s.close()
            s = None
            STOP.wait(0.05)
    if s is not None:
        s.close()


def flood_connections(pacer):
    """A new connection per request (the connection flood)."""
    while not STOP.is_set():
        pacer.wait()
        s = None
        try:
            s = soaklib.connect(PROXY, SRC, 10)
            with LOCK:
                S["requests"] += 1
                if S["first_request"] is None:
                    S["first_request"] = time.time()
            s.sendall(request("/hot/%d" % rng.randrange(soaklib.HOT_N), close=True))
            note(soaklib.Reader(s).read_response())
        except (soaklib.Cut, OSError) as e:
            with LOCK:
                S["errors"][type(e).__name__] += 1
        finally:
            if s is not None:
                s.close()


def slowloris(n, open_rate):
    """Keep up to n connections dribbling a request that never ends."""
    sel = selectors.DefaultSelector()
    conns = {}  # sock -> {"t": connect time, "sent": n, "answered": bool}
    line = request("/hot/0")[:-2] + b"X-Slow: " + b"a" * 4000
    half = line.find(b" HTTP/1.1") // 2 + 5
    last_open = 0.0
    last_sample = 0.0
    while not STOP.is_set():
        now = time.monotonic()
        if len(conns) < n and now - last_open >= 1.0 / open_rate:
            last_open = now
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((SRC, 0))
                s.setblocking(False)
                s.connect_ex(PROXY)
                conns[s] = {"t": now, "sent": 0, "answered": False, "up": False, "next": now}
                sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
                with LOCK:
                    S["sl_opened"] += 1
            except OSError as e:
                s.close()
                with LOCK:
                    S["errors"]["sl_" + type(e).__name__] += 1
        for key, ev in sel.select(timeout=0.02):
            s = key.fileobj
            c = conns.get(s)
            if c is None:
                continue
            if ev & selectors.EVENT_WRITE and not c["up"]:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    with LOCK:
                        S["errors"]["sl_connect_%d" % err] += 1
                    sel.unregister(s)
                    s.close()
                    del conns[s]
                    continue
                c["up"] = True
                c["t"] = time.monotonic()
                try:
                    s.send(line[:half])
                    c["sent"] = half
                except OSError:
                    pass
                sel.modify(s, selectors.EVENT_READ)
            if ev & selectors.EVENT_READ:
                try:
                    d = s.recv(4096)
                except OSError:
                    d = b""
                if d and not c["answered"]:
                    c["answered"] = True
                    st = d[9:12].decode("latin-1", "replace") if d.startswith(b"HTTP/1.") else "garbage"
                    with LOCK:
                        S["sl_responses"][st] += 1
                        if st == "429":
                            ps = [ln for ln in d.split(b"\r\n") if ln.lower().startswith(b"proxy-status:")]
                            err = soaklib.proxy_status_error(ps[0].split(b":", 1)[1].decode()) if ps else None
                            S["ps_errors"][err or "none"] += 1
                            if not err or b"\r\nretry-after:" not in d.lower():
                                S["r429_bad"] += 1
                if not d:
                    if not c["answered"]:
                        with LOCK:
                            S["sl_responses"]["closed"] += 1
                    sel.unregister(s)
                    s.close()
                    del conns[s]
        now = time.monotonic()
        for s, c in list(conns.items()):
            if c["up"] and not c["answered"] and now >= c["next"] and c["sent"] < len(line):
                c["next"] = now + rng.uniform(3, 8)
                try:
                    s.send(line[c["sent"]:c["sent"] + 1])
                    c["sent"] += 1
                except OSError:
                    pass
        if now - last_sample >= 0.25:
            last_sample = now
            held = sum(1 for c in conns.values() if c["up"] and not c["answered"] and now - c["t"] > 2.0)
            with LOCK:
                S["peak_held"] = max(S["peak_held"], held)
    for s in list(conns):
        sel.unregister(s)
        s.close()


def main():
    signal.signal(signal.SIGTERM, lambda *a: STOP.set())
    pacer = Pacer(CFG.get("flood_rate", 1000))
    ts = [threading.Thread(target=slowloris, args=(CFG.get("slowloris", 300), CFG.get("open_rate", 100)),
                           daemon=True)]
    ts += [threading.Thread(target=flood_keepalive, args=(pacer,), daemon=True)
           for _ in range(CFG.get("flood_conns", 6))]
    ts += [threading.Thread(target=flood_connections, args=(pacer,), daemon=True)
           for _ in range(CFG.get("flood_new", 2))]
    for t in ts:
        t.start()
    end = time.time() + CFG["duration"]
    while not STOP.is_set() and time.time() < end:
        STOP.wait(0.2)
    STOP.set()
    for t in ts:
        t.join(15)
    S["end"] = time.time()
    with open(CFG["out"], "w") as f:
        json.dump(S, f, default=dict, indent=1)


if __name__ == "__main__":
    main()
