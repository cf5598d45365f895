/*
 * balance.h - load-balancing algorithms over an upstream's servers.
 *
 * An algorithm is a pair of functions over per-thread state that the caller
 * owns (struct gh_balance_srv, one per server, zeroed once), so each worker
 * picks without locks. What an algorithm sees when it picks (struct
 * gh_balance_in): the servers' configuration (weights), their per-thread
 * state (its own fields and the requests in flight), whether each may be
 * chosen now (not marked down, not already tried by this request), a request
 * key for hashing algorithms, and the attempt number (0 for a request's first
 * pick). When a request to a server ends, `done` hears the outcome and the
 * latency, which latency-aware algorithms feed on.
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
    int32_t cw;        /* smooth weighted round robin: current weight */
    uint32_t inflight; /* requests of this thread in flight to it */
};

/* How an attempt to a server ended (the balancer's feedback). */
enum gh_balance_outcome {
    GH_BALANCE_OK = 0,    /* a response head came */
    GH_BALANCE_CONNECT,   /* the connection could not be made (refused, timed out) */
    GH_BALANCE_TIMEOUT,   /* connected, but no (complete) response in time */
    GH_BALANCE_BROKEN,    /* the connection broke or the response was malformed */
    GH_BALANCE_CANCELLED, /* the client went away; says nothing about the server */
};

struct gh_balance_in {
    const struct gh_upstream_server *servers;
    struct gh_balance_srv *st;
    uint32_t n;
    gh_balance_ok_cb ok; /* NULL: all may be chosen */
    void *ok_ctx;
    const void *key; /* request key for hashing algorithms (NULL: none) */
    size_t key_len;
    uint32_t attempt;
};

struct gh_balancer {
    const char *name;
    /* Pick a server: an index below in->n. Servers for which ok() is 0 are
     * skipped; when none is eligible, all are considered. */
    uint32_t (*pick)(const struct gh_balance_in *in);
    /* An attempt to server i ended after latency_ms (NULL: nothing to learn). */
    void (*done)(struct gh_balance_srv *st, uint32_t n, uint32_t i, enum gh_balance_outcome o,
                 uint32_t latency_ms);
};

/* The algorithm a `balance` directive names. */
const struct gh_balancer *gh_balancer_for(enum gh_balance b);

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
