"""Fixtures for the hopcache integration tests.

proxy_factory(ini_extra={section: {key: value}}, workers=1) starts the real
binary (`HOPCACHE` env var, default <repo>/src/hopcache) with a temp INI on a
kernel-picked loopback port and stops it with SIGTERM at teardown, asserting
a clean exit 0. `origin` is a scripted recording origin, `tls_origin` the same
over TLS with a throwaway certificate, `fake_dns` a loopback DNS server.
"""

import os
import re
import signal
import subprocess
import time

import pytest

from helpers import (Client, FakeDNS, Origin, make_cert, server_tls_context, curl as _curl,
                     pid_alive as _pid_alive)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def _default_binary():
    """HOPCACHE=path wins; else an in-tree build, else tests/run-all.sh's build-plain."""
    for cand in (os.path.join(REPO, "src", "hopcache"), os.path.join(REPO, "build-plain", "src", "hopcache")):
        if os.path.exists(cand):
            return cand
    return os.path.join(REPO, "src", "hopcache")


BINARY = os.environ.get("HOPCACHE") or _default_binary()

TEST_HARD_LIMIT = 45  # seconds: no single test may run longer

ACCESS_FIELDS = ["time", "client", "user", "method", "target", "status",
                 "bytes_in", "bytes_out", "duration_ms", "upstream", "outcome", "rule"]


def children_of(pid):
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    out += [int(x) for x in f.read().split()]
            except FileNotFoundError:
                pass
    except FileNotFoundError:
        pass
    return sorted(set(p for p in out if _pid_alive(p)))


class Proxy:
    def __init__(self, tmpdir, ini_extra=None, workers=1, name="proxy"):
        self.dir = os.path.join(tmpdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.ini = os.path.join(self.dir, "hopcache.ini")
        self.access_log = os.path.join(self.dir, "access.log")
        self.error_log = os.path.join(self.dir, "error.log")
        self.stdout_path = os.path.join(self.dir, "stdout")
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.sections = {
            "proxy": {"listen": "127.0.0.1:0", "workers": str(workers), "via": "hopcache",
                      "connect_ports": "1-65535"},
            "limits": {"shutdown_timeout": "5"},
            "log": {"access": self.access_log, "error": self.error_log, "level": "info"},
            # the origins these tests start are on loopback, which the policy
            # refuses by default (issue 4); test_acl.py turns it back on
            "acl": {"private_destinations": "allow"},
        }
        for sec, kv in (ini_extra or {}).items():
            self.sections.setdefault(sec, {})
            for k, v in kv.items():
                if v is None:
                    self.sections[sec].pop(k, None)
                else:
                    self.sections[sec][k] = str(v)
        self.proc = None
        self.port = None
        self.ports = []
        self.tls_port = None   # first "listening for TLS on" port ([tls] listen)
        self.tls_ports = []
        self.admin_port = None  # first "listening for admin on" port ([admin] listen)
        self.admin_ports = []
        self.returncode = None
        self.known_workers = set()
        self.allow_worker_deaths = False  # tests that kill workers set this

    # -- lifecycle -----------------------------------------------------------
    def write_ini(self):
        with open(self.ini, "w") as f:
            for sec, kv in self.sections.items():
                f.write("[%s]\n" % sec)
                for k, v in kv.items():
                    f.write("%s = %s\n" % (k, v))
                f.write("\n")

    def start(self, wait=True):
        if not os.path.exists(BINARY):
            pytest.skip("hopcache binary not built: %s" % BINARY)
        self.write_ini()
        self.proc = subprocess.Popen([BINARY, "-f", "-c", self.ini],
                                     stdout=open(self.stdout_path, "wb"),
                                     stderr=open(self.stderr_path, "wb"),
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        if wait:
            self.wait_listening()
        return self

    def logs_text(self):
        out = ""
        for p in (self.error_log, self.stderr_path):
            try:
                with open(p, "rb") as f:
                    out += f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                pass
        return out

    def error_log_text(self):
        return self.logs_text()

    def tls_listen_count(self):
        """How many addresses [tls] listen names (0: no TLS listener)."""
        v = self.sections.get("tls", {}).get("listen")
        return len(v.replace(",", " ").split()) if v else 0

    def admin_listen_count(self):
        """How many addresses [admin] listen names (0: no admin listener)."""
        v = self.sections.get("admin", {}).get("listen")
        return len(v.replace(",", " ").split()) if v else 0

    _ADDR = r"(?:127\.0\.0\.1|\[::1\]|\[[0-9a-fA-F:]+\]|[\d.]+)"

    def wait_listening(self, timeout=10.0):
        """Wait for the "listening on ADDR:PORT" line(s) and, when the INI has
        [tls] listen, one "listening for TLS on ADDR:PORT" line per address
        (and as many "listening for admin on" lines as [admin] listen names)."""
        deadline = time.monotonic() + timeout
        ntls = self.tls_listen_count()
        nadmin = self.admin_listen_count()
        while time.monotonic() < deadline:
            text = self.logs_text()
            # "listening for TLS on" does not match "listening on"
            found = re.findall(r"listening on %s:(\d+)" % self._ADDR, text)
            tls = re.findall(r"listening for TLS on %s:(\d+)" % self._ADDR, text)
            admin = re.findall(r"listening for admin on %s:(\d+)" % self._ADDR, text)
            if (found or tls) and len(tls) >= ntls and len(admin) >= nadmin:
                self.ports = [int(p) for p in found]
                self.port = self.ports[0] if self.ports else None
                self.tls_ports = [int(p) for p in tls]
                self.tls_port = self.tls_ports[0] if self.tls_ports else None
                self.admin_ports = [int(p) for p in admin]
                self.admin_port = self.admin_ports[0] if self.admin_ports else None
                return
            if self.proc.poll() is not None:
                pytest.fail("hopcache exited with %s before listening; INI:\n%s\nlogs:\n%s" % (
                    self.proc.returncode, open(self.ini).read(), self.logs_text()))
            time.sleep(0.02)
        self.kill()
        pytest.fail("no 'listening on' line%s within %.0fs; logs:\n%s" % (
            " (and %d 'listening for TLS on')" % ntls if ntls else "", timeout, self.logs_text()))

    def workers(self):
        w = children_of(self.pid)
        self.known_workers.update(w)
        return w

    def wait_workers(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            w = self.workers()
            if len(w) >= n:
                return w
            time.sleep(0.02)
        return self.workers()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        os.kill(self.pid, sig)

    def stop(self, timeout=None):
        """SIGTERM; wait; return the exit status (None if we had to kill -9)."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            self.returncode = self.proc.returncode
            self._reap_workers()
            return self.returncode
        self.workers()
        if timeout is None:
            timeout = float(self.sections["limits"].get("shutdown_timeout", 30)) + 5
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.returncode = None
        self._reap_workers()
        return self.returncode

    def kill(self):
        kids = set(self.workers()) | self.known_workers
        try:
            self.proc.kill()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for k in kids:
            if _pid_alive(k):
                try:
                    os.kill(k, signal.SIGKILL)
                except OSError:
                    pass

    def _reap_workers(self):
        """Workers must not outlive the master; kill any (by pid) and report."""
        left = [p for p in self.known_workers if _pid_alive(p)]
        if left:
            deadline = time.monotonic() + 2
            while left and time.monotonic() < deadline:
                time.sleep(0.05)
                left = [p for p in left if _pid_alive(p)]
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        self.leftover_workers = left
        return left

    # -- helpers -------------------------------------------------------------
    def client(self, timeout=5.0):
        return Client(self.port, timeout=timeout)

    def read_access_log(self):
        try:
            with open(self.access_log, "rb") as f:
                return [l for l in f.read().decode("utf-8", "replace").splitlines() if l.strip()]
        except FileNotFoundError:
            return []

    def access_entries(self):
        out = []
        for line in self.read_access_log():
            parts = line.split()
            e = dict(zip(ACCESS_FIELDS, parts)) if len(parts) == len(ACCESS_FIELDS) else {}
            e["_line"] = line
            e["_nfields"] = len(parts)
            out.append(e)
        return out

    def wait_access(self, pred=lambda e: True, timeout=3.0):
        """First access-log entry matching pred (waits for it), or None."""
        deadline = time.monotonic() + timeout
        while True:
            for e in self.access_entries():
                if pred(e):
                    return e
            if time.monotonic() > deadline:
                return None
            time.sleep(0.02)


@pytest.fixture(autouse=True)
def _hard_limit():
    """Fail (not hang) a test that runs away."""
    def on_alarm(signum, frame):
        raise TimeoutError("test exceeded %ds hard limit" % TEST_HARD_LIMIT)
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_HARD_LIMIT)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def proxy_factory(tmp_path):
    started = []

    def make(ini_extra=None, workers=1, start=True):
        p = Proxy(str(tmp_path), ini_extra, workers, name="proxy%d" % len(started))
        started.append(p)
        if start:
            p.start()
        return p

    yield make
    problems = []
    for p in started:
        if p.proc is None:
            continue
        was_running = p.running()
        rc = p.stop()
        if was_running and rc != 0:
            problems.append("proxy pid %d: exit status %r after SIGTERM (None = had to SIGKILL); logs:\n%s"
                            % (p.pid, rc, p.logs_text()[-3000:]))
        logs = p.logs_text()
        san = re.findall(r"^.*(?:AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:).*$",
                         logs, re.M)
        if san:
            problems.append("proxy pid %d: sanitizer report(s):\n%s" % (p.pid, "\n".join(san[:10])))
        deaths = re.findall(r"^.*\[error\].*worker.*(?:signal|exit).*$", logs, re.M | re.I)
        if deaths and not p.allow_worker_deaths:
            problems.append("proxy pid %d: a worker died during the test:\n%s" % (p.pid, "\n".join(deaths[:5])))
        if getattr(p, "leftover_workers", None):
            problems.append("proxy pid %d: workers %r still alive after the master exited"
                            % (p.pid, p.leftover_workers))
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def proxy(proxy_factory):
    return proxy_factory()


@pytest.fixture
def origin():
    o = Origin()
    yield o
    o.stop()


@pytest.fixture
def origin_factory():
    made = []

    def make(**kw):
        o = Origin(**kw)
        made.append(o)
        return o
    yield make
    for o in made:
        o.stop()


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    return make_cert(str(d))


@pytest.fixture
def tls_origin(tls_cert):
    o = Origin(tls_context=server_tls_context(*tls_cert))
    yield o
    o.stop()


@pytest.fixture
def fake_dns():
    d = FakeDNS()
    yield d
    d.stop()


@pytest.fixture
def curl(tmp_path):
    def run(proxy_port, url, *args, timeout=10, proxy_scheme="http"):
        return _curl(proxy_port, url, *args, tmpdir=str(tmp_path), timeout=timeout,
                     proxy_scheme=proxy_scheme)
    return run


@pytest.fixture
def cache_proxy_factory(proxy_factory, tmp_path):
    """cache_proxy_factory(cache={key: value}, ini_extra=..., workers=1,
    start=True, cache_dir=None): a proxy with [cache] enabled = yes on a
    fresh directory under tmp_path (or cache_dir, to reuse one). The proxy
    gets .cache_dir."""
    count = [0]

    def make(cache=None, ini_extra=None, workers=1, start=True, cache_dir=None):
        if cache_dir is None:
            cache_dir = os.path.join(str(tmp_path), "cache%d" % count[0])
            count[0] += 1
        extra = {sec: dict(kv) for sec, kv in (ini_extra or {}).items()}
        sec = extra.setdefault("cache", {})
        base = {"enabled": "yes", "dir": cache_dir, "size": "64M", "max_object_size": "16M"}
        base.update(cache or {})
        for k, v in base.items():
            sec.setdefault(k, v)
        p = proxy_factory(extra, workers, start=start)
        p.cache_dir = cache_dir
        return p
    return make


@pytest.fixture
def cache_proxy(cache_proxy_factory):
    return cache_proxy_factory()
