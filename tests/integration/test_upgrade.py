"""Protocol upgrade (WebSocket-style): the Upgrade survives the header stage when
Connection asks for it; after 101 the proxy relays bytes both ways."""

import time

from helpers import data_of, http_response, sha

WS_HEADERS = [("Connection", "Upgrade, X-Hop"), ("Upgrade", "websocket"), ("X-Hop", "1"),
              ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
              ("Origin", "http://example.test")]

SWITCH = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")


def upgrade_origin(origin, first=b"server-first", after=None):
    def handler(conn):
        req = conn.read_request()
        if req is None:
            return
        conn.send(SWITCH + first)
        if after:
            after(conn)
            return
        while True:
            d = conn.recv_some(timeout=5)
            if not d:
                conn.shutdown_write()
                return
            conn.send(d)
    origin.handler = handler


def start_upgrade(proxy, origin):
    c = proxy.client(timeout=8)
    c.request("GET", origin.url("/ws"), [("Host", origin.authority)] + WS_HEADERS)
    interim, r = c.read_final()
    return c, r


def test_upgrade_request_reaches_origin(proxy, origin):
    upgrade_origin(origin)
    c, r = start_upgrade(proxy, origin)
    c.close()
    req = origin.requests[0]
    assert req.get_all("Upgrade") == ["websocket"]
    assert "upgrade" in req.tokens("Connection"), "Connection: upgrade must be sent with the Upgrade"
    assert "x-hop" not in req.tokens("Connection") and not req.has("X-Hop")
    assert req.get("Sec-WebSocket-Key") == "dGhlIHNhbXBsZSBub25jZQ=="
    assert req.get("Sec-WebSocket-Version") == "13"
    assert req.get_all("Via") == ["1.1 hopcache"]


def test_101_reaches_client_and_bytes_flow(proxy, origin):
    upgrade_origin(origin)
    c, r = start_upgrade(proxy, origin)
    with c:
        assert r.status == 101, r
        assert r.get_all("Upgrade") == ["websocket"]
        assert "upgrade" in r.tokens("Connection")
        assert r.get("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        assert c.reader.read_exact(len(b"server-first")) == b"server-first", \
            "bytes the origin sent right after the 101 were lost"
        for msg in (b"\x81\x05hello", b"client-data", b"\x00" * 10):
            c.send(msg)
            assert c.reader.read_exact(len(msg)) == msg


def test_upgraded_bulk_both_ways(proxy, origin):
    upgrade_origin(origin, first=b"")
    payload = data_of(1024 * 1024, seed=9)
    c, r = start_upgrade(proxy, origin)
    with c:
        assert r.status == 101
        c.send(payload)
        c.shutdown_write()
        got = c.reader.read_to_eof(timeout=10)
    assert len(got) == len(payload) and sha(got) == sha(payload)


def test_upgraded_origin_close_reaches_client(proxy, origin):
    upgrade_origin(origin, first=b"bye", after=lambda conn: conn.close())
    c, r = start_upgrade(proxy, origin)
    with c:
        assert r.status == 101
        closed, data = c.wait_closed(3)
    assert closed and data == b"bye"


def test_upgrade_declined_by_origin(proxy, origin):
    origin.responder = lambda req: http_response(200, [("X-Plain", "1")], b"no upgrade for you")
    with proxy.client() as c:
        c.request("GET", origin.url("/ws"), [("Host", origin.authority)] + WS_HEADERS)
        r = c.read_final()[1]
        assert r.status == 200 and r.body == b"no upgrade for you"
        assert not r.has("Upgrade")
        r2 = c.exchange("GET", origin.url("/next"), [("Host", origin.authority)])
        assert r2.status == 200, "connection must stay HTTP after a declined upgrade"


def test_unsolicited_101_is_502(proxy, origin):
    """The client asked for no upgrade: a 101 from the origin is a protocol error."""
    origin.responder = lambda req: [SWITCH + b"junk"]
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/plain"), [("Host", origin.authority)])
    assert r.status == 502, r


def test_upgrade_access_log(proxy, origin):
    upgrade_origin(origin, first=b"")
    c, r = start_upgrade(proxy, origin)
    with c:
        assert r.status == 101
        c.send(b"12345")
        assert c.reader.read_exact(5) == b"12345"
    e = proxy.wait_access(lambda e: e.get("target", "").endswith("/ws"), timeout=4)
    assert e, proxy.read_access_log()
    assert e["status"] == "101"
