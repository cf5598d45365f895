/*
 * io.h - internal to src/proxy/: socket reads and writes with the
 * edge-triggered bookkeeping every side of a relay needs.
 *
 * With EPOLLET a read that returns less than asked has emptied the socket
 * (design: "one read per side per request"), so the can-read flag is cleared
 * without spending a syscall on EAGAIN; a short write likewise clears
 * can-write until EPOLLOUT says otherwise.
 */
#ifndef GH_PROXY_IO_H
#define GH_PROXY_IO_H

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/buf.h"
#include "net/pipe.h"

/* Set in a side's flags when epoll reported EPOLLRDHUP: the peer's FIN is
 * queued behind whatever data is left, so a short read has not seen it yet. */
#define GH_IO_RDHUP 0x8000

/*
 * Read up to n bytes. Returns > 0 bytes read, 0 at end of stream (eof_flag set),
 * GH_AGAIN when nothing is there (can_flag cleared), or -errno. A short read
 * clears can_flag (the socket is drained, edge-triggered) unless the peer's
 * FIN is known to be pending, which only another read reports.
 */
static inline ssize_t
gh_io_read(int fd, char *p, size_t n, uint16_t *flags, uint16_t can_flag, uint16_t eof_flag)
{
    ssize_t r;
    do
        r = read(fd, p, n);
    while (r == -1 && errno == EINTR);
    if (r > 0) {
        if ((size_t)r < n && !(*flags & GH_IO_RDHUP))
            *flags &= (uint16_t)~can_flag;
        return r;
    }
    if (r == 0) {
        *flags = (uint16_t)((*flags | eof_flag) & ~can_flag);
        return 0;
    }
    if (errno == EAGAIN) {
        *flags &= (uint16_t)~can_flag;
        return GH_AGAIN;
    }
    return -errno;
}

/*
 * Write iov. Returns bytes written (>= 0; less than the total clears can_flag)
 * or -errno for a broken connection.
 */
static inline ssize_t
gh_io_writev(int fd, const struct iovec *iov, int cnt, size_t total, uint16_t *flags,
             uint16_t can_flag)
{
    ssize_t r;
    do
        r = cnt == 1 ? write(fd, iov[0].iov_base, iov[0].iov_len) : writev(fd, iov, cnt);
    while (r == -1 && errno == EINTR);
    if (r >= 0) {
        if ((size_t)r < total)
            *flags &= (uint16_t)~can_flag;
        return r;
    }
    if (errno == EAGAIN) {
        *flags &= (uint16_t)~can_flag;
        return 0;
    }
    return -errno;
}

/*
 * Copy the bytes of iov after the first `skip` bytes into *bufp (taking a
 * buffer if it is NULL). The caller guarantees they fit. Returns 0 or -ENOMEM.
 */
static inline int
gh_io_stash(struct gh_buf **bufp, const struct iovec *iov, int cnt, size_t skip)
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
 * Write as much of *bufp as the socket takes; the buffer goes back to the
 * freelist once empty. Returns 0 when nothing is left, GH_AGAIN when bytes
 * remain, -errno on a broken connection.
 */
static inline int
gh_io_flush(int fd, struct gh_buf **bufp, uint16_t *flags, uint16_t can_flag)
{
    struct gh_buf *b = *bufp;
    if (b == NULL)
        return 0;
    if (gh_buf_len(b) > 0) {
        if (!(*flags & can_flag))
            return GH_AGAIN;
        struct iovec iov = {gh_buf_head(b), gh_buf_len(b)};
        ssize_t w = gh_io_writev(fd, &iov, 1, iov.iov_len, flags, can_flag);
        if (w < 0)
            return (int)w;
        gh_buf_consume(b, (size_t)w);
        if (gh_buf_len(b) > 0)
            return GH_AGAIN;
    }
    gh_buf_put(b);
    *bufp = NULL;
    return 0;
}

/* What stopped gh_io_splice_pump. */
enum gh_pump {
    GH_PUMP_BLOCKED, /* a side would block (its can-flag is cleared) */
    GH_PUMP_DONE,    /* *remaining reached 0 and the pipe is empty */
    GH_PUMP_IN_EOF,  /* the sender closed first (eof flag set) */
    GH_PUMP_IN_ERR,  /* reading the sender failed (*err) */
    GH_PUMP_OUT_ERR, /* the receiver is gone (*err) */
};

/*
 * Move the next *remaining bytes of a stream from `in` to `out` with splice(2)
 * through pp, never more (whatever follows stays in `in`). The pipe is emptied
 * before it is filled again, so nothing more is taken from the sender while
 * the receiver has not taken what is in it: the same backpressure as a copy.
 * Can-flags are cleared on EAGAIN as with gh_io_read / gh_io_writev. *moved_in
 * and *moved_out get the bytes taken and delivered, for the caller's
 * accounting and timers.
 */
static inline enum gh_pump
gh_io_splice_pump(struct gh_pipe *pp, uint64_t *remaining, int in, uint16_t *in_flags,
                  uint16_t in_can, uint16_t in_eof, int out, uint16_t *out_flags, uint16_t out_can,
                  uint64_t *moved_in, uint64_t *moved_out, int *err)
{
    for (;;) {
        if (pp->len > 0) {
            if (!(*out_flags & out_can))
                return GH_PUMP_BLOCKED;
            ssize_t n = gh_splice(pp->rd, out, pp->len);
            if (n == GH_AGAIN || n == 0) {
                *out_flags &= (uint16_t)~out_can;
                return GH_PUMP_BLOCKED;
            }
            if (n < 0) {
                *err = (int)-n;
                return GH_PUMP_OUT_ERR;
            }
            pp->len -= (uint32_t)n;
            *moved_out += (uint64_t)n;
            if (pp->len > 0) { /* the receiver's socket is full: wait for EPOLLOUT */
                *out_flags &= (uint16_t)~out_can;
                return GH_PUMP_BLOCKED;
            }
            continue;
        }
        if (*remaining == 0)
            return GH_PUMP_DONE;
        if (!(*in_flags & in_can))
            return GH_PUMP_BLOCKED;
        size_t want = *remaining < GH_PIPE_SIZE ? (size_t)*remaining : GH_PIPE_SIZE;
        ssize_t n = gh_splice(in, pp->wr, want);
        if (n == GH_AGAIN) {
            /* unlike a short read, a short splice may only mean the pipe ran out
             * of slots; EAGAIN is what says the socket is empty */
            *in_flags &= (uint16_t)~in_can;
            return GH_PUMP_BLOCKED;
        }
        if (n == 0) {
            *in_flags |= in_eof;
            return GH_PUMP_IN_EOF;
        }
        if (n < 0) {
            *err = (int)-n;
            return GH_PUMP_IN_ERR;
        }
        pp->len += (uint32_t)n;
        *remaining -= (uint64_t)n;
        *moved_in += (uint64_t)n;
    }
}

#endif
