/*
 * geoip.c - MaxMind DB lookups (see geoip.h); the only file that includes <maxminddb.h>.
 */
#include "policy/geoip.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <maxminddb.h>

struct gh_geoip {
    MMDB_s db;
    const char *path[GH_GEOIP_MAX_PATH + 1]; /* NULL-terminated, for MMDB_aget_value */
};

struct gh_geoip *
gh_geoip_open(const char *path, const char *const *fields, uint32_t n, char *err, size_t errlen)
{
    struct gh_geoip *g = calloc(1, sizeof(*g));
    if (g == NULL || n == 0 || n > GH_GEOIP_MAX_PATH) {
        snprintf(err, errlen, "%s", g == NULL ? "out of memory" : "1 to 8 fields expected");
        free(g);
        return NULL;
    }
    int rc = MMDB_open(path, MMDB_MODE_MMAP, &g->db);
    if (rc != MMDB_SUCCESS) {
        snprintf(err, errlen, "%s", MMDB_strerror(rc));
        free(g);
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++)
        g->path[i] = fields[i];
    return g;
}

void
gh_geoip_close(struct gh_geoip *g)
{
    if (g == NULL)
        return;
    MMDB_close(&g->db);
    free(g);
}

bool
gh_geoip_lookup(const struct gh_geoip *g, uint8_t family, const uint8_t *ip, const char **v,
                size_t *len)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, ip, 4);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, ip, 16);
    }
    int mmdb_err;
    MMDB_lookup_result_s r = MMDB_lookup_sockaddr(&g->db, (const struct sockaddr *)&ss, &mmdb_err);
    if (mmdb_err != MMDB_SUCCESS || !r.found_entry)
        return false;
    MMDB_entry_data_s d;
    if (MMDB_aget_value(&r.entry, &d, g->path) != MMDB_SUCCESS || !d.has_data ||
        d.type != MMDB_DATA_TYPE_UTF8_STRING)
        return false;
    *v = d.utf8_string;
    *len = d.data_size;
    return true;
}
