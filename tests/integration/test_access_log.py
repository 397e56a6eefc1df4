"""The access log: one line per request or tunnel,
TIME CLIENT USER METHOD TARGET STATUS BYTES_IN BYTES_OUT DURATION_MS UPSTREAM OUTCOME."""

import calendar
import re
import time

from helpers import Client, free_port, http_response

TIME_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z$")


def check_common(e):
    assert e.get("_nfields") == 12, "access line should have 12 fields: %r" % e.get("_line")
    m = TIME_RE.match(e["time"])
    assert m, "TIME like 2026-11-30T05:24:08.123Z, got %r" % e["time"]
    t = calendar.timegm(tuple(int(x) for x in m.groups()[:6]))
    assert abs(t - time.time()) < 120, "TIME is not UTC now: %r" % e["time"]
    assert e["client"] == "127.0.0.1", "CLIENT is the client's IP address: %r" % e["client"]
    assert e["user"] == "-"
    assert e["status"].isdigit() and len(e["status"]) == 3
    assert e["bytes_in"].isdigit() and e["bytes_out"].isdigit(), e["_line"]
    assert re.match(r"^\d+$", e["duration_ms"]), "DURATION_MS should be whole milliseconds: %r" % e["duration_ms"]


def test_get_line(proxy, origin):
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/log/me?x=1"), [("Host", origin.authority)])
    assert r.status == 200
    e = proxy.wait_access(timeout=2)
    assert e, "no access-log line within 2s (is it flushed per line?)"
    check_common(e)
    assert e["method"] == "GET"
    assert e["target"] == origin.url("/log/me?x=1")
    assert e["status"] == "200"
    assert e["upstream"] == origin.authority
    assert e["outcome"] == "OK"
    assert int(e["bytes_in"]) > 0
    assert len(r.body) <= int(e["bytes_out"]) <= len(r.raw_head) + len(r.body) + 64


def test_post_byte_counts(proxy, origin):
    body = b"p" * 10000
    with proxy.client() as c:
        r = c.exchange("POST", origin.url("/up"), [("Host", origin.authority), ("Content-Length", "10000")], body)
    assert r.status == 200
    e = proxy.wait_access()
    check_common(e)
    assert e["method"] == "POST"
    assert 10000 <= int(e["bytes_in"]) <= 10000 + 1024
    assert int(e["bytes_out"]) < 10000


def test_large_response_bytes_out(proxy, origin):
    big = b"L" * (1024 * 1024)
    origin.responder = lambda req: http_response(200, [], big)
    with proxy.client(timeout=10) as c:
        r = c.exchange("GET", origin.url("/big"), [("Host", origin.authority)])
    assert len(r.body) == len(big)
    e = proxy.wait_access()
    assert len(big) <= int(e["bytes_out"]) <= len(big) + 4096


def test_one_line_per_request_in_order(proxy, origin):
    with proxy.client() as c:
        for i in range(3):
            assert c.exchange("GET", origin.url("/n%d" % i), [("Host", origin.authority)]).status == 200
    entries = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and len(entries) < 3:
        entries = proxy.access_entries()
        time.sleep(0.02)
    time.sleep(0.1)
    entries = proxy.access_entries()
    assert [e["target"] for e in entries] == [origin.url("/n%d" % i) for i in range(3)]
    for e in entries:
        check_common(e)


def test_duration_reflects_slow_origin(proxy, origin):
    origin.responder = lambda req: [0.5, http_response(200, [], b"slow")]
    with proxy.client() as c:
        assert c.exchange("GET", origin.url("/slow"), [("Host", origin.authority)]).status == 200
    e = proxy.wait_access()
    assert 400 <= int(e["duration_ms"]) < 3000, e["_line"]


def test_upstream_error_line(proxy):
    port = free_port()
    with proxy.client() as c:
        r = c.exchange("GET", "http://127.0.0.1:%d/x" % port, [("Host", "x")])
    assert r.status == 502
    e = proxy.wait_access()
    assert e, proxy.read_access_log()
    check_common(e)
    assert e["target"] == "http://127.0.0.1:%d/x" % port
    assert e["status"] == "502"
    assert e["outcome"] == "connection_refused"
    # hopcache.ini(5): UPSTREAM is the server connected to, or "-"; none was
    assert e["upstream"] == "-", e["_line"]


def test_timeout_error_line(proxy_factory, origin):
    p = proxy_factory({"limits": {"upstream_timeout": "0.5"}})
    origin.responder = lambda req: [3.0]
    with p.client() as c:
        r = c.exchange("GET", origin.url("/never"), [("Host", origin.authority)])
    assert r.status == 504
    e = p.wait_access()
    check_common(e)
    assert e["status"] == "504" and e["outcome"] == "http_response_timeout"
    assert e["upstream"] == origin.authority


def test_bad_request_line(proxy, origin):
    with proxy.client() as c:
        c.send(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
                % origin.url("/bad")).encode())
        assert c.read_response().status == 400
    e = proxy.wait_access()
    assert e, "a refused request still gets an access-log line"
    assert e.get("_nfields") == 12, e["_line"]
    assert e["status"] == "400"
    assert e["outcome"] == "http_request_error"
    assert e["upstream"] == "-"


def test_denied_connect_line(proxy_factory, origin):
    p = proxy_factory({"proxy": {"connect_ports": "443"}})
    with p.client() as c:
        c.send(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (origin.authority, origin.authority)).encode())
        assert c.read_response("CONNECT").status == 403
    e = p.wait_access()
    check_common(e)
    assert e["method"] == "CONNECT"
    assert e["target"] == origin.authority
    assert e["status"] == "403"
    assert e["outcome"] == "http_request_denied"
    assert e["upstream"] == "-"


def test_tunnel_line(proxy, origin):
    def handler(conn):
        d = conn.recv_some()
        conn.send(b"pong:" + d)
        conn.close()
    origin.handler = handler
    with proxy.client() as c:
        c.send(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (origin.authority, origin.authority)).encode())
        assert c.read_response("CONNECT").status == 200
        c.send(b"ping")
        closed, data = c.wait_closed(3)
        assert data == b"pong:ping"
    e = proxy.wait_access(lambda e: e.get("method") == "CONNECT")
    assert e, proxy.read_access_log()
    check_common(e)
    assert e["target"] == origin.authority
    assert e["status"] == "200"
    assert e["upstream"] == origin.authority
    assert e["outcome"] == "TUNNEL"
    assert 4 <= int(e["bytes_in"]) < 1024
    assert 9 <= int(e["bytes_out"]) < 1024


def test_access_log_holds_only_request_lines(proxy, origin):
    with proxy.client() as c:
        c.exchange("GET", origin.url("/a"), [("Host", origin.authority)])
    proxy.wait_access()
    time.sleep(0.1)
    lines = proxy.read_access_log()
    assert len(lines) == 1, lines
