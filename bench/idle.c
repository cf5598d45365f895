/* Bench idle holder: open N keep-alive connections to 127.0.0.1:PORT, do one "GET PATH" on each
 * (reading the whole Content-Length framed response, so the proxy has fully set the connection
 * up), then hold them all open and idle until SIGTERM/SIGINT.
 *
 *   idle PORT N [PATH]     prints "ready OK FAILED" on stdout once every connection is done
 *
 * Source addresses rotate over 127.0.0.2..127.0.0.9 (IP_BIND_ADDRESS_NO_PORT) so 10k connections
 * do not compete with TIME_WAIT sockets of earlier runs for 127.0.0.1's ephemeral ports. At most
 * 256 connects are in flight at once so the proxy's accept backlog is never the limit. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

struct c {
    int fd, state;    /* 0 connecting, 1 reading, 2 done */
    size_t got, need; /* need = head + body once the head is seen */
    char head[1024];
};

static double
now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PORT N [PATH]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int port = atoi(argv[1]), n = atoi(argv[2]), one = 1;
    const char *path = argc > 3 ? argv[3] : "/1k";
    char req[256];
    int reqlen = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", path);
    struct c *cs = calloc((size_t)n, sizeof *cs);
    int ep = epoll_create1(0), started = 0, inflight = 0, ok = 0, failed = 0;
    struct sockaddr_in da = {.sin_family = AF_INET,
                             .sin_port = htons((unsigned short)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    double deadline = now() + 60;
    struct epoll_event evs[256];
    while (ok + failed < n && now() < deadline) {
        while (started < n && inflight < 256) {
            struct c *c = &cs[started++];
            c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (c->fd < 0) {
                perror("idle: socket");
                c->state = 2, failed++;
                continue;
            }
            struct sockaddr_in sa = {.sin_family = AF_INET,
                                     .sin_addr.s_addr =
                                         htonl(0x7f000002u + (unsigned)(started % 8))};
            setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            if (bind(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
                (connect(c->fd, (struct sockaddr *)&da, sizeof da) < 0 && errno != EINPROGRESS)) {
                close(c->fd);
                c->fd = -1, c->state = 2, failed++;
                continue;
            }
            struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
            inflight++;
        }
        int k = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < k; i++) {
            struct c *c = evs[i].data.ptr;
            int bad = 0;
            if (c->state == 0) {
                int err = 0;
                socklen_t l = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
                if (err || write(c->fd, req, (size_t)reqlen) != reqlen) {
                    bad = 1;
                } else {
                    c->state = 1;
                    struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
                }
            } else if (c->state == 1) {
                char buf[65536];
                ssize_t r = read(c->fd, buf, sizeof buf);
                if (r <= 0) {
                    bad = r < 0 && errno == EAGAIN ? 0 : 1;
                } else {
                    if (!c->need) { /* still collecting the head */
                        size_t take = (size_t)r < sizeof c->head - 1 - c->got
                                          ? (size_t)r
                                          : sizeof c->head - 1 - c->got;
                        memcpy(c->head + c->got, buf, take);
                        c->head[c->got + take] = 0;
                        char *end = strstr(c->head, "\r\n\r\n");
                        if (end) {
                            char *cl = strcasestr(c->head, "\r\ncontent-length:");
                            if (strncmp(c->head, "HTTP/1.1 200", 12) != 0 || !cl)
                                bad = 1;
                            else
                                c->need = (size_t)(end + 4 - c->head) + strtoul(cl + 17, NULL, 10);
                        } else if (c->got + take >= sizeof c->head - 1) {
                            bad = 1;
                        }
                    }
                    c->got += (size_t)r;
                    if (!bad && c->need && c->got >= c->need) {
                        c->state = 2, ok++, inflight--;
                        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL); /* held, never read again */
                    }
                }
            }
            if (bad) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1, c->state = 2, failed++, inflight--;
            }
        }
    }
    printf("ready %d %d\n", ok, n - ok);
    fflush(stdout);
    for (;;)
        pause(); /* hold until SIGTERM/SIGINT (default action: exit, the kernel closes all) */
}
