/*
 * upstream.h - the origin side of a worker thread: destinations ("peers")
 * with their keep-alive pools and passive health, the balancing state of
 * each config generation, and choosing and connecting to a server with
 * fallback to the others.
 *
 * Nothing here includes src/proxy/: the reverse proxy drives it per request,
 * and active health checks or the forward proxy can drive it directly.
 *
 * Peers are keyed at run time by address and transport settings (a TLS peer
 * will add SNI and verification to the key), in a per-thread hash table, so
 * destinations can appear while running (a forward proxy reaches arbitrary
 * hosts) and pools survive reloads: a server that stays in the new config
 * finds its peer, with its idle connections, again. A peer lives while a
 * config generation or a connection refers to it.
 *
 * Lifetimes: the context lives as long as its thread; a generation as long as
 * its config is used by this thread; a struct gh_ups_try as long as the
 * request that makes it.
 */
#ifndef GH_UPSTREAM_UPSTREAM_H
#define GH_UPSTREAM_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "core/buf.h"
#include "core/loop.h"
#include "upstream/balance.h"

struct gh_upconn;

/* Passive health: a server ejected for fail_timeout (default 10 s) after max_fails consecutive
 * failures, for twice as long each time it fails again before a success, at most this long. */
#define GH_UPSTREAM_DOWN_MS 10000
#define GH_UPSTREAM_EJECT_MAX_MS 300000

/* One destination of this thread: address plus transport settings. */
struct gh_peer {
    struct sockaddr_storage ss;
    socklen_t len;
    uint32_t xprt_id; /* 0: plain TCP; else the TLS settings' id (gh_tls_client_id) */
    uint32_t hash;
    struct gh_peer *hnext;  /* hash chain */
    struct gh_upconn *idle; /* keep-alive pool, most recently used first */
    uint32_t n_idle;
    uint32_t refs;       /* generations and connections pointing here */
    uint32_t inflight;   /* requests of this thread in flight to it */
    uint64_t down_until; /* loop ms: skip it until then */
    uint32_t fails;      /* consecutive failures (connect failures, timeouts) since a success */
    uint32_t ejections;  /* consecutive ejections since a success (the next one lasts 2^n x) */
    void *tls_sess;      /* TLS: the session the next connection resumes (net/tls.h) */
};

struct gh_upstream_ctx {
    struct gh_loop *loop;
    char *scratch; /* the thread's shared read buffer, GH_BUF_SIZE bytes */
    struct gh_freelist conn_fl;
    struct gh_peer **buckets;
    uint32_t n_buckets;
    uint32_t n_peers;
    uint32_t n_conns; /* open origin connections */
    bool stopping;    /* nothing goes back to a pool any more */
};

/* Set up ctx for a thread whose loop is loop and whose read buffer is scratch. */
void gh_upstream_ctx_init(struct gh_upstream_ctx *ctx, struct gh_loop *loop, char *scratch);

/* Stop pooling (draining): close every idle connection; busy ones close after their request. */
void gh_upstream_ctx_stop(struct gh_upstream_ctx *ctx);

/*
 * The process ran out of file descriptors: close up to max idle pooled
 * connections (the least recently used of each peer first), so an accept or
 * a connect can have one. Returns how many were closed.
 */
uint32_t gh_upstream_trim_idle(struct gh_upstream_ctx *ctx, uint32_t max);

/* Release what the context holds (after the loop stopped and every generation is freed). */
void gh_upstream_ctx_fini(struct gh_upstream_ctx *ctx);

/*
 * The peer for address ss/len with transport settings xprt_id: found, or
 * added. Takes a reference (drop it with gh_peer_put). NULL when out of memory.
 */
struct gh_peer *gh_peer_get(struct gh_upstream_ctx *ctx, const struct sockaddr_storage *ss,
                            socklen_t len, uint32_t xprt_id);
void gh_peer_put(struct gh_upstream_ctx *ctx, struct gh_peer *p);

/* Is p marked down (a recent connect failure)? */
static inline bool
gh_peer_down(const struct gh_upstream_ctx *ctx, const struct gh_peer *p)
{
    return p->down_until > gh_loop_now(ctx->loop);
}

/*
 * A request waiting for a server of its upstream to drop below max_conns
 * (`queue N [timeout=D]`): in the generation's per-upstream FIFO on this
 * thread. Its owner embeds it and sets timer.cb to NULL before the first
 * gh_ups_wait (which sets up the rest); nothing else needs clearing.
 */
struct gh_ups_wait;
struct gh_ups_queue;
struct gh_ups_gen;
typedef void (*gh_ups_wait_cb)(struct gh_ups_wait *w, bool timed_out);
struct gh_ups_wait {
    struct gh_ups_wait *prev, *next;
    struct gh_timer timer;
    uint64_t deadline; /* loop ms; 0: not waited yet (the first wait sets it) */
    gh_ups_wait_cb cb;
    struct gh_ups_queue *q; /* the list it is (or was last) on */
    struct gh_ups_gen *g;   /* whose */
    bool queued;            /* on the list */
    bool woken;             /* taken off it by a finished request: cb runs with the next timers */
};

struct gh_ups_queue {
    struct gh_ups_wait *head, *tail;
    uint32_t n;
};

/* Per-thread state of one config generation's upstreams. */
struct gh_ups_gen {
    struct gh_upstream_ctx *ctx;
    const struct gh_config *cfg;  /* borrowed: the owner holds a reference */
    uint32_t *off;                /* per upstream: index of its first server in the arrays below */
    struct gh_balance_srv *bal;   /* per server: the balancer's state */
    struct gh_peer **peer;        /* per server: its peer (a reference each) */
    struct gh_balance_ring *ring; /* per upstream: `balance hash KEY consistent`'s ring */
    struct gh_ups_queue *queue;   /* per upstream: requests waiting for a server (queue.c) */
    uint32_t n_waiting;           /* in all of them (one test on the hot path) */
    struct gh_health **health;    /* per server: the active checks' shared state (NULL: none) */
    uint32_t *weights;            /* per server: slow start's weights (scratch of a pick) */
};

/* Slow start: weights are scaled by this while a server of the upstream ramps up, so that a
 * weight of 1 can grow smoothly. */
#define GH_UPSTREAM_SLOW_SCALE 100

/* State for cfg's upstreams on this thread. NULL when out of memory. */
struct gh_ups_gen *gh_ups_gen_new(struct gh_upstream_ctx *ctx, const struct gh_config *cfg);
void gh_ups_gen_free(struct gh_ups_gen *g);

/*
 * One request's attempts at an upstream. Zero it, set ups, then pick; each
 * attempt that got a connection ends with gh_ups_attempt_done (the balancer's
 * completion feedback).
 */
struct gh_ups_try {
    const struct gh_upstream_conf *ups;
    uint32_t server;   /* index in ups->servers of the current attempt */
    uint32_t attempts; /* servers tried so far */
    uint64_t tried;    /* bit i: server i was tried (servers past 64 are not tracked) */
    uint64_t t_start;  /* loop ms when the current attempt started */
    bool in_flight;    /* the current attempt counts as in flight */
    const void *key;   /* request key for hashing balancers (NULL: none); read by the first
                          pick only, which keeps its hash for the retries' picks */
    size_t key_len;
    uint64_t key_hash;
    bool key_hashed;
    uint16_t status; /* the status the current attempt's origin answered (0: none yet) */
    uint32_t sticky; /* `sticky cookie`: 1 + the server the request's cookie names (0: none) */
    /* a destination chosen at run time (the forward proxy): its peer (a reference the owner
     * drops) and its server entry stand in for the upstream's only server, a placeholder */
    struct gh_peer *direct;
    const struct gh_upstream_server *direct_srv;
    int direct_fd; /* > 0: a socket already connected to direct, for the first attempt */
};

/* The server of the current attempt. */
static inline const struct gh_upstream_server *
gh_ups_server(const struct gh_ups_try *t)
{
    return t->direct_srv != NULL ? t->direct_srv : &t->ups->servers[t->server];
}

/*
 * Pick the server for the next attempt: among the servers not down (active
 * checks, or passive health; passive health never takes down the only server
 * of an upstream), not already tried by this request and not at max_conns,
 * the non-backup ones first, then the backup ones. The server a `sticky`
 * cookie names (t->sticky) comes first when it may be chosen. `balance geo` tries the
 * client's region (the key: a region name), then its `region_fallback` regions
 * in order, then every server. Returns 0, or when no server is eligible -EBUSY (some are only
 * at max_conns) or -EHOSTDOWN (all down or tried); t->server is then still
 * set, by the balancer among all, for a caller that goes on regardless.
 */
int gh_ups_pick(struct gh_ups_gen *g, struct gh_ups_try *t);

/* May the request go to another server after its current attempt failed? (attempts within
 * 1 + ups->retries, and an eligible server it has not tried) */
bool gh_ups_can_retry(struct gh_ups_gen *g, const struct gh_ups_try *t);

/*
 * Get a connection for the current attempt's server: a pooled one unless
 * fresh is set, else a new connect; an immediate connect failure is logged,
 * counts as the server's failure and moves on to the next server while
 * `retry_on connect_failure` and `retries` allow it. On success the attempt counts as in flight and
 * *out is attached to owner (maybe still connecting). Returns 0, or -errno when no server could be
 * reached (nothing attached).
 */
struct gh_upconn_params;
struct gh_upconn_ops;
int gh_ups_connect(struct gh_ups_gen *g, struct gh_ups_try *t, bool fresh,
                   const struct gh_upconn_params *params, const struct gh_upconn_ops *ops,
                   void *owner, struct gh_upconn **out);

/*
 * The current attempt ended with outcome o: it no longer counts as in flight,
 * the balancer hears the outcome and latency, and passive health hears of it:
 * a connect failure, and what `fail_on` names (a timeout by default; errors,
 * 5xx statuses in t->status), is one more consecutive failure (max_fails of
 * them eject the server for fail_timeout, doubling while it keeps failing), any
 * other response resets the count. Safe to call when no attempt is in flight (then
 * only a connect failure is recorded).
 */
void gh_ups_attempt_done(struct gh_ups_gen *g, struct gh_ups_try *t, enum gh_balance_outcome o);

/*
 * Every server of ups is at max_conns (gh_ups_pick said -EBUSY):
 * wait in the upstream's queue (`queue N [timeout=D]`) until a request of it
 * ends, then cb(w, false) runs (from a timer, never inside the call that woke
 * it): pick again (another request may have taken the place: wait again); or
 * the time since the first wait reaches the timeout: cb(w, true). Returns 0,
 * or -EBUSY when the upstream has no queue or it is full.
 */
int gh_ups_wait(struct gh_ups_gen *g, const struct gh_upstream_conf *ups, struct gh_ups_wait *w,
                gh_ups_wait_cb cb);

/* Leave the queue (the request ended). Safe when not waiting (timer.cb NULL: never waited). */
void gh_ups_wait_cancel(struct gh_ups_wait *w);

/* A request of ups ended: wake the first one waiting, if any (queue.c). */
void gh_ups_queue_wake(struct gh_ups_gen *g, const struct gh_upstream_conf *ups);

/* Mark server i of ups down for its upstream's fail_timeout (GH_UPSTREAM_DOWN_MS if unset). */
void gh_ups_mark_down(struct gh_ups_gen *g, const struct gh_upstream_conf *ups, uint32_t i);

#endif
