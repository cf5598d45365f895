/*
 * policy.h - the rules of RFC 9111 for a shared cache, as pure functions on
 * field values and times (no sockets, no store): Cache-Control parsing,
 * HTTP dates, whether a response may be stored, its freshness lifetime and
 * current age, whether a stored response may answer a request (fresh, stale
 * allowed, or to be revalidated), Vary keys, validators and the client's
 * conditional requests.
 *
 * Times are wall-clock seconds (Unix time). Every function borrows its
 * arguments and keeps nothing.
 */
#ifndef GH_CACHE_POLICY_H
#define GH_CACHE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/h1.h"

/* Cache-Control directives seen (RFC 9111 §5.2). */
#define GH_CC_NO_STORE 0x0001
#define GH_CC_NO_CACHE 0x0002 /* unqualified, or with field names (treated alike) */
#define GH_CC_PRIVATE 0x0004  /* likewise */
#define GH_CC_PUBLIC 0x0008
#define GH_CC_MUST_REVALIDATE 0x0010
#define GH_CC_PROXY_REVALIDATE 0x0020
#define GH_CC_ONLY_IF_CACHED 0x0040
#define GH_CC_MAX_STALE_ANY 0x0080 /* max-stale with no value */
#define GH_CC_NO_TRANSFORM 0x0100
#define GH_CC_MUST_UNDERSTAND 0x0200
#define GH_CC_IMMUTABLE 0x0400
#define GH_CC_PRAGMA_NO_CACHE 0x0800 /* Pragma: no-cache (a request without Cache-Control) */
/* the directives are a response's CDN-Cache-Control (RFC 9213): its Cache-Control and Expires
 * are not looked at */
#define GH_CC_TARGETED 0x1000

/* A delta-seconds directive that is absent. */
#define GH_CC_UNSET (-1)
/* RFC 9111 §1.2.2: a delta-seconds too large to represent is taken as 2^31. */
#define GH_CC_DELTA_MAX 2147483648LL

/* Parsed Cache-Control of a request or a response (all of its field lines). */
struct gh_cc {
    uint32_t flags; /* GH_CC_* */
    int64_t max_age, s_maxage, max_stale, min_fresh;
    int64_t stale_while_revalidate, stale_if_error; /* RFC 5861 */
};

/* An empty gh_cc: no directive, every delta GH_CC_UNSET. */
void gh_cc_init(struct gh_cc *cc);

/*
 * Add the directives of one Cache-Control field value v[0..len) to cc. Names
 * are case-insensitive, values may be quoted; of a directive given twice the
 * first counts (RFC 9111 §4.2.1). A delta-seconds that is not a number is
 * taken as 0 (stale, §1.2.2); unknown directives are ignored.
 */
void gh_cc_parse(struct gh_cc *cc, const char *v, size_t len);

/* The Cache-Control of the fields hs[0..n); of a request's (request set), without
 * Cache-Control, Pragma: no-cache too (RFC 9111 §5.4: a response's Pragma means nothing). Of a
 * response, a CDN-Cache-Control with a directive replaces Cache-Control and Expires (RFC 9213:
 * this cache is the CDN it targets), and GH_CC_TARGETED says so. */
void gh_cc_of_fields(struct gh_cc *cc, const struct gh_h1_header *hs, uint32_t n, bool request);

/*
 * An HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and
 * asctime forms) in v[0..len) as Unix seconds. Returns 0, or -1 when it is
 * not a date.
 */
int gh_http_date_parse(const char *v, size_t len, int64_t *out);

/* The first field named name (case-insensitive) of hs[0..n), or NULL. */
const struct gh_h1_header *gh_cache_field(const struct gh_h1_header *hs, uint32_t n,
                                          const char *name);

/* Is status heuristically cacheable (RFC 9110 §15.1)? */
bool gh_cache_status_heuristic(int status);

/* What a stored response says about its own freshness, computed when it is stored. */
struct gh_cache_times {
    int64_t request_time;  /* when the request that got it was sent */
    int64_t response_time; /* when it was received */
    int64_t date;          /* its Date (response_time when absent or invalid) */
    int64_t age;           /* its Age field, 0 when absent */
    int64_t lifetime;      /* its freshness lifetime (seconds; 0: stale at once) */
    int64_t swr, sie;      /* stale-while-revalidate, stale-if-error; -1: none */
    uint32_t cc_flags;     /* the response's GH_CC_* */
    bool s_maxage;         /* s-maxage was present (it implies proxy-revalidate, §5.2.2.10) */
};

/* Why a response may not be stored (GH_STORE_OK: it may). */
enum gh_store_verdict {
    GH_STORE_OK = 0,
    GH_STORE_METHOD,     /* not a GET */
    GH_STORE_STATUS,     /* a status not cached (1xx, 206, 304, or not final) */
    GH_STORE_NO_STORE,   /* no-store (request or response) */
    GH_STORE_PRIVATE,    /* private, for a shared cache */
    GH_STORE_AUTH,       /* a request with Authorization, not allowed by the response */
    GH_STORE_VARY_STAR,  /* Vary: * */
    GH_STORE_NO_FRESH,   /* nothing makes it cacheable (no explicit or heuristic freshness) */
    GH_STORE_UNDERSTAND, /* must-understand with a status not understood */
};

/* The inputs of the storage decision (RFC 9111 §3). */
struct gh_store_in {
    int method; /* enum gh_h1_method of the request */
    int status;
    bool req_authorization;   /* the request had Authorization */
    const struct gh_cc *req;  /* the request's Cache-Control */
    const struct gh_cc *resp; /* the response's */
    const struct gh_h1_header *fields;
    uint32_t n_fields;
    int64_t cache_valid; /* seconds `cache_valid` gives this status, or -1 */
};

/* May this response be stored by a shared cache? */
enum gh_store_verdict gh_cache_storable(const struct gh_store_in *in);

/* The verdict as a word for logs and Cache-Status ("no-store", ...). */
const char *gh_store_verdict_name(enum gh_store_verdict v);

/*
 * The times of a response with fields hs[0..n) and Cache-Control cc, status
 * status, sent at request_time and received at response_time (RFC 9111
 * §4.2.1: s-maxage, max-age, Expires - Date, then cache_valid when >= 0,
 * then 10% of Date - Last-Modified for heuristically cacheable statuses or
 * public responses).
 */
void gh_cache_times_of(struct gh_cache_times *t, int status, const struct gh_cc *cc,
                       const struct gh_h1_header *hs, uint32_t n, int64_t request_time,
                       int64_t response_time, int64_t cache_valid);

/* The current age (RFC 9111 §4.2.3) at now. */
int64_t gh_cache_age(const struct gh_cache_times *t, int64_t now);

/* What a stored response can do for a request. */
enum gh_reuse {
    GH_REUSE_FRESH = 0,  /* serve it */
    GH_REUSE_STALE_OK,   /* stale, but the request's max-stale allows serving it */
    GH_REUSE_REVALIDATE, /* ask the origin (conditional request) first */
    GH_REUSE_SWR,        /* stale within stale-while-revalidate: serve, and refresh */
};

/*
 * May the stored response with times t answer a request with Cache-Control
 * req at now (RFC 9111 §4.2, §5.2.1, §5.2.2)? Sets *age to its current age.
 */
enum gh_reuse gh_cache_reuse(const struct gh_cache_times *t, const struct gh_cc *req, int64_t now,
                             int64_t *age);

/* May a stale response with times t be served at now because its origin failed
 * (stale-if-error, RFC 5861 §4)? The request's own stale-if-error counts too. */
bool gh_cache_stale_if_error(const struct gh_cache_times *t, const struct gh_cc *req, int64_t now);

/*
 * Weak comparison (RFC 9110 §8.8.3.2) of the entity-tag etag[0..elen) with an
 * If-None-Match list v[0..vlen) ("*" matches any). Returns true on a match.
 */
bool gh_etag_match_weak(const char *v, size_t vlen, const char *etag, size_t elen);

/* Strong comparison of two entity-tags (neither weak, same opaque-tag). */
bool gh_etag_eq_strong(const char *a, size_t alen, const char *b, size_t blen);

/*
 * A request's Vary value: the fields of req_fields named by the response's
 * Vary list vary[0..vlen), normalised (field lines joined with ",", spaces
 * dropped around commas; Accept-Encoding lower-cased, its codings sorted,
 * q=0 ones dropped) into out[0..cap) as "name:value\n" per name (absent
 * fields as "name!\n"). Returns the length, or -1 when it does not fit or
 * Vary is "*".
 */
int gh_cache_vary_key(const char *vary, size_t vlen, const struct gh_h1_header *req_fields,
                      uint32_t n, char *out, size_t cap);

/*
 * The client's conditional request against a stored response (RFC 9110 §13.1,
 * §13.2.2 for a cache): true when it is to be answered 304. If-None-Match
 * (weak) decides when present, else If-Modified-Since against Last-Modified
 * (else Date).
 */
bool gh_cache_not_modified(const struct gh_h1_header *req_fields, uint32_t nreq,
                           const struct gh_h1_header *stored, uint32_t nstored);

/*
 * A Range request (RFC 9110 §14.2) against a body of len bytes: one
 * "bytes=" range. Returns 1 with [*first, *last] when it is satisfiable, 0
 * when the whole body is to be sent (no range, several ranges, not bytes, or
 * malformed: a cache may ignore it), -1 when it is not satisfiable (416).
 */
int gh_cache_range(const char *v, size_t vlen, uint64_t len, uint64_t *first, uint64_t *last);

#endif
