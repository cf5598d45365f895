/*
 * forward.h - the forward proxy: a request to a `forward_proxy` block goes to
 * the destination it names. CONNECT host:port resolves the name (net/dns.h),
 * refuses ports outside `connect_ports` and private addresses (checked on the
 * address actually connected to, so DNS rebinding cannot get past it),
 * connects, answers 200 and becomes a two-way tunnel (tunnel.c).
 */
#ifndef GH_PROXY_FORWARD_H
#define GH_PROXY_FORWARD_H

#include "proxy/exchange.h"

/* The routed-phase hook: GH_OK (not a forward proxy's request), GH_DECLINED (taken), or a
 * status. */
int gh_forward_routed(struct gh_exchange *ex, const struct gh_request *req);

/* The exchange ends: let go of its destination (the name lookup, the peer). */
void gh_forward_release(struct gh_exchange *ex);

/* Release a worker's resolvers (at its exit). */
void gh_forward_worker_free(struct gh_worker *w);

#endif
