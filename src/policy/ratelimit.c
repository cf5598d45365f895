/*
 * ratelimit.c - GCRA over shared, bounded key tables (see ratelimit.h).
 */
#include "policy/ratelimit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

struct entry {
    uint64_t key;
    uint64_t tat;          /* theoretical arrival time of the next request, ns */
    uint32_t next;         /* index + 1 in the bucket's chain; 0 ends it */
    uint32_t newer, older; /* index + 1 in the recency list; 0 ends it */
};

struct shard {
    pthread_mutex_t lock;
    uint32_t cap, used;
    uint32_t mask;           /* buckets - 1 */
    uint32_t newest, oldest; /* index + 1 */
    uint32_t *heads;         /* index + 1 per bucket */
    struct entry *e;
} __attribute__((aligned(64)));

struct gh_rl_zone {
    char *name; /* NULL: anonymous */
    uint32_t keys;
    uint32_t n_shards; /* a power of two */
    int refs;          /* under reg_lock */
    struct gh_rl_zone *next_zone;
    _Atomic uint64_t evicted;
    struct shard *shards;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gh_rl_zone *zones; /* named ones */
static uint64_t seed[2];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void
init_seed(void)
{
    gh_random_seed(seed);
}

uint64_t
gh_rl_hash(const void *key, size_t len)
{
    pthread_once(&once, init_seed);
    const unsigned char *p = key;
    uint64_t h = seed[0] ^ (len * 0x9e3779b97f4a7c15ull);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = gh_mix64(h ^ w) + seed[1];
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, len);
    return gh_mix64(h ^ w ^ ((uint64_t)len << 56));
}

static void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) {
        fprintf(stderr, "gatehouse: out of memory making a rate_limit zone\n");
        exit(1);
    }
    return p;
}

static struct gh_rl_zone *
zone_new(const char *name, uint32_t keys)
{
    struct gh_rl_zone *z = xcalloc(1, sizeof(*z));
    z->name = name != NULL ? strdup(name) : NULL;
    z->keys = keys;
    z->refs = 1;
    /* at least 64 keys a shard, so a shard's eviction stays close to the zone's */
    z->n_shards = 1;
    while (z->n_shards < GH_RL_SHARDS_MAX && keys / (z->n_shards * 2) >= 64)
        z->n_shards *= 2;
    z->shards = aligned_alloc(64, z->n_shards * sizeof(struct shard));
    if (z->shards == NULL)
        exit(1);
    for (uint32_t i = 0; i < z->n_shards; i++) {
        struct shard *s = &z->shards[i];
        memset(s, 0, sizeof(*s));
        pthread_mutex_init(&s->lock, NULL);
        s->cap = keys / z->n_shards + (i < keys % z->n_shards);
        uint32_t nb = 1;
        while (nb < s->cap)
            nb *= 2;
        s->mask = nb - 1;
        s->heads = xcalloc(nb, sizeof(uint32_t));
        s->e = xcalloc(s->cap, sizeof(struct entry));
    }
    return z;
}

static void
zone_free(struct gh_rl_zone *z)
{
    for (uint32_t i = 0; i < z->n_shards; i++) {
        free(z->shards[i].heads);
        free(z->shards[i].e);
        pthread_mutex_destroy(&z->shards[i].lock);
    }
    free(z->shards);
    free(z->name);
    free(z);
}

struct gh_rl_zone *
gh_rl_zone_get(const char *name, uint32_t keys)
{
    GH_ASSERT(keys >= 1 && keys <= (1u << 24));
    pthread_once(&once, init_seed);
    if (name == NULL)
        return zone_new(NULL, keys);
    pthread_mutex_lock(&reg_lock);
    struct gh_rl_zone *z = zones;
    while (z != NULL && !(z->keys == keys && strcmp(z->name, name) == 0))
        z = z->next_zone;
    if (z != NULL) {
        z->refs++;
    } else {
        z = zone_new(name, keys);
        z->next_zone = zones;
        zones = z;
    }
    pthread_mutex_unlock(&reg_lock);
    return z;
}

void
gh_rl_zone_put(struct gh_rl_zone *z)
{
    if (z == NULL)
        return;
    if (z->name == NULL) {
        zone_free(z);
        return;
    }
    pthread_mutex_lock(&reg_lock);
    bool last = --z->refs == 0;
    if (last) {
        struct gh_rl_zone **pp = &zones;
        while (*pp != z)
            pp = &(*pp)->next_zone;
        *pp = z->next_zone;
    }
    pthread_mutex_unlock(&reg_lock);
    if (last)
        zone_free(z);
}

/* ---- one shard's table (under its lock) ---- */

static void
lru_unlink(struct shard *s, uint32_t i)
{
    struct entry *e = &s->e[i - 1];
    if (e->newer)
        s->e[e->newer - 1].older = e->older;
    else
        s->newest = e->older;
    if (e->older)
        s->e[e->older - 1].newer = e->newer;
    else
        s->oldest = e->newer;
    e->newer = e->older = 0;
}

static void
lru_push(struct shard *s, uint32_t i)
{
    struct entry *e = &s->e[i - 1];
    e->older = s->newest;
    e->newer = 0;
    if (s->newest)
        s->e[s->newest - 1].newer = i;
    s->newest = i;
    if (!s->oldest)
        s->oldest = i;
}

static void
chain_remove(struct shard *s, uint32_t i)
{
    uint32_t *pp = &s->heads[s->e[i - 1].key & s->mask];
    while (*pp != i)
        pp = &s->e[*pp - 1].next;
    *pp = s->e[i - 1].next;
}

/* The key's entry (index + 1), made when absent (evicting the oldest in a full shard). */
static uint32_t
find_or_add(struct gh_rl_zone *z, struct shard *s, uint64_t key, uint64_t now, bool *fresh)
{
    uint32_t *head = &s->heads[key & s->mask];
    for (uint32_t i = *head; i != 0; i = s->e[i - 1].next)
        if (s->e[i - 1].key == key) {
            *fresh = false;
            return i;
        }
    uint32_t i;
    if (s->used < s->cap) {
        i = ++s->used;
    } else {
        i = s->oldest;
        lru_unlink(s, i);
        chain_remove(s, i);
        atomic_fetch_add_explicit(&z->evicted, 1, memory_order_relaxed);
    }
    struct entry *e = &s->e[i - 1];
    e->key = key;
    e->tat = now;
    e->next = *head;
    *head = i;
    lru_push(s, i);
    *fresh = true;
    return i;
}

void
gh_rl_check(struct gh_rl_zone *z, uint64_t key, uint64_t now_ns, uint64_t interval_ns,
            uint32_t burst, struct gh_rl_verdict *v)
{
    uint64_t t = interval_ns, tau;
    if (__builtin_mul_overflow((uint64_t)burst, t, &tau) || tau > UINT64_MAX / 4)
        tau = UINT64_MAX / 4;
    /* the high bits pick the shard, the low ones the bucket */
    struct shard *s = &z->shards[(key >> 40) & (z->n_shards - 1)];
    pthread_mutex_lock(&s->lock);
    bool fresh;
    uint32_t i = find_or_add(z, s, key, now_ns, &fresh);
    if (!fresh && s->newest != i) {
        lru_unlink(s, i);
        lru_push(s, i);
    }
    struct entry *e = &s->e[i - 1];
    uint64_t tat = GH_MAX(e->tat, now_ns);
    uint64_t ahead = tat - now_ns;
    if (ahead > tau) {
        v->ok = false;
        v->remaining = 0;
        v->retry_ns = ahead - tau;
        v->reset_ns = ahead;
    } else {
        e->tat = tat + t;
        v->ok = true;
        v->retry_ns = 0;
        v->reset_ns = ahead + t;
        v->remaining = (uint32_t)((tau - ahead) / t);
    }
    pthread_mutex_unlock(&s->lock);
}

uint32_t
gh_rl_zone_used(struct gh_rl_zone *z)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < z->n_shards; i++) {
        pthread_mutex_lock(&z->shards[i].lock);
        n += z->shards[i].used;
        pthread_mutex_unlock(&z->shards[i].lock);
    }
    return n;
}

uint64_t
gh_rl_zone_evicted(struct gh_rl_zone *z)
{
    return atomic_load_explicit(&z->evicted, memory_order_relaxed);
}
