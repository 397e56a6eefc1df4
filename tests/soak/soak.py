#!/usr/bin/python3
"""hopcache soak test (issue 14): load, faults and an abusive client for
SOAK_MINUTES, then one table of pass criteria; exit status 0 only when every
criterion holds. Standard library only; needs wrk and cc.

Everything runs in a temp dir: the proxy under test (HOPCACHE, 2 workers,
access log on, a small cache that evicts), the origins (origin.py: HTTP with
fault paths, plain and TLS echo), wrk through an LD_PRELOAD shim that binds
its sockets to 127.0.0.3, the Python clients (clients.py, 127.0.0.3) and the
abusive client (abuser.py, 127.0.0.2). See bench/README.md ("Soak test") for
the phases, the classification and what each row of the table means.

Environment:
  HOPCACHE        the binary (default: build-plain/src/hopcache, else src/hopcache)
  SOAK_MINUTES    length of the fault phase (default 10; fractions allowed)
  SOAK_LIMITS     1 (default): [limits] per-client keys on; 0: omitted, the
                  abusive-client rows say "n/a (limits off)"
  SOAK_ADMIN      1 (default): [admin] listen = 127.0.0.1:0, scraped there;
                  0: metrics and status scraped on the proxy port
  SOAK_SEED       seed of everything random (default: random, printed)
  SOAK_WRK_CONNS  wrk connections (default 24, one thread)
  SOAK_WRK_DELAY_MS  wrk pacing per connection (default 100)
  SOAK_RATE       requests_per_client (default "500/s, burst 1000")
  SOAK_MAX_CONNS_PER_CLIENT  (default 128)
  SOAK_ABUSE_RATE flood requests/s the abusive client tries (default 1000)
  SOAK_SLOWLORIS  slowloris connections (default 300)
  SOAK_CACHE_SIZE [cache] size (default 2M)
  SOAK_OUT        also write the table (Markdown) to this file
  SOAK_KEEP_TMP   1: keep the temp dir (it is always kept when the run fails)
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import soaklib  # noqa: E402

PY = sys.executable or "/usr/bin/python3"


def env(name, default):
    v = os.environ.get(name)
    return default if v is None or v == "" else v


def log(msg):
    sys.stdout.write("[soak %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stdout.flush()


def default_binary():
    for c in (os.path.join(REPO, "build-plain", "src", "hopcache"), os.path.join(REPO, "src", "hopcache")):
        if os.path.exists(c):
            return c
    return os.path.join(REPO, "src", "hopcache")


class Cfg:
    def __init__(self):
        self.binary = os.path.abspath(env("HOPCACHE", default_binary()))
        self.minutes = float(env("SOAK_MINUTES", "10"))
        self.limits = env("SOAK_LIMITS", "1") != "0"
        self.admin = env("SOAK_ADMIN", "1") != "0"
        self.seed = int(env("SOAK_SEED", str(random.SystemRandom().randrange(1, 2 ** 31))))
        self.wrk_conns = int(env("SOAK_WRK_CONNS", "24"))
        self.wrk_delay = int(env("SOAK_WRK_DELAY_MS", "100"))
        self.rate_spec = env("SOAK_RATE", "500/s, burst 1000")
        m = re.match(r"\s*(\d+)\s*/\s*s\s*,\s*burst\s+(\d+)\s*$", self.rate_spec)
        if not m:
            sys.exit("SOAK_RATE must look like '500/s, burst 1000'")
        self.rate, self.burst = int(m.group(1)), int(m.group(2))
        self.max_conns_client = int(env("SOAK_MAX_CONNS_PER_CLIENT", "128"))
        self.abuse_rate = int(env("SOAK_ABUSE_RATE", "1000"))
        self.slowloris = int(env("SOAK_SLOWLORIS", "300"))
        self.cache_size = env("SOAK_CACHE_SIZE", "2M")
        self.out = os.environ.get("SOAK_OUT")
        self.keep = env("SOAK_KEEP_TMP", "0") == "1"
        self.workers = 2
        self.upstream_timeout = 3
        self.drain_timeout = 10
        self.pool_idle = 2
        self.python_conns = 3 + 2 + 2  # browsers, tunnels, fault clients (clients.py)


# -- the proxy -----------------------------------------------------------------

def children(pid):
    out = set()
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    out.update(int(x) for x in f.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return sorted(out)


def start_time(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def rss_kib(pid, field="VmRSS"):
    """VmRSS, or one of its parts: RssAnon (private memory: what a leak
    grows), RssFile (file pages: the LMDB map of the cache), RssShmem (the
    shared metrics region)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith(field + ":"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return 0


def nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


class Proxy:
    def __init__(self, cfg, tmp):
        self.cfg = cfg
        self.dir = os.path.join(tmp, "proxy")
        os.makedirs(self.dir)
        self.ini = os.path.join(self.dir, "hopcache.ini")
        self.error_log = os.path.join(self.dir, "error.log")
        self.access_log = os.path.join(self.dir, "access.log")
        self.cache_dir = os.path.join(self.dir, "cache")
        self.san_dir = os.path.join(tmp, "sanitizer")
        os.makedirs(self.san_dir)
        self.proc = None
        self.port = None
        self.admin_port = None
        self.killed = []   # (time, pid)
        self.hups = []     # times

    def write_ini(self):
        c = self.cfg
        sec = {
            "proxy": {"listen": "127.0.0.1:0", "workers": c.workers, "via": "hopcache",
                      "connect_ports": "1-65535"},
            "limits": {"upstream_timeout": c.upstream_timeout, "drain_timeout": c.drain_timeout,
                       "shutdown_timeout": 5},
            "upstream": {"pool_idle_timeout": c.pool_idle},
            "log": {"access": self.access_log, "error": self.error_log, "level": "info"},
            "acl": {"private_destinations": "allow"},
            "cache": {"enabled": "yes", "dir": self.cache_dir, "size": c.cache_size, "max_object_size": "256K"},
        }
        if c.limits:
            sec["limits"].update({
                "max_connections_per_client": c.max_conns_client,
                "requests_per_client": c.rate_spec,
                "exempt": "127.0.0.1/32",     # the driver's own scrapes and checks
                "min_body_rate": "1K",
            })
        if c.admin:
            sec["admin"] = {"listen": "127.0.0.1:0"}
        with open(self.ini, "w") as f:
            for s, kv in sec.items():
                f.write("[%s]\n" % s)
                for k, v in kv.items():
                    f.write("%s = %s\n" % (k, v))
                f.write("\n")

    def env(self):
        e = dict(os.environ)
        # a 16 MB quarantine (default 256 MB): freed memory is reused soon enough
        # for the memory criterion to see leaks rather than the quarantine filling
        e["ASAN_OPTIONS"] = "log_path=%s/asan:detect_leaks=1:abort_on_error=0:quarantine_size_mb=16" % self.san_dir
        e["UBSAN_OPTIONS"] = "log_path=%s/ubsan:print_stacktrace=1:halt_on_error=1" % self.san_dir
        return e

    def start(self):
        self.write_ini()
        chk = subprocess.run([self.cfg.binary, "-t", "-c", self.ini], capture_output=True, text=True,
                             env=self.env())
        if chk.returncode != 0:
            raise SystemExit("hopcache -t rejects the soak INI (SOAK_LIMITS=0 / SOAK_ADMIN=0 omit the keys of "
                             "issue 14 that this binary may not know):\n%s%s\nINI:\n%s" % (
                                 chk.stdout, chk.stderr, open(self.ini).read()))
        self.proc = subprocess.Popen([self.cfg.binary, "-f", "-c", self.ini], env=self.env(),
                                     stdin=subprocess.DEVNULL,
                                     stdout=open(os.path.join(self.dir, "stdout"), "wb"),
                                     stderr=open(os.path.join(self.dir, "stderr"), "wb"))
        deadline = time.time() + 15
        while time.time() < deadline:
            text = self.logs()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
            a = re.search(r"listening for admin on [\d.]+:(\d+)", text)
            if m and (a or not self.cfg.admin):
                self.port = int(m.group(1))
                self.admin_port = int(a.group(1)) if a else None
                break
            if self.proc.poll() is not None:
                raise SystemExit("hopcache exited with %s at start:\n%s" % (self.proc.returncode, text[-3000:]))
            time.sleep(0.05)
        else:
            raise SystemExit("hopcache did not log its listening lines:\n%s" % self.logs()[-3000:])
        self.wait_workers(fresh_after=0)

    def logs(self):
        out = ""
        for p in (self.error_log, os.path.join(self.dir, "stderr")):
            try:
                with open(p, "rb") as f:
                    out += f.read().decode("utf-8", "replace")
            except OSError:
                pass
        return out

    def workers(self):
        return children(self.proc.pid)

    def current_workers(self):
        """The youngest [proxy] workers children: the current generation
        (after a SIGHUP the previous one may still be draining)."""
        w = sorted(self.workers(), key=start_time)
        return w[-self.cfg.workers:]

    def wait_workers(self, fresh_after=0, timeout=None):
        """Until exactly `workers` children run (a previous generation has
        exited), all started after `fresh_after` (a /proc start time)."""
        deadline = time.time() + (timeout or self.cfg.drain_timeout + 10)
        while time.time() < deadline:
            w = self.workers()
            if len(w) == self.cfg.workers and all(start_time(p) > fresh_after for p in w):
                return w
            time.sleep(0.1)
        raise SystemExit("workers did not settle: %r" % self.workers())

    def hup(self):
        os.kill(self.proc.pid, signal.SIGHUP)
        self.hups.append(time.time())

    def kill_worker(self, rng):
        w = self.current_workers()
        if not w:
            return None
        pid = rng.choice(w)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            return None
        self.killed.append((time.time(), pid))
        return pid

    def scrape(self, path):
        port = self.admin_port or self.port
        s = soaklib.connect(("127.0.0.1", port), "127.0.0.1", 10)
        try:
            s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path).encode())
            r = soaklib.Reader(s).read_response()
        finally:
            s.close()
        return r

    def metrics(self):
        out = {}
        try:
            r = self.scrape("/hopcache/metrics")
        except (OSError, soaklib.Cut):
            return out
        for ln in r.body.decode("utf-8", "replace").splitlines():
            if ln and not ln.startswith("#"):
                k, _, v = ln.rpartition(" ")
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
        return out

    def status(self):
        try:
            return json.loads(self.scrape("/hopcache/status").body)
        except (OSError, soaklib.Cut, ValueError):
            return {}

    def measure(self):
        """FDs of master + workers, each worker's RSS, the master's RSS."""
        w = self.workers()
        return {"workers": w, "fds": nfds(self.proc.pid) + sum(nfds(p) for p in w),
                "rss": {p: rss_kib(p) for p in w}, "anon": {p: rss_kib(p, "RssAnon") for p in w},
                "file": {p: rss_kib(p, "RssFile") for p in w}, "shmem": {p: rss_kib(p, "RssShmem") for p in w},
                "master_rss": rss_kib(self.proc.pid), "master_anon": rss_kib(self.proc.pid, "RssAnon")}

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        kids = self.workers()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            rc = None
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except OSError:
                pass
        return rc


# -- the run -------------------------------------------------------------------

class Soak:
    def __init__(self, cfg):
        self.cfg = cfg
        self.tmp = tempfile.mkdtemp(prefix="hopcache-soak-")
        self.rng = random.Random(cfg.seed)
        self.procs = []
        self.wrk_segments = []   # dicts: start, end, phase, counters
        self.events_file = os.path.join(self.tmp, "clients.jsonl")
        self.abuse = None
        self.samples = []        # (t, top client count for 127.0.0.2)
        self.mem_series = []     # (t, master RssAnon, max worker RssAnon) every 2 s
        self.notes = []

    # helpers
    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                    p.wait(10)
                except (OSError, subprocess.TimeoutExpired):
                    try:
                        p.kill()
                    except OSError:
                        pass

    def build_shim(self):
        so = os.path.join(self.tmp, "bindshim.so")
        r = subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", so, os.path.join(HERE, "bindshim.c"), "-ldl"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit("cannot build the bind shim:\n" + r.stderr)
        self.shim = so

    def make_cert(self):
        cert, key = os.path.join(self.tmp, "echo.crt"), os.path.join(self.tmp, "echo.key")
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"],
                           capture_output=True)
        return (cert, key) if r.returncode == 0 else None

    def start_origin(self):
        argv = [PY, os.path.join(HERE, "origin.py"), str(self.cfg.seed), str(self.cfg.upstream_timeout + 2)]
        ck = self.make_cert() if shutil.which("openssl") else None
        if ck:
            argv += list(ck)
        else:
            self.notes.append("no openssl: tunnels use the plain echo origin only")
        self.origin = self.spawn(argv, stdout=subprocess.PIPE, stderr=open(os.path.join(self.tmp, "origin.err"), "w"),
                                 text=True)
        self.ports = json.loads(self.origin.stdout.readline())

    # the load
    def run_wrk(self, seconds, phase):
        env = dict(os.environ)
        env.update({"LD_PRELOAD": self.shim, "SOAK_BIND_ADDR": "127.0.0.3",
                    "SOAK_WRK_BAD": os.path.join(self.tmp, "wrk-bad.txt"),
                    "SOAK_ORIGIN": "127.0.0.1:%d" % self.ports["http"], "SOAK_SEED": str(self.cfg.seed),
                    "SOAK_DELAY_MS": str(self.cfg.wrk_delay), "SOAK_HOT_N": str(soaklib.HOT_N),
                    "SOAK_COLD_N": str(soaklib.COLD_N), "SOAK_VARY_N": str(soaklib.VARY_N)})
        env.pop("ASAN_OPTIONS", None)
        start = time.time()
        r = subprocess.run(["wrk", "-t1", "-c%d" % self.cfg.wrk_conns, "-d%ds" % max(1, int(round(seconds))),
                            "--timeout", "15s", "-s", os.path.join(HERE, "soak.lua"),
                            "http://127.0.0.1:%d/" % self.proxy.port],
                           capture_output=True, text=True, env=env, timeout=seconds + 60)
        seg = {"start": start, "end": time.time(), "phase": phase, "rc": r.returncode}
        m = re.search(r"^SOAKWRK (.*)$", r.stdout, re.M)
        if not m or r.returncode != 0:
            seg["broken"] = "wrk rc %d: %s %s" % (r.returncode, r.stdout[-500:], r.stderr[-500:])
        else:
            for kv in m.group(1).split():
                k, _, v = kv.partition("=")
                seg[k] = int(v)
        self.wrk_segments.append(seg)
        return seg

    def load_phase(self, seconds, phase, faults=False, abuse=False, schedule=False):
        log("%s: %.0f s of load%s%s%s" % (phase, seconds, ", fault paths" if faults else "",
                                           ", abusive client" if abuse else "",
                                           ", kills and SIGHUPs" if schedule else ""))
        ccfg = {"proxy_port": self.proxy.port, "origin_port": self.ports["http"], "echo_port": self.ports["echo"],
                "tls_echo_port": self.ports["tls_echo"], "seed": self.cfg.seed, "rng": phase,
                "duration": seconds, "out": self.events_file, "faults": 2 if faults else 0,
                "timeout": self.cfg.upstream_timeout + 12}
        path = os.path.join(self.tmp, "clients-%s.json" % phase)
        json.dump(ccfg, open(path, "w"))
        cl = self.spawn([PY, os.path.join(HERE, "clients.py"), path],
                        stderr=open(os.path.join(self.tmp, "clients-%s.err" % phase), "w"))
        ab = None
        if abuse:
            acfg = {"proxy_port": self.proxy.port, "origin_port": self.ports["http"], "seed": self.cfg.seed,
                    "duration": seconds, "out": os.path.join(self.tmp, "abuser.json"),
                    "flood_rate": self.cfg.abuse_rate, "slowloris": self.cfg.slowloris}
            apath = os.path.join(self.tmp, "abuser-cfg.json")
            json.dump(acfg, open(apath, "w"))
            ab = self.spawn([PY, os.path.join(HERE, "abuser.py"), apath],
                            stderr=open(os.path.join(self.tmp, "abuser.err"), "w"))
        stop = threading.Event()
        threads = []
        if schedule:
            threads.append(threading.Thread(target=self.scheduler, args=(seconds, stop, phase == "warmup"),
                                            daemon=True))
        threads.append(threading.Thread(target=self.sampler, args=(stop,), daemon=True))
        for t in threads:
            t.start()
        t_end = time.time() + seconds
        seg_len = max(5.0, min(20.0, seconds / 3))
        while True:
            left = t_end - time.time()
            if left < 1.5:
                break
            self.run_wrk(min(seg_len, left), phase)
        stop.set()
        for t in threads:
            t.join(30)
        for p in (cl, ab):
            if p is not None:
                try:
                    p.wait(self.cfg.upstream_timeout + 30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    self.notes.append("a client process of %s had to be killed" % phase)
        if ab is not None:
            try:
                self.abuse = json.load(open(os.path.join(self.tmp, "abuser.json")))
            except (OSError, ValueError):
                self.abuse = None

    def scheduler(self, seconds, stop, dense=False):
        """SIGHUP every 30 s, kill -9 of a worker every 60 s, both intervals
        scaled by SOAK_MINUTES/3 below 3 minutes (so a short run still has
        kills and reloads); never in the last 3 s. dense (the warm-up): ten
        SIGHUPs and three kills in the phase, so the master's heap (which
        every generation's allocations grow to a plateau; forked workers
        inherit it) is at its plateau before the baseline is measured."""
        scale = min(1.0, self.cfg.minutes / 3.0)
        ih, ik = 30.0 * scale, 60.0 * scale
        if dense:
            ih, ik = seconds / 10.0, seconds / 3.0
        plan = [(ih * (i + 0.5), "hup") for i in range(int(seconds / ih) + 1)]
        plan += [(ik * (i + 1), "kill") for i in range(int(seconds / ik) + 1)]
        plan = [(t, w) for t, w in plan if t <= seconds - 3]
        for what, at in (("hup", seconds * 0.25), ("kill", seconds * 0.6)):
            if not any(w == what for _, w in plan):
                plan.append((at, what))
        plan.sort()
        t0 = time.time()
        for at, what in plan:
            if stop.wait(max(0.0, t0 + at - time.time())):
                return
            if what == "hup":
                self.proxy.hup()
                log("SIGHUP")
            else:
                pid = self.proxy.kill_worker(self.rng)
                log("kill -9 worker %s" % pid)

    @staticmethod
    def connections_of(status, addr):
        """The connections /hopcache/status's "top_clients" gives for addr:
        a list of objects ({"client"|"address"|"addr"|"ip": ADDR,
        "connections"|"conns": N}) or an object {ADDR: N | {...}}."""
        top = status.get("top_clients")
        items = []
        if isinstance(top, dict):
            items = [dict(v, client=k) if isinstance(v, dict) else {"client": k, "connections": v}
                     for k, v in top.items()]
        elif isinstance(top, list):
            items = [x for x in top if isinstance(x, dict)]
        for x in items:
            if any(x.get(k) == addr for k in ("client", "address", "addr", "ip")):
                for k in ("connections", "conns", "connections_active"):
                    if isinstance(x.get(k), (int, float)):
                        return x[k]
        return None

    def sampler(self, stop):
        while not stop.wait(2.0):
            w = self.proxy.current_workers()
            self.mem_series.append((time.time(), rss_kib(self.proxy.proc.pid, "RssAnon"),
                                    max((rss_kib(p, "RssAnon") for p in w), default=0)))
            n = self.connections_of(self.proxy.status(), "127.0.0.2")
            if n is not None:
                self.samples.append((time.time(), n))

    def drain(self):
        """Wait until no client connection is open (the scrape itself aside)
        and the upstream pools have timed out."""
        own = 1  # the scrape's own connection (counted on the admin listener too)
        deadline = time.time() + 40
        m = {}
        while time.time() < deadline:
            m = self.proxy.metrics()
            if m.get("hopcache_connections_active", 0) <= own and m.get("hopcache_tunnels_active", 0) == 0:
                break
            time.sleep(0.5)
        else:
            self.notes.append("connections did not drain: %s" % {k: v for k, v in m.items() if "active" in k})
        time.sleep(self.cfg.pool_idle + 1.5)

    def settle(self, seconds, phase, label):
        st = max((start_time(p) for p in self.proxy.workers()), default=0)
        self.proxy.hup()
        time.sleep(0.5)
        self.proxy.wait_workers(fresh_after=st)
        self.load_phase(seconds, phase)
        return self.measure(label)

    def measure(self, label):
        fresh = 0
        self.proxy.wait_workers(fresh)
        self.drain()
        m = self.proxy.measure()
        log("%s: fds %d, worker RSS %s KiB (anon %s, file %s, shmem %s), master RSS %d KiB (anon %d)" % (
            label, m["fds"], sorted(m["rss"].values()), sorted(m["anon"].values()), sorted(m["file"].values()),
            sorted(m["shmem"].values()), m["master_rss"], m["master_anon"]))
        return m

    # the end: cached bodies
    def check_cache(self):
        """Every URL the load can have stored, asked with only-if-cached
        (and any staleness allowed), so nothing is fetched: a 504 is "not
        stored"; a 200 must be a hit whose body is the origin's, byte for
        byte; a fault path must never be stored."""
        urls = ["/hot/%d" % i for i in range(soaklib.HOT_N)] + ["/vary/%d" % i for i in range(soaklib.VARY_N)]
        urls += ["/cold/%d" % i for i in range(soaklib.COLD_N)] + ["/fault/%s" % f for f in soaklib.FAULTS]
        res = {"candidates": 0, "hits": 0, "bad": [], "stored_faults": [], "not_hit": []}
        for path in urls:
            for lang in (soaklib.LANGS if path.startswith("/vary/") else (None,)):
                res["candidates"] += 1
                r = self.get_via_proxy(path, lang, "only-if-cached, max-stale=100000000")
                if r is None or r.status == 504:
                    continue
                if path.startswith("/fault/"):
                    res["stored_faults"].append("%s %d" % (path, r.status))
                    continue
                if r.status != 200:
                    res["bad"].append("%s %s: status %d" % (path, lang, r.status))
                    continue
                origin = self.get_origin(path, lang)
                cs = r.get("cache-status") or ""
                if origin is None or r.body != origin:
                    res["bad"].append("%s %s: %d bytes differ from the origin's %s" % (
                        path, lang, len(r.body), "?" if origin is None else len(origin)))
                elif not re.search(r"(^|;)\s*hit\b", cs) or r.get("age") is None:
                    res["not_hit"].append("%s %s: Cache-Status %r Age %r" % (path, lang, cs, r.get("age")))
                else:
                    res["hits"] += 1
        return res

    def get_via_proxy(self, path, lang, cc):
        """One request on a keep-alive connection from 127.0.0.1 (reopened
        when the proxy closes it); None when no response came, twice."""
        o = "127.0.0.1:%d" % self.ports["http"]
        h = "GET http://%s%s HTTP/1.1\r\nHost: %s\r\nCache-Control: %s\r\n" % (o, path, o, cc)
        if lang:
            h += "Accept-Language: %s\r\n" % lang
        for _ in range(2):
            try:
                if getattr(self, "_vc", None) is None:
                    s = soaklib.connect(("127.0.0.1", self.proxy.port), "127.0.0.1", 10)
                    self._vc = (s, soaklib.Reader(s))
                s, rd = self._vc
                s.sendall((h + "\r\n").encode())
                r = rd.read_response()
                if r.close:
                    s.close()
                    self._vc = None
                return r
            except (OSError, soaklib.Cut):
                if getattr(self, "_vc", None) is not None:
                    self._vc[0].close()
                self._vc = None
        return None

    def get_origin(self, path, lang):
        h = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % path
        if lang:
            h += "Accept-Language: %s\r\n" % lang
        try:
            s = soaklib.connect(("127.0.0.1", self.ports["http"]), "127.0.0.1", 10)
            try:
                s.sendall((h + "Connection: close\r\n\r\n").encode())
                r = soaklib.Reader(s).read_response()
                return r.body if r.status == 200 else None
            finally:
                s.close()
        except (OSError, soaklib.Cut):
            return None

    def cache_stats(self):
        r = subprocess.run([self.cfg.binary, "-c", self.proxy.ini, "--cache-stats"], capture_output=True, text=True,
                           env=self.proxy.env())
        out = {}
        for ln in r.stdout.splitlines():
            k, _, v = ln.partition(" ")
            if v.isdigit():
                out[k] = int(v)
        return out

    # -- main ------------------------------------------------------------------
    def run(self):
        c = self.cfg
        log("seed %d (SOAK_SEED=%d reproduces the load's choices), SOAK_MINUTES=%g, limits %s, admin listener %s, "
            "binary %s, temp dir %s" % (c.seed, c.seed, c.minutes, "on" if c.limits else "off",
                                        "on" if c.admin else "off", c.binary, self.tmp))
        for tool in ("wrk", "cc"):
            if not shutil.which(tool):
                raise SystemExit("%s is needed (apt-get install wrk build-essential)" % tool)
        if not os.path.exists(c.binary):
            raise SystemExit("no hopcache binary at %s (set HOPCACHE)" % c.binary)
        self.build_shim()
        self.start_origin()
        self.proxy = Proxy(c, self.tmp)
        self.proxy.start()
        log("proxy on %d (admin %s), origin %s" % (self.proxy.port, self.proxy.admin_port, self.ports))
        D = c.minutes * 60
        W = max(20.0, min(90.0, D * 0.15))
        S = max(5.0, min(20.0, D * 0.05))
        # Warm-up: the main phase's load, faults, abuse, kills and reloads,
        # shorter, so the processes reach the memory and descriptors such a
        # run needs (heap high-water marks, generations overlapping) before
        # the baseline. Each measurement is taken the same way ("settle"):
        # a SIGHUP (a fresh generation, as the workers at the end will be),
        # S seconds of plain load, the connections drained, then /proc.
        self.load_phase(W, "warmup", faults=True, abuse=True, schedule=True)
        self.base = self.settle(S, "settle1", "after warm-up")
        self.main_start = time.time()
        self.load_phase(D, "main", faults=True, abuse=True, schedule=True)
        self.main_end = time.time()
        self.end = self.settle(S, "settle2", "at the end")
        self.cache = self.check_cache()
        if getattr(self, "_vc", None) is not None:
            self._vc[0].close()
        self.metrics_end = self.proxy.metrics()
        self.exit_status = self.proxy.stop()
        self.stats = self.cache_stats()
        return self.report()

    # -- the verdict -----------------------------------------------------------
    def report(self):
        c = self.cfg
        rows = []
        fails = []

        def row(name, value, ok, limit=""):
            verdict = "n/a" if ok is None else ("PASS" if ok else "FAIL")
            rows.append((name, str(value), limit, verdict))
            if ok is False:
                fails.append(name)

        kills = [t for t, _ in self.proxy.killed]
        hups = self.proxy.hups
        conns_bound = c.wrk_conns + c.python_conns  # what one worker could have had in flight

        def after_kill(t, window=2.0):
            # from just before the kill was recorded (the client may see the
            # reset before the driver's clock is read) to `window` after
            return any(k - 0.5 <= t <= k + window for k in kills)

        def after_hup_or_kill(t):
            return after_kill(t, 2.0) or any(h <= t <= h + c.drain_timeout + 2 for h in hups)

        # Python clients
        events = []
        try:
            with open(self.events_file) as f:
                events = [json.loads(ln) for ln in f if ln.strip()]
        except OSError:
            pass
        py = {"ok": 0, "proxy5xx": 0, "fail": [], "kill_lost": 0, "retry_ok": 0, "retry_bad": []}
        faults = {}
        lost_per_kill = {k: 0 for k in kills}
        for e in events:
            is_fault = e["what"].startswith("/fault/")
            if e["cls"] == "retry":
                if after_hup_or_kill(e["t"]):
                    py["retry_ok"] += 1
                else:
                    py["retry_bad"].append(e)
                continue
            if e["cls"] == "cut" and after_kill(e["t"]):
                py["kill_lost"] += 1
                for k in kills:
                    if k - 0.5 <= e["t"] <= k + 2:
                        lost_per_kill[k] += 1
                        break
                continue
            if is_fault:
                f = faults.setdefault(e["what"].rsplit("/", 1)[1], {"n": 0, "ok": 0, "bad": [], "how": {}})
                f["n"] += 1
                if e["cls"] == "fault_ok":
                    f["ok"] += 1
                    how = re.sub(r"\(\d+ bytes, [\d.]+s\)", "", e["detail"]).strip()
                    f["how"][how] = f["how"].get(how, 0) + 1
                else:
                    f["bad"].append(e)
                continue
            if e["cls"] == "ok":
                py["ok"] += 1
            elif e["cls"] == "proxy5xx":
                py["proxy5xx"] += 1
            else:
                py["fail"].append(e)

        # wrk
        w = {"ok": 0, "e5xx_ps": 0, "bad": 0, "badsum": 0, "e5xx_nops": 0, "other": 0, "sockerr": 0, "timeout": 0, "unexplained": 0, "kill_lost": 0,
             "broken": []}
        for s in self.wrk_segments:
            if "broken" in s:
                w["broken"].append(s["broken"])
                continue
            w["ok"] += s["ok"]
            w["e5xx_ps"] += s["e5xx_ps"]
            w["bad"] += s["badsum"] + s["e5xx_nops"] + s["other"]
            for k in ("badsum", "e5xx_nops", "other"):
                w[k] += s[k]
            w["timeout"] += s["timeout"]
            err = s["connect"] + s["read"] + s["write"]
            w["sockerr"] += err
            ks = [k for k in kills if s["start"] - 2 <= k <= s["end"]]
            if err and ks and err <= len(ks) * c.wrk_conns:
                w["kill_lost"] += err
                for k in ks:
                    lost_per_kill[k] = lost_per_kill.get(k, 0) + err / len(ks)
            elif err:
                w["unexplained"] += err

        total = w["ok"] + w["e5xx_ps"] + w["bad"] + w["timeout"] + w["unexplained"] + py["ok"] + py["proxy5xx"] + len(py["fail"])
        succ = w["ok"] + py["ok"]
        # a re-send that followed no SIGHUP or kill is a failure too (not a
        # request of its own: the request sent again is counted once, above)
        unexplained = (w["bad"] + w["timeout"] + w["unexplained"] + len(py["fail"]) + len(py["retry_bad"]) +
                       len(w["broken"]))
        pct = 100.0 * succ / total if total else 0.0
        row("well-behaved requests (127.0.0.3) succeeded", "%d of %d = %.3f %% (wrk %d, Python %d)" % (
            succ, total, pct, w["ok"], py["ok"]), total > 0 and pct >= 99.9, ">= 99.9 %")
        row("well-behaved 5xx with Proxy-Status (not fault paths)", "%d (wrk %d, Python %d)" % (
            w["e5xx_ps"] + py["proxy5xx"], w["e5xx_ps"], py["proxy5xx"]), True, "allowed, counted as not succeeded")
        row("well-behaved failures not explained by a kill", "%d (wrk: body not the origin's %d, 5xx without "
            "Proxy-Status %d, other status %d, timeouts %d, socket errors %d; Python %d)" % (
                unexplained, w["badsum"], w["e5xx_nops"], w["other"], w["timeout"], w["unexplained"],
                len(py["fail"]) + len(py["retry_bad"])),
            unexplained == 0, "0")
        maxlost = max(lost_per_kill.values()) if lost_per_kill else 0
        row("requests lost to kill -9 (reset/EOF within 2 s of a kill)", "%d over %d kills (wrk %d, Python %d); "
            "most for one kill %.0f" % (w["kill_lost"] + py["kill_lost"], len(kills), w["kill_lost"], py["kill_lost"],
                                       maxlost), maxlost <= conns_bound,
            "<= %d a kill (wrk + Python connections)" % conns_bound)
        row("keep-alive requests re-sent after the server closed (RFC 9112 9.3.1)",
            "%d after a SIGHUP or kill, %d otherwise" % (py["retry_ok"], len(py["retry_bad"])),
            not py["retry_bad"], "0 otherwise")
        fault_bad = sum(len(f["bad"]) for f in faults.values())
        desc = "; ".join("%s %d/%d (%s)" % (k, f["ok"], f["n"], ", ".join("%s x%d" % (h, n) for h, n in
                                                                       sorted(f["how"].items())))
                         for k, f in sorted(faults.items()))
        row("fault paths answered 5xx + Proxy-Status or cut after the head", desc or "none requested",
            bool(faults) and fault_bad == 0 and all(f["n"] for f in faults.values()), "all")
        # schedule
        deaths = re.findall(r"worker pid (\d+) (killed by signal (\d+)|exited with status \d+)", self.proxy.logs())
        killed_pids = {str(p) for _, p in self.proxy.killed}
        unexpected = [d for d in deaths if d[0] not in killed_pids]
        row("worker kills (kill -9) / SIGHUPs done", "%d / %d" % (len(kills), len(hups)),
            len(kills) >= 1 and len(hups) >= 1, ">= 1 each")
        row("unexpected worker deaths", "%d %s" % (len(unexpected), unexpected[:3] if unexpected else ""),
            not unexpected, "0")
        refused = len(re.findall(r"reload refused", self.proxy.logs()))
        row("reloads refused", refused, refused == 0, "0")
        # abusive address
        ab = self.abuse or {}
        mm = self.metrics_end or {}
        refusals = {k: int(v) for k, v in mm.items() if k.startswith("hopcache_limit_refusals_total")}
        if not c.limits:
            row("abusive 127.0.0.2: 429s", "n/a (limits off); slowloris answers %s, flood 200s %s" % (
                ab.get("sl_responses"), ab.get("ok")), None)
            row("abusive 127.0.0.2: successful requests <= its share", "n/a (limits off)", None)
            row("abusive 127.0.0.2: concurrent connections <= its share", "n/a (limits off); peak held %s" %
                ab.get("peak_held"), None)
        else:
            n429 = ab.get("r429", 0) + ab.get("sl_responses", {}).get("429", 0)
            row("abusive 127.0.0.2: 429s (Retry-After + Proxy-Status)", "%d (rate %d, connections %d; %d malformed); "
                "errors named %s" % (n429, ab.get("r429", 0), ab.get("sl_responses", {}).get("429", 0),
                                     ab.get("r429_bad", 0), ab.get("ps_errors")),
                n429 > 0 and ab.get("r429_bad", 1) == 0, "> 0, all well-formed")
            dur = ((ab.get("last_ok") or 0) - (ab.get("first_request") or 0)) if ab.get("last_ok") else 0
            share = c.rate * (max(0.0, dur) + 1.0) + c.burst
            row("abusive 127.0.0.2: successful requests <= rate x duration + burst",
                "%d of %d sent (over %.0f s)" % (ab.get("ok", 0), ab.get("requests", 0), dur),
                ab.get("ok", 0) <= share, "<= %d x (%.0f + 1 s) + %d = %.0f" % (c.rate, dur, c.burst, share))
            # The limit is counted over all workers, so the connections the
            # proxy holds (client side: open > 2 s with no answer) must stay
            # within max_connections_per_client itself. /hopcache/status may
            # count a connection refused at accept for an instant (counted,
            # then checked), so its peak gets the looser bound of the limit
            # in every worker.
            peak_status = max((n for _, n in self.samples), default=None)
            cap = c.max_conns_client * c.workers
            row("abusive 127.0.0.2: concurrent connections held",
                "peak %d (client side, > 2 s without an answer); /hopcache/status top_clients peak %s" % (
                    ab.get("peak_held", 0), peak_status),
                ab.get("peak_held", 0) <= c.max_conns_client and (peak_status is None or peak_status <= cap),
                "client side <= max_connections_per_client = %d; status <= that x workers = %d" % (
                    c.max_conns_client, cap))
            byreason = {re.sub(r".*reason=\"(\w+)\".*", r"\1", k): v for k, v in refusals.items()}
            row("limit refusals (hopcache_limit_refusals_total)",
                ", ".join("%s=%d" % kv for kv in sorted(byreason.items())) or "none",
                byreason.get("client_connections", 0) > 0 and byreason.get("client_rate", 0) > 0,
                "client_connections > 0 and client_rate > 0")
        # leaks
        bf, ef = self.base["fds"], self.end["fds"]
        row("open fds, master + workers (drained)", "%d after warm-up, %d at the end" % (bf, ef),
            abs(ef - bf) <= 0.05 * bf, "within 5 %")
        # Worker memory: the max over the current workers, of RssAnon. The
        # max, because each worker's figure is what one process holds (the
        # sum would move with a worker still starting or draining, and
        # killed workers were replaced by fresh ones; both measurements are
        # of a fresh generation after the same load). RssAnon, because it is
        # the private memory a leak grows; RssFile (the pages of the cache's
        # LMDB map a worker touched: the store fills during the run) and
        # RssShmem (the shared metrics region, whose slots fill as workers
        # are replaced) grow by design up to fixed sizes; VmRSS is shown too.
        ba, ea = max(self.base["anon"].values()), max(self.end["anon"].values())
        br, er = max(self.base["rss"].values()), max(self.end["rss"].values())
        row("worker private memory (RssAnon), max over the current workers (drained)",
            "%d KiB after warm-up, %d KiB at the end (VmRSS %d -> %d KiB)" % (ba, ea, br, er),
            abs(ea - ba) <= 0.05 * ba, "within 5 %")
        row("master memory (for information)", "RssAnon %d -> %d KiB, VmRSS %d -> %d KiB" % (
            self.base["master_anon"], self.end["master_anon"], self.base["master_rss"], self.end["master_rss"]), None)
        # cache
        evictions = len(re.findall(r"evicted \d+ record", self.proxy.logs()))
        st = self.stats
        row("cache at its size limit, evicting", "%d eviction runs logged; store %s of %s bytes, %s entries" % (
            evictions, st.get("bytes"), st.get("map_size"), st.get("entries")), evictions > 0, "> 0 evictions")
        ch = self.cache
        unreached = (st.get("entries", 0) - ch["hits"]) if st else None
        row("cached bodies equal to the origin's (only-if-cached, Cache-Status hit)",
            "%d verified, %d differ, %d not a hit, %d of %d candidates not cached; fault paths stored: %d; "
            "store entries not reached: %s (Vary markers, at most %d)" % (
                ch["hits"], len(ch["bad"]), len(ch["not_hit"]), ch["candidates"] - ch["hits"] - len(ch["bad"]) -
                len(ch["not_hit"]) - len(ch["stored_faults"]), ch["candidates"], len(ch["stored_faults"]),
                unreached, soaklib.VARY_N),
            ch["hits"] > 0 and not ch["bad"] and not ch["not_hit"] and not ch["stored_faults"] and
            (unreached is not None and 0 <= unreached <= soaklib.VARY_N), "all equal, all hits")
        san = sorted(os.listdir(self.proxy.san_dir))
        logsan = re.findall(r"^.*(?:AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:).*$",
                            self.proxy.logs(), re.M)
        row("sanitizer reports", "%d files %s, %d log lines" % (len(san), san[:3], len(logsan)),
            not san and not logsan, "0")
        row("proxy exit status on SIGTERM", self.exit_status, self.exit_status == 0, "0")

        out = ["", "## hopcache soak: SOAK_MINUTES=%g, seed %d, limits %s, admin listener %s" % (
            c.minutes, c.seed, "on" if c.limits else "off", "on" if c.admin else "off"), "",
            "| criterion | measured | bound | verdict |", "|---|---|---|---|"]
        for r in rows:
            out.append("| %s |" % " | ".join(x.replace("|", "/") for x in r))
        out.append("")
        out.append("binary %s; %d workers; wrk -t1 -c%d (%d ms pacing); upstream_timeout %d s; [cache] size %s; "
                   "%s; %d wrk segments" % (c.binary, c.workers, c.wrk_conns, c.wrk_delay, c.upstream_timeout,
                                            c.cache_size, c.rate_spec if c.limits else "no per-client limits",
                                            len(self.wrk_segments)))
        if self.mem_series:
            step = max(1, len(self.mem_series) // 12)
            out.append("master / max worker RssAnon KiB under load: %s" % ", ".join(
                "%d/%d" % (m, w) for _, m, w in self.mem_series[::step]))
        for n in self.notes:
            out.append("note: %s" % n)
        details = []
        for e in (py["fail"] + py["retry_bad"])[:15]:
            details.append("failure %s %s %s: %s %s" % (time.strftime("%H:%M:%S", time.localtime(e["t"])),
                                                        e["client"], e["what"], e["cls"], e["detail"]))
        for k, f in faults.items():
            for e in f["bad"][:5]:
                details.append("fault %s at %s: %s %s" % (k, time.strftime("%H:%M:%S", time.localtime(e["t"])),
                                                          e["cls"], e["detail"]))
        try:
            with open(os.path.join(self.tmp, "wrk-bad.txt")) as f:
                details += ["wrk %s" % ln.rstrip() for ln in f.readlines()[:10]]
        except OSError:
            pass
        for b in w["broken"][:3]:
            details.append("wrk: %s" % b)
        for x in (ch["bad"] + ch["not_hit"] + ch["stored_faults"])[:10]:
            details.append("cache: %s" % x)
        if details:
            out.append("")
            out += ["- " + d for d in details]
        out.append("")
        out.append("RESULT: %s" % ("PASS" if not fails else "FAIL (%s)" % "; ".join(fails)))
        text = "\n".join(out)
        print(text)
        if c.out:
            with open(c.out, "w") as f:
                f.write(text + "\n")
        return 0 if not fails else 1


def main():
    cfg = Cfg()
    s = Soak(cfg)
    rc = 2
    try:
        rc = s.run()
    except SystemExit as e:
        log("ERROR: %s" % e)
        rc = 2
    except KeyboardInterrupt:
        log("interrupted")
        rc = 130
    finally:
        if getattr(s, "proxy", None) is not None and s.proxy.proc is not None and s.proxy.proc.poll() is None:
            s.proxy.stop()
        s.cleanup()
        if rc == 0 and not cfg.keep:
            shutil.rmtree(s.tmp, ignore_errors=True)
        else:
            log("temp dir kept: %s" % s.tmp)
    return rc


if __name__ == "__main__":
    sys.exit(main())
