/*
 * rewrite.c - what the origin is asked for: the route's rewrites (regex, $1..$9 and
 * variables), or the prefix replacement of `proxy NAME PATH`, applied to the
 * normalised path; the result is normalised again and percent-encoded, and
 * the query is kept unless a rewrite gives one. Without either, the origin
 * gets the target exactly as received.
 *
 * The work happens in the thread's rewrite scratch (four buffers: the
 * expansion, the current path, a query a rewrite gave, the encoded target),
 * during the exchange's start; what must outlive it is copied by the
 * exchange (the kept request).
 */
#include <string.h>

#include "core/log.h"
#include "http/uri.h"
#include "proxy/exchange.h"
#include "proxy/vars.h"
#include "proxy/worker.h"

static int
fail(struct gh_exchange *ex, const struct gh_rewrite *rw, const char *why)
{
    gh_log_error("rewrite at %s: %s", rw != NULL ? rw->at : "proxy", why);
    ex->fail_reason = why;
    return 500;
}

/* A redirect rewrite: its result (with the request's query unless it gives one) as Location. */
static int
redirect(struct gh_exchange *ex, const struct gh_rewrite *rw, struct gh_wr *w)
{
    if (!rw->sets_query && ex->args != NULL && ex->args_len > 0) {
        GH_WR_LIT(w, "?");
        gh_wr_put(w, ex->args, ex->args_len);
    }
    if (w->overflow)
        return fail(ex, rw, "the redirect's URL is longer than a buffer");
    int rc = gh_respond_copy(ex, rw->flag == GH_RW_PERMANENT ? 301 : 302, w->p, w->len, true);
    return rc == GH_OK ? GH_DECLINED : rc;
}

/* Apply one rewrite that matched: the new path in cur (and a query in qry). */
static int
apply(struct gh_exchange *ex, const struct gh_rewrite *rw, const size_t *ov, int pairs, char *exp,
      char *cur, char *qry)
{
    struct gh_vars_caps caps = {ex->uri, ov, (uint32_t)pairs};
    struct gh_wr w = {exp, 0, GH_BUF_SIZE, 0};
    gh_vars_expand(rw->repl, ex, &w, GH_ESC_NONE, &caps);
    if (w.overflow)
        return fail(ex, rw, "the rewritten path is longer than a buffer");
    if (rw->flag == GH_RW_REDIRECT || rw->flag == GH_RW_PERMANENT)
        return redirect(ex, rw, &w);
    const char *q = memchr(exp, '?', w.len);
    size_t plen = q != NULL ? (size_t)(q - exp) : w.len;
    if (rw->sets_query && q != NULL) {
        size_t ql = w.len - plen - 1;
        memcpy(qry, q + 1, ql);
        ex->args = ql > 0 ? qry : NULL;
        ex->args_len = (uint32_t)ql;
    }
    if (plen == 0 || exp[0] != '/')
        return fail(ex, rw, "the rewritten path does not start with '/'");
    const char *res;
    size_t rl;
    if (gh_uri_normalize_path(exp, plen, cur, &res, &rl) != 0)
        return fail(ex, rw, "the rewritten path has a bad escape or goes above the root");
    if (res != cur)
        memmove(cur, res, rl);
    ex->uri = cur;
    ex->uri_len = (uint32_t)rl;
    return GH_OK;
}

int
gh_rewrite_target(struct gh_exchange *ex)
{
    const struct gh_proxy_conf *pc = ex->pc;
    if (pc->n_rewrites == 0 && pc->proxy_path == NULL)
        return GH_OK;
    char *exp = ex->w->rscratch, *cur = exp + GH_BUF_SIZE, *qry = cur + GH_BUF_SIZE,
         *tgt = qry + GH_BUF_SIZE;
    bool rewrote = false;
    for (uint32_t i = 0; i < pc->n_rewrites; i++) {
        const struct gh_rewrite *rw = &pc->rewrites[i];
        const size_t *ov;
        int pairs = gh_conf_regex_match(rw->re, ex->uri, ex->uri_len, &ov);
        if (pairs < 0)
            return fail(ex, rw, "the regex hit its match limits");
        if (pairs == 0)
            continue;
        int rc = apply(ex, rw, ov, pairs, exp, cur, qry);
        if (rc != GH_OK)
            return rc;
        rewrote = true;
        if (rw->flag == GH_RW_BREAK)
            break;
    }
    if (!rewrote && pc->proxy_path != NULL) {
        /* the prefix the block matched gives way to PATH (nginx: proxy_pass http://app/;) */
        size_t strip = GH_MIN(pc->proxy_strip, ex->uri_len);
        size_t rest = ex->uri_len - strip;
        if (pc->proxy_path_len + rest > GH_BUF_SIZE)
            return fail(ex, NULL, "the path with its prefix replaced is longer than a buffer");
        memmove(cur + pc->proxy_path_len, ex->uri + strip, rest);
        memcpy(cur, pc->proxy_path, pc->proxy_path_len);
        ex->uri = cur;
        ex->uri_len = (uint32_t)(pc->proxy_path_len + rest);
    }
    size_t room = GH_BUF_SIZE - (ex->args != NULL ? ex->args_len + 1 : 0);
    size_t n = gh_uri_encode_path(ex->uri, ex->uri_len, tgt, room);
    if (n == 0)
        return fail(ex, NULL, "the rewritten target is longer than a buffer");
    if (ex->args != NULL && ex->args_len > 0) {
        tgt[n++] = '?';
        memcpy(tgt + n, ex->args, ex->args_len);
        n += ex->args_len;
    }
    ex->target = tgt;
    ex->target_len = (uint32_t)n;
    return GH_OK;
}
