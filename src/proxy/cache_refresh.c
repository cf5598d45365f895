/*
 * cache_refresh.c - stale-while-revalidate's background refresh (RFC 5861 §3):
 * an exchange of its own, made from a copy of the request that found the
 * stale object, with a downstream that discards what it is given. It goes
 * through the same course as a client's request (routing, access rules, the
 * cache's lookup with no-cache, the conditional request to the origin, the
 * 304 or the new response stored), and frees itself when it ends.
 */
#include <stdlib.h>
#include <string.h>

#include "cache/store.h"
#include "core/log.h"
#include "proxy/cache.h"
#include "proxy/worker.h"

#define REFRESH_FIELDS 256

struct refresh {
    struct gh_exchange ex;
    struct refresh *next; /* while pending */
    struct gh_worker *w;
    const struct gh_listen_conf *listener;
    uint16_t tls; /* GH_EX_TLS of the request it copies */
    struct gh_client_addr client;
    struct gh_h1_header fields[REFRESH_FIELDS];
    uint32_t raw_len;
    char raw[];
};

static const struct gh_xprt no_xprt = {{-1, 0, NULL}, NULL};

static void
refresh_free(void *ctx, void *obj)
{
    (void)ctx;
    free(obj);
}

static void
refresh_end(struct gh_exchange *ex)
{
    gh_exchange_end(ex);
    gh_loop_defer_free(ex->w->loop, ex, refresh_free, NULL);
}

static ssize_t
down_head(struct gh_exchange *ex, const struct gh_resp *resp, bool *reframe)
{
    (void)resp;
    ex->flags |= GH_EX_RESP_STARTED;
    *reframe = false;
    return GH_BUF_SIZE;
}

static int
down_interim(struct gh_exchange *ex, const struct gh_resp *resp)
{
    return 0;
}

static int
down_body(struct gh_exchange *ex, const struct iovec *spans, int n, bool done)
{
    return 0;
}

static int
down_flush(struct gh_exchange *ex)
{
    ex->flags &= (uint16_t)~GH_EX_OUT_QUEUED;
    return GH_PUMP_MOVED;
}

static struct gh_xprt *
down_splice_to(struct gh_exchange *ex)
{
    return NULL;
}

static int
down_pump_body(struct gh_exchange *ex)
{
    return GH_PUMP_BLOCKED;
}

static int
down_local_addr(struct gh_exchange *ex, struct sockaddr_storage *ss)
{
    return -ENOTCONN;
}

static void
down_resume(struct gh_exchange *ex)
{
    gh_exchange_advance(ex); /* when it ends, finish (or abort) has freed it */
}

static const struct gh_downstream_ops refresh_down = {
    .send_head = down_head,
    .send_interim = down_interim,
    .send_body = down_body,
    .flush = down_flush,
    .splice_to = down_splice_to,
    .pump_body = down_pump_body,
    .finish = refresh_end,
    .tunnel = refresh_end,
    .abort = refresh_end,
    .local_addr = down_local_addr,
    .resume = down_resume,
};

/* The request of the copy rf->raw, parsed again into rf->fields; false when it does not parse. */
static bool
parse_copy(struct refresh *rf, struct gh_request *req)
{
    struct gh_h1_request pr;
    pr.headers = rf->fields;
    pr.max_headers = REFRESH_FIELDS;
    struct gh_h1_limits lim = {65536, 65536, REFRESH_FIELDS, 65536};
    if (gh_h1_parse_request(rf->raw, rf->raw_len, &pr, &lim) <= 0)
        return false;
    *req = (struct gh_request){.method = pr.method,
                               .method_len = pr.method_len,
                               .method_id = pr.method_id,
                               .target_form = pr.target_form,
                               .version = pr.version,
                               .h1flags = pr.flags,
                               .target = pr.target,
                               .target_len = pr.target_len,
                               .host = pr.host,
                               .host_len = pr.host_len,
                               .fields = pr.headers,
                               .n_fields = pr.num_headers,
                               .listener = rf->listener,
                               .raw = rf->raw,
                               .raw_len = rf->raw_len};
    return req->method_id == GH_METHOD_GET;
}

/* Refreshes asked for in this batch, started at its end: a request's start is not the place to
 * start another (they share the thread's scratch buffers). */
static __thread struct refresh *pending;

static void
start_one(struct refresh *rf)
{
    struct gh_request req;
    if (!parse_copy(rf, &req)) {
        free(rf);
        return;
    }
    struct gh_exchange *ex = &rf->ex;
    gh_exchange_init(ex, &refresh_down, rf->w, &rf->client, &no_xprt, gh_loop_now(rf->w->loop));
    ex->flags |= GH_EX_REQ_DONE | GH_EX_CACHE_REFRESH | rf->tls;
    gh_exchange_start(ex, &req);
    gh_exchange_advance(ex); /* an answer made at once (no server...) ends it here */
}

static void
start_pending(void *arg)
{
    (void)arg;
    while (pending != NULL) {
        struct refresh *rf = pending;
        pending = rf->next;
        start_one(rf);
    }
}

void
gh_cache_refresh_start(struct gh_exchange *orig)
{
    const struct gh_request *r = orig->req;
    if (r == NULL || r->raw == NULL || orig->listener == NULL)
        return;
    struct refresh *rf = malloc(sizeof(*rf) + r->raw_len);
    if (rf == NULL)
        return;
    memcpy(rf->raw, r->raw, r->raw_len);
    rf->raw_len = r->raw_len;
    rf->client = *orig->client;
    rf->listener = orig->listener;
    rf->w = orig->w;
    rf->tls = orig->flags & GH_EX_TLS;
    rf->next = pending;
    pending = rf;
    gh_loop_at_batch_end(orig->w->loop, start_pending, NULL);
}
