"""Proxy authentication ([auth] scheme = basic): 407 challenges for plain
requests and CONNECT, every Apache htpasswd hash format, Proxy-Authorization
consumed (never forwarded, never logged), malformed credentials, the access
log USER column, the per-client failure limiter (429), SIGHUP reloads of the
htpasswd file, and `-t` config errors.

The htpasswd/groups fixtures under fixtures/auth/ were made by gen.sh with
the real `htpasswd` and `openssl passwd`; the tests never call htpasswd."""

import base64
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import BINARY
from helpers import Client, Reader, client_tls_context, read_response, wait_for

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "auth")
HTPASSWD = os.path.join(FIXTURES, "htpasswd")
HTPASSWD_ZED = os.path.join(FIXTURES, "htpasswd.zed")
HTPASSWD_BAD = os.path.join(FIXTURES, "htpasswd.bad")
GROUPS = os.path.join(FIXTURES, "groups")

# user -> (password, how its hash was made); must match fixtures/auth/gen.sh
USERS = {
    "alice": ("Wonderland-7f3q", "htpasswd -B (bcrypt $2y$)"),
    "bob": ("B0b:has:colons-9k", "htpasswd -5 (sha512-crypt $6$), password with colons"),
    "carol": ("Carol-sha256-x4v", "htpasswd -2 (sha256-crypt $5$)"),
    "dave": ("Dave-apr1-m2p", "htpasswd -m (apr1 MD5)"),
    "erin": ("Erin-sha1-q8z", "htpasswd -s ({SHA})"),
    "frank": ("Frank-ossl6-w3j", "openssl passwd -6 (sha512-crypt)"),
    "gina": ("Gina-osslapr1-r7t", "openssl passwd -apr1"),
    "uli": ("Pässwörd-ü-5n", "htpasswd -B, UTF-8 password"),
    "empty": ("", "htpasswd -B -C 4, empty password"),
}
ZED = ("zed", "Zed-added-later-6y")  # only in htpasswd.zed

CHALLENGE = 'Basic realm="hopcache", charset="UTF-8"'


def creds(user, password, scheme="Basic"):
    """A Proxy-Authorization value: scheme + base64(UTF-8 user:password)."""
    token = base64.b64encode(("%s:%s" % (user, password)).encode("utf-8")).decode("ascii")
    return "%s %s" % (scheme, token)


def alice(scheme="Basic"):
    return creds("alice", USERS["alice"][0], scheme)


def auth_proxy(proxy_factory, htpasswd=HTPASSWD, workers=1, log_level=None, **auth):
    sec = {"scheme": "basic", "htpasswd": htpasswd}
    sec.update({k: str(v) for k, v in auth.items()})
    extra = {"auth": sec}
    if log_level:
        extra["log"] = {"level": log_level}
    return proxy_factory(extra, workers)


def get(proxy, origin, path="/", auth=None, headers=(), client=None):
    """GET origin.url(path) through the proxy (new connection unless client);
    auth is the Proxy-Authorization value or None."""
    hdrs = [("Host", origin.authority)] + list(headers)
    if auth is not None:
        hdrs.append(("Proxy-Authorization", auth))
    if client is not None:
        return client.exchange("GET", origin.url(path), hdrs)
    with proxy.client() as c:
        return c.exchange("GET", origin.url(path), hdrs)


def client_from(port, source_ip, timeout=5.0):
    """A Client whose connection comes from source_ip (any 127/8 address is local)."""
    c = Client.__new__(Client)
    c.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source_ip, 0))
    c.reader = Reader(c.sock, timeout)
    c.timeout = timeout
    return c


def connect(proxy, authority, auth=None, client=None):
    """Send CONNECT (on client or a new connection); return (client, response)."""
    c = client or Client(proxy.port)
    head = "CONNECT %s HTTP/1.1\r\nHost: %s\r\n" % (authority, authority)
    if auth is not None:
        head += "Proxy-Authorization: %s\r\n" % auth
    c.send(head.encode("latin-1") + b"\r\n")
    return c, c.read_response("CONNECT")


def assert_challenge(r, realm="hopcache"):
    assert r.status == 407, r
    assert r.reason == "Proxy Authentication Required", r.reason
    pa = r.get_all("Proxy-Authenticate")
    assert pa == ['Basic realm="%s", charset="UTF-8"' % realm], \
        "want exactly one Proxy-Authenticate: Basic realm=\"%s\", charset=\"UTF-8\"; got %r" % (realm, pa)
    assert (r.get("Content-Type") or "").startswith("text/html"), r.headers
    assert 0 < len(r.body) < 4096, "407 should carry a short HTML body: %r" % r.body[:200]


def assert_origin_untouched(origin, what="the request"):
    time.sleep(0.15)
    assert len(origin.conns) == 0 and not origin.requests, \
        "%s must not reach the origin; it got %r" % (what, origin.requests)


def assert_no_proxy_authorization(req, value):
    assert not req.has("Proxy-Authorization"), \
        "Proxy-Authorization was forwarded to the origin: %r" % req.raw_head
    assert b"proxy-authorization" not in req.raw_head.lower(), req.raw_head
    token = value.split(" ", 1)[1].encode()
    assert token not in req.raw_head and token not in req.body_raw, "the credentials reached the origin"


# -- challenge, success, hash formats ------------------------------------------------------

def test_scheme_none_is_default(proxy, origin):
    r = get(proxy, origin, "/open")
    assert r.status == 200, "without an [auth] section nobody is challenged: %r" % r
    assert not r.has("Proxy-Authenticate")


def test_missing_credentials_407(proxy_factory, origin):
    p = auth_proxy(proxy_factory)
    r = get(p, origin, "/secret")
    assert_challenge(r)
    assert_origin_untouched(origin, "an unauthenticated request")


def test_custom_realm(proxy_factory, origin):
    p = auth_proxy(proxy_factory, realm="Example Corp egress")
    r = get(p, origin, "/x")
    assert_challenge(r, realm="Example Corp egress")


def test_credentials_consumed_not_forwarded(proxy_factory, origin):
    p = auth_proxy(proxy_factory)
    r = get(p, origin, "/in?x=1", auth=alice(), headers=[("X-Keep", "1")])
    assert r.status == 200, r
    assert r.body == b"hello from origin: GET /in?x=1"
    assert not r.has("Proxy-Authenticate")
    req = origin.requests[0]
    assert req.get("X-Keep") == "1"
    assert_no_proxy_authorization(req, alice())


@pytest.mark.parametrize("user", sorted(USERS))
def test_every_htpasswd_hash_format(proxy_factory, origin, user):
    password, how = USERS[user]
    p = auth_proxy(proxy_factory)
    r = get(p, origin, "/fmt", auth=creds(user, password))
    assert r.status == 200, "user %s, hash made by %s: right password refused: %r" % (user, how, r)
    assert_no_proxy_authorization(origin.requests[0], creds(user, password))
    r = get(p, origin, "/fmt", auth=creds(user, password + "x"))
    assert r.status == 407, "user %s, hash made by %s: wrong password accepted: %r" % (user, how, r)


@pytest.mark.parametrize("user,password", [
    ("alice", "wonderland-7f3q"),          # wrong case
    ("alice", "Wonderland-7f3"),           # prefix
    ("alice", USERS["bob"][0]),            # another user's password
    ("Alice", USERS["alice"][0]),          # user names are case-sensitive
    ("mallory", "anything"),               # unknown user
    ("bob", "B0b"),                        # password cut at its first ':'
], ids=["case", "prefix", "other-users-password", "user-case", "unknown-user", "cut-at-colon"])
def test_wrong_credentials_407(proxy_factory, origin, user, password):
    p = auth_proxy(proxy_factory)
    r = get(p, origin, "/w", auth=creds(user, password))
    assert_challenge(r)
    assert_origin_untouched(origin, "a request with wrong credentials")


@pytest.mark.parametrize("value", [
    "Bearer abcdef0123456789",
    'Digest username="alice", realm="hopcache", nonce="x", uri="/", response="0"',
    "Negotiate YIIBhwYGKwYBBQUCoIIBez",
    creds("alice", USERS["alice"][0], scheme="Basix"),
], ids=["bearer", "digest", "negotiate", "basix"])
def test_non_basic_scheme_407(proxy_factory, origin, value):
    p = auth_proxy(proxy_factory)
    r = get(p, origin, "/s", auth=value)
    assert_challenge(r)
    assert_origin_untouched(origin)


@pytest.mark.parametrize("scheme", ["basic", "BASIC", "bAsIc"])
def test_scheme_name_case_insensitive(proxy_factory, origin, scheme):
    p = auth_proxy(proxy_factory)
    r = get(p, origin, "/case", auth=alice(scheme))
    assert r.status == 200, "RFC 9110 §11.1: auth scheme names are case-insensitive (%r): %r" % (scheme, r)
    assert_no_proxy_authorization(origin.requests[0], alice(scheme))


@pytest.mark.parametrize("value", [
    "Basic !!!not*base64!!!",
    "Basic YWxpY2U6V29uZGVybGFuZC03ZjNx=====",         # padding garbage
    "Basic " + base64.b64encode(b"alice-without-colon").decode(),
    "Basic " + base64.b64encode(b"alice:" + b"x" * 5000).decode(),  # > 4 KiB
], ids=["bad-alphabet", "bad-padding", "no-colon", "oversized"])
def test_malformed_credentials_400(proxy_factory, origin, value):
    p = auth_proxy(proxy_factory)
    r = get(p, origin, "/m", auth=value)
    assert r.status == 400, "malformed Basic credentials should get 400: %r" % r
    # the one error type, in the response and in the log alike
    assert r.get("Proxy-Status").endswith("error=http_request_error; details=\"%s\"" % (
        "Proxy-Authorization: user name longer than 255 or password longer than 1024 bytes"
        if len(value) > 4000 else "malformed Proxy-Authorization")), r.get("Proxy-Status")
    e = p.wait_access(lambda e: e.get("target") == origin.url("/m"))
    assert e and e["status"] == "400" and e["outcome"] == "http_request_error", e
    assert_origin_untouched(origin, "a request with malformed credentials")
    assert get(p, origin, "/after", auth=alice()).status == 200, "the proxy must keep serving"


# -- connection handling ---------------------------------------------------------------------

def test_407_keeps_connection_for_retry(proxy_factory, origin):
    p = auth_proxy(proxy_factory)
    with p.client() as c:
        r = get(p, origin, "/retry", client=c)
        assert_challenge(r)
        assert "close" not in r.tokens("Connection"), "407 to a body-less HTTP/1.1 request should keep the " \
            "connection so the client can retry with credentials: %r" % r.headers
        r2 = get(p, origin, "/retry", auth=alice(), client=c)
        assert r2.status == 200, "retry on the same connection after 407: %r" % r2
    assert len(origin.requests) == 1 and origin.requests[0].target == "/retry"


def test_407_with_body_never_smuggles(proxy_factory, origin):
    """A 407'd POST's body must be drained or the connection closed: its bytes
    must never be parsed as a next request (here one with valid credentials)."""
    p = auth_proxy(proxy_factory)
    inner = ("GET %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: %s\r\n\r\n"
             % (origin.url("/smuggled"), origin.authority, alice())).encode()
    with p.client() as c:
        c.request("POST", origin.url("/post"), [("Host", origin.authority),
                                                ("Content-Length", str(len(inner)))], inner)
        r = c.read_response()
        assert_challenge(r)
        # the body is not read (conn.c auth_refuse: the connection stays
        # open for a retry only when the request had no body): close
        assert "close" in r.tokens("Connection"), r.headers
        closed, extra = c.wait_closed(timeout=3)
        assert closed, "the connection stayed open with the 407'd body unread"
        assert not extra, "bytes after the 407 (the body was parsed as a request?): %r" % extra[:300]
    time.sleep(0.1)
    assert not origin.requests, "the origin got requests it must not: %r" % origin.requests


# -- logs ----------------------------------------------------------------------------------------

def test_access_log_user_column(proxy_factory, origin):
    p = auth_proxy(proxy_factory)
    assert get(p, origin, "/anon").status == 407
    assert get(p, origin, "/alice", auth=alice()).status == 200
    assert get(p, origin, "/bad", auth=creds("alice", "nope")).status == 407
    e = p.wait_access(lambda e: e.get("target") == origin.url("/alice"))
    assert e, "no access line for the authenticated request: %r" % p.read_access_log()
    assert e["user"] == "alice", "USER column should be the authenticated user: %r" % e["_line"]
    for path in ("/anon", "/bad"):
        e = p.wait_access(lambda e: e.get("target") == origin.url(path))
        assert e, "no access line for %s: %r" % (path, p.read_access_log())
        assert e["status"] == "407", e["_line"]
        assert e["user"] == "-", "USER must be '-' when authentication failed: %r" % e["_line"]


def test_password_never_logged(proxy_factory, origin, tls_origin):
    p = auth_proxy(proxy_factory, log_level="debug")
    wrong = "Wr0ng-Guess-Zq9"
    values = [alice(), creds("alice", wrong), creds("bob", USERS["bob"][0]), alice("basic")]
    for v in values:
        get(p, origin, "/log", auth=v)
    c, r = connect(p, tls_origin.authority, auth=alice())
    c.close()
    assert r.status == 200, r
    time.sleep(0.3)
    with open(p.access_log, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    text += p.logs_text()
    for secret in (USERS["alice"][0], wrong, USERS["bob"][0]):
        assert secret not in text, "a password appears in the logs: %r" % secret
    for v in values:
        token = v.split(" ", 1)[1]
        assert token not in text, "the base64 credentials appear in the logs: %r" % token


# -- CONNECT --------------------------------------------------------------------------------------

def test_connect_without_credentials_407_no_tunnel(proxy_factory, tls_origin):
    p = auth_proxy(proxy_factory)
    c, r = connect(p, tls_origin.authority)
    c.close()
    assert_challenge(r)
    c, r = connect(p, tls_origin.authority, auth=creds("alice", "wrong"))
    c.close()
    assert_challenge(r)
    time.sleep(0.2)
    assert len(tls_origin.conns) == 0, "the proxy opened a tunnel before authenticating"


def test_connect_retry_with_credentials_same_connection(proxy_factory, tls_origin, tls_cert):
    p = auth_proxy(proxy_factory)
    c, r = connect(p, tls_origin.authority)
    with c:
        assert_challenge(r)
        assert "close" not in r.tokens("Connection"), r.headers
        c, r = connect(p, tls_origin.authority, auth=alice(), client=c)
        assert r.status == 200, "CONNECT retried with credentials on the same connection: %r" % r
        assert not c.reader.buf
        s = client_tls_context(tls_cert[0]).wrap_socket(c.sock, server_hostname="localhost")
        s.sendall(b"GET /tunnelled HTTP/1.1\r\nHost: localhost\r\n\r\n")
        resp = read_response(Reader(s))
        assert resp.status == 200 and resp.body == b"hello from origin: GET /tunnelled"
        s.close()
    e = p.wait_access(lambda e: e.get("method") == "CONNECT" and e.get("status") == "200")
    assert e, p.read_access_log()
    assert e["user"] == "alice", e["_line"]


def test_curl_https_with_proxy_user(proxy_factory, tls_origin, curl):
    p = auth_proxy(proxy_factory)
    r = curl(p.port, "https://127.0.0.1:%d/curl-tls" % tls_origin.port, "-k",
             "--proxy-user", "bob:" + USERS["bob"][0])
    assert r.rc == 0, r
    assert r.status == 200 and r.body == b"hello from origin: GET /curl-tls", r


def test_curl_without_proxy_user_gets_407(proxy_factory, tls_origin, curl):
    p = auth_proxy(proxy_factory)
    r = curl(p.port, "https://127.0.0.1:%d/nope" % tls_origin.port, "-k")
    assert r.rc != 0, r
    assert [b.split("\r\n")[0] for b in r.blocks] == ["HTTP/1.1 407 Proxy Authentication Required"], r
    r = curl(p.port, "https://127.0.0.1:%d/nope" % tls_origin.port, "-k", "--proxy-user", "bob:wrong")
    assert r.rc != 0, r
    assert [b.split("\r\n")[0] for b in r.blocks] == ["HTTP/1.1 407 Proxy Authentication Required"], r
    time.sleep(0.2)
    assert len(tls_origin.conns) == 0, "no tunnel may be opened without valid credentials"


def test_curl_plain_http_and_tunnel_with_proxy_user(proxy_factory, origin, curl):
    p = auth_proxy(proxy_factory)
    r = curl(p.port, origin.url("/plain"), "--proxy-user", "alice:" + USERS["alice"][0])
    assert r.rc == 0 and r.status == 200, r
    r = curl(p.port, origin.url("/tunnel"), "-p", "--proxy-user", "alice:" + USERS["alice"][0])
    assert r.rc == 0 and r.status == 200, r
    assert [q.target for q in origin.requests] == ["/plain", "/tunnel"]
    for q in origin.requests:
        assert_no_proxy_authorization(q, alice())
    r = curl(p.port, origin.url("/denied"), "--proxy-user", "alice:wrong")
    assert r.status == 407, r
    assert r.get_all("Proxy-Authenticate") == [CHALLENGE], r


# -- failure limiter -----------------------------------------------------------------------------

def test_failures_lead_to_429_until_window_passes(proxy_factory, origin):
    """hopcache.ini(5) [auth] max_failures: attempts after max_failures failed
    ones within failure_window get 429 with Retry-After (RFC 6585 §4) until
    the window has passed. The window (3 s, counted in whole seconds from
    the first failure) leaves over 1.9 s for the five requests below, so
    whether it has passed never depends on timing."""
    p = auth_proxy(proxy_factory, max_failures=3, failure_window=3)
    for i in range(3):
        r = get(p, origin, "/guess", auth=creds("alice", "guess%d" % i))
        assert r.status == 407, "failure %d of max_failures=3: %r" % (i + 1, r)
    r = get(p, origin, "/guess", auth=creds("alice", "guess3"))  # 4th: more than max_failures
    assert r.status == 429, "the attempt after max_failures=3 failures is refused unchecked: %r" % r
    assert not r.has("Proxy-Authenticate"), r.headers
    r = get(p, origin, "/right", auth=alice())
    assert r.status == 429, "more than max_failures failures within the window: even the right " \
        "password gets 429: %r" % r
    assert r.reason == "Too Many Requests", r.reason
    ra = r.get("Retry-After") or ""
    assert ra.isdigit() and 1 <= int(ra) <= 3, "429 needs Retry-After in seconds within the window: %r" % ra
    assert not [q for q in origin.requests if q.target == "/right"]
    time.sleep(int(ra) + 1.2)
    r = get(p, origin, "/right", auth=alice())
    assert r.status == 200, "after Retry-After (%ss) the right password should work again: %r" % (ra, r)


def test_failure_limit_is_per_client_address(proxy_factory, origin):
    p = auth_proxy(proxy_factory, max_failures=2, failure_window=30)
    for i in range(4):
        with client_from(p.port, "127.0.0.2") as c:
            get(p, origin, "/guess", auth=creds("alice", "g%d" % i), client=c)
    with client_from(p.port, "127.0.0.2") as c:
        r = get(p, origin, "/blocked", auth=alice(), client=c)
    assert r.status == 429, "127.0.0.2 failed 4 times (max_failures=2): %r" % r
    with client_from(p.port, "127.0.0.3") as c:
        r = get(p, origin, "/other", auth=alice(), client=c)
    assert r.status == 200, "another client address must not be blocked: %r" % r


def test_missing_credentials_are_not_failures(proxy_factory, origin):
    """A challenge for a request without Proxy-Authorization (every client's
    first request) is not a failed password attempt."""
    p = auth_proxy(proxy_factory, max_failures=2, failure_window=30)
    for _ in range(5):
        assert get(p, origin, "/first").status == 407
    r = get(p, origin, "/then", auth=alice())
    assert r.status == 200, "5 requests without credentials locked the client out: %r" % r


# -- SIGHUP reloads --------------------------------------------------------------------------------

def _reloaded(p, origin, auth, want, tries=6, timeout=5.0):
    """Poll until `tries` consecutive new connections (any worker) get `want`."""
    def ok():
        return all(get(p, origin, "/reload", auth=auth).status == want for _ in range(tries))
    return wait_for(ok, timeout=timeout, interval=0.2)


def _start_for_sighup(proxy_factory, path, **auth):
    """Two workers, debug log; returns once both have logged "worker ready".
    (SIGHUP goes to the master, which starts a new generation of workers
    that read the files again.)"""
    p = auth_proxy(proxy_factory, htpasswd=path, workers=2, log_level="debug", **auth)
    p.wait_workers(2)
    if not wait_for(lambda: p.logs_text().count("worker ready") >= 2, timeout=3):
        time.sleep(0.5)
    return p


def test_sighup_adds_user(proxy_factory, origin, tmp_path):
    path = str(tmp_path / "htpasswd")
    shutil.copy(HTPASSWD, path)
    p = _start_for_sighup(proxy_factory, path)
    zed = creds(*ZED)
    assert get(p, origin, "/z", auth=zed).status == 407
    with open(path, "a") as f, open(HTPASSWD_ZED) as z:
        f.write(z.read())
    p.signal(signal.SIGHUP)
    time.sleep(1.0)
    assert _reloaded(p, origin, zed, 200), "after SIGHUP the added user should work in every worker"
    assert get(p, origin, "/a", auth=alice()).status == 200
    assert p.running()


def test_sighup_removes_user_and_forgets_cached_credentials(proxy_factory, origin, tmp_path):
    path = str(tmp_path / "htpasswd")
    shutil.copy(HTPASSWD, path)
    p = _start_for_sighup(proxy_factory, path, credential_ttl=300)
    for _ in range(6):  # verified (and cached) in both workers
        assert get(p, origin, "/a", auth=alice()).status == 200
    with open(HTPASSWD) as f:
        lines = [l for l in f if not l.startswith("alice:")]
    with open(path + ".new", "w") as f:
        f.writelines(lines)
    os.replace(path + ".new", path)
    p.signal(signal.SIGHUP)
    time.sleep(1.0)
    assert _reloaded(p, origin, alice(), 407), \
        "alice was removed from the file: after SIGHUP her cached credentials must stop working"
    assert get(p, origin, "/b", auth=creds("bob", USERS["bob"][0])).status == 200


def test_sighup_broken_htpasswd_keeps_old(proxy_factory, origin, tmp_path):
    path = str(tmp_path / "htpasswd")
    shutil.copy(HTPASSWD, path)
    p = _start_for_sighup(proxy_factory, path)
    assert get(p, origin, "/a", auth=alice()).status == 200
    with open(HTPASSWD_BAD) as b, open(HTPASSWD_ZED) as z:
        broken = b.read() + z.read()
    with open(path, "w") as f:
        f.write(broken)
    p.signal(signal.SIGHUP)
    time.sleep(1.0)
    why = wait_for(lambda: "unknown password hash format" in p.logs_text(), timeout=3)
    assert why, "the error log should say why the reload failed:\n%s" % p.logs_text()[-2000:]
    line = [l for l in p.logs_text().splitlines() if "unknown password hash format" in l][0]
    assert "%s:3:" % path in line, "the error should name the file and line: %r" % line
    assert p.running()
    for _ in range(6):
        # carol was never verified before: this exercises the old file, not the cache
        r = get(p, origin, "/c", auth=creds("carol", USERS["carol"][0]))
        assert r.status == 200, "a broken htpasswd on SIGHUP must keep the old one: %r" % r
        assert get(p, origin, "/z", auth=creds(*ZED)).status == 407, "a user of the broken file got in"


# -- configuration ------------------------------------------------------------------------------

def run_t(p):
    p.write_ini()
    proc = subprocess.run([BINARY, "-t", "-c", p.ini], capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    return proc.returncode, (proc.stdout + proc.stderr).decode("utf-8", "replace")


def test_config_unknown_hash_format_names_file_and_line(proxy_factory):
    if not os.path.exists(BINARY):
        pytest.skip("hopcache binary not built")
    p = proxy_factory({"auth": {"scheme": "basic", "htpasswd": HTPASSWD_BAD}}, start=False)
    rc, out = run_t(p)
    assert rc == 1, "an htpasswd with an unknown hash format must fail -t: %s" % out
    line = [l for l in out.splitlines() if "[auth] htpasswd:" in l]
    assert line, "want an '[auth] htpasswd:' problem line in:\n%s" % out
    want = '%s:3: user "x": unknown password hash format' % HTPASSWD_BAD
    assert want in line[0], "want %r in %r" % (want, line[0])


@pytest.mark.parametrize("auth,needle", [
    ({"scheme": "basic"}, "[auth] htpasswd"),
    ({"scheme": "basic", "htpasswd": "/nonexistent/htpasswd"}, "/nonexistent/htpasswd"),
    ({"scheme": "digest", "htpasswd": HTPASSWD}, "[auth] scheme"),
    ({"scheme": "basic", "htpasswd": HTPASSWD, "groups": "/nonexistent/groups"}, "/nonexistent/groups"),
    ({"scheme": "basic", "htpasswd": HTPASSWD, "max_failures": "lots"}, "[auth] max_failures"),
], ids=["basic-without-htpasswd", "missing-htpasswd", "unknown-scheme", "missing-groups", "bad-max-failures"])
def test_config_auth_errors(proxy_factory, auth, needle):
    if not os.path.exists(BINARY):
        pytest.skip("hopcache binary not built")
    p = proxy_factory({"auth": auth}, start=False)
    rc, out = run_t(p)
    assert rc == 1, "[auth] %r accepted: %s" % (auth, out)
    assert needle in out, "want %r in:\n%s" % (needle, out)


def test_config_valid_basic_with_groups(proxy_factory, origin):
    if not os.path.exists(BINARY):
        pytest.skip("hopcache binary not built")
    auth = {"scheme": "basic", "realm": "corp", "htpasswd": HTPASSWD, "groups": GROUPS,
            "credential_ttl": "60", "max_failures": "5", "failure_window": "30"}
    p = proxy_factory({"auth": auth}, start=False)
    rc, out = run_t(p)
    assert rc == 0, out
    p.start()
    assert get(p, origin, "/g", auth=creds("carol", USERS["carol"][0])).status == 200
