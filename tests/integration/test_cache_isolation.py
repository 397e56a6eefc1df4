"""A shared cache never serves one request's response to another (issue:
shared cache isolation). Each test here failed on the build before the
cache key was rewritten (src/proto/cache_key.c), and asserts the one answer
RFC 9110 / RFC 9111 give:

- Vary'd values compared whole (RFC 9111 §4.1), however long;
- the whole target URI as the key (RFC 9111 §2), however long;
- a record found under a key but stored for another request is a miss;
- an upgrade never joins collapsed forwarding;
- HEAD ignores Range (RFC 9110 §14.2);
- hits never carry Set-Cookie / Set-Cookie2 (RFC 6265 §8);
- Age: a list -> the first member, an invalid value -> ignored (RFC 9111 §5.1);
- a request that stopped waiting for another's fetch is not woken later.
"""

import json
import socket
import struct
import subprocess
import threading
import time

import pytest

from helpers import (Client, Reader, build_request, cache_records, fetch, http_date, http_response,
                     read_response, requests_for)

from test_cache_rfc9111 import Counter, fresh_hit, get, hits_at_origin, is_hit


def stamped(origin, headers):
    """Responder: 200 with `headers`, body = '<target> #<n>' (n counts every
    response the origin sent), so each client sees which response it got."""
    return Counter(origin, headers)


# ---------------------------------------------------------------------------
# the key: complete values, whole URIs


def test_vary_cookie_values_sharing_512_bytes_are_different_variants(cache_proxy, origin):
    stamped(origin, [("Cache-Control", "max-age=600"), ("Vary", "Cookie")])
    shared = "sid=" + "s" * 508  # 512 bytes in common
    alice = shared + "A" * 190   # ~700 bytes each
    bob = shared + "B" * 190
    r1 = get(cache_proxy, origin, "/v/cookie", [("Cookie", alice)])
    assert r1.body == b"/v/cookie #1"
    r2 = get(cache_proxy, origin, "/v/cookie", [("Cookie", bob)])
    assert r2.body == b"/v/cookie #2" and not is_hit(r2), \
        "bob was served alice's variant: %r" % r2.raw_head
    # each user's own variant is then reused for that user only
    r3 = get(cache_proxy, origin, "/v/cookie", [("Cookie", alice)])
    r4 = get(cache_proxy, origin, "/v/cookie", [("Cookie", bob)])
    assert fresh_hit(r3) and r3.body == b"/v/cookie #1"
    assert fresh_hit(r4) and r4.body == b"/v/cookie #2"
    assert hits_at_origin(origin, "/v/cookie") == 2


def test_vary_value_boundary_between_two_fields(cache_proxy, origin):
    """X-A: ab + X-B: c must not match X-A: a + X-B: bc."""
    stamped(origin, [("Cache-Control", "max-age=600"), ("Vary", "X-A, X-B")])
    r1 = get(cache_proxy, origin, "/v/ab", [("X-A", "ab"), ("X-B", "c")])
    r2 = get(cache_proxy, origin, "/v/ab", [("X-A", "a"), ("X-B", "bc")])
    assert r1.body == b"/v/ab #1"
    assert r2.body == b"/v/ab #2" and not is_hit(r2)


def test_vary_split_and_joined_lines_are_one_variant(cache_proxy, origin):
    """RFC 9111 §4.1: combining field lines and whitespace around commas do
    not make another variant."""
    stamped(origin, [("Cache-Control", "max-age=600"), ("Vary", "Accept-Language")])
    get(cache_proxy, origin, "/v/lines", [("Accept-Language", "de, en;q=0.5")])
    r = get(cache_proxy, origin, "/v/lines",
            [("Accept-Language", "de"), ("accept-language", "en;q=0.5")])
    assert fresh_hit(r) and r.body == b"/v/lines #1", r.raw_head


def test_long_targets_sharing_2047_bytes_are_different_entries(cache_proxy, origin):
    stamped(origin, [("Cache-Control", "max-age=600")])
    base = "/t/" + "p" * 2044          # 2,047 bytes in common
    one, two = base + "1" + "x" * 60, base + "2" + "x" * 60
    r1 = get(cache_proxy, origin, one)
    r2 = get(cache_proxy, origin, two)
    assert r1.body == ("%s #1" % one).encode()
    assert r2.body == ("%s #2" % two).encode() and not is_hit(r2), \
        "the second URL got the first URL's body"
    assert fresh_hit(get(cache_proxy, origin, two))


def test_purge_and_invalidation_of_long_targets(cache_proxy, origin):
    """The same key function names entries for PURGE and for invalidation
    after an unsafe method (RFC 9111 §4.4), however long the URI."""
    def responder(req):
        if req.method == "POST":
            return http_response(201, [("Location", long_b)], b"")
        return http_response(200, [("Cache-Control", "max-age=600")], req.target.encode())
    long_a = "/i/" + "a" * 5000
    long_b = "/i/" + "b" * 5000
    origin.responder = responder
    for t in (long_a, long_b):
        get(cache_proxy, origin, t)
        assert fresh_hit(get(cache_proxy, origin, t))
    r = get(cache_proxy, origin, long_a, method="POST", body=b"x")
    assert r.status == 201
    assert not is_hit(get(cache_proxy, origin, long_a)), "the POST's target stayed stored"
    assert not is_hit(get(cache_proxy, origin, long_b)), "its same-origin Location stayed stored"


def _swap_records(env_dir, key_a, key_b):
    """Exchange the values stored under two keys, with mdb_dump/mdb_load
    (lmdb-utils): the record of one request now sits under the other's key."""
    dump = subprocess.run(["mdb_dump", "-s", "objects", env_dir], capture_output=True,
                          timeout=10, check=True).stdout.decode("ascii").splitlines()
    head, items, tail, in_data = [], [], [], False
    for line in dump:
        if line == "HEADER=END":
            head.append(line)
            in_data = True
        elif line == "DATA=END":
            in_data = False
            tail.append(line)
        elif in_data:
            items.append(line)
        elif not tail:
            head.append(line)
    pairs = dict(zip(items[0::2], items[1::2]))
    ka, kb = " " + key_a.hex(), " " + key_b.hex()
    assert ka in pairs and kb in pairs
    out = head + [ka, pairs[kb], kb, pairs[ka]] + tail
    subprocess.run(["mdb_load", "-s", "objects", env_dir], input="\n".join(out).encode() + b"\n",
                   timeout=10, check=True)


def test_record_stored_for_another_request_is_a_counted_miss(cache_proxy, origin):
    """Defence in depth: the record keeps the full URI it was stored for and
    a hit compares it byte for byte, so even a record sitting under the
    wrong key (what a SHA-256 collision would look like) is never served."""
    stamped(origin, [("Cache-Control", "max-age=600")])
    get(cache_proxy, origin, "/d/alice")
    get(cache_proxy, origin, "/d/bob")
    recs = {r.ident: r for r in cache_records(cache_proxy.cache_dir)}
    by_path = {}
    for ident, rec in recs.items():
        by_path[ident.split(b"/d/")[-1].decode()] = rec.key
    _swap_records(cache_proxy.cache_dir, by_path["alice"], by_path["bob"])
    r = get(cache_proxy, origin, "/d/bob")
    assert r.body == b"/d/bob #3" and not is_hit(r), "bob was served alice's stored response"
    with Client(cache_proxy.port) as c:
        m = c.exchange("GET", "/hopcache/metrics", [("Host", "127.0.0.1:%d" % cache_proxy.port)])
    assert b"hopcache_cache_key_mismatches_total 1\n" in m.body, m.body
    assert "stored for another request" in cache_proxy.error_log_text()


# ---------------------------------------------------------------------------
# upgrades, HEAD + Range


SWITCH = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")


def test_concurrent_upgrades_never_collapse(cache_proxy, origin):
    """Three clients send the same GET with Connection: Upgrade at once:
    each is its own connection to the origin and gets its own 101 while the
    others' upgraded connections are still open (the barrier: nobody goes
    on until all three are switched)."""
    arrived = threading.Semaphore(0)
    all_switched = threading.Barrier(3, timeout=4)

    def handler(conn):
        req = conn.read_request()
        if req is None:
            return
        arrived.release()
        conn.send(SWITCH + req.get("x-client").encode())
        d = conn.recv_some(timeout=5)
        if d:
            conn.send(d)
    origin.handler = handler
    url = origin.url("/ws/same")
    clients, results = [], [None] * 3

    def one(i):
        with cache_proxy.client(timeout=5) as c:
            c.request("GET", url, [("Host", origin.authority), ("Connection", "Upgrade"),
                                   ("Upgrade", "websocket"), ("X-Client", "c%d" % i)])
            interim, r = c.read_final()
            first = c.reader.read_exact(2, timeout=5)
            all_switched.wait()
            c.send(b"ping%d" % i)
            echo = c.reader.read_exact(5, timeout=5)
            results[i] = (r.status, first, echo)
    for i in range(3):
        t = threading.Thread(target=one, args=(i,))
        t.start()
        clients.append(t)
    for t in clients:
        t.join(timeout=15)
    for i in range(3):
        assert results[i] == (101, b"c%d" % i, b"ping%d" % i), results
    assert len(requests_for(origin, "/ws/same")) == 3
    assert cache_records(cache_proxy.cache_dir) == []


def test_head_with_range_on_stored_object_is_200(cache_proxy, origin):
    stamped(origin, [("Cache-Control", "max-age=600"), ("Accept-Ranges", "bytes")])
    body = get(cache_proxy, origin, "/r/head").body
    r = get(cache_proxy, origin, "/r/head", [("Range", "bytes=0-9")], method="HEAD")
    assert r.status == 200, r.raw_head
    assert fresh_hit(r)
    assert r.get("content-length") == str(len(body)) and not r.has("content-range"), r.raw_head
    # GET with the same Range still gets its 206
    g = get(cache_proxy, origin, "/r/head", [("Range", "bytes=0-3")])
    assert g.status == 206 and g.body == body[:4]


# ---------------------------------------------------------------------------
# Set-Cookie


def test_set_cookie_of_a_public_login_page_goes_to_its_user_only(cache_proxy, origin):
    stamped(origin, [("Cache-Control", "public, max-age=600"), ("Set-Cookie", "sid=USER1; Path=/")])
    r1 = get(cache_proxy, origin, "/login", [("Cookie", "u=1")])
    assert r1.get_all("set-cookie") == ["sid=USER1; Path=/"]
    r2 = get(cache_proxy, origin, "/login", [("Cookie", "u=2")])
    assert fresh_hit(r2) and r2.body == b"/login #1", r2.raw_head
    assert not r2.has("set-cookie") and b"USER1" not in r2.raw_head, r2.raw_head
    # HEAD from the store, too
    h = get(cache_proxy, origin, "/login", method="HEAD")
    assert fresh_hit(h) and not h.has("set-cookie"), h.raw_head


def test_revalidated_response_carries_only_the_304s_cookie(cache_proxy_factory, origin):
    """After a 304 the client gets the stored response: the stored cookie
    (another client's) never, the 304's own cookie (this client's) yes, and
    the store does not keep it."""
    p = cache_proxy_factory()
    state = {"n": 0}

    def responder(req):
        state["n"] += 1
        if req.get("if-none-match") == '"v1"':
            return http_response(304, [("ETag", '"v1"'), ("Cache-Control", "max-age=0"),
                                       ("Set-Cookie", "fresh=%d" % state["n"])], cl=False)
        return http_response(200, [("ETag", '"v1"'), ("Cache-Control", "max-age=0"),
                                   ("Set-Cookie", "first=1")], b"payload")
    origin.responder = responder
    r1 = get(p, origin, "/rv")
    assert r1.get_all("set-cookie") == ["first=1"]
    r2 = get(p, origin, "/rv")
    assert r2.status == 200 and r2.body == b"payload", r2.raw_head
    assert r2.get_all("set-cookie") == ["fresh=2"], r2.raw_head
    for rec in cache_records(p.cache_dir):
        assert b"fresh=" not in rec.head, rec


# ---------------------------------------------------------------------------
# Age (RFC 9111 §5.1)


AGE_CASES = [
    (["0, 0"], True),
    (["0", "0"], True),
    (["0, 7200"], True),
    (["0", "7200"], True),
    (["1.5"], True),
    (["-1"], True),
    (["abc"], True),
    (["7200;foo=1"], True),
    (["7200, 0"], False),
    (["7200", "0"], False),
    (["2147483648"], False),
]


@pytest.mark.parametrize("case", range(len(AGE_CASES)))
def test_age_parsing(cache_proxy, origin, case):
    ages, reused = AGE_CASES[case]
    path = "/age/%d" % case
    stamped(origin, [("Date", http_date(0)), ("Cache-Control", "max-age=3600")] +
            [("Age", a) for a in ages])
    get(cache_proxy, origin, path)
    r = get(cache_proxy, origin, path)
    if reused:
        assert fresh_hit(r) and r.body == ("%s #1" % path).encode(), (ages, r.raw_head)
    else:
        assert not is_hit(r) and r.body == ("%s #2" % path).encode(), (ages, r.raw_head)


# ---------------------------------------------------------------------------
# collapsed forwarding: a waiter that timed out


def test_waiter_that_timed_out_is_not_woken_later(cache_proxy_factory, origin):
    """A request waits for another's fetch of the same URI, tires of it
    (connect_timeout + upstream_timeout), fetches on its own and is answered.
    When the first fetch ends later, the waiter's connection, idle by then,
    must not be touched: its next request is answered. (Before the fix the
    waiter stayed queued until its own request ended; request_done then
    left the queue, so this path held, but a waiter failed with an error
    page in CONN_FLUSH_CLOSE could still be woken and cut.)"""
    p = cache_proxy_factory(ini_extra={"limits": {"connect_timeout": "1", "upstream_timeout": "1",
                                                   "idle_timeout": "30"}})
    n = {"count": 0}
    lock = threading.Lock()

    def responder(req):
        with lock:
            n["count"] += 1
            k = n["count"]
        if req.target == "/slow" and k == 1:
            # the leader: head now, then the body dribbles for ~4 s
            head = (b"HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\n"
                    b"Content-Length: 8\r\n\r\n")
            out = [head]
            for _ in range(8):
                out += [0.5, b"x"]
            return out
        return http_response(200, [("Cache-Control", "no-store")], b"own-%d" % k)
    origin.responder = responder
    url = origin.url("/slow")
    leader = threading.Thread(target=lambda: fetch(p.port, url, timeout=10))
    leader.start()
    time.sleep(0.3)
    with p.client(timeout=10) as w:
        t0 = time.monotonic()
        r = w.exchange("GET", url, [("Host", origin.authority)])
        assert r.status == 200 and r.body.startswith(b"own-"), r.raw_head
        assert time.monotonic() - t0 < 3.5
        leader.join(timeout=10)
        time.sleep(0.5)  # the leader's fetch has ended: the old code woke us here
        r2 = w.exchange("GET", origin.url("/next"), [("Host", origin.authority)])
        assert r2.status == 200 and r2.body.startswith(b"own-"), r2.raw_head


# ---------------------------------------------------------------------------
# the access log of a hit


def test_access_log_content_type_of_hits(cache_proxy_factory, origin):
    p = cache_proxy_factory(ini_extra={"log": {"access_format": "json"}})
    stamped(origin, [("Cache-Control", "max-age=600"), ("Content-Type", "text/x-hit-check")])
    get(p, origin, "/log/ct")
    get(p, origin, "/log/ct")
    get(p, origin, "/log/ct", method="HEAD")
    deadline = time.monotonic() + 3
    entries = []
    while time.monotonic() < deadline:
        entries = [json.loads(l) for l in p.read_access_log() if l.startswith("{")]
        if len(entries) >= 3:
            break
        time.sleep(0.05)
    assert [e.get("content_type") for e in entries[:3]] == ["text/x-hit-check"] * 3, entries


def test_long_validator_is_sent_whole(cache_proxy, origin):
    """A stale entry is revalidated with its own validators, however long
    (before: an ETag over ~1000 bytes was left out and the request went
    upstream unconditional)."""
    etag = '"' + "e" * 1500 + '"'

    def responder(req):
        if req.get("if-none-match") == etag:
            return http_response(304, [("ETag", etag), ("Cache-Control", "max-age=0")], cl=False)
        return http_response(200, [("ETag", etag), ("Cache-Control", "max-age=0")], b"v1-body")
    origin.responder = responder
    get(cache_proxy, origin, "/etag/long")
    r = get(cache_proxy, origin, "/etag/long")
    reqs = requests_for(origin, "/etag/long")
    assert len(reqs) == 2 and reqs[1].get("if-none-match") == etag, reqs[1].raw_head[:200]
    assert r.status == 200 and r.body == b"v1-body"
    assert "fwd-status=304" in r.get("cache-status"), r.raw_head


def test_304_merge_that_outgrows_max_headers(cache_proxy_factory, origin):
    """Found by fuzz_conn: a 304 whose fields, merged into the stored head,
    make more fields than [limits] max_headers. The merged head was stored,
    could not be parsed again, and the 304 itself was then relayed with the
    stored response's fields in place of its own (undefined keep flags; an
    unconditional client got a 304). Now the merge that would not fit is not
    stored and the client gets the stored response, validated."""
    p = cache_proxy_factory(ini_extra={"limits": {"max_headers": "12"}})
    base = [("ETag", '"m"'), ("Cache-Control", "max-age=0"), ("Date", http_date())]

    def responder(req):
        if req.get("if-none-match") == '"m"':
            return http_response(304, base + [("X-New-%d" % i, "n") for i in range(9)], cl=False)
        return http_response(200, base + [("X-Old-%d" % i, "o") for i in range(8)], b"stored-body")
    origin.responder = responder
    assert get(p, origin, "/merge/big").body == b"stored-body"
    for _ in range(2):
        r = get(p, origin, "/merge/big")
        assert r.status == 200 and r.body == b"stored-body", r.raw_head
        assert "fwd-status=304" in r.get("cache-status"), r.raw_head


# ---------------------------------------------------------------------------
# found in review: what a record answers when its response changes under it


def test_304_that_adds_vary_drops_the_record(cache_proxy, origin):
    """A stored response without Vary is revalidated by alice; the 304 says
    Vary: Cookie. The record's key knew no Vary, so it cannot answer bob:
    alice gets the validated response, the record is dropped."""
    n = {"n": 0}

    def responder(req):
        if req.get("if-none-match") == '"v1"':
            return http_response(304, [("ETag", '"v1"'), ("Cache-Control", "max-age=600"),
                                       ("Vary", "Cookie")], cl=False)
        n["n"] += 1
        return http_response(200, [("ETag", '"v1"'), ("Cache-Control", "max-age=0")],
                             ("body #%d" % n["n"]).encode())
    origin.responder = responder
    get(cache_proxy, origin, "/pv")
    r2 = get(cache_proxy, origin, "/pv", [("Cookie", "user=alice")])
    assert r2.status == 200 and r2.body == b"body #1", r2.raw_head
    r3 = get(cache_proxy, origin, "/pv", [("Cookie", "user=bob")])
    assert not is_hit(r3) and r3.body == b"body #2", r3.raw_head


def test_connect_after_a_stale_get_never_gets_the_stored_response(cache_proxy, origin):
    """The cache state of a GET must not carry over to the next request on
    the connection: a CONNECT to a dead port after a GET whose stale entry
    stale-if-error covers gets its own 502, not the GET's stored 200."""
    n = {"n": 0}

    def responder(req):
        n["n"] += 1
        return http_response(200, [("Cache-Control", "max-age=1, stale-if-error=600")],
                             ("stored #%d" % n["n"]).encode())
    origin.responder = responder
    get(cache_proxy, origin, "/sie")
    time.sleep(2.2)
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]  # bound, never listening: refused
    try:
        with Client(cache_proxy.port) as c:
            r = c.exchange("GET", origin.url("/sie"), [("Host", origin.authority)])
            assert r.status == 200 and r.body == b"stored #2", r.raw_head
            c.request("CONNECT", "127.0.0.1:%d" % port, [("Host", "127.0.0.1:%d" % port)])
            rc = c.read_response()
    finally:
        dead.close()
    assert rc.status == 502 and "error=connection_refused" in rc.get("proxy-status"), rc.raw_head
    assert not rc.has("cache-status"), rc.raw_head


def test_purge_while_a_variant_is_being_stored(cache_proxy, origin):
    """PURGE deletes the Vary marker while another variant's body is still
    arriving; storing that variant must not write the purged generation
    back (which would make the purged variants reachable again)."""
    n = {"n": 0}

    def responder(req):
        n["n"] += 1
        body = ("%s #%d" % (req.get("x-v"), n["n"])).encode()
        full = http_response(200, [("Cache-Control", "max-age=600"), ("Vary", "X-V")], body)
        if req.get("x-v") == "slow":
            i = full.index(b"\r\n\r\n") + 4
            return [full[:i], 1.5, full[i:]]
        return full
    origin.responder = responder
    assert get(cache_proxy, origin, "/pg", [("X-V", "a")]).body == b"a #1"
    assert fresh_hit(get(cache_proxy, origin, "/pg", [("X-V", "a")]))
    out = {}
    t = threading.Thread(target=lambda: out.setdefault(
        "r", get(cache_proxy, origin, "/pg", [("X-V", "slow")])))
    t.start()
    time.sleep(0.5)
    with Client(cache_proxy.port) as c:
        pr = c.exchange("PURGE", origin.url("/pg"), [("Host", origin.authority)])
    assert pr.status == 200
    t.join(timeout=10)
    assert out["r"].body == b"slow #2"
    r = get(cache_proxy, origin, "/pg", [("X-V", "a")])
    assert not is_hit(r) and r.body == b"a #3", r.raw_head
    # the slow variant itself was stored under a generation of its own
    s = get(cache_proxy, origin, "/pg", [("X-V", "slow")])
    assert fresh_hit(s) and s.body == b"slow #2", s.raw_head


def _get_from(src_ip, port, url, host):
    """One GET through the proxy from a socket bound to src_ip."""
    s = socket.socket()
    s.settimeout(5)
    s.bind((src_ip, 0))
    s.connect(("127.0.0.1", port))
    try:
        s.sendall(build_request("GET", url, [("Host", host)]))
        return read_response(Reader(s, 5))
    finally:
        s.close()


def test_vary_on_x_forwarded_for_set_by_the_proxy_is_not_stored(cache_proxy_factory, origin):
    """With [proxy] x_forwarded_for the origin sees the client's address,
    which the request as received does not hold: a response that varies on
    it cannot be keyed, so it is not stored."""
    p = cache_proxy_factory(ini_extra={"proxy": {"x_forwarded_for": "yes"}})
    origin.responder = lambda req: http_response(
        200, [("Cache-Control", "max-age=600"), ("Vary", "X-Forwarded-For")],
        ("for %s" % req.get("x-forwarded-for")).encode())
    r1 = _get_from("127.0.0.1", p.port, origin.url("/xff"), origin.authority)
    r2 = _get_from("127.0.0.2", p.port, origin.url("/xff"), origin.authority)
    assert r1.status == 200 and r1.body == b"for 127.0.0.1", r1
    assert r2.status == 200 and r2.body == b"for 127.0.0.2", r2
    assert cache_records(p.cache_dir) == []


def test_only_if_cached_on_stale_logs_no_stored_content_type(cache_proxy_factory, origin):
    """The 504 for only-if-cached on a stale entry is the proxy's own: its
    access-log line has no Content-Type (before, it read the stored one
    through released LMDB pages)."""
    p = cache_proxy_factory(ini_extra={"log": {"access_format": "json"}})
    origin.responder = lambda req: http_response(
        200, [("Cache-Control", "max-age=1"), ("ETag", '"e"'),
              ("Content-Type", "text/x-from-the-map")], b"x")
    get(p, origin, "/oic")
    time.sleep(2.2)
    r = get(p, origin, "/oic", [("Cache-Control", "only-if-cached")])
    assert r.status == 504
    deadline = time.monotonic() + 3
    entries = []
    while time.monotonic() < deadline:
        entries = [json.loads(l) for l in p.read_access_log() if l.startswith("{")]
        if any(e.get("status") == 504 for e in entries):
            break
        time.sleep(0.05)
    e = [e for e in entries if e.get("status") == 504]
    assert len(e) == 1 and e[0]["content_type"] is None, entries
