/*
 * balance.c - balancing algorithms: smooth weighted round robin, weighted
 * least connections, power-of-two-choices random, hashing (modulo the weights,
 * or consistent on a ring), and peak EWMA of response times.
 *
 * Each algorithm is a pass over the servers that either keeps to the eligible
 * ones (strict) or considers them all; the pick runs the strict pass and, when
 * it finds none, the other. Everything is per thread: no locks, no allocation.
 */
#include "upstream/balance.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NONE UINT32_MAX

/* ewma: the decay time constant, the latency a failed attempt counts as at least, and the cost
 * of a server never measured that already has a request in flight (wait for its answer) */
#define EWMA_TAU_MS 10000.0
#define EWMA_FAIL_MS 1000.0
#define EWMA_PENALTY 1e9

/* non-consistent hash: how many other hashes of the key are tried before round robin */
#define HASH_TRIES 20

static inline int
eligible(const struct gh_balance_in *in, uint32_t i, int strict)
{
    return !strict || in->ok == NULL || in->ok(in->ok_ctx, i);
}

/* Run pass strictly, then over all servers when no server was eligible. */
static uint32_t
two_pass(const struct gh_balance_in *in, uint32_t (*pass)(const struct gh_balance_in *, int))
{
    if (in->n == 1)
        return 0;
    uint32_t i = pass(in, 1);
    if (i == NONE)
        i = pass(in, 0);
    return i;
}

/* ---- random numbers (per thread) ---- */

static __thread uint64_t rng_state;

void
gh_balance_seed(uint64_t seed)
{
    rng_state = seed != 0 ? seed : 0x9e3779b97f4a7c15ull;
}

static uint64_t
rng_next(void)
{
    if (rng_state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        gh_balance_seed((uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec ^
                        (uint64_t)(uintptr_t)&rng_state);
    }
    /* xorshift64* */
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* ---- hashing ---- */

uint64_t
gh_balance_hash(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return gh_mix64(h ^ len);
}

/* ---- smooth weighted round robin ---- */

static uint32_t
swrr_pass(struct gh_balance_srv *st, const struct gh_upstream_server *servers,
          const uint32_t *weights, uint32_t n, gh_balance_ok_cb ok, void *ctx, int strict)
{
    int32_t total = 0;
    uint32_t best = NONE;
    for (uint32_t i = 0; i < n; i++) {
        if (strict && ok != NULL && !ok(ctx, i))
            continue;
        int32_t w = (int32_t)(weights != NULL ? weights[i] : servers[i].weight);
        st[i].cw += w;
        total += w;
        if (best == NONE || st[i].cw > st[best].cw)
            best = i;
    }
    if (best != NONE)
        st[best].cw -= total;
    return best;
}

uint32_t
gh_balance_swrr(struct gh_balance_srv *st, const struct gh_upstream_server *servers, uint32_t n,
                gh_balance_ok_cb ok, void *ctx)
{
    if (n == 1)
        return 0;
    uint32_t i = swrr_pass(st, servers, NULL, n, ok, ctx, 1);
    if (i == NONE)
        i = swrr_pass(st, servers, NULL, n, ok, ctx, 0);
    return i;
}

static uint32_t
rr_pass(const struct gh_balance_in *in, int strict)
{
    return swrr_pass(in->st, in->servers, in->weights, in->n, in->ok, in->ok_ctx, strict);
}

static uint32_t
rr_pick(const struct gh_balance_in *in)
{
    return two_pass(in, rr_pass);
}

/* ---- least connections (weighted, as nginx) ---- */

/* Does a carry less load per weight than b? (in flight / weight, without dividing) */
static inline int
lighter(const struct gh_balance_in *in, uint32_t a, uint32_t b)
{
    return (uint64_t)in->st[a].inflight * gh_balance_weight(in, b) <
           (uint64_t)in->st[b].inflight * gh_balance_weight(in, a);
}

static uint32_t
lc_pass(const struct gh_balance_in *in, int strict)
{
    uint32_t best = NONE;
    for (uint32_t i = 0; i < in->n; i++)
        if (eligible(in, i, strict) && (best == NONE || lighter(in, i, best)))
            best = i;
    if (best == NONE)
        return NONE;
    /* the servers as light as the lightest share by smooth weighted round robin */
    int32_t total = 0;
    uint32_t pick = NONE;
    for (uint32_t i = 0; i < in->n; i++) {
        if (!eligible(in, i, strict) || lighter(in, best, i))
            continue;
        in->st[i].cw += (int32_t)gh_balance_weight(in, i);
        total += (int32_t)gh_balance_weight(in, i);
        if (pick == NONE || in->st[i].cw > in->st[pick].cw)
            pick = i;
    }
    in->st[pick].cw -= total;
    return pick;
}

static uint32_t
lc_pick(const struct gh_balance_in *in)
{
    return two_pass(in, lc_pass);
}

/* ---- power of two random choices ---- */

/* A weighted random server among the eligible ones other than except (NONE: none). */
static uint32_t
weighted_random(const struct gh_balance_in *in, int strict, uint32_t except)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < in->n; i++)
        if (i != except && eligible(in, i, strict))
            total += gh_balance_weight(in, i);
    if (total == 0)
        return NONE;
    uint64_t r = rng_next() % total;
    for (uint32_t i = 0; i < in->n; i++) {
        if (i == except || !eligible(in, i, strict))
            continue;
        if (r < gh_balance_weight(in, i))
            return i;
        r -= gh_balance_weight(in, i);
    }
    return NONE; /* not reached: ok() answered differently the second time */
}

static uint32_t
random_pass(const struct gh_balance_in *in, int strict)
{
    uint32_t a = weighted_random(in, strict, NONE);
    if (a == NONE)
        return NONE;
    uint32_t b = weighted_random(in, strict, a);
    return b != NONE && lighter(in, b, a) ? b : a;
}

static uint32_t
random_pick(const struct gh_balance_in *in)
{
    return two_pass(in, random_pass);
}

/* ---- hash ---- */

/* The server whose share of the total weight h falls in. */
static uint32_t
by_weight(const struct gh_balance_in *in, uint64_t h)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < in->n; i++)
        total += in->servers[i].weight;
    uint64_t r = h % total;
    for (uint32_t i = 0; i < in->n; i++) {
        if (r < in->servers[i].weight)
            return i;
        r -= in->servers[i].weight;
    }
    return 0;
}

/* nginx's `hash KEY`: the key's slot by weight; while that server may not be chosen, other
 * hashes of the key (a server of N that is down moves its keys, and only its keys, to the
 * others), then round robin */
static uint32_t
hash_pass(const struct gh_balance_in *in, int strict)
{
    uint64_t h = in->key_hash;
    for (uint32_t t = 0; t < HASH_TRIES; t++) {
        uint32_t i = by_weight(in, h);
        if (eligible(in, i, strict))
            return i;
        h = gh_mix64(h + t + 1);
    }
    return rr_pass(in, strict);
}

/* The first point at or after h on the ring (wrapping). */
static uint32_t
ring_find(const struct gh_balance_ring *r, uint32_t h)
{
    uint32_t lo = 0, hi = r->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->pts[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == r->n ? 0 : lo;
}

/* Bounded loads (Mirrokni, Thorup and Zadimoghaddam, as HAProxy's hash-balance-factor): may
 * server s take one more request? Its requests in flight stay below bound_pct% of its weighted
 * share of all requests in flight plus this one. m: that total + 1; w: the eligible weight. */
static inline int
under_bound(const struct gh_balance_in *in, uint32_t s, uint64_t m, uint64_t w)
{
    return (uint64_t)in->st[s].inflight * w * 100 <
           (uint64_t)in->bound_pct * m * gh_balance_weight(in, s);
}

/* Consistent: the key's point on the ring, then the next points while their server may not be
 * chosen (down, tried, busy, or over its bound): a failed server's keys spread over the others,
 * the rest stay. */
static uint32_t
ring_pass(const struct gh_balance_in *in, int strict)
{
    const struct gh_balance_ring *r = in->ring;
    uint64_t m = 1, w = 0;
    for (uint32_t i = 0; in->bound_pct > 0 && i < in->n; i++)
        if (eligible(in, i, strict)) {
            m += in->st[i].inflight;
            w += gh_balance_weight(in, i);
        }
    uint32_t k = ring_find(r, (uint32_t)(in->key_hash >> 32));
    uint32_t first = NONE;
    for (uint32_t step = 0; step < r->n; step++) {
        uint32_t s = r->pts[(k + step) % r->n].server;
        if (!eligible(in, s, strict))
            continue;
        if (in->bound_pct == 0 || under_bound(in, s, m, w))
            return s;
        if (first == NONE)
            first = s;
    }
    return first; /* every one at its bound (not with a factor above 1): the key's own */
}

static uint32_t
hash_pick(const struct gh_balance_in *in)
{
    if (in->ring != NULL && in->ring->n > 0)
        return two_pass(in, ring_pass);
    return two_pass(in, hash_pass);
}

static int
point_cmp(const void *a, const void *b)
{
    const struct gh_balance_point *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->server < y->server ? -1 : x->server > y->server;
}

int
gh_balance_ring_build(struct gh_balance_ring *r, const struct gh_upstream_server *servers,
                      uint32_t n)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += (uint64_t)servers[i].weight * GH_BALANCE_RING_POINTS;
    r->n = 0;
    r->pts = malloc((total > 0 ? total : 1) * sizeof(*r->pts));
    if (r->pts == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        const char *name = servers[i].addr.text != NULL ? servers[i].addr.text : "";
        size_t len = strlen(name);
        uint64_t base = gh_balance_hash(name, len);
        for (uint32_t v = 0; v < servers[i].weight * GH_BALANCE_RING_POINTS; v++) {
            uint64_t h = gh_mix64(base ^ ((uint64_t)v * 0x9e3779b97f4a7c15ull + 1));
            r->pts[r->n++] = (struct gh_balance_point){(uint32_t)(h >> 32), i};
        }
    }
    qsort(r->pts, r->n, sizeof(*r->pts), point_cmp);
    return 0;
}

void
gh_balance_ring_free(struct gh_balance_ring *r)
{
    free(r->pts);
    r->pts = NULL;
    r->n = 0;
}

/* ---- peak EWMA ---- */

/* Fold a measurement into the server's EWMA: a peak is taken at once, lower values with the
 * weight of the time since the last one (decay EWMA_TAU_MS). */
static void
ewma_observe(struct gh_balance_srv *s, double ms, uint64_t now)
{
    if (s->ewma_at == 0) {
        s->ewma_ms = ms;
        s->ewma_at = now > 0 ? now : 1;
        return;
    }
    double w = now > s->ewma_at ? exp(-(double)(now - s->ewma_at) / EWMA_TAU_MS) : 1.0;
    if (now > s->ewma_at)
        s->ewma_at = now;
    s->ewma_ms = ms > s->ewma_ms ? ms : s->ewma_ms * w + ms * (1.0 - w);
}

/* The cost of sending one more request to server i: its latency (decayed toward 0 while it
 * is not measured, so a server once slow is tried again) times the requests it would have. */
static double
ewma_cost(const struct gh_balance_in *in, uint32_t i)
{
    struct gh_balance_srv *s = &in->st[i];
    if (s->ewma_at == 0)
        return s->inflight > 0 ? EWMA_PENALTY + s->inflight : 0.0;
    ewma_observe(s, 0.0, in->now_ms);
    return (s->ewma_ms + 1.0) * (s->inflight + 1) / gh_balance_weight(in, i);
}

static uint32_t
ewma_pass(const struct gh_balance_in *in, int strict)
{
    uint32_t a = weighted_random(in, strict, NONE);
    if (a == NONE)
        return NONE;
    uint32_t b = weighted_random(in, strict, a);
    return b != NONE && ewma_cost(in, b) < ewma_cost(in, a) ? b : a;
}

static uint32_t
ewma_pick(const struct gh_balance_in *in)
{
    return two_pass(in, ewma_pass);
}

static void
ewma_done(struct gh_balance_srv *st, uint32_t n, uint32_t i, enum gh_balance_outcome o,
          uint32_t latency_ms, uint64_t now_ms)
{
    if (o == GH_BALANCE_CANCELLED || i >= n)
        return; /* says nothing about the server */
    double ms = latency_ms;
    if (o != GH_BALANCE_OK && ms < EWMA_FAIL_MS)
        ms = EWMA_FAIL_MS;
    ewma_observe(&st[i], ms, now_ms);
}

/* ---- as gh_balancers ---- */

static const struct gh_balancer balancers[] = {
    [GH_BALANCE_ROUND_ROBIN] = {"round_robin", rr_pick, NULL},
    [GH_BALANCE_LEAST_CONN] = {"least_conn", lc_pick, NULL},
    [GH_BALANCE_RANDOM] = {"random", random_pick, NULL},
    [GH_BALANCE_HASH] = {"hash", hash_pick, NULL},
    [GH_BALANCE_EWMA] = {"ewma", ewma_pick, ewma_done},
};

const struct gh_balancer *
gh_balancer_for(enum gh_balance b)
{
    if ((unsigned)b >= sizeof(balancers) / sizeof(balancers[0]))
        return &balancers[GH_BALANCE_ROUND_ROBIN];
    return &balancers[b];
}
