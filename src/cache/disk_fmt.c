/*
 * disk_fmt.c - the on-disk format of a stored response (disk_fmt.h).
 */
#include "cache/disk_fmt.h"

#include <errno.h>
#include <string.h>

#define MIX 0x9E3779B97F4A7C15ULL

static void
put32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (char)(v >> (8 * i));
}

static void
put64(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (char)(v >> (8 * i));
}

static uint32_t
get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ------------------------------------------------------------------ */
/* the checksum                                                        */

void
gh_cdisk_sum_init(struct gh_cdisk_sum *s)
{
    *s = (struct gh_cdisk_sum){.h = 0x6a09e667f3bcc908ULL};
}

static void
mix(struct gh_cdisk_sum *s, uint64_t w)
{
    uint64_t h = (s->h ^ w) * MIX;
    s->h = h ^ (h >> 29);
}

void
gh_cdisk_sum_add(struct gh_cdisk_sum *s, const void *p, size_t n)
{
    const unsigned char *b = p;
    s->total += n;
    while (n > 0 && s->n > 0) { /* finish the word begun before */
        s->carry |= (uint64_t)*b++ << (8 * s->n);
        n--;
        if (++s->n == 8) {
            mix(s, s->carry);
            s->carry = 0;
            s->n = 0;
        }
    }
    for (; n >= 8; b += 8, n -= 8)
        mix(s, get64(b));
    for (; n > 0; n--)
        s->carry |= (uint64_t)*b++ << (8 * s->n++);
}

uint64_t
gh_cdisk_sum_final(const struct gh_cdisk_sum *s)
{
    struct gh_cdisk_sum t = *s;
    mix(&t, t.carry ^ ((uint64_t)t.n << 56));
    mix(&t, t.total);
    return t.h;
}

/* ------------------------------------------------------------------ */
/* encoding                                                            */

size_t
gh_cdisk_meta_len(const struct gh_cdisk_meta *m)
{
    return GH_CDISK_PRE + (size_t)m->key_len + m->vary_len + m->vkey_len + m->fields_len;
}

uint64_t
gh_cdisk_file_len(const struct gh_cdisk_meta *m)
{
    return gh_cdisk_meta_len(m) + m->body_len + 8;
}

size_t
gh_cdisk_fields_len(const struct gh_h1_header *hs, uint32_t n)
{
    size_t len = 0;
    for (uint32_t i = 0; i < n; i++)
        len += 8 + (size_t)hs[i].name_len + hs[i].value_len;
    return len;
}

static void
encode_pre(const struct gh_cdisk_meta *m, char *p)
{
    const struct gh_cache_times *t = &m->times;
    memcpy(p, GH_CDISK_MAGIC, 8);
    put32(p + 8, m->status);
    put32(p + 12, m->key_len);
    put32(p + 16, m->vary_len);
    put32(p + 20, m->vkey_len);
    put32(p + 24, m->fields_len);
    put32(p + 28, m->n_fields);
    put64(p + 32, m->body_len);
    put64(p + 40, (uint64_t)t->request_time);
    put64(p + 48, (uint64_t)t->response_time);
    put64(p + 56, (uint64_t)t->date);
    put64(p + 64, (uint64_t)t->age);
    put64(p + 72, (uint64_t)t->lifetime);
    put64(p + 80, (uint64_t)t->swr);
    put64(p + 88, (uint64_t)t->sie);
    put32(p + 96, t->cc_flags);
    put32(p + 100, t->s_maxage ? 1 : 0);
}

int
gh_cdisk_encode_meta(struct gh_cdisk_meta *m, const struct gh_h1_header *hs, uint32_t n, char *buf,
                     size_t cap)
{
    size_t fl = gh_cdisk_fields_len(hs, n);
    if (m->key_len > GH_CDISK_MAX_KEY || m->vary_len > GH_CDISK_MAX_KEY ||
        m->vkey_len > GH_CDISK_MAX_KEY || fl > GH_CDISK_MAX_FIELDS || n > GH_CDISK_MAX_NFIELDS)
        return -EINVAL;
    m->fields_len = (uint32_t)fl;
    m->n_fields = n;
    size_t len = gh_cdisk_meta_len(m);
    if (len > cap)
        return -ENOSPC;
    encode_pre(m, buf);
    char *p = buf + GH_CDISK_PRE;
    memcpy(p, m->key, m->key_len);
    p += m->key_len;
    memcpy(p, m->vary, m->vary_len);
    p += m->vary_len;
    memcpy(p, m->vkey, m->vkey_len);
    p += m->vkey_len;
    for (uint32_t i = 0; i < n; i++) {
        put32(p, hs[i].name_len);
        put32(p + 4, hs[i].value_len);
        memcpy(p + 8, hs[i].name, hs[i].name_len);
        memcpy(p + 8 + hs[i].name_len, hs[i].value, hs[i].value_len);
        p += 8 + hs[i].name_len + hs[i].value_len;
    }
    return (int)len;
}

/* ------------------------------------------------------------------ */
/* parsing                                                             */

int
gh_cdisk_parse_pre(const void *buf, size_t len, struct gh_cdisk_meta *m)
{
    const unsigned char *p = buf;
    if (len < GH_CDISK_PRE || memcmp(p, GH_CDISK_MAGIC, 8) != 0)
        return -EINVAL;
    uint32_t status = get32(p + 8), s_maxage = get32(p + 100);
    *m = (struct gh_cdisk_meta){
        .status = (uint16_t)status,
        .key_len = get32(p + 12),
        .vary_len = get32(p + 16),
        .vkey_len = get32(p + 20),
        .fields_len = get32(p + 24),
        .n_fields = get32(p + 28),
        .body_len = get64(p + 32),
        .times = {.request_time = (int64_t)get64(p + 40),
                  .response_time = (int64_t)get64(p + 48),
                  .date = (int64_t)get64(p + 56),
                  .age = (int64_t)get64(p + 64),
                  .lifetime = (int64_t)get64(p + 72),
                  .swr = (int64_t)get64(p + 80),
                  .sie = (int64_t)get64(p + 88),
                  .cc_flags = get32(p + 96),
                  .s_maxage = s_maxage == 1},
    };
    if (status < 100 || status > 999 || s_maxage > 1 || m->key_len == 0 ||
        m->key_len > GH_CDISK_MAX_KEY || m->vary_len > GH_CDISK_MAX_KEY ||
        m->vkey_len > GH_CDISK_MAX_KEY || m->fields_len > GH_CDISK_MAX_FIELDS ||
        m->n_fields > GH_CDISK_MAX_NFIELDS || m->body_len > (UINT64_MAX >> 2))
        return -EINVAL;
    return 0;
}

/* Is the fields section f[0..len) exactly n well-formed fields? */
static int
check_fields(const unsigned char *f, size_t len, uint32_t n)
{
    size_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (len - off < 8)
            return -EINVAL;
        uint64_t nl = get32(f + off), vl = get32(f + off + 4);
        if (nl == 0 || nl + vl > len - off - 8)
            return -EINVAL;
        off += 8 + nl + vl;
    }
    return off == len ? 0 : -EINVAL;
}

int
gh_cdisk_parse_meta(const char *buf, size_t len, struct gh_cdisk_meta *m)
{
    if (gh_cdisk_parse_pre(buf, len, m) != 0 || len < gh_cdisk_meta_len(m))
        return -EINVAL;
    const char *p = buf + GH_CDISK_PRE;
    m->key = p;
    m->vary = p += m->key_len;
    m->vkey = p += m->vary_len;
    m->fields = p += m->vkey_len;
    return check_fields((const unsigned char *)m->fields, m->fields_len, m->n_fields);
}

void
gh_cdisk_fields(const struct gh_cdisk_meta *m, struct gh_h1_header *out)
{
    const unsigned char *p = (const unsigned char *)m->fields;
    for (uint32_t i = 0; i < m->n_fields; i++) {
        uint32_t nl = get32(p), vl = get32(p + 4);
        out[i] = (struct gh_h1_header){
            .name = (const char *)p + 8,
            .value = (const char *)p + 8 + nl,
            .name_len = nl,
            .value_len = vl,
            .id = (uint32_t)gh_h1_header_id((const char *)p + 8, nl),
        };
        p += 8 + nl + vl;
    }
}

int
gh_cdisk_parse_file(const char *buf, size_t len, struct gh_cdisk_meta *m)
{
    if (gh_cdisk_parse_meta(buf, len, m) != 0 || gh_cdisk_file_len(m) != len)
        return -EINVAL;
    struct gh_cdisk_sum s;
    gh_cdisk_sum_init(&s);
    gh_cdisk_sum_add(&s, buf, len - 8);
    return gh_cdisk_sum_final(&s) == get64((const unsigned char *)buf + len - 8) ? 0 : -EINVAL;
}
