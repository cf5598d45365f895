/*
 * cond.c - the conditions of access rules, after `if` (policy/rules.h has their runtime form):
 *
 *   conds   := cond { "and" cond }
 *   cond    := [ "not" ] subject
 *   subject := "client" CIDR[,CIDR...]       addresses and prefixes, IPv4 and IPv6
 *            | "client" "in" FILE            one address or prefix a line, '#' comments
 *            | "method" NAME[,NAME...]       GET,POST (exact)
 *            | "host" [OP] VALUE             the Host without its port; = by default
 *            | "path" [OP] VALUE             the normalised path; ^ (prefix) by default
 *            | "sni" [OP] VALUE              the TLS server name; = by default
 *            | "cert_subject" [OP] VALUE     the client certificate's subject; = by default
 *            | "geo" $NAME [OP] VALUE        what a geo map gives the client's address; =
 *            | "arg" NAME [OP VALUE]         a query argument (present, or compared)
 *            | "header" NAME [OP VALUE]      a request field
 *            | "cookie" NAME [OP VALUE]      a cookie
 *   OP      := "=" (exact) | "^" (prefix) | "~" (PCRE2) | "~*" (PCRE2, caseless)
 *
 * Keywords and operators are bare words; a quoted "and" is a value. Regexes are compiled
 * now; client lists become prefix sets.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conf/parse_int.h"
#include "policy/cidr.h"
#include "policy/rules.h"

#define MAX_CONDS 32
#define CLIENT_FILE_MAX (16u << 20)

struct cursor {
    struct build *b;
    const struct cnode *n;
    uint32_t i; /* the next argument */
};

static const struct conf_tok *
peek(const struct cursor *c)
{
    return c->i < c->n->n_args ? &c->n->args[c->i] : NULL;
}

static bool
is_kw(const struct conf_tok *t, const char *kw)
{
    return t != NULL && t->type == TOK_WORD && conf_tok_is(t, kw);
}

/* The next argument, or NULL after reporting that what was expected is missing. */
static const struct conf_tok *
take(struct cursor *c, const char *what)
{
    const struct conf_tok *t = peek(c);
    if (t == NULL || is_kw(t, "and")) {
        const struct conf_tok *last = &c->n->args[c->i - 1];
        struct conf_pos at = t != NULL ? t->pos : last->pos;
        if (t == NULL)
            at.col = last->end_col;
        conf_err(c->b->st, &at, "expected %s after '%s' in the conditions of '%s'", what,
                 conf_show_tok(c->b, last), c->n->name.text);
        return NULL;
    }
    c->i++;
    return t;
}

/* One address or prefix into *out; false after reporting (at pos, naming where). */
static bool
prefix(struct build *b, const char *s, size_t len, const struct conf_pos *pos, const char *where,
       struct gh_cidr *out)
{
    bool host_bits;
    const char *why;
    if (gh_cidr_parse(s, len, out, &host_bits, &why) == 0)
        return true;
    conf_err(b->st, pos, "invalid address '%.*s'%s in 'client': %s", (int)GH_MIN(len, 64), s, where,
             why);
    return false;
}

/* "10.0.0.0/8,::1" */
static bool
client_list(struct cursor *c, const struct conf_tok *t, struct vec *v)
{
    const char *p = t->text, *e = t->text + t->len;
    while (p <= e) {
        const char *comma = memchr(p, ',', (size_t)(e - p));
        const char *end = comma != NULL ? comma : e;
        struct gh_cidr *x = gh_arena_alloc(c->b->arena, sizeof(*x));
        struct conf_pos pos = t->pos;
        pos.col += (uint32_t)(p - t->text);
        if (!prefix(c->b, p, (size_t)(end - p), &pos, "", x))
            return false;
        conf_vec_push(c->b, v, x);
        p = end + 1;
    }
    return true;
}

/* One line of a client file (trimmed, comments gone) into v. */
static bool
client_line(struct cursor *c, const struct conf_tok *t, const char *path, uint32_t ln, char *s,
            struct vec *v)
{
    char *hash = strchr(s, '#');
    if (hash != NULL)
        *hash = '\0';
    size_t len = strlen(s);
    while (len > 0 &&
           (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' || s[len - 1] == '\n'))
        s[--len] = '\0';
    while (*s == ' ' || *s == '\t')
        s++, len--;
    if (len == 0)
        return true;
    char where[300];
    snprintf(where, sizeof(where), " (%s line %u)", path, ln);
    struct gh_cidr *x = gh_arena_alloc(c->b->arena, sizeof(*x));
    if (!prefix(c->b, s, len, &t->pos, where, x))
        return false;
    conf_vec_push(c->b, v, x);
    return true;
}

static bool
client_file(struct cursor *c, const struct conf_tok *t, struct vec *v)
{
    if (!conf_check_path(c->b, c->n, t) || (c->b->st->flags & GH_CONF_NO_INCLUDE))
        return true; /* untrusted text reads no files: an empty list */
    const char *path = conf_path_arg(c->b, c->n, t);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        conf_err(c->b->st, &t->pos, "cannot read '%s': %s", path, strerror(errno));
        return false;
    }
    char line[512];
    uint32_t ln = 0;
    bool ok = true;
    while (ok && fgets(line, sizeof(line), f) != NULL)
        ok = client_line(c, t, path, ++ln, line, v);
    fclose(f);
    return ok;
}

static bool
parse_client(struct cursor *c, struct gh_rule_cond *r)
{
    struct vec v = {0};
    const struct conf_tok *t = take(c, "addresses or 'in FILE'");
    if (t == NULL)
        return false;
    bool ok;
    if (is_kw(t, "in")) {
        t = take(c, "a file of addresses");
        ok = t != NULL && client_file(c, t, &v);
    } else {
        ok = client_list(c, t, &v);
    }
    if (!ok)
        return false;
    struct gh_cidr *pre = gh_arena_alloc(c->b->arena, v.n * sizeof(*pre));
    for (uint32_t i = 0; i < v.n; i++)
        pre[i] = *(const struct gh_cidr *)v.v[i];
    r->clients = gh_cidr_set_build(c->b->arena, pre, v.n);
    return true;
}

static bool
parse_method(struct cursor *c, struct gh_rule_cond *r)
{
    const struct conf_tok *t = take(c, "methods (GET,POST)");
    if (t == NULL)
        return false;
    uint32_t n = 1;
    for (uint32_t i = 0; i < t->len; i++)
        n += t->text[i] == ',';
    struct gh_hdr_name *m = gh_arena_alloc(c->b->arena, n * sizeof(*m));
    const char *p = t->text, *e = t->text + t->len;
    for (uint32_t k = 0; k < n; k++) {
        const char *comma = memchr(p, ',', (size_t)(e - p));
        const char *end = comma != NULL ? comma : e;
        bool ok = end > p;
        for (const char *q = p; q < end && ok; q++)
            ok = (*q >= 'A' && *q <= 'Z') || *q == '-' || *q == '_';
        if (!ok) {
            conf_err(c->b->st, &t->pos, "invalid method list '%s' (expected e.g. GET,POST)",
                     conf_show_tok(c->b, t));
            return false;
        }
        m[k].name = p;
        m[k].len = (uint32_t)(end - p);
        p = end + 1;
    }
    r->methods = m;
    r->n_methods = n;
    return true;
}

/* An operator word: its op (and caseless for ~*), or -1. */
static int
op_of(const struct conf_tok *t, bool *caseless)
{
    *caseless = false;
    if (t == NULL || t->type != TOK_WORD)
        return -1;
    if (conf_tok_is(t, "="))
        return GH_RO_EQ;
    if (conf_tok_is(t, "^"))
        return GH_RO_PREFIX;
    if (conf_tok_is(t, "~"))
        return GH_RO_REGEX;
    if (conf_tok_is(t, "~*")) {
        *caseless = true;
        return GH_RO_REGEX;
    }
    return -1;
}

/* [OP] VALUE (dflt when no operator; -1: a name was read and the operator may be absent:
 * PRESENT). */
static bool
parse_value(struct cursor *c, struct gh_rule_cond *r, int dflt)
{
    bool caseless;
    int op = op_of(peek(c), &caseless);
    if (op < 0 && dflt < 0) {
        r->op = GH_RO_PRESENT;
        return true;
    }
    if (op >= 0)
        c->i++;
    const struct conf_tok *v = take(c, "a value");
    if (v == NULL)
        return false;
    r->op = (uint8_t)(op >= 0 ? op : dflt);
    if (r->op == GH_RO_REGEX) {
        r->re = conf_regex(c->b->st, v, caseless || r->icase, c->n->name.text);
        return r->re != NULL;
    }
    if (r->subj == GH_RS_PATH && (v->len == 0 || v->text[0] != '/')) {
        /* `path ^/api/` would be a prefix that never matches: say so */
        conf_err(c->b->st, &v->pos,
                 "a path to compare must start with '/', got '%s' (operators are words of their "
                 "own: path ^ /api/, path ~ ^/api/)",
                 conf_show_tok(c->b, v));
        return false;
    }
    r->val = v->text;
    r->val_len = v->len;
    return true;
}

static const struct {
    const char *kw;
    uint8_t subj;
    int8_t dflt; /* the operator without one; -1: a name, then an optional comparison */
    bool icase;  /* = and ^ ignore case */
} subjects[] = {
    {"client", GH_RS_CLIENT, 0, false},   {"method", GH_RS_METHOD, 0, false},
    {"host", GH_RS_HOST, GH_RO_EQ, true}, {"path", GH_RS_PATH, GH_RO_PREFIX, false},
    {"sni", GH_RS_SNI, GH_RO_EQ, true},   {"cert_subject", GH_RS_CERT, GH_RO_EQ, false},
    {"arg", GH_RS_ARG, -1, false},        {"header", GH_RS_HEADER, -1, false},
    {"cookie", GH_RS_COOKIE, -1, false},  {"geo", GH_RS_GEO, GH_RO_EQ, false},
};

/* `geo $NAME`: the map of that name (defined at top level, anywhere in the file). */
static bool
parse_geo(struct cursor *c, struct gh_rule_cond *r)
{
    const struct conf_tok *nm = take(c, "a geo map's $NAME");
    if (nm == NULL)
        return false;
    for (uint32_t i = 0; nm->len > 1 && nm->text[0] == '$' && i < c->b->geos.n; i++) {
        const struct gh_geo *g = c->b->geos.v[i];
        if (strlen(g->name) == nm->len - 1u && memcmp(g->name, nm->text + 1, nm->len - 1u) == 0) {
            r->geo = g;
            return true;
        }
    }
    conf_err(c->b->st, &nm->pos,
             "'%s' in the conditions of '%s' is not a geo map (geo $NAME { ... })",
             conf_show_tok(c->b, nm), c->n->name.text);
    return false;
}

static bool
parse_cond(struct cursor *c, struct gh_rule_cond *r)
{
    if (is_kw(peek(c), "not")) {
        r->negate = true;
        c->i++;
    }
    const struct conf_tok *t = take(c, "a condition (client, method, host, path, arg, header, "
                                       "cookie, sni, cert_subject or geo)");
    if (t == NULL)
        return false;
    for (size_t k = 0; k < GH_ARRAY_LEN(subjects); k++) {
        if (t->type != TOK_WORD || !conf_tok_is(t, subjects[k].kw))
            continue;
        r->subj = subjects[k].subj;
        r->icase = subjects[k].icase;
        if (r->subj == GH_RS_CLIENT)
            return parse_client(c, r);
        if (r->subj == GH_RS_METHOD)
            return parse_method(c, r);
        if (r->subj == GH_RS_GEO && !parse_geo(c, r))
            return false;
        if (subjects[k].dflt < 0) {
            const struct conf_tok *nm = take(c, "a name");
            if (nm == NULL)
                return false;
            r->name = nm->text;
            r->name_len = nm->len;
        }
        return parse_value(c, r, subjects[k].dflt);
    }
    conf_err(c->b->st, &t->pos,
             "unknown condition '%s' in '%s' (expected client, method, host, path, arg, header, "
             "cookie, sni, cert_subject or geo)",
             conf_show_tok(c->b, t), c->n->name.text);
    return false;
}

bool
conf_cond_parse(struct build *b, const struct cnode *n, uint32_t from,
                const struct gh_rule_cond **out, uint32_t *n_out)
{
    struct cursor c = {b, n, from};
    struct gh_rule_cond tmp[MAX_CONDS];
    uint32_t k = 0;
    for (;;) {
        if (k == MAX_CONDS) {
            conf_err(b->st, &n->args[c.i].pos, "more than %d conditions in one rule", MAX_CONDS);
            return false;
        }
        memset(&tmp[k], 0, sizeof(tmp[k]));
        if (!parse_cond(&c, &tmp[k++]))
            return false;
        const struct conf_tok *t = peek(&c);
        if (t == NULL)
            break;
        if (!is_kw(t, "and")) {
            if (!conf_missing_semi(b, n, c.i))
                conf_err(b->st, &t->pos, "expected 'and' or ';' after a condition, got '%s'",
                         conf_show_tok(b, t));
            return false;
        }
        c.i++;
    }
    struct gh_rule_cond *a = gh_arena_alloc(b->arena, k * sizeof(*a));
    memcpy(a, tmp, k * sizeof(*a));
    *out = a;
    *n_out = k;
    return true;
}
