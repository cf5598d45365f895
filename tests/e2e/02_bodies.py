#!/usr/bin/env python3
"""Message bodies: large both ways, chunked both ways, HEAD, 204/304, close-delimited."""

import os

from ghtest import *

BIG = 6 * 1000 * 1000 + 7


def proxy():
    o = shared("origin", lambda: Origin(name="o"))
    gh = shared("gatehouse", lambda: Gatehouse(conf_proxy(o)))
    o.reset()
    return o, gh


def curl_json(r):
    eq(r.returncode, 0, "curl exit (%s)" % r.stderr)
    try:
        return json.loads(r.stdout)
    except ValueError:
        raise AssertionError("origin JSON expected, got %r" % r.stdout[:300]) from None


def big_file(n=BIG):
    d = tmpdir()
    path = os.path.join(d, "up.bin")
    with open(path, "wb") as f:
        f.write(det_bytes(n, seed=12345))
    return path


@test("upload of several MB with curl --data-binary: origin gets it intact")
def t():
    o, gh = proxy()
    path = big_file()
    d = curl_json(curl(["--data-binary", "@" + path, "http://127.0.0.1:%d/upload" % gh.port]))
    eq(d["length"], BIG, "length at origin")
    eq(d["sha256"], sha256_file(path), "sha256 at origin")


@test("download of several MB with curl: body intact")
def t():
    o, gh = proxy()
    r = curl(["http://127.0.0.1:%d/bytes/%d" % (gh.port, BIG)])
    eq(r.returncode, 0, "curl exit (%s)" % r.stderr)
    eq(len(r.stdout), BIG, "length")
    eq(sha256(r.stdout), sha256(det_bytes(BIG)), "sha256")


@test("upload and download of several MB on one raw keep-alive connection")
def t():
    o, gh = proxy()
    body = det_bytes(3 * 1000 * 1000, seed=7)
    with Conn(gh.port, timeout=30) as c:
        r = c.request("POST", "/upload", body=body)
        eq(r.status, 200, "upload status")
        eq(r.json()["sha256"], sha256(body), "upload sha256")
        r = c.request("GET", "/bytes/%d" % len(body))
        eq(r.status, 200, "download status")
        eq(sha256(r.body), sha256(det_bytes(len(body))), "download sha256")


@test("slow reader of a large response gets it intact (backpressure)")
def t():
    o, gh = proxy()
    n = 4 * 1000 * 1000
    with Conn(gh.port, timeout=20) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        c.send(build_request("GET", "/bytes/%d" % n))
        time.sleep(0.5)  # let the proxy fill every buffer and hit EAGAIN
        head = parse_head(c.read_head())
        eq(head.status, 200, "status")
        got = [c.buf]
        c.buf = b""
        total = len(got[0])
        while total < n:
            c.sock.settimeout(10)
            b = c.sock.recv(16384)
            check(b, "connection closed after %d of %d bytes" % (total, n))
            got.append(b)
            total += len(b)
            if len(got) % 16 == 0:
                time.sleep(0.01)
        eq(sha256(b"".join(got)), sha256(det_bytes(n)), "sha256")


@test("slow writer of a large request body gets it through (backpressure)")
def t():
    o, gh = proxy()
    body = det_bytes(2 * 1000 * 1000, seed=5)
    with Conn(gh.port, timeout=20) as c:
        c.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 100000):
            c.send(body[i:i + 100000])
            time.sleep(0.02)
        r = c.read_response()
        eq(r.status, 200, "status")
        eq(r.json()["sha256"], sha256(body), "sha256 at origin")


@test("chunked request body from a raw socket reaches the origin intact")
def t():
    o, gh = proxy()
    data = det_bytes(300000, seed=3)
    sizes = [1, 10, 4096, 65536, 100000]
    chunks = []
    i = k = 0
    while i < len(data):
        n = min(sizes[k % len(sizes)], len(data) - i)
        chunks.append(b"%x\r\n" % n + data[i:i + n] + b"\r\n")
        i += n
        k += 1
    body = b"".join(chunks) + b"0\r\n\r\n"
    with Conn(gh.port) as c:
        r = c.request("POST", "/upload", headers=[("Transfer-Encoding", "chunked")], body=body)
        eq(r.status, 200, "status")
        d = r.json()
        eq(d["length"], len(data), "length at origin")
        eq(d["sha256"], sha256(data), "sha256 at origin")
        # the connection stays usable after a chunked body
        r = c.request("GET", "/echo")
        eq(r.status, 200, "next request status")


@test("chunked request body with chunk extensions and trailer is accepted")
def t():
    o, gh = proxy()
    body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    with Conn(gh.port) as c:
        r = c.request("POST", "/upload", headers=[("Transfer-Encoding", "chunked")], body=body)
        eq(r.status, 200, "status")
        eq(r.json()["sha256"], sha256(b"hello world"), "sha256 at origin")


@test("curl -H 'Transfer-Encoding: chunked' upload of several MB")
def t():
    o, gh = proxy()
    path = big_file()
    d = curl_json(curl(["-H", "Transfer-Encoding: chunked", "--data-binary", "@" + path,
                        "http://127.0.0.1:%d/upload" % gh.port]))
    eq(d["length"], BIG, "length at origin")
    eq(d["sha256"], sha256_file(path), "sha256 at origin")


@test("origin chunked response passes intact (raw socket, keep-alive after)")
def t():
    o, gh = proxy()
    with Conn(gh.port, timeout=30) as c:
        r = c.request("GET", "/chunked/2000000")
        eq(r.status, 200, "status")
        eq(len(r.body), 2000000, "length")
        eq(sha256(r.body), sha256(det_bytes(2000000)), "sha256")
        r = c.request("GET", "/echo")
        eq(r.status, 200, "next request on the same connection")


@test("origin chunked response passes intact (curl)")
def t():
    o, gh = proxy()
    r = curl(["http://127.0.0.1:%d/chunked/%d" % (gh.port, BIG)])
    eq(r.returncode, 0, "curl exit (%s)" % r.stderr)
    eq(sha256(r.stdout), sha256(det_bytes(BIG)), "sha256")


@test("HEAD: no body, Content-Length preserved, connection reusable")
def t():
    o, gh = proxy()
    with Conn(gh.port) as c:
        r = c.request("HEAD", "/head")
        eq(r.status, 200, "status")
        eq(r.header("content-length"), "1234", "Content-Length")
        r = c.request("HEAD", "/bytes/5000")
        eq(r.header("content-length"), "5000", "Content-Length")
        r = c.request("GET", "/bytes/10")
        eq(r.status, 200, "GET after HEAD")
        eq(r.body, det_bytes(10), "GET after HEAD body (no leftover bytes from HEAD)")
    eq([x.method for x in o.requests], ["HEAD", "HEAD", "GET"], "methods seen by origin")


@test("HEAD of a chunked resource: no body, connection reusable")
def t():
    o, gh = proxy()
    with Conn(gh.port) as c:
        r = c.request("HEAD", "/chunked/5000")
        eq(r.status, 200, "status")
        r = c.request("GET", "/bytes/10")
        eq(r.body, det_bytes(10), "GET after HEAD body")


@test("204 and 304 carry no body, connection reusable")
def t():
    o, gh = proxy()
    with Conn(gh.port) as c:
        r = c.request("GET", "/status/204")
        eq(r.status, 204, "status")
        r = c.request("GET", "/status/304", headers=[("If-None-Match", '"abc"')])
        eq(r.status, 304, "status")
        eq(r.header("etag"), '"abc"', "ETag")
        check(r.header("transfer-encoding") is None, "304 must not be chunked")
        r = c.request("GET", "/bytes/10")
        eq(r.body, det_bytes(10), "body after 204/304 (no stray bytes)")


@test("close-delimited origin response passes fully")
def t():
    o, gh = proxy()
    n = 2 * 1000 * 1000 + 3
    with Conn(gh.port, timeout=30) as c:
        r = c.request("GET", "/close-delimited/%d" % n)
        eq(r.status, 200, "status")
        eq(len(r.body), n, "length")
        eq(sha256(r.body), sha256(det_bytes(n)), "sha256")
    r = curl(["http://127.0.0.1:%d/close-delimited/%d" % (gh.port, n)])
    eq(r.returncode, 0, "curl exit (%s)" % r.stderr)
    eq(sha256(r.stdout), sha256(det_bytes(n)), "curl sha256")


@test("empty POST with Content-Length: 0 and POST without body")
def t():
    o, gh = proxy()
    with Conn(gh.port) as c:
        r = c.request("POST", "/upload", body=b"")
        eq(r.status, 200, "status")
        eq(r.json()["length"], 0, "length")
        r = c.request("POST", "/upload", headers=[("Content-Length", "0")])
        eq(r.status, 200, "status")


@test("client_max_body_size: larger body gets 413 and origin sees nothing")
def t():
    o = Origin()
    gh = Gatehouse(conf_proxy(o, server_extra="    client_max_body_size 1k;"))
    resp, raw, closed = raw_exchange(gh.port, build_request("POST", "/upload", body=b"x" * 5000))
    check(resp is not None, "no response: %r" % raw[:200])
    eq(resp.status, 413, "status")
    eq(o.requests, [], "origin requests")
    r = http_request(gh.port, "POST", "/upload", body=b"x" * 1000)
    eq(r.status, 200, "a body under the limit passes")


def vm_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


@test("200 MB each way on one connection: proxy memory stays bounded (backpressure)", timeout=240)
def t():
    o, gh = proxy()
    n = 200 << 20  # random.randbytes tops out below 256 MiB
    pid = gh.proc.pid
    eq(http_get(gh.port, "/bytes/10").status, 200, "warm-up")
    base = vm_kib(pid, "VmRSS")
    # download: read in small pieces, hash as we go
    s = socket.create_connection(("127.0.0.1", gh.port), timeout=60)
    s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: t\r\n\r\n" % n)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, body = buf.split(b"\r\n\r\n", 1)
    check(head.startswith(b"HTTP/1.1 200"), "status line %r" % head[:40])
    h = hashlib.sha256(body)
    got = len(body)
    while got < n:
        b = s.recv(1 << 20)
        if not b:
            break
        h.update(b)
        got += len(b)
    eq(got, n, "download length")
    eq(h.hexdigest(), sha256(det_bytes(n)), "download sha256")
    # upload on the same connection, sent in 1 MiB pieces
    data = det_bytes(n, seed=99)
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % n)
    mv = memoryview(data)
    for off in range(0, n, 1 << 20):
        s.sendall(mv[off:off + (1 << 20)])
    resp = b""
    while b"}" not in resp:
        b = s.recv(65536)
        if not b:
            break
        resp += b
    check(b" 200 " in resp.split(b"\r\n", 1)[0], "upload status %r" % resp[:40])
    body = resp.split(b"\r\n\r\n", 1)[1]
    d = json.loads(body[:body.rindex(b"}") + 1])
    eq((d["length"], d["sha256"]), (n, sha256(data)), "upload at origin")
    s.close()
    peak = vm_kib(pid, "VmHWM")
    diag("RSS before %d KiB, peak %d KiB" % (base, peak))
    # 400 MB went through; a proxy that buffered would grow by hundreds of MB
    check(peak - base < 64 * 1024, "peak RSS grew by %d KiB" % (peak - base))


run()
