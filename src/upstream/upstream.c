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
#include "upstream/health.h"

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

uint32_t
gh_upstream_trim_idle(struct gh_upstream_ctx *ctx, uint32_t max)
{
    uint32_t closed = 0;
    for (uint32_t b = 0; b < ctx->n_buckets && closed < max; b++)
        for (struct gh_peer *p = ctx->buckets[b]; p != NULL && closed < max;) {
            struct gh_peer *next = p->hnext;
            p->refs++; /* as in gh_upstream_ctx_stop: the peer outlives its last idle one */
            while (p->idle != NULL && closed < max) {
                struct gh_upconn *u = p->idle;
                while (u->pool_next != NULL) /* the least recently used first */
                    u = u->pool_next;
                gh_upconn_close(u);
                closed++;
            }
            gh_peer_put(ctx, p);
            p = next;
        }
    return closed;
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
    g->ring = calloc(cfg->n_upstreams + 1, sizeof(*g->ring));
    g->queue = calloc(cfg->n_upstreams + 1, sizeof(*g->queue));
    g->health = calloc(total + 1, sizeof(*g->health));
    g->weights = calloc(total + 1, sizeof(*g->weights));
    if (g->off == NULL || g->bal == NULL || g->peer == NULL || g->ring == NULL ||
        g->queue == NULL || g->health == NULL || g->weights == NULL) {
        gh_ups_gen_free(g);
        return NULL;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < cfg->n_upstreams; i++) {
        const struct gh_upstream_conf *u = &cfg->upstreams[i];
        g->off[i] = k;
        if (u->balance == GH_BALANCE_HASH && u->hash_consistent &&
            gh_balance_ring_build(&g->ring[i], u->servers, u->n_servers) != 0) {
            gh_ups_gen_free(g);
            return NULL;
        }
        for (uint32_t j = 0; j < u->n_servers; j++, k++) {
            const struct gh_upstream_server *s = &u->servers[j];
            g->peer[k] =
                gh_peer_get(ctx, &s->addr.ss, s->addr.len, s->tls != NULL ? s->tls->xprt_id : 0);
            bool shared = u->health != NULL || s->host != NULL;
            if (shared)
                g->health[k] = gh_health_get(u->name, s->addr.text, s->host != NULL);
            if (g->peer[k] == NULL || (shared && g->health[k] == NULL)) {
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
        for (uint32_t k = 0; k < total; k++) {
            gh_peer_put(g->ctx, g->peer[k]);
            if (g->health != NULL)
                gh_health_put(g->health[k]);
        }
    }
    if (g->ring != NULL)
        for (uint32_t i = 0; i < g->cfg->n_upstreams; i++)
            gh_balance_ring_free(&g->ring[i]);
    free(g->ring);
    free(g->queue);
    free(g->health);
    free(g->weights);
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
    uint32_t ms = ups->fail_timeout_ms > 0 ? ups->fail_timeout_ms : GH_UPSTREAM_DOWN_MS;
    g->peer[gen_index(g, ups, i)]->down_until = gh_loop_now(g->ctx->loop) + ms;
}

/* One more consecutive failure of server i: max_fails of them eject it, for fail_timeout
 * doubled for each ejection since its last success. */
static void
note_failure(struct gh_ups_gen *g, const struct gh_upstream_conf *ups, uint32_t i)
{
    struct gh_peer *p = g->peer[gen_index(g, ups, i)];
    p->fails++;
    if (ups->max_fails == 0 || p->fails < ups->max_fails)
        return;
    uint64_t ms = ups->fail_timeout_ms > 0 ? ups->fail_timeout_ms : GH_UPSTREAM_DOWN_MS;
    for (uint32_t k = 0; k < p->ejections && ms < GH_UPSTREAM_EJECT_MAX_MS; k++)
        ms *= 2;
    if (ms > GH_UPSTREAM_EJECT_MAX_MS)
        ms = GH_UPSTREAM_EJECT_MAX_MS;
    p->down_until = gh_loop_now(g->ctx->loop) + ms;
    if (p->ejections < 32)
        p->ejections++;
    p->fails = 0;
    if (ups->n_servers > 1)
        gh_log_warn("upstream %s: server %s down for %llu ms after %u consecutive failure%s",
                    ups->name, ups->servers[i].addr.text, (unsigned long long)ms, ups->max_fails,
                    ups->max_fails == 1 ? "" : "s");
}

/* ---- choosing and connecting ---- */

#define ANY_REGION UINT32_MAX

struct pick_ctx {
    struct gh_ups_gen *g;
    const struct gh_ups_try *t;
    uint32_t base;
    uint32_t region; /* `balance geo`: the region being tried (ANY_REGION: all) */
    bool backup;     /* the tier being tried */
    bool busy;       /* a server was left out only for being at max_conns */
    uint64_t mask;   /* upstreams of at most 64 servers: bit i, server i may be chosen (as the
                        last any_usable found: the balancer then tests bits) */
};

static int
usable(void *arg, uint32_t i)
{
    struct pick_ctx *pc = arg;
    const struct gh_upstream_conf *ups = pc->t->ups;
    const struct gh_upstream_server *s = &ups->servers[i];
    if (s->backup != pc->backup)
        return 0;
    if (i < 64 && (pc->t->tried & (1ull << i)))
        return 0;
    if (pc->region != ANY_REGION && s->region_idx != pc->region)
        return 0;
    if (gh_health_down(pc->g->health[pc->base + i])) /* active checks: even the only server */
        return 0;
    /* nginx: the only server of an upstream is never down (there is nothing else to try) */
    if (ups->n_servers > 1 && gh_peer_down(pc->g->ctx, pc->g->peer[pc->base + i]))
        return 0;
    if (s->max_conns > 0 && pc->g->bal[pc->base + i].inflight >= s->max_conns) {
        pc->busy = true;
        return 0;
    }
    return 1;
}

/* Is a server of the tier pc is set to eligible? (for at most 64 servers, pc->mask says which) */
static bool
any_usable(struct pick_ctx *pc)
{
    uint32_t n = pc->t->ups->n_servers;
    if (n <= 64) {
        uint64_t m = 0;
        for (uint32_t i = 0; i < n; i++)
            m |= (uint64_t)(usable(pc, i) != 0) << i;
        pc->mask = m;
        return m != 0;
    }
    for (uint32_t i = 0; i < n; i++)
        if (usable(pc, i))
            return true;
    return false;
}

/* The balancers' predicate: the tier's servers, as any_usable last found them. */
static int
in_tier(void *arg, uint32_t i)
{
    const struct pick_ctx *pc = arg;
    if (pc->t->ups->n_servers <= 64)
        return (int)((pc->mask >> i) & 1);
    return usable(arg, i);
}

/* The tier to pick from (false: the non-backup servers), or -EBUSY / -EHOSTDOWN when no
 * server of either may be chosen. */
static int
choose_tier(struct pick_ctx *pc)
{
    pc->backup = false;
    if (any_usable(pc))
        return 0;
    pc->backup = true;
    if (any_usable(pc))
        return 0;
    pc->backup = false;
    return pc->busy ? -EBUSY : -EHOSTDOWN;
}

/* May server i (a sticky cookie's) take the request? It must be of the tier chosen (a backup
 * server only while the others cannot be used), of any region. */
static bool
sticky_usable(const struct pick_ctx *pc, uint32_t i)
{
    if (i >= pc->t->ups->n_servers)
        return false;
    struct pick_ctx q = *pc;
    q.region = ANY_REGION;
    return usable(&q, i) != 0;
}

/* The algorithm that picks inside the tier (`balance geo` picks inside a region). */
static const struct gh_balancer *
balancer_of(const struct gh_upstream_conf *ups)
{
    if (ups->balance == GH_BALANCE_GEO)
        return gh_balancer_for(ups->geo_ewma ? GH_BALANCE_EWMA : GH_BALANCE_ROUND_ROBIN);
    return gh_balancer_for(ups->balance);
}

/* The index of the region named key[0..len) among the upstream's, or ANY_REGION. */
static uint32_t
region_of(const struct gh_upstream_conf *ups, const void *key, size_t len)
{
    for (uint32_t r = 0; r < ups->n_regions; r++)
        if (strlen(ups->regions[r]) == len && memcmp(ups->regions[r], key, len) == 0)
            return r;
    return ANY_REGION;
}

/* `balance geo`: set pc to the client's region (t->key_hash) when a non-backup server there may
 * be chosen, else to the first of its fallback regions that has one. Returns 0, or -1 (pc's
 * region is then ANY_REGION). */
static int
geo_tier(struct pick_ctx *pc, const struct gh_ups_try *t)
{
    const struct gh_upstream_conf *ups = t->ups;
    uint32_t r = t->key_hashed ? (uint32_t)t->key_hash : ANY_REGION;
    pc->backup = false;
    pc->region = r;
    if (r != ANY_REGION && any_usable(pc))
        return 0;
    for (uint32_t f = 0; r != ANY_REGION && f < ups->n_fallbacks; f++) {
        if (ups->fallbacks[f].from != r)
            continue;
        for (uint32_t j = 0; j < ups->fallbacks[f].n_next; j++) {
            pc->region = ups->fallbacks[f].next[j];
            if (any_usable(pc))
                return 0;
        }
    }
    pc->region = ANY_REGION;
    return -1;
}

/* Slow start: each server's weight (scaled) for this pick, ramping linearly over its
 * slow_start= since it came back (active checks' rise, or the end of an ejection). */
static const uint32_t *
slow_weights(struct gh_ups_gen *g, const struct gh_upstream_conf *ups, uint32_t base)
{
    uint64_t now = gh_loop_now(g->ctx->loop);
    for (uint32_t i = 0; i < ups->n_servers; i++) {
        const struct gh_upstream_server *s = &ups->servers[i];
        uint64_t w = (uint64_t)s->weight * GH_UPSTREAM_SLOW_SCALE;
        uint64_t since = gh_health_up_at(g->health[base + i]);
        if (g->peer[base + i]->down_until > since)
            since = g->peer[base + i]->down_until;
        if (s->slow_start_ms > 0 && since > 0 && now >= since && now - since < s->slow_start_ms) {
            w = w * (now - since) / s->slow_start_ms;
            if (w == 0)
                w = 1;
        }
        g->weights[base + i] = (uint32_t)w;
    }
    return g->weights + base;
}

int
gh_ups_pick(struct gh_ups_gen *g, struct gh_ups_try *t)
{
    const struct gh_upstream_conf *ups = t->ups;
    uint32_t base = gen_index(g, ups, 0);
    struct pick_ctx pc = {.g = g, .t = t, .base = base, .region = ANY_REGION};
    int rc = choose_tier(&pc);
    if (ups->n_servers == 1) { /* nothing to choose */
        t->server = 0;
        return rc;
    }
    if (!t->key_hashed && t->key != NULL) {
        t->key_hash = ups->balance == GH_BALANCE_GEO ? region_of(ups, t->key, t->key_len)
                                                     : gh_balance_hash(t->key, t->key_len);
        t->key_hashed = true;
    }
    if (rc == 0 && t->sticky != 0 && sticky_usable(&pc, t->sticky - 1)) {
        t->server = t->sticky - 1; /* the server its cookie names, while it may take it */
        return 0;
    }
    if (rc == 0 && ups->balance == GH_BALANCE_GEO && geo_tier(&pc, t) != 0)
        choose_tier(&pc); /* no server in the client's region or its fallbacks: any */
    struct gh_balance_in in = {.servers = ups->servers,
                               .st = g->bal + base,
                               .n = ups->n_servers,
                               .ok = in_tier,
                               .ok_ctx = &pc,
                               .key = t->key,
                               .key_len = t->key_len,
                               .key_hash = t->key_hash,
                               .ring = g->ring[ups->index].n > 0 ? &g->ring[ups->index] : NULL,
                               .attempt = t->attempts,
                               .now_ms = gh_loop_now(g->ctx->loop),
                               .weights = ups->slow_start ? slow_weights(g, ups, base) : NULL,
                               .bound_pct = ups->hash_bound_pct};
    t->server = balancer_of(ups)->pick(&in);
    GH_ASSERT(t->server < ups->n_servers);
    return rc;
}

bool
gh_ups_can_retry(struct gh_ups_gen *g, const struct gh_ups_try *t)
{
    const struct gh_upstream_conf *ups = t->ups;
    if (t->attempts > ups->retries || t->attempts >= ups->n_servers)
        return false;
    struct pick_ctx pc = {.g = g, .t = t, .base = gen_index(g, ups, 0), .region = ANY_REGION};
    return choose_tier(&pc) == 0;
}

/* A connection to named server s (gen index k): to one of its current addresses in turn, from
 * that address's pool. Returns as gh_upconn_open, or -EHOSTUNREACH when it has none. */
static int
open_named(struct gh_ups_gen *g, uint32_t k, const struct gh_upstream_server *s, bool fresh,
           const struct gh_upconn_params *params, const struct gh_upconn_ops *ops, void *owner,
           struct gh_upconn **out)
{
    static __thread uint32_t rr;
    struct sockaddr_storage ss;
    socklen_t len;
    if (g->health[k] == NULL || !gh_health_addr(g->health[k], rr++, &ss, &len))
        return -EHOSTUNREACH;
    struct gh_peer *p = gh_peer_get(g->ctx, &ss, len, s->tls != NULL ? s->tls->xprt_id : 0);
    if (p == NULL)
        return -ENOMEM;
    int rc = gh_upconn_open(g->ctx, p, &ss, len, s->tls, fresh, params, ops, owner, out);
    gh_peer_put(g->ctx, p); /* the connection holds its own reference */
    return rc;
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
        t->status = 0;
        if (t->server < 64)
            t->tried |= 1ull << t->server;
        struct gh_peer *peer = t->direct != NULL ? t->direct : g->peer[k];
        /* a connection that began with a PROXY header speaks for one client: never pooled, and
         * a pooled one (which began without) never used */
        bool pp = s->send_proxy != 0;
        int rc;
        if (t->direct_fd > 0) { /* raced already (the forward proxy): connected */
            rc = gh_upconn_adopt(g->ctx, peer, t->direct_fd, params, ops, owner, out);
            t->direct_fd = 0;
        } else if (t->direct == NULL && s->host != NULL) {
            rc = open_named(g, k, s, fresh || pp, params, ops, owner, out);
        } else {
            rc = gh_upconn_open(g->ctx, peer, &s->addr.ss, s->addr.len, s->tls, fresh || pp, params,
                                ops, owner, out);
        }
        if (rc == 0) {
            if (gh_unlikely(pp))
                (*out)->p.keepalive_max = 0;
            t->in_flight = true;
            t->t_start = gh_loop_now(g->ctx->loop);
            g->bal[k].inflight++;
            peer->inflight++;
            return 0;
        }
        if (rc == -ENOMEM || rc == -EMFILE || rc == -ENFILE)
            return rc; /* short here, not the server's failure */
        gh_log_warn("upstream %s: connect: %s", s->addr.text, strerror(-rc));
        gh_ups_attempt_done(g, t, GH_BALANCE_CONNECT);
        if (!(ups->retry_on & GH_RETRY_CONNECT) || !gh_ups_can_retry(g, t))
            return rc;
        gh_ups_pick(g, t);
        fresh = false;
    }
}

/* Does an attempt that ended with o (and the origin's status, 0: none) count toward max_fails?
 * A connect failure always; the rest as `fail_on` says. */
static bool
counts_as_failure(const struct gh_upstream_conf *ups, enum gh_balance_outcome o, uint16_t status,
                  bool was_in_flight)
{
    if (o == GH_BALANCE_CONNECT)
        return true;
    if (!was_in_flight)
        return false;
    uint32_t f = ups->fail_on;
    if (status >= 500 && status <= 599)
        return (f & GH_FAIL_5XX) || (status == 500 && (f & GH_FAIL_500)) ||
               (status == 502 && (f & GH_FAIL_502)) || (status == 503 && (f & GH_FAIL_503)) ||
               (status == 504 && (f & GH_FAIL_504));
    if (o == GH_BALANCE_TIMEOUT)
        return (f & GH_FAIL_TIMEOUT) != 0;
    return o == GH_BALANCE_BROKEN && status == 0 && (f & GH_FAIL_ERROR);
}

void
gh_ups_attempt_done(struct gh_ups_gen *g, struct gh_ups_try *t, enum gh_balance_outcome o)
{
    const struct gh_upstream_conf *ups = t->ups;
    if (ups == NULL)
        return;
    uint32_t k = gen_index(g, ups, t->server);
    bool was_in_flight = t->in_flight;
    struct gh_peer *peer = t->direct != NULL ? t->direct : g->peer[k];
    if (t->in_flight) {
        t->in_flight = false;
        g->bal[k].inflight--;
        peer->inflight--;
        const struct gh_balancer *b = balancer_of(ups);
        if (b->done != NULL) {
            uint64_t now = gh_loop_now(g->ctx->loop);
            b->done(g->bal + g->off[ups->index], ups->n_servers, t->server, o,
                    (uint32_t)(now - t->t_start), now);
        }
        if (gh_unlikely(g->n_waiting > 0)) /* a place is free: the first waiter */
            gh_ups_queue_wake(g, ups);
    }
    if (t->direct != NULL) /* a destination of its own: no health of a configured server */
        return;
    if (counts_as_failure(ups, o, t->status, was_in_flight)) {
        note_failure(g, ups, t->server);
    } else if (o == GH_BALANCE_OK && was_in_flight) {
        g->peer[k]->fails = 0;
        g->peer[k]->ejections = 0;
    }
}
