#!/usr/bin/env python3
"""File descriptors across reloads (SIGHUP) and log reopens (SIGUSR1): the count stays flat,
with the logs in files, on stderr, and switching between the two; a low open-file limit does
not run out after many reloads."""

import os
import resource
import signal

from ghtest import *


def conf(oport, error_log, access_log):
    """A config function; error_log / access_log are "stderr" or a file name in gh.dir."""

    def build(g):
        def dest(v):
            return v if v == "stderr" else os.path.join(g.dir, v)

        return ("error_log %s info;\naccess_log %s;\ndrain_timeout 5s;\n"
                "server {\n    listen 127.0.0.1:%d;\n    proxy 127.0.0.1:%d;\n}\n"
                % (dest(error_log), dest(access_log), g.port, oport))

    return build


def fds(gh):
    """{fd number: what it refers to} for the running gatehouse."""
    d = "/proc/%d/fd" % gh.proc.pid
    out = {}
    for n in os.listdir(d):
        try:
            out[int(n)] = os.readlink(os.path.join(d, n))
        except OSError:
            pass  # closed while listing
    return out


def error_log_text(gh, error_log):
    if error_log == "stderr":
        return gh.stderr()
    try:
        with open(os.path.join(gh.dir, error_log), "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def send_and_wait(gh, sig, error_log, timeout=10):
    """Send sig and wait until the error log shows it was taken (and, for SIGHUP, that the
    reload completed), so that no two signals are ever pending at once (they would merge)."""
    line = "reload complete" if sig == signal.SIGHUP else "SIGUSR1: reopening log files"
    before = error_log_text(gh, error_log).count(line)
    gh.signal(sig)
    wait_until(lambda: error_log_text(gh, error_log).count(line) > before, timeout,
               "%r logged after %s" % (line, signal.Signals(sig).name))


def settle(gh, error_log):
    """Signals are handled one after the other: once a SIGHUP sent now has completed, every
    reopen sent before it has completed too."""
    send_and_wait(gh, signal.SIGHUP, error_log)


def diff_fds(before, after):
    lines = []
    for n in sorted(set(before) | set(after)):
        if before.get(n) != after.get(n):
            lines.append("fd %d: %s -> %s" % (n, before.get(n, "-"), after.get(n, "-")))
    return lines


def check_flat(gh, o, error_log, access_log, rounds=50):
    # One reload and one reopen first: the access log keeps its previous descriptor open until
    # the next swap (a worker may be writing to it at that instant), so the count settles after
    # the first swap and must not move after that.
    eq(http_get(gh.port, "/echo").status, 200, "status before")
    send_and_wait(gh, signal.SIGHUP, error_log)
    send_and_wait(gh, signal.SIGUSR1, error_log)
    settle(gh, error_log)
    before = fds(gh)
    for _ in range(rounds):
        send_and_wait(gh, signal.SIGHUP, error_log)
        send_and_wait(gh, signal.SIGUSR1, error_log)
    settle(gh, error_log)
    after = fds(gh)
    diag("%s/%s: %d descriptors before %d SIGHUP + %d SIGUSR1, %d after"
         % (error_log, access_log, len(before), rounds, rounds, len(after)))
    for line in diff_fds(before, after):
        diag("  " + line)
    eq(len(after), len(before), "open descriptors after %d reloads and %d reopens"
       % (rounds, rounds))
    check(2 in after, "fd 2 (stderr) must stay open")
    eq(after[2], before[2], "what fd 2 refers to")
    r = http_get(gh.port, "/echo")
    eq(r.status, 200, "status after")


@test("50 SIGHUP + 50 SIGUSR1 with error_log and access_log in files: no descriptor added",
      timeout=120)
def t():
    o = Origin()
    gh = Gatehouse(conf(o.port, "error.log", "access.log"))
    check_flat(gh, o, "error.log", "access.log")
    text = error_log_text(gh, "error.log")
    check(text.count("reload complete") >= 50, "reloads logged in the error log file")
    with open(os.path.join(gh.dir, "access.log")) as f:
        check("GET /echo" in f.read(), "requests logged in the access log file")


@test("50 SIGHUP + 50 SIGUSR1 with error_log and access_log on stderr: no descriptor added",
      timeout=120)
def t():
    o = Origin()
    gh = Gatehouse(conf(o.port, "stderr", "stderr"))
    check_flat(gh, o, "stderr", "stderr")


@test("error_log file -> stderr -> file across reloads: flat count, lines land where configured",
      timeout=120)
def t():
    o = Origin()
    gh = Gatehouse(conf(o.port, "error.log", "access.log"))
    path = os.path.join(gh.dir, "error.log")
    send_and_wait(gh, signal.SIGHUP, "error.log")
    send_and_wait(gh, signal.SIGUSR1, "error.log")
    before = fds(gh)
    for i in range(10):
        gh.write_config(conf(o.port, "stderr", "stderr"))
        # "reload complete" is logged after the new error_log is in place
        send_and_wait(gh, signal.SIGHUP, "stderr")
        size = os.path.getsize(path)
        send_and_wait(gh, signal.SIGUSR1, "stderr")
        eq(os.path.getsize(path), size, "error.log written while error_log was stderr (round %d)"
           % i)
        gh.write_config(conf(o.port, "error.log", "access.log"))
        send_and_wait(gh, signal.SIGHUP, "error.log")
        send_and_wait(gh, signal.SIGUSR1, "error.log")
    settle(gh, "error.log")
    after = fds(gh)
    diag("%d descriptors before 10 file -> stderr -> file rounds, %d after"
         % (len(before), len(after)))
    for line in diff_fds(before, after):
        diag("  " + line)
    eq(len(after), len(before), "open descriptors")
    eq(after.get(2), before.get(2), "what fd 2 refers to")
    eq(http_get(gh.port, "/echo").status, 200, "status after")


@test("-t with error_log and access_log files leaves them created and exits 0")
def t():
    d = tmpdir()
    path = os.path.join(d, "t.conf")
    with open(path, "w") as f:
        f.write("error_log %s/e.log info;\naccess_log %s/a.log;\n"
                "server {\n    listen 127.0.0.1:%d;\n    return 200;\n}\n" % (d, d, free_port()))
    r = run_gh(["-t", "-c", path])
    eq(r.returncode, 0, "exit status (%s)" % r.stderr)
    check(os.path.exists(os.path.join(d, "e.log")) and os.path.exists(os.path.join(d, "a.log")),
          "-t creates the log files")


@test("open-file limit 64: 100 reloads and reopens, still answering", timeout=180)
def t():
    o = Origin()
    gh = Gatehouse(conf(o.port, "error.log", "access.log"))
    resource.prlimit(gh.proc.pid, resource.RLIMIT_NOFILE, (64, 64))
    eq(resource.prlimit(gh.proc.pid, resource.RLIMIT_NOFILE), (64, 64), "limit applied")
    start = fds(gh)
    diag("%d descriptors open at start" % len(start))
    for i in range(100):
        send_and_wait(gh, signal.SIGHUP, "error.log")
        send_and_wait(gh, signal.SIGUSR1, "error.log")
        if i % 10 == 9:
            r = http_get(gh.port, "/echo?i=%d" % i)
            eq(r.status, 200, "status after %d reloads" % (i + 1))
    settle(gh, "error.log")
    end = fds(gh)
    diag("%d descriptors open after 100 SIGHUP + 100 SIGUSR1" % len(end))
    for line in diff_fds(start, end):
        diag("  " + line)
    for i in range(20):
        eq(http_get(gh.port, "/echo?n=%d" % i).status, 200, "status of request %d" % i)
    text = error_log_text(gh, "error.log")
    check("cannot" not in text, "no open failure logged: %r"
          % [ln for ln in text.splitlines() if "cannot" in ln][:3])


run()
