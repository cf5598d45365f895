/*
 * xprt.h - the transport: every byte to or from a connected socket passes
 * here (receive, vectored send, shut down writing, reset, close, splice).
 * Nothing above src/net/ calls read, write, writev, recv, send, splice or
 * shutdown itself.
 *
 * A transport is the plain socket unless it carries a layer (TLS next): the
 * plain path is inline and costs what a bare syscall costs; a layer brings its
 * own operations, called once per receive or send (never per byte). Each
 * transport owns its readiness rules, kept in io.ready:
 *
 *   GH_XPRT_CAN_READ   a receive may return data. With edge-triggered epoll a
 *                      plain read that returns less than asked has emptied the
 *                      socket, so the bit is cleared without spending a
 *                      syscall on EAGAIN (DESIGN: one read per side per
 *                      request). A TLS layer clears it only when it also holds
 *                      no decrypted bytes: "a short read drained it" is the
 *                      transport's rule, never the caller's.
 *   GH_XPRT_CAN_WRITE  a send may take bytes; a short send clears it until
 *                      EPOLLOUT says otherwise (gh_xprt_watch_writes arms that
 *                      once per connection, after the first short send).
 *   GH_XPRT_EOF        the peer's end of stream was received.
 *
 * A layer may need the opposite direction from the one the caller asked for
 * (a TLS handshake or renegotiation writes while the caller wants to read):
 * it reports GH_AGAIN and clears the bit of the direction it waits for, and
 * gh_xprt_on_events maps the socket's events back to what the caller waits
 * on. Splice moves bytes socket to socket through the kernel and exists only
 * on plain transports (gh_xprt_can_splice); a caller asks before choosing it.
 *
 * The interface is narrow on purpose: readiness bits, receive into the
 * caller's buffer, send from the caller's vector. A completion-based loop
 * (io_uring, multishot receive into provided buffers) can implement it by
 * keeping completed buffers behind recv and clearing CAN_READ when they run
 * out, without the callers changing.
 */
#ifndef GH_NET_XPRT_H
#define GH_NET_XPRT_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/loop.h"
#include "net/pipe.h"

#define GH_XPRT_CAN_READ 0x0001u
#define GH_XPRT_CAN_WRITE 0x0002u
#define GH_XPRT_EOF 0x0004u
/* epoll reported the peer's FIN (EPOLLRDHUP/EPOLLHUP): it waits behind the data still
 * queued, so a short read has not seen it yet and must not clear CAN_READ */
#define GH_XPRT_RDHUP 0x0008u
#define GH_XPRT_OUT_ARMED 0x0010u /* EPOLLOUT is registered (after the first short send) */
#define GH_XPRT_WR_SHUT 0x0020u   /* our write side is shut (gh_xprt_shutdown) */

struct gh_xprt;

/* Operations of a layer above the socket (TLS). Same contracts as the gh_xprt_* calls below. */
struct gh_xprt_layer_ops {
    const char *name;
    ssize_t (*recv)(struct gh_xprt *x, char *p, size_t n);
    ssize_t (*sendv)(struct gh_xprt *x, const struct iovec *iov, int cnt, size_t total);
    /* socket events -> readiness of what the caller waits on */
    void (*on_events)(struct gh_xprt *x, uint32_t events);
    int (*shutdown)(struct gh_xprt *x);
    /* gh_xprt_drained for the layer (called only while CAN_READ is set) */
    bool (*drained)(struct gh_xprt *x);
    /* release the layer (the socket is closed by the caller of gh_xprt_close) */
    void (*free)(struct gh_xprt *x);
};

struct gh_xprt_layer {
    const struct gh_xprt_layer_ops *ops;
};

struct gh_xprt {
    struct gh_io io;             /* fd, readiness bits (io.ready), the owner's event callback */
    struct gh_xprt_layer *layer; /* NULL: the plain socket */
};

/* A plain transport over the connected non-blocking socket fd; cb gets its events. */
static inline void
gh_xprt_init(struct gh_xprt *x, int fd, gh_io_cb cb, uint32_t ready)
{
    x->io.fd = fd;
    x->io.ready = ready;
    x->io.cb = cb;
    x->layer = NULL;
}

static inline bool
gh_xprt_is(const struct gh_xprt *x, uint32_t bits)
{
    return (x->io.ready & bits) != 0;
}

static inline void
gh_xprt_set(struct gh_xprt *x, uint32_t bits)
{
    x->io.ready |= bits;
}

static inline void
gh_xprt_clear(struct gh_xprt *x, uint32_t bits)
{
    x->io.ready &= ~bits;
}

/* Record what epoll reported for x's socket (the first thing an event callback does). */
static inline void
gh_xprt_on_events(struct gh_xprt *x, uint32_t events)
{
    if (gh_unlikely(x->layer != NULL)) {
        x->layer->ops->on_events(x, events);
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        x->io.ready |= GH_XPRT_CAN_READ;
    if (events & (EPOLLRDHUP | EPOLLHUP))
        x->io.ready |= GH_XPRT_RDHUP;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        x->io.ready |= GH_XPRT_CAN_WRITE;
}

/*
 * Receive up to n bytes into p. Returns > 0 bytes, 0 at end of stream (EOF set,
 * CAN_READ cleared), GH_AGAIN when nothing is there (CAN_READ cleared), or
 * -errno for a broken connection.
 */
static inline ssize_t
gh_xprt_recv(struct gh_xprt *x, char *p, size_t n)
{
    if (gh_unlikely(x->layer != NULL))
        return x->layer->ops->recv(x, p, n);
    ssize_t r;
    do
        r = read(x->io.fd, p, n);
    while (r == -1 && errno == EINTR);
    if (r > 0) {
        if ((size_t)r < n && !(x->io.ready & GH_XPRT_RDHUP))
            x->io.ready &= ~GH_XPRT_CAN_READ;
        return r;
    }
    if (r == 0) {
        x->io.ready = (x->io.ready | GH_XPRT_EOF) & ~GH_XPRT_CAN_READ;
        return 0;
    }
    if (errno == EAGAIN) {
        x->io.ready &= ~GH_XPRT_CAN_READ;
        return GH_AGAIN;
    }
    return -errno;
}

/*
 * Send the cnt pieces of iov (total bytes in all). Returns the bytes taken
 * (>= 0; fewer than total clears CAN_WRITE) or -errno for a broken connection.
 * One piece goes by write(2), which is cheaper in the kernel than writev(2).
 */
static inline ssize_t
gh_xprt_sendv(struct gh_xprt *x, const struct iovec *iov, int cnt, size_t total)
{
    if (gh_unlikely(x->layer != NULL))
        return x->layer->ops->sendv(x, iov, cnt, total);
    ssize_t r;
    do
        r = cnt == 1 ? write(x->io.fd, iov[0].iov_base, iov[0].iov_len)
                     : writev(x->io.fd, iov, cnt);
    while (r == -1 && errno == EINTR);
    if (r >= 0) {
        if ((size_t)r < total)
            x->io.ready &= ~GH_XPRT_CAN_WRITE;
        return r;
    }
    if (errno == EAGAIN) {
        x->io.ready &= ~GH_XPRT_CAN_WRITE;
        return 0;
    }
    return -errno;
}

/*
 * Send as much of *bufp as x takes; the buffer goes back to the freelist once
 * empty (and *bufp becomes NULL). Returns 0 when nothing is left, GH_AGAIN when
 * bytes remain, -errno on a broken connection. NULL *bufp is fine.
 */
static inline int
gh_xprt_flush(struct gh_xprt *x, struct gh_buf **bufp)
{
    struct gh_buf *b = *bufp;
    if (b == NULL)
        return 0;
    if (gh_buf_len(b) > 0) {
        if (!(x->io.ready & GH_XPRT_CAN_WRITE))
            return GH_AGAIN;
        struct iovec iov = {gh_buf_head(b), gh_buf_len(b)};
        ssize_t w = gh_xprt_sendv(x, &iov, 1, iov.iov_len);
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

/* Register x's socket with the loop for events (EPOLLOUT is better left to
 * gh_xprt_watch_writes). Returns 0 or -errno. */
int gh_xprt_watch(struct gh_loop *l, struct gh_xprt *x, uint32_t events);

/* The slow half of gh_xprt_watch_writes: register EPOLLOUT. Returns 0 or -errno. */
int gh_xprt_arm_out(struct gh_loop *l, struct gh_xprt *x);

/*
 * After a turn of work: if the last send fell short, make sure EPOLLOUT is
 * registered so the owner learns when to go on. Done once per connection, the
 * first time (a connection whose sends always complete never pays for
 * writability wake-ups). Returns 0 or -errno.
 */
static inline int
gh_xprt_watch_writes(struct gh_loop *l, struct gh_xprt *x)
{
    if (gh_likely(x->io.ready & (GH_XPRT_CAN_WRITE | GH_XPRT_OUT_ARMED)) || x->io.fd < 0)
        return 0;
    return gh_xprt_arm_out(l, x);
}

/* Shut down the write side (our FIN after what was sent). Returns 0 or -errno. */
int gh_xprt_shutdown(struct gh_xprt *x);

/* Close the socket (and free any layer). The fd becomes -1; the loop forgets it. */
void gh_xprt_close(struct gh_xprt *x);

/*
 * Close with a reset instead of a FIN (SO_LINGER 0): for a peer that stopped
 * reading, so the kernel does not hold and retry a socket buffer of data for
 * it (nginx reset_timedout_connection).
 */
void gh_xprt_reset(struct gh_xprt *x);

/* Outcome of a non-blocking connect once the socket reports writable: 0 or an errno. */
int gh_xprt_connect_error(struct gh_xprt *x);

/* The local address of x's socket (getsockname). 0 or -errno. */
int gh_xprt_local_addr(struct gh_xprt *x, struct sockaddr_storage *ss);

/*
 * Is nothing waiting to be read right now? After a response ended exactly at
 * a read boundary the socket's edge may already be spent, so a bare readiness
 * bit cannot tell; this looks without taking (MSG_PEEK), a syscall only when
 * CAN_READ is set. Returns true when nothing is there (CAN_READ cleared),
 * false for stray bytes, end of stream or an error.
 */
bool gh_xprt_drained(struct gh_xprt *x);

/* May bytes move to or from x by splice(2)? (plain sockets only) */
static inline bool
gh_xprt_can_splice(const struct gh_xprt *x)
{
    return x->layer == NULL;
}

/* What stopped gh_xprt_splice_pump. */
enum gh_splice_rc {
    GH_SPLICE_BLOCKED, /* a side would block (its readiness bit is cleared) */
    GH_SPLICE_DONE,    /* *remaining reached 0 and the pipe is empty */
    GH_SPLICE_IN_EOF,  /* the sender closed first (its EOF bit set) */
    GH_SPLICE_IN_ERR,  /* receiving from the sender failed (*err) */
    GH_SPLICE_OUT_ERR, /* the receiver is gone (*err) */
};

/*
 * Move the next *remaining bytes of a stream from `in` to `out` with splice(2)
 * through pp, never more (whatever follows stays in `in`). Both must be
 * splice-capable. The pipe is emptied before it is filled again, so nothing
 * more is taken from the sender while the receiver has not taken what is in
 * it: the same backpressure as a copy. *moved_in and *moved_out grow by the
 * bytes taken and delivered, for the caller's accounting and timers.
 */
enum gh_splice_rc gh_xprt_splice_pump(struct gh_pipe *pp, uint64_t *remaining, struct gh_xprt *in,
                                      struct gh_xprt *out, uint64_t *moved_in, uint64_t *moved_out,
                                      int *err);

#endif
