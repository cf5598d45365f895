/*
 * race.h - connection racing over a name's addresses ("happy eyeballs",
 * RFC 8305 section 5).
 *
 * The addresses are tried in the order given (the resolver interleaves IPv6
 * and IPv4, IPv6 first). The first attempt starts at once; while no attempt
 * has connected, the next one starts when the previous has had
 * GH_RACE_DELAY_MS, or at once when every attempt so far has failed. The
 * first connection made wins and the others are closed, so a host whose IPv6
 * path is black-holed costs a quarter of a second, not a connect timeout.
 * Each attempt has its own deadline (timeout_ms from its start).
 *
 * The racer lives inside its owner (no allocation) and uses one slot per
 * address, never reused, so a late event of a closed attempt cannot be taken
 * for the completion of a new one.
 */
#ifndef GH_NET_RACE_H
#define GH_NET_RACE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/loop.h"
#include "net/dns.h"

#define GH_RACE_DELAY_MS 250 /* RFC 8305's recommended Connection Attempt Delay */

/*
 * The end of a race: fd >= 0 is a connected, non-blocking socket (TCP_NODELAY)
 * that the callee now owns, to *addr (port set); its io is no longer watched.
 * fd < 0: no address could be reached; err is the last attempt's errno
 * (ETIMEDOUT when the last one timed out), addr NULL.
 */
typedef void (*gh_race_cb)(void *arg, int fd, int err, const struct sockaddr_storage *addr);

struct gh_race_try {
    struct gh_io io; /* io.fd < 0: not started, or over */
    uint64_t deadline;
    struct gh_race *r;
};

struct gh_race {
    struct gh_loop *loop;
    gh_race_cb cb;
    void *arg;
    uint32_t n, next, live;
    uint32_t timeout_ms, delay_ms;
    int last_err;
    bool running;        /* started and not ended */
    uint64_t next_start; /* when the next attempt may start (loop clock) */
    struct gh_timer timer;
    struct sockaddr_storage addr[GH_DNS_MAX_ADDRS];
    struct gh_race_try att[GH_DNS_MAX_ADDRS];
};

/*
 * Race connections to the n addresses at addrs (at most GH_DNS_MAX_ADDRS used)
 * on port. cb runs once, possibly before this returns (when no attempt could
 * even start). delay_ms 0 means GH_RACE_DELAY_MS.
 */
void gh_race_start(struct gh_race *r, struct gh_loop *l, const struct sockaddr_storage *addrs,
                   uint32_t n, uint16_t port, uint32_t timeout_ms, uint32_t delay_ms, gh_race_cb cb,
                   void *arg);

/* Stop a race that has not ended: its sockets are closed and cb will not run. Harmless after
 * the end or on a racer that never started (zeroed). */
void gh_race_cancel(struct gh_race *r);

/* The address's port set to port; the length of its sockaddr. */
socklen_t gh_race_set_port(struct sockaddr_storage *ss, uint16_t port);

#endif
