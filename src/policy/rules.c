/*
 * rules.c - matching access-rule conditions against a request (see rules.h).
 */
#include "policy/rules.h"

#include <string.h>

#include "policy/cidr.h"
#include "policy/geoip.h"
#include "policy/lpm.h"

/* Does v[0..len) meet c's comparison? */
static bool
cmp(const struct gh_rule_cond *c, const char *v, size_t len)
{
    switch (c->op) {
    case GH_RO_EQ:
        return len == c->val_len &&
               (c->icase ? gh_strncaseeq(v, c->val, len) : memcmp(v, c->val, len) == 0);
    case GH_RO_PREFIX:
        return len >= c->val_len && (c->icase ? gh_strncaseeq(v, c->val, c->val_len)
                                              : memcmp(v, c->val, c->val_len) == 0);
    case GH_RO_REGEX: {
        const size_t *ov;
        /* a match that hits PCRE2's limits counts as a match: a rule is not dodged by a
         * pathological value (deny rules fail closed; allow rules are rarely regexes) */
        return gh_conf_regex_match(c->re, v, len, &ov) != 0;
    }
    default:
        return true; /* PRESENT: the caller found it */
    }
}

/* The value of query argument name in q[0..qlen) ("a=1&b=2"; "a" alone has the empty value):
 * the first one, or NULL. */
static const char *
find_arg(const char *q, size_t qlen, const char *name, size_t nlen, size_t *vlen)
{
    size_t i = 0;
    while (i <= qlen && qlen > 0) {
        const char *amp = memchr(q + i, '&', qlen - i);
        size_t end = amp != NULL ? (size_t)(amp - q) : qlen;
        const char *eq = memchr(q + i, '=', end - i);
        size_t kend = eq != NULL ? (size_t)(eq - q) : end;
        if (kend - i == nlen && memcmp(q + i, name, nlen) == 0) {
            size_t vs = eq != NULL ? kend + 1 : end;
            *vlen = end - vs;
            return q + vs;
        }
        i = end + 1;
    }
    return NULL;
}

/* Does a cookie called c->name in any Cookie field meet c? ("a=1; b=2", RFC 6265 §4.2.1) */
static bool
match_cookie(const struct gh_rule_cond *c, const struct gh_rule_req *r)
{
    for (uint32_t f = 0; f < r->n_fields; f++) {
        const struct gh_h1_header *h = &r->fields[f];
        if (h->name_len != 6 || !gh_strncaseeq(h->name, "cookie", 6))
            continue;
        const char *p = h->value, *e = h->value + h->value_len;
        while (p < e) {
            while (p < e && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(e - p));
            const char *end = semi != NULL ? semi : e;
            const char *eq = memchr(p, '=', (size_t)(end - p));
            if (eq != NULL && (size_t)(eq - p) == c->name_len &&
                memcmp(p, c->name, c->name_len) == 0 && cmp(c, eq + 1, (size_t)(end - eq - 1)))
                return true;
            p = end;
        }
    }
    return false;
}

static bool
match_header(const struct gh_rule_cond *c, const struct gh_rule_req *r)
{
    for (uint32_t f = 0; f < r->n_fields; f++) {
        const struct gh_h1_header *h = &r->fields[f];
        if (h->name_len == c->name_len && gh_strncaseeq(h->name, c->name, c->name_len) &&
            cmp(c, h->value, h->value_len))
            return true;
    }
    return false;
}

static bool
match_method(const struct gh_rule_cond *c, const struct gh_rule_req *r)
{
    for (uint32_t i = 0; i < c->n_methods; i++)
        if (c->methods[i].len == r->method_len &&
            memcmp(c->methods[i].name, r->method, r->method_len) == 0)
            return true;
    return false;
}

/* The host without its port: "a.test:8080" -> "a.test", "[::1]:80" -> "[::1]". */
static size_t
host_name_len(const char *h, size_t len)
{
    if (len > 0 && h[0] == '[') {
        const char *rb = memchr(h, ']', len);
        return rb != NULL ? (size_t)(rb - h) + 1 : len;
    }
    const char *colon = memchr(h, ':', len);
    return colon != NULL ? (size_t)(colon - h) : len;
}

static bool
match_one(const struct gh_rule_cond *c, const struct gh_rule_req *r)
{
    const char *v;
    size_t len;
    switch (c->subj) {
    case GH_RS_CLIENT:
        return gh_cidr_set_find(c->clients, r->family, r->ip) != GH_CIDR_NONE;
    case GH_RS_METHOD:
        return match_method(c, r);
    case GH_RS_HOST:
        return r->host != NULL && cmp(c, r->host, host_name_len(r->host, r->host_len));
    case GH_RS_PATH:
        return cmp(c, r->path, r->path_len);
    case GH_RS_ARG:
        v = find_arg(r->query, r->query_len, c->name, c->name_len, &len);
        return v != NULL && cmp(c, v, len);
    case GH_RS_HEADER:
        return match_header(c, r);
    case GH_RS_COOKIE:
        return match_cookie(c, r);
    case GH_RS_SNI:
        return r->sni != NULL && cmp(c, r->sni, strlen(r->sni));
    case GH_RS_CERT:
        return r->cert != NULL && cmp(c, r->cert, strlen(r->cert));
    case GH_RS_GEO:
        gh_geo_value(c->geo, r->family, r->ip, &v, &len);
        return cmp(c, v, len);
    default:
        return false;
    }
}

void
gh_geo_value(const struct gh_geo *g, uint8_t family, const uint8_t *ip, const char **v, size_t *len)
{
    uint32_t i = gh_lpm_find(g->map, family, ip);
    if (i == GH_LPM_NONE && g->geoip != NULL && gh_geoip_lookup(g->geoip, family, ip, v, len))
        return;
    if (i == GH_LPM_NONE)
        i = 0;
    *v = g->values[i];
    *len = g->value_lens[i];
}

bool
gh_rule_match(const struct gh_rule_cond *c, uint32_t n, const struct gh_rule_req *r)
{
    for (uint32_t i = 0; i < n; i++)
        if (match_one(&c[i], r) == c[i].negate)
            return false;
    return true;
}

bool
gh_rule_needs_tls(const struct gh_rule_cond *c, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (c[i].subj == GH_RS_SNI || c[i].subj == GH_RS_CERT)
            return true;
    return false;
}
