/* Bench sequential client: N keep-alive GETs, one at a time, over C connections in turn.
 *
 *   seq PORT N PATH [C]     prints "done OK FAILED" once every response is read
 *
 * Each response must be "HTTP/1.1 200" with a Content-Length body, read whole before the next
 * request goes out, so the proxy sees exactly N requests with nothing pipelined: what
 * bench/profile.sh needs to divide instruction and syscall counts by N. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static int
dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(0x7f000001);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("connect");
        exit(1);
    }
    return fd;
}

/* One GET; returns 0 when a whole 200 response was read. */
static int
one(int fd, const char *req, size_t rlen, char *buf, size_t cap)
{
    if (write(fd, req, rlen) != (ssize_t)rlen)
        return -1;
    size_t got = 0, need = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
        if (need == 0) {
            char *e = memmem(buf, got, "\r\n\r\n", 4);
            if (e == NULL)
                continue;
            if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
                return -1;
            char *cl = strcasestr(buf, "\r\ncontent-length:");
            if (cl == NULL || cl > e)
                return -1;
            need = (size_t)(e + 4 - buf) + strtoul(cl + 17, NULL, 10);
        }
        if (got >= need)
            return got == need ? 0 : -1;
        if (got == cap) { /* large body: keep only the count */
            need -= got;
            got = 0;
        }
    }
}

int
main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: seq PORT N PATH [CONNS]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    long n = atol(argv[2]);
    int nc = argc > 4 ? atoi(argv[4]) : 1;
    char req[512];
    int rlen = snprintf(req, sizeof(req),
                        "GET %s HTTP/1.1\r\nHost: bench\r\nUser-Agent: seq\r\n\r\n", argv[3]);
    int *fds = calloc((size_t)nc, sizeof(int));
    for (int i = 0; i < nc; i++)
        fds[i] = dial(port);
    static char buf[256 * 1024];
    long ok = 0, bad = 0;
    for (long i = 0; i < n; i++) {
        if (one(fds[i % nc], req, (size_t)rlen, buf, sizeof(buf)) == 0)
            ok++;
        else
            bad++;
    }
    printf("done %ld %ld\n", ok, bad);
    return bad != 0;
}
