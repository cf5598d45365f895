/*
 * vars.c - variable values and template expansion.
 */
#include "proxy/vars.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/log.h"
#include "http/uri.h"
#include "net/sock.h"
#include "proxy/cache.h"
#include "net/tls.h"
#include "policy/geoip.h"
#include "policy/lpm.h"
#include "policy/rules.h"
#include "proxy/worker.h"

/* ---- escaping ---- */

static const char hexd[] = "0123456789abcdef";

/* Length of the valid UTF-8 sequence at s[0..n) (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    unsigned cp = c & (0x7fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* The most bytes of one value written (gh_vars_limit_values): a log line that did not fit is
 * written again with shorter values, so that it keeps its shape (a JSON line stays JSON). */
static __thread size_t value_max = SIZE_MAX;

void
gh_vars_limit_values(size_t n)
{
    value_max = n;
}

/* JSON: the escape of byte c (e, its length), or 0 when it passes; a valid UTF-8 sequence at s
 * passes whole (*len: its bytes). */
static size_t
esc_json(const unsigned char *s, size_t n, char *e, size_t *len)
{
    unsigned c = s[0];
    if (c >= 0x80 && (*len = utf8_len(s, n)) > 0)
        return 0;
    *len = 1;
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
        return 0;
    static const char named[] = {
        ['"'] = '"', ['\\'] = '\\', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
    e[0] = '\\';
    if (c < sizeof(named) && named[c] != 0) {
        e[1] = named[c];
        return 2;
    }
    memcpy(e + 1, "u00", 3); /* a control byte, DEL, or a byte of invalid UTF-8 */
    e[4] = hexd[c >> 4];
    e[5] = hexd[c & 15];
    return 6;
}

/* The escape of the byte (or UTF-8 sequence) at s in mode esc (e, its length), or 0 when it
 * passes as it is; *len: the bytes it stands for. */
static size_t
esc_one(const unsigned char *s, size_t n, enum gh_vars_esc esc, char *e, size_t *len)
{
    static const char HEX[] = "0123456789ABCDEF";
    unsigned c = s[0];
    *len = 1;
    switch (esc) {
    case GH_ESC_NONE: /* a header value never gets a control byte (RFC 9110 §5.5), nor DEL */
        if ((c >= 0x20 && c != 0x7f) || c == '\t')
            return 0;
        e[0] = ' ';
        return 1;
    case GH_ESC_URI:
    case GH_ESC_URI_ARG:
        if (gh_uri_path_char(c) && !(esc == GH_ESC_URI_ARG && (c == '&' || c == '+' || c == ';')))
            return 0;
        e[0] = '%';
        e[1] = HEX[c >> 4];
        e[2] = HEX[c & 15];
        return 3;
    case GH_ESC_LOG: /* \xHH in upper case, as nginx */
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            return 0;
        e[0] = '\\';
        e[1] = 'x';
        e[2] = HEX[c >> 4];
        e[3] = HEX[c & 15];
        return 4;
    case GH_ESC_JSON:
        return esc_json(s, n, e, len);
    case GH_ESC_RAW:
        break;
    }
    return 0;
}

static void
esc_bytes(struct gh_wr *w, const char *s, size_t n, enum gh_vars_esc esc)
{
    if (gh_unlikely(n > value_max))
        n = value_max;
    if (n == 0) /* s may be NULL ($args without a query): no memcpy from it, even of 0 bytes */
        return;
    if (esc == GH_ESC_RAW) {
        gh_wr_put(w, s, n);
        return;
    }
    if (esc == GH_ESC_NONE) { /* header values, the common case: one scan, one copy */
        size_t k = 0;
        while (k < n && (((unsigned char)s[k] >= 0x20 && s[k] != 0x7f) || s[k] == '\t'))
            k++;
        if (k == n) {
            gh_wr_put(w, s, n);
            return;
        }
    }
    size_t run = 0; /* bytes that pass as they are, written in one piece */
    for (size_t i = 0, len; i < n; i += len) {
        char e[8];
        size_t el = esc_one((const unsigned char *)s + i, n - i, esc, e, &len);
        if (el == 0)
            continue;
        gh_wr_put(w, s + run, i - run);
        gh_wr_put(w, e, el);
        run = i + len;
    }
    gh_wr_put(w, s + run, n - run);
}

void
gh_vars_escape(struct gh_wr *w, const char *s, size_t n, enum gh_vars_esc esc)
{
    /* an empty value may have no pointer ($args without a query, $request_uri of a rejected
     * head): esc_bytes would pass that NULL to memcpy */
    if (n == 0) {
        if (esc == GH_ESC_LOG)
            GH_WR_LIT(w, "-");
        return;
    }
    esc_bytes(w, s, n, esc);
}

/* ---- values ---- */

static void
put_u64(struct gh_wr *w, uint64_t v, enum gh_vars_esc esc)
{
    (void)esc; /* digits need no escaping */
    gh_wr_u64(w, v);
}

/* ms as seconds with three decimals ("0.012"), as nginx's times. */
static void
put_secs(struct gh_wr *w, uint64_t ms)
{
    char b[32];
    int n = snprintf(b, sizeof(b), "%llu.%03llu", (unsigned long long)(ms / 1000),
                     (unsigned long long)(ms % 1000));
    gh_wr_put(w, b, (size_t)n);
}

/* The host the client asked for, without the port, in lower case. */
static void
put_host(struct gh_exchange *ex, struct gh_wr *w, enum gh_vars_esc esc)
{
    const struct gh_request *r = ex->req;
    const char *h = r != NULL ? r->host : NULL;
    size_t n = r != NULL ? r->host_len : 0;
    if (h == NULL || n == 0) {
        /* HTTP/1.0 without Host: the server's name, as nginx */
        if (ex->srv != NULL && ex->srv->n_names > 0 && ex->srv->names[0][0] != '*')
            gh_vars_escape(w, ex->srv->names[0], ex->srv->name_lens[0], esc);
        else
            gh_vars_escape(w, "", 0, esc);
        return;
    }
    if (h[0] == '[') {
        const char *rb = memchr(h, ']', n);
        if (rb != NULL)
            n = (size_t)(rb - h) + 1;
    } else {
        const char *colon = memchr(h, ':', n);
        if (colon != NULL)
            n = (size_t)(colon - h);
    }
    size_t at = w->len;
    gh_vars_escape(w, h, n, esc);
    for (size_t i = at; i < w->len && !w->overflow; i++)
        w->p[i] = (char)gh_lower((unsigned char)w->p[i]);
}

/* $http_NAME: every field of that name, joined with ", " (a Cookie with "; "). */
static void
put_field(struct gh_exchange *ex, const char *name, size_t len, struct gh_wr *w,
          enum gh_vars_esc esc)
{
    const struct gh_request *r = ex->req;
    int cookie = len == 6 && memcmp(name, "cookie", 6) == 0;
    int found = 0;
    size_t start = w->len;
    for (uint32_t i = 0; r != NULL && i < r->n_fields; i++) {
        const struct gh_h1_header *h = &r->fields[i];
        if (h->name_len != len || !gh_strncaseeq(h->name, name, len))
            continue;
        if (found++) {
            if (cookie)
                GH_WR_LIT(w, "; ");
            else
                GH_WR_LIT(w, ", ");
        }
        esc_bytes(w, h->value, h->value_len, esc);
    }
    if (w->len == start)
        gh_vars_escape(w, "", 0, esc);
}

/* The value of `name` in a list "a=1&b=2" (sep '&') or "a=1; b=2" (sep ';'); case-insensitive
 * names, values as they are. */
static int
find_pair(const char *s, size_t n, char sep, const char *name, size_t len, const char **val,
          size_t *vlen)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        size_t e = i;
        while (e < n && s[e] != sep)
            e++;
        const char *eq = memchr(s + i, '=', e - i);
        size_t nl = eq != NULL ? (size_t)(eq - (s + i)) : e - i;
        if (nl == len && gh_strncaseeq(s + i, name, len)) {
            *val = eq != NULL ? eq + 1 : s + e;
            *vlen = eq != NULL ? (size_t)(s + e - (eq + 1)) : 0;
            return 1;
        }
        i = e + 1;
    }
    return 0;
}

bool
gh_vars_cookie(const struct gh_exchange *ex, const char *name, size_t len, const char **v,
               size_t *vl)
{
    const struct gh_request *r = ex->req;
    for (uint32_t i = 0; r != NULL && i < r->n_fields; i++) {
        const struct gh_h1_header *h = &r->fields[i];
        if (h->name_len == 6 && gh_strncaseeq(h->name, "cookie", 6) &&
            find_pair(h->value, h->value_len, ';', name, len, v, vl))
            return true;
    }
    return false;
}

static void
put_cookie(struct gh_exchange *ex, const char *name, size_t len, struct gh_wr *w,
           enum gh_vars_esc esc)
{
    const char *v;
    size_t vl;
    if (gh_vars_cookie(ex, name, len, &v, &vl))
        gh_vars_escape(w, v, vl, esc);
    else
        gh_vars_escape(w, "", 0, esc);
}

static void
put_arg(struct gh_exchange *ex, const char *name, size_t len, struct gh_wr *w, enum gh_vars_esc esc)
{
    const char *v;
    size_t vl;
    if (ex->args != NULL && find_pair(ex->args, ex->args_len, '&', name, len, &v, &vl))
        gh_vars_escape(w, v, vl, esc);
    else
        gh_vars_escape(w, "", 0, esc);
}

static void
put_request_line(struct gh_exchange *ex, struct gh_wr *w, enum gh_vars_esc esc)
{
    const struct gh_request *r = ex->req;
    if (r == NULL) { /* a head rejected before it became a request: its first line */
        gh_vars_escape(w, ex->raw_line, ex->raw_line_len, esc);
        return;
    }
    gh_vars_escape(w, r->method, r->method_len, esc);
    GH_WR_LIT(w, " ");
    gh_vars_escape(w, r->target, r->target_len, esc);
    gh_wr_str(w, r->version == 10 ? " HTTP/1.0" : " HTTP/1.1");
}

/* The local end of the connection: the listener's address, or the socket's own for a wildcard
 * listener. */
static int
local_addr(struct gh_exchange *ex, struct sockaddr_storage *ss)
{
    const struct gh_listen_conf *lc = ex->listener;
    if (lc != NULL) {
        const struct sockaddr *a = (const struct sockaddr *)&lc->addr.ss;
        int wild = a->sa_family == AF_INET
                       ? ((const struct sockaddr_in *)a)->sin_addr.s_addr == INADDR_ANY
                       : memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &in6addr_any,
                                sizeof(in6addr_any)) == 0;
        if (!wild) {
            memcpy(ss, &lc->addr.ss, lc->addr.len);
            return 0;
        }
    }
    /* a head rejected before it became a request is logged without a downstream */
    return ex->down != NULL && ex->down->local_addr != NULL ? ex->down->local_addr(ex, ss) : -1;
}

static void
put_server_addr(struct gh_exchange *ex, struct gh_wr *w, enum gh_vars_esc esc, int port)
{
    struct sockaddr_storage ss;
    char b[64];
    if (local_addr(ex, &ss) != 0) {
        gh_vars_escape(w, "", 0, esc);
        return;
    }
    if (port) {
        const struct sockaddr *a = (const struct sockaddr *)&ss;
        gh_wr_u64(w, ntohs(a->sa_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_port
                                                   : ((const struct sockaddr_in6 *)a)->sin6_port));
        return;
    }
    size_t n = gh_sock_ip_str((const struct sockaddr *)&ss, b, sizeof(b));
    gh_vars_escape(w, b, n, esc);
}

/* 16 random bytes per request from a per-thread generator seeded once from the kernel. */
static void
put_request_id(struct gh_exchange *ex, struct gh_wr *w)
{
    if (!ex->has_id) {
        static __thread uint64_t st[2];
        if (st[0] == 0 && st[1] == 0) {
            if (getrandom(st, sizeof(st), 0) != (ssize_t)sizeof(st) || (st[0] | st[1]) == 0) {
                st[0] = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&st;
                st[1] = 0x9e3779b97f4a7c15ull;
            }
        }
        for (int k = 0; k < 2; k++) { /* xorshift128+ */
            uint64_t s1 = st[0];
            const uint64_t s0 = st[1];
            uint64_t r = s0 + s1;
            st[0] = s0;
            s1 ^= s1 << 23;
            st[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
            memcpy(ex->request_id + 8 * k, &r, 8);
        }
        ex->has_id = true;
    }
    char hex[32];
    for (int i = 0; i < 16; i++) {
        hex[2 * i] = hexd[ex->request_id[i] >> 4];
        hex[2 * i + 1] = hexd[ex->request_id[i] & 15];
    }
    gh_wr_put(w, hex, 32);
}

/* $time_local ("26/Nov/2026:18:44:14 +0000") and $time_iso8601 ("2026-11-26T18:44:14+00:00"),
 * formatted once a second per thread: localtime_r takes a lock. */
static void
put_time(struct gh_exchange *ex, struct gh_wr *w, int iso)
{
    static __thread int64_t sec = -1;
    static __thread char local[40], isot[40];
    static __thread size_t local_len, iso_len;
    int64_t now = gh_loop_wall(ex->w->loop);
    if (now != sec) {
        time_t t = (time_t)now;
        struct tm tm;
        localtime_r(&t, &tm);
        local_len = strftime(local, sizeof(local), "%d/%b/%Y:%H:%M:%S %z", &tm);
        iso_len = strftime(isot, sizeof(isot), "%Y-%m-%dT%H:%M:%S%z", &tm);
        if (iso_len == 24) { /* +0000 -> +00:00 */
            memmove(isot + 23, isot + 22, 2);
            isot[22] = ':';
            isot[25] = '\0';
            iso_len = 25;
        }
        sec = now;
    }
    if (iso)
        gh_wr_put(w, isot, iso_len);
    else
        gh_wr_put(w, local, local_len);
}

/* An upstream time: from the start of the attempt to `at` (0: not reached). */
static void
put_up_time(struct gh_exchange *ex, struct gh_wr *w, uint64_t at, enum gh_vars_esc esc)
{
    if (ex->up.ups == NULL || at == 0 || at < ex->up.t_start) {
        gh_vars_escape(w, "", 0, esc);
        return;
    }
    put_secs(w, at - ex->up.t_start);
}

/* The client connection's TLS facts (nginx's names); empty on a plain connection. */
static void
put_tls_var(struct gh_exchange *ex, enum gh_var v, struct gh_wr *w, enum gh_vars_esc esc)
{
    const struct gh_xprt *x = ex->cx;
    const char *s = NULL;
    uint32_t n = 0;
    switch (v) {
    case GH_VAR_HTTPS:
        s = ex->flags & GH_EX_TLS ? "on" : NULL;
        break;
    case GH_VAR_SSL_PROTOCOL:
        s = gh_tls_protocol(x);
        break;
    case GH_VAR_SSL_CIPHER:
        s = gh_tls_cipher(x);
        break;
    case GH_VAR_SSL_SERVER_NAME:
        s = gh_tls_server_name(x);
        break;
    case GH_VAR_SSL_ALPN_PROTOCOL:
        s = gh_tls_alpn(x, &n);
        gh_vars_escape(w, s, s != NULL ? n : 0, esc);
        return;
    case GH_VAR_SSL_SESSION_REUSED:
        s = !gh_tls_is(x) ? NULL : gh_tls_reused(x) ? "r" : ".";
        break;
    case GH_VAR_SSL_CLIENT_S_DN:
        s = gh_tls_client_dn(x);
        break;
    case GH_VAR_SSL_CLIENT_VERIFY:
        s = gh_tls_client_verify(x);
        break;
    default: { /* the rest are the cache's */
        char b[32];
        s = gh_cache_var(ex, v, b, sizeof(b));
        gh_vars_escape(w, s, s != NULL ? strlen(s) : 0, esc);
        return;
    }
    }
    gh_vars_escape(w, s, s != NULL ? strlen(s) : 0, esc);
}

/* The destination of a forward proxy's request: the CONNECT authority, the URL's host[:port], or
 * for a line made without a request (SOCKS5) what follows "CONNECT " in its first line. */
static void
put_dest(struct gh_exchange *ex, struct gh_wr *w, enum gh_vars_esc esc)
{
    const struct gh_request *r = ex->req;
    if (r != NULL && r->method_id == GH_METHOD_CONNECT)
        gh_vars_escape(w, r->target, r->target_len, esc);
    else if (r != NULL && r->target_form == GH_TARGET_ABSOLUTE && r->host != NULL)
        gh_vars_escape(w, r->host, r->host_len, esc);
    else if (r == NULL && ex->raw_line_len > 8 && memcmp(ex->raw_line, "CONNECT ", 8) == 0) {
        const char *d = ex->raw_line + 8, *sp = memchr(d, ' ', ex->raw_line_len - 8);
        gh_vars_escape(w, d, sp != NULL ? (size_t)(sp - d) : ex->raw_line_len - 8, esc);
    } else
        gh_vars_escape(w, "", 0, esc);
}

/* The forward proxy's variables: verdict, group, destination, bytes up a tunnel. */
static bool
put_forward_var(struct gh_exchange *ex, enum gh_var v, struct gh_wr *w, enum gh_vars_esc esc)
{
    static const char *const verdicts[] = {"", "allowed", "blocked", "auth-failed", "denied"};
    switch (v) {
    case GH_VAR_PROXY_VERDICT: {
        const char *s = verdicts[ex->fwd_verdict < 5 ? ex->fwd_verdict : 0];
        gh_vars_escape(w, s, strlen(s), esc);
        return true;
    }
    case GH_VAR_PROXY_GROUP:
        gh_vars_escape(w, ex->fwd_group, ex->fwd_group != NULL ? strlen(ex->fwd_group) : 0, esc);
        return true;
    case GH_VAR_PROXY_DEST:
        put_dest(ex, w, esc);
        return true;
    case GH_VAR_TUNNEL_BYTES_SENT:
        put_u64(w, ex->tunnel_up, esc);
        return true;
    default:
        return false;
    }
}

/* The variables of the exchange rather than of its request: id, clocks, status, upstream. */
/* $proxy_protocol_addr / _port: the connection's address when a PROXY header gave it, else
 * empty */
static void
put_pp_var(struct gh_exchange *ex, bool port, struct gh_wr *w, enum gh_vars_esc esc)
{
    char b[64];
    size_t n = 0;
    if (ex->flags & GH_EX_PROXIED) {
        if (port) {
            put_u64(w, ex->peer->port, esc);
            return;
        }
        n = gh_client_ip_str(ex->peer, b, sizeof(b));
    }
    gh_vars_escape(w, b, n, esc);
}

static void
put_exchange_var(struct gh_exchange *ex, enum gh_var v, struct gh_wr *w, enum gh_vars_esc esc)
{
    switch (v) {
    case GH_VAR_REQUEST_ID:
        put_request_id(ex, w);
        return;
    case GH_VAR_REMOTE_USER:
        gh_vars_escape(w, ex->user, ex->user_len, esc);
        return;
    case GH_VAR_TIME_LOCAL:
    case GH_VAR_TIME_ISO8601:
        put_time(ex, w, v == GH_VAR_TIME_ISO8601);
        return;
    case GH_VAR_MSEC: {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        put_secs(w, (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
        return;
    }
    case GH_VAR_STATUS:
        put_u64(w, ex->status, esc);
        return;
    case GH_VAR_UPSTREAM_ADDR:
        if (ex->up.ups != NULL && ex->up.attempts > 0) {
            const char *a = gh_ups_server(&ex->up)->addr.text;
            gh_vars_escape(w, a, strlen(a), esc);
        } else {
            gh_vars_escape(w, "", 0, esc);
        }
        return;
    case GH_VAR_UPSTREAM_STATUS:
        if (ex->up_status != 0)
            put_u64(w, ex->up_status, esc);
        else if (ex->up.ups != NULL && ex->up.attempts > 0 &&
                 (ex->status == 502 || ex->status == 504))
            put_u64(w, ex->status, esc); /* tried and failed (nginx: 502 or 504, too) */
        else
            gh_vars_escape(w, "", 0, esc);
        return;
    case GH_VAR_BODY_BYTES_SENT:
        put_u64(w, ex->bytes_out >= ex->head_bytes ? ex->bytes_out - ex->head_bytes : 0, esc);
        return;
    case GH_VAR_BYTES_SENT:
        put_u64(w, ex->bytes_out, esc);
        return;
    case GH_VAR_REQUEST_TIME: {
        uint64_t now = gh_loop_now(ex->w->loop);
        put_secs(w, now >= ex->t_start ? now - ex->t_start : 0);
        return;
    }
    case GH_VAR_UPSTREAM_CONNECT_TIME:
        put_up_time(ex, w, ex->t_connect, esc);
        return;
    case GH_VAR_UPSTREAM_HEADER_TIME:
        put_up_time(ex, w, ex->t_first_byte, esc);
        return;
    case GH_VAR_UPSTREAM_RESPONSE_TIME:
        put_up_time(ex, w, ex->t_up_done, esc);
        return;
    case GH_VAR_PROXY_PROTOCOL_ADDR:
    case GH_VAR_PROXY_PROTOCOL_PORT:
        put_pp_var(ex, v == GH_VAR_PROXY_PROTOCOL_PORT, w, esc);
        return;
    default:
        if (!put_forward_var(ex, v, w, esc))
            put_tls_var(ex, v, w, esc);
        break;
    }
}

void
gh_vars_put(struct gh_exchange *ex, enum gh_var v, const char *arg, size_t arg_len, struct gh_wr *w,
            enum gh_vars_esc esc)
{
    const struct gh_request *r = ex->req;
    char b[64];
    size_t n;
    switch (v) {
    case GH_VAR_HOST:
        put_host(ex, w, esc);
        return;
    case GH_VAR_HOSTNAME: {
        const char *h = ex->wc->cfg->hostname;
        gh_vars_escape(w, h, strlen(h), esc);
        return;
    }
    case GH_VAR_REQUEST_URI:
        gh_vars_escape(w, r != NULL ? r->path : NULL, r != NULL ? r->path_len : 0, esc);
        return;
    case GH_VAR_URI:
        gh_vars_escape(w, ex->uri, ex->uri_len, esc);
        return;
    case GH_VAR_ARGS:
        gh_vars_escape(w, ex->args, ex->args_len, esc);
        return;
    case GH_VAR_IS_ARGS:
        gh_vars_escape(w, "?", ex->args_len > 0, esc);
        return;
    case GH_VAR_SCHEME:
        gh_wr_str(w, ex->flags & GH_EX_TLS ? "https" : "http");
        return;
    case GH_VAR_REQUEST_METHOD:
        gh_vars_escape(w, r != NULL ? r->method : NULL, r != NULL ? r->method_len : 0, esc);
        return;
    case GH_VAR_SERVER_PROTOCOL:
        gh_wr_str(w, ex->version == 10 ? "HTTP/1.0" : "HTTP/1.1");
        return;
    case GH_VAR_REQUEST:
        put_request_line(ex, w, esc);
        return;
    case GH_VAR_REMOTE_ADDR:
        /* digits, '.', ':' and hex letters: nothing to escape in any mode */
        if (w->cap - w->len >= 64 && !w->overflow) {
            n = gh_client_ip_str(ex->client, w->p + w->len, 64);
            w->len += n;
        } else {
            n = gh_client_ip_str(ex->client, b, sizeof(b));
            gh_wr_put(w, b, n);
        }
        if (n == 0)
            gh_vars_escape(w, "", 0, esc);
        return;
    case GH_VAR_REMOTE_PORT:
        put_u64(w, ex->client->port, esc);
        return;
    case GH_VAR_SERVER_ADDR:
    case GH_VAR_SERVER_PORT:
        put_server_addr(ex, w, esc, v == GH_VAR_SERVER_PORT);
        return;
    case GH_VAR_SERVER_NAME:
        if (ex->srv != NULL && ex->srv->n_names > 0)
            gh_vars_escape(w, ex->srv->names[0], ex->srv->name_lens[0], esc);
        else
            gh_vars_escape(w, "", 0, esc);
        return;
    case GH_VAR_HTTP_:
        put_field(ex, arg, arg_len, w, esc);
        return;
    case GH_VAR_ARG_:
        put_arg(ex, arg, arg_len, w, esc);
        return;
    case GH_VAR_COOKIE_:
        put_cookie(ex, arg, arg_len, w, esc);
        return;
    default: /* the exchange's own: its id, times, status, upstream */
        put_exchange_var(ex, v, w, esc);
        break;
    }
}

/* A `geo $NAME` map's value for the client's (real) address: its longest prefix's, else its
 * MaxMind database's, else the map's default. */
static void
put_geo(struct gh_exchange *ex, uint32_t idx, struct gh_wr *w, enum gh_vars_esc esc)
{
    const char *s;
    size_t n;
    gh_geo_value(&ex->wc->cfg->geos[idx], ex->client->family, ex->client->ip, &s, &n);
    gh_vars_escape(w, s, n, esc);
}

void
gh_vars_expand(const struct gh_tmpl *t, struct gh_exchange *ex, struct gh_wr *w,
               enum gh_vars_esc esc, const struct gh_vars_caps *caps)
{
    /* in a rewrite, what follows a '?' of the replacement's text is the new query */
    enum gh_vars_esc uesc = GH_ESC_URI;
    for (uint32_t i = 0; i < t->n; i++) {
        const struct gh_tmpl_part *p = &t->parts[i];
        if (p->var == GH_VAR_NONE) {
            gh_wr_put(w, p->text, p->len);
            if (caps != NULL && memchr(p->text, '?', p->len) != NULL)
                uesc = GH_ESC_URI_ARG;
        } else if (p->var == GH_VAR_CAPTURE) {
            /* captures are of the decoded path: encoded again, as nginx does, so that the
             * rewritten path decodes to their bytes ('%', '?' and '#' in them included) */
            uint32_t k = (uint32_t)(p->text[0] - '0');
            if (caps != NULL && k < caps->n && caps->ovector[2 * k] != (size_t)-1)
                esc_bytes(w, caps->subject + caps->ovector[2 * k],
                          caps->ovector[2 * k + 1] - caps->ovector[2 * k], uesc);
        } else if (p->var == GH_VAR_GEO) {
            put_geo(ex, p->len, w, esc);
        } else if (caps != NULL && p->var == GH_VAR_URI) {
            esc_bytes(w, ex->uri, ex->uri_len, uesc); /* likewise */
        } else {
            gh_vars_put(ex, (enum gh_var)p->var, p->text, p->len, w, esc);
        }
    }
}
