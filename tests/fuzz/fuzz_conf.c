/*
 * fuzz_conf.c - libFuzzer target for the config language (lexer, parser,
 * validation, compile). Any input must load or fail with diagnostics, never
 * crash or leak. Includes are disabled so fuzz input cannot read files.
 * A loaded config is also exercised through the per-request lookups.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gh_conf_diag diag;
    struct gh_config *cfg =
        gh_conf_load_string_flags("fuzz.conf", (const char *)data, size, GH_CONF_NO_INCLUDE, &diag);
    if (cfg == NULL) {
        GH_ASSERT(diag.n > 0);
    } else {
        GH_ASSERT(diag.n == 0);
        static const char *const hosts[] = {"a.test", "X.A.TEST:80", "[::1]:8080", ""};
        static const char *const paths[] = {"/", "/api/v1/users/1", "/x.png", ""};
        for (uint32_t i = 0; i < cfg->n_listeners; i++) {
            for (size_t h = 0; h < GH_ARRAY_LEN(hosts); h++) {
                const struct gh_server_conf *s =
                    gh_conf_find_server(&cfg->listeners[i], hosts[h], strlen(hosts[h]));
                GH_ASSERT(s != NULL);
                for (size_t p = 0; p < GH_ARRAY_LEN(paths); p++)
                    GH_ASSERT(gh_conf_find_route(s, paths[p], strlen(paths[p]), NULL) != NULL);
            }
        }
        gh_conf_unref(cfg);
    }
    gh_conf_diag_free(&diag);
    return 0;
}
