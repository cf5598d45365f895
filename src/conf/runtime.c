/*
 * runtime.c - loading entry points, diagnostics, references, and the lookups
 * that run per request (server by Host, route by path).
 *
 * The lookups never allocate: names were lower-cased and flattened into one
 * table per listener at load time, routes were sorted so the first match
 * wins, and regex match data is created once per thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "conf/conf_int.h"

/* ---- diagnostics ---- */

static void
diag_add(struct gh_conf_diag *diag, char *msg)
{
    if (diag == NULL) {
        free(msg);
        return;
    }
    char **msgs = gh_xmalloc((diag->n + 1) * sizeof(*msgs));
    if (diag->n > 0)
        memcpy(msgs, diag->msgs, diag->n * sizeof(*msgs));
    free(diag->msgs);
    diag->msgs = msgs;
    diag->msgs[diag->n++] = msg;
}

static char *
vformat(const struct conf_pos *pos, const char *fmt, va_list ap)
{
    char head[512];
    if (pos->line == 0)
        snprintf(head, sizeof(head), "%s: ", pos->file);
    else
        snprintf(head, sizeof(head), "%s:%u:%u: ", pos->file, pos->line, pos->col);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    GH_ASSERT(n >= 0);
    size_t hl = strlen(head);
    char *msg = gh_xmalloc(hl + (size_t)n + 1);
    memcpy(msg, head, hl);
    vsnprintf(msg + hl, (size_t)n + 1, fmt, ap);
    return msg;
}

/* The read that file belongs to: the latest with that pointer (else that name), or -1. */
static int32_t
find_read(const struct conf_state *st, const char *file)
{
    for (uint32_t i = st->n_reads; i-- > 0;)
        if (st->reads[i].file == file)
            return (int32_t)i;
    for (uint32_t i = st->n_reads; i-- > 0;)
        if (strcmp(st->reads[i].file, file) == 0)
            return (int32_t)i;
    return -1;
}

void
conf_note_read(struct conf_state *st, const char *file, const struct conf_pos *from)
{
    if (st->n_reads == st->cap_reads) {
        uint32_t cap = st->cap_reads ? st->cap_reads * 2 : 8;
        struct conf_read *r = gh_arena_alloc(st->arena, cap * sizeof(*r));
        if (st->n_reads > 0)
            memcpy(r, st->reads, st->n_reads * sizeof(*r));
        st->reads = r;
        st->cap_reads = cap;
    }
    struct conf_read *r = &st->reads[st->n_reads++];
    r->file = file;
    r->parent = -1;
    if (from != NULL) {
        r->parent = (int32_t)find_read(st, from->file);
        r->line = from->line;
        r->col = from->col;
    }
}

static char *
vformat_one(const struct conf_pos *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(pos, fmt, ap);
    va_end(ap);
    return msg;
}

/* Remember where the diagnostic being added belongs (for conf_diag_sort). */
static void
add_key(struct conf_state *st, const struct conf_pos *pos, bool last)
{
    if (st->diag == NULL)
        return;
    uint32_t n = st->diag->n; /* keys[n] goes with the message about to be added */
    if (n >= st->cap_keys) {
        uint32_t cap = st->cap_keys ? st->cap_keys * 2 : 32;
        struct conf_diag_key *k = gh_xmalloc(cap * sizeof(*k));
        if (n > 0)
            memcpy(k, st->keys, n * sizeof(*k));
        free(st->keys);
        st->keys = k;
        st->cap_keys = cap;
    }
    st->keys[n] = (struct conf_diag_key){find_read(st, pos->file), pos->line, pos->col, last};
}

void
conf_err(struct conf_state *st, const struct conf_pos *pos, const char *fmt, ...)
{
    if (st->stop)
        return;
    st->n_errors++;
    va_list ap;
    if (st->n_errors > GH_CONF_MAX_ERRORS) {
        st->stop = true;
        va_start(ap, fmt);
        char *msg = vformat(pos, "too many errors, giving up", ap);
        va_end(ap);
        add_key(st, pos, true);
        diag_add(st->diag, msg);
        return;
    }
    va_start(ap, fmt);
    char *msg = vformat(pos, fmt, ap);
    va_end(ap);
    add_key(st, pos, false);
    diag_add(st->diag, msg);
}

void
conf_warn(struct conf_state *st, const struct conf_pos *pos, const char *fmt, ...)
{
    if (st->stop)
        return;
    char body[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    add_key(st, pos, false);
    diag_add(st->diag, vformat_one(pos, "warning: %s", body));
}

/* A position as a path from the top file down: at each level the (line, col) of the include
 * that leads further down and the read it leads to, and last the position itself (read -1).
 * Returns the number of levels written to out (at most max). */
struct hop {
    uint32_t line, col;
    int32_t into; /* the read entered there, or -1 at the position itself */
};

static uint32_t
path_of(const struct conf_state *st, const struct conf_diag_key *k, struct hop *out, uint32_t max)
{
    struct hop rev[GH_CONF_MAX_INCLUDE_DEPTH + 4];
    uint32_t n = 0;
    rev[n++] = (struct hop){k->line, k->col, -1};
    for (int32_t r = k->read; r >= 0 && st->reads[r].parent >= 0 && n < GH_ARRAY_LEN(rev);
         r = st->reads[r].parent)
        rev[n++] = (struct hop){st->reads[r].line, st->reads[r].col, r};
    n = GH_MIN(n, max);
    for (uint32_t i = 0; i < n; i++)
        out[i] = rev[n - 1 - i];
    return n;
}

static int
key_cmp(const struct conf_state *st, const struct conf_diag_key *a, const struct conf_diag_key *b)
{
    if (a->last != b->last)
        return a->last ? 1 : -1;
    struct hop pa[GH_CONF_MAX_INCLUDE_DEPTH + 4], pb[GH_CONF_MAX_INCLUDE_DEPTH + 4];
    uint32_t na = path_of(st, a, pa, GH_ARRAY_LEN(pa));
    uint32_t nb = path_of(st, b, pb, GH_ARRAY_LEN(pb));
    for (uint32_t i = 0; i < na && i < nb; i++) {
        if (pa[i].line != pb[i].line)
            return pa[i].line < pb[i].line ? -1 : 1;
        if (pa[i].col != pb[i].col)
            return pa[i].col < pb[i].col ? -1 : 1;
        /* the same place: the include line's own problem first, then its files in read order */
        if (pa[i].into != pb[i].into)
            return pa[i].into < pb[i].into ? -1 : 1;
    }
    return 0;
}

void
conf_diag_sort(struct conf_state *st)
{
    struct gh_conf_diag *d = st->diag;
    if (d == NULL || st->keys == NULL)
        return;
    /* insertion sort: stable, and there are at most GH_CONF_MAX_ERRORS + 1 */
    for (uint32_t i = 1; i < d->n; i++) {
        struct conf_diag_key k = st->keys[i];
        char *m = d->msgs[i];
        uint32_t j = i;
        while (j > 0 && key_cmp(st, &st->keys[j - 1], &k) > 0) {
            st->keys[j] = st->keys[j - 1];
            d->msgs[j] = d->msgs[j - 1];
            j--;
        }
        st->keys[j] = k;
        d->msgs[j] = m;
    }
}

const char *
conf_show(struct conf_state *st, const char *s, size_t len)
{
    enum { MAX_SHOWN = 64 };
    size_t n = GH_MIN(len, (size_t)MAX_SHOWN);
    char *out = gh_arena_alloc_aligned(st->arena, n * 4 + 4, 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            static const char hex[] = "0123456789abcdef";
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        } else {
            *o++ = (char)c;
        }
    }
    if (len > n) {
        memcpy(o, "...", 3);
        o += 3;
    }
    *o = '\0';
    return out;
}

uint32_t
conf_distance(const char *a, size_t alen, const char *b, size_t blen)
{
    enum { MAX_LEN = 64 };
    if (alen > MAX_LEN || blen > MAX_LEN)
        return UINT32_MAX / 2;
    uint32_t row[MAX_LEN + 1], prev[MAX_LEN + 1];
    for (size_t j = 0; j <= blen; j++)
        prev[j] = (uint32_t)j;
    for (size_t i = 1; i <= alen; i++) {
        row[0] = (uint32_t)i;
        for (size_t j = 1; j <= blen; j++) {
            uint32_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            uint32_t best = prev[j - 1] + cost;
            best = GH_MIN(best, prev[j] + 1);
            best = GH_MIN(best, row[j - 1] + 1);
            row[j] = best;
        }
        memcpy(prev, row, (blen + 1) * sizeof(row[0]));
    }
    return prev[blen];
}

void
gh_conf_diag_print(const struct gh_conf_diag *diag, FILE *f)
{
    for (uint32_t i = 0; diag != NULL && i < diag->n; i++)
        fprintf(f, "%s\n", diag->msgs[i]);
}

void
gh_conf_diag_free(struct gh_conf_diag *diag)
{
    if (diag == NULL)
        return;
    for (uint32_t i = 0; i < diag->n; i++)
        gh_free(diag->msgs[i]);
    gh_free(diag->msgs);
    diag->n = 0;
}

/* ---- loading ---- */

static struct gh_config *
load(const char *name, const char *text, size_t len, bool is_file, unsigned flags,
     struct gh_conf_diag *diag)
{
    if (diag != NULL) {
        diag->msgs = NULL;
        diag->n = 0;
    }
    struct conf_state st = {0};
    st.arena = gh_arena_new();
    st.diag = diag;
    st.flags = flags;
    struct cnode *root =
        is_file ? conf_read_file(&st, name) : conf_read_string(&st, name, text, len);
    struct gh_config *cfg = NULL;
    if (!st.stop) /* semantic checks too, even after syntax errors: report everything */
        cfg = conf_build(&st, name, root);
    conf_diag_sort(&st); /* found phase by phase; shown in file order */
    free(st.keys);
    if (cfg == NULL || st.n_errors > 0) {
        gh_arena_free(st.arena);
        return NULL;
    }
    return cfg;
}

struct gh_config *
gh_conf_load_file(const char *path, struct gh_conf_diag *diag)
{
    return load(path, NULL, 0, true, 0, diag);
}

struct gh_config *
gh_conf_load_string(const char *name, const char *text, size_t len, struct gh_conf_diag *diag)
{
    return load(name, text, len, false, 0, diag);
}

struct gh_config *
gh_conf_load_string_flags(const char *name, const char *text, size_t len, unsigned flags,
                          struct gh_conf_diag *diag)
{
    return load(name, text, len, false, flags, diag);
}

/* ---- references ---- */

struct gh_config *
gh_conf_ref(struct gh_config *cfg)
{
    __atomic_add_fetch(&cfg->refcount, 1, __ATOMIC_RELAXED);
    return cfg;
}

void
gh_conf_unref(struct gh_config *cfg)
{
    if (cfg == NULL)
        return;
    int left = __atomic_sub_fetch(&cfg->refcount, 1, __ATOMIC_ACQ_REL);
    GH_ASSERT(left >= 0);
    if (left == 0)
        gh_arena_free(cfg->arena); /* the config itself lives in its arena */
}

/* ---- per-request lookups ---- */

const struct gh_server_conf *
gh_conf_find_server(const struct gh_listen_conf *lc, const char *host, size_t host_len)
{
    if (host == NULL || host_len == 0)
        return lc->default_server;
    size_t n = host_len;
    if (host[0] == '[') { /* IP-literal: the port follows ']' */
        const char *rb = memchr(host, ']', n);
        if (rb != NULL)
            n = (size_t)(rb - host) + 1;
    } else {
        const char *colon = memchr(host, ':', n);
        if (colon != NULL)
            n = (size_t)(colon - host);
    }
    if (n > 0 && host[n - 1] == '.') /* "a.test." is "a.test" */
        n--;
    for (uint32_t i = 0; i < lc->n_names; i++) {
        const struct gh_server_name *e = &lc->names[i];
        if (!e->wildcard) {
            if (e->len == n && gh_strncaseeq(host, e->name, n))
                return e->server;
        } else if (n > e->len && gh_strncaseeq(host + n - e->len, e->name, e->len)) {
            return e->server; /* wildcards come longest first */
        }
    }
    return lc->default_server;
}

/* Per-thread match data and limits, made on first use, freed when the thread exits. */
struct re_tls {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
};

static pthread_key_t re_key;
static pthread_once_t re_once = PTHREAD_ONCE_INIT;
static __thread struct re_tls *re_tls;

static void
re_tls_free(void *p)
{
    struct re_tls *t = p;
    pcre2_match_data_free(t->md);
    pcre2_match_context_free(t->mctx);
    free(t);
}

static void
re_key_init(void)
{
    GH_ASSERT(pthread_key_create(&re_key, re_tls_free) == 0);
}

static struct re_tls *
re_tls_get(void)
{
    if (gh_likely(re_tls != NULL))
        return re_tls;
    pthread_once(&re_once, re_key_init);
    struct re_tls *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->md = pcre2_match_data_create(10, NULL); /* $0..$9 of a rewrite */
    t->mctx = pcre2_match_context_create(NULL);
    if (t->md == NULL || t->mctx == NULL) {
        re_tls_free(t);
        return NULL;
    }
    /* Bounded work per request (design principle 5), also against pathological patterns. */
    pcre2_set_match_limit(t->mctx, 100000);
    pcre2_set_depth_limit(t->mctx, 10000);
    pthread_setspecific(re_key, t);
    re_tls = t;
    return t;
}

static bool
re_match(const struct pcre2_real_code_8 *re, const char *s, size_t len)
{
    struct re_tls *t = re_tls_get();
    if (t == NULL || re == NULL)
        return false; /* out of memory on the request path: no match, never a crash */
    /* 0 means "matched, ovector too small" (we ask for none) */
    return pcre2_match((const pcre2_code *)re, (PCRE2_SPTR)(s != NULL ? s : ""), len, 0, 0, t->md,
                       t->mctx) >= 0;
}

int
gh_conf_regex_match(const struct pcre2_real_code_8 *re, const char *s, size_t len,
                    const size_t **ovector)
{
    struct re_tls *t = re_tls_get();
    if (t == NULL || re == NULL)
        return -1;
    int rc = pcre2_match((const pcre2_code *)re, (PCRE2_SPTR)(s != NULL ? s : ""), len, 0, 0, t->md,
                         t->mctx);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc < 0)
        return -1;
    *ovector = pcre2_get_ovector_pointer(t->md);
    return rc == 0 ? 10 : rc;
}

const struct gh_proxy_conf *
gh_conf_find_route(const struct gh_server_conf *s, const char *path, size_t path_len,
                   const struct gh_route **route)
{
    for (uint32_t i = 0; i < s->n_routes; i++) {
        const struct gh_route *r = &s->routes[i];
        bool hit;
        switch (r->kind) {
        case GH_ROUTE_EXACT:
            hit = path_len == r->path_len && memcmp(path, r->path, path_len) == 0;
            break;
        case GH_ROUTE_REGEX:
            hit = re_match(r->re, path, path_len);
            break;
        default:
            hit = path_len >= r->path_len && memcmp(path, r->path, r->path_len) == 0;
            break;
        }
        if (hit) {
            if (route != NULL)
                *route = r;
            return &r->pc;
        }
    }
    if (route != NULL)
        *route = NULL;
    return &s->pc;
}

/* ---- addresses ---- */

int
gh_conf_parse_addr(const char *text, size_t len, struct gh_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (text == NULL || len == 0 || len > 64)
        return -EINVAL;
    char host[65];
    size_t hlen;
    const char *port;
    bool v6 = false;
    if (text[0] == '[') {
        const char *rb = memchr(text, ']', len);
        if (rb == NULL || (size_t)(rb - text) + 1 >= len || rb[1] != ':')
            return -EINVAL;
        hlen = (size_t)(rb - text) - 1;
        memcpy(host, text + 1, hlen);
        port = rb + 2;
        v6 = true;
    } else {
        const char *colon = memchr(text, ':', len);
        if (colon == NULL)
            return -EINVAL;
        hlen = (size_t)(colon - text);
        memcpy(host, text, hlen);
        port = colon + 1;
    }
    host[hlen] = '\0';
    if (memchr(host, '\0', hlen) != NULL)
        return -EINVAL;
    uint16_t p;
    if (gh_parse_port(port, len - (size_t)(port - text), &p) != 0)
        return -EINVAL;
    if (v6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return -EINVAL;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(p);
        out->len = sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
        if (hlen == 0 || strcmp(host, "*") == 0)
            sin->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (hlen == 9 && gh_strncaseeq(host, "localhost", 9))
            sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            return -EINVAL;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(p);
        out->len = sizeof(*sin);
    }
    out->text = text;
    return 0;
}

/* "http://" or "https://" at the start of text: its length, else 0. */
static size_t
scheme_len(const char *text, size_t len)
{
    if (len >= 7 && gh_strncaseeq(text, "http://", 7))
        return 7;
    if (len >= 8 && gh_strncaseeq(text, "https://", 8))
        return 8;
    return 0;
}

/* A DNS name as an origin is written: letters, digits, '-', '_', '.', at least one letter. */
static bool
looks_like_host_name(const char *s, size_t len)
{
    bool letter = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            letter = true;
        else if (!((c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return false;
    }
    return letter;
}

const char *
gh_conf_addr_hint(const char *text, size_t len, const char *what, char *buf, size_t size)
{
    bool proxy = strcmp(what, "proxy") == 0;
    const char *takes = proxy                         ? "an upstream name or ADDR:PORT"
                        : strcmp(what, "server") == 0 ? "ADDR[:PORT]"
                                                      : "ADDR:PORT";
    size_t sl = scheme_len(text, len);
    if (sl == 8) {
        snprintf(buf, size, "'%s' takes %s, without 'https://' (%s)", what, takes,
                 what[0] == '-' ? "for TLS to the origin, use a config file with 'proxy "
                                  "https://ADDR;'"
                                : "TLS to an origin: 'server ADDR tls;' in an upstream, or "
                                  "'proxy https://ADDR;'");
        return buf;
    }
    if (sl == 7) {
        const char *rest = text + sl;
        size_t rl = len - sl;
        /* say what to write instead when the rest is a whole address (or, for proxy, a name);
         * for proxy a path after it is the prefix replacement nginx gives it: 'proxy ADDR PATH' */
        char tmp[72];
        struct gh_addr a;
        const char *slash = memchr(rest, '/', rl);
        size_t path_len = 0;
        if (proxy && slash != NULL && slash > rest) {
            path_len = rl - (size_t)(slash - rest);
            rl -= path_len;
        }
        bool whole = rl > 0 && rl < 64 && memchr(rest, '/', rl) == NULL;
        if (whole && gh_conf_parse_addr(rest, rl, &a) != 0) {
            bool no_port = memchr(rest, ':', rl) == NULL && what[0] != '-'; /* port 80 */
            int n = snprintf(tmp, sizeof(tmp), "%.*s:80", (int)rl, rest);
            whole = no_port && ((proxy && looks_like_host_name(rest, rl)) ||
                                gh_conf_parse_addr(tmp, (size_t)n, &a) == 0);
        }
        if (whole && path_len > 0)
            snprintf(buf, size,
                     "'%s' takes %s, without 'http://' (write '%s %.*s %.*s;': the path "
                     "replaces the route's prefix)",
                     what, takes, what, (int)rl, rest, (int)path_len, rest + rl);
        else if (whole)
            snprintf(buf, size, "'%s' takes %s, without 'http://' (write '%s %.*s%s')", what, takes,
                     what, (int)rl, rest, what[0] == '-' ? "" : ";");
        else
            snprintf(buf, size, "'%s' takes %s, without 'http://'", what, takes);
        return buf;
    }
    if (len == 0 || text[0] == '[')
        return NULL;
    /* HOST or HOST:PORT with a valid port, where HOST is a name: DNS is what is missing */
    const char *colon = memchr(text, ':', len);
    size_t hl = colon != NULL ? (size_t)(colon - text) : len;
    uint16_t port = 80;
    if (colon != NULL && gh_parse_port(colon + 1, len - hl - 1, &port) != 0)
        return NULL;
    if (hl == 9 && gh_strncaseeq(text, "localhost", 9))
        return NULL;
    if (!looks_like_host_name(text, hl))
        return NULL;
    snprintf(buf, size,
             "host names are not supported yet (DNS-named servers come later): use an IP address "
             "such as 127.0.0.1:%u",
             (unsigned)port);
    return buf;
}
