/*
 * src_origin.c - the origin as a source: the request head built for it, a
 * server chosen and connected (src/upstream/), the request and its body sent,
 * the response read into the downstream (copied, or by splice(2) for large
 * bodies), retries, and the origin's timeouts. The policy lives here: which
 * failures may be retried, what status a failure gets.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "http/h1_write.h"
#include "net/proxyproto.h"
#include "net/tls.h"
#include "proxy/cache.h"
#include "proxy/exchange.h"
#include "proxy/fwd_head.h"
#include "proxy/hide.h"
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

/* The head, and behind it the Host the client used (proxy_redirect writes it in place of the
 * origin's address). */
static int
keep_head(struct gh_exchange *ex, const char *p, size_t len, const struct gh_request *req)
{
    size_t hl = req->host != NULL ? req->host_len : 0;
    ex->fwd_head = gh_worker_head_get(ex->w, len + hl, &ex->fwd_head_cap);
    if (ex->fwd_head == NULL)
        return -ENOMEM;
    memcpy(ex->fwd_head, p, len);
    ex->fwd_head_len = (uint32_t)len;
    if (hl > 0) {
        memcpy(ex->fwd_head + len, req->host, hl);
        ex->pub_host = ex->fwd_head + len;
        ex->pub_host_len = (uint32_t)hl;
    }
    return 0;
}

static inline void
free_pp_head(struct gh_exchange *ex)
{
    if (gh_likely(ex->pp_head == NULL))
        return;
    gh_worker_head_put(ex->w, ex->pp_head, ex->pp_head_cap);
    ex->pp_head = NULL;
}

static void
free_head(struct gh_exchange *ex)
{
    gh_worker_head_put(ex->w, ex->fwd_head, ex->fwd_head_cap);
    gh_worker_head_put(ex->w, ex->pub_block, ex->fwd_head_cap);
    ex->fwd_head = ex->pub_block = NULL;
    ex->pub_host = NULL;
    free_pp_head(ex);
}

/* No retry from here on: the head goes, the client's Host stays until the response's head. */
static void
retire_head(struct gh_exchange *ex)
{
    if (ex->pub_host == NULL) {
        free_head(ex);
        return;
    }
    ex->pub_block = ex->fwd_head;
    ex->fwd_head = NULL;
    free_pp_head(ex);
}

/* A client address as a socket address. */
static void
client_sockaddr(const struct gh_client_addr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    ss->ss_family = a->family;
    if (a->family == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)ss;
        memcpy(&s->sin_addr, a->ip, 4);
        s->sin_port = htons(a->port);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
        memcpy(&s->sin6_addr, a->ip, 16);
        s->sin6_port = htons(a->port);
    }
}

/* `send_proxy[_v2]`: the head for a new connection is a PROXY header (the client, and the
 * address it connected to) followed by the request's head, in *head / *len. -ENOMEM. */
static int
proxy_head(struct gh_exchange *ex, int version, const char **head, size_t *len)
{
    struct sockaddr_storage src, dst;
    client_sockaddr(ex->client, &src);
    if (ex->down->local_addr(ex, &dst) != 0)
        memset(&dst, 0, sizeof(dst)); /* unknown: v1 UNKNOWN, v2 LOCAL */
    free_pp_head(ex);
    ex->pp_head = gh_worker_head_get(ex->w, GH_PP_V1_MAX + ex->fwd_head_len, &ex->pp_head_cap);
    if (ex->pp_head == NULL)
        return -ENOMEM;
    size_t n = gh_pp_write(ex->pp_head, GH_PP_V1_MAX, version, &src, &dst);
    memcpy(ex->pp_head + n, ex->fwd_head, ex->fwd_head_len);
    *head = ex->pp_head;
    *len = n + ex->fwd_head_len;
    return 0;
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
        if (rc == -EMFILE || rc == -ENFILE) { /* local exhaustion: 503, as for memory */
            ex->w->st_fd_short++;
            gh_log_error("upstream %s: connect: %s (raise the open-file limit?)",
                         gh_ups_server(&ex->up)->addr.text, strerror(-rc));
            return gh_exchange_fail(ex, 503, "out of file descriptors");
        }
        return gh_exchange_fail(ex, rc == -ENOMEM ? 503 : 502,
                                rc == -ENOMEM ? "out of memory" : "cannot connect to upstream");
    }
    ex->up_outcome = GH_BALANCE_CANCELLED;
    bool body = !(ex->flags & GH_EX_REQ_DONE);
    if (gh_unlikely(ex->spool_state != GH_SPOOL_NONE)) { /* buffered: from its start, each try */
        gh_spool_rewind(&ex->spool);
        ex->spool_state = GH_SPOOL_REPLAY;
        body = true;
    }
    const char *head = ex->fwd_head;
    size_t hlen = ex->fwd_head_len;
    uint8_t pp = gh_ups_server(&ex->up)->send_proxy;
    if (pp != 0 && proxy_head(ex, pp, &head, &hlen) != 0)
        return gh_exchange_fail(ex, 503, "out of memory");
    gh_upconn_start(ex->u, head, hlen, body);
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

static void on_queue_wait(struct gh_ups_wait *w, bool timed_out);

/* Every server is at max_conns: wait in the upstream's queue when it has one (the head for
 * the origin is built already). false: no place in it. */
static bool
queue_request(struct gh_exchange *ex)
{
    if (ex->up.ups->queue_max == 0)
        return false;
    bool first = ex->up_wait.timer.cb == NULL;
    if (gh_ups_wait(ex->wc->ups, ex->up.ups, &ex->up_wait, on_queue_wait) != 0)
        return false;
    if (first)
        ex->w->st_queued++;
    gh_log_debug("upstream %s: every server at max_conns: request queued", ex->up.ups->name);
    return true;
}

/* A place at a server (or the queue's timeout) for a queued request. */
static void
on_queue_wait(struct gh_ups_wait *wt, bool timed_out)
{
    struct gh_exchange *ex = gh_container_of(wt, struct gh_exchange, up_wait);
    int prc = timed_out ? -EBUSY : gh_ups_pick(ex->wc->ups, &ex->up);
    if (prc == -EBUSY && !timed_out && queue_request(ex))
        return; /* the place was taken meanwhile: wait on */
    if (prc != 0) {
        if (timed_out)
            gh_log_error("upstream %s: no server within the queue timeout", ex->up.ups->name);
        no_server(ex, prc);
        ex->down->resume(ex);
        return;
    }
    if (origin_connect(ex, false) != GH_PUMP_ENDED)
        ex->down->resume(ex);
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

/* The head for the origin, built and kept (for retries). false when the exchange failed. */
static inline bool
build_head(struct gh_exchange *ex, const struct gh_request *req)
{
    size_t len = gh_fwd_req_head(ex->w->hscratch, GH_BUF_SIZE, ex, req);
    if (len == 0) {
        gh_exchange_fail(ex, 431, "request head too large to forward");
        return false;
    }
    if (keep_head(ex, ex->w->hscratch, len, req) != 0) {
        gh_exchange_fail(ex, 503, "out of memory");
        return false;
    }
    return true;
}

/* `request_buffering`: read the body whole before an origin is chosen (a reverse proxy's
 * request with a body that is not an upgrade). */
static bool
wants_buffering(const struct gh_exchange *ex)
{
    return !(ex->flags & (GH_EX_REQ_DONE | GH_EX_UPGRADE)) && ex->pc->request_buffering &&
           ex->fwd == NULL;
}

/* Read the body into the spool first: no server is chosen until it is whole (buffer_done);
 * the key is hashed now (it lives in the scratch the head is built in). */
static void
buffer_start(struct gh_exchange *ex)
{
    if (ex->up.key != NULL) {
        ex->up.key_hash = gh_balance_hash(ex->up.key, ex->up.key_len);
        ex->up.key_hashed = true;
    }
    gh_spool_init(&ex->spool, ex->pc->request_buffer_size, ex->pc->client_body_temp_path);
    ex->spool_state = GH_SPOOL_FILLING;
    ex->w->st_buffered++;
}

/* `sticky cookie NAME`: the server the request's cookie names, if any (ex->up.sticky). */
static void
sticky_server(struct gh_exchange *ex, const struct gh_upstream_conf *ups)
{
    const char *v;
    size_t vl;
    if (!gh_vars_cookie(ex, ups->sticky->name, ups->sticky->name_len, &v, &vl) || vl != 16)
        return;
    for (uint32_t i = 0; i < ups->n_servers; i++)
        if (memcmp(ups->servers[i].sticky_id, v, 16) == 0) {
            ex->up.sticky = i + 1;
            return;
        }
}

void
gh_origin_start(struct gh_exchange *ex, const struct gh_request *req)
{
    ex->src = &src_origin;
    ex->req_body = req->body;
    ex->up.ups = ex->pc->upstream;
    if (ex->up.ups->hash_key != NULL)
        hash_key(ex, ex->up.ups);
    if (gh_unlikely(ex->up.ups->sticky != NULL))
        sticky_server(ex, ex->up.ups);
    /* pick the origin first (unless the body is read first): a request head built for one
     * origin stays valid for a retry on another (Host is the client's unless upstream_host is
     * set) */
    bool buffer = wants_buffering(ex);
    int prc = 0;
    if (gh_unlikely(buffer))
        buffer_start(ex);
    else
        prc = gh_ups_pick(ex->wc->ups, &ex->up);
    ex->up.key = NULL; /* its hash is kept */
    if (prc != 0 && (prc != -EBUSY || ex->up.ups->queue_max == 0)) {
        no_server(ex, prc);
        return;
    }
    if (!build_head(ex, req)) /* before waiting: the request's slices go away */
        return;
    if (gh_unlikely(prc != 0)) { /* every server at max_conns: the queue */
        if (!queue_request(ex))
            no_server(ex, prc);
        return;
    }
    if (buffer)
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
    if (ex->spool_state == GH_SPOOL_FILLING)
        return true;
    return ex->u != NULL && ex->u->state == GH_UPCONN_ACTIVE && gh_upconn_wants_body(ex->u);
}

/* The buffered body is whole: now choose the origin and connect. */
static int
buffer_done(struct gh_exchange *ex)
{
    ex->spool_state = GH_SPOOL_REPLAY;
    int prc = gh_ups_pick(ex->wc->ups, &ex->up);
    if (prc != 0) {
        if (prc == -EBUSY && queue_request(ex))
            return GH_PUMP_MOVED;
        no_server(ex, prc);
        return GH_PUMP_MOVED;
    }
    return origin_connect(ex, false);
}

/* Body data from the client into the spool; the last of it starts the origin's part. */
static int
buffer_take(struct gh_exchange *ex, const struct iovec *spans, int n, bool last)
{
    bool was_on_disk = gh_spool_on_disk(&ex->spool);
    for (int i = 0; i < n; i++) {
        int rc = gh_spool_append(&ex->spool, spans[i].iov_base, spans[i].iov_len);
        if (rc != 0) {
            gh_log_error("request body: cannot buffer it in %s: %s", ex->pc->client_body_temp_path,
                         strerror(-rc));
            return gh_exchange_fail(ex, rc == -ENOMEM ? 503 : 500,
                                    "cannot buffer the request body");
        }
    }
    if (!was_on_disk && gh_spool_on_disk(&ex->spool))
        ex->w->st_spooled++;
    return last ? buffer_done(ex) : GH_PUMP_MOVED;
}

/* The next piece of the buffered body to the origin (it wants more). */
static int
replay_body(struct gh_exchange *ex)
{
    const char *p = NULL;
    /* room for the chunk framing when the body goes chunked */
    ssize_t n = gh_spool_read(&ex->spool, ex->w->scratch, GH_BUF_SIZE - GH_H1_OUT_RESERVE, &p);
    if (n < 0)
        return gh_exchange_fail(ex, 500, "cannot read the buffered request body");
    bool last = ex->spool.rd == ex->spool.len;
    struct iovec iov = {(void *)p, (size_t)n};
    int rc = gh_upconn_send_body(ex->u, &iov, n > 0 ? 1 : 0, last);
    if (rc == -ENOMEM)
        return gh_exchange_fail(ex, 503, "out of memory");
    if (rc < 0 || last) /* all of it, or the origin stopped reading (it may have answered) */
        ex->spool_state = GH_SPOOL_SENT;
    return GH_PUMP_MOVED;
}

/* A buffered body's part of a send turn: read it from the client, or hand the origin its
 * next piece once the head is out and nothing waits. */
static int
spool_send(struct gh_exchange *ex)
{
    if (ex->spool_state == GH_SPOOL_FILLING)
        return ex->down->pump_body(ex);
    struct gh_upconn *u = ex->u;
    if (ex->spool_state == GH_SPOOL_REPLAY && u != NULL && u->state == GH_UPCONN_ACTIVE &&
        gh_upconn_wants_body(u))
        return replay_body(ex);
    return GH_PUMP_BLOCKED;
}

static int
origin_send(struct gh_exchange *ex)
{
    int src = GH_PUMP_BLOCKED;
    if (gh_unlikely(ex->spool_state != GH_SPOOL_NONE)) {
        src = spool_send(ex);
        if (src == GH_PUMP_ENDED || ex->spool_state == GH_SPOOL_FILLING)
            return src;
    }
    struct gh_upconn *u = ex->u;
    if (u == NULL || u->state != GH_UPCONN_ACTIVE)
        return src;
    int rc = gh_upconn_has_output(u) ? gh_upconn_send(u) : GH_PUMP_BLOCKED;
    if (rc < 0)
        return retry_or_fail(ex, 502,
                             (u->flags & GH_UPCONN_HEAD_SENT)
                                 ? "upstream connection broken while sending the body"
                                 : "upstream connection broken while sending the request",
                             GH_BALANCE_BROKEN);
    rc |= src;
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
    if (ex->spool_state == GH_SPOOL_FILLING)
        return buffer_take(ex, spans, n, last);
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
    if (ex->spool_state != GH_SPOOL_NONE || !origin_wants_body(ex) ||
        !gh_xprt_can_splice(gh_upconn_xprt(ex->u)))
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
    /* a failure for passive health only as `fail_on` says (the status is known), and not a
     * latency for ewma to learn from */
    gh_ups_attempt_done(ex->wc->ups, &ex->up, GH_BALANCE_BROKEN);
    ex->t_first_byte = 0;
    gh_ups_pick(ex->wc->ups, &ex->up);
    origin_connect(ex, false);
    return true;
}

/* Set when a sink callback gave the exchange to another source (intercept_errors): the read
 * that called it ended the origin's part, not the exchange. */
static __thread bool course_changed;

/* `intercept_errors on`: the origin's error answer goes nowhere (its connection is closed with
 * the body unread); the client gets Gatehouse's page for the status (or its error_page). */
static ssize_t
intercept(struct gh_exchange *ex, int status)
{
    origin_release(ex); /* the response is not done: the connection is closed */
    struct gh_gen g = {0};
    gh_respond(ex, status, &g);
    course_changed = true;
    return -1;
}

static ssize_t
sink_head(void *ctx, const struct gh_h1_response *rs, enum gh_h1_body body, bool *reframe)
{
    struct gh_exchange *ex = ctx;
    ex->up.status = (uint16_t)rs->status; /* for passive health (`fail_on 5xx`) */
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
    if (gh_unlikely(gh_hide_intercepts(ex->pc, st)))
        return intercept(ex, st);
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
    course_changed = false;
    int rc = gh_upconn_recv(u, &sink, ex);
    if (rc == GH_PUMP_ENDED)
        return course_changed ? GH_PUMP_MOVED : rc; /* a generated answer goes on */
    if (u->t_first_byte != 0 && ex->t_first_byte == 0) {
        ex->t_first_byte = u->t_first_byte;
        retire_head(ex); /* no retry from here on */
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
    end->sent = &ex->tunnel_up;
    return 0;
}

static void
origin_release(struct gh_exchange *ex)
{
    if (gh_unlikely(ex->up_wait.timer.cb != NULL)) /* it waited in a queue */
        gh_ups_wait_cancel(&ex->up_wait);
    drop_conn(ex);
    gh_ups_attempt_done(ex->wc->ups, &ex->up, (enum gh_balance_outcome)ex->up_outcome);
    free_head(ex);
    if (gh_unlikely(ex->spool_state != GH_SPOOL_NONE)) {
        gh_spool_free(&ex->spool);
        ex->spool_state = GH_SPOOL_NONE;
    }
    gh_pipe_put(ex->resp_pipe); /* closed rather than cached if bytes are left in it */
    gh_pipe_put(ex->req_pipe);
    ex->resp_pipe = ex->req_pipe = NULL;
}
