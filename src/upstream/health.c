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

#include <arpa/inet.h>

#include "core/log.h"
#include "net/dns.h"
#include "upstream/h1client.h"

/* ---- the registry ---- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gh_health *reg_head;

struct gh_health *
gh_health_get(const char *ups, const char *srv, bool named)
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
            pthread_mutex_init(&h->lock, NULL);
            h->down = named ? GH_HEALTH_NO_ADDRESS : 0;
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
        pthread_mutex_destroy(&h->lock);
        free(h);
    }
    pthread_mutex_unlock(&reg_lock);
}

int
gh_health_verdict(struct gh_health *h, const struct gh_health_check *hc, bool ok, uint64_t now_ms)
{
    bool down = (__atomic_load_n(&h->down, __ATOMIC_RELAXED) & GH_HEALTH_CHECKS_DOWN) != 0;
    if (ok) {
        h->fails = 0;
        if (!down || ++h->passes < hc->rise)
            return 0;
        h->passes = 0;
        __atomic_store_n(&h->up_at, now_ms > 0 ? now_ms : 1, __ATOMIC_RELAXED);
        __atomic_and_fetch(&h->down, ~GH_HEALTH_CHECKS_DOWN, __ATOMIC_RELEASE);
        return 1;
    }
    h->passes = 0;
    if (down || ++h->fails < hc->fall)
        return 0;
    h->fails = 0;
    __atomic_or_fetch(&h->down, GH_HEALTH_CHECKS_DOWN, __ATOMIC_RELEASE);
    return -1;
}

bool
gh_health_addr(struct gh_health *h, uint32_t rr, struct sockaddr_storage *ss, socklen_t *len)
{
    pthread_mutex_lock(&h->lock);
    uint32_t n = h->n_addrs;
    if (n > 0) {
        *ss = h->addrs[rr % n];
        *len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    }
    pthread_mutex_unlock(&h->lock);
    return n > 0;
}

/* Set a named server's addresses (n may be 0: drained). Returns true when they changed. */
static bool
set_addrs(struct gh_health *h, const struct sockaddr_storage *a, uint32_t n)
{
    if (n > GH_HEALTH_MAX_ADDRS)
        n = GH_HEALTH_MAX_ADDRS;
    pthread_mutex_lock(&h->lock);
    bool changed = n != h->n_addrs || (n > 0 && memcmp(h->addrs, a, n * sizeof(*a)) != 0);
    if (n > 0)
        memcpy(h->addrs, a, n * sizeof(*a));
    h->n_addrs = n;
    pthread_mutex_unlock(&h->lock);
    if (n > 0)
        __atomic_and_fetch(&h->down, ~GH_HEALTH_NO_ADDRESS, __ATOMIC_RELEASE);
    else
        __atomic_or_fetch(&h->down, GH_HEALTH_NO_ADDRESS, __ATOMIC_RELEASE);
    return changed;
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
    uint32_t rr; /* a named server: which of its addresses the next check goes to */
};

/* The resolution of one named server (`server NAME:PORT resolve;`). */
struct rjob {
    struct gh_timer timer; /* the next lookup */
    struct gh_health *h;
    const struct gh_upstream_conf *ups;
    const struct gh_upstream_server *srv;
    struct gh_dns *dns; /* its upstream's resolver (hc.dns) */
    struct gh_dns_query *q;
    int last; /* the last lookup's status (enum gh_dns_status), -1: none yet */
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
    struct rjob *rjobs;
    uint32_t n_rjobs;
    struct gh_dns **dns; /* per upstream of cfg: its resolver (NULL: no named server) */
    uint32_t n_dns;
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
    const struct sockaddr_storage *ss = &j->srv->addr.ss;
    socklen_t len = j->srv->addr.len;
    struct sockaddr_storage named;
    struct gh_peer *peer = j->peer;
    if (j->srv->host != NULL) { /* a named server: one of its addresses in turn */
        if (!gh_health_addr(j->h, j->rr++, &named, &len)) {
            gh_timer_after(hc.loop, &j->timer, c->interval_ms); /* none yet: nothing to check */
            return;
        }
        ss = &named;
        peer = gh_peer_get(&hc.ctx, ss, len, j->srv->tls != NULL ? j->srv->tls->xprt_id : 0);
    }
    int rc = peer == NULL ? -ENOMEM
                          : gh_upconn_open(&hc.ctx, peer, ss, len, j->srv->tls, true, &p,
                                           &check_ops, j, &j->u);
    if (peer != j->peer)
        gh_peer_put(&hc.ctx, peer); /* the connection holds its own reference */
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
    j->h = gh_health_get(u->name, s->addr.text, s->host != NULL);
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

/* ---- named servers ---- */

/* a's addresses with the server's port, into v; returns how many. */
static uint32_t
with_port(const struct gh_dns_answer *a, uint16_t port, struct sockaddr_storage *v)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < a->n && n < GH_HEALTH_MAX_ADDRS; i++) {
        v[n] = a->addr[i];
        if (v[n].ss_family == AF_INET)
            ((struct sockaddr_in *)&v[n])->sin_port = htons(port);
        else
            ((struct sockaddr_in6 *)&v[n])->sin6_port = htons(port);
        n++;
    }
    return n;
}

static void
log_addrs(const struct rjob *j, const struct sockaddr_storage *v, uint32_t n, uint32_t ttl_s)
{
    char first[INET6_ADDRSTRLEN] = "";
    const void *ip = v[0].ss_family == AF_INET
                         ? (const void *)&((const struct sockaddr_in *)&v[0])->sin_addr
                         : (const void *)&((const struct sockaddr_in6 *)&v[0])->sin6_addr;
    inet_ntop(v[0].ss_family, ip, first, sizeof(first));
    gh_log_info("upstream %s: %s resolves to %u address%s (%s first; TTL %us)", j->ups->name,
                j->srv->addr.text, n, n == 1 ? "" : "es", first, ttl_s);
}

/* A lookup of j's name ended with a: publish the addresses (or drain on a missing name), and
 * plan the next lookup for when the answer's TTL runs out. */
static void
resolved(struct rjob *j, const struct gh_dns_answer *a)
{
    uint32_t next_ms = 1000;
    if (a->status == GH_DNS_OK) {
        struct sockaddr_storage v[GH_HEALTH_MAX_ADDRS];
        uint32_t n = with_port(a, j->srv->port, v);
        if (set_addrs(j->h, v, n) || j->last != GH_DNS_OK)
            log_addrs(j, v, n, a->ttl_s);
        next_ms = a->ttl_s > 1 ? a->ttl_s * 1000 : 1000;
    } else if (a->status == GH_DNS_NOTFOUND || a->status == GH_DNS_BADNAME) {
        if (set_addrs(j->h, NULL, 0) || j->last != (int)a->status)
            gh_log_warn("upstream %s: %s does not resolve (%s): no new request goes to it",
                        j->ups->name, j->srv->addr.text, gh_dns_status_str(a->status));
    } else if (j->last != (int)a->status) {
        gh_log_warn("upstream %s: cannot resolve %s (%s); its addresses are kept", j->ups->name,
                    j->srv->addr.text, gh_dns_status_str(a->status));
    }
    j->last = (int)a->status;
    gh_timer_after(hc.loop, &j->timer, next_ms + rnd(100));
}

static void
on_dns(void *arg, const struct gh_dns_answer *a)
{
    struct rjob *j = arg;
    j->q = NULL;
    resolved(j, a);
}

static void
on_rtimer(struct gh_timer *t)
{
    struct rjob *j = gh_container_of(t, struct rjob, timer);
    if (j->q != NULL)
        return;
    const struct gh_dns_answer *hit;
    int rc = gh_dns_resolve(j->dns, j->srv->host, strlen(j->srv->host), on_dns, j, &j->q, &hit);
    if (rc == 0)
        resolved(j, hit);
    else if (rc < 0)
        gh_timer_after(hc.loop, &j->timer, 1000);
}

static void
rjobs_free(struct rjob *rjobs, uint32_t n, struct gh_dns **dns, uint32_t n_dns)
{
    for (uint32_t i = 0; i < n; i++) {
        gh_timer_stop(hc.loop, &rjobs[i].timer);
        if (rjobs[i].q != NULL)
            gh_dns_cancel(rjobs[i].q);
        gh_health_put(rjobs[i].h);
    }
    free(rjobs);
    for (uint32_t i = 0; dns != NULL && i < n_dns; i++)
        gh_dns_free(dns[i]);
    free(dns);
}

/* The resolver of upstream u, for its named servers. NULL after logging why. */
static struct gh_dns *
ups_resolver(const struct gh_upstream_conf *u)
{
    struct gh_dns_opts o = {.servers = u->resolver,
                            .timeout_ms =
                                u->resolver_timeout_ms > 0 ? u->resolver_timeout_ms / 2 : 0,
                            .negative_ttl_s = 1};
    char err[256];
    struct gh_dns *d = gh_dns_new(hc.loop, &o, err, sizeof(err));
    if (d == NULL)
        gh_log_error("upstream %s: cannot set up its resolver: %s", u->name, err);
    return d;
}

/* The named servers of cfg into *out (their lookups start at once). Returns the count, or -1. */
static int
rjobs_build(const struct gh_config *cfg, struct rjob **out, struct gh_dns ***dns_out)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < cfg->n_upstreams; i++)
        for (uint32_t s = 0; s < cfg->upstreams[i].n_servers; s++)
            n += cfg->upstreams[i].servers[s].host != NULL;
    struct rjob *r = calloc(n + 1, sizeof(*r));
    struct gh_dns **dns = calloc(cfg->n_upstreams + 1, sizeof(*dns));
    uint32_t k = 0;
    for (uint32_t i = 0; r != NULL && dns != NULL && i < cfg->n_upstreams; i++) {
        const struct gh_upstream_conf *u = &cfg->upstreams[i];
        for (uint32_t s = 0; s < u->n_servers; s++) {
            if (u->servers[s].host == NULL)
                continue;
            if (dns[i] == NULL && (dns[i] = ups_resolver(u)) == NULL)
                break;
            struct rjob *j = &r[k++];
            *j = (struct rjob){
                .timer.cb = on_rtimer, .ups = u, .srv = &u->servers[s], .dns = dns[i], .last = -1};
            j->h = gh_health_get(u->name, u->servers[s].addr.text, true);
            gh_timer_after(hc.loop, &j->timer, 0);
        }
    }
    if (r == NULL || dns == NULL || k != n) {
        rjobs_free(r, k, dns, cfg->n_upstreams);
        return -1;
    }
    *out = r;
    *dns_out = dns;
    return (int)n;
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
    struct rjob *rjobs = NULL;
    struct gh_dns **dns = NULL;
    int nr = jobs != NULL ? rjobs_build(cfg, &rjobs, &dns) : -1;
    if (nr < 0) {
    fail:
        jobs_free(jobs, k);
        gh_log_error("health checks: out of memory; the previous checks go on");
        gh_conf_unref(cfg);
        return;
    }
    jobs_free(hc.jobs, hc.n_jobs);
    rjobs_free(hc.rjobs, hc.n_rjobs, hc.dns, hc.n_dns);
    if (hc.cfg != NULL)
        gh_conf_unref(hc.cfg);
    hc.jobs = jobs;
    hc.n_jobs = n;
    hc.rjobs = rjobs;
    hc.n_rjobs = (uint32_t)nr;
    hc.dns = dns;
    hc.n_dns = cfg->n_upstreams;
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
    rjobs_free(hc.rjobs, hc.n_rjobs, hc.dns, hc.n_dns);
    hc.rjobs = NULL;
    hc.dns = NULL;
    hc.n_rjobs = hc.n_dns = 0;
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
    for (uint32_t i = 0; i < cfg->n_upstreams && !any; i++) {
        const struct gh_upstream_conf *u = &cfg->upstreams[i];
        any = u->health != NULL;
        for (uint32_t s = 0; s < u->n_servers && !any; s++)
            any = u->servers[s].host != NULL;
    }
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
