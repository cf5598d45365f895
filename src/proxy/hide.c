/*
 * hide.c - origin hiding (see hide.h).
 */
#include "proxy/hide.h"

#include <string.h>

#include "core/common.h"

static bool
in_list(const struct gh_hdr_name *l, uint32_t n, const char *name, uint32_t len)
{
    for (uint32_t i = 0; i < n; i++)
        if (l[i].len == len && gh_strncaseeq(l[i].name, name, len))
            return true;
    return false;
}

static inline bool
reverse(const struct gh_exchange *ex)
{
    return ex != NULL && ex->srv != NULL && ex->srv->forward == NULL;
}

/* Does h's name start with c (a lower-case letter) and equal lit (of the name's length)? */
static inline bool
named(const struct gh_h1_header *h, char c, const char *lit)
{
    return (h->name[0] | 0x20) == c && gh_strncaseeq(h->name, lit, h->name_len);
}

/* Server, X-Powered-By, X-AspNet-Version, X-AspNetMvc-Version, Via: the origin's identity. The
 * parser knows Server and Via by id; the others are told by length and first letter. */
static bool
hidden_by_default(const struct gh_h1_header *h)
{
    switch (h->name_len) {
    case 3:
        return h->id == GH_HDR_VIA;
    case 6:
        return h->id == GH_HDR_SERVER;
    case 12:
        return named(h, 'x', "X-Powered-By");
    case 16:
        return named(h, 'x', "X-AspNet-Version");
    case 19:
        return named(h, 'x', "X-AspNetMvc-Version");
    default:
        return false;
    }
}

bool
gh_hide_field(const struct gh_proxy_conf *pc, const struct gh_exchange *ex,
              const struct gh_h1_header *h)
{
    if (pc->n_hide > 0 && in_list(pc->hide, pc->n_hide, h->name, h->name_len))
        return true;
    if (!hidden_by_default(h) || !reverse(ex))
        return false;
    return pc->n_pass == 0 || !in_list(pc->pass, pc->n_pass, h->name, h->name_len);
}

const struct gh_error_page *
gh_hide_error_page(const struct gh_proxy_conf *pc, int status)
{
    for (uint32_t i = 0; pc != NULL && i < pc->n_error_pages; i++)
        if (pc->error_pages[i].status == status)
            return &pc->error_pages[i];
    return NULL;
}

/* ---- proxy_redirect ---- */

/* Is a[0..alen) the authority auth (case-insensitive), or auth without the scheme's default
 * port? */
static bool
same_authority(const char *a, size_t alen, const char *auth, size_t len, bool https)
{
    if (alen == len && gh_strncaseeq(a, auth, len))
        return true;
    const char *dflt = https ? ":443" : ":80";
    size_t dl = strlen(dflt);
    return len > dl && alen == len - dl && memcmp(auth + alen, dflt, dl) == 0 &&
           gh_strncaseeq(a, auth, alen);
}

/* Does authority a[0..alen) of a URL name the origin: one of the upstream's servers, or the
 * Host it was sent (upstream_host)? */
static bool
names_origin(const struct gh_exchange *ex, const char *a, size_t alen, bool https)
{
    const struct gh_upstream_conf *u = ex->up.ups;
    for (uint32_t i = 0; u != NULL && i < u->n_servers; i++) {
        const char *t = u->servers[i].addr.text;
        if (same_authority(a, alen, t, strlen(t), https))
            return true;
    }
    const struct gh_proxy_conf *pc = ex->pc;
    return pc->upstream_host != NULL &&
           same_authority(a, alen, pc->upstream_host, pc->upstream_host_len, https);
}

/* The default rewrite of the URL v[0..len) into w: "http[s]://ORIGIN/rest" becomes the
 * client's scheme://host/rest (or /rest when the client sent no Host). */
static bool
rewrite_default(struct gh_wr *w, const struct gh_exchange *ex, const char *v, size_t len)
{
    size_t sl = len >= 7 && gh_strncaseeq(v, "http://", 7)    ? 7
                : len >= 8 && gh_strncaseeq(v, "https://", 8) ? 8
                                                              : 0;
    if (sl == 0)
        return false;
    size_t e = sl;
    while (e < len && v[e] != '/' && v[e] != '?' && v[e] != '#')
        e++;
    if (!names_origin(ex, v + sl, e - sl, sl == 8))
        return false;
    if (ex->pub_host != NULL) {
        if (ex->flags & GH_EX_TLS)
            GH_WR_LIT(w, "https://");
        else
            GH_WR_LIT(w, "http://");
        gh_wr_put(w, ex->pub_host, ex->pub_host_len);
    } else if (e == len || v[e] != '/') {
        GH_WR_LIT(w, "/");
    }
    gh_wr_put(w, v + e, len - e);
    return true;
}

static bool
rewrite_url(struct gh_wr *w, const struct gh_exchange *ex, const char *v, size_t len)
{
    const struct gh_proxy_conf *pc = ex->pc;
    if (pc->proxy_redirect == GH_PREDIR_DEFAULT)
        return rewrite_default(w, ex, v, len);
    for (uint32_t i = 0; i < pc->n_redirects; i++) {
        const struct gh_redirect_map *m = &pc->redirects[i];
        if (len >= m->from_len && memcmp(v, m->from, m->from_len) == 0) {
            gh_wr_put(w, m->to, m->to_len);
            gh_wr_put(w, v + m->from_len, len - m->from_len);
            return true;
        }
    }
    return false;
}

bool
gh_hide_redirect(struct gh_wr *w, const struct gh_exchange *ex, const struct gh_h1_header *h)
{
    bool refresh = h->name_len == 7 && named(h, 'r', "Refresh");
    if (!refresh && !(h->name_len == 8 && named(h, 'l', "Location")) &&
        !(h->name_len == 16 && named(h, 'c', "Content-Location")))
        return false;
    if (ex == NULL || ex->pc == NULL || ex->pc->proxy_redirect == GH_PREDIR_OFF || !reverse(ex))
        return false;
    const char *v = h->value;
    size_t len = h->value_len, skip = 0;
    if (refresh) {
        /* "5; url=http://..." : the URL after "url=" */
        for (skip = 0; skip + 4 <= len && !gh_strncaseeq(v + skip, "url=", 4); skip++)
            ;
        if (skip + 4 > len)
            return false;
        skip += 4;
    }
    size_t mark = w->len;
    gh_wr_put(w, h->name, h->name_len);
    GH_WR_LIT(w, ": ");
    gh_wr_put(w, v, skip);
    if (!rewrite_url(w, ex, v + skip, len - skip)) {
        w->len = mark; /* as received */
        return false;
    }
    GH_WR_LIT(w, "\r\n");
    return true;
}
