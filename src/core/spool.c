/*
 * spool.c - memory first, then an anonymous file.
 */
#include "core/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"

#define MEM_START 4096 /* the first allocation; doubled as bytes come */

void
gh_spool_init(struct gh_spool *s, uint32_t mem_max, const char *dir)
{
    memset(s, 0, sizeof(*s));
    s->mem_max = mem_max;
    s->fd = -1;
    s->dir = dir != NULL ? dir : "/tmp";
}

/* An anonymous file in dir: O_TMPFILE where the file system has it, else a name unlinked at
 * once. The fd or -errno. */
static int
open_anon(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd >= 0 ? fd : -errno;
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/gatehouse-body-XXXXXX", dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    fd = mkostemp(path, O_CLOEXEC);
    if (fd == -1)
        return -errno;
    unlink(path);
    return fd;
}

static int
mem_append(struct gh_spool *s, const char *p, size_t n)
{
    if (s->mem_len + n > s->mem_cap) {
        size_t cap = s->mem_cap ? s->mem_cap : MEM_START;
        while (cap < s->mem_len + n)
            cap *= 2;
        cap = GH_MIN(cap, (size_t)s->mem_max);
        char *m = realloc(s->mem, cap);
        if (m == NULL)
            return -ENOMEM;
        s->mem = m;
        s->mem_cap = (uint32_t)cap;
    }
    memcpy(s->mem + s->mem_len, p, n);
    s->mem_len += (uint32_t)n;
    return 0;
}

int
gh_spool_append(struct gh_spool *s, const void *data, size_t n)
{
    const char *p = data;
    size_t k = GH_MIN(n, (size_t)(s->mem_max - s->mem_len));
    if (s->fd < 0 && k > 0) {
        int rc = mem_append(s, p, k);
        if (rc != 0)
            return rc;
        s->len += k;
        p += k;
        n -= k;
    }
    if (n == 0)
        return 0;
    if (s->fd < 0) {
        int fd = open_anon(s->dir);
        if (fd < 0)
            return fd;
        s->fd = fd;
    }
    while (n > 0) {
        ssize_t w = pwrite(s->fd, p, n, (off_t)(s->len - s->mem_len));
        if (w == -1 && errno == EINTR)
            continue;
        if (w <= 0)
            return w == 0 ? -EIO : -errno;
        s->len += (uint64_t)w;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

ssize_t
gh_spool_read(struct gh_spool *s, char *buf, size_t cap, const char **p)
{
    if (s->rd < s->mem_len) {
        size_t k = GH_MIN(cap, (size_t)(s->mem_len - s->rd));
        *p = s->mem + s->rd;
        s->rd += k;
        return (ssize_t)k;
    }
    size_t k = (size_t)GH_MIN((uint64_t)cap, s->len - s->rd);
    if (k == 0)
        return 0;
    ssize_t r;
    do
        r = pread(s->fd, buf, k, (off_t)(s->rd - s->mem_len));
    while (r == -1 && errno == EINTR);
    if (r <= 0)
        return r == 0 ? -EIO : -errno;
    *p = buf;
    s->rd += (uint64_t)r;
    return r;
}

void
gh_spool_free(struct gh_spool *s)
{
    free(s->mem);
    if (s->fd >= 0)
        close(s->fd);
    gh_spool_init(s, s->mem_max, s->dir);
}
