/*
 * htpasswd.h - a login file as Apache's htpasswd writes it (`user:hash` per line), checked
 * with crypt_r (libxcrypt): bcrypt ($2y$, $2b$, $2a$), yescrypt ($y$), scrypt ($7$) and
 * sha-crypt ($5$, $6$). Plaintext and the weak schemes (DES, MD5 $1$ and $apr1$, {SHA}) are
 * refused when the file loads. Built once (at config load), only read afterwards.
 */
#ifndef GH_POLICY_HTPASSWD_H
#define GH_POLICY_HTPASSWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gh_htpasswd;

/* Load path. NULL with the reason in err (the line number in *bad_line when a line is at
 * fault). */
struct gh_htpasswd *gh_htpasswd_load(const char *path, char *err, size_t errlen,
                                     uint32_t *bad_line);
void gh_htpasswd_free(void *h);

/* Is password right for user? On success *canon is the user's name as stored (valid while h
 * lives). Slow on purpose (the hash's cost): callers cache what succeeded. */
bool gh_htpasswd_check(const struct gh_htpasswd *h, const char *user, size_t ulen,
                       const char *password, size_t plen, const char **canon);

uint32_t gh_htpasswd_count(const struct gh_htpasswd *h);

/* The user's name as stored, or NULL when h has no such user (no hashing). */
const char *gh_htpasswd_user(const struct gh_htpasswd *h, const char *user, size_t ulen);

#endif
