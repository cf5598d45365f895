/*
 * forward.c - the forward proxy's requests (see forward.h): the CONNECT
 * source. One per tunnel (allocated; a tunnel is long-lived): it resolves the
 * destination, tries its addresses in order (IPv6 first) skipping the private
 * ones unless allowed, connects under connect_timeout, answers 200 and hands
 * its transport to the tunnel.
 */
#include "proxy/forward.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "net/dns.h"
#include "net/race.h"
#include "net/sock.h"
#include "policy/cidr.h"
#include "policy/domains.h"
#include "policy/htpasswd.h"
#include "proxy/respond.h"
#include "proxy/worker.h"

#define FWD_TUNNEL 1
#define FWD_DEST 2

struct fwd_tun {
    uint8_t kind; /* FWD_TUNNEL */
    struct gh_exchange *ex;
    struct gh_xprt x; /* to the destination */
    struct gh_buf *in, *out;
    struct gh_dns_query *q;
    struct gh_race race; /* the connection attempts (happy eyeballs) */
    uint16_t port;
    bool connected;
    bool gone;     /* released: late events of this batch find it closed */
    bool starting; /* in the routed hook: a failure is answered by whoever drives the exchange */
    char host[GH_DNS_MAX_NAME + 1];
};

static int tun_recv(struct gh_exchange *ex);
static void tun_release(struct gh_exchange *ex);
static int tun_end(struct gh_exchange *ex, struct gh_tunnel_end *end);

static const struct gh_source_ops src_connect = {
    .name = "connect",
    .recv = tun_recv,
    .release = tun_release,
    .tunnel_end = tun_end,
};

/* ---- the destination guard ---- */

static bool
private_v4(uint32_t a) /* host order */
{
    uint8_t b0 = (uint8_t)(a >> 24), b1 = (uint8_t)(a >> 16);
    return b0 == 0 || b0 == 10 || b0 == 127 || b0 >= 224 || /* this, private, loopback, multicast */
           (b0 == 100 && (b1 & 0xc0) == 64) ||              /* 100.64/10 CGNAT */
           (b0 == 169 && b1 == 254) ||                      /* link-local, cloud metadata */
           (b0 == 172 && (b1 & 0xf0) == 16) || (b0 == 192 && b1 == 168) ||
           (b0 == 192 && b1 == 0 && (uint8_t)(a >> 8) == 0) || /* 192.0.0/24 */
           (b0 == 198 && (b1 & 0xfe) == 18);                   /* 198.18/15 benchmarking */
}

/* Loopback, private, link-local, unique-local, CGNAT, multicast, metadata (RFC 6890 and kin). */
bool
gh_forward_private(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return private_v4(ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr));
    const uint8_t *b = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(b, mapped, 12) == 0)
        return private_v4((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 |
                          b[15]);
    static const uint8_t zero[15] = {0};
    if (memcmp(b, zero, 15) == 0) /* :: and ::1 */
        return true;
    return (b[0] & 0xfe) == 0xfc ||                   /* fc00::/7 unique-local (fd00:ec2::254) */
           (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || /* fe80::/10 link-local */
           b[0] == 0xff;                              /* multicast */
}

/* ---- resolvers ---- */

struct gh_dns *
gh_forward_dns(struct gh_worker *w, const struct gh_forward_conf *f)
{
    char key[512];
    snprintf(key, sizeof(key), "%s|%u", f->resolver != NULL ? f->resolver : "",
             f->resolver_timeout_ms);
    for (int i = 0; i < GH_WORKER_RESOLVERS; i++)
        if (w->fwd_dns[i] != NULL && strcmp(w->fwd_dns_key[i], key) == 0)
            return w->fwd_dns[i];
    int slot = 0;
    while (slot < GH_WORKER_RESOLVERS && w->fwd_dns[slot] != NULL)
        slot++;
    if (slot == GH_WORKER_RESOLVERS) /* settings changed more often than kept: the first one */
        return w->fwd_dns[0];
    char err[256];
    struct gh_dns_opts o = {.servers = f->resolver, .timeout_ms = f->resolver_timeout_ms / 2};
    w->fwd_dns[slot] = gh_dns_new(w->loop, &o, err, sizeof(err));
    if (w->fwd_dns[slot] == NULL) {
        gh_log_error("resolver %s: %s", f->resolver != NULL ? f->resolver : "(system)", err);
        return NULL;
    }
    w->fwd_dns_key[slot] = strdup(key);
    return w->fwd_dns[slot];
}

void
gh_forward_worker_free(struct gh_worker *w)
{
    for (int i = 0; i < GH_WORKER_RESOLVERS; i++) {
        gh_dns_free(w->fwd_dns[i]);
        free(w->fwd_dns_key[i]);
        w->fwd_dns[i] = NULL;
        w->fwd_dns_key[i] = NULL;
    }
}

/* ---- connecting ---- */

/* The addresses of a that may be reached (all, or the public ones) into out; their count. */
uint32_t
gh_forward_reachable(const struct gh_forward_conf *f, const struct gh_dns_answer *a,
                     struct sockaddr_storage *out)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < a->n; i++)
        if (f->allow_private || !gh_forward_private(&a->addr[i]))
            out[n++] = a->addr[i];
    return n;
}

static void
fail(struct fwd_tun *t, int status, const char *why)
{
    struct gh_exchange *ex = t->ex;
    bool async = !t->starting;
    gh_log_info("CONNECT %s:%u: %s", t->host, t->port, why);
    if (status == 403)
        ex->fwd_verdict = GH_FWD_DENIED; /* a private destination */
    if (gh_exchange_fail(ex, status, why) != GH_PUMP_ENDED && async)
        ex->down->resume(ex); /* from the loop (DNS, connect): the answer must be driven */
}

static void
on_dest(struct gh_io *io, uint32_t events)
{
    struct fwd_tun *t = gh_container_of(io, struct fwd_tun, x.io);
    if (t->gone)
        return;
    gh_xprt_on_events(&t->x, events);
    t->ex->down->resume(t->ex);
}

/* The race's end: the tunnel's destination, or the answer that none could be reached. */
static void
on_raced(void *arg, int fd, int err, const struct sockaddr_storage *addr)
{
    struct fwd_tun *t = arg;
    (void)addr;
    if (fd < 0) {
        fail(t, err == ETIMEDOUT ? 504 : 502,
             err == ETIMEDOUT ? "connecting to the destination timed out"
                              : "cannot connect to the destination");
        return;
    }
    gh_xprt_init(&t->x, fd, on_dest, 0);
    if (gh_xprt_watch(t->ex->w->loop, &t->x, EPOLLIN | EPOLLOUT | EPOLLRDHUP) != 0) {
        gh_xprt_close(&t->x);
        fail(t, 502, "cannot watch the destination's socket");
        return;
    }
    gh_xprt_set(&t->x, GH_XPRT_CAN_WRITE);
    t->connected = true;
    if (!t->starting)
        t->ex->down->resume(t->ex);
}

static void
on_resolved(void *arg, const struct gh_dns_answer *a)
{
    struct fwd_tun *t = arg;
    t->q = NULL;
    if (a->status != GH_DNS_OK) {
        char why[128];
        snprintf(why, sizeof(why), "cannot resolve the destination: %s",
                 gh_dns_status_str(a->status));
        fail(t, a->status == GH_DNS_TIMEOUT ? 504 : 502, why);
        return;
    }
    struct gh_exchange *ex = t->ex;
    struct sockaddr_storage ok[GH_DNS_MAX_ADDRS];
    uint32_t n = gh_forward_reachable(ex->srv->forward, a, ok);
    if (n == 0) {
        fail(t, 403, "the destination is a private address (allow_private_destinations is off)");
        return;
    }
    gh_race_start(&t->race, ex->w->loop, ok, n, t->port, ex->pc->connect_timeout_ms, 0, on_raced,
                  t);
}

/* ---- the source ---- */

static int
tun_recv(struct gh_exchange *ex)
{
    struct fwd_tun *t = ex->fwd;
    if (t == NULL || !t->connected)
        return GH_PUMP_BLOCKED;
    struct gh_resp r = {.status = 200,
                        .reason = "Connection established",
                        .reason_len = 22,
                        .body = GH_H1_BODY_NONE,
                        .flags = GH_RESP_OWN_FIELDS,
                        .content_length = -1};
    bool reframe;
    ex->status = 200;
    if (ex->down->send_head(ex, &r, &reframe) < 0 || ex->down->send_body(ex, NULL, 0, true) != 0)
        return GH_PUMP_ENDED;
    ex->flags |= GH_EX_RESP_DONE;
    return GH_PUMP_MOVED;
}

static int
tun_end(struct gh_exchange *ex, struct gh_tunnel_end *end)
{
    struct fwd_tun *t = ex->fwd;
    if (t == NULL || !t->connected)
        return -1;
    end->x = &t->x;
    end->in = &t->in;
    end->out = &t->out;
    end->sent = &ex->tunnel_up;
    return 0;
}

static void
tun_free(void *ctx, void *obj)
{
    (void)ctx;
    free(obj);
}

static void
tun_release(struct gh_exchange *ex)
{
    struct fwd_tun *t = ex->fwd;
    if (t == NULL)
        return;
    ex->fwd = NULL;
    gh_dns_cancel(t->q);
    gh_race_cancel(&t->race);
    if (t->x.io.fd >= 0)
        gh_xprt_close(&t->x);
    gh_buf_put(t->in);
    gh_buf_put(t->out);
    t->gone = true;
    gh_loop_defer_free(ex->w->loop, t, tun_free, NULL);
}

/* "host:port" or "[v6]:port" of a CONNECT into t. */
static bool
parse_authority(const char *s, size_t n, struct fwd_tun *t)
{
    const char *colon = NULL;
    for (size_t i = n; i > 0; i--)
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    size_t hl = colon != NULL ? (size_t)(colon - s) : 0;
    if (hl == 0 || hl >= sizeof(t->host) || gh_parse_port(colon + 1, n - hl - 1, &t->port) != 0)
        return false;
    memcpy(t->host, s, hl);
    t->host[hl] = '\0';
    return true;
}

static int
start_connect(struct gh_exchange *ex, const struct gh_request *req)
{
    const struct gh_forward_conf *f = ex->srv->forward;
    struct fwd_tun *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return 503;
    if (!parse_authority(req->target, req->target_len, t)) {
        free(t);
        ex->fail_reason = "CONNECT needs HOST:PORT";
        return 400;
    }
    bool port_ok = false;
    for (uint32_t i = 0; i < f->n_connect_ports; i++)
        port_ok = port_ok || f->connect_ports[i] == t->port;
    if (!port_ok) {
        free(t);
        ex->fail_reason = "CONNECT to a port that connect_ports does not allow";
        ex->fwd_verdict = GH_FWD_DENIED;
        return 403;
    }
    struct gh_dns *dns = gh_forward_dns(ex->w, f);
    if (dns == NULL) {
        free(t);
        ex->fail_reason = "no resolver";
        return 502;
    }
    t->kind = FWD_TUNNEL;
    t->ex = ex;
    t->x.io.fd = -1;
    ex->fwd = t;
    ex->src = &src_connect;
    ex->flags |= GH_EX_CONNECT;
    gh_exchange_set_state(ex, GH_EX_RUNNING);
    const struct gh_dns_answer *hit;
    t->starting = true;
    int rc = gh_dns_resolve(dns, t->host, strlen(t->host), on_resolved, t, &t->q, &hit);
    if (rc < 0)
        gh_exchange_fail(ex, 503, "out of memory");
    else if (rc == 0)
        on_resolved(t, hit); /* may fail, and release t */
    if (ex->fwd == t)
        t->starting = false;
    return GH_DECLINED;
}

/* ---- HTTP in absolute form: the origin source, to a destination found here ---- */

struct fwd_dest {
    uint8_t kind; /* FWD_DEST */
    bool starting;
    struct gh_exchange *ex;
    struct gh_dns_query *q;
    struct gh_peer *peer;          /* a reference */
    struct gh_upstream_server srv; /* what ex->up.direct_srv points at */
    struct gh_race race;           /* when no address has a pooled connection */
    int fail_status;               /* a race lost while starting: answered by start_http */
    const char *fail_why;
    uint16_t port;
    char host[GH_DNS_MAX_NAME + 1];
    char text[GH_DNS_MAX_NAME + 64]; /* "host (address:port)" for logs */
};

/* The destination is peer p (a reference, now d's) at ss: the origin source's stand-in. */
static void
dest_use(struct fwd_dest *d, struct gh_peer *p, const struct sockaddr_storage *ss)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    const void *a = ss->ss_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
    inet_ntop(ss->ss_family, a, ip, sizeof(ip));
    snprintf(d->text, sizeof(d->text), ss->ss_family == AF_INET6 ? "%s ([%s]:%u)" : "%s (%s:%u)",
             d->host, ip, d->port);
    d->peer = p;
    d->srv.addr.ss = *ss;
    d->srv.addr.len = p->len;
    d->srv.addr.text = d->text;
    d->srv.weight = 1;
    d->ex->up.direct = p;
    d->ex->up.direct_srv = &d->srv;
}

static void dest_failed(struct fwd_dest *d, int status, const char *why);

static void
dest_raced(void *arg, int fd, int err, const struct sockaddr_storage *addr)
{
    struct fwd_dest *d = arg;
    if (fd < 0) {
        dest_failed(d, err == ETIMEDOUT ? 504 : 502,
                    err == ETIMEDOUT ? "connecting to the destination timed out"
                                     : "cannot connect to the destination");
        return;
    }
    struct sockaddr_storage ss = *addr;
    struct gh_peer *p = gh_peer_get(&d->ex->w->ups, &ss, gh_race_set_port(&ss, d->port), 0);
    if (p == NULL) {
        close(fd);
        dest_failed(d, 503, "out of memory");
        return;
    }
    dest_use(d, p, &ss);
    d->ex->up.direct_fd = fd;
    if (!d->starting && gh_origin_go(d->ex) != GH_PUMP_ENDED)
        d->ex->down->resume(d->ex);
}

/* An answer for an HTTP destination: GH_OK with its peer set, GH_AGAIN while its addresses
 * race, or a status to fail with (why in *why). An address with a pooled connection is taken
 * at once; one address is left to the origin source to connect; several race. */
static int
dest_choose(struct fwd_dest *d, const struct gh_dns_answer *a, const char **why)
{
    if (a->status != GH_DNS_OK) {
        *why = a->status == GH_DNS_TIMEOUT ? "cannot resolve the destination: timed out"
                                           : "cannot resolve the destination: not found";
        return a->status == GH_DNS_TIMEOUT ? 504 : 502;
    }
    struct sockaddr_storage ok[GH_DNS_MAX_ADDRS];
    uint32_t n = gh_forward_reachable(d->ex->srv->forward, a, ok);
    if (n == 0) {
        *why = "the destination is a private address (allow_private_destinations is off)";
        d->ex->fwd_verdict = GH_FWD_DENIED;
        return 403;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct gh_peer *p =
            gh_peer_get(&d->ex->w->ups, &ok[i], gh_race_set_port(&ok[i], d->port), 0);
        if (p == NULL) {
            *why = "out of memory";
            return 503;
        }
        if (p->n_idle > 0 || n == 1) {
            dest_use(d, p, &ok[i]);
            return GH_OK;
        }
        gh_peer_put(&d->ex->w->ups, p);
    }
    gh_race_start(&d->race, d->ex->w->loop, ok, n, d->port, d->ex->pc->connect_timeout_ms, 0,
                  dest_raced, d);
    if (d->fail_status != 0) {
        *why = d->fail_why;
        return d->fail_status;
    }
    return d->peer != NULL ? GH_OK : GH_AGAIN;
}

static void
dest_failed(struct fwd_dest *d, int status, const char *why)
{
    struct gh_exchange *ex = d->ex;
    if (d->starting) { /* dest_choose's caller answers */
        d->fail_status = status;
        d->fail_why = why;
        return;
    }
    gh_log_info("http://%s:%u: %s", d->host, d->port, why);
    ex->up.ups = NULL; /* nothing was tried: the log names no upstream */
    if (gh_exchange_fail(ex, status, why) != GH_PUMP_ENDED)
        ex->down->resume(ex);
}

static void
on_dest_resolved(void *arg, const struct gh_dns_answer *a)
{
    struct fwd_dest *d = arg;
    struct gh_exchange *ex = d->ex;
    const char *why = NULL;
    d->q = NULL;
    d->starting = true;
    int st = dest_choose(d, a, &why);
    d->starting = false;
    if (st == GH_AGAIN)
        return;
    if (st != GH_OK) {
        dest_failed(d, st, why);
        return;
    }
    if (gh_origin_go(ex) != GH_PUMP_ENDED)
        ex->down->resume(ex);
}

/* "http://host[:port]/..." (the authority is in req->host): the destination, resolved before the
 * origin source starts, or waited for. */
static int
start_http(struct gh_exchange *ex, const struct gh_request *req)
{
    if (req->target_len < 7 || strncasecmp(req->target, "http://", 7) != 0) {
        ex->fail_reason = "a forward proxy relays http:// URLs; https goes through CONNECT";
        return 400;
    }
    struct fwd_dest *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return 503;
    d->kind = FWD_DEST;
    d->ex = ex;
    ex->fwd = d;
    const char *h = req->host;
    size_t hl = req->host_len, colon = hl;
    if (hl > 0 && h[0] == '[') {
        const char *rb = memchr(h, ']', hl);
        colon = rb != NULL ? (size_t)(rb - h) + 1 : hl;
    } else {
        const char *c = memchr(h, ':', hl);
        colon = c != NULL ? (size_t)(c - h) : hl;
    }
    d->port = 80;
    if (colon == 0 || colon >= sizeof(d->host) ||
        (colon < hl && gh_parse_port(h + colon + 1, hl - colon - 1, &d->port) != 0)) {
        ex->fail_reason = "the URL has no valid host and port";
        return 400;
    }
    memcpy(d->host, h, colon);
    d->host[colon] = '\0';
    struct gh_dns *dns = gh_forward_dns(ex->w, ex->srv->forward);
    if (dns == NULL) {
        ex->fail_reason = "no resolver";
        return 502;
    }
    const struct gh_dns_answer *hit;
    int rc = gh_dns_resolve(dns, d->host, strlen(d->host), on_dest_resolved, d, &d->q, &hit);
    if (rc < 0)
        return 503;
    if (rc == 0) {
        const char *why = NULL;
        d->starting = true;
        int st = dest_choose(d, hit, &why);
        d->starting = false;
        if (st != GH_OK && st != GH_AGAIN) {
            ex->fail_reason = why;
            return st;
        }
    }
    return GH_OK; /* the origin source builds the head, and connects now or after the answer */
}

void
gh_forward_release(struct gh_exchange *ex)
{
    struct fwd_dest *d = ex->fwd;
    if (d == NULL)
        return;
    if (d->kind == FWD_TUNNEL) {
        tun_release(ex);
        return;
    }
    ex->fwd = NULL;
    gh_dns_cancel(d->q);
    gh_race_cancel(&d->race);
    if (ex->up.direct_fd > 0)
        close(ex->up.direct_fd);
    ex->up.direct_fd = 0;
    ex->up.direct = NULL;
    ex->up.direct_srv = NULL;
    gh_peer_put(&ex->w->ups, d->peer);
    free(d);
}

/* ---- auth basic ---- */

#define AUTH_CACHE 256       /* logins a thread remembers (so the slow hash runs rarely) */
#define AUTH_CACHE_MS 300000 /* for 5 minutes */
#define FAIL_SLOTS 256       /* client addresses whose failed logins a thread counts */
#define FAIL_MAX 10          /* failures in FAIL_WINDOW_MS before 429 */
#define FAIL_WINDOW_MS 60000

struct auth_hit {
    uint8_t digest[32]; /* SHA-256 of the Proxy-Authorization value */
    const void *file;   /* the htpasswd it passed */
    uint64_t until;
};

struct fail_slot {
    uint8_t family, ip[16];
    uint16_t fails;
    uint64_t since;
};

static __thread struct auth_hit auth_cache[AUTH_CACHE];
static __thread struct fail_slot fail_tab[FAIL_SLOTS];

static struct fail_slot *
fail_slot(const struct gh_client_addr *a)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ a->ip[i]) * 16777619u;
    return &fail_tab[h % FAIL_SLOTS];
}

static bool
same_client(const struct fail_slot *f, const struct gh_client_addr *a)
{
    return f->family == a->family && memcmp(f->ip, a->ip, 16) == 0;
}

void
gh_forward_login_failed(struct gh_worker *w, const struct gh_client_addr *a)
{
    struct fail_slot *f = fail_slot(a);
    uint64_t now = gh_loop_now(w->loop);
    if (!same_client(f, a) || now - f->since > FAIL_WINDOW_MS) {
        f->family = a->family;
        memcpy(f->ip, a->ip, 16);
        f->fails = 0;
        f->since = now;
    }
    if (f->fails < UINT16_MAX)
        f->fails++;
}

bool
gh_forward_login_throttled(struct gh_worker *w, const struct gh_client_addr *a)
{
    const struct fail_slot *f = fail_slot(a);
    return same_client(f, a) && f->fails >= FAIL_MAX &&
           gh_loop_now(w->loop) - f->since <= FAIL_WINDOW_MS;
}

/* 407 with the challenge: the client is to (re)send its login. */
static int
challenge(struct gh_exchange *ex, const char *why)
{
    const struct gh_forward_conf *f = ex->srv->forward;
    struct gh_gen g = {.challenge = f->auth_challenge, .challenge_len = f->auth_challenge_len};
    char ip[64];
    if (gh_client_ip_str(ex->client, ip, sizeof(ip)) == 0)
        snprintf(ip, sizeof(ip), "-");
    gh_log_info("client %s: 407: %s", ip, why);
    ex->fail_reason = why;
    ex->fwd_verdict = GH_FWD_AUTH_FAILED;
    gh_respond(ex, 407, &g);
    return GH_DECLINED;
}

/* "Basic base64(user:password)" checked against the file; ex->user set on success. */
static bool
check_login(struct gh_exchange *ex, const char *v, size_t n)
{
    const struct gh_forward_conf *f = ex->srv->forward;
    uint8_t digest[32];
    SHA256((const unsigned char *)v, n, digest);
    uint64_t now = gh_loop_now(ex->w->loop);
    struct auth_hit *c = &auth_cache[(digest[0] << 8 | digest[1]) % AUTH_CACHE];
    if (n < 7 || strncasecmp(v, "Basic ", 6) != 0)
        return false;
    size_t b64 = n - 6;
    const char *p = v + 6;
    while (b64 > 0 && p[0] == ' ')
        p++, b64--;
    if (b64 == 0 || b64 > 680 || b64 % 4 != 0)
        return false;
    unsigned char plain[512];
    int len = EVP_DecodeBlock(plain, (const unsigned char *)p, (int)b64);
    if (len < 0)
        return false;
    while (len > 0 && b64 >= 2 && p[b64 - 1] == '=' && plain[len - 1] == 0) /* padding */
        len--, b64--;
    const unsigned char *colon = memchr(plain, ':', (size_t)len);
    if (colon == NULL)
        return false;
    size_t ul = (size_t)(colon - plain);
    const char *canon = NULL;
    if (c->until > now && c->file == f->auth && memcmp(c->digest, digest, 32) == 0)
        canon = gh_htpasswd_user(f->auth, (const char *)plain, ul);
    if (canon == NULL && gh_htpasswd_check(f->auth, (const char *)plain, ul,
                                           (const char *)colon + 1, (size_t)len - ul - 1, &canon)) {
        memcpy(c->digest, digest, 32);
        c->file = f->auth;
        c->until = now + AUTH_CACHE_MS;
    }
    OPENSSL_cleanse(plain, sizeof(plain));
    if (canon == NULL)
        return false;
    ex->user = canon;
    ex->user_len = (uint32_t)strlen(canon);
    return true;
}

/* `auth basic`: GH_OK for a good login, else an answer (407, or 429 after many failures). */
static int
authenticate(struct gh_exchange *ex, const struct gh_request *req)
{
    const struct gh_forward_conf *f = ex->srv->forward;
    if (f->auth == NULL)
        return GH_OK;
    if (gh_forward_login_throttled(ex->w, ex->client)) {
        ex->fwd_verdict = GH_FWD_AUTH_FAILED;
        ex->fail_reason = "too many failed logins from this address";
        struct gh_gen g = {.retry_after = 60};
        gh_respond(ex, 429, &g);
        return GH_DECLINED;
    }
    const struct gh_h1_header *pa = NULL;
    for (uint32_t i = 0; i < req->n_fields && pa == NULL; i++)
        if (req->fields[i].id == GH_HDR_PROXY_AUTHORIZATION)
            pa = &req->fields[i];
    if (pa == NULL)
        return challenge(ex, "login needed (no Proxy-Authorization)");
    if (!check_login(ex, pa->value, pa->value_len)) {
        gh_forward_login_failed(ex->w, ex->client);
        return challenge(ex, "login refused");
    }
    return GH_OK;
}

static int
by_str(const void *key, const void *elem)
{
    return strcmp(key, *(const char *const *)elem);
}

/* The first group the client belongs to (by address, or by its login), or NULL. */
static const struct gh_fwd_group *
client_group(const struct gh_client_addr *client, const char *user, const struct gh_forward_conf *f)
{
    for (uint32_t i = 0; i < f->n_groups; i++) {
        const struct gh_fwd_group *g = &f->groups[i];
        if (g->clients != NULL &&
            gh_cidr_set_find(g->clients, client->family, client->ip) != GH_CIDR_NONE)
            return g;
        if (user != NULL && g->n_users > 0 &&
            bsearch(user, g->users, g->n_users, sizeof(*g->users), by_str) != NULL)
            return g;
    }
    return NULL;
}

/* The verdict of one pair of lists: 1 allowed, -1 blocked (*matched, *tag set), 0 neither. */
static int
lists(const struct gh_domains *allow, const struct gh_domains *block, const char *host, size_t len,
      uint32_t *tag, const char **matched)
{
    if (allow != NULL && gh_domains_match(allow, host, len, tag, matched))
        return 1;
    if (block != NULL && gh_domains_match(block, host, len, tag, matched))
        return -1;
    return 0;
}

/* One list's verdict on a destination: 1 allowed (allow_domains), -1 a blocked domain, -2 a
 * blocked URL, 0 no say. */
static int
rules(const struct gh_domains *allow, const struct gh_domains *block,
      const struct gh_url_rules *urls, const struct gh_fwd_query *q, struct gh_fwd_match *m)
{
    int v = lists(allow, block, q->host, q->host_len, &m->tag, &m->matched);
    if (v != 0)
        return v;
    for (uint32_t i = 0; i < urls->n; i++) {
        const size_t *ov;
        if (gh_conf_regex_match(urls->v[i].re, q->url, q->url_len, &ov) > 0) {
            m->tag = urls->v[i].tag;
            m->matched = urls->v[i].text;
            return -2;
        }
    }
    return 0;
}

/* The client's group's rules, then the block's own, for a destination. */
int
gh_forward_check(const struct gh_forward_conf *f, const struct gh_fwd_query *q,
                 struct gh_fwd_match *m)
{
    const struct gh_fwd_group *g = client_group(q->client, q->user, f);
    int v = g != NULL ? rules(g->allow_domains, g->block_domains, &g->block_urls, q, m) : 0;
    if (v == 0)
        v = rules(f->allow_domains, f->block_domains, &f->block_urls, q, m);
    m->group = g;
    return v == -1 ? GH_FWD_BLOCK_DOMAIN : v == -2 ? GH_FWD_BLOCK_URL : GH_FWD_PASS;
}

/* The domain and URL rules for the request's destination (host[0..len), no port): GH_OK, or
 * GH_DECLINED after answering 403 with a page that says what blocked it. */
static int
domain_rules(struct gh_exchange *ex, const struct gh_request *req, const char *host, size_t len)
{
    const struct gh_forward_conf *f = ex->srv->forward;
    struct gh_fwd_query q = {ex->client, ex->user, host, len, req->target, req->target_len};
    struct gh_fwd_match m = {0};
    int kind = gh_forward_check(f, &q, &m);
    const struct gh_fwd_group *g = m.group;
    ex->fwd_group = g != NULL ? g->name : NULL;
    if (kind == GH_FWD_PASS)
        return GH_OK;
    ex->fwd_verdict = GH_FWD_BLOCKED;
    char page[768];
    int hl = (int)(len > 253 ? 253 : len);
    int n =
        snprintf(page, sizeof(page),
                 kind == GH_FWD_BLOCK_URL
                     ? "Blocked: this proxy does not let requests reach %.*s (the address "
                       "matches %s, a blocked URL pattern%s%s).\n"
                     : "Blocked: this proxy does not let requests reach %.*s (it is under %s, "
                       "a blocked domain%s%s).\n",
                 hl, host, m.matched, g != NULL ? " for the group " : "", g != NULL ? g->name : "");
    gh_log_info("blocked %.*s%s%s%s%s: %s %s (at %s)", hl, host,
                ex->user != NULL ? " for user " : "", ex->user != NULL ? ex->user : "",
                g != NULL ? " in group " : "", g != NULL ? g->name : "",
                kind == GH_FWD_BLOCK_URL ? "block_urls" : "block_domains", m.matched,
                f->domain_rule_at[m.tag]);
    ex->fail_reason = kind == GH_FWD_BLOCK_URL ? "blocked URL" : "blocked domain";
    if (f->block_page != NULL) { /* the admin's page, as it is */
        struct gh_gen gen = {.body = f->block_page, .body_len = f->block_page_len, .html = true};
        gh_respond(ex, 403, &gen);
        return GH_DECLINED;
    }
    int rc = gh_respond_copy(ex, 403, page,
                             (size_t)(n < (int)sizeof(page) ? n : (int)sizeof(page) - 1), false);
    return rc == GH_OK ? GH_DECLINED : rc;
}

/* The host a request goes to, without the port: the CONNECT authority, or the URL's. */
static size_t
dest_host(const struct gh_request *req, const char **host)
{
    const char *h = req->method_id == GH_METHOD_CONNECT ? req->target : req->host;
    size_t n = req->method_id == GH_METHOD_CONNECT ? req->target_len : req->host_len;
    *host = h;
    if (h == NULL)
        return 0;
    if (n > 0 && h[0] == '[') {
        const char *rb = memchr(h, ']', n);
        return rb != NULL ? (size_t)(rb - h) + 1 : n;
    }
    const char *c = memchr(h, ':', n);
    return c != NULL ? (size_t)(c - h) : n;
}

int
gh_forward_routed(struct gh_exchange *ex, const struct gh_request *req)
{
    if (gh_likely(ex->srv == NULL || ex->srv->forward == NULL))
        return GH_OK;
    int arc = authenticate(ex, req);
    if (arc != GH_OK)
        return arc;
    ex->fwd_verdict = GH_FWD_ALLOWED;
    const char *host;
    size_t hl = dest_host(req, &host);
    if (hl > 0 && (req->method_id == GH_METHOD_CONNECT || req->target_form == GH_TARGET_ABSOLUTE)) {
        int rc = domain_rules(ex, req, host, hl);
        if (rc != GH_OK)
            return rc;
    }
    if (req->method_id == GH_METHOD_CONNECT)
        return start_connect(ex, req);
    if (req->target_form == GH_TARGET_ABSOLUTE)
        return start_http(ex, req);
    ex->fail_reason = "a forward proxy takes absolute URLs (http://host/path) or CONNECT";
    ex->fwd_verdict = GH_FWD_DENIED;
    return 400;
}
