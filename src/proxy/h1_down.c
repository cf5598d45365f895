/*
 * h1_down.c - the downstream of an HTTP/1.1 connection's exchanges: response
 * heads and bodies written (re-framed as chunks where the length is unknown,
 * a small body copied behind its head for one write), interim responses,
 * request bodies de-framed and handed to the source (or spliced to it), and
 * the end of an exchange (keep-alive, lingering close, tunnel).
 */
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "http/h1_write.h"
#include "proxy/fwd_head.h"
#include "proxy/h1_conn.h"
#include "proxy/phase.h"

/* head and a small body in one piece: write(2) of a copy is cheaper in the
 * kernel than a two-part writev(2) */
#define COALESCE_MAX (16 * 1024)
/* splice(2) for the rest of a Content-Length request body of at least this */
#define SPLICE_MIN (16 * 1024)

/* ------------------------------------------------------------------ */
/* the downstream: writing the response                               */

/* Is the connection kept after a response with resp's framing? */
static bool
keeps(const struct h1_stream *s, const struct gh_resp *resp)
{
    const struct gh_exchange *ex = &s->ex;
    if (!(s->sflags & S_KEEPALIVE))
        return false;
    /* answered before the request body ended: the rest of it would be read as a request */
    if (!(ex->flags & GH_EX_REQ_DONE) && resp->status != 101)
        return false;
    if ((s->c->flags & C_CLOSE_AFTER) || (ex->flags & GH_EX_CLOSE) || (resp->flags & GH_RESP_CLOSE))
        return false;
    /* an HTTP/1.0 client learns where a body of unknown length ends from the close */
    if ((resp->body == GH_H1_BODY_CHUNKED || resp->body == GH_H1_BODY_CLOSE) &&
        (s->sflags & S_CLIENT_10))
        return false;
    return true;
}

static ssize_t
h1_send_head(struct gh_exchange *ex, const struct gh_resp *resp, bool *reframe)
{
    struct h1_stream *s = gh_h1s_stream(ex);
    struct gh_conn *c = s->c;
    int st = resp->status;
    bool client10 = (s->sflags & S_CLIENT_10) != 0;
    bool chunk_out =
        (resp->body == GH_H1_BODY_CHUNKED || resp->body == GH_H1_BODY_CLOSE) && !client10;
    if (!keeps(s, resp))
        s->sflags &= (uint8_t)~S_KEEPALIVE;
    bool bodyless = st < 200 || st == 204 || st == 304;
    /* a HEAD answer says what a GET's would (Transfer-Encoding included) */
    bool te_chunked =
        (!bodyless || st == 304) && (chunk_out || ((ex->flags & GH_EX_HEAD_METHOD) &&
                                                   (resp->h1flags & GH_H1_F_CHUNKED) && !client10));
    enum gh_fwd_conn conn = st == 101                    ? GH_FWD_CONN_UPGRADE
                            : !(s->sflags & S_KEEPALIVE) ? GH_FWD_CONN_CLOSE
                            : client10                   ? GH_FWD_CONN_KEEPALIVE
                                                         : GH_FWD_CONN_NONE;
    size_t hlen = gh_fwd_resp_head(c->w->hscratch, GH_BUF_SIZE, resp, ex->pc, ex,
                                   gh_loop_wall(c->w->loop), te_chunked, conn);
    if (hlen == 0) {
        if (ex->flags & GH_EX_FAILED) /* not even the error page fits (rules too long) */
            gh_h1s_close(c);
        else if (ex->u != NULL)
            gh_exchange_fail(ex, 502, "upstream response head too large to forward");
        else /* a generated answer: its response_header rules do not fit a head */
            gh_exchange_fail(ex, 500, "response head too large (response_header rules)");
        return -1;
    }
    /* a head held back and replaced (the body failed before it went out: an error page
     * follows) takes its framing with it */
    s->sflags = (uint8_t)((s->sflags & ~S_CHUNK_OUT) | (chunk_out ? S_CHUNK_OUT : 0));
    s->head_len = (uint32_t)hlen;
    *reframe = chunk_out;
    return (ssize_t)(GH_BUF_SIZE - hlen);
}

/* Write o (and queue what the client does not take). Returns 0, or -1 when the connection is
 * gone (closed here). */
static int
write_out(struct h1_stream *s, struct gh_h1_out *o)
{
    struct gh_conn *c = s->c;
    ssize_t wn = gh_xprt_sendv(&c->x, o->iov, o->cnt, o->total);
    if (wn < 0) {
        gh_log_info("client closed the connection during the response: %s", strerror((int)-wn));
        gh_h1s_close(c);
        return -1;
    }
    s->ex.flags |= GH_EX_RESP_STARTED;
    s->ex.bytes_out += o->total;
    if ((size_t)wn < o->total) {
        if (gh_buf_stash(&c->out, o->iov, o->cnt, (size_t)wn) != 0) {
            gh_h1s_close(c);
            return -1;
        }
        s->ex.flags |= GH_EX_OUT_QUEUED;
    }
    return 0;
}

static int
h1_send_body(struct gh_exchange *ex, const struct iovec *spans, int n, bool done)
{
    struct h1_stream *s = gh_h1s_stream(ex);
    char *hs = s->c->w->hscratch;
    struct gh_h1_out o;
    gh_h1_out_init(&o);
    uint32_t hlen = s->head_len;
    if (hlen > 0) {
        gh_h1_out_add(&o, hs, hlen);
        ex->head_bytes += hlen;
    }
    s->head_len = 0;
    int chunked = (s->sflags & S_CHUNK_OUT) != 0;
    if (!(ex->flags & GH_EX_HEAD_METHOD)) { /* a HEAD answer has no body */
        gh_h1_out_data(&o, spans, n, chunked);
        if (done && chunked)
            gh_h1_out_add(&o, GH_H1W_LAST_CHUNK, sizeof(GH_H1W_LAST_CHUNK) - 1);
    }
    if (hlen > 0 && o.cnt == 2 && o.iov[1].iov_len <= COALESCE_MAX) {
        /* the source kept the body within the room send_head gave: it fits behind the head */
        memcpy(hs + hlen, o.iov[1].iov_base, o.iov[1].iov_len);
        o.iov[0].iov_len += o.iov[1].iov_len;
        o.cnt = 1;
    }
    if (done)
        gh_phase_resp_end(ex);
    if (o.total == 0)
        return 0;
    return write_out(s, &o);
}

static int
h1_send_interim(struct gh_exchange *ex, const struct gh_resp *resp)
{
    struct h1_stream *s = gh_h1s_stream(ex);
    if (s->sflags & S_CLIENT_10) /* RFC 9110 §15.2: never to an HTTP/1.0 client */
        return 0;
    struct gh_conn *c = s->c;
    size_t hlen = gh_fwd_interim_head(c->w->hscratch, GH_BUF_SIZE, resp);
    if (hlen == 0)
        return 0; /* an interim response is advisory: drop one that does not fit */
    struct gh_h1_out o;
    gh_h1_out_init(&o);
    gh_h1_out_add(&o, c->w->hscratch, hlen);
    uint64_t before = ex->bytes_out;
    if (write_out(s, &o) != 0)
        return -1;
    ex->bytes_out = before; /* the log counts the final response only */
    return c->out != NULL ? 1 : 0;
}

static int
h1_flush(struct gh_exchange *ex)
{
    struct gh_conn *c = gh_h1s_stream(ex)->c;
    int rc = gh_xprt_flush(&c->x, &c->out);
    if (rc == 0) {
        ex->flags &= (uint16_t)~GH_EX_OUT_QUEUED;
        return GH_PUMP_MOVED;
    }
    if (rc == GH_AGAIN)
        return GH_PUMP_BLOCKED;
    gh_h1s_close(c);
    return GH_PUMP_ENDED;
}

static struct gh_xprt *
h1_splice_to(struct gh_exchange *ex)
{
    struct gh_conn *c = gh_h1s_stream(ex)->c;
    return c->out == NULL && gh_xprt_can_splice(&c->x) ? &c->x : NULL;
}

/* ------------------------------------------------------------------ */
/* the downstream: reading the request body                           */

/* The rest of a large Content-Length body by splice(2): client socket -> pipe
 * -> the source's transport, never more than the body (a pipelined request
 * behind it stays in the socket). */
static int
splice_body(struct h1_stream *s, struct gh_xprt *to)
{
    struct gh_exchange *ex = &s->ex;
    uint64_t in = 0, out = 0;
    int err = 0;
    enum gh_splice_rc st =
        gh_xprt_splice_pump(ex->req_pipe, &s->req_remaining, &s->c->x, to, &in, &out, &err);
    s->req_bytes += in;
    switch (st) {
    case GH_SPLICE_BLOCKED:
        ex->src->body_spliced(ex, in, out, 0);
        return in > 0 || out > 0 ? GH_PUMP_MOVED : GH_PUMP_BLOCKED;
    case GH_SPLICE_DONE:
        gh_pipe_put(ex->req_pipe);
        ex->req_pipe = NULL;
        ex->flags |= GH_EX_REQ_DONE;
        ex->src->body_spliced(ex, in, out, 1);
        return GH_PUMP_MOVED;
    case GH_SPLICE_OUT_ERR:
        gh_pipe_put(ex->req_pipe); /* bytes left in it: closed */
        ex->req_pipe = NULL;
        ex->src->body_spliced(ex, in, out, -1);
        return GH_PUMP_MOVED;
    default:
        ex->src->body_spliced(ex, in, out, 0);
        return gh_exchange_fail(ex, 400,
                                "client closed the connection in the middle of the request body");
    }
}

static int
h1_pump_body(struct gh_exchange *ex)
{
    struct h1_stream *s = gh_h1s_stream(ex);
    struct gh_conn *c = s->c;
    if (ex->flags & GH_EX_REQ_DONE)
        return GH_PUMP_BLOCKED;
    int from_buf = c->in != NULL && gh_buf_len(c->in) > 0;
    if (ex->req_pipe == NULL && !from_buf && s->req_body == GH_H1_BODY_LENGTH &&
        s->req_remaining >= SPLICE_MIN && ex->pc->splice && !(ex->flags & GH_EX_UPGRADE) &&
        gh_xprt_can_splice(&c->x) && ex->src->body_splice_to(ex) != NULL)
        ex->req_pipe = gh_pipe_get(); /* none to be had: copy as below */
    if (ex->req_pipe != NULL) {
        struct gh_xprt *to = ex->src->body_splice_to(ex);
        return to != NULL ? splice_body(s, to) : GH_PUMP_BLOCKED;
    }
    const char *p;
    size_t n;
    if (from_buf) {
        p = gh_buf_head(c->in);
        n = gh_buf_len(c->in);
    } else {
        if (gh_xprt_is(&c->x, GH_XPRT_EOF))
            return gh_exchange_fail(
                ex, 400, "client closed the connection in the middle of the request body");
        if (!gh_xprt_is(&c->x, GH_XPRT_CAN_READ))
            return GH_PUMP_BLOCKED;
        ssize_t rd = gh_xprt_recv(&c->x, c->w->scratch, GH_BUF_SIZE);
        if (rd == GH_AGAIN)
            return GH_PUMP_BLOCKED;
        if (rd <= 0)
            return gh_exchange_fail(
                ex, 400, "client closed the connection in the middle of the request body");
        p = c->w->scratch;
        n = (size_t)rd;
    }

    struct iovec spans[GH_H1_OUT_SPANS];
    int ns = 0, last = 0;
    size_t used = 0;
    if (s->req_body == GH_H1_BODY_LENGTH) {
        size_t k = n < s->req_remaining ? n : (size_t)s->req_remaining;
        spans[ns++] = (struct iovec){(void *)p, k};
        used = k;
        s->req_remaining -= k;
        s->req_bytes += k;
        last = s->req_remaining == 0;
    } else {
        /* the source re-frames what it is given as chunks: keep room for their size lines */
        size_t lim = GH_MIN(n, (size_t)(GH_BUF_SIZE - GH_H1_OUT_RESERVE));
        if (gh_h1_chunked_spans(&s->req_chunk, p, &used, lim, spans, GH_H1_OUT_SPANS, &ns,
                                &s->req_bytes, &last) != 0)
            return gh_exchange_fail(ex, 400,
                                    s->req_chunk.reason ? s->req_chunk.reason : "bad chunked body");
        uint64_t max = ex->pc->client_max_body_size;
        if (max != 0 && s->req_bytes > max)
            return gh_exchange_fail(ex, 413,
                                    "chunked request body larger than client_max_body_size");
    }
    int rc = ex->src->take_body(ex, spans, ns, last);
    if (rc == GH_PUMP_ENDED || (ex->flags & GH_EX_FAILED))
        return rc;
    if (last)
        ex->flags |= GH_EX_REQ_DONE;
    /* what was not used stays for later (pipelined requests, or bytes past the body) */
    if (gh_buf_keep_unused(&c->in, from_buf, p, n, used) != 0)
        return gh_exchange_fail(ex, 503, "out of memory");
    return GH_PUMP_MOVED;
}

/* ------------------------------------------------------------------ */
/* the downstream: the end of an exchange                             */

static void
h1_finish(struct gh_exchange *ex)
{
    struct h1_stream *s = gh_h1s_stream(ex);
    struct gh_conn *c = s->c;
    bool req_done = (ex->flags & GH_EX_REQ_DONE) != 0;
    bool keep = (s->sflags & S_KEEPALIVE) && !(c->flags & C_CLOSE_AFTER) && req_done;
    uint32_t ka_ms = ex->srv != NULL ? ex->srv->keepalive_timeout_ms : 0;
    gh_h1s_stream_end(c); /* the log line; the origin connection back to its pool */
    c->nreq++;
    if (!keep) {
        /* linger only when the client may still be sending: a plain close with
         * unread input would reset the connection under the response */
        if ((c->in != NULL && gh_buf_len(c->in) > 0) || !req_done)
            gh_h1s_linger(c);
        else
            gh_h1s_close(c);
        return;
    }
    gh_h1s_set_state(c, H1_IDLE);
    gh_timer_after(c->w->loop, &c->timer, ka_ms);
}

static void
h1_tunnel(struct gh_exchange *ex)
{
    struct gh_conn *c = gh_h1s_stream(ex)->c;
    gh_h1s_set_state(c, H1_TUNNEL);
}

static void
h1_abort(struct gh_exchange *ex)
{
    gh_h1s_close(gh_h1s_stream(ex)->c);
}

static void
h1_resume(struct gh_exchange *ex)
{
    gh_h1s_resume(gh_h1s_stream(ex)->c);
}

static int
h1_local_addr(struct gh_exchange *ex, struct sockaddr_storage *ss)
{
    return gh_xprt_local_addr(&gh_h1s_stream(ex)->c->x, ss);
}

const struct gh_downstream_ops gh_h1_down = {
    .send_head = h1_send_head,
    .send_interim = h1_send_interim,
    .send_body = h1_send_body,
    .flush = h1_flush,
    .splice_to = h1_splice_to,
    .pump_body = h1_pump_body,
    .finish = h1_finish,
    .tunnel = h1_tunnel,
    .abort = h1_abort,
    .local_addr = h1_local_addr,
    .resume = h1_resume,
};
