/*
 * test_h1_write.c - HTTP/1.1 head serialisation helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/h1_write.h"

#define WR(buf)                                                                                    \
    {                                                                                              \
        (buf), 0, sizeof(buf), 0                                                                   \
    }

static void
assert_wr(const struct gh_wr *w, const char *want)
{
    assert_false(w->overflow);
    assert_int_equal(w->len, strlen(want));
    assert_memory_equal(w->p, want, w->len);
}

static void
test_status_line(void **state)
{
    (void)state;
    char b[128];
    struct gh_wr w = WR(b);
    gh_h1w_status_line(&w, 200, NULL, 0);
    assert_wr(&w, "HTTP/1.1 200 OK\r\n");
    w.len = 0;
    gh_h1w_status_line(&w, 404, "Gone Fishing", 12); /* an origin's own phrase is kept */
    assert_wr(&w, "HTTP/1.1 404 Gone Fishing\r\n");
    w.len = 0;
    gh_h1w_status_line(&w, 599, NULL, 0);
    assert_wr(&w, "HTTP/1.1 599 Unknown\r\n");
    w.len = 0;
    gh_h1w_status_line(&w, 101, NULL, 0);
    assert_wr(&w, "HTTP/1.1 101 Switching Protocols\r\n");
}

static void
test_fields_and_numbers(void **state)
{
    (void)state;
    char b[256];
    struct gh_wr w = WR(b);
    gh_h1w_content_length(&w, 0);
    gh_h1w_content_length(&w, 18446744073709551615ull);
    gh_wr_field(&w, "X-A", 3, "b c", 3);
    assert_wr(&w, "Content-Length: 0\r\nContent-Length: 18446744073709551615\r\nX-A: b c\r\n");
}

static void
test_overflow_is_sticky(void **state)
{
    (void)state;
    char b[8];
    struct gh_wr w = WR(b);
    GH_WR_LIT(&w, "12345");
    GH_WR_LIT(&w, "6789"); /* does not fit: nothing of it is written, and the writer stops */
    assert_true(w.overflow);
    assert_int_equal(w.len, 5);
    GH_WR_LIT(&w, "6"); /* would fit, but nothing more is written */
    assert_true(w.overflow);
    assert_int_equal(w.len, 5);
    assert_memory_equal(b, "12345", 5);
}

/* A cut line (the access log's) is p[0..len): only written bytes, and only those before the
 * first piece that did not fit, whichever writer overflowed (a later, smaller piece used to be
 * written after the gap, and the log took cap bytes, the unwritten ones included). */
static void
test_overflow_stops_the_writer(void **state)
{
    (void)state;
    char b[16];
    struct gh_wr w = WR(b);
    GH_WR_LIT(&w, "ab");
    gh_wr_field(&w, "X-A", 3, "0123456789", 10); /* 17 bytes: do not fit */
    assert_true(w.overflow);
    GH_WR_LIT(&w, "c");
    gh_wr_u64(&w, 7);
    gh_wr_field(&w, "B", 1, "", 0);
    assert_int_equal(w.len, 2);
    assert_memory_equal(b, "ab", 2);
    char c[12];
    struct gh_wr v = WR(c);
    GH_WR_LIT(&v, "x");
    gh_h1w_status_line(&v, 200, NULL, 0); /* 17 bytes */
    gh_h1w_content_length(&v, 5);
    gh_h1w_date(&v, 0);
    assert_true(v.overflow);
    assert_int_equal(v.len, 1);
    GH_WR_LIT(&v, "y");
    assert_int_equal(v.len, 1);
}

static void
test_date(void **state)
{
    (void)state;
    assert_string_equal(gh_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_string_equal(gh_http_date(1795718654), "Thu, 26 Nov 2026 18:44:14 GMT");
    char b[64];
    struct gh_wr w = WR(b);
    gh_h1w_date(&w, 784111777); /* RFC 9110 §5.6.7's example */
    assert_wr(&w, "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
}

static void
test_chunk_size_lines(void **state)
{
    (void)state;
    char b[GH_H1W_CHUNK_LINE_MAX];
    assert_int_equal(gh_h1w_chunk_size(b, 0), 3);
    assert_memory_equal(b, "0\r\n", 3);
    assert_int_equal(gh_h1w_chunk_size(b, 0x1a2f), 6);
    assert_memory_equal(b, "1a2f\r\n", 6);
    assert_int_equal(gh_h1w_chunk_size(b, UINT64_MAX), GH_H1W_CHUNK_LINE_MAX);
    assert_memory_equal(b, "ffffffffffffffff\r\n", GH_H1W_CHUNK_LINE_MAX);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_line),
        cmocka_unit_test(test_fields_and_numbers),
        cmocka_unit_test(test_overflow_is_sticky),
        cmocka_unit_test(test_overflow_stops_the_writer),
        cmocka_unit_test(test_date),
        cmocka_unit_test(test_chunk_size_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
