#!/usr/bin/env python3
"""WebSocket through the proxy between independent implementations: Python's `websockets`
package (Debian python3-websockets) as the origin (an echo server) and as the client, so a
framing mistake cannot hide behind the same code on both sides (07_websocket.py frames with
origin.py's code at both ends). Also this file's raw frames against the `websockets` server.

`websockets` runs in a subprocess (ws_peer.py) under an interpreter that has it: the system
/usr/bin/python3, where scripts/deps.sh installs the Debian package, or the one running this
file."""

import base64
import json
import threading

from ghtest import *

import ghtest as _gh

origin_mod = load_origin_module()
ws_frame, ws_read_frame, ws_accept = (origin_mod.ws_frame, origin_mod.ws_read_frame,
                                      origin_mod.ws_accept)

PEER = os.path.join(HERE, "ws_peer.py")
_python = []


def ws_python():
    """An interpreter that can import websockets (the Debian package's first)."""
    if not _python:
        for exe in ("/usr/bin/python3", sys.executable):
            if exe and os.path.exists(exe) and subprocess.run(
                    [exe, "-c", "import websockets"], stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
                _python.append(exe)
                break
        else:
            raise AssertionError("no python3 with the websockets package: install "
                                 "python3-websockets (scripts/deps.sh test)")
    return _python[0]


class WsServer:
    """ws_peer.py server: a `websockets` echo origin on 127.0.0.1; .closed lists the JSON
    reports of the connections it saw end."""

    def __init__(self):
        self.proc = subprocess.Popen([ws_python(), PEER, "server"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _gh._all_procs.append(self.proc)
        _gh._register(self)
        self.closed = []
        self.err = b""
        line = self._readline(15)
        m = re.match(rb"listening (\d+)", line or b"")
        check(m, "websockets server did not start: %r %r" % (line, self.proc.stderr.read()
                                                               if self.proc.poll() is not None
                                                               else b""))
        self.port = int(m.group(1))
        threading.Thread(target=self._read_reports, daemon=True).start()

    def _readline(self, timeout):
        box = []
        th = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        th.start()
        th.join(timeout)
        return box[0] if box else None

    def _read_reports(self):
        for line in self.proc.stdout:
            try:
                self.closed.append(json.loads(line))
            except ValueError:
                pass

    def report(self, path, timeout=10):
        return wait_until(lambda: next((r for r in self.closed if r.get("path") == path), None),
                          timeout, "the websockets server's report on %s" % path)

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        try:
            self.err = self.proc.stderr.read()
        except (OSError, ValueError):
            pass
        return None

    def diagnostics(self):
        return ["--- websockets server: reports %r" % self.closed[-5:],
                "    stderr: %r" % self.err[-1500:]]


def ws_client(url, compression):
    r = subprocess.run([ws_python(), PEER, "client", url, "--compression", compression],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    out = r.stdout.decode("utf-8", "replace").strip().splitlines()
    check(out, "websockets client printed nothing (exit %d): %s"
          % (r.returncode, r.stderr.decode("utf-8", "replace")[-2000:]))
    res = json.loads(out[-1])
    diag("client: %d messages; extensions %r; last check %r"
         % (res["messages"], res["extensions"], (res["done"] or [None])[-1]))
    check(res["ok"], "websockets client failed after %r: %s" % (res["done"][-3:], res["error"]))
    eq(r.returncode, 0, "client exit status")
    return res


for _comp in ("deflate", "none"):
    @test("websockets client -> proxy -> websockets server (compression %s): text and binary "
          "messages up to 3 MiB, fragments, ping, close handshake" % _comp, timeout=120)
    def t(comp=_comp):
        srv = WsServer()
        gh = Gatehouse(conf_proxy(srv.port))
        path = "/interop-%s" % comp
        res = ws_client("ws://127.0.0.1:%d%s" % (gh.port, path), comp)
        if comp == "deflate":
            eq(res["extensions"], ["permessage-deflate"], "extension negotiated through the proxy")
        else:
            eq(res["extensions"], [], "extensions")
        eq(res["close_code"], 1000, "close code the server sent back")
        rep = srv.report(path)
        eq((rep["messages"], rep["close_code"], rep["close_reason"]),
           (res["messages"], 1000, "interop done"),
           "messages the server echoed, and the close frame it received")


def handshake(port, path):
    key = base64.b64encode(os.urandom(16)).decode()
    c = Conn(port, timeout=20)
    c.send(build_request("GET", path, headers=[
        ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13")]))
    r = c.read_response()
    eq(r.status, 101, "handshake status")
    eq(r.header("sec-websocket-accept"), ws_accept(key), "Sec-WebSocket-Accept")
    return c


@test("raw frames -> proxy -> websockets server: 7-, 16- and 64-bit lengths, several frames per "
      "packet, close handshake", timeout=60)
def t():
    srv = WsServer()
    gh = Gatehouse(conf_proxy(srv.port))
    c = handshake(gh.port, "/raw")
    msgs = [(1, b""), (1, "héllo wörld".encode()), (2, det_bytes(125)), (2, det_bytes(126)),
            (2, det_bytes(65535)), (2, det_bytes(65536)), (1, b"t" * 70000),
            (2, det_bytes(2 << 20, seed=8))]
    for op, data in msgs:
        c.send(ws_frame(op, data))
        rop, rdata, masked = ws_read_frame(c)
        eq((rop, len(rdata), sha256(rdata)), (op, len(data), sha256(data)),
           "echo of a %d-byte frame" % len(data))
        check(not masked, "frames from the server are not masked")
    c.send(b"".join(ws_frame(2, b"m%d" % i) for i in range(30)))
    for i in range(30):
        eq(ws_read_frame(c)[:2], (2, b"m%d" % i), "batched frame %d" % i)
    c.send(ws_frame(8, b"\x03\xe8raw done"))
    op, data, _ = ws_read_frame(c)
    eq((op, data[:2]), (8, b"\x03\xe8"), "close frame from the server")
    # the server half-closes first (RFC 6455 7.1.1) and waits for the client's side to close
    check(c.wait_closed(10), "the server's end of the connection closed after the close handshake")
    c.close()
    rep = srv.report("/raw")
    eq((rep["messages"], rep["close_code"], rep["close_reason"]),
       (len(msgs) + 30, 1000, "raw done"), "what the server saw")


run()
