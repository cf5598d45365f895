#!/usr/bin/env python3
"""What the restructured proxy layer promises beyond the older suites: keep-alive pools keyed by
destination (shared by upstreams naming the same address, kept across reloads), generated
answers longer than a buffer, and a failed origin server skipped by the next request."""

from ghtest import *


def two_upstreams(oport):
    def build(g):
        return (BASE_TOP + "threads 1;\n"
                "upstream a { server 127.0.0.1:%d; }\n"
                "upstream b { server 127.0.0.1:%d; }\n"
                "server {\n    listen 127.0.0.1:%d;\n"
                "    route /a/ { proxy a; }\n    route /b/ { proxy b; }\n"
                "    route / { proxy a; response_header set X-Gen %s; }\n}\n"
                % (oport, oport, g.port, g.gen))
    return build


def conf_gen(oport, gen):
    def build(g):
        g.gen = gen
        return two_upstreams(oport)(g)
    return build


@test("two upstreams naming one address share its keep-alive pool")
def t():
    o = Origin()
    gh = Gatehouse(conf_gen(o.port, "1"))
    for p in ("/a/echo", "/b/echo", "/a/echo", "/b/echo"):
        eq(http_get(gh.port, p).status, 200, p)
    eq(o.conn_count, 1, "origin connections")


@test("the keep-alive pool survives a reload that keeps the address")
def t():
    o = Origin()
    gh = Gatehouse(conf_gen(o.port, "1"))
    eq(http_get(gh.port, "/echo").header("x-gen"), "1", "generation before")
    gh.reload(conf_gen(o.port, "2"))
    wait_until(lambda: http_get(gh.port, "/echo").header("x-gen") == "2", 10, "reload applied")
    for _ in range(3):
        eq(http_get(gh.port, "/b/echo").status, 200, "after reload")
    eq(o.conn_count, 1, "origin connections across the reload")


@test("a return body larger than a buffer arrives whole, and HEAD gets its length only")
def t():
    body = "".join("line %06d of a long generated answer\\n" % i for i in range(4000))
    want = body.replace("\\n", "\n").encode()
    check(len(want) > 100000, "body is larger than a 64 KiB buffer")

    def build(g):
        return (BASE_TOP + "server {\n    listen 127.0.0.1:%d;\n"
                "    route = /big { return 200 \"%s\"; }\n}\n" % (g.port, body))
    gh = Gatehouse(build)
    r = http_get(gh.port, "/big")
    eq(r.status, 200, "status")
    eq(int(r.header("content-length")), len(want), "Content-Length")
    eq(sha256(r.body), sha256(want), "body")
    with Conn(gh.port) as c:
        r = c.request("HEAD", "/big")
        eq(r.status, 200, "HEAD status")
        eq(int(r.header("content-length")), len(want), "HEAD Content-Length")
        eq(len(r.body), 0, "HEAD body")
        r = c.request("GET", "/big")
        eq(sha256(r.body), sha256(want), "GET after HEAD on the same connection")


@test("a server that refuses connections is marked down: later requests go straight to the others")
def t():
    o = Origin()
    dead = free_port()

    def build(g):
        return (BASE_TOP + "threads 1;\n"
                "upstream app { server 127.0.0.1:%d; server 127.0.0.1:%d; keepalive 0; }\n"
                "server {\n    listen 127.0.0.1:%d;\n    proxy app;\n}\n"
                % (dead, o.port, g.port))
    gh = Gatehouse(build)
    for i in range(6):
        eq(http_get(gh.port, "/echo").status, 200, "request %d" % i)
    # one connect failure marks the dead server down for 10 s: only the first request tried it
    refused = len(re.findall(r"upstream 127\.0\.0\.1:%d: connect" % dead, gh.stderr()))
    eq(refused, 1, "connect attempts to the dead server")
    eq(len(o.requests), 6, "requests the live origin served")


run()
