"""TLS (issue 5). The HTTPS proxy port ([tls] listen): curl and Python ssl
clients, keep-alive and pipelining, CONNECT (TLS inside TLS), proxy auth,
certificate chains, protocols/ciphers/ALPN, clients that do not speak TLS,
the handshake timeout, SIGHUP certificate reload and `-t` errors. Upstream
TLS for absolute-form https:// requests: SNI, verification (ca_file,
ca_path, the system store, verify = no, hostname and IP checks), the 502s
with Proxy-Status tls_certificate_error / tls_protocol_error, pooling,
session resumption, and caching under the https:// URI.

Every certificate comes from a throwaway CA made once per session with the
openssl CLI (helpers.make_ca / make_leaf); nothing leaves 127.0.0.0/8."""

import base64
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import types

import pytest

from conftest import BINARY
from helpers import (Client, Origin, Reader, cert_info, fetch, http_response, make_ca, make_leaf,
                     server_tls_context, tls_client, wait_for)
from helpers import curl as _curl_cmd

HTPASSWD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "auth", "htpasswd")
ALICE = ("alice", "Wonderland-7f3q")  # must match fixtures/auth/gen.sh


# ---------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The session's CA and a leaf for localhost + 127.0.0.1 (used by the
    proxy's TLS port and by the TLS origins)."""
    d = str(tmp_path_factory.mktemp("pki"))
    ca = make_ca(d)
    leaf = make_leaf(d, ca, names=("localhost",), ips=("127.0.0.1",), cn="localhost", tag="leaf")
    return types.SimpleNamespace(dir=d, ca=ca, leaf=leaf)


def client_ctx(cafile, alpn=None, max_version=None, min_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if max_version is not None:
        ctx.maximum_version = max_version
    if min_version is not None:
        ctx.minimum_version = min_version
    return ctx


@pytest.fixture
def tls_proxy_factory(proxy_factory, pki):
    """tls_proxy_factory(tls={key: value}, ini_extra=..., workers=1,
    start=True, cert=(cert, key)): a proxy with [tls] listen = 127.0.0.1:0
    and the session leaf (or `cert`) next to its plain port."""
    def make(tls=None, ini_extra=None, workers=1, start=True, cert=None):
        cert = cert or pki.leaf
        extra = {sec: dict(kv) for sec, kv in (ini_extra or {}).items()}
        sec = extra.setdefault("tls", {})
        base = {"listen": "127.0.0.1:0", "certificate": cert[0], "private_key": cert[1]}
        base.update(tls or {})
        for k, v in base.items():
            sec.setdefault(k, v)
        p = proxy_factory(extra, workers, start=start)
        if start:
            assert p.tls_port, "no 'listening for TLS on' port collected"
            assert p.tls_port != p.port
        return p
    return make


@pytest.fixture
def tls_proxy(tls_proxy_factory):
    return tls_proxy_factory()


@pytest.fixture
def https_origin_factory(pki):
    """https_origin_factory(cert=(cert, key), alpn=None, sniff=False,
    max_version=None): an Origin serving TLS on 127.0.0.1."""
    made = []

    def make(cert=None, alpn=None, sniff=False, max_version=None):
        ctx = server_tls_context(*(cert or pki.leaf), alpn=alpn)
        if max_version is not None:
            ctx.maximum_version = max_version
        o = Origin(tls_context=ctx, tls_sniff=sniff)
        made.append(o)
        return o
    yield make
    for o in made:
        o.stop()


@pytest.fixture
def https_origin(https_origin_factory):
    return https_origin_factory()


@pytest.fixture
def upstream_proxy(proxy_factory, fake_dns, tmp_path):
    """upstream_proxy(upstream={key: value}, ini_extra=..., factory=None): a
    proxy whose resolver is the fake DNS, which maps localhost to 127.0.0.1."""
    fake_dns.records["localhost"] = {"A": ["127.0.0.1"]}
    fake_dns.records["other.test"] = {"A": ["127.0.0.1"]}
    resolv = fake_dns.resolv_conf(str(tmp_path / "resolv.conf"))

    def make(upstream=None, ini_extra=None, factory=None, **kw):
        extra = {sec: dict(kv) for sec, kv in (ini_extra or {}).items()}
        up = extra.setdefault("upstream", {})
        up.setdefault("resolv_conf", resolv)
        for k, v in (upstream or {}).items():
            up[k] = v
        if factory is not None:
            return factory(ini_extra=extra, **kw)
        return proxy_factory(extra, **kw)
    return make


_CURL_HTTPS_PROXY = []


def need_curl_https_proxy():
    if not _CURL_HTTPS_PROXY:
        try:
            out = subprocess.run(["curl", "--help", "all"], capture_output=True, timeout=10).stdout
            ver = subprocess.run(["curl", "--version"], capture_output=True, timeout=10).stdout
            _CURL_HTTPS_PROXY.append(b"--proxy-cacert" in out and b"HTTPS-proxy" in ver)
        except (OSError, subprocess.TimeoutExpired):
            _CURL_HTTPS_PROXY.append(False)
    if not _CURL_HTTPS_PROXY[0]:
        pytest.skip("this curl cannot talk TLS to a proxy (no --proxy-cacert / HTTPS-proxy feature)")


@pytest.fixture
def curl_tls(tmp_path, pki):
    """curl through the proxy's TLS port, trusting the session CA for the proxy."""
    def run(proxy, url, *args, timeout=10):
        need_curl_https_proxy()
        return _curl_cmd(proxy.tls_port, url, "--proxy-cacert", pki.ca.cert, *args,
                         tmpdir=str(tmp_path), timeout=timeout, proxy_scheme="https")
    return run


def pem_der(path):
    """DER of the first certificate in a PEM file."""
    with open(path) as f:
        text = f.read()
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S)
    return ssl.PEM_cert_to_DER_cert(m.group(0))


def served_der(port, cafile, timeout=3.0):
    """The certificate the TLS port presents to a fresh connection (verified
    against cafile for 127.0.0.1)."""
    ctx = client_ctx(cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.getpeercert(binary_form=True)


def get_via(c, origin, path, headers=()):
    """GET origin.url(path) on client c (a Client or tls_client)."""
    return c.exchange("GET", origin.url(path), [("Host", origin.authority)] + list(headers))


def proxy_status(r):
    return r.get("Proxy-Status") or ""


def details(r):
    m = re.search(r'details="((?:[^"\\]|\\.)*)"', proxy_status(r))
    return m.group(1) if m else ""


def new_log_lines(p, mark):
    return p.logs_text()[mark:].splitlines()


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def raw_from(port, source_ip, timeout=5.0):
    """A plain TCP Client to 127.0.0.1:port from source_ip (any of 127/8)."""
    c = Client.__new__(Client)
    c.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source_ip, 0))
    c.reader = Reader(c.sock, timeout)
    c.timeout = timeout
    return c


# ---------------------------------------------------------------------------
# the TLS proxy port


def test_curl_https_proxy_plain_request(tls_proxy, origin, curl_tls):
    """1. curl --proxy https://127.0.0.1:TLSPORT http://origin/ -> 200."""
    r = curl_tls(tls_proxy, origin.url("/over-tls?x=1"))
    assert r.rc == 0, r
    assert r.status == 200, r
    assert r.body == b"hello from origin: GET /over-tls?x=1"
    req = origin.requests[0]
    assert req.target == "/over-tls?x=1"
    assert req.has("Via"), "a request over the TLS port is forwarded like one over the plain port"
    e = tls_proxy.wait_access(lambda e: e.get("target") == origin.url("/over-tls?x=1"))
    assert e and e["status"] == "200", tls_proxy.read_access_log()
    assert e["client"].startswith("127.0.0.1"), e
    # the plain port keeps working next to the TLS one
    with tls_proxy.client() as c:
        assert get_via(c, origin, "/plain").status == 200


def test_curl_connect_tls_inside_tls(upstream_proxy, tls_proxy_factory, https_origin, curl_tls, pki):
    """2. CONNECT through the TLS port to a TLS origin: TLS inside TLS."""
    p = upstream_proxy(factory=tls_proxy_factory)
    r = curl_tls(p, "https://localhost:%d/inner?y=2" % https_origin.port, "--cacert", pki.ca.cert)
    assert r.rc == 0, r
    assert r.status == 200, r
    assert r.body == b"hello from origin: GET /inner?y=2"
    assert any(b.startswith("HTTP/1.1 200") for b in r.blocks[:-1]), \
        "curl should have seen the CONNECT 200 first: %r" % r.blocks
    assert https_origin.conns[0].sni == "localhost", "the inner TLS is curl's, with its SNI"
    req = https_origin.requests[0]
    assert not req.has("Via"), "a tunnel must not touch the bytes inside it"
    e = p.wait_access(lambda e: e.get("method") == "CONNECT")
    assert e and e["outcome"] == "TUNNEL", p.read_access_log()


def test_python_connect_tls_inside_tls(tls_proxy, https_origin, pki):
    """CONNECT on a Python TLS connection to the proxy, then a second TLS
    session (SSLObject over memory BIOs) inside the first."""
    with tls_client(tls_proxy.tls_port, client_ctx(pki.ca.cert)) as c:
        c.send(("CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
                % (https_origin.port, https_origin.port)).encode())
        r = c.read_response("CONNECT")
        assert r.status == 200, r
        inner_in, inner_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        inner = client_ctx(pki.ca.cert).wrap_bio(inner_in, inner_out, server_hostname="127.0.0.1")
        deadline = time.monotonic() + 5

        def pump():
            out = inner_out.read()
            if out:
                c.send(out)

        def feed():
            data = c.reader.read_some(timeout=max(0.05, deadline - time.monotonic()))
            if not data:
                inner_in.write_eof()
            else:
                inner_in.write(data)

        while True:
            try:
                inner.do_handshake()
                break
            except ssl.SSLWantReadError:
                pump()
                feed()
            assert time.monotonic() < deadline, "inner handshake did not finish"
        pump()
        inner.write(b"GET /in-in HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        pump()
        got = b""
        while time.monotonic() < deadline:
            try:
                d = inner.read(65536)
                if not d:
                    break
                got += d
                if got.endswith(b"hello from origin: GET /in-in"):
                    break
            except ssl.SSLWantReadError:
                pump()
                feed()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
        assert got.startswith(b"HTTP/1.1 200"), got[:200]
        assert got.endswith(b"hello from origin: GET /in-in"), got[-200:]
    # the inner session is Python's client and server, both allowing TLS 1.3
    assert https_origin.conns[0].tls_version == "TLSv1.3"


@pytest.mark.parametrize("workers", [1, 2])
def test_keep_alive_and_pipelining_over_tls(tls_proxy_factory, origin, pki, workers):
    """3. Several requests on one TLS connection, then a pipelined batch;
    responses come back in order."""
    p = tls_proxy_factory(workers=workers)
    with tls_client(p.tls_port, client_ctx(pki.ca.cert)) as c:
        for i in range(4):
            r = get_via(c, origin, "/ka/%d" % i)
            assert r.status == 200, r
            assert r.body == ("hello from origin: GET /ka/%d" % i).encode()
            assert "close" not in r.tokens("Connection"), "the proxy closed a keep-alive TLS connection"
        batch = b"".join(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (origin.url("/pipe/%d" % i), origin.authority))
                         .encode() for i in range(5))
        c.send(batch)
        for i in range(5):
            r = c.read_response()
            assert r.status == 200, r
            assert r.body == ("hello from origin: GET /pipe/%d" % i).encode(), "responses out of order"
        # a large body over TLS as well (many records)
        big = os.urandom(300 * 1024)
        origin.responder = lambda req: http_response(200, [("Content-Type", "application/octet-stream")], big)
        r = get_via(c, origin, "/big")
        assert r.status == 200 and r.body == big
    assert [q.target for q in origin.requests] == \
        ["/ka/%d" % i for i in range(4)] + ["/pipe/%d" % i for i in range(5)] + ["/big"]


def test_proxy_auth_over_tls(upstream_proxy, tls_proxy_factory, origin, https_origin, pki, curl_tls):
    """4. 407 without credentials and 200 with them, for a plain request and
    for CONNECT, over the TLS port."""
    p = upstream_proxy(factory=tls_proxy_factory, ini_extra={"auth": {"scheme": "basic", "htpasswd": HTPASSWD}})
    ctx = client_ctx(pki.ca.cert)
    with tls_client(p.tls_port, ctx) as c:
        r = get_via(c, origin, "/secret")
    assert r.status == 407, r
    assert r.get_all("Proxy-Authenticate") and r.get("Proxy-Authenticate").startswith("Basic"), r.headers
    with tls_client(p.tls_port, ctx) as c:
        c.send(("CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
                % (https_origin.port, https_origin.port)).encode())
        r = c.read_response("CONNECT")
    assert r.status == 407, r
    time.sleep(0.1)
    assert not origin.requests and not https_origin.conns, "an unauthenticated client reached an origin"
    with tls_client(p.tls_port, ctx) as c:
        r = get_via(c, origin, "/secret", [("Proxy-Authorization", basic(*ALICE))])
    assert r.status == 200, r
    assert not origin.requests[0].has("Proxy-Authorization"), "credentials forwarded to the origin"

    r = curl_tls(p, origin.url("/curl-noauth"))
    assert r.rc == 0 and r.status == 407, r
    r = curl_tls(p, origin.url("/curl-auth"), "--proxy-user", "%s:%s" % ALICE)
    assert r.rc == 0 and r.status == 200, r
    assert r.body == b"hello from origin: GET /curl-auth"
    r = curl_tls(p, "https://localhost:%d/tunnel-auth" % https_origin.port, "--cacert", pki.ca.cert,
                 "--proxy-user", "%s:%s" % ALICE)
    assert r.rc == 0 and r.status == 200, r
    assert r.body == b"hello from origin: GET /tunnel-auth"
    e = p.wait_access(lambda e: e.get("method") == "CONNECT" and e.get("status") == "200")
    assert e and e["user"] == "alice", p.read_access_log()


def test_certificate_chain_served(tls_proxy_factory, origin, pki, tmp_path):
    """[tls] certificate may hold a chain: leaf + intermediate, the client
    trusting only the root."""
    inter = make_ca(str(tmp_path / "inter"), name="hopcache test intermediate", issuer=pki.ca)
    cert, key = make_leaf(str(tmp_path / "inter"), inter, cn="chained", tag="chained", chain=True)
    p = tls_proxy_factory(cert=(cert, key))
    with tls_client(p.tls_port, client_ctx(pki.ca.cert)) as c:
        assert get_via(c, origin, "/chain").status == 200


# ---------------------------------------------------------------------------
# protocols, ciphers, ALPN


def test_default_protocols_accept_tls12_and_tls13(tls_proxy, origin, pki):
    for maxv, want in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        with tls_client(tls_proxy.tls_port, client_ctx(pki.ca.cert, max_version=maxv)) as c:
            assert c.sock.version() == want
            assert get_via(c, origin, "/v").status == 200


def test_protocols_tls13_only(tls_proxy_factory, origin, pki):
    """12. protocols = TLSv1.3 refuses a client whose maximum is TLS 1.2."""
    p = tls_proxy_factory(tls={"protocols": "TLSv1.3"})
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        c = tls_client(p.tls_port, client_ctx(pki.ca.cert, max_version=ssl.TLSVersion.TLSv1_2))
        # a handshake that "succeeded" must not carry requests
        try:
            get_via(c, origin, "/must-not")
        finally:
            c.close()
    with tls_client(p.tls_port, client_ctx(pki.ca.cert)) as c:
        assert c.sock.version() == "TLSv1.3"
        assert get_via(c, origin, "/ok13").status == 200
    assert [q.target for q in origin.requests] == ["/ok13"]


def test_ciphers_and_ciphersuites(tls_proxy_factory, origin, pki):
    p = tls_proxy_factory(tls={"ciphers": "ECDHE-ECDSA-CHACHA20-POLY1305",
                               "ciphersuites": "TLS_CHACHA20_POLY1305_SHA256"})
    with tls_client(p.tls_port, client_ctx(pki.ca.cert, max_version=ssl.TLSVersion.TLSv1_2)) as c:
        assert c.sock.cipher()[0] == "ECDHE-ECDSA-CHACHA20-POLY1305", c.sock.cipher()
        assert get_via(c, origin, "/c12").status == 200
    with tls_client(p.tls_port, client_ctx(pki.ca.cert, min_version=ssl.TLSVersion.TLSv1_3)) as c:
        assert c.sock.cipher()[0] == "TLS_CHACHA20_POLY1305_SHA256", c.sock.cipher()
        assert get_via(c, origin, "/c13").status == 200
    # a TLS 1.2 client offering only other ciphers is refused
    ctx = client_ctx(pki.ca.cert, max_version=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        tls_client(p.tls_port, ctx).close()


def test_alpn_default_prefers_h2(tls_proxy, origin, pki):
    """ALPN ([tls] protocols_alpn = h2, http/1.1, the default): h2 is chosen
    from [h2, http/1.1] and from [http/1.1, h2] (the server's order); a
    client offering http/1.1 only gets it; one offering neither gets the
    fatal no_application_protocol alert (RFC 7301 §3.2)."""
    for offer in (["h2", "http/1.1"], ["http/1.1", "h2"]):
        with tls_client(tls_proxy.tls_port, client_ctx(pki.ca.cert, alpn=offer)) as c:
            assert c.sock.selected_alpn_protocol() == "h2", offer
    with tls_client(tls_proxy.tls_port, client_ctx(pki.ca.cert, alpn=["http/1.1"])) as c:
        assert c.sock.selected_alpn_protocol() == "http/1.1"
        assert get_via(c, origin, "/alpn").status == 200
    with pytest.raises(ssl.SSLError, match=r"(?i)alert no.application.protocol"):
        tls_client(tls_proxy.tls_port, client_ctx(pki.ca.cert, alpn=["spdy/3"])).close()


def test_alpn_http11_only(tls_proxy_factory, origin, pki):
    """protocols_alpn = http/1.1: http/1.1 is chosen from [h2, http/1.1]; h2
    is never chosen, and a client offering only h2 gets the fatal
    no_application_protocol alert."""
    p = tls_proxy_factory(tls={"protocols_alpn": "http/1.1"})
    with tls_client(p.tls_port, client_ctx(pki.ca.cert, alpn=["h2", "http/1.1"])) as c:
        assert c.sock.selected_alpn_protocol() == "http/1.1"
        assert get_via(c, origin, "/alpn").status == 200
    # RFC 7301 §3.2: a server that supports none of the client's protocols
    # "SHALL respond with a fatal no_application_protocol alert"
    with pytest.raises(ssl.SSLError, match=r"(?i)alert no.application.protocol"):
        tls_client(p.tls_port, client_ctx(pki.ca.cert, alpn=["h2"])).close()
    # a client that offers no ALPN at all is served
    with tls_client(p.tls_port, client_ctx(pki.ca.cert)) as c:
        assert c.sock.selected_alpn_protocol() is None
        assert get_via(c, origin, "/no-alpn").status == 200


# ---------------------------------------------------------------------------
# clients that do not speak TLS; the handshake timeout


@pytest.mark.parametrize("what,payload,src", [
    ("garbage", b"\x00\xff\x13garbage that is no TLS record at all\r\n" * 8, "127.0.0.7"),
    ("plain_http", b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "127.0.0.8"),
    ("huge_record", b"\x16\x03\x01\xff\xff" + b"\x01" * 64, "127.0.0.9"),
], ids=["garbage", "plain_http", "huge_record"])
def test_non_tls_client_closed(tls_proxy, origin, pki, what, payload, src):
    """8. Bytes that are not a TLS handshake: the connection is closed, the
    error log names the client and the TLS failure, the worker survives and
    other clients are served."""
    p = tls_proxy
    before = p.wait_workers(1)
    ctx = client_ctx(pki.ca.cert)
    good = tls_client(p.tls_port, ctx)   # handshake done before the bad client
    try:
        bad = raw_from(p.tls_port, src)
        with bad:
            bad.send(payload)
            closed, data = bad.wait_closed(5)
        assert closed, "%s on the TLS port: connection still open after 5s" % what
        assert not data.startswith(b"HTTP/1.1 2"), "a non-TLS client got a success: %r" % data[:200]
        r = get_via(good, origin, "/still-good")
        assert r.status == 200 and r.body == b"hello from origin: GET /still-good"
    finally:
        good.close()
    with tls_client(p.tls_port, ctx) as c2:
        assert get_via(c2, origin, "/after").status == 200
    lines = wait_for(lambda: [l for l in p.logs_text().splitlines() if src in l and "TLS" in l], timeout=3)
    assert lines, "want an error-log line naming the client %s and TLS:\n%s" % (src, p.logs_text()[-2000:])
    assert p.workers() == before, "worker pids changed: %r -> %r" % (before, p.workers())
    assert [q.target for q in origin.requests] == ["/still-good", "/after"], \
        "nothing from the non-TLS client may reach an origin"


@pytest.mark.parametrize("stall", [b"", b"\x16\x03\x01\x02\x00\x01"], ids=["silent", "partial_hello"])
def test_handshake_timeout(tls_proxy_factory, origin, pki, stall):
    """9. handshake_timeout = 0.5: a client that stalls in the handshake is
    closed in about that time; a completed handshake is not subject to it;
    the stalled client does not hold up others."""
    p = tls_proxy_factory(tls={"handshake_timeout": "0.5"})
    c = raw_from(p.tls_port, "127.0.0.1")
    with c:
        t0 = time.monotonic()
        if stall:
            c.send(stall)
        # meanwhile another client is served (the handshake is non-blocking)
        with tls_client(p.tls_port, client_ctx(pki.ca.cert)) as ok:
            assert get_via(ok, origin, "/meanwhile").status == 200
        closed, _ = c.wait_closed(6)
        dt = time.monotonic() - t0
    assert closed, "a stalled handshake was not closed within 6s"
    assert 0.3 <= dt <= 5.0, "closed after %.2fs with handshake_timeout = 0.5" % dt
    # an established TLS connection idles longer than the handshake timeout
    with tls_client(p.tls_port, client_ctx(pki.ca.cert)) as ok:
        time.sleep(1.2)
        r = get_via(ok, origin, "/idle-then-ask")
        assert r.status == 200, "handshake_timeout must not apply after the handshake"


# ---------------------------------------------------------------------------
# SIGHUP reload of the certificate


def _start_for_sighup(tls_proxy_factory, cert, key):
    p = tls_proxy_factory(cert=(cert, key), workers=2, ini_extra={"log": {"level": "debug"}})
    p.wait_workers(2)
    if not wait_for(lambda: p.logs_text().count("worker ready") >= 2, timeout=3):
        time.sleep(0.5)
    return p


def _install(src_cert, src_key, cert, key):
    """Replace cert/key atomically with copies of src_cert/src_key."""
    for src, dst in ((src_cert, cert), (src_key, key)):
        tmp = dst + ".new"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)


def _serves(p, cafile, der, tries=6):
    try:
        return all(served_der(p.tls_port, cafile) == der for _ in range(tries))
    except (ssl.SSLError, OSError):
        return False


def test_sighup_reloads_certificate(tls_proxy_factory, origin, pki, tmp_path):
    """10. After the files change and SIGHUP, new connections get the new
    certificate; old and new differ in CN and serial."""
    d = str(tmp_path / "reload")
    a = make_leaf(d, pki.ca, cn="hopcache-cert-a", tag="a")
    b = make_leaf(d, pki.ca, cn="hopcache-cert-b", tag="b")
    assert cert_info(a[0]) != cert_info(b[0])
    cert, key = os.path.join(d, "proxy.pem"), os.path.join(d, "proxy.key")
    _install(a[0], a[1], cert, key)
    p = _start_for_sighup(tls_proxy_factory, cert, key)
    assert _serves(p, pki.ca.cert, pem_der(a[0])), "the TLS port does not serve the configured certificate"
    with tls_client(p.tls_port, client_ctx(pki.ca.cert)) as c:
        assert get_via(c, origin, "/before").status == 200
        _install(b[0], b[1], cert, key)
        p.signal(signal.SIGHUP)
        assert wait_for(lambda: _serves(p, pki.ca.cert, pem_der(b[0])), timeout=10, interval=0.2), \
            "after SIGHUP new connections should get the new certificate:\n%s" % p.logs_text()[-2000:]
        # a connection made before the reload may carry on or be closed gracefully,
        # but the proxy keeps running
    assert p.running()
    with tls_client(p.tls_port, client_ctx(pki.ca.cert)) as c:
        assert get_via(c, origin, "/after").status == 200


@pytest.mark.parametrize("bad", ["key_mismatch", "garbage_pem", "missing_key"])
def test_sighup_bad_certificate_keeps_old(tls_proxy_factory, origin, pki, tmp_path, bad):
    """10. A reload with unusable files keeps the old certificate and logs why;
    fixing the files and SIGHUP again loads the new one."""
    d = str(tmp_path / "reload")
    a = make_leaf(d, pki.ca, cn="hopcache-cert-a", tag="a")
    b = make_leaf(d, pki.ca, cn="hopcache-cert-b", tag="b")
    other = make_leaf(d, pki.ca, cn="hopcache-cert-other", tag="other")
    cert, key = os.path.join(d, "proxy.pem"), os.path.join(d, "proxy.key")
    _install(a[0], a[1], cert, key)
    p = _start_for_sighup(tls_proxy_factory, cert, key)
    assert _serves(p, pki.ca.cert, pem_der(a[0]))
    if bad == "key_mismatch":
        _install(b[0], other[1], cert, key)
    elif bad == "garbage_pem":
        with open(cert + ".new", "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nthis is not base64 at all!!\n-----END CERTIFICATE-----\n")
        os.replace(cert + ".new", cert)
    else:
        shutil.copyfile(b[0], cert)
        os.unlink(key)
    mark = len(p.logs_text())
    p.signal(signal.SIGHUP)

    def why():
        return [l for l in new_log_lines(p, mark)
                if ("[error]" in l or "[warn]" in l)
                and (cert in l or key in l or "key" in l.lower() or "certificate" in l.lower())]
    lines = wait_for(why, timeout=5)
    assert lines, "the error log should say why the reload failed:\n%s" % p.logs_text()[mark:][-2000:]
    time.sleep(0.5)
    assert p.running()
    for _ in range(3):
        assert _serves(p, pki.ca.cert, pem_der(a[0])), \
            "a bad certificate/key on SIGHUP must keep the old certificate (%s)" % bad
        with tls_client(p.tls_port, client_ctx(pki.ca.cert)) as c:
            assert get_via(c, origin, "/still").status == 200
        time.sleep(0.2)
    _install(b[0], b[1], cert, key)
    p.signal(signal.SIGHUP)
    assert wait_for(lambda: _serves(p, pki.ca.cert, pem_der(b[0])), timeout=10, interval=0.2), \
        "after fixing the files, SIGHUP should load the new certificate"


# ---------------------------------------------------------------------------
# -t


def run_t(p):
    p.write_ini()
    if not os.path.exists(BINARY):
        pytest.skip("hopcache binary not built")
    r = subprocess.run([BINARY, "-t", "-c", p.ini], capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def test_config_test_tls_valid(tls_proxy_factory):
    p = tls_proxy_factory(start=False)
    rc, out = run_t(p)
    assert rc == 0, out


def test_config_test_tls_missing_certificate(tls_proxy_factory):
    """11. [tls] listen without certificate is a -t error naming [tls] certificate."""
    p = tls_proxy_factory(tls={"certificate": None}, start=False)
    rc, out = run_t(p)
    assert rc == 1, out
    assert "[tls] certificate" in out, out


def test_config_test_tls_nonexistent_certificate(tls_proxy_factory, tmp_path):
    path = str(tmp_path / "no-such-cert.pem")
    p = tls_proxy_factory(tls={"certificate": path}, start=False)
    rc, out = run_t(p)
    assert rc == 1, out
    assert path in out and "[tls] certificate" in out, out


def test_config_test_tls_bad_protocols(tls_proxy_factory):
    p = tls_proxy_factory(tls={"protocols": "SSLv3"}, start=False)
    rc, out = run_t(p)
    assert rc == 1, out
    assert "[tls] protocols" in out, out


def test_config_test_upstream_ca_file_missing(proxy_factory, tmp_path):
    path = str(tmp_path / "no-such-ca.pem")
    p = proxy_factory({"upstream": {"ca_file": path}}, start=False)
    rc, out = run_t(p)
    assert rc == 1, out
    assert path in out and "[upstream] ca_file" in out, out


# ---------------------------------------------------------------------------
# upstream TLS for https:// requests


def _https(port, host, path="/"):
    return "https://%s:%d%s" % (host, port, path)


def test_upstream_https_ca_file(upstream_proxy, https_origin_factory, pki):
    """5. ca_file = the CA: 200; SNI is the URI host; never h2 upstream."""
    o = https_origin_factory(alpn=["h2", "http/1.1"])
    p = upstream_proxy({"ca_file": pki.ca.cert})
    url = _https(o.port, "localhost", "/up?q=1")
    r = fetch(p.port, url)
    assert r.status == 200, r
    assert r.body == b"hello from origin: GET /up?q=1"
    req = o.requests[0]
    assert req.target == "/up?q=1", "the origin gets origin-form: %r" % req.start_line
    assert req.get("Host") == "localhost:%d" % o.port
    conn = o.conns[0]
    assert conn.tls and conn.sni == "localhost", "SNI should be the URI host, got %r" % conn.sni
    # hopcache.ini(5): https:// upstreams get ALPN http/1.1, never h2
    assert conn.alpn == "http/1.1", "the proxy negotiated %r upstream" % conn.alpn
    e = p.wait_access(lambda e: e.get("target") == url)
    assert e and e["status"] == "200", p.read_access_log()


def test_upstream_https_ip_literal(upstream_proxy, https_origin, pki):
    """An IP-literal host: no SNI, the certificate's IP SAN is checked."""
    p = upstream_proxy({"ca_file": pki.ca.cert})
    r = fetch(p.port, _https(https_origin.port, "127.0.0.1", "/ip"))
    assert r.status == 200, r
    assert https_origin.conns[0].sni is None, "no SNI for an IP literal (RFC 6066 §3)"


def test_upstream_https_ip_mismatch(upstream_proxy, https_origin_factory, pki, tmp_path):
    cert = make_leaf(str(tmp_path), pki.ca, names=("localhost",), ips=("127.0.0.2",), cn="localhost")
    o = https_origin_factory(cert=cert)
    p = upstream_proxy({"ca_file": pki.ca.cert})
    url = _https(o.port, "127.0.0.1", "/ipmm")
    r = fetch(p.port, url)
    assert r.status == 502, r
    assert "error=tls_certificate_error" in proxy_status(r), r.headers
    assert "mismatch" in details(r).lower(), proxy_status(r)
    assert not o.requests


def test_upstream_https_system_store_refuses_private_ca(upstream_proxy, https_origin):
    """Without ca_file the system store is used, which does not know our CA."""
    p = upstream_proxy()
    url = _https(https_origin.port, "localhost", "/sys")
    r = fetch(p.port, url)
    assert r.status == 502, r
    ps = proxy_status(r)
    assert ps.startswith("hopcache;") and "error=tls_certificate_error" in ps, r.headers
    assert "unable to get local issuer certificate" in details(r), ps
    assert not https_origin.requests, "nothing may be sent over an unverified connection"
    e = p.wait_access(lambda e: e.get("target") == url)
    assert e and e["status"] == "502" and e["outcome"] == "tls_certificate_error", p.read_access_log()


def test_upstream_https_ca_path(upstream_proxy, https_origin, pki, tmp_path):
    d = tmp_path / "capath"
    d.mkdir()
    h = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", pki.ca.cert],
                       capture_output=True, timeout=10, check=True).stdout.decode().strip()
    shutil.copyfile(pki.ca.cert, str(d / (h + ".0")))
    p = upstream_proxy({"ca_path": str(d)})
    r = fetch(p.port, _https(https_origin.port, "localhost", "/capath"))
    assert r.status == 200, r


def test_upstream_https_verify_no(upstream_proxy, https_origin_factory, pki, tmp_path):
    """verify = no: an unknown issuer and a name mismatch are both accepted."""
    p = upstream_proxy({"verify": "no"})
    o = https_origin_factory()
    r = fetch(p.port, _https(o.port, "localhost", "/noverify"))
    assert r.status == 200, r
    o2 = https_origin_factory(cert=make_leaf(str(tmp_path), pki.ca, names=("other.test",), ips=(), cn="other.test"))
    r = fetch(p.port, _https(o2.port, "localhost", "/noverify2"))
    assert r.status == 200, r
    assert o2.conns[0].sni == "localhost"


def test_upstream_https_hostname_mismatch(upstream_proxy, https_origin_factory, pki, tmp_path):
    cert = make_leaf(str(tmp_path), pki.ca, names=("other.test",), ips=(), cn="other.test")
    o = https_origin_factory(cert=cert)
    p = upstream_proxy({"ca_file": pki.ca.cert})
    url = _https(o.port, "localhost", "/mismatch")
    r = fetch(p.port, url)
    assert r.status == 502, r
    assert "error=tls_certificate_error" in proxy_status(r), r.headers
    assert "hostname mismatch" in details(r), proxy_status(r)
    assert not o.requests
    e = p.wait_access(lambda e: e.get("target") == url)
    assert e and e["outcome"] == "tls_certificate_error", p.read_access_log()
    # the name the certificate does carry is fine
    r = fetch(p.port, _https(o.port, "other.test", "/match"))
    assert r.status == 200, r


def test_upstream_https_self_signed(upstream_proxy, https_origin_factory, pki, tls_cert):
    o = https_origin_factory(cert=tls_cert)  # conftest's self-signed localhost cert
    p = upstream_proxy({"ca_file": pki.ca.cert})
    r = fetch(p.port, _https(o.port, "localhost", "/selfsigned"))
    assert r.status == 502, r
    assert "error=tls_certificate_error" in proxy_status(r), r.headers
    assert re.search(r"self.signed certificate", details(r)), proxy_status(r)


def test_upstream_https_to_plain_http_port(upstream_proxy, origin, pki):
    """The origin speaks plain HTTP on the port of an https:// URI: 502
    tls_protocol_error."""
    def handler(conn):
        conn.recv_some(timeout=5)
        conn.send(http_response(400, [("Connection", "close")], b"this is a plain HTTP server\n"))
    origin.handler = handler
    p = upstream_proxy({"ca_file": pki.ca.cert})
    url = _https(origin.port, "localhost", "/plain")
    r = fetch(p.port, url)
    assert r.status == 502, r
    assert "error=tls_protocol_error" in proxy_status(r), r.headers
    e = p.wait_access(lambda e: e.get("target") == url)
    assert e and e["outcome"] == "tls_protocol_error", p.read_access_log()


def test_https_everywhere(upstream_proxy, tls_proxy_factory, https_origin, pki):
    """A TLS client on the TLS port asking for an https:// URI."""
    p = upstream_proxy({"ca_file": pki.ca.cert}, factory=tls_proxy_factory)
    with tls_client(p.tls_port, client_ctx(pki.ca.cert)) as c:
        url = _https(https_origin.port, "localhost", "/both")
        r = c.exchange("GET", url, [("Host", "localhost:%d" % https_origin.port)])
    assert r.status == 200 and r.body == b"hello from origin: GET /both", r


# ---------------------------------------------------------------------------
# pooling and session resumption


def test_upstream_tls_pooled(upstream_proxy, https_origin, pki):
    """6. Two sequential https requests from one client: one TCP connection
    to the origin."""
    p = upstream_proxy({"ca_file": pki.ca.cert})
    with p.client() as c:
        for path in ("/pool/a", "/pool/b"):
            url = _https(https_origin.port, "localhost", path)
            r = c.exchange("GET", url, [("Host", "localhost:%d" % https_origin.port)])
            assert r.status == 200 and r.body == ("hello from origin: GET %s" % path).encode(), r
    with p.client() as c:
        url = _https(https_origin.port, "localhost", "/pool/c")
        assert c.exchange("GET", url, [("Host", "localhost:%d" % https_origin.port)]).status == 200
    assert len(https_origin.requests) == 3
    assert len(https_origin.conns) == 1, \
        "idle upstream TLS connections should be reused: %d connections" % len(https_origin.conns)


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_upstream_tls_session_resumption(upstream_proxy, https_origin_factory, pki, version):
    """6. pool_max_idle = 0: each request needs a new connection, and the
    second one resumes the first one's session."""
    o = https_origin_factory(max_version=getattr(ssl.TLSVersion, version.replace(".", "_")))
    p = upstream_proxy({"ca_file": pki.ca.cert, "pool_max_idle": "0"})
    for i in range(3):
        r = fetch(p.port, _https(o.port, "localhost", "/resume/%d" % i))
        assert r.status == 200, r
    assert wait_for(lambda: len(o.conns) >= 3 and all(c.tls_version for c in o.conns[:3]), timeout=3), o.conns
    assert len(o.conns) == 3, "pool_max_idle = 0 should not reuse connections"
    assert [c.tls_version for c in o.conns] == [version] * 3
    assert o.conns[0].session_reused is False
    assert o.conns[1].session_reused is True and o.conns[2].session_reused is True, \
        "later connections should resume the TLS session: %r" % [c.session_reused for c in o.conns]
    assert all(c.sni == "localhost" for c in o.conns), "a resumed handshake still sends SNI"


# ---------------------------------------------------------------------------
# cache


def test_https_responses_cached_under_https_uri(upstream_proxy, cache_proxy_factory, https_origin_factory, pki):
    """7. The second https request is a HIT; http:// for the same
    host:port/path is another cache key."""
    o = https_origin_factory(sniff=True)  # one port: TLS or plain by the first byte
    n = [0]

    def responder(req):
        n[0] += 1
        scheme = "https" if o.conns[req.conn_id].tls else "http"
        return http_response(200, [("Cache-Control", "max-age=300"), ("Content-Type", "text/plain")],
                             ("%s %s #%d" % (scheme, req.target, n[0])).encode())
    o.responder = responder
    p = upstream_proxy({"ca_file": pki.ca.cert}, factory=cache_proxy_factory)
    https_url = _https(o.port, "localhost", "/cached")
    http_url = "http://localhost:%d/cached" % o.port

    r1 = fetch(p.port, https_url)
    assert r1.status == 200 and r1.body == b"https /cached #1", r1
    r2 = fetch(p.port, https_url)
    assert r2.status == 200 and r2.body == b"https /cached #1", r2
    assert any(v.startswith("hopcache; hit") for v in r2.get_all("Cache-Status")), r2.headers
    assert len(o.requests) == 1, "the origin should have seen one request: %r" % o.requests
    hits = wait_for(lambda: [e for e in p.access_entries() if e.get("target") == https_url
                             and e.get("outcome") == "HIT"], timeout=3)
    assert hits, p.read_access_log()

    r3 = fetch(p.port, http_url)
    assert r3.status == 200 and r3.body == b"http /cached #2", \
        "http:// must not be served from the https:// entry: %r" % r3
    assert not any(v.startswith("hopcache; hit") for v in r3.get_all("Cache-Status")), r3.headers
    r4 = fetch(p.port, https_url)
    assert r4.body == b"https /cached #1", r4
    r5 = fetch(p.port, http_url)
    assert r5.body == b"http /cached #2", r5
    assert len(o.requests) == 2
