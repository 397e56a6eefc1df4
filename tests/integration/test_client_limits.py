"""Per-client limits (issue 14): [limits] max_connections_per_client counted
over all workers, requests_per_client and requests_per_user token buckets
shared by the workers, exempt addresses, a full worker's fair accept (503 at
once, oldest idle keep-alive connection closed first), min_body_rate for
slow uploads, and client_timeout as a progress timeout for slow readers.

The abusive client is bound to 127.0.0.2, the well-behaved one to 127.0.0.3;
the tests read the status and metrics from 127.0.0.1."""

import json
import re
import socket
import time

import pytest

from helpers import Reader, build_request, data_of, http_response, read_response, sha, wait_for
from test_ops import metrics

ABUSER = "127.0.0.2"
GOOD = "127.0.0.3"


def connect(port, src, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(src, 0))
    return s


def get_from(port, src, origin, path="/", headers=()):
    """One GET from address src on a fresh connection: the response."""
    s = connect(port, src)
    try:
        s.sendall(build_request("GET", origin.url(path), [("Host", origin.authority)] + list(headers)))
        return read_response(Reader(s, 5.0))
    finally:
        s.close()


def status(p):
    s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
    try:
        s.sendall(b"GET /hopcache/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = read_response(Reader(s, 5.0))
        assert r.status == 200, r
        return json.loads(r.body.decode())
    finally:
        s.close()


def conns_of(p, ip):
    for t in status(p)["top_clients"]:
        if t["address"] == ip:
            return t["connections"]
    return 0


def proxy_status(r):
    return r.get("Proxy-Status") or ""


def open_counted(p, src, n):
    """n connections from src, each sending half a request line, waiting
    until the status page counts each one (they are spread over the
    workers)."""
    socks = []
    for i in range(n):
        s = connect(p.port, src)
        s.sendall(b"GET http://exa")
        socks.append(s)
        assert wait_for(lambda: conns_of(p, src) == i + 1, 3), (i, status(p)["top_clients"])
    return socks


def close_all(socks):
    for s in socks:
        s.close()


# -- connections per client -------------------------------------------------------------

def test_connections_per_client_over_workers(proxy_factory, origin):
    """Limit 3 with two workers: the 4th connection from the same address is
    answered 429 with Retry-After and Proxy-Status connection_limit_reached,
    then closed; another address is served meanwhile; a freed place is
    usable again."""
    p = proxy_factory({"limits": {"max_connections_per_client": "3"}}, workers=2)
    held = open_counted(p, ABUSER, 3)
    try:
        s = connect(p.port, ABUSER)
        rd = Reader(s, 5.0)
        r = read_response(rd)
        assert r.status == 429, r
        assert r.get("Retry-After") == "1"
        assert proxy_status(r).startswith("hopcache; error=connection_limit_reached"), r.headers
        assert "max_connections_per_client" in proxy_status(r)
        assert rd.wait_eof(3.0) == (True, b"")
        s.close()
        assert get_from(p.port, GOOD, origin, "/good").status == 200
        assert conns_of(p, ABUSER) == 3
        held.pop().close()
        assert wait_for(lambda: conns_of(p, ABUSER) == 2, 3)
        s = connect(p.port, ABUSER)
        s.sendall(build_request("GET", origin.url("/again"), [("Host", origin.authority)]))
        assert read_response(Reader(s, 5.0)).status == 200
        s.close()
    finally:
        close_all(held)
    m = metrics(p)
    assert m.get("hopcache_limit_refusals_total", reason="client_connections") == 1
    assert m.get("hopcache_limit_refusals_total", reason="client_rate") == 0


def test_connection_count_returns_to_zero(proxy_factory, origin):
    """Every way a connection ends gives its place back: served and closed,
    idle and closed by the client, cut mid-head."""
    p = proxy_factory({"limits": {"max_connections_per_client": "2"}}, workers=2)
    for i in range(6):
        assert get_from(p.port, ABUSER, origin, "/x%d" % i).status == 200
    held = open_counted(p, ABUSER, 2)
    close_all(held)
    assert wait_for(lambda: conns_of(p, ABUSER) == 0, 3), status(p)["top_clients"]
    held = open_counted(p, ABUSER, 2)
    close_all(held)


def test_exempt_address_has_no_connection_limit(proxy_factory):
    p = proxy_factory({"limits": {"max_connections_per_client": "2", "exempt": "127.0.0.2/32"}})
    held = open_counted(p, ABUSER, 5)
    close_all(held)


def test_connection_limit_zero_is_off(proxy_factory):
    p = proxy_factory({"limits": {"max_connections_per_client": "0"}})
    held = open_counted(p, ABUSER, 6)
    close_all(held)


def test_top_clients_in_status(proxy_factory):
    p = proxy_factory(workers=2)
    a = open_counted(p, ABUSER, 4)
    b = []
    for i in range(2):
        s = connect(p.port, GOOD)
        s.sendall(b"GET")
        b.append(s)
    assert wait_for(lambda: conns_of(p, GOOD) == 2, 3)
    top = status(p)["top_clients"]
    assert top[0] == {"address": ABUSER, "connections": 4}, top
    assert {"address": GOOD, "connections": 2} in top
    close_all(a + b)


# -- request rates ----------------------------------------------------------------------

def test_requests_per_client_shared_by_workers(proxy_factory, origin):
    """2/m with a burst of 3, two workers, a new connection per request:
    exactly 3 requests pass, the next get 429 with Retry-After 30 (the next
    token) and Proxy-Status http_request_denied; nothing of theirs reaches
    the origin; another address has its own bucket."""
    p = proxy_factory({"limits": {"requests_per_client": "2/m, burst 3",
                                  "exempt": "127.0.0.1"}}, workers=2)
    got = [get_from(p.port, ABUSER, origin, "/r%d" % i) for i in range(6)]
    assert [r.status for r in got] == [200, 200, 200, 429, 429, 429]
    for r in got[3:]:
        assert r.get("Retry-After") == "30", r.headers
        ps = proxy_status(r)
        assert ps.startswith("hopcache; error=http_request_denied"), ps
        assert "requests_per_client (2/m, burst 3)" in ps
    assert sorted(q.target for q in origin.requests) == ["/r0", "/r1", "/r2"]
    assert get_from(p.port, GOOD, origin, "/good").status == 200
    m = metrics(p)
    assert m.get("hopcache_limit_refusals_total", reason="client_rate") == 3
    e = p.wait_access(lambda e: e.get("status") == "429")
    assert e is not None and ABUSER in e["_line"]


def test_requests_per_client_keepalive_closes_after_429(proxy_factory, origin):
    p = proxy_factory({"limits": {"requests_per_client": "1/h, burst 2"}})
    s = connect(p.port, ABUSER)
    rd = Reader(s, 5.0)
    for i in range(2):
        s.sendall(build_request("GET", origin.url("/k%d" % i), [("Host", origin.authority)]))
        assert read_response(rd).status == 200
    s.sendall(build_request("GET", origin.url("/k2"), [("Host", origin.authority)]))
    r = read_response(rd)
    assert r.status == 429
    assert r.get("Retry-After") == "3600"  # one token an hour
    assert rd.wait_eof(3.0) == (True, b"")
    s.close()


def test_requests_per_client_exempt(proxy_factory, origin):
    p = proxy_factory({"limits": {"requests_per_client": "1/h, burst 1", "exempt": "127.0.0.2"}})
    assert [get_from(p.port, ABUSER, origin).status for _ in range(4)] == [200] * 4
    assert [get_from(p.port, GOOD, origin).status for _ in range(2)] == [200, 429]


def test_requests_per_client_refills(proxy_factory, origin):
    """5/s, burst 1: a second request at once is refused; after 0.25 s (more
    than the 0.2 s interval) one passes again."""
    p = proxy_factory({"limits": {"requests_per_client": "5/s, burst 1"}})
    assert get_from(p.port, ABUSER, origin).status == 200
    assert get_from(p.port, ABUSER, origin).status == 429
    time.sleep(0.25)
    assert get_from(p.port, ABUSER, origin).status == 200


def test_requests_per_user(proxy_factory, origin):
    """Basic users: alice has her own bucket whatever address she comes
    from; bob is not affected by alice's."""
    from test_auth import HTPASSWD, creds, USERS
    p = proxy_factory({"auth": {"scheme": "basic", "htpasswd": HTPASSWD},
                       "limits": {"requests_per_user": "1/h, burst 2"}}, workers=2)
    alice = [("Proxy-Authorization", creds("alice", USERS["alice"][0]))]
    bob = [("Proxy-Authorization", creds("bob", USERS["bob"][0]))]
    got = [get_from(p.port, src, origin, "/u", alice).status for src in (ABUSER, GOOD, ABUSER)]
    assert got == [200, 200, 429]
    r = get_from(p.port, GOOD, origin, "/u", alice)
    assert r.status == 429
    assert "requests_per_user (1/h, burst 2)" in proxy_status(r)
    assert get_from(p.port, GOOD, origin, "/b", bob).status == 200
    # no credentials: 407, not counted against anyone
    assert get_from(p.port, GOOD, origin, "/n").status == 407
    assert metrics(p).get("hopcache_limit_refusals_total", reason="user_rate") == 2


def test_rate_config_errors(proxy_factory):
    for bad, why in [("100", "needs a unit"), ("10/s, burst 0", "burst must be"),
                     ("5/fortnight", "needs a unit"), ("2000000/s", "between 1/h"),
                     ("10/s burst 3", "unexpected text")]:
        p = proxy_factory({"limits": {"requests_per_client": bad}}, start=False)
        p.write_ini()
        import subprocess
        from conftest import BINARY
        r = subprocess.run([BINARY, "-t", "-c", p.ini], capture_output=True, text=True, timeout=10)
        assert r.returncode != 0
        assert "[limits] requests_per_client" in r.stderr and why in r.stderr, r.stderr


# -- a full worker ----------------------------------------------------------------------

def test_full_worker_answers_503_at_once(proxy_factory, origin):
    """max_connections 4, one worker, 4 connections that never sent a whole
    request: a new client gets 503 with Proxy-Status at once (not a wait in
    the backlog), and is served once a place is free."""
    p = proxy_factory({"limits": {"max_connections": "4"}})
    held = []
    for i in range(4):
        s = connect(p.port, ABUSER)
        s.sendall(b"GET http://a")
        held.append(s)
    time.sleep(0.2)
    t0 = time.monotonic()
    s = connect(p.port, GOOD)
    r = read_response(Reader(s, 5.0))
    assert time.monotonic() - t0 < 1.0
    assert r.status == 503
    assert proxy_status(r).startswith("hopcache; error=connection_limit_reached"), r.headers
    assert r.get("Retry-After") == "1"
    s.close()
    held.pop().close()
    assert wait_for(lambda: _served(p, origin), 3)
    close_all(held)
    assert metrics(p).get("hopcache_limit_refusals_total", reason="worker_full") >= 1


def _served(p, origin):
    try:
        return get_from(p.port, GOOD, origin, "/after").status == 200
    except OSError:
        return False


def test_full_worker_closes_oldest_idle_first(proxy_factory, origin):
    """max_connections 3, three keep-alive connections idle after a
    request each: a new client is served, and the connection idle longest
    (the first) is the one closed."""
    p = proxy_factory({"limits": {"max_connections": "3"}})
    idle = []
    for i in range(3):
        s = connect(p.port, ABUSER)
        s.sendall(build_request("GET", origin.url("/i%d" % i), [("Host", origin.authority)]))
        assert read_response(Reader(s, 5.0)).status == 200
        idle.append(s)
        time.sleep(0.05)
    assert get_from(p.port, GOOD, origin, "/new").status == 200
    assert Reader(idle[0], 2.0).wait_eof(2.0) == (True, b"")
    # the others are still open: they can send another request
    for s in idle[1:]:
        s.sendall(build_request("GET", origin.url("/again"), [("Host", origin.authority)]))
        assert read_response(Reader(s, 5.0)).status == 200
    close_all(idle)
    assert metrics(p).get("hopcache_idle_evictions_total") >= 1


# -- slow clients -----------------------------------------------------------------------

def test_slow_request_body_cut(proxy_factory, origin):
    """min_body_rate 1K after 1 s: a body trickling 100 bytes every 0.3 s
    gets 408 with Proxy-Status naming the limit; the origin never gets a
    whole body."""
    p = proxy_factory({"limits": {"min_body_rate": "1K", "min_body_rate_after": "1"}})
    s = connect(p.port, ABUSER)
    s.sendall(build_request("POST", origin.url("/up"), [("Host", origin.authority),
                                                          ("Content-Length", "100000")]))
    t0 = time.monotonic()
    s.settimeout(0.3)
    got = b""
    while time.monotonic() - t0 < 6 and b"\r\n\r\n" not in got:
        try:
            s.sendall(b"x" * 100)
        except OSError:
            break
        try:
            d = s.recv(4096)
            if not d:
                break
            got += d
        except socket.timeout:
            pass
    assert got.startswith(b"HTTP/1.1 408"), got[:200]
    assert b"min_body_rate" in got
    assert time.monotonic() - t0 < 4
    assert all(len(r.body_raw or b"") < 100000 for r in origin.requests)
    assert metrics(p).get("hopcache_limit_refusals_total", reason="slow_body") == 1
    s.close()


def test_steady_request_body_not_cut(proxy_factory, origin):
    """The same limit, a body at ~8 KiB/s for 3 s: it goes through whole."""
    p = proxy_factory({"limits": {"min_body_rate": "1K", "min_body_rate_after": "1"}})
    body = data_of(24 * 1024)
    s = connect(p.port, GOOD)
    s.sendall(build_request("POST", origin.url("/steady"), [("Host", origin.authority),
                                                              ("Content-Length", str(len(body)))]))
    for i in range(0, len(body), 2048):
        s.sendall(body[i:i + 2048])
        time.sleep(0.25)
    r = read_response(Reader(s, 5.0))
    assert r.status == 200
    assert origin.wait_requests(1)
    assert sha(origin.requests[0].body_raw) == sha(body)
    s.close()


def _big_origin(origin, size):
    body = data_of(size, seed=7)
    origin.responder = lambda req: http_response(200, [("Content-Type", "application/octet-stream")], body)
    return body


def test_slow_reader_progress_not_whole_response(proxy_factory, origin):
    """client_timeout 1: a reader taking ~4 s for 48 MiB, never pausing 1 s,
    gets all of it (the timeout is on progress)."""
    body = _big_origin(origin, 48 * 1024 * 1024)
    p = proxy_factory({"limits": {"client_timeout": "1"}})
    s = connect(p.port, GOOD, timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.sendall(build_request("GET", origin.url("/big"), [("Host", origin.authority)]))
    got = bytearray()
    t0 = time.monotonic()
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        got += d
        if len(got) % (4 << 20) < len(d):
            time.sleep(0.3)
        head_end = got.find(b"\r\n\r\n")
        if head_end >= 0 and len(got) - head_end - 4 >= len(body):
            break
    assert time.monotonic() - t0 > 1.5
    head_end = got.find(b"\r\n\r\n")
    assert sha(bytes(got[head_end + 4:])) == sha(body)
    s.close()


def test_stalled_reader_cut(proxy_factory, origin):
    """client_timeout 1: a reader that stops reading for 4 s is cut; the
    access log says the client timed out."""
    body = _big_origin(origin, 48 * 1024 * 1024)
    p = proxy_factory({"limits": {"client_timeout": "1"}})
    s = connect(p.port, GOOD, timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.sendall(build_request("GET", origin.url("/big"), [("Host", origin.authority)]))
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200")
    time.sleep(4)
    got = len(first)
    while True:
        try:
            d = s.recv(1 << 20)
        except ConnectionResetError:
            break
        if not d:
            break
        got += len(d)
    assert got < len(body)
    s.close()


# -- the HTTPS proxy port ---------------------------------------------------------------

def test_connections_per_client_on_tls_port(tmp_path_factory, proxy_factory, origin):
    """Over the limit on the HTTPS port the connection is closed at once,
    before any handshake (an answer would cost one); the client's TLS
    connections under the limit, and another address, work."""
    import ssl
    from helpers import make_ca, make_leaf
    d = str(tmp_path_factory.mktemp("pki-limits"))
    ca = make_ca(d)
    leaf = make_leaf(d, ca, names=("localhost",), ips=("127.0.0.1",), cn="localhost", tag="leaf")
    p = proxy_factory({"tls": {"listen": "127.0.0.1:0", "certificate": leaf[0], "private_key": leaf[1]},
                       "limits": {"max_connections_per_client": "2"}})
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca.cert)

    def tls_from(src):
        raw = socket.create_connection(("127.0.0.1", p.tls_port), timeout=5, source_address=(src, 0))
        return ctx.wrap_socket(raw, server_hostname="localhost")

    held = [tls_from(ABUSER), tls_from(ABUSER)]
    assert wait_for(lambda: conns_of(p, ABUSER) == 2, 3)
    raw = socket.create_connection(("127.0.0.1", p.tls_port), timeout=5, source_address=(ABUSER, 0))
    t0 = time.monotonic()
    # closed by the proxy (a FIN or, with the ClientHello unread, a reset):
    # the handshake fails at once, not by the client's timeout
    with pytest.raises(OSError) as ei:
        ctx.wrap_socket(raw, server_hostname="localhost")
    assert not isinstance(ei.value, socket.timeout), ei.value
    assert time.monotonic() - t0 < 2
    raw.close()
    s = tls_from(GOOD)
    s.sendall(build_request("GET", origin.url("/tls"), [("Host", origin.authority)]))
    assert read_response(Reader(s, 5.0)).status == 200
    s.close()
    close_all(held)
    assert metrics(p).get("hopcache_limit_refusals_total", reason="client_connections") == 1


# -- the scenario ---------------------------------------------------------------

def test_flood_from_one_address_leaves_everyone_else_served(proxy_factory, origin):
    """The shipped limits, two workers, an admin listener: one address
    opens ~8,300 connections and sends half a request line on each. It
    keeps max_connections_per_client (256) of them, the rest are answered
    429; a well-behaved client is served within a second, and the admin
    listener answers within a second and names the abuser."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = 8300 if hard == resource.RLIM_INFINITY or hard >= 9000 else hard - 700
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 500)), hard))
    p = proxy_factory({"admin": {"listen": "127.0.0.1:0"}}, workers=2)
    flood = []
    try:
        for i in range(n):
            s = socket.socket()
            s.setblocking(False)
            s.bind((ABUSER, 0))
            try:
                s.connect(("127.0.0.1", p.port))
            except BlockingIOError:
                pass
            flood.append(s)
        for s in flood:
            s.setblocking(True)
            s.settimeout(5)
            try:
                s.sendall(b"GET http://exa")
            except OSError:
                pass  # already answered 429 and closed
        t0 = time.monotonic()
        r = get_from(p.port, GOOD, origin, "/served")
        assert r.status == 200, r
        assert time.monotonic() - t0 < 1.0
        t0 = time.monotonic()
        a = socket.create_connection(("127.0.0.1", p.admin_port), timeout=5)
        a.sendall(b"GET /hopcache/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        st = json.loads(read_response(Reader(a, 5.0)).body)
        a.close()
        assert time.monotonic() - t0 < 1.0
        assert st["top_clients"][0] == {"address": ABUSER, "connections": 256}, st["top_clients"]
        assert wait_for(lambda: _refused(p) == n - 256, 10), (_refused(p), n)
    finally:
        close_all(flood)


def _refused(p):
    a = socket.create_connection(("127.0.0.1", p.admin_port), timeout=5)
    try:
        a.sendall(b"GET /hopcache/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return json.loads(read_response(Reader(a, 5.0)).body)["limits"]["refusals"]["client_connections"]
    finally:
        a.close()
