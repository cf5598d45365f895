/*
 * proxyproto.h - the PROXY protocol (HAProxy's, versions 1 and 2): the header
 * a load balancer in front writes before the client's bytes to say who the
 * client is, and the header Gatehouse writes to an origin (`send_proxy`).
 *
 * gh_pp_parse is a pure function over bytes (no socket): it may be given the
 * start of a connection's input as often as more arrives, and answers with
 * the header's length, GH_INCOMPLETE or GH_BAD. gh_pp_recv reads one header
 * off a socket without taking a byte past it (peek, then read exactly its
 * length), so a TLS handshake or an HTTP head behind it stays in the socket.
 */
#ifndef GH_NET_PROXYPROTO_H
#define GH_NET_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* v1: at most 107 bytes with its CRLF (the specification's limit). */
#define GH_PP_V1_MAX 107
/* v2: the 16-byte fixed part and at most this much after it (addresses and TLVs); a longer
 * header is refused (HAProxy bounds it by its buffer the same way). */
#define GH_PP_V2_MAX_LEN 4096
#define GH_PP_MAX (16 + GH_PP_V2_MAX_LEN)

/* What a header said. */
struct gh_pp_info {
    uint8_t version; /* 1 or 2 */
    /* the header carries no addresses to use (v1 UNKNOWN, v2 LOCAL, or v2 PROXY with an
     * unspecified or AF_UNIX family): the connection's own addresses stand */
    bool local;
    struct sockaddr_storage src; /* the client (AF_INET or AF_INET6), when !local */
    struct sockaddr_storage dst; /* the address it connected to */
};

/*
 * Parse a PROXY header at p[0..n). Returns the header's length (> 0) with *out
 * filled, GH_INCOMPLETE when p is a valid beginning of one, or GH_BAD with
 * *why set (a static string) when it is not a valid header: a wrong
 * signature, a bad version or command, a malformed v1 line (one space between
 * fields, addresses of the family named, ports 0..65535 without leading
 * zeros, CRLF within 107 bytes), a v2 length too short for its addresses or
 * longer than GH_PP_V2_MAX_LEN, or TLVs that do not exactly fill it.
 */
int gh_pp_parse(const char *p, size_t n, struct gh_pp_info *out, const char **why);

/*
 * Write a header of version 1 or 2 saying src connected to dst (both AF_INET
 * or both AF_INET6; an IPv4-mapped IPv6 address is written as IPv4; other
 * pairs give v1 UNKNOWN or a v2 LOCAL header). Returns its length, or 0 when
 * cap is too small (GH_PP_V1_MAX or 52 bytes are always enough).
 */
size_t gh_pp_write(char *buf, size_t cap, int version, const struct sockaddr_storage *src,
                   const struct sockaddr_storage *dst);

/*
 * Read a header from the non-blocking socket fd into buf (cap >= GH_PP_MAX):
 * peek at what is there, parse, and when a header is complete take exactly
 * its bytes off the socket. Returns its length with *out filled, GH_AGAIN
 * when more bytes must come (nothing was taken), GH_BAD with *why set, or 0
 * when the peer closed before sending a byte (*why NULL) or the socket failed
 * (*why says how).
 */
int gh_pp_recv(int fd, char *buf, size_t cap, struct gh_pp_info *out, const char **why);

#endif
