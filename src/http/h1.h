/*
 * h1.h - strict, incremental, zero-copy HTTP/1.1 message-head parser and
 * chunked-body decoder (RFC 9110, RFC 9112).
 *
 * The parser never allocates and never copies: every string it returns is a
 * slice into the caller's buffer, valid as long as that buffer is. It is
 * restartable: call it again with the same buffer start and more bytes; it
 * re-parses from the start (heads are small) and returns GH_INCOMPLETE until
 * the empty line that ends the head has arrived.
 *
 * It is strict on purpose (design principle 4): anything ambiguous is rejected
 * with a status, an offset and a reason, never "fixed up". What it accepts
 * is exactly what Gatehouse is willing to re-frame and forward.
 */
#ifndef GH_HTTP_H1_H
#define GH_HTTP_H1_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

/* Well-known header ids, set in gh_h1_header.id by the parser (case-insensitive match). */
#define GH_HDR_TABLE(X)                                                                            \
    X(OTHER, "")                                                                                   \
    X(HOST, "host")                                                                                \
    X(CONTENT_LENGTH, "content-length")                                                            \
    X(TRANSFER_ENCODING, "transfer-encoding")                                                      \
    X(CONNECTION, "connection")                                                                    \
    X(KEEP_ALIVE, "keep-alive")                                                                    \
    X(PROXY_CONNECTION, "proxy-connection")                                                        \
    X(PROXY_AUTHORIZATION, "proxy-authorization")                                                  \
    X(PROXY_AUTHENTICATE, "proxy-authenticate")                                                    \
    X(TE, "te")                                                                                    \
    X(TRAILER, "trailer")                                                                          \
    X(UPGRADE, "upgrade")                                                                          \
    X(EXPECT, "expect")                                                                            \
    X(X_FORWARDED_FOR, "x-forwarded-for")                                                          \
    X(X_FORWARDED_PROTO, "x-forwarded-proto")                                                      \
    X(X_FORWARDED_HOST, "x-forwarded-host")                                                        \
    X(FORWARDED, "forwarded")                                                                      \
    X(VIA, "via")                                                                                  \
    X(DATE, "date")                                                                                \
    X(SERVER, "server")

enum gh_hdr_id {
#define GH_HDR_ENUM(id, name) GH_HDR_##id,
    GH_HDR_TABLE(GH_HDR_ENUM)
#undef GH_HDR_ENUM
        GH_HDR__COUNT
};

/* One header field; name and value are slices (value has OWS trimmed on both sides). */
struct gh_h1_header {
    const char *name;
    const char *value;
    uint32_t name_len;
    uint32_t value_len;
    uint32_t id; /* enum gh_hdr_id */
};

enum gh_h1_method {
    GH_METHOD_OTHER = 0,
    GH_METHOD_GET,
    GH_METHOD_HEAD,
    GH_METHOD_POST,
    GH_METHOD_PUT,
    GH_METHOD_DELETE,
    GH_METHOD_CONNECT,
    GH_METHOD_OPTIONS,
    GH_METHOD_TRACE,
    GH_METHOD_PATCH,
};

/* RFC 9112 §3.2 request-target forms. */
enum gh_h1_target_form {
    GH_TARGET_ORIGIN = 0, /* /path?query */
    GH_TARGET_ABSOLUTE,   /* http://host:port/path?query */
    GH_TARGET_AUTHORITY,  /* host:port, only with CONNECT */
    GH_TARGET_ASTERISK,   /* *, only with OPTIONS */
};

/* Flags describing the message's framing and connection semantics (both directions). */
#define GH_H1_F_CHUNKED 0x0001         /* Transfer-Encoding: chunked (final, only coding) */
#define GH_H1_F_CONN_CLOSE 0x0002      /* Connection: close */
#define GH_H1_F_CONN_KEEPALIVE 0x0004  /* Connection: keep-alive */
#define GH_H1_F_CONN_UPGRADE 0x0008    /* Connection: upgrade */
#define GH_H1_F_EXPECT_CONTINUE 0x0010 /* Expect: 100-continue */
#define GH_H1_F_HAS_CL 0x0020          /* a (valid) Content-Length was present */
#define GH_H1_F_CONN_OTHER 0x0040 /* Connection names other header(s): caller must strip them */
#define GH_H1_F_UPGRADE 0x0080    /* an Upgrade header is present */

/* How a message body is delimited (RFC 9112 §6.3). */
enum gh_h1_body {
    GH_H1_BODY_NONE = 0, /* no body (HEAD, 1xx, 204, 304, or none declared in a request) */
    GH_H1_BODY_LENGTH,   /* Content-Length */
    GH_H1_BODY_CHUNKED,  /* Transfer-Encoding: chunked */
    GH_H1_BODY_CLOSE,    /* a response read until the connection closes */
};

/* Limits applied while parsing; exceeding one is an error with the given status. */
struct gh_h1_limits {
    uint32_t max_request_line; /* request line incl. CRLF; over it: 414 (responses: 502) */
    uint32_t max_header_line;  /* one field line incl. CRLF; over it: 431 */
    uint32_t max_headers;      /* field count; over it: 431 (also capped by the array given) */
    uint32_t max_head_size;    /* whole head incl. final CRLF; over it: 431 */
};

/* Why a message was rejected: the status to answer with, where, and why (for the log). */
struct gh_h1_error {
    int status;         /* 400, 414, 431, 501, 505 for requests; 502 for responses */
    uint32_t offset;    /* byte offset in the buffer where the problem was found */
    const char *reason; /* static string, e.g. "Content-Length with Transfer-Encoding" */
};

struct gh_h1_request {
    const char *method;
    const char *target;
    uint32_t method_len;
    uint32_t target_len;
    uint8_t method_id;      /* enum gh_h1_method */
    uint8_t target_form;    /* enum gh_h1_target_form */
    uint8_t version;        /* 10 for HTTP/1.0, 11 for HTTP/1.1 */
    uint16_t flags;         /* GH_H1_F_* */
    int64_t content_length; /* -1 when absent */
    /* The Host header's value (NULL when absent). For absolute-form targets
     * the authority of the target is in target; the caller decides. */
    const char *host;
    uint32_t host_len;
    uint32_t head_len;            /* bytes of the head including the final CRLF */
    struct gh_h1_header *headers; /* in: array given by caller */
    uint32_t max_headers;         /* in: capacity of headers */
    uint32_t num_headers;         /* out */
    struct gh_h1_error err;
};

struct gh_h1_response {
    const char *reason;
    uint32_t reason_len;
    uint16_t status;
    uint8_t version;        /* 10 or 11 */
    uint16_t flags;         /* GH_H1_F_* */
    int64_t content_length; /* -1 when absent */
    uint32_t head_len;
    struct gh_h1_header *headers;
    uint32_t max_headers;
    uint32_t num_headers;
    struct gh_h1_error err;
};

/*
 * Parse a request head from buf[0..len).
 * Before the call set req->headers and req->max_headers.
 * Returns the head length (> 0) when complete; GH_INCOMPLETE when more bytes are
 * needed (limits are still enforced on what has arrived, so an endless line fails
 * early); GH_BAD with req->err filled in otherwise.
 *
 * Rejected (GH_BAD), with status:
 *  400  bare CR or LF where CRLF is required, obs-fold, whitespace before ':', empty or
 *       invalid token byte in a field name or method, invalid byte (CTL other than HTAB,
 *       or DEL) in a value or target, both Content-Length and Transfer-Encoding,
 *       differing or malformed Content-Length (including lists "5, 5"? accepted only
 *       if all members equal, per RFC 9110 §8.6), Transfer-Encoding not ending in
 *       a single final "chunked" (also "chunked, chunked"), Host missing in 1.1,
 *       more than one Host, target form not allowed for the method (authority-form
 *       without CONNECT, asterisk-form without OPTIONS), leading whitespace/empty
 *       lines after the first CRLF-led line (one leading CRLF before the request line
 *       is tolerated as RFC 9112 §2.2 allows), more than one SP between parts.
 *  501  Transfer-Encoding with a coding other than chunked (e.g. gzip, chunked): we
 *       do not implement it.
 *  505  HTTP version other than 1.0 / 1.1 (well-formed "HTTP/x.y"); malformed version: 400.
 *  414  request line longer than limits->max_request_line.
 *  431  a field line longer than max_header_line, more fields than max_headers or
 *       the array, or a head longer than max_head_size.
 * HTTP/1.0: Transfer-Encoding in a 1.0 request is rejected (400; RFC 9112 §6.1
 * says it must be treated as faulty framing). Keep-alive is only via Connection.
 */
int gh_h1_parse_request(const char *buf, size_t len, struct gh_h1_request *req,
                        const struct gh_h1_limits *lim);

/*
 * Parse a response head (status line + fields) from buf[0..len).
 * Same contract as gh_h1_parse_request; errors always carry status 502.
 * Checks: "HTTP/1.x SP 3DIGIT SP reason CRLF" (reason may be empty, the SP is
 * required by RFC 9112 but a missing SP before an empty reason is tolerated),
 * same field rules as requests, CL+TE rejected, bad/differing CL rejected,
 * TE other than final chunked rejected. 1xx responses are parsed like others;
 * the caller handles them.
 */
int gh_h1_parse_response(const char *buf, size_t len, struct gh_h1_response *resp,
                         const struct gh_h1_limits *lim);

/*
 * Incremental chunked-body decoder (RFC 9112 §7.1). Chunk extensions are
 * validated and dropped; trailer fields are validated and dropped.
 */
struct gh_h1_chunked {
    uint64_t remaining; /* data bytes left in the current chunk */
    uint32_t state;     /* internal */
    uint32_t line_len;  /* bytes of the current size/extension/trailer line so far */
    uint32_t trailer_bytes;
    uint32_t max_line;     /* limit for a chunk-size line / trailer line (default 4096 if 0) */
    uint32_t max_trailers; /* limit for the whole trailer section (default 8192 if 0) */
    const char *reason;    /* on GH_BAD */
};

/* Start decoding a new body. */
void gh_h1_chunked_init(struct gh_h1_chunked *c);

/*
 * Decode from buf[0..len). On return *consumed bytes of the input are used up.
 * Returns:
 *   1             a data span: *data / *data_len point into buf (data_len > 0);
 *                 call again with buf + *consumed for more
 *   0             the body is complete (last chunk and trailers consumed)
 *   GH_INCOMPLETE all input consumed (*consumed == len), need more bytes
 *   GH_BAD        malformed: c->reason says why (bad hex, size overflow past
 *                 2^63, missing CRLF after data, bare LF, line too long, ...)
 * State persists across calls so a body may arrive in any split.
 */
int gh_h1_chunked_decode(struct gh_h1_chunked *c, const char *buf, size_t len, size_t *consumed,
                         const char **data, size_t *data_len);

/*
 * Decode chunked input buf[*used..lim) into up to max data spans (pointing
 * into buf): the loop of gh_h1_chunked_decode that a relay wants. Stops when
 * the input runs out, when max spans are filled, or at the end of the body
 * (*done = 1). *used advances past what was decoded, *nspans is set, and
 * *data_bytes grows by the data seen. Returns 0, or GH_BAD with c->reason set.
 */
struct iovec;
int gh_h1_chunked_spans(struct gh_h1_chunked *c, const char *buf, size_t *used, size_t lim,
                        struct iovec *spans, int max, int *nspans, uint64_t *data_bytes, int *done);

/* Map method text to enum gh_h1_method. */
int gh_h1_method_id(const char *m, size_t len);

/* Map a header name to enum gh_hdr_id (case-insensitive); GH_HDR_OTHER if not known. */
int gh_h1_header_id(const char *name, size_t len);

/*
 * Does a comma-separated header value (e.g. Connection) contain token tok
 * (case-insensitive, OWS around members ignored)? Returns 1 or 0.
 */
int gh_h1_list_has_token(const char *value, size_t len, const char *tok, size_t tok_len);

/* Reason phrase for a status code ("OK", "Bad Gateway"...); "" if unknown. */
const char *gh_h1_reason(int status);

#endif
