/*
 * tls.h - TLS as a transport layer (OpenSSL 3): contexts built when a config
 * loads, and the layer a connection carries (struct gh_xprt_layer).
 *
 * Above this file nothing sees OpenSSL: a TLS connection is a gh_xprt whose
 * receive and send go through the layer, with the same readiness rules as a
 * plain socket (xprt.h). Ciphertext goes through a BIO of our own over the
 * socket: reads learn from a short read that the socket is empty (the plain
 * transport's rule, so a request still costs one read), writes collect the
 * records of one send in a buffer and leave in one write. A record that could
 * not leave stays in that buffer (at most one buffer per connection) and the
 * plaintext behind it is reported as taken only once it is on the socket, so
 * the caller keeps it until then as it would on a plain socket.
 *
 * Contexts are SSL_CTX objects, shared by every thread, freed when their
 * config is (connections hold their own references).
 */
#ifndef GH_NET_TLS_H
#define GH_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/xprt.h"

struct gh_tls_ctx; /* an SSL_CTX */

/* What a problem reported while building a context is about (for its position). */
enum gh_tls_item {
    GH_TLS_I_CERT = 0, /* certs[idx] */
    GH_TLS_I_KEY,      /* keys[idx] */
    GH_TLS_I_PROTOCOLS,
    GH_TLS_I_CIPHERS,
    GH_TLS_I_SUITES,
    GH_TLS_I_OCSP,
    GH_TLS_I_CLIENT_CA,
    GH_TLS_I_TICKET_KEY, /* ticket_keys[idx] */
    GH_TLS_I_OTHER,
};

/* Called for each problem; warning: the context is still built. */
typedef void (*gh_tls_report_fn)(void *arg, enum gh_tls_item item, uint32_t idx, bool warning,
                                 const char *msg);

#define GH_TLS_V12 0x1u
#define GH_TLS_V13 0x2u

enum gh_tls_verify { GH_TLS_VERIFY_OFF = 0, GH_TLS_VERIFY_ON, GH_TLS_VERIFY_OPTIONAL };

struct gh_tls_server_opts {
    const char *const *certs; /* PEM chain files, leaf first; certs[i] pairs with keys[i] */
    const char *const *keys;
    uint32_t n_certs;
    unsigned protocols;       /* GH_TLS_V12 | GH_TLS_V13 */
    const char *ciphers;      /* TLS 1.2 list; NULL: the default */
    const char *ciphersuites; /* TLS 1.3; NULL: OpenSSL's */
    bool prefer_server;
    uint32_t session_cache; /* sessions kept; 0: no cache */
    uint32_t session_timeout_s;
    bool tickets;
    const char *const
        *ticket_keys; /* files of 80 (or 48) bytes; none: keys made and rotated here */
    uint32_t n_ticket_keys;
    const char *ocsp_file; /* DER OCSP response; NULL: none */
    const char *client_ca; /* NULL: no client certificates asked */
    enum gh_tls_verify verify_client;
    uint32_t verify_depth;
};

/* A server context, or NULL after reporting why (errors through rep). */
struct gh_tls_ctx *gh_tls_server_ctx_new(const struct gh_tls_server_opts *o, gh_tls_report_fn rep,
                                         void *arg);

struct gh_tls_client_opts {
    const char *ca_file; /* NULL: the system's store */
    bool verify;
    const char *cert; /* client certificate for the origin; NULL: none */
    const char *key;
};

/* A client context (to origins), or NULL after reporting why. */
struct gh_tls_ctx *gh_tls_client_ctx_new(const struct gh_tls_client_opts *o, gh_tls_report_fn rep,
                                         void *arg);

/* Drop a context reference (NULL is fine). */
void gh_tls_ctx_free(void *ctx);

/* One server name of a TLS listener, with its server's context. */
struct gh_tls_sni {
    const char *name; /* lower-case; a wildcard's suffix (".b.test") */
    uint32_t len;
    bool wildcard;
    struct gh_tls_ctx *ctx;
};

/* What a TLS listener gives its connections: the default context and the names that switch
 * to another (exact names first, then wildcards longest first). Reference-counted: the config
 * holds one, each connection one until its handshake is over. */
struct gh_tls_listen;
struct gh_tls_listen *gh_tls_listen_new(struct gh_tls_ctx *dflt, const struct gh_tls_sni *names,
                                        uint32_t n);
void gh_tls_listen_unref(void *l);

/*
 * An id for a set of client TLS settings (key: any text that tells them apart), the same for
 * the same text for the life of the process, never 0: upstream peers are keyed by it, so
 * pools of differently verified connections never mix and survive reloads. Main thread only.
 */
uint32_t gh_tls_client_id(const char *key);

/* Put the server side of TLS on the accepted transport x. 0 or -ENOMEM. */
int gh_tls_accept(struct gh_xprt *x, struct gh_tls_listen *l);

/*
 * Put the client side of TLS on x (connecting): name is sent as SNI (unless an IP literal) and
 * checked against the certificate when the context verifies. *sess is the peer's session slot
 * (NULL or a session from an earlier connection; kept up to date). 0 or -ENOMEM.
 */
int gh_tls_connect(struct gh_xprt *x, struct gh_tls_ctx *ctx, const char *name, void **sess);

/* Free a session slot's content. */
void gh_tls_session_free(void *sess);

/* Facts about a TLS transport, for variables; NULL / false for a plain one. Strings are
 * static or live as long as the connection. */
bool gh_tls_is(const struct gh_xprt *x);
const char *gh_tls_protocol(const struct gh_xprt *x);
const char *gh_tls_cipher(const struct gh_xprt *x);
const char *gh_tls_server_name(const struct gh_xprt *x);
const char *gh_tls_alpn(const struct gh_xprt *x, uint32_t *len);
bool gh_tls_reused(const struct gh_xprt *x);
const char *gh_tls_client_dn(const struct gh_xprt *x);
const char *gh_tls_client_verify(const struct gh_xprt *x);
/* The context of a TLS transport (after SNI chose it), or NULL. */
struct gh_tls_ctx *gh_tls_ctx_of(const struct gh_xprt *x);

/* Why the last operation failed ("certificate verify failed: hostname mismatch"), or NULL. */
const char *gh_tls_error(const struct gh_xprt *x);

struct gh_tls_stats {
    uint64_t handshakes; /* completed, as server */
    uint64_t resumed;    /* of those, resumed sessions */
    uint64_t failed;     /* failed handshakes, as server */
};
void gh_tls_get_stats(struct gh_tls_stats *st);

#endif
