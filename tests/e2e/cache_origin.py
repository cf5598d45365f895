"""cache_origin - a programmable HTTP/1.1 origin for the cache tests (28_cache.py).

    o = CacheOrigin().start()
    o.set("/a", headers=[("Cache-Control", "max-age=60")], body=b"hello")
    o.count("/a")            # requests the origin received for /a (any method)
    o.seen("/a")             # the headers of the last request for /a, as a dict (lower-case)

A path's answer is (status, headers, body) given with set(), or computed by a function
set_fn(path, fn) taking (method, headers dict) and returning (status, headers, body). `delay`
holds the answer that long first (for request collapsing); `drip` sends the body in ten pieces
that many seconds apart. Unknown paths answer 200 with a
small body and no caching fields. Every answer carries X-Origin-Count (the path's count).
Bodies go with Content-Length, or chunked with chunked=True. Keep-alive as HTTP/1.1 says.
"""

import http.server
import socketserver
import threading
import time


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _any(self):
        o = self.server.origin
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        path = self.path
        hdrs = {k.lower(): v for k, v in self.headers.items()}
        with o.lock:
            o.counts[path] = o.counts.get(path, 0) + 1
            o.last[path] = hdrs
            o.methods.setdefault(path, []).append(self.command)
            count = o.counts[path]
            spec = o.specs.get(path)
        drip = 0
        if spec is None:
            status, headers, body, chunked, delay = 200, [], b"origin body", False, 0
        elif callable(spec[0]):
            status, headers, body = spec[0](self.command, hdrs)
            chunked, delay, drip = spec[1], spec[2], spec[3]
        else:
            status, headers, body, chunked, delay, drip = spec
        if delay:
            time.sleep(delay)
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("X-Origin-Count", str(count))
        bodyless = status in (204, 304) or status < 200
        if not bodyless:
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if bodyless or self.command == "HEAD":
            return
        if chunked:
            for i in range(0, len(body), 1000):
                part = body[i:i + 1000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif drip:  # the body in ten pieces, drip seconds apart (a slow origin)
            step = max(1, len(body) // 10)
            for i in range(0, len(body), step):
                self.wfile.write(body[i:i + step])
                self.wfile.flush()
                time.sleep(drip)
        else:
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_PURGE = _any


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        pass  # a proxy closing a connection mid-body (a client went away) is no error here


class CacheOrigin:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.last = {}
        self.methods = {}
        self.specs = {}
        self.srv = _Server(("127.0.0.1", 0), _Handler)
        self.srv.origin = self
        self.port = self.srv.server_address[1]

    def start(self):
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        return self

    def set(self, path, status=200, headers=(), body=b"cached body", chunked=False, delay=0,
            drip=0):
        with self.lock:
            self.specs[path] = (status, list(headers), body, chunked, delay, drip)

    def set_fn(self, path, fn, chunked=False, delay=0, drip=0):
        with self.lock:
            self.specs[path] = (fn, chunked, delay, drip)

    def count(self, path):
        with self.lock:
            return self.counts.get(path, 0)

    def seen(self, path):
        with self.lock:
            return dict(self.last.get(path, {}))

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()

    # ghtest resource protocol
    def cleanup(self):
        self.stop()

    def diagnostics(self):
        return []
