#!/usr/bin/env python3
"""Keep-alive (client and upstream side), pipelining, HTTP/1.0, Connection: close, 100-continue."""

import os

from ghtest import *


def proxy(top_extra="threads 1;\n"):
    o = Origin(name="o")
    gh = Gatehouse(conf_proxy(o, top_extra=top_extra))
    return o, gh


@test("client keep-alive: several requests on one socket")
def t():
    o, gh = proxy()
    with Conn(gh.port) as c:
        for i in range(6):
            r = c.request("GET", "/echo?i=%d" % i)
            eq(r.status, 200, "status %d" % i)
            eq(r.json()["target"], "/echo?i=%d" % i, "target %d" % i)
            check((r.header("connection") or "").lower() != "close",
                  "response %d says Connection: close" % i)
        check(c.is_open(0.2), "connection should stay open")


@test("upstream keep-alive: sequential requests on one client connection use one origin conn")
def t():
    o, gh = proxy()
    with Conn(gh.port) as c:
        for i in range(10):
            eq(c.request("GET", "/echo").status, 200, "status")
    eq(o.conn_count, 1, "origin connections")


@test("upstream keep-alive: sequential client connections reuse the origin connection")
def t():
    o, gh = proxy()
    for i in range(10):
        eq(http_get(gh.port, "/bytes/100").status, 200, "status")
    eq(o.conn_count, 1, "origin connections (threads 1)")


@test("upstream keep-alive survives a chunked and a large response")
def t():
    o, gh = proxy()
    with Conn(gh.port) as c:
        eq(c.request("GET", "/chunked/100000").status, 200, "status")
        eq(c.request("GET", "/bytes/1000000").status, 200, "status")
        eq(c.request("POST", "/upload", body=b"x" * 100000).status, 200, "status")
        eq(c.request("GET", "/echo").status, 200, "status")
    eq(o.conn_count, 1, "origin connections")


@test("pipelining: 3 requests in one send answered in order")
def t():
    o, gh = proxy()
    reqs = (build_request("GET", "/bytes/777") +
            build_request("POST", "/upload", body=b"pipelined body") +
            build_request("GET", "/echo?third"))
    with Conn(gh.port) as c:
        c.send(reqs)
        r1 = c.read_response()
        r2 = c.read_response()
        r3 = c.read_response()
    eq(r1.status, 200, "1st status")
    eq(r1.body, det_bytes(777), "1st body")
    eq(r2.json()["sha256"], sha256(b"pipelined body"), "2nd body at origin")
    eq(r3.json()["target"], "/echo?third", "3rd target")
    eq([r.target for r in o.requests], ["/bytes/777", "/upload", "/echo?third"], "origin order")


@test("pipelining: 20 requests in one send with HEAD and 204 mixed in")
def t():
    o, gh = proxy()
    plan = []
    data = b""
    for i in range(20):
        m, path = [("GET", "/bytes/%d" % (i + 1)), ("HEAD", "/bytes/50"),
                   ("GET", "/status/204"), ("GET", "/chunked/%d" % (i * 100 + 1))][i % 4]
        plan.append((m, path))
        data += build_request(m, path)
    with Conn(gh.port) as c:
        c.send(data)
        for m, path in plan:
            r = c.read_response(m)
            if path.startswith("/bytes") and m == "GET":
                eq(r.body, det_bytes(int(path.split("/")[2])), path)
            elif path.startswith("/chunked"):
                eq(r.body, det_bytes(int(path.split("/")[2])), path)
            elif m == "HEAD":
                eq(r.header("content-length"), "50", "HEAD CL")
            else:
                eq(r.status, 204, path)


@test("HTTP/1.0 client without keep-alive: response then close")
def t():
    o, gh = proxy()
    with Conn(gh.port) as c:
        c.send(b"GET /bytes/500 HTTP/1.0\r\nHost: a.test\r\n\r\n")
        r = c.read_response()
        eq(r.status, 200, "status")
        eq(r.body, det_bytes(500), "body")
        check(c.wait_closed(5), "proxy should close an HTTP/1.0 connection without keep-alive")


@test("HTTP/1.0 client without Host is accepted")
def t():
    o, gh = proxy()
    with Conn(gh.port) as c:
        c.send(b"GET /echo HTTP/1.0\r\n\r\n")
        r = c.read_response()
        eq(r.status, 200, "status")
        check(c.wait_closed(5), "closed after")


@test("Connection: close is honoured (response says close, socket closes)")
def t():
    o, gh = proxy()
    with Conn(gh.port) as c:
        r = c.request("GET", "/echo", headers=[("Connection", "close")])
        eq(r.status, 200, "status")
        eq((r.header("connection") or "").lower(), "close", "Connection header in response")
        check(c.wait_closed(5), "socket should close")


@test("keepalive_requests: connection closed after N requests")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, server_extra="    keepalive_requests 3;"))
    with Conn(gh.port) as c:
        for i in range(3):
            r = c.request("GET", "/echo")
            eq(r.status, 200, "status")
        eq((r.header("connection") or "").lower(), "close", "3rd response says close")
        check(c.wait_closed(5), "closed after the 3rd request")


@test("100-continue with curl: 100 Continue relayed, body arrives")
def t():
    o, gh = proxy()
    d = tmpdir()
    path = os.path.join(d, "b.bin")
    with open(path, "wb") as f:
        f.write(det_bytes(1000000, seed=9))
    r = curl(["-v", "-H", "Expect: 100-continue", "--expect100-timeout", "10",
              "--data-binary", "@" + path, "http://127.0.0.1:%d/upload" % gh.port])
    eq(r.returncode, 0, "curl exit (%s)" % r.stderr[-500:])
    check("< HTTP/1.1 100 Continue" in r.stderr, "curl should have seen 100 Continue")
    eq(json.loads(r.stdout)["sha256"], sha256_file(path), "sha256 at origin")


@test("100-continue raw: 100 Continue arrives before the body is sent, then final response")
def t():
    o, gh = proxy()
    body = det_bytes(5000, seed=1)
    with Conn(gh.port, timeout=10) as c:
        c.send(b"POST /upload HTTP/1.1\r\nHost: a.test\r\nExpect: 100-continue\r\n"
               b"Content-Length: 5000\r\n\r\n")
        head = parse_head(c.read_head())
        eq(head.status, 100, "interim status before the body")
        c.send(body)
        r = c.read_response()
        eq(r.status, 200, "final status")
        eq(r.json()["sha256"], sha256(body), "sha256 at origin")
        r = c.request("GET", "/echo")
        eq(r.status, 200, "keep-alive after 100-continue")


run()
