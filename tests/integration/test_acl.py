"""Egress policy (issue 4) through the real binary: each [rule.NAME] matcher
(domains, domain_file, src, users/groups, methods, dst, ports, url_regex,
time) allowing and denying, first-match order, [acl] default, the private
destination refusal (several spellings, plain and CONNECT, before any
connection is opened), the 403 page / Proxy-Status / access-log RULE field,
and `hopcache -t` errors for bad rule configuration.

The default test INI sets `[acl] private_destinations = allow` because the
recording origins live on loopback; tests of the private refusal override it
back to deny. Names are resolved by the `fake_dns` fixture (loopback only)."""

import os
import socket
import subprocess
import time

import pytest

from conftest import BINARY
from helpers import Client, fetch, wait_for

AUTH_FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "auth")
HTPASSWD = os.path.join(AUTH_FIXTURES, "htpasswd")
GROUPS = os.path.join(AUTH_FIXTURES, "groups")
# fixtures/auth/gen.sh: dave is apr1-MD5, gina openssl apr1, erin {SHA} (cheap hashes)
PASSWORDS = {"alice": "Wonderland-7f3q", "dave": "Dave-apr1-m2p", "erin": "Erin-sha1-q8z"}
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]  # python tm_wday order


# ---------------------------------------------------------------------------
# helpers


def acl_ini(rules, default=None, private="allow", extra=None):
    """ini_extra for an ordered {name: {key: value}} dict of rules."""
    ini = {"acl": {"private_destinations": private}}
    if default is not None:
        ini["acl"]["default"] = default
    if rules:
        ini["acl"]["rules"] = ", ".join(rules)
    for name, kv in rules.items():
        ini["rule." + name] = dict(kv)
    for sec, kv in (extra or {}).items():
        ini.setdefault(sec, {}).update(kv)
    return ini


def named(fake_dns, tmp_path, names, addr="127.0.0.1"):
    """Make fake_dns answer `names` with addr; return the [upstream] section."""
    for n in names:
        fake_dns.records[n.lower()] = {"A": [addr]}
    return {"upstream": {"resolv_conf": fake_dns.resolv_conf(str(tmp_path / "resolv.conf"))}}


def get(proxy, url, headers=(), method="GET", body=None):
    return fetch(proxy.port, url, headers=headers, method=method, body=body)


def connect(proxy, authority, headers=()):
    """Send CONNECT authority; return (client, response head). Caller closes."""
    c = Client(proxy.port)
    c.request("CONNECT", authority, [("Host", authority)] + list(headers))
    return c, c.read_response("CONNECT")


def no_connection(origin, settle=0.2):
    time.sleep(settle)
    return len(origin.conns) == 0


def proxy_status(resp):
    return resp.joined("proxy-status")


def assert_denied_by(resp, rule):
    assert resp.status == 403, resp
    ps = proxy_status(resp)
    assert "error=http_request_denied" in ps, ps
    assert 'details="denied by rule %s"' % rule in ps, ps
    assert ("denied by rule %s" % rule).encode() in resp.body, resp.body[:400]
    assert "text/html" in (resp.get("content-type") or ""), resp.headers


def assert_private_denied(resp):
    assert resp.status == 403, resp
    assert "error=destination_ip_prohibited" in proxy_status(resp), proxy_status(resp)


def log_rule(proxy, target_part, method=None):
    e = proxy.wait_access(lambda e: target_part in e.get("target", "") and
                          (method is None or e.get("method") == method))
    assert e is not None, "no access-log line for %r: %r" % (target_part, proxy.read_access_log())
    assert e["_nfields"] == 12, e["_line"]
    return e["rule"]


# ---------------------------------------------------------------------------
# domains, domain_file


def test_domains_exact_and_suffix(proxy_factory, origin, fake_dns, tmp_path):
    names = ["blocked.test", "sub.blocked.test", "evil.test", "a.b.evil.test", "notevil.test", "ok.test"]
    p = proxy_factory(acl_ini({"bl": {"domains": "blocked.test, .evil.test", "action": "deny"}},
                              extra=named(fake_dns, tmp_path, names)))
    port = origin.port
    for host in ("blocked.test", "BLOCKED.test", "evil.test", "a.b.evil.test"):
        r = get(p, "http://%s:%d/d-%s" % (host, port, host))
        assert_denied_by(r, "bl")
        assert log_rule(p, "/d-%s" % host) == "bl"
    assert no_connection(origin)
    # exact entry does not cover subdomains; suffix needs a label boundary
    for host in ("sub.blocked.test", "notevil.test", "ok.test"):
        r = get(p, "http://%s:%d/a-%s" % (host, port, host))
        assert r.status == 200, (host, r)
        assert log_rule(p, "/a-%s" % host) == "default"
    assert sorted(q.target for q in origin.requests) == sorted(
        "/a-%s" % h for h in ("sub.blocked.test", "notevil.test", "ok.test"))


def test_domain_file_matches_subdomains(proxy_factory, origin, fake_dns, tmp_path):
    lst = tmp_path / "blocked.txt"
    lst.write_text("# blocked sites\n\nbad.test\n  # indented comment\nworse.test   \n")
    names = ["bad.test", "x.y.bad.test", "worse.test", "xbad.test", "good.test"]
    p = proxy_factory(acl_ini({"blocklist": {"domain_file": str(lst), "action": "deny"}},
                              extra=named(fake_dns, tmp_path, names)))
    for host in ("bad.test", "x.y.bad.test", "worse.test"):
        r = get(p, "http://%s:%d/d" % (host, origin.port))
        assert_denied_by(r, "blocklist")
    assert no_connection(origin)
    for host in ("xbad.test", "good.test"):
        r = get(p, "http://%s:%d/a" % (host, origin.port))
        assert r.status == 200, (host, r)
    assert len(origin.requests) == 2


def test_domain_rule_denies_connect_before_tunnel(proxy_factory, origin, fake_dns, tmp_path):
    p = proxy_factory(acl_ini({"bl": {"domains": ".blocked.test", "action": "deny"}},
                              extra=named(fake_dns, tmp_path, ["www.blocked.test", "ok.test"])))
    c, r = connect(p, "www.blocked.test:%d" % origin.port)
    try:
        assert_denied_by(r, "bl")
        # no tunnel: bytes after the 403 are not relayed, the connection closes
        try:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        except OSError:
            pass
        closed, data = c.wait_closed(3.0)
        assert closed, "the connection stayed open after the refused CONNECT"
        assert data == b"", "bytes after the 403 were answered: %r" % data[:200]
    finally:
        c.close()
    assert no_connection(origin)
    assert log_rule(p, "www.blocked.test", "CONNECT") == "bl"
    c, r = connect(p, "ok.test:%d" % origin.port)
    c.close()
    assert r.status == 200, r
    assert log_rule(p, "ok.test", "CONNECT") == "default"


# ---------------------------------------------------------------------------
# src, methods, ports, url_regex, time


def test_src_cidr(proxy_factory, origin):
    p = proxy_factory(acl_ini({"other": {"src": "10.0.0.0/8, 2001:db8::/32", "action": "deny"},
                               "lo": {"src": "127.0.0.0/8", "action": "deny"}}))
    r = get(p, origin.url("/src"))
    assert_denied_by(r, "lo")
    assert no_connection(origin)
    p2 = proxy_factory(acl_ini({"other": {"src": "10.0.0.0/8", "action": "deny"},
                                "lo": {"src": "127.0.0.1/32", "action": "allow"}}, default="deny"))
    r = get(p2, origin.url("/src2"))
    assert r.status == 200, r
    assert log_rule(p2, "/src2") == "lo"


def test_methods(proxy_factory, origin):
    p = proxy_factory(acl_ini({"ro": {"methods": "POST, DELETE", "action": "deny"}}))
    r = get(p, origin.url("/m"), method="POST", body=b"x")
    assert_denied_by(r, "ro")
    r = get(p, origin.url("/m"), method="DELETE")
    assert_denied_by(r, "ro")
    assert no_connection(origin)
    r = get(p, origin.url("/m"))
    assert r.status == 200, r
    assert [q.method for q in origin.requests] == ["GET"]


def test_methods_connect(proxy_factory, origin):
    p = proxy_factory(acl_ini({"noconnect": {"methods": "CONNECT", "action": "deny"}}))
    c, r = connect(p, origin.authority)
    c.close()
    assert_denied_by(r, "noconnect")
    assert no_connection(origin)
    assert get(p, origin.url("/plain")).status == 200


def test_ports(proxy_factory, origin_factory):
    a, b = origin_factory(), origin_factory()
    p = proxy_factory(acl_ini({"web": {"ports": "80, 443, %d" % a.port, "action": "allow"}},
                              default="deny"))
    assert get(p, a.url("/p")).status == 200
    assert log_rule(p, "/p") == "web"
    r = get(p, b.url("/q"))
    assert r.status == 403, r
    assert "error=http_request_denied" in proxy_status(r)
    assert log_rule(p, "/q") == "default"
    assert no_connection(b)
    # ranges
    lo, hi = sorted((a.port, b.port))
    p2 = proxy_factory(acl_ini({"range": {"ports": "%d-%d" % (lo, hi), "action": "deny"}}))
    assert_denied_by(get(p2, a.url("/r")), "range")
    assert_denied_by(get(p2, b.url("/r")), "range")


def test_url_regex_plain_only(proxy_factory, origin):
    p = proxy_factory(acl_ini({"secret": {"url_regex": "/secret(/|$)", "action": "deny"},
                               "all": {"url_regex": ".", "methods": "CONNECT", "action": "deny"}}))
    assert_denied_by(get(p, origin.url("/secret/x")), "secret")
    assert no_connection(origin)
    assert get(p, origin.url("/public/secretary")).status == 200
    # url_regex never matches CONNECT, even a regex that matches anything
    c, r = connect(p, origin.authority)
    c.close()
    assert r.status == 200, r
    assert log_rule(p, origin.authority, "CONNECT") == "default"


def test_time_window(proxy_factory, origin):
    always = proxy_factory(acl_ini({"t": {"time": "Mon-Sun 00:00-24:00", "action": "deny"}}))
    assert_denied_by(get(always, origin.url("/t1")), "t")
    other_day = DAYS[(time.localtime().tm_wday + 3) % 7]
    never = proxy_factory(acl_ini({"t": {"time": other_day, "action": "deny"}}))
    assert get(never, origin.url("/t2")).status == 200
    assert log_rule(never, "/t2") == "default"


# ---------------------------------------------------------------------------
# users, groups


def basic(user):
    import base64
    return "Basic " + base64.b64encode(("%s:%s" % (user, PASSWORDS[user])).encode()).decode()


def test_users_and_groups(proxy_factory, origin):
    p = proxy_factory(acl_ini(
        {"nodave": {"users": "dave", "action": "deny"},
         "staff": {"groups": "staff", "action": "allow"},
         "erin": {"users": "erin", "methods": "HEAD", "action": "allow"}},
        default="deny",
        extra={"auth": {"scheme": "basic", "htpasswd": HTPASSWD, "groups": GROUPS}}))
    r = get(p, origin.url("/alice"), [("Proxy-Authorization", basic("alice"))])
    assert r.status == 200, r
    assert log_rule(p, "/alice") == "staff"
    assert_denied_by(get(p, origin.url("/dave"), [("Proxy-Authorization", basic("dave"))]), "nodave")
    r = get(p, origin.url("/erin"), [("Proxy-Authorization", basic("erin"))])
    assert r.status == 403 and log_rule(p, "/erin") == "default", r
    r = get(p, origin.url("/erin-head"), [("Proxy-Authorization", basic("erin"))], method="HEAD")
    assert r.status == 200, r
    assert sorted(q.target for q in origin.requests) == ["/alice", "/erin-head"]
    # CONNECT goes through the same rules
    c, r = connect(p, origin.authority, [("Proxy-Authorization", basic("dave"))])
    c.close()
    assert_denied_by(r, "nodave")


# ---------------------------------------------------------------------------
# dst


def test_dst_denies_resolved_address(proxy_factory, origin, fake_dns, tmp_path):
    """The name gives no hint; the resolved address decides, before connect."""
    p = proxy_factory(acl_ini({"nolo": {"dst": "127.0.0.0/8", "action": "deny"}},
                              extra=named(fake_dns, tmp_path, ["innocent.test"])))
    r = get(p, "http://innocent.test:%d/dst" % origin.port)
    assert r.status == 403, r
    assert no_connection(origin)
    assert log_rule(p, "/dst") == "nolo"
    assert 'details="denied by rule nolo"' in proxy_status(r), proxy_status(r)
    assert b"denied by rule nolo" in r.body, r.body[:400]


def test_dst_allow_and_connect(proxy_factory, origin, fake_dns, tmp_path):
    p = proxy_factory(acl_ini({"lan": {"dst": "10.0.0.0/8", "action": "allow"},
                               "lo": {"dst": "127.0.0.1/32", "ports": str(origin.port), "action": "allow"}},
                              default="deny", extra=named(fake_dns, tmp_path, ["svc.test"])))
    r = get(p, "http://svc.test:%d/ok" % origin.port)
    assert r.status == 200, r
    assert log_rule(p, "/ok") == "lo"
    c, r = connect(p, "svc.test:%d" % origin.port)
    c.close()
    assert r.status == 200, r
    p2 = proxy_factory(acl_ini({"lan": {"dst": "10.0.0.0/8", "action": "allow"}}, default="deny",
                               extra=named(fake_dns, tmp_path, ["svc.test"])))
    n = len(origin.conns)
    c, r = connect(p2, "svc.test:%d" % origin.port)
    c.close()
    assert r.status == 403, r
    assert log_rule(p2, "svc.test", "CONNECT") == "default"
    time.sleep(0.2)
    assert len(origin.conns) == n, "CONNECT denied by dst still opened a connection"


def test_dst_rule_applies_to_pooled_connection(proxy_factory, origin, fake_dns, tmp_path):
    """A request whose decision needs the resolved address (a name plus a
    dst rule) must be vetted even when a pooled upstream connection to that
    host:port is reused."""
    p = proxy_factory(acl_ini({"sec": {"url_regex": "/secret", "dst": "127.0.0.0/8", "action": "deny"}},
                              extra=named(fake_dns, tmp_path, ["pool.test"])))
    auth = "pool.test:%d" % origin.port
    r = get(p, "http://%s/secret-fresh" % auth)
    assert r.status == 403, r  # no pooled connection yet: the filter decides
    with Client(p.port) as c:
        r = c.exchange("GET", "http://%s/public" % auth, [("Host", auth)])
        assert r.status == 200, r
        r = c.exchange("GET", "http://%s/secret" % auth, [("Host", auth)])
    assert r.status == 403, "pooled upstream connection bypassed the dst rule: %r" % r
    assert [q.target for q in origin.requests] == ["/public"], [q.target for q in origin.requests]


def test_pooled_request_logs_deciding_rule(proxy_factory, origin, fake_dns, tmp_path):
    """A second request reusing a pooled upstream connection is still allowed
    by (and logged with) the dst rule, not by nothing ("-")."""
    p = proxy_factory(acl_ini({"lo": {"dst": "127.0.0.0/8", "action": "allow"}}, default="deny",
                              extra=named(fake_dns, tmp_path, ["pool.test"])))
    auth = "pool.test:%d" % origin.port
    with Client(p.port) as c:
        for path in ("/one", "/two"):
            r = c.exchange("GET", "http://%s%s" % (auth, path), [("Host", auth)])
            assert r.status == 200, r
    assert len(origin.conns) == 1  # the second request did reuse the pooled connection
    assert log_rule(p, "/one") == "lo"
    assert log_rule(p, "/two") == "lo"


# ---------------------------------------------------------------------------
# order, default


def test_first_match_wins(proxy_factory, origin, fake_dns, tmp_path):
    dns = named(fake_dns, tmp_path, ["x.test", "y.test"])
    rules = {"allowx": {"domains": "x.test", "action": "allow"},
             "denyall": {"action": "deny"}}
    p = proxy_factory(acl_ini(rules, extra=dns))
    assert get(p, "http://x.test:%d/1" % origin.port).status == 200
    assert log_rule(p, "/1") == "allowx"
    assert_denied_by(get(p, "http://y.test:%d/2" % origin.port), "denyall")
    # the same rules, listed the other way round
    p2 = proxy_factory(acl_ini({"denyall": rules["denyall"], "allowx": rules["allowx"]}, extra=dns))
    assert_denied_by(get(p2, "http://x.test:%d/3" % origin.port), "denyall")
    assert [q.target for q in origin.requests] == ["/1"]


def test_rules_and_matchers_in_one_rule(proxy_factory, origin, fake_dns, tmp_path):
    """Every matcher of a rule must match (AND)."""
    p = proxy_factory(acl_ini({"both": {"domains": "a.test", "methods": "POST", "action": "deny"}},
                              extra=named(fake_dns, tmp_path, ["a.test", "b.test"])))
    assert_denied_by(get(p, "http://a.test:%d/x" % origin.port, method="POST", body=b"1"), "both")
    assert get(p, "http://a.test:%d/y" % origin.port).status == 200
    assert get(p, "http://b.test:%d/z" % origin.port, method="POST", body=b"1").status == 200


def test_default_deny(proxy_factory, origin):
    p = proxy_factory(acl_ini({"none": {"domains": "nothing.test", "action": "allow"}}, default="deny"))
    r = get(p, origin.url("/dd"))
    assert r.status == 403, r
    assert "error=http_request_denied" in proxy_status(r)
    assert log_rule(p, "/dd") == "default"
    assert no_connection(origin)
    c, r = connect(p, origin.authority)
    c.close()
    assert r.status == 403, r
    assert no_connection(origin)


# ---------------------------------------------------------------------------
# private destinations


PRIVATE_SPELLINGS = ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "2130706433",
                     "0177.0.0.1", "127.1", "0x7f.0.0.1", "0.0.0.0", "priv.test"]


@pytest.mark.parametrize("host", PRIVATE_SPELLINGS)
def test_private_destination_denied_by_default(proxy_factory, origin, fake_dns, tmp_path, host):
    p = proxy_factory(acl_ini({}, private=None, extra=named(fake_dns, tmp_path, ["priv.test"])))
    r = get(p, "http://%s:%d/priv" % (host, origin.port))
    assert_private_denied(r)
    assert log_rule(p, "/priv") == "private_destinations"
    c, r = connect(p, "%s:%d" % (host, origin.port))
    c.close()
    assert_private_denied(r)
    assert log_rule(p, host, "CONNECT") == "private_destinations"
    assert no_connection(origin), "origin saw a connection for %s" % host


def test_private_destination_ipv6_loopback(proxy_factory):
    try:
        from helpers import Origin
        o6 = Origin(family=socket.AF_INET6, host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        p = proxy_factory(acl_ini({}, private=None))
        assert_private_denied(get(p, "http://[::1]:%d/v6" % o6.port))
        c, r = connect(p, "[::1]:%d" % o6.port)
        c.close()
        assert_private_denied(r)
        assert no_connection(o6)
    finally:
        o6.stop()


def test_explicit_allow_does_not_open_private(proxy_factory, origin, fake_dns, tmp_path):
    p = proxy_factory(acl_ini({"everything": {"src": "127.0.0.0/8", "action": "allow"},
                               "lo": {"dst": "127.0.0.0/8", "action": "allow"}},
                              private="deny", extra=named(fake_dns, tmp_path, ["priv.test"])))
    assert_private_denied(get(p, origin.url("/lit")))
    assert_private_denied(get(p, "http://priv.test:%d/name" % origin.port))
    assert log_rule(p, "/name") == "private_destinations"
    assert no_connection(origin)
    # and private_destinations = allow opens it
    p2 = proxy_factory(acl_ini({}, private="allow"))
    assert get(p2, origin.url("/open")).status == 200


# ---------------------------------------------------------------------------
# hopcache -t


def run_t(proxy_factory, ini):
    p = proxy_factory(ini, start=False)
    p.write_ini()
    proc = subprocess.run([BINARY, "-t", "-c", p.ini], capture_output=True, timeout=10,
                          stdin=subprocess.DEVNULL)
    return proc.returncode, (proc.stdout + proc.stderr).decode("utf-8", "replace"), p.ini


@pytest.mark.parametrize("case", ["listed_without_section", "section_not_listed", "unknown_key",
                                  "bad_action", "missing_action", "bad_value"])
def test_config_check_errors(proxy_factory, case):
    if case == "listed_without_section":
        ini = {"acl": {"rules": "ghost"}}
        want = ["[acl]", "rules", "ghost"]
    elif case == "section_not_listed":
        ini = acl_ini({"a": {"action": "deny"}})
        ini["rule.orphan"] = {"action": "deny"}
        want = ["[rule.orphan]", "not listed"]
    elif case == "unknown_key":
        ini = acl_ini({"a": {"domain": "x.test", "action": "deny"}})
        want = ["[rule.a]", "domain:", "did you mean", "domains"]
    elif case == "bad_action":
        ini = acl_ini({"a": {"action": "block"}})
        want = ["[rule.a]", "action", "block"]
    elif case == "missing_action":
        ini = acl_ini({"a": {"domains": "x.test"}})
        want = ["[rule.a]", "action"]
    else:
        ini = acl_ini({"a": {"ports": "80-70000", "action": "deny"}})
        want = ["[rule.a]", "ports"]
    rc, out, path = run_t(proxy_factory, ini)
    assert rc == 1, (rc, out)
    assert path in out, "the problem lines name the file as given: %s" % out
    for w in want:
        assert w in out, (w, out)


def test_config_check_ok(proxy_factory, tmp_path):
    lst = tmp_path / "l.txt"
    lst.write_text("a.test\n")
    rc, out, _ = run_t(proxy_factory, acl_ini(
        {"a": {"src": "10.0.0.0/8, 2001:db8::/32", "methods": "GET, CONNECT",
               "domains": "example.com, .example.org", "domain_file": str(lst),
               "dst": "192.0.2.0/24", "ports": "80, 443, 8000-8100", "url_regex": "^http://",
               "time": "Mon-Fri 08:00-18:00", "action": "allow"}}, default="deny", private="deny"))
    assert rc == 0, out


def test_sighup_rereads_domain_file(proxy_factory, origin, fake_dns, tmp_path):
    """A changed domain list takes effect on SIGHUP; a broken INI on SIGHUP
    keeps the policy in force."""
    lst = tmp_path / "blocked.txt"
    lst.write_text("bad.test\n")
    p = proxy_factory(acl_ini({"blocklist": {"domain_file": str(lst), "action": "deny"}},
                              extra=named(fake_dns, tmp_path, ["bad.test", "later.test"])),
                      workers=2)
    assert get(p, "http://later.test:%d/1" % origin.port).status == 200
    lst.write_text("bad.test\nlater.test\n")
    os.kill(p.proc.pid, 1)  # SIGHUP to the master
    deadline = time.time() + 5
    while time.time() < deadline and "reload: generation 2 started" not in p.error_log_text():
        time.sleep(0.05)
    assert "reload: generation 2 started" in p.error_log_text(), p.error_log_text()
    # connections the old generation accepted before it stopped accepting
    # are its own: wait until it is gone
    assert wait_for(lambda: "generation 1 finished" in p.error_log_text(), timeout=10)
    for _ in range(4):  # both workers
        assert_denied_by(get(p, "http://later.test:%d/2" % origin.port), "blocklist")
    # a list that no longer loads: the previous policy stays
    lst.write_text("bad.test\n\xe9t\xe9.test\n")
    os.kill(p.proc.pid, 1)
    deadline = time.time() + 5
    while time.time() < deadline and "reload refused" not in p.error_log_text():
        time.sleep(0.05)
    assert "reload refused" in p.error_log_text()
    assert "blocked.txt" in p.error_log_text(), "the refusal names the broken file"
    assert "generation 2 keeps running" in p.error_log_text()
    assert_denied_by(get(p, "http://later.test:%d/3" % origin.port), "blocklist")


@pytest.mark.parametrize("name", ["private_destinations", "default"])
def test_phase_two_refusal_by_a_rule_named_like_a_reason(proxy_factory, origin, fake_dns, tmp_path, name):
    """A [rule.NAME] whose dst matches refuses in phase two: the 403 names
    the rule (http_request_denied, "denied by rule NAME"), whatever NAME is;
    it is neither the private-destination check nor [acl] default (the
    decision is told by acl.c's reason, not by the rule's name)."""
    fake_dns.records["loop.test"] = {"A": ["127.0.0.1"]}
    p = proxy_factory(ini_extra={
        "acl": {"rules": name, "private_destinations": "allow", "default": "allow"},
        "rule." + name: {"dst": "127.0.0.0/8", "action": "deny"},
        "upstream": {"resolv_conf": fake_dns.resolv_conf(str(tmp_path / "resolv.conf"))}})
    r = fetch(p.port, "http://loop.test:%d/x" % origin.port)
    assert r.status == 403, r
    ps = r.joined("proxy-status")
    assert "error=http_request_denied" in ps and 'details="denied by rule %s"' % name in ps, ps
    e = p.wait_access(lambda e: e.get("status") == "403")
    assert e and e["outcome"] == "http_request_denied" and e["rule"] == name, e
    assert not origin.conns
