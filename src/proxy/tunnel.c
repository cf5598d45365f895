/*
 * tunnel.c - raw bytes both ways between two transports: after a 101
 * Switching Protocols now, a CONNECT next. Each direction is read into the
 * worker's scratch and written on at once; what the receiver does not take
 * waits in its `out` buffer, and nothing more is read for it until that has
 * gone (backpressure). A side's end of stream is passed on as a shutdown of
 * the other side's writing; the tunnel is over when both have ended and
 * nothing waits.
 */
#include "proxy/exchange.h"
#include "proxy/worker.h"

/* Both sides plain and nothing kept in user space: the kernel moves the bytes (splice through
 * a pipe, held only while it has bytes). Returns 1 progress, 0 blocked, -1 to copy instead. */
static int
splice_one(struct gh_tunnel_end *src, struct gh_tunnel_end *dst, int *err)
{
    if (dst->pipe == NULL || !gh_xprt_can_splice(src->x) || !gh_xprt_can_splice(dst->x) ||
        (*src->in != NULL && gh_buf_len(*src->in) > 0) || *dst->out != NULL)
        return -1;
    struct gh_pipe *pp = *dst->pipe;
    if (pp == NULL) {
        if (!gh_xprt_is(src->x, GH_XPRT_CAN_READ) || gh_xprt_is(src->x, GH_XPRT_EOF))
            return 0;
        if ((pp = *dst->pipe = gh_pipe_get()) == NULL)
            return -1;
    }
    uint64_t remaining = UINT64_MAX, in = 0, out = 0;
    int e = 0;
    enum gh_splice_rc rc = gh_xprt_splice_pump(pp, &remaining, src->x, dst->x, &in, &out, &e);
    if (dst->sent != NULL)
        *dst->sent += out;
    if (rc == GH_SPLICE_IN_ERR || rc == GH_SPLICE_OUT_ERR)
        *err = 1;
    else if (rc == GH_SPLICE_IN_EOF)
        gh_xprt_shutdown(dst->x);
    if (pp->len == 0) { /* nothing held: back to the cache until bytes come again */
        gh_pipe_put(pp);
        *dst->pipe = NULL;
    }
    return in > 0 || out > 0 || rc == GH_SPLICE_IN_EOF;
}

/* Move what src has (kept input first, else one read) into dst. Returns 1 progress, 0 blocked;
 * *err set when a side broke. */
static int
pump_one(struct gh_worker *w, struct gh_tunnel_end *src, struct gh_tunnel_end *dst, int *err)
{
    int sp = splice_one(src, dst, err);
    if (sp >= 0)
        return sp;
    size_t queued = *dst->out != NULL ? gh_buf_len(*dst->out) : 0;
    int rc = gh_xprt_flush(dst->x, dst->out);
    if (dst->sent != NULL)
        *dst->sent += queued - (*dst->out != NULL ? gh_buf_len(*dst->out) : 0);
    if (rc == GH_AGAIN)
        return 0;
    if (rc < 0) {
        *err = 1;
        return 0;
    }
    const char *p;
    size_t n;
    int from_buf = *src->in != NULL && gh_buf_len(*src->in) > 0;
    if (from_buf) {
        p = gh_buf_head(*src->in);
        n = gh_buf_len(*src->in);
    } else {
        if (!gh_xprt_is(src->x, GH_XPRT_CAN_READ) || gh_xprt_is(src->x, GH_XPRT_EOF))
            return 0;
        ssize_t rd = gh_xprt_recv(src->x, w->scratch, GH_BUF_SIZE);
        if (rd == GH_AGAIN)
            return 0;
        if (rd < 0) {
            *err = 1;
            return 0;
        }
        if (rd == 0) {
            gh_xprt_shutdown(dst->x);
            return 1;
        }
        p = w->scratch;
        n = (size_t)rd;
    }
    struct iovec iov = {(void *)p, n};
    ssize_t wn = gh_xprt_sendv(dst->x, &iov, 1, n);
    if (wn < 0) {
        *err = 1;
        return 0;
    }
    if (dst->sent != NULL)
        *dst->sent += (uint64_t)wn;
    if (from_buf) {
        gh_buf_consume(*src->in, (size_t)wn);
        if (gh_buf_len(*src->in) == 0) {
            gh_buf_put(*src->in);
            *src->in = NULL;
        }
    } else if ((size_t)wn < n && gh_buf_stash(dst->out, &iov, 1, (size_t)wn) != 0) {
        *err = 1; /* the bytes could not be kept: the stream would have a hole */
        return 0;
    }
    return 1;
}

int
gh_tunnel_pump(struct gh_worker *w, struct gh_tunnel_end *a, struct gh_tunnel_end *b)
{
    int err = 0, progress;
    do {
        progress = pump_one(w, a, b, &err);
        progress |= pump_one(w, b, a, &err);
    } while (progress && !err);
    bool piped = (a->pipe != NULL && *a->pipe != NULL) || (b->pipe != NULL && *b->pipe != NULL);
    if (err || (gh_xprt_is(a->x, GH_XPRT_EOF) && gh_xprt_is(b->x, GH_XPRT_EOF) && *a->out == NULL &&
                *b->out == NULL && !piped))
        return GH_PUMP_ENDED;
    gh_xprt_watch_writes(w->loop, a->x);
    gh_xprt_watch_writes(w->loop, b->x);
    return GH_PUMP_BLOCKED;
}

uint64_t
gh_tunnel_deadline(struct gh_loop *l, const struct gh_proxy_conf *pc, uint64_t t_start)
{
    uint64_t when = gh_loop_now(l) + pc->tunnel_idle_timeout_ms;
    if (pc->tunnel_timeout_ms != 0 && t_start + pc->tunnel_timeout_ms < when)
        when = t_start + pc->tunnel_timeout_ms;
    return when;
}
