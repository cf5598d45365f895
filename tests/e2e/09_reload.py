#!/usr/bin/env python3
"""Configuration reload on SIGHUP: takes effect, survives broken configs, loses no requests
under load, adds and removes listeners."""

import signal
import threading

from ghtest import *


def conf(oport, version, listen_ports, broken=False):
    def build(g):
        listens = "".join("    listen 127.0.0.1:%d;\n" % p for p in listen_ports(g))
        text = BASE_TOP + "server {\n" + listens + (
            "    proxy 127.0.0.1:%d;\n" % oport +
            "    route / {\n        response_header set X-Version %s;\n    }\n}\n" % version)
        if broken:
            text = text.replace("server {\n", "server {\n    proxxy_pass nowhere;\n", 1)
        return text

    return build


def version(port):
    r = http_get(port, "/echo")
    eq(r.status, 200, "status")
    return r.header("x-version")


@test("SIGHUP with a changed config takes effect")
def t():
    o = Origin()
    gh = Gatehouse(conf(o.port, "v1", lambda g: [g.port]))
    eq(version(gh.port), "v1", "before reload")
    gh.reload(conf(o.port, "v2", lambda g: [g.port]))
    wait_until(lambda: version(gh.port) == "v2", 10, "X-Version v2 after reload")


@test("SIGHUP with a broken config keeps the old one and logs FILE:LINE:COL")
def t():
    o = Origin()
    gh = Gatehouse(conf(o.port, "v1", lambda g: [g.port]))
    eq(version(gh.port), "v1", "before reload")
    mark = len(gh.stderr())
    gh.reload(conf(o.port, "v2", lambda g: [g.port], broken=True))
    gh.wait_stderr(r"gatehouse\.conf:4:5:", 10, start=mark)
    check(gh.alive(), "gatehouse must keep running")
    eq(version(gh.port), "v1", "old config still serving")
    gh.reload(conf(o.port, "v3", lambda g: [g.port]))
    wait_until(lambda: version(gh.port) == "v3", 10, "a later good reload still works")


@test("in-flight request survives a reload")
def t():
    o = Origin()
    gh = Gatehouse(conf(o.port, "v1", lambda g: [g.port]))
    res = {}

    def client():
        try:
            res["r"] = http_get(gh.port, "/slow-first-byte/1.5", timeout=20)
        except Exception as e:
            res["e"] = e

    th = threading.Thread(target=client, daemon=True)
    th.start()
    o.wait_requests(1, 10)
    gh.reload(conf(o.port, "v2", lambda g: [g.port]))
    wait_until(lambda: version(gh.port) == "v2", 10, "reload applied")
    th.join(20)
    check("e" not in res, "in-flight request failed: %r" % res.get("e"))
    eq(res["r"].status, 200, "in-flight status")


@test("~2000 requests under 20 reloads: zero failures", timeout=150)
def t():
    o = Origin()
    gh = Gatehouse(conf(o.port, "v0", lambda g: [g.port]))
    lock = threading.Lock()
    stats = {"ok": 0, "fail": []}
    reloads_done = threading.Event()
    per_thread = 500

    def record(ok, what=None):
        with lock:
            if ok:
                stats["ok"] += 1
            else:
                stats["fail"].append(what)

    def keepalive_worker(wid):
        c = None
        n = 0
        while n < per_thread or not reloads_done.is_set():
            if n >= per_thread * 3:
                break
            if c is None:
                c = Conn(gh.port, timeout=15)
            try:
                r = c.request("GET", "/bytes/%d" % (100 + n % 50))
                good = r.status == 200 and r.body == det_bytes(100 + n % 50)
                record(good, "ka%d #%d: status %s" % (wid, n, r.status))
                if (r.header("connection") or "").lower() == "close":
                    c.close()
                    c = None
            except Exception as e:
                record(False, "ka%d #%d: %r" % (wid, n, e))
                c.close()
                c = None
            n += 1
        if c:
            c.close()

    def newconn_worker(wid):
        n = 0
        while n < per_thread or not reloads_done.is_set():
            if n >= per_thread * 3:
                break
            try:
                r = http_request(gh.port, "POST" if n % 3 == 0 else "GET", "/upload",
                                 body=b"b" * 2000 if n % 3 == 0 else None, timeout=15)
                record(r.status == 200, "nc%d #%d: status %s" % (wid, n, r.status))
            except Exception as e:
                record(False, "nc%d #%d: %r" % (wid, n, e))
            n += 1

    threads = [threading.Thread(target=keepalive_worker, args=(i,), daemon=True)
               for i in range(2)]
    threads += [threading.Thread(target=newconn_worker, args=(i,), daemon=True)
                for i in range(2)]
    for th in threads:
        th.start()
    t0 = time.monotonic()
    for i in range(1, 21):
        wait_until(lambda: stats["ok"] + len(stats["fail"]) >= i * 60, 60, "load progress")
        gh.reload(conf(o.port, "v%d" % i, lambda g: [g.port]))
    reloads_done.set()
    for th in threads:
        th.join(120)
    total = stats["ok"] + len(stats["fail"])
    diag("%d requests, %d failed, %.1fs" % (total, len(stats["fail"]), time.monotonic() - t0))
    for f in stats["fail"][:20]:
        diag("  failed:", f)
    eq(len(stats["fail"]), 0, "failed requests")
    check(total >= 2000, "only %d requests" % total)
    wait_until(lambda: version(gh.port) == "v20", 10, "last reload applied")


@test("reload adds a listener that starts accepting and removes one that stops")
def t():
    o = Origin()
    gh = Gatehouse(conf(o.port, "v1", lambda g: [g.ports[0]]), nports=2,
                   wait_ports=lambda g: [g.ports[0]])
    p1, p2 = gh.ports
    check(not port_accepts(p2), "second port must not accept before the reload")
    gh.reload(conf(o.port, "v2", lambda g: [p1, p2]))
    wait_until(lambda: port_accepts(p2), 10, "new listener to accept")
    eq(version(p2), "v2", "served on the new listener")
    eq(version(p1), "v2", "old listener still serving")
    gh.reload(conf(o.port, "v3", lambda g: [p2]))
    wait_until(lambda: not port_accepts(p1), 10, "removed listener to stop accepting")
    wait_until(lambda: version(p2) == "v3", 10, "still serving on the kept listener")


@test("reload logs each listen address: opened, kept, closed")
def t():
    o = Origin()
    gh = Gatehouse(conf(o.port, "v1", lambda g: [g.ports[0]]), nports=3,
                   wait_ports=lambda g: [g.ports[0]])
    p1, p2, p3 = gh.ports
    gh.wait_stderr(r"\[info\] gatehouse .* started", 10)
    check("listener " not in gh.stderr(), "the start logs 'listening on', not listener changes")
    mark = len(gh.stderr())
    gh.reload(conf(o.port, "v2", lambda g: [p1, p2]))
    gh.wait_stderr(r"\[info\] reload complete", 10, start=mark)
    log = gh.stderr()[mark:]
    check("[info] listener kept: 127.0.0.1:%d\n" % p1 in log, "p1 kept in: %r" % log)
    check("[info] listener opened: 127.0.0.1:%d\n" % p2 in log, "p2 opened in: %r" % log)
    eq(log.count("listener "), 2, "listener lines after the first reload")
    mark = len(gh.stderr())
    gh.reload(conf(o.port, "v3", lambda g: [p3, p2]))
    gh.wait_stderr(r"\[info\] reload complete", 10, start=mark)
    log = gh.stderr()[mark:]
    check("[info] listener opened: 127.0.0.1:%d\n" % p3 in log, "p3 opened in: %r" % log)
    check("[info] listener kept: 127.0.0.1:%d\n" % p2 in log, "p2 kept in: %r" % log)
    check("[info] listener closed: 127.0.0.1:%d (" % p1 in log, "p1 closed in: %r" % log)
    eq(log.count("listener "), 3, "listener lines after the second reload")
    wait_until(lambda: not port_accepts(p1), 10, "removed listener to stop accepting")
    eq(version(p3), "v3", "served on the new listener")
    # a reload that fails changes nothing and says nothing about listeners
    mark = len(gh.stderr())
    gh.reload(conf(o.port, "v4", lambda g: [p3], broken=True))
    gh.wait_stderr(r"reload failed", 10, start=mark)
    check("listener " not in gh.stderr()[mark:], "no listener lines for a failed reload")


run()
