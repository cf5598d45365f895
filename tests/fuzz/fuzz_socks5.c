/*
 * fuzz_socks5.c - libFuzzer target for the SOCKS5 handshake's parsers
 * (proxy/socks5_wire.c): what a client sends a `listen ... socks5` address
 * before its tunnel starts.
 *
 * The first byte picks whether a login step comes between the greeting and
 * the request (as with `auth`); the rest is the client's bytes, run through
 * greeting, login and request as socks5.c does, each step fed every prefix of
 * what is left (a message arrives in pieces), in an exact-size copy so ASan
 * sees any overread. Checked: a prefix that says "need more" stays so until
 * the message is whole, the byte counts stay within the input, and the
 * destination is NUL-terminated text with no byte a log line must not get.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/socks5_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

enum { GREETING, LOGIN, REQUEST };

static int
step(int which, const uint8_t *p, size_t n)
{
    bool offered;
    struct gh_s5_login l;
    struct gh_s5_request r;
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, p, n);
    int rc = which == GREETING ? gh_s5_greeting(copy, n, 2, &offered)
             : which == LOGIN  ? gh_s5_login(copy, n, &l)
                               : gh_s5_request(copy, n, &r);
    CHECK(rc <= (int)n);
    if (rc > 0 && which == LOGIN) {
        CHECK(l.user >= copy && l.user + l.user_len <= copy + n);
        CHECK(l.pass >= copy && l.pass + l.pass_len <= copy + n);
        CHECK((size_t)rc == 3u + l.user_len + l.pass_len);
    }
    if (rc > 0 && which == REQUEST) {
        size_t hl = strnlen(r.host, sizeof(r.host));
        CHECK(hl > 0 && hl < sizeof(r.host));
        for (size_t i = 0; i < hl; i++)
            CHECK((unsigned char)r.host[i] > 0x20 && (unsigned char)r.host[i] < 0x7f);
        CHECK(r.atyp == GH_S5_ATYP_V4 || r.atyp == GH_S5_ATYP_V6 || r.atyp == GH_S5_ATYP_NAME);
    }
    free(copy);
    return rc;
}

/* The message at p[0..n) as it arrives byte by byte: "need more" until it is whole, then the
 * same answer as for all of it. */
static int
whole(int which, const uint8_t *p, size_t n)
{
    int full = step(which, p, n);
    for (size_t k = 0; k < n && k < 300; k++) {
        int rc = step(which, p, k);
        if (full > 0 && k < (size_t)full)
            CHECK(rc == 0 || rc < 0);
        if (rc != 0) {
            CHECK(rc == full || (rc < 0 && full < 0));
            break;
        }
    }
    return full;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool with_login = data[0] & 1;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    int rc = whole(GREETING, p, n);
    if (rc <= 0)
        return 0;
    p += rc, n -= (size_t)rc;
    if (with_login) {
        rc = whole(LOGIN, p, n);
        if (rc <= 0)
            return 0;
        p += rc, n -= (size_t)rc;
    }
    whole(REQUEST, p, n);
    return 0;
}
