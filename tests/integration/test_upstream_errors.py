"""Upstream failures become proxy-generated responses: status, short text/html
body, and Proxy-Status naming the RFC 9209 error."""

import re
import time

import pytest

from helpers import CLOSE, SHUT_WR, free_port, http_response


def get(proxy, url, host, method="GET", timeout=8, headers=(), body=None):
    with proxy.client(timeout=timeout) as c:
        t0 = time.monotonic()
        r = c.exchange(method, url, [("Host", host)] + list(headers), body)
        r.elapsed = time.monotonic() - t0
    return r


def assert_proxy_error(r, status, errors):
    if isinstance(errors, str):
        errors = (errors,)
    assert r.status == status, "expected %d, got %r" % (status, r)
    ps = r.get("Proxy-Status") or ""
    m = re.match(r"^\s*hopcache\s*;(.*)$", ps)
    assert m, "Proxy-Status should be 'hopcache; error=...', got %r" % ps
    params = dict(re.findall(r"\s*([a-z_]+)=(\"[^\"]*\"|[^;\s]+)", m.group(1)))
    assert params.get("error") in errors, "Proxy-Status error %r not in %r" % (params.get("error"), errors)
    assert (r.get("Content-Type") or "").lower().startswith("text/html")
    assert r.body and b"<" in r.body, "expected a short HTML body"
    return params


def test_connection_refused(proxy):
    port = free_port()
    r = get(proxy, "http://127.0.0.1:%d/x" % port, "127.0.0.1:%d" % port)
    assert_proxy_error(r, 502, "connection_refused")


def test_connection_refused_access_log(proxy):
    port = free_port()
    get(proxy, "http://127.0.0.1:%d/x" % port, "127.0.0.1:%d" % port)
    e = proxy.wait_access(lambda e: e.get("status") == "502")
    assert e, proxy.read_access_log()
    assert e["outcome"] == "connection_refused"
    # hopcache.ini(5): UPSTREAM is the server connected to, or "-"; none was
    assert e["upstream"] == "-", e["_line"]


def test_upstream_error_response_says_close_and_closes(proxy, origin):
    """Every response the proxy makes up for a failed request closes the
    connection (conn.c fail_request), and says so first (RFC 9112 §9.6: a
    server that sends "close" MUST initiate the close after that
    response); the next connection is served."""
    port = free_port()
    with proxy.client() as c:
        r = c.exchange("GET", "http://127.0.0.1:%d/" % port, [("Host", "x")])
        assert r.status == 502
        assert "close" in r.tokens("Connection"), r.headers
        closed, extra = c.wait_closed(3)
    assert closed and extra == b""
    with proxy.client() as c:
        r2 = c.exchange("GET", origin.url("/after"), [("Host", "x")])
    assert r2.status == 200 and r2.body == b"hello from origin: GET /after", r2


@pytest.mark.parametrize("raw", [
    b"garbage\r\n\r\n",
    b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nX-Bad : v\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nX-Nul: a\x00b\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
], ids=["garbage", "bad_status", "differing_cl", "bad_cl", "space_before_colon", "obs_fold", "nul",
        "te_chunked_twice"])
def test_malformed_response_is_502(proxy, origin, raw):
    origin.responder = lambda req: [raw, CLOSE]
    r = get(proxy, origin.url("/m"), origin.authority)
    assert_proxy_error(r, 502, "http_protocol_error")
    assert b"hello" not in r.body and b"ok" != r.body


def test_invalid_chunk_in_response_with_the_head_is_502(proxy, origin):
    """The bad chunk size comes in the same packet as the head: the proxy
    holds both before it has sent the client anything, so the response is
    one it cannot pass on: 502 with RFC 9209's http_response_transfer_coding
    (the transfer coding cannot be decoded; hopcache(8) ERROR RESPONSES)."""
    origin.responder = lambda req: [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
                                    CLOSE]
    r = get(proxy, origin.url("/chunk"), origin.authority)
    assert_proxy_error(r, 502, "http_response_transfer_coding")
    assert b"hello" not in r.body


def test_invalid_chunk_after_the_head_went_out_cuts_the_connection(proxy, origin):
    """The head has reached the client when the bad chunk size arrives: all
    that is left is to close, so the client sees the 200 and a chunked body
    that never ends (no last chunk)."""
    origin.responder = lambda req: [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", 0.3,
                                    b"zz\r\nworld\r\n0\r\n\r\n", CLOSE]
    with proxy.client() as c:
        c.request("GET", origin.url("/chunk2"), [("Host", origin.authority)])
        head = c.reader.read_until(b"\r\n\r\n", timeout=4)
        closed, data = c.wait_closed(4)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"transfer-encoding: chunked" in head.lower(), head
    assert closed
    assert data == b"5\r\nhello\r\n", "only the valid chunk, and no last chunk: %r" % data


def test_invalid_chunk_after_a_valid_one_in_the_same_read_is_a_cut_response(proxy, origin):
    """The head, a valid chunk and a bad chunk size arrive together (found by
    the soak test): the head and the valid chunk are already queued for the
    client when the bad size is seen, so the client must get them, then the
    close -- not an empty reply."""
    origin.responder = lambda req: [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    b"5\r\nhello\r\nzz\r\nworld\r\n", CLOSE]
    with proxy.client() as c:
        c.request("GET", origin.url("/chunk3"), [("Host", origin.authority)])
        closed, data = c.wait_closed(4)
    assert closed
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"transfer-encoding: chunked" in head.lower(), data[:300]
    assert body == b"5\r\nhello\r\n", "only the valid chunk, and no last chunk: %r" % body
    e = proxy.wait_access(lambda e: e.get("target", "").endswith("/chunk3"))
    assert e and e["outcome"] == "http_response_transfer_coding", proxy.read_access_log()


def test_truncated_response_in_one_read_is_a_cut_response(proxy, origin):
    """The head, 300 of 1000 bytes and the close arrive together: the client
    still gets the head and the 300 bytes, then the close (found by the soak
    test: closing at once dropped what was queued, an empty reply)."""
    origin.responder = lambda req: [http_response(200, [("Content-Length", "1000")]) + b"y" * 300, CLOSE]
    with proxy.client() as c:
        c.request("GET", origin.url("/trunc2"), [("Host", origin.authority)])
        closed, data = c.wait_closed(4)
    assert closed
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), data[:300]
    assert b"\r\ncontent-length: 1000" in head.lower(), head
    assert body == b"y" * 300, len(body)


def test_empty_response_is_502(proxy, origin):
    origin.responder = lambda req: None  # close without a byte
    r = get(proxy, origin.url("/e"), origin.authority, method="POST", body=b"x",
            headers=[("Content-Length", "1")])
    # RFC 9209 §2.3.12: an incomplete response (here none at all); a POST is
    # not retried on a fresh connection
    assert_proxy_error(r, 502, "http_response_incomplete")


def test_response_timeout_is_504(proxy_factory, origin):
    p = proxy_factory({"limits": {"upstream_timeout": "1"}})
    origin.responder = lambda req: [6.0, CLOSE]  # never answers in time
    r = get(p, origin.url("/slow"), origin.authority)
    assert_proxy_error(r, 504, "http_response_timeout")
    assert r.elapsed < 4, "504 took %.1fs with upstream_timeout=1" % r.elapsed


def test_upstream_stall_mid_body_closes_client(proxy_factory, origin):
    """Head and part of the body arrive, then nothing: after upstream_timeout the
    client's connection is closed with the body visibly incomplete."""
    p = proxy_factory({"limits": {"upstream_timeout": "1"}})
    origin.responder = lambda req: [http_response(200, [("Content-Length", "1000")]) + b"x" * 100, 6.0, CLOSE]
    with p.client(timeout=8) as c:
        c.request("GET", origin.url("/stall"), [("Host", origin.authority)])
        t0 = time.monotonic()
        closed, data = c.wait_closed(5)
        dt = time.monotonic() - t0
    assert closed, "client left hanging after the upstream stalled"
    assert dt < 4
    # the head went out with the first bytes (no store-and-forward), so the
    # stall can only cut the connection: 100 of the announced 1000 bytes
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), data[:300]
    assert b"\r\ncontent-length: 1000" in head.lower(), head
    assert body == b"x" * 100, len(body)


def test_truncated_response_not_presented_as_complete(proxy, origin):
    """The origin closes 300 bytes into a 1000-byte body, after the head has
    gone out (the pause: the outcome must not depend on whether the proxy
    sees the head and the close in one pass; see
    test_invalid_chunk_in_response_with_the_head_is_502 for that case)."""
    origin.responder = lambda req: [http_response(200, [("Content-Length", "1000")]) + b"y" * 300, 0.3, CLOSE]
    with proxy.client() as c:
        c.request("GET", origin.url("/trunc"), [("Host", origin.authority)])
        closed, data = c.wait_closed(4)
    assert closed, "the client connection must be closed when the upstream body is truncated"
    # the origin's Content-Length passes as is (conn.c: "a length passes as
    # is"): the client sees 300 of 1000 bytes, visibly incomplete
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), data[:300]
    assert b"\r\ncontent-length: 1000" in head.lower() and b"transfer-encoding" not in head.lower(), head
    assert body == b"y" * 300, len(body)


@pytest.mark.parametrize("listed", ["Content-Length", "Transfer-Encoding"])
def test_response_connection_listing_framing_is_502(proxy, origin, listed):
    origin.responder = lambda req: http_response(200, [("Connection", listed)], b"hello")
    r = get(proxy, origin.url("/c"), origin.authority)
    assert_proxy_error(r, 502, "http_protocol_error")


def test_response_cl_and_te(proxy, origin):
    """RFC 9112 §6.3 lets a recipient handle Content-Length with
    Transfer-Encoding as an error (a possible response-splitting attempt);
    hopcache does: 502 http_protocol_error, as for any response that breaks
    the framing rules (hopcache(8) ERROR RESPONSES), and the bytes are not
    passed on."""
    origin.responder = lambda req: [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    + b"5\r\nhello\r\n0\r\n\r\n", CLOSE]
    r = get(proxy, origin.url("/clte"), origin.authority)
    assert_proxy_error(r, 502, "http_protocol_error")
    assert b"hello" not in r.body


def test_response_header_too_large_is_502(proxy_factory, origin):
    p = proxy_factory({"limits": {"max_header_bytes": "4K"}})
    origin.responder = lambda req: http_response(200, [("X-Big", "b" * 8000)], b"body")
    r = get(p, origin.url("/big"), origin.authority)
    assert_proxy_error(r, 502, "http_protocol_error")
    assert not r.has("X-Big")


def test_response_too_many_headers_is_502(proxy_factory, origin):
    p = proxy_factory({"limits": {"max_headers": "20"}})
    origin.responder = lambda req: http_response(200, [("X-N%d" % i, "v") for i in range(40)], b"body")
    r = get(p, origin.url("/many"), origin.authority)
    assert_proxy_error(r, 502, "http_protocol_error")
    assert not r.has("X-N0")


def test_stale_pooled_connection_retried_for_get(proxy, origin):
    """The origin accepts the 2nd request on the pooled connection, then drops it:
    an idempotent GET is retried once on a fresh connection."""
    def handler(conn):
        req = conn.read_request()
        if req is None:
            return
        conn.send(http_response(200, [], ("first on %d" % conn.id).encode()))
        if conn.id == 0:
            conn.read_request()  # the next request on the pooled connection...
            return               # ...is dropped without an answer
        while True:
            req = conn.read_request()
            if req is None:
                return
            conn.send(http_response(200, [], ("more on %d" % conn.id).encode()))
    origin.handler = handler
    r1 = get(proxy, origin.url("/1"), origin.authority)
    assert r1.body == b"first on 0"
    r2 = get(proxy, origin.url("/2"), origin.authority)
    # the idle upstream connection is pooled (test_forwarding.py
    # test_upstream_connection_pooled): /2 goes out on it first
    assert origin.requests[1].conn_id == 0, "the upstream connection was not pooled: %r" % origin.requests
    assert r2.status == 200, "GET on a dead pooled connection must be retried once, got %r" % r2
    assert [q.target for q in origin.requests] == ["/1", "/2", "/2"]


def test_stale_pooled_connection_not_retried_for_post(proxy, origin):
    def handler(conn):
        req = conn.read_request()
        if req is None:
            return
        conn.send(http_response(200, [], b"first"))
        if conn.id == 0:
            conn.read_request()
            return
        while conn.read_request() is not None:
            conn.send(http_response(200, [], b"retried"))
    origin.handler = handler
    assert get(proxy, origin.url("/1"), origin.authority).body == b"first"
    r2 = get(proxy, origin.url("/post"), origin.authority, method="POST", body=b"once",
             headers=[("Content-Length", "4")])
    assert origin.requests[1].conn_id == 0, "the upstream connection was not pooled: %r" % origin.requests
    assert r2.status == 502, "a POST must not be retried automatically, got %r" % r2
    assert [q.target for q in origin.requests] == ["/1", "/post"]


def test_pooled_connection_closed_by_origin_is_not_reused(proxy, origin):
    origin.responder = lambda req: [http_response(200, [], b"bye"), 0.05, CLOSE]
    assert get(proxy, origin.url("/1"), origin.authority).body == b"bye"
    time.sleep(0.2)
    r = get(proxy, origin.url("/2"), origin.authority)
    assert r.status == 200 and r.body == b"bye"


# -- DNS (loopback fake resolver: nothing leaves the machine) ------------------------------

def dns_proxy(proxy_factory, fake_dns, tmp_path, **limits):
    conf = fake_dns.resolv_conf(str(tmp_path / "resolv.conf"))
    return proxy_factory({"upstream": {"resolv_conf": conf}, "limits": limits or {}})


def test_dns_nxdomain(proxy_factory, fake_dns, tmp_path):
    p = dns_proxy(proxy_factory, fake_dns, tmp_path)
    r = get(p, "http://no-such-host.invalid/", "no-such-host.invalid", timeout=10)
    assert_proxy_error(r, 502, "dns_error")


def test_dns_timeout(proxy_factory, fake_dns, tmp_path):
    fake_dns.drop.add("silent.test")
    p = dns_proxy(proxy_factory, fake_dns, tmp_path)
    r = get(p, "http://silent.test/", "silent.test", timeout=15)
    assert_proxy_error(r, 504, ("dns_timeout",))
    assert fake_dns.queries, "the proxy never asked the configured resolver"


def test_dns_failure_access_log(proxy_factory, fake_dns, tmp_path):
    p = dns_proxy(proxy_factory, fake_dns, tmp_path)
    get(p, "http://gone.invalid:8080/p", "gone.invalid", timeout=10)
    e = p.wait_access(lambda e: e.get("target") == "http://gone.invalid:8080/p")
    assert e, p.read_access_log()
    assert e["status"] == "502" and e["outcome"] == "dns_error"
