/*
 * buf.c - per-thread buffer cache and typed freelists.
 */
#include "core/buf.h"

#include <stdlib.h>

#ifdef GH_SANITIZE
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

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
        UNPOISON(p, fl->size);
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
    /* a pointer kept to an object given back is a use after free: ASan reports it */
    POISON(p, fl->size);
}

void
gh_freelist_drain(struct gh_freelist *fl)
{
    while (fl->head != NULL) {
        void *p = fl->head;
        UNPOISON(p, fl->size);
        fl->head = *(void **)p;
        free(p);
    }
    fl->cached = 0;
}
