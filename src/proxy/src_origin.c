/*
 * src_origin.c - the origin as a source: the request head built for it, a
 * server chosen and connected (src/upstream/), the request and its body sent,
 * the response read into the downstream (copied, or by splice(2) for large
 * bodies), retries, and the origin's timeouts. The policy lives here: which
 * failures may be retried, what status a failure gets.
 */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "net/tls.h"
#include "proxy/cache.h"
#include "proxy/exchange.h"
#include "proxy/fwd_head.h"
#include "proxy/phase.h"
#include "proxy/vars.h"
#include "proxy/worker.h"
#include "upstream/h1client.h"

static int origin_send(struct gh_exchange *ex);
static int origin_recv(struct gh_exchange *ex);
static bool origin_wants_body(const struct gh_exchange *ex);
static int origin_take_body(struct gh_exchange *ex, const struct iovec *spans, int n, bool last);
static struct gh_xprt *origin_body_splice_to(struct gh_exchange *ex);
static void origin_body_spliced(struct gh_exchange *ex, uint64_t in, uint64_t out, int end);
static void origin_release(struct gh_exchange *ex);
static int origin_tunnel_end(struct gh_exchange *ex, struct gh_tunnel_end *end);

static const struct gh_source_ops src_origin = {
    .name = "origin",
    .send = origin_send,
    .recv = origin_recv,
    .wants_body = origin_wants_body,
    .take_body = origin_take_body,
    .body_splice_to = origin_body_splice_to,
    .body_spliced = origin_body_spliced,
    .release = origin_release,
    .tunnel_end = origin_tunnel_end,
};

static void on_upconn_event(struct gh_upconn *u);
static void on_upconn_timeout(struct gh_upconn *u, enum gh_upconn_timer which);
static const struct gh_upconn_ops upconn_ops = {on_upconn_event, on_upconn_timeout};

/* ------------------------------------------------------------------ */
/* the head for the origin, kept for a retry                           */

static int
keep_head(struct gh_exchange *ex, const char *p, size_t len)
{
    ex->fwd_head = gh_worker_head_get(ex->w, len, &ex->fwd_head_cap);
    if (ex->fwd_head == NULL)
        return -ENOMEM;
    memcpy(ex->fwd_head, p, len);
    ex->fwd_head_len = (uint32_t)len;
    return 0;
}

static void
free_head(struct gh_exchange *ex)
{
    gh_worker_head_put(ex->w, ex->fwd_head, ex->fwd_head_cap);
    ex->fwd_head = NULL;
}

/* ------------------------------------------------------------------ */
/* connecting and retrying                                             */

/* Get a connection for the current attempt and hand it the head. Returns GH_PUMP_MOVED, or
 * what gh_exchange_fail returned when no server could be reached. */
static int
origin_connect(struct gh_exchange *ex, bool fresh)
{
    const struct gh_proxy_conf *pc = ex->pc;
    const struct gh_upstream_conf *ups = pc->upstream;
    struct gh_upconn_params p = {.connect_ms = pc->connect_timeout_ms,
                                 .first_byte_ms = pc->first_byte_timeout_ms,
                                 .read_ms = pc->read_timeout_ms,
                                 .keepalive_ms = ups->keepalive_timeout_ms,
                                 .keepalive_max = ups->keepalive,
                                 .req_body = ex->req_body,
                                 .head_request = (ex->flags & GH_EX_HEAD_METHOD) != 0,
                                 .upgrade = (ex->flags & GH_EX_UPGRADE) != 0,
                                 .splice = pc->splice};
    int rc = gh_ups_connect(ex->wc->ups, &ex->up, fresh, &p, &upconn_ops, ex, &ex->u);
    if (rc != 0) {
        ex->u = NULL;
        return gh_exchange_fail(ex, rc == -ENOMEM ? 503 : 502,
                                rc == -ENOMEM ? "out of memory" : "cannot connect to upstream");
    }
    ex->up_outcome = GH_BALANCE_CANCELLED;
    gh_upconn_start(ex->u, ex->fwd_head, ex->fwd_head_len, !(ex->flags & GH_EX_REQ_DONE));
    if (ex->u->state == GH_UPCONN_ACTIVE) /* from the pool */
        ex->t_connect = ex->u->t_connected;
    return GH_PUMP_MOVED;
}

/* No server of the upstream may be tried (why: -EBUSY, all at max_conns; else all down): 503
 * with Retry-After, a line naming the upstream, and the worker's counter. */
static void
no_server(struct gh_exchange *ex, int why)
{
    const struct gh_upstream_conf *ups = ex->up.ups;
    ex->w->st_no_server++;
    gh_log_error("upstream %s: no server available (%s)", ups->name,
                 why == -EBUSY ? "every one is down or at max_conns" : "every one is down");
    ex->up.ups = NULL; /* none was tried: the answer names none */
    gh_exchange_fail(ex, 503,
                     why == -EBUSY ? "upstream servers at max_conns" : "no live upstream server");
    if (!(ex->flags & GH_EX_RESP_STARTED))
        ex->gen.retry_after = 1;
}

/* `balance hash KEY`: the key expanded into the thread's head scratch (the head for the origin
 * is built there after the pick; the pick keeps only the key's hash). A key longer than the
 * buffer is cut: its first GH_BUF_SIZE bytes are the key. */
static void
hash_key(struct gh_exchange *ex, const struct gh_upstream_conf *ups)
{
    struct gh_wr w = {ex->w->hscratch, 0, GH_BUF_SIZE, 0};
    gh_vars_expand(ups->hash_key, ex, &w, GH_ESC_RAW, NULL);
    ex->up.key = w.p;
    ex->up.key_len = w.len;
}

/* gh_origin_start without the connect: 0, or -1 when the exchange was answered (no server,
 * head too large, no memory). */
static int
prepare(struct gh_exchange *ex, const struct gh_request *req)
{
    ex->src = &src_origin;
    ex->req_body = req->body;
    ex->up.ups = ex->pc->upstream;
    if (ex->up.ups->hash_key != NULL)
        hash_key(ex, ex->up.ups);
    /* pick the origin first: a request head built for one origin stays valid for a
     * retry on another (Host is the client's unless upstream_host is set) */
    int prc = gh_ups_pick(ex->wc->ups, &ex->up);
    ex->up.key = NULL; /* its hash is kept */
    if (prc != 0) {
        no_server(ex, prc);
        return -1;
    }
    size_t len = gh_fwd_req_head(ex->w->hscratch, GH_BUF_SIZE, ex, req);
    if (len == 0) {
        gh_exchange_fail(ex, 431, "request head too large to forward");
        return -1;
    }
    if (keep_head(ex, ex->w->hscratch, len) != 0) {
        gh_exchange_fail(ex, 503, "out of memory");
        return -1;
    }
    return 0;
}

void
gh_origin_start(struct gh_exchange *ex, const struct gh_request *req)
{
    if (prepare(ex, req) != 0)
        return;
    if (ex->up.direct == NULL && ex->fwd != NULL)
        return; /* a forward proxy's name still resolving: gh_origin_go follows the answer */
    origin_connect(ex, false);
}

int
gh_origin_go(struct gh_exchange *ex)
{
    return origin_connect(ex, false);
}

/* Let go of the current connection: pooled when the exchange completed cleanly, else closed. */
static void
drop_conn(struct gh_exchange *ex)
{
    struct gh_upconn *u = ex->u;
    if (u == NULL)
        return;
    ex->u = NULL;
    if ((ex->flags & (GH_EX_RESP_DONE | GH_EX_FAILED)) == GH_EX_RESP_DONE && ex->status != 101)
        gh_upconn_release(u);
    else
        gh_upconn_close(u);
}

static bool
idempotent(uint8_t m)
{
    return m == GH_METHOD_GET || m == GH_METHOD_HEAD || m == GH_METHOD_OPTIONS ||
           m == GH_METHOD_TRACE || m == GH_METHOD_PUT || m == GH_METHOD_DELETE;
}

/* The retry_on condition an outcome meets. */
static uint32_t
retry_cond(enum gh_balance_outcome o)
{
    switch (o) {
    case GH_BALANCE_CONNECT:
        return GH_RETRY_CONNECT;
    case GH_BALANCE_TIMEOUT:
        return GH_RETRY_TIMEOUT;
    case GH_BALANCE_BROKEN:
        return GH_RETRY_ERROR;
    default:
        return 0;
    }
}

/*
 * May the request go to another server after its current attempt met cond (a
 * GH_RETRY_* bit)? When `retry_on` names it, `retries` and the servers left
 * allow it, and the request can be sent again as it was: nothing reached the
 * origin (a connect failure), or an idempotent request none of whose body was
 * taken from the client (bodies stream, so a sent body cannot be replayed) and
 * of whose response nothing reached the client.
 */
static bool
may_retry(struct gh_exchange *ex, uint32_t cond, bool got_byte)
{
    const struct gh_upstream_conf *ups = ex->up.ups;
    if (!(ups->retry_on & cond) || ex->fwd_head == NULL || !gh_ups_can_retry(ex->wc->ups, &ex->up))
        return false;
    if (cond == GH_RETRY_CONNECT)
        return true;
    return idempotent(ex->method) && !(ex->flags & (GH_EX_BODY_SENT | GH_EX_RESP_STARTED)) &&
           !got_byte;
}

/*
 * The current connection failed before anything of a response came: try again
 * where that is safe - another server when `retry_on` and `retries` allow it
 * (may_retry), or once more on a fresh connection when a pooled one was found
 * closed (the keep-alive race: the origin closed an idle connection as it was
 * reused) - else fail with status. Returns what origin_connect or
 * gh_exchange_fail returned.
 */
static int
retry_or_fail(struct gh_exchange *ex, int status, const char *why, enum gh_balance_outcome o)
{
    struct gh_upconn *u = ex->u;
    bool was_reused = u != NULL && (u->flags & GH_UPCONN_REUSED);
    bool got_byte = u != NULL && (u->flags & GH_UPCONN_GOT_BYTE);
    const char *tls_err = u != NULL ? gh_tls_error(gh_upconn_xprt(u)) : NULL;
    if (tls_err != NULL) { /* what OpenSSL said: the verification error, the alert */
        gh_log_error("upstream %s: TLS: %s", gh_ups_server(&ex->up)->addr.text, tls_err);
        if (!(u->flags & GH_UPCONN_HEAD_SENT))
            why = "TLS handshake with upstream failed";
    }
    ex->u = NULL;
    if (u != NULL)
        gh_upconn_close(u);
    bool nothing_sent = !(ex->flags & GH_EX_BODY_SENT) && !got_byte;
    if (o == GH_BALANCE_BROKEN && was_reused && !(ex->flags & GH_EX_RETRIED) &&
        idempotent(ex->method) && nothing_sent && ex->fwd_head != NULL) {
        /* the keep-alive race says nothing about the server: not an attempt of its own */
        gh_ups_attempt_done(ex->wc->ups, &ex->up, GH_BALANCE_CANCELLED);
        ex->flags |= GH_EX_RETRIED;
        ex->up.attempts--; /* not a new server */
        return origin_connect(ex, true);
    }
    gh_ups_attempt_done(ex->wc->ups, &ex->up, o);
    if (may_retry(ex, retry_cond(o), got_byte)) {
        if (o != GH_BALANCE_CONNECT) /* (a connect failure is logged where it is seen) */
            gh_log_warn("upstream %s: %s; trying another server", gh_ups_server(&ex->up)->addr.text,
                        why);
        gh_ups_pick(ex->wc->ups, &ex->up);
        return origin_connect(ex, false);
    }
    return gh_exchange_fail(ex, status, why);
}

/* A failure of the response: retried when nothing of it came, else failed. */
static int
response_failed(struct gh_exchange *ex)
{
    const struct gh_upconn_err *e = &ex->u->err;
    if (e->before_response)
        return retry_or_fail(ex, e->status, e->reason, GH_BALANCE_BROKEN);
    ex->up_outcome = GH_BALANCE_BROKEN;
    return gh_exchange_fail(ex, e->status, e->reason);
}

/* ------------------------------------------------------------------ */
/* the origin's events                                                 */

static void
on_upconn_event(struct gh_upconn *u)
{
    struct gh_exchange *ex = u->owner;
    if (u->state == GH_UPCONN_CONNECTING) { /* the connect failed */
        gh_log_warn("upstream %s: connect: %s", gh_ups_server(&ex->up)->addr.text,
                    strerror(gh_upconn_connect_result(u)));
        if (retry_or_fail(ex, 502, "cannot connect to upstream", GH_BALANCE_CONNECT) ==
            GH_PUMP_ENDED)
            return;
    } else {
        ex->t_connect = u->t_connected;
    }
    ex->down->resume(ex);
}

static void
on_upconn_timeout(struct gh_upconn *u, enum gh_upconn_timer which)
{
    struct gh_exchange *ex = u->owner;
    int rc;
    if (which == GH_UPCONN_T_CONNECT) {
        gh_log_warn("upstream %s: connect timed out%s", gh_ups_server(&ex->up)->addr.text,
                    gh_tls_is(gh_upconn_xprt(u)) ? " (with the TLS handshake)" : "");
        rc = retry_or_fail(ex, 504, "upstream connect timed out", GH_BALANCE_CONNECT);
    } else if ((ex->flags & GH_EX_OUT_QUEUED) ||
               (ex->resp_pipe != NULL && ex->resp_pipe->len > 0)) {
        /* Not the origin's fault: it is not being read because the client is
         * slow to take what came before (send_timeout guards that side). The
         * read timeout counts only while Gatehouse waits for the origin. */
        gh_upconn_rearm(u, GH_UPCONN_T_READ);
        return;
    } else if (which == GH_UPCONN_T_FIRST_BYTE && !(u->flags & GH_UPCONN_GOT_BYTE)) {
        /* no response byte: another server may have it (retry_on timeout) */
        rc = retry_or_fail(ex, 504, "upstream did not answer in time", GH_BALANCE_TIMEOUT);
    } else {
        ex->up_outcome = GH_BALANCE_TIMEOUT;
        rc = gh_exchange_fail(ex, 504,
                              which == GH_UPCONN_T_FIRST_BYTE
                                  ? "upstream did not answer in time"
                                  : "upstream stalled in the middle of the response");
    }
    if (rc != GH_PUMP_ENDED)
        ex->down->resume(ex);
}

/* ------------------------------------------------------------------ */
/* the request                                                         */

static bool
origin_wants_body(const struct gh_exchange *ex)
{
    return ex->u != NULL && ex->u->state == GH_UPCONN_ACTIVE && gh_upconn_wants_body(ex->u);
}

static int
origin_send(struct gh_exchange *ex)
{
    struct gh_upconn *u = ex->u;
    if (u == NULL || u->state != GH_UPCONN_ACTIVE)
        return GH_PUMP_BLOCKED;
    int rc = gh_upconn_has_output(u) ? gh_upconn_send(u) : GH_PUMP_BLOCKED;
    if (rc < 0)
        return retry_or_fail(ex, 502,
                             (u->flags & GH_UPCONN_HEAD_SENT)
                                 ? "upstream connection broken while sending the body"
                                 : "upstream connection broken while sending the request",
                             GH_BALANCE_BROKEN);
    if (!(ex->flags & GH_EX_REQ_DONE) && origin_wants_body(ex)) {
        int brc = ex->down->pump_body(ex);
        if (brc == GH_PUMP_ENDED)
            return brc;
        rc |= brc;
    }
    if (ex->u !=
        NULL) /* the origin's side of this turn's writes: watch for room if one fell short */
        gh_upconn_watch_writes(ex->u);
    return rc;
}

static int
origin_take_body(struct gh_exchange *ex, const struct iovec *spans, int n, bool last)
{
    int rc = gh_upconn_send_body(ex->u, spans, n, last);
    if (rc == -ENOMEM)
        return gh_exchange_fail(ex, 503, "out of memory");
    if (rc < 0) {
        /* The origin stopped reading; it may have answered already (413, 401...).
         * Read what it said, and close the client connection afterwards. */
        ex->flags |= GH_EX_CLOSE;
        return GH_PUMP_MOVED;
    }
    if (n > 0 || (last && ex->req_body == GH_H1_BODY_CHUNKED))
        ex->flags |= GH_EX_BODY_SENT;
    return GH_PUMP_MOVED;
}

static struct gh_xprt *
origin_body_splice_to(struct gh_exchange *ex)
{
    if (!origin_wants_body(ex) || !gh_xprt_can_splice(gh_upconn_xprt(ex->u)))
        return NULL;
    return gh_upconn_xprt(ex->u);
}

static void
origin_body_spliced(struct gh_exchange *ex, uint64_t in, uint64_t out, int end)
{
    struct gh_upconn *u = ex->u;
    if (in > 0)
        ex->flags |= GH_EX_BODY_SENT; /* taken from the client: a retry could not resend it */
    if (out > 0)
        gh_upconn_body_moved(u);
    if (end > 0) {
        gh_upconn_send_body(u, NULL, 0, true); /* nothing more to write: marks it whole */
    } else if (end < 0) {
        /* the origin stopped reading; it may have answered already (413, 401...) */
        gh_upconn_abandon_request(u);
        ex->flags |= GH_EX_CLOSE;
    }
}

/* ------------------------------------------------------------------ */
/* the response                                                        */

/* The first response bytes came: the log's time of the first byte (a sink callback may end the
 * exchange's course, so it is noted here rather than after the read). */
static inline void
note_first_byte(struct gh_exchange *ex)
{
    if (ex->t_first_byte == 0)
        ex->t_first_byte = ex->u->t_first_byte;
}

/* The GH_RETRY_* bit of an origin's status (0: never retried). */
static uint32_t
status_cond(int status)
{
    switch (status) {
    case 500:
        return GH_RETRY_500;
    case 502:
        return GH_RETRY_502;
    case 503:
        return GH_RETRY_503;
    case 504:
        return GH_RETRY_504;
    default:
        return 0;
    }
}

/* `retry_on 502 ...`: the origin answered a status to retry and another server may have the
 * request. Its answer goes nowhere (the connection is closed); with no server left to try, the
 * last answer is the client's. Returns true when the request went on to another server. */
static bool
retry_status(struct gh_exchange *ex, int status)
{
    uint32_t cond = status_cond(status);
    if (cond == 0 || !may_retry(ex, cond, false))
        return false;
    gh_log_warn("upstream %s: answered %d; trying another server",
                gh_ups_server(&ex->up)->addr.text, status);
    struct gh_upconn *u = ex->u;
    ex->u = NULL;
    gh_upconn_close(u);
    /* not a failure for passive health (only connect failures and timeouts are), but not a
     * latency for ewma to learn from either */
    gh_ups_attempt_done(ex->wc->ups, &ex->up, GH_BALANCE_BROKEN);
    ex->t_first_byte = 0;
    gh_ups_pick(ex->wc->ups, &ex->up);
    origin_connect(ex, false);
    return true;
}

static ssize_t
sink_head(void *ctx, const struct gh_h1_response *rs, enum gh_h1_body body, bool *reframe)
{
    struct gh_exchange *ex = ctx;
    if (retry_status(ex, rs->status))
        return -1; /* the exchange changed course: this connection is closed */
    note_first_byte(ex);
    int st = rs->status;
    bool bodyless = st < 200 || st == 204 || st == 304;
    struct gh_resp resp = {
        .status = rs->status,
        .version = rs->version,
        .body = (uint8_t)body,
        .h1flags = rs->flags,
        .reason = rs->reason,
        .reason_len = rs->reason_len,
        .fields = rs->headers,
        .n_fields = rs->num_headers,
        .content_length =
            (rs->flags & GH_H1_F_HAS_CL) && (!bodyless || st == 304) ? rs->content_length : -1,
    };
    ex->status = rs->status;
    ex->up_status = rs->status;
    ex->up_outcome = GH_BALANCE_OK;
    int rc = gh_phase_resp_head(ex, &resp);
    if (rc != GH_OK) {
        gh_exchange_fail(ex, rc, ex->fail_reason != NULL ? ex->fail_reason : "response refused");
        return -1;
    }
    if (gh_cache_holds_head(ex)) /* the cache answers after it, or the client has a head */
        return GH_BUF_SIZE;
    return ex->down->send_head(ex, &resp, reframe);
}

static int
sink_interim(void *ctx, const struct gh_h1_response *rs)
{
    struct gh_exchange *ex = ctx;
    note_first_byte(ex);
    if (rs->status == 100 || gh_cache_holds_head(ex))
        return 0; /* our own 100 Continue went out already (when the client asked); or the
                   * client is in the middle of a body, or the cache answers after this */
    struct gh_resp resp = {.status = rs->status,
                           .version = rs->version,
                           .h1flags = rs->flags,
                           .reason = rs->reason,
                           .reason_len = rs->reason_len,
                           .fields = rs->headers,
                           .n_fields = rs->num_headers,
                           .content_length = -1};
    return ex->down->send_interim(ex, &resp);
}

static int
sink_body(void *ctx, const struct iovec *spans, int n, bool done)
{
    struct gh_exchange *ex = ctx;
    if (ex->cache != NULL) /* the cache sees it first (stores, slices or drops it) */
        return gh_cache_body(ex, spans, n, done);
    return ex->down->send_body(ex, spans, n, done);
}

static const struct gh_upconn_sink sink = {sink_head, sink_interim, sink_body};

/* The rest of a Content-Length body by splice(2): origin -> pipe -> client. */
static int
origin_splice(struct gh_exchange *ex)
{
    struct gh_xprt *to = ex->down->splice_to(ex);
    if (to == NULL)
        return GH_PUMP_BLOCKED;
    uint64_t in = 0, out = 0;
    int err = 0;
    enum gh_splice_rc st = gh_upconn_splice_body(ex->u, ex->resp_pipe, to, &in, &out, &err);
    ex->bytes_out += out;
    switch (st) {
    case GH_SPLICE_BLOCKED:
        return in > 0 || out > 0 ? GH_PUMP_MOVED : GH_PUMP_BLOCKED;
    case GH_SPLICE_DONE:
        gh_pipe_put(ex->resp_pipe);
        ex->resp_pipe = NULL;
        ex->flags |= GH_EX_RESP_DONE;
        ex->t_up_done = gh_loop_now(ex->w->loop);
        return GH_PUMP_MOVED;
    case GH_SPLICE_OUT_ERR:
        gh_log_info("client closed the connection during the response: %s", strerror(err));
        ex->down->abort(ex);
        return GH_PUMP_ENDED;
    default:
        ex->up_outcome = GH_BALANCE_BROKEN;
        return gh_exchange_fail(ex, ex->u->err.status, ex->u->err.reason);
    }
}

/* The origin's response (a 304 to a revalidation, or an error a stale object stands in for) is
 * read whole and not forwarded: the connection goes back to its pool and the cache becomes the
 * source. */
static void
hand_over(struct gh_exchange *ex)
{
    ex->t_up_done = gh_loop_now(ex->w->loop);
    ex->flags |= GH_EX_RESP_DONE; /* for drop_conn: a complete response, poolable */
    origin_release(ex);
    ex->flags &= (uint16_t)~GH_EX_RESP_DONE;
    gh_cache_take_over(ex);
}

static int
origin_recv(struct gh_exchange *ex)
{
    struct gh_upconn *u = ex->u;
    if (u == NULL || u->state != GH_UPCONN_ACTIVE || !(u->flags & GH_UPCONN_HEAD_SENT))
        return GH_PUMP_BLOCKED;
    if (ex->resp_pipe != NULL)
        return origin_splice(ex);
    if (!gh_upconn_has_input(u))
        return GH_PUMP_BLOCKED;
    int rc = gh_upconn_recv(u, &sink, ex);
    if (rc == GH_PUMP_ENDED)
        return rc;
    if (u->t_first_byte != 0 && ex->t_first_byte == 0) {
        ex->t_first_byte = u->t_first_byte;
        free_head(ex); /* no retry from here on */
    }
    if (rc == GH_BAD)
        return response_failed(ex);
    if (rc == GH_PUMP_MOVED) {
        if ((u->flags & GH_UPCONN_RESP_DONE) && gh_cache_swapping(ex)) {
            hand_over(ex);
        } else if (u->flags & GH_UPCONN_RESP_DONE) {
            ex->flags |= GH_EX_RESP_DONE;
            ex->t_up_done = gh_loop_now(ex->w->loop);
        } else if (gh_upconn_can_splice_body(u) && !gh_cache_tees(ex) &&
                   ex->down->splice_to(ex) != NULL) {
            /* the rest of a large Content-Length body passes unchanged: move it
             * socket -> pipe -> socket without copying it through user space (when
             * no pipe can be had, the copy goes on as before) */
            ex->resp_pipe = gh_pipe_get();
        }
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* the end                                                             */

static int
origin_tunnel_end(struct gh_exchange *ex, struct gh_tunnel_end *end)
{
    struct gh_upconn *u = ex->u;
    if (u == NULL || u->state != GH_UPCONN_ACTIVE)
        return -1;
    gh_timer_stop(ex->w->loop, &u->timer); /* the tunnel's idle timer is the client side's */
    end->x = gh_upconn_xprt(u);
    end->in = &u->in;
    end->out = &u->out;
    return 0;
}

static void
origin_release(struct gh_exchange *ex)
{
    drop_conn(ex);
    gh_ups_attempt_done(ex->wc->ups, &ex->up, (enum gh_balance_outcome)ex->up_outcome);
    free_head(ex);
    gh_pipe_put(ex->resp_pipe); /* closed rather than cached if bytes are left in it */
    gh_pipe_put(ex->req_pipe);
    ex->resp_pipe = ex->req_pipe = NULL;
}
