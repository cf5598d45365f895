/*
 * test_domains.c - the domain suffix set (policy/domains.c): a name matches itself and every
 * name under it, case and a trailing dot do not matter, the first rule naming a domain keeps
 * it, files (comments, hosts-file lines, bad lines) load, and many names against a slow
 * reference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/domains.h"

static bool
match(const struct gh_domains *s, const char *name, uint32_t *tag, const char **m)
{
    return gh_domains_match(s, name, strlen(name), tag, m);
}

static void
test_suffixes(void **state)
{
    (void)state;
    struct gh_domains *s = gh_domains_new();
    assert_int_equal(gh_domains_add(s, "social.test", 11, 1), 0);
    assert_int_equal(gh_domains_add(s, "*.video.test", 12, 2), 0);
    assert_int_equal(gh_domains_add(s, "Social.Test.", 12, 9), 0); /* the same: kept as 1 */
    uint32_t tag;
    const char *m;
    assert_true(match(s, "social.test", &tag, &m));
    assert_int_equal(tag, 1);
    assert_string_equal(m, "social.test");
    assert_true(match(s, "a.b.www.SOCIAL.test.", &tag, &m));
    assert_true(match(s, "video.test", &tag, &m)); /* "*." means the domain and below */
    assert_int_equal(tag, 2);
    assert_false(match(s, "antisocial.test", &tag, &m));
    assert_false(match(s, "social.test.evil", &tag, &m));
    assert_false(match(s, "test", &tag, &m));
    assert_false(match(s, "", &tag, &m));
    assert_false(match(s, "a..social.test", &tag, &m));
    assert_int_equal(gh_domains_count(s), 2);
    assert_int_equal(gh_domains_add(s, "bad name", 8, 3), -EINVAL);
    assert_int_equal(gh_domains_add(s, "a..b", 4, 3), -EINVAL);
    assert_int_equal(gh_domains_add(s, ".", 1, 3), -EINVAL);
    gh_domains_free(s);
}

static void
test_file(void **state)
{
    (void)state;
    char path[] = "/tmp/gh-domains-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "# list\nads.test\n0.0.0.0 tracker.test # hosts style\n\nnot a name!\n"
                       "  spaced.test  \n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct gh_domains *s = gh_domains_new();
    uint32_t bad;
    long n = gh_domains_add_file(s, path, 7, &bad);
    unlink(path);
    assert_int_equal(n, 3);
    assert_int_equal(bad, 5);
    uint32_t tag;
    const char *m;
    assert_true(match(s, "x.tracker.test", &tag, &m));
    assert_int_equal(tag, 7);
    assert_true(match(s, "spaced.test", &tag, &m));
    assert_int_equal(gh_domains_add_file(s, "/nonexistent/list", 1, &bad), -ENOENT);
    gh_domains_free(s);
}

static void
test_many_against_reference(void **state)
{
    (void)state;
    enum { N = 100000 };
    struct gh_domains *s = gh_domains_new();
    char name[64];
    srand(7);
    for (int i = 0; i < N; i++) {
        int k = snprintf(name, sizeof(name), "n%d.z%d.test", i, i % 13);
        assert_int_equal(gh_domains_add(s, name, (size_t)k, (uint32_t)i), 0);
    }
    assert_int_equal(gh_domains_count(s), N);
    for (int j = 0; j < 20000; j++) {
        int i = rand() % (2 * N); /* half of them not in the set */
        int k = snprintf(name, sizeof(name), "www.n%d.z%d.test", i, i % 13);
        uint32_t tag;
        const char *m;
        bool got = gh_domains_match(s, name, (size_t)k, &tag, &m);
        assert_int_equal(got, i < N);
        if (got)
            assert_int_equal(tag, (uint32_t)i);
    }
    gh_domains_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suffixes),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_many_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
