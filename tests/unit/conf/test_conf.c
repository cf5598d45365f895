/*
 * test_conf.c - the config language: every directive with its default and an
 * explicit value, inheritance, every error message, include, and the
 * per-request lookups.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/arena.h"

/* ---- helpers ---- */

static struct gh_config *
load(const char *text)
{
    struct gh_conf_diag d;
    struct gh_config *c = gh_conf_load_string("t.conf", text, strlen(text), &d);
    if (c == NULL)
        gh_conf_diag_print(&d, stderr);
    assert_int_equal(d.n, 0);
    gh_conf_diag_free(&d);
    assert_non_null(c);
    return c;
}

/* Load must fail and report msg (exactly) among its diagnostics. */
static void
expect_error(const char *text, const char *msg)
{
    struct gh_conf_diag d;
    struct gh_config *c = gh_conf_load_string("t.conf", text, strlen(text), &d);
    assert_null(c);
    bool found = false;
    for (uint32_t i = 0; i < d.n; i++)
        if (strcmp(d.msgs[i], msg) == 0)
            found = true;
    if (!found) {
        fprintf(stderr, "# expected: %s\n# got:\n", msg);
        for (uint32_t i = 0; i < d.n; i++)
            fprintf(stderr, "#   %s\n", d.msgs[i]);
    }
    gh_conf_diag_free(&d);
    assert_true(found);
}

/* Load must fail with exactly one diagnostic, msg. */
static void
expect_only_error(const char *text, const char *msg)
{
    struct gh_conf_diag d;
    struct gh_config *c = gh_conf_load_string("t.conf", text, strlen(text), &d);
    assert_null(c);
    if (d.n != 1 || strcmp(d.msgs[0], msg) != 0) {
        fprintf(stderr, "# expected only: %s\n# got:\n", msg);
        for (uint32_t i = 0; i < d.n; i++)
            fprintf(stderr, "#   %s\n", d.msgs[i]);
    }
    assert_int_equal(d.n, 1);
    assert_string_equal(d.msgs[0], msg);
    gh_conf_diag_free(&d);
}

/* The diagnostics of text must be exactly want[0..n), in that order. */
static void
expect_errors_in_order(const char *text, const char *const *want, uint32_t n)
{
    struct gh_conf_diag d;
    assert_null(gh_conf_load_string("t.conf", text, strlen(text), &d));
    bool same = d.n == n;
    for (uint32_t i = 0; same && i < n; i++)
        same = strcmp(d.msgs[i], want[i]) == 0;
    if (!same) {
        fprintf(stderr, "# expected, in this order:\n");
        for (uint32_t i = 0; i < n; i++)
            fprintf(stderr, "#   %s\n", want[i]);
        fprintf(stderr, "# got:\n");
        for (uint32_t i = 0; i < d.n; i++)
            fprintf(stderr, "#   %s\n", d.msgs[i]);
    }
    gh_conf_diag_free(&d);
    assert_true(same);
}

#define SRV "server { listen 127.0.0.1:8080; return 200; }\n"

static const struct gh_server_conf *
srv(const struct gh_config *c, uint32_t i)
{
    assert_true(i < c->n_servers);
    return &c->servers[i];
}

static char tmpdir[64];

static void
write_file(const char *rel, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int
setup_tmp(void **state)
{
    strcpy(tmpdir, "/tmp/gh_conf_test.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int
teardown_tmp(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- defaults and explicit values ---- */

static void
test_defaults(void **state)
{
    struct gh_config *c = load(SRV);
    assert_int_equal(c->refcount, 1);
    assert_string_equal(c->source, "t.conf");
    assert_int_equal(c->threads, 0);
    assert_int_equal(c->drain_timeout_ms, 10000);
    assert_false(c->access_log_on);
    assert_null(c->access_log_path);
    assert_null(c->error_log_path);
    assert_int_equal(c->error_log_level, GH_LOG_INFO);
    const struct gh_server_conf *s = srv(c, 0);
    assert_int_equal(s->client_header_timeout_ms, 10000);
    assert_int_equal(s->keepalive_timeout_ms, 75000);
    assert_int_equal(s->keepalive_requests, 10000);
    assert_int_equal(s->max_request_line, 8192);
    assert_int_equal(s->max_header_line, 8192);
    assert_int_equal(s->max_headers, 100);
    assert_int_equal(s->max_head_size, 32768);
    assert_false(s->is_default);
    assert_int_equal(s->n_names, 0);
    assert_int_equal(s->n_routes, 0);
    const struct gh_proxy_conf *pc = &s->pc;
    assert_int_equal(pc->client_body_timeout_ms, 60000);
    assert_int_equal(pc->send_timeout_ms, 60000);
    assert_int_equal(pc->connect_timeout_ms, 5000);
    assert_int_equal(pc->first_byte_timeout_ms, 60000);
    assert_int_equal(pc->read_timeout_ms, 60000);
    assert_int_equal(pc->tunnel_idle_timeout_ms, 300000);
    assert_int_equal(pc->client_max_body_size, 0);
    assert_int_equal(pc->forwarded, GH_FWD_XFF);
    assert_false(pc->via);
    assert_true(pc->splice);
    assert_null(pc->upstream_host);
    assert_int_equal(pc->n_req_rules, 0);
    assert_int_equal(pc->n_resp_rules, 0);
    assert_null(pc->upstream);
    assert_int_equal(pc->return_status, 200);
    assert_null(pc->return_body);
    assert_int_equal(c->n_listeners, 1);
    assert_int_equal(c->listeners[0].backlog, 511);
    assert_string_equal(c->listeners[0].addr.text, "127.0.0.1:8080");
    gh_conf_unref(c);
}

static void
test_main_directives(void **state)
{
    struct gh_config *c = load("threads 4;\ndrain_timeout 3s;\naccess_log /var/log/a.log json;\n"
                               "error_log /var/log/e.log debug;\n" SRV);
    assert_int_equal(c->threads, 4);
    assert_int_equal(c->drain_timeout_ms, 3000);
    assert_true(c->access_log_on);
    assert_string_equal(c->access_log_path, "/var/log/a.log");
    assert_int_equal(c->access_log_format, GH_LOG_JSON);
    assert_string_equal(c->error_log_path, "/var/log/e.log");
    assert_int_equal(c->error_log_level, GH_LOG_DEBUG);
    gh_conf_unref(c);

    c = load("threads auto; access_log stderr; error_log stderr warn;\n" SRV);
    assert_int_equal(c->threads, 0);
    assert_true(c->access_log_on);
    assert_null(c->access_log_path);
    assert_int_equal(c->access_log_format, GH_LOG_COMBINED);
    assert_null(c->error_log_path);
    assert_int_equal(c->error_log_level, GH_LOG_WARN);
    gh_conf_unref(c);

    c = load("threads 256; access_log off; error_log stderr error;\n" SRV);
    assert_int_equal(c->threads, 256);
    assert_false(c->access_log_on);
    assert_int_equal(c->error_log_level, GH_LOG_ERROR);
    gh_conf_unref(c);
}

static void
test_server_directives(void **state)
{
    struct gh_config *c = load("server {\n"
                               "  listen 127.0.0.1:8080 default backlog=128;\n"
                               "  server_name A.Test *.B.test c.test.;\n"
                               "  client_header_timeout 3s;\n"
                               "  keepalive_timeout 0;\n"
                               "  keepalive_requests 5;\n"
                               "  max_request_line 4k;\n"
                               "  max_header_line 1024;\n"
                               "  max_headers 256;\n"
                               "  max_head_size 64k;\n"
                               "  return 204;\n"
                               "}\n");
    const struct gh_server_conf *s = srv(c, 0);
    assert_true(s->is_default);
    assert_int_equal(s->n_names, 3);
    assert_string_equal(s->names[0], "a.test");
    assert_int_equal(s->name_lens[0], 6);
    assert_string_equal(s->names[1], "*.b.test");
    assert_string_equal(s->names[2], "c.test");
    assert_int_equal(s->client_header_timeout_ms, 3000);
    assert_int_equal(s->keepalive_timeout_ms, 0);
    assert_int_equal(s->keepalive_requests, 5);
    assert_int_equal(s->max_request_line, 4096);
    assert_int_equal(s->max_header_line, 1024);
    assert_int_equal(s->max_headers, 256);
    assert_int_equal(s->max_head_size, 65536);
    assert_int_equal(c->listeners[0].backlog, 128);
    assert_ptr_equal(c->listeners[0].default_server, s);
    assert_string_equal(s->file, "t.conf");
    assert_int_equal(s->line, 1);
    gh_conf_unref(c);
}

static void
test_proxy_directives(void **state)
{
    struct gh_config *c = load("upstream app { server 127.0.0.1:3000; }\n"
                               "server {\n"
                               "  listen 127.0.0.1:8080;\n"
                               "  proxy app;\n"
                               "  client_body_timeout 1s;\n"
                               "  send_timeout 2s;\n"
                               "  connect_timeout 500ms;\n"
                               "  first_byte_timeout 4s;\n"
                               "  read_timeout 5m;\n"
                               "  tunnel_idle_timeout 1h;\n"
                               "  client_max_body_size 1m;\n"
                               "  forwarded rfc7239;\n"
                               "  via on;\n"
                               "  upstream_host backend.internal:8080;\n"
                               "  request_header set X-A \"1 2\";\n"
                               "  request_header add X-B b;\n"
                               "  request_header remove X-C;\n"
                               "  response_header set Cache-Control no-store;\n"
                               "}\n");
    const struct gh_proxy_conf *pc = &srv(c, 0)->pc;
    assert_ptr_equal(pc->upstream, &c->upstreams[0]);
    assert_int_equal(pc->return_status, 0);
    assert_int_equal(pc->client_body_timeout_ms, 1000);
    assert_int_equal(pc->send_timeout_ms, 2000);
    assert_int_equal(pc->connect_timeout_ms, 500);
    assert_int_equal(pc->first_byte_timeout_ms, 4000);
    assert_int_equal(pc->read_timeout_ms, 300000);
    assert_int_equal(pc->tunnel_idle_timeout_ms, 3600000);
    assert_int_equal(pc->client_max_body_size, 1048576);
    assert_int_equal(pc->forwarded, GH_FWD_RFC7239);
    assert_true(pc->via);
    assert_int_equal(pc->upstream_host_len, 21);
    assert_memory_equal(pc->upstream_host, "backend.internal:8080", 21);
    assert_int_equal(pc->n_req_rules, 3);
    assert_int_equal(pc->req_rules[0].op, GH_HDR_SET);
    assert_string_equal(pc->req_rules[0].name, "X-A");
    assert_int_equal(pc->req_rules[0].name_len, 3);
    assert_string_equal(pc->req_rules[0].value, "1 2");
    assert_int_equal(pc->req_rules[0].value_len, 3);
    assert_int_equal(pc->req_rules[1].op, GH_HDR_ADD);
    assert_int_equal(pc->req_rules[2].op, GH_HDR_REMOVE);
    assert_null(pc->req_rules[2].value);
    assert_int_equal(pc->n_resp_rules, 1);
    assert_string_equal(pc->resp_rules[0].value, "no-store");
    gh_conf_unref(c);
}

static void
test_forwarded_modes(void **state)
{
    static const char *const modes[] = {"xff", "rfc7239", "both", "off"};
    for (int i = 0; i < 4; i++) {
        char text[256];
        snprintf(text, sizeof(text), "forwarded %s;\n" SRV, modes[i]);
        struct gh_config *c = load(text);
        assert_int_equal(srv(c, 0)->pc.forwarded, i);
        gh_conf_unref(c);
    }
}

static void
test_return_body(void **state)
{
    struct gh_config *c =
        load("server { listen 127.0.0.1:8080; return 403 \"no \\\"way\\\" \\\\o/\"; }");
    const struct gh_proxy_conf *pc = &srv(c, 0)->pc;
    assert_int_equal(pc->return_status, 403);
    assert_string_equal(pc->return_body, "no \"way\" \\o/");
    assert_int_equal(pc->return_body_len, 12);
    gh_conf_unref(c);
}

static void
test_string_escapes(void **state)
{
    /* \n \r \t as in nginx; an unknown escape such as \d stays as written (regexes) */
    struct gh_config *c = load("server { listen 127.0.0.1:8080; return 200 \"a\\nb\\tc\\r\\d\"; }");
    const struct gh_proxy_conf *pc = &srv(c, 0)->pc;
    assert_string_equal(pc->return_body, "a\nb\tc\r\\d");
    assert_int_equal(pc->return_body_len, 8);
    gh_conf_unref(c);
}

static void
test_addresses_as_nginx_users_write_them(void **state)
{
    /* `listen PORT` is every IPv4 interface; an origin without a port is port 80 */
    struct gh_config *c = load("upstream u { server 127.0.0.2; server [::1]; }\n"
                               "server { listen 18081; proxy u; }");
    const struct sockaddr_in *l = (const struct sockaddr_in *)&c->listeners[0].addr.ss;
    assert_int_equal(l->sin_family, AF_INET);
    assert_int_equal(ntohs(l->sin_port), 18081);
    assert_int_equal(l->sin_addr.s_addr, htonl(INADDR_ANY));
    const struct gh_upstream_conf *u = &c->upstreams[0];
    assert_int_equal(ntohs(((const struct sockaddr_in *)&u->servers[0].addr.ss)->sin_port), 80);
    assert_string_equal(u->servers[0].addr.text, "127.0.0.2:80");
    assert_int_equal(ntohs(((const struct sockaddr_in6 *)&u->servers[1].addr.ss)->sin6_port), 80);
    gh_conf_unref(c);
    expect_error("server { listen 80x; proxy 127.0.0.1:1; }",
                 "t.conf:1:17: invalid address '80x' in 'listen' (expected e.g. 127.0.0.1:8080, "
                 "[::1]:8080, *:8080 or 8080)");
}

static void
test_nginx_names_point_to_ours(void **state)
{
    expect_error(
        "server { listen 127.0.0.1:1; location / { } }",
        "t.conf:1:30: unknown directive 'location' (in Gatehouse: route [= | ~] PATH { })");
    expect_error("server { listen 127.0.0.1:1; proxy_pass http://a; }",
                 "t.conf:1:30: unknown directive 'proxy_pass' (in Gatehouse: proxy NAME|ADDR:PORT "
                 "(no http://))");
}

static void
test_upstream_directives(void **state)
{
    struct gh_config *c = load("upstream a {\n"
                               "  server 127.0.0.1:3000 weight=3;\n"
                               "  server [::1]:3001;\n"
                               "  server localhost:3002 weight=1000;\n"
                               "  keepalive 0;\n"
                               "  keepalive_timeout 5s;\n"
                               "  balance round_robin;\n"
                               "}\n"
                               "upstream b { server 127.0.0.1:4000; }\n"
                               "server { listen 127.0.0.1:8080; proxy a; }\n");
    assert_int_equal(c->n_upstreams, 2);
    const struct gh_upstream_conf *a = &c->upstreams[0], *b = &c->upstreams[1];
    assert_string_equal(a->name, "a");
    assert_int_equal(a->index, 0);
    assert_int_equal(a->n_servers, 3);
    assert_int_equal(a->servers[0].weight, 3);
    assert_int_equal(a->servers[1].weight, 1);
    assert_int_equal(a->servers[2].weight, 1000);
    assert_int_equal(a->servers[1].addr.ss.ss_family, AF_INET6);
    assert_string_equal(a->servers[2].addr.text, "localhost:3002");
    assert_int_equal(a->keepalive, 0);
    assert_int_equal(a->keepalive_timeout_ms, 5000);
    assert_int_equal(a->balance, GH_BALANCE_ROUND_ROBIN);
    assert_string_equal(a->file, "t.conf");
    assert_int_equal(a->line, 1);
    assert_int_equal(b->keepalive, 128);
    assert_int_equal(b->keepalive_timeout_ms, 60000);
    assert_int_equal(b->index, 1);
    assert_int_equal(b->line, 9);
    gh_conf_unref(c);
}

static void
test_durations(void **state)
{
    static const struct {
        const char *text;
        uint32_t ms;
    } cases[] = {
        {"500ms", 500},   {"10s", 10000}, {"5m", 300000},       {"1h", 3600000},
        {"1d", 86400000}, {"7", 7000},    {"49d", 4233600000u}, {"4294967295ms", 4294967295u}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "read_timeout %s;\n" SRV, cases[i].text);
        struct gh_config *c = load(text);
        assert_int_equal(srv(c, 0)->pc.read_timeout_ms, cases[i].ms);
        gh_conf_unref(c);
    }
}

static void
test_sizes(void **state)
{
    static const struct {
        const char *text;
        uint64_t bytes;
    } cases[] = {{"512", 512},    {"8k", 8192},          {"8K", 8192},
                 {"1m", 1048576}, {"1g", 1073741824ull}, {"16777216g", 18014398509481984ull}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "client_max_body_size %s;\n" SRV, cases[i].text);
        struct gh_config *c = load(text);
        assert_true(srv(c, 0)->pc.client_max_body_size == cases[i].bytes);
        gh_conf_unref(c);
    }
}

/* ---- inheritance ---- */

static void
test_inheritance(void **state)
{
    struct gh_config *c = load("connect_timeout 1s;\n"
                               "read_timeout 2s;\n"
                               "via on;\n"
                               "upstream app { server 127.0.0.1:3000; }\n"
                               "server {\n"
                               "  listen 127.0.0.1:8080;\n"
                               "  read_timeout 3s;\n"
                               "  proxy app;\n"
                               "  route /a/ { send_timeout 4s; }\n"
                               "  route /b/ { read_timeout 5s; via off; splice off; return 404; }\n"
                               "}\n");
    const struct gh_server_conf *s = srv(c, 0);
    assert_int_equal(s->pc.connect_timeout_ms, 1000);
    assert_int_equal(s->pc.read_timeout_ms, 3000);
    assert_true(s->pc.via);
    const struct gh_route *a = &s->routes[0], *b = &s->routes[1];
    assert_string_equal(a->path, "/a/");
    assert_int_equal(a->pc.connect_timeout_ms, 1000);
    assert_int_equal(a->pc.read_timeout_ms, 3000);
    assert_int_equal(a->pc.send_timeout_ms, 4000);
    assert_ptr_equal(a->pc.upstream, &c->upstreams[0]);
    assert_true(a->pc.via);
    assert_int_equal(b->pc.read_timeout_ms, 5000);
    assert_false(b->pc.via);
    assert_true(a->pc.splice);
    assert_false(b->pc.splice);
    assert_null(b->pc.upstream); /* return replaces the inherited proxy */
    assert_int_equal(b->pc.return_status, 404);
    gh_conf_unref(c);
}

static void
test_inheritance_server_level_from_top(void **state)
{
    struct gh_config *c = load("client_header_timeout 7s;\nmax_headers 50;\nkeepalive_requests 9;\n"
                               "server { listen 127.0.0.1:8080; return 200; }\n"
                               "server { listen 127.0.0.1:8081; max_headers 60; return 200; }\n");
    assert_int_equal(srv(c, 0)->client_header_timeout_ms, 7000);
    assert_int_equal(srv(c, 0)->max_headers, 50);
    assert_int_equal(srv(c, 0)->keepalive_requests, 9);
    assert_int_equal(srv(c, 1)->client_header_timeout_ms, 7000);
    assert_int_equal(srv(c, 1)->max_headers, 60);
    gh_conf_unref(c);
}

static void
test_inheritance_order_independent(void **state)
{
    /* Top-level settings apply even when written after the server; proxy may name an
     * upstream defined later. */
    struct gh_config *c = load("server { listen 127.0.0.1:8080; proxy app; route /x/ { } }\n"
                               "connect_timeout 9s;\n"
                               "upstream app { server 127.0.0.1:3000; }\n");
    assert_int_equal(srv(c, 0)->pc.connect_timeout_ms, 9000);
    assert_int_equal(srv(c, 0)->routes[0].pc.connect_timeout_ms, 9000);
    assert_ptr_equal(srv(c, 0)->pc.upstream, &c->upstreams[0]);
    gh_conf_unref(c);

    /* Inside a server too: the route sees a setting written after it. */
    c = load("server { listen 127.0.0.1:8080; route /x/ { } send_timeout 3s; return 200; }\n");
    assert_int_equal(srv(c, 0)->routes[0].pc.send_timeout_ms, 3000);
    assert_int_equal(srv(c, 0)->routes[0].pc.return_status, 200);
    gh_conf_unref(c);
}

static void
test_header_rules_inheritance(void **state)
{
    struct gh_config *c =
        load("request_header set X-Top 1;\n"
             "response_header set X-Top-Resp 1;\n"
             "server {\n"
             "  listen 127.0.0.1:8080; return 200;\n"
             "  route /inherit/ { }\n"
             "  route /own/ { request_header set X-Own 2; request_header add X-Own 3; }\n"
             "}\n"
             "server {\n"
             "  listen 127.0.0.1:8081; return 200;\n"
             "  request_header remove X-Srv;\n"
             "}\n");
    const struct gh_server_conf *s = srv(c, 0);
    assert_int_equal(s->pc.n_req_rules, 1);
    assert_string_equal(s->pc.req_rules[0].name, "X-Top");
    const struct gh_route *inh = &s->routes[0], *own = &s->routes[1]; /* "/inherit/" is longer */
    assert_string_equal(inh->path, "/inherit/");
    assert_int_equal(inh->pc.n_req_rules, 1);
    assert_string_equal(inh->pc.req_rules[0].name, "X-Top");
    assert_string_equal(own->path, "/own/");
    assert_int_equal(own->pc.n_req_rules, 2);
    assert_string_equal(own->pc.req_rules[0].name, "X-Own");
    assert_string_equal(own->pc.req_rules[1].value, "3");
    /* response rules are a separate kind: still inherited */
    assert_int_equal(own->pc.n_resp_rules, 1);
    assert_string_equal(own->pc.resp_rules[0].name, "X-Top-Resp");
    assert_int_equal(srv(c, 1)->pc.n_req_rules, 1);
    assert_string_equal(srv(c, 1)->pc.req_rules[0].name, "X-Srv");
    assert_int_equal(srv(c, 1)->pc.n_resp_rules, 1);
    gh_conf_unref(c);
}

static void
test_anonymous_upstream(void **state)
{
    struct gh_config *c = load("server {\n"
                               "  listen 127.0.0.1:8080;\n"
                               "  proxy 127.0.0.1:3000;\n"
                               "  route /a/ { proxy 127.0.0.1:3000; }\n"
                               "  route /b/ { proxy [::1]:3000; }\n"
                               "}\n"
                               "server { listen 127.0.0.1:8081; proxy 127.0.0.1:3000; }\n");
    assert_int_equal(c->n_upstreams, 2);
    const struct gh_upstream_conf *u = &c->upstreams[0];
    assert_string_equal(u->name, "127.0.0.1:3000");
    assert_int_equal(u->n_servers, 1);
    assert_int_equal(u->keepalive, 128);
    assert_int_equal(u->keepalive_timeout_ms, 60000);
    assert_int_equal(u->servers[0].weight, 1);
    assert_ptr_equal(srv(c, 0)->pc.upstream, u);
    assert_ptr_equal(srv(c, 1)->pc.upstream, u);
    assert_ptr_equal(srv(c, 0)->routes[0].pc.upstream, u);
    assert_ptr_equal(srv(c, 0)->routes[1].pc.upstream, &c->upstreams[1]);
    assert_string_equal(c->upstreams[1].name, "[::1]:3000");
    gh_conf_unref(c);
}

static void
test_proxy_overrides_return(void **state)
{
    struct gh_config *c = load("upstream app { server 127.0.0.1:3000; }\n"
                               "server { listen 127.0.0.1:8080; return 503 \"down\";\n"
                               "  route /api/ { proxy app; } }\n");
    const struct gh_route *r = &srv(c, 0)->routes[0];
    assert_ptr_equal(r->pc.upstream, &c->upstreams[0]);
    assert_int_equal(r->pc.return_status, 0);
    assert_null(r->pc.return_body);
    assert_int_equal(srv(c, 0)->pc.return_status, 503);
    gh_conf_unref(c);
}

/* ---- compile: listeners, routes, slots ---- */

static void
test_listeners_grouped(void **state)
{
    struct gh_config *c =
        load("server { listen 127.0.0.1:8080; server_name a.test; return 200; }\n"
             "server { listen 127.0.0.1:8081; listen 127.0.0.1:8080 default;\n"
             "         server_name b.test; return 200; }\n"
             "server { listen localhost:8081; server_name a.test; return 200; }\n");
    assert_int_equal(c->n_listeners, 2);
    const struct gh_listen_conf *l0 = &c->listeners[0], *l1 = &c->listeners[1];
    assert_string_equal(l0->addr.text, "127.0.0.1:8080");
    assert_int_equal(l0->n_servers, 2);
    assert_ptr_equal(l0->servers[0], srv(c, 0));
    assert_ptr_equal(l0->servers[1], srv(c, 1));
    assert_ptr_equal(l0->default_server, srv(c, 1));
    assert_int_equal(l1->n_servers, 2);
    assert_ptr_equal(l1->default_server, srv(c, 1)); /* the first on that address */
    assert_ptr_equal(l1->servers[1], srv(c, 2));
    assert_int_equal(l0->n_names, 2);
    assert_int_equal(srv(c, 1)->index, 1);
    gh_conf_unref(c);
}

static void
test_routes_sorted(void **state)
{
    struct gh_config *c = load("server { listen 127.0.0.1:8080; return 200;\n"
                               "  route / { }\n"
                               "  route ~ \"^/r1\" { }\n"
                               "  route /aa/ { }\n"
                               "  route = /exact { }\n"
                               "  route /a/ { }\n"
                               "  route ~ \"^/r2\" { }\n"
                               "  route /bb/ { }\n"
                               "}\n");
    const struct gh_server_conf *s = srv(c, 0);
    assert_int_equal(s->n_routes, 7);
    static const char *const order[] = {"/exact", "^/r1", "^/r2", "/aa/", "/bb/", "/a/", "/"};
    static const int kinds[] = {GH_ROUTE_EXACT,  GH_ROUTE_REGEX,  GH_ROUTE_REGEX, GH_ROUTE_PREFIX,
                                GH_ROUTE_PREFIX, GH_ROUTE_PREFIX, GH_ROUTE_PREFIX};
    for (int i = 0; i < 7; i++) {
        assert_string_equal(s->routes[i].path, order[i]);
        assert_int_equal(s->routes[i].kind, kinds[i]);
    }
    assert_non_null(s->routes[1].re);
    assert_null(s->routes[0].re);
    assert_int_equal(s->routes[0].line, 5);
    gh_conf_unref(c);
}

static void
test_refcount(void **state)
{
    struct gh_config *c = load(SRV);
    assert_ptr_equal(gh_conf_ref(c), c);
    assert_int_equal(c->refcount, 2);
    gh_conf_unref(c);
    assert_int_equal(c->refcount, 1);
    gh_conf_unref(c); /* frees; ASan would catch a leak or a double free */
    gh_conf_unref(NULL);
}

/* ---- lookups ---- */

static const char *const find_conf =
    "server { listen 127.0.0.1:8080; server_name a.test www.a.test; return 201; }\n"
    "server { listen 127.0.0.1:8080; server_name *.a.test; return 202; }\n"
    "server { listen 127.0.0.1:8080; server_name *.b.a.test; return 203; }\n"
    "server { listen 127.0.0.1:8080 default; server_name [::1] 10.0.0.1; return 204; }\n";

static uint32_t
find(const struct gh_config *c, const char *host)
{
    const struct gh_server_conf *s =
        gh_conf_find_server(&c->listeners[0], host, host ? strlen(host) : 0);
    assert_non_null(s);
    return s->pc.return_status;
}

static void
test_find_server(void **state)
{
    struct gh_config *c = load(find_conf);
    assert_int_equal(find(c, "a.test"), 201);
    assert_int_equal(find(c, "www.a.test"), 201);
    assert_int_equal(find(c, "A.TEST"), 201);
    assert_int_equal(find(c, "a.test:8080"), 201);
    assert_int_equal(find(c, "a.test."), 201);
    assert_int_equal(find(c, "x.a.test"), 202);
    assert_int_equal(find(c, "x.y.a.test"), 202);
    assert_int_equal(find(c, "X.B.A.Test:80"), 203); /* longest wildcard */
    assert_int_equal(find(c, "b.a.test"), 202);
    assert_int_equal(find(c, "10.0.0.1:80"), 204);
    assert_int_equal(find(c, "[::1]:8080"), 204);
    assert_int_equal(find(c, "other.test"), 204); /* default */
    assert_int_equal(find(c, "test"), 204);
    assert_int_equal(find(c, ".a.test"), 204); /* "*.a.test" needs a label before */
    assert_int_equal(find(c, NULL), 204);
    assert_int_equal(find(c, ""), 204);
    assert_int_equal(find(c, ":80"), 204);
    /* not NUL-terminated input */
    const struct gh_server_conf *s = gh_conf_find_server(&c->listeners[0], "a.testXYZ", 6);
    assert_int_equal(s->pc.return_status, 201);
    gh_conf_unref(c);
}

static void
test_find_server_first_is_default(void **state)
{
    struct gh_config *c =
        load("server { listen 127.0.0.1:8080; server_name a.test; return 201; }\n"
             "server { listen 127.0.0.1:8080; server_name b.test; return 202; }\n");
    assert_int_equal(find(c, "b.test"), 202);
    assert_int_equal(find(c, "zzz"), 201);
    gh_conf_unref(c);
}

static const char *const route_conf = "server { listen 127.0.0.1:8080; return 200;\n"
                                      "  route / { return 201; }\n"
                                      "  route /api/ { return 202; }\n"
                                      "  route /api/v1/ { return 203; }\n"
                                      "  route = /api/v1/exact { return 204; }\n"
                                      "  route ~ \"^/api/v[0-9]+/users/\\d+$\" { return 205; }\n"
                                      "  route ~ \"\\.png$\" { return 206; }\n"
                                      "}\n"
                                      "server { listen 127.0.0.1:8081; return 299;\n"
                                      "  route /only/ { return 207; }\n"
                                      "}\n";

static uint32_t
route(const struct gh_server_conf *s, const char *path, const struct gh_route **r)
{
    return gh_conf_find_route(s, path, strlen(path), r)->return_status;
}

static void
test_find_route(void **state)
{
    struct gh_config *c = load(route_conf);
    const struct gh_server_conf *s = srv(c, 0);
    const struct gh_route *r = NULL;
    assert_int_equal(route(s, "/", &r), 201);
    assert_string_equal(r->path, "/");
    assert_int_equal(route(s, "/x", NULL), 201);
    assert_int_equal(route(s, "/api/", NULL), 202);
    assert_int_equal(route(s, "/api/x", NULL), 202);
    assert_int_equal(route(s, "/api", NULL), 201);        /* prefix is byte-wise */
    assert_int_equal(route(s, "/api/v1/x", NULL), 203);   /* longest prefix */
    assert_int_equal(route(s, "/api/v1/exact", &r), 204); /* exact beats everything */
    assert_int_equal(r->kind, GH_ROUTE_EXACT);
    assert_int_equal(route(s, "/api/v1/exact/", NULL), 203);
    assert_int_equal(route(s, "/api/v1/users/42", &r), 205); /* regex beats prefix */
    assert_int_equal(r->kind, GH_ROUTE_REGEX);
    assert_int_equal(route(s, "/api/v1/users/42x", NULL), 203);
    assert_int_equal(route(s, "/api/v1/users/42.png", NULL), 206);
    assert_int_equal(route(s, "/API/", NULL), 201); /* paths are case-sensitive */

    const struct gh_server_conf *s2 = srv(c, 1);
    assert_int_equal(route(s2, "/only/x", NULL), 207);
    r = (const struct gh_route *)1;
    const struct gh_proxy_conf *pc = gh_conf_find_route(s2, "/elsewhere", 10, &r);
    assert_null(r);
    assert_ptr_equal(pc, &s2->pc);
    assert_int_equal(pc->return_status, 299);
    /* no route at all */
    struct gh_config *c2 = load(SRV);
    assert_ptr_equal(gh_conf_find_route(srv(c2, 0), "/", 1, NULL), &srv(c2, 0)->pc);
    gh_conf_unref(c2);
    gh_conf_unref(c);
}

static void *
route_thread(void *arg)
{
    const struct gh_server_conf *s = arg;
    uintptr_t bad = 0;
    for (int i = 0; i < 1000; i++)
        if (gh_conf_find_route(s, "/api/v2/users/7", 15, NULL)->return_status != 205)
            bad++;
    return (void *)bad;
}

static void
test_find_route_threads(void **state)
{
    struct gh_config *c = load(route_conf);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, route_thread, (void *)srv(c, 0)), 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        assert_null(bad);
    }
    gh_conf_unref(c);
}

static void
test_parse_addr(void **state)
{
    struct gh_addr a;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.ss;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a.ss;
    assert_int_equal(gh_conf_parse_addr("1.2.3.4:80", 10, &a), 0);
    assert_int_equal(a.ss.ss_family, AF_INET);
    assert_int_equal(a.len, sizeof(struct sockaddr_in));
    assert_int_equal(ntohs(sin->sin_port), 80);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x01020304);
    assert_string_equal(a.text, "1.2.3.4:80");
    assert_int_equal(gh_conf_parse_addr("localhost:8080", 14, &a), 0);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    assert_int_equal(ntohs(sin->sin_port), 8080);
    assert_int_equal(gh_conf_parse_addr("*:80", 4, &a), 0);
    assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));
    assert_int_equal(gh_conf_parse_addr(":65535", 6, &a), 0);
    assert_int_equal(ntohs(sin->sin_port), 65535);
    assert_int_equal(gh_conf_parse_addr("[::1]:443", 9, &a), 0);
    assert_int_equal(a.ss.ss_family, AF_INET6);
    assert_int_equal(a.len, sizeof(struct sockaddr_in6));
    assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
    assert_int_equal(ntohs(sin6->sin6_port), 443);
    assert_int_equal(gh_conf_parse_addr("[::]:80", 7, &a), 0);
    assert_true(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr));
    /* length-bounded: trailing bytes are not read */
    assert_int_equal(gh_conf_parse_addr("1.2.3.4:80xyz", 10, &a), 0);

    static const char *const bad[] = {
        "1.2.3.4",     "1.2.3.4:",       "1.2.3.4:0",   "1.2.3.4:65536", "1.2.3.4:99999999",
        "1.2.3:80",    "example.com:80", "::1:80",      "[::1]",         "[::1]80",
        "[::1:80",     "[zz]:80",        "1.2.3.4:+80", "1.2.3.4:8 0",   "",
        "01.2.3.4:80", "[localhost]:80", "1.2.3.4:-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gh_conf_parse_addr(bad[i], strlen(bad[i]), &a) != -EINVAL)
            fail_msg("accepted '%s'", bad[i]);
    }
    assert_int_equal(gh_conf_parse_addr(NULL, 0, &a), -EINVAL);
}

/* ---- errors ---- */

static void
test_err_unknown_directive(void **state)
{
    expect_only_error("server { listen 127.0.0.1:8080;\n  proxypas 127.0.0.1:3000;\n}\n",
                      "t.conf:2:3: unknown directive 'proxypas' (did you mean 'proxy'?)");
    expect_only_error("conect_timeout 5s;\n" SRV,
                      "t.conf:1:1: unknown directive 'conect_timeout' (did you mean "
                      "'connect_timeout'?)");
    /* suggestions come only from the context: 'keepalive' is an upstream directive */
    expect_only_error("upstream u { server 127.0.0.1:1; keepalvie 3; }\n" SRV,
                      "t.conf:1:34: unknown directive 'keepalvie' (did you mean 'keepalive'?)");
    expect_only_error("xyzzy;\n" SRV, "t.conf:1:1: unknown directive 'xyzzy'");
}

static void
test_err_not_allowed(void **state)
{
    expect_only_error("upstream u { server 127.0.0.1:1; listen 127.0.0.1:80; }\n" SRV,
                      "t.conf:1:34: directive 'listen' is not allowed in 'upstream' context");
    expect_only_error("keepalive 5;\n" SRV,
                      "t.conf:1:1: directive 'keepalive' is not allowed at top level");
    expect_only_error("server { listen 127.0.0.1:8080; return 200; route / { route /x { } } }",
                      "t.conf:1:55: directive 'route' is not allowed in 'route' context");
    expect_only_error("server { listen 127.0.0.1:8080; return 200; threads 2; }",
                      "t.conf:1:45: directive 'threads' is not allowed in 'server' context");
}

static void
test_err_missing_semicolon(void **state)
{
    /* the next line starts with a directive: point just after the last token */
    expect_only_error("upstream u {\n  server 127.0.0.1:3000\n  keepalive 4;\n}\n" SRV,
                      "t.conf:2:24: missing ';' after 'server'");
    /* before '}' */
    expect_only_error("server { listen 127.0.0.1:8080; return 200 }",
                      "t.conf:1:43: missing ';' after 'return'");
    /* at the end of the file */
    expect_error(SRV "threads 4", "t.conf:2:10: missing ';' after 'threads'");
    /* the next line is not a known directive: found by the argument count */
    expect_only_error("server { listen 127.0.0.1:8080;\n  return 200\n  conect_timeout 5s;\n}",
                      "t.conf:2:13: missing ';' after 'return'");
}

static void
test_err_unexpected(void **state)
{
    expect_only_error(SRV "}\n", "t.conf:2:1: unexpected '}'");
    expect_only_error(SRV ";\n", "t.conf:2:1: unexpected ';'");
    expect_only_error(SRV "{ threads 1; }\n", "t.conf:2:1: unexpected '{'");
    expect_only_error(SRV "\"threads\" 1;\n",
                      "t.conf:2:1: expected a directive name, got string \"threads\"");
}

static void
test_err_unterminated_block(void **state)
{
    expect_only_error("server {\n  listen 127.0.0.1:8080;\n  return 200;\n",
                      "t.conf:4:1: unterminated block 'server' opened at 1:1");
    expect_error("server {\n  listen 127.0.0.1:8080;\n  route / {\n    return 200;\n",
                 "t.conf:5:1: unterminated block 'route' opened at 3:3");
}

static void
test_err_block_shape(void **state)
{
    expect_only_error("server;\n" SRV, "t.conf:1:1: 'server' expects a block { ... }");
    expect_only_error("threads 2 { }\n" SRV, "t.conf:1:1: 'threads' takes no block");
    expect_only_error("server x { listen 127.0.0.1:8080; return 200; }\n",
                      "t.conf:1:1: 'server' expects 0 arguments, got 1");
    expect_only_error("threads;\n" SRV, "t.conf:1:1: 'threads' expects 1 argument, got 0");
    expect_only_error("access_log a b c;\n" SRV,
                      "t.conf:1:1: 'access_log' expects 1 to 2 arguments, got 3");
    expect_only_error("server { listen 127.0.0.1:8080; return 200; server_name; }",
                      "t.conf:1:45: 'server_name' expects at least 1 argument, got 0");
}

static void
test_err_duplicate_directive(void **state)
{
    expect_only_error("threads 2;\nthreads 3;\n" SRV,
                      "t.conf:2:1: duplicate 'threads' (first at 1:1)");
    expect_only_error("server { listen 127.0.0.1:8080; proxy 127.0.0.1:1; proxy 127.0.0.1:2; }",
                      "t.conf:1:52: duplicate 'proxy' (first at 1:33)");
}

static void
test_err_duration(void **state)
{
    expect_only_error(
        "connect_timeout abc;\n" SRV,
        "t.conf:1:17: invalid duration 'abc' for 'connect_timeout' (expected e.g. 10s, 500ms)");
    expect_only_error(
        "connect_timeout 10x;\n" SRV,
        "t.conf:1:17: invalid duration '10x' for 'connect_timeout' (expected e.g. 10s, 500ms)");
    expect_only_error(
        "read_timeout -1s;\n" SRV,
        "t.conf:1:14: invalid duration '-1s' for 'read_timeout' (expected e.g. 10s, 500ms)");
    expect_only_error("read_timeout 50d;\n" SRV,
                      "t.conf:1:14: duration '50d' out of range for 'read_timeout' (at most 49d)");
    expect_only_error("read_timeout 99999999999999999999999s;\n" SRV,
                      "t.conf:1:14: duration '99999999999999999999999s' out of range for "
                      "'read_timeout' (at most 49d)");
    expect_only_error(
        "send_timeout 0;\n" SRV,
        "t.conf:1:14: duration '0' out of range for 'send_timeout' (must be more than 0)");
    /* 0 is fine where it means "off" */
    struct gh_config *c = load("keepalive_timeout 0s;\ndrain_timeout 0;\n" SRV);
    assert_int_equal(srv(c, 0)->keepalive_timeout_ms, 0);
    assert_int_equal(c->drain_timeout_ms, 0);
    gh_conf_unref(c);
}

static void
test_err_size(void **state)
{
    expect_only_error(
        "client_max_body_size 8x;\n" SRV,
        "t.conf:1:22: invalid size '8x' for 'client_max_body_size' (expected e.g. 512, 8k, 1m)");
    expect_only_error(
        "client_max_body_size 1kb;\n" SRV,
        "t.conf:1:22: invalid size '1kb' for 'client_max_body_size' (expected e.g. 512, 8k, 1m)");
    expect_only_error("client_max_body_size 99999999999g;\n" SRV,
                      "t.conf:1:22: size '99999999999g' out of range for 'client_max_body_size' "
                      "(0..18446744073709551615)");
    expect_only_error("max_head_size 128k;\n" SRV,
                      "t.conf:1:15: size '128k' out of range for 'max_head_size' (1024..65536)");
    expect_only_error("max_request_line 100;\n" SRV,
                      "t.conf:1:18: size '100' out of range for 'max_request_line' (256..65536)");
}

static void
test_err_number(void **state)
{
    expect_only_error("max_headers 257;\n" SRV,
                      "t.conf:1:13: number '257' out of range for 'max_headers' (1..256)");
    expect_only_error("max_headers 0;\n" SRV,
                      "t.conf:1:13: number '0' out of range for 'max_headers' (1..256)");
    expect_only_error("max_headers ten;\n" SRV,
                      "t.conf:1:13: invalid number 'ten' for 'max_headers'");
    expect_only_error("keepalive_requests 4294967296;\n" SRV,
                      "t.conf:1:20: number '4294967296' out of range for 'keepalive_requests' "
                      "(1..4294967295)");
    expect_only_error("upstream u { server 127.0.0.1:1 weight=0; }\n" SRV,
                      "t.conf:1:40: number '0' out of range for 'weight' (1..1000)");
    expect_only_error("upstream u { server 127.0.0.1:1; keepalive 10001; }\n" SRV,
                      "t.conf:1:44: number '10001' out of range for 'keepalive' (0..10000)");
    expect_only_error("server { listen 127.0.0.1:8080 backlog=0; return 200; }",
                      "t.conf:1:40: number '0' out of range for 'backlog' (1..65535)");
}

static void
test_err_threads(void **state)
{
    expect_only_error("threads 0;\n" SRV,
                      "t.conf:1:9: number '0' out of range for 'threads' (auto or 1..256)");
    expect_only_error("threads 257;\n" SRV,
                      "t.conf:1:9: number '257' out of range for 'threads' (auto or 1..256)");
    expect_only_error("threads many;\n" SRV,
                      "t.conf:1:9: invalid value 'many' for 'threads' (expected auto or 1..256)");
}

static void
test_err_upstreams(void **state)
{
    expect_only_error(
        "server { listen 127.0.0.1:8080; proxy backend; }\n"
        "upstream backends { server 127.0.0.1:1; }\n",
        "t.conf:1:39: unknown upstream 'backend' in 'proxy' (did you mean 'backends'?)");
    expect_only_error("server { listen 127.0.0.1:8080; proxy zzz; }\n"
                      "upstream backends { server 127.0.0.1:1; }\n",
                      "t.conf:1:39: unknown upstream 'zzz' in 'proxy'");
    expect_only_error(
        "upstream a { server 127.0.0.1:1; }\nupstream a { server 127.0.0.1:2; }\n" SRV,
        "t.conf:2:10: duplicate upstream 'a' (first defined at 1:10)");
    expect_only_error("upstream empty { keepalive 2; }\n" SRV,
                      "t.conf:1:10: upstream 'empty' has no server");
    expect_only_error(
        "upstream a:b { server 127.0.0.1:1; }\n" SRV,
        "t.conf:1:10: invalid upstream name 'a:b' (letters, digits, '_', '-' and '.' only)");
    expect_only_error(
        "upstream a { server 127.0.0.1:1; server 127.0.0.1:1; }\n" SRV,
        "t.conf:1:41: duplicate server '127.0.0.1:1' in upstream 'a' (use weight= instead)");
    expect_only_error(
        "upstream a { server 127.0.0.1:1 wieght=2; }\n" SRV,
        "t.conf:1:33: unknown parameter 'wieght=2' in 'server' (expected weight=N, max_conns=N, "
        "backup, tls, send_proxy, send_proxy_v2, resolve, slow_start=DURATION or region=NAME)");
    expect_only_error("upstream a { server 127.0.0.1:1; balance rando; }\n" SRV,
                      "t.conf:1:42: unknown balance 'rando' (expected round_robin, least_conn, "
                      "random, hash KEY [consistent], ewma or geo KEY [ewma])");
    /* balancing, passive health and retries */
    expect_only_error("upstream a { server 127.0.0.1:1; balance hash; }\n" SRV,
                      "t.conf:1:42: 'balance hash' needs a key (as in: balance hash $remote_addr "
                      "consistent;)");
    expect_only_error("upstream a { server 127.0.0.1:1; balance hash $uri ring; }\n" SRV,
                      "t.conf:1:52: unknown parameter 'ring' in 'balance hash' (expected "
                      "consistent or bounded=F)");
    expect_only_error("upstream a { server 127.0.0.1:1; balance hash $status; }\n" SRV,
                      "t.conf:1:47: variable '$status' is not available in 'balance hash' (it is "
                      "in response_header, log_format)");
    expect_only_error("upstream a { server 127.0.0.1:1; balance hash $nope; }\n" SRV,
                      "t.conf:1:47: unknown variable '$nope' in 'balance hash'");
    expect_only_error("upstream a { server 127.0.0.1:1; balance least_conn 2; }\n" SRV,
                      "t.conf:1:53: 'balance least_conn' takes no argument");
    expect_only_error("upstream a { server 127.0.0.1:1 backup; }\n" SRV,
                      "t.conf:1:10: every server of upstream 'a' is 'backup' (a backup is used "
                      "when the others cannot be)");
    expect_only_error("upstream a { server 127.0.0.1:1 max_conns=x; }\n" SRV,
                      "t.conf:1:43: invalid number 'x' for 'max_conns'");
    expect_only_error("upstream a { server 127.0.0.1:1; max_fails -1; }\n" SRV,
                      "t.conf:1:44: invalid number '-1' for 'max_fails'");
    expect_only_error("upstream a { server 127.0.0.1:1; fail_timeout 0s; }\n" SRV,
                      "t.conf:1:47: duration '0s' out of range for 'fail_timeout' (must be more "
                      "than 0)");
    expect_only_error("upstream a { server 127.0.0.1:1; retries 101; }\n" SRV,
                      "t.conf:1:42: number '101' out of range for 'retries' (0..100)");
    expect_only_error("upstream a { server 127.0.0.1:1; retry_on timeout 404; }\n" SRV,
                      "t.conf:1:51: unknown condition '404' in 'retry_on' (expected "
                      "connect_failure, timeout, error, 500, 502, 503, 504, or off alone)");
}

/* The balancing directives as they load. */
static void
test_balance_directives(void **state)
{
    (void)state;
    struct gh_config *c = load(
        "upstream a { server 127.0.0.1:1 weight=3 max_conns=10; server 127.0.0.1:2 backup;"
        " balance hash \"$remote_addr:$http_x_user\" consistent; max_fails 3; fail_timeout 30s;"
        " retries 2; retry_on connect_failure timeout 502 503; }\n"
        "upstream b { server 127.0.0.1:3; balance ewma; retry_on off; }\n" SRV);
    const struct gh_upstream_conf *a = &c->upstreams[0], *b = &c->upstreams[1];
    assert_int_equal(a->balance, GH_BALANCE_HASH);
    assert_true(a->hash_consistent);
    assert_non_null(a->hash_key);
    assert_int_equal(a->hash_key->n, 3);
    assert_int_equal(a->servers[0].weight, 3);
    assert_int_equal(a->servers[0].max_conns, 10);
    assert_false(a->servers[0].backup);
    assert_true(a->servers[1].backup);
    assert_int_equal(a->max_fails, 3);
    assert_int_equal(a->fail_timeout_ms, 30000);
    assert_int_equal(a->retries, 2);
    assert_int_equal(a->retry_on,
                     GH_RETRY_CONNECT | GH_RETRY_TIMEOUT | GH_RETRY_502 | GH_RETRY_503);
    assert_int_equal(b->balance, GH_BALANCE_EWMA);
    assert_int_equal(b->retry_on, 0);
    /* defaults */
    assert_int_equal(b->max_fails, 1);
    assert_int_equal(b->fail_timeout_ms, 10000);
    assert_int_equal(b->retries, 1);
    assert_null(b->hash_key);
    assert_int_equal(b->fail_on, GH_FAIL_TIMEOUT);
    assert_null(b->health);
    assert_null(b->sticky);
    gh_conf_unref(c);
}

/* health_check, fail_on, slow_start=, region=, balance geo, region_fallback, sticky, resolve,
 * geo maps (and $NAME used before the map is defined) */
static void
test_health_geo_directives(void **state)
{
    (void)state;
    struct gh_config *c = load(
        "server { listen 127.0.0.1:8080; proxy a; response_header set X-R $where; }\n"
        "upstream a { server 127.0.0.1:1 region=eu slow_start=30s; server 127.0.0.1:2 region=us;"
        " server app.test:8080 resolve; server 127.0.0.1:3;"
        " balance geo $where ewma; region_fallback eu us; region_fallback asia us eu;"
        " health_check /hc interval=500ms rise=1 expect=204; fail_on error 5xx;"
        " sticky cookie s expires=1h; resolver 127.0.0.1:5353; }\n"
        "upstream h { server 127.0.0.1:4; server 127.0.0.1:5;"
        " balance hash $uri consistent bounded=1.5; health_check /; }\n"
        "geo $where { default eu; 10.0.0.0/8 us; }\n");
    const struct gh_upstream_conf *a = &c->upstreams[0], *h = &c->upstreams[1];
    assert_int_equal(a->balance, GH_BALANCE_GEO);
    assert_true(a->geo_ewma);
    assert_int_equal(a->n_regions, 3); /* eu, us, then asia (a fallback's own) */
    assert_string_equal(a->regions[2], "asia");
    assert_int_equal(a->servers[0].region_idx, 0);
    assert_int_equal(a->servers[1].region_idx, 1);
    assert_int_equal(a->servers[3].region_idx, 3); /* none */
    assert_int_equal(a->n_fallbacks, 2);
    assert_int_equal(a->fallbacks[1].from, 2);
    assert_int_equal(a->fallbacks[1].n_next, 2);
    assert_int_equal(a->fallbacks[1].next[0], 1);
    assert_true(a->slow_start);
    assert_int_equal(a->servers[0].slow_start_ms, 30000);
    assert_string_equal(a->servers[2].host, "app.test");
    assert_int_equal(a->servers[2].port, 8080);
    assert_string_equal(a->servers[2].addr.text, "app.test:8080");
    assert_string_equal(a->resolver, "127.0.0.1:5353");
    assert_int_equal(a->health->interval_ms, 500);
    assert_int_equal(a->health->timeout_ms, 500); /* the interval, below the 2 s default */
    assert_int_equal(a->health->rise, 1);
    assert_int_equal(a->health->fall, 3);
    assert_int_equal(a->health->expect_lo, 204);
    assert_int_equal(a->health->expect_hi, 204);
    assert_int_equal(a->fail_on, GH_FAIL_ERROR | GH_FAIL_5XX);
    assert_string_equal(a->sticky->attrs, "; Path=/; Max-Age=3600; HttpOnly");
    assert_non_null(a->servers[0].sticky_id);
    assert_string_not_equal(a->servers[0].sticky_id, a->servers[1].sticky_id);
    assert_int_equal(h->hash_bound_pct, 150);
    assert_int_equal(h->health->timeout_ms, 2000);
    assert_int_equal(h->health->expect_hi, 399);
    assert_int_equal(c->n_geos, 1);
    assert_string_equal(c->geos[0].values[0], "eu");
    gh_conf_unref(c);
}

static void
test_err_server_without_listen(void **state)
{
    expect_only_error(SRV "server {\n  server_name a.test;\n  return 200;\n}\n",
                      "t.conf:2:1: server has no 'listen'");
}

static void
test_err_address(void **state)
{
    expect_only_error("server { listen 127.0.0.1; return 200; }",
                      "t.conf:1:17: invalid address '127.0.0.1' in 'listen' (expected e.g. "
                      "127.0.0.1:8080, [::1]:8080, *:8080 or 8080)");
    expect_only_error("server { listen 127.0.0.1:70000; return 200; }",
                      "t.conf:1:17: invalid address '127.0.0.1:70000' in 'listen' (expected e.g. "
                      "127.0.0.1:8080, [::1]:8080, *:8080 or 8080)");
    expect_only_error("upstream u { server 10.0.0.300:80; }\n" SRV,
                      "t.conf:1:21: invalid address '10.0.0.300:80' in 'server' (expected e.g. "
                      "127.0.0.1:3000)");
    expect_only_error(
        "server { listen 127.0.0.1:8080; proxy *:3000; }",
        "t.conf:1:39: address '*:3000' in 'proxy' is a wildcard; only 'listen' takes one");
    expect_only_error(
        "server { listen 127.0.0.1:8080; listen 127.0.0.1:8080; return 200; }",
        "t.conf:1:40: duplicate listen '127.0.0.1:8080' in this server (first at 1:17)");
    expect_only_error(
        "server { listen 127.0.0.1:8080 defualt; return 200; }",
        "t.conf:1:32: unknown parameter 'defualt' in 'listen' (expected default, tls, "
        "socks5, proxy_protocol, deferred or backlog=N)");
}

/* What exactly is wrong with an origin address that is not one: a host name, a URL. */
static void
test_err_address_explained(void **state)
{
    static const char dns[] = "host names are not supported yet (DNS-named servers come later): "
                              "use an IP address such as 127.0.0.1:";
    char want[512];
    snprintf(want, sizeof(want), "t.conf:1:21: invalid address 'app.internal:80' in 'server': %s80",
             dns);
    expect_only_error("upstream u { server app.internal:80; }\n" SRV, want);
    snprintf(want, sizeof(want),
             "t.conf:1:21: invalid address 'example.com:3000' in 'server': %s3000", dns);
    expect_only_error("upstream u { server example.com:3000 weight=2; }\n" SRV, want);
    snprintf(want, sizeof(want), "t.conf:1:21: invalid address 'app' in 'server': %s80", dns);
    expect_only_error("upstream u { server app; }\n" SRV, want);
    snprintf(want, sizeof(want),
             "t.conf:1:39: invalid address 'api.internal:8080' in 'proxy': %s8080", dns);
    expect_only_error("server { listen 127.0.0.1:8080; proxy api.internal:8080; }", want);

    /* URLs: http:// and https:// (TLS) before an address; a name is an upstream, as nginx's
     * proxy_pass http://backend; a path after it is the prefix replacement 'proxy ADDR PATH' */
    expect_only_error("server { listen 127.0.0.1:8080; proxy http://api; }",
                      "t.conf:1:46: unknown upstream 'api' in 'proxy'");
    gh_conf_unref(load("server { listen 127.0.0.1:8080; proxy http://127.0.0.1:3000; }"));
    gh_conf_unref(load("upstream api { server 127.0.0.1:3000; }\n"
                       "server { listen 127.0.0.1:8080; proxy http://api; }"));
    expect_only_error("server { listen 127.0.0.1:8080; proxy http://api/v1/; }",
                      "t.conf:1:46: a path in the URL of 'proxy': write 'proxy http://api /v1/;' "
                      "(the path replaces the route's prefix)");
    expect_only_error("server { listen 127.0.0.1:8080; proxy http:///v1/; }",
                      "t.conf:1:46: no address in the URL 'http:///v1/' for 'proxy'");
    expect_only_error("upstream api { server 127.0.0.1:3000; }\n"
                      "server { listen 127.0.0.1:8080; proxy https://api; }",
                      "t.conf:2:47: 'proxy https://api' but the servers of upstream 'api' are not "
                      "all 'tls' (mark them: 'server ADDR tls;', and write 'proxy api;')");
    expect_only_error("upstream u { server http://10.0.0.1; }\n" SRV,
                      "t.conf:1:21: invalid address 'http://10.0.0.1' in 'server': 'server' takes "
                      "ADDR[:PORT], without 'http://' (write 'server 10.0.0.1;')");
    expect_only_error("upstream u { server https://10.0.0.1:443; }\n" SRV,
                      "t.conf:1:21: invalid address 'https://10.0.0.1:443' in 'server': 'server' "
                      "takes ADDR[:PORT], without 'https://' (TLS to an origin: 'server ADDR tls;' "
                      "in an upstream, or 'proxy https://ADDR;')");
    /* a bad port, a bad IP: nothing more specific to say */
    expect_only_error("upstream u { server app:0; }\n" SRV,
                      "t.conf:1:21: invalid address 'app:0' in 'server' (expected e.g. "
                      "127.0.0.1:3000)");

    /* the same words for `reverse-proxy --to` (src/main.c) */
    char buf[256];
    assert_string_equal(gh_conf_addr_hint("http://127.0.0.1:3000", 21, "--to", buf, sizeof(buf)),
                        "'--to' takes ADDR:PORT, without 'http://' (write '--to 127.0.0.1:3000')");
    assert_string_equal(gh_conf_addr_hint("https://10.0.0.1:443", 20, "--to", buf, sizeof(buf)),
                        "'--to' takes ADDR:PORT, without 'https://' (for TLS to the origin, use "
                        "a config file with 'proxy https://ADDR;')");
    snprintf(want, sizeof(want), "%s3000", dns);
    assert_string_equal(gh_conf_addr_hint("backend.local:3000", 18, "--to", buf, sizeof(buf)),
                        want);
    assert_null(gh_conf_addr_hint("127.0.0.1", 9, "--to", buf, sizeof(buf)));
    assert_null(gh_conf_addr_hint("[::1]", 5, "--to", buf, sizeof(buf)));
    assert_null(gh_conf_addr_hint("1.2.3.4.5:80", 12, "--to", buf, sizeof(buf)));
    assert_null(gh_conf_addr_hint("localhost:99999", 15, "--to", buf, sizeof(buf)));
    assert_null(gh_conf_addr_hint("", 0, "--to", buf, sizeof(buf)));
}

static void
test_err_headers(void **state)
{
    expect_only_error(
        "request_header set \"X Bad\" 1;\n" SRV,
        "t.conf:1:20: invalid header name 'X Bad' in 'request_header' (RFC 9110 token expected)");
    expect_only_error(
        "response_header add X-A: 1;\n" SRV,
        "t.conf:1:21: invalid header name 'X-A:' in 'response_header' (RFC 9110 token "
        "expected)");
    expect_only_error("request_header set X-A \"a\rb\";\n" SRV,
                      "t.conf:1:24: invalid header value in 'request_header' (control characters "
                      "such as CR, LF or NUL are not allowed)");
    expect_only_error("request_header set X-A;\n" SRV,
                      "t.conf:1:1: 'request_header set' expects 2 arguments, got 1");
    expect_only_error("request_header remove X-A 1;\n" SRV,
                      "t.conf:1:1: 'request_header remove' expects 1 argument, got 2");
    expect_only_error(
        "request_header replace X-A 1;\n" SRV,
        "t.conf:1:16: invalid operation 'replace' in 'request_header' (expected set, add "
        "or remove)");
    expect_only_error("request_header set Content-Length 5;\n" SRV,
                      "t.conf:1:20: 'request_header' cannot change 'Content-Length' (the proxy "
                      "manages it)");
    expect_only_error("request_header set host x;\n" SRV,
                      "t.conf:1:20: 'request_header' cannot change 'host' (the proxy manages it); "
                      "use 'upstream_host' for Host");
    /* a tab is a legal field-value byte */
    struct gh_config *c = load("response_header set X-A \"a\tb\";\n" SRV);
    assert_string_equal(srv(c, 0)->pc.resp_rules[0].value, "a\tb");
    gh_conf_unref(c);
}

static void
test_err_return(void **state)
{
    expect_only_error("server { listen 127.0.0.1:8080; return 600; }",
                      "t.conf:1:40: invalid return code '600' (expected 200..599)");
    expect_only_error("server { listen 127.0.0.1:8080; return 99; }",
                      "t.conf:1:40: invalid return code '99' (expected 200..599)");
    expect_only_error("server { listen 127.0.0.1:8080; return ok; }",
                      "t.conf:1:40: invalid return code 'ok' (expected 200..599)");
    expect_only_error("server { listen 127.0.0.1:8080;\n  proxy 127.0.0.1:1;\n  return 200;\n}",
                      "t.conf:3:3: both 'proxy' and 'return' in the same block ('proxy' at 2:3)");
    expect_only_error("server { listen 127.0.0.1:8080;\n  return 200;\n  proxy 127.0.0.1:1;\n}",
                      "t.conf:3:3: both 'proxy' and 'return' in the same block ('return' at 2:3)");
}

static void
test_err_route(void **state)
{
    expect_only_error(
        "server { listen 127.0.0.1:8080; return 200;\n  route ~ \"^/(a\" { }\n}",
        "t.conf:2:11: invalid regex '^/(a' in 'route': missing closing parenthesis at "
        "offset 4");
    expect_only_error("server { listen 127.0.0.1:8080; return 200; route api { } }",
                      "t.conf:1:51: route path must start with '/', got 'api'");
    expect_only_error("server { listen 127.0.0.1:8080; return 200; route ^ /x { } }",
                      "t.conf:1:51: invalid route modifier '^' (expected = or ~)");
    expect_only_error("server { listen 127.0.0.1:8080; return 200;\n route /a { }\n route /a { } }",
                      "t.conf:3:8: duplicate route '/a' (first at 2:8)");
    /* same path with a different kind is fine */
    struct gh_config *c =
        load("server { listen 127.0.0.1:8080; return 200; route /a { } route = /a { } }");
    assert_int_equal(srv(c, 0)->n_routes, 2);
    gh_conf_unref(c);
}

static void
test_err_server_names(void **state)
{
    expect_only_error(
        "server { listen 127.0.0.1:8080; server_name a.test; return 200; }\n"
        "server { listen 127.0.0.1:8080; server_name B.test A.TEST; return 200; }\n",
        "t.conf:2:52: duplicate server_name 'a.test' on 127.0.0.1:8080 (first at 1:45)");
    expect_only_error("server { listen 127.0.0.1:8080 default; return 200; }\n"
                      "server { listen 127.0.0.1:8080 default; return 200; }\n",
                      "t.conf:2:17: two default servers on 127.0.0.1:8080 (first at 1:17)");
    expect_only_error(
        "server { listen 127.0.0.1:8080; server_name a*.test; return 200; }",
        "t.conf:1:45: invalid server_name 'a*.test' (expected a host name or *.suffix)");
    /* the same name on two addresses is fine */
    struct gh_config *c =
        load("server { listen 127.0.0.1:8080; server_name a.test; return 200; }\n"
             "server { listen 127.0.0.1:8081; server_name a.test; return 200; }\n");
    assert_int_equal(c->n_listeners, 2);
    gh_conf_unref(c);
}

/* A rewrite's path problems that can be known before a request are -t errors. */
static void
test_err_rewrite_paths(void **state)
{
    (void)state;
    expect_only_error("rewrite ^/a /b%zz;\n" SRV,
                      "t.conf:1:13: rewrite replacement '/b%zz' has a bad escape (write %25 for "
                      "a '%')");
    expect_only_error("rewrite ^/a /b%2;\n" SRV,
                      "t.conf:1:13: rewrite replacement '/b%2' has a bad escape (write %25 for a "
                      "'%')");
    expect_only_error("rewrite ^/a /b%00;\n" SRV,
                      "t.conf:1:13: rewrite replacement '/b%00' has a bad escape (write %25 for "
                      "a '%')");
    expect_only_error("rewrite ^/a /../x;\n" SRV,
                      "t.conf:1:13: rewrite replacement '/../x' goes above the root with '..'");
    expect_only_error("rewrite ^/a /x/%2e%2E/..;\n" SRV,
                      "t.conf:1:13: rewrite replacement '/x/%2e%2E/..' goes above the root with "
                      "'..'");
    expect_only_error("rewrite ^/a /b stop;\n" SRV,
                      "t.conf:1:16: invalid rewrite flag 'stop' (expected last, break, redirect "
                      "or permanent)");
    expect_only_error("rewrite ^/a b;\n" SRV,
                      "t.conf:1:13: rewrite replacement 'b' must start with '/', http:// or "
                      "https://");
    /* a query is the origin's business; a path with a variable is checked per request */
    gh_conf_unref(load("rewrite ^/a /b%41?x=%zz;\n" SRV));
    gh_conf_unref(load("rewrite ^/(a) /$1/../..;\n" SRV));
    gh_conf_unref(load("rewrite ^/a /a/../b/%20 last;\n" SRV));
    gh_conf_unref(load("rewrite ^/a http://x/%zz;\n" SRV)); /* a redirect's URL is the client's */
}

static void
test_err_values(void **state)
{
    expect_only_error(
        "forwarded xf;\n" SRV,
        "t.conf:1:11: invalid value 'xf' for 'forwarded' (expected xff, rfc7239, both "
        "or off) (did you mean 'xff'?)");
    expect_only_error("via yes;\n" SRV,
                      "t.conf:1:5: invalid value 'yes' for 'via' (expected on or off)");
    expect_only_error("splice auto;\n" SRV,
                      "t.conf:1:8: invalid value 'auto' for 'splice' (expected on or off)");
    expect_only_error(
        "access_log stderr xml;\n" SRV,
        "t.conf:1:19: unknown access_log format 'xml' (combined, json, forward, or a log_format)");
    expect_only_error("access_log off json;\n" SRV,
                      "t.conf:1:16: 'access_log off' takes no format");
    expect_only_error(
        "error_log stderr loud;\n" SRV,
        "t.conf:1:18: invalid error_log level 'loud' (expected error, warn, info or debug)");
    expect_only_error("upstream_host \"a b\";\n" SRV,
                      "t.conf:1:15: invalid upstream_host 'a b' (expected a host name[:port])");
}

static void
test_err_lexer(void **state)
{
    expect_only_error(SRV "return 200 \"abc;\n", "t.conf:2:12: unterminated string");
    /* one error, not a second "missing ';'": the directive ends with the line */
    expect_only_error("server {\n  listen 127.0.0.1:8080;\n  return 200 \"abc;\n}\n",
                      "t.conf:3:14: unterminated string");
    expect_only_error("server {\n  listen 127.0.0.1:8080;\n  return 200 \"abc;\n"
                      "  response_header set X y;\n}\n",
                      "t.conf:3:14: unterminated string");
    expect_only_error(SRV "upstream_host \"abc", "t.conf:2:15: unterminated string");
    expect_only_error(SRV "\"abc;\nthreads 2;\n", "t.conf:2:1: unterminated string");
    expect_only_error(SRV "include \"x.conf;\n", "t.conf:2:9: unterminated string");
    /* what follows on the next line is still checked */
    static const char *const want[] = {"t.conf:2:22: unterminated string",
                                       "t.conf:3:1: unknown directive 'bogus'"};
    expect_errors_in_order(SRV "request_header set X \"abc;\nbogus;\n", want, 2);
    expect_only_error(SRV "\x01threads 2;\n", "t.conf:2:1: invalid character 0x01");
    const char nul[] = "threads 2;\0\n" SRV;
    struct gh_conf_diag d;
    assert_null(gh_conf_load_string("t.conf", nul, sizeof(nul) - 1, &d));
    assert_int_equal(d.n, 1);
    assert_string_equal(d.msgs[0], "t.conf:1:11: invalid character 0x00");
    gh_conf_diag_free(&d);
}

static void
test_err_collects_all(void **state)
{
    const char *text = "threads 0;\n"
                       "server {\n"
                       "  listen 1.2.3.4;\n"
                       "  proxy nowhere;\n"
                       "  read_timeout x;\n"
                       "}\n";
    struct gh_conf_diag d;
    assert_null(gh_conf_load_string("t.conf", text, strlen(text), &d));
    assert_int_equal(d.n, 4);
    gh_conf_diag_free(&d);
}

static void
test_err_file_order(void **state)
{
    /* found phase by phase (upstream blocks, then settings, then server and route blocks, and
     * the checks after them), printed by line and column */
    const char *text = "threads 0;\n"                       /* 1 */
                       "upstream u {\n"                     /* 2 */
                       "    server 127.0.0.1:1 weight=0;\n" /* 3 */
                       "}\n"                                /* 4 */
                       "server {\n"                         /* 5 */
                       "    listen 127.0.0.1:8080;\n"       /* 6 */
                       "    proxy nowhere; read_timeout x;\n"
                       "    route / { send_timeout y; }\n" /* 8 */
                       "    bogus;\n"                      /* 9 */
                       "}\n"                               /* 10 */
                       "server { return 200; }\n"          /* 11 */
                       "drain_timeout z;\n";               /* 12 */
    static const char *const want[] = {
        "t.conf:1:9: number '0' out of range for 'threads' (auto or 1..256)",
        "t.conf:3:31: number '0' out of range for 'weight' (1..1000)",
        "t.conf:7:11: unknown upstream 'nowhere' in 'proxy'",
        "t.conf:7:33: invalid duration 'x' for 'read_timeout' (expected e.g. 10s, 500ms)",
        "t.conf:8:28: invalid duration 'y' for 'send_timeout' (expected e.g. 10s, 500ms)",
        "t.conf:9:5: unknown directive 'bogus'",
        "t.conf:11:1: server has no 'listen'",
        "t.conf:12:15: invalid duration 'z' for 'drain_timeout' (expected e.g. 10s, 500ms)",
    };
    expect_errors_in_order(text, want, GH_ARRAY_LEN(want));

    /* syntax errors (found while reading) and the checks after it mix by position too */
    const char *text2 = "server {\n"
                        "    listen 127.0.0.1:8080;\n"
                        "    return 200 \"a\";\n"
                        "    connect_timeout 0\n"
                        "    via on;\n"
                        "}\n"
                        "}\n";
    static const char *const want2[] = {
        "t.conf:4:21: duration '0' out of range for 'connect_timeout' (must be more than 0)",
        "t.conf:4:22: missing ';' after 'connect_timeout'",
        "t.conf:7:1: unexpected '}'",
    };
    expect_errors_in_order(text2, want2, GH_ARRAY_LEN(want2));
}

static void
test_err_file_order_includes(void **state)
{
    /* an included file's problems stand where its include is; a glob's files in read order */
    char path[256];
    snprintf(path, sizeof(path), "%s/conf.d", tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    write_file("main.conf", "threads 0;\n"
                            "server {\n"
                            "    listen 127.0.0.1:8080;\n"
                            "    include conf.d/*.conf;\n"
                            "    bogus;\n"
                            "}\n"
                            "include missing.conf;\n"
                            "drain_timeout z;\n");
    write_file("conf.d/a.conf", "read_timeout x;\nproxy nowhere;\n");
    write_file("conf.d/b.conf", "include ../inner.conf;\nvia maybe;\n");
    write_file("inner.conf", "splice sometimes;\n");
    snprintf(path, sizeof(path), "%s/main.conf", tmpdir);
    struct gh_conf_diag d;
    assert_null(gh_conf_load_file(path, &d));
    char want[9][512];
    snprintf(want[0], 512,
             "%s/main.conf:1:9: number '0' out of range for 'threads' (auto or "
             "1..256)",
             tmpdir);
    snprintf(want[1], 512,
             "%s/conf.d/a.conf:1:14: invalid duration 'x' for 'read_timeout' "
             "(expected e.g. 10s, 500ms)",
             tmpdir);
    snprintf(want[2], 512, "%s/conf.d/a.conf:2:7: unknown upstream 'nowhere' in 'proxy'", tmpdir);
    snprintf(want[3], 512,
             "%s/conf.d/../inner.conf:1:8: invalid value 'sometimes' for 'splice' "
             "(expected on or off)",
             tmpdir);
    snprintf(want[4], 512,
             "%s/conf.d/b.conf:2:5: invalid value 'maybe' for 'via' (expected on or "
             "off)",
             tmpdir);
    snprintf(want[5], 512, "%s/main.conf:5:5: unknown directive 'bogus'", tmpdir);
    snprintf(want[6], 512, "%s/main.conf:7:9: include file '%s/missing.conf' not found", tmpdir,
             tmpdir);
    snprintf(want[7], 512,
             "%s/main.conf:8:15: invalid duration 'z' for 'drain_timeout' "
             "(expected e.g. 10s, 500ms)",
             tmpdir);
    bool same = d.n == 8;
    for (uint32_t i = 0; same && i < 8; i++)
        same = strcmp(d.msgs[i], want[i]) == 0;
    if (!same)
        for (uint32_t i = 0; i < d.n; i++)
            fprintf(stderr, "# got %s\n", d.msgs[i]);
    gh_conf_diag_free(&d);
    assert_true(same);
}

static void
test_err_too_many(void **state)
{
    char text[4096] = "";
    for (int i = 0; i < 40; i++)
        strcat(text, "bogus 1;\n");
    struct gh_conf_diag d;
    assert_null(gh_conf_load_string("t.conf", text, strlen(text), &d));
    assert_int_equal(d.n, GH_CONF_MAX_ERRORS + 1);
    assert_string_equal(d.msgs[0], "t.conf:1:1: unknown directive 'bogus'");
    assert_string_equal(d.msgs[GH_CONF_MAX_ERRORS], "t.conf:21:1: too many errors, giving up");
    gh_conf_diag_free(&d);
    /* NULL diag is allowed */
    assert_null(gh_conf_load_string("t.conf", text, strlen(text), NULL));
}

static void
test_err_nesting(void **state)
{
    char text[512] = "";
    for (int i = 0; i < 20; i++)
        strcat(text, "a {");
    expect_error(text, "t.conf:1:51: blocks nested too deeply (limit 16)");
}

static void
test_lexer_details(void **state)
{
    /* comments, tabs (one byte each), CRLF, '#' inside a word, quoted arguments */
    struct gh_config *c = load("# top comment\r\n"
                               "\tserver { # trailing\r\n"
                               "\t\tlisten \"127.0.0.1:8080\";\r\n"
                               "\t\treturn 200 a#b;\r\n"
                               "}\r\n");
    assert_string_equal(srv(c, 0)->pc.return_body, "a#b");
    gh_conf_unref(c);
    expect_only_error("\t\tthreads x;\n" SRV,
                      "t.conf:1:11: invalid value 'x' for 'threads' (expected auto or 1..256)");
    /* a byte order mark is skipped */
    c = load("\xef\xbb\xbf" SRV);
    gh_conf_unref(c);
    /* an empty config is valid (nothing to serve) */
    c = load("");
    assert_int_equal(c->n_servers, 0);
    assert_int_equal(c->n_listeners, 0);
    gh_conf_unref(c);
}

/* ---- include ---- */

static void
test_include_relative_and_glob(void **state)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/conf.d", tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/sub", tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    write_file("main.conf", "include sub/upstreams.conf;\n"
                            "include conf.d/*.conf;\n"
                            "include nothing/*.conf;\n" /* no match: fine */
                            "server { listen 127.0.0.1:8080; include sub/server-body.conf; }\n");
    write_file("sub/upstreams.conf", "upstream app { server 127.0.0.1:3000; }\n"
                                     "include more.conf;\n"); /* relative to sub/ */
    write_file("sub/more.conf", "upstream app2 { server 127.0.0.1:3001; }\n");
    write_file("sub/server-body.conf", "proxy app; route /x/ { proxy app2; }\n");
    write_file("conf.d/b.conf", "read_timeout 2s;\n");
    write_file("conf.d/a.conf", "connect_timeout 1s;\n");
    write_file("conf.d/c.txt", "garbage;\n");
    snprintf(path, sizeof(path), "%s/main.conf", tmpdir);
    struct gh_conf_diag d;
    struct gh_config *c = gh_conf_load_file(path, &d);
    gh_conf_diag_print(&d, stderr);
    assert_non_null(c);
    assert_int_equal(d.n, 0);
    assert_string_equal(c->source, path);
    assert_int_equal(c->n_upstreams, 2);
    assert_int_equal(srv(c, 0)->pc.connect_timeout_ms, 1000);
    assert_int_equal(srv(c, 0)->pc.read_timeout_ms, 2000);
    assert_ptr_equal(srv(c, 0)->pc.upstream, &c->upstreams[0]);
    assert_ptr_equal(srv(c, 0)->routes[0].pc.upstream, &c->upstreams[1]);
    char want[256];
    snprintf(want, sizeof(want), "%s/sub/more.conf", tmpdir);
    assert_string_equal(c->upstreams[1].file, want);
    gh_conf_unref(c);
    gh_conf_diag_free(&d);
}

static void
test_include_errors(void **state)
{
    char path[256], want[1024];
    write_file("missing.conf", SRV "include nope.conf;\n");
    snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
    struct gh_conf_diag d;
    assert_null(gh_conf_load_file(path, &d));
    assert_int_equal(d.n, 1);
    snprintf(want, sizeof(want), "%s:2:9: include file '%s/nope.conf' not found", path, tmpdir);
    assert_string_equal(d.msgs[0], want);
    gh_conf_diag_free(&d);

    /* an error inside an included file names that file */
    write_file("inc-bad.conf", "threads x;\n");
    write_file("with-bad.conf", SRV "include inc-bad.conf;\n");
    snprintf(path, sizeof(path), "%s/with-bad.conf", tmpdir);
    assert_null(gh_conf_load_file(path, &d));
    assert_int_equal(d.n, 1);
    snprintf(want, sizeof(want),
             "%s/inc-bad.conf:1:9: invalid value 'x' for 'threads' (expected auto or 1..256)",
             tmpdir);
    assert_string_equal(d.msgs[0], want);
    gh_conf_diag_free(&d);

    /* a cycle */
    write_file("cyc-a.conf", "include cyc-b.conf;\n");
    write_file("cyc-b.conf", "include cyc-a.conf;\n");
    snprintf(path, sizeof(path), "%s/cyc-a.conf", tmpdir);
    assert_null(gh_conf_load_file(path, &d));
    assert_int_equal(d.n, 1);
    snprintf(want, sizeof(want),
             "%s/cyc-b.conf:1:9: include cycle: '%s/cyc-a.conf' is already being read", tmpdir,
             tmpdir);
    assert_string_equal(d.msgs[0], want);
    gh_conf_diag_free(&d);

    /* a directory is not a config file */
    snprintf(path, sizeof(path), "%s/conf.d", tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    write_file("dir.conf", "include conf.d;\n");
    snprintf(path, sizeof(path), "%s/dir.conf", tmpdir);
    assert_null(gh_conf_load_file(path, &d));
    assert_int_equal(d.n, 1);
    snprintf(want, sizeof(want), "%s:1:9: '%s/conf.d' is not a regular file", path, tmpdir);
    assert_string_equal(d.msgs[0], want);
    gh_conf_diag_free(&d);

    /* the top file itself */
    snprintf(path, sizeof(path), "%s/absent.conf", tmpdir);
    assert_null(gh_conf_load_file(path, &d));
    assert_int_equal(d.n, 1);
    snprintf(want, sizeof(want), "%s: cannot open config file: No such file or directory", path);
    assert_string_equal(d.msgs[0], want);
    gh_conf_diag_free(&d);

    /* include syntax */
    expect_only_error("include;\n" SRV, "t.conf:1:1: 'include' expects 1 argument, got 0");
    const char *t = "include /etc/passwd;\n" SRV;
    assert_null(gh_conf_load_string_flags("t.conf", t, strlen(t), GH_CONF_NO_INCLUDE, &d));
    assert_int_equal(d.n, 1);
    assert_string_equal(d.msgs[0], "t.conf:1:1: 'include' is not allowed here");
    gh_conf_diag_free(&d);
}

static void
test_include_depth(void **state)
{
    /* a chain of 20 files, each including the next: stops at 16 levels */
    for (int i = 0; i < 20; i++) {
        char name[32], body[64];
        snprintf(name, sizeof(name), "deep%d.conf", i);
        snprintf(body, sizeof(body), "include deep%d.conf;\n", i + 1);
        write_file(name, body);
    }
    write_file("deep20.conf", SRV);
    char path[256];
    snprintf(path, sizeof(path), "%s/deep0.conf", tmpdir);
    struct gh_conf_diag d;
    assert_null(gh_conf_load_file(path, &d));
    assert_int_equal(d.n, 1);
    char want[512];
    snprintf(want, sizeof(want), "%s/deep16.conf:1:1: include nested too deeply (limit 16)",
             tmpdir);
    assert_string_equal(d.msgs[0], want);
    gh_conf_diag_free(&d);
    /* 16 levels are fine */
    write_file("deep16.conf", SRV);
    struct gh_config *c = gh_conf_load_file(path, &d);
    assert_non_null(c);
    gh_conf_unref(c);
    gh_conf_diag_free(&d);
}

static void
test_relative_log_paths(void **state)
{
    write_file("logs.conf", "access_log logs/access.log;\nerror_log /abs/error.log;\n" SRV);
    char path[256], want[256];
    snprintf(path, sizeof(path), "%s/logs.conf", tmpdir);
    struct gh_conf_diag d;
    struct gh_config *c = gh_conf_load_file(path, &d);
    assert_non_null(c);
    snprintf(want, sizeof(want), "%s/logs/access.log", tmpdir);
    assert_string_equal(c->access_log_path, want);
    assert_string_equal(c->error_log_path, "/abs/error.log");
    gh_conf_unref(c);
    gh_conf_diag_free(&d);
}

static void
test_pid_path(void **state)
{
    /* relative to the directory of the file that names it, like the log paths */
    write_file("pid.conf", "pid run/gatehouse.pid;\n" SRV);
    char path[256], want[300];
    snprintf(path, sizeof(path), "%s/pid.conf", tmpdir);
    struct gh_conf_diag d;
    struct gh_config *c = gh_conf_load_file(path, &d);
    assert_non_null(c);
    snprintf(want, sizeof(want), "%s/run/gatehouse.pid", tmpdir);
    assert_string_equal(c->pid_path, want);
    snprintf(want, sizeof(want), "%s:1:5", path);
    assert_string_equal(c->pid_at, want);
    gh_conf_unref(c);
    gh_conf_diag_free(&d);

    c = load("pid /run/gatehouse.pid;\n" SRV);
    assert_string_equal(c->pid_path, "/run/gatehouse.pid");
    gh_conf_unref(c);
    c = load(SRV);
    assert_null(c->pid_path); /* no pid file unless asked for */
    gh_conf_unref(c);

    expect_only_error("pid \"\";\n" SRV, "t.conf:1:5: invalid path '' for 'pid'");
    expect_only_error("pid a.pid;\npid b.pid;\n" SRV, "t.conf:2:1: duplicate 'pid' (first at 1:1)");
    expect_only_error("server { listen 127.0.0.1:8080; return 200; pid x.pid; }",
                      "t.conf:1:45: directive 'pid' is not allowed in 'server' context");
}

/* ---- examples ---- */

static void
load_example(const char *path)
{
    struct gh_conf_diag d;
    struct gh_config *c = gh_conf_load_file(path, &d);
    gh_conf_diag_print(&d, stderr);
    assert_int_equal(d.n, 0);
    assert_non_null(c);
    assert_true(c->n_listeners > 0);
    for (uint32_t i = 0; i < c->n_listeners; i++) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&c->listeners[i].addr.ss;
        if (sin->sin_family == AF_INET)
            assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    }
    gh_conf_unref(c);
    gh_conf_diag_free(&d);
}

static void
test_example_reverse_proxy(void **state)
{
    load_example("examples/reverse-proxy.conf");
}

static void
test_example_load_balancer(void **state)
{
    load_example("examples/load-balancer.conf");
}

/* ---- arena ---- */

static int cleanup_ran;
static void
on_cleanup(void *p)
{
    cleanup_ran += *(int *)p;
}

/* The protection directives (issue 10): PROXY protocol, request buffering, body rate, queue,
 * deferred accept, and their defaults. */
static void
test_protection_directives(void **state)
{
    (void)state;
    struct gh_config *c = load("server { listen 127.0.0.1:8080; proxy 127.0.0.1:1; }");
    const struct gh_proxy_conf *pc = &c->servers[0].pc;
    assert_true(pc->request_buffering);
    assert_int_equal(pc->request_buffer_size, 16384);
    assert_string_equal(pc->client_body_temp_path, "/tmp");
    assert_int_equal(pc->client_body_min_rate, 0);
    assert_int_equal(c->servers[0].proxy_protocol_timeout_ms, 10000);
    assert_null(c->servers[0].proxy_protocol_from);
    assert_false(c->listeners[0].proxy_protocol);
    assert_int_equal(c->listeners[0].defer_accept_s, 0);
    assert_int_equal(c->upstreams[0].queue_max, 0);
    assert_int_equal(c->upstreams[0].servers[0].send_proxy, 0);
    gh_conf_unref(c);

    c = load(
        "proxy_protocol_from 10.0.0.0/8 192.0.2.1;\nrequest_buffering on 1m;\n"
        "client_body_min_rate 2k 3s;\n"
        "upstream u { server 127.0.0.1:1 send_proxy_v2; server 127.0.0.1:2 send_proxy; "
        "queue 7 timeout=2s; }\n"
        "server { listen 127.0.0.1:8080 proxy_protocol deferred; client_header_timeout 2500ms;\n"
        "  proxy_protocol_timeout 3s; proxy u;\n"
        "  route /s/ { request_buffering off; client_body_temp_path /var/tmp; } }");
    const struct gh_server_conf *sc = &c->servers[0];
    assert_true(c->listeners[0].proxy_protocol);
    assert_int_equal(c->listeners[0].defer_accept_s, 3); /* the head's timeout, rounded up */
    assert_non_null(sc->proxy_protocol_from);
    assert_int_equal(sc->proxy_protocol_timeout_ms, 3000);
    assert_true(sc->pc.request_buffering);
    assert_int_equal(sc->pc.request_buffer_size, 1 << 20);
    assert_int_equal(sc->pc.client_body_min_rate, 2048);
    assert_int_equal(sc->pc.client_body_min_rate_grace_ms, 3000);
    const struct gh_route *r = &sc->routes[0];
    assert_false(r->pc.request_buffering);
    assert_string_equal(r->pc.client_body_temp_path, "/var/tmp");
    const struct gh_upstream_conf *u = &c->upstreams[0];
    assert_int_equal(u->servers[0].send_proxy, 2);
    assert_int_equal(u->servers[1].send_proxy, 1);
    assert_int_equal(u->queue_max, 7);
    assert_int_equal(u->queue_timeout_ms, 2000);
    gh_conf_unref(c);

    expect_error("server { listen 127.0.0.1:8080 proxy_protocol; return 200; }",
                 "t.conf:1:17: 'listen 127.0.0.1:8080 proxy_protocol' needs 'proxy_protocol_from "
                 "CIDR...;' (at top level or in its default server): the addresses allowed to "
                 "send the header");
    expect_error("real_ip_header proxy_protocol;\nserver { listen 127.0.0.1:8080; return 200; }",
                 "t.conf:1:16: 'real_ip_header proxy_protocol': Gatehouse takes the PROXY "
                 "protocol's address on the listener itself: 'listen ... proxy_protocol;' with "
                 "'proxy_protocol_from CIDR...;'");
}

static void
test_arena(void **state)
{
    struct gh_arena *a = gh_arena_new();
    char *s = gh_arena_strndup(a, "hello world", 5);
    assert_string_equal(s, "hello");
    for (int i = 0; i < 1000; i++) {
        void *p = gh_arena_alloc(a, (size_t)i * 7 + 1);
        assert_true(((uintptr_t)p % _Alignof(max_align_t)) == 0);
        assert_int_equal(((unsigned char *)p)[0], 0);
    }
    void *big = gh_arena_alloc_aligned(a, 100000, 64);
    assert_true(((uintptr_t)big % 64) == 0);
    memset(big, 1, 100000);
    assert_string_equal(gh_arena_sprintf(a, "%d-%s", 42, "x"), "42-x");
    static int one = 1;
    gh_arena_add_cleanup(a, on_cleanup, &one);
    assert_true(gh_arena_used(a) > 100000);
    gh_arena_free(a);
    assert_int_equal(cleanup_ran, 1);
    gh_arena_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_main_directives),
        cmocka_unit_test(test_server_directives),
        cmocka_unit_test(test_proxy_directives),
        cmocka_unit_test(test_forwarded_modes),
        cmocka_unit_test(test_return_body),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_nginx_names_point_to_ours),
        cmocka_unit_test(test_addresses_as_nginx_users_write_them),
        cmocka_unit_test(test_upstream_directives),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_inheritance),
        cmocka_unit_test(test_inheritance_server_level_from_top),
        cmocka_unit_test(test_inheritance_order_independent),
        cmocka_unit_test(test_header_rules_inheritance),
        cmocka_unit_test(test_anonymous_upstream),
        cmocka_unit_test(test_proxy_overrides_return),
        cmocka_unit_test(test_listeners_grouped),
        cmocka_unit_test(test_routes_sorted),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_find_server),
        cmocka_unit_test(test_find_server_first_is_default),
        cmocka_unit_test(test_find_route),
        cmocka_unit_test(test_find_route_threads),
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_err_unknown_directive),
        cmocka_unit_test(test_err_not_allowed),
        cmocka_unit_test(test_err_missing_semicolon),
        cmocka_unit_test(test_err_unexpected),
        cmocka_unit_test(test_err_unterminated_block),
        cmocka_unit_test(test_err_block_shape),
        cmocka_unit_test(test_err_duplicate_directive),
        cmocka_unit_test(test_err_duration),
        cmocka_unit_test(test_err_size),
        cmocka_unit_test(test_err_number),
        cmocka_unit_test(test_err_threads),
        cmocka_unit_test(test_err_upstreams),
        cmocka_unit_test(test_err_server_without_listen),
        cmocka_unit_test(test_err_address),
        cmocka_unit_test(test_err_address_explained),
        cmocka_unit_test(test_err_headers),
        cmocka_unit_test(test_err_return),
        cmocka_unit_test(test_err_route),
        cmocka_unit_test(test_err_server_names),
        cmocka_unit_test(test_err_values),
        cmocka_unit_test(test_err_rewrite_paths),
        cmocka_unit_test(test_err_lexer),
        cmocka_unit_test(test_err_collects_all),
        cmocka_unit_test(test_err_file_order),
        cmocka_unit_test_setup_teardown(test_err_file_order_includes, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_err_too_many),
        cmocka_unit_test(test_err_nesting),
        cmocka_unit_test(test_lexer_details),
        cmocka_unit_test_setup_teardown(test_include_relative_and_glob, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_include_errors, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_include_depth, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_relative_log_paths, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_pid_path, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_example_reverse_proxy),
        cmocka_unit_test(test_example_load_balancer),
        cmocka_unit_test(test_balance_directives),
        cmocka_unit_test(test_protection_directives),
        cmocka_unit_test(test_health_geo_directives),
        cmocka_unit_test(test_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
