#!/usr/bin/env python3
"""The cache's disk tier (`cache NAME { disk PATH SIZE; }`): objects written through to files
under PATH survive a restart (served as hits, with an Age that counts the time stored, the
origin asked once), a disk budget smaller than what passes through holds (the directory's
size measured), PURGE removes the disk copy too, a damaged or truncated file found at start is
removed and logged, the directory is checked by `-t`, and a reload keeps the tier. No timing
assertions; loopback only."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ghtest  # noqa: E402
from ghtest import *  # noqa: E402,F401,F403
from cache_origin import CacheOrigin  # noqa: E402


def make_origin():
    o = CacheOrigin().start()
    ghtest._register(o)
    return o


def disk_conf(o, path, disk="4m", memory="1m", max_object="256k"):
    def build(g):
        return (BASE_TOP
                + "cache main { memory %s; disk %s %s; max_object %s; }\n" % (memory, path, disk,
                                                                             max_object)
                + "server {\n    listen 127.0.0.1:%d;\n    proxy 127.0.0.1:%d;\n" % (g.port,
                                                                                     o.port)
                + "    cache main;\n    cache_status on;\n    cache_purge_from 127.0.0.1;\n"
                + "    response_header set X-Cache $upstream_cache_status;\n}\n")
    return build


def get(gh, path, method="GET", headers=None):
    return http_request(gh.port, method, path, headers=headers)


def files(path):
    """The cache files in path (tmp.* included) and their total size."""
    names, size = [], 0
    for n in os.listdir(path):
        try:
            size += os.path.getsize(os.path.join(path, n))
            names.append(n)
        except FileNotFoundError:  # renamed or evicted meanwhile
            pass
    return names, size


def stopped(gh):
    eq(gh.stop(), 0, "exit status")


@test("restart: a stored object is a hit from disk, Age counts its time stored, origin asked once")
def t():
    o = make_origin()
    d = os.path.join(tmpdir(), "c")  # made at start
    o.set("/r", headers=[("Cache-Control", "max-age=3600"), ("Age", "100"),
                         ("Content-Type", "text/x-disk")], body=det_bytes(150000, 3))
    conf = disk_conf(o, d)
    gh = Gatehouse(conf)
    r = get(gh, "/r")
    eq(r.status, 200)
    eq(r.header("x-cache"), "MISS")
    stopped(gh)
    names, _ = files(d)
    eq(len(names), 1, "files %s" % names)
    gh2 = Gatehouse(conf)
    gh2.wait_stderr(r"cache main: disk .*: 1 object\(s\)")
    r = get(gh2, "/r")
    eq(r.status, 200)
    eq(r.header("x-cache"), "HIT")
    eq(r.body, det_bytes(150000, 3))
    eq(r.header("content-type"), "text/x-disk")
    eq(r.header("content-length"), "150000")
    age = int(r.header("age"))
    check(100 <= age < 100 + 600, "Age %s" % age)
    check("hit" in (r.header("cache-status") or ""), r.header("cache-status"))
    r = get(gh2, "/r")  # from memory now
    eq(r.header("x-cache"), "HIT")
    eq(r.body, det_bytes(150000, 3))
    eq(o.count("/r"), 1)
    stopped(gh2)
    check(b"disk: 1 hit(s)" in open(gh2.stderr_path, "rb").read(), "disk hit counted")


@test("a disk budget smaller than what passes through holds (directory size measured)")
def t():
    o = make_origin()
    d = os.path.join(tmpdir(), "c")
    os.mkdir(d)
    for i in range(40):
        o.set("/b%d" % i, headers=[("Cache-Control", "max-age=3600")],
              body=det_bytes(40000, i))
    gh = Gatehouse(disk_conf(o, d, disk="256k", memory="128k", max_object="64k"))
    for i in range(40):
        r = get(gh, "/b%d" % i)
        eq(r.status, 200)
        names, size = files(d)
        check(size <= 256 * 1024 + 64 * 1024, "%d bytes on disk" % size)  # + one being written
    stopped(gh)
    names, size = files(d)
    check(size <= 256 * 1024, "%d bytes in %d files after the writes" % (size, len(names)))
    check(len(names) >= 3, "files kept: %s" % names)
    check(not any(n.startswith("tmp.") for n in names), names)
    # the newest ones are on disk: a restart serves them
    gh2 = Gatehouse(disk_conf(o, d, disk="256k", memory="128k", max_object="64k"))
    r = get(gh2, "/b39")
    eq(r.header("x-cache"), "HIT")
    eq(r.body, det_bytes(40000, 39))
    eq(o.count("/b39"), 1)


@test("PURGE removes the disk copy (after a restart too); the next request goes to the origin")
def t():
    o = make_origin()
    d = os.path.join(tmpdir(), "c")
    o.set("/p1", headers=[("Cache-Control", "max-age=3600")], body=b"one")
    o.set("/p2", headers=[("Cache-Control", "max-age=3600")], body=b"two")
    conf = disk_conf(o, d)
    gh = Gatehouse(conf)
    get(gh, "/p1")
    get(gh, "/p2")
    wait_until(lambda: len(files(d)[0]) == 2, what="two files written")
    eq(get(gh, "/p1", method="PURGE").status, 200)
    eq(len(files(d)[0]), 1)
    stopped(gh)
    gh2 = Gatehouse(conf)
    eq(get(gh2, "/p2", method="PURGE").status, 200)  # on disk only
    eq(files(d)[0], [])
    eq(get(gh2, "/p2", method="PURGE").status, 404)
    r = get(gh2, "/p1")
    eq(r.header("x-cache"), "MISS")
    r = get(gh2, "/p2")
    eq(r.header("x-cache"), "MISS")
    eq(o.count("/p1"), 2)
    eq(o.count("/p2"), 2)


@test("damaged and truncated files at start are removed and logged; the rest are served")
def t():
    o = make_origin()
    d = os.path.join(tmpdir(), "c")
    o.set("/ok", headers=[("Cache-Control", "max-age=3600")], body=b"fine")
    o.set("/cut", headers=[("Cache-Control", "max-age=3600")], body=det_bytes(9000, 1))
    conf = disk_conf(o, d)
    gh = Gatehouse(conf)
    get(gh, "/ok")
    wait_until(lambda: len(files(d)[0]) == 1, what="the first file written")
    first = files(d)[0][0]
    get(gh, "/cut")
    stopped(gh)
    cut = [n for n in files(d)[0] if n != first][0]
    with open(os.path.join(d, cut), "r+b") as f:
        f.truncate(5000)
    with open(os.path.join(d, "0123456789abcdef"), "wb") as f:
        f.write(b"GHCDISK1" + b"\xff" * 200)
    with open(os.path.join(d, "tmp.7"), "wb") as f:  # a write a crash cut short
        f.write(b"GHCDISK1")
    gh2 = Gatehouse(conf)
    gh2.wait_stderr(r"cache main: disk .*: 1 object\(s\)")
    err = gh2.stderr()
    check("%s is damaged or truncated: removed" % cut in err, err[-2000:])
    check("0123456789abcdef is damaged or truncated: removed" in err, err[-2000:])
    eq(sorted(files(d)[0]), [first])
    r = get(gh2, "/ok")
    eq(r.header("x-cache"), "HIT")
    eq(r.body, b"fine")
    r = get(gh2, "/cut")
    eq(r.header("x-cache"), "MISS")
    eq(r.body, det_bytes(9000, 1))
    eq(o.count("/ok"), 1)


@test("a damaged body found at a hit: the file is removed, logged, and the origin answers")
def t():
    o = make_origin()
    d = os.path.join(tmpdir(), "c")
    o.set("/bad", headers=[("Cache-Control", "max-age=3600")], body=det_bytes(20000, 2))
    conf = disk_conf(o, d)
    gh = Gatehouse(conf)
    get(gh, "/bad")
    stopped(gh)
    name = files(d)[0][0]
    with open(os.path.join(d, name), "r+b") as f:
        f.seek(10000)
        f.write(b"XXXX")
    gh2 = Gatehouse(conf)
    r = get(gh2, "/bad")
    eq(r.status, 200)
    eq(r.header("x-cache"), "MISS")
    eq(r.body, det_bytes(20000, 2))
    gh2.wait_stderr("is damaged or truncated: removed")
    eq(o.count("/bad"), 2)


@test("-t: disk accepted; a directory that cannot be made is an error at file:line:col")
def t():
    base = tmpdir()
    ok = os.path.join(base, "ok.conf")
    with open(ok, "w") as f:
        f.write("cache c { memory 1m; disk %s/d 10m; }\n" % base)
    r = run_gh(["-t", "-c", ok])
    eq(r.returncode, 0, r.stderr)
    check(not os.path.exists(os.path.join(base, "d")), "-t makes no directory")
    bad = os.path.join(base, "bad.conf")
    with open(bad, "w") as f:
        f.write("cache c {\n    memory 1m;\n    disk %s/no/such 10m;\n}\n" % base)
    r = run_gh(["-t", "-c", bad])
    eq(r.returncode, 1)
    check("bad.conf:3:10" in r.stderr and "cannot be used" in r.stderr, r.stderr)
    with open(bad, "w") as f:
        f.write("cache a { disk %s 10m; }\ncache b { disk %s 10m; }\n" % (base, base))
    r = run_gh(["-t", "-c", bad])
    eq(r.returncode, 1)
    check("already the disk of cache 'a'" in r.stderr, r.stderr)
    with open(bad, "w") as f:
        f.write("cache a { disk %s; }\n" % base)
    r = run_gh(["-t", "-c", bad])
    check("disk PATH SIZE" in r.stderr, r.stderr)


@test("a reload keeps the disk tier (same path) and its objects")
def t():
    o = make_origin()
    d = os.path.join(tmpdir(), "c")
    o.set("/k", headers=[("Cache-Control", "max-age=3600")], body=b"kept")
    gh = Gatehouse(disk_conf(o, d))
    get(gh, "/k")
    wait_until(lambda: len(files(d)[0]) == 1, what="the file written")
    n = gh.stderr().count("cache main: disk ")
    gh.reload(disk_conf(o, d, memory="2m"))
    gh.wait_stderr("reload complete")
    eq(gh.stderr().count("cache main: disk "), n, "not scanned again")
    r = get(gh, "/k")
    eq(r.header("x-cache"), "HIT")
    eq(o.count("/k"), 1)
    eq(len(files(d)[0]), 1)
    # another directory: a new tier there (the old one's files stay)
    d2 = os.path.join(tmpdir(), "c2")
    gh.reload(disk_conf(o, d2))
    gh.wait_stderr("cache main: disk %s: 0 object" % re.escape(d2))
    gh.wait_stderr("reload complete")
    o.set("/k2", headers=[("Cache-Control", "max-age=3600")], body=b"new")
    get(gh, "/k2")
    wait_until(lambda: len(files(d2)[0]) == 1, what="the file written in the new directory")
    eq(len(files(d)[0]), 1)
    stopped(gh)


if __name__ == "__main__":
    run()
