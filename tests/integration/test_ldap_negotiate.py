"""Directory groups for users authenticated by Negotiate (Kerberos, a real
MIT KDC: krb5_kdc.py) against a real slapd (slapd_fixture.py): the
principal alice@HOPCACHE.TEST is looked up as %u = alice (the part before
the last '@'), on the request that authenticated and on a later one that
the connection's identity ([auth] connection_auth) carries.

Needs the Negotiate tests' packages and slapd (skipped without them, failed
in CI)."""

import os

import pytest

slapd_fixture = pytest.importorskip("slapd_fixture")

from helpers import Client  # noqa: E402
from krb5_kdc import REALM  # noqa: E402
from slapd_fixture import slapd, slapd_server  # noqa: E402,F401
from test_negotiate import alice_cc, bob_cc, kdc, neg  # noqa: E402,F401
from test_ops import metrics  # noqa: E402


def proxy(proxy_factory, kdc, directory, rules, **auth):
    extra = {
        "auth": dict({"scheme": "negotiate", "keytab": kdc.keytab}, **auth),
        "ldap": {"uri": directory.uri, "base": directory.base, "bind_dn": directory.bind_dn,
                 "bind_password_file": directory.bind_password_file, "timeout": "3",
                 "cache_ttl": "0", "negative_ttl": "0"},
        "acl": {"private_destinations": "allow", "default": "deny", "rules": ", ".join(rules)},
    }
    for name, kv in rules.items():
        extra["rule." + name] = dict(kv)
    return proxy_factory(extra)


def exchange(c, origin, path, token=None):
    hdrs = [("Host", origin.authority)]
    if token is not None:
        hdrs.append(("Proxy-Authorization", "Negotiate " + token))
    return c.exchange("GET", origin.url(path), hdrs)


def test_principal_looked_up_by_its_name(proxy_factory, origin, neg, alice_cc, bob_cc, slapd):
    p = proxy(proxy_factory, neg.kdc, slapd, {"admins": {"groups": "admins", "action": "allow"}},
              connection_auth="yes")
    tok, _ = neg.kdc.make_token(alice_cc)
    with Client(p.port) as c:
        r = exchange(c, origin, "/alice", tok)
        assert r.status == 200, "%r\n%s" % (r, p.logs_text()[-2000:])
        # the same connection, no credentials: its Negotiate identity
        r = exchange(c, origin, "/alice-again")
        assert r.status == 200, "%r\n%s" % (r, p.logs_text()[-2000:])
    e = p.wait_access(lambda e: e.get("target", "").endswith("/alice-again"))
    assert e is not None and e["user"] == "alice@" + REALM, e
    tok, _ = neg.kdc.make_token(bob_cc)
    with Client(p.port) as c:
        r = exchange(c, origin, "/bob", tok)
    assert r.status == 403, r     # bob is not in admins
    m = metrics(p)
    # cache_ttl 0: each request asked the directory, and found the user
    assert m.get("hopcache_directory_lookups_total", result="ok") == 3
    assert m.get("hopcache_directory_lookups_total", result="not_found") == 0
    assert [q.target for q in origin.requests] == ["/alice", "/alice-again"]
    assert os.path.exists(slapd.log_path)
