/*
 * rewrite.c - which route serves a request and what the origin is asked
 * for, nginx's way: the server's rewrites run on the normalised path before
 * a route is searched; the route's own rewrites run in it, and when one
 * changed the path without 'break' the routes are searched again (at most
 * 10 times). A route's `proxy NAME PATH` then replaces the prefix it matched
 * unless its own rewrite ended with 'break'. The result is normalised again
 * and percent-encoded, the query kept unless a rewrite gives one; with no
 * rewrite and no replacement the origin gets the target exactly as received.
 *
 * The work happens in the thread's rewrite scratch (four buffers: the
 * expansion, the current path, a query a rewrite gave, the encoded target),
 * during the exchange's start; what must outlive it is copied by the
 * exchange (the kept request).
 */
#include <stdio.h>
#include <string.h>

#include "http/uri.h"
#include "proxy/exchange.h"
#include "proxy/vars.h"
#include "proxy/worker.h"

/* A 500 whose log line (written by the caller, at once) names the rewrite. */
static int
fail(struct gh_exchange *ex, const struct gh_rewrite *rw, const char *why)
{
    static __thread char reason[256];
    if (rw != NULL) {
        snprintf(reason, sizeof(reason), "rewrite at %s: %s", rw->at, why);
        why = reason;
    }
    ex->fail_reason = why;
    return 500;
}

/* A redirect rewrite: its result as Location, with the request's query after the one it gives
 * (after '&') or as the query, unless it ended with '?'. */
static int
redirect(struct gh_exchange *ex, const struct gh_rewrite *rw, struct gh_wr *w)
{
    if (!rw->drops_args && ex->args != NULL && ex->args_len > 0) {
        if (rw->sets_query)
            GH_WR_LIT(w, "&");
        else
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
        /* its query, then the request's after '&' (nginx), unless it ended with '?' */
        size_t ql = w.len - plen - 1;
        size_t old = !rw->drops_args && ex->args != NULL ? ex->args_len : 0;
        if (ql > 0 && old > 0) {
            if (ql + 1 + old > GH_BUF_SIZE)
                return fail(ex, rw, "the rewritten query is longer than a buffer");
            memmove(qry + ql + 1, ex->args, old); /* it may be in qry already */
            qry[ql] = '&';
            memcpy(qry, q + 1, ql);
            ql += 1 + old;
        } else if (old > 0) {
            memmove(qry, ex->args, old);
            ql = old;
        } else {
            memcpy(qry, q + 1, ql);
        }
        ex->args = ql > 0 ? qry : NULL;
        ex->args_len = (uint32_t)ql;
    } else if (rw->drops_args) {
        ex->args = NULL;
        ex->args_len = 0;
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

/* nginx's bound on searching the routes again (its "rewrite or internal redirection cycle") */
#define MAX_CYCLES 10

struct run {
    char *exp, *cur, *qry;
    bool changed; /* a rewrite matched in this list */
    uint8_t stop; /* the flag that stopped the list (GH_RW_NEXT: it ran to its end) */
    const struct gh_rewrite *last; /* the last one that matched */
};

/* Run one list of rewrites on ex->uri. GH_OK, GH_DECLINED (redirected) or 500. */
static int
run_list(struct gh_exchange *ex, const struct gh_rewrite *rws, uint32_t n, struct run *st)
{
    st->changed = false;
    st->stop = GH_RW_NEXT;
    for (uint32_t i = 0; i < n; i++) {
        const struct gh_rewrite *rw = &rws[i];
        const size_t *ov;
        int pairs = gh_conf_regex_match(rw->re, ex->uri, ex->uri_len, &ov);
        if (pairs < 0)
            return fail(ex, rw, "the regex hit its match limits");
        if (pairs == 0)
            continue;
        int rc = apply(ex, rw, ov, pairs, st->exp, st->cur, st->qry);
        if (rc != GH_OK)
            return rc;
        st->changed = true;
        st->last = rw;
        if (rw->flag == GH_RW_BREAK || rw->flag == GH_RW_LAST) {
            st->stop = rw->flag;
            break;
        }
    }
    return GH_OK;
}

int
gh_rewrite_route(struct gh_exchange *ex)
{
    const struct gh_server_conf *srv = ex->srv;
    if (srv->pc.n_rewrites == 0) { /* most requests: a route, and nothing to rewrite */
        ex->pc = gh_conf_find_route(srv, ex->uri, ex->uri_len, NULL);
        if (ex->pc->n_rewrites == 0 && ex->pc->proxy_path == NULL)
            return GH_OK;
    }
    ex->pc = &srv->pc;
    char *exp = ex->w->rscratch, *cur = exp + GH_BUF_SIZE, *qry = cur + GH_BUF_SIZE,
         *tgt = qry + GH_BUF_SIZE;
    struct run st = {exp, cur, qry, false, GH_RW_NEXT, NULL};
    bool rewrote = false;
    /* the server's rewrites, once, before a route is found (a 'last' or 'break' ends them) */
    int rc = run_list(ex, srv->pc.rewrites, srv->pc.n_rewrites, &st);
    if (rc != GH_OK)
        return rc;
    rewrote = st.changed;
    /* then the route's: one that changed the path without 'break' searches the routes again */
    for (int cycles = 0;; cycles++) {
        ex->pc = gh_conf_find_route(srv, ex->uri, ex->uri_len, NULL);
        if (ex->pc == &srv->pc)
            break; /* no route: the server's rewrites have run */
        rc = run_list(ex, ex->pc->rewrites, ex->pc->n_rewrites, &st);
        if (rc != GH_OK)
            return rc;
        rewrote |= st.changed;
        if (!st.changed || st.stop == GH_RW_BREAK)
            break;
        /* nginx allows 10 searches again and fails the 11th */
        if (cycles == MAX_CYCLES)
            return fail(ex, st.last, "the routes were searched again 10 times (a rewrite cycle?)");
    }
    const struct gh_proxy_conf *pc = ex->pc;
    if (!rewrote && pc->proxy_path == NULL)
        return GH_OK; /* the target exactly as received */
    const char *path = ex->uri;
    size_t path_len = ex->uri_len;
    if (!(st.changed && st.stop == GH_RW_BREAK) && pc->proxy_path != NULL) {
        /* the prefix the route matched gives way to PATH (nginx: proxy_pass http://app/;),
         * unless the route's own rewrite said where to go. Only the origin's target changes:
         * $uri stays the path the route matched, as in nginx (exp is free now: ex->uri is
         * in cur or the request) */
        size_t strip = GH_MIN(pc->proxy_strip, ex->uri_len);
        size_t rest = ex->uri_len - strip;
        if (pc->proxy_path_len + rest > GH_BUF_SIZE)
            return fail(ex, NULL, "the path with its prefix replaced is longer than a buffer");
        memcpy(exp, pc->proxy_path, pc->proxy_path_len);
        memcpy(exp + pc->proxy_path_len, ex->uri + strip, rest);
        path = exp;
        path_len = pc->proxy_path_len + rest;
    }
    size_t room = GH_BUF_SIZE - (ex->args != NULL ? ex->args_len + 1 : 0);
    size_t n = gh_uri_encode_path(path, path_len, tgt, room);
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
