/*
 * geo.c - `geo $NAME { CIDR VALUE; default VALUE; include FILE; }` at top level: a map from
 * the client's address to a value (a region, for `balance geo`), by longest prefix
 * (policy/lpm.h). $NAME is then a variable of every template context.
 *
 * An `include` inside the block is not expanded by the lexer: it names a prefix list read
 * here line by line ("CIDR VALUE" with an optional ';', '#' comments), fast enough for a
 * million lines, with errors naming the file, line and column.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/parse_int.h"
#include "policy/geoip.h"
#include "policy/lpm.h"

#define VALUE_BUCKETS 1024

/* The distinct values of a map being built. */
struct vals {
    struct vnode *b[VALUE_BUCKETS];
    struct vec v; /* const char * */
    struct vec lens;
};

struct vnode {
    struct vnode *next;
    const char *s;
    uint32_t len, idx;
};

struct geo_build {
    struct build *b;
    struct gh_geoip *geoip; /* `maxmind` (closed with the config's arena) */
    struct vals vals;
    struct gh_lpm_builder lb;
    struct conf_pos *where; /* per prefix added, where it is (heap, for the duplicate report) */
    size_t n_where, cap_where;
    bool failed;
};

static uint32_t
value_index(struct geo_build *g, const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    struct vnode **pp = &g->vals.b[h % VALUE_BUCKETS];
    for (struct vnode *n = *pp; n != NULL; n = n->next)
        if (n->len == len && memcmp(n->s, s, len) == 0)
            return n->idx;
    struct vnode *n = gh_arena_alloc(g->b->arena, sizeof(*n));
    n->s = gh_arena_strndup(g->b->arena, s, len);
    n->len = (uint32_t)len;
    n->idx = g->vals.v.n;
    n->next = *pp;
    *pp = n;
    conf_vec_push(g->b, &g->vals.v, (void *)n->s);
    conf_vec_push(g->b, &g->vals.lens, (void *)(uintptr_t)len);
    return n->idx;
}

/* Add prefix text[0..len) with value, written at pos. */
static void
add_prefix(struct geo_build *g, const char *text, size_t len, const char *val, size_t vlen,
           const struct conf_pos *pos)
{
    struct gh_cidr c;
    bool host_bits;
    const char *why;
    if (gh_cidr_parse(text, len, &c, &host_bits, &why) != 0) {
        conf_err(g->b->st, pos, "invalid address or prefix '%s' in 'geo': %s",
                 conf_show(g->b->st, text, len), why);
        g->failed = true;
        return;
    }
    if (g->n_where == g->cap_where) {
        size_t cap = g->cap_where ? g->cap_where * 2 : 1024;
        struct conf_pos *w = realloc(g->where, cap * sizeof(*w));
        if (w == NULL) {
            conf_err(g->b->st, pos, "out of memory");
            g->failed = true;
            return;
        }
        g->where = w;
        g->cap_where = cap;
    }
    if (gh_lpm_add(&g->lb, &c, value_index(g, val, vlen), (uint32_t)g->n_where) != 0) {
        conf_err(g->b->st, pos, "out of memory");
        g->failed = true;
        return;
    }
    g->where[g->n_where++] = *pos;
}

/* A file's bytes (heap, NUL-terminated), or NULL after reporting. */
static char *
slurp(struct build *b, const char *path, const struct conf_pos *pos, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        conf_err(b->st, pos, "cannot open geo file %s: %s", conf_show(b->st, path, strlen(path)),
                 strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf != NULL && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (nb == NULL)
                free(buf);
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf == NULL) {
        conf_err(b->st, pos, "out of memory reading %s", conf_show(b->st, path, strlen(path)));
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* One line "CIDR VALUE[;]" (comments and blank lines are nothing). */
static void
file_line(struct geo_build *g, const char *file, uint32_t line, const char *p, const char *e)
{
    const char *hash = memchr(p, '#', (size_t)(e - p));
    if (hash != NULL)
        e = hash;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        e--;
    if (e > p && e[-1] == ';')
        e--;
    const char *s = p;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    if (s == e)
        return;
    const char *w1 = s;
    while (s < e && *s != ' ' && *s != '\t')
        s++;
    const char *w1e = s;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    const char *w2 = s;
    while (s < e && *s != ' ' && *s != '\t')
        s++;
    struct conf_pos pos = {file, line, (uint32_t)(w1 - p) + 1};
    if (w2 == s || s != e) {
        if (s != e)
            pos.col = (uint32_t)(s - p) + 1;
        conf_err(g->b->st, &pos, "expected 'CIDR VALUE;' in a geo file");
        g->failed = true;
        return;
    }
    add_prefix(g, w1, (size_t)(w1e - w1), w2, (size_t)(s - w2), &pos);
}

static void
geo_include(struct geo_build *g, const struct cnode *n)
{
    struct build *b = g->b;
    if (b->st->flags & GH_CONF_NO_INCLUDE) {
        conf_err(b->st, &n->name.pos, "'include' is not allowed here");
        return;
    }
    if (n->n_args != 1 || !conf_check_path(b, n, &n->args[0])) {
        if (n->n_args != 1)
            conf_err(b->st, &n->name.pos, "'include' in 'geo' expects 1 argument, got %u",
                     n->n_args);
        return;
    }
    const char *path = conf_path_arg(b, n, &n->args[0]);
    size_t len;
    char *buf = slurp(b, path, &n->args[0].pos, &len);
    if (buf == NULL)
        return;
    const char *file = gh_arena_strdup(b->arena, path);
    uint32_t line = 1;
    for (const char *p = buf; p < buf + len && !b->st->stop; line++) {
        const char *e = memchr(p, '\n', (size_t)(buf + len - p));
        if (e == NULL)
            e = buf + len;
        file_line(g, file, line, p, e);
        p = e + 1;
    }
    free(buf);
}

static void
geoip_cleanup(void *g)
{
    gh_geoip_close(g);
}

/* `maxmind FILE FIELD...;` a MaxMind DB asked for addresses no prefix covers. */
static void
geo_maxmind(struct geo_build *g, const struct cnode *n)
{
    struct build *b = g->b;
    if (b->st->flags & GH_CONF_NO_INCLUDE) {
        conf_err(b->st, &n->name.pos, "'maxmind' is not allowed here");
        return;
    }
    if (n->n_args < 2 || n->n_args > 1 + GH_GEOIP_MAX_PATH || g->geoip != NULL) {
        conf_err(b->st, &n->name.pos,
                 g->geoip != NULL ? "duplicate 'maxmind' in 'geo'"
                                  : "'maxmind' expects a file and 1 to 8 field names (as in: "
                                    "maxmind GeoLite2-Country.mmdb continent code;)");
        return;
    }
    const char **fields = gh_arena_alloc(b->arena, n->n_args * sizeof(*fields));
    for (uint32_t i = 1; i < n->n_args; i++)
        fields[i - 1] = n->args[i].text;
    const char *path = conf_path_arg(b, n, &n->args[0]);
    char err[256];
    g->geoip = gh_geoip_open(path, fields, n->n_args - 1, err, sizeof(err));
    if (g->geoip == NULL) {
        conf_err(b->st, &n->args[0].pos, "cannot open MaxMind database %s: %s",
                 conf_show(b->st, path, strlen(path)), err);
        return;
    }
    gh_arena_add_cleanup(b->arena, geoip_cleanup, g->geoip);
}

/* One directive of the block. */
static void
geo_entry(struct geo_build *g, const struct cnode *n, bool *has_default)
{
    struct build *b = g->b;
    if (conf_tok_is(&n->name, "include")) {
        geo_include(g, n);
        return;
    }
    if (conf_tok_is(&n->name, "maxmind")) {
        geo_maxmind(g, n);
        return;
    }
    if (n->has_block || n->n_args != 1) {
        conf_err(b->st, &n->name.pos,
                 "expected 'CIDR VALUE;', 'default VALUE;' or "
                 "'include FILE;' in 'geo'");
        return;
    }
    const struct conf_tok *v = &n->args[0];
    if (conf_tok_is(&n->name, "default")) {
        if (*has_default)
            conf_err(b->st, &n->name.pos, "duplicate 'default' in 'geo'");
        *has_default = true;
        g->vals.v.v[0] = (void *)v->text;
        g->vals.lens.v[0] = (void *)(uintptr_t)v->len;
        return;
    }
    add_prefix(g, n->name.text, n->name.len, v->text, v->len, &n->name.pos);
}

static void
geo_cleanup(void *m)
{
    gh_lpm_free(m);
}

void
conf_on_geo(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    bool ok = t->len > 1 && t->text[0] == '$';
    for (uint32_t i = 1; ok && i < t->len; i++)
        ok = (t->text[i] >= 'a' && t->text[i] <= 'z') || (t->text[i] >= '0' && t->text[i] <= '9') ||
             t->text[i] == '_';
    if (!ok) {
        conf_err(b->st, &t->pos, "'geo' expects a variable name (as in: geo $region { ... })");
        return;
    }
    const char *name = t->text + 1;
    if (conf_geo_index(b, name, t->len - 1) >= 0 || conf_var_exists(name, t->len - 1)) {
        conf_err(b->st, &t->pos, "variable '%s' is already defined", conf_show_tok(b, t));
        return;
    }
    struct geo_build g = {.b = b};
    value_index(&g, "", 0); /* the default's slot */
    bool has_default = false;
    for (const struct cnode *c = n->children; c != NULL && !b->st->stop; c = c->next)
        geo_entry(&g, c, &has_default);
    uint32_t d1, d2;
    struct gh_lpm *m = gh_lpm_build(&g.lb, &d1, &d2);
    if (m == NULL && d2 != GH_LPM_NONE)
        conf_err(b->st, &t->pos, "duplicate prefix in 'geo %s': at %s and %s", t->text,
                 conf_where(b, &g.where[d1], ""), conf_where(b, &g.where[d2], ""));
    else if (m == NULL)
        conf_err(b->st, &t->pos, "out of memory building 'geo %s'", t->text);
    free(g.where);
    if (m == NULL)
        return;
    gh_arena_add_cleanup(b->arena, geo_cleanup, m);
    struct gh_geo *geo = gh_arena_alloc(b->arena, sizeof(*geo));
    geo->name = name;
    geo->map = m;
    geo->geoip = g.geoip;
    geo->n_values = g.vals.v.n;
    geo->values = (const char *const *)g.vals.v.v;
    uint32_t *lens = gh_arena_alloc(b->arena, geo->n_values * sizeof(*lens));
    for (uint32_t i = 0; i < geo->n_values; i++)
        lens[i] = (uint32_t)(uintptr_t)g.vals.lens.v[i];
    geo->value_lens = lens;
    conf_vec_push(b, &b->geos, geo);
    /* templates compiled from here on know $NAME */
    const char **names = gh_arena_alloc(b->arena, b->geos.n * sizeof(*names));
    for (uint32_t i = 0; i < b->geos.n; i++)
        names[i] = ((const struct gh_geo *)b->geos.v[i])->name;
    b->st->geo_names = names;
    b->st->n_geo = b->geos.n;
}

int
conf_geo_index(struct build *b, const char *name, size_t len)
{
    for (uint32_t i = 0; i < b->geos.n; i++) {
        const struct gh_geo *g = b->geos.v[i];
        if (strlen(g->name) == len && memcmp(g->name, name, len) == 0)
            return (int)i;
    }
    return -1;
}
