/*
 * balance.h - load-balancing algorithms over an upstream's servers. Pure
 * functions over caller-owned state, so each worker keeps its own state and
 * picks without locks.
 */
#ifndef GH_UPSTREAM_BALANCE_H
#define GH_UPSTREAM_BALANCE_H

#include <stdint.h>

#include "conf/conf.h"

/* Predicate: may server i be chosen now? */
typedef int (*gh_balance_ok_cb)(void *ctx, uint32_t i);

/*
 * Smooth weighted round robin (as nginx): every pick adds each eligible
 * server's weight to its current weight cw[i], picks the largest, and
 * subtracts the total from it. Equal weights give plain rotation; weights
 * 5,1,1 give a a b a c a a, spread rather than bunched. cw has n entries
 * (zero-initialised once). Servers for which ok() is 0 are skipped; when none
 * is eligible, all are considered. Returns the index picked.
 */
uint32_t gh_balance_swrr(int32_t *cw, const struct gh_upstream_server *servers, uint32_t n,
                         gh_balance_ok_cb ok, void *ctx);

#endif
