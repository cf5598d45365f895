/*
 * h1_write.c - HTTP/1.1 head serialisation helpers.
 */
#include "http/h1_write.h"

#include <time.h>

#include "http/h1.h"

void
gh_wr_u64(struct gh_wr *w, uint64_t v)
{
    char tmp[24];
    int i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    gh_wr_put(w, tmp + i, sizeof(tmp) - (size_t)i);
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
    char st[5] = {' ', (char)('0' + status / 100), (char)('0' + status / 10 % 10),
                  (char)('0' + status % 10), ' '};
    GH_WR_LIT(w, "HTTP/1.1");
    gh_wr_put(w, st, 5);
    if (reason_len > 0)
        gh_wr_put(w, reason, reason_len);
    else
        gh_wr_str(w, gh_h1w_status_text(status));
    GH_WR_LIT(w, "\r\n");
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
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        date_sec = wall_sec;
    }
    return date;
}

void
gh_h1w_date(struct gh_wr *w, int64_t wall_sec)
{
    GH_WR_LIT(w, "Date: ");
    gh_wr_str(w, gh_http_date(wall_sec));
    GH_WR_LIT(w, "\r\n");
}

void
gh_h1w_content_length(struct gh_wr *w, uint64_t n)
{
    GH_WR_LIT(w, "Content-Length: ");
    gh_wr_u64(w, n);
    GH_WR_LIT(w, "\r\n");
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
