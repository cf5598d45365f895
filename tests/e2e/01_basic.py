#!/usr/bin/env python3
"""Basic operation: a request through `-c FILE`, the reverse-proxy one-liner, -t, --version."""

import os
import re
import subprocess

from ghtest import *


@test("GET through a -c config reaches the origin and comes back")
def t():
    o = Origin(name="a")
    gh = Gatehouse(conf_proxy(o))
    r = http_get(gh.port, "/echo?x=1")
    eq(r.status, 200, "status")
    d = r.json()
    eq(d["origin"], "a", "origin name")
    eq(d["method"], "GET", "method seen by origin")
    eq(d["target"], "/echo?x=1", "target seen by origin")
    eq(len(o.requests), 1, "requests at origin")


@test("curl download through the proxy matches sha256")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o))
    r = curl(["http://127.0.0.1:%d/bytes/100000" % gh.port])
    eq(r.returncode, 0, "curl exit (%s)" % r.stderr)
    eq(sha256(r.stdout), sha256(det_bytes(100000)), "body sha256")


@test("reverse-proxy one-liner with two --to round-robins across both origins")
def t():
    a = Origin(name="a")
    b = Origin(name="b")
    p = free_port()
    Gatehouse(args=["reverse-proxy", "--from", "127.0.0.1:%d" % p,
                    "--to", "127.0.0.1:%d" % a.port, "--to", "127.0.0.1:%d" % b.port],
              nports=0, wait_ports=[p])
    names = []
    for i in range(10):
        r = http_get(p, "/echo?i=%d" % i)
        eq(r.status, 200, "status of request %d" % i)
        names.append(r.json()["origin"])
    diag("origins:", names)
    check(names.count("a") >= 3 and names.count("b") >= 3,
          "round robin should spread 10 requests over both origins: %r" % names)
    eq(len(a.requests) + len(b.requests), 10, "requests seen by origins")


@test("reverse-proxy one-liner with one --to and keep-alive client")
def t():
    a = Origin(name="a")
    p = free_port()
    Gatehouse(args=["reverse-proxy", "--from", "127.0.0.1:%d" % p, "--to",
                    "127.0.0.1:%d" % a.port], nports=0, wait_ports=[p])
    with Conn(p) as c:
        for i in range(3):
            r = c.request("GET", "/bytes/%d" % (1000 + i))
            eq(r.status, 200, "status")
            eq(r.body, det_bytes(1000 + i), "body")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


@test("-t -c on a good config exits 0")
def t():
    d = tmpdir()
    path = write(os.path.join(d, "good.conf"), """# a good config
error_log stderr info;
upstream app {
    server 127.0.0.1:9;
    keepalive 8;
}
server {
    listen 127.0.0.1:%d;
    server_name a.test *.b.test;
    proxy app;
    route /static/ { return 200 "static"; }
    route = /health { return 204; }
}
""" % free_port())
    r = run_gh(["-t", "-c", path])
    eq(r.returncode, 0, "exit status (stderr: %s)" % r.stderr.strip())


@test("-t -c on an unknown directive exits 1 with FILE:LINE:COL and did-you-mean")
def t():
    d = tmpdir()
    path = write(os.path.join(d, "bad.conf"), """server {
    listen 127.0.0.1:%d;
    proxxy 127.0.0.1:9;
}
""" % free_port())
    r = run_gh(["-t", "-c", path])
    diag("stderr:", r.stderr.strip())
    eq(r.returncode, 1, "exit status")
    check(re.search(r"bad\.conf:3:5:", r.stderr), "want 'bad.conf:3:5:' on stderr")
    check(re.search(r"did you mean .?proxy", r.stderr), "want a did-you-mean 'proxy' hint")


@test("-t -c with a missing ';' exits 1 with FILE:LINE:COL")
def t():
    d = tmpdir()
    path = write(os.path.join(d, "semi.conf"), """server {
    listen 127.0.0.1:%d
    proxy 127.0.0.1:9;
}
""" % free_port())
    r = run_gh(["-t", "-c", path])
    diag("stderr:", r.stderr.strip())
    eq(r.returncode, 1, "exit status")
    check(re.search(r"semi\.conf:2:\d+:.*missing ';'", r.stderr),
          "want 'semi.conf:2:COL: missing ';'...' on stderr (just after the last token)")


@test("-t -c collects several errors before giving up")
def t():
    d = tmpdir()
    path = write(os.path.join(d, "many.conf"), """server {
    listen 127.0.0.1:%d;
    proxxy 127.0.0.1:9;
    client_header_timeout forever;
}
""" % free_port())
    r = run_gh(["-t", "-c", path])
    diag("stderr:", r.stderr.strip())
    eq(r.returncode, 1, "exit status")
    check(re.search(r"many\.conf:3:\d+:", r.stderr) and re.search(r"many\.conf:4:\d+:", r.stderr),
          "want errors for both line 3 and line 4")


@test("-t -c checks that the log files can be opened, naming FILE:LINE:COL")
def t():
    d = tmpdir()
    path = write(os.path.join(d, "logs.conf"), """access_log %s/no/such/dir/access.log;
server {
    listen 127.0.0.1:%d;
    return 200 "ok";
}
""" % (d, free_port()))
    r = run_gh(["-t", "-c", path])
    diag("stderr:", r.stderr.strip())
    eq(r.returncode, 1, "exit status")
    check(re.search(r"logs\.conf:1:12: cannot open access_log '.*/no/such/dir/access\.log': No such file",
                    r.stderr), "want 'logs.conf:1:12: cannot open access_log ...' on stderr")
    # a writable path passes, and the file exists afterwards as it would after a start
    path2 = write(os.path.join(d, "logs2.conf"), """access_log %s/access.log json;
error_log %s/error.log warn;
server {
    listen 127.0.0.1:%d;
    return 200 "ok";
}
""" % (d, d, free_port()))
    r = run_gh(["-t", "-c", path2])
    eq(r.returncode, 0, "exit status for writable log paths (stderr: %s)" % r.stderr.strip())
    check(os.path.exists(os.path.join(d, "access.log")) and os.path.exists(os.path.join(d, "error.log")),
          "both log files should exist after -t")


@test("-c on a missing file exits non-zero with a message")
def t():
    r = run_gh(["-t", "-c", "/nonexistent/gatehouse.conf"])
    check(r.returncode != 0, "exit status should be non-zero")
    check("nonexistent" in r.stderr, "stderr should name the file: %r" % r.stderr)


@test("--version exits 0 and prints a version")
def t():
    r = run_gh(["--version"])
    eq(r.returncode, 0, "exit status")
    out = r.stdout + r.stderr
    check(re.search(r"gatehouse", out, re.I), "output should name gatehouse: %r" % out)


@test("reverse-proxy --to with a host name or a URL says what is wrong, exit 2")
def t():
    for to, want in (("app.internal:3000", "'app.internal:3000': host names are not supported "
                      "yet (DNS-named servers come later): use an IP address such as 127.0.0.1:3000"),
                     ("http://127.0.0.1:3000", "'--to' takes ADDR:PORT, without 'http://' (write "
                      "'--to 127.0.0.1:3000')"),
                     ("https://127.0.0.1:3000", "without 'https://' (for TLS to the origin, use a config "
                      "file")):
        r = run_gh(["reverse-proxy", "--from", "127.0.0.1:%d" % free_port(), "--to", to])
        eq(r.returncode, 2, "exit status for --to %s" % to)
        check(want in r.stderr, "stderr for --to %s: %r" % (to, r.stderr))


@test("--help exits 0 and documents -c and reverse-proxy")
def t():
    r = run_gh(["--help"])
    eq(r.returncode, 0, "exit status")
    out = r.stdout + r.stderr
    check("-c" in out and "reverse-proxy" in out, "help text: %r" % out[:500])


@test("generated response (return) carries Server: gatehouse")
def t():
    gh = Gatehouse(lambda g: BASE_TOP + """server {
    listen 127.0.0.1:%d;
    route / { return 404 "nope"; }
}
""" % g.port)
    r = http_get(gh.port, "/anything")
    eq(r.status, 404, "status")
    eq(r.header("server"), "gatehouse", "Server header")
    check(b"nope" in r.body, "body should contain the return text: %r" % r.body)


@test("access_log stderr logs each request (combined), json format parses")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, top_extra="access_log stderr;\n"))
    eq(http_get(gh.port, "/echo?logme=1").status, 200, "status")
    gh.wait_stderr(r'"GET /echo\?logme=1 HTTP/1\.1" 200 ', 5)
    d = tmpdir()
    log = os.path.join(d, "access.json")
    gh2 = Gatehouse(conf_proxy(o, top_extra="access_log %s json;\n" % log))
    eq(http_get(gh2.port, "/echo?logme=2").status, 200, "status")

    def json_line():
        try:
            with open(log) as f:
                lines = [ln for ln in f.read().splitlines() if "logme=2" in ln]
        except OSError:
            return None
        return lines and json.loads(lines[0])

    entry = wait_until(json_line, 5, "a JSON access log line")
    diag("json entry:", entry)
    eq(entry["status"], 200, "status field")
    eq(entry["request"], "GET /echo?logme=2 HTTP/1.1", "request field")
    eq(entry["upstream"], "127.0.0.1:%d" % o.port, "origin chosen")
    check(entry["bytes_sent"] > 0, "bytes_sent")
    for k in ("t_headers_ms", "t_connect_ms", "t_first_byte_ms", "t_total_ms"):
        check(isinstance(entry[k], int) and entry[k] >= 0, "timing %s = %r" % (k, entry[k]))
    check(entry["t_first_byte_ms"] <= entry["t_total_ms"], "first byte before total")


@test("include of a glob and a relative path; a server with neither proxy nor return -> 404")
def t():
    o = Origin(name="inc")

    def config(g):
        write(os.path.join(g.dir, "routes-a.inc"), "route /inc/ { proxy 127.0.0.1:%d; }\n"
              % o.port)
        return BASE_TOP + """server {
    listen 127.0.0.1:%d;
    include routes-*.inc;
    include nothing-matches-*.inc;
}
""" % g.port

    gh = Gatehouse(config)
    eq(http_get(gh.port, "/inc/x").header("x-origin-name"), "inc", "included route")
    r = http_get(gh.port, "/other")
    eq(r.status, 404, "no proxy and no return")
    eq(r.header("server"), "gatehouse", "Server header")



@test("a second instance on the same address refuses to start (no silent port sharing)")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o))
    d = tmpdir()
    path = os.path.join(d, "second.conf")
    with open(path, "w") as f:
        f.write(conf_proxy(o)(gh))
    p = subprocess.run([GH_BIN, "-c", path], capture_output=True, timeout=20)
    eq(p.returncode, 1, "exit status of the second instance")
    check(b"Address already in use" in p.stderr, "says why: %r" % p.stderr[-300:])
    eq(http_get(gh.port, "/echo").status, 200, "the first one still serves")


@test("rejected requests (400, 505) are in the access log too, with the raw request line")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, top_extra="access_log stderr;\n"))
    resp, _, _ = raw_exchange(gh.port, b"GET /bad?x=1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    eq(resp.status, 400, "two Hosts")
    gh.wait_stderr(r'"GET /bad\?x=1 HTTP/1\.1" 400 ', 5)
    resp, _, _ = raw_exchange(gh.port, b"GET /v HTTP/2.0\r\nHost: a\r\n\r\n")
    eq(resp.status, 505, "HTTP/2.0")
    gh.wait_stderr(r'"GET /v HTTP/2\.0" 505 ', 5)
    eq(o.requests, [], "the origin saw nothing")

run()
