#!/usr/bin/env python3
"""The HTTP cache (RFC 9111, a shared cache) against an origin that counts its requests:
freshness (s-maxage, max-age, Expires, heuristic, cache_valid), no-store / private / no-cache,
Authorization, request directives (no-cache, max-age, min-fresh, max-stale, only-if-cached),
Vary variants, revalidation with ETag and Last-Modified (a 304 updating the stored fields),
the client's conditional requests answered 304, HEAD from a stored GET, Range (206, 416),
invalidation after unsafe methods, stale-if-error, PURGE, Cache-Status and
$upstream_cache_status, request collapsing (1,000 concurrent misses reach the origin once),
bodies streamed into the store (chunked, large), and the memory budget holding while ten times
its size of distinct objects pass. No timing assertions; loopback only."""

import os
import re
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ghtest  # noqa: E402
from ghtest import *  # noqa: E402,F401,F403
from cache_origin import CacheOrigin  # noqa: E402

DATE_PAST = "Sun, 06 Nov 1994 08:49:37 GMT"


def make_origin():
    o = CacheOrigin().start()
    ghtest._register(o)
    return o


def cache_conf(o, memory="4m", max_object="1m", extra=""):
    def build(g):
        return (BASE_TOP
                + "cache main { memory %s; max_object %s; lock_timeout 10s; }\n" % (memory,
                                                                                  max_object)
                + "server {\n    listen 127.0.0.1:%d;\n    proxy 127.0.0.1:%d;\n" % (g.port,
                                                                                     o.port)
                + "    cache main;\n    cache_status on;\n    cache_purge_from 127.0.0.1;\n"
                + "    response_header set X-Cache $upstream_cache_status;\n"
                + "    route /valid/ { cache_valid 200 1m; }\n"
                + "    route /bypass/ { cache_bypass $http_x_bypass; }\n"
                + "    route /nocache/ { cache off; }\n"
                + "    route = /__stats { return 200 \"$cache_bytes $cache_objects\"; }\n"
                + "    route = /_admin/cache { cache_purge_api main; }\n"
                + extra + "}\n")
    return build


def env():
    o = shared("origin", make_origin)
    gh = shared("gatehouse", lambda: Gatehouse(cache_conf(o)))
    return o, gh


def get(gh, path, headers=None, method="GET"):
    return http_request(gh.port, method, path, headers=headers)


def cs(r):
    return r.header("cache-status") or ""


@test("max-age: the second request is a hit with Age and Cache-Status; the origin saw one")
def t():
    o, gh = env()
    o.set("/a", headers=[("Cache-Control", "max-age=60"), ("Content-Type", "text/plain")],
          body=b"alpha")
    r1 = get(gh, "/a")
    eq(r1.status, 200)
    eq(r1.body, b"alpha")
    check("fwd=uri-miss" in cs(r1) and "stored" in cs(r1), cs(r1))
    eq(r1.header("x-cache"), "MISS")
    r2 = get(gh, "/a")
    eq(r2.body, b"alpha")
    eq(r2.header("content-type"), "text/plain")
    check(cs(r2).startswith("gatehouse; hit"), cs(r2))
    eq(r2.header("x-cache"), "HIT")
    check(r2.header("age") is not None and int(r2.header("age")) >= 0, r2.headers)
    eq(o.count("/a"), 1, "origin requests")


@test("s-maxage wins over max-age=0 for a shared cache; Expires in the past is stale")
def t():
    o, gh = env()
    o.set("/smax", headers=[("Cache-Control", "max-age=0, s-maxage=60")])
    get(gh, "/smax")
    get(gh, "/smax")
    eq(o.count("/smax"), 1)
    o.set("/exp", headers=[("Expires", DATE_PAST)])
    get(gh, "/exp")
    get(gh, "/exp")
    eq(o.count("/exp"), 2)
    o.set("/exp-bad", headers=[("Expires", "0")])
    get(gh, "/exp-bad")
    get(gh, "/exp-bad")
    eq(o.count("/exp-bad"), 2)


@test("CDN-Cache-Control (RFC 9213) replaces Cache-Control and Expires for this cache")
def t():
    o, gh = env()
    o.set("/cdn", headers=[("Cache-Control", "no-store"), ("CDN-Cache-Control", "max-age=60")])
    get(gh, "/cdn")
    r = get(gh, "/cdn")
    eq(r.header("x-cache"), "HIT")
    eq(r.header("cache-control"), "no-store", "passed on to the client as it came")
    o.set("/cdn2", headers=[("Cache-Control", "max-age=60"), ("CDN-Cache-Control", "no-store")])
    get(gh, "/cdn2")
    get(gh, "/cdn2")
    eq(o.count("/cdn2"), 2)
    eq(o.count("/cdn"), 1)


@test("heuristic freshness from Last-Modified; cache_valid for responses without freshness")
def t():
    o, gh = env()
    o.set("/heur", headers=[("Last-Modified", DATE_PAST)])
    get(gh, "/heur")
    eq(get(gh, "/heur").header("x-cache"), "HIT")
    eq(o.count("/heur"), 1)
    o.set("/plain")  # no freshness information at all, a 200: heuristically cacheable but
    get(gh, "/plain")  # no Last-Modified: lifetime 0, stored and revalidated each time
    get(gh, "/plain")
    eq(o.count("/plain"), 2)
    o.set("/valid/x")
    get(gh, "/valid/x")
    eq(get(gh, "/valid/x").header("x-cache"), "HIT")
    eq(o.count("/valid/x"), 1)


@test("no-store, private and Authorization are not stored; public with Authorization is")
def t():
    o, gh = env()
    for path, cc in (("/ns", "no-store, max-age=60"), ("/pv", "private, max-age=60")):
        o.set(path, headers=[("Cache-Control", cc)])
        get(gh, path)
        get(gh, path)
        eq(o.count(path), 2, path)
    o.set("/auth", headers=[("Cache-Control", "max-age=60")])
    get(gh, "/auth", [("Authorization", "Basic YTpi")])
    get(gh, "/auth", [("Authorization", "Basic YTpi")])
    eq(o.count("/auth"), 2)
    o.set("/authp", headers=[("Cache-Control", "public, max-age=60")])
    get(gh, "/authp", [("Authorization", "Basic YTpi")])
    get(gh, "/authp", [("Authorization", "Basic YTpi")])
    eq(o.count("/authp"), 1)
    o.set("/authr", headers=[("Cache-Control", "max-age=60")])
    get(gh, "/authr")  # stored without Authorization ...
    get(gh, "/authr", [("Authorization", "Basic YTpi")])  # ... but not for a request with it
    get(gh, "/authr")
    eq(o.count("/authr"), 2)
    o.set("/reqns", headers=[("Cache-Control", "max-age=60")])
    get(gh, "/reqns", [("Cache-Control", "no-store")])
    get(gh, "/reqns")
    eq(o.count("/reqns"), 2)


@test("no-cache: stored, revalidated with If-None-Match; a 304 gives the stored body")
def t():
    o, gh = env()

    def fn(method, h):
        if h.get("if-none-match") == '"v1"':
            return 304, [("ETag", '"v1"'), ("Cache-Control", "no-cache"), ("X-New", "yes")], b""
        return 200, [("ETag", '"v1"'), ("Cache-Control", "no-cache"), ("X-New", "no")], b"body1"
    o.set_fn("/nc", fn)
    r1 = get(gh, "/nc")
    eq(r1.body, b"body1")
    r2 = get(gh, "/nc")
    eq(r2.status, 200)
    eq(r2.body, b"body1")
    eq(o.count("/nc"), 2)
    eq(o.seen("/nc").get("if-none-match"), '"v1"')
    eq(r2.header("x-new"), "yes", "the 304's field updates the stored one")
    eq(r2.header("x-cache"), "REVALIDATED")
    check(cs(r2).startswith("gatehouse; fwd=stale; fwd-status=304;") and "stored" in cs(r2),
          cs(r2))


@test("revalidation with Last-Modified sends If-Modified-Since; a 200 replaces the object")
def t():
    o, gh = env()
    o.set("/lm", headers=[("Cache-Control", "max-age=0"), ("Last-Modified", DATE_PAST)],
          body=b"old")
    eq(get(gh, "/lm").body, b"old")
    o.set("/lm", headers=[("Cache-Control", "max-age=60")], body=b"new")
    r = get(gh, "/lm")
    eq(r.body, b"new")
    eq(o.seen("/lm").get("if-modified-since"), DATE_PAST)
    eq(get(gh, "/lm").body, b"new")
    eq(o.count("/lm"), 2)


@test("request directives: no-cache and max-age=0 revalidate, min-fresh, max-stale, "
      "only-if-cached gives 504 on a miss")
def t():
    o, gh = env()
    o.set("/rq", headers=[("Cache-Control", "max-age=60")])
    get(gh, "/rq")
    get(gh, "/rq", [("Cache-Control", "no-cache")])
    eq(o.count("/rq"), 2)
    get(gh, "/rq", [("Pragma", "no-cache")])
    eq(o.count("/rq"), 3)
    get(gh, "/rq", [("Cache-Control", "max-age=0")])
    eq(o.count("/rq"), 4)
    get(gh, "/rq", [("Cache-Control", "min-fresh=3600")])
    eq(o.count("/rq"), 5)
    get(gh, "/rq", [("Cache-Control", "max-age=3600")])
    eq(o.count("/rq"), 5)
    o.set("/stale", headers=[("Cache-Control", "max-age=0")])
    get(gh, "/stale")
    r = get(gh, "/stale", [("Cache-Control", "max-stale=3600")])
    eq(r.header("x-cache"), "STALE")
    check(cs(r).startswith("gatehouse; hit; ttl="), cs(r))
    eq(o.count("/stale"), 1)
    r = get(gh, "/never-seen", [("Cache-Control", "only-if-cached")])
    eq(r.status, 504)
    eq(o.count("/never-seen"), 0)
    eq(get(gh, "/rq", [("Cache-Control", "only-if-cached")]).status, 200)


@test("must-revalidate: never served stale, even with max-stale")
def t():
    o, gh = env()
    o.set("/mr", headers=[("Cache-Control", "max-age=0, must-revalidate")])
    get(gh, "/mr")
    get(gh, "/mr", [("Cache-Control", "max-stale=3600")])
    eq(o.count("/mr"), 2)


@test("Vary: one variant per Accept-Encoding (normalised), each a hit afterwards")
def t():
    o, gh = env()

    def fn(method, h):
        return 200, [("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding")], \
            ("enc=%s" % h.get("accept-encoding", "")).encode()
    o.set_fn("/v", fn)
    eq(get(gh, "/v", [("Accept-Encoding", "gzip, br")]).body, b"enc=gzip, br")
    eq(get(gh, "/v", [("Accept-Encoding", "br")]).body, b"enc=br")
    eq(o.count("/v"), 2)
    eq(get(gh, "/v", [("Accept-Encoding", "br,gzip")]).body, b"enc=gzip, br")
    eq(get(gh, "/v", [("Accept-Encoding", "br")]).body, b"enc=br")
    eq(o.count("/v"), 2)
    get(gh, "/v")  # no Accept-Encoding: a third variant
    get(gh, "/v")
    eq(o.count("/v"), 3)
    o.set("/vstar", headers=[("Cache-Control", "max-age=60"), ("Vary", "*")])
    get(gh, "/vstar")
    get(gh, "/vstar")
    eq(o.count("/vstar"), 2)


@test("the client's If-None-Match / If-Modified-Since answered 304 from the cache")
def t():
    o, gh = env()
    o.set("/cond", headers=[("Cache-Control", "max-age=60"), ("ETag", '"e1"'),
                            ("Last-Modified", DATE_PAST)], body=b"x" * 100)
    get(gh, "/cond")
    r = get(gh, "/cond", [("If-None-Match", 'W/"e1"')])
    eq(r.status, 304)
    eq(r.body, b"")
    eq(r.header("etag"), '"e1"')
    r = get(gh, "/cond", [("If-None-Match", '"other"')])
    eq(r.status, 200)
    eq(len(r.body), 100)
    r = get(gh, "/cond", [("If-Modified-Since", DATE_PAST)])
    eq(r.status, 304)
    eq(o.count("/cond"), 1)


@test("HEAD answered from a stored GET; Range gives 206 and 416 from a stored 200")
def t():
    o, gh = env()
    body = bytes(range(256)) * 4
    o.set("/rg", headers=[("Cache-Control", "max-age=60"), ("ETag", '"r"')], body=body)
    get(gh, "/rg")
    r = get(gh, "/rg", method="HEAD")
    eq(r.status, 200)
    eq(r.header("content-length"), "1024")
    eq(r.body, b"")
    r = get(gh, "/rg", [("Range", "bytes=10-19")])
    eq(r.status, 206)
    eq(r.body, body[10:20])
    eq(r.header("content-range"), "bytes 10-19/1024")
    r = get(gh, "/rg", [("Range", "bytes=-24")])
    eq(r.body, body[-24:])
    r = get(gh, "/rg", [("Range", "bytes=5000-")])
    eq(r.status, 416)
    eq(r.header("content-range"), "bytes */1024")
    r = get(gh, "/rg", [("Range", "bytes=0-1"), ("If-Range", '"other"')])
    eq(r.status, 200)
    eq(len(r.body), 1024)
    eq(o.count("/rg"), 1)


@test("a Range request on a miss fetches the whole response, stores it, and gets its 206")
def t():
    o, gh = env()
    body = det_bytes(100000)
    o.set("/rm", headers=[("Cache-Control", "max-age=60")], body=body)
    r = get(gh, "/rm", [("Range", "bytes=70000-70009")])
    eq(r.status, 206)
    eq(r.body, body[70000:70010])
    eq(r.header("content-range"), "bytes 70000-70009/100000")
    eq(o.seen("/rm").get("range"), None, "the origin is asked for all of it")
    eq(get(gh, "/rm").body, body)
    eq(get(gh, "/rm", [("Range", "bytes=200000-")]).status, 416)
    eq(o.count("/rm"), 1)
    o.set("/rm416", headers=[("Cache-Control", "max-age=60")], body=b"short")
    r = get(gh, "/rm416", [("Range", "bytes=10-")])
    eq(r.status, 416)
    eq(r.header("content-range"), "bytes */5")
    eq(get(gh, "/rm416").body, b"short")
    eq(o.count("/rm416"), 1)
    o.set("/rmc", headers=[("Cache-Control", "max-age=60")], body=body[:3000], chunked=True)
    r = get(gh, "/rmc", [("Range", "bytes=0-9")])  # no length known: the whole 200
    eq(r.status, 200)
    eq(r.body, body[:3000])


@test("unsafe methods invalidate the URI and a same-origin Location; errors do not")
def t():
    o, gh = env()
    for p in ("/inv", "/inv-loc", "/inv-err"):
        o.set(p, headers=[("Cache-Control", "max-age=60")])
        get(gh, p)
    o.set("/inv", status=200, headers=[("Location", "/inv-loc")])
    get(gh, "/inv", method="POST")
    get(gh, "/inv")
    get(gh, "/inv-loc")
    eq(o.count("/inv"), 3)  # GET, POST, GET again
    eq(o.count("/inv-loc"), 2)
    o.set("/inv-err", status=500)
    http_request(gh.port, "DELETE", "/inv-err")
    o.set("/inv-err", headers=[("Cache-Control", "max-age=60")])
    get(gh, "/inv-err")
    eq(o.count("/inv-err"), 2)  # GET, DELETE; the GET after is still a hit


@test("stale-if-error: a stale object answers when the origin fails with 500")
def t():
    o, gh = env()
    o.set("/sie", headers=[("Cache-Control", "max-age=0, stale-if-error=600")], body=b"good")
    eq(get(gh, "/sie").body, b"good")
    o.set("/sie", status=500, body=b"broken")
    r = get(gh, "/sie")
    eq(r.status, 200)
    eq(r.body, b"good")
    eq(r.header("x-cache"), "STALE")
    o.set("/nosie", headers=[("Cache-Control", "max-age=0")], body=b"good")
    get(gh, "/nosie")
    o.set("/nosie", status=500, body=b"broken")
    eq(get(gh, "/nosie").status, 500)


@test("stale-while-revalidate: the stale object is served at once and refreshed in the "
      "background, once")
def t():
    o, gh = env()
    cc = [("Cache-Control", "max-age=0, stale-while-revalidate=600"), ("ETag", '"s1"')]
    o.set("/swr", headers=cc, body=b"v1")
    eq(get(gh, "/swr").body, b"v1")
    o.set("/swr", headers=[("Cache-Control", "max-age=600")], body=b"v2")
    r = get(gh, "/swr")
    eq(r.body, b"v1")
    eq(r.header("x-cache"), "STALE")
    wait_until(lambda: o.count("/swr") == 2, what="the background refresh")
    eq(o.seen("/swr").get("if-none-match"), '"s1"')
    wait_until(lambda: get(gh, "/swr").body == b"v2", what="the refreshed object")
    eq(get(gh, "/swr").header("x-cache"), "HIT")
    eq(o.count("/swr"), 2)


@test("PURGE from an allowed address removes one URL (404 when not stored), prefix with '*'")
def t():
    o, gh = env()
    for p in ("/pg/1", "/pg/2", "/pg"):
        o.set(p, headers=[("Cache-Control", "max-age=60")])
        get(gh, p)
    eq(get(gh, "/pg", method="PURGE").status, 200)
    eq(get(gh, "/pg", method="PURGE").status, 404)
    get(gh, "/pg")
    eq(o.count("/pg"), 2)
    eq(get(gh, "/pg/*", method="PURGE").status, 200)
    get(gh, "/pg/1")
    get(gh, "/pg/2")
    eq(o.count("/pg/1"), 2)
    eq(o.count("/pg/2"), 2)
    eq(http_request(gh.port, "PURGE", "/pg", source="127.0.0.2").status, 403)


@test("cache_purge_api: POST ?url= purges one key, ?prefix= a prefix, ?all=1 everything (JSON "
      "counts); GET is 405, no argument 400, an address outside cache_purge_from 403")
def t():
    import json
    from urllib.parse import quote
    o, gh = env()
    base = "http://test.local"  # the Host the test client sends: the default key's
    for p in ("/adm/1", "/adm/2", "/adm/x/3"):
        o.set(p, headers=[("Cache-Control", "max-age=60")])
        get(gh, p)
        check("hit" in cs(get(gh, p)), "%s stored" % p)

    def admin(q, method="POST", source="127.0.0.1"):
        return http_request(gh.port, method, "/_admin/cache?" + q, source=source)

    r = admin("url=" + quote(base + "/adm/1", safe=""))
    eq((r.status, json.loads(r.body)), (200, {"purged": 1}), "one key")
    get(gh, "/adm/1")
    eq(o.count("/adm/1"), 2, "fetched again after the purge")
    r = admin("prefix=" + quote(base + "/adm/x/", safe=""))
    eq(json.loads(r.body), {"purged": 1}, "a prefix")
    check("hit" in cs(get(gh, "/adm/2")), "/adm/2 untouched")
    r = admin("all=1", method="PURGE")
    check(r.status == 200 and json.loads(r.body)["purged"] >= 2, "everything: %r" % r.body)
    get(gh, "/adm/2")
    eq(o.count("/adm/2"), 2, "/adm/2 fetched again")
    eq(admin("all=1", method="GET").status, 405, "GET")
    eq(admin("nothing=1").status, 400, "no argument")
    eq(admin("all=1", source="127.0.0.2").status, 403, "not in cache_purge_from")


@test("cache_bypass, cache off and the Cache-Status of a bypass")
def t():
    o, gh = env()
    o.set("/bypass/x", headers=[("Cache-Control", "max-age=60")])
    get(gh, "/bypass/x")
    r = get(gh, "/bypass/x", [("X-Bypass", "1")])
    check("fwd=bypass" in cs(r), cs(r))
    eq(o.count("/bypass/x"), 2)
    eq(get(gh, "/bypass/x", [("X-Bypass", "0")]).header("x-cache"), "HIT")
    o.set("/nocache/y", headers=[("Cache-Control", "max-age=60")])
    get(gh, "/nocache/y")
    r = get(gh, "/nocache/y")
    eq(r.header("cache-status"), None)
    eq(o.count("/nocache/y"), 2)


@test("large and chunked bodies stream into the store and come back whole")
def t():
    o, gh = env()
    big = det_bytes(700000)
    o.set("/big", headers=[("Cache-Control", "max-age=60")], body=big)
    o.set("/chunky", headers=[("Cache-Control", "max-age=60")], body=big[:150000],
          chunked=True)
    eq(sha256(get(gh, "/big").body), sha256(big))
    eq(sha256(get(gh, "/big").body), sha256(big))
    eq(get(gh, "/chunky").body, big[:150000])
    r = get(gh, "/chunky")
    eq(r.body, big[:150000])
    eq(r.header("content-length"), "150000")
    eq(o.count("/big"), 1)
    eq(o.count("/chunky"), 1)
    o.set("/toobig", headers=[("Cache-Control", "max-age=60")], body=det_bytes(1500000))
    get(gh, "/toobig")
    eq(len(get(gh, "/toobig").body), 1500000)
    eq(o.count("/toobig"), 2)  # over max_object: not stored


@test("request collapsing: 1,000 concurrent requests for one cold object reach the origin once",
      timeout=90)
def t():
    o, gh = env()
    o.set("/cold", headers=[("Cache-Control", "max-age=60")], body=det_bytes(20000), delay=0.5)
    results = []
    lock = threading.Lock()

    def client():
        try:
            r = get(gh, "/cold")
            with lock:
                results.append((r.status, len(r.body)))
        except Exception as e:  # noqa: BLE001
            with lock:
                results.append((repr(e), 0))
    ts = [threading.Thread(target=client) for _ in range(1000)]
    for th in ts:
        th.start()
    for th in ts:
        th.join(60)
    eq(len(results), 1000)
    eq(sorted(set(results)), [(200, 20000)])
    eq(o.count("/cold"), 1, "origin requests")


@test("collapsed requests stream a slow body as it arrives, from another thread's fill")
def t():
    o, gh = env()
    body = det_bytes(200000)
    o.set("/drip", headers=[("Cache-Control", "max-age=60")], body=body, drip=0.05)
    results = []
    lock = threading.Lock()

    def client():
        r = get(gh, "/drip")
        with lock:
            results.append((r.status, sha256(r.body), cs(r)))
    ts = [threading.Thread(target=client) for _ in range(20)]
    for th in ts:
        th.start()
    for th in ts:
        th.join(30)
    eq(len(results), 20)
    eq(set((s, h) for s, h, _ in results), {(200, sha256(body))})
    check(any("collapsed" in c for _, _, c in results), [c for _, _, c in results])
    eq(o.count("/drip"), 1)


@test("the client that started a fetch goes away: a request streaming from it gets the rest "
      "from the origin (Range from where it stopped, If-Range the ETag)")
def t():
    o, gh = env()
    body = det_bytes(300000)

    def fn(method, h):
        base = [("Cache-Control", "max-age=60"), ("ETag", '"d1"')]
        rg = h.get("range")
        if rg and h.get("if-range") == '"d1"':
            a = int(rg[len("bytes="):-1])
            cr = "bytes %d-%d/%d" % (a, len(body) - 1, len(body))
            return 206, base + [("Content-Range", cr)], body[a:]
        return 200, base, body
    o.set_fn("/leave", fn, drip=0.1)
    first = Conn(gh.port)
    first.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    first.send(build_request("GET", "/leave"))
    first.read_until(b"\r\n\r\n")
    got = []
    th = threading.Thread(target=lambda: got.append(get(gh, "/leave")))
    th.start()
    wait_until(lambda: o.count("/leave") == 1, what="the first fetch")
    time.sleep(0.35)  # the second streams what has come
    first.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    first.close()  # a reset: the first client is gone
    th.join(30)
    eq(len(got), 1)
    eq(got[0].status, 200)
    eq(sha256(got[0].body), sha256(body))
    eq(o.count("/leave"), 2)
    check(o.seen("/leave").get("range", "").startswith("bytes="), o.seen("/leave"))


@test("pipelined requests answered from the cache, and a slow reader of a large object")
def t():
    o, gh = env()
    big = det_bytes(300000)
    o.set("/pl", headers=[("Cache-Control", "max-age=60")], body=b"p" * 10)
    o.set("/slow-reader", headers=[("Cache-Control", "max-age=60")], body=big)
    get(gh, "/pl")
    get(gh, "/slow-reader")
    with Conn(gh.port) as c:
        c.send(build_request("GET", "/pl") * 3)
        for _ in range(3):
            eq(c.read_response().body, b"p" * 10)
    with Conn(gh.port) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        c.send(build_request("GET", "/slow-reader"))
        time.sleep(0.5)  # let the proxy meet a full socket
        eq(sha256(c.read_response().body), sha256(big))
    eq(o.count("/slow-reader"), 1)


@test("the memory budget holds while ten times its size of distinct objects pass", timeout=120)
def t():
    o = make_origin()
    gh = Gatehouse(cache_conf(o, memory="256k", max_object="64k"))
    body = det_bytes(10000)
    for i in range(260):  # 2.6 MB through a 256 KiB cache
        p = "/m/%d" % i
        o.set(p, headers=[("Cache-Control", "max-age=600")], body=body)
        eq(len(get(gh, p).body), 10000)
        if i % 50 == 49:
            used, objects = map(int, get(gh, "/__stats").body.split())
            check(used <= 256 * 1024, "cache bytes %d over the budget" % used)
    used, objects = map(int, get(gh, "/__stats").body.split())
    check(used <= 256 * 1024 and objects >= 10, "bytes %d objects %d" % (used, objects))
    eq(get(gh, "/m/259").header("x-cache"), "HIT")


@test("a reload keeps the store: an object cached before SIGHUP is a hit after it")
def t():
    o = make_origin()
    o.set("/r", headers=[("Cache-Control", "max-age=600")], body=b"kept")
    gh = Gatehouse(cache_conf(o))
    get(gh, "/r")
    gh.reload(cache_conf(o, extra="    response_header set X-Gen two;\n"))
    wait_until(lambda: get(gh, "/r").header("x-gen") == "two", what="the new config")
    r = get(gh, "/r")
    eq(r.body, b"kept")
    eq(r.header("x-cache"), "HIT")
    eq(o.count("/r"), 1)
    eq(gh.stop(), 0)
    check(re.search(r"cache main: \d+ hit\(s\), \d+ miss\(es\), 1 object\(s\)", gh.stderr()),
          "the store's figures at exit: %s" % gh.stderr()[-600:])


@test("a caching forward proxy: absolute-form requests answered from the cache, key by URL")
def t():
    o = make_origin()
    o.set("/f", headers=[("Cache-Control", "max-age=600")], body=b"fwd")

    def conf(g):
        return (BASE_TOP + "cache fp { memory 1m; }\n"
                + "forward_proxy {\n    listen 127.0.0.1:%d;\n" % g.port
                + "    allow_private_destinations on;\n    cache fp;\n    cache_status on;\n}\n")
    gh = Gatehouse(conf)
    url = "http://127.0.0.1:%d/f" % o.port
    r1 = http_request(gh.port, "GET", url, host="127.0.0.1:%d" % o.port)
    eq(r1.body, b"fwd")
    r2 = http_request(gh.port, "GET", url, host="127.0.0.1:%d" % o.port)
    eq(r2.body, b"fwd")
    check(cs(r2).startswith("gatehouse; hit"), cs(r2))
    eq(o.count("/f"), 1)
    r3 = http_request(gh.port, "GET", "http://localhost:%d/f" % o.port,
                      host="localhost:%d" % o.port)
    check(cs(r3).startswith("gatehouse; fwd=uri-miss"), "another authority, another key: %s"
          % cs(r3))


@test("-t: bad cache directives name file:line:column")
def t():
    path = os.path.join(tmpdir(), "bad.conf")
    with open(path, "w") as f:
        f.write("cache c { memory 1q; disk /x; }\n"
                "server { listen 127.0.0.1:1; proxy 127.0.0.1:2; cache nope;\n"
                "  cache_valid 99 1m; cache_key \"$status\"; }\n")
    r = run_gh(["-t", "-c", path])
    err = r.stderr
    check(r.returncode != 0, "accepted")
    for want in ("bad.conf:1:18: invalid size '1q'", "bad.conf:1:22: 'disk' takes a directory and a size",
                 "bad.conf:2:55: unknown cache 'nope'", "bad.conf:3:15: number '99' out of range",
                 "bad.conf:3:33: variable '$status' is not available"):
        check(want in err, "missing %r in %s" % (want, err))


@test("examples/caching.conf as shipped passes -t")
def t():
    r = run_gh(["-t", "-c", os.path.join(ghtest.ROOT, "examples/caching.conf")])
    eq(r.returncode, 0, "exit (%s)" % r.stderr)


if __name__ == "__main__":
    run()
