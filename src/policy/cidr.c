/*
 * cidr.c - prefixes and the compiled prefix set (see cidr.h).
 *
 * The set is a binary trie per family. A node where prefixes end keeps the smallest index
 * of those (an identical prefix later in the list can never be the first match), and every
 * node keeps the smallest index found anywhere in its subtree, so a walk stops as soon as
 * the subtree below cannot hold a prefix earlier than the best one found on the way: a
 * `deny all;` first in the list answers at the root.
 */
#include "policy/cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct node {
    uint32_t child[2]; /* 0: none (the roots are nodes 0 and 1, never children) */
    uint32_t rule;     /* the first prefix ending here, or GH_CIDR_NONE */
    uint32_t sub_min;  /* the smallest rule in this subtree (itself included) */
};

struct gh_cidr_set {
    const struct node *nodes; /* [0]: the IPv4 root, [1]: the IPv6 root */
    uint32_t n_nodes;
};

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool
is_v4mapped(const uint8_t *ip)
{
    return memcmp(ip, v4mapped, 12) == 0;
}

static void
clear_host_bits(uint8_t *ip, unsigned bits, unsigned max, bool *had)
{
    for (unsigned i = bits; i < max; i++) {
        uint8_t m = (uint8_t)(0x80u >> (i % 8));
        if (ip[i / 8] & m) {
            *had = true;
            ip[i / 8] &= (uint8_t)~m;
        }
    }
}

int
gh_ip_parse(const char *s, size_t len, uint8_t *family, uint8_t ip[16])
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(ip, 0, 16);
    if (memchr(buf, ':', len) == NULL) {
        if (inet_pton(AF_INET, buf, ip) != 1)
            return -EINVAL;
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, ip) != 1)
        return -EINVAL;
    *family = AF_INET6;
    return 0;
}

int
gh_cidr_parse(const char *s, size_t len, struct gh_cidr *out, bool *host_bits, const char **why)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash != NULL ? (size_t)(slash - s) : len;
    memset(out, 0, sizeof(*out));
    *host_bits = false;
    if (gh_ip_parse(s, alen, &out->family, out->ip) != 0) {
        *why = "not an IPv4 or IPv6 address";
        return -EINVAL;
    }
    unsigned max = out->family == AF_INET ? 32 : 128;
    unsigned bits = max;
    if (slash != NULL) {
        size_t plen = len - alen - 1;
        if (plen == 0 || plen > 3) {
            *why = "the prefix length after '/' must be a number";
            return -EINVAL;
        }
        bits = 0;
        for (size_t i = 0; i < plen; i++) {
            char c = slash[1 + i];
            if (c < '0' || c > '9') {
                *why = "the prefix length after '/' must be a number";
                return -EINVAL;
            }
            bits = bits * 10 + (unsigned)(c - '0');
        }
        if (bits > max) {
            *why = out->family == AF_INET ? "an IPv4 prefix length is at most 32"
                                          : "an IPv6 prefix length is at most 128";
            return -EINVAL;
        }
    }
    clear_host_bits(out->ip, bits, max, host_bits);
    out->bits = (uint8_t)bits;
    if (out->family == AF_INET6 && bits >= 96 && is_v4mapped(out->ip)) {
        out->family = AF_INET;
        memmove(out->ip, out->ip + 12, 4);
        memset(out->ip + 4, 0, 12);
        out->bits = (uint8_t)(bits - 96);
    }
    return 0;
}

/* (family, ip) as looked up: a mapped IPv6 address is its IPv4 address. */
static const uint8_t *
lookup_form(uint8_t *family, const uint8_t *ip)
{
    if (*family == AF_INET6 && is_v4mapped(ip)) {
        *family = AF_INET;
        return ip + 12;
    }
    return ip;
}

bool
gh_cidr_contains(const struct gh_cidr *c, uint8_t family, const uint8_t *ip)
{
    ip = lookup_form(&family, ip);
    if (family != c->family)
        return false;
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->ip, ip, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t m = (uint8_t)(0xff00u >> rest);
    return (c->ip[full] & m) == (ip[full] & m);
}

static inline unsigned
bit_at(const uint8_t *ip, unsigned i)
{
    return (ip[i / 8] >> (7 - i % 8)) & 1u;
}

struct tmp {
    struct node *v;
    uint32_t n, cap;
};

static uint32_t
tmp_node(struct tmp *t)
{
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 64;
        struct node *nv = gh_xmalloc(cap * sizeof(*nv)); /* load time: exits when out */
        if (t->n > 0)
            memcpy(nv, t->v, t->n * sizeof(*nv));
        free(t->v);
        t->v = nv;
        t->cap = cap;
    }
    t->v[t->n] = (struct node){{0, 0}, GH_CIDR_NONE, GH_CIDR_NONE};
    return t->n++;
}

const struct gh_cidr_set *
gh_cidr_set_build(struct gh_arena *a, const struct gh_cidr *prefixes, uint32_t n)
{
    struct tmp t = {0};
    tmp_node(&t); /* the IPv4 root */
    tmp_node(&t); /* the IPv6 root */
    for (uint32_t i = 0; i < n; i++) {
        const struct gh_cidr *c = &prefixes[i];
        uint32_t at = c->family == AF_INET ? 0 : 1;
        for (unsigned b = 0; b < c->bits; b++) {
            unsigned dir = bit_at(c->ip, b);
            if (t.v[at].child[dir] == 0) {
                uint32_t nn = tmp_node(&t); /* may move t.v */
                t.v[at].child[dir] = nn;
            }
            at = t.v[at].child[dir];
        }
        if (t.v[at].rule == GH_CIDR_NONE)
            t.v[at].rule = i; /* the first one in the list stays */
    }
    /* children come after their parents: one backward pass fills the subtree minimums */
    for (uint32_t k = t.n; k-- > 0;) {
        struct node *nd = &t.v[k];
        uint32_t m = nd->rule;
        for (int d = 0; d < 2; d++)
            if (nd->child[d] != 0 && t.v[nd->child[d]].sub_min < m)
                m = t.v[nd->child[d]].sub_min;
        nd->sub_min = m;
    }
    struct gh_cidr_set *s = gh_arena_alloc(a, sizeof(*s));
    struct node *nodes = gh_arena_alloc(a, t.n * sizeof(*nodes));
    memcpy(nodes, t.v, t.n * sizeof(*nodes));
    s->nodes = nodes;
    s->n_nodes = t.n;
    free(t.v);
    return s;
}

uint32_t
gh_cidr_set_find(const struct gh_cidr_set *s, uint8_t family, const uint8_t *ip)
{
    if (s == NULL)
        return GH_CIDR_NONE;
    ip = lookup_form(&family, ip);
    const struct node *nodes = s->nodes;
    const struct node *nd = &nodes[family == AF_INET ? 0 : 1];
    unsigned max = family == AF_INET ? 32 : 128;
    uint32_t best = GH_CIDR_NONE;
    for (unsigned b = 0;; b++) {
        if (nd->rule < best)
            best = nd->rule;
        if (b == max)
            break;
        uint32_t c = nd->child[bit_at(ip, b)];
        if (c == 0 || nodes[c].sub_min >= best)
            break;
        nd = &nodes[c];
    }
    return best;
}

uint32_t
gh_cidr_set_nodes(const struct gh_cidr_set *s)
{
    return s != NULL ? s->n_nodes : 0;
}
