#!/usr/bin/env python3
"""Running out of file descriptors (the open-file limit of the running gatehouse lowered with
prlimit(2) to what it holds): an accept that finds none closes idle pooled origin connections
and takes the client at once (every request served); a connect that finds none, with nothing
idle to close, answers 503 (local exhaustion), never 502, and does not count against the
origin server; both are counted. And `listen ... deferred` (TCP_DEFER_ACCEPT): connections that
send nothing are not even accepted, while a request is served.

No timing assertions: every wait is a bounded loop on an observable event."""

import resource
import threading

from ghtest import *


def fdset(gh):
    # the start is over (the log's time zone file, read for its first lines, is closed again)
    gh.wait_stderr(r"started \(pid", 10)
    return sorted(int(f) for f in os.listdir("/proc/%d/fd" % gh.proc.pid))


def nfds(gh):
    return len(fdset(gh))


def fill_holes(gh):
    """Idle client connections until every descriptor number below the highest open one is
    used (a new one would then get max + 1); returns them and that number."""
    fds = fdset(gh)
    holes = fds[-1] + 1 - len(fds)
    held = [Conn(gh.port, timeout=20) for _ in range(holes)]
    wait_until(lambda: fdset(gh) == list(range(fds[-1] + 1)), 10,
               "the held connections accepted, no hole left")
    return held, fds[-1] + 1


def limit(gh, n):
    resource.prlimit(gh.proc.pid, resource.RLIMIT_NOFILE, (n, 20000))


def conf(o, keepalive):
    def build(g):
        return ("threads 1;\n%supstream u {\n    server 127.0.0.1:%d;\n    keepalive %d;\n}\n"
                "server {\n    listen 127.0.0.1:%d;\n    proxy u;\n}\n"
                % (BASE_TOP, o.port, keepalive, g.port))
    return build


def parallel_gets(port, n, path="/"):
    """n requests at once, each on its own connection; their statuses."""
    out = [None] * n
    gate = threading.Barrier(n)

    def one(i):
        try:
            with Conn(port, timeout=20) as c:
                gate.wait(10)
                out[i] = c.request("GET", path).status
        except Exception as e:  # noqa: BLE001 - the status list says what happened
            out[i] = repr(e)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    return out


@test("accept with no descriptor left: idle origin connections are closed, clients served")
def t():
    with Origin() as o, Gatehouse(conf(o, 64)) as gh:
        base = nfds(gh)
        eq(parallel_gets(gh.port, 20), [200] * 20, "warming the pool")
        wait_until(lambda: len(o.open_conns) >= 10, 10, "idle origin connections")
        # every client connection of the warm-up closed: only the pool is left
        wait_until(lambda: nfds(gh) == base + len(o.open_conns), 10, "the clients gone")
        held, top = fill_holes(gh)
        limit(gh, top)  # not one descriptor more
        try:
            # each accept now needs an idle origin connection closed first; the request itself
            # then finds a pooled connection or the descriptor another one gave
            eq(parallel_gets(gh.port, 5), [200] * 5, "served while out of descriptors")
            gh.wait_stderr(r"accept: out of file descriptors: closed \d+ idle origin "
                           r"connection\(s\)")
        finally:
            limit(gh, 20000)
        eq(http_get(gh.port, "/").status, 200)
        gh.stop()
        check(re.search(r"counter fd_short: \d+ ", gh.stderr()), "counted")


@test("connect with no descriptor left and nothing idle: 503 (not 502); the server stays up")
def t():
    with Origin() as o, Gatehouse(conf(o, 0)) as gh:
        eq(http_get(gh.port, "/").status, 200)
        with Conn(gh.port, timeout=20) as c:
            eq(c.request("GET", "/").status, 200)  # accepted and served before the limit
            # (keepalive 0: its origin connection is closed; once the origin saw that, the
            # descriptor is free and fill_holes takes it)
            wait_until(lambda: not o.open_conns, 10, "the origin connection closed")
            held, top = fill_holes(gh)
            limit(gh, top)
            try:
                r = c.request("GET", "/")
                eq(r.status, 503, "local exhaustion")
            finally:
                limit(gh, 20000)
        gh.wait_stderr(r"connect: Too many open files \(raise the open-file limit\?\)")
        check("cannot connect to upstream" not in gh.stderr(), "not the origin's failure")
        eq(http_get(gh.port, "/").status, 200, "the server was not marked down")
        gh.stop()
        check(re.search(r"counter fd_short: 1 ", gh.stderr()), "counted")


@test("listen deferred: silent connections are not accepted; requests are served")
def t():
    with Origin() as o:
        def build(g):
            return ("%sserver {\n    listen 127.0.0.1:%d deferred backlog=64;\n"
                    "    proxy 127.0.0.1:%d;\n}\n" % (BASE_TOP, g.port, o.port))

        with Gatehouse(build) as gh:
            ready = nfds(gh)
            silent = [Conn(gh.port) for _ in range(5)]  # connected, never a byte
            eq(http_get(gh.port, "/").status, 200)
            # the served one's descriptors come and go; the silent ones never get one
            check(nfds(gh) < ready + 5, "silent connections hold no descriptor")
            gh.stop()
            for c in silent:
                c.close()
            m = re.search(r"stopped: (\d+) connection\(s\), 1 request\(s\)", gh.stderr())
            check(m, "the stop line")
            # the request's connection, and the harness's readiness probe (connect, then FIN,
            # which the kernel may hand over as it would data): never the five silent ones
            check(int(m.group(1)) <= 2, "accepted: %s" % m.group(1))


if __name__ == "__main__":
    run()
