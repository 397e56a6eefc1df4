"""A real MIT Kerberos KDC for the Negotiate (RFC 4559) tests.

KDC(dirpath).start() makes realm HOPCACHE.TEST in dirpath: its own krb5.conf
(KRB5_CONFIG) and kdc.conf (KRB5_KDC_PROFILE), a database made with
`kdb5_util create -s`, and `krb5kdc -n` in the foreground on 127.0.0.1 (UDP
and TCP on one free port). Principals:

  alice@HOPCACHE.TEST       password ALICE_PASSWORD
  bob@HOPCACHE.TEST         password BOB_PASSWORD
  HTTP/localhost            key in kdc.keytab (the proxy's keytab)
  HTTP/otherhost            a service whose key is NOT in that keytab
                            (it is in other_keytab, and both keys in both_keytab)

stop() kills the krb5kdc it started, by PID. Everything is bounded in time.

Clients use env(ccache) (KRB5_CONFIG, KRB5CCNAME); kinit() gets a TGT with
the password on stdin; make_token() runs python3-gssapi's initiator and
returns (base64 token, security context) so a test can check the proxy's
mutual-authentication reply with ctx.step(). patch_ccache_endtimes() edits
the plaintext end times a file ccache keeps next to each ticket, so that an
expired ticket can still be sent with a fresh authenticator.

The krb5.conf sets clockskew = 2: a ticket is expired 2 s after its end time.
"""

import base64
import os
import shutil
import signal
import socket
import struct
import subprocess
import time

REALM = "HOPCACHE.TEST"
ALICE_PASSWORD = "Alice-krb5-Pw-8q2"
BOB_PASSWORD = "Bob-krb5-Pw-3z7"
MASTER_PASSWORD = "hopcache-kdc-master-5m1"
SERVICE = "HTTP/localhost"           # in the keytab
OTHER_SERVICE = "HTTP/otherhost"     # not in the keytab
CLOCKSKEW = 2

_TIMEOUT = 30  # seconds, for every command run here


class KDCError(RuntimeError):
    pass


TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit", "klist")


def tool(name):
    """The full path of an MIT Kerberos program (PATH, then /usr/sbin and
    /usr/bin: the KDC programs live in sbin), or None."""
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/usr/bin", "/sbin"):
        cand = os.path.join(d, name)
        if os.access(cand, os.X_OK):
            return cand
    return None


def missing_prerequisites():
    """What this module needs that the machine lacks (Debian package names)."""
    missing = []
    pkgs = {"krb5kdc": "krb5-kdc", "kdb5_util": "krb5-kdc", "kadmin.local": "krb5-admin-server",
            "kinit": "krb5-user", "klist": "krb5-user"}
    for t in TOOLS:
        if tool(t) is None and pkgs[t] not in missing:
            missing.append(pkgs[t])
    try:
        import gssapi  # noqa: F401
    except ImportError:
        missing.append("python3-gssapi")
    return missing


def _free_udp_tcp_port(attempts=50):
    """A loopback port free for both TCP and UDP right now (bound, then closed)."""
    for _ in range(attempts):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
            finally:
                u.close()
            return port
        finally:
            t.close()
    raise KDCError("no loopback port free for both TCP and UDP in %d attempts" % attempts)


class KDC:
    def __init__(self, dirpath, realm=REALM):
        self.dir = os.path.abspath(dirpath)
        os.makedirs(self.dir, exist_ok=True)
        self.realm = realm
        self.krb5_conf = os.path.join(self.dir, "krb5.conf")
        self.kdc_conf = os.path.join(self.dir, "kdc.conf")
        self.db = os.path.join(self.dir, "principal")
        self.stash = os.path.join(self.dir, "stash")
        self.acl = os.path.join(self.dir, "kadm5.acl")
        self.kdc_log = os.path.join(self.dir, "kdc.log")
        self.keytab = os.path.join(self.dir, "http-localhost.keytab")
        self.other_keytab = os.path.join(self.dir, "http-otherhost.keytab")
        self.both_keytab = os.path.join(self.dir, "http-both.keytab")
        self.stdout_path = os.path.join(self.dir, "krb5kdc.stdout")
        self.proc = None
        self.pid = None
        self.port = None
        self._ccache_n = 0

    # -- configuration -------------------------------------------------------
    def _write_confs(self):
        with open(self.krb5_conf, "w") as f:
            f.write("[libdefaults]\n"
                    "    default_realm = %(realm)s\n"
                    "    dns_lookup_kdc = false\n"
                    "    dns_lookup_realm = false\n"
                    "    rdns = false\n"
                    "    dns_canonicalize_hostname = false\n"
                    "    clockskew = %(skew)d\n"
                    "    udp_preference_limit = 1\n"
                    "    kdc_timesync = 0\n"
                    "    forwardable = false\n"
                    "    default_ccache_name = FILE:%(dir)s/default.ccache\n"
                    "    default_keytab_name = FILE:%(dir)s/no-default.keytab\n"
                    "\n"
                    "[realms]\n"
                    "    %(realm)s = {\n"
                    "        kdc = 127.0.0.1:%(port)d\n"
                    "    }\n"
                    "\n"
                    "[domain_realm]\n"
                    "    localhost = %(realm)s\n"
                    "    otherhost = %(realm)s\n"
                    % {"realm": self.realm, "skew": CLOCKSKEW, "port": self.port, "dir": self.dir})
        with open(self.kdc_conf, "w") as f:
            f.write("[kdcdefaults]\n"
                    "    kdc_ports = 127.0.0.1:%(port)d\n"
                    "    kdc_tcp_ports = 127.0.0.1:%(port)d\n"
                    "\n"
                    "[realms]\n"
                    "    %(realm)s = {\n"
                    "        database_name = %(db)s\n"
                    "        key_stash_file = %(stash)s\n"
                    "        acl_file = %(acl)s\n"
                    "        kdc_listen = 127.0.0.1:%(port)d\n"
                    "        kdc_tcp_listen = 127.0.0.1:%(port)d\n"
                    "        max_life = 10h 0m 0s\n"
                    "        max_renewable_life = 0\n"
                    "        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n"
                    "    }\n"
                    "\n"
                    "[logging]\n"
                    "    kdc = FILE:%(log)s\n"
                    "    default = FILE:%(log)s\n"
                    % {"realm": self.realm, "port": self.port, "db": self.db, "stash": self.stash,
                       "acl": self.acl, "log": self.kdc_log})
        with open(self.acl, "w") as f:
            f.write("")

    def admin_env(self):
        env = dict(os.environ)
        env["KRB5_CONFIG"] = self.krb5_conf
        env["KRB5_KDC_PROFILE"] = self.kdc_conf
        env.pop("KRB5CCNAME", None)
        env.pop("KRB5_KTNAME", None)
        return env

    def _run(self, cmd, input_text=None, env=None):
        p = subprocess.run(cmd, input=(input_text or "").encode(), capture_output=True,
                           timeout=_TIMEOUT, env=env or self.admin_env())
        if p.returncode != 0:
            raise KDCError("%s: exit %d\nstdout: %s\nstderr: %s" % (
                " ".join(cmd), p.returncode, p.stdout.decode("utf-8", "replace"),
                p.stderr.decode("utf-8", "replace")))
        return p.stdout.decode("utf-8", "replace")

    def kadmin(self, query):
        """One kadmin.local query (-q), run against this realm's database."""
        return self._run([tool("kadmin.local"), "-r", self.realm, "-q", query])

    # -- lifecycle -----------------------------------------------------------
    def start(self, attempts=5):
        last = None
        for _ in range(attempts):
            self.port = _free_udp_tcp_port()
            self._write_confs()
            if not os.path.exists(self.stash):
                self._run([tool("kdb5_util"), "-r", self.realm, "create", "-s", "-P", MASTER_PASSWORD])
                self._populate()
            try:
                self._start_kdc()
                return self
            except KDCError as e:  # the port was taken between bind and the KDC's bind
                last = e
                self.stop()
        raise last

    def _populate(self):
        self.kadmin("addprinc -pw %s alice" % ALICE_PASSWORD)
        self.kadmin("addprinc -pw %s bob" % BOB_PASSWORD)
        self.kadmin("addprinc -randkey %s" % SERVICE)
        self.kadmin("addprinc -randkey %s" % OTHER_SERVICE)
        self.kadmin("ktadd -k %s %s" % (self.keytab, SERVICE))
        self.kadmin("ktadd -k %s %s" % (self.other_keytab, OTHER_SERVICE))
        # both keys as they are (no new key version): the first two stay valid
        self.kadmin("ktadd -norandkey -k %s %s %s" % (self.both_keytab, SERVICE, OTHER_SERVICE))

    def _start_kdc(self, timeout=15.0):
        self.proc = subprocess.Popen([tool("krb5kdc"), "-n", "-r", self.realm],
                                     stdout=open(self.stdout_path, "ab"),
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self.admin_env())
        self.pid = self.proc.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise KDCError("krb5kdc exited with %s before listening:\n%s" % (
                    self.proc.returncode, self.logs()))
            s = socket.socket()
            s.settimeout(0.5)
            try:
                s.connect(("127.0.0.1", self.port))
                return
            except OSError:
                time.sleep(0.05)
            finally:
                s.close()
        raise KDCError("krb5kdc not listening on 127.0.0.1:%d within %.0fs:\n%s" % (
            self.port, timeout, self.logs()))

    def logs(self):
        out = ""
        for p in (self.stdout_path, self.kdc_log):
            try:
                with open(p, "rb") as f:
                    out += f.read().decode("utf-8", "replace")[-4000:]
            except FileNotFoundError:
                pass
        return out

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    # -- clients ---------------------------------------------------------------
    def new_ccache(self, tag="cc"):
        self._ccache_n += 1
        return os.path.join(self.dir, "%s-%d-%d.ccache" % (tag, os.getpid(), self._ccache_n))

    def env(self, ccache=None):
        """The environment for a Kerberos client (curl, chromium, kinit)."""
        env = dict(os.environ)
        for k in list(env):
            if k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"):
                del env[k]
        env["KRB5_CONFIG"] = self.krb5_conf
        env.pop("KRB5_KTNAME", None)
        env.pop("KRB5_CLIENT_KTNAME", None)
        if ccache:
            env["KRB5CCNAME"] = "FILE:" + ccache
        else:
            env.pop("KRB5CCNAME", None)
        return env

    def kinit(self, user, password, ccache=None, lifetime=None):
        """A TGT for user in ccache (a new file when None); returns its path.
        lifetime: a kinit -l value ("3s", "1h")."""
        ccache = ccache or self.new_ccache(user)
        cmd = [tool("kinit"), "-c", "FILE:" + ccache]
        if lifetime:
            cmd += ["-l", str(lifetime)]
        cmd.append("%s@%s" % (user, self.realm))
        self._run(cmd, input_text=password + "\n", env=self.env(ccache))
        return ccache

    def klist(self, ccache):
        return self._run([tool("klist"), "-c", "FILE:" + ccache], env=self.env(ccache))

    def klist_keytab(self, keytab=None):
        return self._run([tool("klist"), "-k", "-t", keytab or self.keytab], env=self.env())

    def make_token(self, ccache, service="HTTP@localhost", mutual=False, mech="spnego"):
        """An initial Negotiate token for `service` (GSS host-based name)
        from the TGT in ccache: (base64 text, gssapi.SecurityContext).
        mech "spnego" (what browsers and curl send) or "krb5" (a raw
        Kerberos AP-REQ)."""
        return make_token(self.krb5_conf, ccache, service, mutual, mech)


def _gssapi():
    import gssapi  # python3-gssapi (Debian), imported late so a missing module is reported once
    return gssapi


def make_token(krb5_conf, ccache, service="HTTP@localhost", mutual=False, mech="spnego"):
    """See KDC.make_token. KRB5_CONFIG is set in this process's environment
    while the token is made, then put back as it was."""
    gssapi = _gssapi()
    old = os.environ.get("KRB5_CONFIG")
    os.environ["KRB5_CONFIG"] = krb5_conf
    try:
        return _make_token(gssapi, ccache, service, mutual, mech)
    finally:
        if old is None:
            os.environ.pop("KRB5_CONFIG", None)
        else:
            os.environ["KRB5_CONFIG"] = old


def _make_token(gssapi, ccache, service, mutual, mech):
    mechs = {"spnego": gssapi.Mechanism.from_sasl_name("SPNEGO"),
             "krb5": gssapi.MechType.kerberos}
    name = gssapi.Name(service, gssapi.NameType.hostbased_service)
    store = {b"ccache": ("FILE:" + ccache).encode()}
    creds = gssapi.Credentials(usage="initiate", store=store)
    flags = [gssapi.RequirementFlag.out_of_sequence_detection]
    if mutual:
        flags.append(gssapi.RequirementFlag.mutual_authentication)
    ctx = gssapi.SecurityContext(name=name, creds=creds, usage="initiate",
                                 mech=mechs[mech], flags=flags)
    out = ctx.step()
    return base64.b64encode(out).decode("ascii"), ctx


# -- file ccache (format version 4) -----------------------------------------------------------
# https://web.mit.edu/kerberos/krb5-latest/doc/formats/ccache_file_format.html


class _Buf:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("ccache truncated at %d (+%d)" % (self.pos, n))
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def data32(self):
        return self.take(self.u32())


def _principal(b):
    b.u32()  # name type
    n = b.u32()
    realm = b.data32().decode()
    comps = [b.data32().decode() for _ in range(n)]
    return "/".join(comps) + "@" + realm


def patch_ccache_endtimes(path, endtime):
    """Set the end time the ccache records beside every credential to
    `endtime` (Unix seconds); the tickets themselves (encrypted for the
    service) keep their real end times. The GSSAPI initiator refuses to use
    a ticket whose recorded end time has passed; after this it builds a
    token with a fresh authenticator around an expired ticket, which only
    the acceptor's ticket expiry check can reject. Returns the server
    principals patched."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    b = _Buf(bytes(data))
    if b.u16() != 0x0504:
        raise ValueError("not a version 4 file ccache: %s" % path)
    b.take(b.u16())  # header tags
    _principal(b)     # default principal
    patched = []
    while b.pos < len(b.data):
        _principal(b)               # client
        server = _principal(b)      # server
        b.u16()                     # key enctype
        b.data32()                  # key
        times_at = b.pos
        b.take(16)                  # authtime, starttime, endtime, renew_till
        struct.pack_into(">I", data, times_at + 8, int(endtime))
        b.u8()                      # is_skey
        b.u32()                     # ticket flags
        for _ in range(b.u32()):    # addresses
            b.u16()
            b.data32()
        for _ in range(b.u32()):    # authdata
            b.u16()
            b.data32()
        b.data32()                  # ticket
        b.data32()                  # second ticket
        patched.append(server)
    with open(path, "wb") as f:
        f.write(bytes(data))
    return patched
