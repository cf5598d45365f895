/*
 * fuzz_tmpl.c - libFuzzer target for the template compiler (conf/tmpl.c) and
 * the expander (proxy/vars.c).
 *
 * The first byte chooses how the rest is used:
 *   q w s l   compiled directly as a quoted string for request_header, rewrite,
 *             response_header or log_format (any bytes, NUL included)
 *   Q W S L   the same as a bare word
 *   c         written into `log_format f "<rest>";` and loaded as a config (the
 *             lexer's escapes and several strings joined into one template)
 *   r         written into a rewrite's replacement `"/<rest>"` and loaded
 *   other     the whole input, as a log_format string
 * A compiled template must have sane parts, a failed one exactly one error
 * inside the token; a config's errors must point inside their line. What
 * compiles is expanded against a fixed request in the three escapings, also
 * into a buffer of exactly some smaller size: flagged as overflowing exactly
 * when the whole does not fit, never written past (ASan).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf_int.h"
#include "http/h1.h"
#include "http/uri.h"
#include "proxy/exchange.h"
#include "proxy/vars.h"
#include "proxy/worker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TEXT 4096

/* ---- a request to expand against (built once) ---- */

static const char base_conf[] =
    "server { listen 127.0.0.1:8080; server_name fuzz.test; return 200; }\n";
static const char head[] = "GET /a/%2e%2e/b%0a%7f?x=1&y=%22&z HTTP/1.1\r\n"
                           "Host: Fuzz.Test:8080\r\n"
                           "User-Agent: f\"u\\zz \xc3\xa9\xff\r\n"
                           "Cookie: a=1; sid=\"q\"\r\n"
                           "Cookie: b=2\r\n"
                           "X-A: 1\r\n"
                           "X-A: 2\r\n"
                           "\r\n";

static struct {
    struct gh_config *cfg;
    struct gh_loop_clock clock;
    struct gh_worker w;
    struct gh_wcfg wc;
    struct gh_client_addr client;
    struct gh_h1_header hdrs[16];
    struct gh_request r;
    char uri[256];
    struct gh_exchange ex;
} fx;

static int
no_local_addr(struct gh_exchange *ex, struct sockaddr_storage *ss)
{
    (void)ex;
    (void)ss;
    return -1;
}

static const struct gh_downstream_ops down = {.local_addr = no_local_addr};

static void
setup(void)
{
    struct gh_conf_diag d;
    fx.cfg = gh_conf_load_string("base.conf", base_conf, sizeof(base_conf) - 1, &d);
    GH_ASSERT(fx.cfg != NULL);
    gh_conf_diag_free(&d);
    fx.clock.now_ms = 5000000;
    fx.clock.wall_s = 1700000000;
    fx.w.loop = (struct gh_loop *)(void *)&fx.clock;
    fx.wc.cfg = fx.cfg;
    fx.client = (struct gh_client_addr){.family = AF_INET6, .port = 40000, .ip = {0xfd, 0, 0, 1}};

    struct gh_h1_request pr = {.headers = fx.hdrs, .max_headers = 16};
    struct gh_h1_limits lim = {8192, 8192, 16, 65536};
    int rc = gh_h1_parse_request(head, sizeof(head) - 1, &pr, &lim);
    GH_ASSERT(rc == (int)sizeof(head) - 1);
    fx.r = (struct gh_request){.method = pr.method,
                               .method_len = pr.method_len,
                               .method_id = pr.method_id,
                               .target_form = pr.target_form,
                               .version = pr.version,
                               .target = pr.target,
                               .target_len = pr.target_len,
                               .host = pr.host,
                               .host_len = pr.host_len,
                               .fields = fx.hdrs,
                               .n_fields = pr.num_headers,
                               .listener = &fx.cfg->listeners[0],
                               .raw = head,
                               .raw_len = sizeof(head) - 1,
                               .path = pr.target,
                               .path_len = pr.target_len};
    struct gh_exchange *ex = &fx.ex;
    ex->down = &down;
    ex->w = &fx.w;
    ex->wc = &fx.wc;
    ex->client = &fx.client;
    ex->t_start = fx.clock.now_ms - 12;
    ex->version = fx.r.version;
    ex->listener = fx.r.listener;
    ex->srv = &fx.cfg->servers[0];
    ex->req = &fx.r;
    const char *q = memchr(fx.r.path, '?', fx.r.path_len);
    size_t route_len = (size_t)(q - fx.r.path);
    ex->args = q + 1;
    ex->args_len = (uint32_t)(fx.r.path_len - route_len - 1);
    const char *u;
    size_t ul;
    GH_ASSERT(gh_uri_normalize_path(fx.r.path, route_len, fx.uri, &u, &ul) == 0);
    ex->uri = u;
    ex->uri_len = (uint32_t)ul;
    ex->status = 200;
    ex->bytes_out = 1234;
    ex->head_bytes = 200;
}

/* ---- checks ---- */

static void
check_parts(const struct gh_tmpl *t, unsigned ctx)
{
    for (uint32_t i = 0; i < t->n; i++) {
        const struct gh_tmpl_part *p = &t->parts[i];
        GH_ASSERT(p->var < GH_VAR__COUNT);
        if (p->var == GH_VAR_NONE) {
            GH_ASSERT(p->len > 0 && p->text != NULL);
        } else if (p->var == GH_VAR_CAPTURE) {
            GH_ASSERT(ctx & GH_TC_REWRITE);
            GH_ASSERT(p->text[0] >= '1' && p->text[0] <= '9');
            GH_ASSERT(t->flags & GH_TMPL_VARS);
        } else {
            GH_ASSERT(t->flags & GH_TMPL_VARS);
            bool prefix =
                p->var == GH_VAR_HTTP_ || p->var == GH_VAR_ARG_ || p->var == GH_VAR_COOKIE_;
            GH_ASSERT(prefix == (p->len > 0));
        }
    }
}

/* Expand t every way; the size of the smaller buffer comes from the input. */
static void
expand(const struct gh_tmpl *t, size_t small)
{
    static char big[1 << 20];
    static const size_t ov[] = {0, 4, 1, 2, (size_t)-1, (size_t)-1, 2, 4};
    struct gh_vars_caps caps = {"/abc", ov, 4};
    for (int esc = GH_ESC_NONE; esc <= GH_ESC_JSON; esc++) {
        struct gh_wr w = {big, 0, sizeof(big), 0};
        gh_vars_expand(t, &fx.ex, &w, (enum gh_vars_esc)esc, &caps);
        GH_ASSERT(!w.overflow);
        size_t cap = small % (w.len + 1);
        char *buf = malloc(cap ? cap : 1);
        GH_ASSERT(buf != NULL);
        struct gh_wr s = {buf, 0, cap, 0};
        gh_vars_expand(t, &fx.ex, &s, (enum gh_vars_esc)esc, &caps);
        GH_ASSERT(s.len <= cap);
        GH_ASSERT(s.overflow == (w.len > cap));
        free(buf);
    }
}

/* Every "FILE:LINE:COL: " of d points into text (a column at most one past its line). */
static void
check_positions(const struct gh_conf_diag *d, const char *text, size_t len)
{
    for (uint32_t i = 0; i < d->n; i++) {
        unsigned line, col;
        if (sscanf(d->msgs[i], "fuzz.conf:%u:%u:", &line, &col) != 2)
            continue;
        GH_ASSERT(line >= 1 && col >= 1);
        const char *p = text, *end = text + len;
        for (unsigned l = 1; l < line && p < end; l++) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            p = nl != NULL ? nl + 1 : end;
        }
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t line_len = (size_t)((nl != NULL ? nl : end) - p);
        GH_ASSERT(col <= line_len + 1);
    }
}

/* ---- the ways in ---- */

static void
direct(const char *s, size_t n, unsigned ctx, enum tok_type type, size_t small)
{
    static const char *const what[] = {"request_header", "rewrite", "response_header",
                                       "log_format"};
    struct gh_conf_diag d = {0};
    struct conf_state st = {0};
    st.arena = gh_arena_new();
    st.diag = &d;
    struct conf_tok t = {0};
    t.type = type;
    t.text = gh_arena_strndup(st.arena, s, n);
    t.len = (uint32_t)n;
    t.pos = (struct conf_pos){"fuzz.conf", 3, 7};
    const struct gh_tmpl *tm = conf_tmpl(&st, &t, ctx, what[__builtin_ctz(ctx)]);
    if (tm == NULL) {
        GH_ASSERT(d.n == 1);
        unsigned line, col;
        GH_ASSERT(sscanf(d.msgs[0], "fuzz.conf:%u:%u:", &line, &col) == 2);
        GH_ASSERT(line == 3);
        unsigned first = 7 + (type == TOK_STRING ? 1 : 0);
        GH_ASSERT(col >= first && col <= first + n);
    } else {
        GH_ASSERT(d.n == 0);
        check_parts(tm, ctx);
        expand(tm, small);
    }
    free(st.keys);
    gh_conf_diag_free(&d);
    gh_arena_free(st.arena);
}

static void
via_config(const char *s, size_t n, bool rewrite, size_t small)
{
    static char text[MAX_TEXT + 256];
    const char *pre = rewrite ? "server { listen 127.0.0.1:8080; return 200;\n"
                                "rewrite \"^/(.)(x)?(.*)$\" \"/"
                              : "log_format f \"";
    const char *post = rewrite ? "\"; }\n" : "\";\naccess_log stderr f;\n";
    size_t o = 0, pl = strlen(pre), ql = strlen(post);
    memcpy(text + o, pre, pl);
    o += pl;
    memcpy(text + o, s, n);
    o += n;
    memcpy(text + o, post, ql);
    o += ql;
    if (!rewrite) {
        memcpy(text + o, base_conf, sizeof(base_conf) - 1);
        o += sizeof(base_conf) - 1;
    }
    struct gh_conf_diag d;
    struct gh_config *c = gh_conf_load_string_flags("fuzz.conf", text, o, GH_CONF_NO_INCLUDE, &d);
    if (c == NULL) {
        GH_ASSERT(d.n > 0);
        check_positions(&d, text, o);
    } else {
        GH_ASSERT(d.n == 0);
        const struct gh_tmpl *t = NULL;
        if (rewrite && c->n_servers > 0 && c->servers[0].pc.n_rewrites > 0)
            t = c->servers[0].pc.rewrites[0].repl;
        else if (!rewrite && c->access_log_format == GH_LOG_CUSTOM)
            t = c->access_log_tmpl;
        if (t != NULL) {
            check_parts(t, rewrite ? GH_TC_REWRITE : GH_TC_LOG);
            expand(t, small);
        }
        gh_conf_unref(c);
    }
    gh_conf_diag_free(&d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fx.cfg == NULL)
        setup();
    if (size == 0 || size > MAX_TEXT)
        return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    size_t small = size * 7919; /* some size below the whole, varying with the input */
    switch (data[0]) {
    case 'q':
    case 'Q':
        direct(s, n, GH_TC_REQUEST, data[0] == 'q' ? TOK_STRING : TOK_WORD, small);
        break;
    case 'w':
    case 'W':
        direct(s, n, GH_TC_REWRITE, data[0] == 'w' ? TOK_STRING : TOK_WORD, small);
        break;
    case 's':
    case 'S':
        direct(s, n, GH_TC_RESPONSE, data[0] == 's' ? TOK_STRING : TOK_WORD, small);
        break;
    case 'l':
    case 'L':
        direct(s, n, GH_TC_LOG, data[0] == 'l' ? TOK_STRING : TOK_WORD, small);
        break;
    case 'c':
        via_config(s, n, false, small);
        break;
    case 'r':
        via_config(s, n, true, small);
        break;
    default:
        direct((const char *)data, size, GH_TC_LOG, TOK_STRING, small);
        break;
    }
    return 0;
}
