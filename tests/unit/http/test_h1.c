/*
 * test_h1.c - unit tests for the strict HTTP/1.1 parser and chunked decoder.
 *
 * Every parser test feeds its input whole, then every prefix (byte by byte),
 * then in random splits with a fixed seed (picohttpparser style). Each attempt
 * parses a fresh heap copy of exactly the bytes "received", so ASan catches any
 * read past the end; a prefix must give GH_INCOMPLETE or exactly the verdict
 * of the whole input (same status, offset and reason).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/h1.h"

#define MAX_HDRS 64

static uint32_t
next_rand(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static char *
dup_exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    if (n)
        memcpy(p, s, n);
    return p;
}

static int
inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && p + n <= buf + len;
}

static int
trimmed(const char *v, size_t n)
{
    return n == 0 || (v[0] != ' ' && v[0] != '\t' && v[n - 1] != ' ' && v[n - 1] != '\t');
}

/* ---- requests ---- */

struct preq {
    char *buf;
    int ret;
    struct gh_h1_request req;
    struct gh_h1_header hdrs[MAX_HDRS];
};

static struct preq last;

static int
run_req(const char *in, size_t len, const struct gh_h1_limits *lim, uint32_t cap, struct preq *out)
{
    free(out->buf);
    out->buf = dup_exact(in, len);
    memset(&out->req, 0xa5, sizeof(out->req));
    out->req.headers = out->hdrs;
    out->req.max_headers = cap;
    out->ret = gh_h1_parse_request(out->buf, len, &out->req, lim);
    return out->ret;
}

static void
check_req_slices(const struct preq *r)
{
    const struct gh_h1_request *q = &r->req;
    size_t n = (size_t)r->ret;

    assert_int_equal(q->head_len, r->ret);
    assert_true(inside(q->method, q->method_len, r->buf, n));
    assert_true(inside(q->target, q->target_len, r->buf, n));
    assert_true(q->method_len > 0 && q->target_len > 0);
    assert_true(q->version == 10 || q->version == 11);
    if (q->host != NULL)
        assert_true(inside(q->host, q->host_len, r->buf, n));
    for (uint32_t i = 0; i < q->num_headers; i++) {
        const struct gh_h1_header *h = &q->headers[i];
        assert_true(h->name_len > 0);
        assert_true(inside(h->name, h->name_len, r->buf, n));
        assert_true(inside(h->value, h->value_len, r->buf, n));
        assert_true(trimmed(h->value, h->value_len));
        assert_int_equal(h->id, gh_h1_header_id(h->name, h->name_len));
    }
    assert_false((q->flags & GH_H1_F_CHUNKED) && (q->flags & GH_H1_F_HAS_CL));
}

/* A prefix of `have` bytes of a message whose whole parse gave `whole`. */
static void
check_req_prefix(const char *in, size_t have, const struct gh_h1_limits *lim, uint32_t cap,
                 struct preq *tmp)
{
    int r = run_req(in, have, lim, cap, tmp);

    if (last.ret == GH_BAD) {
        if (r == GH_INCOMPLETE)
            return;
        assert_int_equal(r, GH_BAD);
        assert_int_equal(tmp->req.err.status, last.req.err.status);
        assert_int_equal(tmp->req.err.offset, last.req.err.offset);
        assert_string_equal(tmp->req.err.reason, last.req.err.reason);
    } else if (have < (size_t)last.ret) {
        if (r != GH_INCOMPLETE)
            print_message("prefix %zu: %d %s\n", have, r, r == GH_BAD ? tmp->req.err.reason : "");
        assert_int_equal(r, GH_INCOMPLETE);
    } else {
        assert_int_equal(r, last.ret);
        assert_int_equal(tmp->req.num_headers, last.req.num_headers);
        assert_int_equal(tmp->req.flags, last.req.flags);
        assert_true(tmp->req.content_length == last.req.content_length);
    }
}

static void
feed_req_prefixes(const char *in, size_t len, const struct gh_h1_limits *lim, uint32_t cap)
{
    struct preq tmp = {0};
    uint32_t seed = 20240601;

    for (size_t i = 0; i < len; i++)
        check_req_prefix(in, i, lim, cap, &tmp);
    for (int round = 0; round < 4; round++) {
        size_t have = 0;
        while (have < len) {
            have += 1 + next_rand(&seed) % 29;
            if (have > len)
                have = len;
            check_req_prefix(in, have, lim, cap, &tmp);
        }
    }
    free(tmp.buf);
}

static struct gh_h1_request *
req_ok_full(const char *in, size_t len, const struct gh_h1_limits *lim, uint32_t cap)
{
    int r = run_req(in, len, lim, cap, &last);
    if (r <= 0)
        print_message("expected success, got %d: %d %s at %u\n", r, last.req.err.status,
                      r == GH_BAD ? last.req.err.reason : "", last.req.err.offset);
    assert_true(r > 0);
    check_req_slices(&last);
    feed_req_prefixes(in, len, lim, cap);
    return &last.req;
}

static const struct gh_h1_error *
req_bad_full(const char *in, size_t len, const struct gh_h1_limits *lim, uint32_t cap, int status,
             const char *why)
{
    int r = run_req(in, len, lim, cap, &last);
    if (r != GH_BAD || last.req.err.status != status || strstr(last.req.err.reason, why) == NULL)
        print_message("expected %d '%s', got %d: %d %s\n", status, why, r, last.req.err.status,
                      r == GH_BAD ? last.req.err.reason : "");
    assert_int_equal(r, GH_BAD);
    assert_int_equal(last.req.err.status, status);
    assert_non_null(strstr(last.req.err.reason, why));
    assert_true(last.req.err.offset <= len);
    feed_req_prefixes(in, len, lim, cap);
    return &last.req.err;
}

#define REQ_OK(s) req_ok_full(s, sizeof(s) - 1, NULL, MAX_HDRS)
#define REQ_OK_LIM(s, lim) req_ok_full(s, sizeof(s) - 1, lim, MAX_HDRS)
#define REQ_BAD(s, st, why) req_bad_full(s, sizeof(s) - 1, NULL, MAX_HDRS, st, why)
#define REQ_BAD_LIM(s, lim, st, why) req_bad_full(s, sizeof(s) - 1, lim, MAX_HDRS, st, why)

static int
slice_eq(const char *p, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

#define assert_slice(p, n, s) assert_true(slice_eq(p, n, s))

/* ---- responses ---- */

struct presp {
    char *buf;
    int ret;
    struct gh_h1_response resp;
    struct gh_h1_header hdrs[MAX_HDRS];
};

static struct presp rlast;

static int
run_resp(const char *in, size_t len, const struct gh_h1_limits *lim, struct presp *out)
{
    free(out->buf);
    out->buf = dup_exact(in, len);
    memset(&out->resp, 0xa5, sizeof(out->resp));
    out->resp.headers = out->hdrs;
    out->resp.max_headers = MAX_HDRS;
    out->ret = gh_h1_parse_response(out->buf, len, &out->resp, lim);
    return out->ret;
}

static void
check_resp_prefix(const char *in, size_t have, const struct gh_h1_limits *lim, struct presp *tmp)
{
    int r = run_resp(in, have, lim, tmp);

    if (rlast.ret == GH_BAD) {
        if (r == GH_INCOMPLETE)
            return;
        assert_int_equal(r, GH_BAD);
        assert_int_equal(tmp->resp.err.offset, rlast.resp.err.offset);
        assert_string_equal(tmp->resp.err.reason, rlast.resp.err.reason);
    } else if (have < (size_t)rlast.ret) {
        assert_int_equal(r, GH_INCOMPLETE);
    } else {
        assert_int_equal(r, rlast.ret);
        assert_int_equal(tmp->resp.flags, rlast.resp.flags);
        assert_int_equal(tmp->resp.num_headers, rlast.resp.num_headers);
    }
}

static void
feed_resp_prefixes(const char *in, size_t len, const struct gh_h1_limits *lim)
{
    struct presp tmp = {0};
    uint32_t seed = 77;

    for (size_t i = 0; i < len; i++)
        check_resp_prefix(in, i, lim, &tmp);
    for (int round = 0; round < 4; round++) {
        size_t have = 0;
        while (have < len) {
            have += 1 + next_rand(&seed) % 19;
            if (have > len)
                have = len;
            check_resp_prefix(in, have, lim, &tmp);
        }
    }
    free(tmp.buf);
}

static struct gh_h1_response *
resp_ok_full(const char *in, size_t len, const struct gh_h1_limits *lim)
{
    int r = run_resp(in, len, lim, &rlast);
    if (r <= 0)
        print_message("expected success, got %d: %s\n", r,
                      r == GH_BAD ? rlast.resp.err.reason : "");
    assert_true(r > 0);
    const struct gh_h1_response *q = &rlast.resp;
    assert_int_equal(q->head_len, r);
    assert_true(inside(q->reason, q->reason_len, rlast.buf, (size_t)r));
    for (uint32_t i = 0; i < q->num_headers; i++) {
        assert_true(inside(q->headers[i].name, q->headers[i].name_len, rlast.buf, (size_t)r));
        assert_true(inside(q->headers[i].value, q->headers[i].value_len, rlast.buf, (size_t)r));
        assert_true(trimmed(q->headers[i].value, q->headers[i].value_len));
    }
    feed_resp_prefixes(in, len, lim);
    return &rlast.resp;
}

static void
resp_bad_full(const char *in, size_t len, const struct gh_h1_limits *lim, const char *why)
{
    int r = run_resp(in, len, lim, &rlast);
    if (r != GH_BAD || strstr(rlast.resp.err.reason, why) == NULL)
        print_message("expected '%s', got %d %s\n", why, r,
                      r == GH_BAD ? rlast.resp.err.reason : "");
    assert_int_equal(r, GH_BAD);
    assert_int_equal(rlast.resp.err.status, 502);
    assert_non_null(strstr(rlast.resp.err.reason, why));
    feed_resp_prefixes(in, len, lim);
}

#define RESP_OK(s) resp_ok_full(s, sizeof(s) - 1, NULL)
#define RESP_BAD(s, why) resp_bad_full(s, sizeof(s) - 1, NULL, why)

/* ---- chunked ---- */

struct chres {
    int ret;
    size_t consumed;
    size_t out_len;
    char out[8192];
    const char *reason;
};

/* Decode in[0..len) delivered in pieces ending at cuts[] (ascending), then the rest. */
static void
chunk_run(const char *in, size_t len, const size_t *cuts, size_t ncuts, uint32_t max_line,
          uint32_t max_trailers, struct chres *res)
{
    struct gh_h1_chunked c;
    size_t start = 0;

    gh_h1_chunked_init(&c);
    c.max_line = max_line;
    c.max_trailers = max_trailers;
    memset(res, 0, sizeof(*res));
    res->ret = GH_INCOMPLETE;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        if (end < start)
            continue;
        size_t plen = end - start, off = 0;
        char *piece = dup_exact(in + start, plen);
        for (;;) {
            const char *data;
            size_t used, dlen;
            int r = gh_h1_chunked_decode(&c, piece + off, plen - off, &used, &data, &dlen);
            assert_true(used <= plen - off);
            if (r == 1) {
                assert_true(dlen > 0 && used > 0);
                assert_true(inside(data, dlen, piece + off, used));
                assert_true(data + dlen == piece + off + used);
                assert_true(res->out_len + dlen <= sizeof(res->out));
                memcpy(res->out + res->out_len, data, dlen);
                res->out_len += dlen;
                off += used;
                continue;
            }
            if (r == GH_INCOMPLETE) {
                assert_int_equal(used, plen - off);
                break;
            }
            assert_true(r == 0 || r == GH_BAD);
            res->ret = r;
            res->consumed = start + off + used;
            res->reason = r == GH_BAD ? c.reason : NULL;
            free(piece);
            return;
        }
        free(piece);
        start = end;
    }
    res->consumed = len;
}

static void
chunk_same(const struct chres *a, const struct chres *b)
{
    assert_int_equal(a->ret, b->ret);
    if (a->ret == 0)
        assert_int_equal(a->consumed, b->consumed);
    if (a->ret == GH_BAD)
        assert_string_equal(a->reason, b->reason);
    assert_int_equal(a->out_len, b->out_len);
    assert_memory_equal(a->out, b->out, a->out_len);
}

/* Decode whole, byte by byte, split once at every position, and in random splits. */
static void
chunk_all(const char *in, size_t len, uint32_t max_line, uint32_t max_trailers, struct chres *whole)
{
    static struct chres other;
    size_t *cuts = malloc((len + 1) * sizeof(*cuts));
    uint32_t seed = 4242;

    assert_non_null(cuts);
    chunk_run(in, len, NULL, 0, max_line, max_trailers, whole);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    chunk_run(in, len, cuts, len, max_line, max_trailers, &other);
    chunk_same(whole, &other);
    for (size_t i = 0; i <= len; i++) {
        chunk_run(in, len, &i, 1, max_line, max_trailers, &other);
        chunk_same(whole, &other);
    }
    for (int round = 0; round < 8; round++) {
        size_t n = 0, at = 0;
        while (at < len) {
            at += 1 + next_rand(&seed) % 7;
            cuts[n++] = at < len ? at : len;
        }
        chunk_run(in, len, cuts, n, max_line, max_trailers, &other);
        chunk_same(whole, &other);
    }
    free(cuts);
}

static struct chres cres;

static void
chunk_ok_full(const char *in, size_t len, const char *want, size_t want_len, size_t want_consumed)
{
    chunk_all(in, len, 0, 0, &cres);
    if (cres.ret != 0)
        print_message("expected complete body, got %d %s\n", cres.ret,
                      cres.reason ? cres.reason : "");
    assert_int_equal(cres.ret, 0);
    assert_int_equal(cres.consumed, want_consumed);
    assert_int_equal(cres.out_len, want_len);
    assert_memory_equal(cres.out, want, want_len);
}

static void
chunk_bad_full(const char *in, size_t len, uint32_t max_line, uint32_t max_trailers,
               const char *why)
{
    chunk_all(in, len, max_line, max_trailers, &cres);
    if (cres.ret != GH_BAD || strstr(cres.reason, why) == NULL)
        print_message("expected '%s', got %d %s\n", why, cres.ret, cres.reason ? cres.reason : "");
    assert_int_equal(cres.ret, GH_BAD);
    assert_non_null(strstr(cres.reason, why));
}

#define CHUNK_OK(s, data) chunk_ok_full(s, sizeof(s) - 1, data, sizeof(data) - 1, sizeof(s) - 1)
#define CHUNK_BAD(s, why) chunk_bad_full(s, sizeof(s) - 1, 0, 0, why)

/* ======================= request line ======================= */

static void
test_simple_get(void **state)
{
    struct gh_h1_request *q = REQ_OK("GET /index.html?a=b HTTP/1.1\r\n"
                                     "Host: example.com\r\n"
                                     "User-Agent: test\r\n"
                                     "\r\n");
    assert_slice(q->method, q->method_len, "GET");
    assert_int_equal(q->method_id, GH_METHOD_GET);
    assert_slice(q->target, q->target_len, "/index.html?a=b");
    assert_int_equal(q->target_form, GH_TARGET_ORIGIN);
    assert_int_equal(q->version, 11);
    assert_int_equal(q->num_headers, 2);
    assert_slice(q->headers[0].name, q->headers[0].name_len, "Host");
    assert_int_equal(q->headers[0].id, GH_HDR_HOST);
    assert_slice(q->headers[1].value, q->headers[1].value_len, "test");
    assert_slice(q->host, q->host_len, "example.com");
    assert_int_equal(q->content_length, -1);
    assert_int_equal(q->flags, 0);
    assert_int_equal(q->err.status, 0);
}

static void
test_typical_browser_request(void **state)
{
    struct gh_h1_request *q =
        REQ_OK("GET /static/app.js?v=12345 HTTP/1.1\r\n"
               "Host: www.example.com\r\n"
               "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 "
               "Firefox/120.0\r\n"
               "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
               "Accept-Language: en-US,en;q=0.5\r\n"
               "Accept-Encoding: gzip, deflate, br\r\n"
               "Connection: keep-alive\r\n"
               "Cookie: session=abcdef0123456789; theme=dark\r\n"
               "Cache-Control: max-age=0\r\n"
               "\r\n");
    assert_int_equal(q->num_headers, 8);
    assert_int_equal(q->flags, GH_H1_F_CONN_KEEPALIVE);
    assert_slice(q->headers[3].value, q->headers[3].value_len, "en-US,en;q=0.5");
}

static void
test_http10_without_host(void **state)
{
    struct gh_h1_request *q = REQ_OK("GET / HTTP/1.0\r\n\r\n");
    assert_int_equal(q->version, 10);
    assert_null(q->host);
    assert_int_equal(q->num_headers, 0);
    assert_int_equal(q->head_len, 18);
}

static void
test_no_header_array(void **state)
{
    static const char in[] = "GET / HTTP/1.0\r\n\r\n";
    struct gh_h1_request q = {0};
    assert_int_equal(gh_h1_parse_request(in, sizeof(in) - 1, &q, NULL), 18);
    static const char in2[] = "GET / HTTP/1.0\r\nA: b\r\n\r\n";
    assert_int_equal(gh_h1_parse_request(in2, sizeof(in2) - 1, &q, NULL), GH_BAD);
    assert_int_equal(q.err.status, 431);
}

static void
test_empty_and_partial_input(void **state)
{
    struct gh_h1_request q = {.headers = last.hdrs, .max_headers = MAX_HDRS};
    assert_int_equal(gh_h1_parse_request("", 0, &q, NULL), GH_INCOMPLETE);
    assert_int_equal(gh_h1_parse_request("\r", 1, &q, NULL), GH_INCOMPLETE);
    assert_int_equal(gh_h1_parse_request("GET", 3, &q, NULL), GH_INCOMPLETE);
}

static void
test_leading_crlf(void **state)
{
    struct gh_h1_request *q = REQ_OK("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(q->head_len, 29);
    assert_slice(q->method, q->method_len, "GET");
}

static void
test_two_leading_crlf(void **state)
{
    REQ_BAD("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "more than one empty line");
}

static void
test_leading_bare_lf(void **state)
{
    REQ_BAD("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bare LF");
    REQ_BAD("\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "more than one empty line");
}

static void
test_leading_whitespace(void **state)
{
    const struct gh_h1_error *e = REQ_BAD(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "whitespace");
    assert_int_equal(e->offset, 0);
    REQ_BAD("\tGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "whitespace");
}

static void
test_pipelined(void **state)
{
    struct gh_h1_request *q = REQ_OK("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                                     "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(q->head_len, 28);
    assert_slice(q->target, q->target_len, "/1");
}

static void
test_head_with_body_bytes(void **state)
{
    struct gh_h1_request *q =
        REQ_OK("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
    assert_int_equal(q->head_len,
                     sizeof("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n") - 1);
    assert_int_equal(q->content_length, 5);
    assert_int_equal(q->method_id, GH_METHOD_POST);
}

static void
test_all_methods(void **state)
{
    static const struct {
        const char *req;
        int id;
    } t[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", GH_METHOD_GET},
        {"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", GH_METHOD_HEAD},
        {"POST / HTTP/1.1\r\nHost: a\r\n\r\n", GH_METHOD_POST},
        {"PUT / HTTP/1.1\r\nHost: a\r\n\r\n", GH_METHOD_PUT},
        {"DELETE / HTTP/1.1\r\nHost: a\r\n\r\n", GH_METHOD_DELETE},
        {"CONNECT a:1 HTTP/1.1\r\nHost: a\r\n\r\n", GH_METHOD_CONNECT},
        {"OPTIONS / HTTP/1.1\r\nHost: a\r\n\r\n", GH_METHOD_OPTIONS},
        {"TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", GH_METHOD_TRACE},
        {"PATCH / HTTP/1.1\r\nHost: a\r\n\r\n", GH_METHOD_PATCH},
        {"PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n", GH_METHOD_OTHER},
        {"get / HTTP/1.1\r\nHost: a\r\n\r\n", GH_METHOD_OTHER},
        {"M-SEARCH / HTTP/1.1\r\nHost: a\r\n\r\n", GH_METHOD_OTHER},
    };
    for (size_t i = 0; i < GH_ARRAY_LEN(t); i++) {
        struct gh_h1_request *q = req_ok_full(t[i].req, strlen(t[i].req), NULL, MAX_HDRS);
        assert_int_equal(q->method_id, t[i].id);
    }
}

static void
test_method_id(void **state)
{
    assert_int_equal(gh_h1_method_id("GET", 3), GH_METHOD_GET);
    assert_int_equal(gh_h1_method_id("OPTIONS", 7), GH_METHOD_OPTIONS);
    assert_int_equal(gh_h1_method_id("Get", 3), GH_METHOD_OTHER);
    assert_int_equal(gh_h1_method_id("GETX", 4), GH_METHOD_OTHER);
    assert_int_equal(gh_h1_method_id("", 0), GH_METHOD_OTHER);
}

static void
test_invalid_method(void **state)
{
    REQ_BAD("G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid byte in method");
    REQ_BAD("GE\x01T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid byte in method");
    REQ_BAD("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid byte in method");
    REQ_BAD("GET\r\n\r\n", 400, "invalid byte in method");
}

static void
test_double_sp(void **state)
{
    REQ_BAD("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "more than one SP");
    REQ_BAD("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400, "more than one SP");
    REQ_BAD("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "malformed HTTP version");
}

static void
test_sp_inside_target(void **state)
{
    REQ_BAD("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "malformed HTTP version");
}

static void
test_missing_version(void **state)
{
    REQ_BAD("GET /\r\nHost: a\r\n\r\n", 400, "missing HTTP version");
    REQ_BAD("GET \r\nHost: a\r\n\r\n", 400, "missing request-target");
    REQ_BAD("GET / \r\nHost: a\r\n\r\n", 400, "malformed HTTP version");
}

static void
test_version_505(void **state)
{
    const struct gh_h1_error *e = REQ_BAD("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, "version");
    assert_int_equal(e->offset, 6);
    REQ_BAD("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "unsupported HTTP version");
    REQ_BAD("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505, "unsupported HTTP version");
    REQ_BAD("GET / HTTP/3.1\r\n\r\n", 505, "unsupported HTTP version");
}

static void
test_version_malformed(void **state)
{
    REQ_BAD("GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400, "malformed HTTP version");
    REQ_BAD("GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400, "malformed HTTP version");
    REQ_BAD("GET / http/1.1\r\nHost: a\r\n\r\n", 400, "malformed HTTP version");
    REQ_BAD("GET / HTTP/1\r\nHost: a\r\n\r\n", 400, "malformed HTTP version");
    REQ_BAD("GET / HTTP/2\r\nHost: a\r\n\r\n", 400, "malformed HTTP version");
    REQ_BAD("GET / HTTP/1,1\r\nHost: a\r\n\r\n", 400, "malformed HTTP version");
    REQ_BAD("GET / HTTPS/1.1\r\nHost: a\r\n\r\n", 400, "malformed HTTP version");
}

static void
test_request_line_bare_lf(void **state)
{
    REQ_BAD("GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "bare LF");
}

static void
test_request_line_bare_cr(void **state)
{
    REQ_BAD("GET / HTTP/1.1\rHost: a\r\n\r\n", 400, "bare CR");
    REQ_BAD("GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", 400, "missing HTTP version");
}

/* ======================= request-target ======================= */

static void
test_target_bytes(void **state)
{
    static const char head[] = "GET /", tail[] = " HTTP/1.1\r\nHost: h\r\n\r\n";
    static const size_t pos[] = {0, 1, 7, 10, 11, 12, 26, 27, 28, 39};
    char in[128];

    for (int b = 0; b < 256; b++) {
        for (size_t k = 0; k < GH_ARRAY_LEN(pos); k++) {
            struct preq r = {0};
            size_t n = 0;
            memcpy(in, head, 5);
            n = 5;
            memset(in + n, 'a', 40);
            in[n + pos[k]] = (char)b;
            n += 40;
            memcpy(in + n, tail, sizeof(tail) - 1);
            n += sizeof(tail) - 1;
            int ret = run_req(in, n, NULL, MAX_HDRS, &r);
            int want_ok = b >= 0x21 && b <= 0x7e && b != '#';
            if (want_ok != (ret > 0))
                print_message("byte 0x%02x at %zu: %d\n", b, pos[k], ret);
            assert_int_equal(want_ok, ret > 0);
            if (!want_ok) {
                assert_int_equal(ret, GH_BAD);
                assert_int_equal(r.req.err.status, 400);
            }
            free(r.buf);
        }
    }
}

static void
test_target_ctl_del_high(void **state)
{
    REQ_BAD("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid byte in request-target");
    REQ_BAD("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid byte in request-target");
    REQ_BAD("GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid byte in request-target");
    REQ_BAD("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid byte in request-target");
}

static void
test_target_fragment(void **state)
{
    REQ_BAD("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400, "fragment");
    /* '#' found by the 16-byte scan, in the first and in a later block */
    REQ_BAD("GET /0123456789abcdef#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400, "fragment");
    REQ_BAD("GET /#0123456789abcdef0123456789 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "fragment");
    REQ_BAD("GET /0123456789abcdef0123456789# HTTP/1.1\r\nHost: a\r\n\r\n", 400, "fragment");
    /* a '#' in the same 16 bytes but after the target is not part of it */
    struct gh_h1_request *q = REQ_OK("GET /a HTTP/1.1\r\nHost: a\r\nX: #\r\n\r\n");
    assert_int_equal(q->target_len, 2);
    q = REQ_OK("GET /0123456789abcdef HTTP/1.1\r\nX-A: #\r\nHost: a\r\n\r\n");
    assert_int_equal(q->target_len, 17);
}

static void
test_absolute_form(void **state)
{
    struct gh_h1_request *q =
        REQ_OK("GET http://example.com:8080/p?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
    assert_int_equal(q->target_form, GH_TARGET_ABSOLUTE);
    assert_slice(q->target, q->target_len, "http://example.com:8080/p?q=1");
    q = REQ_OK("GET HTTPS://Example.COM HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_int_equal(q->target_form, GH_TARGET_ABSOLUTE);
    q = REQ_OK("GET http://example.com?x HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_int_equal(q->target_form, GH_TARGET_ABSOLUTE);
    q = REQ_OK("GET http://[::1]:80/ HTTP/1.1\r\nHost: [::1]:80\r\n\r\n");
    assert_int_equal(q->target_form, GH_TARGET_ABSOLUTE);
}

static void
test_absolute_form_bad(void **state)
{
    REQ_BAD("GET ftp://example.com/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "unsupported scheme");
    REQ_BAD("GET ws://example.com/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "unsupported scheme");
    REQ_BAD("GET http:///p HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid authority");
    REQ_BAD("GET http://u:p@example.com/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "userinfo");
    REQ_BAD("GET http://a:99999/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid authority");
    REQ_BAD("GET http:/a HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid request-target");
}

static void
test_connect_authority(void **state)
{
    struct gh_h1_request *q =
        REQ_OK("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    assert_int_equal(q->target_form, GH_TARGET_AUTHORITY);
    assert_int_equal(q->method_id, GH_METHOD_CONNECT);
    q = REQ_OK("CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n");
    assert_int_equal(q->target_form, GH_TARGET_AUTHORITY);
    q = REQ_OK("CONNECT 10.0.0.1:8443 HTTP/1.1\r\nHost: 10.0.0.1:8443\r\n\r\n");
    assert_int_equal(q->target_form, GH_TARGET_AUTHORITY);
}

static void
test_connect_bad(void **state)
{
    REQ_BAD("CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid authority-form");
    REQ_BAD("CONNECT example.com: HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid authority-form");
    REQ_BAD("CONNECT example.com:0 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid authority-form");
    REQ_BAD("CONNECT example.com:65536 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid authority-form");
    REQ_BAD("CONNECT u@example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid authority-form");
    REQ_BAD("CONNECT a:b:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid authority-form");
    REQ_BAD("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "CONNECT requires authority-form");
    REQ_BAD("CONNECT http://a:1/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "CONNECT requires");
    REQ_BAD("CONNECT * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "asterisk-form without OPTIONS");
}

static void
test_authority_form_without_connect(void **state)
{
    REQ_BAD("GET example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400,
            "authority-form without CONNECT");
    REQ_BAD("GET example.com HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid request-target");
}

static void
test_asterisk_form(void **state)
{
    struct gh_h1_request *q = REQ_OK("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(q->target_form, GH_TARGET_ASTERISK);
    REQ_BAD("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "asterisk-form without OPTIONS");
    REQ_BAD("OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid request-target");
}

/* ======================= field lines ======================= */

static void
test_value_trimmed(void **state)
{
    struct gh_h1_request *q = REQ_OK("GET / HTTP/1.1\r\n"
                                     "Host:a\r\n"
                                     "X-A:   spaced out  \t \r\n"
                                     "X-B:\t\tx y\t\r\n"
                                     "X-C:\r\n"
                                     "X-D:  \t  \r\n"
                                     "\r\n");
    assert_int_equal(q->num_headers, 5);
    assert_slice(q->headers[0].value, q->headers[0].value_len, "a");
    assert_slice(q->headers[1].value, q->headers[1].value_len, "spaced out");
    assert_slice(q->headers[2].value, q->headers[2].value_len, "x y");
    assert_int_equal(q->headers[3].value_len, 0);
    assert_int_equal(q->headers[4].value_len, 0);
}

static void
test_obs_text_value(void **state)
{
    struct gh_h1_request *q =
        REQ_OK("GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9 \xff\r\n\r\n");
    assert_slice(q->headers[1].value, q->headers[1].value_len, "caf\xc3\xa9 \xff");
}

static void
test_value_bytes(void **state)
{
    static const char head[] = "GET / HTTP/1.1\r\nHost: h\r\nX: ", tail[] = "\r\n\r\n";
    static const size_t pos[] = {0, 1, 5, 15, 16, 17, 31, 32, 33, 39};
    char in[128];

    for (int b = 0; b < 256; b++) {
        for (size_t k = 0; k < GH_ARRAY_LEN(pos); k++) {
            struct preq r = {0};
            size_t n = sizeof(head) - 1;
            memcpy(in, head, n);
            memset(in + n, 'v', 40);
            in[n + pos[k]] = (char)b;
            n += 40;
            memcpy(in + n, tail, sizeof(tail) - 1);
            n += sizeof(tail) - 1;
            int ret = run_req(in, n, NULL, MAX_HDRS, &r);
            int want_ok = b == '\t' || (b >= 0x20 && b != 0x7f);
            if (want_ok != (ret > 0))
                print_message("byte 0x%02x at %zu: %d\n", b, pos[k], ret);
            assert_int_equal(want_ok, ret > 0);
            if (!want_ok) {
                assert_int_equal(r.req.err.status, 400);
                if (r.req.err.offset != sizeof(head) - 1 + pos[k] + (b == '\r'))
                    print_message("byte 0x%02x at %zu: %s\n", b, pos[k], r.req.err.reason);
                assert_int_equal(r.req.err.offset, sizeof(head) - 1 + pos[k] + (b == '\r'));
            } else {
                int ows = b == ' ' || b == '\t';
                assert_int_equal(r.req.headers[1].value_len,
                                 40 - (ows && (pos[k] == 0 || pos[k] == 39)));
            }
            free(r.buf);
        }
    }
}

static int
is_tchar(int b)
{
    return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
           (b != 0 && strchr("!#$%&'*+-.^_`|~", b) != NULL);
}

/* Every byte at every alignment of a field name (SSE2 fast path and table tail). */
static void
test_name_bytes(void **state)
{
    static const char head[] = "GET / HTTP/1.1\r\nHost: h\r\n", tail[] = ": v\r\n\r\n";
    static const size_t pos[] = {0, 1, 5, 15, 16, 17, 31, 32, 33, 39};
    char in[128];

    for (int b = 0; b < 256; b++) {
        for (size_t k = 0; k < GH_ARRAY_LEN(pos); k++) {
            struct preq r = {0};
            size_t n = sizeof(head) - 1;
            memcpy(in, head, n);
            memset(in + n, 'n', 40);
            in[n + pos[k]] = (char)b;
            n += 40;
            memcpy(in + n, tail, sizeof(tail) - 1);
            n += sizeof(tail) - 1;
            int ret = run_req(in, n, NULL, MAX_HDRS, &r);
            int want_ok = is_tchar(b) || (b == ':' && pos[k] > 0);
            if (want_ok != (ret > 0))
                print_message("byte 0x%02x at %zu: %d\n", b, pos[k], ret);
            assert_int_equal(want_ok, ret > 0);
            if (want_ok) {
                assert_int_equal(r.req.headers[1].name_len, b == ':' ? pos[k] : 40);
            } else {
                assert_int_equal(r.req.err.status, 400);
                /* a CR opening the line is read as the end of the head: the bare CR is after it */
                assert_int_equal(r.req.err.offset,
                                 sizeof(head) - 1 + pos[k] + (b == '\r' && pos[k] == 0));
            }
            free(r.buf);
        }
    }
}

static void
test_nul_in_value(void **state)
{
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 400, "invalid byte in field value");
}

static void
test_cr_in_value(void **state)
{
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400, "bare CR");
}

static void
test_del_in_value(void **state)
{
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 400, "invalid byte in field value");
}

static void
test_bare_lf_header(void **state)
{
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400, "bare LF");
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "bare LF");
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX\n\r\n", 400, "field line without colon");
}

static void
test_bare_cr_end_of_head(void **state)
{
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\n\rX", 400, "bare CR");
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\r\n", 400, "bare CR");
}

static void
test_obs_fold(void **state)
{
    const struct gh_h1_error *e =
        REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n  c\r\n\r\n", 400, "obs-fold");
    assert_int_equal(e->offset, 31);
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n", 400, "obs-fold");
}

static void
test_whitespace_after_request_line(void **state)
{
    REQ_BAD("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, "whitespace before first field line");
}

static void
test_space_before_colon(void **state)
{
    const struct gh_h1_error *e =
        REQ_BAD("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "whitespace before colon");
    assert_int_equal(e->offset, 20);
    REQ_BAD("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400, "whitespace before colon");
    REQ_BAD("GET / HTTP/1.1\r\nTransfer-Encoding : chunked\r\nHost: a\r\n\r\n", 400,
            "whitespace before colon");
}

static void
test_empty_field_name(void **state)
{
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400, "empty field name");
}

static void
test_invalid_field_name(void **state)
{
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n", 400, "invalid byte in field name");
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: b\r\n\r\n", 400, "invalid byte in field name");
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nX\0: b\r\n\r\n", 400, "invalid byte in field name");
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\n\"X\": b\r\n\r\n", 400, "invalid byte in field name");
}

static void
test_field_without_colon(void **state)
{
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400, "field line without colon");
}

static void
test_header_ids(void **state)
{
    static const char *const names[] = {
#define NAME(id, name) name,
        GH_HDR_TABLE(NAME)
#undef NAME
    };
    char up[64];

    for (int i = 1; i < GH_HDR__COUNT; i++) {
        size_t n = strlen(names[i]);
        assert_int_equal(gh_h1_header_id(names[i], n), i);
        for (size_t k = 0; k < n; k++)
            up[k] =
                (char)((names[i][k] >= 'a' && names[i][k] <= 'z') ? names[i][k] - 32 : names[i][k]);
        assert_int_equal(gh_h1_header_id(up, n), i);
        memcpy(up, names[i], n);
        up[n - 1] = 'X';
        assert_int_equal(gh_h1_header_id(up, n), GH_HDR_OTHER);
        assert_int_equal(gh_h1_header_id(names[i], n - 1), GH_HDR_OTHER);
    }
    assert_int_equal(gh_h1_header_id("", 0), GH_HDR_OTHER);
    assert_int_equal(gh_h1_header_id("Content-Type", 12), GH_HDR_OTHER);
    assert_int_equal(gh_h1_header_id("cONTENT-lENGTH", 14), GH_HDR_CONTENT_LENGTH);
}

static void
test_header_ids_in_parse(void **state)
{
    struct gh_h1_request *q =
        REQ_OK("GET / HTTP/1.1\r\nhOsT: a\r\nVIA: 1.1 x\r\nX-Forwarded-For: 1.2.3.4\r\n"
               "Foo: bar\r\n\r\n");
    assert_int_equal(q->headers[0].id, GH_HDR_HOST);
    assert_int_equal(q->headers[1].id, GH_HDR_VIA);
    assert_int_equal(q->headers[2].id, GH_HDR_X_FORWARDED_FOR);
    assert_int_equal(q->headers[3].id, GH_HDR_OTHER);
}

/*
 * The field loop recognises well-known names by their first byte and a word
 * compare before any scan: every name, in any case, must get its id, and near
 * misses (longer, shorter, space before the colon) must get what a scan gives.
 */
static void
test_known_names_fast_path(void **state)
{
    static const char *const names[] = {
#define NAME(id, name) name,
        GH_HDR_TABLE(NAME)
#undef NAME
    };
    char in[256], name[64];

    for (int i = 1; i < GH_HDR__COUNT; i++) {
        size_t n = strlen(names[i]);
        for (int form = 0; form < 3; form++) {
            for (size_t k = 0; k < n; k++) {
                char c = names[i][k];
                int up = form == 1 || (form == 2 && k % 2 == 0);
                name[k] = (char)(up && c >= 'a' && c <= 'z' ? c - 32 : c);
            }
            name[n] = '\0';
            /* an inert value, so that every known name parses */
            const char *value = i == GH_HDR_CONTENT_LENGTH      ? "0"
                                : i == GH_HDR_HOST              ? "h"
                                : i == GH_HDR_TRANSFER_ENCODING ? "chunked"
                                                                : "close";
            size_t len = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\n%s%s: %s\r\n\r\n",
                                          i == GH_HDR_HOST ? "" : "Host: h\r\n", name, value);
            struct gh_h1_request *q = req_ok_full(in, len, NULL, MAX_HDRS);
            const struct gh_h1_header *f = &q->headers[q->num_headers - 1];
            assert_int_equal(f->id, i);
            assert_int_equal(f->name_len, n);
            /* one more name byte: another, unknown name */
            len = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: h\r\n%sx: v\r\n\r\n",
                                   name);
            q = req_ok_full(in, len, NULL, MAX_HDRS);
            assert_int_equal(q->headers[1].id, GH_HDR_OTHER);
            assert_int_equal(q->headers[1].name_len, n + 1);
            /* one byte fewer */
            len = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: h\r\n%.*s: v\r\n\r\n",
                                   (int)n - 1, name);
            q = req_ok_full(in, len, NULL, MAX_HDRS);
            assert_int_equal(q->headers[1].id, GH_HDR_OTHER);
            /* whitespace before the colon is still an error at the same offset */
            len = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: h\r\n%s : v\r\n\r\n",
                                   name);
            const struct gh_h1_error *e =
                req_bad_full(in, len, NULL, MAX_HDRS, 400, "whitespace before colon");
            assert_int_equal(e->offset, 25 + n);
        }
    }
    /* '-' in a name only matches '-' ("\r" has the same bits but for 0x20) */
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nContent\rLength: 1\r\n\r\n", 400,
            "field line without colon");
    struct gh_h1_request *q = REQ_OK("GET / HTTP/1.1\r\nHost: a\r\nContent_Length: 1\r\n\r\n");
    assert_int_equal(q->headers[1].id, GH_HDR_OTHER);
    assert_int_equal(q->content_length, -1);
}

static void
test_many_headers(void **state)
{
    char in[4096];
    size_t n = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 60; i++)
        n += (size_t)snprintf(in + n, sizeof(in) - n, "X-H%d: v%d\r\n", i, i);
    n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n");
    struct gh_h1_request *q = req_ok_full(in, n, NULL, MAX_HDRS);
    assert_int_equal(q->num_headers, 61);
    assert_slice(q->headers[60].name, q->headers[60].name_len, "X-H59");
}

/* ======================= Content-Length ======================= */

static void
test_cl_valid(void **state)
{
    struct gh_h1_request *q = REQ_OK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n");
    assert_int_equal(q->content_length, 42);
    assert_int_equal(q->flags, GH_H1_F_HAS_CL);
    q = REQ_OK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(q->content_length, 0);
    assert_int_equal(q->flags, GH_H1_F_HAS_CL);
    q = REQ_OK("POST / HTTP/1.1\r\nHost: a\r\ncontent-length:007\r\n\r\n");
    assert_int_equal(q->content_length, 7);
}

static void
test_cl_list_same(void **state)
{
    struct gh_h1_request *q = REQ_OK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n");
    assert_int_equal(q->content_length, 5);
    q = REQ_OK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5 ,\t5\r\n\r\n");
    assert_int_equal(q->content_length, 5);
}

static void
test_cl_list_differing(void **state)
{
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", 400,
            "invalid Content-Length");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", 400,
            "invalid Content-Length");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ,5\r\n\r\n", 400,
            "invalid Content-Length");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,,5\r\n\r\n", 400,
            "invalid Content-Length");
}

static void
test_cl_repeated_same(void **state)
{
    struct gh_h1_request *q =
        REQ_OK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n");
    assert_int_equal(q->content_length, 3);
}

static void
test_cl_repeated_differing(void **state)
{
    const struct gh_h1_error *e =
        REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400,
                "differing Content-Length");
    assert_int_equal(e->offset, 61);
}

static void
test_cl_sign_space(void **state)
{
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400,
            "invalid Content-Length");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400,
            "invalid Content-Length");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", 400,
            "invalid Content-Length");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400, "invalid Content-Length");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400,
            "invalid Content-Length");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n", 400,
            "invalid Content-Length");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5;\r\n\r\n", 400,
            "invalid Content-Length");
}

static void
test_cl_overflow(void **state)
{
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400,
            "invalid Content-Length");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387904\r\n\r\n", 400,
            "invalid Content-Length");
    struct gh_h1_request *q =
        REQ_OK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387903\r\n\r\n");
    assert_true(q->content_length == 4611686018427387903LL);
    q = REQ_OK(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 000000000000000000000000000001\r\n\r\n");
    assert_int_equal(q->content_length, 1);
    /* 18 digits take the short path, 19 the checked one */
    q = REQ_OK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n");
    assert_true(q->content_length == 999999999999999999LL);
    q = REQ_OK("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000000000\r\n\r\n");
    assert_true(q->content_length == 1000000000000000000LL);
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12a\r\n\r\n", 400,
            "invalid Content-Length");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12/\r\n\r\n", 400,
            "invalid Content-Length");
}

/* ======================= Transfer-Encoding ======================= */

static void
test_te_chunked(void **state)
{
    struct gh_h1_request *q =
        REQ_OK("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_int_equal(q->flags, GH_H1_F_CHUNKED);
    assert_int_equal(q->content_length, -1);
    q = REQ_OK("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChUnKeD\r\n\r\n");
    assert_int_equal(q->flags, GH_H1_F_CHUNKED);
    q = REQ_OK("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked ,\r\n\r\n");
    assert_int_equal(q->flags, GH_H1_F_CHUNKED);
}

static void
test_te_gzip_chunked_501(void **state)
{
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
            "unsupported transfer coding");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: "
            "chunked\r\n\r\n",
            501, "unsupported transfer coding");
}

/* Documented choice: chunked not final is 400 (RFC 9112 §6.3 item 4), whatever follows it. */
static void
test_te_chunked_gzip_400(void **state)
{
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400,
            "does not end in chunked");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
            "does not end in chunked");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
            "gzip\r\n\r\n",
            400, "does not end in chunked");
}

static void
test_te_chunked_twice(void **state)
{
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400,
            "more than once");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
            "chunked\r\n\r\n",
            400, "more than once");
}

static void
test_te_malformed(void **state)
{
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400,
            "empty Transfer-Encoding");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n", 400,
            "empty Transfer-Encoding");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", 400,
            "malformed Transfer-Encoding");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400,
            "malformed Transfer-Encoding");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chun ked\r\n\r\n", 400,
            "malformed Transfer-Encoding");
}

static void
test_cl_and_te(void **state)
{
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            400, "Content-Length with Transfer-Encoding");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            400, "Content-Length with Transfer-Encoding");
    REQ_BAD("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: "
            "0\r\n\r\n",
            400, "Content-Length with Transfer-Encoding");
}

static void
test_te_http10(void **state)
{
    REQ_BAD("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0");
}

/* ======================= Host ======================= */

static void
test_missing_host(void **state)
{
    const struct gh_h1_error *e = REQ_BAD("GET / HTTP/1.1\r\nX: a\r\n\r\n", 400, "missing Host");
    assert_int_equal(e->offset, 22);
    REQ_BAD("GET http://a/ HTTP/1.1\r\n\r\n", 400, "missing Host");
}

static void
test_double_host(void **state)
{
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host");
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400, "more than one Host");
    REQ_BAD("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400, "more than one Host");
}

static void
test_empty_host(void **state)
{
    struct gh_h1_request *q = REQ_OK("GET / HTTP/1.1\r\nHost:\r\n\r\n");
    assert_non_null(q->host);
    assert_int_equal(q->host_len, 0);
    q = REQ_OK("GET / HTTP/1.1\r\nHost:   \r\n\r\n");
    assert_int_equal(q->host_len, 0);
}

static void
test_host_values(void **state)
{
    struct gh_h1_request *q = REQ_OK("GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
    assert_slice(q->host, q->host_len, "example.com:8080");
    q = REQ_OK("GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n");
    assert_slice(q->host, q->host_len, "[::1]");
    q = REQ_OK("GET / HTTP/1.1\r\nHost: my_host.local\r\n\r\n");
    assert_slice(q->host, q->host_len, "my_host.local");
    /* hosts the 16-byte scan covers whole, in part, or runs past */
    q = REQ_OK("GET / HTTP/1.1\r\nHost: 127.0.0.1:18001\r\n\r\n");
    assert_slice(q->host, q->host_len, "127.0.0.1:18001");
    q = REQ_OK("GET / HTTP/1.1\r\nHost: a-very-long.host-name.example.com:443\r\n\r\n");
    assert_slice(q->host, q->host_len, "a-very-long.host-name.example.com:443");
    q = REQ_OK("GET / HTTP/1.1\r\nHost: abcdefghijklmnop\r\nXxxxxxxxxxxxxxxxxxx: y\r\n\r\n");
    assert_slice(q->host, q->host_len, "abcdefghijklmnop");
    q = REQ_OK("GET / HTTP/1.1\r\nHost: ab  \r\nXxxxxxxxxxxxxxxxxxx: y\r\n\r\n");
    assert_slice(q->host, q->host_len, "ab");
    q = REQ_OK("GET / HTTP/1.1\r\nHost: ab_cd!$&'()*+,;=~%.example\r\n\r\n");
    assert_slice(q->host, q->host_len, "ab_cd!$&'()*+,;=~%.example");
    q = REQ_OK("GET http://0123456789abcdef.example:80/x HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(q->target_form, GH_TARGET_ABSOLUTE);
    q = REQ_OK("CONNECT 0123456789abcdef.example:443 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(q->target_form, GH_TARGET_AUTHORITY);
}

static void
test_host_invalid(void **state)
{
    REQ_BAD("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "invalid Host");
    REQ_BAD("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "invalid Host");
    REQ_BAD("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, "invalid Host");
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\tb\r\n\r\n", 400, "invalid Host");
    REQ_BAD("GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", 400, "invalid Host");
    REQ_BAD("GET / HTTP/1.1\r\nHost: a:x\r\n\r\n", 400, "invalid Host");
    REQ_BAD("GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n", 400, "invalid Host");
    REQ_BAD("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, "invalid Host");
    REQ_BAD("GET / HTTP/1.1\r\nHost: a?b\r\n\r\n", 400, "invalid Host");
    /* bad bytes found within, at the end of and after the first 16 bytes */
    REQ_BAD("GET / HTTP/1.1\r\nHost: 0123456/89abcdef.example\r\n\r\n", 400, "invalid Host");
    REQ_BAD("GET / HTTP/1.1\r\nHost: 0123456789abcde]\r\n\r\n", 400, "invalid Host");
    REQ_BAD("GET / HTTP/1.1\r\nHost: 0123456789abcdef0123[\r\n\r\n", 400, "invalid Host");
    REQ_BAD("GET / HTTP/1.1\r\nHost: 0123456789abcdef0123:1:2\r\n\r\n", 400, "invalid Host");
    REQ_BAD("GET / HTTP/1.1\r\nHost: 127.0.0.1:180012\r\n\r\n", 400, "invalid Host");
    REQ_BAD("GET / HTTP/1.1\r\nHost: 127.0.0.1:65536\r\n\r\n", 400, "invalid Host");
    REQ_BAD("GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400, "invalid Host");
    REQ_BAD("GET http://0123456789abcdef.ex@mple/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "userinfo");
    REQ_BAD("GET http://0123456789abcdef.ex\"mple/ HTTP/1.1\r\nHost: a\r\n\r\n", 400,
            "invalid authority");
}

/* ======================= Connection, Expect, Upgrade ======================= */

static void
test_connection_flags(void **state)
{
    struct gh_h1_request *q = REQ_OK("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_int_equal(q->flags, GH_H1_F_CONN_CLOSE);
    q = REQ_OK("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert_int_equal(q->flags, GH_H1_F_CONN_KEEPALIVE);
    q = REQ_OK(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, X-Secret\r\nUpgrade: websocket\r\n\r\n");
    assert_int_equal(q->flags, GH_H1_F_CONN_UPGRADE | GH_H1_F_CONN_OTHER | GH_H1_F_UPGRADE);
    q = REQ_OK("GET / HTTP/1.1\r\nHost: a\r\nConnection: ,close,\r\nConnection: te\r\n\r\n");
    assert_int_equal(q->flags, GH_H1_F_CONN_CLOSE | GH_H1_F_CONN_OTHER);
    q = REQ_OK("GET / HTTP/1.1\r\nHost: a\r\nConnection:\r\n\r\n");
    assert_int_equal(q->flags, 0);
}

static void
test_connection_malformed(void **state)
{
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nConnection: close x\r\n\r\n", 400,
            "malformed Connection");
    REQ_BAD("GET / HTTP/1.1\r\nHost: a\r\nConnection: \"close\"\r\n\r\n", 400,
            "malformed Connection");
}

static void
test_expect(void **state)
{
    struct gh_h1_request *q =
        REQ_OK("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n");
    assert_int_equal(q->flags, GH_H1_F_HAS_CL | GH_H1_F_EXPECT_CONTINUE);
    q = REQ_OK("PUT / HTTP/1.1\r\nHost: a\r\nExpect:  100-Continue \r\n\r\n");
    assert_int_equal(q->flags, GH_H1_F_EXPECT_CONTINUE);
    q = REQ_OK("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n");
    assert_int_equal(q->flags, 0);
}

static void
test_upgrade_header(void **state)
{
    struct gh_h1_request *q = REQ_OK("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n");
    assert_int_equal(q->flags, GH_H1_F_UPGRADE);
}

/* ======================= limits ======================= */

static void
test_limit_request_line(void **state)
{
    struct gh_h1_limits lim = {.max_request_line = 16};
    REQ_OK_LIM("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &lim);
    REQ_OK_LIM("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", &lim);
    lim.max_request_line = 15;
    REQ_BAD_LIM("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &lim, 414, "request line too long");
}

static void
test_limit_request_line_early(void **state)
{
    struct gh_h1_limits lim = {.max_request_line = 64};
    struct preq r = {0};
    char in[65];
    memset(in, 'a', sizeof(in));
    memcpy(in, "GET /", 5);
    assert_int_equal(run_req(in, 63, &lim, MAX_HDRS, &r), GH_INCOMPLETE);
    assert_int_equal(run_req(in, 64, &lim, MAX_HDRS, &r), GH_BAD);
    assert_int_equal(r.req.err.status, 414);
    assert_int_equal(r.req.err.offset, 0);
    free(r.buf);
    REQ_BAD_LIM(
        "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        &lim, 414, "request line too long");
}

static void
test_limit_header_line(void **state)
{
    struct gh_h1_limits lim = {.max_header_line = 9};
    REQ_OK_LIM("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &lim);
    lim.max_header_line = 8;
    const struct gh_h1_error *e =
        REQ_BAD_LIM("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &lim, 431, "header line too long");
    assert_int_equal(e->offset, 16);
    lim.max_header_line = 32;
    REQ_BAD_LIM("GET / HTTP/1.1\r\nHost: a\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                &lim, 431, "header line too long");
}

static void
test_limit_headers_count(void **state)
{
    struct gh_h1_limits lim = {.max_headers = 2};
    REQ_OK_LIM("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\n", &lim);
    REQ_BAD_LIM("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\nY: c\r\n\r\n", &lim, 431,
                "too many header fields");
}

static void
test_limit_header_array(void **state)
{
    static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\nY: c\r\n\r\n";
    req_ok_full(in, sizeof(in) - 1, NULL, 3);
    req_bad_full(in, sizeof(in) - 1, NULL, 2, 431, "too many header fields");
    struct gh_h1_limits lim = {.max_headers = 10};
    req_bad_full(in, sizeof(in) - 1, &lim, 2, 431, "too many header fields");
}

static void
test_limit_head_size(void **state)
{
    static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\n";
    struct gh_h1_limits lim = {.max_head_size = sizeof(in) - 1};
    REQ_OK_LIM("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\n", &lim);
    lim.max_head_size = sizeof(in) - 2;
    REQ_BAD_LIM("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\n", &lim, 431, "head too large");
    /* an endless stream of small headers fails as soon as the limit is crossed */
    lim.max_head_size = 40;
    REQ_BAD_LIM("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\nX: b\r\nX: b\r\nX: b", &lim, 431,
                "head too large");
}

static void
test_limit_zero_means_none(void **state)
{
    struct gh_h1_limits lim = {0};
    REQ_OK_LIM("GET /a/very/long/path/that/is/fine HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\n", &lim);
}

/* ======================= responses ======================= */

static void
test_resp_200_cl(void **state)
{
    struct gh_h1_response *r =
        RESP_OK("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello");
    assert_int_equal(r->status, 200);
    assert_int_equal(r->version, 11);
    assert_slice(r->reason, r->reason_len, "OK");
    assert_int_equal(r->content_length, 5);
    assert_int_equal(r->flags, GH_H1_F_HAS_CL);
    assert_int_equal(r->head_len, 49);
    assert_int_equal(r->num_headers, 2);
    assert_int_equal(r->headers[1].id, GH_HDR_SERVER);
}

static void
test_resp_chunked(void **state)
{
    struct gh_h1_response *r = RESP_OK("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_int_equal(r->flags, GH_H1_F_CHUNKED);
    assert_int_equal(r->content_length, -1);
}

static void
test_resp_204(void **state)
{
    struct gh_h1_response *r = RESP_OK("HTTP/1.1 204 No Content\r\n\r\n");
    assert_int_equal(r->status, 204);
    assert_int_equal(r->num_headers, 0);
    assert_slice(r->reason, r->reason_len, "No Content");
}

static void
test_resp_1xx(void **state)
{
    struct gh_h1_response *r = RESP_OK("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n");
    assert_int_equal(r->status, 100);
    assert_int_equal(r->head_len, 25);
    r = RESP_OK(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert_int_equal(r->status, 101);
    assert_int_equal(r->flags, GH_H1_F_CONN_UPGRADE | GH_H1_F_UPGRADE);
}

static void
test_resp_http10(void **state)
{
    struct gh_h1_response *r = RESP_OK("HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(r->version, 10);
    assert_int_equal(r->status, 404);
    assert_int_equal(r->flags, GH_H1_F_CONN_KEEPALIVE);
}

static void
test_resp_empty_reason(void **state)
{
    struct gh_h1_response *r = RESP_OK("HTTP/1.1 200\r\n\r\n");
    assert_int_equal(r->status, 200);
    assert_int_equal(r->reason_len, 0);
    r = RESP_OK("HTTP/1.1 200 \r\n\r\n");
    assert_int_equal(r->reason_len, 0);
    r = RESP_OK("HTTP/1.1 999 Weird\tbut \xe9 ok\r\n\r\n");
    assert_int_equal(r->status, 999);
    assert_slice(r->reason, r->reason_len, "Weird\tbut \xe9 ok");
}

static void
test_resp_malformed_status_line(void **state)
{
    RESP_BAD("HTTP/1.1 20 OK\r\n\r\n", "malformed status code");
    RESP_BAD("HTTP/1.1 2000 OK\r\n\r\n", "malformed status code");
    RESP_BAD("HTTP/1.1 099 Low\r\n\r\n", "malformed status code");
    RESP_BAD("HTTP/1.1 abc OK\r\n\r\n", "malformed status code");
    RESP_BAD("HTTP/1.1  200 OK\r\n\r\n", "malformed status code");
    RESP_BAD("HTTP/1.1\r\n\r\n", "malformed HTTP version");
    RESP_BAD("HTTP/2 200 OK\r\n\r\n", "malformed HTTP version");
    RESP_BAD("http/1.1 200 OK\r\n\r\n", "malformed HTTP version");
    RESP_BAD("ICY 200 OK\r\n\r\n", "malformed HTTP version");
    RESP_BAD("\r\nHTTP/1.1 200 OK\r\n\r\n", "malformed HTTP version");
    RESP_BAD("HTTP/2.0 200 OK\r\n\r\n", "unsupported HTTP version");
    RESP_BAD("HTTP/1.1 200 OK\n\r\n", "bare LF");
    RESP_BAD("HTTP/1.1 200 OK\rX\r\n", "bare CR");
    RESP_BAD("HTTP/1.1 200 O\0K\r\n\r\n", "invalid byte in reason phrase");
}

static void
test_resp_field_errors(void **state)
{
    RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
             "Content-Length with Transfer-Encoding");
    RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
             "differing Content-Length");
    RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", "invalid Content-Length");
    RESP_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "does not end in chunked");
    RESP_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
             "unsupported transfer coding");
    RESP_BAD("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0");
    RESP_BAD("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", "obs-fold");
    RESP_BAD("HTTP/1.1 200 OK\r\nX : a\r\n\r\n", "whitespace before colon");
    RESP_BAD("HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n", "bare LF");
}

static void
test_resp_host_not_checked(void **state)
{
    struct gh_h1_response *r =
        RESP_OK("HTTP/1.1 200 OK\r\nHost: a b\r\nHost: c\r\nExpect: 100-continue\r\n\r\n");
    assert_int_equal(r->flags, 0);
}

static void
test_resp_limits(void **state)
{
    struct gh_h1_limits lim = {.max_request_line = 10};
    resp_bad_full("HTTP/1.1 200 OK\r\n\r\n", 19, &lim, "status line too long");
    lim = (struct gh_h1_limits){.max_headers = 1};
    resp_bad_full("HTTP/1.1 200 OK\r\nA: b\r\nC: d\r\n\r\n", 31, &lim, "too many header fields");
    lim = (struct gh_h1_limits){.max_header_line = 5};
    resp_bad_full("HTTP/1.1 200 OK\r\nA: bcd\r\n\r\n", 27, &lim, "header line too long");
}

/* ======================= helpers ======================= */

static void
test_list_has_token(void **state)
{
    assert_int_equal(gh_h1_list_has_token("close", 5, "close", 5), 1);
    assert_int_equal(gh_h1_list_has_token("keep-alive, Upgrade", 19, "upgrade", 7), 1);
    assert_int_equal(gh_h1_list_has_token(" a ,\tb\t, c ", 11, "b", 1), 1);
    assert_int_equal(gh_h1_list_has_token("ab, c", 5, "a", 1), 0);
    assert_int_equal(gh_h1_list_has_token("a, bc", 5, "b", 1), 0);
    assert_int_equal(gh_h1_list_has_token("", 0, "a", 1), 0);
    assert_int_equal(gh_h1_list_has_token(",,,", 3, "a", 1), 0);
    assert_int_equal(gh_h1_list_has_token("trailers, deflate;q=0.5", 23, "trailers", 8), 1);
}

static void
test_reason(void **state)
{
    assert_string_equal(gh_h1_reason(200), "OK");
    assert_string_equal(gh_h1_reason(100), "Continue");
    assert_string_equal(gh_h1_reason(404), "Not Found");
    assert_string_equal(gh_h1_reason(431), "Request Header Fields Too Large");
    assert_string_equal(gh_h1_reason(502), "Bad Gateway");
    assert_string_equal(gh_h1_reason(505), "HTTP Version Not Supported");
    assert_string_equal(gh_h1_reason(511), "Network Authentication Required");
    assert_string_equal(gh_h1_reason(299), "");
    assert_string_equal(gh_h1_reason(-1), "");
    for (int s = 100; s < 600; s++)
        assert_non_null(gh_h1_reason(s));
}

/* ======================= chunked ======================= */

static void
test_chunked_simple(void **state)
{
    CHUNK_OK("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world");
}

static void
test_chunked_empty_body(void **state)
{
    CHUNK_OK("0\r\n\r\n", "");
}

static void
test_chunked_hex(void **state)
{
    CHUNK_OK("a\r\n0123456789\r\nA\r\nabcdefghij\r\n00000\r\n\r\n", "0123456789abcdefghij");
    CHUNK_OK("0001\r\nx\r\n0\r\n\r\n", "x");
    char in[600], want[300];
    memset(want, 'z', sizeof(want));
    int n = snprintf(in, sizeof(in), "12C\r\n%.*s\r\n0\r\n\r\n", 300, want);
    chunk_ok_full(in, (size_t)n, want, 300, (size_t)n);
}

static void
test_chunked_trailing_bytes(void **state)
{
    static const char in[] = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    chunk_ok_full(in, sizeof(in) - 1, "abc", 3, 13);
}

static void
test_chunked_extensions(void **state)
{
    CHUNK_OK("3;foo\r\nabc\r\n0\r\n\r\n", "abc");
    CHUNK_OK("3;foo=bar\r\nabc\r\n0;last\r\n\r\n", "abc");
    CHUNK_OK("3 ; foo = bar ; baz\r\nabc\r\n0\r\n\r\n", "abc");
    CHUNK_OK("3;q=\"a \\\"quoted\\\" ;str\"\r\nabc\r\n0\r\n\r\n", "abc");
    CHUNK_OK("3;a=\"\";b=\"x\" ;c\r\nabc\r\n0\r\n\r\n", "abc");
    CHUNK_OK("3\t;\ta\r\nabc\r\n0\r\n\r\n", "abc");
}

static void
test_chunked_bad_extensions(void **state)
{
    CHUNK_BAD("3;\r\nabc\r\n0\r\n\r\n", "invalid chunk extension");
    CHUNK_BAD("3;=x\r\nabc\r\n0\r\n\r\n", "invalid chunk extension");
    CHUNK_BAD("3;a=\r\nabc\r\n0\r\n\r\n", "invalid chunk extension");
    CHUNK_BAD("3;a=\"x\r\nabc\r\n0\r\n\r\n", "invalid chunk extension");
    CHUNK_BAD("3;a=b c\r\nabc\r\n0\r\n\r\n", "invalid chunk extension");
    CHUNK_BAD("3;a\x01\r\nabc\r\n0\r\n\r\n", "invalid chunk extension");
    CHUNK_BAD("3;a=\"x\"y\r\nabc\r\n0\r\n\r\n", "invalid chunk extension");
    CHUNK_BAD("3;a \r\nabc\r\n0\r\n\r\n", "invalid chunk extension");
    CHUNK_BAD("3;a=\"\x7f\"\r\nabc\r\n0\r\n\r\n", "invalid chunk extension");
}

static void
test_chunked_space_after_size(void **state)
{
    CHUNK_BAD("3 \r\nabc\r\n0\r\n\r\n", "invalid chunk extension");
    CHUNK_BAD(" 3\r\nabc\r\n0\r\n\r\n", "missing chunk size");
}

static void
test_chunked_trailers(void **state)
{
    CHUNK_OK("3\r\nabc\r\n0\r\nX-Checksum: abc\r\nX-Other:\t v \r\n\r\n", "abc");
    CHUNK_OK("0\r\nA:\r\n\r\n", "");
}

static void
test_chunked_bad_trailers(void **state)
{
    CHUNK_BAD("0\r\nX: a\r\n b\r\n\r\n", "obs-fold in trailer");
    CHUNK_BAD("0\r\nX : a\r\n\r\n", "whitespace before colon in trailer");
    CHUNK_BAD("0\r\nNoColon\r\n\r\n", "invalid byte in trailer field name");
    CHUNK_BAD("0\r\n: a\r\n\r\n", "empty trailer field name");
    CHUNK_BAD("0\r\nX: a\0b\r\n\r\n", "invalid byte in trailer field value");
    CHUNK_BAD("0\r\nX: a\nY: b\r\n\r\n", "bare LF");
    CHUNK_BAD("0\r\nX: a\r\n\n", "bare LF");
    CHUNK_BAD("0\r\nX: a\r\n\rx", "bare CR");
    CHUNK_BAD("0\r\nX: a\rb\r\n\r\n", "bare CR");
}

static void
test_chunked_hex_overflow(void **state)
{
    CHUNK_BAD("10000000000000000\r\n", "chunk size overflow");
    CHUNK_BAD("8000000000000000\r\n", "chunk size overflow");
    CHUNK_BAD("ffffffffffffffffff\r\n", "chunk size overflow");
    /* 2^63 - 1 is accepted: the decoder then waits for data */
    struct chres r;
    chunk_run("7fffffffffffffff\r\nab", 20, NULL, 0, 0, 0, &r);
    assert_int_equal(r.ret, GH_INCOMPLETE);
    assert_int_equal(r.out_len, 2);
}

static void
test_chunked_0x_prefix(void **state)
{
    CHUNK_BAD("0x10\r\n0123456789abcdef\r\n0\r\n\r\n", "invalid chunk size");
    CHUNK_BAD("-1\r\n", "missing chunk size");
    CHUNK_BAD("+1\r\nx\r\n", "missing chunk size");
    CHUNK_BAD("g\r\n", "missing chunk size");
    CHUNK_BAD("\r\n", "missing chunk size");
}

static void
test_chunked_missing_crlf_after_data(void **state)
{
    CHUNK_BAD("3\r\nabcd\r\n0\r\n\r\n", "missing CRLF after chunk data");
    CHUNK_BAD("3\r\nabc0\r\n\r\n", "missing CRLF after chunk data");
    CHUNK_BAD("3\r\nabc\n0\r\n\r\n", "missing CRLF after chunk data");
    CHUNK_BAD("3\r\nabc\rx0\r\n\r\n", "bare CR after chunk data");
    /* the data before the error was still delivered */
    assert_int_equal(cres.out_len, 3);
}

static void
test_chunked_bare_lf(void **state)
{
    CHUNK_BAD("3\nabc\r\n0\r\n\r\n", "bare LF");
    CHUNK_BAD("3;a=b\nabc\r\n0\r\n\r\n", "bare LF");
    CHUNK_BAD("3\rabc\r\n0\r\n\r\n", "bare CR");
    CHUNK_BAD("3\r\nabc\r\n0\n\r\n", "bare LF");
    CHUNK_BAD("3\r\nabc\r\n0\r\n\n", "bare LF");
}

static void
test_chunked_line_limit(void **state)
{
    static const char in[] =
        "3;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nabc\r\n0\r\n\r\n";
    chunk_bad_full(in, sizeof(in) - 1, 32, 0, "chunk size line too long");
    chunk_all(in, sizeof(in) - 1, 0, 0, &cres);
    assert_int_equal(cres.ret, 0);
    /* an endless size line fails without waiting for its end */
    char big[5000];
    memset(big, '0', sizeof(big));
    chunk_bad_full(big, sizeof(big), 0, 0, "chunk size line too long");
}

static void
test_chunked_trailer_limits(void **state)
{
    static const char in[] = "0\r\nA: 0123456789\r\nB: 0123456789\r\nC: 0123456789\r\n\r\n";
    chunk_bad_full(in, sizeof(in) - 1, 0, 30, "trailer section too large");
    chunk_bad_full(in, sizeof(in) - 1, 10, 0, "trailer line too long");
    chunk_all(in, sizeof(in) - 1, 15, 47, &cres);
    assert_int_equal(cres.ret, 0);
}

static void
test_chunked_split_everywhere(void **state)
{
    static const char in[] = "1a;ext=\"v\"\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                             "3\r\n123\r\n0\r\nT: v\r\n\r\n";
    /* chunk_all already decodes split once at every position and byte by byte */
    chunk_ok_full(in, sizeof(in) - 1, "abcdefghijklmnopqrstuvwxyz123", 29, sizeof(in) - 1);
}

static void
test_chunked_done_and_error_are_sticky(void **state)
{
    struct gh_h1_chunked c;
    const char *data;
    size_t used, dlen;

    gh_h1_chunked_init(&c);
    assert_int_equal(gh_h1_chunked_decode(&c, "0\r\n\r\nxyz", 8, &used, &data, &dlen), 0);
    assert_int_equal(used, 5);
    assert_int_equal(gh_h1_chunked_decode(&c, "xyz", 3, &used, &data, &dlen), 0);
    assert_int_equal(used, 0);
    gh_h1_chunked_init(&c);
    assert_int_equal(gh_h1_chunked_decode(&c, "z\r\n", 3, &used, &data, &dlen), GH_BAD);
    assert_int_equal(used, 0);
    assert_non_null(c.reason);
    assert_int_equal(gh_h1_chunked_decode(&c, "0\r\n\r\n", 5, &used, &data, &dlen), GH_BAD);
    gh_h1_chunked_init(&c);
    assert_int_equal(gh_h1_chunked_decode(&c, "", 0, &used, &data, &dlen), GH_INCOMPLETE);
    assert_int_equal(used, 0);
}

static void
test_chunked_data_spans(void **state)
{
    struct gh_h1_chunked c;
    const char *data;
    size_t used, dlen;
    static const char in[] = "4\r\nabcd\r\n";

    gh_h1_chunked_init(&c);
    assert_int_equal(gh_h1_chunked_decode(&c, in, 5, &used, &data, &dlen), 1);
    assert_ptr_equal(data, in + 3);
    assert_int_equal(dlen, 2);
    assert_int_equal(used, 5);
    assert_int_equal(c.remaining, 2);
    assert_int_equal(gh_h1_chunked_decode(&c, in + 5, 4, &used, &data, &dlen), 1);
    assert_ptr_equal(data, in + 5);
    assert_int_equal(dlen, 2);
    assert_int_equal(used, 2);
    assert_int_equal(gh_h1_chunked_decode(&c, in + 7, 2, &used, &data, &dlen), GH_INCOMPLETE);
    assert_int_equal(used, 2);
}

static int
teardown_group(void **state)
{
    free(last.buf);
    last.buf = NULL;
    free(rlast.buf);
    rlast.buf = NULL;
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        /* request line */
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_typical_browser_request),
        cmocka_unit_test(test_http10_without_host),
        cmocka_unit_test(test_no_header_array),
        cmocka_unit_test(test_empty_and_partial_input),
        cmocka_unit_test(test_leading_crlf),
        cmocka_unit_test(test_two_leading_crlf),
        cmocka_unit_test(test_leading_bare_lf),
        cmocka_unit_test(test_leading_whitespace),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_head_with_body_bytes),
        cmocka_unit_test(test_all_methods),
        cmocka_unit_test(test_method_id),
        cmocka_unit_test(test_invalid_method),
        cmocka_unit_test(test_double_sp),
        cmocka_unit_test(test_sp_inside_target),
        cmocka_unit_test(test_missing_version),
        cmocka_unit_test(test_version_505),
        cmocka_unit_test(test_version_malformed),
        cmocka_unit_test(test_request_line_bare_lf),
        cmocka_unit_test(test_request_line_bare_cr),
        /* request-target */
        cmocka_unit_test(test_target_bytes),
        cmocka_unit_test(test_target_ctl_del_high),
        cmocka_unit_test(test_target_fragment),
        cmocka_unit_test(test_absolute_form),
        cmocka_unit_test(test_absolute_form_bad),
        cmocka_unit_test(test_connect_authority),
        cmocka_unit_test(test_connect_bad),
        cmocka_unit_test(test_authority_form_without_connect),
        cmocka_unit_test(test_asterisk_form),
        /* field lines */
        cmocka_unit_test(test_value_trimmed),
        cmocka_unit_test(test_obs_text_value),
        cmocka_unit_test(test_value_bytes),
        cmocka_unit_test(test_name_bytes),
        cmocka_unit_test(test_nul_in_value),
        cmocka_unit_test(test_cr_in_value),
        cmocka_unit_test(test_del_in_value),
        cmocka_unit_test(test_bare_lf_header),
        cmocka_unit_test(test_bare_cr_end_of_head),
        cmocka_unit_test(test_obs_fold),
        cmocka_unit_test(test_whitespace_after_request_line),
        cmocka_unit_test(test_space_before_colon),
        cmocka_unit_test(test_empty_field_name),
        cmocka_unit_test(test_invalid_field_name),
        cmocka_unit_test(test_field_without_colon),
        cmocka_unit_test(test_header_ids),
        cmocka_unit_test(test_header_ids_in_parse),
        cmocka_unit_test(test_known_names_fast_path),
        cmocka_unit_test(test_many_headers),
        /* Content-Length */
        cmocka_unit_test(test_cl_valid),
        cmocka_unit_test(test_cl_list_same),
        cmocka_unit_test(test_cl_list_differing),
        cmocka_unit_test(test_cl_repeated_same),
        cmocka_unit_test(test_cl_repeated_differing),
        cmocka_unit_test(test_cl_sign_space),
        cmocka_unit_test(test_cl_overflow),
        /* Transfer-Encoding */
        cmocka_unit_test(test_te_chunked),
        cmocka_unit_test(test_te_gzip_chunked_501),
        cmocka_unit_test(test_te_chunked_gzip_400),
        cmocka_unit_test(test_te_chunked_twice),
        cmocka_unit_test(test_te_malformed),
        cmocka_unit_test(test_cl_and_te),
        cmocka_unit_test(test_te_http10),
        /* Host */
        cmocka_unit_test(test_missing_host),
        cmocka_unit_test(test_double_host),
        cmocka_unit_test(test_empty_host),
        cmocka_unit_test(test_host_values),
        cmocka_unit_test(test_host_invalid),
        /* Connection, Expect, Upgrade */
        cmocka_unit_test(test_connection_flags),
        cmocka_unit_test(test_connection_malformed),
        cmocka_unit_test(test_expect),
        cmocka_unit_test(test_upgrade_header),
        /* limits */
        cmocka_unit_test(test_limit_request_line),
        cmocka_unit_test(test_limit_request_line_early),
        cmocka_unit_test(test_limit_header_line),
        cmocka_unit_test(test_limit_headers_count),
        cmocka_unit_test(test_limit_header_array),
        cmocka_unit_test(test_limit_head_size),
        cmocka_unit_test(test_limit_zero_means_none),
        /* responses */
        cmocka_unit_test(test_resp_200_cl),
        cmocka_unit_test(test_resp_chunked),
        cmocka_unit_test(test_resp_204),
        cmocka_unit_test(test_resp_1xx),
        cmocka_unit_test(test_resp_http10),
        cmocka_unit_test(test_resp_empty_reason),
        cmocka_unit_test(test_resp_malformed_status_line),
        cmocka_unit_test(test_resp_field_errors),
        cmocka_unit_test(test_resp_host_not_checked),
        cmocka_unit_test(test_resp_limits),
        /* helpers */
        cmocka_unit_test(test_list_has_token),
        cmocka_unit_test(test_reason),
        /* chunked */
        cmocka_unit_test(test_chunked_simple),
        cmocka_unit_test(test_chunked_empty_body),
        cmocka_unit_test(test_chunked_hex),
        cmocka_unit_test(test_chunked_trailing_bytes),
        cmocka_unit_test(test_chunked_extensions),
        cmocka_unit_test(test_chunked_bad_extensions),
        cmocka_unit_test(test_chunked_space_after_size),
        cmocka_unit_test(test_chunked_trailers),
        cmocka_unit_test(test_chunked_bad_trailers),
        cmocka_unit_test(test_chunked_hex_overflow),
        cmocka_unit_test(test_chunked_0x_prefix),
        cmocka_unit_test(test_chunked_missing_crlf_after_data),
        cmocka_unit_test(test_chunked_bare_lf),
        cmocka_unit_test(test_chunked_line_limit),
        cmocka_unit_test(test_chunked_trailer_limits),
        cmocka_unit_test(test_chunked_split_everywhere),
        cmocka_unit_test(test_chunked_done_and_error_are_sticky),
        cmocka_unit_test(test_chunked_data_spans),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_group);
}
