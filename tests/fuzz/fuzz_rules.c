/*
 * fuzz_rules.c - libFuzzer target for the access-rule condition parser (conf/cond.c), the
 * rule directives around it (conf/access.c) and the matcher (policy/rules.c).
 *
 * The first byte chooses the directive the rest follows (bit 0-1: deny, allow, redirect,
 * return; bit 2: at route level), as in
 *   geo $g { ... }  server { listen 127.0.0.1:1; deny 403 if <rest>; }
 * loaded as untrusted text (no file is read: `client in FILE` is an empty list). A config
 * that loads must have compiled steps; each is matched against a few fixed requests, which
 * must neither crash nor read past any slice (ASan). A config that fails has diagnostics.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "policy/cidr.h"
#include "policy/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TEXT 4096

static const struct gh_h1_header fields[] = {
    {"User-Agent", "sqlmap/1.0", 10, 10, GH_HDR_OTHER},
    {"Cookie", "a=1; session=x; =; b", 6, 20, GH_HDR_OTHER},
    {"cookie", "c=", 6, 2, GH_HDR_OTHER},
    {"X-Empty", "", 7, 0, GH_HDR_OTHER},
};

static void
match_all(const struct gh_access *acc)
{
    static const uint8_t v4[16] = {127, 0, 0, 2};
    static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
    static const char *const paths[] = {"/", "/admin/x", ""};
    static const char *const queries[] = {"", "debug", "a=1&debug=&&b", "&="};
    static const char *const hosts[] = {"A.test:80", "[::1]:8080", "", "x"};
    for (size_t i = 0; i < 12; i++) {
        struct gh_rule_req r = {.family = i & 1 ? AF_INET6 : AF_INET,
                                .ip = i & 1 ? v6 : v4,
                                .method = i & 2 ? "DELETE" : "GET",
                                .method_len = i & 2 ? 6 : 3,
                                .host = hosts[i % 4],
                                .host_len = (uint32_t)strlen(hosts[i % 4]),
                                .path = paths[i % 3],
                                .path_len = (uint32_t)strlen(paths[i % 3]),
                                .query = queries[i % 4],
                                .query_len = (uint32_t)strlen(queries[i % 4]),
                                .fields = fields,
                                .n_fields = i < 6 ? 4 : 0,
                                .sni = i & 4 ? "a.test" : NULL,
                                .cert = i & 8 ? "CN=client" : NULL};
        for (uint32_t s = 0; s < acc->n_steps; s++) {
            const struct gh_access_step *st = &acc->steps[s];
            if (st->set != NULL)
                (void)gh_cidr_set_find(st->set, r.family, r.ip);
            else
                (void)gh_rule_match(st->conds, st->n_conds, &r);
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > MAX_TEXT)
        return 0;
    static const char *const dirs[] = {"deny 403 if ", "allow if ", "redirect 302 /x if ",
                                       "return 200 ok if "};
    const char *d = dirs[data[0] & 3];
    bool route = data[0] & 4;
    char *text = malloc(size + 192);
    int n = snprintf(text, size + 192,
                     "geo $g { 127.0.0.0/8 lo; ::/0 six; default x; }\n"
                     "server { listen 127.0.0.1:1; %s%s",
                     route ? "route / { " : "", d);
    memcpy(text + n, data + 1, size - 1);
    size_t len = (size_t)n + size - 1;
    len += (size_t)snprintf(text + len, 16, route ? ";}}\n" : ";}\n");
    struct gh_conf_diag diag;
    struct gh_config *cfg =
        gh_conf_load_string_flags("fuzz.conf", text, len, GH_CONF_NO_INCLUDE, &diag);
    if (cfg == NULL) {
        GH_ASSERT(diag.n > 0);
    } else {
        for (uint32_t i = 0; i < cfg->n_servers; i++) {
            const struct gh_server_conf *s = &cfg->servers[i];
            if (s->pc.access != NULL)
                match_all(s->pc.access);
            for (uint32_t k = 0; k < s->n_routes; k++)
                if (s->routes[k].pc.access != NULL)
                    match_all(s->routes[k].pc.access);
        }
        gh_conf_unref(cfg);
    }
    gh_conf_diag_free(&diag);
    free(text);
    return 0;
}
