/*
 * phase.c - the phase tables and their hooks. A hook that belongs to a
 * feature lives with it; the small ones that are the reverse proxy's own
 * rules are here.
 */
#include "proxy/phase.h"

#include <stdio.h>
#include <string.h>

#include "proxy/accesslog.h"
#include "proxy/respond.h"

typedef int (*accept_hook)(struct gh_worker *w, const struct gh_client_addr *client,
                           const struct gh_listen_conf *lc);
typedef int (*request_hook)(struct gh_exchange *ex, const struct gh_request *req);
typedef int (*resp_hook)(struct gh_exchange *ex, const struct gh_resp *resp);
typedef void (*done_hook)(struct gh_exchange *ex);

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

/* `redirect_to_https`: a request that came without TLS goes to the same URL with https (the
 * target as received, path and query). 301 keeps GET and HEAD; 308 keeps any method and body. */
static int
redirect_https(struct gh_exchange *ex, const struct gh_request *req)
{
    const struct gh_server_conf *s = ex->srv;
    if (gh_likely(s == NULL || s->redirect_https == 0) || (ex->flags & GH_EX_TLS))
        return GH_OK;
    int st = s->redirect_https;
    if (st == 1)
        st = req->method_id == GH_METHOD_GET || req->method_id == GH_METHOD_HEAD ? 301 : 308;
    const char *h = req->host;
    size_t hl = req->host_len;
    if (h == NULL || hl == 0) { /* HTTP/1.0 without Host: the server's first name */
        h = s->n_names > 0 && s->names[0][0] != '*' ? s->names[0] : "localhost";
        hl = strlen(h);
    }
    size_t end = 0; /* the host without its port */
    if (h[0] == '[') {
        while (end < hl && h[end] != ']')
            end++;
        end += end < hl;
    } else {
        while (end < hl && h[end] != ':')
            end++;
    }
    char url[16384];
    int n = snprintf(url, sizeof(url), "https://%.*s", (int)end, h);
    if (s->redirect_https_port != 0)
        n += snprintf(url + n, sizeof(url) - (size_t)n, ":%u", s->redirect_https_port);
    if ((size_t)n + req->path_len > sizeof(url)) {
        ex->fail_reason = "the URL to redirect to HTTPS is too long";
        return 414;
    }
    memcpy(url + n, req->path, req->path_len);
    int rc = gh_respond_copy(ex, st, url, (size_t)n + req->path_len, true);
    return rc == GH_OK ? GH_DECLINED : rc;
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

static const accept_hook accept_hooks[] = {NULL};
static const request_hook routed_hooks[] = {redirect_https, refuse_connect, body_limit};
static const request_hook pre_origin_hooks[] = {answer_here};
static const resp_hook resp_head_hooks[] = {NULL};
static const done_hook done_hooks[] = {gh_alog_exchange};

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
gh_phase_resp_head(struct gh_exchange *ex, const struct gh_resp *resp)
{
    for (size_t i = 0; i < GH_ARRAY_LEN(resp_head_hooks) && resp_head_hooks[i] != NULL; i++) {
        int rc = resp_head_hooks[i](ex, resp);
        if (rc != GH_OK)
            return rc;
    }
    return GH_OK;
}

void
gh_phase_done(struct gh_exchange *ex)
{
    for (size_t i = 0; i < GH_ARRAY_LEN(done_hooks); i++)
        done_hooks[i](ex);
}
