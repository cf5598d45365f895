#!/usr/bin/env python3
"""Large Content-Length response bodies moved with splice(2): intact, bounded, timed out, and the
same with `splice off`."""

import os
import struct

from ghtest import *


def pipe_fds(pid):
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("pipe:"):
                n += 1
        except OSError:
            pass
    return n


def proxy(extra=""):
    o = shared("origin", lambda: Origin(name="o"))
    gh = shared("gatehouse" + extra, lambda: Gatehouse(conf_proxy(o, server_extra=extra)))
    o.reset()
    return o, gh


# sizes around the splice threshold (16 KiB left after the first read) and well past it
SIZES = (1000, 16 * 1024 - 1, 16 * 1024 + 1, 40000, 65536, 100 * 1024, 1000 * 1000 + 3,
         5 * 1000 * 1000 + 11)


@test("bodies of every size around the splice threshold arrive intact, keep-alive both sides")
def t():
    o, gh = proxy()
    with Conn(gh.port, timeout=30) as c:
        for n in SIZES:
            r = c.request("GET", "/bytes/%d" % n)
            eq(r.status, 200, "status for %d bytes" % n)
            eq(r.header("content-length"), str(n), "Content-Length for %d bytes" % n)
            eq(len(r.body), n, "length for %d bytes" % n)
            eq(sha256(r.body), sha256(det_bytes(n)), "sha256 for %d bytes" % n)
    conns = {q.conn for q in o.requests}
    diag("origin connections used: %r for %d requests" % (sorted(conns), len(o.requests)))
    eq(len(conns), 1, "one upstream connection, reused for every response")


@test("`splice off`: the same bodies arrive intact through the copy path")
def t():
    o, gh = proxy("    splice off;\n")
    with Conn(gh.port, timeout=30) as c:
        for n in SIZES:
            r = c.request("GET", "/bytes/%d" % n)
            eq(r.status, 200, "status for %d bytes" % n)
            eq(sha256(r.body), sha256(det_bytes(n)), "sha256 for %d bytes" % n)
    # the copy path needs no pipes: only the harness's stdout/stderr pipes are open
    check(pipe_fds(gh.proc.pid) <= 4, "pipes open with splice off: %d" % pipe_fds(gh.proc.pid))


@test("concurrent large downloads with curl, then pipes are cached, not leaked")
def t():
    o, gh = proxy()
    n = 3 * 1000 * 1000 + 1
    procs = [subprocess.Popen(["curl", "-s", "-o", "-", "http://127.0.0.1:%d/bytes/%d" % (gh.port, n)],
                              stdout=subprocess.PIPE) for _ in range(8)]
    want = sha256(det_bytes(n))
    for p in procs:
        out, _ = p.communicate(timeout=60)
        eq(p.returncode, 0, "curl exit")
        eq(sha256(out), want, "sha256")
    # every pipe used went back to the per-thread cache (at most 16 per thread, 2 fds each)
    pipes = pipe_fds(gh.proc.pid)
    diag("pipe fds open after the downloads: %d" % pipes)
    check(pipes <= 8 * 2 + 4, "pipe fds open: %d" % pipes)


@test("clients that vanish in the middle of large bodies leave no pipe or origin connection behind")
def t():
    o, gh = proxy()
    before = pipe_fds(gh.proc.pid)
    for i in range(30):
        s = socket.create_connection(("127.0.0.1", gh.port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: t\r\n\r\n" % (4 * 1000 * 1000))
        s.recv(1000)
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        s.close()
    # the proxy sees each close on its next splice to the client; pipes with bytes left are closed
    wait_until(lambda: pipe_fds(gh.proc.pid) <= before + 2 * 2, 10, "pipes released")
    r = http_get(gh.port, "/bytes/%d" % 200000)
    eq(sha256(r.body), sha256(det_bytes(200000)), "a later download is intact")


@test("origin closes in the middle of a large body: the client gets a truncated response, never a complete one")
def t():
    o, gh = proxy()
    with Conn(gh.port, timeout=20) as c:
        c.send(build_request("GET", "/malformed/short-large-body"))
        head = parse_head(c.read_head())
        eq(head.status, 200, "status (the head was already forwarded)")
        eq(head.header("content-length"), "1000000", "Content-Length")
        body = c.read_all(timeout=10)
        diag("got %d of 1000000 body bytes before the close" % len(body))
        check(len(body) < 1000000, "the body cannot be complete")
        eq(body, det_bytes(300000)[:len(body)], "the bytes that came are the origin's")
    gh.wait_stderr(r"upstream closed the connection in the middle of the response", 5)


@test("origin sends bytes after a large framed body: that connection is not reused")
def t():
    o, gh = proxy()
    with Conn(gh.port, timeout=20) as c:
        for n in (100 * 1024, 3 * 1000 * 1000):
            r = c.request("GET", "/overlong/%d" % n)
            eq(r.status, 200, "status")
            eq(sha256(r.body), sha256(det_bytes(n)), "sha256 of the framed body")
            r2 = c.request("GET", "/echo?after=%d" % n)
            eq(r2.status, 200, "the next request is answered normally, not from the stray bytes")
            check(r2.header("x-origin-conn") != r.header("x-origin-conn"),
                  "the next request must go on a new upstream connection (conn %s both times)"
                  % r.header("x-origin-conn"))
    eq(len([e for e in o.errors]), 0, "origin parse errors")


@test("send_timeout closes a client that stops reading a large body (splice path)")
def t():
    o = shared("origin", lambda: Origin(name="o"))
    o.reset()
    gh = Gatehouse(conf_proxy(o, server_extra="    send_timeout 1s;\n"))
    n = 50 * 1000 * 1000
    s = socket.create_connection(("127.0.0.1", gh.port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: t\r\n\r\n" % n)
    s.recv(100)
    # stop reading: the socket buffers and the pipe fill up, and send_timeout runs out
    gh.wait_stderr(r"response not read within send_timeout: connection reset", 15)
    # the proxy resets rather than leaving megabytes queued for a reader that does not read
    got = 0
    s.settimeout(10)
    reset = False
    try:
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            got += len(b)
    except ConnectionResetError:
        reset = True
    s.close()
    diag("read %d bytes after the stall, then %s" % (got, "a reset" if reset else "EOF"))
    check(reset, "the stalled connection should be reset")
    check(got < n // 2, "the proxy should have given up on the stalled client (%d bytes came)" % got)
    wait_until(lambda: pipe_fds(gh.proc.pid) <= 4, 5, "pipe closed")




def _pause_then_read(port, n, pause):
    """GET /bytes/n, read 1 MB, stop reading for `pause` seconds, then read the rest."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: t\r\n\r\n" % n)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, body = buf.split(b"\r\n\r\n", 1)
    chunks = [body]
    got = len(body)
    paused = False
    while got < n:
        if not paused and got >= 1000000:
            time.sleep(pause)
            paused = True
        b = s.recv(1 << 20)
        if not b:
            break
        chunks.append(b)
        got += len(b)
    s.close()
    return head, b"".join(chunks)


for _mode in ("on", "off"):
    @test("a client pausing longer than read_timeout is not blamed on the origin (splice %s)" % _mode)
    def t(mode=_mode):
        o = shared("origin", lambda: Origin(name="o"))
        o.reset()
        gh = Gatehouse(conf_proxy(o, server_extra="    read_timeout 1s;\n    send_timeout 20s;\n"
                                  "    splice %s;\n" % mode))
        n = 12 * 1000 * 1000
        head, body = _pause_then_read(gh.port, n, 3)
        check(head.startswith(b"HTTP/1.1 200"), "status line %r" % head[:40])
        eq(len(body), n, "body length (a 504 mid-response would cut it)")
        eq(sha256(body), sha256(det_bytes(n)), "sha256")
        check(not re.search(r"stalled", gh.stderr()), "no 'upstream stalled' in the error log")


# ---- request bodies --------------------------------------------------------------------------

UP_SIZES = (1000, 16 * 1024 - 1, 16 * 1024 + 1, 70000, 300 * 1024, 2 * 1000 * 1000 + 5)


for _mode in ("on", "off"):
    @test("uploads of every size around the splice threshold reach the origin intact (splice %s)"
          % _mode)
    def t(mode=_mode):
        o, gh = proxy("" if mode == "on" else "    splice off;\n")
        with Conn(gh.port, timeout=30) as c:
            for n in UP_SIZES:
                body = det_bytes(n, seed=n)
                r = c.request("POST", "/upload", body=body)
                eq(r.status, 200, "status for %d bytes" % n)
                d = r.json()
                eq((d["length"], d["sha256"]), (n, sha256(body)), "body at the origin, %d bytes" % n)
        eq(len({q.conn for q in o.requests}), 1, "one upstream connection for all uploads")


@test("a request pipelined behind a large body is not swallowed by the splice")
def t():
    o, gh = proxy()
    body = det_bytes(300000, seed=3)
    with Conn(gh.port, timeout=30) as c:
        c.send(build_request("POST", "/upload", body=body) + build_request("GET", "/echo?second"))
        r1 = c.read_response()
        eq(r1.status, 200, "first status")
        eq(r1.json()["sha256"], sha256(body), "first body at the origin")
        r2 = c.read_response()
        eq(r2.status, 200, "second status")
        eq(r2.json()["target"], "/echo?second", "second request as the origin saw it")


@test("clients gone in the middle of large uploads: 400 logged, origin never sees a complete body, "
      "no pipe leaked")
def t():
    o, gh = proxy()
    before = pipe_fds(gh.proc.pid)
    for i in range(10):
        s = socket.create_connection(("127.0.0.1", gh.port), timeout=10)
        s.sendall(b"POST /upload?cut HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n")
        s.sendall(det_bytes(400000))
        time.sleep(0.1)
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        s.close()
    gh.wait_stderr(r"client closed the connection in the middle of the request body", 10)
    # a pipe with bytes left in it is closed, an empty one is cached for the next body: at most
    # one per worker thread is left over, however many uploads were cut
    wait_until(lambda: pipe_fds(gh.proc.pid) <= before + 2 * 2, 5, "the pipes released")
    check(not [q for q in o.requests if q.target == "/upload?cut" and q.body_complete],
          "origin must not see a complete body")


@test("client_body_timeout applies to a large upload that stalls (splice path)")
def t():
    o = shared("origin", lambda: Origin(name="o"))
    o.reset()
    gh = Gatehouse(conf_proxy(o, server_extra="    client_body_timeout 1s;\n"))
    with Conn(gh.port, timeout=10) as c:
        c.send(b"POST /upload?stall HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n")
        c.send(det_bytes(300000))
        gh.wait_stderr(r"request body not received in time", 10)
        r = c.read_response()
        eq(r.status, 408, "status of the answer to the stalled upload")
        eq((r.header("connection") or "").lower(), "close", "Connection")
        check(c.wait_closed(5), "the connection is closed after the 408")
    check(not [q for q in o.requests if q.target == "/upload?stall" and q.body_complete],
          "origin must not see a complete body")


run()
