/*
 * health.c - the shared health registry and the checker thread (see health.h).
 *
 * The checker owns its loop, its upstream context (peers, connections, read buffer) and its
 * jobs: one per checked server of the current config, each a timer and at most one
 * connection. A new config arrives by a message (the config's reference under a lock, then a
 * wake-up); the checker builds the new jobs first (taking the health states they share with
 * the old ones), then drops the old jobs, so a state never goes away across a reload.
 */
#include "upstream/health.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "upstream/h1client.h"

/* ---- the registry ---- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gh_health *reg_head;

struct gh_health *
gh_health_get(const char *ups, const char *srv)
{
    size_t len = strlen(ups) + 1 + strlen(srv);
    char *key = malloc(len + 1);
    if (key == NULL)
        return NULL;
    snprintf(key, len + 1, "%s %s", ups, srv);
    pthread_mutex_lock(&reg_lock);
    struct gh_health *h = reg_head;
    while (h != NULL && strcmp(h->key, key) != 0)
        h = h->next;
    if (h == NULL) {
        h = calloc(1, sizeof(*h) + len + 1);
        if (h != NULL) {
            memcpy(h->key, key, len + 1);
            h->next = reg_head;
            reg_head = h;
        }
    }
    if (h != NULL)
        h->refs++;
    pthread_mutex_unlock(&reg_lock);
    free(key);
    return h;
}

void
gh_health_put(struct gh_health *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&reg_lock);
    if (--h->refs == 0) {
        struct gh_health **pp = &reg_head;
        while (*pp != h)
            pp = &(*pp)->next;
        *pp = h->next;
        free(h);
    }
    pthread_mutex_unlock(&reg_lock);
}

int
gh_health_verdict(struct gh_health *h, const struct gh_health_check *hc, bool ok, uint64_t now_ms)
{
    bool down = gh_health_down(h);
    if (ok) {
        h->fails = 0;
        if (!down || ++h->passes < hc->rise)
            return 0;
        h->passes = 0;
        __atomic_store_n(&h->up_at, now_ms > 0 ? now_ms : 1, __ATOMIC_RELAXED);
        __atomic_store_n(&h->down, 0, __ATOMIC_RELEASE);
        return 1;
    }
    h->passes = 0;
    if (down || ++h->fails < hc->fall)
        return 0;
    h->fails = 0;
    __atomic_store_n(&h->down, 1, __ATOMIC_RELEASE);
    return -1;
}

/* ---- the checker ---- */

struct job {
    struct gh_timer timer; /* the next check, or the running check's deadline */
    struct gh_health *h;
    const struct gh_upstream_conf *ups;
    const struct gh_upstream_server *srv;
    struct gh_peer *peer;
    struct gh_upconn *u; /* the running check's connection */
    char *head;
    size_t head_len;
};

static struct {
    pthread_mutex_t lock;
    struct gh_config *pending; /* the next config (a reference), under lock */
    bool stop;                 /* under lock */
    bool started;
    pthread_t thread;
    struct gh_loop *loop;
    /* the checker thread's own */
    struct gh_upstream_ctx ctx;
    char *scratch;
    struct gh_config *cfg;
    struct job *jobs;
    uint32_t n_jobs;
    uint64_t rng;
} hc = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint32_t
rnd(uint32_t below)
{
    hc.rng = hc.rng * 6364136223846793005ull + 1442695040888963407ull;
    return below > 0 ? (uint32_t)((hc.rng >> 33) % below) : 0;
}

static void check_start(struct job *j);

/* The check is over: close its connection, note the result, and plan the next one. */
static void
check_end(struct job *j, bool ok, const char *why, int status)
{
    if (j->u != NULL) {
        gh_upconn_close(j->u);
        j->u = NULL;
    }
    const struct gh_health_check *c = j->ups->health;
    int change = gh_health_verdict(j->h, c, ok, gh_loop_now(hc.loop));
    if (change > 0)
        gh_log_warn("upstream %s: server %s is up (%u check%s passed)", j->ups->name,
                    j->srv->addr.text, c->rise, c->rise == 1 ? "" : "s");
    else if (change < 0 && status != 0)
        gh_log_warn("upstream %s: server %s is down (%u check%s failed; the last answered %d)",
                    j->ups->name, j->srv->addr.text, c->fall, c->fall == 1 ? "" : "s", status);
    else if (change < 0)
        gh_log_warn("upstream %s: server %s is down (%u check%s failed; the last: %s)",
                    j->ups->name, j->srv->addr.text, c->fall, c->fall == 1 ? "" : "s", why);
    uint32_t jitter = c->interval_ms / 10;
    gh_timer_after(hc.loop, &j->timer, c->interval_ms - jitter + rnd(2 * jitter + 1));
}

static ssize_t
sink_head(void *ctx, const struct gh_h1_response *rs, enum gh_h1_body body, bool *reframe)
{
    struct job *j = ctx;
    const struct gh_health_check *c = j->ups->health;
    bool ok = rs->status >= c->expect_lo && rs->status <= c->expect_hi;
    check_end(j, ok, "unexpected status", rs->status);
    return -1; /* the head is all a check needs */
}

static int
sink_interim(void *ctx, const struct gh_h1_response *rs)
{
    return 0;
}

static int
sink_body(void *ctx, const struct iovec *spans, int n, bool done)
{
    return 0;
}

static const struct gh_upconn_sink sink = {sink_head, sink_interim, sink_body};

static void
on_event(struct gh_upconn *u)
{
    struct job *j = u->owner;
    if (u->state == GH_UPCONN_CONNECTING) {
        check_end(j, false, strerror(gh_upconn_connect_result(u)), 0);
        return;
    }
    int rc = gh_upconn_send(u);
    if (rc < 0) {
        check_end(j, false, strerror(-rc), 0);
        return;
    }
    if (rc == GH_PUMP_BLOCKED)
        gh_upconn_watch_writes(u);
    while (gh_upconn_has_input(u)) {
        rc = gh_upconn_recv(u, &sink, j);
        if (rc == GH_PUMP_ENDED)
            return;
        if (rc == GH_BAD) {
            check_end(j, false, u->err.reason, 0);
            return;
        }
        if (rc == GH_PUMP_BLOCKED)
            break;
    }
}

static void
on_timeout(struct gh_upconn *u, enum gh_upconn_timer which)
{
    check_end(u->owner, false, which == GH_UPCONN_T_CONNECT ? "connect timed out" : "timed out", 0);
}

static const struct gh_upconn_ops check_ops = {on_event, on_timeout};

static void
check_start(struct job *j)
{
    const struct gh_health_check *c = j->ups->health;
    struct gh_upconn_params p = {.connect_ms = c->timeout_ms,
                                 .first_byte_ms = c->timeout_ms,
                                 .read_ms = c->timeout_ms,
                                 .req_body = GH_H1_BODY_NONE};
    int rc = gh_upconn_open(&hc.ctx, j->peer, &j->srv->addr.ss, j->srv->addr.len, j->srv->tls, true,
                            &p, &check_ops, j, &j->u);
    if (rc != 0) {
        j->u = NULL;
        check_end(j, false, strerror(-rc), 0);
        return;
    }
    gh_upconn_start(j->u, j->head, j->head_len, false);
}

static void
on_timer(struct gh_timer *t)
{
    struct job *j = gh_container_of(t, struct job, timer);
    if (j->u == NULL)
        check_start(j);
}

static void
jobs_free(struct job *jobs, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        struct job *j = &jobs[i];
        gh_timer_stop(hc.loop, &j->timer);
        if (j->u != NULL)
            gh_upconn_close(j->u);
        gh_peer_put(&hc.ctx, j->peer);
        gh_health_put(j->h);
        free(j->head);
    }
    free(jobs);
}

/* Set up job j for server s of upstream u. Returns 0 or -ENOMEM. */
static int
job_init(struct job *j, const struct gh_upstream_conf *u, const struct gh_upstream_server *s)
{
    const struct gh_health_check *c = u->health;
    j->timer.cb = on_timer;
    j->ups = u;
    j->srv = s;
    j->h = gh_health_get(u->name, s->addr.text);
    j->peer = gh_peer_get(&hc.ctx, &s->addr.ss, s->addr.len, s->tls != NULL ? s->tls->xprt_id : 0);
    const char *host = c->host != NULL ? c->host : s->addr.text;
    size_t cap = strlen(c->path) + strlen(host) + 128;
    j->head = malloc(cap);
    if (j->h == NULL || j->peer == NULL || j->head == NULL)
        return -ENOMEM;
    int n = snprintf(j->head, cap,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gatehouse-health-check\r\n"
                     "Connection: close\r\n\r\n",
                     c->path, host);
    j->head_len = (size_t)n;
    /* the first checks spread over one interval */
    gh_timer_after(hc.loop, &j->timer, rnd(c->interval_ms));
    return 0;
}

/* Replace the jobs with those of cfg (taking its reference). */
static void
take_config(struct gh_config *cfg)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < cfg->n_upstreams; i++)
        if (cfg->upstreams[i].health != NULL)
            n += cfg->upstreams[i].n_servers;
    struct job *jobs = calloc(n + 1, sizeof(*jobs));
    uint32_t k = 0;
    for (uint32_t i = 0; jobs != NULL && i < cfg->n_upstreams; i++) {
        const struct gh_upstream_conf *u = &cfg->upstreams[i];
        for (uint32_t s = 0; u->health != NULL && s < u->n_servers; s++)
            if (job_init(&jobs[k++], u, &u->servers[s]) != 0)
                goto fail;
    }
    if (jobs == NULL) {
    fail:
        jobs_free(jobs, k);
        gh_log_error("health checks: out of memory; the previous checks go on");
        gh_conf_unref(cfg);
        return;
    }
    jobs_free(hc.jobs, hc.n_jobs);
    if (hc.cfg != NULL)
        gh_conf_unref(hc.cfg);
    hc.jobs = jobs;
    hc.n_jobs = n;
    hc.cfg = cfg;
}

static void
on_wake(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&hc.lock);
    struct gh_config *cfg = hc.pending;
    hc.pending = NULL;
    pthread_mutex_unlock(&hc.lock);
    if (cfg != NULL)
        take_config(cfg);
}

static void *
checker_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "gh-health");
    for (;;) {
        pthread_mutex_lock(&hc.lock);
        bool stop = hc.stop;
        pthread_mutex_unlock(&hc.lock);
        if (stop)
            break;
        int rc = gh_loop_run_once(hc.loop, 1000);
        if (rc < 0) {
            gh_log_error("health checks: event loop: %s", strerror(-rc));
            break;
        }
    }
    jobs_free(hc.jobs, hc.n_jobs);
    hc.jobs = NULL;
    hc.n_jobs = 0;
    gh_upstream_ctx_fini(&hc.ctx);
    gh_loop_run_deferred(hc.loop);
    gh_buf_cache_drain();
    return NULL;
}

static int
checker_start(void)
{
    hc.loop = gh_loop_new();
    hc.scratch = malloc(GH_BUF_SIZE);
    if (hc.loop == NULL || hc.scratch == NULL || gh_loop_set_wakeup(hc.loop, on_wake, NULL) != 0)
        return -ENOMEM;
    hc.rng = gh_loop_now(hc.loop) * 0x9e3779b97f4a7c15ull + 1;
    gh_upstream_ctx_init(&hc.ctx, hc.loop, hc.scratch);
    int e = pthread_create(&hc.thread, NULL, checker_main, NULL);
    if (e != 0)
        return -e;
    hc.started = true;
    return 0;
}

int
gh_health_apply(struct gh_config *cfg)
{
    bool any = false;
    for (uint32_t i = 0; i < cfg->n_upstreams && !any; i++)
        any = cfg->upstreams[i].health != NULL;
    if (!hc.started && !any)
        return 0;
    if (!hc.started) {
        int rc = checker_start();
        if (rc != 0) {
            gh_log_error("cannot start the health checker: %s", strerror(-rc));
            return rc;
        }
    }
    pthread_mutex_lock(&hc.lock);
    if (hc.pending != NULL)
        gh_conf_unref(hc.pending);
    hc.pending = gh_conf_ref(cfg);
    pthread_mutex_unlock(&hc.lock);
    gh_loop_wake(hc.loop);
    return 0;
}

void
gh_health_stop(void)
{
    if (hc.loop == NULL)
        return;
    pthread_mutex_lock(&hc.lock);
    hc.stop = true;
    pthread_mutex_unlock(&hc.lock);
    gh_loop_wake(hc.loop);
    if (hc.started)
        pthread_join(hc.thread, NULL);
    if (hc.pending != NULL)
        gh_conf_unref(hc.pending);
    if (hc.cfg != NULL)
        gh_conf_unref(hc.cfg);
    gh_loop_free(hc.loop);
    free(hc.scratch);
    hc.pending = hc.cfg = NULL;
    hc.loop = NULL;
    hc.scratch = NULL;
    hc.started = false;
    hc.stop = false;
}
