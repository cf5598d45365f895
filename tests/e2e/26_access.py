#!/usr/bin/env python3
"""Access rules end to end: `allow` / `deny` by address and CIDR (clients bound to 127.0.0.2
and 127.0.0.3 on loopback beside 127.0.0.1, and ::1), inheritance and route-level override,
deny with a status of its own; the client's real address from trusted proxies
(`real_ip_from` with X-Forwarded-For chains and X-Real-IP) in $remote_addr, the rules, the
access log and what goes to the origin; `limit_conn` (requests in progress per client address)
and `max_connections` (connections open at once) refusing the extra one while the others are
served; 413 before reading a declared over-limit body; and what `gatehouse -t` says.

No timing assertions: every wait is a bounded loop on an observable event."""

import socket

from ghtest import *

PAGE_403 = b"<title>403 Forbidden</title>"


def conf(o, server_body, top="", log=False, listen=None):
    oport = o if isinstance(o, int) else o.port

    def build(g):
        al = "access_log %s/access.log;\n" % g.dir if log else ""
        return "threads 2;\n%s%s%s\nserver {\n    listen %s;\n    proxy 127.0.0.1:%d;\n%s\n}\n" % (
            BASE_TOP, al, top, listen(g) if listen else "127.0.0.1:%d" % g.port, oport,
            server_body)

    return build


def origin_headers(r):
    eq(r.status, 200, "status (body %r)" % r.body[:200])
    out = {}
    for n, v in r.json()["headers"]:
        out.setdefault(n.lower(), []).append(v)
    return out


def get(gh, path, src="127.0.0.1", headers=None):
    return http_get(gh.port, path, headers=headers, source=src)


def log_lines(gh, n):
    path = os.path.join(gh.dir, "access.log")

    def read():
        try:
            with open(path) as f:
                ls = f.read().splitlines()
        except OSError:
            return None
        return ls if len(ls) >= n else None

    return wait_until(read, 5, "%d access-log lines" % n)


# ---------------------------------------------------------------------------------------------
# allow / deny


@test("deny by CIDR: 127.0.0.2 gets 403 and the origin sees nothing; 127.0.0.1 is served")
def t():
    with Origin() as o, Gatehouse(conf(o, "allow 127.0.0.1;\ndeny 127.0.0.0/8;")) as gh:
        eq(get(gh, "/a").status, 200)
        r = get(gh, "/b", "127.0.0.2")
        eq(r.status, 403)
        check(PAGE_403 in r.body, "Gatehouse's own 403 page: %r" % r.body[:200])
        eq(r.header("x-origin-name"), None, "no origin header")
        eq([q.target for q in o.requests], ["/a"], "what the origin saw")
        gh.wait_stderr(r"client 127\.0\.0\.2: 403: access denied by the rule at .*gatehouse"
                       r"\.conf:\d+")


@test("first match wins in file order; no match allows")
def t():
    body = "deny 127.0.0.3;\nallow 127.0.0.0/30;\ndeny 127.0.0.0/8;"
    with Origin() as o, Gatehouse(conf(o, body)) as gh:
        eq(get(gh, "/", "127.0.0.1").status, 200)
        eq(get(gh, "/", "127.0.0.2").status, 200)
        eq(get(gh, "/", "127.0.0.3").status, 403)  # denied before the /30 allows it
        eq(get(gh, "/", "127.0.0.4").status, 403)
    with Origin() as o, Gatehouse(conf(o, "deny 127.0.0.2;")) as gh:
        eq(get(gh, "/", "127.0.0.5").status, 200)  # no rule matched: allowed


@test("deny with a status of its own, and deny all")
def t():
    body = "deny 127.0.0.2 451;\nallow 127.0.0.1;\ndeny all 404;"
    with Origin() as o, Gatehouse(conf(o, body)) as gh:
        r = get(gh, "/", "127.0.0.2")
        eq(r.status, 451)
        check(b"451 Unavailable For Legal Reasons" in r.body, "page %r" % r.body[:200])
        eq(get(gh, "/", "127.0.0.3").status, 404)
        eq(get(gh, "/").status, 200)
        eq(len(o.requests), 1)


@test("rules inherit top level -> server -> route; a block with its own rules replaces them")
def t():
    body = """deny 127.0.0.2;
    route /open/ { allow all; }
    route /closed/ { deny all; }
    route /inherit/ { request_header set X-R inherit; }"""
    with Origin() as o, Gatehouse(conf(o, body, top="deny 127.0.0.3;")) as gh:
        # the server's own list replaced the top level's: 127.0.0.3 passes
        eq(get(gh, "/inherit/x", "127.0.0.3").status, 200)
        eq(get(gh, "/inherit/x", "127.0.0.2").status, 403)
        eq(get(gh, "/open/x", "127.0.0.2").status, 200)
        eq(get(gh, "/closed/x", "127.0.0.1").status, 403)
        eq(get(gh, "/other", "127.0.0.2").status, 403)
        eq(get(gh, "/other", "127.0.0.1").status, 200)
    with Origin() as o, Gatehouse(conf(o, "", top="deny 127.0.0.3;")) as gh:
        eq(get(gh, "/", "127.0.0.3").status, 403)  # top level alone: inherited
        eq(get(gh, "/", "127.0.0.1").status, 200)


@test("deny applies before return, redirect_to_https and the body-size check")
def t():
    body = """deny 127.0.0.2;
    client_max_body_size 10;
    route = /ret { return 200 "hello"; }"""
    with Origin() as o, Gatehouse(conf(o, body)) as gh:
        eq(get(gh, "/ret", "127.0.0.2").status, 403)
        eq(get(gh, "/ret").body, b"hello")
        r = http_request(gh.port, "POST", "/x", body=b"x" * 100, source="127.0.0.2")
        eq(r.status, 403)


@test("IPv6: deny ::1 on an IPv6 listener; IPv4 rules leave it alone")
def t():
    body = "deny 127.0.0.0/8;\ndeny ::1;"

    def listen(g):
        return "[::1]:%d" % g.port

    with Origin() as o, Gatehouse(conf(o, body, listen=listen), wait_ports=[]) as gh:
        wait_until(lambda: port_accepts(gh.port, "::1"), 15, "the IPv6 listener")
        with Conn(gh.port, host="::1") as c:
            r = c.request("GET", "/")
            eq(r.status, 403)
    with Origin() as o, Gatehouse(conf(o, "deny 127.0.0.0/8;\nallow ::/0;", listen=listen),
                                  wait_ports=[]) as gh:
        wait_until(lambda: port_accepts(gh.port, "::1"), 15, "the IPv6 listener")
        with Conn(gh.port, host="::1") as c:
            eq(c.request("GET", "/").status, 200)


# ---------------------------------------------------------------------------------------------
# the real client address


REALIP = """real_ip_from 127.0.0.1 127.0.0.5;
    real_ip_header X-Forwarded-For;
    request_header set X-Seen $remote_addr;
"""


@test("real_ip_from + X-Forwarded-For: the rightmost untrusted entry; spoofed ones ignored")
def t():
    with Origin() as o, Gatehouse(conf(o, REALIP, log=True)) as gh:
        xff = [("X-Forwarded-For", "6.6.6.6, 203.0.113.7")]
        f = origin_headers(get(gh, "/", headers=xff))
        eq(f["x-seen"], ["203.0.113.7"])
        # the chain as received plus the address this hop got it from
        eq(f["x-forwarded-for"], ["6.6.6.6, 203.0.113.7, 127.0.0.1"])
        # trusted entries are skipped, over several fields
        xff = [("X-Forwarded-For", "6.6.6.6, 198.51.100.1"),
               ("X-Forwarded-For", "127.0.0.5, 127.0.0.1")]
        eq(origin_headers(get(gh, "/", headers=xff))["x-seen"], ["198.51.100.1"])
        # a connection that is not trusted: its own address, the header is not believed
        f = origin_headers(get(gh, "/", "127.0.0.2", headers=[("X-Forwarded-For", "1.2.3.4")]))
        eq(f["x-seen"], ["127.0.0.2"])
        eq(f["x-forwarded-for"], ["1.2.3.4, 127.0.0.2"])
        # invalid rightmost entry: the connection's address stays
        f = origin_headers(get(gh, "/", headers=[("X-Forwarded-For", "1.2.3.4, bogus")]))
        eq(f["x-seen"], ["127.0.0.1"])
        # IPv6 in brackets with a port
        f = origin_headers(get(gh, "/", headers=[("X-Forwarded-For", "[2001:db8::7]:4711")]))
        eq(f["x-seen"], ["2001:db8::7"])
        ls = log_lines(gh, 5)
        check(ls[0].startswith("203.0.113.7 "), "the access log has the real address: %r" % ls[0])
        check(ls[2].startswith("127.0.0.2 "), "log line %r" % ls[2])


@test("real_ip_header X-Real-IP (the default): one address; invalid values are ignored")
def t():
    body = "real_ip_from 127.0.0.1;\nrequest_header set X-Seen $remote_addr;"
    with Origin() as o, Gatehouse(conf(o, body)) as gh:
        f = origin_headers(get(gh, "/", headers=[("X-Real-IP", "198.51.100.9")]))
        eq(f["x-seen"], ["198.51.100.9"])
        f = origin_headers(get(gh, "/", headers=[("X-Real-IP", "garbage")]))
        eq(f["x-seen"], ["127.0.0.1"])
        f = origin_headers(get(gh, "/", headers=[("X-Forwarded-For", "198.51.100.9")]))
        eq(f["x-seen"], ["127.0.0.1"])  # not the header in use


@test("the real address is what access rules see")
def t():
    body = REALIP + "deny 203.0.113.0/24;"
    with Origin() as o, Gatehouse(conf(o, body)) as gh:
        xff = [("X-Forwarded-For", "203.0.113.7")]
        eq(get(gh, "/", headers=xff).status, 403)
        gh.wait_stderr(r"client 203\.0\.113\.7: 403: access denied")
        eq(get(gh, "/", headers=[("X-Forwarded-For", "198.51.100.1")]).status, 200)
        # a client cannot claim to be behind the proxy to get past a rule on its own address
        eq(get(gh, "/", "127.0.0.2", headers=[("X-Forwarded-For", "198.51.100.1")]).status, 200)
    with Origin() as o, Gatehouse(conf(o, REALIP + "deny 127.0.0.2;")) as gh:
        eq(get(gh, "/", "127.0.0.2", headers=[("X-Forwarded-For", "198.51.100.1")]).status, 403)


# ---------------------------------------------------------------------------------------------
# limit_conn and max_connections


def refused_until_released(gh, src, release, what):
    """After release(), a request from src is served again within a bounded number of tries."""
    release()

    def served():
        try:
            return get(gh, "/echo", src).status == 200
        except (OSError, Closed):
            return False

    wait_until(served, 10, what)


@test("limit_conn 1: a second request in progress from the address gets 503; others served")
def t():
    with Origin() as o, Gatehouse(conf(o, "limit_conn 1;")) as gh:
        slow = Conn(gh.port, timeout=30)
        slow.send(build_request("GET", "/slow-first-byte/5"))  # in progress until answered
        o.wait_requests(1)
        r = get(gh, "/echo")
        eq(r.status, 503)
        gh.wait_stderr(r"client 127\.0\.0\.1: 503: limit_conn")
        eq(get(gh, "/echo", "127.0.0.2").status, 200)  # another address is served
        eq(get(gh, "/echo", "127.0.0.2").status, 200)  # and its count went back to 0
        eq(slow.read_response().status, 200)  # the slow one ends: its count goes back
        refused_until_released(gh, "127.0.0.1", slow.close, "127.0.0.1 served again")


@test("limit_conn counts requests in progress, not idle keep-alive connections")
def t():
    with Origin() as o, Gatehouse(conf(o, "limit_conn 1;")) as gh:
        with Conn(gh.port) as a, Conn(gh.port) as b:
            for _ in range(3):
                eq(a.request("GET", "/echo").status, 200)
                eq(b.request("GET", "/echo").status, 200)


@test("limit_conn per route: a route with its own limit, others unlimited")
def t():
    body = "route /slow-first-byte/ { limit_conn 1; }"
    with Origin() as o, Gatehouse(conf(o, body)) as gh:
        slow = Conn(gh.port, timeout=30)
        slow.send(build_request("GET", "/slow-first-byte/5"))
        o.wait_requests(1)
        eq(get(gh, "/slow-first-byte/0").status, 503)
        eq(get(gh, "/echo").status, 200)
        eq(slow.read_response().status, 200)
        eq(get(gh, "/slow-first-byte/0").status, 200)
        slow.close()


@test("max_connections 2: the third connection is closed unread; served again after one goes")
def t():
    with Origin() as o, Gatehouse(conf(o, "", top="max_connections 2;")) as gh:
        a = Conn(gh.port)
        eq(a.request("GET", "/echo").status, 200)
        b = Conn(gh.port)
        eq(b.request("GET", "/echo").status, 200)

        def third_refused():
            c = Conn(gh.port, source="127.0.0.2")
            try:
                c.send(build_request("GET", "/echo"))
            except OSError:
                pass
            try:
                return c.wait_closed(5)
            finally:
                c.close()

        check(third_refused(), "the third connection was closed")
        n_before = len(o.requests)
        eq(n_before, 2, "the origin saw only the two served requests")
        gh.wait_stderr(r"max_connections 2 reached: \d+ connection\(s\) refused")
        eq(a.request("GET", "/echo").status, 200)  # the others are still served
        refused_until_released(gh, "127.0.0.3", a.close, "a new connection served after close")
        b.close()


# ---------------------------------------------------------------------------------------------
# request size


@test("client_max_body_size: 413 before the declared body is sent; the origin sees nothing")
def t():
    with Origin() as o, Gatehouse(conf(o, "client_max_body_size 1k;")) as gh:
        with Conn(gh.port) as c:
            c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n")
            r = c.read_response()
            eq(r.status, 413)
        eq(len(o.requests), 0)


# ---------------------------------------------------------------------------------------------
# gatehouse -t


def check_conf(text):
    p = os.path.join(tmpdir(), "g.conf")
    with open(p, "w") as f:
        f.write(text)
    return run_gh(["-t", "-c", p]), p


@test("-t: bad addresses are errors at FILE:LINE:COL; host bits set are a warning")
def t():
    r, p = check_conf("""allow 10.0.0.0/33;
deny nonsense;
server {
    listen 127.0.0.1:1;
    deny 1.2.3.4 99;
    real_ip_from 10.0.0.0/8 all;
    route / { real_ip_header X-Forwarded-For; allow 1.2.3.4 403; }
}
limit_conn zone 10;
set_real_ip_from 10.0.0.0/8;
max_connections 0;
""")
    eq(r.returncode, 1, "exit status\n" + r.stderr)
    for want in ["g.conf:1:7: invalid address '10.0.0.0/33' in 'allow': an IPv4 prefix length",
                 "g.conf:2:6: invalid address 'nonsense' in 'deny'",
                 "g.conf:5:18: number '99' out of range for 'deny' (400..599)",
                 "g.conf:6:29: 'real_ip_from all' would let every client choose",
                 "g.conf:7:15: directive 'real_ip_header' is not allowed in 'route' context",
                 "g.conf:7:61: 'allow' takes one address",
                 "g.conf:9:12: 'limit_conn' takes one number here",
                 "g.conf:10:1: unknown directive 'set_real_ip_from' (in Gatehouse: real_ip_from)",
                 "g.conf:11:17: number '0' out of range for 'max_connections'"]:
        check(want in r.stderr, "want %r in:\n%s" % (want, r.stderr))
    r, p = check_conf("deny 10.1.2.3/8;\nserver { listen 127.0.0.1:1; return 200; }\n")
    eq(r.returncode, 0, r.stderr)
    check("g.conf:1:6: warning: low address bits of '10.1.2.3/8' in 'deny' are meaningless: "
          "read as 10.0.0.0/8" in r.stderr, r.stderr)


run()
