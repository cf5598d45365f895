/*
 * fuzz_h1_chunked.c - libFuzzer target for the chunked-body decoder.
 *
 * The input is decoded whole, one byte at a time, and in pseudo-random splits
 * (each piece in its own exact-size allocation, so ASan sees any overread).
 * All runs must agree on the outcome, the decoded data, the bytes consumed and
 * the error reason; data spans must lie inside the piece given. A second pass
 * with small limits checks that limits only ever add errors.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct outcome {
    int ret;         /* 0, GH_BAD or GH_INCOMPLETE (input ran out) */
    size_t consumed; /* bytes of the input used when ret is 0 */
    const char *reason;
    char *out;
    size_t out_len;
};

/* Decode data[0..size) in pieces of `step(i)` bytes; step 0 means whole. */
static void
decode(const uint8_t *data, size_t size, uint32_t seed, int mode, uint32_t max_line,
       uint32_t max_trailers, struct outcome *o)
{
    struct gh_h1_chunked c;
    size_t start = 0;

    gh_h1_chunked_init(&c);
    c.max_line = max_line;
    c.max_trailers = max_trailers;
    o->ret = GH_INCOMPLETE;
    o->consumed = size;
    o->reason = NULL;
    o->out_len = 0;
    do {
        size_t plen = size - start;
        if (mode == 1 && plen > 1)
            plen = 1;
        if (mode == 2) {
            seed = seed * 1103515245u + 12345u;
            size_t want = 1 + (seed >> 16) % 13;
            if (plen > want)
                plen = want;
        }
        char *piece = malloc(plen ? plen : 1);
        if (plen)
            memcpy(piece, data + start, plen);
        size_t off = 0;
        for (;;) {
            const char *d = NULL;
            size_t used = 0, dlen = 0;
            int r = gh_h1_chunked_decode(&c, piece + off, plen - off, &used, &d, &dlen);
            CHECK(used <= plen - off);
            if (r == 1) {
                CHECK(dlen > 0 && d == piece + off + used - dlen && d >= piece + off);
                CHECK(o->out_len + dlen <= size);
                memcpy(o->out + o->out_len, d, dlen);
                o->out_len += dlen;
                off += used;
                continue;
            }
            if (r == GH_INCOMPLETE) {
                CHECK(used == plen - off);
                break;
            }
            CHECK(r == 0 || r == GH_BAD);
            o->ret = r;
            o->consumed = start + off + used;
            o->reason = r == GH_BAD ? c.reason : NULL;
            CHECK(r == 0 || (c.reason != NULL && c.reason[0] != '\0'));
            free(piece);
            return;
        }
        free(piece);
        start += plen;
    } while (start < size);
}

static void
same(const struct outcome *a, const struct outcome *b)
{
    CHECK(a->ret == b->ret);
    CHECK(a->out_len == b->out_len);
    CHECK(memcmp(a->out, b->out, a->out_len) == 0);
    if (a->ret == 0)
        CHECK(a->consumed == b->consumed);
    if (a->ret == GH_BAD)
        CHECK(strcmp(a->reason, b->reason) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome whole, other;
    uint32_t hash = 2166136261u;

    for (size_t i = 0; i < size; i++)
        hash = (hash ^ data[i]) * 16777619u;
    whole.out = malloc(size + 1);
    other.out = malloc(size + 1);

    decode(data, size, 0, 0, 0, 0, &whole);
    CHECK(whole.out_len <= size);
    if (whole.ret == 0)
        CHECK(whole.consumed <= size && whole.consumed >= 5);
    decode(data, size, 0, 1, 0, 0, &other);
    same(&whole, &other);
    decode(data, size, hash, 2, 0, 0, &other);
    same(&whole, &other);

    /* Small limits: either the same outcome, or a limit error with a prefix of the data. */
    uint32_t ml = 3 + hash % 40, mt = 2 + (hash >> 8) % 100;
    struct outcome lim;
    lim.out = malloc(size + 1);
    decode(data, size, 0, 0, ml, mt, &lim);
    if (lim.ret == GH_BAD && strstr(lim.reason, "too") != NULL) {
        CHECK(lim.out_len <= whole.out_len);
        CHECK(memcmp(lim.out, whole.out, lim.out_len) == 0);
    } else {
        same(&whole, &lim);
    }
    decode(data, size, hash ^ 0x5bd1e995u, 2, ml, mt, &other);
    same(&lim, &other);

    free(lim.out);
    free(whole.out);
    free(other.out);
    return 0;
}
