/*
 * fuzz_h1_response.c - libFuzzer target for gh_h1_parse_response.
 *
 * Asserts the contract: errors always carry 502; a complete head lies inside
 * the input with every slice inside it; every prefix is incomplete or gets the
 * whole input's verdict; limits only add errors; an accepted head re-emitted
 * canonically parses identically.
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
    struct gh_h1_response resp;
    struct gh_h1_header hdrs[NHDR];
};

static int
parse(const char *buf, size_t len, const struct gh_h1_limits *lim, struct run *r)
{
    memset(&r->resp, 0, sizeof(r->resp));
    r->resp.headers = r->hdrs;
    r->resp.max_headers = NHDR;
    r->ret = gh_h1_parse_response(buf, len, &r->resp, lim);
    return r->ret;
}

static int
inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && n <= len && p + n <= buf + len;
}

static void
check_result(const char *buf, size_t len, const struct run *r)
{
    const struct gh_h1_response *q = &r->resp;

    CHECK(r->ret > 0 || r->ret == GH_INCOMPLETE || r->ret == GH_BAD);
    if (r->ret == GH_BAD) {
        CHECK(q->err.status == 502);
        CHECK(q->err.reason != NULL && q->err.reason[0] != '\0');
        CHECK(q->err.offset <= len);
        return;
    }
    if (r->ret == GH_INCOMPLETE)
        return;
    size_t h = (size_t)r->ret;
    CHECK(h <= len && q->head_len == h && h >= 14);
    CHECK(buf[h - 2] == '\r' && buf[h - 1] == '\n');
    CHECK(q->status >= 100 && q->status <= 999);
    CHECK(q->version == 10 || q->version == 11);
    CHECK(inside(q->reason, q->reason_len, buf, h));
    CHECK(!((q->flags & GH_H1_F_CHUNKED) && (q->flags & GH_H1_F_HAS_CL)));
    CHECK(((q->flags & GH_H1_F_HAS_CL) != 0) == (q->content_length >= 0));
    int n_cl = 0, n_te = 0;
    for (uint32_t i = 0; i < q->num_headers; i++) {
        const struct gh_h1_header *f = &q->headers[i];
        CHECK(f->name_len > 0 && inside(f->name, f->name_len, buf, h));
        CHECK(inside(f->value, f->value_len, buf, h));
        CHECK(f->value_len == 0 || (f->value[0] != ' ' && f->value[0] != '\t'));
        CHECK(f->value_len == 0 ||
              (f->value[f->value_len - 1] != ' ' && f->value[f->value_len - 1] != '\t'));
        CHECK(f->id == (uint32_t)gh_h1_header_id(f->name, f->name_len));
        n_cl += f->id == GH_HDR_CONTENT_LENGTH;
        n_te += f->id == GH_HDR_TRANSFER_ENCODING;
    }
    CHECK(((q->flags & GH_H1_F_HAS_CL) != 0) == (n_cl > 0));
    CHECK(((q->flags & GH_H1_F_CHUNKED) != 0) == (n_te > 0));
}

static void
same_verdict(const struct run *a, const struct run *b)
{
    CHECK(a->ret == b->ret);
    if (a->ret == GH_BAD) {
        CHECK(a->resp.err.offset == b->resp.err.offset);
        CHECK(strcmp(a->resp.err.reason, b->resp.err.reason) == 0);
    } else if (a->ret > 0) {
        CHECK(a->resp.status == b->resp.status);
        CHECK(a->resp.num_headers == b->resp.num_headers);
        CHECK(a->resp.flags == b->resp.flags);
        CHECK(a->resp.content_length == b->resp.content_length);
    }
}

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
    if ((whole->ret > 0 && have >= (size_t)whole->ret) || r.ret != GH_INCOMPLETE)
        same_verdict(whole, &r);
}

static void
check_reserialize(const struct run *w)
{
    static struct run r;
    const struct gh_h1_response *q = &w->resp;
    size_t cap = q->head_len + q->num_headers + 16, n = 0;
    char *out = malloc(cap);

    n += (size_t)sprintf(out, "HTTP/1.%d %03u ", q->version % 10, q->status);
    memcpy(out + n, q->reason, q->reason_len);
    n += q->reason_len;
    out[n++] = '\r';
    out[n++] = '\n';
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
    CHECK(r.resp.status == q->status && r.resp.version == q->version);
    CHECK(r.resp.flags == q->flags && r.resp.content_length == q->content_length);
    CHECK(r.resp.reason_len == q->reason_len);
    CHECK(r.resp.num_headers == q->num_headers);
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
    if (whole.ret > 0)
        check_reserialize(&whole);

    struct gh_h1_limits lim = {
        .max_request_line = 8 + hash % 64,
        .max_header_line = 4 + (hash >> 6) % 64,
        .max_headers = 1 + (hash >> 12) % 8,
        .max_head_size = 16 + (hash >> 16) % 256,
    };
    parse(buf, size, &lim, &limited);
    check_result(buf, size, &limited);
    if (limited.ret != GH_BAD || strstr(limited.resp.err.reason, "too") == NULL)
        same_verdict(&whole, &limited);

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
