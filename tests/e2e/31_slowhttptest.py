#!/usr/bin/env python3
"""Slow clients with slowhttptest (slowloris, slow body, slow read), each bounded in connections
and time, while a curl loop keeps fetching through the same Gatehouse: every legitimate request
must succeed (within a generous per-request limit of 5 s; no other timing is asserted). The origin
server has `max_conns=32`, a small origin: with `request_buffering` (the default) slow-body
attackers hold none of its slots. The defences' counters show the slow clients were cut off
(client_header_timeout, client_body_timeout).

Bounded: three runs of at most 15 s each (slowhttptest -l), a few hundred sockets each."""

import shutil
import socket
import subprocess
import threading

from ghtest import *

SLOW_SECS = 15


def conf(o):
    def build(g):
        return ("%supstream u {\n    server 127.0.0.1:%d max_conns=32;\n    keepalive 32;\n}\n"
                "server {\n    listen 127.0.0.1:%d;\n    client_header_timeout 3s;\n"
                "    client_body_timeout 2s;\n    send_timeout 5s;\n    proxy u;\n}\n"
                % (BASE_TOP, o.port, g.port))
    return build


class CurlLoop:
    """curl in a loop against url until stopped: every status and error kept."""

    def __init__(self, url, post=False):
        self.url = url
        self.post = post
        self.results = []
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_ev.is_set():
            args = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"]
            if self.post:
                args += ["--data-binary", "legitimate body"]
            p = subprocess.run(args + [self.url], capture_output=True, timeout=30)
            self.results.append((p.returncode, p.stdout.decode()))
            self.stop_ev.wait(0.05)

    def stop(self):
        self.stop_ev.set()
        self.t.join(30)
        return self.results


def attack(gh, o, args, legit_paths=("/",)):
    if shutil.which("slowhttptest") is None:
        raise Skip("slowhttptest is not installed (scripts/deps.sh test)")
    loops = [CurlLoop("http://127.0.0.1:%d%s" % (gh.port, p), post=(p == "/upload"))
             for p in legit_paths]
    try:
        p = subprocess.run(["slowhttptest"] + args + ["-l", str(SLOW_SECS), "-p", "3"],
                           capture_output=True, timeout=SLOW_SECS + 40)
        out = re.sub(r"\x1b\[[0-9;]*m", "", p.stdout.decode("utf-8", "replace"))
        diag("slowhttptest: %s" % " | ".join(l.strip() for l in out.splitlines()
                                              if "closed" in l or "pending" in l
                                              or "connected" in l)[-400:])
    finally:
        results = [r for lp in loops for r in lp.stop()]
    bad = [r for r in results if r != (0, "200")]
    diag("%d legitimate requests during the attack" % len(results))
    check(len(results) >= 10, "the curl loop ran (%d requests)" % len(results))
    eq(bad, [], "legitimate requests that failed")


@test("slowloris (headers a line every 4 s, 500 sockets): every curl request served",
      timeout=90)
def t():
    with Origin() as o, Gatehouse(conf(o)) as gh:
        attack(gh, o, ["-H", "-c", "500", "-r", "250", "-i", "4", "-x", "24", "-t", "GET",
                       "-u", "http://127.0.0.1:%d/" % gh.port])
        gh.stop()
        check(re.search(r"counter slow_head: \d+ ", gh.stderr()), "slow heads cut off, counted")


@test("slow body (8 KiB bodies a few bytes every 4 s, 500 sockets): every curl request served, "
      "no origin slot held", timeout=90)
def t():
    with Origin() as o, Gatehouse(conf(o)) as gh:
        attack(gh, o, ["-B", "-c", "500", "-r", "250", "-i", "4", "-x", "10", "-s", "8192",
                       "-t", "POST", "-u", "http://127.0.0.1:%d/upload" % gh.port],
               legit_paths=("/", "/upload"))
        eq([q for q in o.requests if q.method == "POST" and q.body_len == 8192], [],
           "slow bodies that reached the origin")
        gh.stop()
        check(re.search(r"counter slow_body: \d+ ", gh.stderr()), "slow bodies cut off, counted")


@test("slow read (a 256 KiB response read 32 bytes at a time, 300 sockets): every curl request "
      "served", timeout=90)
def t():
    with Origin() as o, Gatehouse(conf(o)) as gh:
        attack(gh, o, ["-X", "-c", "300", "-r", "150", "-w", "512", "-y", "1024", "-n", "4",
                       "-z", "32", "-k", "2", "-u", "http://127.0.0.1:%d/bytes/262144" % gh.port])


@test("a client that never reads its response is reset at send_timeout, and counted")
def t():
    with Origin() as o, Gatehouse(conf_proxy(o, server_extra="    send_timeout 1s;")) as gh:
        c = Conn(gh.port)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.send(b"GET /bytes/%d HTTP/1.1\r\nHost: a\r\n\r\n" % (64 << 20))
        gh.wait_stderr(r"response not read within send_timeout: connection reset", 30)
        c.close()
        eq(http_get(gh.port, "/").status, 200)
        gh.stop()
        check(re.search(r"counter slow_read: 1 ", gh.stderr()), "counted")


if __name__ == "__main__":
    run()
