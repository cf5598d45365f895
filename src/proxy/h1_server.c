/*
 * h1_server.c - the HTTP/1.1 server side: one client connection, its request
 * heads read and parsed, its requests one at a time (pipelined ones wait in
 * order), each run as an exchange (its downstream is h1_down.c), keep-alive,
 * pipelining, 100-continue, HTTP/1.0, lingering close, the client-side
 * timers, and the tunnel after 101.
 *
 * Shape (h2o lib/http1.c, nginx): event callbacks (on_event, on_timeout)
 * record readiness and hand over to conn_advance(), which holds the one
 * switch over the connection's state (H1_STATES).
 *
 * Every read lands in the worker's shared scratch buffer; only bytes that
 * cannot be handed on at once are copied into a private buffer (c->in for
 * input kept for later, c->out for output the client has not taken). New
 * output is produced only when the previous output has been written, which
 * is the backpressure: a side that cannot write stops the other side's
 * reads, so memory per connection stays bounded by a few buffers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "net/proxyproto.h"
#include "net/tls.h"
#include "policy/cidr.h"
#include "proxy/accesslog.h"
#include "proxy/h1_conn.h"
#include "proxy/phase.h"
#include "proxy/respond.h"

#define H1_MAX_HEADERS 256   /* the parser's array on the stack; max_headers is capped to it */
#define LINGER_MS 2000       /* a lingering close discards input this long at most */
#define LINGER_READS 16      /* reads per wake-up while lingering */
#define REJECT_SEND_MS 10000 /* a rejected head's answer must be taken within this */

static const char *const state_names[] = {
#define H1_NAME(id, name) name,
    H1_STATES(H1_NAME)
#undef H1_NAME
};

/* Every state change goes through here; sanitizer builds check the predecessor. */
void
gh_h1s_set_state(struct gh_conn *c, enum h1_state to)
{
#ifdef GH_SANITIZE
#define B(s) (1u << H1_##s)
    static const uint8_t from[] = {
        [H1_IDLE] = B(REQUEST) | B(PROXY),
        [H1_HEAD] = B(IDLE),
        [H1_REQUEST] = B(IDLE) | B(HEAD),
        [H1_REJECT] = B(IDLE) | B(HEAD) | B(REQUEST),
        [H1_TUNNEL] = B(REQUEST),
        [H1_LINGER] = B(REQUEST) | B(REJECT),
        [H1_CLOSED] = 0xff,
        [H1_PROXY] = 0, /* only the first state */
    };
#undef B
    if (!(from[to] & (1u << c->state)))
        gh_log_error("h1: state %s -> %s not allowed", state_names[c->state], state_names[to]);
    GH_ASSERT(from[to] & (1u << c->state));
#endif
    (void)state_names;
    c->state = (uint8_t)to;
}

static void conn_advance(struct gh_conn *c);
static void arm_writes(struct gh_conn *c);
static void on_event(struct gh_io *io, uint32_t events);
static void on_timeout(struct gh_timer *t);

static void
client_ip(const struct gh_conn *c, char *ip, size_t cap)
{
    if (gh_client_ip_str(&c->addr, ip, cap) == 0)
        snprintf(ip, cap, "-");
}

/* ------------------------------------------------------------------ */
/* closing                                                            */

void
gh_h1s_stream_end(struct gh_conn *c)
{
    struct h1_stream *s = c->st;
    if (s == NULL)
        return;
    gh_exchange_end(&s->ex);
    c->st = NULL;
    gh_freelist_put(&c->w->req_fl, s);
}

void
gh_h1s_close(struct gh_conn *c)
{
    if (c->state == H1_CLOSED)
        return;
    struct gh_worker *w = c->w;
    gh_h1s_stream_end(c);
    gh_h1s_set_state(c, H1_CLOSED);
    gh_timer_stop(w->loop, &c->timer);
    gh_xprt_close(&c->x);
    gh_buf_put(c->in);
    gh_buf_put(c->out);
    c->in = c->out = NULL;
    gh_phase_conn_closed(w, &c->addr);
    gh_worker_session_remove(w, &c->s);
    gh_loop_defer_free(w->loop, c, gh_worker_free_obj, &w->conn_fl);
}

/* Close after the peer has read what we wrote: shut our side, discard what it
 * still sends for a short while (nginx lingering close), so a response to a
 * rejected request is not destroyed by a TCP reset. */
void
gh_h1s_linger(struct gh_conn *c)
{
    gh_h1s_stream_end(c);
    if (gh_xprt_is(&c->x, GH_XPRT_EOF)) {
        gh_h1s_close(c);
        return;
    }
    gh_xprt_shutdown(&c->x);
    gh_buf_put(c->in);
    c->in = NULL;
    gh_h1s_set_state(c, H1_LINGER);
    gh_timer_after(c->w->loop, &c->timer, LINGER_MS);
    conn_advance(c);
}

static void
session_drain(struct gh_session *s)
{
    struct gh_conn *c = gh_container_of(s, struct gh_conn, s);
    if (c->state == H1_CLOSED)
        return;
    if (c->state == H1_IDLE && (c->in == NULL || gh_buf_len(c->in) == 0) && c->out == NULL)
        gh_h1s_close(c);
    else
        c->flags |= C_CLOSE_AFTER;
}

/* The worker closes every connection left at the drain deadline (or at its exit). */
static void
session_close(struct gh_session *s)
{
    struct gh_conn *c = gh_container_of(s, struct gh_conn, s);
    if (c->st != NULL) {
        c->st->ex.flags |= GH_EX_CUT; /* logged with 444 unless it has a status */
        c->w->st_cut++;
    }
    gh_h1s_close(c);
}

/* ------------------------------------------------------------------ */
/* accepting                                                          */

/* The listener's config (NULL once a reload removed it). */
static const struct gh_listen_conf *
listener_of(const struct gh_conn *c)
{
    const struct gh_config *cfg = c->w->cur->cfg;
    const struct gh_lsock *ls = c->s.ls;
    if (ls == NULL || ls->idx < 0 || (uint32_t)ls->idx >= cfg->n_listeners)
        return NULL;
    return &cfg->listeners[ls->idx];
}

static uint32_t
header_timeout(const struct gh_conn *c)
{
    const struct gh_listen_conf *lc = listener_of(c);
    return lc != NULL ? lc->default_server->client_header_timeout_ms
                      : GH_CONF_DEFAULT_HEADER_TIMEOUT_MS;
}

/* c->addr from a socket address (IPv4 or IPv6). */
static void
set_addr(struct gh_conn *c, const struct sockaddr_storage *peer)
{
    memset(&c->addr, 0, sizeof(c->addr));
    c->addr.family = (uint8_t)peer->ss_family;
    if (peer->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)peer;
        memcpy(c->addr.ip, &s->sin_addr, 4);
        c->addr.port = ntohs(s->sin_port);
    } else if (peer->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)peer;
        memcpy(c->addr.ip, &s->sin6_addr, 16);
        c->addr.port = ntohs(s->sin6_port);
    }
}

/* A PROXY protocol listener: may this connection send the header? (else it is closed unread) */
static bool
proxy_trusted(struct gh_conn *c, const struct gh_listen_conf *lc)
{
    const struct gh_cidr_set *from = lc->default_server->proxy_protocol_from;
    if (from != NULL && gh_cidr_set_find(from, c->addr.family, c->addr.ip) != GH_CIDR_NONE)
        return true;
    char ip[64];
    client_ip(c, ip, sizeof(ip));
    gh_log_info("client %s: not in proxy_protocol_from of %s: connection closed", ip,
                lc->addr.text);
    c->w->st_pp_refused++;
    return false;
}

/* Start the connection's TLS layer when its listener speaks TLS; false when it cannot be had. */
static bool
start_tls(struct gh_conn *c, const struct gh_listen_conf *lc)
{
    return lc == NULL || !lc->tls ||
           (lc->tls_ctx != NULL && gh_tls_accept(&c->x, lc->tls_ctx) == 0);
}

static void
h1_accept(struct gh_worker *w, struct gh_lsock *ls, int fd, const struct sockaddr_storage *peer)
{
    struct gh_conn *c = gh_freelist_get(&w->conn_fl);
    if (c == NULL) {
        struct gh_xprt x;
        gh_xprt_init(&x, fd, NULL, 0);
        gh_xprt_close(&x);
        return;
    }
    memset(c, 0, sizeof(*c));
    gh_xprt_init(&c->x, fd, on_event, GH_XPRT_CAN_WRITE);
    c->timer.cb = on_timeout;
    c->w = w;
    set_addr(c, peer);
    c->s.ls = ls; /* for listener_of until the session is added */
    const struct gh_listen_conf *lc = listener_of(c);
    bool pp = lc != NULL && lc->proxy_protocol;
    c->state = pp ? H1_PROXY : H1_IDLE;
    if (gh_phase_accept(w, &c->addr, lc) != GH_OK) { /* refused: closed unread */
        gh_xprt_close(&c->x);
        gh_freelist_put(&w->conn_fl, c);
        return;
    }
    /* EPOLLOUT is added only once a write falls short (gh_xprt_watch_writes): a
     * socket that always takes what it is given never wakes the loop for writability.
     * Behind a PROXY header, TLS starts once the header is read. */
    if ((pp && !proxy_trusted(c, lc)) || (!pp && !start_tls(c, lc)) ||
        gh_xprt_watch(w->loop, &c->x, EPOLLIN | EPOLLRDHUP) != 0) {
        gh_phase_conn_closed(w, &c->addr);
        gh_xprt_close(&c->x);
        gh_freelist_put(&w->conn_fl, c);
        return;
    }
    gh_worker_session_add(w, &c->s, ls, &gh_h1_proto);
    /* The PROXY header, then the first request's head, must arrive within their timeouts. */
    gh_timer_after(w->loop, &c->timer,
                   pp ? lc->default_server->proxy_protocol_timeout_ms : header_timeout(c));
}

/* The PROXY header failed (why): counted, logged, closed. */
static void
proxy_failed(struct gh_conn *c, const char *why)
{
    char ip[64];
    client_ip(c, ip, sizeof(ip));
    gh_log_info("client %s: %s: connection closed", ip, why);
    c->w->st_pp_bad++;
    gh_h1s_close(c);
}

/*
 * Read the PROXY protocol header that comes first on the connection; the
 * address it gives becomes the client's (a LOCAL or UNKNOWN one keeps the
 * connection's). Then TLS starts if the listener speaks it, and the first
 * head is awaited. Returns GH_AGAIN while the header is incomplete, 0 when the
 * state changed.
 */
static int
conn_read_proxy(struct gh_conn *c)
{
    if (!gh_xprt_is(&c->x, GH_XPRT_CAN_READ | GH_XPRT_RDHUP))
        return GH_AGAIN;
    struct gh_pp_info pi;
    const char *why = NULL;
    int rc = gh_pp_recv(c->x.io.fd, c->w->scratch, GH_BUF_SIZE, &pi, &why);
    if (rc == GH_AGAIN && !gh_xprt_is(&c->x, GH_XPRT_RDHUP)) {
        gh_xprt_clear(&c->x, GH_XPRT_CAN_READ); /* the bytes stay: the next ones wake us */
        return GH_AGAIN;
    }
    if (rc == 0 && why == NULL) { /* closed before a byte: a balancer's TCP check */
        gh_h1s_close(c);
        return 0;
    }
    if (rc <= 0) {
        proxy_failed(c, rc == GH_AGAIN ? "connection closed in the PROXY header"
                        : why != NULL  ? why
                                       : "bad PROXY header");
        return 0;
    }
    if (!pi.local) {
        set_addr(c, &pi.src);
        c->flags |= C_PROXIED;
    }
    if (!start_tls(c, listener_of(c))) {
        gh_h1s_close(c);
        return 0;
    }
    gh_h1s_set_state(c, H1_IDLE);
    gh_timer_after(c->w->loop, &c->timer, header_timeout(c));
    return 0;
}

const struct gh_proto gh_h1_proto = {"http/1.1", sizeof(struct gh_conn), sizeof(struct h1_stream),
                                     h1_accept,  session_drain,          session_close};

/* ------------------------------------------------------------------ */
/* answers to heads that never became a request                        */

/*
 * Answer with status and close (the head was bad, or timed out, or no request
 * object could be had). The answer is queued; conn_advance writes it.
 */
static void
conn_reject(struct gh_conn *c, int status, const char *p, size_t n)
{
    struct gh_worker *w = c->w;
    if (c->out == NULL && (c->out = gh_buf_get()) == NULL) {
        gh_h1s_close(c);
        return;
    }
    size_t room = gh_buf_reserve(c->out, GH_BUF_SIZE);
    size_t hlen = 0;
    size_t len = gh_respond_reject(gh_buf_tail(c->out), room, status, gh_loop_wall(w->loop), &hlen);
    if (len == 0) {
        gh_h1s_close(c);
        return;
    }
    gh_buf_commit(c->out, len);
    gh_h1s_set_state(c, H1_REJECT);
    /* the access log has a line for it, with the head's first line as the request */
    gh_alog_rejected(w, &c->addr, listener_of(c), status, p, n, c->t_first, len, (uint32_t)hlen);
}

static void
head_error(struct gh_conn *c, const struct gh_h1_request *pr, const char *p, size_t n)
{
    char ip[64];
    client_ip(c, ip, sizeof(ip));
    int status = pr->err.status ? pr->err.status : 400;
    gh_log_info("client %s: %d: %s (at byte %u)", ip, status,
                pr->err.reason ? pr->err.reason : "bad request", pr->err.offset);
    conn_reject(c, status, p, n);
}

/* ------------------------------------------------------------------ */
/* starting a request                                                 */

static void
send_continue(struct h1_stream *s)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct gh_conn *c = s->c;
    struct iovec iov = {(void *)cont, sizeof(cont) - 1};
    ssize_t n = gh_xprt_sendv(&c->x, &iov, 1, iov.iov_len);
    if (n < 0 || ((size_t)n < iov.iov_len && gh_buf_stash(&c->out, &iov, 1, (size_t)n) != 0)) {
        gh_h1s_close(c);
        return;
    }
    if (c->out != NULL)
        s->ex.flags |= GH_EX_OUT_QUEUED;
}

/*
 * A complete request head is in pr (its slices may point into the shared
 * scratch buffer: everything needed from them is copied before this returns).
 * Start its exchange.
 */
static void
request_start(struct gh_conn *c, const struct gh_h1_request *pr, const char *raw, size_t raw_len)
{
    struct gh_worker *w = c->w;
    struct h1_stream *s = gh_freelist_get(&w->req_fl);
    if (s == NULL) {
        conn_reject(c, 503, NULL, 0);
        return;
    }
    /* the exchange part is cleared by gh_exchange_init, the rest here */
    s->c = c;
    s->req_remaining = s->req_bytes = 0;
    s->sent_mark = UINT64_MAX; /* the first wait on the client always arms send_timeout */
    s->head_len = 0;
    s->req_body = GH_H1_BODY_NONE;
    s->sflags = pr->version == 10 ? S_CLIENT_10 : 0;
    c->st = s;
    gh_h1s_set_state(c, H1_REQUEST);
    uint64_t now = gh_loop_now(w->loop);
    struct gh_exchange *ex = &s->ex;
    gh_exchange_init(ex, &gh_h1_down, w, &c->addr, &c->x, c->t_first ? c->t_first : now);
    if (c->flags & C_PROXIED)
        ex->flags |= GH_EX_PROXIED;

    struct gh_request req = {.method = pr->method,
                             .method_len = pr->method_len,
                             .method_id = pr->method_id,
                             .target_form = pr->target_form,
                             .version = pr->version,
                             .h1flags = pr->flags,
                             .target = pr->target,
                             .target_len = pr->target_len,
                             .host = pr->host,
                             .host_len = pr->host_len,
                             .fields = pr->headers,
                             .n_fields = pr->num_headers,
                             .listener = listener_of(c),
                             .raw = raw,
                             .raw_len = (uint32_t)raw_len};
    /* RFC 9112 §6.3: how the body is delimited */
    if (pr->flags & GH_H1_F_CHUNKED) {
        s->req_body = GH_H1_BODY_CHUNKED;
        gh_h1_chunked_init(&s->req_chunk);
    } else if (pr->content_length > 0) {
        s->req_body = GH_H1_BODY_LENGTH;
        s->req_remaining = (uint64_t)pr->content_length;
    } else if (pr->flags & GH_H1_F_HAS_CL) {
        s->req_body = GH_H1_BODY_LENGTH; /* Content-Length: 0 is forwarded as such */
    }
    req.body = s->req_body;
    req.content_length = s->req_remaining;
    if (s->req_body == GH_H1_BODY_NONE ||
        (s->req_body == GH_H1_BODY_LENGTH && s->req_remaining == 0))
        ex->flags |= GH_EX_REQ_DONE;
    if ((pr->flags & GH_H1_F_EXPECT_CONTINUE) && pr->version == 11 && !(ex->flags & GH_EX_REQ_DONE))
        s->sflags |= S_EXPECT;
    if ((pr->flags & GH_H1_F_UPGRADE) && (pr->flags & GH_H1_F_CONN_UPGRADE) && pr->version == 11)
        ex->flags |= GH_EX_UPGRADE;

    gh_exchange_start(ex, &req);

    /* keep-alive (RFC 9112 §9.3), within the server's limits */
    const struct gh_server_conf *srv = ex->srv;
    bool ka = pr->version == 11 ? !(pr->flags & GH_H1_F_CONN_CLOSE)
                                : (pr->flags & GH_H1_F_CONN_KEEPALIVE) != 0;
    if (srv == NULL || srv->keepalive_timeout_ms == 0 || c->nreq + 1 >= srv->keepalive_requests ||
        w->stopping || (c->flags & C_CLOSE_AFTER))
        ka = false;
    if (ka)
        s->sflags |= S_KEEPALIVE;
    /* the origin will read the body: let the client send it */
    if ((s->sflags & S_EXPECT) && ex->src->take_body != NULL &&
        !(ex->flags & (GH_EX_FAILED | GH_EX_RESP_STARTED)))
        send_continue(s);
}

/* ------------------------------------------------------------------ */
/* reading request heads                                              */

static struct gh_h1_limits
head_limits(const struct gh_conn *c)
{
    const struct gh_listen_conf *lc = listener_of(c);
    struct gh_h1_limits lim = {GH_CONF_DEFAULT_MAX_REQUEST_LINE, GH_CONF_DEFAULT_MAX_HEADER_LINE,
                               GH_CONF_DEFAULT_MAX_HEADERS, GH_CONF_DEFAULT_MAX_HEAD_SIZE};
    if (lc != NULL) {
        const struct gh_server_conf *s = lc->default_server;
        lim.max_request_line = s->max_request_line;
        lim.max_header_line = s->max_header_line;
        lim.max_headers = GH_MIN(s->max_headers, (uint32_t)H1_MAX_HEADERS);
        lim.max_head_size = GH_MIN(s->max_head_size, (uint32_t)GH_BUF_SIZE);
    }
    return lim;
}

/* Append what the socket has to c->in. Returns > 0 bytes read, GH_AGAIN, or 0
 * when the connection was closed (EOF or error) or the head cannot fit. */
static ssize_t
head_read_more(struct gh_conn *c)
{
    size_t room = gh_buf_reserve(c->in, GH_BUF_SIZE);
    if (room == 0)
        return 0;
    ssize_t rd = gh_xprt_recv(&c->x, gh_buf_tail(c->in), room);
    if (rd == GH_AGAIN)
        return GH_AGAIN;
    if (rd <= 0)
        return 0;
    gh_buf_commit(c->in, (size_t)rd);
    return rd;
}

/*
 * The bytes to parse a head from: c->in when it holds some (reading more into
 * it only when nothing new could complete a line), else a fresh read into the
 * scratch. Returns 1 with *p, *n and *from_buf set, GH_AGAIN, or 0 when the
 * connection was closed here.
 */
static int
head_input(struct gh_conn *c, const struct gh_h1_limits *lim, const char **p, size_t *n,
           int *from_buf)
{
    for (;;) {
        *from_buf = c->in != NULL && gh_buf_len(c->in) > 0;
        if (!*from_buf) {
            if (!gh_xprt_is(&c->x, GH_XPRT_CAN_READ)) {
                if (gh_xprt_is(&c->x, GH_XPRT_EOF)) {
                    gh_h1s_close(c);
                    return 0;
                }
                return GH_AGAIN;
            }
            ssize_t rd = gh_xprt_recv(&c->x, c->w->scratch, GH_BUF_SIZE);
            if (rd == GH_AGAIN)
                return GH_AGAIN;
            if (rd <= 0) {
                gh_h1s_close(c);
                return 0;
            }
            *p = c->w->scratch;
            *n = (size_t)rd;
            return 1;
        }
        *p = gh_buf_head(c->in);
        *n = gh_buf_len(c->in);
        if (c->scanned == 0 || c->scanned > *n || *n > lim->max_head_size ||
            memchr(*p + c->scanned, '\n', *n - c->scanned) != NULL)
            return 1;
        /* nothing new that could complete a line */
        if (gh_xprt_is(&c->x, GH_XPRT_EOF)) {
            gh_h1s_close(c);
            return 0;
        }
        if (!gh_xprt_is(&c->x, GH_XPRT_CAN_READ))
            return GH_AGAIN;
        ssize_t rd = head_read_more(c);
        if (rd == GH_AGAIN)
            return GH_AGAIN;
        if (rd == 0 && gh_buf_reserve(c->in, 1) > 0) {
            gh_h1s_close(c);
            return 0;
        }
        if (rd == 0)
            c->scanned = 0; /* buffer full: let the parser give its verdict */
    }
}

/*
 * Read and parse a request head; start the request when it is complete.
 * Returns GH_AGAIN when waiting for bytes, 0 when the state changed.
 *
 * The parser re-reads an incomplete head from its start, so a head is parsed
 * again only when bytes that could end a line have arrived (c->scanned marks
 * what the last parse saw): a client dripping a byte at a time costs one parse
 * per line, not one per byte.
 */
static int
conn_read_head(struct gh_conn *c)
{
    struct gh_h1_header hdrs[H1_MAX_HEADERS];
    struct gh_h1_limits lim = head_limits(c);
    for (;;) {
        const char *p;
        size_t n;
        int from_buf;
        int rc = head_input(c, &lim, &p, &n, &from_buf);
        if (rc != 1)
            return rc;
        if (c->state == H1_IDLE) {
            gh_h1s_set_state(c, H1_HEAD);
            c->t_first = gh_loop_now(c->w->loop);
            gh_timer_after(c->w->loop, &c->timer, header_timeout(c));
        }
        struct gh_h1_request pr;
        pr.headers = hdrs;
        pr.max_headers = lim.max_headers;
        rc = gh_h1_parse_request(p, n, &pr, &lim);
        if (rc == GH_INCOMPLETE) {
            if (!from_buf) {
                struct iovec iov = {(void *)p, n};
                if (gh_buf_stash(&c->in, &iov, 1, 0) != 0) {
                    gh_h1s_close(c);
                    return 0;
                }
            }
            if (gh_buf_len(c->in) >= GH_BUF_SIZE) {
                pr.err.status = 431;
                pr.err.reason = "request head larger than the buffer";
                pr.err.offset = (uint32_t)gh_buf_len(c->in);
                head_error(c, &pr, gh_buf_head(c->in), gh_buf_len(c->in));
                return 0;
            }
            c->scanned = (uint32_t)gh_buf_len(c->in);
            continue;
        }
        c->scanned = 0;
        if (rc < 0) {
            head_error(c, &pr, p, n);
            return 0;
        }
        /* a complete head of rc bytes at p */
        size_t hlen = (size_t)rc;
        if (!from_buf && hlen < n) {
            /* body bytes or pipelined requests behind the head: keep them */
            struct iovec iov = {(void *)(p + hlen), n - hlen};
            if (gh_buf_stash(&c->in, &iov, 1, 0) != 0) {
                gh_h1s_close(c);
                return 0;
            }
            request_start(c, &pr, p, hlen);
        } else {
            request_start(c, &pr, p, hlen);
            if (from_buf && c->in != NULL) {
                /* the head's slices were used by request_start; now drop the head */
                gh_buf_consume(c->in, hlen);
                if (gh_buf_len(c->in) == 0) {
                    gh_buf_put(c->in);
                    c->in = NULL;
                }
            }
        }
        return 0;
    }
}

/* ------------------------------------------------------------------ */
/* timers while a request runs                                        */

/* Is the exchange waiting for the client's request body (the source would take more)? */
static bool
waits_for_body(struct gh_exchange *ex)
{
    return !(ex->flags & (GH_EX_REQ_DONE | GH_EX_RESP_DONE)) && ex->src->wants_body != NULL &&
           ex->src->wants_body(ex) && (ex->req_pipe == NULL || ex->req_pipe->len == 0);
}

/*
 * When the body's wait ends: client_body_timeout from now, or earlier, when the
 * average rate since the head (past its grace) would fall below
 * client_body_min_rate with no more bytes: B bytes at R a second last until
 * head + B / R. 0 when that moment has passed.
 */
static uint64_t
body_wait_ms(const struct h1_stream *s, uint64_t now)
{
    const struct gh_proxy_conf *pc = s->ex.pc;
    uint64_t ms = pc->client_body_timeout_ms;
    if (pc->client_body_min_rate == 0)
        return ms;
    uint64_t until = s->ex.t_head + GH_MAX((uint64_t)pc->client_body_min_rate_grace_ms,
                                           s->req_bytes * 1000 / pc->client_body_min_rate);
    return until <= now ? 0 : GH_MIN(ms, until - now);
}

/* Is the body below client_body_min_rate (its wait ended before client_body_timeout)? */
static bool
body_too_slow(const struct h1_stream *s, uint64_t now)
{
    return s->ex.pc->client_body_min_rate != 0 && body_wait_ms(s, now) == 0;
}

static void
request_arm_timers(struct h1_stream *s)
{
    struct gh_conn *c = s->c;
    struct gh_exchange *ex = &s->ex;
    struct gh_loop *l = c->w->loop;
    if (c->out != NULL || (ex->resp_pipe != NULL && ex->resp_pipe->len > 0)) {
        /* send_timeout runs from the last write that reached the client: other
         * events (the client sending bytes while not reading) must not renew it */
        uint64_t written = ex->bytes_out - (c->out != NULL ? gh_buf_len(c->out) : 0);
        if (written != s->sent_mark) {
            s->sent_mark = written;
            gh_timer_after(l, &c->timer, ex->pc->send_timeout_ms);
        }
    } else if (waits_for_body(ex)) {
        gh_timer_after(l, &c->timer, body_wait_ms(s, gh_loop_now(l)));
    }
    /* otherwise the timer keeps its older deadline; on_timeout re-checks what it
     * guards, so no heap work is spent per request here */
}

/*
 * The client stopped reading what was sent. Reset rather than close: a close
 * would leave the kernel holding (and retrying) up to a socket buffer of
 * response for a peer that does not read it, the slow-reader attack (nginx:
 * reset_timedout_connection).
 */
static void
reset_slow_reader(struct gh_conn *c)
{
    char ip[64];
    client_ip(c, ip, sizeof(ip));
    gh_log_info("client %s: response not read within send_timeout: connection reset", ip);
    c->w->st_slow_read++;
    gh_xprt_reset(&c->x);
    gh_h1s_close(c);
}

static void
request_timeout(struct gh_conn *c)
{
    struct h1_stream *s = c->st;
    struct gh_exchange *ex = &s->ex;
    if (c->out != NULL || (ex->resp_pipe != NULL && ex->resp_pipe->len > 0)) {
        reset_slow_reader(c);
        return;
    }
    if (waits_for_body(ex)) {
        c->w->st_slow_body++;
        const char *why = body_too_slow(s, gh_loop_now(c->w->loop))
                              ? "request body slower than client_body_min_rate"
                              : "request body not received in time";
        if (gh_exchange_fail(ex, 408, why) != GH_PUMP_ENDED) {
            conn_advance(c);
            arm_writes(c);
        }
        return;
    }
    /* waiting for the origin, whose own timers guard this phase */
    gh_timer_after(c->w->loop, &c->timer, ex->pc->client_body_timeout_ms);
}

/* ------------------------------------------------------------------ */
/* the connection driver                                              */

static void
tunnel_advance(struct gh_conn *c)
{
    struct gh_exchange *ex = &c->st->ex;
    /* what the client takes counts as sent to it ($bytes_sent, $body_bytes_sent) */
    struct gh_tunnel_end a = {&c->x, &c->in, &c->out, &ex->bytes_out, &ex->resp_pipe}, b = {0};
    bool ok = ex->src->tunnel_end != NULL && ex->src->tunnel_end(ex, &b) == 0;
    b.pipe = &ex->req_pipe; /* the exchange's pipes carry the tunnel's bytes both ways */
    if (!ok || gh_tunnel_pump(c->w, &a, &b) == GH_PUMP_ENDED) {
        gh_h1s_close(c); /* the log line is written as the exchange ends */
        return;
    }
    gh_timer_set(c->w->loop, &c->timer, gh_tunnel_deadline(c->w->loop, ex->pc, ex->t_start));
}

static void
conn_advance(struct gh_conn *c)
{
    /* Each turn either waits (returns) or moves a request forward; pipelined
     * requests are bounded by what the client sends and by its reading of our
     * answers (c->out stops us), so the loop needs no iteration cap. */
    for (;;) {
        switch ((enum h1_state)c->state) {
        case H1_CLOSED:
            return;
        case H1_IDLE:
        case H1_HEAD:
            if ((c->flags & C_CLOSE_AFTER) && c->state == H1_IDLE &&
                (c->in == NULL || gh_buf_len(c->in) == 0)) {
                gh_h1s_close(c);
                return;
            }
            if (conn_read_head(c) == GH_AGAIN)
                return;
            break;
        case H1_PROXY:
            if (conn_read_proxy(c) == GH_AGAIN)
                return;
            break;
        case H1_REQUEST:
            if (gh_exchange_advance(&c->st->ex) == GH_PUMP_BLOCKED) {
                request_arm_timers(c->st);
                return;
            }
            break;
        case H1_REJECT: {
            /* an answer without an exchange: write it, then close */
            int rc = gh_xprt_flush(&c->x, &c->out);
            if (rc == GH_AGAIN) {
                gh_timer_after(c->w->loop, &c->timer, REJECT_SEND_MS);
                return;
            }
            if (rc < 0)
                gh_h1s_close(c);
            else
                gh_h1s_linger(c);
            return;
        }
        case H1_TUNNEL:
            tunnel_advance(c);
            return;
        case H1_LINGER:
            for (int i = 0; i < LINGER_READS; i++) {
                if (!gh_xprt_is(&c->x, GH_XPRT_CAN_READ))
                    return;
                ssize_t rd = gh_xprt_recv(&c->x, c->w->scratch, GH_BUF_SIZE);
                if (rd == GH_AGAIN)
                    return;
                if (rd <= 0)
                    break;
            }
            gh_h1s_close(c);
            return;
        }
    }
}

void
gh_h1s_resume(struct gh_conn *c)
{
    conn_advance(c);
    arm_writes(c);
}

/* After a turn of work: a side whose last write fell short needs EPOLLOUT to learn when to go on
 * (the origin's side is armed by the origin source). */
static void
arm_writes(struct gh_conn *c)
{
    if (c->state != H1_CLOSED)
        gh_xprt_watch_writes(c->w->loop, &c->x);
}

static void
on_event(struct gh_io *io, uint32_t events)
{
    struct gh_conn *c = gh_container_of(io, struct gh_conn, x.io);
    if (c->state == H1_CLOSED)
        return;
    gh_xprt_on_events(&c->x, events);
    if ((events & (EPOLLHUP | EPOLLERR)) && c->state == H1_REQUEST &&
        (c->st->ex.flags & GH_EX_REQ_DONE) && !(c->st->ex.flags & GH_EX_RESP_STARTED)) {
        /* The client reset (or fully closed) while its request waits on the origin:
         * nobody will read the answer, so free the origin connection now rather than
         * after first_byte_timeout, as nginx does by default (a plain FIN is still
         * served: that is EPOLLRDHUP alone). */
        c->st->ex.status = 499;
        gh_h1s_close(c);
        return;
    }
    conn_advance(c);
    arm_writes(c);
}

static void
on_timeout(struct gh_timer *t)
{
    struct gh_conn *c = gh_container_of(t, struct gh_conn, timer);
    switch ((enum h1_state)c->state) {
    case H1_CLOSED:
        return;
    case H1_IDLE:
    case H1_LINGER:
        gh_h1s_close(c);
        return;
    case H1_HEAD: {
        char ip[64];
        client_ip(c, ip, sizeof(ip));
        gh_log_info("client %s: 408: request head not received in time", ip);
        c->w->st_slow_head++;
        const char *p = c->in != NULL ? gh_buf_head(c->in) : NULL;
        size_t n = c->in != NULL ? gh_buf_len(c->in) : 0;
        conn_reject(c, 408, p, n);
        if (c->state != H1_REJECT)
            return;
        gh_buf_put(c->in);
        c->in = NULL;
        break;
    }
    case H1_REQUEST:
        request_timeout(c);
        return;
    case H1_REJECT:
        reset_slow_reader(c);
        return;
    case H1_TUNNEL:
        gh_h1s_close(c);
        return;
    case H1_PROXY:
        proxy_failed(c, "PROXY header not received within proxy_protocol_timeout");
        return;
    }
    conn_advance(c);
    arm_writes(c);
}
