/* Bench origin: a fast single-threaded epoll HTTP/1.1 server for `make bench`.
 *
 *   origin PORT            listens on 127.0.0.1:PORT
 *
 * GET /1k   -> 200, 1024-byte body      GET /100k -> 200, 102400-byte body
 * anything else -> 404 (small body). HEAD gets the same head without a body.
 * Keep-alive (HTTP/1.1 default; HTTP/1.0 only with "Connection: keep-alive"),
 * "Connection: close" honoured, pipelined and partial requests handled, request
 * bodies framed by Content-Length skipped (chunked requests are refused with 400+close).
 * Responses are static: a connection keeps a small ring of response ids plus an
 * offset into the first, and writes them with one writev. It must never be the
 * bottleneck, so it does no allocation per request and one read per readiness. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define RBUF 16384 /* max request head; larger -> 431 and close */
#define QCAP 64    /* pipelined responses queued per connection before we stop reading */

enum { R_1K, R_100K, R_404, R_400, R_431, R_NRESP };
struct resp {
    char *head, *body;
    size_t hlen, blen;
};
static struct resp resps[R_NRESP];
/* queue entries: resp id in the low bits, flags above */
#define Q_HEAD 0x40  /* head only (HEAD request) */
#define Q_CLOSE 0x80 /* close after this response */

struct conn {
    int fd;
    unsigned events;
    size_t rlen;     /* bytes in rbuf */
    size_t skip;     /* request-body bytes still to discard */
    unsigned qh, qn; /* queue head index, count */
    size_t off;      /* bytes of queue[qh] already written */
    int closing;     /* a Q_CLOSE response is queued: read no further requests */
    unsigned char q[QCAP];
    char rbuf[RBUF];
};

static int ep;

static void
mkresp(int id, const char *status, size_t blen, char fill)
{
    char h[256];
    int n =
        snprintf(h, sizeof h,
                 "HTTP/1.1 %s\r\nServer: bench-origin\r\nContent-Type: application/octet-stream\r\n"
                 "Content-Length: %zu\r\n\r\n",
                 status, blen);
    resps[id].head = strdup(h);
    resps[id].hlen = (size_t)n;
    resps[id].body = malloc(blen ? blen : 1);
    memset(resps[id].body, fill, blen);
    resps[id].blen = blen;
}

static void
set_events(struct conn *c, unsigned ev)
{
    if (c->events == ev)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

static void
conn_close(struct conn *c)
{
    close(c->fd); /* also removes it from epoll */
    free(c);
}

static int
hdr_is(const char *line, size_t len, const char *name, size_t nlen, const char **val, size_t *vlen)
{
    if (len <= nlen || line[nlen] != ':' || strncasecmp(line, name, nlen) != 0)
        return 0;
    const char *v = line + nlen + 1, *e = line + len;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *val = v;
    *vlen = (size_t)(e - v);
    return 1;
}

static int
has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    for (size_t i = 0; i + tl <= n; i++)
        if (strncasecmp(v + i, tok, tl) == 0 && (i == 0 || v[i - 1] == ' ' || v[i - 1] == ',') &&
            (i + tl == n || v[i + tl] == ' ' || v[i + tl] == ','))
            return 1;
    return 0;
}

static void
enqueue(struct conn *c, unsigned char e)
{
    c->q[(c->qh + c->qn) % QCAP] = e;
    c->qn++;
    if (e & Q_CLOSE)
        c->closing = 1;
}

/* Parse as many complete requests as the buffer and queue allow. */
static void
parse(struct conn *c)
{
    size_t pos = 0;
    while (!c->closing && c->qn < QCAP) {
        if (c->skip) {
            size_t n = c->rlen - pos < c->skip ? c->rlen - pos : c->skip;
            pos += n;
            c->skip -= n;
            if (c->skip)
                break;
        }
        if (pos == c->rlen)
            break;
        char *s = c->rbuf + pos, *end = memmem(s, c->rlen - pos, "\r\n\r\n", 4);
        if (!end) {
            if (c->rlen - pos >= RBUF) { /* head does not fit */
                enqueue(c, R_431 | Q_CLOSE);
                pos = c->rlen;
            }
            break;
        }
        size_t hlen = (size_t)(end - s) + 4;
        char *eol = memchr(s, '\r', hlen);
        /* request line: METHOD SP TARGET SP VERSION */
        char *sp1 = memchr(s, ' ', (size_t)(eol - s));
        char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
        if (!sp2) {
            enqueue(c, R_400 | Q_CLOSE);
            pos = c->rlen;
            break;
        }
        int head_only = (sp1 - s == 4 && memcmp(s, "HEAD", 4) == 0);
        int http10 = (eol - sp2 - 1 == 8 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0);
        const char *t = sp1 + 1;
        size_t tl = (size_t)(sp2 - t);
        const char *qm = memchr(t, '?', tl);
        if (qm)
            tl = (size_t)(qm - t);
        int id = (tl == 3 && memcmp(t, "/1k", 3) == 0)     ? R_1K
                 : (tl == 5 && memcmp(t, "/100k", 5) == 0) ? R_100K
                                                           : R_404;
        int keep = !http10, bad = 0;
        size_t clen = 0;
        for (char *l = eol + 2; l < end;) {
            char *le = memchr(l, '\r', (size_t)(end + 2 - l));
            const char *v;
            size_t vl;
            if (hdr_is(l, (size_t)(le - l), "connection", 10, &v, &vl)) {
                if (has_token(v, vl, "close"))
                    keep = 0;
                else if (has_token(v, vl, "keep-alive"))
                    keep = 1;
            } else if (hdr_is(l, (size_t)(le - l), "content-length", 14, &v, &vl)) {
                char *ep2;
                clen = strtoul(v, &ep2, 10);
                if (ep2 != v + vl)
                    bad = 1;
            } else if (hdr_is(l, (size_t)(le - l), "transfer-encoding", 17, &v, &vl)) {
                bad = 1;
            }
            l = le + 2;
        }
        pos += hlen;
        if (bad) {
            enqueue(c, R_400 | Q_CLOSE);
            break;
        }
        c->skip = clen;
        enqueue(c, (unsigned char)(id | (head_only ? Q_HEAD : 0) | (keep ? 0 : Q_CLOSE)));
    }
    if (pos) {
        memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
        c->rlen -= pos;
    }
}

/* Write queued responses. Returns -1 if the connection was closed. */
static int
flush(struct conn *c)
{
    while (c->qn) {
        struct iovec iov[2 * QCAP];
        int n = 0;
        size_t off = c->off;
        for (unsigned i = 0; i < c->qn; i++) {
            unsigned char e = c->q[(c->qh + i) % QCAP];
            struct resp *r = &resps[e & 0x3f];
            size_t bl = (e & Q_HEAD) ? 0 : r->blen;
            if (off < r->hlen) {
                iov[n].iov_base = r->head + off;
                iov[n++].iov_len = r->hlen - off;
                off = 0;
            } else {
                off -= r->hlen;
            }
            if (bl > off) {
                iov[n].iov_base = r->body + off;
                iov[n++].iov_len = bl - off;
            }
            off = 0;
        }
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EAGAIN)
                break;
            if (errno == EINTR)
                continue;
            conn_close(c);
            return -1;
        }
        size_t left = (size_t)w;
        while (c->qn) { /* retire fully written responses */
            unsigned char e = c->q[c->qh];
            struct resp *r = &resps[e & 0x3f];
            size_t total = r->hlen + ((e & Q_HEAD) ? 0 : r->blen);
            size_t rem = total - c->off;
            if (left < rem) {
                c->off += left;
                break;
            }
            left -= rem;
            c->off = 0;
            c->qh = (c->qh + 1) % QCAP;
            c->qn--;
            if (e & Q_CLOSE) {
                conn_close(c);
                return -1;
            }
        }
    }
    return 0;
}

/* Parse what is buffered and write what is queued until neither makes progress. */
static int
pump(struct conn *c)
{
    for (;;) {
        unsigned before = c->qn;
        size_t rbefore = c->rlen;
        parse(c);
        if (flush(c) < 0)
            return -1;
        if (c->qn == before && c->rlen == rbefore)
            return 0;
        if (c->qn >= QCAP || c->closing)
            return 0;
    }
}

static void
on_event(struct conn *c, unsigned ev)
{
    if ((ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !c->closing && c->qn < QCAP) {
        ssize_t r = read(c->fd, c->rbuf + c->rlen, RBUF - c->rlen);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(c);
            return;
        }
        if (r > 0)
            c->rlen += (size_t)r;
    }
    if (pump(c) < 0)
        return;
    /* read more only while there is room and no close pending; wait for write space if output is
     * pending */
    unsigned want = 0;
    if (!c->closing && c->qn < QCAP)
        want |= EPOLLIN;
    if (c->qn)
        want |= EPOLLOUT;
    set_events(c, want);
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    mkresp(R_1K, "200 OK", 1024, 'a');
    mkresp(R_100K, "200 OK", 102400, 'b');
    mkresp(R_404, "404 Not Found", 10, 'n');
    mkresp(R_400, "400 Bad Request", 0, 0);
    mkresp(R_431, "431 Request Header Fields Too Large", 0, 0);

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((unsigned short)atoi(argv[1])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 4096) < 0) {
        perror("origin: bind/listen");
        return 1;
    }
    ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &e);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c) {
                on_event(c, evs[i].events);
                continue;
            }
            for (int k = 0; k < 64; k++) { /* accept a batch */
                int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                if (fd < 0)
                    break;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                c = malloc(sizeof *c);
                if (!c) {
                    close(fd);
                    continue;
                }
                c->fd = fd;
                c->events = EPOLLIN;
                c->rlen = c->skip = c->off = 0;
                c->qh = c->qn = 0;
                c->closing = 0;
                struct epoll_event ce = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
            }
        }
    }
}
