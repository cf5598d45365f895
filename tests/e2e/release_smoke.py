#!/usr/bin/env python3
"""Smoke test of the release binary (build/release/gatehouse, no sanitizers): it starts on a
small config, proxies a GET to a real origin, checks the example configs with -t and exits 0
on SIGTERM. tests/run_all.sh runs this file with GH_BIN pointing at the release binary; the
other e2e files test the ASan build."""

import glob
import os
import signal
import subprocess

from ghtest import *


@test("release binary: GET through a small config reaches the origin")
def t():
    o = Origin(name="rel")
    gh = Gatehouse(conf_proxy(o))
    r = http_get(gh.port, "/echo?smoke=1")
    eq(r.status, 200, "status")
    eq(r.json()["origin"], "rel", "origin name")
    eq(r.json()["target"], "/echo?smoke=1", "target seen by origin")
    code, err = curl_status(["http://127.0.0.1:%d/bytes/100000" % gh.port])
    eq(code, 200, "curl status (%s)" % err)


def example_with_files(path):
    """An example that names files of its own (certificates) says in its header comment how to
    make them: `#   ` lines of commands before the one running gatehouse. Copy it into a fresh
    directory and run those there, as a user would; others are checked where they are."""
    with open(path) as f:
        text = f.read()
    if "openssl req" not in text:
        return path
    d = tmpdir()
    cmds = []
    for line in text.splitlines():
        if not line.startswith("#   "):
            continue
        cmd = line[4:]
        if cmd.startswith(("gatehouse", "curl")):
            break
        cmds.append(cmd)
    copy = os.path.join(d, os.path.basename(path))
    with open(copy, "w") as f:
        f.write(text)
    script = "\n".join(cmds).replace("\\\n", " ")
    r = subprocess.run(["bash", "-ec", script], cwd=d, capture_output=True, text=True, timeout=60)
    eq(r.returncode, 0, "the commands in %s's header (stderr: %s)" % (path, r.stderr[-500:]))
    return copy


@test("release binary: -t accepts every config in examples/")
def t():
    confs = sorted(glob.glob(os.path.join(ROOT, "examples", "*.conf")))
    check(confs, "no examples/*.conf found")
    for path in confs:
        path = example_with_files(path)
        r = run_gh(["-t", "-c", path])
        eq(r.returncode, 0, "gatehouse -t -c %s exit status (stderr: %s)"
           % (os.path.relpath(path, ROOT), r.stderr.strip()))
        check("configuration is valid" in r.stdout, "-t output: %r" % r.stdout)


@test("release binary: --version, and SIGTERM drains and exits 0")
def t():
    r = run_gh(["--version"])
    eq(r.returncode, 0, "--version exit status")
    check(r.stdout.startswith("gatehouse "), "--version output %r" % r.stdout)
    o = Origin()
    gh = Gatehouse(conf_proxy(o))
    eq(http_get(gh.port, "/echo").status, 200, "status")
    gh.signal(signal.SIGTERM)
    eq(gh.stop(), 0, "exit status after SIGTERM")
    check("[info] stopped: " in gh.stderr(), "'stopped' logged")


run()
