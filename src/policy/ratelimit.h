/*
 * ratelimit.h - request rates per key (`rate_limit`), shared by every worker thread.
 *
 * The limiter is GCRA (the generic cell rate algorithm, as in ATM and in redis-cell): per key
 * it keeps one number, the theoretical arrival time (TAT) of the next request. A request at
 * time t with emission interval T (the period over the rate) and tolerance tau = burst * T
 * passes when max(TAT, t) - t <= tau, and then TAT becomes max(TAT, t) + T. So at most
 * burst + 1 requests pass at once and one more every T after that: over any span of length
 * d, no more than burst + 1 + d / T pass, exactly, whatever the threads.
 *
 * A zone is a fixed table of keys made when the config loads: 64 shards (fewer for small
 * zones), each with its own lock, a hash chain per bucket and a least-recently-seen list.
 * When a shard is full its least recently seen key is evicted (it has been idle longest: it
 * is the one that forgets least). Nothing is allocated per request. Keys are kept as 64-bit
 * hashes of the key text, keyed with a random seed chosen once, so clients cannot aim at
 * one bucket and a collision (about 1 in 2^64 per pair) merges two keys at worst.
 *
 * Zones are named and shared: the same name in a new config (a reload) finds the same
 * zone when its size is the same, so limits hold across reloads.
 */
#ifndef GH_POLICY_RATELIMIT_H
#define GH_POLICY_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gh_rl_zone;

#define GH_RL_SHARDS_MAX 64

/* What a check decided. */
struct gh_rl_verdict {
    bool ok;            /* the request passes */
    uint32_t remaining; /* requests that would pass now after this one */
    uint64_t retry_ns;  /* refused: time until one would pass (else 0) */
    uint64_t reset_ns;  /* time until the key is back to its full burst */
};

/*
 * The zone called name (NUL-terminated; NULL: a new zone of its own) holding up to keys
 * keys (1..2^24): an existing one with that name and size gets one more reference, else a
 * new one is made. Never NULL (out of memory at load exits). Give it back with
 * gh_rl_zone_put.
 */
struct gh_rl_zone *gh_rl_zone_get(const char *name, uint32_t keys);

/* Drop a reference from gh_rl_zone_get; the last one frees the zone. NULL is fine. */
void gh_rl_zone_put(struct gh_rl_zone *z);

/* The key's hash, for gh_rl_check (seeded per process). */
uint64_t gh_rl_hash(const void *key, size_t len);

/*
 * Check one request of key (a gh_rl_hash) at now_ns (monotonic nanoseconds) against the
 * rate with emission interval interval_ns (> 0) and burst extra requests. Passing updates
 * the key's state; a refusal does not (refused requests do not push the key further out).
 * Thread-safe; takes one shard lock, allocates nothing.
 */
void gh_rl_check(struct gh_rl_zone *z, uint64_t key, uint64_t now_ns, uint64_t interval_ns,
                 uint32_t burst, struct gh_rl_verdict *v);

/* Keys held now, and keys evicted to make room since the zone was made (tests, stats). */
uint32_t gh_rl_zone_used(struct gh_rl_zone *z);
uint64_t gh_rl_zone_evicted(struct gh_rl_zone *z);

#endif
