/*
 * phase.c - the phase tables and their hooks. A hook that belongs to a
 * feature lives with it; the small ones that are the reverse proxy's own
 * rules are here.
 */
#include "proxy/phase.h"

#include "proxy/access.h"
#include "proxy/accesslog.h"
#include "proxy/cache.h"
#include "proxy/forward.h"
#include "proxy/https.h"
#include "proxy/ratelimit.h"

typedef int (*accept_hook)(struct gh_worker *w, const struct gh_client_addr *client,
                           const struct gh_listen_conf *lc);
typedef int (*request_hook)(struct gh_exchange *ex, const struct gh_request *req);
typedef int (*resp_hook)(struct gh_exchange *ex, struct gh_resp *resp);
typedef void (*done_hook)(struct gh_exchange *ex);
typedef void (*closed_hook)(struct gh_worker *w, const struct gh_client_addr *client);

/* ---- routed: what a reverse proxy refuses outright ---- */

static int
refuse_connect(struct gh_exchange *ex, const struct gh_request *req)
{
    if (req->target_form != GH_TARGET_AUTHORITY && req->method_id != GH_METHOD_CONNECT)
        return GH_OK;
    ex->fail_reason = "CONNECT is not served by a reverse proxy";
    return 405;
}

static int
body_limit(struct gh_exchange *ex, const struct gh_request *req)
{
    uint64_t max = ex->pc->client_max_body_size;
    if (max == 0 || req->body != GH_H1_BODY_LENGTH || req->content_length <= max)
        return GH_OK;
    ex->fail_reason = "request body larger than client_max_body_size";
    return 413;
}

/* ---- pre_origin: `return`, and routes that lead nowhere ---- */

static int
answer_here(struct gh_exchange *ex, const struct gh_request *req)
{
    const struct gh_proxy_conf *pc = ex->pc;
    (void)req;
    if (pc->return_status == 0 && pc->upstream != NULL)
        return GH_OK;
    int st = pc->return_status ? (int)pc->return_status : 404;
    bool redirect = st == 301 || st == 302 || st == 303 || st == 307 || st == 308;
    if (pc->return_tmpl != NULL) { /* variables: expanded now, while the request is here */
        int rc = gh_respond_tmpl(ex, st, pc->return_tmpl, redirect);
        return rc == GH_OK ? GH_DECLINED : rc;
    }
    struct gh_gen g = {0};
    if (pc->return_status != 0 && pc->return_body != NULL) {
        g.body = pc->return_body;
        g.body_len = pc->return_body_len;
    } else if (st < 400) {
        g.body = ""; /* `return 200;` answers with an empty body, not a page */
    }
    if (redirect) {
        /* as in nginx, `return 30x URL` redirects: the text is the Location */
        g.location = g.body;
        g.location_len = g.body_len;
        g.body = NULL;
        g.body_len = 0;
    }
    gh_respond(ex, st, &g);
    return GH_DECLINED;
}

/* A hook that counts must come last: when one after it refuses, the count is not given back. */
static const accept_hook accept_hooks[] = {gh_access_accept};
static const closed_hook closed_hooks[] = {gh_access_closed};
/* access rules first: a denied client gets no redirect, no 405, no 413 */
static const request_hook routed_hooks[] = {gh_access_routed,  gh_ratelimit_routed, gh_https_routed,
                                            gh_forward_routed, refuse_connect,      body_limit};
static const request_hook pre_origin_hooks[] = {gh_cache_admin, answer_here, gh_cache_pre_origin};
static const resp_hook resp_head_hooks[] = {gh_cache_resp_head};
/* limit_conn gives its count back before the client can see the response end (again at done:
 * the count is given back once) */
static const done_hook resp_end_hooks[] = {gh_access_done};
static const done_hook done_hooks[] = {gh_alog_exchange, gh_access_done, gh_cache_done};

int
gh_phase_accept(struct gh_worker *w, const struct gh_client_addr *client,
                const struct gh_listen_conf *lc)
{
    for (size_t i = 0; i < GH_ARRAY_LEN(accept_hooks) && accept_hooks[i] != NULL; i++) {
        int rc = accept_hooks[i](w, client, lc);
        if (rc != GH_OK)
            return rc;
    }
    return GH_OK;
}

void
gh_phase_conn_closed(struct gh_worker *w, const struct gh_client_addr *client)
{
    for (size_t i = 0; i < GH_ARRAY_LEN(closed_hooks); i++)
        closed_hooks[i](w, client);
}

static int
run_request(const request_hook *hooks, size_t n, struct gh_exchange *ex,
            const struct gh_request *req)
{
    for (size_t i = 0; i < n && hooks[i] != NULL; i++) {
        int rc = hooks[i](ex, req);
        if (rc != GH_OK)
            return rc;
    }
    return GH_OK;
}

int
gh_phase_routed(struct gh_exchange *ex, const struct gh_request *req)
{
    return run_request(routed_hooks, GH_ARRAY_LEN(routed_hooks), ex, req);
}

int
gh_phase_pre_origin(struct gh_exchange *ex, const struct gh_request *req)
{
    return run_request(pre_origin_hooks, GH_ARRAY_LEN(pre_origin_hooks), ex, req);
}

int
gh_phase_resp_head(struct gh_exchange *ex, struct gh_resp *resp)
{
    for (size_t i = 0; i < GH_ARRAY_LEN(resp_head_hooks) && resp_head_hooks[i] != NULL; i++) {
        int rc = resp_head_hooks[i](ex, resp);
        if (rc != GH_OK)
            return rc;
    }
    return GH_OK;
}

void
gh_phase_resp_end(struct gh_exchange *ex)
{
    if (ex->status == 101 || (ex->flags & GH_EX_CONNECT)) /* a tunnel counts while it lasts */
        return;
    for (size_t i = 0; i < GH_ARRAY_LEN(resp_end_hooks); i++)
        resp_end_hooks[i](ex);
}

void
gh_phase_done(struct gh_exchange *ex)
{
    for (size_t i = 0; i < GH_ARRAY_LEN(done_hooks); i++)
        done_hooks[i](ex);
}
