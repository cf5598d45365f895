"""A small DNS responder for the tests (UDP, loopback): answers A and AAAA from a dict
{name: [addresses]}, NXDOMAIN for names it does not know, and counts the queries per name.

    d = DnsServer({"site.test": ["127.0.0.1"], "both.test": ["::1", "127.0.0.1"]}).start()
    ... resolver 127.0.0.1:%d; ... % d.port
    d.stop()
"""

import ipaddress
import socket
import struct
import threading


class DnsServer:
    def __init__(self, names, ttl=30):
        self.names = {k.lower().rstrip("."): v for k, v in names.items()}
        self.ttl = ttl
        self.queries = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop = True
        try:
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", self.port))
        except OSError:
            pass
        self._thread.join(2)
        self.sock.close()

    # the ghtest resource protocol (ghtest._register): stopped at the end of the test
    def cleanup(self):
        self.stop()
        return None

    def diagnostics(self):
        return ["dns responder on port %d: queries %r" % (self.port, self.queries)]

    def _serve(self):
        while not self._stop:
            try:
                q, peer = self.sock.recvfrom(512)
            except OSError:
                return
            if self._stop:
                return
            r = self._answer(q)
            if r:
                self.sock.sendto(r, peer)

    def _answer(self, q):
        if len(q) < 17:
            return None
        i, labels = 12, []
        while i < len(q) and q[i] != 0:
            n = q[i]
            labels.append(q[i + 1:i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
        qend = i + 5
        if qend > len(q):
            return None
        qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
        name = ".".join(labels).lower()
        self.queries[name] = self.queries.get(name, 0) + 1
        addrs = self.names.get(name)
        rcode = 3 if addrs is None else 0
        answers = b""
        count = 0
        for a in addrs or []:
            ip = ipaddress.ip_address(a)
            if (qtype == 1 and ip.version == 4) or (qtype == 28 and ip.version == 6):
                answers += struct.pack("!HHHIH", 0xC00C, qtype, 1, self.ttl, len(ip.packed))
                answers += ip.packed
                count += 1
        head = q[:2] + struct.pack("!BBHHHH", 0x81, 0x80 | rcode, 1, count, 0, 0)
        return head + q[12:qend] + answers
