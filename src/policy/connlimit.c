/*
 * connlimit.c - the shared per-address counts (see connlimit.h).
 */
#include "policy/connlimit.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/common.h"

#define BUCKETS GH_CONNLIMIT_PER_SHARD /* one bucket per entry: chains stay short */

struct entry {
    uint8_t key[17]; /* family, then 16 address bytes */
    uint32_t count;
    uint32_t next; /* entry index + 1 in the chain or the free list; 0 ends it */
};

struct shard {
    pthread_mutex_t lock;
    uint32_t heads[BUCKETS]; /* entry index + 1 */
    uint32_t free;           /* entries given back (index + 1) */
    uint32_t fresh;          /* entries [fresh, PER_SHARD) were never used */
    uint32_t used;
    struct entry e[GH_CONNLIMIT_PER_SHARD];
};

static struct shard shards[GH_CONNLIMIT_SHARDS];
static uint64_t seed[2];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void
init(void)
{
    gh_random_seed(seed);
    for (uint32_t i = 0; i < GH_CONNLIMIT_SHARDS; i++)
        pthread_mutex_init(&shards[i].lock, NULL);
}

static void
make_key(uint8_t key[17], uint8_t family, const uint8_t *ip)
{
    memset(key, 0, 17);
    key[0] = family;
    memcpy(key + 1, ip, family == AF_INET ? 4 : 16);
}

static uint64_t
hash(const uint8_t key[17])
{
    uint64_t a, b;
    memcpy(&a, key + 1, 8);
    memcpy(&b, key + 9, 8);
    return gh_mix64(gh_mix64(a ^ seed[0]) ^ b ^ seed[1] ^ key[0]);
}

int
gh_connlimit_take(uint8_t family, const uint8_t *ip, uint32_t limit)
{
    pthread_once(&once, init);
    uint8_t key[17];
    make_key(key, family, ip);
    uint64_t h = hash(key);
    struct shard *s = &shards[h % GH_CONNLIMIT_SHARDS];
    uint32_t *head = &s->heads[(h / GH_CONNLIMIT_SHARDS) % BUCKETS];
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    struct entry *e = NULL;
    for (uint32_t i = *head; i != 0; i = s->e[i - 1].next)
        if (memcmp(s->e[i - 1].key, key, 17) == 0) {
            e = &s->e[i - 1];
            break;
        }
    if (e != NULL) {
        if (e->count >= limit)
            rc = -EBUSY;
        else
            e->count++;
    } else if (limit == 0) {
        rc = -EBUSY;
    } else {
        uint32_t idx;
        if (s->free != 0) {
            idx = s->free;
            s->free = s->e[idx - 1].next;
        } else if (s->fresh < GH_CONNLIMIT_PER_SHARD) {
            idx = ++s->fresh;
        } else {
            idx = 0;
            rc = -ENOSPC;
        }
        if (idx != 0) {
            e = &s->e[idx - 1];
            memcpy(e->key, key, 17);
            e->count = 1;
            e->next = *head;
            *head = idx;
            s->used++;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void
gh_connlimit_put(uint8_t family, const uint8_t *ip)
{
    pthread_once(&once, init);
    uint8_t key[17];
    make_key(key, family, ip);
    uint64_t h = hash(key);
    struct shard *s = &shards[h % GH_CONNLIMIT_SHARDS];
    uint32_t *link = &s->heads[(h / GH_CONNLIMIT_SHARDS) % BUCKETS];
    pthread_mutex_lock(&s->lock);
    while (*link != 0) {
        uint32_t idx = *link;
        struct entry *e = &s->e[idx - 1];
        if (memcmp(e->key, key, 17) == 0) {
            if (e->count > 0 && --e->count == 0) {
                *link = e->next;
                e->next = s->free;
                s->free = idx;
                s->used--;
            }
            break;
        }
        link = &e->next;
    }
    pthread_mutex_unlock(&s->lock);
}

uint32_t
gh_connlimit_count(uint8_t family, const uint8_t *ip)
{
    pthread_once(&once, init);
    uint8_t key[17];
    make_key(key, family, ip);
    uint64_t h = hash(key);
    struct shard *s = &shards[h % GH_CONNLIMIT_SHARDS];
    uint32_t n = 0;
    pthread_mutex_lock(&s->lock);
    for (uint32_t i = s->heads[(h / GH_CONNLIMIT_SHARDS) % BUCKETS]; i != 0; i = s->e[i - 1].next)
        if (memcmp(s->e[i - 1].key, key, 17) == 0) {
            n = s->e[i - 1].count;
            break;
        }
    pthread_mutex_unlock(&s->lock);
    return n;
}

uint32_t
gh_connlimit_used(void)
{
    pthread_once(&once, init);
    uint32_t n = 0;
    for (uint32_t i = 0; i < GH_CONNLIMIT_SHARDS; i++) {
        pthread_mutex_lock(&shards[i].lock);
        n += shards[i].used;
        pthread_mutex_unlock(&shards[i].lock);
    }
    return n;
}
