/*
 * h1_write.c - HTTP/1.1 head serialisation helpers.
 */
#include "http/h1_write.h"

#include <time.h>

#include "http/h1.h"

/* Two decimal digits per step: half the divisions of a digit-by-digit loop. */
static const char digits2[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* The decimal digits of v, right-aligned in tmp[20]: returns where they start. */
static size_t
u64_digits(char tmp[20], uint64_t v)
{
    size_t i = 20;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        i -= 2;
        memcpy(tmp + i, digits2 + 2 * r, 2);
    }
    if (v >= 10) {
        i -= 2;
        memcpy(tmp + i, digits2 + 2 * v, 2);
    } else {
        tmp[--i] = (char)('0' + v);
    }
    return i;
}

void
gh_wr_u64(struct gh_wr *w, uint64_t v)
{
    char tmp[20];
    size_t i = u64_digits(tmp, v);
    gh_wr_put(w, tmp + i, sizeof(tmp) - i);
}

const char *
gh_h1w_status_text(int status)
{
    const char *s = gh_h1_reason(status);
    return s != NULL && *s != '\0' ? s : "Unknown";
}

void
gh_h1w_status_line(struct gh_wr *w, int status, const char *reason, size_t reason_len)
{
    if (reason_len == 0) {
        reason = gh_h1w_status_text(status);
        reason_len = strlen(reason);
    }
    /* one bounds check and fixed-size copies: this runs for every response */
    if (gh_unlikely(w->cap - w->len < 15 + reason_len)) {
        gh_wr_stop(w);
        return;
    }
    char *p = w->p + w->len;
    memcpy(p, "HTTP/1.1 ", 9);
    p[9] = (char)('0' + status / 100);
    p[10] = (char)('0' + status / 10 % 10);
    p[11] = (char)('0' + status % 10);
    p[12] = ' ';
    memcpy(p + 13, reason, reason_len);
    memcpy(p + 13 + reason_len, "\r\n", 2);
    w->len += 15 + reason_len;
}

const char *
gh_http_date(int64_t wall_sec)
{
    static __thread char date[40];
    static __thread int64_t date_sec = -1;
    if (wall_sec != date_sec) {
        time_t t = (time_t)wall_sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        if (strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm) != GH_HTTP_DATE_LEN)
            memcpy(date, "Thu, 01 Jan 1970 00:00:00 GMT",
                   GH_HTTP_DATE_LEN + 1); /* a year past 9999 */
        date_sec = wall_sec;
    }
    return date;
}

void
gh_h1w_date(struct gh_wr *w, int64_t wall_sec)
{
    const char *d = gh_http_date(wall_sec);
    if (gh_unlikely(w->cap - w->len < 8 + GH_HTTP_DATE_LEN)) {
        gh_wr_stop(w);
        return;
    }
    char *p = w->p + w->len;
    memcpy(p, "Date: ", 6);
    memcpy(p + 6, d, GH_HTTP_DATE_LEN);
    memcpy(p + 6 + GH_HTTP_DATE_LEN, "\r\n", 2);
    w->len += 8 + GH_HTTP_DATE_LEN;
}

void
gh_h1w_content_length(struct gh_wr *w, uint64_t n)
{
    char tmp[20];
    size_t i = u64_digits(tmp, n);
    size_t nd = sizeof(tmp) - i;
    if (gh_unlikely(w->cap - w->len < 18 + nd)) {
        gh_wr_stop(w);
        return;
    }
    char *p = w->p + w->len;
    memcpy(p, "Content-Length: ", 16);
    memcpy(p + 16, tmp + i, nd);
    memcpy(p + 16 + nd, "\r\n", 2);
    w->len += 18 + nd;
}

size_t
gh_h1w_chunk_size(char *out, uint64_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    int i = sizeof(tmp);
    do {
        tmp[--i] = hex[n & 15];
        n >>= 4;
    } while (n != 0);
    size_t len = sizeof(tmp) - (size_t)i;
    memcpy(out, tmp + i, len);
    out[len] = '\r';
    out[len + 1] = '\n';
    return len + 2;
}

void
gh_h1_out_data(struct gh_h1_out *o, const struct iovec *spans, int n, int chunked)
{
    for (int i = 0; i < n; i++) {
        if (!chunked) {
            gh_h1_out_add(o, spans[i].iov_base, spans[i].iov_len);
            continue;
        }
        GH_ASSERT(o->nhex < GH_H1_OUT_SPANS);
        char *hex = o->hex[o->nhex++];
        gh_h1_out_add(o, hex, gh_h1w_chunk_size(hex, spans[i].iov_len));
        gh_h1_out_add(o, spans[i].iov_base, spans[i].iov_len);
        gh_h1_out_add(o, "\r\n", 2);
    }
}
