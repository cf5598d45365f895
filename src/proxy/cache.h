/*
 * cache.h - the cache in the request's course (RFC 9111, a shared cache), glue
 * between the exchange and the store (cache/store.h) with the rules of
 * cache/policy.h:
 *
 *   pre-origin  gh_cache_pre_origin: PURGE; the key; the lookup. A usable
 *               stored response makes the cache the source (src "cache");
 *               a stale one is revalidated (a conditional request to the
 *               origin); a miss for an object another request is fetching
 *               waits for it (request collapsing), else goes to the origin
 *               with a placeholder that later requests wait for.
 *   resp-head   gh_cache_resp_head: the storage decision (the response's
 *               body is then copied into the store as it streams to the
 *               client), a 304 to a revalidation updating the stored
 *               fields, stale-if-error, invalidation after unsafe methods,
 *               Cache-Status.
 *   done        gh_cache_done: a fill that did not complete is dropped.
 *
 * The origin source hands each body piece to gh_cache_body (stored, sliced for
 * a Range that missed, or dropped), keeps the head back while
 * gh_cache_holds_head, and, when the response it read was only for the cache
 * (gh_cache_swapping), calls gh_cache_take_over once it has been read whole.
 * cache_refresh.c runs stale-while-revalidate's background refreshes.
 */
#ifndef GH_PROXY_CACHE_H
#define GH_PROXY_CACHE_H

#include <stdbool.h>
#include <sys/uio.h>

#include "proxy/exchange.h"

#define GH_CX_SWAP 0x0001  /* the origin's response is read for the cache; the cache answers */
#define GH_CX_TEE 0x0002   /* the origin's body is copied into ex->cache->fill */
#define GH_CX_SLICE 0x0004 /* the client gets a range of the origin's whole response */
/* the origin's response continues a body the client has part of (its head went out before) */
#define GH_CX_CONT 0x0008

/* The part of the state the origin source reads on its path (cache.c has the rest). */
struct gh_cache_ex_pub {
    uint16_t flags; /* GH_CX_* */
};

/* Phase hooks (phase.c). */
int gh_cache_pre_origin(struct gh_exchange *ex, const struct gh_request *req);

/* `cache_purge_api NAME;` (cache_admin.c): the route answers purges of that cache; GH_OK
 * elsewhere. */
int gh_cache_admin(struct gh_exchange *ex, const struct gh_request *req);
int gh_cache_resp_head(struct gh_exchange *ex, struct gh_resp *resp);
void gh_cache_done(struct gh_exchange *ex);

/* Is the origin's response read for the cache only (a 304 to a revalidation, an error a stale
 * object answers for)? */
static inline bool
gh_cache_swapping(const struct gh_exchange *ex)
{
    return ex->cache != NULL &&
           (((const struct gh_cache_ex_pub *)(const void *)ex->cache)->flags & GH_CX_SWAP);
}

/* Is the origin's response head not for the client (the cache answers after it, or the client
 * has its head already)? */
static inline bool
gh_cache_holds_head(const struct gh_exchange *ex)
{
    return ex->cache != NULL && (((const struct gh_cache_ex_pub *)(const void *)ex->cache)->flags &
                                 (GH_CX_SWAP | GH_CX_CONT));
}

/* Does the cache see the origin's body on its way (then it is not spliced)? */
static inline bool
gh_cache_tees(const struct gh_exchange *ex)
{
    return ex->cache != NULL && (((const struct gh_cache_ex_pub *)(const void *)ex->cache)->flags &
                                 (GH_CX_TEE | GH_CX_SLICE | GH_CX_SWAP));
}

/* Body spans of the origin's response: into the store (GH_CX_TEE), then to the client (all of
 * them, the range it asked for, or none while the cache is to answer). Returns what
 * send_body returned (0, or -1 when the exchange ended). */
int gh_cache_body(struct gh_exchange *ex, const struct iovec *spans, int n, bool done);

/* The origin's response was read whole (gh_cache_swapping) and its connection let go: the
 * cache becomes the source. */
void gh_cache_take_over(struct gh_exchange *ex);

/* The origin failed with status before any response went out: may a stale stored response
 * answer instead (stale-if-error)? Returns true when the cache became the source. */
bool gh_cache_on_fail(struct gh_exchange *ex, int status);

/* Resume this thread's requests that wait for an object to progress (a worker's wake-up). */
void gh_cache_wake_waiters(void);

/* stale-while-revalidate: refresh what orig found stale in the background, with an exchange of
 * its own made from a copy of orig's request (cache_refresh.c). */
void gh_cache_refresh_start(struct gh_exchange *orig);

/* The cache's variables for ex ($upstream_cache_status, $cache_bytes, $cache_objects) as text
 * (in buf[0..cap) or static), or NULL when empty. */
const char *gh_cache_var(struct gh_exchange *ex, int var, char *buf, size_t cap);

#endif
