#!/usr/bin/env python3
"""ws_peer - a WebSocket echo server and a checking client built on the `websockets` package
(Debian python3-websockets), an implementation independent of the framing code in origin.py.
Used by 15_websocket_interop.py, run as a subprocess with an interpreter that has the package.

  ws_peer.py server             prints "listening PORT"; echoes every message with its type; for
                                each connection that ends prints a JSON line {"event": "closed",
                                "path", "messages", "close_code", "close_reason"}; exits on SIGTERM
  ws_peer.py client URL [--compression deflate|none]
                                runs the checks below through URL and prints one JSON line
                                {"ok": bool, "error", "done": [...], "extensions": [...],
                                "close_code", "messages" (sent)}; exits 0 if ok

Client checks: text and binary messages of many sizes (around the 7-bit, 16-bit and 64-bit
length forms, past 64 KiB, several MiB) echoed intact and with their type; a fragmented text and
a fragmented binary message; 20 messages sent before any echo is read come back in order; a ping
gets its pong; the close handshake completes with the code the client sent."""

import asyncio
import hashlib
import json
import random
import signal
import sys

import websockets

SIZES = (0, 1, 125, 126, 127, 1000, 65535, 65536, 65537, 70000, 300 * 1000, 1 << 20)


def payload(n, seed, text):
    rnd = random.Random(seed * 7919 + n)
    if text:
        # mixed 1-, 2-, 3- and 4-byte UTF-8 characters, n characters
        alphabet = "abcxyz 019-" + "éüñøß" + "ж中文字" + "\U0001F600\U0001F680"
        return "".join(rnd.choice(alphabet) for _ in range(n))
    return rnd.randbytes(n)


def digest(m):
    return hashlib.sha256(m.encode() if isinstance(m, str) else m).hexdigest()[:16]


def request_path(ws, args):
    if args and isinstance(args[0], str):
        return args[0]
    path = getattr(ws, "path", None)
    if path is None and getattr(ws, "request", None) is not None:
        path = ws.request.path
    return path


async def serve():
    async def echo(ws, *args):
        n = 0
        try:
            async for m in ws:
                n += 1
                await ws.send(m)
        except websockets.ConnectionClosed:
            pass
        print(json.dumps({"event": "closed", "path": request_path(ws, args), "messages": n,
                          "close_code": ws.close_code, "close_reason": ws.close_reason}),
              flush=True)

    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=None, ping_interval=None) as srv:
        port = list(srv.sockets)[0].getsockname()[1]
        print("listening %d" % port, flush=True)
        await stop


async def client(url, compression):
    done = []
    res = {"ok": False, "error": None, "done": done, "extensions": [], "close_code": None,
           "messages": 0}
    kw = {"max_size": None, "ping_interval": None, "open_timeout": 20, "close_timeout": 20}
    if compression == "none":
        kw["compression"] = None
    try:
        async with websockets.connect(url, **kw) as ws:
            res["extensions"] = [getattr(e, "name", str(e)) for e in
                                 getattr(ws, "extensions", None) or
                                 getattr(getattr(ws, "protocol", None), "extensions", [])]

            async def roundtrip(m, what):
                await ws.send(m)
                res["messages"] += 1
                got = await asyncio.wait_for(ws.recv(), 30)
                if type(got) is not type(m) or got != m:
                    raise AssertionError("%s: sent %s %d (%s), got %s %d (%s)" % (
                        what, type(m).__name__, len(m), digest(m), type(got).__name__,
                        len(got), digest(got)))
                done.append(what)

            for text in (True, False):
                kind = "text" if text else "binary"
                for n in SIZES:
                    await roundtrip(payload(n, 1, text), "%s %d" % (kind, n))
            await roundtrip(payload(3 << 20, 2, False), "binary %d" % (3 << 20))
            # fragmented messages: continuation frames
            parts = [payload(n, 3, True) for n in (10, 70000, 0, 5)]
            await ws.send(iter(parts))
            res["messages"] += 1
            got = await asyncio.wait_for(ws.recv(), 30)
            if got != "".join(parts):
                raise AssertionError("fragmented text: got %d chars" % len(got))
            done.append("fragmented text")
            parts = [payload(n, 4, False) for n in (1, 200000, 126)]
            await ws.send(iter(parts))
            res["messages"] += 1
            got = await asyncio.wait_for(ws.recv(), 30)
            if got != b"".join(parts):
                raise AssertionError("fragmented binary: got %d bytes" % len(got))
            done.append("fragmented binary")
            # many in flight
            msgs = [payload(100 + i * 997, 5, i % 2 == 0) for i in range(20)]
            for m in msgs:
                await ws.send(m)
                res["messages"] += 1
            for i, m in enumerate(msgs):
                got = await asyncio.wait_for(ws.recv(), 30)
                if got != m:
                    raise AssertionError("in-flight message %d out of order or altered" % i)
            done.append("20 in flight, in order")
            pong = await ws.ping(b"interop-ping")
            await asyncio.wait_for(pong, 30)
            done.append("ping/pong")
            await ws.close(code=1000, reason="interop done")
            res["close_code"] = ws.close_code
            if ws.close_code != 1000:
                raise AssertionError("close handshake: server answered code %r" % ws.close_code)
            done.append("close handshake")
        res["ok"] = True
    except Exception as e:  # noqa: B902 - reported to the test
        res["error"] = "%s: %s" % (type(e).__name__, e)
    return res


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "server":
        asyncio.run(serve())
        return 0
    if len(sys.argv) >= 3 and sys.argv[1] == "client":
        compression = "deflate"
        if "--compression" in sys.argv:
            compression = sys.argv[sys.argv.index("--compression") + 1]
        res = asyncio.run(client(sys.argv[2], compression))
        print(json.dumps(res), flush=True)
        return 0 if res["ok"] else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
