"""origin - a small, strict, threaded HTTP/1.1 origin server for Gatehouse end-to-end tests.

In-process:   o = Origin(name="a").start(); ...; o.stop()      (o.port, o.requests, o.conn_count)
Subprocess:   python3 origin.py [--port N] [--name NAME]        prints "listening PORT", runs until
              SIGTERM; GET /__requests returns the request log as JSON.

It parses strictly (raw sockets, not http.server): a request it cannot parse unambiguously is
recorded in .errors, answered 400 and the connection closed. Every request it received is
recorded (method, target, version, headers in order, body length and sha256, raw head, connection
id), at the moment its head is parsed, so tests can assert what the origin saw - or that it saw
nothing. Keep-alive and pipelining are supported; `Expect: 100-continue` gets an interim
"100 Continue" before the body is read.

Endpoints (by path; anything unknown behaves like /echo):
  /echo                     JSON of what was received (method, target, headers, body_len, ...)
  /upload                   reads the body (CL or chunked); JSON {length, sha256, ...}
  /bytes/N                  N deterministic bytes (ghtest.det_bytes(N)), Content-Length framed
  /chunked/N                the same N bytes, chunked, in chunks of varying sizes, with a trailer
  /close-delimited/N        the same N bytes, no Content-Length, no chunking: ends at close
  /slow-first-byte/SECONDS  waits, then answers like /echo
  /stall                    never answers (until the peer closes or the origin stops)
  /drop                     reads the request and its body, then closes without answering
  /malformed/KIND           status-line | garbage | cl-te | two-cl | bad-chunk | chunk-overflow |
                            bad-header | short-body | short-large-body (CL 1000000, 300000 sent)
  /overlong/N               like /bytes/N, keep-alive, but 16 stray bytes follow the body on the
                            connection (an origin sending more than it framed)
  /status/CODE              answers that status (no body for 1xx/204/304)
  /head                     Content-Length 1234 body on GET; the same head without body on HEAD
  /resp-headers?N=V&...     adds each query pair as a response header (_status=CODE: the status)
  /websocket                RFC 6455 handshake, then echoes every message; answers close
  /keepalive-close          answers keep-alive, then closes the connection right away
  /keepalive-close?mode=next  answers keep-alive; the NEXT request on that connection is read
                            (head and body) and the connection closed without an answer
Every response carries X-Origin-Name, X-Origin-Conn (connection number from 1) and
X-Origin-Req (request number on that connection, from 1).

TLS:          Origin(tls=ctx) with a server-side ssl.SSLContext speaks TLS on every connection.
              Each connection's handshake is recorded in .tls_conns[conn id] (version, cipher,
              sni, alpn, session_reused, client certificate subject) and JSON answers carry it
              as "tls"; failed handshakes are recorded in .tls_errors.
"""

import base64
import hashlib
import json
import os
import re
import select
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ghtest import det_bytes  # noqa: E402

TOKEN_RX = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
REQLINE_RX = re.compile(rb"^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP/(\d)\.(\d)$")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEAD = 256 << 10


class BadRequest(Exception):
    pass


class PeerClosed(Exception):
    pass


class Request:
    def __init__(self):
        self.method = None
        self.target = None
        self.version = None
        self.headers = []  # [(name, value)] as received, in order
        self.raw_head = b""
        self.conn = 0
        self.seq = 0
        self.body_len = 0
        self.body_sha256 = hashlib.sha256(b"").hexdigest()
        self.body_complete = False
        self.chunked = False
        self.trailers = []
        self.time = time.monotonic()

    @property
    def path(self):
        return self.target.split("?", 1)[0]

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

    def to_dict(self):
        return {
            "method": self.method,
            "target": self.target,
            "version": self.version,
            "headers": [[n, v] for n, v in self.headers],
            "conn": self.conn,
            "seq": self.seq,
            "body_len": self.body_len,
            "body_sha256": self.body_sha256,
            "chunked": self.chunked,
            "trailers": [[n, v] for n, v in self.trailers],
        }

    def __repr__(self):
        return "<%s %s conn=%d body=%d>" % (self.method, self.target, self.conn, self.body_len)


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        try:
            b = self.sock.recv(65536)
        except (ConnectionResetError, OSError):
            b = b""
        if not b:
            raise PeerClosed()
        self.buf += b

    def read_until(self, marker, limit):
        start = 0
        while True:
            i = self.buf.find(marker, start)
            if i >= 0:
                out = self.buf[:i + len(marker)]
                self.buf = self.buf[i + len(marker):]
                return out
            if len(self.buf) > limit:
                raise BadRequest("no %r within %d bytes" % (marker, limit))
            start = max(0, len(self.buf) - len(marker))
            self.fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def parse_request_head(raw):
    """Strictly parse a request head (ending in CRLFCRLF) into a Request; raise BadRequest."""
    req = Request()
    req.raw_head = raw
    body = raw[:-4]
    lines = body.split(b"\r\n")
    for ln in lines:
        if b"\n" in ln or b"\r" in ln or b"\0" in ln:
            raise BadRequest("bare CR/LF or NUL in %r" % ln)
    m = REQLINE_RX.match(lines[0])
    if not m:
        raise BadRequest("bad request line %r" % lines[0])
    req.method = m.group(1).decode()
    req.target = m.group(2).decode("latin-1")
    req.version = "HTTP/%s.%s" % (m.group(3).decode(), m.group(4).decode())
    if req.version not in ("HTTP/1.0", "HTTP/1.1"):
        raise BadRequest("version %s" % req.version)
    for ln in lines[1:]:
        if ln[:1] in (b" ", b"\t"):
            raise BadRequest("obs-fold %r" % ln)
        name, sep, value = ln.partition(b":")
        if not sep or not TOKEN_RX.match(name):
            raise BadRequest("bad header line %r" % ln)
        v = value.strip(b" \t")
        for c in v:
            if (c < 0x20 and c != 0x09) or c == 0x7F:
                raise BadRequest("control char in value %r" % ln)
        req.headers.append((name.decode("latin-1"), v.decode("latin-1")))
    if req.version == "HTTP/1.1" and len(req.header_all("host")) != 1:
        raise BadRequest("need exactly one Host, got %r" % req.header_all("host"))
    te = req.header_all("transfer-encoding")
    cl = req.header_all("content-length")
    if te and cl:
        raise BadRequest("both Content-Length and Transfer-Encoding")
    if te:
        if len(te) != 1 or te[0].lower() != "chunked":
            raise BadRequest("unsupported Transfer-Encoding %r" % te)
        req.chunked = True
    if cl:
        if len(cl) != 1 or not re.match(r"^[0-9]{1,15}$", cl[0]):
            raise BadRequest("bad Content-Length %r" % cl)
    return req


def _conn_tokens(req):
    toks = set()
    for v in req.header_all("connection"):
        for t in v.split(","):
            if t.strip():
                toks.add(t.strip().lower())
    return toks


class Origin:
    """A threaded origin on 127.0.0.1, or on `host` (an IPv6 address such as "::1" too);
    port 0 = ephemeral."""

    def __init__(self, port=0, name="origin", host="127.0.0.1", tls=None):
        self.name = name
        self.tls = tls  # a server-side ssl.SSLContext, or None for plain TCP
        self.tls_conns = {}  # conn id -> what its TLS handshake negotiated
        self.tls_errors = []  # [(conn id, message)] handshakes that failed
        if tls is not None:
            tls.sni_callback = self._on_sni
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.lsock = socket.socket(family, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, port))
        self.lsock.listen(512)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self._requests = []
        self.errors = []  # [(conn id, message)] requests the origin could not parse
        self.conn_count = 0
        self.open_conns = {}  # id -> socket
        self.closed_by_origin = 0  # connections the origin closed on purpose
        self.events = []  # connections that ended with an I/O error (for diagnostics)
        self.stopping = threading.Event()
        self.threads = []
        self._acceptor = None

    # -- lifecycle

    def start(self):
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()
        return self

    def stop(self):
        if self.stopping.is_set():
            return
        self.stopping.set()
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()
        with self.lock:
            socks = list(self.open_conns.values())
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for t in list(self.threads) + ([self._acceptor] if self._acceptor else []):
            t.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()
        return False

    def cleanup(self):
        self.stop()
        return None

    def diagnostics(self):
        lines = ["--- origin %s :%d: %d connections, %d requests, %d parse errors"
                 % (self.name, self.port, self.conn_count, len(self._requests),
                    len(self.errors))]
        for r in self.requests[-15:]:
            lines.append("  %r" % r)
        for e in self.errors[-10:]:
            lines.append("  parse error on conn %d: %s" % e)
        for e in self.events[-10:]:
            lines.append("  " + e)
        for e in self.tls_errors[-10:]:
            lines.append("  TLS handshake failed on conn %d: %s" % e)
        return lines

    # -- inspection

    @property
    def requests(self):
        with self.lock:
            return list(self._requests)

    def requests_to(self, path_prefix):
        return [r for r in self.requests if r.target.startswith(path_prefix)]

    def reset(self):
        with self.lock:
            self._requests = []
            self.errors = []

    def wait_requests(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        while len(self._requests) < n:
            if time.monotonic() > deadline:
                raise AssertionError("origin %s: %d requests after %ss, want %d"
                                     % (self.name, len(self._requests), timeout, n))
            time.sleep(0.01)
        return self.requests

    # -- serving

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                self.conn_count += 1
                cid = self.conn_count
                self.open_conns[cid] = s
            t = threading.Thread(target=self._serve_conn, args=(s, cid), daemon=True)
            self.threads.append(t)
            t.start()

    def _on_sni(self, sslsock, name, ctx):
        sslsock._gh_sni = name
        return None

    def _tls_accept(self, s, cid):
        """The TLS handshake on an accepted socket: the wrapped socket, or None if it failed."""
        s.settimeout(15)
        try:
            t = self.tls.wrap_socket(s, server_side=True)
        except (ssl.SSLError, OSError) as e:
            with self.lock:
                self.tls_errors.append((cid, str(e)))
            try:
                s.close()
            except OSError:
                pass
            return None
        peer = t.getpeercert() or {}
        short = {"commonName": "CN", "organizationName": "O"}
        subject = ",".join("%s=%s" % (short.get(k, k), v)
                           for rdn in reversed(peer.get("subject", ())) for k, v in rdn)
        with self.lock:
            self.open_conns[cid] = t
            self.tls_conns[cid] = {
                "version": t.version(), "cipher": t.cipher()[0],
                "sni": getattr(t, "_gh_sni", None), "alpn": t.selected_alpn_protocol(),
                "session_reused": t.session_reused, "client_subject": subject,
            }
        return t

    def _serve_conn(self, s, cid):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            s = self._tls_accept(s, cid)
            if s is None:
                with self.lock:
                    self.open_conns.pop(cid, None)
                return
        s.settimeout(120)
        rd = _Reader(s)
        seq = 0
        drop_next = False
        try:
            while not self.stopping.is_set():
                try:
                    raw = rd.read_until(b"\r\n\r\n", MAX_HEAD)
                except PeerClosed:
                    return
                seq += 1
                try:
                    req = parse_request_head(raw)
                except BadRequest as e:
                    with self.lock:
                        self.errors.append((cid, str(e)))
                    self._send(s, "HEAD", 400, [], b"origin: bad request\n", cid, seq,
                               close=True)
                    return
                req.conn, req.seq = cid, seq
                with self.lock:
                    self._requests.append(req)
                keep = self._keepalive(req)
                if drop_next:
                    self._read_body(s, rd, req)
                    with self.lock:
                        self.closed_by_origin += 1
                    return
                keep, drop_next = self._dispatch(s, rd, req, keep, cid, seq)
                if not keep:
                    return
        except (PeerClosed, BadRequest, socket.timeout, OSError) as e:
            if isinstance(e, BadRequest):
                with self.lock:
                    self.errors.append((cid, "body: %s" % e))
            else:
                with self.lock:
                    self.events.append("conn %d ended: %r" % (cid, e))
            return
        finally:
            with self.lock:
                self.open_conns.pop(cid, None)
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _keepalive(self, req):
        toks = _conn_tokens(req)
        if req.version == "HTTP/1.0":
            return "keep-alive" in toks
        return "close" not in toks

    def _read_body(self, s, rd, req):
        if req.header("expect", "").lower() == "100-continue" and (
                req.chunked or int(req.header("content-length", "0")) > 0):
            s.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        h = hashlib.sha256()
        n = 0
        if req.chunked:
            while True:
                line = rd.read_until(b"\r\n", 4096)[:-2]
                m = re.match(rb"^([0-9A-Fa-f]{1,15})(;.*)?$", line)
                if not m:
                    raise BadRequest("bad chunk size line %r" % line)
                size = int(m.group(1), 16)
                if size == 0:
                    break
                while size:
                    part = rd.read_exact(min(size, 1 << 20))
                    h.update(part)
                    n += len(part)
                    size -= len(part)
                if rd.read_exact(2) != b"\r\n":
                    raise BadRequest("chunk data not followed by CRLF")
            while True:
                line = rd.read_until(b"\r\n", 8192)
                if line == b"\r\n":
                    break
                nm, _, v = line[:-2].partition(b":")
                req.trailers.append((nm.decode("latin-1"), v.strip().decode("latin-1")))
        else:
            size = int(req.header("content-length", "0"))
            while size:
                part = rd.read_exact(min(size, 1 << 20))
                h.update(part)
                n += len(part)
                size -= len(part)
        req.body_len = n
        req.body_sha256 = h.hexdigest()
        req.body_complete = True

    def _send(self, s, method, status, headers, body, cid, seq, close=False, reason=None,
              cl=True):
        reasons = {100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created",
                   204: "No Content", 301: "Moved Permanently", 302: "Found",
                   304: "Not Modified", 400: "Bad Request", 404: "Not Found",
                   500: "Internal Server Error", 503: "Service Unavailable"}
        head = "HTTP/1.1 %d %s\r\n" % (status, reason or reasons.get(status, "Status"))
        hs = list(headers) + [("X-Origin-Name", self.name), ("X-Origin-Conn", str(cid)),
                              ("X-Origin-Req", str(seq))]
        if cl and status not in (204, 304) and not (100 <= status < 200):
            hs.append(("Content-Length", str(len(body))))
        if close:
            hs.append(("Connection", "close"))
        head += "".join("%s: %s\r\n" % (n, v) for n, v in hs) + "\r\n"
        data = head.encode("latin-1")
        if method != "HEAD" and status not in (204, 304):
            data += body
        s.sendall(data)

    def _json(self, req, extra=None):
        d = req.to_dict()
        d["origin"] = self.name
        if self.tls is not None:
            d["tls"] = self.tls_conns.get(req.conn)
        if extra:
            d.update(extra)
        return json.dumps(d).encode()

    def _dispatch(self, s, rd, req, keep, cid, seq):
        """Serve one request; return (keep connection open?, drop the next request?)."""
        path = req.path
        query = req.target.split("?", 1)[1] if "?" in req.target else ""
        parts = path.strip("/").split("/")
        head = parts[0] if parts else ""
        arg = parts[1] if len(parts) > 1 else ""
        m = req.method

        if head == "websocket":
            return self._websocket(s, rd, req, cid, seq), False
        self._read_body(s, rd, req)
        jh = [("Content-Type", "application/json")]

        if head == "__requests":
            body = json.dumps({"conn_count": self.conn_count,
                               "requests": [r.to_dict() for r in self.requests],
                               "errors": self.errors}).encode()
            self._send(s, m, 200, jh, body, cid, seq, close=not keep)
        elif head == "bytes":
            self._send(s, m, 200, [("Content-Type", "application/octet-stream")],
                       det_bytes(int(arg)), cid, seq, close=not keep)
        elif head == "chunked":
            data = det_bytes(int(arg))
            hs = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" \
                 "Transfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n" \
                 "X-Origin-Name: %s\r\nX-Origin-Conn: %d\r\nX-Origin-Req: %d\r\n" % (
                     self.name, cid, seq)
            if not keep:
                hs += "Connection: close\r\n"
            s.sendall((hs + "\r\n").encode())
            if m != "HEAD":
                i = 0
                sizes = [1, 7, 100, 4096, 65536, 12345, 300000]
                k = 0
                out = []
                while i < len(data):
                    sz = min(sizes[k % len(sizes)], len(data) - i)
                    k += 1
                    out.append(b"%x\r\n" % sz + data[i:i + sz] + b"\r\n")
                    i += sz
                    if len(out) >= 16:
                        s.sendall(b"".join(out))
                        out = []
                out.append(b"0\r\nX-Checksum: " + hashlib.sha256(data).hexdigest().encode() +
                           b"\r\n\r\n")
                s.sendall(b"".join(out))
        elif head == "close-delimited":
            data = det_bytes(int(arg))
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                      b"X-Origin-Name: " + self.name.encode() + b"\r\n\r\n")
            if m != "HEAD":
                s.sendall(data)
            return False, False
        elif head == "slow-first-byte":
            if self.stopping.wait(float(arg)):
                return False, False
            self._send(s, m, 200, jh, self._json(req), cid, seq, close=not keep)
        elif head == "stall":
            while not self.stopping.is_set():
                r, _, _ = select.select([s], [], [], 0.1)
                if r:
                    try:
                        if not s.recv(65536):
                            return False, False
                    except OSError:
                        return False, False
            return False, False
        elif head == "drop":
            with self.lock:
                self.closed_by_origin += 1
            return False, False
        elif head == "malformed":
            self._malformed(s, arg)
            return False, False
        elif head == "overlong":
            body = det_bytes(int(arg))
            s.sendall(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Origin-Name: %s\r\n"
                       "X-Origin-Conn: %d\r\nX-Origin-Req: %d\r\n\r\n"
                       % (len(body), self.name, cid, seq)).encode() + body + b"STRAY-BYTES-HERE")
            return keep, False
        elif head == "status":
            code = int(arg)
            hs = [("Content-Type", "text/plain")]
            if code == 304:
                hs.append(("ETag", '"abc"'))
            body = b"" if code in (204, 304) else ("status %d\n" % code).encode()
            self._send(s, m, code, hs, body, cid, seq, close=not keep)
        elif head == "head":
            self._send(s, m, 200, [("Content-Type", "text/plain")], det_bytes(1234), cid, seq,
                       close=not keep)
        elif head == "resp-headers":
            hs = urllib.parse.parse_qsl(query, keep_blank_values=True)
            code = int(dict(hs).get("_status", "200"))
            hs = [(n, v) for n, v in hs if n != "_status"]
            self._send(s, m, code, jh + hs, self._json(req), cid, seq, close=not keep)
        elif head == "keepalive-close":
            self._send(s, m, 200, jh, self._json(req), cid, seq, close=not keep)
            if "mode=next" in query:
                return keep, True
            with self.lock:
                self.closed_by_origin += 1
            return False, False
        else:  # echo, upload and anything else
            self._send(s, m, 200, jh, self._json(req, {"length": req.body_len,
                                                       "sha256": req.body_sha256}),
                       cid, seq, close=not keep)
        return keep, False

    def _malformed(self, s, kind):
        bodies = {
            "status-line": b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok",
            "garbage": b"hello there, this is not HTTP\r\n\r\n",
            "cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n"
                     b"\r\n5\r\nhello\r\n0\r\n\r\n",
            "two-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            "bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n"
                         b"0\r\n\r\n",
            "chunk-overflow": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
            "bad-header": b"HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 2\r\n\r\nok",
            "short-body": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a bit",
            "short-large-body": b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" +
                                det_bytes(300000),
        }
        s.sendall(bodies[kind])
        time.sleep(0.05)

    def _websocket(self, s, rd, req, cid, seq):
        key = req.header("sec-websocket-key")
        if (req.header("upgrade", "").lower() != "websocket" or
                "upgrade" not in _conn_tokens(req) or not key or
                req.header("sec-websocket-version") != "13"):
            self._send(s, req.method, 400, [], b"not a websocket handshake\n", cid, seq,
                       close=True)
            return False
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        s.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                   "X-Origin-Name: %s\r\n\r\n" % (accept, self.name)).encode())
        while not self.stopping.is_set():
            op, payload, masked = ws_read_frame(rd)
            if not masked:
                s.sendall(ws_frame(8, b"\x03\xea", mask=False))  # 1002 protocol error
                return False
            if op == 8:
                s.sendall(ws_frame(8, payload[:2], mask=False))
                return False
            if op == 9:
                s.sendall(ws_frame(10, payload, mask=False))
            elif op in (1, 2):
                s.sendall(ws_frame(op, payload, mask=False))
        return False


# WebSocket framing (used by the origin and by tests) -------------------------------------------


def ws_frame(opcode, payload, mask=True, fin=True):
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = bytes([b0, mbit | n])
    elif n < 65536:
        hdr = bytes([b0, mbit | 126]) + n.to_bytes(2, "big")
    else:
        hdr = bytes([b0, mbit | 127]) + n.to_bytes(8, "big")
    if mask:
        key = os.urandom(4)
        payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
        return hdr + key + payload
    return hdr + payload


def ws_read_frame(rd):
    """Read one frame from an object with read_exact(); return (opcode, payload, masked)."""
    b0, b1 = rd.read_exact(2)
    op = b0 & 0x0F
    masked = bool(b1 & 0x80)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(rd.read_exact(2), "big")
    elif n == 127:
        n = int.from_bytes(rd.read_exact(8), "big")
    key = rd.read_exact(4) if masked else None
    payload = rd.read_exact(n)
    if masked:
        payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
    return op, payload, masked


def ws_accept(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--name", default="origin")
    a = ap.parse_args()
    o = Origin(port=a.port, name=a.name).start()
    print("listening %d" % o.port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *x: done.set())
    signal.signal(signal.SIGINT, lambda *x: done.set())
    while not done.wait(0.5):
        pass
    o.stop()


if __name__ == "__main__":
    main()
