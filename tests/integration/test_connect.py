"""CONNECT tunnels: TLS through the tunnel with curl and Python's ssl, port
policy, pipelined bytes, half-close, bulk integrity, timeouts, access log."""

import hashlib
import socket
import ssl
import threading
import time

import pytest

from helpers import (Client, client_tls_context, data_of, echo_handler, free_port, read_response, sha)


def open_tunnel(proxy, authority, extra=b"", headers=(), timeout=5.0):
    c = Client(proxy.port, timeout=timeout)
    head = "CONNECT %s HTTP/1.1\r\nHost: %s\r\n" % (authority, authority)
    for k, v in headers:
        head += "%s: %s\r\n" % (k, v)
    c.send(head.encode() + b"\r\n" + extra)
    r = c.read_response("CONNECT")
    return c, r


def assert_established(r):
    assert r.status == 200, r
    assert r.start_line == b"HTTP/1.1 200 Connection established", r.start_line
    assert not r.has("Content-Length") and not r.has("Transfer-Encoding"), \
        "RFC 9110 §9.3.6: no Content-Length/Transfer-Encoding in a 2xx to CONNECT: %r" % r.headers


# -- TLS through the tunnel ------------------------------------------------------------

def test_curl_https_through_tunnel(proxy, tls_origin, curl):
    r = curl(proxy.port, "https://127.0.0.1:%d/secure?q=1" % tls_origin.port, "-k")
    assert r.rc == 0, r
    assert r.status == 200
    assert r.body == b"hello from origin: GET /secure?q=1"
    assert any(b.startswith("HTTP/1.1 200") for b in r.blocks[:-1]), r.blocks
    req = tls_origin.requests[0]
    assert not req.has("Via"), "a tunnel must not touch the bytes inside it"


def test_curl_https_by_name(proxy_factory, tls_origin, curl, fake_dns, tmp_path, tls_cert):
    fake_dns.records["localhost"] = {"A": ["127.0.0.1"]}
    p = proxy_factory({"upstream": {"resolv_conf": fake_dns.resolv_conf(str(tmp_path / "resolv.conf"))}})
    r = curl(p.port, "https://localhost:%d/named" % tls_origin.port, "--cacert", tls_cert[0])
    assert r.rc == 0, r
    assert r.body == b"hello from origin: GET /named"


def test_python_ssl_through_tunnel(proxy, tls_origin, tls_cert):
    c, r = open_tunnel(proxy, "127.0.0.1:%d" % tls_origin.port)
    with c:
        assert_established(r)
        assert not c.reader.buf, "bytes after the 200 before the client spoke: %r" % bytes(c.reader.buf)
        ctx = client_tls_context(tls_cert[0])
        s = ctx.wrap_socket(c.sock, server_hostname="localhost")
        s.sendall(b"GET /py HTTP/1.1\r\nHost: localhost\r\n\r\n")
        from helpers import Reader
        resp = read_response(Reader(s))
        assert resp.status == 200
        assert resp.body == b"hello from origin: GET /py"
        s.close()


def test_curl_plain_http_through_tunnel_untouched(proxy, origin, curl):
    r = curl(proxy.port, origin.url("/via-tunnel"), "-p", "-H", "Connection: X-Hop", "-H", "X-Hop: 1")
    assert r.rc == 0, r
    assert r.status == 200
    req = origin.requests[0]
    assert req.target == "/via-tunnel"
    assert not req.has("Via")
    assert req.get("X-Hop") == "1", "inside a tunnel even hop-by-hop fields are the endpoints' business"


# -- port policy and target errors -------------------------------------------------------

def test_connect_disallowed_port_403(proxy_factory, origin):
    p = proxy_factory({"proxy": {"connect_ports": "443, 8443"}})
    c, r = open_tunnel(p, origin.authority)
    with c:
        assert r.status == 403
        assert "error=http_request_denied" in (r.get("Proxy-Status") or ""), r.headers
        assert (r.get("Content-Type") or "").startswith("text/html")
    time.sleep(0.1)
    assert len(origin.conns) == 0, "the proxy connected to a port it refused"


def test_connect_default_only_443(proxy_factory, origin):
    p = proxy_factory({"proxy": {"connect_ports": None}})
    c, r = open_tunnel(p, origin.authority)
    c.close()
    assert r.status == 403
    assert len(origin.conns) == 0


@pytest.mark.parametrize("spec,allowed", [
    ("443, {lo}-{hi}", True),
    ("{p}", True),
    ("443,{p}", True),
    ("1-{below}", False),
    ("{above}-65535", False),
    ("443, 8443", False),
])
def test_connect_ports_lists_and_ranges(proxy_factory, origin, spec, allowed):
    p_ = origin.port
    spec = spec.format(lo=p_ - 1, hi=p_ + 1, p=p_, below=p_ - 1, above=p_ + 1)
    p = proxy_factory({"proxy": {"connect_ports": spec}})
    origin.handler = echo_handler
    c, r = open_tunnel(p, origin.authority)
    with c:
        if allowed:
            assert r.status == 200, "port %d should be allowed by %r" % (p_, spec)
        else:
            assert r.status == 403, "port %d should be refused by %r" % (p_, spec)


def test_connect_refused_502(proxy):
    port = free_port()
    c, r = open_tunnel(proxy, "127.0.0.1:%d" % port)
    c.close()
    assert r.status == 502
    assert "error=connection_refused" in (r.get("Proxy-Status") or "")


@pytest.mark.parametrize("target", ["127.0.0.1", "/path", "http://127.0.0.1:80/", "127.0.0.1:", "127.0.0.1:99999",
                                    ":443"])
def test_connect_bad_authority_400(proxy, origin, target):
    c, r = open_tunnel(proxy, target)
    c.close()
    assert r.status == 400, "CONNECT %s: %r" % (target, r)


# -- tunnel mechanics ------------------------------------------------------------------------

def test_pipelined_bytes_after_connect_head(proxy, origin):
    origin.handler = echo_handler
    c, r = open_tunnel(proxy, origin.authority, extra=b"early bytes right behind the head")
    with c:
        assert_established(r)
        got = b""
        while len(got) < len(b"early bytes right behind the head"):
            d = c.reader.read_some()
            assert d, "tunnel closed early"
            got += d
        assert got == b"early bytes right behind the head"
        c.send(b"and more")
        assert c.reader.read_exact(8) == b"and more"


def test_half_close_client_to_origin(proxy, origin):
    """Client sends, then FIN; the origin sees EOF, answers, closes; the client gets it all."""
    def handler(conn):
        data = conn.reader.read_to_eof(timeout=5)
        conn.send(b"got %d bytes %s" % (len(data), sha(data).encode()))
        conn.close()
    origin.handler = handler
    payload = data_of(100000)
    c, r = open_tunnel(proxy, origin.authority)
    with c:
        assert_established(r)
        c.send(payload)
        c.shutdown_write()
        closed, data = c.wait_closed(5)
    assert closed
    assert data == b"got %d bytes %s" % (len(payload), sha(payload).encode())


def test_half_close_origin_to_client(proxy, origin):
    """The origin sends, then FIN: the client sees EOF but can still send, and the origin gets it."""
    got = {}

    def handler(conn):
        conn.send(b"banner")
        conn.shutdown_write()
        got["data"] = conn.reader.read_to_eof(timeout=5)
    origin.handler = handler
    c, r = open_tunnel(proxy, origin.authority)
    with c:
        assert_established(r)
        closed, data = c.wait_closed(3)
        assert closed and data == b"banner", "origin's FIN should reach the client (got closed=%s %r)" % (closed, data)
        c.send(b"still talking")
        c.shutdown_write()
        assert wait_for_key(got, "data")
    assert got["data"] == b"still talking"


def wait_for_key(d, k, timeout=4):
    deadline = time.monotonic() + timeout
    while k not in d and time.monotonic() < deadline:
        time.sleep(0.02)
    return k in d


def test_origin_close_closes_client(proxy, origin):
    def handler(conn):
        conn.send(b"bye")
        conn.close()
    origin.handler = handler
    c, r = open_tunnel(proxy, origin.authority)
    with c:
        assert_established(r)
        closed, data = c.wait_closed(3)
    assert closed and data == b"bye"


def test_client_close_closes_origin(proxy, origin):
    seen = {}

    def handler(conn):
        seen["data"] = conn.reader.read_to_eof(timeout=5)
    origin.handler = handler
    c, r = open_tunnel(proxy, origin.authority)
    assert_established(r)
    c.send(b"last words")
    c.close()
    assert wait_for_key(seen, "data")
    assert seen["data"] == b"last words"


def test_tunnel_large_transfer_both_ways(proxy, origin):
    up = data_of(4 * 1024 * 1024, seed=2)
    down = data_of(3 * 1024 * 1024, seed=3)

    def handler(conn):
        h = hashlib.sha256()
        n = 0
        while True:
            d = conn.recv_some(timeout=10)
            if not d:
                break
            h.update(d)
            n += len(d)
        conn.send(b"%d %s\n" % (n, h.hexdigest().encode()))
        conn.send(down)
        conn.close()
    origin.handler = handler
    c, r = open_tunnel(proxy, origin.authority, timeout=15)
    with c:
        assert_established(r)
        c.send(up)
        c.shutdown_write()
        line = c.reader.read_until(b"\n", timeout=15)
        assert line == b"%d %s\n" % (len(up), sha(up).encode()), "upload corrupted in the tunnel"
        rest = c.reader.read_to_eof(timeout=15)
    assert len(rest) == len(down) and sha(rest) == sha(down), "download corrupted in the tunnel"
    e = proxy.wait_access(lambda e: e.get("method") == "CONNECT")
    assert e, "no CONNECT line in the access log: %r" % proxy.read_access_log()
    assert e["target"] == origin.authority
    assert e["status"] == "200"
    assert e["outcome"] == "TUNNEL"
    assert e["upstream"] == origin.authority
    bin_, bout = int(e["bytes_in"]), int(e["bytes_out"])
    assert len(up) <= bin_ <= len(up) + 4096, "bytes_in %d for %d tunnelled" % (bin_, len(up))
    exp_out = len(down) + len(line)
    assert exp_out <= bout <= exp_out + 4096, "bytes_out %d for %d tunnelled" % (bout, exp_out)


def test_tunnel_concurrent_streaming(proxy, origin):
    """Both directions at once (no read-all-then-write): back-pressure must not deadlock."""
    origin.handler = echo_handler
    payload = data_of(2 * 1024 * 1024, seed=5)
    c, r = open_tunnel(proxy, origin.authority, timeout=15)
    assert_established(r)
    err = []

    def writer():
        try:
            c.send(payload)
            c.shutdown_write()
        except OSError as e:
            err.append(e)
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    got = c.reader.read_to_eof(timeout=15)
    t.join(5)
    c.close()
    assert not err
    assert len(got) == len(payload) and sha(got) == sha(payload)


def test_tunnel_idle_timeout(proxy_factory, origin):
    p = proxy_factory({"limits": {"tunnel_idle_timeout": "1"}})
    origin.handler = echo_handler
    c, r = open_tunnel(p, origin.authority)
    with c:
        assert_established(r)
        c.send(b"ping")
        assert c.reader.read_exact(4) == b"ping"
        t0 = time.monotonic()
        closed, _ = c.wait_closed(4)
        dt = time.monotonic() - t0
    assert closed, "idle tunnel not closed after tunnel_idle_timeout=1"
    assert 0.7 <= dt <= 3.5


def test_tunnel_active_not_cut_by_idle_timeout(proxy_factory, origin):
    p = proxy_factory({"limits": {"tunnel_idle_timeout": "1"}})
    origin.handler = echo_handler
    c, r = open_tunnel(p, origin.authority)
    with c:
        assert_established(r)
        for i in range(6):
            c.send(b"tick%d" % i)
            assert c.reader.read_exact(5) == b"tick%d" % i
            time.sleep(0.4)


def test_connect_ipv6_literal(proxy, origin_factory):
    try:
        o6 = origin_factory(family=socket.AF_INET6, host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    o6.handler = echo_handler
    c, r = open_tunnel(proxy, "[::1]:%d" % o6.port)
    with c:
        assert_established(r)
        c.send(b"six")
        assert c.reader.read_exact(3) == b"six"


def test_many_tunnels_at_once(proxy, origin):
    origin.handler = echo_handler
    tunnels = []
    try:
        for i in range(20):
            c, r = open_tunnel(proxy, origin.authority)
            tunnels.append(c)
            assert r.status == 200
        for i, c in enumerate(tunnels):
            c.send(b"t%02d" % i)
        for i, c in enumerate(tunnels):
            assert c.reader.read_exact(3) == b"t%02d" % i
    finally:
        for c in tunnels:
            c.close()


def test_tunnel_back_pressure(proxy, origin):
    """The client reads nothing: the origin must get stalled after a bounded amount,
    the tunnel never buffers without bound; afterwards every byte arrives intact."""
    size = 64 * 1024 * 1024
    chunk = data_of(256 * 1024, seed=4)
    sent = [0]

    def handler(conn):
        while sent[0] < size:
            conn.send(chunk)
            sent[0] += len(chunk)
        conn.close()
    origin.handler = handler
    c, r = open_tunnel(proxy, origin.authority, timeout=30)
    with c:
        assert_established(r)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        last, stalled_at = -1, None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            time.sleep(0.3)
            if sent[0] == last:
                stalled_at = sent[0]
                break
            last = sent[0]
        h = hashlib.sha256()
        n = 0
        while True:
            d = c.reader.read_some(timeout=30)
            if not d:
                break
            h.update(d)
            n += len(d)
    assert stalled_at is not None and stalled_at < 24 * 1024 * 1024, \
        "the origin pushed %d bytes into a tunnel whose client read nothing" % (stalled_at or sent[0])
    assert n == size
    assert h.hexdigest() == sha(chunk * (size // len(chunk)))
