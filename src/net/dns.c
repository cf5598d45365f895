/*
 * dns.c - the c-ares resolver of one thread: sockets on the loop, retries on
 * a timer, one query per name however many wait for it, and the TTL cache.
 */
#include "net/dns.h"

#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/common.h"

#define DNS_SOCKS 16        /* sockets c-ares keeps open at once (one per server and family) */
#define DNS_BUCKETS_MIN 256 /* hash buckets (power of two) */

struct gh_dns_query { /* one waiter for a pending name */
    gh_dns_cb cb;
    void *arg;
    struct gh_dns_query *next;
    struct dns_entry *e;
};

struct dns_entry {
    struct dns_entry *hnext;         /* hash chain */
    struct dns_entry *older, *newer; /* insertion order, for eviction */
    uint32_t hash;
    uint64_t expires;             /* loop ms; 0 while pending */
    struct gh_dns_query *waiters; /* while pending */
    bool pending;
    struct gh_dns *d;
    struct gh_dns_answer a;
    char name[];
};

struct dns_sock {
    struct gh_io io;
    struct gh_dns *d;
};

struct gh_dns {
    struct gh_loop *loop;
    ares_channel ch;
    struct gh_timer timer;
    struct dns_sock socks[DNS_SOCKS];
    struct dns_entry **buckets;
    uint32_t n_buckets, n_entries;
    struct dns_entry *oldest, *newest;
    struct gh_dns_opts o;
    struct gh_dns_stats st;
    struct gh_dns_answer now;   /* an answer made on the spot (literal, bad name, hosts file) */
    struct dns_entry *starting; /* the entry whose query is being started (it may answer at once) */
    bool destroying;
};

/* ---- the loop's side of c-ares ---- */

static void
rearm(struct gh_dns *d)
{
    struct timeval tv, *t = ares_timeout(d->ch, NULL, &tv);
    if (t == NULL) {
        gh_timer_stop(d->loop, &d->timer);
        return;
    }
    uint64_t ms = (uint64_t)t->tv_sec * 1000 + (uint64_t)t->tv_usec / 1000 + 1;
    gh_timer_after(d->loop, &d->timer, (uint32_t)(ms > UINT32_MAX ? UINT32_MAX : ms));
}

static void
on_timer(struct gh_timer *t)
{
    struct gh_dns *d = gh_container_of(t, struct gh_dns, timer);
    ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm(d);
}

static void
on_sock(struct gh_io *io, uint32_t events)
{
    struct dns_sock *s = gh_container_of(io, struct dns_sock, io);
    struct gh_dns *d = s->d;
    int fd = io->fd;
    bool rd = (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0;
    ares_process_fd(d->ch, rd ? fd : ARES_SOCKET_BAD, (events & EPOLLOUT) ? fd : ARES_SOCKET_BAD);
    /* the loop is edge-triggered: a TCP answer read in pieces must not wait for a new edge */
    for (int i = 0; rd && i < 8 && s->io.fd == fd; i++) {
        int avail = 0;
        if (ioctl(fd, FIONREAD, &avail) != 0 || avail <= 0)
            break;
        ares_process_fd(d->ch, fd, ARES_SOCKET_BAD);
    }
    rearm(d);
}

/* c-ares opens, watches and closes its sockets through this. */
static void
sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct gh_dns *d = data;
    struct dns_sock *s = NULL, *free_slot = NULL;
    for (int i = 0; i < DNS_SOCKS; i++) {
        if (d->socks[i].io.fd == fd)
            s = &d->socks[i];
        else if (d->socks[i].io.fd < 0 && free_slot == NULL)
            free_slot = &d->socks[i];
    }
    if (!readable && !writable) {
        if (s != NULL) {
            gh_loop_del(d->loop, &s->io);
            s->io.fd = -1;
        }
        return;
    }
    uint32_t ev = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
    if (s != NULL) {
        (void)gh_loop_mod(d->loop, &s->io, ev);
        return;
    }
    if (free_slot == NULL)
        return; /* more sockets than servers: that query times out */
    free_slot->io.fd = fd;
    free_slot->io.cb = on_sock;
    free_slot->d = d;
    if (gh_loop_add(d->loop, &free_slot->io, ev) != 0)
        free_slot->io.fd = -1;
}

/* ---- the cache ---- */

static uint32_t
name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static struct dns_entry *
find(struct gh_dns *d, const char *name, size_t n, uint32_t h)
{
    for (struct dns_entry *e = d->buckets[h & (d->n_buckets - 1)]; e != NULL; e = e->hnext)
        if (e->hash == h && strncmp(e->name, name, n) == 0 && e->name[n] == '\0')
            return e;
    return NULL;
}

static void
unlink_entry(struct gh_dns *d, struct dns_entry *e)
{
    struct dns_entry **pp = &d->buckets[e->hash & (d->n_buckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        d->oldest = e->newer;
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        d->newest = e->older;
    d->n_entries--;
    free(e);
}

/* Make room: the oldest entries that are not waited for go first. */
static void
evict(struct gh_dns *d)
{
    struct dns_entry *e = d->oldest;
    while (d->n_entries >= d->o.cache_max && e != NULL) {
        struct dns_entry *next = e->newer;
        if (!e->pending)
            unlink_entry(d, e);
        e = next;
    }
}

static struct dns_entry *
add_entry(struct gh_dns *d, const char *name, size_t n, uint32_t h)
{
    evict(d);
    struct dns_entry *e = calloc(1, sizeof(*e) + n + 1);
    if (e == NULL)
        return NULL;
    memcpy(e->name, name, n);
    e->hash = h;
    e->d = d;
    e->hnext = d->buckets[h & (d->n_buckets - 1)];
    d->buckets[h & (d->n_buckets - 1)] = e;
    e->older = d->newest;
    if (d->newest != NULL)
        d->newest->newer = e;
    else
        d->oldest = e;
    d->newest = e;
    d->n_entries++;
    return e;
}

/* ---- answers ---- */

/* Copy res's addresses into a: IPv6 and IPv4 interleaved, IPv6 first. Returns the smallest TTL. */
static uint32_t
fill(struct gh_dns_answer *a, const struct ares_addrinfo *res)
{
    const struct ares_addrinfo_node *v6 = res != NULL ? res->nodes : NULL, *v4 = v6;
    uint32_t ttl = UINT32_MAX;
    a->n = 0;
    bool six = true;
    while (a->n < GH_DNS_MAX_ADDRS) {
        const struct ares_addrinfo_node **pp = six ? &v6 : &v4;
        int fam = six ? AF_INET6 : AF_INET;
        while (*pp != NULL && (*pp)->ai_family != fam)
            *pp = (*pp)->ai_next;
        const struct ares_addrinfo_node *nd = *pp;
        if (nd == NULL && (six ? v4 : v6) == NULL)
            break;
        if (nd != NULL) {
            size_t len = (size_t)nd->ai_addrlen;
            if (len > sizeof(a->addr[0]))
                len = sizeof(a->addr[0]);
            memset(&a->addr[a->n], 0, sizeof(a->addr[0]));
            memcpy(&a->addr[a->n], nd->ai_addr, len);
            ((struct sockaddr_in *)&a->addr[a->n])->sin_port = 0;
            a->n++;
            if (nd->ai_ttl >= 0 && (uint32_t)nd->ai_ttl < ttl)
                ttl = (uint32_t)nd->ai_ttl;
            *pp = nd->ai_next;
        }
        six = !six;
    }
    return ttl == UINT32_MAX ? 0 : ttl;
}

static enum gh_dns_status
status_of(int st)
{
    switch (st) {
    case ARES_SUCCESS:
        return GH_DNS_OK;
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
        return GH_DNS_NOTFOUND;
    case ARES_ETIMEOUT:
        return GH_DNS_TIMEOUT;
    case ARES_EBADNAME:
        return GH_DNS_BADNAME;
    default:
        return GH_DNS_FAIL;
    }
}

static void
on_answer(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    struct dns_entry *e = arg;
    struct gh_dns *d = e->d;
    (void)timeouts;
    if (d->destroying) {
        ares_freeaddrinfo(res);
        return;
    }
    uint32_t ttl = fill(&e->a, res);
    ares_freeaddrinfo(res);
    e->a.status = status_of(status);
    if (e->a.status == GH_DNS_OK && e->a.n == 0)
        e->a.status = GH_DNS_NOTFOUND;
    if (e->a.status == GH_DNS_NOTFOUND)
        ttl = d->o.negative_ttl_s;
    else if (ttl < d->o.min_ttl_s)
        ttl = d->o.min_ttl_s;
    else if (ttl > d->o.max_ttl_s)
        ttl = d->o.max_ttl_s;
    e->a.ttl_s = ttl;
    e->pending = false;
    struct gh_dns_query *w = e->waiters;
    e->waiters = NULL;
    bool keep = e->a.status == GH_DNS_OK || e->a.status == GH_DNS_NOTFOUND;
    e->expires = gh_loop_now(d->loop) + (uint64_t)ttl * 1000;
    struct gh_dns_answer a = e->a; /* the callbacks may resolve again and evict e */
    if (!keep && e != d->starting)
        unlink_entry(d, e);
    while (w != NULL) {
        struct gh_dns_query *next = w->next;
        gh_dns_cb cb = w->cb;
        void *cb_arg = w->arg;
        free(w);
        cb(cb_arg, &a);
        w = next;
    }
}

/* ---- the interface ---- */

static bool
literal(struct gh_dns *d, const char *name)
{
    struct gh_dns_answer *a = &d->now;
    memset(a, 0, sizeof(*a));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a->addr[0];
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->addr[0];
    if (inet_pton(AF_INET, name, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
    } else if (inet_pton(AF_INET6, name, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
    } else {
        return false;
    }
    a->n = 1;
    a->status = GH_DNS_OK;
    return true;
}

int
gh_dns_resolve(struct gh_dns *d, const char *name, size_t len, gh_dns_cb cb, void *arg,
               struct gh_dns_query **q, const struct gh_dns_answer **hit)
{
    char n[GH_DNS_MAX_NAME + 1];
    size_t nl;
    *q = NULL;
    *hit = NULL;
    if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
        name++;
        len -= 2;
    }
    if ((nl = gh_host_name(name, len, n, true)) == 0) {
        memset(&d->now, 0, sizeof(d->now));
        d->now.status = GH_DNS_BADNAME;
        *hit = &d->now;
        return 0;
    }
    if (literal(d, n)) {
        *hit = &d->now;
        return 0;
    }
    uint32_t h = name_hash(n, nl);
    struct dns_entry *e = find(d, n, nl, h);
    uint64_t now = gh_loop_now(d->loop);
    if (e != NULL && !e->pending && e->expires <= now) {
        unlink_entry(d, e);
        e = NULL;
    }
    if (e != NULL && !e->pending) {
        d->st.hits++;
        e->a.ttl_s = (uint32_t)((e->expires - now + 999) / 1000);
        *hit = &e->a;
        return 0;
    }
    struct gh_dns_query *w = malloc(sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    if (e == NULL) {
        e = add_entry(d, n, nl, h);
        if (e == NULL) {
            free(w);
            return -ENOMEM;
        }
        e->pending = true;
        d->st.queries++;
        struct ares_addrinfo_hints hints = {.ai_flags = ARES_AI_NOSORT, .ai_family = AF_UNSPEC};
        d->starting = e;
        ares_getaddrinfo(d->ch, e->name, NULL, &hints, on_answer, e);
        d->starting = NULL;
        rearm(d);
        if (!e->pending) { /* answered at once (the hosts file, a bad name) */
            d->now = e->a;
            if (d->now.status != GH_DNS_OK && d->now.status != GH_DNS_NOTFOUND)
                unlink_entry(d, e); /* a failure is not kept */
            free(w);
            *hit = &d->now;
            return 0;
        }
    }
    w->cb = cb;
    w->arg = arg;
    w->e = e;
    w->next = e->waiters;
    e->waiters = w;
    *q = w;
    return 1;
}

void
gh_dns_cancel(struct gh_dns_query *q)
{
    if (q == NULL)
        return;
    struct gh_dns_query **pp = &q->e->waiters;
    while (*pp != NULL && *pp != q)
        pp = &(*pp)->next;
    if (*pp == q)
        *pp = q->next;
    free(q);
}

const char *
gh_dns_status_str(enum gh_dns_status s)
{
    switch (s) {
    case GH_DNS_OK:
        return "ok";
    case GH_DNS_NOTFOUND:
        return "not found";
    case GH_DNS_TIMEOUT:
        return "timed out";
    case GH_DNS_BADNAME:
        return "not a valid host name";
    default:
        return "resolver failure";
    }
}

void
gh_dns_get_stats(const struct gh_dns *d, struct gh_dns_stats *st)
{
    *st = d->st;
    st->cached = d->n_entries;
}

static void
defaults(struct gh_dns_opts *o)
{
    if (o->timeout_ms == 0)
        o->timeout_ms = 2000;
    if (o->tries == 0)
        o->tries = 2;
    if (o->cache_max == 0)
        o->cache_max = 10000;
    if (o->min_ttl_s == 0)
        o->min_ttl_s = 1;
    if (o->max_ttl_s == 0)
        o->max_ttl_s = 3600;
    if (o->negative_ttl_s == 0)
        o->negative_ttl_s = 5;
}

struct gh_dns *
gh_dns_new(struct gh_loop *l, const struct gh_dns_opts *o, char *err, size_t errlen)
{
    static int lib = -1;
    if (__atomic_load_n(&lib, __ATOMIC_ACQUIRE) != ARES_SUCCESS) {
        int rc = ares_library_init(ARES_LIB_INIT_ALL); /* idempotent, counted */
        __atomic_store_n(&lib, rc, __ATOMIC_RELEASE);
    }
    struct gh_dns *d = calloc(1, sizeof(*d));
    uint32_t nb = DNS_BUCKETS_MIN;
    if (d == NULL)
        goto nomem;
    d->loop = l;
    d->o = *o;
    defaults(&d->o);
    while (nb < d->o.cache_max)
        nb *= 2;
    d->buckets = calloc(nb, sizeof(*d->buckets));
    if (d->buckets == NULL)
        goto nomem;
    d->n_buckets = nb;
    for (int i = 0; i < DNS_SOCKS; i++)
        d->socks[i].io.fd = -1;
    d->timer.cb = on_timer;
    struct ares_options ao = {.timeout = (int)d->o.timeout_ms,
                              .tries = (int)d->o.tries,
                              .sock_state_cb = sock_state,
                              .sock_state_cb_data = d};
    int rc = ares_init_options(&d->ch, &ao,
                               ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB);
    if (rc == ARES_SUCCESS && d->o.servers != NULL)
        rc = ares_set_servers_ports_csv(d->ch, d->o.servers);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "%s", ares_strerror(rc));
        if (d->ch != NULL)
            ares_destroy(d->ch);
        free(d->buckets);
        free(d);
        return NULL;
    }
    return d;
nomem:
    if (d != NULL)
        free(d->buckets);
    free(d);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

void
gh_dns_free(struct gh_dns *d)
{
    if (d == NULL)
        return;
    d->destroying = true;
    ares_destroy(d->ch); /* pending queries end here, without our callbacks */
    gh_timer_stop(d->loop, &d->timer);
    for (int i = 0; i < DNS_SOCKS; i++)
        if (d->socks[i].io.fd >= 0)
            gh_loop_del(d->loop, &d->socks[i].io);
    while (d->oldest != NULL) {
        struct dns_entry *e = d->oldest;
        while (e->waiters != NULL) {
            struct gh_dns_query *w = e->waiters;
            e->waiters = w->next;
            free(w);
        }
        unlink_entry(d, e);
    }
    free(d->buckets);
    free(d);
}
