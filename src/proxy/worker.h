/*
 * worker.h - internal to src/proxy/: the per-thread worker. It owns an event
 * loop, the thread's listening sockets, its client connections (sessions),
 * freelists and scratch buffers, the origin side (struct gh_upstream_ctx) and
 * the config generation in use; it knows nothing of HTTP. Accepted
 * connections go to the protocol of their listener (struct gh_proto), which
 * also drains and closes them.
 *
 * Lifetimes:
 *   session     accept -> close (the protocol's connection object embeds it).
 *   gh_wcfg     a config generation as this thread sees it: alive while it is
 *               current or an exchange that started on it runs.
 * Closing never frees at once: objects go to the loop's deferred frees, run
 * after the current batch, so no later event of the same batch can touch
 * freed memory (HAProxy: "no reachable pointer to freed memory").
 */
#ifndef GH_PROXY_WORKER_H
#define GH_PROXY_WORKER_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"
#include "core/buf.h"
#include "core/loop.h"
#include "net/listener.h"
#include "proxy/proxy.h"
#include "upstream/upstream.h"

struct gh_worker;
struct gh_session;

/* A config generation as one worker sees it; counted per thread (no atomics per request). */
struct gh_wcfg {
    struct gh_config *cfg; /* one reference held */
    uint32_t users;        /* exchanges, and the worker itself while current */
    struct gh_ups_gen *ups;
};

/* Take / drop a use of wc (the last drop of a generation that is no longer current frees it). */
static inline struct gh_wcfg *
gh_wcfg_use(struct gh_wcfg *wc)
{
    wc->users++;
    return wc;
}
void gh_wcfg_drop(struct gh_worker *w, struct gh_wcfg *wc);

/* What a listener's connections speak. */
struct gh_proto {
    const char *name;
    size_t conn_size;    /* its connection object (the worker's conn_fl) */
    size_t request_size; /* its per-request object (the worker's req_fl) */
    /* a connection was accepted on ls: the protocol owns fd from here on */
    void (*accept)(struct gh_worker *w, struct gh_lsock *ls, int fd,
                   const struct sockaddr_storage *peer);
    /* stop keep-alive: close now if idle, else after the response in progress */
    void (*drain)(struct gh_session *s);
    /* close now */
    void (*close)(struct gh_session *s);
};

/* A client connection as the worker sees it: on its list, drained and closed through its
 * protocol. Embedded in the protocol's connection object. */
struct gh_session {
    struct gh_session *prev, *next;
    struct gh_lsock *ls; /* the listener it came from; NULL once closed */
    const struct gh_proto *proto;
};

/* The HTTP/1 server side (h1_server.c). */
extern const struct gh_proto gh_h1_proto;

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

#define GH_WORKER_RESOLVERS 4

struct gh_dns;

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
    struct gh_session *sessions; /* open client connections */
    uint32_t n_sessions;

    struct gh_upstream_ctx ups; /* origin connections, pools, passive health */

    struct gh_freelist conn_fl;     /* the protocol's connection objects */
    struct gh_freelist req_fl;      /* the protocol's per-request objects */
    struct gh_freelist head_fl;     /* GH_SMALL_HEAD bytes: request heads kept for a retry */
    struct gh_freelist big_head_fl; /* GH_BIG_HEAD bytes: the same, for larger heads */

    char *scratch;  /* GH_BUF_SIZE: every read lands here unless a private buffer holds data */
    char *hscratch; /* GH_BUF_SIZE: heads are built here */
    char *uscratch; /* GH_BUF_SIZE: the normalised path while a request is routed */
    char *rscratch; /* GH_REWRITE_SCRATCH: rewriting's work (rewrite.c) */

    /* access log: per-thread buffer flushed at batch end (accesslog.c) */
    char *alog;
    uint32_t alog_len;
    char log_time[40]; /* the JSON access log's timestamp of the current second */
    int64_t log_time_sec;

    bool stopping;
    uint64_t drain_deadline;

    /* stats, read racily by the main thread */
    uint64_t st_accepted, st_requests;
    uint64_t st_cut;       /* requests in flight when the drain deadline closed their connection */
    uint64_t st_no_server; /* requests answered 503: no server of their upstream could be tried */
#define GH_PC_WFIELD(name, text) uint64_t st_##name;
    GH_PROTECT_COUNTERS(GH_PC_WFIELD) /* proxy.h */
#undef GH_PC_WFIELD

    /* the forward proxy's resolvers, one per distinct `resolver` setting (forward.c) */
    struct gh_dns *fwd_dns[GH_WORKER_RESOLVERS];
    char *fwd_dns_key[GH_WORKER_RESOLVERS];
};

/* rewrite.c's per-thread work area: expansion, current path, query, encoded target */
#define GH_REWRITE_SCRATCH (4 * GH_BUF_SIZE)

/* A block of at least n bytes for a head-sized copy (a request kept, the head for the origin):
 * from the 1 KiB or 8 KiB freelists, else malloc. *cap says which, for gh_worker_head_put.
 * NULL when out of memory. */
void *gh_worker_head_get(struct gh_worker *w, size_t n, uint32_t *cap);
void gh_worker_head_put(struct gh_worker *w, void *p, uint32_t cap);

/* Wake every worker's loop (any thread may call it): each one then resumes its requests that
 * wait for a cached object being filled (proxy/cache.c). */
void gh_worker_wake_all(void);

/* A gh_free_cb for gh_loop_defer_free: back to the freelist ctx. */
void gh_worker_free_obj(void *freelist, void *obj);

/* s was accepted on ls and speaks proto: put it on the worker's list. */
void gh_worker_session_add(struct gh_worker *w, struct gh_session *s, struct gh_lsock *ls,
                           const struct gh_proto *proto);
/* s is closed: take it off the list (and release its listener). Idempotent. */
void gh_worker_session_remove(struct gh_worker *w, struct gh_session *s);

#endif
