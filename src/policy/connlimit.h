/*
 * connlimit.h - concurrent use counts per client address, shared by every worker thread
 * (`limit_conn`). One process-wide table: 64 shards, each with its own lock and a fixed
 * pool of entries, so memory is bounded (GH_CONNLIMIT_ENTRIES addresses counted at once,
 * about 4 MiB of address space, touched only as it is used) and nothing is allocated
 * while counting. An entry is freed when its count returns to 0. Shards are picked by a
 * hash keyed with a random seed chosen at the first use, so clients cannot aim at one shard.
 */
#ifndef GH_POLICY_CONNLIMIT_H
#define GH_POLICY_CONNLIMIT_H

#include <stdint.h>

#define GH_CONNLIMIT_SHARDS 64
#define GH_CONNLIMIT_PER_SHARD 2048
#define GH_CONNLIMIT_ENTRIES (GH_CONNLIMIT_SHARDS * GH_CONNLIMIT_PER_SHARD)

/*
 * Count one more use by address (family, ip[16]; IPv4 in ip[0..4), the rest zero) when
 * its count is below limit. Returns 0 (counted: give it back with gh_connlimit_put),
 * -EBUSY (at the limit: not counted) or -ENOSPC (the table's shard is full: not counted).
 */
int gh_connlimit_take(uint8_t family, const uint8_t *ip, uint32_t limit);

/* One use by the address ends (it must have been counted by gh_connlimit_take). */
void gh_connlimit_put(uint8_t family, const uint8_t *ip);

/* The address's count now (tests). */
uint32_t gh_connlimit_count(uint8_t family, const uint8_t *ip);

/* Entries in use across all shards (tests, stats). */
uint32_t gh_connlimit_used(void);

#endif
