"""CONNECT tunnels whose TLS ClientHello is peeked ([acl] connect_sni):
the policy applies to the server name too, and in match mode a server name
that differs from the CONNECT host (domain fronting) is refused. The tunnel
carries the peeked bytes unchanged."""
import socket
import ssl
import time

import pytest


def sni_proxy(proxy_factory, tls_origin, mode, rules=None, dns=None, tmp_path=None):
    acl = {"private_destinations": "allow", "connect_sni": mode,
           "sni_ports": str(tls_origin.port)}
    extra = {"acl": acl}
    if rules:
        acl["rules"] = ", ".join(rules)
        for name, kv in rules.items():
            extra["rule." + name] = kv
    if dns is not None:
        extra["upstream"] = {"resolv_conf": dns.resolv_conf(str(tmp_path / "resolv.conf"))}
    return proxy_factory(extra)


def response_complete(data):
    """A whole response head and its Content-Length body are in data."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    for line in data[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(data) - end - 4 >= int(value.strip())
    return False


def tunnel(port, connect_host, origin_port, sni):
    """CONNECT, then a TLS handshake with this SNI and one request.
    Returns (connect status line, response bytes or None when refused)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n"
               % (connect_host, origin_port, connect_host, origin_port)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        t = ctx.wrap_socket(s, server_hostname=sni)
        t.sendall(b"GET /sni HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        # read the one response whole (by its Content-Length): waiting for
        # the origin's close raced the socket timeout on a loaded machine
        data = b""
        while not response_complete(data):
            chunk = t.recv(65536)
            if not chunk:
                break
            data += chunk
        return head.split(b"\r\n")[0], data
    except (ssl.SSLError, OSError):
        return head.split(b"\r\n")[0], None
    finally:
        s.close()


def last_access(p):
    deadline = time.time() + 3
    while time.time() < deadline:
        lines = [l for l in p.access_entries() if l.get("method") == "CONNECT"]
        if lines:
            return lines[-1]
        time.sleep(0.05)
    return {}


def test_sni_denied_by_domain_rule(proxy_factory, tls_origin):
    p = sni_proxy(proxy_factory, tls_origin, "check",
                  {"nobad": {"domains": ".bad.test", "action": "deny"}})
    status, data = tunnel(p.port, "127.0.0.1", tls_origin.port, "www.bad.test")
    assert status == b"HTTP/1.1 200 Connection established"
    assert data is None, "a denied server name must not get a tunnel"
    assert tls_origin.requests == [], "the origin must see no request"
    e = last_access(p)
    assert e.get("outcome") == "http_request_denied" and e.get("rule") == "nobad", e


def test_sni_allowed_carries_peeked_bytes(proxy_factory, tls_origin):
    p = sni_proxy(proxy_factory, tls_origin, "check",
                  {"nobad": {"domains": ".bad.test", "action": "deny"}})
    status, data = tunnel(p.port, "127.0.0.1", tls_origin.port, "good.test")
    assert status == b"HTTP/1.1 200 Connection established"
    assert data is not None and data.startswith(b"HTTP/1.1 200"), data
    assert tls_origin.requests and tls_origin.requests[0].target == "/sni"


def test_match_mode_refuses_fronting(proxy_factory, tls_origin, fake_dns, tmp_path):
    fake_dns.records["front.test"] = {"A": ["127.0.0.1"]}
    p = sni_proxy(proxy_factory, tls_origin, "match", dns=fake_dns, tmp_path=tmp_path)
    status, data = tunnel(p.port, "front.test", tls_origin.port, "hidden.test")
    assert data is None
    assert tls_origin.requests == []
    e = last_access(p)
    assert e.get("rule") == "connect_sni", e
    assert "does not match the CONNECT host" in p.error_log_text()


def test_match_mode_allows_same_name(proxy_factory, tls_origin, fake_dns, tmp_path):
    fake_dns.records["front.test"] = {"A": ["127.0.0.1"]}
    p = sni_proxy(proxy_factory, tls_origin, "match", dns=fake_dns, tmp_path=tmp_path)
    status, data = tunnel(p.port, "front.test", tls_origin.port, "FRONT.test")
    assert data is not None and data.startswith(b"HTTP/1.1 200"), data


def test_match_mode_refuses_non_tls(proxy_factory, tls_origin):
    p = sni_proxy(proxy_factory, tls_origin, "match")
    s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
    s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n" % tls_origin.port)
    assert s.recv(100).startswith(b"HTTP/1.1 200")
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    s.settimeout(5)
    assert s.recv(100) == b"", "plain bytes on a peeked TLS port end the tunnel"
    assert tls_origin.requests == []


def test_off_by_default_and_other_ports_not_peeked(proxy_factory, tls_origin):
    # sni_ports does not include the origin port: no peek, the tunnel opens
    p = proxy_factory({"acl": {"private_destinations": "allow", "connect_sni": "match",
                               "rules": "nobad"},
                       "rule.nobad": {"domains": ".bad.test", "action": "deny"}})
    status, data = tunnel(p.port, "127.0.0.1", tls_origin.port, "www.bad.test")
    assert data is not None and data.startswith(b"HTTP/1.1 200"), data
