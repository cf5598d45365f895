/*
 * phase.h - the named points of an exchange where policies hook in without
 * touching the protocol code. Each phase runs its hooks in order (a table in
 * phase.c: a feature adds one line there); the first hook that decides ends
 * the phase.
 *
 *   accept       a connection was accepted, before anything is read from it:
 *                address gates, connection limits. GH_OK lets it in, any
 *                other value closes it. A connection let in runs the
 *                conn_closed hooks when it closes (what they counted goes back).
 *   routed       the request has its server and route: access rules, rate
 *                limits, authentication, request limits.
 *   pre_origin   before the origin is chosen: answers that need no origin
 *                (`return`, the cache's lookup; later the admin API).
 *   resp_head    a response head from the origin, before it is forwarded:
 *                the cache's store decision, response rules.
 *   resp_end     the response's last bytes are about to be written (not for a
 *                tunnel): what counts requests in progress lets go, before the
 *                client can send its next request.
 *   done         the exchange ends: the access log, metrics.
 *
 * routed and pre_origin hooks return GH_OK (go on), GH_DECLINED (the hook
 * answered the exchange itself: the phase and the start end there), or an
 * HTTP status 400..599 to answer with the standard page (setting
 * ex->fail_reason for the log first).
 */
#ifndef GH_PROXY_PHASE_H
#define GH_PROXY_PHASE_H

#include "proxy/exchange.h"

int gh_phase_accept(struct gh_worker *w, const struct gh_client_addr *client,
                    const struct gh_listen_conf *lc);
void gh_phase_conn_closed(struct gh_worker *w, const struct gh_client_addr *client);
int gh_phase_routed(struct gh_exchange *ex, const struct gh_request *req);
int gh_phase_pre_origin(struct gh_exchange *ex, const struct gh_request *req);
/* GH_OK, or a status to answer with instead (the response is not forwarded). A hook may add
 * resp->extra lines. */
int gh_phase_resp_head(struct gh_exchange *ex, struct gh_resp *resp);
void gh_phase_resp_end(struct gh_exchange *ex);
void gh_phase_done(struct gh_exchange *ex);

#endif
