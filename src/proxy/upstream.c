/*
 * upstream.c - per-thread upstream state: config generations with their
 * balancer state, keep-alive pools of idle origin connections, and passive
 * health (a server whose connect failed is skipped for a while).
 */
#include <errno.h>
#include <unistd.h>

#include "core/log.h"
#include "proxy/worker.h"
#include "upstream/balance.h"

#define DOWN_MS 10000 /* skip a server this long after a failed connect */

struct gh_wcfg *
gh_wcfg_new(struct gh_config *cfg)
{
    struct gh_wcfg *wc = calloc(1, sizeof(*wc));
    if (wc == NULL)
        return NULL;
    uint32_t total = 0;
    for (uint32_t i = 0; i < cfg->n_upstreams; i++)
        total += cfg->upstreams[i].n_servers;
    wc->ups_off = calloc(cfg->n_upstreams + 1, sizeof(*wc->ups_off));
    wc->cw = calloc(total + 1, sizeof(*wc->cw));
    wc->rr = calloc(cfg->n_upstreams + 1, sizeof(*wc->rr));
    if (wc->ups_off == NULL || wc->cw == NULL || wc->rr == NULL) {
        gh_wcfg_free(wc);
        return NULL;
    }
    uint32_t off = 0;
    for (uint32_t i = 0; i < cfg->n_upstreams; i++) {
        wc->ups_off[i] = off;
        off += cfg->upstreams[i].n_servers;
    }
    wc->cfg = gh_conf_ref(cfg);
    return wc;
}

void
gh_wcfg_free(struct gh_wcfg *wc)
{
    if (wc == NULL)
        return;
    if (wc->cfg != NULL)
        gh_conf_unref(wc->cfg);
    free(wc->ups_off);
    free(wc->cw);
    free(wc->rr);
    free(wc);
}

struct pick_ctx {
    struct gh_worker *w;
    const struct gh_upstream_conf *ups;
};

static int
server_up(void *ctx, uint32_t i)
{
    struct pick_ctx *p = ctx;
    return p->w->pools[p->ups->servers[i].pool_slot].down_until <= gh_loop_now(p->w->loop);
}

const struct gh_upstream_server *
gh_balance_pick(struct gh_worker *w, struct gh_wcfg *wc, const struct gh_upstream_conf *ups,
                uint32_t attempt)
{
    uint32_t idx = (uint32_t)(ups - wc->cfg->upstreams);
    GH_ASSERT(idx < wc->cfg->n_upstreams);
    struct pick_ctx ctx = {w, ups};
    (void)attempt;
    uint32_t i =
        gh_balance_swrr(wc->cw + wc->ups_off[idx], ups->servers, ups->n_servers, server_up, &ctx);
    return &ups->servers[i];
}

void
gh_upconn_mark_down(struct gh_worker *w, uint32_t slot)
{
    w->pools[slot].down_until = gh_loop_now(w->loop) + DOWN_MS;
}

static void
pool_unlink(struct gh_worker *w, struct gh_upconn *u)
{
    struct gh_pool *p = &w->pools[u->slot];
    if (u->pool_prev != NULL)
        u->pool_prev->pool_next = u->pool_next;
    else
        p->head = u->pool_next;
    if (u->pool_next != NULL)
        u->pool_next->pool_prev = u->pool_prev;
    u->pool_prev = u->pool_next = NULL;
    p->count--;
}

void
gh_upconn_close(struct gh_upconn *u)
{
    if (u->flags & U_DEAD)
        return;
    struct gh_worker *w = u->w;
    if (u->req == NULL && (u->pool_prev != NULL || w->pools[u->slot].head == u))
        pool_unlink(w, u);
    gh_timer_stop(w->loop, &u->timer);
    gh_xprt_close(&u->x);
    u->flags |= U_DEAD;
    gh_buf_put(u->in);
    u->in = NULL;
    u->req = NULL;
    w->nupconns--;
    gh_loop_defer_free(w->loop, u, gh_worker_free_obj, &w->up_fl);
}

/* An idle pooled connection became readable: the origin closed it, or sent
 * bytes nobody asked for. Either way it can no longer be trusted. */
static void
pool_on_event(struct gh_io *io, uint32_t events)
{
    struct gh_upconn *u = gh_container_of(io, struct gh_upconn, x.io);
    if (u->flags & U_DEAD)
        return;
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        return;
    gh_upconn_close(u);
}

static void
pool_on_timeout(struct gh_timer *t)
{
    gh_upconn_close(gh_container_of(t, struct gh_upconn, timer));
}

struct gh_upconn *
gh_pool_take(struct gh_worker *w, uint32_t slot)
{
    struct gh_pool *p = &w->pools[slot];
    struct gh_upconn *u = p->head;
    if (u == NULL)
        return NULL;
    pool_unlink(w, u);
    /* the timer keeps its deadline: the request re-arms it (lazily, no heap work) */
    u->flags |= U_REUSED;
    gh_xprt_clear(&u->x, GH_XPRT_CAN_READ);
    gh_xprt_set(&u->x, GH_XPRT_CAN_WRITE);
    return u;
}

void
gh_pool_put(struct gh_worker *w, struct gh_upconn *u, uint32_t max_idle)
{
    struct gh_pool *p = &w->pools[u->slot];
    u->req = NULL;
    u->server = NULL;
    if (p->count >= max_idle || w->stopping || u->in != NULL) {
        gh_upconn_close(u);
        return;
    }
    u->x.io.cb = pool_on_event;
    u->timer.cb = pool_on_timeout;
    gh_timer_after(w->loop, &u->timer, u->keepalive_ms);
    u->pool_prev = NULL;
    u->pool_next = p->head;
    if (p->head != NULL)
        p->head->pool_prev = u;
    p->head = u;
    p->count++;
}

void
gh_pool_close_all(struct gh_worker *w)
{
    for (uint32_t s = 0; s < GH_CONF_MAX_POOL_SLOTS; s++)
        while (w->pools[s].head != NULL)
            gh_upconn_close(w->pools[s].head);
}
