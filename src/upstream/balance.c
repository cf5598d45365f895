/*
 * balance.c - balancing algorithms: smooth weighted round robin.
 */
#include "upstream/balance.h"

static uint32_t
swrr_pass(struct gh_balance_srv *st, const struct gh_upstream_server *servers, uint32_t n,
          gh_balance_ok_cb ok, void *ctx, int strict)
{
    int32_t total = 0;
    uint32_t best = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        if (strict && ok != NULL && !ok(ctx, i))
            continue;
        int32_t w = (int32_t)servers[i].weight;
        st[i].cw += w;
        total += w;
        if (best == UINT32_MAX || st[i].cw > st[best].cw)
            best = i;
    }
    if (best != UINT32_MAX)
        st[best].cw -= total;
    return best;
}

uint32_t
gh_balance_swrr(struct gh_balance_srv *st, const struct gh_upstream_server *servers, uint32_t n,
                gh_balance_ok_cb ok, void *ctx)
{
    if (n == 1)
        return 0;
    uint32_t i = swrr_pass(st, servers, n, ok, ctx, 1);
    if (i == UINT32_MAX)
        i = swrr_pass(st, servers, n, ok, ctx, 0);
    return i;
}

/* ---- as gh_balancers ---- */

static uint32_t
rr_pick(const struct gh_balance_in *in)
{
    return gh_balance_swrr(in->st, in->servers, in->n, in->ok, in->ok_ctx);
}

static const struct gh_balancer round_robin = {"round_robin", rr_pick, NULL};

const struct gh_balancer *
gh_balancer_for(enum gh_balance b)
{
    switch (b) {
    case GH_BALANCE_ROUND_ROBIN:
    default:
        return &round_robin;
    }
}
