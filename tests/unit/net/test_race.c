/*
 * test_race.c - connection racing (net/race.c) on the project's loop, against
 * loopback listeners: one that accepts (127.0.0.1), one whose accept queue is
 * full so connects to it are never answered (a black hole on [::1]), and ports
 * nothing listens on (refused at once).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/loop.h"
#include "net/race.h"

struct result {
    int calls, fd, err;
    struct sockaddr_storage addr;
};

static void
on_done(void *arg, int fd, int err, const struct sockaddr_storage *addr)
{
    struct result *r = arg;
    r->calls++;
    r->fd = fd;
    r->err = err;
    if (addr != NULL)
        r->addr = *addr;
}

static struct sockaddr_storage
v4(const char *ip)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &a->sin_addr);
    return ss;
}

static struct sockaddr_storage
v6(const char *ip)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    inet_pton(AF_INET6, ip, &a->sin6_addr);
    return ss;
}

/* A listener on ip (v4 or v6) at port (0: any); its port in *port. */
static int
listener(const struct sockaddr_storage *at, uint16_t *port, int backlog)
{
    struct sockaddr_storage ss = *at;
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    int one = 1;
    if (ss.ss_family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(*port);
    } else {
        ((struct sockaddr_in *)&ss)->sin_port = htons(*port);
    }
    socklen_t len =
        ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
    assert_int_equal(listen(fd, backlog), 0);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* Fill a backlog-0 listener's queue so that the next SYN is dropped; the filler sockets. */
static void
fill(uint16_t port, int *c)
{
    struct sockaddr_storage ss = v6("::1");
    ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
    for (int i = 0; i < 2; i++) {
        c[i] = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)connect(c[i], (struct sockaddr *)&ss, sizeof(struct sockaddr_in6));
    }
    usleep(50000);
}

/* A black hole on [::1]: a backlog-0 listener with a full queue. */
struct hole {
    int ls, filler[2];
    uint16_t port;
    struct sockaddr_storage addr;
};

static void
hole_open(struct hole *h, uint16_t port)
{
    h->addr = v6("::1");
    h->port = port;
    h->ls = listener(&h->addr, &h->port, 0);
    fill(h->port, h->filler);
}

static void
hole_close(struct hole *h)
{
    close(h->filler[0]);
    close(h->filler[1]);
    close(h->ls);
}

static void
run(struct gh_loop *l, struct result *r, int max_ms)
{
    for (int waited = 0; r->calls == 0 && waited < max_ms; waited += 10)
        gh_loop_run_once(l, 10);
}

/* The first address never answers: the second (started 250 ms later) wins, long before the
 * 30 s connect timeout; the winner is the IPv4 address, connected. */
static void
test_black_hole_then_v4(void **state)
{
    (void)state;
    struct gh_loop *l = gh_loop_new();
    uint16_t port = 0;
    struct sockaddr_storage a4 = v4("127.0.0.1");
    int ok = listener(&a4, &port, 16);
    struct hole h;
    hole_open(&h, port);
    struct sockaddr_storage addrs[2] = {h.addr, a4};
    struct gh_race race;
    struct result r = {0};
    gh_race_start(&race, l, addrs, 2, port, 30000, 0, on_done, &r);
    assert_int_equal(r.calls, 0);
    run(l, &r, 5000);
    assert_int_equal(r.calls, 1);
    assert_true(r.fd >= 0);
    assert_int_equal(r.addr.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&r.addr)->sin_port), port);
    int acc = accept(ok, NULL, NULL);
    assert_true(acc >= 0);
    assert_int_equal(write(r.fd, "hi", 2), 2);
    char b[4];
    assert_int_equal(read(acc, b, sizeof(b)), 2);
    close(acc);
    close(r.fd);
    hole_close(&h);
    close(ok);
    gh_loop_free(l);
}

/* Every address refuses: each failure starts the next at once; the callback reports the error
 * once, and a synchronous end (no address at all) calls back before gh_race_start returns. */
static void
test_all_refused(void **state)
{
    (void)state;
    struct gh_loop *l = gh_loop_new();
    uint16_t p1 = 0;
    struct sockaddr_storage a4 = v4("127.0.0.1");
    int tmp = listener(&a4, &p1, 1);
    close(tmp); /* a port nothing listens on now */
    struct sockaddr_storage addrs[3] = {v6("::1"), v4("127.0.0.1"), v4("127.0.0.2")};
    struct gh_race race;
    struct result r = {0};
    gh_race_start(&race, l, addrs, 3, p1, 30000, 0, on_done, &r);
    run(l, &r, 2000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.fd, -1);
    assert_int_equal(r.err, ECONNREFUSED);
    struct result z = {0};
    gh_race_start(&race, l, addrs, 0, p1, 30000, 0, on_done, &z);
    assert_int_equal(z.calls, 1);
    assert_int_equal(z.fd, -1);
    gh_race_cancel(&race); /* harmless after the end */
    gh_loop_free(l);
}

/* Each attempt has its own deadline: a lone black hole times out with ETIMEDOUT. */
static void
test_timeout(void **state)
{
    (void)state;
    struct gh_loop *l = gh_loop_new();
    struct hole h;
    hole_open(&h, 0);
    struct gh_race race;
    struct result r = {0};
    gh_race_start(&race, l, &h.addr, 1, h.port, 200, 0, on_done, &r);
    run(l, &r, 5000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.err, ETIMEDOUT);
    hole_close(&h);
    gh_loop_free(l);
}

/* Cancelled while connecting: no callback, no socket left behind. */
static void
test_cancel(void **state)
{
    (void)state;
    struct gh_loop *l = gh_loop_new();
    struct hole h;
    hole_open(&h, 0);
    struct gh_race race;
    struct result r = {0};
    gh_race_start(&race, l, &h.addr, 1, h.port, 30000, 0, on_done, &r);
    int fd = race.att[0].io.fd;
    assert_true(fd >= 0);
    gh_race_cancel(&race);
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    for (int i = 0; i < 5; i++)
        gh_loop_run_once(l, 10);
    assert_int_equal(r.calls, 0);
    hole_close(&h);
    gh_loop_free(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_black_hole_then_v4),
        cmocka_unit_test(test_all_refused),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
