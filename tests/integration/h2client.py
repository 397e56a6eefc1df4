"""A small HTTP/2 client over TLS for the integration tests (issue 13).

H2Client is built on python3-h2 with header validation and normalisation
off in both directions, so a test can send a malformed request (uppercase
names, connection-specific fields, pseudo-headers out of order) and see
exactly what the proxy answers. It sends requests as streams (GET, POST
with a body and trailers, CONNECT), respects flow control when sending,
grants window only as it consumes what it received (auto_ack, or
consume() by hand), and collects per stream: informational and final
response headers, data, trailers, END_STREAM and RST_STREAM codes; per
connection: GOAWAY, the peer's SETTINGS and EOF.

RawH2 speaks the framing layer by hand (hyperframe + hpack, no state
machine), for what H2Client refuses to send: more streams than the peer
allows, floods of RST_STREAM or CONTINUATION frames, HPACK bombs.

Every blocking call is bounded by a deadline; nothing here ever waits
without one. Servers are reached on 127.0.0.1 only."""

import socket
import ssl
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import hpack
from hyperframe import frame as hf

TIMEOUT = 5.0
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# RFC 9113 §7 error codes
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
SETTINGS_TIMEOUT = 0x4
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
CONNECT_ERROR = 0xa
ENHANCE_YOUR_CALM = 0xb
INADEQUATE_SECURITY = 0xc
HTTP_1_1_REQUIRED = 0xd

# SETTINGS identifiers
SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_ENABLE_PUSH = 0x2
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6


class NotH2(Exception):
    """ALPN did not select h2."""


def tls_connect(port, cafile, alpn=("h2",), server_hostname="localhost", host="127.0.0.1",
                timeout=TIMEOUT):
    """A TLS socket to host:port verified against cafile, offering alpn."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise


def _s(v):
    return v.decode("latin-1") if isinstance(v, (bytes, bytearray)) else v


def _hlist(headers):
    return [(_s(k), _s(v)) for (k, v) in headers]


class Stream:
    """What one stream received."""

    def __init__(self, sid):
        self.id = sid
        self.informational = []  # [[(name, value)]] 1xx heads
        self.headers = None      # [(name, value)] the final response head
        self.data = bytearray()
        self.data_len = 0        # bytes of DATA received (also when not kept)
        self.trailers = None
        self.ended = False       # END_STREAM from the peer
        self.reset = None        # RST_STREAM error code (from the peer, or ours)
        self.reset_by_peer = False
        self.keep_data = True
        self.on_data = None      # fn(bytes) called for every DATA payload
        self.unacked = 0         # received bytes not yet granted back (auto_ack off)
        self.auto_ack = True

    # the final head
    @property
    def status(self):
        v = self.get(":status")
        return int(v) if v is not None else None

    def get_all(self, name):
        return [v for (k, v) in (self.headers or []) if k.lower() == name.lower()]

    def get(self, name):
        vals = self.get_all(name)
        return vals[0] if vals else None

    def has(self, name):
        return bool(self.get_all(name))

    def names(self):
        return [k.lower() for (k, _) in (self.headers or [])]

    @property
    def body(self):
        return bytes(self.data)

    @property
    def done(self):
        """Finished one way or another: END_STREAM or RST_STREAM."""
        return self.ended or self.reset is not None

    def __repr__(self):
        return "<Stream %d headers=%r trailers=%r data[%d]=%r ended=%r reset=%r>" % (
            self.id, self.headers, self.trailers, self.data_len, bytes(self.data[:120]), self.ended,
            self.reset)


class _Conn:
    """A client owning self.sock: a context manager that closes it."""

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class H2Client(_Conn):
    """HTTP/2 over TLS with ALPN h2 on top of python3-h2 (see module doc)."""

    def __init__(self, port, cafile, alpn=("h2",), server_hostname="localhost", host="127.0.0.1",
                 timeout=TIMEOUT, settings=None, auto_ack=True):
        self.timeout = timeout
        self.sock = tls_connect(port, cafile, alpn, server_hostname, host, timeout)
        self.alpn = self.sock.selected_alpn_protocol()
        if self.alpn != "h2":
            self.sock.close()
            raise NotH2("ALPN selected %r" % self.alpn)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False,
                                        validate_inbound_headers=False,
                                        normalize_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.auto_ack = auto_ack
        self.streams = {}
        self.pending = {}        # sid -> [bytearray to send, end_stream, trailers]
        self.goaway = None       # h2.events.ConnectionTerminated
        self.closed = False      # EOF / reset from the peer
        self.errors = []         # h2 exceptions while parsing what the peer sent
        self.remote_settings = {}  # what the peer's SETTINGS said (id -> value)
        self.settings_seen = False
        self.events = []         # every h2 event, in order
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()

    # -- sending --------------------------------------------------------------
    def flush(self):
        data = self.conn.data_to_send()
        if data and not self.closed:
            self.sock.settimeout(self.timeout)
            try:
                self.sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                self.closed = True

    def _stream(self, sid):
        st = self.streams.get(sid)
        if st is None:
            st = self.streams[sid] = Stream(sid)
            st.auto_ack = self.auto_ack
        return st

    def send_headers(self, headers, end_stream=True, sid=None):
        """Send one HEADERS block exactly as given (names and order kept,
        nothing validated); returns the stream id."""
        if sid is None:
            sid = self.conn.get_next_available_stream_id()
        self._stream(sid)
        self.conn.send_headers(sid, [(k.encode("latin-1") if isinstance(k, str) else k,
                                      v.encode("latin-1") if isinstance(v, str) else v)
                                     for (k, v) in headers], end_stream=end_stream)
        self.flush()
        return sid

    def request(self, method, authority, path, headers=(), body=None, trailers=None,
                scheme="http", end_stream=None):
        """Open a stream: pseudo-headers first (a None one is left out),
        then headers; body and trailers follow as flow control allows
        (pump() keeps sending). end_stream=False leaves the stream open for
        send_data(). Returns the stream id."""
        hdrs = []
        for k, v in ((":method", method), (":scheme", scheme), (":authority", authority),
                     (":path", path)):
            if v is not None:
                hdrs.append((k, v))
        hdrs += list(headers)
        if end_stream is None:
            end_stream = True
        only_head = body is None and trailers is None
        sid = self.send_headers(hdrs, end_stream=end_stream and only_head)
        if not only_head:
            self.pending[sid] = [bytearray(body or b""), end_stream, trailers, 0]
            self._send_pending()
        return sid

    def connect(self, authority, headers=()):
        """A CONNECT stream (RFC 9113 §8.5): :method and :authority only."""
        return self.request("CONNECT", authority, None, headers, scheme=None, end_stream=False)

    def send_data(self, sid, data, end_stream=False):
        """Queue data on an open stream (sent as the windows allow)."""
        p = self.pending.get(sid)
        if p is None:
            p = self.pending[sid] = [bytearray(), False, None, 0]
        p[0] += data
        p[1] = p[1] or end_stream
        self._send_pending()

    def end_stream(self, sid):
        self.send_data(sid, b"", end_stream=True)

    def reset_stream(self, sid, code=CANCEL):
        self.pending.pop(sid, None)
        self.conn.reset_stream(sid, code)
        st = self._stream(sid)
        if st.reset is None:
            st.reset = code
        self.flush()

    def ping(self, opaque=b"hopcache"):
        self.conn.ping(opaque[:8].ljust(8, b"\0"))
        self.flush()

    def send_raw(self, data):
        """Bytes straight onto the TLS connection, bypassing h2's state."""
        self.sock.settimeout(self.timeout)
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.closed = True

    def _send_pending(self):
        for sid in list(self.pending):
            p = self.pending[sid]
            buf, end, trailers = p[0], p[1], p[2]
            st = self.streams.get(sid)
            if st is not None and st.reset is not None:
                del self.pending[sid]
                continue
            off = p[3] if len(p) > 3 else 0
            try:
                while off < len(buf):
                    n = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size,
                            len(buf) - off)
                    if n <= 0:
                        break
                    self.conn.send_data(sid, bytes(buf[off:off + n]))
                    off += n
                if off >= len(buf):
                    del buf[:]
                    off = 0
                    if end:
                        if trailers:
                            self.conn.send_headers(sid, [(k.encode("latin-1"), v.encode("latin-1"))
                                                         for (k, v) in trailers], end_stream=True)
                        else:
                            self.conn.end_stream(sid)
                    del self.pending[sid]
                elif off > (1 << 20):
                    del buf[:off]
                    off = 0
                if sid in self.pending:
                    self.pending[sid] = [buf, end, trailers, off]
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as e:
                self.errors.append(e)
                self.pending.pop(sid, None)
            self.flush()

    def pending_bytes(self, sid):
        p = self.pending.get(sid)
        if not p:
            return 0
        return len(p[0]) - (p[3] if len(p) > 3 else 0)

    # -- receiving ------------------------------------------------------------
    def consume(self, sid, n=None):
        """Grant back n (default: all) received bytes of stream sid."""
        st = self.streams[sid]
        n = st.unacked if n is None else min(n, st.unacked)
        if n > 0:
            st.unacked -= n
            try:
                self.conn.acknowledge_received_data(n, sid)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass
            self.flush()

    def _handle(self, ev):
        self.events.append(ev)
        E = h2.events
        if isinstance(ev, E.ResponseReceived):
            self._stream(ev.stream_id).headers = _hlist(ev.headers)
        elif isinstance(ev, E.InformationalResponseReceived):
            self._stream(ev.stream_id).informational.append(_hlist(ev.headers))
        elif isinstance(ev, E.TrailersReceived):
            self._stream(ev.stream_id).trailers = _hlist(ev.headers)
        elif isinstance(ev, E.DataReceived):
            st = self._stream(ev.stream_id)
            st.data_len += len(ev.data)
            if st.keep_data:
                st.data += ev.data
            if st.on_data:
                st.on_data(ev.data)
            if st.auto_ack:
                if ev.flow_controlled_length:
                    try:
                        self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                        pass
            else:
                st.unacked += ev.flow_controlled_length
        elif isinstance(ev, E.StreamEnded):
            self._stream(ev.stream_id).ended = True
        elif isinstance(ev, E.StreamReset):
            st = self._stream(ev.stream_id)
            st.reset = ev.error_code
            st.reset_by_peer = ev.remote_reset
            self.pending.pop(ev.stream_id, None)
        elif isinstance(ev, E.ConnectionTerminated):
            self.goaway = ev
        elif isinstance(ev, E.RemoteSettingsChanged):
            self.settings_seen = True
            for k, cs in ev.changed_settings.items():
                self.remote_settings[int(k)] = cs.new_value
        elif isinstance(ev, E.WindowUpdated):
            pass

    def _read_once(self, deadline):
        """One recv (bounded by deadline) fed to h2; False at EOF."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return True
        self.sock.settimeout(min(remaining, 0.5))
        try:
            data = self.sock.recv(1 << 20)
        except (socket.timeout, TimeoutError):
            return True
        except ssl.SSLWantReadError:
            return True
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            self.errors.append(e)
            self.flush()
            return True
        for ev in events:
            self._handle(ev)
        self._send_pending()
        self.flush()
        return True

    def pump(self, until=None, timeout=None):
        """Read and handle frames until until() is true, EOF, or timeout
        seconds; returns until() (True when until is None and time ran out)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._send_pending()
        while True:
            if until is not None and until():
                return True
            if self.closed or time.monotonic() >= deadline:
                return until() if until is not None else True
            self._read_once(deadline)

    def wait(self, until, timeout=None, what="condition"):
        """pump() that raises TimeoutError when until() does not come true."""
        if not self.pump(until, timeout):
            raise TimeoutError("HTTP/2: no %s within %ss (goaway=%r closed=%r errors=%r streams=%r)" % (
                what, self.timeout if timeout is None else timeout, self.goaway, self.closed,
                self.errors, list(self.streams.values())[-5:]))
        return True

    def wait_settings(self, timeout=None):
        self.wait(lambda: self.settings_seen, timeout, "SETTINGS")
        return self.remote_settings

    def wait_headers(self, sid, timeout=None):
        st = self._stream(sid)
        self.wait(lambda: st.headers is not None or st.reset is not None, timeout,
                  "response headers on stream %d" % sid)
        return st

    def wait_done(self, sid, timeout=None):
        st = self._stream(sid)
        self.wait(lambda: st.done or self.closed, timeout, "end of stream %d" % sid)
        return st

    def wait_closed(self, timeout=None):
        """True when the peer closed the TCP connection within timeout."""
        return self.pump(lambda: self.closed, timeout)

    def exchange(self, method, authority, path, headers=(), body=None, trailers=None,
                 scheme="http", timeout=None):
        sid = self.request(method, authority, path, headers, body, trailers, scheme)
        return self.wait_done(sid, timeout)

    def get(self, origin_or_authority, path, headers=(), timeout=None):
        auth = getattr(origin_or_authority, "authority", origin_or_authority)
        return self.exchange("GET", auth, path, headers, timeout=timeout)


class StreamTLS:
    """TLS over one CONNECT stream (ssl.MemoryBIO): handshake(), sendall(),
    recv(), recv_exact(), close_write()."""

    def __init__(self, client, sid, ctx, server_hostname="localhost"):
        self.c = client
        self.sid = sid
        self.st = client.streams[sid]
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=server_hostname)
        self.offset = 0
        self.eof_fed = False

    def _flush(self):
        data = self.out.read()
        if data:
            self.c.send_data(self.sid, data)

    def _feed(self, deadline):
        st = self.st
        self.c.wait(lambda: len(st.data) > self.offset or st.done or self.c.closed,
                    max(0.0, deadline - time.monotonic()), "tunnel bytes on stream %d" % self.sid)
        if len(st.data) > self.offset:
            self.inc.write(bytes(st.data[self.offset:]))
            self.offset = len(st.data)
        elif not self.eof_fed:
            self.inc.write_eof()
            self.eof_fed = True
        else:
            raise EOFError("stream %d ended (reset=%r)" % (self.sid, st.reset))

    def handshake(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.obj.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                self._feed(deadline)

    def sendall(self, data):
        self.obj.write(data)
        self._flush()

    def recv(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.obj.read(1 << 16)
            except ssl.SSLWantReadError:
                self._flush()
                self._feed(deadline)
            except ssl.SSLZeroReturnError:
                return b""

    def recv_until(self, pred, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        buf = bytearray()
        while not pred(buf):
            chunk = self.recv(max(0.0, deadline - time.monotonic()))
            if not chunk:
                break
            buf += chunk
        return bytes(buf)

    def close_write(self):
        try:
            self.obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        self._flush()


# ---------------------------------------------------------------------------
# raw frames


FLAG_END_STREAM = 0x1
FLAG_ACK = 0x1
FLAG_END_HEADERS = 0x4


def frame_bytes(ftype, flags, sid, payload=b""):
    """One frame by hand: 24-bit length, type, flags, 31-bit stream id."""
    n = len(payload)
    return bytes([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff, ftype, flags]) + \
        (sid & 0x7fffffff).to_bytes(4, "big") + payload


def rst_stream_bytes(sid, code=CANCEL):
    return frame_bytes(0x3, 0, sid, code.to_bytes(4, "big"))


class RawH2(_Conn):
    """HTTP/2 frames by hand over TLS (ALPN h2). Sends whatever it is told
    (frames(), headers_frames(), send()); read() parses what comes back,
    answers SETTINGS and PING, grants window for DATA (window_update=True),
    decodes header blocks with its own HPACK decoder, and records per
    stream: heads [(headers)], data, end, rst; per connection: goaway
    (error code, last stream id, debug data), settings, EOF."""

    def __init__(self, port, cafile, server_hostname="localhost", host="127.0.0.1", timeout=TIMEOUT,
                 settings=None, window_update=True, preface=True):
        self.timeout = timeout
        self.sock = tls_connect(port, cafile, ("h2",), server_hostname, host, timeout)
        if self.sock.selected_alpn_protocol() != "h2":
            self.sock.close()
            raise NotH2("ALPN selected %r" % self.sock.selected_alpn_protocol())
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.dec.max_header_list_size = 1 << 30
        self.window_update = window_update
        self.buf = bytearray()
        self.frames = []          # every frame received (hyperframe objects)
        self.heads = {}           # sid -> [[(name, value)]]
        self.data = {}            # sid -> bytearray
        self.end = set()          # sids with END_STREAM from the peer
        self.rst = {}             # sid -> error code
        self.goaway = None        # (error_code, last_stream_id, debug bytes)
        self.settings = {}
        self.settings_seen = False
        self.closed = False
        self.decode_errors = []
        self.sent_bytes = 0
        self._block = None        # (sid, flags, bytearray) while a header block is open
        self.next_sid = 1
        if preface:
            self.send(PREFACE + self.settings_frame(settings or {}))

    # -- building -------------------------------------------------------------
    def new_sid(self):
        sid = self.next_sid
        self.next_sid += 2
        return sid

    @staticmethod
    def settings_frame(settings, ack=False):
        payload = b"".join(int(k).to_bytes(2, "big") + int(v).to_bytes(4, "big")
                           for k, v in settings.items())
        return frame_bytes(0x4, FLAG_ACK if ack else 0, 0, payload)

    def block(self, headers):
        """An HPACK header block for headers with this connection's encoder
        (every block made must be sent, in order, or the peer's table drifts)."""
        return self.enc.encode([(k.encode("latin-1") if isinstance(k, str) else k,
                                 v.encode("latin-1") if isinstance(v, str) else v)
                                for (k, v) in headers])

    def headers_frames(self, sid, headers, end_stream=True, max_frame=16384):
        """HEADERS (+ CONTINUATION) frames carrying headers on stream sid."""
        blk = self.block(headers)
        chunks = [blk[i:i + max_frame] for i in range(0, len(blk), max_frame)] or [b""]
        out = bytearray()
        for i, ch in enumerate(chunks):
            last = i == len(chunks) - 1
            flags = (FLAG_END_HEADERS if last else 0)
            if i == 0:
                out += frame_bytes(0x1, flags | (FLAG_END_STREAM if end_stream else 0), sid, ch)
            else:
                out += frame_bytes(0x9, flags, sid, ch)
        return bytes(out)

    def request_frames(self, method, authority, path, headers=(), end_stream=True, scheme="http",
                       sid=None):
        if sid is None:
            sid = self.new_sid()
        hdrs = [(k, v) for k, v in ((":method", method), (":scheme", scheme),
                                    (":authority", authority), (":path", path)) if v is not None]
        return sid, self.headers_frames(sid, hdrs + list(headers), end_stream)

    def send(self, data):
        """Write bytes; False (and closed) when the peer is gone."""
        self.sock.settimeout(self.timeout)
        try:
            self.sock.sendall(data)
            self.sent_bytes += len(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.closed = True
            return False

    # -- reading --------------------------------------------------------------
    def _frame(self, raw_type, flags, sid, payload):
        self.frames.append((raw_type, flags, sid, payload))
        if raw_type == 0x4:  # SETTINGS
            if not flags & FLAG_ACK:
                self.settings_seen = True
                for i in range(0, len(payload) - 5, 6):
                    self.settings[int.from_bytes(payload[i:i + 2], "big")] = \
                        int.from_bytes(payload[i + 2:i + 6], "big")
                self.send(self.settings_frame({}, ack=True))
        elif raw_type == 0x6:  # PING
            if not flags & FLAG_ACK:
                self.send(frame_bytes(0x6, FLAG_ACK, 0, payload))
        elif raw_type == 0x7:  # GOAWAY
            last = int.from_bytes(payload[0:4], "big") & 0x7fffffff
            code = int.from_bytes(payload[4:8], "big")
            self.goaway = (code, last, bytes(payload[8:]))
        elif raw_type == 0x3:  # RST_STREAM
            self.rst[sid] = int.from_bytes(payload[0:4], "big")
        elif raw_type == 0x0:  # DATA
            pad = 0
            body = payload
            if flags & 0x8:
                pad = payload[0]
                body = payload[1:len(payload) - pad]
            self.data.setdefault(sid, bytearray()).extend(body)
            if flags & FLAG_END_STREAM:
                self.end.add(sid)
            if self.window_update and len(payload):
                inc = len(payload).to_bytes(4, "big")
                self.send(frame_bytes(0x8, 0, 0, inc) + frame_bytes(0x8, 0, sid, inc))
        elif raw_type in (0x1, 0x9):  # HEADERS, CONTINUATION
            if raw_type == 0x1:
                body = payload
                if flags & 0x8:
                    pad = body[0]
                    body = body[1:len(body) - pad]
                if flags & 0x20:
                    body = body[5:]
                self._block = (sid, flags, bytearray(body))
            elif self._block is not None:
                self._block[2].extend(payload)
            if flags & FLAG_END_HEADERS and self._block is not None:
                bsid, bflags, blk = self._block
                self._block = None
                try:
                    hdrs = _hlist(self.dec.decode(bytes(blk), raw=True))
                except Exception as e:  # hpack errors: recorded, the test decides
                    self.decode_errors.append(e)
                    hdrs = None
                self.heads.setdefault(bsid, []).append(hdrs)
                if bflags & FLAG_END_STREAM:
                    self.end.add(bsid)

    def _parse(self):
        while len(self.buf) >= 9:
            n = int.from_bytes(self.buf[0:3], "big")
            if len(self.buf) < 9 + n:
                return
            ftype, flags = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7fffffff
            payload = bytes(self.buf[9:9 + n])
            del self.buf[:9 + n]
            self._frame(ftype, flags, sid, payload)

    def _read_once(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        self.sock.settimeout(min(remaining, 0.5))
        try:
            data = self.sock.recv(1 << 20)
        except (socket.timeout, TimeoutError, ssl.SSLWantReadError):
            return
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return
        self.buf += data
        self._parse()

    def read(self, until=None, timeout=None):
        """Handle frames until until() holds, EOF or timeout; returns until()
        (True when until is None)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if until is not None and until():
                return True
            if self.closed or time.monotonic() >= deadline:
                return until() if until is not None else True
            self._read_once(deadline)

    def poll(self):
        """Whatever has arrived, without waiting (for flood loops)."""
        self.sock.setblocking(False)
        try:
            while True:
                try:
                    data = self.sock.recv(1 << 20)
                except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    break
                except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
                    data = b""
                if not data:
                    self.closed = True
                    break
                self.buf += data
        finally:
            self.sock.settimeout(self.timeout)
        self._parse()

    def status(self, sid):
        """:status of the last head of stream sid (None: no head)."""
        for hdrs in reversed(self.heads.get(sid, [])):
            for k, v in hdrs or []:
                if k == ":status":
                    return int(v)
        return None

    def done(self, sid):
        return sid in self.end or sid in self.rst
