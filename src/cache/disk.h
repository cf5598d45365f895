/*
 * disk.h - the cache's disk tier (`cache NAME { disk PATH SIZE; }`): complete objects are
 * written through to files under PATH (one file per variant, cache/disk_fmt.h) by a writer
 * thread of the tier, kept within SIZE bytes (FIFO with a second chance: a disk hit sets a bit,
 * and an object with the bit set goes to the back of the queue once instead of out), found
 * again after a restart by scanning PATH when the tier opens.
 *
 * The memory store (store.c) is the hot tier in front: a memory miss asks the disk tier, and
 * what it finds is read back (in the worker thread, with pread in 64 KiB steps, its checksum
 * checked) into a memory object that then serves as a memory hit. A file is written under a
 * temporary name and renamed into place when complete, so it is never seen half-written; a
 * file that does not check out (truncated, damaged, of another format) is removed and logged.
 *
 * Used by store.c only; the functions lock what they touch (one mutex per tier).
 */
#ifndef GH_CACHE_DISK_H
#define GH_CACHE_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/store.h"

struct gh_cdisk;

struct gh_cdisk_stats {
    uint64_t bytes, limit, objects; /* now (bytes: file sizes rounded up to 4 KiB blocks) */
    uint64_t hits, written, evicted, dropped, bad;
};

/*
 * Open the tier of cache name at path (created when missing; its parent must exist) within
 * size bytes: the files there are indexed (bad ones removed) and the writer thread started.
 * Returns it, or NULL (logged) when path cannot be used.
 */
struct gh_cdisk *gh_cdisk_open(const char *name, const char *path, uint64_t size);

/* Its path (as given). */
const char *gh_cdisk_path(const struct gh_cdisk *d);

/* A new size: applied (files evicted) by the writer. */
void gh_cdisk_resize(struct gh_cdisk *d, uint64_t size);

/*
 * Stop the writer once what is queued is written. With free_it, the index is freed too (at
 * exit, when nothing else uses d); otherwise d stays readable (a reload that moved the tier:
 * a worker may still be looking into it) and writes to it are dropped.
 */
void gh_cdisk_close(struct gh_cdisk *d, bool free_it);

/* Queue o (DONE, borrowed: the queue takes its own reference) to be written. */
void gh_cdisk_put(struct gh_cdisk *d, struct gh_cobj *o);

/*
 * The stored variant of key[0..len) that the request with fields rf[0..nrf) matches, read
 * back as a new DONE object of store s, not in its index (the caller's reference), or NULL.
 */
struct gh_cobj *gh_cdisk_get(struct gh_cdisk *d, struct gh_cache_store *s, const char *key,
                             size_t len, const struct gh_h1_header *rf, uint32_t nrf);

/* Remove the files of key[0..len) (exact) or of every key it begins (prefix; len 0: all),
 * with the writes of them that are queued. Returns how many files. */
uint32_t gh_cdisk_remove(struct gh_cdisk *d, const char *key, size_t len, bool prefix);

void gh_cdisk_stats(struct gh_cdisk *d, struct gh_cdisk_stats *st);

#endif
