/*
 * geoip.h - a MaxMind DB (GeoIP2 / GeoLite2 .mmdb, read with libmaxminddb) as a source of
 * `geo` values: the string at a path of fields (`continent code`, `country iso_code`) for
 * an address. The file is opened once at config load (memory-mapped) and only read after:
 * any number of threads may look up at once.
 */
#ifndef GH_POLICY_GEOIP_H
#define GH_POLICY_GEOIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GH_GEOIP_MAX_PATH 8

struct gh_geoip;

/* Open the database at path for the field path fields[0..n) (n at most GH_GEOIP_MAX_PATH;
 * the strings are borrowed for the map's life). NULL with a reason in err when it cannot be. */
struct gh_geoip *gh_geoip_open(const char *path, const char *const *fields, uint32_t n, char *err,
                               size_t errlen);
void gh_geoip_close(struct gh_geoip *g);

/* The string at the field path for (family, ip) (4 or 16 bytes): *v and *len point into the
 * database (valid while it is open). False when the address or the field is not there, or is
 * not a string. */
bool gh_geoip_lookup(const struct gh_geoip *g, uint8_t family, const uint8_t *ip, const char **v,
                     size_t *len);

#endif
