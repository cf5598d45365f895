/*
 * fuzz_lpm.c - libFuzzer target for the longest-prefix map (policy/lpm.c) behind `geo`: the
 * input is lines of prefixes ("10.0.0.0/8", "2001:db8::/32", anything else is skipped); the
 * map built from them must answer, for every prefix's first and last address and the
 * addresses just outside, what the obvious scan for the longest containing prefix answers.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/common.h"
#include "policy/lpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PREFIXES 256

static uint32_t
slow_find(const struct gh_cidr *pre, uint32_t n, uint8_t fam, const uint8_t *ip)
{
    uint32_t best = GH_LPM_NONE;
    int bits = -1;
    for (uint32_t i = 0; i < n; i++)
        if (gh_cidr_contains(&pre[i], fam, ip) && (int)pre[i].bits > bits) {
            best = i;
            bits = pre[i].bits;
        }
    return best;
}

/* ip += delta (+1 or -1) over nb bytes, wrapping. */
static void
step(uint8_t *ip, unsigned nb, int delta)
{
    for (int i = (int)nb - 1; i >= 0; i--) {
        uint8_t before = ip[i];
        ip[i] = (uint8_t)(ip[i] + delta);
        if ((delta > 0 && ip[i] > before) || (delta < 0 && ip[i] < before))
            break;
    }
}

static void
probe(const struct gh_lpm *m, const struct gh_cidr *pre, uint32_t n, const struct gh_cidr *c)
{
    unsigned nb = c->family == AF_INET ? 4 : 16;
    uint8_t ip[16];
    for (int k = 0; k < 4; k++) {
        memcpy(ip, c->ip, 16);
        if (k >= 2) /* its last address */
            for (unsigned bit = c->bits; bit < nb * 8; bit++)
                ip[bit / 8] |= (uint8_t)(0x80u >> (bit % 8));
        if (k == 1)
            step(ip, nb, -1);
        if (k == 3)
            step(ip, nb, 1);
        GH_ASSERT(gh_lpm_find(m, c->family, ip) == slow_find(pre, n, c->family, ip));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gh_cidr pre[MAX_PREFIXES];
    uint32_t n = 0;
    struct gh_lpm_builder b = {0};
    const char *p = (const char *)data, *end = p + size;
    while (p < end && n < MAX_PREFIXES) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (e == NULL)
            e = end;
        struct gh_cidr c;
        bool host_bits;
        const char *why;
        bool dup = false;
        if (gh_cidr_parse(p, (size_t)(e - p), &c, &host_bits, &why) == 0) {
            for (uint32_t i = 0; i < n && !dup; i++)
                dup = pre[i].family == c.family && pre[i].bits == c.bits &&
                      memcmp(pre[i].ip, c.ip, 16) == 0;
            if (!dup) {
                pre[n] = c;
                GH_ASSERT(gh_lpm_add(&b, &c, n, n) == 0);
                n++;
            }
        }
        p = e + 1;
    }
    uint32_t d1, d2;
    struct gh_lpm *m = gh_lpm_build(&b, &d1, &d2);
    GH_ASSERT(m != NULL);
    for (uint32_t i = 0; i < n; i++)
        probe(m, pre, n, &pre[i]);
    gh_lpm_free(m);
    return 0;
}
