/*
 * domains.h - a set of domain names that matches a name and every name under it
 * (`social.test` matches `social.test` and `www.social.test`, not `antisocial.test`),
 * case-insensitively and ignoring a trailing dot. Used by the forward proxy's
 * `block_domains` / `allow_domains`.
 *
 * Built once (at config load) and only read afterwards, by any number of threads. A lookup
 * hashes the name and each of its parent names (at most one per label) into an open-addressing
 * table: a few hundred nanoseconds whatever the size; a million names load in well under a
 * second.
 */
#ifndef GH_POLICY_DOMAINS_H
#define GH_POLICY_DOMAINS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gh_domains;

/* An empty set. NULL when out of memory. */
struct gh_domains *gh_domains_new(void);
void gh_domains_free(void *set);

/*
 * Add name (len bytes; lower-cased, a trailing dot and a leading "*." or "." dropped: they mean
 * the same here). tag is returned by a lookup that matches through it (the rule's index).
 * Returns 0, -EINVAL for what is not a domain name, -ENOMEM.
 */
int gh_domains_add(struct gh_domains *s, const char *name, size_t len, uint32_t tag);

/*
 * Add every name in the file at path: one per line; blank lines, comment lines (#) and a hosts
 * file's leading address ("0.0.0.0 ads.test") are understood. Returns the number of names
 * added, or -errno; *bad_line is the first line that is not a name (0: none; such lines are
 * skipped).
 */
long gh_domains_add_file(struct gh_domains *s, const char *path, uint32_t tag, uint32_t *bad_line);

/*
 * Does name (or a domain it is under) belong to the set? Returns true with *tag and *matched
 * (the set's name that matched, NUL-terminated, valid while the set lives).
 */
bool gh_domains_match(const struct gh_domains *s, const char *name, size_t len, uint32_t *tag,
                      const char **matched);

/* The names in the set. */
uint32_t gh_domains_count(const struct gh_domains *s);

#endif
