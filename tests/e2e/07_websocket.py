#!/usr/bin/env python3
"""WebSocket (RFC 6455) upgrade through the proxy, frames both ways, close, idle timeout."""

import base64

from ghtest import *

origin_mod = load_origin_module()
ws_frame, ws_read_frame, ws_accept = (origin_mod.ws_frame, origin_mod.ws_read_frame,
                                      origin_mod.ws_accept)


def handshake(port, path="/websocket", connection="Upgrade"):
    key = base64.b64encode(os.urandom(16)).decode()
    c = Conn(port, timeout=10)
    c.send(build_request("GET", path, headers=[
        ("Upgrade", "websocket"), ("Connection", connection), ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13")]))
    r = c.read_response()
    eq(r.status, 101, "handshake status")
    eq((r.header("upgrade") or "").lower(), "websocket", "Upgrade header")
    check("upgrade" in (r.header("connection") or "").lower(), "Connection: upgrade")
    eq(r.header("sec-websocket-accept"), ws_accept(key), "Sec-WebSocket-Accept")
    return c


@test("WebSocket handshake through the proxy; origin saw the upgrade headers")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o))
    c = handshake(gh.port)
    q = o.requests[0]
    eq((q.header("upgrade") or "").lower(), "websocket", "Upgrade at origin")
    check("upgrade" in (q.header("connection") or "").lower(), "Connection: upgrade at origin")
    check(q.has("sec-websocket-key"), "Sec-WebSocket-Key at origin")
    c.send(ws_frame(8, b"\x03\xe8"))
    op, payload, masked = ws_read_frame(c)
    eq(op, 8, "close frame")


@test("WebSocket handshake whose Connection also names another field (Upgrade, X-Trace)")
def t():
    # regression: a Connection naming other fields made Upgrade count as one of them (dropped)
    o = Origin()
    gh = Gatehouse(conf_proxy(o))
    c = handshake(gh.port, connection="keep-alive, Upgrade, X-Trace")
    q = o.requests[0]
    eq((q.header("upgrade") or "").lower(), "websocket", "Upgrade at origin")
    check(not q.has("x-trace"), "X-Trace is hop-by-hop: not forwarded")
    c.send(ws_frame(1, b"hi"))
    eq(ws_read_frame(c)[1], b"hi", "echo through the tunnel")


@test("WebSocket: masked messages echoed both ways, various sizes, then close")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o))
    c = handshake(gh.port)
    msgs = [(1, b"hello"), (2, det_bytes(125)), (2, det_bytes(126)), (1, b"x" * 1000),
            (2, det_bytes(70000)), (1, "üñíçødé".encode())]
    for op, payload in msgs:
        c.send(ws_frame(op, payload))
        rop, rpay, masked = ws_read_frame(c)
        eq((rop, sha256(rpay)), (op, sha256(payload)), "echo of %d bytes" % len(payload))
        check(not masked, "server frames must not be masked")
    # several frames in one send
    c.send(b"".join(ws_frame(1, b"m%d" % i) for i in range(10)))
    for i in range(10):
        eq(ws_read_frame(c)[1], b"m%d" % i, "batched message %d" % i)
    c.send(ws_frame(9, b"ping!"))
    eq(ws_read_frame(c)[:2], (10, b"ping!"), "pong")
    c.send(ws_frame(8, b"\x03\xe8bye"))
    op, payload, _ = ws_read_frame(c)
    eq((op, payload[:2]), (8, b"\x03\xe8"), "close echoed")
    check(c.wait_closed(5), "connection closed after the close handshake")


@test("WebSocket: two concurrent tunnels stay separate")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o))
    a = handshake(gh.port)
    b = handshake(gh.port)
    for i in range(5):
        a.send(ws_frame(1, b"a%d" % i))
        b.send(ws_frame(1, b"b%d" % i))
        eq(ws_read_frame(b)[1], b"b%d" % i, "b")
        eq(ws_read_frame(a)[1], b"a%d" % i, "a")


@test("WebSocket refused by the origin: client gets the origin's answer, no tunnel")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o))
    with Conn(gh.port) as c:
        c.send(build_request("GET", "/websocket", headers=[
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13")]))  # no key: origin says 400
        r = c.read_response()
        eq(r.status, 400, "status")


@test("WebSocket: idle tunnel closed after tunnel_idle_timeout 1s")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, server_extra="    tunnel_idle_timeout 1s;"))
    c = handshake(gh.port)
    c.send(ws_frame(1, b"x"))
    eq(ws_read_frame(c)[1], b"x", "echo")
    t0 = time.monotonic()
    check(c.wait_closed(6), "idle tunnel should be closed")
    dt = time.monotonic() - t0
    diag("closed after %.2fs" % dt)
    check(dt >= 0.8, "closed too early (%.2fs)" % dt)


run()
