/*
 * arena.h - a bump allocator for objects that share one lifetime.
 *
 * Everything a config owns is carved out of one arena and freed at once with
 * gh_arena_free (nginx pools, h2o mem pools). There is no per-object free.
 * Memory comes back zeroed and aligned for any type (alignof(max_align_t)).
 * Cleanup callbacks registered on the arena run (last registered first) just
 * before its memory is released, for resources the arena cannot own itself
 * (compiled regexes, for example).
 *
 * An arena is not thread-safe: one thread builds it; once built, its contents
 * may be read from any thread. Allocation failure exits the process with a
 * message (start-up allocation, STYLE "Memory" rule 6).
 */
#ifndef GH_CORE_ARENA_H
#define GH_CORE_ARENA_H

#include <stddef.h>

#include "core/common.h"

struct gh_arena;

typedef void (*gh_arena_cleanup_cb)(void *data);

/* A new, empty arena. Never NULL. */
struct gh_arena *gh_arena_new(void);

/* Run the cleanups, then release every block and the arena itself. NULL is fine. */
void gh_arena_free(struct gh_arena *a);

/* size zeroed bytes aligned to alignof(max_align_t); size 0 gives a valid unique pointer. */
void *gh_arena_alloc(struct gh_arena *a, size_t size);

/* size zeroed bytes aligned to align (a power of two, at most 4096). */
void *gh_arena_alloc_aligned(struct gh_arena *a, size_t size, size_t align);

/* A NUL-terminated copy of the n bytes at s (s need not be terminated). */
char *gh_arena_strndup(struct gh_arena *a, const char *s, size_t n);

/* A NUL-terminated copy of s. */
char *gh_arena_strdup(struct gh_arena *a, const char *s);

/* printf into the arena. */
char *gh_arena_sprintf(struct gh_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Register fn(data) to run when the arena is freed. */
void gh_arena_add_cleanup(struct gh_arena *a, gh_arena_cleanup_cb fn, void *data);

/* Bytes handed out so far (for tests and stats). */
size_t gh_arena_used(const struct gh_arena *a);

#endif
