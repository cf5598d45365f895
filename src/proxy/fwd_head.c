/*
 * fwd_head.c - request heads for the origin, response heads for the client.
 */
#include "proxy/fwd_head.h"

#include <strings.h>
#include <sys/socket.h>

#include "http/fields.h"
#include "http/h1_write.h"
#include "proxy/hide.h"
#include "proxy/vars.h"

/* Does a rule of rules[0..n) replace or remove the field name[0..len)? */
static int
rule_names(const struct gh_hdr_rule *rules, uint32_t n, const char *name, size_t len)
{
    for (uint32_t i = 0; i < n; i++)
        if (rules[i].op != GH_HDR_ADD && rules[i].name_len == len &&
            gh_strncaseeq(rules[i].name, name, len))
            return 1;
    return 0;
}

/* The rules' fields, their variables expanded for ex. */
static void
wr_rules(struct gh_wr *w, const struct gh_hdr_rule *rules, uint32_t n, struct gh_exchange *ex)
{
    for (uint32_t i = 0; i < n; i++) {
        const struct gh_hdr_rule *r = &rules[i];
        if (r->op == GH_HDR_REMOVE)
            continue;
        if (r->tmpl == NULL || ex == NULL) {
            gh_wr_field(w, r->name, r->name_len, r->value, r->value_len);
            continue;
        }
        gh_wr_put(w, r->name, r->name_len);
        GH_WR_LIT(w, ": ");
        gh_vars_expand(r->tmpl, ex, w, GH_ESC_NONE, NULL);
        GH_WR_LIT(w, "\r\n");
    }
}

/* RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers-10 §3, §4): the
 * policy's quota per window, and what is left of it now and when it is all back. */
static void
wr_ratelimit(struct gh_wr *w, const struct gh_exchange *ex)
{
    const struct gh_rate_limit *rl = ex->rl;
    gh_wr_field(w, "RateLimit-Policy", 16, rl->policy, rl->policy_len);
    const char *name_end = memchr(rl->policy + 1, '"', rl->policy_len - 1);
    GH_WR_LIT(w, "RateLimit: ");
    gh_wr_put(w, rl->policy, (size_t)(name_end + 1 - rl->policy));
    GH_WR_LIT(w, ";r=");
    gh_wr_u64(w, ex->rl_remaining);
    GH_WR_LIT(w, ";t=");
    gh_wr_u64(w, ex->rl_reset_s);
    GH_WR_LIT(w, "\r\n");
}

/* May field h be copied to the other side? (not named by Connection, not replaced or
 * removed by a header rule) */
static int
field_passes(const struct gh_h1_header *hs, uint32_t nh, const struct gh_h1_header *h,
             int conn_other, const struct gh_hdr_rule *rules, uint32_t n_rules)
{
    if (conn_other && gh_field_named_by_connection(hs, nh, h))
        return 0;
    return n_rules == 0 || !rule_names(rules, n_rules, h->name, h->name_len);
}

/* Values of a list field (X-Forwarded-For, Forwarded, Via) that the proxy
 * appends to: collected while copying fields, written back as one field. */
struct prior {
    const struct gh_h1_header *h[16];
    uint32_t n;
};

static inline void
prior_add(struct prior *pl, const struct gh_h1_header *h)
{
    if (pl->n < GH_ARRAY_LEN(pl->h))
        pl->h[pl->n++] = h;
}

/* "Name: prior1, prior2, " - the caller writes its own member and the CRLF. */
static void
wr_prior(struct gh_wr *w, const char *name, size_t nlen, const struct prior *pl)
{
    gh_wr_put(w, name, nlen);
    GH_WR_LIT(w, ": ");
    for (uint32_t i = 0; i < pl->n; i++) {
        gh_wr_put(w, pl->h[i]->value, pl->h[i]->value_len);
        GH_WR_LIT(w, ", ");
    }
}

/* `Via`: what came, then this hop (RFC 9110 §7.6.3), in the protocol version it was received in. */
static inline void
wr_via(struct gh_wr *w, const struct prior *pl, int v10)
{
    wr_prior(w, "Via", 3, pl);
    gh_wr_str(w, v10 ? "1.0 gatehouse\r\n" : "1.1 gatehouse\r\n");
}

/* The forwarding fields: X-Forwarded-* and/or Forwarded (RFC 7239). */
static void
wr_forwarded(struct gh_wr *w, const struct gh_exchange *ex, const struct prior *p_xff,
             const struct prior *p_fwd, const char *orig_host, size_t orig_host_len, int xff,
             int fwd)
{
    char ip[64];
    /* the address this hop received the request from: the connection's, also when
     * real_ip_from took the client's from the header (the chain stays true) */
    size_t iplen = gh_client_ip_str(ex->peer, ip, sizeof(ip));
    if (xff) {
        wr_prior(w, "X-Forwarded-For", 15, p_xff);
        gh_wr_put(w, ip, iplen);
        if (ex->flags & GH_EX_TLS)
            GH_WR_LIT(w, "\r\nX-Forwarded-Proto: https\r\n");
        else
            GH_WR_LIT(w, "\r\nX-Forwarded-Proto: http\r\n");
        if (orig_host != NULL)
            gh_wr_field(w, "X-Forwarded-Host", 16, orig_host, orig_host_len);
    }
    if (fwd) {
        wr_prior(w, "Forwarded", 9, p_fwd);
        GH_WR_LIT(w, "for=");
        if (ex->peer->family == AF_INET6) {
            GH_WR_LIT(w, "\"[");
            gh_wr_put(w, ip, iplen);
            GH_WR_LIT(w, "]\"");
        } else {
            gh_wr_put(w, ip, iplen);
        }
        if (ex->flags & GH_EX_TLS)
            GH_WR_LIT(w, ";proto=https");
        else
            GH_WR_LIT(w, ";proto=http");
        if (orig_host != NULL && orig_host_len > 0) {
            GH_WR_LIT(w, ";host=\"");
            gh_wr_put(w, orig_host, orig_host_len);
            GH_WR_LIT(w, "\"");
        }
        GH_WR_LIT(w, "\r\n");
    }
}

/* The client's fields that pass to the origin; the list fields the proxy appends to are
 * collected in the priors instead. */
static void
copy_req_fields(struct gh_wr *w, const struct gh_exchange *ex, const struct gh_request *req,
                int xff, int fwd, struct prior *p_xff, struct prior *p_fwd, struct prior *p_via)
{
    const struct gh_proxy_conf *pc = ex->pc;
    const struct gh_h1_header *hs = req->fields;
    uint32_t nh = req->n_fields;
    int conn_other = (req->h1flags & GH_H1_F_CONN_OTHER) != 0;
    int upgrade = (ex->flags & GH_EX_UPGRADE) != 0;
    for (uint32_t i = 0; i < nh; i++) {
        const struct gh_h1_header *h = &hs[i];
        if (gh_field_req_dropped(h->id))
            continue;
        switch (h->id) {
        case GH_HDR_UPGRADE:
            if (!upgrade)
                continue;
            /* Connection names it ("Upgrade, HTTP2-Settings"): hop-by-hop, but this hop
             * forwards the upgrade, so it goes on with "Connection: upgrade" */
            gh_wr_field(w, h->name, h->name_len, h->value, h->value_len);
            continue;
        case GH_HDR_X_FORWARDED_FOR:
            if (xff) {
                prior_add(p_xff, h);
                continue;
            }
            break;
        case GH_HDR_X_FORWARDED_PROTO:
        case GH_HDR_X_FORWARDED_HOST:
            if (xff)
                continue;
            break;
        case GH_HDR_FORWARDED:
            if (fwd) {
                prior_add(p_fwd, h);
                continue;
            }
            break;
        case GH_HDR_VIA:
            if (pc->via) {
                prior_add(p_via, h);
                continue;
            }
            break;
        default:
            break;
        }
        if (field_passes(hs, nh, h, conn_other, pc->req_rules, pc->n_req_rules))
            gh_wr_field(w, h->name, h->name_len, h->value, h->value_len);
    }
}

size_t
gh_fwd_req_head(char *out, size_t cap, struct gh_exchange *ex, const struct gh_request *req)
{
    const char *host = req->host, *path = ex->target;
    size_t host_len = req->host_len, path_len = ex->target_len;
    const struct gh_proxy_conf *pc = ex->pc;
    struct gh_wr w = {out, 0, cap, 0};
    gh_wr_put(&w, req->method, req->method_len);
    GH_WR_LIT(&w, " ");
    if (path_len > 0 && path[0] == '?')
        GH_WR_LIT(&w, "/");
    gh_wr_put(&w, path, path_len);
    GH_WR_LIT(&w, " HTTP/1.1\r\nHost: ");
    if (pc->upstream_host != NULL)
        gh_wr_put(&w, pc->upstream_host, pc->upstream_host_len);
    else if (host != NULL)
        gh_wr_put(&w, host, host_len);
    else
        gh_wr_str(&w, gh_ups_server(&ex->up)->addr.text);
    GH_WR_LIT(&w, "\r\n");

    int xff = pc->forwarded == GH_FWD_XFF || pc->forwarded == GH_FWD_BOTH;
    int fwd = pc->forwarded == GH_FWD_RFC7239 || pc->forwarded == GH_FWD_BOTH;
    struct prior p_xff, p_fwd, p_via; /* only .n is read before being written */
    p_xff.n = p_fwd.n = p_via.n = 0;
    copy_req_fields(&w, ex, req, xff, fwd, &p_xff, &p_fwd, &p_via);

    /* the host the client asked for: the Host field, or the absolute-form authority */
    wr_forwarded(&w, ex, &p_xff, &p_fwd, host, host_len, xff, fwd);
    if (pc->via)
        wr_via(&w, &p_via, req->version == 10);
    wr_rules(&w, pc->req_rules, pc->n_req_rules, ex);
    if (req->body == GH_H1_BODY_LENGTH)
        gh_h1w_content_length(&w, req->content_length);
    else if (req->body == GH_H1_BODY_CHUNKED)
        GH_WR_LIT(&w, "Transfer-Encoding: chunked\r\n");
    if (ex->flags & GH_EX_UPGRADE)
        GH_WR_LIT(&w, "Connection: upgrade\r\n");
    GH_WR_LIT(&w, "\r\n");
    return w.overflow ? 0 : w.len;
}

/* `sticky cookie NAME`: Set-Cookie naming the server that answered, unless the request's cookie
 * already named it. */
static void
wr_sticky(struct gh_wr *w, const struct gh_exchange *ex)
{
    const struct gh_upstream_conf *ups = ex->up.ups;
    if (ex->up.direct_srv != NULL || ex->up.server >= ups->n_servers ||
        ex->up.sticky == ex->up.server + 1)
        return;
    const struct gh_sticky *st = ups->sticky;
    GH_WR_LIT(w, "Set-Cookie: ");
    gh_wr_put(w, st->name, st->name_len);
    GH_WR_LIT(w, "=");
    gh_wr_put(w, ups->servers[ex->up.server].sticky_id, 16);
    gh_wr_put(w, st->attrs, st->attrs_len);
    GH_WR_LIT(w, "\r\n");
}

size_t
gh_fwd_resp_head(char *out, size_t cap, const struct gh_resp *resp, const struct gh_proxy_conf *pc,
                 struct gh_exchange *ex, int64_t wall, bool te_chunked, enum gh_fwd_conn conn)
{
    struct gh_wr w = {out, 0, cap, 0};
    gh_h1w_status_line(&w, resp->status, resp->reason, resp->reason_len);
    const struct gh_h1_header *hs = resp->fields;
    uint32_t nh = resp->n_fields;
    int own = (resp->flags & GH_RESP_OWN_FIELDS) != 0;
    int conn_other = !own && (resp->h1flags & GH_H1_F_CONN_OTHER);
    int via = pc != NULL && pc->via && resp->version != 0;
    const struct gh_hdr_rule *rules = pc != NULL ? pc->resp_rules : NULL;
    uint32_t n_rules = pc != NULL ? pc->n_resp_rules : 0;
    int has_date = 0;
    bool origin_hidden = false; /* the origin's Server was dropped: ours goes in its place */
    struct prior p_via;
    p_via.n = 0;
    /* HSTS only over TLS (RFC 6797 7.2); ours replaces the origin's */
    const char *hsts = ex != NULL && (ex->flags & GH_EX_TLS) && ex->srv ? ex->srv->hsts : NULL;
    for (uint32_t i = 0; i < nh; i++) {
        const struct gh_h1_header *h = &hs[i];
        if (gh_unlikely(hsts != NULL) && h->name_len == 25 &&
            strncasecmp(h->name, "Strict-Transport-Security", 25) == 0)
            continue;
        if (!own) {
            if (gh_field_resp_dropped(h->id))
                continue;
            if (h->id == GH_HDR_UPGRADE) {
                if (conn == GH_FWD_CONN_UPGRADE) /* passes though Connection names it */
                    gh_wr_field(&w, h->name, h->name_len, h->value, h->value_len);
                continue;
            }
            if (h->id == GH_HDR_VIA && via) {
                prior_add(&p_via, h);
                continue;
            }
            if (pc != NULL && gh_hide_candidate(pc, h->name_len)) {
                if (gh_hide_field(pc, ex, h)) {
                    origin_hidden |= h->id == GH_HDR_SERVER;
                    continue;
                }
                if (gh_hide_redirect(&w, ex, h))
                    continue;
            }
        }
        if (h->id == GH_HDR_DATE)
            has_date = 1;
        if (field_passes(hs, nh, h, conn_other, rules, n_rules))
            gh_wr_field(&w, h->name, h->name_len, h->value, h->value_len);
    }
    if (!has_date)
        gh_h1w_date(&w, wall);
    if (origin_hidden && gh_hide_server_tokens(pc) && !rule_names(rules, n_rules, "Server", 6))
        GH_WR_LIT(&w, "Server: gatehouse\r\n");
    if (resp->extra != NULL)
        gh_wr_put(&w, resp->extra, resp->extra_len);
    if (via)
        wr_via(&w, &p_via, resp->version == 10);
    wr_rules(&w, rules, n_rules, ex);
    if (ex != NULL && ex->rl != NULL)
        wr_ratelimit(&w, ex);
    if (hsts != NULL)
        gh_wr_field(&w, "Strict-Transport-Security", 25, hsts, ex->srv->hsts_len);
    if (gh_unlikely(!own && ex != NULL && ex->up.ups != NULL && ex->up.ups->sticky != NULL))
        wr_sticky(&w, ex);
    if (conn == GH_FWD_CONN_UPGRADE) {
        GH_WR_LIT(&w, "Connection: upgrade\r\n");
    } else {
        if (resp->content_length >= 0)
            gh_h1w_content_length(&w, (uint64_t)resp->content_length);
        else if (te_chunked)
            GH_WR_LIT(&w, "Transfer-Encoding: chunked\r\n");
        if (conn == GH_FWD_CONN_CLOSE)
            GH_WR_LIT(&w, "Connection: close\r\n");
        else if (conn == GH_FWD_CONN_KEEPALIVE)
            GH_WR_LIT(&w, "Connection: keep-alive\r\n");
    }
    GH_WR_LIT(&w, "\r\n");
    return w.overflow ? 0 : w.len;
}

size_t
gh_fwd_interim_head(char *out, size_t cap, const struct gh_resp *resp)
{
    struct gh_wr w = {out, 0, cap, 0};
    gh_h1w_status_line(&w, resp->status, resp->reason, resp->reason_len);
    int conn_other = (resp->h1flags & GH_H1_F_CONN_OTHER) != 0;
    for (uint32_t i = 0; i < resp->n_fields; i++) {
        const struct gh_h1_header *h = &resp->fields[i];
        if (gh_field_resp_dropped(h->id) || h->id == GH_HDR_UPGRADE)
            continue;
        if (field_passes(resp->fields, resp->n_fields, h, conn_other, NULL, 0))
            gh_wr_field(&w, h->name, h->name_len, h->value, h->value_len);
    }
    GH_WR_LIT(&w, "\r\n");
    return w.overflow ? 0 : w.len;
}
