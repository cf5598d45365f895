/* Bench streams for the CONNECT tunnel rows: a source of bytes and a client that reads them, over
 * a direct loopback connection or through an HTTP proxy's CONNECT tunnel.
 *
 *   stream serve PORT
 *       on 127.0.0.1:PORT; each connection says how many bytes it wants ("N\n"), gets them (send(2)
 *       from a 1 MiB buffer, as an application writes) and is closed. Runs until killed.
 *   stream fetch PORT STREAMS BYTES REPEAT [TARGET]
 *       REPEAT times in a row: STREAMS connections at once to 127.0.0.1:PORT, each asking for BYTES
 *       and reading them until the source closes (recv(2) into a 1 MiB buffer). With TARGET
 *       ("127.0.0.1:P", the source), PORT is a proxy: each connection first sends
 *       "CONNECT TARGET HTTP/1.1" and waits for a 2xx answer. Prints one line:
 *       "bytes B seconds S" (the clock runs from the first connect to the last close); exits 1 if a
 *       connection failed or a stream came short.
 *
 * Both sides are single-threaded, level-triggered epoll, non-blocking. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUFSZ (1 << 20)

static char buf[BUFSZ];
static int ep;

enum state { ASKING, SENDING, CONNECTING, PROXY_HEAD, READING, DONE };

struct conn {
    int fd;
    enum state st;
    unsigned long long left; /* bytes still to send (serve) or to read (fetch) */
    char head[512];          /* the request line (serve) or the proxy's answer head (fetch) */
    size_t hlen;
};

static void
fail(const char *what)
{
    perror(what);
    exit(1);
}

static void
watch(struct conn *c, int op, unsigned events)
{
    struct epoll_event e = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, op, c->fd, &e) == -1)
        fail("stream: epoll_ctl");
}

static void
drop(struct conn *c)
{
    close(c->fd);
    c->fd = -1;
    c->st = DONE;
}

static struct sockaddr_in
loopback(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* ---- serve ------------------------------------------------------------------------------------
 */

static void
serve_ask(struct conn *c)
{
    ssize_t n = recv(c->fd, c->head + c->hlen, sizeof c->head - 1 - c->hlen, 0);
    if (n <= 0) {
        if (n == 0 || errno != EAGAIN)
            drop(c), free(c);
        return;
    }
    c->hlen += (size_t)n;
    c->head[c->hlen] = 0;
    if (strchr(c->head, '\n') == NULL) {
        if (c->hlen == sizeof c->head - 1)
            drop(c), free(c);
        return;
    }
    c->left = strtoull(c->head, NULL, 10);
    c->st = SENDING;
    watch(c, EPOLL_CTL_MOD, EPOLLOUT);
}

static void
serve_send(struct conn *c)
{
    while (c->left > 0) {
        size_t n = c->left < BUFSZ ? (size_t)c->left : BUFSZ;
        ssize_t w = send(c->fd, buf, n, MSG_NOSIGNAL);
        if (w == -1) {
            if (errno != EAGAIN)
                drop(c), free(c);
            return;
        }
        c->left -= (unsigned long long)w;
    }
    drop(c); /* everything is queued; close sends it, then the FIN */
    free(c);
}

_Noreturn static void
serve(int port)
{
    struct sockaddr_in a = loopback(port);
    int one = 1, ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) == -1 || listen(ls, 4096) == -1)
        fail("stream: bind/listen");
    struct conn lc = {.fd = ls};
    watch(&lc, EPOLL_CTL_ADD, EPOLLIN);
    printf("listening %d\n", port);
    fflush(stdout);
    for (;;) {
        struct epoll_event ev[64];
        int n = epoll_wait(ep, ev, 64, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = ev[i].data.ptr;
            if (c == &lc) {
                int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                if (fd == -1)
                    continue;
                struct conn *nc = calloc(1, sizeof *nc);
                nc->fd = fd;
                nc->st = ASKING;
                watch(nc, EPOLL_CTL_ADD, EPOLLIN);
            } else if (c->st == ASKING) {
                serve_ask(c);
            } else {
                serve_send(c);
            }
        }
    }
}

/* ---- fetch ------------------------------------------------------------------------------------
 */

static const char *target;
static unsigned long long per_stream, total;
static int open_streams, failures;

static void
finish(struct conn *c, int ok)
{
    if (!ok)
        failures++;
    drop(c);
    open_streams--;
}

static void
ask(struct conn *c)
{
    char line[64];
    int n = snprintf(line, sizeof line, "%llu\n", per_stream);
    if (send(c->fd, line, (size_t)n, MSG_NOSIGNAL) != n)
        return finish(c, 0);
    c->st = READING;
    c->left = per_stream;
    watch(c, EPOLL_CTL_MOD, EPOLLIN);
}

static void
on_connected(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0)
        return finish(c, 0);
    if (target == NULL)
        return ask(c);
    char req[256];
    int n = snprintf(req, sizeof req, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target);
    if (send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        return finish(c, 0);
    c->st = PROXY_HEAD;
    watch(c, EPOLL_CTL_MOD, EPOLLIN);
}

/* the proxy's answer to CONNECT: a 2xx head, and nothing after it (the source speaks only when
 * asked) */
static void
on_proxy_head(struct conn *c)
{
    ssize_t n = recv(c->fd, c->head + c->hlen, sizeof c->head - 1 - c->hlen, 0);
    if (n <= 0) {
        if (n == 0 || errno != EAGAIN)
            finish(c, 0);
        return;
    }
    c->hlen += (size_t)n;
    c->head[c->hlen] = 0;
    char *end = strstr(c->head, "\r\n\r\n");
    if (end == NULL) {
        if (c->hlen == sizeof c->head - 1)
            finish(c, 0);
        return;
    }
    if (strncmp(c->head, "HTTP/1.", 7) != 0 || c->head[9] != '2' || end + 4 != c->head + c->hlen) {
        if (failures == 0) /* the first one says enough */
            fprintf(stderr, "stream: the proxy answered: %.*s\n", (int)(end - c->head), c->head);
        return finish(c, 0);
    }
    ask(c);
}

static void
on_data(struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, buf, BUFSZ, 0);
        if (n > 0) {
            total += (unsigned long long)n;
            c->left -= (unsigned long long)n < c->left ? (unsigned long long)n : c->left;
            continue;
        }
        if (n == -1 && errno == EAGAIN)
            return;
        if (c->left != 0)
            fprintf(stderr, "stream: a stream ended %llu bytes short\n", c->left);
        return finish(c, n == 0 && c->left == 0);
    }
}

static void
open_all(struct conn *cs, int streams, int port)
{
    struct sockaddr_in a = loopback(port);
    for (int i = 0; i < streams; i++) {
        struct conn *c = &cs[i];
        memset(c, 0, sizeof *c);
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (c->fd == -1)
            fail("stream: socket");
        if (connect(c->fd, (struct sockaddr *)&a, sizeof a) == -1 && errno != EINPROGRESS)
            fail("stream: connect");
        c->st = CONNECTING;
        watch(c, EPOLL_CTL_ADD, EPOLLOUT);
        open_streams++;
    }
}

static void
fetch_batch(struct conn *cs, int streams, int port)
{
    open_all(cs, streams, port);
    while (open_streams > 0) {
        struct epoll_event ev[256];
        int n = epoll_wait(ep, ev, 256, 30000);
        if (n == 0) {
            fprintf(stderr, "stream: nothing moved for 30 s\n");
            exit(1);
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = ev[i].data.ptr;
            if (c->st == CONNECTING)
                on_connected(c);
            else if (c->st == PROXY_HEAD)
                on_proxy_head(c);
            else if (c->st == READING)
                on_data(c);
        }
    }
}

static double
now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int
fetch(int port, int streams, int repeat)
{
    struct conn *cs = calloc((size_t)streams, sizeof *cs);
    double t0 = now();
    for (int r = 0; r < repeat && failures == 0; r++)
        fetch_batch(cs, streams, port);
    double t1 = now();
    printf("bytes %llu seconds %.6f\n", total, t1 - t0);
    free(cs);
    if (failures > 0)
        fprintf(stderr, "stream: %d of %d streams failed\n", failures, streams * repeat);
    return failures > 0 || total != per_stream * (unsigned long long)streams * (unsigned)repeat;
}

int
main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    memset(buf, 'x', sizeof buf);
    ep = epoll_create1(0);
    if (argc == 3 && strcmp(argv[1], "serve") == 0)
        serve(atoi(argv[2]));
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "fetch") == 0) {
        per_stream = strtoull(argv[4], NULL, 10);
        target = argc == 7 ? argv[6] : NULL;
        return fetch(atoi(argv[2]), atoi(argv[3]), atoi(argv[5]));
    }
    fprintf(stderr, "usage: stream serve PORT | stream fetch PORT STREAMS BYTES REPEAT [TARGET]\n");
    return 2;
}
