/*
 * uri.c - path normalisation and absolute-form splitting.
 */
#include "http/uri.h"

#include <string.h>

static int
hexval(unsigned char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int
gh_uri_normalize_path(const char *in, size_t n, char *out, const char **res, size_t *res_len)
{
    int simple = 1;
    for (size_t i = 0; i < n && simple; i++)
        if (in[i] == '%' || (in[i] == '/' && i + 1 < n && (in[i + 1] == '/' || in[i + 1] == '.')))
            simple = 0;
    if (simple) {
        *res = in;
        *res_len = n;
        return 0;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)in[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)in[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '/' && o > 0 && out[o - 1] == '/')
            continue; /* merge slashes */
        out[o++] = (char)c;
        /* a segment just ended ("/" now, or at the end): resolve "." and ".." */
        int end = i + 1 == n;
        if (c != '/' && !end)
            continue;
        size_t seg_end = c == '/' ? o - 1 : o; /* excludes the new '/' */
        size_t seg = seg_end;
        while (seg > 0 && out[seg - 1] != '/')
            seg--;
        size_t len = seg_end - seg;
        if (len == 1 && out[seg] == '.') {
            o = seg; /* drop "." (keep the '/' before it) */
        } else if (len == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            if (seg <= 1)
                return -1;         /* above the root */
            size_t prev = seg - 1; /* the '/' before ".." */
            while (prev > 0 && out[prev - 1] != '/')
                prev--;
            o = prev;
        }
    }
    if (o == 0)
        out[o++] = '/';
    *res = out;
    *res_len = o;
    return 0;
}

void
gh_uri_split_absolute(const char *t, size_t n, const char **auth, size_t *auth_len,
                      const char **path, size_t *path_len)
{
    const char *p = memchr(t, ':', n);
    size_t off = p ? (size_t)(p - t) + 3 : 0; /* past "://" */
    if (off > n)
        off = n;
    size_t a = off;
    while (a < n && t[a] != '/' && t[a] != '?')
        a++;
    *auth = t + off;
    *auth_len = a - off;
    if (a == n) {
        *path = "/";
        *path_len = 1;
    } else {
        *path = t + a;
        *path_len = n - a;
    }
}

int
gh_uri_path_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("-._~!$&'()*+,;=:@/", c) != NULL;
}

size_t
gh_uri_encode_path(const char *in, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (gh_uri_path_char(c)) {
            if (o + 1 > cap)
                return 0;
            out[o++] = (char)c;
        } else {
            if (o + 3 > cap)
                return 0;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    return o;
}

long
gh_uri_unescape(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++, o++) {
        if (o == cap)
            return -1;
        if (in[i] != '%') {
            out[o] = in[i];
            continue;
        }
        int hi = i + 2 < n ? hexval((unsigned char)in[i + 1]) : -1;
        int lo = hi >= 0 ? hexval((unsigned char)in[i + 2]) : -1;
        if (lo < 0)
            return -1;
        out[o] = (char)(hi << 4 | lo);
        i += 2;
    }
    return (long)o;
}
