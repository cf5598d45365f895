/*
 * cache.c - the cache in the request's course (cache.h): the key and the lookup, waiting for
 * an object another request fetches, the cache as a source (hits, 304, ranges), revalidation,
 * PURGE, Cache-Status (RFC 9211) and the cache's variables. The origin's response is
 * cache_resp.c's.
 */
#include "proxy/cache.h"

#include <stdio.h>
#include <string.h>

#include "cache/store.h"
#include "http/h1_write.h"
#include "policy/cidr.h"
#include "proxy/cache_int.h"
#include "proxy/forward.h"
#include "proxy/vars.h"
#include "proxy/worker.h"

/* a waiting request is woken when the object it waits for progresses (gh_cache_wake_waiters),
 * and looks again this often in any case */
#define WAIT_POLL_MS 20

static int cache_recv(struct gh_exchange *ex);
static void cache_release(struct gh_exchange *ex);

static const struct gh_source_ops src_cache = {
    .name = "cache",
    .recv = cache_recv,
    .release = cache_release,
};

/* ------------------------------------------------------------------ */
/* keys and state                                                      */

/* The default key: scheme, host (lower-case) and the path and query as received. */
static void
default_key(struct gh_exchange *ex, const struct gh_request *req, struct gh_wr *w)
{
    if (ex->flags & GH_EX_TLS)
        GH_WR_LIT(w, "https://");
    else
        GH_WR_LIT(w, "http://");
    for (uint32_t i = 0; req->host != NULL && i < req->host_len; i++) {
        char c = (char)gh_lower((unsigned char)req->host[i]);
        gh_wr_put(w, &c, 1);
    }
    if (req->path_len == 0 || req->path[0] != '/')
        GH_WR_LIT(w, "/");
    gh_wr_put(w, req->path, req->path_len);
}

static void
on_timer(struct gh_timer *t)
{
    struct gh_cache_ex *cx =
        (struct gh_cache_ex *)(void *)((char *)t - offsetof(struct gh_cache_ex, timer));
    cx->ex->down->resume(cx->ex);
}

/* The exchange's state with its key (and room for a copy of the target), or NULL when the key
 * is too long or out of memory (then the request does without the cache). */
static struct gh_cache_ex *
new_state(struct gh_exchange *ex, const struct gh_request *req)
{
    char *kb = ex->w->hscratch;
    struct gh_wr w = {kb, 0, KEY_MAX, 0};
    if (ex->pc->cache_key != NULL)
        gh_vars_expand(ex->pc->cache_key, ex, &w, GH_ESC_RAW, NULL);
    else
        default_key(ex, req, &w);
    if (w.overflow)
        return NULL;
    uint32_t cap;
    size_t need = sizeof(struct gh_cache_ex) + w.len + 1 + ex->target_len + 1;
    struct gh_cache_ex *cx = gh_worker_head_get(ex->w, need, &cap);
    if (cx == NULL)
        return NULL;
    memset(cx, 0, sizeof(*cx));
    cx->cap = cap;
    cx->ex = ex;
    cx->store = ex->pc->cache->store;
    cx->request_time = gh_loop_wall(ex->w->loop);
    memcpy(cx->key, kb, w.len);
    cx->key[w.len] = '\0';
    cx->key_len = (uint32_t)w.len;
    cx->target = cx->key + w.len + 1;
    cx->timer.cb = on_timer;
    gh_cc_init(&cx->req_cc);
    ex->cache = cx;
    return cx;
}

/* ---- waiting for an object another request fills ---- */

static __thread struct gh_cache_ex *waiters; /* this thread's waiting requests */

/* cx waits for o to progress: on the thread's list, counted in o (so its filler wakes the
 * workers), and a timer in case a wake-up is missed. */
static void
wait_on(struct gh_cache_ex *cx, struct gh_cobj *o)
{
    if (cx->waited == NULL) {
        cx->waited = o;
        __atomic_add_fetch(&o->waiting, 1, __ATOMIC_SEQ_CST);
        cx->wprev = NULL;
        cx->wnext = waiters;
        if (waiters != NULL)
            waiters->wprev = cx;
        waiters = cx;
    }
    gh_timer_after(cx->ex->w->loop, &cx->timer, WAIT_POLL_MS);
}

static void
unwait(struct gh_cache_ex *cx)
{
    if (cx->waited == NULL)
        return;
    __atomic_sub_fetch(&cx->waited->waiting, 1, __ATOMIC_RELAXED);
    cx->waited = NULL;
    if (cx->wprev != NULL)
        cx->wprev->wnext = cx->wnext;
    else
        waiters = cx->wnext;
    if (cx->wnext != NULL)
        cx->wnext->wprev = cx->wprev;
    cx->wprev = cx->wnext = NULL;
}

/* An object progressed (some thread filled it): every request of this thread that waits looks
 * again. The list is taken whole first: one that must wait again goes on a new list. */
void
gh_cache_wake_waiters(void)
{
    struct gh_cache_ex *cx = waiters, *list = NULL;
    waiters = NULL;
    while (cx != NULL) { /* detach the list as it was, keeping its order */
        struct gh_cache_ex *next = cx->wnext;
        cx->wnext = list;
        list = cx;
        cx = next;
    }
    while (list != NULL) {
        cx = list;
        list = cx->wnext;
        if (list != NULL)
            list->wprev = NULL;
        __atomic_sub_fetch(&cx->waited->waiting, 1, __ATOMIC_RELAXED);
        cx->waited = NULL;
        cx->wprev = cx->wnext = NULL;
        cx->ex->down->resume(cx->ex);
    }
}

static void
free_state(struct gh_exchange *ex)
{
    struct gh_cache_ex *cx = ex->cache;
    if (cx == NULL)
        return;
    gh_timer_stop(ex->w->loop, &cx->timer);
    unwait(cx);
    if (cx->fill != NULL && gh_cobj_state(cx->fill) != GH_COBJ_DONE)
        gh_cache_fill_abort(cx->fill);
    gh_cobj_put(cx->fill);
    gh_cobj_put(cx->obj);
    gh_cobj_put(cx->wait);
    ex->cache = NULL;
    gh_worker_head_put(ex->w, cx, cx->cap);
}

/* The request's fields: the start's, or the copy kept for later. */
void
gh_cx_req_fields(const struct gh_exchange *ex, const struct gh_h1_header **f, uint32_t *n)
{
    *f = ex->req != NULL ? ex->req->fields : NULL;
    *n = ex->req != NULL ? ex->req->n_fields : 0;
}

/* ------------------------------------------------------------------ */
/* the head the cache answers with                                     */

/* Cache-Status (RFC 9211) for the state's outcome. */
void
gh_cx_wr_status(struct gh_wr *w, const struct gh_cache_ex *cx, int64_t ttl, bool hit)
{
    GH_WR_LIT(w, "Cache-Status: gatehouse");
    if (hit) {
        GH_WR_LIT(w, "; hit");
    } else {
        GH_WR_LIT(w, "; fwd=");
        gh_wr_str(w, cx->fwd != NULL ? cx->fwd : "miss");
        if (cx->fwd_status != 0) {
            GH_WR_LIT(w, "; fwd-status=");
            gh_wr_u64(w, cx->fwd_status);
        }
    }
    if (hit || cx->stored) {
        GH_WR_LIT(w, "; ttl=");
        if (ttl < 0) {
            GH_WR_LIT(w, "-");
            ttl = -ttl;
        }
        gh_wr_u64(w, (uint64_t)ttl);
    }
    if (cx->stored)
        GH_WR_LIT(w, "; stored");
    if (cx->collapsed)
        GH_WR_LIT(w, "; collapsed");
    GH_WR_LIT(w, "\r\n");
}

/* Content-Range of a 206 ([off, end) of total) or a 416. */
void
gh_cx_wr_range(struct gh_wr *w, int status, uint64_t off, uint64_t end, uint64_t total)
{
    GH_WR_LIT(w, "Content-Range: bytes ");
    if (status == 206) {
        gh_wr_u64(w, off);
        GH_WR_LIT(w, "-");
        gh_wr_u64(w, end - 1);
    } else {
        GH_WR_LIT(w, "*");
    }
    GH_WR_LIT(w, "/");
    gh_wr_u64(w, total);
    GH_WR_LIT(w, "\r\n");
}

/* Fields a 304 from the cache carries (RFC 9110 §15.4.5). */
static bool
in_304(const struct gh_h1_header *h)
{
    static const char *const names[] = {
        "cache-control", "content-location", "date", "etag", "expires", "vary", "last-modified"};
    for (size_t i = 0; i < GH_ARRAY_LEN(names); i++)
        if (h->name_len == strlen(names[i]) && gh_strncaseeq(h->name, names[i], h->name_len))
            return true;
    return false;
}

/* The head of a cached answer. Returns GH_PUMP_MOVED with *room set to the body bytes that may go
 * with it (0: the answer is complete), or GH_PUMP_ENDED. */
static int
send_first(struct gh_exchange *ex, struct gh_cache_ex *cx, size_t *room)
{
    const struct gh_cobj *o = cx->obj;
    int64_t now = gh_loop_wall(ex->w->loop);
    int64_t age = gh_cache_age(&o->times, now);
    int st = cx->resp_status;
    char extra[512];
    struct gh_wr w = {extra, 0, sizeof(extra), 0};
    GH_WR_LIT(&w, "Age: ");
    gh_wr_u64(&w, (uint64_t)(age < GH_CC_DELTA_MAX ? age : GH_CC_DELTA_MAX));
    GH_WR_LIT(&w, "\r\n");
    uint64_t total = (uint64_t)(o->content_length >= 0 ? o->content_length : 0);
    if (st == 206 || st == 416)
        gh_cx_wr_range(&w, st, cx->off, cx->end, total);
    if (ex->pc->cache_status)
        gh_cx_wr_status(&w, cx, o->times.lifetime - age, cx->fwd == NULL);
    struct gh_h1_header f304[16];
    struct gh_resp resp = {.status = (uint16_t)st,
                           .version = 11,
                           .body = GH_H1_BODY_LENGTH,
                           .fields = o->fields,
                           .n_fields = st == 416 ? 0 : o->n_fields,
                           .content_length = (int64_t)(cx->end - cx->off),
                           .extra = w.overflow ? NULL : extra,
                           .extra_len = (uint32_t)w.len};
    if (st == 304) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < o->n_fields && n < GH_ARRAY_LEN(f304); i++)
            if (in_304(&o->fields[i]))
                f304[n++] = o->fields[i];
        resp.fields = f304;
        resp.n_fields = n;
        resp.body = GH_H1_BODY_NONE;
        resp.content_length = -1;
    }
    ex->status = (uint16_t)st;
    bool reframe = false;
    ssize_t r = ex->down->send_head(ex, &resp, &reframe);
    if (r < 0)
        return GH_PUMP_ENDED;
    cx->head_sent = true;
    *room = (size_t)r;
    if (st == 304 || (ex->flags & GH_EX_HEAD_METHOD) || cx->off == cx->end) {
        *room = 0;
        if (ex->down->send_body(ex, NULL, 0, true) != 0)
            return GH_PUMP_ENDED;
        ex->flags |= GH_EX_RESP_DONE;
    }
    return GH_PUMP_MOVED;
}

/*
 * The fetch this request was streaming from stopped (its client went away, or the origin
 * failed) with part of the body sent: the rest is asked of the origin with a Range from where
 * it stopped, If-Range the stored validator (without a strong one, or without the request's
 * copy, the client's connection is cut as any broken response's). Its answer goes on the
 * client's body (GH_CX_CONT: its head is not sent; cache_resp.c places its bytes).
 */
static int
continue_from_origin(struct gh_exchange *ex, struct gh_cache_ex *cx)
{
    const struct gh_cobj *o = cx->obj;
    const struct gh_h1_header *et = gh_cache_field(o->fields, o->n_fields, "etag");
    if (ex->req == NULL || et == NULL || et->value_len < 2 || et->value[0] != '"')
        return gh_exchange_fail(ex, 502, "the response being cached failed");
    char range[48];
    int rl = snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)cx->off);
    struct gh_h1_header fields[262];
    struct gh_request r;
    gh_cx_conditional(ex->req, NULL, &r, fields, GH_ARRAY_LEN(fields) - 2);
    fields[r.n_fields++] = (struct gh_h1_header){"Range", range, 5, (uint32_t)rl, 0};
    fields[r.n_fields++] = (struct gh_h1_header){"If-Range", et->value, 8, et->value_len, 0};
    cx->mode = CX_ORIGIN;
    cx->pub.flags |= GH_CX_CONT;
    cx->fwd = "uri-miss";
    ex->target = cx->target;
    gh_origin_start(ex, &r);
    return GH_PUMP_MOVED;
}

/* Body from the object: at most max bytes of what has arrived. */
static int
send_body(struct gh_exchange *ex, struct gh_cache_ex *cx, size_t max)
{
    struct iovec spans[8];
    size_t want = (size_t)GH_MIN((uint64_t)max, cx->end - cx->off);
    int n = gh_cobj_read(cx->obj, &cx->cur, cx->off, want, spans, 8);
    if (n == 0) {
        if (gh_cobj_state(cx->obj) == GH_COBJ_ABORTED)
            return continue_from_origin(ex, cx);
        /* still arriving: wait for it to progress (counted first, then looked at again, so a
         * filler that appends meanwhile sees the count and wakes us) */
        wait_on(cx, cx->obj);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (gh_cobj_avail(cx->obj) <= cx->off && gh_cobj_state(cx->obj) != GH_COBJ_ABORTED)
            return GH_PUMP_BLOCKED;
        unwait(cx);
        return GH_PUMP_MOVED;
    }
    size_t k = 0;
    for (int i = 0; i < n; i++)
        k += spans[i].iov_len;
    cx->off += k;
    bool done = cx->off == cx->end;
    if (ex->down->send_body(ex, spans, n, done) != 0)
        return GH_PUMP_ENDED;
    if (done)
        ex->flags |= GH_EX_RESP_DONE;
    return GH_PUMP_MOVED;
}

/* ------------------------------------------------------------------ */
/* answering from the cache                                            */

/* Decide how obj answers the request (304, 206, 416 or the stored status) and make the cache
 * the source. */
void
gh_cx_serve(struct gh_exchange *ex, struct gh_cache_ex *cx)
{
    const struct gh_cobj *o = cx->obj;
    const struct gh_h1_header *rf;
    uint32_t nrf;
    gh_cx_req_fields(ex, &rf, &nrf);
    cx->mode = CX_SERVE;
    cx->pub.flags &= (uint16_t) ~(GH_CX_SWAP | GH_CX_TEE);
    cx->resp_status = o->status;
    cx->off = 0;
    cx->end = (uint64_t)(o->content_length >= 0 ? o->content_length : 0);
    if (o->status == 200 || o->status == 203) {
        if (gh_cache_not_modified(rf, nrf, o->fields, o->n_fields)) {
            cx->resp_status = 304;
        } else {
            const struct gh_h1_header *rg = gh_cache_field(rf, nrf, "range");
            const struct gh_h1_header *ir = gh_cache_field(rf, nrf, "if-range");
            const struct gh_h1_header *et = gh_cache_field(o->fields, o->n_fields, "etag");
            bool if_range_ok =
                ir == NULL || (et != NULL && gh_etag_eq_strong(ir->value, ir->value_len, et->value,
                                                               et->value_len));
            uint64_t first, last;
            int r = rg != NULL && if_range_ok && ex->method == GH_METHOD_GET
                        ? gh_cache_range(rg->value, rg->value_len, cx->end, &first, &last)
                        : 0;
            if (r > 0) {
                cx->resp_status = 206;
                cx->off = first;
                cx->end = last + 1;
            } else if (r < 0) {
                cx->resp_status = 416;
                cx->off = cx->end = 0;
            }
        }
    }
    if (cx->resp_status == 304)
        cx->off = cx->end = 0;
    ex->src = &src_cache;
    ex->status = cx->resp_status;
    gh_forward_release(ex); /* a forward proxy's destination is not needed */
}

static int lookup(struct gh_exchange *ex, struct gh_cache_ex *cx, const struct gh_request *req);

/* A request waiting for an object another request fetches: when it has a head (and a length)
 * or is complete, look again; when it failed, or the wait is too long, go to the origin. */
static int
wait_step(struct gh_exchange *ex, struct gh_cache_ex *cx)
{
    enum gh_cobj_state st = gh_cobj_state(cx->wait);
    bool ready = st == GH_COBJ_DONE || (st == GH_COBJ_FILLING && cx->wait->content_length >= 0);
    bool gone = st == GH_COBJ_ABORTED || gh_loop_now(ex->w->loop) >= cx->wait_until;
    if (!ready && !gone) {
        wait_on(cx, cx->wait);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (gh_cobj_state(cx->wait) == st) /* else: it moved meanwhile, look again now */
            return GH_PUMP_BLOCKED;
        unwait(cx);
        return GH_PUMP_MOVED;
    }
    gh_cobj_put(cx->wait);
    cx->wait = NULL;
    cx->mode = CX_ORIGIN;
    cx->collapsed = true;
    if (ex->req == NULL) /* its copy could not be kept: nothing to ask the origin with */
        return gh_exchange_fail(ex, 503, "out of memory");
    ex->target = cx->target;
    if (!gone && lookup(ex, cx, ex->req) == GH_DECLINED)
        return GH_PUMP_MOVED; /* answered (from the cache) */
    if (cx->mode == CX_WAIT)
        return GH_PUMP_BLOCKED; /* another placeholder */
    cx->fwd = cx->fwd != NULL ? cx->fwd : "uri-miss";
    gh_origin_start(ex, ex->req);
    return GH_PUMP_MOVED;
}

static int
cache_recv(struct gh_exchange *ex)
{
    struct gh_cache_ex *cx = ex->cache;
    if (cx == NULL)
        return gh_exchange_fail(ex, 500, "cache state lost");
    unwait(cx); /* it looks now (and waits again if it must) */
    if (cx->mode == CX_WAIT)
        return wait_step(ex, cx);
    if (!cx->head_sent) {
        size_t room = 0;
        int rc = send_first(ex, cx, &room);
        if (rc == GH_PUMP_ENDED || room == 0)
            return rc;
        return send_body(ex, cx, room);
    }
    if (cx->off == cx->end) {
        ex->flags |= GH_EX_RESP_DONE;
        return GH_PUMP_MOVED;
    }
    return send_body(ex, cx, GH_BUF_SIZE);
}

static void
cache_release(struct gh_exchange *ex)
{
    struct gh_cache_ex *cx = ex->cache;
    if (cx != NULL) {
        gh_timer_stop(ex->w->loop, &cx->timer);
        unwait(cx);
    }
}

/* ------------------------------------------------------------------ */
/* lookup                                                              */

/* A copy of req with the cache's own validators for o (none when o is NULL) in place of the
 * client's conditional and Range fields (RFC 9111 §4.3.1), into fields[0..cap). */
void
gh_cx_conditional(const struct gh_request *req, const struct gh_cobj *o, struct gh_request *out,
                  struct gh_h1_header *fields, uint32_t cap)
{
    static const char *const drop[] = {"if-none-match", "if-modified-since", "if-range",
                                       "range",         "if-match",          "if-unmodified-since"};
    uint32_t n = 0;
    for (uint32_t i = 0; i < req->n_fields && n + 2 < cap; i++) {
        const struct gh_h1_header *h = &req->fields[i];
        bool dropped = false;
        for (size_t d = 0; d < GH_ARRAY_LEN(drop) && !dropped; d++)
            dropped =
                h->name_len == strlen(drop[d]) && gh_strncaseeq(h->name, drop[d], h->name_len);
        if (!dropped)
            fields[n++] = *h;
    }
    const struct gh_h1_header *et = o ? gh_cache_field(o->fields, o->n_fields, "etag") : NULL;
    const struct gh_h1_header *lm =
        o ? gh_cache_field(o->fields, o->n_fields, "last-modified") : NULL;
    if (et != NULL)
        fields[n++] = (struct gh_h1_header){"If-None-Match", et->value, 13, et->value_len, 0};
    if (lm != NULL)
        fields[n++] = (struct gh_h1_header){"If-Modified-Since", lm->value, 17, lm->value_len, 0};
    *out = *req;
    out->fields = fields;
    out->n_fields = n;
}

/* ex->target (in the head, which goes when the start returns) copied into cx, for a request
 * that may go to the origin later. */
static void
keep_target(struct gh_exchange *ex, struct gh_cache_ex *cx)
{
    if (ex->target != cx->target) {
        memcpy(cx->target, ex->target, ex->target_len);
        ex->target = cx->target;
    }
}

/* Wait for o (being fetched by another request) up to the cache's lock_timeout. */
static int
wait_for(struct gh_exchange *ex, struct gh_cache_ex *cx, struct gh_cobj *o)
{
    cx->wait = o;
    cx->mode = CX_WAIT;
    keep_target(ex, cx);
    cx->wait_until = gh_loop_now(ex->w->loop) + ex->pc->cache->lock_timeout_ms;
    ex->src = &src_cache;
    wait_on(cx, o);
    return GH_DECLINED;
}

/* A stored response that may not be used as it is: ask the origin whether it still holds. */
static int
revalidate(struct gh_exchange *ex, struct gh_cache_ex *cx, const struct gh_request *req,
           struct gh_cobj *o)
{
    cx->obj = o;
    cx->fwd = "stale";
    if (ex->method != GH_METHOD_GET || req == NULL)
        return GH_OK; /* a HEAD goes as it is (its answer is not stored) */
    struct gh_h1_header fields[260];
    struct gh_request r;
    gh_cx_conditional(req, o, &r, fields, GH_ARRAY_LEN(fields));
    gh_origin_start(ex, &r);
    return GH_DECLINED;
}

/* What a stored (or filling) variant does for the request. */
static int
found(struct gh_exchange *ex, struct gh_cache_ex *cx, const struct gh_request *req,
      struct gh_cobj *o)
{
    bool only = (cx->req_cc.flags & GH_CC_ONLY_IF_CACHED) != 0;
    if (gh_cobj_state(o) == GH_COBJ_FILLING) {
        if (o->content_length < 0 && !only && ex->fwd == NULL)
            return wait_for(ex, cx, o); /* streams only with a known length */
        cx->obj = o;
        cx->collapsed = true;
        keep_target(ex, cx); /* the rest may have to be asked of the origin later */
        gh_cx_serve(ex, cx);
        return GH_DECLINED;
    }
    int64_t age;
    enum gh_reuse r = gh_cache_reuse(&o->times, &cx->req_cc, gh_loop_wall(ex->w->loop), &age);
    if (r != GH_REUSE_REVALIDATE && !(ex->flags & GH_EX_CACHE_REFRESH)) {
        uint8_t no = 0;
        if (r == GH_REUSE_SWR && __atomic_compare_exchange_n(&o->refreshing, &no, 1, false,
                                                             __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            gh_cache_refresh_start(ex); /* once per object */
        cx->obj = o;
        cx->stale = r != GH_REUSE_FRESH;
        gh_cx_serve(ex, cx);
        return GH_DECLINED;
    }
    if (only) {
        gh_cobj_put(o);
        ex->fail_reason = "only-if-cached and the stored response is stale";
        return 504;
    }
    return revalidate(ex, cx, req, o);
}

/* A miss for a Range request (without If-Range): the origin is asked for the whole response,
 * which is stored, and the client gets its range of it as it passes (GH_CX_SLICE), as nginx
 * does. GH_OK when there is no range to handle so. */
static int
range_miss(struct gh_exchange *ex, struct gh_cache_ex *cx, const struct gh_request *req)
{
    if (gh_cache_field(req->fields, req->n_fields, "range") == NULL ||
        gh_cache_field(req->fields, req->n_fields, "if-range") != NULL)
        return GH_OK;
    struct gh_h1_header fields[260];
    struct gh_request r;
    gh_cx_conditional(req, NULL, &r, fields, GH_ARRAY_LEN(fields));
    cx->range_miss = true;
    gh_origin_start(ex, &r);
    return GH_DECLINED;
}

/* RFC 9111 §3.5: a stored response answers a request with Authorization only when it says a
 * shared cache may (public, s-maxage, must-revalidate). */
static bool
auth_allows(const struct gh_cobj *o, const struct gh_h1_header *rf, uint32_t nrf)
{
    if (gh_cache_field(rf, nrf, "authorization") == NULL)
        return true;
    return (o->times.cc_flags & (GH_CC_PUBLIC | GH_CC_MUST_REVALIDATE)) || o->times.s_maxage;
}

static int
lookup(struct gh_exchange *ex, struct gh_cache_ex *cx, const struct gh_request *req)
{
    const struct gh_h1_header *rf = req != NULL ? req->fields : NULL;
    uint32_t nrf = req != NULL ? req->n_fields : 0;
    bool only = (cx->req_cc.flags & GH_CC_ONLY_IF_CACHED) != 0;
    bool get = ex->method == GH_METHOD_GET;
    struct gh_cobj *o;
    enum gh_cache_found f =
        gh_cache_lookup(cx->store, cx->key, cx->key_len, rf, nrf,
                        get && !only && !(cx->req_cc.flags & GH_CC_NO_STORE), &o);
    if (f == GH_CACHE_HIT && !auth_allows(o, rf, nrf)) {
        gh_cobj_put(o); /* not for a request with Authorization: the origin answers */
        cx->fwd = "uri-miss";
        return GH_OK;
    }
    if (f == GH_CACHE_HIT)
        return found(ex, cx, req, o);
    if (only) {
        gh_cobj_put(o);
        ex->fail_reason = "only-if-cached and nothing stored";
        return 504;
    }
    if (f == GH_CACHE_BUSY) {
        if (ex->fwd == NULL && ex->req != NULL)
            return wait_for(ex, cx, o);
        gh_cobj_put(o); /* a forward proxy's request goes on: it resolves its name already */
    } else {
        cx->fill = o; /* a placeholder: requests for the key wait for this one */
    }
    cx->fwd = "uri-miss";
    return cx->fill != NULL && req != NULL ? range_miss(ex, cx, req) : GH_OK;
}

/* ------------------------------------------------------------------ */
/* PURGE and invalidation                                              */

static int
purge(struct gh_exchange *ex, struct gh_cache_ex *cx)
{
    const struct gh_cidr_set *from = ex->pc->cache_purge_from;
    if (gh_cidr_set_find(from, ex->client->family, ex->client->ip) == GH_CIDR_NONE) {
        ex->fail_reason = "PURGE from an address not in cache_purge_from";
        return 403;
    }
    uint32_t n;
    if (cx->key_len > 0 && cx->key[cx->key_len - 1] == '*')
        n = gh_cache_remove_prefix(cx->store, cx->key, cx->key_len - 1);
    else
        n = gh_cache_remove_key(cx->store, cx->key, cx->key_len);
    char text[64];
    int len = snprintf(text, sizeof(text), "purged %u\n", n);
    int rc = gh_respond_copy(ex, n > 0 ? 200 : 404, text, (size_t)len, false);
    return rc == GH_OK ? GH_DECLINED : rc;
}

static bool
is_purge(const struct gh_request *req)
{
    return req->method_len == 5 && memcmp(req->method, "PURGE", 5) == 0;
}

static bool
bypassed(struct gh_exchange *ex)
{
    if (ex->pc->cache_bypass == NULL)
        return false;
    char buf[64];
    struct gh_wr w = {buf, 0, sizeof(buf), 0};
    gh_vars_expand(ex->pc->cache_bypass, ex, &w, GH_ESC_RAW, NULL);
    return w.len > 0 && !(w.len == 1 && buf[0] == '0');
}

int
gh_cache_pre_origin(struct gh_exchange *ex, const struct gh_request *req)
{
    const struct gh_proxy_conf *pc = ex->pc;
    if (pc->cache == NULL || pc->cache->store == NULL || pc->upstream == NULL)
        return GH_OK;
    uint8_t m = req->method_id;
    bool purging = m == GH_METHOD_OTHER && is_purge(req) && pc->cache_purge_from != NULL;
    bool safe =
        m == GH_METHOD_GET || m == GH_METHOD_HEAD || m == GH_METHOD_OPTIONS || m == GH_METHOD_TRACE;
    if (m == GH_METHOD_CONNECT || (m == GH_METHOD_OPTIONS || m == GH_METHOD_TRACE))
        return GH_OK;
    struct gh_cache_ex *cx = new_state(ex, req);
    if (cx == NULL)
        return GH_OK;
    if (purging)
        return purge(ex, cx);
    if (!safe) {
        cx->mode = CX_INVALIDATE;
        cx->fwd = "method";
        return GH_OK;
    }
    gh_cc_of_fields(&cx->req_cc, req->fields, req->n_fields, true);
    if (ex->flags & GH_EX_CACHE_REFRESH) /* a background refresh: never answered from the cache */
        cx->req_cc.flags |= GH_CC_NO_CACHE;
    if (bypassed(ex)) {
        cx->fwd = "bypass";
        return GH_OK;
    }
    return lookup(ex, cx, req);
}

void
gh_cache_done(struct gh_exchange *ex)
{
    free_state(ex);
}

/* nginx's $upstream_cache_status words for the state's outcome. */
static const char *
outcome(const struct gh_cache_ex *cx)
{
    if (cx->mode == CX_SERVE) {
        if (cx->fwd_status == 304)
            return "REVALIDATED";
        return cx->fwd != NULL || cx->stale ? "STALE" : "HIT";
    }
    if (cx->fwd == NULL)
        return NULL;
    if (strcmp(cx->fwd, "stale") == 0)
        return "EXPIRED";
    if (strcmp(cx->fwd, "bypass") == 0)
        return "BYPASS";
    if (strcmp(cx->fwd, "uri-miss") == 0)
        return "MISS";
    return NULL;
}

const char *
gh_cache_var(struct gh_exchange *ex, int var, char *buf, size_t cap)
{
    if (var == GH_VAR_UPSTREAM_CACHE_STATUS)
        return ex->cache != NULL ? outcome(ex->cache) : NULL;
    if ((var != GH_VAR_CACHE_BYTES && var != GH_VAR_CACHE_OBJECTS) || ex->pc == NULL ||
        ex->pc->cache == NULL || ex->pc->cache->store == NULL)
        return NULL;
    struct gh_cache_stats st;
    gh_cache_store_stats(ex->pc->cache->store, &st);
    snprintf(buf, cap, "%llu",
             (unsigned long long)(var == GH_VAR_CACHE_BYTES ? st.bytes : st.objects));
    return buf;
}
