/*
 * access.c - the client's real address, allow/deny, limit_conn and max_connections (see
 * access.h). The matching itself is policy/: prefix sets (cidr.c), forwarded-address
 * parsing (realip.c), the shared per-address counts (connlimit.c).
 */
#include "proxy/access.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "net/tls.h"
#include "policy/cidr.h"
#include "policy/connlimit.h"
#include "policy/realip.h"
#include "policy/rules.h"
#include "proxy/worker.h"

/* ---- the real client address ---- */

static void
set_real(struct gh_exchange *ex, const struct gh_realip_addr *a)
{
    ex->real_addr.family = a->family;
    ex->real_addr.port = a->port;
    memcpy(ex->real_addr.ip, a->ip, 16);
    ex->client = &ex->real_addr;
}

void
gh_access_real_ip(struct gh_exchange *ex, const struct gh_request *req)
{
    const struct gh_server_conf *s = ex->srv;
    if (gh_likely(s->real_ip_from == NULL) ||
        gh_cidr_set_find(s->real_ip_from, ex->peer->family, ex->peer->ip) == GH_CIDR_NONE)
        return;
    const char *name = s->real_ip_header;
    uint32_t nlen = s->real_ip_header_len;
    struct gh_realip_addr a = {ex->peer->family, ex->peer->port, {0}};
    memcpy(a.ip, ex->peer->ip, 16);
    bool found = false;
    if (s->real_ip_list) {
        /* every X-Forwarded-For field, the last one first */
        for (uint32_t i = req->n_fields; i-- > 0;) {
            const struct gh_h1_header *f = &req->fields[i];
            if (f->name_len != nlen || !gh_strncaseeq(f->name, name, nlen))
                continue;
            found = true;
            if (gh_realip_walk_list(s->real_ip_from, f->value, f->value_len, &a) == GH_REALIP_DONE)
                break;
        }
    } else {
        for (uint32_t i = 0; i < req->n_fields; i++) {
            const struct gh_h1_header *f = &req->fields[i];
            if (f->name_len == nlen && gh_strncaseeq(f->name, name, nlen)) {
                found = gh_realip_parse_one(f->value, f->value_len, &a) == 0;
                break;
            }
        }
    }
    if (found && (a.family != ex->peer->family || memcmp(a.ip, ex->peer->ip, 16) != 0 ||
                  a.port != ex->peer->port))
        set_real(ex, &a);
}

/* ---- allow / deny, limit_conn ---- */

/* The address as counted: a mapped IPv6 address is its IPv4 address. */
static void
count_key(const struct gh_client_addr *c, uint8_t *family, uint8_t ip[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(ip, 0, 16);
    if (c->family == AF_INET6 && memcmp(c->ip, mapped, 12) == 0) {
        *family = AF_INET;
        memcpy(ip, c->ip + 12, 4);
    } else {
        *family = c->family;
        memcpy(ip, c->ip, c->family == AF_INET ? 4 : 16);
    }
}

/* The request's facts for rule conditions. */
static void
rule_facts(const struct gh_exchange *ex, const struct gh_request *req, bool tls,
           struct gh_rule_req *r)
{
    *r = (struct gh_rule_req){.family = ex->client->family,
                              .ip = ex->client->ip,
                              .method = req->method,
                              .method_len = req->method_len,
                              .host = req->host,
                              .host_len = req->host_len,
                              .path = ex->uri,
                              .path_len = ex->uri_len,
                              .query = ex->args,
                              .query_len = ex->args_len,
                              .fields = req->fields,
                              .n_fields = req->n_fields};
    if (tls && (ex->flags & GH_EX_TLS)) {
        r->sni = gh_tls_server_name(ex->cx);
        r->cert = gh_tls_client_dn(ex->cx);
    }
}

/* What the rule that matched does: GH_OK (allow), a status (deny), or GH_DECLINED after
 * answering (redirect, return). */
static int
apply_rule(struct gh_exchange *ex, const struct gh_access_rule *r)
{
    switch (r->action) {
    case GH_ACC_ALLOW:
        return GH_OK;
    case GH_ACC_DENY:
        ex->fail_reason = r->at; /* "access denied by the rule at FILE:LINE" */
        return r->status;
    default:
        break;
    }
    bool location = r->action == GH_ACC_REDIRECT;
    if (r->tmpl != NULL) {
        int rc = gh_respond_tmpl(ex, r->status, r->tmpl, location);
        return rc == GH_OK ? GH_DECLINED : rc;
    }
    struct gh_gen g = {0};
    if (location) {
        g.location = r->text;
        g.location_len = r->text_len;
    } else {
        g.body = r->text != NULL ? r->text : "";
        g.body_len = r->text_len;
    }
    gh_respond(ex, r->status, &g);
    return GH_DECLINED;
}

/* The first of the block's rules that matches decides; none: GH_OK. */
static int
access_rules(struct gh_exchange *ex, const struct gh_request *req, const struct gh_access *acc)
{
    struct gh_rule_req facts; /* a few stores; TLS facts only when a condition reads them */
    rule_facts(ex, req, acc->needs_tls, &facts);
    for (uint32_t i = 0; i < acc->n_steps; i++) {
        const struct gh_access_step *s = &acc->steps[i];
        if (s->set != NULL) {
            uint32_t k = gh_cidr_set_find(s->set, ex->client->family, ex->client->ip);
            if (k != GH_CIDR_NONE)
                return apply_rule(ex, &s->rules[k]);
        } else if (gh_rule_match(s->conds, s->n_conds, &facts)) {
            return apply_rule(ex, &s->rule);
        }
    }
    return GH_OK;
}

int
gh_access_routed(struct gh_exchange *ex, const struct gh_request *req)
{
    const struct gh_proxy_conf *pc = ex->pc;
    if (pc->access != NULL) {
        int rc = access_rules(ex, req, pc->access);
        if (rc != GH_OK)
            return rc;
    }
    if (pc->limit_conn != 0) {
        uint8_t fam, ip[16];
        count_key(ex->client, &fam, ip);
        int rc = gh_connlimit_take(fam, ip, pc->limit_conn);
        if (rc == -EBUSY) {
            ex->fail_reason = "limit_conn: as many requests from this address in progress as "
                              "allowed";
            return 503;
        }
        if (rc == -ENOSPC) {
            ex->fail_reason = "limit_conn: the table of client addresses is full";
            return 503;
        }
        ex->flags |= GH_EX_CONN_COUNTED;
    }
    return GH_OK;
}

void
gh_access_done(struct gh_exchange *ex)
{
    if (!(ex->flags & GH_EX_CONN_COUNTED))
        return;
    ex->flags &= (uint16_t)~GH_EX_CONN_COUNTED;
    uint8_t fam, ip[16];
    count_key(ex->client, &fam, ip);
    gh_connlimit_put(fam, ip);
}

/* ---- max_connections ---- */

static _Atomic uint64_t open_conns;
static _Atomic uint64_t refused_total;
static _Atomic uint64_t refused_unlogged;
static _Atomic int64_t refused_logged_sec = -1;

int
gh_access_accept(struct gh_worker *w, const struct gh_client_addr *client,
                 const struct gh_listen_conf *lc)
{
    (void)client;
    (void)lc;
    uint64_t max = w->cur->cfg->max_connections;
    uint64_t n = atomic_fetch_add_explicit(&open_conns, 1, memory_order_relaxed) + 1;
    if (gh_likely(max == 0 || n <= max))
        return GH_OK;
    atomic_fetch_sub_explicit(&open_conns, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&refused_total, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&refused_unlogged, 1, memory_order_relaxed);
    int64_t sec = (int64_t)(gh_loop_now(w->loop) / 1000);
    int64_t last = atomic_load_explicit(&refused_logged_sec, memory_order_relaxed);
    if (sec != last && atomic_compare_exchange_strong(&refused_logged_sec, &last, sec)) {
        uint64_t k = atomic_exchange(&refused_unlogged, 0);
        gh_log_warn("max_connections %llu reached: %llu connection(s) refused since the last "
                    "report",
                    (unsigned long long)max, (unsigned long long)k);
    }
    return -EBUSY;
}

void
gh_access_closed(struct gh_worker *w, const struct gh_client_addr *client)
{
    (void)w;
    (void)client;
    atomic_fetch_sub_explicit(&open_conns, 1, memory_order_relaxed);
}

uint64_t
gh_access_open_connections(void)
{
    return atomic_load(&open_conns);
}

uint64_t
gh_access_refused_connections(void)
{
    return atomic_load(&refused_total);
}
