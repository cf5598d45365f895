/*
 * balance.c - the balancing directives of an upstream: `balance` (with the
 * hash key compiled as a template in the GH_TC_KEY context), `retry_on`, the
 * parameters of `server` (weight=, max_conns=, backup, tls), and the checks
 * that need the whole block (a backup server needs a non-backup one).
 * `max_fails`, `fail_timeout` and `retries` are plain values in parse.c's
 * table.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "conf/parse_int.h"

/* `bounded=1.25`: a factor above 1 (at most 10) with at most two decimals, in percent. */
static bool
bound_factor(struct build *b, const struct conf_tok *p, uint32_t *pct)
{
    const char *v = p->text + 8;
    unsigned whole = 0, frac = 0;
    int used = 0, fused = 0;
    bool ok = sscanf(v, "%2u%n", &whole, &used) == 1;
    if (ok && v[used] == '.') {
        ok = sscanf(v + used + 1, "%2u%n", &frac, &fused) == 1 && fused > 0;
        if (fused == 1)
            frac *= 10;
        used += 1 + fused;
    }
    uint32_t x = whole * 100 + frac;
    if (!ok || v[used] != '\0' || x <= 100 || x > 1000) {
        conf_err(b->st, &p->pos,
                 "invalid factor '%s' for 'bounded' (above 1, at most 10, e.g. bounded=1.25)",
                 conf_show_tok(b, p));
        return false;
    }
    *pct = x;
    return true;
}

/* A parameter after the key of `balance hash KEY ...` (consistent, bounded=F) or `balance geo
 * KEY ...` (ewma). False after reporting. */
static bool
balance_param(struct build *b, struct gh_upstream_conf *uc, const struct conf_tok *p, bool geo)
{
    if (geo && conf_tok_is(p, "ewma"))
        uc->geo_ewma = true;
    else if (!geo && conf_tok_is(p, "consistent"))
        uc->hash_consistent = true;
    else if (!geo && p->len > 8 && memcmp(p->text, "bounded=", 8) == 0)
        return bound_factor(b, p, &uc->hash_bound_pct);
    else {
        conf_err(b->st, &p->pos, "unknown parameter '%s' in 'balance %s' (expected %s)",
                 conf_show_tok(b, p), geo ? "geo" : "hash",
                 geo ? "ewma" : "consistent or bounded=F");
        return false;
    }
    return true;
}

void
conf_on_balance(struct build *b, struct blk *k, const struct cnode *n)
{
    struct gh_upstream_conf *uc = &k->ups->uc;
    const struct conf_tok *a = &n->args[0];
    static const struct {
        const char *name;
        enum gh_balance b;
    } algs[] = {{"round_robin", GH_BALANCE_ROUND_ROBIN},
                {"least_conn", GH_BALANCE_LEAST_CONN},
                {"random", GH_BALANCE_RANDOM},
                {"hash", GH_BALANCE_HASH},
                {"ewma", GH_BALANCE_EWMA},
                {"geo", GH_BALANCE_GEO}};
    int found = -1;
    for (size_t i = 0; i < GH_ARRAY_LEN(algs) && found < 0; i++)
        if (conf_tok_is(a, algs[i].name))
            found = (int)i;
    if (found < 0) {
        conf_err(b->st, &a->pos,
                 "unknown balance '%s' (expected round_robin, least_conn, random, hash KEY "
                 "[consistent], ewma or geo KEY [ewma])",
                 conf_show_tok(b, a));
        return;
    }
    uc->balance = algs[found].b;
    bool geo = uc->balance == GH_BALANCE_GEO;
    if (uc->balance != GH_BALANCE_HASH && !geo) {
        if (n->n_args > 1)
            conf_err(b->st, &n->args[1].pos, "'balance %s' takes no argument", algs[found].name);
        return;
    }
    if (n->n_args < 2) {
        conf_err(b->st, &a->pos,
                 geo ? "'balance geo' needs the client's region (as in: balance geo $region;)"
                     : "'balance hash' needs a key (as in: balance hash $remote_addr consistent;)");
        return;
    }
    for (uint32_t i = 2; i < n->n_args; i++)
        if (!balance_param(b, uc, &n->args[i], geo))
            return;
    if (uc->hash_bound_pct > 0 && !uc->hash_consistent) {
        conf_err(b->st, &n->args[n->n_args - 1].pos, "'bounded=' needs 'consistent'");
        return;
    }
    const char *what = geo ? "balance geo" : "balance hash";
    const struct gh_tmpl *t = conf_tmpl(b->st, &n->args[1], GH_TC_KEY, what);
    if (t == NULL)
        return;
    if (!(t->flags & GH_TMPL_VARS))
        conf_warn(b->st, &n->args[1].pos,
                  "the key of '%s' has no variable: every request goes to one server", what);
    uc->hash_key = t;
}

/* A condition word of `retry_on` / `fail_on` and its bit. */
struct cond {
    const char *name;
    uint32_t bit;
};

/* The mask of n's arguments, each one of conds[0..nc); `alone` (0 bits) may stand alone. False
 * after reporting an unknown word (expected: the list for the message). */
static bool
cond_mask(struct build *b, const struct cnode *n, const struct cond *conds, size_t nc,
          const char *alone, const char *expected, uint32_t *out)
{
    uint32_t mask = 0;
    for (uint32_t i = 0; i < n->n_args; i++) {
        const struct conf_tok *t = &n->args[i];
        if (conf_tok_is(t, alone) && n->n_args == 1)
            break;
        size_t j = 0;
        while (j < nc && !conf_tok_is(t, conds[j].name))
            j++;
        if (j == nc) {
            conf_err(b->st, &t->pos, "unknown condition '%s' in '%s' (expected %s, or %s alone)",
                     conf_show_tok(b, t), n->name.text, expected, alone);
            return false;
        }
        mask |= conds[j].bit;
    }
    *out = mask;
    return true;
}

void
conf_on_retry_on(struct build *b, struct blk *k, const struct cnode *n)
{
    static const struct cond conds[] = {{"connect_failure", GH_RETRY_CONNECT},
                                        {"timeout", GH_RETRY_TIMEOUT},
                                        {"error", GH_RETRY_ERROR},
                                        {"500", GH_RETRY_500},
                                        {"502", GH_RETRY_502},
                                        {"503", GH_RETRY_503},
                                        {"504", GH_RETRY_504}};
    cond_mask(b, n, conds, GH_ARRAY_LEN(conds), "off",
              "connect_failure, timeout, error, 500, 502, 503, 504", &k->ups->uc.retry_on);
}

/* The number after "name=" in p, or false after reporting. */
static bool
param_number(struct build *b, const struct conf_tok *p, size_t skip, const char *what, uint64_t lo,
             uint64_t hi, uint32_t *out)
{
    struct conf_tok v = *p;
    v.text += skip;
    v.len -= (uint32_t)skip;
    v.pos.col += (uint32_t)skip;
    uint64_t x;
    if (!conf_number_arg(b, &v, what, lo, hi, &x))
        return false;
    *out = (uint32_t)x;
    return true;
}

/* `queue N [timeout=D];` requests that may wait per thread when every server is at max_conns. */
void
conf_on_queue(struct build *b, struct blk *k, const struct cnode *n)
{
    struct gh_upstream_conf *uc = &k->ups->uc;
    param_number(b, &n->args[0], 0, "queue", 1, 1000000, &uc->queue_max);
    if (n->n_args < 2)
        return;
    const struct conf_tok *p = &n->args[1];
    if (p->len <= 8 || memcmp(p->text, "timeout=", 8) != 0) {
        conf_err(b->st, &p->pos, "unknown parameter '%s' in 'queue' (expected timeout=DURATION)",
                 conf_show_tok(b, p));
        return;
    }
    struct conf_tok v = *p;
    v.text += 8;
    v.len -= 8;
    v.pos.col += 8;
    uint64_t ms;
    if (!conf_duration_arg(b, &v, "queue timeout", &ms))
        return;
    if (ms == 0 || ms > UINT32_MAX)
        conf_err(b->st, &v.pos, "queue timeout out of range (1ms..49d)");
    else
        uc->queue_timeout_ms = (uint32_t)ms;
}

/* The duration after "name=" in p (at most 1 hour), or false after reporting. */
static bool
param_duration(struct build *b, const struct conf_tok *p, size_t skip, const char *what,
               uint32_t *out)
{
    struct conf_tok v = *p;
    v.text += skip;
    v.len -= (uint32_t)skip;
    v.pos.col += (uint32_t)skip;
    uint64_t ms;
    if (!conf_duration_arg(b, &v, what, &ms))
        return false;
    if (ms > 3600000) {
        conf_err(b->st, &v.pos, "'%s' is at most 1h", what);
        return false;
    }
    *out = (uint32_t)ms;
    return true;
}

/* A name (letters, digits, '_', '-', '.') after "name=" in p (arena), or NULL after
 * reporting. */
static const char *
param_name(struct build *b, const struct conf_tok *p, size_t skip, const char *what)
{
    const char *v = p->text + skip;
    size_t len = p->len - skip;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.')) {
            struct conf_pos at = p->pos;
            at.col += (uint32_t)(skip + i);
            conf_err(b->st, &at, "invalid %s name '%s' (letters, digits, '_', '-' and '.')", what,
                     conf_show(b->st, v, len));
            return NULL;
        }
    }
    return gh_arena_strndup(b->arena, v, len);
}

void
conf_server_param(struct build *b, const struct conf_tok *p, struct gh_upstream_server *s)
{
    if (p->len > 7 && memcmp(p->text, "weight=", 7) == 0)
        param_number(b, p, 7, "weight", 1, 1000, &s->weight);
    else if (p->len > 10 && memcmp(p->text, "max_conns=", 10) == 0)
        param_number(b, p, 10, "max_conns", 0, 1000000, &s->max_conns);
    else if (conf_tok_is(p, "tls"))
        s->tls_on = true;
    else if (conf_tok_is(p, "backup"))
        s->backup = true;
    else if (conf_tok_is(p, "send_proxy"))
        s->send_proxy = 1;
    else if (conf_tok_is(p, "send_proxy_v2"))
        s->send_proxy = 2;
    else if (conf_tok_is(p, "resolve"))
        ; /* read by on_upstream_server before the address */
    else if (p->len > 11 && memcmp(p->text, "slow_start=", 11) == 0)
        param_duration(b, p, 11, "slow_start", &s->slow_start_ms);
    else if (p->len > 7 && memcmp(p->text, "region=", 7) == 0)
        s->region = param_name(b, p, 7, "region");
    else
        conf_err(b->st, &p->pos,
                 "unknown parameter '%s' in 'server' (expected weight=N, max_conns=N, backup, "
                 "tls, send_proxy, send_proxy_v2, resolve, slow_start=DURATION or region=NAME)",
                 conf_show_tok(b, p));
}

/* A DNS name: labels of letters, digits and '-' (not at either end), at most 253 bytes. */
static bool
dns_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   (c == '-' && label > 0) || c == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return s[n - 1] != '-';
}

bool
conf_named_server(struct build *b, const struct conf_tok *t, struct gh_upstream_server *s)
{
    const char *colon = memrchr(t->text, ':', t->len);
    size_t hl = colon != NULL ? (size_t)(colon - t->text) : t->len;
    uint16_t port = 80;
    if ((colon != NULL && gh_parse_port(colon + 1, t->len - hl - 1, &port) != 0) ||
        !dns_name_ok(t->text, hl)) {
        conf_err(b->st, &t->pos,
                 "invalid name '%s' for 'server ... resolve' (expected NAME[:PORT], as in "
                 "app.internal:8080)",
                 conf_show_tok(b, t));
        return false;
    }
    s->host = gh_arena_strndup(b->arena, t->text, hl);
    s->port = port;
    /* the key of its per-thread state (passive health): an address of no family, made from
     * the name and port, unique per name */
    memset(&s->addr, 0, sizeof(s->addr));
    s->addr.ss.ss_family = AF_UNSPEC;
    uint64_t h = 14695981039346656037ull;
    for (uint32_t i = 0; i < t->len; i++)
        h = (h ^ (unsigned char)tolower((unsigned char)t->text[i])) * 1099511628211ull;
    memcpy((char *)&s->addr.ss + 8, &h, sizeof(h));
    memcpy((char *)&s->addr.ss + 16, &port, sizeof(port));
    s->addr.len = 24;
    s->addr.text = colon != NULL ? t->text : gh_arena_sprintf(b->arena, "%s:80", t->text);
    return true;
}

void
conf_on_ups_resolver(struct build *b, struct blk *k, const struct cnode *n)
{
    struct gh_upstream_conf *uc = &k->ups->uc;
    if (conf_tok_is(&n->name, "resolver")) {
        uc->resolver = conf_resolver_csv(b, n);
        return;
    }
    uint64_t ms = 0;
    if (conf_duration_arg(b, &n->args[0], "resolver_timeout", &ms) && (ms == 0 || ms > 60000))
        conf_err(b->st, &n->args[0].pos, "'resolver_timeout' is above 0 and at most 60s");
    else if (ms > 0)
        uc->resolver_timeout_ms = (uint32_t)ms;
}

/* A path: '/' first, then visible ASCII only (no space, no control), none of the bytes in
 * `not` (a cookie's Path has no ';', RFC 6265 §4.1.1). */
static bool
visible_path(const char *s, size_t n, const char * not )
{
    if (n == 0 || s[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e || strchr(not, s[i]) != NULL)
            return false;
    return true;
}

/* "KEY=VALUE" split: does p start with key=? */
static bool
has_key(const struct conf_tok *p, const char *key)
{
    size_t k = strlen(key);
    return p->len > k && memcmp(p->text, key, k) == 0 && p->text[k] == '=';
}

/* `expect=200-399` or `expect=200`; false after reporting. */
static bool
expect_range(struct build *b, const struct conf_tok *p, struct gh_health_check *hc)
{
    const char *v = p->text + 7;
    unsigned lo = 0, hi = 0;
    int used = 0;
    bool ok = (sscanf(v, "%3u-%3u%n", &lo, &hi, &used) == 2 && v[used] == '\0') ||
              (sscanf(v, "%3u%n", &lo, &used) == 1 && v[used] == '\0' && (hi = lo, true));
    if (!ok || lo < 100 || hi > 599 || lo > hi) {
        conf_err(b->st, &p->pos,
                 "invalid status range '%s' in 'health_check' (expected e.g. expect=200-399 or "
                 "expect=204)",
                 conf_show_tok(b, p));
        return false;
    }
    hc->expect_lo = (uint16_t)lo;
    hc->expect_hi = (uint16_t)hi;
    return true;
}

/* One KEY=VALUE parameter of `health_check`. */
static void
health_param(struct build *b, const struct conf_tok *p, struct gh_health_check *hc)
{
    if (has_key(p, "interval"))
        param_duration(b, p, 9, "interval", &hc->interval_ms);
    else if (has_key(p, "timeout"))
        param_duration(b, p, 8, "timeout", &hc->timeout_ms);
    else if (has_key(p, "rise"))
        param_number(b, p, 5, "rise", 1, 100, &hc->rise);
    else if (has_key(p, "fall"))
        param_number(b, p, 5, "fall", 1, 100, &hc->fall);
    else if (has_key(p, "expect"))
        expect_range(b, p, hc);
    else if (has_key(p, "host"))
        hc->host = param_name(b, p, 5, "host");
    else
        conf_err(b->st, &p->pos,
                 "unknown parameter '%s' in 'health_check' (expected interval=, timeout=, rise=, "
                 "fall=, expect= or host=)",
                 conf_show_tok(b, p));
}

void
conf_on_health_check(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *path = &n->args[0];
    if (!visible_path(path->text, path->len, "")) {
        conf_err(b->st, &path->pos,
                 "invalid path '%s' in 'health_check' (it starts with '/', without spaces or "
                 "control characters)",
                 conf_show_tok(b, path));
        return;
    }
    struct gh_health_check *hc = gh_arena_alloc(b->arena, sizeof(*hc));
    *hc = (struct gh_health_check){.path = path->text,
                                   .interval_ms = 5000,
                                   .timeout_ms = UINT32_MAX, /* unset */
                                   .rise = 2,
                                   .fall = 3,
                                   .expect_lo = 200,
                                   .expect_hi = 399};
    for (uint32_t i = 1; i < n->n_args; i++)
        health_param(b, &n->args[i], hc);
    if (hc->timeout_ms == UINT32_MAX)
        hc->timeout_ms = hc->interval_ms < 2000 ? hc->interval_ms : 2000;
    if (hc->interval_ms < 100) {
        conf_err(b->st, &n->name.pos, "'health_check' interval= is at least 100ms");
        return;
    }
    if (hc->timeout_ms == 0 || hc->timeout_ms > hc->interval_ms) {
        conf_err(b->st, &n->name.pos,
                 "'health_check' timeout= must be above 0 and at most the interval");
        return;
    }
    k->ups->uc.health = hc;
}

void
conf_on_fail_on(struct build *b, struct blk *k, const struct cnode *n)
{
    static const struct cond conds[] = {{"timeout", GH_FAIL_TIMEOUT}, {"error", GH_FAIL_ERROR},
                                        {"500", GH_FAIL_500},         {"502", GH_FAIL_502},
                                        {"503", GH_FAIL_503},         {"504", GH_FAIL_504},
                                        {"5xx", GH_FAIL_5XX}};
    cond_mask(b, n, conds, GH_ARRAY_LEN(conds), "connect_failure",
              "timeout, error, 500, 502, 503, 504, 5xx", &k->ups->uc.fail_on);
}

void
conf_on_region_fallback(struct build *b, struct blk *k, const struct cnode *n)
{
    conf_vec_push(b, &k->ups->fallbacks, (void *)n);
}

static bool
cookie_name_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f ||
            strchr("()<>@,;:\\\"/[]?={}", s[i]) != NULL)
            return false;
    return n > 0;
}

void
conf_on_sticky(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *kind = &n->args[0], *name = &n->args[1];
    if (!conf_tok_is(kind, "cookie")) {
        conf_err(b->st, &kind->pos, "unknown kind '%s' of 'sticky' (expected cookie NAME)",
                 conf_show_tok(b, kind));
        return;
    }
    if (!cookie_name_ok(name->text, name->len)) {
        conf_err(b->st, &name->pos, "invalid cookie name '%s' in 'sticky'", conf_show_tok(b, name));
        return;
    }
    uint32_t expires_ms = 0;
    const char *path = "/";
    for (uint32_t i = 2; i < n->n_args; i++) {
        const struct conf_tok *p = &n->args[i];
        if (has_key(p, "expires")) {
            if (!param_duration(b, p, 8, "expires", &expires_ms))
                return;
        } else if (has_key(p, "path") && visible_path(p->text + 5, p->len - 5, ";")) {
            path = p->text + 5;
        } else {
            conf_err(b->st, &p->pos,
                     "unknown or invalid parameter '%s' in 'sticky' (expected expires=DURATION or "
                     "path=/PATH)",
                     conf_show_tok(b, p));
            return;
        }
    }
    struct gh_sticky *st = gh_arena_alloc(b->arena, sizeof(*st));
    st->name = name->text;
    st->name_len = name->len;
    st->attrs = expires_ms > 0 ? gh_arena_sprintf(b->arena, "; Path=%s; Max-Age=%u; HttpOnly", path,
                                                  expires_ms / 1000)
                               : gh_arena_sprintf(b->arena, "; Path=%s; HttpOnly", path);
    st->attrs_len = (uint32_t)strlen(st->attrs);
    k->ups->uc.sticky = st;
}

/* `sticky cookie`: each server's cookie value, a hash of the upstream's name and its address (so
 * the address is not shown, and a server keeps its value across reloads). */
static void
sticky_ids(struct build *b, struct pups *u)
{
    for (uint32_t i = 0; i < u->servers.n; i++) {
        struct gh_upstream_server *s = u->servers.v[i];
        uint64_t h = 14695981039346656037ull;
        const char *parts[2] = {u->uc.name, s->addr.text};
        for (int p = 0; p < 2; p++) {
            for (const char *c = parts[p]; *c != '\0'; c++)
                h = (h ^ (unsigned char)*c) * 1099511628211ull;
            h *= 1099511628211ull; /* the NUL between the two */
        }
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
        s->sticky_id = gh_arena_sprintf(b->arena, "%016llx", (unsigned long long)h);
    }
}

/* The index of region name in v (const char *), added when add is set; -1 when absent. */
static int
region_index(struct build *b, struct vec *v, const char *name, bool add)
{
    for (uint32_t i = 0; i < v->n; i++)
        if (strcmp(v->v[i], name) == 0)
            return (int)i;
    if (!add)
        return -1;
    conf_vec_push(b, v, (void *)name);
    return (int)v->n - 1;
}

/* One `region_fallback FROM NEXT...;` resolved against the servers' regions. */
static void
fallback_one(struct build *b, struct vec *regions, uint32_t n_srv_regions, const struct cnode *n,
             struct gh_region_fallback *f)
{
    f->from = (uint32_t)region_index(b, regions, n->args[0].text, true);
    uint32_t *next = gh_arena_alloc(b->arena, n->n_args * sizeof(*next));
    for (uint32_t i = 1; i < n->n_args; i++) {
        int r = region_index(b, regions, n->args[i].text, false);
        if (r < 0 || (uint32_t)r >= n_srv_regions) {
            conf_err(b->st, &n->args[i].pos, "no server of this upstream has region=%s",
                     conf_show_tok(b, &n->args[i]));
            continue;
        }
        next[f->n_next++] = (uint32_t)r;
    }
    f->next = next;
}

/* Regions: the servers' (region_idx), then the fallbacks' own; `balance geo` needs some. */
static void
check_regions(struct build *b, struct pups *u)
{
    struct vec regions = {0};
    for (uint32_t i = 0; i < u->servers.n; i++) {
        struct gh_upstream_server *s = u->servers.v[i];
        s->region_idx =
            s->region != NULL ? (uint32_t)region_index(b, &regions, s->region, true) : UINT32_MAX;
    }
    uint32_t n_srv_regions = regions.n;
    struct gh_region_fallback *fb = gh_arena_alloc(b->arena, (u->fallbacks.n + 1) * sizeof(*fb));
    for (uint32_t i = 0; i < u->fallbacks.n; i++) {
        const struct cnode *n = u->fallbacks.v[i];
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(((const struct cnode *)u->fallbacks.v[j])->args[0].text, n->args[0].text) ==
                0)
                conf_err(b->st, &n->args[0].pos, "duplicate 'region_fallback' for region %s",
                         conf_show_tok(b, &n->args[0]));
        fallback_one(b, &regions, n_srv_regions, n, &fb[i]);
    }
    u->uc.fallbacks = fb;
    u->uc.n_fallbacks = u->fallbacks.n;
    u->uc.regions = (const char *const *)regions.v;
    u->uc.n_regions = regions.n;
    for (uint32_t i = 0; i < u->servers.n; i++) {
        struct gh_upstream_server *s = u->servers.v[i];
        if (s->region == NULL)
            s->region_idx = regions.n;
    }
    if (u->uc.balance == GH_BALANCE_GEO && n_srv_regions == 0)
        conf_err(b->st, &u->pos, "'balance geo' in upstream '%s' needs servers with region=NAME",
                 u->uc.name);
}

void
conf_check_upstream(struct build *b, struct pups *u)
{
    check_regions(b, u);
    if (u->uc.sticky != NULL)
        sticky_ids(b, u);
    for (uint32_t i = 0; i < u->servers.n; i++)
        u->uc.slow_start |= ((const struct gh_upstream_server *)u->servers.v[i])->slow_start_ms > 0;
    if (u->uc.slow_start && u->uc.balance == GH_BALANCE_HASH)
        conf_err(b->st, &u->pos,
                 "slow_start= cannot be used with 'balance hash' in upstream '%s' (a key's "
                 "server would change while the weight ramps up)",
                 u->uc.name);
    uint32_t primary = 0;
    for (uint32_t i = 0; i < u->servers.n; i++)
        primary += !((const struct gh_upstream_server *)u->servers.v[i])->backup;
    if (u->servers.n > 0 && primary == 0)
        conf_err(b->st, &u->pos,
                 "every server of upstream '%s' is 'backup' (a backup is used when the others "
                 "cannot be)",
                 u->uc.name);
}
