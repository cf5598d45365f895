/*
 * test_xprt.c - the plain transport over real sockets: its readiness rules
 * (what a receive or a send does to CAN_READ / CAN_WRITE / EOF), flush, the
 * drained check, shutdown and reset as the peer sees them, and the splice pump
 * between two loopback TCP connections (exact byte counts, backpressure).
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
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "net/pipe.h"
#include "net/sock.h"
#include "net/xprt.h"

/* ---- helpers ---- */

static void
set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl != -1);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static void
unix_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

/* A connected loopback TCP pair, both non-blocking: *a connected, *b accepted. rcvbuf_a, when
 * not 0, is set on *a before it connects (so the window it advertises is small). */
static void
tcp_pair_rcvbuf(int *a, int *b, int rcvbuf_a)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    *a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(*a >= 0);
    if (rcvbuf_a != 0)
        assert_int_equal(setsockopt(*a, SOL_SOCKET, SO_RCVBUF, &rcvbuf_a, sizeof(rcvbuf_a)), 0);
    assert_int_equal(connect(*a, (struct sockaddr *)&sa, sizeof(sa)), 0);
    *b = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    assert_true(*b >= 0);
    set_nonblock(*a);
    close(l);
}

static void
tcp_pair(int *a, int *b)
{
    tcp_pair_rcvbuf(a, b, 0);
}

/* Wait (bounded) until fd has something to read or an end of stream. */
static void
wait_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    assert_int_equal(poll(&p, 1, 5000), 1);
}

/* Read exactly n bytes from a non-blocking fd (waiting with poll). */
static void
read_exact(int fd, char *out, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, out + got, n - got);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        assert_true(r == -1 && errno == EAGAIN);
        wait_readable(fd);
    }
}

static bool
fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

static void
on_ev(struct gh_io *io, uint32_t events)
{
    struct gh_xprt *x = gh_container_of(io, struct gh_xprt, io);
    gh_xprt_on_events(x, events);
}

/* ---- receive ---- */

static void
test_recv_short_read_clears_can_read(void **state)
{
    (void)state;
    int sv[2];
    unix_pair(sv);
    struct gh_xprt x;
    gh_xprt_init(&x, sv[0], on_ev, GH_XPRT_CAN_READ);
    assert_int_equal(write(sv[1], "hello", 5), 5);
    char b[64];
    assert_int_equal(gh_xprt_recv(&x, b, sizeof(b)), 5);
    assert_memory_equal(b, "hello", 5);
    /* fewer bytes than asked: the socket is empty, no EAGAIN syscall needed */
    assert_false(gh_xprt_is(&x, GH_XPRT_CAN_READ));
    assert_false(gh_xprt_is(&x, GH_XPRT_EOF));
    gh_xprt_close(&x);
    close(sv[1]);
}

static void
test_recv_full_read_keeps_can_read(void **state)
{
    (void)state;
    int sv[2];
    unix_pair(sv);
    struct gh_xprt x;
    gh_xprt_init(&x, sv[0], on_ev, GH_XPRT_CAN_READ);
    assert_int_equal(write(sv[1], "0123456789", 10), 10);
    char b[4];
    /* a read that fills the buffer may have left more behind */
    assert_int_equal(gh_xprt_recv(&x, b, 4), 4);
    assert_memory_equal(b, "0123", 4);
    assert_true(gh_xprt_is(&x, GH_XPRT_CAN_READ));
    assert_int_equal(gh_xprt_recv(&x, b, 4), 4);
    assert_memory_equal(b, "4567", 4);
    assert_true(gh_xprt_is(&x, GH_XPRT_CAN_READ));
    assert_int_equal(gh_xprt_recv(&x, b, 4), 2);
    assert_memory_equal(b, "89", 2);
    assert_false(gh_xprt_is(&x, GH_XPRT_CAN_READ));
    gh_xprt_close(&x);
    close(sv[1]);
}

/* The peer's FIN reported by epoll waits behind the data: a short read must not clear CAN_READ,
 * or the end of stream would never be read (edge-triggered: no new event comes for it). */
static void
test_recv_rdhup_keeps_can_read(void **state)
{
    (void)state;
    struct gh_loop *l = gh_loop_new();
    assert_non_null(l);
    int a, b;
    tcp_pair(&a, &b);
    struct gh_xprt x;
    gh_xprt_init(&x, b, on_ev, 0);
    assert_int_equal(gh_xprt_watch(l, &x, EPOLLIN | EPOLLRDHUP), 0);
    assert_int_equal(write(a, "bye", 3), 3);
    assert_int_equal(shutdown(a, SHUT_WR), 0);
    for (int i = 0; i < 100 && !gh_xprt_is(&x, GH_XPRT_RDHUP); i++)
        assert_true(gh_loop_run_once(l, 1000) >= 0);
    assert_true(gh_xprt_is(&x, GH_XPRT_RDHUP));
    assert_true(gh_xprt_is(&x, GH_XPRT_CAN_READ));

    char buf[64];
    assert_int_equal(gh_xprt_recv(&x, buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "bye", 3);
    assert_true(gh_xprt_is(&x, GH_XPRT_CAN_READ)); /* the FIN is still to be read */
    assert_int_equal(gh_xprt_recv(&x, buf, sizeof(buf)), 0);
    assert_true(gh_xprt_is(&x, GH_XPRT_EOF));
    assert_false(gh_xprt_is(&x, GH_XPRT_CAN_READ));
    gh_xprt_close(&x);
    close(a);
    gh_loop_free(l);
}

static void
test_recv_eof_sets_eof(void **state)
{
    (void)state;
    int sv[2];
    unix_pair(sv);
    struct gh_xprt x;
    gh_xprt_init(&x, sv[0], on_ev, GH_XPRT_CAN_READ | GH_XPRT_CAN_WRITE);
    close(sv[1]);
    char b[16];
    assert_int_equal(gh_xprt_recv(&x, b, sizeof(b)), 0);
    assert_true(gh_xprt_is(&x, GH_XPRT_EOF));
    assert_false(gh_xprt_is(&x, GH_XPRT_CAN_READ));
    assert_true(gh_xprt_is(&x, GH_XPRT_CAN_WRITE)); /* only the read side is touched */
    gh_xprt_close(&x);
}

static void
test_recv_eagain_clears_can_read(void **state)
{
    (void)state;
    int sv[2];
    unix_pair(sv);
    struct gh_xprt x;
    gh_xprt_init(&x, sv[0], on_ev, GH_XPRT_CAN_READ);
    char b[16];
    assert_int_equal(gh_xprt_recv(&x, b, sizeof(b)), GH_AGAIN);
    assert_false(gh_xprt_is(&x, GH_XPRT_CAN_READ));
    assert_false(gh_xprt_is(&x, GH_XPRT_EOF));
    gh_xprt_close(&x);
    close(sv[1]);
}

static void
test_on_events_maps_readiness(void **state)
{
    (void)state;
    struct gh_xprt x;
    gh_xprt_init(&x, -1, on_ev, 0);
    gh_xprt_on_events(&x, EPOLLIN);
    assert_int_equal(x.io.ready, GH_XPRT_CAN_READ);
    gh_xprt_init(&x, -1, on_ev, 0);
    gh_xprt_on_events(&x, EPOLLOUT);
    assert_int_equal(x.io.ready, GH_XPRT_CAN_WRITE);
    gh_xprt_init(&x, -1, on_ev, 0);
    gh_xprt_on_events(&x, EPOLLRDHUP);
    assert_int_equal(x.io.ready, GH_XPRT_CAN_READ | GH_XPRT_RDHUP);
    gh_xprt_init(&x, -1, on_ev, 0);
    gh_xprt_on_events(&x, EPOLLHUP);
    assert_int_equal(x.io.ready, GH_XPRT_CAN_READ | GH_XPRT_RDHUP | GH_XPRT_CAN_WRITE);
    /* an error: both sides try, and each finds it */
    gh_xprt_init(&x, -1, on_ev, 0);
    gh_xprt_on_events(&x, EPOLLERR);
    assert_int_equal(x.io.ready, GH_XPRT_CAN_READ | GH_XPRT_CAN_WRITE);
    /* bits are only added */
    gh_xprt_init(&x, -1, on_ev, GH_XPRT_EOF | GH_XPRT_OUT_ARMED);
    gh_xprt_on_events(&x, EPOLLIN);
    assert_int_equal(x.io.ready, GH_XPRT_EOF | GH_XPRT_OUT_ARMED | GH_XPRT_CAN_READ);
}

/* ---- send ---- */

static void
test_sendv_whole_one_and_many_pieces(void **state)
{
    (void)state;
    int sv[2];
    unix_pair(sv);
    struct gh_xprt x;
    gh_xprt_init(&x, sv[0], on_ev, GH_XPRT_CAN_WRITE);
    struct iovec one = {"head", 4};
    assert_int_equal(gh_xprt_sendv(&x, &one, 1, 4), 4);
    assert_true(gh_xprt_is(&x, GH_XPRT_CAN_WRITE));
    struct iovec three[3] = {{"GET ", 4}, {"/x", 2}, {" HTTP/1.1\r\n", 11}};
    assert_int_equal(gh_xprt_sendv(&x, three, 3, 17), 17);
    assert_true(gh_xprt_is(&x, GH_XPRT_CAN_WRITE));
    char b[64];
    read_exact(sv[1], b, 21);
    assert_memory_equal(b, "headGET /x HTTP/1.1\r\n", 21);
    gh_xprt_close(&x);
    close(sv[1]);
}

/* Fill x's socket: returns the bytes it took. */
static size_t
fill_socket(struct gh_xprt *x, char *big, size_t n)
{
    size_t total = 0;
    for (;;) {
        gh_xprt_set(x, GH_XPRT_CAN_WRITE);
        struct iovec iov = {big, n};
        ssize_t w = gh_xprt_sendv(x, &iov, 1, n);
        assert_true(w >= 0);
        total += (size_t)w;
        if (w == 0)
            return total;
    }
}

static void
test_sendv_short_write_clears_can_write(void **state)
{
    (void)state;
    int sv[2];
    unix_pair(sv);
    int small = 4096;
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    struct gh_xprt x;
    gh_xprt_init(&x, sv[0], on_ev, GH_XPRT_CAN_WRITE);
    size_t n = 1 << 20;
    char *big = calloc(1, n);
    assert_non_null(big);
    struct iovec iov = {big, n};
    ssize_t w = gh_xprt_sendv(&x, &iov, 1, n);
    assert_true(w > 0 && (size_t)w < n);
    assert_false(gh_xprt_is(&x, GH_XPRT_CAN_WRITE));
    /* full now: EAGAIN is "took nothing", not an error */
    (void)fill_socket(&x, big, n);
    gh_xprt_set(&x, GH_XPRT_CAN_WRITE);
    assert_int_equal(gh_xprt_sendv(&x, &iov, 1, n), 0);
    assert_false(gh_xprt_is(&x, GH_XPRT_CAN_WRITE));
    /* the same with several pieces (writev) */
    struct iovec two[2] = {{big, 10}, {big, 10}};
    gh_xprt_set(&x, GH_XPRT_CAN_WRITE);
    assert_int_equal(gh_xprt_sendv(&x, two, 2, 20), 0);
    assert_false(gh_xprt_is(&x, GH_XPRT_CAN_WRITE));
    free(big);
    gh_xprt_close(&x);
    close(sv[1]);
}

/* After a short send, gh_xprt_watch_writes registers EPOLLOUT (once), and the loop reports
 * CAN_WRITE again when the peer has taken the bytes. */
static void
test_watch_writes_arms_epollout_once(void **state)
{
    (void)state;
    struct gh_loop *l = gh_loop_new();
    int sv[2];
    unix_pair(sv);
    struct gh_xprt x;
    gh_xprt_init(&x, sv[0], on_ev, GH_XPRT_CAN_WRITE);
    assert_int_equal(gh_xprt_watch(l, &x, EPOLLIN | EPOLLRDHUP), 0);
    assert_false(gh_xprt_is(&x, GH_XPRT_OUT_ARMED));
    /* sends that complete never arm it */
    assert_int_equal(gh_xprt_watch_writes(l, &x), 0);
    assert_false(gh_xprt_is(&x, GH_XPRT_OUT_ARMED));

    size_t n = 1 << 20;
    char *big = calloc(1, n);
    size_t queued = fill_socket(&x, big, n);
    assert_true(queued > 0);
    assert_false(gh_xprt_is(&x, GH_XPRT_CAN_WRITE));
    assert_int_equal(gh_xprt_watch_writes(l, &x), 0);
    assert_true(gh_xprt_is(&x, GH_XPRT_OUT_ARMED));

    /* the peer takes everything: EPOLLOUT comes, CAN_WRITE is back */
    char *sink = malloc(n);
    read_exact(sv[1], sink, queued);
    for (int i = 0; i < 100 && !gh_xprt_is(&x, GH_XPRT_CAN_WRITE); i++)
        assert_true(gh_loop_run_once(l, 1000) >= 0);
    assert_true(gh_xprt_is(&x, GH_XPRT_CAN_WRITE));
    assert_true(gh_xprt_is(&x, GH_XPRT_OUT_ARMED));
    /* armed once: the next short send costs no epoll_ctl (here it would fail, on a socket the
     * loop does not watch) */
    int fd = x.io.fd;
    x.io.fd = sv[1];
    gh_xprt_clear(&x, GH_XPRT_CAN_WRITE);
    assert_int_equal(gh_xprt_watch_writes(l, &x), 0);
    gh_xprt_clear(&x, GH_XPRT_OUT_ARMED);
    assert_int_equal(gh_xprt_watch_writes(l, &x), -ENOENT);
    x.io.fd = fd;
    free(sink);
    free(big);
    gh_xprt_close(&x);
    assert_int_equal(x.io.fd, -1);
    assert_int_equal(x.io.ready, 0);
    /* closed: nothing to arm */
    assert_int_equal(gh_xprt_watch_writes(l, &x), 0);
    close(sv[1]);
    gh_loop_free(l);
}

static void
test_sendv_broken_peer_returns_errno(void **state)
{
    (void)state;
    int sv[2];
    unix_pair(sv);
    struct gh_xprt x;
    gh_xprt_init(&x, sv[0], on_ev, GH_XPRT_CAN_WRITE);
    close(sv[1]);
    struct iovec iov = {"data", 4};
    /* SIGPIPE is ignored (main): the error comes back as -EPIPE */
    assert_int_equal(gh_xprt_sendv(&x, &iov, 1, 4), -EPIPE);
    struct iovec two[2] = {{"da", 2}, {"ta", 2}};
    assert_int_equal(gh_xprt_sendv(&x, two, 2, 4), -EPIPE);
    gh_xprt_close(&x);
}

/* ---- flush ---- */

static struct gh_buf *
buf_with(const char *s, size_t n)
{
    struct gh_buf *b = gh_buf_get();
    assert_non_null(b);
    assert_true(gh_buf_reserve(b, n) >= n);
    gh_buf_append(b, s, n);
    return b;
}

static void
test_flush_whole_buffer(void **state)
{
    (void)state;
    int sv[2];
    unix_pair(sv);
    struct gh_xprt x;
    gh_xprt_init(&x, sv[0], on_ev, GH_XPRT_CAN_WRITE);
    struct gh_buf *b = NULL;
    assert_int_equal(gh_xprt_flush(&x, &b), 0); /* NULL is fine */

    b = buf_with("xxpending", 9);
    gh_buf_consume(b, 2); /* from the buffer's head, not its start */
    assert_int_equal(gh_xprt_flush(&x, &b), 0);
    assert_null(b);
    char got[16];
    read_exact(sv[1], got, 7);
    assert_memory_equal(got, "pending", 7);

    /* an empty buffer goes back too */
    b = gh_buf_get();
    assert_int_equal(gh_xprt_flush(&x, &b), 0);
    assert_null(b);
    gh_xprt_close(&x);
    close(sv[1]);
}

static void
test_flush_not_writable_and_partial(void **state)
{
    (void)state;
    int sv[2];
    unix_pair(sv);
    int small = 4096;
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    struct gh_xprt x;
    gh_xprt_init(&x, sv[0], on_ev, 0);
    struct gh_buf *b = gh_buf_get();
    for (size_t i = 0; i < GH_BUF_SIZE; i++)
        b->data[i] = (char)('a' + i % 26);
    gh_buf_commit(b, GH_BUF_SIZE);
    /* without CAN_WRITE nothing is tried */
    assert_int_equal(gh_xprt_flush(&x, &b), GH_AGAIN);
    assert_non_null(b);
    assert_int_equal(gh_buf_len(b), GH_BUF_SIZE);

    gh_xprt_set(&x, GH_XPRT_CAN_WRITE);
    assert_int_equal(gh_xprt_flush(&x, &b), GH_AGAIN);
    assert_non_null(b);
    size_t taken = GH_BUF_SIZE - gh_buf_len(b);
    assert_true(taken > 0 && taken < GH_BUF_SIZE);
    assert_false(gh_xprt_is(&x, GH_XPRT_CAN_WRITE));

    /* the peer reads; the rest goes, in order */
    char *got = malloc(GH_BUF_SIZE);
    size_t have = 0;
    while (b != NULL) {
        ssize_t r = read(sv[1], got + have, GH_BUF_SIZE - have);
        if (r > 0)
            have += (size_t)r;
        gh_xprt_set(&x, GH_XPRT_CAN_WRITE);
        int rc = gh_xprt_flush(&x, &b);
        assert_true(rc == 0 || rc == GH_AGAIN);
    }
    read_exact(sv[1], got + have, GH_BUF_SIZE - have);
    for (size_t i = 0; i < GH_BUF_SIZE; i++)
        assert_int_equal(got[i], (char)('a' + i % 26));
    free(got);
    gh_xprt_close(&x);
    close(sv[1]);
}

static void
test_flush_broken_peer_keeps_buffer(void **state)
{
    (void)state;
    int sv[2];
    unix_pair(sv);
    struct gh_xprt x;
    gh_xprt_init(&x, sv[0], on_ev, GH_XPRT_CAN_WRITE);
    close(sv[1]);
    struct gh_buf *b = buf_with("lost", 4);
    assert_int_equal(gh_xprt_flush(&x, &b), -EPIPE);
    /* the caller still owns it */
    assert_non_null(b);
    assert_int_equal(gh_buf_len(b), 4);
    gh_buf_put(b);
    gh_xprt_close(&x);
}

/* ---- drained ---- */

static void
test_drained(void **state)
{
    (void)state;
    int sv[2];
    unix_pair(sv);
    struct gh_xprt x;
    gh_xprt_init(&x, sv[0], on_ev, GH_XPRT_CAN_READ);
    /* nothing there: true, and CAN_READ is cleared */
    assert_true(gh_xprt_drained(&x));
    assert_false(gh_xprt_is(&x, GH_XPRT_CAN_READ));

    /* a stray byte: false, and it is only looked at, not taken */
    assert_int_equal(write(sv[1], "!", 1), 1);
    gh_xprt_set(&x, GH_XPRT_CAN_READ);
    assert_false(gh_xprt_drained(&x));
    assert_true(gh_xprt_is(&x, GH_XPRT_CAN_READ));
    char c = 0;
    assert_int_equal(gh_xprt_recv(&x, &c, 1), 1);
    assert_int_equal(c, '!');

    /* without CAN_READ it does not look (a short read already emptied the socket) */
    assert_int_equal(write(sv[1], "?", 1), 1);
    gh_xprt_clear(&x, GH_XPRT_CAN_READ);
    assert_true(gh_xprt_drained(&x));
    gh_xprt_set(&x, GH_XPRT_CAN_READ);
    assert_int_equal(gh_xprt_recv(&x, &c, 1), 1);

    /* end of stream is not "drained" */
    close(sv[1]);
    gh_xprt_set(&x, GH_XPRT_CAN_READ);
    assert_false(gh_xprt_drained(&x));
    gh_xprt_close(&x);
}

/* ---- shutdown, close, reset ---- */

static void
test_shutdown_peer_reads_eof(void **state)
{
    (void)state;
    int a, b;
    tcp_pair(&a, &b);
    struct gh_xprt x;
    gh_xprt_init(&x, b, on_ev, GH_XPRT_CAN_WRITE);
    struct iovec iov = {"last", 4};
    assert_int_equal(gh_xprt_sendv(&x, &iov, 1, 4), 4);
    assert_int_equal(gh_xprt_shutdown(&x), 0);
    assert_true(gh_xprt_is(&x, GH_XPRT_WR_SHUT));
    char buf[16];
    read_exact(a, buf, 4);
    assert_memory_equal(buf, "last", 4);
    wait_readable(a);
    assert_int_equal(read(a, buf, sizeof(buf)), 0);
    /* half-close: the other direction still works */
    assert_int_equal(write(a, "more", 4), 4);
    wait_readable(b);
    gh_xprt_set(&x, GH_XPRT_CAN_READ);
    assert_int_equal(gh_xprt_recv(&x, buf, sizeof(buf)), 4);
    assert_memory_equal(buf, "more", 4);
    gh_xprt_close(&x);
    close(a);
}

static void
test_close_peer_reads_eof(void **state)
{
    (void)state;
    int a, b;
    tcp_pair(&a, &b);
    struct gh_xprt x;
    gh_xprt_init(&x, b, on_ev, GH_XPRT_CAN_READ | GH_XPRT_CAN_WRITE);
    gh_xprt_close(&x);
    assert_int_equal(x.io.fd, -1);
    assert_int_equal(x.io.ready, 0);
    assert_false(fd_is_open(b));
    gh_xprt_close(&x); /* twice is fine */
    char c;
    wait_readable(a);
    assert_int_equal(read(a, &c, 1), 0);
    close(a);
}

static void
test_reset_peer_gets_econnreset(void **state)
{
    (void)state;
    int a, b;
    tcp_pair(&a, &b);
    struct gh_xprt x, peer;
    gh_xprt_init(&x, b, on_ev, GH_XPRT_CAN_READ | GH_XPRT_CAN_WRITE);
    gh_xprt_init(&peer, a, on_ev, GH_XPRT_CAN_READ | GH_XPRT_CAN_WRITE);
    /* unread bytes on our side would make even a plain close reset; with none, only
     * SO_LINGER 0 does */
    gh_xprt_reset(&x);
    assert_int_equal(x.io.fd, -1);
    assert_int_equal(x.io.ready, 0);
    assert_false(fd_is_open(b));
    wait_readable(a);
    char buf[8];
    assert_int_equal(gh_xprt_recv(&peer, buf, sizeof(buf)), -ECONNRESET);
    assert_false(gh_xprt_is(&peer, GH_XPRT_EOF));
    gh_xprt_close(&peer);
}

static void
test_connect_error(void **state)
{
    (void)state;
    struct gh_loop *l = gh_loop_new();
    /* a port nobody listens on: refused, reported once the socket says so */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
    close(s);
    int fd = gh_sock_connect((struct sockaddr *)&sa, sizeof(sa));
    assert_true(fd >= 0);
    struct gh_xprt x;
    gh_xprt_init(&x, fd, on_ev, 0);
    assert_int_equal(gh_xprt_watch(l, &x, EPOLLIN | EPOLLOUT | EPOLLRDHUP), 0);
    assert_true(gh_xprt_is(&x, GH_XPRT_OUT_ARMED));
    for (int i = 0; i < 100 && !gh_xprt_is(&x, GH_XPRT_CAN_WRITE); i++)
        assert_true(gh_loop_run_once(l, 1000) >= 0);
    assert_int_equal(gh_xprt_connect_error(&x), ECONNREFUSED);
    gh_xprt_close(&x);

    /* a listening port: connected */
    int lfd = gh_sock_listen((struct sockaddr *)&sa, sizeof(sa), 4);
    assert_true(lfd >= 0);
    len = sizeof(sa);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    fd = gh_sock_connect((struct sockaddr *)&sa, sizeof(sa));
    assert_true(fd >= 0);
    gh_xprt_init(&x, fd, on_ev, 0);
    assert_int_equal(gh_xprt_watch(l, &x, EPOLLIN | EPOLLOUT | EPOLLRDHUP), 0);
    for (int i = 0; i < 100 && !gh_xprt_is(&x, GH_XPRT_CAN_WRITE); i++)
        assert_true(gh_loop_run_once(l, 1000) >= 0);
    assert_int_equal(gh_xprt_connect_error(&x), 0);
    gh_xprt_close(&x);
    close(lfd);
    gh_loop_free(l);
}

/* ---- splice pump ---- */

/* src --A--> in ==pump==> out --B--> dst, all four watched by one loop. */
struct relay {
    struct gh_loop *l;
    struct gh_xprt src, in, out, dst;
    struct gh_pipe *pp;
    char *payload;
    size_t n; /* bytes owed: the pump's first `remaining` */
    size_t payload_len, written;
    char *got;
    size_t got_len, got_cap;
    bool reading;
    uint64_t remaining, moved_in, moved_out;
    int err;
    enum gh_splice_rc last;
    int blocked_on_out; /* pump calls that stopped with bytes left in the pipe */
};

static struct relay *cur_relay;

static void
relay_drive(struct relay *r)
{
    while (r->written < r->payload_len && gh_xprt_is(&r->src, GH_XPRT_CAN_WRITE)) {
        struct iovec iov = {r->payload + r->written, r->payload_len - r->written};
        ssize_t n = gh_xprt_sendv(&r->src, &iov, 1, iov.iov_len);
        assert_true(n >= 0);
        r->written += (size_t)n;
    }
    if (r->last == GH_SPLICE_BLOCKED) {
        r->last = gh_xprt_splice_pump(r->pp, &r->remaining, &r->in, &r->out, &r->moved_in,
                                      &r->moved_out, &r->err);
        /* moved_in - moved_out is what the pipe holds, at every stop */
        assert_int_equal(r->moved_in - r->moved_out, r->pp->len);
        assert_int_equal(r->moved_in + r->remaining, r->n);
        if (r->last == GH_SPLICE_BLOCKED && r->pp->len > 0) {
            assert_false(gh_xprt_is(&r->out, GH_XPRT_CAN_WRITE));
            r->blocked_on_out++;
        }
    }
    while (r->reading && gh_xprt_is(&r->dst, GH_XPRT_CAN_READ)) {
        size_t room = GH_MIN(r->got_cap - r->got_len, (size_t)65536);
        ssize_t n = gh_xprt_recv(&r->dst, r->got + r->got_len, room);
        if (n <= 0)
            break;
        r->got_len += (size_t)n;
    }
}

static void
relay_ev(struct gh_io *io, uint32_t events)
{
    on_ev(io, events);
    relay_drive(cur_relay);
}

/* A relay of n bytes followed by "TRAILER" (which the pump must leave in `in`). dst_rcvbuf
 * (0: default) makes the receiver's window small. */
static void
relay_init(struct relay *r, size_t n, int dst_rcvbuf, int out_sndbuf)
{
    memset(r, 0, sizeof(*r));
    r->l = gh_loop_new();
    assert_non_null(r->l);
    int a1, a2, b1, b2;
    tcp_pair(&a1, &a2);
    tcp_pair_rcvbuf(&b1, &b2, dst_rcvbuf);
    if (out_sndbuf != 0)
        assert_int_equal(setsockopt(b2, SOL_SOCKET, SO_SNDBUF, &out_sndbuf, sizeof(out_sndbuf)), 0);
    gh_xprt_init(&r->src, a1, relay_ev, GH_XPRT_CAN_WRITE);
    gh_xprt_init(&r->in, a2, relay_ev, 0);
    gh_xprt_init(&r->out, b2, relay_ev, GH_XPRT_CAN_WRITE);
    gh_xprt_init(&r->dst, b1, relay_ev, 0);
    struct gh_xprt *all[4] = {&r->src, &r->in, &r->out, &r->dst};
    for (int i = 0; i < 4; i++)
        assert_int_equal(gh_xprt_watch(r->l, all[i], EPOLLIN | EPOLLOUT | EPOLLRDHUP), 0);
    r->pp = gh_pipe_get();
    assert_non_null(r->pp);
    r->n = n;
    r->payload_len = n + 7;
    r->payload = malloc(r->payload_len);
    for (size_t i = 0; i < n; i++)
        r->payload[i] = (char)(i * 7 + (i >> 11));
    memcpy(r->payload + n, "TRAILER", 7);
    r->got_cap = n + 64;
    r->got = malloc(r->got_cap);
    r->remaining = n;
    r->last = GH_SPLICE_BLOCKED;
    r->reading = true;
    cur_relay = r;
}

static void
relay_free(struct relay *r)
{
    gh_xprt_close(&r->src);
    gh_xprt_close(&r->in);
    gh_xprt_close(&r->out);
    gh_xprt_close(&r->dst);
    r->pp->len = 0;
    gh_pipe_put(r->pp);
    gh_pipe_cache_drain();
    free(r->payload);
    free(r->got);
    gh_loop_free(r->l);
    cur_relay = NULL;
}

/* Run the loop until the pump is done and dst has every byte. */
static void
relay_finish(struct relay *r)
{
    size_t n = r->n;
    relay_drive(r);
    while (r->last == GH_SPLICE_BLOCKED || r->got_len < n) {
        assert_int_equal(r->last == GH_SPLICE_BLOCKED || r->last == GH_SPLICE_DONE, 1);
        int ev = gh_loop_run_once(r->l, 2000);
        assert_true(ev > 0); /* a stall would be a lost wake-up */
    }
    assert_int_equal(r->last, GH_SPLICE_DONE);
    assert_int_equal(r->remaining, 0);
    assert_int_equal(r->moved_in, n);
    assert_int_equal(r->moved_out, n);
    assert_int_equal(r->pp->len, 0);
    assert_int_equal(r->got_len, n);
    assert_memory_equal(r->got, r->payload, n);
    /* what follows the n bytes is still in `in`, whole */
    char tail[7];
    read_exact(r->in.io.fd, tail, 7);
    assert_memory_equal(tail, "TRAILER", 7);
}

static void
test_splice_pump_moves_exactly_remaining(void **state)
{
    (void)state;
    struct relay r;
    /* more than a pipe's worth, not a multiple of anything */
    relay_init(&r, 3 * GH_PIPE_SIZE + 12345, 0, 0);
    relay_finish(&r);
    relay_free(&r);
}

static void
test_splice_pump_small_body_then_done(void **state)
{
    (void)state;
    struct relay r;
    relay_init(&r, 10, 0, 0);
    relay_finish(&r);
    /* done is sticky: nothing more is taken */
    gh_xprt_set(&r.in, GH_XPRT_CAN_READ);
    assert_int_equal(
        gh_xprt_splice_pump(r.pp, &r.remaining, &r.in, &r.out, &r.moved_in, &r.moved_out, &r.err),
        GH_SPLICE_DONE);
    assert_int_equal(r.moved_in, 10);
    relay_free(&r);
}

/* The receiver stops reading: the pump stops with the pipe holding what the receiver has not
 * taken, and takes nothing more from the sender until it has. */
static void
test_splice_pump_backpressure(void **state)
{
    (void)state;
    struct relay r;
    size_t n = 4u << 20;
    relay_init(&r, n, 4096, 4096);
    r.reading = false;
    relay_drive(&r);
    /* run until nothing moves any more */
    int idle = 0;
    for (int i = 0; i < 20000 && idle < 2; i++)
        idle = gh_loop_run_once(r.l, 100) == 0 ? idle + 1 : 0;
    assert_int_equal(idle, 2);
    assert_int_equal(r.last, GH_SPLICE_BLOCKED);
    assert_true(r.pp->len > 0);
    assert_false(gh_xprt_is(&r.out, GH_XPRT_CAN_WRITE));
    assert_true(r.moved_in < n);
    assert_int_equal(r.moved_in - r.moved_out, r.pp->len);
    assert_true(r.blocked_on_out > 0);

    /* even told the sender has data, it takes nothing while the pipe is not empty */
    uint64_t in_before = r.moved_in, out_before = r.moved_out;
    gh_xprt_set(&r.in, GH_XPRT_CAN_READ);
    assert_int_equal(
        gh_xprt_splice_pump(r.pp, &r.remaining, &r.in, &r.out, &r.moved_in, &r.moved_out, &r.err),
        GH_SPLICE_BLOCKED);
    assert_int_equal(r.moved_in, in_before);
    assert_int_equal(r.moved_out, out_before);
    assert_true(gh_xprt_is(&r.in, GH_XPRT_CAN_READ));

    /* told the receiver can take bytes while it cannot: blocked on it again, nothing lost */
    gh_xprt_set(&r.out, GH_XPRT_CAN_WRITE);
    assert_int_equal(
        gh_xprt_splice_pump(r.pp, &r.remaining, &r.in, &r.out, &r.moved_in, &r.moved_out, &r.err),
        GH_SPLICE_BLOCKED);
    assert_false(gh_xprt_is(&r.out, GH_XPRT_CAN_WRITE));
    assert_int_equal(r.moved_in, in_before);

    /* the receiver reads again: everything arrives, in order */
    r.reading = true;
    gh_xprt_set(&r.dst, GH_XPRT_CAN_READ);
    relay_finish(&r);
    relay_free(&r);
}

static void
test_splice_pump_sender_closes_early(void **state)
{
    (void)state;
    struct relay r;
    relay_init(&r, 1000, 0, 0);
    /* only 100 of the 1000 bytes owed come, then the sender's end of stream */
    assert_int_equal(write(r.src.io.fd, r.payload, 100), 100);
    assert_int_equal(shutdown(r.src.io.fd, SHUT_WR), 0);
    for (int i = 0; i < 100 && r.last == GH_SPLICE_BLOCKED; i++) {
        wait_readable(r.in.io.fd);
        gh_xprt_set(&r.in, GH_XPRT_CAN_READ);
        r.last = gh_xprt_splice_pump(r.pp, &r.remaining, &r.in, &r.out, &r.moved_in, &r.moved_out,
                                     &r.err);
    }
    assert_int_equal(r.last, GH_SPLICE_IN_EOF);
    assert_true(gh_xprt_is(&r.in, GH_XPRT_EOF));
    assert_int_equal(r.moved_in, 100);
    assert_int_equal(r.moved_out, 100);
    assert_int_equal(r.pp->len, 0);
    assert_int_equal(r.remaining, 900);
    char got[100];
    read_exact(r.dst.io.fd, got, 100);
    assert_memory_equal(got, r.payload, 100);
    relay_free(&r);
}

static void
test_splice_pump_receiver_gone(void **state)
{
    (void)state;
    struct relay r;
    relay_init(&r, 1000, 0, 0);
    assert_int_equal(write(r.src.io.fd, r.payload, 1000), 1000);
    gh_xprt_reset(&r.dst);
    wait_readable(r.out.io.fd); /* the reset has arrived */
    int rc = GH_SPLICE_BLOCKED;
    for (int i = 0; i < 100 && rc == GH_SPLICE_BLOCKED; i++) {
        wait_readable(r.in.io.fd);
        gh_xprt_set(&r.in, GH_XPRT_CAN_READ);
        gh_xprt_set(&r.out, GH_XPRT_CAN_WRITE);
        rc = gh_xprt_splice_pump(r.pp, &r.remaining, &r.in, &r.out, &r.moved_in, &r.moved_out,
                                 &r.err);
    }
    assert_int_equal(rc, GH_SPLICE_OUT_ERR);
    assert_true(r.err == ECONNRESET || r.err == EPIPE);
    assert_true(r.moved_in > 0);
    assert_int_equal(r.moved_out, 0);
    relay_free(&r);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recv_short_read_clears_can_read),
        cmocka_unit_test(test_recv_full_read_keeps_can_read),
        cmocka_unit_test(test_recv_rdhup_keeps_can_read),
        cmocka_unit_test(test_recv_eof_sets_eof),
        cmocka_unit_test(test_recv_eagain_clears_can_read),
        cmocka_unit_test(test_on_events_maps_readiness),
        cmocka_unit_test(test_sendv_whole_one_and_many_pieces),
        cmocka_unit_test(test_sendv_short_write_clears_can_write),
        cmocka_unit_test(test_watch_writes_arms_epollout_once),
        cmocka_unit_test(test_sendv_broken_peer_returns_errno),
        cmocka_unit_test(test_flush_whole_buffer),
        cmocka_unit_test(test_flush_not_writable_and_partial),
        cmocka_unit_test(test_flush_broken_peer_keeps_buffer),
        cmocka_unit_test(test_drained),
        cmocka_unit_test(test_shutdown_peer_reads_eof),
        cmocka_unit_test(test_close_peer_reads_eof),
        cmocka_unit_test(test_reset_peer_gets_econnreset),
        cmocka_unit_test(test_connect_error),
        cmocka_unit_test(test_splice_pump_moves_exactly_remaining),
        cmocka_unit_test(test_splice_pump_small_body_then_done),
        cmocka_unit_test(test_splice_pump_backpressure),
        cmocka_unit_test(test_splice_pump_sender_closes_early),
        cmocka_unit_test(test_splice_pump_receiver_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
