"""Helpers for the hopcache integration tests: a buffered socket reader, an
HTTP/1.1 message parser for both directions, a raw-socket client, a scripted
recording origin (plain TCP or TLS), a fake DNS server and a curl wrapper.

Everything is stdlib only and every blocking call is bounded by a deadline.
"""

import hashlib
import os
import random
import re
import socket
import ssl
import struct
import subprocess
import threading
import time

TIMEOUT = 5.0  # default bound for every socket operation


def pid_alive(pid):
    """Is process pid running (not a zombie)?"""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False

# ---------------------------------------------------------------------------
# byte-stream reader


class Reader:
    """Buffered reads from a socket with deadlines. EOF and RST both count as
    end of stream (self.eof, self.reset)."""

    def __init__(self, sock, timeout=TIMEOUT, on_data=None):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False
        self.reset = False
        self.timeout = timeout
        self.on_data = on_data

    def _deadline(self, timeout):
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def _fill(self, deadline):
        """Read once more into buf; False at EOF. Raises socket.timeout."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline passed")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(256 * 1024)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
            self.reset = True
        except ssl.SSLError as e:  # TLS peer vanished
            if "EOF" in str(e) or "UNEXPECTED_EOF" in str(e):
                data = b""
            else:
                raise
        if not data:
            self.eof = True
            return False
        if self.on_data:
            self.on_data(data)
        self.buf += data
        return True

    def read_until(self, delim, timeout=None, limit=16 * 1024 * 1024):
        deadline = self._deadline(timeout)
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                out = bytes(self.buf[: i + len(delim)])
                del self.buf[: i + len(delim)]
                return out
            start = max(0, len(self.buf) - len(delim) + 1)
            if len(self.buf) > limit:
                raise ValueError("no %r within %d bytes" % (delim, limit))
            if not self._fill(deadline):
                raise EOFError("EOF before %r; got %r" % (delim, bytes(self.buf[:400])))

    def read_exact(self, n, timeout=None):
        deadline = self._deadline(timeout)
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise EOFError("EOF after %d of %d bytes" % (len(self.buf), n))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_some(self, timeout=None):
        """Whatever is buffered, or one recv; b'' at EOF."""
        if self.buf:
            out = bytes(self.buf)
            self.buf.clear()
            return out
        deadline = self._deadline(timeout)
        if not self._fill(deadline):
            return b""
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def read_to_eof(self, timeout=None):
        deadline = self._deadline(timeout)
        while self._fill(deadline):
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def wait_eof(self, timeout=None):
        """(closed, data): closed is True when EOF/RST came within timeout;
        data is whatever arrived before it."""
        deadline = self._deadline(timeout)
        try:
            while self._fill(deadline):
                pass
        except (socket.timeout, TimeoutError):
            out = bytes(self.buf)
            self.buf.clear()
            return False, out
        out = bytes(self.buf)
        self.buf.clear()
        return True, out


# ---------------------------------------------------------------------------
# HTTP messages

_TOKEN_RE = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class Message:
    """A parsed HTTP/1.1 request or response. headers: [(name, value)] as
    received (name case kept, OWS around the value removed), in order."""

    def __init__(self):
        self.raw_head = b""
        self.start_line = b""
        self.headers = []
        self.body = b""
        self.body_raw = b""
        self.trailers = []
        self.framing = "none"  # none | length | chunked | close
        self.complete = False

    def get_all(self, name):
        n = name.lower()
        return [v for (k, v) in self.headers if k.lower() == n]

    def get(self, name):
        vals = self.get_all(name)
        return vals[0] if vals else None

    def has(self, name):
        return bool(self.get_all(name))

    def tokens(self, name):
        """Lowercased comma-list elements across every field `name`."""
        out = []
        for v in self.get_all(name):
            out += [t.strip().lower() for t in v.split(",") if t.strip()]
        return out

    def joined(self, name):
        """Every field `name` combined with ', ' as RFC 9110 §5.3 allows."""
        return ", ".join(self.get_all(name))

    def names(self):
        return [k.lower() for (k, _) in self.headers]


class Response(Message):
    def __init__(self):
        super().__init__()
        self.version = ""
        self.status = 0
        self.reason = ""

    def __repr__(self):
        return "<Response %s %d %r headers=%r body=%r>" % (
            self.version, self.status, self.reason, self.headers, self.body[:200])


class Request(Message):
    def __init__(self):
        super().__init__()
        self.method = ""
        self.target = ""
        self.version = ""
        self.conn_id = None

    def __repr__(self):
        return "<Request %s %s %s headers=%r body=%r>" % (
            self.method, self.target, self.version, self.headers, self.body[:200])


def parse_fields(lines):
    out = []
    for line in lines:
        if b":" in line:
            k, v = line.split(b":", 1)
            out.append((k.decode("latin-1"), v.strip(b" \t").decode("latin-1")))
        else:
            out.append((line.decode("latin-1"), None))
    return out


def _split_head(head):
    lines = head[:-4].split(b"\r\n") if head.endswith(b"\r\n\r\n") else head.split(b"\r\n")
    return lines[0], parse_fields(lines[1:])


def read_chunked(reader, msg, timeout=None):
    raw = bytearray()
    body = bytearray()
    while True:
        line = reader.read_until(b"\r\n", timeout=timeout)
        raw += line
        size_txt = line[:-2].split(b";", 1)[0].strip(b" \t")
        size = int(size_txt, 16)
        if size == 0:
            while True:
                t = reader.read_until(b"\r\n", timeout=timeout)
                raw += t
                if t == b"\r\n":
                    break
                msg.trailers += parse_fields([t[:-2]])
            break
        data = reader.read_exact(size + 2, timeout=timeout)
        raw += data
        body += data[:-2]
    msg.body = bytes(body)
    msg.body_raw = bytes(raw)


def body_framing(msg, is_request, method=None, status=None):
    """Which framing applies (RFC 9112 §6.3)."""
    if not is_request:
        if method == "HEAD" or 100 <= status < 200 or status in (204, 304):
            return "none"
        if method == "CONNECT" and 200 <= status < 300:
            return "none"
    te = msg.tokens("transfer-encoding")
    if te:
        return "chunked" if te[-1] == "chunked" else "close"
    if msg.has("content-length"):
        return "length"
    return "none" if is_request else "close"


def read_body(reader, msg, framing, timeout=None):
    msg.framing = framing
    if framing == "none":
        msg.complete = True
    elif framing == "length":
        n = int(msg.get("content-length").split(",")[0].strip())
        msg.body = msg.body_raw = reader.read_exact(n, timeout=timeout)
        msg.complete = True
    elif framing == "chunked":
        read_chunked(reader, msg, timeout=timeout)
        msg.complete = True
    else:
        msg.body = msg.body_raw = reader.read_to_eof(timeout=timeout)
        msg.complete = True


def read_response(reader, method="GET", timeout=None):
    head = reader.read_until(b"\r\n\r\n", timeout=timeout)
    r = Response()
    r.raw_head = head
    r.start_line, r.headers = _split_head(head)
    m = re.match(rb"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", r.start_line)
    if not m:
        raise ValueError("bad status line %r" % r.start_line)
    r.version = m.group(1).decode()
    r.status = int(m.group(2))
    r.reason = (m.group(3) or b"").decode("latin-1")
    read_body(reader, r, body_framing(r, False, method, r.status), timeout=timeout)
    return r


def build_request(method, target, headers=(), body=None, version="HTTP/1.1"):
    out = bytearray(("%s %s %s\r\n" % (method, target, version)).encode("latin-1"))
    for h in headers:
        if isinstance(h, bytes):
            out += h + b"\r\n"
        else:
            out += ("%s: %s\r\n" % h).encode("latin-1")
    out += b"\r\n"
    if body:
        out += body
    return bytes(out)


REASONS = {100: "Continue", 101: "Switching Protocols", 103: "Early Hints", 200: "OK",
           201: "Created", 204: "No Content", 206: "Partial Content",
           304: "Not Modified", 400: "Bad Request", 404: "Not Found",
           500: "Internal Server Error", 502: "Bad Gateway"}


def http_response(status=200, headers=(), body=b"", reason=None, cl=True, version="HTTP/1.1"):
    """Canned response bytes. cl=True adds Content-Length unless headers has
    one or a Transfer-Encoding."""
    if reason is None:
        reason = REASONS.get(status, "Whatever")
    out = bytearray(("%s %d %s\r\n" % (version, status, reason)).encode("latin-1"))
    names = set()
    for h in headers:
        if isinstance(h, bytes):
            out += h + b"\r\n"
            names.add(h.split(b":")[0].strip().lower().decode("latin-1"))
        else:
            out += ("%s: %s\r\n" % h).encode("latin-1")
            names.add(h[0].lower())
    if cl and "content-length" not in names and "transfer-encoding" not in names:
        out += b"Content-Length: %d\r\n" % len(body)
    out += b"\r\n" + body
    return bytes(out)


def chunked(parts, trailers=(), ext=b""):
    out = bytearray()
    for p in parts:
        out += b"%x%s\r\n%s\r\n" % (len(p), ext, p)
    out += b"0\r\n"
    for t in trailers:
        out += t + b"\r\n"
    out += b"\r\n"
    return bytes(out)


def data_of(n, seed=1):
    """n deterministic pseudo-random bytes."""
    return random.Random(seed * 7919 + n).randbytes(n)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def wait_for(pred, timeout=3.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            return v
        time.sleep(interval)


def free_port():
    """A loopback port nobody listens on (bound then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ---------------------------------------------------------------------------
# raw client


class Client:
    """A raw-socket HTTP client talking to the proxy."""

    def __init__(self, port, host="127.0.0.1", timeout=TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.reader = Reader(self.sock, timeout)
        self.timeout = timeout

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method, target, headers=(), body=None, version="HTTP/1.1"):
        self.send(build_request(method, target, headers, body, version))

    def read_response(self, method="GET", timeout=None):
        return read_response(self.reader, method, timeout)

    def read_final(self, method="GET", timeout=None):
        """(list of 1xx interim responses, final response)."""
        interim = []
        while True:
            r = self.read_response(method, timeout)
            if 100 <= r.status < 200 and r.status != 101:
                interim.append(r)
                continue
            return interim, r

    def exchange(self, method, target, headers=(), body=None, version="HTTP/1.1"):
        self.request(method, target, headers, body, version)
        return self.read_final(method)[1]

    def wait_closed(self, timeout=3.0):
        return self.reader.wait_eof(timeout)

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------
# recording origin


CLOSE = object()     # responder item: close the connection
SHUT_WR = object()   # responder item: half-close (FIN) the connection


class OriginConn:
    def __init__(self, origin, sock, cid):
        self.origin = origin
        self.sock = sock
        self.id = cid
        self.received = bytearray()
        self.reader = Reader(sock, origin.timeout, on_data=self._count)
        self.closed = False
        # TLS origins fill these in once the handshake is done
        self.tls = False
        self.sni = None             # server name the client sent (None: no SNI)
        self.session_reused = None  # True when the client resumed a session
        self.tls_version = None     # "TLSv1.3", ...
        self.alpn = None            # ALPN protocol selected, if any

    def _count(self, data):
        with self.origin.lock:
            self.received += data
            self.origin.bytes_received += len(data)

    def read_request(self, timeout=None):
        """Parse the next request; None at a clean EOF before any byte. The
        request is recorded in origin.requests as soon as its head is read,
        and marked complete once its body has been read."""
        try:
            head = self.reader.read_until(b"\r\n\r\n", timeout=timeout)
        except EOFError:
            if self.reader.buf:
                with self.origin.lock:
                    self.origin.partial.append(bytes(self.reader.buf))
            return None
        req = Request()
        req.raw_head = head
        req.conn_id = self.id
        req.start_line, req.headers = _split_head(head)
        parts = req.start_line.split(b" ")
        if len(parts) == 3:
            req.method, req.target, req.version = (p.decode("latin-1") for p in parts)
        with self.origin.lock:
            self.origin.requests.append(req)
        if self.origin.auto_continue and "100-continue" in req.tokens("expect"):
            self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            read_body(self.reader, req, body_framing(req, True), timeout=timeout)
        except (EOFError, ValueError, socket.timeout, TimeoutError):
            req.complete = False
            return None
        return req

    def send(self, data):
        self.sock.sendall(data)

    def recv_some(self, timeout=None):
        return self.reader.read_some(timeout)

    def shutdown_write(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass


def default_responder(req):
    body = ("hello from origin: %s %s" % (req.method, req.target)).encode()
    out = http_response(200, [("Content-Type", "text/plain"), ("X-Origin", "yes")], body)
    if req.method == "HEAD":
        out = out[: out.index(b"\r\n\r\n") + 4]
    return out


class Origin:
    """A scripted origin on 127.0.0.1:<kernel port>, one thread per
    connection. It records exact bytes: `requests` (parsed, with raw_head and
    body_raw), each connection's `received` bytes, `bytes_received`.

    Script it with either
      origin.responder = fn(req) -> bytes | [bytes | float(sleep) | CLOSE | SHUT_WR ...] | None
    (None closes without answering), or for full control
      origin.handler = fn(conn: OriginConn)."""

    def __init__(self, tls_context=None, timeout=TIMEOUT, family=socket.AF_INET, host="127.0.0.1",
                 tls_sniff=False):
        """tls_sniff=True with a tls_context: a connection whose first byte
        is a TLS handshake record (0x16) gets TLS, any other plain HTTP, so
        one port serves both http:// and https://. Each TLS connection
        records .sni, .session_reused, .tls_version and .alpn."""
        self.tls_context = tls_context
        self.tls_sniff = tls_sniff
        if tls_context is not None and tls_context.sni_callback is None:
            tls_context.sni_callback = _record_sni
        self.timeout = timeout
        self.lock = threading.Lock()
        self.requests = []
        self.partial = []
        self.conns = []
        self.errors = []
        self.bytes_received = 0
        self.auto_continue = True
        self.responder = default_responder
        self.handler = None
        self.stopped = False
        self.lsock = socket.socket(family, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, 0))
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        self.host = host
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    @property
    def authority(self):
        return "%s:%d" % (self.host, self.port)

    def url(self, path="/"):
        return "http://%s:%d%s" % (self.host, self.port, path)

    def _accept_loop(self):
        while not self.stopped:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                cid = len(self.conns)
                conn = OriginConn(self, s, cid)
                self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.sock.settimeout(self.timeout)
            use_tls = self.tls_context is not None
            if use_tls and self.tls_sniff:
                first = conn.sock.recv(1, socket.MSG_PEEK)
                use_tls = first == b"\x16"
            if use_tls:
                _tls_local.sni = None
                conn.sock = self.tls_context.wrap_socket(conn.sock, server_side=True)
                conn.reader.sock = conn.sock
                conn.tls = True
                conn.sni = _tls_local.sni
                conn.session_reused = conn.sock.session_reused
                conn.tls_version = conn.sock.version()
                conn.alpn = conn.sock.selected_alpn_protocol()
            (self.handler or self.serve_http)(conn)
        except Exception as e:  # recorded for debugging; tests assert on behaviour
            with self.lock:
                self.errors.append(repr(e))
        finally:
            conn.close()

    def serve_http(self, conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            out = self.responder(req)
            if out is None:
                return
            if isinstance(out, (bytes, bytearray)):
                out = [out]
            for item in out:
                if item is CLOSE:
                    return
                if item is SHUT_WR:
                    conn.shutdown_write()
                elif isinstance(item, (int, float)):
                    time.sleep(item)
                else:
                    conn.send(item)
            last = out[-1] if out else b""
            if isinstance(last, (bytes, bytearray)) and re.search(
                    rb"(?i)\r\nconnection:[^\r]*close", bytes(last).split(b"\r\n\r\n")[0]):
                return

    def wait_requests(self, n=1, timeout=3.0):
        return wait_for(lambda: len(self.requests) >= n, timeout)

    def complete_requests(self):
        return [r for r in self.requests if r.complete]

    def stop(self):
        self.stopped = True
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()


def echo_handler(conn):
    """Tunnel-style echo: send back every byte; at the client's FIN, FIN too."""
    while True:
        data = conn.recv_some(timeout=10)
        if not data:
            conn.shutdown_write()
            return
        conn.send(data)


# ---------------------------------------------------------------------------
# fake DNS (UDP on loopback) so no test ever sends a query off the machine


class FakeDNS:
    """Answers A/AAAA from `records` ({name: {"A": [...], "AAAA": [...]}}),
    NXDOMAIN for names not in it, and nothing at all for names in `drop`."""

    def __init__(self, records=None, drop=()):
        self.records = {k.lower().rstrip("."): v for k, v in (records or {}).items()}
        self.drop = set(d.lower() for d in drop)
        self.queries = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while not self.stopped:
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                resp = self._answer(data)
            except Exception:
                continue
            if resp:
                try:
                    self.sock.sendto(resp, addr)
                except OSError:
                    pass

    def _answer(self, q):
        qid, flags, qd = struct.unpack("!HHH", q[:6])
        i = 12
        labels = []
        while q[i]:
            n = q[i]
            labels.append(q[i + 1:i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
        i += 1
        qtype, qclass = struct.unpack("!HH", q[i:i + 4])
        question = q[12:i + 4]
        name = ".".join(labels).lower()
        self.queries.append((name, qtype))
        if name in self.drop:
            return None
        rec = self.records.get(name)
        rd = flags & 0x0100
        answers = []
        if rec is None:
            rcode = 3
        else:
            rcode = 0
            if qtype == 1:
                for a in rec.get("A", []):
                    answers.append(struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(a))
            elif qtype == 28:
                for a in rec.get("AAAA", []):
                    answers.append(struct.pack("!HHHIH", 0xC00C, 28, 1, 60, 16) +
                                   socket.inet_pton(socket.AF_INET6, a))
        hdr = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x0080 | rcode, 1, len(answers), 0, 0)
        return hdr + question + b"".join(answers)

    def resolv_conf(self, path):
        with open(path, "w") as f:
            f.write("nameserver 127.0.0.1:%d\noptions timeout:1 attempts:1\n" % self.port)
        return path

    def stop(self):
        self.stopped = True
        self.sock.close()


# ---------------------------------------------------------------------------
# TLS


_tls_local = threading.local()  # the SNI seen by the handshake running in this thread


def _record_sni(sslobj, server_name, ctx):
    """SSLContext.sni_callback of Origin's TLS contexts: remember the name
    (the handshake runs in the connection's own thread)."""
    _tls_local.sni = server_name
    return None


def make_cert(dirpath):
    cert = os.path.join(dirpath, "cert.pem")
    key = os.path.join(dirpath, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-subj", "/CN=localhost", "-days", "1",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def server_tls_context(cert, key, alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def _openssl(args, timeout=30):
    p = subprocess.run(["openssl"] + list(args), capture_output=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: rc %d\n%s" % (" ".join(args), p.returncode,
                                                       p.stderr.decode("utf-8", "replace")))
    return p.stdout


class CA:
    """A throwaway certificate authority made by make_ca: .cert (PEM),
    .key, .dir, .name (subject CN)."""

    def __init__(self, dirpath, cert, key, name):
        self.dir, self.cert, self.key, self.name = dirpath, cert, key, name

    def __repr__(self):
        return "<CA %s %s>" % (self.name, self.cert)


_serial = [int(time.time() * 1000) & 0xFFFFFFFF]


def _next_serial():
    _serial[0] += 1
    return "0x%x%04x" % (_serial[0], random.getrandbits(16))


def _ec_key(path):
    _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path])


def make_ca(dirpath, name="hopcache test CA", issuer=None):
    """A CA certificate and key (EC P-256) in dirpath, self-signed, or an
    intermediate signed by `issuer` (a CA)."""
    os.makedirs(dirpath, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    cert = os.path.join(dirpath, slug + ".pem")
    key = os.path.join(dirpath, slug + ".key")
    _ec_key(key)
    ext = os.path.join(dirpath, slug + ".ext")
    with open(ext, "w") as f:
        f.write("[v3_ca]\nbasicConstraints = critical, CA:TRUE\n"
                "keyUsage = critical, keyCertSign, cRLSign\n"
                "subjectKeyIdentifier = hash\n"
                "authorityKeyIdentifier = keyid:always\n")
    if issuer is None:
        _openssl(["req", "-x509", "-new", "-key", key, "-subj", "/CN=" + name, "-days", "3",
                  "-set_serial", _next_serial(), "-config", ext, "-extensions", "v3_ca", "-out", cert])
    else:
        csr = os.path.join(dirpath, slug + ".csr")
        _openssl(["req", "-new", "-key", key, "-subj", "/CN=" + name, "-out", csr])
        _openssl(["x509", "-req", "-in", csr, "-CA", issuer.cert, "-CAkey", issuer.key,
                  "-set_serial", _next_serial(), "-days", "3", "-extfile", ext, "-extensions", "v3_ca",
                  "-out", cert])
    return CA(dirpath, cert, key, name)


def make_leaf(dirpath, ca, names=("localhost",), ips=("127.0.0.1",), cn=None, tag=None, chain=False):
    """A server certificate signed by `ca` with subjectAltName DNS:names and
    IP:ips (EC P-256 key). Returns (cert_path, key_path); chain=True puts
    the issuing CA's certificate after the leaf in cert_path (for an
    intermediate). `tag` names the files (default: derived from cn/names)."""
    os.makedirs(dirpath, exist_ok=True)
    if cn is None:
        cn = names[0] if names else (ips[0] if ips else "hopcache test leaf")
    if tag is None:
        tag = re.sub(r"[^A-Za-z0-9]+", "-", cn).strip("-").lower() + "-%d" % time.monotonic_ns()
    cert = os.path.join(dirpath, tag + ".pem")
    key = os.path.join(dirpath, tag + ".key")
    csr = os.path.join(dirpath, tag + ".csr")
    ext = os.path.join(dirpath, tag + ".ext")
    _ec_key(key)
    _openssl(["req", "-new", "-key", key, "-subj", "/CN=" + cn, "-out", csr])
    san = ["DNS:" + n for n in names] + ["IP:" + i for i in ips]
    with open(ext, "w") as f:
        f.write("[v3_leaf]\nbasicConstraints = critical, CA:FALSE\n"
                "keyUsage = critical, digitalSignature\n"
                "extendedKeyUsage = serverAuth\n"
                "subjectKeyIdentifier = hash\n"
                "authorityKeyIdentifier = keyid, issuer\n")
        if san:
            f.write("subjectAltName = %s\n" % ", ".join(san))
    _openssl(["x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-set_serial", _next_serial(),
              "-days", "2", "-extfile", ext, "-extensions", "v3_leaf", "-out", cert])
    if chain:
        with open(cert, "ab") as f, open(ca.cert, "rb") as c:
            f.write(c.read())
    return cert, key


def cert_info(cert_path):
    """(subject CN, serial hex upper-case) of the first certificate in a PEM file."""
    out = _openssl(["x509", "-in", cert_path, "-noout", "-serial", "-subject", "-nameopt", "multiline"])
    text = out.decode("utf-8", "replace")
    serial = re.search(r"serial=([0-9A-Fa-f]+)", text).group(1).upper()
    m = re.search(r"commonName\s*=\s*(.+)", text)
    return (m.group(1).strip() if m else None), serial


def tls_client(port, ctx, server_hostname="127.0.0.1", host="127.0.0.1", timeout=TIMEOUT,
               source_address=None):
    """A Client whose connection to host:port is wrapped in TLS with ctx
    (handshake done; raises ssl.SSLError / OSError when it fails)."""
    raw = socket.create_connection((host, port), timeout=timeout, source_address=source_address)
    try:
        s = ctx.wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise
    c = Client.__new__(Client)
    c.sock = s
    c.reader = Reader(s, timeout)
    c.timeout = timeout
    return c


def client_tls_context(cert=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cert:
        ctx.load_verify_locations(cert)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ---------------------------------------------------------------------------
# curl


class CurlResult:
    def __init__(self, proc, head_text, body):
        self.rc = proc.returncode
        self.stderr = proc.stderr.decode("utf-8", "replace")
        self.body = body
        self.blocks = []  # every response head curl saw (CONNECT 200, 100, final)
        for block in re.split(r"\r\n\r\n", head_text):
            if block.strip():
                self.blocks.append(block)
        self.status = 0
        self.headers = []
        if self.blocks:
            lines = self.blocks[-1].split("\r\n")
            m = re.match(r"HTTP/[\d.]+ (\d{3})", lines[0])
            self.status = int(m.group(1)) if m else 0
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    self.headers.append((k, v.strip()))

    def get_all(self, name):
        return [v for (k, v) in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return "<curl rc=%d status=%d stderr=%r blocks=%r>" % (
            self.rc, self.status, self.stderr[-500:], self.blocks)


def clean_env():
    env = dict(os.environ)
    for k in list(env):
        if k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"):
            del env[k]
    env["CURL_HOME"] = "/nonexistent"  # ignore any ~/.curlrc
    return env


def curl(proxy_port, url, *args, tmpdir, timeout=10, proxy_scheme="http"):
    """curl through the proxy at 127.0.0.1:proxy_port; proxy_scheme="https"
    talks TLS to the proxy (add --proxy-cacert)."""
    head = os.path.join(tmpdir, "curl-head-%d" % time.monotonic_ns())
    body = head + ".body"
    cmd = ["curl", "-q", "-sS", "--max-time", str(timeout),
           "-x", "%s://127.0.0.1:%d" % (proxy_scheme, proxy_port),
           "-D", head, "-o", body] + list(args) + [url]
    p = subprocess.run(cmd, capture_output=True, timeout=timeout + 5, env=clean_env())
    try:
        with open(head, "rb") as f:
            head_text = f.read().decode("latin-1")
    except FileNotFoundError:
        head_text = ""
    try:
        with open(body, "rb") as f:
            b = f.read()
    except FileNotFoundError:
        b = b""
    return CurlResult(p, head_text, b)


# ---------------------------------------------------------------------------
# cache tests (test_cache*.py)


def http_date(offset=0.0, t=None):
    """IMF-fixdate of now + offset seconds (or of t)."""
    import email.utils
    return email.utils.formatdate((time.time() if t is None else t) + offset, usegmt=True)


def cache_status_params(resp):
    """The Cache-Status members of a response as a list of (name, value)
    pairs per member: 'hopcache; hit; ttl=5' -> [('hopcache', None),
    ('hit', None), ('ttl', '5')]. Several members: the lists joined."""
    out = []
    for member in resp.get_all("cache-status"):
        for part in member.split(";"):
            part = part.strip()
            if not part:
                continue
            if "=" in part:
                k, v = part.split("=", 1)
                out.append((k.strip().lower(), v.strip()))
            else:
                out.append((part.lower(), None))
    return out


def cs_has(resp, name, value=None):
    """Does Cache-Status carry param `name` (with `value` when given)?"""
    for k, v in cache_status_params(resp):
        if k == name.lower() and (value is None or v == str(value)):
            return True
    return False


def cs_get(resp, name):
    for k, v in cache_status_params(resp):
        if k == name.lower():
            return v
    return None


def mdb_dump_db(env_dir, db, timeout=10):
    """[(key bytes, value bytes)] of named DB `db` in the LMDB environment at
    env_dir, read with mdb_dump (lmdb-utils), hex format."""
    p = subprocess.run(["mdb_dump", "-s", db, env_dir], capture_output=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("mdb_dump -s %s %s: rc %d %s" % (db, env_dir, p.returncode,
                                                           p.stderr.decode("utf-8", "replace")))
    lines = p.stdout.decode("ascii", "replace").splitlines()
    items = []
    in_data = False
    for line in lines:
        if line == "HEADER=END":
            in_data = True
            continue
        if line == "DATA=END":
            in_data = False
            continue
        if in_data and line.startswith(" "):
            items.append(bytes.fromhex(line[1:]))
    return list(zip(items[0::2], items[1::2]))


def mdb_dump_all_print(env_dir, timeout=10):
    """`mdb_dump -a -p env_dir` as text (printable bytes as is, others \\xx)."""
    p = subprocess.run(["mdb_dump", "-a", "-p", env_dir], capture_output=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("mdb_dump -a -p %s: rc %d %s" % (env_dir, p.returncode,
                                                          p.stderr.decode("utf-8", "replace")))
    return p.stdout.decode("latin-1")


class CacheRecord:
    """One value of the store's "objects" DB (layout in src/store/cache_record.h):
    56-byte header (magic, u16 version, u16 zero, u32 flags, u32 head_len,
    u64 body_len, i64 request_time, i64 response_time, u64 stamp,
    u32 ident_len, u32 zero), the stored head, the body, then the identity
    the record was stored for (src/proto/cache_key.h)."""

    def __init__(self, key, value):
        self.key = key
        self.raw = value
        self.magic = value[0:4]
        self.version = struct.unpack_from("<H", value, 4)[0]
        self.flags, self.head_len, self.body_len = struct.unpack_from("<IIQ", value, 8)
        self.request_time, self.response_time, self.stamp = struct.unpack_from("<qqQ", value, 24)
        self.ident_len = struct.unpack_from("<I", value, 48)[0]
        self.head = value[56:56 + self.head_len]
        self.body = value[56 + self.head_len:56 + self.head_len + self.body_len]
        self.ident = value[56 + self.head_len + self.body_len:]
        lines = self.head.split(b"\r\n")
        self.status_line = lines[0]
        self.headers = parse_fields([l for l in lines[1:] if l])

    def names(self):
        return [k.lower() for (k, _) in self.headers]

    def get_all(self, name):
        return [v for (k, v) in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return "<CacheRecord flags=%d head=%r body[:60]=%r>" % (self.flags, self.head, self.body[:60])


def cache_records(env_dir):
    return [CacheRecord(k, v) for (k, v) in mdb_dump_db(env_dir, "objects")]


def fetch(port, url, headers=(), method="GET", body=None, timeout=TIMEOUT):
    """One request for absolute `url` through the proxy on a new connection
    (Host from the URL); returns the final Response."""
    host = url.split("/")[2]
    hdrs = [("Host", host)] + list(headers)
    if body is not None and not any(isinstance(h, tuple) and h[0].lower() == "content-length"
                                    for h in hdrs):
        hdrs.append(("Content-Length", str(len(body))))
    with Client(port, timeout=timeout) as c:
        return c.exchange(method, url, hdrs, body)


def requests_for(origin, path, method=None):
    """The requests the origin received for origin-form target `path`."""
    with origin.lock:
        reqs = list(origin.requests)
    return [r for r in reqs if r.target == path and (method is None or r.method == method)]


def origin_down(origin):
    """Stop an Origin so that new connections are refused at once (shutting
    the listening socket down wakes the accept thread; a plain close may
    leave it accepting)."""
    try:
        origin.lsock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    origin.stop()
