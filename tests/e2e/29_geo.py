#!/usr/bin/env python3
"""Closest-origin routing: `geo $NAME { }` maps client addresses to regions by longest prefix
(in the config and in included files), `$NAME` in templates, and `balance geo $NAME [ewma]`
with `region_fallback`: clients bound to 127.0.0.2 land on region A's servers, 127.0.0.3 on
B's, and A's clients move to the fallback region when A's servers are down (then back).
examples/geo.conf and examples/load-balancer.conf run as shipped (ports moved). Loopback only."""

import os
import subprocess

from ghtest import *

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def origin_of(r):
    return r.header("x-origin-name")


def get_from(port, source, target="/echo"):
    return http_request(port, "GET", target, source=source)


def geo_conf(text, origins, health_interval="200ms"):
    """examples/geo.conf with its ports moved to origins (3001..3004) and the listener."""
    def build(g):
        t_ = text
        for i, o in enumerate(origins):
            t_ = t_.replace("127.0.0.1:%d" % (3001 + i), "127.0.0.1:%d" % o.port)
        t_ = t_.replace("127.0.0.1:8080", "127.0.0.1:%d" % g.port)
        t_ = t_.replace("include geo-regions.txt;",
                        "include %s;" % os.path.join(ROOT, "examples/geo-regions.txt"))
        t_ = t_.replace("interval=2s timeout=1s", "interval=%s timeout=150ms" % health_interval)
        return "error_log stderr info;\n" + t_.replace("threads auto;", "threads 2;")
    return build


@test("examples/geo.conf as shipped (ports moved): 127.0.0.2 lands on eu, 127.0.0.3 on us; "
      "eu's clients go to us (their first fallback) while eu's servers are down, then back",
      timeout=90)
def t():
    path = os.path.join(ROOT, "examples/geo.conf")
    check(run_gh(["-t", "-c", path]).returncode == 0, "the example as shipped passes -t")
    with open(path) as f:
        text = f.read()
    eu1, eu2, us, asia = (Origin(name=n) for n in ("eu1", "eu2", "us", "asia"))
    gh = Gatehouse(geo_conf(text, [eu1, eu2, us, asia]))
    got = [get_from(gh.port, "127.0.0.2") for _ in range(10)]
    eq([r.status for r in got], [200] * 10, "statuses from 127.0.0.2")
    eq(set(origin_of(r) for r in got) <= {"eu1", "eu2"}, True,
       "127.0.0.2 on eu: %s" % [origin_of(r) for r in got])
    eq(set(r.header("x-region") for r in got), {"eu"}, "$region of 127.0.0.2")
    got = [get_from(gh.port, "127.0.0.3") for _ in range(6)]
    eq(set(origin_of(r) for r in got), {"us"}, "127.0.0.3 on us")
    eq(set(r.header("x-region") for r in got), {"us"}, "$region of 127.0.0.3")
    eq(get_from(gh.port, "127.0.0.4").header("x-region"), "eu", "the default region")

    eu1.stop()
    eu2.stop()
    got = [get_from(gh.port, "127.0.0.2") for _ in range(10)]
    eq([r.status for r in got], [200] * 10, "statuses with eu down (retried)")
    eq(set(origin_of(r) for r in got), {"us"}, "eu's clients on us (not asia)")
    gh.wait_stderr(r"server 127\.0\.0\.1:%d is down" % eu1.port, 15)
    eu1b = Origin(port=eu1.port, name="eu1b")
    gh.wait_stderr(r"server 127\.0\.0\.1:%d is up" % eu1.port, 15)
    wait_until(lambda: origin_of(get_from(gh.port, "127.0.0.2")) == "eu1b", 15,
               "eu's clients back on eu")
    eq(origin_of(get_from(gh.port, "127.0.0.3")), "us", "us's clients stay")


@test("geo: the longest prefix wins, across the block and an included file (IPv6 entries "
      "beside IPv4 ones); $NAME in templates")
def t():
    d = tmpdir()
    lst = os.path.join(d, "list.txt")
    with open(lst, "w") as f:
        f.write("# generated\n")
        for i in range(2000):
            f.write("10.%d.%d.0/24 r%d;\n" % (i // 256, i % 256, i % 7))
        f.write("127.0.0.2/32 near  # a comment\n\n127.0.0.0/30 mid;\n")
    a = Origin(name="a")

    def conf(g):
        return (BASE_TOP + "threads 1;\n"
                "server { listen 127.0.0.1:%d; proxy 127.0.0.1:%d;\n"
                "  response_header set X-Geo \"[$where]\"; }\n"
                "geo $where {\n  127.0.0.0/8 wide;\n  ::1 six;\n  include %s;\n}\n"
                % (g.port, a.port, lst))
    gh = Gatehouse(conf)
    eq(get_from(gh.port, "127.0.0.2").header("x-geo"), "[near]", "a /32 from the file")
    eq(get_from(gh.port, "127.0.0.3").header("x-geo"), "[mid]", "a /30 from the file")
    eq(get_from(gh.port, "127.0.0.9").header("x-geo"), "[wide]", "the block's /8")
    eq(http_get(gh.port, "/").status, 200, "a plain request")


@test("-t: geo errors name FILE:LINE:COL (a bad prefix, a bad line in an included file, a "
      "duplicate prefix, a bad variable name, balance geo without regions)")
def t():
    d = tmpdir()
    lst = os.path.join(d, "bad.txt")
    with open(lst, "w") as f:
        f.write("10.0.0.0/8 a;\n10.0.0.0/33 b;\n10.1.0.0/16 c d;\n")
    dup = os.path.join(d, "dup.txt")
    with open(dup, "w") as f:
        f.write("# x\n10.0.0.0/8 a;\n")
    port = free_port()
    cases = [
        ("geo $g { 10.0.0.0/x a; }", r"g0\.conf:1:10: invalid address or prefix '10.0.0.0/x'"),
        ("geo $g { include %s; }" % lst, r"bad\.txt:2:1: invalid address or prefix"),
        ("geo $g { include %s; }" % lst, r"bad\.txt:3:\d+: expected 'CIDR VALUE;'"),
        ("geo $g { 10.0.0.0/8 x; include %s; }" % dup,
         r"duplicate prefix in 'geo \$g': at .*g3\.conf:1:10 and .*dup\.txt:2"),
        ("geo g { }", r"g4\.conf:1:5: 'geo' expects a variable name"),
        ("geo $host { }", r"variable '\$host' is already defined"),
        ("geo $g { default a; default b; }", r"duplicate 'default' in 'geo'"),
        ("geo $g { 10.0.0.0/8 a b; }", r"expected 'CIDR VALUE;'"),
        ("upstream u { server 127.0.0.1:9; balance geo $remote_addr; }",
         r"'balance geo' in upstream 'u' needs servers with region=NAME"),
    ]
    for i, (line, want) in enumerate(cases):
        path = os.path.join(d, "g%d.conf" % i)
        with open(path, "w") as f:
            f.write(line + "\nserver { listen 127.0.0.1:%d; return 200; }\n" % port)
        r = run_gh(["-t", "-c", path])
        eq(r.returncode, 1, "exit status for %r" % line)
        check(re.search(want, r.stderr), "for %r: %s" % (line, r.stderr.strip()))


@test("geo with a MaxMind DB: continents by client address (a prefix of the block wins), "
      "balance geo over them; a missing database is a -t error")
def t():
    d = tmpdir()
    db = os.path.join(d, "t.mmdb")
    r = subprocess.run(["perl", os.path.join(ROOT, "tests/e2e/mkmmdb.pl"), db,
                        "127.0.0.2/32=EU:DE", "127.0.0.3/32=NA:US", "127.0.0.4/32=AS"],
                       capture_output=True, text=True)
    eq(r.returncode, 0, "mkmmdb.pl: %s" % r.stderr)
    eu, na = Origin(name="eu"), Origin(name="na")

    def conf(g):
        return (BASE_TOP + "threads 2;\n"
                "geo $continent { default EU; maxmind %s continent code; 127.0.0.4 NA; }\n"
                "geo $country { maxmind %s country iso_code; }\n"
                "upstream app { server 127.0.0.1:%d region=EU; server 127.0.0.1:%d region=NA;\n"
                "  balance geo $continent; }\n"
                "server { listen 127.0.0.1:%d; proxy app;\n"
                "  response_header set X-Geo \"$continent/$country\"; }\n"
                % (db, db, eu.port, na.port, g.port))
    gh = Gatehouse(conf)
    for src, want, origin in (("127.0.0.2", "EU/DE", "eu"), ("127.0.0.3", "NA/US", "na"),
                              ("127.0.0.4", "NA/", "na"), ("127.0.0.5", "EU/", "eu")):
        got = [get_from(gh.port, src) for _ in range(3)]
        eq(set(r.header("x-geo") for r in got), {want}, "$continent/$country of %s" % src)
        eq(set(origin_of(r) for r in got), {origin}, "the origin for %s" % src)
    path = os.path.join(d, "bad.conf")
    with open(path, "w") as f:
        f.write("geo $c {\n  maxmind %s/none.mmdb continent code;\n}\n"
                "server { listen 127.0.0.1:%d; return 200; }\n" % (d, free_port()))
    r = run_gh(["-t", "-c", path])
    eq(r.returncode, 1, "exit status")
    check(re.search(r"bad\.conf:2:11: cannot open MaxMind database .*none\.mmdb", r.stderr),
          r.stderr)


@test("examples/load-balancer.conf as shipped passes -t and serves through its api upstream")
def t():
    path = os.path.join(ROOT, "examples/load-balancer.conf")
    check(run_gh(["-t", "-c", path]).returncode == 0, "the example as shipped passes -t")
    with open(path) as f:
        text = f.read()
    os_ = [Origin(name="o%d" % i) for i in range(4)]

    def conf(g):
        t_ = text
        for i, p in enumerate((3001, 3002, 3003, 3009)):
            t_ = t_.replace("127.0.0.1:%d" % p, "127.0.0.1:%d" % os_[i].port)
        for i, p in enumerate((8081, 8082, 8083)):
            t_ = t_.replace("127.0.0.1:%d" % p, "127.0.0.1:%d" % g.ports[i])
        t_ = t_.replace("interval=2s", "interval=200ms")
        return t_.replace("threads auto;", "threads 1;").replace("access_log stderr json;",
                                                                 "access_log off;")
    gh = Gatehouse(conf, nports=3)
    got = [http_request(gh.port, "GET", "/echo", host="api.test") for _ in range(8)]
    eq([r.status for r in got], [200] * 8, "statuses")
    eq(set(origin_of(r) for r in got), {"o0", "o1", "o2"}, "primaries answer, not the backup")


run()
