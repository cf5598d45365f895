/*
 * dns.h - asynchronous name resolution (c-ares) on a worker thread's loop,
 * with a per-thread cache of answers kept for their TTL.
 *
 * One resolver per thread: a c-ares channel whose sockets are watched by the
 * thread's loop and whose retries run on a loop timer, so a lookup never
 * blocks the thread. A name asked for again while its lookup runs waits on
 * the same query; an answer is cached (A and AAAA together) until its
 * smallest TTL runs out, a missing name (NXDOMAIN, no address) for a short
 * while, a failure (timeout, server error) not at all. IP literals are
 * answered at once without DNS. The cache is bounded: the oldest entry goes
 * first.
 *
 * This is what the forward proxy (destinations by name) and upstream servers
 * given by host name stand on.
 */
#ifndef GH_NET_DNS_H
#define GH_NET_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/loop.h"

#define GH_DNS_MAX_ADDRS 8
#define GH_DNS_MAX_NAME 253

enum gh_dns_status {
    GH_DNS_OK = 0,
    GH_DNS_NOTFOUND, /* the name does not exist or has no address */
    GH_DNS_TIMEOUT,  /* no server answered in time */
    GH_DNS_FAIL,     /* a server failure, a refused query, out of memory */
    GH_DNS_BADNAME,  /* not a valid host name */
};

/* The addresses of a name: IPv6 and IPv4 interleaved, IPv6 first (RFC 8305), port 0. */
struct gh_dns_answer {
    enum gh_dns_status status;
    uint32_t n;
    uint32_t ttl_s; /* what is left of it when served from the cache */
    struct sockaddr_storage addr[GH_DNS_MAX_ADDRS];
};

struct gh_dns_opts {
    const char *servers;     /* "127.0.0.1:5353,[::1]:53"; NULL: the system's (resolv.conf) */
    uint32_t timeout_ms;     /* one try; default 2000 */
    uint32_t tries;          /* per server; default 2 */
    uint32_t cache_max;      /* names kept; default 10000 */
    uint32_t min_ttl_s;      /* an answer is kept at least this long (default 1) */
    uint32_t max_ttl_s;      /* and at most this long (default 3600) */
    uint32_t negative_ttl_s; /* a missing name (default 5) */
};

struct gh_dns;
struct gh_dns_query;

/* A resolver on loop l. NULL with a reason in err (errlen bytes) on failure. */
struct gh_dns *gh_dns_new(struct gh_loop *l, const struct gh_dns_opts *o, char *err, size_t errlen);

/* Free the resolver; pending lookups end without their callbacks. */
void gh_dns_free(struct gh_dns *d);

typedef void (*gh_dns_cb)(void *arg, const struct gh_dns_answer *a);

/*
 * Resolve name (len bytes; case and one trailing dot do not matter). From the
 * cache, or for an IP literal or a bad name: returns 0 and *hit points at the
 * answer (valid until the next gh_dns call on this thread); cb is not called.
 * Else returns 1 and cb(arg, answer) runs later from the loop, unless
 * gh_dns_cancel(*q) is called first. -ENOMEM when out of memory.
 */
int gh_dns_resolve(struct gh_dns *d, const char *name, size_t len, gh_dns_cb cb, void *arg,
                   struct gh_dns_query **q, const struct gh_dns_answer **hit);

/* Forget a pending lookup: its callback will not run. */
void gh_dns_cancel(struct gh_dns_query *q);

/* The status in words ("not found", "timed out", ...). */
const char *gh_dns_status_str(enum gh_dns_status s);

/* For tests and metrics: lookups sent to servers, answers from the cache, names cached. */
struct gh_dns_stats {
    uint64_t queries;
    uint64_t hits;
    uint32_t cached;
};
void gh_dns_get_stats(const struct gh_dns *d, struct gh_dns_stats *st);

#endif
