"""Configured limits: request-line length (414), header bytes and count (431),
body size (413), header-read, idle keep-alive and mid-message client timeouts."""

import socket
import time

import pytest

from helpers import chunked


def hdr(origin):
    return [("Host", origin.authority)]


def assert_refused(c, status, origin):
    r = c.read_response()
    assert r.status == status, "expected %d, got %r" % (status, r)
    assert (r.get("Content-Type") or "").startswith("text/html")
    time.sleep(0.05)
    assert origin.bytes_received == 0, "origin received %d bytes" % origin.bytes_received
    return r


# -- request line -------------------------------------------------------------------

def test_request_line_limit(proxy_factory, origin):
    p = proxy_factory({"limits": {"max_request_line": "1024"}})
    with p.client() as c:
        r = c.exchange("GET", origin.url("/" + "a" * 900), hdr(origin))
        assert r.status == 200
    n = len(origin.requests)
    origin.bytes_received = 0
    with p.client() as c:
        c.request("GET", origin.url("/" + "b" * 2000), hdr(origin))
        assert_refused(c, 414, origin)
    assert len(origin.requests) == n


def test_request_line_default_limit(proxy, origin):
    with proxy.client() as c:
        c.request("GET", origin.url("/" + "x" * 9000), hdr(origin))
        assert_refused(c, 414, origin)


def test_request_line_limit_without_crlf(proxy_factory, origin):
    """An endless request line (no CRLF yet) is refused once it passes the limit."""
    p = proxy_factory({"limits": {"max_request_line": "1K"}})
    with p.client() as c:
        c.send(("GET %s" % origin.url("/" + "c" * 3000)).encode())
        r = c.read_response(timeout=3)
        assert r.status == 414


# -- header section -------------------------------------------------------------------

def test_header_bytes_limit(proxy_factory, origin):
    p = proxy_factory({"limits": {"max_header_bytes": "4K"}})
    small = [("X-H%02d" % i, "v" * 90) for i in range(20)]     # ~2 KiB
    big = [("X-H%02d" % i, "v" * 90) for i in range(60)]       # ~6 KiB
    with p.client() as c:
        assert c.exchange("GET", origin.url("/small"), hdr(origin) + small).status == 200
    origin.bytes_received = 0
    with p.client() as c:
        c.request("GET", origin.url("/big"), hdr(origin) + big)
        assert_refused(c, 431, origin)


def test_header_bytes_limit_single_field(proxy_factory, origin):
    p = proxy_factory({"limits": {"max_header_bytes": "4K"}})
    with p.client() as c:
        c.request("GET", origin.url("/one"), hdr(origin) + [("X-Huge", "z" * 6000)])
        assert_refused(c, 431, origin)


def test_header_bytes_limit_endless_head(proxy_factory, origin):
    """Headers that never end: the proxy stops reading at the limit, it does not buffer forever."""
    p = proxy_factory({"limits": {"max_header_bytes": "4K"}})
    with p.client() as c:
        c.send(("GET %s HTTP/1.1\r\nHost: %s\r\n" % (origin.url("/x"), origin.authority)).encode())
        try:
            for i in range(200):
                c.send(b"X-Filler-%03d: %s\r\n" % (i, b"f" * 60))
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_response(timeout=3)
        assert r.status == 431


def test_header_count_limit(proxy_factory, origin):
    p = proxy_factory({"limits": {"max_headers": "20"}})
    with p.client() as c:
        fields = [("X-C%d" % i, "1") for i in range(15)]
        assert c.exchange("GET", origin.url("/few"), hdr(origin) + fields).status == 200
    origin.bytes_received = 0
    with p.client() as c:
        c.request("GET", origin.url("/many"), hdr(origin) + [("X-C%d" % i, "1") for i in range(30)])
        assert_refused(c, 431, origin)


# -- body -----------------------------------------------------------------------------

def test_body_limit_content_length(proxy_factory, origin):
    p = proxy_factory({"limits": {"max_body": "1K"}})
    with p.client() as c:
        r = c.exchange("POST", origin.url("/ok"), hdr(origin) + [("Content-Length", "500")], b"a" * 500)
        assert r.status == 200
    assert origin.requests[0].body == b"a" * 500
    origin.bytes_received = 0
    with p.client() as c:
        c.request("POST", origin.url("/big"), hdr(origin) + [("Content-Length", "2000")], b"b" * 2000)
        assert_refused(c, 413, origin)


def test_body_limit_chunked(proxy_factory, origin):
    p = proxy_factory({"limits": {"max_body": "1K"}})
    body = chunked([b"c" * 700, b"d" * 700, b"e" * 700])
    with p.client() as c:
        c.request("POST", origin.url("/chunks"), hdr(origin) + [("Transfer-Encoding", "chunked")], body)
        closed, data = c.wait_closed(4)
    assert closed
    # the origin answers only a complete request, so no response is under
    # way when the body passes max_body: 413 (hopcache(8)), then close
    assert data.startswith(b"HTTP/1.1 413 "), \
        "a chunked body over max_body must get 413, got %r" % data[:200]
    assert data.count(b"HTTP/1.") == 1, data[:600]
    assert origin.complete_requests() == [], "origin received the oversize body as a complete request"


def test_body_unlimited_by_default(proxy, origin):
    body = b"u" * (3 * 1024 * 1024)
    with proxy.client() as c:
        r = c.exchange("POST", origin.url("/big"), hdr(origin) + [("Content-Length", str(len(body)))], body)
    assert r.status == 200
    assert origin.requests[0].body == body


# -- timeouts -------------------------------------------------------------------------

def _closed_after(c, lo, hi):
    t0 = time.monotonic()
    closed, data = c.wait_closed(hi)
    dt = time.monotonic() - t0
    return closed, data, dt


def test_header_timeout_partial_head(proxy_factory, origin):
    p = proxy_factory({"limits": {"header_timeout": "1", "idle_timeout": "10"}})
    with p.client() as c:
        t0 = time.monotonic()
        c.send(("GET %s HTTP/1.1\r\nHost: x\r\n" % origin.url("/slow")).encode())
        closed, data = c.wait_closed(4)
        dt = time.monotonic() - t0
    assert closed, "a client that never finishes its head must be dropped after header_timeout"
    assert 0.7 <= dt <= 3.5, "closed after %.2fs with header_timeout=1" % dt
    # part of a head arrived: 408 (RFC 9110 §15.5.9; hopcache(8)), then close
    assert data.startswith(b"HTTP/1.1 408 "), data[:200]
    assert origin.bytes_received == 0


def test_header_timeout_slow_trickle(proxy_factory, origin):
    """One byte every 0.2 s: the header timeout bounds the whole head, not each read."""
    p = proxy_factory({"limits": {"header_timeout": "1", "idle_timeout": "10", "client_timeout": "10"}})
    head = ("GET %s HTTP/1.1\r\nHost: x\r\n" % origin.url("/trickle")).encode() + b"X-Slow: " + b"a" * 100
    with p.client() as c:
        t0 = time.monotonic()
        closed = False
        for i in range(len(head)):
            try:
                c.send(head[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if time.monotonic() - t0 > 4:
                break
            got, _ = c.reader.wait_eof(0.2)
            if got:
                closed = True
                break
        dt = time.monotonic() - t0
    assert closed, "a slowloris client kept the connection for %.1fs with header_timeout=1" % dt
    assert dt <= 3.5


def test_header_timeout_does_not_cut_active_keepalive(proxy_factory, origin):
    p = proxy_factory({"limits": {"header_timeout": "1", "idle_timeout": "10"}})
    with p.client() as c:
        for i in range(5):
            r = c.exchange("GET", origin.url("/k%d" % i), hdr(origin))
            assert r.status == 200
            time.sleep(0.4)
    assert len(origin.requests) == 5


def test_idle_keepalive_timeout(proxy_factory, origin):
    p = proxy_factory({"limits": {"idle_timeout": "1", "header_timeout": "10"}})
    with p.client() as c:
        assert c.exchange("GET", origin.url("/"), hdr(origin)).status == 200
        t0 = time.monotonic()
        closed, data = c.wait_closed(4)
        dt = time.monotonic() - t0
    assert closed, "idle keep-alive connection not closed after idle_timeout=1"
    assert data == b"", "nothing may be sent on an idle close: %r" % data[:200]
    assert 0.7 <= dt <= 3.5, "closed after %.2fs" % dt


def test_connection_that_never_sends(proxy_factory):
    p = proxy_factory({"limits": {"idle_timeout": "1", "header_timeout": "1"}})
    with p.client() as c:
        closed, data = c.wait_closed(4)
    assert closed
    assert data == b"", "no request began: a plain close, no 408: %r" % data[:200]


def test_client_timeout_body_stall(proxy_factory, origin):
    p = proxy_factory({"limits": {"client_timeout": "1", "idle_timeout": "10", "header_timeout": "10"}})
    with p.client() as c:
        c.send(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" % origin.url("/stall")).encode()
               + b"0123456789")
        t0 = time.monotonic()
        closed, data = c.wait_closed(5)
        dt = time.monotonic() - t0
    assert closed, "a client stalling mid-body must be dropped after client_timeout"
    assert dt <= 4
    assert origin.complete_requests() == []


def test_many_idle_connections_do_not_block_service(proxy_factory, origin):
    p = proxy_factory({"limits": {"idle_timeout": "10", "header_timeout": "10"}})
    idle = [socket.create_connection(("127.0.0.1", p.port), timeout=5) for _ in range(200)]
    try:
        with p.client() as c:
            r = c.exchange("GET", origin.url("/busy"), hdr(origin))
        assert r.status == 200
    finally:
        for s in idle:
            s.close()
