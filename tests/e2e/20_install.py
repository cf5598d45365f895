#!/usr/bin/env python3
"""`make install` / `make uninstall` with DESTDIR and PREFIX: the release binary, the man page
and the example config land where they should, the installed binary runs, an existing config is
never replaced, and uninstall leaves a config that was changed.

`make` is run with `-o build/release/gatehouse`: it installs the binary `make check` already
built and never rebuilds it in the middle of a test run (a source edited meanwhile would
otherwise start an LTO build here)."""

import os
import stat
import subprocess

from ghtest import *

REL_BIN = os.path.join(ROOT, "build/release/gatehouse")


def make(*args):
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DESTDIR", "PREFIX", "SYSCONFDIR"):
        env.pop(k, None)
    r = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "-o", "build/release/gatehouse"]
                       + list(args), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=60, env=env)
    if r.returncode != 0:
        diag("make %s -> %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def run_installed(args):
    return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=20)


def need_release_binary():
    if not os.path.exists(REL_BIN):
        raise Skip("no %s (make check and make build make it)" % os.path.relpath(REL_BIN, ROOT))


@test("make install DESTDIR=... PREFIX=/usr: binary, man page, config in /etc; they work")
def t():
    need_release_binary()
    dest = tmpdir()
    r = make("install", "DESTDIR=" + dest, "PREFIX=/usr")
    eq(r.returncode, 0, "make install exit status")
    binary = os.path.join(dest, "usr/bin/gatehouse")
    man = os.path.join(dest, "usr/share/man/man8/gatehouse.8")
    conf = os.path.join(dest, "etc/gatehouse/gatehouse.conf")
    for p in (binary, man, conf):
        check(os.path.isfile(p), "%s not installed" % os.path.relpath(p, dest))
    check(os.stat(binary).st_mode & stat.S_IXUSR, "binary is not executable")
    eq(os.stat(man).st_mode & 0o777, 0o644, "man page mode")
    with open(man) as f:
        check(f.read().startswith(".TH GATEHOUSE 8"), "man page content")
    with open(conf) as f, open(os.path.join(ROOT, "examples/reverse-proxy.conf")) as g:
        eq(f.read(), g.read(), "installed config is the reverse-proxy example")

    v = run_installed([binary, "--version"])
    eq(v.returncode, 0, "--version exit status")
    check(v.stdout.startswith("gatehouse "), "--version output %r" % v.stdout)
    c = run_installed([binary, "-t", "-c", conf])
    eq(c.returncode, 0, "-t -c installed config (stderr: %s)" % c.stderr.strip())
    check("configuration is valid" in c.stdout, "-t output %r" % c.stdout)


@test("make install keeps an existing config; make uninstall removes the rest")
def t():
    need_release_binary()
    dest = tmpdir()
    conf = os.path.join(dest, "usr/local/etc/gatehouse/gatehouse.conf")
    os.makedirs(os.path.dirname(conf))
    mine = "# mine\nserver { listen 127.0.0.1:%d; return 200; }\n" % free_port()
    with open(conf, "w") as f:
        f.write(mine)
    eq(make("install", "DESTDIR=" + dest).returncode, 0, "make install exit status")
    check(os.path.isfile(os.path.join(dest, "usr/local/bin/gatehouse")),
          "default PREFIX is /usr/local")
    with open(conf) as f:
        eq(f.read(), mine, "existing config after make install")
    eq(make("uninstall", "DESTDIR=" + dest).returncode, 0, "make uninstall exit status")
    check(not os.path.exists(os.path.join(dest, "usr/local/bin/gatehouse")), "binary removed")
    check(not os.path.exists(os.path.join(dest, "usr/local/share/man/man8/gatehouse.8")),
          "man page removed")
    with open(conf) as f:
        eq(f.read(), mine, "a changed config stays after make uninstall")
    # the example as shipped is removed with its directory
    os.unlink(conf)
    eq(make("install", "DESTDIR=" + dest).returncode, 0, "make install exit status")
    check(os.path.isfile(conf), "example installed where none was")
    eq(make("uninstall", "DESTDIR=" + dest).returncode, 0, "make uninstall exit status")
    check(not os.path.exists(os.path.dirname(conf)), "unchanged example and its directory removed")


run()
