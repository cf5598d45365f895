/*
 * ratelimit.c - the routed-phase hook of `rate_limit` (see ratelimit.h).
 */
#include "proxy/ratelimit.h"

#include "http/h1_write.h"
#include "policy/ratelimit.h"
#include "proxy/vars.h"
#include "proxy/worker.h"

#define NS_PER_S 1000000000ull

static uint32_t
ceil_s(uint64_t ns)
{
    uint64_t s = (ns + NS_PER_S - 1) / NS_PER_S;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

int
gh_ratelimit_routed(struct gh_exchange *ex, const struct gh_request *req)
{
    (void)req;
    const struct gh_proxy_conf *pc = ex->pc;
    if (gh_likely(pc->n_rate_limits == 0))
        return GH_OK;
    uint64_t now = gh_loop_now(ex->w->loop) * 1000000ull;
    uint32_t best = UINT32_MAX;
    for (uint32_t i = 0; i < pc->n_rate_limits; i++) {
        const struct gh_rate_limit *rl = &pc->rate_limits[i];
        if (rl->zone == NULL)
            continue;
        /* the key in the thread's head scratch, free until the origin's head is built */
        struct gh_wr w = {ex->w->hscratch, 0, GH_BUF_SIZE, 0};
        gh_vars_expand(rl->key, ex, &w, GH_ESC_RAW, NULL);
        if (w.len == 0) /* as nginx: an empty key is not limited */
            continue;
        struct gh_rl_verdict v;
        gh_rl_check(rl->zone, gh_rl_hash(w.p, w.len), now, rl->interval_ns, rl->burst, &v);
        if (!v.ok) {
            ex->rl = rl;
            ex->rl_remaining = 0;
            ex->rl_reset_s = ceil_s(v.reset_ns);
            ex->fail_reason = rl->at;
            /* keep-alive stays (the downstream closes when a body is left unread) */
            struct gh_gen g = {.retry_after = GH_MAX(ceil_s(v.retry_ns), 1u)};
            gh_respond(ex, rl->status, &g);
            return GH_DECLINED;
        }
        if (pc->rate_limit_headers && v.remaining < best) {
            best = v.remaining;
            ex->rl = rl;
            ex->rl_remaining = v.remaining;
            ex->rl_reset_s = ceil_s(v.reset_ns);
        }
    }
    return GH_OK;
}
