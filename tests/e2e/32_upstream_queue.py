#!/usr/bin/env python3
"""`queue N [timeout=D]` in an upstream: when every server is at `max_conns`, a request waits
(in order, per worker thread) instead of getting 503 at once, and goes to the server when a
request there ends; beyond N waiting the next one gets 503 at once; one that waits past the
timeout gets 503 with Retry-After; a client that goes away while waiting leaves the queue.
A buffered request body is read whole before its request waits.

No timing assertions: every wait is a bounded loop on an observable event."""

import socket
import struct
import threading

from ghtest import *


def conf(o, queue, debug=False):
    def build(g):
        top = BASE_TOP.replace("stderr info", "stderr debug") if debug else BASE_TOP
        return ("threads 1;\n%supstream u {\n    server 127.0.0.1:%d max_conns=1;\n    %s\n}\n"
                "server {\n    listen 127.0.0.1:%d;\n    proxy u;\n}\n"
                % (top, o.port, queue, g.port))
    return build


class Bg:
    """A request in a thread; .result is its Response (or the exception)."""

    def __init__(self, port, path, method="GET", body=None):
        self.result = None
        self.t = threading.Thread(target=self.run, args=(port, path, method, body), daemon=True)
        self.t.start()

    def run(self, port, path, method, body):
        try:
            self.result = http_request(port, method, path, body=body, timeout=30)
        except Exception as e:  # noqa: BLE001
            self.result = e

    def get(self):
        self.t.join(40)
        return self.result


@test("every server at max_conns: the next request waits and is served when a place frees")
def t():
    with Origin() as o, Gatehouse(conf(o, "queue 10;")) as gh:
        a = Bg(gh.port, "/slow-first-byte/1")
        o.wait_requests(1)
        b = Bg(gh.port, "/b")
        c = Bg(gh.port, "/c", method="POST", body=det_bytes(50000, seed=1))
        eq(a.get().status, 200)
        eq(b.get().status, 200, "the queued request")
        eq(c.get().status, 200, "the queued request with a body")
        eq(sorted(q.target for q in o.requests), ["/b", "/c", "/slow-first-byte/1"])
        gh.stop()
        check(re.search(r"counter queued: 2 ", gh.stderr()), "counted")


@test("the queue full: one more gets 503 at once; without a queue, 503 at once (as before)")
def t():
    with Origin() as o, Gatehouse(conf(o, "queue 1;")) as gh:
        a = Bg(gh.port, "/slow-first-byte/2")
        o.wait_requests(1)
        b, c = Bg(gh.port, "/b"), Bg(gh.port, "/c")
        eq(sorted([b.get().status, c.get().status]), [200, 503])
        eq(a.get().status, 200)
    with Origin() as o, Gatehouse(conf(o, "")) as gh:
        a = Bg(gh.port, "/slow-first-byte/1")
        o.wait_requests(1)
        r = http_get(gh.port, "/b")
        eq(r.status, 503)
        eq(a.get().status, 200)


@test("a request waiting past the queue's timeout gets 503 with Retry-After")
def t():
    with Origin() as o, Gatehouse(conf(o, "queue 5 timeout=1s;")) as gh:
        a = Bg(gh.port, "/stall")
        o.wait_requests(1)
        r = http_get(gh.port, "/b")
        eq(r.status, 503)
        eq(r.header("retry-after"), "1")
        gh.wait_stderr(r"upstream u: no server within the queue timeout")
        eq(len(o.requests), 1, "the origin saw only the first")
        o.stop()
        a.get()


@test("a client that leaves while waiting leaves the queue; the next one is served")
def t():
    with Origin() as o, Gatehouse(conf(o, "queue 1;", debug=True)) as gh:
        a = Bg(gh.port, "/slow-first-byte/1")
        o.wait_requests(1)
        with Conn(gh.port) as c:
            c.send(b"GET /gone HTTP/1.1\r\nHost: a\r\n\r\n")
            gh.wait_stderr(r"upstream u: every server at max_conns: request queued")
            # a reset (a plain FIN would still be answered, as a half-close)
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        eq(a.get().status, 200)
        eq(http_get(gh.port, "/next").status, 200)
        check("/gone" not in [q.target for q in o.requests], "the abandoned one never went")


@test("gatehouse -t: queue values")
def t():
    d = tmpdir()
    for line, want in (("queue 0;", r":3:11: .*queue"),
                       ("queue 5 timeout=0s;", r"queue timeout out of range"),
                       ("queue 5 wait=1s;", r"unknown parameter 'wait=1s' in 'queue'")):
        p = os.path.join(d, "gatehouse.conf")
        with open(p, "w") as f:
            f.write("upstream u {\n    server 127.0.0.1:2;\n    %s\n}\nserver {\n"
                    "    listen 127.0.0.1:1;\n    proxy u;\n}\n" % line)
        r = run_gh(["-t", "-c", p])
        check(r.returncode != 0 and re.search(want, r.stderr), "%s: %r" % (line, r.stderr))


if __name__ == "__main__":
    run()
