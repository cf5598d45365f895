/*
 * socks5.c - SOCKS5 (RFC 1928) on a forward proxy's `listen ... socks5` address, with
 * username/password logins (RFC 1929) when the block has `auth`. Only CONNECT is served (what
 * browsers, curl and ssh -D use); the forward proxy's policies apply as to an HTTP CONNECT:
 * connect_ports, group and domain rules (for a name), private destinations, the resolver. After
 * the success reply the connection is a tunnel (tunnel.c).
 *
 * States: GREETING -> (AUTH) -> REQUEST -> RESOLVING -> CONNECTING -> TUNNEL. The handshake must
 * be done within client_header_timeout; the tunnel ends after tunnel_idle_timeout without
 * traffic, or at tunnel_timeout from its start. A refusal is the RFC's reply code, then the
 * connection closes.
 */
#include "proxy/socks5.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "net/dns.h"
#include "net/race.h"
#include "net/sock.h"
#include "policy/htpasswd.h"
#include "proxy/accesslog.h"
#include "proxy/forward.h"
#include "proxy/phase.h"
#include "proxy/socks5_wire.h"
#include "proxy/worker.h"

enum { S_GREETING, S_AUTH, S_REQUEST, S_RESOLVING, S_CONNECTING, S_TUNNEL, S_CLOSED };

/* RFC 1928 6: reply codes */
#define REP_OK 0x00
#define REP_FAIL 0x01
#define REP_NOT_ALLOWED 0x02
#define REP_HOST_UNREACHABLE 0x04
#define REP_REFUSED 0x05
#define REP_TTL 0x06
#define REP_CMD 0x07
#define REP_ATYP 0x08

struct socks {
    struct gh_session s;
    struct gh_worker *w;
    struct gh_wcfg *wc; /* the generation it started on */
    const struct gh_server_conf *srv;
    const struct gh_listen_conf *lc;
    struct gh_xprt x, dx; /* the client, the destination */
    struct gh_timer timer;
    struct gh_buf *in, *out, *din, *dout;
    struct gh_pipe *to_client, *to_dest; /* splice pipes while they hold bytes */
    struct gh_client_addr addr;
    struct gh_dns_query *q;
    struct gh_race race; /* connecting (happy eyeballs) */
    uint8_t state;
    uint8_t hs[600]; /* the handshake's bytes so far */
    uint32_t hs_len;
    const char *user;
    const char *group; /* the forward proxy group the client fell in (for the log) */
    uint64_t t_start, bytes_down, bytes_up;
    int status;      /* what the line says: set when a request or a login was answered */
    uint8_t verdict; /* enum gh_fwd_verdict */
    uint16_t port;
    char host[GH_DNS_MAX_NAME + 1];
};

static void advance(struct socks *c);

static const struct gh_forward_conf *
fwd(const struct socks *c)
{
    return c->srv->forward;
}

static void
sk_free(void *ctx, void *obj)
{
    (void)ctx;
    free(obj);
}

/* The access log's line for a request or a login that was answered. */
static void
log_line(struct socks *c)
{
    char line[GH_DNS_MAX_NAME + 32];
    int n = snprintf(line, sizeof(line), c->host[0] ? "CONNECT %s:%u SOCKS5" : "LOGIN SOCKS5",
                     c->host, c->port);
    struct gh_alog_tunnel t = {.client = &c->addr,
                               .listener = c->lc,
                               .line = line,
                               .line_len = (size_t)n,
                               .user = c->user,
                               .group = c->group,
                               .verdict = c->verdict,
                               .status = c->status,
                               .bytes_down = c->bytes_down,
                               .bytes_up = c->bytes_up,
                               .t_start = c->t_start};
    gh_alog_tunnel(c->w, &t);
}

static void
sk_close(struct socks *c)
{
    if (c->state == S_CLOSED)
        return;
    if (c->status != 0)
        log_line(c);
    c->state = S_CLOSED;
    gh_dns_cancel(c->q);
    c->q = NULL;
    gh_race_cancel(&c->race);
    gh_timer_stop(c->w->loop, &c->timer);
    if (c->x.io.fd >= 0)
        gh_xprt_close(&c->x);
    if (c->dx.io.fd >= 0)
        gh_xprt_close(&c->dx);
    gh_buf_put(c->in);
    gh_buf_put(c->out);
    gh_buf_put(c->din);
    gh_buf_put(c->dout);
    c->in = c->out = c->din = c->dout = NULL;
    gh_pipe_put(c->to_client);
    gh_pipe_put(c->to_dest);
    c->to_client = c->to_dest = NULL;
    gh_phase_conn_closed(c->w, &c->addr);
    gh_worker_session_remove(c->w, &c->s);
    gh_wcfg_drop(c->w, c->wc);
    gh_loop_defer_free(c->w->loop, c, sk_free, NULL);
}

/* Send bytes of the handshake (small: the socket takes them, or the client is gone). */
static void
reply_raw(struct socks *c, const uint8_t *p, size_t n)
{
    struct iovec iov = {(void *)p, n};
    (void)gh_xprt_sendv(&c->x, &iov, 1, n);
}

/* The HTTP status a SOCKS reply code says the same as (for the log). */
static int
rep_status(uint8_t rep)
{
    switch (rep) {
    case REP_OK:
        return 200;
    case REP_NOT_ALLOWED:
        return 403;
    case REP_TTL:
        return 504;
    case REP_CMD:
        return 405;
    case REP_ATYP:
        return 400;
    default:
        return 502;
    }
}

/* The request's reply (RFC 1928 6), with BND.ADDR 0.0.0.0:0; a refusal closes. */
static void
reply(struct socks *c, uint8_t rep, const char *why)
{
    uint8_t r[10] = {5, rep, 0, 1, 0, 0, 0, 0, 0, 0};
    reply_raw(c, r, sizeof(r));
    c->status = rep_status(rep);
    if (c->verdict == GH_FWD_NONE)
        c->verdict = rep == REP_NOT_ALLOWED ? GH_FWD_DENIED : GH_FWD_ALLOWED;
    if (rep == REP_OK)
        return;
    char ip[64];
    gh_client_ip_str(&c->addr, ip, sizeof(ip));
    gh_log_info("socks5 client %s: %s:%u: %s", ip, c->host[0] ? c->host : "-", c->port, why);
    sk_close(c);
}

/* ---- the destination ---- */

static void
on_dest(struct gh_io *io, uint32_t events)
{
    struct socks *c = gh_container_of(io, struct socks, dx.io);
    if (c->state == S_CLOSED)
        return;
    gh_xprt_on_events(&c->dx, events);
    advance(c);
}

/* The race's end (net/race.h): the tunnel starts, or the client hears why not. */
static void
on_raced(void *arg, int fd, int err, const struct sockaddr_storage *addr)
{
    struct socks *c = arg;
    (void)addr;
    if (fd < 0) {
        reply(c, err == ETIMEDOUT ? REP_TTL : REP_REFUSED, "cannot connect to the destination");
        return;
    }
    gh_xprt_init(&c->dx, fd, on_dest, GH_XPRT_CAN_WRITE);
    if (gh_xprt_watch(c->w->loop, &c->dx, EPOLLIN | EPOLLOUT | EPOLLRDHUP) != 0) {
        gh_xprt_close(&c->dx);
        reply(c, REP_FAIL, "cannot watch the destination's socket");
        return;
    }
    c->state = S_TUNNEL;
    reply(c, REP_OK, NULL);
    gh_timer_set(c->w->loop, &c->timer, gh_tunnel_deadline(c->w->loop, &c->srv->pc, c->t_start));
    advance(c);
}

static void
on_resolved(void *arg, const struct gh_dns_answer *a)
{
    struct socks *c = arg;
    c->q = NULL;
    if (a->status != GH_DNS_OK) {
        reply(c, a->status == GH_DNS_TIMEOUT ? REP_TTL : REP_HOST_UNREACHABLE,
              gh_dns_status_str(a->status));
        return;
    }
    struct sockaddr_storage ok[GH_DNS_MAX_ADDRS];
    uint32_t n = gh_forward_reachable(fwd(c), a, ok);
    if (n == 0) {
        reply(c, REP_NOT_ALLOWED, "a private destination");
        return;
    }
    c->state = S_CONNECTING;
    gh_timer_stop(c->w->loop, &c->timer); /* the race has its own deadlines */
    gh_race_start(&c->race, c->w->loop, ok, n, c->port, c->srv->pc.connect_timeout_ms, 0, on_raced,
                  c);
}

/* ---- the handshake ---- */

/* Bytes from the client into hs (the handshake is small); false when it broke or ended. */
static bool
read_hs(struct socks *c)
{
    while (gh_xprt_is(&c->x, GH_XPRT_CAN_READ) && c->hs_len < sizeof(c->hs)) {
        ssize_t n = gh_xprt_recv(&c->x, (char *)c->hs + c->hs_len, sizeof(c->hs) - c->hs_len);
        if (n == GH_AGAIN)
            break;
        if (n <= 0)
            return false;
        c->hs_len += (uint32_t)n;
    }
    return true;
}

static void
consume(struct socks *c, uint32_t n)
{
    memmove(c->hs, c->hs + n, c->hs_len - n);
    c->hs_len -= n;
}

/* VER NMETHODS METHODS: 1 went on, 0 needs more, -1 closed. */
static int
greeting(struct socks *c)
{
    uint8_t want = fwd(c)->auth != NULL ? 2 : 0; /* username/password, or none */
    bool offered = false;
    int n = gh_s5_greeting(c->hs, c->hs_len, want, &offered);
    if (n == 0)
        return 0;
    if (n < 0) {
        sk_close(c);
        return -1;
    }
    consume(c, (uint32_t)n);
    uint8_t r[2] = {5, offered ? want : 0xff};
    reply_raw(c, r, 2);
    if (!offered) {
        sk_close(c);
        return -1;
    }
    c->state = want == 2 ? S_AUTH : S_REQUEST;
    return 1;
}

/* RFC 1929: VER ULEN UNAME PLEN PASSWD. */
static int
login(struct socks *c)
{
    struct gh_s5_login l = {0};
    int n = gh_s5_login(c->hs, c->hs_len, &l);
    if (n == 0)
        return 0;
    const char *canon = NULL;
    bool throttled = gh_forward_login_throttled(c->w, &c->addr);
    bool ok = n > 0 && l.user_len > 0 && !throttled &&
              gh_htpasswd_check(fwd(c)->auth, (const char *)l.user, l.user_len,
                                (const char *)l.pass, l.pass_len, &canon);
    if (n > 0) {
        memset(c->hs, 0, (size_t)n); /* the password */
        consume(c, (uint32_t)n);
    }
    uint8_t r[2] = {1, ok ? 0 : 1};
    reply_raw(c, r, 2);
    if (!ok) {
        char ip[64];
        gh_client_ip_str(&c->addr, ip, sizeof(ip));
        gh_log_info("socks5 client %s: login refused%s", ip,
                    throttled ? " (too many failed logins from this address)" : "");
        if (!throttled)
            gh_forward_login_failed(c->w, &c->addr);
        c->status = throttled ? 429 : 407;
        c->verdict = GH_FWD_AUTH_FAILED;
        sk_close(c);
        return -1;
    }
    c->user = canon;
    c->state = S_REQUEST;
    return 1;
}

/* VER CMD RSV ATYP DST.ADDR DST.PORT */
static int
request(struct socks *c)
{
    struct gh_s5_request rq;
    int n = gh_s5_request(c->hs, c->hs_len, &rq);
    if (n == 0)
        return 0;
    if (n == GH_S5_EVERSION) {
        sk_close(c);
        return -1;
    }
    if (n < 0 || strlen(rq.host) > GH_DNS_MAX_NAME) {
        reply(c, n == GH_S5_EATYP ? REP_ATYP : REP_FAIL, "a bad address");
        return -1;
    }
    memcpy(c->host, rq.host, strlen(rq.host) + 1);
    c->port = rq.port;
    consume(c, (uint32_t)n);
    if (rq.cmd != 1) {
        reply(c, REP_CMD, "only CONNECT is served");
        return -1;
    }
    const struct gh_forward_conf *f = fwd(c);
    bool port_ok = false;
    for (uint32_t i = 0; i < f->n_connect_ports; i++)
        port_ok = port_ok || f->connect_ports[i] == c->port;
    if (!port_ok) {
        reply(c, REP_NOT_ALLOWED, "a port that connect_ports does not allow");
        return -1;
    }
    char url[GH_DNS_MAX_NAME + 16];
    int ul = snprintf(url, sizeof(url), "%s:%u", c->host, c->port);
    struct gh_fwd_query q = {&c->addr, c->user, c->host, strlen(c->host), url, (size_t)ul};
    struct gh_fwd_match m = {0};
    int kind = gh_forward_check(f, &q, &m);
    c->group = m.group != NULL ? m.group->name : NULL;
    if (kind != GH_FWD_PASS) {
        c->verdict = GH_FWD_BLOCKED;
        reply(c, REP_NOT_ALLOWED, kind == GH_FWD_BLOCK_URL ? "a blocked URL" : "a blocked domain");
        return -1;
    }
    struct gh_dns *dns = gh_forward_dns(c->w, f);
    const struct gh_dns_answer *hit = NULL;
    int rc = dns != NULL
                 ? gh_dns_resolve(dns, c->host, strlen(c->host), on_resolved, c, &c->q, &hit)
                 : -ENOMEM;
    if (rc < 0) {
        reply(c, REP_FAIL, "no resolver");
        return -1;
    }
    c->state = S_RESOLVING;
    if (rc == 0)
        on_resolved(c, hit);
    return -1; /* the handshake is over: what follows is the tunnel's */
}

/* Bytes that came with the handshake go to the destination first. */
static void
keep_early_bytes(struct socks *c)
{
    if (c->hs_len == 0 || c->in != NULL || (c->in = gh_buf_get()) == NULL)
        return;
    memcpy(gh_buf_tail(c->in), c->hs, c->hs_len);
    gh_buf_commit(c->in, c->hs_len);
    c->hs_len = 0;
}

static void
advance(struct socks *c)
{
    if (c->state == S_TUNNEL) {
        keep_early_bytes(c);
        struct gh_tunnel_end a = {&c->x, &c->in, &c->out, &c->bytes_down, &c->to_client};
        struct gh_tunnel_end b = {&c->dx, &c->din, &c->dout, &c->bytes_up, &c->to_dest};
        if (gh_tunnel_pump(c->w, &a, &b) == GH_PUMP_ENDED)
            sk_close(c);
        else
            gh_timer_set(c->w->loop, &c->timer,
                         gh_tunnel_deadline(c->w->loop, &c->srv->pc, c->t_start));
        return;
    }
    if (c->state > S_REQUEST)
        return; /* waiting for the resolver or the connect */
    if (!read_hs(c)) {
        sk_close(c);
        return;
    }
    for (;;) {
        int rc = c->state == S_GREETING ? greeting(c) : c->state == S_AUTH ? login(c) : request(c);
        if (rc <= 0)
            break;
    }
    if (c->state != S_CLOSED)
        gh_xprt_watch_writes(c->w->loop, &c->x);
}

static void
on_client(struct gh_io *io, uint32_t events)
{
    struct socks *c = gh_container_of(io, struct socks, x.io);
    if (c->state == S_CLOSED)
        return;
    gh_xprt_on_events(&c->x, events);
    advance(c);
}

static void
on_timer(struct gh_timer *t)
{
    struct socks *c = gh_container_of(t, struct socks, timer);
    sk_close(c); /* a stalled handshake, or an idle tunnel */
}

/* ---- the protocol ---- */

static void
sk_accept(struct gh_worker *w, struct gh_lsock *ls, int fd, const struct sockaddr_storage *peer)
{
    const struct gh_config *cfg = w->cur->cfg;
    const struct gh_listen_conf *lc =
        ls->idx >= 0 && (uint32_t)ls->idx < cfg->n_listeners ? &cfg->listeners[ls->idx] : NULL;
    struct socks *c = lc != NULL ? calloc(1, sizeof(*c)) : NULL;
    if (c == NULL) {
        close(fd);
        return;
    }
    c->addr.family = (uint8_t)peer->ss_family;
    if (peer->ss_family == AF_INET) {
        memcpy(c->addr.ip, &((const struct sockaddr_in *)peer)->sin_addr, 4);
        c->addr.port = ntohs(((const struct sockaddr_in *)peer)->sin_port);
    } else {
        memcpy(c->addr.ip, &((const struct sockaddr_in6 *)peer)->sin6_addr, 16);
        c->addr.port = ntohs(((const struct sockaddr_in6 *)peer)->sin6_port);
    }
    gh_xprt_init(&c->x, fd, on_client, GH_XPRT_CAN_WRITE);
    c->dx.io.fd = -1;
    if (gh_phase_accept(w, &c->addr, lc) != GH_OK) {
        gh_xprt_close(&c->x);
        free(c);
        return;
    }
    c->w = w;
    c->wc = gh_wcfg_use(w->cur);
    c->srv = lc->default_server;
    c->lc = lc;
    c->t_start = gh_loop_now(w->loop);
    c->timer.cb = on_timer;
    if (c->srv->forward == NULL || gh_xprt_watch(w->loop, &c->x, EPOLLIN | EPOLLRDHUP) != 0) {
        gh_phase_conn_closed(w, &c->addr);
        gh_wcfg_drop(w, c->wc);
        gh_xprt_close(&c->x);
        free(c);
        return;
    }
    gh_worker_session_add(w, &c->s, ls, &gh_socks5_proto);
    gh_timer_after(w->loop, &c->timer, c->srv->client_header_timeout_ms);
}

static void
sk_drain(struct gh_session *s)
{
    struct socks *c = gh_container_of(s, struct socks, s);
    if (c->state < S_RESOLVING)
        sk_close(c); /* a handshake; a tunnel runs on until it ends or the deadline */
}

static void
sk_close_session(struct gh_session *s)
{
    sk_close(gh_container_of(s, struct socks, s));
}

const struct gh_proto gh_socks5_proto = {
    .name = "socks5",
    .conn_size = sizeof(struct socks),
    .request_size = 0,
    .accept = sk_accept,
    .drain = sk_drain,
    .close = sk_close_session,
};
