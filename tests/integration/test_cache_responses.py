"""What a cached exchange looks like to the client: Age (RFC 9111 §4.2.3,
§5.1), Via, Cache-Status (RFC 9211) for hits, misses, Vary misses,
request-forced forwards, revalidations and stale-if-error; the access-log
OUTCOME of each; hits re-framed with Content-Length."""

import re
import time

import pytest

from helpers import (CLOSE, Client, cache_records, chunked, cs_get, fetch, http_response, origin_down,
                     requests_for)

CS_HIT = re.compile(r"^hopcache; hit; ttl=(-?\d+)$")


def one(resp, name):
    vals = resp.get_all(name)
    assert len(vals) == 1, "expected exactly one %s, got %r in %r" % (name, vals, resp.raw_head)
    return vals[0]


def outcomes(proxy, n, timeout=3.0):
    """OUTCOME column of the first n access-log lines (waits for them)."""
    deadline = time.monotonic() + timeout
    while True:
        es = proxy.access_entries()
        if len(es) >= n or time.monotonic() > deadline:
            return [e.get("outcome") for e in es]
        time.sleep(0.02)


def test_miss_then_hit_age_via_cache_status(cache_proxy, origin):
    body = b"the stored representation"
    origin.responder = lambda req: http_response(
        200, [("Content-Type", "text/plain"), ("Cache-Control", "max-age=60"), ("ETag", '"v1"')], body)
    url = origin.url("/resp/hit")
    r1 = fetch(cache_proxy.port, url)
    assert r1.status == 200 and r1.body == body
    assert r1.get_all("cache-status") == ["hopcache; fwd=uri-miss; stored"], r1.raw_head
    assert r1.get_all("via") == ["1.1 hopcache"]

    r2 = fetch(cache_proxy.port, url)
    assert r2.status == 200 and r2.body == body
    assert len(requests_for(origin, "/resp/hit")) == 1, "the second GET reached the origin"
    age = one(r2, "age")
    assert age.isdigit() and int(age) <= 2, "Age must be a small delta-seconds: %r" % age
    assert r2.get_all("via") == ["1.1 hopcache"], r2.raw_head
    cs = one(r2, "cache-status")
    m = CS_HIT.match(cs)
    assert m, "hit Cache-Status should be 'hopcache; hit; ttl=N', got %r" % cs
    ttl = int(m.group(1))
    assert 57 <= ttl <= 60, ttl
    assert abs(int(age) + ttl - 60) <= 1, "age %s + ttl %d should be the lifetime 60" % (age, ttl)
    assert r2.get("content-type") == "text/plain" and r2.get("etag") == '"v1"'
    assert r2.get("content-length") == str(len(body))
    assert outcomes(cache_proxy, 2) == ["OK", "HIT"]
    hit_line = cache_proxy.access_entries()[1]
    assert hit_line["status"] == "200" and hit_line["upstream"] == "-", hit_line["_line"]


def test_hit_age_includes_upstream_age_and_resident_time(cache_proxy, origin):
    """RFC 9111 §4.2.3: corrected_age_value = Age + response_delay, plus
    resident time; the stored Age is replaced, never duplicated."""
    origin.responder = lambda req: http_response(
        200, [("Cache-Control", "max-age=60"), ("Age", "10")], b"aged")
    url = origin.url("/resp/aged")
    fetch(cache_proxy.port, url)
    r2 = fetch(cache_proxy.port, url)
    age2 = int(one(r2, "age"))
    assert 10 <= age2 <= 12, r2.raw_head
    ttl2 = int(cs_get(r2, "ttl"))
    assert 48 <= ttl2 <= 50, r2.raw_head
    time.sleep(1.1)
    r3 = fetch(cache_proxy.port, url)
    age3 = int(one(r3, "age"))
    assert age3 >= age2 + 1 and age3 <= 13, (age2, age3)
    assert len(requests_for(origin, "/resp/aged")) == 1


def test_miss_not_stored_has_no_stored_param(cache_proxy, origin):
    origin.responder = lambda req: http_response(200, [("Cache-Control", "no-store")], b"x")
    url = origin.url("/resp/nostore")
    r = fetch(cache_proxy.port, url)
    assert r.get_all("cache-status") == ["hopcache; fwd=uri-miss"], r.raw_head
    r = fetch(cache_proxy.port, url)
    assert r.get_all("cache-status") == ["hopcache; fwd=uri-miss"], r.raw_head
    assert len(requests_for(origin, "/resp/nostore")) == 2


def test_vary_miss_status(cache_proxy, origin):
    def responder(req):
        enc = req.get("accept-encoding") or "none"
        return http_response(200, [("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding")],
                             ("variant " + enc).encode())
    origin.responder = responder
    url = origin.url("/resp/vary")
    r1 = fetch(cache_proxy.port, url, [("Accept-Encoding", "gzip")])
    assert r1.get_all("cache-status") == ["hopcache; fwd=uri-miss; stored"], r1.raw_head
    r2 = fetch(cache_proxy.port, url, [("Accept-Encoding", "br")])
    assert r2.get_all("cache-status") == ["hopcache; fwd=vary-miss; stored"], r2.raw_head
    assert r2.body == b"variant br"
    r3 = fetch(cache_proxy.port, url, [("Accept-Encoding", "gzip")])
    assert CS_HIT.match(one(r3, "cache-status")), r3.raw_head
    assert r3.body == b"variant gzip"


def test_request_no_cache_and_no_store_are_fwd_request(cache_proxy, origin):
    n = [0]

    def responder(req):
        n[0] += 1
        return http_response(200, [("Cache-Control", "max-age=60")], b"gen %d" % n[0])
    origin.responder = responder
    url = origin.url("/resp/req")
    fetch(cache_proxy.port, url)
    r = fetch(cache_proxy.port, url, [("Cache-Control", "no-cache")])
    assert r.body == b"gen 2", "request no-cache must not be answered from the store"
    assert cs_get(r, "fwd") == "request", r.raw_head
    assert one(r, "cache-status").startswith("hopcache; fwd=request"), r.raw_head
    r = fetch(cache_proxy.port, url, [("Cache-Control", "no-store")])
    assert r.body == b"gen 3", "request no-store must not be answered from the store"
    assert r.get_all("cache-status") == ["hopcache; fwd=request"], \
        "a response to a no-store request is not stored: %r" % r.raw_head
    r = fetch(cache_proxy.port, url, [("Pragma", "no-cache")])
    assert r.body == b"gen 4"
    assert cs_get(r, "fwd") == "request", r.raw_head


def test_revalidated_entry_status_and_refresh_outcome(cache_proxy, origin):
    body = b"validated body"

    def responder(req):
        if req.get("if-none-match") == '"e1"':
            return http_response(304, [("Cache-Control", "max-age=60"), ("ETag", '"e1"')], cl=False)
        return http_response(200, [("Cache-Control", "max-age=0"), ("ETag", '"e1"')], body)
    origin.responder = responder
    url = origin.url("/resp/reval")
    r1 = fetch(cache_proxy.port, url)
    assert r1.get_all("cache-status") == ["hopcache; fwd=uri-miss; stored"], r1.raw_head
    r2 = fetch(cache_proxy.port, url)
    assert r2.status == 200 and r2.body == body, "a merged 304 is served as the full 200"
    cs = one(r2, "cache-status")
    m = re.match(r"^hopcache; fwd=stale; fwd-status=304; stored; ttl=(-?\d+)$", cs)
    assert m, "revalidated Cache-Status, got %r" % cs
    assert 58 <= int(m.group(1)) <= 60
    assert r2.get_all("via") == ["1.1 hopcache"]
    assert one(r2, "age").isdigit()
    assert r2.get("content-length") == str(len(body))
    reqs = requests_for(origin, "/resp/reval")
    assert len(reqs) == 2 and reqs[1].get("if-none-match") == '"e1"'
    r3 = fetch(cache_proxy.port, url)
    assert CS_HIT.match(one(r3, "cache-status")) and r3.body == body
    assert len(requests_for(origin, "/resp/reval")) == 2
    assert outcomes(cache_proxy, 3) == ["OK", "REFRESH", "HIT"]


def test_stale_if_error_on_500_status_and_outcome(cache_proxy, origin):
    body = b"stale but better than an error"
    state = {"fail": False}

    def responder(req):
        if state["fail"]:
            return http_response(500, [("Content-Type", "text/plain")], b"origin broke")
        return http_response(200, [("Cache-Control", "max-age=1, stale-if-error=60")], body)
    origin.responder = responder
    url = origin.url("/resp/sie500")
    fetch(cache_proxy.port, url)
    time.sleep(1.2)
    state["fail"] = True
    r = fetch(cache_proxy.port, url)
    assert r.status == 200 and r.body == body, r
    cs = one(r, "cache-status")
    m = re.match(r"^hopcache; hit; fwd=stale; fwd-status=500; ttl=(-?\d+)$", cs)
    assert m, "stale-if-error Cache-Status, got %r" % cs
    assert int(m.group(1)) <= 0
    assert len(requests_for(origin, "/resp/sie500")) == 2
    # hopcache.ini(5): STALE = a stale entry served because the upstream failed
    assert outcomes(cache_proxy, 2) == ["OK", "STALE"], cache_proxy.read_access_log()


def test_stale_if_error_on_connect_failure_status_and_outcome(cache_proxy, origin):
    body = b"stale while the origin is down"
    origin.responder = lambda req: http_response(
        200, [("Cache-Control", "max-age=1, stale-if-error=60")], body)
    url = origin.url("/resp/siedown")
    fetch(cache_proxy.port, url)
    time.sleep(1.2)
    origin_down(origin)
    r = fetch(cache_proxy.port, url)
    assert r.status == 200 and r.body == body, r
    cs = one(r, "cache-status")
    # the refused connection is the 502 the proxy answers without a cache
    # (connection_refused, hopcache(8) ERROR RESPONSES)
    m = re.match(r"^hopcache; hit; fwd=stale; fwd-status=502; ttl=(-?\d+)$", cs)
    assert m, "stale-if-error Cache-Status, got %r" % cs
    assert int(m.group(1)) <= 0
    assert outcomes(cache_proxy, 2) == ["OK", "STALE"], cache_proxy.read_access_log()


def test_hit_of_chunked_response_has_content_length(cache_proxy, origin):
    parts = [b"a" * 100, b"b" * 2000, b"c" * 7]
    body = b"".join(parts)
    origin.responder = lambda req: http_response(
        200, [("Cache-Control", "max-age=60"), ("Transfer-Encoding", "chunked")], chunked(parts))
    url = origin.url("/resp/chunked")
    r1 = fetch(cache_proxy.port, url)
    assert r1.body == body and r1.framing == "chunked"
    r2 = fetch(cache_proxy.port, url)
    assert CS_HIT.match(one(r2, "cache-status")), r2.raw_head
    assert r2.framing == "length" and r2.get_all("content-length") == [str(len(body))]
    assert not r2.has("transfer-encoding")
    assert r2.body == body
    # an HTTP/1.0 client gets the same Content-Length hit
    with Client(cache_proxy.port) as c:
        c.request("GET", url, [("Host", origin.authority)], version="HTTP/1.0")
        r3 = c.read_response()
    assert r3.get_all("content-length") == [str(len(body))] and r3.body == body
    assert len(requests_for(origin, "/resp/chunked")) == 1


def test_hit_of_close_delimited_response_has_content_length(cache_proxy, origin):
    body = b"read until the origin closes " * 50
    origin.responder = lambda req: [
        b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nConnection: close\r\n\r\n" + body, CLOSE]
    url = origin.url("/resp/eof")
    r1 = fetch(cache_proxy.port, url)
    assert r1.body == body
    r2 = fetch(cache_proxy.port, url)
    assert CS_HIT.match(one(r2, "cache-status") or ""), r2.raw_head
    assert r2.get_all("content-length") == [str(len(body))] and r2.body == body
    assert len(requests_for(origin, "/resp/eof")) == 1


def test_hit_keeps_connection_alive(cache_proxy, origin):
    origin.responder = lambda req: http_response(200, [("Cache-Control", "max-age=60")], b"ka")
    url = origin.url("/resp/ka")
    with Client(cache_proxy.port) as c:
        for i in range(4):
            r = c.exchange("GET", url, [("Host", origin.authority)])
            assert r.status == 200 and r.body == b"ka"
            assert "close" not in r.tokens("connection")
        # a hit answers a pipelined pair in order
        c.send((b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (url.encode(), origin.authority.encode())) * 2)
        a = c.read_response()
        b = c.read_response()
        assert a.body == b.body == b"ka"
    assert len(requests_for(origin, "/resp/ka")) == 1


def test_hit_age_counts_apparent_age_from_date(cache_proxy, origin):
    """RFC 9111 §4.2.3: apparent_age = response_time - Date."""
    from helpers import http_date
    origin.responder = lambda req: http_response(
        200, [("Cache-Control", "max-age=60"), ("Date", http_date(-30))], b"dated")
    url = origin.url("/resp/dated")
    fetch(cache_proxy.port, url)
    r = fetch(cache_proxy.port, url)
    age = int(one(r, "age"))
    assert 29 <= age <= 32, r.raw_head
    assert 28 <= int(cs_get(r, "ttl")) <= 31, r.raw_head


def test_date_added_when_the_origin_sent_none(cache_proxy, origin):
    """RFC 9110 §6.6.1: a recipient with a clock that receives a response
    without Date MUST append one if it is cached or forwarded downstream."""
    import email.utils
    origin.responder = lambda req: http_response(200, [("Cache-Control", "max-age=60")], b"undated")
    url = origin.url("/resp/undated")
    r1 = fetch(cache_proxy.port, url)
    r2 = fetch(cache_proxy.port, url)
    assert CS_HIT.match(one(r2, "cache-status"))
    missing = []
    for what, r in (("miss", r1), ("hit", r2)):
        d = r.get_all("date")
        if len(d) != 1:
            missing.append("%s: %r" % (what, r.raw_head))
            continue
        t = email.utils.parsedate_to_datetime(d[0]).timestamp()
        assert abs(t - time.time()) < 10, d
    recs = cache_records(cache_proxy.cache_dir)
    if len(recs) != 1 or len(recs[0].get_all("date")) != 1:
        missing.append("stored head: %r" % [rec.head for rec in recs])
    assert not missing, "no (single) Date on:\n" + "\n".join(missing)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_hit_for_get_with_body_keeps_framing(cache_proxy, origin, framing):
    """RFC 9112 §6: a GET's body is part of the request. Answering it from
    the store must still consume (or give up on) that body: it is never
    parsed as the next request on the connection."""
    origin.responder = lambda req: http_response(200, [("Cache-Control", "max-age=60")],
                                                 ("body " + req.target).encode())
    url = origin.url("/resp/getbody")
    fetch(cache_proxy.port, url)
    inner = ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (origin.url("/resp/smuggled"), origin.authority)).encode()
    if framing == "chunked":
        hdrs = [("Host", origin.authority), ("Transfer-Encoding", "chunked")]
        body = chunked([inner])
    else:
        hdrs = [("Host", origin.authority), ("Content-Length", str(len(inner)))]
        body = inner
    with Client(cache_proxy.port) as c:
        c.request("GET", url, hdrs, body)
        r = c.read_response()
        assert r.status == 200 and r.body == b"body /resp/getbody", r
        # a hit does not read the request body: it closes after the
        # response (RFC 9112 §9.3; conn_cache.c serve_stored), and says so
        assert "close" in r.tokens("connection"), r.raw_head
        closed, extra = c.wait_closed(3.0)
    assert closed, "the connection stayed open with the GET's body unread"
    assert extra == b"", "bytes after the hit (the body answered as a request?): %r" % extra[:300]
    assert requests_for(origin, "/resp/smuggled") == [], \
        "the GET's body was parsed as a second request and forwarded"


def test_pipelined_hit_behind_a_slow_miss_keeps_order(cache_proxy, origin):
    def responder(req):
        if req.target == "/resp/slow-miss":
            return [0.4, http_response(200, [("Cache-Control", "no-store")], b"slow miss")]
        return http_response(200, [("Cache-Control", "max-age=60")], b"quick hit")
    origin.responder = responder
    fetch(cache_proxy.port, origin.url("/resp/quick"))
    one_req = lambda p: b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (origin.url(p).encode(), origin.authority.encode())
    with Client(cache_proxy.port) as c:
        c.send(one_req("/resp/slow-miss") + one_req("/resp/quick") + one_req("/resp/slow-miss"))
        got = [c.read_response().body for _ in range(3)]
    assert got == [b"slow miss", b"quick hit", b"slow miss"]
