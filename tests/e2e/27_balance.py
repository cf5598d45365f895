#!/usr/bin/env python3
"""Balancing, passive health and retries with several real origins: least_conn sends fewer
requests to a slow origin, `hash $arg_user consistent` keeps a user on one origin (and only the
users of a removed origin move), idempotent requests survive an origin's death while a POST is
never sent twice, backup servers and max_conns, 503 with Retry-After when no server can be
tried, and -t errors for bad values. Counts only, no timing assertions; loopback only."""

import os
import threading

import ghtest
from ghtest import *


def ups_conf(ports, extra="", server_params=None, threads=1):
    """A config function: upstream app over ports (with per-server parameters), one server."""
    params = server_params or {}

    def build(g):
        servers = "".join("    server 127.0.0.1:%d%s;\n" % (p, params.get(i, ""))
                          for i, p in enumerate(ports))
        return (BASE_TOP + "threads %d;\n" % threads
                + "upstream app {\n" + servers + extra + "\n}\n"
                + "server {\n    listen 127.0.0.1:%d;\n    proxy app;\n}\n" % g.port)
    return build


def slow_origin(name, delay):
    """An origin that waits `delay` seconds before every answer (a slow server)."""
    om = load_origin_module()

    class Slow(om.Origin):
        def _dispatch(self, s, rd, req, keep, cid, seq):
            self.stopping.wait(delay)
            return om.Origin._dispatch(self, s, rd, req, keep, cid, seq)

    o = Slow(name=name)
    ghtest._register(o)
    return o.start()


def origin_of(r):
    return r.header("x-origin-name")


def get(port, target, headers=None):
    return http_request(port, "GET", target, headers=headers)


@test("least_conn: a slow origin gets fewer requests than a fast one", timeout=60)
def t():
    fast = Origin(name="fast")
    slow = slow_origin("slow", 0.3)
    gh = Gatehouse(ups_conf([fast.port, slow.port], "    balance least_conn;"))
    statuses = []
    lock = threading.Lock()

    def client():
        for _ in range(10):
            r = get(gh.port, "/echo")
            with lock:
                statuses.append(r.status)

    ts = [threading.Thread(target=client) for _ in range(6)]
    for th in ts:
        th.start()
    for th in ts:
        th.join(40)
    eq(statuses.count(200), 60, "every request answered 200")
    nf, ns = len(fast.requests), len(slow.requests)
    diag("fast %d, slow %d" % (nf, ns))
    eq(nf + ns, 60, "requests seen by the origins")
    check(ns * 3 < nf, "the slow origin got %d of 60 (round robin would give 30)" % ns)


@test("hash $arg_user consistent: each user sticks to one origin; removing one moves only its users")
def t():
    os_ = [Origin(name=n) for n in ("a", "b", "c")]
    ports = [o.port for o in os_]
    conf = ups_conf(ports, "    balance hash $arg_user consistent;")
    gh = Gatehouse(conf)
    where = {}
    for u in range(30):
        seen = set(origin_of(get(gh.port, "/echo?user=u%d" % u)) for _ in range(3))
        eq(len(seen), 1, "user u%d went to %s" % (u, sorted(seen)))
        where[u] = seen.pop()
    spread = set(where.values())
    diag("users per origin:", {n: list(where.values()).count(n) for n in spread})
    check(len(spread) >= 2, "30 users all on %s" % spread)
    # reload without c: only c's users move
    gh.reload(ups_conf(ports[:2], "    balance hash $arg_user consistent;"))
    gh.wait_stderr(r"reload complete", 10)

    def settled():
        return origin_of(get(gh.port, "/echo?user=probe")) in ("a", "b") and all(
            origin_of(get(gh.port, "/echo?user=u%d" % u)) != "c"
            for u in where if where[u] == "c")

    wait_until(settled, 10, "the reload to take effect")
    for u, o in where.items():
        now = origin_of(get(gh.port, "/echo?user=u%d" % u))
        if o != "c":
            eq(now, o, "user u%d (on %s) moved" % (u, o))
        else:
            check(now in ("a", "b"), "user u%d now on %s" % (u, now))


@test("hash key with a header and a cookie: the same values, the same origin")
def t():
    os_ = [Origin(name=n) for n in ("a", "b", "c")]
    gh = Gatehouse(ups_conf([o.port for o in os_],
                            '    balance hash "$http_x_tenant/$cookie_sid";'))
    for k in range(10):
        h = [("X-Tenant", "t%d" % k), ("Cookie", "x=1; sid=s%d" % k)]
        seen = set(origin_of(get(gh.port, "/echo", h)) for _ in range(3))
        eq(len(seen), 1, "key %d went to %s" % (k, sorted(seen)))


@test("an origin killed: idempotent GETs all succeed (retried on another server)", timeout=60)
def t():
    a, b, c = Origin(name="a"), Origin(name="b"), Origin(name="c")
    gh = Gatehouse(ups_conf([a.port, b.port, c.port], "    retry_on connect_failure error;"))
    for i in range(9):  # warm: keep-alive connections to all three
        eq(get(gh.port, "/echo").status, 200, "request %d" % i)
    b.stop()
    got = [get(gh.port, "/echo") for _ in range(30)]
    eq([r.status for r in got], [200] * 30, "statuses after b died")
    check(all(origin_of(r) in ("a", "c") for r in got), "answered by the live ones")
    check(re.search(r"upstream 127\.0\.0\.1:%d: connect" % b.port, gh.stderr()),
          "a connect to the dead origin failed (and was retried)")


@test("a POST whose request reached the origin is never retried; a GET is, once (retries 1)")
def t():
    a, b = Origin(name="a"), Origin(name="b")
    gh = Gatehouse(ups_conf([a.port, b.port], "    retry_on connect_failure error timeout;"))
    r = http_request(gh.port, "POST", "/drop", body=b"payment=1")
    eq(r.status, 502, "POST status")
    eq(len(a.requests_to("/drop")) + len(b.requests_to("/drop")), 1, "POSTs the origins saw")
    r = get(gh.port, "/drop")
    eq(r.status, 502, "GET status (both dropped it)")
    eq(len(a.requests_to("/drop")) + len(b.requests_to("/drop")), 3, "GETs: one retry")


@test("retries 0: a connect failure is not retried; retry_on 503 passes the last answer")
def t():
    live = Origin(name="live")
    dead = free_port()
    gh = Gatehouse(ups_conf([dead, live.port], "    retries 0;"))
    eq(get(gh.port, "/echo").status, 502, "the dead one first, no retry")
    eq(get(gh.port, "/echo").status, 200, "then it is down: the live one")
    a, b = Origin(name="a"), Origin(name="b")
    gh2 = Gatehouse(ups_conf([a.port, b.port], "    retry_on 503;"))
    r = get(gh2.port, "/status/503")
    eq(r.status, 503, "the last answer")
    eq(len(a.requests_to("/status")) + len(b.requests_to("/status")), 2, "both asked")
    r = http_request(gh2.port, "POST", "/status/503", body=b"x")
    eq(r.status, 503, "POST answer")
    eq(len(a.requests_to("/status")) + len(b.requests_to("/status")), 3, "POST asked once")


@test("every server down: 503 with Retry-After: 1, a log line naming the upstream")
def t():
    d1, d2 = free_port(), free_port()
    gh = Gatehouse(ups_conf([d1, d2], "    fail_timeout 30s;"))
    eq(get(gh.port, "/echo").status, 502, "first request: both refuse")
    r = get(gh.port, "/echo")
    eq(r.status, 503, "status once both are down")
    eq(r.header("retry-after"), "1", "Retry-After")
    check(str(d1) not in r.body.decode("latin-1"), "the page names no address")
    gh.wait_stderr(r"upstream app: no server available \(every one is down\)", 5)
    eq(gh.stop(), 0, "exit status")
    check(re.search(r"1 request\(s\) answered 503: no server", gh.stderr()),
          "the counter at stop")


@test("max_conns: a request beyond every server's limit gets 503 with Retry-After", timeout=40)
def t():
    o = Origin(name="o")
    gh = Gatehouse(ups_conf([o.port], "", {0: " max_conns=1"}))
    res = {}
    th = threading.Thread(target=lambda: res.setdefault("r", get(gh.port, "/slow-first-byte/2")))
    th.start()
    o.wait_requests(1)
    r = get(gh.port, "/echo")
    eq(r.status, 503, "second request while the first is in flight")
    eq(r.header("retry-after"), "1", "Retry-After")
    th.join(20)
    eq(res["r"].status, 200, "the first one")
    eq(get(gh.port, "/echo").status, 200, "below the limit again")
    gh.wait_stderr(r"upstream app: no server available \(every one is down or at max_conns\)")


@test("backup: used only while the primary servers cannot be")
def t():
    a, bk = Origin(name="a"), Origin(name="backup")
    gh = Gatehouse(ups_conf([a.port, bk.port], "", {1: " backup"}))
    eq(set(origin_of(get(gh.port, "/echo")) for _ in range(6)), {"a"}, "primary only")
    a.stop()
    got = [get(gh.port, "/echo") for _ in range(4)]
    eq([r.status for r in got], [200] * 4, "statuses with the primary dead")
    eq(set(origin_of(r) for r in got), {"backup"}, "the backup answered")


@test("random and ewma: every request answered; random uses both origins")
def t():
    a, b = Origin(name="a"), Origin(name="b")
    for alg in ("random", "ewma"):
        gh = Gatehouse(ups_conf([a.port, b.port], "    balance %s;" % alg))
        got = [get(gh.port, "/echo") for _ in range(40)]
        eq([r.status for r in got], [200] * 40, "statuses with %s" % alg)
        seen = set(origin_of(r) for r in got)
        check(seen <= {"a", "b"}, "origins %s" % seen)
        if alg == "random":
            eq(seen, {"a", "b"}, "origins with random")
        eq(gh.stop(), 0, "exit status")


@test("-t: bad balancing values are errors with FILE:LINE:COL")
def t():
    d = tmpdir()
    cases = [
        ("balance rando;", "unknown balance 'rando'"),
        ("balance hash;", "'balance hash' needs a key"),
        ("balance hash $status;", "variable '$status' is not available in 'balance hash'"),
        ("balance hash $arg_u ring;", "unknown parameter 'ring' in 'balance hash'"),
        ("max_fails x;", "invalid number 'x' for 'max_fails'"),
        ("fail_timeout 0;", "'fail_timeout'"),
        ("retries 1000;", "out of range for 'retries'"),
        ("retry_on 404;", "unknown condition '404' in 'retry_on'"),
    ]
    for i, (line, want) in enumerate(cases):
        path = os.path.join(d, "b%d.conf" % i)
        with open(path, "w") as f:
            f.write("upstream app {\n    server 127.0.0.1:9;\n    %s\n}\n"
                    "server { listen 127.0.0.1:%d; proxy app; }\n" % (line, free_port()))
        r = run_gh(["-t", "-c", path])
        eq(r.returncode, 1, "exit status for %r" % line)
        check(re.search(r"b%d\.conf:3:\d+: " % i, r.stderr) and want in r.stderr,
              "for %r: %s" % (line, r.stderr.strip()))
    path = os.path.join(d, "bk.conf")
    with open(path, "w") as f:
        f.write("upstream app { server 127.0.0.1:9 backup; server 127.0.0.1:10 max_conns=z; }\n"
                "server { listen 127.0.0.1:%d; proxy app; }\n" % free_port())
    r = run_gh(["-t", "-c", path])
    eq(r.returncode, 1, "exit status")
    check("invalid number 'z' for 'max_conns'" in r.stderr, r.stderr)


run()
