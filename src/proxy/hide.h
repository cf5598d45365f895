/*
 * hide.h - origin hiding on the way back to the client: the origin's identifying fields
 * dropped (Server, X-Powered-By, X-AspNet-Version, X-AspNetMvc-Version, Via by default on a
 * reverse proxy's routes, plus `hide_header`, less `pass_header`), Location, Content-Location
 * and Refresh that name the origin rewritten to what the client used (`proxy_redirect`), and
 * the error pages (`error_page`, `intercept_errors`).
 */
#ifndef GH_PROXY_HIDE_H
#define GH_PROXY_HIDE_H

#include "http/h1_write.h"
#include "proxy/exchange.h"

/* The lengths of the names hide.c looks at by default (Via 3, Server 6, Refresh 7, Location 8,
 * X-Powered-By 12, X-AspNet-Version and Content-Location 16, X-AspNetMvc-Version 19), one bit
 * each. */
#define GH_HIDE_LENS                                                                               \
    ((1u << 3) | (1u << 6) | (1u << 7) | (1u << 8) | (1u << 12) | (1u << 16) | (1u << 19))

/* May an origin's field with a name of len bytes be dropped or rewritten under pc? (false: it
 * passes as it is; the cheap test made for every field) */
static inline bool
gh_hide_candidate(const struct gh_proxy_conf *pc, uint32_t len)
{
    return pc->n_hide > 0 || (len < 32 && ((GH_HIDE_LENS >> len) & 1));
}

/* Is the origin's response field h dropped for ex (pc: its settings)? */
bool gh_hide_field(const struct gh_proxy_conf *pc, const struct gh_exchange *ex,
                   const struct gh_h1_header *h);

/* When h is a Location, Content-Location or Refresh field that proxy_redirect rewrites, write
 * the rewritten field to w and return true; else false (nothing written). */
bool gh_hide_redirect(struct gh_wr *w, const struct gh_exchange *ex, const struct gh_h1_header *h);

/* Does Gatehouse write its own Server field (server_tokens on) for a response with pc? */
static inline bool
gh_hide_server_tokens(const struct gh_proxy_conf *pc)
{
    return pc == NULL || !pc->server_tokens_off;
}

/* The error_page for status under pc, or NULL. */
const struct gh_error_page *gh_hide_error_page(const struct gh_proxy_conf *pc, int status);

/* Should the origin's answer with status be replaced by Gatehouse's page (intercept_errors)? */
static inline bool
gh_hide_intercepts(const struct gh_proxy_conf *pc, int status)
{
    return pc != NULL && pc->intercept_errors && status >= 400 && status <= 599;
}

#endif
