#!/usr/bin/env python3
"""The forward proxy (issue 9, first part): `forward_proxy { }` blocks and CONNECT tunnels, with
curl as the client, names resolved by a DNS responder of the test's own (dnsd.py) through
`resolver`, and a TLS origin (origin.py) at the end of the tunnel."""

import hashlib
import json
import os
import re
import socket
import struct
import subprocess

from ghtest import *
from tlsutil import Pki, TLSOrigin
from fwdutil import dns, fwd_conf


def pki():
    """The certificates (tlsutil.Pki), made once for the file."""
    return shared("pki", Pki)


def origin_tls():
    p = pki()
    return TLSOrigin(p.cert("origin"), p.key("origin"))


def curl_via(gh, url, extra=()):
    return ["-sS", "-x", "http://127.0.0.1:%d" % gh.port, "--cacert", pki().cert("ca")] + \
        list(extra) + [url]


@test("CONNECT by name through the forward proxy reaches a TLS origin (curl -x), and the access "
      "log has the CONNECT with its status")
def t():
    o = origin_tls()
    d = dns({"origin.test": ["127.0.0.1"]})
    gh = Gatehouse(fwd_conf(d, "connect_ports %d; allow_private_destinations on;" % o.port))
    r = curl(curl_via(gh, "https://origin.test:%d/echo?x=1" % o.port))
    eq(r.returncode, 0, "curl exit (%s)" % r.stderr)
    eq(json.loads(r.stdout)["target"], "/echo?x=1", "the origin saw the request")
    check(d.queries.get("origin.test", 0) >= 1, "the name went to the resolver: %r" % d.queries)
    r = curl(curl_via(gh, "https://origin.test:%d/echo" % o.port))
    eq(r.returncode, 0, "again (%s)" % r.stderr)
    wait_until(lambda: gh.stderr().count('"CONNECT origin.test:%d HTTP/1.1" 200' % o.port) == 2,
               5, "two CONNECT lines with 200 in the access log")
    sizes = re.findall(r'"CONNECT origin.test:%d HTTP/1.1" 200 (\d+)' % o.port, gh.stderr())
    check(all(int(x) > 1000 for x in sizes),
          "the bytes the client got through the tunnel are logged (TLS handshake and answer): %r"
          % sizes)


@test("an IPv6 address first that refuses: the next address (IPv4) is tried")
def t():
    o = origin_tls()
    d = dns({"origin.test": ["::1", "127.0.0.1"]})
    gh = Gatehouse(fwd_conf(d, "connect_ports %d; allow_private_destinations on;" % o.port))
    r = curl(curl_via(gh, "https://origin.test:%d/echo" % o.port))
    eq(r.returncode, 0, "curl exit (%s)" % r.stderr)


class BlackHole:
    """A listener on [::1]:port whose accept queue is full: connects to it are never answered
    (the SYNs are dropped), as to an address whose route is black-holed."""

    def __init__(self, port):
        self.ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.ls.bind(("::1", port))
        self.ls.listen(0)
        self.fill = []
        for _ in range(2):  # the queue takes one (backlog 0 holds one); the next SYN is dropped
            c = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect(("::1", port))
            except BlockingIOError:
                pass
            self.fill.append(c)
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.settimeout(0.5)
        try:
            probe.connect(("::1", port))
            self.holds = False
        except OSError:
            self.holds = True
        probe.close()

    def diagnostics(self):
        return []

    def cleanup(self):
        for c in self.fill:
            c.close()
        self.ls.close()


def black_hole(port):
    b = BlackHole(port)
    from ghtest import _register
    _register(b)
    check(b.holds, "the black hole drops connects")
    return b


@test("happy eyeballs (RFC 8305): a name whose first address (IPv6) never answers is reached "
      "through its second (IPv4) at once, by CONNECT, by HTTP in absolute form and by SOCKS5, "
      "though connect_timeout is 60 s")
def t():
    o = origin_tls()
    plain = Origin(name="plain").start()
    from ghtest import _register
    _register(plain)
    black_hole(o.port)
    black_hole(plain.port)
    d = dns({"origin.test": ["::1", "127.0.0.1"]})
    gh = Gatehouse(lambda g: """threads 1;
error_log stderr info;
access_log stderr;
connect_timeout 60s;
forward_proxy {
    listen 127.0.0.1:%d;
    listen 127.0.0.1:%d socks5;
    resolver 127.0.0.1:%d;
    connect_ports %d %d;
    allow_private_destinations on;
}
""" % (g.ports[0], g.ports[1], d.port, o.port, plain.port), nports=2)
    r = curl(curl_via(gh, "https://origin.test:%d/echo" % o.port), timeout=10)
    eq(r.returncode, 0, "CONNECT (%s)" % r.stderr)
    r = curl(curl_via(gh, "http://origin.test:%d/echo?a=1" % plain.port), timeout=10)
    eq(r.returncode, 0, "HTTP (%s)" % r.stderr)
    eq(json.loads(r.stdout)["target"], "/echo?a=1", "the origin got it")
    r = curl(curl_via(gh, "http://origin.test:%d/echo?a=2" % plain.port), timeout=10)
    eq(r.returncode, 0, "HTTP again (%s)" % r.stderr)
    eq(len(plain.requests), 2, "two requests")
    eq(plain.requests[1].conn, plain.requests[0].conn,
       "the second went over the pooled connection the race won (no second race)")
    r = curl(["--socks5-hostname", "127.0.0.1:%d" % gh.ports[1],
              "http://origin.test:%d/echo?s=1" % plain.port], timeout=10)
    eq(r.returncode, 0, "SOCKS5 (%s)" % r.stderr)


@test("every address of a name refuses: 502 after trying them all (CONNECT and HTTP)")
def t():
    dead = free_port()
    d = dns({"dead.test": ["::1", "127.0.0.1", "127.0.0.2"]})
    gh = Gatehouse(fwd_conf(d, "connect_ports %d; allow_private_destinations on;" % dead))
    _, r, _ = raw_exchange(gh.port, b"CONNECT dead.test:%d HTTP/1.1\r\nHost: dead.test\r\n\r\n"
                           % dead)
    check(r.startswith(b"HTTP/1.1 502"), "CONNECT: 502: %r" % r[:200])
    r = curl(curl_via(gh, "http://dead.test:%d/" % dead, ["-w", "%{http_code}", "-o", "/dev/null"]))
    eq(r.stdout, b"502", "HTTP: 502")


@test("3 MB both ways through a CONNECT tunnel, intact")
def t():
    o = origin_tls()
    d = dns({"origin.test": ["127.0.0.1"]})
    gh = Gatehouse(fwd_conf(d, "connect_ports %d; allow_private_destinations on;" % o.port))
    data = det_bytes(3 * 1024 * 1024, seed=9)
    path = os.path.join(gh.dir, "up.bin")
    with open(path, "wb") as f:
        f.write(data)
    r = curl(curl_via(gh, "https://origin.test:%d/upload" % o.port, ["--data-binary", "@" + path]))
    eq(r.returncode, 0, "upload (%s)" % r.stderr)
    eq(json.loads(r.stdout)["sha256"], hashlib.sha256(data).hexdigest(), "upload sha256")
    r = curl(curl_via(gh, "https://origin.test:%d/bytes/%d" % (o.port, len(data)),
                      ["-o", os.path.join(gh.dir, "down.bin")]))
    eq(r.returncode, 0, "download (%s)" % r.stderr)
    eq(sha256_file(os.path.join(gh.dir, "down.bin")), sha256(det_bytes(len(data))),
       "download sha256")


@test("a destination that resolves to a private address is refused (403) unless "
      "allow_private_destinations is on; the check is on the address, not the name")
def t():
    o = origin_tls()
    d = dns({"origin.test": ["127.0.0.1"], "rebind.test": ["10.0.0.1", "127.0.0.1"]})
    gh = Gatehouse(fwd_conf(d, "connect_ports %d;" % o.port))
    for host in ("origin.test", "127.0.0.1", "rebind.test", "[::1]", "localhost"):
        r = curl(curl_via(gh, "https://%s:%d/echo" % (host, o.port), ["-w", "%{http_code}"]))
        check(r.returncode != 0 and "403" in str(r.stdout) + str(r.stderr),
              "%s: refused with 403: rc %d %r %r" % (host, r.returncode, r.stdout, r.stderr))
    eq(o.requests, [], "the origin got nothing")


@test("CONNECT to a port outside connect_ports: 403 (the default allows 443 only)")
def t():
    d = dns({"origin.test": ["127.0.0.1"]})
    gh = Gatehouse(fwd_conf(d, "allow_private_destinations on;"))
    _, r, _ = raw_exchange(gh.port, b"CONNECT origin.test:8443 HTTP/1.1\r\nHost: origin.test:8443\r\n"
                            b"Connection: close\r\n\r\n")
    check(r.startswith(b"HTTP/1.1 403"), "403: %r" % r[:200])
    eq(d.queries, {}, "nothing resolved for a refused port")


@test("a name that does not resolve: 502; a resolver that does not answer: 504")
def t():
    d = dns({})
    gh = Gatehouse(fwd_conf(d, "allow_private_destinations on;"))
    _, r, _ = raw_exchange(gh.port, b"CONNECT nowhere.test:443 HTTP/1.1\r\nHost: nowhere.test:443\r\n"
                            b"Connection: close\r\n\r\n")
    check(r.startswith(b"HTTP/1.1 502"), "502: %r" % r[:200])
    check("cannot resolve the destination: not found" in gh.stderr(), "logged")
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    gh2 = Gatehouse(lambda g: """threads 1;
forward_proxy { listen 127.0.0.1:%d; resolver 127.0.0.1:%d; resolver_timeout 400ms; }
""" % (g.port, silent.getsockname()[1]))
    _, r, _ = raw_exchange(gh2.port, b"CONNECT slow.test:443 HTTP/1.1\r\nHost: slow.test:443\r\n"
                            b"Connection: close\r\n\r\n")
    check(r.startswith(b"HTTP/1.1 504"), "504: %r" % r[:200])
    silent.close()


@test("a connection refused at the destination: 502; bytes the client sent with its CONNECT "
      "reach the destination")
def t():
    d = dns({"origin.test": ["127.0.0.1"]})
    port = free_port()
    gh = Gatehouse(fwd_conf(d, "connect_ports %d; allow_private_destinations on;" % port))
    _, r, _ = raw_exchange(gh.port, b"CONNECT origin.test:%d HTTP/1.1\r\nHost: x\r\n"
                            b"Connection: close\r\n\r\n" % port)
    check(r.startswith(b"HTTP/1.1 502"), "502: %r" % r[:200])
    # a plain origin behind the tunnel: the request rides in the same packet as the CONNECT
    o = Origin()
    gh2 = Gatehouse(fwd_conf(d, "connect_ports %d; allow_private_destinations on;" % o.port))
    _, r, _ = raw_exchange(gh2.port, b"CONNECT origin.test:%d HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /echo HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n" % o.port)
    check(r.startswith(b"HTTP/1.1 200 Connection established\r\n"), "200 first: %r" % r[:200])
    check(b"\r\n\r\nHTTP/1.1 200" in r and b'"target": "/echo"' in r.replace(b'":"', b'": "'),
          "then the origin's answer: %r" % r[-400:])


@test("HTTP in absolute form is relayed to the destination by name (curl -x): the origin gets the "
      "path as origin form and the Host of the URL; a second request reuses the connection")
def t():
    o = Origin(name="plain")
    d = dns({"site.test": ["127.0.0.1"]})
    gh = Gatehouse(fwd_conf(d, "allow_private_destinations on;"))
    url = "http://site.test:%d/echo?x=1" % o.port
    r = curl(["-x", "http://127.0.0.1:%d" % gh.port, "-H", "Proxy-Connection: keep-alive", url, url])
    eq(r.returncode, 0, "curl exit (%s)" % r.stderr)
    eq(len(o.requests), 2, "two requests at the origin")
    req = o.requests[0]
    eq(req.target, "/echo?x=1", "origin-form target")
    hs = {n.lower(): v for n, v in req.headers}
    eq(hs.get("host"), "site.test:%d" % o.port, "Host")
    check("proxy-connection" not in hs, "Proxy-Connection is not passed on: %r" % hs)
    eq(len(set(x.conn for x in o.requests)), 1, "one origin connection for both (the pool)")


@test("3 MB up and down through the HTTP forward proxy, intact")
def t():
    o = Origin(name="plain")
    d = dns({"site.test": ["127.0.0.1"]})
    gh = Gatehouse(fwd_conf(d, "allow_private_destinations on;"))
    data = det_bytes(3 * 1024 * 1024, seed=4)
    path = os.path.join(gh.dir, "up.bin")
    with open(path, "wb") as f:
        f.write(data)
    base = "http://site.test:%d" % o.port
    r = curl(["-x", "http://127.0.0.1:%d" % gh.port, "--data-binary", "@" + path, base + "/upload"])
    eq(r.returncode, 0, "upload (%s)" % r.stderr)
    eq(json.loads(r.stdout)["sha256"], hashlib.sha256(data).hexdigest(), "upload sha256")
    r = curl(["-x", "http://127.0.0.1:%d" % gh.port, base + "/bytes/%d" % len(data)])
    eq(r.returncode, 0, "download (%s)" % r.stderr)
    eq(sha256(r.stdout), sha256(det_bytes(len(data))), "download sha256")


@test("HTTP through the forward proxy: a private destination 403, a name that does not resolve "
      "502 (no upstream named in the log), https:// in absolute form 400, an origin-form request "
      "400")
def t():
    o = Origin(name="plain")
    d = dns({"site.test": ["127.0.0.1"]})
    gh = Gatehouse(fwd_conf(d))
    r = curl(["-x", "http://127.0.0.1:%d" % gh.port, "-o", "/dev/null", "-w", "%{http_code}",
              "http://site.test:%d/echo" % o.port])
    eq(r.stdout, b"403", "private destination")
    eq(o.requests, [], "the origin got nothing")
    _, r, _ = raw_exchange(gh.port, b"GET http://nowhere.test/ HTTP/1.1\r\nHost: nowhere.test\r\n"
                           b"Connection: close\r\n\r\n")
    check(r.startswith(b"HTTP/1.1 502"), "502: %r" % r[:200])
    check("192.0.2.1" not in gh.stderr(), "no placeholder address in the log")
    _, r, _ = raw_exchange(gh.port, b"GET https://site.test/ HTTP/1.1\r\nHost: site.test\r\n"
                           b"Connection: close\r\n\r\n")
    check(r.startswith(b"HTTP/1.1 400"), "https in absolute form: %r" % r[:200])
    _, r, _ = raw_exchange(gh.port, b"GET / HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n")
    check(r.startswith(b"HTTP/1.1 400"), "origin form: %r" % r[:200])


@test("block_domains (names and a file, hosts-file lines too) blocks a domain and every name "
      "under it, over HTTP and CONNECT, whatever the case or a trailing dot; allow_domains makes "
      "exceptions; the 403 page names the blocked domain")
def t():
    o = Origin(name="plain")
    tls = origin_tls()
    d = dns({n: ["127.0.0.1"] for n in ("site.test", "social.test", "www.social.test",
                                         "ok.social.test", "ads.test", "antisocial.test")})
    dirn = tmpdir()
    with open(os.path.join(dirn, "block.list"), "w") as f:
        f.write("# blocked\nsocial.test\n0.0.0.0 ads.test   # as in a hosts file\n\n")
    gh = Gatehouse(fwd_conf(d, "allow_private_destinations on; connect_ports %d;\n"
                               "block_domains %s/block.list video.test;\n"
                               "allow_domains ok.social.test;" % (tls.port, dirn)))

    def http(host):
        r = curl(["-x", "http://127.0.0.1:%d" % gh.port, "-w", "\n%{http_code}",
                  "http://%s:%d/echo" % (host, o.port)])
        body, _, code = r.stdout.rpartition(b"\n")
        return code.decode(), body

    for host in ("social.test", "www.social.test", "WWW.Social.Test", "www.social.test.",
                 "ads.test", "video.test"):
        code, body = http(host)
        eq(code, "403", "%s blocked" % host)
        check(b"blocked domain" in body, "the page says why: %r" % body)
    for host in ("site.test", "antisocial.test", "ok.social.test"):
        eq(http(host)[0], "200", "%s passes" % host)
    eq(len(o.requests), 3, "only the three allowed reached the origin")
    r = curl(curl_via(gh, "https://www.social.test:%d/echo" % tls.port))
    check(r.returncode != 0 and "403" in r.stderr, "CONNECT blocked too: %r" % r.stderr)
    check("blocked www.social.test: block_domains social.test" in gh.stderr(), "logged")


@test("anonymous on: the site sees none of Forwarded, X-Forwarded-*, X-Real-IP, Via, From, "
      "Client-IP, nor anything of ours; strip_headers removes what the admin names")
def t():
    o = Origin(name="plain")
    d = dns({"site.test": ["127.0.0.1"]})
    sent = [("X-Forwarded-For", "10.1.2.3"), ("Forwarded", "for=10.1.2.3"), ("X-Real-IP", "10.1.2.3"),
            ("Via", "1.1 lan"), ("From", "me@example.test"), ("Client-IP", "10.1.2.3"),
            ("Referer", "http://intranet.test/"), ("User-Agent", "curl-test"),
            ("Cookie", "a=1")]
    gh = Gatehouse(fwd_conf(d, "allow_private_destinations on; anonymous on; "
                               "strip_headers Referer User-Agent;"))
    r = http_request(gh.port, "GET", "http://site.test:%d/echo" % o.port, headers=sent,
                     host="site.test:%d" % o.port)
    eq(r.status, 200, "status")
    hs = {n.lower(): v for n, v in o.requests[0].headers}
    for name in ("x-forwarded-for", "forwarded", "x-real-ip", "via", "from", "client-ip",
                 "referer", "user-agent", "x-forwarded-proto", "x-forwarded-host"):
        check(name not in hs, "%s reached the site: %r" % (name, hs))
    eq(hs.get("cookie"), "a=1", "other fields pass")
    gh2 = Gatehouse(fwd_conf(d, "allow_private_destinations on;"))
    r = http_request(gh2.port, "GET", "http://site.test:%d/echo" % o.port,
                     host="site.test:%d" % o.port)
    hs = {n.lower(): v for n, v in o.requests[1].headers}
    eq(hs.get("x-forwarded-for"), "127.0.0.1", "without anonymous: X-Forwarded-For as Squid")


def users_file(d):
    """alice (bcrypt) and bob (sha-crypt) in an htpasswd file in d."""
    import crypt
    path = os.path.join(d, "users")
    bob = subprocess.run(["openssl", "passwd", "-6", "-salt", "s4ltsalt", "builder"],
                         capture_output=True, text=True).stdout.strip()
    with open(path, "w") as f:
        f.write("# logins\nalice:%s\nbob:%s\n"
                % (crypt.crypt("wonder", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5)), bob))
    return path


@test("auth basic: 407 with Proxy-Authenticate without a login or with a wrong one; bcrypt and "
      "sha-crypt logins pass, over HTTP and CONNECT; the site never sees Proxy-Authorization; the "
      "access log names the user")
def t():
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    o = Origin(name="plain")
    tls = origin_tls()
    d = dns({"site.test": ["127.0.0.1"], "origin.test": ["127.0.0.1"]})
    dirn = tmpdir()
    users = users_file(dirn)
    gh = Gatehouse(fwd_conf(d, "allow_private_destinations on; connect_ports %d; "
                               "auth basic %s realm=School;" % (tls.port, users)))
    url = "http://site.test:%d/echo" % o.port
    _, raw, _ = raw_exchange(gh.port, b"GET %s HTTP/1.1\r\nHost: site.test\r\n"
                             b"Connection: close\r\n\r\n" % url.encode())
    check(raw.startswith(b"HTTP/1.1 407"), "407: %r" % raw[:100])
    check(b'Proxy-Authenticate: Basic realm="School", charset="UTF-8"\r\n' in raw,
          "challenge: %r" % raw[:300])
    for who in ("alice:wonder", "bob:builder"):
        r = curl(["-x", "http://%s@127.0.0.1:%d" % (who, gh.port), url])
        eq(r.returncode, 0, "%s (%s)" % (who, r.stderr))
    r = curl(["-x", "http://alice:nope@127.0.0.1:%d" % gh.port, "-o", "/dev/null", "-w",
              "%{http_code}", url])
    eq(r.stdout, b"407", "a wrong password")
    r = curl(curl_via(gh, "https://origin.test:%d/echo" % tls.port, ["--proxy-user", "bob:builder"]))
    eq(r.returncode, 0, "CONNECT with a login (%s)" % r.stderr)
    r = curl(curl_via(gh, "https://origin.test:%d/echo" % tls.port))
    check(r.returncode != 0 and "407" in r.stderr, "CONNECT without: %r" % r.stderr)
    for req in o.requests:
        check(all(n.lower() != "proxy-authorization" for n, _ in req.headers), "no login at the site")
    wait_until(lambda: "127.0.0.1 - alice [" in gh.stderr() and "127.0.0.1 - bob [" in gh.stderr(),
               5, "users in the access log")


@test("auth basic: ten failed logins from an address get 429 with Retry-After, even with the right "
      "password then; a plaintext entry in the file is a -t error naming the line")
def t():
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    d = dns({"site.test": ["127.0.0.1"]})
    dirn = tmpdir()
    users = users_file(dirn)
    gh = Gatehouse(fwd_conf(d, "allow_private_destinations on; auth basic %s;" % users))
    o = Origin(name="plain")
    url = "http://site.test:%d/echo" % o.port
    codes = []
    for _ in range(12):
        r = curl(["-x", "http://alice:bad@127.0.0.1:%d" % gh.port, "-o", "/dev/null", "-w",
                  "%{http_code}", url])
        codes.append(r.stdout.decode())
    check(codes[:10] == ["407"] * 10 and codes[10:] == ["429", "429"], "codes %r" % codes)
    r = curl(["-x", "http://alice:wonder@127.0.0.1:%d" % gh.port, "-i", url])
    check(b"429" in r.stdout.split(b"\r\n")[0] and b"Retry-After: 60" in r.stdout,
          "locked out for a while: %r" % r.stdout[:200])
    with open(os.path.join(dirn, "plain"), "w") as f:
        f.write("carol:secret\n")
    path = os.path.join(dirn, "t.conf")
    with open(path, "w") as f:
        f.write("forward_proxy { listen 127.0.0.1:1; auth basic plain; }\n")
    r = run_gh(["-t", "-c", path])
    eq(r.returncode, 1, "-t exit")
    check("plain:1: user 'carol': a plaintext or weak password hash" in r.stderr, r.stderr)


@test("listen ... tls on a forward proxy: the client talks TLS to the proxy itself (curl "
      "--proxy https://), login and destination inside it; HTTP and CONNECT")
def t():
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    p = pki()
    o = Origin(name="plain")
    tls = origin_tls()
    d = dns({"site.test": ["127.0.0.1"], "origin.test": ["127.0.0.1"]})
    users = users_file(tmpdir())
    gh = Gatehouse(lambda g: """threads 1;
forward_proxy {
    listen 127.0.0.1:%d tls;
    tls_certificate %s;
    tls_key %s;
    resolver 127.0.0.1:%d;
    allow_private_destinations on;
    connect_ports %d;
    auth basic %s;
}
""" % (g.port, p.cert("a-ec"), p.key("a-ec"), d.port, tls.port, users))
    proxy = ["--proxy", "https://a.test:%d" % gh.port, "--proxy-cacert", p.cert("ca"),
             "--resolve", "a.test:%d:127.0.0.1" % gh.port, "--proxy-user", "bob:builder"]
    r = curl(proxy + ["http://site.test:%d/echo?over=tls" % o.port])
    eq(r.returncode, 0, "HTTP through an HTTPS proxy (%s)" % r.stderr)
    eq(json.loads(r.stdout)["target"], "/echo?over=tls", "target")
    r = curl(proxy + ["--cacert", p.cert("ca"), "https://origin.test:%d/echo" % tls.port])
    eq(r.returncode, 0, "TLS inside TLS through CONNECT (%s)" % r.stderr)


@test("groups: a client bound to 127.0.0.2 in group students gets 403 for social.test and its "
      "subdomains (HTTP and CONNECT) while 127.0.0.1 passes; a logged-in user of a group gets "
      "that group's rules; a group's allow_domains overrides the block's own block_domains")
def t():
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    o = Origin(name="plain")
    tls = origin_tls()
    names = ("social.test", "www.social.test", "video.test", "news.test", "origin.test")
    d = dns({n: ["127.0.0.1"] for n in names})
    users = users_file(tmpdir())
    gh = Gatehouse(fwd_conf(d, """allow_private_destinations on;
    connect_ports %d;
    auth basic %s;
    block_domains news.test;
    group students {
        clients 127.0.0.2 10.0.0.0/8;
        block_domains social.test;
    }
    group staff {
        users bob;
        block_domains video.test;
        allow_domains news.test;
    }""" % (tls.port, users)))

    def code(host, who, source="127.0.0.1"):
        r = curl(["--interface", source, "-x", "http://%s@127.0.0.1:%d" % (who, gh.port),
                  "-o", "/dev/null", "-w", "%{http_code}", "http://%s:%d/echo" % (host, o.port)])
        return r.stdout.decode()

    eq(code("social.test", "alice:wonder", "127.0.0.2"), "403", "students: social.test")
    eq(code("www.social.test", "alice:wonder", "127.0.0.2"), "403", "students: subdomain")
    eq(code("video.test", "alice:wonder", "127.0.0.2"), "200", "students: video.test")
    eq(code("social.test", "alice:wonder"), "200", "127.0.0.1 is not a student")
    eq(code("news.test", "alice:wonder"), "403", "everyone else: the block's own list")
    eq(code("video.test", "bob:builder"), "403", "staff (by login): video.test")
    eq(code("news.test", "bob:builder"), "200", "staff's allow_domains overrides the block's")
    r = curl(["--interface", "127.0.0.2"] +
             curl_via(gh, "https://www.social.test:%d/echo" % tls.port, ["--proxy-user", "alice:wonder"]))
    check(r.returncode != 0 and "403" in r.stderr, "CONNECT blocked for students: %r" % r.stderr)
    check("blocked www.social.test for user alice in group students: block_domains social.test"
          in gh.stderr(), "logged with user and group")


@test("access_log ... forward names for every request the user, the group, the destination, the "
      "verdict (allowed, blocked, auth-failed, denied) and the bytes both ways; SOCKS5 tunnels and "
      "refusals get lines too; the json format has the same keys")
def t():
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    o = Origin(name="plain")
    tls = origin_tls()
    d = dns({n: ["127.0.0.1"] for n in ("social.test", "site.test", "origin.test")})
    users = users_file(tmpdir())
    data = det_bytes(200000, seed=3)
    up = os.path.join(tmpdir(), "up.bin")
    with open(up, "wb") as f:
        f.write(data)
    for fmt in ("forward", "json"):
        gh = Gatehouse(lambda g: """threads 1;
error_log stderr info;
access_log stderr %s;
forward_proxy {
    listen 127.0.0.1:%d;
    listen 127.0.0.1:%d socks5;
    resolver 127.0.0.1:%d;
    allow_private_destinations on;
    connect_ports %d %d;
    auth basic %s;
    group students {
        clients 127.0.0.2;
        block_domains social.test;
    }
}
""" % (fmt, g.ports[0], g.ports[1], d.port, tls.port, o.port, users), nports=2)
        hp, sp = gh.ports
        via = ["-x", "http://alice:wonder@127.0.0.1:%d" % hp]
        r = curl(["--interface", "127.0.0.2"] + via + ["http://site.test:%d/echo" % o.port])
        eq(r.returncode, 0, "allowed (%s)" % r.stderr)
        curl(["--interface", "127.0.0.2"] + via + ["http://social.test:%d/" % o.port])
        curl(["-x", "http://alice:nope@127.0.0.1:%d" % hp, "http://site.test:%d/" % o.port])
        curl(via + ["http://site.test:1/"])
        r = curl(via + ["--cacert", pki().cert("ca"), "--data-binary", "@" + up,
                        "https://origin.test:%d/upload" % tls.port])
        eq(r.returncode, 0, "CONNECT upload (%s)" % r.stderr)
        r = curl(["--socks5-hostname", "alice:wonder@127.0.0.1:%d" % sp,
                  "http://site.test:%d/bytes/50000" % o.port])
        eq(r.returncode, 0, "SOCKS5 (%s)" % r.stderr)
        curl(["--socks5-hostname", "alice:bad@127.0.0.1:%d" % sp, "http://site.test:%d/" % o.port])
        curl(["--interface", "127.0.0.2", "--socks5-hostname", "alice:wonder@127.0.0.1:%d" % sp,
              "http://social.test:%d/" % o.port])
        wait_until(lambda: gh.stderr().count("SOCKS5") >= 3, 5, "the SOCKS5 lines")
        log = gh.stderr()
        if fmt == "forward":
            want = [
                r'127\.0\.0\.2 alice \[[^]]+\] "GET http://site\.test:%d/echo HTTP/1\.1" 200 allowed '
                r'students site\.test:%d \d+ 0 ' % (o.port, o.port),
                r'127\.0\.0\.2 alice \[[^]]+\] "GET http://social\.test:%d/ HTTP/1\.1" 403 blocked '
                r'students social\.test:%d ' % (o.port, o.port),
                r'127\.0\.0\.1 - \[[^]]+\] "GET http://site\.test:%d/ HTTP/1\.1" 407 auth-failed - '
                % o.port,
                r'"CONNECT origin\.test:%d HTTP/1\.1" 200 allowed - origin\.test:%d \d+ (\d+) '
                % (tls.port, tls.port),
                r'127\.0\.0\.1 alice \[[^]]+\] "CONNECT site\.test:%d SOCKS5" 200 allowed - '
                r'site\.test:%d (\d+) \d+ ' % (o.port, o.port),
                r'127\.0\.0\.1 - \[[^]]+\] "LOGIN SOCKS5" 407 auth-failed ',
                r'127\.0\.0\.2 alice \[[^]]+\] "CONNECT social\.test:%d SOCKS5" 403 blocked '
                r'students social\.test:%d ' % (o.port, o.port),
            ]
            for w in want:
                check(re.search(w, log), "a line like %s in:\n%s" % (w, log))
            check(re.search(r'"GET http://site\.test:1/ HTTP/1\.1" 502 allowed', log) or
                  re.search(r'"GET http://site\.test:1/ HTTP/1\.1" 502', log), "a failed connect: 502")
            up_bytes = int(re.search(want[3], log).group(1))
            check(up_bytes > len(data), "bytes up the CONNECT tunnel counted: %d" % up_bytes)
            down = int(re.search(want[4], log).group(1))
            check(down > 50000, "bytes down the SOCKS5 tunnel counted: %d" % down)
        else:
            lines = [json.loads(x) for x in log.splitlines() if x.startswith("{")]
            fwd = [x for x in lines if "proxy_verdict" in x]
            verdicts = sorted(set(x["proxy_verdict"] for x in fwd))
            eq(verdicts, ["allowed", "auth-failed", "blocked"], "verdicts in JSON")
            blocked = [x for x in fwd if x["proxy_verdict"] == "blocked"]
            check(all(x["proxy_group"] == "students" and x["remote_user"] == "alice"
                      for x in blocked), "group and user: %r" % blocked)
            check(any(x["tunnel_bytes_sent"] > len(data) for x in fwd), "tunnel bytes in JSON")


@test("block_urls: PCRE2 patterns, case-insensitive, on the URL of HTTP requests and host:port of "
      "CONNECT and SOCKS5, in the block and per group; a group's allow_domains lets a domain "
      "through before the block's patterns; a bad pattern is a -t error with its position")
def t():
    o = Origin(name="plain")
    from ghtest import _register
    _register(o.start())
    d = dns({n: ["127.0.0.1"] for n in ("site.test", "casino.test", "ok.test")})
    gh = Gatehouse(lambda g: """threads 1;
error_log stderr info;
forward_proxy {
    listen 127.0.0.1:%d;
    listen 127.0.0.1:%d socks5;
    resolver 127.0.0.1:%d;
    allow_private_destinations on;
    connect_ports %d;
    block_urls "^http://[^/]+/ads/" "(^|//)casino\\.";
    group kids {
        clients 127.0.0.2;
        block_urls "/games/";
        allow_domains ok.test;
    }
}
""" % (g.ports[0], g.ports[1], d.port, o.port), nports=2)
    hp, sp = gh.ports

    def code(url, source="127.0.0.1"):
        r = curl(["--interface", source, "-x", "http://127.0.0.1:%d" % hp, "-o", "/dev/null",
                  "-w", "%{http_code}", url])
        return r.stdout.decode()

    base = "http://site.test:%d" % o.port
    eq(code(base + "/ads/x.js"), "403", "the block's pattern")
    eq(code(base + "/ADS/x.js"), "403", "case-insensitive")
    eq(code(base + "/news/ads/x.js"), "200", "anchored at the host")
    eq(code(base + "/games/1"), "200", "not a kid")
    eq(code(base + "/games/1", "127.0.0.2"), "403", "the group's pattern")
    eq(code("http://ok.test:%d/ads/y" % o.port, "127.0.0.2"), "200",
       "the group's allow_domains comes first")
    eq(code("http://casino.test:%d/" % o.port), "403", "a name pattern over HTTP")
    _, r, _ = raw_exchange(hp, b"CONNECT casino.test:%d HTTP/1.1\r\nHost: x\r\n\r\n" % o.port)
    check(r.startswith(b"HTTP/1.1 403") and b"blocked URL pattern" in r, "CONNECT: %r" % r[:300])
    r = curl(["--socks5-hostname", "127.0.0.1:%d" % sp, "http://casino.test:%d/" % o.port])
    check(r.returncode != 0, "SOCKS5 refused")
    check("block_urls ^http://[^/]+/ads/ (at " in gh.stderr(), "logged with the pattern and place")
    paths = [q.target for q in o.requests]
    eq(paths, ["/news/ads/x.js", "/games/1", "/ads/y"], "only what passed reached the origin")
    cfg = os.path.join(tmpdir(), "bad.conf")
    with open(cfg, "w") as f:
        f.write("forward_proxy {\n    listen 127.0.0.1:1;\n    block_urls \"a(b\";\n}\n")
    r = subprocess.run([GH_BIN, "-t", "-c", cfg], capture_output=True, text=True)
    check(r.returncode != 0 and "bad.conf:3:16: invalid regex 'a(b' in 'block_urls'" in r.stderr,
          "-t: %r" % r.stderr)


@test("block_page FILE: the admin's HTML is the blocked answer (403, text/html)")
def t():
    o = Origin(name="plain")
    d = dns({"social.test": ["127.0.0.1"]})
    dirn = tmpdir()
    page = b"<html><body><h1>Not here</h1><p>Ask the school office.</p></body></html>\n"
    with open(os.path.join(dirn, "blocked.html"), "wb") as f:
        f.write(page)
    gh = Gatehouse(fwd_conf(d, "allow_private_destinations on; block_domains social.test; "
                               "block_page %s/blocked.html;" % dirn))
    r = http_request(gh.port, "GET", "http://social.test:%d/" % o.port, host="social.test")
    eq(r.status, 403, "status")
    eq(r.header("content-type"), "text/html", "content type")
    eq(r.body, page, "the page")


@test("SOCKS5 (listen ... socks5): curl --socks5-hostname reaches a site by name and a TLS site "
      "through it; with auth, RFC 1929 logins (a wrong one refused); the forward proxy's rules "
      "apply: connect_ports, block_domains, private destinations")
def t():
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    o = Origin(name="plain")
    tls = origin_tls()
    d = dns({"site.test": ["127.0.0.1"], "origin.test": ["127.0.0.1"], "blocked.test": ["127.0.0.1"]})
    users = users_file(tmpdir())
    gh = Gatehouse(lambda g: """threads 1;
error_log stderr info;
forward_proxy {
    listen 127.0.0.1:%d socks5;
    resolver 127.0.0.1:%d;
    allow_private_destinations on;
    connect_ports %d %d;
}
forward_proxy {
    listen 127.0.0.1:%d socks5;
    resolver 127.0.0.1:%d;
    allow_private_destinations on;
    connect_ports %d;
    auth basic %s;
    block_domains blocked.test;
}
forward_proxy {
    listen 127.0.0.1:%d socks5;
    resolver 127.0.0.1:%d;
    connect_ports %d;
}
""" % (g.ports[0], d.port, o.port, tls.port, g.ports[1], d.port, o.port, users, g.ports[2],
       d.port, o.port), nports=3)
    s1, s2, s3 = gh.ports
    r = curl(["--socks5-hostname", "127.0.0.1:%d" % s1, "http://site.test:%d/echo?s=1" % o.port])
    eq(r.returncode, 0, "by name (%s)" % r.stderr)
    eq(json.loads(r.stdout)["target"], "/echo?s=1", "target")
    r = curl(["--socks5", "127.0.0.1:%d" % s1, "http://127.0.0.1:%d/echo" % o.port])
    eq(r.returncode, 0, "by address (%s)" % r.stderr)
    r = curl(["--socks5-hostname", "127.0.0.1:%d" % s1, "--cacert", pki().cert("ca"),
              "https://origin.test:%d/echo" % tls.port])
    eq(r.returncode, 0, "TLS through SOCKS (%s)" % r.stderr)
    r = curl(["--socks5-hostname", "bob:builder@127.0.0.1:%d" % s2, "http://site.test:%d/echo" % o.port])
    eq(r.returncode, 0, "with a login (%s)" % r.stderr)
    r = curl(["--socks5-hostname", "bob:wrong@127.0.0.1:%d" % s2, "http://site.test:%d/echo" % o.port])
    check(r.returncode != 0, "a wrong login is refused")
    r = curl(["--socks5-hostname", "127.0.0.1:%d" % s2, "http://site.test:%d/echo" % o.port])
    check(r.returncode != 0, "no login offered: refused")
    r = curl(["--socks5-hostname", "bob:builder@127.0.0.1:%d" % s2, "http://blocked.test:%d/" % o.port])
    check(r.returncode != 0, "a blocked domain is refused")
    r = curl(["--socks5-hostname", "127.0.0.1:%d" % s1, "http://site.test:%d/" % free_port()])
    check(r.returncode != 0, "a port outside connect_ports is refused")
    n = len(o.requests)
    r = curl(["--socks5-hostname", "127.0.0.1:%d" % s3, "http://site.test:%d/echo" % o.port])
    check(r.returncode != 0, "a private destination is refused")
    eq(len(o.requests), n, "nothing reached the origin for the refusals")
    for why in ("login refused", "a blocked domain", "connect_ports does not allow",
                "a private destination"):
        check(why in gh.stderr(), "logged: %s" % why)


@test("SOCKS5 handshakes that are not right: a name with a control byte or a space gets a general "
      "failure, an unknown address type 'not supported', BIND 'command not supported', SOCKS4 "
      "is closed; nothing is resolved, and the log gets no raw control byte")
def t():
    d = dns({"site.test": ["127.0.0.1"]})
    gh = Gatehouse(lambda g: """threads 1;
error_log stderr info;
access_log stderr forward;
forward_proxy {
    listen 127.0.0.1:%d socks5;
    resolver 127.0.0.1:%d;
}
""" % (g.port, d.port))

    def socks(req, greet=b"\x05\x01\x00"):
        s = socket.create_connection(("127.0.0.1", gh.port), timeout=5)
        s.sendall(greet + req)
        got = b""
        try:
            while True:
                b = s.recv(100)
                if not b:
                    break
                got += b
        except socket.timeout:
            pass
        s.close()
        return got

    eq(socks(b"\x05\x01\x00\x03\x04a\nb.\x01\xbb"), b"\x05\x00" + b"\x05\x01\x00\x01" + bytes(6),
       "a control byte in the name: general failure")
    eq(socks(b"\x05\x01\x00\x03\x03a b\x01\xbb")[2:4], b"\x05\x01", "a space: general failure")
    eq(socks(b"\x05\x01\x00\x09abcd\x01\xbb")[2:4], b"\x05\x08", "address type not supported")
    eq(socks(b"\x05\x02\x00\x03\x09site.test\x01\xbb")[2:4], b"\x05\x07",
       "BIND: command not supported")
    eq(socks(b"", b"\x04\x01\x01\xbb\x7f\x00\x00\x01\x00"), b"", "SOCKS4: closed")
    eq(d.queries, {}, "nothing resolved")
    check("a\nb" not in gh.stderr(), "no raw line feed from a client in the logs")


class Echo:
    """A TCP echo server on 127.0.0.1 (a thread per connection)."""

    def __init__(self):
        import threading
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    def _echo(self, c):
        try:
            while True:
                b = c.recv(4096)
                if not b:
                    break
                c.sendall(b)
        except OSError:
            pass
        c.close()

    def diagnostics(self):
        return []

    def cleanup(self):
        self.ls.close()


@test("tunnel_timeout ends a CONNECT or SOCKS5 tunnel at its age even while bytes flow "
      "(tunnel_idle_timeout would not)")
def t():
    import time
    e = Echo()
    from ghtest import _register
    _register(e)
    gh = Gatehouse(lambda g: """threads 1;
error_log stderr info;
tunnel_timeout 1s;
tunnel_idle_timeout 60s;
forward_proxy {
    listen 127.0.0.1:%d;
    listen 127.0.0.1:%d socks5;
    allow_private_destinations on;
    connect_ports %d;
}
""" % (g.ports[0], g.ports[1], e.port), nports=2)

    def lasts(s):
        """Send a byte every 0.1 s and read it back until the tunnel closes (at most 10 s)."""
        s.settimeout(2)
        for _ in range(100):
            try:
                s.sendall(b"x")
                if s.recv(10) == b"":
                    return True
            except OSError:
                return True
            time.sleep(0.1)
        return False

    s = socket.create_connection(("127.0.0.1", gh.ports[0]))
    s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n" % e.port)
    head = s.recv(1000)
    check(head.startswith(b"HTTP/1.1 200"), "tunnel open: %r" % head)
    check(lasts(s), "the CONNECT tunnel was closed while bytes flowed")
    s.close()
    s = socket.create_connection(("127.0.0.1", gh.ports[1]))
    s.sendall(b"\x05\x01\x00" + b"\x05\x01\x00\x01\x7f\x00\x00\x01" + struct.pack(">H", e.port))
    got = b""
    while len(got) < 12:
        got += s.recv(100)
    eq(got[:4], b"\x05\x00\x05\x00", "SOCKS5 tunnel open")
    check(lasts(s), "the SOCKS5 tunnel was closed while bytes flowed")
    s.close()


@test("-t: forward proxy settings outside forward_proxy, reverse-proxy pieces inside it, a bad "
      "resolver address, a bad port")
def t():
    d = tmpdir()
    cases = [
        ("server { listen 127.0.0.1:1; resolver 127.0.0.1; }",
         "'resolver' belongs in a forward_proxy block"),
        ("forward_proxy { listen 127.0.0.1:1; route /x/ { } }",
         "a forward_proxy block has no routes"),
        ("upstream u { server 127.0.0.1:2; }\nforward_proxy { listen 127.0.0.1:1; proxy u; }",
         "'proxy' has no place in a forward_proxy block"),
        ("forward_proxy { listen 127.0.0.1:1; resolver dns.test; }",
         "invalid address 'dns.test' in 'resolver'"),
        ("forward_proxy { listen 127.0.0.1:1; connect_ports 0; }",
         "out of range for 'connect_ports'"),
        ("forward_proxy { resolver 127.0.0.1; }", "forward_proxy has no 'listen'"),
        ("forward_proxy { listen 127.0.0.1:1; block_domains bad..name; }",
         "invalid domain name 'bad..name' in 'block_domains'"),
        ("forward_proxy { listen 127.0.0.1:1; block_domains ./missing.list; }",
         "cannot read"),
        ("server { listen 127.0.0.1:1; anonymous on; }",
         "'anonymous' belongs in a forward_proxy block"),
        ("forward_proxy { listen 127.0.0.1:1; group g { clients 10.0.0.300; } }",
         "invalid address '10.0.0.300' in 'clients'"),
        ("forward_proxy { listen 127.0.0.1:1; group g { member x; } }",
         "unknown directive 'member' in a group"),
        ("forward_proxy { listen 127.0.0.1:1; block_page ./none.html; }", "cannot read"),
        ("server { listen 127.0.0.1:1 socks5; }", "'socks5' is for a forward_proxy's listen"),
        ("forward_proxy { listen 127.0.0.1:1 socks5; }\nforward_proxy { listen 127.0.0.1:1; }",
         "one address speaks SOCKS5 or HTTP, not both"),
    ]
    for text, want in cases:
        path = os.path.join(d, "t.conf")
        with open(path, "w") as f:
            f.write(text + "\n")
        r = run_gh(["-t", "-c", path])
        eq(r.returncode, 1, "-t exit for %r" % text)
        check(want in r.stderr, "%r: stderr %r" % (text, r.stderr))
    path = os.path.join(d, "ok.conf")
    with open(path, "w") as f:
        f.write("forward_proxy { listen 127.0.0.1:1; resolver 127.0.0.1 [::1]:5353; "
                "resolver_timeout 2s; connect_ports 443 8443; allow_private_destinations off; "
                "tunnel_idle_timeout 1h; }\n")
    r = run_gh(["-t", "-c", path])
    eq(r.returncode, 0, "a valid forward_proxy: %s" % r.stderr)


@test("gatehouse forward-proxy --listen ADDR in one line: CONNECT works (private destinations "
      "allowed with --allow-private)")
def t():
    o = origin_tls()
    d = dns({"origin.test": ["127.0.0.1"]})
    port = free_port()
    gh = Gatehouse(args=["forward-proxy", "--listen", "127.0.0.1:%d" % port,
                         "--resolver", "127.0.0.1:%d" % d.port, "--allow-private",
                         "--connect-port", str(o.port)], wait_ports=[port])
    gh.port = port
    r = curl(curl_via(gh, "https://origin.test:%d/echo" % o.port))
    eq(r.returncode, 0, "curl exit (%s)" % r.stderr)
    r = run_gh(["forward-proxy"])
    eq(r.returncode, 2, "without --listen")
    check("--listen" in r.stderr, "says what is missing: %r" % r.stderr)


if __name__ == "__main__":
    run()
