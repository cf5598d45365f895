#!/usr/bin/env python3
"""The PROXY protocol end to end. Receiving (`listen ... proxy_protocol;` with
`proxy_protocol_from`): v1 and v2 headers written by the test are taken from a trusted address,
and the address they carry is the client's for $remote_addr, $proxy_protocol_addr, the rules
and X-Forwarded-For; a LOCAL header keeps the connection's address; the same bytes from an
address that is not trusted, a malformed header and a header that never comes close the
connection, and are counted; TLS behind the header. Sending (`server ADDR send_proxy` /
`send_proxy_v2`): a raw origin receives the header before the request, naming the client.

No timing assertions: every wait is a bounded loop on an observable event."""

import socket
import struct
import subprocess
import threading

from ghtest import *
import tlsutil

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(src, dst, sport, dport, cmd=0x21):
    fam = socket.AF_INET6 if ":" in src else socket.AF_INET
    a = socket.inet_pton(fam, src) + socket.inet_pton(fam, dst) + struct.pack("!HH", sport, dport)
    famb = 0x21 if fam == socket.AF_INET6 else 0x11
    return SIG + bytes([cmd, famb]) + struct.pack("!H", len(a)) + a


SHOW = 'return 200 "ra=$remote_addr:$remote_port pp=$proxy_protocol_addr:$proxy_protocol_port\\n";'


def conf(body=SHOW, top="proxy_protocol_from 127.0.0.1;", listen_extra=""):
    def build(g):
        return "%s%s\nserver {\n    listen 127.0.0.1:%d proxy_protocol%s;\n%s\n}\n" % (
            BASE_TOP, top, g.port, listen_extra, body)

    return build


def ask(gh, header, src="127.0.0.1", path="/"):
    with Conn(gh.port, source=src) as c:
        c.send(header)
        return c.request("GET", path)


def closed_unanswered(gh, data, src="127.0.0.1", shut=False):
    with Conn(gh.port, source=src) as c:
        try:
            c.send(data)
            if shut:
                c.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        try:
            got = c.read_all(timeout=10)
        except Closed:
            got = b""
        eq(got, b"", "no byte answered")


@test("v1 TCP4 from a trusted address: its address is the client's ($remote_addr, "
      "$proxy_protocol_addr)")
def t():
    with Gatehouse(conf()) as gh:
        r = ask(gh, b"PROXY TCP4 192.0.2.7 198.51.100.1 4711 443\r\n")
        eq(r.status, 200)
        eq(r.body, b"ra=192.0.2.7:4711 pp=192.0.2.7:4711\n")
        # keep-alive: the second request on the connection keeps it
        with Conn(gh.port) as c:
            c.send(b"PROXY TCP4 192.0.2.8 198.51.100.1 1 443\r\n")
            eq(c.request("GET", "/").body, b"ra=192.0.2.8:1 pp=192.0.2.8:1\n")
            eq(c.request("GET", "/").body, b"ra=192.0.2.8:1 pp=192.0.2.8:1\n")


@test("v2 IPv4 and IPv6, written in one piece with the request and byte by byte")
def t():
    with Gatehouse(conf()) as gh:
        r = ask(gh, v2("203.0.113.9", "198.51.100.1", 5000, 80))
        eq(r.body, b"ra=203.0.113.9:5000 pp=203.0.113.9:5000\n")
        r = ask(gh, v2("2001:db8::5", "2001:db8::1", 6000, 80))
        eq(r.body, b"ra=2001:db8::5:6000 pp=2001:db8::5:6000\n")
        with Conn(gh.port) as c:
            for b in v2("203.0.113.10", "198.51.100.1", 7, 80):
                c.send(bytes([b]))
            eq(c.request("GET", "/").body, b"ra=203.0.113.10:7 pp=203.0.113.10:7\n")
        with Conn(gh.port) as c:  # header and request in one segment
            c.send(b"PROXY TCP4 192.0.2.1 192.0.2.2 9 80\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
            r = c.read_response()
            eq(r.body, b"ra=192.0.2.1:9 pp=192.0.2.1:9\n")


@test("LOCAL (v2) and UNKNOWN (v1) keep the connection's address; $proxy_protocol_addr empty")
def t():
    with Gatehouse(conf()) as gh:
        r = ask(gh, SIG + bytes([0x20, 0x00, 0, 0]))
        check(r.body.startswith(b"ra=127.0.0.1:") and r.body.endswith(b" pp=:\n"), repr(r.body))
        r = ask(gh, b"PROXY UNKNOWN\r\n")
        check(r.body.startswith(b"ra=127.0.0.1:") and r.body.endswith(b" pp=:\n"), repr(r.body))


@test("from an address not in proxy_protocol_from: closed unread, counted")
def t():
    with Gatehouse(conf()) as gh:
        closed_unanswered(gh, b"PROXY TCP4 192.0.2.7 198.51.100.1 4711 443\r\nGET / HTTP/1.1\r\n"
                          b"Host: a\r\n\r\n", src="127.0.0.2")
        gh.wait_stderr(r"client 127\.0\.0\.2: not in proxy_protocol_from of 127\.0\.0\.1:\d+")
        eq(ask(gh, b"PROXY TCP4 192.0.2.7 198.51.100.1 4711 443\r\n").status, 200)
        gh.stop()
        check(re.search(r"counter pp_refused: 1 ", gh.stderr()), "counted")


@test("malformed headers close the connection without an answer, and are counted")
def t():
    bad = [b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
           b"PROXY TCP4 192.0.2.7  198.51.100.1 1 2\r\n",
           b"PROXY TCP4 192.0.2.7 198.51.100.1 1 65536\r\n",
           b"PROXY TCP6 192.0.2.7 198.51.100.1 1 2\r\n",
           SIG + bytes([0x21, 0x12, 0, 12]) + bytes(12),
           SIG + bytes([0x31, 0x11, 0, 12]) + bytes(12),
           b"PROXY UNKNOWN " + b"x" * 120]
    with Gatehouse(conf()) as gh:
        for b in bad:
            closed_unanswered(gh, b)
        closed_unanswered(gh, b"PROXY TCP4 192.0.2.7", shut=True)  # then the client closes
        gh.wait_stderr(r"client 127\.0\.0\.1: PROXY v1: bad port: connection closed")
        gh.stop()
        check(re.search(r"counter pp_bad: %d " % (len(bad) + 1), gh.stderr()),
              "counted: %s" % gh.stderr()[-800:])


@test("a header that never comes: closed at proxy_protocol_timeout")
def t():
    with Gatehouse(conf(top="proxy_protocol_from 127.0.0.1;\nproxy_protocol_timeout 1s;")) as gh:
        with Conn(gh.port) as c:
            c.send(b"PROXY TCP4 ")
            try:
                got = c.read_all(timeout=15)
            except Closed:
                got = b""
            eq(got, b"")
        gh.wait_stderr(r"PROXY header not received within proxy_protocol_timeout")


@test("allow/deny and X-Forwarded-For use the PROXY address; the origin sees the client")
def t():
    with Origin() as o:
        body = "deny 192.0.2.0/24;\nproxy 127.0.0.1:%d;" % o.port
        with Gatehouse(conf(body)) as gh:
            eq(ask(gh, b"PROXY TCP4 192.0.2.7 198.51.100.1 4711 443\r\n").status, 403)
            r = ask(gh, b"PROXY TCP4 203.0.113.5 198.51.100.1 4711 443\r\n")
            eq(r.status, 200)
            eq(o.requests[-1].header("x-forwarded-for"), "203.0.113.5")
            eq(len(o.requests), 1, "the denied one never reached the origin")


@test("TLS behind the PROXY header")
def t():
    d = tmpdir()
    cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=a.test", "-days", "2",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=30)

    def build(g):
        return ("%sproxy_protocol_from 127.0.0.1;\nserver {\n    listen 127.0.0.1:%d tls "
                "proxy_protocol;\n    tls_certificate %s;\n    tls_key %s;\n    %s\n}\n"
                % (BASE_TOP, g.port, cert, key, SHOW))

    with Gatehouse(build) as gh:
        s = socket.create_connection(("127.0.0.1", gh.port), timeout=10)
        s.sendall(b"PROXY TCP4 192.0.2.99 198.51.100.1 1234 443\r\n")
        ctx = tlsutil.client_ctx(verify=False)
        with ctx.wrap_socket(s, server_hostname="a.test") as ts:
            ts.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
            got = b""
            while True:
                b = ts.recv(65536)
                if not b:
                    break
                got += b
        check(got.endswith(b"ra=192.0.2.99:1234 pp=192.0.2.99:1234\n"), repr(got[-200:]))


@test("gatehouse -t: proxy_protocol needs proxy_protocol_from; 'all' refused; send_proxy + tls")
def t():
    d = tmpdir()
    cases = [
        ("server {\n listen 127.0.0.1:1 proxy_protocol;\n return 200;\n}\n",
         r"gatehouse\.conf:2:\d+: 'listen 127\.0\.0\.1:1 proxy_protocol' needs "
         r"'proxy_protocol_from"),
        ("proxy_protocol_from all;\nserver {\n listen 127.0.0.1:1;\n return 200;\n}\n",
         r"gatehouse\.conf:1:21: 'proxy_protocol_from all' would let"),
        ("server {\n listen 127.0.0.1:1 proxy_protocol;\n return 200;\n}\n"
         "server {\n listen 127.0.0.1:1;\n return 200;\n}\n",
         r"one address takes a PROXY protocol header first or never"),
        ("upstream u {\n server 127.0.0.1:2 send_proxy tls;\n}\n"
         "server {\n listen 127.0.0.1:1;\n proxy u;\n}\n",
         r"gatehouse\.conf:2:9: 'send_proxy' with 'tls'"),
        ("upstream u {\n server 127.0.0.1:2 send_proxy_v3;\n}\n"
         "server {\n listen 127.0.0.1:1;\n proxy u;\n}\n",
         r"unknown parameter 'send_proxy_v3'"),
    ]
    for text, want in cases:
        p = os.path.join(d, "gatehouse.conf")
        with open(p, "w") as f:
            f.write(text)
        r = run_gh(["-t", "-c", p])
        check(r.returncode != 0, "refused: %s" % text)
        check(re.search(want, r.stderr), "message %r in %r" % (want, r.stderr))


class RawOrigin:
    """An origin that records each connection's first bytes (a PROXY header, then a request)
    and answers 200 with Connection: close."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.seen = []
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            s.settimeout(10)
            got = b""
            while b"\r\n\r\n" not in got:
                b = s.recv(65536)
                if not b:
                    break
                got += b
            self.seen.append(got)
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            s.close()

    def close(self):
        self.sock.close()


@test("send_proxy / send_proxy_v2: the origin gets the header naming the client, first")
def t():
    o = RawOrigin()
    try:
        def build(g):
            return ("%supstream a {\n    server 127.0.0.1:%d send_proxy;\n}\n"
                    "upstream b {\n    server 127.0.0.1:%d send_proxy_v2;\n    keepalive 8;\n}\n"
                    "server {\n    listen 127.0.0.1:%d;\n    route /a { proxy a; }\n"
                    "    route /b { proxy b; }\n}\n" % (BASE_TOP, o.port, o.port, g.port))

        with Gatehouse(build) as gh:
            r = http_get(gh.port, "/a", source="127.0.0.2")
            eq(r.status, 200)
            m = re.match(rb"PROXY TCP4 127\.0\.0\.2 127\.0\.0\.1 (\d+) (\d+)\r\nGET /a HTTP/1\.1",
                         o.seen[-1])
            check(m, repr(o.seen[-1][:120]))
            eq(int(m.group(2)), gh.port)
            for src in ("127.0.0.3", "127.0.0.4"):
                eq(http_get(gh.port, "/b", source=src).status, 200)
                h = o.seen[-1]
                eq(h[:16], SIG + bytes([0x21, 0x11, 0, 12]))
                eq(socket.inet_ntoa(h[16:20]), src)
                eq(struct.unpack("!H", h[26:28])[0], gh.port)
                check(h[28:].startswith(b"GET /b HTTP/1.1"), repr(h[28:60]))
    finally:
        o.close()


if __name__ == "__main__":
    run()
