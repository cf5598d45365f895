/*
 * test_cidr.c - prefixes (gh_cidr_parse), the compiled prefix set (gh_cidr_set_find) against
 * the obvious linear scan, forwarded-address parsing (policy/realip.c) and the shared
 * per-address counts (policy/connlimit.c), including from several threads at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "policy/cidr.h"
#include "policy/connlimit.h"
#include "policy/realip.h"

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

static void
ip_of(const char *s, uint8_t *family, uint8_t ip[16])
{
    assert_int_equal(gh_ip_parse(s, strlen(s), family, ip), 0);
}

static uint32_t
find(const struct gh_cidr_set *set, const char *addr)
{
    uint8_t fam, ip[16];
    ip_of(addr, &fam, ip);
    return gh_cidr_set_find(set, fam, ip);
}

static void
test_parse(void **state)
{
    (void)state;
    struct gh_cidr c;
    bool hb;
    const char *why;
    assert_int_equal(gh_cidr_parse("10.0.0.0/8", 10, &c, &hb, &why), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.bits, 8);
    assert_false(hb);
    assert_int_equal(gh_cidr_parse("10.1.2.3/8", 10, &c, &hb, &why), 0);
    assert_true(hb);
    assert_int_equal(c.ip[1], 0); /* normalised */
    assert_int_equal(gh_cidr_parse("192.0.2.1", 9, &c, &hb, &why), 0);
    assert_int_equal(c.bits, 32);
    assert_int_equal(gh_cidr_parse("2001:db8::/32", 13, &c, &hb, &why), 0);
    assert_int_equal(c.family, AF_INET6);
    assert_int_equal(c.bits, 32);
    assert_int_equal(gh_cidr_parse("::1", 3, &c, &hb, &why), 0);
    assert_int_equal(c.bits, 128);
    /* mapped prefixes become IPv4 */
    assert_int_equal(gh_cidr_parse("::ffff:10.0.0.0/104", 19, &c, &hb, &why), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.bits, 8);
    assert_int_equal(c.ip[0], 10);
    static const char *const bad[] = {"",          "1.2.3",       "1.2.3.4/",     "1.2.3.4/33",
                                      "1.2.3.4/x", "::1/129",     "1.2.3.4/-1",   "300.1.1.1",
                                      "all",       "1.2.3.4/08x", "fe80::1%eth0", " 1.2.3.4"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gh_cidr_parse(bad[i], strlen(bad[i]), &c, &hb, &why) != -EINVAL) {
            fprintf(stderr, "# accepted %s\n", bad[i]);
            fail();
        }
    }
}

static void
test_order_and_overlap(void **state)
{
    (void)state;
    struct gh_arena *a = gh_arena_new();
    struct gh_cidr pre[] = {P("10.1.2.3"),        P("10.1.0.0/16"), P("10.0.0.0/8"),
                            P("10.1.0.0/16"),     P("0.0.0.0/0"),   P("2001:db8::/32"),
                            P("2001:db8:1::/48"), P("::/0")};
    const struct gh_cidr_set *s = gh_cidr_set_build(a, pre, 8);
    assert_int_equal(find(s, "10.1.2.3"), 0);
    assert_int_equal(find(s, "10.1.2.4"), 1);
    assert_int_equal(find(s, "10.2.0.1"), 2);
    assert_int_equal(find(s, "11.0.0.1"), 4);
    assert_int_equal(find(s, "2001:db8:1::5"), 5); /* the /32 comes first in the list */
    assert_int_equal(find(s, "2001:db9::1"), 7);
    /* a mapped address is looked up as IPv4 */
    assert_int_equal(find(s, "::ffff:10.1.2.3"), 0);
    assert_int_equal(find(s, "::ffff:11.0.0.1"), 4);
    /* a broad rule first hides every later one */
    struct gh_cidr pre2[] = {P("0.0.0.0/0"), P("10.0.0.0/8"), P("127.0.0.1")};
    s = gh_cidr_set_build(a, pre2, 3);
    assert_int_equal(find(s, "127.0.0.1"), 0);
    assert_int_equal(find(s, "::1"), GH_CIDR_NONE); /* an IPv4 rule never matches IPv6 */
    /* ::/0 leaves IPv4 (and mapped) clients alone, as nginx */
    struct gh_cidr pre3[] = {P("::/0")};
    s = gh_cidr_set_build(a, pre3, 1);
    assert_int_equal(find(s, "::ffff:1.2.3.4"), GH_CIDR_NONE);
    assert_int_equal(find(s, "1.2.3.4"), GH_CIDR_NONE);
    assert_int_equal(find(s, "fe80::1"), 0);
    /* an empty set and NULL match nothing */
    s = gh_cidr_set_build(a, NULL, 0);
    assert_int_equal(find(s, "1.2.3.4"), GH_CIDR_NONE);
    assert_int_equal(gh_cidr_set_find(NULL, AF_INET, (const uint8_t *)"\1\2\3\4"), GH_CIDR_NONE);
    gh_arena_free(a);
}

/* The reference: the first prefix in the list that contains the address. */
static uint32_t
slow_find(const struct gh_cidr *pre, uint32_t n, uint8_t fam, const uint8_t *ip)
{
    for (uint32_t i = 0; i < n; i++)
        if (gh_cidr_contains(&pre[i], fam, ip))
            return i;
    return GH_CIDR_NONE;
}

static uint32_t rng_state = 12345;

static uint32_t
rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Random addresses drawn close to the prefixes (so that matches happen), or anywhere. */
static void
random_addr(const struct gh_cidr *pre, uint32_t n, uint8_t *fam, uint8_t ip[16])
{
    memset(ip, 0, 16);
    if (n > 0 && rnd() % 4 != 0) {
        const struct gh_cidr *c = &pre[rnd() % n];
        *fam = c->family;
        memcpy(ip, c->ip, 16);
        unsigned len = c->family == AF_INET ? 4 : 16;
        unsigned flip = rnd() % (len * 8); /* change a bit at or after the prefix, sometimes */
        if (rnd() % 2)
            ip[flip / 8] ^= (uint8_t)(0x80u >> (flip % 8));
        for (unsigned i = c->bits / 8 + 1; i < len; i++)
            ip[i] = (uint8_t)rnd();
    } else {
        *fam = rnd() % 2 ? AF_INET : AF_INET6;
        for (int i = 0; i < 16; i++)
            ip[i] = (uint8_t)rnd();
        if (*fam == AF_INET)
            memset(ip + 4, 0, 12);
    }
    if (*fam == AF_INET && rnd() % 8 == 0) { /* the same as a mapped IPv6 address */
        uint8_t v4[4];
        memcpy(v4, ip, 4);
        memset(ip, 0, 16);
        ip[10] = ip[11] = 0xff;
        memcpy(ip + 12, v4, 4);
        *fam = AF_INET6;
    }
}

static void
test_random_against_reference(void **state)
{
    (void)state;
    struct gh_arena *a = gh_arena_new();
    for (int round = 0; round < 6; round++) {
        uint32_t n = round == 5 ? 5000 : (uint32_t)(1 + rnd() % 300);
        struct gh_cidr *pre = calloc(n, sizeof(*pre));
        for (uint32_t i = 0; i < n; i++) {
            struct gh_cidr *c = &pre[i];
            c->family = rnd() % 3 ? AF_INET : AF_INET6;
            unsigned max = c->family == AF_INET ? 32 : 128;
            /* few distinct top bytes, so prefixes nest and overlap */
            for (unsigned k = 0; k < max / 8; k++)
                c->ip[k] = (uint8_t)(k < 2 ? rnd() % 4 : rnd());
            c->bits = (uint8_t)(rnd() % (max + 1));
            for (unsigned b = c->bits; b < max; b++)
                c->ip[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
        }
        const struct gh_cidr_set *s = gh_cidr_set_build(a, pre, n);
        for (int k = 0; k < 10000; k++) {
            uint8_t fam, ip[16];
            random_addr(pre, n, &fam, ip);
            uint32_t want = slow_find(pre, n, fam, ip), got = gh_cidr_set_find(s, fam, ip);
            if (want != got) {
                char t[64];
                inet_ntop(fam, ip, t, sizeof(t));
                fprintf(stderr, "# round %d, %u prefixes: %s: want %u, got %u\n", round, n, t, want,
                        got);
                fail();
            }
        }
        free(pre);
    }
    gh_arena_free(a);
}

/* Thousands of rules: a lookup stays well under a microsecond (printed, not asserted). */
static void
test_speed_report(void **state)
{
    (void)state;
    struct gh_arena *a = gh_arena_new();
    uint32_t n = 5000;
    struct gh_cidr *pre = calloc(n, sizeof(*pre));
    for (uint32_t i = 0; i < n; i++) {
        pre[i].family = i % 2 ? AF_INET : AF_INET6;
        for (int k = 0; k < 16; k++)
            pre[i].ip[k] = (uint8_t)rnd();
        pre[i].bits = pre[i].family == AF_INET ? 24 : 64;
        if (pre[i].family == AF_INET)
            memset(pre[i].ip + 3, 0, 13);
        else
            memset(pre[i].ip + 8, 0, 8);
    }
    const struct gh_cidr_set *s = gh_cidr_set_build(a, pre, n);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint32_t hits = 0, loops = 200000;
    for (uint32_t k = 0; k < loops; k++) {
        uint8_t fam, ip[16];
        random_addr(pre, n, &fam, ip);
        hits += gh_cidr_set_find(s, fam, ip) != GH_CIDR_NONE;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / loops;
    fprintf(stderr,
            "# %u prefixes, %u nodes: %.0f ns per lookup with address generation "
            "(ASan build), %u hits\n",
            n, gh_cidr_set_nodes(s), ns, hits);
    free(pre);
    gh_arena_free(a);
}

/* ---- forwarded addresses ---- */

static void
test_realip_parse_one(void **state)
{
    (void)state;
    struct gh_realip_addr a;
    assert_int_equal(gh_realip_parse_one(" 192.0.2.1 ", 11, &a), 0);
    assert_int_equal(a.family, AF_INET);
    assert_int_equal(a.port, 0);
    assert_int_equal(gh_realip_parse_one("192.0.2.1:4711", 14, &a), 0);
    assert_int_equal(a.port, 4711);
    assert_int_equal(gh_realip_parse_one("2001:db8::1", 11, &a), 0);
    assert_int_equal(a.family, AF_INET6);
    assert_int_equal(gh_realip_parse_one("[2001:db8::1]:443", 17, &a), 0);
    assert_int_equal(a.port, 443);
    assert_int_equal(a.ip[15], 1);
    assert_int_equal(gh_realip_parse_one("[2001:db8::2]", 13, &a), 0);
    assert_int_equal(a.ip[15], 2);
    static const char *const bad[] = {
        "",     "unknown", "1.2.3.4:0",       "1.2.3.4:x", "1.2.3.4:65536",    "[1.2.3.4]",
        "[::1", "[::1]x",  "1.2.3.4 5.6.7.8", "_hidden",   "1.2.3.4, 5.6.7.8", "::1:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gh_realip_parse_one(bad[i], strlen(bad[i]), &a) == 0) {
            fprintf(stderr, "# accepted '%s'\n", bad[i]);
            fail();
        }
    }
}

/* Walk value from peer with trusted 10.0.0.0/8 and 2001:db8::/32; the result as text. */
static int
walk(const char *value, const char *peer, char *out)
{
    static struct gh_arena *a;
    static const struct gh_cidr_set *trusted;
    if (a == NULL) {
        a = gh_arena_new();
        struct gh_cidr pre[] = {P("10.0.0.0/8"), P("2001:db8::/32")};
        trusted = gh_cidr_set_build(a, pre, 2);
    }
    struct gh_realip_addr r = {0};
    ip_of(peer, &r.family, r.ip);
    int rc = gh_realip_walk_list(trusted, value, strlen(value), &r);
    inet_ntop(r.family, r.ip, out, 64);
    return rc;
}

static void
test_realip_walk(void **state)
{
    (void)state;
    char got[64];
    /* the rightmost untrusted entry; spoofed entries to its left are ignored */
    assert_int_equal(walk("6.6.6.6, 203.0.113.7", "10.0.0.1", got), GH_REALIP_DONE);
    assert_string_equal(got, "203.0.113.7");
    assert_int_equal(walk("6.6.6.6, 203.0.113.7, 10.0.0.9, 10.1.1.1", "10.0.0.1", got),
                     GH_REALIP_DONE);
    assert_string_equal(got, "203.0.113.7");
    /* every entry trusted: the leftmost, and the field before may go on */
    assert_int_equal(walk("10.0.0.7,10.0.0.8", "10.0.0.1", got), GH_REALIP_MORE);
    assert_string_equal(got, "10.0.0.7");
    /* the rightmost entry invalid: the connection's address stays */
    assert_int_equal(walk("203.0.113.7, garbage", "10.0.0.1", got), GH_REALIP_DONE);
    assert_string_equal(got, "10.0.0.1");
    /* an invalid entry further left: the last valid one */
    assert_int_equal(walk("203.0.113.7, junk, 10.0.0.5", "10.0.0.1", got), GH_REALIP_DONE);
    assert_string_equal(got, "10.0.0.5");
    /* empty entries are skipped; IPv6 with brackets and ports */
    assert_int_equal(walk(" , [2001:db9::5]:80 ,, 2001:db8::1 ,", "10.0.0.1", got), GH_REALIP_DONE);
    assert_string_equal(got, "2001:db9::5");
    assert_int_equal(walk("", "10.0.0.1", got), GH_REALIP_MORE);
    assert_string_equal(got, "10.0.0.1");
}

/* ---- per-address counts ---- */

static void
test_connlimit(void **state)
{
    (void)state;
    uint8_t fam, ip[16];
    ip_of("192.0.2.44", &fam, ip);
    uint32_t used = gh_connlimit_used();
    assert_int_equal(gh_connlimit_take(fam, ip, 2), 0);
    assert_int_equal(gh_connlimit_take(fam, ip, 2), 0);
    assert_int_equal(gh_connlimit_take(fam, ip, 2), -EBUSY);
    assert_int_equal(gh_connlimit_count(fam, ip), 2);
    assert_int_equal(gh_connlimit_take(fam, ip, 3), 0); /* a higher limit elsewhere */
    uint8_t fam6, ip6[16];
    ip_of("2001:db8::44", &fam6, ip6);
    assert_int_equal(gh_connlimit_take(fam6, ip6, 1), 0);
    assert_int_equal(gh_connlimit_take(fam6, ip6, 1), -EBUSY);
    assert_int_equal(gh_connlimit_used(), used + 2);
    gh_connlimit_put(fam, ip);
    gh_connlimit_put(fam, ip);
    gh_connlimit_put(fam, ip);
    gh_connlimit_put(fam6, ip6);
    assert_int_equal(gh_connlimit_count(fam, ip), 0);
    assert_int_equal(gh_connlimit_used(), used); /* freed at 0 */
}

/* The table is bounded: a shard that is full says so, and works again once entries go. */
static void
test_connlimit_full(void **state)
{
    (void)state;
    uint32_t n = GH_CONNLIMIT_ENTRIES + 1000, taken = 0, full = 0;
    uint8_t ip[16] = {0};
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = htonl(0x0a000000u + i);
        memcpy(ip, &v, 4);
        int rc = gh_connlimit_take(AF_INET, ip, 1);
        if (rc == 0)
            taken++;
        else if (rc == -ENOSPC)
            full++;
        else
            fail();
    }
    assert_int_equal(taken + full, n);
    assert_true(full >= 1000);
    assert_true(taken <= GH_CONNLIMIT_ENTRIES);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = htonl(0x0a000000u + i);
        memcpy(ip, &v, 4);
        gh_connlimit_put(AF_INET, ip); /* those never counted are not found: no effect */
    }
    assert_int_equal(gh_connlimit_used(), 0);
}

#define THREADS 4
#define ROUNDS 20000

static void *
hammer(void *arg)
{
    uint8_t ip[16] = {198, 51, 100, (uint8_t)(uintptr_t)arg};
    uint8_t shared_ip[16] = {198, 51, 100, 200};
    for (int i = 0; i < ROUNDS; i++) {
        if (gh_connlimit_take(AF_INET, ip, 1000) == 0)
            gh_connlimit_put(AF_INET, ip);
        if (gh_connlimit_take(AF_INET, shared_ip, THREADS) != 0)
            return (void *)1; /* THREADS takers at most at once: never refused */
        gh_connlimit_put(AF_INET, shared_ip);
    }
    return NULL;
}

static void
test_connlimit_threads(void **state)
{
    (void)state;
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, (void *)i), 0);
    for (int i = 0; i < THREADS; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        assert_null(rc);
    }
    assert_int_equal(gh_connlimit_used(), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_order_and_overlap),
        cmocka_unit_test(test_random_against_reference),
        cmocka_unit_test(test_speed_report),
        cmocka_unit_test(test_realip_parse_one),
        cmocka_unit_test(test_realip_walk),
        cmocka_unit_test(test_connlimit),
        cmocka_unit_test(test_connlimit_full),
        cmocka_unit_test(test_connlimit_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
