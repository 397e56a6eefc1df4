"""What goes into the LMDB store: never a connection-specific field (read
back with mdb_dump, and seen in what a hit returns), only complete
responses, nothing above max_object_size, and no store-and-forward delay."""

import struct
import re
import time

from helpers import (CLOSE, Client, cache_records, chunked, data_of, fetch, http_response,
                     mdb_dump_all_print, requests_for, sha)

CS_HIT = re.compile(r"^hopcache; hit; ttl=(-?\d+)$")

# RFC 9111 §3.1: never stored; plus whatever the response's Connection lists.
CONNECTION_SPECIFIC = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
                       "trailer", "upgrade", "proxy-authenticate", "proxy-authorization"]
SECRETS = ["SECRET-LISTED-0a1b", "SECRET-LISTED-2c3d", "SECRET-KA-4e5f", "SECRET-PC-6a7b",
           "SECRET-TE-8c9d", "SECRET-UPG-aa11", "SECRET-PAUTHN-bb22", "SECRET-PAUTHZ-cc33"]


def is_hit(r):
    return any(CS_HIT.match(v) for v in r.get_all("cache-status"))


def assert_no_connection_fields(names, where, listed=("x-conn-listed", "x-conn-listed-too")):
    bad = [n for n in names if n in CONNECTION_SPECIFIC or n in listed]
    assert not bad, "connection-specific field(s) %r in %s" % (bad, where)


def test_store_never_holds_connection_specific_fields(cache_proxy, origin):
    parts = [b"first part;", b"second part;", b"third"]
    body = b"".join(parts)
    head = [
        ("Cache-Control", "max-age=60"),
        ("ETag", '"store-1"'),
        ("X-E2E", "end-to-end-kept"),
        ("Connection", "X-Conn-Listed, keep-alive"),
        ("connection", "x-conn-listed-too"),
        ("X-Conn-Listed", SECRETS[0]),
        ("X-CONN-LISTED-TOO", SECRETS[1]),
        ("Keep-Alive", "timeout=5, max=100, x=" + SECRETS[2]),
        ("Proxy-Connection", SECRETS[3]),
        ("TE", SECRETS[4]),
        ("Trailer", "X-Trail"),
        ("Upgrade", SECRETS[5]),
        ("Proxy-Authenticate", 'Basic realm="%s"' % SECRETS[6]),
        ("Proxy-Authorization", "Basic " + SECRETS[7]),
        ("Transfer-Encoding", "chunked"),
    ]
    origin.responder = lambda req: http_response(200, head, chunked(parts, trailers=[b"X-Trail: t"]))
    url = origin.url("/store/hop")
    r1 = fetch(cache_proxy.port, url)
    assert r1.status == 200 and r1.body == body
    r2 = fetch(cache_proxy.port, url)
    assert is_hit(r2), r2.raw_head
    assert r2.body == body
    assert r2.get("x-e2e") == "end-to-end-kept"
    # a keep-alive HTTP/1.1 exchange: the hit has no Connection field at all
    # (nothing to close, RFC 9112 §9.3), nor any other of that kind
    assert_no_connection_fields(r2.names(), "a hit: %r" % r2.raw_head)
    for s in SECRETS:
        assert s.encode() not in r2.raw_head, "%s replayed by a hit: %r" % (s, r2.raw_head)
    assert len(requests_for(origin, "/store/hop")) == 1

    # the store itself, read with mdb_dump
    recs = cache_records(cache_proxy.cache_dir)
    assert len(recs) == 1, recs
    rec = recs[0]
    assert rec.magic == b"HCR\x1a" and rec.version == 2
    # the identity it was stored for: ("GET", the whole URI), length-prefixed
    u = url.encode()
    assert rec.ident == struct.pack(">Q", 3) + b"GET" + struct.pack(">Q", len(u)) + u, rec.ident
    assert rec.body == body
    assert rec.get_all("x-e2e") == ["end-to-end-kept"] and rec.get_all("etag") == ['"store-1"']
    assert_no_connection_fields(rec.names(), "the stored head %r" % rec.head)
    text = mdb_dump_all_print(cache_proxy.cache_dir)
    low = text.lower()
    for s in SECRETS:
        assert s.lower() not in low, "%s found in mdb_dump -a -p output" % s
    for n in CONNECTION_SPECIFIC + ["x-conn-listed"]:
        assert ("\\0d\\0a%s:" % n) not in low, "field %s: in mdb_dump -a -p output" % n


def test_304_merge_never_stores_connection_specific_fields(cache_proxy, origin):
    def responder(req):
        if req.get("if-none-match") == '"m1"':
            return http_response(304, [
                ("Cache-Control", "max-age=60"), ("ETag", '"m1"'), ("X-Fresh", "from-304"),
                ("Connection", "X-Conn-Listed"), ("X-Conn-Listed", SECRETS[0]),
                ("Keep-Alive", "timeout=3, x=" + SECRETS[2]), ("Proxy-Connection", SECRETS[3]),
                ("Proxy-Authenticate", "Basic realm=" + SECRETS[6]), ("Upgrade", SECRETS[5]),
                ("Trailer", "X-Whatever"), ("TE", SECRETS[4]),
            ], cl=False)
        return http_response(200, [("Cache-Control", "max-age=0"), ("ETag", '"m1"')], b"merge me")
    origin.responder = responder
    url = origin.url("/store/merge")
    fetch(cache_proxy.port, url)
    r2 = fetch(cache_proxy.port, url)
    assert r2.status == 200 and r2.body == b"merge me" and r2.get("x-fresh") == "from-304"
    assert requests_for(origin, "/store/merge")[1].get("if-none-match") == '"m1"'
    r3 = fetch(cache_proxy.port, url)
    assert is_hit(r3) and r3.get("x-fresh") == "from-304", r3.raw_head
    for r in (r2, r3):
        assert_no_connection_fields(r.names(), repr(r.raw_head))
        for s in SECRETS:
            assert s.encode() not in r.raw_head, r.raw_head
    recs = cache_records(cache_proxy.cache_dir)
    assert len(recs) == 1, recs
    assert recs[0].get_all("x-fresh") == ["from-304"]
    assert_no_connection_fields(recs[0].names(), "the merged head %r" % recs[0].head)
    low = mdb_dump_all_print(cache_proxy.cache_dir).lower()
    for s in SECRETS:
        assert s.lower() not in low, s


def _truncated_then_whole(origin, path, first):
    """Origin: `first` (a truncated response, then close) for the first
    request, a complete one afterwards. The pause before the close lets the
    head reach the client first, whatever the load (a close seen in the same
    pass as the head loses the head: see test_upstream_errors.py)."""
    n = [0]
    whole = data_of(1000, seed=3)

    def responder(req):
        n[0] += 1
        if n[0] == 1:
            return [first, 0.3, CLOSE]
        return http_response(200, [("Cache-Control", "max-age=60")], whole)
    origin.responder = responder
    return whole


def _read_cut(port, url, authority):
    with Client(port) as c:
        c.request("GET", url, [("Host", authority)])
        closed, data = c.wait_closed(timeout=3)
    assert closed, "the proxy must close a client whose response was cut"
    return data


def test_truncated_length_body_is_not_stored(cache_proxy, origin):
    part = data_of(1000, seed=3)[:400]
    whole = _truncated_then_whole(
        origin, "/store/cut", b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 1000\r\n\r\n" + part)
    url = origin.url("/store/cut")
    data = _read_cut(cache_proxy.port, url, origin.authority)
    assert data.endswith(part) and b"Content-Length: 1000" in data
    r = fetch(cache_proxy.port, url)
    assert len(requests_for(origin, "/store/cut")) == 2, "a truncated body was served from the store"
    assert r.body == whole and not is_hit(r)
    r = fetch(cache_proxy.port, url)
    assert is_hit(r) and r.body == whole
    for rec in cache_records(cache_proxy.cache_dir):
        assert rec.body == whole, "a truncated body is in the store: %r" % rec


def test_truncated_chunked_body_is_not_stored(cache_proxy, origin):
    whole = _truncated_then_whole(
        origin, "/store/cutc",
        b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"10\r\n0123456789abcdef\r\n10\r\n0123456789")
    url = origin.url("/store/cutc")
    _read_cut(cache_proxy.port, url, origin.authority)
    r = fetch(cache_proxy.port, url)
    assert len(requests_for(origin, "/store/cutc")) == 2, "a truncated body was served from the store"
    assert r.body == whole and not is_hit(r)
    assert is_hit(fetch(cache_proxy.port, url))


def test_object_larger_than_max_object_size_is_not_stored(cache_proxy_factory, origin):
    p = cache_proxy_factory(cache={"max_object_size": "1K"})
    bodies = {"/store/exact": data_of(1024, seed=5), "/store/over": data_of(1025, seed=6)}
    origin.responder = lambda req: http_response(200, [("Cache-Control", "max-age=60")], bodies[req.target])
    over = origin.url("/store/over")
    r = fetch(p.port, over)
    assert r.status == 200 and r.body == bodies["/store/over"], "a large object is served fine"
    assert r.get_all("cache-status") == ["hopcache; fwd=uri-miss"], r.raw_head
    r = fetch(p.port, over)
    assert r.body == bodies["/store/over"] and not is_hit(r)
    assert len(requests_for(origin, "/store/over")) == 2
    exact = origin.url("/store/exact")
    fetch(p.port, exact)
    r = fetch(p.port, exact)
    assert is_hit(r) and r.body == bodies["/store/exact"], "max_object_size itself is storable"
    assert [len(rec.body) for rec in cache_records(p.cache_dir)] == [1024]


def test_chunked_object_larger_than_max_object_size_is_not_stored(cache_proxy_factory, origin):
    p = cache_proxy_factory(cache={"max_object_size": "4K"})
    parts = [data_of(1500, seed=i) for i in range(6)]
    body = b"".join(parts)
    origin.responder = lambda req: http_response(
        200, [("Cache-Control", "max-age=60"), ("Transfer-Encoding", "chunked")], chunked(parts))
    url = origin.url("/store/bigchunked")
    for _ in range(2):
        r = fetch(p.port, url)
        assert r.status == 200 and r.body == body and not is_hit(r)
    assert len(requests_for(origin, "/store/bigchunked")) == 2
    assert cache_records(p.cache_dir) == []


def test_response_is_streamed_not_stored_and_forwarded(cache_proxy, origin):
    body = data_of(2 * 1024 * 1024, seed=9)
    first = 64 * 1024
    done = {}

    def responder(req):
        return [b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: %d\r\n\r\n" % len(body)
                + body[:first], 1.5, body[first:]]
    origin.responder = responder
    url = origin.url("/store/slow")
    with Client(cache_proxy.port, timeout=10) as c:
        t0 = time.monotonic()
        c.request("GET", url, [("Host", origin.authority)])
        head = c.reader.read_until(b"\r\n\r\n", timeout=1.0)
        got = c.reader.read_exact(first // 2, timeout=1.0)
        t_first = time.monotonic() - t0
        assert t_first < 1.0, "first body bytes after %.2fs: store-and-forward?" % t_first
        rest = c.reader.read_exact(len(body) - len(got), timeout=8)
        done["total"] = time.monotonic() - t0
    assert b" 200 " in head.split(b"\r\n")[0]
    assert got + rest == body
    assert done["total"] >= 1.4
    r = fetch(cache_proxy.port, url, timeout=10)
    assert is_hit(r), r.raw_head
    assert sha(r.body) == sha(body)
    assert len(requests_for(origin, "/store/slow")) == 1
