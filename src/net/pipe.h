/*
 * pipe.h - pipes for splice(2): a per-thread cache of non-blocking pipes, so
 * that moving a large body from one socket to another costs no pipe2()/close()
 * per response, only the two splices.
 */
#ifndef GH_NET_PIPE_H
#define GH_NET_PIPE_H

#include <stdint.h>
#include <sys/types.h>

/* what a pipe is asked to hold (F_SETPIPE_SZ); the most a response can have
 * in flight inside one, on top of the two sockets' buffers */
#define GH_PIPE_SIZE (256 * 1024)

struct gh_pipe {
    int rd, wr;           /* O_NONBLOCK | O_CLOEXEC */
    uint32_t len;         /* bytes in the pipe (the user keeps this up to date) */
    struct gh_pipe *next; /* in the cache */
};

/* A pipe from this thread's cache, or a new one; NULL when none can be made
 * (out of descriptors): the caller copies through user space instead. */
struct gh_pipe *gh_pipe_get(void);

/* Give a pipe back: cached if it is empty and the cache has room, else closed
 * (a pipe with bytes left in it cannot be reused). */
void gh_pipe_put(struct gh_pipe *p);

/* Close this thread's cached pipes (at thread exit). */
void gh_pipe_cache_drain(void);

/* Pipes open in this thread (cached or in use), for tests and metrics. */
uint32_t gh_pipe_count(void);

/*
 * splice(2) up to n bytes from fd_in to fd_out, non-blocking, restarting on
 * EINTR. Returns bytes moved (0: end of stream on a socket), GH_AGAIN, or -errno.
 */
ssize_t gh_splice(int fd_in, int fd_out, size_t n);

#endif
