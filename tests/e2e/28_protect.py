#!/usr/bin/env python3
"""Protection end to end: `rate_limit` (the burst passes, the next request gets 429 with
Retry-After and the RateLimit-Policy / RateLimit fields, other keys are not touched, zones
shared between routes, keys from request headers, the fields on passing answers with
`rate_limit_headers on`); origin hiding (an origin that sends Server, X-Powered-By, Via and a
Location with its own address: none of it reaches the client; hide_header, pass_header,
server_tokens, proxy_redirect off and FROM TO), error_page and intercept_errors; and what
`gatehouse -t` says about them.

No timing assertions: rates are per minute, so no token comes back during a test."""

import urllib.parse

from ghtest import *


def conf(o, server_body, top="", threads=2):
    def build(g):
        return "threads %d;\n%s%s\nserver {\n    listen 127.0.0.1:%d;\n    proxy 127.0.0.1:%d;\n%s\n}\n" % (
            threads, BASE_TOP, top, g.port, o.port, server_body)

    return build


def get(gh, path, src="127.0.0.1", headers=None):
    return http_get(gh.port, path, headers=headers, source=src)


def check_conf(text):
    p = os.path.join(tmpdir(), "g.conf")
    with open(p, "w") as f:
        f.write(text)
    return run_gh(["-t", "-c", p]), p


# ---------------------------------------------------------------------------------------------
# rate_limit


@test("rate_limit: burst=2 lets three through, the fourth gets 429 with Retry-After and "
      "RateLimit fields; another address is not limited")
def t():
    with Origin() as o, Gatehouse(conf(o, "rate_limit $remote_addr 1r/m burst=2;")) as gh:
        for i in range(3):
            r = get(gh, "/p%d" % i)
            eq(r.status, 200, "request %d" % i)
            eq(r.header("ratelimit"), None, "no RateLimit field on passing answers by default")
        r = get(gh, "/p3")
        eq(r.status, 429)
        ra = int(r.header("retry-after"))
        check(1 <= ra <= 60, "Retry-After %d within one interval of 60 s" % ra)
        eq(r.header("ratelimit-policy"), '"default";q=1;w=60')
        m = re.match(r'^"default";r=0;t=(\d+)$', r.header("ratelimit") or "")
        check(m is not None, "RateLimit field: %r" % r.header("ratelimit"))
        check(120 < int(m.group(1)) <= 180, "t= is when the burst is whole again: %s" % m.group(1))
        check(b"429" in r.body, "Gatehouse's own page: %r" % r.body[:200])
        eq([q.target for q in o.requests], ["/p0", "/p1", "/p2"], "what the origin saw")
        eq(get(gh, "/other", "127.0.0.2").status, 200)


@test("rate_limit: the connection stays open after a 429 (keep-alive)")
def t():
    with Origin() as o, Gatehouse(conf(o, "rate_limit $remote_addr 1r/m;")) as gh:
        with Conn(gh.port) as c:
            c.send(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
            eq(c.read_response().status, 200)
            c.send(b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n")
            eq(c.read_response().status, 429)
            c.send(b"GET /c HTTP/1.1\r\nHost: a\r\n\r\n")
            eq(c.read_response().status, 429)
        eq(len(o.requests), 1)


@test("rate_limit: a named zone is shared by the routes that name it; status= and a header key")
def t():
    body = """route /a/ { rate_limit $remote_addr 1r/m zone=api; }
    route /b/ { rate_limit $remote_addr 1r/m zone=api; }
    route /k/ { rate_limit $http_x_api_key 1r/m burst=1 status=503; }"""
    with Origin() as o, Gatehouse(conf(o, body, "rate_limit_zone api keys=1000;\n")) as gh:
        eq(get(gh, "/a/1").status, 200)
        r = get(gh, "/b/1")
        eq(r.status, 429, "the same key in the same zone")
        eq(r.header("ratelimit-policy"), '"api";q=1;w=60')
        for i in range(2):
            eq(get(gh, "/k/%d" % i, headers=[("X-Api-Key", "one")]).status, 200)
        r = get(gh, "/k/2", headers=[("X-Api-Key", "one")])
        eq(r.status, 503)
        check(r.has("retry-after"), "Retry-After with status=503")
        eq(get(gh, "/k/3", headers=[("X-Api-Key", "two")]).status, 200, "another key")
        for i in range(4):  # an empty key is not limited
            eq(get(gh, "/k/n%d" % i).status, 200)


@test("rate_limit_headers on: passing answers say what is left; a route's own limits replace "
      "the server's")
def t():
    body = """rate_limit $remote_addr 10r/m burst=2;
    rate_limit_headers on;
    route /free/ { rate_limit_headers off; }
    route /own/ { rate_limit $remote_addr 1r/m; }"""
    # one thread: the figures come from one clock (threads' clocks may differ by a few ms)
    with Origin() as o, Gatehouse(conf(o, body, threads=1)) as gh:
        r = get(gh, "/x")
        eq(r.status, 200)
        eq(r.header("ratelimit-policy"), '"default";q=10;w=60')
        eq(r.header("ratelimit"), '"default";r=2;t=6')
        eq(get(gh, "/x").header("ratelimit"), '"default";r=1;t=12')
        eq(get(gh, "/own/1").header("ratelimit"), '"default";r=0;t=60', "the route's own limit")
        eq(get(gh, "/own/2").status, 429)
        r = get(gh, "/free/1")  # the server's limit still counts here, without the fields
        eq(r.status, 200)
        eq(r.header("ratelimit"), None)
        eq(get(gh, "/x").status, 429)



# ---------------------------------------------------------------------------------------------
# origin hiding


def hdr_query(pairs):
    return "/resp-headers?" + urllib.parse.urlencode(pairs)


@test("origin hiding: Server, X-Powered-By, X-AspNet-Version, Via and the origin's address in "
      "Location, Content-Location and Refresh never reach the client")
def t():
    with Origin() as o, Gatehouse(conf(o, "")) as gh:
        own = "127.0.0.1:%d" % o.port
        q = hdr_query([("Server", "Apache/2.4.1 (Unix)"), ("X-Powered-By", "PHP/8.1"),
                       ("X-AspNet-Version", "4.0.30319"), ("Via", "1.1 backend-7"),
                       ("Location", "http://%s/next?a=1" % own),
                       ("Content-Location", "http://%s" % own),
                       ("Refresh", "5; url=http://%s/later" % own), ("X-Kept", "yes"),
                       ("_status", "302")])
        r = get(gh, q)
        eq(r.status, 302)
        eq(r.header("server"), "gatehouse", "Gatehouse's own Server in place of the origin's")
        for n in ["x-powered-by", "x-aspnet-version", "via"]:
            eq(r.header(n), None, n)
        eq(r.header("location"), "http://test.local/next?a=1")
        eq(r.header("content-location"), "http://test.local")
        eq(r.header("refresh"), "5; url=http://test.local/later")
        eq(r.header("x-kept"), "yes")
        check(str(o.port).encode() not in r.raw_head, "the origin's port in %r" % r.raw_head)
        # a Location elsewhere is left alone; so is a relative one
        r = get(gh, hdr_query([("Location", "http://example.com:%d/x" % o.port)]))
        eq(r.header("location"), "http://example.com:%d/x" % o.port)
        r = get(gh, hdr_query([("Location", "/rel")]))
        eq(r.header("location"), "/rel")


@test("hide_header adds fields, pass_header keeps one, server_tokens off sends no Server")
def t():
    body = """hide_header X-Debug X-Backend;
    pass_header X-Powered-By;
    server_tokens off;
    route /gone { return 404; }"""
    with Origin() as o, Gatehouse(conf(o, body)) as gh:
        r = get(gh, hdr_query([("Server", "nginx/1.2"), ("X-Powered-By", "Express"),
                               ("X-Debug", "1"), ("x-backend", "b7")]))
        eq(r.status, 200)
        eq(r.header("server"), None)
        eq(r.header("x-powered-by"), "Express")
        eq(r.header("x-debug"), None)
        eq(r.header("x-backend"), None)
        r = get(gh, "/gone")
        eq(r.status, 404)
        eq(r.header("server"), None)
        check(b"gatehouse" not in r.body, "no name on the page: %r" % r.body)


@test("proxy_redirect off keeps the origin's Location; proxy_redirect FROM TO replaces a prefix")
def t():
    body = """route /off/ { proxy_redirect off; proxy 127.0.0.1:%d /; }
    route /map/ { proxy_redirect http://internal.example/app/ https://www.example.com/;
                  proxy_redirect http://other/ /; proxy 127.0.0.1:%d /; }"""
    with Origin() as o, Gatehouse(conf(o, body % (o.port, o.port))) as gh:
        loc = "http://127.0.0.1:%d/x" % o.port
        r = get(gh, "/off/resp-headers?" + urllib.parse.urlencode([("Location", loc)]))
        eq(r.header("location"), loc)
        r = get(gh, "/map/resp-headers?" + urllib.parse.urlencode(
            [("Location", "http://internal.example/app/p?q=1")]))
        eq(r.header("location"), "https://www.example.com/p?q=1")
        r = get(gh, "/map/resp-headers?" + urllib.parse.urlencode(
            [("Location", "http://other/z")]))
        eq(r.header("location"), "/z")
        r = get(gh, "/map/resp-headers?" + urllib.parse.urlencode([("Location", loc)]))
        eq(r.header("location"), loc, "the map replaces the default")


@test("error_page for Gatehouse's own answers; intercept_errors replaces the origin's error "
      "bodies (with the page, or Gatehouse's own) and the next request is served")
def t():
    def build(g):
        page = os.path.join(g.dir, "404.html")
        with open(page, "w") as f:
            f.write("<h1>not here</h1>\n")
        with open(os.path.join(g.dir, "5xx.html"), "w") as f:
            f.write("<h1>sorry</h1>\n")
        return conf(o, """error_page 404 404.html;
    route /gone { return 404; }
    route /i/ { intercept_errors on; error_page 500 502 5xx.html; proxy 127.0.0.1:%d /; }"""
                    % o.port)(g)

    with Origin() as o, Gatehouse(build) as gh:
        r = get(gh, "/gone")
        eq((r.status, r.body), (404, b"<h1>not here</h1>\n"))
        eq(r.header("content-type"), "text/html")
        r = get(gh, "/status/500")  # not intercepted here: the origin's body
        eq((r.status, r.body), (500, b"status 500\n"))
        with Conn(gh.port) as c:
            c.send(b"GET /i/status/500 HTTP/1.1\r\nHost: a\r\n\r\n")
            r = c.read_response()
            eq((r.status, r.body), (500, b"<h1>sorry</h1>\n"))
            c.send(b"GET /i/status/404 HTTP/1.1\r\nHost: a\r\n\r\n")
            r = c.read_response()
            # the route's own error_page list replaces the server's (nginx): Gatehouse's page
            eq(r.status, 404)
            check(b"<title>404 Not Found</title>" in r.body, "Gatehouse's page: %r" % r.body)
            check(b"status 404" not in r.body, "not the origin's body")
            c.send(b"GET /i/echo HTTP/1.1\r\nHost: a\r\n\r\n")
            eq(c.read_response().status, 200)


# ---------------------------------------------------------------------------------------------
# access rules with conditions


@test("rules: deny by path regex unless from a trusted network, by header, method, cookie and "
      "argument; first match wins; the origin sees only what passes")
def t():
    body = r"""allow if path = /admin/health;
    deny 403 if path ~ ^/admin and not client 127.0.0.2,10.0.0.0/8;
    deny 405 if method DELETE,PUT;
    deny 451 if header User-Agent ~* "sqlmap|nikto";
    deny if cookie session = stolen;
    deny 400 if arg debug and path ^ /api/;
    deny if header X-Block;"""
    with Origin() as o, Gatehouse(conf(o, body)) as gh:
        eq(get(gh, "/admin/x").status, 403)
        eq(get(gh, "/%61dmin/x").status, 403, "the normalised path")
        eq(get(gh, "/admin/health").status, 200, "the allow before it")
        eq(get(gh, "/admin/x", "127.0.0.2").status, 200, "a trusted address")
        eq(http_request(gh.port, "DELETE", "/x").status, 405)
        eq(http_request(gh.port, "POST", "/x", body=b"").status, 200)
        eq(get(gh, "/x", headers=[("User-Agent", "Mozilla/5.0 SQLMap/1.0")]).status, 451)
        eq(get(gh, "/x", headers=[("User-Agent", "curl/8")]).status, 200)
        eq(get(gh, "/x", headers=[("Cookie", "a=1; session=stolen")]).status, 403)
        eq(get(gh, "/x", headers=[("Cookie", "a=1; session=ok")]).status, 200)
        eq(get(gh, "/api/v1?x=1&debug").status, 400)
        eq(get(gh, "/api/v1?debugx=1").status, 200)
        eq(get(gh, "/web?debug=1").status, 200)
        eq(get(gh, "/x", headers=[("X-Block", "")]).status, 403, "present, even empty")
        eq(sorted(q.target for q in o.requests),
           sorted(["/admin/health", "/admin/x", "/x", "/x", "/x", "/api/v1?debugx=1",
                   "/web?debug=1"]))


@test("rules: redirect and return with conditions, variables, and per route; plain allow/deny "
      "mixed in keep file order")
def t():
    body = r"""redirect 301 https://new.example$request_uri if host = old.example;
    return 503 "down for maintenance\n" if path /shop/;
    deny 127.0.0.3;
    allow 127.0.0.0/8;
    deny 403 if path ^ /;
    route /r/ { return 200 "route rule\n" if method GET; }"""
    with Origin() as o, Gatehouse(conf(o, body)) as gh:
        r = http_get(gh.port, "/a?b=1", host="OLD.example:8080")
        eq(r.status, 301)
        eq(r.header("location"), "https://new.example/a?b=1")
        r = get(gh, "/shop/cart")
        eq((r.status, r.body), (503, b"down for maintenance\n"))
        eq(get(gh, "/x", "127.0.0.3").status, 403, "the plain deny before the allow")
        eq(get(gh, "/x").status, 200, "allowed before the catch-all deny")
        r = get(gh, "/r/1", "127.0.0.3")
        eq((r.status, r.body), (200, b"route rule\n"), "the route's own rules replace the server's")
        eq(len(o.requests), 1)


@test("rules: client in FILE (addresses and prefixes, comments)")
def t():
    def build(g):
        with open(os.path.join(g.dir, "bad.txt"), "w") as f:
            f.write("# bad actors\n127.0.0.2\n\n  10.0.0.0/8   # a whole network\n::1\n")
        return conf(o, "deny 403 if client in bad.txt;")(g)

    with Origin() as o, Gatehouse(build) as gh:
        eq(get(gh, "/", "127.0.0.2").status, 403)
        eq(get(gh, "/", "127.0.0.1").status, 200)

@test("rules: geo $NAME conditions (a geo map's value for the client's address, = ^ ~); an "
      "unknown map is a -t error")
def t():
    top = "geo $region {\n    127.0.0.2/32 blocked;\n    127.0.0.3/32 eu-west;\n    default us;\n}\n"
    body = ("deny 451 if geo $region = blocked;\n"
            "return 200 \"hello europe\" if geo $region ^ eu- and path ^ /hello;\n")
    with Origin() as o, Gatehouse(conf(o, body, top)) as gh:
        eq(get(gh, "/", "127.0.0.2").status, 451, "the blocked region")
        eq(get(gh, "/", "127.0.0.1").status, 200, "the default region passes")
        r = get(gh, "/hello", "127.0.0.3")
        eq((r.status, r.body), (200, b"hello europe"), "a prefix of the region")
        eq(len(o.requests), 1, "only the default region's request reached the origin")
    r, p = check_conf("server {\n    listen 127.0.0.1:1;\n    deny if geo $nowhere = x;\n}\n")
    check(r.returncode != 0 and "g.conf:3:17: '$nowhere' in the conditions of 'deny' is not a geo map"
          in r.stderr, "-t: %r" % r.stderr)


@test("-t: bad rates, parameters and zones are errors at FILE:LINE:COL")
def t():
    r, p = check_conf("""rate_limit_zone api keys=100;
rate_limit_zone api keys=1000;
rate_limit_zone b keys=10;
server {
    listen 127.0.0.1:1;
    rate_limit $remote_addr 10r/d;
    rate_limit $remote_addr 0r/s;
    rate_limit $remote_addr 5r/s burst=x;
    rate_limit $remote_addr 5r/s zone=nope;
    rate_limit $remote_addr 5r/s nodelay;
    rate_limit $status 5r/s;
    limit_req zone=one;
}
""")
    eq(r.returncode, 1, "exit status\n" + r.stderr)
    for want in ["g.conf:2:17: rate_limit_zone 'api' is already defined at 1:17",
                 "g.conf:3:24: number '10' out of range for 'rate_limit_zone keys' (16..16777216)",
                 "g.conf:6:29: invalid rate '10r/d' in 'rate_limit'",
                 "g.conf:7:29: number '0' out of range for 'rate_limit rate' (1..1000000)",
                 "g.conf:8:40: invalid number 'x' for 'rate_limit burst'",
                 "g.conf:9:39: unknown zone 'nope' in 'rate_limit'",
                 "g.conf:10:34: 'nodelay' is how rate_limit always works",
                 "g.conf:11:16: ",
                 "g.conf:12:5: unknown directive 'limit_req' (in Gatehouse: rate_limit"]:
        check(want in r.stderr, "want %r in:\n%s" % (want, r.stderr))


@test("-t: bad conditions are errors at FILE:LINE:COL")
def t():
    r, p = check_conf("""server {
    listen 127.0.0.1:1;
    deny 403 if path ~ "(";
    deny if;
    allow if color red;
    deny if path ^ /a or path ^ /b;
    deny if client 10.0.0.0/33;
    deny if header;
    deny if method get;
    redirect 304 /x if path /a;
    allow 403 if path /a;
    deny 1.2.3.4 403 extra;
    deny;
    return 200 "a" "b";
    deny if client in /nonexistent/file.txt;
    deny if path ^/api/;
    deny 1.2.3.5
    allow all;
    deny if path /a
    return 200 "x";
}
""")
    eq(r.returncode, 1, "exit status\n" + r.stderr)
    for want in ["g.conf:3:24: invalid regex '(' in 'deny': missing closing parenthesis",
                 "g.conf:4:12: expected conditions after 'if' in 'deny'",
                 "g.conf:5:14: unknown condition 'color' in 'allow'",
                 "g.conf:6:23: expected 'and' or ';' after a condition, got 'or'",
                 "g.conf:7:20: invalid address '10.0.0.0/33' in 'client'",
                 "g.conf:8:19: expected a name after 'header'",
                 "g.conf:9:20: invalid method list 'get'",
                 "g.conf:10:14: invalid redirect code '304'",
                 "g.conf:11:11: invalid address '403' in 'allow'",
                 "g.conf:12:22: unexpected 'extra' in 'deny'",
                 "g.conf:13:5: 'deny' expects at least 1 argument",
                 "g.conf:16:18: a path to compare must start with '/', got '^/api/'",
                 "g.conf:17:17: missing ';' after 'deny'",
                 "g.conf:19:20: missing ';' after 'deny'",
                 "g.conf:14:20: 'return' takes a code and a text",
                 "g.conf:15:23: cannot read '/nonexistent/file.txt'"]:
        check(want in r.stderr, "want %r in:\n%s" % (want, r.stderr))


run()
