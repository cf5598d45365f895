/* Bench "floor": the least a proxy can do. For each accepted client connection it opens one
 * connection to the origin and copies bytes both ways: one read and one write per side per
 * request (level-triggered epoll, one shared 64 KiB read buffer, a private copy only of bytes the
 * peer could not take yet, and then no reading from that side until the peer drains). No parsing.
 *
 *   relay LISTEN_PORT ORIGIN_PORT        (both on 127.0.0.1) */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct side {
    int fd, dead, connecting;
    unsigned events;
    struct side *peer;
    char *pend; /* bytes read from peer that this side could not take yet */
    size_t plen, poff;
    struct side *next_dead;
};

static int ep;
static char buf[65536];
static struct side *dead_list;

static void
want(struct side *s, unsigned ev)
{
    if (s->events == ev)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = s};
    epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &e);
    s->events = ev;
}

static void
kill_pair(struct side *s)
{
    struct side *p = s->peer;
    if (s->dead)
        return;
    s->dead = p->dead = 1;
    close(s->fd);
    close(p->fd);
    s->next_dead = p;
    p->next_dead = dead_list;
    dead_list = s; /* freed after the current epoll batch */
}

static void
on_event(struct side *s, unsigned ev)
{
    struct side *p = s->peer;
    if (s->dead)
        return;
    if (s->connecting) { /* origin connect finished: start reading both sides */
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err)
            return kill_pair(s);
        s->connecting = 0;
        want(s, EPOLLIN);
        want(p, EPOLLIN);
        return;
    }
    if ((ev & EPOLLOUT) && s->plen) { /* drain what the peer sent us earlier */
        ssize_t w = write(s->fd, s->pend + s->poff, s->plen - s->poff);
        if (w < 0 && errno != EAGAIN)
            return kill_pair(s);
        if (w > 0)
            s->poff += (size_t)w;
        if (s->poff == s->plen) {
            free(s->pend);
            s->pend = NULL;
            s->plen = s->poff = 0;
            want(s, EPOLLIN);
            want(p, EPOLLIN);
        }
        return;
    }
    if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    ssize_t r = read(s->fd, buf, sizeof buf);
    if (r == 0 || (r < 0 && errno != EAGAIN))
        return kill_pair(s);
    if (r < 0)
        return;
    ssize_t w = write(p->fd, buf, (size_t)r);
    if (w < 0 && errno != EAGAIN)
        return kill_pair(s);
    if (w < 0)
        w = 0;
    if (w < r) { /* peer is full: keep the rest, stop reading here until it drains */
        p->pend = malloc((size_t)(r - w));
        memcpy(p->pend, buf + w, (size_t)(r - w));
        p->plen = (size_t)(r - w);
        p->poff = 0;
        want(s, 0);
        want(p, EPOLLOUT);
    }
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s LISTEN_PORT ORIGIN_PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int one = 1, ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in la = {.sin_family = AF_INET,
                             .sin_port = htons((unsigned short)atoi(argv[1])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in oa = la;
    oa.sin_port = htons((unsigned short)atoi(argv[2]));
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(ls, (struct sockaddr *)&la, sizeof la) < 0 || listen(ls, 4096) < 0) {
        perror("relay: bind/listen");
        return 1;
    }
    ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL}, evs[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &e);
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr) {
                on_event(evs[i].data.ptr, evs[i].events);
                continue;
            }
            int cfd;
            while ((cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                int ofd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
                if (ofd < 0 ||
                    (connect(ofd, (struct sockaddr *)&oa, sizeof oa) < 0 && errno != EINPROGRESS)) {
                    close(cfd);
                    if (ofd >= 0)
                        close(ofd);
                    continue;
                }
                setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                setsockopt(ofd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                struct side *c = calloc(1, sizeof *c), *o = calloc(1, sizeof *o);
                c->fd = cfd, o->fd = ofd, c->peer = o, o->peer = c, o->connecting = 1;
                o->events = EPOLLOUT; /* client is registered but not read until the origin is up */
                struct epoll_event ce = {.events = 0, .data.ptr = c},
                                   oe = {.events = EPOLLOUT, .data.ptr = o};
                epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ce);
                epoll_ctl(ep, EPOLL_CTL_ADD, ofd, &oe);
            }
        }
        while (dead_list) {
            struct side *d = dead_list;
            dead_list = d->next_dead;
            free(d->pend);
            free(d);
        }
    }
}
