/*
 * ratelimit.c - the rate limit directives (handlers for the table in parse.c):
 *
 *   rate_limit KEY RATE [burst=N] [status=N] [zone=NAME];   main, server, route
 *   rate_limit_zone NAME keys=N;                             main
 *   rate_limit_headers on|off;                               main, server, route
 *
 * KEY is a template (GH_TC_KEY: $remote_addr, $http_authorization, "$remote_addr:$uri", ...),
 * RATE is Nr/s, Nr/m or Nr/h. Every rate_limit of a block applies; a block with its own
 * replaces the inherited ones (nginx's limit_req). A rate_limit without zone= has a zone of
 * its own (GH_RL_DEFAULT_KEYS keys); zone= names a rate_limit_zone, whose keys and state
 * every rate_limit naming it shares (and keeps across reloads while its size stays).
 */
#include <string.h>

#include "conf/parse_int.h"
#include "policy/ratelimit.h"

#define GH_RL_DEFAULT_KEYS 65536
#define GH_RL_MAX_KEYS (1u << 24)

struct prlzone { /* a rate_limit_zone */
    const char *name;
    uint32_t keys;
    struct gh_rl_zone *zone; /* NULL: not built (untrusted text) */
    struct conf_pos pos;
};

static void
zone_put(void *z)
{
    gh_rl_zone_put(z);
}

static struct gh_rl_zone *
zone_get(struct build *b, const char *name, uint32_t keys)
{
    if (b->st->flags & GH_CONF_NO_INCLUDE) /* fuzz input makes no shared tables */
        return NULL;
    struct gh_rl_zone *z = gh_rl_zone_get(name, keys);
    gh_arena_add_cleanup(b->arena, zone_put, z);
    return z;
}

/* t's bytes from off on, as a token of its own (for messages that point into it). */
static struct conf_tok
sub_tok(struct build *b, const struct conf_tok *t, uint32_t off)
{
    struct conf_tok s = *t;
    s.text = gh_arena_strndup(b->arena, t->text + off, t->len - off);
    s.len = t->len - off;
    s.pos.col += off;
    return s;
}

static bool
is_name(const char *s, uint32_t len)
{
    if (len == 0 || len > 64)
        return false;
    for (uint32_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

void
conf_on_rate_limit_zone(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *nt = &n->args[0], *kt = &n->args[1];
    if (!is_name(nt->text, nt->len)) {
        conf_err(b->st, &nt->pos, "invalid zone name '%s' (letters, digits, '_', '-', '.')",
                 conf_show_tok(b, nt));
        return;
    }
    for (uint32_t i = 0; i < b->rl_zones.n; i++) {
        const struct prlzone *z = b->rl_zones.v[i];
        if (strcmp(z->name, nt->text) == 0) {
            conf_err(b->st, &nt->pos, "rate_limit_zone '%s' is already defined at %s", nt->text,
                     conf_where(b, &z->pos, nt->pos.file));
            return;
        }
    }
    if (kt->len < 6 || strncmp(kt->text, "keys=", 5) != 0) {
        conf_err(b->st, &kt->pos, "expected keys=N in 'rate_limit_zone' (as in: keys=100000)");
        return;
    }
    struct conf_tok v = sub_tok(b, kt, 5);
    uint64_t keys;
    if (!conf_number_arg(b, &v, "rate_limit_zone keys", 16, GH_RL_MAX_KEYS, &keys))
        return;
    struct prlzone *z = gh_arena_alloc(b->arena, sizeof(*z));
    z->name = nt->text;
    z->keys = (uint32_t)keys;
    z->pos = nt->pos;
    z->zone = zone_get(b, z->name, z->keys);
    conf_vec_push(b, &b->rl_zones, z);
}

/* "10r/s", "600r/m", "5r/h" into rl; false after reporting. */
static bool
rate_arg(struct build *b, const struct conf_tok *t, struct gh_rate_limit *rl)
{
    const char *slash = memchr(t->text, '/', t->len);
    uint32_t nlen = slash != NULL ? (uint32_t)(slash - t->text) : 0;
    uint32_t per = 0;
    if (slash != NULL && nlen >= 2 && t->text[nlen - 1] == 'r' && t->len == nlen + 2) {
        char u = slash[1];
        per = u == 's' ? 1 : u == 'm' ? 60 : u == 'h' ? 3600 : 0;
    }
    if (per == 0) {
        conf_err(b->st, &t->pos,
                 "invalid rate '%s' in 'rate_limit' (expected requests per second, minute or "
                 "hour: 10r/s, 600r/m, 100r/h)",
                 conf_show_tok(b, t));
        return false;
    }
    struct conf_tok num = *t;
    num.text = gh_arena_strndup(b->arena, t->text, nlen - 1);
    num.len = nlen - 1;
    uint64_t r;
    if (!conf_number_arg(b, &num, "rate_limit rate", 1, 1000000, &r))
        return false;
    rl->rate = (uint32_t)r;
    rl->period_s = per;
    rl->interval_ns = per * 1000000000ull / r;
    return true;
}

static bool
zone_param(struct build *b, const struct conf_tok *t, struct gh_rate_limit *rl, const char **name)
{
    for (uint32_t i = 0; i < b->rl_zones.n; i++) {
        const struct prlzone *z = b->rl_zones.v[i];
        if (strlen(z->name) == t->len - 5 && memcmp(z->name, t->text + 5, t->len - 5) == 0) {
            rl->zone = z->zone;
            *name = z->name;
            return true;
        }
    }
    struct conf_tok v = sub_tok(b, t, 5);
    conf_err(b->st, &v.pos,
             "unknown zone '%s' in 'rate_limit' (define it at top level: rate_limit_zone %s "
             "keys=N;)",
             conf_show_tok(b, &v), conf_show_tok(b, &v));
    return false;
}

/* burst=N, status=N, zone=NAME; false after reporting. */
static bool
rl_param(struct build *b, const struct conf_tok *t, struct gh_rate_limit *rl, const char **zone)
{
    uint64_t v;
    if (t->len > 6 && strncmp(t->text, "burst=", 6) == 0) {
        struct conf_tok s = sub_tok(b, t, 6);
        if (!conf_number_arg(b, &s, "rate_limit burst", 0, 1000000, &v))
            return false;
        rl->burst = (uint32_t)v;
        return true;
    }
    if (t->len > 7 && strncmp(t->text, "status=", 7) == 0) {
        struct conf_tok s = sub_tok(b, t, 7);
        if (!conf_number_arg(b, &s, "rate_limit status", 400, 599, &v))
            return false;
        rl->status = (uint16_t)v;
        return true;
    }
    if (t->len > 5 && strncmp(t->text, "zone=", 5) == 0)
        return zone_param(b, t, rl, zone);
    if (conf_tok_is(t, "nodelay")) {
        conf_err(b->st, &t->pos,
                 "'nodelay' is how rate_limit always works: requests within the burst pass at "
                 "once, the rest are refused (remove it)");
        return false;
    }
    conf_err(b->st, &t->pos,
             "unknown parameter '%s' in 'rate_limit' (expected burst=N, status=N or zone=NAME)",
             conf_show_tok(b, t));
    return false;
}

void
conf_on_rate_limit(struct build *b, struct blk *k, const struct cnode *n)
{
    if (n->name.len == 18) { /* rate_limit_headers */
        conf_on_off(b, n, &k->pc->rate_limit_headers);
        return;
    }
    struct gh_rate_limit *rl = gh_arena_alloc(b->arena, sizeof(*rl));
    rl->status = 429;
    rl->key = conf_tmpl(b->st, &n->args[0], GH_TC_KEY, "rate_limit");
    if (rl->key == NULL || !rate_arg(b, &n->args[1], rl))
        return;
    if (!(rl->key->flags & GH_TMPL_VARS))
        conf_warn(b->st, &n->args[0].pos,
                  "the key of 'rate_limit' has no variable: every client shares one limit");
    const char *zone = NULL;
    for (uint32_t i = 2; i < n->n_args; i++)
        if (!rl_param(b, &n->args[i], rl, &zone))
            return;
    if (zone == NULL)
        rl->zone = zone_get(b, NULL, GH_RL_DEFAULT_KEYS);
    /* RFC 9651 sf-string: zone names are tokens of safe bytes */
    rl->policy = gh_arena_sprintf(b->arena, "\"%s\";q=%u;w=%u", zone ? zone : "default", rl->rate,
                                  rl->period_s);
    rl->policy_len = (uint32_t)strlen(rl->policy);
    rl->at = gh_arena_sprintf(b->arena, "rate_limit at %s:%u: too many requests for the key",
                              n->name.pos.file, n->name.pos.line);
    conf_vec_push(b, &k->rl, rl);
}

void
conf_ratelimit_finish(struct build *b, struct blk *k)
{
    if (k->rl.n == 0 || k->pc == NULL)
        return;
    struct gh_rate_limit *a = gh_arena_alloc(b->arena, k->rl.n * sizeof(*a));
    for (uint32_t i = 0; i < k->rl.n; i++)
        a[i] = *(const struct gh_rate_limit *)k->rl.v[i];
    k->pc->rate_limits = a;
    k->pc->n_rate_limits = k->rl.n;
}
