"""tlsutil - certificates and TLS clients for Gatehouse's TLS end-to-end tests.

Nothing secret is committed: Pki() makes a fresh set of keys and certificates with the `openssl`
command in a temporary directory (about a second). A test file makes it once with

    P = pki()                       # ghtest.shared("pki", Pki): removed after the last test
    P.cert("a-rsa"), P.key("a-rsa")

What it makes (file NAME.pem and NAME.key; every leaf is valid for 30 days unless said):
  ca                 the test CA (EC P-256) that signs the server and origin certificates
  a-rsa, a-ec        a.test, RSA 2048 and ECDSA P-256
  a2-ec              a.test again, O=v2 (a "renewed" certificate, for reload tests)
  b-rsa, b-ec        *.b.test, RSA 2048 and ECDSA P-256
  dflt               default.test (RSA 2048), for the default server
  inter              an intermediate CA under ca; c-chain.pem = c.test leaf + inter (no root)
  expired            expired.test, valid 2020-01-01 .. 2020-02-01 only
  client-ca          a second CA, for client certificates
  alice              O=Test, CN=alice (clientAuth), signed by client-ca
  mallory            O=Test, CN=mallory (clientAuth), signed by ca: a client certificate from
                     a CA the server does not trust for clients
  origin             origin.test and IP 127.0.0.1 (serverAuth), signed by ca
  origin-wrongname   wrong.test only, signed by ca
  origin-self        origin.test and IP 127.0.0.1, self-signed
  gh-client          O=Test, CN=gatehouse (clientAuth), signed by client-ca: the certificate
                     Gatehouse presents to origins that ask for one
"""

import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile

from ghtest import Conn, Origin, check, shared

OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ca]
default_ca = ca_past
[ca_past]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = pol
unique_subject = no
copy_extensions = none
[pol]
commonName = supplied
organizationName = optional
"""

EXPIRED_START = "20200101000000Z"
EXPIRED_END = "20200201000000Z"


class Pki:
    """A CA and certificates made with the openssl command (see the module's doc)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="gh-e2e-pki-")
        try:
            self._make()
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    # -- paths

    def path(self, name):
        return os.path.join(self.dir, name)

    def cert(self, name):
        return self.path(name + ".pem")

    def key(self, name):
        return self.path(name + ".key")

    # -- ghtest resource protocol (shared())

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        return None

    def diagnostics(self):
        return []

    # -- making

    def _openssl(self, *args):
        r = subprocess.run(["openssl"] + list(args), cwd=self.dir, capture_output=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise AssertionError("openssl %s failed: %s" % (" ".join(args),
                                                             r.stderr.decode(errors="replace")))
        return r

    def _genkey(self, name, kind):
        if kind == "rsa":
            self._openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                          "-out", name + ".key")
        else:
            self._openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                          "-out", name + ".key")

    def _ca(self, name, subj):
        self._genkey(name, "ec")
        self._openssl("req", "-config", "openssl.cnf", "-x509", "-new", "-key", name + ".key",
                      "-subj", subj, "-days", "30", "-extensions", "v3_ca", "-sha256",
                      "-out", name + ".pem")

    def _ext(self, name, san=None, usage="serverAuth", ca=False):
        lines = ["[x]"]
        if ca:
            lines += ["basicConstraints = critical,CA:TRUE,pathlen:0",
                      "keyUsage = critical,keyCertSign,cRLSign"]
        else:
            lines += ["basicConstraints = critical,CA:FALSE",
                      "keyUsage = critical,digitalSignature,keyEncipherment",
                      "extendedKeyUsage = " + usage]
        if san:
            lines.append("subjectAltName = " + san)
        lines += ["subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid"]
        path = name + ".ext"
        with open(self.path(path), "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def _leaf(self, name, subj, san, issuer="ca", kind="ec", usage="serverAuth", ca=False,
              past=False):
        self._genkey(name, kind)
        self._openssl("req", "-config", "openssl.cnf", "-new", "-key", name + ".key",
                      "-subj", subj, "-out", name + ".csr")
        ext = self._ext(name, san, usage, ca)
        self._serial += 1
        if past:
            with open(self.path("index.txt"), "w"):
                pass
            with open(self.path("serial"), "w") as f:
                f.write("%04X\n" % self._serial)
            self._openssl("ca", "-config", "openssl.cnf", "-batch", "-notext",
                          "-cert", issuer + ".pem", "-keyfile", issuer + ".key",
                          "-in", name + ".csr", "-out", name + ".pem",
                          "-startdate", EXPIRED_START, "-enddate", EXPIRED_END,
                          "-extfile", ext, "-extensions", "x")
        else:
            self._openssl("x509", "-req", "-in", name + ".csr", "-CA", issuer + ".pem",
                          "-CAkey", issuer + ".key", "-set_serial", str(self._serial),
                          "-days", "30", "-sha256", "-extfile", ext, "-extensions", "x",
                          "-out", name + ".pem")

    def _make(self):
        self._serial = 1000
        with open(self.path("openssl.cnf"), "w") as f:
            f.write(OPENSSL_CNF)
        self._ca("ca", "/O=Gatehouse Test/CN=Gatehouse Test CA")
        self._ca("client-ca", "/O=Gatehouse Test/CN=Gatehouse Client CA")
        self._leaf("a-rsa", "/O=Gatehouse/CN=a.test", "DNS:a.test", kind="rsa")
        self._leaf("a-ec", "/O=Gatehouse/CN=a.test", "DNS:a.test")
        self._leaf("a2-ec", "/O=v2/CN=a.test", "DNS:a.test")
        self._leaf("b-rsa", "/O=Gatehouse/CN=*.b.test", "DNS:*.b.test", kind="rsa")
        self._leaf("b-ec", "/O=Gatehouse/CN=*.b.test", "DNS:*.b.test")
        self._leaf("dflt", "/O=Gatehouse/CN=default.test", "DNS:default.test", kind="rsa")
        self._leaf("inter", "/O=Gatehouse Test/CN=Gatehouse Intermediate", None, ca=True)
        self._leaf("c", "/O=Gatehouse/CN=c.test", "DNS:c.test", issuer="inter")
        with open(self.cert("c-chain"), "w") as f:
            f.write(open(self.cert("c")).read() + open(self.cert("inter")).read())
        shutil.copy(self.key("c"), self.key("c-chain"))
        self._leaf("expired", "/O=Gatehouse/CN=expired.test", "DNS:expired.test", past=True)
        self._leaf("alice", "/O=Test/CN=alice", None, issuer="client-ca", usage="clientAuth")
        self._leaf("mallory", "/O=Test/CN=mallory", None, issuer="ca", usage="clientAuth")
        self._leaf("gh-client", "/O=Test/CN=gatehouse", None, issuer="client-ca",
                   usage="clientAuth")
        self._leaf("origin", "/O=Gatehouse/CN=origin.test", "DNS:origin.test,IP:127.0.0.1")
        self._leaf("origin-wrongname", "/O=Gatehouse/CN=wrong.test", "DNS:wrong.test")
        self._genkey("origin-self", "ec")
        self._openssl("req", "-config", "openssl.cnf", "-x509", "-new", "-key", "origin-self.key",
                      "-subj", "/O=Gatehouse/CN=origin.test", "-days", "30", "-sha256",
                      "-addext", "subjectAltName=DNS:origin.test,IP:127.0.0.1",
                      "-out", "origin-self.pem")


def pki():
    """The file's Pki, made on first use and removed after the last test."""
    return shared("pki", Pki)


# ---------------------------------------------------------------------------------------------
# Python ssl clients
# ---------------------------------------------------------------------------------------------


def client_ctx(ca=None, cert=None, key=None, minv=None, maxv=None, ciphers=None, alpn=None,
               verify=True, check_name=True):
    """A client SSLContext: trusting `ca` (a file), presenting cert/key if given, limited to
    protocol versions minv..maxv (ssl.TLSVersion), TLS 1.2 ciphers, ALPN list."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(ca)
        ctx.check_hostname = check_name
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    if minv:
        ctx.minimum_version = minv
    if maxv:
        ctx.maximum_version = maxv
    if ciphers:
        ctx.set_ciphers(ciphers)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def server_ctx(cert, key, client_ca=None, require_client=False):
    """A server SSLContext for a TLS origin."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client else ssl.CERT_OPTIONAL
    return ctx


class TLSConn(Conn):
    """ghtest's Conn over TLS: the handshake is done in the constructor (SNI `sni`; None sends
    none), so .request(), .read_response() etc. work as on plain connections."""

    def __init__(self, port, ctx, sni="a.test", timeout=10, session=None):
        super().__init__(port, timeout=timeout)
        self.raw = self.sock
        if sni is None and ctx.check_hostname:
            raise ValueError("no SNI needs a context without check_hostname")
        self.sock = ctx.wrap_socket(self.raw, server_hostname=sni, session=session)

    def peer_subject(self):
        """The server certificate's subject as {"CN": ..., "O": ...}."""
        c = self.sock.getpeercert()
        short = {"commonName": "CN", "organizationName": "O"}
        return {short.get(k, k): v for rdn in c.get("subject", ()) for k, v in rdn}


# ---------------------------------------------------------------------------------------------
# openssl s_client
# ---------------------------------------------------------------------------------------------


class SClient:
    """The result of one `openssl s_client` run, with what it printed parsed."""

    def __init__(self, cmd, rc, out):
        self.cmd = cmd
        self.rc = rc
        self.out = out

    def _find(self, rx):
        m = re.search(rx, self.out, re.M)
        return m.group(1).strip() if m else None

    @property
    def handshake_ok(self):
        """A handshake completed: s_client printed the negotiated protocol and cipher."""
        return self.cipher not in (None, "(NONE)")

    @property
    def protocol(self):
        """The negotiated version from the SSL-Session block ("Protocol  : TLSv1.2"). Not the
        "New, TLSv1.0, Cipher is ..." line: that names the cipher's own minimum version."""
        if not self.handshake_ok:
            return None
        v = self._find(r"^\s*Protocol\s*:\s*(\S+)")
        if v is None and self._find(r"^(?:New|Reused), ([^,]+), Cipher is ") == "TLSv1.3":
            v = "TLSv1.3"  # without a ticket s_client prints no SSL-Session block for 1.3
        return v

    @property
    def cipher(self):
        return self._find(r"^(?:New|Reused), [^,]+, Cipher is (\S+)")

    @property
    def reused(self):
        """'Reused' or 'New' (from the "New, TLSv1.3, Cipher is ..." line)."""
        return self._find(r"^(New|Reused), ")

    @property
    def alpn(self):
        if re.search(r"^No ALPN negotiated", self.out, re.M):
            return None
        return self._find(r"^ALPN protocol: (\S+)")

    @property
    def subject(self):
        """The server certificate's subject line, as "O = Gatehouse, CN = a.test"."""
        return self._find(r"^subject=(.*)$")

    @property
    def key_bits(self):
        v = self._find(r"^Server public key is (\d+) bit")
        return int(v) if v else None

    @property
    def verify_code(self):
        v = self._find(r"Verify return code: (\d+)")
        return int(v) if v else None

    @property
    def http(self):
        """What came after the handshake output: the HTTP response, if any."""
        i = self.out.find("HTTP/1.")
        return self.out[i:] if i >= 0 else ""

    def __repr__(self):
        return "<s_client rc=%s %s>" % (self.rc, self.out[-1500:])


def s_client(port, *args, sni="a.test", ca=None, request=None, host=None, timeout=20,
             env=None):
    """Run `openssl s_client` against 127.0.0.1:port with SNI `sni` (None: none), trusting `ca`.
    With `request` (a path) it sends a GET with Connection: close and waits for the server to
    close (-ign_eof), so TLS 1.3 tickets arrive before it exits; otherwise it closes right after
    the handshake."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port]
    cmd += ["-servername", sni] if sni else ["-noservername"]
    if ca:
        cmd += ["-CAfile", ca]
    cmd += list(args)
    data = b""
    if request is not None:
        cmd.append("-ign_eof")
        data = ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                % (request, host or sni or "a.test")).encode()
    e = dict(os.environ)
    if env:
        e.update(env)
    r = subprocess.run(cmd, input=data, capture_output=True, timeout=timeout, env=e)
    out = r.stdout.decode("utf-8", "replace") + "\n" + r.stderr.decode("utf-8", "replace")
    return SClient(cmd, r.returncode, out)


# ---------------------------------------------------------------------------------------------
# Origins and curl
# ---------------------------------------------------------------------------------------------


def TLSOrigin(cert, key, client_ca=None, require_client=False, name="tls-origin"):
    """A test origin (origin.py) speaking TLS with cert/key, stopped when the test ends."""
    return Origin(name=name, tls=server_ctx(cert, key, client_ca, require_client))


def curl_tls(port, path, name="a.test", ca=None, extra=()):
    """curl arguments for https://name:port/path resolved to 127.0.0.1."""
    args = ["--resolve", "%s:%d:127.0.0.1" % (name, port)]
    if ca:
        args += ["--cacert", ca]
    return args + list(extra) + ["https://%s:%d%s" % (name, port, path)]


def tls_refused(fn):
    """Run fn (which makes a TLS connection and a request); return the reason it was refused,
    or raise if it got an HTTP response."""
    try:
        r = fn()
    except (ssl.SSLError, ConnectionError, socket.timeout, OSError) as e:
        return repr(e)
    except Exception as e:  # noqa: B902 - Closed (peer closed before a response) and the like
        if type(e).__name__ == "Closed":
            return "closed"
        raise
    check(False, "expected the connection to be refused, got %r" % (r,))
