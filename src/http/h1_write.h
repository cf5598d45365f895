/*
 * h1_write.h - HTTP/1.1 serialisation: a bounded writer for message heads,
 * the status line, Date, Content-Length and chunk framing (RFC 9112).
 *
 * A head is written into a caller-owned buffer (a per-thread scratch) with
 * struct gh_wr; a write that does not fit sets `overflow` and writes nothing
 * more (the writer stops: cap drops to len, so no later piece fits either),
 * so callers check once at the end instead of after every piece, and
 * p[0..len) is always the bytes written before the first piece that did not
 * fit (an access-log line is cut there).
 */
#ifndef GH_HTTP_H1_WRITE_H
#define GH_HTTP_H1_WRITE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "core/common.h"

struct gh_wr {
    char *p;
    size_t len;
    size_t cap;
    int overflow;
};

/* A piece did not fit: nothing more is written. */
static inline void
gh_wr_stop(struct gh_wr *w)
{
    w->cap = w->len;
    w->overflow = 1;
}

static inline void
gh_wr_put(struct gh_wr *w, const void *s, size_t n)
{
    if (gh_unlikely(w->len + n > w->cap)) {
        gh_wr_stop(w);
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

/* "" s "" only compiles for string literals, so sizeof is the literal's length */
#define GH_WR_LIT(w, s) gh_wr_put((w), "" s "", sizeof(s) - 1)

static inline void
gh_wr_str(struct gh_wr *w, const char *s)
{
    gh_wr_put(w, s, strlen(s));
}

/* Decimal digits of v. */
void gh_wr_u64(struct gh_wr *w, uint64_t v);

/* "Name: value\r\n" (one bounds check: this runs for every field of every head) */
static inline void
gh_wr_field(struct gh_wr *w, const char *name, size_t nlen, const char *val, size_t vlen)
{
    size_t need = nlen + vlen + 4;
    if (gh_unlikely(w->len + need > w->cap)) {
        gh_wr_stop(w);
        return;
    }
    char *p = w->p + w->len;
    memcpy(p, name, nlen);
    p += nlen;
    p[0] = ':';
    p[1] = ' ';
    memcpy(p + 2, val, vlen);
    p += 2 + vlen;
    p[0] = '\r';
    p[1] = '\n';
    w->len += need;
}

/* "HTTP/1.1 NNN reason\r\n"; the standard reason phrase when reason_len is 0. */
void gh_h1w_status_line(struct gh_wr *w, int status, const char *reason, size_t reason_len);

/* "Date: <IMF-fixdate of wall_sec>\r\n" (RFC 9110 §5.6.7). */
void gh_h1w_date(struct gh_wr *w, int64_t wall_sec);

/* "Content-Length: n\r\n" */
void gh_h1w_content_length(struct gh_wr *w, uint64_t n);

/* The reason phrase of status, "Unknown" for one without a standard phrase. */
const char *gh_h1w_status_text(int status);

/* Length of an IMF-fixdate ("Thu, 26 Nov 2026 18:44:14 GMT"). */
#define GH_HTTP_DATE_LEN 29

/*
 * The IMF-fixdate of wall_sec ("Thu, 26 Nov 2026 18:44:14 GMT"), formatted
 * once per second per thread (gmtime_r and strftime cost more than a whole
 * request's parsing). The string stays valid until the next call with another
 * second on the same thread.
 */
const char *gh_http_date(int64_t wall_sec);

/* Longest chunk-size line gh_h1w_chunk_size writes: 16 hex digits and CRLF. */
#define GH_H1W_CHUNK_LINE_MAX 18

/* Write the chunk-size line of an n-byte chunk ("1a2f\r\n") to out; returns its length. */
size_t gh_h1w_chunk_size(char *out, uint64_t n);

/* The last chunk with no trailer fields, which ends a chunked body. */
#define GH_H1W_LAST_CHUNK "0\r\n\r\n"

/*
 * An output vector for one write: a head and body data, the data passed raw
 * or framed as chunks. Sized so that a head, GH_H1_OUT_SPANS framed spans and
 * the last chunk fit; the chunk-size lines live inside it.
 */
#define GH_H1_OUT_IOV 64
#define GH_H1_OUT_SPANS 21 /* spans one output frames: 3 pieces each, besides a head */
/* Input handed on from a chunked body is cut this much short of the room, so
 * the chunk-size lines a re-framing adds (at most GH_H1_OUT_SPANS of
 * GH_H1W_CHUNK_LINE_MAX + 2 bytes) always fit. */
#define GH_H1_OUT_RESERVE 512

struct gh_h1_out {
    struct iovec iov[GH_H1_OUT_IOV];
    char hex[GH_H1_OUT_SPANS][GH_H1W_CHUNK_LINE_MAX];
    int cnt;
    int nhex;
    size_t total;
};

static inline void
gh_h1_out_init(struct gh_h1_out *o)
{
    o->cnt = o->nhex = 0;
    o->total = 0;
}

/* Append n bytes at p (borrowed until the write). */
static inline void
gh_h1_out_add(struct gh_h1_out *o, const void *p, size_t n)
{
    GH_ASSERT(o->cnt < GH_H1_OUT_IOV);
    o->iov[o->cnt++] = (struct iovec){(void *)p, n};
    o->total += n;
}

/* Append body data spans, each framed as a chunk when chunked (at most GH_H1_OUT_SPANS). */
void gh_h1_out_data(struct gh_h1_out *o, const struct iovec *spans, int n, int chunked);

#endif
