/*
 * cache_admin.c - `cache_purge_api NAME;`: a route that purges a cache on request, the admin
 * side of PURGE. A pre-origin hook (before the route would answer 404 for having no origin):
 *
 *   POST|PURGE|DELETE ROUTE?url=KEY      the stored variants of one key
 *   POST|PURGE|DELETE ROUTE?prefix=KEY   every key that starts with it
 *   POST|PURGE|DELETE ROUTE?all=1        everything
 *
 * Values are percent-decoded. Allowed from cache_purge_from when set, else from loopback only
 * (on top of the route's access rules). The answer is JSON: {"purged":N}.
 */
#include <string.h>

#include "cache/store.h"
#include "http/uri.h"
#include "policy/cidr.h"
#include "proxy/cache.h"
#include "proxy/vars.h"

#define KEY_MAX 8192
#define BAD_ARGS "{\"error\":\"say url=KEY, prefix=KEY or all=1\"}\n"

/* $arg_NAME percent-decoded into out (cap bytes): its length, or -1 when absent or malformed. */
static long
arg(struct gh_exchange *ex, const char *name, char *out, size_t cap)
{
    char raw[KEY_MAX];
    struct gh_wr w = {raw, 0, sizeof(raw), 0};
    gh_vars_put(ex, GH_VAR_ARG_, name, strlen(name), &w, GH_ESC_RAW);
    if (w.overflow || w.len == 0)
        return -1;
    return gh_uri_unescape(raw, w.len, out, cap);
}

static bool
loopback(const struct gh_client_addr *a)
{
    static const uint8_t one6[16] = {[15] = 1};
    return (a->family == AF_INET && a->ip[0] == 127) ||
           (a->family == AF_INET6 && memcmp(a->ip, one6, 16) == 0);
}

static int
answer(struct gh_exchange *ex, int status, const char *text, size_t len)
{
    int rc = gh_respond_copy(ex, status, text, len, false);
    return rc == GH_OK ? GH_DECLINED : rc;
}

int
gh_cache_admin(struct gh_exchange *ex, const struct gh_request *req)
{
    const struct gh_cache_conf *cc = ex->pc->cache_admin;
    if (gh_likely(cc == NULL))
        return GH_OK;
    const struct gh_cidr_set *from = ex->pc->cache_purge_from;
    if (from != NULL ? gh_cidr_set_find(from, ex->client->family, ex->client->ip) == GH_CIDR_NONE
                     : !loopback(ex->client)) {
        ex->fail_reason = "cache_purge_api from an address not allowed to purge";
        return 403;
    }
    bool ok_method = req->method_id == GH_METHOD_POST || req->method_id == GH_METHOD_DELETE ||
                     (req->method_len == 5 && memcmp(req->method, "PURGE", 5) == 0);
    if (!ok_method) {
        ex->fail_reason = "cache_purge_api takes POST, PURGE or DELETE";
        return 405;
    }
    if (cc->store == NULL)
        return 503;
    static __thread char key[KEY_MAX];
    long n;
    uint32_t purged;
    if ((n = arg(ex, "url", key, sizeof(key))) > 0)
        purged = gh_cache_remove_key(cc->store, key, (size_t)n);
    else if ((n = arg(ex, "prefix", key, sizeof(key))) > 0)
        purged = gh_cache_remove_prefix(cc->store, key, (size_t)n);
    else if (arg(ex, "all", key, sizeof(key)) > 0)
        purged = gh_cache_remove_prefix(cc->store, "", 0);
    else
        return answer(ex, 400, BAD_ARGS, sizeof(BAD_ARGS) - 1);
    char text[48];
    int len = snprintf(text, sizeof(text), "{\"purged\":%u}\n", purged);
    return answer(ex, 200, text, (size_t)len);
}
