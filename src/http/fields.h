/*
 * fields.h - field rules of RFC 9110 that any proxy side applies, whatever
 * the protocol: which fields are hop-by-hop and never forwarded as received.
 */
#ifndef GH_HTTP_FIELDS_H
#define GH_HTTP_FIELDS_H

#include <stdint.h>

#include "http/h1.h"

/*
 * Is h named by a Connection field of the message hs[0..n) (hop-by-hop by
 * declaration, RFC 9110 §7.6.1)? Returns 1 or 0. Only worth asking when the
 * parser set GH_H1_F_CONN_OTHER.
 */
int gh_field_named_by_connection(const struct gh_h1_header *hs, uint32_t n,
                                 const struct gh_h1_header *h);

/*
 * Response fields never forwarded as received: the hop-by-hop ones and the
 * framing, which the proxy writes itself (whether Upgrade passes is the
 * caller's decision: only with a 101).
 */
static inline int
gh_field_resp_dropped(uint32_t id)
{
    switch (id) {
    case GH_HDR_CONNECTION:
    case GH_HDR_KEEP_ALIVE:
    case GH_HDR_PROXY_CONNECTION:
    case GH_HDR_TE:
    case GH_HDR_TRAILER:
    case GH_HDR_TRANSFER_ENCODING:
    case GH_HDR_CONTENT_LENGTH:
        return 1;
    default:
        return 0;
    }
}

/*
 * Request fields never forwarded as received: hop-by-hop ones, the framing,
 * Host (the proxy writes it first), Proxy-Authorization (meant for this hop)
 * and Expect (the proxy answers 100-continue itself). Upgrade is the caller's
 * decision.
 */
static inline int
gh_field_req_dropped(uint32_t id)
{
    switch (id) {
    case GH_HDR_HOST:
    case GH_HDR_CONTENT_LENGTH:
    case GH_HDR_TRANSFER_ENCODING:
    case GH_HDR_CONNECTION:
    case GH_HDR_KEEP_ALIVE:
    case GH_HDR_PROXY_CONNECTION:
    case GH_HDR_PROXY_AUTHORIZATION:
    case GH_HDR_TE:
    case GH_HDR_TRAILER:
    case GH_HDR_EXPECT:
        return 1;
    default:
        return 0;
    }
}

#endif
