"""Model-based test of the shared cache (RFC 9111).

A seeded random sequence of requests from several users (different Cookie
and Accept-Language) goes through the real proxy to an origin whose
behaviour per URL is fixed by the path (/m/<kind>/...). The origin stamps
every response it sends with a unique id (X-Resp-Id and the body) and
records which request it answered. A small reference model, which knows
nothing of the proxy's code, decides for every response the proxy returns
which origin response ids are allowed:

  * what the origin produced for this very request (a forward), or
  * a response stored earlier: produced for a GET of the same URI, for a
    request whose Vary'd field values equal this request's (field lines
    combined with ", "), storable (not no-store, not private, not Vary: *),
    not followed by a successful unsafe request to that URI (§4.4), and
    either validated by a 304 the origin produced for this request or not
    clearly stale (age > lifetime + MARGIN; near expiry both answers are
    right, so the model accepts either). A stored response served after a
    304 may carry the 304's X-Resp-Id (§3.2 header update) with its own body.

A response served from the store must not carry Set-Cookie / Set-Cookie2
(the project's rule); a forwarded one keeps what the origin sent. And the
cache must actually be used: fresh, storable, non-Vary responses are
served from the store at least once.

Seed: printed at start and in every failure; HOPCACHE_MODEL_SEED=N replays
a sequence, HOPCACHE_MODEL_STEPS=N sets its length (default 2500; the
two-worker run does a fifth). A shorter run is a prefix of the same
sequence, so HOPCACHE_MODEL_STEPS=k+1 replays up to step #k. Requests are
paced (8 ms, 12 ms) so that max-age=1/2 expire during the run; a time
budget (32 s, 12 s) may end a run early, the steps done are reported.
"""

import hashlib
import os
import random
import re
import socket
import threading
import time

import pytest

from helpers import Client, http_date, http_response

STEPS = int(os.environ.get("HOPCACHE_MODEL_STEPS") or 2500)
SEED_ENV = os.environ.get("HOPCACHE_MODEL_SEED")
MARGIN = 1.5        # s: a stored response counts as clearly stale only past lifetime + MARGIN
SOCK_TIMEOUT = 5.0  # every socket operation

UNSAFE = ("POST", "PUT", "DELETE")

# ---------------------------------------------------------------------------
# the origin's behaviour per path kind: /m/<kind>/...
#   cc: Cache-Control; lifetime: seconds a stored copy may be reused without
#   validation (None: never, it must be validated); storable: may be served
#   from the store at all; vary: Vary field lines; etag: unique ETag per
#   response and 304 for a current one; age: Age sent; cookie: Set-Cookie.

KINDS = {
    "fresh":    dict(cc="max-age=3600", lifetime=3600),
    "short1":   dict(cc="max-age=1", lifetime=1),
    "short2":   dict(cc="max-age=2", lifetime=2),
    "etag1":    dict(cc="max-age=1", lifetime=1, etag=True),
    "etagnc":   dict(cc="no-cache, max-age=3600", lifetime=None, etag=True),
    "stale":    dict(cc="max-age=60", lifetime=60 - 120, age=120),   # stale on arrival
    "nostore":  dict(cc="no-store, max-age=3600", storable=False),
    "private":  dict(cc="private, max-age=3600", storable=False),
    "varystar": dict(cc="max-age=3600", vary=["*"], storable=False),
    "vcookie":  dict(cc="max-age=3600", lifetime=3600, vary=["Cookie"]),
    "vlang":    dict(cc="max-age=3600", lifetime=3600, vary=["Accept-Language"]),
    "vboth":    dict(cc="max-age=3600", lifetime=3600, vary=["Cookie, Accept-Language"]),
    "vboth2":   dict(cc="max-age=3600", lifetime=3600, vary=["Cookie", "Accept-Language"]),
    "vshort":   dict(cc="max-age=2", lifetime=2, vary=["Accept-Language"]),
    "cookie":   dict(cc="public, max-age=3600", lifetime=3600, cookie=True),
}
for _k in KINDS.values():
    _k.setdefault("storable", True)
    _k.setdefault("vary", [])
    _k["vary_fields"] = sorted({f.strip().lower() for line in _k["vary"] for f in line.split(",")})

# a long path segment: URIs longer than 2 KiB sharing their first ~2.2 KiB
LONG = "".join("%04x" % ((i * 2654435761) & 0xffff) for i in range(560))  # 2240 chars
LONG_EARLY = LONG[:900] + "Q" + LONG[901:]  # same length, differs at byte ~900

PATHS = ["/m/%s/%d" % (k, n) for k in KINDS for n in (0, 1)]
PATHS += ["/m/fresh/0?q=a", "/m/fresh/0?q=b", "/m/vcookie/0?x=1"]
PATHS += ["/m/fresh/%s/0" % LONG, "/m/fresh/%s/1" % LONG, "/m/fresh/%s/0" % LONG_EARLY,
          "/m/vcookie/%s/0" % LONG, "/m/vcookie/%s/1" % LONG, "/m/cookie/%s/0" % LONG,
          "/m/etag1/%s/0" % LONG, "/m/etag1/%s/1" % LONG]


def kind_of(path):
    return path.split("?")[0].split("/")[2]


def spec_of(path):
    return KINDS[kind_of(path)]


# users: (name, Cookie or None, [Accept-Language lines] or None)
_P600 = "k" * 600             # Cookie values sharing 600 bytes
_P2K = "h" * 2100             # ... and more than 2 KiB
_AL = ", ".join("x-t%03d;q=0.1" % i for i in range(60))  # 839 bytes of language ranges
USERS = [
    ("anon", None, None),
    ("alice", "sid=alice", ["en"]),
    ("bob", "sid=bob", ["en"]),
    ("alice-fr", "sid=alice", ["fr"]),
    ("carol", "sid=carol; theme=dark", ["de", "en;q=0.5"]),    # two field lines ...
    ("dave", "sid=dave", ["de, en;q=0.5"]),                    # ... equal to one line
    ("erin", "sid=erin", ["de,en;q=0.5"]),                     # ... and modulo list OWS
    ("lang-only", None, ["fr"]),
    ("long-a", "sid=" + _P600 + "A", ["en"]),                  # differ after byte 512
    ("long-b", "sid=" + _P600 + "B", ["en"]),
    ("huge-a", "sid=" + _P2K + "A", None),                     # > 2 KiB, differ at the end
    ("huge-b", "sid=" + _P2K + "B", None),
    ("huge-c", "sid=c" + _P2K + "C", None),                    # > 2 KiB, differ early
    ("al-long-a", "sid=alice", [_AL + ", zz-a"]),              # Accept-Language > 512 bytes
    ("al-long-b", "sid=alice", [_AL + ", zz-b"]),
]


def norm_list(v):
    """A field value with the whitespace around list commas removed (RFC
    9111 §4.1 lets a cache normalise it; the model accepts both)."""
    return None if v is None else re.sub(r"[ \t]*,[ \t]*", ",", v)


def vary_values(headers):
    """{lowercase name: combined value or None} of the request fields any
    kind varies on, from the (name, value) lines of a request."""
    out = {}
    for f in ("cookie", "accept-language"):
        vals = [v for (k, v) in headers if k.lower() == f]
        out[f] = norm_list(", ".join(vals)) if vals else None
    return out


def short(s, n=48):
    if s is None:
        return "-"
    if len(s) <= n:
        return s
    return "%s...[%d bytes sha1 %s]...%s" % (s[:n // 2], len(s), hashlib.sha1(s.encode()).hexdigest()[:8],
                                             s[-12:])


# ---------------------------------------------------------------------------
# origin


class Produced:
    """What the origin answered: the request's X-Model-Req, method, target,
    Vary'd field values and time; the response's status and id."""
    __slots__ = ("rid", "req_id", "method", "path", "vary", "status", "validates", "t", "set_cookie")

    def __init__(self, rid, req_id, method, path, vary, t):
        self.rid, self.req_id, self.method, self.path, self.vary, self.t = rid, req_id, method, path, vary, t
        self.status = 0
        self.validates = None   # for a 304: the id of the 200 it validated
        self.set_cookie = []


class ModelOrigin:
    """Answers on a helpers.Origin; every response gets the next id."""

    def __init__(self, origin):
        self.origin = origin
        self.lock = threading.Lock()
        self.next_id = 0
        self.prod = {}            # rid -> Produced
        self.order = []           # rids in production order
        self.last_unsafe = {}     # path -> rid of the latest successful unsafe response
        self.validators = {}      # rid of a 200 -> rids of the 304s that validated it
        origin.responder = self.respond

    def respond(self, req):
        with self.lock:
            self.next_id += 1
            rid = self.next_id
            path = req.target
            rq = req.get("x-model-req")
            p = Produced(rid, int(rq) if rq and rq.isdigit() else None, req.method, path,
                         vary_values(req.headers), time.monotonic())
            hdrs = [("Date", http_date()), ("X-Resp-Id", str(rid))]
            body = b"id=%d %s\n" % (rid, req.method.encode())
            try:
                spec = spec_of(path)
            except (IndexError, KeyError):
                spec = None
            if spec is None:
                p.status = 404
                out = http_response(404, hdrs, body)
            elif req.method in UNSAFE:
                if req.get("x-model-fail"):
                    p.status = 500
                else:
                    p.status = 204 if req.method == "DELETE" else 200
                    self.last_unsafe[path] = rid
                # tempting freshness on an unsafe response: never to be served for a GET
                hdrs.append(("Cache-Control", "max-age=3600"))
                out = http_response(p.status, hdrs, b"" if p.status == 204 else body,
                                    cl=p.status != 204)
            else:
                hdrs.append(("Cache-Control", spec["cc"]))
                for line in spec["vary"]:
                    hdrs.append(("Vary", line))
                if spec.get("age"):
                    hdrs.append(("Age", str(spec["age"])))
                validated = None
                if spec.get("etag"):
                    for m in re.finditer(r'"r(\d+)"', req.joined("if-none-match")):
                        n = int(m.group(1))
                        q = self.prod.get(n)
                        if (q and q.status == 200 and q.method == "GET" and q.path == path
                                and n > self.last_unsafe.get(path, 0)):
                            validated = n
                            break
                if validated is not None:
                    p.status = 304
                    p.validates = validated
                    self.validators.setdefault(validated, []).append(rid)
                    out = http_response(304, hdrs + [("ETag", '"r%d"' % validated)], cl=False)
                else:
                    p.status = 200
                    if spec.get("etag"):
                        hdrs.append(("ETag", '"r%d"' % rid))
                    if spec.get("cookie"):
                        p.set_cookie = ["m=r%d; Path=/" % rid]
                        hdrs.append(("Set-Cookie", p.set_cookie[0]))
                        if path.endswith("/1"):
                            hdrs.append(("Set-Cookie2", 'm2="r%d"; Version="1"' % rid))
                    out = http_response(200, hdrs, body)
            self.prod[rid] = p
            self.order.append(rid)
        return out

    def count(self):
        with self.lock:
            return self.next_id

    def since(self, n):
        with self.lock:
            return [self.prod[r] for r in self.order[n:]]


# ---------------------------------------------------------------------------
# the run


class Step:
    __slots__ = ("idx", "method", "path", "user", "fail", "vary", "t0", "t1", "status", "hid", "bid",
                 "outcome", "cs", "own")

    def __init__(self, idx, method, path, user, fail, vary):
        self.idx, self.method, self.path, self.user, self.fail, self.vary = idx, method, path, user, fail, vary
        self.t0 = self.t1 = None
        self.status = self.hid = self.bid = None
        self.outcome = "?"
        self.cs = ""
        self.own = []

    def describe(self):
        return "#%d %-9s %-6s %s -> %s H=%s B=%s %s [%s]" % (
            self.idx, self.user, self.method, short(self.path, 60), self.status, self.hid, self.bid,
            self.outcome, self.cs)


def generate(seed, steps, users=USERS, paths=PATHS):
    """The request sequence: depends on the seed only."""
    rng = random.Random(seed)
    out = []
    for i in range(steps):
        user = rng.choice(users)
        path = rng.choice(paths)
        r = rng.random()
        method = rng.choice(UNSAFE) if r < 0.08 else "GET"
        fail = method != "GET" and rng.random() < 0.2
        reconnect = rng.random() < 0.15
        out.append((i, user, path, method, fail, reconnect))
    return out


class Run:
    def __init__(self, proxy, origin, seed, steps, pace, budget, test):
        self.test = test
        self.proxy = proxy
        self.origin = origin
        self.mo = ModelOrigin(origin)
        self.seed = seed
        self.nsteps = steps
        self.pace = pace
        self.budget = budget
        self.closest = {}         # kind -> largest (age - lifetime) of a hit without validation
        self.steps = []
        self.conns = {}
        self.violations = []      # (step idx, category, text)
        self.stats = {}           # kind -> {outcome: count}
        self.rid_step = {}        # rid -> step idx it was produced for
        self.invalidations = {}   # path -> step idxs of successful unsafe requests

    # -- helpers -------------------------------------------------------------
    def conn(self, user, reconnect):
        c = self.conns.get(user)
        if c is not None and reconnect:
            c.close()
            c = None
        if c is None:
            c = Client(self.proxy.port, timeout=SOCK_TIMEOUT)
            self.conns[user] = c
        return c

    def drop(self, user):
        c = self.conns.pop(user, None)
        if c is not None:
            c.close()

    def close_all(self):
        for u in list(self.conns):
            self.drop(u)

    def violate(self, s, cat, text):
        self.violations.append((s.idx, cat, text))

    def step_of(self, rid):
        return self.steps[self.rid_step[rid]] if rid in self.rid_step else None

    # -- one request ---------------------------------------------------------
    def do_step(self, idx, user, path, method, fail, reconnect):
        name, cookie, langs = user
        headers = [("Host", self.origin.authority), ("X-Model-Req", str(idx))]
        if cookie is not None:
            headers.append(("Cookie", cookie))
        for l in langs or ():
            headers.append(("Accept-Language", l))
        if fail:
            headers.append(("X-Model-Fail", "1"))
        body = None
        if method in ("POST", "PUT"):
            body = b"payload %d" % idx
            headers.append(("Content-Length", str(len(body))))
        s = Step(idx, method, path, name, fail, vary_values(headers))
        self.steps.append(s)
        if method in UNSAFE and not fail:
            self.invalidations.setdefault(path, []).append(idx)
        before = self.mo.count()
        s.t0 = time.monotonic()
        try:
            c = self.conn(name, reconnect)
            c.request(method, self.origin.url(path), headers, body)
            r = c.read_final(method)[1]
        except (OSError, EOFError, ValueError, socket.timeout) as e:
            s.t1 = time.monotonic()
            self.drop(name)
            s.outcome = "error"
            self.violate(s, "transport", "no response from the proxy: %r" % e)
            self._attribute(s, before)
            return
        s.t1 = time.monotonic()
        if "close" in r.tokens("connection"):
            self.drop(name)
        self._attribute(s, before)
        s.status = r.status
        s.cs = r.joined("cache-status")
        hids = r.get_all("x-resp-id")
        s.hid = int(hids[0]) if len(hids) == 1 and hids[0].isdigit() else None
        m = re.match(rb"^id=(\d+) ", r.body)
        s.bid = int(m.group(1)) if m else None
        if method == "GET":
            self.check_get(s, r, hids)
        else:
            self.check_unsafe(s, r, hids)
        st = self.stats.setdefault(kind_of(path), {})
        st[s.outcome] = st.get(s.outcome, 0) + 1

    def _attribute(self, s, before):
        """The responses the origin produced while this request was in flight
        and for it (X-Model-Req; the client sends one request at a time)."""
        for p in self.mo.since(before):
            rs = p.req_id if p.req_id is not None else s.idx
            self.rid_step.setdefault(p.rid, rs)
            if rs == s.idx:
                s.own.append(p)
                if p.path != s.path or p.method not in (s.method, "GET") or p.vary != s.vary:
                    self.violate(s, "forward-mismatch", "the origin got %s %s %r for this request (sent %s %s %r)"
                                 % (p.method, short(p.path), {k: short(v) for k, v in p.vary.items()},
                                    s.method, short(s.path), {k: short(v) for k, v in s.vary.items()}))

    def check_unsafe(self, s, r, hids):
        own = {p.rid: p for p in s.own}
        if s.hid not in own or len(hids) != 1:
            s.outcome = "bad"
            self.violate(s, "unsafe-not-forwarded", "an unsafe request answered with X-Resp-Id %r, "
                         "the origin produced %r for it" % (hids, sorted(own)))
            return
        s.outcome = "fwd"
        want = own[s.hid].status
        if r.status != want:
            self.violate(s, "status", "status %d, the origin sent %d" % (r.status, want))

    def eligible(self, b, s):
        """Why stored response b may not answer GET step s (None: it may)."""
        p = self.mo.prod.get(b)
        if p is None:
            return "unknown-id", "id %r was never produced by the origin" % b
        sb = self.step_of(b)
        if p.method != "GET" or p.status != 200:
            return "not-a-get-200", "id %d was the origin's %d to a %s" % (b, p.status, p.method)
        if sb is None or sb.idx >= s.idx:
            return "unknown-id", "id %d was not produced for an earlier request" % b
        if p.path != s.path:
            return "wrong-uri", "id %d was produced for another URI: %s (step #%d, user %s)" % (
                b, short(p.path, 80), sb.idx, sb.user)
        spec = spec_of(s.path)
        if not spec["storable"]:
            return "not-storable", "id %d (%s) may not be served from the store" % (b, spec["cc"])
        for f in spec["vary_fields"]:
            if p.vary.get(f) != s.vary.get(f):
                return "wrong-variant", ("id %d was produced for %s: %s (step #%d, user %s); this request has %s"
                                         % (b, f, short(p.vary.get(f)), sb.idx, sb.user, short(s.vary.get(f))))
        for u in self.invalidations.get(s.path, ()):
            if sb.idx < u < s.idx:
                return "invalidated", "id %d (step #%d) was invalidated by %s at step #%d (§4.4)" % (
                    b, sb.idx, self.steps[u].method, u)
        return None

    def check_get(self, s, r, hids):
        own200 = {p.rid for p in s.own if p.status == 200}
        b = s.bid
        if r.status != 200 or b is None:
            s.outcome = "bad"
            self.violate(s, "status", "status %d, body %r (X-Resp-Id %r)" % (r.status, r.body[:60], hids))
            return
        if len(hids) != 1 or s.hid is None:
            s.outcome = "bad"
            self.violate(s, "header-id", "X-Resp-Id fields %r (exactly one expected)" % (hids,))
            return
        if b in own200:
            s.outcome = "fwd"
            if s.hid != b:
                self.violate(s, "header-id", "forwarded body id %d with X-Resp-Id %d" % (b, s.hid))
            want = self.mo.prod[b].set_cookie
            if r.get_all("set-cookie") != want:
                self.violate(s, "fwd-set-cookie", "a forwarded response has Set-Cookie %r, the origin sent %r"
                             % (r.get_all("set-cookie"), want))
            return
        why = self.eligible(b, s)
        if why:
            s.outcome = "BAD-store"
            self.violate(s, *why)
            return
        with self.mo.lock:
            validators = [v for v in self.mo.validators.get(b, ()) if self.rid_step.get(v, s.idx + 1) <= s.idx]
        own_val = [p.rid for p in s.own if p.validates == b]
        if s.hid != b and s.hid not in validators:
            self.violate(s, "header-id", "stored body %d served with X-Resp-Id %d, which is neither it nor "
                         "a 304 that validated it (%r)" % (b, s.hid, validators))
        if own_val:
            s.outcome = "reval"
        else:
            s.outcome = "hit"
            spec = spec_of(s.path)
            if spec["lifetime"] is None:
                self.violate(s, "unvalidated", "id %d (%s) served without validation" % (b, spec["cc"]))
            else:
                ref = max([self.step_of(b).t1] + [self.step_of(v).t1 for v in validators])
                age = s.t0 - ref
                k = kind_of(s.path)
                self.closest[k] = max(self.closest.get(k, -1e9), age - spec["lifetime"])
                if age > spec["lifetime"] + MARGIN:
                    self.violate(s, "stale", "id %d (%s%s) served %.2f s after it was received/validated, "
                                 "without validation" % (b, spec["cc"],
                                                         ", Age: %d" % spec["age"] if spec.get("age") else "",
                                                         age))
        sc = r.get_all("set-cookie") + r.get_all("set-cookie2")
        if sc:
            self.violate(s, "set-cookie-on-hit", "a response from the store (id %d, produced for user %s) "
                         "carries %r" % (b, self.step_of(b).user, sc))

    # -- driver --------------------------------------------------------------
    def run(self, seq):
        t_start = time.monotonic()
        t_end = t_start + self.budget
        try:
            for n, item in enumerate(seq):
                now = time.monotonic()
                if now > t_end:
                    break
                # spread the run over time so that short max-ages expire in it
                if t_start + n * self.pace > now:
                    time.sleep(t_start + n * self.pace - now)
                self.do_step(*item)
        finally:
            self.close_all()

    def report(self, title):
        head = ("seed=%d (replay the same request sequence: HOPCACHE_MODEL_SEED=%d HOPCACHE_MODEL_STEPS=%d "
                "pytest test_cache_model.py::%s), %s, %d of %d steps done"
                % (self.seed, self.seed, STEPS, self.test, title, len(self.steps), self.nsteps))
        if not self.violations:
            return head, None
        by_cat = {}
        for v in self.violations:
            by_cat.setdefault(v[1], []).append(v)
        out = [head, "%d violation(s): %s" % (len(self.violations), ", ".join(
            "%s x%d (first at step #%d)" % (c, len(vs), vs[0][0]) for c, vs in by_cat.items()))]
        for c, vs in by_cat.items():
            idx, _, text = vs[0]
            s = self.steps[idx]
            out.append("")
            out.append("[%s] seed=%d step #%d: %s" % (c, self.seed, idx, text))
            out.append("  request: %s %s user=%s Cookie=%s Accept-Language=%s" % (
                s.method, short(s.path, 80), s.user, short(s.vary["cookie"]), short(s.vary["accept-language"])))
            out.append("  last requests (seed=%d):" % self.seed)
            for p in self.steps[max(0, idx - 10):idx + 1]:
                out.append("    " + p.describe())
        return head, "\n".join(out)

    def summary(self):
        return "; ".join("%s %s%s" % (k, " ".join("%s=%d" % kv for kv in sorted(v.items())),
                                      " closest=%+.2fs" % self.closest[k] if k in self.closest else "")
                         for k, v in sorted(self.stats.items()))


def _seed():
    if SEED_ENV:
        return int(SEED_ENV, 0)
    return random.SystemRandom().randrange(1, 2 ** 31)


def _model_run(cache_proxy_factory, origin_factory, workers, steps, pace, budget, title, test):
    seed = _seed()
    print("hopcache cache model: seed=%d steps=%d workers=%d" % (seed, steps, workers))
    origin = origin_factory(timeout=60.0)   # never the one to close an idle upstream connection
    p = cache_proxy_factory(workers=workers)
    if workers > 1:
        p.wait_workers(workers)
    run = Run(p, origin, seed, steps, pace, budget, test)
    t0 = time.monotonic()
    run.run(generate(seed, steps))
    took = time.monotonic() - t0
    head, failure = run.report(title)
    print("%s; %.1f s; %s" % (head, took, run.summary()))
    if failure:
        pytest.fail(failure, pytrace=False)
    fresh = run.stats.get("fresh", {})
    assert fresh.get("hit", 0) >= 1, (
        "seed=%d: no fresh, storable, non-Vary response was ever served from the store (%s)"
        % (seed, run.summary()))
    return run


def test_cache_model_one_worker(cache_proxy_factory, origin_factory):
    _model_run(cache_proxy_factory, origin_factory, 1, STEPS, 0.008, 32.0, "1 worker",
               "test_cache_model_one_worker")


def test_cache_model_two_workers(cache_proxy_factory, origin_factory):
    _model_run(cache_proxy_factory, origin_factory, 2, max(100, STEPS // 5), 0.012, 12.0, "2 workers",
               "test_cache_model_two_workers")
