/*
 * parse.c - directives: the table, their checks, and the build of gh_config.
 *
 * The tree from lex.c is walked block by block. Each block is walked in four
 * phases so that the order of directives inside it does not matter:
 *   0: `geo` maps (so any template may use their variables),
 *   1: `upstream` blocks (so `proxy NAME` can refer to one defined later),
 *   2: plain settings (then the block's header rules are fixed),
 *   3: `server` and `route` blocks, which start from a copy of the block's
 *      values as they are after phase 2 (inheritance).
 * Every problem is reported with its position and the walk goes on; the final
 * assembly (listeners, sorted routes, name tables) runs only without errors.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "conf/parse_int.h"

/* ---- small helpers ---- */

void
conf_vec_push(struct build *b, struct vec *v, void *item)
{
    if (v->n == v->cap) {
        uint32_t cap = v->cap ? v->cap * 2 : 8;
        void **nv = gh_arena_alloc(b->arena, cap * sizeof(*nv));
        if (v->n > 0)
            memcpy(nv, v->v, v->n * sizeof(*nv));
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = item;
}

bool
conf_tok_is(const struct conf_tok *t, const char *s)
{
    size_t n = strlen(s);
    return t->len == n && memcmp(t->text, s, n) == 0;
}

const char *
conf_show_tok(struct build *b, const struct conf_tok *t)
{
    return conf_show(b->st, t->text, t->len);
}

/* "L:C" when pos is in file, else "FILE:L:C" (for "first at ..." notes). */
const char *
conf_where(struct build *b, const struct conf_pos *pos, const char *file)
{
    if (pos->file == file || strcmp(pos->file, file) == 0)
        return gh_arena_sprintf(b->arena, "%u:%u", pos->line, pos->col);
    return gh_arena_sprintf(b->arena, "%s:%u:%u", pos->file, pos->line, pos->col);
}

/* " (did you mean 'x'?)" for the closest of names[0..n), or "". */
static const char *
suggest(struct build *b, const char *s, size_t len, const char *const *names, uint32_t n)
{
    const char *best = NULL;
    uint32_t best_d = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        size_t nl = strlen(names[i]);
        uint32_t d = conf_distance(s, len, names[i], nl);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    if (best == NULL || best_d == 0 || best_d * 2 > GH_MAX(len, strlen(best)))
        return "";
    return gh_arena_sprintf(b->arena, " (did you mean '%s'?)", best);
}

static const char *
ctx_name(unsigned ctx)
{
    switch (ctx) {
    case CTX_UPSTREAM:
        return "upstream";
    case CTX_SERVER:
        return "server";
    case CTX_ROUTE:
        return "route";
    default:
        return "main";
    }
}

/* ---- values ---- */

enum { VAL_OK = 0, VAL_INVALID, VAL_RANGE };

static int
parse_u64(const char *s, size_t len, size_t *used, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return VAL_RANGE;
        v = v * 10 + d;
        i++;
    }
    if (i == 0)
        return VAL_INVALID;
    *used = i;
    *out = v;
    return VAL_OK;
}

/* "500ms", "10s", "5m", "1h", "1d", bare seconds -> milliseconds (fits uint32). */
static int
parse_duration(const char *s, size_t len, uint64_t *ms)
{
    size_t used;
    uint64_t v;
    int rc = parse_u64(s, len, &used, &v);
    if (rc != VAL_OK)
        return rc;
    const char *u = s + used;
    size_t ul = len - used;
    uint64_t mul;
    if (ul == 0 || (ul == 1 && u[0] == 's'))
        mul = 1000;
    else if (ul == 2 && u[0] == 'm' && u[1] == 's')
        mul = 1;
    else if (ul == 1 && u[0] == 'm')
        mul = 60 * 1000;
    else if (ul == 1 && u[0] == 'h')
        mul = 3600 * 1000;
    else if (ul == 1 && u[0] == 'd')
        mul = 86400 * 1000;
    else
        return VAL_INVALID;
    if (v > UINT32_MAX / mul)
        return VAL_RANGE;
    *ms = v * mul;
    return VAL_OK;
}

/* "512", "8k", "1m", "1g" (powers of 1024) -> bytes. */
static int
parse_size(const char *s, size_t len, uint64_t *bytes)
{
    size_t used;
    uint64_t v;
    int rc = parse_u64(s, len, &used, &v);
    if (rc != VAL_OK)
        return rc;
    uint64_t mul = 1;
    if (len - used == 1) {
        switch (s[used]) {
        case 'k':
        case 'K':
            mul = 1024;
            break;
        case 'm':
        case 'M':
            mul = 1024 * 1024;
            break;
        case 'g':
        case 'G':
            mul = 1024 * 1024 * 1024;
            break;
        default:
            return VAL_INVALID;
        }
    } else if (len != used) {
        return VAL_INVALID;
    }
    if (v > UINT64_MAX / mul)
        return VAL_RANGE;
    *bytes = v * mul;
    return VAL_OK;
}

static int
parse_num(const char *s, size_t len, uint64_t *out)
{
    size_t used;
    int rc = parse_u64(s, len, &used, out);
    if (rc == VAL_OK && used != len)
        return VAL_INVALID;
    return rc;
}

/* A number in [lo, hi] or an error naming what; true when *out is set. */
bool
conf_number_arg(struct build *b, const struct conf_tok *t, const char *what, uint64_t lo,
                uint64_t hi, uint64_t *out)
{
    int rc = parse_num(t->text, t->len, out);
    if (rc == VAL_INVALID) {
        conf_err(b->st, &t->pos, "invalid number '%s' for '%s'", conf_show_tok(b, t), what);
        return false;
    }
    if (rc == VAL_RANGE || *out < lo || *out > hi) {
        conf_err(b->st, &t->pos, "number '%s' out of range for '%s' (%llu..%llu)",
                 conf_show_tok(b, t), what, (unsigned long long)lo, (unsigned long long)hi);
        return false;
    }
    return true;
}

bool
conf_size_arg(struct build *b, const struct conf_tok *t, const char *what, uint64_t lo, uint64_t hi,
              uint64_t *out)
{
    int rc = parse_size(t->text, t->len, out);
    if (rc == VAL_INVALID) {
        conf_err(b->st, &t->pos, "invalid size '%s' for '%s' (expected e.g. 512, 8k, 1m, 1g)",
                 conf_show_tok(b, t), what);
        return false;
    }
    if (rc == VAL_RANGE || *out < lo || *out > hi) {
        conf_err(b->st, &t->pos, "size '%s' out of range for '%s' (%llu..%llu)",
                 conf_show_tok(b, t), what, (unsigned long long)lo, (unsigned long long)hi);
        return false;
    }
    return true;
}

bool
conf_duration_arg(struct build *b, const struct conf_tok *t, const char *what, uint64_t *ms)
{
    int rc = parse_duration(t->text, t->len, ms);
    if (rc == VAL_INVALID)
        conf_err(b->st, &t->pos, "invalid duration '%s' for '%s' (expected e.g. 10s, 5m, 1h)",
                 conf_show_tok(b, t), what);
    else if (rc == VAL_RANGE)
        conf_err(b->st, &t->pos, "duration '%s' out of range for '%s' (at most 49d)",
                 conf_show_tok(b, t), what);
    return rc == VAL_OK;
}

/* ---- HTTP token rules (RFC 9110) ---- */

/* RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 * "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static bool
is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool
conf_is_token(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_tchar((unsigned char)s[i]))
            return false;
    return true;
}

/* RFC 9110 §5.5: field-value is VCHAR, obs-text, SP and HTAB; no CR, LF, NUL or other CTL. */
static bool
is_field_value(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* ---- handlers ---- */

static void
on_threads(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    if (conf_tok_is(t, "auto")) {
        b->cfg->threads = 0;
        return;
    }
    uint64_t v;
    int rc = parse_num(t->text, t->len, &v);
    if (rc == VAL_INVALID)
        conf_err(b->st, &t->pos, "invalid value '%s' for 'threads' (expected auto or 1..256)",
                 conf_show_tok(b, t));
    else if (rc == VAL_RANGE || v < 1 || v > 256)
        conf_err(b->st, &t->pos, "number '%s' out of range for 'threads' (auto or 1..256)",
                 conf_show_tok(b, t));
    else
        b->cfg->threads = (uint32_t)v;
}

const char *
conf_path_arg(struct build *b, const struct cnode *n, const struct conf_tok *t)
{
    if (t->text[0] == '/' || n->dir[0] == '\0')
        return t->text;
    return gh_arena_sprintf(b->arena, "%s%s", n->dir, t->text); /* dir ends in '/' */
}

bool
conf_check_path(struct build *b, const struct cnode *n, const struct conf_tok *t)
{
    if (t->len == 0 || memchr(t->text, '\0', t->len) != NULL) {
        conf_err(b->st, &t->pos, "invalid path '%s' for '%s'", conf_show_tok(b, t), n->name.text);
        return false;
    }
    return true;
}

static void
on_access_log(struct build *b, struct blk *k, const struct cnode *n)
{
    struct gh_config *cfg = b->cfg;
    const struct conf_tok *t = &n->args[0];
    if (conf_tok_is(t, "off")) {
        if (n->n_args > 1)
            conf_err(b->st, &n->args[1].pos, "'access_log off' takes no format");
        cfg->access_log_on = false;
        cfg->access_log_path = NULL;
        return;
    }
    if (!conf_check_path(b, n, t))
        return;
    cfg->access_log_on = true;
    cfg->access_log_path = conf_tok_is(t, "stderr") ? NULL : conf_path_arg(b, n, t);
    cfg->access_log_at = conf_where(b, &t->pos, "");
    cfg->access_log_format = GH_LOG_COMBINED;
    if (n->n_args > 1) {
        const struct conf_tok *f = &n->args[1];
        if (conf_tok_is(f, "combined"))
            cfg->access_log_format = GH_LOG_COMBINED;
        else if (conf_tok_is(f, "json"))
            cfg->access_log_format = GH_LOG_JSON;
        else if (conf_tok_is(f, "forward"))
            cfg->access_log_format = GH_LOG_FORWARD;
        else
            b->log_named = f; /* a log_format, found once every one is known */
    }
}

/* `log_format NAME [escape=default|json|none] STRING...;` (the strings are joined) */
static void
on_log_format(struct build *b, struct blk *k, const struct cnode *n)
{
    (void)k;
    const struct conf_tok *name = &n->args[0];
    if (conf_tok_is(name, "combined") || conf_tok_is(name, "json") ||
        conf_tok_is(name, "forward")) {
        conf_err(b->st, &name->pos, "'%s' is a built-in log format: choose another name",
                 conf_show_tok(b, name));
        return;
    }
    for (uint32_t i = 0; i < b->log_formats.n; i++) {
        const struct plogfmt *o = b->log_formats.v[i];
        if (strcmp(o->name, name->text) == 0) {
            conf_err(b->st, &name->pos, "duplicate log_format '%s' (first at %s)",
                     conf_show_tok(b, name), conf_where(b, &o->pos, name->pos.file));
            return;
        }
    }
    struct plogfmt *f = gh_arena_alloc(b->arena, sizeof(*f));
    f->name = name->text;
    f->pos = name->pos;
    uint32_t first = 1;
    if (n->n_args > 2 && strncmp(n->args[1].text, "escape=", 7) == 0) {
        const struct conf_tok *e = &n->args[1];
        if (conf_tok_is(e, "escape=default"))
            f->esc = GH_LOG_ESC_DEFAULT;
        else if (conf_tok_is(e, "escape=json"))
            f->esc = GH_LOG_ESC_JSON;
        else if (conf_tok_is(e, "escape=none"))
            f->esc = GH_LOG_ESC_NONE;
        else {
            conf_err(b->st, &e->pos, "invalid '%s' (expected escape=default, json or none)",
                     conf_show_tok(b, e));
            conf_vec_push(b, &b->log_formats, f); /* known, for access_log */
            return;
        }
        first = 2;
    }
    /* the strings as one token, positioned at the first */
    struct conf_tok all = n->args[first];
    size_t len = 0;
    for (uint32_t i = first; i < n->n_args; i++)
        len += n->args[i].len;
    char *text = gh_arena_alloc(b->arena, len + 1);
    len = 0;
    for (uint32_t i = first; i < n->n_args; i++) {
        memcpy(text + len, n->args[i].text, n->args[i].len);
        len += n->args[i].len;
    }
    all.text = text;
    all.len = (uint32_t)len;
    all.joined = &n->args[first]; /* so a problem is shown where it was written */
    all.n_joined = n->n_args - first;
    /* kept with a bad template too, so that access_log naming it is not reported as well */
    f->tmpl = conf_tmpl(b->st, &all, GH_TC_LOG, "log_format");
    conf_vec_push(b, &b->log_formats, f);
}

/* access_log's named format, once every log_format is known. */
static void
resolve_log_format(struct build *b)
{
    const struct conf_tok *t = b->log_named;
    if (t == NULL || !b->cfg->access_log_on)
        return;
    const char **names = gh_arena_alloc(b->arena, (b->log_formats.n + 3) * sizeof(*names));
    uint32_t nn = 0;
    names[nn++] = "combined";
    names[nn++] = "json";
    names[nn++] = "forward";
    for (uint32_t i = 0; i < b->log_formats.n; i++) {
        const struct plogfmt *f = b->log_formats.v[i];
        if (strcmp(f->name, t->text) == 0) {
            b->cfg->access_log_format = GH_LOG_CUSTOM;
            b->cfg->access_log_tmpl = f->tmpl;
            b->cfg->access_log_escape = f->esc;
            return;
        }
        names[nn++] = f->name;
    }
    conf_err(b->st, &t->pos,
             "unknown access_log format '%s' (combined, json, forward, or a log_format)%s",
             conf_show_tok(b, t), suggest(b, t->text, t->len, names, nn));
}

static void
on_error_log(struct build *b, struct blk *k, const struct cnode *n)
{
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    struct gh_config *cfg = b->cfg;
    const struct conf_tok *t = &n->args[0];
    if (!conf_check_path(b, n, t))
        return;
    cfg->error_log_path = conf_tok_is(t, "stderr") ? NULL : conf_path_arg(b, n, t);
    cfg->error_log_at = conf_where(b, &t->pos, "");
    if (n->n_args < 2)
        return;
    const struct conf_tok *l = &n->args[1];
    for (uint32_t i = 0; i < GH_ARRAY_LEN(levels); i++) {
        if (conf_tok_is(l, levels[i])) {
            cfg->error_log_level = (enum gh_log_level)i;
            return;
        }
    }
    conf_err(b->st, &l->pos, "invalid error_log level '%s' (expected error, warn, info or debug)",
             conf_show_tok(b, l));
}

static void
on_pid(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    if (!conf_check_path(b, n, t))
        return;
    b->cfg->pid_path = conf_path_arg(b, n, t);
    b->cfg->pid_at = conf_where(b, &t->pos, "");
}

/*
 * Parse an address the way nginx users write it: `listen 8080;` is every IPv4
 * interface on that port, and an origin without a port (`server 10.0.0.1;`,
 * `proxy [::1];`) is port 80. a->text is the address as it will be logged.
 */
static int
parse_addr_lenient(struct build *b, const struct conf_tok *t, bool listen, struct gh_addr *a)
{
    if (gh_conf_parse_addr(t->text, t->len, a) == 0)
        return 0;
    size_t digits = 0;
    while (digits < t->len && t->text[digits] >= '0' && t->text[digits] <= '9')
        digits++;
    const char *alt = NULL;
    if (listen && digits == t->len && t->len > 0)
        alt = gh_arena_sprintf(b->arena, "*:%.*s", (int)t->len, t->text);
    else if (!listen && t->len > 0 &&
             (t->text[0] == '[' ? t->text[t->len - 1] == ']'
                                : memchr(t->text, ':', t->len) == NULL))
        alt = gh_arena_sprintf(b->arena, "%.*s:80", (int)t->len, t->text);
    if (alt == NULL || gh_conf_parse_addr(alt, strlen(alt), a) != 0)
        return -EINVAL;
    return 0;
}

/* An address for `server` in an upstream or for `proxy`: something one can connect to. */
static bool
upstream_addr(struct build *b, const struct conf_tok *t, const char *what, struct gh_addr *a)
{
    if (parse_addr_lenient(b, t, false, a) != 0) {
        char hint[256];
        if (gh_conf_addr_hint(t->text, t->len, what, hint, sizeof(hint)) != NULL)
            conf_err(b->st, &t->pos, "invalid address '%s' in '%s': %s", conf_show_tok(b, t), what,
                     hint);
        else
            conf_err(b->st, &t->pos, "invalid address '%s' in '%s' (expected e.g. 127.0.0.1:3000)",
                     conf_show_tok(b, t), what);
        return false;
    }
    bool any = false;
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
        any = sin->sin_addr.s_addr == htonl(INADDR_ANY);
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
        any = IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
    }
    if (any) {
        conf_err(b->st, &t->pos, "address '%s' in '%s' is a wildcard; only 'listen' takes one",
                 conf_show_tok(b, t), what);
        return false;
    }
    return true;
}

static bool
same_addr(const struct gh_addr *a, const struct gh_addr *c)
{
    return a->len == c->len && memcmp(&a->ss, &c->ss, a->len) == 0;
}

struct pups *
conf_new_upstream(struct build *b, const char *name, const struct conf_pos *pos)
{
    struct pups *u = gh_arena_alloc(b->arena, sizeof(*u));
    u->uc.name = name;
    u->uc.keepalive = DEFAULT_KEEPALIVE;
    u->uc.keepalive_timeout_ms = DEFAULT_UPSTREAM_KEEPALIVE_TIMEOUT;
    u->uc.balance = GH_BALANCE_ROUND_ROBIN;
    u->uc.max_fails = 1;
    u->uc.fail_timeout_ms = 10000;
    u->uc.retries = 1;
    u->uc.retry_on = GH_RETRY_CONNECT;
    u->uc.queue_timeout_ms = 60000;
    u->uc.fail_on = GH_FAIL_TIMEOUT;
    u->uc.file = pos->file;
    u->uc.line = pos->line;
    u->uc.index = b->upstreams.n;
    u->pos = *pos;
    u->tls.verify = -1;
    conf_vec_push(b, &b->upstreams, u);
    return u;
}

static void walk_block(struct build *b, struct blk *k, const struct cnode *list);

static bool
valid_upstream_name(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

static void
on_upstream(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    if (!valid_upstream_name(t->text, t->len)) {
        conf_err(b->st, &t->pos,
                 "invalid upstream name '%s' (letters, digits, '_', '-' and '.' only)",
                 conf_show_tok(b, t));
        return;
    }
    for (uint32_t i = 0; i < b->upstreams.n; i++) {
        const struct pups *u = b->upstreams.v[i];
        if (!u->anonymous && strcmp(u->uc.name, t->text) == 0) {
            conf_err(b->st, &t->pos, "duplicate upstream '%s' (first defined at %s)",
                     conf_show_tok(b, t), conf_where(b, &u->pos, t->pos.file));
            return;
        }
    }
    struct pups *u = conf_new_upstream(b, t->text, &t->pos);
    struct blk sub = {.ctx = CTX_UPSTREAM, .ups = u};
    walk_block(b, &sub, n->children);
    if (!u->server_seen)
        conf_err(b->st, &t->pos, "upstream '%s' has no server", conf_show_tok(b, t));
    else
        conf_check_upstream(b, u);
}

static void
on_upstream_server(struct build *b, struct blk *k, const struct cnode *n)
{
    struct gh_addr a;
    k->ups->server_seen = true;
    struct gh_upstream_server prm = {.weight = 1};
    bool named = false;
    for (uint32_t i = 1; i < n->n_args; i++)
        named |= conf_tok_is(&n->args[i], "resolve");
    if (named) {
        if (!conf_named_server(b, &n->args[0], &prm))
            return;
        a = prm.addr;
    } else if (!upstream_addr(b, &n->args[0], "server", &a)) {
        return;
    }
    for (uint32_t i = 1; i < n->n_args; i++)
        conf_server_param(b, &n->args[i], &prm);
    if (prm.send_proxy != 0 && prm.tls_on)
        conf_err(b->st, &n->args[0].pos,
                 "'send_proxy' with 'tls' on one server is not supported yet (the header would "
                 "have to go before the TLS handshake)");
    for (uint32_t i = 0; i < k->ups->servers.n; i++) {
        const struct gh_upstream_server *o = k->ups->servers.v[i];
        if (same_addr(&o->addr, &a)) {
            conf_err(b->st, &n->args[0].pos,
                     "duplicate server '%s' in upstream '%s' (use weight= instead)",
                     conf_show_tok(b, &n->args[0]), k->ups->uc.name);
            return;
        }
    }
    struct gh_upstream_server *s = gh_arena_alloc(b->arena, sizeof(*s));
    *s = prm;
    s->addr = a;
    k->ups->has_tls = k->ups->has_tls || s->tls_on;
    conf_vec_push(b, &k->ups->servers, s);
}

static void
on_listen(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    struct plisten *l = gh_arena_alloc(b->arena, sizeof(*l));
    k->srv->listen_seen = true;
    if (parse_addr_lenient(b, t, true, &l->addr) != 0) {
        conf_err(b->st, &t->pos,
                 "invalid address '%s' in 'listen' (expected e.g. 127.0.0.1:8080, [::1]:8080, "
                 "*:8080 or 8080)",
                 conf_show_tok(b, t));
        return;
    }
    l->pos = t->pos;
    for (uint32_t i = 1; i < n->n_args; i++) {
        const struct conf_tok *p = &n->args[i];
        if (conf_tok_is(p, "default")) {
            l->is_default = true;
        } else if (conf_tok_is(p, "tls")) {
            l->tls = true;
        } else if (conf_tok_is(p, "socks5")) {
            l->socks5 = true;
        } else if (conf_tok_is(p, "proxy_protocol")) {
            l->proxy_protocol = true;
        } else if (conf_tok_is(p, "deferred")) {
            l->deferred = true;
        } else if (p->len > 8 && memcmp(p->text, "backlog=", 8) == 0) {
            struct conf_tok v = *p;
            v.text += 8;
            v.len -= 8;
            v.pos.col += 8;
            uint64_t bl;
            if (conf_number_arg(b, &v, "backlog", 1, 65535, &bl))
                l->backlog = (int)bl;
        } else {
            conf_err(b->st, &p->pos,
                     "unknown parameter '%s' in 'listen' (expected default, tls, socks5, "
                     "proxy_protocol, "
                     "deferred or backlog=N)",
                     conf_show_tok(b, p));
        }
    }
    for (uint32_t i = 0; i < k->srv->listens.n; i++) {
        const struct plisten *o = k->srv->listens.v[i];
        if (same_addr(&o->addr, &l->addr)) {
            conf_err(b->st, &t->pos, "duplicate listen '%s' in this server (first at %s)",
                     conf_show_tok(b, t), conf_where(b, &o->pos, t->pos.file));
            return;
        }
    }
    if (l->is_default)
        k->sc->is_default = true;
    conf_vec_push(b, &k->srv->listens, l);
}

/* DNS name (letters, digits, '-', '_', '.'), optionally starting with "*.", or an IPv6
 * literal in brackets as it appears in Host. */
static bool
valid_server_name(const char *s, size_t len)
{
    size_t i = 0;
    if (len > 2 && s[0] == '[' && s[len - 1] == ']') {
        for (i = 1; i + 1 < len; i++)
            if (strchr("0123456789abcdefABCDEF:.", s[i]) == NULL || s[i] == '\0')
                return false;
        return true;
    }
    if (len >= 2 && s[0] == '*' && s[1] == '.')
        i = 2;
    if (i == len || s[i] == '.')
        return false;
    for (; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
        if (c == '.' && i + 1 < len && s[i + 1] == '.')
            return false;
    }
    return true;
}

static void
on_server_name(struct build *b, struct blk *k, const struct cnode *n)
{
    for (uint32_t i = 0; i < n->n_args; i++) {
        const struct conf_tok *t = &n->args[i];
        if (!valid_server_name(t->text, t->len)) {
            conf_err(b->st, &t->pos, "invalid server_name '%s' (expected a host name or *.suffix)",
                     conf_show_tok(b, t));
            continue;
        }
        struct pname *pn = gh_arena_alloc(b->arena, sizeof(*pn));
        char *lc = gh_arena_strndup(b->arena, t->text, t->len);
        for (uint32_t j = 0; j < t->len; j++)
            lc[j] = (char)gh_lower((unsigned char)lc[j]);
        pn->len = t->len;
        if (pn->len > 1 && lc[pn->len - 1] == '.') /* "a.test." is "a.test" */
            lc[--pn->len] = '\0';
        pn->name = lc;
        pn->pos = t->pos;
        conf_vec_push(b, &k->srv->names, pn);
    }
}

static void
on_route(struct build *b, struct blk *k, const struct cnode *n)
{
    struct gh_route *r = gh_arena_alloc(b->arena, sizeof(*r));
    const struct conf_tok *p = &n->args[0];
    r->kind = GH_ROUTE_PREFIX;
    if (n->n_args == 2) {
        if (conf_tok_is(p, "="))
            r->kind = GH_ROUTE_EXACT;
        else if (conf_tok_is(p, "~"))
            r->kind = GH_ROUTE_REGEX;
        else
            conf_err(b->st, &p->pos, "invalid route modifier '%s' (expected = or ~)",
                     conf_show_tok(b, p));
        p = &n->args[1];
    }
    r->path = p->text;
    r->path_len = p->len;
    r->file = n->name.pos.file;
    r->line = n->name.pos.line;
    if (r->kind != GH_ROUTE_REGEX && (p->len == 0 || p->text[0] != '/')) {
        conf_err(b->st, &p->pos, "route path must start with '/', got '%s'", conf_show_tok(b, p));
    } else if (r->kind == GH_ROUTE_REGEX) {
        r->re = conf_regex(b->st, p, false, "route");
    }
    for (uint32_t i = 0; i < k->srv->routes.n; i++) {
        const struct gh_route *o = k->srv->routes.v[i];
        if (o->kind == r->kind && o->path_len == r->path_len &&
            memcmp(o->path, r->path, r->path_len) == 0) {
            conf_err(b->st, &p->pos, "duplicate route '%s' (first at %s)", conf_show_tok(b, p),
                     conf_where(b, k->srv->route_pos.v[i], p->pos.file));
            return;
        }
    }
    r->pc = *k->pc;
    /* the server's rewrites run before the route is found, not again in it */
    r->pc.rewrites = NULL;
    r->pc.n_rewrites = 0;
    struct blk sub = {.ctx = CTX_ROUTE, .pc = &r->pc, .route = r};
    walk_block(b, &sub, n->children);
    conf_vec_push(b, &k->srv->routes, r);
    struct conf_pos *pos = gh_arena_alloc(b->arena, sizeof(*pos));
    *pos = p->pos;
    conf_vec_push(b, &k->srv->route_pos, pos);
}

static void
new_server(struct build *b, struct blk *k, const struct cnode *n, bool forward)
{
    struct psrv *s = gh_arena_alloc(b->arena, sizeof(*s));
    s->sc = *k->sc;
    s->sc.pc = *k->pc;
    s->sc.file = n->name.pos.file;
    s->sc.line = n->name.pos.line;
    s->sc.index = b->servers.n;
    s->pos = n->name.pos;
    s->tls = *k->tls;
    s->tls.own_certs = s->tls.own_ticket_keys = false;
    conf_vec_push(b, &b->servers, s);
    s->is_forward = forward;
    if (forward) { /* what a reverse proxy's server takes from the top level has no use here */
        s->sc.pc.upstream = NULL;
        s->sc.pc.return_status = 0;
        s->sc.pc.return_tmpl = NULL;
        s->sc.pc.rewrites = NULL;
        s->sc.pc.n_rewrites = 0;
        s->sc.redirect_https = 0;
    }
    struct blk sub = {.ctx = CTX_SERVER, .pc = &s->sc.pc, .sc = &s->sc, .srv = s, .tls = &s->tls};
    walk_block(b, &sub, n->children);
    if (!s->listen_seen)
        conf_err(b->st, &n->name.pos, "%s has no 'listen'", forward ? "forward_proxy" : "server");
    if (forward) {
        conf_forward_finish(b, s, &sub, n);
        return;
    }
    for (uint32_t i = 0; i < s->listens.n; i++) {
        const struct plisten *pl = s->listens.v[i];
        if (pl->socks5)
            conf_err(b->st, &pl->pos, "'socks5' is for a forward_proxy's listen");
    }
}

static void
on_server(struct build *b, struct blk *k, const struct cnode *n)
{
    new_server(b, k, n, false);
}

static void
on_forward_proxy(struct build *b, struct blk *k, const struct cnode *n)
{
    new_server(b, k, n, true);
}

/* `proxy NAME PATH;`: the prefix the block matched is replaced with PATH. */
static void
proxy_path(struct build *b, struct blk *k, const struct conf_tok *p)
{
    if (p->len == 0 || p->text[0] != '/' || !is_field_value(p->text, p->len) ||
        memchr(p->text, ' ', p->len) != NULL || memchr(p->text, '?', p->len) != NULL) {
        conf_err(b->st, &p->pos,
                 "invalid path '%s' in 'proxy' (a path starting with '/', without spaces or "
                 "query, that replaces the route's prefix)",
                 conf_show_tok(b, p));
        return;
    }
    if (k->route != NULL && k->route->kind == GH_ROUTE_REGEX) {
        conf_err(b->st, &p->pos,
                 "'proxy NAME PATH' replaces a prefix: a regex route has none (use 'rewrite')");
        return;
    }
    k->pc->proxy_path = p->text;
    k->pc->proxy_path_len = p->len;
    /* a route's own prefix (an exact route: all of it); "/" at server or top level */
    k->pc->proxy_strip = k->route != NULL ? k->route->path_len : 1;
}

/* `proxy http://ADDR` / `proxy https://ADDR`: true when t is such a URL, with its address in
 * *out (len 0 after reporting a problem) and *tls set for https (default port 443). */
static bool
proxy_url(struct build *b, const struct conf_tok *t, struct conf_tok *out, bool *tls)
{
    size_t skip = 0;
    if (t->len > 8 && strncasecmp(t->text, "https://", 8) == 0)
        skip = 8;
    else if (t->len > 7 && strncasecmp(t->text, "http://", 7) == 0)
        skip = 7;
    if (skip == 0)
        return false;
    *tls = skip == 8;
    *out = *t;
    out->text += skip;
    out->len -= (uint32_t)skip;
    out->pos.col += (uint32_t)skip;
    const char *slash = memchr(out->text, '/', out->len);
    if (out->len == 0 || slash == out->text) {
        conf_err(b->st, &out->pos, "no address in the URL '%s' for 'proxy'", conf_show_tok(b, t));
        out->len = 0;
        return true;
    }
    if (slash != NULL) {
        size_t hl = (size_t)(slash - out->text);
        conf_err(b->st, &out->pos,
                 "a path in the URL of 'proxy': write 'proxy %.*s %.*s;' (the path replaces the "
                 "route's prefix)",
                 (int)(skip + hl), t->text, (int)(out->len - hl), slash);
        out->len = 0;
        return true;
    }
    bool has_port = out->text[0] == '['
                        ? memchr(out->text, ']', out->len) != NULL && out->text[out->len - 1] != ']'
                        : memchr(out->text, ':', out->len) != NULL;
    if (has_port)
        return true;
    /* an IP literal or localhost without a port: the scheme's; anything else names an
     * upstream (nginx's `proxy_pass http://backend;`) */
    char host[64];
    unsigned char bin[16];
    size_t hl = out->len;
    const char *h = out->text;
    if (hl > 2 && h[0] == '[') {
        h++;
        hl -= 2;
    }
    if (hl < sizeof(host)) {
        memcpy(host, h, hl);
        host[hl] = '\0';
        if (inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1 ||
            strcmp(host, "localhost") == 0) {
            out->text = gh_arena_sprintf(b->arena, "%.*s:%s", (int)out->len, out->text,
                                         *tls ? "443" : "80");
            out->len = (uint32_t)strlen(out->text);
        }
    }
    return true;
}

static bool
all_tls(const struct pups *u)
{
    for (uint32_t i = 0; i < u->servers.n; i++)
        if (!((const struct gh_upstream_server *)u->servers.v[i])->tls_on)
            return false;
    return true;
}

static void
on_proxy(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    if (k->return_at != NULL) {
        conf_err(b->st, &n->name.pos,
                 "both 'proxy' and 'return' in the same block ('return' at %s)",
                 conf_where(b, &k->return_at->name.pos, n->name.pos.file));
        return;
    }
    k->proxy_at = n;
    struct pups *found = NULL;
    struct conf_tok url;
    bool tls = false;
    if (proxy_url(b, t, &url, &tls)) {
        if (url.len == 0)
            return; /* reported */
        t = &url;
    }
    if (memchr(t->text, ':', t->len) != NULL || t->text[0] == '[') {
        struct gh_addr a;
        if (!upstream_addr(b, t, "proxy", &a))
            return;
        for (uint32_t i = 0; i < b->upstreams.n && found == NULL; i++) {
            struct pups *u = b->upstreams.v[i];
            const struct gh_upstream_server *us = u->anonymous ? u->servers.v[0] : NULL;
            if (us != NULL && us->tls_on == tls && same_addr(&us->addr, &a))
                found = u;
        }
        if (found == NULL) {
            found = conf_new_upstream(b, t->text, &t->pos);
            found->anonymous = true;
            found->has_tls = tls;
            struct gh_upstream_server *s = gh_arena_alloc(b->arena, sizeof(*s));
            s->addr = a;
            s->weight = 1;
            s->tls_on = tls;
            conf_vec_push(b, &found->servers, s);
        }
    } else {
        const char **names = gh_arena_alloc(b->arena, (b->upstreams.n + 1) * sizeof(*names));
        uint32_t nn = 0;
        for (uint32_t i = 0; i < b->upstreams.n && found == NULL; i++) {
            struct pups *u = b->upstreams.v[i];
            if (u->anonymous)
                continue;
            if (strlen(u->uc.name) == t->len && memcmp(u->uc.name, t->text, t->len) == 0)
                found = u;
            names[nn++] = u->uc.name;
        }
        if (found == NULL) {
            conf_err(b->st, &t->pos, "unknown upstream '%s' in 'proxy'%s", conf_show_tok(b, t),
                     suggest(b, t->text, t->len, names, nn));
            return;
        }
        if (tls && !all_tls(found)) {
            conf_err(b->st, &t->pos,
                     "'proxy https://%s' but the servers of upstream '%s' are not all 'tls' (mark "
                     "them: 'server ADDR tls;', and write 'proxy %s;')",
                     found->uc.name, found->uc.name, found->uc.name);
            return;
        }
    }
    k->pc->upstream = &found->uc;
    k->pc->return_status = 0;
    k->pc->return_body = NULL;
    k->pc->return_body_len = 0;
    k->pc->return_tmpl = NULL;
    k->pc->proxy_path = NULL;
    k->pc->proxy_path_len = 0;
    k->pc->proxy_strip = 0;
    if (n->n_args == 2)
        proxy_path(b, k, &n->args[1]);
}

bool
conf_missing_semi(struct build *b, const struct cnode *n, uint32_t i)
{
    const struct conf_tok *prev = &n->name;
    for (uint32_t j = 0; j <= i && j < n->n_args; prev = &n->args[j++]) {
        if (n->args[j].pos.line <= prev->pos.line)
            continue;
        struct conf_pos at = {prev->pos.file, prev->pos.line, prev->end_col};
        conf_err(b->st, &at, "missing ';' after '%s'", n->name.text);
        return true;
    }
    return false;
}

bool
conf_url_arg(struct build *b, const struct conf_tok *t, const char *what)
{
    bool ok = t->len > 0;
    for (uint32_t i = 0; i < t->len && ok; i++)
        ok = (unsigned char)t->text[i] >= 0x21 && (unsigned char)t->text[i] != 0x7f;
    if (!ok)
        conf_err(b->st, &t->pos, "invalid redirect URL '%s' in '%s' (no spaces or control bytes)",
                 conf_show_tok(b, t), what);
    return ok;
}

static void
on_return(struct build *b, struct blk *k, const struct cnode *n)
{
    if (conf_if_at(n) < n->n_args) { /* `return CODE [TEXT] if ...`: an access rule */
        conf_on_return_rule(b, k, n);
        return;
    }
    if (n->n_args > 2) {
        if (!conf_missing_semi(b, n, 2))
            conf_err(b->st, &n->args[2].pos,
                     "'return' takes a code and a text or URL (quote a text with spaces)");
        return;
    }
    if (k->return_at != NULL) {
        conf_err(b->st, &n->name.pos, "duplicate 'return' (first at %s)",
                 conf_where(b, &k->return_at->name.pos, n->name.pos.file));
        return;
    }
    const struct conf_tok *t = &n->args[0];
    uint64_t code;
    /* 1xx are interim answers a final one must follow: not something to return */
    if (parse_num(t->text, t->len, &code) != VAL_OK || code < 200 || code > 599) {
        conf_err(b->st, &t->pos, "invalid return code '%s' (expected 200..599)",
                 conf_show_tok(b, t));
        return;
    }
    bool redirect = code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
    if (redirect && n->n_args < 2) {
        conf_err(b->st, &t->pos, "'return %d' needs the URL to redirect to", (int)code);
        return;
    }
    if (redirect && !conf_url_arg(b, &n->args[1], "return"))
        return;
    if (k->proxy_at != NULL) {
        conf_err(b->st, &n->name.pos, "both 'proxy' and 'return' in the same block ('proxy' at %s)",
                 conf_where(b, &k->proxy_at->name.pos, n->name.pos.file));
        return;
    }
    k->return_at = n;
    k->pc->upstream = NULL;
    k->pc->proxy_path = NULL;
    k->pc->return_status = (uint32_t)code;
    k->pc->return_body = n->n_args > 1 ? n->args[1].text : NULL;
    k->pc->return_body_len = n->n_args > 1 ? n->args[1].len : 0;
    k->pc->return_tmpl = NULL;
    if (n->n_args > 1) {
        const struct gh_tmpl *tm = conf_tmpl(b->st, &n->args[1], GH_TC_REQUEST, "return");
        if (tm != NULL && (tm->flags & GH_TMPL_VARS))
            k->pc->return_tmpl = tm;
    }
}

static void
on_rewrite(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct gh_rewrite *rw = conf_rewrite(b->st, n);
    if (rw != NULL)
        conf_vec_push(b, &k->rw, (void *)rw);
}

static void
on_forwarded(struct build *b, struct blk *k, const struct cnode *n)
{
    static const char *const modes[] = {"xff", "rfc7239", "both", "off"};
    const struct conf_tok *t = &n->args[0];
    for (uint32_t i = 0; i < GH_ARRAY_LEN(modes); i++) {
        if (conf_tok_is(t, modes[i])) {
            k->pc->forwarded = (enum gh_forwarded_mode)i;
            return;
        }
    }
    conf_err(b->st, &t->pos,
             "invalid value '%s' for 'forwarded' (expected xff, rfc7239, both or off)%s",
             conf_show_tok(b, t), suggest(b, t->text, t->len, modes, GH_ARRAY_LEN(modes)));
}

/* `NAME on|off;` into *dst. */
void
conf_on_off(struct build *b, const struct cnode *n, bool *dst)
{
    const struct conf_tok *t = &n->args[0];
    if (conf_tok_is(t, "on"))
        *dst = true;
    else if (conf_tok_is(t, "off"))
        *dst = false;
    else
        conf_err(b->st, &t->pos, "invalid value '%s' for '%s' (expected on or off)",
                 conf_show_tok(b, t), n->name.text);
}

static void
on_via(struct build *b, struct blk *k, const struct cnode *n)
{
    conf_on_off(b, n, &k->pc->via);
}

static void
on_splice(struct build *b, struct blk *k, const struct cnode *n)
{
    conf_on_off(b, n, &k->pc->splice);
}

/* A Host value: reg-name, IPv4 or [IPv6], with an optional :port (RFC 9110 §7.2). */
static bool
valid_host(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            continue;
        if (strchr("-._~%!$&'()*+,;=:[]", c) == NULL || c == '\0')
            return false;
    }
    return true;
}

static void
on_upstream_host(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    if (!valid_host(t->text, t->len)) {
        conf_err(b->st, &t->pos, "invalid upstream_host '%s' (expected a host name[:port])",
                 conf_show_tok(b, t));
        return;
    }
    k->pc->upstream_host = t->text;
    k->pc->upstream_host_len = t->len;
}

/* Headers the proxy owns: framing and hop-by-hop (RFC 9110 §7.6.1), and Host. */
static bool
reserved_header(const struct conf_tok *t, bool request)
{
    static const char *const names[] = {
        "content-length", "transfer-encoding", "connection",      "keep-alive", "te",
        "trailer",        "upgrade",           "proxy-connection"};
    for (uint32_t i = 0; i < GH_ARRAY_LEN(names); i++)
        if (t->len == strlen(names[i]) && gh_strncaseeq(t->text, names[i], t->len))
            return true;
    return request && t->len == 4 && gh_strncaseeq(t->text, "host", 4);
}

static void
on_header(struct build *b, struct blk *k, const struct cnode *n)
{
    bool request = n->name.text[1] == 'e' && n->name.text[2] == 'q';
    const char *what = n->name.text;
    const struct conf_tok *op = &n->args[0];
    struct gh_hdr_rule *r = gh_arena_alloc(b->arena, sizeof(*r));
    if (conf_tok_is(op, "set")) {
        r->op = GH_HDR_SET;
    } else if (conf_tok_is(op, "add")) {
        r->op = GH_HDR_ADD;
    } else if (conf_tok_is(op, "remove")) {
        r->op = GH_HDR_REMOVE;
    } else {
        conf_err(b->st, &op->pos, "invalid operation '%s' in '%s' (expected set, add or remove)",
                 conf_show_tok(b, op), what);
        return;
    }
    uint32_t want = r->op == GH_HDR_REMOVE ? 2 : 3;
    if (n->n_args != want) {
        conf_err(b->st, &n->name.pos, "'%s %s' expects %u argument%s, got %u", what, op->text,
                 want - 1, want == 2 ? "" : "s", n->n_args - 1);
        return;
    }
    const struct conf_tok *name = &n->args[1];
    if (!conf_is_token(name->text, name->len)) {
        conf_err(b->st, &name->pos, "invalid header name '%s' in '%s' (RFC 9110 token expected)",
                 conf_show_tok(b, name), what);
        return;
    }
    if (reserved_header(name, request)) {
        conf_err(b->st, &name->pos, "'%s' cannot change '%s' (the proxy manages it)%s", what,
                 conf_show_tok(b, name),
                 request && name->len == 4 ? "; use 'upstream_host' for Host" : "");
        return;
    }
    r->name = name->text;
    r->name_len = name->len;
    if (want == 3) {
        const struct conf_tok *v = &n->args[2];
        if (!is_field_value(v->text, v->len)) {
            conf_err(b->st, &v->pos,
                     "invalid header value in '%s' (control characters such as CR, LF or NUL "
                     "are not allowed)",
                     what);
            return;
        }
        r->value = v->text;
        r->value_len = v->len;
        const struct gh_tmpl *t =
            conf_tmpl(b->st, v, request ? GH_TC_REQUEST : GH_TC_RESPONSE, what);
        if (t == NULL)
            return;
        if (t->flags & GH_TMPL_VARS)
            r->tmpl = t;
        /* the request's head is gone when a response head is written: keep a copy */
        if (!request && (t->flags & GH_TMPL_REQ))
            b->cfg->keep_request = true;
    }
    conf_vec_push(b, request ? &k->req : &k->resp, r);
}

/* ---- the table ---- */

#define PC_DUR(nm, field, lo)                                                                      \
    {                                                                                              \
        nm, CTX_PROXY, 1, 1, 0, NULL, V_DUR, TGT_PC, 4, offsetof(struct gh_proxy_conf, field), lo, \
            UINT32_MAX                                                                             \
    }
#define SC_VAL(nm, kind, field, lo, hi)                                                            \
    {                                                                                              \
        nm, CTX_SRVLVL, 1, 1, 0, NULL, kind, TGT_SC, 4, offsetof(struct gh_server_conf, field),    \
            lo, hi                                                                                 \
    }
#define FN(nm, ctx, lo, hi, flags, fn)                                                             \
    {                                                                                              \
        nm, ctx, lo, hi, flags, fn, V_NONE, 0, 0, 0, 0, 0                                          \
    }

static const struct dir dirs[] = {
    FN("include", CTX_ANY, 1, 1, DF_MULTI, NULL), /* expanded by lex.c */
    /* main */
    FN("threads", CTX_MAIN, 1, 1, 0, on_threads),
    {"drain_timeout", CTX_MAIN, 1, 1, 0, NULL, V_DUR, TGT_CFG, 4,
     offsetof(struct gh_config, drain_timeout_ms), 0, UINT32_MAX},
    FN("access_log", CTX_MAIN, 1, 2, 0, on_access_log),
    FN("log_format", CTX_MAIN, 2, NARGS_ANY, DF_MULTI, on_log_format),
    FN("error_log", CTX_MAIN, 1, 2, 0, on_error_log),
    FN("pid", CTX_MAIN, 1, 1, 0, on_pid),
    FN("upstream", CTX_MAIN, 1, 1, DF_BLOCK | DF_MULTI | DF_EARLY, on_upstream),
    FN("geo", CTX_MAIN, 1, 1, DF_BLOCK | DF_MULTI | DF_FIRST, conf_on_geo),
    FN("server", CTX_MAIN, 0, 0, DF_BLOCK | DF_MULTI | DF_LATE, on_server),
    FN("forward_proxy", CTX_MAIN, 0, 0, DF_BLOCK | DF_MULTI | DF_LATE, on_forward_proxy),
    /* forward_proxy (conf/forward.c): a server block with these */
    FN("resolver", CTX_SERVER, 1, NARGS_ANY, 0, conf_on_forward_setting),
    FN("resolver_timeout", CTX_SERVER, 1, 1, 0, conf_on_forward_setting),
    FN("connect_ports", CTX_SERVER, 1, NARGS_ANY, 0, conf_on_forward_setting),
    FN("allow_private_destinations", CTX_SERVER, 1, 1, 0, conf_on_forward_setting),
    FN("block_domains", CTX_SERVER, 1, NARGS_ANY, DF_MULTI, conf_on_forward_setting),
    FN("block_urls", CTX_SERVER, 1, NARGS_ANY, DF_MULTI, conf_on_forward_setting),
    FN("allow_domains", CTX_SERVER, 1, NARGS_ANY, DF_MULTI, conf_on_forward_setting),
    FN("anonymous", CTX_SERVER, 1, 1, 0, conf_on_forward_setting),
    FN("auth", CTX_SERVER, 2, 3, 0, conf_on_forward_setting),
    FN("group", CTX_SERVER, 1, 1, DF_BLOCK | DF_MULTI, conf_on_forward_setting),
    FN("block_page", CTX_SERVER, 1, 1, 0, conf_on_forward_setting),
    FN("strip_headers", CTX_SERVER, 1, NARGS_ANY, DF_MULTI, conf_on_forward_setting),
    /* upstream */
    FN("server", CTX_UPSTREAM, 1, 9, DF_MULTI, on_upstream_server),
    {"keepalive", CTX_UPSTREAM, 1, 1, 0, NULL, V_NUM, TGT_UC, 4,
     offsetof(struct gh_upstream_conf, keepalive), 0, 10000},
    {"keepalive_timeout", CTX_UPSTREAM, 1, 1, 0, NULL, V_DUR, TGT_UC, 4,
     offsetof(struct gh_upstream_conf, keepalive_timeout_ms), 0, UINT32_MAX},
    /* balancing, passive health and retries (conf/balance.c) */
    FN("balance", CTX_UPSTREAM, 1, 4, 0, conf_on_balance),
    {"max_fails", CTX_UPSTREAM, 1, 1, 0, NULL, V_NUM, TGT_UC, 4,
     offsetof(struct gh_upstream_conf, max_fails), 0, 1000},
    {"fail_timeout", CTX_UPSTREAM, 1, 1, 0, NULL, V_DUR, TGT_UC, 4,
     offsetof(struct gh_upstream_conf, fail_timeout_ms), 1, 300000},
    {"retries", CTX_UPSTREAM, 1, 1, 0, NULL, V_NUM, TGT_UC, 4,
     offsetof(struct gh_upstream_conf, retries), 0, 100},
    FN("retry_on", CTX_UPSTREAM, 1, NARGS_ANY, 0, conf_on_retry_on),
    FN("queue", CTX_UPSTREAM, 1, 2, 0, conf_on_queue),
    FN("fail_on", CTX_UPSTREAM, 1, NARGS_ANY, 0, conf_on_fail_on),
    FN("health_check", CTX_UPSTREAM, 1, 7, 0, conf_on_health_check),
    FN("region_fallback", CTX_UPSTREAM, 2, NARGS_ANY, DF_MULTI, conf_on_region_fallback),
    FN("sticky", CTX_UPSTREAM, 2, 4, 0, conf_on_sticky),
    FN("resolver", CTX_UPSTREAM, 1, NARGS_ANY, 0, conf_on_ups_resolver),
    FN("resolver_timeout", CTX_UPSTREAM, 1, 1, 0, conf_on_ups_resolver),
    /* server */
    FN("listen", CTX_SERVER, 1, 7, DF_MULTI, on_listen),
    FN("server_name", CTX_SERVER, 1, NARGS_ANY, DF_MULTI, on_server_name),
    FN("route", CTX_SERVER, 1, 2, DF_BLOCK | DF_MULTI | DF_LATE, on_route),
    SC_VAL("client_header_timeout", V_DUR, client_header_timeout_ms, 1, UINT32_MAX),
    SC_VAL("keepalive_timeout", V_DUR, keepalive_timeout_ms, 0, UINT32_MAX),
    SC_VAL("keepalive_requests", V_NUM, keepalive_requests, 1, UINT32_MAX),
    SC_VAL("max_request_line", V_SIZE, max_request_line, 256, 65536),
    SC_VAL("max_header_line", V_SIZE, max_header_line, 256, 65536),
    SC_VAL("max_headers", V_NUM, max_headers, 1, 256),
    SC_VAL("max_head_size", V_SIZE, max_head_size, 1024, 65536),
    /* proxy settings */
    FN("proxy", CTX_PROXY, 1, 2, 0, on_proxy),
    FN("rewrite", CTX_PROXY, 2, 3, DF_MULTI, on_rewrite),
    FN("return", CTX_PROXY, 1, NARGS_ANY, DF_MULTI, on_return),
    FN("redirect", CTX_PROXY, 2, NARGS_ANY, DF_MULTI, conf_on_redirect),
    PC_DUR("client_body_timeout", client_body_timeout_ms, 1),
    PC_DUR("send_timeout", send_timeout_ms, 1),
    PC_DUR("connect_timeout", connect_timeout_ms, 1),
    PC_DUR("first_byte_timeout", first_byte_timeout_ms, 1),
    PC_DUR("read_timeout", read_timeout_ms, 1),
    PC_DUR("tunnel_idle_timeout", tunnel_idle_timeout_ms, 1),
    PC_DUR("tunnel_timeout", tunnel_timeout_ms, 0),
    {"client_max_body_size", CTX_PROXY, 1, 1, 0, NULL, V_SIZE, TGT_PC, 8,
     offsetof(struct gh_proxy_conf, client_max_body_size), 0, UINT64_MAX},
    FN("forwarded", CTX_PROXY, 1, 1, 0, on_forwarded),
    FN("via", CTX_PROXY, 1, 1, 0, on_via),
    FN("splice", CTX_PROXY, 1, 1, 0, on_splice),
    FN("upstream_host", CTX_PROXY, 1, 1, 0, on_upstream_host),
    FN("request_header", CTX_PROXY, 2, 3, DF_MULTI, on_header),
    /* cache (conf/cache.c): the stores at top level (before the servers that name them) */
    FN("cache", CTX_MAIN, 1, 1, DF_BLOCK | DF_MULTI | DF_EARLY, conf_on_cache_block),
    FN("cache", CTX_SERVER | CTX_ROUTE, 1, 1, 0, conf_on_cache_setting),
    FN("cache_key", CTX_PROXY, 1, 1, 0, conf_on_cache_setting),
    FN("cache_bypass", CTX_PROXY, 1, 1, 0, conf_on_cache_setting),
    FN("cache_valid", CTX_PROXY, 1, NARGS_ANY, DF_MULTI, conf_on_cache_setting),
    FN("cache_status", CTX_PROXY, 1, 1, 0, conf_on_cache_setting),
    FN("cache_purge_from", CTX_PROXY, 1, NARGS_ANY, 0, conf_on_cache_setting),
    FN("cache_purge_api", CTX_SERVER | CTX_ROUTE, 1, 1, 0, conf_on_cache_setting),
    /* access (conf/access.c) */
    FN("allow", CTX_PROXY, 1, NARGS_ANY, DF_MULTI, conf_on_access),
    FN("deny", CTX_PROXY, 1, NARGS_ANY, DF_MULTI, conf_on_access),
    FN("limit_conn", CTX_PROXY, 1, 2, 0, conf_on_limit_conn),
    FN("real_ip_from", CTX_SRVLVL, 1, NARGS_ANY, DF_MULTI, conf_on_real_ip_from),
    FN("real_ip_header", CTX_SRVLVL, 1, 1, 0, conf_on_real_ip_header),
    FN("proxy_protocol_from", CTX_SRVLVL, 1, NARGS_ANY, DF_MULTI, conf_on_proxy_protocol_from),
    SC_VAL("proxy_protocol_timeout", V_DUR, proxy_protocol_timeout_ms, 1, UINT32_MAX),
    FN("request_buffering", CTX_PROXY, 1, 2, 0, conf_on_request_buffering),
    FN("client_body_temp_path", CTX_PROXY, 1, 1, 0, conf_on_body_temp_path),
    FN("client_body_min_rate", CTX_PROXY, 1, 2, 0, conf_on_body_min_rate),
    {"max_connections", CTX_MAIN, 1, 1, 0, NULL, V_NUM, TGT_CFG, 4,
     offsetof(struct gh_config, max_connections), 1, 10000000},
    FN("response_header", CTX_PROXY, 2, 3, DF_MULTI, on_header),
    /* rate limits (conf/ratelimit.c) */
    FN("rate_limit", CTX_PROXY, 2, 5, DF_MULTI, conf_on_rate_limit),
    FN("rate_limit_zone", CTX_MAIN, 2, 2, DF_MULTI | DF_EARLY, conf_on_rate_limit_zone),
    FN("rate_limit_headers", CTX_PROXY, 1, 1, 0, conf_on_rate_limit),
    /* origin hiding and error pages (conf/hide.c) */
    FN("hide_header", CTX_PROXY, 1, NARGS_ANY, DF_MULTI, conf_on_hide),
    FN("pass_header", CTX_PROXY, 1, NARGS_ANY, DF_MULTI, conf_on_hide),
    FN("server_tokens", CTX_PROXY, 1, 1, 0, conf_on_hide),
    FN("proxy_redirect", CTX_PROXY, 1, 2, DF_MULTI, conf_on_hide),
    FN("error_page", CTX_PROXY, 2, NARGS_ANY, DF_MULTI, conf_on_hide),
    FN("intercept_errors", CTX_PROXY, 1, 1, 0, conf_on_hide),
    /* TLS from clients (conf/tls.c) */
    FN("tls_certificate", CTX_SRVLVL, 1, 1, DF_MULTI, conf_on_tls_file),
    FN("tls_key", CTX_SRVLVL, 1, 1, DF_MULTI, conf_on_tls_file),
    FN("tls_protocols", CTX_SRVLVL, 1, 2, 0, conf_on_tls_protocols),
    FN("tls_ciphers", CTX_SRVLVL, 1, 1, 0, conf_on_tls_ciphers),
    FN("tls_ciphersuites", CTX_SRVLVL, 1, 1, 0, conf_on_tls_ciphers),
    FN("tls_prefer_server_ciphers", CTX_SRVLVL, 1, 1, 0, conf_on_tls_flag),
    FN("tls_session_tickets", CTX_SRVLVL, 1, 1, 0, conf_on_tls_flag),
    FN("tls_session_cache", CTX_SRVLVL, 1, 1, 0, conf_on_tls_number),
    FN("tls_session_timeout", CTX_SRVLVL, 1, 1, 0, conf_on_tls_number),
    FN("tls_verify_depth", CTX_SRVLVL, 1, 1, 0, conf_on_tls_number),
    FN("tls_session_ticket_key", CTX_SRVLVL, 1, 1, DF_MULTI, conf_on_tls_file),
    FN("tls_ocsp_response", CTX_SRVLVL, 1, 1, 0, conf_on_tls_file),
    FN("tls_client_ca", CTX_SRVLVL, 1, 1, 0, conf_on_tls_file),
    FN("tls_verify_client", CTX_SRVLVL, 1, 1, 0, conf_on_tls_verify_client),
    FN("hsts", CTX_SRVLVL, 1, 3, 0, conf_on_hsts),
    FN("redirect_to_https", CTX_SRVLVL, 0, 2, 0, conf_on_redirect_to_https),
    /* TLS to origins */
    FN("tls_trusted_ca", CTX_MAIN | CTX_UPSTREAM, 1, 1, 0, conf_on_up_tls),
    FN("tls_verify", CTX_MAIN | CTX_UPSTREAM, 1, 1, 0, conf_on_up_tls),
    FN("tls_name", CTX_MAIN | CTX_UPSTREAM, 1, 1, 0, conf_on_up_tls),
    FN("tls_client_certificate", CTX_MAIN | CTX_UPSTREAM, 1, 1, 0, conf_on_up_tls),
    FN("tls_client_key", CTX_MAIN | CTX_UPSTREAM, 1, 1, 0, conf_on_up_tls),
};

#define N_DIRS GH_ARRAY_LEN(dirs)

bool
conf_is_directive(const char *name, size_t len)
{
    for (uint32_t i = 0; i < N_DIRS; i++)
        if (strlen(dirs[i].name) == len && memcmp(dirs[i].name, name, len) == 0)
            return true;
    return false;
}

/* What nginx and HAProxy users reach for first, and what it is called here. */
static const struct {
    const char *theirs, *ours;
} aliases[] = {
    {"proxy_pass", "proxy NAME|ADDR:PORT (no http://)"},
    {"location", "route [= | ~] PATH { }"},
    {"add_header", "response_header add|set NAME VALUE"},
    {"proxy_set_header", "request_header set NAME VALUE"},
    {"more_set_headers", "response_header set NAME VALUE"},
    {"worker_processes", "threads"},
    {"nbthread", "threads"},
    {"worker_connections", "max_connections (for all threads together)"},
    {"proxy_connect_timeout", "connect_timeout"},
    {"proxy_read_timeout", "first_byte_timeout / read_timeout"},
    {"proxy_send_timeout", "read_timeout"},
    {"large_client_header_buffers", "max_header_line / max_head_size"},
    {"http", "no http { } block; directives go at top level"},
    {"frontend", "server { listen ...; }"},
    {"backend", "upstream NAME { server ...; }"},
    {"bind", "listen"},
    {"http-request", "request_header / route"},
    {"ssl_certificate", "tls_certificate"},
    {"ssl_certificate_key", "tls_key"},
    {"ssl_protocols", "tls_protocols"},
    {"ssl_ciphers", "tls_ciphers"},
    {"ssl_client_certificate", "tls_client_ca"},
    {"ssl_verify_client", "tls_verify_client"},
    {"ssl_session_tickets", "tls_session_tickets"},
    {"ssl_session_ticket_key", "tls_session_ticket_key"},
    {"ssl_stapling_file", "tls_ocsp_response"},
    {"proxy_ssl_trusted_certificate", "tls_trusted_ca"},
    {"proxy_ssl_verify", "tls_verify"},
    {"proxy_ssl_name", "tls_name"},
    {"proxy_ssl_certificate", "tls_client_certificate"},
    {"proxy_ssl_certificate_key", "tls_client_key"},
    {"ssl", "listen ADDR tls"},
    {"set_real_ip_from", "real_ip_from"},
    {"real_ip_recursive", "always on: real_ip_from skips every trusted address"},
    {"limit_conn_zone", "none needed: limit_conn N counts per client address"},
    {"proxy_hide_header", "hide_header"},
    {"proxy_pass_header", "pass_header"},
    {"proxy_intercept_errors", "intercept_errors"},
    {"limit_req", "rate_limit KEY RATE [burst=N] [zone=NAME]"},
    {"limit_req_zone", "rate_limit_zone NAME keys=N (the key and rate go on rate_limit)"},
    {"worker_rlimit_nofile", "raise the open-file limit; max_connections caps connections"},
    {"maxconn", "max_connections"},
};

/* The table index of n's directive in ctx, or -1 after reporting why there is none. */
static int
lookup(struct build *b, unsigned ctx, const struct cnode *n)
{
    bool exists = false;
    for (uint32_t i = 0; i < N_DIRS; i++) {
        if (!conf_tok_is(&n->name, dirs[i].name))
            continue;
        if (dirs[i].ctx & ctx)
            return (int)i;
        exists = true;
    }
    if (exists) {
        if (ctx == CTX_MAIN)
            conf_err(b->st, &n->name.pos, "directive '%s' is not allowed at top level",
                     conf_show_tok(b, &n->name));
        else
            conf_err(b->st, &n->name.pos, "directive '%s' is not allowed in '%s' context",
                     conf_show_tok(b, &n->name), ctx_name(ctx));
        return -1;
    }
    for (uint32_t i = 0; i < GH_ARRAY_LEN(aliases); i++)
        if (strlen(aliases[i].theirs) == n->name.len &&
            memcmp(aliases[i].theirs, n->name.text, n->name.len) == 0) {
            conf_err(b->st, &n->name.pos, "unknown directive '%s' (in Gatehouse: %s)",
                     conf_show_tok(b, &n->name), aliases[i].ours);
            return -1;
        }
    const char *names[N_DIRS];
    uint32_t nn = 0;
    for (uint32_t i = 0; i < N_DIRS; i++)
        if (dirs[i].ctx & ctx)
            names[nn++] = dirs[i].name;
    conf_err(b->st, &n->name.pos, "unknown directive '%s'%s", conf_show_tok(b, &n->name),
             suggest(b, n->name.text, n->name.len, names, nn));
    return -1;
}

/* The walk's phase of a directive: 0 `geo`, 1 `upstream`, 2 settings, 3 blocks that inherit
 * (see the top of this file). */
static int
phase_of(int idx)
{
    if (idx < 0)
        return 2;
    if (dirs[idx].flags & DF_FIRST)
        return 0;
    if (dirs[idx].flags & DF_EARLY)
        return 1;
    return dirs[idx].flags & DF_LATE ? 3 : 2;
}

/* Arity and block shape; false after reporting a problem. */
static bool
check_shape(struct build *b, const struct dir *d, const struct cnode *n)
{
    if ((d->flags & DF_BLOCK) && !n->has_block) {
        conf_err(b->st, &n->name.pos, "'%s' expects a block { ... }", d->name);
        return false;
    }
    if (!(d->flags & DF_BLOCK) && n->has_block) {
        conf_err(b->st, &n->name.pos, "'%s' takes no block", d->name);
        return false;
    }
    if (n->n_args > d->max_args && d->max_args != NARGS_ANY) {
        /* An argument first on a new line is most likely the next directive. */
        const struct conf_tok *prev = &n->name;
        for (uint32_t i = 0; i < n->n_args && i <= d->max_args; i++) {
            if (n->args[i].pos.line > prev->pos.line && i >= d->min_args) {
                struct conf_pos at = {prev->pos.file, prev->pos.line, prev->end_col};
                conf_err(b->st, &at, "missing ';' after '%s'", d->name);
                return false;
            }
            prev = &n->args[i];
        }
    }
    if (n->n_args < d->min_args || (n->n_args > d->max_args && d->max_args != NARGS_ANY)) {
        if (d->min_args == d->max_args)
            conf_err(b->st, &n->name.pos, "'%s' expects %u argument%s, got %u", d->name,
                     d->min_args, d->min_args == 1 ? "" : "s", n->n_args);
        else if (d->max_args == NARGS_ANY)
            conf_err(b->st, &n->name.pos, "'%s' expects at least %u argument%s, got %u", d->name,
                     d->min_args, d->min_args == 1 ? "" : "s", n->n_args);
        else
            conf_err(b->st, &n->name.pos, "'%s' expects %u to %u arguments, got %u", d->name,
                     d->min_args, d->max_args, n->n_args);
        return false;
    }
    return true;
}

static void
set_value(struct build *b, struct blk *k, const struct dir *d, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    uint64_t v = 0;
    int rc;
    if (d->kind == V_DUR) {
        rc = parse_duration(t->text, t->len, &v);
        if (rc == VAL_INVALID) {
            conf_err(b->st, &t->pos, "invalid duration '%s' for '%s' (expected e.g. 10s, 500ms)",
                     conf_show_tok(b, t), d->name);
            return;
        }
        if (rc == VAL_RANGE) {
            conf_err(b->st, &t->pos, "duration '%s' out of range for '%s' (at most 49d)",
                     conf_show_tok(b, t), d->name);
            return;
        }
        if (v < d->vmin) {
            conf_err(b->st, &t->pos, "duration '%s' out of range for '%s' (must be more than 0)",
                     conf_show_tok(b, t), d->name);
            return;
        }
    } else {
        rc = d->kind == V_SIZE ? parse_size(t->text, t->len, &v) : parse_num(t->text, t->len, &v);
        if (rc == VAL_INVALID) {
            if (d->kind == V_SIZE)
                conf_err(b->st, &t->pos, "invalid size '%s' for '%s' (expected e.g. 512, 8k, 1m)",
                         conf_show_tok(b, t), d->name);
            else
                conf_err(b->st, &t->pos, "invalid number '%s' for '%s'", conf_show_tok(b, t),
                         d->name);
            return;
        }
        if (rc == VAL_RANGE || v < d->vmin || v > d->vmax) {
            conf_err(b->st, &t->pos, "%s '%s' out of range for '%s' (%llu..%llu)",
                     d->kind == V_SIZE ? "size" : "number", conf_show_tok(b, t), d->name,
                     (unsigned long long)d->vmin, (unsigned long long)d->vmax);
            return;
        }
    }
    char *base;
    switch (d->target) {
    case TGT_PC:
        base = (char *)k->pc;
        break;
    case TGT_SC:
        base = (char *)k->sc;
        break;
    case TGT_UC:
        base = (char *)&k->ups->uc;
        break;
    default:
        base = (char *)b->cfg;
        break;
    }
    if (d->width == 8) {
        memcpy(base + d->off, &v, 8);
    } else {
        uint32_t v32 = (uint32_t)v;
        memcpy(base + d->off, &v32, 4);
    }
}

static void
apply(struct build *b, struct blk *k, int idx, const struct cnode *n)
{
    const struct dir *d = &dirs[idx];
    if (!check_shape(b, d, n))
        return;
    if (!(d->flags & DF_MULTI)) {
        if (k->seen[idx] != NULL) {
            conf_err(b->st, &n->name.pos, "duplicate '%s' (first at %s)", d->name,
                     conf_where(b, &k->seen[idx]->name.pos, n->name.pos.file));
            return;
        }
        k->seen[idx] = n;
    }
    if (d->fn != NULL)
        d->fn(b, k, n);
    else if (d->kind != V_NONE)
        set_value(b, k, d, n);
}

static const struct gh_hdr_rule *
rules_array(struct build *b, const struct vec *v)
{
    struct gh_hdr_rule *a = gh_arena_alloc(b->arena, v->n * sizeof(*a));
    for (uint32_t i = 0; i < v->n; i++)
        a[i] = *(const struct gh_hdr_rule *)v->v[i];
    return a;
}

/* Walk a block's directives in the three phases (see the top of this file). */
static void
walk_block(struct build *b, struct blk *k, const struct cnode *list)
{
    const struct cnode *seen[N_DIRS] = {0};
    k->seen = seen;
    for (int phase = 0; phase < 4 && !b->st->stop; phase++) {
        for (const struct cnode *n = list; n != NULL && !b->st->stop; n = n->next) {
            int idx = -1;
            for (uint32_t i = 0; i < N_DIRS && idx < 0; i++)
                if (conf_tok_is(&n->name, dirs[i].name) && (dirs[i].ctx & k->ctx))
                    idx = (int)i;
            if (phase_of(idx) != phase)
                continue;
            if (idx < 0)
                lookup(b, k->ctx, n); /* reports */
            else
                apply(b, k, idx, n);
        }
        if (phase == 2 && k->pc != NULL) {
            /* Header rules replace the inherited ones only when the block has its own. */
            if (k->req.n > 0) {
                k->pc->req_rules = rules_array(b, &k->req);
                k->pc->n_req_rules = k->req.n;
            }
            if (k->resp.n > 0) {
                k->pc->resp_rules = rules_array(b, &k->resp);
                k->pc->n_resp_rules = k->resp.n;
            }
            /* so do access rules and trusted proxies (access.c), and cache_valid */
            conf_access_finish(b, k);
            conf_ratelimit_finish(b, k);
            conf_hide_finish(b, k);
            conf_cache_finish(b, k);
            /* so do rewrites */
            if (k->rw.n > 0) {
                struct gh_rewrite *a = gh_arena_alloc(b->arena, k->rw.n * sizeof(*a));
                for (uint32_t i = 0; i < k->rw.n; i++)
                    a[i] = *(const struct gh_rewrite *)k->rw.v[i];
                k->pc->rewrites = a;
                k->pc->n_rewrites = k->rw.n;
            }
        }
    }
    k->seen = NULL;
}

/* ---- assembly ---- */

static const struct gh_upstream_conf *
remap(struct gh_config *cfg, const struct gh_upstream_conf *u)
{
    return u == NULL ? NULL : &cfg->upstreams[u->index];
}

/* Routes for matching: exact, then regex in file order, then prefix by length descending. */
static void
sort_routes(struct build *b, struct psrv *ps, struct gh_server_conf *sc)
{
    uint32_t n = ps->routes.n, k = 0;
    sc->routes = gh_arena_alloc(b->arena, n * sizeof(*sc->routes));
    sc->n_routes = n;
    for (int kind = 0; kind < 2; kind++) {
        enum gh_route_kind want = kind == 0 ? GH_ROUTE_EXACT : GH_ROUTE_REGEX;
        for (uint32_t i = 0; i < n; i++) {
            const struct gh_route *r = ps->routes.v[i];
            if (r->kind == want)
                sc->routes[k++] = *r;
        }
    }
    uint32_t first_prefix = k;
    for (uint32_t i = 0; i < n; i++) {
        const struct gh_route *r = ps->routes.v[i];
        if (r->kind != GH_ROUTE_PREFIX)
            continue;
        uint32_t j = k++; /* insertion sort, stable: longer first */
        while (j > first_prefix && sc->routes[j - 1].path_len < r->path_len) {
            sc->routes[j] = sc->routes[j - 1];
            j--;
        }
        sc->routes[j] = *r;
    }
    for (uint32_t i = 0; i < n; i++)
        sc->routes[i].pc.upstream = remap(b->cfg, sc->routes[i].pc.upstream);
}

struct plst { /* a listener being assembled */
    struct gh_listen_conf lc;
    struct vec servers; /* struct gh_server_conf * */
    struct vec names;   /* struct pname * with server */
    struct vec name_srv;
    struct conf_pos default_pos;
    struct conf_pos first_pos; /* the first listen of this address */
    bool backlog_set;
    bool deferred; /* some listen of it said `deferred` */
};

static void
add_names(struct build *b, struct plst *l, const struct psrv *ps, struct gh_server_conf *sc)
{
    for (uint32_t i = 0; i < ps->names.n; i++) {
        const struct pname *pn = ps->names.v[i];
        bool dup = false;
        for (uint32_t j = 0; j < l->names.n && !dup; j++) {
            const struct pname *o = l->names.v[j];
            if (o->len == pn->len && memcmp(o->name, pn->name, pn->len) == 0) {
                conf_err(b->st, &pn->pos, "duplicate server_name '%s' on %s (first at %s)",
                         conf_show(b->st, pn->name, pn->len), l->lc.addr.text,
                         conf_where(b, &o->pos, pn->pos.file));
                dup = true;
            }
        }
        if (!dup) {
            conf_vec_push(b, &l->names, (void *)pn);
            conf_vec_push(b, &l->name_srv, sc);
        }
    }
}

static void
name_table(struct build *b, struct plst *l)
{
    uint32_t n = l->names.n, k = 0;
    struct gh_server_name *t = gh_arena_alloc(b->arena, n * sizeof(*t));
    for (uint32_t i = 0; i < n; i++) {
        const struct pname *pn = l->names.v[i];
        if (pn->name[0] != '*') {
            t[k].name = pn->name;
            t[k].len = pn->len;
            t[k].server = l->name_srv.v[i];
            k++;
        }
    }
    uint32_t first_wild = k;
    for (uint32_t i = 0; i < n; i++) {
        const struct pname *pn = l->names.v[i];
        if (pn->name[0] != '*')
            continue;
        struct gh_server_name e = {pn->name + 1, pn->len - 1, true, l->name_srv.v[i]};
        uint32_t j = k++;
        while (j > first_wild && t[j - 1].len < e.len) {
            t[j] = t[j - 1];
            j--;
        }
        t[j] = e;
    }
    l->lc.names = t;
    l->lc.n_names = n;
}

/* pl says `flag` (here) where the address's first listen does not, or the reverse. */
static void
listen_disagrees(struct build *b, const struct plst *l, const struct plisten *pl, bool here,
                 const char *flag, const char *rule)
{
    conf_err(b->st, &pl->pos, "'listen %s' with%s %s here but with%s at %s: %s", l->lc.addr.text,
             here ? "" : "out", flag, here ? "out" : "", conf_where(b, &l->first_pos, pl->pos.file),
             rule);
}

/* The listener being assembled for pl's address (made on first use), with what pl adds to it:
 * TLS agreement, backlog, default server sc. */
static struct plst *
listener_of(struct build *b, struct vec *lsts, const struct plisten *pl, struct gh_server_conf *sc)
{
    struct plst *l = NULL;
    for (uint32_t m = 0; m < lsts->n && l == NULL; m++)
        if (same_addr(&((struct plst *)lsts->v[m])->lc.addr, &pl->addr))
            l = lsts->v[m];
    if (l == NULL) {
        l = gh_arena_alloc(b->arena, sizeof(*l));
        l->lc.addr = pl->addr;
        l->lc.backlog = DEFAULT_BACKLOG;
        l->lc.tls = pl->tls;
        l->lc.socks5 = pl->socks5;
        l->lc.proxy_protocol = pl->proxy_protocol;
        l->first_pos = pl->pos;
        conf_vec_push(b, lsts, l);
    } else if (l->lc.socks5 != pl->socks5) {
        listen_disagrees(b, l, pl, pl->socks5, "socks5",
                         "one address speaks SOCKS5 or HTTP, not both");
    } else if (l->lc.proxy_protocol != pl->proxy_protocol) {
        listen_disagrees(b, l, pl, pl->proxy_protocol, "proxy_protocol",
                         "one address takes a PROXY protocol header first or never");
    } else if (l->lc.tls != pl->tls) {
        listen_disagrees(b, l, pl, pl->tls, "tls",
                         "the servers of one address all speak TLS or none does");
    }
    l->deferred = l->deferred || pl->deferred;
    if (pl->backlog > 0 && (!l->backlog_set || pl->backlog > l->lc.backlog)) {
        l->lc.backlog = pl->backlog; /* the largest one given wins */
        l->backlog_set = true;
    }
    if (pl->is_default && l->lc.default_server != NULL) {
        conf_err(b->st, &pl->pos, "two default servers on %s (first at %s)", l->lc.addr.text,
                 conf_where(b, &l->default_pos, pl->pos.file));
    } else if (pl->is_default) {
        l->lc.default_server = sc;
        l->default_pos = pl->pos;
    }
    return l;
}

static void
assemble(struct build *b)
{
    struct gh_config *cfg = b->cfg;
    cfg->n_geos = b->geos.n;
    struct gh_geo *geos = gh_arena_alloc(b->arena, (cfg->n_geos + 1) * sizeof(*geos));
    for (uint32_t i = 0; i < cfg->n_geos; i++)
        geos[i] = *(const struct gh_geo *)b->geos.v[i];
    cfg->geos = geos;
    cfg->n_upstreams = b->upstreams.n;
    cfg->upstreams = gh_arena_alloc(b->arena, cfg->n_upstreams * sizeof(*cfg->upstreams));
    for (uint32_t i = 0; i < cfg->n_upstreams; i++) {
        struct pups *u = b->upstreams.v[i];
        struct gh_upstream_conf *uc = &cfg->upstreams[i];
        *uc = u->uc;
        uc->n_servers = u->servers.n;
        uc->servers = gh_arena_alloc(b->arena, uc->n_servers * sizeof(*uc->servers));
        for (uint32_t j = 0; j < uc->n_servers; j++)
            uc->servers[j] = *(struct gh_upstream_server *)u->servers.v[j];
    }

    cfg->n_servers = b->servers.n;
    cfg->servers = gh_arena_alloc(b->arena, cfg->n_servers * sizeof(*cfg->servers));
    struct vec lsts = {0};
    for (uint32_t i = 0; i < cfg->n_servers; i++) {
        struct psrv *ps = b->servers.v[i];
        struct gh_server_conf *sc = &cfg->servers[i];
        *sc = ps->sc;
        sc->pc.upstream = remap(cfg, sc->pc.upstream);
        sc->forward = ps->is_forward ? &ps->fwd : NULL;
        sort_routes(b, ps, sc);
        sc->n_names = ps->names.n;
        sc->names = gh_arena_alloc(b->arena, sc->n_names * sizeof(*sc->names));
        sc->name_lens = gh_arena_alloc(b->arena, sc->n_names * sizeof(*sc->name_lens));
        for (uint32_t j = 0; j < sc->n_names; j++) {
            const struct pname *pn = ps->names.v[j];
            sc->names[j] = pn->name;
            sc->name_lens[j] = pn->len;
        }
        for (uint32_t j = 0; j < ps->listens.n; j++) {
            struct plst *l = listener_of(b, &lsts, ps->listens.v[j], sc);
            conf_vec_push(b, &l->servers, sc);
            add_names(b, l, ps, sc);
        }
    }

    cfg->n_listeners = lsts.n;
    cfg->listeners = gh_arena_alloc(b->arena, lsts.n * sizeof(*cfg->listeners));
    for (uint32_t i = 0; i < lsts.n; i++) {
        struct plst *l = lsts.v[i];
        if (l->lc.default_server == NULL)
            l->lc.default_server = l->servers.v[0];
        l->lc.n_servers = l->servers.n;
        l->lc.servers = gh_arena_alloc(b->arena, l->servers.n * sizeof(*l->lc.servers));
        for (uint32_t j = 0; j < l->servers.n; j++)
            l->lc.servers[j] = l->servers.v[j];
        name_table(b, l);
        if (l->deferred) /* nginx: the wait for the first bytes is the head's timeout */
            l->lc.defer_accept_s =
                (int)((l->lc.default_server->client_header_timeout_ms + 999) / 1000);
        conf_check_listener(b, &l->lc, &l->first_pos);
        cfg->listeners[i] = l->lc;
    }
}

static void
set_defaults(struct gh_config *cfg, struct gh_proxy_conf *pc, struct gh_server_conf *sc)
{
    cfg->threads = 0;
    cfg->drain_timeout_ms = 10000;
    cfg->access_log_on = false;
    cfg->access_log_format = GH_LOG_COMBINED;
    cfg->error_log_level = GH_LOG_INFO;

    pc->client_body_timeout_ms = 60000;
    pc->send_timeout_ms = 60000;
    pc->connect_timeout_ms = 5000;
    pc->first_byte_timeout_ms = 60000;
    pc->read_timeout_ms = 60000;
    pc->tunnel_idle_timeout_ms = 300000;
    pc->client_max_body_size = 0;
    pc->forwarded = GH_FWD_XFF;
    pc->via = false;
    pc->splice = true;
    pc->client_body_min_rate_grace_ms = 5000;
    pc->request_buffering = true;
    pc->request_buffer_size = 16384;
    pc->client_body_temp_path = "/tmp";

    sc->client_header_timeout_ms = GH_CONF_DEFAULT_HEADER_TIMEOUT_MS;
    sc->keepalive_timeout_ms = 75000;
    sc->keepalive_requests = 10000;
    sc->max_request_line = GH_CONF_DEFAULT_MAX_REQUEST_LINE;
    sc->max_header_line = GH_CONF_DEFAULT_MAX_HEADER_LINE;
    sc->max_headers = GH_CONF_DEFAULT_MAX_HEADERS;
    sc->max_head_size = GH_CONF_DEFAULT_MAX_HEAD_SIZE;
    sc->real_ip_header = "X-Real-IP"; /* nginx's default */
    sc->real_ip_header_len = 9;
    sc->proxy_protocol_timeout_ms = 10000;
}

struct gh_config *
conf_build(struct conf_state *st, const char *source, struct cnode *root)
{
    struct build b = {.st = st, .arena = st->arena};
    b.cfg = gh_arena_alloc(st->arena, sizeof(*b.cfg));
    b.cfg->arena = st->arena;
    b.cfg->source = gh_arena_strdup(st->arena, source);
    struct gh_proxy_conf main_pc = {0};
    struct gh_server_conf main_sc = {0};
    set_defaults(b.cfg, &main_pc, &main_sc);
    conf_tls_defaults(&b.main_tls);
    b.main_up_tls.verify = -1;
    struct blk k = {.ctx = CTX_MAIN, .pc = &main_pc, .sc = &main_sc, .tls = &b.main_tls};
    walk_block(&b, &k, root);
    resolve_log_format(&b); /* with the walk's errors: all are reported at once */
    if (st->n_errors > 0)
        return NULL;
    assemble(&b);
    if (st->n_errors == 0)
        conf_tls_build(&b);
    if (st->n_errors > 0)
        return NULL;
    b.cfg->keep_request = b.cfg->keep_request || b.cfg->access_log_on;
    char host[256];
    if (gethostname(host, sizeof(host) - 1) != 0)
        strcpy(host, "localhost");
    host[sizeof(host) - 1] = '\0';
    b.cfg->hostname = gh_arena_strdup(b.arena, host);
    b.cfg->pc = main_pc;
    b.cfg->pc.upstream = NULL; /* only answers are made with it (it points into the builder) */
    b.cfg->refcount = 1;
    return b.cfg;
}
