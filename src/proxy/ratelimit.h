/*
 * ratelimit.h - `rate_limit` in the routed phase: each of the route's limits checks the
 * request's key in its zone (policy/ratelimit.h); a refusal answers 429 (or the limit's
 * status) with Retry-After and the RateLimit-Policy / RateLimit fields.
 */
#ifndef GH_PROXY_RATELIMIT_H
#define GH_PROXY_RATELIMIT_H

#include "proxy/exchange.h"

/* Routed phase: GH_OK (every limit passed; with rate_limit_headers on, ex->rl is the one with
 * the fewest requests left), or GH_DECLINED after answering the refusal. */
int gh_ratelimit_routed(struct gh_exchange *ex, const struct gh_request *req);

#endif
