/*
 * lpm.h - longest-prefix match of addresses to values, for large prefix lists (`geo` maps:
 * a million prefixes and more). Where cidr.h answers "the first prefix in rule order", this
 * answers "the most specific prefix", as routing tables and nginx's geo do.
 *
 * The prefixes are flattened at build time into sorted, non-overlapping address ranges per
 * family (a nested prefix cuts a hole in its parent's range), so a lookup is one binary
 * search: about 21 steps for a million prefixes, with no pointer chasing, and the structure
 * is two flat arrays per family (IPv4 keys are 4 bytes, IPv6 keys 16). Building sorts the
 * prefixes once: O(n log n).
 *
 * An IPv4-mapped IPv6 address is looked up as the IPv4 address (cidr.h parses a mapped
 * prefix into the IPv4 one). Built once at config load, then only read: any number of threads
 * may look up at once.
 */
#ifndef GH_POLICY_LPM_H
#define GH_POLICY_LPM_H

#include <stddef.h>
#include <stdint.h>

#include "policy/cidr.h"

#define GH_LPM_NONE UINT32_MAX

struct gh_lpm;

/* Prefixes being gathered for a build (heap; zero it to start). */
struct gh_lpm_builder {
    struct gh_lpm_item *v;
    size_t n, cap;
};

/* Add prefix c with value (below GH_LPM_NONE) and tag (the caller's: a line number, for the
 * duplicate report). Returns 0 or -ENOMEM. */
int gh_lpm_add(struct gh_lpm_builder *b, const struct gh_cidr *c, uint32_t value, uint32_t tag);

/*
 * Build the map from b's prefixes (b is emptied and freed either way). The same prefix given
 * twice is an error: NULL with *dup_tag set to the later one's tag and *dup_first_tag to the
 * earlier one's. NULL with both GH_LPM_NONE when out of memory. Free with gh_lpm_free.
 */
struct gh_lpm *gh_lpm_build(struct gh_lpm_builder *b, uint32_t *dup_first_tag, uint32_t *dup_tag);
void gh_lpm_free(struct gh_lpm *m);

/* The value of the longest prefix containing (family, ip) (ip: 4 bytes for AF_INET, 16 for
 * AF_INET6), or GH_LPM_NONE. m may be NULL (nothing matches). */
uint32_t gh_lpm_find(const struct gh_lpm *m, uint8_t family, const uint8_t *ip);

/* Ranges stored (for tests and memory estimates). */
size_t gh_lpm_ranges(const struct gh_lpm *m);

#endif
