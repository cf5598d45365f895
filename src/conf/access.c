/*
 * access.c - the access directives (handlers for the table in parse.c):
 *
 *   allow ADDRESS|CIDR|all;              main, server, route
 *   deny ADDRESS|CIDR|all [STATUS];      main, server, route (STATUS 400..599, default 403)
 *   real_ip_from CIDR...;                main, server
 *   real_ip_header X-Forwarded-For|X-Real-IP|NAME;   main, server
 *   limit_conn N;                        main, server, route
 *   proxy_protocol_from CIDR...;         main, server
 *
 * A block's allow/deny rules, and its real_ip_from list, replace the inherited ones when it
 * has any (nginx); both are compiled into a prefix set (policy/cidr.h) when the block's
 * settings are done.
 */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "conf/parse_int.h"
#include "policy/cidr.h"

struct pacl { /* one allow / deny directive */
    struct gh_cidr c[2];
    uint32_t n; /* 2 for `all` */
    struct gh_access_rule rule;
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

void
conf_on_access(struct build *b, struct blk *k, const struct cnode *n)
{
    bool deny = n->name.text[0] == 'd';
    const struct conf_tok *t = &n->args[0];
    if (!deny && n->n_args > 1) {
        conf_err(b->st, &n->args[1].pos, "'allow' takes one address (a status is for 'deny')");
        return;
    }
    struct pacl *a = gh_arena_alloc(b->arena, sizeof(*a));
    a->rule.status = deny ? 403 : 0;
    a->rule.at = gh_arena_sprintf(b->arena, "access denied by the rule at %s:%u", n->name.pos.file,
                                  n->name.pos.line);
    if (conf_tok_is(t, "all")) {
        a->c[0].family = AF_INET;
        a->c[1].family = AF_INET6;
        a->n = 2;
    } else if (cidr_arg(b, t, n->name.text, &a->c[0])) {
        a->n = 1;
    } else {
        return;
    }
    if (n->n_args > 1) {
        uint64_t st;
        if (!conf_number_arg(b, &n->args[1], "deny", 400, 599, &st))
            return;
        a->rule.status = (uint16_t)st;
    }
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

static bool
is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

void
conf_on_real_ip_header(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    bool ok = t->len > 0;
    for (uint32_t i = 0; i < t->len && ok; i++)
        ok = is_tchar((unsigned char)t->text[i]);
    if (!ok) {
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

void
conf_access_finish(struct build *b, struct blk *k)
{
    if (k->acl.n > 0 && k->pc != NULL) {
        uint32_t np = 0;
        for (uint32_t i = 0; i < k->acl.n; i++)
            np += ((const struct pacl *)k->acl.v[i])->n;
        struct gh_cidr *pre = gh_arena_alloc(b->arena, np * sizeof(*pre));
        struct gh_access_rule *rules = gh_arena_alloc(b->arena, np * sizeof(*rules));
        np = 0;
        for (uint32_t i = 0; i < k->acl.n; i++) {
            const struct pacl *a = k->acl.v[i];
            for (uint32_t j = 0; j < a->n; j++) {
                pre[np] = a->c[j];
                rules[np++] = a->rule;
            }
        }
        struct gh_access *acc = gh_arena_alloc(b->arena, sizeof(*acc));
        acc->set = gh_cidr_set_build(b->arena, pre, np);
        acc->rules = rules;
        acc->n_rules = np;
        k->pc->access = acc;
    }
    if (k->real_ip.n > 0 && k->sc != NULL)
        k->sc->real_ip_from = cidr_set(b, &k->real_ip);
    if (k->pp_from.n > 0 && k->sc != NULL)
        k->sc->proxy_protocol_from = cidr_set(b, &k->pp_from);
}
