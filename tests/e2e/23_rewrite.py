#!/usr/bin/env python3
"""What the origin is asked for: `proxy NAME PATH` replacing a route's prefix (nginx's
`proxy_pass http://app/;`), `rewrite REGEX REPLACEMENT [last|break|redirect|permanent]` at server
and route level, and the target left alone without them.

The contract tested: rewrites and prefix replacement work on the normalised path (escapes decoded,
dot segments resolved) and the origin gets that path percent-encoded again, with the query kept
unless the replacement gives one; captures are the decoded bytes (so %25, %3F and %2F in them stay
what they were); a target nothing rewrites reaches the origin byte for byte; a path that cannot be
normalised is a 400, a result that cannot be built a 500 with one error-log line naming the
rewrite; `gatehouse -t` reports bad rewrites and PATHs at file:line:col. The last test runs
examples/rewrites.conf."""

from ghtest import *


def target(r):
    """The request target the origin received (the in-process origin echoes it)."""
    eq(r.status, 200, "status (body %r)" % r.body[:200])
    return r.json()["target"]


def gh_with(o, body, top="", proxy="proxy app;"):
    """A Gatehouse with one server on gh.port proxying to origin o as upstream 'app'; body
    goes in the server."""
    return Gatehouse(lambda g: "threads 1;\n" + BASE_TOP + top + """upstream app { server 127.0.0.1:%d; }
server {
    listen 127.0.0.1:%d;
    %s
%s
}
""" % (o.port, g.port, proxy, body))


def raw_get(port, target_bytes, host=b"a.test"):
    """GET with a target sent exactly as given (bytes); returns the Response."""
    with Conn(port) as c:
        c.send(b"GET " + target_bytes + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        return c.read_response()


# ---------------------------------------------------------------------------------------------
# No rewriting: the target as received
# ---------------------------------------------------------------------------------------------


@test("without rewrite or PATH the origin gets the target byte for byte: dot segments, double "
      "slashes, escapes in any case, %2F, %00-free odd escapes, the query untouched; also when "
      "the server has rewrites that do not match")
def t():
    o = Origin()
    gh = gh_with(o, """    rewrite ^/never/(.*)$ /x/$1;
    route /api/ { proxy app; }""")
    targets = [b"/a/./b/../c//d", b"/%7e%7E/%41%2f%2F/x%20y?q=%20&r=%2F&&s", b"/api/%2e/./x?",
               b"/api/a;b=c/%3B/%3f?x=1?y=2", b"/caf%c3%a9/%C3%A9", b"/?", b"/%25", b"/a/..",
               b"/never-not/x/%2e%2e"]
    for t_ in targets:
        r = raw_get(gh.port, t_)
        eq(target(r).encode(), t_, "target for %r" % t_)
    # absolute form: the origin gets its path part as it was
    r = raw_get(gh.port, b"http://a.test/x/../y/%2e?z=%41")
    eq(target(r), "/x/../y/%2e?z=%41", "absolute-form target")


@test("a path that cannot be normalised is a 400 and the origin sees nothing: '..' above the "
      "root (also as %2e%2e and across %2F), %00, a bad escape")
def t():
    o = Origin()
    gh = gh_with(o, "    route /api/ { proxy app /; }\n    rewrite ^/x$ /w/x;")
    for t_ in (b"/..", b"/../x", b"/a/../../x", b"/api/%2e%2e/%2e%2e/x", b"/a%2f..%2f..%2fx",
               b"/a%00b", b"/a%zz", b"/a%4", b"/api/.%2E/..%2fx"):
        r = raw_get(gh.port, t_)
        eq(r.status, 400, "status for %r" % t_)
    eq(len(o.requests), 0, "requests that reached the origin")
    # the same shapes that stay inside the root are fine
    eq(target(raw_get(gh.port, b"/a/b/../../x")), "/w/x", "'..' back to the root")
    eq(target(raw_get(gh.port, b"/api/x/%2e%2e/y")), "/y", "encoded '..' inside the route")


# ---------------------------------------------------------------------------------------------
# proxy NAME PATH
# ---------------------------------------------------------------------------------------------


@test("proxy NAME PATH replaces the matched prefix (nginx proxy_pass http://app/...): /api/ -> /, "
      "/old/ -> /new/, an exact route, a server-level PATH; the query is kept as received")
def t():
    o = Origin()
    gh = gh_with(o, """    route /api/ { proxy app /; }
    route /old/ { proxy app /new/; }
    route /v2 { proxy app /version2; }
    route = /exact { proxy app /other/place; }
    route /keep/ { proxy app; }""")
    cases = [
        ("/api/users?id=1&x=%20", "/users?id=1&x=%20"),
        ("/api/", "/"),
        ("/api/a/b/c", "/a/b/c"),
        ("/old/x/y?z", "/new/x/y?z"),
        ("/v2/x", "/version2/x"),
        ("/v2abc", "/version2abc"),  # a prefix without '/': as nginx, the rest is appended
        ("/exact?q=1", "/other/place?q=1"),
        ("/keep/%41?b", "/keep/%41?b"),  # no PATH: as received
    ]
    for sent, want in cases:
        eq(target(http_get(gh.port, sent)), want, "origin target for %s" % sent)
    eq(http_get(gh.port, "/exact/more").status, 200, "the exact route does not take /exact/more")
    eq(target(http_get(gh.port, "/exact/more")), "/exact/more", "/exact/more goes elsewhere")

    o2 = Origin(name="base")
    gh2 = gh_with(o2, "", proxy="proxy app /base/;")
    eq(target(http_get(gh2.port, "/x/y?q=1")), "/base/x/y?q=1", "server-level PATH")
    eq(target(http_get(gh2.port, "/")), "/base/", "server-level PATH for /")


@test("proxy NAME PATH re-encodes the normalised path: %20, %25, UTF-8 (%c3%a9 comes out "
      "%C3%A9), dot segments resolved, '//' merged, %2F decoded as nginx does, reserved "
      "characters kept")
def t():
    o = Origin()
    gh = gh_with(o, "    route /api/ { proxy app /v1/; }")
    cases = [
        (b"/api/a%20b", "/v1/a%20b"),
        (b"/api/100%25", "/v1/100%25"),
        (b"/api/100%2541", "/v1/100%2541"),  # decoded once: '%41' stays three bytes
        (b"/api/caf%c3%a9", "/v1/caf%C3%A9"),
        (b"/api/%F0%9F%98%80", "/v1/%F0%9F%98%80"),
        (b"/api/%3F%23?q=%3F", "/v1/%3F%23?q=%3F"),  # '?' and '#' in the path stay escaped
        (b"/api/x/./y/../z", "/v1/x/z"),
        (b"/api//x//y", "/v1/x/y"),
        (b"/api/a%2Fb", "/v1/a/b"),  # %2F is a '/' once decoded (nginx: the same)
        (b"/api/%7e-._~!$&'()*+,;=:@", "/v1/~-._~!$&'()*+,;=:@"),
        (b"/api/%41%42", "/v1/AB"),
        (b"/x/../api/y", "/v1/y"),  # the route is chosen on the normalised path
    ]
    for sent, want in cases:
        eq(target(raw_get(gh.port, sent)), want, "origin target for %r" % sent)


# ---------------------------------------------------------------------------------------------
# rewrite
# ---------------------------------------------------------------------------------------------


@test("server-level rewrite runs before the route is chosen; captures $1..$9; the route's PATH "
      "then replaces its prefix; a replacement's query comes before the request's (nginx), a "
      "final '?' drops the request's")
def t():
    o = Origin()
    gh = gh_with(o, """    rewrite ^/old/(.*)$ /api/$1;
    rewrite ^/blog/([0-9]+)/([0-9]+)/(.+)$ /posts/$3?y=$1&m=$2 last;
    rewrite ^/drop-query/(.*)$ /plain/$1?;
    rewrite ^/only-new/(.*)$ /plain/$1?a=1?;
    rewrite ^/nine/(.)(.)(.)(.)(.)(.)(.)(.)(.)$ /n/$9$8$7$6$5$4$3$2$1;
    route /api/ { proxy app /v2/; }
    route /posts/ { proxy app; response_header set X-Route posts; }""")
    eq(target(http_get(gh.port, "/old/x/y?q=1")), "/v2/x/y?q=1", "server rewrite, then PATH")
    r = http_get(gh.port, "/blog/2024/05/hello-world?utm=x")
    eq((target(r), r.header("x-route")), ("/posts/hello-world?y=2024&m=05&utm=x", "posts"),
       "captures into path and query; the request's query after the new one")
    r = http_get(gh.port, "/blog/2024/05/hello-world")
    eq(target(r), "/posts/hello-world?y=2024&m=05", "no query of the request's: only the new one")
    eq(target(http_get(gh.port, "/drop-query/a?secret=1")), "/plain/a", "a final '?' drops the query")
    eq(target(http_get(gh.port, "/only-new/a?secret=1")), "/plain/a?a=1",
       "a final '?' after a new query: only the new one")
    eq(target(http_get(gh.port, "/nine/123456789")), "/n/987654321", "$1..$9")
    eq(target(http_get(gh.port, "/other?x")), "/other?x", "no match: as received")


@test("rewrite captures are decoded bytes and come out encoded: %2541 stays %2541 (not A), an "
      "encoded '?' stays in the path, %252e%252e does not turn into '..', %2500 is no NUL")
def t():
    o = Origin()
    gh = gh_with(o, """    rewrite ^/p/(.*)$ /x/$1;
    rewrite ^/q/(.*)$ /y/$1?k=v;
    rewrite ^/u/.*$ /z$uri;""")
    cases = [
        (b"/p/a%2541", "/x/a%2541"),
        (b"/p/a%3Fb?z=1", "/x/a%3Fb?z=1"),
        (b"/p/a%3fb%23c", "/x/a%3Fb%23c"),
        (b"/p/s/%252e%252e/secret", "/x/s/%252e%252e/secret"),
        (b"/p/a%2500", "/x/a%2500"),
        (b"/p/%25zz", "/x/%25zz"),
        (b"/p/caf%C3%A9%20x", "/x/caf%C3%A9%20x"),
        (b"/q/a%3Fb?z=1", "/y/a%3Fb?k=v&z=1"),
        (b"/u/a%2541", "/z/u/a%2541"),
    ]
    for sent, want in cases:
        eq(target(raw_get(gh.port, sent)), want, "origin target for %r" % sent)


@test("a capture in the new query is escaped for a query: %26, %2B, %3B and %23 in the path "
      "do not become separators or a fragment in the origin's query (as nginx escapes args)")
def t():
    o = Origin()
    gh = gh_with(o, "    rewrite ^/item/(.*)$ /show?id=$1;")
    cases = [
        (b"/item/a%26admin%3Dtrue", "/show?id=a%26admin=true"),
        (b"/item/a%3Bb", "/show?id=a%3Bb"),
        (b"/item/a%2Bb%20c", "/show?id=a%2Bb%20c"),
        (b"/item/x%23y", "/show?id=x%23y"),
        (b"/item/caf%C3%A9", "/show?id=caf%C3%A9"),
        (b"/item/plain-1.2_3~", "/show?id=plain-1.2_3~"),
    ]
    for sent, want in cases:
        got = target(raw_get(gh.port, sent))
        eq(got, want, "origin target for %r" % sent)
        q = got.split("?", 1)[1]
        eq(len(q.split("&")), 1, "one query parameter for %r" % sent)


@test("route rewrite without flag or with 'last' searches the routes again; 'break' stays in "
      "the route and its PATH does not replace the prefix")
def t():
    o = Origin()
    gh = gh_with(o, """    route /a/ {
        rewrite ^/a/(.*)$ /b/$1;
        response_header set X-Route a;
    }
    route /b/ {
        proxy app /bee/;
        response_header set X-Route b;
    }
    route /c/ {
        rewrite ^/c/(.*)$ /b/$1 last;
        rewrite ^(.*)$ /never;
    }
    route /d/ {
        rewrite ^/d/(.*)$ /internal/$1 break;
        proxy app /dee/;
        response_header set X-Route d;
    }
    route /e/ {
        rewrite ^/e/(.*)$ /b/$1 break;
        response_header set X-Route e;
    }
    route /f/ {
        proxy app /eff/;
        response_header set X-Route f;
    }""")
    r = http_get(gh.port, "/a/x?q=1")
    eq((target(r), r.header("x-route")), ("/bee/x?q=1", "b"), "/a/ (no flag) -> route /b/")
    r = http_get(gh.port, "/c/x")
    eq((target(r), r.header("x-route")), ("/bee/x", "b"), "/c/ (last) -> route /b/, rest skipped")
    r = http_get(gh.port, "/d/x?q")
    eq((target(r), r.header("x-route")), ("/internal/x?q", "d"),
       "/d/ (break): stays, the rewritten path goes as it is")
    r = http_get(gh.port, "/e/x")
    eq((target(r), r.header("x-route")), ("/b/x", "e"), "/e/ (break) to a path of another route")
    r = http_get(gh.port, "/f/x")
    eq((target(r), r.header("x-route")), ("/eff/x", "f"), "a route without rewrite: PATH applies")


@test("the routes are searched again at most 10 times: a chain of 10 changes works, 11 is a 500 "
      "with one error-log line naming the rewrite; a self-loop too; the origin sees nothing")
def t():
    o = Origin()
    chain = "".join("    route /r%d/ { rewrite ^/r%d/(.*)$ /r%d/$1 last; }\n" % (i, i, i + 1)
                    for i in range(11))
    gh = gh_with(o, chain + "    route /loop/ { rewrite ^/loop/(.*)$ /loop/$1; }")
    eq(target(http_get(gh.port, "/r1/x")), "/r11/x", "10 changes (/r1 -> /r11)")
    eq(len(o.requests), 1, "requests at the origin")
    mark = len(gh.stderr())
    eq(http_get(gh.port, "/r0/x").status, 500, "11 changes (/r0 -> /r11)")
    line = gh.wait_stderr(r"\[error\] client 127\.0\.0\.1: 500: rewrite at \S+gatehouse\.conf:"
                          r"(\d+): the routes were searched again 10 times", 5, start=mark)
    conf_lines = gh.config_text.splitlines()
    check("route /r10/" in conf_lines[int(line.group(1)) - 1],
          "the log names line %s (%r), want the rewrite that made the 11th change"
          % (line.group(1), conf_lines[int(line.group(1)) - 1]))
    mark = len(gh.stderr())
    eq(http_get(gh.port, "/loop/x").status, 500, "a rewrite that loops on itself")
    gh.wait_stderr(r"500: rewrite at \S+:\d+: the routes were searched again 10 times", 5,
                   start=mark)
    eq(len(o.requests), 1, "requests at the origin (no new ones)")


@test("a replacement starting with http:// or https:// redirects (302; 301 with permanent), "
      "'redirect' makes a relative one; captures are percent-encoded in Location; the request's "
      "query follows (after the replacement's, with '&'), unless the replacement ends with '?'")
def t():
    o = Origin()
    gh = gh_with(o, """    rewrite ^/go/(.*)$ https://new.test/n/$1 permanent;
    rewrite "(?s)^/crlf/(.*)$" https://new.test/n/$1 permanent;
    rewrite ^/tmp/(.*)$ http://tmp.test/$1;
    rewrite ^/rel/(.*)$ /elsewhere/$1 redirect;
    rewrite ^/perm/(.*)$ /moved/$1 permanent;
    rewrite ^/q/(.*)$ https://q.test/$1?from=gh;
    rewrite ^/nq/(.*)$ https://q.test/$1? permanent;
    route /r/ { rewrite ^/r/(.*)$ https://route.test/$1; }""")
    cases = [
        ("/go/a/b?x=1&y=2", 301, "https://new.test/n/a/b?x=1&y=2"),
        ("/go/a%20b%3F%25", 301, "https://new.test/n/a%20b%3F%25"),
        ("/go/caf%C3%A9", 301, "https://new.test/n/caf%C3%A9"),
        ("/tmp/x", 302, "http://tmp.test/x"),
        ("/rel/x?y", 302, "/elsewhere/x?y"),
        ("/perm/x", 301, "/moved/x"),
        ("/q/x?old=1", 302, "https://q.test/x?from=gh&old=1"),
        ("/q/x", 302, "https://q.test/x?from=gh"),
        ("/nq/x?old=1", 301, "https://q.test/x"),
        ("/r/x?y=1", 302, "https://route.test/x?y=1"),
    ]
    for sent, status, loc in cases:
        r = http_get(gh.port, sent)
        eq((r.status, r.header("location")), (status, loc), "answer to %s" % sent)
    # a decoded CR LF in a capture cannot start a header of its own
    r = raw_get(gh.port, b"/crlf/a%0D%0ASet-Cookie:%20x=1")
    eq(r.status, 301, "status for an encoded CR LF")
    eq(r.header("location"), "https://new.test/n/a%0D%0ASet-Cookie:%20x=1", "Location")
    eq(r.header("set-cookie"), None, "Set-Cookie")
    eq(len(o.requests), 0, "requests at the origin")
    code, err = curl_status(["http://127.0.0.1:%d/tmp/y" % gh.port])
    eq(code, 302, "curl status (%s)" % err)


@test("a query rewrite and variables in the replacement: $arg_NAME and $args in the path, "
      "$request_method; the origin gets an encoded target")
def t():
    o = Origin()
    gh = gh_with(o, """    rewrite ^/search$ /s/$arg_q last;
    rewrite ^/m/(.*)$ /$request_method/$1?$args&seen=1?;""")
    eq(target(http_get(gh.port, "/search?q=a%20b&x=1")), "/s/a%20b?q=a%20b&x=1", "$arg_q in the path")
    eq(target(http_get(gh.port, "/m/x?a=1")), "/GET/x?a=1&seen=1", "$request_method and $args "
       "(the final '?': not the request's query again)")


@test("results that do not fit are a 500 with one error-log line: a rewrite longer than a buffer, "
      "a target too long once encoded with its query, a PATH replacement too long")
def t():
    o = Origin()
    pad = "x" * 20000
    gh = gh_with(o, """    max_request_line 64k;
    max_head_size 64k;
    route /dup/ { rewrite ^/dup/(.*)$ /d/$1$1$1; }
    route /pad/ { rewrite ^/pad/(.*)$ /%s/$1; }
    route /pp/ { proxy app /%s/%s/%s/; }""" % (pad, pad, pad, pad), top="")
    seg = "%20" * 8000  # 24000 bytes in the request, 8000 decoded
    mark = len(gh.stderr())
    eq(http_get(gh.port, "/dup/" + seg * 2).status, 500, "3 x 48000 escaped bytes")
    gh.wait_stderr(r"500: rewrite at \S+gatehouse\.conf:\d+: the rewritten path is longer than "
                   r"a buffer", 5, start=mark)
    mark = len(gh.stderr())
    r = http_get(gh.port, "/pad/" + seg + "?" + "q" * 25000)
    eq(r.status, 500, "20000 + 24000 encoded bytes with a 25000-byte query")
    gh.wait_stderr(r"client 127\.0\.0\.1: 500: .*longer than a buffer", 5, start=mark)
    mark = len(gh.stderr())
    eq(http_get(gh.port, "/pp/" + "y" * 10000).status, 500, "60000 + 10000 bytes")
    gh.wait_stderr(r"client 127\.0\.0\.1: 500: .*longer than a buffer", 5, start=mark)
    eq(len(o.requests), 0, "requests at the origin")
    # just under: fine
    eq(target(http_get(gh.port, "/pad/abc?q=1")), "/%s/abc?q=1" % pad, "a long literal that fits")


@test("bodies and upgrades go through rewrites and PATH: a 300 KB POST (spliced) and a chunked "
      "one arrive whole at the rewritten target; a WebSocket upgrade reaches the replaced path")
def t():
    o = Origin()
    gh = gh_with(o, """    rewrite ^/old-upload/(.*)$ /upload/$1;
    route /up/ { proxy app /upload/; }
    route /ws/ { proxy app /websocket; }""")
    body = det_bytes(300000, seed=23)
    r = http_request(gh.port, "POST", "/old-upload/a?x=1", body=body)
    eq((r.status, r.json()["length"], r.json()["sha256"]), (200, len(body), sha256(body)),
       "a POST through a rewrite")
    eq(o.requests[-1].target, "/upload/a?x=1", "its target")
    with Conn(gh.port) as c:
        c.send(b"POST /up/b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        r = c.read_response()
        eq((r.status, r.json()["length"], r.json()["sha256"]), (200, 11, sha256(b"hello world")),
           "a chunked POST through a PATH replacement")
    eq(o.requests[-1].target, "/upload/b", "its target")
    with Conn(gh.port) as c:
        c.send(b"GET /ws/ HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        r = c.read_response()
        eq((r.status, r.header("sec-websocket-accept")), (101, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
           "the upgrade")
        origin = load_origin_module()
        c.send(origin.ws_frame(1, b"through /ws/"))
        op, payload, masked = origin.ws_read_frame(c)
        eq((op, payload, masked), (1, b"through /ws/", False), "the echo")
    eq(o.requests[-1].target, "/websocket", "the upgrade's target at the origin")


# ---------------------------------------------------------------------------------------------
# gatehouse -t
# ---------------------------------------------------------------------------------------------


@test("gatehouse -t: bad regex, $3 with one group, a replacement not starting with '/', a bad "
      "flag, ${10}, and proxy PATH without '/', with a query, with spaces, in a regex route: each "
      "at file:line:col, in file order")
def t():
    d = tmpdir()
    path = os.path.join(d, "bad.conf")
    lines = [
        "upstream app { server 127.0.0.1:9; }",
        "server {",
        "    listen 127.0.0.1:9;",
        "    proxy app;",
        '    rewrite "^/(a" /b;',
        "    rewrite ^/(a)$ /b/$3;",
        "    rewrite ^/(a)$ b/$1;",
        "    rewrite ^/(a)$ /b/$1 lst;",
        "    rewrite ^/(a)$ /b/${10};",
        "    route /a/ { proxy app b/; }",
        "    route /b/ { proxy app /x?y=1; }",
        '    route /c/ { proxy app "/x y"; }',
        '    route ~ "^/d" { proxy app /x/; }',
        "}",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")

    def at(ln, token, msg):
        return "%s:%d:%d: %s" % (path, ln, lines[ln - 1].index(token) + 1, msg)

    want = [
        at(5, '"^/(a"', "invalid regex '^/(a' in 'rewrite': missing closing parenthesis at "
                        "offset 4"),
        at(6, "/b/$3", "'$3' in 'rewrite' but the regex has 1 capture group"),
        at(7, "b/$1", "rewrite replacement 'b/$1' must start with '/', http:// or https://"),
        at(8, "lst", "invalid rewrite flag 'lst' (expected last, break, redirect or permanent)"),
        at(9, "${10}", "'$10' in 'rewrite': captures are $1..$9"),
        at(10, "b/;", "invalid path 'b/' in 'proxy'"),
        at(11, "/x?y=1", "invalid path '/x?y=1' in 'proxy'"),
        at(12, '"/x y"', "invalid path '/x y' in 'proxy'"),
        at(13, "/x/", "'proxy NAME PATH' replaces a prefix: a regex route has none (use "
                      "'rewrite')"),
    ]
    r = run_gh(["-t", "-c", path])
    eq(r.returncode, 1, "exit status (stderr: %s)" % r.stderr)
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith(path)]
    eq(len(errs), len(want), "number of errors:\n%s" % r.stderr)
    for got, w in zip(errs, want):
        check(got.startswith(w), "error line\n  got:  %s\n  want: %s..." % (got, w))
    check("configuration is valid" not in r.stdout, "-t said valid")


@test("gatehouse -t accepts nginx-style rewrites: ${1} next to text, single-quoted regex and "
      "replacement, $$, variables in the replacement")
def t():
    o = Origin()
    gh = gh_with(o, """    rewrite ^/a/(.*)$ /b/${1}x;
    rewrite '^/c/(\\w+)$' '/d/$1-$$';
    rewrite ^/h/(.*)$ /$host/$1;""")
    r = run_gh(["-t", "-c", gh.conf_path])
    eq(r.returncode, 0, "gatehouse -t (stderr: %s)" % r.stderr)
    eq(target(http_get(gh.port, "/a/1")), "/b/1x", "${1} next to text")
    eq(target(http_get(gh.port, "/c/abc")), "/d/abc-$", "single quotes and $$")
    eq(target(http_get(gh.port, "/h/x", host="Site.Test:81")), "/site.test/x", "$host")


# ---------------------------------------------------------------------------------------------
# examples/rewrites.conf
# ---------------------------------------------------------------------------------------------


@test("examples/rewrites.conf as shipped (ports moved): HTTPS redirect, X-Real-IP and "
      "X-Request-Id both ways and in the JSON log, /api/ prefix strip, a regex rewrite to a new "
      "path and query, a permanent redirect to another site, /v1/ searched again")
def t():
    with open(os.path.join(ROOT, "examples/rewrites.conf")) as f:
        text = f.read()
    check(run_gh(["-t", "-c", os.path.join(ROOT, "examples/rewrites.conf")]).returncode == 0,
          "the example as shipped passes -t")
    o = Origin(name="app")

    def conf(g):
        t_ = text.replace("127.0.0.1:3000", "127.0.0.1:%d" % o.port)
        t_ = t_.replace("127.0.0.1:8080", "127.0.0.1:%d" % g.ports[0])
        t_ = t_.replace("127.0.0.1:8081", "127.0.0.1:%d" % g.ports[1])
        t_ = t_.replace("access_log stderr json_combined;",
                        "access_log %s/access.log json_combined;" % g.dir)
        return t_.replace("threads auto;", "threads 1;")

    gh = Gatehouse(conf, nports=2)
    log = os.path.join(gh.dir, "access.log")

    r = http_get(gh.ports[1], "/shop/a%20b?x=1&y=2", host="App.Test:8081")
    eq((r.status, r.header("location")), (301, "https://app.test/shop/a%20b?x=1&y=2"),
       "HTTP -> HTTPS redirect")

    with Conn(gh.port) as c:
        r = c.request("GET", "/api/users?id=1", host="app.test",
                      headers=[("User-Agent", "caf\xc3\xa9 \"q\""), ("X-Request-Id", "spoofed")])
        d = r.json()
        eq(d["target"], "/users?id=1", "the /api/ prefix replaced by /")
        hs = {n.lower(): v for n, v in d["headers"]}
        eq(hs.get("x-real-ip"), "127.0.0.1", "X-Real-IP at the origin")
        eq(hs.get("x-api-path"), "/api/users", "X-Api-Path ($uri) at the origin")
        rid = hs.get("x-request-id")
        check(rid and re.fullmatch(r"[0-9a-f]{32}", rid), "X-Request-Id at the origin: %r" % rid)
        eq(r.header("x-request-id"), rid, "X-Request-Id to the client")
        eq([v for n, v in d["headers"] if n.lower() == "x-request-id"], [rid],
           "the client's X-Request-Id is replaced")

        r = c.request("GET", "/blog/2024/hello?ref=x", host="app.test")
        eq(r.json()["target"], "/articles/hello?year=2024&ref=x",
           "regex rewrite to a new path and query (the request's follows, as in nginx)")
        r = c.request("GET", "/docs/guide/intro?v=2", host="app.test")
        eq((r.status, r.header("location")), (301, "https://docs.app.test/guide/intro?v=2"),
           "permanent redirect to another site")
        r = c.request("GET", "/v1/users/7", host="app.test")
        eq(r.json()["target"], "/users/7", "/v1/ rewritten and served by the /api/ route")
        r = c.request("GET", "/healthz", host="app.test")
        eq(r.status, 200, "healthz")
        check(re.fullmatch(rb"ok [0-9a-f]{32}\n", r.body), "healthz body %r" % r.body)

    def lines():
        try:
            with open(log, "rb") as f:
                return f.read().splitlines()
        except OSError:
            return []

    wait_until(lambda: len(lines()) >= 6, 5, "6 access-log lines")
    recs = [json.loads(ln) for ln in lines()]
    eq([x["status"] for x in recs], [301, 200, 200, 301, 200, 200], "statuses in the log")
    api = recs[1]
    eq(api["id"], rid, "the logged id is the one the origin and client got")
    eq(api["uri"], "/api/users?id=1", "logged $request_uri")
    eq(api["ua"], "caf\u00e9 \"q\"", "logged User-Agent (UTF-8 and quotes)")
    eq(api["upstream"], "127.0.0.1:%d" % o.port, "logged upstream")
    eq(api["upstream_status"], "200", "logged upstream status")
    eq(len({x["id"] for x in recs}), 6, "distinct request ids")


run()
