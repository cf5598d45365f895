/*
 * h1.c - strict, zero-copy HTTP/1.1 head parser and chunked decoder
 * (RFC 9110, RFC 9112). The contract is in h1.h.
 *
 * How the head parser works. Every line is scanned left to right exactly once
 * by a tight loop over a 256-entry class table (with SSE2 fast paths for
 * field names, field values and request-targets), stopping at the first byte that does not
 * belong; what that byte is decides what happens next. Because decisions only
 * ever depend on bytes already scanned, a prefix of a message either yields
 * GH_INCOMPLETE or exactly the verdict the whole message gets: the parser can
 * be re-run from the start on a growing buffer (picohttpparser style).
 *
 * Limits are expressed as "no byte of this line / of this head may sit at or
 * past index X": a scan never looks past min(len, line end, head end), and
 * needing a byte past a limit is an error even when the buffer is short, so an
 * endless line fails as soon as it crosses the limit.
 *
 * Fast paths (each says where it is why its answer is the slow path's): well-
 * known field names are matched by first byte and word compares before any
 * scan; "GET " and "HTTP/1.1" are compared whole; a status code of three
 * digits is read at once; the request-target scan notes a '#' as it goes;
 * host names are classified 16 bytes at a time; a Content-Length of up to 18
 * digits skips the overflow checks. Every one of them either yields exactly
 * what the general code would or hands over to it, so no verdict, status,
 * offset or reason changes.
 *
 * Choices the contract leaves open, made here on the strict side:
 *  - Transfer-Encoding: "chunked" not last (including "gzip" alone and
 *    "chunked, gzip") is 400 (RFC 9112 §6.3); "chunked" twice is 400; any other
 *    coding before a single final "chunked" is 501; codings with parameters
 *    ("chunked;x=1") are malformed, 400. Empty list members are skipped.
 *  - Host, the authority of an absolute-form target and CONNECT's target are
 *    checked as RFC 3986 authorities without userinfo: reg-name / IPv4 /
 *    [IP-literal] characters, optional port of at most 65535 (CONNECT: required,
 *    1..65535). Only http and https absolute-form targets are accepted; a
 *    fragment ('#') in a target is rejected.
 *  - Connection members must be tokens (400 otherwise).
 *  - Content-Length lists must be non-empty members of identical value; values
 *    must be below 2^62.
 *  - Responses: no leading CRLF is tolerated before the status line; status-line
 *    errors, limits and field errors all answer 502.
 */
#include "http/h1.h"

#include <string.h>
#include <sys/uio.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Content-Length values must be below this (2^62): no overflow anywhere downstream. */
#define CL_LIMIT ((int64_t)1 << 62)
/* A head may never be longer than what the int return value can carry. */
#define HEAD_HARD_MAX ((size_t)INT32_MAX)
/*
 * "No line limit". Any line limit past HEAD_HARD_MAX is clamped to this: a line
 * starts below head_max <= HEAD_HARD_MAX, so its end ls + NO_LIMIT lies past
 * head_max whatever ls is (the head limit always wins, exactly as with no line
 * limit at all), and ls + NO_LIMIT cannot overflow. Line ends are plain sums.
 */
#define NO_LIMIT (HEAD_HARD_MAX + 1)

/* RFC 9110 §5.6.2 tchar. */
static const uint8_t tchar_tab[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1,         ['&'] = 1,         ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,         ['^'] = 1,         ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

/* RFC 9110 §5.5 field-vchar / SP / HTAB (obs-text included; CTLs and DEL are not). */
static const uint8_t value_tab[256] = {
    ['\t'] = 1,
    [' ' ... '~'] = 1,
    [0x80 ... 0xff] = 1,
};

/*
 * request-target bytes: visible ASCII only (RFC 3986 characters are a subset).
 * '#' is allowed here but marked 2 so scan_target can report a fragment.
 */
static const uint8_t target_tab[256] = {
    ['!' ... '"'] = 1,
    ['#'] = 2,
    ['$' ... '~'] = 1,
};

/* RFC 3986 authority without userinfo: host (reg-name, IPv4, IP-literal) and port. */
static const uint8_t host_tab[256] = {
    ['!'] = 1, ['$'] = 1,         ['%'] = 1,         ['&'] = 1,         ['\''] = 1, ['('] = 1,
    [')'] = 1, ['*'] = 1,         ['+'] = 1,         [','] = 1,         ['-'] = 1,  ['.'] = 1,
    [':'] = 1, [';'] = 1,         ['='] = 1,         ['['] = 1,         [']'] = 1,  ['_'] = 1,
    ['~'] = 1, ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

/* host_tab without '[', ']' and ':': the bytes of a reg-name or IPv4address host. */
static const uint8_t reg_host_tab[256] = {
    ['!'] = 1, ['$'] = 1,         ['%'] = 1,         ['&'] = 1,         ['\''] = 1,
    ['('] = 1, [')'] = 1,         ['*'] = 1,         ['+'] = 1,         [','] = 1,
    ['-'] = 1, ['.'] = 1,         [';'] = 1,         ['='] = 1,         ['_'] = 1,
    ['~'] = 1, ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

/* RFC 3986 §3.1 scheme characters after the first ALPHA. */
static const uint8_t scheme_tab[256] = {
    ['+'] = 1, ['-'] = 1, ['.'] = 1, ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

/* HEXDIG value + 1; 0 means "not a hex digit". */
static const uint8_t hex_tab[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

static inline int
is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static inline int
is_digit(unsigned char c)
{
    return (unsigned)(c - '0') < 10u;
}

/* A line limit from the configuration: 0 means none; see NO_LIMIT for the clamp. */
static inline size_t
line_limit(uint32_t configured)
{
    return configured == 0 || configured > NO_LIMIT ? NO_LIMIT : configured;
}

/* Compare s[0..n) case-insensitively with lower-case literal lit. */
static inline int
lit_eq(const char *s, const char *lit, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (gh_lower((unsigned char)s[i]) != (unsigned char)lit[i])
            return 0;
    return 1;
}

/*
 * Bytes of s differing from literal lit, 8, 4 or 2 at a time, ignoring ASCII
 * case where lit has a letter. lit is lower-case letters, which have bit 6 set,
 * and digits or '-', which have not. (lit >> 1) & 0x20.. therefore puts
 * 0x20 exactly on the letter bytes, and (c | 0x20) == l holds just for c == l
 * and c == l - 0x20, its upper case: what gh_lower() equality accepts. On a
 * digit or '-' byte only that byte itself matches (so "\r" cannot pass for '-').
 */
static inline uint64_t
name_diff8(const char *s, const char *lit)
{
    uint64_t a, l;
    memcpy(&a, s, 8);
    memcpy(&l, lit, 8);
    return (a | ((l >> 1) & 0x2020202020202020u)) ^ l;
}

static inline uint32_t
name_diff4(const char *s, const char *lit)
{
    uint32_t a, l;
    memcpy(&a, s, 4);
    memcpy(&l, lit, 4);
    return (a | ((l >> 1) & 0x20202020u)) ^ l;
}

static inline uint32_t
name_diff2(const char *s, const char *lit)
{
    uint16_t a, l;
    memcpy(&a, s, 2);
    memcpy(&l, lit, 2);
    return (uint32_t)((a | ((l >> 1) & 0x2020u)) ^ l);
}

/*
 * Case-insensitive s[0..n) == lit for a literal of length n >= 2 as above
 * (see name_diff8), with a few overlapping word compares instead of a byte loop;
 * no load strays outside s[0..n) or lit[0..n).
 */
static inline int
name_eq(const char *s, const char *lit, size_t n)
{
    if (n >= 8) {
        uint64_t d = name_diff8(s + n - 8, lit + n - 8);
        for (size_t i = 0; i + 8 < n; i += 8)
            d |= name_diff8(s + i, lit + i);
        return d == 0;
    }
    if (n >= 4)
        return (name_diff4(s, lit) | name_diff4(s + n - 4, lit + n - 4)) == 0;
    return (name_diff2(s, lit) | name_diff2(s + n - 2, lit + n - 2)) == 0;
}

/* gh_h1_header_id, inlined into the field loop: one length switch, then word compares. */
static inline int
header_id(const char *name, size_t len)
{
#define IS(lit) name_eq(name, lit, sizeof(lit) - 1)
    switch (len) {
    case 2:
        return IS("te") ? GH_HDR_TE : GH_HDR_OTHER;
    case 3:
        return IS("via") ? GH_HDR_VIA : GH_HDR_OTHER;
    case 4:
        return IS("host") ? GH_HDR_HOST : IS("date") ? GH_HDR_DATE : GH_HDR_OTHER;
    case 6:
        return IS("expect") ? GH_HDR_EXPECT : IS("server") ? GH_HDR_SERVER : GH_HDR_OTHER;
    case 7:
        return IS("upgrade") ? GH_HDR_UPGRADE : IS("trailer") ? GH_HDR_TRAILER : GH_HDR_OTHER;
    case 9:
        return IS("forwarded") ? GH_HDR_FORWARDED : GH_HDR_OTHER;
    case 10:
        return IS("connection")   ? GH_HDR_CONNECTION
               : IS("keep-alive") ? GH_HDR_KEEP_ALIVE
                                  : GH_HDR_OTHER;
    case 14:
        return IS("content-length") ? GH_HDR_CONTENT_LENGTH : GH_HDR_OTHER;
    case 15:
        return IS("x-forwarded-for") ? GH_HDR_X_FORWARDED_FOR : GH_HDR_OTHER;
    case 16:
        return IS("proxy-connection")   ? GH_HDR_PROXY_CONNECTION
               : IS("x-forwarded-host") ? GH_HDR_X_FORWARDED_HOST
                                        : GH_HDR_OTHER;
    case 17:
        return IS("transfer-encoding")   ? GH_HDR_TRANSFER_ENCODING
               : IS("x-forwarded-proto") ? GH_HDR_X_FORWARDED_PROTO
                                         : GH_HDR_OTHER;
    case 18:
        return IS("proxy-authenticate") ? GH_HDR_PROXY_AUTHENTICATE : GH_HDR_OTHER;
    case 19:
        return IS("proxy-authorization") ? GH_HDR_PROXY_AUTHORIZATION : GH_HDR_OTHER;
    default:
        return GH_HDR_OTHER;
    }
#undef IS
}

/*
 * Fast path of the field loop for the well-known names: guess the name from the
 * line's first byte and check the line starts with exactly it and ':'. Every byte
 * of a known name is a tchar, so on a match the name scan would have stopped at
 * that ':' and header_id() would have given the same id: the line's name length
 * and id are known without scanning. s has avail bytes. Returns the id and sets
 * *len, or returns GH_HDR_OTHER (then the caller scans; nothing is decided here).
 */
static inline int
known_name(const char *s, size_t avail, size_t *len)
{
#define TRY(lit, id)                                                                               \
    do {                                                                                           \
        if (sizeof(lit) - 1 < avail && s[sizeof(lit) - 1] == ':' &&                                \
            name_eq(s, lit, sizeof(lit) - 1)) {                                                    \
            *len = sizeof(lit) - 1;                                                                \
            return id;                                                                             \
        }                                                                                          \
    } while (0)
    switch (s[0] | 0x20) {
    case 'c':
        TRY("content-length", GH_HDR_CONTENT_LENGTH);
        TRY("connection", GH_HDR_CONNECTION);
        break;
    case 'd':
        TRY("date", GH_HDR_DATE);
        break;
    case 'e':
        TRY("expect", GH_HDR_EXPECT);
        break;
    case 'f':
        TRY("forwarded", GH_HDR_FORWARDED);
        break;
    case 'h':
        TRY("host", GH_HDR_HOST);
        break;
    case 'k':
        TRY("keep-alive", GH_HDR_KEEP_ALIVE);
        break;
    case 'p':
        TRY("proxy-connection", GH_HDR_PROXY_CONNECTION);
        TRY("proxy-authorization", GH_HDR_PROXY_AUTHORIZATION);
        TRY("proxy-authenticate", GH_HDR_PROXY_AUTHENTICATE);
        break;
    case 's':
        TRY("server", GH_HDR_SERVER);
        break;
    case 't':
        TRY("transfer-encoding", GH_HDR_TRANSFER_ENCODING);
        TRY("te", GH_HDR_TE);
        TRY("trailer", GH_HDR_TRAILER);
        break;
    case 'u':
        TRY("upgrade", GH_HDR_UPGRADE);
        break;
    case 'v':
        TRY("via", GH_HDR_VIA);
        break;
    case 'x':
        TRY("x-forwarded-for", GH_HDR_X_FORWARDED_FOR);
        TRY("x-forwarded-proto", GH_HDR_X_FORWARDED_PROTO);
        TRY("x-forwarded-host", GH_HDR_X_FORWARDED_HOST);
        break;
    }
    return GH_HDR_OTHER;
#undef TRY
}

/* ---- scanners: return the index of the first byte in [p, end) not in the class, or end ---- */

static inline size_t
scan_token(const char *buf, size_t p, size_t end)
{
    while (p < end && tchar_tab[(unsigned char)buf[p]])
        p++;
    return p;
}

#ifdef __SSE2__
/* Bit i set when byte i of v is an ASCII letter, a digit or `extra`. */
static inline unsigned
alnum_mask(__m128i v, char extra)
{
    /* v | 0x20 lands in 'a'..'z' exactly for ASCII letters (signed compares keep >= 0x80 out) */
    __m128i lc = _mm_or_si128(v, _mm_set1_epi8(0x20));
    __m128i ok = _mm_and_si128(_mm_cmpgt_epi8(lc, _mm_set1_epi8('a' - 1)),
                               _mm_cmplt_epi8(lc, _mm_set1_epi8('z' + 1)));
    ok = _mm_or_si128(ok, _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                        _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1))));
    ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, _mm_set1_epi8(extra)));
    return (unsigned)_mm_movemask_epi8(ok);
}
#endif

/*
 * Field names: almost always ALPHA / DIGIT / "-", which SSE2 can classify 16
 * bytes at a time; the table loop takes over at the first other byte (the
 * colon, usually) so the result is exactly scan_token's.
 */
static inline size_t
scan_name(const char *buf, size_t p, size_t end)
{
#ifdef __SSE2__
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(buf + p));
        unsigned m = ~alnum_mask(v, '-') & 0xffffu;
        if (m != 0)
            return scan_token(buf, p + (size_t)__builtin_ctz(m), end);
        p += 16;
    }
#endif
    return scan_token(buf, p, end);
}

static inline size_t
scan_value(const char *buf, size_t p, size_t end)
{
#ifdef __SSE2__
    const __m128i c1f = _mm_set1_epi8(0x1f), ht = _mm_set1_epi8('\t'), del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(buf + p));
        /* bad = (v <= 0x1f unsigned, except HTAB) | v == DEL */
        __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, c1f), v);
        ctl = _mm_andnot_si128(_mm_cmpeq_epi8(v, ht), ctl);
        ctl = _mm_or_si128(ctl, _mm_cmpeq_epi8(v, del));
        unsigned m = (unsigned)_mm_movemask_epi8(ctl);
        if (m != 0)
            return p + (size_t)__builtin_ctz(m);
        p += 16;
    }
#endif
    while (p < end && value_tab[(unsigned char)buf[p]])
        p++;
    return p;
}

/*
 * Like the other scanners; also sets *fragment nonzero when a '#' is among the
 * bytes scanned (those before the returned index), so the target needs no
 * second pass to find one.
 */
static inline size_t
scan_target(const char *buf, size_t p, size_t end, unsigned *fragment)
{
    unsigned seen = 0, k;

#ifdef __SSE2__
    const __m128i sp = _mm_set1_epi8(0x20), tilde = _mm_set1_epi8(0x7e), hash = _mm_set1_epi8('#');
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(buf + p));
        /* bad = v <= 0x20 | v > 0x7e (unsigned) */
        __m128i lo = _mm_cmpeq_epi8(_mm_min_epu8(v, sp), v);
        __m128i hi = _mm_xor_si128(_mm_cmpeq_epi8(_mm_min_epu8(v, tilde), v), _mm_set1_epi8(-1));
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(lo, hi));
        unsigned h = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, hash));
        if (m != 0) {
            /* only the '#' bytes before the first bad one belong to the target */
            *fragment = seen | (h & ((m & -m) - 1));
            return p + (size_t)__builtin_ctz(m);
        }
        seen |= h;
        p += 16;
    }
#endif
    while (p < end && (k = target_tab[(unsigned char)buf[p]]) != 0) {
        seen |= k & 2;
        p++;
    }
    *fragment = seen;
    return p;
}

/* ---- head parsing context shared by requests and responses ---- */

struct head {
    const char *buf;
    size_t len;      /* bytes available */
    size_t head_max; /* no head byte may sit at this index or later */
    size_t avail;    /* min(len, head_max): no scan reads at or past it */
    size_t line_max; /* max bytes of a field line incl. CRLF (NO_LIMIT: none) */
    struct gh_h1_header *hdrs;
    uint32_t cap; /* min(array capacity, limits->max_headers) */
    uint32_t n;
    int is_response;
    uint8_t version;
    uint16_t flags;
    int64_t content_length;
    const char *host;
    uint32_t host_len;
    uint32_t host_count;
    /* Transfer-Encoding codings across all TE field lines, in order. */
    uint32_t te_count;   /* TE field lines seen */
    uint32_t te_offset;  /* value offset of the first one, for errors */
    uint32_t te_chunked; /* "chunked" members */
    uint32_t te_other;   /* other members */
    int te_last_chunked; /* last member seen is "chunked" */
    struct gh_h1_error *err;
};

static int
fail(struct head *h, int status, size_t off, const char *reason)
{
    h->err->status = h->is_response ? 502 : status;
    h->err->offset = (uint32_t)off;
    h->err->reason = reason;
    return GH_BAD;
}

/*
 * The scan of a line needs byte i, which is at or past min(len, lend, head_max).
 * Past a limit it is an error (the smaller limit wins), otherwise more input.
 */
static int
need(struct head *h, size_t i, size_t ls, size_t lend, int status, const char *reason)
{
    if (i >= lend && lend <= h->head_max)
        return fail(h, status, ls, reason);
    if (i >= h->head_max)
        return fail(h, 431, i, "message head too large");
    return GH_INCOMPLETE;
}

/*
 * Index of the first byte of s[0..n) outside reg_host_tab, or n; s[0..readable)
 * may be read (readable >= n). Host names and IPv4 addresses are ALPHA / DIGIT /
 * "-" / "." in practice (all in the table), which SSE2 classifies 16 bytes at a
 * time while 16 can be read; the table walk takes over at the first other byte,
 * so the result is exactly the table walk's.
 */
static inline size_t
scan_reg_host(const char *s, size_t n, size_t readable)
{
    size_t i = 0;

#ifdef __SSE2__
    while (i < n && readable - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        unsigned m = ~(alnum_mask(v, '-') |
                       (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('.')))) &
                     0xffffu;
        if (m != 0) {
            i += (size_t)__builtin_ctz(m);
            break;
        }
        i += 16;
    }
    if (i > n) /* the bytes past n were host bytes too; they are not ours */
        i = n;
#else
    (void)readable;
#endif
    while (i < n && reg_host_tab[(unsigned char)s[i]])
        i++;
    return i;
}

/*
 * Authority (RFC 3986 §3.2.2-3, no userinfo): host [":" port]. IP-literal in
 * brackets; the port, when present, is at most 65535. need_port: CONNECT's
 * authority-form, where ":port" is mandatory and not empty. s[0..readable) lies
 * in the caller's buffer (readable >= n), which lets the host scan go 16 bytes
 * at a time; only s[0..n) decides.
 */
static int
valid_authority(const char *s, size_t n, size_t readable, int need_port)
{
    size_t i = 0;

    if (n == 0)
        return 0;
    if (s[0] == '[') {
        for (i = 1; i < n && s[i] != ']'; i++)
            if (!host_tab[(unsigned char)s[i]] || s[i] == '[')
                return 0;
        if (i == n || i < 3)
            return 0;
        i++;
    } else {
        /* reg-name / IPv4: up to the first ':'; any other byte outside the table is invalid */
        i = scan_reg_host(s, n, readable);
        if (i == 0 || (i < n && s[i] != ':'))
            return 0;
    }
    if (i == n)
        return !need_port;
    if (s[i++] != ':')
        return 0;
    if (n - i > 5 || (need_port && i == n))
        return 0;
    uint32_t port = 0;
    for (; i < n; i++) {
        uint32_t d = (unsigned char)s[i] - (uint32_t)'0';
        if (d > 9)
            return 0;
        port = port * 10 + d;
    }
    return port <= 65535 && (!need_port || port > 0);
}

/*
 * Content-Length = 1*DIGIT, or a list of identical values (RFC 9110 §8.6).
 * Returns the value, or -1 when malformed, differing or too large.
 */
static int64_t
parse_content_length(const char *v, size_t n)
{
    int64_t first = -1;
    size_t i = 0;

    /*
     * Fast path, the usual case: a single value of 1 to 18 digits. It cannot
     * reach CL_LIMIT (10^18 - 1 < 2^62), so the overflow checks below would
     * never fire; anything else falls through to the full parse.
     */
    if (n - 1 < 18) {
        uint64_t x = 0;
        for (; i < n; i++) {
            unsigned d = (unsigned char)v[i] - (unsigned)'0';
            if (d > 9)
                break;
            x = x * 10 + d;
        }
        if (i == n)
            return (int64_t)x;
        i = 0;
    }
    for (;;) {
        size_t d = i;
        int64_t x = 0;
        while (i < n && is_digit((unsigned char)v[i])) {
            if (x > (CL_LIMIT - 1) / 10)
                return -1;
            x = x * 10 + (v[i++] - '0');
            if (x >= CL_LIMIT)
                return -1;
        }
        if (i == d || (first >= 0 && x != first))
            return -1;
        first = x;
        while (i < n && is_ows((unsigned char)v[i]))
            i++;
        if (i == n)
            return first;
        if (v[i++] != ',')
            return -1;
        while (i < n && is_ows((unsigned char)v[i]))
            i++;
    }
}

static int
on_content_length(struct head *h, const struct gh_h1_header *f)
{
    size_t off = (size_t)(f->value - h->buf);
    int64_t cl = parse_content_length(f->value, f->value_len);

    if (cl < 0)
        return fail(h, 400, off, "invalid Content-Length");
    if ((h->flags & GH_H1_F_HAS_CL) && cl != h->content_length)
        return fail(h, 400, off, "differing Content-Length values");
    h->content_length = cl;
    h->flags |= GH_H1_F_HAS_CL;
    return 0;
}

/*
 * Walk the members of a comma-separated list (RFC 9110 §5.6.1), skipping empty
 * ones. Each call returns the next member trimmed, or 0 when there is none.
 */
static int
next_member(const char *v, size_t n, size_t *pos, const char **m, size_t *mlen)
{
    size_t i = *pos;

    while (i < n && (is_ows((unsigned char)v[i]) || v[i] == ','))
        i++;
    if (i == n) {
        *pos = i;
        return 0;
    }
    size_t s = i;
    while (i < n && v[i] != ',')
        i++;
    size_t e = i;
    while (e > s && is_ows((unsigned char)v[e - 1]))
        e--;
    *pos = i;
    *m = v + s;
    *mlen = e - s;
    return 1;
}

static int
is_token(const char *s, size_t n)
{
    return n > 0 && scan_token(s, 0, n) == n;
}

static int
on_transfer_encoding(struct head *h, const struct gh_h1_header *f)
{
    size_t off = (size_t)(f->value - h->buf), pos = 0, mlen, members = 0;
    const char *m;

    if (h->te_count++ == 0)
        h->te_offset = (uint32_t)off;
    while (next_member(f->value, f->value_len, &pos, &m, &mlen)) {
        /* transfer-parameters are not accepted: chunked has none, others are refused anyway */
        if (!is_token(m, mlen))
            return fail(h, 400, (size_t)(m - h->buf), "malformed Transfer-Encoding");
        members++;
        h->te_last_chunked = mlen == 7 && name_eq(m, "chunked", 7);
        if (h->te_last_chunked)
            h->te_chunked++;
        else
            h->te_other++;
    }
    if (members == 0)
        return fail(h, 400, off, "empty Transfer-Encoding");
    return 0;
}

static int
on_host(struct head *h, const struct gh_h1_header *f)
{
    size_t off = (size_t)(f->value - h->buf);

    if (++h->host_count > 1)
        return fail(h, 400, off, "more than one Host");
    /* RFC 9110 §7.2: an empty Host is allowed (target without authority) */
    if (f->value_len > 0 &&
        !valid_authority(f->value, f->value_len, h->len - (size_t)(f->value - h->buf), 0))
        return fail(h, 400, off, "invalid Host");
    h->host = f->value;
    h->host_len = f->value_len;
    return 0;
}

static int
on_connection(struct head *h, const struct gh_h1_header *f)
{
    size_t pos = 0, mlen;
    const char *m;

    while (next_member(f->value, f->value_len, &pos, &m, &mlen)) {
        if (!is_token(m, mlen))
            return fail(h, 400, (size_t)(m - h->buf), "malformed Connection");
        if (mlen == 5 && name_eq(m, "close", 5))
            h->flags |= GH_H1_F_CONN_CLOSE;
        else if (mlen == 10 && name_eq(m, "keep-alive", 10))
            h->flags |= GH_H1_F_CONN_KEEPALIVE;
        else if (mlen == 7 && name_eq(m, "upgrade", 7))
            h->flags |= GH_H1_F_CONN_UPGRADE;
        else
            h->flags |= GH_H1_F_CONN_OTHER;
    }
    return 0;
}

/* Semantics of the fields that matter for framing and connection handling. */
static int
on_field(struct head *h, const struct gh_h1_header *f)
{
    switch (f->id) {
    case GH_HDR_CONTENT_LENGTH:
        return on_content_length(h, f);
    case GH_HDR_TRANSFER_ENCODING:
        return on_transfer_encoding(h, f);
    case GH_HDR_HOST:
        return h->is_response ? 0 : on_host(h, f);
    case GH_HDR_CONNECTION:
        return on_connection(h, f);
    case GH_HDR_EXPECT:
        if (!h->is_response && f->value_len == 12 && name_eq(f->value, "100-continue", 12))
            h->flags |= GH_H1_F_EXPECT_CONTINUE;
        return 0;
    case GH_HDR_UPGRADE:
        h->flags |= GH_H1_F_UPGRADE;
        return 0;
    default:
        return 0;
    }
}

/*
 * Parse field lines from p up to and including the empty line (RFC 9112 §5).
 * Returns the head length, GH_INCOMPLETE or GH_BAD.
 */
static int
parse_fields(struct head *h, size_t p)
{
    /* locals, so the stores into the header array need not reload them */
    const char *buf = h->buf;
    const size_t avail = h->avail, line_max = h->line_max;
    struct gh_h1_header *hdrs = h->hdrs;
    const uint32_t cap = h->cap;
    uint32_t n = h->n;

    for (;;) {
        size_t ls = p, lend = ls + line_max;
        size_t end = lend < avail ? lend : avail;

        if (p >= end)
            return need(h, p, ls, lend, 431, "header line too long");
        unsigned char c = (unsigned char)buf[p];
        /* a field name starts with a tchar, which is none of the bytes tested here */
        if (!tchar_tab[c]) {
            if (c == '\r') {
                if (p + 1 >= end)
                    return need(h, p + 1, ls, lend, 431, "header line too long");
                if (buf[p + 1] != '\n')
                    return fail(h, 400, p + 1, "bare CR");
                return (int)(p + 2);
            }
            if (c == '\n')
                return fail(h, 400, p, "bare LF");
            if (is_ows(c))
                return fail(h, 400, p, n ? "obs-fold" : "whitespace before first field line");
        }
        if (n >= cap)
            return fail(h, 431, p, "too many header fields");

        size_t name_len;
        uint32_t id = (uint32_t)known_name(buf + p, end - p, &name_len);
        if (id != GH_HDR_OTHER) {
            p += name_len;
        } else {
            p = scan_name(buf, p, end);
            if (p >= end)
                return need(h, p, ls, lend, 431, "header line too long");
            if (buf[p] != ':') {
                c = (unsigned char)buf[p];
                if (is_ows(c))
                    return fail(h, 400, p, "whitespace before colon");
                if (c == '\r' || c == '\n')
                    return fail(h, 400, p, "field line without colon");
                return fail(h, 400, p, "invalid byte in field name");
            }
            if (p == ls)
                return fail(h, 400, p, "empty field name");
            name_len = p - ls;
            id = (uint32_t)header_id(buf + ls, name_len);
        }
        p++;
        while (p < end && is_ows((unsigned char)buf[p]))
            p++;
        size_t v0 = p;
        p = scan_value(buf, p, end);
        if (p >= end)
            return need(h, p, ls, lend, 431, "header line too long");
        if (buf[p] != '\r')
            return fail(h, 400, p, buf[p] == '\n' ? "bare LF" : "invalid byte in field value");
        if (p + 1 >= end)
            return need(h, p + 1, ls, lend, 431, "header line too long");
        if (buf[p + 1] != '\n')
            return fail(h, 400, p + 1, "bare CR");
        /* the value holds no CTL but HTAB (scan_value), so "<= SP" is OWS here */
        size_t v1 = p;
        while (v1 > v0 && (unsigned char)buf[v1 - 1] <= ' ')
            v1--;

        struct gh_h1_header *f = &hdrs[n];
        f->name = buf + ls;
        f->name_len = (uint32_t)name_len;
        f->value = buf + v0;
        f->value_len = (uint32_t)(v1 - v0);
        f->id = id;
        h->n = ++n;
        if (id != GH_HDR_OTHER) {
            int r = on_field(h, f);
            if (r != 0)
                return r;
        }
        p += 2;
    }
}

/* RFC 9112 §6.1-6.3: the framing checks that need the whole head. */
static int
check_framing(struct head *h)
{
    if (h->te_count == 0)
        return 0;
    if (h->version == 10)
        return fail(h, 400, h->te_offset, "Transfer-Encoding in HTTP/1.0 message");
    if (h->flags & GH_H1_F_HAS_CL)
        return fail(h, 400, h->te_offset, "Content-Length with Transfer-Encoding");
    if (!h->te_last_chunked)
        return fail(h, 400, h->te_offset, "Transfer-Encoding does not end in chunked");
    if (h->te_chunked > 1)
        return fail(h, 400, h->te_offset, "chunked applied more than once");
    if (h->te_other)
        return fail(h, 501, h->te_offset, "unsupported transfer coding");
    h->flags |= GH_H1_F_CHUNKED;
    return 0;
}

static inline void
head_init(struct head *h, const char *buf, size_t len, struct gh_h1_header *hdrs,
          uint32_t max_headers, const struct gh_h1_limits *lim, struct gh_h1_error *err)
{
    GH_ASSERT(hdrs != NULL || max_headers == 0);
    h->buf = buf;
    h->len = len;
    h->head_max = HEAD_HARD_MAX;
    h->line_max = NO_LIMIT;
    h->hdrs = hdrs;
    h->cap = max_headers;
    h->n = 0;
    h->is_response = 0;
    h->version = 0;
    h->flags = 0;
    h->content_length = -1;
    h->host = NULL;
    h->host_len = 0;
    h->host_count = 0;
    h->te_count = 0;
    h->te_offset = 0;
    h->te_chunked = 0;
    h->te_other = 0;
    h->te_last_chunked = 0;
    h->err = err;
    err->status = 0;
    err->offset = 0;
    err->reason = NULL;
    if (lim != NULL) {
        if (lim->max_head_size != 0 && lim->max_head_size < h->head_max)
            h->head_max = lim->max_head_size;
        h->line_max = line_limit(lim->max_header_line);
        if (lim->max_headers != 0 && lim->max_headers < h->cap)
            h->cap = lim->max_headers;
    }
    h->avail = len < h->head_max ? len : h->head_max;
}

/*
 * Fast path for the version nearly every message carries: "HTTP/1.1" and the
 * byte `after`, all before end. When it holds, parse_version would set 11.
 */
static inline int
is_http11(const char *buf, size_t p, size_t end, char after)
{
    return p <= end && end - p >= 9 && memcmp(buf + p, "HTTP/1.1", 8) == 0 && buf[p + 8] == after;
}

/*
 * "HTTP/" DIGIT "." DIGIT at p followed by the byte `after` (RFC 9112 §2.3;
 * HTTP-name is case-sensitive). Sets *version to 10 * major + minor. end is
 * min(avail, lend), the line's scan bound.
 */
static int
parse_version(struct head *h, size_t p, size_t end, size_t ls, size_t lend, int line_status,
              const char *line_reason, char after, unsigned *version)
{
    static const char name[] = "HTTP/";

    for (size_t k = 0; k < 9; k++) {
        if (p + k >= end)
            return need(h, p + k, ls, lend, line_status, line_reason);
        unsigned char c = (unsigned char)h->buf[p + k];
        int ok = k < 5    ? c == (unsigned char)name[k]
                 : k == 6 ? c == '.'
                 : k == 8 ? c == after
                          : is_digit(c);
        if (!ok) {
            if (k == 0 && c == ' ' && after == '\r')
                return fail(h, 400, p, "more than one SP in request line");
            if (k == 8 && c == '\n')
                return fail(h, 400, p + k, "bare LF");
            return fail(h, 400, p, "malformed HTTP version");
        }
    }
    *version = (unsigned)(h->buf[p + 5] - '0') * 10 + (unsigned)(h->buf[p + 7] - '0');
    return 0;
}

/* RFC 9112 §3.2: which form is the target, and is it allowed with this method? */
static int
check_target(struct head *h, struct gh_h1_request *req, size_t t, unsigned fragment)
{
    const char *s = req->target;
    size_t n = req->target_len, i = 0;
    int connect = req->method_id == GH_METHOD_CONNECT;

    /* fragment: scan_target saw a '#' in the target */
    if (fragment)
        return fail(h, 400, t, "fragment in request-target");
    if (s[0] == '/') {
        if (connect)
            return fail(h, 400, t, "CONNECT requires authority-form");
        req->target_form = GH_TARGET_ORIGIN;
        return 0;
    }
    if (n == 1 && s[0] == '*') {
        if (req->method_id != GH_METHOD_OPTIONS)
            return fail(h, 400, t, "asterisk-form without OPTIONS");
        req->target_form = GH_TARGET_ASTERISK;
        return 0;
    }
    /* absolute-form: scheme "://" authority path-abempty [ "?" query ] */
    if ((unsigned)(gh_lower((unsigned char)s[0]) - 'a') < 26u) {
        while (i < n && scheme_tab[(unsigned char)s[i]])
            i++;
        if (n - i >= 3 && memcmp(s + i, "://", 3) == 0) {
            if (!((i == 4 && lit_eq(s, "http", 4)) || (i == 5 && lit_eq(s, "https", 5))))
                return fail(h, 400, t, "unsupported scheme in request-target");
            if (connect)
                return fail(h, 400, t, "CONNECT requires authority-form");
            size_t a = i + 3, e = a;
            while (e < n && s[e] != '/' && s[e] != '?')
                e++;
            if (memchr(s + a, '@', e - a) != NULL)
                return fail(h, 400, t + a, "userinfo in request-target");
            if (!valid_authority(s + a, e - a, h->len - (t + a), 0))
                return fail(h, 400, t + a, "invalid authority in request-target");
            req->target_form = GH_TARGET_ABSOLUTE;
            return 0;
        }
    }
    if (connect) {
        if (!valid_authority(s, n, h->len - t, 1))
            return fail(h, 400, t, "invalid authority-form target");
        req->target_form = GH_TARGET_AUTHORITY;
        return 0;
    }
    if (memchr(s, ':', n) != NULL && memchr(s, '/', n) == NULL)
        return fail(h, 400, t, "authority-form without CONNECT");
    return fail(h, 400, t, "invalid request-target");
}

/* request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 §3). */
static int
parse_request_line(struct head *h, struct gh_h1_request *req, const struct gh_h1_limits *lim,
                   size_t *pp)
{
    const char *buf = h->buf;
    size_t p = 0, lmax = line_limit(lim != NULL ? lim->max_request_line : 0);
    unsigned version, fragment;

    /* RFC 9112 §2.2: at least one CRLF before the request line may be ignored; we allow one. */
    if (h->len == 0)
        return need(h, 0, 0, NO_LIMIT, 414, NULL);
    if (buf[0] == '\r') {
        if (1 >= h->avail)
            return need(h, 1, 0, NO_LIMIT, 414, NULL);
        if (buf[1] != '\n')
            return fail(h, 400, 1, "bare CR");
        p = 2;
    } else if (buf[0] == '\n') {
        return fail(h, 400, 0, "bare LF");
    }

    size_t ls = p, lend = ls + lmax, end = lend < h->avail ? lend : h->avail;
    if (p >= end)
        return need(h, p, ls, lend, 414, "request line too long");
    if (buf[p] == '\r' || buf[p] == '\n')
        return fail(h, 400, p, "more than one empty line before request line");
    if (is_ows((unsigned char)buf[p]))
        return fail(h, 400, p, "whitespace before request line");

    if (end - p >= 4 && memcmp(buf + p, "GET ", 4) == 0) {
        /* fast path: the method scan would stop at this SP, and the id is GET */
        p += 3;
        req->method = buf + ls;
        req->method_len = 3;
        req->method_id = GH_METHOD_GET;
    } else {
        p = scan_token(buf, p, end);
        if (p >= end)
            return need(h, p, ls, lend, 414, "request line too long");
        if (buf[p] != ' ' || p == ls)
            return fail(h, 400, p, "invalid byte in method");
        req->method = buf + ls;
        req->method_len = (uint32_t)(p - ls);
        req->method_id = (uint8_t)gh_h1_method_id(req->method, req->method_len);
    }

    size_t t = ++p;
    if (p >= end)
        return need(h, p, ls, lend, 414, "request line too long");
    if (buf[p] == ' ')
        return fail(h, 400, p, "more than one SP in request line");
    p = scan_target(buf, p, end, &fragment);
    if (p >= end)
        return need(h, p, ls, lend, 414, "request line too long");
    if (buf[p] != ' ') {
        if (buf[p] != '\r' && buf[p] != '\n')
            return fail(h, 400, p, "invalid byte in request-target");
        return fail(h, 400, p, p == t ? "missing request-target" : "missing HTTP version");
    }
    if (p == t)
        return fail(h, 400, p, "missing request-target");
    req->target = buf + t;
    req->target_len = (uint32_t)(p - t);

    int r;
    if (is_http11(buf, p + 1, end, '\r')) {
        version = 11;
    } else {
        r = parse_version(h, p + 1, end, ls, lend, 414, "request line too long", '\r', &version);
        if (r != 0)
            return r;
    }
    p += 10;
    if (p >= end)
        return need(h, p, ls, lend, 414, "request line too long");
    if (buf[p] != '\n')
        return fail(h, 400, p, "bare CR");
    if (version != 10 && version != 11)
        return fail(h, 505, t + req->target_len + 1, "unsupported HTTP version");
    h->version = (uint8_t)version;
    req->version = (uint8_t)version;
    r = check_target(h, req, t, fragment);
    if (r != 0)
        return r;
    *pp = p + 1;
    return 0;
}

int
gh_h1_parse_request(const char *buf, size_t len, struct gh_h1_request *req,
                    const struct gh_h1_limits *lim)
{
    struct head h;
    size_t p;
    int r;

    head_init(&h, buf, len, req->headers, req->max_headers, lim, &req->err);
    req->num_headers = 0;
    req->flags = 0;
    req->content_length = -1;
    req->host = NULL;
    req->host_len = 0;
    req->head_len = 0;
    req->target_form = GH_TARGET_ORIGIN;

    r = parse_request_line(&h, req, lim, &p);
    if (r != 0)
        return r;
    r = parse_fields(&h, p);
    req->num_headers = h.n;
    if (r < 0)
        return r;
    size_t head_len = (size_t)r;
    if (h.version == 11 && h.host_count == 0)
        return fail(&h, 400, head_len - 2, "missing Host");
    r = check_framing(&h);
    if (r != 0)
        return r;
    req->flags = h.flags;
    req->content_length = h.content_length;
    req->host = h.host;
    req->host_len = h.host_len;
    req->head_len = (uint32_t)head_len;
    return (int)head_len;
}

/* status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF (RFC 9112 §4). */
static int
parse_status_line(struct head *h, struct gh_h1_response *resp, const struct gh_h1_limits *lim,
                  size_t *pp)
{
    const char *buf = h->buf;
    size_t lend = line_limit(lim != NULL ? lim->max_request_line : 0);
    size_t end = lend < h->avail ? lend : h->avail, p;
    unsigned version;

    if (is_http11(buf, 0, end, ' ')) {
        version = 11;
    } else {
        int r = parse_version(h, 0, end, 0, lend, 502, "status line too long", ' ', &version);
        if (r != 0)
            return r;
    }
    if (version != 10 && version != 11)
        return fail(h, 502, 0, "unsupported HTTP version");
    h->version = (uint8_t)version;
    resp->version = (uint8_t)version;

    unsigned status = 0;
    /* fast path: three digits, the first not 0, all there; else the loop finds what is wrong */
    if (end >= 12 && (unsigned)(buf[9] - '1') < 9u && is_digit((unsigned char)buf[10]) &&
        is_digit((unsigned char)buf[11])) {
        status = (unsigned)(buf[9] - '0') * 100 + (unsigned)(buf[10] - '0') * 10 +
                 (unsigned)(buf[11] - '0');
        p = 12;
    } else {
        for (p = 9; p < 12; p++) {
            if (p >= end)
                return need(h, p, 0, lend, 502, "status line too long");
            if (!is_digit((unsigned char)buf[p]) || (p == 9 && buf[p] == '0'))
                return fail(h, 502, p, "malformed status code");
            status = status * 10 + (unsigned)(buf[p] - '0');
        }
    }
    resp->status = (uint16_t)status;
    if (p >= end)
        return need(h, p, 0, lend, 502, "status line too long");
    if (buf[p] == ' ')
        p++;
    else if (buf[p] != '\r') /* a missing SP before an empty reason is tolerated */
        return fail(h, 502, p, "malformed status code");
    size_t r0 = p;
    p = scan_value(buf, p, end);
    if (p >= end)
        return need(h, p, 0, lend, 502, "status line too long");
    if (buf[p] != '\r')
        return fail(h, 502, p, buf[p] == '\n' ? "bare LF" : "invalid byte in reason phrase");
    if (p + 1 >= end)
        return need(h, p + 1, 0, lend, 502, "status line too long");
    if (buf[p + 1] != '\n')
        return fail(h, 502, p + 1, "bare CR");
    resp->reason = buf + r0;
    resp->reason_len = (uint32_t)(p - r0);
    *pp = p + 2;
    return 0;
}

int
gh_h1_parse_response(const char *buf, size_t len, struct gh_h1_response *resp,
                     const struct gh_h1_limits *lim)
{
    struct head h;
    size_t p;
    int r;

    head_init(&h, buf, len, resp->headers, resp->max_headers, lim, &resp->err);
    h.is_response = 1;
    resp->num_headers = 0;
    resp->flags = 0;
    resp->content_length = -1;
    resp->head_len = 0;

    r = parse_status_line(&h, resp, lim, &p);
    if (r != 0)
        return r;
    r = parse_fields(&h, p);
    resp->num_headers = h.n;
    if (r < 0)
        return r;
    size_t head_len = (size_t)r;
    r = check_framing(&h);
    if (r != 0)
        return r;
    resp->flags = h.flags;
    resp->content_length = h.content_length;
    resp->head_len = (uint32_t)head_len;
    return (int)head_len;
}

/* ---- chunked decoder (RFC 9112 §7.1) ---- */

enum {
    CH_SIZE0 = 0,      /* first HEXDIG of chunk-size */
    CH_SIZE,           /* more HEXDIG, or what follows the size */
    CH_SIZE_BWS,       /* BWS after the size or an ext value: only ';' may follow */
    CH_EXT_NAME0,      /* BWS after ';', then the first tchar of a chunk-ext-name */
    CH_EXT_NAME,       /* chunk-ext-name */
    CH_EXT_NAME_BWS,   /* BWS after the name: '=' or ';' */
    CH_EXT_VAL0,       /* BWS after '=', then token or DQUOTE */
    CH_EXT_VAL_TOKEN,  /* token value */
    CH_EXT_VAL_QUOTED, /* inside quoted-string */
    CH_EXT_VAL_QPAIR,  /* after a backslash in quoted-string */
    CH_EXT_VAL_END,    /* after the closing DQUOTE */
    CH_SIZE_LF,        /* LF ending the chunk-size line */
    CH_DATA,           /* chunk-data */
    CH_DATA_CR,        /* CR after chunk-data */
    CH_DATA_LF,        /* LF after chunk-data */
    CH_TRAILER,        /* start of a trailer field line or the final CRLF */
    CH_TR_NAME,        /* trailer field-name */
    CH_TR_VALUE,       /* trailer field-value */
    CH_TR_LF,          /* LF ending a trailer field line */
    CH_FINAL_LF,       /* LF of the final CRLF */
    CH_DONE,
    CH_ERROR,
};

#define CH_DEFAULT_MAX_LINE 4096
#define CH_DEFAULT_MAX_TRAILERS 8192

void
gh_h1_chunked_init(struct gh_h1_chunked *c)
{
    memset(c, 0, sizeof(*c));
    c->state = CH_SIZE0;
}

/* One byte of a chunk-size line (size, extensions, CRLF). Returns NULL or an error reason. */
static const char *
size_line_byte(struct gh_h1_chunked *c, unsigned char ch)
{
    switch (c->state) {
    case CH_SIZE0:
        if (!hex_tab[ch])
            return "missing chunk size";
        c->remaining = hex_tab[ch] - 1u;
        c->state = CH_SIZE;
        return NULL;
    case CH_SIZE:
        if (hex_tab[ch]) {
            if (c->remaining >> 59)
                return "chunk size overflow";
            c->remaining = c->remaining << 4 | (hex_tab[ch] - 1u);
            return NULL;
        }
        break;
    case CH_SIZE_BWS:
    case CH_EXT_NAME_BWS:
        if (is_ows(ch))
            return NULL;
        if (ch == ';')
            c->state = CH_EXT_NAME0;
        else if (ch == '=' && c->state == CH_EXT_NAME_BWS)
            c->state = CH_EXT_VAL0;
        else
            return "invalid chunk extension";
        return NULL;
    case CH_EXT_NAME0:
        if (is_ows(ch))
            return NULL;
        if (!tchar_tab[ch])
            return "invalid chunk extension";
        c->state = CH_EXT_NAME;
        return NULL;
    case CH_EXT_NAME:
        if (tchar_tab[ch])
            return NULL;
        if (ch == '=') {
            c->state = CH_EXT_VAL0;
            return NULL;
        }
        if (is_ows(ch)) {
            c->state = CH_EXT_NAME_BWS;
            return NULL;
        }
        break;
    case CH_EXT_VAL0:
        if (is_ows(ch))
            return NULL;
        if (tchar_tab[ch])
            c->state = CH_EXT_VAL_TOKEN;
        else if (ch == '"')
            c->state = CH_EXT_VAL_QUOTED;
        else
            return "invalid chunk extension";
        return NULL;
    case CH_EXT_VAL_TOKEN:
        if (tchar_tab[ch])
            return NULL;
        break;
    case CH_EXT_VAL_QUOTED:
        /* qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
        if (ch == '"')
            c->state = CH_EXT_VAL_END;
        else if (ch == '\\')
            c->state = CH_EXT_VAL_QPAIR;
        else if (!value_tab[ch])
            return ch == '\n' ? "bare LF" : "invalid chunk extension";
        return NULL;
    case CH_EXT_VAL_QPAIR:
        if (!value_tab[ch])
            return ch == '\n' ? "bare LF" : "invalid chunk extension";
        c->state = CH_EXT_VAL_QUOTED;
        return NULL;
    case CH_EXT_VAL_END:
        break;
    case CH_SIZE_LF:
        if (ch != '\n')
            return "bare CR";
        c->line_len = 0;
        c->trailer_bytes = 0;
        c->state = c->remaining == 0 ? CH_TRAILER : CH_DATA;
        return NULL;
    default:
        GH_ASSERT(0);
    }
    /* after the size, a name or a value: ';' starts an extension, CR ends the line */
    if (ch == ';')
        c->state = CH_EXT_NAME0;
    else if (ch == '\r')
        c->state = CH_SIZE_LF;
    else if (is_ows(ch))
        c->state = CH_SIZE_BWS;
    else if (ch == '\n')
        return "bare LF";
    else
        return c->state == CH_SIZE ? "invalid chunk size" : "invalid chunk extension";
    return NULL;
}

/* One byte of the trailer section. Returns NULL or an error reason. */
static const char *
trailer_byte(struct gh_h1_chunked *c, unsigned char ch)
{
    switch (c->state) {
    case CH_TRAILER:
        if (ch == '\r') {
            c->state = CH_FINAL_LF;
            return NULL;
        }
        if (tchar_tab[ch]) {
            c->state = CH_TR_NAME;
            return NULL;
        }
        return ch == '\n'   ? "bare LF"
               : is_ows(ch) ? "obs-fold in trailer"
               : ch == ':'  ? "empty trailer field name"
                            : "invalid byte in trailer field name";
    case CH_TR_NAME:
        if (tchar_tab[ch])
            return NULL;
        if (ch == ':') {
            c->state = CH_TR_VALUE;
            return NULL;
        }
        return is_ows(ch) ? "whitespace before colon in trailer"
                          : "invalid byte in trailer field name";
    case CH_TR_VALUE:
        if (value_tab[ch])
            return NULL;
        if (ch == '\r') {
            c->state = CH_TR_LF;
            return NULL;
        }
        return ch == '\n' ? "bare LF" : "invalid byte in trailer field value";
    case CH_TR_LF:
    case CH_FINAL_LF:
        if (ch != '\n')
            return "bare CR";
        c->line_len = 0;
        c->state = c->state == CH_TR_LF ? CH_TRAILER : CH_DONE;
        return NULL;
    default:
        GH_ASSERT(0);
    }
    return NULL;
}

int
gh_h1_chunked_decode(struct gh_h1_chunked *c, const char *buf, size_t len, size_t *consumed,
                     const char **data, size_t *data_len)
{
    uint32_t max_line = c->max_line ? c->max_line : CH_DEFAULT_MAX_LINE;
    uint32_t max_trailers = c->max_trailers ? c->max_trailers : CH_DEFAULT_MAX_TRAILERS;
    const char *reason;
    size_t p = 0;

    *data = NULL;
    *data_len = 0;
    while (p < len) {
        unsigned char ch;
        switch (c->state) {
        case CH_DATA: {
            size_t n = len - p;
            if (n > c->remaining)
                n = (size_t)c->remaining;
            *data = buf + p;
            *data_len = n;
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            *consumed = p + n;
            return 1;
        }
        case CH_DATA_CR:
            if (buf[p] != '\r') {
                reason = "missing CRLF after chunk data";
                goto bad;
            }
            c->state = CH_DATA_LF;
            p++;
            break;
        case CH_DATA_LF:
            if (buf[p] != '\n') {
                reason = "bare CR after chunk data";
                goto bad;
            }
            c->state = CH_SIZE0;
            c->line_len = 0;
            p++;
            break;
        case CH_TRAILER:
        case CH_TR_NAME:
        case CH_TR_VALUE:
        case CH_TR_LF:
        case CH_FINAL_LF:
            ch = (unsigned char)buf[p];
            if (++c->line_len > max_line) {
                reason = "trailer line too long";
                goto bad;
            }
            if (++c->trailer_bytes > max_trailers) {
                reason = "trailer section too large";
                goto bad;
            }
            reason = trailer_byte(c, ch);
            if (reason != NULL)
                goto bad;
            p++;
            if (c->state == CH_DONE) {
                *consumed = p;
                return 0;
            }
            break;
        case CH_DONE:
            *consumed = p;
            return 0;
        case CH_ERROR:
            *consumed = p;
            return GH_BAD;
        default:
            ch = (unsigned char)buf[p];
            if (++c->line_len > max_line) {
                reason = "chunk size line too long";
                goto bad;
            }
            reason = size_line_byte(c, ch);
            if (reason != NULL)
                goto bad;
            p++;
            break;
        }
    }
    if (c->state == CH_DONE) {
        *consumed = p;
        return 0;
    }
    if (c->state == CH_ERROR) {
        *consumed = p;
        return GH_BAD;
    }
    *consumed = len;
    return GH_INCOMPLETE;

bad:
    c->state = CH_ERROR;
    c->reason = reason;
    *consumed = p;
    return GH_BAD;
}

/* ---- small lookups ---- */

int
gh_h1_chunked_spans(struct gh_h1_chunked *c, const char *buf, size_t *used, size_t lim,
                    struct iovec *spans, int max, int *nspans, uint64_t *data_bytes, int *done)
{
    int n = 0;
    while (*used < lim && n < max) {
        size_t consumed = 0;
        const char *data;
        size_t dlen;
        int rc = gh_h1_chunked_decode(c, buf + *used, lim - *used, &consumed, &data, &dlen);
        *used += consumed;
        if (rc == GH_BAD) {
            *nspans = n;
            return GH_BAD;
        }
        if (rc == GH_INCOMPLETE)
            break;
        if (rc == 0) {
            *done = 1;
            break;
        }
        *data_bytes += dlen;
        spans[n].iov_base = (void *)data;
        spans[n].iov_len = dlen;
        n++;
    }
    *nspans = n;
    return 0;
}

int
gh_h1_method_id(const char *m, size_t len)
{
    switch (len) {
    case 3:
        if (memcmp(m, "GET", 3) == 0)
            return GH_METHOD_GET;
        if (memcmp(m, "PUT", 3) == 0)
            return GH_METHOD_PUT;
        break;
    case 4:
        if (memcmp(m, "POST", 4) == 0)
            return GH_METHOD_POST;
        if (memcmp(m, "HEAD", 4) == 0)
            return GH_METHOD_HEAD;
        break;
    case 5:
        if (memcmp(m, "PATCH", 5) == 0)
            return GH_METHOD_PATCH;
        if (memcmp(m, "TRACE", 5) == 0)
            return GH_METHOD_TRACE;
        break;
    case 6:
        if (memcmp(m, "DELETE", 6) == 0)
            return GH_METHOD_DELETE;
        break;
    case 7:
        if (memcmp(m, "OPTIONS", 7) == 0)
            return GH_METHOD_OPTIONS;
        if (memcmp(m, "CONNECT", 7) == 0)
            return GH_METHOD_CONNECT;
        break;
    }
    return GH_METHOD_OTHER;
}

int
gh_h1_header_id(const char *name, size_t len)
{
    return header_id(name, len);
}

int
gh_h1_list_has_token(const char *value, size_t len, const char *tok, size_t tok_len)
{
    size_t pos = 0, mlen;
    const char *m;

    while (next_member(value, len, &pos, &m, &mlen))
        if (mlen == tok_len && gh_strncaseeq(m, tok, tok_len))
            return 1;
    return 0;
}

/* RFC 9110 §15 (and the registered extras still in use), indexed by status - 100. */
static const char *const reasons[512 - 100] = {
    [100 - 100] = "Continue",
    [101 - 100] = "Switching Protocols",
    [102 - 100] = "Processing",
    [103 - 100] = "Early Hints",
    [200 - 100] = "OK",
    [201 - 100] = "Created",
    [202 - 100] = "Accepted",
    [203 - 100] = "Non-Authoritative Information",
    [204 - 100] = "No Content",
    [205 - 100] = "Reset Content",
    [206 - 100] = "Partial Content",
    [207 - 100] = "Multi-Status",
    [208 - 100] = "Already Reported",
    [226 - 100] = "IM Used",
    [300 - 100] = "Multiple Choices",
    [301 - 100] = "Moved Permanently",
    [302 - 100] = "Found",
    [303 - 100] = "See Other",
    [304 - 100] = "Not Modified",
    [305 - 100] = "Use Proxy",
    [307 - 100] = "Temporary Redirect",
    [308 - 100] = "Permanent Redirect",
    [400 - 100] = "Bad Request",
    [401 - 100] = "Unauthorized",
    [402 - 100] = "Payment Required",
    [403 - 100] = "Forbidden",
    [404 - 100] = "Not Found",
    [405 - 100] = "Method Not Allowed",
    [406 - 100] = "Not Acceptable",
    [407 - 100] = "Proxy Authentication Required",
    [408 - 100] = "Request Timeout",
    [409 - 100] = "Conflict",
    [410 - 100] = "Gone",
    [411 - 100] = "Length Required",
    [412 - 100] = "Precondition Failed",
    [413 - 100] = "Content Too Large",
    [414 - 100] = "URI Too Long",
    [415 - 100] = "Unsupported Media Type",
    [416 - 100] = "Range Not Satisfiable",
    [417 - 100] = "Expectation Failed",
    [421 - 100] = "Misdirected Request",
    [422 - 100] = "Unprocessable Content",
    [423 - 100] = "Locked",
    [424 - 100] = "Failed Dependency",
    [425 - 100] = "Too Early",
    [426 - 100] = "Upgrade Required",
    [428 - 100] = "Precondition Required",
    [429 - 100] = "Too Many Requests",
    [431 - 100] = "Request Header Fields Too Large",
    [451 - 100] = "Unavailable For Legal Reasons",
    [500 - 100] = "Internal Server Error",
    [501 - 100] = "Not Implemented",
    [502 - 100] = "Bad Gateway",
    [503 - 100] = "Service Unavailable",
    [504 - 100] = "Gateway Timeout",
    [505 - 100] = "HTTP Version Not Supported",
    [506 - 100] = "Variant Also Negotiates",
    [507 - 100] = "Insufficient Storage",
    [508 - 100] = "Loop Detected",
    [510 - 100] = "Not Extended",
    [511 - 100] = "Network Authentication Required",
};

const char *
gh_h1_reason(int status)
{
    if (status < 100 || status >= 512 || reasons[status - 100] == NULL)
        return "";
    return reasons[status - 100];
}
