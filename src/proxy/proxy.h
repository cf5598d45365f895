/*
 * proxy.h - worker threads and the process-wide listener table.
 *
 * Each worker thread runs its own event loop with its own SO_REUSEPORT
 * listening sockets, connection freelists, buffers and upstream keep-alive
 * pools (share nothing on the hot path). The main thread only loads configs,
 * opens listening sockets and posts messages to workers:
 *
 *   gh_proxy_start()   open listeners for cfg, start N workers
 *   gh_proxy_reload()  hand a new config to every worker; listeners whose
 *                      address stays keep their sockets, new ones are opened,
 *                      removed ones are closed by their worker
 *   gh_proxy_stop()    stop accepting, drain requests in flight (bounded), join
 */
#ifndef GH_PROXY_PROXY_H
#define GH_PROXY_PROXY_H

#include "conf/conf.h"

/*
 * Open listeners and start the workers for cfg (the proxy takes a reference).
 * nthreads is the resolved thread count (>= 1). Returns 0, or -errno after
 * logging which listener failed (nothing is left running then).
 */
int gh_proxy_start(struct gh_config *cfg, unsigned nthreads);

/*
 * Swap in cfg (takes a reference) on every worker. Listeners are reconciled
 * by address. Returns 0, or -errno when a new listener cannot be opened: then
 * nothing changed and the old config keeps running.
 */
int gh_proxy_reload(struct gh_config *cfg);

/* Reopen the access log of cfg (after log rotation). Returns 0 or -errno (the old one stays). */
int gh_proxy_reopen_logs(const struct gh_config *cfg);

/* The defences' counters, each a uint64_t in struct gh_proxy_stats and in each worker (st_NAME):
 * name, and what it counts (for the log line at stop, docs/config.md#counters). */
#define GH_PROTECT_COUNTERS(X)                                                                     \
    X(pp_refused, "PROXY-protocol connections from an address not in proxy_protocol_from")         \
    X(pp_bad, "PROXY headers malformed, cut short or late")                                        \
    X(slow_head, "request heads not received within client_header_timeout (408)")                  \
    X(slow_body, "request bodies stalled past client_body_timeout (408)")                          \
    X(slow_read, "responses not read within send_timeout (reset)")                                 \
    X(fd_short, "accepts or connects that found no file descriptor (idle origin connections "      \
                "trimmed)")                                                                        \
    X(queued, "requests that waited for a server at max_conns (upstream queue)")                   \
    X(buffered, "request bodies buffered before the origin was chosen")                            \
    X(spooled, "of those, bodies larger than the memory buffer (spooled to a file)")

/* Counters summed over workers (approximate while running). */
struct gh_proxy_stats {
#define GH_PC_FIELD(name, text) uint64_t name;
    GH_PROTECT_COUNTERS(GH_PC_FIELD)
#undef GH_PC_FIELD
    uint64_t accepted;
    uint64_t requests;
    uint64_t active_conns;
    uint64_t cut;       /* requests cut off at the drain deadline */
    uint64_t no_server; /* requests answered 503: no server of their upstream could be tried */
};
void gh_proxy_get_stats(struct gh_proxy_stats *st);

/*
 * Stop accepting, let requests in flight finish for at most drain_ms, then close
 * what remains and join all workers. Releases every resource of the proxy.
 * When st is not NULL it gets the final counters (active_conns: 0).
 */
void gh_proxy_stop(unsigned drain_ms, struct gh_proxy_stats *st);

#endif
