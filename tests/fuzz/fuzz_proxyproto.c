/*
 * fuzz_proxyproto.c - libFuzzer target for the PROXY protocol parser
 * (net/proxyproto.c): what every connection on a `proxy_protocol` listener
 * meets first, before anything else reads it.
 *
 * The input is parsed whole and as each of its prefixes (each in an
 * exact-size allocation, so ASan sees any overread). A prefix shorter than a
 * header must be GH_INCOMPLETE or the same GH_BAD (never a header), and every
 * prefix of at least the header's length gives the same header: the result
 * never depends on how the bytes arrived. A header parsed with addresses is
 * written again with gh_pp_write in both versions and parsed back to the same
 * addresses.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "core/common.h"
#include "net/proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int
parse_copy(const uint8_t *data, size_t n, struct gh_pp_info *info, const char **why)
{
    char *p = malloc(n ? n : 1);
    CHECK(p != NULL);
    memcpy(p, data, n);
    int rc = gh_pp_parse(p, n, info, why);
    free(p);
    return rc;
}

static void
same_info(const struct gh_pp_info *a, const struct gh_pp_info *b)
{
    CHECK(a->version == b->version && a->local == b->local);
    if (!a->local) {
        CHECK(a->src.ss_family == b->src.ss_family);
        size_t l =
            a->src.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
        CHECK(memcmp(&a->src, &b->src, l) == 0 && memcmp(&a->dst, &b->dst, l) == 0);
    }
}

static bool
mapped(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 &&
           IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* (an IPv4-mapped pair is written as IPv4, so it comes back in another family) */
static void
round_trip(const struct gh_pp_info *info)
{
    if (mapped(&info->src) || mapped(&info->dst))
        return;
    for (int v = 1; v <= 2; v++) {
        char buf[GH_PP_V1_MAX + 64];
        size_t n = gh_pp_write(buf, sizeof(buf), v, &info->src, &info->dst);
        CHECK(n > 0);
        struct gh_pp_info back;
        const char *why;
        CHECK(gh_pp_parse(buf, n, &back, &why) == (int)n);
        CHECK(back.version == v && !back.local);
        back.version = info->version;
        same_info(info, &back);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > GH_PP_MAX + 16)
        size = GH_PP_MAX + 16;
    struct gh_pp_info whole;
    const char *why_whole;
    int rc = parse_copy(data, size, &whole, &why_whole);
    CHECK(rc > 0 || rc == GH_INCOMPLETE || rc == GH_BAD);
    CHECK(rc != GH_BAD || why_whole != NULL);
    if (rc > 0) {
        CHECK((size_t)rc <= size && (size_t)rc <= GH_PP_MAX);
        CHECK(whole.version == 1 || whole.version == 2);
        if (!whole.local)
            CHECK(whole.src.ss_family == AF_INET || whole.src.ss_family == AF_INET6);
        if (!whole.local)
            round_trip(&whole);
    }
    /* every prefix agrees with the whole (a sample of them for long inputs) */
    size_t step = size > 300 ? size / 97 + 1 : 1;
    for (size_t k = 0; k < size; k += step) {
        struct gh_pp_info part;
        const char *why;
        int prc = parse_copy(data, k, &part, &why);
        if (rc > 0 && k >= (size_t)rc) {
            CHECK(prc == rc);
            same_info(&whole, &part);
        } else if (rc > 0) {
            CHECK(prc == GH_INCOMPLETE);
        } else if (prc != GH_INCOMPLETE) {
            CHECK(prc == GH_BAD && rc == GH_BAD);
        }
    }
    return 0;
}
