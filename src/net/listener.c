/*
 * listener.c - the listener table and the accepting side of a thread.
 */
#include "net/listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "net/sock.h"

/* Accepts per readiness turn: one busy listener must not starve established
 * connections; with edge triggering the rest is taken on the next turn. */
#define ACCEPT_BATCH 256
/* After EMFILE/ENFILE/ENOBUFS/ENOMEM: try again this much later. */
#define ACCEPT_RETRY_MS 100

struct gh_listeners {
    unsigned n_threads;
    struct gh_listen_plan cur;
    bool committed; /* a plan was committed: the next commit is a reload */
};

struct gh_listeners *
gh_listeners_new(unsigned n_threads)
{
    struct gh_listeners *t = gh_xcalloc(1, sizeof(*t));
    t->n_threads = n_threads;
    return t;
}

static int *
find_fds(const struct gh_listeners *t, const struct gh_listen_spec *s)
{
    for (unsigned k = 0; k < t->cur.n; k++) {
        const struct gh_listen_group *g = &t->cur.g[k];
        if (g->len == s->len && memcmp(&g->ss, s->ss, s->len) == 0)
            return g->fds;
    }
    return NULL;
}

static void
close_fds(int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
}

/* One socket per thread for s, or -errno (nothing left open). */
static int
open_fds(const struct gh_listeners *t, const struct gh_listen_spec *s, int **out)
{
    int *fds = malloc(t->n_threads * sizeof(int));
    if (fds == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < t->n_threads; i++)
        fds[i] = -1;
    int rc = gh_sock_probe_free((const struct sockaddr *)s->ss, s->len);
    for (unsigned i = 0; i < t->n_threads && rc == 0; i++) {
        int fd = gh_sock_listen((const struct sockaddr *)s->ss, s->len, s->backlog);
        if (fd < 0)
            rc = fd;
        else
            fds[i] = fd;
        if (fd >= 0 && s->defer_s > 0 &&
            setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &s->defer_s, sizeof(s->defer_s)) == -1)
            rc = -errno;
    }
    if (rc != 0) {
        close_fds(fds, t->n_threads);
        return rc;
    }
    *out = fds;
    return 0;
}

int
gh_listeners_plan(struct gh_listeners *t, const struct gh_listen_spec *specs, unsigned n,
                  struct gh_listen_plan *plan)
{
    plan->n = 0;
    plan->g = calloc(n + 1, sizeof(*plan->g));
    if (plan->g == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        struct gh_listen_group *g = &plan->g[i];
        memcpy(&g->ss, specs[i].ss, specs[i].len);
        g->len = specs[i].len;
        g->text = strdup(specs[i].text != NULL ? specs[i].text : "?");
        if (g->text == NULL) {
            gh_listeners_drop(t, plan); /* plan->n == i: g holds nothing yet */
            return -ENOMEM;
        }
        g->fds = find_fds(t, &specs[i]);
        g->reused = g->fds != NULL;
        if (g->reused) {
            plan->n = i + 1;
            continue;
        }
        int rc = open_fds(t, &specs[i], &g->fds);
        if (rc != 0) {
            gh_log_error("listen %s: %s", specs[i].text, strerror(-rc));
            free(g->text);
            g->text = NULL;
            gh_listeners_drop(t, plan);
            return rc;
        }
        plan->n = i + 1;
    }
    return 0;
}

void
gh_listeners_commit(struct gh_listeners *t, struct gh_listen_plan *plan)
{
    if (t->committed)
        for (unsigned i = 0; i < plan->n; i++)
            gh_log_info("listener %s: %s", plan->g[i].reused ? "kept" : "opened", plan->g[i].text);
    /* groups that are not kept: their sockets are closed by the threads */
    for (unsigned k = 0; k < t->cur.n; k++) {
        bool kept = false;
        for (unsigned i = 0; i < plan->n && !kept; i++)
            kept = plan->g[i].fds == t->cur.g[k].fds;
        if (!kept) {
            gh_log_info("listener closed: %s (connections accepted there finish their current "
                        "request)",
                        t->cur.g[k].text);
            free(t->cur.g[k].fds);
        }
        free(t->cur.g[k].text);
    }
    t->committed = true;
    free(t->cur.g);
    t->cur = *plan;
    for (unsigned i = 0; i < t->cur.n; i++)
        t->cur.g[i].reused = true;
    plan->n = 0;
    plan->g = NULL;
}

void
gh_listeners_drop(struct gh_listeners *t, struct gh_listen_plan *plan)
{
    for (unsigned i = 0; i < plan->n; i++) {
        if (plan->g[i].fds != NULL && !plan->g[i].reused)
            close_fds(plan->g[i].fds, t->n_threads);
        free(plan->g[i].text);
    }
    free(plan->g);
    plan->g = NULL;
    plan->n = 0;
}

void
gh_listeners_free(struct gh_listeners *t)
{
    if (t == NULL)
        return;
    for (unsigned k = 0; k < t->cur.n; k++) {
        free(t->cur.g[k].fds);
        free(t->cur.g[k].text);
    }
    free(t->cur.g);
    free(t);
}

/* ---- the accepting side ---- */

static void on_accept(struct gh_io *io, uint32_t events);

static void
accept_retry(struct gh_timer *tm)
{
    struct gh_lsock *ls = gh_container_of(tm, struct gh_lsock, retry);
    on_accept(&ls->io, EPOLLIN);
}

static void
on_accept(struct gh_io *io, uint32_t events)
{
    struct gh_lsock *ls = gh_container_of(io, struct gh_lsock, io);
    (void)events;
    bool trimmed = false;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        if (ls->io.fd < 0) /* the callback may have closed it (draining) */
            return;
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(ls->io.fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            if (errno == ECONNABORTED)
                continue;
            if ((errno == EMFILE || errno == ENFILE) && ls->on_fd_shortage != NULL && !trimmed &&
                ls->on_fd_shortage(ls) > 0) {
                trimmed = true; /* once per turn: then the back-off below */
                continue;
            }
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                static __thread int64_t last_warn;
                if (gh_loop_wall(ls->loop) != last_warn) {
                    gh_log_error("accept: %s (raise the open-file limit?)", strerror(errno));
                    last_warn = gh_loop_wall(ls->loop);
                }
                gh_timer_after(ls->loop, &ls->retry, ACCEPT_RETRY_MS);
                return;
            }
            gh_log_error("accept: %s", strerror(errno));
            return;
        }
        ls->on_accept(ls, fd, &ss);
    }
    gh_timer_after(ls->loop, &ls->retry, 0);
}

struct gh_lsock *
gh_lsock_open(struct gh_loop *loop, int fd, int32_t idx, gh_accept_cb cb, void *data)
{
    struct gh_lsock *ls = calloc(1, sizeof(*ls));
    if (ls == NULL) {
        gh_log_error("out of memory adding a listener");
        close(fd);
        return NULL;
    }
    ls->io.fd = fd;
    ls->io.cb = on_accept;
    ls->loop = loop;
    ls->on_accept = cb;
    ls->data = data;
    ls->idx = idx;
    ls->retry.cb = accept_retry;
    int rc = gh_loop_add(loop, &ls->io, EPOLLIN);
    if (rc != 0) {
        gh_log_error("cannot watch a listening socket: %s", strerror(-rc));
        close(fd);
        free(ls);
        return NULL;
    }
    /* connections may already be waiting */
    on_accept(&ls->io, EPOLLIN);
    return ls;
}

static void
free_lsock(void *ctx, void *obj)
{
    (void)ctx;
    free(obj);
}

/* Freed after the current batch: an event for it may still be queued in this one. */
static void
free_if_unused(struct gh_lsock *ls)
{
    if (ls->idx < 0 && ls->conns == 0 && ls->io.fd < 0 && !ls->freed) {
        ls->freed = true;
        gh_loop_defer_free(ls->loop, ls, free_lsock, NULL);
    }
}

void
gh_lsock_close(struct gh_lsock *ls)
{
    gh_timer_stop(ls->loop, &ls->retry);
    if (ls->io.fd >= 0) {
        close(ls->io.fd);
        ls->io.fd = -1;
    }
    ls->idx = -1;
    free_if_unused(ls);
}

void
gh_lsock_conn_closed(struct gh_lsock *ls)
{
    GH_ASSERT(ls->conns > 0);
    ls->conns--;
    free_if_unused(ls);
}

void
gh_lsock_destroy(struct gh_lsock *ls)
{
    if (ls->io.fd >= 0)
        close(ls->io.fd);
    if (!ls->freed)
        free(ls);
}
