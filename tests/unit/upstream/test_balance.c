/*
 * test_balance.c - smooth weighted round robin.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_weights_rotate),
        cmocka_unit_test(test_weights_are_smooth),
        cmocka_unit_test(test_skips_down_servers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
