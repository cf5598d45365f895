/*
 * test_upstream.c - the origin side of a thread: peers keyed by address (and
 * shared across config generations, so pools survive a reload), choosing a
 * server (down and tried ones skipped, weights), attempt accounting, and the
 * HTTP/1.1 client driven against a tiny origin run here over loopback TCP:
 * de-framing (Content-Length, chunked, close-delimited, 1xx, 204), the
 * keep-alive pool and when a connection must not go back to it, and errors.
 *
 * The origin is the test itself: a blocking listening socket whose accepted
 * connection the test reads requests from and writes responses to, whole,
 * byte by byte or in random splits, between turns of the client's loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/loop.h"
#include "http/h1_write.h"
#include "net/pipe.h"
#include "upstream/h1client.h"
#include "upstream/health.h"
#include "upstream/upstream.h"

/* ---- the thread's context, fresh for every test ---- */

static struct gh_loop *L;
static struct gh_upstream_ctx CTX;
static char *SCRATCH;

static int
setup(void **state)
{
    (void)state;
    L = gh_loop_new();
    SCRATCH = malloc(GH_BUF_SIZE);
    if (L == NULL || SCRATCH == NULL)
        return -1;
    gh_upstream_ctx_init(&CTX, L, SCRATCH);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    gh_upstream_ctx_stop(&CTX);
    gh_loop_run_deferred(L);
    /* every reference a test took was given back, every connection closed */
    assert_int_equal(CTX.n_conns, 0);
    assert_int_equal(CTX.n_peers, 0);
    gh_upstream_ctx_fini(&CTX);
    gh_loop_free(L);
    free(SCRATCH);
    return 0;
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* ---- config ---- */

static struct gh_config *
load(const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(text));
    struct gh_conf_diag d;
    struct gh_config *c = gh_conf_load_string("t.conf", text, (size_t)n, &d);
    if (c == NULL)
        gh_conf_diag_print(&d, stderr);
    gh_conf_diag_free(&d);
    assert_non_null(c);
    return c;
}

#define SRV "server { listen 127.0.0.1:8080; return 200; }\n"

static const struct gh_upstream_conf *
ups_named(const struct gh_config *c, const char *name)
{
    for (uint32_t i = 0; i < c->n_upstreams; i++)
        if (strcmp(c->upstreams[i].name, name) == 0)
            return &c->upstreams[i];
    fail_msg("no upstream %s", name);
    return NULL;
}

static struct gh_peer *
peer_of(struct gh_ups_gen *g, const struct gh_upstream_conf *u, uint32_t i)
{
    return g->peer[g->off[u->index] + i];
}

static struct sockaddr_storage
addr4(const char *ip, uint16_t port, socklen_t *len)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sa = (struct sockaddr_in *)&ss;
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &sa->sin_addr), 1);
    *len = sizeof(*sa);
    return ss;
}

/* ---- peers ---- */

static void
test_peer_keyed_by_address_and_xprt(void **state)
{
    (void)state;
    socklen_t len;
    struct sockaddr_storage a = addr4("127.0.0.1", 3000, &len);
    struct sockaddr_storage a_again = addr4("127.0.0.1", 3000, &len);
    struct sockaddr_storage other_port = addr4("127.0.0.1", 3001, &len);
    struct gh_peer *p1 = gh_peer_get(&CTX, &a, len, 0);
    assert_non_null(p1);
    assert_int_equal(p1->refs, 1);
    struct gh_peer *p2 = gh_peer_get(&CTX, &a_again, len, 0);
    assert_ptr_equal(p1, p2);
    assert_int_equal(p1->refs, 2);
    assert_int_equal(CTX.n_peers, 1);
    /* other transport settings: another destination */
    struct gh_peer *tls = gh_peer_get(&CTX, &a, len, 1);
    assert_ptr_not_equal(tls, p1);
    assert_int_equal(tls->xprt_id, 1);
    assert_int_equal(tls->refs, 1);
    struct gh_peer *p3 = gh_peer_get(&CTX, &other_port, len, 0);
    assert_ptr_not_equal(p3, p1);
    assert_int_equal(CTX.n_peers, 3);
    assert_int_equal(p1->len, len);
    assert_memory_equal(&p1->ss, &a, len);

    gh_peer_put(&CTX, p2);
    assert_int_equal(p1->refs, 1);
    assert_int_equal(CTX.n_peers, 3);
    gh_peer_put(&CTX, p1);
    assert_int_equal(CTX.n_peers, 2);
    /* gone: a new get makes a new one */
    p1 = gh_peer_get(&CTX, &a, len, 0);
    assert_int_equal(p1->refs, 1);
    gh_peer_put(&CTX, p1);
    gh_peer_put(&CTX, tls);
    gh_peer_put(&CTX, p3);
    gh_peer_put(&CTX, NULL);
    assert_int_equal(CTX.n_peers, 0);
}

/* Many peers: the table grows and every peer is still found (then removed) by its key. */
static void
test_peer_table_grows(void **state)
{
    (void)state;
    enum { N = 300 };
    struct gh_peer **ps = calloc(N, sizeof(*ps));
    socklen_t len;
    for (int i = 0; i < N; i++) {
        struct sockaddr_storage ss = addr4("127.0.0.1", (uint16_t)(1000 + i), &len);
        ps[i] = gh_peer_get(&CTX, &ss, len, (uint32_t)(i % 2));
        assert_non_null(ps[i]);
    }
    assert_int_equal(CTX.n_peers, N);
    assert_true(CTX.n_buckets >= N);
    for (int i = 0; i < N; i++) {
        struct sockaddr_storage ss = addr4("127.0.0.1", (uint16_t)(1000 + i), &len);
        assert_ptr_equal(gh_peer_get(&CTX, &ss, len, (uint32_t)(i % 2)), ps[i]);
        assert_int_equal(ps[i]->refs, 2);
    }
    for (int i = 0; i < N; i += 2) {
        gh_peer_put(&CTX, ps[i]);
        gh_peer_put(&CTX, ps[i]);
    }
    assert_int_equal(CTX.n_peers, N / 2);
    for (int i = 1; i < N; i += 2) {
        struct sockaddr_storage ss = addr4("127.0.0.1", (uint16_t)(1000 + i), &len);
        assert_ptr_equal(gh_peer_get(&CTX, &ss, len, 1), ps[i]);
        gh_peer_put(&CTX, ps[i]);
        gh_peer_put(&CTX, ps[i]);
        gh_peer_put(&CTX, ps[i]);
    }
    assert_int_equal(CTX.n_peers, 0);
    free(ps);
}

/* ---- generations ---- */

static void
test_gen_resolves_servers_to_peers(void **state)
{
    (void)state;
    struct gh_config *c =
        load("upstream a { server 127.0.0.1:1001; server 127.0.0.1:1002; }\n"
             "upstream b { server 127.0.0.1:1002; server 127.0.0.1:1003; }\n" SRV);
    struct gh_ups_gen *g = gh_ups_gen_new(&CTX, c);
    assert_non_null(g);
    const struct gh_upstream_conf *a = ups_named(c, "a"), *b = ups_named(c, "b");
    for (uint32_t i = 0; i < 2; i++) {
        assert_memory_equal(&peer_of(g, a, i)->ss, &a->servers[i].addr.ss, a->servers[i].addr.len);
        assert_memory_equal(&peer_of(g, b, i)->ss, &b->servers[i].addr.ss, b->servers[i].addr.len);
    }
    /* the same address in two upstreams: one peer, two references */
    assert_ptr_equal(peer_of(g, a, 1), peer_of(g, b, 0));
    assert_int_equal(peer_of(g, a, 1)->refs, 2);
    assert_int_equal(peer_of(g, a, 0)->refs, 1);
    assert_int_equal(CTX.n_peers, 3);
    gh_ups_gen_free(g);
    assert_int_equal(CTX.n_peers, 0);
    gh_conf_unref(c);
}

static void
test_generations_share_peers(void **state)
{
    (void)state;
    struct gh_config *c1 =
        load("upstream a { server 127.0.0.1:1001; server 127.0.0.1:1002; }\n" SRV);
    struct gh_config *c2 =
        load("upstream x { server 127.0.0.1:1004; }\n"
             "upstream a { server 127.0.0.1:1002; server 127.0.0.1:1003; }\n" SRV);
    struct gh_ups_gen *g1 = gh_ups_gen_new(&CTX, c1);
    struct gh_ups_gen *g2 = gh_ups_gen_new(&CTX, c2);
    const struct gh_upstream_conf *a1 = ups_named(c1, "a"), *a2 = ups_named(c2, "a");
    struct gh_peer *kept = peer_of(g1, a1, 1);
    /* the reloaded config names 127.0.0.1:1002 too: the same peer (and so its pool) */
    assert_ptr_equal(peer_of(g2, a2, 0), kept);
    assert_int_equal(kept->refs, 2);
    assert_int_equal(CTX.n_peers, 4);
    /* passive health is the peer's: seen from both generations */
    gh_ups_mark_down(g1, a1, 1);
    assert_true(gh_peer_down(&CTX, peer_of(g2, a2, 0)));
    assert_false(gh_peer_down(&CTX, peer_of(g2, a2, 1)));
    gh_ups_gen_free(g1);
    assert_int_equal(CTX.n_peers, 3); /* 1001 went with the old generation */
    assert_int_equal(kept->refs, 1);
    gh_ups_gen_free(g2);
    assert_int_equal(CTX.n_peers, 0);
    gh_conf_unref(c1);
    gh_conf_unref(c2);
}

/* ---- picking ---- */

static uint32_t
pick(struct gh_ups_gen *g, const struct gh_upstream_conf *u, uint64_t tried)
{
    struct gh_ups_try t = {.ups = u, .tried = tried};
    gh_ups_pick(g, &t);
    assert_true(t.server < u->n_servers);
    return t.server;
}

static void
test_pick_skips_down_and_tried(void **state)
{
    (void)state;
    struct gh_config *c = load("upstream u { server 127.0.0.1:1001; server 127.0.0.1:1002;"
                               " server 127.0.0.1:1003; }\n" SRV);
    struct gh_ups_gen *g = gh_ups_gen_new(&CTX, c);
    const struct gh_upstream_conf *u = ups_named(c, "u");
    gh_ups_mark_down(g, u, 0);
    assert_true(gh_peer_down(&CTX, peer_of(g, u, 0)));
    int count[3] = {0};
    for (int i = 0; i < 30; i++)
        count[pick(g, u, 0)]++;
    assert_int_equal(count[0], 0);
    assert_int_equal(count[1], 15);
    assert_int_equal(count[2], 15);
    /* 0 is down and 1 was tried by this request: 2 it is, every time */
    for (int i = 0; i < 10; i++)
        assert_int_equal(pick(g, u, 1u << 1), 2);
    gh_ups_gen_free(g);
    gh_conf_unref(c);

    /* none down, two tried by this request: the third */
    c = load("upstream u { server 127.0.0.1:1011; server 127.0.0.1:1012;"
             " server 127.0.0.1:1013; }\n" SRV);
    g = gh_ups_gen_new(&CTX, c);
    u = ups_named(c, "u");
    for (int i = 0; i < 10; i++)
        assert_int_equal(pick(g, u, (1u << 0) | (1u << 2)), 1);
    gh_ups_gen_free(g);
    gh_conf_unref(c);
}

static void
test_pick_falls_back_to_all(void **state)
{
    (void)state;
    struct gh_config *c = load("upstream u { server 127.0.0.1:1001; server 127.0.0.1:1002;"
                               " server 127.0.0.1:1003; }\n" SRV);
    struct gh_ups_gen *g = gh_ups_gen_new(&CTX, c);
    const struct gh_upstream_conf *u = ups_named(c, "u");
    /* everything down: still an answer, and still spread over all */
    for (uint32_t i = 0; i < 3; i++)
        gh_ups_mark_down(g, u, i);
    int count[3] = {0};
    for (int i = 0; i < 30; i++)
        count[pick(g, u, 0)]++;
    assert_int_equal(count[0], 10);
    assert_int_equal(count[1], 10);
    assert_int_equal(count[2], 10);
    /* down or tried, all of them */
    int count2[3] = {0};
    for (int i = 0; i < 30; i++)
        count2[pick(g, u, 0x7)]++;
    assert_int_equal(count2[0] + count2[1] + count2[2], 30);
    assert_true(count2[0] > 0 && count2[1] > 0 && count2[2] > 0);
    gh_ups_gen_free(g);
    gh_conf_unref(c);
}

static void
test_pick_single_server(void **state)
{
    (void)state;
    struct gh_config *c = load("upstream u { server 127.0.0.1:1001; }\n" SRV);
    struct gh_ups_gen *g = gh_ups_gen_new(&CTX, c);
    const struct gh_upstream_conf *u = ups_named(c, "u");
    gh_ups_mark_down(g, u, 0);
    assert_int_equal(pick(g, u, 1), 0);
    gh_ups_gen_free(g);
    gh_conf_unref(c);
}

/* weights 5,1,1: a a b a c a a, each upstream with its own state (the other's picks in between
 * change nothing), and each generation with its own */
static void
test_pick_round_robin_weights(void **state)
{
    (void)state;
    struct gh_config *c = load("upstream first { server 127.0.0.1:2001; server 127.0.0.1:2002; }\n"
                               "upstream w { server 127.0.0.1:1001 weight=5;"
                               " server 127.0.0.1:1002; server 127.0.0.1:1003; }\n" SRV);
    struct gh_ups_gen *g = gh_ups_gen_new(&CTX, c);
    const struct gh_upstream_conf *first = ups_named(c, "first"), *w = ups_named(c, "w");
    for (int round = 0; round < 2; round++) {
        char seq[8] = {0}, other[8] = {0};
        for (int i = 0; i < 7; i++) {
            seq[i] = (char)('a' + pick(g, w, 0));
            other[i] = (char)('a' + pick(g, first, 0));
        }
        assert_string_equal(seq, "aabacaa");
        assert_string_equal(other, "abababa");
        /* the cycle ends where it started: the second round is the same (first had 7 picks) */
        if (round == 0)
            (void)pick(g, first, 0);
    }
    struct gh_ups_gen *g2 = gh_ups_gen_new(&CTX, c);
    char seq2[8] = {0};
    for (int i = 0; i < 7; i++)
        seq2[i] = (char)('a' + pick(g2, w, 0));
    assert_string_equal(seq2, "aabacaa");
    gh_ups_gen_free(g2);
    gh_ups_gen_free(g);
    gh_conf_unref(c);
}

/* backup servers are used only when no other may be: all down, tried or at max_conns */
static void
test_pick_backup_and_max_conns(void **state)
{
    (void)state;
    struct gh_config *c =
        load("upstream u { server 127.0.0.1:1001 max_conns=2;"
             " server 127.0.0.1:1002 max_conns=1; server 127.0.0.1:1003 backup; }\n"
             "upstream one { server 127.0.0.1:2001 max_conns=1; }\n" SRV);
    struct gh_ups_gen *g = gh_ups_gen_new(&CTX, c);
    const struct gh_upstream_conf *u = ups_named(c, "u"), *one = ups_named(c, "one");
    struct gh_balance_srv *bal = g->bal + g->off[u->index];
    int count[3] = {0};
    for (int i = 0; i < 100; i++)
        count[pick(g, u, 0)]++;
    assert_int_equal(count[2], 0); /* the backup is not used while others may be */
    assert_int_equal(count[0], 50);
    /* server 0 at its max_conns: 1 only */
    bal[0].inflight = 2;
    for (int i = 0; i < 10; i++)
        assert_int_equal(pick(g, u, 0), 1);
    /* both at max_conns: the backup */
    bal[1].inflight = 1;
    struct gh_ups_try t = {.ups = u};
    assert_int_equal(gh_ups_pick(g, &t), 0);
    assert_int_equal(t.server, 2);
    /* the backup down as well: nothing may be tried, and some are busy */
    gh_ups_mark_down(g, u, 2);
    struct gh_ups_try t2 = {.ups = u};
    assert_int_equal(gh_ups_pick(g, &t2), -EBUSY);
    /* one below its limit again: it */
    bal[1].inflight = 0;
    struct gh_ups_try t3 = {.ups = u};
    assert_int_equal(gh_ups_pick(g, &t3), 0);
    assert_int_equal(t3.server, 1);
    /* all down: -EHOSTDOWN */
    bal[0].inflight = 0;
    gh_ups_mark_down(g, u, 0);
    gh_ups_mark_down(g, u, 1);
    struct gh_ups_try t4 = {.ups = u};
    assert_int_equal(gh_ups_pick(g, &t4), -EHOSTDOWN);
    /* the only server of an upstream is never down, but max_conns holds */
    gh_ups_mark_down(g, one, 0);
    struct gh_ups_try t5 = {.ups = one};
    assert_int_equal(gh_ups_pick(g, &t5), 0);
    g->bal[g->off[one->index]].inflight = 1;
    struct gh_ups_try t6 = {.ups = one};
    assert_int_equal(gh_ups_pick(g, &t6), -EBUSY);
    g->bal[g->off[one->index]].inflight = 0;
    gh_ups_gen_free(g);
    gh_conf_unref(c);
}

/* `queue N`: waiters in order, the queue bounded, woken one at a time by finished requests
 * (from a timer, never inside the call that woke them), cancelled, and timed out. */
static int woken[8];
static int n_woken, n_timed_out;

struct waiter {
    int label;
    struct gh_ups_wait w;
};

static void
on_wait(struct gh_ups_wait *w, bool timed_out)
{
    struct waiter *x = gh_container_of(w, struct waiter, w);
    if (timed_out)
        n_timed_out++;
    else
        woken[n_woken++] = x->label;
}

static void
test_queue(void **state)
{
    (void)state;
    struct gh_config *c = load("upstream u { server 127.0.0.1:1001 max_conns=1; "
                               "queue 2 timeout=50ms; }\n"
                               "upstream nq { server 127.0.0.1:1002 max_conns=1; }\n" SRV);
    struct gh_ups_gen *g = gh_ups_gen_new(&CTX, c);
    const struct gh_upstream_conf *u = ups_named(c, "u"), *nq = ups_named(c, "nq");
    struct gh_ups_try busy = {.ups = u, .in_flight = true};
    g->bal[g->off[u->index]].inflight = 1;
    peer_of(g, u, 0)->inflight = 1;
    struct gh_ups_try t = {.ups = u};
    assert_int_equal(gh_ups_pick(g, &t), -EBUSY);
    struct waiter w1 = {1, {0}}, w2 = {2, {0}}, w3 = {3, {0}}, wn = {4, {0}};
    assert_int_equal(gh_ups_wait(g, u, &w1.w, on_wait), 0);
    assert_int_equal(gh_ups_wait(g, u, &w2.w, on_wait), 0);
    assert_int_equal(gh_ups_wait(g, u, &w3.w, on_wait), -EBUSY);  /* full */
    assert_int_equal(gh_ups_wait(g, nq, &wn.w, on_wait), -EBUSY); /* no queue there */
    assert_int_equal(g->queue[u->index].n, 2);
    assert_int_equal(g->n_waiting, 2);
    /* the request in flight ends: the first waiter is woken, from a timer */
    n_woken = n_timed_out = 0;
    gh_ups_attempt_done(g, &busy, GH_BALANCE_OK);
    assert_int_equal(n_woken, 0);
    assert_int_equal(g->queue[u->index].n, 1);
    gh_loop_run_once(L, 0);
    assert_int_equal(n_woken, 1);
    assert_int_equal(woken[0], 1);
    /* the second one leaves (its client went away): nothing is woken for it, ever */
    gh_ups_wait_cancel(&w2.w);
    assert_int_equal(g->queue[u->index].n, 0);
    assert_int_equal(g->n_waiting, 0);
    gh_ups_wait_cancel(&w2.w); /* twice is fine */
    gh_ups_wait_cancel(&wn.w); /* and never waited */
    /* a third waits and times out */
    assert_int_equal(gh_ups_wait(g, u, &w3.w, on_wait), 0);
    for (int i = 0; i < 200 && n_timed_out == 0; i++)
        gh_loop_run_once(L, 5);
    assert_int_equal(n_timed_out, 1);
    assert_int_equal(n_woken, 1);
    assert_int_equal(g->queue[u->index].n, 0);
    /* its time is used up: it cannot wait again */
    assert_int_equal(gh_ups_wait(g, u, &w3.w, on_wait), -EBUSY);
    gh_ups_gen_free(g);
    gh_conf_unref(c);
}

/* max_fails consecutive failures eject for fail_timeout, doubled per ejection while the
 * server keeps failing, at most 5 minutes; a success resets both. */
static void
test_passive_health_ejection(void **state)
{
    (void)state;
    struct gh_config *c = load("upstream u { server 127.0.0.1:1001; server 127.0.0.1:1002;"
                               " max_fails 3; fail_timeout 2s; }\n" SRV);
    struct gh_ups_gen *g = gh_ups_gen_new(&CTX, c);
    const struct gh_upstream_conf *u = ups_named(c, "u");
    struct gh_peer *p = peer_of(g, u, 0);
    struct gh_ups_try t = {.ups = u, .server = 0};
    uint64_t now = gh_loop_now(L);
    gh_ups_attempt_done(g, &t, GH_BALANCE_CONNECT);
    gh_ups_attempt_done(g, &t, GH_BALANCE_CONNECT);
    assert_false(gh_peer_down(&CTX, p));
    assert_int_equal(p->fails, 2);
    /* a success in between: counting starts again */
    t.in_flight = true;
    g->bal[g->off[u->index]].inflight++;
    p->inflight++;
    gh_ups_attempt_done(g, &t, GH_BALANCE_OK);
    assert_int_equal(p->fails, 0);
    uint64_t want = 2000;
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 3; i++)
            gh_ups_attempt_done(g, &t, GH_BALANCE_CONNECT);
        assert_true(gh_peer_down(&CTX, p));
        assert_true(p->down_until >= now + want && p->down_until <= gh_loop_now(L) + want);
        want = want * 2 > GH_UPSTREAM_EJECT_MAX_MS ? GH_UPSTREAM_EJECT_MAX_MS : want * 2;
        p->down_until = 0; /* as if the time had passed */
    }
    assert_true(want == GH_UPSTREAM_EJECT_MAX_MS);
    t.in_flight = true;
    g->bal[g->off[u->index]].inflight++;
    p->inflight++;
    gh_ups_attempt_done(g, &t, GH_BALANCE_OK);
    assert_int_equal(p->ejections, 0);
    for (int i = 0; i < 3; i++)
        gh_ups_attempt_done(g, &t, GH_BALANCE_CONNECT);
    assert_true(p->down_until <= gh_loop_now(L) + 2000);
    gh_ups_gen_free(g);
    gh_conf_unref(c);

    /* max_fails 0: never ejected */
    c = load("upstream u { server 127.0.0.1:1001; server 127.0.0.1:1002; max_fails 0; }\n" SRV);
    g = gh_ups_gen_new(&CTX, c);
    u = ups_named(c, "u");
    struct gh_ups_try t2 = {.ups = u, .server = 1};
    for (int i = 0; i < 5; i++)
        gh_ups_attempt_done(g, &t2, GH_BALANCE_CONNECT);
    assert_false(gh_peer_down(&CTX, peer_of(g, u, 1)));
    gh_ups_gen_free(g);
    gh_conf_unref(c);
}

/* ---- active health, fail_on, slow start, geo ---- */

/* health_check: rise/fall counting, and a server marked down is skipped by the pick (even the
 * only one); the state is shared by key, so a second generation (a reload) sees it */
static void
test_active_health(void **state)
{
    (void)state;
    struct gh_config *c = load("upstream u { server 127.0.0.1:1001; server 127.0.0.1:1002;"
                               " health_check /hc rise=2 fall=3; }\n"
                               "upstream one { server 127.0.0.1:1003; health_check /hc fall=1; }"
                               "\n" SRV);
    struct gh_ups_gen *g = gh_ups_gen_new(&CTX, c);
    const struct gh_upstream_conf *u = ups_named(c, "u");
    struct gh_health *h = g->health[g->off[u->index]];
    assert_non_null(h);
    assert_ptr_equal(h, gh_health_get("u", "127.0.0.1:1001", false));
    gh_health_put(h);
    assert_int_equal(gh_health_verdict(h, u->health, false, 100), 0);
    assert_int_equal(gh_health_verdict(h, u->health, false, 100), 0);
    assert_int_equal(gh_health_verdict(h, u->health, true, 100), 0); /* the run restarts */
    assert_int_equal(gh_health_verdict(h, u->health, false, 100), 0);
    assert_int_equal(gh_health_verdict(h, u->health, false, 100), 0);
    assert_int_equal(gh_health_verdict(h, u->health, false, 100), -1);
    assert_true(gh_health_down(h));
    for (int i = 0; i < 10; i++)
        assert_int_equal(pick(g, u, 0), 1);
    struct gh_ups_try t = {.ups = u};
    assert_int_equal(gh_ups_pick(g, &t), 0);
    t.tried = 1u << 1;
    assert_int_equal(gh_ups_pick(g, &t), -EHOSTDOWN);
    struct gh_ups_gen *g2 = gh_ups_gen_new(&CTX, c); /* a reload keeps the state */
    assert_int_equal(pick(g2, u, 0), 1);
    assert_int_equal(gh_health_verdict(h, u->health, true, 5000), 0);
    assert_int_equal(gh_health_verdict(h, u->health, true, 5000), 1);
    assert_false(gh_health_down(h));
    assert_int_equal(gh_health_up_at(h), 5000);
    int count[2] = {0};
    for (int i = 0; i < 10; i++)
        count[pick(g2, u, 0)]++;
    assert_int_equal(count[0], 5);
    /* the only server of an upstream, when its checks fail: no server (503) */
    const struct gh_upstream_conf *one = ups_named(c, "one");
    struct gh_health *h1 = g->health[g->off[one->index]];
    assert_int_equal(gh_health_verdict(h1, one->health, false, 100), -1);
    struct gh_ups_try t1 = {.ups = one};
    assert_int_equal(gh_ups_pick(g, &t1), -EHOSTDOWN);
    gh_ups_gen_free(g2);
    gh_ups_gen_free(g);
    gh_conf_unref(c);
    /* no generation holds them any more: the states are gone */
    struct gh_health *fresh = gh_health_get("u", "127.0.0.1:1001", false);
    assert_false(gh_health_down(fresh));
    gh_health_put(fresh);
}

/* One attempt at server i that got an answer with status (in flight, as a real one). */
static void
answered(struct gh_ups_gen *g, const struct gh_upstream_conf *u, uint32_t i, uint16_t status)
{
    struct gh_ups_try t = {.ups = u, .server = i, .in_flight = true, .status = status};
    g->bal[g->off[u->index] + i].inflight++;
    peer_of(g, u, i)->inflight++;
    gh_ups_attempt_done(g, &t, GH_BALANCE_OK);
}

static void
test_fail_on(void **state)
{
    (void)state;
    struct gh_config *c = load("upstream u { server 127.0.0.1:1001; server 127.0.0.1:1002;"
                               " max_fails 2; fail_on 502 503; }\n"
                               "upstream a { server 127.0.0.1:1003; server 127.0.0.1:1004;"
                               " max_fails 2; fail_on 5xx; }\n"
                               "upstream d { server 127.0.0.1:1005; server 127.0.0.1:1006;"
                               " max_fails 2; }\n" SRV);
    struct gh_ups_gen *g = gh_ups_gen_new(&CTX, c);
    const struct gh_upstream_conf *u = ups_named(c, "u"), *a = ups_named(c, "a"),
                                  *d = ups_named(c, "d");
    answered(g, u, 0, 500); /* not named: an answer like any other */
    assert_int_equal(peer_of(g, u, 0)->fails, 0);
    answered(g, u, 0, 502);
    answered(g, u, 0, 200); /* a success resets */
    answered(g, u, 0, 503);
    assert_false(gh_peer_down(&CTX, peer_of(g, u, 0)));
    answered(g, u, 0, 502);
    assert_true(gh_peer_down(&CTX, peer_of(g, u, 0)));
    answered(g, a, 1, 599);
    answered(g, a, 1, 500);
    assert_true(gh_peer_down(&CTX, peer_of(g, a, 1)));
    answered(g, d, 0, 500); /* the default: timeouts only */
    answered(g, d, 0, 503);
    assert_false(gh_peer_down(&CTX, peer_of(g, d, 0)));
    struct gh_ups_try t = {.ups = d, .server = 0, .in_flight = true};
    for (int i = 0; i < 2; i++) {
        t.in_flight = true;
        g->bal[g->off[d->index]].inflight++;
        peer_of(g, d, 0)->inflight++;
        gh_ups_attempt_done(g, &t, GH_BALANCE_TIMEOUT);
    }
    assert_true(gh_peer_down(&CTX, peer_of(g, d, 0)));
    gh_ups_gen_free(g);
    gh_conf_unref(c);
}

/* slow_start: a server that came back 1/4 of its slow_start ago weighs a quarter */
static void
test_slow_start(void **state)
{
    (void)state;
    struct gh_config *c = load("upstream u { server 127.0.0.1:1001 slow_start=40s;"
                               " server 127.0.0.1:1002; }\n" SRV);
    struct gh_ups_gen *g = gh_ups_gen_new(&CTX, c);
    const struct gh_upstream_conf *u = ups_named(c, "u");
    assert_true(u->slow_start);
    int count[2] = {0};
    for (int i = 0; i < 100; i++) /* never down: full weight */
        count[pick(g, u, 0)]++;
    assert_int_equal(count[0], 50);
    uint64_t now = gh_loop_now(L);
    assert_true(now > 10000);
    peer_of(g, u, 0)->down_until = now - 10000; /* an ejection ended 10 s ago */
    count[0] = count[1] = 0;
    for (int i = 0; i < 500; i++)
        count[pick(g, u, 0)]++;
    assert_int_equal(g->weights[g->off[u->index]], 25);
    assert_int_equal(g->weights[g->off[u->index] + 1], 100);
    assert_int_equal(count[0], 100);
    peer_of(g, u, 0)->down_until = now - 40000; /* the ramp is over */
    count[0] = count[1] = 0;
    for (int i = 0; i < 100; i++)
        count[pick(g, u, 0)]++;
    assert_int_equal(count[0], 50);
    gh_ups_gen_free(g);
    gh_conf_unref(c);
}

/* balance geo: the client's region, its fallbacks in order, then any server */
static uint32_t
geo_pick(struct gh_ups_gen *g, const struct gh_upstream_conf *u, const char *region)
{
    struct gh_ups_try t = {.ups = u, .key = region, .key_len = strlen(region)};
    assert_int_equal(gh_ups_pick(g, &t), 0);
    return t.server;
}

static void
test_geo_pick(void **state)
{
    (void)state;
    struct gh_config *c = load("upstream u { server 127.0.0.1:1001 region=eu;"
                               " server 127.0.0.1:1002 region=eu; server 127.0.0.1:1003 region=us;"
                               " server 127.0.0.1:1004 region=asia; server 127.0.0.1:1005;"
                               " balance geo $remote_addr; region_fallback eu asia us;"
                               " region_fallback mars us; }\n" SRV);
    struct gh_ups_gen *g = gh_ups_gen_new(&CTX, c);
    const struct gh_upstream_conf *u = ups_named(c, "u");
    int count[5] = {0};
    for (int i = 0; i < 10; i++)
        count[geo_pick(g, u, "eu")]++;
    assert_int_equal(count[0], 5);
    assert_int_equal(count[1], 5);
    assert_int_equal(geo_pick(g, u, "us"), 2);
    assert_int_equal(geo_pick(g, u, "mars"), 2); /* a region without servers: its fallback */
    gh_ups_mark_down(g, u, 0);
    gh_ups_mark_down(g, u, 1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(geo_pick(g, u, "eu"), 3); /* eu down: asia first, then us */
    gh_ups_mark_down(g, u, 3);
    assert_int_equal(geo_pick(g, u, "eu"), 2);
    gh_ups_mark_down(g, u, 2);
    assert_int_equal(geo_pick(g, u, "eu"), 4); /* no region left: any server */
    memset(count, 0, sizeof(count));
    for (int i = 0; i < 10; i++) /* an unknown region: every server that may be chosen */
        count[geo_pick(g, u, "")]++;
    assert_int_equal(count[4], 10);
    gh_ups_gen_free(g);
    gh_conf_unref(c);
}

/* sticky: the cookie's server while it may be chosen in the tier in use, else the balancer */
static void
test_sticky_pick(void **state)
{
    (void)state;
    struct gh_config *c = load("upstream u { server 127.0.0.1:1001; server 127.0.0.1:1002;"
                               " server 127.0.0.1:1003 backup; sticky cookie s; }\n" SRV);
    struct gh_ups_gen *g = gh_ups_gen_new(&CTX, c);
    const struct gh_upstream_conf *u = ups_named(c, "u");
    for (int i = 0; i < 6; i++) {
        struct gh_ups_try t = {.ups = u, .sticky = 2};
        assert_int_equal(gh_ups_pick(g, &t), 0);
        assert_int_equal(t.server, 1);
    }
    struct gh_ups_try tb = {.ups = u, .sticky = 3}; /* a backup while the primaries are up */
    gh_ups_pick(g, &tb);
    assert_int_not_equal(tb.server, 2);
    gh_ups_mark_down(g, u, 1);
    struct gh_ups_try td = {.ups = u, .sticky = 2}; /* its server down: the other */
    gh_ups_pick(g, &td);
    assert_int_equal(td.server, 0);
    gh_ups_mark_down(g, u, 0);
    struct gh_ups_try tk = {.ups = u, .sticky = 3}; /* only the backup tier is left */
    gh_ups_pick(g, &tk);
    assert_int_equal(tk.server, 2);
    gh_ups_gen_free(g);
    gh_conf_unref(c);
}

/* retries N: at most N servers after the first, only servers that may be chosen */
static void
test_can_retry(void **state)
{
    (void)state;
    struct gh_config *c = load("upstream u { server 127.0.0.1:1001; server 127.0.0.1:1002;"
                               " server 127.0.0.1:1003; retries 2; }\n"
                               "upstream d { server 127.0.0.1:2001; server 127.0.0.1:2002; }\n"
                               "upstream z { server 127.0.0.1:3001; server 127.0.0.1:3002;"
                               " retries 0; }\n" SRV);
    struct gh_ups_gen *g = gh_ups_gen_new(&CTX, c);
    const struct gh_upstream_conf *u = ups_named(c, "u"), *d = ups_named(c, "d"),
                                  *z = ups_named(c, "z");
    struct gh_ups_try t = {.ups = u, .attempts = 1, .tried = 1};
    assert_true(gh_ups_can_retry(g, &t));
    t.attempts = 2;
    t.tried = 3;
    assert_true(gh_ups_can_retry(g, &t));
    t.attempts = 3;
    t.tried = 7;
    assert_false(gh_ups_can_retry(g, &t));
    /* default retries 1 */
    struct gh_ups_try td = {.ups = d, .attempts = 1, .tried = 1};
    assert_true(gh_ups_can_retry(g, &td));
    gh_ups_mark_down(g, d, 1);
    assert_false(gh_ups_can_retry(g, &td)); /* the other one is down */
    struct gh_ups_try tz = {.ups = z, .attempts = 1, .tried = 1};
    assert_false(gh_ups_can_retry(g, &tz));
    gh_ups_gen_free(g);
    gh_conf_unref(c);
}

/* hash KEY consistent: a generation builds the ring; the key's hash is kept for retries */
static void
test_pick_hash_key(void **state)
{
    (void)state;
    struct gh_config *c =
        load("upstream h { server 127.0.0.1:1001; server 127.0.0.1:1002;"
             " server 127.0.0.1:1003; balance hash $remote_addr consistent; }\n" SRV);
    struct gh_ups_gen *g = gh_ups_gen_new(&CTX, c);
    const struct gh_upstream_conf *h = ups_named(c, "h");
    assert_int_equal(g->ring[h->index].n, 3 * GH_BALANCE_RING_POINTS);
    int seen[3] = {0};
    for (int k = 0; k < 300; k++) {
        char key[16];
        int len = snprintf(key, sizeof(key), "10.1.%d.%d", k / 256, k % 256);
        struct gh_ups_try t = {.ups = h, .key = key, .key_len = (size_t)len};
        assert_int_equal(gh_ups_pick(g, &t), 0);
        uint32_t first = t.server;
        seen[first]++;
        assert_true(t.key_hashed);
        /* the same key again: the same server; a retry (first tried): another */
        struct gh_ups_try t2 = {.ups = h, .key = key, .key_len = (size_t)len};
        gh_ups_pick(g, &t2);
        assert_int_equal(t2.server, first);
        t.key = NULL;
        t.tried = 1ull << first;
        t.attempts = 1;
        assert_int_equal(gh_ups_pick(g, &t), 0);
        assert_int_not_equal(t.server, first);
    }
    assert_true(seen[0] > 50 && seen[1] > 50 && seen[2] > 50);
    gh_ups_gen_free(g);
    gh_conf_unref(c);
}

/* ---- a tiny origin ---- */

struct origin {
    int lfd;
    uint16_t port;
};

static void
origin_open(struct origin *o)
{
    o->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(o->lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(o->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(o->lfd, 16), 0);
    assert_int_equal(getsockname(o->lfd, (struct sockaddr *)&sa, &len), 0);
    o->port = ntohs(sa.sin_port);
}

/* A port nothing listens on. */
static uint16_t
closed_port(void)
{
    struct origin o;
    origin_open(&o);
    close(o.lfd);
    return o.port;
}

static void
wait_fd(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    assert_int_equal(poll(&p, 1, 5000), 1);
}

static int
origin_accept(struct origin *o)
{
    wait_fd(o->lfd, POLLIN);
    int fd = accept4(o->lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

/* The origin reads exactly the n bytes want (blocking, bounded by poll). */
static void
origin_expect(int fd, const char *want, size_t n)
{
    char *got = malloc(n + 1);
    size_t have = 0;
    while (have < n) {
        wait_fd(fd, POLLIN);
        ssize_t r = read(fd, got + have, n - have);
        assert_true(r > 0);
        have += (size_t)r;
    }
    assert_memory_equal(got, want, n);
    free(got);
}

static void
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

/* Wait until n bytes wait in fd's receive queue. */
static void
wait_inq(int fd, int n)
{
    for (int i = 0; i < 5000; i++) {
        int q = 0;
        assert_int_equal(ioctl(fd, FIONREAD, &q), 0);
        if (q >= n)
            return;
        usleep(1000);
    }
    fail_msg("%d bytes never arrived", n);
}

/* Has the origin's side of the connection seen it closed? (a FIN; or a reset when the client
 * closed with bytes it had not read, as the kernel then resets) */
static void
origin_sees_eof(int fd)
{
    char c;
    wait_fd(fd, POLLIN);
    ssize_t r = read(fd, &c, 1);
    assert_true(r == 0 || (r == -1 && errno == ECONNRESET));
}

static void
reset_close(int fd)
{
    struct linger lg = {1, 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(fd);
}

/* ---- the client's user: what the sink heard ---- */

struct rec {
    struct gh_upconn *u;
    int events, timeouts;
    int heads;
    uint16_t status;
    int head_body; /* enum gh_h1_body as the head said */
    char head_x[32];
    int interims;
    uint16_t interim_status[4];
    int interim_ret; /* what interim returns (0 go on, 1 pause) */
    ssize_t room;    /* what head returns */
    char *body;
    size_t body_len;
    int body_calls;
    bool done;
};

static void
rec_reset(struct rec *r)
{
    struct gh_upconn *u = r->u;
    char *body = r->body;
    memset(r, 0, sizeof(*r));
    r->u = u;
    r->body = body != NULL ? body : malloc(1 << 20);
    r->room = GH_BUF_SIZE;
}

static void
on_event(struct gh_upconn *u)
{
    struct rec *r = u->owner;
    r->events++;
}

static void
on_timeout(struct gh_upconn *u, enum gh_upconn_timer which)
{
    struct rec *r = u->owner;
    (void)which;
    r->timeouts++;
}

static const struct gh_upconn_ops ops = {on_event, on_timeout};

static ssize_t
sink_head(void *ctx, const struct gh_h1_response *rs, enum gh_h1_body body, bool *reframe)
{
    struct rec *r = ctx;
    (void)reframe;
    r->heads++;
    r->status = rs->status;
    r->head_body = (int)body;
    for (uint32_t i = 0; i < rs->num_headers; i++)
        if (rs->headers[i].name_len == 1 && rs->headers[i].name[0] == 'X')
            snprintf(r->head_x, sizeof(r->head_x), "%.*s", (int)rs->headers[i].value_len,
                     rs->headers[i].value);
    return r->room;
}

static int
sink_interim(void *ctx, const struct gh_h1_response *rs)
{
    struct rec *r = ctx;
    assert_true(rs->status >= 100 && rs->status < 200);
    if (r->interims < 4)
        r->interim_status[r->interims] = rs->status;
    r->interims++;
    return r->interim_ret;
}

static int
sink_body(void *ctx, const struct iovec *spans, int n, bool done)
{
    struct rec *r = ctx;
    assert_false(r->done); /* nothing after the end */
    assert_int_equal(r->heads, 1);
    for (int i = 0; i < n; i++) {
        assert_true(spans[i].iov_len > 0);
        assert_true(r->body_len + spans[i].iov_len <= (1 << 20));
        memcpy(r->body + r->body_len, spans[i].iov_base, spans[i].iov_len);
        r->body_len += spans[i].iov_len;
    }
    r->body_calls++;
    r->done = done;
    return 0;
}

static const struct gh_upconn_sink sink = {sink_head, sink_interim, sink_body};

/* Read what is there (waiting for one event first when nothing is). Returns GH_PUMP_MOVED, or
 * what ended it: GH_BAD, GH_PUMP_ENDED. */
static int
pump_recv(struct rec *r)
{
    for (int i = 0; i < 3 && !gh_upconn_has_input(r->u); i++)
        assert_true(gh_loop_run_once(L, 2000) >= 0);
    assert_true(gh_upconn_has_input(r->u)); /* else a wake-up was lost */
    while (gh_upconn_has_input(r->u) && !r->done) {
        int rc = gh_upconn_recv(r->u, &sink, r);
        if (rc == GH_BAD || rc == GH_PUMP_ENDED)
            return rc;
        assert_true(rc == GH_PUMP_MOVED || rc == GH_PUMP_BLOCKED);
        if (rc == GH_PUMP_BLOCKED)
            break;
    }
    return GH_PUMP_MOVED;
}

/* How the origin cuts its response into writes. */
#define WHOLE 0
#define BYTES 1
#define RANDOM ((size_t)-1)

/* The origin writes resp[0..len) (then its end of stream when eof), the client reads after
 * each write. Returns GH_PUMP_MOVED once the response is complete, or GH_BAD / ENDED. */
static int
respond(struct rec *r, int ofd, const char *resp, size_t len, size_t piece, bool eof)
{
    uint32_t seed = 7;
    size_t off = 0;
    while (off < len) {
        size_t k = len - off;
        if (piece == RANDOM) {
            seed = seed * 1103515245 + 12345;
            k = GH_MIN(k, 1 + (seed >> 16) % 17);
        } else if (piece != WHOLE) {
            k = GH_MIN(k, piece);
        }
        write_all(ofd, resp + off, k);
        off += k;
        if (off == len && eof)
            assert_int_equal(shutdown(ofd, SHUT_WR), 0);
        int rc = pump_recv(r);
        if (rc != GH_PUMP_MOVED)
            return rc;
        if (r->done)
            return GH_PUMP_MOVED;
    }
    if (len == 0 && eof)
        assert_int_equal(shutdown(ofd, SHUT_WR), 0);
    for (int i = 0; i < 100 && !r->done; i++) {
        int rc = pump_recv(r);
        if (rc != GH_PUMP_MOVED)
            return rc;
    }
    assert_true(r->done);
    return GH_PUMP_MOVED;
}

static const struct gh_upconn_params P = {.connect_ms = 5000,
                                          .first_byte_ms = 5000,
                                          .read_ms = 5000,
                                          .keepalive_ms = 60000,
                                          .keepalive_max = 4};

/* One origin, one upstream naming it, one generation. */
struct fx {
    struct origin o;
    struct gh_config *cfg;
    struct gh_ups_gen *g;
    const struct gh_upstream_conf *ups;
    struct gh_ups_try t;
    struct gh_upconn_params p;
    struct rec r;
    int ofd; /* the origin's side of the connection (-1: none) */
};

static void
fx_open(struct fx *f)
{
    memset(f, 0, sizeof(*f));
    origin_open(&f->o);
    f->cfg = load("upstream o { server 127.0.0.1:%u; }\n" SRV, f->o.port);
    f->g = gh_ups_gen_new(&CTX, f->cfg);
    assert_non_null(f->g);
    f->ups = ups_named(f->cfg, "o");
    f->p = P;
    f->ofd = -1;
    rec_reset(&f->r);
}

static struct gh_peer *
fx_peer(struct fx *f)
{
    return peer_of(f->g, f->ups, 0);
}

/* Get a connection (a pooled one when there is one) and wait until it is connected. */
static void
fx_connect(struct fx *f)
{
    f->t = (struct gh_ups_try){.ups = f->ups};
    gh_ups_pick(f->g, &f->t);
    rec_reset(&f->r);
    assert_int_equal(gh_ups_connect(f->g, &f->t, false, &f->p, &ops, &f->r, &f->r.u), 0);
    struct gh_upconn *u = f->r.u;
    assert_ptr_equal(u->owner, &f->r);
    if (u->flags & GH_UPCONN_REUSED) {
        assert_int_equal(u->state, GH_UPCONN_ACTIVE);
        return;
    }
    if (f->ofd >= 0)
        close(f->ofd);
    f->ofd = origin_accept(&f->o);
    for (int i = 0; i < 100 && u->state == GH_UPCONN_CONNECTING; i++)
        assert_true(gh_loop_run_once(L, 2000) >= 0);
    assert_int_equal(u->state, GH_UPCONN_ACTIVE);
    assert_int_equal(gh_upconn_connect_result(u), 0);
    assert_true(f->r.events > 0);
}

static const char REQ[] = "GET /x HTTP/1.1\r\nHost: o\r\n\r\n";

/* Send REQ (no body), check the origin got it, have it answer. */
static int
fx_exchange(struct fx *f, const char *resp, size_t len, size_t piece, bool eof)
{
    struct gh_upconn *u = f->r.u;
    gh_upconn_start(u, REQ, sizeof(REQ) - 1, false);
    assert_true(gh_upconn_has_output(u));
    assert_int_equal(gh_upconn_send(u), GH_PUMP_MOVED);
    assert_false(gh_upconn_has_output(u));
    assert_true(u->flags & GH_UPCONN_HEAD_SENT);
    assert_true(u->flags & GH_UPCONN_REQ_DONE);
    assert_false(gh_upconn_wants_body(u));
    origin_expect(f->ofd, REQ, sizeof(REQ) - 1);
    return respond(&f->r, f->ofd, resp, len, piece, eof);
}

/* The attempt ends well and the connection is let go: pooled (true) or closed. */
static bool
fx_release(struct fx *f)
{
    gh_ups_attempt_done(f->g, &f->t, GH_BALANCE_OK);
    struct gh_upconn *u = f->r.u;
    uint32_t idle = fx_peer(f)->n_idle;
    gh_upconn_release(u);
    f->r.u = NULL;
    if (u->state == GH_UPCONN_IDLE) {
        assert_int_equal(fx_peer(f)->n_idle, idle + 1);
        assert_ptr_equal(fx_peer(f)->idle, u);
        assert_null(u->ops);
        return true;
    }
    assert_int_equal(u->state, GH_UPCONN_CLOSED); /* freed at the end of the batch */
    assert_int_equal(fx_peer(f)->n_idle, idle);
    return false;
}

static void
fx_close(struct fx *f)
{
    if (f->r.u != NULL) {
        gh_ups_attempt_done(f->g, &f->t, GH_BALANCE_CANCELLED);
        gh_upconn_close(f->r.u);
    }
    if (f->ofd >= 0)
        close(f->ofd);
    close(f->o.lfd);
    free(f->r.body);
    gh_ups_gen_free(f->g);
    gh_conf_unref(f->cfg);
}

#define S(lit) lit, sizeof(lit) - 1

static void
assert_body(const struct rec *r, const char *want)
{
    assert_true(r->done);
    assert_int_equal(r->body_len, strlen(want));
    assert_memory_equal(r->body, want, r->body_len);
}

/* ---- connecting and attempts ---- */

static void
test_connect_counts_in_flight(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    assert_int_equal(fx_peer(&f)->inflight, 0);
    fx_connect(&f);
    assert_true(f.t.in_flight);
    assert_int_equal(f.t.attempts, 1);
    assert_int_equal(f.t.tried, 1);
    assert_int_equal(f.g->bal[f.g->off[f.ups->index]].inflight, 1);
    assert_int_equal(fx_peer(&f)->inflight, 1);
    assert_int_equal(CTX.n_conns, 1);
    assert_int_equal(fx_peer(&f)->refs, 2); /* the generation's and the connection's */
    gh_ups_attempt_done(f.g, &f.t, GH_BALANCE_OK);
    assert_false(f.t.in_flight);
    assert_int_equal(f.g->bal[f.g->off[f.ups->index]].inflight, 0);
    assert_int_equal(fx_peer(&f)->inflight, 0);
    assert_false(gh_peer_down(&CTX, fx_peer(&f)));
    /* again, with nothing in flight: no underflow */
    gh_ups_attempt_done(f.g, &f.t, GH_BALANCE_OK);
    assert_int_equal(fx_peer(&f)->inflight, 0);
    assert_int_equal(f.g->bal[f.g->off[f.ups->index]].inflight, 0);
    gh_upconn_close(f.r.u);
    f.r.u = NULL;
    assert_int_equal(CTX.n_conns, 0);
    assert_int_equal(fx_peer(&f)->refs, 1);
    /* a connect failure afterwards is still recorded */
    gh_ups_attempt_done(f.g, &f.t, GH_BALANCE_CONNECT);
    assert_true(gh_peer_down(&CTX, fx_peer(&f)));
    assert_int_equal(fx_peer(&f)->inflight, 0);
    /* no attempt at all (ups not set): nothing */
    struct gh_ups_try none = {0};
    gh_ups_attempt_done(f.g, &none, GH_BALANCE_CONNECT);
    fx_close(&f);
}

static void
test_connect_outcome_marks_down(void **state)
{
    (void)state;
    struct origin o;
    origin_open(&o);
    struct gh_config *c = load("upstream u { server 127.0.0.1:%u; server 127.0.0.1:%u; }\n" SRV,
                               o.port, closed_port());
    struct gh_ups_gen *g = gh_ups_gen_new(&CTX, c);
    const struct gh_upstream_conf *u = ups_named(c, "u");
    struct rec r;
    memset(&r, 0, sizeof(r));
    rec_reset(&r);
    /* the second server: a port nothing listens on. The connect is in progress at first
     * (loopback answers a SYN with a reset asynchronously); the loop reports the refusal */
    struct gh_ups_try t = {.ups = u, .server = 1};
    assert_int_equal(gh_ups_connect(g, &t, false, &P, &ops, &r, &r.u), 0);
    assert_int_equal(t.server, 1);
    assert_int_equal(peer_of(g, u, 1)->inflight, 1);
    for (int i = 0; i < 100 && r.events == 0; i++)
        assert_true(gh_loop_run_once(L, 2000) >= 0);
    assert_int_equal(r.u->state, GH_UPCONN_CONNECTING);
    assert_int_equal(gh_upconn_connect_result(r.u), ECONNREFUSED);
    /* the user's verdict: a connect failure */
    gh_upconn_close(r.u);
    gh_ups_attempt_done(g, &t, GH_BALANCE_CONNECT);
    assert_false(t.in_flight);
    assert_int_equal(peer_of(g, u, 1)->inflight, 0);
    assert_true(gh_peer_down(&CTX, peer_of(g, u, 1)));
    assert_false(gh_peer_down(&CTX, peer_of(g, u, 0)));
    /* the next pick of this request and the picks of others avoid it */
    gh_ups_pick(g, &t);
    assert_int_equal(t.server, 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(pick(g, u, 0), 0);
    /* a broken connection does not mark down (only connect failures and timeouts count) */
    struct gh_ups_try t2 = {.ups = u};
    gh_ups_pick(g, &t2);
    assert_int_equal(gh_ups_connect(g, &t2, false, &P, &ops, &r, &r.u), 0);
    gh_ups_attempt_done(g, &t2, GH_BALANCE_BROKEN);
    assert_false(gh_peer_down(&CTX, peer_of(g, u, 0)));
    assert_int_equal(peer_of(g, u, 0)->fails, 0);
    gh_upconn_close(r.u);
    /* a timeout does (max_fails 1, the default) */
    struct gh_ups_try t3 = {.ups = u};
    gh_ups_pick(g, &t3);
    assert_int_equal(gh_ups_connect(g, &t3, false, &P, &ops, &r, &r.u), 0);
    gh_ups_attempt_done(g, &t3, GH_BALANCE_TIMEOUT);
    assert_true(gh_peer_down(&CTX, peer_of(g, u, 0)));
    gh_upconn_close(r.u);
    free(r.body);
    close(o.lfd);
    gh_ups_gen_free(g);
    gh_conf_unref(c);
}

/* A connect that fails at once (224.0.0.1: TCP to a multicast address is refused by the
 * kernel before any packet leaves) marks the server down and moves on to the next. */
static void
test_connect_immediate_failure_moves_on(void **state)
{
    (void)state;
    struct origin o;
    origin_open(&o);
    struct gh_config *c = load("upstream u { server 224.0.0.1:80; server 127.0.0.1:%u; }\n"
                               "upstream dead { server 224.0.0.1:80; server 224.0.0.2:80; }\n" SRV,
                               o.port);
    struct gh_ups_gen *g = gh_ups_gen_new(&CTX, c);
    const struct gh_upstream_conf *u = ups_named(c, "u"), *dead = ups_named(c, "dead");
    struct rec r;
    memset(&r, 0, sizeof(r));
    rec_reset(&r);
    struct gh_ups_try t = {.ups = u};
    gh_ups_pick(g, &t);
    assert_int_equal(t.server, 0); /* round robin starts with the first */
    assert_int_equal(gh_ups_connect(g, &t, false, &P, &ops, &r, &r.u), 0);
    assert_int_equal(t.server, 1);
    assert_int_equal(t.attempts, 2);
    assert_int_equal(t.tried, 3);
    assert_true(t.in_flight);
    assert_true(gh_peer_down(&CTX, peer_of(g, u, 0)));
    assert_int_equal(peer_of(g, u, 0)->inflight, 0);
    assert_int_equal(peer_of(g, u, 1)->inflight, 1);
    assert_int_equal(g->bal[g->off[u->index] + 0].inflight, 0);
    assert_int_equal(g->bal[g->off[u->index] + 1].inflight, 1);
    assert_ptr_equal(r.u->owner, &r);
    gh_ups_attempt_done(g, &t, GH_BALANCE_OK);
    gh_upconn_close(r.u);
    r.u = NULL;

    /* nothing reachable: the error, nothing attached, nothing in flight. 224.0.0.1 is down
     * already (the same peer as u's first server): 224.0.0.2 is tried, and no retry goes to a
     * server that is down */
    struct gh_ups_try td = {.ups = dead};
    assert_int_equal(gh_ups_pick(g, &td), 0);
    assert_int_equal(td.server, 1);
    struct gh_upconn *out = NULL;
    assert_int_equal(gh_ups_connect(g, &td, false, &P, &ops, &r, &out), -ENETUNREACH);
    assert_null(out);
    assert_false(td.in_flight);
    assert_int_equal(td.attempts, 1);
    assert_true(gh_peer_down(&CTX, peer_of(g, dead, 0)));
    assert_true(gh_peer_down(&CTX, peer_of(g, dead, 1)));
    assert_int_equal(peer_of(g, dead, 1)->inflight, 0);
    assert_int_equal(CTX.n_conns, 0);
    free(r.body);
    close(o.lfd);
    gh_ups_gen_free(g);
    gh_conf_unref(c);
}

/* ---- responses ---- */

static void
test_resp_content_length(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    static const char resp[] = "HTTP/1.1 200 OK\r\nX: y\r\nContent-Length: 5\r\n\r\nhello";
    size_t modes[3] = {WHOLE, BYTES, RANDOM};
    struct gh_upconn *first = NULL;
    for (int m = 0; m < 3; m++) {
        fx_connect(&f);
        if (m == 0)
            first = f.r.u;
        else /* the same connection, from the pool */
            assert_true((f.r.u == first) && (f.r.u->flags & GH_UPCONN_REUSED));
        assert_int_equal(fx_exchange(&f, S(resp), modes[m], false), GH_PUMP_MOVED);
        assert_int_equal(f.r.heads, 1);
        assert_int_equal(f.r.status, 200);
        assert_int_equal(f.r.head_body, GH_H1_BODY_LENGTH);
        assert_string_equal(f.r.head_x, "y");
        assert_body(&f.r, "hello");
        assert_true(f.r.u->flags & GH_UPCONN_RESP_DONE);
        assert_true(f.r.u->flags & GH_UPCONN_REUSABLE);
        assert_null(f.r.u->in);
        assert_null(f.r.u->head); /* a response byte came: the head is the user's again */
        assert_true(fx_release(&f));
        assert_int_equal(fx_peer(&f)->n_idle, 1);
    }
    assert_int_equal(CTX.n_conns, 1);
    fx_close(&f);
}

static void
test_resp_chunked(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    static const char resp[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
    size_t modes[3] = {WHOLE, BYTES, RANDOM};
    for (int m = 0; m < 3; m++) {
        fx_connect(&f);
        assert_int_equal(fx_exchange(&f, S(resp), modes[m], false), GH_PUMP_MOVED);
        assert_int_equal(f.r.head_body, GH_H1_BODY_CHUNKED);
        assert_body(&f.r, "hello world");
        assert_true(f.r.u->flags & GH_UPCONN_REUSABLE);
        assert_true(fx_release(&f));
    }
    fx_close(&f);
}

/* Bodies larger than the read buffer, and more chunks than one call hands on: the rest is
 * taken from the buffer or the socket on the next calls, the chunk decoder resumes across reads. */
static void
test_resp_large_bodies(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    enum { BIG = 300000 };
    char *body = malloc(BIG);
    for (int i = 0; i < BIG; i++)
        body[i] = (char)('A' + i % 57);
    char *resp = malloc(BIG + 4096);
    for (int kind = 0; kind < 3; kind++) {
        size_t n = 0, want_len = BIG;
        if (kind == 0) {
            n = (size_t)sprintf(resp, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BIG);
            memcpy(resp + n, body, BIG);
            n += BIG;
        } else if (kind == 1) { /* three chunks of 100000 */
            n = (size_t)sprintf(resp, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            for (int c = 0; c < 3; c++) {
                n += (size_t)sprintf(resp + n, "%x\r\n", BIG / 3);
                memcpy(resp + n, body + c * (BIG / 3), BIG / 3);
                n += BIG / 3;
                memcpy(resp + n, "\r\n", 2);
                n += 2;
            }
            memcpy(resp + n, "0\r\n\r\n", 5);
            n += 5;
        } else { /* 200 chunks of one byte */
            want_len = 200;
            n = (size_t)sprintf(resp, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            for (int c = 0; c < 200; c++)
                n += (size_t)sprintf(resp + n, "1\r\n%c\r\n", body[c]);
            n += (size_t)sprintf(resp + n, "0\r\n\r\n");
        }
        fx_connect(&f);
        int big = 1 << 20;
        assert_int_equal(setsockopt(f.r.u->x.io.fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big)), 0);
        assert_int_equal(setsockopt(f.ofd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big)), 0);
        assert_int_equal(fx_exchange(&f, resp, n, WHOLE, false), GH_PUMP_MOVED);
        assert_int_equal(f.r.body_len, want_len);
        assert_memory_equal(f.r.body, body, want_len);
        assert_true(f.r.body_calls > 1);
        assert_true(f.r.u->flags & GH_UPCONN_REUSABLE);
        assert_true(fx_release(&f));
    }
    free(resp);
    free(body);
    fx_close(&f);
}

static void
test_resp_close_delimited(void **state)
{
    (void)state;
    static const char *const resps[2] = {
        "HTTP/1.1 200 OK\r\nX: y\r\n\r\nuntil the end",
        /* HTTP/1.0, even with keep-alive: without a length the end is the close */
        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nuntil the end",
    };
    size_t modes[2] = {WHOLE, BYTES};
    for (int i = 0; i < 2; i++)
        for (int m = 0; m < 2; m++) {
            struct fx f;
            fx_open(&f);
            fx_connect(&f);
            assert_int_equal(fx_exchange(&f, resps[i], strlen(resps[i]), modes[m], true),
                             GH_PUMP_MOVED);
            assert_int_equal(f.r.head_body, GH_H1_BODY_CLOSE);
            assert_body(&f.r, "until the end");
            assert_true(f.r.u->flags & GH_UPCONN_RESP_DONE);
            assert_false(f.r.u->flags & GH_UPCONN_REUSABLE);
            assert_false(fx_release(&f));
            assert_int_equal(CTX.n_conns, 0);
            fx_close(&f);
        }
}

static void
test_resp_interim_then_final(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    static const char resp[] = "HTTP/1.1 100 Continue\r\n\r\n"
                               "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                               "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    size_t modes[3] = {WHOLE, BYTES, RANDOM};
    for (int m = 0; m < 3; m++) {
        fx_connect(&f);
        assert_int_equal(fx_exchange(&f, S(resp), modes[m], false), GH_PUMP_MOVED);
        assert_int_equal(f.r.interims, 2);
        assert_int_equal(f.r.interim_status[0], 100);
        assert_int_equal(f.r.interim_status[1], 103);
        assert_int_equal(f.r.heads, 1);
        assert_int_equal(f.r.status, 200);
        assert_body(&f.r, "ok");
        assert_true(f.r.u->flags & GH_UPCONN_REUSABLE);
        assert_true(fx_release(&f));
    }
    /* the sink pauses after each interim, whatever the splits */
    for (int m = 0; m < 3; m++) {
        fx_connect(&f);
        f.r.interim_ret = 1;
        assert_int_equal(fx_exchange(&f, S(resp), modes[m], false), GH_PUMP_MOVED);
        assert_int_equal(f.r.interims, 2);
        assert_int_equal(f.r.heads, 1);
        assert_body(&f.r, "ok");
        assert_true(fx_release(&f));
    }
    /* the sink pauses after each interim (its receiver has not taken it): one head per call,
     * the rest waits in the connection and needs no new read */
    fx_connect(&f);
    f.r.interim_ret = 1;
    gh_upconn_start(f.r.u, REQ, sizeof(REQ) - 1, false);
    assert_int_equal(gh_upconn_send(f.r.u), GH_PUMP_MOVED);
    origin_expect(f.ofd, REQ, sizeof(REQ) - 1);
    write_all(f.ofd, S(resp));
    wait_inq(f.r.u->x.io.fd, (int)sizeof(resp) - 1);
    for (int i = 0; i < 100 && !gh_upconn_has_input(f.r.u); i++)
        assert_true(gh_loop_run_once(L, 2000) >= 0);
    assert_int_equal(gh_upconn_recv(f.r.u, &sink, &f.r), GH_PUMP_MOVED);
    assert_int_equal(f.r.interims, 1);
    assert_int_equal(f.r.heads, 0);
    assert_false(gh_xprt_is(&f.r.u->x, GH_XPRT_CAN_READ)); /* the socket is empty... */
    assert_true(gh_upconn_has_input(f.r.u));               /* ...but there is more */
    assert_int_equal(gh_upconn_recv(f.r.u, &sink, &f.r), GH_PUMP_MOVED);
    assert_int_equal(f.r.interims, 2);
    assert_int_equal(f.r.heads, 0);
    assert_true(gh_upconn_has_input(f.r.u));
    assert_int_equal(gh_upconn_recv(f.r.u, &sink, &f.r), GH_PUMP_MOVED);
    assert_int_equal(f.r.heads, 1);
    assert_body(&f.r, "ok");
    assert_false(gh_upconn_has_input(f.r.u));
    assert_true(fx_release(&f));
    fx_close(&f);
}

/* 204 and 304 have no body whatever they declare: reading one would eat the next response. */
static void
test_resp_no_body_statuses(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    static const char r204[] = "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n";
    static const char r304[] = "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n";
    static const char r200[] = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext";
    const char *resps[3] = {r204, r304, r200};
    for (int i = 0; i < 3; i++) {
        fx_connect(&f);
        assert_int_equal(fx_exchange(&f, resps[i], strlen(resps[i]), WHOLE, false), GH_PUMP_MOVED);
        assert_int_equal(f.r.status, i == 0 ? 204 : i == 1 ? 304 : 200);
        assert_int_equal(f.r.head_body, i < 2 ? GH_H1_BODY_NONE : GH_H1_BODY_LENGTH);
        assert_body(&f.r, i < 2 ? "" : "next");
        assert_true(f.r.u->flags & GH_UPCONN_REUSABLE);
        assert_true(fx_release(&f));
    }
    /* HEAD: a declared length, no body */
    f.p.head_request = true;
    fx_connect(&f);
    assert_int_equal(
        fx_exchange(&f, S("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"), WHOLE, false),
        GH_PUMP_MOVED);
    assert_int_equal(f.r.head_body, GH_H1_BODY_NONE);
    assert_body(&f.r, "");
    assert_true(fx_release(&f));
    fx_close(&f);
}

static void
test_resp_not_reusable(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    /* HTTP/1.1 with Connection: close */
    fx_connect(&f);
    assert_int_equal(
        fx_exchange(&f, S("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na"),
                    WHOLE, false),
        GH_PUMP_MOVED);
    assert_body(&f.r, "a");
    assert_false(f.r.u->flags & GH_UPCONN_REUSABLE);
    assert_false(fx_release(&f));
    origin_sees_eof(f.ofd);
    /* HTTP/1.0 without keep-alive */
    fx_connect(&f);
    assert_int_equal(
        fx_exchange(&f, S("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb"), WHOLE, false),
        GH_PUMP_MOVED);
    assert_false(f.r.u->flags & GH_UPCONN_REUSABLE);
    assert_false(fx_release(&f));
    /* HTTP/1.0 with keep-alive and a length: kept */
    fx_connect(&f);
    assert_int_equal(
        fx_exchange(&f,
                    S("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nc"),
                    WHOLE, false),
        GH_PUMP_MOVED);
    assert_true(f.r.u->flags & GH_UPCONN_REUSABLE);
    assert_true(fx_release(&f));
    /* a pool with no room (keepalive 0) */
    f.p.keepalive_max = 0;
    fx_connect(&f);
    assert_true(f.r.u->flags & GH_UPCONN_REUSED);
    assert_int_equal(
        fx_exchange(&f, S("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nd"), WHOLE, false),
        GH_PUMP_MOVED);
    assert_true(f.r.u->flags & GH_UPCONN_REUSABLE);
    assert_false(fx_release(&f));
    origin_sees_eof(f.ofd);
    fx_close(&f);
}

/* The origin sent more than the response it framed: the connection cannot be trusted. */
static void
test_resp_bytes_past_the_body(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    fx_connect(&f);
    assert_int_equal(
        fx_exchange(&f, S("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"), WHOLE, false),
        GH_PUMP_MOVED);
    assert_body(&f.r, "ok");
    assert_true(f.r.u->flags & GH_UPCONN_RESP_DONE);
    assert_false(f.r.u->flags & GH_UPCONN_REUSABLE);
    assert_false(fx_release(&f));
    assert_int_equal(fx_peer(&f)->n_idle, 0);
    origin_sees_eof(f.ofd);

    /* the same with a chunked body */
    fx_connect(&f);
    assert_int_equal(
        fx_exchange(&f,
                    S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nX"),
                    WHOLE, false),
        GH_PUMP_MOVED);
    assert_body(&f.r, "ok");
    assert_false(f.r.u->flags & GH_UPCONN_REUSABLE);
    assert_false(fx_release(&f));
    origin_sees_eof(f.ofd);
    fx_close(&f);
}

/* A response that ends exactly where the read buffer ends: the read filled the buffer, so the
 * socket's edge may be spent; release must look (MSG_PEEK) before pooling. */
static void
test_resp_ends_at_buffer_boundary(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    char head[64];
    int hl = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n");
    size_t body_len = GH_BUF_SIZE - (size_t)hl;
    assert_true(body_len >= 10000 && body_len < 100000);
    hl = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", body_len);
    char *resp = malloc(GH_BUF_SIZE + 1);
    memcpy(resp, head, (size_t)hl);
    memset(resp + hl, 'b', body_len);
    resp[GH_BUF_SIZE] = 'X';
    for (int stray = 1; stray >= 0; stray--) {
        fx_connect(&f);
        int big = 1 << 20;
        assert_int_equal(setsockopt(f.r.u->x.io.fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big)), 0);
        gh_upconn_start(f.r.u, REQ, sizeof(REQ) - 1, false);
        assert_int_equal(gh_upconn_send(f.r.u), GH_PUMP_MOVED);
        origin_expect(f.ofd, REQ, sizeof(REQ) - 1);
        write_all(f.ofd, resp, GH_BUF_SIZE + (size_t)stray);
        wait_inq(f.r.u->x.io.fd, GH_BUF_SIZE + stray);
        assert_int_equal(respond(&f.r, f.ofd, "", 0, WHOLE, false), GH_PUMP_MOVED);
        assert_int_equal(f.r.body_len, body_len);
        assert_true(f.r.u->flags & GH_UPCONN_REUSABLE);
        assert_null(f.r.u->in);
        /* the read took exactly a buffer: CAN_READ stays, nothing told it the socket is empty */
        assert_true(gh_xprt_is(&f.r.u->x, GH_XPRT_CAN_READ));
        if (stray) {
            assert_false(fx_release(&f));
            origin_sees_eof(f.ofd);
        } else {
            assert_true(fx_release(&f));
        }
    }
    free(resp);
    fx_close(&f);
}

/* A pooled connection that the origin writes to or closes is closed by the loop. */
static void
test_pooled_connection_watched(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    f.p.keepalive_ms = 3600000; /* so that only the event can close it */
    for (int how = 0; how < 3; how++) {
        fx_connect(&f);
        assert_int_equal(fx_exchange(&f, S(resp), WHOLE, false), GH_PUMP_MOVED);
        assert_true(fx_release(&f));
        assert_int_equal(CTX.n_conns, 1);
        if (how == 0)
            write_all(f.ofd, "late", 4); /* bytes after the response, once pooled */
        else if (how == 1)
            close(f.ofd);
        else
            reset_close(f.ofd);
        if (how > 0)
            f.ofd = -1;
        for (int i = 0; i < 5 && fx_peer(&f)->n_idle > 0; i++)
            assert_true(gh_loop_run_once(L, 2000) >= 0);
        assert_int_equal(fx_peer(&f)->n_idle, 0);
        assert_null(fx_peer(&f)->idle);
        assert_int_equal(CTX.n_conns, 0);
        if (how == 0)
            origin_sees_eof(f.ofd);
    }
    fx_close(&f);
}

static void
test_pool_timeout_and_stop(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    /* an idle connection is closed when its keep-alive time is up */
    f.p.keepalive_ms = 1;
    fx_connect(&f);
    assert_int_equal(fx_exchange(&f, S(resp), WHOLE, false), GH_PUMP_MOVED);
    assert_true(fx_release(&f));
    for (int i = 0; i < 200 && fx_peer(&f)->n_idle > 0; i++)
        assert_true(gh_loop_run_once(L, 50) >= 0);
    assert_int_equal(fx_peer(&f)->n_idle, 0);
    assert_int_equal(CTX.n_conns, 0);
    origin_sees_eof(f.ofd);
    assert_int_equal(f.r.timeouts, 0); /* the user of a pooled connection hears nothing */

    /* stopping (draining): the pool is emptied, and nothing goes back to it */
    f.p.keepalive_ms = 60000;
    fx_connect(&f);
    assert_int_equal(fx_exchange(&f, S(resp), WHOLE, false), GH_PUMP_MOVED);
    assert_true(fx_release(&f));
    assert_int_equal(CTX.n_conns, 1);
    gh_upstream_ctx_stop(&CTX);
    assert_int_equal(fx_peer(&f)->n_idle, 0);
    assert_int_equal(CTX.n_conns, 0);
    origin_sees_eof(f.ofd);
    fx_connect(&f);
    assert_false(f.r.u->flags & GH_UPCONN_REUSED);
    assert_int_equal(fx_exchange(&f, S(resp), WHOLE, false), GH_PUMP_MOVED);
    assert_true(f.r.u->flags & GH_UPCONN_REUSABLE);
    assert_false(fx_release(&f));
    origin_sees_eof(f.ofd);
    fx_close(&f);
}

/* A reload: the old generation goes, the new one names the same address (in another upstream):
 * it finds the pooled connection. */
static void
test_pool_survives_reload(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    fx_connect(&f);
    struct gh_upconn *u = f.r.u;
    assert_int_equal(fx_exchange(&f, S(resp), WHOLE, false), GH_PUMP_MOVED);
    assert_true(fx_release(&f));
    struct gh_peer *peer = fx_peer(&f);
    gh_ups_gen_free(f.g);
    gh_conf_unref(f.cfg);
    /* the idle connection holds the peer */
    assert_int_equal(CTX.n_peers, 1);
    assert_int_equal(peer->refs, 1);
    assert_int_equal(peer->n_idle, 1);

    f.cfg = load("upstream renamed { server 127.0.0.1:%u weight=3; }\n" SRV, f.o.port);
    f.g = gh_ups_gen_new(&CTX, f.cfg);
    f.ups = ups_named(f.cfg, "renamed");
    assert_ptr_equal(fx_peer(&f), peer);
    assert_int_equal(peer->refs, 2);
    fx_connect(&f);
    assert_ptr_equal(f.r.u, u);
    assert_true(u->flags & GH_UPCONN_REUSED);
    assert_int_equal(peer->n_idle, 0);
    assert_int_equal(fx_exchange(&f, S(resp), BYTES, false), GH_PUMP_MOVED);
    assert_body(&f.r, "ok");
    assert_true(fx_release(&f));
    fx_close(&f);
}

/* The user gives up on a failed attempt. */
static void
fx_fail_close(struct fx *f, enum gh_balance_outcome o)
{
    gh_ups_attempt_done(f->g, &f->t, o);
    gh_upconn_close(f->r.u);
    f->r.u = NULL;
}

static void
test_resp_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
        "HTTP/2.0 200 OK\r\n\r\n",
    };
    struct fx f;
    fx_open(&f);
    for (size_t i = 0; i < GH_ARRAY_LEN(bad); i++)
        for (int m = 0; m < 2; m++) {
            fx_connect(&f);
            int rc = fx_exchange(&f, bad[i], strlen(bad[i]), m ? BYTES : WHOLE, false);
            if (rc != GH_BAD)
                fail_msg("accepted: %s", bad[i]);
            assert_int_equal(f.r.u->err.status, 502);
            assert_non_null(f.r.u->err.reason);
            assert_false(f.r.u->err.before_response);
            assert_int_equal(f.r.heads, 0);
            fx_fail_close(&f, GH_BALANCE_BROKEN);
            assert_false(gh_peer_down(&CTX, fx_peer(&f))); /* broken is not down */
        }
    /* a head that was fine, a body that is not */
    fx_connect(&f);
    assert_int_equal(fx_exchange(&f,
                                 S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   "zz\r\nhello\r\n0\r\n\r\n"),
                                 WHOLE, false),
                     GH_BAD);
    assert_int_equal(f.r.heads, 1);
    assert_false(f.r.done);
    assert_int_equal(f.r.u->err.status, 502);
    assert_non_null(f.r.u->err.reason);
    assert_false(f.r.u->err.before_response);
    fx_fail_close(&f, GH_BALANCE_BROKEN);
    assert_int_equal(CTX.n_conns, 0);
    fx_close(&f);
}

static void
test_resp_origin_closes_early(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    /* closed or reset after taking the request, before any byte: may be retried */
    for (int how = 0; how < 2; how++) {
        fx_connect(&f);
        gh_upconn_start(f.r.u, REQ, sizeof(REQ) - 1, false);
        assert_int_equal(gh_upconn_send(f.r.u), GH_PUMP_MOVED);
        origin_expect(f.ofd, REQ, sizeof(REQ) - 1);
        if (how == 0)
            close(f.ofd);
        else
            reset_close(f.ofd);
        f.ofd = -1;
        assert_int_equal(respond(&f.r, -1, "", 0, WHOLE, false), GH_BAD);
        assert_int_equal(f.r.u->err.status, 502);
        assert_true(f.r.u->err.before_response);
        assert_non_null(f.r.u->err.reason);
        assert_non_null(strstr(f.r.u->err.reason, "before responding"));
        assert_non_null(f.r.u->head); /* not released: a retry sends it again */
        assert_int_equal(f.r.heads, 0);
        fx_fail_close(&f, GH_BALANCE_BROKEN);
    }
    /* after some bytes: not retriable */
    static const char *const cut[] = {
        "HTTP/1.1 200 OK\r\nContent-",
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
    };
    for (size_t i = 0; i < GH_ARRAY_LEN(cut); i++) {
        fx_connect(&f);
        assert_int_equal(fx_exchange(&f, cut[i], strlen(cut[i]), WHOLE, true), GH_BAD);
        assert_int_equal(f.r.u->err.status, 502);
        assert_false(f.r.u->err.before_response);
        assert_non_null(f.r.u->err.reason);
        assert_false(f.r.done);
        if (i > 0) { /* what came of the body was handed on */
            assert_int_equal(f.r.body_len, 3);
            assert_memory_equal(f.r.body, "abc", 3);
        }
        fx_fail_close(&f, GH_BALANCE_BROKEN);
    }
    fx_close(&f);
}

static void
test_resp_switching_protocols(void **state)
{
    (void)state;
    static const char r101[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                               "Connection: upgrade\r\n\r\n";
    struct fx f;
    fx_open(&f);
    /* not asked for */
    fx_connect(&f);
    assert_int_equal(fx_exchange(&f, S(r101), WHOLE, false), GH_BAD);
    assert_int_equal(f.r.u->err.status, 502);
    assert_non_null(f.r.u->err.reason);
    assert_int_equal(f.r.heads, 0);
    fx_fail_close(&f, GH_BALANCE_BROKEN);
    /* asked for: a final head, and the connection belongs to the new protocol */
    f.p.upgrade = true;
    fx_connect(&f);
    assert_int_equal(fx_exchange(&f, S(r101), WHOLE, false), GH_PUMP_MOVED);
    assert_int_equal(f.r.heads, 1);
    assert_int_equal(f.r.status, 101);
    assert_int_equal(f.r.interims, 0);
    assert_int_equal(f.r.head_body, GH_H1_BODY_NONE);
    assert_false(f.r.u->flags & GH_UPCONN_REUSABLE);
    assert_false(fx_release(&f));
    fx_close(&f);
}

/* The receiver has little room when the head goes: the body follows in later calls. */
static void
test_resp_small_room(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    static const char *const resps[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
        "chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n",
    };
    ssize_t rooms[] = {0, 3, 100};
    for (size_t i = 0; i < GH_ARRAY_LEN(resps); i++)
        for (size_t k = 0; k < GH_ARRAY_LEN(rooms); k++) {
            fx_connect(&f);
            f.r.room = rooms[k];
            assert_int_equal(fx_exchange(&f, resps[i], strlen(resps[i]), WHOLE, false),
                             GH_PUMP_MOVED);
            assert_body(&f.r, "0123456789");
            if (i == 0 && rooms[k] == 3)
                assert_true(f.r.body_calls >= 2);
            assert_null(f.r.u->in);
            assert_true(fx_release(&f));
        }
    /* a close-delimited body, with less room than a chunk-size line needs */
    for (size_t k = 0; k < GH_ARRAY_LEN(rooms); k++) {
        fx_connect(&f);
        f.r.room = rooms[k];
        assert_int_equal(fx_exchange(&f, S("HTTP/1.1 200 OK\r\n\r\n0123456789"), WHOLE, true),
                         GH_PUMP_MOVED);
        assert_body(&f.r, "0123456789");
        assert_false(fx_release(&f));
    }
    fx_close(&f);
}

static void
test_sink_ends_exchange(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    fx_connect(&f);
    f.r.room = -1;
    assert_int_equal(
        fx_exchange(&f, S("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), WHOLE, false),
        GH_PUMP_ENDED);
    assert_int_equal(f.r.heads, 1);
    assert_int_equal(f.r.body_calls, 0);
    fx_fail_close(&f, GH_BALANCE_CANCELLED);
    fx_connect(&f);
    f.r.interim_ret = -1;
    assert_int_equal(fx_exchange(&f,
                                 S("HTTP/1.1 103 Early Hints\r\n\r\n"
                                   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
                                 WHOLE, false),
                     GH_PUMP_ENDED);
    assert_int_equal(f.r.interims, 1);
    assert_int_equal(f.r.heads, 0);
    fx_fail_close(&f, GH_BALANCE_CANCELLED);
    fx_close(&f);
}

static const char POST_HEAD[] = "POST /u HTTP/1.1\r\nHost: o\r\nContent-Length: 11\r\n\r\n";
static const char POST_HEAD_CHUNKED[] =
    "POST /u HTTP/1.1\r\nHost: o\r\nTransfer-Encoding: chunked\r\n\r\n";

static void
start_with_body(struct fx *f, const char *head)
{
    struct gh_upconn *u = f->r.u;
    gh_upconn_start(u, head, strlen(head), true);
    assert_int_equal(gh_upconn_send(u), GH_PUMP_MOVED);
    assert_true(u->flags & GH_UPCONN_HEAD_SENT);
    assert_false(u->flags & GH_UPCONN_REQ_DONE);
    assert_false(gh_upconn_has_output(u));
    assert_true(gh_upconn_wants_body(u));
    origin_expect(f->ofd, head, strlen(head));
}

static void
test_request_body(void **state)
{
    (void)state;
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    struct fx f;
    fx_open(&f);
    /* Content-Length: passed as it is */
    f.p.req_body = GH_H1_BODY_LENGTH;
    fx_connect(&f);
    start_with_body(&f, POST_HEAD);
    struct iovec two[2] = {{"hello", 5}, {" world", 6}};
    assert_int_equal(gh_upconn_send_body(f.r.u, two, 2, true), 0);
    assert_true(f.r.u->flags & GH_UPCONN_REQ_DONE);
    assert_true(f.r.u->flags & GH_UPCONN_BODY_SENT);
    assert_false(gh_upconn_wants_body(f.r.u));
    origin_expect(f.ofd, S("hello world"));
    assert_int_equal(respond(&f.r, f.ofd, S(ok), WHOLE, false), GH_PUMP_MOVED);
    assert_true(f.r.u->flags & GH_UPCONN_REUSABLE);
    assert_true(fx_release(&f));

    /* chunked: each hand-over a chunk, the last one ends it */
    f.p.req_body = GH_H1_BODY_CHUNKED;
    fx_connect(&f);
    start_with_body(&f, POST_HEAD_CHUNKED);
    struct iovec one = {"hello", 5};
    assert_int_equal(gh_upconn_send_body(f.r.u, &one, 1, false), 0);
    assert_true(gh_upconn_wants_body(f.r.u));
    assert_int_equal(gh_upconn_send_body(f.r.u, two, 2, false), 0);
    assert_int_equal(gh_upconn_send_body(f.r.u, NULL, 0, true), 0);
    assert_true(f.r.u->flags & GH_UPCONN_REQ_DONE);
    origin_expect(f.ofd, S("5\r\nhello\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
    assert_int_equal(respond(&f.r, f.ofd, S(ok), BYTES, false), GH_PUMP_MOVED);
    assert_true(fx_release(&f));
    fx_close(&f);
}

/* The origin answers before it has the whole request: the connection is not reused (the rest of
 * the request would be taken for the next one). */
static void
test_response_before_request_done(void **state)
{
    (void)state;
    static const char r413[] = "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n";
    struct fx f;
    fx_open(&f);
    f.p.req_body = GH_H1_BODY_LENGTH;
    fx_connect(&f);
    start_with_body(&f, POST_HEAD);
    assert_int_equal(respond(&f.r, f.ofd, S(r413), WHOLE, false), GH_PUMP_MOVED);
    assert_int_equal(f.r.status, 413);
    assert_true(f.r.u->flags & GH_UPCONN_RESP_DONE);
    assert_false(f.r.u->flags & GH_UPCONN_REQ_DONE);
    assert_false(f.r.u->flags & GH_UPCONN_REUSABLE);
    assert_false(fx_release(&f));
    origin_sees_eof(f.ofd);

    /* the same once the user gave up sending (the origin stopped reading) */
    fx_connect(&f);
    start_with_body(&f, POST_HEAD);
    gh_upconn_abandon_request(f.r.u);
    assert_true(f.r.u->flags & GH_UPCONN_ABANDONED);
    assert_false(gh_upconn_wants_body(f.r.u));
    assert_int_equal(respond(&f.r, f.ofd, S(r413), WHOLE, false), GH_PUMP_MOVED);
    assert_false(f.r.u->flags & GH_UPCONN_REUSABLE);
    assert_false(fx_release(&f));
    fx_close(&f);
}

/* The rest of a large Content-Length body moved by splice(2); release then checks the socket
 * for bytes past the body (the splice took exactly what was owed). */
static void
test_splice_body(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f);
    f.p.splice = true;
    enum { BODY = 200000 };
    char head[64];
    int hl = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BODY);
    char *resp = malloc((size_t)hl + BODY + 1);
    memcpy(resp, head, (size_t)hl);
    for (int i = 0; i < BODY; i++)
        resp[hl + i] = (char)('a' + i % 23);
    resp[hl + BODY] = 'X';
    char *got = malloc(BODY);
    for (int stray = 0; stray < 2; stray++) {
        fx_connect(&f);
        int big = 1 << 20;
        assert_int_equal(setsockopt(f.r.u->x.io.fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big)), 0);
        assert_int_equal(setsockopt(f.ofd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big)), 0);
        gh_upconn_start(f.r.u, REQ, sizeof(REQ) - 1, false);
        assert_int_equal(gh_upconn_send(f.r.u), GH_PUMP_MOVED);
        origin_expect(f.ofd, REQ, sizeof(REQ) - 1);
        write_all(f.ofd, resp, (size_t)hl + BODY + (size_t)stray);
        wait_inq(f.r.u->x.io.fd, GH_UPCONN_SPLICE_HEAD_READ);
        /* the first read takes the head and the start of the body only */
        for (int i = 0; i < 100 && !gh_upconn_has_input(f.r.u); i++)
            assert_true(gh_loop_run_once(L, 2000) >= 0);
        assert_int_equal(gh_upconn_recv(f.r.u, &sink, &f.r), GH_PUMP_MOVED);
        assert_int_equal(f.r.heads, 1);
        assert_false(f.r.done);
        assert_true(f.r.body_len > 0 && f.r.body_len <= GH_UPCONN_SPLICE_HEAD_READ);
        assert_true(gh_upconn_can_splice_body(f.r.u));
        size_t rest = BODY - f.r.body_len;
        assert_int_equal(f.r.u->resp_remaining, rest);

        int a, b; /* the client's connection: a is ours to write, b the client reads */
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        a = sv[0];
        b = sv[1];
        struct gh_xprt to;
        gh_xprt_init(&to, a, NULL, GH_XPRT_CAN_WRITE);
        struct gh_pipe *pp = gh_pipe_get();
        uint64_t in = 0, out = 0;
        int err = 0;
        size_t have = 0;
        enum gh_splice_rc st;
        for (int i = 0; i < 100000; i++) {
            st = gh_upconn_splice_body(f.r.u, pp, &to, &in, &out, &err);
            ssize_t r;
            while ((r = read(b, got + have, BODY - have)) > 0)
                have += (size_t)r;
            if (st == GH_SPLICE_DONE)
                break;
            assert_int_equal(st, GH_SPLICE_BLOCKED);
            gh_xprt_set(&to, GH_XPRT_CAN_WRITE); /* the client took what it was given */
            if (!gh_xprt_is(&f.r.u->x, GH_XPRT_CAN_READ))
                assert_true(gh_loop_run_once(L, 2000) > 0);
        }
        assert_int_equal(st, GH_SPLICE_DONE);
        assert_int_equal(in, rest);
        assert_int_equal(out, rest);
        assert_int_equal(f.r.u->resp_remaining, 0);
        assert_true(f.r.u->flags & GH_UPCONN_RESP_DONE);
        while (have < rest) {
            ssize_t r = read(b, got + have, rest - have);
            assert_true(r > 0);
            have += (size_t)r;
        }
        assert_memory_equal(f.r.body, resp + hl, f.r.body_len);
        assert_memory_equal(got, resp + hl + f.r.body_len, rest);
        assert_true(f.r.u->flags & GH_UPCONN_REUSABLE);
        if (stray) {
            assert_false(fx_release(&f));
            origin_sees_eof(f.ofd);
        } else {
            assert_true(fx_release(&f));
        }
        gh_pipe_put(pp);
        close(a);
        close(b);
    }
    gh_pipe_cache_drain();
    free(got);
    free(resp);
    fx_close(&f);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        TEST(test_peer_keyed_by_address_and_xprt),
        TEST(test_peer_table_grows),
        TEST(test_gen_resolves_servers_to_peers),
        TEST(test_generations_share_peers),
        TEST(test_pick_skips_down_and_tried),
        TEST(test_pick_falls_back_to_all),
        TEST(test_pick_single_server),
        TEST(test_pick_round_robin_weights),
        TEST(test_pick_backup_and_max_conns),
        TEST(test_queue),
        TEST(test_passive_health_ejection),
        TEST(test_can_retry),
        TEST(test_active_health),
        TEST(test_fail_on),
        TEST(test_slow_start),
        TEST(test_geo_pick),
        TEST(test_sticky_pick),
        TEST(test_pick_hash_key),
        TEST(test_connect_counts_in_flight),
        TEST(test_connect_outcome_marks_down),
        TEST(test_connect_immediate_failure_moves_on),
        TEST(test_resp_content_length),
        TEST(test_resp_chunked),
        TEST(test_resp_large_bodies),
        TEST(test_resp_close_delimited),
        TEST(test_resp_interim_then_final),
        TEST(test_resp_no_body_statuses),
        TEST(test_resp_not_reusable),
        TEST(test_resp_bytes_past_the_body),
        TEST(test_resp_ends_at_buffer_boundary),
        TEST(test_pooled_connection_watched),
        TEST(test_pool_timeout_and_stop),
        TEST(test_pool_survives_reload),
        TEST(test_resp_malformed),
        TEST(test_resp_origin_closes_early),
        TEST(test_resp_switching_protocols),
        TEST(test_resp_small_room),
        TEST(test_sink_ends_exchange),
        TEST(test_request_body),
        TEST(test_response_before_request_done),
        TEST(test_splice_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
