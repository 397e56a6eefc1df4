"""Operations (issue 6): the four access-log formats ([log] access_format),
SIGUSR1 log reopening, the metrics and status resources (/hopcache/metrics,
/hopcache/status, [admin] allow), the PAC file (/proxy.pac, /wpad.dat,
[pac]), and the command line's `-t` and `--print-config`.

The proxy's own resources are asked for in origin-form, straight at the
proxy port (GET /hopcache/metrics HTTP/1.1, Host: 127.0.0.1:PORT)."""

import base64
import calendar
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import BINARY
from helpers import (Client, echo_handler, fetch, free_port, http_response, make_cert, wait_for)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "auth")
HTPASSWD = os.path.join(FIXTURES, "htpasswd")
ALICE = ("alice", "Wonderland-7f3q")  # fixtures/auth/htpasswd (see test_auth.py)


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def alice():
    return basic(*ALICE)


# ---------------------------------------------------------------------------
# helpers


def admin_get(port, path, method="GET", host=None, headers=(), body=None):
    """One origin-form request for the proxy's own resource `path`."""
    hdrs = [("Host", host if host is not None else "127.0.0.1:%d" % port)] + list(headers)
    if body is not None:
        hdrs.append(("Content-Length", str(len(body))))
    with Client(port) as c:
        return c.exchange(method, path, hdrs, body)


_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
_SAMPLE_RE = re.compile(r"^(%s)(?:\{((?:%s)(?:,%s)*,?)?\})? (\S+)(?: (-?\d+))?$" % (_NAME, _LABEL, _LABEL))
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class Prom:
    """Parsed Prometheus text exposition (format 0.0.4)."""

    def __init__(self, text):
        self.text = text
        self.types = {}
        self.helps = {}
        self.samples = {}  # (name, frozenset(labels.items())) -> float
        self.parse()

    def parse(self):
        text = self.text
        assert text.endswith("\n"), "the exposition must end with a newline: %r" % text[-80:]
        for n, line in enumerate(text.split("\n")[:-1], 1):
            where = "line %d %r" % (n, line)
            if line == "":
                continue
            if line.startswith("# HELP "):
                parts = line[7:].split(" ", 1)
                assert re.match("^%s$" % _NAME, parts[0]), where
                assert parts[0] not in self.helps, "second HELP for %s: %s" % (parts[0], where)
                self.helps[parts[0]] = parts[1] if len(parts) > 1 else ""
            elif line.startswith("# TYPE "):
                parts = line[7:].split(" ")
                assert len(parts) == 2 and re.match("^%s$" % _NAME, parts[0]), where
                assert parts[1] in _TYPES, where
                assert parts[0] not in self.types, "second TYPE for %s: %s" % (parts[0], where)
                assert not any(k[0] == parts[0] for k in self.samples), \
                    "TYPE after the samples of %s: %s" % (parts[0], where)
                self.types[parts[0]] = parts[1]
            elif line.startswith("#"):
                continue
            else:
                m = _SAMPLE_RE.match(line)
                assert m, "not a Prometheus sample: %s" % where
                name, labels, value = m.group(1), m.group(2) or "", m.group(3)
                fam = re.sub(r"_(bucket|sum|count)$", "", name)
                assert name in self.types or fam in self.types, "sample without a TYPE: %s" % where
                try:
                    v = float(value)
                except ValueError:
                    raise AssertionError("bad sample value: %s" % where)
                ls = dict(_LABEL_RE.findall(labels))
                key = (name, frozenset(ls.items()))
                assert key not in self.samples, "duplicate sample: %s" % where
                if self.types.get(name) == "counter":
                    assert v >= 0, "a counter is negative: %s" % where
                self.samples[key] = v

    def get(self, name, **labels):
        return self.samples.get((name, frozenset(labels.items())))

    def total(self, name):
        return sum(v for (n, _), v in self.samples.items() if n == name)

    def counters(self):
        return {k: v for k, v in self.samples.items() if self.types.get(k[0]) == "counter"}


def metrics(p):
    r = admin_get(p.port, "/hopcache/metrics")
    assert r.status == 200, r
    return Prom(r.body.decode("utf-8"))


def status(p):
    r = admin_get(p.port, "/hopcache/status")
    assert r.status == 200, r
    return json.loads(r.body.decode("utf-8"))


def get(p, origin, path, headers=(), auth=None):
    hdrs = [("Host", origin.authority)] + list(headers)
    if auth is not None:
        hdrs.append(("Proxy-Authorization", auth))
    with Client(p.port) as c:
        return c.exchange("GET", origin.url(path), hdrs)


def open_tunnel(p, authority, auth=None):
    c = Client(p.port)
    head = "CONNECT %s HTTP/1.1\r\nHost: %s\r\n" % (authority, authority)
    if auth:
        head += "Proxy-Authorization: %s\r\n" % auth
    c.send(head.encode() + b"\r\n")
    r = c.read_response("CONNECT")
    return c, r


def wait_lines(p, n, timeout=3.0):
    """The access log once it has at least n lines (all of them)."""
    wait_for(lambda: len(p.read_access_log()) >= n, timeout=timeout)
    return p.read_access_log()


def cacheable(req):
    return http_response(200, [("Cache-Control", "max-age=600"), ("Content-Type", "text/x-test")],
                         b"cached body for " + req.target.encode())


# ---------------------------------------------------------------------------
# A. access log formats


def drive_formats(cache_proxy_factory, origin, fmt):
    """A cache MISS then a HIT (as alice, with Referer and User-Agent), a 407,
    a CONNECT tunnel and a 502 (connection refused), each waited for in the
    access log so the lines come in this order. Returns (proxy, lines, ctx)."""
    p = cache_proxy_factory(ini_extra={"log": {"access_format": fmt},
                                       "auth": {"scheme": "basic", "htpasswd": HTPASSWD}})
    origin.responder = cacheable
    ua, ref = "Mozilla/5.0 (X11; hopcache-test) Gecko/1", "http://referer.example/page?a=1"
    hdrs = [("User-Agent", ua), ("Referer", ref)]
    r1 = get(p, origin, "/fmt", hdrs, auth=alice())
    assert r1.status == 200, r1
    wait_lines(p, 1)
    r2 = get(p, origin, "/fmt", hdrs, auth=alice())
    assert r2.status == 200 and r2.body == r1.body, r2
    assert len(origin.requests) == 1, "the second GET should be a cache hit"
    wait_lines(p, 2)
    r3 = get(p, origin, "/fmt")
    assert r3.status == 407, r3
    wait_lines(p, 3)
    origin.handler = echo_handler
    c, r4 = open_tunnel(p, origin.authority, auth=alice())
    assert r4.status == 200, r4
    c.send(b"ping")
    assert c.reader.read_exact(4) == b"ping"
    c.close()
    wait_lines(p, 4)
    dead = free_port()
    r5 = fetch(p.port, "http://127.0.0.1:%d/refused" % dead, [("Proxy-Authorization", alice())])
    assert r5.status == 502, r5
    lines = wait_lines(p, 5)
    time.sleep(0.1)
    lines = p.read_access_log()
    assert len(lines) == 5, "want exactly 5 access lines:\n%s" % "\n".join(lines)
    return p, lines, {"ua": ua, "ref": ref, "url": origin.url("/fmt"), "dead": dead,
                      "miss_bytes": len(r1.raw_head) + len(r1.body)}


def near_now(t, slack=120):
    return abs(t - time.time()) < slack


SQUID_RE = re.compile(r"^(\d{9,})\.(\d{3}) +(\d+) (\S+) ([A-Z_]+)/(\d{3}) (\d+) (\S+) (\S+) (\S+) "
                      r"([A-Z_]+)/(\S+) (\S+)$")


def test_access_format_squid(cache_proxy_factory, origin):
    p, lines, ctx = drive_formats(cache_proxy_factory, origin, "squid")
    f = []
    for line in lines:
        m = SQUID_RE.match(line)
        assert m, "not Squid's native format (time.ms elapsed client CODE/status bytes method URL " \
                  "user hierarchy/peer type): %r" % line
        f.append(m.groups())
        assert near_now(int(m.group(1))), line
        assert m.group(4) == "127.0.0.1", "Squid's client field is the IP alone: %r" % line
    miss, hit, denied, tunnel, err = f
    # MISS
    assert miss[4:6] == ("TCP_MISS", "200"), lines[0]
    assert miss[7:9] == ("GET", ctx["url"]), lines[0]
    assert miss[9] == "alice", lines[0]
    assert miss[10:12] == ("HIER_DIRECT", "127.0.0.1"), lines[0]
    assert miss[12] == "text/x-test", lines[0]
    assert int(miss[6]) >= len(b"cached body for /fmt"), lines[0]
    # HIT
    assert hit[4:6] == ("TCP_HIT", "200"), lines[1]
    assert hit[7:10] == ("GET", ctx["url"], "alice"), lines[1]
    assert hit[10] == "HIER_NONE" and hit[11] == "-", "a hit contacts nobody: %r" % lines[1]
    assert hit[12] == "text/x-test", lines[1]
    # 407
    assert denied[4:6] == ("TCP_DENIED", "407"), lines[2]
    assert denied[9] == "-", "no user on a 407: %r" % lines[2]
    assert denied[10:12] == ("HIER_NONE", "-"), lines[2]
    # tunnel
    assert tunnel[4:6] == ("TCP_TUNNEL", "200"), lines[3]
    assert tunnel[7:10] == ("CONNECT", origin.authority, "alice"), lines[3]
    assert tunnel[10:12] == ("HIER_DIRECT", "127.0.0.1"), lines[3]
    # upstream error
    assert err[5] == "502" and err[4] == "TCP_MISS", lines[4]
    assert err[8] == "http://127.0.0.1:%d/refused" % ctx["dead"], lines[4]
    assert err[9] == "alice", lines[4]


COMBINED_RE = re.compile(r'^(\S+) (\S+) (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-) '
                         r'"((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$')


def test_access_format_combined(cache_proxy_factory, origin):
    p, lines, ctx = drive_formats(cache_proxy_factory, origin, "combined")
    f = []
    for line in lines:
        m = COMBINED_RE.match(line)
        assert m, "not Apache combined: %r" % line
        g = m.groups()
        f.append(g)
        assert g[0] == "127.0.0.1" and g[1] == "-", line
        t = calendar.timegm(time.strptime(g[3], "%d/%b/%Y:%H:%M:%S +0000"))
        assert near_now(t), line
    miss, hit, denied, tunnel, err = f
    assert miss[2] == "alice" and hit[2] == "alice", lines[:2]
    assert miss[4] == "GET %s HTTP/1.1" % ctx["url"], lines[0]
    assert miss[5] == "200" and hit[5] == "200", lines[:2]
    assert int(miss[6]) > 0 and int(hit[6]) > 0, lines[:2]
    for g, line in ((miss, lines[0]), (hit, lines[1])):
        assert g[7] == ctx["ref"], "Referer from the request: %r" % line
        assert g[8] == ctx["ua"], "User-Agent from the request: %r" % line
    assert denied[2] == "-" and denied[5] == "407", lines[2]
    assert denied[7] == "-" and denied[8] == "-", "no Referer, no User-Agent: %r" % lines[2]
    assert tunnel[4] == "CONNECT %s HTTP/1.1" % origin.authority and tunnel[5] == "200", lines[3]
    assert tunnel[2] == "alice", lines[3]
    assert err[4] == "GET http://127.0.0.1:%d/refused HTTP/1.1" % ctx["dead"] and err[5] == "502", lines[4]


def test_access_format_json(cache_proxy_factory, origin):
    p, lines, ctx = drive_formats(cache_proxy_factory, origin, "json")
    objs = []
    for line in lines:
        try:
            o = json.loads(line)
        except ValueError as e:
            raise AssertionError("not one JSON object per line (%s): %r" % (e, line))
        assert isinstance(o, dict), line
        for k in ("time", "client", "user", "method", "target", "status", "bytes_in", "bytes_out",
                  "duration_ms", "upstream", "outcome", "cache"):
            assert k in o, "JSON access line lacks %r: %r" % (k, line)
        assert isinstance(o["status"], int) and isinstance(o["bytes_out"], int), line
        assert isinstance(o["duration_ms"], int) and o["duration_ms"] >= 0, line
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", o["time"]), line
        assert o["client"] == "127.0.0.1", line
        objs.append(o)
    miss, hit, denied, tunnel, err = objs
    assert (miss["method"], miss["target"], miss["status"]) == ("GET", ctx["url"], 200), miss
    assert miss["cache"] == "MISS" and hit["cache"] == "HIT", (miss, hit)
    assert miss["user"] == "alice" and hit["user"] == "alice", (miss, hit)
    assert miss["upstream"] == origin.authority, miss
    assert miss["referer"] == ctx["ref"] and miss["user_agent"] == ctx["ua"], miss
    assert miss["content_type"] == "text/x-test", miss
    # a hit contacted nobody: no UPSTREAM, and absent strings are null
    # in the JSON format (hopcache.ini(5))
    assert hit["status"] == 200 and hit["upstream"] is None, hit
    assert denied["status"] == 407 and denied["user"] is None, "a 407 has no user (null): %r" % denied
    assert denied["cache"] is None, denied
    assert (tunnel["method"], tunnel["target"], tunnel["status"]) == ("CONNECT", origin.authority, 200)
    assert tunnel["user"] == "alice" and tunnel.get("tunnel") is True, tunnel
    assert tunnel["bytes_in"] >= 4 and tunnel["bytes_out"] >= 4, tunnel
    assert err["status"] == 502 and err["outcome"] == "connection_refused", err
    assert err["target"] == "http://127.0.0.1:%d/refused" % ctx["dead"], err


def test_access_format_native_is_default(cache_proxy_factory, origin):
    p, lines, ctx = drive_formats(cache_proxy_factory, origin, "native")
    entries = p.access_entries()
    assert all(e["_nfields"] == 12 for e in entries), lines
    assert [e["status"] for e in entries] == ["200", "200", "407", "200", "502"], lines
    assert [e["user"] for e in entries] == ["alice", "alice", "-", "alice", "alice"], lines
    assert entries[1]["outcome"] == "HIT" and entries[3]["outcome"] == "TUNNEL", lines


def test_access_format_escaping(proxy_factory, origin):
    """A quote and a backslash in the User-Agent: combined escapes them as
    Apache does (\\" and \\\\), json round-trips the exact string."""
    ua = 'evil "agent" \\ x'
    pc = proxy_factory({"log": {"access_format": "combined"}})
    pj = proxy_factory({"log": {"access_format": "json"}})
    for p in (pc, pj):
        assert get(p, origin, "/esc", [("User-Agent", ua)]).status == 200
    line = wait_lines(pc, 1)[0]
    m = COMBINED_RE.match(line)
    assert m, "the quote broke the combined line: %r" % line
    assert m.group(9) == 'evil \\"agent\\" \\\\ x', line
    o = json.loads(wait_lines(pj, 1)[0])
    assert o["user_agent"] == ua, o
    # obs-text: 0xE9 alone is not UTF-8 (JSON: read as ISO-8859-1, \u00e9);
    # C3 BC is a valid UTF-8 "u with diaeresis" (passes through); combined
    # writes both as \xhh
    raw = "caf\xe9 \xc3\xbc"  # sent as latin-1: bytes 63 61 66 E9 20 C3 BC
    for p in (pc, pj):
        assert get(p, origin, "/esc2", [("User-Agent", raw)]).status == 200
    line = wait_lines(pc, 2)[1]
    m = COMBINED_RE.match(line)
    assert m and m.group(9) == "caf\\xe9 \\xc3\\xbc", line
    jl = wait_lines(pj, 2)[1]
    assert json.loads(jl)["user_agent"] == "caf\u00e9 \u00fc", jl


def test_access_format_invalid_refused(tmp_path):
    ini = tmp_path / "bad.ini"
    ini.write_text("[proxy]\nlisten = 127.0.0.1:0\n\n[log]\naccess_format = apache\n")
    p = subprocess.run([BINARY, "-t", "-c", str(ini)], capture_output=True, timeout=10)
    assert p.returncode == 1, p
    err = p.stderr.decode()
    assert "[log] access_format" in err and "apache" in err, err


# ---------------------------------------------------------------------------
# B. SIGUSR1 reopens the logs


def fds_pointing_at(pids, path):
    out = []
    for pid in pids:
        d = "/proc/%d/fd" % pid
        try:
            for fd in os.listdir(d):
                try:
                    if os.readlink(os.path.join(d, fd)) == path:
                        out.append((pid, fd))
                except OSError:
                    pass
        except OSError:
            pass
    return out


def test_sigusr1_reopens_logs(proxy_factory, origin):
    p = proxy_factory(workers=2)
    before = p.wait_workers(2)
    assert len(before) == 2
    assert get(p, origin, "/before").status == 200
    assert len(wait_lines(p, 1)) == 1
    old_access, old_error = p.access_log + ".1", p.error_log + ".1"
    os.rename(p.access_log, old_access)
    os.rename(p.error_log, old_error)
    procs = [p.pid] + before
    p.signal(signal.SIGUSR1)

    def reopened():
        try:
            with open(p.error_log) as f:
                return "SIGUSR1: logs reopened" in f.read()
        except FileNotFoundError:
            return False
    assert wait_for(reopened, timeout=5), \
        "no 'SIGUSR1: logs reopened' in a new error log; old one:\n%s" % open(old_error).read()[-2000:]
    # every process lets go of the renamed files
    assert wait_for(lambda: not fds_pointing_at(procs, old_access) and not fds_pointing_at(procs, old_error),
                    timeout=5), "still writing to the renamed logs: %r" % (
        fds_pointing_at(procs, old_access) + fds_pointing_at(procs, old_error))
    assert os.path.exists(p.access_log), "SIGUSR1 should create a fresh access.log"
    for i in range(12):
        assert get(p, origin, "/after%d" % i).status == 200
    lines = wait_lines(p, 12)
    time.sleep(0.1)
    lines = p.read_access_log()
    assert len(lines) == 12, lines
    assert all("/after" in l for l in lines), lines
    with open(old_access) as f:
        old = [l for l in f.read().splitlines() if l.strip()]
    assert len(old) == 1 and "/before" in old[0], "the renamed access log got new lines: %r" % old
    assert p.running()
    assert sorted(p.workers()) == sorted(before), "SIGUSR1 must not restart the workers"


# ---------------------------------------------------------------------------
# C. metrics and status


def test_metrics_format_and_methods(proxy, origin):
    assert get(proxy, origin, "/one").status == 200
    r = admin_get(proxy.port, "/hopcache/metrics")
    assert r.status == 200, r
    ct = r.get("Content-Type") or ""
    assert re.match(r"^text/plain; *version=0\.0\.4(;.*)?$", ct), ct
    prom = Prom(r.body.decode("utf-8"))
    for name in ("hopcache_requests_total", "hopcache_cache_requests_total", "hopcache_connections_active",
                 "hopcache_tunnels_active", "hopcache_auth_failures_total", "hopcache_upstream_errors_total",
                 "hopcache_worker_restarts_total"):
        assert name in prom.types, "no TYPE line for %s:\n%s" % (name, prom.text)
        assert name in prom.helps, "no HELP line for %s" % name
    assert prom.types["hopcache_requests_total"] == "counter"
    assert prom.types["hopcache_connections_active"] == "gauge"
    assert prom.types["hopcache_tunnels_active"] == "gauge"
    # HEAD: the same head, no body
    h = admin_get(proxy.port, "/hopcache/metrics", method="HEAD")
    assert h.status == 200 and h.body == b"", h
    assert h.get("Content-Type") == ct
    # POST: 405 naming GET and HEAD
    x = admin_get(proxy.port, "/hopcache/metrics", method="POST", body=b"x=1")
    assert x.status == 405, x
    allow = [t.strip().upper() for t in (x.get("Allow") or "").split(",")]
    assert "GET" in allow and "HEAD" in allow and "POST" not in allow, x.headers
    # a query is ignored
    assert admin_get(proxy.port, "/hopcache/metrics?x=1").status == 200
    # and the proxy's own resources never reach an origin
    assert all("/hopcache" not in r.target for r in origin.requests), origin.requests


def test_metrics_requests_aggregated_over_workers(proxy_factory, origin):
    p = proxy_factory({"log": {"level": "debug"}}, workers=2)
    assert len(p.wait_workers(2)) == 2
    assert wait_for(lambda: p.logs_text().count("worker ready") >= 2, timeout=5), p.logs_text()
    n = admin = 0
    per = None
    deadline = time.monotonic() + 10
    batch = 0
    while time.monotonic() < deadline:
        batch += 1
        clients = [Client(p.port) for _ in range(8)]
        try:
            for i, c in enumerate(clients):
                c.request("GET", origin.url("/agg/%d/%d" % (batch, i)), [("Host", origin.authority)])
            for c in clients:
                assert c.read_response().status == 200
        finally:
            for c in clients:
                c.close()
        n += 8
        assert wait_for(lambda: len([e for e in p.access_entries() if "/agg/" in e["_line"]]) >= n, 3)
        st = status(p)
        admin += 1
        per = [w.get("requests", 0) for w in st["workers"]]
        if len(per) == 2 and all(x > 0 for x in per):
            break
        time.sleep(0.05)
    assert per and len(per) == 2 and all(x > 0 for x in per), \
        "both workers should have served requests: %r" % per
    m = metrics(p)
    got = m.get("hopcache_requests_total", method="GET", code="200")
    # every proxied GET plus the status GETs before this one (each 200)
    assert got == n + admin, "requests_total{GET,200} = %r, want %d (%d proxied + %d status)" % (
        got, n + admin, n, admin)
    assert m.get("hopcache_workers") == 2.0, m.text
    st = status(p)
    assert sum(w["requests"] for w in st["workers"]) == n + admin + 1, st
    assert st.get("requests_total") == n + admin + 1, st


def test_status_json(proxy_factory, origin):
    p = proxy_factory(workers=2)
    w = p.wait_workers(2)
    r = admin_get(p.port, "/hopcache/status")
    assert r.status == 200, r
    assert (r.get("Content-Type") or "").startswith("application/json"), r.headers
    st = json.loads(r.body)
    assert st["pid"] == p.pid, st
    assert isinstance(st.get("version"), str) and st["version"], st
    assert isinstance(st["workers"], list) and len(st["workers"]) == 2, st
    assert sorted(x["pid"] for x in st["workers"]) == sorted(w), (st, w)
    for x in st["workers"]:
        for k in ("pid", "generation", "connections_active", "tunnels_active", "requests"):
            assert k in x, (k, x)
    for k in ("uptime_seconds", "requests_total", "cache", "upstream_errors", "auth_failures",
              "worker_restarts", "reloads"):
        assert k in st, (k, st)
    assert st["worker_restarts"] == 0


def test_metrics_cache_counters(cache_proxy_factory, origin):
    p = cache_proxy_factory()
    origin.responder = cacheable
    r1 = get(p, origin, "/c1")
    r2 = get(p, origin, "/c1")
    assert r1.status == r2.status == 200 and len(origin.requests) == 1
    wait_lines(p, 2)
    m = metrics(p)
    assert m.get("hopcache_cache_requests_total", outcome="miss") == 1, m.text
    assert m.get("hopcache_cache_requests_total", outcome="hit") == 1, m.text
    assert m.get("hopcache_cache_bytes_served_total") == len(r2.body), m.text
    st = status(p)
    assert st["cache"]["hit"] == 1 and st["cache"]["miss"] == 1, st


def test_metrics_connections_and_tunnels(proxy, origin):
    origin.handler = echo_handler
    idle = [Client(proxy.port) for _ in range(2)]
    try:
        c, r = open_tunnel(proxy, origin.authority)
        assert r.status == 200
        c.send(b"hello")
        assert c.reader.read_exact(5) == b"hello"
        m = metrics(proxy)
        # 2 idle + the tunnel + the one asking
        assert m.get("hopcache_connections_active") == 4, m.text
        assert m.get("hopcache_tunnels_active") == 1, m.text
        assert m.get("hopcache_tunnels_total") == 1.0, m.text
        c.close()
        for x in idle:
            x.close()
        idle = []

        def settled():
            m = metrics(proxy)
            return m if m.get("hopcache_tunnels_active") == 0 and m.get("hopcache_connections_active") == 1 \
                else None
        m = wait_for(settled, timeout=3, interval=0.1)
        assert m, "after closing, tunnels_active 0 and connections_active 1 (the asker):\n%s" % metrics(proxy).text
        assert m.get("hopcache_connections_total") >= 4
    finally:
        for x in idle:
            x.close()


def test_metrics_auth_failures(proxy_factory, origin):
    p = proxy_factory({"auth": {"scheme": "basic", "htpasswd": HTPASSWD}})
    assert get(p, origin, "/a", auth=basic("alice", "wrong")).status == 407
    assert get(p, origin, "/b", auth=alice()).status == 200
    wait_lines(p, 2)
    m = metrics(p)
    got = m.get("hopcache_auth_failures_total")
    assert got == 1, "one wrong password: auth_failures_total %r" % got
    # the metrics and status resources need no proxy credentials from 127.0.0.1
    assert status(p)["auth_failures"] == 1
    # by scheme and result: one wrong password, one success
    assert m.get("hopcache_auth_total", scheme="basic", result="failed") == 1, m.text
    assert m.get("hopcache_auth_total", scheme="basic", result="ok") == 1, m.text
    assert get(p, origin, "/c").status == 407  # no credentials
    assert get(p, origin, "/d", auth="Basic !!!").status == 400
    wait_lines(p, 4)
    m = metrics(p)
    assert m.get("hopcache_auth_total", scheme="basic", result="missing") == 1, m.text
    assert m.get("hopcache_auth_total", scheme="basic", result="malformed") == 1, m.text
    assert m.get("hopcache_auth_total", scheme="basic", result="blocked") == 0, m.text
    assert m.get("hopcache_auth_failures_total") == 1, m.text


def test_metrics_upstream_errors(proxy, origin):
    dead = free_port()
    r = fetch(proxy.port, "http://127.0.0.1:%d/x" % dead)
    assert r.status == 502
    wait_lines(proxy, 1)
    m = metrics(proxy)
    assert m.get("hopcache_upstream_errors_total", type="connection_refused") == 1, m.text
    assert m.get("hopcache_requests_total", method="GET", code="502") == 1, m.text


def test_metrics_worker_restart_keeps_counters(proxy_factory, origin):
    p = proxy_factory(workers=2)
    p.allow_worker_deaths = True
    before = p.wait_workers(2)
    assert len(before) == 2
    for i in range(10):
        assert get(p, origin, "/k%d" % i).status == 200
    wait_lines(p, 10)
    m1 = metrics(p)
    v1 = m1.get("hopcache_requests_total", method="GET", code="200")
    assert v1 == 10, m1.text
    assert m1.get("hopcache_worker_restarts_total") == 0
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    after = wait_for(lambda: (lambda w: w if len(w) == 2 and victim not in w else None)(p.workers()), 6)
    assert after, "worker %d not replaced" % victim
    polls = [0]

    def poll():
        m = metrics(p)
        polls[0] += 1
        return m if m.get("hopcache_worker_restarts_total") == 1 else None
    m2 = wait_for(poll, timeout=3, interval=0.1)
    assert m2, "worker_restarts_total should be 1:\n%s" % metrics(p).text
    # the dead worker's counts are folded in: 10 proxied + the first metrics
    # GET + the polls before the last one
    v2 = m2.get("hopcache_requests_total", method="GET", code="200")
    assert v2 == v1 + 1 + polls[0] - 1, "requests_total went from %r to %r after a worker died (%d polls)" % (
        v1, v2, polls[0])
    for k, v in m1.counters().items():
        assert m2.samples.get(k, 0) >= v, "counter %r decreased from %r to %r" % (k, v, m2.samples.get(k))


def test_metrics_gauges_of_a_killed_worker_are_dropped(proxy_factory, origin):
    p = proxy_factory(workers=1)
    p.allow_worker_deaths = True
    before = p.wait_workers(1)
    origin.handler = echo_handler
    idle = [Client(p.port) for _ in range(2)]
    c, r = open_tunnel(p, origin.authority)
    assert r.status == 200
    try:
        m = metrics(p)
        assert m.get("hopcache_connections_active") == 4 and m.get("hopcache_tunnels_active") == 1, m.text
        os.kill(before[0], signal.SIGKILL)
        assert wait_for(lambda: (lambda w: len(w) == 1 and w[0] != before[0])(p.workers()), 6)
        m = wait_for(lambda: (lambda m: m if m.get("hopcache_worker_restarts_total") == 1 else None)(metrics(p)),
                     timeout=3, interval=0.1)
        assert m, metrics(p).text
        assert m.get("hopcache_connections_active") == 1, \
            "the dead worker's connections must not stay counted:\n%s" % m.text
        assert m.get("hopcache_tunnels_active") == 0, m.text
        assert m.get("hopcache_tunnels_total") == 1 and m.get("hopcache_connections_total") >= 4, m.text
    finally:
        c.close()
        for x in idle:
            x.close()


def test_metrics_counters_survive_reload(proxy_factory, origin):
    p = proxy_factory(workers=2)
    assert len(p.wait_workers(2)) == 2
    for i in range(6):
        assert get(p, origin, "/r%d" % i).status == 200
    fetch(p.port, "http://127.0.0.1:%d/x" % free_port())
    wait_lines(p, 7)
    gen1 = {w["generation"] for w in status(p)["workers"]}
    m1 = metrics(p)
    assert m1.get("hopcache_requests_total", method="GET", code="200") == 7, m1.text
    p.signal(signal.SIGHUP)
    assert wait_for(lambda: re.search(r"generation \d+ finished", p.logs_text()), timeout=10), \
        "the old generation did not finish after SIGHUP:\n%s" % p.logs_text()[-2000:]
    m2 = metrics(p)
    for k, v in m1.counters().items():
        assert m2.samples.get(k, 0) >= v, "counter %r decreased across a reload: %r -> %r" % (
            k, v, m2.samples.get(k))
    # 6 proxied + the status and the metrics GETs before the reload
    assert m2.get("hopcache_requests_total", method="GET", code="200") == 8, m2.text
    assert m2.get("hopcache_upstream_errors_total", type="connection_refused") == 1, m2.text
    assert m2.get("hopcache_reloads_total", result="ok") == 1, m2.text
    st = status(p)
    gens = {w["generation"] for w in st["workers"]}
    assert len(st["workers"]) == 2 and len(gens) == 1 and gens != gen1, \
        "after the reload two workers of the new generation (was %r): %r" % (gen1, st)


def test_metrics_failed_reload(proxy_factory, origin):
    p = proxy_factory(workers=1)
    before = p.wait_workers(1)
    with open(p.ini, "a") as f:
        f.write("\n[limits]\nheader_timeout = soon\n")
    p.signal(signal.SIGHUP)
    assert wait_for(lambda: "reload refused" in p.logs_text(), timeout=5), p.logs_text()[-2000:]
    m = metrics(p)
    assert m.get("hopcache_reloads_total", result="failed") == 1, m.text
    assert m.get("hopcache_reloads_total", result="ok") == 0, m.text
    assert p.workers() == before
    assert get(p, origin, "/still").status == 200


def test_metrics_denials_and_status_codes(proxy_factory, origin):
    p = proxy_factory({"proxy": {"connect_ports": "443"}})
    c, r = open_tunnel(p, origin.authority)
    c.close()
    assert r.status == 403, r
    wait_lines(p, 1)
    m = metrics(p)
    assert m.get("hopcache_policy_denials_total") == 1, m.text
    assert m.get("hopcache_requests_total", method="CONNECT", code="403") == 1, m.text
    assert m.get("hopcache_tunnels_total") == 0.0, "a refused CONNECT is no tunnel: %s" % m.text


def test_metrics_tls_handshakes(proxy_factory, tmp_path):
    from helpers import client_tls_context, tls_client
    cert, key = make_cert(str(tmp_path))
    p = proxy_factory({"tls": {"listen": "127.0.0.1:0", "certificate": cert, "private_key": key}})
    c = tls_client(p.tls_port, client_tls_context(cert))
    c.close()
    with Client(p.tls_port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # not TLS
        c.wait_closed(3)
    m = wait_for(lambda: (lambda m: m if m.get("hopcache_tls_handshakes_total", result="failed") == 1 else None)(
        metrics(p)), timeout=3, interval=0.1)
    assert m, metrics(p).text
    assert m.get("hopcache_tls_handshakes_total", result="ok") == 1, m.text


def test_admin_allow_denies(proxy_factory):
    p = proxy_factory({"admin": {"allow": "10.0.0.0/8"}})
    for path in ("/hopcache/metrics", "/hopcache/status"):
        r = admin_get(p.port, path)
        assert r.status == 403, (path, r)
        assert b"hopcache_" not in r.body and b"workers" not in r.body, r.body[:300]
    r = admin_get(p.port, "/proxy.pac")
    assert r.status == 200, "the PAC file is public: %r" % r


def test_admin_unknown_origin_form_still_refused(proxy):
    r = admin_get(proxy.port, "/hopcache/other")
    assert r.status == 400, r


# ---------------------------------------------------------------------------
# D. PAC


PAC_CT = "application/x-ns-proxy-autoconfig"


def pac(p, path="/proxy.pac", host=None):
    r = admin_get(p.port, path, host=host)
    return r


@pytest.mark.parametrize("path", ["/proxy.pac", "/wpad.dat"])
def test_pac_default(proxy, path):
    r = pac(proxy, path)
    assert r.status == 200, r
    assert (r.get("Content-Type") or "").split(";")[0].strip() == PAC_CT, r.headers
    body = r.body.decode()
    assert "function FindProxyForURL" in body, body
    assert "PROXY 127.0.0.1:%d" % proxy.port in body, body
    assert "DIRECT\";\n}" not in body.replace(" ", ""), "no DIRECT fallback at the end: %s" % body
    h = admin_get(proxy.port, path, method="HEAD")
    assert h.status == 200 and h.body == b""


def test_pac_names_host_header(proxy):
    r = pac(proxy, host="proxy.lan.example:%d" % proxy.port)
    assert r.status == 200
    assert "PROXY proxy.lan.example:%d" % proxy.port in r.body.decode(), r.body


def test_pac_proxy_override_and_direct(proxy_factory):
    p = proxy_factory({"pac": {"proxy": "proxy.example:3128",
                               "direct_domains": ".corp.example, intranet",
                               "direct_networks": "10.0.0.0/8, 192.168.1.0/24"}})
    body = pac(p).body.decode()
    assert "PROXY proxy.example:3128" in body, body
    assert "127.0.0.1:%d" % p.port not in body, body
    assert 'dnsDomainIs(host, ".corp.example")' in body, body
    assert 'host == "intranet"' in body, body
    assert 'isInNet(ip, "10.0.0.0", "255.0.0.0")' in body or \
        re.search(r'isInNet\([^,]+, *"10\.0\.0\.0", *"255\.0\.0\.0"\)', body), body
    assert re.search(r'isInNet\([^,]+, *"192\.168\.1\.0", *"255\.255\.255\.0"\)', body), body


def test_pac_https_listener(proxy_factory, tmp_path):
    cert, key = make_cert(str(tmp_path))
    tls_port = free_port()
    p = proxy_factory({"tls": {"listen": "127.0.0.1:%d" % tls_port, "certificate": cert, "private_key": key},
                       "pac": {"https": "yes"}})
    assert p.tls_port == tls_port
    body = pac(p).body.decode()
    assert "HTTPS 127.0.0.1:%d; PROXY 127.0.0.1:%d" % (tls_port, p.port) in body, body


def test_pac_fetched_over_tls_port(proxy_factory, tmp_path):
    """Fetched through the [tls] port (Host names that port): the PROXY
    entry still names the plain port."""
    from helpers import client_tls_context, tls_client
    cert, key = make_cert(str(tmp_path))
    plain, tls_port = free_port(), free_port()
    p = proxy_factory({"proxy": {"listen": "127.0.0.1:%d" % plain},
                       "tls": {"listen": "127.0.0.1:%d" % tls_port, "certificate": cert, "private_key": key},
                       "pac": {"https": "yes"}})
    c = tls_client(tls_port, client_tls_context(cert))
    try:
        r = c.exchange("GET", "/proxy.pac", [("Host", "127.0.0.1:%d" % tls_port)])
    finally:
        c.close()
    assert r.status == 200, r
    body = r.body.decode()
    assert "HTTPS 127.0.0.1:%d; PROXY 127.0.0.1:%d" % (tls_port, plain) in body, body


def test_pac_hostile_host_header(proxy_factory):
    port = free_port()
    p = proxy_factory({"proxy": {"listen": "127.0.0.1:%d" % port}})
    for host in ('evil"; x', 'evil.example:1"; return "DIRECT', "evil.example:99999", "evil\\x"):
        r = pac(p, host=host)
        body = r.body.decode("latin-1")
        assert "evil" not in body, "the Host header reached the PAC: %r" % body
        # the Host is not usable: the PAC names the [proxy] listen address
        assert r.status == 200, (host, r)
        assert "PROXY 127.0.0.1:%d" % port in body, body


def test_pac_host_header_is_judged_whole(proxy_factory):
    """A Host of 256 bytes whose first 255 would be a usable host:port (a
    253-byte name, ":1") but whose last byte makes it invalid: the PAC must
    not name the cut value; it names the [proxy] listen address."""
    port = free_port()
    p = proxy_factory({"proxy": {"listen": "127.0.0.1:%d" % port}})
    name = ("h" * 63 + ".") * 3 + "h" * 61
    assert len(name) == 253
    r = pac(p, host=name + ":1x")
    body = r.body.decode("latin-1")
    assert r.status == 200, r
    assert "hhhh" not in body, "a cut Host reached the PAC: %r" % body[:400]
    assert "PROXY 127.0.0.1:%d" % port in body, body


def test_pac_needs_no_proxy_auth(proxy_factory, origin):
    p = proxy_factory({"auth": {"scheme": "basic", "htpasswd": HTPASSWD}})
    assert get(p, origin, "/x").status == 407
    r = pac(p)
    assert r.status == 200, r
    assert "function FindProxyForURL" in r.body.decode()


NODE_STUBS = r"""
function isPlainHostName(h) { return h.indexOf('.') < 0; }
function dnsDomainIs(h, d) { return h.length >= d.length && h.substring(h.length - d.length) == d; }
var DNS = %(dns)s;
function dnsResolve(h) { return DNS.hasOwnProperty(h) ? DNS[h] : null; }
function ip2n(a) { var p = a.split('.'); return ((+p[0] << 24) | (+p[1] << 16) | (+p[2] << 8) | +p[3]) >>> 0; }
function isInNet(ip, net, mask) {
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip)) { ip = dnsResolve(ip); if (!ip) return false; }
  return ((ip2n(ip) & ip2n(mask)) >>> 0) == ((ip2n(net) & ip2n(mask)) >>> 0);
}
function myIpAddress() { return "127.0.0.1"; }
function shExpMatch(s, p) { return new RegExp('^' + p.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$').test(s); }
function localHostOrDomainIs(h, d) { return h == d || (h.indexOf('.') < 0 && d.indexOf(h + '.') == 0); }
function isResolvable(h) { return dnsResolve(h) != null; }
%(pac)s
var hosts = %(hosts)s, out = {};
hosts.forEach(function (h) { out[h] = FindProxyForURL('http://' + h + '/x', h); });
console.log(JSON.stringify(out));
"""


def test_pac_evaluates_in_node(proxy_factory, tmp_path):
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        pytest.skip("node is not installed")
    p = proxy_factory({"pac": {"direct_domains": ".corp.example, intranet.example",
                               "direct_networks": "10.0.0.0/8"}})
    body = pac(p).body.decode()
    dns = {"ten.example": "10.1.2.3", "www.example.com": "93.184.216.34", "a.corp.example": "172.16.0.1"}
    hosts = ["www.example.com", "a.corp.example", "deep.a.corp.example", "corp.example", "notcorp.example",
             "intranet.example", "x.intranet.example", "intranet", "localhost", "127.0.0.1",
             "ten.example", "unresolvable.example", "WWW.CORP.EXAMPLE"]
    js = tmp_path / "pac.js"
    js.write_text(NODE_STUBS % {"dns": json.dumps(dns), "pac": body, "hosts": json.dumps(hosts)})
    r = subprocess.run([node, str(js)], capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr.decode() + "\n" + body
    got = json.loads(r.stdout)
    proxy = "PROXY 127.0.0.1:%d" % p.port
    want = {"www.example.com": proxy, "a.corp.example": "DIRECT", "deep.a.corp.example": "DIRECT",
            "corp.example": "DIRECT", "notcorp.example": proxy, "intranet.example": "DIRECT",
            "x.intranet.example": proxy, "intranet": "DIRECT", "localhost": "DIRECT", "127.0.0.1": "DIRECT",
            "ten.example": "DIRECT", "unresolvable.example": proxy, "WWW.CORP.EXAMPLE": "DIRECT"}
    bad = {h: (got.get(h), w) for h, w in want.items() if got.get(h) != w}
    assert not bad, "FindProxyForURL answers (got, want): %r\n%s" % (bad, body)


# ---------------------------------------------------------------------------
# E. hopcache -t and --print-config


def run_hc(*args, timeout=15):
    return subprocess.run([BINARY] + list(args), capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_config_test_lists_every_problem(tmp_path):
    ini = tmp_path / "typos.ini"
    missing = str(tmp_path / "no-such-htpasswd")
    ini.write_text("[proxy]\nlistne = 127.0.0.1:3128\nworkers = lots\naccess_format = json\n\n"
                   "[cahce]\nenabled = yes\n\n"
                   "[auth]\nscheme = basic\nhtpasswd = %s\n" % missing)
    r = run_hc("-t", "-c", str(ini))
    err = r.stderr.decode()
    assert r.returncode == 1, (r.returncode, err)
    assert r.stdout.decode().strip() == "", "nothing on stdout for an invalid file: %r" % r.stdout
    lines = err.splitlines()

    def line_with(*words):
        hits = [l for l in lines if all(w in l for w in words)]
        assert hits, "no stderr line with %r:\n%s" % (words, err)
        return hits[0]
    f = str(ini)
    l = line_with(f, "[cahce]")
    assert re.search(r"(?i)did you mean", l) and "[cache]" in l, l
    l = line_with(f, "[proxy]", "listne")
    assert re.search(r"(?i)did you mean", l) and "listen" in l, l
    l = line_with(f, "[proxy]", "workers")
    assert "lots" in l, l
    l = line_with(f, "[auth]", "htpasswd")
    assert missing in l, l
    l = line_with(f, "[proxy]", "access_format")
    assert re.search(r"(?i)did you mean", l) and "[log] access_format" in l, \
        "a key in the wrong section: suggest the right one: %r" % l
    assert re.search(r"\b5 problems\b", err), err


def test_config_test_ok(tmp_path):
    ini = tmp_path / "good.ini"
    ini.write_text("[proxy]\nlisten = 127.0.0.1:3128\nworkers = 2\n")
    r = run_hc("-t", "-c", str(ini))
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode().splitlines()
    assert len(out) == 1 and out[0].startswith("%s: ok: " % ini), out


def parse_ini(text):
    """[(section, key, value)] of INI text (comments and blank lines skipped)."""
    sec, out = None, []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        m = re.match(r"^\[([^\]]+)\]$", line)
        if m:
            sec = m.group(1).strip()
            continue
        assert "=" in line and sec, "not INI: %r" % raw
        k, v = line.split("=", 1)
        out.append((sec, k.strip(), v.strip()))
    return out


# every [section] key of config_keys.c's config_rows, with the default printed
# for keys whose default is a plain number or word
ALL_KEYS = {
    "proxy": ["listen", "workers", "user", "via", "connect_ports", "x_forwarded_for", "forwarded",
              "proxy_protocol", "pid_file"],
    "limits": ["max_request_line", "max_header_bytes", "max_headers", "max_body", "header_timeout",
               "idle_timeout", "connect_timeout", "upstream_timeout", "tunnel_idle_timeout", "shutdown_timeout",
               "client_timeout", "max_connections", "drain_timeout"],
    "upstream": ["pool_max_idle", "pool_idle_timeout", "resolv_conf", "verify", "ca_file", "ca_path", "parent",
                 "parent_user", "parent_password", "parent_direct"],
    "tls": ["listen", "certificate", "private_key", "protocols", "ciphers", "ciphersuites", "handshake_timeout"],
    "log": ["access", "error", "level", "access_format", "syslog_facility"],
    "cache": ["enabled", "dir", "size", "max_object_size", "heuristic_max", "store_set_cookie", "purge_allow"],
    "auth": ["scheme", "realm", "htpasswd", "groups", "basic_backend", "credential_ttl", "max_failures",
             "failure_window"],
    "ldap": ["uri", "starttls", "ca_file", "base", "bind_dn", "bind_password_file", "user_filter",
             "group_attribute", "group_filter", "timeout", "cache_ttl", "negative_ttl"],
    "acl": ["private_destinations", "default", "rules", "connect_sni", "sni_ports"],
    "admin": ["allow", "listen", "max_connections"],
    "pac": ["proxy", "direct_domains", "direct_networks", "https"],
}
DEFAULTS = {
    ("limits", "header_timeout"): "30", ("limits", "connect_timeout"): "10",
    ("limits", "max_headers"): "100", ("limits", "max_connections"): "4096",
    ("upstream", "pool_max_idle"): "64", ("upstream", "resolv_conf"): "/etc/resolv.conf",
    ("upstream", "verify"): "yes", ("log", "level"): "info", ("log", "syslog_facility"): "daemon",
    ("cache", "enabled"): "no", ("auth", "realm"): "hopcache",
    ("acl", "default"): "allow", ("acl", "connect_sni"): "off", ("pac", "https"): "no",
    ("proxy", "x_forwarded_for"): "no", ("auth", "basic_backend"): "htpasswd",
    ("ldap", "starttls"): "no", ("ldap", "user_filter"): "(|(uid=%u)(sAMAccountName=%u))",
    ("ldap", "group_attribute"): "memberOf", ("ldap", "timeout"): "5", ("ldap", "cache_ttl"): "300",
    ("ldap", "negative_ttl"): "60", ("admin", "max_connections"): "16",
}


def test_print_config_round_trip(tmp_path):
    ini = tmp_path / "in.ini"
    ini.write_text("[proxy]\nlisten = 127.0.0.1:3128\nworkers = 3\nvia = edge1\n\n"
                   "[limits]\nidle_timeout = 7.5\n\n"
                   "[cache]\nheuristic_max = 31536000\n\n"
                   "[log]\naccess = %s\naccess_format = json\n\n"
                   "[auth]\nscheme = basic\nhtpasswd = %s\n\n"
                   "[acl]\nrules = office\n\n"
                   "[rule.office]\nsrc = 10.0.0.0/8\naction = allow\n"
                   % (tmp_path / "access.log", HTPASSWD))
    r = run_hc("--print-config", "-c", str(ini))
    assert r.returncode == 0, "hopcache --print-config: rc %d %s" % (r.returncode, r.stderr.decode())
    text = r.stdout.decode()
    items = parse_ini(text)
    got = {(s, k): v for s, k, v in items}
    assert len(got) == len(items), "a key printed twice:\n%s" % text
    # every key appears, set or commented out when it has no value
    for sec, keys in ALL_KEYS.items():
        assert re.search(r"(?m)^\[%s\]\s*$" % re.escape(sec), text), "no [%s] section:\n%s" % (sec, text)
        for k in keys:
            assert (sec, k) in got or re.search(r"(?m)^[;#]\s*%s\s*=" % re.escape(k), text), \
                "[%s] %s is missing from --print-config:\n%s" % (sec, k, text)
    for (sec, k), v in DEFAULTS.items():
        assert got.get((sec, k)) == v, "[%s] %s: want default %r, got %r" % (sec, k, v, got.get((sec, k)))
    # what the file set
    assert got.get(("proxy", "workers")) == "3"
    assert got.get(("proxy", "via")) == "edge1"
    # durations print as they are written, never with an exponent
    assert got.get(("cache", "heuristic_max")) == "31536000", text
    assert got.get(("limits", "idle_timeout")) == "7.5", text
    assert got.get(("log", "access_format")) == "json"
    assert got.get(("auth", "scheme")) == "basic" and got.get(("auth", "htpasswd")) == HTPASSWD
    assert got.get(("rule.office", "action")) == "allow" and got.get(("rule.office", "src")) == "10.0.0.0/8", text
    # round trip: the output is a valid configuration that prints the same
    out = tmp_path / "printed.ini"
    out.write_text(text)
    t = run_hc("-t", "-c", str(out))
    assert t.returncode == 0, "--print-config output fails -t:\n%s\n%s" % (t.stderr.decode(), text)
    again = run_hc("--print-config", "-c", str(out))
    assert again.returncode == 0
    assert parse_ini(again.stdout.decode()) == items, "the printed config does not round-trip"


def test_print_config_invalid_file(tmp_path):
    ini = tmp_path / "bad.ini"
    ini.write_text("[proxy]\nworkers = lots\n")
    r = run_hc("--print-config", "-c", str(ini))
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "[proxy] workers" in r.stderr.decode()


def test_print_config_quotes_comment_characters(tmp_path):
    """A value with ';' or '#' (quoted in the file) must survive the round
    trip: printed unquoted, the INI reader would cut it at the comment."""
    ini = tmp_path / "q.ini"
    ini.write_text('[proxy]\nlisten = 127.0.0.1:3128\n\n[auth]\nrealm = "Corp ; egress # 1"\n')
    r = run_hc("--print-config", "-c", str(ini))
    assert r.returncode == 0, r.stderr.decode()
    out = tmp_path / "printed.ini"
    out.write_text(r.stdout.decode())
    again = run_hc("--print-config", "-c", str(out))
    assert again.returncode == 0, again.stderr.decode()
    realm = [l for l in again.stdout.decode().splitlines() if re.match(r"^\s*realm\s*=", l)]
    assert realm and "Corp ; egress # 1" in realm[0], \
        "realm changed in the round trip: %r\nfirst print:\n%s" % (realm, r.stdout.decode())


def test_print_config_with_parent_credentials_passes_t(tmp_path):
    """The printed configuration passes -t whatever it holds; a secret may be
    withheld, but then not in a way that makes the output invalid (here:
    parent_user printed, parent_password commented out)."""
    ini = tmp_path / "p.ini"
    ini.write_text("[proxy]\nlisten = 127.0.0.1:3128\n\n[upstream]\nparent = 127.0.0.1:3129\n"
                   "parent_user = u\nparent_password = s3cret\n")
    r = run_hc("--print-config", "-c", str(ini))
    assert r.returncode == 0, r.stderr.decode()
    out = tmp_path / "printed.ini"
    out.write_text(r.stdout.decode())
    t = run_hc("-t", "-c", str(out))
    assert t.returncode == 0, "--print-config output fails -t:\n%s\n%s" % (
        t.stderr.decode(), [l for l in r.stdout.decode().splitlines() if "parent" in l])
