/*
 * policy.c - RFC 9111 for a shared cache: Cache-Control, dates, storage,
 * freshness, age, reuse, Vary, validators and ranges. Pure functions.
 */
#include "cache/policy.h"

#include <string.h>

#include "core/common.h"

void
gh_cc_init(struct gh_cc *cc)
{
    cc->flags = 0;
    cc->max_age = cc->s_maxage = cc->max_stale = cc->min_fresh = GH_CC_UNSET;
    cc->stale_while_revalidate = cc->stale_if_error = GH_CC_UNSET;
}

static bool
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool
name_is(const char *p, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && gh_strncaseeq(p, lit, n);
}

/* delta-seconds in v[0..len) (quotes taken off): digits only; too large is 2^31; not a number
 * is 0 (RFC 9111 §1.2.2: treat as stale) */
static int64_t
delta_seconds(const char *v, size_t len)
{
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
        v++;
        len -= 2;
    }
    if (len == 0)
        return 0;
    int64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 0;
        x = x * 10 + (v[i] - '0');
        if (x >= GH_CC_DELTA_MAX)
            x = GH_CC_DELTA_MAX;
    }
    return x;
}

/* Set *slot from the value unless an earlier occurrence did (the first one counts). */
static void
set_delta(int64_t *slot, const char *v, size_t vlen, bool has_value)
{
    if (*slot == GH_CC_UNSET)
        *slot = has_value ? delta_seconds(v, vlen) : 0;
}

/* One directive name[0..nlen) with its value v[0..vlen) (has_value: there was a '='). */
static void
directive(struct gh_cc *cc, const char *name, size_t nlen, const char *v, size_t vlen,
          bool has_value)
{
    static const struct {
        const char *name;
        uint32_t flag;
    } flags[] = {{"no-store", GH_CC_NO_STORE},
                 {"no-cache", GH_CC_NO_CACHE},
                 {"private", GH_CC_PRIVATE},
                 {"public", GH_CC_PUBLIC},
                 {"must-revalidate", GH_CC_MUST_REVALIDATE},
                 {"proxy-revalidate", GH_CC_PROXY_REVALIDATE},
                 {"only-if-cached", GH_CC_ONLY_IF_CACHED},
                 {"no-transform", GH_CC_NO_TRANSFORM},
                 {"must-understand", GH_CC_MUST_UNDERSTAND},
                 {"immutable", GH_CC_IMMUTABLE}};
    for (size_t i = 0; i < GH_ARRAY_LEN(flags); i++)
        if (name_is(name, nlen, flags[i].name)) {
            cc->flags |= flags[i].flag;
            return;
        }
    if (name_is(name, nlen, "max-age"))
        set_delta(&cc->max_age, v, vlen, has_value);
    else if (name_is(name, nlen, "s-maxage"))
        set_delta(&cc->s_maxage, v, vlen, has_value);
    else if (name_is(name, nlen, "min-fresh"))
        set_delta(&cc->min_fresh, v, vlen, has_value);
    else if (name_is(name, nlen, "stale-while-revalidate"))
        set_delta(&cc->stale_while_revalidate, v, vlen, has_value);
    else if (name_is(name, nlen, "stale-if-error"))
        set_delta(&cc->stale_if_error, v, vlen, has_value);
    else if (name_is(name, nlen, "max-stale")) {
        if (!has_value)
            cc->flags |= GH_CC_MAX_STALE_ANY;
        else
            set_delta(&cc->max_stale, v, vlen, true);
    }
}

void
gh_cc_parse(struct gh_cc *cc, const char *v, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (is_ows(v[i]) || v[i] == ','))
            i++;
        size_t ns = i;
        while (i < len && v[i] != '=' && v[i] != ',' && !is_ows(v[i]))
            i++;
        size_t ne = i;
        while (i < len && is_ows(v[i]))
            i++;
        const char *val = NULL;
        size_t vl = 0;
        bool has_value = i < len && v[i] == '=';
        if (has_value) {
            i++;
            while (i < len && is_ows(v[i]))
                i++;
            size_t vs = i;
            if (i < len && v[i] == '"') { /* a quoted-string: to its closing quote */
                i++;
                while (i < len && v[i] != '"')
                    i += (v[i] == '\\' && i + 1 < len) ? 2 : 1;
                if (i < len)
                    i++;
            } else {
                while (i < len && v[i] != ',' && !is_ows(v[i]))
                    i++;
            }
            val = v + vs;
            vl = i - vs;
        }
        if (ne > ns)
            directive(cc, v + ns, ne - ns, val, vl, has_value);
        while (i < len && v[i] != ',')
            i++;
    }
}

const struct gh_h1_header *
gh_cache_field(const struct gh_h1_header *hs, uint32_t n, const char *name)
{
    size_t len = strlen(name);
    for (uint32_t i = 0; i < n; i++)
        if (hs[i].name_len == len && gh_strncaseeq(hs[i].name, name, len))
            return &hs[i];
    return NULL;
}

void
gh_cc_of_fields(struct gh_cc *cc, const struct gh_h1_header *hs, uint32_t n, bool request)
{
    gh_cc_init(cc);
    if (!request) { /* RFC 9213 §2.1: the first valid, non-empty targeted field decides */
        for (uint32_t i = 0; i < n; i++)
            if (name_is(hs[i].name, hs[i].name_len, "cdn-cache-control"))
                gh_cc_parse(cc, hs[i].value, hs[i].value_len);
        if (cc->flags != 0 || cc->max_age != GH_CC_UNSET || cc->s_maxage != GH_CC_UNSET ||
            cc->stale_while_revalidate != GH_CC_UNSET || cc->stale_if_error != GH_CC_UNSET) {
            cc->flags |= GH_CC_TARGETED;
            return;
        }
        gh_cc_init(cc);
    }
    bool any = false;
    for (uint32_t i = 0; i < n; i++)
        if (name_is(hs[i].name, hs[i].name_len, "cache-control")) {
            gh_cc_parse(cc, hs[i].value, hs[i].value_len);
            any = true;
        }
    if (any || !request)
        return;
    /* RFC 9111 §5.4: Pragma: no-cache counts as no-cache only without Cache-Control */
    const struct gh_h1_header *p = gh_cache_field(hs, n, "pragma");
    if (p != NULL && p->value_len >= 8) {
        for (uint32_t i = 0; i + 8 <= p->value_len; i++)
            if (gh_strncaseeq(p->value + i, "no-cache", 8)) {
                cc->flags |= GH_CC_NO_CACHE | GH_CC_PRAGMA_NO_CACHE;
                break;
            }
    }
}

/* ------------------------------------------------------------------ */
/* dates                                                               */

static int
month_of(const char *p)
{
    static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    for (int m = 0; m < 12; m++)
        if (gh_lower((unsigned char)p[0]) == months[m * 3] &&
            gh_lower((unsigned char)p[1]) == months[m * 3 + 1] &&
            gh_lower((unsigned char)p[2]) == months[m * 3 + 2])
            return m;
    return -1;
}

/* Digits p[0..n) as a number, or -1. */
static int
digits(const char *p, size_t n)
{
    int x = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        x = x * 10 + (p[i] - '0');
    }
    return x;
}

/* Days from 1970-01-01 to y-m-d (m 0..11): the civil-from-days inverse (H. Hinnant). */
static int64_t
days_from_civil(int y, int m, int d)
{
    m += 1;
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* "HH:MM:SS" at p into seconds, or -1. */
static int
time_of_day(const char *p)
{
    if (p[2] != ':' || p[5] != ':')
        return -1;
    int h = digits(p, 2), mi = digits(p + 3, 2), s = digits(p + 6, 2);
    if (h < 0 || mi < 0 || s < 0 || h > 23 || mi > 59 || s > 60)
        return -1;
    return h * 3600 + mi * 60 + s;
}

static int
make_time(int y, int m, int d, int tod, int64_t *out)
{
    if (y < 0 || m < 0 || d < 1 || d > 31 || tod < 0)
        return -1;
    *out = days_from_civil(y, m, d) * 86400 + tod;
    return 0;
}

int
gh_http_date_parse(const char *v, size_t len, int64_t *out)
{
    const char *comma = memchr(v, ',', len);
    if (comma != NULL) {
        const char *p = comma + 1;
        size_t rest = len - (size_t)(p - v);
        /* IMF-fixdate: ", 06 Nov 1994 08:49:37 GMT" */
        if (rest == 25 && p[0] == ' ' && p[3] == ' ' && p[7] == ' ' && p[12] == ' ' &&
            p[21] == ' ' && memcmp(p + 22, "GMT", 3) == 0)
            return make_time(digits(p + 8, 4), month_of(p + 4), digits(p + 1, 2),
                             time_of_day(p + 13), out);
        /* RFC 850: ", 06-Nov-94 08:49:37 GMT" (two-digit years: RFC 9110 §5.6.7's 50-year
         * rule, read against 2000) */
        if (rest == 23 && p[0] == ' ' && p[3] == '-' && p[7] == '-' && p[10] == ' ' &&
            p[19] == ' ' && memcmp(p + 20, "GMT", 3) == 0) {
            int yy = digits(p + 8, 2);
            return make_time(yy < 0 ? -1 : (yy < 70 ? 2000 + yy : 1900 + yy), month_of(p + 4),
                             digits(p + 1, 2), time_of_day(p + 11), out);
        }
        return -1;
    }
    /* asctime: "Sun Nov  6 08:49:37 1994" */
    if (len == 24 && v[3] == ' ' && v[7] == ' ' && v[10] == ' ' && v[19] == ' ') {
        int d = v[8] == ' ' ? digits(v + 9, 1) : digits(v + 8, 2);
        return make_time(digits(v + 20, 4), month_of(v + 4), d, time_of_day(v + 11), out);
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* storage and freshness                                               */

bool
gh_cache_status_heuristic(int status)
{
    switch (status) {
    case 200:
    case 203:
    case 204:
    case 206:
    case 300:
    case 301:
    case 308:
    case 404:
    case 405:
    case 410:
    case 414:
    case 501:
        return true;
    default:
        return false;
    }
}

/* Statuses this cache understands (must-understand, RFC 9111 §5.2.2.3). */
static bool
understood(int status)
{
    return gh_cache_status_heuristic(status) || status == 302 || status == 303 || status == 307;
}

const char *
gh_store_verdict_name(enum gh_store_verdict v)
{
    static const char *const names[] = {"stored",    "method",   "status",
                                        "no-store",  "private",  "authorization",
                                        "vary-star", "no-fresh", "must-understand"};
    return (unsigned)v < GH_ARRAY_LEN(names) ? names[v] : "?";
}

/* Does the response carry explicit freshness (or Expires)? */
static bool
explicit_fresh(const struct gh_cc *cc, const struct gh_h1_header *hs, uint32_t n)
{
    return cc->max_age != GH_CC_UNSET || cc->s_maxage != GH_CC_UNSET ||
           (!(cc->flags & GH_CC_TARGETED) && gh_cache_field(hs, n, "expires") != NULL);
}

enum gh_store_verdict
gh_cache_storable(const struct gh_store_in *in)
{
    const struct gh_cc *rc = in->resp;
    if (in->method != GH_METHOD_GET)
        return GH_STORE_METHOD;
    if (in->status < 200 || in->status == 206 || in->status == 304 || in->status > 999)
        return GH_STORE_STATUS;
    if (rc->flags & GH_CC_MUST_UNDERSTAND) {
        if (!understood(in->status))
            return GH_STORE_UNDERSTAND;
    } else if ((rc->flags & GH_CC_NO_STORE) || (in->req->flags & GH_CC_NO_STORE)) {
        return GH_STORE_NO_STORE;
    }
    if (rc->flags & GH_CC_PRIVATE)
        return GH_STORE_PRIVATE;
    /* RFC 9111 §3.5 */
    if (in->req_authorization && !(rc->flags & (GH_CC_PUBLIC | GH_CC_MUST_REVALIDATE)) &&
        rc->s_maxage == GH_CC_UNSET)
        return GH_STORE_AUTH;
    const struct gh_h1_header *vary = gh_cache_field(in->fields, in->n_fields, "vary");
    for (uint32_t i = 0; vary != NULL && i < in->n_fields; i++) {
        const struct gh_h1_header *h = &in->fields[i];
        if (name_is(h->name, h->name_len, "vary") && memchr(h->value, '*', h->value_len) != NULL)
            return GH_STORE_VARY_STAR;
    }
    if (explicit_fresh(rc, in->fields, in->n_fields) || (rc->flags & GH_CC_PUBLIC) ||
        in->cache_valid >= 0 || gh_cache_status_heuristic(in->status) ||
        (rc->flags & GH_CC_NO_CACHE))
        return GH_STORE_OK;
    return GH_STORE_NO_FRESH;
}

/* A date field of hs, or -1 when absent or invalid. */
static int64_t
date_field(const struct gh_h1_header *hs, uint32_t n, const char *name, bool *present)
{
    const struct gh_h1_header *h = gh_cache_field(hs, n, name);
    int64_t t;
    if (present != NULL)
        *present = h != NULL;
    if (h == NULL || gh_http_date_parse(h->value, h->value_len, &t) != 0)
        return -1;
    return t;
}

/* The freshness lifetime (RFC 9111 §4.2.1, §4.2.2). */
static int64_t
lifetime(int status, const struct gh_cc *cc, const struct gh_h1_header *hs, uint32_t n,
         int64_t date, int64_t cache_valid)
{
    if (cc->s_maxage != GH_CC_UNSET)
        return cc->s_maxage;
    if (cc->max_age != GH_CC_UNSET)
        return cc->max_age;
    bool has_expires;
    int64_t expires = date_field(hs, n, "expires", &has_expires);
    if (has_expires && !(cc->flags & GH_CC_TARGETED)) /* an invalid date ("0"): expired */
        return expires > date ? expires - date : 0;
    if (cache_valid >= 0)
        return cache_valid;
    if (!gh_cache_status_heuristic(status) && !(cc->flags & GH_CC_PUBLIC))
        return 0;
    int64_t lm = date_field(hs, n, "last-modified", NULL);
    return lm >= 0 && lm < date ? (date - lm) / 10 : 0;
}

void
gh_cache_times_of(struct gh_cache_times *t, int status, const struct gh_cc *cc,
                  const struct gh_h1_header *hs, uint32_t n, int64_t request_time,
                  int64_t response_time, int64_t cache_valid)
{
    t->request_time = request_time;
    t->response_time = response_time;
    int64_t date = date_field(hs, n, "date", NULL);
    t->date = date >= 0 ? date : response_time;
    const struct gh_h1_header *age = gh_cache_field(hs, n, "age");
    t->age = age != NULL ? delta_seconds(age->value, age->value_len) : 0;
    t->lifetime = lifetime(status, cc, hs, n, t->date, cache_valid);
    t->swr = cc->stale_while_revalidate;
    t->sie = cc->stale_if_error;
    t->cc_flags = cc->flags;
    t->s_maxage = cc->s_maxage != GH_CC_UNSET;
}

int64_t
gh_cache_age(const struct gh_cache_times *t, int64_t now)
{
    int64_t apparent = t->response_time - t->date;
    if (apparent < 0)
        apparent = 0;
    int64_t delay = t->response_time - t->request_time;
    int64_t corrected = t->age + (delay > 0 ? delay : 0);
    int64_t initial = apparent > corrected ? apparent : corrected;
    int64_t resident = now - t->response_time;
    return initial + (resident > 0 ? resident : 0);
}

/* May it be served stale at all? (must-revalidate, proxy-revalidate, s-maxage: never) */
static bool
stale_forbidden(const struct gh_cache_times *t)
{
    return (t->cc_flags & (GH_CC_MUST_REVALIDATE | GH_CC_PROXY_REVALIDATE)) || t->s_maxage;
}

enum gh_reuse
gh_cache_reuse(const struct gh_cache_times *t, const struct gh_cc *req, int64_t now, int64_t *age)
{
    int64_t a = gh_cache_age(t, now);
    *age = a;
    if ((t->cc_flags & GH_CC_NO_CACHE) || (req->flags & GH_CC_NO_CACHE))
        return GH_REUSE_REVALIDATE;
    /* ages are whole seconds: a response stored a moment ago is "0" old but older than
     * max-age=0 asks for (the usual way to ask for a revalidation) */
    if (req->max_age != GH_CC_UNSET && (a > req->max_age || req->max_age == 0))
        return GH_REUSE_REVALIDATE;
    int64_t left = t->lifetime - a; /* > 0: fresh */
    if (req->min_fresh != GH_CC_UNSET && left < req->min_fresh)
        return GH_REUSE_REVALIDATE;
    if (left > 0)
        return GH_REUSE_FRESH;
    if (stale_forbidden(t))
        return GH_REUSE_REVALIDATE;
    int64_t stale = -left;
    if ((req->flags & GH_CC_MAX_STALE_ANY) ||
        (req->max_stale != GH_CC_UNSET && stale <= req->max_stale))
        return GH_REUSE_STALE_OK;
    if (t->swr != GH_CC_UNSET && stale < t->swr)
        return GH_REUSE_SWR;
    return GH_REUSE_REVALIDATE;
}

bool
gh_cache_stale_if_error(const struct gh_cache_times *t, const struct gh_cc *req, int64_t now)
{
    if (stale_forbidden(t))
        return false;
    int64_t stale = gh_cache_age(t, now) - t->lifetime;
    if (stale < 0)
        stale = 0;
    int64_t allow = t->sie;
    if (req->stale_if_error != GH_CC_UNSET && req->stale_if_error > allow)
        allow = req->stale_if_error;
    return allow != GH_CC_UNSET && stale <= allow;
}

/* ------------------------------------------------------------------ */
/* validators                                                          */

/* The opaque part of an entity-tag (without W/), or false when it is not one. */
static bool
opaque(const char *t, size_t len, const char **o, size_t *olen, bool *weak)
{
    *weak = len >= 2 && t[0] == 'W' && t[1] == '/';
    if (*weak) {
        t += 2;
        len -= 2;
    }
    if (len < 2 || t[0] != '"' || t[len - 1] != '"')
        return false;
    *o = t;
    *olen = len;
    return true;
}

bool
gh_etag_eq_strong(const char *a, size_t alen, const char *b, size_t blen)
{
    const char *oa, *ob;
    size_t la, lb;
    bool wa, wb;
    if (!opaque(a, alen, &oa, &la, &wa) || !opaque(b, blen, &ob, &lb, &wb) || wa || wb)
        return false;
    return la == lb && memcmp(oa, ob, la) == 0;
}

bool
gh_etag_match_weak(const char *v, size_t vlen, const char *etag, size_t elen)
{
    const char *oe;
    size_t le;
    bool we;
    bool have = etag != NULL && opaque(etag, elen, &oe, &le, &we);
    size_t i = 0;
    while (i < vlen) {
        while (i < vlen && (is_ows(v[i]) || v[i] == ','))
            i++;
        size_t s = i;
        if (i + 1 < vlen && v[i] == 'W' && v[i + 1] == '/')
            i += 2;
        if (i < vlen && v[i] == '"') {
            i++;
            while (i < vlen && v[i] != '"')
                i++;
            i += i < vlen;
        } else {
            while (i < vlen && v[i] != ',' && !is_ows(v[i]))
                i++;
        }
        if (i - s == 1 && v[s] == '*')
            return true; /* a stored response exists */
        const char *o;
        size_t l;
        bool w;
        if (have && opaque(v + s, i - s, &o, &l, &w) && l == le && memcmp(o, oe, l) == 0)
            return true;
        while (i < vlen && v[i] != ',')
            i++;
    }
    return false;
}

bool
gh_cache_not_modified(const struct gh_h1_header *req_fields, uint32_t nreq,
                      const struct gh_h1_header *stored, uint32_t nstored)
{
    const struct gh_h1_header *inm = gh_cache_field(req_fields, nreq, "if-none-match");
    if (inm != NULL) {
        const struct gh_h1_header *et = gh_cache_field(stored, nstored, "etag");
        return gh_etag_match_weak(inm->value, inm->value_len, et ? et->value : NULL,
                                  et ? et->value_len : 0);
    }
    const struct gh_h1_header *ims = gh_cache_field(req_fields, nreq, "if-modified-since");
    int64_t since;
    if (ims == NULL || gh_http_date_parse(ims->value, ims->value_len, &since) != 0)
        return false;
    int64_t lm = date_field(stored, nstored, "last-modified", NULL);
    if (lm < 0)
        lm = date_field(stored, nstored, "date", NULL);
    return lm >= 0 && lm <= since;
}

/* ------------------------------------------------------------------ */
/* Vary                                                                */

struct kw {
    char *p;
    size_t len, cap;
    bool overflow;
};

static void
kw_put(struct kw *w, const char *s, size_t n)
{
    if (w->overflow || w->cap - w->len < n) {
        w->overflow = true;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

/* One list member of a field value, OWS trimmed: advances *i past it. */
static bool
next_member(const char *v, size_t len, size_t *i, const char **m, size_t *mlen)
{
    while (*i < len && (is_ows(v[*i]) || v[*i] == ','))
        (*i)++;
    if (*i >= len)
        return false;
    size_t s = *i;
    while (*i < len && v[*i] != ',')
        (*i)++;
    size_t e = *i;
    while (e > s && is_ows(v[e - 1]))
        e--;
    *m = v + s;
    *mlen = e - s;
    return true;
}

/* Is the qvalue v[0..n) zero ("0", "0.0", "0.000"; trailing spaces allowed)? */
static bool
q_is_zero(const char *v, size_t n)
{
    while (n > 0 && is_ows(v[n - 1]))
        n--;
    if (n == 0 || v[0] != '0')
        return false;
    for (size_t i = 1; i < n; i++)
        if (v[i] != (i == 1 ? '.' : '0'))
            return false;
    return true;
}

/* Accept-Encoding's codings (lower-cased, without q=0 ones), sorted, joined by ','. */
static void
accept_encoding(struct kw *w, const struct gh_h1_header *hs, uint32_t n)
{
    const char *tok[16];
    size_t tl[16];
    int nt = 0;
    for (uint32_t f = 0; f < n; f++) {
        if (!name_is(hs[f].name, hs[f].name_len, "accept-encoding"))
            continue;
        size_t i = 0;
        const char *m;
        size_t ml;
        while (nt < 16 && next_member(hs[f].value, hs[f].value_len, &i, &m, &ml)) {
            const char *semi = memchr(m, ';', ml);
            size_t cl = semi ? (size_t)(semi - m) : ml;
            while (cl > 0 && is_ows(m[cl - 1]))
                cl--;
            if (semi != NULL) { /* q=0 (or 0.0...) refuses the coding */
                const char *q = semi + 1;
                size_t ql = ml - (size_t)(q - m);
                while (ql > 0 && is_ows(*q))
                    q++, ql--;
                if (ql >= 3 && gh_lower((unsigned char)q[0]) == 'q' && q[1] == '=' &&
                    q_is_zero(q + 2, ql - 2))
                    continue;
            }
            tok[nt] = m;
            tl[nt++] = cl;
        }
    }
    for (int a = 1; a < nt; a++) /* insertion sort, case-insensitively */
        for (int b = a; b > 0; b--) {
            size_t l = GH_MIN(tl[b - 1], tl[b]);
            int c = 0;
            for (size_t k = 0; k < l && c == 0; k++)
                c = gh_lower((unsigned char)tok[b - 1][k]) - gh_lower((unsigned char)tok[b][k]);
            if (c < 0 || (c == 0 && tl[b - 1] <= tl[b]))
                break;
            const char *t = tok[b];
            size_t x = tl[b];
            tok[b] = tok[b - 1], tl[b] = tl[b - 1];
            tok[b - 1] = t, tl[b - 1] = x;
        }
    for (int a = 0; a < nt; a++) {
        if (a > 0)
            kw_put(w, ",", 1);
        for (size_t k = 0; k < tl[a]; k++) {
            char c = (char)gh_lower((unsigned char)tok[a][k]);
            kw_put(w, &c, 1);
        }
    }
}

/* The values of the fields named name[0..nlen): members joined by ',' without spaces. */
static bool
field_values(struct kw *w, const char *name, size_t nlen, const struct gh_h1_header *hs, uint32_t n)
{
    bool any = false;
    for (uint32_t f = 0; f < n; f++) {
        if (hs[f].name_len != nlen || !gh_strncaseeq(hs[f].name, name, nlen))
            continue;
        size_t i = 0;
        const char *m;
        size_t ml;
        any = true;
        while (next_member(hs[f].value, hs[f].value_len, &i, &m, &ml)) {
            if (w->len > 0 && w->p[w->len - 1] != ':')
                kw_put(w, ",", 1);
            kw_put(w, m, ml);
        }
    }
    return any;
}

int
gh_cache_vary_key(const char *vary, size_t vlen, const struct gh_h1_header *req_fields, uint32_t n,
                  char *out, size_t cap)
{
    struct kw w = {out, 0, cap, false};
    size_t i = 0;
    const char *m;
    size_t ml;
    while (next_member(vary, vlen, &i, &m, &ml)) {
        if (ml == 1 && m[0] == '*')
            return -1;
        for (size_t k = 0; k < ml; k++) {
            char c = (char)gh_lower((unsigned char)m[k]);
            kw_put(&w, &c, 1);
        }
        if (name_is(m, ml, "accept-encoding")) {
            kw_put(&w, ":", 1);
            accept_encoding(&w, req_fields, n);
        } else {
            size_t mark = w.len;
            kw_put(&w, ":", 1);
            if (!field_values(&w, m, ml, req_fields, n) && !w.overflow)
                w.p[mark] = '!'; /* absent: differs from present and empty */
        }
        kw_put(&w, "\n", 1);
    }
    return w.overflow ? -1 : (int)w.len;
}

/* ------------------------------------------------------------------ */
/* ranges                                                              */

/* A decimal number in p[0..n), or -1 (none, or too large). */
static int64_t
dec(const char *p, size_t n)
{
    if (n == 0 || n > 18)
        return -1;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        x = x * 10 + (p[i] - '0');
    }
    return x;
}

int
gh_cache_range(const char *v, size_t vlen, uint64_t len, uint64_t *first, uint64_t *last)
{
    if (vlen < 6 || !gh_strncaseeq(v, "bytes=", 6))
        return 0;
    const char *r = v + 6;
    size_t rl = vlen - 6;
    while (rl > 0 && is_ows(*r))
        r++, rl--;
    while (rl > 0 && is_ows(r[rl - 1]))
        rl--;
    if (memchr(r, ',', rl) != NULL)
        return 0; /* several ranges: the whole body (a cache may ignore Range) */
    const char *dash = memchr(r, '-', rl);
    if (dash == NULL)
        return 0;
    int64_t a = dec(r, (size_t)(dash - r));
    int64_t b = dec(dash + 1, rl - (size_t)(dash - r) - 1);
    if (dash == r) { /* suffix: the last b bytes */
        if (b < 0)
            return 0;
        if (b == 0 || len == 0)
            return -1;
        *first = (uint64_t)b >= len ? 0 : len - (uint64_t)b;
        *last = len - 1;
        return 1;
    }
    if (a < 0 || (dash + 1 < r + rl && b < 0) || (b >= 0 && b < a))
        return 0;
    if ((uint64_t)a >= len)
        return -1;
    *first = (uint64_t)a;
    *last = b < 0 || (uint64_t)b >= len ? len - 1 : (uint64_t)b;
    return 1;
}
