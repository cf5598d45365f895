/*
 * loop.h - one event loop per worker thread: edge-triggered epoll, a cached
 * clock read once per batch, and timers kept in a binary min-heap with lazy
 * postponement (pushing a deadline later costs no heap work: the entry is
 * re-filed when it surfaces), so per-request timer updates are a store.
 *
 * Ownership (libuv): the caller owns every gh_io and gh_timer; the loop only
 * points at them. An io is registered once with all events it will ever want
 * (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET) and stays registered until its fd is
 * closed, so there is no epoll_ctl per request.
 */
#ifndef GH_CORE_LOOP_H
#define GH_CORE_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "core/common.h"

struct gh_loop;
struct gh_io;
struct gh_timer;

typedef void (*gh_io_cb)(struct gh_io *io, uint32_t events);
typedef void (*gh_timer_cb)(struct gh_timer *t);
typedef void (*gh_defer_cb)(void *arg);
typedef void (*gh_free_cb)(void *ctx, void *obj);

struct gh_io {
    int fd;
    uint32_t ready; /* the owner's readiness bits (net/xprt.h); the loop never touches them */
    gh_io_cb cb;
};

struct gh_timer {
    uint64_t when;     /* wanted deadline (ms, loop clock); 0 = stopped */
    uint64_t heap_key; /* deadline the heap entry was filed under */
    uint32_t idx;      /* position in the heap + 1; 0 = not in the heap */
    gh_timer_cb cb;
};

/* Create a loop (epoll instance, heap). Returns NULL on failure with errno set. */
struct gh_loop *gh_loop_new(void);
void gh_loop_free(struct gh_loop *l);

/* Register io->fd for events (EPOLLET is added). Returns 0 or -errno. */
int gh_loop_add(struct gh_loop *l, struct gh_io *io, uint32_t events);
/* Change the events of a registered io (EPOLLET is added). Returns 0 or -errno. */
int gh_loop_mod(struct gh_loop *l, struct gh_io *io, uint32_t events);
/* Unregister (before closing an fd that may be shared/dup'ed; plain close also works). */
int gh_loop_del(struct gh_loop *l, struct gh_io *io);

/* The clock every loop starts with (the rest of struct gh_loop is private):
 * read inline, as the hot path reads it several times per request. */
struct gh_loop_clock {
    uint64_t now_ms; /* monotonic ms, updated once per batch */
    int64_t wall_s;  /* wall-clock seconds, updated with it */
};

/* Current loop time in ms (monotonic), updated once per batch. */
static inline uint64_t
gh_loop_now(const struct gh_loop *l)
{
    return ((const struct gh_loop_clock *)(const void *)l)->now_ms;
}

/* Wall-clock seconds, updated with the loop time. */
static inline int64_t
gh_loop_wall(const struct gh_loop *l)
{
    return ((const struct gh_loop_clock *)(const void *)l)->wall_s;
}
/* Refresh the cached clock now (after a long computation). */
void gh_loop_update_time(struct gh_loop *l);

/* Arm t to fire at absolute loop time `when` (ms). Re-arming is cheap. */
void gh_timer_set(struct gh_loop *l, struct gh_timer *t, uint64_t when);
/* Arm t to fire after `ms` from now. */
static inline void
gh_timer_after(struct gh_loop *l, struct gh_timer *t, uint32_t ms)
{
    gh_timer_set(l, t, gh_loop_now(l) + ms);
}
/* Stop t; safe on a stopped timer. */
void gh_timer_stop(struct gh_loop *l, struct gh_timer *t);
static inline bool
gh_timer_active(const struct gh_timer *t)
{
    return t->when != 0;
}

/*
 * Run once per batch, after the events of the batch: cb(arg). At most one
 * pending hook per `slot` pointer (the caller's storage); used to flush
 * per-thread log buffers and to resume work that was deferred.
 */
void gh_loop_at_batch_end(struct gh_loop *l, gh_defer_cb cb, void *arg);

/*
 * Free obj with fn(ctx, obj) after the current batch (HAProxy: "no reachable
 * pointer to freed memory"): an object closed by one event may still be the
 * target of a later event or timer of the same batch, which must find it
 * intact (and marked closed by its owner). Never fails.
 */
void gh_loop_defer_free(struct gh_loop *l, void *obj, gh_free_cb fn, void *ctx);

/* Run the pending batch-end hooks and deferred frees now (at shutdown, before the
 * owners of the freelists they return objects to release them). */
void gh_loop_run_deferred(struct gh_loop *l);

/*
 * Cross-thread wake-up: after gh_loop_set_wakeup(l, cb, arg), any thread may
 * call gh_loop_wake(l), and the loop's thread runs cb(arg) once in one of its
 * next batches (several wakes before it runs may give one call). Returns 0 or
 * -errno. The loop owns the eventfd behind it.
 */
int gh_loop_set_wakeup(struct gh_loop *l, gh_defer_cb cb, void *arg);
void gh_loop_wake(struct gh_loop *l);

/*
 * Wait for events (at most max_wait_ms, or until the next timer) and dispatch
 * them, then expired timers, then the batch-end hooks, then the deferred
 * frees. Returns the number of events handled, or -errno.
 */
int gh_loop_run_once(struct gh_loop *l, int max_wait_ms);

#endif
