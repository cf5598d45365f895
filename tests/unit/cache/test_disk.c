/*
 * test_disk.c - the cache's disk tier: the on-disk format (cache/disk_fmt.c: a round trip, and
 * damaged, truncated and foreign files rejected) and the tier behind a store (cache/disk.c:
 * objects written through, found again after the tier is reopened as at a restart, a damaged
 * file removed at the scan, the size budget kept, purges removing files).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/disk_fmt.h"
#include "cache/store.h"

#define F(n, v) ((struct gh_h1_header){(n), (v), sizeof(n) - 1, sizeof(v) - 1, 0})

static const struct gh_cache_times T0 = {.request_time = 1700000000,
                                         .response_time = 1700000001,
                                         .date = 1700000000,
                                         .age = 5,
                                         .lifetime = 60,
                                         .swr = -1,
                                         .sie = 30,
                                         .cc_flags = 3,
                                         .s_maxage = true};

/* The same times (field by field: a struct's padding is not compared). */
static void
same_times(const struct gh_cache_times *a, const struct gh_cache_times *b)
{
    assert_int_equal(a->request_time, b->request_time);
    assert_int_equal(a->response_time, b->response_time);
    assert_int_equal(a->date, b->date);
    assert_int_equal(a->age, b->age);
    assert_int_equal(a->lifetime, b->lifetime);
    assert_int_equal(a->swr, b->swr);
    assert_int_equal(a->sie, b->sie);
    assert_int_equal(a->cc_flags, b->cc_flags);
    assert_int_equal(a->s_maxage, b->s_maxage);
}

/* A whole file for key with fields hs[0..n) and body[0..blen), in a new buffer. */
static char *
make_file(const char *key, const struct gh_h1_header *hs, uint32_t n, const char *body, size_t blen,
          size_t *len)
{
    struct gh_cdisk_meta m = {.status = 200,
                              .key_len = (uint32_t)strlen(key),
                              .vary_len = 15,
                              .vkey_len = 4,
                              .body_len = blen,
                              .times = T0,
                              .key = key,
                              .vary = "accept-encoding",
                              .vkey = "gzip"};
    m.fields_len = (uint32_t)gh_cdisk_fields_len(hs, n);
    *len = (size_t)gh_cdisk_file_len(&m);
    char *buf = malloc(*len);
    int ml = gh_cdisk_encode_meta(&m, hs, n, buf, *len);
    assert_int_equal(ml, (int)gh_cdisk_meta_len(&m));
    assert_int_equal(gh_cdisk_encode_meta(&m, hs, n, buf, (size_t)ml - 1), -ENOSPC);
    memcpy(buf + ml, body, blen);
    struct gh_cdisk_sum s;
    gh_cdisk_sum_init(&s);
    gh_cdisk_sum_add(&s, buf, 3); /* in pieces: the same sum as at once */
    gh_cdisk_sum_add(&s, buf + 3, *len - 8 - 3);
    uint64_t h = gh_cdisk_sum_final(&s);
    for (int i = 0; i < 8; i++)
        buf[*len - 8 + i] = (char)(h >> (8 * i));
    return buf;
}

static void
test_format_round_trip(void **state)
{
    (void)state;
    struct gh_h1_header hs[] = {F("Content-Type", "text/plain"), F("ETag", "\"v1\""),
                                F("X-Empty", "")};
    size_t len;
    char *buf = make_file("http://a.test/x", hs, 3, "hello body", 10, &len);
    struct gh_cdisk_meta m;
    assert_int_equal(gh_cdisk_parse_file(buf, len, &m), 0);
    assert_int_equal(m.status, 200);
    assert_memory_equal(m.key, "http://a.test/x", 15);
    assert_memory_equal(m.vary, "accept-encoding", 15);
    assert_memory_equal(m.vkey, "gzip", 4);
    assert_int_equal(m.body_len, 10);
    assert_memory_equal(buf + gh_cdisk_meta_len(&m), "hello body", 10);
    same_times(&m.times, &T0);
    assert_int_equal(m.n_fields, 3);
    struct gh_h1_header out[3];
    gh_cdisk_fields(&m, out);
    assert_int_equal(out[1].name_len, 4);
    assert_memory_equal(out[1].name, "ETag", 4);
    assert_memory_equal(out[1].value, "\"v1\"", 4);
    assert_int_equal(out[1].id, gh_h1_header_id("etag", 4));
    assert_int_equal(out[2].value_len, 0);
    free(buf);
}

static void
test_format_rejects(void **state)
{
    (void)state;
    struct gh_h1_header hs[] = {F("Content-Type", "text/plain")};
    size_t len;
    char *buf = make_file("k", hs, 1, "0123456789abcdef", 16, &len);
    struct gh_cdisk_meta m;
    for (size_t cut = 0; cut < len; cut++) /* truncated anywhere */
        assert_int_equal(gh_cdisk_parse_file(buf, cut, &m), -EINVAL);
    for (size_t i = 0; i < len; i++) { /* any byte changed */
        buf[i] ^= 0x20;
        assert_int_equal(gh_cdisk_parse_file(buf, len, &m), -EINVAL);
        buf[i] ^= 0x20;
    }
    assert_int_equal(gh_cdisk_parse_file(buf, len, &m), 0);
    buf[12] = 0x7f; /* a key length past the file: the preamble alone says so */
    assert_int_equal(gh_cdisk_parse_meta(buf, len, &m), -EINVAL);
    assert_int_equal(gh_cdisk_parse_pre("GHCDISK0", 8, &m), -EINVAL);
    free(buf);
}

/* ------------------------------------------------------------------ */
/* the tier behind a store                                             */

static char dir[64];

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
    assert_int_equal(gh_cache_fill_body(o, &(struct iovec){b, len}, 1), 0);
    gh_cache_fill_done(o);
    gh_cobj_put(o);
    free(b);
}

/* Files in dir, and their bytes. */
static int
dir_files(uint64_t *bytes)
{
    int n = 0;
    *bytes = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char p[400];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        if (de->d_name[0] != '.' && stat(p, &st) == 0) {
            n++;
            *bytes += (uint64_t)st.st_size;
        }
    }
    closedir(d);
    return n;
}

/* Memory emptied with the tier stopped (its files kept), then the tier opened again. */
static void
restart(struct gh_cache_store *s)
{
    gh_cache_disk_stop(); /* writes what is queued first */
    gh_cache_remove_prefix(s, "", 0);
    assert_int_equal(gh_cache_disk_start(), 0);
}

static void
check_body(struct gh_cobj *o, size_t len)
{
    assert_int_equal(gh_cobj_state(o), GH_COBJ_DONE);
    assert_int_equal(o->content_length, (int64_t)len);
    struct gh_cread cur = {NULL, 0};
    uint64_t off = 0;
    struct iovec sp[4];
    int n;
    while ((n = gh_cobj_read(o, &cur, off, 1 << 20, sp, 4)) > 0)
        for (int i = 0; i < n; i++)
            for (size_t j = 0; j < sp[i].iov_len; j++, off++)
                assert_int_equal((unsigned char)((char *)sp[i].iov_base)[j], off % 251);
    assert_int_equal(off, len);
}

static void
test_tier(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/gh-test-disk-%d", (int)getpid());
    struct gh_cache_store *s = gh_cache_store_open("t-disk", 1 << 20, 512 * 1024);
    assert_int_equal(gh_cache_store_want_disk(s, dir, 1 << 20), 0);
    assert_int_equal(gh_cache_disk_start(), 0);
    put(s, "http://a.test/small", 100);
    put(s, "http://a.test/big", 200 * 1024); /* several chunks */
    restart(s);
    struct gh_cobj *o;
    assert_int_equal(gh_cache_lookup(s, "http://a.test/big", 17, NULL, 0, false, &o), GH_CACHE_HIT);
    check_body(o, 200 * 1024);
    same_times(&o->times, &T0);
    assert_int_equal(o->n_fields, 1);
    gh_cobj_put(o);
    /* purged: gone from memory and disk */
    assert_int_equal(gh_cache_remove_key(s, "http://a.test/big", 17), 1);
    restart(s);
    assert_int_equal(gh_cache_lookup(s, "http://a.test/big", 17, NULL, 0, false, &o),
                     GH_CACHE_MISS);
    assert_int_equal(gh_cache_lookup(s, "http://a.test/small", 19, NULL, 0, false, &o),
                     GH_CACHE_HIT);
    gh_cobj_put(o);
    uint64_t bytes;
    assert_int_equal(dir_files(&bytes), 1);
    /* a damaged file and a truncated one are removed at the scan; a foreign one is left */
    gh_cache_disk_stop();
    char p[256];
    snprintf(p, sizeof(p), "%s/00000000000000ab", dir);
    FILE *f = fopen(p, "w");
    fputs("GHCDISK1 and then nothing that makes sense", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/notes.txt", dir);
    f = fopen(p, "w");
    fclose(f);
    assert_int_equal(gh_cache_disk_start(), 0);
    assert_int_equal(dir_files(&bytes), 2);
    unlink(p);
    /* the budget: 3 MiB of objects through a 1 MiB disk */
    for (int i = 0; i < 24; i++) {
        char k[64];
        snprintf(k, sizeof(k), "http://a.test/n%d", i);
        put(s, k, 128 * 1024);
    }
    gh_cache_disk_stop();
    int n = dir_files(&bytes);
    assert_true(bytes <= 1 << 20);
    assert_true(n >= 4);
    assert_int_equal(gh_cache_store_want_disk(s, NULL, 0), 0);
    assert_int_equal(gh_cache_disk_start(), 0); /* no tier now */
    gh_cache_remove_prefix(s, "", 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_format_rejects),
        cmocka_unit_test(test_tier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
