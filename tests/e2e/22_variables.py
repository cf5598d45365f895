#!/usr/bin/env python3
"""Variables end to end: in request_header rules (what the origin gets), response_header rules
(what the client gets, $status and $upstream_* included), `return` bodies and redirect URLs,
and access-log lines (the built-in `combined` and `json` formats and log_format with each
escape=). Also what `gatehouse -t` says about a variable that does not exist or is used where it
does not exist, and access-log lines longer than a line's buffer.

Every test starts its own Gatehouse and origin; log lines are read from a file in the test's
directory, one line per request."""

import calendar
import socket

from ghtest import *

HEX32 = re.compile(r"[0-9a-f]{32}")
TIME_LOCAL = re.compile(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}")
TIME_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")
SECS = re.compile(r"\d+\.\d{3}")


def origin_fields(r):
    """{lower-case name: [values]} of the request the origin got (its echo)."""
    eq(r.status, 200, "status (body %r)" % r.body[:200])
    out = {}
    for n, v in r.json()["headers"]:
        out.setdefault(n.lower(), []).append(v)
    return out


def one(fields, name):
    vals = fields.get(name.lower(), [])
    eq(len(vals), 1, "fields %s at the origin (%r)" % (name, vals))
    return vals[0]


def conf(o, server_body, top="", log=None):
    """A config function: one server on gh.port proxying to o (an Origin or a port); `log` is
    the access_log format (its file is access.log in the Gatehouse's directory)."""
    oport = o if isinstance(o, int) else o.port

    def build(g):
        al = "access_log %s/access.log %s;\n" % (g.dir, log) if log else ""
        return "threads 1;\n%s%s%s\nserver {\n    listen 127.0.0.1:%d;\n    proxy 127.0.0.1:%d;\n" \
               "%s\n}\n" % (BASE_TOP, al, top, g.port, oport, server_body)

    return build


def log_lines(gh, n, name="access.log"):
    """The access log's lines (bytes, without line feeds) once it has n; fails if it has more."""
    path = os.path.join(gh.dir, name)

    def get():
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        ls = data.split(b"\n")
        if ls and ls[-1] == b"":
            ls.pop()
        return ls if len(ls) >= n else None

    ls = wait_until(get, 5, "%d lines in %s" % (n, name))
    eq(len(ls), n, "access-log lines:\n%s" % b"\n".join(ls)[:3000])
    return ls


def on_wire(port, req):
    """Send req (bytes, with Connection: close) and read to the end: (response, bytes on the
    wire, bytes after the head)."""
    resp, allb, closed = raw_exchange(port, req)
    check(resp is not None and closed, "no whole response: %r" % allb[:200])
    head_len = allb.find(b"\r\n\r\n") + 4
    return resp, len(allb), len(allb) - head_len


# ---------------------------------------------------------------------------------------------
# request_header
# ---------------------------------------------------------------------------------------------

REQ_VARS = ("host hostname request_uri uri args is_args scheme request_method server_protocol "
            "request remote_addr remote_port server_addr server_port server_name request_id "
            "time_local time_iso8601 msec arg_a arg_Missing cookie_sid http_user_agent "
            "http_x_multi http_cookie").split()


@test("request_header set: each request variable reaches the origin with its value ($host "
      "lower-case without port, $uri normalised, $request_uri raw, $arg_ and $cookie_, $http_ "
      "joined, ${name} beside text, $$)")
def t():
    o = Origin()
    rules = "".join('    request_header set X-V-%s "${%s}";\n' % (v.replace("_", "-"), v)
                    for v in REQ_VARS)
    rules += '    request_header set X-Lit "a$$b ${host}x $host.y $$$$";\n'
    gh = Gatehouse(conf(o, "    server_name www.a.test *.a.test;\n" + rules))
    target = "/p%20a/./b/../c//d?a=1&A=2&b=%20&e"
    with Conn(gh.port) as c:
        cport = c.sock.getsockname()[1]
        r = c.request("GET", target, host="WWW.A.Test:8080", headers=[
            ("User-Agent", "ua/1 (x)"), ("Cookie", "x=1; sid=abc"), ("Cookie", "sid=zzz; y=2"),
            ("X-Multi", "1"), ("X-Multi", "2, 3")])
    f = origin_fields(r)
    v = {name: one(f, "x-v-" + name.replace("_", "-")) for name in REQ_VARS}
    now = time.time()
    want = {
        "host": "www.a.test", "hostname": socket.gethostname(), "request_uri": target,
        "uri": "/p a/c/d", "args": "a=1&A=2&b=%20&e", "is_args": "?", "scheme": "http",
        "request_method": "GET", "server_protocol": "HTTP/1.1",
        "request": "GET %s HTTP/1.1" % target, "remote_addr": "127.0.0.1",
        "remote_port": str(cport), "server_addr": "127.0.0.1", "server_port": str(gh.port),
        "server_name": "www.a.test", "arg_a": "1", "arg_Missing": "", "cookie_sid": "abc",
        "http_user_agent": "ua/1 (x)", "http_x_multi": "1, 2, 3",
        "http_cookie": "x=1; sid=abc; sid=zzz; y=2",
    }
    for k, w in want.items():
        eq(v[k], w, "$%s" % k)
    check(HEX32.fullmatch(v["request_id"]), "$request_id %r" % v["request_id"])
    check(TIME_LOCAL.fullmatch(v["time_local"]), "$time_local %r" % v["time_local"])
    check(TIME_ISO.fullmatch(v["time_iso8601"]), "$time_iso8601 %r" % v["time_iso8601"])
    check(SECS.fullmatch(v["msec"]) and abs(float(v["msec"]) - now) < 600, "$msec %r" % v["msec"])
    eq(one(f, "x-lit"), "a$b www.a.testx www.a.test.y $$", "text with $$ and ${host}")


@test("time variables agree with each other and follow TZ: $time_local +0530 and $time_iso8601 "
      "+05:30 under TZ=IST-5:30, the same second as $msec")
def t():
    o = Origin()
    gh = Gatehouse(conf(o, '    request_header set X-T "$time_local|$time_iso8601|$msec";'),
                   env={"TZ": "IST-5:30"})
    tl, ti, ms = one(origin_fields(http_get(gh.port, "/")), "x-t").split("|")
    check(tl.endswith(" +0530") and TIME_LOCAL.fullmatch(tl), "$time_local %r" % tl)
    check(ti.endswith("+05:30") and TIME_ISO.fullmatch(ti), "$time_iso8601 %r" % ti)
    a = calendar.timegm(time.strptime(tl[:20], "%d/%b/%Y:%H:%M:%S"))
    b = calendar.timegm(time.strptime(ti[:19], "%Y-%m-%dT%H:%M:%S"))
    eq(a, b, "$time_local and $time_iso8601 are the same time")
    # both are wall-clock times in +05:30; $msec is seconds since the epoch
    utc = a - 5.5 * 3600
    check(abs(float(ms) - utc) < 3, "$msec %s vs $time_local %s" % (ms, tl))


@test("request_header set replaces the client's fields of that name, add appends; variables "
      "that have no value are empty")
def t():
    o = Origin()
    gh = Gatehouse(conf(o, """    request_header set X-Request-Id $request_id;
    request_header add X-Tag "t=$arg_t";
    request_header set X-Empty "[$http_x_none][$cookie_none][$arg_none][$args]";
    request_header add X-Method $request_method;"""))
    r = http_get(gh.port, "/x?t=7", headers=[("X-Request-Id", "spoofed"), ("x-request-id", "2"),
                                              ("X-Tag", "client"), ("X-Method", "c")])
    f = origin_fields(r)
    check(HEX32.fullmatch(one(f, "x-request-id")), "X-Request-Id %r" % f["x-request-id"])
    eq(f["x-tag"], ["client", "t=7"], "X-Tag")
    eq(f["x-method"], ["c", "GET"], "X-Method")
    eq(one(f, "x-empty"), "[][][][t=7]", "X-Empty")


@test("no query and no Host: $args, $is_args and $request_uri in header rules and an escape=json "
      "log are empty or as sent; HTTP/1.0 gives $server_protocol HTTP/1.0 and $host the "
      "server_name (was a null pointer passed to memcpy: UBSan stopped the process)")
def t():
    o = Origin()
    gh = Gatehouse(conf(o, """    server_name site.test;
    request_header set X-A "[$args][$is_args][$request_uri][$host][$server_protocol]";
    response_header set X-A "[$args][$is_args][$uri][$request_method]";""",
                        top='log_format j escape=json "{\\"a\\":\\"$args\\",\\"u\\":\\"$uri\\",'
                            '\\"r\\":\\"$request_uri\\",\\"m\\":\\"$request_method\\",'
                            '\\"s\\":$status,\\"p\\":\\"$server_addr:$server_port\\"}";\n',
                        log="j"))
    r = http_get(gh.port, "/x")
    eq(one(origin_fields(r), "x-a"), "[][][/x][test.local][HTTP/1.1]", "origin, no query")
    eq(r.header("x-a"), "[][][/x][GET]", "client, no query")
    r = http_get(gh.port, "/y?")
    eq(one(origin_fields(r), "x-a"), "[][][/y?][test.local][HTTP/1.1]", "origin, empty query")
    resp, raw, _ = raw_exchange(gh.port, b"GET /z HTTP/1.0\r\n\r\n")
    check(resp is not None, "HTTP/1.0 answer: %r" % raw[:200])
    hs = {n.lower(): v for n, v in json.loads(resp.body)["headers"]}
    eq(hs.get("x-a"), "[][][/z][site.test][HTTP/1.0]", "origin, HTTP/1.0 without Host")
    resp, raw, _ = raw_exchange(gh.port, b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n")
    eq(resp.status if resp else raw[:100], 400, "a malformed head")
    recs = [json.loads(x) for x in log_lines(gh, 4)]
    eq({x["p"] for x in recs}, {"127.0.0.1:%d" % gh.port}, "$server_addr:$server_port")
    eq([(x["a"], x["u"], x["r"], x["m"], x["s"]) for x in recs],
       [("", "/x", "/x", "GET", 200), ("", "/y", "/y?", "GET", 200),
        ("", "/z", "/z", "GET", 200), ("", "", "", "", 400)], "log records")


@test("a control byte that decoding puts in $uri becomes a space in a header value: no field "
      "injected toward the origin or the client")
def t():
    o = Origin()
    gh = Gatehouse(conf(o, """    request_header set X-Uri $uri;
    response_header set X-Uri $uri;"""))
    with Conn(gh.port) as c:
        c.send(b"GET /a%0d%0aX-Injected:%20yes%09tab%00 HTTP/1.1\r\nHost: a\r\n\r\n")
        eq(c.read_response().status, 400, "%00 is refused")
    with Conn(gh.port) as c:
        c.send(b"GET /a%0d%0aX-Injected:%20yes%09tab%0d%0a%0d%0a HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response()
    f = origin_fields(r)
    eq(one(f, "x-uri"), "/a  X-Injected: yes\ttab", "X-Uri at the origin")
    check("x-injected" not in f, "a field injected toward the origin: %r" % f)
    eq(r.header("x-uri"), "/a  X-Injected: yes\ttab", "X-Uri to the client")
    eq(r.header("x-injected"), None, "a field injected toward the client")


# ---------------------------------------------------------------------------------------------
# response_header
# ---------------------------------------------------------------------------------------------


@test("response_header: $status, $upstream_status and $upstream_addr for a proxied 200 and 404, "
      "a 502 from a dead origin, a return; request variables there without any access log")
def t():
    o = Origin()
    dead = free_port()
    rule = '    response_header set X-S "$status|$upstream_status|$upstream_addr|$request_uri|' \
           '$uri|$http_x_in|$host";'
    gh = Gatehouse(lambda g: "threads 1;\n" + BASE_TOP + """server {
    listen 127.0.0.1:%d;
    proxy 127.0.0.1:%d;
%s
    route /dead/ { proxy 127.0.0.1:%d; }
    route = /ret { return 403 "no\\n"; }
}
""" % (g.port, o.port, rule, dead))
    up = "127.0.0.1:%d" % o.port
    cases = [
        ("/a%41?q=1", 200, "200|200|%s|/a%%41?q=1|/aA|in|a.test" % up),
        ("/status/404", 404, "404|404|%s|/status/404|/status/404|in|a.test" % up),
        ("/dead/x", 502, "502|502|127.0.0.1:%d|/dead/x|/dead/x|in|a.test" % dead),
        ("/ret?z", 403, "403|||/ret?z|/ret|in|a.test"),
    ]
    for target, status, want in cases:
        r = http_get(gh.port, target, host="A.test", headers=[("X-In", "in")])
        eq((r.status, r.header("x-s")), (status, want), "answer to %s" % target)


@test("$request_id: 32 hex digits, one per request, unique over 60 requests on 6 connections "
      "and 2 threads; the origin, the client and the access log see the same one")
def t():
    o = Origin()
    build = conf(o, """    request_header set X-Request-Id $request_id;
    response_header set X-Request-Id $request_id;""",
                 top='log_format ids "$request_id $request_uri $status";\n', log="ids")
    gh = Gatehouse(lambda g: build(g).replace("threads 1;", "threads 2;"))
    seen = {}
    for k in range(6):
        with Conn(gh.port) as c:
            for i in range(10):
                r = c.request("GET", "/echo?c=%d&i=%d" % (k, i))
                mine = one(origin_fields(r), "x-request-id")
                eq(r.header("x-request-id"), mine, "the client's and the origin's id")
                check(HEX32.fullmatch(mine), "id %r" % mine)
                seen["/echo?c=%d&i=%d" % (k, i)] = mine
    eq(len(set(seen.values())), 60, "distinct ids")
    logged = {}
    for ln in log_lines(gh, 60):
        rid, uri, st = ln.decode().split(" ")
        eq(st, "200", "logged status")
        logged[uri] = rid
    eq(logged, seen, "ids in the log by request")


@test("the request kept for later templates survives pipelining and big heads: $uri, $args and "
      "$request_uri after rewrites and $http_ of a 40 KiB field, in response_header and the log")
def t():
    o = Origin()
    gh = Gatehouse(conf(o, """    max_head_size 64k;
    max_header_line 64k;
    rewrite ^/a$ /b?x=1;
    rewrite ^/c/(.*)$ /d/$1;
    response_header set X-U "$uri|$args|$request_uri|${http_x_big}";""",
                        top='log_format l "$uri|$args|$request_uri|$http_x_big|$status";\n',
                        log="l"))
    reqs = [(b"/a?old=1", 3), (b"/c/%41?q", 40000), (b"/e", 20000), (b"/a", 5), (b"/c/x%20y", 0)]
    with Conn(gh.port) as c:
        c.send(b"".join(b"GET %s HTTP/1.1\r\nHost: a\r\nX-Big: %s\r\n\r\n" % (t_, b"z" * n)
                        for t_, n in reqs))
        got = [c.read_response() for _ in reqs]
    want = [("/b", "x=1&old=1", "/a?old=1"), ("/d/A", "q", "/c/%41?q"), ("/e", "", "/e"),
            ("/b", "x=1", "/a"), ("/d/x y", "", "/c/x%20y")]
    targets = ["/b?x=1&old=1", "/d/A?q", "/e", "/b?x=1", "/d/x%20y"]
    for r, (uri, args, ruri), (_, n), tg in zip(got, want, reqs, targets):
        eq(r.json()["target"], tg, "origin target")
        eq(r.header("x-u"), "|".join((uri, args, ruri, "z" * n)), "X-U for %s" % ruri)
    for ln, (uri, args, ruri), (_, n) in zip(log_lines(gh, 5), want, reqs):
        full = "|".join((uri, args or "-", ruri, "z" * n if n else "-", "200"))
        if len(full) > 4095:  # written again with each value at most 1 KiB: the line keeps its shape
            full = "|".join((uri, args or "-", ruri, "z" * min(n, 1024), "200"))
        eq(ln.decode(), full, "log line for %s" % ruri)


# ---------------------------------------------------------------------------------------------
# return
# ---------------------------------------------------------------------------------------------


@test("return 301 https://$host$request_uri keeps path and query as sent; a body with variables "
      "and $$; HEAD gets the length; a Location with a control byte is a 500 with a log line")
def t():
    gh = Gatehouse(lambda g: "threads 1;\n" + BASE_TOP + """server {
    listen 127.0.0.1:%d;
    return 301 https://$host$request_uri;
}
server {
    listen 127.0.0.1:%d;
    route /u/ { return 302 https://u.test$uri; }
    route /b/ { return 200 "you are $remote_addr:$remote_port, $request_method ${uri}! $$5\\n"; }
    route = /arg { return 307 $arg_to; }
}
""" % (g.ports[0], g.ports[1]), nports=2)
    for target in ("/", "/p/a%20b/?x=1&y=%2F", "/caf%C3%A9?%C3%A9=1", "/a/../b?", "/x?a=$1"):
        r = http_get(gh.ports[0], target, host="Example.TEST:8080")
        eq((r.status, r.header("location")), (301, "https://example.test" + target),
           "redirect for %s" % target)
    r = curl(["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
              "http://127.0.0.1:%d/a/b?c=d" % gh.ports[0], "-H", "Host: site.test"])
    eq(r.stdout.decode(), "301 https://site.test/a/b?c=d", "curl's view (%s)" % r.stderr)
    with Conn(gh.ports[1]) as c:
        port = c.sock.getsockname()[1]
        r = c.request("GET", "/b/%7e")
        eq((r.status, r.body), (200, b"you are 127.0.0.1:%d, GET /b/~! $5\n" % port), "body")
        r = c.request("HEAD", "/b/%7e")
        want = b"you are 127.0.0.1:%d, HEAD /b/~! $5\n" % port
        eq((r.status, r.header("content-length"), r.body), (200, str(len(want)), b""), "HEAD")
        r = c.request("GET", "/arg?to=/elsewhere%3F")
        eq((r.status, r.header("location")), (307, "/elsewhere%3F"), "Location from $arg_to")
    mark = len(gh.stderr())
    with Conn(gh.ports[1]) as c:
        c.send(b"GET /u/a%0D%0ASet-Cookie:%20x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.read_response()
    eq((r.status, r.header("location"), r.header("set-cookie")), (500, None, None),
       "a URL with CR LF from $uri")
    gh.wait_stderr(r"\[error\] client 127\.0\.0\.1: 500: the 'return' URL has a control byte", 5,
                   start=mark)


# ---------------------------------------------------------------------------------------------
# gatehouse -t
# ---------------------------------------------------------------------------------------------


@test("gatehouse -t names file:line:col for an unknown variable (with did-you-mean), one outside "
      "its context, a bad '${' or '$', and log_format/access_log mistakes, in file order")
def t():
    d = tmpdir()
    path = os.path.join(d, "vars.conf")
    lines = [
        "log_format a '$statu $remote_addr';",
        "log_format b escape=xml '$status';",
        "log_format combined '$status';",
        "access_log stderr mian;",
        "log_format main '$status';",
        "server {",
        "    listen 127.0.0.1:9;",
        "    proxy 127.0.0.1:9;",
        "    request_header set X-A $hots;",
        "    request_header set X-B \"x $status\";",
        "    response_header set X-C $body_bytes_sent;",
        "    response_header set X-D \"${host\";",
        "    response_header set X-E \"a$\";",
        "    request_header set X-F $1;",
        "    request_header add X-G $http_;",
        "    route = /r { return 200 \"$upstream_addr\"; }",
        "    route = /s { return 301 https://$hostt/; }",
        "}",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")

    def at(ln, token, msg, off=0):
        return "%s:%d:%d: %s" % (path, ln, lines[ln - 1].index(token) + 1 + off, msg)

    want = [
        at(1, "$statu", "unknown variable '$statu' in 'log_format' (did you mean '$status'?)"),
        at(2, "escape=xml", "invalid 'escape=xml' (expected escape=default, json or none)"),
        at(3, "combined", "'combined' is a built-in log format: choose another name"),
        at(4, "mian", "unknown access_log format 'mian' (combined, json, forward, or a log_format) "
                      "(did you mean 'main'?)"),
        at(9, "$hots", "unknown variable '$hots' in 'request_header' (did you mean '$host'?)"),
        at(10, "$status", "variable '$status' is not available in 'request_header' (it is in "
                          "response_header, log_format)"),
        at(11, "$body", "variable '$body_bytes_sent' is not available in 'response_header' (it "
                        "is in log_format)"),
        at(12, "${", "unterminated '${' in 'response_header' (expected '}')"),
        at(13, "$\"", "'$' in 'response_header' must start a variable name (write $$ for a "
                      "dollar sign)"),
        at(14, "$1", "'$1' in 'request_header': captures $1..$9 exist only in 'rewrite' "
                     "replacements"),
        at(15, "$http_", "'$http_' in 'request_header' needs a name after it (as in $http_NAME)"),
        at(16, "$upstream", "variable '$upstream_addr' is not available in 'return' (it is in "
                            "response_header, log_format)"),
        at(17, "$hostt", "unknown variable '$hostt' in 'return' (did you mean '$host'?)"),
    ]
    r = run_gh(["-t", "-c", path])
    eq(r.returncode, 1, "exit status (stderr: %s)" % r.stderr)
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith(path)]
    for got, w in zip(errs, want):
        check(got.startswith(w), "error line\n  got:  %s\n  want: %s..." % (got, w))
    eq(len(errs), len(want), "number of errors:\n%s" % r.stderr)


# ---------------------------------------------------------------------------------------------
# access logs
# ---------------------------------------------------------------------------------------------


@test("combined (the default format): nginx's line; quotes, backslashes and bytes >= 0x7f as "
      "\\xHH, empty fields as '-'; $body_bytes_sent is the body as it went on the wire")
def t():
    o = Origin()
    gh = Gatehouse(conf(o, "", log="combined"))
    req = (b"GET /bytes/1000?q=%22 HTTP/1.1\r\nHost: a\r\nReferer: http://r/\"x\"\r\n"
           b"User-Agent: caf\xc3\xa9 \\ \xff\tend\r\nConnection: close\r\n\r\n")
    _, _, body1 = on_wire(gh.port, req)
    eq(body1, 1000, "body bytes on the wire")
    _, _, body2 = on_wire(gh.port, b"GET /chunked/5000 HTTP/1.1\r\nHost: a\r\nConnection: close"
                                   b"\r\n\r\n")
    ls = log_lines(gh, 2)
    m = re.fullmatch(rb'127\.0\.0\.1 - - \[(.+)\] "GET /bytes/1000\?q=%22 HTTP/1\.1" 200 1000 '
                     rb'"http://r/\\x22x\\x22" "caf\\xC3\\xA9 \\x5C \\xFF\\x09end"', ls[0])
    check(m and TIME_LOCAL.fullmatch(m.group(1).decode()), "line %r" % ls[0])
    m = re.fullmatch(rb'127\.0\.0\.1 - - \[.+\] "GET /chunked/5000 HTTP/1\.1" 200 (\d+) "-" "-"',
                     ls[1])
    check(m, "line %r" % ls[1])
    eq(int(m.group(1)), body2, "$body_bytes_sent of a chunked body (its framing included)")


@test("json (built in): every line parses, UTF-8 kept, invalid UTF-8 and control bytes as "
      "\\u00XX, quotes and backslashes escaped; a raw UTF-8 target (400) logged too; byte counts "
      "exact; request_id the one the client got")
def t():
    o = Origin()
    gh = Gatehouse(conf(o, "    response_header set X-Id $request_id;", log="json"))
    uas = [b"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
           b"q\"uo\"te \\back\\slash \t tab",
           b"bad \xff\xfe \xc0\xaf \xed\xa0\x80 \xc3",
           b"\\u0041 </script>"]
    sent = []
    for i, ua in enumerate(uas):
        req = (b"GET /bytes/%d?i=%d HTTP/1.1\r\nHost: a.test:1\r\nUser-Agent: %s\r\n"
               b"Referer: %s\r\nConnection: close\r\n\r\n" % (100 + i, i, ua, ua))
        resp, total, body = on_wire(gh.port, req)
        sent.append((resp.header("x-id"), total, body))
    _, total, body = on_wire(gh.port, b"GET /caf%C3%A9/%e6%97%a5?x=%C3%A9 HTTP/1.1\r\nHost: a"
                                      b"\r\nConnection: close\r\n\r\n")
    sent.append((None, total, body))
    resp, raw, _ = raw_exchange(gh.port, b"GET /caf\xc3\xa9/\xff HTTP/1.1\r\nHost: a\r\n\r\n")
    eq(resp.status if resp else raw[:100], 400, "a raw UTF-8 target")
    recs = [json.loads(x) for x in log_lines(gh, 6)]
    want_ua = ["caf\u00e9 \u65e5\u672c \U0001F600", "q\"uo\"te \\back\\slash \t tab",
               "bad \u00ff\u00fe \u00c0\u00af \u00ed\u00a0\u0080 \u00c3", "\\u0041 </script>"]
    for i, (rec, (rid, total, body)) in enumerate(zip(recs, sent)):
        if i < 4:
            eq((rec["user_agent"], rec["referer"]), (want_ua[i], want_ua[i]), "record %d UA" % i)
            eq(rec["request"], "GET /bytes/%d?i=%d HTTP/1.1" % (100 + i, i), "record %d" % i)
            eq(rec["request_id"], rid, "record %d request_id" % i)
            eq(rec["host"], "a.test:1", "record %d host" % i)
            eq(rec["upstream"], "127.0.0.1:%d" % o.port, "record %d upstream" % i)
        eq((rec["status"], rec["bytes_sent"], rec["body_bytes_sent"]), (200, total, body),
           "record %d counts" % i)
        check(HEX32.fullmatch(rec["request_id"]), "record %d request_id" % i)
    eq(recs[4]["request"], "GET /caf%C3%A9/%e6%97%a5?x=%C3%A9 HTTP/1.1", "an encoded target")
    eq((recs[5]["status"], recs[5]["request"]), (400, "GET /caf\u00e9/\u00ff HTTP/1.1"),
       "the 400's first line")
    eq(len({r_["request_id"] for r_ in recs}), 6, "distinct request ids")


@test("log_format escape=json, nginx style (single quotes, several strings): the decoded $uri "
      "with quotes, backslashes, control bytes and UTF-8 comes back exactly from json.loads")
def t():
    o = Origin()
    fmt = ("log_format js escape=json '{\"ip\":\"$remote_addr\",\"uri\":\"$uri\",'\n"
           "                          '\"ru\":\"$request_uri\",\"status\":$status,'\n"
           "                          '\"ua\":\"$http_user_agent\",\"t\":$request_time,'\n"
           "                          '\"args\":\"$args\",\"b\":$body_bytes_sent}';\n")
    gh = Gatehouse(conf(o, "", top=fmt, log="js"))
    target = "/q%22u%5Cb%01%1f%7f%0a%09/caf%C3%A9/%ff?x=%22&y=\\"
    r = http_get(gh.port, target, headers=[("User-Agent", "a\"b\\c\xc3\xa9")])
    eq(r.status, 200, "status")
    r = http_get(gh.port, "/plain")
    rec = [json.loads(x) for x in log_lines(gh, 2)]
    eq(rec[0]["uri"], "/q\"u\\b\x01\x1f\x7f\n\t/caf\u00e9/\u00ff", "decoded $uri")
    eq(rec[0]["ru"], target, "$request_uri as sent")
    eq(rec[0]["args"], "x=%22&y=\\", "$args")
    eq(rec[0]["ua"], "a\"b\\c\u00e9", "User-Agent")
    eq((rec[0]["status"], rec[0]["ip"]), (200, "127.0.0.1"), "status and ip")
    check(isinstance(rec[0]["t"], float) and rec[0]["t"] >= 0, "$request_time %r" % rec[0]["t"])
    eq((rec[1]["uri"], rec[1]["args"], rec[1]["ua"]), ("/plain", "", ""), "empty values")
    eq(rec[1]["b"], len(r.body), "$body_bytes_sent")


@test("log_format with default escaping (the docs' 'main' example, verbatim) and escape=none: "
      "empty values '-' and \\xHH, or as they are with control bytes as spaces; upstream times")
def t():
    o = Origin()
    top = ("log_format main '$remote_addr [$time_iso8601] \"$request\" $status $body_bytes_sent '\n"
           "                'rt=$request_time ua=\"$upstream_addr\" us=$upstream_status "
           "id=$request_id';\n"
           "log_format raw escape=none '$uri|$http_user_agent|$upstream_connect_time|"
           "$upstream_header_time|$upstream_response_time|$upstream_status|$bytes_sent';\n")
    gh = Gatehouse(conf(o, "    route = /ret { return 204; }", top=top, log="main"))
    r = http_get(gh.port, "/a%0a%C3%A9?x", headers=[("User-Agent", "u\xc3\xa9\"")])
    eq(r.status, 200, "proxied")
    eq(http_get(gh.port, "/ret").status, 204, "return")
    ls = [x.decode("ascii") for x in log_lines(gh, 2)]
    m = re.fullmatch(r'127\.0\.0\.1 \[(\S+)\] "GET /a%0a%C3%A9\?x HTTP/1\.1" 200 (\d+) '
                     r'rt=(\d+\.\d{3}) ua="127\.0\.0\.1:(\d+)" us=200 id=([0-9a-f]{32})', ls[0])
    check(m and TIME_ISO.fullmatch(m.group(1)), "line %r" % ls[0])
    eq((int(m.group(2)), int(m.group(4))), (len(r.body), o.port), "bytes and upstream port")
    check(re.fullmatch(r'127\.0\.0\.1 \[\S+\] "GET /ret HTTP/1\.1" 204 0 rt=\d+\.\d{3} ua="-" '
                       r'us=- id=[0-9a-f]{32}', ls[1]), "line %r" % ls[1])

    gh2 = Gatehouse(conf(o, "    route = /ret { return 204; }", top=top, log="raw"))
    r = http_get(gh2.port, "/a%0a%C3%A9%09b?x", headers=[("User-Agent", "u\xc3\xa9\"")])
    eq(http_get(gh2.port, "/ret").status, 204, "return")
    ls = log_lines(gh2, 2)
    f = ls[0].split(b"|")
    eq((f[0], f[1]), ("/a \u00e9\tb".encode(), "u\u00e9\"".encode()), "values as they are")
    for k in (2, 3, 4):
        check(SECS.fullmatch(f[k].decode()), "upstream time %d: %r" % (k, f[k]))
    check(float(f[2]) <= float(f[3]) <= float(f[4]), "connect <= header <= response: %r" % f)
    eq(f[5], b"200", "$upstream_status")
    eq(int(f[6]), len(r.raw_head) + len(r.body), "$bytes_sent")
    eq(ls[1].split(b"|")[:6], [b"/ret", b"", b"", b"", b"", b""], "a return's upstream values")


@test("access-log lines longer than 4 KiB: written again with shorter values, so each is one "
      "whole line of its format (JSON stays JSON) holding only bytes of the line itself (was: the "
      "rest of the 4 KiB buffer, uninitialised stack memory, went to the log)")
def t():
    o = Origin()
    ua = b"\xc3\xa9" * 2500  # 5000 bytes of UTF-8, more than a line
    for fmt in ("json", "combined", "long"):
        top = 'log_format long escape=json "{\\"ua\\":\\"$http_user_agent\\",\\"s\\":$status}";\n'
        gh = Gatehouse(conf(o, "", top=top, log=fmt))
        req = b"GET /long HTTP/1.1\r\nHost: a.test\r\nUser-Agent: " + ua + b"\r\n\r\n"
        for _ in range(3):
            with Conn(gh.port) as c:
                c.send(req)
                eq(c.read_response().status, 200, "status")
        for ln in log_lines(gh, 3):
            check(len(ln) <= 4095, "%s line of %d bytes" % (fmt, len(ln)))
            if fmt == "combined":
                m = re.fullmatch(rb'127\.0\.0\.1 - - \[[^\]]+\] "GET /long HTTP/1\.1" 200 \d+ "-" '
                                 rb'"((?:\\xC3\\xA9)+)"', ln)
                check(m, "combined line is not whole: %r" % ln[-300:])
                check(len(m.group(1)) >= 400, "user agent kept: %d bytes" % len(m.group(1)))
                continue
            try:
                rec = json.loads(ln)
            except ValueError:
                rec = None
            check(rec is not None, "%s line is not JSON: %r" % (fmt, ln[-300:]))
            got = rec["user_agent" if fmt == "json" else "ua"]
            check(len(got) >= 8 and ua.decode().startswith(got.rstrip("\u00c3")),
                  "user agent: a prefix of what was sent, got %r" % got[-40:])
            if fmt == "json":
                eq((rec["request"], rec["status"], rec["host"]), ("GET /long HTTP/1.1", 200, "a.test"),
                   "the other keys")
            else:
                eq(rec["s"], 200, "status")
        gh.stop()


run()
