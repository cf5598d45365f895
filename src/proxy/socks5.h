/*
 * socks5.h - SOCKS5 (RFC 1928, logins RFC 1929) on a forward proxy's `listen ... socks5`
 * address: a protocol beside HTTP/1 (struct gh_proto), with the forward proxy's policies.
 */
#ifndef GH_PROXY_SOCKS5_H
#define GH_PROXY_SOCKS5_H

#include "proxy/worker.h"

extern const struct gh_proto gh_socks5_proto;

#endif
