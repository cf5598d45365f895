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


def check_408_or_nothing(data):
    if data:
        r = parse_head(data[:data.find(b"\r\n\r\n") + 4])
        eq(r.status, 408, "status of what the proxy sent")


@test("client_header_timeout 1s: half a head gets 408 or close")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, server_extra="    client_header_timeout 1s;"))
    with Conn(gh.port) as c:
        c.send(b"GET /echo HTTP/1.1\r\nHost: a.test\r\n")
        dt, data = closed_or_408(c, 5)
    diag("ended after %.2fs with %r" % (dt, data[:60]))
    check(dt >= 0.7, "ended too early (%.2fs)" % dt)
    check_408_or_nothing(data)
    eq(o.requests, [], "origin requests")


@test("client_header_timeout 1s covers the whole head (slowloris drip)")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, server_extra="    client_header_timeout 1s;"))
    with Conn(gh.port) as c:
        c.send(b"GET /echo HTTP/1.1\r\nHost: a.test\r\n")
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 5:
            try:
                c.send(b"X-a: b\r\n")
            except OSError:
                closed = True
                break
            if not c.is_open(0.25):
                closed = True
                break
        dt = time.monotonic() - t0
    diag("closed=%s after %.2fs" % (closed, dt))
    check(closed and dt < 4, "a dripping head must be cut after ~1s (after %.2fs)" % dt)
    eq(o.requests, [], "origin requests")


@test("client_body_timeout 1s: stalled request body ends the exchange")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, server_extra="    client_body_timeout 1s;"))
    with Conn(gh.port) as c:
        c.send(b"POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100\r\n\r\n0123456789")
        dt, data = closed_or_408(c, 6)
    diag("ended after %.2fs with %r" % (dt, data[:60]))
    check(dt >= 0.7, "ended too early")
    if data:
        r = parse_head(data[:data.find(b"\r\n\r\n") + 4])
        check(r.status in (408, 400), "status %d" % r.status)
    check(not [q for q in o.requests if q.body_complete], "origin must not see a complete body")


@test("idle keep-alive timeout closes the client connection")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, server_extra="    keepalive_timeout 1s;"))
    with Conn(gh.port) as c:
        eq(c.request("GET", "/echo").status, 200, "status")
        t0 = time.monotonic()
        check(c.wait_closed(5), "idle connection should be closed")
        dt = time.monotonic() - t0
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


@test("idle connection that never sent anything is closed by client_header_timeout")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, server_extra="    client_header_timeout 1s;\n"
                                              "    keepalive_timeout 1s;"))
    with Conn(gh.port) as c:
        t0 = time.monotonic()
        check(c.wait_closed(6), "silent connection should be closed")
        diag("closed after %.2fs" % (time.monotonic() - t0))


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
