/*
 * vars.h - the values of variables for an exchange, and the expansion of
 * templates (conf/tmpl.h) into a head or a log line.
 *
 * Values are written straight into the output (no allocation): request
 * fields are read from the exchange's request (live while it starts, then
 * the copy kept for templates used later), the rest from the exchange.
 */
#ifndef GH_PROXY_VARS_H
#define GH_PROXY_VARS_H

#include <stddef.h>

#include "conf/tmpl.h"
#include "http/h1_write.h"
#include "proxy/exchange.h"

/* How values are written. */
enum gh_vars_esc {
    GH_ESC_NONE = 0, /* as they are (header values: control bytes become spaces) */
    GH_ESC_LOG,      /* nginx's default log escaping: '"', '\', controls, bytes >= 0x7f as \xXX;
                        an empty value is "-" */
    GH_ESC_JSON,     /* a JSON string's contents: \" \\ \n..., controls and invalid UTF-8 as
                        \u00XX, valid UTF-8 as it is */
    GH_ESC_URI,      /* percent-encoded as in a path (gh_uri_encode_path): a rewrite's captures and
                        $uri, so that decoding the result gives back exactly their bytes */
    GH_ESC_URI_ARG,  /* the same in a query: '&', '+' and ';' escaped too, as nginx's
                        NGX_ESCAPE_ARGS, so a capture is one value, not more parameters */
    GH_ESC_RAW,      /* as they are, control bytes included: for a caller that checks the result
                        (a redirect's URL) */
};

/* The captures of a rewrite's regex match, for $1..$9. */
struct gh_vars_caps {
    const char *subject;
    const size_t *ovector; /* PCRE2 pairs: start, end */
    uint32_t n;            /* pairs */
};

/* Append the expansion of t for ex to w. caps may be NULL outside rewrites. */
/* The value of cookie name[0..len) in the request's Cookie fields (the first one). */
bool gh_vars_cookie(const struct gh_exchange *ex, const char *name, size_t len, const char **v,
                    size_t *vl);

void gh_vars_expand(const struct gh_tmpl *t, struct gh_exchange *ex, struct gh_wr *w,
                    enum gh_vars_esc esc, const struct gh_vars_caps *caps);

/* Append the value of one variable (arg: the prefixed variables' name). */
void gh_vars_put(struct gh_exchange *ex, enum gh_var v, const char *arg, size_t arg_len,
                 struct gh_wr *w, enum gh_vars_esc esc);

/* From now on on this thread, write at most n bytes of each value (before escaping; SIZE_MAX:
 * all). For a log line that did not fit: written again with shorter values it keeps its
 * shape. */
void gh_vars_limit_values(size_t n);

/* Append s[0..n) to w escaped as esc says. */
void gh_vars_escape(struct gh_wr *w, const char *s, size_t n, enum gh_vars_esc esc);

#endif
