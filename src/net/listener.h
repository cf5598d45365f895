/*
 * listener.h - listening sockets: the process-wide table (one SO_REUSEPORT
 * socket per address per worker thread) with its reconciliation on reload,
 * and the per-thread accepting side.
 *
 * Main thread: gh_listeners_plan() opens (or finds) the sockets of a new list
 * of addresses; addresses that stay keep their sockets, so no connection is
 * refused during a reload. The plan is then either committed (the table
 * becomes the plan; sockets of addresses that went away are closed by their
 * threads) or dropped (what it opened is closed, the table is unchanged).
 *
 * Worker thread: a gh_lsock watches one socket and hands each accepted
 * connection to its callback; it lives until it is closed and the last
 * connection accepted on it is gone (connections point at their lsock).
 */
#ifndef GH_NET_LISTENER_H
#define GH_NET_LISTENER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/loop.h"

/* One address to listen on. */
struct gh_listen_spec {
    const struct sockaddr_storage *ss;
    socklen_t len;
    int backlog;
    int defer_s;      /* TCP_DEFER_ACCEPT seconds (wake accept only when data came); 0: off */
    const char *text; /* for messages */
};

/* The sockets of one address: fds[t] for thread t. */
struct gh_listen_group {
    struct sockaddr_storage ss;
    socklen_t len;
    int *fds;
    bool reused; /* the address was already open: these are the current table's sockets */
    char *text;  /* the spec's text (own copy), for the log */
};

/* Sockets for a list of addresses, in the order given. */
struct gh_listen_plan {
    unsigned n;
    struct gh_listen_group *g;
};

struct gh_listeners;

/* A table for n_threads threads, with no sockets. Never NULL (start-up allocation). */
struct gh_listeners *gh_listeners_new(unsigned n_threads);

/*
 * Open or find the sockets of specs[0..n). A new address is first checked to
 * be free (a second process could otherwise share it silently through
 * SO_REUSEPORT). Returns 0 with *plan filled, or -errno after logging which
 * address failed; then nothing is left open and the table is unchanged.
 */
int gh_listeners_plan(struct gh_listeners *t, const struct gh_listen_spec *specs, unsigned n,
                      struct gh_listen_plan *plan);

/*
 * Make plan the table. Sockets of addresses not in it are left to their threads to close.
 * From the second commit on (a reload; the first is the start, which main.c logs), one info
 * line per address says what the reload did with it: "listener opened: ADDR",
 * "listener kept: ADDR" or "listener closed: ADDR (...)".
 */
void gh_listeners_commit(struct gh_listeners *t, struct gh_listen_plan *plan);

/* Forget plan, closing the sockets it opened. */
void gh_listeners_drop(struct gh_listeners *t, struct gh_listen_plan *plan);

/* Free the table (the threads have closed their sockets by then). NULL is fine. */
void gh_listeners_free(struct gh_listeners *t);

struct gh_lsock;

/*
 * A connection was accepted on ls: fd is non-blocking and close-on-exec, peer
 * its address. The callback owns fd from here on.
 */
typedef void (*gh_accept_cb)(struct gh_lsock *ls, int fd, const struct sockaddr_storage *peer);

struct gh_lsock {
    struct gh_io io;
    struct gh_loop *loop;
    gh_accept_cb on_accept;
    void *data;     /* the owner's */
    int32_t idx;    /* position in the current config's listeners; -1 once closed */
    uint32_t conns; /* connections accepted here and still open */
    bool freed;     /* handed to the loop for freeing */
    struct gh_lsock *next;
    struct gh_timer retry; /* accept again after EMFILE, or after a full batch */
    /* accept found no file descriptor: the owner may free some (idle pooled connections);
     * returns how many it freed (then accept is tried again at once). NULL: none. */
    uint32_t (*on_fd_shortage)(struct gh_lsock *ls);
};

/*
 * Watch the listening socket fd on loop (taking ownership of fd) and accept
 * what already waits. Returns the lsock, or NULL (fd closed, error logged).
 */
struct gh_lsock *gh_lsock_open(struct gh_loop *loop, int fd, int32_t idx, gh_accept_cb cb,
                               void *data);

/* Stop accepting: close the socket. ls is freed once its last connection is gone. */
void gh_lsock_close(struct gh_lsock *ls);

/* A connection accepted on ls took its place / is gone. */
static inline void
gh_lsock_conn_opened(struct gh_lsock *ls)
{
    ls->conns++;
}
void gh_lsock_conn_closed(struct gh_lsock *ls);

/* Free an lsock at once (thread exit, after its loop stopped). */
void gh_lsock_destroy(struct gh_lsock *ls);

#endif
