/*
 * balance.c - smooth weighted round robin.
 */
#include "upstream/balance.h"

static uint32_t
swrr_pass(int32_t *cw, const struct gh_upstream_server *servers, uint32_t n, gh_balance_ok_cb ok,
          void *ctx, int strict)
{
    int32_t total = 0;
    uint32_t best = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        if (strict && ok != NULL && !ok(ctx, i))
            continue;
        int32_t w = (int32_t)servers[i].weight;
        cw[i] += w;
        total += w;
        if (best == UINT32_MAX || cw[i] > cw[best])
            best = i;
    }
    if (best != UINT32_MAX)
        cw[best] -= total;
    return best;
}

uint32_t
gh_balance_swrr(int32_t *cw, const struct gh_upstream_server *servers, uint32_t n,
                gh_balance_ok_cb ok, void *ctx)
{
    if (n == 1)
        return 0;
    uint32_t i = swrr_pass(cw, servers, n, ok, ctx, 1);
    if (i == UINT32_MAX)
        i = swrr_pass(cw, servers, n, ok, ctx, 0);
    return i;
}
