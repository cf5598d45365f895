#!/usr/bin/env python3
"""`pid FILE;` and `gatehouse -s reload|reopen|stop|quit -c FILE`: the running instance writes
its pid at start and removes it on exit; -s finds it through the config's pid file and sends
SIGHUP / SIGUSR1 / SIGTERM / SIGQUIT; every way of not finding it is a clear error (exit 1),
a command-line mistake exits 2."""

import os
import subprocess

from ghtest import *


def conf(version, port=None, pid="gatehouse.pid", extra=""):
    def build(g):
        return BASE_TOP + extra + ("pid %s;\n" % pid if pid else "") + """access_log access.log;
server {
    listen 127.0.0.1:%d;
    route / { response_header set X-Version %s; return 200 "ok\\n"; }
}
""" % (port or g.port, version)

    return build


def version(port):
    r = http_get(port, "/")
    eq(r.status, 200, "status")
    return r.header("x-version")


def read_pid(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def signal_cli(gh_or_path, name):
    path = gh_or_path if isinstance(gh_or_path, str) else gh_or_path.conf_path
    # run from another directory: a relative pid path belongs to the config file's directory
    return run_gh(["-s", name, "-c", path])


def lines_with(path, text):
    try:
        with open(path) as f:
            return [ln for ln in f.read().splitlines() if text in ln]
    except OSError:
        return []


@test("pid file at start; -s reload takes a changed config, -s reopen the logs; -s stop "
      "exits 0 and removes the pid file")
def t():
    gh = Gatehouse(conf("v1"))
    pidfile = os.path.join(gh.dir, "gatehouse.pid")
    wait_until(lambda: read_pid(pidfile), 10, "the pid file")
    eq(read_pid(pidfile), "%d\n" % gh.proc.pid, "pid file content")
    eq(version(gh.port), "v1", "before reload")

    gh.write_config(conf("v2"))
    r = signal_cli(gh, "reload")
    eq((r.returncode, r.stderr), (0, ""), "-s reload exit status and stderr")
    wait_until(lambda: version(gh.port) == "v2", 10, "X-Version v2 after -s reload")

    # log rotation: move the access log away, -s reopen, the next request goes to a new file
    log = os.path.join(gh.dir, "access.log")
    wait_until(lambda: lines_with(log, "GET / "), 10, "requests in the access log")
    os.rename(log, log + ".1")
    mark = len(gh.stderr())
    r = signal_cli(gh, "reopen")
    eq((r.returncode, r.stderr), (0, ""), "-s reopen exit status and stderr")
    gh.wait_stderr(r"\[info\] SIGUSR1: reopening log files", 10, start=mark)
    eq(http_get(gh.port, "/after-reopen").status, 200, "status")
    wait_until(lambda: lines_with(log, "/after-reopen"), 10, "the request in the new access.log")
    eq(lines_with(log + ".1", "/after-reopen"), [], "rotated file after reopen")

    r = signal_cli(gh, "stop")
    eq((r.returncode, r.stderr), (0, ""), "-s stop exit status and stderr")
    eq(gh.proc.wait(STOP_TIMEOUT), 0, "exit status after -s stop")
    check("received SIGTERM: draining" in gh.stderr(), "SIGTERM logged")
    check(not os.path.exists(pidfile), "pid file removed at exit")


@test("-s quit drains and exits 0 too (logged as SIGQUIT)")
def t():
    gh = Gatehouse(conf("v1"))
    pidfile = os.path.join(gh.dir, "gatehouse.pid")
    wait_until(lambda: read_pid(pidfile), 10, "the pid file")
    r = signal_cli(gh, "quit")
    eq((r.returncode, r.stderr), (0, ""), "-s quit exit status and stderr")
    eq(gh.proc.wait(STOP_TIMEOUT), 0, "exit status after -s quit")
    check("received SIGQUIT: draining" in gh.stderr(), "SIGQUIT logged")
    check(not os.path.exists(pidfile), "pid file removed at exit")


@test("-s errors: no pid directive, embedded default, missing, stale or junk pid file (exit 1); "
      "usage mistakes (exit 2)")
def t():
    d = tmpdir()
    path = os.path.join(d, "g.conf")

    def write(text):
        with open(path, "w") as f:
            f.write(text)

    srv = "server { listen 127.0.0.1:%d; return 200; }\n" % free_port()
    write(srv)
    r = run_gh(["-s", "reload", "-c", path])
    eq(r.returncode, 1, "exit status without a pid directive")
    check("has no 'pid' directive" in r.stderr, "stderr: %r" % r.stderr)

    r = run_gh(["-s", "reload"])
    eq(r.returncode, 1, "exit status with the embedded default")
    check("embedded default config has no 'pid'" in r.stderr, "stderr: %r" % r.stderr)

    write("pid run/g.pid;\n" + srv)
    pidfile = os.path.join(d, "run", "g.pid")
    r = run_gh(["-s", "stop", "-c", path])
    eq(r.returncode, 1, "exit status with no pid file")
    check("pid file '%s' does not exist" % pidfile in r.stderr, "stderr: %r" % r.stderr)

    os.mkdir(os.path.join(d, "run"))
    p = subprocess.Popen(["true"])
    p.wait()
    with open(pidfile, "w") as f:
        f.write("%d\n" % p.pid)  # a process that is gone
    r = run_gh(["-s", "stop", "-c", path])
    eq(r.returncode, 1, "exit status with a stale pid file")
    check("no process %d: the pid file '%s' is stale" % (p.pid, pidfile) in r.stderr,
          "stderr: %r" % r.stderr)

    with open(pidfile, "w") as f:
        f.write("gatehouse\n")
    r = run_gh(["-s", "stop", "-c", path])
    eq(r.returncode, 1, "exit status with junk in the pid file")
    check("does not hold a process id" in r.stderr, "stderr: %r" % r.stderr)

    write("pid run/g.pid;\nthreads x;\n" + srv)
    r = run_gh(["-s", "reload", "-c", path])
    eq(r.returncode, 1, "exit status with a config that has errors")
    check("g.conf:2:9: invalid value 'x' for 'threads'" in r.stderr, "stderr: %r" % r.stderr)
    check("nothing was signalled" in r.stderr, "stderr: %r" % r.stderr)

    for args, what in ((["-s"], "needs a signal"), (["-s", "restart"], "unknown signal 'restart'"),
                       (["-t", "-s", "stop", "-c", path], "do not go together")):
        r = run_gh(args)
        eq(r.returncode, 2, "exit status of %s" % " ".join(args))
        check(what in r.stderr, "stderr of %s: %r" % (" ".join(args), r.stderr))


@test("a pid file naming a running instance is replaced with a warning, not silently; an "
      "instance that cannot start leaves it alone; each removes only its own")
def t():
    d = tmpdir()
    shared_pid = os.path.join(d, "shared.pid")
    a = Gatehouse(conf("a", pid=shared_pid))
    wait_until(lambda: read_pid(shared_pid) == "%d\n" % a.proc.pid, 10, "a's pid file")
    b = Gatehouse(conf("b", pid=shared_pid))
    wait_until(lambda: read_pid(shared_pid) == "%d\n" % b.proc.pid, 10, "b's pid in the file")
    b.wait_stderr(r"\[warn\] pid file '%s' named process %d, which is running; replacing it"
                  % (re.escape(shared_pid), a.proc.pid), 10)
    # same port as b: cannot start, exits 1 before touching the pid file
    c = Gatehouse(conf("c", port=b.port, pid=shared_pid), start=False, wait_ports=[])
    c.start()
    eq(c.proc.wait(STOP_TIMEOUT), 1, "exit status of an instance whose port is taken")
    c.stop()
    eq(read_pid(shared_pid), "%d\n" % b.proc.pid, "pid file after the failed start")
    eq(a.stop(), 0, "a's exit status")
    eq(read_pid(shared_pid), "%d\n" % b.proc.pid, "a leaves b's pid file in place")
    r = signal_cli(b, "stop")
    eq(r.returncode, 0, "-s stop through the shared pid file")
    eq(b.proc.wait(STOP_TIMEOUT), 0, "b's exit status")
    check(not os.path.exists(shared_pid), "b removed its pid file")


run()
