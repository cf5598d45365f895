/*
 * cache_hits.c - hit ratio of the cache's store (SIEVE, src/cache/store.c) against LRU of the
 * same capacity, under a Zipf-distributed workload with a cache smaller than the working set.
 *
 *   cache_hits [REQUESTS] [KEYS] [ALPHA]      (defaults 2000000 100000 0.9)
 *
 * Every request looks its key up in the store; a miss stores it (a 1,000-byte body). The store
 * is run at a byte budget of 1%, 5% and 10% of the working set; LRU (a hash table and a list)
 * is given the number of objects the store held at the end, and replays the same requests.
 * Prints one line per size: the store's and LRU's hit ratios. Deterministic (fixed seed).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/store.h"

#define BODY 1000

static uint64_t rng = 88172645463325252ULL;

static double
uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / (double)(1ULL << 53);
}

/* Key ranks 0..n-1 drawn from Zipf(alpha) through its CDF. */
static uint32_t *
workload(uint32_t n, uint32_t reqs, double alpha)
{
    double *cdf = malloc(n * sizeof(*cdf));
    uint32_t *w = malloc(reqs * sizeof(*w));
    double sum = 0;
    for (uint32_t i = 0; i < n; i++)
        cdf[i] = (sum += 1.0 / pow(i + 1, alpha));
    for (uint32_t r = 0; r < reqs; r++) {
        double u = uniform() * sum;
        uint32_t lo = 0, hi = n - 1;
        while (lo < hi) {
            uint32_t mid = (lo + hi) / 2;
            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        /* ranks scattered over the key space, so popularity is not in insertion order */
        w[r] = (uint32_t)((lo * 2654435761u) % n);
    }
    free(cdf);
    return w;
}

static double
run_store(const uint32_t *w, uint32_t reqs, uint64_t budget, uint64_t *objects)
{
    char name[32], key[16];
    snprintf(name, sizeof(name), "zipf-%llu", (unsigned long long)budget);
    struct gh_cache_store *s = gh_cache_store_open(name, budget, 64 * 1024);
    static char body[BODY];
    const struct gh_cache_times t = {.lifetime = 3600, .swr = -1, .sie = -1};
    uint64_t hits = 0;
    for (uint32_t r = 0; r < reqs; r++) {
        int kl = snprintf(key, sizeof(key), "k%u", w[r]);
        struct gh_cobj *o;
        if (gh_cache_lookup(s, key, (size_t)kl, NULL, 0, true, &o) == GH_CACHE_HIT) {
            hits++;
        } else if (o != NULL && gh_cache_fill_head(o, 200, NULL, 0, "", 0, "", 0, &t, BODY) == 0) {
            struct iovec v = {body, BODY};
            gh_cache_fill_body(o, &v, 1);
            gh_cache_fill_done(o);
        }
        gh_cobj_put(o);
    }
    struct gh_cache_stats st;
    gh_cache_store_stats(s, &st);
    *objects = st.objects;
    return (double)hits / reqs;
}

/* LRU over keys 0..n-1 with room for cap of them: an array-linked list, most recent at head. */
static double
run_lru(const uint32_t *w, uint32_t reqs, uint32_t n, uint64_t cap)
{
    int32_t *prev = malloc(n * sizeof(int32_t)), *next = malloc(n * sizeof(int32_t));
    uint8_t *in = calloc(n, 1);
    int32_t head = -1, tail = -1;
    uint64_t size = 0, hits = 0;
    for (uint32_t r = 0; r < reqs; r++) {
        int32_t k = (int32_t)w[r];
        if (in[k]) {
            hits++;
            if (head == k)
                continue;
            next[prev[k]] = next[k]; /* unlink */
            if (next[k] >= 0)
                prev[next[k]] = prev[k];
            else
                tail = prev[k];
        } else {
            in[k] = 1;
            if (++size > cap) { /* evict the least recent */
                int32_t v = tail;
                tail = prev[v];
                next[tail] = -1;
                in[v] = 0;
                size--;
            }
        }
        prev[k] = -1; /* to the head */
        next[k] = head;
        if (head >= 0)
            prev[head] = k;
        head = k;
        if (tail < 0)
            tail = k;
    }
    free(prev);
    free(next);
    free(in);
    return (double)hits / reqs;
}

int
main(int argc, char **argv)
{
    uint32_t reqs = argc > 1 ? (uint32_t)atol(argv[1]) : 2000000;
    uint32_t n = argc > 2 ? (uint32_t)atol(argv[2]) : 100000;
    double alpha = argc > 3 ? atof(argv[3]) : 0.9;
    uint32_t *w = workload(n, reqs, alpha);
    /* what one stored 1,000-byte object costs the store (body, key, object), measured */
    uint64_t per, one;
    run_store(w, 1, 1ull << 30, &one);
    struct gh_cache_store *probe = gh_cache_store_open("zipf-1073741824", 1ull << 30, 65536);
    struct gh_cache_stats st;
    gh_cache_store_stats(probe, &st);
    per = st.bytes;
    printf("zipf alpha %.2f, %u keys, %u requests, %llu bytes per object in the store\n", alpha, n,
           reqs, (unsigned long long)per);
    const int pct[] = {1, 5, 10};
    for (size_t i = 0; i < sizeof(pct) / sizeof(pct[0]); i++) {
        uint64_t objects;
        double s = run_store(w, reqs, per * n * (uint64_t)pct[i] / 100, &objects);
        double l = run_lru(w, reqs, n, objects);
        printf("cache %2d%% of the working set (%llu objects): SIEVE %.1f%%  LRU %.1f%%  "
               "(misses %.2fx LRU's)\n",
               pct[i], (unsigned long long)objects, 100 * s, 100 * l, (1 - s) / (1 - l));
    }
    free(w);
    return 0;
}
