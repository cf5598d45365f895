#!/usr/bin/env python3
"""Behaviour pinned exactly where other files accept several outcomes: the 408 of a stalled head
on a kept-alive connection, the keep-alive race retry (the pooled connection really is reused, a
GET is retried once and only once, a POST is never retried), connect_timeout against an origin
that never completes the handshake, and read_timeout against an origin that stalls mid-body
(copy path and splice path).

The origins here are scripted raw sockets, independent of origin.py, so what each connection saw
is known exactly."""

import select
import socket
import threading

from ghtest import *

import ghtest as _gh


class ScriptedOrigin:
    """A raw origin on 127.0.0.1: handler(sock, reader, conn_index) runs once per accepted
    connection (index from 1). Every request head read through a reader is recorded with its
    connection index in .seen as (conn_index, request line)."""

    def __init__(self, handler):
        self.handler = handler
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = 0
        self.seen = []
        self.errors = []
        self.closed = []  # indexes of connections whose handler has returned (socket closed)
        self.stopping = threading.Event()
        self.socks = []
        _gh._register(self)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                self.conns += 1
                idx = self.conns
                self.socks.append(s)
            threading.Thread(target=self._serve, args=(s, idx), daemon=True).start()

    def _serve(self, s, idx):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(20)
        try:
            self.handler(s, _Reader(s, self, idx), idx)
        except Exception as e:  # noqa: B902 - reported in diagnostics
            self.errors.append("conn %d: %r" % (idx, e))
        finally:
            try:
                s.close()
            except OSError:
                pass
            with self.lock:
                self.closed.append(idx)

    def requests(self, line_part=""):
        with self.lock:
            return [(i, ln) for i, ln in self.seen if line_part in ln]

    def cleanup(self):
        self.stopping.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return None

    def diagnostics(self):
        return ["--- scripted origin :%d: %d conns, requests %r, errors %r"
                % (self.port, self.conns, self.seen[-10:], self.errors[-5:])]


class _Reader:
    def __init__(self, s, owner, idx):
        self.s = s
        self.owner = owner
        self.idx = idx
        self.buf = b""

    def _fill(self):
        b = self.s.recv(65536)
        if not b:
            raise EOFError("peer closed")
        self.buf += b

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n\r\n") + 4
        head, self.buf = self.buf[:i], self.buf[i:]
        with self.owner.lock:
            self.owner.seen.append((self.idx, head.split(b"\r\n", 1)[0].decode("latin-1")))
        return head

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_request(self):
        """Read one request head and its Content-Length body; return the head."""
        head = self.read_head()
        m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        if m:
            self.read_exact(int(m.group(1)))
        return head


def ok_response(body, idx):
    return (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Conn: %d\r\n\r\n" % (len(body), idx)
            + body)


def scripted_proxy(handler, server_extra="", top_extra="threads 1;\n"):
    so = ScriptedOrigin(handler)
    gh = Gatehouse(conf_proxy(so.port, server_extra=server_extra, top_extra=top_extra))
    return so, gh


def read_to_close(c, timeout):
    """Everything the peer sends until it closes (EOF or reset); fail if it stays open."""
    c.sock.settimeout(timeout)
    data = c.buf
    c.buf = b""
    try:
        while True:
            b = c.sock.recv(65536)
            if not b:
                break
            data += b
    except socket.timeout:
        raise AssertionError("connection still open after %ss (got %d bytes)"
                             % (timeout, len(data))) from None
    except OSError:
        pass
    return data


# ---------------------------------------------------------------------------------------------
# client-side timeouts, exactly
# ---------------------------------------------------------------------------------------------


@test("a partial second head on a kept-alive connection gets exactly a 408 after "
      "client_header_timeout (not the longer keepalive_timeout), then the close")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, server_extra="    client_header_timeout 1s;\n"
                                              "    keepalive_timeout 30s;"))
    with Conn(gh.port) as c:
        eq(c.request("GET", "/echo?first").status, 200, "first request")
        c.send(b"GET /echo?second HTTP/1.1\r\nHost: a.test\r\nX-Half: ")
        data = read_to_close(c, 8)
    i = data.find(b"\r\n\r\n")
    check(i >= 0, "want a 408 response before the close, got %r" % data[:200])
    r = parse_head(data[:i + 4])
    eq(r.status, 408, "status")
    eq((r.header("connection") or "").lower(), "close", "Connection")
    eq(len(data) - i - 4, int(r.header("content-length")), "body bytes, then nothing")
    eq([q.target for q in o.requests], ["/echo?first"], "requests the origin saw")
    gh.wait_stderr(r"408: request head not received in time", 5)


# ---------------------------------------------------------------------------------------------
# the keep-alive race: reuse, retry once, never retry a POST
# ---------------------------------------------------------------------------------------------


def race_origin(fresh_answers=True):
    """Connection 1 answers its first request keep-alive (no Connection: close), then reads the
    next request whole and closes without answering: the origin closed an idle keep-alive
    connection just as it was reused. Later connections answer every request (or, with
    fresh_answers False, behave like connection 1 once more: read a request, close)."""

    def h(s, rd, idx):
        if idx == 1:
            rd.read_request()
            s.sendall(ok_response(b"first", idx))
            rd.read_request()
            return  # close, no answer
        if not fresh_answers:
            rd.read_request()
            return
        while True:
            try:
                rd.read_request()
            except EOFError:
                return
            s.sendall(ok_response(b"fresh", idx))

    return h


@test("keep-alive race: a GET that meets the origin's close on the reused connection is "
      "retried once on a fresh one; the client gets 200")
def t():
    so, gh = scripted_proxy(race_origin())
    with Conn(gh.port) as c:
        r1 = c.request("GET", "/one")
        eq((r1.status, r1.body, r1.header("x-conn")), (200, b"first", "1"), "first response")
        r2 = c.request("GET", "/two")
        eq((r2.status, r2.body, r2.header("x-conn")), (200, b"fresh", "2"),
           "second response (retried on a new origin connection)")
        check(c.is_open(0.1), "client connection stays open")
    # the second request reached the pooled connection 1 (so it was reused), then connection 2
    eq(so.requests(), [(1, "GET /one HTTP/1.1"), (1, "GET /two HTTP/1.1"),
                       (2, "GET /two HTTP/1.1")], "requests per origin connection")
    eq(so.conns, 2, "origin connections")


@test("keep-alive race: the retry happens once only; a fresh connection that fails too is a 502")
def t():
    so, gh = scripted_proxy(race_origin(fresh_answers=False))
    with Conn(gh.port) as c:
        eq(c.request("GET", "/one").status, 200, "first request")
        r = c.request("GET", "/two")
        eq(r.status, 502, "status after the retry failed as well")
        eq(r.header("server"), "gatehouse", "generated answer")
    eq(so.requests(), [(1, "GET /one HTTP/1.1"), (1, "GET /two HTTP/1.1"),
                       (2, "GET /two HTTP/1.1")], "requests per origin connection")
    eq(so.conns, 2, "origin connections (one retry, no more)")


@test("keep-alive race: a POST with a body on the reused connection is not retried: 502, "
      "sent once")
def t():
    so, gh = scripted_proxy(race_origin())
    with Conn(gh.port) as c:
        eq(c.request("GET", "/one").status, 200, "first request")
        r = c.request("POST", "/post", body=b"p" * 1000)
        eq(r.status, 502, "status of a non-idempotent request on a connection the origin closed")
        eq(r.header("server"), "gatehouse", "generated answer")
    eq(so.requests(), [(1, "GET /one HTTP/1.1"), (1, "POST /post HTTP/1.1")],
       "requests per origin connection (the POST only once, on the reused connection)")
    eq(so.conns, 1, "origin connections")
    gh.wait_stderr(r"502: upstream (closed the connection|connection reset) before responding", 5)


@test("origin closes its idle keep-alive connection a moment after answering (no Connection: "
      "close): GETs sent before, around and after that close all get 200")
def t():
    def h(s, rd, idx):
        rd.read_request()
        s.sendall(ok_response(b"x%d" % idx, idx))
        time.sleep(0.05)  # then close, unannounced, whatever arrived meanwhile

    so, gh = scripted_proxy(h)
    gaps = [0.0, 0.03, 0.05, 0.07, 0.1] * 2
    with Conn(gh.port) as c:
        for i, gap in enumerate(gaps):
            r = c.request("GET", "/n%d" % i)
            eq(r.status, 200, "request %d (sent %.2fs after the previous answer)"
               % (i, gaps[i - 1] if i else 0))
            time.sleep(gap)
    diag("origin connections: %d for %d requests" % (so.conns, len(gaps)))
    check(so.conns >= len(gaps), "each origin connection answers one request")


# ---------------------------------------------------------------------------------------------
# connect_timeout, read_timeout
# ---------------------------------------------------------------------------------------------


class BlackHole:
    """A loopback port where TCP handshakes never complete: a listening socket with backlog 0
    whose accept queue is already full (and never accepted from) makes the kernel drop new SYNs,
    so connect() stays in SYN-SENT."""

    def __init__(self):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(0)
        self.port = self.lsock.getsockname()[1]
        self.fillers = []
        _gh._register(self)
        for _ in range(8):
            f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            f.setblocking(False)
            f.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(f)
            time.sleep(0.02)
            if not self._completes(0.3):
                return
        raise Skip("could not fill the accept queue of a backlog-0 listener")

    def _completes(self, wait):
        p = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        p.setblocking(False)
        p.connect_ex(("127.0.0.1", self.port))
        try:
            _, w, _ = select.select([], [p], [], wait)
            return bool(w) and p.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        finally:
            p.close()

    def cleanup(self):
        for s in self.fillers + [self.lsock]:
            s.close()
        return None

    def diagnostics(self):
        return ["--- black hole :%d (%d fillers)" % (self.port, len(self.fillers))]


@test("connect_timeout 1s: an origin whose handshake never completes gives a 504, and the error "
      "log names the connect timeout")
def t():
    bh = BlackHole()
    gh = Gatehouse(conf_proxy(bh.port, top_extra="threads 1;\n",
                              server_extra="    connect_timeout 1s;\n"
                                           "    first_byte_timeout 30s;"))
    with Conn(gh.port, timeout=20) as c:
        t0 = time.monotonic()
        r = c.request("GET", "/never")
        diag("answered after %.2fs" % (time.monotonic() - t0))
    eq(r.status, 504, "status")
    eq(r.header("server"), "gatehouse", "generated answer")
    check(str(bh.port) not in r.body.decode("latin-1"), "the page names no origin address")
    gh.wait_stderr(r"upstream 127\.0\.0\.1:%d: connect timed out" % bh.port, 5)
    gh.wait_stderr(r"504: upstream connect timed out", 5)


def stall_mid_body(cl, sent):
    """An origin that sends a head with Content-Length `cl`, `sent` body bytes, then nothing
    (the connection stays open until the test ends)."""

    def h(s, rd, idx):
        rd.read_request()
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % cl + det_bytes(sent))
        rd.owner.stopping.wait(60)

    return h


for _cl, _sent in ((5000, 1000), (1000 * 1000, 300 * 1000)):
    for _mode in ("on", "off"):
        @test("read_timeout 1s: origin stalls after %d of %d body bytes: the client gets the head "
              "and exactly those bytes, then the close (splice %s)" % (_sent, _cl, _mode))
        def t(cl=_cl, sent=_sent, mode=_mode):
            so, gh = scripted_proxy(stall_mid_body(cl, sent),
                                    server_extra="    read_timeout 1s;\n    splice %s;" % mode)
            with Conn(gh.port, timeout=20) as c:
                c.send(build_request("GET", "/stall-mid-body"))
                head = parse_head(c.read_head())
                eq(head.status, 200, "status (the head was forwarded before the stall)")
                eq(head.header("content-length"), str(cl), "Content-Length")
                body = read_to_close(c, 10)
            eq(len(body), sent, "body bytes before the close")
            eq(sha256(body), sha256(det_bytes(sent)), "the bytes are the origin's")
            gh.wait_stderr(r"504: upstream stalled in the middle of the response", 5)


run()
