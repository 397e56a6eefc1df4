"""HTTP/2 on the HTTPS proxy port (issue 13).

A client that offers ALPN h2 on a `[tls] listen` port speaks HTTP/2 to the
proxy: every request stream goes through the same pipeline as an HTTP/1.1
request (authentication, policy, cache, upstream, access log), the origin
sees an ordinary HTTP/1.1 request, and the response comes back as HEADERS,
DATA and trailers without any connection-specific field. CONNECT is a
stream (RFC 9113 §8.5). Malformed requests are stream errors; floods
(rapid reset, CONTINUATION, HPACK bombs, too many streams) are refused
without harming other connections. `[tls] protocols_alpn` and
`max_concurrent_streams` configure it; the plain port stays HTTP/1.1.

The client is h2client.py (python3-h2 with validation off, and raw frames
for floods). Certificates come from a throwaway CA; nothing leaves
127.0.0.1. Random data is seeded and the seed printed."""

import base64
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import types

import pytest

from conftest import TEST_HARD_LIMIT
from h2client import (CANCEL, ENHANCE_YOUR_CALM, NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM,
                      SETTINGS_MAX_CONCURRENT_STREAMS, H2Client, NotH2, RawH2, StreamTLS,
                      frame_bytes, rst_stream_bytes)
from helpers import (CLOSE, SHUT_WR, Client, Origin, chunked, data_of, echo_handler, http_response,
                     make_ca, make_leaf, server_tls_context, tls_client, wait_for)
from test_ops import Prom

HERE = os.path.dirname(os.path.abspath(__file__))
HTPASSWD = os.path.join(HERE, "fixtures", "auth", "htpasswd")
ALICE = ("alice", "Wonderland-7f3q")  # must match fixtures/auth/gen.sh
CHALLENGE = 'Basic realm="hopcache", charset="UTF-8"'

# fields that never appear in an HTTP/2 message (RFC 9113 §8.2.2)
CONNECTION_SPECIFIC = ("connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade")

# tests that need more than conftest's TEST_HARD_LIMIT (their own loops are bounded)
LONG_TESTS = {"test_connect_64mib_while_other_streams_complete": 100}


@pytest.fixture(autouse=True)
def _hard_limit(request):
    """conftest's hard limit, longer for the tests in LONG_TESTS."""
    limit = LONG_TESTS.get(request.node.originalname, TEST_HARD_LIMIT)

    def on_alarm(signum, frame):
        raise TimeoutError("test exceeded %ds hard limit" % limit)
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(scope="session")
def h2pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("h2pki"))
    ca = make_ca(d, name="hopcache h2 test CA")
    leaf = make_leaf(d, ca, names=("localhost",), ips=("127.0.0.1",), cn="localhost", tag="leaf")
    return types.SimpleNamespace(dir=d, ca=ca, leaf=leaf)


@pytest.fixture
def h2_proxy_factory(proxy_factory, h2pki):
    """h2_proxy_factory(tls={...}, ini_extra={...}, workers=1): a proxy with
    [tls] listen on 127.0.0.1 (the session leaf) next to its plain port."""
    def make(tls=None, ini_extra=None, workers=1, start=True):
        extra = {sec: dict(kv) for sec, kv in (ini_extra or {}).items()}
        sec = extra.setdefault("tls", {})
        base = {"listen": "127.0.0.1:0", "certificate": h2pki.leaf[0], "private_key": h2pki.leaf[1]}
        base.update(tls or {})
        for k, v in base.items():
            sec.setdefault(k, v)
        p = proxy_factory(extra, workers, start=start)
        if start:
            assert p.tls_port, "no 'listening for TLS on' port"
        return p
    return make


@pytest.fixture
def h2_proxy(h2_proxy_factory):
    return h2_proxy_factory()


@pytest.fixture
def h2(h2pki):
    """h2(proxy, **kw): an H2Client on the proxy's TLS port, closed at teardown."""
    made = []

    def make(proxy, **kw):
        c = H2Client(proxy.tls_port, h2pki.ca.cert, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


@pytest.fixture
def raw_h2(h2pki):
    made = []

    def make(proxy, **kw):
        c = RawH2(proxy.tls_port, h2pki.ca.cert, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def seeded(name):
    seed = random.randrange(1 << 30)
    print("%s: random seed %d" % (name, seed))
    return seed


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def the_worker(proxy):
    w = proxy.wait_workers(1)
    assert len(w) == 1, w
    return w[0]


def metrics(proxy):
    with Client(proxy.port) as c:
        r = c.exchange("GET", "/hopcache/metrics", [("Host", "127.0.0.1:%d" % proxy.port)])
    assert r.status == 200, r
    return Prom(r.body.decode("utf-8"))


def origin_paths(origin):
    with origin.lock:
        return [r.target for r in origin.requests]


def h1_origin_request(proxy, h2pki, origin, path, headers):
    """The request the origin receives for an HTTP/1.1 GET on the TLS port."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(h2pki.ca.cert)
    ctx.set_alpn_protocols(["http/1.1"])
    with tls_client(proxy.tls_port, ctx, server_hostname="localhost") as c:
        r = c.exchange("GET", origin.url(path), [("Host", origin.authority)] + list(headers))
    assert r.status == 200, r
    return [q for q in origin.requests if q.target == path][-1]


def norm_fields(req):
    """The origin request's fields with names lowercased, in order."""
    return [(k.lower(), v) for (k, v) in req.headers]


# ---------------------------------------------------------------------------
# ALPN, SETTINGS, the plain port


def test_alpn_selects_h2_and_settings(h2_proxy, origin, h2):
    c = h2(h2_proxy, alpn=("h2", "http/1.1"))
    assert c.alpn == "h2"
    settings = c.wait_settings()
    assert settings.get(SETTINGS_MAX_CONCURRENT_STREAMS) == 100, settings
    st = c.get(origin, "/first")
    assert st.status == 200, st
    assert st.body == b"hello from origin: GET /first"
    assert st.ended and st.reset is None
    assert c.goaway is None and not c.errors


def test_max_concurrent_streams_setting(h2_proxy_factory, origin, h2):
    p = h2_proxy_factory(tls={"max_concurrent_streams": "7"})
    c = h2(p)
    assert c.wait_settings().get(SETTINGS_MAX_CONCURRENT_STREAMS) == 7


def test_alpn_http11_only_turns_h2_off(h2_proxy_factory, origin, h2pki):
    """protocols_alpn = http/1.1: a client offering h2 and http/1.1 gets
    http/1.1 and is served HTTP/1.1."""
    import ssl
    p = h2_proxy_factory(tls={"protocols_alpn": "http/1.1"})
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(h2pki.ca.cert)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with tls_client(p.tls_port, ctx, server_hostname="localhost") as c:
        assert c.sock.selected_alpn_protocol() == "http/1.1"
        r = c.exchange("GET", origin.url("/h1"), [("Host", origin.authority)])
        assert r.status == 200 and r.version == "HTTP/1.1"
        assert r.body == b"hello from origin: GET /h1"
    with pytest.raises(NotH2):
        H2Client(p.tls_port, h2pki.ca.cert, alpn=("h2", "http/1.1")).close()


def test_alpn_default_prefers_h2_over_http11(h2_proxy, h2pki):
    """The default list is "h2, http/1.1": h2 wins when both are offered,
    http/1.1 still works for a client that offers only it."""
    import ssl
    for offer, want in ((["http/1.1", "h2"], "h2"), (["http/1.1"], "http/1.1")):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(h2pki.ca.cert)
        ctx.set_alpn_protocols(offer)
        with tls_client(h2_proxy.tls_port, ctx, server_hostname="localhost") as c:
            assert c.sock.selected_alpn_protocol() == want, offer


def test_plain_port_stays_http11(h2_proxy, origin):
    """The HTTP/2 connection preface on the plain port is an HTTP/1.1
    request line of version 2.0: 505, closed."""
    with Client(h2_proxy.port) as c:
        c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame_bytes(0x4, 0, 0))
        r = c.read_response()
        assert r.status == 505, r
        assert r.version == "HTTP/1.1"
        closed, _ = c.wait_closed(3)
        assert closed
    assert origin.requests == []


# ---------------------------------------------------------------------------
# requests through the pipeline


def test_get_reaches_origin_as_http11(h2_proxy, origin, h2):
    c = h2(h2_proxy)
    st = c.get(origin, "/path?q=1", [("user-agent", "h2test"), ("accept", "*/*")])
    assert st.status == 200, st
    assert st.body == b"hello from origin: GET /path?q=1"
    req = origin.requests[-1]
    assert req.start_line == b"GET /path?q=1 HTTP/1.1", req.start_line
    assert req.get_all("Host") == [origin.authority]
    assert req.get("User-Agent") == "h2test"
    for name in CONNECTION_SPECIFIC + ("te", "http2-settings"):
        assert not req.has(name), "%s reached the origin: %r" % (name, req.headers)
    assert not any(k.startswith(":") for k, _ in req.headers), req.headers


def test_origin_request_same_as_for_http11_client(h2_proxy, origin, h2, h2pki):
    """The origin gets the same fields for the same request over HTTP/2 as
    over HTTP/1.1 on the TLS port (names compared lowercased; Via names the
    protocol received, test_via_names_http2)."""
    hdrs = [("user-agent", "ua/1"), ("accept", "text/plain"), ("x-custom", "c1"),
            ("authorization", "Bearer origin-token"), ("cache-control", "no-cache")]
    req1 = h1_origin_request(h2_proxy, h2pki, origin, "/same-1", hdrs)
    c = h2(h2_proxy)
    st = c.get(origin, "/same-2", hdrs)
    assert st.status == 200, st
    req2 = [q for q in origin.requests if q.target == "/same-2"][-1]
    def no_via(req):
        return [(k, v) for (k, v) in norm_fields(req) if k != "via"]
    assert no_via(req2) == no_via(req1), (req1.headers, req2.headers)


def test_via_names_http2(h2_proxy, origin, h2):
    """RFC 9110 §7.6.3: Via's received-protocol is the version of the
    message the proxy received: "2" for HTTP/2, both ways."""
    c = h2(h2_proxy)
    st = c.get(origin, "/via")
    assert st.status == 200, st
    assert origin.requests[-1].get_all("Via") == ["2 hopcache"], origin.requests[-1].headers
    assert st.get_all("via") == ["1.1 hopcache"], st.headers


def test_request_te_trailers_is_fine(h2_proxy, origin, h2):
    c = h2(h2_proxy)
    st = c.get(origin, "/te", [("te", "trailers")])
    assert st.status == 200, st
    assert not origin.requests[-1].has("TE"), "TE is hop-by-hop: %r" % origin.requests[-1].headers


def test_request_host_equal_to_authority_is_fine(h2_proxy, origin, h2):
    c = h2(h2_proxy)
    st = c.get(origin, "/host", [("host", origin.authority)])
    assert st.status == 200, st
    assert origin.requests[-1].get_all("Host") == [origin.authority]


def _body_echo(req):
    b = req.body
    return http_response(200, [("Content-Type", "text/plain")],
                         ("%s %s len=%d sha=%s" % (req.method, req.target, len(b),
                                                   hashlib.sha256(b).hexdigest())).encode())


def test_post_with_content_length(h2_proxy, origin, h2):
    origin.responder = _body_echo
    body = data_of(200000, seed=3)
    c = h2(h2_proxy)
    st = c.exchange("POST", origin.authority, "/post-cl", [("content-length", str(len(body))),
                                                          ("content-type", "application/octet-stream")],
                    body=body)
    assert st.status == 200, st
    assert st.body == ("POST /post-cl len=%d sha=%s" % (len(body), hashlib.sha256(body).hexdigest())).encode()
    req = origin.requests[-1]
    assert req.complete and req.body == body
    assert req.get("Content-Length") == str(len(body))


def test_post_without_content_length_1mib(h2_proxy, origin, h2):
    """A body with no content-length, larger than every initial window:
    sent as the proxy grants window, arrives whole."""
    origin.responder = _body_echo
    seed = seeded("post-1mib")
    body = random.Random(seed).randbytes(1 << 20)
    c = h2(h2_proxy)
    st = c.exchange("POST", origin.authority, "/post-nocl", body=body, timeout=20)
    assert st.status == 200, st
    assert st.body == ("POST /post-nocl len=%d sha=%s" % (len(body), hashlib.sha256(body).hexdigest())).encode()
    req = origin.requests[-1]
    assert req.complete and req.body == body
    for name in ("connection", "keep-alive", "proxy-connection", "upgrade", "te"):
        assert not req.has(name), req.headers


def test_post_with_request_trailers(h2_proxy, origin, h2):
    origin.responder = _body_echo
    body = b"x" * 50000
    c = h2(h2_proxy)
    st = c.exchange("POST", origin.authority, "/post-trailers", [("te", "trailers")], body=body,
                    trailers=[("x-checksum", hashlib.sha256(body).hexdigest())])
    assert st.status == 200, st
    assert st.body.startswith(b"POST /post-trailers len=50000 ")
    req = origin.requests[-1]
    assert req.complete and req.body == body


def test_head(h2_proxy, origin, h2):
    c = h2(h2_proxy)
    st = c.exchange("HEAD", origin.authority, "/head")
    assert st.status == 200, st
    assert st.data_len == 0 and st.ended
    assert st.get("content-length") == str(len(b"hello from origin: HEAD /head"))
    assert origin.requests[-1].method == "HEAD"


def test_response_trailers_kept(h2_proxy, origin, h2):
    origin.responder = lambda req: http_response(
        200, [("Transfer-Encoding", "chunked"), ("Trailer", "X-Sum")],
        chunked([b"abc", b"def"], trailers=[b"X-Sum: 42"]))
    c = h2(h2_proxy, alpn=("h2",))
    st = c.get(origin, "/trailers", [("te", "trailers")])
    assert st.status == 200, st
    assert st.body == b"abcdef"
    assert st.trailers == [("x-sum", "42")], st
    assert st.ended and st.reset is None


def test_response_connection_specific_fields_removed(h2_proxy, origin, h2):
    origin.responder = lambda req: http_response(
        200, [("Connection", "x-foo"), ("X-Foo", "1"), ("Keep-Alive", "timeout=5"),
              ("Proxy-Connection", "keep-alive"), ("Upgrade", "h2c"), ("X-Public", "p"),
              ("Transfer-Encoding", "chunked")],
        chunked([b"hello ", b"h2 ", b"world"]))
    c = h2(h2_proxy)
    st = c.get(origin, "/hop")
    assert st.status == 200, st
    names = st.names()
    for name in CONNECTION_SPECIFIC + ("x-foo",):
        assert name not in names, "%s reached the HTTP/2 client: %r" % (name, st.headers)
    assert st.get("x-public") == "p"
    assert st.body == b"hello h2 world"
    assert st.ended and st.reset is None


def test_response_field_names_lowercase(h2_proxy, origin, h2):
    origin.responder = lambda req: http_response(
        200, [("X-MiXeD-Case", "v"), ("Content-Type", "text/plain"), ("ETag", '"e1"')], b"body")
    c = h2(h2_proxy)
    st = c.get(origin, "/case")
    assert st.status == 200, st
    assert all(k == k.lower() for k, _ in st.headers), st.headers
    assert st.get("x-mixed-case") == "v" and st.get("etag") == '"e1"'
    assert [k for k, _ in st.headers if k.startswith(":")] == [":status"]
    assert st.headers[0][0] == ":status", "pseudo-headers come first"


def test_interim_100_continue(h2_proxy, origin, h2):
    """expect: 100-continue: the origin's 100 reaches the client as an
    informational HEADERS before the final one."""
    origin.responder = _body_echo
    c = h2(h2_proxy)
    st = c.exchange("POST", origin.authority, "/expect", [("expect", "100-continue"),
                                                         ("content-length", "5")], body=b"hello")
    assert st.status == 200, st
    assert origin.requests[-1].body == b"hello"


# ---------------------------------------------------------------------------
# malformed requests: RST_STREAM PROTOCOL_ERROR, nothing forwarded


def _req(auth, path="/bad", method="GET"):
    return [(":method", method), (":scheme", "http"), (":authority", auth), (":path", path)]


MALFORMED = {
    "connection": lambda a: _req(a) + [("connection", "keep-alive")],
    "keep-alive": lambda a: _req(a) + [("keep-alive", "timeout=5")],
    "proxy-connection": lambda a: _req(a) + [("proxy-connection", "keep-alive")],
    "transfer-encoding": lambda a: _req(a) + [("transfer-encoding", "chunked")],
    "upgrade": lambda a: _req(a) + [("upgrade", "websocket")],
    "te-gzip": lambda a: _req(a) + [("te", "gzip")],
    "uppercase-name": lambda a: _req(a) + [("X-Upper", "1")],
    "host-differs": lambda a: _req(a) + [("host", "other.example:80")],
    "no-authority": lambda a: [(":method", "GET"), (":scheme", "http"), (":path", "/bad")],
    "duplicate-pseudo": lambda a: _req(a) + [(":path", "/bad2")],
    "pseudo-after-regular": lambda a: [(":method", "GET"), (":scheme", "http"), ("x-a", "1"),
                                       (":authority", a), (":path", "/bad")],
    "connect-with-path": lambda a: [(":method", "CONNECT"), (":authority", a), (":path", "/bad")],
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request_is_stream_protocol_error(h2_proxy, origin, origin_factory, h2, case):
    trap = origin_factory()  # the malformed stream's authority: nothing may reach it
    c = h2(h2_proxy)
    a = c.request("GET", origin.authority, "/good-before")
    connect = case.startswith("connect")
    bad = c.send_headers(MALFORMED[case](trap.authority), end_stream=not connect)
    b = c.request("GET", origin.authority, "/good-after")
    c.wait(lambda: all(c.streams[s].done for s in (a, bad, b)), 10, "all three streams")
    st = c.streams[bad]
    assert st.reset == PROTOCOL_ERROR, "%s: %r" % (case, st)
    assert st.headers is None, st
    for s, path in ((a, "/good-before"), (b, "/good-after")):
        assert c.streams[s].status == 200, c.streams[s]
        assert c.streams[s].body == b"hello from origin: GET " + path.encode()
    assert c.goaway is None, "a stream error must not end the connection: %r" % c.goaway
    time.sleep(0.1)
    assert trap.conns == [] and trap.requests == [], "the malformed request reached the origin"
    assert sorted(origin_paths(origin)) == ["/good-after", "/good-before"]


# ---------------------------------------------------------------------------
# concurrency


def test_100_concurrent_streams(h2_proxy, origin, h2):
    c = h2(h2_proxy)
    c.wait_settings()
    sids = [c.request("GET", origin.authority, "/c%03d" % i) for i in range(100)]
    c.wait(lambda: all(c.streams[s].done for s in sids), 20, "100 streams")
    for i, s in enumerate(sids):
        st = c.streams[s]
        assert st.status == 200, st
        assert st.body == b"hello from origin: GET /c%03d" % i, st
    assert c.goaway is None
    assert sorted(origin_paths(origin)) == ["/c%03d" % i for i in range(100)]


def _slow(req, delay=1.5):
    return [delay, http_response(200, [], ("slow %s" % req.target).encode())]


def _burst(r, origin, n):
    burst = b""
    sids = []
    for i in range(n):
        sid, fr = r.request_frames("GET", origin.authority, "/s%d" % i)
        sids.append(sid)
        burst += fr
    r.send(burst)
    return sids


def test_streams_over_the_limit_refused(h2_proxy_factory, origin, raw_h2):
    """max_concurrent_streams = 4 and 6 requests in one burst before the
    client acknowledged the SETTINGS: the first 4 are served, the 5th and
    6th get RST_STREAM REFUSED_STREAM; the connection goes on (RFC 9113
    §5.1.2)."""
    p = h2_proxy_factory(tls={"max_concurrent_streams": "4"})
    origin.responder = _slow
    r = raw_h2(p)
    sids = _burst(r, origin, 6)
    assert r.read(lambda: all(r.done(s) for s in sids), 10), (r.heads, r.rst, r.goaway)
    for s in sids[:4]:
        assert r.status(s) == 200 and s not in r.rst, (s, r.heads.get(s), r.rst)
    for s in sids[4:]:
        assert r.rst.get(s) == REFUSED_STREAM, (s, r.rst, r.goaway)
        assert r.status(s) is None
    assert r.goaway is None
    assert sorted(origin_paths(origin)) == ["/s0", "/s1", "/s2", "/s3"]
    # the connection still takes new streams
    sid, fr = r.request_frames("GET", origin.authority, "/after")
    r.send(fr)
    assert r.read(lambda: r.done(sid), 5)
    assert r.status(sid) == 200


def test_streams_over_the_acknowledged_limit_end_the_connection(h2_proxy_factory, origin, raw_h2):
    """The same burst after the client acknowledged max_concurrent_streams = 4:
    nghttp2 treats the 5th HEADERS as a connection error, GOAWAY
    PROTOCOL_ERROR naming the last stream it took (RFC 9113 §5.1.2 asks for a
    stream error; nghttp2 is stricter with a client that broke a limit it
    acknowledged). Nothing of the 5th and 6th reaches the origin."""
    p = h2_proxy_factory(tls={"max_concurrent_streams": "4"})
    origin.responder = _slow
    r = raw_h2(p)
    assert r.read(lambda: r.settings_seen, 5)
    assert r.settings.get(SETTINGS_MAX_CONCURRENT_STREAMS) == 4
    time.sleep(0.2)  # read() acked the SETTINGS; let the ACK arrive first
    sids = _burst(r, origin, 6)
    assert r.read(lambda: r.goaway is not None, 10), (r.heads, r.rst)
    assert r.goaway[0] == PROTOCOL_ERROR and r.goaway[1] == sids[3], r.goaway
    time.sleep(0.3)
    assert all(q not in origin_paths(origin) for q in ("/s4", "/s5")), origin_paths(origin)


# ---------------------------------------------------------------------------
# CONNECT streams


def test_connect_stream_tls_origin(h2_proxy, h2, h2pki):
    import ssl
    tls_origin = Origin(tls_context=server_tls_context(*h2pki.leaf))
    try:
        c = h2(h2_proxy)
        sid = c.connect(tls_origin.authority)
        st = c.wait_headers(sid)
        assert st.status == 200, st
        assert not st.has("content-length") and not st.has("transfer-encoding"), st.headers
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(h2pki.ca.cert)
        t = StreamTLS(c, sid, ctx, "localhost")
        t.handshake()
        t.sendall(b"GET /inside HTTP/1.1\r\nHost: localhost\r\n\r\n")
        want = b"hello from origin: GET /inside"
        got = t.recv_until(lambda b: b.endswith(want), 5)
        assert got.startswith(b"HTTP/1.1 200 ") and got.endswith(want), got
        req = tls_origin.requests[-1]
        assert not req.has("Via"), "a tunnel must not touch the bytes inside it"
    finally:
        tls_origin.stop()


def test_connect_stream_end_stream_is_half_close(h2_proxy, origin, h2):
    """Client END_STREAM: the origin reads EOF (and, an echo, FINs back:
    END_STREAM to the client)."""
    origin.handler = echo_handler
    c = h2(h2_proxy)
    sid = c.connect(origin.authority)
    assert c.wait_headers(sid).status == 200
    c.send_data(sid, b"ping-1 ")
    c.send_data(sid, b"ping-2", end_stream=True)
    st = c.wait_done(sid, 5)
    assert st.body == b"ping-1 ping-2", st
    assert st.ended and st.reset is None, st


def test_connect_stream_origin_half_close(h2_proxy, origin, h2):
    """The origin FINs first: END_STREAM to the client, whose stream stays
    writable; what it sends then still reaches the origin."""
    got = []

    def handler(conn):
        conn.send(b"origin-says-bye")
        conn.shutdown_write()
        buf = bytearray()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            d = conn.recv_some(timeout=max(0.1, deadline - time.monotonic()))
            if not d:
                break
            buf += d
        got.append(bytes(buf))
    origin.handler = handler
    c = h2(h2_proxy)
    sid = c.connect(origin.authority)
    st = c.wait_headers(sid)
    assert st.status == 200, st
    c.wait(lambda: st.ended or st.reset is not None, 5, "END_STREAM from the origin's FIN")
    assert st.body == b"origin-says-bye" and st.reset is None, st
    c.send_data(sid, b"client-still-talks", end_stream=True)
    c.pump(lambda: bool(got), 5)
    assert got == [b"client-still-talks"], (st, c.errors, c.goaway, h2_proxy.logs_text()[-1500:])


def test_connect_port_not_allowed_403(h2_proxy_factory, origin, h2):
    p = h2_proxy_factory(ini_extra={"proxy": {"connect_ports": "443"}})
    c = h2(p)
    sid = c.connect(origin.authority)
    st = c.wait_headers(sid)
    assert st.status == 403, st
    other = c.get(origin, "/still-fine")
    assert other.status == 200
    time.sleep(0.1)
    assert len(origin.conns) == 1 and origin_paths(origin) == ["/still-fine"], \
        "the CONNECT to a port not allowed reached the origin"


def test_connect_policy_denied_403(h2_proxy_factory, origin, h2):
    p = h2_proxy_factory(ini_extra={"acl": {"private_destinations": "deny"}})
    c = h2(p)
    sid = c.connect(origin.authority)
    assert c.wait_headers(sid).status == 403
    st = c.get(origin, "/denied")
    assert st.status == 403, st
    time.sleep(0.1)
    assert origin.conns == []


def test_connect_flow_control(h2_proxy, origin, h2):
    """A client that grants no window gets exactly the initial stream
    window (65535 bytes) and no more; as it consumes, the rest comes."""
    total = 1 << 20
    blob = data_of(total, seed=5)

    def handler(conn):
        conn.send(blob)
        conn.shutdown_write()
        conn.recv_some(timeout=10)
    origin.handler = handler
    c = h2(h2_proxy)
    sid = c.connect(origin.authority)
    st = c._stream(sid)
    st.auto_ack = False
    assert c.wait_headers(sid).status == 200
    c.pump(timeout=1.5)
    assert st.data_len == 65535, "with no WINDOW_UPDATE the proxy may send 65535 bytes, sent %d" % st.data_len
    assert not c.errors, c.errors
    deadline = time.monotonic() + 20
    while not st.done and time.monotonic() < deadline:
        c.consume(sid)
        c.pump(lambda: st.unacked > 0 or st.done, 2)
    c.consume(sid)
    assert st.ended and st.reset is None, st
    assert st.body == blob
    c.end_stream(sid)


def test_connect_64mib_while_other_streams_complete(h2_proxy, origin, origin_factory, h2):
    """64 MiB echoed through one CONNECT stream (64 MiB each way) while GETs
    on other streams of the same connection keep completing; 60 s bound."""
    seed = seeded("connect-64mib")
    origin.handler = echo_handler
    web = origin_factory()
    total = 64 << 20
    blob = random.Random(seed).randbytes(total)
    want = hashlib.sha256(blob).hexdigest()
    got = hashlib.sha256()
    c = h2(h2_proxy, timeout=10)
    sid = c.connect(origin.authority)
    st = c.wait_headers(sid)
    assert st.status == 200, st
    st.keep_data = False
    st.on_data = got.update
    c.send_data(sid, blob, end_stream=True)
    del blob
    gets = []
    deadline = time.monotonic() + 60
    n = 0
    while not st.done and time.monotonic() < deadline and not c.closed:
        inflight = [g for g in gets if not c.streams[g].done]
        while len(inflight) < 4:
            g = c.request("GET", web.authority, "/g%d" % n)
            n += 1
            gets.append(g)
            inflight.append(g)
        c.pump(lambda: st.done or any(c.streams[g].done for g in inflight), 1)
    c.wait(lambda: all(c.streams[g].done for g in gets), 10, "the last GETs")
    print("64 MiB echoed: %d bytes back, %d GETs done meanwhile" % (st.data_len, len(gets)))
    assert st.ended and st.reset is None, st
    assert st.data_len == total
    assert got.hexdigest() == want
    done = [c.streams[g] for g in gets]
    assert all(s.status == 200 for s in done), [s for s in done if s.status != 200][:3]
    assert len(done) >= 20, "only %d GETs completed during the transfer" % len(done)
    assert not c.errors and c.goaway is None


# ---------------------------------------------------------------------------
# authentication, policy, cache, https:// upstream


def test_auth_per_stream(h2_proxy_factory, origin, h2):
    p = h2_proxy_factory(ini_extra={"auth": {"scheme": "basic", "htpasswd": HTPASSWD}})
    c = h2(p)
    a = c.get(origin, "/no-creds")
    assert a.status == 407, a
    assert a.get_all("proxy-authenticate") == [CHALLENGE], a.headers
    b = c.get(origin, "/creds", [("proxy-authorization", basic(*ALICE))])
    assert b.status == 200, b
    bad = c.get(origin, "/bad-creds", [("proxy-authorization", basic("alice", "wrong"))])
    assert bad.status == 407, bad
    d = c.get(origin, "/no-creds-again")
    assert d.status == 407, "credentials are per stream: %r" % d
    assert origin_paths(origin) == ["/creds"]
    assert not origin.requests[0].has("Proxy-Authorization")
    e = p.wait_access(lambda e: e.get("target", "").endswith("/creds"))
    assert e is not None and e["user"] == "alice", p.read_access_log()


def test_refused_uploads_do_not_shrink_the_connection_window(h2_proxy_factory, origin, h2):
    """Six 1 MiB POSTs refused with 407 before their bodies were read: the
    DATA the pipeline never took is still given back to the connection's
    window (4 MiB), so a later stream with credentials completes."""
    p = h2_proxy_factory(ini_extra={"auth": {"scheme": "basic", "htpasswd": HTPASSWD}})
    c = h2(p, timeout=20)
    body = b"u" * (1 << 20)
    sids = [c.request("POST", origin.authority, "/up%d" % i, headers=[("content-length", str(len(body)))],
                      body=body) for i in range(6)]
    for sid in sids:
        st = c.wait_headers(sid, 10)
        assert st.status == 407, st
    r = c.request("POST", origin.authority, "/ok", headers=[("proxy-authorization", basic(*ALICE)),
                                                           ("content-length", str(len(body)))],
                  body=body)
    st = c.wait_done(r, 15)
    assert st.status == 200 and st.ended, st
    assert origin_paths(origin) == ["/ok"]
    assert origin.requests[0].body == body


def test_auth_connect_stream(h2_proxy_factory, origin, h2):
    origin.handler = echo_handler
    p = h2_proxy_factory(ini_extra={"auth": {"scheme": "basic", "htpasswd": HTPASSWD}})
    c = h2(p)
    s1 = c.connect(origin.authority)
    st1 = c.wait_headers(s1)
    assert st1.status == 407 and st1.get_all("proxy-authenticate") == [CHALLENGE], st1
    s2 = c.connect(origin.authority, [("proxy-authorization", basic(*ALICE))])
    assert c.wait_headers(s2).status == 200
    c.send_data(s2, b"echo", end_stream=True)
    assert c.wait_done(s2).body == b"echo"


def test_policy_denies_request_stream(h2_proxy_factory, origin, h2):
    p = h2_proxy_factory(ini_extra={"acl": {"private_destinations": "deny"}})
    c = h2(p)
    st = c.get(origin, "/private")
    assert st.status == 403, st
    assert st.ended
    time.sleep(0.1)
    assert origin.conns == []


def test_cache_hit_over_h2(h2_proxy_factory, origin, h2, tmp_path):
    origin.responder = lambda req: http_response(200, [("Cache-Control", "max-age=600")],
                                                 b"cached " + req.target.encode())
    p = h2_proxy_factory(ini_extra={"cache": {"enabled": "yes", "dir": str(tmp_path / "cache"),
                                              "size": "64M"}})
    c = h2(p)
    first = c.get(origin, "/cacheable")
    assert first.status == 200 and first.body == b"cached /cacheable"
    second = c.get(origin, "/cacheable")
    assert second.status == 200 and second.body == b"cached /cacheable"
    assert "hit" in [x.strip() for x in (second.get("cache-status") or "").split(";")], second.headers
    assert origin_paths(origin) == ["/cacheable"]


def test_https_scheme_goes_tls_upstream(h2_proxy_factory, h2, h2pki):
    tls_origin = Origin(tls_context=server_tls_context(*h2pki.leaf))
    try:
        p = h2_proxy_factory(ini_extra={"upstream": {"ca_file": h2pki.ca.cert}})
        c = h2(p)
        st = c.exchange("GET", "127.0.0.1:%d" % tls_origin.port, "/secure", scheme="https")
        assert st.status == 200, st
        assert st.body == b"hello from origin: GET /secure"
        assert tls_origin.conns[0].tls
        assert tls_origin.requests[0].start_line == b"GET /secure HTTP/1.1"
    finally:
        tls_origin.stop()


# ---------------------------------------------------------------------------
# defences


def test_rapid_reset_goaway_enhance_your_calm(h2_proxy, origin, raw_h2, h2):
    """2000 streams opened and reset at once (CVE-2023-44487): GOAWAY
    ENHANCE_YOUR_CALM, then the connection is closed; others still served."""
    bystander = h2(h2_proxy)
    assert bystander.get(origin, "/before").status == 200
    r = raw_h2(h2_proxy)
    burst = bytearray()
    for i in range(2000):
        sid, fr = r.request_frames("GET", origin.authority, "/rr%d" % i)
        burst += fr + rst_stream_bytes(sid, CANCEL)
    r.send(bytes(burst))
    r.read(lambda: r.closed, 10)
    assert r.closed, "the connection stayed open after 2000 rapid resets (goaway=%r)" % (r.goaway,)
    assert bystander.get(origin, "/during").status == 200
    assert h2(h2_proxy).get(origin, "/after").status == 200
    assert h2_proxy.running()
    assert r.goaway is not None, "no GOAWAY before the close"
    assert r.goaway[0] == ENHANCE_YOUR_CALM, r.goaway


def _continuation_flood(r, sid, origin, chunk, max_bytes, seconds):
    """HEADERS without END_HEADERS, then CONTINUATIONs of `chunk` until the
    peer closes, max_bytes are sent, or seconds pass. Returns bytes sent."""
    first = r.block([(":method", "GET"), (":scheme", "http"), (":authority", origin.authority),
                     (":path", "/flood")])
    r.send(frame_bytes(0x1, 0x1, sid, first))
    cont = frame_bytes(0x9, 0, sid, chunk) * 16
    deadline = time.monotonic() + seconds
    sent = 0
    while not r.closed and sent < max_bytes and time.monotonic() < deadline:
        if not r.send(cont):
            break
        sent += len(cont)
        r.poll()
    return sent


@pytest.mark.parametrize("chunk_size", [16384, 0])
def test_continuation_flood_closed(h2_proxy, origin, raw_h2, h2, chunk_size):
    """An endless header block (CONTINUATION frames of 16 KiB of literal
    headers, or empty ones) ends in GOAWAY and close, quickly, with the
    worker's memory bounded."""
    pid = the_worker(h2_proxy)
    before = rss_kb(pid)
    r = raw_h2(h2_proxy)
    assert r.read(lambda: r.settings_seen, 5)
    lit = r.enc.encode([(b"x-flood", b"v" * 200)], huffman=False) if chunk_size else b""
    chunk = (lit * (chunk_size // max(1, len(lit)) + 1))[:chunk_size] if chunk_size else b""
    # literals without indexing would be cleaner, but any bytes do: the block never ends
    t0 = time.monotonic()
    sent = _continuation_flood(r, r.new_sid(), origin, chunk, 256 << 20, 15)
    r.read(lambda: r.closed, 5)
    took = time.monotonic() - t0
    print("CONTINUATION flood (chunk %d): %d bytes sent in %.1fs, goaway=%r closed=%r" % (
        chunk_size, sent, took, r.goaway, r.closed))
    assert r.closed
    assert took < 10, "the flood went on for %.1fs" % took
    grown = rss_kb(pid) - before
    assert grown < 32 * 1024, "the worker grew by %d KiB" % grown
    assert origin.requests == []
    assert h2(h2_proxy).get(origin, "/after").status == 200
    assert r.goaway is not None, "closed without a GOAWAY"


def test_hpack_bomb(h2_proxy, origin, raw_h2, h2):
    """A 4000-byte field put in the dynamic table once and referenced 16000
    times (about 20 KiB on the wire, 64 MiB decoded): the list is counted,
    not kept; the stream is answered 431 (RFC 9113 §10.5.1) without reaching
    the origin, the worker's memory does not grow, and the connection (its
    HPACK context intact) goes on serving streams."""
    pid = the_worker(h2_proxy)
    before = rss_kb(pid)
    r = raw_h2(h2_proxy)
    assert r.read(lambda: r.settings_seen, 5)
    sid = r.new_sid()
    hdrs = [(":method", "GET"), (":scheme", "http"), (":authority", origin.authority),
            (":path", "/bomb")] + [("x-bomb", "a" * 4000)] * 16000
    frames = r.headers_frames(sid, hdrs, end_stream=True)
    assert len(frames) < 64 * 1024, len(frames)
    r.send(frames)
    r.read(lambda: r.done(sid) or r.closed, 10)
    print("HPACK bomb: %d bytes on the wire; heads=%r rst=%r goaway=%r" % (
        len(frames), r.heads.get(sid), r.rst, r.goaway))
    assert r.status(sid) == 431, (r.heads.get(sid), r.rst, r.goaway, r.closed)
    assert sid in r.end and sid not in r.rst
    assert r.goaway is None and not r.closed
    grown = rss_kb(pid) - before
    assert grown < 32 * 1024, "the worker grew by %d KiB" % grown
    assert origin.requests == []
    sid2, fr = r.request_frames("GET", origin.authority, "/after-bomb")
    r.send(fr)
    assert r.read(lambda: r.done(sid2), 5)
    assert r.status(sid2) == 200
    assert r.data.get(sid2) == b"hello from origin: GET /after-bomb"
    assert h2(h2_proxy).get(origin, "/after").status == 200


# ---------------------------------------------------------------------------
# reload


def test_sighup_goaway_inflight_stream_completes(h2_proxy, origin, raw_h2, h2):
    """SIGHUP with a stream in flight: GOAWAY(NO_ERROR) naming it, the stream
    still completes (RFC 9113 §6.8), a new connection is served, and the
    drained one closes. RawH2 reads frames by hand: python-h2 treats any
    frame after a GOAWAY as a protocol error, which RFC 9113 does not."""
    def slow(req):
        if req.target == "/slow":
            return [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst", 2.0, b"-last"]
        return http_response(200, [], b"fast " + req.target.encode())
    origin.responder = slow
    r = raw_h2(h2_proxy, timeout=10)
    assert r.read(lambda: r.settings_seen, 5)
    sid, fr = r.request_frames("GET", origin.authority, "/slow")
    r.send(fr)
    assert r.read(lambda: r.status(sid) is not None, 5)
    assert r.status(sid) == 200
    h2_proxy.signal(signal.SIGHUP)
    assert r.read(lambda: r.goaway is not None, 5), "no GOAWAY after SIGHUP"
    assert r.goaway[0] == NO_ERROR and r.goaway[1] >= sid, r.goaway
    assert r.read(lambda: sid in r.end or sid in r.rst, 10)
    assert sid in r.end and sid not in r.rst, (r.end, r.rst)
    assert bytes(r.data.get(sid, b"")) == b"first-last"
    assert wait_for(lambda: "reload" in h2_proxy.logs_text(), 5)
    c2 = h2(h2_proxy)
    assert c2.get(origin, "/new").status == 200
    assert r.read(lambda: r.closed, 10), "the drained connection stayed open"


# ---------------------------------------------------------------------------
# access log and metrics


def test_access_log_json_version_http2(h2_proxy_factory, origin, h2):
    p = h2_proxy_factory(ini_extra={"log": {"access_format": "json"}})
    c = h2(p)
    assert c.get(origin, "/logged").status == 200
    line = wait_for(lambda: [l for l in p.read_access_log() if "/logged" in l], 3)
    assert line, p.read_access_log()
    e = json.loads(line[0])
    assert e["version"] == "HTTP/2", e
    assert e["method"] == "GET" and e["status"] == 200
    assert e["target"] == origin.url("/logged"), e


def test_access_log_combined_version_http2(h2_proxy_factory, origin, h2):
    p = h2_proxy_factory(ini_extra={"log": {"access_format": "combined"}})
    c = h2(p)
    assert c.get(origin, "/combined").status == 200
    line = wait_for(lambda: [l for l in p.read_access_log() if "/combined" in l], 3)
    assert line, p.read_access_log()
    assert '"GET %s HTTP/2" 200 ' % origin.url("/combined") in line[0], line[0]


def test_access_log_native_same_columns(h2_proxy, origin, h2):
    c = h2(h2_proxy)
    assert c.get(origin, "/native").status == 200
    e = h2_proxy.wait_access(lambda e: e.get("target") == origin.url("/native"))
    assert e is not None, h2_proxy.read_access_log()
    assert e["_nfields"] == 12 and e["method"] == "GET" and e["status"] == "200", e


def test_access_log_connect_stream(h2_proxy_factory, origin, h2):
    origin.handler = echo_handler
    p = h2_proxy_factory(ini_extra={"log": {"access_format": "json"}})
    c = h2(p)
    sid = c.connect(origin.authority)
    assert c.wait_headers(sid).status == 200
    c.send_data(sid, b"12345", end_stream=True)
    assert c.wait_done(sid).body == b"12345"
    line = wait_for(lambda: [l for l in p.read_access_log() if '"CONNECT"' in l], 5)
    assert line, p.read_access_log()
    e = json.loads(line[0])
    assert e["version"] == "HTTP/2" and e["target"] == origin.authority and e["tunnel"] is True, e


def test_metrics_h2(h2_proxy, origin, h2):
    def slow(req):
        if req.target == "/slow":
            return [1.5, http_response(200, [], b"slow")]
        return http_response(200, [], b"ok")
    origin.responder = slow
    c = h2(h2_proxy)
    for i in range(3):
        assert c.get(origin, "/m%d" % i).status == 200
    sid = c.request("GET", origin.authority, "/slow")
    assert origin.wait_requests(4)
    m = metrics(h2_proxy)
    assert m.types.get("hopcache_h2_streams_total") == "counter"
    assert m.types.get("hopcache_h2_streams_active") == "gauge"
    assert m.types.get("hopcache_h2_connections_total") == "counter"
    assert m.get("hopcache_h2_connections_total") == 1, m.text
    assert m.get("hopcache_h2_streams_total") == 4, m.text
    assert m.get("hopcache_h2_streams_active") == 1, m.text
    assert c.wait_done(sid).status == 200
    time.sleep(0.2)
    m = metrics(h2_proxy)
    assert m.get("hopcache_h2_streams_active") == 0, m.text
    assert m.get("hopcache_requests_total", method="GET", code="200") == 4 + 1, \
        "4 HTTP/2 GETs and the first metrics scrape: %s" % m.text


# ---------------------------------------------------------------------------
# nghttp (nghttp2-client) as a second HTTP/2 client


def _nghttp(proxy, origin, path, *args):
    """nghttp on the proxy's TLS port, the request's :authority the origin's
    and :scheme http (what a forward proxy is asked for)."""
    if shutil.which("nghttp") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and nghttp is missing (apt-get install -y nghttp2-client)")
        pytest.skip("nghttp not installed (nghttp2-client)")
    cmd = ["nghttp", "-v", "-H", ":authority: %s" % origin.authority, "-H", ":scheme: http",
           *args, "https://localhost:%d%s" % (proxy.tls_port, path)]
    return subprocess.run(cmd, capture_output=True, timeout=20)


def test_nghttp_get_and_post(h2_proxy_factory, origin, tmp_path):
    """nghttp (nghttp2's own client) gets and posts through the HTTP/2 port:
    one h2 connection each, the origin answered, the access log says HTTP/2."""
    p = h2_proxy_factory(ini_extra={"log": {"access_format": "json"}})
    r = _nghttp(p, origin, "/ng/get")
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out[-2000:] + r.stderr.decode("utf-8", "replace")[-1000:]
    assert "(stream_id=13) :status: 200" in out, out[-2000:]
    assert "hello from origin: GET /ng/get" in out, out[-2000:]
    body = tmp_path / "post.bin"
    body.write_bytes(b"p" * 70000)
    r = _nghttp(p, origin, "/ng/post", "-d", str(body))
    assert r.returncode == 0, r.stdout.decode("utf-8", "replace")[-2000:]
    assert [q.target for q in origin.requests] == ["/ng/get", "/ng/post"], origin.requests
    assert origin.requests[1].method == "POST" and origin.requests[1].body == b"p" * 70000
    lines = [json.loads(x) for x in p.read_access_log()]
    assert [(e["method"], e["version"], e["status"]) for e in lines] == \
        [("GET", "HTTP/2", 200), ("POST", "HTTP/2", 200)], lines
    m = metrics(p)
    assert m.get("hopcache_h2_connections_total") == 2, m.text
