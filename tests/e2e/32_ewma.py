#!/usr/bin/env python3
"""`balance ewma` with real origins of different speeds (artificial delays): with one origin
answering in 5 ms and one in 50 ms, most requests go to the fast one; when the fast one slows
down (100 ms), traffic moves to the other. Counts only, no timing assertions; loopback only."""

import ghtest
from ghtest import *


def delayed_origin(name, delay):
    """An origin that waits .delay seconds before every answer (changeable while running)."""
    om = load_origin_module()

    class Delayed(om.Origin):
        def _dispatch(self, s, rd, req, keep, cid, seq):
            self.stopping.wait(self.delay)
            return om.Origin._dispatch(self, s, rd, req, keep, cid, seq)

    o = Delayed(name=name)
    o.delay = delay
    ghtest._register(o)
    return o.start()


@test("ewma: 5 ms against 50 ms, most requests to the fast origin; it slows down, traffic moves",
      timeout=120)
def t():
    fast, slow = delayed_origin("fast", 0.005), delayed_origin("slow", 0.05)
    gh = Gatehouse(lambda g: BASE_TOP + "threads 1;\nupstream app {\n"
                   "    server 127.0.0.1:%d;\n    server 127.0.0.1:%d;\n    balance ewma;\n}\n"
                   "server { listen 127.0.0.1:%d; proxy app; }\n" % (fast.port, slow.port, g.port))
    with Conn(gh.port) as c:
        got = [c.request("GET", "/echo").header("x-origin-name") for _ in range(100)]
        diag("fast %d, slow %d" % (got.count("fast"), got.count("slow")))
        check(got.count("fast") >= 80, "the fast origin got %d of 100" % got.count("fast"))
        fast.delay = 0.1
        got = [c.request("GET", "/echo").header("x-origin-name") for _ in range(40)]
        diag("after the slowdown: fast %d, slow %d" % (got.count("fast"), got.count("slow")))
        check(got.count("slow") >= 28, "the formerly slow origin got %d of 40 after the fast "
                                       "one slowed to 100 ms" % got.count("slow"))


run()
