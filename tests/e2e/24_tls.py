#!/usr/bin/env python3
"""TLS end to end (issue 8): terminating TLS (certificates by SNI, RSA and ECDSA on one server,
protocol versions, ciphers, ALPN, session resumption by cache, tickets and shared ticket keys,
client certificates, HSTS, redirect_to_https, the $ssl_* variables, bodies, keep-alive,
timeouts and garbage on a TLS port, -t checks, reload with a new certificate) and TLS to origins
(verification, names, `proxy https://`, pooled and resumed connections, client certificates,
bodies).

Keys and certificates are made once per run with the openssl command (tlsutil.Pki, shared);
clients are real ones: openssl s_client, curl and Python's ssl module. Every test starts its own
Gatehouse (cheap, even under ASan) so that one missing directive fails only its own tests."""

import json
import shutil
import socket
import ssl
import subprocess
import threading

from ghtest import *
from origin import ws_frame, ws_read_frame
from tlsutil import (EXPIRED_END, TLSConn, TLSOrigin, client_ctx, curl_tls, pki,
                     s_client, tls_refused)

TOP = "error_log stderr info;\ndrain_timeout 5s;\n"
MB3 = 3 << 20

VARS = ('"scheme=$scheme https=$https proto=$ssl_protocol cipher=$ssl_cipher '
        'sni=$ssl_server_name alpn=$ssl_alpn_protocol reused=$ssl_session_reused '
        'verify=$ssl_client_verify dn=$ssl_client_s_dn|\\n"')
VARS_ROUTE = "    route = /vars { return 200 %s; }\n" % VARS
RET_ROUTE = '    route = /ret { return 200 "ok\\n"; }\n'


def P():
    return pki()


def ca():
    return P().cert("ca")


def cert_lines(*names):
    """tls_certificate / tls_key pairs for the named Pki certificates."""
    return "".join("    tls_certificate %s;\n    tls_key %s;\n" % (P().cert(n), P().key(n))
                   for n in names)


def tls_server(port, names, certs, extra="", default=False, plain_port=None):
    """One server block listening with TLS on port (and plain on plain_port)."""
    text = "server {\n    listen 127.0.0.1:%d tls%s;\n" % (port, " default" if default else "")
    if plain_port:
        text += "    listen 127.0.0.1:%d;\n" % plain_port
    if names:
        text += "    server_name %s;\n" % names
    return text + cert_lines(*certs) + extra + "}\n"


def one_tls(o, certs=("a-ec",), extra="", top="", names="a.test", nplain=False, level="info",
            vars=False):
    """A config function: one TLS server on gh.port (and plain on gh.ports[1] with nplain)
    proxying to o (an Origin or a port), with a /ret route (`return`) and, with vars, the /vars
    route (kept out of the other tests, so that a missing variable fails only its own)."""
    oport = o if isinstance(o, int) else o.port

    def build(g):
        return TOP.replace("info", level) + top + tls_server(
            g.port, names, certs, "    proxy 127.0.0.1:%d;\n" % oport + RET_ROUTE +
            (VARS_ROUTE if vars else "") + extra, plain_port=g.ports[1] if nplain else None)

    return build


def ctx(**kw):
    """A client context trusting the test CA."""
    return client_ctx(ca(), **kw)


def parse_vars(body):
    """The /vars answer as a dict."""
    text = body.decode() if isinstance(body, bytes) else body
    text = text[:text.index("|")]
    out = {}
    for part in re.findall(r"(\w+)=(.*?)(?= \w+=|$)", text):
        out[part[0]] = part[1]
    return out


def get_vars(port, context=None, sni="a.test"):
    """GET /vars over a new TLS connection; the values as a dict."""
    with TLSConn(port, context or ctx(), sni=sni) as conn:
        r = conn.request("GET", "/vars", host=sni or "a.test")
    eq(r.status, 200, "status of /vars (%r)" % r.body[:200])
    return parse_vars(r.body)


def origin_headers(r):
    """{lower-case name: value} of what the origin received (its echo)."""
    eq(r.status, 200, "status (body %r)" % r.body[:300])
    return {n.lower(): v for n, v in r.json()["headers"]}


def write(path, data):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path


def check_t(text, want_ok, patterns=()):
    """Run gatehouse -t on config text; check the exit status and that stderr matches each
    regex in patterns. Returns stderr."""
    d = tmpdir()
    path = write(os.path.join(d, "t.conf"), text)
    r = run_gh(["-t", "-c", path])
    out = r.stderr + r.stdout
    diag("-t exit %d: %s" % (r.returncode, out.strip()[-1500:]))
    if want_ok:
        eq(r.returncode, 0, "-t exit status")
    else:
        check(r.returncode != 0, "-t must fail")
    for p in patterns:
        check(re.search(p, out, re.M | re.I), "-t output must match %r" % p)
    return out


def log_lines(gh, n, name="access.log"):
    """The access log's lines (str) once it has n; fails if it has more."""
    path = os.path.join(gh.dir, name)

    def get():
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        ls = data.decode("utf-8", "replace").split("\n")
        if ls and ls[-1] == "":
            ls.pop()
        return ls if len(ls) >= n else None

    ls = wait_until(get, 5, "%d lines in %s" % (n, name))
    eq(len(ls), n, "access-log lines:\n%s" % "\n".join(ls)[:3000])
    return ls


def client_hello(sni="a.test"):
    """The bytes of a real TLS ClientHello (from Python's ssl, with memory BIOs)."""
    c = client_ctx(verify=False)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = c.wrap_bio(inc, out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def closed_within(c, timeout):
    """Seconds until the peer closed c (EOF, reset or TLS alert then EOF); fails after
    timeout."""
    t0 = time.monotonic()
    check(c.wait_closed(timeout), "connection still open after %ss" % timeout)
    return time.monotonic() - t0


# =============================================================================================
# Certificates by SNI
# =============================================================================================


def sni_conf(o, vars=False):
    def build(g):
        proxy = "    proxy 127.0.0.1:%d;\n" % o.port + (VARS_ROUTE if vars else "")
        tag = "    response_header set X-Server %s;\n"
        return TOP + "".join([
            tls_server(g.port, "default.test", ["dflt"], proxy + tag % "default"),
            tls_server(g.port, "a.test", ["a-rsa", "a-ec"], proxy + tag % "a"),
            tls_server(g.port, "*.b.test", ["b-rsa", "b-ec"], proxy + tag % "b"),
            tls_server(g.port, "c.test", ["c-chain"], proxy + tag % "c"),
        ])

    return build


def shared_sni():
    """One Gatehouse with the SNI servers, shared by the tests that only read from it."""
    o = shared("sni-origin", lambda: Origin(name="sni"))
    return shared("sni-gatehouse", lambda: Gatehouse(sni_conf(o)))


def shared_vars():
    """The same servers with the /vars route."""
    o = shared("sni-origin", lambda: Origin(name="sni"))
    return shared("vars-gatehouse", lambda: Gatehouse(sni_conf(o, vars=True)))


@test("SNI: an exact name, a wildcard (one and two labels deep) and the default server (unknown "
      "name, no SNI) each get their own certificate")
def t():
    gh = shared_sni()
    cases = [("a.test", "a.test", True), ("x.b.test", "*.b.test", True),
             ("x.y.b.test", "*.b.test", False), ("b.test", "default.test", False),
             ("unknown.test", "default.test", False), (None, "default.test", False),
             ("A.Test", "a.test", False), ("a.test.", "a.test", False)]
    for sni, want_cn, verify_name in cases:
        c_ctx = ctx(check_name=verify_name)
        with TLSConn(gh.port, c_ctx, sni=sni) as c:
            eq(c.peer_subject().get("CN"), want_cn, "certificate CN for SNI %r" % sni)
            r = c.request("GET", "/echo", host=sni or "default.test")
            eq(r.status, 200, "status for SNI %r" % sni)


@test("SNI picks the certificate, Host the server: SNI a.test with Host x.b.test is answered by "
      "the *.b.test server (no client certificates anywhere)")
def t():
    gh = shared_sni()
    with TLSConn(gh.port, ctx(), sni="a.test") as c:
        eq(c.request("GET", "/echo", host="a.test").header("x-server"), "a", "Host a.test")
        eq(c.request("GET", "/echo", host="x.b.test").header("x-server"), "b", "Host x.b.test")


@test("SNI with curl: https://a.test and https://x.b.test verify against the CA")
def t():
    gh = shared_sni()
    for name in ("a.test", "x.b.test"):
        r = curl(curl_tls(gh.port, "/echo", name, ca()))
        eq(r.returncode, 0, "curl https://%s exit (%s)" % (name, r.stderr))
        eq(r.stdout and json.loads(r.stdout)["method"], "GET", "echo over TLS")


@test("certificate chain: c.test's file holds leaf + intermediate; a client trusting only the "
      "root verifies it")
def t():
    gh = shared_sni()
    r = s_client(gh.port, "-verify_return_error", sni="c.test", ca=ca(), request="/echo",
                 host="c.test")
    check(r.handshake_ok, "handshake: %r" % r)
    eq(r.verify_code, 0, "verify return code")
    check(re.search(r"^ 1 s:.*Gatehouse Intermediate", r.out, re.M),
          "the intermediate is sent as the second certificate: %r" % r)
    check(r.http.startswith("HTTP/1.1 200"), "response: %r" % r.http[:200])


@test("RSA + ECDSA on one server: a TLS 1.2 client with only ECDHE-ECDSA ciphers gets the "
      "ECDSA certificate, one with only ECDHE-RSA the RSA one (exact and wildcard names)")
def t():
    gh = shared_sni()
    for sni in ("a.test", "x.b.test"):
        r = s_client(gh.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256", sni=sni,
                     ca=ca())
        check(r.handshake_ok, "ECDSA handshake for %s: %r" % (sni, r))
        eq(r.key_bits, 256, "server key bits for an ECDSA-only client (%s)" % sni)
        eq(r.cipher, "ECDHE-ECDSA-AES128-GCM-SHA256", "cipher")
        r = s_client(gh.port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256", sni=sni,
                     ca=ca())
        check(r.handshake_ok, "RSA handshake for %s: %r" % (sni, r))
        eq(r.key_bits, 2048, "server key bits for an RSA-only client (%s)" % sni)
        eq(r.cipher, "ECDHE-RSA-AES128-GCM-SHA256", "cipher")


@test("RSA + ECDSA on one server: TLS 1.3 clients get the certificate their signature "
      "algorithms allow (-sigalgs)")
def t():
    gh = shared_sni()
    r = s_client(gh.port, "-tls1_3", "-sigalgs", "ecdsa_secp256r1_sha256", ca=ca())
    check(r.handshake_ok, "ECDSA-only handshake: %r" % r)
    eq(r.key_bits, 256, "server key bits for an ECDSA-only client")
    r = s_client(gh.port, "-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384",
                 ca=ca())
    check(r.handshake_ok, "RSA-only handshake: %r" % r)
    eq(r.key_bits, 2048, "server key bits for an RSA-only client")


@test("ALPN: http/1.1 is selected when offered (with h2 first); curl --http2 ends up on "
      "HTTP/1.1")
def t():
    gh = shared_sni()
    r = s_client(gh.port, "-alpn", "h2,http/1.1", ca=ca(), request="/echo")
    eq(r.alpn, "http/1.1", "ALPN protocol (%r)" % r)
    check(r.http.startswith("HTTP/1.1 200"), "response: %r" % r.http[:200])
    with TLSConn(gh.port, ctx(alpn=["h2", "http/1.1"])) as c:
        eq(c.sock.selected_alpn_protocol(), "http/1.1", "python ssl ALPN")
    res = curl(["--http2", "-o", "/dev/null", "-w", "%{http_version}"] +
               curl_tls(gh.port, "/echo", "a.test", ca()))
    eq(res.returncode, 0, "curl exit (%s)" % res.stderr)
    eq(res.stdout.decode(), "1.1", "HTTP version curl used")


@test("ALPN: a client offering only h2 gets no ALPN, the handshake succeeds and HTTP/1.1 is "
      "served; a client offering none gets none")
def t():
    gh = shared_sni()
    r = s_client(gh.port, "-alpn", "h2", ca=ca(), request="/echo")
    check(r.handshake_ok, "handshake: %r" % r)
    eq(r.alpn, None, "ALPN protocol (%r)" % r)
    check(r.http.startswith("HTTP/1.1 200"), "response: %r" % r.http[:300])
    r = s_client(gh.port, ca=ca(), request="/echo")
    eq(r.alpn, None, "ALPN without an offer")
    check(r.http.startswith("HTTP/1.1 200"), "response: %r" % r.http[:300])


@test("protocols: a TLS 1.1 client is refused; TLS 1.2 and TLS 1.3 clients are served (the "
      "defaults)")
def t():
    gh = shared_sni()
    # SECLEVEL=0 so that the client itself is willing to speak TLS 1.1
    r = s_client(gh.port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", ca=ca())
    check(not r.handshake_ok, "TLS 1.1 must be refused: %r" % r)
    check(re.search(r"alert protocol version|unsupported protocol|no protocols available|"
                    r"wrong version", r.out, re.I), "why TLS 1.1 failed: %r" % r)
    for flag, want in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        r = s_client(gh.port, flag, ca=ca(), request="/echo")
        eq(r.protocol, want, "protocol with %s (%r)" % (flag, r))
        check(r.http.startswith("HTTP/1.1 200"), "response: %r" % r.http[:300])
    c11 = client_ctx(ca(), minv=ssl.TLSVersion.TLSv1_1, maxv=ssl.TLSVersion.TLSv1_1,
                     ciphers="DEFAULT@SECLEVEL=0")
    tls_refused(lambda: TLSConn(gh.port, c11).request("GET", "/echo"))
    check(gh.alive(), "gatehouse still running")


@test("the $ssl_* variables in return: $scheme https, $https on, $ssl_protocol, $ssl_cipher "
      "(TLS 1.3 suite and TLS 1.2 OpenSSL name), $ssl_server_name, $ssl_alpn_protocol, "
      "$ssl_session_reused, no client certificate")
def t():
    gh = shared_vars()
    v = get_vars(gh.port, context=ctx(minv=ssl.TLSVersion.TLSv1_3), sni="a.test")
    want = {"scheme": "https", "https": "on", "proto": "TLSv1.3", "sni": "a.test",
            "reused": ".", "verify": "NONE", "dn": ""}
    for k, w in want.items():
        eq(v[k], w, "$%s over TLS 1.3 (%r)" % (k, v))
    check(v["cipher"].startswith("TLS_AES_") or v["cipher"].startswith("TLS_CHACHA20"),
          "TLS 1.3 $ssl_cipher %r" % v["cipher"])
    v = get_vars(gh.port, context=ctx(maxv=ssl.TLSVersion.TLSv1_2,
                                      ciphers="ECDHE-RSA-AES256-GCM-SHA384"), sni="x.b.test")
    eq(v["proto"], "TLSv1.2", "$ssl_protocol over TLS 1.2")
    eq(v["cipher"], "ECDHE-RSA-AES256-GCM-SHA384", "$ssl_cipher over TLS 1.2")
    eq(v["sni"], "x.b.test", "$ssl_server_name")
    c_ctx = ctx(check_name=False)
    with TLSConn(gh.port, c_ctx, sni=None) as c:
        r = c.request("GET", "/vars", host="default.test")
    eq(parse_vars(r.body)["sni"], "", "$ssl_server_name without SNI")
    for offer, want in (("h2,http/1.1", "http/1.1"), ("h2", "")):
        r = s_client(gh.port, "-alpn", offer, ca=ca(), request="/vars")
        eq(parse_vars(r.http.split("\r\n\r\n", 1)[1])["alpn"], want,
           "$ssl_alpn_protocol offering %s" % offer)
    sess = os.path.join(tmpdir(), "sess.pem")
    r = s_client(gh.port, "-sess_out", sess, ca=ca(), request="/vars")
    eq(parse_vars(r.http.split("\r\n\r\n", 1)[1])["reused"], ".", "$ssl_session_reused")
    r = s_client(gh.port, "-sess_in", sess, ca=ca(), request="/vars")
    eq(r.reused, "Reused", "resumed")
    eq(parse_vars(r.http.split("\r\n\r\n", 1)[1])["reused"], "r", "$ssl_session_reused")


# =============================================================================================
# Protocols and ciphers configured
# =============================================================================================


@test("tls_protocols TLSv1.3: a TLS 1.2-only client is refused; tls_protocols TLSv1.2: a "
      "TLS 1.3-only client is refused")
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o, extra="    tls_protocols TLSv1.3;\n"))
    r = s_client(gh.port, "-tls1_2", ca=ca())
    check(not r.handshake_ok, "TLS 1.2 must be refused: %r" % r)
    eq(s_client(gh.port, "-tls1_3", ca=ca()).protocol, "TLSv1.3", "TLS 1.3 accepted")
    gh2 = Gatehouse(one_tls(o, extra="    tls_protocols TLSv1.2;\n"))
    r = s_client(gh2.port, "-tls1_3", ca=ca())
    check(not r.handshake_ok, "TLS 1.3 must be refused: %r" % r)
    eq(s_client(gh2.port, "-tls1_2", ca=ca()).protocol, "TLSv1.2", "TLS 1.2 accepted")


@test("-t: tls_protocols TLSv1.1 (or SSLv3, TLSv1) is an error")
def t():
    for bad in ("TLSv1.1", "TLSv1", "SSLv3"):
        check_t(TOP + "server {\n    listen 127.0.0.1:%d tls;\n%s    tls_protocols TLSv1.2 %s;\n"
                "    proxy 127.0.0.1:9;\n}\n" % (free_port(), cert_lines("a-ec"), bad),
                False, [re.escape(bad)])


@test("ciphers: the default TLS 1.2 list refuses a CBC-only client; tls_ciphers narrows it; "
      "tls_ciphersuites picks the TLS 1.3 suite")
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o))
    r = s_client(gh.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA", ca=ca())
    check(not r.handshake_ok, "a CBC-only client must be refused by the default list: %r" % r)
    gh2 = Gatehouse(one_tls(o, extra='    tls_ciphers "ECDHE-ECDSA-CHACHA20-POLY1305";\n'
                                     '    tls_ciphersuites "TLS_CHACHA20_POLY1305_SHA256";\n'))
    r = s_client(gh2.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256", ca=ca())
    check(not r.handshake_ok, "a cipher outside tls_ciphers must be refused: %r" % r)
    r = s_client(gh2.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256:"
                 "ECDHE-ECDSA-CHACHA20-POLY1305", ca=ca())
    eq(r.cipher, "ECDHE-ECDSA-CHACHA20-POLY1305", "TLS 1.2 cipher (%r)" % r)
    with TLSConn(gh2.port, ctx(minv=ssl.TLSVersion.TLSv1_3)) as c:
        eq(c.sock.cipher()[0], "TLS_CHACHA20_POLY1305_SHA256", "TLS 1.3 suite")


# =============================================================================================
# Session resumption
# =============================================================================================


def resume(port, d, flags, n=3, sni="a.test"):
    """One full handshake saving the session, then n resumptions from it: the list of
    "New"/"Reused" (with the status of the request on each)."""
    sess = os.path.join(d, "sess-%d.pem" % port)
    r = s_client(port, "-sess_out", sess, *flags, sni=sni, ca=ca(), request="/echo")
    check(r.handshake_ok, "first handshake: %r" % r)
    eq(r.reused, "New", "first handshake")
    if not os.path.exists(sess):
        return None  # s_client saves nothing when the server gave nothing to resume
    out = []
    for i in range(n):
        r = s_client(port, "-sess_in", sess, *flags, sni=sni, ca=ca(), request="/echo")
        check(r.handshake_ok, "handshake %d: %r" % (i, r))
        out.append((r.reused, r.http[:15]))
    return out


@test("resumption TLS 1.2 by the session cache (tickets off): every resumption says Reused "
      "(two worker threads)")
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o, top="threads 2;\n", extra="    tls_session_tickets off;\n"))
    got = resume(gh.port, tmpdir(), ["-tls1_2", "-no_ticket"], n=4)
    eq(got, [("Reused", "HTTP/1.1 200 OK")] * 4, "resumptions")


@test("resumption TLS 1.2 by session tickets (cache off): Reused")
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o, top="threads 2;\n", extra="    tls_session_cache off;\n"))
    got = resume(gh.port, tmpdir(), ["-tls1_2"], n=4)
    eq(got, [("Reused", "HTTP/1.1 200 OK")] * 4, "resumptions")


@test("resumption TLS 1.3 with the defaults: Reused")
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o, top="threads 2;\n"))
    got = resume(gh.port, tmpdir(), ["-tls1_3"], n=4)
    eq(got, [("Reused", "HTTP/1.1 200 OK")] * 4, "resumptions")


@test("no resumption with tls_session_cache off and tls_session_tickets off (TLS 1.2 and 1.3): "
      "New each time")
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o, extra="    tls_session_cache off;\n"
                                    "    tls_session_tickets off;\n"))
    d = tmpdir()
    for flag in ("-tls1_2", "-tls1_3"):
        got = resume(gh.port, d, [flag], n=2)
        diag("%s: %s" % (flag, got or "no session saved"))
        check(got is None or got == [("New", "HTTP/1.1 200 OK")] * 2,
              "resumptions with %s: %r" % (flag, got))


@test("tls_session_timeout: the ticket lifetime hint is 1h by default and follows the setting "
      "(TLS 1.2 and 1.3)")
def t():
    o = Origin()
    for setting, want in (("", 3600), ("    tls_session_timeout 5m;\n", 300)):
        gh = Gatehouse(one_tls(o, extra=setting))
        for flag in ("-tls1_2", "-tls1_3"):
            r = s_client(gh.port, flag, ca=ca(), request="/echo")
            m = re.search(r"ticket lifetime hint: (\d+)", r.out)
            check(m, "a ticket with %s: %r" % (flag, r))
            eq(int(m.group(1)), want, "lifetime hint with %r (%s)" % (setting.strip(), flag))
        gh.stop()


@test("tls_prefer_server_ciphers: on (the default) picks the server's first cipher, off the "
      "client's")
def t():
    o = Origin()
    server_list = '    tls_ciphers "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256";\n'
    client_list = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305"
    for setting, want in (("", "ECDHE-ECDSA-CHACHA20-POLY1305"),
                          ("    tls_prefer_server_ciphers on;\n", "ECDHE-ECDSA-CHACHA20-POLY1305"),
                          ("    tls_prefer_server_ciphers off;\n",
                           "ECDHE-ECDSA-AES128-GCM-SHA256")):
        gh = Gatehouse(one_tls(o, extra=server_list + setting))
        r = s_client(gh.port, "-tls1_2", "-cipher", client_list, ca=ca())
        eq(r.cipher, want, "cipher with %r" % setting.strip())
        gh.stop()


@test("chained resumption: each resumed TLS 1.3 connection gets a new ticket and the next one "
      "resumes with it (TLS 1.2: the ticket is used again, or the new one if sent)")
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o, extra="    tls_session_cache off;\n"))
    d = tmpdir()
    for flag in ("-tls1_2", "-tls1_3"):
        prev = os.path.join(d, "c%s-0.pem" % flag)
        s_client(gh.port, flag, "-sess_out", prev, ca=ca(), request="/echo")
        got = []
        for i in range(1, 5):
            cur = os.path.join(d, "c%s-%d.pem" % (flag, i))
            r = s_client(gh.port, flag, "-sess_in", prev, "-sess_out", cur, ca=ca(),
                         request="/echo")
            got.append(r.reused)
            if flag == "-tls1_3":  # a TLS 1.2 ticket may be used again; 1.3 ones only once
                check(os.path.exists(cur), "a new ticket after resumption %d" % i)
            if os.path.exists(cur):
                prev = cur
        eq(got, ["Reused"] * 4, "chained resumptions (%s)" % flag)


@test("TLS 1.3 early data (0-RTT) is never accepted (it could be replayed): a resumption that "
      "tries to send a request as early data is not served from it")
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o))
    d = tmpdir()
    sess = os.path.join(d, "s.pem")
    early = write(os.path.join(d, "early.txt"), build_request("GET", "/echo?early", host="a.test"))
    s_client(gh.port, "-tls1_3", "-sess_out", sess, ca=ca(), request="/echo")
    r = s_client(gh.port, "-tls1_3", "-sess_in", sess, "-early_data", early, ca=ca())
    m = re.search(r"^Early data was (\w+( \w+)?)", r.out, re.M)
    diag("s_client: %s" % (m.group(0) if m else "no early data line"))
    check(not re.search(r"Early data was accepted", r.out), "early data accepted: %r" % r)
    eq([q.target for q in o.requests if "early" in q.target], [], "early requests at the origin")


@test("odd SNI values (63-byte labels up to 250 bytes, bytes a host name may not hold) get the "
      "default certificate or a refused handshake, never a crash")
def t():
    gh = shared_sni()
    for sni in (".".join(["a" * 63] * 3) + "." + "b" * 58, "bad_name!#$", "x..b.test", "-.b.test"):
        r = s_client(gh.port, sni=sni, ca=ca())
        diag("%r: handshake %s, %s" % (sni[:20], r.handshake_ok, r.subject))
        if r.handshake_ok:
            check(r.subject and "default.test" in r.subject or "*.b.test" in (r.subject or ""),
                  "certificate for %r: %s" % (sni, r.subject))
    check(gh.alive(), "running")
    eq(echo_over(gh.port, ctx()).status, 200, "still serving")


@test("a client-initiated renegotiation (TLS 1.2) is refused, as nginx does; Gatehouse goes on "
      "serving")
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o))
    p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % gh.port,
                          "-servername", "a.test", "-tls1_2", "-CAfile", ca()],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    try:
        p.stdin.write(b"R\n")
        p.stdin.flush()
        out, _ = p.communicate(timeout=10)  # s_client exits when the renegotiation fails
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        raise AssertionError("s_client still connected 10s after asking to renegotiate: %r"
                             % out[-800:])
    out = out.decode("utf-8", "replace")
    check("RENEGOTIATING" in out, "s_client asked: %r" % out[-800:])
    check(re.search(r"no renegotiation|alert", out), "refused: %r" % out[-800:])
    check(gh.alive(), "running")
    eq(echo_over(gh.port, ctx()).status, 200, "a new connection is served")


@test("session tickets across key rotation (tls_session_timeout 2s, so keys rotate every 2s): "
      "each ticket used ~0.7s after it was made resumes, over ~5s (TLS 1.2 tickets, TLS 1.3)",
      timeout=60)
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o, top="threads 2;\n", extra="    tls_session_cache off;\n"
                                                       "    tls_session_timeout 2s;\n"))
    d = tmpdir()
    flags = ("-tls1_2", "-tls1_3")
    got = {f: [] for f in flags}
    names = {f: set() for f in flags}
    prev = {}
    t0 = time.monotonic()
    step = 0
    # each step resumes the ticket of the step before and saves a fresh one from a full
    # handshake right after, so that the steps cover the whole time line and rotations fall
    # between tickets and their use
    while time.monotonic() - t0 < 5:
        for f in flags:
            if f in prev:
                got[f].append(s_client(gh.port, f, "-sess_in", prev[f], ca=ca(),
                                       request="/echo").reused)
            prev[f] = os.path.join(d, "t%s-%d.pem" % (f, step))
            r = s_client(gh.port, f, "-sess_out", prev[f], ca=ca(), request="/echo")
            check(os.path.exists(prev[f]), "a ticket saved (%r)" % r)
            # the ticket's first 16 bytes name the key that encrypted it
            m = re.search(r"TLS session ticket:\s*\n\s*0000 - ([0-9a-f -]{47})", r.out)
            check(m, "a ticket in s_client's output: %r" % r)
            names[f].add(m.group(1))
        step += 1
        time.sleep(0.7)
    for f in flags:
        diag("%s: %s, %d ticket key names" % (f, got[f], len(names[f])))
        eq(got[f], ["Reused"] * len(got[f]), "resumptions with %s" % f)
        check(len(names[f]) >= 2, "the ticket key rotated within 5s (%s)" % f)


@test("session tickets made before a reload resume after it (the keys survive reloads; TLS 1.2 "
      "and 1.3)")
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o, extra="    tls_session_cache off;\n"))
    d = tmpdir()
    sessions = {}
    for flag in ("-tls1_2", "-tls1_3"):
        sessions[flag] = os.path.join(d, "s%s.pem" % flag)
        s_client(gh.port, flag, "-sess_out", sessions[flag], ca=ca(), request="/echo")
    mark = len(gh.stderr())
    gh.reload(one_tls(o, extra="    tls_session_cache off;\n"
                               "    response_header set X-Gen 2;\n"))
    gh.wait_stderr(r"reload complete", 10, start=mark)
    wait_until(lambda: echo_over(gh.port, ctx()).header("x-gen") == "2", 10, "reloaded")
    for flag in ("-tls1_2", "-tls1_3"):
        r = s_client(gh.port, flag, "-sess_in", sessions[flag], ca=ca(), request="/echo")
        eq(r.reused, "Reused", "a ticket from before the reload (%s)" % flag)
        check("X-Gen: 2" in r.http, "served by the new config")


def ticket_conf(o, keyfiles):
    return one_tls(o, extra="    tls_session_cache off;\n" + "".join(
        "    tls_session_ticket_key %s;\n" % k for k in keyfiles))


@test("tls_session_ticket_key: two instances sharing the key file resume each other's tickets "
      "(TLS 1.2 and 1.3); an instance with another key does not")
def t():
    o = Origin()
    d = tmpdir()
    k1 = write(os.path.join(d, "k1.key"), os.urandom(80))
    k2 = write(os.path.join(d, "k2.key"), os.urandom(80))
    a = Gatehouse(ticket_conf(o, [k1]))
    b = Gatehouse(ticket_conf(o, [k1]))
    c = Gatehouse(ticket_conf(o, [k2]))
    for flag in ("-tls1_2", "-tls1_3"):
        sess = os.path.join(d, "s%s.pem" % flag)
        r = s_client(a.port, flag, "-sess_out", sess, ca=ca(), request="/echo")
        eq(r.reused, "New", "first handshake on A (%s)" % flag)
        r = s_client(b.port, flag, "-sess_in", sess, ca=ca(), request="/echo")
        eq(r.reused, "Reused", "A's ticket on B (%s): %r" % (flag, r))
        r = s_client(c.port, flag, "-sess_in", sess, ca=ca(), request="/echo")
        check(r.handshake_ok, "handshake on C: %r" % r)
        eq(r.reused, "New", "A's ticket on C with another key (%s)" % flag)


@test("tls_session_ticket_key repeated: the first encrypts, a later one still decrypts")
def t():
    o = Origin()
    d = tmpdir()
    old = write(os.path.join(d, "old.key"), os.urandom(80))
    new = write(os.path.join(d, "new.key"), os.urandom(80))
    a = Gatehouse(ticket_conf(o, [old]))
    b = Gatehouse(ticket_conf(o, [new, old]))
    for flag in ("-tls1_2", "-tls1_3"):
        sess = os.path.join(d, "s%s.pem" % flag)
        eq(s_client(a.port, flag, "-sess_out", sess, ca=ca(), request="/echo").reused, "New",
           "first handshake")
        r = s_client(b.port, flag, "-sess_in", sess, ca=ca(), request="/echo")
        eq(r.reused, "Reused", "a ticket of the old key on [new, old] (%s): %r" % (flag, r))


@test("-t: a tls_session_ticket_key file that is not 80 bytes, or missing, is an error naming "
      "the file")
def t():
    d = tmpdir()
    short = write(os.path.join(d, "short.key"), os.urandom(10))
    for path in (short, os.path.join(d, "missing.key")):
        check_t(TOP + "server {\n    listen 127.0.0.1:%d tls;\n%s"
                "    tls_session_ticket_key %s;\n    proxy 127.0.0.1:9;\n}\n"
                % (free_port(), cert_lines("a-ec"), path), False, [re.escape(path)])


# =============================================================================================
# Client certificates
# =============================================================================================


def mtls_conf(o, mode):
    rules = ("    request_header set X-Client-DN $ssl_client_s_dn;\n"
             "    request_header set X-Client-Verify $ssl_client_verify;\n")
    return one_tls(o, extra="    tls_client_ca %s;\n    tls_verify_client %s;\n%s"
                   % (P().cert("client-ca"), mode, rules))


def with_client(name=None, **kw):
    if name is None:
        return ctx(**kw)
    return ctx(cert=P().cert(name), key=P().key(name), **kw)


def echo_over(port, c_ctx):
    with TLSConn(port, c_ctx) as c:
        return c.request("GET", "/echo", host="a.test")


@test("tls_verify_client on: no certificate and a certificate from another CA are refused "
      "(TLS 1.2 and 1.3); alice's is accepted and $ssl_client_s_dn / $ssl_client_verify reach "
      "the origin")
def t():
    o = Origin()
    gh = Gatehouse(mtls_conf(o, "on"))
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        why = tls_refused(lambda: echo_over(gh.port, with_client(None, maxv=v, minv=v)))
        diag("%s without a certificate: %s" % (v.name, why))
        why = tls_refused(lambda: echo_over(gh.port, with_client("mallory", maxv=v, minv=v)))
        diag("%s with mallory's certificate: %s" % (v.name, why))
        h = origin_headers(echo_over(gh.port, with_client("alice", maxv=v, minv=v)))
        eq(h.get("x-client-dn"), "CN=alice,O=Test", "X-Client-DN")
        eq(h.get("x-client-verify"), "SUCCESS", "X-Client-Verify")
    eq(len(o.requests), 2, "requests the origin saw (alice's only)")
    r = curl(["--cert", P().cert("alice"), "--key", P().key("alice")] +
             curl_tls(gh.port, "/echo", "a.test", ca()))
    eq(r.returncode, 0, "curl with alice's certificate (%s)" % r.stderr)
    r = curl(curl_tls(gh.port, "/echo", "a.test", ca()))
    check(r.returncode != 0, "curl without a certificate must fail")


@test("tls_verify_client on: the server asks for certificates of the tls_client_ca (s_client "
      "lists the acceptable CA names)")
def t():
    o = Origin()
    gh = Gatehouse(mtls_conf(o, "on"))
    r = s_client(gh.port, "-tls1_2", "-cert", P().cert("alice"), "-key", P().key("alice"),
                 ca=ca(), request="/echo")
    check(r.handshake_ok, "handshake: %r" % r)
    check(re.search(r"Acceptable client certificate CA names\s*\n.*Gatehouse Client CA", r.out),
          "CA names sent: %r" % r)
    check(r.http.startswith("HTTP/1.1 200"), "response: %r" % r.http[:200])


@test("tls_verify_client optional: no certificate gets through with $ssl_client_verify NONE "
      "and an empty DN; alice's gets SUCCESS")
def t():
    o = Origin()
    gh = Gatehouse(mtls_conf(o, "optional"))
    h = origin_headers(echo_over(gh.port, with_client(None)))
    eq(h.get("x-client-verify"), "NONE", "X-Client-Verify without a certificate")
    eq(h.get("x-client-dn", ""), "", "X-Client-DN without a certificate")
    h = origin_headers(echo_over(gh.port, with_client("alice")))
    eq(h.get("x-client-verify"), "SUCCESS", "X-Client-Verify with alice")
    eq(h.get("x-client-dn"), "CN=alice,O=Test", "X-Client-DN with alice")


@test("tls_verify_client optional: a certificate from another CA is refused (a certificate "
      "that is sent must be valid, as in nginx), TLS 1.2 and 1.3")
def t():
    o = Origin()
    gh = Gatehouse(mtls_conf(o, "optional"))
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        why = tls_refused(lambda: echo_over(gh.port, with_client("mallory", maxv=v, minv=v)))
        diag("%s: %s" % (v.name, why))
    eq(o.requests, [], "origin requests")


def issue(d, name, issuer_pem, issuer_key, subj, ca=False, serial=77):
    """An EC key and certificate NAME in d signed by issuer (a CA when ca): (pem, key)."""
    key, csr, pem = (os.path.join(d, name + ext) for ext in (".key", ".csr", ".pem"))
    if ca:
        ext = "[x]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n"
    else:
        ext = "[x]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n" \
              "extendedKeyUsage=clientAuth\n"
    extf = write(os.path.join(d, name + ".ext"), ext)
    for cmd in (["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", key],
                ["req", "-config", P().path("openssl.cnf"), "-new", "-key", key, "-subj", subj,
                 "-out", csr],
                ["x509", "-req", "-in", csr, "-CA", issuer_pem, "-CAkey", issuer_key,
                 "-set_serial", str(serial), "-days", "2", "-extfile", extf, "-extensions", "x",
                 "-out", pem]):
        subprocess.run(["openssl"] + cmd, check=True, capture_output=True, timeout=30)
    return pem, key


@test("a client certificate whose subject holds CR LF, a comma and quotes: $ssl_client_s_dn is "
      "RFC 2253-escaped, so no header is injected toward the origin")
def t():
    o = Origin()
    d = tmpdir()
    pem, key = issue(d, "evil", P().cert("client-ca"), P().key("client-ca"),
                     '/O=Test/CN=evil\r\nX-Evil: 1, "q"', serial=99)
    gh = Gatehouse(mtls_conf(o, "on"))
    r = echo_over(gh.port, ctx(cert=pem, key=key))
    eq(r.status, 200, "status")
    eq(o.errors, [], "requests the origin could not parse")
    h = origin_headers(r)
    check("x-evil" not in h, "a header was injected: %r" % h)
    dn = h.get("x-client-dn", "")
    diag("X-Client-DN: %r" % dn)
    check("\r" not in dn and "\n" not in dn, "control bytes in X-Client-DN %r" % dn)
    check(dn.endswith(",O=Test") and dn.startswith("CN=evil"), "DN %r" % dn)


def deep_clients(d):
    """Client certificates under one intermediate (CN=one) and under two (CN=two): {n:
    (chain file, key file)}, the chain being the leaf and its intermediates, without the root."""
    one, one_key = issue(d, "one", P().cert("inter"), P().key("inter"), "/O=Test/CN=one")
    ia, ia_key = issue(d, "inter-a", ca(), P().key("ca"), "/O=Test/CN=Inter A", ca=True, serial=78)
    ib, ib_key = issue(d, "inter-b", ia, ia_key, "/O=Test/CN=Inter B", ca=True, serial=79)
    two, two_key = issue(d, "two", ib, ib_key, "/O=Test/CN=two", serial=80)
    read = lambda f: open(f).read()  # noqa: E731
    return {1: (write(os.path.join(d, "one-chain.pem"), read(one) + read(P().cert("inter"))),
                one_key),
            2: (write(os.path.join(d, "two-chain.pem"), read(two) + read(ib) + read(ia)),
                two_key)}


@test("tls_verify_depth (OpenSSL's and nginx's meaning: the intermediates allowed): one "
      "intermediate passes with the default (1), 1 and 2; two intermediates only with 2")
def t():
    o = Origin()
    chains = deep_clients(tmpdir())
    rules = "    request_header set X-Client-DN $ssl_client_s_dn;\n"
    for depth in (None, "1", "2"):
        extra = "    tls_client_ca %s;\n    tls_verify_client on;\n%s" % (ca(), rules)
        if depth is not None:
            extra += "    tls_verify_depth %s;\n" % depth
        gh = Gatehouse(one_tls(o, extra=extra))
        for n, (chain, key) in sorted(chains.items()):
            c_ctx = ctx(cert=chain, key=key)
            if n <= int(depth or "1"):
                dn = "CN=%s,O=Test" % ("one" if n == 1 else "two")
                eq(origin_headers(echo_over(gh.port, c_ctx)).get("x-client-dn"), dn,
                   "DN with %d intermediate(s), tls_verify_depth %s" % (n, depth))
            else:
                diag("%d intermediates, depth %s: %s" % (
                    n, depth, tls_refused(lambda: echo_over(gh.port, c_ctx))))
        gh.stop()


# =============================================================================================
# HSTS, redirect_to_https, forwarded headers, access log
# =============================================================================================


@test("hsts: Strict-Transport-Security on responses over TLS (proxied and `return`), never on "
      "the same server's plain listener")
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o, extra="    hsts max-age=31536000 includeSubDomains preload;\n",
                           nplain=True), nports=2)
    for path in ("/echo", "/ret"):
        with TLSConn(gh.port, ctx()) as c:
            r = c.request("GET", path, host="a.test")
        eq(r.status, 200, "status over TLS")
        v = r.header("strict-transport-security")
        check(v is not None, "HSTS over TLS on %s: %r" % (path, r.headers))
        for tok in ("max-age=31536000", "includeSubDomains", "preload"):
            check(tok in v, "%r in %r" % (tok, v))
        eq(len(r.header_all("strict-transport-security")), 1, "one HSTS field")
        r = http_get(gh.ports[1], path, host="a.test")
        eq(r.status, 200, "status over plain HTTP")
        eq(r.header("strict-transport-security"), None, "HSTS over plain HTTP")
    with TLSConn(gh.port, ctx()) as c:
        r = c.request("GET", "/resp-headers?Strict-Transport-Security=max-age%3D5", host="a.test")
    eq(len(r.header_all("strict-transport-security")), 1,
       "one HSTS field when the origin sends one")
    check("max-age=31536000" in r.header("strict-transport-security"), "the configured one wins")


def redirect_conf(o, arg=""):
    def build(g):
        return TOP + "server {\n    listen 127.0.0.1:%d;\n    server_name a.test;\n" \
                     "    redirect_to_https%s;\n    proxy 127.0.0.1:%d;\n}\n" % (
                         g.port, arg, o.port)

    return build


@test("redirect_to_https: 301 for GET and HEAD, 308 for POST and PUT, to https://HOST/path?query "
      "(the plain port dropped); the origin sees nothing")
def t():
    o = Origin()
    gh = Gatehouse(redirect_conf(o))
    host = "a.test:%d" % gh.port
    for method, code in (("GET", 301), ("HEAD", 301), ("POST", 308), ("PUT", 308)):
        body = b"x=1" if method in ("POST", "PUT") else None
        r = http_request(gh.port, method, "/p/a%20b?q=1&r=%2F", host=host, body=body)
        eq(r.status, code, "%s status" % method)
        eq(r.header("location"), "https://a.test/p/a%20b?q=1&r=%2F", "%s Location" % method)
    r = http_get(gh.port, "/", host="a.test")
    eq(r.header("location"), "https://a.test/", "Location for /")
    res = curl(["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                "http://127.0.0.1:%d/x?y=z" % gh.port, "-H", "Host: a.test"])
    eq(res.stdout.decode(), "301 https://a.test/x?y=z", "curl's view")
    eq(o.requests, [], "origin requests")


@test("redirect_to_https 308 fixes the code; redirect_to_https port=8443 adds the port")
def t():
    o = Origin()
    gh = Gatehouse(redirect_conf(o, " 308"))
    r = http_get(gh.port, "/a?b=c", host="a.test")
    eq(r.status, 308, "GET status with 308")
    eq(r.header("location"), "https://a.test/a?b=c", "Location")
    gh2 = Gatehouse(redirect_conf(o, " port=8443"))
    r = http_get(gh2.port, "/a?b=c", host="a.test:%d" % gh2.port)
    eq(r.status, 301, "GET status with port=")
    eq(r.header("location"), "https://a.test:8443/a?b=c", "Location with port=8443")
    r = http_request(gh2.port, "POST", "/a", host="a.test", body=b"z")
    eq((r.status, r.header("location")), (308, "https://a.test:8443/a"), "POST with port=")
    for code in ("302", "307"):
        gh3 = Gatehouse(redirect_conf(o, " %s port=443" % code))
        r = http_request(gh3.port, "POST", "/q?x", host="a.test", body=b"z")
        eq((r.status, r.header("location")), (int(code), "https://a.test:443/q?x"),
           "redirect_to_https %s" % code)
        gh3.stop()
    eq(o.requests, [], "origin requests")
    gh4 = Gatehouse(one_tls(o, extra="    redirect_to_https;\n"))
    eq(echo_over(gh4.port, ctx()).status, 200, "a TLS server ignores redirect_to_https")


@test("X-Forwarded-Proto https (and Forwarded proto=https) reach the origin over TLS; http over "
      "the plain listener")
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o, nplain=True, extra="    forwarded both;\n"), nports=2)
    with TLSConn(gh.port, ctx()) as c:
        h = origin_headers(c.request("GET", "/echo", host="a.test"))
    eq(h.get("x-forwarded-proto"), "https", "X-Forwarded-Proto over TLS")
    check("proto=https" in h.get("forwarded", ""), "Forwarded %r" % h.get("forwarded"))
    h = origin_headers(http_get(gh.ports[1], "/echo", host="a.test"))
    eq(h.get("x-forwarded-proto"), "http", "X-Forwarded-Proto over plain HTTP")
    check("proto=http" in h.get("forwarded", "") and "https" not in h.get("forwarded", ""),
          "Forwarded %r" % h.get("forwarded"))


@test("log_format with $scheme $https $ssl_protocol $ssl_cipher $ssl_server_name "
      "$ssl_alpn_protocol $ssl_session_reused: TLS 1.3, TLS 1.2 and plain requests")
def t():
    o = Origin()
    fmt = ("log_format t '$scheme|$https|$ssl_protocol|$ssl_cipher|$ssl_server_name|"
           "$ssl_alpn_protocol|$ssl_session_reused|$status';\n")

    def build(g):
        return fmt + "access_log %s/access.log t;\n" % g.dir + one_tls(o, nplain=True)(g)

    gh = Gatehouse(build, nports=2)
    with TLSConn(gh.port, ctx(minv=ssl.TLSVersion.TLSv1_3, alpn=["http/1.1"])) as c:
        eq(c.request("GET", "/echo", host="a.test").status, 200, "TLS 1.3 status")
    with TLSConn(gh.port, ctx(maxv=ssl.TLSVersion.TLSv1_2,
                              ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")) as c:
        eq(c.request("GET", "/echo", host="a.test").status, 200, "TLS 1.2 status")
    eq(http_get(gh.ports[1], "/echo", host="a.test").status, 200, "plain status")
    ls = log_lines(gh, 3)
    f = [line.split("|") for line in ls]
    eq(f[0][:3] + f[0][4:], ["https", "on", "TLSv1.3", "a.test", "http/1.1", ".", "200"],
       "TLS 1.3 line %r" % ls[0])
    check(f[0][3].startswith("TLS_"), "TLS 1.3 cipher %r" % f[0][3])
    eq(f[1], ["https", "on", "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256", "a.test", "-", ".",
              "200"], "TLS 1.2 line")
    eq(f[2], ["http", "-", "-", "-", "-", "-", "-", "200"], "plain line")


# =============================================================================================
# Bodies, keep-alive, WebSocket
# =============================================================================================


def big_file(d, n=MB3):
    return write(os.path.join(d, "big.bin"), det_bytes(n))


@test("3 MB over TLS with curl: upload with Content-Length and chunked, download Content-Length "
      "and chunked, sha256 intact", timeout=60)
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o))
    path = big_file(tmpdir())
    want = sha256(det_bytes(MB3))
    for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
        r = curl(["--data-binary", "@" + path] + extra +
                 curl_tls(gh.port, "/upload", "a.test", ca()), timeout=40)
        eq(r.returncode, 0, "curl upload %r (%s)" % (extra, r.stderr))
        d = json.loads(r.stdout)
        eq((d["length"], d["sha256"]), (MB3, want), "what the origin got %r" % extra)
    for path_ in ("/bytes/%d" % MB3, "/chunked/%d" % MB3):
        r = curl(curl_tls(gh.port, path_, "a.test", ca()), timeout=40)
        eq(r.returncode, 0, "curl download %s (%s)" % (path_, r.stderr))
        eq(sha256(r.stdout), want, "sha256 of %s" % path_)


@test("keep-alive over TLS: upload 3 MB, download 3 MB and six small requests on one TLS "
      "connection (one handshake)", timeout=60)
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o))
    data = det_bytes(MB3)
    with TLSConn(gh.port, ctx(), timeout=20) as c:
        r = c.request("POST", "/upload", host="a.test", body=data)
        eq((r.json()["length"], r.json()["sha256"]), (MB3, sha256(data)), "upload")
        r = c.request("GET", "/bytes/%d" % MB3, host="a.test")
        eq(sha256(r.body), sha256(data), "download")
        for i in range(6):
            r = c.request("GET", "/echo?i=%d" % i, host="a.test")
            eq(r.json()["target"], "/echo?i=%d" % i, "request %d" % i)
        eq(c.sock.session_reused, False, "one full handshake")
    # pipelined: three requests in one write, three responses in order
    with TLSConn(gh.port, ctx()) as c:
        c.send(b"".join(build_request("GET", "/echo?p=%d" % i, host="a.test") for i in range(3)))
        for i in range(3):
            eq(c.read_response().json()["target"], "/echo?p=%d" % i, "pipelined %d" % i)


@test("WebSocket over a TLS client connection: upgrade, echo 3 messages (one of 200 KB), close")
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o))
    with TLSConn(gh.port, ctx()) as c:
        c.send(build_request("GET", "/websocket", host="a.test", headers=[
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]))
        r = c.read_response()
        eq(r.status, 101, "status")
        for msg in (b"hello", det_bytes(200000), b"bye"):
            c.send(ws_frame(2, msg))
            op, payload, _ = ws_read_frame(c)
            eq((op, sha256(payload)), (2, sha256(msg)), "echo of %d bytes" % len(msg))
        c.send(ws_frame(8, b"\x03\xe8"))
        eq(ws_read_frame(c)[0], 8, "close frame back")


@test("a TLS client that reads slowly (small receive buffer, a pause) still gets 3 MB intact "
      "(backpressure over TLS: writes retried as OpenSSL wants)", timeout=60)
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o))
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(20)
    raw.connect(("127.0.0.1", gh.port))
    s = ctx().wrap_socket(raw, server_hostname="a.test")
    try:
        s.sendall(build_request("GET", "/bytes/%d" % MB3, host="a.test",
                                headers=[("Connection", "close")]))
        time.sleep(1.0)  # let Gatehouse fill the socket and block on it
        data = b""
        while True:
            b = s.recv(7000)
            if not b:
                break
            data += b
            if len(data) % 350000 < 7000:
                time.sleep(0.05)
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 200"), "status: %r" % head[:100])
    eq(len(body), MB3, "body length")
    eq(sha256(body), sha256(det_bytes(MB3)), "body sha256")


@test("the end of a response that closes the connection is a TLS close_notify (a client that "
      "refuses truncation reads to a clean end): HTTP/1.0 close-delimited and Connection: close")
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o))
    for req in (b"GET /close-delimited/100000 HTTP/1.0\r\nHost: a.test\r\n\r\n",
                build_request("GET", "/bytes/100000", host="a.test",
                              headers=[("Connection", "close")])):
        raw = socket.create_connection(("127.0.0.1", gh.port), timeout=10)
        s = ctx().wrap_socket(raw, server_hostname="a.test", suppress_ragged_eofs=False)
        data = b""
        try:
            s.sendall(req)
            while True:
                b = s.recv(65536)  # raises SSLEOFError on a TCP close without close_notify
                if not b:
                    break
                data += b
        finally:
            s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1."), "response: %r" % head[:100])
        eq(sha256(body), sha256(det_bytes(100000)), "body for %r" % req[:30])


@test("a request head of ~20 KB (split across TLS records) and a response with a 6 KB header "
      "(the origin-side line limit is 8k) over TLS")
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o, extra="    max_header_line 32k;\n    max_head_size 64k;\n"
                                    "    max_request_line 32k;\n"))
    big = "x" * 20000
    with TLSConn(gh.port, ctx()) as c:
        r = c.request("GET", "/echo", host="a.test", headers=[("X-Big", big)])
        eq(origin_headers(r).get("x-big"), big, "big request header at the origin")
        r = c.request("GET", "/resp-headers?X-Resp=" + big[:6000], host="a.test")
        eq(r.header("x-resp"), big[:6000], "big response header")


@test("40 concurrent TLS clients (two worker threads), each with three requests over new and "
      "resumed sessions: all answered", timeout=90)
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o, top="threads 2;\n"))
    errors = []
    reused = []
    lock = threading.Lock()

    def client(i):
        try:
            c_ctx = ctx()
            sess = None
            for j in range(3):
                with TLSConn(gh.port, c_ctx, session=sess, timeout=30) as c:
                    r = c.request("GET", "/echo?c=%d&r=%d" % (i, j), host="a.test")
                    if r.status != 200 or r.json()["target"] != "/echo?c=%d&r=%d" % (i, j):
                        raise AssertionError("bad answer %r" % r)
                    with lock:
                        reused.append(c.sock.session_reused)
                    sess = c.sock.session
        except Exception as e:  # noqa: B902 - collected and reported below
            with lock:
                errors.append("client %d: %r" % (i, e))

    ths = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(40)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(60)
    eq(errors, [], "client errors")
    eq(len(reused), 120, "answers")
    diag("%d of 120 connections resumed" % sum(reused))
    check(sum(reused) >= 60, "the second and third connections of each client resume")
    check(gh.alive(), "running")


@test("client certificate + resumption: a resumed session keeps $ssl_client_s_dn and "
      "$ssl_client_verify (TLS 1.2 and 1.3)")
def t():
    o = Origin()
    gh = Gatehouse(mtls_conf(o, "on"))
    d = tmpdir()
    for flag in ("-tls1_2", "-tls1_3"):
        sess = os.path.join(d, "s%s.pem" % flag)
        cert = ["-cert", P().cert("alice"), "-key", P().key("alice")]
        r = s_client(gh.port, flag, "-sess_out", sess, *cert, ca=ca(), request="/echo")
        check(r.http.startswith("HTTP/1.1 200"), "first: %r" % r)
        r = s_client(gh.port, flag, "-sess_in", sess, *cert, ca=ca(), request="/echo")
        eq(r.reused, "Reused", "resumed (%s)" % flag)
        body = json.JSONDecoder().raw_decode(r.http.split("\r\n\r\n", 1)[1])[0]
        h = {n.lower(): v for n, v in body["headers"]}
        eq(h.get("x-client-dn"), "CN=alice,O=Test", "X-Client-DN on a resumed session")
        eq(h.get("x-client-verify"), "SUCCESS", "X-Client-Verify on a resumed session")


def vhost_mtls_conf(o):
    """a.test without client certificates and *.b.test requiring them, on one listener."""
    def build(g):
        proxy = "    proxy 127.0.0.1:%d;\n" % o.port
        rules = "    request_header set X-Client-Verify $ssl_client_verify;\n"
        return TOP + tls_server(g.port, "a.test", ["a-ec"], proxy, default=True) + tls_server(
            g.port, "*.b.test", ["b-ec"], proxy + rules +
            "    tls_client_ca %s;\n    tls_verify_client on;\n" % P().cert("client-ca"))

    return build


@test("SNI of a server without client certificates and Host of one that requires them: not "
      "served by the latter without a verified certificate (nginx: 421 Misdirected Request)")
def t():
    o = Origin()
    gh = Gatehouse(vhost_mtls_conf(o))
    with TLSConn(gh.port, ctx(), sni="a.test") as c:
        r = c.request("GET", "/echo", host="x.b.test")
    diag("answered %d, origin saw %r" % (r.status, [q.header("x-client-verify")
                                                     for q in o.requests]))
    eq(o.requests, [], "requests the origin got for x.b.test")
    check(r.status in (400, 403, 421), "status %d (want 421 or another refusal)" % r.status)


@test("a session made on a server without client certificates is not resumed on a server of "
      "the same listener that requires them (TLS 1.2 and 1.3; tickets and cache)")
def t():
    o = Origin()
    gh = Gatehouse(vhost_mtls_conf(o))
    d = tmpdir()
    bad = []
    for flags in (["-tls1_2"], ["-tls1_2", "-no_ticket"], ["-tls1_3"]):
        sess = os.path.join(d, "s%s.pem" % "".join(flags))
        r = s_client(gh.port, "-sess_out", sess, *flags, sni="a.test", ca=ca(), request="/echo")
        check(r.http.startswith("HTTP/1.1 200"), "a.test: %r" % r)
        n = len(o.requests)
        r = s_client(gh.port, "-sess_in", sess, *flags, sni="x.b.test", ca=ca(),
                     request="/echo", host="x.b.test")
        diag("%s on x.b.test: %s, %r" % (flags, r.reused, r.http[:40]))
        if r.http.startswith("HTTP/1.1 200"):
            bad.append("%s: %s, %s, X-Client-Verify at the origin: %s" % (
                " ".join(flags), r.reused, r.http.split("\r\n")[0],
                o.requests[-1].header("x-client-verify")))
        eq(len(o.requests), n + (1 if bad and bad[-1].startswith(" ".join(flags)) else 0),
           "requests the origin got")
    eq(bad, [], "x.b.test answered clients without a certificate")


# =============================================================================================
# Timeouts and garbage
# =============================================================================================


def timeout_conf(o):
    return one_tls(o, extra="    client_header_timeout 1s;\n")


@test("client_header_timeout 1s on a TLS listener: a client that connects and sends nothing is "
      "closed (well within 8s)")
def t():
    o = Origin()
    gh = Gatehouse(timeout_conf(o))
    with Conn(gh.port) as c:
        dt = closed_within(c, 8)
    diag("closed after %.2fs" % dt)
    check(gh.alive(), "gatehouse running")


@test("client_header_timeout 1s: a client that stops mid-handshake (half a ClientHello, or a "
      "whole one and nothing more) is closed")
def t():
    o = Origin()
    gh = Gatehouse(timeout_conf(o))
    hello = client_hello()
    for part in (hello[:len(hello) // 2], hello):
        with Conn(gh.port) as c:
            c.send(part)
            dt = closed_within(c, 8)
        diag("%d of %d bytes: closed after %.2fs" % (len(part), len(hello), dt))
    eq(o.requests, [], "origin requests")


@test("client_header_timeout 1s: the handshake done and no request head (or half a head) is "
      "closed")
def t():
    o = Origin()
    gh = Gatehouse(timeout_conf(o))
    for head in (b"", b"GET /echo HTTP/1.1\r\nHost: a.test\r\n"):
        with TLSConn(gh.port, ctx()) as c:
            if head:
                c.send(head)
            dt = closed_within(c, 8)
            diag("after %r: closed after %.2fs" % (head[:20], dt))
            check(b"200 OK" not in c.buf, "no answer to an incomplete head")
    eq(o.requests, [], "origin requests")


@test("garbage on a TLS port (a plain HTTP request, random bytes, a ClientHello with a bogus "
      "length) closes the connection; nothing is proxied and TLS clients are still served")
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o, extra="    client_header_timeout 3s;\n"))
    hello = bytearray(client_hello())
    hello[3:5] = b"\xff\xff"  # record length past what follows
    for data in (b"GET /echo HTTP/1.1\r\nHost: a.test\r\n\r\n", det_bytes(3000, seed=24),
                 b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", bytes(hello)):
        resp, allb, closed = raw_exchange(gh.port, data, timeout=8)
        check(closed, "closed after %r" % data[:20])
        check(b"HTTP/1.1 200" not in allb, "no 200 for garbage: %r" % allb[:200])
        diag("%r -> %r" % (data[:12], allb[:60]))
    eq(o.requests, [], "origin requests")
    check(gh.alive(), "gatehouse running")
    eq(echo_over(gh.port, ctx()).status, 200, "a TLS request afterwards")


@test("handshake failures are logged at debug level with the client address and a reason")
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o, level="debug"))
    mark = len(gh.stderr())
    s_client(gh.port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", ca=ca())
    gh.wait_stderr(r"(?i)(handshake|tls|ssl).*127\.0\.0\.1|127\.0\.0\.1.*(handshake|tls|ssl)",
                   5, start=mark)
    line = [ln for ln in gh.stderr()[mark:].splitlines() if "127.0.0.1" in ln]
    diag("logged: %r" % line[:3])
    check(gh.alive(), "gatehouse running")


@test("the stop line counts handshakes: completed (with the resumed ones) and failed")
def t():
    o = Origin()
    gh = Gatehouse(one_tls(o, level="debug"))
    sess = os.path.join(tmpdir(), "s.pem")
    eq(s_client(gh.port, "-sess_out", sess, ca=ca(), request="/echo").reused, "New", "first")
    eq(s_client(gh.port, "-sess_in", sess, ca=ca(), request="/echo").reused, "Reused", "second")
    check(not s_client(gh.port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", ca=ca()).handshake_ok,
          "TLS 1.1 refused")
    eq(gh.stop(), 0, "exit status")
    m = re.search(r"TLS: (\d+) handshake\(s\), (\d+) resumed, (\d+) failed", gh.stderr())
    check(m, "the stop line: %r" % gh.stderr()[-600:])
    diag(m.group(0) + " (the start-up probe of the test framework connects and closes once)")
    eq((int(m.group(1)), int(m.group(2))), (2, 1), "completed and resumed")
    check(int(m.group(3)) >= 1, "failed")


# =============================================================================================
# Configuration checks (-t) and reload
# =============================================================================================


def t_conf(server_body, top="", port=None):
    return TOP + top + "server {\n    listen 127.0.0.1:%d tls;\n%s    proxy 127.0.0.1:9;\n}\n" % (
        port or free_port(), server_body)


@test("-t: an invalid tls_ciphers or tls_ciphersuites list, and a tls_ocsp_response that is not "
      "an OCSP response, are errors; a 48-byte ticket key file is accepted")
def t():
    d = tmpdir()
    check_t(t_conf(cert_lines("a-ec") + '    tls_ciphers "NO-SUCH-CIPHER";\n'), False,
            [r"tls_ciphers|cipher"])
    check_t(t_conf(cert_lines("a-ec") + '    tls_ciphersuites "TLS_NOPE";\n'), False,
            [r"tls_ciphersuites|suite"])
    junk = write(os.path.join(d, "junk.der"), b"\x30\x03\x02\x01\x01garbage")
    check_t(t_conf(cert_lines("a-ec") + "    tls_ocsp_response %s;\n" % junk), False,
            [re.escape(junk)])
    k48 = write(os.path.join(d, "k48.key"), det_bytes(48, seed=48))
    check_t(t_conf(cert_lines("a-ec") + "    tls_session_ticket_key %s;\n" % k48), True)


@test("-t and start with relative certificate, key, CA and ticket key paths: relative to the "
      "config file, not to the working directory")
def t():
    d = tmpdir()
    os.makedirs(os.path.join(d, "conf", "tls"))
    for n in ("a-ec.pem", "a-ec.key", "client-ca.pem"):
        shutil.copy(P().path(n), os.path.join(d, "conf", "tls", n))
    write(os.path.join(d, "conf", "tls", "ticket.key"), det_bytes(80, seed=80))
    port = free_port()
    path = write(os.path.join(d, "conf", "gh.conf"), TOP + (
        "server {\n    listen 127.0.0.1:%d tls;\n    tls_certificate tls/a-ec.pem;\n"
        "    tls_key tls/a-ec.key;\n    tls_client_ca tls/client-ca.pem;\n"
        "    tls_verify_client optional;\n    tls_session_ticket_key tls/ticket.key;\n"
        "    proxy 127.0.0.1:9;\n}\n" % port))
    r = run_gh(["-t", "-c", path])
    diag(r.stderr.strip()[-600:])
    eq(r.returncode, 0, "-t exit status run from %s" % os.getcwd())


@test("-t: a server on a tls listener without a certificate is an error naming the listen")
def t():
    port = free_port()
    check_t(t_conf("    server_name a.test;\n", port=port), False,
            [r"127\.0\.0\.1:%d" % port, r"certificate"])


@test("-t: a tls_certificate that is missing, unreadable (a directory) or not PEM, and a "
      "missing tls_key, are errors naming the file")
def t():
    d = tmpdir()
    missing = os.path.join(d, "missing.pem")
    junk = write(os.path.join(d, "junk.pem"), "this is not a certificate\n")
    adir = os.path.join(d, "a-directory.pem")
    os.mkdir(adir)  # unreadable as a file (permissions would not stop the root user)
    for path in (missing, junk, adir):
        check_t(t_conf("    tls_certificate %s;\n    tls_key %s;\n" % (path, P().key("a-ec"))),
                False, [re.escape(path)])
    check_t(t_conf("    tls_certificate %s;\n    tls_key %s;\n" % (
        P().cert("a-ec"), os.path.join(d, "missing.key"))), False, [r"missing\.key"])


@test("-t: a key that does not match its certificate is an error naming the file(s)")
def t():
    out = check_t(t_conf("    tls_certificate %s;\n    tls_key %s;\n" % (
        P().cert("a-rsa"), P().key("b-rsa"))), False, [r"a-rsa\.pem|b-rsa\.key"])
    check(re.search(r"(?i)match", out), "says the key does not match: %r" % out)
    # the pairs go by position: RSA cert with the EC key at the other position
    check_t(t_conf("    tls_certificate %s;\n    tls_key %s;\n    tls_certificate %s;\n"
                   "    tls_key %s;\n" % (P().cert("a-rsa"), P().key("a-ec"), P().cert("a-ec"),
                                          P().key("a-rsa"))), False, [r"a-rsa|a-ec"])


@test("-t: an expired certificate is a warning naming its date; the config is valid and the "
      "server serves it")
def t():
    out = check_t(t_conf("    tls_certificate %s;\n    tls_key %s;\n" % (
        P().cert("expired"), P().key("expired"))), True, [r"expire"])
    check(re.search(r"2020-02-01|Feb\s+1\b.*2020|1 Feb 2020", out),
          "the date (%s) in %r" % (EXPIRED_END, out))
    o = Origin()
    gh = Gatehouse(one_tls(o, certs=("expired",), names="expired.test"))
    r = s_client(gh.port, sni="expired.test", ca=ca(), request="/echo", host="expired.test")
    check(r.handshake_ok, "handshake: %r" % r)
    eq(r.verify_code, 10, "verify code (certificate has expired)")


@test("-t: tls and plain servers on one address is an error")
def t():
    port = free_port()
    check_t(TOP + "server {\n    listen 127.0.0.1:%d tls;\n%s    proxy 127.0.0.1:9;\n}\n"
            "server {\n    listen 127.0.0.1:%d;\n    server_name b.test;\n"
            "    proxy 127.0.0.1:9;\n}\n" % (port, cert_lines("a-ec"), port), False,
            [r"127\.0\.0\.1:%d" % port])


@test("hsts at top level applies to every TLS server; `hsts off` in a server turns it off there")
def t():
    o = Origin()

    def build(g):
        proxy = "    proxy 127.0.0.1:%d;\n" % o.port
        return TOP + "hsts max-age=600;\n" + tls_server(g.port, "a.test", ["a-ec"], proxy) + \
            tls_server(g.port, "*.b.test", ["b-ec"], proxy + "    hsts off;\n")

    gh = Gatehouse(build)
    with TLSConn(gh.port, ctx(), sni="a.test") as c:
        eq(c.request("GET", "/echo", host="a.test").header("strict-transport-security"),
           "max-age=600", "HSTS inherited")
    with TLSConn(gh.port, ctx(), sni="x.b.test") as c:
        eq(c.request("GET", "/echo", host="x.b.test").header("strict-transport-security"),
           None, "HSTS off")


@test("top-level tls_certificate/tls_key/tls_protocols are defaults every tls server inherits")
def t():
    o = Origin()

    def build(g):
        return TOP + cert_lines("a-ec").replace("    ", "") + "tls_protocols TLSv1.3;\n" + \
            "server {\n    listen 127.0.0.1:%d tls;\n    proxy 127.0.0.1:%d;\n}\n" % (
                g.port, o.port)

    gh = Gatehouse(build)
    with TLSConn(gh.port, ctx()) as c:
        eq(c.peer_subject()["CN"], "a.test", "certificate")
        eq(c.sock.version(), "TLSv1.3", "version")
        eq(c.request("GET", "/echo", host="a.test").status, 200, "status")
    check(not s_client(gh.port, "-tls1_2", ca=ca()).handshake_ok, "TLS 1.2 refused")


def reload_conf(o, d):
    """One TLS server whose certificate is d/cur.pem (see install_cert)."""
    return lambda g: TOP + "server {\n    listen 127.0.0.1:%d tls;\n    server_name a.test;\n" \
                           "    tls_certificate %s/cur.pem;\n    tls_key %s/cur.key;\n" \
                           "    proxy 127.0.0.1:%d;\n}\n" % (g.port, d, d, o.port)


def install_cert(d, name):
    for ext in (".pem", ".key"):
        src = P().path(name + ext)
        tmp = os.path.join(d, "cur%s.tmp" % ext)
        shutil.copy(src, tmp)
        os.replace(tmp, os.path.join(d, "cur" + ext))


@test("reload (SIGHUP) with a new certificate: new connections get it, an open keep-alive "
      "connection keeps working on the old one")
def t():
    o = Origin()
    d = tmpdir()
    install_cert(d, "a-ec")
    gh = Gatehouse(reload_conf(o, d))
    old = TLSConn(gh.port, ctx())
    eq(old.peer_subject()["O"], "Gatehouse", "first certificate")
    eq(old.request("GET", "/echo", host="a.test").status, 200, "first request")
    install_cert(d, "a2-ec")
    gh.reload()

    def new_org():
        with TLSConn(gh.port, ctx()) as c:
            return c.peer_subject()["O"]

    wait_until(lambda: new_org() == "v2", 10, "the new certificate on new connections")
    r = old.request("GET", "/echo?again", host="a.test")
    eq(r.status, 200, "old connection after the reload")
    eq(old.peer_subject()["O"], "Gatehouse", "old connection's certificate")
    old.close()


@test("reload between a client's connect and its ClientHello: the handshake afterwards works "
      "(with SNI, so the listener's name table is used) and nothing is read after free")
def t():
    o = Origin()
    d = tmpdir()
    install_cert(d, "a-ec")
    gh = Gatehouse(lambda g: "threads 1;\n" + reload_conf(o, d)(g))
    early = Conn(gh.port)
    time.sleep(0.3)  # accepted by the only worker (the kernel queue is not enough)
    mark = len(gh.stderr())
    install_cert(d, "a2-ec")
    gh.reload()
    gh.wait_stderr(r"reload complete", 10, start=mark)

    def new_org():
        with TLSConn(gh.port, ctx()) as c:
            return c.peer_subject()["O"]

    # a new connection with the new certificate: the worker has applied the new config
    wait_until(lambda: new_org() == "v2", 10, "the new certificate on new connections")
    early.sock = ctx().wrap_socket(early.sock, server_hostname="a.test")
    diag("the early connection got %r" % (early.sock.getpeercert()["subject"],))
    eq(early.request("GET", "/echo", host="a.test").status, 200, "request on it")
    early.close()
    check(gh.alive(), "gatehouse running")


@test("TLS clients on four threads for ~4s through six reloads that switch the certificate: "
      "every request answered", timeout=90)
def t():
    o = Origin()
    d = tmpdir()
    install_cert(d, "a-ec")
    gh = Gatehouse(reload_conf(o, d))
    stop = threading.Event()
    stats = {"ok": 0, "fail": []}
    lock = threading.Lock()

    def client():
        c_ctx = ctx()
        while not stop.is_set():
            try:
                r = echo_over(gh.port, c_ctx)
                with lock:
                    if r.status == 200:
                        stats["ok"] += 1
                    else:
                        stats["fail"].append(r.status)
            except Exception as e:  # noqa: B902 - counted
                with lock:
                    stats["fail"].append(repr(e))

    ths = [threading.Thread(target=client, daemon=True) for _ in range(4)]
    for th in ths:
        th.start()
    try:
        for i in range(6):
            time.sleep(0.6)
            install_cert(d, "a2-ec" if i % 2 == 0 else "a-ec")
            gh.reload()
        time.sleep(0.5)
    finally:
        stop.set()
        for th in ths:
            th.join(20)
    diag("%d answered, failures: %r" % (stats["ok"], stats["fail"][:5]))
    eq(stats["fail"], [], "failed requests")
    check(stats["ok"] > 20, "requests made")


@test("reload with a broken certificate file keeps the old config (logged, naming the file)")
def t():
    o = Origin()
    d = tmpdir()
    install_cert(d, "a-ec")
    gh = Gatehouse(reload_conf(o, d))
    mark = len(gh.stderr())
    write(os.path.join(d, "cur.pem"), "garbage\n")
    gh.reload()
    gh.wait_stderr(r"cur\.pem", 10, start=mark)
    check(gh.alive(), "still running")
    with TLSConn(gh.port, ctx()) as c:
        eq(c.peer_subject()["O"], "Gatehouse", "old certificate still served")
        eq(c.request("GET", "/echo", host="a.test").status, 200, "status")


def ocsp_response(d, out, revoked=False):
    """A DER OCSP response for a-ec.pem signed by the CA (openssl ocsp from an index file):
    good, or revoked."""
    serial = subprocess.run(["openssl", "x509", "-in", P().cert("a-ec"), "-noout", "-serial"],
                            capture_output=True, text=True, check=True).stdout
    serial = serial.strip().split("=")[1]
    index = os.path.join(d, "index.txt")
    line = ("R\t301231000000Z\t200101000000Z\t" if revoked else "V\t301231000000Z\t\t")
    write(index, line + "%s\tunknown\t/CN=a.test\n" % serial)
    req = os.path.join(d, "req.der")
    subprocess.run(["openssl", "ocsp", "-issuer", ca(), "-cert", P().cert("a-ec"), "-reqout",
                    req, "-no_nonce"], check=True, capture_output=True, timeout=30)
    tmp = out + ".tmp"
    subprocess.run(["openssl", "ocsp", "-index", index, "-rsigner", ca(), "-rkey", P().key("ca"),
                    "-CA", ca(), "-reqin", req, "-respout", tmp, "-ndays", "2"],
                   check=True, capture_output=True, timeout=30)
    os.replace(tmp, out)
    return out


def stapled_status(port):
    r = s_client(port, "-status", ca=ca(), request="/echo")
    check(r.handshake_ok, "handshake: %r" % r)
    check(re.search(r"OCSP Response Status: successful", r.out), "stapled: %r" % r)
    m = re.search(r"Cert Status: (\w+)", r.out)
    return m and m.group(1)


@test("tls_ocsp_response: the DER response is stapled when the client asks (s_client -status), "
      "and read again on reload")
def t():
    o = Origin()
    d = tmpdir()
    der = ocsp_response(d, os.path.join(d, "ocsp.der"))
    gh = Gatehouse(one_tls(o, extra="    tls_ocsp_response %s;\n" % der))
    eq(stapled_status(gh.port), "good", "stapled status")
    r = s_client(gh.port, ca=ca())
    check("OCSP response: no response sent" in r.out or "OCSP Response Status" not in r.out,
          "nothing stapled without -status")
    ocsp_response(d, der, revoked=True)
    gh.reload()
    wait_until(lambda: stapled_status(gh.port) == "revoked", 10, "the new response stapled")


# =============================================================================================
# TLS to origins
# =============================================================================================


def ups_conf(oport, ups_extra, server_extra="", top="", tls_client=False, threads=None):
    """A config function: plain listener (gh.port) and, with tls_client, a TLS one
    (gh.ports[1]), proxying to `upstream app { server 127.0.0.1:oport tls; ups_extra }`."""

    def build(g):
        text = TOP + top + ("threads %d;\n" % threads if threads else "")
        text += "upstream app {\n    server 127.0.0.1:%d tls;\n%s}\n" % (oport, ups_extra)
        text += "server {\n    listen 127.0.0.1:%d;\n    proxy app;\n%s}\n" % (g.port,
                                                                                server_extra)
        if tls_client:
            text += tls_server(g.ports[1], "a.test", ["a-ec"], "    proxy app;\n" + server_extra)
        return text

    return build


def trusted(name="origin.test"):
    return "    tls_trusted_ca %s;\n" % ca() + ("    tls_name %s;\n" % name if name else "")


def origin_tls(o_resp):
    d = o_resp.json()
    check(d.get("tls"), "the origin got the request over TLS: %r" % d)
    return d["tls"]


@test("upstream `server ADDR tls` with tls_trusted_ca and tls_name: requests go over TLS with "
      "that SNI")
def t():
    o = TLSOrigin(P().cert("origin"), P().key("origin"))
    gh = Gatehouse(ups_conf(o.port, trusted()))
    r = http_get(gh.port, "/echo?x=1")
    eq(r.status, 200, "status (%r)" % r.body[:200])
    info = origin_tls(r)
    eq(info["sni"], "origin.test", "SNI the origin got")
    eq(r.json()["target"], "/echo?x=1", "target")
    check(info["version"] in ("TLSv1.2", "TLSv1.3"), "version %r" % info["version"])


@test("origin with a self-signed certificate: 502 and an error-log line naming the "
      "verification error; tls_verify off lets it through")
def t():
    o = TLSOrigin(P().cert("origin-self"), P().key("origin-self"))
    gh = Gatehouse(ups_conf(o.port, trusted()))
    r = http_get(gh.port, "/echo")
    eq(r.status, 502, "status")
    gh.wait_stderr(r"(?i)certificate verify failed|self.signed", 5)
    line = [ln for ln in gh.stderr().splitlines() if re.search(r"(?i)self.signed|verify", ln)]
    diag("error log: %r" % line[:2])
    check(line and re.search(r"(?i)self.signed", line[0]), "names the reason: %r" % line)
    eq(o.requests, [], "origin requests")
    gh2 = Gatehouse(ups_conf(o.port, trusted() + "    tls_verify off;\n"))
    r = http_get(gh2.port, "/echo")
    eq(r.status, 200, "status with tls_verify off")
    origin_tls(r)


@test("origin whose certificate names another host: 502 and 'hostname mismatch' in the error "
      "log; tls_verify off lets it through")
def t():
    o = TLSOrigin(P().cert("origin-wrongname"), P().key("origin-wrongname"))
    gh = Gatehouse(ups_conf(o.port, trusted()))
    eq(http_get(gh.port, "/echo").status, 502, "status")
    gh.wait_stderr(r"(?i)hostname mismatch", 5)
    eq(o.requests, [], "origin requests")
    gh2 = Gatehouse(ups_conf(o.port, trusted() + "    tls_verify off;\n"))
    eq(http_get(gh2.port, "/echo").status, 200, "status with tls_verify off")


@test("origin trusted only by the test CA: the default store (no tls_trusted_ca) refuses it "
      "with 502")
def t():
    o = TLSOrigin(P().cert("origin"), P().key("origin"))
    gh = Gatehouse(ups_conf(o.port, "    tls_name origin.test;\n"))
    eq(http_get(gh.port, "/echo").status, 502, "status")
    gh.wait_stderr(r"(?i)verify|certificate", 5)


@test("proxy https://127.0.0.1:PORT with top-level tls_trusted_ca and tls_name; without "
      "tls_name the IP is checked against the IP SANs")
def t():
    o = TLSOrigin(P().cert("origin"), P().key("origin"))

    def build(name):
        return lambda g: TOP + "tls_trusted_ca %s;\n" % ca() + (
            "tls_name %s;\n" % name if name else "") + \
            "server {\n    listen 127.0.0.1:%d;\n    proxy https://127.0.0.1:%d;\n}\n" % (
                g.port, o.port)

    gh = Gatehouse(build("origin.test"))
    r = http_get(gh.port, "/echo")
    eq(origin_tls(r)["sni"], "origin.test", "SNI with tls_name")
    gh2 = Gatehouse(build(None))
    r = http_get(gh2.port, "/echo")
    eq(r.status, 200, "status with the IP checked (%r)" % r.body[:200])
    eq(origin_tls(r)["sni"], None, "no SNI for an IP literal")


@test("proxy https:// to an origin whose certificate has no IP SAN and no tls_name: 502 "
      "(IP address mismatch)")
def t():
    o = TLSOrigin(P().cert("origin-wrongname"), P().key("origin-wrongname"))
    gh = Gatehouse(lambda g: TOP + "tls_trusted_ca %s;\n" % ca() +
                   "server {\n    listen 127.0.0.1:%d;\n    proxy https://127.0.0.1:%d;\n}\n"
                   % (g.port, o.port))
    eq(http_get(gh.port, "/echo").status, 502, "status")
    gh.wait_stderr(r"(?i)mismatch", 5)


@test("TLS origin connections are pooled: six requests (two client connections, one after "
      "the other) use one TLS connection")
def t():
    o = TLSOrigin(P().cert("origin"), P().key("origin"))
    gh = Gatehouse(ups_conf(o.port, trusted(), threads=1))
    for _ in range(2):
        with Conn(gh.port) as c:
            for i in range(3):
                eq(c.request("GET", "/echo?i=%d" % i).status, 200, "status")
    eq(o.conn_count, 1, "TLS connections the origin accepted")
    eq(len(o.requests), 6, "requests")


@test("new TLS connections to the same origin resume the session (keepalive 0; TLS 1.2 and "
      "1.3 origins)")
def t():
    for maxv in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        o = TLSOrigin(P().cert("origin"), P().key("origin"), name="o-%s" % maxv.name)
        o.tls.maximum_version = maxv
        gh = Gatehouse(ups_conf(o.port, trusted() + "    keepalive 0;\n", threads=1))
        infos = [origin_tls(http_get(gh.port, "/echo?i=%d" % i)) for i in range(3)]
        eq(o.conn_count, 3, "connections with keepalive 0")
        eq([i["version"] for i in infos], [maxv.name.replace("_", ".")] * 3, "versions")
        eq([i["session_reused"] for i in infos], [False, True, True],
           "resumed sessions (%s)" % maxv.name)
        gh.stop()


@test("a pooled TLS connection the origin closed after its response: the next GET is retried "
      "on a fresh one")
def t():
    o = TLSOrigin(P().cert("origin"), P().key("origin"))
    gh = Gatehouse(ups_conf(o.port, trusted(), threads=1))
    with Conn(gh.port) as c:
        eq(c.request("GET", "/keepalive-close").status, 200, "first")
        wait_until(lambda: o.closed_by_origin >= 1, 5, "the origin closed")
        time.sleep(0.2)
        eq(c.request("GET", "/echo").status, 200, "second")
    eq(o.conn_count, 2, "connections")


@test("client certificate to an origin that requires one: tls_client_certificate/key sent "
      "(origin sees CN=gatehouse); without it 502")
def t():
    o = TLSOrigin(P().cert("origin"), P().key("origin"), client_ca=P().cert("client-ca"),
                  require_client=True)
    cc = "    tls_client_certificate %s;\n    tls_client_key %s;\n" % (
        P().cert("gh-client"), P().key("gh-client"))
    gh = Gatehouse(ups_conf(o.port, trusted() + cc))
    r = http_get(gh.port, "/echo")
    eq(r.status, 200, "status (%r)" % r.body[:200])
    eq(origin_tls(r)["client_subject"], "CN=gatehouse,O=Test", "client certificate")
    # the same from top level, with proxy https://
    gh2 = Gatehouse(lambda g: TOP + trusted().replace("    ", "") + cc.replace("    ", "") +
                    "server {\n    listen 127.0.0.1:%d;\n    proxy https://127.0.0.1:%d;\n}\n"
                    % (g.port, o.port))
    eq(origin_tls(http_get(gh2.port, "/echo"))["client_subject"], "CN=gatehouse,O=Test",
       "client certificate from top level")
    gh3 = Gatehouse(ups_conf(o.port, trusted()))
    eq(http_get(gh3.port, "/echo").status, 502, "status without a client certificate")


class RawOrigin:
    """A one-thread TCP server on 127.0.0.1 that, for each connection, reads once and then
    answers `reply` and closes (reply None: says nothing and holds the connection open)."""

    def __init__(self, reply):
        self.reply = reply
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self.stopping = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()
        register_resource(self)

    def _run(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.conns.append(c)
            c.settimeout(10)
            try:
                c.recv(65536)
                if self.reply is not None:
                    c.sendall(self.reply)
                    c.close()
            except OSError:
                pass

    def cleanup(self):
        self.stopping.set()
        self.lsock.close()
        for c in self.conns:
            c.close()
        self.th.join(5)

    def diagnostics(self):
        return ["--- raw origin :%d: %d connections" % (self.port, len(self.conns))]


def register_resource(res):
    """Stop res (cleanup()) when the test ends, as ghtest does for its own resources."""
    import ghtest

    ghtest._register(res)


@test("an origin that answers the ClientHello with plain HTTP (400) where TLS is configured: "
      "502 and an error-log line naming the origin")
def t():
    o = RawOrigin(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    gh = Gatehouse(ups_conf(o.port, trusted() + "    keepalive 0;\n"))
    eq(http_get(gh.port, "/echo", timeout=20).status, 502, "status")
    gh.wait_stderr(r"127\.0\.0\.1:%d" % o.port, 5)
    check(gh.alive(), "running")


@test("an origin that accepts the connection and never answers the TLS handshake: with "
      "connect_timeout 1s the request fails within 10s (the handshake is part of connecting, as "
      "in nginx), not after first_byte_timeout (60s)", timeout=40)
def t():
    o = RawOrigin(None)
    gh = Gatehouse(ups_conf(o.port, trusted(), top="connect_timeout 1s;\n"))
    t0 = time.monotonic()
    try:
        r = http_get(gh.port, "/echo", timeout=10)
    except socket.timeout:
        raise AssertionError("no answer within 10s (connect_timeout 1s)")
    diag("answered %d after %.2fs" % (r.status, time.monotonic() - t0))
    check(r.status in (502, 504), "status %d" % r.status)


@test("3 MB both ways through a TLS origin, from plain and TLS clients (CL and chunked upload, "
      "CL and chunked download)", timeout=90)
def t():
    o = TLSOrigin(P().cert("origin"), P().key("origin"))
    gh = Gatehouse(ups_conf(o.port, trusted(), tls_client=True), nports=2)
    path = big_file(tmpdir())
    want = sha256(det_bytes(MB3))
    for base in (["http://127.0.0.1:%d" % gh.port], None):
        def args(p):
            if base:
                return [base[0] + p]
            return curl_tls(gh.ports[1], p, "a.test", ca())

        for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
            r = curl(["--data-binary", "@" + path] + extra + args("/upload"), timeout=40)
            eq(r.returncode, 0, "upload (%s)" % r.stderr)
            d = json.loads(r.stdout)
            eq((d["length"], d["sha256"]), (MB3, want), "origin got %s %r" % (base, extra))
            check(d.get("tls"), "over TLS")
        for p in ("/bytes/%d" % MB3, "/chunked/%d" % MB3):
            r = curl(args(p), timeout=40)
            eq(r.returncode, 0, "download %s (%s)" % (p, r.stderr))
            eq(sha256(r.stdout), want, "sha256 of %s via %s" % (p, base))


@test("a TLS origin that closes in the middle of a 1 MB body: the client (plain or TLS) gets a "
      "truncated response, never a complete one")
def t():
    o = TLSOrigin(P().cert("origin"), P().key("origin"))
    gh = Gatehouse(ups_conf(o.port, trusted(), tls_client=True), nports=2)
    for c in (Conn(gh.port, timeout=20), TLSConn(gh.ports[1], ctx(), timeout=20)):
        with c:
            c.send(build_request("GET", "/malformed/short-large-body", host="a.test"))
            head = parse_head(c.read_head())
            eq(head.status, 200, "status (the head was already forwarded)")
            eq(head.header("content-length"), "1000000", "Content-Length")
            try:
                body = c.read_all(timeout=10)
            except (ssl.SSLError, OSError) as e:
                diag("read ended with %r" % e)
                body = c.buf
            diag("%s: %d of 1000000 body bytes" % (type(c).__name__, len(body)))
            check(len(body) < 1000000, "the body cannot be complete")
            eq(body, det_bytes(300000)[:len(body)], "the bytes that came are the origin's")


@test("a TLS origin that closes right after the handshake: 502")
def t():
    o = TLSOrigin(P().cert("origin"), P().key("origin"))
    gh = Gatehouse(ups_conf(o.port, trusted() + "    keepalive 0;\n"))
    eq(http_get(gh.port, "/drop").status, 502, "status")
    check(gh.alive(), "running")


@test("WebSocket through a TLS origin (plain client): upgrade and echo")
def t():
    o = TLSOrigin(P().cert("origin"), P().key("origin"))
    gh = Gatehouse(ups_conf(o.port, trusted()))
    with Conn(gh.port) as c:
        c.send(build_request("GET", "/websocket", host="a.test", headers=[
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]))
        eq(c.read_response().status, 101, "status")
        for msg in (b"hello", det_bytes(200000)):
            c.send(ws_frame(2, msg))
            op, payload, _ = ws_read_frame(c)
            eq((op, sha256(payload)), (2, sha256(msg)), "echo of %d bytes" % len(msg))


@test("reload that changes an upstream's tls_trusted_ca / tls_name: the next request is verified "
      "and named by the new settings, not sent on a connection pooled under the old ones")
def t():
    o = TLSOrigin(P().cert("origin"), P().key("origin"))
    gh = Gatehouse(ups_conf(o.port, trusted(), threads=1))
    with Conn(gh.port) as c:
        eq(origin_tls(c.request("GET", "/echo"))["sni"], "origin.test", "SNI before")
    mark = len(gh.stderr())
    gh.reload(ups_conf(o.port, "    tls_trusted_ca %s;\n    tls_name origin.test;\n"
                       % P().cert("client-ca"), threads=1))
    gh.wait_stderr(r"reload complete", 10, start=mark)
    wait_until(lambda: http_get(gh.port, "/echo").status == 502, 10,
               "502 once the origin's certificate is no longer trusted")
    eq(len(o.requests), 1, "requests the origin got after the reload")
    gh.reload(ups_conf(o.port, trusted("127.0.0.1"), threads=1))
    wait_until(lambda: http_get(gh.port, "/echo").status == 200, 10, "200 with tls_name 127.0.0.1")
    eq(origin_tls(http_get(gh.port, "/echo"))["sni"], None, "no SNI for tls_name 127.0.0.1")


@test("-t: a tls_trusted_ca or tls_client_certificate file that does not exist is an error "
      "naming it; tls_client_certificate without tls_client_key is an error")
def t():
    d = tmpdir()
    miss = os.path.join(d, "nope-ca.pem")
    base = TOP + "upstream app {\n    server 127.0.0.1:9 tls;\n%s}\n" \
                 "server {\n    listen 127.0.0.1:%d;\n    proxy app;\n}\n"
    check_t(base % ("    tls_trusted_ca %s;\n" % miss, free_port()), False, [re.escape(miss)])
    miss2 = os.path.join(d, "nope-client.pem")
    check_t(base % ("    tls_client_certificate %s;\n    tls_client_key %s;\n" % (
        miss2, P().key("gh-client")), free_port()), False, [re.escape(miss2)])
    check_t(base % ("    tls_client_certificate %s;\n" % P().cert("gh-client"), free_port()),
            False, [r"tls_client_key"])


run()
