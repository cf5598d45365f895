#!/usr/bin/env python3
"""splice(2) is really used for large Content-Length bodies, both ways (strace attached to the
running proxy counts the calls and the bytes they moved), is not used with `splice off`, and
when no pipe can be had (the open-file limit leaves room for sockets but not for a pipe's two
descriptors) the bodies are copied instead and still arrive intact."""

import collections
import resource
import shutil
import signal

from ghtest import *

import ghtest as _gh

SPLICE_RX = re.compile(r"\bsplice\(\d+, NULL, \d+, NULL, \d+, [A-Z_|]+\)\s+=\s+(-?\d+)")
PIPE2_RX = re.compile(r"\bpipe2\(.*\)\s+=\s+(-?\d+)(?: (E[A-Z]+))?")

DOWN = 5 * 1000 * 1000 + 7
UP = 2 * 1000 * 1000 + 3


class Strace:
    """strace attached to every thread of a running process, tracing `calls` into a file.
    Detach (stop()) before the process exits: its sanitizer's leak check needs ptrace itself."""

    def __init__(self, pid, calls, d):
        if shutil.which("strace") is None:
            raise AssertionError("strace is not installed (scripts/deps.sh test installs it)")
        self.pid = pid
        self.out = os.path.join(d, "strace.out")
        self.err_path = os.path.join(d, "strace.err")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(["strace", "-f", "-p", str(pid), "-e", "trace=" + calls,
                                      "-o", self.out], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._err)
        _gh._all_procs.append(self.proc)
        _gh._register(self)
        self._err_text = None
        ntasks = len(os.listdir("/proc/%d/task" % pid))
        # "Process N attached" (one thread) or "Process N attached with K threads"
        m = wait_until(lambda: re.search(r"Process %d attached(?: with (\d+) threads)?" % pid,
                                         self.err()) or self.proc.poll() is not None,
                       15, "strace to attach")
        check(self.proc.poll() is None, "strace exited: %s" % self.err())
        check(int(m.group(1) or 1) >= ntasks, "strace attached to %s of %d threads"
              % (m.group(1) or 1, ntasks))

    def err(self):
        if self._err_text is not None:
            return self._err_text
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        """Detach; return the trace."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._err.close()
        self._err_text = self.err()
        try:
            with open(self.out) as f:
                return f.read()
        except OSError:
            return ""

    def cleanup(self):
        self.stop()
        return None

    def diagnostics(self):
        return ["--- strace -p %d: %s" % (self.pid, self.err().strip()[-500:])]


def splices(trace):
    """(number of successful splice calls, bytes they moved in total)."""
    moved = [int(m.group(1)) for m in SPLICE_RX.finditer(trace)]
    ok = [n for n in moved if n > 0]
    return len(ok), sum(ok)


def transfer(gh, o):
    """One large download and one large upload on one keep-alive connection; both checked."""
    with Conn(gh.port, timeout=60) as c:
        r = c.request("GET", "/bytes/%d" % DOWN)
        eq(r.status, 200, "download status")
        eq(len(r.body), DOWN, "download length")
        eq(sha256(r.body), sha256(det_bytes(DOWN)), "download sha256")
        body = det_bytes(UP, seed=5)
        r = c.request("POST", "/upload", body=body)
        eq(r.status, 200, "upload status")
        eq((r.json()["length"], r.json()["sha256"]), (UP, sha256(body)), "upload at the origin")


@test("splice on: a 5 MB download and a 2 MB upload are moved by splice(2), both directions")
def t():
    o = Origin()
    # request bodies stream (and so splice) only without request_buffering
    gh = Gatehouse(conf_proxy(o, top_extra="threads 1;\n", server_extra="    request_buffering off;"))
    st = Strace(gh.proc.pid, "splice", tmpdir())
    transfer(gh, o)
    n, moved = splices(st.stop())
    diag("%d splice calls moved %d bytes" % (n, moved))
    # every spliced byte is counted twice: socket -> pipe, then pipe -> socket. All but the first
    # read of each body (at most 16 KiB of the response, what came with the head of the request)
    # must have gone that way.
    check(moved >= 2 * (DOWN - (64 << 10)) + 2 * (UP - (256 << 10)),
          "splice moved %d bytes; want nearly 2 x (%d + %d)" % (moved, DOWN, UP))


@test("splice off: the same transfers make no splice(2) call and create no pipe")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, top_extra="threads 1;\n", server_extra="    splice off;"))
    st = Strace(gh.proc.pid, "splice,pipe2", tmpdir())
    transfer(gh, o)
    trace = st.stop()
    eq(splices(trace), (0, 0), "splice calls with splice off")
    eq(PIPE2_RX.findall(trace), [], "pipe2 calls with splice off")


def fds_of(pid):
    return sorted(int(fd) for fd in os.listdir("/proc/%d/fd" % pid))


@test("no pipe to be had (open-file limit): large bodies are copied instead, both directions, "
      "and arrive intact")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, top_extra="threads 1;\n"))
    pid = gh.proc.pid
    d = tmpdir()
    with Conn(gh.port, timeout=60) as c:
        # the client connection and a pooled origin connection are open; no pipe yet
        eq(c.request("GET", "/echo").status, 200, "warm-up request")
        check(not [fd for fd in os.listdir("/proc/%d/fd" % pid)
                   if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("pipe:")],
              "a pipe is already open before any large body")
        st = Strace(pid, "splice,pipe2", d)
        # RLIMIT_NOFILE bounds new descriptor numbers: leave exactly one number free, enough
        # for a socket (a new origin connection, if one is needed) but not for a pipe's two
        fds = fds_of(pid)
        limit = max(n for n in range(1, fds[-1] + 3) if n - len([f for f in fds if f < n]) == 1)
        old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        diag("open fds %r; RLIMIT_NOFILE %r -> %d" % (fds, old, limit))
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, old[1]))
        try:
            r = c.request("GET", "/bytes/%d" % DOWN)
            eq(r.status, 200, "download status")
            eq(len(r.body), DOWN, "download length")
            eq(sha256(r.body), sha256(det_bytes(DOWN)), "download sha256")
            body = det_bytes(UP, seed=5)
            r = c.request("POST", "/upload", body=body)
            eq(r.status, 200, "upload status")
            eq((r.json()["length"], r.json()["sha256"]), (UP, sha256(body)),
               "upload at the origin")
        finally:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, old)
        trace = st.stop()
    pipes = PIPE2_RX.findall(trace)
    diag("pipe2 results: %r" % sorted(collections.Counter(pipes).items()))
    check(len(pipes) >= 2, "pipe2 should have been tried for both bodies: %r" % pipes)
    eq({p for p in pipes}, {("-1", "EMFILE")}, "pipe2 results (every attempt refused)")
    eq(splices(trace), (0, 0), "splice calls without a pipe")
    # and with the limit back, the next large body is spliced again
    st = Strace(pid, "splice", d)
    r = http_get(gh.port, "/bytes/%d" % DOWN, timeout=60)
    eq(sha256(r.body), sha256(det_bytes(DOWN)), "download sha256 after the limit is restored")
    n, moved = splices(st.stop())
    check(moved >= 2 * (DOWN - (64 << 10)), "spliced again after the limit is restored (%d bytes)"
          % moved)


@test("a forward proxy's CONNECT tunnel between plain sockets moves its bytes by splice(2), both "
      "ways")
def t():
    o = Origin()
    gh = Gatehouse(lambda g: """threads 1;
forward_proxy { listen 127.0.0.1:%d; allow_private_destinations on; connect_ports %d; }
""" % (g.port, o.port))
    st = Strace(gh.proc.pid, "splice", tmpdir())
    with Conn(gh.port, timeout=60) as c:
        c.send(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n" % o.port)
        head = b""
        while b"\r\n\r\n" not in head:
            head += c.sock.recv(1)
        check(head.startswith(b"HTTP/1.1 200"), "tunnel open: %r" % head)
        r = c.request("GET", "/bytes/%d" % DOWN)
        eq(sha256(r.body), sha256(det_bytes(DOWN)), "download through the tunnel")
        body = det_bytes(UP, seed=6)
        r = c.request("POST", "/upload", body=body)
        eq((r.json()["length"], r.json()["sha256"]), (UP, sha256(body)), "upload through it")
    n, moved = splices(st.stop())
    diag("%d splice calls moved %d bytes" % (n, moved))
    check(moved >= 2 * (DOWN + UP), "both directions spliced (socket->pipe->socket): %d" % moved)


run()
