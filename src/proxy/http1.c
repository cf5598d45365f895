/*
 * http1.c - the HTTP/1.1 reverse-proxy state machine: one client connection,
 * its requests one at a time (pipelined ones wait in order), and for each
 * request one upstream connection.
 *
 * Shape (h2o lib/http1.c, nginx): event callbacks (on_client_event,
 * on_up_event, on_*_timeout) record readiness and hand over to conn_advance(),
 * which holds the one switch over the connection state; a request's progress
 * is req_advance(), which pumps both directions until neither can move:
 *
 *   client --head--> parse, route, build upstream head --> upstream
 *   client --body--> de-frame (CL / chunked), re-frame --> upstream
 *   upstream --head--> parse strictly, rebuild head ----> client
 *   upstream --body--> de-frame, re-frame -------------> client
 *
 * Every read lands in the worker's shared scratch buffer; only bytes that
 * cannot be handed on at once are copied into a private buffer (c->in, c->out,
 * u->in, r->upout). New output is produced only when the previous output has
 * been written, which is the backpressure: a side that cannot write stops the
 * other side's reads, so memory per connection stays bounded by a few buffers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "http/fields.h"
#include "http/h1_write.h"
#include "http/uri.h"
#include "net/pipe.h"
#include "net/sock.h"
#include "net/xprt.h"
#include "proxy/worker.h"

#define MAX_HEADERS 256
#define MAX_IOV 64
/* Input handed to the chunked encoder is cut this much short of the room, so
 * the chunk-size lines it adds always fit (at most MAX_IOV/3 spans of 9 bytes). */
#define CHUNK_RESERVE 512
/* splice(2) for the rest of a Content-Length response body of at least
 * SPLICE_MIN bytes; the first read of a response takes at most
 * SPLICE_HEAD_READ bytes so that most of such a body is left to splice. */
#define SPLICE_MIN (16 * 1024)
#define SPLICE_HEAD_READ (16 * 1024)

enum body_kind { BODY_NONE = 0, BODY_CL, BODY_CHUNKED, BODY_CLOSE };

#define R_HEAD_METHOD 0x0001
#define R_KEEPALIVE 0x0002    /* the client connection may be kept after this request */
#define R_REQ_DONE 0x0004     /* request fully sent upstream */
#define R_RESP_DONE 0x0008    /* response fully produced (maybe still in c->out) */
#define R_RESP_STARTED 0x0010 /* some response byte went to the client */
#define R_HEAD_DONE 0x0020    /* response head received */
#define R_RETRIED 0x0040
#define R_UPGRADE 0x0080 /* the client asked for an upgrade */
#define R_EXPECT 0x0100
#define R_BODY_SENT 0x0200   /* some request body byte went upstream */
#define R_UP_REUSABLE 0x0400 /* the upstream connection may be pooled afterwards */
#define R_CHUNK_OUT 0x0800   /* response is re-framed chunked to the client */
#define R_HEAD_SENT 0x1000   /* request head fully written upstream */
#define R_CLIENT_10 0x2000
#define R_GOT_BYTE 0x4000  /* any byte of response received */
#define R_PARSE_BUF 0x8000 /* u->in holds response-head bytes not parsed yet (after a 1xx) */

/* Access-log strings copied at head time (the head's bytes do not outlive it).
 * One fixed-size object from a per-thread freelist, taken only when logging is
 * on; over-long fields are cut (a log line is not a place for 8 KiB cookies). */
struct gh_log_info {
    char request[512]; /* "GET /x HTTP/1.1" */
    char referer[224];
    char agent[224];
    char host[64];
};

struct gh_req {
    struct gh_conn *c;
    struct gh_upconn *u;
    struct gh_wcfg *wc;
    const struct gh_server_conf *srv;
    const struct gh_proxy_conf *pc;
    const struct gh_upstream_server *target;
    char *uphead;         /* serialized request head, kept until the response starts (retry) */
    struct gh_buf *upout; /* request body bytes the origin has not taken yet */
    uint32_t uphead_len;
    uint32_t uphead_sent;
    uint32_t uphead_cap; /* GH_SMALL_HEAD / GH_BIG_HEAD: from the worker's freelists; else malloc */
    uint32_t flags;
    uint32_t attempts;
    uint8_t method;
    uint8_t req_body; /* enum body_kind */
    uint8_t resp_body;
    uint16_t status;
    uint64_t req_remaining;
    uint64_t req_bytes;
    uint64_t resp_remaining;
    uint64_t bytes_out;
    struct gh_h1_chunked req_chunk;
    struct gh_h1_chunked resp_chunk;
    uint64_t t_start, t_head, t_connect, t_first_byte;
    struct gh_log_info *log;
    const char *fail_reason;
    struct gh_pipe *pipe;    /* response body moving by splice(2), see resp_splice */
    struct gh_pipe *reqpipe; /* request body moving by splice(2), see req_splice */
    uint64_t sent_mark;      /* bytes written to the client when send_timeout was last armed */
};

const size_t gh_http_req_size = sizeof(struct gh_req);
const size_t gh_http_log_info_size = sizeof(struct gh_log_info);

static void conn_advance(struct gh_conn *c);
static void on_client_event(struct gh_io *io, uint32_t events);
static void on_client_timeout(struct gh_timer *t);
static void on_up_event(struct gh_io *io, uint32_t events);
static void on_up_timeout(struct gh_timer *t);
static int up_connect(struct gh_req *r, int fresh);
static void req_finish(struct gh_req *r);
static int resp_splice(struct gh_req *r);
static int req_splice(struct gh_req *r, int progress);

/* ------------------------------------------------------------------ */
/* small writer for heads                                               */

static int
rule_names(const struct gh_hdr_rule *rules, uint32_t n, const char *name, size_t len)
{
    for (uint32_t i = 0; i < n; i++)
        if (rules[i].op != GH_HDR_ADD && rules[i].name_len == len &&
            gh_strncaseeq(rules[i].name, name, len))
            return 1;
    return 0;
}

static void
wr_rules(struct gh_wr *w, const struct gh_hdr_rule *rules, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (rules[i].op != GH_HDR_REMOVE)
            gh_wr_field(w, rules[i].name, rules[i].name_len, rules[i].value, rules[i].value_len);
}

/* ------------------------------------------------------------------ */
/* client connection basics                                           */

/* The client's address as text (for X-Forwarded-For, logs). IPv4 is formatted
 * by hand: inet_ntop goes through sprintf, which was 1,500 instructions per
 * request on the hot path. */
static size_t
conn_ip_str(const struct gh_conn *c, char *out, size_t cap)
{
    if (c->family == AF_INET && cap >= 16) {
        char *p = out;
        for (int i = 0; i < 4; i++) {
            unsigned v = c->ip[i];
            if (v >= 100)
                *p++ = (char)('0' + v / 100);
            if (v >= 10)
                *p++ = (char)('0' + v / 10 % 10);
            *p++ = (char)('0' + v % 10);
            *p++ = '.';
        }
        p[-1] = '\0';
        return (size_t)(p - 1 - out);
    }
    if (inet_ntop(c->family, c->ip, out, (socklen_t)cap) == NULL)
        return 0;
    return strlen(out);
}

static void
uphead_free(struct gh_req *r)
{
    if (r->uphead == NULL)
        return;
    if (r->uphead_cap == GH_SMALL_HEAD)
        gh_freelist_put(&r->c->w->head_fl, r->uphead);
    else if (r->uphead_cap == GH_BIG_HEAD)
        gh_freelist_put(&r->c->w->big_head_fl, r->uphead);
    else
        free(r->uphead);
    r->uphead = NULL;
}

static void
req_free(struct gh_req *r)
{
    struct gh_worker *w = r->c->w;
    uphead_free(r);
    gh_buf_put(r->upout);
    gh_pipe_put(r->pipe); /* closed rather than cached if bytes are left in it */
    gh_pipe_put(r->reqpipe);
    if (r->log != NULL)
        gh_freelist_put(&w->log_fl, r->log);
    struct gh_wcfg *wc = r->wc;
    if (--wc->users == 0 && wc != w->cur)
        gh_wcfg_free(wc);
    r->c->req = NULL;
    gh_freelist_put(&w->req_fl, r);
}

void
gh_http_conn_close(struct gh_conn *c)
{
    if (c->flags & C_DEAD)
        return;
    struct gh_worker *w = c->w;
    if (c->req != NULL) {
        struct gh_req *r = c->req;
        if (r->u != NULL) {
            r->u->req = NULL;
            gh_upconn_close(r->u);
            r->u = NULL;
        }
        req_free(r);
    }
    gh_timer_stop(w->loop, &c->timer);
    gh_xprt_close(&c->x);
    c->flags |= C_DEAD;
    gh_buf_put(c->in);
    gh_buf_put(c->out);
    c->in = c->out = NULL;
    gh_worker_conn_closed(w, c);
    gh_loop_defer_free(w->loop, c, gh_worker_free_obj, &w->conn_fl);
}

/* Close after the peer has read what we wrote: shut our side, discard what it
 * still sends for a short while (nginx lingering close), so a response to a
 * rejected request is not destroyed by a TCP reset. */
static void
conn_linger(struct gh_conn *c)
{
    if (c->req != NULL) {
        struct gh_req *r = c->req;
        if (r->u != NULL) {
            r->u->req = NULL;
            gh_upconn_close(r->u);
            r->u = NULL;
        }
        req_free(r);
    }
    if (c->x.io.ready & GH_XPRT_EOF) {
        gh_http_conn_close(c);
        return;
    }
    gh_xprt_shutdown(&c->x);
    gh_buf_put(c->in);
    c->in = NULL;
    c->state = CS_LINGER;
    c->flags |= C_LINGER;
    gh_timer_after(c->w->loop, &c->timer, 2000);
    conn_advance(c);
}

void
gh_http_conn_drain(struct gh_conn *c)
{
    if (c->flags & C_DEAD)
        return;
    if (c->state == CS_IDLE && (c->in == NULL || gh_buf_len(c->in) == 0) && c->out == NULL)
        gh_http_conn_close(c);
    else
        c->flags |= C_CLOSE_AFTER;
}

void
gh_http_on_accept(struct gh_worker *w, struct gh_lsock *ls, int fd,
                  const struct sockaddr_storage *peer)
{
    struct gh_conn *c = gh_freelist_get(&w->conn_fl);
    if (c == NULL) {
        close(fd);
        return;
    }
    memset(c, 0, sizeof(*c));
    gh_xprt_init(&c->x, fd, on_client_event, GH_XPRT_CAN_WRITE);
    c->timer.cb = on_client_timeout;
    c->w = w;
    c->ls = ls;
    c->state = CS_IDLE;
    c->family = (uint8_t)peer->ss_family;
    if (peer->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)peer;
        memcpy(c->ip, &s->sin_addr, 4);
        c->port = ntohs(s->sin_port);
    } else if (peer->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)peer;
        memcpy(c->ip, &s->sin6_addr, 16);
        c->port = ntohs(s->sin6_port);
    }
    /* EPOLLOUT is added only once a write falls short (arm_writes): a socket that
     * always takes what it is given then never wakes the loop for writability */
    if (gh_xprt_watch(w->loop, &c->x, EPOLLIN | EPOLLRDHUP) != 0) {
        close(fd);
        gh_freelist_put(&w->conn_fl, c);
        return;
    }
    gh_lsock_conn_opened(ls);
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    c->flags |= C_IN_LIST;
    w->nconns++;
    /* The first request's head must arrive within client_header_timeout. */
    const struct gh_config *cfg = w->cur->cfg;
    uint32_t ms = 10000;
    if (ls->idx >= 0 && (uint32_t)ls->idx < cfg->n_listeners)
        ms = cfg->listeners[ls->idx].default_server->client_header_timeout_ms;
    gh_timer_after(w->loop, &c->timer, ms);
}

/* ------------------------------------------------------------------ */
/* generated responses                                                */

/* What a generated response says about the connection. */
enum gen_conn {
    GEN_KEEP = 0, /* HTTP/1.1 client, kept: nothing to say */
    GEN_CLOSE,    /* closed after this response */
    GEN_KEEP10,   /* HTTP/1.0 client, kept: it must be told (RFC 9112 §9.3, C.2.2) */
};

/* A response generated by Gatehouse (error page or `return`). */
struct gen {
    int status;
    const char *body; /* NULL: the standard HTML page for the status */
    size_t body_len;
    const char *location; /* redirects: the Location value */
    size_t location_len;
    const struct gh_proxy_conf *pc; /* whose response_header rules apply, or NULL */
    enum gen_conn conn;
    int head_only; /* answer to HEAD: no body */
};

static int
gen_keeps(const struct gen *g, const char *name, size_t len)
{
    return g->pc == NULL || g->pc->n_resp_rules == 0 ||
           !rule_names(g->pc->resp_rules, g->pc->n_resp_rules, name, len);
}

/*
 * Queue a generated response for the client. With GEN_CLOSE the connection
 * is closed after it. Returns 0 or -ENOMEM.
 */
static int
conn_send_generated(struct gh_conn *c, const struct gen *g)
{
    int close_after = g->conn == GEN_CLOSE;
    struct gh_worker *w = c->w;
    int status = g->status;
    const char *body = g->body, *ctype = "text/plain";
    size_t body_len = g->body_len;
    char page[512];
    if (body == NULL) {
        int n = snprintf(page, sizeof(page),
                         "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d "
                         "%s</h1></center>\r\n<hr><center>gatehouse</center>\r\n</body>\r\n"
                         "</html>\r\n",
                         status, gh_h1w_status_text(status), status, gh_h1w_status_text(status));
        body = page;
        body_len = (size_t)n;
        ctype = "text/html";
    }
    if (c->out == NULL && (c->out = gh_buf_get()) == NULL)
        return -ENOMEM;
    size_t room = gh_buf_reserve(c->out, 2048 + body_len + g->location_len);
    struct gh_wr wr = {gh_buf_tail(c->out), 0, room, 0};
    gh_h1w_status_line(&wr, status, NULL, 0);
    if (gen_keeps(g, "Server", 6))
        GH_WR_LIT(&wr, "Server: gatehouse\r\n");
    if (gen_keeps(g, "Date", 4))
        gh_h1w_date(&wr, gh_loop_wall(w->loop));
    if (g->location != NULL && gen_keeps(g, "Location", 8))
        gh_wr_field(&wr, "Location", 8, g->location, g->location_len);
    int bodyless = status < 200 || status == 204 || status == 304;
    if (!bodyless) {
        if (gen_keeps(g, "Content-Type", 12)) {
            GH_WR_LIT(&wr, "Content-Type: ");
            gh_wr_str(&wr, ctype);
            GH_WR_LIT(&wr, "\r\n");
        }
        gh_h1w_content_length(&wr, body_len);
    }
    if (g->pc != NULL)
        wr_rules(&wr, g->pc->resp_rules, g->pc->n_resp_rules);
    if (close_after)
        GH_WR_LIT(&wr, "Connection: close\r\n");
    else if (g->conn == GEN_KEEP10)
        GH_WR_LIT(&wr, "Connection: keep-alive\r\n");
    GH_WR_LIT(&wr, "\r\n");
    if (!bodyless && !g->head_only)
        gh_wr_put(&wr, body, body_len);
    if (wr.overflow)
        return -ENOMEM;
    gh_buf_commit(c->out, wr.len);
    if (close_after)
        c->flags |= C_CLOSE_AFTER;
    return 0;
}

/* The standard page for status, closing the connection after it. */
static int
conn_send_error(struct gh_conn *c, int status, const struct gh_proxy_conf *pc, int head_only)
{
    struct gen g = {.status = status, .pc = pc, .conn = GEN_CLOSE, .head_only = head_only};
    return conn_send_generated(c, &g);
}

/* ------------------------------------------------------------------ */
/* access log                                                          */

/* Copy a slice into a fixed field, cut to fit, NUL-terminated. */
static void
copy_field(char *dst, size_t cap, const char *p, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, p, n);
    dst[n] = '\0';
}

static void
log_capture(struct gh_req *r, const struct gh_h1_request *pr)
{
    struct gh_log_info *li = gh_freelist_get(&r->c->w->log_fl);
    if (li == NULL)
        return;
    struct gh_wr w = {li->request, 0, sizeof(li->request) - 1, 0};
    size_t mlen = GH_MIN(pr->method_len, 64);
    gh_wr_put(&w, pr->method, mlen);
    GH_WR_LIT(&w, " ");
    /* room left for the target once " HTTP/1.x" is reserved */
    gh_wr_put(&w, pr->target, GH_MIN(pr->target_len, sizeof(li->request) - 1 - 10 - mlen));
    gh_wr_str(&w, pr->version == 10 ? " HTTP/1.0" : " HTTP/1.1");
    li->request[w.len] = '\0';
    li->referer[0] = li->agent[0] = li->host[0] = '\0';
    for (uint32_t i = 0; i < pr->num_headers; i++) {
        const struct gh_h1_header *h = &pr->headers[i];
        if (h->name_len == 7 && gh_strncaseeq(h->name, "referer", 7) && li->referer[0] == '\0')
            copy_field(li->referer, sizeof(li->referer), h->value, h->value_len);
        else if (h->name_len == 10 && gh_strncaseeq(h->name, "user-agent", 10) &&
                 li->agent[0] == '\0')
            copy_field(li->agent, sizeof(li->agent), h->value, h->value_len);
    }
    if (pr->host != NULL)
        copy_field(li->host, sizeof(li->host), pr->host, pr->host_len);
    r->log = li;
}

/* Escape for a quoted field of the combined format or a JSON string. */
static void
wr_escaped(struct gh_wr *w, const char *s, int json)
{
    if (s == NULL || *s == '\0') {
        if (!json)
            GH_WR_LIT(w, "-");
        return;
    }
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x7f) {
            char esc[8];
            int n = json ? snprintf(esc, sizeof(esc), "\\u%04x", ch)
                         : snprintf(esc, sizeof(esc), "\\x%02X", ch);
            gh_wr_put(w, esc, (size_t)n);
        } else {
            gh_wr_put(w, s, 1);
        }
    }
}

static void
req_log(struct gh_req *r)
{
    struct gh_conn *c = r->c;
    struct gh_worker *w = c->w;
    const struct gh_config *cfg = r->wc->cfg;
    if (!cfg->access_log_on)
        return;
    char line[4096];
    struct gh_wr wr = {line, 0, sizeof(line) - 1, 0};
    char ip[64];
    if (conn_ip_str(c, ip, sizeof(ip)) == 0)
        strcpy(ip, "-");
    struct gh_log_info *li = r->log;
    uint64_t now = gh_loop_now(w->loop);
    if (cfg->access_log_format == GH_LOG_JSON) {
        GH_WR_LIT(&wr, "{\"time\":\"");
        gh_wr_str(&wr, gh_worker_log_time(w, 1));
        GH_WR_LIT(&wr, "\",\"remote_addr\":\"");
        gh_wr_str(&wr, ip);
        GH_WR_LIT(&wr, "\",\"request\":\"");
        wr_escaped(&wr, li ? li->request : NULL, 1);
        GH_WR_LIT(&wr, "\",\"host\":\"");
        wr_escaped(&wr, li ? li->host : NULL, 1);
        GH_WR_LIT(&wr, "\",\"status\":");
        gh_wr_u64(&wr, r->status);
        GH_WR_LIT(&wr, ",\"bytes_sent\":");
        gh_wr_u64(&wr, r->bytes_out);
        GH_WR_LIT(&wr, ",\"upstream\":\"");
        if (r->target != NULL)
            gh_wr_str(&wr, r->target->addr.text);
        GH_WR_LIT(&wr, "\",\"user_agent\":\"");
        wr_escaped(&wr, li ? li->agent : NULL, 1);
        GH_WR_LIT(&wr, "\",\"referer\":\"");
        wr_escaped(&wr, li ? li->referer : NULL, 1);
        char tb[160];
        int n = snprintf(tb, sizeof(tb),
                         "\",\"t_headers_ms\":%lld,\"t_connect_ms\":%lld,\"t_first_byte_ms\":%lld,"
                         "\"t_total_ms\":%llu}\n",
                         (long long)(r->t_head - r->t_start),
                         r->t_connect ? (long long)(r->t_connect - r->t_start) : -1LL,
                         r->t_first_byte ? (long long)(r->t_first_byte - r->t_start) : -1LL,
                         (unsigned long long)(now - r->t_start));
        gh_wr_put(&wr, tb, (size_t)n);
    } else {
        gh_wr_str(&wr, ip);
        GH_WR_LIT(&wr, " - - ");
        gh_wr_str(&wr, gh_worker_log_time(w, 0));
        GH_WR_LIT(&wr, " \"");
        wr_escaped(&wr, li ? li->request : NULL, 0);
        GH_WR_LIT(&wr, "\" ");
        gh_wr_u64(&wr, r->status);
        GH_WR_LIT(&wr, " ");
        gh_wr_u64(&wr, r->bytes_out);
        GH_WR_LIT(&wr, " \"");
        wr_escaped(&wr, li ? li->referer : NULL, 0);
        GH_WR_LIT(&wr, "\" \"");
        wr_escaped(&wr, li ? li->agent : NULL, 0);
        GH_WR_LIT(&wr, "\"\n");
    }
    if (wr.overflow) {
        wr.len = wr.cap;
        line[wr.len++] = '\n';
    }
    gh_worker_alog(w, line, wr.len);
}

/*
 * Access-log line for a request rejected before it became one (bad head, head
 * timeout), as nginx logs them: the request field is the raw first line, cut
 * at 500 bytes and escaped like any other.
 */
static void
log_rejected(struct gh_conn *c, int status, const char *p, size_t n)
{
    struct gh_worker *w = c->w;
    if (!w->cur->cfg->access_log_on)
        return;
    struct gh_log_info li;
    size_t k = 0;
    while (p != NULL && k < n && k < 500 && p[k] != '\r' && p[k] != '\n')
        k++;
    if (p != NULL)
        memcpy(li.request, p, k);
    li.request[k] = '\0';
    li.referer[0] = li.agent[0] = li.host[0] = '\0';
    struct gh_req r;
    memset(&r, 0, sizeof(r));
    r.c = c;
    r.wc = w->cur;
    r.log = &li;
    r.status = (uint16_t)status;
    r.bytes_out = c->out != NULL ? gh_buf_len(c->out) : 0;
    r.t_head = gh_loop_now(w->loop);
    r.t_start = c->t_first ? c->t_first : r.t_head;
    req_log(&r);
}

/* ------------------------------------------------------------------ */
/* failing a request                                                   */

/*
 * The request cannot be completed. If the client has seen nothing of the
 * response yet, it gets a generated page with `status` and the connection is
 * closed after it; otherwise the connection is cut (the client sees a short
 * body or a missing last chunk, which is the truth). reason goes to the log.
 */
static void
req_fail(struct gh_req *r, int status, const char *reason)
{
    struct gh_conn *c = r->c;
    char ip[64];
    if (conn_ip_str(c, ip, sizeof(ip)) == 0)
        strcpy(ip, "-");
    if (status >= 500)
        gh_log_error("client %s: %d: %s%s%s", ip, status, reason, r->target ? ", upstream " : "",
                     r->target ? r->target->addr.text : "");
    else
        gh_log_info("client %s: %d: %s", ip, status, reason);
    if (r->u != NULL) {
        r->u->req = NULL;
        gh_upconn_close(r->u);
        r->u = NULL;
    }
    if (r->flags & R_RESP_STARTED) {
        r->status = r->status ? r->status : (uint16_t)status;
        req_log(r);
        gh_http_conn_close(c);
        return;
    }
    r->status = (uint16_t)status;
    gh_buf_put(c->out);
    c->out = NULL;
    /* An origin failure after the whole request was read leaves the client
     * connection in a clean state: keep it (as nginx does); anything else closes. */
    struct gen g = {
        .status = status, .pc = r->pc, .conn = GEN_CLOSE, .head_only = r->flags & R_HEAD_METHOD};
    if (status >= 500 && (r->flags & R_REQ_DONE) && (r->flags & R_KEEPALIVE) &&
        !(c->flags & C_CLOSE_AFTER))
        g.conn = (r->flags & R_CLIENT_10) ? GEN_KEEP10 : GEN_KEEP;
    if (conn_send_generated(c, &g) != 0) {
        gh_http_conn_close(c);
        return;
    }
    r->flags |= R_RESP_DONE | R_RESP_STARTED;
    r->bytes_out = gh_buf_len(c->out);
    r->flags &= ~(uint32_t)R_UP_REUSABLE;
    /* The connection closes once the page is written; if the request body is not
     * all in, req_finish lingers so the client reads the page rather than a reset. */
}

/* ------------------------------------------------------------------ */
/* building the request head for the origin                           */

/* Values of a list header (X-Forwarded-For, Forwarded, Via) that the proxy
 * appends to: collected while copying headers, written back as one field. */
struct prior {
    const struct gh_h1_header *h[16];
    uint32_t n;
};

static inline void
prior_add(struct prior *pl, const struct gh_h1_header *h)
{
    if (pl->n < GH_ARRAY_LEN(pl->h))
        pl->h[pl->n++] = h;
}

/* "Name: prior1, prior2, " - the caller writes its own member and the CRLF. */
static void
wr_prior(struct gh_wr *w, const char *name, size_t nlen, const struct prior *pl)
{
    gh_wr_put(w, name, nlen);
    GH_WR_LIT(w, ": ");
    for (uint32_t i = 0; i < pl->n; i++) {
        gh_wr_put(w, pl->h[i]->value, pl->h[i]->value_len);
        GH_WR_LIT(w, ", ");
    }
}

/* `Via`: what came, then this hop (RFC 9110 §7.6.3), in the protocol version it was received in. */
static inline void
wr_via(struct gh_wr *w, const struct prior *pl, int v10)
{
    wr_prior(w, "Via", 3, pl);
    gh_wr_str(w, v10 ? "1.0 gatehouse\r\n" : "1.1 gatehouse\r\n");
}

/* May header h be copied to the other side? (not named by Connection, not
 * replaced or removed by a header rule) */
static int
hdr_passes(const struct gh_h1_header *hs, uint32_t nh, const struct gh_h1_header *h, int conn_other,
           const struct gh_hdr_rule *rules, uint32_t n_rules)
{
    if (conn_other && gh_field_named_by_connection(hs, nh, h))
        return 0;
    return n_rules == 0 || !rule_names(rules, n_rules, h->name, h->name_len);
}

static int
build_up_head(struct gh_req *r, const struct gh_h1_request *pr, const char *host, size_t host_len,
              const char *path, size_t path_len)
{
    struct gh_conn *c = r->c;
    const struct gh_proxy_conf *pc = r->pc;
    /* built in the worker's head scratch, then copied into an object of the right
     * size: a request in flight holds a few hundred bytes, not a 64 KiB buffer */
    struct gh_wr w = {c->w->hscratch, 0, GH_BUF_SIZE, 0};
    gh_wr_put(&w, pr->method, pr->method_len);
    GH_WR_LIT(&w, " ");
    if (path_len > 0 && path[0] == '?')
        GH_WR_LIT(&w, "/");
    gh_wr_put(&w, path, path_len);
    GH_WR_LIT(&w, " HTTP/1.1\r\nHost: ");
    if (pc->upstream_host != NULL)
        gh_wr_put(&w, pc->upstream_host, pc->upstream_host_len);
    else if (host != NULL)
        gh_wr_put(&w, host, host_len);
    else
        gh_wr_str(&w, r->target->addr.text);
    GH_WR_LIT(&w, "\r\n");

    const struct gh_h1_header *hs = pr->headers;
    uint32_t nh = pr->num_headers;
    int conn_other = (pr->flags & GH_H1_F_CONN_OTHER) != 0;
    int upgrade = (r->flags & R_UPGRADE) != 0;
    int xff = pc->forwarded == GH_FWD_XFF || pc->forwarded == GH_FWD_BOTH;
    int fwd = pc->forwarded == GH_FWD_RFC7239 || pc->forwarded == GH_FWD_BOTH;
    struct prior p_xff, p_fwd, p_via; /* only .n is read before being written */
    p_xff.n = p_fwd.n = p_via.n = 0;

    for (uint32_t i = 0; i < nh; i++) {
        const struct gh_h1_header *h = &hs[i];
        switch (h->id) {
        case GH_HDR_HOST:
        case GH_HDR_CONTENT_LENGTH:
        case GH_HDR_TRANSFER_ENCODING:
        case GH_HDR_CONNECTION:
        case GH_HDR_KEEP_ALIVE:
        case GH_HDR_PROXY_CONNECTION:
        case GH_HDR_PROXY_AUTHORIZATION:
        case GH_HDR_TE:
        case GH_HDR_TRAILER:
        case GH_HDR_EXPECT:
            continue;
        case GH_HDR_UPGRADE:
            if (!upgrade)
                continue;
            break;
        case GH_HDR_X_FORWARDED_FOR:
            if (xff) {
                prior_add(&p_xff, h);
                continue;
            }
            break;
        case GH_HDR_X_FORWARDED_PROTO:
        case GH_HDR_X_FORWARDED_HOST:
            if (xff)
                continue;
            break;
        case GH_HDR_FORWARDED:
            if (fwd) {
                prior_add(&p_fwd, h);
                continue;
            }
            break;
        case GH_HDR_VIA:
            if (pc->via) {
                prior_add(&p_via, h);
                continue;
            }
            break;
        default:
            break;
        }
        if (hdr_passes(hs, nh, h, conn_other, pc->req_rules, pc->n_req_rules))
            gh_wr_field(&w, h->name, h->name_len, h->value, h->value_len);
    }

    char ip[64];
    size_t iplen = conn_ip_str(c, ip, sizeof(ip));
    const char *orig_host = pr->host;
    size_t orig_host_len = pr->host_len;
    if (pr->target_form == GH_TARGET_ABSOLUTE) {
        orig_host = host;
        orig_host_len = host_len;
    }
    if (xff) {
        wr_prior(&w, "X-Forwarded-For", 15, &p_xff);
        gh_wr_put(&w, ip, iplen);
        GH_WR_LIT(&w, "\r\nX-Forwarded-Proto: http\r\n");
        if (orig_host != NULL)
            gh_wr_field(&w, "X-Forwarded-Host", 16, orig_host, orig_host_len);
    }
    if (fwd) {
        wr_prior(&w, "Forwarded", 9, &p_fwd);
        GH_WR_LIT(&w, "for=");
        if (c->family == AF_INET6) {
            GH_WR_LIT(&w, "\"[");
            gh_wr_put(&w, ip, iplen);
            GH_WR_LIT(&w, "]\"");
        } else {
            gh_wr_put(&w, ip, iplen);
        }
        GH_WR_LIT(&w, ";proto=http");
        if (orig_host != NULL && orig_host_len > 0) {
            GH_WR_LIT(&w, ";host=\"");
            gh_wr_put(&w, orig_host, orig_host_len);
            GH_WR_LIT(&w, "\"");
        }
        GH_WR_LIT(&w, "\r\n");
    }
    if (pc->via) {
        wr_via(&w, &p_via, (r->flags & R_CLIENT_10) != 0);
    }
    wr_rules(&w, pc->req_rules, pc->n_req_rules);
    if (r->req_body == BODY_CL)
        gh_h1w_content_length(&w, r->req_remaining);
    else if (r->req_body == BODY_CHUNKED) {
        GH_WR_LIT(&w, "Transfer-Encoding: chunked\r\n");
    }
    if (upgrade)
        GH_WR_LIT(&w, "Connection: upgrade\r\n");
    GH_WR_LIT(&w, "\r\n");
    if (w.overflow)
        return -E2BIG;
    if (w.len <= GH_SMALL_HEAD) {
        r->uphead = gh_freelist_get(&c->w->head_fl);
        r->uphead_cap = GH_SMALL_HEAD;
    } else if (w.len <= GH_BIG_HEAD) {
        r->uphead = gh_freelist_get(&c->w->big_head_fl);
        r->uphead_cap = GH_BIG_HEAD;
    } else {
        r->uphead = malloc(w.len);
        r->uphead_cap = (uint32_t)w.len;
    }
    if (r->uphead == NULL)
        return -ENOMEM;
    memcpy(r->uphead, w.p, w.len);
    r->uphead_len = (uint32_t)w.len;
    r->uphead_sent = 0;
    return 0;
}

/* ------------------------------------------------------------------ */
/* request start                                                       */

static void
conn_set_timer(struct gh_conn *c, uint32_t ms)
{
    gh_timer_after(c->w->loop, &c->timer, ms);
}

/*
 * A complete request head is in base[0..pr->head_len). Route it, decide the
 * framing and start the upstream side. Everything needed from the head's
 * slices is copied or sent before this returns: the slices may point into the
 * shared scratch buffer. Returns 0 (the request is running or was answered).
 */
static int
req_start(struct gh_conn *c, struct gh_h1_request *pr)
{
    struct gh_worker *w = c->w;
    struct gh_req *r = gh_freelist_get(&w->req_fl);
    if (r == NULL) {
        conn_send_error(c, 503, NULL, 0);
        c->state = CS_REQ; /* no request object: conn_advance flushes and closes */
        return -ENOMEM;
    }
    memset(r, 0, sizeof(*r));
    r->sent_mark = UINT64_MAX; /* the first wait on the client always arms send_timeout */
    r->c = c;
    r->wc = w->cur;
    r->wc->users++;
    c->req = r;
    c->state = CS_REQ;
    r->t_head = gh_loop_now(w->loop);
    r->t_start = c->t_first ? c->t_first : r->t_head;
    r->method = pr->method_id;
    w->st_requests++;
    if (pr->method_id == GH_METHOD_HEAD)
        r->flags |= R_HEAD_METHOD;
    if (pr->version == 10)
        r->flags |= R_CLIENT_10;

    const struct gh_config *cfg = r->wc->cfg;
    if (cfg->access_log_on)
        log_capture(r, pr);

    if (c->ls->idx < 0 || (uint32_t)c->ls->idx >= cfg->n_listeners) {
        /* listener removed by a reload: finish politely */
        req_fail(r, 503, "listener removed by reload");
        return 0;
    }
    const struct gh_listen_conf *lc = &cfg->listeners[c->ls->idx];

    const char *host = pr->host;
    size_t host_len = pr->host_len;
    const char *path = pr->target;
    size_t path_len = pr->target_len;
    if (pr->target_form == GH_TARGET_ABSOLUTE)
        gh_uri_split_absolute(pr->target, pr->target_len, &host, &host_len, &path, &path_len);
    r->srv = gh_conf_find_server(lc, host, host_len);
    const char *q = memchr(path, '?', path_len);
    size_t route_len = q ? (size_t)(q - path) : path_len;
    const char *rpath = "/"; /* RFC 9110 §4.2.3: an empty path ("http://h?q") is "/" */
    size_t rlen = 1;
    if (route_len > 0 && path[0] == '/' &&
        gh_uri_normalize_path(path, route_len, w->hscratch, &rpath, &rlen) != 0) {
        r->pc = &r->srv->pc;
        req_fail(r, 400, "request path cannot be normalised (bad escape or '..' above the root)");
        return 0;
    }
    r->pc = gh_conf_find_route(r->srv, rpath, rlen, NULL);
    const struct gh_server_conf *srv = r->srv;
    const struct gh_proxy_conf *pc = r->pc;

    /* keep-alive decision */
    int ka = pr->version == 11 ? !(pr->flags & GH_H1_F_CONN_CLOSE)
                               : (pr->flags & GH_H1_F_CONN_KEEPALIVE) != 0;
    if (srv->keepalive_timeout_ms == 0 || c->nreq + 1 >= srv->keepalive_requests || w->stopping ||
        (c->flags & C_CLOSE_AFTER))
        ka = 0;
    if (ka)
        r->flags |= R_KEEPALIVE;

    if (pr->target_form == GH_TARGET_AUTHORITY || pr->method_id == GH_METHOD_CONNECT) {
        req_fail(r, 405, "CONNECT is not served by a reverse proxy");
        return 0;
    }
    if (pr->flags & GH_H1_F_CHUNKED) {
        r->req_body = BODY_CHUNKED;
        gh_h1_chunked_init(&r->req_chunk);
    } else if (pr->content_length > 0) {
        r->req_body = BODY_CL;
        r->req_remaining = (uint64_t)pr->content_length;
        if (pc->client_max_body_size && (uint64_t)pr->content_length > pc->client_max_body_size) {
            req_fail(r, 413, "request body larger than client_max_body_size");
            return 0;
        }
    } else if (pr->flags & GH_H1_F_HAS_CL) {
        r->req_body = BODY_CL; /* Content-Length: 0 is forwarded as such */
        r->req_remaining = 0;
    }
    if (r->req_body == BODY_NONE || (r->req_body == BODY_CL && r->req_remaining == 0))
        r->flags |= R_REQ_DONE;
    if ((pr->flags & GH_H1_F_EXPECT_CONTINUE) && pr->version == 11 && !(r->flags & R_REQ_DONE))
        r->flags |= R_EXPECT;
    if ((pr->flags & GH_H1_F_UPGRADE) && (pr->flags & GH_H1_F_CONN_UPGRADE) && pr->version == 11)
        r->flags |= R_UPGRADE;

    if (pc->return_status != 0 || pc->upstream == NULL) {
        int st = pc->return_status ? (int)pc->return_status : 404;
        const char *body = pc->return_status ? pc->return_body : NULL;
        size_t blen = pc->return_status ? pc->return_body_len : 0;
        /* a request body is not read for a `return`: the connection ends after it */
        enum gen_conn gc = !(r->flags & R_KEEPALIVE) || !(r->flags & R_REQ_DONE) ? GEN_CLOSE
                           : (r->flags & R_CLIENT_10)                            ? GEN_KEEP10
                                                                                 : GEN_KEEP;
        struct gen g = {.status = st,
                        .body = body ? body : (st >= 400 ? NULL : ""),
                        .body_len = blen,
                        .pc = pc,
                        .conn = gc,
                        .head_only = r->flags & R_HEAD_METHOD};
        if (st == 301 || st == 302 || st == 303 || st == 307 || st == 308) {
            /* as in nginx, `return 30x URL` redirects: the text is the Location */
            g.location = body;
            g.location_len = blen;
            g.body = NULL;
            g.body_len = 0;
        }
        if (conn_send_generated(c, &g) != 0) {
            gh_http_conn_close(c);
            return 0;
        }
        r->status = (uint16_t)st;
        r->bytes_out = gh_buf_len(c->out);
        r->flags |= R_RESP_DONE | R_RESP_STARTED;
        return 0;
    }

    /* pick the origin first: a request head built for one origin stays valid for a
     * retry on another (Host is the client's unless upstream_host is set) */
    r->target = gh_balance_pick(w, r->wc, pc->upstream, 0);
    if (build_up_head(r, pr, host, host_len, path, path_len) != 0) {
        req_fail(r, 431, "request head too large to forward");
        return 0;
    }
    if (r->flags & R_EXPECT) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        struct iovec iov = {(void *)cont, sizeof(cont) - 1};
        ssize_t n = gh_xprt_sendv(&c->x, &iov, 1, iov.iov_len);
        if (n < 0) {
            gh_http_conn_close(c);
            return 0;
        }
        if ((size_t)n < iov.iov_len)
            gh_buf_stash(&c->out, &iov, 1, (size_t)n);
    }
    up_connect(r, 0);
    return 0;
}

/* ------------------------------------------------------------------ */
/* upstream connection                                                 */

static void
up_attach(struct gh_req *r, struct gh_upconn *u)
{
    r->u = u;
    u->req = r;
    u->server = r->target;
    u->x.io.cb = on_up_event;
    u->timer.cb = on_up_timeout;
    u->keepalive_ms = r->pc->upstream->keepalive_timeout_ms;
}

/*
 * Give the request an upstream connection: a pooled one unless fresh, else a
 * new connect. On immediate failure, tries the other servers, then fails the
 * request with 502. Returns 0 when a connection is attached (maybe still
 * connecting), -1 when the request was failed.
 */
static int
up_connect(struct gh_req *r, int fresh)
{
    struct gh_worker *w = r->c->w;
    const struct gh_upstream_conf *ups = r->pc->upstream;
    for (;;) {
        const struct gh_upstream_server *s = r->target;
        r->attempts++;
        if (!fresh) {
            struct gh_upconn *u = gh_pool_take(w, s->pool_slot);
            if (u != NULL) {
                up_attach(r, u);
                r->t_connect = gh_loop_now(w->loop);
                return 0;
            }
        }
        int fd = gh_sock_connect((const struct sockaddr *)&s->addr.ss, s->addr.len);
        if (fd >= 0) {
            struct gh_upconn *u = gh_freelist_get(&w->up_fl);
            if (u == NULL) {
                close(fd);
                req_fail(r, 503, "out of memory");
                return -1;
            }
            memset(u, 0, sizeof(*u));
            gh_xprt_init(&u->x, fd, on_up_event, 0);
            u->w = w;
            u->slot = s->pool_slot;
            u->flags = U_CONNECTING;
            /* connect completion is EPOLLOUT */
            if (gh_xprt_watch(w->loop, &u->x, EPOLLIN | EPOLLOUT | EPOLLRDHUP) != 0) {
                close(fd);
                gh_freelist_put(&w->up_fl, u);
                req_fail(r, 503, "cannot register upstream socket");
                return -1;
            }
            w->nupconns++;
            up_attach(r, u);
            gh_timer_after(w->loop, &u->timer, r->pc->connect_timeout_ms);
            return 0;
        }
        gh_log_warn("upstream %s: connect: %s", s->addr.text, strerror(-fd));
        gh_upconn_mark_down(w, s->pool_slot);
        if (r->attempts >= ups->n_servers) {
            req_fail(r, 502, "cannot connect to upstream");
            return -1;
        }
        r->target = gh_balance_pick(w, r->wc, ups, r->attempts);
        fresh = 0;
    }
}

/* The current upstream connection failed before anything of the response came.
 * Try again where that is safe, else fail with status. Returns 1 if retried. */
static int
up_retry_or_fail(struct gh_req *r, int status, const char *why, int connect_failure)
{
    struct gh_worker *w = r->c->w;
    struct gh_upconn *u = r->u;
    int was_reused = u != NULL && (u->flags & U_REUSED);
    const struct gh_upstream_conf *ups = r->pc->upstream;
    if (u != NULL) {
        u->req = NULL;
        gh_upconn_close(u);
        r->u = NULL;
    }
    int idempotent = r->method == GH_METHOD_GET || r->method == GH_METHOD_HEAD ||
                     r->method == GH_METHOD_OPTIONS || r->method == GH_METHOD_TRACE ||
                     r->method == GH_METHOD_PUT || r->method == GH_METHOD_DELETE;
    int nothing_sent = !(r->flags & R_BODY_SENT) && !(r->flags & R_GOT_BYTE);
    if (connect_failure) {
        /* nothing reached the origin: any request may go to the next server */
        gh_upconn_mark_down(w, r->target->pool_slot);
        if (r->attempts < ups->n_servers) {
            r->target = gh_balance_pick(w, r->wc, ups, r->attempts);
            r->uphead_sent = 0;
            r->flags &= ~(uint32_t)R_HEAD_SENT;
            return up_connect(r, 0) == 0;
        }
    } else if (was_reused && !(r->flags & R_RETRIED) && idempotent && nothing_sent &&
               r->uphead != NULL) {
        /* the keep-alive race: the origin closed an idle connection as we reused it */
        r->flags |= R_RETRIED;
        r->uphead_sent = 0;
        r->flags &= ~(uint32_t)R_HEAD_SENT;
        r->attempts--; /* not a new server */
        return up_connect(r, 1) == 0;
    }
    req_fail(r, status, why);
    return 0;
}

/*
 * After consuming `used` of the n input bytes at p: when they came from the
 * side's buffer *in, drop them from it (and give it back once empty); when they
 * came from the shared scratch, keep what was not used in *in. Returns 0 or
 * -ENOMEM.
 */
static int
keep_unused(struct gh_buf **in, int from_buf, const char *p, size_t n, size_t used)
{
    if (from_buf) {
        gh_buf_consume(*in, used);
        if (gh_buf_len(*in) == 0) {
            gh_buf_put(*in);
            *in = NULL;
        }
        return 0;
    }
    if (used == n)
        return 0;
    struct iovec rest = {(void *)(p + used), n - used};
    return gh_buf_stash(in, &rest, 1, 0);
}

/* ------------------------------------------------------------------ */
/* chunked relay, both directions                                     */

struct relay_out {
    struct iovec iov[MAX_IOV];
    char hex[MAX_IOV / 3 + 1][24];
    int cnt;
    int nhex;
    size_t total;
};

static inline void
out_add(struct relay_out *o, const void *p, size_t n)
{
    o->iov[o->cnt++] = (struct iovec){(void *)p, n};
    o->total += n;
}

/* Append one piece of body data, framed as a chunk when chunk_out. */
static void
out_chunk(struct relay_out *o, const char *data, size_t n, int chunk_out)
{
    if (!chunk_out) {
        out_add(o, data, n);
        return;
    }
    size_t hl = gh_h1w_chunk_size(o->hex[o->nhex], n);
    out_add(o, o->hex[o->nhex++], hl);
    out_add(o, data, n);
    out_add(o, "\r\n", 2);
}

/*
 * Decode chunked input p[*used..lim) and append its data to o, re-framed as
 * fresh chunks when chunk_out (else raw). Stops when the input runs out, when
 * o is nearly full, or at the end of the body (*done = 1; with chunk_out the
 * last-chunk is appended). *data_bytes grows by the data seen. Returns 0, or
 * GH_BAD with ch->reason set.
 */
static int
chunk_relay(struct gh_h1_chunked *ch, const char *p, size_t *used, size_t lim, int chunk_out,
            struct relay_out *o, uint64_t *data_bytes, int *done)
{
    while (*used < lim && o->cnt + 3 <= MAX_IOV) {
        size_t consumed = 0;
        const char *data;
        size_t dlen;
        int rc = gh_h1_chunked_decode(ch, p + *used, lim - *used, &consumed, &data, &dlen);
        *used += consumed;
        if (rc == GH_BAD)
            return GH_BAD;
        if (rc == GH_INCOMPLETE)
            break;
        if (rc == 0) {
            if (chunk_out)
                out_add(o, "0\r\n\r\n", 5);
            *done = 1;
            break;
        }
        *data_bytes += dlen;
        out_chunk(o, data, dlen, chunk_out);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* request direction: client -> upstream                              */

/* Write the head (and whatever body bytes are waiting). Returns 1 progress, 0 blocked, -1 ended. */
/*
 * Request body bytes reached the origin: first_byte_timeout counts from the
 * last of them, not from the head (an upload slower than the timeout is not
 * the origin failing to answer). A lazy timer push, no heap work.
 */
static inline void
body_moved(struct gh_req *r)
{
    if (!(r->flags & R_GOT_BYTE))
        gh_timer_after(r->c->w->loop, &r->u->timer, r->pc->first_byte_timeout_ms);
}

static int
req_send(struct gh_req *r)
{
    struct gh_upconn *u = r->u;
    struct gh_conn *c = r->c;
    int progress = 0;

    if (!(r->flags & R_HEAD_SENT)) {
        if (!(u->x.io.ready & GH_XPRT_CAN_WRITE))
            return 0;
        struct iovec iov = {r->uphead + r->uphead_sent, r->uphead_len - r->uphead_sent};
        ssize_t n = gh_xprt_sendv(&u->x, &iov, 1, iov.iov_len);
        if (n < 0) {
            up_retry_or_fail(r, 502, "upstream connection broken while sending the request", 0);
            return -1;
        }
        r->uphead_sent += (uint32_t)n;
        if (r->uphead_sent < r->uphead_len)
            return n > 0;
        r->flags |= R_HEAD_SENT;
        progress = 1;
        gh_timer_after(c->w->loop, &u->timer, r->pc->first_byte_timeout_ms);
    }
    if (r->upout != NULL) {
        size_t before = gh_buf_len(r->upout);
        int rc = gh_xprt_flush(&u->x, &r->upout);
        if (rc == GH_AGAIN) {
            if (gh_buf_len(r->upout) < before)
                body_moved(r);
            return progress;
        }
        if (rc < 0) {
            up_retry_or_fail(r, 502, "upstream connection broken while sending the body", 0);
            return -1;
        }
        progress = 1;
        body_moved(r);
    }
    if (r->flags & R_REQ_DONE)
        return progress;
    if (r->flags & R_RESP_DONE) {
        /* the origin answered before the body ended: stop forwarding it */
        return progress;
    }

    /* pump body bytes */
    const char *p;
    size_t n;
    int from_buf = c->in != NULL && gh_buf_len(c->in) > 0;
    if (r->reqpipe == NULL && !from_buf && r->req_body == BODY_CL &&
        r->req_remaining >= SPLICE_MIN && r->pc->splice && r->upout == NULL &&
        !(r->flags & R_UPGRADE))    /* after a 101 the tunnel forwards upout, not a pipe */
        r->reqpipe = gh_pipe_get(); /* none to be had: copy as below */
    if (r->reqpipe != NULL)
        return req_splice(r, progress);
    if (from_buf) {
        p = gh_buf_head(c->in);
        n = gh_buf_len(c->in);
    } else {
        if (c->x.io.ready & GH_XPRT_EOF) {
            req_fail(r, 400, "client closed the connection in the middle of the request body");
            return -1;
        }
        if (!(c->x.io.ready & GH_XPRT_CAN_READ))
            return progress;
        ssize_t rd = gh_xprt_recv(&c->x, c->w->scratch, GH_BUF_SIZE);
        if (rd == GH_AGAIN)
            return progress;
        if (rd <= 0) {
            req_fail(r, 400, "client closed the connection in the middle of the request body");
            return -1;
        }
        p = c->w->scratch;
        n = (size_t)rd;
    }

    struct relay_out o;
    o.cnt = o.nhex = 0;
    o.total = 0;
    size_t used = 0;
    if (r->req_body == BODY_CL) {
        size_t k = n < r->req_remaining ? n : (size_t)r->req_remaining;
        out_add(&o, p, k);
        used = k;
        r->req_remaining -= k;
        r->req_bytes += k;
        if (r->req_remaining == 0)
            r->flags |= R_REQ_DONE;
    } else {
        size_t lim = GH_MIN(n, (size_t)(GH_BUF_SIZE - CHUNK_RESERVE));
        int done = 0;
        if (chunk_relay(&r->req_chunk, p, &used, lim, 1, &o, &r->req_bytes, &done) != 0) {
            req_fail(r, 400, r->req_chunk.reason ? r->req_chunk.reason : "bad chunked body");
            return -1;
        }
        if (done)
            r->flags |= R_REQ_DONE;
        const struct gh_proxy_conf *pc = r->pc;
        if (pc->client_max_body_size && r->req_bytes > pc->client_max_body_size) {
            req_fail(r, 413, "chunked request body larger than client_max_body_size");
            return -1;
        }
    }

    if (o.total > 0) {
        ssize_t wn = gh_xprt_sendv(&u->x, o.iov, o.cnt, o.total);
        if (wn < 0) {
            /* The origin stopped reading; it may have answered already (413, 401...).
             * Stop sending, read what it said, and close both sides afterwards. */
            r->flags |= R_REQ_DONE;
            r->flags &= ~(uint32_t)R_UP_REUSABLE;
            c->flags |= C_CLOSE_AFTER;
            gh_xprt_set(&u->x, GH_XPRT_CAN_READ);
            gh_buf_put(r->upout);
            r->upout = NULL;
            return 1;
        }
        r->flags |= R_BODY_SENT;
        if (wn > 0)
            body_moved(r);
        if ((size_t)wn < o.total && gh_buf_stash(&r->upout, o.iov, o.cnt, (size_t)wn) != 0) {
            req_fail(r, 503, "out of memory");
            return -1;
        }
    }
    /* what was not used stays for later (pipelined requests, or bytes past the limit) */
    if (keep_unused(&c->in, from_buf, p, n, used) != 0) {
        req_fail(r, 503, "out of memory");
        return -1;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* response direction: upstream -> client                              */

/*
 * Build the client's response head from the origin's into w->hscratch.
 * Returns its length, or 0 when it does not fit.
 */
static size_t
build_client_head(struct gh_req *r, const struct gh_h1_response *rs)
{
    struct gh_conn *c = r->c;
    const struct gh_proxy_conf *pc = r->pc;
    struct gh_wr w = {c->w->hscratch, 0, GH_BUF_SIZE, 0};
    int upgrade = rs->status == 101;
    gh_h1w_status_line(&w, rs->status, rs->reason, rs->reason_len);
    const struct gh_h1_header *hs = rs->headers;
    uint32_t nh = rs->num_headers;
    int conn_other = (rs->flags & GH_H1_F_CONN_OTHER) != 0;
    int has_date = 0;
    struct prior p_via;
    p_via.n = 0;
    for (uint32_t i = 0; i < nh; i++) {
        const struct gh_h1_header *h = &hs[i];
        if (gh_field_resp_dropped(h->id))
            continue;
        switch (h->id) {
        case GH_HDR_UPGRADE:
            if (!upgrade)
                continue;
            break;
        case GH_HDR_DATE:
            has_date = 1;
            break;
        case GH_HDR_VIA:
            if (pc->via) {
                prior_add(&p_via, h);
                continue;
            }
            break;
        default:
            break;
        }
        if (hdr_passes(hs, nh, h, conn_other, pc->resp_rules, pc->n_resp_rules))
            gh_wr_field(&w, h->name, h->name_len, h->value, h->value_len);
    }
    if (!has_date)
        gh_h1w_date(&w, gh_loop_wall(c->w->loop));
    if (pc->via)
        wr_via(&w, &p_via, rs->version == 10);
    wr_rules(&w, pc->resp_rules, pc->n_resp_rules);
    /* framing */
    int bodyless_status = rs->status == 204 || rs->status == 304 || rs->status < 200;
    if (upgrade) {
        GH_WR_LIT(&w, "Connection: upgrade\r\n");
    } else {
        if (!bodyless_status || rs->status == 304) {
            if (rs->flags & GH_H1_F_HAS_CL)
                gh_h1w_content_length(&w, (uint64_t)rs->content_length);
            else if ((r->flags & R_CHUNK_OUT) ||
                     ((r->flags & R_HEAD_METHOD) && (rs->flags & GH_H1_F_CHUNKED) &&
                      !(r->flags & R_CLIENT_10))) {
                GH_WR_LIT(&w, "Transfer-Encoding: chunked\r\n");
            }
        }
        if (!(r->flags & R_KEEPALIVE))
            GH_WR_LIT(&w, "Connection: close\r\n");
        else if (r->flags & R_CLIENT_10)
            GH_WR_LIT(&w, "Connection: keep-alive\r\n");
    }
    GH_WR_LIT(&w, "\r\n");
    return w.overflow ? 0 : w.len;
}

/*
 * Forward an interim (1xx) response such as 103 Early Hints: RFC 9110 §15.2
 * has a proxy pass them on, except to HTTP/1.0 clients and except the
 * 100 Continue that Gatehouse already sent itself. Hop-by-hop fields are
 * dropped as in final responses. Returns 0, or -1 when the client is gone.
 */
static int
send_interim(struct gh_req *r, const struct gh_h1_response *rs)
{
    struct gh_conn *c = r->c;
    struct gh_wr w = {c->w->hscratch, 0, GH_BUF_SIZE, 0};
    gh_h1w_status_line(&w, rs->status, rs->reason, rs->reason_len);
    int conn_other = (rs->flags & GH_H1_F_CONN_OTHER) != 0;
    for (uint32_t i = 0; i < rs->num_headers; i++) {
        const struct gh_h1_header *h = &rs->headers[i];
        if (gh_field_resp_dropped(h->id) || h->id == GH_HDR_UPGRADE)
            continue;
        if (hdr_passes(rs->headers, rs->num_headers, h, conn_other, NULL, 0))
            gh_wr_field(&w, h->name, h->name_len, h->value, h->value_len);
    }
    GH_WR_LIT(&w, "\r\n");
    if (w.overflow)
        return 0; /* an interim response is advisory: drop one that does not fit */
    struct iovec iov = {w.p, w.len};
    ssize_t n = gh_xprt_sendv(&c->x, &iov, 1, w.len);
    if (n < 0)
        return -1;
    r->flags |= R_RESP_STARTED;
    if ((size_t)n < w.len && gh_buf_stash(&c->out, &iov, 1, (size_t)n) != 0)
        return -1;
    return 0;
}

/* The response head is complete: decide framing both ways and whether the
 * upstream connection may be reused. Returns the client head length or 0. */
static size_t
resp_head(struct gh_req *r, const struct gh_h1_response *rs)
{
    r->status = rs->status;
    r->flags |= R_HEAD_DONE;
    int reusable = rs->version == 11 ? !(rs->flags & GH_H1_F_CONN_CLOSE)
                                     : (rs->flags & GH_H1_F_CONN_KEEPALIVE) != 0;
    if ((r->flags & R_HEAD_METHOD) || rs->status == 204 || rs->status == 304 ||
        (rs->status >= 100 && rs->status < 200)) {
        r->resp_body = BODY_NONE;
    } else if (rs->flags & GH_H1_F_CHUNKED) {
        r->resp_body = BODY_CHUNKED;
        gh_h1_chunked_init(&r->resp_chunk);
    } else if (rs->flags & GH_H1_F_HAS_CL) {
        r->resp_body = BODY_CL;
        r->resp_remaining = (uint64_t)rs->content_length;
    } else {
        r->resp_body = BODY_CLOSE;
        reusable = 0;
    }
    if (r->resp_body == BODY_CHUNKED || r->resp_body == BODY_CLOSE) {
        if (!(r->flags & R_CLIENT_10))
            r->flags |= R_CHUNK_OUT;
        else
            r->flags &= ~(uint32_t)R_KEEPALIVE; /* 1.0 client: the close delimits the body */
    }
    if (reusable && (r->flags & R_REQ_DONE))
        r->flags |= R_UP_REUSABLE;
    if (!(r->flags & R_REQ_DONE) && rs->status != 101)
        r->flags &= ~(uint32_t)R_KEEPALIVE; /* answered before the body ended: say we close */
    if (r->c->flags & C_CLOSE_AFTER)
        r->flags &= ~(uint32_t)R_KEEPALIVE; /* draining (stop, or listener removed by reload) */
    return build_client_head(r, rs);
}

/*
 * The rest of a large Content-Length request body with splice(2): client
 * socket -> pipe -> origin socket, never more than the body (a pipelined
 * request behind it stays in the socket). Nothing more is read from the client
 * while the pipe holds bytes the origin has not taken. The request counts as
 * sent (R_REQ_DONE) once the pipe is empty. Returns as req_send.
 */
static int
req_splice(struct gh_req *r, int progress)
{
    struct gh_upconn *u = r->u;
    struct gh_conn *c = r->c;
    uint64_t in = 0, out = 0;
    int err = 0;
    enum gh_splice_rc st =
        gh_xprt_splice_pump(r->reqpipe, &r->req_remaining, &c->x, &u->x, &in, &out, &err);
    if (in > 0) {
        r->req_bytes += in;
        r->flags |= R_BODY_SENT; /* taken from the client: a retry could not resend it */
    }
    if (out > 0)
        body_moved(r);
    switch (st) {
    case GH_SPLICE_BLOCKED:
        return progress || in > 0 || out > 0;
    case GH_SPLICE_DONE:
        gh_pipe_put(r->reqpipe);
        r->reqpipe = NULL;
        r->flags |= R_REQ_DONE;
        return 1;
    case GH_SPLICE_OUT_ERR:
        /* The origin stopped reading; it may have answered already (413, 401...):
         * stop sending, read what it said, close both sides afterwards. */
        r->flags |= R_REQ_DONE;
        r->flags &= ~(uint32_t)R_UP_REUSABLE;
        c->flags |= C_CLOSE_AFTER;
        gh_xprt_set(&u->x, GH_XPRT_CAN_READ);
        gh_pipe_put(r->reqpipe); /* bytes left in it: closed */
        r->reqpipe = NULL;
        return 1;
    default:
        req_fail(r, 400, "client closed the connection in the middle of the request body");
        return -1;
    }
}

/* Pump response bytes to the client. Returns 1 progress, 0 blocked, -1 ended. */
static int
resp_pump(struct gh_req *r)
{
    struct gh_upconn *u = r->u;
    struct gh_conn *c = r->c;
    struct gh_worker *w = c->w;

    if (r->pipe != NULL)
        return resp_splice(r);
    const char *p;
    size_t n;
    int from_buf = u->in != NULL && gh_buf_len(u->in) > 0;
    int eof = 0;
    if (from_buf && (r->flags & (R_HEAD_DONE | R_PARSE_BUF))) {
        r->flags &= ~(uint32_t)R_PARSE_BUF;
        p = gh_buf_head(u->in);
        n = gh_buf_len(u->in);
    } else {
        if (!(u->x.io.ready & GH_XPRT_CAN_READ))
            return 0;
        char *dst;
        size_t room;
        if (from_buf) {
            room = gh_buf_reserve(u->in, GH_BUF_SIZE);
            dst = gh_buf_tail(u->in);
            if (room == 0) {
                req_fail(r, 502, "upstream response head too large");
                return -1;
            }
        } else {
            dst = w->scratch;
            room = GH_BUF_SIZE;
            /* a large body should go by splice: read the head with only the start of it */
            if (!(r->flags & R_HEAD_DONE) && r->pc->splice)
                room = SPLICE_HEAD_READ;
        }
        ssize_t rd = gh_xprt_recv(&u->x, dst, room);
        if (rd == GH_AGAIN)
            return 0;
        if (rd < 0 || (rd == 0 && !(r->flags & R_HEAD_DONE))) {
            if (!(r->flags & R_GOT_BYTE) && !from_buf) {
                up_retry_or_fail(r, 502,
                                 rd == 0 ? "upstream closed the connection before responding"
                                         : "upstream connection reset before responding",
                                 0);
            } else {
                req_fail(r, 502, "upstream closed the connection in the middle of the response");
            }
            return -1;
        }
        if (rd == 0) {
            eof = 1;
            p = NULL;
            n = 0;
        } else {
            if (!(r->flags & R_GOT_BYTE)) {
                r->flags |= R_GOT_BYTE;
                r->t_first_byte = gh_loop_now(w->loop);
                /* no retry from here on: the head kept for it is no longer needed */
                uphead_free(r);
            }
            if (from_buf) {
                gh_buf_commit(u->in, (size_t)rd);
                p = gh_buf_head(u->in);
                n = gh_buf_len(u->in);
            } else {
                p = dst;
                n = (size_t)rd;
            }
        }
        gh_timer_after(w->loop, &u->timer, r->pc->read_timeout_ms);
    }

    size_t used = 0;
    size_t hlen = 0;
    if (!(r->flags & R_HEAD_DONE)) {
        struct gh_h1_header hdrs[MAX_HEADERS];
        for (;;) {
            struct gh_h1_response rs;
            rs.headers = hdrs;
            rs.max_headers = MAX_HEADERS;
            struct gh_h1_limits lim = {0, 16384, MAX_HEADERS, GH_BUF_SIZE};
            int rc = gh_h1_parse_response(p + used, n - used, &rs, &lim);
            if (rc == GH_INCOMPLETE) {
                if (keep_unused(&u->in, from_buf, p, n, used) != 0) {
                    req_fail(r, 503, "out of memory");
                    return -1;
                }
                return 1;
            }
            if (rc < 0) {
                req_fail(r, 502, rs.err.reason ? rs.err.reason : "malformed upstream response");
                return -1;
            }
            if (rs.status >= 100 && rs.status < 200 && rs.status != 101) {
                used += (size_t)rc;
                if (rs.status == 100 || (r->flags & R_CLIENT_10))
                    continue; /* our own 100 went out already; 1.0 clients get no 1xx */
                if (send_interim(r, &rs) != 0) {
                    req_log(r);
                    gh_http_conn_close(c);
                    return -1;
                }
                if (c->out == NULL)
                    continue;
                /* the client has not taken it all: the rest waits in u->in */
                r->flags |= R_PARSE_BUF;
                if (keep_unused(&u->in, from_buf, p, n, used) != 0) {
                    gh_http_conn_close(c);
                    return -1;
                }
                return 1;
            }
            if (rs.status == 101 && !(r->flags & R_UPGRADE)) {
                req_fail(r, 502, "upstream switched protocols without being asked");
                return -1;
            }
            used += (size_t)rc;
            hlen = resp_head(r, &rs);
            if (hlen == 0) {
                req_fail(r, 502, "upstream response head too large to forward");
                return -1;
            }
            break;
        }
        if (r->status == 101) {
            /* tunnel: bytes after the head belong to the new protocol; they stay in
             * u->in and the tunnel pump forwards them */
            r->resp_body = BODY_NONE;
            r->flags &= ~(uint32_t)(R_CHUNK_OUT | R_UP_REUSABLE);
        }
    }

    /* body */
    struct relay_out o;
    o.cnt = o.nhex = 0;
    o.total = 0;
    if (hlen > 0)
        out_add(&o, w->hscratch, hlen);
    size_t room = GH_BUF_SIZE - hlen;
    int chunk_out = (r->flags & R_CHUNK_OUT) != 0;
    int done = 0;
    switch (r->resp_body) {
    case BODY_NONE:
        done = 1;
        break;
    case BODY_CL: {
        size_t k = GH_MIN(n - used, room);
        if (k > r->resp_remaining)
            k = (size_t)r->resp_remaining;
        if (k > 0)
            out_add(&o, p + used, k);
        used += k;
        r->resp_remaining -= k;
        if (r->resp_remaining == 0)
            done = 1;
        else if (eof) {
            req_fail(r, 502, "upstream closed the connection in the middle of the response");
            return -1;
        }
        break;
    }
    case BODY_CHUNKED: {
        /* leave room for the chunk-size lines the re-framing adds */
        size_t lim =
            room < CHUNK_RESERVE * 2 ? used : used + GH_MIN(n - used, room - CHUNK_RESERVE);
        uint64_t seen = 0;
        if (chunk_relay(&r->resp_chunk, p, &used, lim, chunk_out, &o, &seen, &done) != 0) {
            req_fail(r, 502, r->resp_chunk.reason ? r->resp_chunk.reason : "bad chunked response");
            return -1;
        }
        if (eof && !done) {
            req_fail(r, 502, "upstream closed the connection in the middle of the response");
            return -1;
        }
        break;
    }
    case BODY_CLOSE: {
        size_t k = room > 32 ? GH_MIN(n - used, room - (chunk_out ? 32 : 0)) : 0;
        if (k > 0)
            out_chunk(&o, p + used, k, chunk_out);
        used += k;
        if (eof) {
            if (chunk_out)
                out_add(&o, "0\r\n\r\n", 5);
            done = 1;
        }
        break;
    }
    }

    if (hlen > 0 && o.cnt == 2 && o.iov[1].iov_len <= 16384) {
        /* head and a small body in one piece: write(2) instead of a two-part
         * writev(2) is cheaper in the kernel than the copy is here */
        memcpy(w->hscratch + hlen, o.iov[1].iov_base, o.iov[1].iov_len);
        o.iov[0].iov_len += o.iov[1].iov_len;
        o.cnt = 1;
    }
    if (o.total > 0) {
        ssize_t wn = gh_xprt_sendv(&c->x, o.iov, o.cnt, o.total);
        if (wn < 0) {
            gh_log_info("client closed the connection during the response: %s", strerror((int)-wn));
            req_log(r);
            gh_http_conn_close(c);
            return -1;
        }
        r->flags |= R_RESP_STARTED;
        r->bytes_out += o.total;
        if ((size_t)wn < o.total && gh_buf_stash(&c->out, o.iov, o.cnt, (size_t)wn) != 0) {
            gh_http_conn_close(c);
            return -1;
        }
    }
    /* keep what was not used */
    if (keep_unused(&u->in, from_buf, p, n, used) != 0) {
        gh_http_conn_close(c);
        return -1;
    }
    if (done) {
        r->flags |= R_RESP_DONE;
        if (u->in != NULL)
            r->flags &= ~(uint32_t)R_UP_REUSABLE; /* the origin sent more than it framed */
    } else if (r->resp_body == BODY_CL && r->resp_remaining >= SPLICE_MIN && r->pc->splice &&
               c->out == NULL && u->in == NULL && !eof) {
        /* the rest of a large Content-Length body passes unchanged: move it
         * socket -> pipe -> socket without copying it through user space (when
         * no pipe can be had, the copy goes on as before) */
        r->pipe = gh_pipe_get();
    }
    return 1;
}

/*
 * Pump the rest of a Content-Length body with splice(2): origin socket ->
 * pipe -> client socket. Nothing more is read from the origin while the pipe
 * holds bytes the client has not taken (backpressure, as with c->out), and
 * never more than the body still owed. Returns 1 progress, 0 blocked, -1 ended.
 */
static int
resp_splice(struct gh_req *r)
{
    struct gh_upconn *u = r->u;
    struct gh_conn *c = r->c;
    uint64_t in = 0, out = 0;
    int err = 0;
    enum gh_splice_rc st =
        gh_xprt_splice_pump(r->pipe, &r->resp_remaining, &u->x, &c->x, &in, &out, &err);
    r->bytes_out += out;
    if (in > 0)
        gh_timer_after(c->w->loop, &u->timer, r->pc->read_timeout_ms);
    switch (st) {
    case GH_SPLICE_BLOCKED:
        return in > 0 || out > 0;
    case GH_SPLICE_DONE:
        gh_pipe_put(r->pipe);
        r->pipe = NULL;
        r->flags |= R_RESP_DONE; /* req_finish checks the socket for bytes past the body */
        return 1;
    case GH_SPLICE_OUT_ERR:
        gh_log_info("client closed the connection during the response: %s", strerror(err));
        req_log(r);
        gh_http_conn_close(c);
        return -1;
    default:
        req_fail(r, 502, "upstream closed the connection in the middle of the response");
        return -1;
    }
}

/* ------------------------------------------------------------------ */
/* tunnel (after 101 Switching Protocols)                              */

/* Move bytes one way: src's pending input or a fresh read, into dst. Returns 1 progress, 0 blocked.
 */
static int
tunnel_pump(struct gh_worker *w, struct gh_xprt *src, struct gh_buf **sin, struct gh_xprt *dst,
            struct gh_buf **dout, int *err)
{
    int rc = gh_xprt_flush(dst, dout);
    if (rc == GH_AGAIN)
        return 0;
    if (rc < 0) {
        *err = 1;
        return 0;
    }
    const char *p;
    size_t n;
    if (*sin != NULL && gh_buf_len(*sin) > 0) {
        p = gh_buf_head(*sin);
        n = gh_buf_len(*sin);
    } else {
        if (!gh_xprt_is(src, GH_XPRT_CAN_READ) || gh_xprt_is(src, GH_XPRT_EOF))
            return 0;
        ssize_t rd = gh_xprt_recv(src, w->scratch, GH_BUF_SIZE);
        if (rd == GH_AGAIN)
            return 0;
        if (rd < 0) {
            *err = 1;
            return 0;
        }
        if (rd == 0) {
            gh_xprt_shutdown(dst);
            return 1;
        }
        p = w->scratch;
        n = (size_t)rd;
    }
    struct iovec iov = {(void *)p, n};
    ssize_t wn = gh_xprt_sendv(dst, &iov, 1, n);
    if (wn < 0) {
        *err = 1;
        return 0;
    }
    if (*sin != NULL && gh_buf_len(*sin) > 0) {
        gh_buf_consume(*sin, (size_t)wn);
    } else if ((size_t)wn < n) {
        gh_buf_stash(dout, &iov, 1, (size_t)wn);
    }
    if (*sin != NULL && gh_buf_len(*sin) == 0) {
        gh_buf_put(*sin);
        *sin = NULL;
    }
    return 1;
}

static void
tunnel_advance(struct gh_conn *c)
{
    struct gh_req *r = c->req;
    struct gh_upconn *u = r->u;
    struct gh_worker *w = c->w;
    int err = 0, progress;
    do {
        progress = tunnel_pump(w, &c->x, &c->in, &u->x, &r->upout, &err);
        progress |= tunnel_pump(w, &u->x, &u->in, &c->x, &c->out, &err);
    } while (progress && !err);
    if (err || ((c->x.io.ready & GH_XPRT_EOF) && (u->x.io.ready & GH_XPRT_EOF) && c->out == NULL &&
                r->upout == NULL)) {
        req_log(r);
        gh_http_conn_close(c);
        return;
    }
    gh_timer_after(w->loop, &c->timer, r->pc->tunnel_idle_timeout_ms);
}

/* ------------------------------------------------------------------ */
/* the request state machine                                          */

static void
req_arm_timers(struct gh_req *r)
{
    struct gh_conn *c = r->c;
    struct gh_loop *l = c->w->loop;
    if (c->out != NULL || (r->pipe != NULL && r->pipe->len > 0)) {
        /* send_timeout runs from the last write that reached the client: other
         * events (the client sending bytes while not reading) must not renew it */
        uint64_t written = r->bytes_out - (c->out != NULL ? gh_buf_len(c->out) : 0);
        if (written != r->sent_mark) {
            r->sent_mark = written;
            gh_timer_after(l, &c->timer, r->pc->send_timeout_ms);
        }
    } else if (!(r->flags & R_REQ_DONE) && !(r->flags & R_RESP_DONE) && r->upout == NULL &&
               (r->reqpipe == NULL || r->reqpipe->len == 0) && (r->flags & R_HEAD_SENT))
        gh_timer_after(l, &c->timer, r->pc->client_body_timeout_ms);
    /* otherwise the timer keeps its older deadline; on_client_timeout re-checks
     * what it guards, so no heap work is spent per request here */
}

/*
 * Move the request as far as it goes. Returns GH_AGAIN when blocked, 0 when the
 * request ended (the connection may have moved on or be closed).
 */
static int
req_advance(struct gh_req *r)
{
    struct gh_conn *c = r->c;
    for (;;) {
        int progress = 0;
        struct gh_upconn *u = r->u;
        if (u != NULL && !(u->flags & U_CONNECTING) && !(r->flags & R_RESP_DONE)) {
            int rc = req_send(r);
            if (rc < 0)
                return 0;
            progress |= rc;
        }
        if (c->flags & C_DEAD)
            return 0;
        if (c->out != NULL) {
            int rc = gh_xprt_flush(&c->x, &c->out);
            if (rc < 0 && rc != GH_AGAIN) {
                req_log(r);
                gh_http_conn_close(c);
                return 0;
            }
            if (rc == 0)
                progress = 1;
        }
        if (c->out == NULL && r->u != NULL && !(r->u->flags & U_CONNECTING) &&
            (r->flags & R_HEAD_SENT) && !(r->flags & R_RESP_DONE)) {
            int rc = resp_pump(r);
            if (rc < 0 || (c->flags & C_DEAD))
                return 0;
            progress |= rc;
        }
        if ((r->flags & R_RESP_DONE) && c->out == NULL) {
            if (r->status == 101 && r->u != NULL) {
                c->state = CS_TUNNEL;
                gh_timer_stop(c->w->loop, &r->u->timer);
                return 0;
            }
            req_finish(r);
            return 0;
        }
        if (!progress) {
            req_arm_timers(r);
            return GH_AGAIN;
        }
    }
}

/* The response is fully written: log, recycle the upstream connection, and
 * either wait for the next request or close. */
static void
req_finish(struct gh_req *r)
{
    struct gh_conn *c = r->c;
    struct gh_worker *w = c->w;
    req_log(r);
    int keep = (r->flags & R_KEEPALIVE) && !(c->flags & C_CLOSE_AFTER) && (r->flags & R_REQ_DONE);
    struct gh_upconn *u = r->u;
    if (u != NULL) {
        r->u = NULL;
        u->req = NULL;
        u->nreq++;
        if ((r->flags & R_UP_REUSABLE) && (r->flags & R_REQ_DONE) && r->upout == NULL &&
            !(u->x.io.ready & GH_XPRT_EOF) && gh_xprt_drained(&u->x)) {
            gh_pool_put(w, u, r->pc->upstream->keepalive);
        } else {
            gh_upconn_close(u);
        }
    }
    uint32_t ka_ms = r->srv ? r->srv->keepalive_timeout_ms : 0;
    int req_done = (r->flags & R_REQ_DONE) != 0;
    req_free(r);
    c->nreq++;
    if (!keep) {
        /* linger only when the client may still be sending: a plain close with
         * unread input would reset the connection under the response */
        if ((c->in != NULL && gh_buf_len(c->in) > 0) || !req_done)
            conn_linger(c);
        else
            gh_http_conn_close(c);
        return;
    }
    c->state = CS_IDLE;
    gh_timer_after(w->loop, &c->timer, ka_ms);
}

/* ------------------------------------------------------------------ */
/* reading request heads                                              */

static void
head_error(struct gh_conn *c, const struct gh_h1_request *pr, const char *p, size_t n)
{
    char ip[64];
    if (conn_ip_str(c, ip, sizeof(ip)) == 0)
        strcpy(ip, "-");
    int status = pr->err.status ? pr->err.status : 400;
    gh_log_info("client %s: %d: %s (at byte %u)", ip, status,
                pr->err.reason ? pr->err.reason : "bad request", pr->err.offset);
    gh_buf_put(c->out);
    c->out = NULL;
    if (conn_send_error(c, status, NULL, 0) != 0) {
        gh_http_conn_close(c);
        return;
    }
    log_rejected(c, status, p, n);
    c->state = CS_REQ; /* without a request: flush, then close */
}

static struct gh_h1_limits
conn_limits(struct gh_conn *c)
{
    const struct gh_config *cfg = c->w->cur->cfg;
    const struct gh_server_conf *s = NULL;
    if (c->ls->idx >= 0 && (uint32_t)c->ls->idx < cfg->n_listeners)
        s = cfg->listeners[c->ls->idx].default_server;
    struct gh_h1_limits lim = {8192, 8192, 100, 32768};
    if (s != NULL) {
        lim.max_request_line = s->max_request_line;
        lim.max_header_line = s->max_header_line;
        lim.max_headers = s->max_headers < MAX_HEADERS ? s->max_headers : MAX_HEADERS;
        lim.max_head_size = s->max_head_size < GH_BUF_SIZE ? s->max_head_size : GH_BUF_SIZE;
    }
    return lim;
}

/* Append what the socket has to c->in. Returns > 0 bytes read, GH_AGAIN, or 0
 * when the connection was closed (EOF or error) or the head cannot fit. */
static ssize_t
head_read_more(struct gh_conn *c)
{
    size_t room = gh_buf_reserve(c->in, GH_BUF_SIZE);
    if (room == 0)
        return 0;
    ssize_t rd = gh_xprt_recv(&c->x, gh_buf_tail(c->in), room);
    if (rd == GH_AGAIN)
        return GH_AGAIN;
    if (rd <= 0)
        return 0;
    gh_buf_commit(c->in, (size_t)rd);
    return rd;
}

/*
 * Read and parse a request head; start the request when it is complete.
 * Returns GH_AGAIN when waiting for bytes, 0 when the state changed.
 *
 * The parser re-reads an incomplete head from its start, so a head is parsed
 * again only when bytes that could end a line have arrived (c->scanned marks
 * what the last parse saw): a client dripping a byte at a time costs one parse
 * per line, not one per byte.
 */
static int
conn_read_head(struct gh_conn *c)
{
    struct gh_worker *w = c->w;
    struct gh_h1_header hdrs[MAX_HEADERS];
    struct gh_h1_limits lim = conn_limits(c);
    for (;;) {
        const char *p;
        size_t n;
        int from_buf = c->in != NULL && gh_buf_len(c->in) > 0;
        if (from_buf) {
            p = gh_buf_head(c->in);
            n = gh_buf_len(c->in);
            if (c->scanned > 0 && c->scanned <= n && n <= lim.max_head_size &&
                memchr(p + c->scanned, '\n', n - c->scanned) == NULL) {
                /* nothing new that could complete a line */
                if (c->x.io.ready & GH_XPRT_EOF) {
                    gh_http_conn_close(c);
                    return 0;
                }
                if (!(c->x.io.ready & GH_XPRT_CAN_READ))
                    return GH_AGAIN;
                ssize_t rd = head_read_more(c);
                if (rd == GH_AGAIN)
                    return GH_AGAIN;
                if (rd == 0 && gh_buf_reserve(c->in, 1) > 0) {
                    gh_http_conn_close(c);
                    return 0;
                }
                if (rd == 0)
                    c->scanned = 0; /* buffer full: let the parser give its verdict */
                continue;
            }
        } else {
            if (!(c->x.io.ready & GH_XPRT_CAN_READ)) {
                if (c->x.io.ready & GH_XPRT_EOF) {
                    gh_http_conn_close(c);
                    return 0;
                }
                return GH_AGAIN;
            }
            ssize_t rd = gh_xprt_recv(&c->x, w->scratch, GH_BUF_SIZE);
            if (rd == GH_AGAIN)
                return GH_AGAIN;
            if (rd <= 0) {
                gh_http_conn_close(c);
                return 0;
            }
            p = w->scratch;
            n = (size_t)rd;
        }
        if (c->state == CS_IDLE) {
            c->state = CS_HEAD;
            c->t_first = gh_loop_now(w->loop);
            const struct gh_config *cfg = w->cur->cfg;
            uint32_t ms = 10000;
            if (c->ls->idx >= 0 && (uint32_t)c->ls->idx < cfg->n_listeners)
                ms = cfg->listeners[c->ls->idx].default_server->client_header_timeout_ms;
            conn_set_timer(c, ms);
        }
        struct gh_h1_request pr;
        pr.headers = hdrs;
        pr.max_headers = lim.max_headers;
        int rc = gh_h1_parse_request(p, n, &pr, &lim);
        if (rc == GH_INCOMPLETE) {
            if (!from_buf) {
                struct iovec iov = {(void *)p, n};
                if (gh_buf_stash(&c->in, &iov, 1, 0) != 0) {
                    gh_http_conn_close(c);
                    return 0;
                }
            }
            if (gh_buf_len(c->in) >= GH_BUF_SIZE) {
                pr.err.status = 431;
                pr.err.reason = "request head larger than the buffer";
                pr.err.offset = (uint32_t)gh_buf_len(c->in);
                head_error(c, &pr, gh_buf_head(c->in), gh_buf_len(c->in));
                return 0;
            }
            c->scanned = (uint32_t)gh_buf_len(c->in);
            continue;
        }
        c->scanned = 0;
        if (rc < 0) {
            head_error(c, &pr, p, n);
            return 0;
        }
        /* complete head of rc bytes at p */
        size_t hlen = (size_t)rc;
        if (!from_buf && hlen < n) {
            /* body bytes or pipelined requests behind the head: keep them */
            struct iovec iov = {(void *)(p + hlen), n - hlen};
            if (gh_buf_stash(&c->in, &iov, 1, 0) != 0) {
                gh_http_conn_close(c);
                return 0;
            }
            req_start(c, &pr);
        } else {
            req_start(c, &pr);
            if (from_buf && c->in != NULL) {
                /* the head's slices were used by req_start; now drop the head */
                gh_buf_consume(c->in, hlen);
                if (gh_buf_len(c->in) == 0) {
                    gh_buf_put(c->in);
                    c->in = NULL;
                }
            }
        }
        return 0;
    }
}

/* ------------------------------------------------------------------ */
/* connection driver                                                   */

static void
conn_advance(struct gh_conn *c)
{
    /* Each turn either waits (returns) or moves a request forward; pipelined
     * requests are bounded by what the client sends and by its reading of our
     * answers (c->out stops us), so the loop needs no iteration cap. */
    for (;;) {
        if (c->flags & C_DEAD)
            return;
        switch (c->state) {
        case CS_IDLE:
        case CS_HEAD:
            if (c->flags & C_CLOSE_AFTER && c->state == CS_IDLE &&
                (c->in == NULL || gh_buf_len(c->in) == 0)) {
                gh_http_conn_close(c);
                return;
            }
            if (conn_read_head(c) == GH_AGAIN)
                return;
            break;
        case CS_REQ:
            if (c->req == NULL) {
                /* a generated answer without a request object: flush it, then close */
                int rc = gh_xprt_flush(&c->x, &c->out);
                if (rc == GH_AGAIN) {
                    gh_timer_after(c->w->loop, &c->timer, 10000);
                    return;
                }
                if (rc < 0) {
                    gh_http_conn_close(c);
                    return;
                }
                conn_linger(c);
                return;
            }
            if (req_advance(c->req) == GH_AGAIN)
                return;
            break;
        case CS_TUNNEL:
            tunnel_advance(c);
            return;
        case CS_LINGER: {
            for (int i = 0; i < 16; i++) {
                if (!(c->x.io.ready & GH_XPRT_CAN_READ))
                    return;
                ssize_t rd = gh_xprt_recv(&c->x, c->w->scratch, GH_BUF_SIZE);
                if (rd == GH_AGAIN)
                    return;
                if (rd <= 0)
                    break;
            }
            gh_http_conn_close(c);
            return;
        }
        }
    }
}

/*
 * After a turn of work: a side whose last write fell short needs EPOLLOUT to
 * learn when to go on. Registered once per connection, the first time (the
 * common small response never needs it, so never costs the wake-ups).
 */
static void
arm_writes(struct gh_conn *c)
{
    if (c->flags & C_DEAD)
        return;
    struct gh_loop *l = c->w->loop;
    gh_xprt_watch_writes(l, &c->x);
    struct gh_upconn *u = c->req != NULL ? c->req->u : NULL;
    if (u != NULL && !(u->flags & U_DEAD))
        gh_xprt_watch_writes(l, &u->x);
}

static void
on_client_event(struct gh_io *io, uint32_t events)
{
    struct gh_conn *c = gh_container_of(io, struct gh_conn, x.io);
    if (c->flags & C_DEAD)
        return;
    gh_xprt_on_events(&c->x, events);
    if ((events & (EPOLLHUP | EPOLLERR)) && c->state == CS_REQ && c->req != NULL &&
        (c->req->flags & R_REQ_DONE) && !(c->req->flags & R_RESP_STARTED)) {
        /* The client reset (or fully closed) while its request waits on the origin:
         * nobody will read the answer, so free the origin connection now rather than
         * after first_byte_timeout, as nginx does by default (a plain FIN is still
         * served: that is EPOLLRDHUP alone). */
        struct gh_req *r = c->req;
        r->status = 499;
        req_log(r);
        gh_http_conn_close(c);
        return;
    }
    conn_advance(c);
    arm_writes(c);
}

static void
on_client_timeout(struct gh_timer *t)
{
    struct gh_conn *c = gh_container_of(t, struct gh_conn, timer);
    if (c->flags & C_DEAD)
        return;
    switch (c->state) {
    case CS_IDLE:
    case CS_LINGER:
        gh_http_conn_close(c);
        return;
    case CS_HEAD: {
        char ip[64];
        if (conn_ip_str(c, ip, sizeof(ip)) == 0)
            strcpy(ip, "-");
        gh_log_info("client %s: 408: request head not received in time", ip);
        if (conn_send_error(c, 408, NULL, 0) != 0) {
            gh_http_conn_close(c);
            return;
        }
        log_rejected(c, 408, c->in ? gh_buf_head(c->in) : NULL, c->in ? gh_buf_len(c->in) : 0);
        gh_buf_put(c->in);
        c->in = NULL;
        c->state = CS_REQ;
        conn_advance(c);
        arm_writes(c);
        return;
    }
    case CS_REQ: {
        struct gh_req *r = c->req;
        if (r == NULL || c->out != NULL || (r->pipe != NULL && r->pipe->len > 0)) {
            /* send timeout: the client stopped reading. Reset rather than close:
             * a close would leave the kernel holding (and retrying) up to a
             * socket buffer of response for a peer that does not read it, the
             * slow-reader attack (nginx: reset_timedout_connection) */
            char ip[64];
            if (conn_ip_str(c, ip, sizeof(ip)) == 0)
                strcpy(ip, "-");
            gh_log_info("client %s: response not read within send_timeout: connection reset", ip);
            if (r != NULL)
                req_log(r);
            gh_xprt_reset(&c->x);
            gh_http_conn_close(c);
            return;
        }
        if (!(r->flags & R_REQ_DONE) && !(r->flags & R_RESP_DONE) && r->upout == NULL &&
            (r->reqpipe == NULL || r->reqpipe->len == 0) && (r->flags & R_HEAD_SENT)) {
            req_fail(r, 408, "request body not received in time");
            conn_advance(c);
            arm_writes(c);
            return;
        }
        /* waiting for the origin, whose own timers guard this phase */
        gh_timer_after(c->w->loop, &c->timer, r->pc->client_body_timeout_ms);
        return;
    }
    case CS_TUNNEL:
        if (c->req != NULL)
            req_log(c->req);
        gh_http_conn_close(c);
        return;
    }
}

static void
on_up_event(struct gh_io *io, uint32_t events)
{
    struct gh_upconn *u = gh_container_of(io, struct gh_upconn, x.io);
    if (u->flags & U_DEAD || u->req == NULL)
        return;
    struct gh_req *r = u->req;
    struct gh_conn *c = r->c;
    gh_xprt_on_events(&u->x, events);
    if (u->flags & U_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
            return;
        int err = gh_xprt_connect_error(&u->x);
        if (err != 0) {
            gh_log_warn("upstream %s: connect: %s", r->target->addr.text, strerror(err));
            up_retry_or_fail(r, 502, "cannot connect to upstream", 1);
            conn_advance(c);
            arm_writes(c);
            return;
        }
        u->flags &= ~(uint16_t)U_CONNECTING;
        gh_xprt_set(&u->x, GH_XPRT_CAN_WRITE);
        r->t_connect = gh_loop_now(c->w->loop);
        gh_timer_after(c->w->loop, &u->timer, r->pc->first_byte_timeout_ms);
    }
    conn_advance(c);
    arm_writes(c);
}

static void
on_up_timeout(struct gh_timer *t)
{
    struct gh_upconn *u = gh_container_of(t, struct gh_upconn, timer);
    if (u->flags & U_DEAD || u->req == NULL)
        return;
    struct gh_req *r = u->req;
    struct gh_conn *c = r->c;
    if (u->flags & U_CONNECTING) {
        gh_log_warn("upstream %s: connect timed out", r->target->addr.text);
        const struct gh_upstream_conf *ups = r->pc->upstream;
        if (r->attempts < ups->n_servers)
            up_retry_or_fail(r, 504, "upstream connect timed out", 1);
        else {
            gh_upconn_mark_down(c->w, r->target->pool_slot);
            req_fail(r, 504, "upstream connect timed out");
        }
    } else if (c->out != NULL || (r->pipe != NULL && r->pipe->len > 0)) {
        /* Not the origin's fault: it is not being read because the client is
         * slow to take what came before (send_timeout guards that side). The
         * read timeout counts only while Gatehouse waits for the origin. */
        gh_timer_after(c->w->loop, &u->timer, r->pc->read_timeout_ms);
        return;
    } else if (!(r->flags & R_GOT_BYTE)) {
        req_fail(r, 504, "upstream did not answer in time");
    } else {
        req_fail(r, 504, "upstream stalled in the middle of the response");
    }
    conn_advance(c);
    arm_writes(c);
}
