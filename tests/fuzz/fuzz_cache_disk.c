/*
 * fuzz_cache_disk.c - libFuzzer target for the parser of the cache's on-disk files
 * (cache/disk_fmt.c): what the disk tier reads back from PATH at start and at a hit, where a
 * file may be truncated, damaged or not one of ours.
 *
 * The input is a file. Invariants: the parsers never read outside it; a file the preamble and
 * meta parsers accept has sections inside it and fields that decode within the fields section
 * and encode back to the same bytes; a whole file whose checksum is set right parses, and any
 * other change to the checksum is caught. Inputs live in exact-size allocations so ASan sees
 * any overread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/disk_fmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The fields decode inside the section and encode back to the same meta bytes. */
static void
round_trip(const char *buf, const struct gh_cdisk_meta *m)
{
    struct gh_h1_header *hs = malloc(((size_t)m->n_fields + 1) * sizeof(*hs));
    size_t mlen = gh_cdisk_meta_len(m);
    char *again = malloc(mlen);
    if (hs == NULL || again == NULL)
        goto out;
    gh_cdisk_fields(m, hs);
    for (uint32_t i = 0; i < m->n_fields; i++) {
        CHECK(hs[i].name >= m->fields && hs[i].name_len > 0);
        CHECK(hs[i].value + hs[i].value_len <= m->fields + m->fields_len);
    }
    struct gh_cdisk_meta m2 = *m;
    CHECK(gh_cdisk_encode_meta(&m2, hs, m->n_fields, again, mlen) == (int)mlen);
    CHECK(memcmp(again, buf, mlen) == 0); /* every byte of it is meaningful */
    struct gh_cdisk_meta m3;
    CHECK(gh_cdisk_parse_meta(again, mlen, &m3) == 0);
    CHECK(m3.body_len == m->body_len && m3.status == m->status);
    CHECK(m3.times.request_time == m->times.request_time && m3.times.age == m->times.age &&
          m3.times.sie == m->times.sie && m3.times.s_maxage == m->times.s_maxage);
out:
    free(hs);
    free(again);
}

/* With its checksum set right, a whole file parses; with it off by one bit, it does not. */
static void
checksum(const char *buf, size_t len)
{
    char *f = malloc(len);
    if (f == NULL)
        return;
    memcpy(f, buf, len);
    struct gh_cdisk_sum s;
    gh_cdisk_sum_init(&s);
    gh_cdisk_sum_add(&s, f, len - 8);
    uint64_t h = gh_cdisk_sum_final(&s);
    for (int i = 0; i < 8; i++)
        f[len - 8 + i] = (char)(h >> (8 * i));
    struct gh_cdisk_meta m;
    CHECK(gh_cdisk_parse_file(f, len, &m) == 0);
    f[len - 1] ^= 1;
    CHECK(gh_cdisk_parse_file(f, len, &m) != 0);
    free(f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    struct gh_cdisk_meta m;
    if (gh_cdisk_parse_pre(buf, size, &m) == 0) {
        CHECK(m.key_len > 0 && m.key_len <= GH_CDISK_MAX_KEY);
        CHECK(m.fields_len <= GH_CDISK_MAX_FIELDS);
    }
    if (gh_cdisk_parse_meta(buf, size, &m) == 0) {
        CHECK(gh_cdisk_meta_len(&m) <= size);
        CHECK(m.key == buf + GH_CDISK_PRE);
        CHECK(m.fields + m.fields_len == buf + gh_cdisk_meta_len(&m));
        round_trip(buf, &m);
        if (gh_cdisk_file_len(&m) == size)
            checksum(buf, size);
    }
    if (gh_cdisk_parse_file(buf, size, &m) == 0)
        CHECK(gh_cdisk_file_len(&m) == size);
    free(buf);
    return 0;
}
