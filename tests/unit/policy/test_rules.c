/*
 * test_rules.c - access rules: the compiler (conf/access.c, conf/cond.c: steps, runs of plain
 * address rules as one prefix set, conditions in order) and the matcher (policy/rules.c:
 * each subject and operator, `not`, cookies, query arguments, hosts with ports), from real
 * config text; and the cost of a long rule list (printed, not asserted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "conf/conf.h"
#include "policy/cidr.h"
#include "policy/rules.h"

static struct gh_config *cfg;

/* The server's compiled access rules of a config whose server block holds body. */
static const struct gh_access *
load(const char *body)
{
    char text[1 << 16];
    snprintf(text, sizeof(text), "server { listen 127.0.0.1:1; %s }\n", body);
    struct gh_conf_diag diag;
    gh_conf_unref(cfg);
    cfg = gh_conf_load_string("test.conf", text, strlen(text), &diag);
    if (cfg == NULL) {
        gh_conf_diag_print(&diag, stderr);
        fail();
    }
    gh_conf_diag_free(&diag);
    return cfg->servers[0].pc.access;
}

static bool
loads(const char *body)
{
    char text[4096];
    snprintf(text, sizeof(text), "server { listen 127.0.0.1:1; %s }\n", body);
    struct gh_conf_diag diag;
    struct gh_config *c = gh_conf_load_string("test.conf", text, strlen(text), &diag);
    gh_conf_diag_free(&diag);
    gh_conf_unref(c);
    return c != NULL;
}

static uint8_t ip4[16], ip6[16];

/* A request: address, method, host, path?query, then header name/value pairs, NULL-ended. */
static struct gh_rule_req
req(const char *addr, const char *method, const char *host, const char *target, ...)
{
    static struct gh_h1_header f[8];
    static char pathbuf[256];
    struct gh_rule_req r = {0};
    if (strchr(addr, ':')) {
        inet_pton(AF_INET6, addr, ip6);
        r.family = AF_INET6;
        r.ip = ip6;
    } else {
        inet_pton(AF_INET, addr, ip4);
        r.family = AF_INET;
        r.ip = ip4;
    }
    r.method = method;
    r.method_len = (uint32_t)strlen(method);
    r.host = host;
    r.host_len = host ? (uint32_t)strlen(host) : 0;
    snprintf(pathbuf, sizeof(pathbuf), "%s", target);
    char *q = strchr(pathbuf, '?');
    r.path = pathbuf;
    r.path_len = (uint32_t)(q ? (size_t)(q - pathbuf) : strlen(pathbuf));
    r.query = q ? q + 1 : "";
    r.query_len = (uint32_t)strlen(r.query);
    va_list ap;
    va_start(ap, target);
    uint32_t n = 0;
    for (const char *name; n < 8 && (name = va_arg(ap, const char *)) != NULL; n++) {
        const char *v = va_arg(ap, const char *);
        f[n] = (struct gh_h1_header){name, v, (uint32_t)strlen(name), (uint32_t)strlen(v), 0};
    }
    va_end(ap);
    r.fields = f;
    r.n_fields = n;
    return r;
}

/* The status of the first step that decides (0: allow; -1: none). */
static int
decide(const struct gh_access *acc, const struct gh_rule_req *r)
{
    for (uint32_t i = 0; i < acc->n_steps; i++) {
        const struct gh_access_step *s = &acc->steps[i];
        if (s->set != NULL) {
            uint32_t k = gh_cidr_set_find(s->set, r->family, r->ip);
            if (k != GH_CIDR_NONE)
                return s->rules[k].status;
        } else if (gh_rule_match(s->conds, s->n_conds, r)) {
            return s->rule.status;
        }
    }
    return -1;
}

#define R(...) req(__VA_ARGS__, NULL)

static void
test_steps(void **state)
{
    (void)state;
    const struct gh_access *a = load("deny 10.0.0.1; allow 10.0.0.0/8; deny all; ");
    assert_int_equal(a->n_steps, 1); /* one prefix set, as before conditions existed */
    assert_false(a->conds);
    a = load("deny 10.0.0.1; allow 10.0.0.0/8; deny 451 if path /x; deny 1.2.3.4; "
             "allow 5.0.0.0/8 if method GET; deny all;");
    assert_int_equal(a->n_steps, 5);
    assert_non_null(a->steps[0].set);
    assert_null(a->steps[1].set);
    assert_non_null(a->steps[2].set);
    assert_int_equal(a->steps[3].n_conds, 2); /* its address is a condition before the rest */
    assert_true(a->conds);
    assert_false(a->needs_tls);
    struct gh_rule_req r = R("10.0.0.1", "GET", "a", "/x");
    assert_int_equal(decide(a, &r), 403);
    r = R("10.0.0.2", "GET", "a", "/x");
    assert_int_equal(decide(a, &r), 0);
    r = R("1.2.3.4", "GET", "a", "/x");
    assert_int_equal(decide(a, &r), 451); /* file order: the condition before the address */
    r = R("1.2.3.4", "GET", "a", "/y");
    assert_int_equal(decide(a, &r), 403);
    r = R("5.1.1.1", "GET", "a", "/y");
    assert_int_equal(decide(a, &r), 0);
    r = R("5.1.1.1", "POST", "a", "/y");
    assert_int_equal(decide(a, &r), 403);
    a = load("deny if sni = a.test;");
    assert_true(a->needs_tls);
}

static void
test_path_ops(void **state)
{
    (void)state;
    const struct gh_access *a = load("deny 401 if path = /exact; deny 402 if path /pre/; "
                                     "deny 403 if path ~ \\.php$; deny 404 if path ~* ^/CASE;");
    struct gh_rule_req r = R("1.1.1.1", "GET", "h", "/exact");
    assert_int_equal(decide(a, &r), 401);
    r = R("1.1.1.1", "GET", "h", "/exact/");
    assert_int_equal(decide(a, &r), -1);
    r = R("1.1.1.1", "GET", "h", "/pre/x");
    assert_int_equal(decide(a, &r), 402);
    r = R("1.1.1.1", "GET", "h", "/pre");
    assert_int_equal(decide(a, &r), -1);
    r = R("1.1.1.1", "GET", "h", "/a/b.php?x=.php");
    assert_int_equal(decide(a, &r), 403);
    r = R("1.1.1.1", "GET", "h", "/a/b.phps");
    assert_int_equal(decide(a, &r), -1);
    r = R("1.1.1.1", "GET", "h", "/case/x");
    assert_int_equal(decide(a, &r), 404);
}

static void
test_host_method_not(void **state)
{
    (void)state;
    const struct gh_access *a = load("deny 401 if host = Admin.Example and not client ::1,"
                                     "192.168.0.0/16; deny 402 if method PUT,DELETE; "
                                     "deny 403 if host ~ ^api\\.;");
    struct gh_rule_req r = R("1.1.1.1", "GET", "admin.example:8443", "/");
    assert_int_equal(decide(a, &r), 401);
    r = R("192.168.3.4", "GET", "admin.example", "/");
    assert_int_equal(decide(a, &r), -1);
    r = R("::1", "GET", "ADMIN.EXAMPLE", "/");
    assert_int_equal(decide(a, &r), -1);
    r = R("1.1.1.1", "DELETE", "x", "/");
    assert_int_equal(decide(a, &r), 402);
    r = R("1.1.1.1", "delete", "x", "/"); /* methods are case-sensitive (RFC 9110 §9.1) */
    assert_int_equal(decide(a, &r), -1);
    r = R("1.1.1.1", "GET", "api.x:80", "/");
    assert_int_equal(decide(a, &r), 403);
    r = R("1.1.1.1", "GET", "[::1]:80", "/");
    assert_int_equal(decide(a, &r), -1);
    r = R("1.1.1.1", "GET", NULL, "/"); /* no Host: host conditions do not hold */
    assert_int_equal(decide(a, &r), -1);
}

static void
test_args_headers_cookies(void **state)
{
    (void)state;
    const struct gh_access *a =
        load("deny 401 if arg debug; deny 402 if arg id ~ ^[^0-9]; "
             "deny 403 if header X-Token = secret; deny 404 if header X-Api; "
             "deny 405 if cookie role = admin; deny 406 if cookie tracking; "
             "deny 407 if header user-agent ^ \"bad bot\";");
    struct gh_rule_req r = R("1.1.1.1", "GET", "h", "/?a=1&debug");
    assert_int_equal(decide(a, &r), 401);
    r = R("1.1.1.1", "GET", "h", "/?a=1&debug=");
    assert_int_equal(decide(a, &r), 401);
    r = R("1.1.1.1", "GET", "h", "/?xdebug=1&debugx");
    assert_int_equal(decide(a, &r), -1);
    r = R("1.1.1.1", "GET", "h", "/?id=12&id=x");
    assert_int_equal(decide(a, &r), -1); /* the first id decides */
    r = R("1.1.1.1", "GET", "h", "/?id=x1");
    assert_int_equal(decide(a, &r), 402);
    r = R("1.1.1.1", "GET", "h", "/", "x-token", "other", "X-Token", "secret");
    assert_int_equal(decide(a, &r), 403); /* any field of the name */
    r = R("1.1.1.1", "GET", "h", "/", "X-Api", "");
    assert_int_equal(decide(a, &r), 404);
    r = R("1.1.1.1", "GET", "h", "/", "Cookie", "a=1;role=admin");
    assert_int_equal(decide(a, &r), 405);
    r = R("1.1.1.1", "GET", "h", "/", "Cookie", "xrole=admin; role=user", "cookie", "role=admin");
    assert_int_equal(decide(a, &r), 405);
    r = R("1.1.1.1", "GET", "h", "/", "Cookie", "role=administrator; tracking=");
    assert_int_equal(decide(a, &r), 406);
    r = R("1.1.1.1", "GET", "h", "/", "Cookie", "; ;=;tracking");
    assert_int_equal(decide(a, &r), -1); /* no '=': not a cookie */
    r = R("1.1.1.1", "GET", "h", "/", "User-Agent", "bad bot/1");
    assert_int_equal(decide(a, &r), 407);
}

static void
test_tls_facts(void **state)
{
    (void)state;
    const struct gh_access *a =
        load("deny 401 if sni = Internal.Example; allow if cert_subject ~ CN=ops; "
             "deny 402 if path ^ /ops/;");
    struct gh_rule_req r = R("1.1.1.1", "GET", "h", "/");
    r.sni = "internal.example";
    assert_int_equal(decide(a, &r), 401);
    r = R("1.1.1.1", "GET", "h", "/ops/x");
    assert_int_equal(decide(a, &r), 402); /* no certificate: the allow does not hold */
    r.cert = "C=DE,CN=ops-7";
    assert_int_equal(decide(a, &r), 0);
}

static void
test_errors(void **state)
{
    (void)state;
    assert_true(loads("deny if path /a and not header X;"));
    assert_false(loads("deny if path /a and;"));
    assert_false(loads("deny if not;"));
    assert_false(loads("deny if path;"));
    assert_false(loads("deny if path ~;"));
    assert_false(loads("deny if header X =;"));
    assert_false(loads("deny if client ,10.0.0.0/8;"));
    assert_false(loads("deny if method GET,,POST;"));
    assert_false(loads("deny if \"path\" /a;")); /* keywords are bare words */
    assert_false(loads("allow 403 if path /a;"));
    assert_false(loads("redirect 302 if path /a;"));
    assert_false(loads("return 200 a b if path /a;"));
    assert_true(loads("return 403 if path /a; return 200 \"ok\";")); /* a rule and a return */
    assert_false(loads("return 200; return 201;"));
}

static void
test_many_rules(void **state)
{
    (void)state;
    size_t cap = 1 << 20, n = 0;
    char *body = malloc(cap);
    for (int i = 0; i < 2000; i++)
        n += (size_t)snprintf(body + n, cap - n, "deny 403 if path ^ /p%d/ and method POST;\n", i);
    n += (size_t)snprintf(body + n, cap - n, "deny 451 if header X-Last;");
    char *text = malloc(cap + 64);
    snprintf(text, cap + 64, "server { listen 127.0.0.1:1; %s }\n", body);
    struct gh_conf_diag diag;
    gh_conf_unref(cfg);
    cfg = gh_conf_load_string("many.conf", text, strlen(text), &diag);
    assert_non_null(cfg);
    gh_conf_diag_free(&diag);
    const struct gh_access *a = cfg->servers[0].pc.access;
    assert_int_equal(a->n_steps, 2001);
    struct gh_rule_req r = R("1.1.1.1", "GET", "h", "/p1999/x", "X-Last", "1");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int st = 0;
    for (int i = 0; i < 1000; i++)
        st = decide(a, &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(st, 451);
    double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1000 / 1e3;
    fprintf(stderr, "# 2001 conditional rules, the last one matching: %.1f us a request\n", us);
    free(body);
    free(text);
}

static int
teardown(void **state)
{
    (void)state;
    gh_conf_unref(cfg);
    cfg = NULL;
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps),           cmocka_unit_test(test_path_ops),
        cmocka_unit_test(test_host_method_not), cmocka_unit_test(test_args_headers_cookies),
        cmocka_unit_test(test_tls_facts),       cmocka_unit_test(test_errors),
        cmocka_unit_test(test_many_rules),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
