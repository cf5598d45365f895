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

/* What a SOCKS5 listener (socks5.c) shares with the HTTP side: */
struct gh_dns;
struct sockaddr_storage;
/* the worker's resolver for f's settings (NULL after logging why) */
struct gh_dns *gh_forward_dns(struct gh_worker *w, const struct gh_forward_conf *f);
/* loopback, private, link-local, ... (allow_private_destinations) */
bool gh_forward_private(const struct sockaddr_storage *ss);
/* the addresses of answer a that f lets a client reach, into out (GH_DNS_MAX_ADDRS); how many */
struct gh_dns_answer;
uint32_t gh_forward_reachable(const struct gh_forward_conf *f, const struct gh_dns_answer *a,
                              struct sockaddr_storage *out);
/* failed logins per client address (per thread): count one; too many lately (10 a minute)? */
void gh_forward_login_failed(struct gh_worker *w, const struct gh_client_addr *a);
bool gh_forward_login_throttled(struct gh_worker *w, const struct gh_client_addr *a);
/* the group, domain and URL rules for a destination: GH_FWD_PASS, or what blocked it (in m:
 * the group the client is in (NULL: none), what matched, the rule's tag for f->domain_rule_at) */
struct gh_fwd_query {
    const struct gh_client_addr *client;
    const char *user;
    const char *host; /* the name, without the port */
    size_t host_len;
    const char *url; /* what block_urls match: the URL, or host:port for a tunnel */
    size_t url_len;
};
struct gh_fwd_match {
    const struct gh_fwd_group *group;
    const char *matched;
    uint32_t tag;
};
enum { GH_FWD_PASS = 0, GH_FWD_BLOCK_DOMAIN, GH_FWD_BLOCK_URL };
int gh_forward_check(const struct gh_forward_conf *f, const struct gh_fwd_query *q,
                     struct gh_fwd_match *m);

/* Release a worker's resolvers (at its exit). */
void gh_forward_worker_free(struct gh_worker *w);

#endif
