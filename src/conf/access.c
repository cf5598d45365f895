/*
 * access.c - the access directives (handlers for the table in parse.c):
 *
 *   allow [ADDRESS|CIDR|all] [if CONDITIONS];          main, server, route
 *   deny [ADDRESS|CIDR|all] [STATUS] [if CONDITIONS];  (STATUS 400..599, default 403)
 *   redirect CODE URL [if CONDITIONS];                  main, server, route
 *   return CODE [TEXT] if CONDITIONS;                   (without `if`: parse.c's return)
 *   real_ip_from CIDR...;                main, server
 *   real_ip_header X-Forwarded-For|X-Real-IP|NAME;   main, server
 *   limit_conn N;                        main, server, route
 *   proxy_protocol_from CIDR...;         main, server
 *
 * A block's rules, and its real_ip_from list, replace the inherited ones when it has any
 * (nginx). The rules form one ordered list where the first that matches decides; runs of
 * plain address rules are compiled into prefix sets (policy/cidr.h), conditions (cond.c)
 * into policy/rules.h's form, when the block's settings are done.
 */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "conf/parse_int.h"
#include "policy/cidr.h"
#include "policy/rules.h"

struct pacl { /* one allow / deny / redirect / return rule */
    struct gh_cidr c[2];
    uint32_t n; /* prefixes: 0 (conditions only), 1, or 2 for `all` */
    struct gh_access_rule rule;
    const struct gh_rule_cond *conds; /* after `if` (NULL: none) */
    uint32_t n_conds;
};

/* t as a prefix into *c; false after reporting. A host part with bits set past the prefix
 * length is read without them, with a warning (nginx: "low address bits are meaningless"). */
static bool
cidr_arg(struct build *b, const struct conf_tok *t, const char *what, struct gh_cidr *c)
{
    bool host_bits;
    const char *why;
    if (gh_cidr_parse(t->text, t->len, c, &host_bits, &why) != 0) {
        conf_err(b->st, &t->pos,
                 "invalid address '%s' in '%s': %s (expected e.g. 192.0.2.1, 10.0.0.0/8, "
                 "2001:db8::/32%s)",
                 conf_show_tok(b, t), what, why, what[0] == 'a' || what[0] == 'd' ? " or all" : "");
        return false;
    }
    if (host_bits) {
        char ip[64];
        inet_ntop(c->family, c->ip, ip, sizeof(ip));
        conf_warn(b->st, &t->pos, "low address bits of '%s' in '%s' are meaningless: read as %s/%u",
                  conf_show_tok(b, t), what, ip, c->bits);
    }
    return true;
}

uint32_t
conf_if_at(const struct cnode *n)
{
    for (uint32_t i = 0; i < n->n_args; i++)
        if (n->args[i].type == TOK_WORD && conf_tok_is(&n->args[i], "if"))
            return i;
    return n->n_args;
}

static struct pacl *
new_rule(struct build *b, const struct cnode *n, uint8_t action)
{
    struct pacl *a = gh_arena_alloc(b->arena, sizeof(*a));
    a->rule.action = action;
    a->rule.at = gh_arena_sprintf(b->arena, "access denied by the rule at %s:%u", n->name.pos.file,
                                  n->name.pos.line);
    return a;
}

/* The conditions after `if` (at index at); false after reporting. */
static bool
rule_conds(struct build *b, const struct cnode *n, uint32_t at, struct pacl *a)
{
    if (at == n->n_args)
        return true;
    if (at + 1 == n->n_args) {
        struct conf_pos p = n->args[at].pos;
        p.col = n->args[at].end_col;
        conf_err(b->st, &p, "expected conditions after 'if' in '%s'", n->name.text);
        return false;
    }
    return conf_cond_parse(b, n, at + 1, &a->conds, &a->n_conds);
}

static bool
is_status(const struct conf_tok *t)
{
    for (uint32_t i = 0; i < t->len; i++)
        if (t->text[i] < '0' || t->text[i] > '9')
            return false;
    return t->len > 0 && t->len <= 4;
}

void
conf_on_access(struct build *b, struct blk *k, const struct cnode *n)
{
    bool deny = n->name.text[0] == 'd';
    uint32_t at = conf_if_at(n), i = 0;
    struct pacl *a = new_rule(b, n, deny ? GH_ACC_DENY : GH_ACC_ALLOW);
    a->rule.status = deny ? 403 : 0;
    const struct conf_tok *t = &n->args[0];
    if (at > 0 && !(deny && is_status(t))) { /* an address (else: a status, or only `if`) */
        if (conf_tok_is(t, "all")) {
            a->c[0].family = AF_INET;
            a->c[1].family = AF_INET6;
            a->n = 2;
        } else if (cidr_arg(b, t, n->name.text, &a->c[0])) {
            a->n = 1;
        } else {
            return;
        }
        i = 1;
    }
    if (i < at && !deny) {
        if (conf_missing_semi(b, n, i))
            return;
        conf_err(b->st, &n->args[i].pos, "'allow' takes one address (a status is for 'deny')");
        return;
    }
    if (i < at) {
        uint64_t st;
        if (!conf_number_arg(b, &n->args[i], "deny", 400, 599, &st))
            return;
        a->rule.status = (uint16_t)st;
        i++;
    }
    if (i < at) {
        if (!conf_missing_semi(b, n, i))
            conf_err(b->st, &n->args[i].pos, "unexpected '%s' in '%s' (expected 'if' or ';')",
                     conf_show_tok(b, &n->args[i]), n->name.text);
        return;
    }
    if (a->n == 0 && at == n->n_args) {
        conf_err(b->st, &n->name.pos, "'%s' needs an address or conditions (if ...)", n->name.text);
        return;
    }
    if (rule_conds(b, n, at, a))
        conf_vec_push(b, &k->acl, a);
}

/* The text of a redirect or return rule (t), with its variables compiled. */
static bool
rule_text(struct build *b, const struct cnode *n, const struct conf_tok *t, struct pacl *a)
{
    a->rule.text = t->text;
    a->rule.text_len = t->len;
    const struct gh_tmpl *tm = conf_tmpl(b->st, t, GH_TC_REQUEST, n->name.text);
    if (tm == NULL)
        return false;
    if (tm->flags & GH_TMPL_VARS)
        a->rule.tmpl = tm;
    return true;
}

void
conf_on_redirect(struct build *b, struct blk *k, const struct cnode *n)
{
    uint32_t at = conf_if_at(n);
    const struct conf_tok *t = &n->args[0];
    uint64_t code;
    if (!conf_number_arg(b, t, "redirect", 301, 308, &code) || code == 304 || code == 305 ||
        code == 306) {
        if (code >= 304 && code <= 306)
            conf_err(b->st, &t->pos, "invalid redirect code '%s' (301, 302, 303, 307 or 308)",
                     conf_show_tok(b, t));
        return;
    }
    if (at != 2) {
        conf_err(b->st, &n->name.pos, "expected 'redirect CODE URL [if ...]'");
        return;
    }
    const struct conf_tok *u = &n->args[1];
    if (!conf_url_arg(b, u, "redirect"))
        return;
    struct pacl *a = new_rule(b, n, GH_ACC_REDIRECT);
    a->rule.status = (uint16_t)code;
    if (rule_text(b, n, u, a) && rule_conds(b, n, at, a))
        conf_vec_push(b, &k->acl, a);
}

void
conf_on_return_rule(struct build *b, struct blk *k, const struct cnode *n)
{
    uint32_t at = conf_if_at(n);
    uint64_t code;
    if (!conf_number_arg(b, &n->args[0], "return", 200, 599, &code))
        return;
    if (at > 2) {
        conf_err(b->st, &n->args[2].pos, "expected 'if' after 'return CODE [TEXT]'");
        return;
    }
    struct pacl *a = new_rule(b, n, GH_ACC_RETURN);
    a->rule.status = (uint16_t)code;
    if ((at == 1 || rule_text(b, n, &n->args[1], a)) && rule_conds(b, n, at, a))
        conf_vec_push(b, &k->acl, a);
}

/* The prefixes of a list of trusted peers (real_ip_from, proxy_protocol_from) into v; `all`
 * is refused (who: what to name instead). */
static void
trusted_list(struct build *b, const struct cnode *n, const char *who, struct vec *v)
{
    for (uint32_t i = 0; i < n->n_args; i++) {
        const struct conf_tok *t = &n->args[i];
        struct gh_cidr *c = gh_arena_alloc(b->arena, sizeof(*c));
        if (conf_tok_is(t, "all")) {
            conf_err(b->st, &t->pos,
                     "'%s all' would let every client choose its address: name the %s (e.g. "
                     "10.0.0.0/8)",
                     n->name.text, who);
            continue;
        }
        if (cidr_arg(b, t, n->name.text, c))
            conf_vec_push(b, v, c);
    }
}

void
conf_on_real_ip_from(struct build *b, struct blk *k, const struct cnode *n)
{
    trusted_list(b, n, "proxies", &k->real_ip);
}

void
conf_on_proxy_protocol_from(struct build *b, struct blk *k, const struct cnode *n)
{
    trusted_list(b, n, "balancers", &k->pp_from);
}

static const struct gh_cidr_set *
cidr_set(struct build *b, const struct vec *v)
{
    struct gh_cidr *pre = gh_arena_alloc(b->arena, v->n * sizeof(*pre));
    for (uint32_t i = 0; i < v->n; i++)
        pre[i] = *(const struct gh_cidr *)v->v[i];
    return gh_cidr_set_build(b->arena, pre, v->n);
}

void
conf_on_real_ip_header(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    if (!conf_is_token(t->text, t->len)) {
        conf_err(b->st, &t->pos,
                 "invalid header name '%s' in 'real_ip_header' (expected X-Forwarded-For, "
                 "X-Real-IP or another header name)",
                 conf_show_tok(b, t));
        return;
    }
    if (conf_tok_is(t, "proxy_protocol")) {
        conf_err(b->st, &t->pos,
                 "'real_ip_header proxy_protocol': Gatehouse takes the PROXY protocol's address "
                 "on the listener itself: 'listen ... proxy_protocol;' with "
                 "'proxy_protocol_from CIDR...;'");
        return;
    }
    k->sc->real_ip_header = t->text;
    k->sc->real_ip_header_len = t->len;
    k->sc->real_ip_list = t->len == 15 && gh_strncaseeq(t->text, "x-forwarded-for", 15);
}

void
conf_on_limit_conn(struct build *b, struct blk *k, const struct cnode *n)
{
    if (n->n_args > 1) {
        conf_err(b->st, &n->args[0].pos,
                 "'limit_conn' takes one number here: it counts per client address, with no "
                 "zone (nginx's limit_conn_zone $binary_remote_addr)");
        return;
    }
    uint64_t v;
    if (conf_number_arg(b, &n->args[0], "limit_conn", 1, 1000000, &v))
        k->pc->limit_conn = (uint32_t)v;
}

/* The steps of a block's rules: runs of plain address rules as prefix sets, the others one
 * step each (their address, if any, a `client` condition before the rest). */
static struct gh_access *
compile_rules(struct build *b, const struct vec *acl)
{
    struct gh_access *acc = gh_arena_alloc(b->arena, sizeof(*acc));
    struct gh_access_step *steps = gh_arena_alloc(b->arena, acl->n * sizeof(*steps));
    struct gh_cidr *pre = gh_arena_alloc(b->arena, 2 * acl->n * sizeof(*pre));
    struct gh_access_rule *rules = gh_arena_alloc(b->arena, 2 * acl->n * sizeof(*rules));
    uint32_t ns = 0, np = 0, run = 0; /* run: where the current run of prefixes starts */
    for (uint32_t i = 0; i <= acl->n; i++) {
        const struct pacl *a = i < acl->n ? acl->v[i] : NULL;
        if (a != NULL && a->n_conds == 0) {
            for (uint32_t j = 0; j < a->n; j++) {
                pre[np] = a->c[j];
                rules[np++] = a->rule;
            }
            continue;
        }
        if (np > run) { /* the run ends */
            steps[ns].set = gh_cidr_set_build(b->arena, pre + run, np - run);
            steps[ns++].rules = rules + run;
            run = np;
        }
        if (a == NULL)
            break;
        struct gh_access_step *s = &steps[ns++];
        s->rule = a->rule;
        s->conds = a->conds;
        s->n_conds = a->n_conds;
        if (a->n > 0) {
            struct gh_rule_cond *c = gh_arena_alloc(b->arena, (a->n_conds + 1) * sizeof(*c));
            c[0].subj = GH_RS_CLIENT;
            c[0].clients = gh_cidr_set_build(b->arena, a->c, a->n);
            memcpy(c + 1, a->conds, a->n_conds * sizeof(*c));
            s->conds = c;
            s->n_conds++;
        }
        acc->conds = true;
        acc->needs_tls = acc->needs_tls || gh_rule_needs_tls(s->conds, s->n_conds);
    }
    acc->steps = steps;
    acc->n_steps = ns;
    return acc;
}

void
conf_access_finish(struct build *b, struct blk *k)
{
    if (k->acl.n > 0 && k->pc != NULL)
        k->pc->access = compile_rules(b, &k->acl);
    if (k->real_ip.n > 0 && k->sc != NULL)
        k->sc->real_ip_from = cidr_set(b, &k->real_ip);
    if (k->pp_from.n > 0 && k->sc != NULL)
        k->sc->proxy_protocol_from = cidr_set(b, &k->pp_from);
}
