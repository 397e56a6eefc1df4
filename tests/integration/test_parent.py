"""Parent proxies ([upstream] parent, parent_user, parent_password,
parent_direct): every request goes through the parent, plain http:// in
absolute-form, CONNECT and https:// through a CONNECT to the parent; the
parent's credentials go to the parent only and a client's own
Proxy-Authorization is never forwarded; parent_direct domains go straight.

Two kinds of parent: a scripted fake (an Origin that records exactly what
it received and relays CONNECT tunnels) and a second hopcache instance
(child -> parent -> origin)."""

import base64
import json
import os
import re
import select
import socket
import time

import pytest

from helpers import (Client, echo_handler, fetch, free_port, http_response, Origin, wait_for)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "auth")
HTPASSWD = os.path.join(FIXTURES, "htpasswd")
ALICE = ("alice", "Wonderland-7f3q")  # fixtures/auth/htpasswd (see test_auth.py)


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


CLIENT_CREDS = basic("client-user", "client-secret")


# ---------------------------------------------------------------------------
# a fake parent proxy


def _pump(a, b, first=b"", timeout=10.0):
    """Relay bytes both ways between sockets a and b until both sides closed
    (or timeout); `first` is what was already read from a."""
    if first:
        b.sendall(first)
    open_ = {a: b, b: a}
    deadline = time.monotonic() + timeout
    while open_ and time.monotonic() < deadline:
        r, _, _ = select.select(list(open_), [], [], 0.2)
        for s in r:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            peer = open_[s]
            if not data:
                del open_[s]
                try:
                    peer.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            else:
                try:
                    peer.sendall(data)
                except OSError:
                    open_.pop(s, None)


class FakeParent(Origin):
    """Records requests (self.requests); answers a plain request with
    200 "fake parent: TARGET" and a CONNECT with 200 then a relay to the
    named host:port (or an echo when echo=True)."""

    def __init__(self, echo=False, connect_status=200):
        super().__init__()
        self.echo = echo
        self.connect_status = connect_status
        self.handler = self._handle

    def _handle(self, conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            if req.method == "CONNECT":
                if self.connect_status is None:  # never answer
                    conn.recv_some(timeout=10)
                    return
                if self.connect_status != 200:
                    conn.send(http_response(self.connect_status, [("Connection", "close")], b"no"))
                    return
                if self.echo:
                    conn.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    echo_handler(conn)
                    return
                host, port = req.target.rsplit(":", 1)
                try:
                    up = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
                except OSError:
                    conn.send(http_response(502, [("Connection", "close")], b"fake parent: refused"))
                    return
                conn.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
                leftover = bytes(conn.reader.buf)
                conn.reader.buf.clear()
                conn.sock.settimeout(None)
                try:
                    _pump(conn.sock, up, leftover)
                finally:
                    up.close()
                return
            conn.send(http_response(200, [("Content-Type", "text/plain")],
                                    b"fake parent: " + req.target.encode()))


@pytest.fixture
def fake_parent():
    made = []

    def make(**kw):
        p = FakeParent(**kw)
        made.append(p)
        return p
    yield make
    for p in made:
        p.stop()


def child_of(proxy_factory, parent_port, upstream=None, **sections):
    up = {"parent": "127.0.0.1:%d" % parent_port}
    up.update(upstream or {})
    extra = {"upstream": up}
    extra.update(sections)
    extra.setdefault("proxy", {})
    return proxy_factory(extra)


def get(p, url, headers=(), auth=None):
    host = url.split("/")[2]
    hdrs = [("Host", host)] + list(headers)
    if auth is not None:
        hdrs.append(("Proxy-Authorization", auth))
    with Client(p.port) as c:
        return c.exchange("GET", url, hdrs)


def connect(p, authority, auth=None):
    c = Client(p.port)
    head = "CONNECT %s HTTP/1.1\r\nHost: %s\r\n" % (authority, authority)
    if auth is not None:
        head += "Proxy-Authorization: %s\r\n" % auth
    c.send(head.encode() + b"\r\n")
    return c, c.read_response("CONNECT")


def tunnel_echoes(p, authority, data, auth=None):
    """A CONNECT through p gets 200 and the tunnel carries data both ways
    (the far end echoes)."""
    c, resp = connect(p, authority, auth)
    try:
        assert resp.status == 200, resp
        c.send(data)
        assert c.reader.read_exact(len(data)) == data
    finally:
        c.close()


def admin_text(p, path):
    with Client(p.port) as c:
        r = c.exchange("GET", path, [("Host", "127.0.0.1:%d" % p.port)])
    assert r.status == 200, r
    return r.body.decode()


def assert_no_client_creds(req):
    assert CLIENT_CREDS.split(" ")[1].encode() not in req.raw_head, \
        "the client's Proxy-Authorization was forwarded: %r" % req.raw_head


# ---------------------------------------------------------------------------
# against a fake parent: exactly what the parent receives


def test_plain_request_goes_absolute_form_to_parent(proxy_factory, fake_parent, origin):
    fp = fake_parent()
    child = child_of(proxy_factory, fp.port)
    url = origin.url("/p/a?q=1")
    r = get(child, url, auth=CLIENT_CREDS)
    assert r.status == 200, r
    assert r.body == b"fake parent: " + url.encode(), r
    assert len(fp.requests) == 1, fp.requests
    req = fp.requests[0]
    assert (req.method, req.target) == ("GET", url), "the parent wants absolute-form: %r" % req.start_line
    assert req.get("Host") == origin.authority, req.headers
    assert not req.has("Proxy-Authorization"), \
        "no parent_user: no Proxy-Authorization toward the parent: %r" % req.raw_head
    assert_no_client_creds(req)
    assert req.has("Via"), req.headers
    time.sleep(0.1)
    assert not origin.requests and not origin.conns, "the origin must only be reached via the parent"
    e = child.wait_access(lambda e: e.get("target") == url)
    assert e, child.read_access_log()
    assert e["upstream"] == fp.authority, "UPSTREAM should name the parent: %r" % e["_line"]


def test_parent_credentials_replace_the_clients(proxy_factory, fake_parent, origin):
    fp = fake_parent(echo=True)
    child = child_of(proxy_factory, fp.port, {"parent_user": "up-user", "parent_password": "pa:ss word"})
    want = basic("up-user", "pa:ss word")
    r = get(child, origin.url("/cred"), auth=CLIENT_CREDS)
    assert r.status == 200, r
    req = fp.requests[0]
    assert req.get_all("Proxy-Authorization") == [want], req.raw_head
    assert_no_client_creds(req)
    # a CONNECT carries them too
    tunnel_echoes(child, origin.authority, b"ping", auth=CLIENT_CREDS)
    creq = [q for q in fp.requests if q.method == "CONNECT"]
    assert creq and creq[0].target == origin.authority, fp.requests
    assert creq[0].get_all("Proxy-Authorization") == [want], creq[0].raw_head
    assert_no_client_creds(creq[0])


def test_parent_connection_carries_several_origins(proxy_factory, fake_parent, origin_factory):
    """Requests for two origins on one client connection: each reaches the
    parent in absolute-form with its own Host, and the parent's credentials."""
    fp = fake_parent()
    o1, o2 = origin_factory(), origin_factory()
    child = child_of(proxy_factory, fp.port, {"parent_user": "u", "parent_password": "pw"})
    with Client(child.port) as c:
        for o in (o1, o2, o1):
            r = c.exchange("GET", o.url("/multi"), [("Host", o.authority)])
            assert r.status == 200 and r.body == b"fake parent: " + o.url("/multi").encode(), r
    got = [(q.target, q.get("Host"), q.get_all("Proxy-Authorization")) for q in fp.requests]
    want_auth = [basic("u", "pw")]
    assert got == [(o.url("/multi"), o.authority, want_auth) for o in (o1, o2, o1)], got
    assert not o1.requests and not o2.requests


def test_connect_goes_through_parent(proxy_factory, fake_parent, origin):
    fp = fake_parent()
    origin.handler = echo_handler
    child = child_of(proxy_factory, fp.port)
    c, r = connect(child, origin.authority, auth=CLIENT_CREDS)
    try:
        assert r.status == 200, r
        c.send(b"hello through two hops")
        assert c.reader.read_exact(22) == b"hello through two hops"
    finally:
        c.close()
    creq = [q for q in fp.requests if q.method == "CONNECT"]
    assert len(creq) == 1 and creq[0].target == origin.authority, fp.requests
    assert not creq[0].has("Proxy-Authorization"), creq[0].raw_head
    assert_no_client_creds(creq[0])
    e = child.wait_access(lambda e: e.get("method") == "CONNECT")
    assert e and e["status"] == "200" and e["upstream"] == fp.authority, child.read_access_log()


def test_https_request_tunnels_through_parent(proxy_factory, fake_parent, tls_origin, tls_cert):
    fp = fake_parent()
    child = child_of(proxy_factory, fp.port, {"ca_file": tls_cert[0]})
    url = "https://127.0.0.1:%d/secure?x=1" % tls_origin.port
    r = fetch(child.port, url, [("Proxy-Authorization", CLIENT_CREDS)])
    assert r.status == 200, r
    assert r.body == b"hello from origin: GET /secure?x=1", r
    creq = [q for q in fp.requests if q.method == "CONNECT"]
    assert creq and creq[0].target == "127.0.0.1:%d" % tls_origin.port, \
        "an https:// request goes through a CONNECT to the parent: %r" % fp.requests
    assert not [q for q in fp.requests if q.method != "CONNECT"], \
        "the parent must not see the https request in clear: %r" % fp.requests
    assert tls_origin.requests[0].target == "/secure?x=1", tls_origin.requests
    assert_no_client_creds(tls_origin.requests[0])
    assert not tls_origin.requests[0].has("Proxy-Authorization")


def test_parent_refusing_connect_is_a_clear_error(proxy_factory, fake_parent, origin, tls_cert):
    """Any non-2xx answer to the CONNECT: 502, error=destination_unavailable,
    the parent's status line in details (hopcache.ini(5))."""
    fp = fake_parent(connect_status=403)
    child = child_of(proxy_factory, fp.port, {"ca_file": tls_cert[0]})
    c, r = connect(child, origin.authority)
    c.close()
    assert r.status == 502, r
    ps = r.get("Proxy-Status") or ""
    assert "error=destination_unavailable" in ps and "403" in ps, r.headers
    # the same for an https:// request, which tunnels through the parent
    r = fetch(child.port, "https://127.0.0.1:%d/x" % origin.port)
    assert r.status == 502, r
    ps = r.get("Proxy-Status") or ""
    assert "error=destination_unavailable" in ps and "403" in ps, r.headers


def test_parent_silent_on_connect_times_out(proxy_factory, fake_parent, origin):
    fp = fake_parent(connect_status=None)
    child = child_of(proxy_factory, fp.port, limits={"upstream_timeout": "0.5"})
    t0 = time.monotonic()
    c, r = connect(child, origin.authority)
    c.close()
    assert r.status == 502, r
    assert "destination_unavailable" in (r.get("Proxy-Status") or ""), r.headers
    assert time.monotonic() - t0 < 4, "upstream_timeout bounds the wait for the parent's answer"


def test_policy_applies_before_the_parent(proxy_factory, fake_parent, origin, fake_dns, tmp_path):
    """private_destinations = deny: a loopback destination (literal or a name
    that resolves to it) is refused by the child, never sent to the parent."""
    fake_dns.records["loop.test"] = {"A": ["127.0.0.1"]}
    resolv = fake_dns.resolv_conf(str(tmp_path / "resolv.conf"))
    fp = fake_parent(echo=True)
    child = child_of(proxy_factory, fp.port, {"resolv_conf": resolv},
                     acl={"private_destinations": "deny"})
    for url in (origin.url("/lit"), "http://loop.test:%d/name" % origin.port):
        r = get(child, url)
        assert r.status == 403, (url, r)
    c, r = connect(child, "loop.test:%d" % origin.port)
    c.close()
    assert r.status == 403, r
    time.sleep(0.1)
    assert not fp.requests and not origin.requests, fp.requests


def test_parent_down_is_a_clear_error(proxy_factory, origin):
    child = child_of(proxy_factory, free_port())
    r = get(child, origin.url("/down"))
    assert r.status == 502, r
    ps = r.get("Proxy-Status") or ""
    assert "connection_refused" in ps, r.headers
    time.sleep(0.1)
    assert not origin.requests, "with the parent down nothing goes direct"


# ---------------------------------------------------------------------------
# two hopcache instances: child -> parent -> origin


@pytest.fixture
def chain(proxy_factory):
    """chain(parent_extra={...}, child_upstream={...}, child_extra={...}) ->
    (child, parent): Via names "child" and "parent"."""
    def make(parent_extra=None, child_upstream=None, child_extra=None):
        pe = {k: dict(v) for k, v in (parent_extra or {}).items()}
        pe.setdefault("proxy", {})["via"] = "parent"
        parent = proxy_factory(pe)
        ce = {k: dict(v) for k, v in (child_extra or {}).items()}
        ce.setdefault("proxy", {})["via"] = "child"
        up = ce.setdefault("upstream", {})
        up["parent"] = "127.0.0.1:%d" % parent.port
        up.update(child_upstream or {})
        child = proxy_factory(ce)
        return child, parent
    return make


def test_chain_via_and_logs(chain, origin):
    child, parent = chain()
    url = origin.url("/chain?z=9")
    r = get(child, url)
    assert r.status == 200, r
    assert r.body == b"hello from origin: GET /chain?z=9"
    req = origin.requests[0]
    assert req.target == "/chain?z=9", "the parent sends origin-form to the origin: %r" % req.start_line
    vias = [v.strip() for v in req.joined("Via").split(",")]
    assert vias == ["1.1 child", "1.1 parent"], "the origin should see both Vias in order: %r" % vias
    rvias = [v.strip() for v in r.joined("Via").split(",")]
    assert rvias == ["1.1 parent", "1.1 child"], "the response Via lists the hops back: %r" % rvias
    ce = child.wait_access(lambda e: e.get("target") == url)
    pe = parent.wait_access(lambda e: e.get("target") == url)
    assert ce and pe, (child.read_access_log(), parent.read_access_log())
    assert ce["upstream"] == "127.0.0.1:%d" % parent.port, "child UPSTREAM names the parent: %r" % ce["_line"]
    assert pe["upstream"] == origin.authority, pe["_line"]
    assert ce["status"] == pe["status"] == "200"


def test_chain_json_log_marks_parent(chain, origin):
    child, parent = chain(child_extra={"log": {"access_format": "json"}})
    assert get(child, origin.url("/j")).status == 200
    assert wait_for(lambda: child.read_access_log(), 3)
    o = json.loads(child.read_access_log()[0])
    assert o["parent"] is True and o["upstream"] == "127.0.0.1:%d" % parent.port, o


def test_chain_squid_log_first_up_parent(chain, origin):
    child, parent = chain(child_extra={"log": {"access_format": "squid"}})
    assert get(child, origin.url("/s")).status == 200
    assert wait_for(lambda: child.read_access_log(), 3)
    line = child.read_access_log()[0]
    assert " FIRST_UP_PARENT/127.0.0.1 " in line, line


def test_chain_hop_by_hop_removed_on_each_hop(chain, origin):
    child, parent = chain()
    origin.responder = lambda req: http_response(
        200, [("Connection", "x-bar"), ("X-Bar", "1"), ("X-Kept", "yes")], b"ok")
    r = get(child, origin.url("/hbh"), [("Connection", "x-foo"), ("X-Foo", "1"), ("X-Other", "2")])
    assert r.status == 200, r
    req = origin.requests[0]
    assert not req.has("X-Foo"), "X-Foo was listed in Connection: %r" % req.raw_head
    assert req.get("X-Other") == "2"
    assert "x-foo" not in req.tokens("Connection"), req.headers
    assert not r.has("X-Bar"), "X-Bar was listed in the response's Connection: %r" % r.headers
    assert r.get("X-Kept") == "yes"


def test_chain_parent_auth(chain, origin):
    child, parent = chain(parent_extra={"auth": {"scheme": "basic", "htpasswd": HTPASSWD}},
                          child_upstream={"parent_user": ALICE[0], "parent_password": ALICE[1]})
    r = get(child, origin.url("/auth-ok"), auth=CLIENT_CREDS)
    assert r.status == 200, r
    req = origin.requests[0]
    assert not req.has("Proxy-Authorization"), "the origin never sees proxy credentials: %r" % req.raw_head
    pe = parent.wait_access(lambda e: e.get("target") == origin.url("/auth-ok"))
    assert pe and pe["user"] == ALICE[0], parent.read_access_log()
    # and a tunnel through both
    origin.handler = echo_handler
    tunnel_echoes(child, origin.authority, b"abc")


def test_chain_parent_auth_wrong_password(chain, origin):
    child, parent = chain(parent_extra={"auth": {"scheme": "basic", "htpasswd": HTPASSWD}},
                          child_upstream={"parent_user": ALICE[0], "parent_password": "wrong"})
    # a CONNECT refused by the parent is documented: 502, destination_unavailable
    # and the parent's status line in details
    c, resp = connect(child, origin.authority)
    c.close()
    assert resp.status == 502, resp
    ps = resp.get("Proxy-Status") or ""
    assert "error=destination_unavailable" in ps and "407" in ps, resp.headers
    # a plain request gets the same 502: the parent's 407 challenges
    # [upstream] parent_user, not the client, and Proxy-Authenticate applies
    # to the next outbound client only (RFC 9110 §11.7.1), so relaying the 407
    # would leave the client stuck; a proxy that cannot get a usable answer
    # from the inbound server it forwards to answers 502 (RFC 9110 §15.6.3)
    r = get(child, origin.url("/auth-bad"))
    assert_parent_refused(r)
    time.sleep(0.1)
    assert not origin.requests and not origin.conns


def assert_parent_refused(r):
    """The child's 502 for a parent that answered 407 (conn.c read_response)."""
    assert r.status == 502, r
    ps = r.get("Proxy-Status") or ""
    assert "error=destination_unavailable" in ps, r.headers
    assert re.search(r'details="parent 127\.0\.0\.1:\d+ answered 407 ', ps), r.headers
    assert not r.has("Proxy-Authenticate"), "the parent's challenge is not the client's: %r" % r.headers


def test_chain_without_parent_credentials(chain, origin):
    """The child has no parent_user: the parent challenges; the client's own
    credentials (meant for the child) are never passed on."""
    child, parent = chain(parent_extra={"auth": {"scheme": "basic", "htpasswd": HTPASSWD}})
    url = origin.url("/noauth")
    r = get(child, url, auth=basic(*ALICE))
    assert_parent_refused(r)
    # the parent saw the request without credentials and challenged it
    pe = parent.wait_access(lambda e: e.get("target") == url)
    assert pe and pe["status"] == "407" and pe["user"] == "-", \
        "alice's credentials were meant for the child only: %r" % parent.read_access_log()
    time.sleep(0.1)
    assert not origin.requests


def test_chain_connect_to_tls_origin_with_curl(chain, tls_origin, tls_cert, curl):
    child, parent = chain()
    url = "https://127.0.0.1:%d/curl-tls" % tls_origin.port
    r = curl(child.port, url, "--cacert", tls_cert[0])
    assert r.rc == 0, r
    assert r.status == 200 and r.body == b"hello from origin: GET /curl-tls", r
    auth = "127.0.0.1:%d" % tls_origin.port
    ce = child.wait_access(lambda e: e.get("method") == "CONNECT")
    pe = parent.wait_access(lambda e: e.get("method") == "CONNECT")
    assert ce and pe, (child.read_access_log(), parent.read_access_log())
    assert ce["target"] == pe["target"] == auth
    assert ce["upstream"] == "127.0.0.1:%d" % parent.port, ce["_line"]
    assert pe["upstream"] == auth, pe["_line"]


def test_chain_https_absolute_form(chain, tls_origin, tls_cert):
    child, parent = chain(child_upstream={"ca_file": tls_cert[0]})
    url = "https://127.0.0.1:%d/abs?k=v" % tls_origin.port
    r = fetch(child.port, url)
    assert r.status == 200, r
    assert r.body == b"hello from origin: GET /abs?k=v", r
    vias = [v.strip() for v in tls_origin.requests[0].joined("Via").split(",")]
    assert vias == ["1.1 child"], "the parent only tunnels: the origin sees the child's Via: %r" % vias
    # the child may keep the tunnel pooled (the parent logs a tunnel when it
    # closes): ask the parent's metrics instead
    m = admin_text(parent, "/hopcache/metrics")
    assert re.search(r"(?m)^hopcache_tunnels_total 1$", m), "the parent should have made one tunnel:\n%s" % m
    assert re.search(r'(?m)^hopcache_requests_total\{method="GET"', m) is None, \
        "the parent must not see a plain GET:\n%s" % m
    ce = child.wait_access(lambda e: e.get("target") == url)
    assert ce and ce["status"] == "200" and ce["upstream"] == "127.0.0.1:%d" % parent.port, \
        child.read_access_log()


def test_chain_https_bad_certificate_refused(chain, tls_origin):
    """The child verifies the origin's certificate through the tunnel (no
    ca_file: the system store does not know it)."""
    child, parent = chain()
    r = fetch(child.port, "https://127.0.0.1:%d/bad" % tls_origin.port)
    assert r.status == 502, r
    assert "tls_certificate_error" in (r.get("Proxy-Status") or ""), r.headers
    assert not tls_origin.requests


def test_parent_direct(chain, origin, fake_dns, tmp_path):
    for name in ("a.direct.test", "b.direct.test", "exact.test", "sub.exact.test", "other.test"):
        fake_dns.records[name] = {"A": ["127.0.0.1"]}
    resolv = fake_dns.resolv_conf(str(tmp_path / "resolv.conf"))
    child, parent = chain(parent_extra={"upstream": {"resolv_conf": resolv}},
                          child_upstream={"resolv_conf": resolv, "parent_direct": ".direct.test, exact.test"})
    port = origin.port

    def via_parent(host, path):
        url = "http://%s:%d%s" % (host, port, path)
        r = get(child, url)
        assert r.status == 200, (url, r)
        ce = child.wait_access(lambda e: e.get("target") == url)
        assert ce, child.read_access_log()
        time.sleep(0.1)
        return any(e.get("target") == url for e in parent.access_entries()), ce

    through, ce = via_parent("a.direct.test", "/d1")
    assert not through, "a .direct.test host must bypass the parent: %r" % parent.read_access_log()
    assert ce["upstream"] == "127.0.0.1:%d" % port, ce["_line"]
    through, ce = via_parent("exact.test", "/d2")
    assert not through, "exact.test is listed: %r" % parent.read_access_log()
    through, ce = via_parent("B.Direct.TEST", "/d4")
    assert not through, "case does not matter in parent_direct"
    through, ce = via_parent("other.test", "/p1")
    assert through, "other.test is not listed: it goes through the parent"
    assert ce["upstream"] == "127.0.0.1:%d" % parent.port, ce["_line"]
    through, ce = via_parent("sub.exact.test", "/p2")
    assert through, "exact.test (no leading dot) does not cover sub.exact.test"
    # a pooled connection to the parent is not reused for a direct host
    through, ce = via_parent("a.direct.test", "/d3")
    assert not through, "after requests through the parent, a direct host still goes direct"
    assert ce["upstream"] == "127.0.0.1:%d" % port, ce["_line"]
    # CONNECT to a direct host skips the parent too
    origin.handler = echo_handler
    c, r = connect(child, "a.direct.test:%d" % port)
    try:
        assert r.status == 200, r
        c.send(b"x")
        assert c.reader.read_exact(1) == b"x"
    finally:
        c.close()
    time.sleep(0.2)
    assert not [e for e in parent.access_entries() if e.get("method") == "CONNECT"], parent.read_access_log()
