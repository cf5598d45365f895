/*
 * access.h - who may reach the origins: the client's real address (`real_ip_from`,
 * `real_ip_header`), `allow` / `deny` rules, requests in progress per client address
 * (`limit_conn`) and client connections open at once (`max_connections`). The hooks go in
 * phase.c's tables; gh_access_real_ip runs as soon as the server is known.
 */
#ifndef GH_PROXY_ACCESS_H
#define GH_PROXY_ACCESS_H

#include "proxy/exchange.h"

/* The server (ex->srv) is known: when the connection comes from one of its real_ip_from
 * proxies and its real_ip_header gives a valid address, ex->client becomes that address
 * (kept in ex->real_addr). Else nothing changes. */
void gh_access_real_ip(struct gh_exchange *ex, const struct gh_request *req);

/* Routed phase: the route's allow/deny rules (the first that matches ex->client decides: GH_OK,
 * or the deny's status with ex->fail_reason naming the rule), then limit_conn (503 when the
 * address has that many requests in progress; else counted until gh_access_done). */
int gh_access_routed(struct gh_exchange *ex, const struct gh_request *req);

/* Done phase: give back what gh_access_routed counted. */
void gh_access_done(struct gh_exchange *ex);

/* Accept phase: max_connections. GH_OK counts the connection (gh_access_closed gives it
 * back); -EBUSY refuses it (counted, and logged at most once a second). */
int gh_access_accept(struct gh_worker *w, const struct gh_client_addr *client,
                     const struct gh_listen_conf *lc);

/* A connection gh_access_accept counted is closed. */
void gh_access_closed(struct gh_worker *w, const struct gh_client_addr *client);

/* Client connections open now, across threads, and refused by max_connections since start. */
uint64_t gh_access_open_connections(void);
uint64_t gh_access_refused_connections(void);

#endif
