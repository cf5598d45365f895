/*
 * rules.h - the conditions of access rules (`deny 403 if path ~ ^/admin and not client
 * 10.0.0.0/8;`), compiled when the config loads (conf/cond.c) and matched here against the
 * facts of a request: the client's address (prefix sets, policy/cidr.h), method, host, path
 * (exact, prefix or PCRE2), query arguments, header fields, cookies, the TLS SNI, the
 * client certificate's subject and the value a `geo` map gives the client's address. Matching
 * allocates nothing and reads the request in place.
 */
#ifndef GH_POLICY_RULES_H
#define GH_POLICY_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"
#include "http/h1.h"

/* What a condition looks at. */
enum gh_rule_subj {
    GH_RS_CLIENT = 1, /* the client's address in a prefix set */
    GH_RS_METHOD,     /* one of a list of methods */
    GH_RS_HOST,       /* the Host, without its port (case-insensitive for = and ^) */
    GH_RS_PATH,       /* the normalised path ($uri) */
    GH_RS_ARG,        /* a query argument's value, as sent */
    GH_RS_HEADER,     /* a request field's value (any field of that name) */
    GH_RS_COOKIE,     /* a cookie's value */
    GH_RS_SNI,        /* the TLS server name the client sent (none on plain connections) */
    GH_RS_CERT,       /* the client certificate's subject DN (none without one) */
    GH_RS_GEO,        /* the value a `geo $NAME` map gives the client's address */
};

/* How it compares. */
enum gh_rule_op {
    GH_RO_PRESENT = 0, /* the argument, field or cookie exists (any value) */
    GH_RO_EQ,          /* the value is exactly val */
    GH_RO_PREFIX,      /* the value starts with val */
    GH_RO_REGEX,       /* the PCRE2 re matches somewhere in the value */
};

struct gh_rule_cond {
    uint8_t subj;     /* enum gh_rule_subj */
    uint8_t op;       /* enum gh_rule_op */
    bool negate;      /* `not` */
    bool icase;       /* = and ^ ignore case (host, method, sni) */
    const char *name; /* the argument's, field's or cookie's name */
    uint32_t name_len;
    const char *val; /* EQ, PREFIX */
    uint32_t val_len;
    const struct pcre2_real_code_8 *re; /* REGEX */
    const struct gh_cidr_set *clients;  /* CLIENT */
    const struct gh_hdr_name *methods;  /* METHOD: the list (exact, case-sensitive) */
    uint32_t n_methods;
    const struct gh_geo *geo; /* GEO: the map */
};

/* The facts of a request a condition may look at (slices valid during the match). sni and
 * cert are NUL-terminated or NULL. */
struct gh_rule_req {
    uint8_t family; /* AF_INET, AF_INET6 */
    const uint8_t *ip;
    const char *method;
    uint32_t method_len;
    const char *host; /* may carry ":port" */
    uint32_t host_len;
    const char *path;
    uint32_t path_len;
    const char *query; /* without '?' */
    uint32_t query_len;
    const struct gh_h1_header *fields;
    uint32_t n_fields;
    const char *sni;
    const char *cert;
};

/* Do all of c[0..n) hold for r? (n == 0: true) */
bool gh_rule_match(const struct gh_rule_cond *c, uint32_t n, const struct gh_rule_req *r);

/* The value map g gives the address (family, ip): its longest prefix's, else the MaxMind
 * database's (`maxmind`), else the default. */
void gh_geo_value(const struct gh_geo *g, uint8_t family, const uint8_t *ip, const char **v,
                  size_t *len);

/* Does any of c[0..n) look at the TLS facts (so the caller fills sni and cert)? */
bool gh_rule_needs_tls(const struct gh_rule_cond *c, uint32_t n);

#endif
