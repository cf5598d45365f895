#!/usr/bin/env python3
"""Header handling: hop-by-hop removal, Host, X-Forwarded-*, Forwarded, Via, header rules,
routes and server_name selection."""

import re

from ghtest import *


def proxy(server_extra="", top_extra=""):
    o = Origin(name="o")
    gh = Gatehouse(conf_proxy(o, server_extra=server_extra, top_extra=top_extra))
    return o, gh


def seen(o, n=1):
    reqs = o.wait_requests(n)
    return reqs[n - 1]


@test("hop-by-hop request headers are removed before the origin")
def t():
    o, gh = proxy()
    r = http_get(gh.port, "/echo", headers=[
        ("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"), ("Trailer", "X-T"), ("Upgrade", "h2c"),
        ("Proxy-Connection", "keep-alive"), ("Proxy-Authorization", "Basic YTpi"),
        ("X-Keep", "yes")])
    eq(r.status, 200, "status")
    q = seen(o)
    for h in ("X-Hop", "Keep-Alive", "TE", "Trailer", "Upgrade", "Proxy-Connection",
              "Proxy-Authorization"):
        check(not q.has(h), "origin saw %s: %r" % (h, q.header_all(h)))
    for v in q.header_all("connection"):
        check(v.lower() in ("keep-alive", "close"), "origin saw Connection: %r" % v)
    eq(q.header("x-keep"), "yes", "end-to-end header kept")


@test("hop-by-hop response headers are removed before the client")
def t():
    o, gh = proxy()
    r = http_get(gh.port, "/resp-headers?Connection=X-RHop&X-RHop=1&Keep-Alive=origin-ka"
                          "&Proxy-Connection=origin-pc&X-Stay=1")
    eq(r.status, 200, "status")
    check(not r.has("x-rhop"), "client saw X-RHop (named in origin's Connection)")
    check("origin-ka" not in r.header_all("keep-alive"), "client saw origin's Keep-Alive")
    check("origin-pc" not in r.header_all("proxy-connection"), "client saw Proxy-Connection")
    for v in r.header_all("connection"):
        check("x-rhop" not in v.lower(), "client saw origin's Connection: %r" % v)
    eq(r.header("x-stay"), "1", "end-to-end response header kept")


@test("Host is passed to the origin as received")
def t():
    o, gh = proxy()
    http_get(gh.port, "/echo", host="Example.TEST:8080")
    eq(seen(o).header_all("host"), ["Example.TEST:8080"], "Host at origin")


@test("X-Forwarded-For/-Proto/-Host are added")
def t():
    o, gh = proxy()
    http_get(gh.port, "/echo", host="xf.test")
    q = seen(o)
    eq(", ".join(q.header_all("x-forwarded-for")), "127.0.0.1", "X-Forwarded-For")
    eq(q.header("x-forwarded-proto"), "http", "X-Forwarded-Proto")
    eq(q.header("x-forwarded-host"), "xf.test", "X-Forwarded-Host")


@test("X-Forwarded-For is appended to an existing one")
def t():
    o, gh = proxy()
    http_get(gh.port, "/echo", headers=[("X-Forwarded-For", "10.0.0.1, 10.0.0.2")])
    q = seen(o)
    xff = ", ".join(q.header_all("x-forwarded-for"))
    eq(re.sub(r"\s*,\s*", ",", xff), "10.0.0.1,10.0.0.2,127.0.0.1", "X-Forwarded-For")


@test("forwarded rfc7239 gives a Forwarded header (and no X-Forwarded-For)")
def t():
    o, gh = proxy(server_extra="    forwarded rfc7239;")
    http_get(gh.port, "/echo", host="fw.test")
    q = seen(o)
    fwd = ", ".join(q.header_all("forwarded"))
    diag("Forwarded:", fwd)
    check(re.search(r'(?i)for="?127\.0\.0\.1"?', fwd), "for= in %r" % fwd)
    check(re.search(r"(?i)proto=http\b", fwd), "proto= in %r" % fwd)
    check(re.search(r'(?i)host="?fw\.test"?', fwd), "host= in %r" % fwd)
    check(not q.has("x-forwarded-for"), "no X-Forwarded-For in rfc7239 mode")


@test("forwarded off adds nothing")
def t():
    o, gh = proxy(server_extra="    forwarded off;")
    http_get(gh.port, "/echo")
    q = seen(o)
    for h in ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"):
        check(not q.has(h), "origin saw %s" % h)


@test("via on adds Via: 1.1 gatehouse to the request")
def t():
    o, gh = proxy(server_extra="    via on;")
    http_get(gh.port, "/echo", headers=[("Via", "1.0 earlier")])
    via = ", ".join(seen(o).header_all("via"))
    check(re.search(r"1\.0 earlier\s*,\s*1\.1 gatehouse", via), "Via at origin: %r" % via)


@test("via on adds Via to the response (RFC 9110 7.6.3)")
def t():
    o, gh = proxy(server_extra="    via on;")
    r = http_get(gh.port, "/echo")
    check("1.1 gatehouse" in ", ".join(r.header_all("via")), "Via in response: %r"
          % r.header_all("via"))


@test("via is off by default")
def t():
    o, gh = proxy()
    http_get(gh.port, "/echo")
    check(not seen(o).has("via"), "origin saw Via")


@test("request_header set/add/remove per route")
def t():
    o, gh = proxy(server_extra="""
    route /echo/rules {
        request_header set X-Set v1;
        request_header add X-Add a2;
        request_header remove X-Remove;
    }""")
    hs = [("X-Set", "old"), ("X-Add", "a1"), ("X-Remove", "gone")]
    http_get(gh.port, "/echo/rules", headers=hs)
    q = seen(o, 1)
    eq(q.header_all("x-set"), ["v1"], "X-Set")
    eq(q.header_all("x-add"), ["a1", "a2"], "X-Add")
    check(not q.has("x-remove"), "X-Remove should be removed")
    http_get(gh.port, "/echo/other", headers=hs)
    q = seen(o, 2)
    eq(q.header_all("x-set"), ["old"], "X-Set on a route without rules")
    eq(q.header("x-remove"), "gone", "X-Remove on a route without rules")


@test("response_header set/add/remove per route")
def t():
    o, gh = proxy(server_extra="""
    route /resp-headers {
        response_header set X-Resp-Set new;
        response_header add X-Resp-Add two;
        response_header remove X-Origin-Name;
    }""")
    r = http_get(gh.port, "/resp-headers?X-Resp-Set=old&X-Resp-Add=one")
    eq(r.header_all("x-resp-set"), ["new"], "X-Resp-Set")
    eq(r.header_all("x-resp-add"), ["one", "two"], "X-Resp-Add")
    check(not r.has("x-origin-name"), "X-Origin-Name should be removed")
    r = http_get(gh.port, "/echo")
    check(r.has("x-origin-name"), "other routes keep X-Origin-Name")


@test("routes: exact, regex and longest prefix choose different upstreams")
def t():
    os_ = {n: Origin(name=n) for n in "ABCDE"}
    p = {n: o.port for n, o in os_.items()}
    gh = Gatehouse(lambda g: BASE_TOP + """
server {
    listen 127.0.0.1:%d;
    proxy 127.0.0.1:%d;
    route /api/ { proxy 127.0.0.1:%d; }
    route /api/v2/ { proxy 127.0.0.1:%d; }
    route = /exact { proxy 127.0.0.1:%d; }
    route ~ ^/re/[0-9]+$ { proxy 127.0.0.1:%d; }
    route ~ ^/api/v2/special { proxy 127.0.0.1:%d; }
    route = /re/7 { proxy 127.0.0.1:%d; }
}
""" % (g.port, p["A"], p["B"], p["C"], p["D"], p["E"], p["E"], p["D"]))
    want = [("/other", "A"), ("/api/x", "B"), ("/api", "A"), ("/api/v2/x", "C"),
            ("/api/v2/special", "E"), ("/exact", "D"), ("/exact?q=1", "D"),
            ("/exact/more", "A"), ("/re/123", "E"), ("/re/7", "D"), ("/re/abc", "A")]
    got = []
    for path, name in want:
        r = http_get(gh.port, path)
        got.append((path, r.header("x-origin-name")))
    eq(got, want, "path -> origin")


@test("server_name chooses the server by Host: exact, wildcard, default")
def t():
    os_ = {n: Origin(name=n) for n in "ABCD"}
    p = {n: o.port for n, o in os_.items()}
    gh = Gatehouse(lambda g: BASE_TOP + """
server { listen 127.0.0.1:%d; server_name a.test; proxy 127.0.0.1:%d; }
server { listen 127.0.0.1:%d; server_name *.wild.test; proxy 127.0.0.1:%d; }
server { listen 127.0.0.1:%d; server_name *.deep.wild.test; proxy 127.0.0.1:%d; }
server { listen 127.0.0.1:%d default; server_name default.test; proxy 127.0.0.1:%d; }
""" % (g.port, p["A"], g.port, p["B"], g.port, p["C"], g.port, p["D"]))
    want = [("a.test", "A"), ("A.TEST:8080", "A"), ("x.wild.test", "B"),
            ("x.deep.wild.test", "C"), ("y.x.deep.wild.test", "C"), ("wild.test", "D"),
            ("nomatch.test", "D"), ("default.test", "D")]
    got = []
    for host, name in want:
        r = http_get(gh.port, "/echo", host=host)
        got.append((host, r.header("x-origin-name")))
    eq(got, want, "Host -> origin")


@test("server_name: without a 'default' the first server on the address is the default")
def t():
    a, b = Origin(name="A"), Origin(name="B")
    gh = Gatehouse(lambda g: BASE_TOP + """
server { listen 127.0.0.1:%d; server_name a.test; proxy 127.0.0.1:%d; }
server { listen 127.0.0.1:%d; server_name b.test; proxy 127.0.0.1:%d; }
""" % (g.port, a.port, g.port, b.port))
    eq(http_get(gh.port, "/", host="b.test").header("x-origin-name"), "B", "b.test")
    eq(http_get(gh.port, "/", host="zzz.test").header("x-origin-name"), "A", "unknown host")


@test("upstream_host overrides the Host sent upstream")
def t():
    o, gh = proxy(server_extra="    upstream_host backend.internal;")
    http_get(gh.port, "/echo", host="front.test")
    eq(seen(o).header_all("host"), ["backend.internal"], "Host at origin")


run()
