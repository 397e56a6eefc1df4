"""Directory groups for users authenticated by the htpasswd file ([auth]
basic_backend = htpasswd with [ldap]), against a real slapd
(slapd_fixture.py; test_ldap.py covers basic_backend = ldap): a group of
the [auth] groups file keeps its meaning, other names are the directory's;
the directory is asked only when a rule naming a directory group is
reached; concurrent lookups for one user are one lookup; requests that
stop waiting leave their jobs (a running one still fills the cache, a
queued one is skipped); -t refuses an unknown group only without [ldap].

htpasswd users (fixtures/auth): alice, bob, carol, dave. Groups file:
staff (alice, bob), admins (carol). Directory: staff (alice, bob), admins
(alice), contractors (carol); dave in none.

Needs slapd and ldap-utils (skipped without them, failed in CI)."""

import base64
import os
import subprocess
import threading
import time

import pytest

slapd_fixture = pytest.importorskip("slapd_fixture")

from conftest import BINARY  # noqa: E402
from helpers import Client  # noqa: E402
from slapd_fixture import SlowRelay, slapd, slapd_server  # noqa: E402,F401
from test_ops import metrics  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "auth")
HTPASSWD = os.path.join(FIXTURES, "htpasswd")
GROUPS = os.path.join(FIXTURES, "groups")
PASSWORDS = {"alice": "Wonderland-7f3q", "bob": "B0b:has:colons-9k", "carol": "Carol-sha256-x4v",
             "dave": "Dave-apr1-m2p"}
UNAVAILABLE = 'hopcache; error=proxy_internal_error; details="directory unavailable"'


def basic(user):
    raw = ("%s:%s" % (user, PASSWORDS[user])).encode("utf-8")
    return "Basic " + base64.b64encode(raw).decode("ascii")


def ini(directory, rules, uri=None, groups_file=True, ldap=None):
    auth = {"scheme": "basic", "htpasswd": HTPASSWD}
    if groups_file:
        auth["groups"] = GROUPS
    extra = {
        "auth": auth,
        "ldap": {"uri": uri or directory.uri, "base": directory.base, "bind_dn": directory.bind_dn,
                 "bind_password_file": directory.bind_password_file, "timeout": "3"},
        "acl": {"private_destinations": "allow", "default": "deny", "rules": ", ".join(rules)},
    }
    extra["ldap"].update(ldap or {})
    for name, kv in rules.items():
        extra["rule." + name] = dict(kv)
    return extra


def get(proxy, origin, path, user, timeout=10.0):
    with Client(proxy.port, timeout=timeout) as c:
        return c.exchange("GET", origin.url(path), [("Host", origin.authority),
                                                    ("Proxy-Authorization", basic(user))])


def lookups(p):
    m = metrics(p)
    return {r: m.get("hopcache_directory_lookups_total", result=r) for r in ("ok", "not_found", "error")}


def test_groups_file_first_then_directory(proxy_factory, origin, slapd):
    """admins is the groups file's (carol), contractors the directory's (carol),
    a DN always the directory's."""
    p = proxy_factory(ini(slapd, {
        "fileadmins": {"groups": "admins", "url_regex": "/file/", "action": "allow"},
        "dircontractors": {"groups": "contractors", "url_regex": "/dir/", "action": "allow"},
        "dirdn": {"groups": "cn=Admins, ou=Groups, dc=hopcache, dc=test", "url_regex": "/dn/",
                  "action": "allow"},
    }))
    assert get(p, origin, "/file/carol", "carol").status == 200
    assert get(p, origin, "/file/alice", "alice").status == 403   # the file: admins is carol
    assert get(p, origin, "/dir/carol", "carol").status == 200
    assert get(p, origin, "/dir/bob", "bob").status == 403
    assert get(p, origin, "/dn/alice", "alice").status == 200     # the directory: admins is alice
    assert get(p, origin, "/dn/carol", "carol").status == 403
    assert get(p, origin, "/dir/dave", "dave").status == 403      # in no group


def test_directory_asked_only_when_a_rule_needs_it(proxy_factory, origin, slapd):
    p = proxy_factory(ini(slapd, {
        "alice": {"users": "alice", "action": "allow"},
        "filestaff": {"groups": "staff", "url_regex": "/file/", "action": "allow"},
        "contractors": {"groups": "contractors", "action": "allow"},
    }))
    assert get(p, origin, "/a", "alice").status == 200
    assert get(p, origin, "/file/bob", "bob").status == 200
    assert lookups(p) == {"ok": 0, "not_found": 0, "error": 0}
    slapd.stop()
    # still no directory needed for these
    assert get(p, origin, "/a2", "alice").status == 200
    assert get(p, origin, "/file/bob2", "bob").status == 200
    # this one reaches the directory group: 503, never an allow or a 403
    r = get(p, origin, "/dir/carol", "carol")
    assert r.status == 503, r
    assert r.joined("proxy-status") == UNAVAILABLE
    assert lookups(p)["error"] == 1
    slapd.start()
    assert get(p, origin, "/dir/carol2", "carol").status == 200
    assert lookups(p)["ok"] == 1


def test_concurrent_lookups_are_one(proxy_factory, origin, slapd):
    relay = SlowRelay(slapd.port, delay=1.0)
    try:
        p = proxy_factory(ini(slapd, {"contractors": {"groups": "contractors", "action": "allow"}},
                              uri=relay.uri, ldap={"timeout": "10"}), workers=1)
        got = []

        def one(i):
            got.append(get(p, origin, "/c%d" % i, "carol", timeout=20).status)

        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(25)
        assert got == [200] * 6, got
        assert lookups(p) == {"ok": 1, "not_found": 0, "error": 0}
    finally:
        relay.stop()


def test_requests_that_stop_waiting(proxy_factory, origin, slapd):
    """Requests that stop waiting (their deadline, [ldap] timeout and half a
    second, passes while the directory is slow) get 503 and leave their jobs:
    a job already running still fills the cache, one not started is skipped;
    the worker goes on."""
    relay = SlowRelay(slapd.port, delay=1.5)   # a fresh connection: bind + search = 3 s
    users = ["carol", "alice", "bob", "dave", "frank", "gina"]  # 4 threads: the last two queue
    PASSWORDS.update({"frank": "Frank-ossl6-w3j", "gina": "Gina-osslapr1-r7t"})  # gina: not in the directory
    try:
        p = proxy_factory(ini(slapd, {"contractors": {"groups": "contractors", "action": "allow"}},
                              uri=relay.uri, ldap={"timeout": "2"}), workers=1)
        got = {}

        def one(user):
            t0 = time.monotonic()
            r = get(p, origin, "/w-" + user, user, timeout=15)
            got[user] = (r.status, r.joined("proxy-status"), time.monotonic() - t0)

        threads = []
        for u in users:
            t = threading.Thread(target=one, args=(u,), daemon=True)
            t.start()
            threads.append(t)
            time.sleep(0.05)
        for t in threads:
            t.join(20)
        for u in users:
            status, ps, took = got[u]
            assert status == 503 and ps == UNAVAILABLE, (u, got[u])
            assert 2.2 <= took < 3.5, (u, took)
        # the four running jobs end (3 s after they started) and are counted;
        # the two queued ones were skipped
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and sum(lookups(p).values()) < 4:
            time.sleep(0.2)
        time.sleep(1.0)
        assert lookups(p) == {"ok": 4, "not_found": 0, "error": 0}, lookups(p)
        relay.delay = 0
        t0 = time.monotonic()
        r = get(p, origin, "/after", "carol")   # from the cache: no lookup
        assert r.status == 200, r
        assert time.monotonic() - t0 < 1.0
        assert lookups(p) == {"ok": 4, "not_found": 0, "error": 0}
        assert get(p, origin, "/gina", "gina").status == 403    # asked now: not in the directory
        assert lookups(p) == {"ok": 4, "not_found": 1, "error": 0}
        assert [q.target for q in origin.requests] == ["/after"]
    finally:
        relay.stop()


def test_config_unknown_group(proxy_factory, slapd):
    if not os.path.exists(BINARY):
        pytest.skip("hopcache binary not built")
    rules = {"r": {"groups": "nosuchgroup", "action": "allow"}}
    p = proxy_factory({"auth": {"scheme": "basic", "htpasswd": HTPASSWD, "groups": GROUPS},
                       "acl": {"rules": "r"}, "rule.r": rules["r"]}, start=False)
    p.write_ini()
    r = subprocess.run([BINARY, "-t", "-c", p.ini], capture_output=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 1, out
    assert '[rule.r] groups: "nosuchgroup" is not a group of the [auth] groups file, and there ' \
           'is no [ldap] directory' in out, out
    p2 = proxy_factory(ini(slapd, rules), start=False)
    p2.write_ini()
    r = subprocess.run([BINARY, "-t", "-c", p2.ini], capture_output=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
