/*
 * test_policy.c - RFC 9111 rules (cache/policy.c): Cache-Control parsing, dates, storage,
 * freshness and age, reuse with request directives, validators, Vary keys and ranges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cache/policy.h"

#define F(n, v) ((struct gh_h1_header){(n), (v), sizeof(n) - 1, sizeof(v) - 1, 0})

static struct gh_cc
CC(const char *v) {
    struct gh_cc cc;
    gh_cc_init(&cc);
    gh_cc_parse(&cc, v, strlen(v));
    return cc;
}

static void
test_cc_parse(void **state)
{
    (void)state;
    struct gh_cc cc = CC("public, max-age=60, s-maxage=\"30\", MUST-REVALIDATE");
    assert_true(cc.flags & GH_CC_PUBLIC);
    assert_true(cc.flags & GH_CC_MUST_REVALIDATE);
    assert_int_equal(cc.max_age, 60);
    assert_int_equal(cc.s_maxage, 30);
    cc = CC("max-age=10, max-age=20"); /* the first counts */
    assert_int_equal(cc.max_age, 10);
    cc = CC("max-age=abc");
    assert_int_equal(cc.max_age, 0);
    cc = CC("max-age=99999999999999999999");
    assert_int_equal(cc.max_age, GH_CC_DELTA_MAX);
    cc = CC("no-cache=\"Set-Cookie, X\", private=\"a\"");
    assert_true(cc.flags & GH_CC_NO_CACHE);
    assert_true(cc.flags & GH_CC_PRIVATE);
    cc = CC("max-stale");
    assert_true(cc.flags & GH_CC_MAX_STALE_ANY);
    cc = CC("max-stale=5 , min-fresh=3,only-if-cached,,foo=bar");
    assert_int_equal(cc.max_stale, 5);
    assert_int_equal(cc.min_fresh, 3);
    assert_true(cc.flags & GH_CC_ONLY_IF_CACHED);
    cc = CC("stale-while-revalidate=30, stale-if-error=60, no-store");
    assert_int_equal(cc.stale_while_revalidate, 30);
    assert_int_equal(cc.stale_if_error, 60);
    assert_true(cc.flags & GH_CC_NO_STORE);
    cc = CC("max-age = 7");
    assert_int_equal(cc.max_age, 7);
}

static void
test_pragma(void **state)
{
    (void)state;
    struct gh_h1_header a[] = {F("Pragma", "no-cache")};
    struct gh_cc cc;
    gh_cc_of_fields(&cc, a, 1, true);
    assert_true(cc.flags & GH_CC_NO_CACHE);
    gh_cc_of_fields(&cc, a, 1, false); /* a response's Pragma means nothing */
    assert_false(cc.flags & GH_CC_NO_CACHE);
    struct gh_h1_header b[] = {F("Pragma", "no-cache"), F("Cache-Control", "max-age=5")};
    gh_cc_of_fields(&cc, b, 2, true);
    assert_false(cc.flags & GH_CC_NO_CACHE);
    assert_int_equal(cc.max_age, 5);
}

static void
test_cdn_cache_control(void **state)
{
    (void)state;
    const int64_t now = 784111777;
    struct gh_h1_header f[] = {F("Cache-Control", "no-store"), F("CDN-Cache-Control", "max-age=30"),
                               F("Expires", "0")};
    struct gh_cc cc;
    gh_cc_of_fields(&cc, f, 3, false); /* the targeted field replaces Cache-Control */
    assert_true(cc.flags & GH_CC_TARGETED);
    assert_false(cc.flags & GH_CC_NO_STORE);
    assert_int_equal(cc.max_age, 30);
    struct gh_cache_times t;
    gh_cache_times_of(&t, 200, &cc, f, 3, now, now, -1);
    assert_int_equal(t.lifetime, 30); /* and Expires is not looked at */
    gh_cc_of_fields(&cc, f, 3, true); /* a request's is not targeted */
    assert_true(cc.flags & GH_CC_NO_STORE);
    struct gh_h1_header g[] = {F("Cache-Control", "max-age=5"), F("CDN-Cache-Control", "")};
    gh_cc_of_fields(&cc, g, 2, false); /* an empty one does not count */
    assert_false(cc.flags & GH_CC_TARGETED);
    assert_int_equal(cc.max_age, 5);
}

static void
test_dates(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(gh_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", 29, &t), 0);
    assert_int_equal(t, 784111777);
    assert_int_equal(gh_http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", 30, &t), 0);
    assert_int_equal(t, 784111777);
    assert_int_equal(gh_http_date_parse("Sun Nov  6 08:49:37 1994", 24, &t), 0);
    assert_int_equal(t, 784111777);
    assert_int_equal(gh_http_date_parse("Thu, 01 Jan 1970 00:00:00 GMT", 29, &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(gh_http_date_parse("Tue, 29 Feb 2028 23:59:59 GMT", 29, &t), 0);
    assert_int_equal(t, 1835481599);
    assert_int_equal(gh_http_date_parse("0", 1, &t), -1);
    assert_int_equal(gh_http_date_parse("Sun, 06 Nov 1994 08:49:37 UTC", 29, &t), -1);
    assert_int_equal(gh_http_date_parse("Sun, 06 Foo 1994 08:49:37 GMT", 29, &t), -1);
    assert_int_equal(gh_http_date_parse("Sun, 06 Nov 1994 25:49:37 GMT", 29, &t), -1);
}

static enum gh_store_verdict
storable(int method, int status, const char *req_cc, const char *resp_cc, bool auth,
         const struct gh_h1_header *hs, uint32_t n)
{
    struct gh_cc rq = CC(req_cc), rs = CC(resp_cc);
    struct gh_store_in in = {method, status, auth, &rq, &rs, hs, n, -1};
    return gh_cache_storable(&in);
}

static void
test_storable(void **state)
{
    (void)state;
    struct gh_h1_header none[] = {F("X", "y")};
    struct gh_h1_header exp[] = {F("Expires", "Sun, 06 Nov 2094 08:49:37 GMT")};
    struct gh_h1_header vs[] = {F("Vary", "Accept, *")};
    assert_int_equal(storable(GH_METHOD_GET, 200, "", "", false, none, 1), GH_STORE_OK);
    assert_int_equal(storable(GH_METHOD_POST, 200, "", "max-age=5", false, none, 1),
                     GH_STORE_METHOD);
    assert_int_equal(storable(GH_METHOD_GET, 206, "", "max-age=5", false, none, 1),
                     GH_STORE_STATUS);
    assert_int_equal(storable(GH_METHOD_GET, 200, "", "no-store", false, none, 1),
                     GH_STORE_NO_STORE);
    assert_int_equal(storable(GH_METHOD_GET, 200, "no-store", "max-age=5", false, none, 1),
                     GH_STORE_NO_STORE);
    assert_int_equal(storable(GH_METHOD_GET, 200, "", "private, max-age=5", false, none, 1),
                     GH_STORE_PRIVATE);
    assert_int_equal(storable(GH_METHOD_GET, 200, "", "max-age=5", true, none, 1), GH_STORE_AUTH);
    assert_int_equal(storable(GH_METHOD_GET, 200, "", "s-maxage=5", true, none, 1), GH_STORE_OK);
    assert_int_equal(storable(GH_METHOD_GET, 200, "", "public", true, none, 1), GH_STORE_OK);
    assert_int_equal(storable(GH_METHOD_GET, 200, "", "must-revalidate", true, none, 1),
                     GH_STORE_OK);
    assert_int_equal(storable(GH_METHOD_GET, 302, "", "", false, none, 1), GH_STORE_NO_FRESH);
    assert_int_equal(storable(GH_METHOD_GET, 302, "", "", false, exp, 1), GH_STORE_OK);
    assert_int_equal(storable(GH_METHOD_GET, 200, "", "max-age=5", false, vs, 1),
                     GH_STORE_VARY_STAR);
    /* must-understand overrides no-store for understood statuses */
    assert_int_equal(
        storable(GH_METHOD_GET, 200, "", "must-understand, no-store, max-age=5", false, none, 1),
        GH_STORE_OK);
    assert_int_equal(
        storable(GH_METHOD_GET, 299, "", "must-understand, no-store, max-age=5", false, none, 1),
        GH_STORE_UNDERSTAND);
}

static struct gh_cache_times
times(int status, const char *cc, const struct gh_h1_header *hs, uint32_t n, int64_t now)
{
    struct gh_cache_times t;
    struct gh_cc c = CC(cc);
    gh_cache_times_of(&t, status, &c, hs, n, now, now, -1);
    return t;
}

static void
test_freshness(void **state)
{
    (void)state;
    const int64_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    struct gh_h1_header d[] = {F("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
                               F("Expires", "Sun, 06 Nov 1994 08:50:37 GMT"),
                               F("Last-Modified", "Sun, 06 Nov 1994 07:49:37 GMT")};
    struct gh_cache_times t = times(200, "s-maxage=5, max-age=100", d, 3, now);
    assert_int_equal(t.lifetime, 5);
    assert_true(t.s_maxage);
    t = times(200, "max-age=100", d, 3, now);
    assert_int_equal(t.lifetime, 100);
    t = times(200, "", d, 3, now);
    assert_int_equal(t.lifetime, 60); /* Expires - Date */
    t = times(200, "", d + 2, 1, now);
    assert_int_equal(t.lifetime, 360); /* 10% of an hour */
    t = times(302, "", d + 2, 1, now);
    assert_int_equal(t.lifetime, 0); /* not heuristically cacheable */
    struct gh_h1_header bad[] = {F("Expires", "0")};
    t = times(200, "", bad, 1, now);
    assert_int_equal(t.lifetime, 0);
    struct gh_cc c = CC("");
    gh_cache_times_of(&t, 200, &c, d + 2, 0, now, now, 42);
    assert_int_equal(t.lifetime, 42); /* cache_valid */
}

static void
test_age(void **state)
{
    (void)state;
    struct gh_cache_times t = {.request_time = 1000, .response_time = 1002, .date = 990, .age = 5};
    /* apparent 12; corrected 5 + 2 = 7; initial 12; resident 8 */
    assert_int_equal(gh_cache_age(&t, 1010), 20);
    t.date = 1010; /* a Date in the future: apparent 0 */
    assert_int_equal(gh_cache_age(&t, 1002), 7);
}

static void
test_reuse(void **state)
{
    (void)state;
    struct gh_cache_times t = {.request_time = 100,
                               .response_time = 100,
                               .date = 100,
                               .lifetime = 60,
                               .swr = -1,
                               .sie = -1};
    struct gh_cc rq = CC("");
    int64_t age;
    assert_int_equal(gh_cache_reuse(&t, &rq, 130, &age), GH_REUSE_FRESH);
    assert_int_equal(age, 30);
    assert_int_equal(gh_cache_reuse(&t, &rq, 160, &age), GH_REUSE_REVALIDATE);
    rq = CC("max-age=0");
    assert_int_equal(gh_cache_reuse(&t, &rq, 100, &age), GH_REUSE_REVALIDATE);
    rq = CC("max-age=10");
    assert_int_equal(gh_cache_reuse(&t, &rq, 130, &age), GH_REUSE_REVALIDATE);
    rq = CC("min-fresh=40");
    assert_int_equal(gh_cache_reuse(&t, &rq, 130, &age), GH_REUSE_REVALIDATE);
    rq = CC("no-cache");
    assert_int_equal(gh_cache_reuse(&t, &rq, 101, &age), GH_REUSE_REVALIDATE);
    rq = CC("max-stale=20");
    assert_int_equal(gh_cache_reuse(&t, &rq, 170, &age), GH_REUSE_STALE_OK);
    assert_int_equal(gh_cache_reuse(&t, &rq, 190, &age), GH_REUSE_REVALIDATE);
    rq = CC("max-stale");
    assert_int_equal(gh_cache_reuse(&t, &rq, 1000, &age), GH_REUSE_STALE_OK);
    t.cc_flags = GH_CC_MUST_REVALIDATE; /* never stale */
    assert_int_equal(gh_cache_reuse(&t, &rq, 170, &age), GH_REUSE_REVALIDATE);
    t.cc_flags = 0;
    t.s_maxage = true; /* s-maxage implies proxy-revalidate */
    assert_int_equal(gh_cache_reuse(&t, &rq, 170, &age), GH_REUSE_REVALIDATE);
    t.s_maxage = false;
    t.cc_flags = GH_CC_NO_CACHE;
    rq = CC("");
    assert_int_equal(gh_cache_reuse(&t, &rq, 101, &age), GH_REUSE_REVALIDATE);
    t.cc_flags = 0;
    t.swr = 30;
    assert_int_equal(gh_cache_reuse(&t, &rq, 170, &age), GH_REUSE_SWR);
    assert_int_equal(gh_cache_reuse(&t, &rq, 200, &age), GH_REUSE_REVALIDATE);
    t.sie = 30;
    assert_true(gh_cache_stale_if_error(&t, &rq, 180));
    assert_false(gh_cache_stale_if_error(&t, &rq, 200));
    rq = CC("stale-if-error=100");
    assert_true(gh_cache_stale_if_error(&t, &rq, 200));
    t.cc_flags = GH_CC_MUST_REVALIDATE;
    assert_false(gh_cache_stale_if_error(&t, &rq, 170));
}

static void
test_etags(void **state)
{
    (void)state;
    assert_true(gh_etag_match_weak("\"a\", W/\"b\"", 11, "\"b\"", 3));
    assert_true(gh_etag_match_weak("W/\"b\"", 5, "W/\"b\"", 5));
    assert_true(gh_etag_match_weak("*", 1, NULL, 0));
    assert_false(gh_etag_match_weak("\"a\"", 3, "\"b\"", 3));
    assert_false(gh_etag_match_weak("\"a\"", 3, NULL, 0));
    assert_true(gh_etag_eq_strong("\"x\"", 3, "\"x\"", 3));
    assert_false(gh_etag_eq_strong("W/\"x\"", 5, "\"x\"", 3));
}

static void
test_not_modified(void **state)
{
    (void)state;
    struct gh_h1_header st[] = {F("ETag", "\"v1\""),
                                F("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT")};
    struct gh_h1_header r1[] = {F("If-None-Match", "\"v1\"")};
    struct gh_h1_header r2[] = {F("If-None-Match", "\"v2\""),
                                F("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")};
    struct gh_h1_header r3[] = {F("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")};
    struct gh_h1_header r4[] = {F("If-Modified-Since", "Sun, 06 Nov 1994 08:49:36 GMT")};
    assert_true(gh_cache_not_modified(r1, 1, st, 2));
    assert_false(gh_cache_not_modified(r2, 2, st, 2)); /* If-None-Match decides */
    assert_true(gh_cache_not_modified(r3, 1, st, 2));
    assert_false(gh_cache_not_modified(r4, 1, st, 2));
    assert_false(gh_cache_not_modified(st, 0, st, 2));
}

static void
test_vary(void **state)
{
    (void)state;
    char a[256], b[256];
    struct gh_h1_header r1[] = {F("Accept-Encoding", "gzip, br"), F("Accept", "text/html")};
    struct gh_h1_header r2[] = {F("accept-encoding", "BR,gzip;q=1.0, zstd;q=0"),
                                F("Accept", "text/html")};
    struct gh_h1_header r3[] = {F("Accept-Encoding", "gzip")};
    int n1 = gh_cache_vary_key("Accept-Encoding, Accept", 23, r1, 2, a, sizeof(a));
    int n2 = gh_cache_vary_key("accept-encoding,accept", 22, r2, 2, b, sizeof(b));
    assert_true(n1 > 0);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, (size_t)n1);
    assert_string_equal("accept-encoding:br,gzip\naccept:text/html\n", (a[n1] = '\0', a));
    int n3 = gh_cache_vary_key("Accept-Encoding, Accept", 23, r3, 1, b, sizeof(b));
    b[n3] = '\0';
    assert_string_equal("accept-encoding:gzip\naccept!\n", b);
    assert_int_equal(gh_cache_vary_key("*", 1, r3, 1, b, sizeof(b)), -1);
    assert_int_equal(gh_cache_vary_key("Accept", 6, r1, 2, b, 4), -1);
    /* two field lines are one list */
    struct gh_h1_header r4[] = {F("X", "a"), F("X", " b ")};
    int n4 = gh_cache_vary_key("x", 1, r4, 2, b, sizeof(b));
    b[n4] = '\0';
    assert_string_equal("x:a,b\n", b);
}

static void
test_range(void **state)
{
    (void)state;
    uint64_t f, l;
    assert_int_equal(gh_cache_range("bytes=0-9", 9, 100, &f, &l), 1);
    assert_true(f == 0 && l == 9);
    assert_int_equal(gh_cache_range("bytes=90-", 9, 100, &f, &l), 1);
    assert_true(f == 90 && l == 99);
    assert_int_equal(gh_cache_range("bytes=-10", 9, 100, &f, &l), 1);
    assert_true(f == 90 && l == 99);
    assert_int_equal(gh_cache_range("bytes=-1000", 11, 100, &f, &l), 1);
    assert_true(f == 0 && l == 99);
    assert_int_equal(gh_cache_range("bytes=50-1000", 13, 100, &f, &l), 1);
    assert_true(f == 50 && l == 99);
    assert_int_equal(gh_cache_range("bytes=100-", 10, 100, &f, &l), -1);
    assert_int_equal(gh_cache_range("bytes=-0", 8, 100, &f, &l), -1);
    assert_int_equal(gh_cache_range("bytes=0-1,5-6", 13, 100, &f, &l), 0);
    assert_int_equal(gh_cache_range("items=0-1", 9, 100, &f, &l), 0);
    assert_int_equal(gh_cache_range("bytes=5-2", 9, 100, &f, &l), 0);
    assert_int_equal(gh_cache_range("bytes=x-2", 9, 100, &f, &l), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cc_parse),
        cmocka_unit_test(test_pragma),
        cmocka_unit_test(test_cdn_cache_control),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_storable),
        cmocka_unit_test(test_freshness),
        cmocka_unit_test(test_age),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_etags),
        cmocka_unit_test(test_not_modified),
        cmocka_unit_test(test_vary),
        cmocka_unit_test(test_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
