/*
 * upstream.c - the per-thread origin side: peers keyed at run time, their
 * passive health, config generations' balancing state, and choosing and
 * connecting with fallback.
 */
#include "upstream/upstream.h"

#include <string.h>

#include "core/log.h"
#include "net/tls.h"
#include "upstream/h1client.h"

#define PEER_BUCKETS_MIN 64

/* ---- context ---- */

void
gh_upstream_ctx_init(struct gh_upstream_ctx *ctx, struct gh_loop *loop, char *scratch)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->loop = loop;
    ctx->scratch = scratch;
    ctx->conn_fl.size = sizeof(struct gh_upconn);
    ctx->conn_fl.max_cached = 1024;
}

void
gh_upstream_ctx_stop(struct gh_upstream_ctx *ctx)
{
    ctx->stopping = true;
    for (uint32_t b = 0; b < ctx->n_buckets; b++)
        for (struct gh_peer *p = ctx->buckets[b]; p != NULL;) {
            struct gh_peer *next = p->hnext;
            /* closing the last idle connection of an unreferenced peer frees it: hold it */
            p->refs++;
            while (p->idle != NULL)
                gh_upconn_close(p->idle);
            gh_peer_put(ctx, p);
            p = next;
        }
}

void
gh_upstream_ctx_fini(struct gh_upstream_ctx *ctx)
{
    gh_upstream_ctx_stop(ctx);
    gh_loop_run_deferred(ctx->loop);
    GH_ASSERT(ctx->n_peers == 0);
    free(ctx->buckets);
    ctx->buckets = NULL;
    gh_freelist_drain(&ctx->conn_fl);
}

/* ---- peers ---- */

static uint32_t
peer_hash(const struct sockaddr_storage *ss, socklen_t len, uint32_t xprt_id)
{
    /* FNV-1a over the address bytes (the port and address; zero padding) and the id */
    const unsigned char *b = (const unsigned char *)ss;
    uint32_t h = 2166136261u ^ xprt_id;
    for (socklen_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

static void
rehash(struct gh_upstream_ctx *ctx, uint32_t n)
{
    struct gh_peer **nb = calloc(n, sizeof(*nb));
    if (nb == NULL)
        return; /* longer chains, still correct */
    for (uint32_t b = 0; b < ctx->n_buckets; b++)
        for (struct gh_peer *p = ctx->buckets[b]; p != NULL;) {
            struct gh_peer *next = p->hnext;
            p->hnext = nb[p->hash & (n - 1)];
            nb[p->hash & (n - 1)] = p;
            p = next;
        }
    free(ctx->buckets);
    ctx->buckets = nb;
    ctx->n_buckets = n;
}

struct gh_peer *
gh_peer_get(struct gh_upstream_ctx *ctx, const struct sockaddr_storage *ss, socklen_t len,
            uint32_t xprt_id)
{
    GH_ASSERT(len <= sizeof(*ss));
    uint32_t h = peer_hash(ss, len, xprt_id);
    if (ctx->n_buckets > 0)
        for (struct gh_peer *p = ctx->buckets[h & (ctx->n_buckets - 1)]; p != NULL; p = p->hnext)
            if (p->hash == h && p->len == len && p->xprt_id == xprt_id &&
                memcmp(&p->ss, ss, len) == 0) {
                p->refs++;
                return p;
            }
    if (ctx->n_peers >= ctx->n_buckets)
        rehash(ctx, ctx->n_buckets ? ctx->n_buckets * 2 : PEER_BUCKETS_MIN);
    if (ctx->n_buckets == 0)
        return NULL;
    struct gh_peer *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    memcpy(&p->ss, ss, len);
    p->len = len;
    p->xprt_id = xprt_id;
    p->hash = h;
    p->refs = 1;
    p->hnext = ctx->buckets[h & (ctx->n_buckets - 1)];
    ctx->buckets[h & (ctx->n_buckets - 1)] = p;
    ctx->n_peers++;
    return p;
}

void
gh_peer_put(struct gh_upstream_ctx *ctx, struct gh_peer *p)
{
    if (p == NULL)
        return;
    GH_ASSERT(p->refs > 0);
    if (--p->refs > 0)
        return;
    /* no generation and no connection (so no idle one) refers to it any more */
    GH_ASSERT(p->idle == NULL);
    struct gh_peer **pp = &ctx->buckets[p->hash & (ctx->n_buckets - 1)];
    while (*pp != p)
        pp = &(*pp)->hnext;
    *pp = p->hnext;
    ctx->n_peers--;
    gh_tls_session_free(p->tls_sess);
    free(p);
}

/* ---- generations ---- */

struct gh_ups_gen *
gh_ups_gen_new(struct gh_upstream_ctx *ctx, const struct gh_config *cfg)
{
    struct gh_ups_gen *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->ctx = ctx;
    g->cfg = cfg;
    uint32_t total = 0;
    for (uint32_t i = 0; i < cfg->n_upstreams; i++)
        total += cfg->upstreams[i].n_servers;
    g->off = calloc(cfg->n_upstreams + 1, sizeof(*g->off));
    g->bal = calloc(total + 1, sizeof(*g->bal));
    g->peer = calloc(total + 1, sizeof(*g->peer));
    if (g->off == NULL || g->bal == NULL || g->peer == NULL) {
        gh_ups_gen_free(g);
        return NULL;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < cfg->n_upstreams; i++) {
        const struct gh_upstream_conf *u = &cfg->upstreams[i];
        g->off[i] = k;
        for (uint32_t j = 0; j < u->n_servers; j++, k++) {
            const struct gh_upstream_server *s = &u->servers[j];
            g->peer[k] =
                gh_peer_get(ctx, &s->addr.ss, s->addr.len, s->tls != NULL ? s->tls->xprt_id : 0);
            if (g->peer[k] == NULL) {
                gh_ups_gen_free(g);
                return NULL;
            }
        }
    }
    return g;
}

void
gh_ups_gen_free(struct gh_ups_gen *g)
{
    if (g == NULL)
        return;
    if (g->peer != NULL) {
        uint32_t total = 0;
        for (uint32_t i = 0; i < g->cfg->n_upstreams; i++)
            total += g->cfg->upstreams[i].n_servers;
        for (uint32_t k = 0; k < total; k++)
            gh_peer_put(g->ctx, g->peer[k]);
    }
    free(g->off);
    free(g->bal);
    free(g->peer);
    free(g);
}

static inline uint32_t
gen_index(const struct gh_ups_gen *g, const struct gh_upstream_conf *ups, uint32_t i)
{
    GH_ASSERT(ups->index < g->cfg->n_upstreams && &g->cfg->upstreams[ups->index] == ups);
    return g->off[ups->index] + i;
}

void
gh_ups_mark_down(struct gh_ups_gen *g, const struct gh_upstream_conf *ups, uint32_t i)
{
    g->peer[gen_index(g, ups, i)]->down_until = gh_loop_now(g->ctx->loop) + GH_UPSTREAM_DOWN_MS;
}

/* ---- choosing and connecting ---- */

struct pick_ctx {
    struct gh_ups_gen *g;
    struct gh_ups_try *t;
    uint32_t base;
};

static int
usable(void *arg, uint32_t i)
{
    struct pick_ctx *pc = arg;
    if (i < 64 && (pc->t->tried & (1ull << i)))
        return 0;
    return !gh_peer_down(pc->g->ctx, pc->g->peer[pc->base + i]);
}

void
gh_ups_pick(struct gh_ups_gen *g, struct gh_ups_try *t)
{
    const struct gh_upstream_conf *ups = t->ups;
    if (ups->n_servers == 1) { /* nothing to choose */
        t->server = 0;
        return;
    }
    uint32_t base = gen_index(g, ups, 0);
    struct pick_ctx pc = {g, t, base};
    struct gh_balance_in in = {.servers = ups->servers,
                               .st = g->bal + base,
                               .n = ups->n_servers,
                               .ok = usable,
                               .ok_ctx = &pc,
                               .key = t->key,
                               .key_len = t->key_len,
                               .attempt = t->attempts};
    t->server = gh_balancer_for(ups->balance)->pick(&in);
    GH_ASSERT(t->server < ups->n_servers);
}

int
gh_ups_connect(struct gh_ups_gen *g, struct gh_ups_try *t, bool fresh,
               const struct gh_upconn_params *params, const struct gh_upconn_ops *ops, void *owner,
               struct gh_upconn **out)
{
    const struct gh_upstream_conf *ups = t->ups;
    for (;;) {
        const struct gh_upstream_server *s = gh_ups_server(t);
        uint32_t k = gen_index(g, ups, t->server);
        t->attempts++;
        if (t->server < 64)
            t->tried |= 1ull << t->server;
        int rc = gh_upconn_open(g->ctx, g->peer[k], &s->addr.ss, s->addr.len, s->tls, fresh, params,
                                ops, owner, out);
        if (rc == 0) {
            t->in_flight = true;
            t->t_start = gh_loop_now(g->ctx->loop);
            g->bal[k].inflight++;
            g->peer[k]->inflight++;
            return 0;
        }
        if (rc == -ENOMEM)
            return rc;
        gh_log_warn("upstream %s: connect: %s", s->addr.text, strerror(-rc));
        gh_ups_attempt_done(g, t, GH_BALANCE_CONNECT);
        if (t->attempts >= ups->n_servers)
            return rc;
        gh_ups_pick(g, t);
        fresh = false;
    }
}

void
gh_ups_attempt_done(struct gh_ups_gen *g, struct gh_ups_try *t, enum gh_balance_outcome o)
{
    const struct gh_upstream_conf *ups = t->ups;
    if (ups == NULL)
        return;
    uint32_t k = gen_index(g, ups, t->server);
    if (t->in_flight) {
        t->in_flight = false;
        g->bal[k].inflight--;
        g->peer[k]->inflight--;
        const struct gh_balancer *b = gh_balancer_for(ups->balance);
        if (b->done != NULL) {
            uint64_t now = gh_loop_now(g->ctx->loop);
            b->done(g->bal + g->off[ups->index], ups->n_servers, t->server, o,
                    (uint32_t)(now - t->t_start));
        }
    }
    if (o == GH_BALANCE_CONNECT)
        gh_ups_mark_down(g, ups, t->server);
}
