/*
 * respond.c - answers generated here, a source of their own: `return`
 * (bodies and redirects) and the error pages of failures. The head carries
 * Server, Date, Location, Content-Type and Content-Length (in that order, all
 * subject to response_header rules but the length), then the rules.
 */
#include <stdio.h>
#include <string.h>

#include "http/h1_write.h"
#include "proxy/exchange.h"
#include "proxy/fwd_head.h"
#include "proxy/hide.h"
#include "proxy/respond.h"
#include "proxy/vars.h"
#include "proxy/worker.h"

static int gen_recv(struct gh_exchange *ex);

static const struct gh_source_ops src_generated = {
    .name = "generated",
    .recv = gen_recv,
};

/* The generated answer's own buffer, emptied. NULL when out of memory. */
static struct gh_buf *
gen_buf(struct gh_exchange *ex)
{
    if (ex->gen_buf == NULL && (ex->gen_buf = gh_buf_get()) == NULL)
        return NULL;
    ex->gen_buf->start = ex->gen_buf->end = 0;
    return ex->gen_buf;
}

static void
respond_buf(struct gh_exchange *ex, int status, size_t len, bool location)
{
    struct gh_buf *b = ex->gen_buf;
    gh_buf_commit(b, len);
    struct gh_gen g = {0};
    if (location) {
        g.location = gh_buf_head(b);
        g.location_len = (uint32_t)len;
    } else {
        g.body = gh_buf_head(b);
        g.body_len = (uint32_t)len;
    }
    gh_respond(ex, status, &g);
}

int
gh_respond_tmpl(struct gh_exchange *ex, int status, const struct gh_tmpl *t, bool location)
{
    struct gh_buf *b = gen_buf(ex);
    if (b == NULL) {
        ex->fail_reason = "out of memory";
        return 503;
    }
    struct gh_wr w = {gh_buf_tail(b), 0, GH_BUF_SIZE, 0};
    /* a URL is taken as it comes and refused with a control byte ($uri decodes %0D%0A), which
     * as a space would be a broken Location; a body's control bytes become spaces */
    gh_vars_expand(t, ex, &w, location ? GH_ESC_RAW : GH_ESC_NONE, NULL);
    if (w.overflow) {
        ex->fail_reason = "the 'return' text is longer than a buffer once its variables are in";
        return 500;
    }
    for (size_t i = 0; location && i < w.len; i++) {
        unsigned char c = (unsigned char)w.p[i];
        if (c < 0x20 || c == 0x7f) {
            ex->fail_reason = "the 'return' URL has a control byte once its variables are in";
            return 500;
        }
    }
    respond_buf(ex, status, w.len, location);
    return GH_OK;
}

int
gh_respond_copy(struct gh_exchange *ex, int status, const char *text, size_t len, bool location)
{
    struct gh_buf *b = gen_buf(ex);
    if (b == NULL) {
        ex->fail_reason = "out of memory";
        return 503;
    }
    if (len > GH_BUF_SIZE) {
        ex->fail_reason = "a redirect's Location is longer than a buffer";
        return 500;
    }
    memcpy(gh_buf_tail(b), text, len);
    respond_buf(ex, status, len, location);
    return GH_OK;
}

void
gh_respond(struct gh_exchange *ex, int status, const struct gh_gen *g)
{
    ex->src = &src_generated;
    ex->gen = *g;
    ex->gen.body_sent = 0;
    ex->status = (uint16_t)status;
    gh_exchange_set_state(ex, GH_EX_RUNNING);
}

#define FIELD(n, id_, v, vl) ((struct gh_h1_header){(n), (v), sizeof(n) - 1, (uint32_t)(vl), (id_)})

/* Room for the fields of a generated head, and their values. */
struct gen_head {
    struct gh_h1_header f[8];
    char clen[24];
    char retry[12];
};

/* The head of a generated answer (fields point into gh). */
static void
gen_resp(struct gh_resp *resp, struct gen_head *gh, int status, const struct gh_gen *g,
         const char *ctype, size_t body_len, int64_t wall, bool tokens)
{
    const char *location = g != NULL ? g->location : NULL;
    size_t location_len = g != NULL ? g->location_len : 0;
    unsigned retry_after = g != NULL ? g->retry_after : 0;
    int bodyless = status < 200 || status == 204 || status == 304;
    const char *date = gh_http_date(wall);
    uint32_t n = 0;
    if (tokens)
        gh->f[n++] = FIELD("Server", GH_HDR_SERVER, "gatehouse", 9);
    gh->f[n++] = FIELD("Date", GH_HDR_DATE, date, strlen(date));
    if (location != NULL)
        gh->f[n++] = FIELD("Location", GH_HDR_OTHER, location, location_len);
    if (retry_after > 0) { /* RFC 9110 §10.2.3: delay-seconds */
        int rl = snprintf(gh->retry, sizeof(gh->retry), "%u", retry_after);
        gh->f[n++] = FIELD("Retry-After", GH_HDR_OTHER, gh->retry, (size_t)rl);
    }
    if (g != NULL && g->challenge != NULL)
        gh->f[n++] = FIELD("Proxy-Authenticate", GH_HDR_OTHER, g->challenge, g->challenge_len);
    if (!bodyless) {
        int cl = snprintf(gh->clen, sizeof(gh->clen), "%zu", body_len);
        gh->f[n++] = FIELD("Content-Type", GH_HDR_OTHER, ctype, strlen(ctype));
        gh->f[n++] = FIELD("Content-Length", GH_HDR_CONTENT_LENGTH, gh->clen, (size_t)cl);
    }
    *resp = (struct gh_resp){.status = (uint16_t)status,
                             .body = bodyless ? GH_H1_BODY_NONE : GH_H1_BODY_LENGTH,
                             .flags = GH_RESP_OWN_FIELDS,
                             .fields = gh->f,
                             .n_fields = n,
                             .content_length = -1};
}

/* The standard page for status into page[0..cap) (naming Gatehouse when tokens); returns its
 * length. */
static size_t
std_page(char *page, size_t cap, int st, bool tokens)
{
    const char *text = gh_h1w_status_text(st);
    int n = snprintf(page, cap,
                     "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d "
                     "%s</h1></center>\r\n%s</body>\r\n</html>\r\n",
                     st, text, st, text, tokens ? "<hr><center>gatehouse</center>\r\n" : "");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t
gh_respond_reject(char *out, size_t cap, int status, int64_t wall, size_t *head_len)
{
    char page[512];
    size_t plen = std_page(page, sizeof(page), status, true);
    struct gh_resp resp;
    struct gen_head gh;
    gen_resp(&resp, &gh, status, NULL, "text/html", plen, wall, true);
    size_t hlen = gh_fwd_resp_head(out, cap, &resp, NULL, NULL, wall, false, GH_FWD_CONN_CLOSE);
    if (hlen == 0 || cap - hlen < plen)
        return 0;
    memcpy(out + hlen, page, plen);
    *head_len = hlen;
    return hlen + plen;
}

/* The first write: the head and as much of the body as its room allows. */
static int
gen_head(struct gh_exchange *ex, const char *body, size_t body_len, const char *ctype)
{
    int status = ex->status;
    int bodyless = status < 200 || status == 204 || status == 304;
    struct gh_resp resp;
    struct gen_head gh;
    gen_resp(&resp, &gh, status, &ex->gen, ctype, body_len, gh_loop_wall(ex->w->loop),
             gh_hide_server_tokens(ex->pc));
    if (ex->gen.close)
        resp.flags |= GH_RESP_CLOSE;
    bool reframe = false;
    ssize_t room = ex->down->send_head(ex, &resp, &reframe);
    if (room < 0)
        return GH_PUMP_ENDED;
    if (bodyless)
        body_len = 0;
    /* a HEAD answer declares the length and sends none of it */
    size_t k = (ex->flags & GH_EX_HEAD_METHOD) ? body_len : GH_MIN(body_len, (size_t)room);
    struct iovec span = {(void *)body, k};
    ex->gen.body_sent = (uint32_t)k;
    bool done = k == body_len;
    if (ex->down->send_body(ex, &span, k > 0, done) != 0)
        return GH_PUMP_ENDED;
    if (done)
        ex->flags |= GH_EX_RESP_DONE;
    return GH_PUMP_MOVED;
}

static int
gen_recv(struct gh_exchange *ex)
{
    const char *body = ex->gen.body;
    size_t len = ex->gen.body_len;
    const char *ctype = ex->gen.html ? "text/html" : "text/plain";
    char page[512];
    const struct gh_error_page *ep = NULL;
    if (body == NULL && ex->status >= 400 && (ep = gh_hide_error_page(ex->pc, ex->status))) {
        body = ep->body; /* error_page */
        len = ep->body_len;
        ctype = "text/html";
    } else if (body == NULL) { /* the standard page, made again for each write it takes */
        len = std_page(page, sizeof(page), ex->status, gh_hide_server_tokens(ex->pc));
        body = page;
        ctype = "text/html";
    }
    if (!(ex->flags & GH_EX_RESP_STARTED))
        return gen_head(ex, body, len, ctype);
    /* the rest of a long body, a buffer at a time (the client took the previous one) */
    size_t left = len - ex->gen.body_sent;
    size_t k = GH_MIN(left, (size_t)GH_BUF_SIZE);
    struct iovec span = {(void *)(body + ex->gen.body_sent), k};
    ex->gen.body_sent += (uint32_t)k;
    bool done = k == left;
    if (ex->down->send_body(ex, &span, 1, done) != 0)
        return GH_PUMP_ENDED;
    if (done)
        ex->flags |= GH_EX_RESP_DONE;
    return GH_PUMP_MOVED;
}
