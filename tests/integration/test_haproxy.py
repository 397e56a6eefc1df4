"""Two hopcache nodes behind HAProxy (Debian's `haproxy`, 2.6 here).

Plain-http requests are balanced with `balance uri whole` + `hash-type
consistent`, so each absolute URL always lands on the same node and the
pair caches every URL once; CONNECT goes to a second backend with `balance
source` + `hash-type consistent`, so a client's tunnels stick to one node.
What the tests found about HAProxy 2.6 in `mode http`:

- it forwards an absolute-form request target ("GET http://host:port/p")
  unchanged (no option needed), which hopcache requires, and `balance uri`
  hashes that whole absolute URI (authority included; `whole` adds the
  query string, `path-only` would drop the authority: do not use it);
- every request of a keep-alive client connection is balanced on its own;
- CONNECT works in `mode http` (HTX): the request is routed like any
  other (`use_backend ... if METH_CONNECT`), the 200 is relayed and the
  connection becomes a tunnel governed by `timeout tunnel`; no separate
  `mode tcp` frontend is needed;
- it answers 400 itself when the Host field differs from the authority of
  an absolute-form target (hopcache never sees such a request);
- `send-proxy-v2` on the server lines, with `[proxy] proxy_protocol =
  127.0.0.1` (HAProxy's address) on the nodes: every connection to a node
  starts with a PROXY protocol v2 header naming the client HAProxy
  accepted, so hopcache sees the real client, not the balancer: [rule.NAME]
  src rules, [cache] purge_allow, [admin] allow, the [auth] failure limiter,
  X-Forwarded-For and the access log's client field all apply to it (so
  the nodes' purge_allow restricts PURGE; no rule at HAProxy is needed). A
  PURGE is hashed like a GET of the same URL, so it reaches the node that
  holds the object;
- plain `check` (a TCP connect) is the right health check: with
  send-proxy-v2 it sends a v2 LOCAL header (the node keeps HAProxy's
  address) and closes, which no node logs as a request or a refused
  header; `option httpchk` sends an origin-form request by default, which
  hopcache answers 400;
- servers carry fixed `id`s: the consistent-hash ring is built from them, so
  several HAProxy instances with the same ids agree on the mapping.

The configuration (see HAPROXY_CFG; the nodes add NODE_INI) is written to
tmp with the loopback ports of one run; haproxy runs in the foreground
(-db) and is stopped by its pid.
"""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from helpers import (Client, client_tls_context, echo_handler, fetch, free_port, http_response,
                     read_response, Reader, requests_for, wait_for)


def _haproxy_binary():
    for cand in (os.environ.get("HAPROXY"), shutil.which("haproxy"), "/usr/sbin/haproxy"):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


HAPROXY = _haproxy_binary()

HAPROXY_CFG = """\
global
    log stderr format raw local0 info
    # read-only runtime API, only so the tests can see when a node is down
    stats socket ipv4@127.0.0.1:{stats_port} level user

defaults
    mode http
    log global
    option httplog
    # no log line for a connection that sent nothing (the tests' readiness probe)
    option dontlognull
    # a request whose node just died (before the check saw it) is retried,
    # the last retry on the other node
    retries 2
    option redispatch
    timeout connect 2s
    timeout http-request 5s
    timeout client 10s
    timeout server 10s
    # idle limit of a CONNECT tunnel once the 200 has been relayed
    timeout tunnel 30s

frontend proxy
    bind 127.0.0.1:{port}
    use_backend nodes_connect if METH_CONNECT
    default_backend nodes_http

backend nodes_http
    # the whole absolute URI, query string included, picks the node
    balance uri whole
    hash-type consistent
    server node0 127.0.0.1:{node0} id 1 send-proxy-v2 check inter 200ms fall 2 rise 1
    server node1 127.0.0.1:{node1} id 2 send-proxy-v2 check inter 200ms fall 2 rise 1

backend nodes_connect
    # tunnels are opaque: keep each client on one node
    balance source
    hash-type consistent
    server node0 127.0.0.1:{node0} id 1 send-proxy-v2 check inter 200ms fall 2 rise 1
    server node1 127.0.0.1:{node1} id 2 send-proxy-v2 check inter 200ms fall 2 rise 1
"""

NURLS = 21  # odd: a round-robin balancer could not map a URL to one node by luck
ROUNDS = 3


class HAProxy:
    def __init__(self, tmpdir, nodes):
        self.dir = os.path.join(tmpdir, "haproxy")
        os.makedirs(self.dir, exist_ok=True)
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        self.log = os.path.join(self.dir, "haproxy.log")
        self.port = free_port()
        self.stats_port = free_port()
        with open(self.cfg, "w") as f:
            f.write(HAPROXY_CFG.format(port=self.port, stats_port=self.stats_port,
                                       node0=nodes[0].port, node1=nodes[1].port))
        self.proc = None

    def log_text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")[-3000:]
        except FileNotFoundError:
            return ""

    def start(self, timeout=10.0):
        chk = subprocess.run([HAPROXY, "-c", "-f", self.cfg], capture_output=True, timeout=20)
        assert chk.returncode == 0, "haproxy -c rejected the config:\n%s%s" % (
            chk.stdout.decode("utf-8", "replace"), chk.stderr.decode("utf-8", "replace"))
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg], stdin=subprocess.DEVNULL,
                                     stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail("haproxy exited with %s at start:\n%s" % (self.proc.returncode, self.log_text()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail("haproxy not listening on 127.0.0.1:%d within %.0fs:\n%s"
                            % (self.port, timeout, self.log_text()))
            time.sleep(0.05)
        for be in ("nodes_http", "nodes_connect"):
            for srv in ("node0", "node1"):
                self.wait_status(be, srv, "UP")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # by pid: haproxy -db is a single process
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def server_status(self, backend, server):
        """The status column of `show stat` (UP, DOWN, ...) for one server."""
        with socket.create_connection(("127.0.0.1", self.stats_port), timeout=3) as s:
            s.sendall(b"show stat\n")
            r = Reader(s, timeout=3)
            text = r.read_to_eof().decode("utf-8", "replace")
        lines = text.splitlines()
        cols = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(cols, line.split(",")))
            if row.get("pxname") == backend and row.get("svname") == server:
                return row.get("status", "")
        return None

    def wait_status(self, backend, server, want, timeout=5.0):
        st = wait_for(lambda: (self.server_status(backend, server) or "").startswith(want), timeout, 0.05)
        assert st, "haproxy: %s/%s not %s within %.0fs (now %r)" % (
            backend, server, want, timeout, self.server_status(backend, server))


# what every node gets: haproxy (127.0.0.1) sends the PROXY protocol header
NODE_INI = {"proxy": {"proxy_protocol": "127.0.0.1"}}


def node_ini(extra=None):
    ini = {sec: dict(kv) for sec, kv in NODE_INI.items()}
    for sec, kv in (extra or {}).items():
        ini.setdefault(sec, {}).update(kv)
    return ini


@pytest.fixture
def pair_factory(cache_proxy_factory, tmp_path):
    """pair_factory(ini_extra=None): (haproxy, [node0, node1]), two caching
    hopcache instances, each with its own store and NODE_INI plus
    ini_extra, behind one haproxy."""
    if HAPROXY is None:
        pytest.skip("haproxy not installed (Debian package `haproxy`); set HAPROXY=path to override")
    started = []

    def make(ini_extra=None):
        nodes = [cache_proxy_factory(ini_extra=node_ini(ini_extra)),
                 cache_proxy_factory(ini_extra=node_ini(ini_extra))]
        assert nodes[0].cache_dir != nodes[1].cache_dir
        hap = HAProxy(os.path.join(str(tmp_path), "hap%d" % len(started)), nodes)
        started.append(hap)
        hap.start()
        return hap, nodes
    try:
        yield make
    finally:
        for hap in started:
            hap.stop()


@pytest.fixture
def pair(pair_factory):
    return pair_factory()


def counting(origin, cc="max-age=300"):
    n = {}

    def responder(req):
        n[req.target] = n.get(req.target, 0) + 1
        return http_response(200, [("Cache-Control", cc)], ("%s #%d" % (req.target, n[req.target])).encode())
    origin.responder = responder


def is_hit(r):
    return any(v.startswith("hopcache; hit") for v in r.get_all("cache-status"))


def gets(node, url):
    return [e for e in node.access_entries() if e.get("method") == "GET" and e.get("target") == url]


def connects(node):
    return [e for e in node.access_entries() if e.get("method") == "CONNECT"]


def all_gets(nodes):
    return sum(1 for n in nodes for e in n.access_entries() if e.get("method") == "GET")


def owners(nodes, url):
    """Indexes of the nodes whose access log has a GET of url."""
    return [i for i, n in enumerate(nodes) if gets(n, url)]


def path_of(i):
    return "/pair/%d?v=%d" % (i, i)


def fetch_all(hap, origin, urls_idx, keepalive):
    """GET every URL through haproxy; returns {i: response}."""
    out = {}
    if keepalive:
        with Client(hap.port) as c:
            for i in urls_idx:
                out[i] = c.exchange("GET", origin.url(path_of(i)), [("Host", origin.authority)])
    else:
        for i in urls_idx:
            out[i] = fetch(hap.port, origin.url(path_of(i)))
    return out


def node_of_connect(nodes, before, timeout=3.0):
    """After one tunnel closed: the index of the node whose access log got a
    new CONNECT line (it is written when the tunnel ends)."""
    def grown():
        now = [len(connects(n)) for n in nodes]
        return now if sum(now) > sum(before) else None
    now = wait_for(grown, timeout)
    assert now, "no hopcache logged the CONNECT within %.0fs" % timeout
    assert sum(now) == sum(before) + 1, (before, now)
    return [i for i in range(len(nodes)) if now[i] > before[i]][0]


def tunnel_tls_get(hap, tls_origin, tls_cert, path, source=None):
    """CONNECT through haproxy, TLS to the origin inside, one GET."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        if source:
            s.bind((source, 0))
        s.connect(("127.0.0.1", hap.port))
        auth = tls_origin.authority
        s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (auth, auth)).encode())
        rd = Reader(s)
        r = read_response(rd, "CONNECT")
        assert r.status == 200, r
        assert not rd.buf, "bytes after the CONNECT 200: %r" % bytes(rd.buf)
        t = client_tls_context(tls_cert[0]).wrap_socket(s, server_hostname="localhost")
        t.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % path).encode())
        resp = read_response(Reader(t))
        t.close()
        return resp
    finally:
        s.close()


# ---------------------------------------------------------------------------


def test_each_url_fetched_once_across_the_pair(pair, origin):
    hap, nodes = pair
    counting(origin)
    for rnd in range(ROUNDS):
        # round 0: a new connection per request; then one keep-alive
        # connection for all the URLs (haproxy balances each request)
        resps = fetch_all(hap, origin, range(NURLS), keepalive=rnd > 0)
        for i, r in resps.items():
            assert r.status == 200, (rnd, i, r)
            assert r.body == ("%s #1" % path_of(i)).encode(), (rnd, i, r.body)
            assert is_hit(r) == (rnd > 0), (rnd, i, r.get_all("cache-status"))
            assert r.get_all("via") == ["1.1 hopcache"], r.headers
    assert wait_for(lambda: all_gets(nodes) >= NURLS * ROUNDS, 5), \
        "access logs have %d GETs, want %d" % (all_gets(nodes), NURLS * ROUNDS)

    # the origin saw each URL exactly once, across the pair
    assert len(origin.requests) == NURLS, [q.target for q in origin.requests]
    for i in range(NURLS):
        seen = requests_for(origin, path_of(i))
        assert len(seen) == 1, (path_of(i), len(seen))
        assert seen[0].get_all("via") == ["1.1 hopcache"], "one hopcache hop, not two"

    # every request for a URL went to one node, which logged the absolute form
    share = [0, 0]
    for i in range(NURLS):
        url = origin.url(path_of(i))
        own = owners(nodes, url)
        assert len(own) == 1, "%s went to nodes %r" % (url, own)
        assert len(gets(nodes[own[0]], url)) == ROUNDS
        share[own[0]] += 1
    assert share[0] > 0 and share[1] > 0, "one node got every URL: %r\n%s" % (share, hap.log_text())
    assert all_gets(nodes) == NURLS * ROUNDS


def test_purge_through_haproxy_reaches_the_owning_node(pair, origin):
    hap, nodes = pair
    counting(origin)
    fetch_all(hap, origin, range(6), keepalive=True)
    assert all(is_hit(r) for r in fetch_all(hap, origin, range(6), keepalive=False).values())
    url = origin.url(path_of(3))
    with Client(hap.port) as c:
        r = c.exchange("PURGE", url, [("Host", origin.authority)])
        assert r.status == 200, "the PURGE did not reach the node that holds %s: %r" % (url, r)
        r = c.exchange("PURGE", origin.url("/pair/never-stored"), [("Host", origin.authority)])
        assert r.status == 404, r
    r = fetch(hap.port, url)
    assert not is_hit(r) and r.body == ("%s #2" % path_of(3)).encode(), r
    assert len(requests_for(origin, path_of(3))) == 2
    assert all(len(requests_for(origin, path_of(i))) == 1 for i in (0, 1, 2, 4, 5))
    assert [q.method for q in origin.requests].count("PURGE") == 0


def test_connect_tunnels_stick_to_one_node(pair, tls_origin, tls_cert, curl):
    hap, nodes = pair
    seen = []
    for k in range(4):
        before = [len(connects(n)) for n in nodes]
        resp = tunnel_tls_get(hap, tls_origin, tls_cert, "/secure/%d" % k)
        assert resp.status == 200 and resp.body == b"hello from origin: GET /secure/%d" % k, resp
        seen.append(node_of_connect(nodes, before))
    # a real client too: curl's CONNECT + TLS (certificate verified) through haproxy
    before = [len(connects(n)) for n in nodes]
    r = curl(hap.port, "https://127.0.0.1:%d/curl" % tls_origin.port, "--cacert", tls_cert[0])
    assert r.rc == 0 and r.status == 200, r
    assert r.body == b"hello from origin: GET /curl"
    assert any(b.startswith("HTTP/1.1 200") for b in r.blocks[:-1]), r.blocks
    seen.append(node_of_connect(nodes, before))
    assert len(set(seen)) == 1, "CONNECTs from 127.0.0.1 went to nodes %r" % seen
    e = connects(nodes[seen[0]])[-1]
    assert e["target"] == tls_origin.authority and e["status"] == "200", e
    assert not tls_origin.requests[0].has("Via"), "the bytes inside the tunnel were touched"


def test_connect_sources_spread_and_stick(pair, origin_factory):
    hap, nodes = pair
    echo = origin_factory()
    echo.handler = echo_handler
    placement = {}
    for k in range(1, 13):
        src = "127.0.0.%d" % k
        for rep in range(2):
            before = [len(connects(n)) for n in nodes]
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(5)
            try:
                try:
                    s.bind((src, 0))
                except OSError as e:
                    pytest.skip("cannot bind loopback source %s: %s" % (src, e))
                s.connect(("127.0.0.1", hap.port))
                s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (echo.authority, echo.authority)).encode())
                rd = Reader(s)
                r = read_response(rd, "CONNECT")
                assert r.status == 200, (src, r)
                s.sendall(b"ping from " + src.encode())
                assert rd.read_exact(len("ping from " + src)) == b"ping from " + src.encode()
            finally:
                s.close()
            where = node_of_connect(nodes, before)
            placement.setdefault(src, []).append(where)
            # send-proxy-v2: the node's access log names the tunnel's client
            assert connects(nodes[where])[-1]["client"] == src, connects(nodes[where])[-1]
    for src, where in placement.items():
        assert len(set(where)) == 1, "tunnels from %s went to nodes %r" % (src, where)
    used = set(w[0] for w in placement.values())
    assert used == {0, 1}, "balance source sent every source to one node: %r" % placement


def test_node_down_moves_only_its_urls(pair, origin):
    """Consistent hashing: when a node stops, only its URLs move (and are
    fetched once more); the survivor keeps serving its own from cache."""
    hap, nodes = pair
    counting(origin)
    fetch_all(hap, origin, range(NURLS), keepalive=True)
    assert wait_for(lambda: all_gets(nodes) >= NURLS, 5)
    own = {i: owners(nodes, origin.url(path_of(i))) for i in range(NURLS)}
    assert all(len(v) == 1 for v in own.values()), own
    on = [[i for i in own if own[i] == [n]] for n in (0, 1)]
    assert on[0] and on[1], "one node got every URL: %r" % on
    # stop the node with fewer URLs (either works)
    dead = 0 if len(on[0]) <= len(on[1]) else 1
    live = 1 - dead
    assert nodes[dead].stop() == 0
    hap.wait_status("nodes_http", "node%d" % dead, "DOWN")
    for rnd in range(2):
        resps = fetch_all(hap, origin, range(NURLS), keepalive=rnd == 0)
        for i, r in resps.items():
            assert r.status == 200, (rnd, i, r)
            if i in on[live]:
                # never moved: still a hit of the first fetch
                assert is_hit(r) and r.body == ("%s #1" % path_of(i)).encode(), (rnd, i, r.raw_head)
            else:
                # moved to the survivor: fetched once more, then a hit there
                assert is_hit(r) == (rnd == 1), (rnd, i, r.get_all("cache-status"))
                assert r.body == ("%s #2" % path_of(i)).encode(), (rnd, i, r.body)
    want_live = 3 * len(on[live]) + 2 * len(on[dead])
    assert wait_for(lambda: all_gets([nodes[live]]) >= want_live, 5), (all_gets([nodes[live]]), want_live)
    for i in range(NURLS):
        want = 1 if i in on[live] else 2
        assert len(requests_for(origin, path_of(i))) == want, (path_of(i), want)
        url = origin.url(path_of(i))
        assert len(gets(nodes[live], url)) == (3 if i in on[live] else 2), url


def client_from(port, source):
    """A Client on a new connection to 127.0.0.1:port from source (a 127/8
    address); skips the test when it cannot be bound."""
    c = Client.__new__(Client)
    try:
        c.sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    except OSError as e:
        pytest.skip("cannot bind loopback source %s: %s" % (source, e))
    c.reader = Reader(c.sock, 5)
    c.timeout = 5
    return c


def test_nodes_see_the_client_address_through_haproxy(pair_factory, origin):
    """send-proxy-v2: each node's client is the one haproxy accepted (its
    access log, src rules, purge_allow), not haproxy's 127.0.0.1."""
    hap, nodes = pair_factory({"acl": {"rules": "banned"},
                               "rule.banned": {"src": "127.0.0.3/32", "action": "deny"}})
    counting(origin)
    # several URLs, so both nodes are asked
    for i in range(6):
        url = origin.url("/from4/%d" % i)
        with client_from(hap.port, "127.0.0.4") as c:
            r = c.exchange("GET", url, [("Host", origin.authority)])
        assert r.status == 200, (url, r)
    for i in range(6):
        url = origin.url("/from3/%d" % i)
        with client_from(hap.port, "127.0.0.3") as c:
            r = c.exchange("GET", url, [("Host", origin.authority)])
        assert r.status == 403, (url, r)
        assert 'details="denied by rule banned"' in r.joined("proxy-status"), r.headers
    assert wait_for(lambda: sum(len(n.access_entries()) for n in nodes) >= 12, 5)
    entries = [e for n in nodes for e in n.access_entries() if e.get("method") == "GET"]
    by_client = {}
    for e in entries:
        by_client.setdefault(e["client"], []).append((e["target"].split("/", 3)[-1], e["status"], e["rule"]))
    assert sorted(by_client) == ["127.0.0.3", "127.0.0.4"], by_client
    assert sorted(by_client["127.0.0.4"]) == [("from4/%d" % i, "200", "default") for i in range(6)]
    assert sorted(by_client["127.0.0.3"]) == [("from3/%d" % i, "403", "banned") for i in range(6)]
    assert all(len(n.access_entries()) > 0 for n in nodes), "one node got every request"
    assert sorted(q.target for q in origin.requests) == ["/from4/%d" % i for i in range(6)]
    # [cache] purge_allow (default 127.0.0.1, ::1) now sees the client too
    url = origin.url("/from4/0")
    with client_from(hap.port, "127.0.0.4") as c:
        r = c.exchange("PURGE", url, [("Host", origin.authority)])
    assert r.status == 403, "a PURGE from 127.0.0.4 passed purge_allow as haproxy's 127.0.0.1: %r" % r
    with Client(hap.port) as c:
        r = c.exchange("PURGE", url, [("Host", origin.authority)])
    assert r.status == 200, r
    # haproxy's health checks (a v2 LOCAL header, then close) are no requests
    for n in nodes:
        assert "refused" not in n.error_log_text(), n.error_log_text()[-2000:]
        assert all(e["client"] != "127.0.0.1" or e["method"] == "PURGE" for e in n.access_entries())
