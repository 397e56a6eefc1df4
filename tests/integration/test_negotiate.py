"""Proxy authentication with Negotiate (RFC 4559): Kerberos through SPNEGO
(and raw Kerberos tokens) against a real MIT KDC (krb5_kdc.py), realm
HOPCACHE.TEST on a free loopback port.

Covered: the 407 challenges in configured order ([auth] scheme = negotiate,
basic), success with the access log's user (strip_realm), the mutual
authentication reply token, tokens that must be refused (another service,
an expired ticket, garbage, a replay on another worker), curl
--proxy-negotiate for GET and CONNECT, connection_auth, principal,
replay_cache, `hopcache -t`, the hopcache_auth_total metrics, and headless
Chromium single sign-on.

Needs krb5-kdc, krb5-admin-server, krb5-user and python3-gssapi (and chromium
for the browser test): without them the tests skip, except with CI=true,
where they fail."""

import base64
import os
import random
import re
import shutil
import subprocess
import time

import pytest

import krb5_kdc
from conftest import BINARY
from helpers import Client, FakeDNS, http_response, wait_for
from krb5_kdc import ALICE_PASSWORD, BOB_PASSWORD, KDC, REALM

HERE = os.path.dirname(os.path.abspath(__file__))
HTPASSWD = os.path.join(HERE, "fixtures", "auth", "htpasswd")
BASIC_ALICE_PASSWORD = "Wonderland-7f3q"  # fixtures/auth/htpasswd (see test_auth.py USERS)
BASIC_CHALLENGE = 'Basic realm="hopcache", charset="UTF-8"'
SERVICE_PRINCIPAL = "HTTP/localhost@" + REALM


def _require(missing):
    if not missing:
        return
    msg = "missing: %s (apt-get install -y %s)" % (", ".join(missing), " ".join(missing))
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true and the Negotiate tests cannot run: " + msg)
    pytest.skip(msg)


# ---------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def kdc(tmp_path_factory):
    """One KDC for the module (starting it takes well under a second)."""
    _require(krb5_kdc.missing_prerequisites())
    k = KDC(str(tmp_path_factory.mktemp("krb5")))
    try:
        k.start()
    except Exception:
        k.stop()
        raise
    yield k
    k.stop()


@pytest.fixture(scope="module")
def alice_cc(kdc):
    return kdc.kinit("alice", ALICE_PASSWORD)


@pytest.fixture(scope="module")
def bob_cc(kdc):
    return kdc.kinit("bob", BOB_PASSWORD)


class Neg:
    """What a test needs: .kdc, .trace (KRB5_TRACE of this test's processes)."""

    def __init__(self, kdc, trace):
        self.kdc = kdc
        self.trace = trace

    def trace_text(self):
        try:
            with open(self.trace, "rb") as f:
                return f.read().decode("utf-8", "replace")[-3000:]
        except FileNotFoundError:
            return "(no KRB5_TRACE output)"


@pytest.fixture
def neg(kdc, monkeypatch, tmp_path):
    """The environment the proxy inherits: this realm's krb5.conf, a replay
    cache directory of this test's own, a KRB5_TRACE file; no client
    ccache or keytab from outside."""
    monkeypatch.setenv("KRB5_CONFIG", kdc.krb5_conf)
    rcdir = tmp_path / "rcache"
    rcdir.mkdir()
    monkeypatch.setenv("KRB5RCACHEDIR", str(rcdir))
    trace = str(tmp_path / "krb5.trace")
    monkeypatch.setenv("KRB5_TRACE", trace)
    for k in ("KRB5CCNAME", "KRB5_KTNAME", "KRB5_CLIENT_KTNAME", "KRB5RCACHENAME", "KRB5RCACHETYPE"):
        monkeypatch.delenv(k, raising=False)
    return Neg(kdc, trace)


# ---------------------------------------------------------------------------
# helpers


def neg_proxy(proxy_factory, kdc, workers=1, extra=None, **auth):
    sec = {"scheme": "negotiate", "keytab": kdc.keytab}
    sec.update({k: str(v) for k, v in auth.items()})
    ini = {"auth": sec}
    for s, kv in (extra or {}).items():
        ini.setdefault(s, {}).update(kv)
    return proxy_factory(ini, workers)


def negotiate(token):
    return "Negotiate " + token


def get(p, origin, path, auth=None, client=None):
    """GET origin.url(path) through the proxy, on client or a new connection."""
    hdrs = [("Host", origin.authority)]
    if auth is not None:
        hdrs.append(("Proxy-Authorization", auth))
    if client is not None:
        return client.exchange("GET", origin.url(path), hdrs)
    with p.client() as c:
        return c.exchange("GET", origin.url(path), hdrs)


def assert_challenge(r, schemes=("Negotiate",), what="the request", proxy_status=False):
    """A 407 with exactly these challenges, in order; proxy_status: and a
    Proxy-Status field (the contract names it for the 407 without credentials)."""
    assert r.status == 407, "%s: want 407, got %r" % (what, r)
    pa = r.get_all("Proxy-Authenticate")
    assert pa == list(schemes), "%s: want Proxy-Authenticate fields %r in this order, got %r" % (
        what, list(schemes), pa)
    if proxy_status:
        assert r.get_all("Proxy-Status") == ['hopcache; details="this proxy requires authentication"'], \
            "%s: the 407's Proxy-Status: %r" % (what, r.headers)


def assert_origin_untouched(origin, what):
    time.sleep(0.15)
    assert len(origin.conns) == 0 and not origin.requests, \
        "%s must not reach the origin; it got %r" % (what, origin.requests)


def entry(p, origin, path, status=None, timeout=3.0):
    """The access-log entry of the GET for origin.url(path) (with status)."""
    url = origin.url(path)
    return p.wait_access(lambda e: e.get("target") == url and
                         (status is None or e.get("status") == str(status)), timeout=timeout)


def assert_user(p, origin, path, user, status=200):
    e = entry(p, origin, path, status)
    assert e is not None, "no access-log entry for %s with status %s:\n%s" % (
        origin.url(path), status, "\n".join(p.read_access_log()))
    assert e["user"] == user, "access-log user for %s: want %r, got %r (%s)" % (
        path, user, e["user"], e["_line"])


def assert_forwarded_clean(origin, path, token):
    reqs = [r for r in origin.requests if r.target == path]
    assert len(reqs) == 1, "the origin should get %s once: %r" % (path, origin.requests)
    req = reqs[0]
    assert not req.has("Proxy-Authorization"), "Proxy-Authorization was forwarded: %r" % req.raw_head
    assert b"negotiate" not in req.raw_head.lower(), req.raw_head
    assert token[:40].encode() not in req.raw_head, "the token reached the origin: %r" % req.raw_head


def reply_token(r):
    """The base64 token of the response's one 'Proxy-Authenticate: Negotiate X'."""
    pa = r.get_all("Proxy-Authenticate")
    assert len(pa) == 1 and re.match(r"^Negotiate [A-Za-z0-9+/]+=*$", pa[0]), \
        "want one 'Proxy-Authenticate: Negotiate <base64>' on the 200: %r" % pa
    return base64.b64decode(pa[0].split(" ", 1)[1])


def run_t(p):
    p.write_ini()
    proc = subprocess.run([BINARY, "-t", "-c", p.ini], capture_output=True, timeout=20,
                          stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def need_binary():
    if not os.path.exists(BINARY):
        pytest.skip("hopcache binary not built: %s" % BINARY)


def _tcp_inode(local_port, remote_port):
    """The inode of the loopback TCP socket local_port <-> remote_port (0: none yet)."""
    with open("/proc/net/tcp") as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10:
                continue
            lp = int(fields[1].rsplit(":", 1)[1], 16)
            rp = int(fields[2].rsplit(":", 1)[1], 16)
            if lp == local_port and rp == remote_port and fields[9] != "0":
                return fields[9]
    return None


def worker_of(p, client, timeout=3.0):
    """The pid of the worker that accepted client's connection (found in
    /proc: the server side socket's inode among the workers' descriptors)."""
    cport = client.sock.getsockname()[1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ino = _tcp_inode(p.port, cport)
        if ino:
            want = "socket:[%s]" % ino
            for w in p.workers():
                try:
                    fds = os.listdir("/proc/%d/fd" % w)
                except OSError:
                    continue
                for fd in fds:
                    try:
                        if os.readlink("/proc/%d/fd/%s" % (w, fd)) == want:
                            return w
                    except OSError:
                        pass
        time.sleep(0.02)
    return None


def metrics(p):
    with Client(p.port) as c:
        r = c.exchange("GET", "/hopcache/metrics", [("Host", "127.0.0.1:%d" % p.port)])
    assert r.status == 200, r
    return r.body.decode("utf-8")


def metric(text, name, **labels):
    """The value of one sample, or None (labels in any order)."""
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if got == labels:
            return float(m.group(3))
    return None


# ---------------------------------------------------------------------------
# the fixture on its own


def test_kdc_fixture(kdc, alice_cc, neg):
    kt = kdc.klist_keytab()
    assert SERVICE_PRINCIPAL in kt, kt
    assert "HTTP/otherhost" not in kt, kt
    assert "HTTP/otherhost@" + REALM in kdc.klist_keytab(kdc.other_keytab)
    both = kdc.klist_keytab(kdc.both_keytab)
    assert SERVICE_PRINCIPAL in both and "HTTP/otherhost@" + REALM in both, both
    assert "Default principal: alice@" + REALM in kdc.klist(alice_cc)
    tok, ctx = kdc.make_token(alice_cc)
    raw = base64.b64decode(tok)
    # an SPNEGO NegTokenInit: [APPLICATION 0] with the SPNEGO OID 1.3.6.1.5.5.2
    assert raw[0] == 0x60 and b"\x06\x06\x2b\x06\x01\x05\x05\x02" in raw[:20], raw[:20].hex()
    assert "HTTP/localhost@" + REALM in kdc.klist(alice_cc), "the service ticket is in the ccache"
    raw = base64.b64decode(kdc.make_token(alice_cc, mech="krb5")[0])
    assert raw[0] == 0x60 and b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02" in raw[:20], raw[:20].hex()


# ---------------------------------------------------------------------------
# challenges


def test_challenge_negotiate(proxy_factory, origin, neg):
    p = neg_proxy(proxy_factory, neg.kdc)
    r = get(p, origin, "/secret")
    assert_challenge(r, ["Negotiate"], "a request without credentials")
    assert_origin_untouched(origin, "a request without credentials")
    e = entry(p, origin, "/secret", 407)
    assert e is not None and e["user"] == "-", p.read_access_log()
    assert_challenge(r, ["Negotiate"], "a request without credentials", proxy_status=True)


@pytest.mark.parametrize("order", ["negotiate, basic", "basic, negotiate"])
def test_challenge_order_and_basic_alongside(proxy_factory, origin, neg, alice_cc, order):
    p = neg_proxy(proxy_factory, neg.kdc, scheme=order, htpasswd=HTPASSWD)
    r = get(p, origin, "/both")
    want = ["Negotiate", BASIC_CHALLENGE]
    if order.startswith("basic"):
        want.reverse()
    assert_challenge(r, want, "with scheme = %s" % order)
    assert_origin_untouched(origin, "a request without credentials")
    basic = "Basic " + base64.b64encode(("alice:" + BASIC_ALICE_PASSWORD).encode()).decode()
    assert get(p, origin, "/basic", auth=basic).status == 200
    assert_user(p, origin, "/basic", "alice")
    tok, _ = neg.kdc.make_token(alice_cc)
    assert get(p, origin, "/neg", auth=negotiate(tok)).status == 200
    assert_user(p, origin, "/neg", "alice@" + REALM)
    assert_challenge(r, want, "with scheme = %s" % order, proxy_status=True)


# ---------------------------------------------------------------------------
# success


@pytest.mark.parametrize("mech", ["spnego", "krb5"])
@pytest.mark.parametrize("user", ["alice", "bob"])
def test_success(proxy_factory, origin, neg, alice_cc, bob_cc, user, mech):
    p = neg_proxy(proxy_factory, neg.kdc)
    cc = alice_cc if user == "alice" else bob_cc
    tok, _ = neg.kdc.make_token(cc, mech=mech)
    r = get(p, origin, "/ok", auth=negotiate(tok))
    assert r.status == 200, "%r\nproxy logs:\n%s\nKRB5_TRACE:\n%s" % (r, p.logs_text()[-2000:], neg.trace_text())
    assert r.body == b"hello from origin: GET /ok", r.body
    assert_forwarded_clean(origin, "/ok", tok)
    assert_user(p, origin, "/ok", "%s@%s" % (user, REALM))


@pytest.mark.parametrize("mech", ["spnego", "krb5"])
def test_mutual_authentication_reply(proxy_factory, origin, neg, alice_cc, mech):
    p = neg_proxy(proxy_factory, neg.kdc)
    tok, ctx = neg.kdc.make_token(alice_cc, mutual=True, mech=mech)
    assert not ctx.complete
    r = get(p, origin, "/mutual", auth=negotiate(tok))
    assert r.status == 200, "%r\n%s" % (r, p.logs_text()[-2000:])
    ctx.step(reply_token(r))  # raises if the proxy's AP-REP does not verify
    assert ctx.complete, "the client context is complete after the proxy's reply token"
    assert_user(p, origin, "/mutual", "alice@" + REALM)


def test_strip_realm(proxy_factory, origin, neg, alice_cc):
    p = neg_proxy(proxy_factory, neg.kdc, strip_realm="yes")
    tok, _ = neg.kdc.make_token(alice_cc)
    assert get(p, origin, "/strip", auth=negotiate(tok)).status == 200
    assert_user(p, origin, "/strip", "alice")


def test_strip_realm_no_is_explicit_default(proxy_factory, origin, neg, alice_cc):
    p = neg_proxy(proxy_factory, neg.kdc, strip_realm="no")
    tok, _ = neg.kdc.make_token(alice_cc)
    assert get(p, origin, "/nostrip", auth=negotiate(tok)).status == 200
    assert_user(p, origin, "/nostrip", "alice@" + REALM)


# ---------------------------------------------------------------------------
# tokens that must be refused


def _random_bytes():
    seed = random.randrange(1 << 30)
    print("random token bytes: seed %d" % seed)
    return random.Random(seed).randbytes(96)


BAD_TOKENS = {
    "not-base64": lambda kdc, cc: "Negotiate !!!not*base64***",
    "base64-of-garbage": lambda kdc, cc: "Negotiate " + base64.b64encode(_random_bytes()).decode(),
    "other-service": lambda kdc, cc: negotiate(kdc.make_token(cc, service="HTTP@otherhost")[0]),
    "other-service-krb5": lambda kdc, cc: negotiate(kdc.make_token(cc, service="HTTP@otherhost",
                                                                   mech="krb5")[0]),
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_bad_token_407(proxy_factory, origin, neg, alice_cc, kind):
    p = neg_proxy(proxy_factory, neg.kdc)
    auth = BAD_TOKENS[kind](neg.kdc, alice_cc)
    r = get(p, origin, "/bad", auth=auth)
    assert_challenge(r, ["Negotiate"], "a %s token" % kind)
    assert_origin_untouched(origin, "a request with a %s token" % kind)
    assert p.running()
    # the proxy still accepts a good token
    tok, _ = neg.kdc.make_token(alice_cc)
    assert get(p, origin, "/good", auth=negotiate(tok)).status == 200
    assert_user(p, origin, "/good", "alice@" + REALM)


def test_expired_ticket_407(proxy_factory, origin, neg, alice_cc):
    """A ticket of 3 s. `stale`: a token made while the ticket was valid and
    sent after its end time + clockskew (2 s): its authenticator is stale
    too. `fresh`: made after the end time, with a fresh authenticator around
    the expired ticket (the ccache's plaintext end time moved on, which the
    initiator checks; the ticket's own, encrypted end time is what the
    proxy must check): only the ticket's expiry can refuse it."""
    kdc = neg.kdc
    p = neg_proxy(proxy_factory, kdc)
    cc = kdc.new_ccache("alice-short")
    t0 = time.time()
    kdc.kinit("alice", ALICE_PASSWORD, cc, lifetime="3s")
    stale, _ = kdc.make_token(cc)
    # end time <= t0 + 3 (+1 for whole seconds); skew 2; a margin of 1.5 s
    time.sleep(max(0.0, t0 + 3 + 1 + krb5_kdc.CLOCKSKEW + 1.5 - time.time()))
    r = get(p, origin, "/stale", auth=negotiate(stale))
    assert_challenge(r, ["Negotiate"], "a token of an expired ticket")
    patched = krb5_kdc.patch_ccache_endtimes(cc, time.time() + 3600)
    assert "HTTP/localhost@" + REALM in patched, patched
    fresh, _ = kdc.make_token(cc)
    r = get(p, origin, "/fresh", auth=negotiate(fresh))
    assert_challenge(r, ["Negotiate"], "a fresh authenticator with an expired ticket")
    assert_origin_untouched(origin, "an expired ticket")
    tok, _ = kdc.make_token(alice_cc)
    assert get(p, origin, "/good", auth=negotiate(tok)).status == 200


def _two_workers_clients(p, avoid, want_other=True, tries=60, timeout=10.0):
    """A new connection accepted by a worker other than `avoid` (or by
    `avoid` itself when want_other is False). Others opened meanwhile are closed."""
    deadline = time.monotonic() + timeout
    for _ in range(tries):
        if time.monotonic() > deadline:
            break
        c = Client(p.port)
        w = worker_of(p, c)
        if w is not None and (w != avoid) == want_other:
            return c, w
        c.close()
    pytest.fail("no connection reached %s worker %d in %d tries (workers %r)" % (
        "a worker other than" if want_other else "the", avoid, tries, p.workers()))


@pytest.mark.parametrize("rcache", ["default", "replay_cache"])
def test_replay_refused_on_every_worker(proxy_factory, origin, neg, alice_cc, tmp_path, rcache):
    kdc = neg.kdc
    auth = {}
    rc_path = str(tmp_path / "hopcache.rcache")
    if rcache == "replay_cache":
        auth["replay_cache"] = rc_path
    p = neg_proxy(proxy_factory, kdc, workers=2, **auth)
    assert len(p.wait_workers(2)) == 2, p.workers()
    tok, _ = kdc.make_token(alice_cc)
    first = Client(p.port)
    try:
        w1 = worker_of(p, first)
        assert w1 is not None, "no worker holds the first connection"
        r = get(p, origin, "/first", auth=negotiate(tok), client=first)
        assert r.status == 200, "%r\n%s" % (r, p.logs_text()[-2000:])
        if rcache == "replay_cache":
            assert os.path.exists(rc_path) and os.path.getsize(rc_path) > 0, \
                "replay_cache = %s: the file should hold the accepted authenticator" % rc_path
        # the same token on the same connection: authenticated afresh, a replay
        r = get(p, origin, "/again-same-conn", auth=negotiate(tok), client=first)
        assert_challenge(r, ["Negotiate"], "the token again on its own connection")
    finally:
        first.close()
    for want_other in (True, False):
        c, w = _two_workers_clients(p, w1, want_other)
        try:
            path = "/replay-%s" % ("other-worker" if want_other else "same-worker")
            r = get(p, origin, path, auth=negotiate(tok), client=c)
            assert_challenge(r, ["Negotiate"], "a replay on %s worker (%d; first use on %d)" % (
                "another" if want_other else "the same", w, w1))
        finally:
            c.close()
    time.sleep(0.15)
    assert [r.target for r in origin.requests] == ["/first"], origin.requests


# ---------------------------------------------------------------------------
# connection-based authentication


def test_connection_auth_default_yes(proxy_factory, origin, neg, alice_cc, bob_cc):
    p = neg_proxy(proxy_factory, neg.kdc)
    tok, _ = neg.kdc.make_token(alice_cc)
    with p.client() as c:
        assert get(p, origin, "/c1", auth=negotiate(tok), client=c).status == 200
        r = get(p, origin, "/c2", client=c)
        assert r.status == 200, "the authenticated connection's next request: %r" % r
        assert_user(p, origin, "/c2", "alice@" + REALM)
        # a request that carries credentials is authenticated afresh
        btok, _ = neg.kdc.make_token(bob_cc)
        assert get(p, origin, "/c3", auth=negotiate(btok), client=c).status == 200
        assert_user(p, origin, "/c3", "bob@" + REALM)
        r = get(p, origin, "/c4", auth="Negotiate " + base64.b64encode(b"\x60\x03\x06\x01\x00").decode(),
                client=c)
        assert_challenge(r, ["Negotiate"], "a bad token on an authenticated connection")
    # another connection is not authenticated
    r = get(p, origin, "/c5")
    assert_challenge(r, ["Negotiate"], "a new connection without credentials")
    assert [r.target for r in origin.requests] == ["/c1", "/c2", "/c3"], origin.requests


def test_connection_auth_no(proxy_factory, origin, neg, alice_cc):
    p = neg_proxy(proxy_factory, neg.kdc, connection_auth="no")
    tok, _ = neg.kdc.make_token(alice_cc)
    with p.client() as c:
        assert get(p, origin, "/n1", auth=negotiate(tok), client=c).status == 200
        r = get(p, origin, "/n2", client=c)
        assert_challenge(r, ["Negotiate"], "connection_auth = no: a request without credentials")
        tok2, _ = neg.kdc.make_token(alice_cc)
        assert get(p, origin, "/n3", auth=negotiate(tok2), client=c).status == 200
    assert [r.target for r in origin.requests] == ["/n1", "/n3"], origin.requests


# ---------------------------------------------------------------------------
# principal


def test_principal_any_key_by_default(proxy_factory, origin, neg, alice_cc):
    p = neg_proxy(proxy_factory, neg.kdc, keytab=neg.kdc.both_keytab)
    tok, _ = neg.kdc.make_token(alice_cc, service="HTTP@otherhost")
    r = get(p, origin, "/other", auth=negotiate(tok))
    assert r.status == 200, "without principal every key of the keytab is accepted: %r" % r
    assert_user(p, origin, "/other", "alice@" + REALM)


def test_principal_restricts_keys(proxy_factory, origin, neg, alice_cc):
    p = neg_proxy(proxy_factory, neg.kdc, keytab=neg.kdc.both_keytab, principal=SERVICE_PRINCIPAL)
    tok, _ = neg.kdc.make_token(alice_cc, service="HTTP@otherhost")
    r = get(p, origin, "/other", auth=negotiate(tok))
    assert_challenge(r, ["Negotiate"], "principal = %s: a token for HTTP/otherhost" % SERVICE_PRINCIPAL)
    tok, _ = neg.kdc.make_token(alice_cc)
    assert get(p, origin, "/local", auth=negotiate(tok)).status == 200
    assert [r.target for r in origin.requests] == ["/local"], origin.requests


# ---------------------------------------------------------------------------
# curl and CONNECT


def run_curl(kdc, ccache, proxy_port, url, *args, timeout=15):
    cmd = ["curl", "-q", "-sS", "--max-time", str(timeout), "--proxy-negotiate", "-U", ":",
           "-x", "http://localhost:%d" % proxy_port, "-o", "-", "-w", "\n%{http_code}"] + list(args) + [url]
    env = kdc.env(ccache)
    env["CURL_HOME"] = "/nonexistent"
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout + 5, env=env, stdin=subprocess.DEVNULL)
    out = proc.stdout.decode("utf-8", "replace")
    body, _, code = out.rpartition("\n")
    return proc.returncode, int(code or 0), body, proc.stderr.decode("utf-8", "replace")


def test_curl_proxy_negotiate(proxy_factory, origin, neg, alice_cc):
    p = neg_proxy(proxy_factory, neg.kdc)
    rc, code, body, err = run_curl(neg.kdc, alice_cc, p.port, origin.url("/curl"))
    assert (rc, code) == (0, 200), "curl rc %d code %d %s\n%s" % (rc, code, err, p.logs_text()[-1500:])
    assert body == "hello from origin: GET /curl", body
    assert_user(p, origin, "/curl", "alice@" + REALM)
    assert_forwarded_clean(origin, "/curl", "Negotiate")


def test_curl_without_ticket_gets_407(proxy_factory, origin, neg, tmp_path):
    p = neg_proxy(proxy_factory, neg.kdc)
    empty = str(tmp_path / "no-such.ccache")
    rc, code, body, err = run_curl(neg.kdc, empty, p.port, origin.url("/noticket"))
    assert code == 407, "curl rc %d code %d %s" % (rc, code, err)
    assert_origin_untouched(origin, "curl without a ticket")


def test_curl_connect_negotiate(proxy_factory, tls_origin, tls_cert, neg, alice_cc):
    p = neg_proxy(proxy_factory, neg.kdc)
    url = "https://127.0.0.1:%d/tunnelled" % tls_origin.port
    rc, code, body, err = run_curl(neg.kdc, alice_cc, p.port, url, "--cacert", tls_cert[0])
    assert (rc, code) == (0, 200), "curl rc %d code %d %s\n%s" % (rc, code, err, p.logs_text()[-1500:])
    assert body == "hello from origin: GET /tunnelled", body
    target = "127.0.0.1:%d" % tls_origin.port
    e = p.wait_access(lambda e: e.get("method") == "CONNECT" and e.get("target") == target
                      and e.get("status") == "200", timeout=5)
    assert e is not None, p.read_access_log()
    assert e["user"] == "alice@" + REALM, e["_line"]


def test_raw_connect(proxy_factory, origin, neg, alice_cc):
    p = neg_proxy(proxy_factory, neg.kdc)
    head = "CONNECT %s HTTP/1.1\r\nHost: %s\r\n" % (origin.authority, origin.authority)
    with p.client() as c:
        c.send((head + "\r\n").encode())
        r = c.read_response("CONNECT")
        assert_challenge(r, ["Negotiate"], "CONNECT without credentials")
    assert_origin_untouched(origin, "an unauthenticated CONNECT")
    tok, _ = neg.kdc.make_token(alice_cc)
    with p.client() as c:
        c.send((head + "Proxy-Authorization: Negotiate %s\r\n\r\n" % tok).encode())
        r = c.read_response("CONNECT")
        assert r.status == 200, r
        c.request("GET", "/inside", [("Host", origin.authority)])
        inner = c.read_response()
        assert inner.status == 200 and inner.body == b"hello from origin: GET /inside", inner
    assert len(origin.requests) == 1 and not origin.requests[0].has("Proxy-Authorization")
    e = p.wait_access(lambda e: e.get("method") == "CONNECT" and e.get("status") == "200", timeout=5)
    assert e is not None and e["user"] == "alice@" + REALM, p.read_access_log()


# ---------------------------------------------------------------------------
# configuration check


def test_config_check_names_principals(proxy_factory, neg):
    need_binary()
    p = proxy_factory({"auth": {"scheme": "negotiate", "keytab": neg.kdc.both_keytab}}, start=False)
    rc, out, err = run_t(p)
    assert rc == 0, "stdout:\n%s\nstderr:\n%s" % (out, err)
    assert SERVICE_PRINCIPAL in out, "-t should name the keytab's principals on stdout:\n%s" % out
    assert "HTTP/otherhost@" + REALM in out, out


@pytest.mark.parametrize("case", ["missing-file", "no-key"])
def test_config_check_keytab_errors(proxy_factory, neg, tmp_path, case):
    need_binary()
    auth = {"scheme": "negotiate"}
    if case == "missing-file":
        auth["keytab"] = str(tmp_path / "nonexistent.keytab")
    p = proxy_factory({"auth": auth}, start=False)
    rc, out, err = run_t(p)
    assert rc == 1, "%s accepted: stdout:\n%s\nstderr:\n%s" % (case, out, err)
    for needle in (p.ini, "[auth]", "keytab"):
        assert needle in err, "want %r in stderr:\n%s" % (needle, err)
    if case == "missing-file":
        assert auth["keytab"] in err, err


# ---------------------------------------------------------------------------
# metrics


def test_metrics_negotiate(proxy_factory, origin, neg, alice_cc):
    p = neg_proxy(proxy_factory, neg.kdc)
    tok, _ = neg.kdc.make_token(alice_cc)
    assert get(p, origin, "/m-ok", auth=negotiate(tok)).status == 200
    bad, _ = neg.kdc.make_token(alice_cc, service="HTTP@otherhost")
    assert get(p, origin, "/m-bad", auth=negotiate(bad)).status == 407
    assert get(p, origin, "/m-none").status == 407
    assert wait_for(lambda: len(p.read_access_log()) >= 3, 3)
    text = metrics(p)
    for result, want in (("ok", 1), ("failed", 1), ("missing", 1)):
        got = metric(text, "hopcache_auth_total", scheme="negotiate", result=result)
        assert got == want, "hopcache_auth_total{scheme=negotiate,result=%s}: want %d, got %r\n%s" % (
            result, want, got, "\n".join(l for l in text.splitlines() if "auth" in l))


# ---------------------------------------------------------------------------
# a browser: headless Chromium, single sign-on from the ticket cache


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_chromium_single_sign_on(proxy_factory, origin, neg, alice_cc, tmp_path):
    browser = _chromium()
    _require([] if browser else ["chromium"])
    page = b"<html><body><p id='m'>negotiated page 7c1e</p></body></html>"
    origin.responder = lambda req: http_response(200, [("Content-Type", "text/html"),
                                                       ("Cache-Control", "no-store")], page)
    # Chromium's own background requests (time, updates) come through the
    # proxy too: the fake resolver answers NXDOMAIN, nothing leaves the machine
    dns = FakeDNS()
    try:
        p = neg_proxy(proxy_factory, neg.kdc, extra={
            "upstream": {"resolv_conf": dns.resolv_conf(str(tmp_path / "resolv.conf"))}})
        url = origin.url("/sso")
        env = neg.kdc.env(alice_cc)
        env["HOME"] = str(tmp_path / "home")
        os.makedirs(env["HOME"], exist_ok=True)
        env.pop("DISPLAY", None)
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        cmd = [browser, "--headless=new", "--no-sandbox", "--disable-gpu",
               "--user-data-dir=%s" % (tmp_path / "chromium-profile"),
               "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
               "--disable-component-update", "--disable-default-apps", "--disable-sync",
               "--proxy-server=http://localhost:%d" % p.port, "--proxy-bypass-list=<-loopback>",
               "--auth-server-allowlist=localhost",
               "--dump-dom", url]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=35, env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            pytest.fail("chromium did not finish in 35 s; stderr:\n%s" % (
                (e.stderr or b"").decode("utf-8", "replace")[-2000:]))
        dom = proc.stdout.decode("utf-8", "replace")
        err = "\n".join(l for l in proc.stderr.decode("utf-8", "replace").splitlines() if "dbus" not in l)
        assert "negotiated page 7c1e" in dom, "chromium rc %d, DOM %r\nstderr:\n%s\naccess log:\n%s" % (
            proc.returncode, dom[:500], err[-2000:], "\n".join(p.read_access_log()))
        assert_user(p, origin, "/sso", "alice@" + REALM)
        reqs = [r for r in origin.requests if r.target == "/sso"]
        assert len(reqs) == 1 and not reqs[0].has("Proxy-Authorization"), origin.requests
    finally:
        dns.stop()


# ---------------------------------------------------------------------------
# behind the HAProxy pair of the README (mode http, send-proxy-v2)

from test_haproxy import pair_factory  # noqa: E402,F401  (the fixture)


def test_connection_identity_behind_haproxy(pair_factory, origin, neg, alice_cc):
    """connection_auth keeps a Negotiate identity for a client connection;
    behind HAProxy each node connection begins with a PROXY header naming
    one client, and HAProxy never lends it to another: alice's identity
    serves her own connection only."""
    hap, nodes = pair_factory({"auth": {"scheme": "negotiate", "keytab": neg.kdc.keytab}})
    hdrs = [("Host", origin.authority)]
    url = origin.url("/hap/1")  # one URL: balance uri whole sends it to one node
    tok, _ = neg.kdc.make_token(alice_cc)
    with Client(hap.port) as a:
        r = a.exchange("GET", url, hdrs + [("Proxy-Authorization", negotiate(tok))])
        assert r.status == 200, r
        # another client, while alice's connection is open and idle
        with Client(hap.port) as b:
            r = b.exchange("GET", url, hdrs)
            assert_challenge(r, ["Negotiate"], "another client through haproxy")
        r = a.exchange("GET", url, hdrs)
        assert r.status == 200, "alice's next request on her connection: %r" % r
    users = [e["user"] for n in nodes for e in n.access_entries() if e.get("target") == url]
    assert sorted(users) == ["-", "alice@" + REALM, "alice@" + REALM], users
    assert [q.target for q in origin.requests] == ["/hap/1", "/hap/1"], origin.requests


# ---------------------------------------------------------------------------
# HTTP/2: the streams of one connection share its Negotiate identity

from test_h2 import h2, h2_proxy_factory, h2pki  # noqa: E402,F401  (the fixtures)


def test_negotiate_identity_shared_by_h2_streams(h2_proxy_factory, h2, origin, neg, alice_cc):
    """connection_auth on the HTTP/2 proxy port: a stream that authenticates
    with Negotiate gives the h2 connection its identity, so later streams of
    that connection without proxy-authorization are alice's; another h2
    connection without credentials gets 407; a refused token on a stream
    ends the connection's identity."""
    p = h2_proxy_factory(ini_extra={"auth": {"scheme": "negotiate", "keytab": neg.kdc.keytab}})
    tok, _ = neg.kdc.make_token(alice_cc)
    c = h2(p)
    r = c.get(origin, "/h2/1", headers=[("proxy-authorization", negotiate(tok))])
    assert r.status == 200, r
    r = c.get(origin, "/h2/2")
    assert r.status == 200, "a later stream of the authenticated connection: %r" % r
    other = h2(p)
    r = other.get(origin, "/h2/other")
    assert r.status == 407 and r.get_all("proxy-authenticate") == ["Negotiate"], r
    bad = "Negotiate " + base64.b64encode(b"\x60\x03\x06\x01\x00").decode()
    assert c.get(origin, "/h2/bad", headers=[("proxy-authorization", bad)]).status == 407
    r = c.get(origin, "/h2/3")
    assert r.status == 407, "after a refused token the connection keeps no identity: %r" % r
    users = {e["target"].rsplit("/", 1)[-1]: e["user"] for e in p.access_entries()
             if "/h2/" in e.get("target", "")}
    assert users == {"1": "alice@" + REALM, "2": "alice@" + REALM, "other": "-", "bad": "-",
                     "3": "-"}, users
    assert [q.target for q in origin.requests] == ["/h2/1", "/h2/2"], origin.requests
