"""The lifetime of a request's state (struct request, freed when a request
ends so an idle keep-alive connection holds only its struct conn): paths
that run while another request's state is already gone. Found by an
independent review of the restructuring (issue 11).
"""
import signal
import socket
import threading
import time

import pytest

from helpers import Client, build_request, fetch, http_response, Reader, read_response


def test_half_closed_client_gets_a_large_hit_whole(cache_proxy, origin):
    """A client that sends its request and shuts its write side at once: a
    cache hit is answered in the same turn, the connection goes idle with
    megabytes still to write, then the EOF arrives. The response must be
    written whole before the close (it used to be dropped)."""
    body = bytes(range(256)) * (4 * 4096)  # 4 MiB
    origin.responder = lambda req: http_response(200, [("Cache-Control", "max-age=600")], body)
    url = origin.url("/big")
    assert fetch(cache_proxy.port, url).body == body  # stored
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", cache_proxy.port), timeout=10)
        try:
            s.sendall(build_request("GET", url, [("Host", origin.authority)]))
            s.shutdown(socket.SHUT_WR)
            r = read_response(Reader(s, timeout=10))
            assert r.status == 200 and len(r.body) == len(body) and r.body == body, \
                "half-closed client got %d of %d bytes" % (len(r.body), len(body))
        finally:
            s.close()


def test_leader_client_gone_wakes_pipelined_waiters(cache_proxy_factory, origin):
    """The leader's client disconnects mid-fetch; waiters (each with a
    pipelined second request) are woken, fetch on their own, and serve
    their pipelined request afterwards."""
    p = cache_proxy_factory(ini_extra={"limits": {"connect_timeout": "2", "upstream_timeout": "2"}})
    n = {"k": 0}
    lock = threading.Lock()

    def responder(req):
        with lock:
            n["k"] += 1
            k = n["k"]
        if req.target == "/lead" and k == 1:
            return [b"HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nContent-Length: 6\r\n\r\nab", 1.0, b"cdef"]
        return http_response(200, [("Cache-Control", "max-age=600")], b"own-%d" % k)
    origin.responder = responder
    H = [("Host", origin.authority)]
    lead = socket.create_connection(("127.0.0.1", p.port))
    lead.sendall(build_request("GET", origin.url("/lead"), H))
    time.sleep(0.3)
    waiters = []
    for i in range(3):
        c = Client(p.port, timeout=8)
        c.send(build_request("GET", origin.url("/lead"), H) + build_request("GET", origin.url("/next%d" % i), H))
        waiters.append(c)
    time.sleep(0.3)
    lead.close()  # the leader's client goes away while its fetch is in flight
    for c in waiters:
        r1 = c.read_response()
        r2 = c.read_response()
        assert r1.status == 200 and r2.status == 200, (r1, r2)
        assert r2.body.startswith(b"own-")
        c.close()


def test_waiter_behind_background_revalidation(cache_proxy_factory, origin):
    """A stale-while-revalidate hit starts a background revalidation that
    leads the key's fetch; a request that must revalidate (max-age=0) waits
    behind it, is woken when it ends and answered; the same connection then
    serves a pipelined request."""
    p = cache_proxy_factory()
    n = {"k": 0}

    def responder(req):
        n["k"] += 1
        if req.get("if-none-match"):
            return [0.8, http_response(304, [("Cache-Control", "max-age=1, stale-while-revalidate=600"),
                                              ("ETag", '"v"')], cl=False)]
        return http_response(200, [("Cache-Control", "max-age=1, stale-while-revalidate=600"), ("ETag", '"v"')],
                             b"body-%d" % n["k"])
    origin.responder = responder
    H = [("Host", origin.authority)]
    assert fetch(p.port, origin.url("/swr")).status == 200
    time.sleep(2.2)
    assert fetch(p.port, origin.url("/swr")).status == 200  # stale: served, revalidated behind
    with Client(p.port, timeout=8) as c:
        c.send(build_request("GET", origin.url("/swr"), H + [("Cache-Control", "max-age=0")]) +
               build_request("GET", origin.url("/other"), H))
        r1 = c.read_response()
        r2 = c.read_response()
        assert r1.status == 200 and r2.status == 200, (r1, r2)


def test_reload_while_background_revalidation_and_waiter(cache_proxy_factory, origin):
    """SIGHUP (the worker retires) while a background revalidation leads a
    fetch and a request waits behind it, with idle keep-alive clients
    connected: the waiter is answered (and the suite checks for sanitizer
    reports and worker deaths)."""
    p = cache_proxy_factory(ini_extra={"limits": {"drain_timeout": "3", "connect_timeout": "2",
                                                   "upstream_timeout": "2"}})

    def responder(req):
        if req.get("if-none-match"):
            return [1.0, http_response(304, [("Cache-Control", "max-age=1, stale-while-revalidate=600"),
                                              ("ETag", '"v"')], cl=False)]
        return http_response(200, [("Cache-Control", "max-age=1, stale-while-revalidate=600"), ("ETag", '"v"')],
                             b"body")
    origin.responder = responder
    H = [("Host", origin.authority)]
    assert fetch(p.port, origin.url("/swr")).status == 200
    idle = [Client(p.port, timeout=5) for _ in range(3)]
    for c in idle:
        assert c.exchange("GET", origin.url("/i"), H).status == 200
    time.sleep(2.2)
    assert fetch(p.port, origin.url("/swr")).status == 200
    w = Client(p.port, timeout=8)
    w.send(build_request("GET", origin.url("/swr"), H + [("Cache-Control", "max-age=0")]))
    time.sleep(0.2)
    p.signal(signal.SIGHUP)
    r = w.read_response()
    assert r.status == 200, r
    w.close()
    for c in idle:
        c.close()
    time.sleep(1.5)


def test_pooled_connection_closed_retry_keeps_alive(proxy, origin):
    """A pooled upstream connection the origin closed: retried on a new one,
    the keep-alive client gets its answer, then another."""
    def handler(conn):
        req = conn.read_request()
        if req is None:
            return
        conn.send(http_response(200, [], b"first"))
        time.sleep(0.3)
        conn.close()  # closes while pooled
    origin.handler = handler
    H = [("Host", origin.authority)]
    with Client(proxy.port, timeout=5) as c:
        assert c.exchange("GET", origin.url("/a"), H).body == b"first"
        time.sleep(0.6)
        assert c.exchange("GET", origin.url("/b"), H).body == b"first"
        assert c.exchange("GET", origin.url("/c"), H).status == 200
