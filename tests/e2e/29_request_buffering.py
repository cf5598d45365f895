#!/usr/bin/env python3
"""`request_buffering` end to end: request bodies (Content-Length and chunked, smaller and much
larger than the memory buffer) reach the origin byte for byte (sha256); a client that sends its
body slowly holds no origin connection until its body is whole (the origin has seen no connection
while the body trickles in); a body over the buffer goes to an unlinked file in
client_body_temp_path, which leaves no name in the directory; 100-continue is answered before the
origin is chosen; a buffered PUT is replayed whole to another server after a broken attempt;
`request_buffering off` streams as before; `gatehouse -t` messages.

No timing assertions: every wait is a bounded loop on an observable event."""

import select
import socket
import threading

from ghtest import *


def conf(o, extra="", top=""):
    return conf_proxy(o, server_extra=extra, top_extra=top)


def upload(gh, body, chunked=False, path="/upload", chunk=7000):
    with Conn(gh.port, timeout=60) as c:
        if chunked:
            parts = [body[i:i + chunk] for i in range(0, len(body), chunk)]
            data = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
            c.send(b"POST %s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                   % path.encode() + data)
            return c.read_response()
        return c.request("POST", path, body=body)


def check_upload(r, body):
    eq(r.status, 200, "status")
    j = r.json()
    eq((j["length"], j["sha256"]), (len(body), sha256(body)), "what the origin got")


@test("Content-Length bodies below, at and far above the buffer size: exact at the origin")
def t():
    with Origin() as o, Gatehouse(conf(o, "    request_buffering on 16k;")) as gh:
        for n in (1, 16383, 16384, 16385, 3 << 20):
            check_upload(upload(gh, det_bytes(n, seed=n)), det_bytes(n, seed=n))
        gh.stop()
        check(re.search(r"counter buffered: 5 ", gh.stderr()), "counted")
        check(re.search(r"counter spooled: 2 ", gh.stderr()), "two went to a file")


@test("chunked bodies (small and large, odd chunk sizes): exact at the origin, still chunked")
def t():
    with Origin() as o, Gatehouse(conf(o, "    request_buffering on 8k;")) as gh:
        for n, ch in ((10, 3), (100000, 4097), (2 << 20, 65536), (0, 1)):
            body = det_bytes(n, seed=7)
            r = upload(gh, body, chunked=True, chunk=ch)
            check_upload(r, body)
            eq(r.json()["headers"] and [v for k, v in r.json()["headers"]
                                        if k.lower() == "transfer-encoding"], ["chunked"])


def wait_fd_in(gh, d):
    """The gatehouse holds an open file in directory d (a spooled body)."""
    def look():
        base = "/proc/%d/fd" % gh.proc.pid
        for fd in os.listdir(base):
            try:
                t = os.readlink(os.path.join(base, fd))
            except OSError:
                continue
            if t.startswith(d + "/"):
                return t
        return None
    return wait_until(look, 10, "a spooled body's file in %s" % d)


@test("a slow body holds no origin connection; a large one is in an unlinked file meanwhile")
def t():
    d = tmpdir()
    with Origin() as o, Gatehouse(conf(o, "    request_buffering on 4k;\n"
                                          "    client_body_temp_path %s;" % d)) as gh:
        body = det_bytes(300000, seed=3)
        with Conn(gh.port, timeout=30) as c:
            c.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body))
            c.send(body[:200000])
            target = wait_fd_in(gh, d)
            diag("spool file: %s" % target)
            eq([e for e in os.listdir(d)], [], "no name left in the directory")
            eq(o.conn_count, 0, "origin connections while the body comes")
            eq(o.requests, [], "requests at the origin while the body comes")
            c.send(body[200000:])
            r = c.read_response()
            check_upload(r, body)
            eq(o.conn_count, 1)
        # the file is gone with the request
        wait_until(lambda: not any(os.readlink("/proc/%d/fd/%s" % (gh.proc.pid, f))
                                   .startswith(d + "/") for f in os.listdir(
            "/proc/%d/fd" % gh.proc.pid) if os.path.exists("/proc/%d/fd/%s" % (gh.proc.pid, f))),
                   10, "the spool file closed")


@test("a stalled body gets 408 at client_body_timeout; the origin never saw it")
def t():
    with Origin() as o, Gatehouse(conf(o, "    client_body_timeout 1s;")) as gh:
        with Conn(gh.port, timeout=30) as c:
            c.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
            r = c.read_response()
            eq(r.status, 408)
        eq(o.conn_count, 0, "origin connections")
        gh.stop()
        check(re.search(r"counter slow_body: 1 ", gh.stderr()), "counted")


@test("client_max_body_size with a buffered chunked body: 413, and the origin saw nothing")
def t():
    with Origin() as o, Gatehouse(conf(o, "    client_max_body_size 1k;")) as gh:
        with Conn(gh.port, timeout=30) as c:
            c.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"258\r\n" + b"a" * 600 + b"\r\n")
            c.send(b"258\r\n" + b"b" * 600 + b"\r\n")
            eq(c.read_response().status, 413)
        eq(o.conn_count, 0, "origin connections")


@test("client_body_min_rate: a body trickling below the rate gets 408 long before "
      "client_body_timeout; a normal upload passes")
def t():
    with Origin() as o, Gatehouse(conf(o, "    client_body_timeout 60s;\n"
                                          "    client_body_min_rate 1k 1s;")) as gh:
        body = det_bytes(200000, seed=4)
        check_upload(upload(gh, body), body)
        with Conn(gh.port, timeout=30) as c:
            c.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n")
            r = None
            for _ in range(200):  # 10 bytes every 0.1 s: 100 bytes a second, at most 20 s
                try:
                    c.send(b"x" * 10)
                except OSError:
                    pass
                if select.select([c.sock], [], [], 0.1)[0]:
                    r = c.read_response()
                    break
            check(r is not None, "an answer before the body ended")
            eq(r.status, 408)
        gh.wait_stderr(r"408: request body slower than client_body_min_rate")
        eq(o.conn_count, 1, "only the normal upload reached the origin")


@test("Expect: 100-continue is answered at once; the origin is chosen after the body")
def t():
    with Origin() as o, Gatehouse(conf(o)) as gh:
        with Conn(gh.port, timeout=30) as c:
            c.send(b"PUT /upload HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                   b"Content-Length: 5\r\n\r\n")
            r = c.read_response(skip_interim=False)
            eq(r.status, 100)
            eq(o.conn_count, 0)
            c.send(b"hello")
            r = c.read_response()
            check_upload(r, b"hello")


@test("a buffered PUT goes whole to the next server when the first breaks (retry_on error)")
def t():
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead.listen(8)
    stop = threading.Event()

    def breaker():  # reads the request head, then closes without an answer
        dead.settimeout(0.2)
        while not stop.is_set():
            try:
                s, _ = dead.accept()
            except OSError:
                continue
            s.settimeout(5)
            try:
                s.recv(65536)
            except OSError:
                pass
            s.close()

    th = threading.Thread(target=breaker, daemon=True)
    th.start()
    try:
        with Origin() as o:
            def build(g):
                return ("%supstream u {\n    server 127.0.0.1:%d;\n    server 127.0.0.1:%d "
                        "backup;\n    retries 1;\n    retry_on error;\n}\nserver {\n"
                        "    listen 127.0.0.1:%d;\n    proxy u;\n}\n"
                        % (BASE_TOP, dead.getsockname()[1], o.port, g.port))

            with Gatehouse(build) as gh:
                body = det_bytes(200000, seed=9)
                with Conn(gh.port, timeout=30) as c:
                    r = c.request("PUT", "/upload", body=body)
                check_upload(r, body)
    finally:
        stop.set()
        dead.close()


@test("request_buffering off: the body streams (the origin has the request before its end)")
def t():
    with Origin() as o, Gatehouse(conf(o, "    request_buffering off;")) as gh:
        body = det_bytes(100000, seed=1)
        with Conn(gh.port, timeout=30) as c:
            c.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body))
            c.send(body[:1000])
            wait_until(lambda: o.conn_count == 1, 10, "the origin connected before the end")
            c.send(body[1000:])
            check_upload(c.read_response(), body)


@test("gatehouse -t: request_buffering values")
def t():
    d = tmpdir()
    for line, want in (("request_buffering maybe;", r":3:23: invalid value 'maybe'"),
                       ("request_buffering off 16k;", r":3:27: 'request_buffering off' takes no"),
                       ("request_buffering on 65m;", r":3:26: size '65m' out of range"),
                       ("request_buffering on 1x;", r":3:26: invalid size '1x'")):
        p = os.path.join(d, "gatehouse.conf")
        with open(p, "w") as f:
            f.write("server {\n    listen 127.0.0.1:1;\n    %s\n    proxy 127.0.0.1:2;\n}\n"
                    % line)
        r = run_gh(["-t", "-c", p])
        check(r.returncode != 0 and re.search(want, r.stderr), "%s: %r" % (line, r.stderr))


if __name__ == "__main__":
    run()
