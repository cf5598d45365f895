/*
 * buf.h - I/O buffers and per-thread freelists.
 *
 * One buffer API: reserve -> write -> commit -> consume. A buffer is a fixed
 * GH_BUF_SIZE block taken from the calling thread's freelist; connections own
 * one only while they hold bytes that could not be handed on at once (an
 * incomplete head, pipelined requests, output a slow peer has not taken), so an
 * idle connection holds none.
 */
#ifndef GH_CORE_BUF_H
#define GH_CORE_BUF_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "core/common.h"

#define GH_BUF_SIZE (64 * 1024)

struct gh_buf {
    uint32_t start; /* first unconsumed byte */
    uint32_t end;   /* one past the last committed byte */
    struct gh_buf *next_free;
    char data[GH_BUF_SIZE];
};

/* Take an empty buffer from this thread's freelist (or malloc). NULL when out of memory. */
struct gh_buf *gh_buf_get(void);
/* Give b back to this thread's freelist (freed beyond a small cache). NULL is fine. */
void gh_buf_put(struct gh_buf *b);
/* Release the calling thread's cached buffers (at thread exit). */
void gh_buf_cache_drain(void);

static inline size_t
gh_buf_len(const struct gh_buf *b)
{
    return b->end - b->start;
}

static inline char *
gh_buf_head(struct gh_buf *b)
{
    return b->data + b->start;
}

/* Room after end; compacts (moves data to the front) first if that is needed to get want bytes. */
static inline size_t
gh_buf_reserve(struct gh_buf *b, size_t want)
{
    if (GH_BUF_SIZE - b->end < want && b->start > 0) {
        memmove(b->data, b->data + b->start, b->end - b->start);
        b->end -= b->start;
        b->start = 0;
    }
    return GH_BUF_SIZE - b->end;
}

static inline char *
gh_buf_tail(struct gh_buf *b)
{
    return b->data + b->end;
}

static inline void
gh_buf_commit(struct gh_buf *b, size_t n)
{
    GH_ASSERT(b->end + n <= GH_BUF_SIZE);
    b->end += (uint32_t)n;
}

static inline void
gh_buf_consume(struct gh_buf *b, size_t n)
{
    GH_ASSERT(b->start + n <= b->end);
    b->start += (uint32_t)n;
    if (b->start == b->end)
        b->start = b->end = 0;
}

/* Append n bytes (the caller checked the room with gh_buf_reserve). */
static inline void
gh_buf_append(struct gh_buf *b, const void *p, size_t n)
{
    GH_ASSERT(GH_BUF_SIZE - b->end >= n);
    memcpy(b->data + b->end, p, n);
    b->end += (uint32_t)n;
}

/*
 * Copy the bytes of iov after the first `skip` bytes into *bufp (taking a
 * buffer if it is NULL): what a peer did not take, or input kept for later.
 * The caller guarantees they fit. Returns 0 or -ENOMEM.
 */
static inline int
gh_buf_stash(struct gh_buf **bufp, const struct iovec *iov, int cnt, size_t skip)
{
    if (*bufp == NULL) {
        *bufp = gh_buf_get();
        if (*bufp == NULL)
            return -ENOMEM;
    }
    for (int i = 0; i < cnt; i++) {
        size_t len = iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        size_t n = len - skip;
        GH_ASSERT(gh_buf_reserve(*bufp, n) >= n);
        gh_buf_append(*bufp, (const char *)iov[i].iov_base + skip, n);
        skip = 0;
    }
    return 0;
}

/*
 * After consuming `used` of the n input bytes at p: when they came from the
 * side's own buffer *in (from_buf), drop them from it and give it back once
 * empty; when they came from a shared scratch buffer, keep what was not used
 * in *in. Returns 0 or -ENOMEM.
 */
static inline int
gh_buf_keep_unused(struct gh_buf **in, int from_buf, const char *p, size_t n, size_t used)
{
    if (from_buf) {
        gh_buf_consume(*in, used);
        if (gh_buf_len(*in) == 0) {
            gh_buf_put(*in);
            *in = NULL;
        }
        return 0;
    }
    if (used == n)
        return 0;
    struct iovec rest = {(void *)(p + used), n - used};
    return gh_buf_stash(in, &rest, 1, 0);
}

/*
 * Typed freelist of fixed-size objects (HAProxy pools), one per thread per type.
 * Objects come back uninitialised; the cache keeps at most `max_cached`.
 */
struct gh_freelist {
    void *head;
    uint32_t size;
    uint32_t cached;
    uint32_t max_cached;
    uint64_t allocated; /* live objects, for metrics and leak checks */
};

void *gh_freelist_get(struct gh_freelist *fl);
void gh_freelist_put(struct gh_freelist *fl, void *p);
void gh_freelist_drain(struct gh_freelist *fl);

#endif
