"""Request-smuggling ambiguities: each is refused with 400 and the connection is
closed; the origin receives nothing (not even a request smuggled behind it);
the worker survives and the next connection is served."""

import time

import pytest

# {T} is replaced with the origin's absolute URL, {H} with its authority.
SMUGGLED = "GET {U}/smuggled HTTP/1.1\r\nHost: {H}\r\n\r\n"

CASES = {
    "cl_and_te": "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_and_cl": "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    "two_differing_cl": "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "cl_list_differing": "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length: 5, 6\r\n\r\nhello!",
    "cl_not_a_number": "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length: abc\r\n\r\n",
    "cl_negative": "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length: -1\r\n\r\n",
    "cl_plus_sign": "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length: +5\r\n\r\nhello",
    "cl_hex": "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length: 0x5\r\n\r\nhello",
    "cl_inner_space": "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length: 1 0\r\n\r\n0123456789",
    "cl_overflow": "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
    "cl_empty": "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length:\r\n\r\n",
    "te_gzip": "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: gzip\r\n\r\nxxxx",
    "te_chunked_chunked": "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    "te_two_fields_chunked": "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_chunked_then_identity": "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "te_xchunked": "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "te_in_http10": "POST {T} HTTP/1.0\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_space_before_colon": "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    "obs_fold": "GET {T} HTTP/1.1\r\nHost: {H}\r\nX-Folded: a\r\n  b\r\n\r\n",
    "obs_fold_te": "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\nabc",
    "leading_ws_first_field": "GET {T} HTTP/1.1\r\n Host: {H}\r\n\r\n",
    "space_before_colon": "GET {T} HTTP/1.1\r\nHost: {H}\r\nX-Foo : bar\r\n\r\n",
    "tab_before_colon": "GET {T} HTTP/1.1\r\nHost: {H}\r\nX-Foo\t: bar\r\n\r\n",
    "bare_cr_in_value": "GET {T} HTTP/1.1\r\nHost: {H}\r\nX-Foo: a\rb\r\n\r\n",
    "bare_cr_line_end": "GET {T} HTTP/1.1\r\nHost: {H}\rX-Foo: b\r\n\r\n",
    "nul_in_value": "GET {T} HTTP/1.1\r\nHost: {H}\r\nX-Foo: a\x00b\r\n\r\n",
    "ctl_in_value": "GET {T} HTTP/1.1\r\nHost: {H}\r\nX-Foo: a\x01b\r\n\r\n",
    "del_in_value": "GET {T} HTTP/1.1\r\nHost: {H}\r\nX-Foo: a\x7fb\r\n\r\n",
    "nul_in_target": "GET {T}\x00x HTTP/1.1\r\nHost: {H}\r\n\r\n",
    "invalid_method_token": "G(T {T} HTTP/1.1\r\nHost: {H}\r\n\r\n",
    "method_with_ctl": "GE\x01T {T} HTTP/1.1\r\nHost: {H}\r\n\r\n",
    "invalid_field_name_space": "GET {T} HTTP/1.1\r\nHost: {H}\r\nX Foo: bar\r\n\r\n",
    "invalid_field_name_quote": "GET {T} HTTP/1.1\r\nHost: {H}\r\nX\"Foo: bar\r\n\r\n",
    "empty_field_name": "GET {T} HTTP/1.1\r\nHost: {H}\r\n: bar\r\n\r\n",
    "no_colon": "GET {T} HTTP/1.1\r\nHost: {H}\r\nX-NoColon\r\n\r\n",
    "trailing_space_after_version": "GET {T} HTTP/1.1 \r\nHost: {H}\r\n\r\n",
    "lowercase_version": "GET {T} http/1.1\r\nHost: {H}\r\n\r\n",
    "two_hosts": "GET {T} HTTP/1.1\r\nHost: {H}\r\nHost: other.example\r\n\r\n",
    "http11_without_host": "GET {T} HTTP/1.1\r\nX-A: 1\r\n\r\n",
}

# body errors: the head may already be on its way upstream when the chunk is seen,
# so for these the origin may see a head but never a complete request.
BODY_CASES = {
    "chunk_size_not_hex": "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk_size_overflow": "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000000001\r\nx\r\n0\r\n\r\n",
    "chunk_size_negative": "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n",
    "chunk_size_leading_space": "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n",
    "chunk_size_0x": "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
    "chunk_data_too_long": "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
    "chunk_missing_crlf": "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    "chunk_bare_lf_after_data": "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n",
}


def render(tmpl, origin):
    return tmpl.format(T=origin.url("/target"), U="http://" + origin.authority, H=origin.authority)


def check_rejected(proxy, origin, payload, allow_head_upstream=False):
    with proxy.client() as c:
        c.send(payload)
        closed, data = c.wait_closed(4)
        assert closed, "connection left open after a smuggling attempt; got %r" % data[:300]
    assert data.startswith(b"HTTP/1.1 400 "), "expected a 400 then close, got %r" % data[:300]
    # exactly one response: whatever followed the bad request was not processed
    assert data.count(b"HTTP/1.") == 1, "more than one response: %r" % data[:600]
    time.sleep(0.1)
    assert not any("/smuggled" in (r.target or "") for r in origin.requests), "smuggled request reached origin"
    if allow_head_upstream:
        assert origin.complete_requests() == [], "origin received a complete request: %r" % origin.requests
    else:
        assert origin.bytes_received == 0, "origin received bytes: %r" % [bytes(c.received[:300]) for c in origin.conns]
    # the worker survives: a normal request on a new connection works
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/after"), [("Host", origin.authority)])
    assert r.status == 200
    assert origin.requests[-1].target == "/after"


@pytest.mark.parametrize("name", sorted(CASES))
def test_rejected(proxy, origin, name):
    payload = render(CASES[name] + SMUGGLED, origin).encode("latin-1")
    check_rejected(proxy, origin, payload)


@pytest.mark.parametrize("name", sorted(BODY_CASES))
def test_rejected_body(proxy, origin, name):
    payload = render(BODY_CASES[name] + SMUGGLED, origin).encode("latin-1")
    check_rejected(proxy, origin, payload, allow_head_upstream=True)


def test_http09_rejected(proxy, origin):
    # a request line without a version is an invalid request line: 400 and
    # close (hopcache(8) ERROR RESPONSES), like every case above
    with proxy.client() as c:
        c.send(("GET %s\r\n" % origin.url("/nine")).encode())
        closed, data = c.wait_closed(4)
    assert closed
    assert data.startswith(b"HTTP/1.1 400 "), "HTTP/0.9 must be rejected, got %r" % data[:200]
    with proxy.client() as c:
        c.send(b"GET /\r\n")
        closed, data = c.wait_closed(4)
    assert closed
    assert data.startswith(b"HTTP/1.1 400 "), data[:200]
    time.sleep(0.1)
    assert origin.bytes_received == 0


def test_valid_variants_accepted(proxy, origin):
    """Guard against over-strictness: these are all valid and must be forwarded."""
    u, h = origin.url("/ok"), origin.authority
    cases = [
        "POST %s HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: Chunked\r\n\r\n5;ext=\"q\"\r\nhello\r\n0\r\n\r\n" % (u, h),
        "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 005\r\n\r\nhello" % (u, h),
        "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length:   5  \r\n\r\nhello" % (u, h),
        "POST %s HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\nA\r\nhellohello\r\n0\r\nX-T: 1\r\n\r\n" % (u, h),
        "GET %s HTTP/1.1\r\nHost: %s\r\nX-Tab:\tv\t\r\nX-Latin: caf\xe9\r\n\r\n" % (u, h),
    ]
    bodies = [b"hello", b"hello", b"hello", b"hellohello", b""]
    for payload, body in zip(cases, bodies):
        n = len(origin.requests)
        with proxy.client() as c:
            c.send(payload.encode("latin-1"))
            r = c.read_response()
        assert r.status == 200, "valid request refused: %r -> %r" % (payload, r)
        assert origin.requests[n].body == body


def test_cl_te_on_same_connection_after_good_request(proxy, origin):
    """A good request, then a CL+TE one on the same connection: the first is
    answered, the second refused, nothing behind it reaches the origin."""
    good = "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (origin.url("/good"), origin.authority)
    bad = render(CASES["cl_and_te"] + SMUGGLED, origin)
    with proxy.client() as c:
        c.send(good.encode())
        r = c.read_response()
        assert r.status == 200
        c.send(bad.encode())
        r2 = c.read_response()
        assert r2.status == 400
        closed, _ = c.wait_closed(3)
        assert closed
    time.sleep(0.1)
    assert [q.target for q in origin.requests] == ["/good"]


def test_400_has_html_body_and_proxy_status(proxy, origin):
    with proxy.client() as c:
        c.send(render(CASES["cl_and_te"], origin).encode())
        r = c.read_response()
    assert r.status == 400
    assert (r.get("Content-Type") or "").startswith("text/html")
    assert r.body
    assert "error=http_request_error" in (r.get("Proxy-Status") or ""), r.headers
    assert "close" in r.tokens("Connection"), "a 400 that closes should say Connection: close"
