#!/usr/bin/env python3
"""Protection end to end: `rate_limit` (the burst passes, the next request gets 429 with
Retry-After and the RateLimit-Policy / RateLimit fields, other keys are not touched, zones
shared between routes, keys from request headers, the fields on passing answers with
`rate_limit_headers on`); and what `gatehouse -t` says about bad rate limits.

No timing assertions: rates are per minute, so no token comes back during a test."""

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


run()
