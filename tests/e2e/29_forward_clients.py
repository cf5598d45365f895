#!/usr/bin/env python3
"""The forward proxy with real clients (issue 9): wget with http_proxy / https_proxy, and headless
Chromium with --proxy-server through an HTTP proxy, an HTTPS proxy (TLS to the proxy itself) and
SOCKS5. Each fetches a plain page and a page over CONNECT (or SOCKS) from a TLS origin whose
certificate the client verifies against the test CA: wget with --ca-certificate, Chromium through
an NSS database of its own in a throw-away HOME. Names like site.test exist only in the test's DNS
responder (dnsd.py), which the proxy's `resolver` points at: Chromium is also told that every name
it would resolve itself does not exist, so a page that loads proves the proxy resolved it.

Chromium tests are reported as skipped only when chromium is missing or cannot start at all."""

import json
import os
import re
import shutil
import subprocess

from ghtest import *
from tlsutil import Pki, TLSOrigin
from fwdutil import dns, fwd_conf

PROXY_VARS = ("http_proxy", "https_proxy", "no_proxy", "all_proxy", "ftp_proxy")


def pki():
    """The certificates (tlsutil.Pki), made once for the file."""
    return shared("pki", Pki)


def origins():
    """A plain origin (site.test) and a TLS one (origin.test, certificate from the test CA)."""
    p = pki()
    return Origin(name="plain"), TLSOrigin(p.cert("origin"), p.key("origin"))


def client_env(home, proxy=None):
    """The environment without any proxy variable of the caller's, HOME set to `home`, and
    http_proxy / https_proxy set to `proxy` if given."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARS}
    env["HOME"] = home
    if proxy:
        env["http_proxy"] = env["https_proxy"] = proxy
    return env


def log_has(gh, text, what):
    wait_until(lambda: text in gh.stderr(), 5, "%s in the access log (%r)" % (what, text))


def echo_of(o, target):
    """The request the origin `o` got for `target` (exactly one)."""
    reqs = [r for r in o.requests if r.target == target]
    eq(len(reqs), 1, "requests for %s at %s" % (target, o.name))
    return reqs[0]


def host_of(req):
    return {n.lower(): v for n, v in req.headers}.get("host")


# ---------------------------------------------------------------------------------------------
# wget
# ---------------------------------------------------------------------------------------------


def wget(gh, args, auth=None):
    """Run wget through the forward proxy gh (http_proxy and https_proxy, use_proxy=on), with
    the test CA as its only trust anchor; return CompletedProcess (bytes stdout, text stderr)."""
    home = tmpdir()
    cmd = ["wget", "--no-config", "-e", "use_proxy=on", "--no-hsts", "--tries=1",
           "--timeout=20", "-nv", "--ca-certificate=" + pki().cert("ca")]
    if auth:
        cmd += ["--proxy-user=" + auth[0], "--proxy-password=" + auth[1]]
    r = subprocess.run(cmd + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=60, env=client_env(home, "http://127.0.0.1:%d" % gh.port))
    r.stderr = r.stderr.decode("utf-8", "replace")
    return r


@test("wget with http_proxy fetches a plain page by name (absolute form to the proxy, origin "
      "form at the site) and with https_proxy a page over CONNECT from a TLS origin it verifies "
      "against the test CA; the proxy resolved both names")
def t():
    o, tls = origins()
    d = dns({"site.test": ["127.0.0.1"], "origin.test": ["127.0.0.1"]})
    gh = Gatehouse(fwd_conf(d, "allow_private_destinations on; connect_ports %d;" % tls.port))
    r = wget(gh, ["-O", "-", "http://site.test:%d/echo?wget=plain" % o.port])
    eq(r.returncode, 0, "wget exit (%s)" % r.stderr)
    eq(json.loads(r.stdout)["target"], "/echo?wget=plain", "the page")
    eq(host_of(echo_of(o, "/echo?wget=plain")), "site.test:%d" % o.port, "Host at the site")
    log_has(gh, '"GET http://site.test:%d/echo?wget=plain HTTP/1.1" 200' % o.port, "the GET")
    r = wget(gh, ["-O", "-", "https://origin.test:%d/echo?wget=tls" % tls.port])
    eq(r.returncode, 0, "wget exit over CONNECT (%s)" % r.stderr)
    page = json.loads(r.stdout)
    eq(page["target"], "/echo?wget=tls", "the page")
    eq(page["tls"]["sni"], "origin.test", "wget's TLS handshake went through the tunnel")
    log_has(gh, '"CONNECT origin.test:%d HTTP/1.1" 200' % tls.port, "the CONNECT")
    check(d.queries.get("site.test") and d.queries.get("origin.test"),
          "both names resolved by the proxy: %r" % d.queries)


@test("wget through a proxy with auth basic: refused without a login (407), the page with "
      "--proxy-user/--proxy-password over HTTP and CONNECT")
def t():
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt
    o, tls = origins()
    d = dns({"site.test": ["127.0.0.1"], "origin.test": ["127.0.0.1"]})
    users = os.path.join(tmpdir(), "users")
    with open(users, "w") as f:
        f.write("ann:%s\n" % crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32)))
    gh = Gatehouse(fwd_conf(d, "allow_private_destinations on; connect_ports %d; auth basic %s;"
                            % (tls.port, users)))
    url = "http://site.test:%d/echo?wget=auth" % o.port
    r = wget(gh, ["-O", "-", url])
    check(r.returncode != 0 and "407" in r.stderr, "407 without a login: %r" % r.stderr)
    eq(o.requests, [], "nothing reached the site")
    r = wget(gh, ["-O", "-", url], auth=("ann", "s3cret"))
    eq(r.returncode, 0, "with a login (%s)" % r.stderr)
    eq(json.loads(r.stdout)["target"], "/echo?wget=auth", "the page")
    r = wget(gh, ["-O", "-", "https://origin.test:%d/echo?wget=auth" % tls.port],
             auth=("ann", "s3cret"))
    eq(r.returncode, 0, "CONNECT with a login (%s)" % r.stderr)
    for req in o.requests + tls.requests:
        check(all(n.lower() != "proxy-authorization" for n, _ in req.headers),
              "the login stayed at the proxy")
    log_has(gh, "127.0.0.1 - ann [", "the user")


@test("wget: 6 MB down and 6 MB up (--post-file) through HTTP forwarding and through a CONNECT "
      "tunnel, compared by sha256")
def t():
    o, tls = origins()
    d = dns({"site.test": ["127.0.0.1"], "origin.test": ["127.0.0.1"]})
    gh = Gatehouse(fwd_conf(d, "allow_private_destinations on; connect_ports %d;" % tls.port))
    n = 6 * 1024 * 1024
    data = det_bytes(n, seed=29)
    up = os.path.join(gh.dir, "up.bin")
    with open(up, "wb") as f:
        f.write(data)
    for base in ("http://site.test:%d" % o.port, "https://origin.test:%d" % tls.port):
        down = os.path.join(gh.dir, "down.bin")
        r = wget(gh, ["-O", down, "%s/bytes/%d" % (base, n)])
        eq(r.returncode, 0, "download from %s (%s)" % (base, r.stderr))
        eq(sha256_file(down), sha256(det_bytes(n)), "download sha256 from %s" % base)
        r = wget(gh, ["-O", "-", "--post-file=" + up, base + "/upload"])
        eq(r.returncode, 0, "upload to %s (%s)" % (base, r.stderr))
        got = json.loads(r.stdout)
        eq((got["length"], got["sha256"]), (n, sha256(data)), "upload to %s" % base)


# ---------------------------------------------------------------------------------------------
# Chromium
# ---------------------------------------------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking", "--disable-sync",
    "--disable-component-update", "--disable-default-apps", "--disable-extensions",
    "--disable-dev-shm-usage", "--metrics-recording-only", "--mute-audio",
    "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable,MediaRouter,"
    "OptimizationHints,Translate",
]


_chromium_start = []  # True once chromium loaded a page here, or the reason it cannot


class Chromium:
    """Headless Chromium with a HOME and profile of its own, the test CA trusted in its NSS
    database ($HOME/.pki/nssdb, which Chromium on Linux reads for locally added anchors). The
    test is skipped if chromium is missing or cannot load a data: URL (checked once per file).

    Chromium's own background requests (component updates, time and connectivity checks to
    Google's names) go to the proxy too; the test's DNS responder does not know those names, so
    they get 502 or 403 and change nothing."""

    def __init__(self):
        self.bin = shutil.which("chromium")
        self.home = tmpdir()
        self.profile = os.path.join(self.home, "profile")
        if not self.bin:
            raise Skip("chromium is not installed (scripts/deps.sh test)")
        if not _chromium_start:
            r = self.run("data:text/html,<p>started</p>", [])
            ok = r.returncode == 0 and b"<p>started</p>" in r.stdout
            _chromium_start.append(ok or "chromium cannot start here: exit %s, %s"
                                   % (r.returncode, r.stderr[-500:]))
        if _chromium_start[0] is not True:
            raise Skip(_chromium_start[0])
        self._trust(pki().cert("ca"))

    def _trust(self, ca):
        db = "sql:" + os.path.join(self.home, ".pki", "nssdb")
        os.makedirs(os.path.join(self.home, ".pki", "nssdb"), exist_ok=True)
        if not shutil.which("certutil"):
            raise AssertionError("certutil (libnss3-tools) is missing: scripts/deps.sh test")
        for args in (["-N", "--empty-password"], ["-A", "-t", "C,,", "-n", "gatehouse test CA",
                                                 "-i", ca]):
            r = subprocess.run(["certutil", "-d", db] + args, capture_output=True, timeout=30,
                               stdin=subprocess.DEVNULL)
            check(r.returncode == 0, "certutil %s: %r" % (args, r.stderr))

    def run(self, url, flags, timeout=45):
        """Load url with --dump-dom; CompletedProcess (bytes stdout = the DOM, text stderr)."""
        cmd = [self.bin] + CHROMIUM_FLAGS + ["--user-data-dir=" + self.profile] + list(flags)
        r = subprocess.run(cmd + ["--dump-dom", url], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout, env=client_env(self.home))
        r.stderr = r.stderr.decode("utf-8", "replace")
        return r

    def page(self, url, proxy, resolve=""):
        """The DOM of url loaded through `proxy` (a --proxy-server value). Every name Chromium
        would resolve itself fails, except those `resolve` maps ("MAP a.test 127.0.0.1, ")."""
        r = self.run(url, ["--proxy-server=" + proxy,
                           "--host-resolver-rules=%sMAP * ~NOTFOUND, EXCLUDE 127.0.0.1" % resolve])
        check(r.returncode == 0, "chromium exit %s for %s: %s" % (r.returncode, url,
                                                                  r.stderr[-1500:]))
        return r.stdout.decode("utf-8", "replace")


def page_json(dom, what):
    """The JSON an echo endpoint answered, out of the DOM Chromium made of it (a <pre>)."""
    m = re.search(r"<pre[^>]*>(\{.*?\})</pre>", dom, re.S)
    check(m is not None, "%s: no JSON page in the DOM: %r" % (what, dom[:600]))
    return json.loads(m.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))


def chromium_fetches(c, gh, o, tls, proxy, tag, resolve=""):
    """Chromium through `proxy` loads a plain page from site.test and a TLS page from
    origin.test; both arrive as Chromium asked for them."""
    page = page_json(c.page("http://site.test:%d/echo?chromium=%s" % (o.port, tag), proxy,
                            resolve), "plain page")
    eq(page["target"], "/echo?chromium=%s" % tag, "the plain page")
    eq(host_of(echo_of(o, "/echo?chromium=%s" % tag)), "site.test:%d" % o.port, "Host")
    page = page_json(c.page("https://origin.test:%d/echo?chromium=%s" % (tls.port, tag), proxy,
                            resolve), "TLS page")
    eq(page["target"], "/echo?chromium=%s" % tag, "the TLS page")
    eq(page["tls"]["sni"], "origin.test", "Chromium's own TLS handshake with the origin")


@test("Chromium --proxy-server=http://: a plain page (absolute form) and an HTTPS page over "
      "CONNECT, the origin's certificate verified against the test CA, names resolved only by "
      "the proxy", timeout=60)
def t():
    c = Chromium()
    o, tls = origins()
    d = dns({"site.test": ["127.0.0.1"], "origin.test": ["127.0.0.1"]})
    gh = Gatehouse(fwd_conf(d, "allow_private_destinations on; connect_ports %d;" % tls.port))
    chromium_fetches(c, gh, o, tls, "http://127.0.0.1:%d" % gh.port, "http")
    log_has(gh, '"GET http://site.test:%d/echo?chromium=http HTTP/1.1" 200' % o.port, "the GET")
    log_has(gh, '"CONNECT origin.test:%d HTTP/1.1" 200' % tls.port, "the CONNECT")


@test("Chromium --proxy-server=https://a.test:PORT (TLS to the proxy itself, its certificate "
      "from the test CA): a plain page and an HTTPS page through it", timeout=60)
def t():
    c = Chromium()
    p = pki()
    o, tls = origins()
    d = dns({"site.test": ["127.0.0.1"], "origin.test": ["127.0.0.1"]})
    gh = Gatehouse(fwd_conf(d, "tls_certificate %s; tls_key %s; allow_private_destinations on; "
                               "connect_ports %d;" % (p.cert("a-ec"), p.key("a-ec"), tls.port),
                            listen="tls"))
    chromium_fetches(c, gh, o, tls, "https://a.test:%d" % gh.port, "https-proxy",
                     resolve="MAP a.test 127.0.0.1, ")
    log_has(gh, '"CONNECT origin.test:%d HTTP/1.1" 200' % tls.port, "the CONNECT")


@test("Chromium --proxy-server=socks5://: a plain page and an HTTPS page through the SOCKS5 "
      "listener, names sent to the proxy", timeout=60)
def t():
    c = Chromium()
    o, tls = origins()
    d = dns({"site.test": ["127.0.0.1"], "origin.test": ["127.0.0.1"]})
    gh = Gatehouse(fwd_conf(d, "allow_private_destinations on; connect_ports %d %d;"
                            % (o.port, tls.port), listen="socks5"))
    chromium_fetches(c, gh, o, tls, "socks5://127.0.0.1:%d" % gh.port, "socks5")
    check(d.queries.get("site.test") and d.queries.get("origin.test"),
          "both names resolved by the proxy: %r" % d.queries)


@test("Chromium and a blocked domain: over HTTP it shows the proxy's 403 page naming the domain; "
      "over CONNECT the page does not load; the site gets nothing", timeout=60)
def t():
    c = Chromium()
    o, tls = origins()
    d = dns({"social.test": ["127.0.0.1"], "www.social.test": ["127.0.0.1"]})
    gh = Gatehouse(fwd_conf(d, "allow_private_destinations on; connect_ports %d; "
                               "block_domains social.test;" % tls.port))
    proxy = "http://127.0.0.1:%d" % gh.port
    dom = c.page("http://www.social.test:%d/echo" % o.port, proxy)
    check("blocked domain" in dom and "social.test" in dom, "the 403 page: %r" % dom[:600])
    dom = c.page("https://www.social.test:%d/echo" % tls.port, proxy)
    check('"target"' not in dom, "no page over CONNECT: %r" % dom[:600])
    eq((o.requests, tls.requests), ([], []), "the sites got nothing")
    log_has(gh, "blocked www.social.test: block_domains social.test", "the refusal")


if __name__ == "__main__":
    run()
