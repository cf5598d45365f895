/*
 * queue.c - requests waiting for a server of their upstream when every one is
 * at max_conns (`queue N [timeout=D]`, nginx Plus's `queue`, HAProxy's
 * `maxqueue`): a FIFO per upstream per config generation on each thread,
 * bounded by N, each waiter with its own deadline.
 *
 * A request that ends (gh_ups_attempt_done) wakes the first waiter. The
 * waiter's callback runs from a zero-delay timer, never inside the call that
 * woke it (that call is another request's release). The woken request picks
 * again: the place may have been taken by a request that came meanwhile, and
 * then it waits again, with the deadline of its first wait.
 */
#include <string.h>

#include "upstream/upstream.h"

static void
unlink_wait(struct gh_ups_gen *g, struct gh_ups_queue *q, struct gh_ups_wait *w)
{
    g->n_waiting--;
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->prev = w->next = NULL;
    w->queued = false;
    q->n--;
}

static void
on_wait_timer(struct gh_timer *tm)
{
    struct gh_ups_wait *w = gh_container_of(tm, struct gh_ups_wait, timer);
    bool timed_out = !w->woken;
    w->woken = false;
    if (w->queued) /* the deadline came while still on the list */
        unlink_wait(w->g, w->q, w);
    w->cb(w, timed_out);
}

int
gh_ups_wait(struct gh_ups_gen *g, const struct gh_upstream_conf *ups, struct gh_ups_wait *w,
            gh_ups_wait_cb cb)
{
    struct gh_ups_queue *q = &g->queue[ups->index];
    if (ups->queue_max == 0 || q->n >= ups->queue_max)
        return -EBUSY;
    uint64_t now = gh_loop_now(g->ctx->loop);
    if (w->timer.cb == NULL) { /* the first wait */
        memset(w, 0, sizeof(*w));
        w->deadline = now + ups->queue_timeout_ms;
    }
    if (w->deadline <= now)
        return -EBUSY;
    w->cb = cb;
    w->q = q;
    w->g = g;
    w->timer.cb = on_wait_timer;
    w->woken = false;
    w->queued = true;
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail != NULL)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    q->n++;
    g->n_waiting++;
    gh_timer_after(g->ctx->loop, &w->timer, w->deadline - now);
    return 0;
}

void
gh_ups_wait_cancel(struct gh_ups_wait *w)
{
    if (w->timer.cb == NULL) /* never waited */
        return;
    gh_timer_stop(w->g->ctx->loop, &w->timer);
    if (w->queued)
        unlink_wait(w->g, w->q, w);
    w->woken = false;
}

void
gh_ups_queue_wake(struct gh_ups_gen *g, const struct gh_upstream_conf *ups)
{
    struct gh_ups_queue *q = &g->queue[ups->index];
    struct gh_ups_wait *w = q->head;
    if (w == NULL) /* the others' queues wait */
        return;
    unlink_wait(g, q, w);
    w->woken = true;
    gh_timer_after(g->ctx->loop, &w->timer, 0);
}
