/*
 * store.c - the sharded in-memory object store with SIEVE eviction (store.h).
 */
#include "cache/store.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache/disk.h"
#include "core/common.h"
#include "core/log.h"

struct shard {
    pthread_mutex_t lock;
    struct gh_cobj **buckets;
    uint32_t n_buckets; /* a power of two */
    uint32_t count;
};

struct gh_cache_store {
    struct gh_cache_store *next; /* the registry */
    char *name;
    uint64_t limit;                                    /* atomic */
    uint64_t max_object;                               /* atomic */
    uint64_t bytes;                                    /* atomic */
    uint64_t objects, inserted, evicted, hits, misses; /* atomic */
    /* the SIEVE queue, one for the store (a queue per shard would be too short to tell hot
     * objects from cold ones): changed on insertion and eviction under qlock, taken after a
     * shard's lock; a hit only sets the object's visited bit */
    pthread_mutex_t qlock;
    struct gh_cobj *oldest, *newest;
    struct gh_cobj *hand; /* NULL: start from the oldest */
    /* the disk tier: running (atomic; replaced only by gh_cache_disk_start, whose old tier
     * stays readable), and the one the last config loaded wants (under registry_lock) */
    struct gh_cdisk *disk;
    char *want_path;
    uint64_t want_size;
    struct shard shards[GH_CACHE_SHARDS];
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gh_cache_store *registry;

/* Disk tiers a reload replaced: stopped, still readable, freed at exit (under registry_lock). */
struct retired {
    struct retired *next;
    struct gh_cdisk *d;
};
static struct retired *retired;
static void (*on_progress)(void);

void
gh_cache_store_on_progress(void (*fn)(void))
{
    __atomic_store_n(&on_progress, fn, __ATOMIC_RELEASE);
}

/* o progressed (after its change is published): tell waiting readers. The fence pairs with the
 * reader's, which counts itself waiting before it looks again. */
static void
progress(struct gh_cobj *o)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    void (*fn)(void) = __atomic_load_n(&on_progress, __ATOMIC_ACQUIRE);
    if (fn != NULL && __atomic_load_n(&o->waiting, __ATOMIC_RELAXED) > 0)
        fn();
}

#define A_ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
#define A_SUB(p, v) __atomic_sub_fetch((p), (v), __ATOMIC_RELAXED)
#define A_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

struct gh_cache_store *
gh_cache_store_open(const char *name, uint64_t memory, uint64_t max_object)
{
    pthread_mutex_lock(&registry_lock);
    struct gh_cache_store *s = registry;
    while (s != NULL && strcmp(s->name, name) != 0)
        s = s->next;
    if (s == NULL && (s = calloc(1, sizeof(*s))) != NULL) {
        s->name = strdup(name);
        for (int i = 0; i < GH_CACHE_SHARDS; i++)
            pthread_mutex_init(&s->shards[i].lock, NULL);
        pthread_mutex_init(&s->qlock, NULL);
        if (s->name == NULL) {
            gh_free(s);
        } else {
            s->next = registry;
            registry = s;
        }
    }
    if (s != NULL) {
        __atomic_store_n(&s->limit, memory, __ATOMIC_RELAXED);
        __atomic_store_n(&s->max_object, max_object, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&registry_lock);
    return s;
}

uint64_t
gh_cache_store_max_object(const struct gh_cache_store *s)
{
    return A_LOAD(&s->max_object);
}

void
gh_cache_store_stats(struct gh_cache_store *s, struct gh_cache_stats *st)
{
    st->bytes = A_LOAD(&s->bytes);
    st->limit = A_LOAD(&s->limit);
    st->objects = A_LOAD(&s->objects);
    st->inserted = A_LOAD(&s->inserted);
    st->evicted = A_LOAD(&s->evicted);
    st->hits = A_LOAD(&s->hits);
    st->misses = A_LOAD(&s->misses);
}

void
gh_cache_log_stats(void)
{
    pthread_mutex_lock(&registry_lock);
    for (struct gh_cache_store *s = registry; s != NULL; s = s->next) {
        struct gh_cache_stats st;
        gh_cache_store_stats(s, &st);
        if (st.hits + st.misses == 0)
            continue;
        gh_log_info("cache %s: %" PRIu64 " hit(s), %" PRIu64 " miss(es), %" PRIu64
                    " object(s) in %" PRIu64 " of %" PRIu64 " bytes, %" PRIu64 " evicted",
                    s->name, st.hits, st.misses, st.objects, st.bytes, st.limit, st.evicted);
        struct gh_cdisk_stats ds;
        if (s->disk == NULL)
            continue;
        gh_cdisk_stats(s->disk, &ds);
        gh_log_info("cache %s: disk: %" PRIu64 " hit(s), %" PRIu64 " object(s) in %" PRIu64
                    " of %" PRIu64 " bytes, %" PRIu64 " written, %" PRIu64 " evicted, %" PRIu64
                    " not written, %" PRIu64 " bad file(s) removed",
                    s->name, ds.hits, ds.objects, ds.bytes, ds.limit, ds.written, ds.evicted,
                    ds.dropped, ds.bad);
    }
    pthread_mutex_unlock(&registry_lock);
}

int
gh_cache_store_want_disk(struct gh_cache_store *s, const char *path, uint64_t size)
{
    char *p = path != NULL ? strdup(path) : NULL;
    if (path != NULL && p == NULL)
        return -ENOMEM;
    pthread_mutex_lock(&registry_lock);
    free(s->want_path);
    s->want_path = p;
    s->want_size = size;
    pthread_mutex_unlock(&registry_lock);
    return 0;
}

/* s's disk tier as its config wants it: kept (resized), opened, replaced or closed. Under
 * registry_lock. Returns 0 or -1 (logged). */
static int
disk_apply(struct gh_cache_store *s)
{
    struct gh_cdisk *d = s->disk;
    if (d != NULL && s->want_path != NULL && strcmp(gh_cdisk_path(d), s->want_path) == 0) {
        gh_cdisk_resize(d, s->want_size);
        return 0;
    }
    struct gh_cdisk *nd = NULL;
    if (s->want_path != NULL && (nd = gh_cdisk_open(s->name, s->want_path, s->want_size)) == NULL)
        return -1;
    __atomic_store_n(&s->disk, nd, __ATOMIC_RELEASE);
    if (d == NULL)
        return 0;
    gh_cdisk_close(d, false); /* a worker may still read from it: kept till exit */
    struct retired *r = malloc(sizeof(*r));
    if (r != NULL) {
        *r = (struct retired){retired, d};
        retired = r;
    }
    return 0;
}

int
gh_cache_disk_start(void)
{
    int rc = 0;
    pthread_mutex_lock(&registry_lock);
    for (struct gh_cache_store *s = registry; s != NULL; s = s->next)
        if (disk_apply(s) != 0)
            rc = -1;
    pthread_mutex_unlock(&registry_lock);
    return rc;
}

void
gh_cache_disk_stop(void)
{
    pthread_mutex_lock(&registry_lock);
    for (struct gh_cache_store *s = registry; s != NULL; s = s->next) {
        struct gh_cdisk *d = s->disk;
        __atomic_store_n(&s->disk, NULL, __ATOMIC_RELEASE);
        if (d != NULL)
            gh_cdisk_close(d, true);
    }
    while (retired != NULL) {
        struct retired *r = retired;
        retired = r->next;
        gh_cdisk_close(r->d, true);
        free(r);
    }
    pthread_mutex_unlock(&registry_lock);
}

uint64_t
gh_cache_hash(const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static struct shard *
shard_of(struct gh_cache_store *s, uint64_t hash)
{
    return &s->shards[(hash >> 56) % GH_CACHE_SHARDS];
}

/* ------------------------------------------------------------------ */
/* objects                                                             */

static void
body_put(struct gh_cbody *b)
{
    if (b == NULL || __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    struct gh_cache_chunk *c = b->head;
    while (c != NULL) {
        struct gh_cache_chunk *n = c->next;
        free(c);
        c = n;
    }
    free(b);
}

void
gh_cobj_get(struct gh_cobj *o)
{
    __atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
}

void
gh_cobj_put(struct gh_cobj *o)
{
    if (o == NULL || __atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    body_put(o->body);
    free(o->fields); /* the fields, their text, the key and the variant are one block */
    free(o->key);
    free(o);
}

struct gh_cobj *
gh_cache_obj_new(struct gh_cache_store *s, const char *key, size_t len)
{
    struct gh_cobj *o = calloc(1, sizeof(*o));
    struct gh_cbody *b = calloc(1, sizeof(*b));
    char *k = malloc(len + 1);
    if (o == NULL || b == NULL || k == NULL) {
        free(o);
        free(b);
        free(k);
        return NULL;
    }
    memcpy(k, key, len);
    k[len] = '\0';
    b->refs = 1;
    o->body = b;
    o->key = k;
    o->key_len = (uint32_t)len;
    o->store = s;
    o->hash = gh_cache_hash(key, len);
    o->refs = 1;
    o->content_length = -1;
    o->state = GH_COBJ_BUSY;
    o->charge = sizeof(*o) + len;
    return o;
}

/* ------------------------------------------------------------------ */
/* the index (under the shard's lock)                                  */

static void
grow(struct shard *sh)
{
    uint32_t nb = sh->n_buckets ? sh->n_buckets * 2 : 64;
    struct gh_cobj **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return; /* chains grow longer instead */
    for (uint32_t i = 0; i < sh->n_buckets; i++) {
        struct gh_cobj *o = sh->buckets[i];
        while (o != NULL) {
            struct gh_cobj *n = o->hnext;
            o->hnext = b[o->hash & (nb - 1)];
            b[o->hash & (nb - 1)] = o;
            o = n;
        }
    }
    free(sh->buckets);
    sh->buckets = b;
    sh->n_buckets = nb;
}

static bool
link_obj(struct gh_cache_store *s, struct shard *sh, struct gh_cobj *o)
{
    if (sh->count >= sh->n_buckets)
        grow(sh);
    if (sh->n_buckets == 0)
        return false;
    struct gh_cobj **b = &sh->buckets[o->hash & (sh->n_buckets - 1)];
    o->hnext = *b;
    *b = o;
    pthread_mutex_lock(&s->qlock);
    o->qprev = s->newest; /* SIEVE inserts at the newest end */
    o->qnext = NULL;
    if (s->newest != NULL)
        s->newest->qnext = o;
    else
        s->oldest = o;
    s->newest = o;
    pthread_mutex_unlock(&s->qlock);
    __atomic_store_n(&sh->count, sh->count + 1, __ATOMIC_RELAXED);
    o->linked = true;
    gh_cobj_get(o); /* the index's reference */
    A_ADD(&s->bytes, o->charge);
    A_ADD(&s->objects, 1);
    A_ADD(&s->inserted, 1);
    return true;
}

/* Take o out of the index. The caller drops the index's reference after unlocking. */
static void
unlink_obj(struct gh_cache_store *s, struct shard *sh, struct gh_cobj *o)
{
    struct gh_cobj **pp = &sh->buckets[o->hash & (sh->n_buckets - 1)];
    while (*pp != o)
        pp = &(*pp)->hnext;
    *pp = o->hnext;
    pthread_mutex_lock(&s->qlock);
    if (s->hand == o)
        s->hand = o->qnext;
    if (o->qprev != NULL)
        o->qprev->qnext = o->qnext;
    else
        s->oldest = o->qnext;
    if (o->qnext != NULL)
        o->qnext->qprev = o->qprev;
    else
        s->newest = o->qprev;
    pthread_mutex_unlock(&s->qlock);
    o->hnext = o->qprev = o->qnext = NULL;
    __atomic_store_n(&sh->count, sh->count - 1, __ATOMIC_RELAXED);
    o->linked = false;
    A_SUB(&s->bytes, o->charge);
    A_SUB(&s->objects, 1);
}

/* Objects dropped under a lock, released after it. */
struct dropped {
    struct gh_cobj *o[32];
    uint32_t n;
};

static void
drop_all(struct dropped *d)
{
    for (uint32_t i = 0; i < d->n; i++)
        gh_cobj_put(d->o[i]);
    d->n = 0;
}

/* SIEVE: from the hand toward the newest (wrapping to the oldest), clearing visited bits, the
 * first unvisited complete object is the victim. Returns it with a reference of its own (still
 * in the index), or NULL when none may go (every object is being filled). */
static struct gh_cobj *
sieve_pick(struct gh_cache_store *s)
{
    pthread_mutex_lock(&s->qlock);
    struct gh_cobj *o = s->hand != NULL ? s->hand : s->oldest, *victim = NULL;
    for (uint64_t seen = 0, n = A_LOAD(&s->objects); o != NULL && seen <= 2 * n + 2; seen++) {
        bool busy = gh_cobj_state(o) != GH_COBJ_DONE; /* never one being filled */
        if (!busy && !__atomic_load_n(&o->visited, __ATOMIC_RELAXED)) {
            victim = o;
            s->hand = o->qnext;
            gh_cobj_get(o);
            break;
        }
        __atomic_store_n(&o->visited, 0, __ATOMIC_RELAXED);
        o = o->qnext != NULL ? o->qnext : s->oldest;
    }
    pthread_mutex_unlock(&s->qlock);
    return victim;
}

/* Evict until the store is within its budget. */
static void
make_room(struct gh_cache_store *s)
{
    while (A_LOAD(&s->bytes) > A_LOAD(&s->limit)) {
        struct gh_cobj *o = sieve_pick(s);
        if (o == NULL)
            return;
        struct shard *sh = shard_of(s, o->hash);
        pthread_mutex_lock(&sh->lock);
        bool was = o->linked; /* another thread may have taken it out meanwhile */
        if (was) {
            unlink_obj(s, sh, o);
            A_ADD(&s->evicted, 1);
        }
        pthread_mutex_unlock(&sh->lock);
        if (was)
            gh_cobj_put(o); /* the index's reference */
        gh_cobj_put(o);
    }
}

/* ------------------------------------------------------------------ */
/* lookup                                                              */

static bool
same_key(const struct gh_cobj *o, uint64_t hash, const char *key, size_t len)
{
    return o->hash == hash && o->key_len == len && memcmp(o->key, key, len) == 0;
}

/* Does the request with fields rf match o's variant? */
static bool
variant_matches(const struct gh_cobj *o, const struct gh_h1_header *rf, uint32_t nrf)
{
    if (o->vary_len == 0)
        return true;
    char buf[2048];
    int n = gh_cache_vary_key(o->vary, o->vary_len, rf, nrf, buf, sizeof(buf));
    return n >= 0 && (uint32_t)n == o->vary_key_len && memcmp(buf, o->vary_key, (size_t)n) == 0;
}

/* The newest variant of key the request matches (*hit), else a placeholder for it (*busy).
 * Under the shard's lock. */
static void
find_locked(struct shard *sh, uint64_t h, const char *key, size_t len,
            const struct gh_h1_header *rf, uint32_t nrf, struct gh_cobj **busy,
            struct gh_cobj **hit)
{
    *busy = *hit = NULL;
    for (struct gh_cobj *o = sh->n_buckets ? sh->buckets[h & (sh->n_buckets - 1)] : NULL;
         o != NULL && *hit == NULL; o = o->hnext) {
        if (!same_key(o, h, key, len))
            continue;
        if (gh_cobj_state(o) == GH_COBJ_BUSY)
            *busy = o;
        else if (variant_matches(o, rf, nrf))
            *hit = o; /* the newest matching variant: the chain's first */
    }
}

/* A memory miss: the disk tier's copy, read back into the index. Returns it (a new reference)
 * or NULL. */
static struct gh_cobj *
from_disk(struct gh_cache_store *s, struct gh_cdisk *d, uint64_t h, const char *key, size_t len,
          const struct gh_h1_header *rf, uint32_t nrf)
{
    struct gh_cobj *o = gh_cdisk_get(d, s, key, len, rf, nrf), *busy, *hit;
    if (o == NULL)
        return NULL;
    struct shard *sh = shard_of(s, h);
    pthread_mutex_lock(&sh->lock);
    find_locked(sh, h, key, len, rf, nrf, &busy, &hit);
    if (hit != NULL) { /* another request read it back first */
        gh_cobj_get(hit);
        pthread_mutex_unlock(&sh->lock);
        gh_cobj_put(o);
        return hit;
    }
    bool ok = link_obj(s, sh, o);
    pthread_mutex_unlock(&sh->lock);
    if (!ok) {
        gh_cobj_put(o);
        return NULL;
    }
    make_room(s);
    return o;
}

enum gh_cache_found
gh_cache_lookup(struct gh_cache_store *s, const char *key, size_t len,
                const struct gh_h1_header *rf, uint32_t nrf, bool make_busy, struct gh_cobj **out)
{
    uint64_t h = gh_cache_hash(key, len);
    struct shard *sh = shard_of(s, h);
    struct gh_cobj *busy, *hit;
    pthread_mutex_lock(&sh->lock);
    find_locked(sh, h, key, len, rf, nrf, &busy, &hit);
    struct gh_cobj *found = hit != NULL ? hit : busy;
    if (found != NULL) {
        gh_cobj_get(found);
        __atomic_store_n(&found->visited, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&sh->lock);
    *out = found;
    struct gh_cdisk *d = found == NULL ? __atomic_load_n(&s->disk, __ATOMIC_ACQUIRE) : NULL;
    if (d != NULL)
        hit = *out = from_disk(s, d, h, key, len, rf, nrf);
    if (hit != NULL) {
        A_ADD(&s->hits, 1);
        return GH_CACHE_HIT;
    }
    if (busy != NULL)
        return GH_CACHE_BUSY;
    A_ADD(&s->misses, 1);
    if (make_busy && (*out = gh_cache_obj_new(s, key, len)) != NULL) {
        pthread_mutex_lock(&sh->lock);
        if (!link_obj(s, sh, *out)) {
            pthread_mutex_unlock(&sh->lock);
            gh_cobj_put(*out);
            *out = NULL;
            return GH_CACHE_MISS;
        }
        pthread_mutex_unlock(&sh->lock);
    }
    return GH_CACHE_MISS;
}

/* ------------------------------------------------------------------ */
/* filling                                                             */

/* Copy hs[0..n) into one block with the variant: fields then their text. */
static int
copy_fields(struct gh_cobj *o, const struct gh_h1_header *hs, uint32_t n, const char *vary,
            size_t vlen, const char *vkey, size_t vklen)
{
    size_t text = vlen + vklen;
    for (uint32_t i = 0; i < n; i++)
        text += hs[i].name_len + hs[i].value_len;
    size_t sz = n * sizeof(struct gh_h1_header) + text;
    char *blk = malloc(sz ? sz : 1);
    if (blk == NULL)
        return -ENOMEM;
    struct gh_h1_header *f = (struct gh_h1_header *)(void *)blk;
    char *p = blk + n * sizeof(*f);
    for (uint32_t i = 0; i < n; i++) {
        f[i] = hs[i];
        memcpy(p, hs[i].name, hs[i].name_len);
        f[i].name = p;
        p += hs[i].name_len;
        memcpy(p, hs[i].value, hs[i].value_len);
        f[i].value = p;
        p += hs[i].value_len;
    }
    memcpy(p, vary, vlen);
    o->vary = p;
    o->vary_len = (uint32_t)vlen;
    memcpy(p + vlen, vkey, vklen);
    o->vary_key = p + vlen;
    o->vary_key_len = (uint32_t)vklen;
    free(o->fields);
    o->fields = f;
    o->n_fields = n;
    o->charge += sz;
    return 0;
}

/* Out of the index with o: the other objects of its key that it replaces (the same variant, or
 * a variant of another Vary list, which the newer response made obsolete). */
static void
unlink_replaced(struct gh_cache_store *s, struct shard *sh, struct gh_cobj *o, struct dropped *d)
{
    struct gh_cobj *x = sh->n_buckets ? sh->buckets[o->hash & (sh->n_buckets - 1)] : NULL;
    while (x != NULL && d->n < GH_ARRAY_LEN(d->o)) {
        struct gh_cobj *next = x->hnext;
        if (x != o && same_key(x, o->hash, o->key, o->key_len) &&
            gh_cobj_state(x) != GH_COBJ_BUSY &&
            (x->vary_len != o->vary_len || memcmp(x->vary, o->vary, o->vary_len) != 0 ||
             (x->vary_key_len == o->vary_key_len &&
              memcmp(x->vary_key, o->vary_key, o->vary_key_len) == 0))) {
            unlink_obj(s, sh, x);
            d->o[d->n++] = x;
        }
        x = next;
    }
}

int
gh_cache_fill_head(struct gh_cobj *o, int status, const struct gh_h1_header *hs, uint32_t n,
                   const char *vary, size_t vlen, const char *vkey, size_t vklen,
                   const struct gh_cache_times *t, int64_t content_length)
{
    struct gh_cache_store *s = o->store;
    struct shard *sh = shard_of(s, o->hash);
    o->status = (uint16_t)status;
    o->times = *t;
    o->content_length = content_length;
    pthread_mutex_lock(&sh->lock);
    bool was_linked = o->linked;
    if (was_linked) /* its charge changes: counted again below */
        A_SUB(&s->bytes, o->charge);
    int rc = copy_fields(o, hs, n, vary, vlen, vkey, vklen);
    if (was_linked)
        A_ADD(&s->bytes, o->charge);
    struct dropped d = {.n = 0};
    if (rc == 0 && !was_linked && !link_obj(s, sh, o))
        rc = -ENOMEM;
    if (rc == 0) {
        __atomic_store_n(&o->state, GH_COBJ_FILLING, __ATOMIC_RELEASE);
        unlink_replaced(s, sh, o, &d);
    }
    pthread_mutex_unlock(&sh->lock);
    drop_all(&d);
    if (rc != 0) {
        gh_cache_fill_abort(o);
        return rc;
    }
    progress(o);
    make_room(s);
    return 0;
}

/* A new chunk at the body's end, counted against the store while o is in the index. */
static struct gh_cache_chunk *
add_chunk(struct gh_cobj *o, size_t want)
{
    struct gh_cbody *b = o->body;
    size_t cap = GH_CACHE_CHUNK;
    if (o->content_length >= 0 && (uint64_t)o->content_length - b->len < cap)
        cap = (size_t)((uint64_t)o->content_length - b->len);
    if (cap < want)
        cap = GH_MIN((size_t)GH_CACHE_CHUNK, want > 4096 ? want : 4096);
    struct gh_cache_chunk *c = malloc(sizeof(*c) + cap);
    if (c == NULL)
        return NULL;
    c->next = NULL;
    c->cap = (uint32_t)cap;
    c->len = 0;
    struct shard *sh = shard_of(o->store, o->hash);
    pthread_mutex_lock(&sh->lock);
    o->charge += sizeof(*c) + cap;
    if (o->linked)
        A_ADD(&o->store->bytes, sizeof(*c) + cap);
    pthread_mutex_unlock(&sh->lock);
    if (b->tail != NULL)
        __atomic_store_n(&b->tail->next, c, __ATOMIC_RELEASE);
    else
        __atomic_store_n(&b->head, c, __ATOMIC_RELEASE);
    b->tail = c;
    return c;
}

int
gh_cache_fill_body(struct gh_cobj *o, const struct iovec *spans, int n)
{
    struct gh_cbody *b = o->body;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += spans[i].iov_len;
    if (b->len + total > gh_cache_store_max_object(o->store))
        return -1;
    bool grew = false;
    for (int i = 0; i < n; i++) {
        const char *p = spans[i].iov_base;
        size_t left = spans[i].iov_len;
        while (left > 0) {
            struct gh_cache_chunk *c = b->tail;
            if (c == NULL || c->len == c->cap) {
                if ((c = add_chunk(o, left)) == NULL)
                    return -1;
                grew = true;
            }
            size_t k = GH_MIN(left, (size_t)(c->cap - c->len));
            memcpy(c->data + c->len, p, k);
            c->len += (uint32_t)k;
            p += k;
            left -= k;
            /* the bytes are written: readers may take them */
            __atomic_store_n(&b->len, b->len + k, __ATOMIC_RELEASE);
        }
    }
    progress(o);
    if (grew)
        make_room(o->store);
    return 0;
}

int
gh_cache_obj_head(struct gh_cobj *o, int status, const struct gh_h1_header *hs, uint32_t n,
                  const char *vary, size_t vlen, const char *vkey, size_t vklen,
                  const struct gh_cache_times *t)
{
    o->status = (uint16_t)status;
    o->times = *t;
    __atomic_store_n(&o->state, GH_COBJ_FILLING, __ATOMIC_RELEASE);
    return copy_fields(o, hs, n, vary, vlen, vkey, vklen);
}

/* o is complete and in the index: to the disk tier, if there is one. */
static void
write_through(struct gh_cobj *o)
{
    struct gh_cdisk *d = __atomic_load_n(&o->store->disk, __ATOMIC_ACQUIRE);
    if (d == NULL)
        return;
    struct shard *sh = shard_of(o->store, o->hash);
    pthread_mutex_lock(&sh->lock);
    bool linked = o->linked; /* not one replaced or purged while it was filled */
    pthread_mutex_unlock(&sh->lock);
    if (linked)
        gh_cdisk_put(d, o);
}

void
gh_cache_fill_done(struct gh_cobj *o)
{
    o->content_length = (int64_t)o->body->len;
    __atomic_store_n(&o->state, GH_COBJ_DONE, __ATOMIC_RELEASE);
    progress(o);
    write_through(o);
}

void
gh_cache_fill_abort(struct gh_cobj *o)
{
    struct shard *sh = shard_of(o->store, o->hash);
    pthread_mutex_lock(&sh->lock);
    bool was = o->linked;
    if (was)
        unlink_obj(o->store, sh, o);
    __atomic_store_n(&o->state, GH_COBJ_ABORTED, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&sh->lock);
    progress(o);
    if (was)
        gh_cobj_put(o);
}

struct gh_cobj *
gh_cache_replace_head(struct gh_cobj *o, const struct gh_h1_header *hs, uint32_t n,
                      const struct gh_cache_times *t)
{
    struct gh_cobj *x = gh_cache_obj_new(o->store, o->key, o->key_len);
    if (x == NULL)
        return NULL;
    body_put(x->body);
    x->body = o->body;
    __atomic_add_fetch(&o->body->refs, 1, __ATOMIC_RELAXED);
    x->status = o->status;
    x->times = *t;
    x->content_length = o->content_length;
    x->state = GH_COBJ_DONE;
    if (copy_fields(x, hs, n, o->vary, o->vary_len, o->vary_key, o->vary_key_len) != 0) {
        gh_cobj_put(x);
        return NULL;
    }
    struct shard *sh = shard_of(o->store, o->hash);
    pthread_mutex_lock(&sh->lock);
    x->charge += o->charge; /* the body moves to its account (o's is given back below) */
    bool ok = link_obj(o->store, sh, x);
    bool was = ok && o->linked;
    if (was)
        unlink_obj(o->store, sh, o);
    pthread_mutex_unlock(&sh->lock);
    if (was)
        gh_cobj_put(o);
    if (!ok) {
        gh_cobj_put(x);
        return NULL;
    }
    write_through(x);
    return x;
}

/* ------------------------------------------------------------------ */
/* removal                                                             */

/* Out of one shard: the objects for which match(o) holds (with room for 32 at a time). */
static uint32_t
remove_where(struct gh_cache_store *s, struct shard *sh,
             bool (*match)(const struct gh_cobj *, const void *), const void *arg)
{
    uint32_t total = 0;
    struct dropped d;
    bool full;
    do {
        d.n = 0;
        pthread_mutex_lock(&sh->lock);
        for (uint32_t b = 0; b < sh->n_buckets && d.n < GH_ARRAY_LEN(d.o); b++) {
            struct gh_cobj *o = sh->buckets[b];
            while (o != NULL && d.n < GH_ARRAY_LEN(d.o)) {
                struct gh_cobj *next = o->hnext;
                if (gh_cobj_state(o) != GH_COBJ_BUSY && match(o, arg)) {
                    unlink_obj(s, sh, o);
                    d.o[d.n++] = o;
                }
                o = next;
            }
        }
        pthread_mutex_unlock(&sh->lock);
        total += d.n;
        full = d.n == GH_ARRAY_LEN(d.o); /* more may be left */
        drop_all(&d);
    } while (full);
    return total;
}

struct prefix {
    const char *p;
    size_t len;
    bool exact;
};

static bool
key_match(const struct gh_cobj *o, const void *arg)
{
    const struct prefix *x = arg;
    if (x->exact ? o->key_len != x->len : o->key_len < x->len)
        return false;
    return memcmp(o->key, x->p, x->len) == 0;
}

uint32_t
gh_cache_remove_key(struct gh_cache_store *s, const char *key, size_t len)
{
    struct prefix x = {key, len, true};
    struct gh_cdisk *d = __atomic_load_n(&s->disk, __ATOMIC_ACQUIRE);
    uint32_t on_disk = d != NULL ? gh_cdisk_remove(d, key, len, false) : 0;
    uint32_t n = remove_where(s, shard_of(s, gh_cache_hash(key, len)), key_match, &x);
    return GH_MAX(n, on_disk); /* the disk holds copies of what memory holds, and more */
}

uint32_t
gh_cache_remove_prefix(struct gh_cache_store *s, const char *prefix, size_t len)
{
    struct prefix x = {prefix, len, false};
    struct gh_cdisk *d = __atomic_load_n(&s->disk, __ATOMIC_ACQUIRE);
    uint32_t on_disk = d != NULL ? gh_cdisk_remove(d, prefix, len, true) : 0;
    uint32_t n = 0;
    for (int i = 0; i < GH_CACHE_SHARDS; i++)
        n += remove_where(s, &s->shards[i], key_match, &x);
    return GH_MAX(n, on_disk);
}

/* ------------------------------------------------------------------ */
/* reading                                                             */

int
gh_cobj_read(const struct gh_cobj *o, struct gh_cread *cur, uint64_t off, size_t max,
             struct iovec *spans, int nspans)
{
    uint64_t avail = gh_cobj_avail(o);
    if (off >= avail || max == 0)
        return 0;
    const struct gh_cache_chunk *c = cur->c;
    uint64_t start = cur->c_start;
    if (c == NULL || off < start) {
        c = __atomic_load_n(&o->body->head, __ATOMIC_ACQUIRE);
        start = 0;
    }
    while (c != NULL && off >= start + c->cap) { /* full chunks before off */
        start += c->cap;
        c = __atomic_load_n(&c->next, __ATOMIC_ACQUIRE);
    }
    int n = 0;
    while (c != NULL && n < nspans && off < avail && max > 0) {
        uint64_t end = GH_MIN(start + c->cap, avail);
        size_t k = (size_t)GH_MIN(end - off, (uint64_t)max);
        spans[n++] = (struct iovec){(void *)(c->data + (off - start)), k};
        off += k;
        max -= k;
        cur->c = c;
        cur->c_start = start;
        if (off == start + c->cap) {
            start += c->cap;
            c = __atomic_load_n(&c->next, __ATOMIC_ACQUIRE);
        }
    }
    return n;
}
