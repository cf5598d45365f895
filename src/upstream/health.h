/*
 * health.h - active health checks (`health_check` in an upstream) and the health state they
 * share with every worker thread.
 *
 * One checker for the whole process: a thread of its own with its own event loop and
 * upstream context, which sends each server of each upstream with a `health_check` a GET
 * for the check's path every interval (the first checks spread at random over one interval,
 * each next one jittered by up to 10%, so that many servers are not checked in bursts), with
 * the upstream's HTTP/1 client (net/tls.h when the server speaks TLS). A check passes on a
 * response head whose status is in the expected range within the timeout; `fall` failures in
 * a row mark the server down, `rise` passes in a row mark it up again; each change is logged.
 *
 * The state (struct gh_health) is keyed by upstream name and server address and shared:
 * workers read it with an atomic load when they pick a server (a server marked down is
 * skipped by every balancer), and it outlives reloads: a server that stays in the new config
 * keeps its state, so a reload neither revives a dead server nor forgets a live one. A server
 * starts up (its first checks run within one interval).
 *
 * The checker also resolves the servers given by name (`server NAME:PORT resolve;`) with the
 * upstream's `resolver` (c-ares, net/dns.h), again when the answer's TTL runs out: their
 * addresses are part of the shared state, taken in turn by the connects. A name that stops
 * resolving (the name or its addresses are gone) leaves its server without address: it is
 * drained (no new request; those in flight finish); a lookup that fails (a timeout, a server
 * failure) keeps the addresses it had.
 */
#ifndef GH_UPSTREAM_HEALTH_H
#define GH_UPSTREAM_HEALTH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"

/* gh_health.down bits */
#define GH_HEALTH_CHECKS_DOWN 0x1 /* its checks failed */
#define GH_HEALTH_NO_ADDRESS 0x2  /* a named server with no address (yet, or any more) */

#define GH_HEALTH_MAX_ADDRS 8

struct gh_health {
    int down;       /* atomic: GH_HEALTH_* bits; 0: it may be chosen */
    uint64_t up_at; /* atomic: loop ms (monotonic clock) it last came back up; 0: never */
    /* a named server (`resolve`): its addresses, under lock (written by the checker thread
     * when an answer changes them, read by a worker per connect) */
    pthread_mutex_t lock;
    uint32_t n_addrs;
    struct sockaddr_storage addrs[GH_HEALTH_MAX_ADDRS];
    /* the checker's own */
    uint32_t passes, fails; /* in a row */
    /* the registry's own (under its lock) */
    uint32_t refs;
    struct gh_health *next;
    char key[]; /* "UPSTREAM SERVER" */
};

/* The shared state of server srv of upstream ups: found, or added (up; a named server's without
 * an address until it is resolved). Takes a reference. NULL when out of memory. Any thread. */
struct gh_health *gh_health_get(const char *ups, const char *srv, bool named);
void gh_health_put(struct gh_health *h);

/* Is h (may be NULL) marked down (by its checks, or a named server without address)? */
static inline bool
gh_health_down(const struct gh_health *h)
{
    return h != NULL && __atomic_load_n(&h->down, __ATOMIC_RELAXED) != 0;
}

/* When h last came back up (loop ms), or 0. */
static inline uint64_t
gh_health_up_at(const struct gh_health *h)
{
    return h != NULL ? __atomic_load_n(&h->up_at, __ATOMIC_RELAXED) : 0;
}

/* A named server's address for a connect: the (rr mod n)-th of its current ones, into *ss
 * (*len set). Returns false when it has none. Any thread. */
bool gh_health_addr(struct gh_health *h, uint32_t rr, struct sockaddr_storage *ss, socklen_t *len);

/*
 * Check the servers of cfg's upstreams that have a `health_check` from now on (the main
 * thread, at start and at each reload). The checker thread starts with the first config
 * that has checks; the checks of the previous config stop. Returns 0 or -errno.
 */
int gh_health_apply(struct gh_config *cfg);

/* Stop the checker (if started) and wait for it. */
void gh_health_stop(void);

/* Fold one check's result into h (rise/fall of check hc); now_ms is the loop time. Returns
 * +1 when h came up, -1 when it went down, 0 otherwise. (For the checker and for tests.) */
int gh_health_verdict(struct gh_health *h, const struct gh_health_check *hc, bool ok,
                      uint64_t now_ms);

#endif
