/*
 * cache.c - the cache directives (handlers for the table in parse.c):
 *
 *   cache NAME { memory SIZE; disk PATH SIZE; max_object SIZE; lock_timeout DURATION; }
 *                                         top level
 *   cache NAME|off;                       server, route (a forward_proxy is a server)
 *   cache_key TEMPLATE;                   main, server, route (GH_TC_KEY variables)
 *   cache_bypass TEMPLATE;                main, server, route
 *   cache_valid [STATUS...|any] DURATION; main, server, route (repeats; a block with its
 *                                         own replaces the inherited list, as nginx)
 *   cache_status on|off;                  main, server, route
 *   cache_purge_from CIDR...|off;         main, server, route
 *   cache_purge_api NAME;                 server, route
 *
 * A `cache` block opens its store (cache/store.h) when the config loads: stores are
 * process-wide and found again by name on a reload, so their objects survive it. Its disk
 * tier is only recorded here (and its directory checked); main opens it (gh_cache_disk_start),
 * so `-t` reads no cache files.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cache/store.h"
#include "conf/parse_int.h"
#include "policy/cidr.h"

#define DEFAULT_MEMORY (64ull << 20)
#define DEFAULT_MAX_OBJECT (8ull << 20)
#define DEFAULT_LOCK_TIMEOUT_MS 5000

struct pcache {
    struct gh_cache_conf cc;
    struct conf_pos pos;
    bool max_object_given;
    const char *disk_path; /* NULL: memory only */
    uint64_t disk_size;
    struct conf_pos disk_pos;
};

static const struct pcache *
find_cache(struct build *b, const char *name)
{
    for (uint32_t i = 0; i < b->caches.n; i++) {
        const struct pcache *c = b->caches.v[i];
        if (strcmp(c->cc.name, name) == 0)
            return c;
    }
    return NULL;
}

/* A directory for `disk`: one that exists and may be written, or one that can be made. */
static void
check_dir(struct build *b, const struct conf_tok *t, const char *path)
{
    if ((b->st->flags & GH_CONF_NO_INCLUDE) || access(path, W_OK | X_OK) == 0)
        return; /* untrusted text looks at no files */
    int err = errno;
    char parent[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);
    if (err == ENOENT && n < sizeof(parent)) {
        memcpy(parent, n ? path : ".", n ? n : 1);
        parent[n ? n : 1] = '\0';
        if (access(parent, W_OK | X_OK) == 0)
            return; /* made at start */
        err = errno;
    }
    conf_err(b->st, &t->pos, "cache disk directory '%s' cannot be used: %s", path, strerror(err));
}

/* `disk PATH SIZE;` */
static void
on_disk(struct build *b, struct pcache *c, const struct cnode *ch)
{
    uint64_t v;
    if (ch->n_args != 2 || ch->has_block) {
        conf_err(b->st, &ch->name.pos, "'disk' takes a directory and a size: disk PATH SIZE;");
        return;
    }
    if (c->disk_path != NULL) {
        conf_err(b->st, &ch->name.pos, "duplicate 'disk' in cache '%s'", c->cc.name);
        return;
    }
    if (!conf_check_path(b, ch, &ch->args[0]))
        return;
    const char *path = conf_path_arg(b, ch, &ch->args[0]);
    for (uint32_t i = 0; i < b->caches.n; i++) {
        const struct pcache *o = b->caches.v[i];
        if (o->disk_path != NULL && strcmp(o->disk_path, path) == 0) {
            conf_err(b->st, &ch->args[0].pos, "disk '%s' is already the disk of cache '%s' (%s)",
                     path, o->cc.name, conf_where(b, &o->disk_pos, ch->args[0].pos.file));
            return;
        }
    }
    check_dir(b, &ch->args[0], path);
    if (conf_size_arg(b, &ch->args[1], "disk", 64 * 1024, UINT64_MAX / 4, &v)) {
        c->disk_path = path;
        c->disk_size = v;
        c->disk_pos = ch->args[0].pos;
    }
}

/* One directive of a `cache` block. */
static void
cache_child(struct build *b, struct pcache *c, const struct cnode *ch)
{
    uint64_t v;
    if (conf_tok_is(&ch->name, "disk")) {
        on_disk(b, c, ch);
    } else if (ch->n_args != 1 || ch->has_block) {
        conf_err(b->st, &ch->name.pos, "'%s' in a cache block takes one value",
                 conf_show_tok(b, &ch->name));
    } else if (conf_tok_is(&ch->name, "memory")) {
        if (conf_size_arg(b, &ch->args[0], "memory", 64 * 1024, UINT64_MAX / 2, &v))
            c->cc.memory = v;
    } else if (conf_tok_is(&ch->name, "max_object")) {
        if (conf_size_arg(b, &ch->args[0], "max_object", 1, UINT64_MAX / 2, &v)) {
            c->cc.max_object = v;
            c->max_object_given = true;
        }
    } else if (conf_tok_is(&ch->name, "lock_timeout")) {
        if (conf_duration_arg(b, &ch->args[0], "lock_timeout", &v))
            c->cc.lock_timeout_ms = (uint32_t)v;
    } else {
        conf_err(b->st, &ch->name.pos,
                 "unknown directive '%s' in a cache block (expected memory, disk, max_object or "
                 "lock_timeout)",
                 conf_show_tok(b, &ch->name));
    }
}

void
conf_on_cache_block(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    const struct pcache *prev = find_cache(b, t->text);
    if (prev != NULL) {
        conf_err(b->st, &t->pos, "duplicate cache '%s' (first defined at %s)", t->text,
                 conf_where(b, &prev->pos, t->pos.file));
        return;
    }
    if (conf_tok_is(t, "off")) {
        conf_err(b->st, &t->pos, "'off' cannot name a cache ('cache off;' turns caching off)");
        return;
    }
    struct pcache *c = gh_arena_alloc(b->arena, sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->cc.name = t->text;
    c->cc.memory = DEFAULT_MEMORY;
    c->cc.max_object = DEFAULT_MAX_OBJECT;
    c->cc.lock_timeout_ms = DEFAULT_LOCK_TIMEOUT_MS;
    c->pos = t->pos;
    for (const struct cnode *ch = n->children; ch != NULL; ch = ch->next)
        cache_child(b, c, ch);
    if (c->max_object_given && c->cc.max_object > c->cc.memory)
        conf_err(b->st, &t->pos, "cache '%s': max_object is larger than memory", t->text);
    if (!c->max_object_given && c->cc.max_object > c->cc.memory / 4)
        c->cc.max_object = c->cc.memory / 4; /* a small cache: a quarter of it at most */
    c->cc.store = gh_cache_store_open(c->cc.name, c->cc.memory, c->cc.max_object);
    if (c->cc.store == NULL ||
        gh_cache_store_want_disk(c->cc.store, c->disk_path, c->disk_size) != 0)
        conf_err(b->st, &t->pos, "cache '%s': out of memory", t->text);
    conf_vec_push(b, &b->caches, c);
}

/* `cache_valid [STATUS...|any] DURATION;` */
static void
on_cache_valid(struct build *b, struct blk *k, const struct cnode *n)
{
    uint64_t ms;
    const struct conf_tok *d = &n->args[n->n_args - 1];
    if (!conf_duration_arg(b, d, "cache_valid", &ms))
        return;
    if (n->n_args == 1) { /* nginx: a duration alone is for 200, 301 and 302 */
        static const uint16_t dflt[] = {200, 301, 302};
        for (size_t i = 0; i < GH_ARRAY_LEN(dflt); i++) {
            struct gh_cache_valid *v = gh_arena_alloc(b->arena, sizeof(*v));
            *v = (struct gh_cache_valid){dflt[i], (uint32_t)(ms / 1000)};
            conf_vec_push(b, &k->cache_valid, v);
        }
        return;
    }
    for (uint32_t i = 0; i + 1 < n->n_args; i++) {
        const struct conf_tok *t = &n->args[i];
        uint64_t st = 0;
        if (!conf_tok_is(t, "any") && !conf_number_arg(b, t, "cache_valid", 200, 599, &st))
            continue;
        struct gh_cache_valid *v = gh_arena_alloc(b->arena, sizeof(*v));
        *v = (struct gh_cache_valid){(uint16_t)st, (uint32_t)(ms / 1000)};
        conf_vec_push(b, &k->cache_valid, v);
    }
}

/* `cache_purge_from CIDR...|off;` */
static void
on_purge_from(struct build *b, struct blk *k, const struct cnode *n)
{
    if (n->n_args == 1 && conf_tok_is(&n->args[0], "off")) {
        k->pc->cache_purge_from = NULL;
        return;
    }
    struct gh_cidr *pre = gh_arena_alloc(b->arena, n->n_args * sizeof(*pre));
    uint32_t np = 0;
    for (uint32_t i = 0; i < n->n_args; i++) {
        const struct conf_tok *t = &n->args[i];
        bool host_bits;
        const char *why;
        if (gh_cidr_parse(t->text, t->len, &pre[np], &host_bits, &why) != 0) {
            conf_err(b->st, &t->pos,
                     "invalid address '%s' in 'cache_purge_from': %s (expected e.g. 127.0.0.1, "
                     "10.0.0.0/8)",
                     conf_show_tok(b, t), why);
            continue;
        }
        np++;
    }
    k->pc->cache_purge_from = gh_cidr_set_build(b->arena, pre, np);
}

static void
on_cache_ref(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    if (conf_tok_is(t, "off")) {
        k->pc->cache = NULL;
        return;
    }
    const struct pcache *c = find_cache(b, t->text);
    if (c == NULL) {
        conf_err(b->st, &t->pos,
                 "unknown cache '%s' (define it at top level: cache %s { memory "
                 "64m; })",
                 conf_show_tok(b, t), conf_show_tok(b, t));
        return;
    }
    k->pc->cache = &c->cc;
    b->cfg->keep_request = true; /* the request's fields are read again at the response (Vary) */
}

void
conf_on_cache_setting(struct build *b, struct blk *k, const struct cnode *n)
{
    const char *name = n->name.text;
    const struct conf_tok *t = &n->args[0];
    if (strcmp(name, "cache") == 0) {
        on_cache_ref(b, k, n);
    } else if (strcmp(name, "cache_key") == 0 || strcmp(name, "cache_bypass") == 0) {
        const struct gh_tmpl *tm = conf_tmpl(b->st, t, GH_TC_KEY, name);
        if (tm == NULL)
            return;
        if (name[6] == 'k')
            k->pc->cache_key = tm;
        else
            k->pc->cache_bypass = tm;
    } else if (strcmp(name, "cache_valid") == 0) {
        on_cache_valid(b, k, n);
    } else if (strcmp(name, "cache_status") == 0) {
        conf_on_off(b, n, &k->pc->cache_status);
    } else if (strcmp(name, "cache_purge_api") == 0) {
        const struct pcache *c = find_cache(b, t->text);
        if (c == NULL)
            conf_err(b->st, &t->pos, "unknown cache '%s' in 'cache_purge_api'",
                     conf_show_tok(b, t));
        else
            k->pc->cache_admin = &c->cc;
    } else {
        on_purge_from(b, k, n);
    }
}

void
conf_cache_finish(struct build *b, struct blk *k)
{
    if (k->cache_valid.n == 0)
        return;
    struct gh_cache_valid *a = gh_arena_alloc(b->arena, k->cache_valid.n * sizeof(*a));
    for (uint32_t i = 0; i < k->cache_valid.n; i++)
        a[i] = *(const struct gh_cache_valid *)k->cache_valid.v[i];
    k->pc->cache_valid = a;
    k->pc->n_cache_valid = k->cache_valid.n;
}
