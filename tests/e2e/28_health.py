#!/usr/bin/env python3
"""Active health checks (`health_check`) and passive health (`fail_on`) with real origins: a
killed origin is marked down (a log line) while idempotent requests see no error, and comes back
after `rise` passes once restarted; an origin answering a bad status to its check is skipped by
every balancer while it still accepts connections; every server down gives 503; a reload keeps
the state; `fail_on 5xx` ejects an origin that answers 500; -t errors name FILE:LINE:COL.
Counts and log lines only, no timing assertions; loopback only."""

import os
import threading

import ghtest
from ghtest import *

HC = "    health_check /hc interval=200ms timeout=150ms rise=2 fall=2;\n"


def ups_conf(ports, extra="", server_params=None, threads=2, names=None):
    params = server_params or {}

    def build(g):
        servers = "".join("    server 127.0.0.1:%d%s;\n" % (p, params.get(i, ""))
                          for i, p in enumerate(ports))
        return (BASE_TOP + "threads %d;\n" % threads
                + "upstream app {\n" + servers + extra + "\n}\n"
                + "server {\n    listen 127.0.0.1:%d;\n    proxy app;\n}\n" % g.port)
    return build


def sick_origin(name, port=0):
    """An origin whose /hc answers 503 while .sick is set, and /flaky 500 while .flaky is."""
    om = load_origin_module()

    class Sick(om.Origin):
        sick = False
        flaky = False

        def _dispatch(self, s, rd, req, keep, cid, seq):
            if (req.path == "/hc" and self.sick) or (req.path == "/flaky" and self.flaky):
                self._read_body(s, rd, req)
                self._send(s, req.method, 503 if req.path == "/hc" else 500,
                           [("X-Origin-Name", self.name)], b"sick\n", cid, seq, close=not keep)
                return keep, False
            return om.Origin._dispatch(self, s, rd, req, keep, cid, seq)

    o = Sick(port=port, name=name)
    ghtest._register(o)
    return o.start()


def origin_of(r):
    return r.header("x-origin-name")


def get(port, target="/echo"):
    return http_request(port, "GET", target)


@test("a killed origin is marked down (idempotent requests see no error) and comes back "
      "after rise passes once restarted", timeout=90)
def t():
    a, b, c = Origin(name="a"), Origin(name="b"), Origin(name="c")
    bport = b.port
    gh = Gatehouse(ups_conf([a.port, b.port, c.port],
                            HC + "    retry_on connect_failure error;\n    max_fails 0;"))
    wait_until(lambda: len(b.requests_to("/hc")) >= 2, 10, "b checked twice")
    check(all(r.header("user-agent") == "gatehouse-health-check" for r in b.requests_to("/hc")),
          "the checks' User-Agent")
    statuses, stop = [], threading.Event()

    def client():
        while not stop.is_set():
            statuses.append(get(gh.port).status)

    th = threading.Thread(target=client)
    th.start()
    try:
        wait_until(lambda: len(statuses) >= 20, 20, "requests before the kill")
        b.stop()
        gh.wait_stderr(r"upstream app: server 127\.0\.0\.1:%d is down \(2 checks failed; "
                       r"the last: " % bport, 15)
        n_down = len(statuses)
        wait_until(lambda: len(statuses) >= n_down + 20, 20, "requests while b is down")
        b2 = Origin(port=bport, name="b2")
        gh.wait_stderr(r"upstream app: server 127\.0\.0\.1:%d is up \(2 checks passed\)" % bport,
                       15)
        wait_until(lambda: len(b2.requests_to("/echo")) >= 3, 20, "b back in the rotation")
    finally:
        stop.set()
        th.join(20)
    eq(set(statuses), {200}, "statuses seen by the client (%d requests)" % len(statuses))


@test("a bad status to the check (expect=) takes a live origin out of every balancer; "
      "all down: 503; a reload keeps the state", timeout=60)
def t():
    a, s = sick_origin("a"), sick_origin("s")
    for alg in ("round_robin", "least_conn", "random", "ewma"):
        s.sick = False
        gh = Gatehouse(ups_conf([a.port, s.port], HC + "    balance %s;" % alg))
        wait_until(lambda: len(s.requests_to("/hc")) >= 1, 10, "s checked")
        s.sick = True
        gh.wait_stderr(r"server 127\.0\.0\.1:%d is down \(2 checks failed; the last answered "
                       r"503\)" % s.port, 10)
        got = [origin_of(get(gh.port)) for _ in range(12)]
        eq(set(got), {"a"}, "origins with s down (%s)" % alg)
        if alg == "round_robin":
            n = len(gh.stderr())
            gh.reload(ups_conf([a.port, s.port], HC + "    keepalive 8;"))
            gh.wait_stderr(r"reload complete", 10, start=n)
            got = [origin_of(get(gh.port)) for _ in range(12)]
            eq(set(got), {"a"}, "origins right after a reload (the state is kept)")
            a.sick = True
            gh.wait_stderr(r"server 127\.0\.0\.1:%d is down" % a.port, 10)
            r = get(gh.port)
            eq((r.status, r.header("retry-after")), (503, "1"), "every server down")
            gh.wait_stderr(r"upstream app: no server available", 5)
            a.sick = False
        s.sick = False
        gh.wait_stderr(r"server 127\.0\.0\.1:%d is up" % s.port, 10)
        wait_until(lambda: "s" in [origin_of(get(gh.port)) for _ in range(4)], 10,
                   "s answering again (%s)" % alg)
        eq(gh.stop(), 0, "exit status")


@test("one server with a failing check: 503 (active checks take down even the only server)")
def t():
    s = sick_origin("s")
    s.sick = True
    gh = Gatehouse(ups_conf([s.port], "    health_check /hc interval=100ms timeout=100ms fall=1;"))
    gh.wait_stderr(r"server 127\.0\.0\.1:%d is down \(1 check failed" % s.port, 10)
    eq(get(gh.port).status, 503, "status")


@test("health_check host= and expect=: the check's Host, and a range of statuses")
def t():
    a = Origin(name="a")
    gh = Gatehouse(ups_conf([a.port], "    health_check /status/204 interval=100ms "
                                      "host=health.internal expect=204-204;"))
    wait_until(lambda: len(a.requests_to("/status/204")) >= 3, 10, "checks")
    r = a.requests_to("/status/204")[0]
    eq(r.header("host"), "health.internal", "Host of the check")
    check("is down" not in gh.stderr(), "204 passes expect=204-204")


@test("fail_on 5xx: an origin answering 500 is ejected (passive health), the other answers")
def t():
    a, f = Origin(name="a"), sick_origin("f")
    f.flaky = True
    gh = Gatehouse(ups_conf([a.port, f.port], "    max_fails 2;\n    fail_timeout 30s;\n"
                                              "    fail_on 5xx;", threads=1))
    got = [get(gh.port, "/flaky") for _ in range(4)]
    eq(sorted(r.status for r in got), [200, 200, 500, 500], "statuses before the ejection")
    gh.wait_stderr(r"server 127\.0\.0\.1:%d down for 30000 ms after 2 consecutive failures"
                   % f.port, 5)
    got = [origin_of(get(gh.port, "/flaky")) for _ in range(6)]
    eq(set(got), {"a"}, "after the ejection")
    # without fail_on, a 500 is an answer like any other
    gh2 = Gatehouse(ups_conf([a.port, f.port], "    max_fails 1;", threads=1))
    got = [get(gh2.port, "/flaky").status for _ in range(6)]
    eq(got.count(500), 3, "500s without fail_on 5xx")


@test("slow_start= and region= parse; -t: bad health and passive values are errors with "
      "FILE:LINE:COL")
def t():
    d = tmpdir()
    cases = [
        ("health_check hc;", "invalid path 'hc' in 'health_check'"),
        ("health_check /hc interval=fast;", "invalid duration 'fast' for 'interval'"),
        ("health_check /hc rise=0;", "out of range for 'rise'"),
        ("health_check /hc expect=200-100;", "invalid status range 'expect=200-100'"),
        ("health_check /hc expect=2xx;", "invalid status range"),
        ("health_check /hc timeout=10s interval=1s;", "timeout= must be above 0 and at most"),
        ("health_check /hc port=9;", "unknown parameter 'port=9' in 'health_check'"),
        ("health_check /hc host=a/b;", "invalid host name"),
        ("fail_on 404;", "unknown condition '404' in 'fail_on'"),
        ("balance geo;", "'balance geo' needs the client's region"),
        ("balance geo $remote_addr fast;", "unknown parameter 'fast' in 'balance geo'"),
        ("region_fallback eu us;", "no server of this upstream has region=us"),
    ]
    for i, (line, want) in enumerate(cases):
        path = os.path.join(d, "h%d.conf" % i)
        with open(path, "w") as f:
            f.write("upstream app {\n    server 127.0.0.1:9 region=eu slow_start=30s;\n    %s\n}"
                    "\nserver { listen 127.0.0.1:%d; proxy app; }\n" % (line, free_port()))
        r = run_gh(["-t", "-c", path])
        eq(r.returncode, 1, "exit status for %r" % line)
        check(re.search(r"h%d\.conf:3:\d+: " % i, r.stderr) and want in r.stderr,
              "for %r: %s" % (line, r.stderr.strip()))
    bad = [("server 127.0.0.1:9 slow_start=2h;", "'slow_start' is at most 1h"),
           ("server 127.0.0.1:9 region=e!u;", "invalid region name"),
           ("server 127.0.0.1:9 slow_start=1s; balance hash $uri;", "slow_start= cannot be used "
                                                                   "with 'balance hash'")]
    for i, (line, want) in enumerate(bad):
        path = os.path.join(d, "s%d.conf" % i)
        with open(path, "w") as f:
            f.write("upstream app { %s }\nserver { listen 127.0.0.1:%d; proxy app; }\n"
                    % (line, free_port()))
        r = run_gh(["-t", "-c", path])
        eq(r.returncode, 1, "exit status for %r" % line)
        check(want in r.stderr, "for %r: %s" % (line, r.stderr.strip()))


run()
