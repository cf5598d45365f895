#!/usr/bin/env python3
"""Edges found by an adversarial review of the splice work: bytes past a framed body at an exact
read boundary, a 101 in the middle of a spliced upload, send_timeout against a client that sends
but never reads, first_byte_timeout against a slow upload. Each runs with splice on and off."""

import threading

import ghtest
from ghtest import *


class RawOrigin:
    """A listening socket; handler(sock, conn_index) runs in a thread per connection."""

    def __init__(self, handler, rcvbuf=None):
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.handler = handler
        self.conns = []
        self.errors = []
        self.stopping = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        i = 0
        while not self.stopping:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            i += 1
            self.conns.append(c)
            threading.Thread(target=self._one, args=(c, i), daemon=True).start()

    def _one(self, c, i):
        try:
            self.handler(c, i)
        except Exception as e:  # reported by the test that cares
            self.errors.append("conn %d: %r" % (i, e))

    def cleanup(self):
        self.stopping = True
        self.ls.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass

    def diagnostics(self):
        return ["raw origin :%d: %d connections, errors %r" % (self.port, len(self.conns), self.errors)]


def raw_origin(handler, **kw):
    ro = RawOrigin(handler, **kw)
    ghtest._register(ro)  # closed after the test, its diagnostics shown if it fails
    return ro


def read_head(sock, buf=b""):
    while b"\r\n\r\n" not in buf:
        b = sock.recv(65536)
        if not b:
            raise EOFError("end of stream inside a head")
        buf += b
    i = buf.index(b"\r\n\r\n") + 4
    return buf[:i], buf[i:]


STRAY = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Stray: yes\r\n\r\nSTRAY"

for _mode, _total in (("on", 16 * 1024), ("off", 64 * 1024), ("on", 64 * 1024)):
    @test("bytes past a framed body that ends exactly at a read boundary (%d bytes, splice %s) are "
          "never served as the next response" % (_total, _mode))
    def t(mode=_mode, total=_total):
        def handler(c, i):
            buf = b""
            n = 0
            while True:
                try:
                    head, buf = read_head(c, buf)
                except EOFError:
                    return
                n += 1
                if head.startswith(b"GET /first"):
                    # head + body exactly `total` bytes, then a whole stray response in the same send
                    h = b"HTTP/1.1 200 OK\r\nX-Conn: %d\r\nContent-Length: " % i
                    blen = next(b for b in range(total, 0, -1)
                                if len(h) + len(b"%d\r\n\r\n" % b) + b == total)
                    c.sendall(h + b"%d\r\n\r\n" % blen + b"b" * blen + STRAY)
                else:
                    c.sendall(b"HTTP/1.1 200 OK\r\nX-Conn: %d\r\nContent-Length: 4\r\n\r\nREAL" % i)

        ro = raw_origin(handler)
        gh = Gatehouse(conf_proxy(ro.port, server_extra="    splice %s;\n" % mode))
        with Conn(gh.port) as c:
            r1 = c.request("GET", "/first")
            eq(r1.status, 200, "first status")
            r2 = c.request("GET", "/second")
        diag("first from origin conn %s, second from conn %s" % (r1.header("x-conn"), r2.header("x-conn")))
        eq(r2.header("x-stray"), None, "the second answer must not be the stray bytes")
        eq(r2.body, b"REAL", "second body")


for _mode in ("off", "on"):
    @test("a 101 that comes while a large request body is in flight: the tunnel gets every byte "
          "in order (splice %s)" % _mode, timeout=60)
    def t(mode=_mode):
        got = {}
        done = threading.Event()

        def handler(c, i):
            head, rest = read_head(c)
            time.sleep(1.0)  # the body fills the socket buffers and the proxy's pipe meanwhile
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n")
            data = [rest]
            c.settimeout(3)
            try:
                while True:
                    b = c.recv(1 << 20)
                    if not b:
                        break
                    data.append(b)
                    if b"".join(data[-2:]).endswith(b"TAIL"):
                        break
            except socket.timeout:
                pass
            got["data"] = b"".join(data)
            c.sendall(b"COUNT %d\n" % len(got["data"]))
            done.set()

        ro = raw_origin(handler, rcvbuf=8192)
        gh = Gatehouse(conf_proxy(ro.port, server_extra="    splice %s;\n" % mode))
        body = det_bytes(6 * 1000 * 1000, seed=7)
        s = socket.create_connection(("127.0.0.1", gh.port), timeout=20)
        s.sendall(b"POST /up HTTP/1.1\r\nHost: t\r\nUpgrade: foo\r\nConnection: upgrade\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        for k in range(0, len(body), 500000):
            s.sendall(body[k:k + 500000])
        s.sendall(b"TAIL")
        head, rest = read_head(s)
        check(head.startswith(b"HTTP/1.1 101"), "101 expected, got %r" % head[:40])
        done.wait(15)
        s.close()
        d = got.get("data", b"")
        want = body + b"TAIL"
        if d != want:
            i = next((k for k in range(min(len(d), len(want))) if d[k] != want[k]), min(len(d), len(want)))
            diag("origin got %d bytes, want %d; first difference at byte %d" % (len(d), len(want), i))
        check(d == want, "the origin must get the client's bytes intact and in order")


for _mode in ("on", "off"):
    @test("send_timeout: a client that keeps sending but never reads is still reset (splice %s)" % _mode,
          timeout=40)
    def t(mode=_mode):
        o = shared("origin", lambda: Origin(name="o"))
        gh = Gatehouse(conf_proxy(o, server_extra="    send_timeout 1s;\n    splice %s;\n" % mode))
        s = socket.create_connection(("127.0.0.1", gh.port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: t\r\n\r\n" % (50 * 1000 * 1000))
        s.recv(100)
        s.sendall(b"GET /echo HTTP/1.1\r\n")  # the start of a pipelined head, then a byte at a time
        t0 = time.monotonic()
        reset = False
        while time.monotonic() - t0 < 10 and not reset:
            try:
                s.sendall(b"X")
            except OSError:
                reset = True
                break
            time.sleep(0.3)
            reset = "response not read within send_timeout" in gh.stderr()
        s.close()
        diag("reset after %.1fs" % (time.monotonic() - t0) if reset else "never reset (10s)")
        check(reset, "the connection must be reset although the client kept sending")


for _mode in ("on", "off"):
    @test("first_byte_timeout counts from the end of an upload, not from the head (splice %s)" % _mode,
          timeout=30)
    def t(mode=_mode):
        o = shared("origin", lambda: Origin(name="o"))
        gh = Gatehouse(conf_proxy(o, server_extra="    first_byte_timeout 2s;\n    splice %s;\n" % mode))
        n = 500000
        body = det_bytes(n, seed=3)
        with Conn(gh.port, timeout=15) as c:
            c.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % n)
            for k in range(0, n, 25000):  # about 4 s in all, twice the timeout
                c.send(body[k:k + 25000])
                time.sleep(0.2)
            r = c.read_response()
        eq(r.status, 200, "status (a 504 would blame the origin for the client's slow upload)")
        eq(r.json()["sha256"], sha256(body), "body at the origin")


run()
