/*
 * test_lpm.c - longest-prefix match (policy/lpm.c): nesting, both families, mapped addresses,
 * duplicates, random prefix lists against the obvious scan for the longest containing prefix,
 * and a million generated prefixes (the build time is printed, never asserted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "policy/lpm.h"

static struct gh_cidr
P(const char *s) {
    struct gh_cidr c;
    bool hb;
    const char *why;
    if (gh_cidr_parse(s, strlen(s), &c, &hb, &why) != 0) {
        fprintf(stderr, "# cannot parse %s: %s\n", s, why);
        fail();
    }
    return c;
}

static uint32_t
find(const struct gh_lpm *m, const char *addr)
{
    uint8_t fam, ip[16];
    assert_int_equal(gh_ip_parse(addr, strlen(addr), &fam, ip), 0);
    return gh_lpm_find(m, fam, ip);
}

static struct gh_lpm *
build(const char *const *pre, uint32_t n)
{
    struct gh_lpm_builder b = {0};
    for (uint32_t i = 0; i < n; i++) {
        struct gh_cidr c = P(pre[i]);
        assert_int_equal(gh_lpm_add(&b, &c, i, i), 0);
    }
    uint32_t d1, d2;
    struct gh_lpm *m = gh_lpm_build(&b, &d1, &d2);
    assert_non_null(m);
    return m;
}

static void
test_nesting(void **state)
{
    (void)state;
    const char *pre[] = {"10.0.0.0/8",    "10.1.0.0/16",     "10.1.2.0/24",
                         "10.1.2.3/32",   "0.0.0.0/0",       "10.2.0.0/16",
                         "2001:db8::/32", "2001:db8:1::/48", "::ffff:192.168.0.0/112"};
    struct gh_lpm *m = build(pre, 9);
    assert_int_equal(find(m, "10.9.9.9"), 0);
    assert_int_equal(find(m, "10.1.9.9"), 1);
    assert_int_equal(find(m, "10.1.2.4"), 2);
    assert_int_equal(find(m, "10.1.2.3"), 3);
    assert_int_equal(find(m, "10.1.3.0"), 1);
    assert_int_equal(find(m, "10.2.255.255"), 5);
    assert_int_equal(find(m, "10.3.0.0"), 0);
    assert_int_equal(find(m, "11.0.0.0"), 4);
    assert_int_equal(find(m, "255.255.255.255"), 4);
    assert_int_equal(find(m, "0.0.0.0"), 4);
    assert_int_equal(find(m, "192.168.7.7"), 8);
    assert_int_equal(find(m, "::ffff:10.1.2.3"), 3); /* a mapped address is the IPv4 one */
    assert_int_equal(find(m, "2001:db8::1"), 6);
    assert_int_equal(find(m, "2001:db8:1::1"), 7);
    assert_int_equal(find(m, "2001:db9::1"), GH_LPM_NONE);
    assert_int_equal(find(m, "::"), GH_LPM_NONE);
    assert_int_equal(gh_lpm_find(NULL, AF_INET, (const uint8_t *)"\1\2\3\4"), GH_LPM_NONE);
    gh_lpm_free(m);

    const char *all6[] = {"::/0", "ffff::/16", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"};
    m = build(all6, 3);
    assert_int_equal(find(m, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 2);
    assert_int_equal(find(m, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"), 1);
    assert_int_equal(find(m, "fffe::"), 0);
    assert_int_equal(find(m, "1.2.3.4"), GH_LPM_NONE); /* IPv6 prefixes leave IPv4 alone */
    gh_lpm_free(m);
}

static void
test_duplicate(void **state)
{
    (void)state;
    struct gh_lpm_builder b = {0};
    const char *pre[] = {"10.0.0.0/8", "2001:db8::/32", "10.0.0.0/16", "2001:db8::/32"};
    for (uint32_t i = 0; i < 4; i++) {
        struct gh_cidr c = P(pre[i]);
        assert_int_equal(gh_lpm_add(&b, &c, i, 100 + i), 0);
    }
    uint32_t d1, d2;
    assert_null(gh_lpm_build(&b, &d1, &d2));
    assert_int_equal(d1, 101);
    assert_int_equal(d2, 103);
    assert_null(b.v);
}

static uint64_t rs = 88172645463325252ull;
static uint64_t
rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

/* The value of the longest prefix of pre[0..n) containing (fam, ip), by scanning. */
static uint32_t
slow_find(const struct gh_cidr *pre, uint32_t n, uint8_t fam, const uint8_t *ip)
{
    uint32_t best = GH_LPM_NONE;
    int best_bits = -1;
    for (uint32_t i = 0; i < n; i++)
        if (gh_cidr_contains(&pre[i], fam, ip) && (int)pre[i].bits > best_bits) {
            best = i;
            best_bits = pre[i].bits;
        }
    return best;
}

static struct gh_cidr
random_prefix(bool v6)
{
    struct gh_cidr c = {0};
    c.family = v6 ? AF_INET6 : AF_INET;
    unsigned width = v6 ? 128 : 32;
    c.bits = (uint8_t)(rnd() % (width + 1));
    /* few distinct high bytes, so that prefixes nest and overlap often */
    for (unsigned i = 0; i < width / 8; i++)
        c.ip[i] = (uint8_t)(i < 2 ? rnd() % 3 : rnd());
    for (unsigned bit = c.bits; bit < width; bit++)
        c.ip[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    return c;
}

static void
test_random_against_reference(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        uint32_t n = 1 + (uint32_t)(rnd() % 300);
        struct gh_cidr *pre = calloc(n, sizeof(*pre));
        struct gh_lpm_builder b = {0};
        uint32_t kept = 0;
        for (uint32_t i = 0; i < n; i++) {
            struct gh_cidr c = random_prefix(rnd() % 3 == 0);
            bool dup = false;
            for (uint32_t j = 0; j < kept && !dup; j++)
                dup = pre[j].family == c.family && pre[j].bits == c.bits &&
                      memcmp(pre[j].ip, c.ip, 16) == 0;
            if (dup)
                continue;
            pre[kept] = c;
            assert_int_equal(gh_lpm_add(&b, &c, kept, kept), 0);
            kept++;
        }
        uint32_t d1, d2;
        struct gh_lpm *m = gh_lpm_build(&b, &d1, &d2);
        assert_non_null(m);
        for (int q = 0; q < 3000; q++) {
            /* an address near a prefix (inside, at its edges, or just outside) or random */
            struct gh_cidr c = q % 4 == 0 ? random_prefix(rnd() % 3 == 0) : pre[rnd() % kept];
            uint8_t ip[16];
            memcpy(ip, c.ip, 16);
            unsigned nb = c.family == AF_INET ? 4 : 16;
            if (q % 3 == 1)
                for (unsigned bit = c.bits; bit < nb * 8; bit++)
                    ip[bit / 8] |= (uint8_t)(0x80u >> (bit % 8)); /* its last address */
            if (q % 5 == 2)                                       /* one past, or one before */
                for (int i = (int)nb - 1; i >= 0 && ++ip[i] == 0; i--)
                    ;
            if (q % 7 == 3)
                for (int i = (int)nb - 1; i >= 0 && ip[i]-- == 0; i--)
                    ;
            assert_int_equal(gh_lpm_find(m, c.family, ip), slow_find(pre, kept, c.family, ip));
        }
        gh_lpm_free(m);
        free(pre);
    }
}

/* A million /24 and /32 prefixes with 8 values: builds, and answers as generated. The time
 * is printed for the record. */
static void
test_million(void **state)
{
    (void)state;
    const uint32_t n = 1000000;
    struct gh_lpm_builder b = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint32_t i = 0; i < n; i++) {
        struct gh_cidr c = {.family = AF_INET, .bits = 24};
        uint32_t a = ((i * 2654435761u) & 0xffffffu) << 8; /* distinct /24s, scattered */
        if (i % 10 == 9) {                                 /* some /32s inside earlier /24s */
            a = (((i - 9) * 2654435761u & 0xffffffu) << 8) | 7;
            c.bits = 32;
        }
        c.ip[0] = (uint8_t)(a >> 24);
        c.ip[1] = (uint8_t)(a >> 16);
        c.ip[2] = (uint8_t)(a >> 8);
        c.ip[3] = (uint8_t)a;
        assert_int_equal(gh_lpm_add(&b, &c, i % 8, i), 0);
    }
    uint32_t d1, d2;
    struct gh_lpm *m = gh_lpm_build(&b, &d1, &d2);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_non_null(m);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    fprintf(stderr, "# lpm: 1,000,000 prefixes built in %.0f ms (%zu ranges)\n", ms,
            gh_lpm_ranges(m));
    for (uint32_t i = 0; i < 100000; i++) {
        uint32_t a = ((i * 2654435761u) & 0xffffffu) << 8;
        uint8_t ip[4] = {(uint8_t)(a >> 24), (uint8_t)(a >> 16), (uint8_t)(a >> 8), 200};
        assert_int_equal(gh_lpm_find(m, AF_INET, ip), i % 10 == 9 ? GH_LPM_NONE : i % 8);
        if (i % 10 == 0) {
            ip[3] = 7;
            assert_int_equal(gh_lpm_find(m, AF_INET, ip), (i + 9) % 8);
        }
    }
    gh_lpm_free(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nesting),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_random_against_reference),
        cmocka_unit_test(test_million),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
