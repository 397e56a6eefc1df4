"""RFC 9111 shared-cache semantics through the real proxy: what is stored
(§3, §3.5), freshness (§4.2), request and response directives (§5.2),
validation (§4.3), Vary (§4.1), invalidation (§4.4), Range on a stored
object (RFC 9110 §14), stale-if-error and stale-while-revalidate (RFC 5861)
and collapsed forwarding. The origin counts what reaches it."""

import re
import threading
import time

from helpers import (CLOSE, Client, cache_records, cs_get, data_of, fetch, http_date, http_response,
                     origin_down, requests_for)

CS_HIT = re.compile(r"^hopcache; hit; ttl=(-?\d+)$")


def is_hit(r):
    return any(v.startswith("hopcache; hit") for v in r.get_all("cache-status"))


def fresh_hit(r):
    return any(CS_HIT.match(v) for v in r.get_all("cache-status"))


class Counter:
    """A responder: 200 with `headers` and a body naming the generation
    (b"<path> #<n>"), so a test sees which response it got. 304 when the
    request's If-None-Match carries the current ETag (when `etag`)."""

    def __init__(self, origin, headers=(), status=200, etag=None, not_modified_headers=None):
        self.headers = list(headers)
        self.status = status
        self.etag = etag
        self.nm_headers = not_modified_headers
        self.n = 0
        origin.responder = self

    def __call__(self, req):
        if self.etag and self.etag in (req.get("if-none-match") or ""):
            hdrs = self.nm_headers if self.nm_headers is not None else self.headers
            return http_response(304, list(hdrs) + [("ETag", self.etag)], cl=False)
        self.n += 1
        body = ("%s #%d" % (req.target, self.n)).encode()
        hdrs = list(self.headers) + ([("ETag", self.etag)] if self.etag else [])
        if req.method == "HEAD":
            out = http_response(self.status, hdrs, body)
            return out[:out.index(b"\r\n\r\n") + 4]
        return http_response(self.status, hdrs, body)


def get(p, origin, path, headers=(), method="GET", body=None):
    return fetch(p.port, origin.url(path), headers, method=method, body=body)


def hits_at_origin(origin, path, method=None):
    return len(requests_for(origin, path, method))


# ---------------------------------------------------------------------------
# §3 storing


def test_get_is_stored(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "max-age=60")])
    assert get(cache_proxy, origin, "/s/get").body == b"/s/get #1"
    r = get(cache_proxy, origin, "/s/get")
    assert fresh_hit(r) and r.body == b"/s/get #1"
    assert hits_at_origin(origin, "/s/get") == 1


def test_head_answered_from_stored_get(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "max-age=60"), ("Content-Type", "text/x-test")])
    get(cache_proxy, origin, "/s/head")
    r = get(cache_proxy, origin, "/s/head", method="HEAD")
    assert r.status == 200 and r.body == b""
    assert fresh_hit(r), r.raw_head
    assert r.get("content-length") == str(len(b"/s/head #1")) and r.get("content-type") == "text/x-test"
    assert hits_at_origin(origin, "/s/head") == 1
    # the connection stays usable after a HEAD hit (no body bytes were sent)
    with Client(cache_proxy.port) as c:
        r1 = c.exchange("HEAD", origin.url("/s/head"), [("Host", origin.authority)])
        r2 = c.exchange("GET", origin.url("/s/head"), [("Host", origin.authority)])
    assert r1.body == b"" and r2.body == b"/s/head #1"


def test_head_response_is_not_stored_as_get(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "max-age=60")])
    r = get(cache_proxy, origin, "/s/headfirst", method="HEAD")
    assert r.status == 200 and hits_at_origin(origin, "/s/headfirst", "HEAD") == 1
    r = get(cache_proxy, origin, "/s/headfirst")
    assert r.body == b"/s/headfirst #2", "a GET must not be answered from a HEAD response"
    assert hits_at_origin(origin, "/s/headfirst", "GET") == 1


def test_post_is_not_stored(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "max-age=60")])
    for i in range(2):
        r = get(cache_proxy, origin, "/s/post", method="POST", body=b"data")
        assert r.body == b"/s/post #%d" % (i + 1)
    assert not is_hit(r)
    r = get(cache_proxy, origin, "/s/post")
    assert r.body == b"/s/post #3", "a GET answered with a stored POST response"
    assert hits_at_origin(origin, "/s/post") == 3


def test_response_no_store_is_not_stored(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "max-age=60, no-store")])
    get(cache_proxy, origin, "/s/rns")
    r = get(cache_proxy, origin, "/s/rns")
    assert r.body == b"/s/rns #2" and not is_hit(r)
    assert cache_records(cache_proxy.cache_dir) == []


def test_request_no_store_is_not_stored_nor_served(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "max-age=60")])
    get(cache_proxy, origin, "/s/qns", [("Cache-Control", "no-store")])
    assert cache_records(cache_proxy.cache_dir) == [], "stored the response to a no-store request"
    r = get(cache_proxy, origin, "/s/qns")
    assert r.body == b"/s/qns #2"
    r = get(cache_proxy, origin, "/s/qns", [("Cache-Control", "no-store")])
    assert r.body == b"/s/qns #3", "a no-store request answered from the store"
    assert fresh_hit(get(cache_proxy, origin, "/s/qns"))


def test_private_is_not_stored(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "private, max-age=60")])
    get(cache_proxy, origin, "/s/private")
    r = get(cache_proxy, origin, "/s/private")
    assert r.body == b"/s/private #2" and not is_hit(r)
    Counter(origin, [("Cache-Control", 'private="Set-Cookie", max-age=60')])
    get(cache_proxy, origin, "/s/private2")
    assert get(cache_proxy, origin, "/s/private2").body == b"/s/private2 #2"


def test_authorization_request_stored_only_when_allowed(cache_proxy, origin):
    """§3.5: public, s-maxage or must-revalidate let a shared cache store
    (and reuse) a response to a request with Authorization."""
    auth = [("Authorization", "Basic dXNlcjpwdw==")]
    cases = {
        "/s/auth-plain": ("max-age=60", False),
        "/s/auth-public": ("public, max-age=60", True),
        "/s/auth-smaxage": ("s-maxage=60", True),
        "/s/auth-mustrev": ("max-age=60, must-revalidate", True),
    }
    n = {}

    def responder(req):
        n[req.target] = n.get(req.target, 0) + 1
        return http_response(200, [("Cache-Control", cases[req.target][0])],
                             ("%s #%d" % (req.target, n[req.target])).encode())
    origin.responder = responder
    for path, (cc, allowed) in cases.items():
        r = get(cache_proxy, origin, path, auth)
        assert r.body == ("%s #1" % path).encode()
        r2 = get(cache_proxy, origin, path, auth)
        r3 = get(cache_proxy, origin, path)
        if allowed:
            assert fresh_hit(r2) and r2.body == r.body, (cc, r2.raw_head)
            assert fresh_hit(r3) and r3.body == r.body, (cc, r3.raw_head)
            assert hits_at_origin(origin, path) == 1, cc
        else:
            assert not is_hit(r2) and not is_hit(r3), cc
            assert r3.body == ("%s #3" % path).encode(), \
                "a response to an Authorization request (%s) was served to another client" % cc
    assert r.status == 200


def test_set_cookie_stored_by_default_never_replayed(cache_proxy, origin):
    """hopcache.ini(5) store_set_cookie (default yes): RFC 9111 has no rule
    against storing a response with Set-Cookie, but the cookie was the first
    client's (RFC 6265 §8): the forwarded response carries it, hits never."""
    Counter(origin, [("Cache-Control", "max-age=60"), ("Set-Cookie", "shared=1"),
                     ("Set-Cookie2", "old=1")])
    r1 = get(cache_proxy, origin, "/s/cookie")
    assert r1.get_all("set-cookie") == ["shared=1"] and r1.get_all("set-cookie2") == ["old=1"]
    r = get(cache_proxy, origin, "/s/cookie")
    assert fresh_hit(r) and r.body == b"/s/cookie #1", r.raw_head
    assert r.get_all("set-cookie") == [] and r.get_all("set-cookie2") == [], r.raw_head


def test_set_cookie_never_stored_with_store_set_cookie_no(cache_proxy_factory, origin):
    p = cache_proxy_factory(cache={"store_set_cookie": "no"})
    Counter(origin, [("Cache-Control", "public, max-age=60"), ("Set-Cookie", "sid=user1")])
    get(p, origin, "/s/cookie-no")
    r = get(p, origin, "/s/cookie-no")
    assert r.body == b"/s/cookie-no #2" and not is_hit(r), "store_set_cookie = no stored it"
    assert cache_records(p.cache_dir) == []
    Counter(origin, [("Cache-Control", "max-age=60")])
    get(p, origin, "/s/cookie-none")
    assert fresh_hit(get(p, origin, "/s/cookie-none")), "responses without Set-Cookie are still stored"


def test_status_codes(cache_proxy, origin):
    """A 404 with max-age is stored; a 206 never (only complete
    responses); a 302 without explicit freshness is not heuristically
    cacheable."""
    def responder(req):
        if req.target == "/s/404":
            return http_response(404, [("Cache-Control", "max-age=60")], b"gone")
        if req.target == "/s/206":
            return http_response(206, [("Cache-Control", "max-age=60"), ("Content-Range", "bytes 0-3/10")], b"part")
        return http_response(302, [("Location", "/elsewhere"), ("Last-Modified", http_date(-86400 * 10))], b"")
    origin.responder = responder
    for path in ("/s/404", "/s/206", "/s/302"):
        get(cache_proxy, origin, path)
        get(cache_proxy, origin, path)
    assert hits_at_origin(origin, "/s/404") == 1
    assert hits_at_origin(origin, "/s/206") == 2
    assert hits_at_origin(origin, "/s/302") == 2
    r = get(cache_proxy, origin, "/s/404")
    assert r.status == 404 and fresh_hit(r) and r.body == b"gone"


# ---------------------------------------------------------------------------
# §4.2 freshness


def test_s_maxage_over_max_age(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "max-age=1, s-maxage=60")])
    get(cache_proxy, origin, "/f/smax-long")
    time.sleep(1.2)
    r = get(cache_proxy, origin, "/f/smax-long")
    assert fresh_hit(r), "s-maxage=60 wins over max-age=1 for a shared cache: %r" % r.raw_head
    assert 57 <= int(cs_get(r, "ttl")) <= 59
    Counter(origin, [("Cache-Control", "max-age=60, s-maxage=1")])
    get(cache_proxy, origin, "/f/smax-short")
    time.sleep(1.2)
    r = get(cache_proxy, origin, "/f/smax-short")
    assert not is_hit(r) and hits_at_origin(origin, "/f/smax-short") == 2, \
        "s-maxage=1 wins over max-age=60: %r" % r.raw_head


def test_max_age_over_expires(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "max-age=60"), ("Date", http_date()), ("Expires", http_date(-3600))])
    get(cache_proxy, origin, "/f/maxage-expires")
    r = get(cache_proxy, origin, "/f/maxage-expires")
    assert fresh_hit(r), r.raw_head
    Counter(origin, [("Cache-Control", "max-age=0"), ("Date", http_date()), ("Expires", http_date(3600)),
                     ("ETag", '"mx"')])
    get(cache_proxy, origin, "/f/maxage0-expires")
    r = get(cache_proxy, origin, "/f/maxage0-expires")
    assert hits_at_origin(origin, "/f/maxage0-expires") == 2, "max-age=0 wins over a future Expires"


def test_expires_gives_freshness(cache_proxy, origin):
    Counter(origin, [("Date", http_date()), ("Expires", http_date(60))])
    get(cache_proxy, origin, "/f/expires")
    r = get(cache_proxy, origin, "/f/expires")
    assert fresh_hit(r), r.raw_head
    assert 57 <= int(cs_get(r, "ttl")) <= 60


def test_heuristic_freshness_from_last_modified(cache_proxy_factory, origin):
    """§4.2.2: 10% of Date - Last-Modified, capped by heuristic_max."""
    p = cache_proxy_factory(cache={"heuristic_max": "100"})
    Counter(origin, [("Date", http_date()), ("Last-Modified", http_date(-86400 * 10))])
    get(p, origin, "/f/heur")
    r = get(p, origin, "/f/heur")
    assert fresh_hit(r), r.raw_head
    assert 97 <= int(cs_get(r, "ttl")) <= 100, "capped at heuristic_max=100: %r" % r.raw_head
    Counter(origin, [("Date", http_date()), ("Last-Modified", http_date(-200))])
    get(p, origin, "/f/heur-10pct")
    r = get(p, origin, "/f/heur-10pct")
    assert fresh_hit(r) and 17 <= int(cs_get(r, "ttl")) <= 20, "10%% of 200 s: %r" % r.raw_head


def test_heuristic_disabled_by_heuristic_max_0(cache_proxy_factory, origin):
    p = cache_proxy_factory(cache={"heuristic_max": "0"})
    lm = http_date(-86400 * 10)
    Counter(origin, [("Date", http_date()), ("Last-Modified", lm)])
    get(p, origin, "/f/noheur")
    get(p, origin, "/f/noheur")
    reqs = requests_for(origin, "/f/noheur")
    assert len(reqs) == 2 and reqs[1].get("if-modified-since") == lm


def test_invalid_expires_means_stale(cache_proxy, origin):
    """§5.3: Expires "0" is a time in the past: stale at once, and no
    heuristic either (the response has an explicit, if invalid, expiry)."""
    Counter(origin, [("Expires", "0"), ("ETag", '"x0"'), ("Date", http_date()),
                     ("Last-Modified", http_date(-86400 * 10))])
    get(cache_proxy, origin, "/f/exp0")
    r = get(cache_proxy, origin, "/f/exp0")
    reqs = requests_for(origin, "/f/exp0")
    assert len(reqs) == 2, "Expires: 0 was treated as fresh: %r" % r.raw_head
    assert reqs[1].get("if-none-match") == '"x0"'


# ---------------------------------------------------------------------------
# §5.2.1 request directives


def test_request_max_age_0_validates(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "max-age=60")], etag='"ma0"')
    get(cache_proxy, origin, "/q/ma0")
    time.sleep(1.1)  # age >= 1 > max-age=0
    r = get(cache_proxy, origin, "/q/ma0", [("Cache-Control", "max-age=0")])
    reqs = requests_for(origin, "/q/ma0")
    assert len(reqs) == 2 and reqs[1].get("if-none-match") == '"ma0"'
    assert r.status == 200 and r.body == b"/q/ma0 #1", "the 304 is served as the stored 200"
    assert cs_get(r, "fwd") == "stale" and cs_get(r, "fwd-status") == "304", r.raw_head


def test_request_no_cache_goes_to_origin(cache_proxy, origin):
    """§5.2.1.4: a stored response is not used without validation; the
    origin's answer replaces the stored one."""
    Counter(origin, [("Cache-Control", "max-age=60")])
    get(cache_proxy, origin, "/q/nc")
    r = get(cache_proxy, origin, "/q/nc", [("Cache-Control", "no-cache")])
    assert r.body == b"/q/nc #2" and hits_at_origin(origin, "/q/nc") == 2
    r = get(cache_proxy, origin, "/q/nc")
    assert fresh_hit(r) and r.body == b"/q/nc #2", "the newer response replaces the stored one"


def test_request_max_stale_serves_stale(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "max-age=1")], etag='"ms"')
    get(cache_proxy, origin, "/q/ms")
    time.sleep(2.1)
    r = get(cache_proxy, origin, "/q/ms", [("Cache-Control", "max-stale=60")])
    assert is_hit(r) and r.body == b"/q/ms #1", r.raw_head
    assert int(cs_get(r, "ttl")) < 0 and int(r.get("age")) >= 2
    r = get(cache_proxy, origin, "/q/ms", [("Cache-Control", "max-stale")])
    assert is_hit(r), "max-stale without a value accepts any staleness"
    assert hits_at_origin(origin, "/q/ms") == 1
    get(cache_proxy, origin, "/q/ms", [("Cache-Control", "max-stale=0")])
    assert hits_at_origin(origin, "/q/ms") == 2, "max-stale=0 does not cover 1+ s of staleness"


def test_request_min_fresh(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "max-age=60")], etag='"mf"')
    get(cache_proxy, origin, "/q/mf")
    r = get(cache_proxy, origin, "/q/mf", [("Cache-Control", "min-fresh=10")])
    assert fresh_hit(r) and hits_at_origin(origin, "/q/mf") == 1
    r = get(cache_proxy, origin, "/q/mf", [("Cache-Control", "min-fresh=120")])
    assert not fresh_hit(r) and hits_at_origin(origin, "/q/mf") == 2, \
        "min-fresh=120 cannot be met by a ttl of 60: %r" % r.raw_head


def test_only_if_cached(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "max-age=60")])
    r = get(cache_proxy, origin, "/q/oic", [("Cache-Control", "only-if-cached")])
    assert r.status == 504 and hits_at_origin(origin, "/q/oic") == 0
    get(cache_proxy, origin, "/q/oic")
    r = get(cache_proxy, origin, "/q/oic", [("Cache-Control", "only-if-cached")])
    assert r.status == 200 and fresh_hit(r) and r.body == b"/q/oic #1"
    assert hits_at_origin(origin, "/q/oic") == 1


def test_only_if_cached_with_stale_entry_is_504(cache_proxy, origin):
    """§5.2.1.7 + §4.2.4: a stale entry does not fit a request without
    max-stale; it must not be served (and the origin is not asked)."""
    Counter(origin, [("Cache-Control", "max-age=1")], etag='"oics"')
    get(cache_proxy, origin, "/q/oic-stale")
    time.sleep(1.2)
    r = get(cache_proxy, origin, "/q/oic-stale", [("Cache-Control", "only-if-cached")])
    assert r.status == 504, "a stale response served for only-if-cached: %r" % r.raw_head
    assert hits_at_origin(origin, "/q/oic-stale") == 1
    r = get(cache_proxy, origin, "/q/oic-stale", [("Cache-Control", "only-if-cached, max-stale=60")])
    assert r.status == 200 and is_hit(r), "only-if-cached with max-stale may use it"


def test_only_if_cached_must_revalidate_stale_is_504(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "max-age=1, must-revalidate")], etag='"oicm"')
    get(cache_proxy, origin, "/q/oic-mr")
    time.sleep(1.2)
    r = get(cache_proxy, origin, "/q/oic-mr", [("Cache-Control", "only-if-cached, max-stale=60")])
    assert r.status == 504, "must-revalidate: never served stale, not for only-if-cached: %r" % r.raw_head
    assert hits_at_origin(origin, "/q/oic-mr") == 1


def test_pragma_no_cache_without_cache_control(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "max-age=60")])
    get(cache_proxy, origin, "/q/pragma")
    r = get(cache_proxy, origin, "/q/pragma", [("Pragma", "no-cache")])
    assert hits_at_origin(origin, "/q/pragma") == 2 and r.body == b"/q/pragma #2"
    # with Cache-Control present, Pragma is ignored (§5.4)
    r = get(cache_proxy, origin, "/q/pragma", [("Pragma", "no-cache"), ("Cache-Control", "max-stale=5")])
    assert fresh_hit(r) and hits_at_origin(origin, "/q/pragma") == 2


# ---------------------------------------------------------------------------
# §5.2.2 response directives


def _never_stale(p, origin, path, cc):
    Counter(origin, [("Cache-Control", cc)], etag='"ns"')
    get(p, origin, path)
    time.sleep(1.2)
    r = get(p, origin, path, [("Cache-Control", "max-stale=600")])
    reqs = requests_for(origin, path)
    assert len(reqs) == 2, "%s: served stale (max-stale) without validation: %r" % (cc, r.raw_head)
    assert reqs[1].get("if-none-match") == '"ns"'
    assert r.status == 200 and r.body == ("%s #1" % path).encode()


def test_must_revalidate_never_served_stale(cache_proxy, origin):
    _never_stale(cache_proxy, origin, "/r/mustrev", "max-age=1, must-revalidate")


def test_proxy_revalidate_never_served_stale(cache_proxy, origin):
    _never_stale(cache_proxy, origin, "/r/proxyrev", "max-age=1, proxy-revalidate")


def test_s_maxage_never_served_stale(cache_proxy, origin):
    _never_stale(cache_proxy, origin, "/r/smaxage", "s-maxage=1")


def test_must_revalidate_no_stale_if_error(cache_proxy, origin):
    state = {"fail": False}

    def responder(req):
        if state["fail"]:
            return http_response(500, [], b"broken")
        return http_response(200, [("Cache-Control", "max-age=1, must-revalidate, stale-if-error=60")], b"mr")
    origin.responder = responder
    get(cache_proxy, origin, "/r/mr-sie")
    time.sleep(1.2)
    state["fail"] = True
    r = get(cache_proxy, origin, "/r/mr-sie")
    assert r.status == 500 and r.body == b"broken", "must-revalidate forbids stale-if-error: %r" % r


def test_response_no_cache_stored_but_always_revalidated(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "no-cache, max-age=60")], etag='"nc1"')
    r = get(cache_proxy, origin, "/r/nocache")
    assert r.body == b"/r/nocache #1"
    assert len(cache_records(cache_proxy.cache_dir)) == 1, "no-cache responses are stored"
    for i in range(3):
        r = get(cache_proxy, origin, "/r/nocache")
        assert r.status == 200 and r.body == b"/r/nocache #1"
        assert not fresh_hit(r), r.raw_head
    reqs = requests_for(origin, "/r/nocache")
    assert len(reqs) == 4
    assert [q.get("if-none-match") for q in reqs] == [None, '"nc1"', '"nc1"', '"nc1"']


# ---------------------------------------------------------------------------
# §4.3 validation


def test_validation_sends_if_none_match_and_if_modified_since(cache_proxy, origin):
    lm = http_date(-86400)
    Counter(origin, [("Cache-Control", "max-age=0"), ("Last-Modified", lm)], etag='"both"')
    get(cache_proxy, origin, "/v/both")
    get(cache_proxy, origin, "/v/both")
    q = requests_for(origin, "/v/both")[1]
    assert q.get("if-none-match") == '"both"' and q.get("if-modified-since") == lm, q.raw_head
    lm2 = http_date(-7200)
    Counter(origin, [("Cache-Control", "max-age=0"), ("Last-Modified", lm2)])
    get(cache_proxy, origin, "/v/lm")
    get(cache_proxy, origin, "/v/lm")
    q = requests_for(origin, "/v/lm")[1]
    assert q.get("if-modified-since") == lm2 and not q.has("if-none-match"), q.raw_head


def test_304_updates_stored_headers_and_is_served_as_200(cache_proxy, origin):
    gen = {"n": 0}

    def responder(req):
        if req.get("if-none-match") == '"u1"':
            gen["n"] += 1
            return http_response(304, [("Cache-Control", "max-age=60"), ("ETag", '"u1"'),
                                       ("X-Version", "updated-%d" % gen["n"])], cl=False)
        return http_response(200, [("Cache-Control", "max-age=0"), ("ETag", '"u1"'),
                                   ("X-Version", "original"), ("Content-Type", "text/x-orig")], b"stored body")
    origin.responder = responder
    get(cache_proxy, origin, "/v/update")
    r = get(cache_proxy, origin, "/v/update")
    assert r.status == 200 and r.body == b"stored body"
    assert r.get_all("x-version") == ["updated-1"], r.raw_head
    assert r.get("content-type") == "text/x-orig"
    r = get(cache_proxy, origin, "/v/update")
    assert fresh_hit(r), "the 304's max-age=60 makes the entry fresh: %r" % r.raw_head
    assert r.get_all("x-version") == ["updated-1"] and r.body == b"stored body"
    assert len(requests_for(origin, "/v/update")) == 2
    recs = cache_records(cache_proxy.cache_dir)
    assert len(recs) == 1 and recs[0].get_all("x-version") == ["updated-1"]
    assert recs[0].body == b"stored body"


def test_validation_answered_with_new_200_replaces_entry(cache_proxy, origin):
    state = {"etag": '"old"', "body": b"old body"}

    def responder(req):
        if req.get("if-none-match") == state["etag"]:
            return http_response(304, [("Cache-Control", "max-age=0"), ("ETag", state["etag"])], cl=False)
        return http_response(200, [("Cache-Control", "max-age=0"), ("ETag", state["etag"])], state["body"])
    origin.responder = responder
    get(cache_proxy, origin, "/v/changed")
    state.update(etag='"new"', body=b"the new body")
    r = get(cache_proxy, origin, "/v/changed")
    assert r.status == 200 and r.body == b"the new body" and r.get("etag") == '"new"'
    assert cs_get(r, "fwd") == "stale" and cs_get(r, "fwd-status") == "200", r.raw_head
    r = get(cache_proxy, origin, "/v/changed")
    q = requests_for(origin, "/v/changed")[2]
    assert q.get("if-none-match") == '"new"', "the new 200 replaced the stored entry"
    assert r.body == b"the new body"
    recs = cache_records(cache_proxy.cache_dir)
    assert len(recs) == 1 and recs[0].body == b"the new body"


def test_304_does_not_replace_content_length_or_encoding(cache_proxy, origin):
    """RFC 9111 §3.2: Content-Length (and Content-Encoding, whose stored
    bytes the body depends on) are not updated from a 304."""
    body = b"eleven byte"

    def responder(req):
        if req.get("if-none-match") == '"cl"':
            return http_response(304, [("Cache-Control", "max-age=60"), ("ETag", '"cl"'),
                                       ("Content-Encoding", "br"), ("Content-Length", "3")], cl=False)
        return http_response(200, [("Cache-Control", "max-age=0"), ("ETag", '"cl"'),
                                   ("Content-Encoding", "gzip")], body)
    origin.responder = responder
    get(cache_proxy, origin, "/v/cl304")
    for _ in range(2):
        r = get(cache_proxy, origin, "/v/cl304")
        assert r.status == 200 and r.body == body
        assert r.get_all("content-length") == [str(len(body))], r.raw_head
        assert r.get_all("content-encoding") == ["gzip"], r.raw_head
    assert len(requests_for(origin, "/v/cl304")) == 2


def test_client_if_none_match_on_fresh_entry_gets_304(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "max-age=60"), ("Last-Modified", http_date(-86400))], etag='"c1"')
    get(cache_proxy, origin, "/v/client")
    r = get(cache_proxy, origin, "/v/client", [("If-None-Match", '"zzz", "c1"')])
    assert r.status == 304 and r.body == b"", r
    assert r.get("etag") == '"c1"' and r.get("cache-control") == "max-age=60"
    assert is_hit(r), r.raw_head
    r = get(cache_proxy, origin, "/v/client", [("If-None-Match", 'W/"c1"')])
    assert r.status == 304, "If-None-Match uses the weak comparison"
    r = get(cache_proxy, origin, "/v/client", [("If-None-Match", '"other"')])
    assert r.status == 200 and r.body == b"/v/client #1" and fresh_hit(r)
    r = get(cache_proxy, origin, "/v/client", [("If-Modified-Since", http_date())])
    assert r.status == 304
    assert hits_at_origin(origin, "/v/client") == 1
    # the connection survives a proxy-made 304
    with Client(cache_proxy.port) as c:
        a = c.exchange("GET", origin.url("/v/client"), [("Host", origin.authority), ("If-None-Match", '"c1"')])
        b = c.exchange("GET", origin.url("/v/client"), [("Host", origin.authority)])
    assert a.status == 304 and b.status == 200 and b.body == b"/v/client #1"


# ---------------------------------------------------------------------------
# §4.1 Vary


def test_vary_two_variants_cached(cache_proxy, origin):
    def responder(req):
        enc = req.get("accept-encoding") or "identity"
        return http_response(200, [("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding"),
                                   ("Content-Encoding", enc)], ("body for " + enc).encode())
    origin.responder = responder
    for enc in ("gzip", "br", "gzip", "br", "gzip"):
        r = get(cache_proxy, origin, "/vary/ae", [("Accept-Encoding", enc)])
        assert r.body == ("body for " + enc).encode() and r.get("content-encoding") == enc
    assert hits_at_origin(origin, "/vary/ae") == 2
    r = get(cache_proxy, origin, "/vary/ae")
    assert r.body == b"body for identity" and hits_at_origin(origin, "/vary/ae") == 3
    r = get(cache_proxy, origin, "/vary/ae", [("Accept-Encoding", "br")])
    assert fresh_hit(r) and r.body == b"body for br"


def test_vary_matching_normalises_list_whitespace(cache_proxy, origin):
    """§4.1: values are compared after normalising whitespace around list
    commas; a different value is a different variant; several Vary names."""
    Counter(origin, [("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding, Accept-Language")])
    get(cache_proxy, origin, "/vary/norm", [("Accept-Encoding", "gzip, br"), ("Accept-Language", "en")])
    r = get(cache_proxy, origin, "/vary/norm", [("Accept-Encoding", "gzip,br"), ("Accept-Language", "en")])
    assert fresh_hit(r) and r.body == b"/vary/norm #1", r.raw_head
    r = get(cache_proxy, origin, "/vary/norm", [("Accept-Encoding", "gzip, br"), ("Accept-Language", "de")])
    assert not is_hit(r) and r.body == b"/vary/norm #2"
    r = get(cache_proxy, origin, "/vary/norm", [("Accept-Encoding", "gzip, br")])
    assert not is_hit(r), "an absent Accept-Language is not the same as 'en'"


def test_vary_star_never_served_from_cache(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "max-age=60"), ("Vary", "*")])
    for i in range(3):
        r = get(cache_proxy, origin, "/vary/star")
        assert r.body == b"/vary/star #%d" % (i + 1) and not is_hit(r)
    assert hits_at_origin(origin, "/vary/star") == 3


# ---------------------------------------------------------------------------
# §4.4 invalidation


def _store(p, origin, path):
    get(p, origin, path)
    assert fresh_hit(get(p, origin, path)), path


def test_unsafe_methods_invalidate(cache_proxy, origin):
    def responder(req):
        if req.method in ("POST", "PUT", "DELETE", "PATCH"):
            return http_response(200, [], b"ok")
        return http_response(200, [("Cache-Control", "max-age=60")],
                             ("%s %d" % (req.target, len(requests_for(origin, req.target)))).encode())
    origin.responder = responder
    for m in ("POST", "PUT", "DELETE", "PATCH"):
        path = "/inv/" + m.lower()
        _store(cache_proxy, origin, path)
        r = get(cache_proxy, origin, path, method=m, body=b"x" if m != "DELETE" else None)
        assert r.status == 200
        r = get(cache_proxy, origin, path)
        assert not is_hit(r), "a successful %s did not invalidate %s" % (m, path)
        assert len(requests_for(origin, path, "GET")) == 2


def test_invalidation_removes_every_variant(cache_proxy, origin):
    """§4.4: invalidation removes (or marks invalid) every stored response
    for the URI, so no Vary variant may come back after it."""
    def responder(req):
        if req.method == "POST":
            return http_response(200, [], b"ok")
        n = len(requests_for(origin, req.target, "GET"))
        return http_response(200, [("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")],
                             ("%s %s #%d" % (req.target, req.get("accept-language"), n)).encode())
    origin.responder = responder
    for lang in ("en", "fr"):
        get(cache_proxy, origin, "/inv/vary", [("Accept-Language", lang)])
        assert fresh_hit(get(cache_proxy, origin, "/inv/vary", [("Accept-Language", lang)]))
    get(cache_proxy, origin, "/inv/vary", method="POST", body=b"x")
    r_en = get(cache_proxy, origin, "/inv/vary", [("Accept-Language", "en")])
    assert not is_hit(r_en) and r_en.body == b"/inv/vary en #3"
    r_fr = get(cache_proxy, origin, "/inv/vary", [("Accept-Language", "fr")])
    assert not is_hit(r_fr), "the fr variant survived the invalidation: %r %r" % (r_fr.raw_head, r_fr.body)
    assert r_fr.body == b"/inv/vary fr #4"


def test_failed_unsafe_request_does_not_invalidate(cache_proxy, origin):
    def responder(req):
        if req.method == "POST":
            return http_response(500, [], b"no")
        return http_response(200, [("Cache-Control", "max-age=60")], b"keep me")
    origin.responder = responder
    _store(cache_proxy, origin, "/inv/failed")
    get(cache_proxy, origin, "/inv/failed", method="POST", body=b"x")
    assert fresh_hit(get(cache_proxy, origin, "/inv/failed"))


def test_location_and_content_location_invalidated_same_origin_only(cache_proxy, origin, origin_factory):
    other = origin_factory()
    other.responder = lambda req: http_response(200, [("Cache-Control", "max-age=60")], b"other origin")

    def responder(req):
        if req.method == "POST":
            return http_response(201, [("Location", "/inv/created"),
                                       ("Content-Location", origin.url("/inv/content"))], b"")
        if req.method == "PUT":
            return http_response(200, [("Location", other.url("/inv/foreign"))], b"")
        return http_response(200, [("Cache-Control", "max-age=60")], req.target.encode())
    origin.responder = responder
    for path in ("/inv/created", "/inv/content", "/inv/target"):
        _store(cache_proxy, origin, path)
    get(cache_proxy, other, "/inv/foreign")
    assert fresh_hit(get(cache_proxy, other, "/inv/foreign"))
    get(cache_proxy, origin, "/inv/target", method="POST", body=b"new")
    for path in ("/inv/created", "/inv/content", "/inv/target"):
        assert not is_hit(get(cache_proxy, origin, path)), "%s not invalidated" % path
    get(cache_proxy, origin, "/inv/target", method="PUT", body=b"new")
    assert fresh_hit(get(cache_proxy, other, "/inv/foreign")), \
        "a Location on another origin must not be invalidated (§4.4)"


# ---------------------------------------------------------------------------
# Range on a stored object (RFC 9110 §14)


def _stored_1000(p, origin):
    body = data_of(1000, seed=42)
    origin.responder = lambda req: http_response(
        200, [("Cache-Control", "max-age=60"), ("Content-Type", "application/x-test"), ("ETag", '"rg"')], body)
    get(p, origin, "/range/obj")
    return body


def test_range_single(cache_proxy, origin):
    body = _stored_1000(cache_proxy, origin)
    for spec, first, last in (("100-199", 100, 199), ("-50", 950, 999), ("900-", 900, 999),
                              ("990-5000", 990, 999), ("0-0", 0, 0)):
        r = get(cache_proxy, origin, "/range/obj", [("Range", "bytes=" + spec)])
        assert r.status == 206, (spec, r)
        assert r.get_all("content-range") == ["bytes %d-%d/1000" % (first, last)], (spec, r.raw_head)
        assert r.get("content-length") == str(last - first + 1)
        assert r.body == body[first:last + 1], spec
        assert r.get("content-type") == "application/x-test"
        assert is_hit(r), r.raw_head
    assert hits_at_origin(origin, "/range/obj") == 1


def test_range_multiple_is_multipart_byteranges(cache_proxy, origin):
    body = _stored_1000(cache_proxy, origin)
    r = get(cache_proxy, origin, "/range/obj", [("Range", "bytes=0-9, 500-519,-5")])
    assert r.status == 206, r
    ct = r.get("content-type")
    m = re.match(r'^multipart/byteranges;\s*boundary="?([^";]+)"?$', ct or "")
    assert m, ct
    assert not r.has("content-range")
    boundary = m.group(1).encode()
    assert int(r.get("content-length")) == len(r.body)
    segments = r.body.split(b"--" + boundary)
    assert segments[-1].startswith(b"--"), "closing delimiter missing"
    parts = []
    for seg in segments[1:-1]:
        assert seg.startswith(b"\r\n") and seg.endswith(b"\r\n"), seg[:80]
        head, _, data = seg[2:-2].partition(b"\r\n\r\n")
        hdrs = dict((k.lower(), v) for k, v in
                    (l.split(b": ", 1) for l in head.split(b"\r\n")))
        parts.append((hdrs, data))
    want = [(0, 9), (500, 519), (995, 999)]
    assert len(parts) == 3, parts
    for (hdrs, data), (a, b) in zip(parts, want):
        assert hdrs[b"content-range"] == b"bytes %d-%d/1000" % (a, b)
        assert hdrs[b"content-type"] == b"application/x-test"
        assert data == body[a:b + 1]
    assert hits_at_origin(origin, "/range/obj") == 1


def test_range_unsatisfiable_is_416(cache_proxy, origin):
    _stored_1000(cache_proxy, origin)
    r = get(cache_proxy, origin, "/range/obj", [("Range", "bytes=5000-6000")])
    assert r.status == 416, r
    assert r.get_all("content-range") == ["bytes */1000"], r.raw_head
    assert r.body == b""
    # the connection stays usable
    with Client(cache_proxy.port) as c:
        a = c.exchange("GET", origin.url("/range/obj"), [("Host", origin.authority), ("Range", "bytes=1000-")])
        b = c.exchange("GET", origin.url("/range/obj"), [("Host", origin.authority), ("Range", "bytes=0-1")])
    assert a.status == 416 and b.status == 206 and len(b.body) == 2
    assert hits_at_origin(origin, "/range/obj") == 1


def test_range_with_non_matching_if_range_gets_whole_body(cache_proxy, origin):
    body = _stored_1000(cache_proxy, origin)
    r = get(cache_proxy, origin, "/range/obj", [("Range", "bytes=0-9"), ("If-Range", '"old"')])
    assert r.status == 200 and r.body == body
    r = get(cache_proxy, origin, "/range/obj", [("Range", "bytes=0-9"), ("If-Range", '"rg"')])
    assert r.status == 206 and r.body == body[:10]


# ---------------------------------------------------------------------------
# RFC 5861


def test_stale_if_error_origin_down(cache_proxy, origin):
    Counter(origin, [("Cache-Control", "max-age=1, stale-if-error=60")])
    get(cache_proxy, origin, "/5861/down")
    time.sleep(1.2)
    origin_down(origin)
    r = get(cache_proxy, origin, "/5861/down")
    assert r.status == 200 and r.body == b"/5861/down #1", r


def test_stale_if_error_origin_500(cache_proxy, origin):
    """RFC 5861 §4: the response's stale-if-error=60 lets the stale entry
    stand in for a 500. A request's own stale-if-error is the upper limit
    for that request ("its scope of application is the request it appears
    in"; "when the cached response is more stale than the indicated
    amount, the cached response SHOULD NOT be used"): with
    stale-if-error=0 and an entry about 5 s stale, the 500 goes through."""
    state = {"fail": False}
    # Date 10 s back and max-age=5: stale by about 5 s from the moment it is
    # stored, so no sleep and no whole-second boundary decides the staleness
    c = Counter(origin, [("Cache-Control", "max-age=5, stale-if-error=60"), ("Date", http_date(-10))])

    def responder(req):
        if state["fail"]:
            return http_response(500, [], b"err")
        return c(req)
    origin.responder = responder
    assert get(cache_proxy, origin, "/5861/500").body == b"/5861/500 #1"
    state["fail"] = True
    r = get(cache_proxy, origin, "/5861/500")
    assert r.status == 200 and r.body == b"/5861/500 #1", r
    assert cs_get(r, "fwd-status") == "500", r.raw_head
    r = get(cache_proxy, origin, "/5861/500", [("Cache-Control", "stale-if-error=0")])
    assert r.status == 500 and r.body == b"err", \
        "the request's stale-if-error=0 refuses an entry ~5 s stale: %r %r" % (r.raw_head, r.body)
    assert hits_at_origin(origin, "/5861/500") == 3


def test_stale_if_error_expired_window_passes_error(cache_proxy, origin):
    state = {"fail": False}

    def responder(req):
        if state["fail"]:
            return http_response(503, [], b"down")
        return http_response(200, [("Cache-Control", "max-age=0, stale-if-error=1"), ("ETag", '"w"')],
                             b"short window")
    origin.responder = responder
    get(cache_proxy, origin, "/5861/window")
    time.sleep(2.1)
    state["fail"] = True
    r = get(cache_proxy, origin, "/5861/window")
    assert r.status == 503, "stale-if-error=1 does not cover 2+ s of staleness: %r" % r


def test_stale_while_revalidate_serves_stale_at_once(cache_proxy, origin):
    """RFC 5861 §3: within the window the stale response is served without
    waiting for the origin, which is revalidated in the background."""
    state = {"slow": False}
    c = Counter(origin, [("Cache-Control", "max-age=1, stale-while-revalidate=60")], etag='"swr"',
                not_modified_headers=[("Cache-Control", "max-age=60, stale-while-revalidate=60"),
                                      ("X-Refreshed", "yes")])

    def responder(req):
        if state["slow"]:
            time.sleep(1.5)
        return c(req)
    origin.responder = responder
    get(cache_proxy, origin, "/5861/swr")
    time.sleep(1.2)
    state["slow"] = True
    t0 = time.monotonic()
    r = get(cache_proxy, origin, "/5861/swr")
    took = time.monotonic() - t0
    assert r.status == 200 and r.body == b"/5861/swr #1"
    assert took < 1.0, "stale-while-revalidate waited %.2fs for the origin" % took
    assert origin.wait_requests(2, timeout=3), "no background revalidation reached the origin"
    assert requests_for(origin, "/5861/swr")[1].get("if-none-match") == '"swr"'
    time.sleep(1.7)  # the slow 304 has been merged by now
    state["slow"] = False
    r = get(cache_proxy, origin, "/5861/swr")
    assert fresh_hit(r) and r.body == b"/5861/swr #1", "the background 304 did not refresh the entry: %r" % r.raw_head
    assert r.get("x-refreshed") == "yes" and int(cs_get(r, "ttl")) >= 55, r.raw_head
    assert len(requests_for(origin, "/5861/swr")) == 2


# ---------------------------------------------------------------------------
# collapsed forwarding


def test_collapsed_forwarding_one_upstream_fetch(cache_proxy, origin):
    """Concurrent misses for the same key within a worker wait for one
    upstream fetch instead of stampeding the origin."""
    def responder(req):
        return [http_response(200, [("Cache-Control", "max-age=60")], b"collapsed")[:40], 0.8,
                http_response(200, [("Cache-Control", "max-age=60")], b"collapsed")[40:]]
    origin.responder = responder
    results = []

    def one():
        try:
            results.append(get(cache_proxy, origin, "/collapse"))
        except Exception as e:  # noqa: BLE001 - reported below
            results.append(e)
    ts = [threading.Thread(target=one) for _ in range(5)]
    for t in ts:
        t.start()
        time.sleep(0.02)
    for t in ts:
        t.join(10)
    assert all(getattr(r, "body", None) == b"collapsed" for r in results), results
    assert hits_at_origin(origin, "/collapse") == 1, \
        "%d upstream fetches for 5 concurrent misses" % hits_at_origin(origin, "/collapse")


def test_stale_if_error_on_upstream_timeout_and_malformed_response(cache_proxy_factory, origin):
    """RFC 5861 §4: an error is a 500/502/503/504, including one the proxy
    would generate itself (a timed-out or malformed upstream response)."""
    p = cache_proxy_factory(ini_extra={"limits": {"upstream_timeout": "1"}})
    state = {"mode": "ok"}

    def responder(req):
        if state["mode"] == "hang":
            return [3.0, CLOSE]
        if state["mode"] == "garbage":
            return [b"this is not HTTP\r\n\r\n", CLOSE]
        return http_response(200, [("Cache-Control", "max-age=1, stale-if-error=60")], b"keep serving me")
    origin.responder = responder
    get(p, origin, "/5861/timeout")
    time.sleep(1.2)
    state["mode"] = "hang"
    t0 = time.monotonic()
    r = get(p, origin, "/5861/timeout")
    assert r.status == 200 and r.body == b"keep serving me", r
    assert time.monotonic() - t0 < 3
    # fwd-status (RFC 9211 §2.3) is the error the stale entry stood in for:
    # what the proxy answers for it without a cache (hopcache(8) ERROR
    # RESPONSES): 504 for a response timeout, 502 for a malformed response
    assert cs_get(r, "fwd-status") == "504", r.raw_head
    state["mode"] = "garbage"
    r = get(p, origin, "/5861/timeout")
    assert r.status == 200 and r.body == b"keep serving me", r
    assert cs_get(r, "fwd-status") == "502", r.raw_head
