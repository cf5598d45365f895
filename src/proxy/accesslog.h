/*
 * accesslog.h - the access log: one line per exchange (combined, JSON, or a
 * log_format of variables), formatted into a per-thread buffer that is
 * written once per event batch.
 *
 * The destination is one descriptor number for the life of the process: a new
 * file (reload, SIGUSR1 reopen) is dup3()'d onto it, so a worker writing at
 * that moment writes to the old file or the new one, never to a closed or
 * reused number.
 */
#ifndef GH_PROXY_ACCESSLOG_H
#define GH_PROXY_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

struct gh_worker;
struct gh_exchange;
struct gh_request;
struct gh_client_addr;

/* Point the access log at cfg's destination (the first call creates the descriptor).
 * Returns 0, or -errno after logging why (the old destination stays). */
int gh_alog_open(const struct gh_config *cfg);

/* Close the descriptor (at exit, after the workers stopped). */
void gh_alog_close(void);

/* Write ex's line (the done phase). */
void gh_alog_exchange(struct gh_exchange *ex);

/*
 * The line of a request rejected before it became one (bad head, head
 * timeout), as nginx logs them: the request field is the raw first line of
 * p[0..n), cut at 500 bytes and escaped like any other.
 */
void gh_alog_rejected(struct gh_worker *w, const struct gh_client_addr *client,
                      const struct gh_listen_conf *lc, int status, const char *p, size_t n,
                      uint64_t t_first, uint64_t bytes_out, uint32_t head_bytes);

/* A tunnel that no HTTP request made (SOCKS5): its line, as a CONNECT's. */
struct gh_alog_tunnel {
    const struct gh_client_addr *client;
    const struct gh_listen_conf *listener;
    const char *line; /* "CONNECT host:port SOCKS5" */
    size_t line_len;
    const char *user; /* the login, or NULL */
    const char *group;
    uint8_t verdict;               /* enum gh_fwd_verdict */
    int status;                    /* the HTTP status that says the same as the SOCKS reply */
    uint64_t bytes_down, bytes_up; /* to the client, to the destination */
    uint64_t t_start;
};
void gh_alog_tunnel(struct gh_worker *w, const struct gh_alog_tunnel *t);

/* Write this thread's buffered lines (at batch end). */
void gh_alog_flush(struct gh_worker *w);

#endif
