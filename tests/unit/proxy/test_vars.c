/*
 * test_vars.c - the values of variables (proxy/vars.c) for a request built
 * as a connection builds it, the three escapings byte by byte (the JSON one
 * checked by a strict validator and by decoding back), captures, and values
 * that do not fit the output: the overflow is flagged and nothing is written
 * past the end (each output buffer is malloc'd to its exact size, so ASan
 * sees a byte too far).
 *
 * Requests are parsed from text with the real parser and routed by hand as
 * the exchange's start does ($uri, $args); templates are compiled by the real
 * config loader from a log_format, the context where every variable exists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "http/uri.h"
#include "proxy/exchange.h"
#include "proxy/vars.h"
#include "proxy/worker.h"

#define WALL 1700000000 /* Tue, 14 Nov 2023 22:13:20 GMT */
#define NOW_MS 5000000

/* ---- the fixture: a config, a worker whose loop is only a clock, an exchange ---- */

static const char *const base_conf =
    "server { listen 127.0.0.1:8080; server_name Example.TEST www.example.test; return 200; }\n"
    "server { listen 127.0.0.1:8080; server_name *.wild.test; return 200; }\n"
    "server { listen 127.0.0.1:8080; return 200; }\n"
    "server { listen 0.0.0.0:8081; server_name any.test; return 200; }\n"
    "server { listen [::1]:8443; server_name six.test; return 200; }\n";

static struct {
    struct gh_config *cfg;
    struct gh_loop_clock clock; /* what gh_loop_now and gh_loop_wall read */
    struct gh_worker w;
    struct gh_wcfg wc;
    struct gh_client_addr client;
    char head[8192];
    struct gh_h1_header hdrs[64];
    struct gh_request r;
    char uri[8192];
    struct gh_exchange ex;
    int local_rc; /* what the downstream's local_addr answers */
    struct sockaddr_storage local;
} fx;

static int
fake_local_addr(struct gh_exchange *ex, struct sockaddr_storage *ss)
{
    (void)ex;
    if (fx.local_rc == 0)
        *ss = fx.local;
    return fx.local_rc;
}

static const struct gh_downstream_ops down = {.local_addr = fake_local_addr};

static const struct gh_listen_conf *
listener(int port)
{
    for (uint32_t i = 0; i < fx.cfg->n_listeners; i++) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&fx.cfg->listeners[i].addr.ss;
        if (ntohs(a->sin_port) == port) /* sin6_port is at the same place */
            return &fx.cfg->listeners[i];
    }
    fail_msg("no listener on port %d", port);
    return NULL;
}

static int
setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof(fx));
    struct gh_conf_diag d;
    fx.cfg = gh_conf_load_string("t.conf", base_conf, strlen(base_conf), &d);
    gh_conf_diag_print(&d, stderr);
    gh_conf_diag_free(&d);
    if (fx.cfg == NULL)
        return -1;
    fx.clock.now_ms = NOW_MS;
    fx.clock.wall_s = WALL;
    fx.w.loop = (struct gh_loop *)(void *)&fx.clock;
    fx.wc.cfg = fx.cfg;
    fx.client = (struct gh_client_addr){.family = AF_INET, .port = 40000, .ip = {10, 1, 22, 3}};
    fx.local_rc = -ENOTCONN;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    gh_conf_unref(fx.cfg);
    return 0;
}

/* A new exchange on the listener of port, for head (parsed, then routed as the exchange's start
 * does: the absolute form's authority as Host, $uri normalised, $args after '?'). */
static void
request_on(int port, const char *head)
{
    size_t hl = strlen(head);
    assert_true(hl < sizeof(fx.head));
    memcpy(fx.head, head, hl + 1);
    struct gh_h1_request pr = {.headers = fx.hdrs, .max_headers = 64};
    struct gh_h1_limits lim = {8192, 8192, 64, 65536};
    int rc = gh_h1_parse_request(fx.head, hl, &pr, &lim);
    if (rc != (int)hl)
        fail_msg("parse: %d %s", rc, pr.err.reason ? pr.err.reason : "");
    fx.r = (struct gh_request){.method = pr.method,
                               .method_len = pr.method_len,
                               .method_id = pr.method_id,
                               .target_form = pr.target_form,
                               .version = pr.version,
                               .h1flags = pr.flags,
                               .target = pr.target,
                               .target_len = pr.target_len,
                               .host = pr.host,
                               .host_len = pr.host_len,
                               .fields = fx.hdrs,
                               .n_fields = pr.num_headers,
                               .listener = listener(port),
                               .raw = fx.head,
                               .raw_len = (uint32_t)hl,
                               .path = pr.target,
                               .path_len = pr.target_len};
    if (fx.r.target_form == GH_TARGET_ABSOLUTE) {
        const char *path;
        size_t host_len, path_len;
        gh_uri_split_absolute(fx.r.target, fx.r.target_len, &fx.r.host, &host_len, &path,
                              &path_len);
        fx.r.host_len = (uint32_t)host_len;
        fx.r.path = path;
        fx.r.path_len = (uint32_t)path_len;
    }
    memset(&fx.ex, 0, sizeof(fx.ex));
    struct gh_exchange *ex = &fx.ex;
    ex->down = &down;
    ex->w = &fx.w;
    ex->wc = &fx.wc;
    ex->client = &fx.client;
    ex->t_start = NOW_MS;
    ex->method = fx.r.method_id;
    ex->version = fx.r.version;
    ex->listener = fx.r.listener;
    ex->srv = gh_conf_find_server(fx.r.listener, fx.r.host, fx.r.host_len);
    ex->req = &fx.r;
    const char *q = memchr(fx.r.path, '?', fx.r.path_len);
    size_t route_len = q ? (size_t)(q - fx.r.path) : fx.r.path_len;
    if (q != NULL) {
        ex->args = q + 1;
        ex->args_len = (uint32_t)(fx.r.path_len - route_len - 1);
    }
    const char *upath = "/";
    size_t ulen = 1;
    if (route_len > 0 && fx.r.path[0] == '/')
        assert_int_equal(gh_uri_normalize_path(fx.r.path, route_len, fx.uri, &upath, &ulen), 0);
    ex->uri = upath;
    ex->uri_len = (uint32_t)ulen;
    ex->target = fx.r.path;
    ex->target_len = fx.r.path_len;
}

static void
request(const char *head)
{
    request_on(8080, head);
}

/* ---- expanding ---- */

static void
print_escaped(const char *label, const char *p, size_t n)
{
    fprintf(stderr, "# %s (%zu): \"", label, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c >= 0x7f)
            fprintf(stderr, "\\x%02x", c);
        else
            fputc(c, stderr);
    }
    fputs("\"\n", stderr);
}

static void
assert_bytes(const char *got, size_t len, const char *want, size_t want_len)
{
    if (len != want_len || memcmp(got, want, len) != 0) {
        print_escaped("want", want, want_len);
        print_escaped("got ", got, len);
        fail();
    }
}

static char out[65536];

/* One variable's value with esc. */
static const char *
put(enum gh_var v, const char *arg, enum gh_vars_esc esc, size_t *len)
{
    struct gh_wr w = {out, 0, sizeof(out) - 1, 0};
    gh_vars_put(&fx.ex, v, arg, arg != NULL ? strlen(arg) : 0, &w, esc);
    assert_false(w.overflow);
    out[w.len] = '\0';
    *len = w.len;
    return out;
}

/* The variable's value must be want[0..want_len) with esc. */
static void
expect_put_n(enum gh_var v, const char *arg, enum gh_vars_esc esc, const char *want,
             size_t want_len)
{
    size_t len;
    const char *got = put(v, arg, esc, &len);
    if (len != want_len || memcmp(got, want, len) != 0)
        fprintf(stderr, "# $%s%s (escape %d)\n", gh_var_name(v), arg != NULL ? arg : "", (int)esc);
    assert_bytes(got, len, want, want_len);
}

#define expect_put(v, arg, esc, want) expect_put_n((v), (arg), (esc), (want), sizeof(want) - 1)

/* The same for the plain value, the log's ("-" for empty) and JSON's (want has nothing to
 * escape). */
#define expect_val(v, arg, want)                                                                   \
    do {                                                                                           \
        expect_put((v), (arg), GH_ESC_NONE, want);                                                 \
        if (sizeof(want) == 1)                                                                     \
            expect_put((v), (arg), GH_ESC_LOG, "-");                                               \
        else                                                                                       \
            expect_put((v), (arg), GH_ESC_LOG, want);                                              \
        expect_put((v), (arg), GH_ESC_JSON, want);                                                 \
    } while (0)

/* A template compiled as a log_format (where every variable exists); the caller unrefs *cfg. */
static const struct gh_tmpl *
compile(const char *tmpl, struct gh_config **cfg)
{
    char text[8192];
    snprintf(text, sizeof(text), "log_format f \"%s\";\naccess_log stderr f;\n%s", tmpl, base_conf);
    struct gh_conf_diag d;
    *cfg = gh_conf_load_string("t.conf", text, strlen(text), &d);
    if (*cfg == NULL) {
        fprintf(stderr, "# template: %s\n", tmpl);
        gh_conf_diag_print(&d, stderr);
    }
    gh_conf_diag_free(&d);
    assert_non_null(*cfg);
    return (*cfg)->access_log_tmpl;
}

/* tmpl expanded for the current exchange with esc must be want. */
static void
expect_expand_n(const char *tmpl, enum gh_vars_esc esc, const char *want, size_t want_len)
{
    struct gh_config *c;
    const struct gh_tmpl *t = compile(tmpl, &c);
    struct gh_wr w = {out, 0, sizeof(out), 0};
    gh_vars_expand(t, &fx.ex, &w, esc, NULL);
    assert_false(w.overflow);
    if (w.len != want_len || memcmp(out, want, want_len) != 0)
        fprintf(stderr, "# template: %s (escape %d)\n", tmpl, (int)esc);
    assert_bytes(out, w.len, want, want_len);
    gh_conf_unref(c);
}

#define expect_expand(tmpl, esc, want) expect_expand_n((tmpl), (esc), (want), sizeof(want) - 1)

/* ---- the request's variables ---- */

static void
test_host(void **state)
{
    (void)state;
    request("GET / HTTP/1.1\r\nHost: Example.COM:8080\r\n\r\n");
    expect_val(GH_VAR_HOST, NULL, "example.com");
    request("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    expect_val(GH_VAR_HOST, NULL, "[::1]");
    request("GET / HTTP/1.1\r\nHost: [2001:DB8::1]\r\n\r\n");
    expect_val(GH_VAR_HOST, NULL, "[2001:db8::1]");
    request("GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n");
    expect_val(GH_VAR_HOST, NULL, "10.0.0.1");
    /* the absolute form's authority wins over Host */
    request("GET http://Abs.Test:81/p?q HTTP/1.1\r\nHost: other.test\r\n\r\n");
    expect_val(GH_VAR_HOST, NULL, "abs.test");
    /* no Host (HTTP/1.0): the server's first name, as nginx */
    request("GET / HTTP/1.0\r\n\r\n");
    expect_val(GH_VAR_HOST, NULL, "example.test");
    /* ... unless it is a wildcard, or there is none */
    request("GET / HTTP/1.0\r\n\r\n");
    fx.ex.srv = &fx.cfg->servers[1];
    expect_val(GH_VAR_HOST, NULL, "");
    fx.ex.srv = &fx.cfg->servers[2];
    expect_val(GH_VAR_HOST, NULL, "");
    /* an empty Host is like none */
    request("GET / HTTP/1.1\r\nHost:\r\n\r\n");
    expect_val(GH_VAR_HOST, NULL, "example.test");
}

static void
test_uri_args(void **state)
{
    (void)state;
    request("GET /a/./b/../c%41//d?x=1&y=%20 HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_val(GH_VAR_REQUEST_URI, NULL, "/a/./b/../c%41//d?x=1&y=%20");
    expect_val(GH_VAR_URI, NULL, "/a/cA/d");
    expect_val(GH_VAR_ARGS, NULL, "x=1&y=%20");
    expect_val(GH_VAR_IS_ARGS, NULL, "?");
    expect_expand("$scheme://$host$uri$is_args$args", GH_ESC_NONE, "http://h/a/cA/d?x=1&y=%20");

    request("GET /plain HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_val(GH_VAR_REQUEST_URI, NULL, "/plain");
    expect_val(GH_VAR_URI, NULL, "/plain");
    expect_val(GH_VAR_ARGS, NULL, "");
    expect_val(GH_VAR_IS_ARGS, NULL, "");
    expect_expand("$uri$is_args$args", GH_ESC_NONE, "/plain");
    expect_expand("$uri$is_args$args", GH_ESC_LOG, "/plain--");

    /* "?" with nothing after it: no arguments */
    request("GET /p? HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_val(GH_VAR_REQUEST_URI, NULL, "/p?");
    expect_val(GH_VAR_URI, NULL, "/p");
    expect_val(GH_VAR_ARGS, NULL, "");
    expect_val(GH_VAR_IS_ARGS, NULL, "");

    /* absolute form: the path and query only */
    request("GET http://h.test/x/%2e%2e/y?k=v HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_val(GH_VAR_REQUEST_URI, NULL, "/x/%2e%2e/y?k=v");
    expect_val(GH_VAR_URI, NULL, "/y");
    expect_val(GH_VAR_ARGS, NULL, "k=v");
    request("GET http://h.test HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_val(GH_VAR_URI, NULL, "/");

    /* a decoded path can hold what a header value must not: control bytes become spaces there,
     * the log escapes them */
    request("GET /a%0d%0aX:%09y%7fz%c3%a9 HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_put(GH_VAR_URI, NULL, GH_ESC_NONE, "/a  X:\ty z\xc3\xa9");
    expect_put(GH_VAR_URI, NULL, GH_ESC_LOG, "/a\\x0D\\x0AX:\\x09y\\x7Fz\\xC3\\xA9");
    expect_put(GH_VAR_URI, NULL, GH_ESC_JSON, "/a\\r\\nX:\\ty\\u007fz\xc3\xa9");
}

static void
test_arg(void **state)
{
    (void)state;
    request("GET /?a=1&ab=2&b=&c&A=9&x=y=z&q=a%20b+c&&=e&last=L HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_val(GH_VAR_ARG_, "a", "1"); /* the first of that name */
    expect_val(GH_VAR_ARG_, "ab", "2");
    expect_val(GH_VAR_ARG_, "b", "");
    expect_val(GH_VAR_ARG_, "c", "");
    expect_val(GH_VAR_ARG_, "x", "y=z");
    expect_val(GH_VAR_ARG_, "q", "a%20b+c"); /* as received, as nginx */
    expect_val(GH_VAR_ARG_, "last", "L");
    expect_val(GH_VAR_ARG_, "missing", "");
    expect_val(GH_VAR_ARG_, "l", "");
    expect_val(GH_VAR_ARG_, "lastx", "");
    /* names that are prefixes of others, in either order */
    request("GET /?abc=1&ab=2 HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_val(GH_VAR_ARG_, "ab", "2");
    expect_val(GH_VAR_ARG_, "a", "");
    expect_val(GH_VAR_ARG_, "abc", "1");
    expect_val(GH_VAR_ARG_, "abcd", "");
    /* case-insensitive names, as nginx */
    request("GET /?Key=V HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_val(GH_VAR_ARG_, "key", "V");
    /* no query */
    request("GET /p HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_val(GH_VAR_ARG_, "a", "");
    /* through a template: the name as written, lower-cased */
    request("GET /?page=2&Sort=desc HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_expand("p=$arg_page s=${arg_SORT} m=$arg_m", GH_ESC_LOG, "p=2 s=desc m=-");
}

static void
test_cookie(void **state)
{
    (void)state;
    request("GET / HTTP/1.1\r\nHost: h\r\n"
            "Cookie: a=1; b=2\r\n"
            "X-Other: a=9\r\n"
            "Cookie: c=3;d=4;  e= 5 ;ab=6\r\n"
            "cookie: SID=abc; t=x=y; empty=; flag\r\n"
            "Cookie: a=late\r\n"
            "\r\n");
    expect_val(GH_VAR_COOKIE_, "a", "1"); /* the first */
    expect_val(GH_VAR_COOKIE_, "b", "2");
    expect_val(GH_VAR_COOKIE_, "c", "3");
    expect_val(GH_VAR_COOKIE_, "d", "4");
    expect_val(GH_VAR_COOKIE_, "e", " 5 ");
    expect_val(GH_VAR_COOKIE_, "ab", "6");
    expect_val(GH_VAR_COOKIE_, "sid", "abc");
    expect_val(GH_VAR_COOKIE_, "t", "x=y");
    expect_val(GH_VAR_COOKIE_, "empty", "");
    expect_val(GH_VAR_COOKIE_, "flag", "");
    expect_val(GH_VAR_COOKIE_, "missing", "");
    expect_val(GH_VAR_COOKIE_, "s", "");
    /* every Cookie field joined with "; " */
    expect_val(GH_VAR_HTTP_, "cookie",
               "a=1; b=2; c=3;d=4;  e= 5 ;ab=6; SID=abc; t=x=y; empty=; "
               "flag; a=late");
    expect_expand("${cookie_SID}|$cookie_ab|$cookie_zz", GH_ESC_LOG, "abc|6|-");
    /* a Cookie that is only separators */
    request("GET / HTTP/1.1\r\nHost: h\r\nCookie: ;; ;\r\n\r\n");
    expect_val(GH_VAR_COOKIE_, "a", "");
    request("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_val(GH_VAR_COOKIE_, "a", "");
    expect_val(GH_VAR_HTTP_, "cookie", "");
}

static void
test_http_field(void **state)
{
    (void)state;
    request("GET / HTTP/1.1\r\nHost: h\r\n"
            "User-Agent: curl/8.0\r\n"
            "X-A: 1\r\n"
            "x-a: 2\r\n"
            "X-Empty:\r\n"
            "X-A: three \"q\"\r\n"
            "X-High: caf\xc3\xa9 \xff\r\n"
            "\r\n");
    expect_val(GH_VAR_HTTP_, "user-agent", "curl/8.0");
    expect_val(GH_VAR_HTTP_, "host", "h");
    /* a field that repeats: joined with ", " (RFC 9110 §5.3), as nginx */
    expect_put(GH_VAR_HTTP_, "x-a", GH_ESC_NONE, "1, 2, three \"q\"");
    expect_put(GH_VAR_HTTP_, "x-a", GH_ESC_LOG, "1, 2, three \\x22q\\x22");
    expect_put(GH_VAR_HTTP_, "x-a", GH_ESC_JSON, "1, 2, three \\\"q\\\"");
    expect_val(GH_VAR_HTTP_, "x-empty", "");
    expect_val(GH_VAR_HTTP_, "x-missing", "");
    expect_val(GH_VAR_HTTP_, "x", "");
    expect_put(GH_VAR_HTTP_, "x-high", GH_ESC_NONE, "caf\xc3\xa9 \xff");
    expect_put(GH_VAR_HTTP_, "x-high", GH_ESC_LOG, "caf\\xC3\\xA9 \\xFF");
    expect_put(GH_VAR_HTTP_, "x-high", GH_ESC_JSON, "caf\xc3\xa9 \\u00ff");
    /* through a template: '_' is '-', any case */
    expect_expand("${http_USER_AGENT}|$http_x_a|$http_x_none", GH_ESC_LOG,
                  "curl/8.0|1, 2, three \\x22q\\x22|-");
    /* an empty field among repeated ones */
    request("GET / HTTP/1.1\r\nHost: h\r\nX-R:\r\nX-R: b\r\nX-R:\r\n\r\n");
    expect_val(GH_VAR_HTTP_, "x-r", ", b, ");
}

static void
test_request_line(void **state)
{
    (void)state;
    request("POST /f?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    expect_val(GH_VAR_REQUEST_METHOD, NULL, "POST");
    expect_val(GH_VAR_REQUEST, NULL, "POST /f?x=1 HTTP/1.1");
    expect_val(GH_VAR_SERVER_PROTOCOL, NULL, "HTTP/1.1");
    expect_val(GH_VAR_SCHEME, NULL, "http");
    request("GET http://a.test/p HTTP/1.0\r\n\r\n");
    expect_val(GH_VAR_REQUEST, NULL, "GET http://a.test/p HTTP/1.0"); /* as received */
    expect_val(GH_VAR_SERVER_PROTOCOL, NULL, "HTTP/1.0");
    /* a head that never became a request: its first line as it came */
    request("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    fx.ex.req = NULL;
    fx.ex.raw_line = "GARBAGE \"x\"";
    fx.ex.raw_line_len = 11;
    expect_put(GH_VAR_REQUEST, NULL, GH_ESC_NONE, "GARBAGE \"x\"");
    expect_put(GH_VAR_REQUEST, NULL, GH_ESC_LOG, "GARBAGE \\x22x\\x22");
    fx.ex.raw_line = NULL;
    fx.ex.raw_line_len = 0;
    expect_val(GH_VAR_REQUEST, NULL, "");
}

/* The request is gone (not kept for the log): what needs it is empty. */
static void
test_no_request(void **state)
{
    (void)state;
    request("GET /a?b=1 HTTP/1.1\r\nHost: h\r\nCookie: c=1\r\nX-A: 1\r\n\r\n");
    fx.ex.req = NULL;
    fx.ex.uri = NULL;
    fx.ex.uri_len = 0;
    fx.ex.args = NULL;
    fx.ex.args_len = 0;
    expect_val(GH_VAR_HOST, NULL, "example.test"); /* the server's name */
    expect_val(GH_VAR_REQUEST_URI, NULL, "");
    expect_val(GH_VAR_URI, NULL, "");
    expect_val(GH_VAR_ARGS, NULL, "");
    expect_val(GH_VAR_IS_ARGS, NULL, "");
    expect_val(GH_VAR_REQUEST_METHOD, NULL, "");
    expect_val(GH_VAR_HTTP_, "x-a", "");
    expect_val(GH_VAR_COOKIE_, "c", "");
    expect_val(GH_VAR_ARG_, "b", "");
    expect_val(GH_VAR_REQUEST, NULL, "");
}

/* ---- the connection's variables ---- */

static void
test_remote_addr(void **state)
{
    (void)state;
    request("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_val(GH_VAR_REMOTE_ADDR, NULL, "10.1.22.3");
    expect_val(GH_VAR_REMOTE_PORT, NULL, "40000");
    fx.client = (struct gh_client_addr){.family = AF_INET, .port = 1, .ip = {255, 0, 9, 100}};
    expect_val(GH_VAR_REMOTE_ADDR, NULL, "255.0.9.100");
    expect_val(GH_VAR_REMOTE_PORT, NULL, "1");
    fx.client = (struct gh_client_addr){.family = AF_INET6, .port = 65535};
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", fx.client.ip), 1);
    expect_val(GH_VAR_REMOTE_ADDR, NULL, "2001:db8::1");
    expect_val(GH_VAR_REMOTE_PORT, NULL, "65535");
    assert_int_equal(inet_pton(AF_INET6, "::ffff:1.2.3.4", fx.client.ip), 1);
    expect_val(GH_VAR_REMOTE_ADDR, NULL, "::ffff:1.2.3.4");
    assert_int_equal(inet_pton(AF_INET6, "::1", fx.client.ip), 1);
    expect_expand("[$remote_addr]:$remote_port", GH_ESC_LOG, "[::1]:65535");
    /* an address that cannot be shown */
    fx.client = (struct gh_client_addr){.family = AF_UNIX};
    expect_val(GH_VAR_REMOTE_ADDR, NULL, "");
    fx.client = (struct gh_client_addr){.family = AF_INET, .port = 40000, .ip = {10, 1, 22, 3}};
}

static void
test_server_addr(void **state)
{
    (void)state;
    request("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_val(GH_VAR_SERVER_ADDR, NULL, "127.0.0.1");
    expect_val(GH_VAR_SERVER_PORT, NULL, "8080");
    expect_val(GH_VAR_SERVER_NAME, NULL, "example.test");
    request_on(8443, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_val(GH_VAR_SERVER_ADDR, NULL, "::1");
    expect_val(GH_VAR_SERVER_PORT, NULL, "8443");
    expect_val(GH_VAR_SERVER_NAME, NULL, "six.test");
    /* a wildcard listener: the connection's own address, from the downstream */
    request_on(8081, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    struct sockaddr_in *sin = (struct sockaddr_in *)&fx.local;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(8081);
    sin->sin_addr.s_addr = htonl(0xc0000207);
    fx.local_rc = 0;
    expect_val(GH_VAR_SERVER_ADDR, NULL, "192.0.2.7");
    expect_val(GH_VAR_SERVER_PORT, NULL, "8081");
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&fx.local;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(9);
    assert_int_equal(inet_pton(AF_INET6, "fe80::2", &sin6->sin6_addr), 1);
    expect_val(GH_VAR_SERVER_ADDR, NULL, "fe80::2");
    expect_val(GH_VAR_SERVER_PORT, NULL, "9");
    /* ... which may not know it */
    fx.local_rc = -ENOTCONN;
    expect_val(GH_VAR_SERVER_ADDR, NULL, "");
    expect_val(GH_VAR_SERVER_PORT, NULL, "");
    /* a server without names */
    request("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    fx.ex.srv = &fx.cfg->servers[2];
    expect_val(GH_VAR_SERVER_NAME, NULL, "");
    fx.ex.srv = &fx.cfg->servers[1];
    expect_val(GH_VAR_SERVER_NAME, NULL, "*.wild.test");
    fx.ex.srv = NULL;
    expect_val(GH_VAR_SERVER_NAME, NULL, "");
}

static void
test_hostname(void **state)
{
    (void)state;
    request("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    char want[256];
    assert_int_equal(gethostname(want, sizeof(want) - 1), 0);
    want[sizeof(want) - 1] = '\0';
    size_t n;
    assert_string_equal(put(GH_VAR_HOSTNAME, NULL, GH_ESC_NONE, &n), want);
    assert_int_equal(n, strlen(want));
}

/* ---- the exchange's variables ---- */

static bool
all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static void
test_request_id(void **state)
{
    (void)state;
    request("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    char first[33];
    size_t n;
    strcpy(first, put(GH_VAR_REQUEST_ID, NULL, GH_ESC_LOG, &n));
    assert_int_equal(n, 32);
    assert_true(all_hex(first, 32));
    /* the same all along the exchange, whatever the escaping */
    assert_string_equal(put(GH_VAR_REQUEST_ID, NULL, GH_ESC_JSON, &n), first);
    assert_string_equal(put(GH_VAR_REQUEST_ID, NULL, GH_ESC_NONE, &n), first);
    /* another for the next */
    request("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_string_not_equal(put(GH_VAR_REQUEST_ID, NULL, GH_ESC_LOG, &n), first);
    assert_true(all_hex(out, 32));
}

static void
test_times(void **state)
{
    (void)state;
    request("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    setenv("TZ", "UTC", 1);
    tzset();
    fx.clock.wall_s = WALL;
    expect_val(GH_VAR_TIME_LOCAL, NULL, "14/Nov/2023:22:13:20 +0000");
    expect_val(GH_VAR_TIME_ISO8601, NULL, "2023-11-14T22:13:20+00:00");
    /* another second, another zone (the cache is per second) */
    setenv("TZ", "IST-5:30", 1);
    tzset();
    fx.clock.wall_s = WALL + 1;
    expect_val(GH_VAR_TIME_LOCAL, NULL, "15/Nov/2023:03:43:21 +0530");
    expect_val(GH_VAR_TIME_ISO8601, NULL, "2023-11-15T03:43:21+05:30");
    setenv("TZ", "EST5", 1);
    tzset();
    fx.clock.wall_s = WALL + 2;
    expect_val(GH_VAR_TIME_ISO8601, NULL, "2023-11-14T17:13:22-05:00");
    setenv("TZ", "UTC", 1);
    tzset();
    fx.clock.wall_s = WALL;

    /* $msec: the wall clock now, seconds with milliseconds */
    struct timespec t0, t1;
    clock_gettime(CLOCK_REALTIME, &t0);
    size_t n;
    const char *m = put(GH_VAR_MSEC, NULL, GH_ESC_LOG, &n);
    clock_gettime(CLOCK_REALTIME, &t1);
    assert_true(n > 4 && m[n - 4] == '.');
    unsigned long long s = 0, ms = 0;
    assert_int_equal(sscanf(m, "%llu.%3llu", &s, &ms), 2);
    unsigned long long v = s * 1000 + ms;
    assert_true(v >=
                (unsigned long long)t0.tv_sec * 1000 + (unsigned long long)t0.tv_nsec / 1000000);
    assert_true(v <=
                (unsigned long long)t1.tv_sec * 1000 + (unsigned long long)t1.tv_nsec / 1000000);

    /* $request_time: from the head's first byte to now */
    fx.ex.t_start = NOW_MS - 1234;
    expect_val(GH_VAR_REQUEST_TIME, NULL, "1.234");
    fx.ex.t_start = NOW_MS - 5;
    expect_val(GH_VAR_REQUEST_TIME, NULL, "0.005");
    fx.ex.t_start = NOW_MS;
    expect_val(GH_VAR_REQUEST_TIME, NULL, "0.000");
    fx.ex.t_start = NOW_MS + 10; /* never negative */
    expect_val(GH_VAR_REQUEST_TIME, NULL, "0.000");
    fx.ex.t_start = NOW_MS - 3600000;
    expect_val(GH_VAR_REQUEST_TIME, NULL, "3600.000");
}

static struct gh_upstream_server up_srvs[] = {{.addr = {.text = "10.0.0.9:8080"}, .weight = 1},
                                              {.addr = {.text = "[fd00::2]:81"}, .weight = 1}};
static struct gh_upstream_conf up_conf = {.name = "app", .servers = up_srvs, .n_servers = 2};

static void
test_response_and_upstream(void **state)
{
    (void)state;
    request("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    /* answered here: no upstream */
    fx.ex.status = 404;
    expect_val(GH_VAR_STATUS, NULL, "404");
    expect_val(GH_VAR_UPSTREAM_ADDR, NULL, "");
    expect_val(GH_VAR_UPSTREAM_STATUS, NULL, "");
    expect_val(GH_VAR_UPSTREAM_CONNECT_TIME, NULL, "");
    expect_val(GH_VAR_UPSTREAM_HEADER_TIME, NULL, "");
    expect_val(GH_VAR_UPSTREAM_RESPONSE_TIME, NULL, "");
    fx.ex.bytes_out = 250;
    fx.ex.head_bytes = 100;
    expect_val(GH_VAR_BYTES_SENT, NULL, "250");
    expect_val(GH_VAR_BODY_BYTES_SENT, NULL, "150");
    fx.ex.bytes_out = 40; /* cut inside the head */
    expect_val(GH_VAR_BODY_BYTES_SENT, NULL, "0");
    fx.ex.bytes_out = 0;
    fx.ex.head_bytes = 0;
    expect_val(GH_VAR_BYTES_SENT, NULL, "0");
    expect_val(GH_VAR_BODY_BYTES_SENT, NULL, "0");
    fx.ex.bytes_out = UINT64_MAX;
    expect_val(GH_VAR_BYTES_SENT, NULL, "18446744073709551615");

    /* proxied: the second server of the upstream answered */
    fx.ex.up.ups = &up_conf;
    fx.ex.up.attempts = 2;
    fx.ex.up.server = 1;
    fx.ex.up.t_start = NOW_MS - 900;
    fx.ex.t_connect = NOW_MS - 880;
    fx.ex.t_first_byte = NOW_MS - 400;
    fx.ex.t_up_done = NOW_MS - 1;
    fx.ex.up_status = 502;
    fx.ex.status = 502;
    expect_val(GH_VAR_UPSTREAM_ADDR, NULL, "[fd00::2]:81");
    expect_val(GH_VAR_UPSTREAM_STATUS, NULL, "502");
    expect_val(GH_VAR_UPSTREAM_CONNECT_TIME, NULL, "0.020");
    expect_val(GH_VAR_UPSTREAM_HEADER_TIME, NULL, "0.500");
    expect_val(GH_VAR_UPSTREAM_RESPONSE_TIME, NULL, "0.899");
    expect_expand("$status $upstream_status $upstream_addr", GH_ESC_JSON, "502 502 [fd00::2]:81");
    /* not reached yet, or before this attempt started */
    fx.ex.t_first_byte = 0;
    fx.ex.t_up_done = NOW_MS - 1000;
    expect_val(GH_VAR_UPSTREAM_HEADER_TIME, NULL, "");
    expect_val(GH_VAR_UPSTREAM_RESPONSE_TIME, NULL, "");
    /* chosen, never tried */
    fx.ex.up.attempts = 0;
    expect_val(GH_VAR_UPSTREAM_ADDR, NULL, "");
}

/* Each variable has a value in each escaping (a smoke test of the whole table). */
static void
test_every_variable_expands(void **state)
{
    (void)state;
    request("GET /a?b=c HTTP/1.1\r\nHost: h\r\nCookie: k=v\r\nX-N: n\r\n\r\n");
#define ROW(id, nm, wh, rq) {GH_VAR_##id, nm},
    static const struct {
        enum gh_var v;
        const char *name;
    } vars[] = {GH_VAR_TABLE(ROW)};
#undef ROW
    for (size_t i = 0; i < GH_ARRAY_LEN(vars); i++) {
        size_t nl = strlen(vars[i].name);
        const char *arg = vars[i].name[nl - 1] != '_' ? NULL
                          : vars[i].v == GH_VAR_HTTP_ ? "x-n"
                          : vars[i].v == GH_VAR_ARG_  ? "b"
                                                      : "k";
        for (int esc = GH_ESC_NONE; esc <= GH_ESC_JSON; esc++) {
            size_t n;
            put(vars[i].v, arg, (enum gh_vars_esc)esc, &n);
            if (esc == GH_ESC_LOG)
                assert_true(n > 0); /* never empty in a log line */
        }
    }
}

/* ---- escaping ---- */

static void
expect_escape_n(const char *in, size_t n, enum gh_vars_esc esc, const char *want, size_t want_len)
{
    struct gh_wr w = {out, 0, sizeof(out), 0};
    gh_vars_escape(&w, in, n, esc);
    assert_false(w.overflow);
    if (w.len != want_len || memcmp(out, want, want_len) != 0)
        print_escaped("in  ", in, n);
    assert_bytes(out, w.len, want, want_len);
}

#define expect_escape(in, esc, want)                                                               \
    expect_escape_n((in), sizeof(in) - 1, (esc), (want), sizeof(want) - 1)

static void
test_escape_none(void **state)
{
    (void)state;
    expect_escape("", GH_ESC_NONE, "");
    expect_escape("plain text", GH_ESC_NONE, "plain text");
    /* a header value never gets a control byte (nor DEL); tab and bytes >= 0x80 are allowed */
    expect_escape("a\r\nInjected: 1", GH_ESC_NONE, "a  Injected: 1");
    expect_escape("\x00\x01\x1f\x7f|\t|\x80\xff", GH_ESC_NONE, "    |\t|\x80\xff");
    expect_escape("\"\\", GH_ESC_NONE, "\"\\");
}

static void
test_escape_log(void **state)
{
    (void)state;
    expect_escape("", GH_ESC_LOG, "-");
    expect_escape("-", GH_ESC_LOG, "-");
    expect_escape("GET / HTTP/1.1", GH_ESC_LOG, "GET / HTTP/1.1");
    /* nginx's: '"', '\', controls, DEL and bytes >= 0x80 as \xHH in upper case */
    expect_escape("a\"b\\c", GH_ESC_LOG, "a\\x22b\\x5Cc");
    expect_escape("\x00\x01\t\n\r\x1f\x7f", GH_ESC_LOG, "\\x00\\x01\\x09\\x0A\\x0D\\x1F\\x7F");
    expect_escape("\x80\xc3\xa9\xff", GH_ESC_LOG, "\\x80\\xC3\\xA9\\xFF");
    expect_escape(" ~'{}$", GH_ESC_LOG, " ~'{}$");
}

static void
test_escape_json(void **state)
{
    (void)state;
    expect_escape("", GH_ESC_JSON, "");
    expect_escape("a\"b\\c/d", GH_ESC_JSON, "a\\\"b\\\\c/d");
    expect_escape("\n\r\t", GH_ESC_JSON, "\\n\\r\\t");
    expect_escape("\x00\x01\x08\x0b\x0c\x1f\x7f", GH_ESC_JSON,
                  "\\u0000\\u0001\\u0008\\u000b\\u000c\\u001f\\u007f");
    /* valid UTF-8 as it is: 2, 3 and 4 bytes, the ends of each range */
    expect_escape("\xc3\xa9 \xc2\x80 \xdf\xbf", GH_ESC_JSON, "\xc3\xa9 \xc2\x80 \xdf\xbf");
    expect_escape("\xe2\x82\xac \xe0\xa0\x80 \xef\xbf\xbf \xed\x9f\xbf \xee\x80\x80", GH_ESC_JSON,
                  "\xe2\x82\xac \xe0\xa0\x80 \xef\xbf\xbf \xed\x9f\xbf \xee\x80\x80");
    expect_escape("\xf0\x9f\x98\x80 \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf", GH_ESC_JSON,
                  "\xf0\x9f\x98\x80 \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf");
    /* overlong forms */
    expect_escape("\xc0\xaf", GH_ESC_JSON, "\\u00c0\\u00af");
    expect_escape("\xc1\xbf", GH_ESC_JSON, "\\u00c1\\u00bf");
    expect_escape("\xe0\x80\xaf", GH_ESC_JSON, "\\u00e0\\u0080\\u00af");
    expect_escape("\xe0\x9f\xbf", GH_ESC_JSON, "\\u00e0\\u009f\\u00bf");
    expect_escape("\xf0\x80\x80\xaf", GH_ESC_JSON, "\\u00f0\\u0080\\u0080\\u00af");
    expect_escape("\xf0\x8f\xbf\xbf", GH_ESC_JSON, "\\u00f0\\u008f\\u00bf\\u00bf");
    /* surrogates, past U+10FFFF, bytes that never start a sequence */
    expect_escape("\xed\xa0\x80", GH_ESC_JSON, "\\u00ed\\u00a0\\u0080");
    expect_escape("\xed\xbf\xbf", GH_ESC_JSON, "\\u00ed\\u00bf\\u00bf");
    expect_escape("\xf4\x90\x80\x80", GH_ESC_JSON, "\\u00f4\\u0090\\u0080\\u0080");
    expect_escape("\xf5\x80\x80\x80", GH_ESC_JSON, "\\u00f5\\u0080\\u0080\\u0080");
    expect_escape("\xf8\xfe\xff", GH_ESC_JSON, "\\u00f8\\u00fe\\u00ff");
    /* a lone continuation byte; sequences cut short (at the end, or by another byte) */
    expect_escape("a\x80z", GH_ESC_JSON, "a\\u0080z");
    expect_escape("\xc3", GH_ESC_JSON, "\\u00c3");
    expect_escape("\xe2\x82", GH_ESC_JSON, "\\u00e2\\u0082");
    expect_escape("\xf0\x9f\x98", GH_ESC_JSON, "\\u00f0\\u009f\\u0098");
    expect_escape("\xe2\x82"
                  "A\xc3\xa9",
                  GH_ESC_JSON, "\\u00e2\\u0082A\xc3\xa9");
    expect_escape("\xc3\xc3\xa9", GH_ESC_JSON, "\\u00c3\xc3\xa9");
    expect_escape("\xf0\x9f\x98\x22", GH_ESC_JSON, "\\u00f0\\u009f\\u0098\\\"");
}

/* A strict check that s[0..n) between two '"' is one JSON string (RFC 8259 §7) in valid UTF-8
 * (RFC 3629), decoded into dec as the escaper's inverse: \u00XX is the byte XX. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0], cp, len, min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (unsigned i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static int
hexv(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool
json_string_decode(const char *s, size_t n, char *dec, size_t *dn)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x20 || u[i] == '"')
            return false;
        if (u[i] == '\\') {
            if (i + 1 >= n)
                return false;
            char e = s[i + 1];
            const char *m = strchr("\"\\/bfnrt", e);
            if (e != '\0' && m != NULL && e != 'u') {
                dec[o++] = "\"\\/\b\f\n\r\t"[m - "\"\\/bfnrt"];
                i += 2;
                continue;
            }
            if (e != 'u' || i + 6 > n)
                return false;
            int v = 0;
            for (int k = 2; k < 6; k++) {
                int h = hexv(s[i + k]);
                if (h < 0)
                    return false;
                v = v * 16 + h;
            }
            if (v > 0xff) /* the escaper only writes \u00XX */
                return false;
            dec[o++] = (char)v;
            i += 6;
            continue;
        }
        size_t l = utf8_seq(u + i, n - i);
        if (l == 0)
            return false;
        memcpy(dec + o, s + i, l);
        o += l;
        i += l;
    }
    *dn = o;
    return true;
}

/* The log's escaping: printable ASCII only, no '"'; \xHH is the byte HH. */
static bool
log_decode(const char *s, size_t n, char *dec, size_t *dn)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '"')
            return false;
        if (c == '\\') {
            if (i + 4 > n || s[i + 1] != 'x')
                return false;
            const char *hx = "0123456789ABCDEF";
            const char *h = memchr(hx, s[i + 2], 16), *l = memchr(hx, s[i + 3], 16);
            if (h == NULL || l == NULL || s[i + 2] == '\0' || s[i + 3] == '\0')
                return false;
            dec[o++] = (char)((h - hx) * 16 + (l - hx));
            i += 4;
            continue;
        }
        dec[o++] = (char)c;
        i++;
    }
    *dn = o;
    return true;
}

/* Random byte strings, biased toward what the escapers treat specially: every output is valid
 * (a JSON string in valid UTF-8, a log field of printable ASCII) and decodes back to the input. */
static void
test_escape_roundtrip(void **state)
{
    (void)state;
    static const unsigned char interesting[] = {
        0x00, 0x01, 0x09, 0x0a, 0x0d, 0x1f, 0x20, '"',  '\\', '/',  'a',  0x7f, 0x80, 0xbf, 0xc0,
        0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0xa0, 0x9f, 0x90, 0x8f};
    static char in[64], dec[64 * 2];
    uint32_t seed = 12345;
    for (int iter = 0; iter < 50000; iter++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % sizeof(in);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            uint32_t r = seed >> 8;
            in[i] = (char)(r & 1 ? interesting[(r >> 1) % sizeof(interesting)] : (r >> 1) & 0xff);
        }
        /* now and then a valid sequence, so the kept-as-is path is taken often */
        if (n >= 4 && (seed & 0x300) == 0)
            memcpy(in + n / 2 - 2, "\xf0\x9f\x98\x80", 4);
        size_t dn;
        struct gh_wr w = {out, 0, sizeof(out), 0};
        gh_vars_escape(&w, in, n, GH_ESC_JSON);
        assert_false(w.overflow);
        if (!json_string_decode(out, w.len, dec, &dn) || dn != n || memcmp(dec, in, n) != 0) {
            print_escaped("in  ", in, n);
            print_escaped("json", out, w.len);
            fail();
        }
        w = (struct gh_wr){out, 0, sizeof(out), 0};
        gh_vars_escape(&w, in, n, GH_ESC_LOG);
        assert_false(w.overflow);
        if (n == 0) {
            assert_bytes(out, w.len, "-", 1);
            continue;
        }
        if (!log_decode(out, w.len, dec, &dn) || dn != n || memcmp(dec, in, n) != 0) {
            print_escaped("in  ", in, n);
            print_escaped("log ", out, w.len);
            fail();
        }
        w = (struct gh_wr){out, 0, sizeof(out), 0};
        gh_vars_escape(&w, in, n, GH_ESC_NONE);
        assert_int_equal(w.len, n);
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)out[i];
            assert_true(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
    }
}

/* ---- templates ---- */

static void
test_templates(void **state)
{
    (void)state;
    request("GET /p/q?x=1 HTTP/1.1\r\nHost: Example.com\r\nUser-Agent: UA \"1\"\r\n\r\n");
    expect_expand("https://$host$request_uri", GH_ESC_NONE, "https://example.com/p/q?x=1");
    expect_expand("${http_user_agent}x", GH_ESC_NONE, "UA \"1\"x");
    expect_expand("${http_user_agent}x", GH_ESC_LOG, "UA \\x221\\x22x");
    expect_expand("{\\\"ua\\\":\\\"$http_user_agent\\\"}", GH_ESC_JSON,
                  "{\"ua\":\"UA \\\"1\\\"\"}");
    /* literal text is never escaped: only values are */
    expect_expand("\\\"$$\\\\", GH_ESC_LOG, "\"$\\");
    expect_expand("$$host=$host$$", GH_ESC_NONE, "$host=example.com$");
    expect_expand("[$http_x_missing]", GH_ESC_LOG, "[-]");
    expect_expand("[$http_x_missing]", GH_ESC_JSON, "[]");
    expect_expand("[$http_x_missing]", GH_ESC_NONE, "[]");
}

/* $1..$9 of a rewrite's match. */
static void
test_captures(void **state)
{
    (void)state;
    request("GET /ab HTTP/1.1\r\nHost: h\r\n\r\n");
    const char *conf = "server { listen 127.0.0.1:8080; return 200;\n"
                       "  rewrite \"^/(a)(x)?(b)$\" \"/$1_$3.html$10${3}-$2-$uri\"; }\n";
    struct gh_conf_diag d;
    struct gh_config *c = gh_conf_load_string("t.conf", conf, strlen(conf), &d);
    gh_conf_diag_print(&d, stderr);
    gh_conf_diag_free(&d);
    assert_non_null(c);
    const struct gh_tmpl *t = c->servers[0].pc.rewrites[0].repl;
    /* "/ab" matched: group 2 did not take part */
    const size_t unset = (size_t)-1;
    const size_t ov[] = {0, 3, 1, 2, unset, unset, 2, 3};
    struct gh_vars_caps caps = {"/ab", ov, 4};
    struct gh_wr w = {out, 0, sizeof(out), 0};
    gh_vars_expand(t, &fx.ex, &w, GH_ESC_NONE, &caps);
    assert_bytes(out, w.len, "/a_b.htmla0b--/ab", 17);
    /* fewer pairs than the highest capture: empty */
    caps.n = 2;
    w = (struct gh_wr){out, 0, sizeof(out), 0};
    gh_vars_expand(t, &fx.ex, &w, GH_ESC_NONE, &caps);
    assert_bytes(out, w.len, "/a_.htmla0--/ab", 15);
    /* no captures at all */
    w = (struct gh_wr){out, 0, sizeof(out), 0};
    gh_vars_expand(t, &fx.ex, &w, GH_ESC_NONE, NULL);
    assert_bytes(out, w.len, "/_.html0--/ab", 13);
    /* a capture's bytes are of the decoded path: percent-encoded again, so that decoding the
     * rewritten path gives them back */
    const size_t ov2[] = {0, 4, 1, 3, unset, unset, 3, 4};
    caps = (struct gh_vars_caps){"/\r\n\"", ov2, 4};
    w = (struct gh_wr){out, 0, sizeof(out), 0};
    gh_vars_expand(t, &fx.ex, &w, GH_ESC_NONE, &caps);
    assert_bytes(out, w.len, "/%0D%0A_%22.html%0D%0A0%22--/ab", 31);
    gh_conf_unref(c);
}

/* ---- not fitting ---- */

/* Expanding tmpl into exactly cap bytes, for every cap below what it needs: flagged, never
 * written past (the buffer is malloc'd to cap bytes); with enough room, exactly the value. */
static void
expect_fits_only_whole(const char *tmpl, enum gh_vars_esc esc)
{
    struct gh_config *c;
    const struct gh_tmpl *t = compile(tmpl, &c);
    static char full[65536];
    struct gh_wr w = {full, 0, sizeof(full), 0};
    gh_vars_expand(t, &fx.ex, &w, esc, NULL);
    assert_false(w.overflow);
    size_t need = w.len;
    for (size_t cap = 0; cap <= need + 1; cap++) {
        if (cap > 300 && cap + 300 < need && cap % 37 != 0)
            continue; /* every size near the ends, a sample in between */
        char *buf = malloc(cap ? cap : 1);
        assert_non_null(buf);
        w = (struct gh_wr){buf, 0, cap, 0};
        gh_vars_expand(t, &fx.ex, &w, esc, NULL);
        assert_true(w.len <= cap);
        if (cap < need) {
            assert_true(w.overflow);
        } else {
            assert_false(w.overflow);
            assert_bytes(buf, w.len, full, need);
        }
        free(buf);
    }
    gh_conf_unref(c);
}

static void
test_overflow(void **state)
{
    (void)state;
    /* a long field (repeated), a long query, a long path */
    static char head[16384];
    size_t o = 0;
    o += (size_t)snprintf(head + o, sizeof(head) - o, "GET /");
    for (int i = 0; i < 300; i++)
        o += (size_t)snprintf(head + o, sizeof(head) - o, "seg%d/", i);
    o += (size_t)snprintf(head + o, sizeof(head) - o, "?");
    for (int i = 0; i < 100; i++)
        o += (size_t)snprintf(head + o, sizeof(head) - o, "k%d=v%d&", i, i);
    o += (size_t)snprintf(head + o, sizeof(head) - o, " HTTP/1.1\r\nHost: Big.Example.Test\r\n");
    for (int i = 0; i < 3; i++) {
        o += (size_t)snprintf(head + o, sizeof(head) - o, "X-Long: ");
        for (int k = 0; k < 200; k++)
            o += (size_t)snprintf(head + o, sizeof(head) - o, "\"v\xc3\xa9\\");
        o += (size_t)snprintf(head + o, sizeof(head) - o, "\r\n");
    }
    o += (size_t)snprintf(head + o, sizeof(head) - o, "Cookie: a=1; sid=%0200d\r\n\r\n", 7);
    assert_true(o < sizeof(head) - 1);
    request(head);
    static const char *const tmpls[] = {
        "$host",
        "https://$host$request_uri",
        "$uri|$args|$is_args|$arg_k99|$arg_none",
        "$http_x_long",
        "[$cookie_sid] $cookie_a $http_cookie",
        "$remote_addr:$remote_port $request $status $request_time $time_iso8601 $time_local",
        "$$ $$ $server_name $scheme $request_method $server_protocol",
    };
    for (size_t i = 0; i < GH_ARRAY_LEN(tmpls); i++)
        for (int esc = GH_ESC_NONE; esc <= GH_ESC_JSON; esc++)
            expect_fits_only_whole(tmpls[i], (enum gh_vars_esc)esc);
    /* one variable at a time, with the escapings that grow it most */
    for (size_t cap = 0; cap < 2000; cap += 7) {
        char *buf = malloc(cap ? cap : 1);
        struct gh_wr w = {buf, 0, cap, 0};
        gh_vars_put(&fx.ex, GH_VAR_HTTP_, "x-long", 6, &w, GH_ESC_LOG);
        assert_true(w.len <= cap);
        assert_true(w.overflow);
        w = (struct gh_wr){buf, 0, cap, 0};
        gh_vars_escape(&w, "\x01\x02\x03\xff\"\\", 6, GH_ESC_JSON);
        assert_true(w.len <= cap);
        assert_int_equal(w.overflow, cap < 28);
        free(buf);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uri_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arg, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cookie, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_addr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_addr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostname, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_times, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_and_upstream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_variable_expands, setup, teardown),
        cmocka_unit_test(test_escape_none),
        cmocka_unit_test(test_escape_log),
        cmocka_unit_test(test_escape_json),
        cmocka_unit_test(test_escape_roundtrip),
        cmocka_unit_test_setup_teardown(test_templates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_captures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
