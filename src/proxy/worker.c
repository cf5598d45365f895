/*
 * worker.c - worker threads, config swaps and draining.
 *
 * The main thread owns the listener table (net/listener.h) and posts
 * messages; each worker owns its event loop, its sockets once handed over,
 * and everything it allocates. Workers know their client connections only as
 * sessions of a protocol (struct gh_proto).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "net/listener.h"
#include "net/pipe.h"
#include "proxy/accesslog.h"
#include "cache/store.h"
#include "proxy/cache.h"
#include "proxy/forward.h"
#include "proxy/proxy.h"
#include "proxy/socks5.h"
#include "proxy/worker.h"
#include "upstream/health.h"

/* Idle origin connections closed when an accept finds no file descriptor. */
#define FD_TRIM 64

/* Idle protocol objects a thread keeps for reuse. */
#define CACHED_CONNS 4096
#define CACHED_REQUESTS 1024
#define CACHED_HEADS 1024
#define CACHED_BIG_HEADS 128
/* How long one loop turn waits at most (the drain check runs this often while stopping). */
#define TURN_MS 1000
#define TURN_STOPPING_MS 100

/* ---- process-wide state (main thread) ---- */

static struct gh_worker **workers;
static unsigned n_workers;
static struct gh_listeners *listeners;

/* ---- worker side ---- */

void *
gh_worker_head_get(struct gh_worker *w, size_t n, uint32_t *cap)
{
    if (n <= GH_SMALL_HEAD) {
        *cap = GH_SMALL_HEAD;
        return gh_freelist_get(&w->head_fl);
    }
    if (n <= GH_BIG_HEAD) {
        *cap = GH_BIG_HEAD;
        return gh_freelist_get(&w->big_head_fl);
    }
    *cap = (uint32_t)n;
    return malloc(n);
}

void
gh_worker_head_put(struct gh_worker *w, void *p, uint32_t cap)
{
    if (p == NULL)
        return;
    if (cap == GH_SMALL_HEAD)
        gh_freelist_put(&w->head_fl, p);
    else if (cap == GH_BIG_HEAD)
        gh_freelist_put(&w->big_head_fl, p);
    else
        free(p);
}

void
gh_worker_free_obj(void *freelist, void *obj)
{
    gh_freelist_put(freelist, obj);
}

void
gh_worker_session_add(struct gh_worker *w, struct gh_session *s, struct gh_lsock *ls,
                      const struct gh_proto *proto)
{
    s->ls = ls;
    s->proto = proto;
    s->prev = NULL;
    s->next = w->sessions;
    if (w->sessions != NULL)
        w->sessions->prev = s;
    w->sessions = s;
    w->n_sessions++;
    gh_lsock_conn_opened(ls);
}

void
gh_worker_session_remove(struct gh_worker *w, struct gh_session *s)
{
    if (s->ls == NULL)
        return;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        w->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    w->n_sessions--;
    struct gh_lsock *ls = s->ls;
    s->ls = NULL;
    gh_lsock_conn_closed(ls);
}

static struct gh_wcfg *
wcfg_new(struct gh_worker *w, struct gh_config *cfg)
{
    struct gh_wcfg *wc = calloc(1, sizeof(*wc));
    if (wc == NULL)
        return NULL;
    wc->ups = gh_ups_gen_new(&w->ups, cfg);
    if (wc->ups == NULL) {
        free(wc);
        return NULL;
    }
    wc->cfg = gh_conf_ref(cfg);
    return wc;
}

static void
wcfg_free(struct gh_wcfg *wc)
{
    gh_ups_gen_free(wc->ups);
    gh_conf_unref(wc->cfg);
    free(wc);
}

void
gh_wcfg_drop(struct gh_worker *w, struct gh_wcfg *wc)
{
    if (--wc->users == 0 && wc != w->cur)
        wcfg_free(wc);
}

static void
on_conn(struct gh_lsock *ls, int fd, const struct sockaddr_storage *peer)
{
    struct gh_worker *w = ls->data;
    w->st_accepted++;
    /* HTTP/1.1 (over TLS or not), or SOCKS5 on a forward proxy's socks5 address */
    const struct gh_config *cfg = w->cur->cfg;
    if (ls->idx >= 0 && (uint32_t)ls->idx < cfg->n_listeners && cfg->listeners[ls->idx].socks5)
        gh_socks5_proto.accept(w, ls, fd, peer);
    else
        gh_h1_proto.accept(w, ls, fd, peer);
}

/* Accept found no file descriptor: idle origin connections give theirs (counted). */
static uint32_t
on_fd_shortage(struct gh_lsock *ls)
{
    struct gh_worker *w = ls->data;
    w->st_fd_short++;
    uint32_t n = gh_upstream_trim_idle(&w->ups, FD_TRIM);
    if (n > 0)
        gh_log_warn("accept: out of file descriptors: closed %u idle origin connection(s)", n);
    return n;
}

static void
lsock_add(struct gh_worker *w, int fd, int32_t idx)
{
    struct gh_lsock *ls = gh_lsock_open(w->loop, fd, idx, on_conn, w);
    if (ls == NULL)
        return;
    ls->on_fd_shortage = on_fd_shortage;
    ls->next = w->lsocks;
    w->lsocks = ls;
}

/* Close a listening socket of this worker; connections accepted on it finish. */
static void
lsock_close(struct gh_worker *w, struct gh_lsock *ls)
{
    for (struct gh_session *s = w->sessions; s != NULL;) {
        struct gh_session *next = s->next;
        if (s->ls == ls)
            s->proto->drain(s);
        s = next;
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

static void
close_fds(const int *fds, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        close(fds[i]);
}

/* Swap in one config and reconcile this worker's listening sockets. */
static void
apply_config(struct gh_worker *w, struct gh_wmsg *m)
{
    struct gh_wcfg *wc = wcfg_new(w, m->cfg);
    if (wc == NULL) {
        gh_log_error("worker %u: out of memory applying a new config; keeping the old one", w->id);
        close_fds(m->add_fds, m->n_add);
        return;
    }
    wc->users = 1;
    struct gh_wcfg *old = w->cur;
    w->cur = wc;
    if (old != NULL)
        gh_wcfg_drop(w, old);
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
            close_fds(m->add_fds, m->n_add);
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
        for (struct gh_session *s = w->sessions; s != NULL;) {
            struct gh_session *next = s->next;
            s->proto->drain(s);
            s = next;
        }
        gh_upstream_ctx_stop(&w->ups);
    }
}

static void
on_wake(void *arg)
{
    worker_apply(arg);
    gh_cache_wake_waiters(); /* requests waiting for an object another thread fills */
}

void
gh_worker_wake_all(void)
{
    unsigned n = __atomic_load_n(&n_workers, __ATOMIC_ACQUIRE);
    for (unsigned t = 0; t < n; t++) {
        struct gh_worker *w = __atomic_load_n(&workers[t], __ATOMIC_ACQUIRE);
        if (w != NULL && w->loop != NULL)
            gh_loop_wake(w->loop);
    }
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
            if (w->n_sessions == 0)
                break;
            if (gh_loop_now(w->loop) >= w->drain_deadline) {
                gh_log_warn("worker %u: drain timeout, closing %u connection(s)", w->id,
                            w->n_sessions);
                while (w->sessions != NULL)
                    w->sessions->proto->close(w->sessions);
                break;
            }
        }
        int rc = gh_loop_run_once(w->loop, w->stopping ? TURN_STOPPING_MS : TURN_MS);
        if (rc < 0) {
            gh_log_error("worker %u: event loop: %s", w->id, strerror(-rc));
            break;
        }
        /* the access log also flushes on quiet turns */
        gh_alog_flush(w);
    }
    while (w->sessions != NULL)
        w->sessions->proto->close(w->sessions);
    gh_upstream_ctx_stop(&w->ups);
    gh_alog_flush(w);
    gh_loop_run_deferred(w->loop);
    if (w->cur != NULL) {
        struct gh_wcfg *cur = w->cur;
        w->cur = NULL;
        if (--cur->users == 0)
            wcfg_free(cur);
    }
    gh_upstream_ctx_fini(&w->ups);
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
    w->scratch = malloc(GH_BUF_SIZE);
    w->hscratch = malloc(GH_BUF_SIZE);
    w->uscratch = malloc(GH_BUF_SIZE);
    w->rscratch = malloc(GH_REWRITE_SCRATCH);
    if (w->loop == NULL || w->scratch == NULL || w->hscratch == NULL || w->uscratch == NULL ||
        w->rscratch == NULL || gh_loop_set_wakeup(w->loop, on_wake, w) != 0)
        return NULL; /* start-up failure: the process exits */
    pthread_mutex_init(&w->msg_lock, NULL);
    gh_upstream_ctx_init(&w->ups, w->loop, w->scratch);
    w->conn_fl =
        (struct gh_freelist){.size = (uint32_t)gh_h1_proto.conn_size, .max_cached = CACHED_CONNS};
    w->req_fl = (struct gh_freelist){.size = (uint32_t)gh_h1_proto.request_size,
                                     .max_cached = CACHED_REQUESTS};
    w->head_fl = (struct gh_freelist){.size = GH_SMALL_HEAD, .max_cached = CACHED_HEADS};
    w->big_head_fl = (struct gh_freelist){.size = GH_BIG_HEAD, .max_cached = CACHED_BIG_HEADS};
    return w;
}

static void
worker_free(struct gh_worker *w)
{
    gh_forward_worker_free(w);
    gh_loop_run_deferred(w->loop);
    gh_freelist_drain(&w->conn_fl);
    gh_freelist_drain(&w->req_fl);
    gh_freelist_drain(&w->head_fl);
    gh_freelist_drain(&w->big_head_fl);
    gh_loop_free(w->loop);
    free(w->scratch);
    free(w->hscratch);
    free(w->uscratch);
    free(w->rscratch);
    free(w->alog);
    pthread_mutex_destroy(&w->msg_lock);
    free(w);
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
        specs[i] = (struct gh_listen_spec){&lc->addr.ss, lc->addr.len, lc->backlog,
                                           lc->defer_accept_s, lc->addr.text};
    }
    int rc = gh_listeners_plan(listeners, specs, cfg->n_listeners, plan);
    free(specs);
    return rc;
}

/* Post cfg with the new listener plan to every worker. */
static void
post(struct gh_config *cfg, const struct gh_listen_plan *plan)
{
    unsigned nn = plan->n;
    for (unsigned t = 0; t < n_workers; t++) {
        struct gh_worker *w = workers[t];
        struct gh_wmsg *m = gh_xcalloc(1, sizeof(*m));
        m->add_fds = gh_xcalloc(nn + 1, sizeof(int));
        m->keep_fds = gh_xcalloc(nn + 1, sizeof(int));
        m->add_lidx = gh_xcalloc(nn + 1, sizeof(int32_t));
        m->keep_lidx = gh_xcalloc(nn + 1, sizeof(int32_t));
        for (unsigned i = 0; i < nn; i++) {
            if (plan->g[i].reused) {
                m->keep_fds[m->n_keep] = plan->g[i].fds[t];
                m->keep_lidx[m->n_keep++] = (int32_t)i;
            } else {
                m->add_fds[m->n_add] = plan->g[i].fds[t];
                m->add_lidx[m->n_add++] = (int32_t)i;
            }
        }
        m->cfg = gh_conf_ref(cfg);
        pthread_mutex_lock(&w->msg_lock);
        if (w->msg_tail != NULL)
            w->msg_tail->next = m;
        else
            w->msg_head = m;
        w->msg_tail = m;
        pthread_mutex_unlock(&w->msg_lock);
        gh_loop_wake(w->loop);
    }
}

int
gh_proxy_start(struct gh_config *cfg, unsigned nthreads)
{
    n_workers = nthreads;
    workers = calloc(nthreads, sizeof(*workers));
    if (workers == NULL)
        return -ENOMEM;
    gh_cache_store_on_progress(gh_worker_wake_all); /* readers waiting on other threads' fills */
    for (unsigned t = 0; t < nthreads; t++) {
        workers[t] = worker_new(t);
        if (workers[t] == NULL) {
            gh_log_error("cannot create worker %u: %s", t, strerror(errno));
            return -ENOMEM;
        }
    }
    listeners = gh_listeners_new(nthreads);
    int rc = gh_proxy_reload(cfg); /* the first config is a reload from nothing */
    if (rc != 0)
        return rc;
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
    rc = gh_alog_open(cfg);
    if (rc != 0) {
        gh_listeners_drop(listeners, &plan);
        return rc;
    }
    post(cfg, &plan);
    gh_listeners_commit(listeners, &plan);
    gh_health_apply(cfg); /* the active checks of the new config (upstream/health.h) */
    return 0;
}

int
gh_proxy_reopen_logs(const struct gh_config *cfg)
{
    return gh_alog_open(cfg);
}

void
gh_proxy_stop(unsigned drain_ms, struct gh_proxy_stats *st)
{
    if (st != NULL)
        memset(st, 0, sizeof(*st));
    gh_health_stop();
    for (unsigned t = 0; t < n_workers; t++) {
        struct gh_worker *w = workers[t];
        if (w == NULL)
            continue;
        pthread_mutex_lock(&w->msg_lock);
        w->msg_stop = true;
        w->msg_drain_ms = drain_ms;
        pthread_mutex_unlock(&w->msg_lock);
        gh_loop_wake(w->loop);
    }
    for (unsigned t = 0; t < n_workers; t++) {
        struct gh_worker *w = workers[t];
        if (w == NULL)
            continue;
        if (w->started)
            pthread_join(w->thread, NULL);
        if (st != NULL) {
            st->accepted += w->st_accepted;
            st->requests += w->st_requests;
            st->cut += w->st_cut;
            st->no_server += w->st_no_server;
#define GH_PC_SUM(name, text) st->name += w->st_##name;
            GH_PROTECT_COUNTERS(GH_PC_SUM)
#undef GH_PC_SUM
        }
        /* pending messages nobody applied */
        while (w->msg_head != NULL) {
            struct gh_wmsg *m = w->msg_head;
            w->msg_head = m->next;
            close_fds(m->add_fds, m->n_add);
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
    gh_alog_close();
    gh_buf_cache_drain();
}

void
gh_proxy_get_stats(struct gh_proxy_stats *st)
{
    memset(st, 0, sizeof(*st));
    for (unsigned t = 0; t < n_workers; t++) {
        st->accepted += __atomic_load_n(&workers[t]->st_accepted, __ATOMIC_RELAXED);
        st->requests += __atomic_load_n(&workers[t]->st_requests, __ATOMIC_RELAXED);
        st->active_conns += __atomic_load_n(&workers[t]->n_sessions, __ATOMIC_RELAXED);
        st->cut += __atomic_load_n(&workers[t]->st_cut, __ATOMIC_RELAXED);
        st->no_server += __atomic_load_n(&workers[t]->st_no_server, __ATOMIC_RELAXED);
#define GH_PC_LOAD(name, text)                                                                     \
    st->name += __atomic_load_n(&workers[t]->st_##name, __ATOMIC_RELAXED);
        GH_PROTECT_COUNTERS(GH_PC_LOAD)
#undef GH_PC_LOAD
    }
}
