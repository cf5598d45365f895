/*
 * cache_int.h - private to the cache's glue (cache.c: lookup, waiting, answering from the
 * cache; cache_resp.c: the origin's response): one exchange's state, and the helpers both use.
 */
#ifndef GH_PROXY_CACHE_INT_H
#define GH_PROXY_CACHE_INT_H

#include "cache/store.h"
#include "http/h1_write.h"
#include "proxy/cache.h"

#define KEY_MAX 4096

enum cx_mode {
    CX_ORIGIN = 0, /* the origin answers (a miss, a revalidation, a bypass) */
    CX_INVALIDATE, /* an unsafe method: its success invalidates the URI */
    CX_WAIT,       /* waiting for the same object fetched by another request */
    CX_SERVE,      /* the cache answers from obj */
};

struct gh_cache_ex {
    struct gh_cache_ex_pub pub; /* first: cache.h reads it */
    uint8_t mode;               /* enum cx_mode */
    bool head_sent;
    bool collapsed;
    bool stored;
    bool stale; /* served stale (max-stale, stale-while-revalidate) */
    struct gh_exchange *ex;
    struct gh_cache_store *store;
    struct gh_cobj *obj;  /* the stored response served or revalidated */
    struct gh_cobj *fill; /* what the origin's response fills */
    struct gh_cobj *wait; /* a placeholder (or an object of unknown length) waited for */
    struct gh_timer timer;
    uint64_t wait_until;
    struct gh_cread cur;
    uint64_t off, end; /* the body bytes still to send: [off, end) (GH_CX_SLICE: to pass on) */
    uint64_t pos;      /* GH_CX_SLICE: body bytes of the origin's response seen so far */
    bool range_miss;   /* a Range request on a miss: the whole response is asked for */
    int64_t request_time;
    struct gh_cc req_cc;
    uint16_t resp_status; /* what the cache answers: the stored status, 206, 304 or 416 */
    uint16_t fwd_status;
    const char *fwd; /* Cache-Status's fwd= (NULL: a hit) */
    uint32_t cap;    /* of this block, for gh_worker_head_put */
    char *target;    /* a copy of ex->target while waiting (the head it pointed into goes) */
    struct gh_cache_ex *wprev, *wnext; /* the thread's waiting list (while `waited` is set) */
    struct gh_cobj *waited;            /* the object it waits to progress (counted in it) */
    uint32_t key_len;
    char key[];
};

/* The request's fields: the start's, or the copy kept for later. */
void gh_cx_req_fields(const struct gh_exchange *ex, const struct gh_h1_header **f, uint32_t *n);

/* Cache-Status (RFC 9211) for cx's outcome into w: ttl seconds left, hit or forwarded. */
void gh_cx_wr_status(struct gh_wr *w, const struct gh_cache_ex *cx, int64_t ttl, bool hit);

/* Content-Range of a 206 ([off, end) of total) or a 416, into w. */
void gh_cx_wr_range(struct gh_wr *w, int status, uint64_t off, uint64_t end, uint64_t total);

/* A copy of req with the cache's own validators for o (none when o is NULL) in place of the
 * client's conditional and Range fields (RFC 9111 §4.3.1), into fields[0..cap). */
void gh_cx_conditional(const struct gh_request *req, const struct gh_cobj *o,
                       struct gh_request *out, struct gh_h1_header *fields, uint32_t cap);

/* Decide how cx->obj answers the request (304, 206, 416 or the stored status) and make the
 * cache the source. */
void gh_cx_serve(struct gh_exchange *ex, struct gh_cache_ex *cx);

#endif
