#!/usr/bin/env python3
"""Client-side timeouts and graceful drain on SIGTERM."""

import signal
import threading

from ghtest import *


def closed_or_408(c, timeout):
    """Wait for the proxy to end a slow connection; return (seconds, bytes it sent)."""
    t0 = time.monotonic()
    data = b""
    c.sock.settimeout(timeout)
    try:
        while True:
            b = c.sock.recv(65536)
            if not b:
                break
            data += b
    except socket.timeout:
        raise AssertionError("connection still open after %ss" % timeout) from None
    except OSError:
        pass
    return time.monotonic() - t0, data


def check_exactly_408(data):
    """`data` is everything the proxy sent before it closed: one complete 408 response that
    says Connection: close, and nothing after it."""
    check(data, "the proxy closed without a word; want a 408 Request Timeout response")
    i = data.find(b"\r\n\r\n")
    check(i >= 0, "no complete response head before the close: %r" % data[:200])
    r = parse_head(data[:i + 4])
    eq(r.status, 408, "status of what the proxy sent")
    eq((r.header("connection") or "").lower(), "close", "Connection header of the 408")
    cl = r.header("content-length")
    check(cl is not None, "408 without Content-Length: %r" % data[:i])
    eq(len(data) - (i + 4), int(cl), "bytes after the 408 head (its body, then nothing)")


def check_silent_close(c, timeout):
    """The proxy closes `c` within `timeout` seconds without sending a single byte."""
    dt, data = closed_or_408(c, timeout)
    eq(data, b"", "bytes sent on an idle connection before closing it")
    return dt


@test("client_header_timeout 1s: half a head gets exactly a 408, then the close")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, server_extra="    client_header_timeout 1s;"))
    with Conn(gh.port) as c:
        c.send(b"GET /echo HTTP/1.1\r\nHost: a.test\r\n")
        dt, data = closed_or_408(c, 5)
    diag("ended after %.2fs with %r" % (dt, data[:60]))
    check(dt >= 0.7, "ended too early (%.2fs)" % dt)
    check_exactly_408(data)
    eq(o.requests, [], "origin requests")


@test("client_header_timeout 1s covers the whole head (slowloris drip): a 408, then the close")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, server_extra="    client_header_timeout 1s;"))
    with Conn(gh.port) as c:
        c.send(b"GET /echo HTTP/1.1\r\nHost: a.test\r\n")
        t0 = time.monotonic()
        closed = False
        # drip a header line every 0.25s until the proxy answers (or closes)
        while time.monotonic() - t0 < 5 and not c.buf:
            try:
                c.send(b"X-a: b\r\n")
            except OSError:
                closed = True
                break
            if not c.is_open(0.25):
                closed = True
                break
        dt = time.monotonic() - t0
        data = c.buf + (b"" if closed else closed_or_408(c, 5)[1])
    diag("answered after %.2fs with %r" % (dt, data[:60]))
    check(dt < 4, "a dripping head must be cut after ~1s (after %.2fs)" % dt)
    check_exactly_408(data)
    eq(o.requests, [], "origin requests")


@test("client_body_timeout 1s: stalled request body gets exactly a 408, then the close")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, server_extra="    client_body_timeout 1s;"))
    with Conn(gh.port) as c:
        c.send(b"POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100\r\n\r\n0123456789")
        dt, data = closed_or_408(c, 6)
    diag("ended after %.2fs with %r" % (dt, data[:60]))
    check(dt >= 0.7, "ended too early")
    check_exactly_408(data)
    check(not [q for q in o.requests if q.body_complete], "origin must not see a complete body")


@test("idle keep-alive timeout closes the client connection silently (no bytes)")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, server_extra="    keepalive_timeout 1s;"))
    with Conn(gh.port) as c:
        eq(c.request("GET", "/echo").status, 200, "status")
        eq(c.buf, b"", "bytes after the response")
        dt = check_silent_close(c, 5)
    diag("closed after %.2fs" % dt)
    check(dt >= 0.7, "closed too early (%.2fs)" % dt)


@test("keepalive_timeout 0 disables keep-alive")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, server_extra="    keepalive_timeout 0;"))
    with Conn(gh.port) as c:
        r = c.request("GET", "/echo")
        eq(r.status, 200, "status")
        eq((r.header("connection") or "").lower(), "close", "Connection header")
        check(c.wait_closed(5), "closed after the response")


@test("idle connection that never sent anything is closed silently by client_header_timeout")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, server_extra="    client_header_timeout 1s;\n"
                                              "    keepalive_timeout 1s;"))
    with Conn(gh.port) as c:
        dt = check_silent_close(c, 6)
        diag("closed after %.2fs" % dt)


@test("drain on SIGTERM: slow in-flight request completes, process exits 0")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, top_extra="drain_timeout 10s;\n"))
    result = {}

    def client():
        try:
            result["r"] = http_get(gh.port, "/slow-first-byte/2", timeout=20)
        except Exception as e:  # reported below
            result["e"] = e

    th = threading.Thread(target=client, daemon=True)
    th.start()
    o.wait_requests(1, 10)
    t0 = time.monotonic()
    gh.signal(signal.SIGTERM)
    th.join(20)
    check("e" not in result, "in-flight request failed: %r" % result.get("e"))
    check("r" in result, "in-flight request did not finish")
    eq(result["r"].status, 200, "in-flight status")
    st = gh.stop()
    dt = time.monotonic() - t0
    eq(st, 0, "exit status")
    diag("exited %.2fs after SIGTERM" % dt)


@test("drain on SIGTERM: new connections are refused, idle keep-alive closed")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, top_extra="drain_timeout 10s;\n"))
    idle = Conn(gh.port)
    eq(idle.request("GET", "/echo").status, 200, "status")
    th = threading.Thread(target=lambda: http_get(gh.port, "/slow-first-byte/2", timeout=20),
                          daemon=True)
    th.start()
    o.wait_requests(2, 10)
    gh.signal(signal.SIGTERM)
    check(idle.wait_closed(5), "idle keep-alive connection should be closed on drain")
    wait_until(lambda: not port_accepts(gh.port), 5, "listener to stop accepting")
    th.join(20)
    eq(gh.stop(), 0, "exit status")


@test("drain_timeout bounds the drain: a stalled request does not keep the process alive")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, top_extra="drain_timeout 1s;\n"))
    c = Conn(gh.port)
    c.send(build_request("GET", "/stall"))
    o.wait_requests(1, 10)
    t0 = time.monotonic()
    gh.signal(signal.SIGTERM)
    try:
        gh.proc.wait(8)
    except subprocess.TimeoutExpired:
        raise AssertionError("still running 8s after SIGTERM with drain_timeout 1s")
    dt = time.monotonic() - t0
    diag("exited %.2fs after SIGTERM" % dt)
    eq(gh.stop(), 0, "exit status")


run()
