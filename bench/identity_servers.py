#!/usr/bin/env python3
"""bench/identity_servers.py -- the directory servers of bench scenario (i).

Two subcommands, both used by bench/identity.sh (sourced by run.sh):

  serve --dir DIR --info FILE [--no-kdc] [--no-slapd]
      Starts a real MIT KDC (realm HOPCACHE.TEST) and a real OpenLDAP
      slapd, both on free 127.0.0.1 ports under DIR, with the fixture modules
      the integration tests use (krb5_kdc.KDC, slapd_fixture.Slapd); gets
      alice a TGT (kinit) and makes one token so the service ticket for
      HTTP/localhost is in her ccache (reused by every later token); then
      writes FILE (KEY=VALUE lines a shell can source; written to FILE.tmp
      and renamed, so it appears complete) and waits until SIGTERM / SIGINT
      (or at most --max-seconds, default 3600), then stops both servers by
      the PIDs their fixtures hold. A server that cannot be started is
      reported in FILE as KDC_ERROR / SLAPD_ERROR instead; the other runs.

  tokens --krb5-conf PATH --ccache PATH --count N --out FILE
      Writes N distinct Negotiate tokens, one base64 SPNEGO token a line:
      each a new gssapi.SecurityContext(HTTP@localhost, initiate, SPNEGO)
      .step() from the same cached service ticket, i.e. a fresh
      authenticator each. A token may be used once (the proxy keeps a
      replay cache). Prints "TOKENS count=N seconds=S bytes=B".

  conncheck --port P --target URL --host H --auth VALUE [--auth VALUE ...]
      One keep-alive connection to the proxy at 127.0.0.1:P, one GET of URL
      per --auth (a Proxy-Authorization value; "" sends none), each response
      read whole before the next request; prints "STATUSES s1 s2 ..."
      (000 where the connection ended first). For the connection_auth checks.

The fixture modules come from the directories in BENCH_FIXTURES (colon-
separated, searched first), then tests/integration of this tree. Needs a
python3 with python3-gssapi (and pytest, which slapd_fixture imports).
Everything listens on 127.0.0.1 only; every wait here is bounded.
"""

import argparse
import base64
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def fixture_path():
    dirs = [d for d in os.environ.get("BENCH_FIXTURES", "").split(":") if d]
    dirs.append(os.path.join(ROOT, "tests", "integration"))
    for d in reversed(dirs):
        sys.path.insert(0, d)


def shell_quote(v):
    return "'" + str(v).replace("'", "'\\''") + "'"


def make_tokens(krb5_conf, ccache, count, out_path, service="HTTP@localhost"):
    """count distinct SPNEGO tokens from the service ticket in ccache."""
    os.environ["KRB5_CONFIG"] = krb5_conf
    import gssapi
    spnego = gssapi.Mechanism.from_sasl_name("SPNEGO")
    name = gssapi.Name(service, gssapi.NameType.hostbased_service)
    creds = gssapi.Credentials(usage="initiate", store={b"ccache": ("FILE:" + ccache).encode()})
    t0 = time.monotonic()
    seen = set()
    nbytes = 0
    with open(out_path + ".tmp", "w") as f:
        for _ in range(count):
            ctx = gssapi.SecurityContext(name=name, creds=creds, usage="initiate", mech=spnego)
            tok = base64.b64encode(ctx.step()).decode("ascii")
            if tok in seen:   # never expected: each has its own authenticator
                raise SystemExit("identity_servers.py: gssapi returned the same token twice")
            seen.add(tok)
            f.write(tok + "\n")
            nbytes += len(tok) + 1
    os.rename(out_path + ".tmp", out_path)
    return time.monotonic() - t0, nbytes


def cmd_tokens(a):
    secs, nbytes = make_tokens(a.krb5_conf, a.ccache, a.count, a.out)
    print("TOKENS count=%d seconds=%.3f bytes=%d" % (a.count, secs, nbytes))
    return 0


def read_response(sock, buf):
    """One response on sock (buf: bytes already read); returns (status, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return "000", b""
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "000"
    length = None
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
        if k.strip().lower() == "transfer-encoding":
            raise SystemExit("conncheck: chunked response not supported")
    if length is None:
        length = 0
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return status, b""
        body += chunk
    return status, body[length:]


def cmd_conncheck(a):
    import socket
    out = []
    with socket.create_connection(("127.0.0.1", a.port), timeout=5) as sock:
        buf = b""
        for auth in a.auth:
            req = "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: hopcache-bench/conncheck\r\n" % (
                a.target, a.host)
            if auth:
                req += "Proxy-Authorization: %s\r\n" % auth
            req += "\r\n"
            try:
                sock.sendall(req.encode("latin-1"))
                status, buf = read_response(sock, buf)
            except OSError:
                status = "000"
            out.append(status)
            if status == "000":
                break
    print("STATUSES " + " ".join(out))
    return 0


def cmd_serve(a):
    fixture_path()
    os.makedirs(a.dir, exist_ok=True)
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    info = {}
    kdc = slapd = None
    t0 = time.monotonic()
    if not a.no_kdc:
        try:
            import krb5_kdc
            missing = krb5_kdc.missing_prerequisites()
            if missing:
                raise RuntimeError("missing: " + ", ".join(missing))
            kdc = krb5_kdc.KDC(os.path.join(a.dir, "krb5"))
            kdc.start()
            cc = kdc.kinit("alice", krb5_kdc.ALICE_PASSWORD)
            # the first token fetches the HTTP/localhost service ticket into
            # the ccache; every later one reuses it
            kdc.make_token(cc)
            info.update(KDC_PID=kdc.pid, KDC_PORT=kdc.port, KRB5_CONF=kdc.krb5_conf,
                        KEYTAB=kdc.keytab, CCACHE=cc, REALM=kdc.realm,
                        KRB_USER="alice@" + kdc.realm, KRB_MODULE=krb5_kdc.__file__)
        except BaseException as e:   # pytest.fail raises BaseException subclasses
            info["KDC_ERROR"] = ("%s: %s" % (type(e).__name__, e)).replace("\n", " ")[:400]
            if kdc is not None:
                kdc.stop()
                kdc = None
    if not a.no_slapd:
        try:
            import slapd_fixture
            if not slapd_fixture.slapd_available():
                raise RuntimeError("slapd, its memberof module or ldap-utils missing "
                                   "(apt-get install slapd ldap-utils)")
            slapd = slapd_fixture.Slapd(os.path.join(a.dir, "ldap"))
            slapd.start()
            pw = slapd_fixture.PASSWORDS
            info.update(SLAPD_PID=slapd.pid, LDAP_URI=slapd.uri, LDAP_BASE=slapd.base,
                        LDAP_BIND_DN=slapd.bind_dn, LDAP_BIND_PASSWORD_FILE=slapd.bind_password_file,
                        LDAP_LOAD_SECONDS="%.1f" % getattr(slapd, "load_seconds", 0),
                        # staff: alice, bob; carol: contractors only; dave: no group
                        LDAP_STAFF_USER="alice", LDAP_STAFF_PASSWORD=pw["alice"],
                        LDAP_OTHER_USER="carol", LDAP_OTHER_PASSWORD=pw["carol"],
                        SLAPD_MODULE=slapd_fixture.__file__)
        except BaseException as e:
            info["SLAPD_ERROR"] = ("%s: %s" % (type(e).__name__, e)).replace("\n", " ")[:400]
            if slapd is not None:
                slapd.kill()
                slapd = None
    info["START_SECONDS"] = "%.1f" % (time.monotonic() - t0)
    with open(a.info + ".tmp", "w") as f:
        for k, v in info.items():
            f.write("%s=%s\n" % (k, shell_quote(v)))
    os.rename(a.info + ".tmp", a.info)

    deadline = time.monotonic() + a.max_seconds
    while not stop["now"] and time.monotonic() < deadline:
        time.sleep(0.2)
    if slapd is not None:
        slapd.stop()
    if kdc is not None:
        kdc.stop()
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--dir", required=True)
    s.add_argument("--info", required=True)
    s.add_argument("--no-kdc", action="store_true")
    s.add_argument("--no-slapd", action="store_true")
    s.add_argument("--max-seconds", type=float, default=3600)
    t = sub.add_parser("tokens")
    t.add_argument("--krb5-conf", required=True)
    t.add_argument("--ccache", required=True)
    t.add_argument("--count", type=int, required=True)
    t.add_argument("--out", required=True)
    c = sub.add_parser("conncheck")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--target", required=True)
    c.add_argument("--host", required=True)
    c.add_argument("--auth", action="append", default=[])
    a = p.parse_args()
    return {"serve": cmd_serve, "tokens": cmd_tokens, "conncheck": cmd_conncheck}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
