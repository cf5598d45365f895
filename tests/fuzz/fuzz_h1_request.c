/*
 * fuzz_h1_request.c - libFuzzer target for gh_h1_parse_request.
 *
 * Besides "no crash", it asserts the parser's contract:
 *  - a complete parse has 0 < head_len <= len and every slice inside the head;
 *    values are trimmed, names are non-empty, flags agree with the fields;
 *  - restartability: every prefix gives GH_INCOMPLETE or exactly the verdict of
 *    the whole input (same head_len, or same status, offset and reason);
 *  - limits only ever turn a verdict into a 414/431;
 *  - a head we accept, re-serialized canonically, is accepted identically
 *    (what Gatehouse forwards is what it understood).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define NHDR 64

struct run {
    int ret;
    struct gh_h1_request req;
    struct gh_h1_header hdrs[NHDR];
};

static int
parse(const char *buf, size_t len, const struct gh_h1_limits *lim, struct run *r)
{
    memset(&r->req, 0, sizeof(r->req));
    r->req.headers = r->hdrs;
    r->req.max_headers = NHDR;
    r->ret = gh_h1_parse_request(buf, len, &r->req, lim);
    return r->ret;
}

static int
inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && n <= len && p + n <= buf + len;
}

static int
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void
check_result(const char *buf, size_t len, const struct run *r)
{
    const struct gh_h1_request *q = &r->req;

    CHECK(r->ret > 0 || r->ret == GH_INCOMPLETE || r->ret == GH_BAD);
    if (r->ret == GH_BAD) {
        int s = q->err.status;
        CHECK(s == 400 || s == 414 || s == 431 || s == 501 || s == 505);
        CHECK(q->err.reason != NULL && q->err.reason[0] != '\0');
        CHECK(q->err.offset <= len);
        return;
    }
    if (r->ret == GH_INCOMPLETE)
        return;
    size_t h = (size_t)r->ret;
    CHECK(h <= len && q->head_len == h);
    CHECK(buf[h - 2] == '\r' && buf[h - 1] == '\n');
    CHECK(q->num_headers <= NHDR);
    CHECK(q->method_len > 0 && inside(q->method, q->method_len, buf, h));
    CHECK(q->target_len > 0 && inside(q->target, q->target_len, buf, h));
    CHECK(q->version == 10 || q->version == 11);
    CHECK(q->target_form <= GH_TARGET_ASTERISK);
    CHECK((q->method_id == GH_METHOD_CONNECT) == (q->target_form == GH_TARGET_AUTHORITY));
    CHECK(!((q->flags & GH_H1_F_CHUNKED) && (q->flags & GH_H1_F_HAS_CL)));
    CHECK(((q->flags & GH_H1_F_HAS_CL) != 0) == (q->content_length >= 0));
    CHECK(q->content_length < ((int64_t)1 << 62));
    int n_host = 0, n_cl = 0, n_te = 0, n_up = 0;
    for (uint32_t i = 0; i < q->num_headers; i++) {
        const struct gh_h1_header *f = &q->headers[i];
        CHECK(f->name_len > 0 && inside(f->name, f->name_len, buf, h));
        CHECK(inside(f->value, f->value_len, buf, h));
        CHECK(f->value_len == 0 || (!is_ows(f->value[0]) && !is_ows(f->value[f->value_len - 1])));
        CHECK(f->name + f->name_len < f->value || f->value_len == 0);
        CHECK(f->id == (uint32_t)gh_h1_header_id(f->name, f->name_len));
        for (uint32_t k = 0; k < f->value_len; k++) {
            unsigned char c = (unsigned char)f->value[k];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        n_host += f->id == GH_HDR_HOST;
        n_cl += f->id == GH_HDR_CONTENT_LENGTH;
        n_te += f->id == GH_HDR_TRANSFER_ENCODING;
        n_up += f->id == GH_HDR_UPGRADE;
    }
    CHECK(n_host <= 1 && (q->version == 10 || n_host == 1));
    CHECK((q->host != NULL) == (n_host == 1));
    CHECK(((q->flags & GH_H1_F_HAS_CL) != 0) == (n_cl > 0));
    CHECK(((q->flags & GH_H1_F_CHUNKED) != 0) == (n_te > 0));
    CHECK(((q->flags & GH_H1_F_UPGRADE) != 0) == (n_up > 0));
    CHECK(n_te == 0 || q->version == 11);
    for (uint32_t k = 0; k < q->target_len; k++)
        CHECK(q->target[k] > 0x20 && q->target[k] < 0x7f);
}

static void
same_verdict(const struct run *a, const struct run *b)
{
    CHECK(a->ret == b->ret);
    if (a->ret == GH_BAD) {
        CHECK(a->req.err.status == b->req.err.status);
        CHECK(a->req.err.offset == b->req.err.offset);
        CHECK(strcmp(a->req.err.reason, b->req.err.reason) == 0);
    } else if (a->ret > 0) {
        CHECK(a->req.num_headers == b->req.num_headers);
        CHECK(a->req.flags == b->req.flags);
        CHECK(a->req.content_length == b->req.content_length);
    }
}

/* A prefix must be incomplete or agree with the whole. */
/* One allocation per input holds each prefix in turn, flush with its end. */
static char *scratch;
static size_t scratch_len;

static void
check_prefix(const uint8_t *data, size_t have, const struct gh_h1_limits *lim,
             const struct run *whole)
{
    static struct run r;
    /* the prefix ends where the allocation ends, so ASan sees any read past it */
    char *p = scratch + scratch_len - have;

    if (have)
        memcpy(p, data, have);
    parse(p, have, lim, &r);
    check_result(p, have, &r);
    if (whole->ret > 0 && have >= (size_t)whole->ret)
        same_verdict(whole, &r);
    else if (r.ret != GH_INCOMPLETE)
        same_verdict(whole, &r);
}

/* Re-emit an accepted head canonically and parse it again. */
static void
check_reserialize(const struct run *w)
{
    static struct run r;
    const struct gh_h1_request *q = &w->req;
    size_t cap = q->head_len + q->num_headers + 16, n = 0;
    char *out = malloc(cap);

    memcpy(out + n, q->method, q->method_len);
    n += q->method_len;
    out[n++] = ' ';
    memcpy(out + n, q->target, q->target_len);
    n += q->target_len;
    n += (size_t)sprintf(out + n, " HTTP/1.%d\r\n", q->version % 10);
    for (uint32_t i = 0; i < q->num_headers; i++) {
        memcpy(out + n, q->headers[i].name, q->headers[i].name_len);
        n += q->headers[i].name_len;
        out[n++] = ':';
        out[n++] = ' ';
        memcpy(out + n, q->headers[i].value, q->headers[i].value_len);
        n += q->headers[i].value_len;
        out[n++] = '\r';
        out[n++] = '\n';
    }
    out[n++] = '\r';
    out[n++] = '\n';
    CHECK(n <= cap);
    CHECK(parse(out, n, NULL, &r) == (int)n);
    CHECK(r.req.method_id == q->method_id && r.req.target_form == q->target_form);
    CHECK(r.req.version == q->version && r.req.flags == q->flags);
    CHECK(r.req.content_length == q->content_length);
    CHECK(r.req.num_headers == q->num_headers);
    for (uint32_t i = 0; i < q->num_headers; i++) {
        CHECK(r.req.headers[i].value_len == q->headers[i].value_len);
        CHECK(memcmp(r.req.headers[i].value, q->headers[i].value, q->headers[i].value_len) == 0);
    }
    free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct run whole, limited;
    char *buf = malloc(size ? size : 1);
    uint32_t hash = 2166136261u;

    if (size)
        memcpy(buf, data, size);
    scratch_len = size;
    scratch = malloc(size ? size : 1);
    for (size_t i = 0; i < size; i++)
        hash = (hash ^ data[i]) * 16777619u;

    parse(buf, size, NULL, &whole);
    check_result(buf, size, &whole);
    if (whole.ret > 0) {
        struct run again;
        CHECK(parse(buf, (size_t)whole.ret, NULL, &again) == whole.ret);
        same_verdict(&whole, &again);
        check_reserialize(&whole);
    }

    /* Limits can only turn a verdict into a limit error. */
    struct gh_h1_limits lim = {
        .max_request_line = 8 + hash % 64,
        .max_header_line = 4 + (hash >> 6) % 64,
        .max_headers = 1 + (hash >> 12) % 8,
        .max_head_size = 16 + (hash >> 16) % 256,
    };
    parse(buf, size, &lim, &limited);
    check_result(buf, size, &limited);
    if (limited.ret == GH_BAD && (limited.req.err.status == 414 || limited.req.err.status == 431))
        ; /* a limit fired: anything goes for the unlimited verdict except a limit error of its own
           */
    else
        same_verdict(&whole, &limited);

    /* Restartability: all prefixes of short inputs, a sample of prefixes of long ones. */
    if (size <= 128) {
        for (size_t i = 0; i < size; i++)
            check_prefix(data, i, NULL, &whole);
    } else {
        uint32_t s = hash;
        for (int k = 0; k < 24; k++) {
            s = s * 1103515245u + 12345u;
            check_prefix(data, (s >> 4) % size, NULL, &whole);
        }
        check_prefix(data, size - 1, NULL, &whole);
    }
    for (size_t i = 0; i < size; i += 1 + size / 16)
        check_prefix(data, i, &lim, &limited);

    free(scratch);
    free(buf);
    return 0;
}
