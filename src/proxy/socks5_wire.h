/*
 * socks5_wire.h - the SOCKS5 handshake's messages (RFC 1928, RFC 1929), parsed
 * from the bytes received so far. Pure functions: no state, no I/O; socks5.c
 * drives them, tests/fuzz/fuzz_socks5.c feeds them anything.
 *
 * Each returns the bytes the message took (> 0), 0 when more bytes are
 * needed, or a negative GH_S5_E* when the message is bad.
 */
#ifndef GH_PROXY_SOCKS5_WIRE_H
#define GH_PROXY_SOCKS5_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GH_S5_EVERSION (-1) /* not version 5 (or 1 for a login) */
#define GH_S5_EATYP (-2)    /* an address type other than IPv4, name, IPv6 */
#define GH_S5_ENAME (-3)    /* an empty name, or one with bytes no host name has */

#define GH_S5_ATYP_V4 1
#define GH_S5_ATYP_NAME 3
#define GH_S5_ATYP_V6 4

/* VER NMETHODS METHODS: *offered says whether method is among them. */
int gh_s5_greeting(const uint8_t *p, size_t n, uint8_t method, bool *offered);

/* RFC 1929: VER ULEN UNAME PLEN PASSWD. user/pass point into p. */
struct gh_s5_login {
    const uint8_t *user, *pass;
    uint8_t user_len, pass_len;
};
int gh_s5_login(const uint8_t *p, size_t n, struct gh_s5_login *out);

/* VER CMD RSV ATYP DST.ADDR DST.PORT: the destination as text (an address written out, or the
 * name as sent: printable ASCII without spaces), NUL-terminated. */
struct gh_s5_request {
    uint8_t cmd, atyp;
    uint16_t port;
    char host[256];
};
int gh_s5_request(const uint8_t *p, size_t n, struct gh_s5_request *out);

#endif
