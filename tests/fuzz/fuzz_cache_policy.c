/*
 * fuzz_cache_policy.c - libFuzzer target for the cache's field parsers (cache/policy.c): what an
 * origin or a client sends in Cache-Control, dates, entity-tags, Vary and Range.
 *
 * The input is split at its first NUL byte: the first part is the field value, the rest the
 * value of a second field. Invariants: delta-seconds stay in [0, 2^31] or unset; a parsed date
 * formats back to an IMF-fixdate that parses to the same second; a Vary key fits its buffer and
 * the same fields give the same key whatever the buffer; a satisfiable range lies inside the
 * body; an entity-tag matches itself weakly, and strongly when it is not weak. Inputs live in
 * exact-size allocations so ASan sees any overread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/policy.h"
#include "http/h1_write.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void
check_delta(int64_t v)
{
    CHECK(v == GH_CC_UNSET || (v >= 0 && v <= GH_CC_DELTA_MAX));
}

static void
cache_control(const char *v, size_t n)
{
    struct gh_cc cc;
    gh_cc_init(&cc);
    gh_cc_parse(&cc, v, n);
    check_delta(cc.max_age);
    check_delta(cc.s_maxage);
    check_delta(cc.max_stale);
    check_delta(cc.min_fresh);
    check_delta(cc.stale_while_revalidate);
    check_delta(cc.stale_if_error);
}

static void
date(const char *v, size_t n)
{
    int64_t t;
    if (gh_http_date_parse(v, n, &t) != 0 || t < 0 || t > 253402300799) /* year 9999 */
        return;
    const char *back = gh_http_date(t);
    int64_t t2;
    CHECK(gh_http_date_parse(back, strlen(back), &t2) == 0);
    CHECK(t2 == t);
}

static void
vary_and_range(const char *a, size_t an, const char *b, size_t bn)
{
    struct gh_h1_header f[2] = {{"Accept-Encoding", b, 15, (uint32_t)bn, 0},
                                {"X-Other", b, 7, (uint32_t)bn, 0}};
    char k1[4096], k2[256];
    int n1 = gh_cache_vary_key(a, an, f, 2, k1, sizeof(k1));
    int n2 = gh_cache_vary_key(a, an, f, 2, k2, sizeof(k2));
    CHECK(n1 <= (int)sizeof(k1) && n2 <= (int)sizeof(k2));
    if (n2 >= 0)
        CHECK(n1 == n2 && memcmp(k1, k2, (size_t)n1) == 0);
    uint64_t first, last;
    uint64_t len = bn * 7;
    int r = gh_cache_range(a, an, len, &first, &last);
    CHECK(r >= -1 && r <= 1);
    if (r == 1)
        CHECK(first <= last && last < len);
    if (an >= 2 && a[0] == '"' && a[an - 1] == '"' && memchr(a + 1, '"', an - 2) == NULL &&
        memchr(a, ',', an) == NULL) {
        CHECK(gh_etag_match_weak(a, an, a, an));
        CHECK(gh_etag_eq_strong(a, an, a, an));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t an = nul != NULL ? (size_t)(nul - data) : size;
    size_t bn = nul != NULL ? size - an - 1 : 0;
    char *a = malloc(an ? an : 1), *b = malloc(bn ? bn : 1);
    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        return 0;
    }
    memcpy(a, data, an);
    if (bn > 0)
        memcpy(b, data + an + 1, bn);
    cache_control(a, an);
    date(a, an);
    vary_and_range(a, an, b, bn);
    free(a);
    free(b);
    return 0;
}
