/*
 * pipe.c - cached pipes for splice(2).
 */
#include "net/pipe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/common.h"

#define PIPE_CACHE_MAX 16

static __thread struct gh_pipe *pipe_cache;
static __thread uint32_t pipe_cached;
static __thread uint32_t pipe_open;

struct gh_pipe *
gh_pipe_get(void)
{
    struct gh_pipe *p = pipe_cache;
    if (p != NULL) {
        pipe_cache = p->next;
        pipe_cached--;
        p->next = NULL;
        return p;
    }
    p = malloc(sizeof(*p));
    if (p == NULL)
        return NULL;
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        free(p);
        return NULL;
    }
    p->rd = fds[0];
    p->wr = fds[1];
    /* 256 KiB moves a 100 KiB body in one splice each way instead of two; if
     * the kernel refuses (an unprivileged user over pipe-user-pages-soft) the
     * pipe keeps its default 64 KiB and splicing just takes more rounds */
    fcntl(p->wr, F_SETPIPE_SZ, GH_PIPE_SIZE);
    p->len = 0;
    p->next = NULL;
    pipe_open++;
    return p;
}

static void
pipe_close(struct gh_pipe *p)
{
    close(p->rd);
    close(p->wr);
    free(p);
    pipe_open--;
}

void
gh_pipe_put(struct gh_pipe *p)
{
    if (p == NULL)
        return;
    if (p->len != 0 || pipe_cached >= PIPE_CACHE_MAX) {
        pipe_close(p);
        return;
    }
    p->next = pipe_cache;
    pipe_cache = p;
    pipe_cached++;
}

void
gh_pipe_cache_drain(void)
{
    while (pipe_cache != NULL) {
        struct gh_pipe *p = pipe_cache;
        pipe_cache = p->next;
        pipe_close(p);
    }
    pipe_cached = 0;
}

uint32_t
gh_pipe_count(void)
{
    return pipe_open;
}

ssize_t
gh_splice(int fd_in, int fd_out, size_t n)
{
    ssize_t r;
    do
        r = splice(fd_in, NULL, fd_out, NULL, n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    while (r == -1 && errno == EINTR);
    if (r >= 0)
        return r;
    return errno == EAGAIN ? GH_AGAIN : -errno;
}
