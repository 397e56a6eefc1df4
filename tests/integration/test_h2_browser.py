"""A real browser on the HTTP/2 proxy port (issue 13).

Headless Chromium is pointed at the proxy's `[tls] listen` port with
`--proxy-server=https://localhost:PORT`: it talks TLS to the proxy, ALPN
picks h2, and every request of a page goes out as a stream of one HTTP/2
connection. The page (from a plain origin) has 40 subresources from that
origin (GETs with absolute URLs on the proxy connection) and 20 from a TLS
origin (Chromium opens CONNECT streams and runs TLS to the origin inside
them). The proxy's certificate and the TLS origin's are signed by a test CA
that Chromium trusts through a real NSS database ($HOME/.pki/nssdb, made with
certutil): no certificate error is ignored.

Chromium flags and why:
  --headless=new --no-sandbox --disable-gpu   no display; CI runs as root
  --user-data-dir=<tmp>, HOME=<tmp>           a fresh profile; the NSS database
                                              is read from $HOME/.pki/nssdb
  --proxy-server=https://localhost:PORT       TLS to the proxy; "localhost" is
                                              a name in the proxy's certificate
  --proxy-bypass-list=<-loopback>             Chromium sends 127.0.0.1 and
                                              localhost direct otherwise
  --log-net-log=<tmp>/netlog.json             Chromium's own account of its
                                              connections and streams
  --disable-features=NetworkTimeServiceQuerying   one background request less
  --disable-background-networking, --disable-component-update, ... as in
                                              test_negotiate.py
  profile pref net.network_prediction_options = 2 ("no preloading"): without
  it the loading predictor opens speculative connections to the proxy for the
  page's origin (1 + 2 sockets), which finish TLS with ALPN h2, so the proxy
  counts them as HTTP/2 connections, and are closed unused once the first is
  up: a count that depends on timing.
  Not --ignore-certificate-errors-spki-list: the trust is real.

How many connections Chromium opens: the page's requests (the page, its 40
GETs, its CONNECT streams) all go on one connection. Chromium keys its
sessions to a proxy by the request's privacy mode and network partition, so
its own background fetches that no flag turns off (in Chromium 156: the
on-demand "Optimization Guide On Device Models Manifest" component update,
privacy mode on; Gaia ListAccounts, partitioned to google.com) each get a
connection of their own; two requests of one partition that start together
before Chromium knows the proxy speaks h2 may each open a connection, and
the one whose session comes up second is closed unused. Through the fake
resolver the background requests end as 502 dns_error at the proxy: nothing
leaves the machine. So the test asserts hopcache_h2_connections_total equal
to the connections Chromium's net log shows negotiating h2 with the proxy,
exactly one of them carrying every stream of the page and the others none;
hopcache_h2_streams_total equal to the access log's lines and to the streams
in the net log.

The TLS origin speaks HTTP/1.1, so Chromium opens several connections to
it (up to 6), each a CONNECT stream: their number depends on timing, and the
test asserts it equal to the connections the origin accepted."""

import collections
import json
import os
import re
import shutil
import struct
import subprocess
import time
import types
import zlib

import pytest

from helpers import (Client, FakeDNS, Origin, http_response, make_ca, make_leaf, server_tls_context,
                     wait_for)
from test_ops import Prom

N_HTTP = 40    # subresources over http:// from the page's origin (GET streams)
N_HTTPS = 20   # subresources over https:// from the TLS origin (in CONNECT streams)
CHROMIUM_TIMEOUT = 35


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _require():
    missing = [n for n, ok in (("chromium", _chromium()), ("libnss3-tools", shutil.which("certutil")))
               if not ok]
    if missing:
        msg = "missing: %s (apt-get install -y %s)" % (", ".join(missing), " ".join(missing))
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and the browser tests cannot run: " + msg)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def browser_pki(tmp_path_factory):
    """A test CA and one leaf for localhost / 127.0.0.1 (proxy and TLS origin)."""
    d = str(tmp_path_factory.mktemp("browserpki"))
    ca = make_ca(d, name="hopcache browser test CA")
    leaf = make_leaf(d, ca, names=("localhost",), ips=("127.0.0.1",), cn="localhost", tag="leaf")
    return types.SimpleNamespace(dir=d, ca=ca, leaf=leaf)


def nss_home(tmp_path, ca_cert=None):
    """A HOME whose .pki/nssdb (what Chromium on Linux reads for user trust)
    trusts ca_cert for TLS servers ("C,,"), or is empty."""
    home = str(tmp_path / "home")
    db = os.path.join(home, ".pki", "nssdb")
    os.makedirs(db)
    cmds = [["certutil", "-N", "-d", "sql:" + db, "--empty-password"]]
    if ca_cert:
        cmds.append(["certutil", "-A", "-d", "sql:" + db, "-t", "C,,", "-n", "hopcache-test", "-i", ca_cert])
    for cmd in cmds:
        p = subprocess.run(cmd, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, "%s: rc %d %s" % (" ".join(cmd), p.returncode, p.stderr.decode("utf-8", "replace"))
    return home


def png(n):
    """A distinct 1x1 RGB PNG."""
    def chunk(kind, data):
        return struct.pack("!I", len(data)) + kind + data + struct.pack("!I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack("!IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(bytes([0, n & 255, (n * 7) & 255, 99]))) + chunk(b"IEND", b""))


def subresources(base, n, tag):
    """[(kind, url, global the script sets)]: every fourth a script, the
    others images."""
    out = []
    for i in range(n):
        if i % 4 == 3:
            out.append(("script", "%s/s/%d.js" % (base, i), "%s%d" % (tag, i)))
        else:
            out.append(("img", "%s/i/%d.png" % (base, i), None))
    return out


def page_html(resources):
    """Each subresource counts itself (onload/onerror); at the window's load
    the title says how many loaded, failed, and which script globals are
    missing."""
    total = len(resources)
    scripts = [name for (kind, _, name) in resources if kind == "script"]
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>loading</title>",
             "<link rel='icon' href='data:,'>",  # no /favicon.ico request
             "<script>var ok=0,bad=[];function L(){ok++}function E(u){bad.push(u)}</script>",
             "</head><body>"]
    for kind, url, _ in resources:
        if kind == "script":
            parts.append("<script src='%s' onload='L()' onerror='E(this.src)'></script>" % url)
        else:
            parts.append("<img src='%s' onload='L()' onerror='E(this.src)'>" % url)
    parts.append("<script>window.addEventListener('load',function(){"
                 "var miss=%s.filter(function(n){return window[n]!==1});"
                 "document.title='loaded '+ok+' of %d; failed ['+bad.join(' ')+']; missing ['+miss.join(' ')+']';"
                 "var p=document.createElement('p');p.id='marker';p.textContent=document.title;"
                 "document.body.appendChild(p)})</script></body></html>" % (json.dumps(scripts), total))
    return "".join(parts).encode()


def serve(page, tag):
    """The origins' responder: the page, PNGs, scripts setting window.<tag><i>."""
    def responder(req):
        path = req.target
        hdrs = [("Cache-Control", "no-store")]
        if path == "/page.html":
            return http_response(200, hdrs + [("Content-Type", "text/html; charset=utf-8")], page[0])
        m = re.match(r"^/i/(\d+)\.png$", path)
        if m:
            return http_response(200, hdrs + [("Content-Type", "image/png")], png(int(m.group(1))))
        m = re.match(r"^/s/(\d+)\.js$", path)
        if m:
            return http_response(200, hdrs + [("Content-Type", "text/javascript")],
                                 ("window.%s%s=1;" % (tag, m.group(1))).encode())
        return http_response(404, hdrs + [("Content-Type", "text/plain")], b"not here")
    return responder


def read_netlog(path):
    """Chromium's net log (JSON); a log cut short by a crash is closed first."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return json.loads(text.rstrip().rstrip(",") + "]}")


def netlog_h2(netlog, proxy_port):
    """From Chromium's net log: (h2 connections, {session: socket},
    {session: [(method, target)]}). The connections are the sockets whose
    TCP_CONNECT reached 127.0.0.1:proxy_port and whose TLS handshake chose
    h2; a session's socket is named by HTTP2_SESSION_INITIALIZED; its streams
    are its HTTP2_SESSION_SEND_HEADERS (target: the absolute URL, or the
    authority of a CONNECT)."""
    c = netlog["constants"]
    name = {v: k for k, v in c["logEventTypes"].items()}
    source_type = {v: k for k, v in c["logSourceType"].items()}
    remote, proto, socket_of = {}, {}, {}
    sessions = collections.OrderedDict()
    for e in netlog["events"]:
        ev = name.get(e["type"])
        sid = e["source"]["id"]
        params = e.get("params") or {}
        if ev == "TCP_CONNECT" and "remote_address" in params:
            remote[sid] = params["remote_address"]
        elif ev == "SSL_CONNECT" and "next_proto" in params:
            proto[sid] = params["next_proto"]
        elif source_type.get(e["source"]["type"]) == "HTTP2_SESSION":
            streams = sessions.setdefault(sid, [])
            if ev == "HTTP2_SESSION_INITIALIZED":
                socket_of[sid] = params["source_dependency"]["id"]
            elif ev == "HTTP2_SESSION_SEND_HEADERS":
                h = {}
                for line in params.get("headers", []):
                    k, _, v = line.partition(": ")
                    h[k] = v
                if h.get(":method") == "CONNECT":
                    streams.append(("CONNECT", h.get(":authority")))
                else:
                    streams.append((h.get(":method"), "%s://%s%s" % (h.get(":scheme"), h.get(":authority"),
                                                                     h.get(":path"))))
    conns = sorted(sid for sid, addr in remote.items()
                   if addr == "127.0.0.1:%d" % proxy_port and proto.get(sid) == "h2")
    return conns, socket_of, sessions


def netlog_tls_errors(netlog):
    """The net_error of every failed SSL_CONNECT in Chromium's net log."""
    name = {v: k for k, v in netlog["constants"]["logEventTypes"].items()}
    return [e["params"]["net_error"] for e in netlog["events"]
            if name.get(e["type"]) == "SSL_CONNECT" and "net_error" in (e.get("params") or {})]


ERR_CERT_AUTHORITY_INVALID = -202  # Chromium's net_error_list.h


def metrics(proxy):
    with Client(proxy.port) as c:
        r = c.exchange("GET", "/hopcache/metrics", [("Host", "127.0.0.1:%d" % proxy.port)])
    assert r.status == 200, r
    return Prom(r.body.decode("utf-8"))


def run_chromium(proxy, url, home, tmp_path, extra=()):
    """Chromium --dump-dom of url through the proxy's TLS port; returns
    (completed process, seconds, net log path)."""
    profile = tmp_path / "chromium-profile"
    os.makedirs(profile / "Default")
    with open(profile / "Default" / "Preferences", "w") as f:
        json.dump({"net": {"network_prediction_options": 2}}, f)  # no speculative connections
    netlog = str(tmp_path / "netlog.json")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS") and "proxy" not in k.lower()}
    env["HOME"] = home
    cmd = [_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
           "--user-data-dir=%s" % profile,
           "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
           "--disable-component-update", "--disable-default-apps", "--disable-sync",
           "--proxy-server=https://localhost:%d" % proxy.tls_port, "--proxy-bypass-list=<-loopback>",
           "--disable-features=NetworkTimeServiceQuerying",
           "--log-net-log=%s" % netlog] + list(extra) + ["--dump-dom", url]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=CHROMIUM_TIMEOUT, env=env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail("chromium did not finish in %d s; stderr:\n%s\naccess log:\n%s" % (
            CHROMIUM_TIMEOUT, (e.stderr or b"").decode("utf-8", "replace")[-2000:],
            "\n".join(proxy.read_access_log()[-20:])))
    return proc, time.monotonic() - t0, netlog


def stderr_text(proc):
    return "\n".join(l for l in proc.stderr.decode("utf-8", "replace").splitlines()
                     if "dbus" not in l.lower() and "unexpected operator" not in l)


@pytest.fixture
def dns():
    d = FakeDNS()  # answers NXDOMAIN: Chromium's background requests end at the proxy
    yield d
    d.stop()


@pytest.fixture
def browser_setup(proxy_factory, browser_pki, dns, tmp_path):
    """The plain origin (page + 40), the TLS origin (20), and a proxy with
    [tls] listen, a JSON access log and the fake resolver."""
    _require()
    plain = Origin()
    tls = Origin(tls_context=server_tls_context(*browser_pki.leaf))
    tls_base = "https://127.0.0.1:%d" % tls.port
    resources = subresources("http://%s" % plain.authority, N_HTTP, "h") + subresources(tls_base, N_HTTPS, "t")
    page = [page_html(resources)]
    plain.responder = serve(page, "h")
    tls.responder = serve(page, "t")
    p = proxy_factory({"tls": {"listen": "127.0.0.1:0", "certificate": browser_pki.leaf[0],
                               "private_key": browser_pki.leaf[1]},
                       "log": {"access_format": "json"},
                       "upstream": {"resolv_conf": dns.resolv_conf(str(tmp_path / "resolv.conf"))}})
    assert p.tls_port, "no 'listening for TLS on' port"
    yield types.SimpleNamespace(proxy=p, plain=plain, tls=tls, resources=resources,
                                page_url=plain.url("/page.html"), tls_authority="127.0.0.1:%d" % tls.port)
    plain.stop()
    tls.stop()


def test_page_with_60_subresources_over_one_h2_connection(browser_setup, browser_pki, tmp_path):
    b = browser_setup
    p = b.proxy
    home = nss_home(tmp_path, browser_pki.ca.cert)
    proc, secs, netlog_path = run_chromium(p, b.page_url, home, tmp_path)
    print("chromium: rc %d in %.1f s" % (proc.returncode, secs))
    dom = proc.stdout.decode("utf-8", "replace")
    titles = re.findall(r"<title>(.*?)</title>", dom)
    want_title = "loaded %d of %d; failed []; missing []" % (N_HTTP + N_HTTPS, N_HTTP + N_HTTPS)
    assert titles == [want_title], "chromium rc %d, title %r\nstderr:\n%s\naccess log:\n%s" % (
        proc.returncode, titles, stderr_text(proc)[-2000:], "\n".join(p.read_access_log()[-30:]))
    assert '<p id="marker">%s</p>' % want_title in dom, dom[-500:]
    assert proc.returncode == 0, stderr_text(proc)[-2000:]

    # the origins: every subresource asked for once, the TLS ones in TLS
    http_urls = [b.page_url] + [u for (_, u, _) in b.resources[:N_HTTP]]
    https_paths = sorted(u[len("https://" + b.tls_authority):] for (_, u, _) in b.resources[N_HTTP:])
    assert sorted(b.plain.url(r.target) for r in b.plain.requests) == sorted(http_urls)
    assert sorted(r.target for r in b.tls.requests) == https_paths
    tunnels = len(b.tls.conns)
    assert tunnels >= 1 and all(c.tls for c in b.tls.conns), b.tls.conns

    # Chromium's own account: its connections to the proxy, the streams of
    # each session; exactly one session carried the page's streams
    conns, socket_of, sessions = netlog_h2(read_netlog(netlog_path), p.tls_port)
    ours = sorted([("GET", u) for u in http_urls] + [("CONNECT", b.tls_authority)] * tunnels)
    carrying = [sid for sid, streams in sessions.items() if any(s in ours for s in streams)]
    assert len(carrying) == 1, "the page's streams went over %d sessions: %r" % (len(carrying), sessions)
    assert sorted(sessions[carrying[0]]) == ours, sessions[carrying[0]]
    others = sorted(s for sid, streams in sessions.items() if sid != carrying[0] for s in streams)
    assert not any(b.plain.authority in t or b.tls_authority in t for (_, t) in others), others
    assert sorted(socket_of) == sorted(sessions) and set(socket_of.values()) <= set(conns), (
        socket_of, conns)
    unused = sorted(set(conns) - set(socket_of.values()))
    sent = len(ours) + len(others)
    print("Chromium: %d h2 connections to the proxy: 1 for the page (%d streams), %d for its background "
          "requests (%d streams: %s), %d closed unused (a connect raced for a partition whose session "
          "came up first)" % (len(conns), len(ours), len(sessions) - 1, len(others),
                              sorted(set((m, t.split("?")[0]) for (m, t) in others)), len(unused)))

    # the access log: one HTTP/2 line per stream Chromium sent (a CONNECT's
    # when its tunnel ended, here when Chromium exited)
    def entries():
        return [json.loads(l) for l in p.read_access_log()]
    assert wait_for(lambda: len(entries()) >= sent, 10), (sent, "\n".join(p.read_access_log()))
    log = entries()
    assert len(log) == sent, (sent, log)
    assert all(e["version"] == "HTTP/2" for e in log), [e for e in log if e["version"] != "HTTP/2"]
    gets = [e for e in log if e["target"] in http_urls]
    assert sorted(e["target"] for e in gets) == sorted(http_urls), gets
    assert all((e["method"], e["status"], e["tunnel"]) == ("GET", 200, False) for e in gets), gets
    connects = [e for e in log if e["target"] == b.tls_authority]
    assert len(connects) == tunnels, connects
    assert all((e["method"], e["status"], e["tunnel"], e["outcome"]) == ("CONNECT", 200, True, "TUNNEL")
               for e in connects), connects
    background = [e for e in log if e not in gets and e not in connects]
    assert sorted((e["method"], e["target"]) for e in background) == others, (background, others)

    m = metrics(p)
    assert m.get("hopcache_h2_connections_total") == len(conns), (
        "Chromium negotiated h2 on %d connections (1 carrying the page, %d its background requests, "
        "%d unused); proxy metrics:\n%s" % (len(conns), len(sessions) - 1, len(unused),
                                            "\n".join(l for l in m.text.splitlines() if "h2" in l)))
    assert m.get("hopcache_h2_streams_total") == len(log) == sum(len(s) for s in sessions.values()), (
        len(log), [len(s) for s in sessions.values()], m.text)
    assert m.get("hopcache_h2_streams_active") == 0, m.text


def test_untrusted_test_ca_no_request(browser_setup, tmp_path):
    """The same page with an empty NSS database: Chromium refuses the
    proxy's certificate (ERR_CERT_AUTHORITY_INVALID), no HTTP/2 connection
    or stream is opened and no origin is reached: the trust in the other
    test came from the NSS database."""
    b = browser_setup
    p = b.proxy
    home = nss_home(tmp_path, None)
    proc, secs, netlog_path = run_chromium(p, b.page_url, home, tmp_path)
    print("chromium: rc %d in %.1f s" % (proc.returncode, secs))
    dom = proc.stdout.decode("utf-8", "replace")
    assert "loaded " not in dom and "marker" not in dom, dom[:500]
    assert b.plain.requests == [] and b.tls.requests == [] and b.tls.conns == []
    errors = netlog_tls_errors(read_netlog(netlog_path))
    assert errors and set(errors) == {ERR_CERT_AUTHORITY_INVALID}, errors
    assert re.search(r"TLS handshake with 127\.0\.0\.1 failed: .*certificate unknown", p.logs_text()), \
        p.logs_text()[-2000:]
    m = metrics(p)
    assert m.get("hopcache_h2_connections_total") == 0, m.text
    assert m.get("hopcache_h2_streams_total") == 0, m.text
    assert [l for l in p.read_access_log() if '"HTTP/2"' in l] == []
