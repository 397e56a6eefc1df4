"""The header stage: hop-by-hop fields never cross the proxy, in either direction;
end-to-end fields always do; framing fields cannot be listed in Connection."""

import time

import pytest

from helpers import http_response


def via(proxy, origin, headers, method="GET", body=None):
    """Send one request with `headers` (Host added); return (response, origin request)."""
    with proxy.client() as c:
        r = c.exchange(method, origin.url("/h"), [("Host", origin.authority)] + list(headers), body)
    return r, (origin.requests[-1] if origin.requests else None)


def respond_with(origin, headers, body=b"ok"):
    origin.responder = lambda req: http_response(200, headers, body)


def assert_absent(msg, *names):
    present = [n for n in names if msg.has(n)]
    assert not present, "hop-by-hop fields %r crossed the proxy: %r" % (present, msg.headers)


def conn_tokens_ok(msg, forbidden):
    """The proxy may write its own Connection (keep-alive/close/upgrade), but
    none of the tokens the other hop sent."""
    bad = [t for t in msg.tokens("Connection") if t in forbidden]
    assert not bad, "Connection tokens from the other hop forwarded: %r" % msg.get_all("Connection")


# -- requests ----------------------------------------------------------------------

def test_request_connection_listed_field_removed(proxy, origin):
    r, req = via(proxy, origin, [("Connection", "X-Secret"), ("X-Secret", "s"), ("X-Public", "p")])
    assert r.status == 200
    assert_absent(req, "X-Secret")
    assert req.get("X-Public") == "p"
    conn_tokens_ok(req, {"x-secret"})


def test_request_connection_listed_field_all_instances_removed(proxy, origin):
    r, req = via(proxy, origin, [("X-Dup", "1"), ("Connection", "x-dup"), ("X-Dup", "2"), ("X-Keep", "k")])
    assert_absent(req, "X-Dup")
    assert req.get("X-Keep") == "k"


def test_request_multiple_connection_fields(proxy, origin):
    r, req = via(proxy, origin, [("Connection", "X-One"), ("X-One", "1"), ("X-Two", "2"),
                                 ("Connection", "X-Two"), ("X-Three", "3")])
    assert r.status == 200
    assert_absent(req, "X-One", "X-Two")
    assert req.get("X-Three") == "3"
    conn_tokens_ok(req, {"x-one", "x-two"})


def test_request_connection_case_variants(proxy, origin):
    r, req = via(proxy, origin, [("connection", "x-lower"), ("X-LOWER", "a"),
                                 ("CONNECTION", "X-UPPER"), ("x-upper", "b"),
                                 ("CoNnEcTiOn", "X-MiXeD"), ("x-mIxEd", "c"), ("X-Kept", "d")])
    assert r.status == 200
    assert_absent(req, "X-Lower", "X-Upper", "X-Mixed")
    assert req.get("X-Kept") == "d"


def test_request_connection_odd_whitespace_and_empty_elements(proxy, origin):
    r, req = via(proxy, origin, [(b"Connection: ,  X-A ,,\tX-B\t, ,"), ("X-A", "1"), ("X-B", "2"),
                                 ("X-C", "3")])
    assert r.status == 200
    assert_absent(req, "X-A", "X-B")
    assert req.get("X-C") == "3"


def test_request_connection_tokens_after_keep_alive_still_processed(proxy, origin):
    r, req = via(proxy, origin, [("Connection", "keep-alive, X-Late"), ("Keep-Alive", "timeout=5"),
                                 ("X-Late", "1")])
    assert r.status == 200
    assert_absent(req, "X-Late", "Keep-Alive")


def test_request_connection_no_prefix_matching(proxy, origin):
    r, req = via(proxy, origin, [("Connection", "X-A"), ("X-A", "gone"), ("X-A-B", "stays"),
                                 ("X-AA", "stays too")])
    assert_absent(req, "X-A")
    assert req.get("X-A-B") == "stays"
    assert req.get("X-AA") == "stays too"


def test_request_connection_listing_end_to_end_field_removes_it(proxy, origin):
    r, req = via(proxy, origin, [("Connection", "Cookie, Accept"), ("Cookie", "c=1"), ("Accept", "*/*"),
                                 ("User-Agent", "ua")])
    assert_absent(req, "Cookie", "Accept")
    assert req.get("User-Agent") == "ua"


@pytest.mark.parametrize("field,value", [
    ("Keep-Alive", "timeout=5, max=100"),
    ("Proxy-Connection", "keep-alive"),
    ("TE", "trailers, deflate;q=0.5"),
    ("Trailer", "X-Checksum"),
    ("Upgrade", "websocket"),   # without Connection: upgrade there is no upgrade to carry out
    ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
])
def test_request_standard_hop_by_hop_removed(proxy, origin, field, value):
    r, req = via(proxy, origin, [(field, value), ("X-Other", "o")])
    assert r.status == 200
    assert_absent(req, field)
    assert value.encode() not in req.raw_head
    assert req.get("X-Other") == "o"


def test_request_proxy_authorization_never_forwarded_even_if_listed_twice(proxy, origin):
    r, req = via(proxy, origin, [("Proxy-Authorization", "Basic AAAA"), ("Proxy-Authorization", "Bearer t"),
                                 ("Authorization", "Basic origin-creds")])
    assert_absent(req, "Proxy-Authorization")
    assert req.get_all("Authorization") == ["Basic origin-creds"], "Authorization is end-to-end"


@pytest.mark.parametrize("listed", ["Host", "Content-Length", "Transfer-Encoding", "host",
                                    "x-foo, content-length", "TRANSFER-ENCODING"])
def test_request_connection_listing_framing_field_is_400(proxy, origin, listed):
    with proxy.client() as c:
        c.send(("POST %s HTTP/1.1\r\nHost: %s\r\nConnection: %s\r\nContent-Length: 5\r\n\r\nhello"
                % (origin.url("/f"), origin.authority, listed)).encode())
        r = c.read_response()
        assert r.status == 400, "Connection: %s must be refused (RFC 9110 §7.6.1)" % listed
        closed, _ = c.wait_closed(3)
    assert closed
    time.sleep(0.05)
    assert origin.bytes_received == 0


def test_client_cannot_strip_via_by_listing_it(proxy, origin):
    r, req = via(proxy, origin, [("Connection", "Via"), ("Via", "1.0 client-side")])
    assert r.status == 200
    assert req.get_all("Via") == ["1.1 hopcache"]


def test_client_listing_via_without_via_field(proxy, origin):
    r, req = via(proxy, origin, [("Connection", "via, x-forwarded-for")])
    assert req.get_all("Via") == ["1.1 hopcache"]


def test_request_connection_close_not_forwarded_as_client_token(proxy, origin):
    r, req = via(proxy, origin, [("Connection", "close, X-Bye"), ("X-Bye", "1")])
    assert_absent(req, "X-Bye")


# -- responses ---------------------------------------------------------------------

def test_response_connection_listed_field_removed(proxy, origin):
    respond_with(origin, [("Connection", "X-Internal"), ("X-Internal", "secret"), ("X-Public", "p")])
    r, _ = via(proxy, origin, [])
    assert r.status == 200 and r.body == b"ok"
    assert_absent(r, "X-Internal")
    assert r.get("X-Public") == "p"
    conn_tokens_ok(r, {"x-internal"})


def test_response_multiple_connection_fields_and_case(proxy, origin):
    respond_with(origin, [("connection", "x-a"), ("X-A", "1"), ("CONNECTION", "X-B , ,x-c"), ("x-b", "2"),
                          ("X-C", "3"), ("X-D", "4")])
    r, _ = via(proxy, origin, [])
    assert_absent(r, "X-A", "X-B", "X-C")
    assert r.get("X-D") == "4"


def test_response_connection_listing_end_to_end_field(proxy, origin):
    respond_with(origin, [("Connection", "Set-Cookie"), ("Set-Cookie", "s=1"), ("Cache-Control", "private")])
    r, _ = via(proxy, origin, [])
    assert_absent(r, "Set-Cookie")
    assert r.get("Cache-Control") == "private"


@pytest.mark.parametrize("field,value", [
    ("Keep-Alive", "timeout=5, max=100"),
    ("Proxy-Connection", "keep-alive"),
    ("Trailer", "X-Checksum"),
    ("TE", "trailers"),
    ("Upgrade", "h2c"),                 # not a 101: nothing is being upgraded
    ("Proxy-Authenticate", "Basic realm=\"origin\""),
])
def test_response_standard_hop_by_hop_removed(proxy, origin, field, value):
    respond_with(origin, [(field, value), ("X-Other", "o")])
    r, _ = via(proxy, origin, [])
    assert r.status == 200
    assert_absent(r, field)
    assert value.encode() not in r.raw_head
    assert r.get("X-Other") == "o"


def test_response_www_authenticate_is_end_to_end(proxy, origin):
    origin.responder = lambda req: http_response(401, [("WWW-Authenticate", "Basic realm=\"o\""),
                                                       ("Proxy-Authenticate", "Basic realm=\"p\"")], b"auth")
    r, _ = via(proxy, origin, [])
    assert r.status == 401
    assert r.get_all("WWW-Authenticate") == ["Basic realm=\"o\""]
    assert_absent(r, "Proxy-Authenticate")


@pytest.mark.parametrize("listed", ["Content-Length", "Transfer-Encoding", "content-length, x-a"])
def test_response_connection_listing_framing_field_is_502(proxy, origin, listed):
    origin.responder = lambda req: http_response(200, [("Connection", listed)], b"hello")
    with proxy.client() as c:
        r = c.exchange("GET", origin.url("/f"), [("Host", origin.authority)])
    assert r.status == 502, "Connection: %s in a response must give 502, got %r" % (listed, r)
    assert b"hello" not in r.body
    # a response that breaks the framing rules (hopcache(8) ERROR RESPONSES)
    assert (r.get("Proxy-Status") or "").startswith("hopcache; error=http_protocol_error;"), r.headers


def test_response_keep_alive_token_does_not_leak(proxy, origin):
    respond_with(origin, [("Connection", "keep-alive"), ("Keep-Alive", "timeout=1")])
    r, _ = via(proxy, origin, [])
    assert_absent(r, "Keep-Alive")


# -- fields the proxy adds itself (config, default off) ---------------------------------

def test_forwarding_fields_off_by_default(proxy, origin):
    r, req = via(proxy, origin, [])
    assert_absent(req, "X-Forwarded-For", "Forwarded")


def test_x_forwarded_for_appended_when_enabled(proxy_factory, origin):
    p = proxy_factory({"proxy": {"x_forwarded_for": "yes"}})
    r, req = via(p, origin, [("X-Forwarded-For", "192.0.2.1")])
    assert r.status == 200
    assert req.joined("X-Forwarded-For") == "192.0.2.1, 127.0.0.1"


def test_x_forwarded_for_cannot_be_stripped_by_listing(proxy_factory, origin):
    p = proxy_factory({"proxy": {"x_forwarded_for": "yes"}})
    r, req = via(p, origin, [("Connection", "X-Forwarded-For"), ("X-Forwarded-For", "198.51.100.7")])
    assert req.joined("X-Forwarded-For") == "127.0.0.1", req.headers


def test_forwarded_appended_when_enabled(proxy_factory, origin):
    p = proxy_factory({"proxy": {"forwarded": "yes"}})
    r, req = via(p, origin, [("Forwarded", "for=192.0.2.60;proto=http")])
    assert r.status == 200
    elems = [e.strip() for e in req.joined("Forwarded").split(",")]
    assert elems[0] == "for=192.0.2.60;proto=http"
    assert len(elems) == 2 and "for=127.0.0.1" in elems[1].lower().replace('"', ""), req.get_all("Forwarded")
