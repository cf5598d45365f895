/*
 * cache_resp.c - the cache and the origin's response (cache.h): the storage decision and the
 * copy of the body into the store as it passes, a 304 updating a stored response, the range
 * of a whole response for a Range request that missed, stale-if-error, invalidation after
 * unsafe methods.
 */
#include <string.h>

#include "http/fields.h"
#include "proxy/cache_int.h"
#include "proxy/worker.h"

/* The key of a URL in a Location or Content-Location field when it is of the request's origin
 * (RFC 9111 §4.4), into out; its length, or 0. Only with the default key. */
static size_t
location_key(struct gh_exchange *ex, const struct gh_cache_ex *cx, const struct gh_h1_header *h,
             char *out, size_t cap)
{
    const char *v = h->value;
    size_t vl = h->value_len;
    const char *path = memchr(cx->key + 8, '/', cx->key_len - 8); /* after "scheme://" */
    size_t origin_len = path != NULL ? (size_t)(path - cx->key) : cx->key_len;
    if (ex->pc->cache_key != NULL || vl == 0 || vl + origin_len >= cap)
        return 0;
    if (v[0] == '/' && (vl < 2 || v[1] != '/')) { /* a path: the request's origin */
        memcpy(out, cx->key, origin_len);
        memcpy(out + origin_len, v, vl);
        return origin_len + vl;
    }
    if (vl <= origin_len || !gh_strncaseeq(v, cx->key, origin_len) || v[origin_len] != '/')
        return 0; /* another origin: not invalidated */
    memcpy(out, cx->key, origin_len);
    memcpy(out + origin_len, v + origin_len, vl - origin_len);
    return vl;
}

static void
invalidate(struct gh_exchange *ex, struct gh_cache_ex *cx, const struct gh_resp *resp)
{
    gh_cache_remove_key(cx->store, cx->key, cx->key_len);
    char buf[KEY_MAX];
    for (uint32_t i = 0; i < resp->n_fields; i++) {
        const struct gh_h1_header *h = &resp->fields[i];
        bool loc = h->name_len == 8 && gh_strncaseeq(h->name, "location", 8);
        bool cloc = h->name_len == 16 && gh_strncaseeq(h->name, "content-location", 16);
        size_t n = loc || cloc ? location_key(ex, cx, h, buf, sizeof(buf)) : 0;
        if (n > 0)
            gh_cache_remove_key(cx->store, buf, n);
    }
}

/* ------------------------------------------------------------------ */
/* the origin's response                                               */

/* The response's fields as stored: without hop-by-hop and framing fields, and without Age
 * (the cache writes its own). Returns how many went into out. */
static uint32_t
storable_fields(const struct gh_resp *resp, struct gh_h1_header *out, uint32_t cap)
{
    uint32_t n = 0;
    bool conn_other = (resp->h1flags & GH_H1_F_CONN_OTHER) != 0;
    for (uint32_t i = 0; i < resp->n_fields && n < cap; i++) {
        const struct gh_h1_header *h = &resp->fields[i];
        if (gh_field_resp_dropped(h->id) || h->id == GH_HDR_UPGRADE ||
            (conn_other && gh_field_named_by_connection(resp->fields, resp->n_fields, h)) ||
            (h->name_len == 3 && gh_strncaseeq(h->name, "age", 3)))
            continue;
        out[n++] = *h;
    }
    return n;
}

/* `cache_valid` for status: seconds, or -1. */
static int64_t
valid_for(const struct gh_proxy_conf *pc, int status)
{
    int64_t any = -1;
    for (uint32_t i = 0; i < pc->n_cache_valid; i++) {
        if (pc->cache_valid[i].status == status)
            return pc->cache_valid[i].seconds;
        if (pc->cache_valid[i].status == 0)
            any = pc->cache_valid[i].seconds;
    }
    return any;
}

/* Store the response (its body follows through gh_cache_body), or let the placeholder go. */
static void
store(struct gh_exchange *ex, struct gh_cache_ex *cx, const struct gh_resp *resp)
{
    const struct gh_h1_header *rf;
    uint32_t nrf;
    gh_cx_req_fields(ex, &rf, &nrf);
    struct gh_cc rc;
    gh_cc_of_fields(&rc, resp->fields, resp->n_fields, false);
    int64_t valid = valid_for(ex->pc, resp->status);
    struct gh_store_in in = {
        ex->method,     resp->status, gh_cache_field(rf, nrf, "authorization") != NULL,
        &cx->req_cc,    &rc,          resp->fields,
        resp->n_fields, valid};
    enum gh_store_verdict v = ex->req == NULL ? GH_STORE_NO_FRESH : gh_cache_storable(&in);
    uint64_t max = gh_cache_store_max_object(cx->store);
    if (v == GH_STORE_OK && resp->content_length > (int64_t)max)
        v = GH_STORE_NO_FRESH;
    struct gh_h1_header fields[256];
    char vkey[2048];
    const struct gh_h1_header *vary = gh_cache_field(resp->fields, resp->n_fields, "vary");
    int vk = 0;
    if (v == GH_STORE_OK && vary != NULL)
        vk = gh_cache_vary_key(vary->value, vary->value_len, rf, nrf, vkey, sizeof(vkey));
    if (v != GH_STORE_OK || vk < 0) {
        if (cx->fill != NULL)
            gh_cache_fill_abort(cx->fill);
        return;
    }
    if (cx->fill == NULL && (cx->fill = gh_cache_obj_new(cx->store, cx->key, cx->key_len)) == NULL)
        return;
    struct gh_cache_times t;
    gh_cache_times_of(&t, resp->status, &rc, resp->fields, resp->n_fields, cx->request_time,
                      gh_loop_wall(ex->w->loop), valid);
    uint32_t n = storable_fields(resp, fields, GH_ARRAY_LEN(fields));
    bool bodyless =
        (ex->flags & GH_EX_HEAD_METHOD) || resp->status == 204 || resp->body == GH_H1_BODY_NONE;
    if (gh_cache_fill_head(cx->fill, resp->status, fields, n, vary ? vary->value : "",
                           vary ? vary->value_len : 0, vkey, (size_t)vk, &t,
                           bodyless ? 0 : resp->content_length) != 0)
        return;
    cx->stored = true;
    cx->pub.flags |= GH_CX_TEE;
    if (bodyless) {
        gh_cache_fill_done(cx->fill);
        cx->pub.flags &= (uint16_t)~GH_CX_TEE;
    }
}

/* Is name[0..len) among the fields a 304 must not change in a stored response (RFC 9111 §3.2:
 * Content-Length, and what is hop-by-hop)? */
static bool
kept_on_update(const struct gh_h1_header *h)
{
    return gh_field_resp_dropped(h->id) || h->id == GH_HDR_UPGRADE ||
           (h->name_len == 3 && gh_strncaseeq(h->name, "age", 3));
}

static bool
same_name(const struct gh_h1_header *a, const struct gh_h1_header *b)
{
    return a->name_len == b->name_len && gh_strncaseeq(a->name, b->name, a->name_len);
}

/* A 304 to our conditional request: the stored fields updated with the 304's (RFC 9111 §3.2,
 * §4.3.4), the times from this exchange; the cache then answers. */
static void
update(struct gh_exchange *ex, struct gh_cache_ex *cx, const struct gh_resp *resp)
{
    const struct gh_cobj *o = cx->obj;
    struct gh_h1_header fields[256];
    uint32_t n = 0;
    for (uint32_t i = 0; i < o->n_fields && n < GH_ARRAY_LEN(fields); i++) {
        bool replaced = false;
        for (uint32_t j = 0; j < resp->n_fields && !replaced; j++)
            replaced =
                !kept_on_update(&resp->fields[j]) && same_name(&o->fields[i], &resp->fields[j]);
        if (!replaced)
            fields[n++] = o->fields[i];
    }
    for (uint32_t j = 0; j < resp->n_fields && n < GH_ARRAY_LEN(fields); j++)
        if (!kept_on_update(&resp->fields[j]))
            fields[n++] = resp->fields[j];
    struct gh_cc rc;
    gh_cc_of_fields(&rc, fields, n, false);
    struct gh_cache_times t;
    gh_cache_times_of(&t, o->status, &rc, fields, n, cx->request_time, gh_loop_wall(ex->w->loop),
                      valid_for(ex->pc, o->status));
    /* the 304's own Age counts (its fields replaced the stored ones) */
    const struct gh_h1_header *age = gh_cache_field(resp->fields, resp->n_fields, "age");
    if (age == NULL)
        t.age = 0;
    struct gh_cobj *x = gh_cache_replace_head(cx->obj, fields, n, &t);
    if (x != NULL) {
        gh_cobj_put(cx->obj);
        cx->obj = x;
        cx->stored = true;
    }
}

/* A Range request that went to the origin whole (range_miss): its 200 becomes the 206 (or 416)
 * of the range, with Content-Range into w. */
static void
slice(struct gh_exchange *ex, struct gh_cache_ex *cx, struct gh_resp *resp, struct gh_wr *w)
{
    const struct gh_h1_header *rf;
    uint32_t nrf;
    gh_cx_req_fields(ex, &rf, &nrf);
    const struct gh_h1_header *rg = gh_cache_field(rf, nrf, "range");
    uint64_t first, last, total = (uint64_t)resp->content_length;
    if (rg == NULL || resp->status != 200 || resp->content_length < 0)
        return; /* the whole response, as a server that ignores Range answers */
    int r = gh_cache_range(rg->value, rg->value_len, total, &first, &last);
    if (r == 0)
        return;
    cx->off = r > 0 ? first : 0;
    cx->end = r > 0 ? last + 1 : 0;
    cx->pos = 0;
    cx->pub.flags |= GH_CX_SLICE;
    resp->status = r > 0 ? 206 : 416;
    resp->reason = NULL;
    resp->reason_len = 0;
    resp->content_length = (int64_t)(cx->end - cx->off);
    ex->status = resp->status;
    gh_cx_wr_range(w, resp->status, cx->off, cx->end, total);
}

/* The origin's answer to continue_from_origin's Range request: a 206 from where the client's
 * body stopped, or a 200 whose first bytes the client has (both go on through the slice). */
static int
continue_head(struct gh_exchange *ex, struct gh_cache_ex *cx, const struct gh_resp *resp)
{
    uint64_t from = 0;
    if (resp->status == 206) {
        const struct gh_h1_header *cr =
            gh_cache_field(resp->fields, resp->n_fields, "content-range");
        const char *v = cr != NULL ? cr->value : "";
        size_t n = cr != NULL ? cr->value_len : 0, i = 6;
        if (n < 7 || memcmp(v, "bytes ", 6) != 0)
            i = n;
        for (; i < n && v[i] >= '0' && v[i] <= '9'; i++)
            from = from * 10 + (uint64_t)(v[i] - '0');
        if (from != cx->off || i == 6 || i >= n || v[i] != '-')
            from = UINT64_MAX;
    } else if (resp->status != 200) {
        from = UINT64_MAX;
    }
    if (from == UINT64_MAX) {
        ex->fail_reason = "the rest of a response being cached could not be fetched";
        return 502;
    }
    cx->pos = from;
    cx->pub.flags |= GH_CX_SLICE;
    ex->status = cx->resp_status; /* what the client is getting */
    return GH_OK;
}

int
gh_cache_resp_head(struct gh_exchange *ex, struct gh_resp *resp)
{
    struct gh_cache_ex *cx = ex->cache;
    if (cx == NULL)
        return GH_OK;
    if (cx->pub.flags & GH_CX_CONT)
        return continue_head(ex, cx, resp);
    int st = resp->status;
    if (cx->mode == CX_INVALIDATE) {
        if (st >= 200 && st < 400)
            invalidate(ex, cx, resp);
    } else if (cx->obj != NULL && st == 304 && ex->method == GH_METHOD_GET) {
        update(ex, cx, resp);
        cx->fwd_status = 304;
        cx->pub.flags |= GH_CX_SWAP;
        return GH_OK;
    } else if (cx->obj != NULL && st >= 500 &&
               gh_cache_stale_if_error(&cx->obj->times, &cx->req_cc, gh_loop_wall(ex->w->loop))) {
        cx->fwd_status = (uint16_t)st;
        cx->pub.flags |= GH_CX_SWAP;
        return GH_OK;
    } else if (cx->fwd == NULL || strcmp(cx->fwd, "method") != 0) {
        store(ex, cx, resp);
    }
    static __thread char line[256];
    struct gh_wr w = {line, 0, sizeof(line), 0};
    if (cx->range_miss)
        slice(ex, cx, resp, &w);
    if (ex->pc->cache_status) {
        cx->fwd_status = cx->fwd != NULL && strcmp(cx->fwd, "stale") == 0 ? (uint16_t)st : 0;
        int64_t ttl = cx->stored ? cx->fill->times.lifetime : 0;
        gh_cx_wr_status(&w, cx, ttl, false);
    }
    if (w.len > 0 && !w.overflow) {
        resp->extra = line;
        resp->extra_len = (uint32_t)w.len;
    }
    return GH_OK;
}

static void
tee(struct gh_cache_ex *cx, const struct iovec *spans, int n, bool done)
{
    if (!(cx->pub.flags & GH_CX_TEE))
        return;
    if (gh_cache_fill_body(cx->fill, spans, n) != 0) {
        gh_cache_fill_abort(cx->fill); /* too large, or no memory: the client still gets it */
        cx->pub.flags &= (uint16_t)~GH_CX_TEE;
        return;
    }
    if (done) {
        gh_cache_fill_done(cx->fill);
        cx->pub.flags &= (uint16_t)~GH_CX_TEE;
    }
}

static uint64_t
spans_len(const struct iovec *spans, int n)
{
    uint64_t k = 0;
    for (int i = 0; i < n; i++)
        k += spans[i].iov_len;
    return k;
}

int
gh_cache_body(struct gh_exchange *ex, const struct iovec *spans, int n, bool done)
{
    struct gh_cache_ex *cx = ex->cache;
    if (cx->pub.flags & GH_CX_SWAP)
        return 0; /* read and dropped: the cache answers */
    tee(cx, spans, n, done);
    if (!(cx->pub.flags & GH_CX_SLICE))
        return ex->down->send_body(ex, spans, n, done);
    if (done && (cx->pub.flags & GH_CX_CONT) && cx->pos + spans_len(spans, n) < cx->end) {
        gh_exchange_fail(ex, 502, "the rest of a response being cached ended short");
        return -1; /* the client's connection is cut: its body would be short */
    }
    /* the range [off, end) of the body, which goes by at cx->pos */
    struct iovec out[GH_H1_OUT_SPANS];
    int k = 0;
    for (int i = 0; i < n && k < (int)GH_ARRAY_LEN(out); i++) {
        uint64_t a = cx->pos, b = cx->pos + spans[i].iov_len;
        cx->pos = b;
        uint64_t lo = GH_MAX(a, cx->off), hi = GH_MIN(b, cx->end);
        if (lo < hi)
            out[k++] = (struct iovec){(char *)spans[i].iov_base + (lo - a), (size_t)(hi - lo)};
    }
    return ex->down->send_body(ex, out, k, done);
}

void
gh_cache_take_over(struct gh_exchange *ex)
{
    struct gh_cache_ex *cx = ex->cache;
    cx->fwd = "stale"; /* RFC 9211: fwd=stale with the fwd-status of the revalidation */
    gh_cx_serve(ex, cx);
}

bool
gh_cache_on_fail(struct gh_exchange *ex, int status)
{
    struct gh_cache_ex *cx = ex->cache;
    if (cx == NULL || cx->obj == NULL || cx->mode != CX_ORIGIN || status < 500 ||
        (ex->flags & GH_EX_RESP_STARTED))
        return false;
    if (!gh_cache_stale_if_error(&cx->obj->times, &cx->req_cc, gh_loop_wall(ex->w->loop)))
        return false;
    if (ex->src != NULL && ex->src->release != NULL)
        ex->src->release(ex);
    cx->fwd_status = (uint16_t)status;
    cx->fwd = "stale";
    gh_cx_serve(ex, cx);
    return true;
}
