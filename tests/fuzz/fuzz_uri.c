/*
 * fuzz_uri.c - libFuzzer target for path normalisation and absolute-form
 * splitting (http/uri.c): what route matching, and so every route-based rule,
 * relies on.
 *
 * The normaliser is checked against a slow reference written from RFC 3986
 * §5.2.4 (decode first, then remove dot segments with an explicit stack of
 * segments, then merge slashes) and against the properties that make it safe
 * for routing: the result starts with '/', holds no "//", no "." or ".."
 * segment, is never longer than the input, and the input is copied only when
 * it changes. The input lives in an exact-size allocation so ASan sees any
 * overread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int
hexv(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Reference: returns the normalised length in out, or -1. */
static long
reference(const char *in, size_t n, char *out)
{
    /* 1. decode, refusing bad escapes and NUL */
    char *dec = malloc(n + 1);
    size_t dn = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            if (i + 2 >= n) {
                free(dec);
                return -1;
            }
            int hi = hexv((unsigned char)in[i + 1]), lo = hexv((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(dec);
                return -1;
            }
            c = hi * 16 + lo;
            i += 2;
        }
        dec[dn++] = (char)c;
    }
    /* 2. split on '/', dropping empty segments (merged slashes); resolve . and .. */
    size_t *seg_start = malloc((dn + 1) * sizeof(size_t));
    size_t *seg_len = malloc((dn + 1) * sizeof(size_t));
    size_t nseg = 0;
    int trailing = dn > 0 && dec[dn - 1] == '/';
    for (size_t i = 0; i < dn;) {
        if (dec[i] == '/') {
            i++;
            continue;
        }
        size_t j = i;
        while (j < dn && dec[j] != '/')
            j++;
        size_t len = j - i;
        int last = j >= dn;
        if (len == 1 && dec[i] == '.') {
            if (last)
                trailing = 1;
        } else if (len == 2 && dec[i] == '.' && dec[i + 1] == '.') {
            if (nseg == 0) {
                free(dec);
                free(seg_start);
                free(seg_len);
                return -1;
            }
            nseg--;
            if (last)
                trailing = 1;
        } else {
            seg_start[nseg] = i;
            seg_len[nseg++] = len;
        }
        i = j;
    }
    size_t o = 0;
    out[o++] = '/';
    for (size_t k = 0; k < nseg; k++) {
        memcpy(out + o, dec + seg_start[k], seg_len[k]);
        o += seg_len[k];
        if (k + 1 < nseg || trailing)
            out[o++] = '/';
    }
    free(dec);
    free(seg_start);
    free(seg_len);
    return (long)o;
}

static void
check_normalise(const char *in, size_t n)
{
    char *out = malloc(n + 1);
    char *ref = malloc(2 * n + 2);
    const char *res;
    size_t rl;
    int rc = gh_uri_normalize_path(in, n, out, &res, &rl);
    long want = reference(in, n, ref);
    if (rc != 0) {
        CHECK(want < 0);
    } else {
        CHECK(want >= 0);
        CHECK(rl == (size_t)want && memcmp(res, ref, rl) == 0);
        CHECK(rl >= 1 && rl <= n && res[0] == '/');
        CHECK(res == in || res == out);
        if (res == in) /* not copied: nothing in it needed a change */
            CHECK(memchr(in, '%', n) == NULL);
        for (size_t i = 0; i + 1 < rl; i++)
            CHECK(!(res[i] == '/' && res[i + 1] == '/'));
    }
    free(out);
    free(ref);
}

static void
check_split(const char *t, size_t n)
{
    const char *a, *p;
    size_t al, pl;
    gh_uri_split_absolute(t, n, &a, &al, &p, &pl);
    CHECK(a >= t && a + al <= t + n);
    CHECK(memchr(a, '/', al) == NULL && memchr(a, '?', al) == NULL);
    if (p != t + n - pl) { /* only the constant "/" when path and query are empty */
        CHECK(pl == 1 && p[0] == '/' && a + al == t + n);
    } else {
        CHECK(pl > 0 && (p[0] == '/' || p[0] == '?') && a + al == p);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *in = malloc(size + 1);
    in[0] = '/'; /* normalise sees what the proxy gives it: a path starting with '/' */
    memcpy(in + 1, data, size);
    char *exact = malloc(size + 1);
    memcpy(exact, in, size + 1);
    check_normalise(exact, size + 1);
    free(exact);
    char *t = malloc(size ? size : 1);
    memcpy(t, data, size);
    check_split(t, size);
    free(t);
    free(in);
    return 0;
}
