/*
 * h1client.h - the HTTP/1.1 client to origins: one connection (struct
 * gh_upconn), its connect, the request it sends (a head built by its user,
 * the body re-framed), the response it reads (parsed strictly, the body
 * de-framed), its timers, and the check that it may go back to its peer's
 * keep-alive pool.
 *
 * The user (the reverse proxy's origin source, a health check) attaches
 * through struct gh_upconn_ops and pumps: gh_upconn_send moves the head and
 * queued body bytes, gh_upconn_send_body hands more body, gh_upconn_recv
 * reads the response into a sink. Reads land in the thread's shared scratch
 * buffer; only bytes that cannot be handed on at once are kept in u->in, and
 * body bytes the origin does not take at once in u->out. A user hands no more
 * body while u->out holds bytes (gh_upconn_busy): that is the backpressure.
 *
 * States (GH_UPCONN_STATES): CONNECTING -> ACTIVE -> IDLE (pooled) -> ACTIVE
 * ... -> CLOSED. Closing defers the free to the end of the loop's batch.
 */
#ifndef GH_UPSTREAM_H1CLIENT_H
#define GH_UPSTREAM_H1CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/buf.h"
#include "core/loop.h"
#include "http/h1.h"
#include "net/xprt.h"
#include "upstream/upstream.h"

/* splice(2) carries the rest of a Content-Length response body of at least this many bytes */
#define GH_UPCONN_SPLICE_MIN (16 * 1024)
/* with splicing on, the first read of a response takes at most this much, so that most of a
 * large body is left in the socket for splice */
#define GH_UPCONN_SPLICE_HEAD_READ (16 * 1024)

#define GH_UPCONN_STATES(X)                                                                        \
    X(CONNECTING, "connecting")                                                                    \
    X(ACTIVE, "active")                                                                            \
    X(IDLE, "idle")                                                                                \
    X(CLOSED, "closed")

enum gh_upconn_state {
#define GH_UPCONN_ENUM(id, name) GH_UPCONN_##id,
    GH_UPCONN_STATES(GH_UPCONN_ENUM)
#undef GH_UPCONN_ENUM
};

/* Which timer fired. */
enum gh_upconn_timer {
    GH_UPCONN_T_CONNECT,    /* connect_ms passed while connecting (TLS: and handshaking) */
    GH_UPCONN_T_FIRST_BYTE, /* first_byte_ms passed since the request (or its last body byte) */
    GH_UPCONN_T_READ,       /* read_ms passed since the last response bytes */
};

struct gh_upconn;

/* What the user of a connection hears (never while it is pooled). */
struct gh_upconn_ops {
    /* readiness changed, or the connect completed (check gh_upconn_connect_error) */
    void (*on_event)(struct gh_upconn *u);
    void (*on_timeout)(struct gh_upconn *u, enum gh_upconn_timer which);
};

/* What a request asks of its connection. */
struct gh_upconn_params {
    uint32_t connect_ms;
    uint32_t first_byte_ms;
    uint32_t read_ms;
    uint32_t keepalive_ms;  /* idle time in the pool afterwards */
    uint32_t keepalive_max; /* idle connections a peer keeps (0: never pooled) */
    uint8_t req_body;       /* enum gh_h1_body of the request as sent: NONE, LENGTH or CHUNKED */
    bool head_request;      /* the request is HEAD: the response has no body */
    bool upgrade;           /* the request asked for an upgrade: a 101 may come */
    bool splice;            /* large bodies may be spliced: read the response head short */
};

/* Why a response failed: for the user's answer (status) and log (reason). */
struct gh_upconn_err {
    uint16_t status;      /* 502, or 503 when out of memory */
    bool before_response; /* nothing of a response came: the request may be retried */
    const char *reason;
};

/*
 * Where a response goes. Slices (head fields, body spans) point into the
 * read buffer and are valid during the call only.
 */
struct gh_upconn_sink {
    /*
     * A final response head (status >= 200, or 101) with body its framing.
     * Returns the room for body bytes that may go out with it in one write,
     * and sets *reframe when the receiver frames the body as chunks (so
     * room is kept for chunk-size lines); -1 when the sink ended the exchange.
     */
    ssize_t (*head)(void *ctx, const struct gh_h1_response *rs, enum gh_h1_body body,
                    bool *reframe);
    /* An interim 1xx other than 101. Returns 0 to go on, 1 to pause until the receiver has
     * taken it, -1 when the sink ended the exchange. */
    int (*interim)(void *ctx, const struct gh_h1_response *rs);
    /* De-framed body data (n may be 0 with done). Returns 0, or -1 when the sink ended the
     * exchange. */
    int (*body)(void *ctx, const struct iovec *spans, int n, bool done);
};

#define GH_UPCONN_REUSED 0x0001    /* came from the keep-alive pool */
#define GH_UPCONN_HEAD_SENT 0x0002 /* the request head is written */
#define GH_UPCONN_BODY_SENT 0x0004 /* request body bytes went out */
#define GH_UPCONN_REQ_DONE 0x0008  /* the whole request was handed over */
#define GH_UPCONN_GOT_BYTE 0x0010  /* response bytes came */
#define GH_UPCONN_HEAD_DONE 0x0020 /* the response head is parsed */
#define GH_UPCONN_PARSE_BUF 0x0040 /* u->in holds response bytes to parse before reading more */
#define GH_UPCONN_RESP_DONE 0x0080 /* the response is complete */
#define GH_UPCONN_REUSABLE 0x0100  /* the origin keeps the connection open after it */
#define GH_UPCONN_ABANDONED 0x0200 /* the origin stopped taking the request body */
#define GH_UPCONN_REFRAME 0x0400   /* the receiver re-frames the body as chunks */
#define GH_UPCONN_TLS_HS 0x0800    /* connected, the TLS handshake runs: connect_ms still counts */

struct gh_upconn {
    struct gh_xprt x;
    struct gh_timer timer;
    struct gh_upstream_ctx *ctx;
    struct gh_peer *peer;            /* a reference */
    const struct gh_upconn_ops *ops; /* NULL while pooled */
    void *owner;
    struct gh_buf *in;  /* response bytes not processed yet */
    struct gh_buf *out; /* request bytes the origin has not taken yet */
    struct gh_upconn *pool_prev, *pool_next;
    const char *head; /* the request head (the user's, borrowed until a response byte came) */
    uint32_t head_len;
    uint32_t head_sent;
    struct gh_upconn_params p;
    uint64_t resp_remaining;
    struct gh_h1_chunked resp_chunk;
    uint64_t t_connected;  /* loop ms: connection ready (pooled: taken) */
    uint64_t t_first_byte; /* loop ms: first response byte */
    struct gh_upconn_err err;
    int connect_errno; /* how the connect failed (0 while none did) */
    uint32_t nreq;
    uint16_t flags;
    uint8_t state;     /* enum gh_upconn_state */
    uint8_t resp_body; /* enum gh_h1_body of the response */
};

/* The state's name, for logs. */
const char *gh_upconn_state_name(enum gh_upconn_state s);

/*
 * A connection to peer (address ss/len) for owner: a pooled one unless fresh
 * is set, else a new non-blocking connect (CONNECTING until on_event; its
 * timer runs connect_ms), with TLS on it when tls is not NULL (the handshake
 * runs with the first send, resuming the peer's last session). Returns 0 with *out attached, or
 * -errno when the connect failed at once (nothing attached).
 */
int gh_upconn_open(struct gh_upstream_ctx *ctx, struct gh_peer *peer,
                   const struct sockaddr_storage *ss, socklen_t len,
                   const struct gh_tls_client *tls, bool fresh, const struct gh_upconn_params *p,
                   const struct gh_upconn_ops *ops, void *owner, struct gh_upconn **out);

/* A new connection to peer on fd, a socket already connected to it (a raced connect, see
 * net/race.h), which it now owns (closed on failure). As gh_upconn_open otherwise. */
int gh_upconn_adopt(struct gh_upstream_ctx *ctx, struct gh_peer *peer, int fd,
                    const struct gh_upconn_params *p, const struct gh_upconn_ops *ops, void *owner,
                    struct gh_upconn **out);

/* After on_event while CONNECTING: 0 when connected (the state is ACTIVE then), else an errno. */
int gh_upconn_connect_result(struct gh_upconn *u);

/*
 * Start the request: head (borrowed until gh_upconn_head_released says so, or
 * the connection is released) and whether a body follows (none: the request
 * is complete once the head is written). Nothing is written yet.
 */
void gh_upconn_start(struct gh_upconn *u, const char *head, size_t len, bool body_follows);

/*
 * Write what waits: the rest of the head, then body bytes queued in u->out.
 * Returns GH_PUMP_MOVED, GH_PUMP_BLOCKED, or -errno (the connection broke;
 * u->flags tell whether anything went out).
 */
int gh_upconn_send(struct gh_upconn *u);

/* Has gh_upconn_send anything to write? (the rest of the head, or queued body bytes) */
static inline bool
gh_upconn_has_output(const struct gh_upconn *u)
{
    return !(u->flags & GH_UPCONN_HEAD_SENT) || u->out != NULL;
}

/* Could gh_upconn_recv make progress? (the socket reported data, or response bytes wait in
 * u->in that need no new read) */
static inline bool
gh_upconn_has_input(const struct gh_upconn *u)
{
    return gh_xprt_is(&u->x, GH_XPRT_CAN_READ) ||
           (u->in != NULL && (u->flags & (GH_UPCONN_HEAD_DONE | GH_UPCONN_PARSE_BUF)) &&
            gh_buf_len(u->in) > 0);
}

/* May the user hand more request body? (the head is out and nothing is queued) */
static inline bool
gh_upconn_wants_body(const struct gh_upconn *u)
{
    return (u->flags & GH_UPCONN_HEAD_SENT) && u->out == NULL &&
           !(u->flags & (GH_UPCONN_REQ_DONE | GH_UPCONN_ABANDONED));
}

/*
 * Hand request body data spans (framed as the request declared: raw, or as
 * chunks); last ends the body (with the last chunk when chunked). What the
 * origin does not take at once is queued in u->out. Returns 0, or -errno when
 * the origin stopped reading (then the connection is ABANDONED: nothing more
 * is sent, and it is not pooled).
 */
int gh_upconn_send_body(struct gh_upconn *u, const struct iovec *spans, int n, bool last);

/* Request body bytes reached the origin another way (splice): the first-byte timer counts from
 * now. */
void gh_upconn_body_moved(struct gh_upconn *u);

/* The origin stopped taking the request body (a send failed): stop sending, read its answer. */
void gh_upconn_abandon_request(struct gh_upconn *u);

/* The transport, for splicing a request body into it or a response body out of it. */
static inline struct gh_xprt *
gh_upconn_xprt(struct gh_upconn *u)
{
    return &u->x;
}

/*
 * Read and process the response: the head is parsed strictly and given to
 * sink->head (1xx to sink->interim), the body de-framed to sink->body.
 * Returns GH_PUMP_MOVED, GH_PUMP_BLOCKED, GH_PUMP_ENDED (a sink callback
 * ended the exchange: do not touch u again), or GH_BAD with u->err set.
 */
int gh_upconn_recv(struct gh_upconn *u, const struct gh_upconn_sink *sink, void *ctx);

/* May the rest of the response body move by splice now? (Content-Length, at least
 * GH_UPCONN_SPLICE_MIN left, nothing buffered, a plain transport) */
bool gh_upconn_can_splice_body(const struct gh_upconn *u);

/*
 * Move the rest of a Content-Length body with splice(2): origin socket ->
 * pp -> to. *moved_in / *moved_out grow by the bytes taken and delivered. On
 * GH_SPLICE_DONE the response is complete; GH_SPLICE_IN_EOF / IN_ERR set u->err.
 */
enum gh_splice_rc gh_upconn_splice_body(struct gh_upconn *u, struct gh_pipe *pp, struct gh_xprt *to,
                                        uint64_t *moved_in, uint64_t *moved_out, int *err);

/* The timer of the current phase again from now (the user's verdict on a timeout: not the
 * origin's fault). */
void gh_upconn_rearm(struct gh_upconn *u, enum gh_upconn_timer which);

/*
 * The user is done with u. It goes back to its peer's pool when the request
 * and the response were complete, the origin keeps it open, nothing stray
 * is left to read, and the pool has room; otherwise it is closed.
 */
void gh_upconn_release(struct gh_upconn *u);

/* Close u now (its free is deferred to the end of the batch). */
void gh_upconn_close(struct gh_upconn *u);

/* Watch for writability if the last send fell short. */
static inline void
gh_upconn_watch_writes(struct gh_upconn *u)
{
    if (u->state != GH_UPCONN_CLOSED)
        gh_xprt_watch_writes(u->ctx->loop, &u->x);
}

#endif
