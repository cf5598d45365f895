"""fwdutil - what the forward-proxy e2e files share (25_forward.py, 29_forward_clients.py): a DNS
responder of the test's own, stopped when the test ends, and a `forward_proxy { }` config around
it. A file that uses these also calls shared("pki", Pki) itself (ghtest looks for the literal
call in the test file to plan its cleanup line)."""

import dnsd
from ghtest import _register


def dns(names):
    """A DnsServer (dnsd.py) answering `names` ({name: [addresses]}), stopped when the test
    ends."""
    d = dnsd.DnsServer(names).start()
    _register(d)
    return d


def fwd_conf(d, extra="", top="", listen=""):
    """A config function: one forward_proxy on gh.port (with `listen` options such as "tls" or
    "socks5") resolving through the responder `d`, with `extra` inside the block and `top` before
    it; access log and info messages on stderr."""
    return lambda g: "threads 1;\nerror_log stderr info;\naccess_log stderr;\n" + top + """
forward_proxy {
    listen 127.0.0.1:%d%s;
    resolver 127.0.0.1:%d;
    %s
}
""" % (g.port, " " + listen if listen else "", d.port, extra)
