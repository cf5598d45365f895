/*
 * buf.c - per-thread buffer cache and typed freelists.
 */
#include "core/buf.h"

#include <stdlib.h>

#define BUF_CACHE_MAX 256

static __thread struct gh_buf *buf_cache;
static __thread uint32_t buf_cached;

struct gh_buf *
gh_buf_get(void)
{
    struct gh_buf *b = buf_cache;
    if (b != NULL) {
        buf_cache = b->next_free;
        buf_cached--;
    } else {
        b = malloc(sizeof(*b));
        if (b == NULL)
            return NULL;
    }
    b->start = b->end = 0;
    b->next_free = NULL;
    return b;
}

void
gh_buf_put(struct gh_buf *b)
{
    if (b == NULL)
        return;
    if (buf_cached >= BUF_CACHE_MAX) {
        free(b);
        return;
    }
    b->next_free = buf_cache;
    buf_cache = b;
    buf_cached++;
}

void
gh_buf_cache_drain(void)
{
    while (buf_cache != NULL) {
        struct gh_buf *b = buf_cache;
        buf_cache = b->next_free;
        free(b);
    }
    buf_cached = 0;
}

void *
gh_freelist_get(struct gh_freelist *fl)
{
    void *p = fl->head;
    if (p != NULL) {
        fl->head = *(void **)p;
        fl->cached--;
    } else {
        p = malloc(fl->size);
        if (p == NULL)
            return NULL;
    }
    fl->allocated++;
    return p;
}

void
gh_freelist_put(struct gh_freelist *fl, void *p)
{
    if (p == NULL)
        return;
    fl->allocated--;
    if (fl->cached >= fl->max_cached) {
        free(p);
        return;
    }
    *(void **)p = fl->head;
    fl->head = p;
    fl->cached++;
}

void
gh_freelist_drain(struct gh_freelist *fl)
{
    while (fl->head != NULL) {
        void *p = fl->head;
        fl->head = *(void **)p;
        free(p);
    }
    fl->cached = 0;
}
