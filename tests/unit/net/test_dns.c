/*
 * test_dns.c - the c-ares resolver on the project's loop (net/dns.c), against
 * a small DNS responder of the test's own on a loopback UDP port:
 *   a.test       A 127.0.0.1 (TTL 30) and AAAA ::1 (TTL 20)
 *   v4.test      A 10.0.0.1 and 10.0.0.2, no AAAA (NOERROR, no answer)
 *   short.test   A 10.9.9.9, TTL 0 (kept min_ttl)
 *   nx.test      NXDOMAIN
 *   fail.test    SERVFAIL
 *   slow.test    no answer at all
 * It counts the queries it gets per name, so the cache and the sharing of one
 * query by several waiters can be seen.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/loop.h"
#include "net/dns.h"

/* ---- the responder ---- */

static int srv_fd = -1;
static uint16_t srv_port;
static pthread_t srv_thread;
static int q_count[8]; /* per name below */
static const char *const names[] = {"a.test",    "v4.test",   "short.test", "nx.test",
                                    "fail.test", "slow.test", "stop.test",  "other.test"};

static size_t
put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    return 2;
}

static size_t
answer_rr(unsigned char *p, unsigned type, unsigned ttl, const void *rdata, unsigned rlen)
{
    size_t k = 0;
    k += put16(p + k, 0xc00c); /* the question's name */
    k += put16(p + k, type);
    k += put16(p + k, 1);
    k += put16(p + k, ttl >> 16);
    k += put16(p + k, ttl & 0xffff);
    k += put16(p + k, rlen);
    memcpy(p + k, rdata, rlen);
    return k + rlen;
}

/* The response to query q (n bytes) into r; 0 for no answer. */
static size_t
respond(const unsigned char *q, size_t n, unsigned char *r)
{
    char name[256];
    size_t i = 12, k = 0;
    while (i < n && q[i] != 0) {
        size_t l = q[i++];
        if (k > 0)
            name[k++] = '.';
        for (size_t j = 0; j < l && i < n && k < 250; j++)
            name[k++] = (char)(q[i++] | 0x20);
    }
    name[k] = '\0';
    size_t qend = i + 5; /* root label, type, class */
    if (qend > n)
        return 0;
    unsigned type = (unsigned)q[i + 1] << 8 | q[i + 2];
    int which = -1;
    for (int w = 0; w < 8; w++)
        if (strcmp(name, names[w]) == 0)
            which = w;
    if (which >= 0)
        __atomic_add_fetch(&q_count[which], 1, __ATOMIC_RELAXED);
    if (which == 5)
        return 0;
    memcpy(r, q, qend);
    unsigned rcode = which == 3 ? 3 : which == 4 ? 2 : which < 0 ? 3 : 0;
    r[2] = 0x81; /* QR, RD */
    r[3] = (unsigned char)(0x80 | rcode);
    size_t p = qend;
    unsigned an = 0;
    unsigned char v4a[4] = {127, 0, 0, 1}, v4b[4] = {10, 0, 0, 1}, v4c[4] = {10, 0, 0, 2},
                  v4d[4] = {10, 9, 9, 9};
    unsigned char v6[16] = {0};
    v6[15] = 1;
    if (which == 0 && type == 1)
        p += answer_rr(r + p, 1, 30, v4a, 4), an++;
    if (which == 0 && type == 28)
        p += answer_rr(r + p, 28, 20, v6, 16), an++;
    if (which == 1 && type == 1) {
        p += answer_rr(r + p, 1, 60, v4b, 4), an++;
        p += answer_rr(r + p, 1, 60, v4c, 4), an++;
    }
    if (which == 2 && type == 1)
        p += answer_rr(r + p, 1, 0, v4d, 4), an++;
    put16(r + 6, an);
    put16(r + 8, 0);
    put16(r + 10, 0);
    return p;
}

static void *
serve(void *arg)
{
    (void)arg;
    unsigned char q[512], r[512];
    for (;;) {
        struct sockaddr_storage from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(srv_fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
        if (n <= 0)
            continue;
        if (n > 12 && memmem(q, (size_t)n, "\x04stop", 5) != NULL)
            return NULL;
        size_t rl = respond(q, (size_t)n, r);
        if (rl > 0)
            sendto(srv_fd, r, rl, 0, (struct sockaddr *)&from, fl);
    }
}

static int
setup(void **state)
{
    (void)state;
    srv_fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(srv_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(srv_fd, (struct sockaddr *)&a, &al), 0);
    srv_port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&srv_thread, NULL, serve, NULL), 0);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    /* a query for stop.test ends the responder */
    unsigned char q[] =
        "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04stop\x04test\x00\x00\x01"
        "\x00\x01";
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(srv_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sendto(fd, q, sizeof(q) - 1, 0, (struct sockaddr *)&a, sizeof(a));
    close(fd);
    pthread_join(srv_thread, NULL);
    close(srv_fd);
    return 0;
}

/* ---- helpers ---- */

struct got {
    int calls;
    struct gh_dns_answer a;
};

static void
on_answer(void *arg, const struct gh_dns_answer *a)
{
    struct got *g = arg;
    g->calls++;
    g->a = *a;
}

static struct gh_dns *
resolver(struct gh_loop *l, uint32_t max_ttl)
{
    char servers[64], err[128];
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", srv_port);
    struct gh_dns_opts o = {
        .servers = servers, .timeout_ms = 300, .tries = 1, .max_ttl_s = max_ttl};
    struct gh_dns *d = gh_dns_new(l, &o, err, sizeof(err));
    if (d == NULL)
        fail_msg("gh_dns_new: %s", err);
    return d;
}

/* Run the loop until every got in gs has been called (bounded). */
static void
run_until(struct gh_loop *l, struct got *const *gs, int n)
{
    for (int turn = 0; turn < 500; turn++) {
        int done = 0;
        for (int i = 0; i < n; i++)
            done += gs[i]->calls > 0;
        if (done == n)
            return;
        gh_loop_run_once(l, 20);
    }
    fail_msg("no answer in time");
}

static const char *
addr_str(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    const void *p = ss->ss_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
    return inet_ntop(ss->ss_family, p, buf, (socklen_t)cap);
}

static int
count(int which)
{
    return __atomic_load_n(&q_count[which], __ATOMIC_RELAXED);
}

/* ---- tests ---- */

static void
test_both_families_then_cache(void **state)
{
    (void)state;
    struct gh_loop *l = gh_loop_new();
    struct gh_dns *d = resolver(l, 0);
    struct got g = {0};
    struct gh_dns_query *q;
    const struct gh_dns_answer *hit;
    int before = count(0);
    assert_int_equal(gh_dns_resolve(d, "A.Test.", 7, on_answer, &g, &q, &hit), 1);
    assert_non_null(q);
    struct got *gs[] = {&g};
    run_until(l, gs, 1);
    assert_int_equal(g.a.status, GH_DNS_OK);
    assert_int_equal(g.a.n, 2);
    char b[64];
    assert_string_equal(addr_str(&g.a.addr[0], b, sizeof(b)), "::1"); /* IPv6 first */
    assert_string_equal(addr_str(&g.a.addr[1], b, sizeof(b)), "127.0.0.1");
    assert_int_equal(g.a.ttl_s, 20); /* the smallest */
    int sent = count(0) - before;
    assert_in_range(sent, 1, 2); /* A and AAAA */
    /* again: from the cache, at once */
    assert_int_equal(gh_dns_resolve(d, "a.test", 6, on_answer, &g, &q, &hit), 0);
    assert_non_null(hit);
    assert_int_equal(hit->n, 2);
    assert_int_equal(count(0) - before, sent);
    struct gh_dns_stats st;
    gh_dns_get_stats(d, &st);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.queries, 1);
    gh_dns_free(d);
    gh_loop_free(l);
}

static void
test_waiters_share_one_query(void **state)
{
    (void)state;
    struct gh_loop *l = gh_loop_new();
    struct gh_dns *d = resolver(l, 0);
    struct got g[5] = {{0}};
    struct got *gs[5];
    struct gh_dns_query *q;
    const struct gh_dns_answer *hit;
    int before = count(1);
    for (int i = 0; i < 5; i++) {
        gs[i] = &g[i];
        assert_int_equal(gh_dns_resolve(d, "v4.test", 7, on_answer, &g[i], &q, &hit), 1);
    }
    run_until(l, gs, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(g[i].calls, 1);
        assert_int_equal(g[i].a.status, GH_DNS_OK);
        assert_int_equal(g[i].a.n, 2);
        assert_int_equal(g[i].a.addr[0].ss_family, AF_INET);
    }
    assert_in_range(count(1) - before, 1, 2); /* one lookup (A and AAAA) for all five */
    gh_dns_free(d);
    gh_loop_free(l);
}

static void
test_not_found_is_cached_failures_are_not(void **state)
{
    (void)state;
    struct gh_loop *l = gh_loop_new();
    struct gh_dns *d = resolver(l, 0);
    struct gh_dns_query *q;
    const struct gh_dns_answer *hit;
    struct got nx = {0}, fl = {0}, slow = {0};
    struct got *gs[] = {&nx, &fl, &slow};
    assert_int_equal(gh_dns_resolve(d, "nx.test", 7, on_answer, &nx, &q, &hit), 1);
    assert_int_equal(gh_dns_resolve(d, "fail.test", 9, on_answer, &fl, &q, &hit), 1);
    assert_int_equal(gh_dns_resolve(d, "slow.test", 9, on_answer, &slow, &q, &hit), 1);
    run_until(l, gs, 3);
    assert_int_equal(nx.a.status, GH_DNS_NOTFOUND);
    assert_int_equal(fl.a.status, GH_DNS_FAIL);
    assert_int_equal(slow.a.status, GH_DNS_TIMEOUT);
    assert_string_equal(gh_dns_status_str(slow.a.status), "timed out");
    /* a missing name is kept for a while; a failure is asked again */
    assert_int_equal(gh_dns_resolve(d, "nx.test", 7, on_answer, &nx, &q, &hit), 0);
    assert_int_equal(hit->status, GH_DNS_NOTFOUND);
    struct got fl2 = {0};
    struct got *gs2[] = {&fl2};
    assert_int_equal(gh_dns_resolve(d, "fail.test", 9, on_answer, &fl2, &q, &hit), 1);
    run_until(l, gs2, 1);
    gh_dns_free(d);
    gh_loop_free(l);
}

static void
test_literals_and_bad_names(void **state)
{
    (void)state;
    struct gh_loop *l = gh_loop_new();
    struct gh_dns *d = resolver(l, 0);
    struct gh_dns_query *q;
    const struct gh_dns_answer *hit;
    char b[64];
    assert_int_equal(gh_dns_resolve(d, "127.0.0.2", 9, on_answer, NULL, &q, &hit), 0);
    assert_int_equal(hit->status, GH_DNS_OK);
    assert_string_equal(addr_str(&hit->addr[0], b, sizeof(b)), "127.0.0.2");
    assert_int_equal(gh_dns_resolve(d, "[::1]", 5, on_answer, NULL, &q, &hit), 0);
    assert_string_equal(addr_str(&hit->addr[0], b, sizeof(b)), "::1");
    const char *bad[] = {"a..test", "", ".", "a b.test", "x/y", "a.test\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(gh_dns_resolve(d, bad[i], strlen(bad[i]), on_answer, NULL, &q, &hit), 0);
        assert_int_equal(hit->status, GH_DNS_BADNAME);
    }
    char longname[300];
    memset(longname, 'a', sizeof(longname));
    assert_int_equal(gh_dns_resolve(d, longname, sizeof(longname), on_answer, NULL, &q, &hit), 0);
    assert_int_equal(hit->status, GH_DNS_BADNAME);
    gh_dns_free(d);
    gh_loop_free(l);
}

static void
test_cancel_and_free_with_pending(void **state)
{
    (void)state;
    struct gh_loop *l = gh_loop_new();
    struct gh_dns *d = resolver(l, 0);
    struct got a = {0}, b = {0};
    struct gh_dns_query *qa, *qb;
    const struct gh_dns_answer *hit;
    assert_int_equal(gh_dns_resolve(d, "other.test", 10, on_answer, &a, &qa, &hit), 1);
    assert_int_equal(gh_dns_resolve(d, "other.test", 10, on_answer, &b, &qb, &hit), 1);
    gh_dns_cancel(qa);
    struct got *gs[] = {&b};
    run_until(l, gs, 1);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.a.status, GH_DNS_NOTFOUND); /* the responder knows no such name */
    /* freed with a lookup in flight: no callback, nothing leaked (ASan) */
    struct got c = {0};
    assert_int_equal(gh_dns_resolve(d, "slow.test", 9, on_answer, &c, &qa, &hit), 1);
    gh_loop_run_once(l, 10);
    gh_dns_free(d);
    assert_int_equal(c.calls, 0);
    gh_loop_free(l);
}

static void
test_ttl_expiry_asks_again(void **state)
{
    (void)state;
    struct gh_loop *l = gh_loop_new();
    struct gh_dns *d = resolver(l, 1); /* answers kept at most 1 s */
    struct got g = {0};
    struct got *gs[] = {&g};
    struct gh_dns_query *q;
    const struct gh_dns_answer *hit;
    int before = count(2);
    assert_int_equal(gh_dns_resolve(d, "short.test", 10, on_answer, &g, &q, &hit), 1);
    run_until(l, gs, 1);
    assert_int_equal(g.a.ttl_s, 1); /* TTL 0 is kept min_ttl (1 s) */
    assert_int_equal(gh_dns_resolve(d, "short.test", 10, on_answer, &g, &q, &hit), 0);
    int sent = count(2) - before;
    usleep(1100 * 1000);
    gh_loop_update_time(l);
    g.calls = 0;
    assert_int_equal(gh_dns_resolve(d, "short.test", 10, on_answer, &g, &q, &hit), 1);
    run_until(l, gs, 1);
    assert_true(count(2) - before > sent);
    gh_dns_free(d);
    gh_loop_free(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_both_families_then_cache),
        cmocka_unit_test(test_waiters_share_one_query),
        cmocka_unit_test(test_not_found_is_cached_failures_are_not),
        cmocka_unit_test(test_literals_and_bad_names),
        cmocka_unit_test(test_cancel_and_free_with_pending),
        cmocka_unit_test(test_ttl_expiry_asks_again),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
