"""The process model: workers, crash replacement, graceful SIGTERM, the command
line (-t, -V, -h), listeners."""

import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import BINARY, children_of, _pid_alive
from helpers import Client, http_response, wait_for


def run_binary(*args, timeout=10):
    if not os.path.exists(BINARY):
        pytest.skip("hopcache binary not built")
    p = subprocess.run([BINARY] + list(args), capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def ok_get(port, origin, path="/"):
    with Client(port) as c:
        r = c.exchange("GET", origin.url(path), [("Host", origin.authority)])
    return r.status == 200


# -- workers ---------------------------------------------------------------------------

def test_two_workers(proxy_factory, origin):
    p = proxy_factory(workers=2)
    w = p.wait_workers(2)
    assert len(w) == 2, "expected 2 worker processes, children: %r" % w
    assert p.pid not in w
    assert ok_get(p.port, origin)


def test_workers_auto_is_cpu_count(proxy_factory):
    p = proxy_factory(workers="auto")
    n = len(os.sched_getaffinity(0))
    w = p.wait_workers(n)
    assert len(w) == n


def test_killed_worker_is_replaced(proxy_factory, origin):
    p = proxy_factory(workers=2)
    p.allow_worker_deaths = True
    before = p.wait_workers(2)
    assert len(before) == 2
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    after = wait_for(lambda: (lambda w: w if len(w) == 2 and victim not in w else None)(p.workers()), timeout=6)
    assert after, "worker %d not replaced; children now %r" % (victim, p.workers())
    assert before[1] in after, "the surviving worker must not be restarted"
    new = [w for w in after if w not in before]
    assert len(new) == 1
    # the master logs the death with pid and signal
    want = "worker pid %d killed by signal 9 (" % victim
    line = wait_for(lambda: [l for l in p.logs_text().splitlines() if want in l], timeout=3)
    assert line, "no error-log line %r...:\n%s" % (want, p.logs_text())
    assert "[error]" in line[0], line
    # and the proxy keeps serving
    for i in range(10):
        assert ok_get(p.port, origin, "/after%d" % i)
    assert p.running()


def test_log_line_format(proxy_factory, origin):
    p = proxy_factory(workers=2)
    p.wait_workers(2)
    lines = [l for l in p.logs_text().splitlines() if "listening on" in l]
    assert lines
    assert re.match(r"^\S+ \[(error|warn|info|debug)\] [a-z]+\[\d+\]: listening on 127\.0\.0\.1:%d" % p.port,
                    lines[0]), lines[0]


def test_worker_crash_loop_does_not_spin(proxy_factory, origin):
    """Kill the replacement repeatedly: the master stays up, keeps replacing with backoff."""
    p = proxy_factory(workers=1)
    p.allow_worker_deaths = True
    killed = set()
    for i in range(3):
        w = wait_for(lambda: [x for x in p.workers() if x not in killed], timeout=8)
        assert w, "no replacement worker after %d kills" % i
        killed.add(w[0])
        os.kill(w[0], signal.SIGKILL)
    assert p.running()
    assert wait_for(lambda: [x for x in p.workers() if x not in killed], timeout=10), \
        "master stopped replacing workers"
    assert wait_for(lambda: ok_get(p.port, origin), timeout=5)


# -- graceful stop --------------------------------------------------------------------------

def test_sigterm_lets_inflight_response_finish(proxy_factory, origin):
    p = proxy_factory({"limits": {"shutdown_timeout": "10"}})
    body = b"A" * 1000 + b"B" * 1000
    origin.responder = lambda req: [http_response(200, [("Content-Length", "2000")]) + body[:1000], 1.5, body[1000:]]
    with p.client(timeout=8) as c:
        c.request("GET", origin.url("/slow"), [("Host", origin.authority)])
        head = c.reader.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        rest = c.reader.read_exact(2000, timeout=8)
        assert rest == body, "the in-flight response was cut by SIGTERM"
    rc = p.proc.wait(8)
    assert rc == 0
    assert time.monotonic() - t0 < 6


def test_sigterm_closes_idle_keepalive_promptly(proxy_factory, origin):
    p = proxy_factory({"limits": {"shutdown_timeout": "10", "idle_timeout": "60"}})
    with p.client() as c:
        assert c.exchange("GET", origin.url("/"), [("Host", origin.authority)]).status == 200
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        rc = p.proc.wait(12)
        dt = time.monotonic() - t0
        closed, _ = c.wait_closed(2)
    assert rc == 0
    assert closed
    assert dt < 3, "idle keep-alive connections held the shutdown for %.1fs" % dt


def test_shutdown_timeout_bounds_a_stuck_request(proxy_factory, origin):
    p = proxy_factory({"limits": {"shutdown_timeout": "1", "upstream_timeout": "30"}})
    origin.responder = lambda req: [10.0]
    with p.client(timeout=8) as c:
        c.request("GET", origin.url("/stuck"), [("Host", origin.authority)])
        origin.wait_requests(1)
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        rc = p.proc.wait(8)
        dt = time.monotonic() - t0
    assert rc == 0
    assert dt < 3.5, "shutdown_timeout=1 but exit took %.1fs" % dt


def test_sigterm_stops_accepting(proxy_factory, origin):
    p = proxy_factory({"limits": {"shutdown_timeout": "10"}})
    origin.responder = lambda req: [2.0, http_response(200, [], b"late")]
    with p.client(timeout=8) as c:
        c.request("GET", origin.url("/slow"), [("Host", origin.authority)])
        origin.wait_requests(1)
        p.signal(signal.SIGTERM)
        time.sleep(0.5)
        # hopcache(8) SIGNALS: the master closes the listening sockets, and so
        # do the stopping workers: a new client is refused at once (it does
        # not wait in the listen queue for the drain to end)
        with pytest.raises(ConnectionRefusedError):
            Client(p.port, timeout=2).close()
        assert c.read_response().body == b"late"
    assert p.proc.wait(8) == 0


def test_sigint_is_graceful_too(proxy_factory, origin):
    p = proxy_factory()
    assert ok_get(p.port, origin)
    p.signal(signal.SIGINT)
    assert p.proc.wait(8) == 0


def test_no_worker_outlives_master(proxy_factory, origin):
    p = proxy_factory(workers=2)
    w = p.wait_workers(2)
    assert ok_get(p.port, origin)
    assert p.stop() == 0
    alive = [x for x in w if _pid_alive(x)]
    assert not alive, "workers %r still alive after the master exited" % alive


# -- listeners -------------------------------------------------------------------------------

def test_listen_on_ipv4_and_ipv6(proxy_factory, origin):
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    p = proxy_factory({"proxy": {"listen": "127.0.0.1:0, [::1]:0"}})
    v6 = wait_for(lambda: re.findall(r"listening on \[::1\]:(\d+)", p.logs_text()), timeout=3)
    assert v6, p.logs_text()
    assert ok_get(p.port, origin, "/v4")
    with Client(int(v6[0]), host="::1") as c:
        r = c.exchange("GET", origin.url("/v6"), [("Host", origin.authority)])
    assert r.status == 200
    e = p.wait_access(lambda e: e.get("target", "").endswith("/v6"))
    assert e and e["client"] == "::1", "CLIENT is the client's IP address: %r" % e


# -- command line ----------------------------------------------------------------------------

def test_config_test_valid(proxy_factory):
    p = proxy_factory(start=False)
    p.write_ini()
    rc, out = run_binary("-t", "-c", p.ini)
    assert rc == 0, out
    assert len(out.strip().splitlines()) == 1, "-t on a valid config prints a one-line summary: %r" % out


def test_config_test_reports_every_problem(proxy_factory):
    p = proxy_factory({"proxy": {"listn": "127.0.0.1:0", "workers": "banana"},
                       "limits": {"header_timeout": "-1", "max_body": "12Q"},
                       "log": {"level": "chatty"}}, start=False)
    p.write_ini()
    rc, out = run_binary("-t", "-c", p.ini)
    assert rc == 1, out
    for sec, key in [("proxy", "listn"), ("proxy", "workers"), ("limits", "header_timeout"),
                     ("limits", "max_body"), ("log", "level")]:
        prefix = "%s: [%s] %s: " % (p.ini, sec, key)
        assert prefix in out, "missing problem line starting %r in:\n%s" % (prefix, out)
    line = [l for l in out.splitlines() if "[proxy] listn:" in l][0]
    assert "listen" in line.replace("listn", ""), "an unknown key close to a real one should suggest it: %r" % line


@pytest.mark.parametrize("section,key,value", [
    ("proxy", "workers", "0"),
    ("proxy", "listen", "nonsense"),
    ("proxy", "listen", "127.0.0.1:99999"),
    ("proxy", "connect_ports", "100-50"),
    ("proxy", "connect_ports", "70000"),
    ("proxy", "via", "bad via"),
    ("proxy", "x_forwarded_for", "perhaps"),
    ("limits", "idle_timeout", "abc"),
    ("limits", "max_headers", "-3"),
    ("upstream", "pool_max_idle", "-5"),
    ("nonsense", "key", "1"),
])
def test_config_test_rejects(proxy_factory, section, key, value):
    p = proxy_factory({section: {key: value}}, start=False)
    p.write_ini()
    rc, out = run_binary("-t", "-c", p.ini)
    assert rc == 1, "[%s] %s = %s accepted: %s" % (section, key, value, out)
    assert "[%s]" % section in out and p.ini in out, out


@pytest.mark.parametrize("section,key,value", [
    ("limits", "max_body", "10M"),
    ("limits", "max_header_bytes", "64K"),
    ("limits", "header_timeout", "0.5"),
    ("proxy", "connect_ports", "443, 8443, 9000-9100"),
    ("proxy", "workers", "auto"),
    ("log", "level", "debug"),
])
def test_config_test_accepts(proxy_factory, section, key, value):
    p = proxy_factory({section: {key: value}}, start=False)
    p.write_ini()
    rc, out = run_binary("-t", "-c", p.ini)
    assert rc == 0, "[%s] %s = %s refused: %s" % (section, key, value, out)


def test_config_test_missing_file(tmp_path):
    path = str(tmp_path / "does-not-exist.ini")
    rc, out = run_binary("-t", "-c", path)
    assert rc == 1
    assert path in out


def test_invalid_config_refuses_to_start(proxy_factory):
    p = proxy_factory({"proxy": {"workers": "banana"}}, start=False)
    p.write_ini()
    rc, out = run_binary("-f", "-c", p.ini, timeout=10)
    assert rc == 1, "hopcache(8) EXIT STATUS: 1 for an invalid configuration: %d %s" % (rc, out)
    assert "workers" in out


def test_version():
    rc, out = run_binary("-V")
    assert rc == 0
    assert re.search(r"hopcache\D*\d+\.\d+", out), out


def test_help():
    rc, out = run_binary("-h")
    assert rc == 0
    for opt in ("-c", "-f", "-t", "-V"):
        assert opt in out, "usage lacks %s: %s" % (opt, out)


def test_unknown_option():
    rc, out = run_binary("-Z")
    assert rc == 2, "hopcache(8) EXIT STATUS: 2 for a usage error: %d %s" % (rc, out)
    assert "-c" in out, "an unknown option should print the usage"


def test_sigterm_with_open_tunnel(proxy_factory, origin):
    """A tunnel in use keeps working during the drain, is closed at shutdown_timeout, exit is 0."""
    from helpers import echo_handler
    p = proxy_factory({"limits": {"shutdown_timeout": "1.5"}})
    origin.handler = echo_handler
    with p.client(timeout=8) as c:
        c.send(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (origin.authority, origin.authority)).encode())
        assert c.read_response("CONNECT").status == 200
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        time.sleep(0.3)
        c.send(b"still here")
        assert c.reader.read_exact(10, timeout=3) == b"still here", "tunnel cut at SIGTERM, before shutdown_timeout"
        closed, _ = c.wait_closed(5)
        assert closed
        rc = p.proc.wait(5)
        dt = time.monotonic() - t0
    assert rc == 0
    assert dt < 4.5, "exit took %.1fs with shutdown_timeout=1.5" % dt
