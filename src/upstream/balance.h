/*
 * balance.h - load-balancing algorithms over an upstream's servers.
 *
 * An algorithm is a pair of functions over per-thread state that the caller
 * owns (struct gh_balance_srv, one per server, zeroed once), so each worker
 * picks without locks and without allocating. What an algorithm sees when it
 * picks (struct gh_balance_in): the servers' configuration (weights), their
 * per-thread state (its own fields and the requests in flight), whether each
 * may be chosen now (not marked down, not already tried by this request, not
 * at max_conns, in the tier being tried), a request key's hash for hashing
 * algorithms (with the ring of consistent hashing), the attempt number (0 for
 * a request's first pick) and the time. When a request to a server ends,
 * `done` hears the outcome and the latency, which latency-aware algorithms
 * feed on.
 *
 * Every algorithm skips the servers for which ok() is 0 and, when none is
 * eligible, considers them all (the caller decides whether that pick is used).
 */
#ifndef GH_UPSTREAM_BALANCE_H
#define GH_UPSTREAM_BALANCE_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

/* Predicate: may server i be chosen now? */
typedef int (*gh_balance_ok_cb)(void *ctx, uint32_t i);

/* Per-thread state of one server of one upstream. */
struct gh_balance_srv {
    int32_t cw;        /* smooth weighted round robin (and least_conn's ties): current weight */
    uint32_t inflight; /* requests of this thread in flight to it */
    double ewma_ms;    /* ewma: peak EWMA of its response time, in ms */
    uint64_t ewma_at;  /* loop ms of the EWMA's last update; 0: never measured */
};

/* How an attempt to a server ended (the balancer's feedback). */
enum gh_balance_outcome {
    GH_BALANCE_OK = 0,    /* a response head came */
    GH_BALANCE_CONNECT,   /* the connection could not be made (refused, timed out) */
    GH_BALANCE_TIMEOUT,   /* connected, but no (complete) response in time */
    GH_BALANCE_BROKEN,    /* the connection broke or the response was malformed */
    GH_BALANCE_CANCELLED, /* the client went away; says nothing about the server */
};

/* Consistent hashing: points on a ring of 2^32, sorted by hash. */
struct gh_balance_point {
    uint32_t hash;
    uint32_t server;
};

struct gh_balance_ring {
    struct gh_balance_point *pts;
    uint32_t n;
};

/* Points per unit of weight (as nginx's `hash ... consistent`, ketama). */
#define GH_BALANCE_RING_POINTS 160

struct gh_balance_in {
    const struct gh_upstream_server *servers;
    struct gh_balance_srv *st;
    uint32_t n;
    gh_balance_ok_cb ok; /* NULL: all may be chosen */
    void *ok_ctx;
    const void *key; /* the request key (informational; the hash below is what is used) */
    size_t key_len;
    uint64_t key_hash;                  /* gh_balance_hash of the key (hashing algorithms) */
    const struct gh_balance_ring *ring; /* consistent hashing: the upstream's ring, else NULL */
    uint32_t attempt;
    uint64_t now_ms;         /* loop time (ewma's decay) */
    const uint32_t *weights; /* the weights to use (slow start ramps them), NULL: servers' */
    uint32_t bound_pct;      /* consistent hashing with bounded loads: a server is passed over
                                while its requests in flight reach bound_pct% of its share of
                                the total (+1); 0: unbounded */
};

/* The weight of server i in a pick. */
static inline uint32_t
gh_balance_weight(const struct gh_balance_in *in, uint32_t i)
{
    return in->weights != NULL ? in->weights[i] : in->servers[i].weight;
}

struct gh_balancer {
    const char *name;
    /* Pick a server: an index below in->n (see the top of this file). */
    uint32_t (*pick)(const struct gh_balance_in *in);
    /* An attempt to server i ended after latency_ms, at now_ms (NULL: nothing to learn). */
    void (*done)(struct gh_balance_srv *st, uint32_t n, uint32_t i, enum gh_balance_outcome o,
                 uint32_t latency_ms, uint64_t now_ms);
};

/* The algorithm a `balance` directive names. */
const struct gh_balancer *gh_balancer_for(enum gh_balance b);

/* The 64-bit hash of a key (FNV-1a with a murmur3 finaliser): the same key, the same server. */
uint64_t gh_balance_hash(const void *key, size_t len);

/*
 * Build the ring of consistent hashing for servers[0..n): GH_BALANCE_RING_POINTS
 * points per unit of weight, placed by hashing each server's address text and
 * the point's number (so a server keeps its points whatever the others are,
 * and removing one of N moves only the keys on its points, about 1/N). Returns
 * 0, or -ENOMEM. Free with gh_balance_ring_free.
 */
int gh_balance_ring_build(struct gh_balance_ring *r, const struct gh_upstream_server *servers,
                          uint32_t n);
void gh_balance_ring_free(struct gh_balance_ring *r);

/* Seed this thread's random numbers (random, ewma); they are seeded from the clock otherwise. */
void gh_balance_seed(uint64_t seed);

/*
 * Smooth weighted round robin (as nginx): every pick adds each eligible
 * server's weight to its current weight st[i].cw, picks the largest, and
 * subtracts the total from it. Equal weights give plain rotation; weights
 * 5,1,1 give a a b a c a a, spread rather than bunched. st has n entries
 * (zero-initialised once). Servers for which ok() is 0 are skipped; when none
 * is eligible, all are considered. Returns the index picked.
 */
uint32_t gh_balance_swrr(struct gh_balance_srv *st, const struct gh_upstream_server *servers,
                         uint32_t n, gh_balance_ok_cb ok, void *ctx);

#endif
