/*
 * test_buf.c - buffers (reserve/commit/consume) and typed freelists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/buf.h"

static void
test_reserve_commit_consume(void **state)
{
    (void)state;
    struct gh_buf *b = gh_buf_get();
    assert_non_null(b);
    assert_int_equal(gh_buf_len(b), 0);
    size_t room = gh_buf_reserve(b, 10);
    assert_int_equal(room, GH_BUF_SIZE);
    memcpy(gh_buf_tail(b), "hello world", 11);
    gh_buf_commit(b, 11);
    assert_int_equal(gh_buf_len(b), 11);
    gh_buf_consume(b, 6);
    assert_memory_equal(gh_buf_head(b), "world", 5);
    gh_buf_consume(b, 5);
    /* empty: offsets reset so the whole buffer is usable again */
    assert_int_equal(b->start, 0);
    assert_int_equal(b->end, 0);
    gh_buf_put(b);
}

static void
test_reserve_compacts(void **state)
{
    (void)state;
    struct gh_buf *b = gh_buf_get();
    gh_buf_commit(b, GH_BUF_SIZE - 4);
    memcpy(b->data + 100, "abcd", 4);
    gh_buf_consume(b, 100);
    assert_int_equal(gh_buf_reserve(b, 4), 4); /* fits without moving */
    assert_int_equal(b->start, 100);
    size_t room = gh_buf_reserve(b, 50); /* needs the 100 consumed bytes back */
    assert_int_equal(room, 104);
    assert_int_equal(b->start, 0);
    assert_memory_equal(gh_buf_head(b), "abcd", 4);
    gh_buf_put(b);
}

static void
test_append(void **state)
{
    (void)state;
    struct gh_buf *b = gh_buf_get();
    gh_buf_append(b, "ab", 2);
    gh_buf_append(b, "cd", 2);
    assert_int_equal(gh_buf_len(b), 4);
    assert_memory_equal(gh_buf_head(b), "abcd", 4);
    gh_buf_put(b);
}

static void
test_buf_cache_reuses(void **state)
{
    (void)state;
    struct gh_buf *a = gh_buf_get();
    gh_buf_put(a);
    struct gh_buf *b = gh_buf_get();
    assert_ptr_equal(a, b); /* LIFO: the hottest buffer comes back */
    gh_buf_put(b);
    gh_buf_put(NULL);
    gh_buf_cache_drain();
}

static void
test_freelist(void **state)
{
    (void)state;
    struct gh_freelist fl = {.size = 48, .max_cached = 2};
    void *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = gh_freelist_get(&fl);
    assert_int_equal(fl.allocated, 4);
    for (int i = 0; i < 4; i++)
        gh_freelist_put(&fl, p[i]);
    assert_int_equal(fl.allocated, 0);
    assert_int_equal(fl.cached, 2); /* the rest were freed */
    void *q = gh_freelist_get(&fl);
    assert_ptr_equal(q, p[1]);
    gh_freelist_put(&fl, q);
    gh_freelist_drain(&fl);
    assert_int_equal(fl.cached, 0);
    assert_null(fl.head);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserve_commit_consume),
        cmocka_unit_test(test_reserve_compacts),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_buf_cache_reuses),
        cmocka_unit_test(test_freelist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
