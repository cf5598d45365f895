/*
 * domains.c - the domain suffix set: names stored once in growing text blocks, an
 * open-addressing table of (hash, name) that doubles at 50% load.
 */
#include "policy/domains.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

#define MAX_NAME 253

struct slot {
    uint64_t hash; /* 0: empty */
    const char *name;
    uint32_t len;
    uint32_t tag;
};

struct block {
    struct block *next;
    size_t used, cap;
    char text[];
};

struct gh_domains {
    struct slot *slots;
    uint32_t cap; /* power of two */
    uint32_t n;
    struct block *blocks;
};

static uint64_t
hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    h ^= h >> 29;
    return h | 1; /* never 0 */
}

struct gh_domains *
gh_domains_new(void)
{
    struct gh_domains *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->cap = 64;
    s->slots = calloc(s->cap, sizeof(*s->slots));
    if (s->slots == NULL) {
        free(s);
        return NULL;
    }
    return s;
}

void
gh_domains_free(void *p)
{
    struct gh_domains *s = p;
    if (s == NULL)
        return;
    while (s->blocks != NULL) {
        struct block *b = s->blocks;
        s->blocks = b->next;
        free(b);
    }
    free(s->slots);
    free(s);
}

static const struct slot *
find(const struct gh_domains *s, const char *name, size_t len, uint64_t h)
{
    for (uint32_t i = (uint32_t)h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        const struct slot *e = &s->slots[i];
        if (e->hash == 0)
            return NULL;
        if (e->hash == h && e->len == len && memcmp(e->name, name, len) == 0)
            return e;
    }
}

static int
grow(struct gh_domains *s)
{
    uint32_t cap = s->cap * 2;
    struct slot *t = calloc(cap, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < s->cap; i++) {
        if (s->slots[i].hash == 0)
            continue;
        uint32_t j = (uint32_t)s->slots[i].hash & (cap - 1);
        while (t[j].hash != 0)
            j = (j + 1) & (cap - 1);
        t[j] = s->slots[i];
    }
    free(s->slots);
    s->slots = t;
    s->cap = cap;
    return 0;
}

static char *
store(struct gh_domains *s, const char *name, size_t len)
{
    struct block *b = s->blocks;
    if (b == NULL || b->cap - b->used < len + 1) {
        size_t cap = 1 << 20;
        b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = s->blocks;
        s->blocks = b;
    }
    char *p = b->text + b->used;
    memcpy(p, name, len);
    p[len] = '\0';
    b->used += len + 1;
    return p;
}

/* name lower-cased into out without "*." / "." in front or a dot behind; its length, or 0 if
 * it is not a domain name (labels of letters, digits, '-' and '_'). */
static size_t
normalise(const char *name, size_t len, char *out)
{
    if (len >= 2 && name[0] == '*' && name[1] == '.') {
        name += 2;
        len -= 2;
    } else if (len >= 1 && name[0] == '.') {
        name++;
        len--;
    }
    return gh_host_name(name, len, out, false);
}

int
gh_domains_add(struct gh_domains *s, const char *name, size_t len, uint32_t tag)
{
    char n[MAX_NAME + 1];
    size_t nl = normalise(name, len, n);
    if (nl == 0)
        return -EINVAL;
    uint64_t h = hash(n, nl);
    if (find(s, n, nl, h) != NULL)
        return 0; /* the first rule that names it keeps it */
    if ((s->n + 1) * 2 > s->cap && grow(s) != 0)
        return -ENOMEM;
    char *p = store(s, n, nl);
    if (p == NULL)
        return -ENOMEM;
    uint32_t i = (uint32_t)h & (s->cap - 1);
    while (s->slots[i].hash != 0)
        i = (i + 1) & (s->cap - 1);
    s->slots[i] = (struct slot){h, p, (uint32_t)nl, tag};
    s->n++;
    return 0;
}

long
gh_domains_add_file(struct gh_domains *s, const char *path, uint32_t tag, uint32_t *bad_line)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    char line[1024];
    long added = 0;
    uint32_t lineno = 0;
    *bad_line = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        char *p = line, *hash_at = strchr(line, '#');
        if (hash_at != NULL)
            *hash_at = '\0';
        char *words[3] = {NULL, NULL, NULL};
        int nw = 0;
        for (char *tok = strtok(p, " \t\r\n"); tok != NULL && nw < 3; tok = strtok(NULL, " \t\r\n"))
            words[nw++] = tok;
        if (nw == 0)
            continue;
        /* a name alone, or "0.0.0.0 ads.test" as in a hosts file */
        const char *name =
            nw == 1                                                                       ? words[0]
            : nw == 2 && strspn(words[0], "0123456789abcdefABCDEF.:") == strlen(words[0]) ? words[1]
                                                                                          : NULL;
        int rc = name != NULL ? gh_domains_add(s, name, strlen(name), tag) : -EINVAL;
        if (rc == -ENOMEM) {
            fclose(f);
            return rc;
        }
        if (rc == 0)
            added++;
        else if (*bad_line == 0)
            *bad_line = lineno;
    }
    fclose(f);
    return added;
}

bool
gh_domains_match(const struct gh_domains *s, const char *name, size_t len, uint32_t *tag,
                 const char **matched)
{
    char n[MAX_NAME + 1];
    size_t nl = normalise(name, len, n);
    if (nl == 0 || s->n == 0)
        return false;
    for (size_t off = 0; off < nl;) {
        const struct slot *e = find(s, n + off, nl - off, hash(n + off, nl - off));
        if (e != NULL) {
            *tag = e->tag;
            *matched = e->name;
            return true;
        }
        const char *dot = memchr(n + off, '.', nl - off);
        if (dot == NULL)
            break;
        off = (size_t)(dot - n) + 1;
    }
    return false;
}

uint32_t
gh_domains_count(const struct gh_domains *s)
{
    return s->n;
}
