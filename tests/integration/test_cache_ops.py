"""Cache operations and robustness: PURGE (allowed, unknown, refused),
`hopcache --purge` / `--cache-stats`, eviction in a small map, SIGKILL of a
worker or of the whole process tree under write load (then a restart on
the same store serves only byte-identical objects), unusable cache dirs and
records the proxy must not misread."""

import hashlib
import os
import re
import signal
import struct
import subprocess
import threading
import time

from conftest import BINARY
from helpers import (Client, cache_records, chunked, data_of, fetch, http_response, mdb_dump_db,
                     requests_for, wait_for)

CS_HIT = re.compile(r"^hopcache; hit; ttl=(-?\d+)$")


def is_hit(r):
    return any(v.startswith("hopcache; hit") for v in r.get_all("cache-status"))


def fresh_hit(r):
    return any(CS_HIT.match(v) for v in r.get_all("cache-status"))


def counting(origin, cc="max-age=60"):
    n = {}

    def responder(req):
        n[req.target] = n.get(req.target, 0) + 1
        return http_response(200, [("Cache-Control", cc)], ("%s #%d" % (req.target, n[req.target])).encode())
    origin.responder = responder


def purge(port, url, timeout=5):
    with Client(port, timeout=timeout) as c:
        return c.exchange("PURGE", url, [("Host", url.split("/")[2])])


# ---------------------------------------------------------------------------
# PURGE


def test_purge_then_miss(cache_proxy, origin):
    counting(origin)
    url = origin.url("/purge/me")
    fetch(cache_proxy.port, url)
    assert fresh_hit(fetch(cache_proxy.port, url))
    r = purge(cache_proxy.port, url)
    assert r.status == 200, r
    r = fetch(cache_proxy.port, url)
    assert r.get_all("cache-status") == ["hopcache; fwd=uri-miss; stored"], r.raw_head
    assert r.body == b"/purge/me #2"
    assert [q.method for q in origin.requests] == ["GET", "GET"], "PURGE must not reach the origin"
    e = cache_proxy.wait_access(lambda e: e.get("method") == "PURGE")
    assert e and e["outcome"] == "PURGED" and e["status"] == "200", e


def test_purge_removes_every_variant(cache_proxy, origin):
    origin.responder = lambda req: http_response(
        200, [("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")],
        ("lang " + (req.get("accept-language") or "-")).encode())
    url = origin.url("/purge/vary")
    for lang in ("en", "fr"):
        fetch(cache_proxy.port, url, [("Accept-Language", lang)])
        assert fresh_hit(fetch(cache_proxy.port, url, [("Accept-Language", lang)]))
    assert purge(cache_proxy.port, url).status == 200
    for lang in ("en", "fr"):
        r = fetch(cache_proxy.port, url, [("Accept-Language", lang)])
        assert not is_hit(r) and r.body == ("lang " + lang).encode()
    assert len(requests_for(origin, "/purge/vary")) == 4


def test_purge_unknown_url_is_404(cache_proxy, origin):
    r = purge(cache_proxy.port, origin.url("/purge/never-stored"))
    assert r.status == 404, r
    assert origin.requests == []
    # the connection stays usable after a PURGE
    counting(origin)
    with Client(cache_proxy.port) as c:
        a = c.exchange("PURGE", origin.url("/purge/x"), [("Host", origin.authority)])
        b = c.exchange("GET", origin.url("/purge/x"), [("Host", origin.authority)])
    assert a.status == 404 and b.status == 200


def test_purge_from_disallowed_client_is_403(cache_proxy_factory, origin):
    p = cache_proxy_factory(cache={"purge_allow": "10.0.0.0/8"})
    counting(origin)
    url = origin.url("/purge/denied")
    fetch(p.port, url)
    r = purge(p.port, url)
    assert r.status == 403, r
    assert fresh_hit(fetch(p.port, url)), "a refused PURGE removed the entry"
    assert [q.method for q in origin.requests] == ["GET"]


# ---------------------------------------------------------------------------
# command line


def run_cli(proxy, *args, timeout=10):
    return subprocess.run([BINARY, "-c", proxy.ini] + list(args), capture_output=True, timeout=timeout)


def test_cli_purge(cache_proxy, origin):
    counting(origin)
    url = origin.url("/cli/purge")
    fetch(cache_proxy.port, url)
    p = run_cli(cache_proxy, "--purge", url)
    assert p.returncode == 0, p
    assert b"purged" in p.stdout
    r = fetch(cache_proxy.port, url)
    assert not is_hit(r) and r.body == b"/cli/purge #2", "the running proxy still served it"
    p = run_cli(cache_proxy, "--purge", origin.url("/cli/unknown"))
    assert p.returncode == 1 and b"not cached" in p.stdout, p
    p = run_cli(cache_proxy, "--purge", "not-a-url")
    assert p.returncode == 2, "hopcache(8): --purge exits 2 for a URL that is not absolute: %r" % p


def test_cli_cache_stats(cache_proxy, origin):
    counting(origin)
    for i in range(3):
        url = origin.url("/cli/stats%d" % i)
        fetch(cache_proxy.port, url)
        fetch(cache_proxy.port, url)
    fetch(cache_proxy.port, origin.url("/cli/stats0"))
    assert cache_proxy.stop() == 0
    p = run_cli(cache_proxy, "--cache-stats")
    assert p.returncode == 0, p
    out = p.stdout.decode()
    st = dict(l.split(None, 1) for l in out.splitlines() if l.strip())
    assert int(st["entries"]) == 3, out
    assert int(st["bytes"]) > 3 * len("/cli/statsN #1"), out
    assert int(st["hits"]) == 4, out
    assert int(st["misses"]) == 3, out


# ---------------------------------------------------------------------------
# eviction


def test_small_map_evicts_and_never_fails_a_request(cache_proxy_factory, origin):
    p = cache_proxy_factory(cache={"size": "1M", "max_object_size": "300K"})
    size = 100 * 1024
    origin.responder = lambda req: http_response(
        200, [("Cache-Control", "max-age=600")], data_of(size, seed=int(req.target.rsplit("/", 1)[1])))
    with Client(p.port, timeout=10) as c:
        for i in range(40):
            r = c.exchange("GET", origin.url("/evict/%d" % i), [("Host", origin.authority)])
            assert r.status == 200 and r.body == data_of(size, seed=i), i
    r = fetch(p.port, origin.url("/evict/39"))
    assert fresh_hit(r) and r.body == data_of(size, seed=39), "the most recent object was evicted"
    assert os.path.getsize(os.path.join(p.cache_dir, "data.mdb")) <= 1024 * 1024
    recs = cache_records(p.cache_dir)
    assert 1 <= len(recs) <= 9, len(recs)
    for rec in recs:
        assert len(rec.body) == size
    assert p.stop() == 0


# ---------------------------------------------------------------------------
# robustness: SIGKILL under write load


def obj_body(i):
    """Deterministic body for object i with an embedded checksum."""
    payload = data_of(512 + (i * 7919) % (96 * 1024), seed=1000 + i)
    return payload + b"\nsha256=" + hashlib.sha256(payload).hexdigest().encode() + b"\n"


def body_ok(b):
    m = re.search(rb"\nsha256=([0-9a-f]{64})\n$", b)
    return bool(m) and hashlib.sha256(b[:m.start()]).hexdigest().encode() == m.group(1)


def robust_origin(origin, state):
    def responder(req):
        i = int(req.target.rsplit("/", 1)[1])
        if state["v2"]:
            # not stored: the check after a restart must see only what the load stored
            return http_response(200, [("Cache-Control", "no-store")], b"v2 object %d" % i)
        body = obj_body(i)
        if i % 2:
            n = len(body) // 3 + 1
            return http_response(200, [("Cache-Control", "max-age=600"), ("Transfer-Encoding", "chunked")],
                                 chunked([body[:n], body[n:2 * n], body[2 * n:]]))
        return http_response(200, [("Cache-Control", "max-age=600")], body)
    origin.responder = responder


def load(port, origin, stop, first, seen, errors):
    """Fetch /obj/first, first+1, ... over keep-alive until stop is set."""
    i = first
    c = None
    while not stop.is_set():
        try:
            if c is None:
                c = Client(port, timeout=3)
            r = c.exchange("GET", origin.url("/obj/%d" % i), [("Host", origin.authority)])
            seen.append(i)
            if r.body != obj_body(i):
                errors.append("object %d: wrong body during the load (%d bytes)" % (i, len(r.body)))
        except Exception:  # killed workers reset connections: reconnect
            if c is not None:
                c.close()
            c = None
            seen.append(i)
            time.sleep(0.01)
        i += 1
    if c is not None:
        c.close()


def run_load(p, origin, during, seconds=2.0, threads=4):
    stop = threading.Event()
    seen, errors = [], []
    ts = [threading.Thread(target=load, args=(p.port, origin, stop, k * 100000, seen, errors), daemon=True)
          for k in range(threads)]
    for t in ts:
        t.start()
    during()
    time.sleep(max(0.0, seconds))
    stop.set()
    for t in ts:
        t.join(10)
    assert not errors, errors[:5]
    return sorted(set(seen))


def verify_store(p, origin, ids, min_hits):
    """Every object the store serves is byte-identical to the origin's v1."""
    hits = 0
    with Client(p.port, timeout=10) as c:
        for i in ids:
            r = c.exchange("GET", origin.url("/obj/%d" % i), [("Host", origin.authority)])
            assert r.status == 200, (i, r)
            if is_hit(r):
                hits += 1
                assert r.body == obj_body(i), "object %d served from the store differs (%d bytes): %r" % (i, len(r.body), r.raw_head)
                assert body_ok(r.body)
            else:
                assert r.body == b"v2 object %d" % i, (i, r.raw_head)
    assert hits >= min_hits, "only %d of %d objects survived in the store" % (hits, len(ids))
    print("%s: %d of %d objects served from the store" % (p.cache_dir, hits, len(ids)))
    return hits


def test_sigkill_worker_under_write_load_then_restart(cache_proxy_factory, origin):
    state = {"v2": False}
    robust_origin(origin, state)
    p = cache_proxy_factory(workers=2)
    p.allow_worker_deaths = True
    p.wait_workers(2)

    killed = []

    def killer():
        for _ in range(3):
            time.sleep(0.4)
            w = wait_for(lambda: [x for x in p.workers() if x not in killed], timeout=5)
            assert w, "no live worker to kill after %r" % killed
            os.kill(w[0], signal.SIGKILL)
            killed.append(w[0])
    ids = run_load(p, origin, killer, seconds=0.6)
    assert len(killed) == 3, killed
    assert len(ids) > 40, "the load fetched only %d objects" % len(ids)
    assert p.running()
    state["v2"] = True
    verify_store(p, origin, ids, min_hits=20)
    assert p.stop() == 0
    p2 = cache_proxy_factory(workers=2, cache_dir=p.cache_dir)
    verify_store(p2, origin, ids, min_hits=20)


def test_sigkill_whole_process_tree_under_write_load_then_restart(cache_proxy_factory, origin):
    state = {"v2": False}
    robust_origin(origin, state)
    p = cache_proxy_factory(workers=2)
    p.allow_worker_deaths = True
    p.wait_workers(2)

    def killer():
        time.sleep(1.0)
        pids = p.workers() + [p.pid]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
    ids = run_load(p, origin, killer, seconds=0.2)
    p.proc.wait(5)
    assert len(ids) > 40, "the load fetched only %d objects" % len(ids)
    state["v2"] = True
    p2 = cache_proxy_factory(workers=2, cache_dir=p.cache_dir)
    p2.allow_worker_deaths = False
    verify_store(p2, origin, ids, min_hits=20)
    # and the reopened store keeps working for writes
    state["v2"] = False
    r = fetch(p2.port, origin.url("/obj/999999"))
    assert r.body == obj_body(999999)
    assert fresh_hit(fetch(p2.port, origin.url("/obj/999999")))


# ---------------------------------------------------------------------------
# unusable cache dirs and records


def assert_serves_without_cache(p, origin, path):
    counting(origin)
    for i in range(2):
        r = fetch(p.port, origin.url(path))
        assert r.status == 200 and r.body == ("%s #%d" % (path, i + 1)).encode(), r
        assert not is_hit(r)
    assert len(requests_for(origin, path)) == 2


def assert_clear_error(p, cache_dir):
    # "listening on" (what the fixture waits for) is logged before the store is opened
    wait_for(lambda: "started with" in p.logs_text(), timeout=5)
    logs = p.logs_text()
    lines = [l for l in logs.splitlines() if cache_dir in l]
    assert lines, "no log line names the cache dir %s:\n%s" % (cache_dir, logs[-2000:])
    assert any("[error]" in l for l in lines), lines


def test_cache_dir_is_a_regular_file(cache_proxy_factory, origin, tmp_path):
    path = str(tmp_path / "not-a-dir")
    with open(path, "w") as f:
        f.write("I am a file\n")
    p = cache_proxy_factory(cache_dir=path)
    assert p.running()
    assert_clear_error(p, path)
    assert_serves_without_cache(p, origin, "/baddir/file")
    assert open(path).read() == "I am a file\n"


def test_garbage_data_mdb(cache_proxy_factory, origin, tmp_path):
    d = str(tmp_path / "garbage")
    os.makedirs(d)
    junk = data_of(256 * 1024, seed=77)
    with open(os.path.join(d, "data.mdb"), "wb") as f:
        f.write(junk)
    p = cache_proxy_factory(cache_dir=d, workers=2)
    assert p.running()
    assert_clear_error(p, d)
    assert_serves_without_cache(p, origin, "/baddir/garbage")


def test_unknown_store_format_version_is_refused(cache_proxy_factory, origin):
    counting(origin)
    p = cache_proxy_factory()
    fetch(p.port, origin.url("/fmt/a"))
    assert p.stop() == 0
    dump = subprocess.run(["mdb_dump", "-s", "meta", p.cache_dir], capture_output=True, timeout=10)
    assert dump.returncode == 0
    text = dump.stdout.decode()
    ver_key = " " + b"version".hex()
    assert ver_key in text.splitlines(), text
    lines = text.splitlines()
    k = lines.index(ver_key)
    lines[k + 1] = " " + struct.pack("<I", 999).hex()
    load = subprocess.run(["mdb_load", "-s", "meta", p.cache_dir], input=("\n".join(lines) + "\n").encode(),
                          capture_output=True, timeout=10)
    assert load.returncode == 0, load
    p2 = cache_proxy_factory(cache_dir=p.cache_dir)
    assert p2.running()
    assert_clear_error(p2, p.cache_dir)
    assert_serves_without_cache(p2, origin, "/fmt/b")


def _rewrite_records(cache_dir, fix):
    """Rewrite every record of the objects DB through fix(value) -> value."""
    items = mdb_dump_db(cache_dir, "objects")
    hdr = subprocess.run(["mdb_dump", "-s", "objects", cache_dir], capture_output=True, timeout=10).stdout.decode()
    head = hdr[:hdr.index("HEADER=END") + len("HEADER=END")]
    out = [head]
    for k, v in items:
        out.append(" " + k.hex())
        out.append(" " + fix(v).hex())
    out.append("DATA=END")
    load = subprocess.run(["mdb_load", "-s", "objects", cache_dir], input=("\n".join(out) + "\n").encode(),
                          capture_output=True, timeout=10)
    assert load.returncode == 0, load


def test_records_of_unknown_version_or_bad_length_are_not_served(cache_proxy_factory, origin):
    counting(origin)
    p = cache_proxy_factory()
    for path in ("/rec/a", "/rec/b"):
        fetch(p.port, origin.url(path))
        assert fresh_hit(fetch(p.port, origin.url(path)))
    assert p.stop() == 0

    def fix(v):
        v = bytearray(v)
        if b"/rec/a #1" in v:
            v[4:6] = struct.pack("<H", 7)             # an unknown record version
        else:
            body_len = struct.unpack_from("<Q", v, 16)[0]
            struct.pack_into("<Q", v, 16, body_len + 5000)  # claims more body than it has
        return bytes(v)
    _rewrite_records(p.cache_dir, fix)
    p2 = cache_proxy_factory(cache_dir=p.cache_dir)
    for path in ("/rec/a", "/rec/b"):
        r = fetch(p2.port, origin.url(path))
        assert r.status == 200 and not is_hit(r), "a bad record was served: %r" % r
        assert r.body == ("%s #2" % path).encode()
        r = fetch(p2.port, origin.url(path))
        assert fresh_hit(r) and r.body == ("%s #2" % path).encode(), "the replacement is stored"
