/*
 * h1_conn.h - internal to the HTTP/1 server side (h1_server.c, h1_down.c):
 * the client connection, the per-request stream, and their states.
 */
#ifndef GH_PROXY_H1_CONN_H
#define GH_PROXY_H1_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/loop.h"
#include "http/h1.h"
#include "net/xprt.h"
#include "proxy/exchange.h"
#include "proxy/worker.h"

#define H1_STATES(X)                                                                               \
    X(IDLE, "idle")       /* between requests */                                                   \
    X(HEAD, "head")       /* reading a request head */                                             \
    X(REQUEST, "request") /* an exchange runs (c->st) */                                           \
    X(REJECT, "reject")   /* answering a head that never became a request, then closing */         \
    X(TUNNEL, "tunnel")   /* raw bytes both ways after 101 */                                      \
    X(LINGER, "linger")   /* our side shut, discarding input before the close */                   \
    X(CLOSED, "closed")   /* waiting for the deferred free */                                      \
    X(PROXY, "proxy")     /* reading a PROXY protocol header, before anything else */

enum h1_state {
#define H1_ENUM(id, name) H1_##id,
    H1_STATES(H1_ENUM)
#undef H1_ENUM
};

#define C_CLOSE_AFTER 0x01 /* close once the current response is written */
#define C_PROXIED 0x02     /* addr came from a PROXY protocol header */

struct h1_stream;

struct gh_conn {
    struct gh_xprt x;
    struct gh_session s;
    struct gh_timer timer;
    struct gh_worker *w;
    struct gh_buf *in;  /* received bytes not yet processed */
    struct gh_buf *out; /* bytes for the client not yet written */
    struct h1_stream *st;
    uint64_t t_first; /* loop time of the current head's first byte (or of accept) */
    uint32_t nreq;
    uint32_t scanned; /* bytes of c->in the parser already saw as an incomplete head */
    uint8_t state;    /* enum h1_state */
    uint8_t flags;    /* C_* */
    struct gh_client_addr addr;
};

#define S_KEEPALIVE 0x01 /* the connection may be kept after this request */
#define S_EXPECT 0x02    /* the client waits for 100 Continue */
#define S_CHUNK_OUT 0x04 /* the response is re-framed as chunks */
#define S_CLIENT_10 0x08 /* an HTTP/1.0 client */

/* One request on the connection: the exchange and what HTTP/1 adds to it. */
struct h1_stream {
    struct gh_exchange ex;
    struct gh_conn *c;
    struct gh_h1_chunked req_chunk;
    uint64_t req_remaining; /* Content-Length body bytes still to come */
    uint64_t req_bytes;     /* body bytes received (de-framed) */
    uint64_t sent_mark;     /* bytes written to the client when send_timeout was last armed */
    uint32_t head_len;      /* a response head held in w->hscratch for the first body write */
    uint8_t req_body;       /* enum gh_h1_body of the request */
    uint8_t sflags;         /* S_* */
};

/* Change c's state (sanitizer builds check the allowed predecessors). */
void gh_h1s_set_state(struct gh_conn *c, enum h1_state to);

/* End the running exchange (logged, its source released) and free its stream. */
void gh_h1s_stream_end(struct gh_conn *c);

/* Close now (the exchange, if any, ends first). */
void gh_h1s_close(struct gh_conn *c);

/* Close after the client has read what was written: shut our side, discard what it still
 * sends for a while. */
void gh_h1s_linger(struct gh_conn *c);

/* Drive the connection after something happened outside its own events. */
void gh_h1s_resume(struct gh_conn *c);

/* The downstream side of the HTTP/1 connection's exchanges (h1_down.c). */
extern const struct gh_downstream_ops gh_h1_down;

static inline struct h1_stream *
gh_h1s_stream(struct gh_exchange *ex)
{
    return gh_container_of(ex, struct h1_stream, ex);
}

#endif
