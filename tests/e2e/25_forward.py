#!/usr/bin/env python3
"""The forward proxy (issue 9, first part): `forward_proxy { }` blocks and CONNECT tunnels, with
curl as the client, names resolved by a DNS responder of the test's own (dnsd.py) through
`resolver`, and a TLS origin (origin.py) at the end of the tunnel."""

import hashlib
import json
import os
import re
import socket
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
