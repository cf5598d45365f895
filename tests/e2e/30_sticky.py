#!/usr/bin/env python3
"""Sticky sessions (`sticky cookie NAME`): the first answer sets a cookie naming its origin (a
hash, never the address), requests carrying it stay on that origin whatever the balancer says,
and when that origin is gone (dead, or removed by a reload) the request goes where the balancer
(here a hash) sends it and gets a new cookie. Loopback only."""

import os

from ghtest import *


def conf(ports, extra="    sticky cookie gh_srv expires=1h path=/app;"):
    def build(g):
        servers = "".join("    server 127.0.0.1:%d;\n" % p for p in ports)
        return (BASE_TOP + "threads 2;\nupstream app {\n" + servers + extra +
                "\n    retry_on connect_failure;\n    retries 3;\n}\n"
                "server {\n    listen 127.0.0.1:%d;\n    proxy app;\n}\n" % g.port)
    return build


def get(port, cookie=None, target="/app/echo"):
    return http_request(port, "GET", target,
                        headers=[("Cookie", "a=1; %s; b=2" % cookie)] if cookie else None)


def sticky_of(r):
    v = r.header("set-cookie")
    if v is None:
        return None
    check(re.fullmatch(r"gh_srv=[0-9a-f]{16}; Path=/app; Max-Age=3600; HttpOnly", v),
          "Set-Cookie: %r" % v)
    return v.split(";")[0]


@test("sticky cookie: set on the first answer; the cookie keeps a client on its origin")
def t():
    os_ = [Origin(name=n) for n in ("a", "b", "c")]
    gh = Gatehouse(conf([o.port for o in os_]))
    cookies = {}
    for _ in range(6):
        r = get(gh.port)
        eq(r.status, 200, "status")
        c = sticky_of(r)
        check(c is not None, "a first answer sets the cookie")
        cookies[r.header("x-origin-name")] = c
    eq(sorted(cookies), ["a", "b", "c"], "round robin without a cookie")
    check(all(str(o.port) not in v for o in os_ for v in cookies.values()), "no address shown")
    for name, c in cookies.items():
        got = [get(gh.port, c) for _ in range(8)]
        eq(set(r.header("x-origin-name") for r in got), {name}, "with %s" % c)
        eq([r.header("set-cookie") for r in got], [None] * 8, "no new cookie while it holds")
    r = get(gh.port, "gh_srv=0123456789abcdef")
    check(sticky_of(r) is not None, "an unknown value gets a new cookie")


@test("sticky cookie: its origin dead or removed, the request goes by the hash and gets a new "
      "cookie", timeout=60)
def t():
    os_ = [Origin(name=n) for n in ("a", "b", "c")]
    ports = [o.port for o in os_]
    extra = "    balance hash $arg_u consistent;\n    sticky cookie gh_srv;"
    gh = Gatehouse(conf(ports, extra))
    r = get(gh.port, target="/app/echo?u=x")
    first, c = r.header("x-origin-name"), r.header("set-cookie").split(";")[0]
    check(re.fullmatch(r"gh_srv=[0-9a-f]{16}", c), c)
    eq(r.header("set-cookie"), c + "; Path=/; HttpOnly", "default attributes")
    victim = next(o for o in os_ if o.name == first)
    victim.stop()
    r = get(gh.port, c, "/app/echo?u=x")
    eq(r.status, 200, "status with the cookie's origin dead")
    check(r.header("x-origin-name") != first, "another origin answered")
    check(r.header("set-cookie") and r.header("set-cookie").split(";")[0] != c, "a new cookie")
    # a reload that removes it: the hash decides, the same as without a cookie
    gh.reload(conf([p for p in ports if p != victim.port], extra))
    gh.wait_stderr(r"reload complete", 10)
    by_hash = get(gh.port, None, "/app/echo?u=x").header("x-origin-name")
    wait_until(lambda: get(gh.port, c, "/app/echo?u=x").header("x-origin-name") == by_hash, 10,
               "the reload to apply")


@test("-t: bad sticky values are errors with FILE:LINE:COL")
def t():
    d = tmpdir()
    cases = [("sticky route x;", "unknown kind 'route' of 'sticky'"),
             ("sticky cookie a=b;", "invalid cookie name 'a=b'"),
             ("sticky cookie s path=x;", "unknown or invalid parameter 'path=x'"),
             ("sticky cookie s expires=soon;", "invalid duration 'soon' for 'expires'")]
    for i, (line, want) in enumerate(cases):
        path = os.path.join(d, "s%d.conf" % i)
        with open(path, "w") as f:
            f.write("upstream app {\n    server 127.0.0.1:9;\n    %s\n}\n"
                    "server { listen 127.0.0.1:%d; proxy app; }\n" % (line, free_port()))
        r = run_gh(["-t", "-c", path])
        eq(r.returncode, 1, "exit status for %r" % line)
        check(re.search(r"s%d\.conf:3:\d+: " % i, r.stderr) and want in r.stderr,
              "for %r: %s" % (line, r.stderr.strip()))


run()
