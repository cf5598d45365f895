/*
 * common.c - start-up allocation helpers, assertion failure, ASCII tables.
 */
#include "core/common.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void
gh_assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "gatehouse: assertion failed: %s (%s:%d)\n", cond, file, line);
    abort();
}

static void
oom(size_t n)
{
    fprintf(stderr, "gatehouse: out of memory allocating %zu bytes\n", n);
    exit(1);
}

void *
gh_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *
gh_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom(n * size);
    return p;
}

char *
gh_xstrdup(const char *s)
{
    return gh_xstrndup(s, strlen(s));
}

char *
gh_xstrndup(const char *s, size_t n)
{
    char *p = gh_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

#define L4(c) (c), (c) + 1, (c) + 2, (c) + 3
#define L16(c) L4(c), L4((c) + 4), L4((c) + 8), L4((c) + 12)
const unsigned char gh_lower_tab[256] = {
    L16(0),
    L16(16),
    L16(32),
    L16(48),
    /* 64..95: '@', 'A'..'Z' -> 'a'..'z', '[', '\\', ']', '^', '_' */
    64,
    L4('a'),
    L4('e'),
    L4('i'),
    L4('m'),
    L4('q'),
    L4('u'),
    'y',
    'z',
    91,
    92,
    93,
    94,
    95,
    L16(96),
    L16(112),
    L16(128),
    L16(144),
    L16(160),
    L16(176),
    L16(192),
    L16(208),
    L16(224),
    L16(240),
};

int
gh_strncaseeq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (gh_lower_tab[(unsigned char)a[i]] != gh_lower_tab[(unsigned char)b[i]])
            return 0;
    return 1;
}

int
gh_parse_port(const char *s, size_t len, uint16_t *port)
{
    if (len == 0 || len > 5)
        return -EINVAL;
    uint32_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}

void
gh_random_seed(uint64_t seed[2])
{
    if (getrandom(seed, 2 * sizeof(uint64_t), GRND_NONBLOCK) == (ssize_t)(2 * sizeof(uint64_t)))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    seed[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec;
    seed[1] = seed[0] * 0xbf58476d1ce4e5b9ull + 1;
}

size_t
gh_host_name(const char *name, size_t len, char *out, bool ip6)
{
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > 253)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = gh_lower((unsigned char)name[i]);
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                   (ip6 && c == ':')) {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
        out[i] = (char)c;
    }
    out[len] = '\0';
    return label == 0 ? 0 : len;
}
