/*
 * race.c - connection racing over a name's addresses (see race.h).
 */
#include "net/race.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/common.h"
#include "net/sock.h"

socklen_t
gh_race_set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET6) {
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
        return sizeof(struct sockaddr_in6);
    }
    ((struct sockaddr_in *)ss)->sin_port = htons(port);
    return sizeof(struct sockaddr_in);
}

static void
close_try(struct gh_race *r, struct gh_race_try *t)
{
    if (t->io.fd < 0)
        return;
    gh_loop_del(r->loop, &t->io);
    close(t->io.fd);
    t->io.fd = -1;
    r->live--;
}

static void
close_all(struct gh_race *r)
{
    for (uint32_t i = 0; i < r->next; i++)
        close_try(r, &r->att[i]);
    gh_timer_stop(r->loop, &r->timer);
    r->running = false;
}

static void
finish(struct gh_race *r, int fd, int err, const struct sockaddr_storage *addr)
{
    close_all(r);
    r->cb(r->arg, fd, err, addr);
}

/* The timer: the earliest of the next start (while addresses remain) and the deadlines. */
static void
arm(struct gh_race *r)
{
    uint64_t when = r->next < r->n ? r->next_start : UINT64_MAX;
    for (uint32_t i = 0; i < r->next; i++)
        if (r->att[i].io.fd >= 0 && r->att[i].deadline < when)
            when = r->att[i].deadline;
    if (when == UINT64_MAX)
        gh_timer_stop(r->loop, &r->timer);
    else
        gh_timer_set(r->loop, &r->timer, when);
}

static void on_try(struct gh_io *io, uint32_t events);

/* Start attempts until one is in flight, or none is left. */
static void
start_next(struct gh_race *r)
{
    while (r->next < r->n) {
        uint32_t i = r->next++;
        struct gh_race_try *t = &r->att[i];
        int fd = gh_sock_connect((const struct sockaddr *)&r->addr[i],
                                 r->addr[i].ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                  : sizeof(struct sockaddr_in));
        if (fd < 0) {
            r->last_err = -fd;
            continue;
        }
        t->io.fd = fd;
        t->io.cb = on_try;
        t->r = r;
        if (gh_loop_add(r->loop, &t->io, EPOLLOUT | EPOLLERR | EPOLLHUP) != 0) {
            r->last_err = errno != 0 ? errno : ENOMEM;
            close(fd);
            t->io.fd = -1;
            continue;
        }
        r->live++;
        uint64_t now = gh_loop_now(r->loop);
        t->deadline = now + r->timeout_ms;
        r->next_start = now + r->delay_ms;
        return;
    }
}

/* Nothing in flight and nothing left to try: the race is lost. Else the timer is set again. */
static void
settle(struct gh_race *r)
{
    if (r->live == 0 && r->next < r->n)
        start_next(r);
    if (r->live == 0) {
        finish(r, -1, r->last_err != 0 ? r->last_err : EHOSTUNREACH, NULL);
        return;
    }
    arm(r);
}

static void
on_try(struct gh_io *io, uint32_t events)
{
    struct gh_race_try *t = gh_container_of(io, struct gh_race_try, io);
    struct gh_race *r = t->r;
    if (io->fd < 0 || !r->running)
        return; /* closed earlier in this batch */
    int err = gh_sock_error(io->fd);
    if (err == 0 && !(events & EPOLLOUT))
        return;
    if (err != 0) {
        r->last_err = err;
        close_try(r, t);
        settle(r);
        return;
    }
    int fd = io->fd;
    gh_loop_del(r->loop, io);
    io->fd = -1;
    r->live--;
    finish(r, fd, 0, &r->addr[t - r->att]);
}

static void
on_timer(struct gh_timer *tm)
{
    struct gh_race *r = gh_container_of(tm, struct gh_race, timer);
    if (!r->running)
        return;
    uint64_t now = gh_loop_now(r->loop);
    for (uint32_t i = 0; i < r->next; i++)
        if (r->att[i].io.fd >= 0 && r->att[i].deadline <= now) {
            r->last_err = ETIMEDOUT;
            close_try(r, &r->att[i]);
        }
    if (r->next < r->n && r->next_start <= now)
        start_next(r);
    settle(r);
}

void
gh_race_start(struct gh_race *r, struct gh_loop *l, const struct sockaddr_storage *addrs,
              uint32_t n, uint16_t port, uint32_t timeout_ms, uint32_t delay_ms, gh_race_cb cb,
              void *arg)
{
    memset(r, 0, offsetof(struct gh_race, addr));
    r->loop = l;
    r->cb = cb;
    r->arg = arg;
    r->n = n < GH_DNS_MAX_ADDRS ? n : GH_DNS_MAX_ADDRS;
    r->timeout_ms = timeout_ms;
    r->delay_ms = delay_ms != 0 ? delay_ms : GH_RACE_DELAY_MS;
    r->timer.cb = on_timer;
    r->running = true;
    for (uint32_t i = 0; i < r->n; i++) {
        r->addr[i] = addrs[i];
        gh_race_set_port(&r->addr[i], port);
        r->att[i].io.fd = -1;
    }
    start_next(r);
    settle(r);
}

void
gh_race_cancel(struct gh_race *r)
{
    if (r->running)
        close_all(r);
}
