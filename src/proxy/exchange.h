/*
 * exchange.h - one request and its response, whatever protocol the client
 * speaks: the seam between the client side (a downstream), where the
 * response comes from (a source), and the named phases where policies hook
 * in.
 *
 *   downstream  the client side. It parses a request, fills a struct
 *               gh_request, starts the exchange, and then writes what the
 *               source produces through struct gh_downstream_ops: the head,
 *               interim responses, body data with its end, or a cut. The
 *               HTTP/1 connection (h1_server.c) implements it now, an HTTP/2
 *               stream later. Keep-alive, pipelining, 100-continue and
 *               HTTP/1.0 rules are the downstream's; the exchange knows none.
 *   source      where the response comes from (struct gh_source_ops): the
 *               origin over the upstream HTTP/1 client (src_origin.c), an
 *               answer generated here (respond.c), a tunnel after 101
 *               (tunnel.c); the cache and the admin API later.
 *   phases      phase.h: accepted, routed, before the origin is chosen,
 *               response head, done.
 *
 * The exchange lives in the downstream's per-request object (it embeds
 * struct gh_exchange), from the first byte of a head to the end of its
 * response. It holds the config generation it started on, so a reload never
 * changes a request half-way.
 */
#ifndef GH_PROXY_EXCHANGE_H
#define GH_PROXY_EXCHANGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "conf/conf.h"
#include "core/spool.h"
#include "http/h1.h"
#include "net/pipe.h"
#include "net/xprt.h"
#include "upstream/upstream.h"

struct gh_exchange;
struct gh_worker;
struct gh_wcfg;
struct gh_upconn;
struct gh_cache_ex;

/* The client's address as the downstream accepted it. */
struct gh_client_addr {
    uint8_t family; /* AF_INET, AF_INET6 */
    uint16_t port;
    uint8_t ip[16];
};

/* The IP as text ("1.2.3.4", "::1"), NUL-terminated; its length, 0 on failure. */
size_t gh_client_ip_str(const struct gh_client_addr *a, char *out, size_t cap);

/*
 * A parsed request as the exchange sees it. Slices point into the
 * downstream's read buffer and are valid until gh_exchange_start returns:
 * whatever must outlive that (the head for the origin, log fields) is copied
 * during the start.
 */
struct gh_request {
    const char *method;
    uint32_t method_len;
    uint8_t method_id;   /* enum gh_h1_method */
    uint8_t target_form; /* enum gh_h1_target_form */
    uint8_t version;     /* 10, 11 */
    uint8_t body;        /* enum gh_h1_body: NONE, LENGTH or CHUNKED */
    uint16_t h1flags;    /* GH_H1_F_* of the head (Connection tokens, Upgrade, ...) */
    const char *target;  /* as received */
    uint32_t target_len;
    const char *host; /* the Host field; NULL when absent */
    uint32_t host_len;
    const struct gh_h1_header *fields;
    uint32_t n_fields;
    uint64_t content_length;               /* with body LENGTH */
    const struct gh_listen_conf *listener; /* NULL: its listener went away in a reload */
    const char *raw; /* the head's bytes, which every slice above points into */
    uint32_t raw_len;
    /* set by gh_exchange_start: the origin-form path and query as received (absolute form:
     * its path part), and host becomes the absolute form's authority */
    const char *path;
    uint32_t path_len;
};

#define GH_RESP_OWN_FIELDS 0x0001 /* fields written by Gatehouse: not filtered as received ones */
#define GH_RESP_CLOSE 0x0002      /* the client connection ends after this response */

/* A response head as a source hands it to the downstream (slices valid during the call). */
struct gh_resp {
    uint16_t status;
    uint8_t version; /* of the message received (10, 11): for Via; 0 when generated here */
    uint8_t body;    /* enum gh_h1_body: how the body that follows is delimited */
    uint16_t h1flags;
    uint16_t flags; /* GH_RESP_* */
    const char *reason;
    uint32_t reason_len; /* 0: the standard phrase */
    const struct gh_h1_header *fields;
    uint32_t n_fields;
    int64_t content_length; /* the length to declare; -1: none */
    /* field lines ("Name: value\r\n"...) the proxy adds after the fields (the cache's Age and
     * Cache-Status); NULL: none */
    const char *extra;
    uint32_t extra_len;
};

/* One side of a tunnel: its transport and its pending buffers. */
struct gh_tunnel_end {
    struct gh_xprt *x;
    struct gh_buf **in;  /* bytes received from this side and not yet relayed */
    struct gh_buf **out; /* bytes for this side it has not taken yet */
    uint64_t *sent;      /* grows by the bytes this side took (NULL: not counted) */
    /* where the pipe for bytes going to this side is kept while it holds some (splice(2)
     * between two plain sockets); NULL: bytes are copied */
    struct gh_pipe **pipe;
};

/*
 * The client side. Functions that may end the exchange say so: after they
 * return -1 / GH_PUMP_ENDED the exchange is gone (the connection was closed).
 */
struct gh_downstream_ops {
    /*
     * The response head. It may be held back to go out with the first body
     * bytes in one write. Returns the room (bytes) those may take, and sets
     * *reframe when the body is re-framed as chunks; -1 when it ended.
     */
    ssize_t (*send_head)(struct gh_exchange *ex, const struct gh_resp *resp, bool *reframe);
    /* An interim (1xx) response: 0 written or dropped, 1 queued (the client has not
     * taken it all), -1 ended. */
    int (*send_interim)(struct gh_exchange *ex, const struct gh_resp *resp);
    /* Body data (with the held head, if any) in one write; done ends the body. Returns 0, or -1
     * when it ended. */
    int (*send_body)(struct gh_exchange *ex, const struct iovec *spans, int n, bool done);
    /* Write what is queued (GH_EX_OUT_QUEUED is set): GH_PUMP_MOVED when it all went (the flag
     * is cleared), GH_PUMP_BLOCKED, GH_PUMP_ENDED. */
    int (*flush)(struct gh_exchange *ex);
    /* The client's transport when the rest of a body may move to it by splice now, else NULL. */
    struct gh_xprt *(*splice_to)(struct gh_exchange *ex);
    /* Move request body from the client to the source (ex->src->take_body), as far as it goes:
     * GH_PUMP_MOVED, GH_PUMP_BLOCKED or GH_PUMP_ENDED. */
    int (*pump_body)(struct gh_exchange *ex);
    /* The exchange completed: the downstream ends it and goes on (keep-alive) or closes. */
    void (*finish)(struct gh_exchange *ex);
    /* The response was switched to a tunnel (101): the downstream relays raw bytes. */
    void (*tunnel)(struct gh_exchange *ex);
    /* Cut the client connection now (the response cannot be completed). */
    void (*abort)(struct gh_exchange *ex);
    /* The local address of the client's connection (for $server_addr). 0 or -errno. */
    int (*local_addr)(struct gh_exchange *ex, struct sockaddr_storage *ss);
    /* Something happened on the source's side outside the client's events: drive it. */
    void (*resume)(struct gh_exchange *ex);
};

/* Where the response comes from. */
struct gh_source_ops {
    const char *name;
    /* Push the request toward the source (head, body): GH_PUMP_* (NULL: takes nothing). */
    int (*send)(struct gh_exchange *ex);
    /* Produce response into the downstream: GH_PUMP_*. Called only when the downstream has
     * drained its output. */
    int (*recv)(struct gh_exchange *ex);
    /* May it take request body now? (NULL: never) */
    bool (*wants_body)(const struct gh_exchange *ex);
    /* Take request body data spans; last ends the body: GH_PUMP_MOVED or GH_PUMP_ENDED. */
    int (*take_body)(struct gh_exchange *ex, const struct iovec *spans, int n, bool last);
    /* The transport request body may be spliced into now, or NULL. */
    struct gh_xprt *(*body_splice_to)(struct gh_exchange *ex);
    /* Request body bytes reached it by splice (in: taken from the client, out: delivered);
     * end: 0 more to come, 1 the body ended, -1 the source stopped taking it. */
    void (*body_spliced)(struct gh_exchange *ex, uint64_t in, uint64_t out, int end);
    /* The exchange ends: let go of what it holds (connections back to their pool or closed).
     * Called again after a failure or at the end: idempotent. */
    void (*release)(struct gh_exchange *ex);
    /* After a 101: the source's side of the tunnel (0), or -1 when it has none. */
    int (*tunnel_end)(struct gh_exchange *ex, struct gh_tunnel_end *end);
};

#define GH_EX_HEAD_METHOD 0x0001  /* HEAD: the response has no body */
#define GH_EX_UPGRADE 0x0002      /* the client asked for a protocol upgrade */
#define GH_EX_REQ_DONE 0x0004     /* the client's request body ended (or there was none) */
#define GH_EX_RESP_DONE 0x0008    /* the response is fully produced (maybe still queued) */
#define GH_EX_RESP_STARTED 0x0010 /* some response byte went to the client */
#define GH_EX_RETRIED 0x0020      /* retried once after a keep-alive race */
#define GH_EX_CLOSE 0x0040        /* the client connection ends after this exchange */
#define GH_EX_BODY_SENT 0x0080    /* request body bytes were taken from the client for the origin */
#define GH_EX_FAILED 0x0100       /* answered by gh_exchange_fail */
/* The downstream holds output the client has not taken yet: a source produces more only when
 * this is clear (the backpressure). The downstream sets and clears it. */
#define GH_EX_OUT_QUEUED 0x0200
/* cut by the drain deadline: logged with 444 when no response had started */
#define GH_EX_CUT 0x0400
#define GH_EX_TLS 0x0800           /* the request came over TLS */
#define GH_EX_CONNECT 0x1000       /* a forward proxy's CONNECT: a tunnel after its 200 */
#define GH_EX_CONN_COUNTED 0x2000  /* counted for limit_conn (access.c gives it back at the end) */
#define GH_EX_PROXIED 0x4000       /* the connection's address came from a PROXY protocol header */
#define GH_EX_CACHE_REFRESH 0x8000 /* the cache's background refresh (proxy/cache_refresh.c) */

#define GH_EX_STATES(X)                                                                            \
    X(START, "start")     /* the head is being routed */                                           \
    X(RUNNING, "running") /* a source produces the response */                                     \
    X(TUNNEL, "tunnel")   /* raw bytes both ways after 101 */                                      \
    X(ENDED, "ended")     /* logged and released; the downstream frees it */

enum gh_ex_state {
#define GH_EX_ENUM(id, name) GH_EX_##id,
    GH_EX_STATES(GH_EX_ENUM)
#undef GH_EX_ENUM
};

/* Where a buffered request body is (`request_buffering`). */
enum gh_spool_state {
    GH_SPOOL_NONE = 0, /* the body streams to the origin (or there is none) */
    GH_SPOOL_FILLING,  /* being read from the client; no origin chosen yet */
    GH_SPOOL_REPLAY,   /* whole; being sent to the origin */
    GH_SPOOL_SENT,     /* sent (or the origin stopped taking it) */
};

/* A generated answer (respond.c). body and location must outlive the exchange (config text). */
struct gh_gen {
    const char *body; /* NULL: the standard page for the status */
    uint32_t body_len;
    uint32_t body_sent;   /* a long body goes out over several writes */
    const char *location; /* redirects */
    uint32_t location_len;
    bool close;            /* the connection ends after it */
    uint32_t retry_after;  /* seconds for a Retry-After field (503: no server available, 429);
                              0: none */
    const char *challenge; /* a Proxy-Authenticate value (407), config text; NULL: none */
    uint32_t challenge_len;
    bool html; /* body is HTML (a page from a file), not text */
};

/* What the forward proxy made of a request ($proxy_verdict). */
enum gh_fwd_verdict {
    GH_FWD_NONE = 0,    /* not a forward proxy's request */
    GH_FWD_ALLOWED,     /* relayed (or tried to: the status tells how that went) */
    GH_FWD_BLOCKED,     /* a domain rule blocked it */
    GH_FWD_AUTH_FAILED, /* no login, or a wrong one */
    GH_FWD_DENIED,      /* a port outside connect_ports, a private destination, a bad request */
};

struct gh_exchange {
    const struct gh_downstream_ops *down;
    const struct gh_source_ops *src;
    struct gh_worker *w;
    struct gh_wcfg *wc; /* the config generation it started on (counted as a user) */
    /* the client's address: the connection's (peer), or the one trusted proxies gave
     * (real_ip_from), kept in real_addr. $remote_addr, access rules, limits and logs use it;
     * X-Forwarded-For and Forwarded append the peer. */
    const struct gh_client_addr *client;
    const char *user; /* $remote_user: the login that passed `auth` (config text), or NULL */
    uint32_t user_len;
    const struct gh_client_addr *peer;
    struct gh_client_addr real_addr;
    const struct gh_xprt *cx; /* the client's transport (for its TLS facts) */
    const struct gh_listen_conf *listener;
    const struct gh_server_conf *srv;
    const struct gh_proxy_conf *pc;
    /* the request: the downstream's while the exchange starts, then the copy kept for
     * templates used later (cfg->keep_request), or NULL */
    const struct gh_request *req;
    void *kept; /* the block the copy lives in */
    uint32_t kept_cap;
    const char *uri; /* $uri: the normalised path, or what rewriting made of it */
    uint32_t uri_len;
    const char *args; /* $args: the query (without '?') */
    uint32_t args_len;
    const char *target; /* what the origin gets: the path and query as received, or rewritten */
    uint32_t target_len;
    const char *raw_line; /* a head rejected before it became a request: its first line */
    uint32_t raw_line_len;
    /* the origin source */
    struct gh_ups_try up;
    struct gh_upconn *u;
    uint8_t req_body; /* enum gh_h1_body of the request toward the origin */
    char *fwd_head;   /* the request head for the origin, kept for a retry until a response byte */
    uint32_t fwd_head_len;
    uint32_t fwd_head_cap;
    char *pp_head; /* `send_proxy`: a PROXY header and fwd_head, for one new connection */
    uint32_t pp_head_cap;
    uint8_t spool_state; /* enum gh_spool_state (spool below) */
    /* the Host the client used, kept behind fwd_head (for proxy_redirect), in the same block
     * (pub_block once the head is no longer kept for a retry); NULL: none */
    const char *pub_host;
    uint32_t pub_host_len;
    char *pub_block;
    uint8_t up_outcome;        /* enum gh_balance_outcome of the current attempt */
    struct gh_pipe *resp_pipe; /* response body moving by splice(2) */
    struct gh_pipe *req_pipe;  /* request body moving by splice(2) */
    void *fwd;                 /* the forward proxy's destination (forward.c) */
    const char *fwd_group;     /* $proxy_group: the forward proxy group of the client, or NULL */
    uint64_t tunnel_up;        /* $tunnel_bytes_sent: bytes a tunnel delivered to the far end */
    uint8_t fwd_verdict;       /* $proxy_verdict: enum gh_fwd_verdict */
    struct gh_cache_ex *cache; /* its dealings with the cache (proxy/cache.c), or NULL */
    /* a generated answer */
    struct gh_gen gen;
    struct gh_buf *gen_buf; /* its body and Location when they had variables */
    /* the rate_limit whose RateLimit-Policy / RateLimit fields go on the response (refused, or
     * passing with rate_limit_headers on: the one with the fewest requests left); NULL: none */
    const struct gh_rate_limit *rl;
    uint32_t rl_remaining;
    uint32_t rl_reset_s;
    /* for the log */
    const char *fail_reason;
    uint64_t bytes_out;
    uint32_t head_bytes; /* of bytes_out: the response head's */
    uint64_t t_start, t_head, t_connect, t_first_byte, t_up_done;
    uint16_t up_status; /* the origin's answer */
    bool has_id;
    uint8_t request_id[16];
    uint16_t status;
    uint16_t flags; /* GH_EX_* */
    uint8_t method; /* enum gh_h1_method */
    uint8_t version;
    uint8_t state; /* enum gh_ex_state */
    /* Not cleared by gh_exchange_init (only read once set up; less to clear per request): */
    /* `request_buffering`: the body read whole before an origin is chosen, then replayed to
     * it (from the start again on a retry); valid while spool_state is not GH_SPOOL_NONE */
    struct gh_spool spool;
    /* `queue`: waiting for a server at max_conns (timer.cb NULL until the first wait) */
    struct gh_ups_wait up_wait;
};

/* The state's name, for logs. */
const char *gh_exchange_state_name(enum gh_ex_state s);

/* Every state change goes through here; sanitizer builds check the allowed predecessor. */
void gh_exchange_set_state(struct gh_exchange *ex, enum gh_ex_state to);

/*
 * Set up ex for a new request from down on worker w (the current config
 * generation becomes its); cx is the client's transport. t_start is when the head's first byte
 * came.
 */
void gh_exchange_init(struct gh_exchange *ex, const struct gh_downstream_ops *down,
                      struct gh_worker *w, const struct gh_client_addr *client,
                      const struct gh_xprt *cx, uint64_t t_start);

/*
 * A complete request: route it (server by Host, route by normalised path),
 * run the routed and pre-origin phases, and start a source. Whatever it needs
 * from req's slices is copied before it returns. req is the downstream's,
 * used up by the call: its path (and, for an absolute-form target, its host)
 * are set here. The exchange is then RUNNING (answered or on its way); drive
 * it with gh_exchange_advance.
 */
void gh_exchange_start(struct gh_exchange *ex, struct gh_request *req);

/*
 * Move the exchange as far as it goes. Returns GH_PUMP_BLOCKED when it waits
 * for readiness, GH_PUMP_ENDED when it ended (completed, failed and closed,
 * or switched to a tunnel) - then the caller re-reads its own state.
 */
int gh_exchange_advance(struct gh_exchange *ex);

/*
 * The exchange cannot be completed. If nothing of the response went out, the
 * client gets a generated page with status (the connection closes after it,
 * unless the request was whole and the failure the origin's) and
 * GH_PUMP_MOVED is returned: drive on to send it. Otherwise the connection
 * is cut and GH_PUMP_ENDED returned. reason goes to the error log.
 */
int gh_exchange_fail(struct gh_exchange *ex, int status, const char *reason);

/*
 * The downstream is done with ex (completed, or its connection closes): the
 * done phase runs (access log), the source lets go, the config generation is
 * released. Idempotent.
 */
void gh_exchange_end(struct gh_exchange *ex);

/* The origin source (src_origin.c): build the head for the origin (ex->target), choose a
 * server and connect. */
void gh_origin_start(struct gh_exchange *ex, const struct gh_request *req);

/* The forward proxy's destination is known (ex->up.direct): the origin source connects
 * (src_origin.c). A GH_PUMP_* code. */
int gh_origin_go(struct gh_exchange *ex);

/* Answer ex from here (respond.c): status with g's body or location. */
void gh_respond(struct gh_exchange *ex, int status, const struct gh_gen *g);

/* The same with the body (or, for a redirect, the Location) expanded from t now, while the
 * request is there. Returns GH_OK, or 500 when the expansion does not fit a buffer. */
int gh_respond_tmpl(struct gh_exchange *ex, int status, const struct gh_tmpl *t, bool location);

/* The same with text[0..len) copied (it need not outlive the call). GH_OK, or 500 when it does
 * not fit a buffer. */
int gh_respond_copy(struct gh_exchange *ex, int status, const char *text, size_t len,
                    bool location);

/* Routing and rewriting (rewrite.c): the server's rewrites on ex->uri, the route for the result
 * (ex->pc), the route's rewrites (searching the routes again as nginx does, up to 10 times), its
 * prefix replacement; sets ex->target for the origin. Returns GH_OK, GH_DECLINED (answered with
 * a redirect), or 500 (ex->fail_reason says why; ex->pc is set in every case). */
int gh_rewrite_route(struct gh_exchange *ex);

/* Tunnel (tunnel.c): when a tunnel that started (its request came) at t_start and just moved
 * bytes ends: after tunnel_idle_timeout without traffic, or at tunnel_timeout from its start. */
uint64_t gh_tunnel_deadline(struct gh_loop *l, const struct gh_proxy_conf *pc, uint64_t t_start);

/* Tunnel (tunnel.c): relay raw bytes between a and b until both have closed. Returns
 * GH_PUMP_BLOCKED, or GH_PUMP_ENDED when the tunnel is over (both sides closed, or one failed). */
int gh_tunnel_pump(struct gh_worker *w, struct gh_tunnel_end *a, struct gh_tunnel_end *b);

#endif
