/*
 * test_balance.c - the balancing algorithms: smooth weighted round robin,
 * weighted least connections, power-of-two random choices, hash (modulo the
 * weights and consistent on a ring), peak EWMA. Distributions are measured
 * over 10,000 picks against the weights, with the tolerance each test states.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "upstream/balance.h"

static void
test_equal_weights_rotate(void **state)
{
    (void)state;
    struct gh_upstream_server s[3] = {{.weight = 1}, {.weight = 1}, {.weight = 1}};
    struct gh_balance_srv cw[3] = {{0}};
    int count[3] = {0};
    for (int i = 0; i < 300; i++)
        count[gh_balance_swrr(cw, s, 3, NULL, NULL)]++;
    assert_int_equal(count[0], 100);
    assert_int_equal(count[1], 100);
    assert_int_equal(count[2], 100);
}

static void
test_weights_are_smooth(void **state)
{
    (void)state;
    struct gh_upstream_server s[3] = {{.weight = 5}, {.weight = 1}, {.weight = 1}};
    struct gh_balance_srv cw[3] = {{0}};
    char seq[8] = {0};
    for (int i = 0; i < 7; i++)
        seq[i] = (char)('a' + gh_balance_swrr(cw, s, 3, NULL, NULL));
    assert_string_equal(seq, "aabacaa");
}

static int
not_one(void *ctx, uint32_t i)
{
    (void)ctx;
    return i != 1;
}

static int
none(void *ctx, uint32_t i)
{
    (void)ctx;
    (void)i;
    return 0;
}

static void
test_skips_down_servers(void **state)
{
    (void)state;
    struct gh_upstream_server s[3] = {{.weight = 1}, {.weight = 1}, {.weight = 1}};
    struct gh_balance_srv cw[3] = {{0}};
    for (int i = 0; i < 50; i++)
        assert_int_not_equal(gh_balance_swrr(cw, s, 3, not_one, NULL), 1);
    /* all down: everyone is eligible again rather than failing */
    int count[3] = {0};
    for (int i = 0; i < 30; i++)
        count[gh_balance_swrr(cw, s, 3, none, NULL)]++;
    assert_true(count[0] > 0 && count[1] > 0 && count[2] > 0);
}

/* ---- helpers ---- */

#define N_PICKS 10000

static char names[16][32];

/* n servers with the given weights and address texts "10.0.0.I:80". */
static void
servers(struct gh_upstream_server *s, uint32_t n, const uint32_t *w)
{
    memset(s, 0, n * sizeof(*s));
    for (uint32_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "10.0.0.%u:80", i + 1);
        s[i].addr.text = names[i];
        s[i].weight = w != NULL ? w[i] : 1;
    }
}

static struct gh_balance_in
input(const struct gh_upstream_server *s, struct gh_balance_srv *st, uint32_t n)
{
    return (struct gh_balance_in){.servers = s, .st = st, .n = n, .now_ms = 1000};
}

/* Each server's share of N_PICKS is within tol (a fraction of the total) of its weight's. */
static void
assert_shares(const int *count, const uint32_t *w, uint32_t n, double tol)
{
    uint32_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += w[i];
    for (uint32_t i = 0; i < n; i++) {
        double want = (double)w[i] / total, got = (double)count[i] / N_PICKS;
        if (got < want - tol || got > want + tol)
            fail_msg("server %u: share %.4f, want %.4f +- %.3f", i, got, want, tol);
    }
}

/* A random key for hashing, from a counter. */
static uint64_t
key_hash_of(uint32_t k)
{
    char key[32];
    int len = snprintf(key, sizeof(key), "client-%u", k);
    return gh_balance_hash(key, (size_t)len);
}

static const uint32_t W[4] = {5, 3, 1, 1};

/* ---- distributions over 10,000 picks ---- */

static void
test_round_robin_distribution(void **state)
{
    (void)state;
    struct gh_upstream_server s[4];
    struct gh_balance_srv st[4] = {{0}};
    servers(s, 4, W);
    struct gh_balance_in in = input(s, st, 4);
    int count[4] = {0};
    for (int i = 0; i < N_PICKS; i++)
        count[gh_balancer_for(GH_BALANCE_ROUND_ROBIN)->pick(&in)]++;
    /* exact: 10,000 is a whole number of cycles of 10 */
    assert_int_equal(count[0], 5000);
    assert_int_equal(count[1], 3000);
    assert_int_equal(count[2], 1000);
    assert_int_equal(count[3], 1000);
}

/* Nothing completes: in flight grows with every pick, so least_conn keeps in flight / weight
 * level, which is the weights' split (tolerance: 0.1%, one pick per server per round). */
static void
test_least_conn_distribution(void **state)
{
    (void)state;
    struct gh_upstream_server s[4];
    struct gh_balance_srv st[4] = {{0}};
    servers(s, 4, W);
    struct gh_balance_in in = input(s, st, 4);
    int count[4] = {0};
    for (int i = 0; i < N_PICKS; i++) {
        uint32_t k = gh_balancer_for(GH_BALANCE_LEAST_CONN)->pick(&in);
        count[k]++;
        st[k].inflight++;
    }
    assert_shares(count, W, 4, 0.001);
}

/* Every request completes at once: all in flight are 0, ties broken by weighted round robin:
 * the weights' split, exactly. */
static void
test_least_conn_ties_by_round_robin(void **state)
{
    (void)state;
    struct gh_upstream_server s[4];
    struct gh_balance_srv st[4] = {{0}};
    servers(s, 4, W);
    struct gh_balance_in in = input(s, st, 4);
    int count[4] = {0};
    for (int i = 0; i < N_PICKS; i++)
        count[gh_balancer_for(GH_BALANCE_LEAST_CONN)->pick(&in)]++;
    assert_int_equal(count[0], 5000);
    assert_int_equal(count[3], 1000);
    /* a server with requests in flight is avoided while others have fewer per weight */
    st[0].inflight = 10; /* 10/5 = 2 per weight */
    st[1].inflight = 3;  /* 1 */
    st[2].inflight = 1;  /* 1 */
    st[3].inflight = 0;
    assert_int_equal(gh_balancer_for(GH_BALANCE_LEAST_CONN)->pick(&in), 3);
    st[3].inflight = 2; /* 2: now 1 and 2 share the lightest (1 per weight) */
    int c[4] = {0};
    for (int i = 0; i < 400; i++)
        c[gh_balancer_for(GH_BALANCE_LEAST_CONN)->pick(&in)]++;
    assert_int_equal(c[0] + c[3], 0);
    assert_int_equal(c[1], 300);
    assert_int_equal(c[2], 100);
}

/* Nothing in flight: the first of the two choices wins, a weighted random pick: the weights'
 * split within 2.5% (more than 5 standard deviations at 10,000 picks). */
static void
test_random_distribution(void **state)
{
    (void)state;
    gh_balance_seed(42);
    struct gh_upstream_server s[4];
    struct gh_balance_srv st[4] = {{0}};
    servers(s, 4, W);
    struct gh_balance_in in = input(s, st, 4);
    int count[4] = {0};
    for (int i = 0; i < N_PICKS; i++)
        count[gh_balancer_for(GH_BALANCE_RANDOM)->pick(&in)]++;
    assert_shares(count, W, 4, 0.025);
}

/* Two choices: the one with fewer in flight (per weight) wins. Server 0 has many in flight,
 * so it wins only when both choices are server 0 - never, as the second differs. */
static void
test_random_two_choices_prefer_fewer(void **state)
{
    (void)state;
    gh_balance_seed(7);
    const uint32_t w[3] = {1, 1, 1};
    struct gh_upstream_server s[3];
    struct gh_balance_srv st[3] = {{0}};
    servers(s, 3, w);
    st[0].inflight = 50;
    struct gh_balance_in in = input(s, st, 3);
    int count[3] = {0};
    for (int i = 0; i < N_PICKS; i++)
        count[gh_balancer_for(GH_BALANCE_RANDOM)->pick(&in)]++;
    assert_int_equal(count[0], 0);
    assert_true(count[1] > 4000 && count[2] > 4000);
}

static uint32_t
hash_pick(struct gh_balance_in *in, uint32_t key)
{
    in->key_hash = key_hash_of(key);
    return gh_balancer_for(GH_BALANCE_HASH)->pick(in);
}

/* Hash: the same key, the same server; the keys spread by weight within 2.5%. */
static void
test_hash_distribution_and_stickiness(void **state)
{
    (void)state;
    for (int consistent = 0; consistent < 2; consistent++) {
        struct gh_upstream_server s[4];
        struct gh_balance_srv st[4] = {{0}};
        servers(s, 4, W);
        struct gh_balance_ring ring = {0};
        assert_int_equal(gh_balance_ring_build(&ring, s, 4), 0);
        assert_int_equal(ring.n, 10 * GH_BALANCE_RING_POINTS);
        struct gh_balance_in in = input(s, st, 4);
        in.ring = consistent ? &ring : NULL;
        int count[4] = {0};
        for (uint32_t k = 0; k < N_PICKS; k++)
            count[hash_pick(&in, k)]++;
        /* the ring's split depends on where its points fell: 160 points per weight unit give
         * within a few percent */
        assert_shares(count, W, 4, consistent ? 0.04 : 0.025);
        for (uint32_t k = 0; k < 100; k++)
            assert_int_equal(hash_pick(&in, k), hash_pick(&in, k));
        gh_balance_ring_free(&ring);
    }
}

static int
not_two(void *ctx, uint32_t i)
{
    (void)ctx;
    return i != 2;
}

/* Consistent hashing: a server leaving (removed from the config, so a new ring) moves only its
 * own keys plus at most epsilon: at most 1/N + 0.03 of all keys; a server down (not eligible)
 * moves exactly its own keys, to the next points on the ring. */
static void
test_consistent_remap(void **state)
{
    (void)state;
    enum { N = 5 };
    struct gh_upstream_server s[N], s4[N - 1];
    struct gh_balance_srv st[N] = {{0}};
    servers(s, N, NULL);
    /* the same servers without 10.0.0.3 (index 2) */
    memcpy(s4, s, 2 * sizeof(*s));
    memcpy(s4 + 2, s + 3, 2 * sizeof(*s));
    struct gh_balance_ring r5 = {0}, r4 = {0};
    assert_int_equal(gh_balance_ring_build(&r5, s, N), 0);
    assert_int_equal(gh_balance_ring_build(&r4, s4, N - 1), 0);
    struct gh_balance_in in5 = input(s, st, N), in4 = input(s4, st, N - 1);
    in5.ring = &r5;
    in4.ring = &r4;
    struct gh_balance_in down = in5;
    down.ok = not_two;
    int moved = 0, moved_down = 0, on_two = 0;
    for (uint32_t k = 0; k < N_PICKS; k++) {
        uint32_t before = hash_pick(&in5, k);
        uint32_t after = hash_pick(&in4, k);
        const char *a = s[before].addr.text, *b = s4[after].addr.text;
        if (strcmp(a, b) != 0)
            moved++;
        if (before == 2)
            on_two++;
        else if (strcmp(a, b) != 0)
            fail_msg("key %u moved from %s to %s though its server stayed", k, a, b);
        uint32_t d = hash_pick(&down, k);
        assert_int_not_equal(d, 2);
        if (d != before)
            moved_down++;
    }
    assert_int_equal(moved, on_two);
    assert_int_equal(moved_down, on_two);
    assert_true(moved <= N_PICKS / N + N_PICKS * 3 / 100);
    gh_balance_ring_free(&r5);
    gh_balance_ring_free(&r4);
}

/* Bounded loads: one hot key (every request the same key) with requests that stay in flight:
 * with bounded=1.25 no server holds more than 1.25 x its share of them (+1), so the hot key
 * spills over the ring; without a bound, all pile on the key's server. Keys whose server has
 * room stay where the ring puts them. */
static void
test_consistent_bounded(void **state)
{
    (void)state;
    enum { N = 4, R = 400 };
    struct gh_upstream_server s[N];
    servers(s, N, NULL);
    struct gh_balance_ring ring = {0};
    assert_int_equal(gh_balance_ring_build(&ring, s, N), 0);
    for (int bounded = 0; bounded < 2; bounded++) {
        struct gh_balance_srv st[N] = {{0}};
        struct gh_balance_in in = input(s, st, N);
        in.ring = &ring;
        in.bound_pct = bounded ? 125 : 0;
        uint32_t home = hash_pick(&in, 7);
        for (int r = 0; r < R; r++) {
            uint32_t i = hash_pick(&in, 7);
            st[i].inflight++;
            uint32_t total = (uint32_t)r + 1, cap = (total * 125 + 99) / 100 / N + 1;
            if (bounded)
                for (int j = 0; j < N; j++)
                    assert_true(st[j].inflight <= cap);
        }
        if (!bounded)
            assert_int_equal(st[home].inflight, R);
        else /* spilled along the ring: 125 + 125 + 125 + 25 */
            for (int j = 0; j < N; j++)
                assert_true(st[j].inflight >= R / N / 8);
        /* with the load even, each key is on its own server again */
        struct gh_balance_in plain = input(s, st, N);
        plain.ring = &ring;
        for (uint32_t k = 0; k < 200 && bounded; k++)
            assert_int_equal(hash_pick(&in, k), hash_pick(&plain, k));
    }
    gh_balance_ring_free(&ring);
}

/* Modulo hashing: a server down moves its keys only (the others keep theirs). */
static void
test_hash_down_moves_only_its_keys(void **state)
{
    (void)state;
    struct gh_upstream_server s[4];
    struct gh_balance_srv st[4] = {{0}};
    servers(s, 4, NULL);
    struct gh_balance_in in = input(s, st, 4), down = input(s, st, 4);
    down.ok = not_two;
    for (uint32_t k = 0; k < 2000; k++) {
        uint32_t before = hash_pick(&in, k), after = hash_pick(&down, k);
        assert_int_not_equal(after, 2);
        if (before != 2)
            assert_int_equal(before, after);
    }
}

static void
feed(struct gh_balance_srv *st, uint32_t i, uint32_t ms, uint64_t now)
{
    gh_balancer_for(GH_BALANCE_EWMA)->done(st, 2, i, GH_BALANCE_OK, ms, now);
}

/* ewma with one server at 5 ms and one at 50 ms, requests completing between picks: the fast
 * one gets at least 80% (here: all but the picks that measure the slow one's decay) */
static void
test_ewma_prefers_fast(void **state)
{
    (void)state;
    gh_balance_seed(3);
    const uint32_t w[2] = {1, 1};
    struct gh_upstream_server s[2];
    struct gh_balance_srv st[2] = {{0}};
    servers(s, 2, w);
    struct gh_balance_in in = input(s, st, 2);
    int count[2] = {0};
    uint64_t now = 1000;
    for (int i = 0; i < N_PICKS; i++) {
        in.now_ms = now;
        uint32_t k = gh_balancer_for(GH_BALANCE_EWMA)->pick(&in);
        count[k]++;
        now += 1;
        feed(st, k, k == 0 ? 5 : 50, now);
    }
    assert_true(count[0] >= N_PICKS * 8 / 10);
    /* with requests in flight the fast one still wins until it carries ~10x the load */
    st[1].ewma_ms = 50.0;
    st[1].ewma_at = now;
    st[0].inflight = 5;
    in.now_ms = now;
    assert_int_equal(gh_balancer_for(GH_BALANCE_EWMA)->pick(&in), 0);
    st[0].inflight = 40;
    assert_int_equal(gh_balancer_for(GH_BALANCE_EWMA)->pick(&in), 1);
    /* the fast one slows down: its peak is taken at once, traffic shifts */
    st[0].inflight = 0;
    feed(st, 0, 500, now);
    assert_int_equal(gh_balancer_for(GH_BALANCE_EWMA)->pick(&in), 1);
}

/* A server never measured is tried, but not piled on while its first answer is awaited; a
 * failure counts as a slow answer. */
static void
test_ewma_unmeasured_and_failures(void **state)
{
    (void)state;
    const uint32_t w[2] = {1, 1};
    struct gh_upstream_server s[2];
    struct gh_balance_srv st[2] = {{0}};
    servers(s, 2, w);
    struct gh_balance_in in = input(s, st, 2);
    feed(st, 0, 20, 1000);
    assert_int_equal(gh_balancer_for(GH_BALANCE_EWMA)->pick(&in), 1); /* unmeasured: cost 0 */
    st[1].inflight = 1;
    assert_int_equal(gh_balancer_for(GH_BALANCE_EWMA)->pick(&in), 0);
    st[1].inflight = 0;
    gh_balancer_for(GH_BALANCE_EWMA)->done(st, 2, 1, GH_BALANCE_CONNECT, 1, 1000);
    assert_true(st[1].ewma_ms >= 1000.0);
    assert_int_equal(gh_balancer_for(GH_BALANCE_EWMA)->pick(&in), 0);
    /* cancelled says nothing */
    double before = st[0].ewma_ms;
    gh_balancer_for(GH_BALANCE_EWMA)->done(st, 2, 0, GH_BALANCE_CANCELLED, 9999, 1000);
    assert_true(st[0].ewma_ms == before);
    /* decay: after a minute without measurements the failed one costs little again (the
     * picks compare both, which decays them) */
    in.now_ms = 61000;
    (void)gh_balancer_for(GH_BALANCE_EWMA)->pick(&in);
    assert_true(st[1].ewma_ms < 5.0);
}

/* Every algorithm skips servers that may not be chosen, and picks among all when none may. */
static void
test_all_skip_and_fall_back(void **state)
{
    (void)state;
    const enum gh_balance algs[] = {GH_BALANCE_ROUND_ROBIN, GH_BALANCE_LEAST_CONN,
                                    GH_BALANCE_RANDOM, GH_BALANCE_HASH, GH_BALANCE_EWMA};
    for (size_t a = 0; a < sizeof(algs) / sizeof(algs[0]); a++) {
        struct gh_upstream_server s[3];
        struct gh_balance_srv st[3] = {{0}};
        servers(s, 3, NULL);
        struct gh_balance_ring ring = {0};
        assert_int_equal(gh_balance_ring_build(&ring, s, 3), 0);
        struct gh_balance_in in = input(s, st, 3);
        in.ring = algs[a] == GH_BALANCE_HASH ? &ring : NULL;
        in.ok = not_one;
        for (uint32_t k = 0; k < 300; k++) {
            in.key_hash = key_hash_of(k);
            assert_int_not_equal(gh_balancer_for(algs[a])->pick(&in), 1);
        }
        in.ok = none;
        for (uint32_t k = 0; k < 30; k++) {
            in.key_hash = key_hash_of(k);
            assert_true(gh_balancer_for(algs[a])->pick(&in) < 3);
        }
        gh_balance_ring_free(&ring);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_weights_rotate),
        cmocka_unit_test(test_weights_are_smooth),
        cmocka_unit_test(test_skips_down_servers),
        cmocka_unit_test(test_round_robin_distribution),
        cmocka_unit_test(test_least_conn_distribution),
        cmocka_unit_test(test_least_conn_ties_by_round_robin),
        cmocka_unit_test(test_random_distribution),
        cmocka_unit_test(test_random_two_choices_prefer_fewer),
        cmocka_unit_test(test_hash_distribution_and_stickiness),
        cmocka_unit_test(test_consistent_remap),
        cmocka_unit_test(test_hash_down_moves_only_its_keys),
        cmocka_unit_test(test_ewma_prefers_fast),
        cmocka_unit_test(test_ewma_unmeasured_and_failures),
        cmocka_unit_test(test_all_skip_and_fall_back),
        cmocka_unit_test(test_consistent_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
