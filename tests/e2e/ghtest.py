"""ghtest - a small end-to-end test framework for Gatehouse (Python 3 stdlib only).

A test file registers tests with the @test decorator and ends with `run()`:

    from ghtest import *

    @test("GET passes through", timeout=20)
    def t():
        with Origin() as o, Gatehouse(conf_proxy(o)) as gh:
            r = http_get(gh.port, "/echo")
            eq(r.status, 200)

    run()

The plan line "1..N" comes first; then each test prints exactly one TAP line, "ok N - name" or
"not ok N - name", with diagnostics on lines starting with "# ". A test fails when it raises
(assertion, timeout, socket error), or when a Gatehouse it started exits non-zero, prints a
sanitizer report or hangs at exit. Whatever a test started (gatehouse processes, origins) is
stopped when the test ends, pass or fail.

The binary under test is $GH_BIN (default build/asan/gatehouse relative to the repository root).
"""

import atexit
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

GH_BIN = os.environ.get("GH_BIN") or os.path.join(ROOT, "build/asan/gatehouse")
os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:halt_on_error=1")
os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
LSAN_EXIT_HANG = ("gatehouse finished its shutdown ('stopped' logged) but hung in the "
                  "sanitizer's exit-time leak scan; killed, so its leak check never ran")

# Generous because the binary runs under ASan on 2 shared cores.
START_TIMEOUT = float(os.environ.get("GH_START_TIMEOUT", "15"))
STOP_TIMEOUT = float(os.environ.get("GH_STOP_TIMEOUT", "20"))


# ---------------------------------------------------------------------------------------------
# Registration, TAP output, per-test timeouts and cleanup
# ---------------------------------------------------------------------------------------------

_TESTS = []
_resources = []  # things with .cleanup() / .diagnostics() started by the running test
_diag_lines = []  # extra diagnostics collected by the running test
_shared = {}  # key -> resource kept for the whole file (see shared())
_shared_order = []


class TestTimeout(Exception):
    pass


class Skip(Exception):
    pass


def test(name, timeout=30):
    """Register the decorated function as a test; `timeout` bounds it in seconds."""

    def deco(fn):
        _TESTS.append((name, fn, timeout))
        return fn

    return deco


def diag(*parts):
    """Record a diagnostic line, printed as '# ...' (always, after the test's TAP line)."""
    text = " ".join(str(p) for p in parts)
    for line in text.splitlines() or [""]:
        _diag_lines.append(line)


def _register(res):
    if _building_shared:
        return
    _resources.append(res)


_building_shared = []


def shared(key, factory):
    """Return the resource factory() made for `key`, making it once per file. It is stopped
    after the last test, in a test of its own ("cleanup: shared resources", one for all keys)
    that fails if one ended badly; while it runs, a failing test also prints its diagnostics."""
    if key in _shared:
        res = _shared[key]
        if isinstance(res, Gatehouse) and not res.alive():
            raise AssertionError("shared gatehouse %r is not running (exit %s)"
                                 % (key, res.proc.poll() if res.proc else None))
        return res
    _building_shared.append(key)
    try:
        res = factory()
    finally:
        _building_shared.pop()
    _shared[key] = res
    _shared_order.append(key)
    return res


def _unregister(res):
    try:
        _resources.remove(res)
    except ValueError:
        pass


_all_procs = []


@atexit.register
def _kill_leftovers():
    for p in _all_procs:
        if p.poll() is None:
            p.kill()


def _on_alarm(signum, frame):
    raise TestTimeout("test timed out")


def _print(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _file_uses_shared():
    """True if the test file calls shared(). Its shared resources are then stopped after the
    last test in one more TAP line, "cleanup: shared resources", which the plan counts."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    try:
        with open(path) as f:
            return re.search(r"\bshared\(", f.read()) is not None
    except (OSError, TypeError):
        return False


def _is_lsan_hang(problem):
    return problem == LSAN_EXIT_HANG


def run():
    """Run every registered test in order (or only those whose name contains argv[1]).

    The TAP plan ("1..N") comes first, so that tests/run_all.sh counts the tests that did not
    run when a file stops early (crash, time limit). A test that failed only because a
    Gatehouse hung in LeakSanitizer's exit-time scan is not ok, with a "# LSAN_EXIT_HANG" line
    after it (tests/run_all.sh retries such a file once)."""
    sel = sys.argv[1] if len(sys.argv) > 1 else None
    tests = [t for t in _TESTS if sel is None or sel in t[0]]
    with_cleanup = _file_uses_shared()
    _print("1..%d" % (len(tests) + (1 if with_cleanup else 0)))
    signal.signal(signal.SIGALRM, _on_alarm)
    failed = 0
    for n, (name, fn, timeout) in enumerate(tests, 1):
        del _diag_lines[:]
        ok = True
        skip = None
        err = None
        reasons = []  # one per failure cause: True if it is a LeakSanitizer exit hang
        t0 = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            try:
                fn()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except Skip as e:
            skip = str(e)
        except BaseException as e:  # noqa: B902 - a test must never take the suite down
            if isinstance(e, KeyboardInterrupt):
                raise
            ok = False
            err = e
            reasons.append(isinstance(e, AssertionError) and _is_lsan_hang(str(e)))
            if isinstance(e, TestTimeout):
                err_text = "timed out after %ss" % timeout
            else:
                err_text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        # Stop whatever the test left running, and collect its diagnostics.
        signal.setitimer(signal.ITIMER_REAL, STOP_TIMEOUT + 10)
        try:
            for res in list(reversed(_resources)):
                try:
                    problem = res.cleanup()
                    if problem:
                        ok = False
                        reasons.append(_is_lsan_hang(problem))
                        diag(problem)
                except Exception as e:
                    ok = False
                    reasons.append(False)
                    diag("cleanup failed: %r" % e)
        except TestTimeout:
            ok = False
            reasons.append(False)
            diag("cleanup timed out")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        dt = time.monotonic() - t0
        if skip is not None:
            _print("ok %d - %s # SKIP %s" % (n, name, skip))
        elif ok:
            _print("ok %d - %s" % (n, name))
        else:
            failed += 1
            _print("not ok %d - %s" % (n, name))
            if reasons and all(reasons):
                _print("# LSAN_EXIT_HANG: failed only because gatehouse hung at exit")
            if err is not None:
                for line in err_text.rstrip().splitlines():
                    _print("# " + line)
            for res in _resources + [_shared[k] for k in _shared_order]:
                for line in res.diagnostics():
                    _print("# " + line)
        for line in _diag_lines:
            _print("# " + line)
        _print("#   (%.2fs)" % dt)
        for res in _resources:
            if hasattr(res, "remove_files"):
                res.remove_files()
        del _resources[:]
    if with_cleanup or _shared_order:
        failed += _cleanup_shared(len(tests) + 1)
    sys.exit(1 if failed else 0)


def _cleanup_shared(n):
    """Stop the shared resources; print TAP line n for all of them. Returns 1 if it failed."""
    problems = []
    lines = []
    for key in reversed(_shared_order):
        res = _shared[key]
        signal.setitimer(signal.ITIMER_REAL, STOP_TIMEOUT + 10)
        try:
            problem = res.cleanup()
        except BaseException as e:
            problem = "cleanup failed: %r" % e
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if problem:
            problems.append(problem)
            lines.append("%s: %s" % (key, problem))
            lines.extend(res.diagnostics())
        if hasattr(res, "remove_files"):
            res.remove_files()
    names = ", ".join(reversed(_shared_order)) or "none started"
    if not problems:
        _print("ok %d - cleanup: shared resources (%s)" % (n, names))
        return 0
    _print("not ok %d - cleanup: shared resources (%s)" % (n, names))
    if all(_is_lsan_hang(p) for p in problems):
        _print("# LSAN_EXIT_HANG: failed only because gatehouse hung at exit")
    for line in lines:
        _print("# " + line)
    return 1


# ---------------------------------------------------------------------------------------------
# Assertions
# ---------------------------------------------------------------------------------------------


def check(cond, msg="check failed"):
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what="value"):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, _short(got), _short(want)))


def _short(v, n=300):
    r = v
    if isinstance(v, (bytes, str)) and len(v) > n:
        r = v[:n] + (b"..." if isinstance(v, bytes) else "...")
    return r


def wait_until(pred, timeout=5.0, what="condition", interval=0.02):
    """Poll pred() until it returns true; raise AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# Utilities
# ---------------------------------------------------------------------------------------------


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


_det_cache = {}


def det_bytes(n, seed=None):
    """n pseudo-random bytes, the same for the same (n, seed) in every process."""
    key = (n, seed)
    b = _det_cache.get(key)
    if b is None:
        b = random.Random(n if seed is None else seed).randbytes(n)
        if n <= (16 << 20):
            _det_cache[key] = b
    return b


def free_port():
    """An ephemeral port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_accepts(port, host="127.0.0.1", timeout=0.5):
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return False
    s.close()
    return True


def tmpdir():
    """A temporary directory removed when the test ends."""
    d = tempfile.mkdtemp(prefix="gh-e2e-")
    _register(_TmpDir(d))
    return d


class _TmpDir:
    def __init__(self, path):
        self.path = path

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)

    def diagnostics(self):
        return []


# ---------------------------------------------------------------------------------------------
# Gatehouse process
# ---------------------------------------------------------------------------------------------


class Gatehouse:
    """Start GH_BIN with a config on free 127.0.0.1 ports; stop it with SIGTERM at the end.

    `config` is the config text, or a function taking this object (use gh.port / gh.ports[i]
    and gh.dir) and returning the text. `nports` listen ports are allocated before the config
    is built. The process must exit 0 on SIGTERM with no sanitizer report.

        with Gatehouse(lambda g: "server { listen 127.0.0.1:%d; proxy 127.0.0.1:%d; }"
                       % (g.port, o.port)) as gh:
            ...
    Or pass `args` to run a command line instead of `-c FILE` (then give `wait_ports`).
    `wait_ports` (a list, or a function of this object returning one) are the ports that must
    accept before the start counts as done; default: all of gh.ports.
    """

    def __init__(self, config=None, nports=1, args=None, wait_ports=None, env=None,
                 start=True):
        self.dir = tempfile.mkdtemp(prefix="gh-e2e-")
        self.ports = [free_port() for _ in range(nports)]
        self.port = self.ports[0] if self.ports else None
        self.conf_path = os.path.join(self.dir, "gatehouse.conf")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.proc = None
        self.exit_status = None
        self._stopped = False
        self._env = env
        if config is not None:
            self.write_config(config)
        if args is None:
            args = ["-c", self.conf_path]
            if wait_ports is None:
                wait_ports = self.ports
        self.args = args
        if callable(wait_ports):
            wait_ports = wait_ports(self)
        self.wait_ports = wait_ports or []
        _register(self)
        if start:
            self.start()

    def write_config(self, config):
        text = config(self) if callable(config) else config
        # write-then-rename: a reload still reading the previous version must never
        # see a half-written file (as with any config-management tool)
        tmp = self.conf_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.conf_path)
        self.config_text = text

    def start(self):
        if not os.path.exists(GH_BIN):
            raise AssertionError("binary %s does not exist (run make asan)" % GH_BIN)
        env = dict(os.environ)
        if self._env:
            env.update(self._env)
        self._err = open(self.stderr_path, "wb")
        self._out = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen([GH_BIN] + list(self.args), stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err, env=env,
                                     cwd=self.dir)
        _all_procs.append(self.proc)
        try:
            self._wait_ready()
        except BaseException:
            if _building_shared:  # nobody else will stop it: report and stop now
                for line in self.diagnostics():
                    diag(line)
                self.problem()
            raise
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        for p in self.wait_ports:
            while not port_accepts(p):
                if self.proc.poll() is not None:
                    raise AssertionError("gatehouse exited with status %s during start-up"
                                         % self.proc.returncode)
                if time.monotonic() > deadline:
                    raise AssertionError("gatehouse did not accept on port %d within %ss"
                                         % (p, START_TIMEOUT))
                time.sleep(0.02)

    # -- inspection

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stdout(self):
        try:
            with open(self.stdout_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def sanitizer_report(self):
        err = self.stderr()
        for m in SANITIZER_MARKERS:
            if m in err:
                return m
        return None

    def wait_stderr(self, pattern, timeout=10, start=0):
        """Wait until stderr (from character offset `start`) matches regex `pattern`."""
        rx = re.compile(pattern)
        return wait_until(lambda: rx.search(self.stderr()[start:]), timeout,
                          "stderr to match %r" % pattern)

    # -- signals

    def signal(self, sig):
        check(self.alive(), "gatehouse is not running (exit status %s)"
              % (self.proc.poll() if self.proc else None))
        self.proc.send_signal(sig)

    def reload(self, config=None, wait_log=None, timeout=10):
        """Optionally rewrite the config, then send SIGHUP."""
        if config is not None:
            self.write_config(config)
        self.signal(signal.SIGHUP)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM and wait; return exit status (None if it had to be killed)."""
        if self._stopped:
            return self.exit_status
        self._stopped = True
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.exit_status = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self.exit_status = None
                # Gatehouse logs "stopped" as the last thing main() does. A process that
                # said so and still did not exit is stuck in the sanitizer's exit-time
                # leak scan (LeakSanitizer's ptrace-based stop-the-world has been seen to
                # hang here, rarely). Its leak check never ran, so it is a failure
                # (LSAN_EXIT_HANG), which tests/run_all.sh retries once.
                try:
                    with open(self.stderr_path, "rb") as f:
                        tail = f.read()[-4096:]
                    self.hung_after_stop = b"] stopped" in tail
                except OSError:
                    pass
        else:
            self.exit_status = self.proc.returncode
        self._err.close()
        self._out.close()
        return self.exit_status

    def problem(self):
        """Stop (if not yet), and describe what is wrong with how it ended, or None."""
        st = self.stop()
        msgs = []
        if st is None and getattr(self, "hung_after_stop", False):
            msgs.append(LSAN_EXIT_HANG)
        elif st is None:
            msgs.append("gatehouse did not exit within %ss of SIGTERM (killed)" % STOP_TIMEOUT)
        elif st != 0:
            msgs.append("gatehouse exit status %s (want 0)" % st)
        m = self.sanitizer_report()
        if m:
            msgs.append("sanitizer report in stderr (%s)" % m)
        return "; ".join(msgs) or None

    # -- context manager / cleanup

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        problem = self.problem()
        if problem and et is None:
            raise AssertionError(problem)
        if problem:
            diag(problem)
        return False

    def cleanup(self):
        problem = None
        if not self._stopped:
            problem = self.problem()
        return problem

    def remove_files(self):
        if not os.environ.get("GH_KEEP_FILES"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def diagnostics(self):
        lines = ["--- gatehouse %s (exit %s) stderr:" % (" ".join(self.args), self.exit_status)]
        err = self.stderr().splitlines()
        if len(err) > 80:
            lines.append("... (%d lines omitted)" % (len(err) - 80))
            err = err[-80:]
        lines.extend(err)
        out = self.stdout().strip()
        if out:
            lines.append("--- stdout:")
            lines.extend(out.splitlines()[-20:])
        lines.append("--- config %s:" % self.conf_path)
        lines.extend(getattr(self, "config_text", "").splitlines())
        return lines


def run_gh(args, timeout=20, env=None):
    """Run GH_BIN with args to completion; return CompletedProcess (text stdout/stderr)."""
    if not os.path.exists(GH_BIN):
        raise AssertionError("binary %s does not exist (run make asan)" % GH_BIN)
    e = dict(os.environ)
    if env:
        e.update(env)
    r = subprocess.run([GH_BIN] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout, env=e)
    r.stdout = r.stdout.decode("utf-8", "replace")
    r.stderr = r.stderr.decode("utf-8", "replace")
    for m in SANITIZER_MARKERS:
        if m in r.stderr:
            raise AssertionError("sanitizer report running %s:\n%s" % (args, r.stderr[-3000:]))
    return r


# Config helpers ------------------------------------------------------------------------------

BASE_TOP = """error_log stderr info;
drain_timeout 5s;
"""


def conf_proxy(origin, server_extra="", top_extra="", route=None):
    """A config function: one server on gh.port proxying to `origin` (an Origin or port)."""
    oport = origin if isinstance(origin, int) else origin.port

    def build(g):
        return "%s%s\nserver {\n    listen 127.0.0.1:%d;\n    proxy 127.0.0.1:%d;\n%s\n}\n" % (
            base_top(top_extra), top_extra, g.port, oport, server_extra)

    return build


def base_top(top_extra=""):
    """BASE_TOP without the directives that top_extra sets itself (no duplicates)."""
    given = set(re.findall(r"(?m)^\s*([a-z_]+)\s", top_extra))
    return "".join(line + "\n" for line in BASE_TOP.splitlines()
                   if line.split(" ", 1)[0] not in given)


# ---------------------------------------------------------------------------------------------
# Raw HTTP client
# ---------------------------------------------------------------------------------------------


class Response:
    def __init__(self):
        self.version = None
        self.status = None
        self.reason = None
        self.headers = []
        self.body = b""
        self.raw_head = b""
        self.interim = []  # 1xx responses received before this one
        self.chunked = False
        self.trailers = []

    def header(self, name, default=None):
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def has(self, name):
        return self.header(name) is not None

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %s %s %r body=%dB>" % (self.status, self.reason, self.headers,
                                                  len(self.body))


class Closed(Exception):
    """The peer closed before a complete message arrived."""


class Conn:
    """A raw TCP client connection with a read buffer (all reads bounded by `timeout`).
    `source` binds the client's end to that address first (e.g. "127.0.0.2": another client
    address on loopback)."""

    def __init__(self, port, host="127.0.0.1", timeout=10, source=None):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        _register(self)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self, timeout=None):
        if self.eof:
            raise Closed("connection closed by peer")
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            b = self.sock.recv(65536)
        except ConnectionResetError:
            b = b""
        if not b:
            self.eof = True
            raise Closed("connection closed by peer")
        self.buf += b

    def read_until(self, marker, limit=1 << 20):
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out = self.buf[:i + len(marker)]
                self.buf = self.buf[i + len(marker):]
                return out
            if len(self.buf) > limit:
                raise AssertionError("no %r within %d bytes" % (marker, limit))
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_all(self, timeout=None):
        """Read until the peer closes; return everything (including buffered bytes)."""
        while True:
            try:
                self._fill(timeout)
            except Closed:
                break
        out, self.buf = self.buf, b""
        return out

    def read_head(self):
        return self.read_until(b"\r\n\r\n", limit=256 << 10)

    def read_response(self, method="GET", skip_interim=True):
        """Read one response; 1xx responses are collected in .interim (except 101)."""
        interim = []
        while True:
            r = parse_head(self.read_head())
            if 100 <= r.status < 200 and r.status != 101 and skip_interim:
                interim.append(r)
                continue
            break
        r.interim = interim
        if method == "HEAD" or r.status in (204, 304) or 100 <= r.status < 200:
            return r
        te = r.header("transfer-encoding")
        cl = r.header("content-length")
        if te is not None:
            check(te.lower() == "chunked", "unexpected Transfer-Encoding %r" % te)
            r.chunked = True
            r.body, r.trailers = self.read_chunked()
        elif cl is not None:
            r.body = self.read_exact(int(cl))
        else:
            r.body = self.read_all()
        return r

    def read_chunked(self):
        body = []
        while True:
            line = self.read_until(b"\r\n")
            size = int(line[:-2].split(b";")[0].strip(), 16)
            if size == 0:
                break
            body.append(self.read_exact(size))
            eq(self.read_exact(2), b"\r\n", "chunk terminator")
        trailers = []
        while True:
            line = self.read_until(b"\r\n")
            if line == b"\r\n":
                break
            n, _, v = line[:-2].decode("latin-1").partition(":")
            trailers.append((n, v.strip()))
        return b"".join(body), trailers

    def request(self, method, target, headers=None, body=None, host="test.local",
                version="HTTP/1.1"):
        """Send one request (adds Host unless headers give one, CL for a body) and read it."""
        self.send(build_request(method, target, headers, body, host, version))
        return self.read_response(method)

    def wait_closed(self, timeout=5):
        """True if the peer closes (EOF or reset) within timeout, discarding any data."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self._fill(left)
            except Closed:
                return True
            except socket.timeout:
                return False
            except OSError:
                return True

    def is_open(self, wait=0.2):
        """True if nothing (no EOF) arrives within `wait` seconds."""
        if self.eof:
            return False
        try:
            self._fill(wait)
            return True  # data arrived: still open
        except Closed:
            return False
        except socket.timeout:
            return True
        except OSError:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def cleanup(self):
        self.close()

    def diagnostics(self):
        return []

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
        return False


def build_request(method, target, headers=None, body=None, host="test.local",
                  version="HTTP/1.1"):
    headers = list(headers or [])
    names = [n.lower() for n, _ in headers]
    if host is not None and "host" not in names:
        headers.insert(0, ("Host", host))
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        headers.append(("Content-Length", str(len(body))))
    head = "%s %s %s\r\n" % (method, target, version)
    head += "".join("%s: %s\r\n" % (n, v) for n, v in headers) + "\r\n"
    out = head.encode("latin-1")
    if body:
        out += body if isinstance(body, bytes) else body.encode()
    return out


def parse_head(raw):
    r = Response()
    r.raw_head = raw
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    m = re.match(r"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
    if not m:
        raise AssertionError("bad status line %r" % lines[0])
    r.version, r.status, r.reason = m.group(1), int(m.group(2)), m.group(3) or ""
    for line in lines[1:]:
        if not line:
            continue
        n, sep, v = line.partition(":")
        check(sep == ":" and n and n == n.strip(), "bad response header line %r" % line)
        r.headers.append((n, v.strip()))
    return r


def http_request(port, method, target, headers=None, body=None, host="test.local",
                 timeout=15, source=None):
    """One request on a fresh connection (from address `source`, if given), then close."""
    with Conn(port, timeout=timeout, source=source) as c:
        return c.request(method, target, headers, body, host)


def http_get(port, target, headers=None, host="test.local", timeout=15, source=None):
    return http_request(port, "GET", target, headers, None, host, timeout, source)


def raw_exchange(port, data, timeout=10):
    """Send raw bytes, read everything until the peer closes (or timeout); return
    (Response or None, all bytes, closed?)."""
    with Conn(port, timeout=timeout) as c:
        try:
            c.send(data)
        except OSError:
            pass
        closed = True
        allb = b""
        try:
            while True:
                c._fill(timeout)
        except Closed:
            pass
        except socket.timeout:
            closed = False
        except OSError:
            pass
        allb = c.buf
        resp = None
        if b"\r\n\r\n" in allb:
            try:
                resp = parse_head(allb[:allb.find(b"\r\n\r\n") + 4])
                resp.body = allb[allb.find(b"\r\n\r\n") + 4:]
            except AssertionError:
                resp = None
        return resp, allb, closed


# ---------------------------------------------------------------------------------------------
# curl
# ---------------------------------------------------------------------------------------------


def curl(args, timeout=30):
    """Run curl -sS with args; return CompletedProcess (bytes stdout, text stderr)."""
    cmd = ["curl", "-sS", "--max-time", str(timeout)] + list(args)
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout + 10)
    r.stderr = r.stderr.decode("utf-8", "replace")
    return r


def curl_status(args, timeout=30):
    """Run curl writing the body to /dev/null; return (http_code int, stderr)."""
    r = curl(["-o", "/dev/null", "-w", "%{http_code}"] + list(args), timeout)
    try:
        code = int(r.stdout.decode().strip() or "0")
    except ValueError:
        code = 0
    return code, r.stderr


# ---------------------------------------------------------------------------------------------
# Origin (imported lazily so origin.py can import this module)
# ---------------------------------------------------------------------------------------------


def Origin(*a, **kw):
    """An in-process test origin (see origin.py), stopped when the test ends."""
    import origin

    o = origin.Origin(*a, **kw)
    _register(o)
    return o.start()


def load_origin_module():
    import origin

    return origin
