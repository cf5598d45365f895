/*
 * https.h - what the HTTP side does about TLS: requests that came without it are redirected
 * (`redirect_to_https`), and a request whose Host names a server that requires client
 * certificates is refused on a connection made for another server (SNI).
 */
#ifndef GH_PROXY_HTTPS_H
#define GH_PROXY_HTTPS_H

#include "proxy/exchange.h"

/* The routed-phase hook: GH_OK, GH_DECLINED (answered with a redirect), or a status. */
int gh_https_routed(struct gh_exchange *ex, const struct gh_request *req);

#endif
