/*
 * spool.h - a byte store that fills once and is read back, possibly several
 * times: its first mem_max bytes in memory, the rest in an anonymous file
 * (O_TMPFILE, or a name unlinked at once) in a given directory. Used to hold
 * a request body whole before an origin is chosen (`request_buffering`).
 *
 * The file is written and read with pwrite/pread on the calling thread: a
 * local disk (or tmpfs) answers in microseconds, as for nginx's client body
 * temp files. Nothing here allocates until the first byte is appended.
 */
#ifndef GH_CORE_SPOOL_H
#define GH_CORE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct gh_spool {
    char *mem;        /* the first bytes (malloc'd, grown up to mem_max) */
    uint32_t mem_len; /* bytes in mem */
    uint32_t mem_cap; /* its size */
    uint32_t mem_max; /* at most this many bytes in memory */
    int fd;           /* the file for the rest; -1: none yet */
    uint64_t len;     /* bytes stored in all */
    uint64_t rd;      /* read position */
    const char *dir;  /* where the file goes (borrowed: config text) */
};

/* An empty spool keeping at most mem_max bytes in memory, its file in dir. */
void gh_spool_init(struct gh_spool *s, uint32_t mem_max, const char *dir);

/* Append p[0..n). Returns 0, -ENOMEM, or -errno from opening or writing the file. */
int gh_spool_append(struct gh_spool *s, const void *p, size_t n);

/* Does the spool use a file (more than mem_max bytes came)? */
static inline bool
gh_spool_on_disk(const struct gh_spool *s)
{
    return s->fd >= 0;
}

/*
 * The next bytes from the read position, at most cap: bytes in memory are
 * pointed at in place (*p into the spool), bytes in the file are read into
 * buf (*p == buf). The position moves past them. Returns the count (0 at the
 * end), or -errno when the file cannot be read.
 */
ssize_t gh_spool_read(struct gh_spool *s, char *buf, size_t cap, const char **p);

/* Read from the start again. */
static inline void
gh_spool_rewind(struct gh_spool *s)
{
    s->rd = 0;
}

/* Free the memory and close the file (it disappears with it). The spool is empty after. */
void gh_spool_free(struct gh_spool *s);

#endif
