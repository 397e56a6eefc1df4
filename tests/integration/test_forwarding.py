"""Forwarding of plain http:// requests: what reaches the origin, what reaches
the client, framing, persistence, Via, Max-Forwards, Expect."""

import socket
import time

import pytest

from helpers import (CLOSE, Client, Origin, chunked, data_of, http_response, sha, wait_for)

# fields the proxy manages itself; everything else is end-to-end and must pass unchanged
PROXY_MANAGED = {"host", "via", "content-length", "transfer-encoding", "connection", "keep-alive",
                 "x-forwarded-for", "forwarded", "date", "age", "cache-status", "proxy-status"}


def e2e(headers):
    return [(k, v) for (k, v) in headers if k.lower() not in PROXY_MANAGED]


def hdrs(origin, *extra):
    return [("Host", origin.authority)] + list(extra)


# -- basic methods with curl ----------------------------------------------------

def test_curl_get(proxy, origin, curl):
    r = curl(proxy.port, origin.url("/hello?x=1"))
    assert r.rc == 0, r
    assert r.status == 200
    assert r.body == b"hello from origin: GET /hello?x=1"
    assert len(origin.requests) == 1
    req = origin.requests[0]
    assert req.start_line == b"GET /hello?x=1 HTTP/1.1"
    assert req.get_all("Host") == [origin.authority]
    assert not req.has("Proxy-Connection")


def test_curl_head(proxy, origin, curl):
    origin.responder = lambda req: http_response(200, [("Content-Length", "1234"), ("X-H", "1")])
    r = curl(proxy.port, origin.url("/h"), "-I")
    assert r.rc == 0, r
    assert r.status == 200
    assert r.get_all("Content-Length") == ["1234"], "HEAD response must keep the origin's Content-Length"
    assert origin.requests[0].method == "HEAD"


def test_curl_post_body(proxy, origin, curl, tmp_path):
    payload = data_of(100_000)
    f = tmp_path / "payload"
    f.write_bytes(payload)
    r = curl(proxy.port, origin.url("/upload"), "--data-binary", "@%s" % f,
             "-H", "Content-Type: application/octet-stream", "-H", "Expect:")
    assert r.rc == 0, r
    assert r.status == 200
    req = origin.requests[0]
    assert req.method == "POST"
    assert req.body == payload
    # curl sent Content-Length; the proxy passes the length on as is
    assert req.get_all("Content-Length") == [str(len(payload))], req.raw_head
    assert not req.has("Transfer-Encoding"), req.raw_head
    assert req.get("Content-Type") == "application/octet-stream"


def test_large_response_intact(proxy, origin, curl):
    body = data_of(8 * 1024 * 1024)
    origin.responder = lambda req: http_response(200, [], body)
    r = curl(proxy.port, origin.url("/big"), timeout=20)
    assert r.rc == 0, r
    assert len(r.body) == len(body)
    assert sha(r.body) == sha(body)


# -- the request line and Host sent upstream ---------------------------------------

def test_host_rewritten_from_uri(proxy, origin):
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/p"), [("Host", "evil.example:81"), ("Accept", "*/*")])
    assert r.status == 200
    req = origin.requests[0]
    assert req.get_all("Host") == [origin.authority], "Host must come from the absolute URI only"
    assert b"evil.example" not in req.raw_head


def test_host_added_for_http10_without_host(proxy, origin):
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/p"), [], version="HTTP/1.0")
    assert r.status == 200
    assert origin.requests[0].get_all("Host") == [origin.authority]


def test_origin_form_sent_upstream_byte_exact(proxy, origin):
    path = "/a/b;p=1/%7Euser?q=1&r=%2F&s=a+b&empty="
    with proxy.client() as c:
        r = c.exchange("GET", origin.url(path), hdrs(origin))
    assert r.status == 200
    req = origin.requests[0]
    assert req.target == path
    assert req.version == "HTTP/1.1"


@pytest.mark.parametrize("suffix,expected", [("", "/"), ("?x=1", "/?x=1")])
def test_empty_path_becomes_slash(proxy, origin, suffix, expected):
    with proxy.client() as c:
        r = c.exchange("GET", "http://%s%s" % (origin.authority, suffix), hdrs(origin))
    assert r.status == 200
    assert origin.requests[0].target == expected


def test_scheme_is_case_insensitive(proxy, origin):
    with proxy.client() as c:
        r = c.exchange("GET", "HTTP://%s/x" % origin.authority, hdrs(origin))
    assert r.status == 200, "RFC 3986 §3.1: schemes are case-insensitive"
    assert origin.requests[0].target == "/x"


def test_http10_request_forwarded_as_http11(proxy, origin):
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/old"), hdrs(origin), version="HTTP/1.0")
    assert r.status == 200
    assert origin.requests[0].start_line == b"GET /old HTTP/1.1"
    assert r.version == "HTTP/1.1", "RFC 9110 §6.2: an intermediary sends its own version"


def test_origin_form_to_proxy_is_400(proxy, origin):
    with proxy.client() as c:
        r = c.exchange("GET", "/local", hdrs(origin))
    assert r.status == 400
    time.sleep(0.1)
    assert origin.bytes_received == 0


# -- Via ----------------------------------------------------------------------------

def test_via_added_to_request(proxy, origin):
    with proxy.client() as c:
        c.exchange("GET", origin.url("/"), hdrs(origin))
    req = origin.requests[0]
    assert req.get_all("Via") == ["1.1 hopcache"]


def test_via_appended_after_existing_request_via(proxy, origin):
    with proxy.client() as c:
        c.exchange("GET", origin.url("/"), hdrs(origin, ("Via", "1.0 alpha, 1.1 beta"), ("X-Mid", "m"),
                                                 ("Via", "1.1 gamma")))
    req = origin.requests[0]
    assert req.joined("Via") == "1.0 alpha, 1.1 beta, 1.1 gamma, 1.1 hopcache"
    assert req.get_all("Via")[-1].endswith("1.1 hopcache")
    assert req.get("X-Mid") == "m"


def test_via_added_to_response(proxy, origin):
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/"), hdrs(origin))
    assert r.get_all("Via") == ["1.1 hopcache"]


def test_via_appended_after_existing_response_via(proxy, origin):
    origin.responder = lambda req: http_response(200, [("Via", "1.1 upstream-cache"), ("X-A", "1")], b"x")
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/"), hdrs(origin))
    assert r.joined("Via") == "1.1 upstream-cache, 1.1 hopcache"


def test_via_pseudonym_from_config(proxy_factory, origin):
    p = proxy_factory({"proxy": {"via": "edge-7"}})
    with p.client() as c:
        r = c.exchange("GET", origin.url("/"), hdrs(origin))
    assert origin.requests[0].get_all("Via") == ["1.1 edge-7"]
    assert r.get_all("Via") == ["1.1 edge-7"]


# -- end-to-end fields --------------------------------------------------------------

def test_request_end_to_end_fields_unchanged_in_order(proxy, origin):
    sent = [("X-A", "1"), ("Accept", "text/html, */*;q=0.1"), ("x-lower-case", "v"),
            ("X-A", "2"), ("Cookie", "a=b"), ("Cookie", "c=d"), ("X-Empty", ""),
            ("User-Agent", "test/1.0 (like \"nothing\")"), ("X-Tab", "a\tb"), ("X-A", "3"),
            ("Accept-Encoding", "gzip"), ("Max-Forwards", "7"), ("If-None-Match", "\"e1\", \"e2\"")]
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/"), [("Host", origin.authority)] + sent)
    assert r.status == 200
    assert e2e(origin.requests[0].headers) == sent


def test_response_end_to_end_fields_unchanged_in_order(proxy, origin):
    fields = [("Set-Cookie", "a=1; Path=/"), ("X-B", "1"), ("Set-Cookie", "b=2; HttpOnly"),
              ("Cache-Control", "no-store"), ("x-lower", "v"), ("ETag", "\"xyz\""),
              ("X-B", "2"), ("Content-Type", "text/plain; charset=utf-8"), ("X-Empty", "")]
    origin.responder = lambda req: http_response(200, fields, b"body")
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/"), hdrs(origin))
    assert r.status == 200
    assert r.body == b"body"
    assert e2e(r.headers) == fields


# -- persistence and pipelining ---------------------------------------------------------

def test_keep_alive_client_connection_reused(proxy, origin):
    with proxy.client() as c:
        for i in range(3):
            r = c.exchange("GET", origin.url("/k%d" % i), hdrs(origin))
            assert r.status == 200
            assert r.body == ("hello from origin: GET /k%d" % i).encode()
            assert "close" not in r.tokens("Connection")
    assert [q.target for q in origin.requests] == ["/k0", "/k1", "/k2"]


def test_pipelined_requests_answered_in_order(proxy, origin):
    def responder(req):
        body = ("resp %s %s" % (req.target, req.body.decode())).encode()
        if req.target == "/1":
            return [0.3, http_response(200, [], body)]
        return http_response(200, [], body)
    origin.responder = responder
    reqs = (b"GET " + origin.url("/1").encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n" +
            b"POST " + origin.url("/2").encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
            b"GET " + origin.url("/3").encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    with proxy.client() as c:
        c.send(reqs)
        bodies = [c.read_response().body for _ in range(3)]
    assert bodies == [b"resp /1 ", b"resp /2 hello", b"resp /3 "]
    assert [(q.method, q.target, q.body) for q in origin.requests] == \
        [("GET", "/1", b""), ("POST", "/2", b"hello"), ("GET", "/3", b"")]


def test_http10_client_without_keepalive_gets_close(proxy, origin):
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/"), hdrs(origin), version="HTTP/1.0")
        assert r.status == 200
        closed, extra = c.wait_closed(3)
    assert closed, "HTTP/1.0 client without keep-alive: the proxy must close after the response"
    assert extra == b""


def test_http10_client_never_gets_chunked(proxy, origin):
    body = data_of(5000)
    origin.responder = lambda req: http_response(
        200, [("Transfer-Encoding", "chunked")], chunked([body[:1000], body[1000:]]))
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/"), hdrs(origin), version="HTTP/1.0")
    assert r.status == 200
    assert not r.has("Transfer-Encoding"), "RFC 9112 §6.1: no Transfer-Encoding to an HTTP/1.0 client"
    assert r.body == body


def test_connection_close_from_client_honoured(proxy, origin):
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/"), hdrs(origin, ("Connection", "close")))
        assert r.status == 200
        closed, extra = c.wait_closed(3)
    assert closed and extra == b""


def test_origin_closing_does_not_break_client_connection(proxy, origin):
    """Connection is hop-by-hop (RFC 9110 §7.6.1): the origin closing its
    connection does not close the client's, which the next request reuses
    (on a new upstream connection)."""
    origin.responder = lambda req: http_response(200, [("Connection", "close")], b"one")
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/a"), hdrs(origin))
        assert r.body == b"one"
        assert not r.has("Connection"), "the origin's close is not the client's: %r" % r.headers
        r2 = c.exchange("GET", origin.url("/b"), hdrs(origin))
    assert r2.status == 200 and r2.body == b"one"
    assert len(origin.conns) == 2


def test_upstream_connection_pooled(proxy, origin):
    for i in range(3):
        with proxy.client() as c:
            r = c.exchange("GET", origin.url("/pool%d" % i), hdrs(origin))
            assert r.status == 200
    assert len(origin.requests) == 3
    assert len(origin.conns) == 1, "idle keep-alive upstream connections should be reused"


def test_pool_idle_timeout_closes_upstream(proxy_factory, origin):
    p = proxy_factory({"upstream": {"pool_idle_timeout": "1"}})
    eof_at = {}

    def handler(conn):
        while conn.read_request() is not None:
            conn.send(http_response(200, [], b"x"))
            t = time.monotonic()
        eof_at["dt"] = time.monotonic() - t
    origin.handler = handler
    with p.client() as c:
        assert c.exchange("GET", origin.url("/"), hdrs(origin)).status == 200
    assert wait_for(lambda: "dt" in eof_at, timeout=4), "idle pooled upstream connection never closed"
    assert 0.7 <= eof_at["dt"] <= 3.5, eof_at


def test_pool_disabled(proxy_factory, origin):
    p = proxy_factory({"upstream": {"pool_max_idle": "0"}})
    for i in range(2):
        with p.client() as c:
            assert c.exchange("GET", origin.url("/%d" % i), hdrs(origin)).status == 200
    assert len(origin.conns) == 2


# -- request and response framing ---------------------------------------------------

def test_chunked_request_body_reframed(proxy, origin):
    body = data_of(70000)
    raw = chunked([body[:1], body[1:40000], body[40000:]], trailers=[b"X-Trailer: t"], ext=b";name=val")
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Trailer\r\n"
            "X-After: 1\r\n\r\n" % origin.url("/c")).encode()
    with proxy.client() as c:
        c.send(head)
        c.send(raw[:10])
        time.sleep(0.05)
        c.send(raw[10:])
        r = c.read_response()
    assert r.status == 200
    req = origin.requests[0]
    assert req.body == body
    # streamed, not buffered to learn its length (conn.c send_request): it
    # goes on chunked, re-framed (the chunk extension and the trailer
    # section are this hop's, RFC 9112 §7.1.1, §7.1.2)
    assert req.framing == "chunked", req.raw_head
    assert req.tokens("Transfer-Encoding") == ["chunked"] and not req.has("Content-Length"), req.raw_head
    assert b"name=val" not in req.body_raw and b"X-Trailer" not in req.body_raw, req.body_raw[-200:]
    assert not req.has("Trailer")
    assert req.get("X-After") == "1"


def test_chunked_response_delivered_intact(proxy, origin):
    body = data_of(30000)
    raw = chunked([body[:7], body[7:20000], body[20000:]], trailers=[b"X-T: 1"], ext=b"; a=b")
    origin.responder = lambda req: [
        http_response(200, [("Transfer-Encoding", "chunked"), ("X-A", "1")], b"") + raw[:50],
        0.05, raw[50:]]
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/"), hdrs(origin))
        assert r.status == 200
        assert r.body == body
        assert r.get("X-A") == "1"
        # the connection is still usable
        r2 = c.exchange("GET", origin.url("/again"), hdrs(origin))
        assert r2.body == body


def test_close_delimited_response_delivered_intact(proxy, origin):
    body = data_of(50000)
    origin.responder = lambda req: [b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n" + body[:100], 0.05, body[100:], CLOSE]
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/"), hdrs(origin))
    assert r.status == 200
    assert r.body == body


def test_http10_origin_close_delimited(proxy, origin):
    origin.responder = lambda req: [b"HTTP/1.0 200 OK\r\nX-Old: 1\r\n\r\nold origin body", CLOSE]
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/"), hdrs(origin))
    assert r.status == 200
    assert r.body == b"old origin body"
    assert r.version == "HTTP/1.1"


@pytest.mark.parametrize("status,extra", [(204, []), (304, [("Content-Length", "1234"), ("ETag", "\"a\"")])])
def test_no_body_statuses(proxy, origin, status, extra):
    def responder(req):
        if req.target == "/nobody":
            return http_response(status, extra + [("X-S", str(status))], cl=False)
        return http_response(200, [], b"next-ok")
    origin.responder = responder
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/nobody"), hdrs(origin))
        assert r.status == status and r.body == b""
        assert r.get("X-S") == str(status)
        assert not r.has("Transfer-Encoding")
        r2 = c.exchange("GET", origin.url("/next"), hdrs(origin))
    assert r2.body == b"next-ok", "the %d response must not swallow the next response" % status


def test_head_response_has_no_body(proxy, origin):
    origin.responder = lambda req: (http_response(200, [("Content-Length", "1000")])
                                    if req.method == "HEAD" else http_response(200, [], b"full"))
    with proxy.client() as c:
        c.request("HEAD", origin.url("/"), hdrs(origin))
        r = c.read_response("HEAD")
        assert r.status == 200 and r.get("Content-Length") == "1000"
        r2 = c.exchange("GET", origin.url("/"), hdrs(origin))
    assert r2.body == b"full"


def test_1xx_forwarded_to_http11_client(proxy, origin):
    origin.responder = lambda req: [b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", 0.05,
                                    http_response(200, [], b"final")]
    with proxy.client() as c:
        c.request("GET", origin.url("/"), hdrs(origin))
        interim, final = c.read_final()
    assert [r.status for r in interim] == [103]
    assert interim[0].get("Link") == "</s.css>; rel=preload"
    assert final.status == 200 and final.body == b"final"


def test_1xx_not_forwarded_to_http10_client(proxy, origin):
    origin.responder = lambda req: [b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n",
                                    http_response(200, [], b"final")]
    with proxy.client() as c:
        c.request("GET", origin.url("/"), hdrs(origin), version="HTTP/1.0")
        interim, final = c.read_final()
    assert interim == [], "RFC 9110 §15.2: no 1xx to an HTTP/1.0 client"
    assert final.status == 200 and final.body == b"final"


# -- Expect: 100-continue --------------------------------------------------------------

def test_expect_100_continue_with_curl(proxy, origin, curl, tmp_path):
    payload = data_of(2 * 1024 * 1024)
    f = tmp_path / "big"
    f.write_bytes(payload)
    t0 = time.monotonic()
    r = curl(proxy.port, origin.url("/up"), "--data-binary", "@%s" % f, "-H", "Expect: 100-continue",
             "--expect100-timeout", "6", timeout=20)
    elapsed = time.monotonic() - t0
    assert r.rc == 0, r
    assert r.status == 200
    assert origin.requests[0].body == payload
    assert elapsed < 4, "curl waited for a 100 Continue that never came (%.1fs)" % elapsed


def test_expect_100_continue_raw(proxy, origin):
    with proxy.client() as c:
        c.send(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
                % origin.url("/e")).encode())
        r = c.read_response(timeout=3)
        assert r.status == 100, "expected 100 Continue before sending the body, got %r" % r
        c.send(b"hello")
        interim, final = c.read_final()
    assert final.status == 200
    assert origin.requests[0].body == b"hello"


def test_expect_100_continue_final_status_without_body(proxy, origin):
    """Origin refuses before the body: client gets the 417/4xx, origin never the body."""
    origin.auto_continue = False
    origin.responder = None

    def handler(conn):
        conn.reader.read_until(b"\r\n\r\n", timeout=5)
        conn.send(http_response(413, [("Connection", "close")], b"too big"))
    origin.handler = handler
    with proxy.client() as c:
        c.send(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n"
                % origin.url("/e")).encode())
        interim, final = c.read_final(timeout=5)
    assert final.status == 413
    assert final.body == b"too big"


# -- Max-Forwards ----------------------------------------------------------------------

@pytest.mark.parametrize("method", ["OPTIONS", "TRACE"])
def test_max_forwards_zero_answered_by_proxy(proxy, origin, method):
    with proxy.client() as c:
        r = c.exchange(method, origin.url("/mf"), hdrs(origin, ("Max-Forwards", "0")))
    assert r.status == 200, "RFC 9110 §7.6.2: at Max-Forwards 0 the proxy answers as final recipient"
    time.sleep(0.1)
    assert origin.bytes_received == 0


@pytest.mark.parametrize("method,sent,expected", [("OPTIONS", "3", "2"), ("TRACE", "1", "0"),
                                                  ("OPTIONS", "10", "9")])
def test_max_forwards_decremented(proxy, origin, method, sent, expected):
    with proxy.client() as c:
        r = c.exchange(method, origin.url("/mf"), hdrs(origin, ("Max-Forwards", sent)))
    assert r.status == 200
    assert origin.requests[0].get_all("Max-Forwards") == [expected]


def test_max_forwards_ignored_for_get(proxy, origin):
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/mf"), hdrs(origin, ("Max-Forwards", "0")))
    assert r.status == 200
    assert origin.requests[0].get_all("Max-Forwards") == ["0"]


# -- name resolution (loopback fake DNS only) -------------------------------------------

def test_origin_by_name(proxy_factory, origin, fake_dns, tmp_path):
    fake_dns.records["origin.test"] = {"A": ["127.0.0.1"]}
    p = proxy_factory({"upstream": {"resolv_conf": fake_dns.resolv_conf(str(tmp_path / "resolv.conf"))}})
    with p.client() as c:
        r = c.exchange("GET", "http://origin.test:%d/n" % origin.port, [("Host", "origin.test")])
    assert r.status == 200, r
    assert origin.requests[0].get_all("Host") == ["origin.test:%d" % origin.port]


def test_origin_by_name_ipv6(proxy_factory, origin_factory, fake_dns, tmp_path):
    try:
        o6 = origin_factory(family=socket.AF_INET6, host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    fake_dns.records["six.test"] = {"AAAA": ["::1"]}
    p = proxy_factory({"upstream": {"resolv_conf": fake_dns.resolv_conf(str(tmp_path / "resolv.conf"))}})
    with p.client() as c:
        r = c.exchange("GET", "http://six.test:%d/v6" % o6.port, [("Host", "six.test")])
    assert r.status == 200, r
    assert o6.requests[0].target == "/v6"


def test_ipv6_literal_origin(proxy, origin_factory):
    try:
        o6 = origin_factory(family=socket.AF_INET6, host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    with proxy.client() as c:
        r = c.exchange("GET", "http://[::1]:%d/lit" % o6.port, [("Host", "[::1]:%d" % o6.port)])
    assert r.status == 200, r
    assert o6.requests[0].get_all("Host") == ["[::1]:%d" % o6.port]


def test_each_resolved_address_tried(proxy_factory, origin, fake_dns, tmp_path):
    """The name has a dead IPv6 address and a live IPv4 one: the proxy must fall back."""
    fake_dns.records["dual.test"] = {"AAAA": ["::1"], "A": ["127.0.0.1"]}
    p = proxy_factory({"upstream": {"resolv_conf": fake_dns.resolv_conf(str(tmp_path / "resolv.conf"))}})
    with p.client() as c:
        r = c.exchange("GET", "http://dual.test:%d/d" % origin.port, [("Host", "dual.test")])
    assert r.status == 200, r
    assert origin.requests[0].target == "/d"


# -- robustness ----------------------------------------------------------------------------

def test_many_pipelined_requests(proxy, origin):
    n = 50
    payload = b"".join(b"GET " + origin.url("/p%d" % i).encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n"
                       for i in range(n))
    with proxy.client() as c:
        c.send(payload)
        bodies = [c.read_response().body for _ in range(n)]
    assert bodies == [("hello from origin: GET /p%d" % i).encode() for i in range(n)]


def test_client_abort_mid_response(proxy, origin):
    """The client goes away in the middle of a large response: the upstream
    connection is dropped (not returned to the pool half-read) and service goes on."""
    big = data_of(8 * 1024 * 1024)

    def responder(req):
        if req.target == "/big":
            return [http_response(200, [], big)]
        return http_response(200, [], b"small")
    origin.responder = responder
    c = proxy.client()
    c.request("GET", origin.url("/big"), hdrs(origin))
    c.reader.read_exact(1000)
    c.close()
    time.sleep(0.2)
    with proxy.client() as c2:
        r = c2.exchange("GET", origin.url("/small"), hdrs(origin))
    assert r.status == 200 and r.body == b"small"
    assert origin.requests[-1].conn_id != origin.requests[0].conn_id, \
        "a half-read upstream connection went back into the pool"


def worker_rss_kib(proxy):
    total = 0
    for pid in proxy.workers():
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def test_slow_reader_back_pressure(proxy, origin):
    """A client that does not read must not make the proxy buffer a whole large
    response: the origin gets stalled after a bounded amount."""
    size = 64 * 1024 * 1024
    chunk = data_of(256 * 1024)
    sent = [0]

    def handler(conn):
        if conn.read_request() is None:
            return
        conn.send(http_response(200, [("Content-Length", str(size))]))
        while sent[0] < size:
            conn.send(chunk)
            sent[0] += len(chunk)
    origin.handler = handler
    # the worker has started and answers (the master logs "listening" first)
    with proxy.client() as c:
        assert c.exchange("GET", "/hopcache/status", [("Host", "127.0.0.1")]).status == 200
    before = worker_rss_kib(proxy)
    assert before > 0
    with proxy.client(timeout=30) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        c.request("GET", origin.url("/huge"), hdrs(origin))
        last, stalled_at = -1, None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            time.sleep(0.3)
            if sent[0] == last:
                stalled_at = sent[0]
                break
            last = sent[0]
        during = worker_rss_kib(proxy)
        r = c.read_response(timeout=30)
    assert len(r.body) == size
    assert stalled_at is not None and stalled_at < 24 * 1024 * 1024, \
        "the origin could push %d bytes to a client that read nothing" % (stalled_at or sent[0])
    assert during - before < 24 * 1024, "worker RSS grew %d KiB while the client was not reading" % (during - before)


def test_extra_bytes_after_response_do_not_poison_the_pool(proxy, origin):
    """The origin sends more than Content-Length: the surplus must never be taken
    as the answer to a later request on a reused upstream connection."""
    first = [True]

    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            if first[0]:
                first[0] = False
                conn.send(http_response(200, [], b"hello") +
                          b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON")
            else:
                conn.send(http_response(200, [], b"fresh"))
    origin.handler = handler
    with proxy.client() as c:
        r1 = c.exchange("GET", origin.url("/1"), hdrs(origin))
        assert r1.body == b"hello"
        time.sleep(0.1)
        r2 = c.exchange("GET", origin.url("/2"), hdrs(origin))
    assert r2.body != b"POISON", "a response left over on a pooled connection answered the next request"
    assert r2.body == b"fresh"


def test_chunked_body_containing_a_request_is_just_data(proxy, origin):
    inner = ("\r\n0\r\n\r\nGET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (origin.url("/smuggled"), origin.authority)).encode()
    body = b"prefix" + inner + b"suffix"
    with proxy.client() as c:
        c.send(("POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % origin.url("/c")).encode()
               + chunked([body]))
        r = c.read_response()
    assert r.status == 200
    time.sleep(0.1)
    assert [q.target for q in origin.requests] == ["/c"]
    assert origin.requests[0].body == body


def test_requests_after_connection_close_are_ignored(proxy, origin):
    with proxy.client() as c:
        c.send(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                "GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % (origin.url("/1"), origin.url("/2"))).encode())
        closed, data = c.wait_closed(3)
    assert closed
    assert data.count(b"HTTP/1.1 200") == 1
    assert [q.target for q in origin.requests] == ["/1"]


def test_http10_keep_alive_is_not_honoured(proxy, origin):
    """RFC 9112 §9.3: "A proxy server MUST NOT maintain a persistent
    connection with an HTTP/1.0 client", Connection: keep-alive or not."""
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/1"), hdrs(origin, ("Connection", "keep-alive")), version="HTTP/1.0")
        assert r.status == 200
        assert "keep-alive" not in r.tokens("Connection"), r.headers
        assert "close" in r.tokens("Connection"), r.headers
        closed, extra = c.wait_closed(3)
    assert closed, "an HTTP/1.0 client connection was kept open after the response"
    assert extra == b""
    assert [q.target for q in origin.requests] == ["/1"]


def test_early_response_while_uploading(proxy, origin):
    """The origin answers (and closes) before the client finished a large upload:
    the client gets the answer; nothing hangs."""
    origin.auto_continue = False

    def handler(conn):
        conn.reader.read_until(b"\r\n\r\n", timeout=5)
        conn.send(http_response(403, [("Connection", "close")], b"denied early"))
        time.sleep(0.2)
    origin.handler = handler
    body = data_of(8 * 1024 * 1024)
    with proxy.client(timeout=8) as c:
        c.send(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (origin.url("/up"), len(body))).encode())
        import threading
        err = []

        def up():
            try:
                c.sock.sendall(body)
            except OSError as e:
                err.append(e)
        t = threading.Thread(target=up, daemon=True)
        t.start()
        r = c.read_response(timeout=8)
        assert r.status == 403 and r.body == b"denied early"
    t.join(5)


def test_many_headers_within_default_limits(proxy, origin):
    fields = [("X-F%02d" % i, "v%d" % i) for i in range(90)]
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/"), hdrs(origin, *fields))
    assert r.status == 200
    assert e2e(origin.requests[0].headers) == fields


def test_head_response_with_chunked_header_has_no_body(proxy, origin):
    origin.responder = lambda req: (http_response(200, [("Transfer-Encoding", "chunked")], cl=False)
                                    if req.method == "HEAD" else http_response(200, [], b"after-head"))
    with proxy.client() as c:
        c.request("HEAD", origin.url("/"), hdrs(origin))
        r = c.read_response("HEAD", timeout=3)
        assert r.status == 200
        r2 = c.exchange("GET", origin.url("/"), hdrs(origin))
    assert r2.body == b"after-head"


def test_304_with_chunked_header_has_no_body(proxy, origin):
    origin.responder = lambda req: (http_response(304, [("Transfer-Encoding", "chunked"), ("ETag", "\"e\"")], cl=False)
                                    if req.target == "/cond" else http_response(200, [], b"after-304"))
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/cond"), hdrs(origin, ("If-None-Match", "\"e\"")))
        assert r.status == 304 and r.body == b""
        r2 = c.exchange("GET", origin.url("/next"), hdrs(origin))
    assert r2.body == b"after-304"


def test_empty_reason_phrase_accepted(proxy, origin):
    origin.responder = lambda req: b"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok"
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/"), hdrs(origin))
    assert r.status == 200 and r.body == b"ok"


def test_get_with_body_forwarded(proxy, origin):
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/q"), hdrs(origin, ("Content-Length", "7")), b"payload")
        assert r.status == 200
        r2 = c.exchange("GET", origin.url("/q2"), hdrs(origin))
    assert origin.requests[0].body == b"payload"
    assert r2.status == 200 and origin.requests[1].target == "/q2"


def test_many_tiny_chunks(proxy, origin):
    body = data_of(5000)
    raw = chunked([body[i:i + 1] for i in range(len(body))])
    origin.responder = lambda req: http_response(200, [("Transfer-Encoding", "chunked")], raw)
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/"), hdrs(origin))
    assert r.body == body
