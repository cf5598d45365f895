/*
 * respond.h - answers generated here. gh_respond (exchange.h) makes one the
 * source of an exchange; gh_respond_reject writes the whole answer for a head
 * that never became a request.
 */
#ifndef GH_PROXY_RESPOND_H
#define GH_PROXY_RESPOND_H

#include <stddef.h>
#include <stdint.h>

/*
 * The complete answer for a request that never became an exchange: the
 * standard page for status, with "Connection: close". Written into out;
 * returns its length (*head_len: the head's), or 0 when it does not fit in cap.
 */
size_t gh_respond_reject(char *out, size_t cap, int status, int64_t wall, size_t *head_len);

#endif
