/*
 * common.h - return codes, assertions and tiny helpers shared by every module.
 *
 * Return convention (nginx, libuv): 0 is success, a negative -errno value is an
 * error, and four distinguished non-errno values carry control flow:
 *   GH_AGAIN       resume when I/O is ready
 *   GH_DECLINED    not mine, try the next handler
 *   GH_INCOMPLETE  a parser needs more input
 *   GH_BAD         a parser rejected its input (details in the parser's struct)
 * They are far below any errno so they never collide.
 */
#ifndef GH_CORE_COMMON_H
#define GH_CORE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define GH_OK 0
#define GH_AGAIN (-10001)
#define GH_DECLINED (-10002)
#define GH_INCOMPLETE (-10003)
#define GH_BAD (-10004)

/*
 * Pump functions (those that move bytes from one side of a relay to the
 * other) share one result convention:
 *   GH_PUMP_MOVED    something moved: call again
 *   GH_PUMP_BLOCKED  nothing moved: wait for readiness
 *   GH_PUMP_ENDED    the exchange ended or changed course inside the call
 *                    (completed, failed over to an error page, switched to a
 *                    tunnel, or closed): the caller must not use what it
 *                    knew about it and re-reads its own state
 * and negative -errno values where a function's contract says so.
 */
#define GH_PUMP_BLOCKED 0
#define GH_PUMP_MOVED 1
#define GH_PUMP_ENDED (-10005)

#define gh_likely(x) __builtin_expect(!!(x), 1)
#define gh_unlikely(x) __builtin_expect(!!(x), 0)

#define GH_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define GH_MIN(a, b) ((a) < (b) ? (a) : (b))
#define GH_MAX(a, b) ((a) > (b) ? (a) : (b))

#define gh_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/*
 * GH_ASSERT stays on in release builds (Varnish): it guards invariants whose
 * failure means memory corruption, where continuing would be worse than dying.
 */
#define GH_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (gh_unlikely(!(cond)))                                                                  \
            gh_assert_fail(#cond, __FILE__, __LINE__);                                             \
    } while (0)

void gh_assert_fail(const char *cond, const char *file, int line) __attribute__((noreturn));

/* Free and NULL in one step, so no reachable pointer to freed memory remains. */
#define gh_free(p)                                                                                 \
    do {                                                                                           \
        free(p);                                                                                   \
        (p) = NULL;                                                                                \
    } while (0)

/*
 * Start-up allocation: exits with a message when memory is exhausted. Never
 * call these on the request path, where failing the one request is right.
 */
void *gh_xmalloc(size_t n);
void *gh_xcalloc(size_t n, size_t size);
char *gh_xstrdup(const char *s);
char *gh_xstrndup(const char *s, size_t n);

/* ASCII lower-case without locale; table driven. */
extern const unsigned char gh_lower_tab[256];
static inline unsigned char
gh_lower(unsigned char c)
{
    return gh_lower_tab[c];
}

/* A decimal port 1..65535 in s[0..len) (digits only). 0, or -EINVAL. */
int gh_parse_port(const char *s, size_t len, uint16_t *port);

/* A host name lower-cased into out (len + 1 bytes) without its trailing dot, NUL-terminated:
 * its length, or 0 when it is not one (labels of 1..63 letters, digits, '-' and '_', 253 bytes
 * at most; with ip6, ':' is allowed too, for an IPv6 literal). */
size_t gh_host_name(const char *name, size_t len, char *out, bool ip6);

/* Case-insensitive compare of two byte ranges of the same length n. */
int gh_strncaseeq(const char *a, const char *b, size_t n);

/* MurmurHash3's 64-bit finaliser: every input bit moves every output bit. */
static inline uint64_t
gh_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* Two random words for keying hashes (getrandom(2); the clock when it has no entropy yet). */
void gh_random_seed(uint64_t seed[2]);

#endif
