/*
 * uri.h - request-target helpers (RFC 3986, RFC 9112 §3.2): pure functions
 * over byte ranges, no allocation.
 */
#ifndef GH_HTTP_URI_H
#define GH_HTTP_URI_H

#include <stddef.h>

/*
 * Normalise the path in[0..n) (a path that starts with '/', without its
 * query) as nginx does before it matches locations: %XX decoded, "//" merged,
 * "." and ".." segments resolved. Routing on it is what stops
 * `route /admin/ { return 403; }` from being walked around by "/%61dmin/",
 * "//admin/" or "/x/../admin/"; what goes to the origin is still the target as
 * received.
 *
 * A path that needs no change is not copied: *res points into in. Otherwise
 * the result is written to out (room for n bytes) and *res points there. The
 * result starts with '/' and is never longer than in.
 * Returns 0, or -1 for a path that cannot be normalised: a bad escape, an
 * escaped NUL, or ".." above the root (400, as in nginx).
 */
int gh_uri_normalize_path(const char *in, size_t n, char *out, const char **res, size_t *res_len);

/*
 * Split an absolute-form target ("http://host:port/path?query") into its
 * authority ("host:port") and the origin-form rest ("/path?query"; "/" when
 * the path and query are empty; "?query" when only the path is empty - the
 * caller writes the "/" before it). Both results point into t.
 */
void gh_uri_split_absolute(const char *t, size_t n, const char **auth, size_t *auth_len,
                           const char **path, size_t *path_len);

/*
 * Percent-encode the decoded path in[0..n) for a request target (RFC 3986
 * §3.3): every byte that is not unreserved, a sub-delim, ':', '@' or '/'
 * becomes %XX (so '%', '?', '#', spaces, controls and non-ASCII bytes are
 * escaped). Writes to out; returns the length, or 0 when cap is too small.
 */
size_t gh_uri_encode_path(const char *in, size_t n, char *out, size_t cap);

/* %XX escapes of in[0..n) decoded into out (cap bytes; '+' stays '+'): the length, or -1 for
 * a bad escape or when it does not fit. */
long gh_uri_unescape(const char *in, size_t n, char *out, size_t cap);

/* Whether c stands for itself in an encoded path (the bytes gh_uri_encode_path keeps). */
int gh_uri_path_char(unsigned char c);

#endif
