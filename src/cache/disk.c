/*
 * disk.c - the cache's disk tier (disk.h): an index of the files under PATH, a writer thread,
 * the scan at open and the read back on a hit.
 */
#include "cache/disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cache/disk_fmt.h"
#include "core/common.h"
#include "core/log.h"

#define BLOCK 4096u
#define STEP (64 * 1024)        /* pread and write in steps of this many bytes */
#define QUEUE_MAX 1024u         /* objects waiting to be written at most */
#define QUEUE_BYTES (64u << 20) /* and their bytes */

/* A file in the index. */
struct dent {
    struct dent *hnext;       /* chain of its key's hash */
    struct dent *prev, *next; /* the queue (next: toward the newest) */
    uint64_t khash, id;       /* the key's hash; the file's name */
    uint64_t file_len, charge;
    bool visited;
    uint32_t key_len, vary_len, vkey_len;
    char data[]; /* key, vary, vkey */
};

/* A write waiting for the writer. */
struct wjob {
    struct wjob *next;
    struct gh_cobj *o;
    bool cancelled; /* purged meanwhile */
};

struct gh_cdisk {
    char *name, *path;
    int dirfd;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool running, stopping;
    struct dent **buckets;
    uint32_t n_buckets, count;
    struct dent *oldest, *newest;
    uint64_t bytes, limit;
    struct wjob *qhead, *qtail, *current; /* current: being written (outside the lock) */
    uint32_t queued;
    uint64_t queued_bytes, seq;
    uint64_t hits, written, evicted, dropped, bad; /* hits: atomic */
};

static uint64_t
file_id(const char *key, size_t klen, const char *vkey, size_t vklen)
{
    uint64_t h = gh_cache_hash(key, klen);
    for (size_t i = 0; i <= vklen; i++) { /* a NUL between them, then the variant */
        h ^= i == 0 ? 0 : (unsigned char)vkey[i - 1];
        h *= 1099511628211ULL;
    }
    return h;
}

static void
id_name(uint64_t id, char out[17])
{
    snprintf(out, 17, "%016" PRIx64, id);
}

/* ------------------------------------------------------------------ */
/* the index (under d->lock)                                           */

static const char *
dent_key(const struct dent *e)
{
    return e->data;
}

static void
index_grow(struct gh_cdisk *d)
{
    uint32_t nb = d->n_buckets ? d->n_buckets * 2 : 256;
    struct dent **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return;
    for (uint32_t i = 0; i < d->n_buckets; i++) {
        for (struct dent *e = d->buckets[i], *n; e != NULL; e = n) {
            n = e->hnext;
            e->hnext = b[e->khash & (nb - 1)];
            b[e->khash & (nb - 1)] = e;
        }
    }
    free(d->buckets);
    d->buckets = b;
    d->n_buckets = nb;
}

/* e at the queue's newest end. */
static void
queue_push(struct gh_cdisk *d, struct dent *e)
{
    e->prev = d->newest;
    e->next = NULL;
    if (d->newest != NULL)
        d->newest->next = e;
    else
        d->oldest = e;
    d->newest = e;
}

/* Into the index at the newest end. Returns false when out of memory (e is not taken). */
static bool
index_add(struct gh_cdisk *d, struct dent *e)
{
    if (d->count >= d->n_buckets)
        index_grow(d);
    if (d->n_buckets == 0)
        return false;
    struct dent **b = &d->buckets[e->khash & (d->n_buckets - 1)];
    e->hnext = *b;
    *b = e;
    queue_push(d, e);
    d->count++;
    d->bytes += e->charge;
    return true;
}

static void
queue_unlink(struct gh_cdisk *d, struct dent *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        d->oldest = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        d->newest = e->prev;
}

/* Out of the index, e freed (with rm, its file removed). */
static void
index_del(struct gh_cdisk *d, struct dent *e, bool rm)
{
    struct dent **pp = &d->buckets[e->khash & (d->n_buckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    queue_unlink(d, e);
    d->count--;
    d->bytes -= e->charge;
    char nm[17];
    id_name(e->id, nm);
    if (rm && unlinkat(d->dirfd, nm, 0) == -1 && errno != ENOENT)
        gh_log_warn("cache %s: disk: cannot remove %s/%s: %s", d->name, d->path, nm,
                    strerror(errno));
    free(e);
}

static struct dent *
dent_new(const struct gh_cdisk_meta *m, uint64_t id)
{
    struct dent *e = malloc(sizeof(*e) + m->key_len + m->vary_len + m->vkey_len);
    if (e == NULL)
        return NULL;
    e->khash = gh_cache_hash(m->key, m->key_len);
    e->id = id;
    e->file_len = gh_cdisk_file_len(m);
    e->charge = (e->file_len + BLOCK - 1) / BLOCK * BLOCK;
    e->visited = false;
    e->key_len = m->key_len;
    e->vary_len = m->vary_len;
    e->vkey_len = m->vkey_len;
    memcpy(e->data, m->key, m->key_len);
    memcpy(e->data + m->key_len, m->vary, m->vary_len);
    memcpy(e->data + m->key_len + m->vary_len, m->vkey, m->vkey_len);
    return e;
}

/* Evict down to the budget: from the oldest, an entry hit since it was queued goes to the
 * newest end once (its bit cleared) instead of out. */
static void
evict(struct gh_cdisk *d)
{
    uint32_t moved = 0;
    while (d->bytes > d->limit && d->oldest != NULL) {
        struct dent *e = d->oldest;
        if (e->visited && moved++ < d->count) {
            e->visited = false;
            queue_unlink(d, e);
            queue_push(d, e);
            continue;
        }
        index_del(d, e, true);
        d->evicted++;
    }
}

/* The entries of e's key that a new file e replaces (its own name, or another Vary list). */
static void
index_replace(struct gh_cdisk *d, const struct dent *e)
{
    if (d->n_buckets == 0)
        return;
    for (struct dent *x = d->buckets[e->khash & (d->n_buckets - 1)], *n; x != NULL; x = n) {
        n = x->hnext;
        bool same_key = x->khash == e->khash && x->key_len == e->key_len &&
                        memcmp(x->data, e->data, e->key_len) == 0;
        bool other_vary = x->vary_len != e->vary_len ||
                          memcmp(x->data + x->key_len, e->data + e->key_len, e->vary_len) != 0;
        if (x->id == e->id) /* its file is the one just renamed over it */
            index_del(d, x, false);
        else if (same_key && other_vary)
            index_del(d, x, true);
    }
}

/* ------------------------------------------------------------------ */
/* writing (the writer thread)                                         */

static int
write_all(int fd, const void *p, size_t n, struct gh_cdisk_sum *sum)
{
    if (sum != NULL)
        gh_cdisk_sum_add(sum, p, n);
    for (const char *b = p; n > 0;) {
        ssize_t k = write(fd, b, n);
        if (k == -1 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* The meta of o (DONE), encoded into a new buffer (*buf, to free). Returns its length or -1. */
static int
encode_obj(const struct gh_cobj *o, struct gh_cdisk_meta *m, char **buf)
{
    *m = (struct gh_cdisk_meta){
        .status = o->status,
        .key_len = o->key_len,
        .vary_len = o->vary_len,
        .vkey_len = o->vary_key_len,
        .body_len = gh_cobj_avail(o),
        .times = o->times,
        .key = o->key,
        .vary = o->vary,
        .vkey = o->vary_key,
    };
    m->fields_len =
        (uint32_t)GH_MIN(gh_cdisk_fields_len(o->fields, o->n_fields), (size_t)UINT32_MAX);
    size_t cap = gh_cdisk_meta_len(m);
    if ((*buf = malloc(cap)) == NULL)
        return -1;
    int n = gh_cdisk_encode_meta(m, o->fields, o->n_fields, *buf, cap);
    if (n < 0) {
        free(*buf);
        *buf = NULL;
    }
    return n;
}

/* Write o to the file tmp (created). 0, or -1 (tmp removed). *mo: its meta, for the index. */
static int
write_obj(struct gh_cdisk *d, const struct gh_cobj *o, const char *tmp, struct dent **out)
{
    struct gh_cdisk_meta m;
    char *meta;
    int mlen = encode_obj(o, &m, &meta);
    if (mlen < 0)
        return -1;
    *out = dent_new(&m, file_id(o->key, o->key_len, o->vary_key, o->vary_key_len));
    int fd = openat(d->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    struct gh_cdisk_sum sum;
    gh_cdisk_sum_init(&sum);
    int rc = *out != NULL && fd != -1 ? write_all(fd, meta, (size_t)mlen, &sum) : -1;
    free(meta);
    struct gh_cread cur = {NULL, 0};
    for (uint64_t off = 0; rc == 0 && off < m.body_len;) {
        struct iovec sp[8];
        int n = gh_cobj_read(o, &cur, off, STEP, sp, 8);
        for (int i = 0; i < n && rc == 0; i++) {
            rc = write_all(fd, sp[i].iov_base, sp[i].iov_len, &sum);
            off += sp[i].iov_len;
        }
        if (n == 0)
            rc = -1;
    }
    char tail[8];
    uint64_t h = gh_cdisk_sum_final(&sum);
    for (int i = 0; i < 8; i++)
        tail[i] = (char)(h >> (8 * i));
    if (rc == 0)
        rc = write_all(fd, tail, 8, NULL);
    if (fd != -1 && close(fd) == -1)
        rc = -1;
    if (rc != 0) {
        if (fd != -1)
            unlinkat(d->dirfd, tmp, 0);
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* Write the job's object and put its file in place (unless purged meanwhile). */
static void
write_job(struct gh_cdisk *d, struct wjob *j)
{
    char tmp[64], nm[17];
    struct dent *e = NULL;
    pthread_mutex_lock(&d->lock);
    uint64_t seq = d->seq++;
    bool fits = j->o->charge <= d->limit;
    pthread_mutex_unlock(&d->lock);
    snprintf(tmp, sizeof(tmp), "tmp.%" PRIu64, seq);
    if (!fits || write_obj(d, j->o, tmp, &e) != 0) {
        if (fits)
            gh_log_warn("cache %s: disk: cannot write %s/%s: %s", d->name, d->path, tmp,
                        strerror(errno));
        pthread_mutex_lock(&d->lock);
        d->dropped++;
        pthread_mutex_unlock(&d->lock);
        return;
    }
    id_name(e->id, nm);
    pthread_mutex_lock(&d->lock);
    if (j->cancelled || renameat(d->dirfd, tmp, d->dirfd, nm) == -1) {
        unlinkat(d->dirfd, tmp, 0);
        free(e);
    } else {
        index_replace(d, e);
        if (index_add(d, e)) {
            d->written++;
        } else {
            unlinkat(d->dirfd, nm, 0);
            free(e);
        }
        evict(d);
    }
    pthread_mutex_unlock(&d->lock);
}

static void *
writer_main(void *arg)
{
    struct gh_cdisk *d = arg;
    pthread_mutex_lock(&d->lock);
    for (;;) {
        while (d->qhead == NULL && !d->stopping) {
            evict(d); /* after a resize */
            pthread_cond_wait(&d->cond, &d->lock);
        }
        struct wjob *j = d->qhead;
        if (j == NULL)
            break; /* stopping, and nothing left */
        d->qhead = j->next;
        if (d->qhead == NULL)
            d->qtail = NULL;
        d->queued--;
        d->queued_bytes -= j->o->charge;
        d->current = j;
        bool cancelled = j->cancelled;
        pthread_mutex_unlock(&d->lock);
        if (!cancelled)
            write_job(d, j);
        gh_cobj_put(j->o);
        pthread_mutex_lock(&d->lock);
        d->current = NULL;
        free(j);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

void
gh_cdisk_put(struct gh_cdisk *d, struct gh_cobj *o)
{
    struct wjob *j = malloc(sizeof(*j));
    pthread_mutex_lock(&d->lock);
    if (j == NULL || d->stopping || d->queued >= QUEUE_MAX ||
        d->queued_bytes + o->charge > QUEUE_BYTES) {
        d->dropped++; /* the disk does not keep up: this one stays in memory only */
        pthread_mutex_unlock(&d->lock);
        free(j);
        return;
    }
    gh_cobj_get(o);
    *j = (struct wjob){NULL, o, false};
    if (d->qtail != NULL)
        d->qtail->next = j;
    else
        d->qhead = j;
    d->qtail = j;
    d->queued++;
    d->queued_bytes += o->charge;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

/* ------------------------------------------------------------------ */
/* removal                                                             */

static bool
key_matches(const char *k, size_t klen, const char *key, size_t len, bool prefix)
{
    return (prefix ? klen >= len : klen == len) && memcmp(k, key, len) == 0;
}

uint32_t
gh_cdisk_remove(struct gh_cdisk *d, const char *key, size_t len, bool prefix)
{
    uint32_t n_removed = 0;
    pthread_mutex_lock(&d->lock);
    for (struct wjob *j = d->qhead; j != NULL; j = j->next)
        if (key_matches(j->o->key, j->o->key_len, key, len, prefix))
            j->cancelled = true;
    struct wjob *c = d->current;
    if (c != NULL && key_matches(c->o->key, c->o->key_len, key, len, prefix))
        c->cancelled = true;
    if (!prefix && d->n_buckets > 0) {
        uint64_t h = gh_cache_hash(key, len);
        for (struct dent *e = d->buckets[h & (d->n_buckets - 1)], *n; e != NULL; e = n) {
            n = e->hnext;
            if (e->khash == h && key_matches(dent_key(e), e->key_len, key, len, false)) {
                index_del(d, e, true);
                n_removed++;
            }
        }
    } else if (prefix) {
        for (struct dent *e = d->oldest, *n; e != NULL; e = n) {
            n = e->next;
            if (key_matches(dent_key(e), e->key_len, key, len, true)) {
                index_del(d, e, true);
                n_removed++;
            }
        }
    }
    pthread_mutex_unlock(&d->lock);
    return n_removed;
}

/* ------------------------------------------------------------------ */
/* reading back                                                        */

static int
pread_all(int fd, void *p, size_t n, uint64_t off)
{
    for (char *b = p; n > 0;) {
        ssize_t k = pread(fd, b, n, (off_t)off);
        if (k == -1 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        b += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

/* The object in an open file (of length flen) whose meta was read into buf[0..mlen) and
 * parsed into m: fields and body into a new object of s, the checksum checked. */
static struct gh_cobj *
read_obj(struct gh_cache_store *s, int fd, const char *buf, const struct gh_cdisk_meta *m)
{
    struct gh_h1_header *hs = malloc(((size_t)m->n_fields + 1) * sizeof(*hs));
    struct gh_cobj *o = gh_cache_obj_new(s, m->key, m->key_len);
    char *step = malloc(STEP);
    int rc = hs != NULL && o != NULL && step != NULL ? 0 : -1;
    size_t mlen = gh_cdisk_meta_len(m);
    struct gh_cdisk_sum sum;
    gh_cdisk_sum_init(&sum);
    gh_cdisk_sum_add(&sum, buf, mlen);
    if (rc == 0) {
        gh_cdisk_fields(m, hs);
        rc = gh_cache_obj_head(o, m->status, hs, m->n_fields, m->vary, m->vary_len, m->vkey,
                               m->vkey_len, &m->times);
        o->content_length = (int64_t)m->body_len; /* chunks sized to it */
    }
    for (uint64_t off = 0; rc == 0 && off < m->body_len;) {
        size_t k = (size_t)GH_MIN((uint64_t)STEP, m->body_len - off);
        rc = pread_all(fd, step, k, mlen + off);
        gh_cdisk_sum_add(&sum, step, k);
        if (rc == 0)
            rc = gh_cache_fill_body(o, &(struct iovec){step, k}, 1);
        off += k;
    }
    unsigned char tail[8];
    if (rc == 0 && pread_all(fd, tail, 8, mlen + m->body_len) == 0) {
        uint64_t h = 0;
        for (int i = 7; i >= 0; i--)
            h = h << 8 | tail[i];
        rc = h == gh_cdisk_sum_final(&sum) ? 0 : -1;
    } else {
        rc = -1;
    }
    free(hs);
    free(step);
    if (rc != 0) {
        gh_cobj_put(o);
        return NULL;
    }
    o->content_length = (int64_t)m->body_len;
    __atomic_store_n(&o->state, GH_COBJ_DONE, __ATOMIC_RELEASE);
    return o;
}

/* Open the file id and read its meta into a new buffer (*buf) parsed into m. Returns the open
 * descriptor, -1 when it is gone, or -2 when it is bad. */
static int
open_file(struct gh_cdisk *d, uint64_t id, char **buf, struct gh_cdisk_meta *m)
{
    char nm[17], pre[GH_CDISK_PRE];
    id_name(id, nm);
    *buf = NULL;
    int fd = openat(d->dirfd, nm, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -1;
    struct stat st;
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || pread_all(fd, pre, sizeof(pre), 0) != 0 ||
        gh_cdisk_parse_pre(pre, sizeof(pre), m) != 0 ||
        gh_cdisk_file_len(m) != (uint64_t)st.st_size)
        goto bad;
    size_t mlen = gh_cdisk_meta_len(m);
    if ((*buf = malloc(mlen)) == NULL || pread_all(fd, *buf, mlen, 0) != 0 ||
        gh_cdisk_parse_meta(*buf, mlen, m) != 0 ||
        file_id(m->key, m->key_len, m->vkey, m->vkey_len) != id)
        goto bad;
    return fd;
bad:
    close(fd);
    free(*buf);
    *buf = NULL;
    return -2;
}

/* The file of the variant of key that the request matches (0: none). */
static uint64_t
find_variant(struct gh_cdisk *d, const char *key, size_t len, const struct gh_h1_header *rf,
             uint32_t nrf)
{
    uint64_t h = gh_cache_hash(key, len), id = 0;
    char vk[2048];
    pthread_mutex_lock(&d->lock);
    for (struct dent *e = d->n_buckets ? d->buckets[h & (d->n_buckets - 1)] : NULL;
         e != NULL && id == 0; e = e->hnext) {
        if (e->khash != h || !key_matches(dent_key(e), e->key_len, key, len, false))
            continue;
        const char *vary = e->data + e->key_len, *vkey = vary + e->vary_len;
        int n =
            e->vary_len == 0 ? 0 : gh_cache_vary_key(vary, e->vary_len, rf, nrf, vk, sizeof(vk));
        if (n >= 0 && (uint32_t)n == e->vkey_len && memcmp(vk, vkey, (size_t)n) == 0) {
            id = e->id;
            e->visited = true;
        }
    }
    pthread_mutex_unlock(&d->lock);
    return id;
}

/* The file id turned out bad: out of the index, removed. */
static void
drop_bad(struct gh_cdisk *d, uint64_t id)
{
    char nm[17];
    id_name(id, nm);
    gh_log_warn("cache %s: disk: %s/%s is damaged or truncated: removed", d->name, d->path, nm);
    pthread_mutex_lock(&d->lock);
    d->bad++;
    for (struct dent *e = d->oldest; e != NULL; e = e->next) {
        if (e->id == id) {
            index_del(d, e, true);
            break;
        }
    }
    pthread_mutex_unlock(&d->lock);
}

struct gh_cobj *
gh_cdisk_get(struct gh_cdisk *d, struct gh_cache_store *s, const char *key, size_t len,
             const struct gh_h1_header *rf, uint32_t nrf)
{
    uint64_t id = find_variant(d, key, len, rf, nrf);
    if (id == 0)
        return NULL;
    char *buf;
    struct gh_cdisk_meta m;
    int fd = open_file(d, id, &buf, &m);
    if (fd == -1)
        return NULL; /* replaced or evicted meanwhile */
    struct gh_cobj *o = NULL;
    bool bad = fd < 0 || m.key_len != len || memcmp(m.key, key, len) != 0;
    if (!bad && m.body_len > gh_cache_store_max_object(s)) {
        close(fd);
        free(buf);
        return NULL; /* max_object was lowered since: not for memory now */
    }
    if (!bad)
        bad = (o = read_obj(s, fd, buf, &m)) == NULL;
    if (fd >= 0)
        close(fd);
    free(buf);
    if (bad)
        drop_bad(d, id);
    else
        __atomic_add_fetch(&d->hits, 1, __ATOMIC_RELAXED);
    return o;
}

/* ------------------------------------------------------------------ */
/* opening: the scan                                                   */

static bool
is_id_name(const char *nm, uint64_t *id)
{
    if (strlen(nm) != 16 || strspn(nm, "0123456789abcdef") != 16)
        return false;
    *id = strtoull(nm, NULL, 16);
    return *id != 0;
}

/* One directory entry at open: indexed, removed (a leftover or bad file) or left alone. */
static void
scan_one(struct gh_cdisk *d, const char *nm)
{
    uint64_t id;
    if (strncmp(nm, "tmp.", 4) == 0) { /* a write cut short by a stop */
        unlinkat(d->dirfd, nm, 0);
        return;
    }
    if (!is_id_name(nm, &id)) {
        if (strcmp(nm, ".") != 0 && strcmp(nm, "..") != 0)
            gh_log_warn("cache %s: disk: %s/%s is not a cache file: left alone", d->name, d->path,
                        nm);
        return;
    }
    char *buf;
    struct gh_cdisk_meta m;
    int fd = open_file(d, id, &buf, &m);
    if (fd == -1)
        return;
    struct dent *e = fd >= 0 ? dent_new(&m, id) : NULL;
    if (fd >= 0)
        close(fd);
    free(buf);
    if (fd == -2) {
        gh_log_warn("cache %s: disk: %s/%s is damaged or truncated: removed", d->name, d->path, nm);
        d->bad++;
        unlinkat(d->dirfd, nm, 0);
    } else if (e != NULL && !index_add(d, e)) {
        free(e);
    }
}

static void
scan(struct gh_cdisk *d)
{
    int fd = dup(d->dirfd);
    DIR *dir = fd == -1 ? NULL : fdopendir(fd);
    if (dir == NULL) {
        if (fd != -1)
            close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(dir)) != NULL)
        scan_one(d, de->d_name);
    closedir(dir);
    evict(d);
    gh_log_info("cache %s: disk %s: %" PRIu32 " object(s), %" PRIu64 " of %" PRIu64 " bytes",
                d->name, d->path, d->count, d->bytes, d->limit);
}

struct gh_cdisk *
gh_cdisk_open(const char *name, const char *path, uint64_t size)
{
    if (mkdir(path, 0700) == -1 && errno != EEXIST) {
        gh_log_error("cache %s: disk: cannot create %s: %s", name, path, strerror(errno));
        return NULL;
    }
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd == -1 || faccessat(dfd, ".", W_OK | X_OK, 0) == -1) {
        gh_log_error("cache %s: disk: cannot use %s: %s", name, path, strerror(errno));
        if (dfd != -1)
            close(dfd);
        return NULL;
    }
    struct gh_cdisk *d = calloc(1, sizeof(*d));
    if (d == NULL || (d->name = strdup(name)) == NULL || (d->path = strdup(path)) == NULL) {
        if (d != NULL)
            free(d->name);
        free(d);
        close(dfd);
        gh_log_error("cache %s: disk: out of memory", name);
        return NULL;
    }
    d->dirfd = dfd;
    d->limit = size;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cond, NULL);
    scan(d);
    if (pthread_create(&d->thread, NULL, writer_main, d) != 0) {
        gh_log_error("cache %s: disk: cannot start its writer thread", name);
        gh_cdisk_close(d, true);
        return NULL;
    }
    d->running = true;
    return d;
}

const char *
gh_cdisk_path(const struct gh_cdisk *d)
{
    return d->path;
}

void
gh_cdisk_resize(struct gh_cdisk *d, uint64_t size)
{
    pthread_mutex_lock(&d->lock);
    d->limit = size;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

void
gh_cdisk_close(struct gh_cdisk *d, bool free_it)
{
    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
    if (d->running)
        pthread_join(d->thread, NULL);
    d->running = false;
    if (!free_it)
        return;
    for (struct dent *e = d->oldest, *n; e != NULL; e = n) {
        n = e->next;
        free(e);
    }
    free(d->buckets);
    close(d->dirfd);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->cond);
    free(d->name);
    free(d->path);
    free(d);
}

void
gh_cdisk_stats(struct gh_cdisk *d, struct gh_cdisk_stats *st)
{
    pthread_mutex_lock(&d->lock);
    *st = (struct gh_cdisk_stats){
        .bytes = d->bytes,
        .limit = d->limit,
        .objects = d->count,
        .hits = __atomic_load_n(&d->hits, __ATOMIC_RELAXED),
        .written = d->written,
        .evicted = d->evicted,
        .dropped = d->dropped,
        .bad = d->bad,
    };
    pthread_mutex_unlock(&d->lock);
}
