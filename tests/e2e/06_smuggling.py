#!/usr/bin/env python3
"""Request smuggling and malformed requests: each is rejected with the exact status, the client
connection is closed, and the origin sees nothing."""

import os

from ghtest import *


def proxy():
    o = shared("origin", lambda: Origin(name="o"))
    gh = shared("gatehouse", lambda: Gatehouse(conf_proxy(o)))
    o.reset()
    return o, gh


H = b"Host: a.test\r\n"

# (name, raw request bytes, expected status, "head" | "body": where the error is)
CASES = [
    ("CL+TE", b"POST /upload?m={M} HTTP/1.1\r\n" + H +
     b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "head"),
    ("TE+CL", b"POST /upload?m={M} HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400, "head"),
    ("two differing Content-Length", b"POST /upload?m={M} HTTP/1.1\r\n" + H +
     b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, "head"),
    ("Content-Length +5", b"POST /upload?m={M} HTTP/1.1\r\n" + H +
     b"Content-Length: +5\r\n\r\nhello", 400, "head"),
    ("Content-Length ' 5, 6'", b"POST /upload?m={M} HTTP/1.1\r\n" + H +
     b"Content-Length:  5, 6\r\n\r\nhello!", 400, "head"),
    ("Content-Length -1", b"POST /upload?m={M} HTTP/1.1\r\n" + H +
     b"Content-Length: -1\r\n\r\n", 400, "head"),
    ("Content-Length 5a", b"POST /upload?m={M} HTTP/1.1\r\n" + H +
     b"Content-Length: 5a\r\n\r\nhello", 400, "head"),
    ("Content-Length overflow", b"POST /upload?m={M} HTTP/1.1\r\n" + H +
     b"Content-Length: 99999999999999999999999\r\n\r\nhello", 400, "head"),
    ("TE 'chunked, chunked'", b"POST /upload?m={M} HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400, "head"),
    # RFC 9112 6.3: chunked not final -> the length cannot be determined -> MUST 400
    ("TE gzip alone (400)", b"POST /upload?m={M} HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n", 400, "head"),
    # RFC 9112 6.1: a coding we do not implement before a final chunked -> 501
    ("TE gzip, chunked (501)", b"POST /upload?m={M} HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, "head"),
    ("TE xchunked", b"POST /upload?m={M} HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400, "head"),
    ("TE in HTTP/1.0", b"POST /upload?m={M} HTTP/1.0\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "head"),
    ("obs-fold", b"GET /echo?m={M} HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n", 400, "head"),
    ("space before colon", b"GET /echo?m={M} HTTP/1.1\r\n" + H + b"X-A : b\r\n\r\n", 400, "head"),
    ("bare LF in header line", b"GET /echo?m={M} HTTP/1.1\r\n" + H + b"X-A: a\nX-B: b\r\n\r\n", 400,
     "head"),
    ("bare CR in header value", b"GET /echo?m={M} HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", 400,
     "head"),
    ("NUL in header value", b"GET /echo?m={M} HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", 400, "head"),
    ("invalid header name byte", b"GET /echo?m={M} HTTP/1.1\r\n" + H + b"X@A: b\r\n\r\n", 400, "head"),
    ("empty header name", b"GET /echo?m={M} HTTP/1.1\r\n" + H + b": b\r\n\r\n", 400, "head"),
    ("missing Host in HTTP/1.1", b"GET /echo?m={M} HTTP/1.1\r\nX-A: b\r\n\r\n", 400, "head"),
    ("two Host headers", b"GET /echo?m={M} HTTP/1.1\r\n" + H + b"Host: b.test\r\n\r\n", 400, "head"),
    ("HTTP/1.2 (505)", b"GET /echo?m={M} HTTP/1.2\r\n" + H + b"\r\n", 505, "head"),
    ("HTTP/2.0 (505)", b"GET /echo?m={M} HTTP/2.0\r\n" + H + b"\r\n", 505, "head"),
    ("lowercase http version", b"GET /echo?m={M} http/1.1\r\n" + H + b"\r\n", 400, "head"),
    ("two spaces in request line", b"GET  /echo?m={M} HTTP/1.1\r\n" + H + b"\r\n", 400, "head"),
    ("space in target", b"GET /a?m={M} b HTTP/1.1\r\n" + H + b"\r\n", 400, "head"),
    ("control char in target", b"GET /a\x01b?m={M} HTTP/1.1\r\n" + H + b"\r\n", 400, "head"),
    ("DEL in target", b"GET /a\x7fb?m={M} HTTP/1.1\r\n" + H + b"\r\n", 400, "head"),
    ("absolute URI with bad scheme", b"GET ftp://a.test/x?m={M} HTTP/1.1\r\n" + H + b"\r\n", 400,
     "head"),
    ("request line too long (414)", b"GET /?m={M}" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n",
     414, "head"),
    ("header line too long (431)", b"GET /echo?m={M} HTTP/1.1\r\n" + H + b"X-Long: " + b"a" * 9000 +
     b"\r\n\r\n", 431, "head"),
    ("too many headers (431)", b"GET /echo?m={M} HTTP/1.1\r\n" + H +
     b"".join(b"X-H%d: v\r\n" % i for i in range(120)) + b"\r\n", 431, "head"),
    ("chunk size overflow", b"POST /upload?m={M} HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400, "body"),
    ("chunk size 0x5", b"POST /upload?m={M} HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400, "body"),
    ("chunk size with space", b"POST /upload?m={M} HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", 400, "body"),
    ("negative chunk size", b"POST /upload?m={M} HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400, "body"),
    ("chunk missing CRLF after data", b"POST /upload?m={M} HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400, "body"),
    ("chunk size line with bare LF", b"POST /upload?m={M} HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400, "body"),
]


_seq = [0]


def marker():
    """A token unique to this test, put in request targets: a request the proxy forwards late
    (after its test ended) is never counted against another test."""
    _seq[0] += 1
    return b"t%d-%d" % (os.getpid(), _seq[0])


def mine(o, m):
    return [q for q in o.requests if m.decode() in q.target]


def run_case(raw, status, where):
    o, gh = proxy()
    m = marker()
    raw = raw.replace(b"{M}", m)
    resp, got, closed = raw_exchange(gh.port, raw, timeout=5)
    check(resp is not None, "no parsable response, got %r" % got[:200])
    eq(resp.status, status, "status")
    eq(resp.header("server"), "gatehouse", "Server header")
    check(closed, "client connection should be closed after a rejection")
    eq((resp.header("connection") or "").lower(), "close",
       "Connection header of the rejection")
    if where == "head":
        eq(mine(o, m), [], "requests seen by the origin")
    else:
        # The head was valid; a proxy may have forwarded it, but never a complete request.
        done = [q for q in mine(o, m) if q.body_complete]
        eq(done, [], "complete requests seen by the origin")
    eq(o.errors, [], "origin parse errors (something malformed was forwarded)")


for name, raw, status, where in CASES:
    def make(name, raw, status, where):
        @test("reject %s -> %d" % (name, status), timeout=20)
        def t():
            run_case(raw, status, where)

    make(name, raw, status, where)


@test("identical duplicate Content-Length is either rejected or treated as one")
def t():
    o, gh = proxy()
    m = marker()
    raw = (b"POST /upload?m=" + m + b" HTTP/1.1\r\n" + H +
           b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello" +
           b"GET /echo?m=" + m + b"-next HTTP/1.1\r\n" + H + b"\r\n")
    resp, got, closed = raw_exchange(gh.port, raw, timeout=5)
    check(resp is not None, "no response")
    if resp.status == 400:
        eq(mine(o, m), [], "origin requests")
    else:
        eq(resp.status, 200, "status")
        q = mine(o, m)[0]
        eq((q.body_len, q.header_all("content-length")), (5, ["5"]), "origin saw one CL 5")


@test("request smuggled after a valid chunked body is a separate request, never glued")
def t():
    o, gh = proxy()
    m = marker().decode()
    smuggled = b"GET /echo?smuggled-%s HTTP/1.1\r\n" % m.encode() + H + b"\r\n"
    raw = (b"POST /upload?%s HTTP/1.1\r\n" % m.encode() + H +
           b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n" + smuggled)
    with Conn(gh.port) as c:
        c.send(raw)
        r1 = c.read_response()
        r2 = c.read_response()
    eq(r1.status, 200, "1st status")
    eq(r1.json()["sha256"], sha256(b"hello"), "1st body at origin is exactly 'hello'")
    eq(r2.status, 200, "2nd status")
    eq(r2.json()["target"], "/echo?smuggled-" + m, "2nd request seen as its own request")
    got = [(q.method, q.target, q.body_len) for q in o.requests if m in q.target]
    eq(got, [("POST", "/upload?" + m, 5), ("GET", "/echo?smuggled-" + m, 0)], "origin requests")
    eq(o.errors, [], "origin parse errors")


@test("request after a Content-Length body is a separate request, never glued")
def t():
    o, gh = proxy()
    m = marker().decode()
    raw = (b"POST /upload?%s HTTP/1.1\r\n" % m.encode() + H +
           b"Content-Length: 5\r\n\r\nhello" +
           b"GET /echo?second-%s HTTP/1.1\r\n" % m.encode() + H + b"\r\n")
    with Conn(gh.port) as c:
        c.send(raw)
        r1 = c.read_response()
        r2 = c.read_response()
    eq(r1.json()["sha256"], sha256(b"hello"), "1st body")
    eq(r2.json()["target"], "/echo?second-" + m, "2nd target")
    eq(len([q for q in o.requests if m in q.target]), 2, "origin requests")


@test("a rejected request in a pipeline: earlier ones answered, nothing after it forwarded")
def t():
    o, gh = proxy()
    m = marker().decode()
    raw = (build_request("GET", "/echo?first-" + m) +
           b"GET /echo?m=%s HTTP/1.1\r\n" % m.encode() + H + b"X-A : b\r\n\r\n" +
           build_request("GET", "/echo?after-" + m))
    with Conn(gh.port) as c:
        c.send(raw)
        r1 = c.read_response()
        eq(r1.json()["target"], "/echo?first-" + m, "first answered")
        r2 = c.read_response()
        eq(r2.status, 400, "second rejected")
        check(c.wait_closed(5), "closed after the rejection")
    eq([q.target for q in o.requests if m in q.target], ["/echo?first-" + m], "origin requests")


run()
