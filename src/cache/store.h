/*
 * store.h - the cache's object store: stored responses kept in memory,
 * shared by every worker thread, found by key and variant, bounded in bytes
 * and evicted by SIEVE (Zhang et al., NSDI '24: a FIFO queue with a visited
 * bit and a moving hand, better hit ratios than LRU at lower cost: a hit
 * only sets a bit, no list moves under a lock).
 *
 * A stored object (struct gh_cobj) is protocol-neutral: status, fields, the
 * times its freshness is computed from, and a body in a list of chunks (at
 * most 64 KiB each: no large contiguous allocation). Objects are reference
 * counted: the index holds one reference, each reader another, so an object
 * evicted while it is being sent stays whole until its last reader lets go.
 *
 * An object is filled while its response streams to the first client:
 *   BUSY     a placeholder for a miss being fetched (no head yet): later
 *            requests for the key wait for it (request collapsing)
 *   FILLING  the head is in, body bytes are appended; readers may stream
 *            what has arrived (body_len grows, published with release order)
 *   DONE     complete
 *   ABORTED  the fetch failed or the response was not storable: out of the
 *            index, waiting readers go to the origin themselves
 *
 * Sharded: 16 shards, each with its own lock, hash table and SIEVE queue;
 * the byte count is one atomic for the whole store, and a store over its
 * budget evicts from its shards in turn (one lock held at a time).
 */
#ifndef GH_CACHE_STORE_H
#define GH_CACHE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "cache/policy.h"
#include "http/h1.h"

#define GH_CACHE_SHARDS 16
#define GH_CACHE_CHUNK (64 * 1024)

enum gh_cobj_state { GH_COBJ_BUSY = 0, GH_COBJ_FILLING, GH_COBJ_DONE, GH_COBJ_ABORTED };

struct gh_cache_chunk {
    struct gh_cache_chunk *next; /* published before the bytes that reach into it */
    uint32_t cap;
    uint32_t len;
    char data[];
};

/* A body, shared by the versions of an object whose headers a 304 updated. */
struct gh_cbody {
    int refs;
    struct gh_cache_chunk *head, *tail;
    uint64_t len; /* bytes appended (atomic: readers read it with acquire) */
};

struct gh_cache_store;

struct gh_cobj {
    struct gh_cobj *hnext;         /* hash chain */
    struct gh_cobj *qprev, *qnext; /* SIEVE queue (qnext toward the newest) */
    struct gh_cache_store *store;
    uint64_t hash;
    int refs;           /* atomic */
    uint8_t state;      /* enum gh_cobj_state (atomic) */
    uint8_t visited;    /* SIEVE's bit (atomic, relaxed) */
    bool linked;        /* in the index (under the shard's lock) */
    uint8_t refreshing; /* a background refresh was started for it (atomic: one at most) */
    uint32_t waiting;   /* readers waiting for it to progress (atomic): the filler notifies */
    char *key;
    uint32_t key_len;
    /* the variant: the response's Vary names and the request's values for them
     * (policy.h gh_cache_vary_key); both empty without Vary */
    char *vary;
    uint32_t vary_len;
    char *vary_key;
    uint32_t vary_key_len;
    /* the response */
    uint16_t status;
    struct gh_h1_header *fields;
    uint32_t n_fields;
    struct gh_cache_times times;
    int64_t content_length; /* declared by the origin; -1 unknown until DONE */
    struct gh_cbody *body;
    uint64_t charge; /* bytes counted against the store while linked */
};

/* Counters of a store (read without locks: approximate while it changes). */
struct gh_cache_stats {
    uint64_t bytes;    /* counted now */
    uint64_t limit;    /* `memory` */
    uint64_t objects;  /* in the index */
    uint64_t inserted; /* objects that went in */
    uint64_t evicted;  /* objects evicted for room */
    uint64_t hits, misses;
};

/*
 * The store named name (process-wide, kept across reloads: a reload that names
 * the same cache keeps its objects; its limits take the new values). Returns
 * it, or NULL when out of memory.
 */
struct gh_cache_store *gh_cache_store_open(const char *name, uint64_t memory, uint64_t max_object);

/*
 * The disk tier s's config wants (cache/disk.h): path (copied; NULL: none) within size bytes.
 * Only recorded: gh_cache_disk_start opens it (so `-t` touches no files). 0 or -ENOMEM.
 */
int gh_cache_store_want_disk(struct gh_cache_store *s, const char *path, uint64_t size);

/*
 * Bring every store's disk tier to what its config wants: a tier at the same path is kept
 * (with the new size), a new path is opened (its files indexed), a tier no longer wanted
 * stops writing. At start (before the workers) and after a reload. 0, or -1 when a tier
 * could not be opened (logged).
 */
int gh_cache_disk_start(void);

/* Stop the disk tiers, writing what is queued first: at exit, after the workers stopped. */
void gh_cache_disk_stop(void);

/* Its largest object in bytes. */
uint64_t gh_cache_store_max_object(const struct gh_cache_store *s);

void gh_cache_store_stats(struct gh_cache_store *s, struct gh_cache_stats *st);

/* One info line per store that was used to the error log ("cache NAME: ... hits, ..."): at
 * exit. */
void gh_cache_log_stats(void);

/* What gh_cache_lookup found. */
enum gh_cache_found {
    GH_CACHE_MISS = 0, /* nothing: *out is a new BUSY placeholder (with make_busy), else NULL */
    GH_CACHE_HIT,      /* *out: the variant for the request (FILLING or DONE) */
    GH_CACHE_BUSY,     /* *out: a placeholder being fetched by another request: wait for it */
};

/* The key's hash (FNV-1a 64). */
uint64_t gh_cache_hash(const char *key, size_t len);

/*
 * Look key[0..len) up for a request with fields rf[0..nrf): the stored
 * variant whose Vary values the request matches. With make_busy, a miss
 * inserts a placeholder the caller fills (or aborts). *out is a new reference
 * (gh_cobj_put) in every case but a miss without make_busy.
 */
enum gh_cache_found gh_cache_lookup(struct gh_cache_store *s, const char *key, size_t len,
                                    const struct gh_h1_header *rf, uint32_t nrf, bool make_busy,
                                    struct gh_cobj **out);

/* A new FILLING object for key, not in the index yet (gh_cache_fill_head puts it there).
 * NULL when out of memory. The caller holds the one reference. */
struct gh_cobj *gh_cache_obj_new(struct gh_cache_store *s, const char *key, size_t len);

/*
 * The head of o's response: status, fields hs[0..n) (copied), the Vary names
 * and the request's values (vary[0..vlen), vkey[0..vklen)), times, and the
 * declared length (-1: unknown). o becomes FILLING and is in the index;
 * variants it replaces go out. Returns 0, or -ENOMEM (o is then aborted).
 */
int gh_cache_fill_head(struct gh_cobj *o, int status, const struct gh_h1_header *hs, uint32_t n,
                       const char *vary, size_t vlen, const char *vkey, size_t vklen,
                       const struct gh_cache_times *t, int64_t content_length);

/* Append body bytes. Returns 0, or -1 when it would pass max_object or out of memory (the
 * caller aborts the fill). */
int gh_cache_fill_body(struct gh_cobj *o, const struct iovec *spans, int n);

/* The body is complete (and, with a disk tier, queued to be written there). */
void gh_cache_fill_done(struct gh_cobj *o);

/* For the disk tier: the head of o (from gh_cache_obj_new, not in the index), which becomes
 * FILLING; its body is appended with gh_cache_fill_body. 0 or -ENOMEM. */
int gh_cache_obj_head(struct gh_cobj *o, int status, const struct gh_h1_header *hs, uint32_t n,
                      const char *vary, size_t vlen, const char *vkey, size_t vklen,
                      const struct gh_cache_times *t);

/* The fill failed or is not wanted: o leaves the index (readers see ABORTED). */
void gh_cache_fill_abort(struct gh_cobj *o);

/*
 * A copy of o with fields hs[0..n) and times t (a 304's update, RFC 9111
 * §3.2), sharing o's body, in the index in o's place. Returns it (a new
 * reference), or NULL when out of memory (o stays).
 */
struct gh_cobj *gh_cache_replace_head(struct gh_cobj *o, const struct gh_h1_header *hs, uint32_t n,
                                      const struct gh_cache_times *t);

/* Every variant of key leaves the index (invalidation, purge). Returns how many. */
uint32_t gh_cache_remove_key(struct gh_cache_store *s, const char *key, size_t len);

/* Every object whose key starts with prefix[0..len) leaves the index (len 0: all). */
uint32_t gh_cache_remove_prefix(struct gh_cache_store *s, const char *prefix, size_t len);

static inline enum gh_cobj_state
gh_cobj_state(const struct gh_cobj *o)
{
    return (enum gh_cobj_state)__atomic_load_n(&o->state, __ATOMIC_ACQUIRE);
}

/*
 * fn is called (from the filling thread) when an object that has waiting readers
 * (gh_cobj.waiting) progresses: its head, body bytes, its end or its abort. Process-wide; set
 * once at start.
 */
void gh_cache_store_on_progress(void (*fn)(void));

/* Body bytes available now (acquire: the chunks they are in are readable). */
static inline uint64_t
gh_cobj_avail(const struct gh_cobj *o)
{
    return __atomic_load_n(&o->body->len, __ATOMIC_ACQUIRE);
}

/* Take / drop a reference (the last one frees it). */
void gh_cobj_get(struct gh_cobj *o);
void gh_cobj_put(struct gh_cobj *o);

/* A reader's place in a body. */
struct gh_cread {
    const struct gh_cache_chunk *c; /* the chunk holding off (NULL: from the start) */
    uint64_t c_start;               /* body offset of c's first byte */
};

/*
 * Spans of o's body from off, at most max bytes and nspans spans, of what is
 * available (gh_cobj_avail). Returns the number of spans; their bytes stay
 * valid while the caller holds its reference.
 */
int gh_cobj_read(const struct gh_cobj *o, struct gh_cread *cur, uint64_t off, size_t max,
                 struct iovec *spans, int nspans);

#endif
