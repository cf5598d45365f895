/*
 * tmpl.h - templates: config text with variables ($host, ${http_user_agent},
 * $$ for a dollar sign), compiled when the config loads into literal pieces
 * and variable references, so nothing scans strings per request. The
 * variables and the contexts they exist in are listed once, below; the
 * expansion against a request is proxy/vars.c.
 *
 * Contexts (where a template is used) decide which variables exist there: a
 * variable that only exists later (say $status in a request_header rule) is
 * a config error, never an empty string at run time.
 */
#ifndef GH_CONF_TMPL_H
#define GH_CONF_TMPL_H

#include <stdint.h>

/* Contexts of templates. */
#define GH_TC_REQUEST 0x1u  /* request_header values, return bodies and URLs */
#define GH_TC_REWRITE 0x2u  /* rewrite replacements: the request's variables and $1..$9 */
#define GH_TC_RESPONSE 0x4u /* response_header values */
#define GH_TC_LOG 0x8u      /* log_format */
#define GH_TC_KEY 0x10u     /* keys computed before the origin is chosen: `balance hash KEY` */

/* Where a variable exists: a mask of contexts. */
#define GH_VA_REQ (GH_TC_REQUEST | GH_TC_REWRITE | GH_TC_RESPONSE | GH_TC_LOG | GH_TC_KEY)
#define GH_VA_RESP (GH_TC_RESPONSE | GH_TC_LOG)
#define GH_VA_LOG GH_TC_LOG

/*
 * The variables: id, name, where they exist, whether they need the request
 * (so a template used after the request's head is gone keeps a copy of it).
 * Names ending in '_' are prefixes: $http_NAME, $arg_NAME, $cookie_NAME.
 */
#define GH_VAR_TABLE(X)                                                                            \
    X(HOST, "host", GH_VA_REQ, 1)                                                                  \
    X(HOSTNAME, "hostname", GH_VA_REQ, 0)                                                          \
    X(REQUEST_URI, "request_uri", GH_VA_REQ, 1)                                                    \
    X(URI, "uri", GH_VA_REQ, 1)                                                                    \
    X(ARGS, "args", GH_VA_REQ, 1)                                                                  \
    X(IS_ARGS, "is_args", GH_VA_REQ, 1)                                                            \
    X(SCHEME, "scheme", GH_VA_REQ, 0)                                                              \
    X(REQUEST_METHOD, "request_method", GH_VA_REQ, 1)                                              \
    X(SERVER_PROTOCOL, "server_protocol", GH_VA_REQ, 0)                                            \
    X(REQUEST, "request", GH_VA_REQ, 1)                                                            \
    X(REMOTE_ADDR, "remote_addr", GH_VA_REQ, 0)                                                    \
    X(REMOTE_PORT, "remote_port", GH_VA_REQ, 0)                                                    \
    X(REMOTE_USER, "remote_user", GH_VA_REQ, 0)                                                    \
    X(PROXY_PROTOCOL_ADDR, "proxy_protocol_addr", GH_VA_REQ, 0)                                    \
    X(PROXY_PROTOCOL_PORT, "proxy_protocol_port", GH_VA_REQ, 0)                                    \
    X(SERVER_ADDR, "server_addr", GH_VA_REQ, 0)                                                    \
    X(SERVER_PORT, "server_port", GH_VA_REQ, 0)                                                    \
    X(SERVER_NAME, "server_name", GH_VA_REQ, 0)                                                    \
    X(REQUEST_ID, "request_id", GH_VA_REQ, 0)                                                      \
    X(TIME_LOCAL, "time_local", GH_VA_REQ, 0)                                                      \
    X(TIME_ISO8601, "time_iso8601", GH_VA_REQ, 0)                                                  \
    X(MSEC, "msec", GH_VA_REQ, 0)                                                                  \
    X(STATUS, "status", GH_VA_RESP, 0)                                                             \
    X(UPSTREAM_ADDR, "upstream_addr", GH_VA_RESP, 0)                                               \
    X(UPSTREAM_STATUS, "upstream_status", GH_VA_RESP, 0)                                           \
    X(BODY_BYTES_SENT, "body_bytes_sent", GH_VA_LOG, 0)                                            \
    X(BYTES_SENT, "bytes_sent", GH_VA_LOG, 0)                                                      \
    X(REQUEST_TIME, "request_time", GH_VA_LOG, 0)                                                  \
    X(UPSTREAM_CONNECT_TIME, "upstream_connect_time", GH_VA_LOG, 0)                                \
    X(UPSTREAM_HEADER_TIME, "upstream_header_time", GH_VA_LOG, 0)                                  \
    X(UPSTREAM_RESPONSE_TIME, "upstream_response_time", GH_VA_LOG, 0)                              \
    X(HTTPS, "https", GH_VA_REQ, 0)                                                                \
    X(SSL_PROTOCOL, "ssl_protocol", GH_VA_REQ, 0)                                                  \
    X(SSL_CIPHER, "ssl_cipher", GH_VA_REQ, 0)                                                      \
    X(SSL_SERVER_NAME, "ssl_server_name", GH_VA_REQ, 0)                                            \
    X(SSL_ALPN_PROTOCOL, "ssl_alpn_protocol", GH_VA_REQ, 0)                                        \
    X(SSL_SESSION_REUSED, "ssl_session_reused", GH_VA_REQ, 0)                                      \
    X(SSL_CLIENT_S_DN, "ssl_client_s_dn", GH_VA_REQ, 0)                                            \
    X(SSL_CLIENT_VERIFY, "ssl_client_verify", GH_VA_REQ, 0)                                        \
    X(PROXY_VERDICT, "proxy_verdict", GH_VA_LOG, 0)                                                \
    X(PROXY_GROUP, "proxy_group", GH_VA_LOG, 0)                                                    \
    X(PROXY_DEST, "proxy_dest", GH_VA_LOG, 1)                                                      \
    X(TUNNEL_BYTES_SENT, "tunnel_bytes_sent", GH_VA_LOG, 0)                                        \
    X(UPSTREAM_CACHE_STATUS, "upstream_cache_status", GH_VA_RESP, 0)                               \
    X(CACHE_BYTES, "cache_bytes", GH_VA_REQ, 0)                                                    \
    X(CACHE_OBJECTS, "cache_objects", GH_VA_REQ, 0)                                                \
    X(HTTP_, "http_", GH_VA_REQ, 1)                                                                \
    X(ARG_, "arg_", GH_VA_REQ, 1)                                                                  \
    X(COOKIE_, "cookie_", GH_VA_REQ, 1)

enum gh_var {
    GH_VAR_NONE = 0, /* a literal piece */
#define GH_VAR_ENUM(id, name, where, req) GH_VAR_##id,
    GH_VAR_TABLE(GH_VAR_ENUM)
#undef GH_VAR_ENUM
        GH_VAR_CAPTURE, /* $1..$9 of a rewrite: the number in len */
    GH_VAR_GEO,         /* a `geo $NAME` map's value: the map's index in len */
    GH_VAR__COUNT
};

/* One piece: literal text, or a variable (with its argument for the prefixed ones: the field
 * name lower-cased with '_' as '-' for $http_, the argument or cookie name as written). */
struct gh_tmpl_part {
    const char *text;
    uint32_t len;
    uint16_t var; /* enum gh_var; GH_VAR_NONE for a literal */
};

#define GH_TMPL_REQ 0x1u /* uses the request's head */
/* needs expanding: has a variable, or a "$$" to write as one dollar (else the text is used as it
 * is written) */
#define GH_TMPL_VARS 0x2u

struct gh_tmpl {
    const struct gh_tmpl_part *parts;
    uint32_t n;
    uint32_t flags; /* GH_TMPL_* */
};

/* The variable's name as written after '$' (prefixes end in '_'). */
const char *gh_var_name(enum gh_var v);

#endif
