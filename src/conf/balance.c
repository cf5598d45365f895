/*
 * balance.c - the balancing directives of an upstream: `balance` (with the
 * hash key compiled as a template in the GH_TC_KEY context), `retry_on`, the
 * parameters of `server` (weight=, max_conns=, backup, tls), and the checks
 * that need the whole block (a backup server needs a non-backup one).
 * `max_fails`, `fail_timeout` and `retries` are plain values in parse.c's
 * table.
 */
#include <string.h>

#include "conf/parse_int.h"

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
                {"ewma", GH_BALANCE_EWMA}};
    int found = -1;
    for (size_t i = 0; i < GH_ARRAY_LEN(algs) && found < 0; i++)
        if (conf_tok_is(a, algs[i].name))
            found = (int)i;
    if (found < 0) {
        conf_err(b->st, &a->pos,
                 "unknown balance '%s' (expected round_robin, least_conn, random, hash KEY "
                 "[consistent] or ewma)",
                 conf_show_tok(b, a));
        return;
    }
    uc->balance = algs[found].b;
    if (uc->balance != GH_BALANCE_HASH) {
        if (n->n_args > 1)
            conf_err(b->st, &n->args[1].pos, "'balance %s' takes no argument", algs[found].name);
        return;
    }
    if (n->n_args < 2) {
        conf_err(b->st, &a->pos,
                 "'balance hash' needs a key (as in: balance hash $remote_addr consistent;)");
        return;
    }
    if (n->n_args == 3) {
        if (!conf_tok_is(&n->args[2], "consistent")) {
            conf_err(b->st, &n->args[2].pos,
                     "unknown parameter '%s' in 'balance hash' (expected consistent)",
                     conf_show_tok(b, &n->args[2]));
            return;
        }
        uc->hash_consistent = true;
    }
    const struct gh_tmpl *t = conf_tmpl(b->st, &n->args[1], GH_TC_KEY, "balance hash");
    if (t == NULL)
        return;
    if (!(t->flags & GH_TMPL_VARS))
        conf_warn(b->st, &n->args[1].pos,
                  "the key of 'balance hash' has no variable: every request goes to one server");
    uc->hash_key = t;
}

void
conf_on_retry_on(struct build *b, struct blk *k, const struct cnode *n)
{
    static const struct {
        const char *name;
        uint32_t bit;
    } conds[] = {{"connect_failure", GH_RETRY_CONNECT},
                 {"timeout", GH_RETRY_TIMEOUT},
                 {"error", GH_RETRY_ERROR},
                 {"500", GH_RETRY_500},
                 {"502", GH_RETRY_502},
                 {"503", GH_RETRY_503},
                 {"504", GH_RETRY_504}};
    uint32_t mask = 0;
    for (uint32_t i = 0; i < n->n_args; i++) {
        const struct conf_tok *t = &n->args[i];
        if (conf_tok_is(t, "off") && n->n_args == 1)
            break;
        size_t j = 0;
        while (j < GH_ARRAY_LEN(conds) && !conf_tok_is(t, conds[j].name))
            j++;
        if (j == GH_ARRAY_LEN(conds)) {
            conf_err(b->st, &t->pos,
                     "unknown condition '%s' in 'retry_on' (expected connect_failure, timeout, "
                     "error, 500, 502, 503, 504, or off alone)",
                     conf_show_tok(b, t));
            return;
        }
        mask |= conds[j].bit;
    }
    k->ups->uc.retry_on = mask;
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
    else
        conf_err(b->st, &p->pos,
                 "unknown parameter '%s' in 'server' (expected weight=N, max_conns=N, backup, "
                 "tls, send_proxy or send_proxy_v2)",
                 conf_show_tok(b, p));
}

void
conf_check_upstream(struct build *b, struct pups *u)
{
    uint32_t primary = 0;
    for (uint32_t i = 0; i < u->servers.n; i++)
        primary += !((const struct gh_upstream_server *)u->servers.v[i])->backup;
    if (u->servers.n > 0 && primary == 0)
        conf_err(b->st, &u->pos,
                 "every server of upstream '%s' is 'backup' (a backup is used when the others "
                 "cannot be)",
                 u->uc.name);
}
