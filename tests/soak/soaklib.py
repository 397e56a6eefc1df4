"""Shared by the soak driver, its origin and its clients (stdlib only).

The origin's bodies are a pure function of (seed, path, language), so every
client can compute the exact bytes it must receive, and the driver can check
a cached body against the origin's without asking the origin. Every origin
response also carries X-Soak-Sum: the adler32 of its body, in decimal (what
wrk's Lua script checks, since it cannot know which request a response
answers).
"""

import functools
import random
import re
import socket
import time
import zlib

LANGS = ("en", "de", "fr")

# path families the origin serves and the clients ask for
HOT_N = 8          # /hot/0../hot/7: 2 KiB, max-age=3600 (hits)
COLD_N = 4000      # /cold/N: 1-32 KiB, max-age=30 + ETag (misses, revalidation, eviction)
VARY_N = 40        # /vary/N: Vary: Accept-Language, 4 KiB per language
NOSTORE_N = 16     # /nostore/N: no-store

FAULTS = ("reset", "stall", "stallbody", "badchunk", "badchunk_late", "closehead")


def adler(data):
    return zlib.adler32(data) & 0xffffffff


def body_size(path):
    kind, _, n = path.strip("/").partition("/")
    n = int(n) if n.isdigit() else 0
    if kind == "hot":
        return 2048
    if kind == "cold":
        return 1024 * (1 + (n * 7919) % 32)
    if kind == "vary":
        return 4096
    if kind == "nostore":
        return 1024 + (n % 8) * 512
    if kind == "fault":
        return 65536
    return 1024


@functools.lru_cache(maxsize=1024)
def body_for(seed, path, lang=""):
    """The exact bytes the origin sends for GET path (lang: the variant)."""
    r = random.Random("%s|%s|%s" % (seed, path, lang))
    head = ("%s %s\n" % (path, lang)).encode()
    return head + r.randbytes(body_size(path) - len(head))


def post_body(rng, size):
    """A self-checking request body: payload then its adler32 in 10 digits.
    The origin refuses (400) a body whose trailer does not match."""
    payload = rng.randbytes(size)
    return payload + b"%010d" % adler(payload)


def post_body_ok(body):
    if len(body) < 10 or not body[-10:].isdigit():
        return False
    return int(body[-10:]) == adler(body[:-10])


def post_reply(body):
    return b"posted %d bytes, sum %d\n" % (len(body), adler(body))


# -- a small HTTP/1.1 response reader over a blocking socket ------------------

class Cut(Exception):
    """The connection ended (EOF or reset) before the response was complete.
    .got_head: the status line and fields had arrived; .head, .nbody."""

    def __init__(self, msg, got_head=False, head=None, nbody=0, reset=False):
        super().__init__(msg)
        self.got_head = got_head
        self.head = head
        self.nbody = nbody
        self.reset = reset


class Response:
    def __init__(self, status, reason, headers, body, close):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (lower name, value)
        self.body = body
        self.close = close

    def get(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None


class Reader:
    """Buffered reader of HTTP/1.1 responses on a socket (timeouts from the
    socket). read_response(head_request) returns a Response or raises Cut /
    socket.timeout."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.nread = 0  # bytes received so far on this connection

    def _fill(self, got_head=False, head=None, nbody=0):
        try:
            d = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError) as e:
            raise Cut("reset: %s" % e, got_head, head, nbody, reset=True)
        if not d:
            raise Cut("EOF", got_head, head, nbody)
        self.nread += len(d)
        self.buf += d

    def _line(self, got_head=False, head=None, nbody=0):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            if len(self.buf) > 65536:
                raise Cut("line too long", got_head, head, nbody)
            self._fill(got_head, head, nbody)

    def _exact(self, n, head, nbody0):
        while len(self.buf) < n:
            self._fill(True, head, nbody0 + len(self.buf))
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def read_response(self, head_request=False):
        while True:
            line = self._line()
            m = re.match(rb"HTTP/1\.([01]) (\d{3})(?: (.*))?$", line)
            if not m:
                raise Cut("bad status line %r" % line[:80], True)
            status = int(m.group(2))
            headers = []
            while True:
                h = self._line(True)
                if not h:
                    break
                k, _, v = h.partition(b":")
                headers.append((k.strip().lower().decode("latin-1"), v.strip().decode("latin-1")))
            if 100 <= status < 200:
                continue
            break
        r = Response(status, (m.group(3) or b"").decode("latin-1"), headers, b"", False)
        conn = (r.get("connection") or "").lower()
        r.close = "close" in conn or m.group(1) == b"0"
        if head_request or status in (204, 304):
            return r
        te = (r.get("transfer-encoding") or "").lower()
        cl = r.get("content-length")
        if "chunked" in te:
            body = b""
            while True:
                size_line = self._line(True, r, len(body))
                try:
                    size = int(size_line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise Cut("bad chunk size %r" % size_line[:40], True, r, len(body))
                if size == 0:
                    while self._line(True, r, len(body)):
                        pass
                    break
                body += self._exact(size, r, len(body))
                if self._line(True, r, len(body)) != b"":
                    raise Cut("bad chunk end", True, r, len(body))
            r.body = body
        elif cl is not None:
            r.body = self._exact(int(cl), r, 0)
        else:
            body = b""
            while True:
                try:
                    self._fill(True, r, len(body))
                except Cut:
                    break
                body += self.buf
                self.buf = b""
            r.body = body + self.buf
            self.buf = b""
            r.close = True
        return r


def connect(addr, source=None, timeout=10.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect(addr)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def proxy_status_error(ps):
    """'hopcache; error=foo; details="..."' -> 'foo' (or None)."""
    if not ps:
        return None
    m = re.search(r"(?:^|;)\s*error=([A-Za-z0-9_]+)", ps)
    return m.group(1) if m else None


def now():
    return time.time()
