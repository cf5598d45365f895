/*
 * worker.c - worker threads, the process-wide listener table, config swaps
 * and draining.
 *
 * The main thread owns the listener table (one SO_REUSEPORT socket per
 * address per worker) and posts messages; each worker owns its event loop,
 * its sockets once handed over, and everything it allocates.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "net/pipe.h"
#include "net/listener.h"
#include "proxy/proxy.h"
#include "proxy/worker.h"

#define ALOG_CAP (64 * 1024)

/* ---- process-wide state (main thread) ---- */

static struct gh_worker **workers;
static unsigned n_workers;
static struct gh_listeners *listeners;
static int alog_fd = -1;     /* current access log destination */
static int alog_old_fd = -1; /* previous one, closed at the next reload */

/* ---- worker side ---- */

void
gh_worker_free_obj(void *freelist, void *obj)
{
    gh_freelist_put(freelist, obj);
}

void
gh_worker_conn_closed(struct gh_worker *w, struct gh_conn *c)
{
    if (c->flags & C_IN_LIST) {
        if (c->prev != NULL)
            c->prev->next = c->next;
        else
            w->conns = c->next;
        if (c->next != NULL)
            c->next->prev = c->prev;
        c->prev = c->next = NULL;
        c->flags &= ~(uint16_t)C_IN_LIST;
        w->nconns--;
    }
    struct gh_lsock *ls = c->ls;
    c->ls = NULL;
    if (ls != NULL)
        gh_lsock_conn_closed(ls);
}

const char *
gh_worker_log_time(struct gh_worker *w, int json)
{
    int64_t now = gh_loop_wall(w->loop);
    if (now != w->log_time_sec) {
        time_t t = (time_t)now;
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(w->log_time[0], sizeof(w->log_time[0]), "[%d/%b/%Y:%H:%M:%S %z]", &tm);
        gmtime_r(&t, &tm);
        strftime(w->log_time[1], sizeof(w->log_time[1]), "%Y-%m-%dT%H:%M:%SZ", &tm);
        w->log_time_sec = now;
    }
    return w->log_time[json ? 1 : 0];
}

static void
alog_flush(struct gh_worker *w)
{
    if (w->alog_len == 0)
        return;
    int fd = __atomic_load_n(&alog_fd, __ATOMIC_ACQUIRE);
    gh_write_all(fd >= 0 ? fd : 2, w->alog, w->alog_len);
    w->alog_len = 0;
}

static void
batch_end(void *arg)
{
    alog_flush(arg);
}

void
gh_worker_alog(struct gh_worker *w, const char *line, size_t len)
{
    if (w->alog == NULL) {
        w->alog = malloc(ALOG_CAP);
        if (w->alog == NULL)
            return;
    }
    if (w->alog_len + len > ALOG_CAP)
        alog_flush(w);
    if (len > ALOG_CAP)
        len = ALOG_CAP;
    memcpy(w->alog + w->alog_len, line, len);
    w->alog_len += (uint32_t)len;
    gh_loop_at_batch_end(w->loop, batch_end, w);
}

static void
on_conn(struct gh_lsock *ls, int fd, const struct sockaddr_storage *peer)
{
    struct gh_worker *w = ls->data;
    w->st_accepted++;
    gh_http_on_accept(w, ls, fd, peer);
}

static void
lsock_add(struct gh_worker *w, int fd, int32_t idx)
{
    struct gh_lsock *ls = gh_lsock_open(w->loop, fd, idx, on_conn, w);
    if (ls == NULL)
        return;
    ls->next = w->lsocks;
    w->lsocks = ls;
}

/* Close a listening socket of this worker; connections accepted on it finish. */
static void
lsock_close(struct gh_worker *w, struct gh_lsock *ls)
{
    for (struct gh_conn *c = w->conns; c != NULL;) {
        struct gh_conn *next = c->next;
        if (c->ls == ls)
            gh_http_conn_drain(c);
        c = next;
    }
    gh_lsock_close(ls);
}

static void
wmsg_free(struct gh_wmsg *m)
{
    if (m->cfg != NULL)
        gh_conf_unref(m->cfg);
    free(m->add_fds);
    free(m->add_lidx);
    free(m->keep_fds);
    free(m->keep_lidx);
    free(m);
}

/* Swap in one config and reconcile this worker's listening sockets. */
static void
apply_config(struct gh_worker *w, struct gh_wmsg *m)
{
    struct gh_wcfg *wc = gh_wcfg_new(m->cfg);
    if (wc == NULL) {
        gh_log_error("worker %u: out of memory applying a new config; keeping the old one", w->id);
        for (uint32_t i = 0; i < m->n_add; i++)
            close(m->add_fds[i]);
        return;
    }
    wc->users = 1;
    struct gh_wcfg *old = w->cur;
    w->cur = wc;
    if (old != NULL && --old->users == 0)
        gh_wcfg_free(old);
    struct gh_lsock **pp = &w->lsocks;
    while (*pp != NULL) {
        struct gh_lsock *ls = *pp;
        int32_t lidx = -1;
        for (uint32_t i = 0; i < m->n_keep; i++)
            if (m->keep_fds[i] == ls->io.fd)
                lidx = m->keep_lidx[i];
        if (lidx >= 0) {
            ls->idx = lidx;
            pp = &ls->next;
        } else {
            *pp = ls->next;
            lsock_close(w, ls);
        }
    }
    for (uint32_t i = 0; i < m->n_add; i++)
        lsock_add(w, m->add_fds[i], m->add_lidx[i]);
}

static void
worker_apply(struct gh_worker *w)
{
    pthread_mutex_lock(&w->msg_lock);
    struct gh_wmsg *msgs = w->msg_head;
    w->msg_head = w->msg_tail = NULL;
    bool stop = w->msg_stop;
    uint64_t drain_ms = w->msg_drain_ms;
    pthread_mutex_unlock(&w->msg_lock);

    while (msgs != NULL) {
        struct gh_wmsg *m = msgs;
        msgs = m->next;
        if (!w->stopping)
            apply_config(w, m);
        else
            for (uint32_t i = 0; i < m->n_add; i++)
                close(m->add_fds[i]);
        wmsg_free(m);
    }

    if (stop && !w->stopping) {
        w->stopping = true;
        w->drain_deadline = gh_loop_now(w->loop) + drain_ms;
        while (w->lsocks != NULL) {
            struct gh_lsock *ls = w->lsocks;
            w->lsocks = ls->next;
            lsock_close(w, ls);
        }
        for (struct gh_conn *c = w->conns; c != NULL;) {
            struct gh_conn *next = c->next;
            gh_http_conn_drain(c);
            c = next;
        }
        gh_pool_close_all(w);
    }
}

static void
on_wake(void *arg)
{
    worker_apply(arg);
}

static void *
worker_main(void *arg)
{
    struct gh_worker *w = arg;
    char name[16];
    snprintf(name, sizeof(name), "gh-worker-%u", w->id);
    pthread_setname_np(pthread_self(), name);
    worker_apply(w);
    for (;;) {
        if (w->stopping) {
            if (w->nconns == 0)
                break;
            if (gh_loop_now(w->loop) >= w->drain_deadline) {
                gh_log_warn("worker %u: drain timeout, closing %u connection(s)", w->id, w->nconns);
                while (w->conns != NULL)
                    gh_http_conn_close(w->conns);
                break;
            }
        }
        int rc = gh_loop_run_once(w->loop, w->stopping ? 100 : 1000);
        if (rc < 0) {
            gh_log_error("worker %u: event loop: %s", w->id, strerror(-rc));
            break;
        }
        /* the access log also flushes on quiet turns */
        batch_end(w);
    }
    gh_pool_close_all(w);
    batch_end(w);
    gh_loop_run_deferred(w->loop);
    gh_buf_cache_drain(); /* this thread's cached buffers */
    gh_pipe_cache_drain();
    return NULL;
}

static struct gh_worker *
worker_new(uint32_t id)
{
    struct gh_worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->id = id;
    w->loop = gh_loop_new();
    w->pools = calloc(GH_CONF_MAX_POOL_SLOTS, sizeof(*w->pools));
    w->scratch = malloc(GH_BUF_SIZE);
    w->hscratch = malloc(GH_BUF_SIZE);
    if (w->loop == NULL || w->pools == NULL || w->scratch == NULL || w->hscratch == NULL ||
        gh_loop_set_wakeup(w->loop, on_wake, w) != 0)
        return NULL; /* start-up failure: the process exits */
    pthread_mutex_init(&w->msg_lock, NULL);
    w->conn_fl.size = sizeof(struct gh_conn);
    w->conn_fl.max_cached = 4096;
    w->req_fl.size = (uint32_t)gh_http_req_size;
    w->req_fl.max_cached = 1024;
    w->up_fl.size = sizeof(struct gh_upconn);
    w->up_fl.max_cached = 1024;
    w->head_fl.size = GH_SMALL_HEAD;
    w->head_fl.max_cached = 1024;
    w->big_head_fl.size = GH_BIG_HEAD;
    w->big_head_fl.max_cached = 128;
    w->log_fl.size = (uint32_t)gh_http_log_info_size;
    w->log_fl.max_cached = 1024;
    return w;
}

static void
worker_free(struct gh_worker *w)
{
    if (w->cur != NULL && --w->cur->users == 0)
        gh_wcfg_free(w->cur);
    gh_loop_run_deferred(w->loop);
    gh_freelist_drain(&w->conn_fl);
    gh_freelist_drain(&w->req_fl);
    gh_freelist_drain(&w->up_fl);
    gh_freelist_drain(&w->head_fl);
    gh_freelist_drain(&w->big_head_fl);
    gh_freelist_drain(&w->log_fl);
    gh_loop_free(w->loop);
    free(w->pools);
    free(w->scratch);
    free(w->hscratch);
    free(w->alog);
    pthread_mutex_destroy(&w->msg_lock);
    free(w);
}

static void
wake(struct gh_worker *w)
{
    gh_loop_wake(w->loop);
}

/* ---- main side ---- */

/* Sockets for the listeners of cfg (opened, or the current ones for addresses that stay). */
static int
listen_plan(const struct gh_config *cfg, struct gh_listen_plan *plan)
{
    struct gh_listen_spec *specs = calloc(cfg->n_listeners + 1, sizeof(*specs));
    if (specs == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < cfg->n_listeners; i++) {
        const struct gh_listen_conf *lc = &cfg->listeners[i];
        specs[i] = (struct gh_listen_spec){&lc->addr.ss, lc->addr.len, lc->backlog, lc->addr.text};
    }
    int rc = gh_listeners_plan(listeners, specs, cfg->n_listeners, plan);
    free(specs);
    return rc;
}

static int
open_alog(const struct gh_config *cfg)
{
    if (!cfg->access_log_on || cfg->access_log_path == NULL)
        return 2;
    int fd = gh_log_open(cfg->access_log_path);
    if (fd < 0)
        gh_log_error("%s: cannot open access_log '%s': %s", cfg->access_log_at,
                     cfg->access_log_path, strerror(-fd));
    return fd;
}

/* Post cfg with the new listener plan to every worker. */
static void
post(struct gh_config *cfg, const struct gh_listen_plan *plan)
{
    unsigned nn = plan->n;
    for (unsigned t = 0; t < n_workers; t++) {
        struct gh_worker *w = workers[t];
        int *add = calloc(nn + 1, sizeof(int)), *keep = calloc(nn + 1, sizeof(int));
        int32_t *add_l = calloc(nn + 1, sizeof(int32_t)), *keep_l = calloc(nn + 1, sizeof(int32_t));
        GH_ASSERT(add && keep && add_l && keep_l);
        uint32_t na = 0, nk = 0;
        for (unsigned i = 0; i < nn; i++) {
            if (plan->g[i].reused) {
                keep[nk] = plan->g[i].fds[t];
                keep_l[nk++] = (int32_t)i;
            } else {
                add[na] = plan->g[i].fds[t];
                add_l[na++] = (int32_t)i;
            }
        }
        struct gh_wmsg *m = calloc(1, sizeof(*m));
        GH_ASSERT(m != NULL);
        m->cfg = gh_conf_ref(cfg);
        m->add_fds = add;
        m->add_lidx = add_l;
        m->n_add = na;
        m->keep_fds = keep;
        m->keep_lidx = keep_l;
        m->n_keep = nk;
        pthread_mutex_lock(&w->msg_lock);
        if (w->msg_tail != NULL)
            w->msg_tail->next = m;
        else
            w->msg_head = m;
        w->msg_tail = m;
        pthread_mutex_unlock(&w->msg_lock);
        wake(w);
    }
}

int
gh_proxy_start(struct gh_config *cfg, unsigned nthreads)
{
    n_workers = nthreads;
    workers = calloc(nthreads, sizeof(*workers));
    if (workers == NULL)
        return -ENOMEM;
    for (unsigned t = 0; t < nthreads; t++) {
        workers[t] = worker_new(t);
        if (workers[t] == NULL) {
            gh_log_error("cannot create worker %u: %s", t, strerror(errno));
            return -ENOMEM;
        }
    }
    listeners = gh_listeners_new(nthreads);
    struct gh_listen_plan plan;
    int rc = listen_plan(cfg, &plan);
    if (rc != 0)
        return rc;
    int fd = open_alog(cfg);
    if (fd < 0) {
        gh_listeners_drop(listeners, &plan);
        return fd;
    }
    alog_fd = fd;
    post(cfg, &plan);
    gh_listeners_commit(listeners, &plan);
    for (unsigned t = 0; t < nthreads; t++) {
        int e = pthread_create(&workers[t]->thread, NULL, worker_main, workers[t]);
        if (e != 0) {
            gh_log_error("cannot start worker thread: %s", strerror(e));
            return -e;
        }
        workers[t]->started = true;
    }
    return 0;
}

int
gh_proxy_reload(struct gh_config *cfg)
{
    struct gh_listen_plan plan;
    int rc = listen_plan(cfg, &plan);
    if (rc != 0)
        return rc;
    int fd = open_alog(cfg);
    if (fd < 0) {
        gh_listeners_drop(listeners, &plan);
        return fd;
    }
    if (alog_old_fd > 2)
        close(alog_old_fd);
    alog_old_fd = __atomic_exchange_n(&alog_fd, fd, __ATOMIC_ACQ_REL);
    if (alog_old_fd == fd)
        alog_old_fd = -1;
    post(cfg, &plan);
    gh_listeners_commit(listeners, &plan);
    return 0;
}

int
gh_proxy_reopen_logs(const struct gh_config *cfg)
{
    int fd = open_alog(cfg);
    if (fd < 0)
        return fd;
    /* workers may be writing to the current fd right now: it is closed at the next swap */
    if (alog_old_fd > 2)
        close(alog_old_fd);
    alog_old_fd = __atomic_exchange_n(&alog_fd, fd, __ATOMIC_ACQ_REL);
    if (alog_old_fd == fd)
        alog_old_fd = -1;
    return 0;
}

void
gh_proxy_stop(unsigned drain_ms)
{
    for (unsigned t = 0; t < n_workers; t++) {
        struct gh_worker *w = workers[t];
        pthread_mutex_lock(&w->msg_lock);
        w->msg_stop = true;
        w->msg_drain_ms = drain_ms;
        pthread_mutex_unlock(&w->msg_lock);
        wake(w);
    }
    for (unsigned t = 0; t < n_workers; t++) {
        struct gh_worker *w = workers[t];
        if (w == NULL)
            continue;
        if (w->started)
            pthread_join(w->thread, NULL);
        /* pending messages nobody applied */
        while (w->msg_head != NULL) {
            struct gh_wmsg *m = w->msg_head;
            w->msg_head = m->next;
            for (uint32_t i = 0; i < m->n_add; i++)
                close(m->add_fds[i]);
            wmsg_free(m);
        }
        while (w->lsocks != NULL) {
            struct gh_lsock *ls = w->lsocks;
            w->lsocks = ls->next;
            gh_lsock_destroy(ls);
        }
        worker_free(w);
    }
    gh_listeners_free(listeners);
    listeners = NULL;
    free(workers);
    workers = NULL;
    n_workers = 0;
    if (alog_fd > 2)
        close(alog_fd);
    if (alog_old_fd > 2)
        close(alog_old_fd);
    alog_fd = alog_old_fd = -1;
    gh_buf_cache_drain();
}

void
gh_proxy_get_stats(struct gh_proxy_stats *st)
{
    memset(st, 0, sizeof(*st));
    for (unsigned t = 0; t < n_workers; t++) {
        st->accepted += __atomic_load_n(&workers[t]->st_accepted, __ATOMIC_RELAXED);
        st->requests += __atomic_load_n(&workers[t]->st_requests, __ATOMIC_RELAXED);
        st->active_conns += __atomic_load_n(&workers[t]->nconns, __ATOMIC_RELAXED);
    }
}
