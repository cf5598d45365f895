/*
 * tmpl.c - the template compiler: "$name", "${name}" and "$$" into pieces.
 */
#include "conf/tmpl.h"

#include <string.h>

#include "conf/conf_int.h"

struct var_def {
    const char *name;
    uint32_t where;
    uint8_t req;
};

static const struct var_def vars[GH_VAR__COUNT] = {
    [GH_VAR_NONE] = {"", 0, 0},
#define GH_VAR_DEF(id, nm, wh, rq) [GH_VAR_##id] = {nm, wh, rq},
    GH_VAR_TABLE(GH_VAR_DEF)
#undef GH_VAR_DEF
        [GH_VAR_CAPTURE] = {"1..9", GH_TC_REWRITE, 0},
    [GH_VAR_GEO] = {"geo", GH_VA_REQ, 0},
};

const char *
gh_var_name(enum gh_var v)
{
    return (unsigned)v < GH_VAR__COUNT ? vars[v].name : "?";
}

static int
name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* "response_header and log_format": where the contexts of mask are. */
static const char *
contexts_text(struct conf_state *st, uint32_t mask)
{
    static const struct {
        uint32_t bit;
        const char *text;
    } names[] = {{GH_TC_REQUEST, "request_header and return"},
                 {GH_TC_REWRITE, "rewrite"},
                 {GH_TC_RESPONSE, "response_header"},
                 {GH_TC_LOG, "log_format"},
                 {GH_TC_KEY, "balance hash, rate_limit and cache keys"}};
    const char *out = "";
    for (size_t i = 0; i < GH_ARRAY_LEN(names); i++) {
        if (!(mask & names[i].bit))
            continue;
        out = out[0] == '\0' ? names[i].text
                             : gh_arena_sprintf(st->arena, "%s, %s", out, names[i].text);
    }
    return out;
}

/* The variable named name[0..len) (exact, or a prefix with its argument in *arg); names compare
 * case-insensitively, as in nginx. */
static enum gh_var
lookup(const char *name, size_t len, const char **arg, size_t *arg_len)
{
    for (int v = GH_VAR_NONE + 1; v < GH_VAR_CAPTURE; v++) {
        size_t nl = strlen(vars[v].name);
        if (vars[v].name[nl - 1] == '_') {
            if (len > nl && gh_strncaseeq(name, vars[v].name, nl)) {
                *arg = name + nl;
                *arg_len = len - nl;
                return (enum gh_var)v;
            }
        } else if (nl == len && gh_strncaseeq(name, vars[v].name, len)) { /* nginx: $HOST too */
            return (enum gh_var)v;
        }
    }
    return GH_VAR_NONE;
}

/* Is name[0..len) exactly the prefix of a prefixed variable ("http_" of "$http_NAME")? */
static bool
bare_prefix(const char *name, size_t len)
{
    for (int v = GH_VAR_NONE + 1; v < GH_VAR_CAPTURE; v++) {
        size_t nl = strlen(vars[v].name);
        if (vars[v].name[nl - 1] == '_' && nl == len && memcmp(name, vars[v].name, len) == 0)
            return true;
    }
    return false;
}

/* " (did you mean '$x'?)" or "". */
static const char *
did_you_mean(struct conf_state *st, const char *name, size_t len)
{
    const char *best = NULL;
    uint32_t best_d = UINT32_MAX;
    size_t best_len = 0; /* the longer of the two compared */
    for (int v = GH_VAR_NONE + 1; v < GH_VAR_CAPTURE; v++) {
        const char *vn = vars[v].name;
        size_t vl = strlen(vn);
        /* compare a prefix variable against as much of the name */
        size_t cl = vn[vl - 1] == '_' && len > vl ? vl : len;
        uint32_t d = conf_distance(name, cl, vn, vl);
        if (d < best_d) {
            best_d = d;
            best = vn;
            best_len = GH_MAX(cl, vl);
        }
    }
    if (best == NULL || best_d == 0 || best_d * 2 > best_len)
        return "";
    size_t bl = strlen(best);
    return gh_arena_sprintf(st->arena, " (did you mean '$%s%s'?)", best,
                            best[bl - 1] == '_' ? "NAME" : "");
}

struct parts {
    struct gh_tmpl_part *v;
    uint32_t n, cap;
};

static void
push(struct conf_state *st, struct parts *p, const char *text, size_t len, enum gh_var var)
{
    if (var == GH_VAR_NONE && len == 0)
        return;
    if (var == GH_VAR_NONE && p->n > 0 && p->v[p->n - 1].var == GH_VAR_NONE &&
        p->v[p->n - 1].text + p->v[p->n - 1].len == text) {
        p->v[p->n - 1].len += (uint32_t)len; /* adjacent literal bytes: one piece */
        return;
    }
    if (p->n == p->cap) {
        uint32_t cap = p->cap ? p->cap * 2 : 8;
        struct gh_tmpl_part *nv = gh_arena_alloc(st->arena, cap * sizeof(*nv));
        if (p->n > 0)
            memcpy(nv, p->v, p->n * sizeof(*nv));
        p->v = nv;
        p->cap = cap;
    }
    p->v[p->n++] = (struct gh_tmpl_part){text, (uint32_t)len, (uint16_t)var};
}

/* The argument of a prefixed variable as the expander wants it. */
static const char *
var_arg(struct conf_state *st, enum gh_var v, const char *arg, size_t len)
{
    char *a = gh_arena_strndup(st->arena, arg, len);
    for (size_t i = 0; i < len; i++) {
        a[i] = (char)gh_lower((unsigned char)a[i]);
        if (v == GH_VAR_HTTP_ && a[i] == '_')
            a[i] = '-';
    }
    return a;
}

static void
err_at(struct conf_state *st, const struct conf_tok *t, size_t off, const char *msg)
{
    struct conf_pos pos = conf_tok_pos(t, off);
    conf_err(st, &pos, "%s", msg);
}

/* What is being compiled: the token, its context, the directive's name, the pieces so far. */
struct comp {
    struct conf_state *st;
    const struct conf_tok *t;
    unsigned ctx;
    const char *what;
    struct parts p;
    uint32_t flags;
};

/* A capture reference name[0..len) (a digit first) written at offset at. */
static bool
capture_ref(struct comp *c, size_t at, const char *name, size_t len)
{
    if (!(c->ctx & GH_TC_REWRITE)) {
        err_at(c->st, c->t, at,
               gh_arena_sprintf(c->st->arena,
                                "'$%.*s' in '%s': captures $1..$9 exist only in 'rewrite' "
                                "replacements",
                                (int)len, name, c->what));
        return false;
    }
    if (len != 1 || name[0] == '0') { /* "$0", "${12}" */
        err_at(c->st, c->t, at,
               gh_arena_sprintf(c->st->arena, "'$%.*s' in '%s': captures are $1..$9", (int)len,
                                name, c->what));
        return false;
    }
    push(c->st, &c->p, name, 1, GH_VAR_CAPTURE);
    return true;
}

bool
conf_var_exists(const char *name, size_t len)
{
    const char *arg;
    size_t arg_len;
    return lookup(name, len, &arg, &arg_len) != GH_VAR_NONE || bare_prefix(name, len);
}

/* A variable reference name[0..len) written at offset at. */
static bool
var_ref(struct comp *c, size_t at, const char *name, size_t len)
{
    struct conf_state *st = c->st;
    for (uint32_t i = 0; i < st->n_geo; i++)
        if (strlen(st->geo_names[i]) == len && memcmp(st->geo_names[i], name, len) == 0) {
            push(st, &c->p, NULL, i, GH_VAR_GEO); /* a `geo $NAME` map: its index */
            return true;
        }
    const char *arg = NULL;
    size_t arg_len = 0;
    enum gh_var v = lookup(name, len, &arg, &arg_len);
    const char *msg = NULL;
    if (v == GH_VAR_NONE && bare_prefix(name, len))
        msg = gh_arena_sprintf(st->arena, "'$%.*s' in '%s' needs a name after it (as in $%.*sNAME)",
                               (int)len, name, c->what, (int)len, name);
    else if (v == GH_VAR_NONE)
        msg = gh_arena_sprintf(st->arena, "unknown variable '$%s' in '%s'%s",
                               conf_show(st, name, len), c->what, did_you_mean(st, name, len));
    else if (!(vars[v].where & c->ctx))
        msg = gh_arena_sprintf(st->arena, "variable '$%s' is not available in '%s' (it is in %s)",
                               conf_show(st, name, len), c->what, contexts_text(st, vars[v].where));
    if (msg != NULL) {
        err_at(st, c->t, at, msg);
        return false;
    }
    if (arg != NULL)
        push(st, &c->p, var_arg(st, v, arg, arg_len), arg_len, v);
    else
        push(st, &c->p, NULL, 0, v);
    if (vars[v].req)
        c->flags |= GH_TMPL_REQ;
    return true;
}

/* The reference at s[i] == '$' (not "$$"); returns the offset after it, or 0 after reporting. */
static size_t
reference(struct comp *c, size_t i)
{
    const char *s = c->t->text;
    size_t n = c->t->len;
    int braced = i + 1 < n && s[i + 1] == '{';
    size_t start = i + 1 + (size_t)braced, j = start;
    if (!braced && j < n && s[j] >= '0' && s[j] <= '9')
        j++; /* as in nginx, a capture is one digit and what follows is text: "$1_$2" */
    else
        while (j < n && name_char((unsigned char)s[j]))
            j++;
    size_t len = j - start;
    const char *msg = NULL;
    size_t at = i;
    if (braced && j < n && s[j] != '}' && memchr(s + j, '}', n - j) != NULL) {
        msg = gh_arena_sprintf(c->st->arena,
                               "invalid character '%s' in '${...}' in '%s' (a variable name has "
                               "letters, digits and '_')",
                               conf_show(c->st, s + j, 1), c->what);
        at = j;
    } else if (braced && (j >= n || s[j] != '}')) {
        msg = gh_arena_sprintf(c->st->arena, "unterminated '${' in '%s' (expected '}')", c->what);
    } else if (len == 0) {
        msg = gh_arena_sprintf(c->st->arena,
                               "'$' in '%s' must start a variable name (write $$ for a dollar "
                               "sign)",
                               c->what);
    }
    if (msg != NULL) {
        err_at(c->st, c->t, at, msg);
        return 0;
    }
    const char *name = s + start;
    bool ok =
        name[0] >= '0' && name[0] <= '9' ? capture_ref(c, i, name, len) : var_ref(c, i, name, len);
    return ok ? j + (size_t)braced : 0;
}

const struct gh_tmpl *
conf_tmpl(struct conf_state *st, const struct conf_tok *t, unsigned ctx, const char *what)
{
    struct comp c = {st, t, ctx, what, {0}, 0};
    const char *s = t->text;
    size_t n = t->len, lit = 0, i = 0;
    while (i < n) {
        if (s[i] != '$') {
            i++;
            continue;
        }
        push(st, &c.p, s + lit, i - lit, GH_VAR_NONE);
        if (i + 1 < n && s[i + 1] == '$') { /* "$$": one dollar sign */
            push(st, &c.p, s + i, 1, GH_VAR_NONE);
            i += 2;
        } else if ((i = reference(&c, i)) == 0) {
            return NULL;
        }
        c.flags |= GH_TMPL_VARS; /* (for "$$": the text as written has two) */
        lit = i;
    }
    push(st, &c.p, s + lit, n - lit, GH_VAR_NONE);
    struct gh_tmpl *tm = gh_arena_alloc(st->arena, sizeof(*tm));
    tm->parts = c.p.v;
    tm->n = c.p.n;
    tm->flags = c.flags;
    return tm;
}
