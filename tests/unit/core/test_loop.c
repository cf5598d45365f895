/*
 * test_loop.c - the event loop's timers (lazy min-heap) and I/O dispatch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/loop.c"

static int fired[64];
static int fire_order[64];
static int n_fired;

struct tt {
    struct gh_timer t;
    int id;
};

static void
on_fire(struct gh_timer *t)
{
    struct tt *x = gh_container_of(t, struct tt, t);
    fired[x->id]++;
    fire_order[n_fired++] = x->id;
}

static void
reset(void)
{
    memset(fired, 0, sizeof(fired));
    n_fired = 0;
}

static void
test_timers_fire_in_order(void **state)
{
    (void)state;
    reset();
    struct gh_loop *l = gh_loop_new();
    assert_non_null(l);
    struct tt t[10];
    uint64_t base = gh_loop_now(l);
    /* deadlines in scrambled order, all in the past relative to base+100 */
    int order[10] = {5, 2, 9, 0, 7, 1, 8, 3, 6, 4};
    for (int i = 0; i < 10; i++) {
        t[i].id = order[i];
        t[i].t = (struct gh_timer){0};
        t[i].t.cb = on_fire;
        gh_timer_set(l, &t[i].t, base + 1 + (uint64_t)order[i]);
    }
    l->clock.now_ms = base + 100;
    run_timers(l);
    assert_int_equal(n_fired, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(fire_order[i], i);
    assert_int_equal(l->heap_len, 0);
    gh_loop_free(l);
}

static void
test_timer_postpone_is_lazy_and_correct(void **state)
{
    (void)state;
    reset();
    struct gh_loop *l = gh_loop_new();
    struct tt a = {.id = 1};
    a.t.cb = on_fire;
    uint64_t base = gh_loop_now(l);
    gh_timer_set(l, &a.t, base + 10);
    gh_timer_set(l, &a.t, base + 50); /* postponed: heap key stays, when moves */
    assert_int_equal(a.t.heap_key, base + 10);
    assert_int_equal(a.t.when, base + 50);
    l->clock.now_ms = base + 20;
    run_timers(l);
    assert_int_equal(fired[1], 0); /* re-filed, not fired */
    assert_int_equal(a.t.heap_key, base + 50);
    l->clock.now_ms = base + 50;
    run_timers(l);
    assert_int_equal(fired[1], 1);
    assert_false(gh_timer_active(&a.t));
    gh_loop_free(l);
}

static void
test_timer_advance_earlier(void **state)
{
    (void)state;
    reset();
    struct gh_loop *l = gh_loop_new();
    struct tt a = {.id = 1}, b = {.id = 2};
    a.t.cb = b.t.cb = on_fire;
    uint64_t base = gh_loop_now(l);
    gh_timer_set(l, &a.t, base + 100);
    gh_timer_set(l, &b.t, base + 50);
    gh_timer_set(l, &a.t, base + 10); /* earlier: must move up */
    l->clock.now_ms = base + 10;
    run_timers(l);
    assert_int_equal(fired[1], 1);
    assert_int_equal(fired[2], 0);
    gh_loop_free(l);
}

static void
test_timer_stop(void **state)
{
    (void)state;
    reset();
    struct gh_loop *l = gh_loop_new();
    struct tt t[5];
    uint64_t base = gh_loop_now(l);
    for (int i = 0; i < 5; i++) {
        t[i].id = i;
        t[i].t = (struct gh_timer){0};
        t[i].t.cb = on_fire;
        gh_timer_set(l, &t[i].t, base + 5 + (uint64_t)i);
    }
    gh_timer_stop(l, &t[2].t);
    gh_timer_stop(l, &t[0].t);
    gh_timer_stop(l, &t[0].t); /* twice is fine */
    l->clock.now_ms = base + 100;
    run_timers(l);
    assert_int_equal(n_fired, 3);
    assert_int_equal(fired[0] + fired[2], 0);
    gh_loop_free(l);
}

static void
test_heap_grows_and_stays_ordered(void **state)
{
    (void)state;
    reset();
    struct gh_loop *l = gh_loop_new();
    enum { N = 5000 };
    struct gh_timer *ts = calloc(N, sizeof(*ts));
    uint64_t base = gh_loop_now(l);
    uint32_t seed = 12345;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245 + 12345;
        ts[i].cb = on_fire;
        gh_timer_set(l, &ts[i], base + 1 + (seed >> 16) % 1000);
    }
    /* stop every third, postpone every fifth */
    for (int i = 0; i < N; i += 3)
        gh_timer_stop(l, &ts[i]);
    for (int i = 1; i < N; i += 5)
        gh_timer_set(l, &ts[i], ts[i].when ? ts[i].when + 500 : base + 1);
    int expected = 0;
    for (int i = 0; i < N; i++)
        if (ts[i].when != 0)
            expected++;
    uint64_t last = 0;
    int count = 0;
    for (uint64_t now = base; now <= base + 2000; now += 7) {
        l->clock.now_ms = now;
        while (l->heap_len > 0 && l->heap[0]->heap_key <= now) {
            struct gh_timer *t = l->heap[0];
            if (t->when > now) {
                t->heap_key = t->when;
                sift_down(l, 0);
                continue;
            }
            assert_true(t->when >= last || t->when <= now);
            heap_remove(l, t);
            t->when = 0;
            count++;
        }
        last = now;
    }
    assert_int_equal(count, expected);
    assert_int_equal(l->heap_len, 0);
    free(ts);
    gh_loop_free(l);
}

static int io_hits;
static void
on_io(struct gh_io *io, uint32_t ev)
{
    (void)ev;
    char b[16];
    while (read(io->fd, b, sizeof(b)) > 0)
        ;
    io_hits++;
}

static int hook_runs;
static void
hook(void *arg)
{
    (void)arg;
    hook_runs++;
}

static void
test_io_dispatch_and_hooks(void **state)
{
    (void)state;
    struct gh_loop *l = gh_loop_new();
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct gh_io io = {.fd = sv[0], .cb = on_io};
    assert_int_equal(gh_loop_add(l, &io, EPOLLIN), 0);
    assert_int_equal(write(sv[1], "x", 1), 1);
    io_hits = 0;
    hook_runs = 0;
    gh_loop_at_batch_end(l, hook, NULL);
    gh_loop_at_batch_end(l, hook, NULL); /* same hook once per batch */
    assert_true(gh_loop_run_once(l, 1000) >= 1);
    assert_int_equal(io_hits, 1);
    assert_int_equal(hook_runs, 1);
    /* edge triggered: no new data, no new event */
    assert_int_equal(gh_loop_run_once(l, 10), 0);
    assert_int_equal(io_hits, 1);
    close(sv[0]);
    close(sv[1]);
    gh_loop_free(l);
}

/* Deferred frees run after the batch, in order, and may defer more. */
static int freed[8];
static int n_freed;
static struct gh_loop *defer_loop;

static void
free_rec(void *ctx, void *obj)
{
    int id = (int)(intptr_t)obj;
    freed[n_freed++] = id;
    if (ctx != NULL) /* a free that frees another object, as a closing connection may */
        gh_loop_defer_free(defer_loop, (void *)(intptr_t)(id + 10), free_rec, NULL);
}

static void
test_defer_free_after_batch(void **state)
{
    (void)state;
    struct gh_loop *l = gh_loop_new();
    defer_loop = l;
    n_freed = 0;
    gh_loop_defer_free(l, (void *)(intptr_t)1, free_rec, NULL);
    gh_loop_defer_free(l, (void *)(intptr_t)2, free_rec, (void *)1);
    assert_int_equal(n_freed, 0); /* nothing before the batch ends */
    /* pending frees make the loop not wait */
    assert_int_equal(gh_loop_run_once(l, 5000), 0);
    assert_int_equal(n_freed, 3);
    assert_int_equal(freed[0], 1);
    assert_int_equal(freed[1], 2);
    assert_int_equal(freed[2], 12);
    gh_loop_defer_free(l, (void *)(intptr_t)3, free_rec, NULL);
    gh_loop_free(l); /* runs what is left */
    assert_int_equal(n_freed, 4);
}

static int woken;
static void
on_wakeup(void *arg)
{
    woken += (int)(intptr_t)arg;
}

static void *
waker(void *arg)
{
    gh_loop_wake(arg);
    return NULL;
}

static void
test_wakeup_from_another_thread(void **state)
{
    (void)state;
    struct gh_loop *l = gh_loop_new();
    woken = 0;
    assert_int_equal(gh_loop_set_wakeup(l, on_wakeup, (void *)1), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, waker, l), 0);
    pthread_join(t, NULL);
    gh_loop_wake(l); /* two wakes before the loop runs: one call */
    assert_int_equal(gh_loop_run_once(l, 5000), 1);
    assert_int_equal(woken, 1);
    assert_int_equal(gh_loop_run_once(l, 10), 0); /* consumed */
    assert_int_equal(woken, 1);
    gh_loop_free(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_fire_in_order),
        cmocka_unit_test(test_timer_postpone_is_lazy_and_correct),
        cmocka_unit_test(test_timer_advance_earlier),
        cmocka_unit_test(test_timer_stop),
        cmocka_unit_test(test_heap_grows_and_stays_ordered),
        cmocka_unit_test(test_io_dispatch_and_hooks),
        cmocka_unit_test(test_defer_free_after_batch),
        cmocka_unit_test(test_wakeup_from_another_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
