/*
 * https.c - the routed-phase rules that depend on TLS (see https.h).
 */
#include "proxy/https.h"

#include <stdio.h>
#include <string.h>

#include "net/tls.h"

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

/*
 * A connection's client certificate was checked (or not asked for) by the server its SNI chose.
 * A request whose Host names another server that requires client certificates is refused with
 * 421 (RFC 9110 15.5.20), as nginx does: else a client could get past that server's
 * certificate rule by naming another server in SNI.
 */
static int
misdirected(struct gh_exchange *ex)
{
    const struct gh_server_conf *s = ex->srv;
    if (s == NULL || !s->tls_verify_client || gh_tls_ctx_of(ex->cx) == s->tls_ctx)
        return GH_OK;
    ex->fail_reason = "the TLS connection was made for another server (SNI) and this one requires "
                      "client certificates";
    return 421;
}

int
gh_https_routed(struct gh_exchange *ex, const struct gh_request *req)
{
    if (ex->flags & GH_EX_TLS)
        return misdirected(ex);
    return redirect_https(ex, req);
}
