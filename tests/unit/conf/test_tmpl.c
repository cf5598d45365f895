/*
 * test_tmpl.c - the template compiler (conf/tmpl.c) as the config loader
 * reaches it: every variable of GH_VAR_TABLE in every context (compiled where
 * it exists, a file:line:col error where it does not), unknown names with
 * their suggestion, "$$", "${name}", the captures of rewrite, the malformed
 * forms, and long or many-part templates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "conf/conf.h"
#include "conf/tmpl.h"

/* ---- helpers ---- */

#define SRV "server { listen 127.0.0.1:8080; return 200; }\n"

static struct gh_config *
load(const char *text)
{
    struct gh_conf_diag d;
    struct gh_config *c = gh_conf_load_string("t.conf", text, strlen(text), &d);
    if (c == NULL) {
        fprintf(stderr, "# config:\n%s\n# errors:\n", text);
        gh_conf_diag_print(&d, stderr);
    }
    assert_int_equal(d.n, 0);
    gh_conf_diag_free(&d);
    assert_non_null(c);
    return c;
}

/* Load must fail with exactly one diagnostic, msg. */
static void
expect_only_error(const char *text, const char *msg)
{
    struct gh_conf_diag d;
    struct gh_config *c = gh_conf_load_string("t.conf", text, strlen(text), &d);
    assert_null(c);
    if (d.n != 1 || strcmp(d.msgs[0], msg) != 0) {
        fprintf(stderr, "# config: %s\n# expected only: %s\n# got:\n", text, msg);
        for (uint32_t i = 0; i < d.n; i++)
            fprintf(stderr, "#   %s\n", d.msgs[i]);
    }
    assert_int_equal(d.n, 1);
    assert_string_equal(d.msgs[0], msg);
    gh_conf_diag_free(&d);
}

/*
 * The places a template is written, each as the config text around one quoted string on the
 * first line (so an error's column is the prefix's length + 2 + the offset in the string).
 */
enum place { P_REQ_HEADER, P_RETURN, P_REWRITE, P_RESP_HEADER, P_LOG, P__COUNT };

static const struct {
    const char *prefix, *suffix;
    unsigned ctx;     /* GH_TC_* */
    const char *what; /* the directive named in messages */
} places[P__COUNT] = {
    [P_REQ_HEADER] = {"request_header set X-T \"", "\";\n" SRV, GH_TC_REQUEST, "request_header"},
    [P_RETURN] = {"server { listen 127.0.0.1:8080; return 200 \"", "\"; }\n", GH_TC_REQUEST,
                  "return"},
    [P_REWRITE] = {"server { listen 127.0.0.1:8080; return 200; "
                   "rewrite \"^/(a)(b)(c)(d)(e)(f)(g)(h)(i)$\" \"",
                   "\"; }\n", GH_TC_REWRITE, "rewrite"},
    [P_RESP_HEADER] = {"response_header set X-T \"", "\";\n" SRV, GH_TC_RESPONSE,
                       "response_header"},
    [P_LOG] = {"log_format f \"", "\";\naccess_log stderr f;\n" SRV, GH_TC_LOG, "log_format"},
};

static char text_buf[65536];

/* The config with tmpl in place p. */
static const char *
conf_text(enum place p, const char *tmpl)
{
    int n =
        snprintf(text_buf, sizeof(text_buf), "%s%s%s", places[p].prefix, tmpl, places[p].suffix);
    assert_true(n > 0 && (size_t)n < sizeof(text_buf));
    return text_buf;
}

/* Column of tmpl[off] in conf_text(p, tmpl). */
static unsigned
col_of(enum place p, size_t off)
{
    return (unsigned)(strlen(places[p].prefix) + 1 + off);
}

/* The compiled template of place p in c. */
static const struct gh_tmpl *
tmpl_of(const struct gh_config *c, enum place p)
{
    assert_true(c->n_servers > 0);
    const struct gh_proxy_conf *pc = &c->servers[0].pc;
    switch (p) {
    case P_REQ_HEADER:
        assert_true(pc->n_req_rules > 0);
        return pc->req_rules[0].tmpl;
    case P_RETURN:
        return pc->return_tmpl;
    case P_REWRITE:
        assert_true(pc->n_rewrites > 0);
        return pc->rewrites[0].repl;
    case P_RESP_HEADER:
        assert_true(pc->n_resp_rules > 0);
        return pc->resp_rules[0].tmpl;
    case P_LOG:
        assert_int_equal(c->access_log_format, GH_LOG_CUSTOM);
        return c->access_log_tmpl;
    case P__COUNT:
        break;
    }
    fail();
    return NULL;
}

/* Load tmpl in place p and return the config (the caller unrefs it). */
static struct gh_config *
load_at(enum place p, const char *tmpl)
{
    return load(conf_text(p, tmpl));
}

/* Expect exactly one error at tmpl[off]: "t.conf:1:COL: " msg. */
static void
expect_error_at(enum place p, const char *tmpl, size_t off, const char *msg)
{
    char want[1024];
    snprintf(want, sizeof(want), "t.conf:1:%u: %s", col_of(p, off), msg);
    expect_only_error(conf_text(p, tmpl), want);
}

/* The template's parts as text: literals as they are, variables as {id:arg}, captures {$N}. */
static const char *
show(const struct gh_tmpl *t)
{
    static char b[4096];
    size_t o = 0;
    b[0] = '\0';
    for (uint32_t i = 0; i < t->n; i++) {
        const struct gh_tmpl_part *pt = &t->parts[i];
        int n;
        if (pt->var == GH_VAR_NONE)
            n = snprintf(b + o, sizeof(b) - o, "[%.*s]", (int)pt->len, pt->text);
        else if (pt->var == GH_VAR_CAPTURE)
            n = snprintf(b + o, sizeof(b) - o, "{$%c}", pt->text[0]);
        else if (pt->len > 0)
            n = snprintf(b + o, sizeof(b) - o, "{%s:%.*s}", gh_var_name(pt->var), (int)pt->len,
                         pt->text);
        else
            n = snprintf(b + o, sizeof(b) - o, "{%s}", gh_var_name(pt->var));
        assert_true(n > 0 && (size_t)n < sizeof(b) - o);
        o += (size_t)n;
    }
    return b;
}

/* ---- every variable in every context ---- */

static const struct {
    enum gh_var id;
    const char *name;
    unsigned where;
    int req;
} table[] = {
#define ROW(id, nm, wh, rq) {GH_VAR_##id, nm, wh, rq},
    GH_VAR_TABLE(ROW)
#undef ROW
};

/* What the "it is in ..." of a message says for a variable's contexts. */
static const char *
where_text(unsigned where)
{
    switch (where) {
    case GH_VA_REQ:
        return "request_header and return, rewrite, response_header, log_format";
    case GH_VA_RESP:
        return "response_header, log_format";
    case GH_VA_LOG:
        return "log_format";
    }
    fail_msg("a context mask the test does not know: %#x", where);
    return NULL;
}

static void
test_table_is_complete(void **state)
{
    (void)state;
    /* every id of the enum is in the table once, in order, named as gh_var_name says */
    assert_int_equal(GH_ARRAY_LEN(table), GH_VAR_CAPTURE - 1);
    for (size_t i = 0; i < GH_ARRAY_LEN(table); i++) {
        assert_int_equal(table[i].id, (int)i + 1);
        assert_string_equal(gh_var_name(table[i].id), table[i].name);
        size_t nl = strlen(table[i].name);
        /* prefixes end in '_' and are the ones whose value names a field, argument or cookie */
        bool prefix = table[i].name[nl - 1] == '_';
        assert_int_equal(prefix, table[i].id == GH_VAR_HTTP_ || table[i].id == GH_VAR_ARG_ ||
                                     table[i].id == GH_VAR_COOKIE_);
        (void)where_text(table[i].where);
    }
    assert_string_equal(gh_var_name(GH_VAR__COUNT), "?");
}

/* Variable i written in a template that starts with "/a" (so it is a rewrite replacement too),
 * plain ("/a$name-z") or braced ("/a${name}z"); a prefix gets the name "Ab_c". The '$' is at
 * *dollar_off. */
static void
var_text(char *out, size_t cap, size_t i, bool braced, size_t *dollar_off)
{
    const char *nm = table[i].name;
    const char *arg = nm[strlen(nm) - 1] == '_' ? "Ab_c" : "";
    *dollar_off = 2;
    if (braced)
        snprintf(out, cap, "/a${%s%s}z", nm, arg);
    else
        snprintf(out, cap, "/a$%s%s-z", nm, arg);
}

static void
test_every_variable_in_every_context(void **state)
{
    (void)state;
    for (size_t i = 0; i < GH_ARRAY_LEN(table); i++) {
        for (int p = 0; p < P__COUNT; p++) {
            for (int braced = 0; braced < 2; braced++) {
                char t[128];
                size_t off;
                var_text(t, sizeof(t), i, braced, &off);
                const char *nm = table[i].name;
                bool prefix = nm[strlen(nm) - 1] == '_';
                if (table[i].where & places[p].ctx) {
                    struct gh_config *c = load_at((enum place)p, t);
                    const struct gh_tmpl *tm = tmpl_of(c, (enum place)p);
                    assert_non_null(tm);
                    assert_int_equal(tm->n, 3);
                    assert_int_equal(tm->parts[0].var, GH_VAR_NONE);
                    assert_int_equal(tm->parts[0].len, 2);
                    assert_memory_equal(tm->parts[0].text, "/a", 2);
                    assert_int_equal(tm->parts[1].var, table[i].id);
                    assert_int_equal(tm->parts[2].var, GH_VAR_NONE);
                    assert_int_equal(tm->parts[2].len, braced ? 1 : 2);
                    assert_memory_equal(tm->parts[2].text, braced ? "z" : "-z", tm->parts[2].len);
                    if (prefix) {
                        /* $http_ names the field lower-cased with '-' for '_'; the others
                         * lower-cased */
                        const char *want = table[i].id == GH_VAR_HTTP_ ? "ab-c" : "ab_c";
                        assert_int_equal(tm->parts[1].len, 4);
                        assert_memory_equal(tm->parts[1].text, want, 4);
                    } else {
                        assert_int_equal(tm->parts[1].len, 0);
                    }
                    assert_true(tm->flags & GH_TMPL_VARS);
                    assert_int_equal(!!(tm->flags & GH_TMPL_REQ), table[i].req);
                    gh_conf_unref(c);
                } else {
                    char msg[512];
                    snprintf(msg, sizeof(msg),
                             "variable '$%s%s' is not available in '%s' (it is in %s)", nm,
                             prefix ? "Ab_c" : "", places[p].what, where_text(table[i].where));
                    expect_error_at((enum place)p, t, off, msg);
                }
            }
        }
    }
}

/* A response_header that uses the request's head makes the config keep a copy of it. */
static void
test_keep_request(void **state)
{
    (void)state;
    struct gh_config *c = load("response_header set X-A \"$status $msec\";\n" SRV);
    assert_false(c->keep_request);
    gh_conf_unref(c);
    c = load("response_header set X-A \"$status $http_x_a\";\n" SRV);
    assert_true(c->keep_request);
    gh_conf_unref(c);
    c = load("request_header set X-A \"$uri\";\n" SRV);
    assert_false(c->keep_request); /* expanded while the request is there */
    gh_conf_unref(c);
}

/* ---- unknown names ---- */

static void
test_unknown_with_suggestion(void **state)
{
    (void)state;
    static const struct {
        const char *tmpl, *shown, *suggestion;
    } cases[] = {
        {"$hots", "hots", "$host"},
        {"$request_url", "request_url", "$request_uri"},
        {"$remote_adr", "remote_adr", "$remote_addr"},
        {"$reqest_method", "reqest_method", "$request_method"},
        {"$upstream_stauts", "upstream_stauts", "$upstream_status"},
        {"$htp_user_agent", "htp_user_agent", "$http_NAME"},
        {"$cookies_sid", "cookies_sid", "$cookie_NAME"},
        {"$cookie", "cookie", "$cookie_NAME"},
        {"${args_x}", "args_x", "$arg_NAME"},
        {"$time_iso", "time_iso", "$time_iso8601"},
    };
    for (size_t i = 0; i < GH_ARRAY_LEN(cases); i++) {
        char msg[256];
        snprintf(msg, sizeof(msg), "unknown variable '$%s' in 'log_format' (did you mean '%s'?)",
                 cases[i].shown, cases[i].suggestion);
        expect_error_at(P_LOG, cases[i].tmpl, 0, msg);
    }
    /* nothing close: no suggestion */
    expect_error_at(P_LOG, "a $xyzzy b", 2, "unknown variable '$xyzzy' in 'log_format'");
    expect_error_at(P_RETURN, "$q", 0, "unknown variable '$q' in 'return'");
    /* the name ends where the name characters do */
    expect_error_at(P_REQ_HEADER, "$hosts.x", 0,
                    "unknown variable '$hosts' in 'request_header' (did you mean '$host'?)");
    /* a long name is shown shortened, and is too far from any to suggest one */
    char t[300] = "$";
    memset(t + 1, 'v', 200);
    t[201] = '\0';
    char msg[256];
    snprintf(msg, sizeof(msg), "unknown variable '$%.*s...' in 'log_format'", 64, t + 1);
    expect_error_at(P_LOG, t, 0, msg);
    /* one error per template: the first problem */
    expect_error_at(P_LOG, "$host $bad1 $bad2", 6, "unknown variable '$bad1' in 'log_format'");
}

/* "$http_" with no name is not the variable "http_". */
static void
test_empty_prefixed_names(void **state)
{
    (void)state;
    static const char *const prefixes[] = {"http_", "arg_", "cookie_"};
    for (size_t i = 0; i < GH_ARRAY_LEN(prefixes); i++) {
        char t[64], msg[256];
        snprintf(t, sizeof(t), "x$%s", prefixes[i]);
        snprintf(msg, sizeof(msg), "'$%s' in 'log_format' needs a name after it (as in $%sNAME)",
                 prefixes[i], prefixes[i]);
        expect_error_at(P_LOG, t, 1, msg);
        snprintf(t, sizeof(t), "x${%s}y", prefixes[i]);
        expect_error_at(P_LOG, t, 1, msg);
        /* '-' ends a name: "$http_-x" is "$http_" then "-x" */
        snprintf(t, sizeof(t), "$%s-x", prefixes[i]);
        snprintf(msg, sizeof(msg),
                 "'$%s' in 'request_header' needs a name after it (as in $%sNAME)", prefixes[i],
                 prefixes[i]);
        expect_error_at(P_REQ_HEADER, t, 0, msg);
    }
    /* one byte of name is enough */
    struct gh_config *c = load_at(P_LOG, "$http_a$arg_b$cookie_c");
    assert_string_equal(show(c->access_log_tmpl), "{http_:a}{arg_:b}{cookie_:c}");
    gh_conf_unref(c);
}

/* ---- the forms of a reference ---- */

static void
test_dollar_dollar(void **state)
{
    (void)state;
    struct gh_config *c = load_at(P_LOG, "a$$b$$$host$$");
    assert_string_equal(show(c->access_log_tmpl), "[a$][b$]{host}[$]");
    gh_conf_unref(c);
    c = load_at(P_LOG, "$$");
    assert_string_equal(show(c->access_log_tmpl), "[$]");
    assert_false(c->access_log_tmpl->flags & GH_TMPL_REQ);
    gh_conf_unref(c);
    c = load_at(P_LOG, "$${host}");
    assert_string_equal(show(c->access_log_tmpl), "[$][{host}]");
    gh_conf_unref(c);
    /* without variables, "$$" is still one dollar wherever the text is used as it is */
    c = load_at(P_RETURN, "cost: $$5");
    const struct gh_proxy_conf *pc = &c->servers[0].pc;
    assert_non_null(pc->return_tmpl);
    assert_string_equal(show(pc->return_tmpl), "[cost: $][5]");
    gh_conf_unref(c);
    c = load_at(P_REQ_HEADER, "$$1");
    assert_non_null(c->servers[0].pc.req_rules[0].tmpl);
    assert_string_equal(show(c->servers[0].pc.req_rules[0].tmpl), "[$][1]");
    gh_conf_unref(c);
    /* text without any '$' is used as it is: no template */
    c = load_at(P_RETURN, "plain");
    assert_null(c->servers[0].pc.return_tmpl);
    assert_string_equal(c->servers[0].pc.return_body, "plain");
    gh_conf_unref(c);
}

static void
test_braced(void **state)
{
    (void)state;
    struct gh_config *c = load_at(P_LOG, "${host}x${uri}${args}.${http_user_agent}_");
    assert_string_equal(show(c->access_log_tmpl), "{host}[x]{uri}{args}[.]{http_:user-agent}[_]");
    gh_conf_unref(c);
    /* unbraced, the name runs as far as name characters go */
    c = load_at(P_LOG, "$host.x$uri/$args?$http_user_agent!");
    assert_string_equal(show(c->access_log_tmpl),
                        "{host}[.x]{uri}[/]{args}[?]{http_:user-agent}[!]");
    gh_conf_unref(c);
    /* "$hostx" is not $host followed by x */
    expect_error_at(P_LOG, "$hostx", 0,
                    "unknown variable '$hostx' in 'log_format' (did you mean '$host'?)");
    c = load_at(P_LOG, "${host}x");
    assert_string_equal(show(c->access_log_tmpl), "{host}[x]");
    gh_conf_unref(c);
}

/* Names compare case-insensitively, as in nginx; a prefixed variable's name is taken as its
 * field (lower case, '-' for '_'), argument or cookie name. */
static void
test_case_insensitive_names(void **state)
{
    (void)state;
    struct gh_config *c = load_at(P_LOG, "$HOST ${Remote_Addr} $HTTP_USER_AGENT $Arg_Q");
    assert_string_equal(show(c->access_log_tmpl),
                        "{host}[ ]{remote_addr}[ ]{http_:user-agent}[ ]{arg_:q}");
    gh_conf_unref(c);
}

static void
test_malformed(void **state)
{
    (void)state;
    expect_error_at(P_LOG, "a${host", 1, "unterminated '${' in 'log_format' (expected '}')");
    expect_error_at(P_LOG, "a${", 1, "unterminated '${' in 'log_format' (expected '}')");
    expect_error_at(P_RETURN, "${", 0, "unterminated '${' in 'return' (expected '}')");
    expect_error_at(P_LOG, "${http_x-y}", 8,
                    "invalid character '-' in '${...}' in 'log_format' (a variable name has "
                    "letters, digits and '_')");
    expect_error_at(P_LOG, "${ho st}", 4,
                    "invalid character ' ' in '${...}' in 'log_format' (a variable name has "
                    "letters, digits and '_')");
    expect_error_at(P_LOG, "a$", 1,
                    "'$' in 'log_format' must start a variable name (write $$ for a dollar sign)");
    expect_error_at(P_LOG, "$", 0,
                    "'$' in 'log_format' must start a variable name (write $$ for a dollar sign)");
    expect_error_at(P_LOG, "a $ b", 2,
                    "'$' in 'log_format' must start a variable name (write $$ for a dollar sign)");
    expect_error_at(P_LOG, "${}", 0,
                    "'$' in 'log_format' must start a variable name (write $$ for a dollar sign)");
    expect_error_at(P_RESP_HEADER, "$-", 0,
                    "'$' in 'response_header' must start a variable name (write $$ for a dollar "
                    "sign)");
    expect_error_at(P_LOG, "$$$", 2,
                    "'$' in 'log_format' must start a variable name (write $$ for a dollar sign)");
}

/* ---- positions ---- */

static void
test_error_positions(void **state)
{
    (void)state;
    /* a bare word (no quote before it) */
    expect_only_error("log_format f $bad;\n" SRV, "t.conf:1:14: unknown variable '$bad' in "
                                                  "'log_format'");
    /* a later line */
    expect_only_error(SRV "server {\n  listen 127.0.0.1:8081;\n  return 200 \"ok $sttus\";\n}\n",
                      "t.conf:4:18: unknown variable '$sttus' in 'return' (did you mean "
                      "'$status'?)");
    /* escapes before the variable take two bytes of the line each */
    expect_only_error("log_format f \"\\\"\\\\\\t$bad\";\n" SRV,
                      "t.conf:1:21: unknown variable '$bad' in 'log_format'");
    /* log_format's strings are one template, but a position is in the string it is in */
    expect_only_error("log_format f \"$host \"\n    \"x$bad\";\n" SRV,
                      "t.conf:2:7: unknown variable '$bad' in 'log_format'");
    expect_only_error("log_format f escape=json \"$host \" \"x\" \"\\\"$bad\";\n" SRV,
                      "t.conf:1:42: unknown variable '$bad' in 'log_format'");
    /* an unterminated "${" in the last string of several */
    expect_only_error("log_format f \"$host\" \"${uri\";\n" SRV,
                      "t.conf:1:23: unterminated '${' in 'log_format' (expected '}')");
}

/* ---- rewrite captures ---- */

static void
test_captures(void **state)
{
    (void)state;
    struct gh_config *c = load_at(P_REWRITE, "/$1/$2$3$4$5$6$7$8$9?q=$1");
    assert_string_equal(show(c->servers[0].pc.rewrites[0].repl),
                        "[/]{$1}[/]{$2}{$3}{$4}{$5}{$6}{$7}{$8}{$9}[?q=]{$1}");
    assert_false(c->servers[0].pc.rewrites[0].repl->flags & GH_TMPL_REQ);
    gh_conf_unref(c);
    /* as in nginx, a capture is one digit: what follows it is text */
    c = load_at(P_REWRITE, "/$1_$2.html$10${3}x$4a");
    assert_string_equal(show(c->servers[0].pc.rewrites[0].repl),
                        "[/]{$1}[_]{$2}[.html]{$1}[0]{$3}[x]{$4}[a]");
    gh_conf_unref(c);
    /* with variables */
    c = load_at(P_REWRITE, "/$host/$1$is_args$args");
    assert_string_equal(show(c->servers[0].pc.rewrites[0].repl), "[/]{host}[/]{$1}{is_args}{args}");
    assert_true(c->servers[0].pc.rewrites[0].repl->flags & GH_TMPL_REQ);
    gh_conf_unref(c);

    /* $0 is not a capture; ${12} is not one either */
    expect_error_at(P_REWRITE, "/$0", 1, "'$0' in 'rewrite': captures are $1..$9");
    expect_error_at(P_REWRITE, "/${12}", 1, "'$12' in 'rewrite': captures are $1..$9");
    /* only in rewrite */
    static const enum place others[] = {P_REQ_HEADER, P_RETURN, P_RESP_HEADER, P_LOG};
    for (size_t i = 0; i < GH_ARRAY_LEN(others); i++) {
        for (char d = '1'; d <= '9'; d++) {
            char t[16], msg[256];
            snprintf(t, sizeof(t), "x$%c", d);
            snprintf(msg, sizeof(msg),
                     "'$%c' in '%s': captures $1..$9 exist only in 'rewrite' replacements", d,
                     places[others[i]].what);
            expect_error_at(others[i], t, 1, msg);
        }
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "'$1' in '%s': captures $1..$9 exist only in 'rewrite' replacements",
                 places[others[i]].what);
        expect_error_at(others[i], "$1_x", 0, msg);
    }

    /* more captures than groups */
    expect_only_error("server { listen 127.0.0.1:8080; return 200; rewrite ^/(a)$ /$2; }\n",
                      "t.conf:1:60: '$2' in 'rewrite' but the regex has 1 capture group");
    expect_only_error("server { listen 127.0.0.1:8080; return 200; rewrite ^/a$ /$1; }\n",
                      "t.conf:1:58: '$1' in 'rewrite' but the regex has 0 capture groups");
    expect_only_error("server { listen 127.0.0.1:8080; return 200; "
                      "rewrite ^/(a)(b)(?:c)$ /$1$3$2; }\n",
                      "t.conf:1:68: '$3' in 'rewrite' but the regex has 2 capture groups");
    /* named groups count too */
    c = load("server { listen 127.0.0.1:8080; return 200; rewrite ^/(?<x>a)(b)$ /$2$1; }\n");
    gh_conf_unref(c);
}

/* ---- size ---- */

static void
test_long_literal(void **state)
{
    (void)state;
    enum { N = 6000 };
    char *t = malloc(N + 16);
    assert_non_null(t);
    memset(t, 'a', N);
    strcpy(t + N, "$host");
    struct gh_config *c = load_at(P_LOG, t);
    const struct gh_tmpl *tm = c->access_log_tmpl;
    assert_int_equal(tm->n, 2);
    assert_int_equal(tm->parts[0].len, N);
    assert_int_equal(tm->parts[1].var, GH_VAR_HOST);
    gh_conf_unref(c);
    /* one long literal with "$$" in the middle */
    memset(t, 'b', N);
    memcpy(t + N / 2, "$$", 2);
    t[N] = '\0';
    c = load_at(P_LOG, t);
    tm = c->access_log_tmpl;
    size_t total = 0;
    for (uint32_t i = 0; i < tm->n; i++) {
        assert_int_equal(tm->parts[i].var, GH_VAR_NONE);
        total += tm->parts[i].len;
    }
    assert_int_equal(total, N - 1);
    gh_conf_unref(c);
    free(t);
}

static void
test_many_parts(void **state)
{
    (void)state;
    enum { N = 700 }; /* parts of each kind: far more than the first allocation */
    static char t[N * 16];
    size_t o = 0;
    for (int i = 0; i < N; i++)
        o += (size_t)snprintf(t + o, sizeof(t) - o, "%d$uri${arg_k%d}", i % 10, i);
    struct gh_config *c = load_at(P_LOG, t);
    const struct gh_tmpl *tm = c->access_log_tmpl;
    assert_int_equal(tm->n, 3 * N);
    for (int i = 0; i < N; i++) {
        const struct gh_tmpl_part *p = &tm->parts[3 * i];
        assert_int_equal(p[0].var, GH_VAR_NONE);
        assert_int_equal(p[0].len, 1);
        assert_int_equal(p[0].text[0], '0' + i % 10);
        assert_int_equal(p[1].var, GH_VAR_URI);
        assert_int_equal(p[2].var, GH_VAR_ARG_);
        char k[16];
        int kl = snprintf(k, sizeof(k), "k%d", i);
        assert_int_equal(p[2].len, kl);
        assert_memory_equal(p[2].text, k, (size_t)kl);
    }
    gh_conf_unref(c);
    /* only variables, back to back */
    o = 0;
    for (int i = 0; i < N; i++)
        o += (size_t)snprintf(t + o, sizeof(t) - o, "$status");
    c = load_at(P_LOG, t);
    assert_int_equal(c->access_log_tmpl->n, N);
    gh_conf_unref(c);
    /* only "$$": literal pieces */
    o = 0;
    for (int i = 0; i < N; i++)
        o += (size_t)snprintf(t + o, sizeof(t) - o, "$$");
    c = load_at(P_LOG, t);
    size_t total = 0;
    for (uint32_t i = 0; i < c->access_log_tmpl->n; i++)
        total += c->access_log_tmpl->parts[i].len;
    assert_int_equal(total, N);
    gh_conf_unref(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_complete),
        cmocka_unit_test(test_every_variable_in_every_context),
        cmocka_unit_test(test_keep_request),
        cmocka_unit_test(test_unknown_with_suggestion),
        cmocka_unit_test(test_empty_prefixed_names),
        cmocka_unit_test(test_dollar_dollar),
        cmocka_unit_test(test_braced),
        cmocka_unit_test(test_case_insensitive_names),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_error_positions),
        cmocka_unit_test(test_captures),
        cmocka_unit_test(test_long_literal),
        cmocka_unit_test(test_many_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
