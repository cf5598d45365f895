#!/usr/bin/env python3
"""Review of the exchange/downstream split: an error page that replaces a response whose head
was already accepted from the origin (h1_send_head) but never written must be framed as that
error page says (Content-Length), not as the origin's response was (chunked).

Regression: h1_down.c h1_send_head sets S_CHUNK_OUT for a chunked origin response and never
clears it. When the first body bytes of that response are malformed (bad chunk size in the same
read as the head), gh_exchange_fail answers with the standard 502 page: its head says
"Content-Length: 154" but h1_send_body frames the page as chunks ("9a\\r\\n...\\r\\n0\\r\\n\\r\\n"),
11 bytes more than declared. The connection is kept alive (a 5xx after a whole request), so a
client reading the next response on it starts in the middle of the wrong bytes (desync)."""

import socket
import threading

from ghtest import *

import ghtest as _gh


class RawOrigin:
    """Answers every request on every connection with `answer` and keeps the connection open."""

    def __init__(self, answer):
        self.answer = answer
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.socks = []
        _gh._register(self)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            self.socks.append(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    b = s.recv(65536)
                    if not b:
                        return
                    buf += b
                buf = buf[buf.index(b"\r\n\r\n") + 4:]
                s.sendall(self.answer)
        except OSError:
            return

    def cleanup(self):
        for s in [self.lsock] + self.socks:
            try:
                s.close()
            except OSError:
                pass
        return None

    def diagnostics(self):
        return []


BAD_CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"


def standard_page(status, text):
    return ("<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s</h1>"
            "</center>\r\n<hr><center>gatehouse</center>\r\n</body>\r\n</html>\r\n"
            % (status, text, status, text)).encode()


@test("a bad chunk size right behind a chunked head: the 502 page is exactly its "
      "Content-Length, unchunked")
def t():
    o = RawOrigin(BAD_CHUNKED)
    gh = Gatehouse(conf_proxy(o.port, top_extra="threads 1;\n"))
    with Conn(gh.port) as c:
        c.send(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
        eq(r.status, 502, "status")
        check(r.header("transfer-encoding") is None, "no Transfer-Encoding on the page")
        eq(r.body, standard_page(502, "Bad Gateway"), "body (as many bytes as declared)")
        # nothing may follow the declared body: the connection is kept, so stray bytes here
        # would be read as the start of the next response
        check(c.is_open(0.5), "connection kept after a 502 to a whole request")
        eq(c.buf, b"", "bytes after the declared body")


@test("pipelined: the response after such a 502 starts where the 502's length says")
def t():
    o = RawOrigin(BAD_CHUNKED)
    gh = Gatehouse(conf_proxy(o.port, top_extra="threads 1;\n"))
    with Conn(gh.port) as c:
        c.send(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n")
        r1 = c.read_response()
        eq(r1.status, 502, "first status")
        eq(r1.body, standard_page(502, "Bad Gateway"), "first body")
        head = c.read_head()
        check(head.startswith(b"HTTP/1.1 502 "),
              "second response starts right after the first: got %r" % head[:40])
    gh.wait_stderr(r"502: missing chunk size", 5)


run()
