/*
 * xprt.c - the plain-socket transport's out-of-line half: registration,
 * shutdown, close, reset, the drained check, and the splice pump.
 */
#include "net/xprt.h"

#include <sys/socket.h>

#include "net/sock.h"

int
gh_xprt_watch(struct gh_loop *l, struct gh_xprt *x, uint32_t events)
{
    if (events & EPOLLOUT)
        x->io.ready |= GH_XPRT_OUT_ARMED;
    return gh_loop_add(l, &x->io, events);
}

int
gh_xprt_arm_out(struct gh_loop *l, struct gh_xprt *x)
{
    /* epoll reports at once if the socket drained before this registration */
    int rc = gh_loop_mod(l, &x->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    if (rc == 0)
        x->io.ready |= GH_XPRT_OUT_ARMED;
    return rc;
}

int
gh_xprt_shutdown(struct gh_xprt *x)
{
    x->io.ready |= GH_XPRT_WR_SHUT;
    if (x->layer != NULL)
        return x->layer->ops->shutdown(x);
    return shutdown(x->io.fd, SHUT_WR) == -1 ? -errno : 0;
}

void
gh_xprt_close(struct gh_xprt *x)
{
    if (x->layer != NULL) {
        x->layer->ops->free(x);
        x->layer = NULL;
    }
    if (x->io.fd >= 0)
        close(x->io.fd);
    x->io.fd = -1;
    x->io.ready = 0;
}

void
gh_xprt_reset(struct gh_xprt *x)
{
    struct linger lg = {1, 0};
    if (x->io.fd >= 0)
        (void)setsockopt(x->io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    gh_xprt_close(x);
}

int
gh_xprt_connect_error(struct gh_xprt *x)
{
    return gh_sock_error(x->io.fd);
}

int
gh_xprt_local_addr(struct gh_xprt *x, struct sockaddr_storage *ss)
{
    socklen_t len = sizeof(*ss);
    return getsockname(x->io.fd, (struct sockaddr *)ss, &len) == -1 ? -errno : 0;
}

bool
gh_xprt_drained(struct gh_xprt *x)
{
    if (!(x->io.ready & GH_XPRT_CAN_READ))
        return true;
    if (x->layer != NULL)
        return x->layer->ops->drained(x);
    char b;
    ssize_t k = recv(x->io.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (k == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        x->io.ready &= ~GH_XPRT_CAN_READ;
        return true;
    }
    return false; /* stray bytes, end of stream, or an error */
}

enum gh_splice_rc
gh_xprt_splice_pump(struct gh_pipe *pp, uint64_t *remaining, struct gh_xprt *in,
                    struct gh_xprt *out, uint64_t *moved_in, uint64_t *moved_out, int *err)
{
    GH_ASSERT(in->layer == NULL && out->layer == NULL);
    for (;;) {
        if (pp->len > 0) {
            if (!(out->io.ready & GH_XPRT_CAN_WRITE))
                return GH_SPLICE_BLOCKED;
            ssize_t n = gh_splice(pp->rd, out->io.fd, pp->len);
            if (n == GH_AGAIN || n == 0) {
                out->io.ready &= ~GH_XPRT_CAN_WRITE;
                return GH_SPLICE_BLOCKED;
            }
            if (n < 0) {
                *err = (int)-n;
                return GH_SPLICE_OUT_ERR;
            }
            pp->len -= (uint32_t)n;
            *moved_out += (uint64_t)n;
            if (pp->len > 0) { /* the receiver's socket is full: wait for EPOLLOUT */
                out->io.ready &= ~GH_XPRT_CAN_WRITE;
                return GH_SPLICE_BLOCKED;
            }
            continue;
        }
        if (*remaining == 0)
            return GH_SPLICE_DONE;
        if (!(in->io.ready & GH_XPRT_CAN_READ))
            return GH_SPLICE_BLOCKED;
        size_t want = *remaining < GH_PIPE_SIZE ? (size_t)*remaining : GH_PIPE_SIZE;
        ssize_t n = gh_splice(in->io.fd, pp->wr, want);
        if (n == GH_AGAIN) {
            /* unlike a short read, a short splice may only mean the pipe ran out
             * of slots; EAGAIN is what says the socket is empty */
            in->io.ready &= ~GH_XPRT_CAN_READ;
            return GH_SPLICE_BLOCKED;
        }
        if (n == 0) {
            in->io.ready |= GH_XPRT_EOF;
            return GH_SPLICE_IN_EOF;
        }
        if (n < 0) {
            *err = (int)-n;
            return GH_SPLICE_IN_ERR;
        }
        pp->len += (uint32_t)n;
        *remaining -= (uint64_t)n;
        *moved_in += (uint64_t)n;
    }
}
