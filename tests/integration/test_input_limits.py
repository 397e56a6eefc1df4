"""Inputs longer than a buffer are never cut silently: they fit (the buffer is
sized to them) or they are refused with an error that names the limit.

- [upstream] parent_user / parent_password of any length the INI allows
  reach the parent whole (Proxy-Authorization built at config load);
- a host name longer than 253 characters (RFC 1035; one trailing dot not
  counted) is refused with 400 naming the limit, before any DNS query or
  connection; a 253-character name works through every path;
- a chunk-size line (size and extensions) or trailer line longer than 4096
  bytes: 400 naming the limit in a request; 502 naming it in a response
  whose head has not gone out yet, else the client's connection is cut
  (never a complete-looking message);
- other inputs that went through fixed buffers: the policy compares the
  whole method, client credentials and config keys over a limit are refused
  naming it, a long [auth] realm goes out whole."""

import base64
import hashlib
import time

import pytest

from helpers import CLOSE, Client, FakeDNS, echo_handler
from test_parent import HTPASSWD, basic, fake_parent, get, tunnel_echoes  # noqa: F401 (fixture)
from test_process import run_binary


def proxy_status_params(r):
    ps = r.get("Proxy-Status") or ""
    assert ps.startswith("hopcache;"), "Proxy-Status should be 'hopcache; error=...': %r" % r.headers
    out = {}
    for part in ps.split(";")[1:]:
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip().strip('"')
    return out


def assert_error(r, status, error, *words):
    assert r.status == status, "expected %d, got %r" % (status, r)
    p = proxy_status_params(r)
    assert p.get("error") == error, "Proxy-Status error %r, want %r: %r" % (p.get("error"), error, r.headers)
    for w in words:
        assert w in p.get("details", ""), "Proxy-Status details should name %r: %r" % (w, p)
    assert (r.get("Content-Type") or "").startswith("text/html") and r.body, r
    return p


# ---------------------------------------------------------------------------
# 1. parent credentials


# plain "user:password" lengths around the old 400-byte buffer, and the
# longest the INI's 1000-character lines allow
@pytest.mark.parametrize("ulen,plen", [(100, 298), (100, 299), (200, 700), (900, 900)],
                         ids=["plain399", "plain400", "plain901", "plain1801"])
def test_long_parent_credentials_reach_the_parent_whole(proxy_factory, fake_parent, origin, ulen, plen):
    user = ("user-" + "u" * ulen)[:ulen]
    password = ("pass word:" + "p" * plen)[:plen]
    fp = fake_parent(echo=True)
    child = proxy_factory({"upstream": {"parent": "127.0.0.1:%d" % fp.port,
                                        "parent_user": user, "parent_password": password}})
    want = basic(user, password)
    r = get(child, origin.url("/long-cred"))
    assert r.status == 200, r
    req = fp.requests[0]
    got = req.get_all("Proxy-Authorization")
    assert got == [want], "the parent should get the exact credentials (%d bytes of base64), got %r" % (
        len(want) - 6, [len(g) for g in got])
    # a CONNECT through the parent carries them too
    tunnel_echoes(child, origin.authority, b"ping")
    creq = [q for q in fp.requests if q.method == "CONNECT"]
    assert creq and creq[0].get_all("Proxy-Authorization") == [want], creq


def test_long_parent_credentials_accepted_by_a_hopcache_parent(proxy_factory, origin, tmp_path):
    """child -> parent (hopcache with [auth] basic) -> origin: a 200-byte
    user name and a 700-byte password authenticate."""
    user = "u" * 200
    password = "p" * 699 + "!"
    htp = tmp_path / "htpasswd"
    htp.write_text("%s:{SHA}%s\n" % (user, base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()))
    parent = proxy_factory({"proxy": {"via": "parent"}, "auth": {"scheme": "basic", "htpasswd": str(htp)}})
    child = proxy_factory({"proxy": {"via": "child"},
                           "upstream": {"parent": "127.0.0.1:%d" % parent.port,
                                        "parent_user": user, "parent_password": password}})
    r = get(child, origin.url("/chain-long-cred"))
    assert r.status == 200, r
    pe = parent.wait_access(lambda e: e.get("target") == origin.url("/chain-long-cred"))
    assert pe and pe["user"] == user, parent.read_access_log()


def test_config_test_accepts_long_parent_credentials(proxy_factory):
    p = proxy_factory({"upstream": {"parent": "127.0.0.1:3129", "parent_user": "u" * 900,
                                    "parent_password": "p" * 900}}, start=False)
    p.write_ini()
    rc, out = run_binary("-t", "-c", p.ini)
    assert rc == 0, out


# ---------------------------------------------------------------------------
# 2. host names


def long_name(n):
    """A DNS name of n characters: labels of 63 letters, no trailing dot."""
    s = "".join("." if i % 64 == 63 else "abcdefghij"[i % 10] for i in range(n))
    return s[:-1] + "z" if s.endswith(".") else s


@pytest.fixture
def dns_proxy(proxy_factory, tmp_path):
    """(proxy, dns): a proxy resolving through a FakeDNS that maps the given
    names to 127.0.0.1."""
    made = []

    def make(names, ini_extra=None):
        d = FakeDNS({n.rstrip("."): {"A": ["127.0.0.1"]} for n in names})
        made.append(d)
        extra = {k: dict(v) for k, v in (ini_extra or {}).items()}
        extra.setdefault("upstream", {})["resolv_conf"] = d.resolv_conf(str(tmp_path / "resolv.conf"))
        return proxy_factory(extra), d
    yield make
    for d in made:
        d.stop()


@pytest.mark.parametrize("host", [long_name(253), long_name(253) + "."], ids=["253", "253_dot"])
def test_longest_host_name_works(dns_proxy, origin, host):
    origin.handler = None
    p, dns = dns_proxy([host])
    authority = "%s:%d" % (host, origin.port)
    with Client(p.port) as c:
        r = c.exchange("GET", "http://%s/abs" % authority, [("Host", authority)])
    assert r.status == 200, r
    req = origin.requests[-1]
    assert req.target == "/abs" and req.get("Host") == authority, req.raw_head
    assert host.rstrip(".") in [q[0] for q in dns.queries], dns.queries
    # CONNECT to the same name
    origin.handler = echo_handler
    tunnel_echoes(p, authority, b"long name")
    e = p.wait_access(lambda e: e.get("method") == "CONNECT")
    assert e and e["target"] == authority, p.read_access_log()


@pytest.mark.parametrize("n", [254, 255, 256, 300, 1000])
@pytest.mark.parametrize("form", ["absolute", "connect", "https"])
def test_host_name_too_long_is_400(dns_proxy, origin, n, form):
    host = long_name(n)
    p, dns = dns_proxy([host, host[:255], host[:253]])
    authority = "%s:%d" % (host, origin.port)
    with Client(p.port) as c:
        if form == "connect":
            c.request("CONNECT", authority, [("Host", authority)])
            r = c.read_response("CONNECT")
        else:
            scheme = "https" if form == "https" else "http"
            c.request("GET", "%s://%s/x" % (scheme, authority), [("Host", authority)])
            r = c.read_response()
        closed, _ = c.wait_closed(3)
    assert_error(r, 400, "http_request_error", "host", "253")
    assert closed, "the connection should close after the 400"
    time.sleep(0.1)
    assert dns.queries == [], "nothing may be resolved for a refused host: %r" % dns.queries
    assert not origin.conns, "nothing may reach the origin"
    e = p.wait_access(lambda e: e.get("status") == "400")
    assert e, p.read_access_log()


def test_host_name_too_long_through_parent_is_400(proxy_factory, fake_parent, origin):
    """With a parent the name is not resolved here: still refused whole."""
    fp = fake_parent()
    p = proxy_factory({"upstream": {"parent": "127.0.0.1:%d" % fp.port}})
    host = long_name(300)
    for method, target in (("GET", "http://%s/x" % host), ("CONNECT", host + ":443")):
        with Client(p.port) as c:
            c.request(method, target, [("Host", host)])
            r = c.read_response(method)
        assert_error(r, 400, "http_request_error", "253")
    time.sleep(0.1)
    assert fp.requests == [] and not fp.conns, fp.requests


# ---------------------------------------------------------------------------
# 3. chunk-size lines


def chunk_line(total):
    """A chunk-size line of `total` bytes (CRLF not counted): "5;x=aaa...";
    the chunk is "hello"."""
    return b"5;x=" + b"a" * (total - 4)


def post_chunked(origin, body_raw):
    return (b"POST %s HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n" %
            (origin.url("/up").encode(), origin.authority.encode())) + body_raw


def test_request_chunk_line_at_limit_passes(proxy, origin):
    with proxy.client() as c:
        c.send(post_chunked(origin, chunk_line(4096) + b"\r\nhello\r\n0\r\n\r\n"))
        r = c.read_response()
    assert r.status == 200, r
    assert origin.requests[-1].body == b"hello" and origin.requests[-1].complete


@pytest.mark.parametrize("total", [4097, 5000, 70000])
def test_request_chunk_line_too_long_is_400(proxy, origin, total):
    with proxy.client() as c:
        c.send(post_chunked(origin, chunk_line(total) + b"\r\nhello\r\n0\r\n\r\n"))
        r = c.read_response()
        closed, _ = c.wait_closed(3)
    assert_error(r, 400, "http_request_error", "chunk", "4096")
    assert closed
    time.sleep(0.1)
    assert origin.complete_requests() == [], "the origin got a complete request: %r" % origin.requests


def test_request_trailer_line_too_long_is_400(proxy, origin):
    with proxy.client() as c:
        c.send(post_chunked(origin, b"5\r\nhello\r\n0\r\nX-T: " + b"t" * 5000 + b"\r\n\r\n"))
        r = c.read_response()
    assert_error(r, 400, "http_request_error", "trailer", "4096")
    time.sleep(0.1)
    assert origin.complete_requests() == []


def chunked_head():
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"


def test_response_chunk_line_at_limit_passes(proxy, origin):
    origin.responder = lambda req: chunked_head() + chunk_line(4096) + b"\r\nhello\r\n0\r\n\r\n"
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/dl"), [("Host", origin.authority)])
    assert r.status == 200 and r.body == b"hello", r


@pytest.mark.parametrize("total", [4097, 5000, 70000])
def test_response_chunk_line_too_long_is_502(proxy, origin, total):
    """Head and the over-long first size line come together: the head is
    held until the size line is complete (or too long), so the client gets
    a 502, not a 200 cut short."""
    origin.responder = lambda req: [chunked_head() + chunk_line(total) + b"\r\nhello\r\n0\r\n\r\n", CLOSE]
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/dl"), [("Host", origin.authority)])
    assert_error(r, 502, "http_response_transfer_coding", "chunk", "4096")
    e = proxy.wait_access(lambda e: e.get("status") == "502")
    assert e and e["outcome"] == "http_response_transfer_coding", proxy.read_access_log()


def test_response_chunk_line_split_across_packets_is_502(proxy, origin):
    """The size line starts in the head's packet and ends later."""
    origin.responder = lambda req: [chunked_head() + b"5;x=", 0.2, b"a" * 5000 + b"\r\nhello\r\n0\r\n\r\n",
                                    CLOSE]
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/dl"), [("Host", origin.authority)])
    assert_error(r, 502, "http_response_transfer_coding", "4096")


def test_response_head_alone_is_not_held(proxy, origin):
    """A head with no body bytes yet goes to the client at once (streams)."""
    origin.responder = lambda req: [chunked_head(), 1.5, b"5\r\nhello\r\n0\r\n\r\n"]
    with proxy.client() as c:
        c.request("GET", origin.url("/stream"), [("Host", origin.authority)])
        t0 = time.monotonic()
        head = c.reader.read_until(b"\r\n\r\n", timeout=5)
        assert time.monotonic() - t0 < 1.0, "the head was held back"
        assert head.startswith(b"HTTP/1.1 200")


def test_response_later_chunk_line_too_long_cuts_the_connection(proxy, origin):
    """Once the head is out, a bad size line cuts the client's connection: the
    chunked body it got never ends, so it is never taken as complete."""
    origin.responder = lambda req: [chunked_head() + b"5\r\nhello\r\n", 0.3,
                                    chunk_line(5000) + b"\r\nworld\r\n0\r\n\r\n", CLOSE]
    with proxy.client() as c:
        c.request("GET", origin.url("/dl2"), [("Host", origin.authority)])
        closed, data = c.wait_closed(5)
    assert closed
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    assert not data.endswith(b"0\r\n\r\n"), "a cut body must not look complete: %r" % data[-100:]
    assert b"world" not in data
    e = proxy.wait_access(lambda e: e.get("target", "").endswith("/dl2"))
    assert e and e["outcome"] == "http_response_transfer_coding", proxy.read_access_log()


def test_response_trailer_line_too_long_cuts_the_connection(proxy, origin):
    origin.responder = lambda req: [chunked_head() + b"5\r\nhello\r\n", 0.3,
                                    b"0\r\nX-T: " + b"t" * 5000 + b"\r\n\r\n", CLOSE]
    with proxy.client() as c:
        c.request("GET", origin.url("/tr"), [("Host", origin.authority)])
        closed, data = c.wait_closed(5)
    assert closed and data.startswith(b"HTTP/1.1 200"), data[:200]
    assert not data.endswith(b"0\r\n\r\n"), data[-100:]


# ---------------------------------------------------------------------------
# 4. other inputs that went through fixed buffers


M31 = "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDE"  # 31 characters: the old method buffer held 31
M40 = "LONGMETHOD" * 4


@pytest.mark.parametrize("method,denied_by", [(M40, "long"), (M31, "short"), (M31 + "FG", None)],
                         ids=["40_listed", "31_listed", "33_prefix_listed"])
def test_policy_sees_the_whole_method(proxy_factory, origin, method, denied_by):
    """A rule's methods match the request's method whole: not by the first
    31 characters (the access log's copy)."""
    p = proxy_factory({"acl": {"rules": "long, short"},
                       "rule.long": {"methods": M40, "action": "deny"},
                       "rule.short": {"methods": M31, "action": "deny"}})
    with Client(p.port) as c:
        r = c.exchange(method, origin.url("/m"), [("Host", origin.authority)])
    if denied_by is None:
        assert r.status == 200, r
        assert origin.requests[-1].method == method
    else:
        assert_error(r, 403, "http_request_denied", "denied by rule " + denied_by)
        time.sleep(0.1)
        assert not origin.requests


def test_client_credentials_too_long_name_the_limits(proxy_factory, origin):
    p = proxy_factory({"auth": {"scheme": "basic", "htpasswd": HTPASSWD}})
    for user, password in (("u" * 256, "pw"), ("alice", "p" * 1025)):
        with Client(p.port) as c:
            r = c.exchange("GET", origin.url("/a"), [("Host", origin.authority),
                                                     ("Proxy-Authorization", basic(user, password))])
        p_ = assert_error(r, 400, "http_request_error", "255", "1024")
        assert "Proxy-Authorization" in p_["details"], p_
    assert not origin.requests


def test_long_realm_goes_out_whole(proxy_factory, origin):
    realm = "R" * 900
    p = proxy_factory({"auth": {"scheme": "basic", "htpasswd": HTPASSWD, "realm": realm}})
    with Client(p.port) as c:
        r = c.exchange("GET", origin.url("/a"), [("Host", origin.authority)])
    assert r.status == 407, r
    assert r.get_all("Proxy-Authenticate") == ['Basic realm="%s", charset="UTF-8"' % realm], r.headers
    assert (r.get("Content-Type") or "").startswith("text/html"), r.headers


def config_test(proxy_factory, ini_extra):
    p = proxy_factory(ini_extra, start=False)
    p.write_ini()
    rc, out = run_binary("-t", "-c", p.ini)
    return p, rc, out


@pytest.mark.parametrize("section,key,value,words", [
    ("proxy", "listen", long_name(254) + ":3128", ["host name longer than 253 characters"]),
    ("upstream", "parent", long_name(260) + ":3128", ["host name longer than 253 characters"]),
    ("tls", "listen", long_name(254) + ":3443", ["host name longer than 253 characters"]),
    ("proxy", "listen", "127.0.0.1:3128 " + "h" * 400 + ":1", ["longer than 299 characters"]),
    ("proxy", "via", "v" * 65, ["longer than 64 characters"]),
    ("acl", "rules", "r" * 63 + "x", ["rule name of 1 to 63 characters"]),
])
def test_config_test_names_the_limit(proxy_factory, section, key, value, words):
    extra = {section: {key: value}}
    if section == "acl":
        extra["rule." + "r" * 63] = {"action": "deny"}  # the cut name would have matched it
    p, rc, out = config_test(proxy_factory, extra)
    assert rc == 1, "[%s] %s accepted: %s" % (section, key, out)
    line = [l for l in out.splitlines() if l.startswith("%s: [%s] %s: " % (p.ini, section, key))]
    assert line, "want a line naming file, section and key: %s" % out
    for w in words:
        assert w in line[0], "%r should say %r" % (line[0], w)


@pytest.mark.parametrize("section,key,value", [
    ("proxy", "listen", long_name(253) + ":3128"),
    ("proxy", "via", "v" * 64),
])
def test_config_test_accepts_up_to_the_limit(proxy_factory, section, key, value):
    p, rc, out = config_test(proxy_factory, {section: {key: value}})
    assert rc == 0, out


def test_config_test_htpasswd_user_too_long_names_the_limit(proxy_factory, tmp_path):
    htp = tmp_path / "htpasswd"
    htp.write_text("%s:{SHA}%s\n" % ("u" * 256, base64.b64encode(hashlib.sha1(b"x").digest()).decode()))
    p, rc, out = config_test(proxy_factory, {"auth": {"scheme": "basic", "htpasswd": str(htp)}})
    assert rc == 1, out
    assert "[auth] htpasswd: " in out and "longer than 255 characters" in out, out
