/*
 * test_store.c - the object store (cache/store.c): lookup, placeholders, variants, filling and
 * reading in chunks, header replacement, removal, the byte budget and SIEVE eviction (an object
 * that keeps being hit survives a scan of one-time objects), and threads filling and reading
 * at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "cache/store.h"

#define F(n, v) ((struct gh_h1_header){(n), (v), sizeof(n) - 1, sizeof(v) - 1, 0})

static const struct gh_cache_times T0 = {.lifetime = 60, .swr = -1, .sie = -1};

/* Store key with a body of len bytes (byte i is i % 251), complete. */
static void
put(struct gh_cache_store *s, const char *key, size_t len)
{
    struct gh_cobj *o;
    assert_int_equal(gh_cache_lookup(s, key, strlen(key), NULL, 0, true, &o), GH_CACHE_MISS);
    assert_non_null(o);
    struct gh_h1_header h[] = {F("Content-Type", "text/plain")};
    assert_int_equal(gh_cache_fill_head(o, 200, h, 1, "", 0, "", 0, &T0, (int64_t)len), 0);
    char *b = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        b[i] = (char)(i % 251);
    struct iovec v = {b, len};
    assert_int_equal(gh_cache_fill_body(o, &v, 1), 0);
    gh_cache_fill_done(o);
    free(b);
    gh_cobj_put(o);
}

static bool
has(struct gh_cache_store *s, const char *key)
{
    struct gh_cobj *o;
    enum gh_cache_found f = gh_cache_lookup(s, key, strlen(key), NULL, 0, false, &o);
    gh_cobj_put(o);
    return f == GH_CACHE_HIT;
}

static void
test_fill_and_read(void **state)
{
    (void)state;
    struct gh_cache_store *s = gh_cache_store_open("t-fill", 64 << 20, 8 << 20);
    put(s, "k1", 300000); /* five chunks */
    struct gh_cobj *o;
    assert_int_equal(gh_cache_lookup(s, "k1", 2, NULL, 0, true, &o), GH_CACHE_HIT);
    assert_int_equal(gh_cobj_state(o), GH_COBJ_DONE);
    assert_int_equal(o->content_length, 300000);
    assert_int_equal(o->status, 200);
    assert_int_equal(o->n_fields, 1);
    assert_memory_equal(o->fields[0].value, "text/plain", 10);
    struct gh_cread cur = {0};
    uint64_t off = 0;
    while (off < 300000) {
        struct iovec sp[4];
        int n = gh_cobj_read(o, &cur, off, 10000, sp, 4);
        assert_true(n > 0);
        for (int i = 0; i < n; i++) {
            const unsigned char *p = sp[i].iov_base;
            for (size_t k = 0; k < sp[i].iov_len; k++)
                assert_int_equal(p[k], (off + k) % 251);
            off += sp[i].iov_len;
        }
    }
    /* reading again from an earlier offset restarts from the head */
    struct iovec sp[1];
    assert_int_equal(gh_cobj_read(o, &cur, 5, 1, sp, 1), 1);
    assert_int_equal(*(unsigned char *)sp[0].iov_base, 5);
    gh_cobj_put(o);
}

static void
test_busy_and_abort(void **state)
{
    (void)state;
    struct gh_cache_store *s = gh_cache_store_open("t-busy", 1 << 20, 1 << 20);
    struct gh_cobj *a, *b;
    assert_int_equal(gh_cache_lookup(s, "k", 1, NULL, 0, true, &a), GH_CACHE_MISS);
    assert_int_equal(gh_cache_lookup(s, "k", 1, NULL, 0, true, &b), GH_CACHE_BUSY);
    assert_ptr_equal(a, b);
    gh_cache_fill_abort(a);
    assert_int_equal(gh_cobj_state(b), GH_COBJ_ABORTED);
    gh_cobj_put(a);
    gh_cobj_put(b);
    assert_false(has(s, "k"));
    struct gh_cache_stats st;
    gh_cache_store_stats(s, &st);
    assert_int_equal(st.objects, 0);
    assert_int_equal(st.bytes, 0);
}

static void
test_variants(void **state)
{
    (void)state;
    struct gh_cache_store *s = gh_cache_store_open("t-vary", 1 << 20, 1 << 20);
    struct gh_h1_header gz[] = {F("Accept-Encoding", "gzip")};
    struct gh_h1_header br[] = {F("Accept-Encoding", "br")};
    const char *vary = "Accept-Encoding";
    char k1[64], k2[64];
    int n1 = gh_cache_vary_key(vary, strlen(vary), gz, 1, k1, sizeof(k1));
    int n2 = gh_cache_vary_key(vary, strlen(vary), br, 1, k2, sizeof(k2));
    struct gh_cobj *o;
    gh_cache_lookup(s, "u", 1, gz, 1, true, &o);
    assert_int_equal(gh_cache_fill_head(o, 200, gz, 0, vary, strlen(vary), k1, (size_t)n1, &T0, 0),
                     0);
    gh_cache_fill_done(o);
    gh_cobj_put(o);
    /* another variant: a miss, then stored beside the first */
    assert_int_equal(gh_cache_lookup(s, "u", 1, br, 1, false, &o), GH_CACHE_MISS);
    o = gh_cache_obj_new(s, "u", 1);
    assert_int_equal(gh_cache_fill_head(o, 201, br, 0, vary, strlen(vary), k2, (size_t)n2, &T0, 0),
                     0);
    gh_cache_fill_done(o);
    gh_cobj_put(o);
    assert_int_equal(gh_cache_lookup(s, "u", 1, gz, 1, false, &o), GH_CACHE_HIT);
    assert_int_equal(o->status, 200);
    gh_cobj_put(o);
    assert_int_equal(gh_cache_lookup(s, "u", 1, br, 1, false, &o), GH_CACHE_HIT);
    assert_int_equal(o->status, 201);
    gh_cobj_put(o);
    /* the same variant again replaces it */
    o = gh_cache_obj_new(s, "u", 1);
    assert_int_equal(gh_cache_fill_head(o, 202, br, 0, vary, strlen(vary), k2, (size_t)n2, &T0, 0),
                     0);
    gh_cache_fill_done(o);
    gh_cobj_put(o);
    struct gh_cache_stats st;
    gh_cache_store_stats(s, &st);
    assert_int_equal(st.objects, 2);
    assert_int_equal(gh_cache_remove_key(s, "u", 1), 2);
    assert_int_equal(gh_cache_lookup(s, "u", 1, br, 1, false, &o), GH_CACHE_MISS);
}

static void
test_replace_head(void **state)
{
    (void)state;
    struct gh_cache_store *s = gh_cache_store_open("t-304", 1 << 20, 1 << 20);
    put(s, "r", 1000);
    struct gh_cobj *o, *x;
    gh_cache_lookup(s, "r", 1, NULL, 0, false, &o);
    struct gh_h1_header h[] = {F("Content-Type", "text/html"), F("ETag", "\"2\"")};
    struct gh_cache_times t = T0;
    t.lifetime = 5;
    x = gh_cache_replace_head(o, h, 2, &t);
    assert_non_null(x);
    gh_cobj_put(o);
    gh_cobj_put(x);
    gh_cache_lookup(s, "r", 1, NULL, 0, false, &o);
    assert_int_equal(o->n_fields, 2);
    assert_int_equal(o->times.lifetime, 5);
    assert_int_equal(o->content_length, 1000);
    struct gh_cread cur = {0};
    struct iovec sp[2];
    assert_int_equal(gh_cobj_read(o, &cur, 999, 10, sp, 2), 1);
    assert_int_equal(sp[0].iov_len, 1);
    gh_cobj_put(o);
    struct gh_cache_stats st;
    gh_cache_store_stats(s, &st);
    assert_int_equal(st.objects, 1);
}

static void
test_prefix_and_max_object(void **state)
{
    (void)state;
    struct gh_cache_store *s = gh_cache_store_open("t-prefix", 1 << 20, 1000);
    put(s, "http://a/x/1", 10);
    put(s, "http://a/x/2", 10);
    put(s, "http://a/y", 10);
    assert_int_equal(gh_cache_remove_prefix(s, "http://a/x/", 11), 2);
    assert_true(has(s, "http://a/y"));
    assert_int_equal(gh_cache_remove_prefix(s, "", 0), 1);
    struct gh_cobj *o;
    gh_cache_lookup(s, "big", 3, NULL, 0, true, &o);
    assert_int_equal(gh_cache_fill_head(o, 200, NULL, 0, "", 0, "", 0, &T0, -1), 0);
    char b[600] = {0};
    struct iovec v = {b, sizeof(b)};
    assert_int_equal(gh_cache_fill_body(o, &v, 1), 0);
    assert_int_equal(gh_cache_fill_body(o, &v, 1), -1); /* past max_object */
    gh_cache_fill_abort(o);
    gh_cobj_put(o);
    assert_false(has(s, "big"));
}

/* The budget holds while 10x its size of objects pass; SIEVE keeps the object that is hit. */
static void
test_budget_and_sieve(void **state)
{
    (void)state;
    const uint64_t budget = 256 * 1024;
    struct gh_cache_store *s = gh_cache_store_open("t-sieve", budget, 64 * 1024);
    put(s, "hot", 2000);
    char key[32];
    for (int i = 0; i < 1280; i++) { /* 1280 x 2 KB: 10x the budget */
        snprintf(key, sizeof(key), "cold-%d", i);
        put(s, key, 2000);
        assert_true(has(s, "hot")); /* a hit: its visited bit */
        struct gh_cache_stats st;
        gh_cache_store_stats(s, &st);
        assert_true(st.bytes <= budget);
    }
    struct gh_cache_stats st;
    gh_cache_store_stats(s, &st);
    assert_true(st.evicted > 1000);
    assert_true(st.objects > 50);
    assert_true(has(s, "hot"));
    assert_false(has(s, "cold-0"));
    assert_true(has(s, "cold-1279"));
}

/* LRU-vs-SIEVE sanity: a scan of one-time keys must not flush a working set that is reused. */
static void
test_scan_resistance(void **state)
{
    (void)state;
    struct gh_cache_store *s = gh_cache_store_open("t-scan", 200 * 1024, 64 * 1024);
    char key[32];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "ws-%d", i);
        put(s, key, 2000);
    }
    int kept = 0;
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < 20; i++) {
            snprintf(key, sizeof(key), "ws-%d", i);
            if (!has(s, key))
                put(s, key, 2000);
        }
        for (int i = 0; i < 20; i++) {
            snprintf(key, sizeof(key), "scan-%d-%d", round, i);
            put(s, key, 2000);
        }
    }
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "ws-%d", i);
        kept += has(s, key);
    }

    assert_true(kept >= 18);
}

struct thr {
    struct gh_cache_store *s;
    int id;
    uint64_t got;
};

static void *
reader(void *arg)
{
    struct thr *t = arg;
    for (int i = 0; i < 2000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "m-%d", i % 50);
        struct gh_cobj *o;
        enum gh_cache_found f =
            gh_cache_lookup(t->s, key, strlen(key), NULL, 0, (i + t->id) % 3 == 0, &o);
        if (f == GH_CACHE_MISS && o != NULL) {
            struct gh_h1_header h[] = {F("A", "b")};
            if (gh_cache_fill_head(o, 200, h, 1, "", 0, "", 0, &T0, 5000) == 0) {
                char b[2500];
                memset(b, 'x', sizeof(b));
                struct iovec v = {b, sizeof(b)};
                gh_cache_fill_body(o, &v, 1);
                gh_cache_fill_body(o, &v, 1);
                gh_cache_fill_done(o);
            }
        } else if (f == GH_CACHE_HIT) {
            struct gh_cread cur = {0};
            struct iovec sp[8];
            int n = gh_cobj_read(o, &cur, 0, 100000, sp, 8);
            for (int k = 0; k < n; k++)
                t->got += sp[k].iov_len;
        }
        gh_cobj_put(o);
        if (i % 500 == 0)
            gh_cache_remove_key(t->s, key, strlen(key));
    }
    return NULL;
}

static void
test_threads(void **state)
{
    (void)state;
    struct gh_cache_store *s = gh_cache_store_open("t-thr", 100 * 1024, 64 * 1024);
    pthread_t th[4];
    struct thr t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (struct thr){s, i, 0};
        pthread_create(&th[i], NULL, reader, &t[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    struct gh_cache_stats st;
    gh_cache_store_stats(s, &st);
    assert_true(st.bytes <= st.limit + 64 * 1024);
    gh_cache_remove_prefix(s, "", 0);
    gh_cache_store_stats(s, &st);
    assert_int_equal(st.objects, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fill_and_read),
        cmocka_unit_test(test_busy_and_abort),
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_replace_head),
        cmocka_unit_test(test_prefix_and_max_object),
        cmocka_unit_test(test_budget_and_sieve),
        cmocka_unit_test(test_scan_resistance),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
