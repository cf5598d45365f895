/*
 * realip.h - the client's address from a header that trusted proxies set in front of us
 * (`real_ip_from`, `real_ip_header`), as nginx's realip module with real_ip_recursive on:
 *
 *   X-Forwarded-For  every field with the name, in order, read as one comma-separated list
 *                    from its right end: each valid entry in turn becomes the address, and
 *                    the walk stops at the first that is not itself trusted (the client).
 *                    An invalid entry stops the walk where it is: the rightmost entry
 *                    invalid leaves the connection's address, an invalid one further left
 *                    leaves the last valid (trusted) entry. Every entry trusted: the
 *                    leftmost.
 *   X-Real-IP, NAME  the first field with the name holds one address; invalid: ignored.
 *
 * Entries are "192.0.2.1", "2001:db8::1", "[2001:db8::1]", "192.0.2.1:4711" or
 * "[2001:db8::1]:4711", with optional spaces or tabs around them. Pure functions.
 */
#ifndef GH_POLICY_REALIP_H
#define GH_POLICY_REALIP_H

#include <stddef.h>
#include <stdint.h>

#include "policy/cidr.h"

/* An address with its port (0 when the header gave none); ip as in struct gh_cidr. */
struct gh_realip_addr {
    uint8_t family;
    uint16_t port;
    uint8_t ip[16];
};

/* Parse one entry (see above). 0 with *out set, or -EINVAL (*out untouched). */
int gh_realip_parse_one(const char *s, size_t len, struct gh_realip_addr *out);

#define GH_REALIP_MORE 0 /* every entry was valid and trusted: the field before goes on */
#define GH_REALIP_DONE 1 /* the walk stopped: *addr is the answer */

/*
 * Walk one X-Forwarded-For value v[0..len) from its right end. *addr is the address it was
 * received from, which is trusted; each valid entry replaces it. Returns GH_REALIP_DONE or
 * GH_REALIP_MORE (see above). Empty entries ("a,,b") are skipped.
 */
int gh_realip_walk_list(const struct gh_cidr_set *trusted, const char *v, size_t len,
                        struct gh_realip_addr *addr);

#endif
