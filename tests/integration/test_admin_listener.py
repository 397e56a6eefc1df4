"""The admin listener (issue 14): with [admin] listen set, /hopcache/metrics,
/hopcache/status and PURGE are served there (still behind [admin] allow and
[cache] purge_allow) and no longer on the proxy port, which keeps the PAC
file. The admin listener has its own per-worker connection budget
([admin] max_connections), so it answers while the proxy port is paused at
[limits] max_connections, and a busy admin listener never takes the proxy
port's slots. It forwards nothing.

On the proxy port, /hopcache/metrics and /hopcache/status are then 404 with
Proxy-Status details naming the admin listener (before authentication, as
they were answered before), and PURGE is 403 the same way. On the admin
listener, an unknown origin-form path or a request to forward (absolute
form) is 404, CONNECT and OPTIONS * are 405, PURGE of an origin-form target
400, and the PAC file is 404 (it names the proxy by the Host it was fetched
by: the proxy port serves it)."""

import errno
import json
import re
import signal
import socket
import subprocess
import time

from conftest import BINARY
from helpers import Client, Reader, fetch, http_response, read_response, wait_for

ADMIN = {"admin": {"listen": "127.0.0.1:0"}}


def own(port, path, method="GET", headers=(), body=None):
    """One origin-form request on a new connection (Host: 127.0.0.1:port)."""
    hdrs = [("Host", "127.0.0.1:%d" % port)] + list(headers)
    if body is not None:
        hdrs.append(("Content-Length", str(len(body))))
    with Client(port) as c:
        return c.exchange(method, path, hdrs, body)


def send(port, method, target, host):
    with Client(port) as c:
        return c.exchange(method, target, [("Host", host)])


def proxy_status(r):
    return ", ".join(r.get_all("proxy-status"))


def refused(r, status, error, details):
    """r is the proxy's own refusal: status, Proxy-Status error and details."""
    assert r.status == status, r
    want = 'hopcache; error=%s; details="%s"' % (error, details)
    assert proxy_status(r) == want, "Proxy-Status: got %r, want %r" % (proxy_status(r), want)


def with_admin(extra=None):
    out = {sec: dict(kv) for sec, kv in ADMIN.items()}
    for sec, kv in (extra or {}).items():
        out.setdefault(sec, {}).update(kv)
    return out


def cacheable(req):
    return http_response(200, [("Cache-Control", "max-age=60")], ("body of %s" % req.target).encode())


def fresh_hit(r):
    return any(re.match(r"^hopcache; hit; ttl=\d+$", v) for v in r.get_all("cache-status"))


# ---------------------------------------------------------------------------
# what is served where


def test_metrics_and_status_move_to_the_admin_listener(proxy_factory, origin):
    p = proxy_factory(with_admin())
    assert p.admin_port is not None and p.admin_port != p.port, p.logs_text()
    assert re.search(r"listening for admin on 127\.0\.0\.1:%d" % p.admin_port, p.logs_text())
    # the proxy port still proxies
    assert fetch(p.port, origin.url("/through")).status == 200
    assert [q.target for q in origin.requests] == ["/through"]

    m = own(p.admin_port, "/hopcache/metrics")
    assert m.status == 200, m
    assert m.get("Content-Type") == "text/plain; version=0.0.4; charset=utf-8", m.headers
    assert re.search(r'(?m)^hopcache_requests_total\{method="GET",code="200"\} 1$', m.body.decode()), \
        m.body.decode()
    h = own(p.admin_port, "/hopcache/metrics", method="HEAD")
    assert h.status == 200 and h.body == b"", h
    s = own(p.admin_port, "/hopcache/status")
    assert s.status == 200, s
    assert s.get("Content-Type") == "application/json", s.headers
    assert json.loads(s.body)["pid"] == p.pid

    # no longer on the proxy port: 404 naming the admin listener
    for path in ("/hopcache/metrics", "/hopcache/status", "/hopcache/status?x=1"):
        r = own(p.port, path)
        refused(r, 404, "http_request_error", "served on the admin listener ([admin] listen)")
    assert [q.target for q in origin.requests] == ["/through"], "nothing more reached the origin"

    # the PAC file stays on the proxy port (it names the proxy by this Host)
    pac = own(p.port, "/proxy.pac")
    assert pac.status == 200, pac
    assert pac.get("Content-Type") == "application/x-ns-proxy-autoconfig"
    assert b'"PROXY 127.0.0.1:%d"' % p.port in pac.body, pac.body
    assert own(p.port, "/wpad.dat").status == 200
    refused(own(p.admin_port, "/proxy.pac"), 404, "http_request_error",
            "the PAC file is served on the proxy port")


def test_without_admin_listen_nothing_changes(proxy_factory):
    p = proxy_factory()
    assert p.admin_port is None
    assert "listening for admin" not in p.logs_text()
    assert own(p.port, "/hopcache/metrics").status == 200
    assert own(p.port, "/hopcache/status").status == 200
    assert own(p.port, "/proxy.pac").status == 200


def test_admin_listener_forwards_nothing(proxy_factory, origin):
    p = proxy_factory(with_admin())
    a = p.admin_port
    forwards = "the admin listener forwards nothing: send proxy requests to the proxy port"
    # a request to forward names no resource of the admin listener
    r = send(a, "GET", origin.url("/abs"), origin.authority)
    refused(r, 404, "http_request_error", forwards)
    assert r.get("Allow") is None, r.headers
    r = send(a, "POST", origin.url("/abs-post"), origin.authority)
    refused(r, 404, "http_request_error", forwards)
    r = send(a, "GET", "http://127.0.0.1:%d/hopcache/status" % a, "127.0.0.1:%d" % a)
    refused(r, 404, "http_request_error", forwards)
    # CONNECT and OPTIONS * are methods it does not take
    r = send(a, "CONNECT", origin.authority, origin.authority)
    refused(r, 405, "http_request_error", forwards)
    assert r.get("Allow") == "GET, HEAD, PURGE", r.headers
    r = send(a, "OPTIONS", "*", "127.0.0.1:%d" % a)
    refused(r, 405, "http_request_error", forwards)

    refused(own(a, "/"), 404, "http_request_error", "not a resource of the admin listener")
    refused(own(a, "/hopcache/other"), 404, "http_request_error", "not a resource of the admin listener")
    r = own(a, "/hopcache/status", method="POST", body=b"x=1")
    refused(r, 405, "http_request_error", "only GET and HEAD")
    assert r.get("Allow") == "GET, HEAD", r.headers
    refused(own(a, "/some/path", method="PURGE"), 400, "http_request_error",
            "PURGE names the absolute URI to remove (PURGE http://host/path)")
    assert origin.requests == [], "the admin listener forwarded a request"


def test_admin_allow_applies_on_the_admin_listener(proxy_factory):
    p = proxy_factory(with_admin({"admin": {"allow": "10.0.0.0/8"}}))
    for path in ("/hopcache/metrics", "/hopcache/status"):
        refused(own(p.admin_port, path), 403, "http_request_denied", "not an [admin] allow address")
    # and the proxy port does not answer them instead
    refused(own(p.port, "/hopcache/status"), 404, "http_request_error",
            "served on the admin listener ([admin] listen)")


def test_admin_listener_keeps_alive(proxy_factory):
    """Several requests on one admin connection (keep-alive)."""
    p = proxy_factory(with_admin())
    with Client(p.admin_port) as c:
        hdrs = [("Host", "127.0.0.1:%d" % p.admin_port)]
        r1 = c.exchange("GET", "/hopcache/status", hdrs)
        r2 = c.exchange("GET", "/hopcache/metrics", hdrs)
    assert r1.status == 200 and r2.status == 200, (r1, r2)


# ---------------------------------------------------------------------------
# PURGE


def test_purge_on_the_admin_listener_only(cache_proxy_factory, origin):
    p = cache_proxy_factory(ini_extra=with_admin())
    origin.responder = cacheable
    url = origin.url("/purge/me")
    assert fetch(p.port, url).status == 200
    assert fresh_hit(fetch(p.port, url))

    r = send(p.port, "PURGE", url, origin.authority)
    refused(r, 403, "http_request_denied", "PURGE is served on the admin listener ([admin] listen)")
    assert fresh_hit(fetch(p.port, url)), "a refused PURGE removed the entry"

    r = send(p.admin_port, "PURGE", url, origin.authority)
    assert r.status == 200 and r.body == b"", r
    assert proxy_status(r) == "", r.headers
    r = fetch(p.port, url)
    assert r.get_all("cache-status") == ["hopcache; fwd=uri-miss; stored"], r.raw_head
    assert send(p.admin_port, "PURGE", origin.url("/purge/never"), origin.authority).status == 404
    assert [q.method for q in origin.requests] == ["GET", "GET"], "PURGE must not reach the origin"
    e = p.wait_access(lambda e: e.get("method") == "PURGE" and e.get("status") == "200")
    assert e and e["outcome"] == "PURGED", e


def test_purge_allow_applies_on_the_admin_listener(cache_proxy_factory, origin):
    p = cache_proxy_factory(cache={"purge_allow": "10.0.0.0/8"}, ini_extra=with_admin())
    origin.responder = cacheable
    url = origin.url("/purge/denied")
    fetch(p.port, url)
    r = send(p.admin_port, "PURGE", url, origin.authority)
    refused(r, 403, "http_request_denied", "PURGE is not allowed from this address")
    assert fresh_hit(fetch(p.port, url)), "a refused PURGE removed the entry"


# ---------------------------------------------------------------------------
# budgets


def half_request(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET http://example.test/ HT")
    return s


def no_answer_within(s, seconds):
    """True when s receives nothing (and no EOF) within seconds."""
    s.settimeout(seconds)
    try:
        data = s.recv(1)
    except socket.timeout:
        return True
    return data is None


def test_admin_listener_answers_while_the_proxy_port_is_saturated(proxy_factory, origin):
    p = proxy_factory(with_admin({"limits": {"max_connections": "20"}}))
    idle = []
    try:
        for _ in range(24):
            idle.append(half_request(p.port))
        assert wait_for(lambda: "[limits] max_connections (20) reached: answering 503"
                        in p.logs_text(), timeout=5), p.logs_text()
        # the proxy port is saturated: a new client is told so at once (503)
        full = socket.create_connection(("127.0.0.1", p.port), timeout=5)
        idle.append(full)
        full.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (origin.url("/queued").encode(),
                                                                origin.authority.encode()))
        r = read_response(Reader(full, 2.0))
        assert r.status == 503, r
        assert (r.get("Proxy-Status") or "").startswith(
            "hopcache; error=connection_limit_reached"), r.headers

        t0 = time.monotonic()
        r = own(p.admin_port, "/hopcache/status")
        elapsed = time.monotonic() - t0
        assert r.status == 200, r
        assert elapsed < 1.0, "the admin listener took %.2fs while the proxy port was full" % elapsed
        st = json.loads(r.body)
        assert sum(w["connections_active"] for w in st["workers"]) >= 20, st
        m = own(p.admin_port, "/hopcache/metrics")
        assert m.status == 200, m
    finally:
        for s in idle:
            s.close()
    assert "admin connection limit" not in p.logs_text()


def test_admin_budget_is_its_own(proxy_factory, origin):
    p = proxy_factory(with_admin({"admin": {"max_connections": "2"}}))
    held = [socket.create_connection(("127.0.0.1", p.admin_port), timeout=5) for _ in range(2)]
    third = None
    try:
        assert wait_for(lambda: "admin connection limit 2 reached: pausing admin accept"
                        in p.logs_text(), timeout=5), p.logs_text()
        # the proxy port does not share the admin listener's budget
        for i in range(3):
            assert fetch(p.port, origin.url("/while-admin-full-%d" % i)).status == 200
        # a third admin client waits until one of the two leaves
        third = socket.create_connection(("127.0.0.1", p.admin_port), timeout=5)
        third.sendall(b"GET /hopcache/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert no_answer_within(third, 0.5), "the admin listener accepted past its budget"
        held.pop().close()
        third.settimeout(3)
        got = third.recv(64)
        assert got.startswith(b"HTTP/1.1 200 "), got
    finally:
        for s in held + ([third] if third else []):
            s.close()
    assert "connection limit 4096" not in p.logs_text()
    assert re.search(r"pausing accept$", p.logs_text(), re.M) is None, p.logs_text()


# ---------------------------------------------------------------------------
# reload and configuration


def reload_count(p):
    return len(re.findall(r"reload: generation \d+ started", p.logs_text()))


def finished(p, gen):
    return re.search(r"generation %d finished" % gen, p.logs_text()) is not None


def reload(p, n):
    p.write_ini()
    p.signal(signal.SIGHUP)
    assert wait_for(lambda: reload_count(p) >= n, timeout=5), p.logs_text()[-3000:]
    # the old generation's workers have let go of their sockets
    assert wait_for(lambda: finished(p, n), timeout=10), p.logs_text()[-3000:]


def test_reload_adds_and_removes_the_admin_listener(proxy_factory, origin):
    p = proxy_factory()
    assert own(p.port, "/hopcache/status").status == 200

    p.sections["admin"] = {"listen": "127.0.0.1:0"}
    reload(p, 1)
    p.wait_listening()
    assert p.admin_port is not None, p.logs_text()
    assert own(p.admin_port, "/hopcache/status").status == 200
    refused(own(p.port, "/hopcache/status"), 404, "http_request_error",
            "served on the admin listener ([admin] listen)")
    assert fetch(p.port, origin.url("/after-add")).status == 200

    # a reload that keeps it keeps its port
    port = p.admin_port
    p.sections["proxy"]["via"] = "renamed"
    reload(p, 2)
    assert own(port, "/hopcache/status").status == 200
    assert len(re.findall(r"listening for admin on", p.logs_text())) == 1, p.logs_text()

    del p.sections["admin"]
    reload(p, 3)
    assert wait_for(lambda: "closed listener 127.0.0.1:0" in p.logs_text(), timeout=5), p.logs_text()
    s = socket.socket()
    s.settimeout(2)
    try:
        err = s.connect_ex(("127.0.0.1", port))
    finally:
        s.close()
    assert err == errno.ECONNREFUSED, "the removed admin listener still accepts (%r)" % err
    assert own(p.port, "/hopcache/status").status == 200
    assert fetch(p.port, origin.url("/after-remove")).status == 200


def test_reload_with_a_bad_admin_address_is_refused(proxy_factory, origin):
    p = proxy_factory()
    p.sections["admin"] = {"listen": "127.0.0.1"}
    p.write_ini()
    p.signal(signal.SIGHUP)
    want = '%s: [admin] listen: "127.0.0.1": expected host:port, e.g. 127.0.0.1:3128' % p.ini
    assert wait_for(lambda: "reload refused" in p.logs_text(), timeout=5), p.logs_text()
    assert want in p.logs_text(), p.logs_text()
    assert own(p.port, "/hopcache/status").status == 200


def check_config(tmp_path, text):
    ini = tmp_path / "check.ini"
    ini.write_text(text)
    r = subprocess.run([BINARY, "-t", "-c", str(ini)], capture_output=True, timeout=10)
    return ini, r


def test_config_errors_name_file_section_and_key(tmp_path):
    cases = [
        ("[admin]\nlisten = no-port-here\n",
         '[admin] listen: "no-port-here": expected host:port, e.g. 127.0.0.1:3128'),
        ("[admin]\nlisten = 127.0.0.1:70000\n",
         '[admin] listen: "127.0.0.1:70000": expected a port between 0 and 65535'),
        ("[admin]\nlisten = 127.0.0.1:9128\nmax_connections = 0\n",
         '[admin] max_connections: expected an integer between 1 and 1000, got "0"'),
        ("[admin]\nmax_connections = 1001\n",
         '[admin] max_connections: expected an integer between 1 and 1000, got "1001"'),
        ("[proxy]\nlisten = 127.0.0.1:9128\n[admin]\nlisten = 127.0.0.1:9128\n",
         "[admin] listen: 127.0.0.1:9128 is also in [proxy] listen"),
    ]
    for text, want in cases:
        ini, r = check_config(tmp_path, text)
        err = r.stderr.decode()
        assert r.returncode != 0, (text, err)
        assert "%s: %s" % (ini, want) in err, "want %r in:\n%s" % (want, err)


def test_config_test_and_print_config_show_the_keys(tmp_path):
    ini, r = check_config(tmp_path, "[proxy]\nlisten = 127.0.0.1:3128\nworkers = 1\n"
                                    "[admin]\nlisten = 127.0.0.1:9128\nmax_connections = 4\n")
    assert r.returncode == 0, r.stderr.decode()
    assert "listen 127.0.0.1:3128, admin 127.0.0.1:9128, workers 1" in (r.stdout + r.stderr).decode()
    out = subprocess.run([BINARY, "--print-config", "-c", str(ini)], capture_output=True, timeout=10)
    text = out.stdout.decode()
    admin = text[text.index("[admin]"):]
    admin = admin[:admin.index("\n[")] if "\n[" in admin else admin
    assert re.search(r"(?m)^listen = 127\.0\.0\.1:9128$", admin), admin
    assert re.search(r"(?m)^max_connections = 4$", admin), admin
