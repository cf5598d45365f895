/*
 * fwd_head.h - the heads the proxy writes as HTTP/1.1: the request head for
 * the origin (hop-by-hop fields dropped, X-Forwarded-* / Forwarded / Via
 * added, request_header rules applied, framing re-declared) and the response
 * head for the client (the same in the other direction).
 *
 * Heads are built into a caller-owned buffer (the worker's head scratch):
 * each function returns the length, or 0 when the head does not fit.
 */
#ifndef GH_PROXY_FWD_HEAD_H
#define GH_PROXY_FWD_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/exchange.h"

/*
 * The request head for the origin of ex: req's method, ex->target (with a
 * "/" in front when it starts with '?'), Host (upstream_host, else the
 * client's host, else the server's address), the client's fields that may
 * pass, the forwarding fields, the rules (their variables expanded), and the
 * framing of the body.
 */
size_t gh_fwd_req_head(char *out, size_t cap, struct gh_exchange *ex, const struct gh_request *req);

/* What a response head says about the connection. */
enum gh_fwd_conn {
    GH_FWD_CONN_NONE = 0,  /* HTTP/1.1, kept: nothing to say */
    GH_FWD_CONN_CLOSE,     /* closed after this response */
    GH_FWD_CONN_KEEPALIVE, /* HTTP/1.0 client, kept: it must be told (RFC 9112 §9.3, C.2.2) */
    GH_FWD_CONN_UPGRADE,   /* a 101 switching protocols */
};

/*
 * The response head for the client: the status line, resp's fields (received
 * ones without hop-by-hop and framing fields, and without those named by a
 * response_header rule of pc), Date when missing, Via when pc asks, pc's
 * rules (their variables expanded for ex), the framing (Content-Length when
 * resp declares one, else "Transfer-Encoding: chunked" when te_chunked), and
 * conn. pc may be NULL (no rules, no Via; then ex may be NULL too).
 */
size_t gh_fwd_resp_head(char *out, size_t cap, const struct gh_resp *resp,
                        const struct gh_proxy_conf *pc, struct gh_exchange *ex, int64_t wall,
                        bool te_chunked, enum gh_fwd_conn conn);

/* An interim (1xx) head: the status line and the fields that may pass; nothing added. */
size_t gh_fwd_interim_head(char *out, size_t cap, const struct gh_resp *resp);

#endif
