#!/usr/bin/env python3
"""Servers given by name (`server NAME:PORT resolve;` with the upstream's `resolver`), against
a DNS responder of the test's own (dnsd.py, TTL 1 s): requests go to the address the name
resolves to, follow it when the answer changes (re-resolved on TTL), and a name that stops
resolving is drained (its requests go to the other servers, or 503 when it was the only one)
and comes back with its name. Counts and log lines only, no timing assertions; loopback only."""

import os

import dnsd
from ghtest import *


def conf(dport, servers, extra=""):
    def build(g):
        return (BASE_TOP + "threads 2;\nupstream app {\n" +
                "".join("    server %s;\n" % s for s in servers) +
                "    resolver 127.0.0.1:%d;\n    resolver_timeout 2s;\n" % dport + extra +
                "}\nserver {\n    listen 127.0.0.1:%d;\n    proxy app;\n}\n" % g.port)
    return build


def origin_of(r):
    return r.header("x-origin-name")


def origin_pair():
    """Origins a on 127.0.0.1 and b on 127.0.0.2 with the same port (a name moves between the
    two addresses); the port is tried again when 127.0.0.2's is taken."""
    for _ in range(20):
        a = Origin(name="a")
        try:
            return a, Origin(host="127.0.0.2", port=a.port, name="b")
        except OSError:
            a.stop()
    raise AssertionError("no port free on both 127.0.0.1 and 127.0.0.2")


@test("a named server follows its DNS answer, is drained when its name stops resolving, and "
      "comes back", timeout=90)
def t():
    a, b = origin_pair()
    d = dnsd.DnsServer({"app.test": ["127.0.0.1"]}, ttl=1).start()
    gh = Gatehouse(conf(d.port, ["app.test:%d resolve" % a.port]))
    gh.wait_stderr(r"upstream app: app\.test:%d resolves to 1 address \(127\.0\.0\.1 first; "
                   r"TTL 1s\)" % a.port, 10)
    got = [http_get(gh.port, "/echo") for _ in range(4)]
    eq([(r.status, origin_of(r)) for r in got], [(200, "a")] * 4, "on the first address")
    d.names["app.test"] = ["127.0.0.2"]
    gh.wait_stderr(r"app\.test:%d resolves to 1 address \(127\.0\.0\.2 first" % a.port, 15)
    wait_until(lambda: origin_of(http_get(gh.port, "/echo")) == "b", 10, "requests on b")
    del d.names["app.test"]
    gh.wait_stderr(r"upstream app: app\.test:%d does not resolve \(not found\): no new request "
                   r"goes to it" % a.port, 15)
    r = http_get(gh.port, "/echo")
    eq((r.status, r.header("retry-after")), (503, "1"), "its only server drained")
    d.names["app.test"] = ["127.0.0.1", "127.0.0.2"]
    gh.wait_stderr(r"resolves to 2 addresses", 15)
    seen = set(origin_of(http_get(gh.port, "/echo")) for _ in range(8))
    eq(seen, {"a", "b"}, "both addresses used in turn")
    check(d.queries.get("app.test", 0) >= 4, "re-resolved on TTL (%r)" % d.queries)


@test("a name that never resolves leaves the other servers serving; health checks reach a "
      "named server's addresses", timeout=60)
def t():
    a, n = Origin(name="a"), Origin(name="n")
    d = dnsd.DnsServer({"n.test": ["127.0.0.1"]}, ttl=1).start()
    gh = Gatehouse(conf(d.port, ["127.0.0.1:%d" % a.port, "missing.test:80 resolve",
                                 "n.test:%d resolve" % n.port],
                        "    health_check /hc interval=200ms;\n"))
    gh.wait_stderr(r"missing\.test:80 does not resolve", 10)
    gh.wait_stderr(r"n\.test:%d resolves to 1 address" % n.port, 10)
    wait_until(lambda: len(n.requests_to("/hc")) >= 2, 10, "checks of the named server")
    got = [http_get(gh.port, "/echo") for _ in range(12)]
    eq([r.status for r in got], [200] * 12, "statuses")
    eq(set(origin_of(r) for r in got), {"a", "n"}, "the resolved servers answer")


@test("-t: bad names and resolvers are errors with FILE:LINE:COL")
def t():
    d = tmpdir()
    cases = [("server bad_name-.test:80 resolve;", "invalid name 'bad_name-.test:80'"),
             ("server app.test:99999 resolve;", "invalid name 'app.test:99999'"),
             ("server app.test:80;", "invalid address 'app.test:80'"),
             ("server app.test resolve; resolver 10.0.0.x;", "invalid address '10.0.0.x' in "
                                                              "'resolver'"),
             ("server app.test resolve; resolver_timeout 0;", "'resolver_timeout' is above 0")]
    for i, (line, want) in enumerate(cases):
        path = os.path.join(d, "r%d.conf" % i)
        with open(path, "w") as f:
            f.write("upstream app {\n    server 127.0.0.1:9;\n    %s\n}\n"
                    "server { listen 127.0.0.1:%d; proxy app; }\n" % (line, free_port()))
        r = run_gh(["-t", "-c", path])
        eq(r.returncode, 1, "exit status for %r" % line)
        check(re.search(r"r%d\.conf:3:\d+: " % i, r.stderr) and want in r.stderr,
              "for %r: %s" % (line, r.stderr.strip()))
    path = os.path.join(d, "ok.conf")
    with open(path, "w") as f:
        f.write("upstream app { server app.test resolve; server 127.0.0.1:9; }\n"
                "server { listen 127.0.0.1:%d; proxy app; }\n" % free_port())
    eq(run_gh(["-t", "-c", path]).returncode, 0, "a named server without resolver (the system's)")


run()
