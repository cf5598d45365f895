/*
 * cidr.h - address prefixes (CIDR) and a compiled set of them that answers "which is the
 * first prefix, in the order given, that contains this address?" in one walk down a binary
 * trie per family: at most 32 steps for IPv4 and 128 for IPv6, whatever the number of
 * prefixes, and usually far fewer (a walk stops as soon as nothing below can beat what it
 * found). Used by `allow` / `deny` and `real_ip_from`.
 *
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is looked up as the IPv4 address, and a
 * prefix written that way (::ffff:10.0.0.0/104) is stored as the IPv4 prefix (10.0.0.0/8);
 * other IPv6 prefixes never match an IPv4 address (as in nginx: `deny ::/0` leaves IPv4
 * clients alone).
 *
 * A set is built once (at config load) into an arena and only read afterwards: any number of
 * threads may look up at once.
 */
#ifndef GH_POLICY_CIDR_H
#define GH_POLICY_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

#define GH_CIDR_NONE UINT32_MAX

/* One prefix: family AF_INET or AF_INET6, the address in network order (4 or 16 bytes
 * used), and its length in bits (0..32 or 0..128). Bits past the length are zero. */
struct gh_cidr {
    uint8_t family;
    uint8_t bits;
    uint8_t ip[16];
};

/*
 * Parse "10.0.0.0/8", "192.0.2.1" (a /32), "2001:db8::/32" or "::1" (a /128) from
 * s[0..len). An IPv4-mapped IPv6 prefix of at least 96 bits becomes the IPv4 prefix.
 * Bits set past the prefix length are cleared and *host_bits says there were some (nginx
 * warns "low address bits are meaningless"). Returns 0, or -EINVAL with *why (a static
 * string) saying what is wrong.
 */
int gh_cidr_parse(const char *s, size_t len, struct gh_cidr *out, bool *host_bits,
                  const char **why);

/* Parse a bare address ("192.0.2.1", "2001:db8::1"), no prefix length, into family and
 * ip[16] (IPv4 in the first 4 bytes). An IPv4-mapped IPv6 address stays IPv6. 0 or -EINVAL. */
int gh_ip_parse(const char *s, size_t len, uint8_t *family, uint8_t ip[16]);

/* Does c contain the address (family, ip)? The slow, obvious check (tests use it as the
 * reference for gh_cidr_set_find). Mapped IPv6 addresses are compared as IPv4. */
bool gh_cidr_contains(const struct gh_cidr *c, uint8_t family, const uint8_t *ip);

struct gh_cidr_set;

/* Compile prefixes[0..n) (their order is the rule order) into a set in arena a. Never NULL
 * (allocation failure exits, as at any config load). */
const struct gh_cidr_set *gh_cidr_set_build(struct gh_arena *a, const struct gh_cidr *prefixes,
                                            uint32_t n);

/* The index of the first prefix (in build order) that contains (family, ip), or GH_CIDR_NONE.
 * family AF_INET reads ip[0..4), AF_INET6 ip[0..16). s may be NULL (nothing matches). */
uint32_t gh_cidr_set_find(const struct gh_cidr_set *s, uint8_t family, const uint8_t *ip);

/* Trie nodes in use (for tests and memory estimates; 16 bytes each). */
uint32_t gh_cidr_set_nodes(const struct gh_cidr_set *s);

#endif
