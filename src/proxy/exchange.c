/*
 * exchange.c - an exchange's course: routing and phases at the start, the
 * loop that moves the request toward its source and the response toward the
 * client, failure, and the end.
 */
#include "proxy/exchange.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "http/uri.h"
#include "net/tls.h"
#include "proxy/access.h"
#include "proxy/cache.h"
#include "proxy/forward.h"
#include "proxy/phase.h"
#include "proxy/worker.h"

static const char *const state_names[] = {
#define GH_EX_NAME(id, name) name,
    GH_EX_STATES(GH_EX_NAME)
#undef GH_EX_NAME
};

const char *
gh_exchange_state_name(enum gh_ex_state s)
{
    return (unsigned)s < GH_ARRAY_LEN(state_names) ? state_names[s] : "?";
}

/* The decimal text of each byte value: IPv4 is formatted by table, as inet_ntop
 * goes through sprintf (1,500 instructions per request on the hot path). */
static const char dec3[256][4] = {
#define D1(n)                                                                                      \
    {                                                                                              \
        '0' + (n), 0, 0, 1                                                                         \
    }
#define D2(n)                                                                                      \
    {                                                                                              \
        '0' + (n) / 10, '0' + (n) % 10, 0, 2                                                       \
    }
#define D3(n)                                                                                      \
    {                                                                                              \
        '0' + (n) / 100, '0' + (n) / 10 % 10, '0' + (n) % 10, 3                                    \
    }
#define R10(D, b)                                                                                  \
    D(b), D(b + 1), D(b + 2), D(b + 3), D(b + 4), D(b + 5), D(b + 6), D(b + 7), D(b + 8), D(b + 9)
    R10(D1, 0),   R10(D2, 10),  R10(D2, 20),  R10(D2, 30),  R10(D2, 40),  R10(D2, 50),
    R10(D2, 60),  R10(D2, 70),  R10(D2, 80),  R10(D2, 90),  R10(D3, 100), R10(D3, 110),
    R10(D3, 120), R10(D3, 130), R10(D3, 140), R10(D3, 150), R10(D3, 160), R10(D3, 170),
    R10(D3, 180), R10(D3, 190), R10(D3, 200), R10(D3, 210), R10(D3, 220), R10(D3, 230),
    R10(D3, 240), D3(250),      D3(251),      D3(252),      D3(253),      D3(254),
    D3(255),
#undef R10
#undef D3
#undef D2
#undef D1
};

size_t
gh_client_ip_str(const struct gh_client_addr *a, char *out, size_t cap)
{
    if (a->family == AF_INET && cap >= 16) {
        char *p = out;
        for (int i = 0; i < 4; i++) {
            const char *d = dec3[a->ip[i]];
            memcpy(p, d, 4); /* the 4th byte is overwritten next */
            p += d[3];
            *p++ = '.';
        }
        p[-1] = '\0';
        return (size_t)(p - 1 - out);
    }
    if (inet_ntop(a->family, a->ip, out, (socklen_t)cap) == NULL)
        return 0;
    return strlen(out);
}

void
gh_exchange_set_state(struct gh_exchange *ex, enum gh_ex_state to)
{
#ifdef GH_SANITIZE
#define B(s) (1u << GH_EX_##s)
    static const uint8_t from[] = {
        [GH_EX_START] = B(START),
        [GH_EX_RUNNING] = B(START) | B(RUNNING),
        [GH_EX_TUNNEL] = B(RUNNING),
        [GH_EX_ENDED] = B(START) | B(RUNNING) | B(TUNNEL),
    };
#undef B
    if (!(from[to] & (1u << ex->state)))
        gh_log_error("exchange: state %s -> %s not allowed", state_names[ex->state],
                     state_names[to]);
    GH_ASSERT(from[to] & (1u << ex->state));
#endif
    ex->state = (uint8_t)to;
}

void
gh_exchange_init(struct gh_exchange *ex, const struct gh_downstream_ops *down, struct gh_worker *w,
                 const struct gh_client_addr *client, const struct gh_xprt *cx, uint64_t t_start)
{
    memset(ex, 0, offsetof(struct gh_exchange, spool));
    ex->up_wait.timer.cb = NULL;
    ex->down = down;
    ex->w = w;
    ex->wc = gh_wcfg_use(w->cur);
    ex->client = client;
    ex->peer = client;
    ex->cx = cx;
    if (gh_unlikely(cx->layer != NULL) && gh_tls_is(cx))
        ex->flags |= GH_EX_TLS;
    ex->t_start = t_start;
    ex->t_head = gh_loop_now(w->loop);
    ex->state = GH_EX_START;
}

/* Answer with status when a phase hook decided so; GH_DECLINED: it answered itself. */
static void
phase_answer(struct gh_exchange *ex, int rc)
{
    if (rc != GH_DECLINED)
        gh_exchange_fail(ex, rc, ex->fail_reason != NULL ? ex->fail_reason : "refused");
}

/*
 * Keep a copy of the request for templates used after its head is gone: one
 * block with the request, its fields, the head's bytes and $uri, every slice
 * moved into it. Without the copy (not wanted, or no memory) ex->req is NULL
 * and those variables are empty.
 */
static void
keep_request(struct gh_exchange *ex, const struct gh_request *r)
{
    ex->req = NULL;
    if (!ex->wc->cfg->keep_request || r->raw == NULL)
        return;
    size_t fields = r->n_fields * sizeof(struct gh_h1_header);
    const char *base = r->raw, *end = r->raw + r->raw_len;
    /* a query a rewrite gave lives outside the head: it is copied too */
    bool own_args = ex->args != NULL && !(ex->args >= base && ex->args < end);
    size_t need = sizeof(struct gh_request) + fields + r->raw_len + ex->uri_len +
                  (own_args ? ex->args_len : 0);
    char *blk = gh_worker_head_get(ex->w, need, &ex->kept_cap);
    if (blk == NULL)
        return;
    ex->kept = blk;
    struct gh_request *k = (struct gh_request *)(void *)blk;
    struct gh_h1_header *kf = (struct gh_h1_header *)(void *)(blk + sizeof(*k));
    char *raw = blk + sizeof(*k) + fields;
    char *uri = raw + r->raw_len;
    char *args = uri + ex->uri_len;
    memcpy(raw, r->raw, r->raw_len);
    if (ex->uri != NULL) /* NULL: the path could not be normalised (a 400) */
        memcpy(uri, ex->uri, ex->uri_len);
    if (own_args)
        memcpy(args, ex->args, ex->args_len);
#define MOVE(p) ((p) != NULL && (p) >= base && (p) < end ? raw + ((p)-base) : (p))
    *k = *r;
    k->method = MOVE(r->method);
    k->target = MOVE(r->target);
    k->host = MOVE(r->host);
    k->path = MOVE(r->path);
    k->raw = raw;
    k->fields = kf;
    for (uint32_t i = 0; i < r->n_fields; i++) {
        kf[i] = r->fields[i];
        kf[i].name = MOVE(r->fields[i].name);
        kf[i].value = MOVE(r->fields[i].value);
    }
    ex->args = own_args ? args : MOVE(ex->args);
#undef MOVE
    ex->uri = uri;
    ex->req = k;
}

/* Route r and start its source; returns with ex answered or on its way. */
static void
route(struct gh_exchange *ex, struct gh_request *r)
{
    if (r->listener == NULL) {
        ex->pc = &ex->wc->cfg->pc;
        gh_exchange_fail(ex, 503, "listener removed by reload"); /* finish politely */
        return;
    }
    /* the server by Host (or the absolute-form authority), the route by normalised path */
    ex->srv = gh_conf_find_server(r->listener, r->host, r->host_len);
    gh_access_real_ip(ex, r); /* before anything reads $remote_addr */
    const char *q = memchr(r->path, '?', r->path_len);
    size_t route_len = q ? (size_t)(q - r->path) : r->path_len;
    if (q != NULL) {
        ex->args = q + 1;
        ex->args_len = (uint32_t)(r->path_len - route_len - 1);
    }
    const char *rpath = "/"; /* RFC 9110 §4.2.3: an empty path ("http://h?q") is "/" */
    size_t rlen = 1;
    if (route_len > 0 && r->path[0] == '/' &&
        gh_uri_normalize_path(r->path, route_len, ex->w->uscratch, &rpath, &rlen) != 0) {
        ex->pc = &ex->srv->pc;
        gh_exchange_fail(ex, 400,
                         "request path cannot be normalised (bad escape or '..' above the root)");
        return;
    }
    ex->uri = rpath;
    ex->uri_len = (uint32_t)rlen;
    ex->target = r->path;
    ex->target_len = r->path_len;
    int rc = gh_rewrite_route(ex); /* sets ex->pc */
    if (rc == GH_OK)
        rc = gh_phase_routed(ex, r);
    if (rc == GH_OK)
        rc = gh_phase_pre_origin(ex, r);
    if (rc != GH_OK) {
        phase_answer(ex, rc);
        return;
    }
    gh_origin_start(ex, r);
}

void
gh_exchange_start(struct gh_exchange *ex, struct gh_request *req)
{
    ex->w->st_requests++;
    ex->method = req->method_id;
    ex->version = req->version;
    ex->listener = req->listener;
    if (req->method_id == GH_METHOD_HEAD)
        ex->flags |= GH_EX_HEAD_METHOD;
    gh_exchange_set_state(ex, GH_EX_RUNNING);
    req->path = req->target;
    req->path_len = req->target_len;
    if (req->target_form == GH_TARGET_ABSOLUTE) {
        const char *path;
        size_t host_len, path_len;
        gh_uri_split_absolute(req->target, req->target_len, &req->host, &host_len, &path,
                              &path_len);
        req->host_len = (uint32_t)host_len;
        req->path = path;
        req->path_len = (uint32_t)path_len;
    }
    ex->req = req; /* the request's slices are good until this returns */
    route(ex, req);
    keep_request(ex, req);
}

/* The response is produced and written: switch to a tunnel, or hand back to the downstream. */
static int
complete(struct gh_exchange *ex)
{
    if ((ex->status == 101 || (ex->flags & GH_EX_CONNECT)) && ex->src->tunnel_end != NULL) {
        gh_exchange_set_state(ex, GH_EX_TUNNEL);
        ex->down->tunnel(ex);
        return GH_PUMP_ENDED;
    }
    ex->down->finish(ex);
    return GH_PUMP_ENDED;
}

int
gh_exchange_advance(struct gh_exchange *ex)
{
    for (;;) {
        int progress = GH_PUMP_BLOCKED, rc;
        if (ex->src->send != NULL && !(ex->flags & GH_EX_RESP_DONE)) {
            rc = ex->src->send(ex);
            if (rc == GH_PUMP_ENDED)
                return rc;
            progress |= rc;
        }
        if (ex->flags & GH_EX_OUT_QUEUED) {
            rc = ex->down->flush(ex);
            if (rc == GH_PUMP_ENDED)
                return rc;
            progress |= rc;
        }
        if (!(ex->flags & (GH_EX_RESP_DONE | GH_EX_OUT_QUEUED))) {
            rc = ex->src->recv(ex);
            if (rc == GH_PUMP_ENDED)
                return rc;
            progress |= rc;
        }
        if ((ex->flags & (GH_EX_RESP_DONE | GH_EX_OUT_QUEUED)) == GH_EX_RESP_DONE)
            return complete(ex);
        if (progress == GH_PUMP_BLOCKED)
            return GH_PUMP_BLOCKED;
    }
}

int
gh_exchange_fail(struct gh_exchange *ex, int status, const char *reason)
{
    char ip[64];
    if (gh_client_ip_str(ex->client, ip, sizeof(ip)) == 0)
        snprintf(ip, sizeof(ip), "-");
    const char *up = ex->up.ups != NULL ? gh_ups_server(&ex->up)->addr.text : NULL;
    if (status >= 500)
        gh_log_error("client %s: %d: %s%s%s", ip, status, reason, up ? ", upstream " : "",
                     up ? up : "");
    else
        gh_log_info("client %s: %d: %s", ip, status, reason);
    if (gh_cache_on_fail(ex, status)) /* stale-if-error: a stored response answers */
        return GH_PUMP_MOVED;
    ex->fail_reason = reason;
    ex->flags |= GH_EX_FAILED;
    if (ex->src != NULL && ex->src->release != NULL)
        ex->src->release(ex);
    if (ex->flags & GH_EX_RESP_STARTED) {
        /* the client has seen part of the response: cut it (a short body or a
         * missing last chunk is the truth) */
        if (ex->status == 0)
            ex->status = (uint16_t)status;
        ex->down->abort(ex);
        return GH_PUMP_ENDED;
    }
    /* An origin failure after the whole request was read leaves the client
     * connection in a clean state: the downstream may keep it (as nginx does);
     * anything else closes. */
    struct gh_gen g = {.close = status < 500};
    gh_respond(ex, status, &g);
    return GH_PUMP_MOVED;
}

void
gh_exchange_end(struct gh_exchange *ex)
{
    if (ex->state == GH_EX_ENDED)
        return;
    gh_exchange_set_state(ex, GH_EX_ENDED);
    gh_phase_done(ex);
    if (ex->src != NULL && ex->src->release != NULL)
        ex->src->release(ex);
    gh_forward_release(ex);     /* after the source: its attempt is done with the destination */
    gh_pipe_put(ex->resp_pipe); /* a tunnel's (or a cut body's): closed if bytes are left */
    gh_pipe_put(ex->req_pipe);
    ex->resp_pipe = ex->req_pipe = NULL;
    gh_worker_head_put(ex->w, ex->kept, ex->kept_cap);
    ex->kept = NULL;
    ex->req = NULL;
    gh_buf_put(ex->gen_buf);
    ex->gen_buf = NULL;
    gh_wcfg_drop(ex->w, ex->wc);
    ex->wc = NULL;
}
