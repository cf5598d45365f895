#!/usr/bin/env python3
"""Adversarial edge cases: odd TCP splits of pipelined requests, absolute-form targets, HTTP/1.0
keep-alive, 1xx and bodyless responses, header limits, half-close and aborted clients,
misbehaving origins, weighted balancing, `return`, routing, keep-alive interplay, concurrency.

Each test documents behaviour a user relies on (RFC 9110/9112, or what nginx/HAProxy do);
a failing one is a regression test for a proxy bug, see the comment above it."""

import socket
import threading

from ghtest import *

import ghtest as _gh


def proxy(server_extra="", top_extra="threads 1;\n"):
    o = Origin(name="o")
    gh = Gatehouse(conf_proxy(o, server_extra=server_extra, top_extra=top_extra))
    return o, gh


def send_parts(c, parts, gap=0.05):
    """Send each part as its own TCP segment (TCP_NODELAY + a pause in between)."""
    for p in parts:
        c.send(p)
        time.sleep(gap)


def finish(gh):
    """Stop a gatehouse before the test ends; fail on a bad exit or a sanitizer report."""
    problem = gh.problem()
    check(problem is None, problem)


def conn_hdr(r):
    return (r.header("connection") or "").lower()


class RawOrigin:
    """A scripted origin: handler(sock, reader, conn_index) runs once per accepted connection.
    reader has read_head() -> bytes and read_exact(n)."""

    def __init__(self, handler):
        self.handler = handler
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.conns = 0
        self.heads = []  # every request head read through the reader
        self.errors = []
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
            self.conns += 1
            self.socks.append(s)
            threading.Thread(target=self._serve, args=(s, self.conns), daemon=True).start()

    def _serve(self, s, idx):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(20)
        rd = _Rd(s, self)
        try:
            self.handler(s, rd, idx)
        except Exception as e:  # noqa: B902
            self.errors.append("conn %d: %r" % (idx, e))
        finally:
            try:
                s.close()
            except OSError:
                pass

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
        return ["--- raw origin :%d: %d conns, heads %r, errors %r"
                % (self.port, self.conns, [h[:60] for h in self.heads[-8:]], self.errors[-5:])]


class _Rd:
    def __init__(self, s, owner):
        self.s = s
        self.buf = b""
        self.owner = owner

    def _fill(self):
        b = self.s.recv(65536)
        if not b:
            raise EOFError("peer closed")
        self.buf += b

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n\r\n") + 4
        h, self.buf = self.buf[:i], self.buf[i:]
        self.owner.heads.append(h)
        return h

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def head_cl(head):
    m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    return int(m.group(1)) if m else 0


def raw_proxy(handler, server_extra="", top_extra="threads 1;\n"):
    ro = RawOrigin(handler)
    gh = Gatehouse(conf_proxy(ro.port, server_extra=server_extra, top_extra=top_extra))
    return ro, gh


# ---------------------------------------------------------------------------------------------
# pipelining and TCP splits
# ---------------------------------------------------------------------------------------------


@test("pipelining: CL-body POST then GET, head split mid-line, body split, GET over 3 packets")
def t():
    o, gh = proxy()
    body = det_bytes(3000, seed=5)
    post = build_request("POST", "/upload?p=1", body=body)
    get = build_request("GET", "/bytes/1234")
    hl = post.index(b"\r\n\r\n") + 4
    parts = [post[:7], post[7:30], post[30:hl + 10], post[hl + 10:hl + 1500],
             post[hl + 1500:] + get[:5], get[5:20], get[20:]]
    with Conn(gh.port) as c:
        send_parts(c, parts)
        r1 = c.read_response()
        r2 = c.read_response()
        eq(r1.status, 200, "POST status")
        eq(r1.json()["sha256"], sha256(body), "POST body at origin")
        eq(r2.body, det_bytes(1234), "GET body")
        # now two whole requests in one packet, the second with a body split from its head
        b2 = b"second body"
        p2 = build_request("POST", "/upload?p=2", body=b2)
        c.send(build_request("GET", "/echo?g=2") + p2[:-4])
        time.sleep(0.1)
        c.send(p2[-4:])
        eq(c.read_response().json()["target"], "/echo?g=2", "3rd target")
        eq(c.read_response().json()["sha256"], sha256(b2), "4th body")
    eq([q.target for q in o.requests], ["/upload?p=1", "/bytes/1234", "/echo?g=2", "/upload?p=2"],
       "origin order")


@test("pipelining: a chunked POST whose last-chunk is split from the next request's head")
def t():
    o, gh = proxy()
    chunked = (b"POST /upload?c=1 HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6\r\n world\r\n0\r")
    rest = b"\n\r\n" + build_request("GET", "/echo?after")
    with Conn(gh.port) as c:
        send_parts(c, [chunked[:60], chunked[60:], rest[:1], rest[1:9], rest[9:]])
        r1 = c.read_response()
        r2 = c.read_response()
    eq(r1.json()["sha256"], sha256(b"hello world"), "chunked body at origin")
    eq(r2.json()["target"], "/echo?after", "pipelined GET after the chunked body")


@test("pipelining: first request rejected (400): later ones in the same packet never forwarded")
def t():
    o, gh = proxy()
    raw = (b"GET /echo?bad HTTP/1.1\r\nHost: a.test\r\nX-A: a\r\n folded\r\n\r\n" +
           build_request("GET", "/echo?smuggled-1") +
           build_request("POST", "/upload?smuggled-2", body=b"x" * 10))
    resp, allb, closed = raw_exchange(gh.port, raw, timeout=5)
    check(resp is not None, "a response: %r" % allb[:200])
    eq(resp.status, 400, "status")
    eq(allb.count(b"HTTP/1.1 "), 1, "exactly one response")
    check(closed, "connection closed after the 400")
    time.sleep(0.2)
    eq(o.requests, [], "origin saw nothing")


@test("pipelining: 3000 GETs sent without reading, then read: all answered in order")
def t():
    o, gh = proxy()
    n = 3000
    data = b"".join(build_request("GET", "/bytes/%d" % (i % 50)) for i in range(n))
    with Conn(gh.port, timeout=20) as c:
        th = threading.Thread(target=lambda: c.sock.sendall(data), daemon=True)
        th.start()
        time.sleep(0.5)  # let the proxy fill its output and stop reading
        for i in range(n):
            r = c.read_response()
            if r.body != det_bytes(i % 50):
                raise AssertionError("response %d: %r" % (i, r))
        th.join(5)
    eq(len(o.requests), n, "requests at origin")


@test("Connection: close request with a pipelined request behind it: only the first forwarded")
def t():
    o, gh = proxy()
    raw = (build_request("GET", "/echo?first", headers=[("Connection", "close")]) +
           build_request("GET", "/echo?second"))
    resp, allb, closed = raw_exchange(gh.port, raw, timeout=5)
    eq(allb.count(b"HTTP/1.1 200"), 1, "one response")
    check(closed, "closed")
    eq([q.target for q in o.requests], ["/echo?first"], "origin requests")


@test("origin dribbles its head and chunked body in tiny segments (split CRLFs and sizes)")
def t():
    resp = (b"HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n1a\r\n" + b"b" * 26 + b"\r\n0\r\nX-Trailer: t\r\n\r\n")

    def h(s, rd, idx):
        while True:
            try:
                rd.read_head()
            except EOFError:
                return
            for i in range(0, len(resp), 3):
                s.sendall(resp[i:i + 3])
                time.sleep(0.003)
    ro, gh = raw_proxy(h)
    with Conn(gh.port) as c:
        for i in range(2):
            r = c.request("GET", "/d")
            eq(r.body, b"hello" + b"b" * 26, "body %d" % i)
            eq(r.header("x-a"), "1", "header")
    eq(ro.conns, 1, "upstream connection reused")


@test("client resets (RST) while the origin has not answered: upstream connection released")
def t():
    # A client that aborts while the origin thinks must not pin an upstream connection until
    # first_byte_timeout (nginx: proxy_ignore_client_abort off closes it at once; HAProxy with
    # abortonclose likewise). An RST is an unambiguous abort (unlike a FIN, a half-close).
    o, gh = proxy()
    for i in range(3):
        s = socket.create_connection(("127.0.0.1", gh.port))
        s.sendall(build_request("GET", "/stall?%d" % i))
        o.wait_requests(i + 1, 5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    t0 = time.monotonic()
    ok = True
    try:
        wait_until(lambda: len(o.open_conns) == 0, 3, "origin connections to be closed")
    except AssertionError:
        ok = False
    diag("origin connections still open after %.1fs: %d" % (time.monotonic() - t0,
                                                            len(o.open_conns)))
    check(ok, "upstream connections of aborted clients still open")


@test("origin head of nearly 64 KiB with a close-delimited body, slow client: no crash")
def t():
    # resp_pump BODY_CLOSE computes `room - 32` with room = GH_BUF_SIZE - client head length;
    # a client head within 32 bytes of 64 KiB makes it wrap around, and the head plus body then
    # exceed the 64 KiB c->out that a short write stashes them into.
    body = b"B" * 100
    big = det_bytes(3000000)

    def origin_head(client_len):
        # client head = origin head + "Transfer-Encoding: chunked\r\n" + "Connection: close\r\n"
        want = client_len - 28 - 19
        base = b"HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\n"
        parts = []
        left = want - len(base) - 2
        i = 0
        while left > 0:
            n = min(12000, left)
            if left - n and left - n < 12:
                n = left - 12
            pre = b"X-F%d: " % i
            parts.append(pre + b"v" * (n - len(pre) - 2) + b"\r\n")
            left -= n
            i += 1
        h = base + b"".join(parts) + b"\r\n"
        assert len(h) == want, (len(h), want)
        return h

    def h(s, rd, idx):
        while True:
            try:
                head = rd.read_head()
            except EOFError:
                return
            m = re.match(rb"GET /big-head-(\d+)", head)
            if m:
                s.sendall(origin_head(int(m.group(1))) + body)
                time.sleep(0.2)
                return
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big)

    ro, gh = raw_proxy(h)
    for d in (1, 8, 20, 31):
        size = 65536 - d
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", gh.port))
        s.sendall(build_request("GET", "/bytes") +
                  build_request("GET", "/big-head-%d" % size, headers=[("Connection", "close")]))
        got = b""
        try:
            while True:
                b = s.recv(8192)
                if not b:
                    break
                got += b
                if len(got) < len(big):
                    time.sleep(0.0005)
        except OSError as e:
            diag("recv:", repr(e))
        s.close()
        check(gh.alive(), "gatehouse died on client head size %d" % size)
        second = got[got.find(b"\r\n\r\n") + 4 + len(big):]
        st = second[:12]
        check(st in (b"HTTP/1.1 200", b"HTTP/1.1 502"), "head %d: got %r" % (size, second[:40]))
        if st == b"HTTP/1.1 200":
            hl = second.find(b"\r\n\r\n") + 4
            out, rest = b"", second[hl:]
            while True:
                ln, _, rest = rest.partition(b"\r\n")
                n = int(ln, 16)
                if n == 0:
                    break
                out, rest = out + rest[:n], rest[n + 2:]
            eq(out, body, "head %d: body" % size)

# ---------------------------------------------------------------------------------------------
# request-target forms
# ---------------------------------------------------------------------------------------------


@test("absolute-form: origin gets origin-form and Host from the URI (RFC 9112 3.2.2)")
def t():
    o, gh = proxy()
    with Conn(gh.port) as c:
        c.send(b"GET http://backend.test:8080/p/a?q=1 HTTP/1.1\r\nHost: other.test\r\n\r\n")
        r = c.read_response()
    eq(r.status, 200, "status")
    d = r.json()
    eq(d["target"], "/p/a?q=1", "target at origin")
    hosts = [v for n, v in d["headers"] if n.lower() == "host"]
    eq(hosts, ["backend.test:8080"], "Host at origin")


@test("absolute-form without a path ('http://h?q'): origin gets '/?q', routed like '/'")
def t():
    # RFC 9112 3.2.2 / RFC 9110 4.2.3: an empty path is "/" -> the request is for "/?q" and
    # must be routed exactly like "GET /?q" (nginx normalises it before location matching).
    o = Origin(name="o")
    gh = Gatehouse(lambda g: "threads 1;\n" + BASE_TOP + """server {
    listen 127.0.0.1:%d;
    route / { proxy 127.0.0.1:%d; }
}
""" % (g.port, o.port))
    with Conn(gh.port) as c:
        c.send(b"GET http://h.test?q=1 HTTP/1.1\r\nHost: h.test\r\n\r\n")
        r = c.read_response()
        diag("http://h.test?q=1 ->", r.status, r.body[:120])
        eq(r.status, 200, "status of GET http://h.test?q=1 (route / proxies)")
        eq(r.json()["target"], "/?q=1", "target at origin")
        c.send(b"GET http://h.test HTTP/1.1\r\nHost: h.test\r\n\r\n")
        r = c.read_response()
        eq(r.status, 200, "status of GET http://h.test")
        eq(r.json()["target"], "/", "target at origin")


@test("absolute-form: server chosen by the URI authority, not the Host header")
def t():
    a = Origin(name="a")
    b = Origin(name="b")
    gh = Gatehouse(lambda g: "threads 1;\n" + BASE_TOP + """
server { listen 127.0.0.1:%d default; server_name a.test; proxy 127.0.0.1:%d; }
server { listen 127.0.0.1:%d; server_name b.test; proxy 127.0.0.1:%d; }
""" % (g.port, a.port, g.port, b.port))
    with Conn(gh.port) as c:
        c.send(b"GET http://b.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n")
        r = c.read_response()
    eq(r.header("x-origin-name"), "b", "server by URI authority")


@test("OPTIONS * reaches the origin as asterisk-form")
def t():
    o, gh = proxy()
    with Conn(gh.port) as c:
        c.send(b"OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n")
        r = c.read_response()
        eq(r.status, 200, "status")
        eq(r.json()["target"], "*", "target at origin")
        eq(c.request("GET", "/echo").status, 200, "keep-alive after OPTIONS *")


# ---------------------------------------------------------------------------------------------
# HTTP/1.0 clients
# ---------------------------------------------------------------------------------------------


@test("HTTP/1.0 keep-alive + CL response: Connection: keep-alive and the connection stays")
def t():
    o, gh = proxy()
    with Conn(gh.port) as c:
        for i in range(3):
            c.send(b"GET /bytes/%d HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\n\r\n"
                   % (100 + i))
            r = c.read_response()
            eq(r.body, det_bytes(100 + i), "body %d" % i)
            eq(conn_hdr(r), "keep-alive", "Connection in response %d" % i)
            check(r.header("transfer-encoding") is None, "no TE to a 1.0 client")
        check(c.is_open(0.3), "connection kept")


@test("HTTP/1.0 keep-alive + chunked origin: body close-delimited, no chunk framing, then close")
def t():
    o, gh = proxy()
    with Conn(gh.port) as c:
        c.send(b"GET /chunked/70000 HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\n\r\n")
        head = parse_head(c.read_head())
        eq(head.status, 200, "status")
        check(head.header("transfer-encoding") is None, "no Transfer-Encoding to a 1.0 client")
        check(head.header("content-length") is None, "no Content-Length (unknown)")
        check(conn_hdr(head) != "keep-alive", "must not promise keep-alive")
        body = c.read_all(timeout=10)
        eq(len(body), 70000, "body length")
        eq(body, det_bytes(70000), "body bytes")


@test("HTTP/1.0 keep-alive + `return`: generated answer says Connection: keep-alive too")
def t():
    # A 1.0 client only keeps a connection when the response says "Connection: keep-alive"
    # (RFC 9112 9.3 + Appendix C.2.2; nginx sends it, ab -k counts on it). Gatehouse does this
    # for proxied responses (build_client_head) but not for its own (conn_send_generated).
    gh = Gatehouse(lambda g: "threads 1;\n" + BASE_TOP + """server {
    listen 127.0.0.1:%d;
    route / { return 200 "hi\\n"; }
}
""" % g.port)
    with Conn(gh.port) as c:
        c.send(b"GET /x HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        eq(r.body, b"hi\n", "body")
        diag("response head:", r.raw_head)
        eq(conn_hdr(r), "keep-alive", "Connection header to a keep-alive 1.0 client")
        check(c.is_open(0.3), "connection kept")


# ---------------------------------------------------------------------------------------------
# responses: HEAD, 304, 1xx
# ---------------------------------------------------------------------------------------------


def bad_head_origin(delay):
    """Answers HEAD with Content-Length 5 AND a body (wrong), GET correctly."""

    def h(s, rd, idx):
        while True:
            try:
                head = rd.read_head()
            except EOFError:
                return
            rd.read_exact(head_cl(head))
            if head.startswith(b"HEAD"):
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
                if delay:
                    time.sleep(delay)
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!")
            else:
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Conn: %d\r\n\r\ngood" % idx)
    return h


@test("HEAD with an origin that wrongly sends a body: the body never reaches the next request")
def t():
    for delay in (0, 0.1):
        ro, gh = raw_proxy(bad_head_origin(delay))
        with Conn(gh.port) as c:
            r = c.request("HEAD", "/h")
            eq(r.status, 200, "HEAD status")
            eq(r.header("content-length"), "5", "HEAD Content-Length")
            time.sleep(0.3)
            for i in range(3):
                r = c.request("GET", "/g")
                eq(r.body, b"good", "GET %d after the bad HEAD (delay %s)" % (i, delay))
            check(c.is_open(0.1) and c.buf == b"", "no stray bytes on the client connection")
        finish(gh)


@test("304 with Content-Length from the origin: no body, Content-Length kept, keep-alive")
def t():
    def h(s, rd, idx):
        while True:
            try:
                head = rd.read_head()
            except EOFError:
                return
            if b"/304" in head.split(b"\r\n")[0]:
                s.sendall(b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 1234\r\n\r\n")
            else:
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    ro, gh = raw_proxy(h)
    with Conn(gh.port) as c:
        r = c.request("GET", "/304")
        eq(r.status, 304, "status")
        eq(r.header("content-length"), "1234", "CL of the selected representation (RFC 9110 8.6)")
        r = c.request("GET", "/next")
        eq(r.body, b"ok", "next response on the same connection")
        eq(c.buf, b"", "no stray bytes")


@test("103 Early Hints from the origin is forwarded to an HTTP/1.1 client (RFC 9110 15.2)")
def t():
    # RFC 9110 15.2: "A proxy MUST forward 1xx responses unless the proxy itself requested the
    # generation of the 1xx response." HAProxy forwards 103; so does nginx >= 1.29 (early_hints).
    # http1.c resp_pump drops every 1xx but 101 ("interim response: dropped").
    def h(s, rd, idx):
        while True:
            try:
                rd.read_head()
            except EOFError:
                return
            s.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n")
            time.sleep(0.05)
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
    ro, gh = raw_proxy(h)
    with Conn(gh.port) as c:
        c.send(build_request("GET", "/x"))
        r = c.read_response()
        eq(r.status, 200, "final status")
        eq(r.body, b"final", "final body")
        diag("interim:", [(i.status, i.headers) for i in r.interim])
        eq([i.status for i in r.interim], [103], "interim responses seen by the client")
        eq(r.interim[0].header("link"), "</s.css>; rel=preload", "Link of the 103")
    # a 1.0 client must not get it (RFC 9110 15.2: MUST NOT send 1xx to an HTTP/1.0 client)
    with Conn(gh.port) as c:
        c.send(b"GET /x HTTP/1.0\r\nHost: a.test\r\n\r\n")
        allb = c.read_all(timeout=5)
        check(allb.startswith(b"HTTP/1.1 200"), "1.0 client gets only the final response: %r"
              % allb[:80])


@test("100 Continue from the origin without Expect is not duplicated; final answer intact")
def t():
    def h(s, rd, idx):
        while True:
            try:
                head = rd.read_head()
            except EOFError:
                return
            s.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            rd.read_exact(head_cl(head))
            s.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
    ro, gh = raw_proxy(h)
    with Conn(gh.port) as c:
        r = c.request("POST", "/u", body=b"abc")
        eq(r.status, 201, "final status")
        eq(r.body, b"ok", "body")
        r = c.request("POST", "/u", body=b"abc")
        eq(r.status, 201, "again on the same connection")


# ---------------------------------------------------------------------------------------------
# request head limits and bytes
# ---------------------------------------------------------------------------------------------


@test("max_header_line (incl. CRLF) exactly fits; one more byte is 431; origin sees only the first")
def t():
    o, gh = proxy(server_extra="    max_header_line 1k;")
    name = "X-Long: "
    fit = "v" * (1024 - len(name) - 2)
    r = http_get(gh.port, "/echo?fit", headers=[("X-Long", fit)])
    eq(r.status, 200, "exactly max_header_line")
    got = [v for n, v in r.json()["headers"] if n == "X-Long"]
    eq(got, [fit], "value at origin")
    resp, allb, closed = raw_exchange(gh.port, build_request("GET", "/echo?over",
                                                             headers=[("X-Long", fit + "v")]))
    eq(resp.status if resp else None, 431, "one byte over")
    eq([q.target for q in o.requests], ["/echo?fit"], "origin requests")


@test("max_headers: exactly N fields pass (Host counts), N+1 is 431")
def t():
    o, gh = proxy(server_extra="    max_headers 20;")
    hs = [("X-H%d" % i, str(i)) for i in range(19)]  # + Host = 20
    r = http_get(gh.port, "/echo", headers=hs)
    eq(r.status, 200, "20 fields")
    eq(len([1 for n, v in r.json()["headers"] if n.startswith("X-H")]), 19, "all reached origin")
    resp, allb, closed = raw_exchange(gh.port, build_request("GET", "/echo",
                                                             headers=hs + [("X-H99", "x")]))
    eq(resp.status if resp else None, 431, "21 fields")


@test("99 small headers + Host under the default limits pass in order")
def t():
    o, gh = proxy()
    hs = [("X-S%02d" % i, "v%d" % i) for i in range(99)]
    r = http_get(gh.port, "/echo", headers=hs)
    eq(r.status, 200, "status")
    got = [(n, v) for n, v in r.json()["headers"] if n.startswith("X-S")]
    eq(got, hs, "headers at origin, in order")


@test("60 KB cookie: 431 with default limits; passes intact with max_header_line/head 64k")
def t():
    cookie = "c=" + "a" * (60 * 1024)
    o, gh = proxy()
    resp, allb, closed = raw_exchange(gh.port, build_request("GET", "/echo",
                                                             headers=[("Cookie", cookie)]))
    eq(resp.status if resp else None, 431, "default limits")
    check(closed, "closed after 431")
    eq(o.requests, [], "origin saw nothing")
    finish(gh)
    o2, gh2 = proxy(server_extra="    max_header_line 64k;\n    max_head_size 64k;")
    r = http_get(gh2.port, "/echo", headers=[("Cookie", cookie)])
    eq(r.status, 200, "raised limits")
    eq(o2.requests[0].header("cookie"), cookie, "cookie intact at origin")


@test("obs-text (0x80-0xff) and HTAB inside header values pass byte-exact (RFC 9110 5.5)")
def t():
    o, gh = proxy()
    val = b"caf\xc3\xa9\tand\x80\xff\tend"
    with Conn(gh.port) as c:
        c.send(b"GET /echo HTTP/1.1\r\nHost: a.test\r\nX-Bin: " + val + b"\r\n\r\n")
        r = c.read_response()
    eq(r.status, 200, "status")
    raw = o.requests[0].raw_head
    check(b"\r\nX-Bin: " + val + b"\r\n" in raw, "value at origin: %r" % raw)


# ---------------------------------------------------------------------------------------------
# clients that half-close or vanish
# ---------------------------------------------------------------------------------------------


@test("client half-closes (SHUT_WR) right after a GET and a POST: full responses still arrive")
def t():
    o, gh = proxy()
    with Conn(gh.port) as c:
        c.send(build_request("GET", "/bytes/1000000"))
        c.sock.shutdown(socket.SHUT_WR)
        r = c.read_response()
        eq(r.body, det_bytes(1000000), "GET body")
    body = det_bytes(200000, seed=3)
    with Conn(gh.port) as c:
        c.send(build_request("POST", "/upload", body=body))
        c.sock.shutdown(socket.SHUT_WR)
        r = c.read_response()
        eq(r.status, 200, "POST status")
        eq(r.json()["sha256"], sha256(body), "POST body at origin")
    with Conn(gh.port) as c:  # two pipelined, then FIN: both answered
        c.send(build_request("GET", "/bytes/10") + build_request("GET", "/bytes/20"))
        c.sock.shutdown(socket.SHUT_WR)
        eq(c.read_response().body, det_bytes(10), "1st")
        eq(c.read_response().body, det_bytes(20), "2nd")


@test("clients vanishing mid-way through 8 MB responses: no crash, others keep being served")
def t():
    o, gh = proxy()
    for i in range(6):
        s = socket.create_connection(("127.0.0.1", gh.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        s.sendall(build_request("GET", "/bytes/8000000" if i % 2 else "/chunked/8000000"))
        s.recv(20000)
        if i % 3 == 0:  # RST instead of FIN
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        r = http_get(gh.port, "/bytes/5000")
        eq(r.body, det_bytes(5000), "request after abort %d" % i)
    # the pool must not hand out an upstream connection still busy with an aborted response
    with Conn(gh.port) as c:
        for i in range(5):
            eq(c.request("GET", "/echo?i=%d" % i).json()["target"], "/echo?i=%d" % i, "target")


# ---------------------------------------------------------------------------------------------
# misbehaving origins
# ---------------------------------------------------------------------------------------------


@test("origin answers 413 before reading the body and closes: client gets the 413, told to close")
def t():
    # The client is keep-alive and got a response; if the proxy then closes (it must, the body
    # was not consumed) it has to say so with Connection: close (RFC 9112 9.6), or a client
    # reusing the connection loses its next request. nginx/HAProxy send Connection: close here.
    def h(s, rd, idx):
        rd.read_head()
        s.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big\n")
        time.sleep(0.05)
        s.shutdown(socket.SHUT_RDWR)
    # (with request_buffering the origin sees nothing before the whole body: streamed here)
    ro, gh = raw_proxy(h, server_extra="    request_buffering off;")
    with Conn(gh.port) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: a.test\r\nContent-Length: 2000000\r\n\r\n")
        c.send(b"x" * 20000)
        r = c.read_response()
        eq(r.status, 413, "status")
        eq(r.body, b"too big\n", "body")
        diag("response head:", r.raw_head)
        closed = c.wait_closed(3)
        diag("connection closed afterwards:", closed)
        if closed:
            eq(conn_hdr(r), "close", "Connection header on a response after which the proxy closes")
    eq(http_get(gh.port, "/again").status, 413, "proxy still serves")


@test("origin sends garbage after a CL body (same packet or later): next request unaffected")
def t():
    def h(s, rd, idx):
        n = 0
        while True:
            try:
                rd.read_head()
            except EOFError:
                return
            n += 1
            if n == 1:
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n"
                          b"Content-Length: 6\r\n\r\nEVIL-1")
            elif n == 2:
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
                time.sleep(0.05)
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nEVIL-2")
            else:
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")
    ro, gh = raw_proxy(h)
    with Conn(gh.port) as c:
        eq(c.request("GET", "/1").body, b"hello", "1st")
        for i in range(4):
            time.sleep(0.15)
            r = c.request("GET", "/n%d" % i)
            check(b"EVIL" not in r.body, "request %d got the origin's stray bytes: %r" % (i, r.body))
            eq(r.status, 200, "status %d" % i)
    diag("origin connections:", ro.conns)


@test("origin closes a keep-alive connection right after its response (Connection: close): "
      "client stays keep-alive")
def t():
    o, gh = proxy()
    with Conn(gh.port) as c:
        for i in range(4):
            r = c.request("GET", "/keepalive-close")
            eq(r.status, 200, "status %d" % i)
            check(conn_hdr(r) != "close", "client side must stay keep-alive (%d)" % i)
        check(c.is_open(0.2), "client connection open")
    eq(o.conn_count, 4, "one origin connection per request")


# ---------------------------------------------------------------------------------------------
# balancing
# ---------------------------------------------------------------------------------------------


@test("upstream weights 3/1/1: 100 requests split 60/20/20 (smooth WRR, keep-alive pools)")
def t():
    os_ = [Origin(name=n) for n in ("a", "b", "c")]
    gh = Gatehouse(lambda g: "threads 1;\n" + BASE_TOP + """upstream app {
    server 127.0.0.1:%d weight=3;
    server 127.0.0.1:%d;
    server 127.0.0.1:%d;
}
server { listen 127.0.0.1:%d; proxy app; }
""" % (os_[0].port, os_[1].port, os_[2].port, g.port))
    names = []
    with Conn(gh.port) as c:
        for i in range(50):
            names.append(c.request("GET", "/echo").json()["origin"])
    for i in range(50):
        names.append(http_get(gh.port, "/echo").json()["origin"])
    cnt = {n: names.count(n) for n in "abc"}
    diag("distribution:", cnt)
    eq(cnt, {"a": 60, "b": 20, "c": 20}, "distribution")
    check(all(o.conn_count <= 2 for o in os_), "pooled: %r" % [o.conn_count for o in os_])


@test("upstream with a dead server: every request succeeds, the dead one tried once")
def t():
    a = Origin(name="a")
    b = Origin(name="b")
    dead = free_port()
    gh = Gatehouse(lambda g: "threads 1;\n" + BASE_TOP + """upstream app {
    server 127.0.0.1:%d;
    server 127.0.0.1:%d;
    server 127.0.0.1:%d;
}
server { listen 127.0.0.1:%d; proxy app; }
""" % (a.port, dead, b.port, g.port))
    names = []
    for i in range(30):
        r = http_request(gh.port, "POST", "/upload", body=b"p%d" % i)
        eq(r.status, 200, "request %d" % i)
        names.append(r.json()["origin"])
    diag("origins:", names)
    check(abs(names.count("a") - names.count("b")) <= 2, "split between the live ones")
    fails = len(re.findall(r"127\.0\.0\.1:%d" % dead, gh.stderr()))
    diag("log lines naming the dead server:", fails)
    check(1 <= fails <= 2, "dead server retried %d times within 10s" % fails)


# ---------------------------------------------------------------------------------------------
# return
# ---------------------------------------------------------------------------------------------


def return_gh():
    return Gatehouse(lambda g: "threads 1;\n" + BASE_TOP + """server {
    listen 127.0.0.1:%d;
    route = /t { return 200 "line1\\nline2\\ttab \\"q\\"\\n"; }
    route = /nc { return 204; }
    route = /mv { return 301 https://example.test/new; response_header set X-R 1; }
    route = /gone { return 410; response_header remove Server; response_header add X-G 1; }
    route = /big { return 403 "no\\n"; }
}
""" % g.port)


@test("return: body escapes, HEAD (CL, no body), 204 (no CL), 301, all keep-alive")
def t():
    gh = return_gh()
    with Conn(gh.port) as c:
        r = c.request("GET", "/t")
        eq(r.body, b'line1\nline2\ttab "q"\n', "escaped body")
        r = c.request("HEAD", "/t")
        eq(r.header("content-length"), str(len(b'line1\nline2\ttab "q"\n')), "HEAD CL")
        r = c.request("GET", "/nc")
        eq(r.status, 204, "204")
        check(r.header("content-length") is None, "no CL on 204 (RFC 9110 8.6)")
        r = c.request("GET", "/mv")
        eq((r.status, r.header("location"), r.header("x-r")), (301, "https://example.test/new", "1"),
           "301 redirects with Location (nginx 'return 301 URL') and the route's header rules")
        r = c.request("GET", "/gone")
        eq((r.status, r.header("server"), r.header("x-g")), (410, None, "1"),
           "response_header rules apply to generated pages")
        eq(c.request("GET", "/t").status, 200, "still keep-alive")
        eq(c.buf, b"", "no stray bytes")


@test("return with a request body: answer intact, then body skipped or connection closed cleanly")
def t():
    gh = return_gh()
    # small body in the same packet, then a pipelined GET
    with Conn(gh.port) as c:
        c.send(build_request("POST", "/t", body=b"abcde") + build_request("GET", "/t"))
        r = c.read_response()
        eq(r.status, 200, "status")
        if conn_hdr(r) == "close":
            check(c.wait_closed(3), "closed as announced")
        else:
            eq(c.read_response().status, 200, "pipelined GET after the skipped body")


@test("return 403 to a 4 MB upload whose body arrives after the head: client reads the 403")
def t():
    # The proxy answers at once and must not destroy that answer with a TCP reset while the body
    # still arrives (RFC 9112 9.6 / nginx lingering_close: read and discard for a while).
    gh = return_gh()
    body = b"z" * (4 << 20)
    s = socket.create_connection(("127.0.0.1", gh.port), timeout=10)
    s.sendall(b"POST /big HTTP/1.1\r\nHost: a.test\r\nContent-Length: %d\r\n\r\n" % len(body))
    time.sleep(0.3)  # the proxy has answered and (maybe) closed before the body comes
    err = []

    def sender():
        try:
            s.sendall(body)
        except OSError as e:
            err.append(e)

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    th.join(12)
    got = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
    except OSError as e:
        diag("recv error after sending:", repr(e))
    s.close()
    diag("send error:", err, "received:", got[:60])
    check(got.startswith(b"HTTP/1.1 403"), "client should be able to read the 403, got %r" % got[:80])


@test("client_max_body_size 413 on a 4 MB upload sent at once: the client reads the 413")
def t():
    o, gh = proxy(server_extra="    client_max_body_size 1k;")
    body = b"z" * (4 << 20)
    s = socket.create_connection(("127.0.0.1", gh.port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    err = []

    def sender():
        try:
            s.sendall(b"POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Length: %d\r\n\r\n"
                      % len(body) + body)
        except OSError as e:
            err.append(e)

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    th.join(12)
    got = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
    except OSError as e:
        diag("recv error:", repr(e))
    s.close()
    diag("send error:", err, "received:", got[:60])
    check(got.startswith(b"HTTP/1.1 413"), "client should read the 413, got %r" % got[:80])
    eq(o.requests, [], "origin saw nothing")


# ---------------------------------------------------------------------------------------------
# routing
# ---------------------------------------------------------------------------------------------


@test("routing: exact beats regex beats prefix; capture-free regex; query never affects routing")
def t():
    gh = Gatehouse(lambda g: "threads 1;\n" + BASE_TOP + """server {
    listen 127.0.0.1:%d;
    route = /a/exact { return 200 "exact"; }
    route ~ "\\.(?:png|jpg)$" { return 200 "regex"; }
    route /a/ { return 200 "prefix-a"; }
    route /a/b/ { return 200 "prefix-ab"; }
    route / { return 200 "root"; }
}
""" % g.port)
    cases = [("/a/exact", "exact"), ("/a/exact?x=1", "exact"), ("/a/exact/", "prefix-a"),
             ("/a/x.png", "regex"), ("/a/b/x.png?y=1", "regex"), ("/x.png?.jpg", "regex"),
             ("/a/b/c?.png", "prefix-ab"), ("/a/b?/a/b/", "prefix-a"), ("/q?/a/", "root"),
             ("/a/exact.png", "regex"), ("/A/exact", "root"), ("/?a=/a/exact", "root")]
    with Conn(gh.port) as c:
        got = [(p, c.request("GET", p).body.decode()) for p, _ in cases]
    bad = [(p, g, w) for (p, g), (_, w) in zip(got, cases) if g != w]
    eq(bad, [], "mis-routed (path, got, want)")


# ---------------------------------------------------------------------------------------------
# keep-alive limits
# ---------------------------------------------------------------------------------------------


@test("keepalive_requests 2 + keepalive_timeout 1s: 2nd response says close; idle conn closed")
def t():
    o, gh = proxy(server_extra="    keepalive_requests 2;\n    keepalive_timeout 1s;")
    with Conn(gh.port) as c:
        r1 = c.request("GET", "/echo")
        check(conn_hdr(r1) != "close", "1st keeps")
        time.sleep(0.6)  # under the idle timeout
        r2 = c.request("GET", "/echo")
        eq(conn_hdr(r2), "close", "2nd says close")
        check(c.wait_closed(3), "closed after the 2nd")
    with Conn(gh.port) as c:
        eq(c.request("GET", "/echo").status, 200, "status")
        t0 = time.monotonic()
        check(c.wait_closed(4), "idle connection closed by keepalive_timeout")
        dt = time.monotonic() - t0
        eq(c.buf, b"", "bytes the proxy sent on the idle connection before closing it")
        check(0.7 <= dt <= 3, "closed after %.2fs (keepalive_timeout 1s)" % dt)


# ---------------------------------------------------------------------------------------------
# concurrency
# ---------------------------------------------------------------------------------------------


@test("50 parallel clients x 20 keep-alive requests of random sizes, all sha256-checked", timeout=90)
def t():
    o, gh = proxy(top_extra="threads 2;\n")
    errors = []

    def client(k):
        rnd = random.Random(k)
        try:
            with Conn(gh.port, timeout=30) as c:
                for i in range(20):
                    kind = rnd.randrange(4)
                    n = rnd.choice([0, 1, rnd.randrange(100, 5000), rnd.randrange(5000, 70000),
                                    rnd.randrange(70000, 200000)])
                    if kind == 0:
                        r = c.request("GET", "/bytes/%d" % n)
                        if sha256(r.body) != sha256(det_bytes(n)):
                            errors.append("client %d req %d /bytes/%d body mismatch" % (k, i, n))
                    elif kind == 1:
                        r = c.request("GET", "/chunked/%d" % max(n, 1))
                        if r.body != det_bytes(max(n, 1)):
                            errors.append("client %d req %d /chunked/%d mismatch" % (k, i, n))
                    else:
                        body = det_bytes(n, seed=k * 1000 + i)
                        hs = [("Transfer-Encoding", "chunked")] if kind == 3 else None
                        if kind == 3:
                            c.send(build_request("POST", "/upload", headers=hs) +
                                   (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") +
                                   b"0\r\n\r\n")
                            r = c.read_response()
                        else:
                            r = c.request("POST", "/upload", body=body)
                        if r.json()["sha256"] != sha256(body):
                            errors.append("client %d req %d upload %d mismatch" % (k, i, n))
        except Exception as e:  # noqa: B902
            errors.append("client %d: %r" % (k, e))

    ths = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(50)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(80)
    eq(errors[:10], [], "errors (%d)" % len(errors))
    eq(len(o.requests), 1000, "requests at origin")



@test("routes match the normalised path (%XX, //, ., ..); the origin gets the target as sent")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, server_extra="    route /admin/ { return 403; }\n"))
    for target in ["/admin/x", "/%61dmin/x", "//admin/x", "/x/../admin/x", "/./admin/x",
                   "/x/%2e%2e/admin/x", "/admin%2fx"]:
        r = http_get(gh.port, target)
        eq(r.status, 403, "status for %s" % target)
    for target in ["/..", "/x/../../admin", "/%00", "/%zz", "/%2"]:
        resp, _, _ = raw_exchange(gh.port, b"GET " + target.encode() +
                                  b" HTTP/1.1\r\nHost: t\r\n\r\n")
        check(resp is not None, "an answer for %s" % target)
        eq(resp.status, 400, "status for %s" % target)
    eq(o.requests, [], "nothing reached the origin yet")
    r = http_get(gh.port, "/ok/./x/%2e%2e/echo?a=/admin/")
    eq(r.status, 200, "a path that normalises outside /admin/ is proxied")
    eq([q.target for q in o.requests], ["/ok/./x/%2e%2e/echo?a=/admin/"],
       "the origin sees the target exactly as sent")

run()
