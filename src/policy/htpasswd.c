/*
 * htpasswd.c - the login file: users in a sorted array (binary search), hashes checked by
 * crypt_r with a per-thread work area.
 */
#include "policy/htpasswd.h"

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct user {
    char *name;
    char *hash;
};

struct gh_htpasswd {
    struct user *u;
    uint32_t n;
};

static int
by_name(const void *a, const void *b)
{
    return strcmp(((const struct user *)a)->name, ((const struct user *)b)->name);
}

static bool
strong(const char *h)
{
    static const char *const ok[] = {"$2y$", "$2b$", "$2a$", "$y$", "$gy$", "$7$", "$5$", "$6$"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strncmp(h, ok[i], strlen(ok[i])) == 0)
            return true;
    return false;
}

void
gh_htpasswd_free(void *p)
{
    struct gh_htpasswd *h = p;
    if (h == NULL)
        return;
    for (uint32_t i = 0; i < h->n; i++) {
        free(h->u[i].name);
        free(h->u[i].hash);
    }
    free(h->u);
    free(h);
}

/* One "user:hash" line into h; false with err set. */
static bool
add_line(struct gh_htpasswd *h, char *line, uint32_t *cap, char *err, size_t errlen)
{
    char *colon = strchr(line, ':');
    if (colon == NULL || colon == line) {
        snprintf(err, errlen, "expected user:hash");
        return false;
    }
    *colon = '\0';
    char *hash = colon + 1;
    char *extra = strchr(hash, ':'); /* htpasswd allows trailing fields */
    if (extra != NULL)
        *extra = '\0';
    if (!strong(hash)) {
        snprintf(err, errlen,
                 "user '%.64s': a plaintext or weak password hash (use bcrypt, $2y$, with "
                 "'htpasswd -B', or sha-crypt/yescrypt)",
                 line);
        return false;
    }
    if (h->n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        struct user *u = realloc(h->u, *cap * sizeof(*u));
        if (u == NULL) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
        h->u = u;
    }
    h->u[h->n].name = strdup(line);
    h->u[h->n].hash = strdup(hash);
    h->n++;
    if (h->u[h->n - 1].name == NULL || h->u[h->n - 1].hash == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    return true;
}

struct gh_htpasswd *
gh_htpasswd_load(const char *path, char *err, size_t errlen, uint32_t *bad_line)
{
    *bad_line = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct gh_htpasswd *h = calloc(1, sizeof(*h));
    uint32_t cap = 0, lineno = 0;
    char line[1024];
    bool ok = h != NULL;
    while (ok && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        ok = add_line(h, line, &cap, err, errlen);
        if (!ok)
            *bad_line = lineno;
    }
    fclose(f);
    if (!ok || h == NULL) {
        if (h == NULL)
            snprintf(err, errlen, "out of memory");
        gh_htpasswd_free(h);
        return NULL;
    }
    if (h->n > 0)
        qsort(h->u, h->n, sizeof(*h->u), by_name);
    for (uint32_t i = 1; i < h->n; i++)
        if (strcmp(h->u[i - 1].name, h->u[i].name) == 0) {
            snprintf(err, errlen, "user '%.64s' is in the file twice", h->u[i].name);
            gh_htpasswd_free(h);
            return NULL;
        }
    return h;
}

bool
gh_htpasswd_check(const struct gh_htpasswd *h, const char *user, size_t ulen, const char *password,
                  size_t plen, const char **canon)
{
    static __thread struct crypt_data cd; /* crypt_r's work area (about 32 KiB) */
    char name[256], pw[256];
    if (ulen >= sizeof(name) || plen >= sizeof(pw) || h->n == 0)
        return false;
    memcpy(name, user, ulen);
    name[ulen] = '\0';
    memcpy(pw, password, plen);
    pw[plen] = '\0';
    struct user key = {name, NULL};
    const struct user *u = bsearch(&key, h->u, h->n, sizeof(*h->u), by_name);
    if (u == NULL)
        return false;
    const char *out = crypt_r(pw, u->hash, &cd);
    explicit_bzero(pw, sizeof(pw));
    if (out == NULL || out[0] == '*' || strcmp(out, u->hash) != 0)
        return false;
    *canon = u->name;
    return true;
}

const char *
gh_htpasswd_user(const struct gh_htpasswd *h, const char *user, size_t ulen)
{
    char name[256];
    if (ulen >= sizeof(name) || h->n == 0)
        return NULL;
    memcpy(name, user, ulen);
    name[ulen] = '\0';
    struct user key = {name, NULL};
    const struct user *u = bsearch(&key, h->u, h->n, sizeof(*h->u), by_name);
    return u != NULL ? u->name : NULL;
}

uint32_t
gh_htpasswd_count(const struct gh_htpasswd *h)
{
    return h->n;
}
