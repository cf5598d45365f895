/*
 * arena.c - bump allocator: a list of blocks, each carved from the front.
 *
 * Small requests share blocks of GH_ARENA_BLOCK bytes; a request larger than a
 * quarter block gets a block of its own, so one big file never wastes the
 * tail of a shared block.
 */
#include "core/arena.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#define GH_ARENA_BLOCK (16 * 1024)

struct block {
    struct block *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    alignas(max_align_t) unsigned char data[];
};

struct cleanup {
    struct cleanup *next;
    gh_arena_cleanup_cb fn;
    void *data;
};

struct gh_arena {
    struct block *cur; /* block small requests are carved from */
    struct block *big; /* dedicated blocks for large requests */
    struct cleanup *cleanups;
    size_t used;
};

static struct block *
block_new(size_t size)
{
    struct block *b = gh_xcalloc(1, sizeof(*b) + size);
    b->size = size;
    return b;
}

struct gh_arena *
gh_arena_new(void)
{
    struct gh_arena *a = gh_xcalloc(1, sizeof(*a));
    a->cur = block_new(GH_ARENA_BLOCK);
    return a;
}

static void
free_list(struct block *b)
{
    while (b != NULL) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
}

void
gh_arena_free(struct gh_arena *a)
{
    if (a == NULL)
        return;
    for (struct cleanup *c = a->cleanups; c != NULL; c = c->next)
        c->fn(c->data);
    free_list(a->cur);
    free_list(a->big);
    free(a);
}

void *
gh_arena_alloc_aligned(struct gh_arena *a, size_t size, size_t align)
{
    GH_ASSERT(align != 0 && (align & (align - 1)) == 0 && align <= 4096);
    if (size == 0)
        size = 1;
    GH_ASSERT(size < SIZE_MAX / 2);
    a->used += size;
    if (size + align > GH_ARENA_BLOCK / 4) {
        struct block *b = block_new(size + align);
        b->next = a->big;
        a->big = b;
        uintptr_t p = ((uintptr_t)b->data + align - 1) & ~(uintptr_t)(align - 1);
        return (void *)p;
    }
    struct block *b = a->cur;
    uintptr_t base = (uintptr_t)b->data;
    uintptr_t p = (base + b->used + align - 1) & ~(uintptr_t)(align - 1);
    if (p + size > base + b->size) {
        b = block_new(GH_ARENA_BLOCK);
        b->next = a->cur;
        a->cur = b;
        base = (uintptr_t)b->data;
        p = (base + align - 1) & ~(uintptr_t)(align - 1);
    }
    b->used = p + size - base;
    return (void *)p;
}

void *
gh_arena_alloc(struct gh_arena *a, size_t size)
{
    return gh_arena_alloc_aligned(a, size, alignof(max_align_t));
}

char *
gh_arena_strndup(struct gh_arena *a, const char *s, size_t n)
{
    char *p = gh_arena_alloc_aligned(a, n + 1, 1);
    if (n > 0)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
gh_arena_strdup(struct gh_arena *a, const char *s)
{
    return gh_arena_strndup(a, s, strlen(s));
}

char *
gh_arena_sprintf(struct gh_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    GH_ASSERT(n >= 0);
    char *p = gh_arena_alloc_aligned(a, (size_t)n + 1, 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void
gh_arena_add_cleanup(struct gh_arena *a, gh_arena_cleanup_cb fn, void *data)
{
    struct cleanup *c = gh_arena_alloc(a, sizeof(*c));
    c->fn = fn;
    c->data = data;
    c->next = a->cleanups;
    a->cleanups = c;
}

size_t
gh_arena_used(const struct gh_arena *a)
{
    return a->used;
}
