/*
 * sock.h - TCP sockets: listeners (SO_REUSEPORT, one per worker thread),
 * non-blocking connects, and address formatting for logs and headers.
 */
#ifndef GH_NET_SOCK_H
#define GH_NET_SOCK_H

#include <stddef.h>
#include <sys/socket.h>

#include "core/common.h"

/*
 * Open a non-blocking listening socket bound to addr with SO_REUSEADDR,
 * SO_REUSEPORT and TCP_NODELAY (inherited by accepted sockets on Linux).
 * Returns the fd or -errno.
 */
int gh_sock_listen(const struct sockaddr *addr, socklen_t len, int backlog);

/*
 * Is addr free to listen on? SO_REUSEPORT would let a second process (same
 * user) silently share a port with a running one, each getting part of the
 * connections; so before opening a new address, a plain bind (SO_REUSEADDR
 * only, which passes TIME_WAIT but not a listener) checks that nobody holds
 * it. Returns 0 or -errno (-EADDRINUSE).
 */
int gh_sock_probe_free(const struct sockaddr *addr, socklen_t len);

/*
 * Start a non-blocking connect to addr (TCP_NODELAY set). Returns the fd
 * (connect in progress or done) or -errno for an immediate failure.
 */
int gh_sock_connect(const struct sockaddr *addr, socklen_t len);

/* Pending error of a socket after a connect completes (SO_ERROR): 0 or an errno. */
int gh_sock_error(int fd);

/*
 * Format the IP of addr (no port) into out: "1.2.3.4" or "2001:db8::1".
 * Returns the length written (NUL-terminated), 0 on failure.
 */
size_t gh_sock_ip_str(const struct sockaddr *addr, char *out, size_t cap);

/* Same with port: "1.2.3.4:80" or "[::1]:80". */
size_t gh_sock_addr_str(const struct sockaddr *addr, char *out, size_t cap);

#endif
