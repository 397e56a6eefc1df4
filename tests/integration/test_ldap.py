"""LDAP directory ([ldap], [auth] basic_backend = ldap) against a real slapd
(slapd_fixture.py): Basic passwords checked by binding as the user's DN,
rules by directory group (CN or full DN; memberOf or group_filter), a user
in 3000 groups, the uri list, StartTLS, the directory going down and coming
back on the same port (cached users keep working until cache_ttl, others
get 503, never 200), a slow directory that must not stall the worker's
other clients, the metrics and the status object, and `-t` errors.

The directory: slapd_fixture.PASSWORDS (alice, bob, carol, dave, many),
groups staff (alice, bob), admins (alice), contractors (carol), and
g0000..g2999 (many). dave is in no group.

Needs slapd and ldap-utils (skipped without them, failed in CI)."""

import base64
import os
import random
import signal
import subprocess
import threading
import time

import pytest

from conftest import BINARY
from helpers import Client, free_port, make_ca, wait_for
from slapd_fixture import (BASE, PASSWORDS, SlowRelay, group_dn, slapd, slapd_server,  # noqa: F401
                           slapd_tls_server, user_dn)
from test_ops import admin_get, metrics, status

UNAVAILABLE = 'hopcache; error=proxy_internal_error; details="directory unavailable"'
CHALLENGE = 'Basic realm="hopcache", charset="UTF-8"'


# ---------------------------------------------------------------------------
# helpers


def basic(user, password=None):
    if password is None:
        password = PASSWORDS[user]
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode("utf-8")).decode("ascii")


def ldap_ini(directory, uri=None, ldap=None, auth=None, rules=None, default=None):
    """ini_extra for Basic authentication against `directory` (a Slapd),
    with an ordered {name: {key: value}} dict of rules."""
    ini = {
        "auth": {"scheme": "basic", "basic_backend": "ldap"},
        "ldap": {"uri": uri or directory.uri, "base": directory.base, "bind_dn": directory.bind_dn,
                 "bind_password_file": directory.bind_password_file, "timeout": "3"},
        "acl": {"private_destinations": "allow"},
    }
    ini["auth"].update(auth or {})
    ini["ldap"].update(ldap or {})
    if default is not None:
        ini["acl"]["default"] = default
    if rules:
        ini["acl"]["rules"] = ", ".join(rules)
        for name, kv in rules.items():
            ini["rule." + name] = dict(kv)
    return ini


def get(proxy, origin, path, auth=None, timeout=5.0):
    hdrs = [("Host", origin.authority)]
    if auth is not None:
        hdrs.append(("Proxy-Authorization", auth))
    with Client(proxy.port, timeout=timeout) as c:
        return c.exchange("GET", origin.url(path), hdrs)


def timed(fn, *args, **kw):
    t0 = time.monotonic()
    r = fn(*args, **kw)
    return r, time.monotonic() - t0


def assert_challenge(r):
    assert r.status == 407, r
    assert r.get_all("Proxy-Authenticate") == [CHALLENGE], r.headers


def assert_denied(r, rule=None):
    """403 naming the rule (rule=None: the [acl] default)."""
    assert r.status == 403, r
    ps = r.joined("proxy-status")
    assert "error=http_request_denied" in ps, ps
    want = 'details="denied by rule %s"' % rule if rule else 'details="denied: default"'
    assert want in ps, "want %s in Proxy-Status %r" % (want, ps)


def assert_unavailable(r, what):
    assert r.status == 503, "%s: want 503 (directory unavailable), got %r" % (what, r)
    assert r.joined("proxy-status") == UNAVAILABLE, "%s: Proxy-Status %r" % (what, r.joined("proxy-status"))


def targets(origin):
    with origin.lock:
        return sorted(q.target for q in origin.requests)


def log_entry(proxy, path):
    e = proxy.wait_access(lambda e: e.get("target", "").endswith(path))
    assert e is not None, "no access-log line for %s: %r" % (path, proxy.read_access_log())
    return e


def run_t(p):
    p.write_ini()
    proc = subprocess.run([BINARY, "-t", "-c", p.ini], capture_output=True, timeout=10,
                          stdin=subprocess.DEVNULL)
    return proc.returncode, (proc.stdout + proc.stderr).decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# passwords


def test_password_right_wrong_unknown(proxy_factory, origin, slapd):
    p = proxy_factory(ldap_ini(slapd))
    r = get(p, origin, "/alice", basic("alice"))
    assert r.status == 200, r
    assert log_entry(p, "/alice")["user"] == "alice"
    req = origin.requests[0]
    assert not req.has("Proxy-Authorization"), req.raw_head
    # the right password is remembered; a wrong one for the same user is not
    # taken for it
    assert_challenge(get(p, origin, "/alice-wrong", basic("alice", PASSWORDS["alice"] + "x")))
    assert_challenge(get(p, origin, "/alice-other", basic("alice", PASSWORDS["bob"])))
    assert_challenge(get(p, origin, "/mallory", basic("mallory", "anything")))
    assert get(p, origin, "/alice-again", basic("alice")).status == 200
    assert targets(origin) == ["/alice", "/alice-again"]


def test_empty_password_is_not_an_unauthenticated_bind(proxy_factory, origin, slapd):
    """slapd accepts a simple bind with a DN and no password as anonymous
    (RFC 4513 §5.1.2 "unauthenticated bind"): the proxy must refuse it."""
    assert slapd.bind_ok(user_dn("alice"), ""), "fixture: slapd should accept the unauthenticated bind"
    p = proxy_factory(ldap_ini(slapd))
    assert_challenge(get(p, origin, "/empty", basic("alice", "")))
    assert_challenge(get(p, origin, "/empty-unknown", basic("nobody", "")))
    assert targets(origin) == []


@pytest.mark.parametrize("name", ["ali*", "*", "alice)(uid=*", "*)(uid=alice", "alic\\65"],
                         ids=["prefix-star", "star", "close-paren", "star-paren", "backslash-escape"])
def test_user_name_is_escaped_in_the_filter(proxy_factory, origin, slapd, name):
    """RFC 4515 §3: the user name is a value, never filter syntax; with alice's
    own password none of these names is alice."""
    p = proxy_factory(ldap_ini(slapd))
    r = get(p, origin, "/inj", basic(name, PASSWORDS["alice"]))
    assert_challenge(r)
    assert targets(origin) == []
    assert get(p, origin, "/ok", basic("alice")).status == 200


def test_user_filter_matching_two_entries_is_refused(proxy_factory, origin, slapd):
    """A user name whose filter finds two entries names nobody: 407 even with
    the right password of one of them."""
    p = proxy_factory(ldap_ini(slapd, ldap={"user_filter": "(&(objectClass=inetOrgPerson)(|(uid=%u)(sn=Bobson)))"}))
    assert_challenge(get(p, origin, "/alice", basic("alice")))      # alice and bob
    assert_challenge(get(p, origin, "/dave", basic("dave")))        # dave and bob
    r = get(p, origin, "/bob", basic("bob"))                        # bob alone
    assert r.status == 200, r
    assert targets(origin) == ["/bob"]


def test_custom_user_filter(proxy_factory, origin, slapd):
    """%u in user_filter; here users log in by surname (Aliceson, ...)."""
    p = proxy_factory(ldap_ini(slapd, ldap={"user_filter": "(&(objectClass=inetOrgPerson)(sn=%u))"}))
    r = get(p, origin, "/sn", basic("Carolson", PASSWORDS["carol"]))
    assert r.status == 200, r
    assert_challenge(get(p, origin, "/uid", basic("carol")))       # no surname "carol"
    assert targets(origin) == ["/sn"]


# ---------------------------------------------------------------------------
# groups


def test_group_by_cn(proxy_factory, origin, slapd):
    p = proxy_factory(ldap_ini(slapd, rules={"staff": {"groups": "staff", "action": "allow"}}, default="deny"))
    for user in ("alice", "bob"):
        r = get(p, origin, "/" + user, basic(user))
        assert r.status == 200, (user, r)
        assert log_entry(p, "/" + user)["rule"] == "staff"
    assert_denied(get(p, origin, "/carol", basic("carol")))
    assert_denied(get(p, origin, "/dave", basic("dave")))
    assert targets(origin) == ["/alice", "/bob"]
    # CONNECT goes through the same rules
    for user, want in (("carol", 403), ("bob", 200)):
        with Client(p.port) as c:
            c.request("CONNECT", origin.authority, [("Host", origin.authority),
                                                    ("Proxy-Authorization", basic(user))])
            r = c.read_response("CONNECT")
        assert r.status == want, (user, r)


def test_group_by_dn_case_insensitive(proxy_factory, origin, slapd):
    p = proxy_factory(ldap_ini(slapd, rules={
        "admins": {"groups": "CN=Admins,OU=Groups,DC=HopCache,DC=test", "action": "allow"}}, default="deny"))
    assert get(p, origin, "/alice", basic("alice")).status == 200
    assert_denied(get(p, origin, "/bob", basic("bob")))
    assert targets(origin) == ["/alice"]


def test_deny_rule_by_group(proxy_factory, origin, slapd):
    p = proxy_factory(ldap_ini(slapd, rules={
        "nocontractors": {"groups": "contractors", "action": "deny"}}, default="allow"))
    assert_denied(get(p, origin, "/carol", basic("carol")), "nocontractors")
    assert log_entry(p, "/carol")["rule"] == "nocontractors"
    assert get(p, origin, "/alice", basic("alice")).status == 200
    assert get(p, origin, "/dave", basic("dave")).status == 200    # in no group at all
    assert targets(origin) == ["/alice", "/dave"]


def test_deny_rule_by_dn(proxy_factory, origin, slapd):
    p = proxy_factory(ldap_ini(slapd, rules={
        "noadmins": {"groups": group_dn("admins"), "action": "deny"},
        "staff": {"groups": "staff", "action": "allow"}}, default="deny"))
    assert_denied(get(p, origin, "/alice", basic("alice")), "noadmins")
    r = get(p, origin, "/bob", basic("bob"))
    assert r.status == 200, r
    assert log_entry(p, "/bob")["rule"] == "staff"
    assert targets(origin) == ["/bob"]


def test_users_rule_with_ldap_backend(proxy_factory, origin, slapd):
    p = proxy_factory(ldap_ini(slapd, rules={"nobob": {"users": "bob", "action": "deny"}}))
    assert_denied(get(p, origin, "/bob", basic("bob")), "nobob")
    assert get(p, origin, "/alice", basic("alice")).status == 200


@pytest.mark.parametrize("name", ["BOB", "Bob", " bob"], ids=["upper", "capital", "leading-space"])
def test_users_rule_not_bypassed_by_another_spelling(proxy_factory, origin, slapd, name):
    """The directory finds uid=bob for "BOB" too (uid matches without regard
    to case, RFC 4519), and the bind as bob succeeds: a `users = bob` deny
    rule must still apply to that login: the directory's entry is the user."""
    p = proxy_factory(ldap_ini(slapd, rules={"nobob": {"users": "bob", "action": "deny"}}))
    r = get(p, origin, "/spelled", basic(name, PASSWORDS["bob"]))
    assert targets(origin) == [], "bob, spelled %r, got past `users = bob` (deny): %r" % (name, r)
    assert_denied(r, "nobob")


def test_group_filter(proxy_factory, origin, slapd):
    """group_filter instead of memberOf: groups found by a search for %D."""
    p = proxy_factory(ldap_ini(slapd, ldap={"group_filter": "(&(objectClass=groupOfNames)(member=%D))"},
                               rules={"noadmins": {"groups": group_dn("admins"), "action": "deny"},
                                      "staff": {"groups": "staff", "action": "allow"}}, default="deny"))
    assert_denied(get(p, origin, "/alice", basic("alice")), "noadmins")
    assert get(p, origin, "/bob", basic("bob")).status == 200
    assert_denied(get(p, origin, "/carol", basic("carol")))
    assert targets(origin) == ["/bob"]


@pytest.mark.parametrize("how", ["memberOf", "group_filter"])
def test_user_in_3000_groups(proxy_factory, origin, slapd, how):
    ldap = {"group_filter": "(&(objectClass=groupOfNames)(member=%D))"} if how == "group_filter" else {}
    p = proxy_factory(ldap_ini(slapd, ldap=dict(ldap, timeout="10"), rules={
        "last": {"groups": "g2999", "action": "allow"}}, default="deny"))
    r, took = timed(get, p, origin, "/many", basic("many"), timeout=15)
    assert r.status == 200, r
    assert log_entry(p, "/many")["rule"] == "last"
    assert took < 10, "the request took %.1fs" % took
    # a group the user is not in
    assert_denied(get(p, origin, "/alice", basic("alice")))
    assert targets(origin) == ["/many"]


def test_concurrent_lookups_get_their_own_answers(proxy_factory, origin, slapd):
    """Uncached lookups in flight together in one worker (answers slowed
    down so that they overlap) each get their own user's answer."""
    seed = int(os.environ.get("HOPCACHE_LDAP_SEED", random.randrange(1 << 30)))
    print("HOPCACHE_LDAP_SEED=%d" % seed)
    rnd = random.Random(seed)
    cases = [("alice", None, 200), ("bob", None, 200), ("carol", None, 403), ("dave", None, 403),
             ("many", None, 403), ("alice", "wrong-a", 407), ("bob", PASSWORDS["carol"], 407),
             ("carol", PASSWORDS["alice"], 407), ("mallory", "x", 407), ("dave", "", 407)]
    rnd.shuffle(cases)
    relay = SlowRelay(slapd.port, delay=0.5)
    try:
        p = proxy_factory(ldap_ini(slapd, uri=relay.uri, ldap={"timeout": "10"}, auth={"max_failures": "0"},
                                   rules={"nocontractors": {"groups": "contractors", "action": "deny"},
                                          "staff": {"groups": "staff", "action": "allow"}},
                                   default="deny"), workers=1)
        got = [None] * len(cases)

        def one(i):
            user, pw, _ = cases[i]
            try:
                got[i] = get(p, origin, "/c%d-%s" % (i, user), basic(user, pw), timeout=30).status
            except Exception as e:
                got[i] = repr(e)

        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(cases))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(35)
        want = [w for (_, _, w) in cases]
        assert got == want, "seed %d: cases %r\nwant %r\ngot  %r" % (
            seed, [(u, pw) for (u, pw, _) in cases], want, got)
        assert targets(origin) == sorted("/c%d-%s" % (i, c[0]) for i, c in enumerate(cases) if c[2] == 200)
    finally:
        relay.stop()


def test_group_list_with_bars_and_spaces(proxy_factory, origin, slapd):
    """Items separated by '|' may be CNs with spaces or DNs (with commas, and
    with spaces after the commas)."""
    p = proxy_factory(ldap_ini(slapd, rules={
        "some": {"groups": "Domain Users | cn=admins, ou=groups, dc=hopcache, dc=test", "action": "allow"}},
        default="deny"))
    for user in ("alice", "bob", "carol"):
        r = get(p, origin, "/" + user, basic(user))
        assert r.status == 200, (user, r)
    assert_denied(get(p, origin, "/dave", basic("dave")))
    assert targets(origin) == ["/alice", "/bob", "/carol"]


def test_group_dn_with_spaces_after_commas(proxy_factory, origin, slapd):
    """A DN written with spaces after its commas names the same group (a deny
    rule that silently never matched would let everyone through)."""
    p = proxy_factory(ldap_ini(slapd, rules={
        "noadmins": {"groups": "cn=admins, ou=groups, dc=hopcache, dc=test", "action": "deny"}},
        default="allow"))
    assert_denied(get(p, origin, "/alice", basic("alice")), "noadmins")
    assert get(p, origin, "/bob", basic("bob")).status == 200


def test_utf8_password_with_colon_and_space(proxy_factory, origin, slapd):
    p = proxy_factory(ldap_ini(slapd))
    r = get(p, origin, "/erin", basic("erin"))
    assert r.status == 200, r
    assert_challenge(get(p, origin, "/erin-nfd", basic("erin", PASSWORDS["erin"].replace("\u00e4", "a\u0308"))))


def test_directory_changes_seen_after_cache_ttl(proxy_factory, origin, slapd):
    """A password changed and a membership removed in the directory: the
    cached answer holds until cache_ttl, then the directory's new one."""
    ttl = 3
    old_pw, new_pw = PASSWORDS["frank"], "Frank-new-9c3d"
    p = proxy_factory(ldap_ini(slapd, ldap={"cache_ttl": ttl, "negative_ttl": ttl},
                               auth={"credential_ttl": ttl, "max_failures": "0"},
                               rules={"staff": {"groups": "staff", "action": "allow"},
                                      "frank": {"users": "frank", "action": "allow"}}, default="deny"))
    try:
        assert get(p, origin, "/frank-1", basic("frank")).status == 200
        assert get(p, origin, "/bob-1", basic("bob")).status == 200
        t0 = time.monotonic()
        slapd.set_password("frank", new_pw)
        slapd.modify("dn: %s\nchangetype: modify\ndelete: member\nmember: %s\n" % (group_dn("staff"), user_dn("bob")))
        assert get(p, origin, "/frank-2", basic("frank")).status == 200      # cached
        assert get(p, origin, "/bob-2", basic("bob")).status == 200          # cached
        assert time.monotonic() < t0 + ttl - 1, "the test is too slow to check the cached entries"
        time.sleep(max(0.0, t0 + ttl + 1.5 - time.monotonic()))
        assert_challenge(get(p, origin, "/frank-3", basic("frank")))         # the old password
        assert get(p, origin, "/frank-4", basic("frank", new_pw)).status == 200
        assert_denied(get(p, origin, "/bob-3", basic("bob")))               # no longer staff
    finally:
        slapd.set_password("frank", old_pw)
        slapd.modify("dn: %s\nchangetype: modify\nadd: member\nmember: %s\n" % (group_dn("staff"), user_dn("bob")))
    assert targets(origin) == ["/bob-1", "/bob-2", "/frank-1", "/frank-2", "/frank-4"]


# ---------------------------------------------------------------------------
# a lookup in flight: the client leaves, pipelining, a body, reload, shutdown


def test_client_leaves_during_lookup(proxy_factory, origin, slapd):
    """The client closes while its lookup is in flight: when the answer
    comes back there is nobody to give it to (no crash, no sanitizer report
    at teardown), and the worker keeps serving."""
    relay = SlowRelay(slapd.port, delay=1.5)
    try:
        p = proxy_factory(ldap_ini(slapd, uri=relay.uri, ldap={"timeout": "10"}))
        for user in ("alice", "bob", "carol"):
            c = Client(p.port)
            c.request("GET", origin.url("/gone-" + user), [("Host", origin.authority),
                                                           ("Proxy-Authorization", basic(user))])
            time.sleep(0.1)
            c.close()
        time.sleep(2.5)     # the answers came back meanwhile
        relay.delay = 0
        assert get(p, origin, "/after", basic("dave")).status == 200
        assert get(p, origin, "/after-alice", basic("alice")).status == 200
        assert targets(origin) == ["/after", "/after-alice"]
    finally:
        relay.stop()


def test_pipelined_requests_wait_for_the_directory_in_order(proxy_factory, origin, slapd):
    """Three pipelined requests of three uncached users on one connection:
    answered in order (a policy 403 closes the connection, so it comes last)."""
    relay = SlowRelay(slapd.port, delay=0.5)
    try:
        p = proxy_factory(ldap_ini(slapd, uri=relay.uri, ldap={"timeout": "10"},
                                   rules={"nocontractors": {"groups": "contractors", "action": "deny"}}))
        with Client(p.port, timeout=20) as c:
            raw = b""
            for i, user in enumerate(("alice", "bob", "carol")):
                raw += ("GET %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: %s\r\n\r\n"
                        % (origin.url("/p%d-%s" % (i, user)), origin.authority, basic(user))).encode()
            c.send(raw)
            got = [c.read_response() for _ in range(3)]
        assert [r.status for r in got] == [200, 200, 403], got
        assert got[0].body == b"hello from origin: GET /p0-alice"
        assert got[1].body == b"hello from origin: GET /p1-bob"
        assert_denied(got[2], "nocontractors")
        assert targets(origin) == ["/p0-alice", "/p1-bob"]
    finally:
        relay.stop()


def test_request_body_while_waiting_for_the_directory(proxy_factory, origin, slapd):
    body = bytes(range(256)) * 1024   # 256 KiB, sent while the lookup is slow
    relay = SlowRelay(slapd.port, delay=1.0)
    try:
        p = proxy_factory(ldap_ini(slapd, uri=relay.uri, ldap={"timeout": "10"}))
        with Client(p.port, timeout=20) as c:
            r = c.exchange("POST", origin.url("/post"), [("Host", origin.authority),
                                                         ("Proxy-Authorization", basic("bob")),
                                                         ("Content-Length", str(len(body)))], body)
        assert r.status == 200, r
        req = origin.requests[0]
        assert req.target == "/post" and req.body == body, (req, len(req.body))
    finally:
        relay.stop()


def _lookup_in_flight(proxy_factory, origin, slapd, relay):
    """A proxy asking the directory through relay, and a request of bob's
    in flight on it (a thread; its response lands in res["r"])."""
    p = proxy_factory(ldap_ini(slapd, uri=relay.uri, ldap={"timeout": "10"}))
    res = {}

    def inflight():
        try:
            res["r"] = get(p, origin, "/inflight", basic("bob"), timeout=20)
        except Exception as e:
            res["error"] = repr(e)

    t = threading.Thread(target=inflight, daemon=True)
    t.start()
    time.sleep(0.5)
    return p, t, res


def test_reload_during_lookup(proxy_factory, origin, slapd):
    """SIGHUP while a lookup is in flight: the old worker finishes that
    request (200), the new generation serves the next ones."""
    relay = SlowRelay(slapd.port, delay=1.0)   # a lookup: about 3 round trips
    try:
        p, t, res = _lookup_in_flight(proxy_factory, origin, slapd, relay)
        p.signal(signal.SIGHUP)
        t.join(25)
        assert "r" in res and res["r"].status == 200, res
        relay.delay = 0
        r = wait_for(lambda: (lambda r: r if r.status == 200 else None)(get(p, origin, "/next", basic("carol"))),
                     timeout=5, interval=0.2)
        assert r and r.status == 200, r
    finally:
        relay.stop()


def test_shutdown_during_lookup(proxy_factory, origin, slapd):
    """SIGTERM while a lookup is in flight: the request finishes (200, within
    shutdown_timeout) and the proxy exits 0."""
    relay = SlowRelay(slapd.port, delay=1.0)   # a lookup: about 3 round trips
    try:
        p, t, res = _lookup_in_flight(proxy_factory, origin, slapd, relay)
        t0 = time.monotonic()
        rc = p.stop(timeout=15)
        took = time.monotonic() - t0
        t.join(5)
        assert rc == 0, "exit status %r after SIGTERM during a lookup; logs:\n%s" % (rc, p.logs_text()[-2000:])
        assert "r" in res and res["r"].status == 200, res
        assert took < 5 + 1, "shutdown took %.1fs (shutdown_timeout 5)" % took
    finally:
        relay.stop()


# ---------------------------------------------------------------------------
# servers: the uri list, StartTLS


@pytest.mark.parametrize("sep", [" ", ", "], ids=["space", "comma"])
def test_uri_list_tried_in_order(proxy_factory, origin, slapd, sep):
    dead = "ldap://127.0.0.1:%d/" % free_port()
    p = proxy_factory(ldap_ini(slapd, uri=sep.join([dead, slapd.uri])))
    r, took = timed(get, p, origin, "/alice", basic("alice"))
    assert r.status == 200, r
    assert took < 3, "a refused first server must not cost the timeout: %.1fs" % took


def test_starttls(proxy_factory, origin, slapd_tls_server):
    s = slapd_tls_server
    p = proxy_factory(ldap_ini(s, ldap={"starttls": "yes", "ca_file": s.ca_file}))
    assert get(p, origin, "/tls", basic("bob")).status == 200


def test_starttls_untrusted_certificate(proxy_factory, origin, slapd_tls_server, tmp_path):
    s = slapd_tls_server
    other = make_ca(str(tmp_path / "other-ca"), name="not the directory's CA")
    p = proxy_factory(ldap_ini(s, ldap={"starttls": "yes", "ca_file": other.cert}))
    assert_unavailable(get(p, origin, "/tls", basic("bob")), "StartTLS to a certificate ca_file does not trust")
    assert targets(origin) == []


# ---------------------------------------------------------------------------
# the directory down, then back


def test_directory_down_then_back(proxy_factory, origin, slapd):
    ttl = 6
    p = proxy_factory(ldap_ini(slapd, ldap={"cache_ttl": ttl, "negative_ttl": ttl, "timeout": "2"},
                               auth={"credential_ttl": ttl, "max_failures": "0"},
                               rules={"staff": {"groups": "staff", "action": "allow"}}, default="deny"))
    r = get(p, origin, "/alice-1", basic("alice"))
    cached_at = time.monotonic()
    assert r.status == 200, r
    slapd.stop()
    # cached: keeps working
    r, took = timed(get, p, origin, "/alice-2", basic("alice"))
    assert r.status == 200, "alice's groups are cached (cache_ttl %d): %r" % (ttl, r)
    assert took < 1.0, took
    # not cached: 503, never 200, never 407 (that would make a browser prompt)
    assert_unavailable(get(p, origin, "/bob-1", basic("bob")), "bob (uncached) with the directory down")
    assert_unavailable(get(p, origin, "/mallory", basic("mallory", "x")), "an unknown user, directory down")
    assert_unavailable(get(p, origin, "/alice-pw", basic("alice", "not-her-password")),
                       "alice with another password, directory down")
    e = log_entry(p, "/bob-1")
    assert e["status"] == "503" and e["outcome"] == "proxy_internal_error", e
    assert time.monotonic() < cached_at + ttl - 1, "the test is too slow to check the cached entry"
    # cache_ttl over: alice needs the directory too
    time.sleep(max(0.0, cached_at + ttl + 1.5 - time.monotonic()))
    assert_unavailable(get(p, origin, "/alice-3", basic("alice")), "alice after cache_ttl, directory down")
    # back on the same port: no reload needed
    slapd.start()
    deadline = time.monotonic() + 2 + 3
    seen = []
    while True:
        r = get(p, origin, "/bob-2", basic("bob"))
        seen.append(r.status)
        if r.status == 200 or time.monotonic() > deadline:
            break
        assert_unavailable(r, "bob while the directory comes back")
        time.sleep(0.2)
    assert r.status == 200, "bob after the directory came back: statuses %r" % seen
    assert get(p, origin, "/alice-4", basic("alice")).status == 200
    assert targets(origin) == ["/alice-1", "/alice-2", "/alice-4"] + ["/bob-2"]


def test_directory_down_at_start(proxy_factory, origin, slapd):
    """The proxy starts without its directory and uses it once it is there."""
    slapd.stop()
    p = proxy_factory(ldap_ini(slapd, ldap={"timeout": "2"}, auth={"max_failures": "0"}))
    assert_unavailable(get(p, origin, "/first", basic("carol")), "carol, directory never seen")
    slapd.start()
    r = wait_for(lambda: (lambda r: r if r.status == 200 else None)(get(p, origin, "/later", basic("carol"))),
                 timeout=5, interval=0.2)
    assert r and r.status == 200, r


# ---------------------------------------------------------------------------
# a slow directory


def test_slow_directory_does_not_block_the_worker(proxy_factory, origin, slapd):
    delay = 3.0
    relay = SlowRelay(slapd.port)
    try:
        p = proxy_factory(ldap_ini(slapd, uri=relay.uri, ldap={"timeout": "15", "cache_ttl": "60"}), workers=1)
        assert get(p, origin, "/alice-warm", basic("alice")).status == 200   # alice now cached
        relay.delay = delay
        slow = {}

        def slow_request():
            t0 = time.monotonic()
            try:
                slow["r"] = get(p, origin, "/bob-slow", basic("bob"), timeout=30)
            except Exception as e:  # reported below
                slow["error"] = e
            slow["end"] = time.monotonic()
            slow["took"] = slow["end"] - t0

        t = threading.Thread(target=slow_request, daemon=True)
        t.start()
        time.sleep(0.5)   # bob's lookup is waiting for the relay
        r, took_status = timed(admin_get, p.port, "/hopcache/status")
        assert r.status == 200, r
        r, took_alice = timed(get, p, origin, "/alice-fast", basic("alice"))
        assert r.status == 200, r
        fast_end = time.monotonic()
        assert took_status < 1.0 and took_alice < 1.0, \
            "the worker stalled behind a slow directory lookup: status %.2fs, cached alice %.2fs" % (
                took_status, took_alice)
        t.join(35)
        assert "error" not in slow, slow
        assert not t.is_alive(), "bob's request never finished"
        assert slow["r"].status == 200, slow["r"]
        assert slow["took"] >= delay, "bob's lookup did not wait for the slow directory: %.2fs" % slow["took"]
        assert slow["end"] > fast_end, "bob's request was not in flight while the others were served"
    finally:
        relay.stop()


def test_directory_timeout(proxy_factory, origin, slapd):
    """A directory slower than [ldap] timeout is unavailable: 503 after about
    the timeout, not later."""
    relay = SlowRelay(slapd.port, delay=6.0)
    try:
        p = proxy_factory(ldap_ini(slapd, uri=relay.uri, ldap={"timeout": "2"}))
        r, took = timed(get, p, origin, "/dave", basic("dave"), timeout=15)
        assert_unavailable(r, "dave, the directory slower than the timeout")
        assert 1.8 <= took < 2 + 1.5, "503 after %.2fs with timeout = 2" % took
        assert targets(origin) == []
    finally:
        relay.stop()


# ---------------------------------------------------------------------------
# metrics and status


def test_metrics_and_status(proxy_factory, origin, slapd):
    p = proxy_factory(ldap_ini(slapd, ldap={"cache_ttl": "60", "negative_ttl": "60", "timeout": "2"}))

    def counts():
        m = metrics(p)
        assert m.types.get("hopcache_directory_lookups_total") == "counter", m.text
        assert m.types.get("hopcache_directory_cache_total") == "counter", m.text
        return ({res: m.get("hopcache_directory_lookups_total", result=res) for res in ("ok", "not_found", "error")},
                {res: m.get("hopcache_directory_cache_total", result=res) for res in ("hit", "miss")})

    assert counts() == ({"ok": 0, "not_found": 0, "error": 0}, {"hit": 0, "miss": 0})
    assert get(p, origin, "/a1", basic("alice")).status == 200
    assert counts() == ({"ok": 1, "not_found": 0, "error": 0}, {"hit": 0, "miss": 1})
    assert status(p)["directory"]["state"] == "up"
    assert get(p, origin, "/a2", basic("alice")).status == 200
    assert counts() == ({"ok": 1, "not_found": 0, "error": 0}, {"hit": 1, "miss": 1})
    assert get(p, origin, "/m1", basic("mallory", "x")).status == 407
    assert counts() == ({"ok": 1, "not_found": 1, "error": 0}, {"hit": 1, "miss": 2})
    assert get(p, origin, "/m2", basic("mallory", "x")).status == 407    # negative_ttl
    assert counts() == ({"ok": 1, "not_found": 1, "error": 0}, {"hit": 2, "miss": 2})
    slapd.stop()
    assert get(p, origin, "/b1", basic("bob")).status == 503
    assert counts() == ({"ok": 1, "not_found": 1, "error": 1}, {"hit": 2, "miss": 3})
    assert status(p)["directory"]["state"] == "down"


# ---------------------------------------------------------------------------
# configuration (-t)


def test_config_valid_without_the_directory(proxy_factory, tmp_path):
    """-t checks the configuration; it does not need the directory up."""
    if not os.path.exists(BINARY):
        pytest.skip("hopcache binary not built")
    pw = tmp_path / "bind_pw"
    pw.write_text("secret")
    pw.chmod(0o600)
    dead = "ldap://127.0.0.1:%d/" % free_port()
    p = proxy_factory({"auth": {"scheme": "basic", "basic_backend": "ldap"},
                       "ldap": {"uri": dead, "base": BASE, "bind_dn": "cn=proxy," + BASE,
                                "bind_password_file": str(pw), "group_filter": "(member=%D)",
                                "user_filter": "(uid=%u)", "starttls": "no", "timeout": "5",
                                "cache_ttl": "30", "negative_ttl": "10"}}, start=False)
    rc, out = run_t(p)
    assert rc == 0, out


@pytest.mark.parametrize("ldap,auth,needle", [
    (None, {"basic_backend": "ldap"}, "[ldap] uri"),
    ({"uri": "http://127.0.0.1:389/"}, {"basic_backend": "ldap"}, "[ldap] uri"),
    ({"starttls": "maybe"}, {"basic_backend": "ldap"}, "[ldap] starttls"),
    ({"bind_password_file": "/nonexistent/hopcache-bind-pw"}, {"basic_backend": "ldap"},
     "/nonexistent/hopcache-bind-pw"),
    ({}, {"basic_backend": "kerberos"}, "[auth] basic_backend"),
], ids=["no-uri", "uri-scheme", "starttls", "password-file", "backend"])
def test_config_errors(proxy_factory, ldap, auth, needle):
    if not os.path.exists(BINARY):
        pytest.skip("hopcache binary not built")
    sec = {"uri": "ldap://127.0.0.1:389/", "base": BASE, "bind_dn": "cn=proxy," + BASE}
    if ldap is None:
        sec = None
    else:
        sec.update(ldap)
    extra = {"auth": dict({"scheme": "basic"}, **auth)}
    if sec is not None:
        extra["ldap"] = sec
    p = proxy_factory(extra, start=False)
    rc, out = run_t(p)
    assert rc == 1, "accepted: %r\n%s" % (extra, out)
    assert needle in out, "want %r in:\n%s" % (needle, out)
