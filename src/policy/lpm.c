/*
 * lpm.c - longest-prefix match by flattened ranges (see lpm.h).
 *
 * Build: the prefixes of a family are sorted by first address, wider before narrower; a sweep
 * keeps the stack of prefixes that contain the current address (at most 129 deep, as nested
 * distinct prefixes differ in length) and writes a range boundary wherever the innermost
 * prefix changes: at a prefix's first address (its value), and just past its last address (the
 * value of the prefix around it, or none). Boundaries at the same address keep the last one
 * written (the innermost), and neighbours with the same value merge.
 */
#include "policy/lpm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef unsigned __int128 u128;

struct gh_lpm_item {
    u128 lo;
    uint32_t value;
    uint32_t tag;
    uint8_t family;
    uint8_t bits;
};

/* One family's ranges: range i covers [key[i], key[i+1]) with val[i]. */
struct fam {
    void *keys; /* uint32_t (IPv4) or u128 (IPv6) */
    uint32_t *val;
    size_t n;
};

struct gh_lpm {
    struct fam f4, f6;
};

int
gh_lpm_add(struct gh_lpm_builder *b, const struct gh_cidr *c, uint32_t value, uint32_t tag)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        struct gh_lpm_item *v = realloc(b->v, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        b->v = v;
        b->cap = cap;
    }
    u128 lo = 0;
    int nb = c->family == AF_INET ? 4 : 16;
    for (int i = 0; i < nb; i++)
        lo = lo << 8 | c->ip[i];
    b->v[b->n++] = (struct gh_lpm_item){lo, value, tag, c->family, c->bits};
    return 0;
}

static int
item_cmp(const void *a, const void *b)
{
    const struct gh_lpm_item *x = a, *y = b;
    if (x->family != y->family)
        return x->family < y->family ? -1 : 1;
    if (x->lo != y->lo)
        return x->lo < y->lo ? -1 : 1;
    if (x->bits != y->bits)
        return x->bits < y->bits ? -1 : 1;
    return x->tag < y->tag ? -1 : x->tag > y->tag;
}

/* The boundaries being written for one family (keys as u128 until narrowed). */
struct sweep {
    u128 *key;
    uint32_t *val;
    size_t n;
};

static void
emit(struct sweep *s, u128 k, uint32_t v)
{
    if (s->n > 0 && s->key[s->n - 1] == k)
        s->val[s->n - 1] = v;
    else {
        s->key[s->n] = k;
        s->val[s->n++] = v;
    }
}

static inline u128
last_of(const struct gh_lpm_item *it, unsigned width)
{
    unsigned host = width - it->bits;
    if (host == 0)
        return it->lo;
    u128 mask = host >= 128 ? ~(u128)0 : (((u128)1 << host) - 1);
    return it->lo | mask;
}

/* Close the prefixes on the stack that end before `until` (all when close_all). */
static void
pop_until(struct sweep *s, const struct gh_lpm_item **stk, int *top, u128 until, bool close_all,
          unsigned width)
{
    u128 space_end = width >= 128 ? ~(u128)0 : (((u128)1 << width) - 1);
    while (*top > 0) {
        u128 end = last_of(stk[*top - 1], width);
        if (!close_all && end >= until)
            break;
        (*top)--;
        if (end != space_end)
            emit(s, end + 1, *top > 0 ? stk[*top - 1]->value : GH_LPM_NONE);
    }
}

/* Sweep items[0..n) (one family, sorted) into f. Returns 0, -EEXIST with *dup set, or -ENOMEM. */
static int
sweep_family(const struct gh_lpm_item *items, size_t n, unsigned width, struct fam *f, size_t *dup)
{
    struct sweep s = {malloc((2 * n + 1) * sizeof(u128)), malloc((2 * n + 1) * sizeof(uint32_t)),
                      0};
    const struct gh_lpm_item *stk[130];
    int top = 0;
    int rc = 0;
    if (s.key == NULL || s.val == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && items[i].lo == items[i - 1].lo && items[i].bits == items[i - 1].bits) {
            *dup = i;
            rc = -EEXIST;
            goto out;
        }
        pop_until(&s, stk, &top, items[i].lo, false, width);
        emit(&s, items[i].lo, items[i].value);
        stk[top++] = &items[i];
    }
    pop_until(&s, stk, &top, 0, true, width);
    /* merge neighbours with one value (and drop leading ranges of none) */
    size_t m = 0;
    for (size_t i = 0; i < s.n; i++)
        if (m == 0 ? s.val[i] != GH_LPM_NONE : s.val[i] != s.val[m - 1]) {
            s.key[m] = s.key[i];
            s.val[m++] = s.val[i];
        }
    f->n = m;
    f->val = s.val;
    s.val = NULL;
    if (width == 32) {
        uint32_t *k4 = malloc((m + 1) * sizeof(*k4));
        if (k4 == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < m; i++)
            k4[i] = (uint32_t)s.key[i];
        f->keys = k4;
    } else {
        f->keys = s.key;
        s.key = NULL;
    }
out:
    free(s.key);
    free(s.val);
    return rc;
}

struct gh_lpm *
gh_lpm_build(struct gh_lpm_builder *b, uint32_t *dup_first_tag, uint32_t *dup_tag)
{
    *dup_first_tag = *dup_tag = GH_LPM_NONE;
    struct gh_lpm *m = calloc(1, sizeof(*m));
    if (m != NULL && b->n > 0)
        qsort(b->v, b->n, sizeof(*b->v), item_cmp);
    size_t n4 = 0;
    while (n4 < b->n && b->v[n4].family == AF_INET)
        n4++;
    size_t dup = 0;
    const struct gh_lpm_item *fam_items = b->v;
    int rc = m == NULL ? -ENOMEM : sweep_family(b->v, n4, 32, &m->f4, &dup);
    if (rc == 0) {
        fam_items = b->v + n4;
        rc = sweep_family(fam_items, b->n - n4, 128, &m->f6, &dup);
    }
    if (rc == -EEXIST) { /* the sorted order keeps file order (tags) among equal prefixes */
        *dup_first_tag = fam_items[dup - 1].tag;
        *dup_tag = fam_items[dup].tag;
    }
    free(b->v);
    memset(b, 0, sizeof(*b));
    if (rc != 0) {
        gh_lpm_free(m);
        return NULL;
    }
    return m;
}

void
gh_lpm_free(struct gh_lpm *m)
{
    if (m == NULL)
        return;
    free(m->f4.keys);
    free(m->f4.val);
    free(m->f6.keys);
    free(m->f6.val);
    free(m);
}

/* find4, find6: the value of the last range whose first key is at most k (none when keys[0]
 * is above k), by binary search over one family's keys of type T. */
#define DEFINE_FIND(name, T)                                                                       \
    static uint32_t name(const struct fam *f, T k)                                                 \
    {                                                                                              \
        const T *keys = f->keys;                                                                   \
        size_t lo = 0, hi = f->n;                                                                  \
        while (lo < hi) {                                                                          \
            size_t mid = lo + (hi - lo) / 2;                                                       \
            if (keys[mid] <= k)                                                                    \
                lo = mid + 1;                                                                      \
            else                                                                                   \
                hi = mid;                                                                          \
        }                                                                                          \
        return lo == 0 ? GH_LPM_NONE : f->val[lo - 1];                                             \
    }
DEFINE_FIND(find4, uint32_t)
DEFINE_FIND(find6, u128)

uint32_t
gh_lpm_find(const struct gh_lpm *m, uint8_t family, const uint8_t *ip)
{
    if (m == NULL)
        return GH_LPM_NONE;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET6 && memcmp(ip, mapped, 12) == 0) {
        family = AF_INET;
        ip += 12;
    }
    if (family == AF_INET) {
        uint32_t k = (uint32_t)ip[0] << 24 | (uint32_t)ip[1] << 16 | (uint32_t)ip[2] << 8 | ip[3];
        return m->f4.n > 0 ? find4(&m->f4, k) : GH_LPM_NONE;
    }
    u128 k = 0;
    for (int i = 0; i < 16; i++)
        k = k << 8 | ip[i];
    return m->f6.n > 0 ? find6(&m->f6, k) : GH_LPM_NONE;
}

size_t
gh_lpm_ranges(const struct gh_lpm *m)
{
    return m == NULL ? 0 : m->f4.n + m->f6.n;
}
