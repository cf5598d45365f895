/*
 * disk_fmt.h - the on-disk format of a stored response (the disk tier, cache/disk.c): pure
 * encoding and checking, no I/O (fuzzed by tests/fuzz/fuzz_cache_disk.c).
 *
 * One file per object (little-endian throughout):
 *
 *   preamble  GH_CDISK_PRE bytes: the magic "GHCDISK1", status, the lengths of the
 *             sections below, the body length, and the times freshness and Age are
 *             computed from (struct gh_cache_times, wall-clock seconds)
 *   key       key_len bytes
 *   vary      vary_len bytes (the response's Vary names, store.h)
 *   vary_key  vkey_len bytes (the request's values for them)
 *   fields    fields_len bytes: n_fields times (u32 name length, u32 value length, name, value)
 *   body      body_len bytes
 *   checksum  8 bytes: gh_cdisk_sum of everything before it
 *
 * A file is complete and whole when its size is exactly gh_cdisk_file_len and the checksum
 * matches; the preamble alone (with the meta sections) is enough to index it at start.
 */
#ifndef GH_CACHE_DISK_FMT_H
#define GH_CACHE_DISK_FMT_H

#include <stddef.h>
#include <stdint.h>

#include "cache/policy.h"
#include "http/h1.h"

#define GH_CDISK_MAGIC "GHCDISK1"
#define GH_CDISK_PRE 104
#define GH_CDISK_MAX_KEY (64u * 1024)      /* key, vary, vary_key: each at most */
#define GH_CDISK_MAX_FIELDS (1024u * 1024) /* the fields section at most */
#define GH_CDISK_MAX_NFIELDS 4096u

/* What a file's preamble and meta sections say. The pointers point into the buffer parsed. */
struct gh_cdisk_meta {
    uint16_t status;
    uint32_t key_len, vary_len, vkey_len, fields_len, n_fields;
    uint64_t body_len;
    struct gh_cache_times times;
    const char *key, *vary, *vkey, *fields;
};

/* A running checksum (64-bit, word at a time: a guard against torn and damaged files, not an
 * adversary). */
struct gh_cdisk_sum {
    uint64_t h, carry, total;
    unsigned n; /* bytes in carry */
};

void gh_cdisk_sum_init(struct gh_cdisk_sum *s);
void gh_cdisk_sum_add(struct gh_cdisk_sum *s, const void *p, size_t n);
uint64_t gh_cdisk_sum_final(const struct gh_cdisk_sum *s);

/* Bytes of the preamble and meta sections; of the whole file. */
size_t gh_cdisk_meta_len(const struct gh_cdisk_meta *m);
uint64_t gh_cdisk_file_len(const struct gh_cdisk_meta *m);

/* Bytes the fields hs[0..n) take in the fields section. */
size_t gh_cdisk_fields_len(const struct gh_h1_header *hs, uint32_t n);

/*
 * Write the preamble and meta sections of m, with the fields hs[0..n) (m->fields is not
 * read; m->fields_len and m->n_fields are set from hs), into buf[0..cap). Returns the bytes
 * written (gh_cdisk_meta_len), or -ENOSPC when cap is too small, -EINVAL when a section is
 * longer than the format allows.
 */
int gh_cdisk_encode_meta(struct gh_cdisk_meta *m, const struct gh_h1_header *hs, uint32_t n,
                         char *buf, size_t cap);

/* Parse a preamble (buf[0..len), len >= GH_CDISK_PRE): 0, or -EINVAL (bad magic, lengths out
 * of bounds). Sets the lengths, status and times; the pointers are NULL. */
int gh_cdisk_parse_pre(const void *buf, size_t len, struct gh_cdisk_meta *m);

/* Parse the preamble and the meta sections in buf[0..len) (len >= gh_cdisk_meta_len): 0, or
 * -EINVAL. Sets the pointers into buf and checks that the fields section is well formed. */
int gh_cdisk_parse_meta(const char *buf, size_t len, struct gh_cdisk_meta *m);

/* The fields of a parsed meta, as headers pointing into its buffer, into out[0..m->n_fields).
 */
void gh_cdisk_fields(const struct gh_cdisk_meta *m, struct gh_h1_header *out);

/* Check a whole file in memory: its size, sections and checksum. 0, or -EINVAL. On success m
 * describes it and the body is at buf + gh_cdisk_meta_len(m). */
int gh_cdisk_parse_file(const char *buf, size_t len, struct gh_cdisk_meta *m);

#endif
