"""PROXY protocol on receive (issue 12): `[proxy] proxy_protocol` lists the
load balancers whose connections start with HAProxy's PROXY header (v1 text
or v2 binary, proxy-protocol.txt).

A listed sender's header gives the connection its client address: the
access log's client field, X-Forwarded-For / Forwarded, `[rule.NAME] src`,
`[admin] allow`, `[cache] purge_allow` and the `[auth]` failure limiter all
see the header's source. v2 LOCAL and v1 UNKNOWN keep the peer's address.
A listed sender that sends no valid header (plain HTTP, a malformed or
truncated header, nothing complete within `[limits] header_timeout`) is
closed without a response and logged in the error log; an unlisted client
that starts with a PROXY header gets 400 with Proxy-Status naming the key.
On the HTTPS proxy port the header comes before the TLS handshake.

Every header is built here byte by byte (v1/v2 helpers below); the clients
are raw sockets, some bound to other 127/8 source addresses."""

import re
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import BINARY
from helpers import (Client, Reader, client_tls_context, echo_handler, http_response, read_response,
                     wait_for)

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
LOCAL, PROXY = 0x20, 0x21            # ver_cmd: version 2, command LOCAL / PROXY
TCP4, TCP6, UNSPEC = 0x11, 0x21, 0x00

DETAILS = 'details="a PROXY protocol header from an address not in [proxy] proxy_protocol"'


# ---------------------------------------------------------------------------
# headers


def v1(src, dst="127.0.0.1", sport=40001, dport=3128, proto=None):
    """A v1 line: "PROXY TCP4|TCP6 src dst sport dport\\r\\n"."""
    if proto is None:
        proto = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (proto, src, dst, sport, dport)).encode("ascii")


def v2(src=None, dst=None, sport=40001, dport=3128, cmd=PROXY, fam=None, tlvs=b"", length=None,
       sig=V2_SIG):
    """A v2 header; fam defaults from the src family (UNSPEC without src);
    tlvs are appended after the address block; length overrides the len
    field (for malformed headers)."""
    if fam is None:
        fam = UNSPEC if src is None else (TCP6 if ":" in src else TCP4)
    if fam == TCP4:
        block = (socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst or "127.0.0.1")
                 + struct.pack("!HH", sport, dport))
    elif fam == TCP6:
        block = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst or "::1")
                 + struct.pack("!HH", sport, dport))
    else:
        block = b""
    body = block + tlvs
    n = len(body) if length is None else length
    return sig + bytes([cmd, fam]) + struct.pack("!H", n) + body


def tlv(typ, value):
    return struct.pack("!BH", typ, len(value)) + value


def pp_client(port, header=b"", source=None, timeout=5.0):
    """A Client on a new connection to 127.0.0.1:port (from `source`, a
    127/8 address, when given) that has sent `header` first."""
    c = Client.__new__(Client)
    c.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                      source_address=(source, 0) if source else None)
    c.reader = Reader(c.sock, timeout)
    c.timeout = timeout
    if header:
        c.send(header)
    return c


def get_bytes(url, extra=()):
    host = url.split("/")[2]
    out = "GET %s HTTP/1.1\r\nHost: %s\r\n" % (url, host)
    for k, v in extra:
        out += "%s: %s\r\n" % (k, v)
    return (out + "\r\n").encode("latin-1")


def pp_get(port, header, url, extra=(), source=None):
    """header + GET url in one send on a new connection; the response."""
    with pp_client(port, source=source) as c:
        c.send(header + get_bytes(url, extra))
        return c.read_response()


def trusting(extra=None, addrs="127.0.0.1"):
    """ini_extra with [proxy] proxy_protocol = addrs (and `extra` merged)."""
    ini = {"proxy": {"proxy_protocol": addrs}}
    for sec, kv in (extra or {}).items():
        ini.setdefault(sec, {}).update(kv)
    return ini


def client_of(proxy, target_part, method="GET"):
    e = proxy.wait_access(lambda e: target_part in e.get("target", "") and e.get("method") == method)
    assert e is not None, "no access-log line for %s %r: %r" % (method, target_part, proxy.read_access_log())
    assert e["_nfields"] == 12, e["_line"]
    return e["client"]


def refusal_line(proxy, why, peer="127.0.0.1", timeout=3.0):
    want = "PROXY protocol header from %s refused: %s; connection closed" % (peer, why)
    assert wait_for(lambda: want in proxy.error_log_text(), timeout), \
        "no %r in the error log:\n%s" % (want, proxy.error_log_text()[-2000:])


def assert_closed_silently(c, timeout=3.0):
    closed, data = c.wait_closed(timeout)
    assert closed, "the connection stayed open"
    assert data == b"", "bytes were sent back: %r" % data[:300]


def nothing_forwarded(origin, settle=0.3):
    time.sleep(settle)
    return len(origin.conns) == 0 and origin.requests == []


# ---------------------------------------------------------------------------
# 1, 2: the header's address is the client's


@pytest.mark.parametrize("src", ["203.0.113.7", "2001:db8::7"], ids=["TCP4", "TCP6"])
def test_v1_header_gives_the_client_address(proxy_factory, origin, src):
    p = proxy_factory(trusting({"proxy": {"x_forwarded_for": "yes", "forwarded": "yes"}}))
    dst = "::1" if ":" in src else "127.0.0.1"
    r = pp_get(p.port, v1(src, dst, 51234, p.port), origin.url("/v1"))
    assert r.status == 200, r
    assert r.body == b"hello from origin: GET /v1"
    assert client_of(p, "/v1") == src
    q = origin.requests[0]
    assert q.get_all("x-forwarded-for") == [src], q.headers
    want_fwd = 'for="[%s]"' % src if ":" in src else "for=%s" % src
    assert q.get_all("forwarded") == [want_fwd], q.headers
    assert b"PROXY" not in origin.conns[0].received, "the header reached the origin"


@pytest.mark.parametrize("src,tlvs", [
    ("198.51.100.20", b""),
    ("2001:db8:1::20", b""),
    # ALPN, authority, a unique id, NOOP, and an SSL TLV with a sub-TLV: values are skipped
    ("198.51.100.21", tlv(0x01, b"http/1.1") + tlv(0x02, b"www.example") + tlv(0x05, b"u" * 128)
     + tlv(0x04, b"\x00" * 7) + tlv(0x20, b"\x01\x00\x00\x00\x00" + tlv(0x21, b"TLSv1.3"))),
], ids=["TCP4", "TCP6", "TCP4+TLVs"])
def test_v2_header_gives_the_client_address(proxy_factory, origin, src, tlvs):
    p = proxy_factory(trusting({"proxy": {"x_forwarded_for": "yes"}}))
    r = pp_get(p.port, v2(src, tlvs=tlvs), origin.url("/v2"))
    assert r.status == 200, r
    assert client_of(p, "/v2") == src
    assert origin.requests[0].get_all("x-forwarded-for") == [src]
    # the request arrived intact: the header's bytes, TLVs included, were taken exactly
    assert origin.requests[0].start_line == b"GET /v2 HTTP/1.1"


@pytest.mark.parametrize("header", [
    v2(cmd=LOCAL),
    v2("203.0.113.9", cmd=LOCAL),              # LOCAL: the address block is ignored
    v2(fam=0x31, cmd=PROXY, tlvs=b"\x00" * 216),  # UNIX: not an IP client
    b"PROXY UNKNOWN\r\n",
    b"PROXY UNKNOWN TCP4 203.0.113.9 127.0.0.1 1 2\r\n",
], ids=["v2-LOCAL", "v2-LOCAL-with-addresses", "v2-UNIX-stream", "v1-UNKNOWN", "v1-UNKNOWN-with-rest"])
def test_local_and_unknown_keep_the_peer_address(proxy_factory, origin, header):
    p = proxy_factory(trusting({"proxy": {"x_forwarded_for": "yes"}}))
    r = pp_get(p.port, header, origin.url("/local"))
    assert r.status == 200, r
    assert client_of(p, "/local") == "127.0.0.1"
    assert origin.requests[0].get_all("x-forwarded-for") == ["127.0.0.1"]


def test_header_bytes_trickled_one_at_a_time(proxy_factory, origin):
    """The header read takes what has come so far and waits for the rest."""
    p = proxy_factory(trusting())
    hdr = v2("198.51.100.30", tlvs=tlv(0x02, b"example.test"))
    with pp_client(p.port) as c:
        for b in hdr:
            c.send(bytes([b]))
            time.sleep(0.005)
        c.send(get_bytes(origin.url("/trickle")))
        r = c.read_response()
    assert r.status == 200, r
    assert client_of(p, "/trickle") == "198.51.100.30"


def test_v1_line_of_107_bytes_accepted(proxy_factory, origin):
    line = b"PROXY UNKNOWN " + b"x" * (107 - 16) + b"\r\n"
    assert len(line) == 107
    p = proxy_factory(trusting())
    r = pp_get(p.port, line, origin.url("/v1max"))
    assert r.status == 200, r


def test_v2_header_of_4096_bytes_accepted(proxy_factory, origin):
    hdr = v2("198.51.100.31", tlvs=tlv(0x04, b"\x00" * (4096 - 16 - 12 - 3)))
    assert len(hdr) == 4096
    p = proxy_factory(trusting())
    r = pp_get(p.port, hdr, origin.url("/v2max"))
    assert r.status == 200, r
    assert client_of(p, "/v2max") == "198.51.100.31"


def test_keep_alive_requests_keep_the_header_address(proxy_factory, origin):
    p = proxy_factory(trusting())
    with pp_client(p.port, v1("203.0.113.40")) as c:
        for i in range(3):
            r = c.exchange("GET", origin.url("/ka%d" % i), [("Host", origin.authority)])
            assert r.status == 200, (i, r)
    for i in range(3):
        assert client_of(p, "/ka%d" % i) == "203.0.113.40"
    assert len(origin.requests) == 3


# ---------------------------------------------------------------------------
# 3, 4: src rules, [admin] allow, [cache] purge_allow, the auth limiter


def test_src_rule_uses_the_header_address(proxy_factory, origin):
    p = proxy_factory(trusting({"acl": {"rules": "block"},
                                "rule.block": {"src": "203.0.113.0/24", "action": "deny"}}))
    r = pp_get(p.port, v1("203.0.113.7"), origin.url("/blocked"))
    assert r.status == 403, r
    assert 'details="denied by rule block"' in r.joined("proxy-status"), r.headers
    assert b"denied by rule block" in r.body
    e = p.wait_access(lambda e: e.get("target", "").endswith("/blocked"))
    assert e and e["client"] == "203.0.113.7" and e["rule"] == "block" and e["status"] == "403", e
    assert nothing_forwarded(origin)
    r = pp_get(p.port, v2("198.51.100.9"), origin.url("/allowed"))
    assert r.status == 200, r
    e = p.wait_access(lambda e: e.get("target", "").endswith("/allowed"))
    assert e and e["client"] == "198.51.100.9" and e["rule"] == "default", e
    assert [q.target for q in origin.requests] == ["/allowed"]


def test_src_rule_does_not_match_the_balancer(proxy_factory, origin):
    """A rule on the balancer's own address no longer matches its clients."""
    p = proxy_factory(trusting({"acl": {"rules": "lo"},
                                "rule.lo": {"src": "127.0.0.1/32", "action": "deny"}}))
    r = pp_get(p.port, v1("198.51.100.10"), origin.url("/not-lo"))
    assert r.status == 200, r
    r = pp_get(p.port, v2(cmd=LOCAL), origin.url("/lo"))
    assert r.status == 403, r
    assert 'details="denied by rule lo"' in r.joined("proxy-status")


def admin_status(port, header):
    with pp_client(port, header) as c:
        return c.exchange("GET", "/hopcache/status", [("Host", "127.0.0.1:%d" % port)])


def test_admin_allow_follows_the_header_address(proxy_factory):
    p = proxy_factory(trusting())  # [admin] allow: the default 127.0.0.1, ::1
    r = admin_status(p.port, v1("127.0.0.1"))
    assert r.status == 200, r
    assert r.body.startswith(b"{"), r.body[:200]
    r = admin_status(p.port, v1("203.0.113.7"))
    assert r.status == 403, r
    assert b"workers" not in r.body
    r = admin_status(p.port, v2("::1"))
    assert r.status == 200, r
    # a listed range, given by the header only
    p2 = proxy_factory(trusting({"admin": {"allow": "198.51.100.0/24"}}))
    assert admin_status(p2.port, v2("198.51.100.77")).status == 200
    assert admin_status(p2.port, v2(cmd=LOCAL)).status == 403, "the balancer's own address is not listed"


def test_purge_allow_follows_the_header_address(cache_proxy_factory, origin):
    p = cache_proxy_factory(cache={"purge_allow": "198.51.100.0/24"}, ini_extra=trusting())
    origin.responder = lambda req: http_response(200, [("Cache-Control", "max-age=300")], b"stored")
    url = origin.url("/purge/pp")
    assert pp_get(p.port, v1("203.0.113.1"), url).status == 200
    r = pp_get(p.port, v1("203.0.113.2"), url)
    assert r.get_all("cache-status")[0].startswith("hopcache; hit"), r.headers
    with pp_client(p.port, v1("203.0.113.7")) as c:
        r = c.exchange("PURGE", url, [("Host", origin.authority)])
    assert r.status == 403, r
    with pp_client(p.port, v2(cmd=LOCAL)) as c:
        r = c.exchange("PURGE", url, [("Host", origin.authority)])
    assert r.status == 403, "127.0.0.1 (the balancer) is not in purge_allow: %r" % r
    with pp_client(p.port, v2("198.51.100.5")) as c:
        r = c.exchange("PURGE", url, [("Host", origin.authority)])
    assert r.status == 200, r
    with pp_client(p.port, v2("198.51.100.5")) as c:
        r = c.exchange("PURGE", url, [("Host", origin.authority)])
    assert r.status == 404, "the first PURGE removed the entry: %r" % r
    assert [q.method for q in origin.requests] == ["GET"]


def test_auth_failure_limit_counts_per_header_address(proxy_factory, origin):
    import base64
    import os
    htpasswd = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "auth", "htpasswd")

    def creds(pw):
        return "Basic " + base64.b64encode(("erin:" + pw).encode()).decode()
    p = proxy_factory(trusting({"auth": {"scheme": "basic", "htpasswd": htpasswd,
                                         "max_failures": "2", "failure_window": "30"}}))
    for i in range(4):
        r = pp_get(p.port, v1("203.0.113.50"), origin.url("/guess"), [("Proxy-Authorization", creds("g%d" % i))])
        want = 407 if i < 2 else 429  # more than max_failures failures: refused unchecked
        assert r.status == want, (i, r)
    r = pp_get(p.port, v1("203.0.113.50"), origin.url("/locked"), [("Proxy-Authorization", creds("Erin-sha1-q8z"))])
    assert r.status == 429, "203.0.113.50 failed 4 times (max_failures=2): %r" % r
    r = pp_get(p.port, v1("203.0.113.51"), origin.url("/other"), [("Proxy-Authorization", creds("Erin-sha1-q8z"))])
    assert r.status == 200, "another header address shares the balancer's connection address: %r" % r
    r = pp_get(p.port, v2(cmd=LOCAL), origin.url("/balancer"), [("Proxy-Authorization", creds("Erin-sha1-q8z"))])
    assert r.status == 200, "the balancer itself (LOCAL) never failed: %r" % r
    assert sorted(q.target for q in origin.requests) == ["/balancer", "/other"]


# ---------------------------------------------------------------------------
# 5, 6, 7: a listed sender without a valid header is closed


def test_plain_http_from_a_listed_address_is_closed(proxy_factory, origin):
    p = proxy_factory(trusting())
    with pp_client(p.port) as c:
        c.send(get_bytes(origin.url("/plain")))
        assert_closed_silently(c)
    refusal_line(p, "not a PROXY protocol header")
    assert nothing_forwarded(origin)
    assert p.read_access_log() == [], "a refused header is not a request"


def _v1_too_long():
    return b"PROXY UNKNOWN " + b"x" * 100 + b"\r\n"


MALFORMED = [
    # (id, bytes, half-close after sending, reason logged)
    ("truncated-v1", b"PROXY TCP4 203.0.113.7 127.0.0.1 ", True, "closed within the header"),
    ("truncated-v2", v2("203.0.113.7")[:20], True, "closed within the header"),
    ("v2-signature-byte", V2_SIG[:6] + b"X" + V2_SIG[7:] + bytes([PROXY, TCP4, 0, 12]) + b"\x00" * 12, False,
     "not a PROXY protocol header"),
    ("v2-tlv-longer-than-header", v2("203.0.113.7", tlvs=b"\x04\x00\x10" + b"\x00" * 2), False,
     "v2 TLV longer than the header"),
    ("v2-address-block-longer-than-header", v2("203.0.113.7", length=8), False,
     "v2 address block longer than the header"),
    ("v2-version-1", b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x11, TCP4, 0, 12]) + b"\x00" * 12, False,
     "v2 version is not 2"),
    ("v2-over-4096", v2("203.0.113.7", length=4081), False, "v2 header longer than 4096 bytes"),
    ("v1-line-over-107", _v1_too_long(), False, "v1 line longer than 107 bytes"),
    ("v1-bad-address", b"PROXY TCP4 203.0.113.300 127.0.0.1 1 2\r\n", False,
     "v1 TCP4 address is not a dotted-quad IPv4 address"),
    ("v1-port-leading-zero", b"PROXY TCP4 203.0.113.3 127.0.0.1 01 2\r\n", False, "v1 port has a leading zero"),
    ("v1-lowercase", b"proxy TCP4 203.0.113.3 127.0.0.1 1 2\r\n", False, "not a PROXY protocol header"),
]


@pytest.mark.parametrize("data,half_close,why", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_header_closes_the_connection(proxy_factory, origin, data, half_close, why):
    p = proxy_factory(trusting())
    with pp_client(p.port) as c:
        c.send(data)
        if half_close:
            c.shutdown_write()
        else:
            # a request after the bad header must never be read as one
            try:
                c.send(get_bytes(origin.url("/after-bad-header")))
            except OSError:
                pass
        assert_closed_silently(c)
    refusal_line(p, why)
    assert nothing_forwarded(origin)
    assert p.read_access_log() == []
    # the worker goes on serving
    assert pp_get(p.port, v1("203.0.113.8"), origin.url("/next")).status == 200


def test_header_timeout(proxy_factory, origin):
    p = proxy_factory(trusting({"limits": {"header_timeout": "1"}}))
    with pp_client(p.port, b"PROXY TCP4 203.0.") as c:
        t0 = time.monotonic()
        closed, data = c.wait_closed(4.0)
        took = time.monotonic() - t0
    assert closed, "a half header was kept open past header_timeout"
    assert data == b""
    assert took < 4.0
    refusal_line(p, "no complete header within [limits] header_timeout")
    assert nothing_forwarded(origin, 0)


def test_header_timeout_is_a_deadline_not_an_idle_limit(proxy_factory, origin):
    """A sender trickling a header byte every 0.3 s is still closed once
    header_timeout (1 s) has passed since the connection was accepted."""
    p = proxy_factory(trusting({"limits": {"header_timeout": "1"}}))
    hdr = b"PROXY UNKNOWN " + b"x" * 80
    with pp_client(p.port) as c:
        t0 = time.monotonic()
        closed = False
        for b in hdr:
            try:
                c.send(bytes([b]))
            except OSError:
                closed = True
                break
            done, data = c.wait_closed(0.3)
            if done:
                assert data == b""
                closed = True
                break
        took = time.monotonic() - t0
    assert closed, "a trickled header outlived header_timeout (%.1fs)" % took
    assert took < 3.0, took
    refusal_line(p, "no complete header within [limits] header_timeout")


def test_connect_and_close_without_bytes_is_quiet(proxy_factory, origin):
    """A connection that closes before any byte (a TCP health check) is
    logged at debug only, not as a refused header."""
    p = proxy_factory(trusting())
    pp_client(p.port).close()
    time.sleep(0.3)
    assert "refused" not in p.error_log_text()
    assert pp_get(p.port, v1("203.0.113.8"), origin.url("/after-probe")).status == 200


# ---------------------------------------------------------------------------
# 8: an address not listed


@pytest.mark.parametrize("header", [v1("203.0.113.7"), v2("203.0.113.7"), v2(cmd=LOCAL)], ids=["v1", "v2", "v2-LOCAL"])
def test_header_from_an_unlisted_address_is_400(proxy_factory, origin, header):
    p = proxy_factory(trusting(addrs="127.0.0.2"))
    with pp_client(p.port) as c:
        c.send(header + get_bytes(origin.url("/unlisted")))
        r = c.read_response()
        assert r.status == 400, r
        ps = r.joined("proxy-status")
        assert "error=http_request_error" in ps and DETAILS in ps, ps
        closed, _ = c.wait_closed(3.0)
        assert closed, "the connection stays open after the 400"
    e = p.wait_access(lambda e: e.get("status") == "400")
    assert e is not None, p.read_access_log()
    assert e["client"] == "127.0.0.1", e
    assert nothing_forwarded(origin)


@pytest.mark.parametrize("header", [v1("2001:db8::7"), b"PROXY UNKNOWN\r\n", v2("2001:db8::7")],
                         ids=["v1-TCP6", "v1-UNKNOWN", "v2-TCP6"])
def test_unlisted_header_alone_is_400_at_once(proxy_factory, origin, header):
    """The header alone (the request not sent yet) is already answered."""
    p = proxy_factory(trusting(addrs="127.0.0.2"))
    with pp_client(p.port, header) as c:
        r = c.read_response(timeout=3)
    assert r.status == 400 and DETAILS in r.joined("proxy-status"), r
    assert nothing_forwarded(origin, 0)


def test_header_from_no_list_is_400(proxy, origin):
    """Without proxy_protocol (the default) every header is an unlisted one."""
    with pp_client(proxy.port) as c:
        c.send(v1("203.0.113.7") + get_bytes(origin.url("/none")))
        r = c.read_response()
    assert r.status == 400 and DETAILS in r.joined("proxy-status"), r
    assert nothing_forwarded(origin)
    assert proxy.wait_access(lambda e: e.get("status") == "400" and e.get("client") == "127.0.0.1")


def test_listed_source_address_works_unlisted_does_not(proxy_factory, origin):
    p = proxy_factory(trusting(addrs="127.0.0.2"))
    try:
        c = pp_client(p.port, source="127.0.0.2")
    except OSError as e:
        pytest.skip("cannot bind loopback source 127.0.0.2: %s" % e)
    with c:
        c.send(v1("203.0.113.60") + get_bytes(origin.url("/listed")))
        r = c.read_response()
    assert r.status == 200, r
    assert client_of(p, "/listed") == "203.0.113.60"
    # 127.0.0.1 without a header: a plain client as ever
    with pp_client(p.port) as c:
        r = c.exchange("GET", origin.url("/plain"), [("Host", origin.authority)])
    assert r.status == 200, r
    assert client_of(p, "/plain") == "127.0.0.1"
    # 127.0.0.2 without a header: closed
    with pp_client(p.port, source="127.0.0.2") as c:
        c.send(get_bytes(origin.url("/no-header")))
        assert_closed_silently(c)
    refusal_line(p, "not a PROXY protocol header", peer="127.0.0.2")
    assert [q.target for q in origin.requests] == ["/listed", "/plain"]


# ---------------------------------------------------------------------------
# 9: the HTTPS proxy port


def _tls_proxy(proxy_factory, tls_cert, extra=None):
    ini = trusting(extra)
    ini["tls"] = {"listen": "127.0.0.1:0", "certificate": tls_cert[0], "private_key": tls_cert[1]}
    p = proxy_factory(ini)
    assert p.tls_port
    return p


def test_https_port_header_before_the_handshake(proxy_factory, origin, tls_cert):
    p = _tls_proxy(proxy_factory, tls_cert, {"proxy": {"x_forwarded_for": "yes"}})
    raw = socket.create_connection(("127.0.0.1", p.tls_port), timeout=5)
    try:
        raw.sendall(v2("198.51.100.90", dport=p.tls_port))
        s = client_tls_context(tls_cert[0]).wrap_socket(raw, server_hostname="localhost")
        s.sendall(get_bytes(origin.url("/over-tls")))
        r = read_response(Reader(s))
        s.close()
    finally:
        raw.close()
    assert r.status == 200, r
    assert client_of(p, "/over-tls") == "198.51.100.90"
    assert origin.requests[0].get_all("x-forwarded-for") == ["198.51.100.90"]


def test_https_port_handshake_without_header_is_closed(proxy_factory, origin, tls_cert):
    p = _tls_proxy(proxy_factory, tls_cert)
    raw = socket.create_connection(("127.0.0.1", p.tls_port), timeout=5)
    with pytest.raises((OSError, ConnectionError)):
        # ssl.SSLError is an OSError: the proxy closes on the ClientHello
        s = client_tls_context(tls_cert[0]).wrap_socket(raw, server_hostname="localhost")
        s.sendall(get_bytes(origin.url("/no-header-tls")))
        read_response(Reader(s))
    raw.close()
    refusal_line(p, "not a PROXY protocol header")
    assert nothing_forwarded(origin)


# ---------------------------------------------------------------------------
# 10, 11: CONNECT and pipelining after the header


def test_connect_after_the_header(proxy_factory, origin_factory):
    echo = origin_factory()
    echo.handler = echo_handler
    p = proxy_factory(trusting())
    with pp_client(p.port) as c:
        c.send(v1("203.0.113.70") + ("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n"
                                     % (echo.authority, echo.authority)).encode())
        r = c.read_response("CONNECT")
        assert r.status == 200, r
        c.send(b"ping through the tunnel")
        assert c.reader.read_exact(23) == b"ping through the tunnel"
    e = p.wait_access(lambda e: e.get("method") == "CONNECT")
    assert e is not None, p.read_access_log()
    assert e["client"] == "203.0.113.70" and e["target"] == echo.authority and e["status"] == "200", e


def test_pipelined_requests_in_the_header_send(proxy_factory, origin):
    p = proxy_factory(trusting())
    with pp_client(p.port) as c:
        c.send(v2("198.51.100.80") + get_bytes(origin.url("/pipe1")) + get_bytes(origin.url("/pipe2")))
        r1 = c.read_response()
        r2 = c.read_response()
    assert (r1.status, r1.body) == (200, b"hello from origin: GET /pipe1"), r1
    assert (r2.status, r2.body) == (200, b"hello from origin: GET /pipe2"), r2
    assert [q.target for q in origin.requests] == ["/pipe1", "/pipe2"]
    assert client_of(p, "/pipe1") == client_of(p, "/pipe2") == "198.51.100.80"


def test_many_header_connections_at_once(proxy_factory, origin):
    """Connections waiting for their header do not block each other: ten
    half headers are pending while a complete one is served."""
    p = proxy_factory(trusting())
    waiting = [pp_client(p.port, b"PROXY TCP4 ") for _ in range(10)]
    try:
        r = pp_get(p.port, v1("203.0.113.99"), origin.url("/while-waiting"))
        assert r.status == 200, r
        for i, c in enumerate(waiting):
            c.send(("203.0.113.%d 127.0.0.1 1 2\r\n" % (i + 1)).encode() + get_bytes(origin.url("/w%d" % i)))
        for i, c in enumerate(waiting):
            assert c.read_response().status == 200, i
    finally:
        for c in waiting:
            c.close()
    for i in range(10):
        assert client_of(p, "/w%d" % i) == "203.0.113.%d" % (i + 1)


# ---------------------------------------------------------------------------
# reload


def test_reload_keeps_a_connection_whose_header_is_on_its_way(proxy_factory, origin):
    """SIGHUP while a balancer's connection has sent half its header: the
    old worker finishes it (header, then the request, answered with
    Connection: close), as it finishes a plain client's half request head;
    a connection accepted just before the reload, whose header has not come
    yet, gets the same moment as an idle keep-alive client."""
    p = proxy_factory(trusting({"limits": {"drain_timeout": "10"}, "log": {"level": "debug"}}))
    p.wait_workers(1)
    half = pp_client(p.port, b"PROXY TCP4 203.0.113.")
    fresh = pp_client(p.port)
    silent = pp_client(p.port)
    try:
        time.sleep(0.2)  # all accepted by the first generation
        p.signal(signal.SIGHUP)
        # the old worker has begun its drain
        assert wait_for(lambda: re.search(r"worker\[\d+\]: reload: draining", p.logs_text()), 5), p.logs_text()
        for c, rest, path in ((half, b"11 127.0.0.1 1 2\r\n", "/half"),
                              (fresh, v1("203.0.113.12"), "/fresh")):
            try:
                c.send(rest + get_bytes(origin.url(path)))
                r = c.read_response()
            except (EOFError, OSError) as e:
                raise AssertionError("the reload closed the connection %s waiting for its header: %r; log:\n%s"
                                     % (path, e, p.logs_text()[-2000:]))
            assert r.status == 200, (path, r)
            assert "close" in r.tokens("connection"), (path, r.headers)
        # one that never sends its header is closed when the grace is over,
        # as an idle connection, and the old generation finishes
        assert_closed_silently(silent, 4.0)
    finally:
        half.close()
        fresh.close()
        silent.close()
    assert wait_for(lambda: "generation 1 finished" in p.logs_text(), 5), p.logs_text()[-2000:]
    assert "refused" not in p.error_log_text()
    assert client_of(p, "/half") == "203.0.113.11"
    assert client_of(p, "/fresh") == "203.0.113.12"


def test_sigterm_finishes_a_header_in_progress(proxy_factory, origin):
    """SIGTERM: a connection that has sent part of its header is busy, like
    a plain client with half a request head: it gets its answer (then the
    worker exits); one that sent nothing yet is closed at once."""
    p = proxy_factory(trusting({"limits": {"shutdown_timeout": "5"}}))
    p.wait_workers(1)
    half = pp_client(p.port, b"PROXY TCP4 203.0.113.")
    fresh = pp_client(p.port)
    try:
        time.sleep(0.2)
        p.signal(signal.SIGTERM)
        assert_closed_silently(fresh)
        try:
            half.send(b"13 127.0.0.1 1 2\r\n" + get_bytes(origin.url("/term")))
            r = half.read_response()
        except (EOFError, OSError) as e:
            raise AssertionError("SIGTERM cut a header in progress: %r; log:\n%s" % (e, p.logs_text()[-2000:]))
        assert r.status == 200, r
        assert "close" in r.tokens("connection"), r.headers
    finally:
        half.close()
        fresh.close()
    assert p.proc.wait(5) == 0
    assert client_of(p, "/term") == "203.0.113.13"


# ---------------------------------------------------------------------------
# the key


@pytest.mark.parametrize("value", ["10.0.0.0/33", "balancer.example", "10.0.0.5 garbage"])
def test_config_check_refuses_a_bad_value(tmp_path, value):
    ini = tmp_path / "bad.ini"
    ini.write_text("[proxy]\nproxy_protocol = %s\n" % value)
    r = subprocess.run([BINARY, "-t", "-c", str(ini)], capture_output=True, timeout=15, stdin=subprocess.DEVNULL)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "[proxy] proxy_protocol" in r.stderr.decode(), r.stderr


def test_print_config_shows_the_list(tmp_path):
    ini = tmp_path / "ok.ini"
    ini.write_text("[proxy]\nproxy_protocol = 10.0.0.5, 192.0.2.0/24 ,::1\n")
    r = subprocess.run([BINARY, "--print-config", "-c", str(ini)], capture_output=True, timeout=15,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.decode().splitlines() if l.startswith("proxy_protocol")]
    assert lines == ["proxy_protocol = 10.0.0.5, 192.0.2.0/24, ::1"], r.stdout.decode()


def test_metrics_count_headers_read_and_refused(proxy_factory, origin):
    """hopcache_proxy_protocol_headers_total: a header read (ok), a malformed
    one (refused); the metrics are fetched with a v2 LOCAL header, itself
    counted as read."""
    p = proxy_factory(trusting())
    assert pp_get(p.port, v1("203.0.113.7"), origin.url("/m")).status == 200
    with pp_client(p.port, b"PROXY TCP4 1.2.3.4\r\n") as c:
        assert_closed_silently(c)
    refusal_line(p, "v1 line has fewer than 4 fields after the protocol")

    def scrape():
        with pp_client(p.port, v2(cmd=LOCAL)) as c:
            r = c.exchange("GET", "/hopcache/metrics", [("Host", "127.0.0.1:%d" % p.port)])
            assert r.status == 200, r
            return r.body.decode("utf-8")
    text = scrape()
    assert 'hopcache_proxy_protocol_headers_total{result="ok"} 2\n' in text, text
    assert 'hopcache_proxy_protocol_headers_total{result="refused"} 1\n' in text, text
