/*
 * test_spool.c - the body spool (core/spool.c): bytes kept in memory up to the limit, the rest
 * in an anonymous file, read back exactly (in pieces of every size, after a rewind), nothing
 * left behind in the directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/spool.h"

static void
fill(char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (char)(seed >> 16);
    }
}

/* Append data in pieces of `step`, read back in pieces of `rstep`: the same bytes. */
static void
round_trip(uint32_t mem_max, size_t n, size_t step, size_t rstep, const char *dir)
{
    char *data = malloc(n + 1), *back = malloc(n + 1), *buf = malloc(rstep);
    fill(data, n, (unsigned)(n + step));
    struct gh_spool s;
    gh_spool_init(&s, mem_max, dir);
    for (size_t at = 0; at < n; at += step)
        assert_int_equal(gh_spool_append(&s, data + at, at + step <= n ? step : n - at), 0);
    assert_int_equal(s.len, n);
    assert_int_equal(gh_spool_on_disk(&s), n > mem_max);
    for (int pass = 0; pass < 2; pass++) {
        size_t got = 0;
        for (;;) {
            const char *p;
            ssize_t r = gh_spool_read(&s, buf, rstep, &p);
            assert_true(r >= 0 && (size_t)r <= rstep);
            if (r == 0)
                break;
            memcpy(back + got, p, (size_t)r);
            got += (size_t)r;
        }
        assert_int_equal(got, n);
        assert_memory_equal(back, data, n);
        gh_spool_rewind(&s);
    }
    gh_spool_free(&s);
    assert_int_equal(s.len, 0);
    free(data);
    free(back);
    free(buf);
}

static void
test_memory_only(void **st)
{
    (void)st;
    round_trip(16384, 0, 1, 7, "/tmp");
    round_trip(16384, 16384, 1000, 4096, "/tmp");
    round_trip(16384, 100, 1, 1, "/tmp");
}

static void
test_spills_to_file(void **st)
{
    (void)st;
    char dir[] = "/tmp/gh-spool-XXXXXX";
    assert_non_null(mkdtemp(dir));
    round_trip(16384, 16385, 16385, 65536, dir);
    round_trip(16384, 300000, 7777, 65536, dir);
    round_trip(0, 100000, 65536, 333, dir);
    round_trip(1, 5, 1, 1, dir);
    /* the files went with their spools; none was ever visible once open */
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(n, 0);
    assert_int_equal(rmdir(dir), 0);
}

static void
test_bad_dir(void **st)
{
    (void)st;
    struct gh_spool s;
    gh_spool_init(&s, 4, "/nonexistent/dir");
    assert_int_equal(gh_spool_append(&s, "abcd", 4), 0);
    assert_true(gh_spool_append(&s, "e", 1) < 0);
    gh_spool_free(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_only),
        cmocka_unit_test(test_spills_to_file),
        cmocka_unit_test(test_bad_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
