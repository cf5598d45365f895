#!/usr/bin/env python3
"""Review of the exchange/downstream split: access-log fields on paths where the exchange ends
(or changes course) inside the first read of the origin's response, and exchanges cut at the
drain deadline.

1. t_first_byte_ms: src_origin.c origin_recv copies the upconn's first-byte time into the
   exchange only after gh_upconn_recv returns a value other than GH_PUMP_ENDED. When the very
   first read already ends the exchange or changes its course (the origin's head, read whole in
   one read, is too large to forward once Date is added -> 502 page; or the client is gone when
   the head is written), the log says t_first_byte_ms -1 although bytes came. 1952948 logged the
   time of that read.
2. drain_timeout: a request still waiting on its origin when the drain deadline passes is now
   written to the access log with "status":0 (worker.c closes the sessions, gh_h1s_close ends the
   exchange, and the done phase logs it). 1952948 wrote no line for it. A status of 0 is not an
   HTTP status; either no line or a real one (e.g. 499/503/504) is expected."""

import json
import re
import os
import socket
import threading
import time

from ghtest import *

import ghtest as _gh


class RawOrigin:
    """Sends `answer` after each request head; keeps the connection (no reads beyond heads)."""

    def __init__(self, answer=None, hold=False):
        self.answer = answer
        self.hold = hold
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.socks = []
        self.heads = 0
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
                self.heads += 1
                if self.answer is not None:
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


def big_head(total=65527):
    """A response head of `total` bytes without Date, in header lines under 16 KiB: it parses
    (the limit is 64 KiB) but does not fit once Gatehouse adds its Date field."""
    start = b"HTTP/1.1 200 OK\r\n"
    end = b"Content-Length: 2\r\n\r\n"
    lines = []
    left = total - len(start) - len(end)
    i = 0
    while left > 0:
        n = min(16000, left)
        name = b"X-P%02d: " % i
        val = n - len(name) - 2
        if val < 1:  # fold a tiny remainder into the previous line
            prev = lines.pop()
            lines.append(prev[:-2] + b"p" * n + b"\r\n")
            break
        lines.append(name + b"p" * val + b"\r\n")
        left -= n
        i += 1
    h = start + b"".join(lines) + end
    assert len(h) == total, len(h)
    return h


def conf(origin_port, extra):
    def build(g):
        return ("error_log stderr info;\nthreads 1;\naccess_log %s/access.log json;\n%s\n"
                "server {\n    listen 127.0.0.1:%d;\n    proxy 127.0.0.1:%d;\n}\n"
                % (g.dir, extra, g.port, origin_port))
    return build


def log_lines(gh):
    path = os.path.join(gh.dir, "access.log")
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError:
        return []


@test("a head too large to forward, read in one piece: the 502's log line has the first-byte "
      "time (bytes did come)")
def t():
    # The head must be read whole in one read (splice off: a read takes up to 64 KiB); the
    # kernel may split it, so ask a few times: every line must have the time.
    o = RawOrigin(big_head() + b"ok")
    gh = Gatehouse(conf(o.port, "splice off;\ndrain_timeout 2s;"))
    for i in range(5):
        with Conn(gh.port) as c:
            c.send(b"GET /big-head HTTP/1.1\r\nHost: t\r\n\r\n")
            r = c.read_response()
            eq(r.status, 502, "status")
    gh.wait_stderr(r"502: upstream response head too large to forward", 5)
    gh.stop()
    lines = log_lines(gh)
    eq(len(lines), 5, "access-log lines")
    eq([ln["status"] for ln in lines], [502] * 5, "logged statuses")
    eq([ln["t_first_byte_ms"] >= 0 for ln in lines], [True] * 5,
       "t_first_byte_ms set (the origin's bytes came): %r"
       % [ln["t_first_byte_ms"] for ln in lines])


@test("drain_timeout cuts a request that waits on its origin: logged as 444 and counted")
def t():
    o = RawOrigin(None)  # reads the head, never answers
    gh = Gatehouse(conf(o.port, "drain_timeout 1s;\nfirst_byte_timeout 60s;"))
    c = socket.create_connection(("127.0.0.1", gh.port))
    c.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
    wait_until(lambda: o.heads == 1, 5, "the origin to get the request")
    st = gh.stop()
    eq(st, 0, "exit status")
    c.close()
    check("drain timeout, closing 1 connection" in gh.stderr(), "the drain timed out")
    lines = log_lines(gh)
    bad = [ln for ln in lines if not (100 <= ln["status"] <= 599)]
    eq(bad, [], "access-log lines without an HTTP status")
    cut = [ln for ln in lines if ln["request"].startswith("GET /slow ")]
    eq([ln["status"] for ln in cut], [444], "the cut request's status in the access log")
    # (the harness's readiness probe is a connection too)
    check(re.search(r"\] stopped: \d+ connection\(s\), 1 request\(s\), 1 cut off at the "
                    r"drain deadline", gh.stderr()), "the final line counts the cut request")


run()
