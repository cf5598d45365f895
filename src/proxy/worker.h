/*
 * worker.h - internal to src/proxy/: the per-thread worker and the objects
 * its event loop drives (client connections, requests, upstream connections).
 *
 * Lifetimes:
 *   gh_conn    accept -> close. Small (an idle keep-alive connection holds no
 *              buffer: `in`/`out` are taken only while bytes wait).
 *   gh_req     first byte of a head -> response fully sent. Holds the config
 *              generation it started on (wcfg) so a reload never changes a
 *              request half-way.
 *   gh_upconn  connect -> close; between requests it sits in its server's
 *              per-thread LIFO pool.
 * Closing never frees at once: the object goes to the worker's graveyard,
 * freed after the current event batch, so no later event of the same batch can
 * touch freed memory (HAProxy: "no reachable pointer to freed memory").
 */
#ifndef GH_PROXY_WORKER_H
#define GH_PROXY_WORKER_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "conf/conf.h"
#include "core/buf.h"
#include "core/loop.h"
#include "http/h1.h"
#include "net/listener.h"
#include "net/xprt.h"

struct gh_worker;
struct gh_req;

/* A config generation as one worker sees it; refcounted per thread (no atomics per request). */
struct gh_wcfg {
    struct gh_config *cfg; /* one reference held */
    uint32_t users;        /* requests and the worker itself while current */
    uint32_t *ups_off;     /* per upstream: offset of its servers in cw[] */
    int32_t *cw;           /* smooth weighted round robin current weights */
    uint32_t *rr;          /* per upstream: plain rotation counter (equal weights) */
};

#define C_CLOSE_AFTER 0x0008 /* close once the current response is written */
#define C_DEAD 0x0010        /* closed; waiting in the graveyard */
#define C_LINGER 0x0020      /* write side shut, discarding input before close */
#define C_IN_LIST 0x0040

enum conn_state { CS_IDLE = 0, CS_HEAD, CS_REQ, CS_TUNNEL, CS_LINGER };

struct gh_conn {
    struct gh_xprt x;
    struct gh_timer timer;
    struct gh_worker *w;
    struct gh_lsock *ls;
    struct gh_buf *in;  /* received bytes not yet processed */
    struct gh_buf *out; /* bytes for the client not yet written */
    struct gh_req *req;
    struct gh_conn *prev, *next; /* worker's list of connections */
    uint64_t t_first;            /* loop time of the current head's first byte (or of accept) */
    uint32_t nreq;
    uint32_t scanned; /* bytes of c->in the parser already saw as an incomplete head */
    uint16_t flags;
    uint8_t state;
    uint8_t family;
    uint16_t port;
    uint8_t ip[16];
};

#define U_CONNECTING 0x0004
#define U_REUSED 0x0008 /* came from the keep-alive pool */
#define U_DEAD 0x0010

struct gh_upconn {
    struct gh_xprt x;
    struct gh_timer timer;
    struct gh_worker *w;
    struct gh_req *req; /* NULL while pooled */
    struct gh_buf *in;  /* bytes from the origin not yet processed */
    struct gh_upconn *pool_prev, *pool_next;
    const struct gh_upstream_server *server; /* valid while a request uses it */
    uint32_t slot;
    uint32_t keepalive_ms; /* pool idle time */
    uint32_t nreq;
    uint16_t flags;
};

/* Per-thread keep-alive pool and passive health of one upstream address. */
struct gh_pool {
    struct gh_upconn *head;
    uint32_t count;
    uint64_t down_until; /* ms; skip this server until then (after a connect failure) */
};

/* Request heads kept for a retry come from two freelists: most heads fit in
 * 1 KiB, heads with large cookies or tokens in 8 KiB; only bigger ones (up to
 * max_head_size) are malloc'd. */
#define GH_SMALL_HEAD 1024
#define GH_BIG_HEAD 8192

/* A new config for one worker: its listening sockets to start watching (add)
 * and those that stay (keep), each with its index in the new config. */
struct gh_wmsg {
    struct gh_wmsg *next;
    struct gh_config *cfg; /* one reference */
    int *add_fds;
    int32_t *add_lidx;
    uint32_t n_add;
    int *keep_fds;
    int32_t *keep_lidx;
    uint32_t n_keep;
};

struct gh_worker {
    uint32_t id;
    pthread_t thread;
    bool started; /* the thread runs (or ran): join it */
    struct gh_loop *loop;

    struct gh_wcfg *cur; /* current generation */
    /* messages from main, queued under msg_lock and applied in order */
    pthread_mutex_t msg_lock;
    struct gh_wmsg *msg_head, *msg_tail;
    bool msg_stop;
    uint64_t msg_drain_ms;

    struct gh_lsock *lsocks;
    struct gh_conn *conns; /* list of open client connections */
    uint32_t nconns;
    uint32_t nupconns;

    struct gh_freelist conn_fl, req_fl, up_fl;
    struct gh_freelist head_fl;     /* GH_SMALL_HEAD bytes: request heads kept for a retry */
    struct gh_freelist big_head_fl; /* GH_BIG_HEAD bytes: the same, for larger heads */
    struct gh_freelist log_fl;      /* access-log fields of requests in flight */
    struct gh_pool *pools;          /* [GH_CONF_MAX_POOL_SLOTS] */

    char *scratch;  /* GH_BUF_SIZE: every read lands here unless a private buffer holds data */
    char *hscratch; /* GH_BUF_SIZE: response heads are built here */

    /* access log: per-thread buffer flushed at batch end */
    char *alog;
    uint32_t alog_len;
    int alog_fd;

    bool stopping;
    uint64_t drain_deadline;
    struct gh_timer drain_timer;

    char log_time[2][40]; /* access-log timestamps: combined, JSON */
    int64_t log_time_sec;

    /* stats, read racily by the main thread */
    uint64_t st_accepted, st_requests;
};

/* worker.c */
/* A gh_free_cb for gh_loop_defer_free: back to the freelist ctx. */
void gh_worker_free_obj(void *freelist, void *obj);
void gh_worker_conn_closed(struct gh_worker *w, struct gh_conn *c);
/* Access-log timestamp of the current second: "[26/Nov/2026:18:44:14 +0000]" (json=0) or
 * "2026-11-26T18:44:14Z" (json=1). Formatted once a second: localtime_r takes a lock. */
const char *gh_worker_log_time(struct gh_worker *w, int json);
void gh_worker_alog(struct gh_worker *w, const char *line, size_t len);

/* http1.c */
extern const size_t gh_http_req_size;
extern const size_t gh_http_log_info_size;
void gh_http_on_accept(struct gh_worker *w, struct gh_lsock *ls, int fd,
                       const struct sockaddr_storage *peer);
void gh_http_conn_close(struct gh_conn *c);
/* Stop keep-alive: close the connection now if idle, else after the current response. */
void gh_http_conn_drain(struct gh_conn *c);

/* upstream.c (pools and balancing, per thread) */
struct gh_wcfg *gh_wcfg_new(struct gh_config *cfg);
void gh_wcfg_free(struct gh_wcfg *wc);
/* Pick a server of ups for this thread (skips servers marked down unless all are). */
const struct gh_upstream_server *gh_balance_pick(struct gh_worker *w, struct gh_wcfg *wc,
                                                 const struct gh_upstream_conf *ups,
                                                 uint32_t attempt);
struct gh_upconn *gh_pool_take(struct gh_worker *w, uint32_t slot);
/* Park u in its pool (or close it when the pool is full). */
void gh_pool_put(struct gh_worker *w, struct gh_upconn *u, uint32_t max_idle);
void gh_pool_close_all(struct gh_worker *w);
void gh_upconn_close(struct gh_upconn *u);
void gh_upconn_mark_down(struct gh_worker *w, uint32_t slot);

#endif
