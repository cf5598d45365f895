/*
 * test_uri.c - path normalisation (what routes match) and absolute-form splitting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/uri.h"

/* Normalise s; returns the result as a NUL-terminated string in a static buffer, or NULL. */
static const char *
norm(const char *s)
{
    static char res[512];
    char out[512];
    const char *r;
    size_t rl;
    size_t n = strlen(s);
    if (gh_uri_normalize_path(s, n, out, &r, &rl) != 0)
        return NULL;
    assert_true(rl <= n);
    assert_true(rl >= 1 || n == 0);
    memcpy(res, r, rl);
    res[rl] = '\0';
    return res;
}

static void
test_plain_paths_are_not_copied(void **state)
{
    (void)state;
    const char *in = "/api/v1/items?x"; /* the caller strips the query; here it is just bytes */
    char out[64];
    const char *r;
    size_t rl;
    assert_int_equal(gh_uri_normalize_path(in, 12, out, &r, &rl), 0);
    assert_ptr_equal(r, in);
    assert_int_equal(rl, 12);
    assert_string_equal(norm("/"), "/");
    assert_string_equal(norm("/a.b/c..d/.e"), "/a.b/c..d/.e");
}

static void
test_bypass_forms_normalise(void **state)
{
    (void)state;
    /* the forms that would walk around `route /admin/ { return 403; }` */
    assert_string_equal(norm("/%61dmin/"), "/admin/");
    assert_string_equal(norm("/%41DMIN/"), "/ADMIN/"); /* decoding does not change case */
    assert_string_equal(norm("//admin/"), "/admin/");
    assert_string_equal(norm("/x/../admin/"), "/admin/");
    assert_string_equal(norm("/./admin/"), "/admin/");
    assert_string_equal(norm("/admin/./x"), "/admin/x");
    assert_string_equal(norm("/%2e/admin"), "/admin");
    assert_string_equal(norm("/x/%2e%2e/admin"), "/admin");
    assert_string_equal(norm("/x%2f..%2fadmin"), "/admin");
}

static void
test_dot_segments(void **state)
{
    (void)state;
    assert_string_equal(norm("/a/b/c/./../../g"), "/a/g"); /* RFC 3986 §5.4.2 */
    assert_string_equal(norm("/a/."), "/a/");
    assert_string_equal(norm("/a/.."), "/");
    assert_string_equal(norm("/a/b/.."), "/a/");
    assert_string_equal(norm("/a//b///c//"), "/a/b/c/");
    assert_string_equal(norm("/..a/b.."), "/..a/b..");
    assert_string_equal(norm("/a/..."), "/a/...");
    assert_string_equal(norm("/."), "/");
    assert_string_equal(norm("//"), "/");
}

static void
test_unnormalisable_paths(void **state)
{
    (void)state;
    assert_null(norm("/.."));
    assert_null(norm("/../a"));
    assert_null(norm("/a/../.."));
    assert_null(norm("/%2e%2e/x"));
    assert_null(norm("/%00"));  /* an escaped NUL */
    assert_null(norm("/%zz"));  /* not hex */
    assert_null(norm("/%4"));   /* cut short */
    assert_null(norm("/a%"));   /* cut short */
    assert_null(norm("/a%4g")); /* half hex */
}

static void
test_normalise_is_stable(void **state)
{
    (void)state;
    /* a normalised path with no '%' left normalises to itself */
    const char *cases[] = {"/%61/./b//c/../d", "/x/y/../../z/", "////a", "/a/b/./"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char once[512];
        snprintf(once, sizeof(once), "%s", norm(cases[i]));
        assert_string_equal(norm(once), once);
    }
}

static void
split(const char *t, const char *want_auth, const char *want_path)
{
    const char *a, *p;
    size_t al, pl;
    gh_uri_split_absolute(t, strlen(t), &a, &al, &p, &pl);
    assert_int_equal(al, strlen(want_auth));
    assert_memory_equal(a, want_auth, al);
    assert_int_equal(pl, strlen(want_path));
    assert_memory_equal(p, want_path, pl);
}

static void
test_split_absolute(void **state)
{
    (void)state;
    split("http://h.test:8080/p/q?x=1", "h.test:8080", "/p/q?x=1");
    split("http://h.test", "h.test", "/");
    split("http://h.test/", "h.test", "/");
    split("http://h.test?q", "h.test", "?q"); /* the caller writes "/" before it */
    split("http://[::1]:80/x", "[::1]:80", "/x");
    split("HTTP://H/x", "H", "/x");
}

/* %XX decoded, '+' kept, bad escapes and a full buffer refused. */
static void
test_unescape(void **state)
{
    (void)state;
    char out[32];
    const char *in = "http%3A%2F%2Fa.test%2Fx+y%7e";
    long n = gh_uri_unescape(in, strlen(in), out, sizeof(out));
    assert_int_equal(n, 18);
    assert_memory_equal(out, "http://a.test/x+y~", 18);
    assert_int_equal(gh_uri_unescape("%4", 2, out, sizeof(out)), -1);
    assert_int_equal(gh_uri_unescape("%zz", 3, out, sizeof(out)), -1);
    assert_int_equal(gh_uri_unescape("abc", 3, out, 2), -1);
    assert_int_equal(gh_uri_unescape("", 0, out, sizeof(out)), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_paths_are_not_copied),
        cmocka_unit_test(test_bypass_forms_normalise),
        cmocka_unit_test(test_dot_segments),
        cmocka_unit_test(test_unnormalisable_paths),
        cmocka_unit_test(test_normalise_is_stable),
        cmocka_unit_test(test_split_absolute),
        cmocka_unit_test(test_unescape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
