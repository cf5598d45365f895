/*
 * hide.c - origin hiding and error pages (handlers for the table in parse.c):
 *
 *   hide_header NAME...;              main, server, route: more origin fields to drop
 *   pass_header NAME...;              main, server, route: default-hidden fields to keep
 *   server_tokens on|off;             main, server, route: Gatehouse's Server field or none
 *   proxy_redirect default|off;       main, server, route
 *   proxy_redirect FROM TO;           (repeatable) Location prefixes to replace
 *   error_page CODE... FILE;          main, server, route: pages for 4xx/5xx answers
 *   intercept_errors on|off;          main, server, route: origin 4xx/5xx get those pages
 *
 * Each list replaces the inherited one when the block has its own (nginx).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conf/parse_int.h"

#define ERROR_PAGE_MAX 65536

static void
on_names(struct build *b, struct vec *v, const struct cnode *n)
{
    for (uint32_t i = 0; i < n->n_args; i++) {
        const struct conf_tok *t = &n->args[i];
        if (!conf_is_token(t->text, t->len)) {
            conf_err(b->st, &t->pos, "invalid header name '%s' in '%s'", conf_show_tok(b, t),
                     n->name.text);
            continue;
        }
        struct gh_hdr_name *h = gh_arena_alloc(b->arena, sizeof(*h));
        h->name = t->text;
        h->len = t->len;
        conf_vec_push(b, v, h);
    }
}

static void
on_proxy_redirect(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    if (n->n_args == 1) {
        if (!conf_tok_is(t, "off") && !conf_tok_is(t, "default")) {
            conf_err(b->st, &t->pos,
                     "expected 'off', 'default' or FROM TO in 'proxy_redirect', got '%s'",
                     conf_show_tok(b, t));
            return;
        }
        k->redirect_mode = n;
        k->pc->proxy_redirect = conf_tok_is(t, "off") ? GH_PREDIR_OFF : GH_PREDIR_DEFAULT;
        return;
    }
    if (!conf_url_arg(b, t, "proxy_redirect") || !conf_url_arg(b, &n->args[1], "proxy_redirect"))
        return;
    struct gh_redirect_map *m = gh_arena_alloc(b->arena, sizeof(*m));
    m->from = t->text;
    m->from_len = t->len;
    m->to = n->args[1].text;
    m->to_len = n->args[1].len;
    conf_vec_push(b, &k->redirects, m);
}

/* The file's contents (at most ERROR_PAGE_MAX bytes) in the arena; NULL after reporting. */
static const char *
read_page(struct build *b, const struct cnode *n, const struct conf_tok *t, uint32_t *len)
{
    if (!conf_check_path(b, n, t))
        return NULL;
    if (b->st->flags & GH_CONF_NO_INCLUDE) { /* untrusted text reads no files */
        *len = 0;
        return "";
    }
    const char *path = conf_path_arg(b, n, t);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        conf_err(b->st, &t->pos, "cannot read '%s': %s", path, strerror(errno));
        return NULL;
    }
    char *page = gh_arena_alloc(b->arena, ERROR_PAGE_MAX + 1);
    size_t got = fread(page, 1, ERROR_PAGE_MAX + 1, f);
    fclose(f);
    if (got > ERROR_PAGE_MAX) {
        conf_err(b->st, &t->pos, "'%s' is larger than 64 KiB", path);
        return NULL;
    }
    *len = (uint32_t)got;
    return page;
}

static void
on_error_page(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *file = &n->args[n->n_args - 1];
    uint64_t codes[32];
    uint32_t nc = 0;
    for (uint32_t i = 0; i + 1 < n->n_args; i++) {
        if (nc == GH_ARRAY_LEN(codes)) {
            conf_err(b->st, &n->args[i].pos, "too many codes in one 'error_page' (at most 32)");
            return;
        }
        if (!conf_number_arg(b, &n->args[i], "error_page", 400, 599, &codes[nc++]))
            return;
    }
    uint32_t len;
    const char *body = read_page(b, n, file, &len);
    if (body == NULL)
        return;
    for (uint32_t i = 0; i < nc; i++) {
        struct gh_error_page *p = gh_arena_alloc(b->arena, sizeof(*p));
        p->status = (uint16_t)codes[i];
        p->body = body;
        p->body_len = len;
        conf_vec_push(b, &k->error_pages, p);
    }
}

void
conf_on_hide(struct build *b, struct blk *k, const struct cnode *n)
{
    const char *d = n->name.text;
    bool off = false;
    if (strcmp(d, "hide_header") == 0) {
        on_names(b, &k->hide, n);
    } else if (strcmp(d, "pass_header") == 0) {
        on_names(b, &k->pass, n);
    } else if (strcmp(d, "server_tokens") == 0) {
        bool on = true;
        conf_on_off(b, n, &on);
        k->pc->server_tokens_off = !on;
    } else if (strcmp(d, "proxy_redirect") == 0) {
        on_proxy_redirect(b, k, n);
    } else if (strcmp(d, "error_page") == 0) {
        on_error_page(b, k, n);
    } else {
        conf_on_off(b, n, &off);
        k->pc->intercept_errors = off;
    }
}

/* v's items (each size bytes, pointed to) as one array. */
static void *
flatten(struct build *b, const struct vec *v, size_t size)
{
    char *a = gh_arena_alloc(b->arena, v->n * size);
    for (uint32_t i = 0; i < v->n; i++)
        memcpy(a + i * size, v->v[i], size);
    return a;
}

void
conf_hide_finish(struct build *b, struct blk *k)
{
    struct gh_proxy_conf *pc = k->pc;
    if (pc == NULL)
        return;
    if (k->hide.n > 0) {
        pc->hide = flatten(b, &k->hide, sizeof(struct gh_hdr_name));
        pc->n_hide = k->hide.n;
    }
    if (k->pass.n > 0) {
        pc->pass = flatten(b, &k->pass, sizeof(struct gh_hdr_name));
        pc->n_pass = k->pass.n;
    }
    if (k->redirects.n > 0) {
        if (k->redirect_mode != NULL)
            conf_err(b->st, &k->redirect_mode->name.pos,
                     "'proxy_redirect %s' and 'proxy_redirect FROM TO' in one block",
                     k->redirect_mode->args[0].text);
        pc->redirects = flatten(b, &k->redirects, sizeof(struct gh_redirect_map));
        pc->n_redirects = k->redirects.n;
        pc->proxy_redirect = GH_PREDIR_MAP;
    }
    if (k->error_pages.n > 0) {
        pc->error_pages = flatten(b, &k->error_pages, sizeof(struct gh_error_page));
        pc->n_error_pages = k->error_pages.n;
    }
}
