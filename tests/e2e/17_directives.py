#!/usr/bin/env python3
"""Directives that no other file exercises at run time: client_max_body_size on a chunked body,
`keepalive 0` and `keepalive_timeout` in an upstream, IPv6 listeners and origins, error_log
levels, `threads auto` and the defaults, and the binary's embedded default with no arguments."""

import socket

from ghtest import *


def free_port6():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        s.bind(("::1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def have_ipv6():
    try:
        free_port6()
        return True
    except OSError:
        return False


def worker_threads(pid):
    """Names of the proxy's worker threads (each is named gh-worker-N)."""
    names = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return sorted(n for n in names if n.startswith("gh-worker-"))


def chunked(*parts):
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


CHUNKED_HEAD = b"POST /upload HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"


# ---------------------------------------------------------------------------------------------
# client_max_body_size on chunked bodies
# ---------------------------------------------------------------------------------------------


@test("client_max_body_size 1k, chunked body: exactly 1024 bytes pass intact; 1025 get a 413 and "
      "the origin never gets the whole body")
def t():
    o = Origin()
    # streamed (request_buffering off): what reaches the origin before the 413 is the point
    gh = Gatehouse(conf_proxy(o, top_extra="threads 1;\n",
                              server_extra="    client_max_body_size 1k;\n"
                                           "    request_buffering off;"))
    body = det_bytes(1024, seed=2)
    with Conn(gh.port) as c:
        c.send(CHUNKED_HEAD + chunked(body[:500], body[500:1000], body[1000:]))
        r = c.read_response()
        eq(r.status, 200, "status for a chunked body of exactly the limit")
        eq((r.json()["length"], r.json()["sha256"]), (1024, sha256(body)), "body at the origin")
    body = det_bytes(1025, seed=2)
    resp, raw, closed = raw_exchange(gh.port, CHUNKED_HEAD + chunked(body[:500], body[500:]))
    check(resp is not None, "no response: %r" % raw[:200])
    eq(resp.status, 413, "status for a chunked body one byte over the limit")
    check(closed, "the connection is closed after the 413")
    gh.wait_stderr(r"413: chunked request body larger than client_max_body_size", 5)
    wait_until(lambda: not o.open_conns, 5, "the origin connection to be closed")
    eq([q.body_len for q in o.requests if q.body_complete], [1024],
       "complete bodies the origin received (only the first)")


@test("client_max_body_size 1k, chunked body growing past the limit while it streams: 413, the "
      "origin never gets the whole body")
def t():
    o = Origin()
    # streamed (request_buffering off): what reaches the origin before the 413 is the point
    gh = Gatehouse(conf_proxy(o, top_extra="threads 1;\n",
                              server_extra="    client_max_body_size 1k;\n"
                                           "    request_buffering off;"))
    with Conn(gh.port, timeout=10) as c:
        c.send(CHUNKED_HEAD + b"258\r\n" + b"a" * 600 + b"\r\n")  # 600 bytes: under the limit
        time.sleep(0.2)
        c.send(b"258\r\n" + b"b" * 600 + b"\r\n")  # 1200: over it
        r = c.read_response()
        eq(r.status, 413, "status")
        check(c.wait_closed(5), "the connection is closed after the 413")
    gh.wait_stderr(r"413: chunked request body larger than client_max_body_size", 5)
    # the head and the first chunk may have gone ahead; the rest never does, and the origin
    # connection is closed under the unfinished body
    wait_until(lambda: not o.open_conns, 5, "the origin connection to be closed")
    eq([q for q in o.requests if q.body_complete], [],
       "requests with a complete body at the origin")


# ---------------------------------------------------------------------------------------------
# upstream keepalive and keepalive_timeout
# ---------------------------------------------------------------------------------------------


@test("upstream `keepalive 0`: every request opens its own origin connection, closed after it")
def t():
    o = Origin()
    gh = Gatehouse(lambda g: "threads 1;\n" + BASE_TOP + """upstream app {
    server 127.0.0.1:%d;
    keepalive 0;
}
server { listen 127.0.0.1:%d; proxy app; }
""" % (o.port, g.port))
    with Conn(gh.port) as c:
        got = []
        for i in range(4):
            r = c.request("GET", "/echo?%d" % i)
            eq(r.status, 200, "status %d" % i)
            got.append((r.header("x-origin-conn"), r.header("x-origin-req")))
            check((r.header("connection") or "").lower() != "close", "client side stays keep-alive")
    eq(got, [("1", "1"), ("2", "1"), ("3", "1"), ("4", "1")], "(origin connection, request on it)")
    eq(o.conn_count, 4, "origin connections")
    wait_until(lambda: not o.open_conns, 5, "the origin to see every connection closed")


@test("upstream keepalive_timeout 1s: the idle pooled connection is closed by the proxy (the "
      "origin sees the close), one with the default timeout stays open")
def t():
    short = Origin(name="short")
    long_ = Origin(name="long")
    gh = Gatehouse(lambda g: "threads 1;\n" + BASE_TOP + """upstream short {
    server 127.0.0.1:%d;
    keepalive_timeout 1s;
}
upstream long { server 127.0.0.1:%d; }
server {
    listen 127.0.0.1:%d;
    route /short/ { proxy short; }
    route /long/ { proxy long; }
}
""" % (short.port, long_.port, g.port))
    with Conn(gh.port) as c:
        eq(c.request("GET", "/short/1").json()["origin"], "short", "routed to short")
        eq(c.request("GET", "/long/1").json()["origin"], "long", "routed to long")
        # the proxy closes the pooled connection to `short` after its keepalive_timeout
        wait_until(lambda: not short.open_conns, 10, "the origin to see its idle connection closed")
        eq(len(long_.open_conns), 1, "idle connections to the origin with the default timeout")
        eq(short.closed_by_origin, 0, "connections the origin closed itself")
        r = c.request("GET", "/short/2")
        eq(r.header("x-origin-conn"), "2", "origin connection of the next request (a new one)")
        r = c.request("GET", "/long/2")
        eq((r.header("x-origin-conn"), r.header("x-origin-req")), ("1", "2"),
           "the default-timeout connection is still reused")


# ---------------------------------------------------------------------------------------------
# IPv6
# ---------------------------------------------------------------------------------------------


@test("IPv6: a [::1] listener and a [::1] origin end to end (beside a 127.0.0.1 listener)")
def t():
    if not have_ipv6():
        raise Skip("no IPv6 on the loopback interface")
    o6 = Origin(name="o6", host="::1")
    p6 = free_port6()
    gh = Gatehouse(lambda g: "threads 1;\n" + BASE_TOP + """upstream six { server [::1]:%d; }
server {
    listen 127.0.0.1:%d;
    listen [::1]:%d;
    proxy six;
}
""" % (o6.port, g.port, p6))
    wait_until(lambda: port_accepts(p6, host="::1"), 10, "the [::1] listener")
    body = det_bytes(300000, seed=6)
    with Conn(p6, host="::1") as c:
        r = c.request("GET", "/echo?v6", host="[::1]:%d" % p6)
        eq(r.status, 200, "status over IPv6")
        d = r.json()
        eq(d["origin"], "o6", "the IPv6 origin answered")
        hdrs = {n.lower(): v for n, v in d["headers"]}
        eq(hdrs.get("host"), "[::1]:%d" % p6, "Host at the origin")
        eq(hdrs.get("x-forwarded-for"), "::1", "X-Forwarded-For for an IPv6 client")
        r = c.request("POST", "/upload", body=body, host="[::1]:%d" % p6)
        eq((r.json()["length"], r.json()["sha256"]), (len(body), sha256(body)),
           "upload over IPv6 both ways")
        r = c.request("GET", "/bytes/300000", host="[::1]:%d" % p6)
        eq(sha256(r.body), sha256(det_bytes(300000)), "download over IPv6 both ways")
    r = http_get(gh.port, "/echo?v4")
    eq(r.json()["origin"], "o6", "the IPv4 listener proxies to the same IPv6 origin")
    eq({n.lower(): v for n, v in r.json()["headers"]}.get("x-forwarded-for"), "127.0.0.1",
       "X-Forwarded-For for an IPv4 client")


# ---------------------------------------------------------------------------------------------
# error_log levels
# ---------------------------------------------------------------------------------------------

LOG_EVENTS = {
    "info": r"\[info\] client 127\.0\.0\.1: 400: ",  # a malformed request
    "warn": r"\[warn\] upstream 127\.0\.0\.1:\d+: connect: Connection refused",
    "error": r"\[error\] client 127\.0\.0\.1: 502: cannot connect to upstream",
}


for _level, _want in (("error", ["error"]), ("warn", ["error", "warn"]),
                      ("info", ["error", "warn", "info"])):
    @test("error_log FILE %s: only messages of level %s and above are written" % (_level, _level))
    def t(level=_level, want=_want):
        dead = free_port()
        gh = Gatehouse(lambda g: "error_log %s/error.log %s;\ndrain_timeout 5s;\nthreads 1;\n"
                       "server { listen 127.0.0.1:%d; proxy 127.0.0.1:%d; }\n"
                       % (g.dir, level, g.port, dead))
        path = os.path.join(gh.dir, "error.log")
        resp, raw, _ = raw_exchange(gh.port, b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",
                                    timeout=5)
        eq(resp.status if resp else raw[:100], 400, "malformed request")
        eq(http_get(gh.port, "/").status, 502, "request to a dead origin")

        def text():
            with open(path) as f:
                return f.read()

        # the line for each event is written before its answer is sent
        for lv in want:
            wait_until(lambda: re.search(LOG_EVENTS[lv], text()), 5, "the %s line" % lv)
        log = text()
        for lv in set(LOG_EVENTS) - set(want):
            check(not re.search(r"\[%s\]" % lv, log),
                  "a %s line at level %s:\n%s" % (lv, level, log))
        if level == "info":
            check("[info] gatehouse" in log and "started" in log, "start-up line at level info")
        check(not re.search(r"\[(info|warn|error)\]", gh.stderr()), "log lines on stderr instead "
              "of the file:\n%s" % gh.stderr())


# ---------------------------------------------------------------------------------------------
# threads, and the built-in default
# ---------------------------------------------------------------------------------------------

NCPU = os.sysconf("SC_NPROCESSORS_ONLN")


@test("threads auto and no threads directive both start one worker per CPU; threads 3 starts 3")
def t():
    o = Origin()
    for top, n in (("threads auto;\n", NCPU), ("", NCPU), ("threads 3;\n", 3)):
        gh = Gatehouse(conf_proxy(o, top_extra=top))
        gh.wait_stderr(r"started \(pid \d+\): %d worker thread\(s\)" % n, 5)
        # each worker names itself as it starts
        want = ["gh-worker-%d" % i for i in range(n)]
        wait_until(lambda: worker_threads(gh.proc.pid) == want, 5,
                   "worker threads %r with %r" % (want, top.strip()))
        time.sleep(0.1)
        eq(worker_threads(gh.proc.pid), want, "worker threads with %r" % top.strip())
        for i in range(2 * n):
            eq(http_get(gh.port, "/echo").status, 200, "request %d" % i)
        check(gh.problem() is None, "clean stop (%r)" % top.strip())


@test("no arguments: the embedded default answers on 127.0.0.1:9901 with one worker per CPU, "
      "and is a forward proxy on 127.0.0.1:3128 that refuses private destinations")
def t():
    if port_accepts(9901) or port_accepts(3128):
        raise Skip("127.0.0.1:9901 or 127.0.0.1:3128 is taken by another process")
    gh = Gatehouse(nports=0, args=[], wait_ports=[9901, 3128])
    o = Origin()
    r = curl(["-x", "http://127.0.0.1:3128", "-o", "/dev/null", "-w", "%{http_code}",
              "http://127.0.0.1:%d/echo" % o.port])
    eq(r.stdout, b"403", "the forward proxy refuses a private destination")
    _, raw, _ = raw_exchange(3128, b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n"
                             b"Connection: close\r\n\r\n")
    check(raw.startswith(b"HTTP/1.1 403"), "CONNECT to port 22 refused: %r" % raw[:100])
    eq(o.requests, [], "nothing reached the origin")
    r = http_get(9901, "/")
    eq(r.status, 200, "status")
    check(r.body.startswith(b"Gatehouse ") and b"is running" in r.body, "body %r" % r.body)
    eq(r.header("server"), "gatehouse", "Server")
    eq(http_get(9901, "/anything/else").status, 200, "every path")
    want = ["gh-worker-%d" % i for i in range(NCPU)]
    wait_until(lambda: worker_threads(gh.proc.pid) == want, 5, "worker threads %r" % want)
    gh.wait_stderr(r'"GET / HTTP/1\.1" 200 ', 5)  # access_log stderr forward
    gh.wait_stderr(r'"GET http://127\.0\.0\.1:%d/echo HTTP/1\.1" 403 denied - 127\.0\.0\.1:%d '
                   % (o.port, o.port), 5)
    check(gh.problem() is None, "clean stop")
    check(not port_accepts(9901), "port 9901 released")


run()
