/*
 * loop.c - epoll event loop, cached clock and lazy min-heap timers.
 */
#include "core/loop.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256
#define LOOP_MAX_HOOKS 16

struct hook {
    gh_defer_cb cb;
    void *arg;
};

struct grave {
    void *obj;
    gh_free_cb fn;
    void *ctx;
};

struct gh_loop {
    struct gh_loop_clock clock; /* first: read inline through loop.h */
    int epfd;
    struct gh_timer **heap; /* heap[0] is the earliest */
    uint32_t heap_len;
    uint32_t heap_cap;
    struct hook hooks[LOOP_MAX_HOOKS];
    uint32_t n_hooks;
    struct grave *grave; /* objects freed after the batch */
    uint32_t n_grave, cap_grave;
    struct gh_io wake_io; /* eventfd of gh_loop_set_wakeup; fd -1 without one */
    gh_defer_cb wake_cb;
    void *wake_arg;
    struct epoll_event events[LOOP_MAX_EVENTS];
};

void
gh_loop_update_time(struct gh_loop *l)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    l->clock.now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    l->clock.wall_s = ts.tv_sec;
}

struct gh_loop *
gh_loop_new(void)
{
    struct gh_loop *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd == -1) {
        int e = errno;
        free(l);
        errno = e;
        return NULL;
    }
    l->heap_cap = 1024;
    l->heap = calloc(l->heap_cap, sizeof(*l->heap));
    if (l->heap == NULL) {
        close(l->epfd);
        free(l);
        errno = ENOMEM;
        return NULL;
    }
    l->wake_io.fd = -1;
    gh_loop_update_time(l);
    return l;
}

static void grave_flush(struct gh_loop *l);

void
gh_loop_free(struct gh_loop *l)
{
    if (l == NULL)
        return;
    grave_flush(l);
    if (l->wake_io.fd >= 0)
        close(l->wake_io.fd);
    close(l->epfd);
    free(l->heap);
    free(l->grave);
    free(l);
}

int
gh_loop_add(struct gh_loop *l, struct gh_io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events | EPOLLET, .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) == -1)
        return -errno;
    return 0;
}

int
gh_loop_mod(struct gh_loop *l, struct gh_io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events | EPOLLET, .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) == -1)
        return -errno;
    return 0;
}

int
gh_loop_del(struct gh_loop *l, struct gh_io *io)
{
    if (epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL) == -1)
        return -errno;
    return 0;
}

/* ---- heap ---- */

static inline void
heap_place(struct gh_loop *l, uint32_t i, struct gh_timer *t)
{
    l->heap[i] = t;
    t->idx = i + 1;
}

static void
sift_up(struct gh_loop *l, uint32_t i)
{
    struct gh_timer *t = l->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (l->heap[parent]->heap_key <= t->heap_key)
            break;
        heap_place(l, i, l->heap[parent]);
        i = parent;
    }
    heap_place(l, i, t);
}

static void
sift_down(struct gh_loop *l, uint32_t i)
{
    struct gh_timer *t = l->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= l->heap_len)
            break;
        if (c + 1 < l->heap_len && l->heap[c + 1]->heap_key < l->heap[c]->heap_key)
            c++;
        if (t->heap_key <= l->heap[c]->heap_key)
            break;
        heap_place(l, i, l->heap[c]);
        i = c;
    }
    heap_place(l, i, t);
}

static void
heap_remove(struct gh_loop *l, struct gh_timer *t)
{
    uint32_t i = t->idx - 1;
    GH_ASSERT(i < l->heap_len && l->heap[i] == t);
    t->idx = 0;
    l->heap_len--;
    if (i == l->heap_len)
        return;
    struct gh_timer *last = l->heap[l->heap_len];
    heap_place(l, i, last);
    if (i > 0 && l->heap[(i - 1) / 2]->heap_key > last->heap_key)
        sift_up(l, i);
    else
        sift_down(l, i);
}

static void
heap_insert(struct gh_loop *l, struct gh_timer *t)
{
    if (l->heap_len == l->heap_cap) {
        uint32_t cap = l->heap_cap * 2;
        struct gh_timer **h = realloc(l->heap, cap * sizeof(*h));
        /* A timer that cannot be filed would leave a connection without a deadline;
         * the heap only grows with the number of connections, so this is start-up-sized. */
        GH_ASSERT(h != NULL);
        l->heap = h;
        l->heap_cap = cap;
    }
    heap_place(l, l->heap_len++, t);
    sift_up(l, l->heap_len - 1);
}

void
gh_timer_set(struct gh_loop *l, struct gh_timer *t, uint64_t when)
{
    if (when == 0)
        when = 1;
    t->when = when;
    if (t->idx != 0) {
        if (t->heap_key <= when)
            return; /* lazy: re-filed when it surfaces */
        t->heap_key = when;
        sift_up(l, t->idx - 1);
        return;
    }
    t->heap_key = when;
    heap_insert(l, t);
}

void
gh_timer_stop(struct gh_loop *l, struct gh_timer *t)
{
    t->when = 0;
    if (t->idx != 0)
        heap_remove(l, t);
}

static void
run_timers(struct gh_loop *l)
{
    while (l->heap_len > 0) {
        struct gh_timer *t = l->heap[0];
        if (t->heap_key > l->clock.now_ms)
            break;
        if (t->when > l->clock.now_ms) {
            /* postponed since it was filed: re-file under the real deadline */
            t->heap_key = t->when;
            sift_down(l, 0);
            continue;
        }
        heap_remove(l, t);
        t->when = 0;
        t->cb(t);
    }
}

static int
next_timeout(struct gh_loop *l, int max_wait_ms)
{
    if (l->n_hooks > 0 || l->n_grave > 0)
        return 0;
    if (l->heap_len == 0)
        return max_wait_ms;
    uint64_t key = l->heap[0]->heap_key;
    if (key <= l->clock.now_ms)
        return 0;
    uint64_t d = key - l->clock.now_ms;
    if (max_wait_ms >= 0 && d > (uint64_t)max_wait_ms)
        return max_wait_ms;
    return (int)d;
}

void
gh_loop_at_batch_end(struct gh_loop *l, gh_defer_cb cb, void *arg)
{
    for (uint32_t i = 0; i < l->n_hooks; i++)
        if (l->hooks[i].cb == cb && l->hooks[i].arg == arg)
            return;
    GH_ASSERT(l->n_hooks < LOOP_MAX_HOOKS);
    l->hooks[l->n_hooks++] = (struct hook){cb, arg};
}

static void
run_hooks(struct gh_loop *l)
{
    /* Hooks may register hooks; run until none are left (bounded by the table). */
    while (l->n_hooks > 0) {
        struct hook h = l->hooks[--l->n_hooks];
        h.cb(h.arg);
    }
}

void
gh_loop_defer_free(struct gh_loop *l, void *obj, gh_free_cb fn, void *ctx)
{
    if (l->n_grave == l->cap_grave) {
        uint32_t cap = l->cap_grave ? l->cap_grave * 2 : 64;
        struct grave *g = realloc(l->grave, cap * sizeof(*g));
        GH_ASSERT(g != NULL); /* bounded by the objects closed in one batch */
        l->grave = g;
        l->cap_grave = cap;
    }
    l->grave[l->n_grave++] = (struct grave){obj, fn, ctx};
}

static void
grave_flush(struct gh_loop *l)
{
    /* a free callback may defer more frees: they are in the array by the time i reaches them */
    for (uint32_t i = 0; i < l->n_grave; i++)
        l->grave[i].fn(l->grave[i].ctx, l->grave[i].obj);
    l->n_grave = 0;
}

static void run_hooks(struct gh_loop *l);

void
gh_loop_run_deferred(struct gh_loop *l)
{
    run_hooks(l);
    grave_flush(l);
}

static void
on_wake(struct gh_io *io, uint32_t events)
{
    struct gh_loop *l = gh_container_of(io, struct gh_loop, wake_io);
    uint64_t v;
    (void)events;
    while (read(io->fd, &v, sizeof(v)) == sizeof(v))
        ;
    l->wake_cb(l->wake_arg);
}

int
gh_loop_set_wakeup(struct gh_loop *l, gh_defer_cb cb, void *arg)
{
    GH_ASSERT(l->wake_io.fd == -1);
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd == -1)
        return -errno;
    l->wake_io.fd = fd;
    l->wake_io.cb = on_wake;
    l->wake_cb = cb;
    l->wake_arg = arg;
    int rc = gh_loop_add(l, &l->wake_io, EPOLLIN);
    if (rc != 0) {
        close(fd);
        l->wake_io.fd = -1;
    }
    return rc;
}

void
gh_loop_wake(struct gh_loop *l)
{
    uint64_t one = 1;
    /* only fails when the counter would overflow, i.e. a wake is pending anyway */
    ssize_t rc = write(l->wake_io.fd, &one, sizeof(one));
    (void)rc;
}

int
gh_loop_run_once(struct gh_loop *l, int max_wait_ms)
{
    int n = epoll_wait(l->epfd, l->events, LOOP_MAX_EVENTS, next_timeout(l, max_wait_ms));
    if (n == -1 && errno != EINTR)
        return -errno;
    gh_loop_update_time(l);
    for (int i = 0; i < n; i++) {
        struct gh_io *io = l->events[i].data.ptr;
        io->cb(io, l->events[i].events);
    }
    run_timers(l);
    run_hooks(l);
    grave_flush(l);
    return n < 0 ? 0 : n;
}
