/*
 * rewrite.c - `rewrite REGEX REPLACEMENT [last|break|redirect|permanent];`
 * compiled: the regex (PCRE2, JIT when it can) and the replacement as a
 * template with $1..$9 and variables.
 */
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "conf/conf_int.h"
#include "http/uri.h"

static void
regex_free(void *re)
{
    pcre2_code_free(re);
}

struct pcre2_real_code_8 *
conf_regex(struct conf_state *st, const struct conf_tok *t, bool caseless, const char *what)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)t->text, t->len, caseless ? PCRE2_CASELESS : 0,
                                   &code, &off, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
            strcpy((char *)msg, "unknown error");
        conf_err(st, &t->pos, "invalid regex '%s' in '%s': %s at offset %zu",
                 conf_show(st, t->text, t->len), what, (const char *)msg, (size_t)off);
        return NULL;
    }
    gh_arena_add_cleanup(st->arena, regex_free, re);
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* else the interpreter runs */
    return (struct pcre2_real_code_8 *)re;
}

/* Highest $N a template uses. */
static uint32_t
max_capture(const struct gh_tmpl *t)
{
    uint32_t m = 0;
    for (uint32_t i = 0; i < t->n; i++)
        if (t->parts[i].var == GH_VAR_CAPTURE && (uint32_t)(t->parts[i].text[0] - '0') > m)
            m = (uint32_t)(t->parts[i].text[0] - '0');
    return m;
}

static int
is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* What can be known of the rewritten path before a request: its literal escapes are valid, and
 * when it is all literal, it normalises (no '..' above the root). */
static bool
check_path(struct conf_state *st, const struct conf_tok *rp, const struct gh_tmpl *t)
{
    for (uint32_t i = 0; i < t->n; i++) {
        const struct gh_tmpl_part *p = &t->parts[i];
        if (p->var != GH_VAR_NONE)
            continue;
        const char *q = memchr(p->text, '?', p->len);
        size_t n = q != NULL ? (size_t)(q - p->text) : p->len;
        for (size_t k = 0; k < n; k++) {
            if (p->text[k] != '%')
                continue;
            if (k + 2 >= n || !is_hex(p->text[k + 1]) || !is_hex(p->text[k + 2]) ||
                (p->text[k + 1] == '0' && p->text[k + 2] == '0')) {
                conf_err(st, &rp->pos,
                         "rewrite replacement '%s' has a bad escape (write %%25 for a '%%')",
                         conf_show(st, rp->text, rp->len));
                return false;
            }
        }
        if (q != NULL)
            return true; /* the query is the origin's business */
    }
    if (t->n == 1 && t->parts[0].var == GH_VAR_NONE) {
        const struct gh_tmpl_part *p = &t->parts[0];
        const char *q = memchr(p->text, '?', p->len);
        size_t n = q != NULL ? (size_t)(q - p->text) : p->len;
        char *out = gh_arena_alloc(st->arena, n + 1);
        const char *res;
        size_t rl;
        if (gh_uri_normalize_path(p->text, n, out, &res, &rl) != 0) {
            conf_err(st, &rp->pos, "rewrite replacement '%s' goes above the root with '..'",
                     conf_show(st, rp->text, rp->len));
            return false;
        }
    }
    return true;
}

const struct gh_rewrite *
conf_rewrite(struct conf_state *st, const struct cnode *n)
{
    const struct conf_tok *rx = &n->args[0], *rp = &n->args[1];
    struct gh_rewrite *rw = gh_arena_alloc(st->arena, sizeof(*rw));
    if (n->n_args == 3) {
        static const char *const flags[] = {"last", "break", "redirect", "permanent"};
        const struct conf_tok *f = &n->args[2];
        for (uint32_t i = 0; i < GH_ARRAY_LEN(flags); i++)
            if (f->len == strlen(flags[i]) && memcmp(f->text, flags[i], f->len) == 0)
                rw->flag = (uint8_t)(GH_RW_LAST + i);
        if (rw->flag == GH_RW_NEXT) {
            conf_err(st, &f->pos,
                     "invalid rewrite flag '%s' (expected last, break, redirect or permanent)",
                     conf_show(st, f->text, f->len));
            return NULL;
        }
    }
    rw->re = conf_regex(st, rx, false, "rewrite");
    if (rw->re == NULL)
        return NULL;
    rw->repl = conf_tmpl(st, rp, GH_TC_REWRITE, "rewrite");
    if (rw->repl == NULL)
        return NULL;
    uint32_t groups = 0;
    pcre2_pattern_info((const pcre2_code *)rw->re, PCRE2_INFO_CAPTURECOUNT, &groups);
    uint32_t used = max_capture(rw->repl);
    if (used > groups) {
        conf_err(st, &rp->pos, "'$%u' in 'rewrite' but the regex has %u capture group%s", used,
                 groups, groups == 1 ? "" : "s");
        return NULL;
    }
    /* what a redirect may start with; a path otherwise (a variable may make either) */
    bool redirect = rw->flag == GH_RW_REDIRECT || rw->flag == GH_RW_PERMANENT;
    const struct gh_tmpl_part *first = rw->repl->n > 0 ? &rw->repl->parts[0] : NULL;
    bool lit_first = first != NULL && first->var == GH_VAR_NONE;
    bool absolute = lit_first && ((first->len >= 7 && memcmp(first->text, "http://", 7) == 0) ||
                                  (first->len >= 8 && memcmp(first->text, "https://", 8) == 0));
    if (first == NULL || (lit_first && first->text[0] != '/' && !absolute)) {
        conf_err(st, &rp->pos, "rewrite replacement '%s' must start with '/', http:// or https://",
                 conf_show(st, rp->text, rp->len));
        return NULL;
    }
    /* a URL is a redirect whatever the flag says (nginx does the same) */
    if (absolute && !redirect)
        rw->flag = GH_RW_REDIRECT;
    /* as in nginx, a last '?' only says "without the request's query": it is taken off */
    const struct gh_tmpl_part *last = &rw->repl->parts[rw->repl->n - 1];
    if (last->var == GH_VAR_NONE && last->len > 0 && last->text[last->len - 1] == '?') {
        struct gh_tmpl *t = gh_arena_alloc(st->arena, sizeof(*t));
        struct gh_tmpl_part *parts = gh_arena_alloc(st->arena, rw->repl->n * sizeof(*parts));
        memcpy(parts, rw->repl->parts, rw->repl->n * sizeof(*parts));
        *t = *rw->repl;
        t->parts = parts;
        if (--parts[t->n - 1].len == 0)
            t->n--;
        t->flags |= GH_TMPL_VARS; /* the text as written differs */
        rw->repl = t;
        rw->drops_args = true;
    }
    for (uint32_t i = 0; i < rw->repl->n; i++)
        if (rw->repl->parts[i].var == GH_VAR_NONE &&
            memchr(rw->repl->parts[i].text, '?', rw->repl->parts[i].len) != NULL)
            rw->sets_query = true;
    if (rw->flag != GH_RW_REDIRECT && rw->flag != GH_RW_PERMANENT && !check_path(st, rp, rw->repl))
        return NULL;
    rw->at = gh_arena_sprintf(st->arena, "%s:%u", n->name.pos.file, n->name.pos.line);
    return rw;
}
