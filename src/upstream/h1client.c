/*
 * h1client.c - the HTTP/1.1 client to origins.
 */
#include "upstream/h1client.h"

#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "http/h1_write.h"
#include "net/sock.h"
#include "net/tls.h"

/* Header lines a response may have (the parser's array on the stack). */
#define RESP_MAX_HEADERS 256
/* Longest status line accepted from an origin. */
#define RESP_MAX_STATUS_LINE 16384
/* Room kept for a close-delimited body re-framed as one chunk per write
 * (a chunked one keeps GH_H1_OUT_RESERVE). */
#define CLOSE_RESERVE 32
/* Idle pooled connections closed when a connect finds no file descriptor. */
#define FD_TRIM 16

static const char *const state_names[] = {
#define GH_UPCONN_NAME(id, name) name,
    GH_UPCONN_STATES(GH_UPCONN_NAME)
#undef GH_UPCONN_NAME
};

const char *
gh_upconn_state_name(enum gh_upconn_state s)
{
    return (unsigned)s < GH_ARRAY_LEN(state_names) ? state_names[s] : "?";
}

/* The allowed predecessors of each state (checked in sanitizer builds). */
static void
set_state(struct gh_upconn *u, enum gh_upconn_state to)
{
#ifdef GH_SANITIZE
    static const uint8_t from[] = {
        [GH_UPCONN_CONNECTING] = 0,
        [GH_UPCONN_ACTIVE] = 1u << GH_UPCONN_CONNECTING | 1u << GH_UPCONN_IDLE,
        [GH_UPCONN_IDLE] = 1u << GH_UPCONN_ACTIVE,
        [GH_UPCONN_CLOSED] =
            1u << GH_UPCONN_CONNECTING | 1u << GH_UPCONN_ACTIVE | 1u << GH_UPCONN_IDLE,
    };
    GH_ASSERT(from[to] & (1u << u->state));
#endif
    u->state = (uint8_t)to;
}

static void on_io(struct gh_io *io, uint32_t events);
static void on_timer(struct gh_timer *t);

static void
free_upconn(void *fl, void *obj)
{
    gh_freelist_put(fl, obj);
}

void
gh_upconn_close(struct gh_upconn *u)
{
    if (u->state == GH_UPCONN_CLOSED)
        return;
    struct gh_upstream_ctx *ctx = u->ctx;
    if (u->state == GH_UPCONN_IDLE) {
        struct gh_peer *p = u->peer;
        if (u->pool_prev != NULL)
            u->pool_prev->pool_next = u->pool_next;
        else
            p->idle = u->pool_next;
        if (u->pool_next != NULL)
            u->pool_next->pool_prev = u->pool_prev;
        u->pool_prev = u->pool_next = NULL;
        p->n_idle--;
    }
    set_state(u, GH_UPCONN_CLOSED);
    gh_timer_stop(ctx->loop, &u->timer);
    gh_xprt_close(&u->x);
    gh_buf_put(u->in);
    gh_buf_put(u->out);
    u->in = u->out = NULL;
    u->ops = NULL;
    u->owner = NULL;
    u->head = NULL;
    ctx->n_conns--;
    gh_peer_put(ctx, u->peer);
    u->peer = NULL;
    gh_loop_defer_free(ctx->loop, u, free_upconn, &ctx->conn_fl);
}

/* Per-request state starts over (a pooled connection is reused). */
static void
attach(struct gh_upconn *u, const struct gh_upconn_params *p, const struct gh_upconn_ops *ops,
       void *owner)
{
    u->ops = ops;
    u->owner = owner;
    u->p = *p;
    u->head = NULL;
    u->head_len = u->head_sent = 0;
    u->resp_remaining = 0;
    u->resp_body = GH_H1_BODY_NONE;
    u->t_first_byte = 0;
    u->err = (struct gh_upconn_err){0, false, NULL};
    u->flags &= GH_UPCONN_REUSED;
}

static struct gh_upconn *
pool_take(struct gh_upstream_ctx *ctx, struct gh_peer *peer)
{
    struct gh_upconn *u = peer->idle;
    if (u == NULL)
        return NULL;
    peer->idle = u->pool_next;
    if (peer->idle != NULL)
        peer->idle->pool_prev = NULL;
    u->pool_next = NULL;
    peer->n_idle--;
    set_state(u, GH_UPCONN_ACTIVE);
    u->flags = GH_UPCONN_REUSED;
    /* an idle socket had nothing to read, or the pool would have closed it */
    gh_xprt_clear(&u->x, GH_XPRT_CAN_READ);
    gh_xprt_set(&u->x, GH_XPRT_CAN_WRITE);
    u->t_connected = gh_loop_now(ctx->loop);
    /* the timer keeps its pool deadline: the request re-arms it (lazily, no heap work) */
    return u;
}

/* A new connection on fd (connecting, or connected already: either way its first EPOLLOUT
 * completes the connect). Closes fd on failure. */
static int
conn_new(struct gh_upstream_ctx *ctx, struct gh_peer *peer, int fd, const struct gh_tls_client *tls,
         const struct gh_upconn_params *p, const struct gh_upconn_ops *ops, void *owner,
         struct gh_upconn **out)
{
    struct gh_upconn *u = gh_freelist_get(&ctx->conn_fl);
    if (u == NULL) {
        close(fd);
        return -ENOMEM;
    }
    memset(u, 0, sizeof(*u));
    gh_xprt_init(&u->x, fd, on_io, 0);
    if (tls != NULL && gh_tls_connect(&u->x, tls->ctx, tls->name, &peer->tls_sess) != 0) {
        gh_xprt_close(&u->x);
        gh_freelist_put(&ctx->conn_fl, u);
        return -ENOMEM;
    }
    u->timer.cb = on_timer;
    u->ctx = ctx;
    u->state = GH_UPCONN_CONNECTING;
    /* connect completion is EPOLLOUT */
    int rc = gh_xprt_watch(ctx->loop, &u->x, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    if (rc != 0) {
        gh_log_error("cannot watch an upstream socket: %s", strerror(-rc));
        gh_xprt_close(&u->x);
        gh_freelist_put(&ctx->conn_fl, u);
        return -ENOMEM;
    }
    peer->refs++;
    u->peer = peer;
    ctx->n_conns++;
    attach(u, p, ops, owner);
    gh_timer_after(ctx->loop, &u->timer, p->connect_ms);
    *out = u;
    return 0;
}

int
gh_upconn_open(struct gh_upstream_ctx *ctx, struct gh_peer *peer, const struct sockaddr_storage *ss,
               socklen_t len, const struct gh_tls_client *tls, bool fresh,
               const struct gh_upconn_params *p, const struct gh_upconn_ops *ops, void *owner,
               struct gh_upconn **out)
{
    struct gh_upconn *u = fresh ? NULL : pool_take(ctx, peer);
    if (u != NULL) {
        attach(u, p, ops, owner);
        *out = u;
        return 0;
    }
    int fd = gh_sock_connect((const struct sockaddr *)ss, len);
    if ((fd == -EMFILE || fd == -ENFILE) && gh_upstream_trim_idle(ctx, FD_TRIM) > 0)
        fd = gh_sock_connect((const struct sockaddr *)ss, len); /* idle ones gave theirs */
    if (fd < 0)
        return fd;
    return conn_new(ctx, peer, fd, tls, p, ops, owner, out);
}

int
gh_upconn_adopt(struct gh_upstream_ctx *ctx, struct gh_peer *peer, int fd,
                const struct gh_upconn_params *p, const struct gh_upconn_ops *ops, void *owner,
                struct gh_upconn **out)
{
    return conn_new(ctx, peer, fd, NULL, p, ops, owner, out);
}

int
gh_upconn_connect_result(struct gh_upconn *u)
{
    return u->state == GH_UPCONN_CONNECTING ? u->connect_errno : 0;
}

static void
on_io(struct gh_io *io, uint32_t events)
{
    struct gh_upconn *u = gh_container_of(io, struct gh_upconn, x.io);
    switch (u->state) {
    case GH_UPCONN_CLOSED:
        return;
    case GH_UPCONN_IDLE:
        /* an idle pooled connection became readable: the origin closed it, or sent
         * bytes nobody asked for; either way it can no longer be trusted */
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            gh_upconn_close(u);
        return;
    case GH_UPCONN_CONNECTING: {
        gh_xprt_on_events(&u->x, events);
        if (!(events & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
            return;
        int err = gh_xprt_connect_error(&u->x);
        if (err != 0) {
            u->connect_errno = err;
        } else {
            set_state(u, GH_UPCONN_ACTIVE);
            gh_xprt_set(&u->x, GH_XPRT_CAN_WRITE);
            u->t_connected = gh_loop_now(u->ctx->loop);
            if (u->x.layer != NULL) { /* the handshake is part of connecting, as in nginx */
                u->flags |= GH_UPCONN_TLS_HS;
                gh_timer_after(u->ctx->loop, &u->timer, u->p.connect_ms);
            } else {
                gh_timer_after(u->ctx->loop, &u->timer, u->p.first_byte_ms);
            }
        }
        break;
    }
    case GH_UPCONN_ACTIVE:
        gh_xprt_on_events(&u->x, events);
        break;
    }
    u->ops->on_event(u);
}

static void
on_timer(struct gh_timer *t)
{
    struct gh_upconn *u = gh_container_of(t, struct gh_upconn, timer);
    switch (u->state) {
    case GH_UPCONN_CLOSED:
        return;
    case GH_UPCONN_IDLE:
        gh_upconn_close(u);
        return;
    case GH_UPCONN_CONNECTING:
        u->ops->on_timeout(u, GH_UPCONN_T_CONNECT);
        return;
    case GH_UPCONN_ACTIVE:
        if (u->flags & GH_UPCONN_TLS_HS) {
            u->ops->on_timeout(u, GH_UPCONN_T_CONNECT);
            return;
        }
        u->ops->on_timeout(u, (u->flags & GH_UPCONN_GOT_BYTE) ? GH_UPCONN_T_READ
                                                              : GH_UPCONN_T_FIRST_BYTE);
        return;
    }
}

void
gh_upconn_rearm(struct gh_upconn *u, enum gh_upconn_timer which)
{
    uint32_t ms = which == GH_UPCONN_T_CONNECT      ? u->p.connect_ms
                  : which == GH_UPCONN_T_FIRST_BYTE ? u->p.first_byte_ms
                                                    : u->p.read_ms;
    gh_timer_after(u->ctx->loop, &u->timer, ms);
}

/* ---- request ---- */

void
gh_upconn_start(struct gh_upconn *u, const char *head, size_t len, bool body_follows)
{
    u->head = head;
    u->head_len = (uint32_t)len;
    u->head_sent = 0;
    u->flags &= (uint16_t) ~(GH_UPCONN_HEAD_SENT | GH_UPCONN_REQ_DONE);
    if (!body_follows)
        u->flags |= GH_UPCONN_REQ_DONE;
}

void
gh_upconn_body_moved(struct gh_upconn *u)
{
    /* first_byte_timeout counts from the last request bytes, not from the head:
     * an upload slower than the timeout is not the origin failing to answer.
     * A lazy timer push, no heap work. */
    if (!(u->flags & GH_UPCONN_GOT_BYTE))
        gh_timer_after(u->ctx->loop, &u->timer, u->p.first_byte_ms);
}

int
gh_upconn_send(struct gh_upconn *u)
{
    int progress = GH_PUMP_BLOCKED;
    if (!(u->flags & GH_UPCONN_HEAD_SENT)) {
        if (!gh_xprt_is(&u->x, GH_XPRT_CAN_WRITE))
            return GH_PUMP_BLOCKED;
        struct iovec iov = {(char *)u->head + u->head_sent, u->head_len - u->head_sent};
        ssize_t n = gh_xprt_sendv(&u->x, &iov, 1, iov.iov_len);
        if (n < 0)
            return (int)n;
        u->head_sent += (uint32_t)n;
        if (u->head_sent < u->head_len)
            return n > 0 ? GH_PUMP_MOVED : GH_PUMP_BLOCKED;
        u->flags = (u->flags | GH_UPCONN_HEAD_SENT) & (uint16_t)~GH_UPCONN_TLS_HS;
        progress = GH_PUMP_MOVED;
        gh_timer_after(u->ctx->loop, &u->timer, u->p.first_byte_ms);
    }
    if (u->out != NULL) {
        size_t before = gh_buf_len(u->out);
        int rc = gh_xprt_flush(&u->x, &u->out);
        if (rc == GH_AGAIN) {
            if (gh_buf_len(u->out) < before)
                gh_upconn_body_moved(u);
            return progress;
        }
        if (rc < 0)
            return rc;
        progress = GH_PUMP_MOVED;
        gh_upconn_body_moved(u);
    }
    return progress;
}

void
gh_upconn_abandon_request(struct gh_upconn *u)
{
    /* it may have answered already (413, 401...): stop sending, read what it said */
    u->flags |= GH_UPCONN_ABANDONED;
    u->flags &= (uint16_t)~GH_UPCONN_REUSABLE;
    gh_xprt_set(&u->x, GH_XPRT_CAN_READ);
    gh_buf_put(u->out);
    u->out = NULL;
}

int
gh_upconn_send_body(struct gh_upconn *u, const struct iovec *spans, int n, bool last)
{
    int chunked = u->p.req_body == GH_H1_BODY_CHUNKED;
    struct gh_h1_out o;
    gh_h1_out_init(&o);
    gh_h1_out_data(&o, spans, n, chunked);
    if (last) {
        if (chunked)
            gh_h1_out_add(&o, GH_H1W_LAST_CHUNK, sizeof(GH_H1W_LAST_CHUNK) - 1);
        u->flags |= GH_UPCONN_REQ_DONE;
    }
    if (o.total == 0)
        return 0;
    ssize_t wn = gh_xprt_sendv(&u->x, o.iov, o.cnt, o.total);
    if (wn < 0) {
        gh_upconn_abandon_request(u);
        return (int)wn;
    }
    u->flags |= GH_UPCONN_BODY_SENT;
    if (wn > 0)
        gh_upconn_body_moved(u);
    if ((size_t)wn < o.total && gh_buf_stash(&u->out, o.iov, o.cnt, (size_t)wn) != 0)
        return -ENOMEM;
    return 0;
}

/* ---- response ---- */

static int
fail(struct gh_upconn *u, uint16_t status, bool before_response, const char *reason)
{
    u->err = (struct gh_upconn_err){status, before_response, reason};
    return GH_BAD;
}

/* A final head arrived: how its body is delimited, and whether the connection may be kept. */
static void
resp_framing(struct gh_upconn *u, const struct gh_h1_response *rs)
{
    int reusable = rs->version == 11 ? !(rs->flags & GH_H1_F_CONN_CLOSE)
                                     : (rs->flags & GH_H1_F_CONN_KEEPALIVE) != 0;
    if (u->p.head_request || rs->status == 204 || rs->status == 304 ||
        (rs->status >= 100 && rs->status < 200)) {
        u->resp_body = GH_H1_BODY_NONE;
    } else if (rs->flags & GH_H1_F_CHUNKED) {
        u->resp_body = GH_H1_BODY_CHUNKED;
        gh_h1_chunked_init(&u->resp_chunk);
    } else if (rs->flags & GH_H1_F_HAS_CL) {
        u->resp_body = GH_H1_BODY_LENGTH;
        u->resp_remaining = (uint64_t)rs->content_length;
    } else {
        u->resp_body = GH_H1_BODY_CLOSE;
        reusable = 0;
    }
    /* after a 101 the connection belongs to the new protocol */
    if (reusable && (u->flags & GH_UPCONN_REQ_DONE) && rs->status != 101)
        u->flags |= GH_UPCONN_REUSABLE;
}

/*
 * Parse heads from p[*used..n) until a final one: 1xx go to the sink's
 * interim. Returns 1 when a final head was handed to the sink (*room set),
 * 0 when more bytes are needed or the sink paused (the rest is kept),
 * GH_PUMP_ENDED, or GH_BAD.
 */
static int
parse_heads(struct gh_upconn *u, const struct gh_upconn_sink *sink, void *ctx, const char *p,
            size_t n, size_t *used, int from_buf, size_t *room)
{
    struct gh_h1_header hdrs[RESP_MAX_HEADERS];
    for (;;) {
        struct gh_h1_response rs;
        rs.headers = hdrs;
        rs.max_headers = RESP_MAX_HEADERS;
        struct gh_h1_limits lim = {0, RESP_MAX_STATUS_LINE, RESP_MAX_HEADERS, GH_BUF_SIZE};
        int rc = gh_h1_parse_response(p + *used, n - *used, &rs, &lim);
        if (rc == GH_INCOMPLETE) {
            if (gh_buf_keep_unused(&u->in, from_buf, p, n, *used) != 0)
                return fail(u, 503, false, "out of memory");
            return 0;
        }
        if (rc < 0)
            return fail(u, 502, false,
                        rs.err.reason ? rs.err.reason : "malformed upstream response");
        *used += (size_t)rc;
        if (rs.status >= 100 && rs.status < 200 && rs.status != 101) {
            int ir = sink->interim(ctx, &rs);
            if (ir < 0)
                return GH_PUMP_ENDED;
            if (ir == 0)
                continue;
            /* the receiver has not taken it all: the rest waits in u->in */
            u->flags |= GH_UPCONN_PARSE_BUF;
            if (gh_buf_keep_unused(&u->in, from_buf, p, n, *used) != 0)
                return fail(u, 503, false, "out of memory");
            return 0;
        }
        if (rs.status == 101 && !u->p.upgrade)
            return fail(u, 502, false, "upstream switched protocols without being asked");
        resp_framing(u, &rs);
        u->flags |= GH_UPCONN_HEAD_DONE;
        bool reframe = false;
        ssize_t r = sink->head(ctx, &rs, (enum gh_h1_body)u->resp_body, &reframe);
        if (r < 0)
            return GH_PUMP_ENDED;
        if (reframe)
            u->flags |= GH_UPCONN_REFRAME;
        *room = (size_t)r;
        return 1;
    }
}

/*
 * Read once (or take what u->in holds). Sets *p and *n to the bytes to
 * process, *from_buf and *eof. Returns GH_PUMP_MOVED, GH_PUMP_BLOCKED or
 * GH_BAD.
 */
static int
read_input(struct gh_upconn *u, const char **p, size_t *n, int *from_buf, int *eof)
{
    *from_buf = u->in != NULL && gh_buf_len(u->in) > 0;
    *eof = 0;
    if (*from_buf && (u->flags & (GH_UPCONN_HEAD_DONE | GH_UPCONN_PARSE_BUF))) {
        u->flags &= (uint16_t)~GH_UPCONN_PARSE_BUF;
        *p = gh_buf_head(u->in);
        *n = gh_buf_len(u->in);
        return GH_PUMP_MOVED;
    }
    if (!gh_xprt_is(&u->x, GH_XPRT_CAN_READ))
        return GH_PUMP_BLOCKED;
    char *dst;
    size_t room;
    if (*from_buf) { /* an incomplete head waits in u->in: append to it */
        room = gh_buf_reserve(u->in, GH_BUF_SIZE);
        dst = gh_buf_tail(u->in);
        if (room == 0)
            return fail(u, 502, false, "upstream response head too large");
    } else {
        dst = u->ctx->scratch;
        room = GH_BUF_SIZE;
        /* a large body should go by splice: read the head with only the start of it */
        if (!(u->flags & GH_UPCONN_HEAD_DONE) && u->p.splice)
            room = GH_UPCONN_SPLICE_HEAD_READ;
    }
    ssize_t rd = gh_xprt_recv(&u->x, dst, room);
    if (rd == GH_AGAIN)
        return GH_PUMP_BLOCKED;
    if (rd < 0 || (rd == 0 && !(u->flags & GH_UPCONN_HEAD_DONE))) {
        if (!(u->flags & GH_UPCONN_GOT_BYTE) && !*from_buf)
            return fail(u, 502, true,
                        rd == 0 ? "upstream closed the connection before responding"
                                : "upstream connection reset before responding");
        return fail(u, 502, false, "upstream closed the connection in the middle of the response");
    }
    if (rd == 0) {
        *eof = 1;
        *p = NULL;
        *n = 0;
    } else {
        if (!(u->flags & GH_UPCONN_GOT_BYTE)) {
            u->flags |= GH_UPCONN_GOT_BYTE;
            u->t_first_byte = gh_loop_now(u->ctx->loop);
            u->head = NULL; /* no retry from here on: the user may let the head go */
        }
        if (*from_buf) {
            gh_buf_commit(u->in, (size_t)rd);
            *p = gh_buf_head(u->in);
            *n = gh_buf_len(u->in);
        } else {
            *p = dst;
            *n = (size_t)rd;
        }
    }
    gh_timer_after(u->ctx->loop, &u->timer, u->p.read_ms);
    return GH_PUMP_MOVED;
}

/* De-frame body bytes from p[*used..n) into spans, within room. Returns 0 or GH_BAD. */
static int
body_spans(struct gh_upconn *u, const char *p, size_t n, size_t *used, size_t room, int eof,
           struct iovec *spans, int *ns, int *done)
{
    *ns = 0;
    switch ((enum gh_h1_body)u->resp_body) {
    case GH_H1_BODY_NONE:
        *done = 1;
        return 0;
    case GH_H1_BODY_LENGTH: {
        size_t k = GH_MIN(n - *used, room);
        if (k > u->resp_remaining)
            k = (size_t)u->resp_remaining;
        if (k > 0)
            spans[(*ns)++] = (struct iovec){(void *)(p + *used), k};
        *used += k;
        u->resp_remaining -= k;
        if (u->resp_remaining == 0)
            *done = 1;
        else if (eof)
            return fail(u, 502, false,
                        "upstream closed the connection in the middle of the response");
        return 0;
    }
    case GH_H1_BODY_CHUNKED: {
        /* leave room for the chunk-size lines a re-framing adds */
        size_t lim = room < GH_H1_OUT_RESERVE * 2
                         ? *used
                         : *used + GH_MIN(n - *used, room - GH_H1_OUT_RESERVE);
        uint64_t seen = 0;
        if (gh_h1_chunked_spans(&u->resp_chunk, p, used, lim, spans, GH_H1_OUT_SPANS, ns, &seen,
                                done) != 0)
            return fail(u, 502, false,
                        u->resp_chunk.reason ? u->resp_chunk.reason : "bad chunked response");
        if (eof && !*done)
            return fail(u, 502, false,
                        "upstream closed the connection in the middle of the response");
        return 0;
    }
    case GH_H1_BODY_CLOSE: {
        size_t reserve = (u->flags & GH_UPCONN_REFRAME) ? CLOSE_RESERVE : 0;
        size_t k = room > CLOSE_RESERVE ? GH_MIN(n - *used, room - reserve) : 0;
        if (k > 0)
            spans[(*ns)++] = (struct iovec){(void *)(p + *used), k};
        *used += k;
        if (eof)
            *done = 1;
        return 0;
    }
    }
    return 0;
}

int
gh_upconn_recv(struct gh_upconn *u, const struct gh_upconn_sink *sink, void *ctx)
{
    const char *p;
    size_t n;
    int from_buf, eof;
    int rc = read_input(u, &p, &n, &from_buf, &eof);
    if (rc != GH_PUMP_MOVED)
        return rc;

    size_t used = 0;
    size_t room = GH_BUF_SIZE;
    int head_now = 0;
    if (!(u->flags & GH_UPCONN_HEAD_DONE)) {
        rc = parse_heads(u, sink, ctx, p, n, &used, from_buf, &room);
        if (rc <= 0)
            return rc == 0 ? GH_PUMP_MOVED : rc;
        head_now = 1;
    }

    struct iovec spans[GH_H1_OUT_SPANS];
    int ns = 0, done = 0;
    if (body_spans(u, p, n, &used, room, eof, spans, &ns, &done) != 0)
        return GH_BAD;
    if ((ns > 0 || done || head_now) && sink->body(ctx, spans, ns, done) != 0)
        return GH_PUMP_ENDED;
    /* keep what was not used */
    if (gh_buf_keep_unused(&u->in, from_buf, p, n, used) != 0)
        return fail(u, 503, false, "out of memory");
    if (done) {
        u->flags |= GH_UPCONN_RESP_DONE;
        if (u->in != NULL)
            u->flags &= (uint16_t)~GH_UPCONN_REUSABLE; /* the origin sent more than it framed */
    }
    return GH_PUMP_MOVED;
}

bool
gh_upconn_can_splice_body(const struct gh_upconn *u)
{
    return u->resp_body == GH_H1_BODY_LENGTH && !(u->flags & GH_UPCONN_RESP_DONE) &&
           u->resp_remaining >= GH_UPCONN_SPLICE_MIN && u->p.splice && u->in == NULL &&
           !gh_xprt_is(&u->x, GH_XPRT_EOF) && gh_xprt_can_splice(&u->x);
}

enum gh_splice_rc
gh_upconn_splice_body(struct gh_upconn *u, struct gh_pipe *pp, struct gh_xprt *to,
                      uint64_t *moved_in, uint64_t *moved_out, int *err)
{
    uint64_t in = 0;
    enum gh_splice_rc st =
        gh_xprt_splice_pump(pp, &u->resp_remaining, &u->x, to, &in, moved_out, err);
    *moved_in += in;
    if (in > 0)
        gh_timer_after(u->ctx->loop, &u->timer, u->p.read_ms);
    if (st == GH_SPLICE_DONE)
        u->flags |= GH_UPCONN_RESP_DONE; /* release checks the socket for bytes past the body */
    else if (st == GH_SPLICE_IN_EOF || st == GH_SPLICE_IN_ERR)
        fail(u, 502, false, "upstream closed the connection in the middle of the response");
    return st;
}

/* ---- after the exchange ---- */

static void
pool_put(struct gh_upconn *u)
{
    struct gh_peer *p = u->peer;
    set_state(u, GH_UPCONN_IDLE);
    u->ops = NULL;
    u->owner = NULL;
    u->head = NULL;
    gh_timer_after(u->ctx->loop, &u->timer, u->p.keepalive_ms);
    u->pool_prev = NULL;
    u->pool_next = p->idle;
    if (p->idle != NULL)
        p->idle->pool_prev = u;
    p->idle = u;
    p->n_idle++;
}

void
gh_upconn_release(struct gh_upconn *u)
{
    if (u->state == GH_UPCONN_CLOSED)
        return;
    u->nreq++;
    const uint16_t need = GH_UPCONN_REUSABLE | GH_UPCONN_REQ_DONE | GH_UPCONN_RESP_DONE;
    /* Bytes the origin sent past the framed end must not be taken for the next
     * response: after a read that came back short the socket was empty (bytes
     * arriving later wake the pool, which closes it); after one that filled its
     * buffer exactly, or a splice that took exactly the bytes owed, their edge
     * may already be spent, so gh_xprt_drained looks (a syscall only then). */
    if (u->state == GH_UPCONN_ACTIVE && (u->flags & need) == need &&
        !(u->flags & GH_UPCONN_ABANDONED) && u->out == NULL && u->in == NULL && !u->ctx->stopping &&
        u->peer->n_idle < u->p.keepalive_max && !gh_xprt_is(&u->x, GH_XPRT_EOF) &&
        gh_xprt_drained(&u->x))
        pool_put(u);
    else
        gh_upconn_close(u);
}
