/*
 * test_proxyproto.c - PROXY protocol headers (net/proxyproto.c): v1 and v2
 * parsed whole, byte by byte and in random splits; strictness (every
 * malformed form named in the header's contract); written and parsed back;
 * read off a real socket without taking the bytes behind the header.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/common.h"
#include "net/proxyproto.h"

static const char V2SIG[] = "\r\n\r\n\0\r\nQUIT\n";

/* Parse s[0..n) whole, byte by byte (each prefix), and in random splits: the same verdict. */
static int
parse_all_ways(const char *s, size_t n, struct gh_pp_info *info)
{
    const char *why;
    char *copy = malloc(n + 1);
    memcpy(copy, s, n);
    int rc = gh_pp_parse(copy, n, info, &why);
    for (size_t k = 0; k < n; k++) {
        struct gh_pp_info part;
        int prc = gh_pp_parse(copy, k, &part, &why);
        if (rc > 0 && k >= (size_t)rc)
            assert_int_equal(prc, rc);
        else if (rc > 0 || rc == GH_INCOMPLETE)
            assert_int_equal(prc, GH_INCOMPLETE);
        else
            assert_true(prc == GH_INCOMPLETE || prc == GH_BAD);
    }
    free(copy);
    return rc;
}

static int
parse_str(const char *s, struct gh_pp_info *info)
{
    return parse_all_ways(s, strlen(s), info);
}

static void
check_v4(const struct sockaddr_storage *ss, const char *ip, int port)
{
    const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
    char b[INET_ADDRSTRLEN];
    assert_int_equal(s->sin_family, AF_INET);
    inet_ntop(AF_INET, &s->sin_addr, b, sizeof(b));
    assert_string_equal(b, ip);
    assert_int_equal(ntohs(s->sin_port), port);
}

static void
check_v6(const struct sockaddr_storage *ss, const char *ip, int port)
{
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
    char b[INET6_ADDRSTRLEN];
    assert_int_equal(s->sin6_family, AF_INET6);
    inet_ntop(AF_INET6, &s->sin6_addr, b, sizeof(b));
    assert_string_equal(b, ip);
    assert_int_equal(ntohs(s->sin6_port), port);
}

static void
test_v1_good(void **st)
{
    (void)st;
    struct gh_pp_info i;
    const char *h = "PROXY TCP4 192.0.2.1 198.51.100.2 4711 80\r\n";
    assert_int_equal(parse_str(h, &i), (int)strlen(h));
    assert_int_equal(i.version, 1);
    assert_false(i.local);
    check_v4(&i.src, "192.0.2.1", 4711);
    check_v4(&i.dst, "198.51.100.2", 80);
    /* bytes behind the header are not the header's */
    char both[128];
    snprintf(both, sizeof(both), "%sGET / HTTP/1.1\r\n", h);
    assert_int_equal(parse_str(both, &i), (int)strlen(h));
    h = "PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
    assert_int_equal(parse_str(h, &i), (int)strlen(h));
    check_v6(&i.src, "2001:db8::1", 65535);
    check_v6(&i.dst, "::1", 0);
    h = "PROXY UNKNOWN\r\n";
    assert_int_equal(parse_str(h, &i), (int)strlen(h));
    assert_true(i.local);
    h = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
    assert_int_equal(parse_str(h, &i), (int)strlen(h));
    assert_true(i.local);
}

static void
test_v1_bad(void **st)
{
    (void)st;
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 4711 80\n",     /* bare LF */
        "PROXY TCP4  192.0.2.1 198.51.100.2 4711 80\r\n",  /* double space */
        "PROXY TCP4 192.0.2.1 198.51.100.2 4711 80 \r\n",  /* trailing space */
        "PROXY TCP4 192.0.2.1 198.51.100.2 4711\r\n",      /* a field short */
        "PROXY TCP4 192.0.2.1 198.51.100.2 4711 80 9\r\n", /* a field too many */
        "PROXY TCP4 2001:db8::1 198.51.100.2 4711 80\r\n", /* family mismatch */
        "PROXY TCP6 192.0.2.1 ::1 4711 80\r\n",            /* family mismatch */
        "PROXY TCP4 192.0.2.1 198.51.100.2 65536 80\r\n",  /* port range */
        "PROXY TCP4 192.0.2.1 198.51.100.2 04711 80\r\n",  /* leading zero */
        "PROXY TCP4 192.0.2.1 198.51.100.2 -1 80\r\n",     /* sign */
        "PROXY TCP4 192.0.2.256 198.51.100.2 1 80\r\n",    /* octet */
        "PROXY UDP4 192.0.2.1 198.51.100.2 1 80\r\n",      /* protocol */
        "PROXY tcp4 192.0.2.1 198.51.100.2 1 80\r\n",      /* case */
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 8\r0\r\n",    /* stray CR */
        "PROXY UNKNOWNX\r\n",
        "PROXY \r\n",
        "proxy TCP4 192.0.2.1 198.51.100.2 1 80\r\n",
    };
    for (size_t k = 0; k < GH_ARRAY_LEN(bad); k++) {
        struct gh_pp_info i;
        const char *why = NULL;
        int rc = parse_str(bad[k], &i);
        if (rc != GH_BAD)
            fprintf(stderr, "# accepted: %s", bad[k]);
        assert_int_equal(rc, GH_BAD);
        assert_int_equal(gh_pp_parse(bad[k], strlen(bad[k]), &i, &why), GH_BAD);
        assert_non_null(why);
    }
    /* no CRLF within 107 bytes */
    char longl[200];
    memset(longl, '1', sizeof(longl));
    memcpy(longl, "PROXY UNKNOWN ", 14);
    struct gh_pp_info i;
    assert_int_equal(parse_all_ways(longl, sizeof(longl), &i), GH_BAD);
    assert_int_equal(parse_all_ways(longl, 106, &i), GH_INCOMPLETE);
}

/* A v2 header: the signature, ver_cmd, fam, then body[0..blen) with its length. */
static size_t
v2(char *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t blen)
{
    memcpy(out, V2SIG, 12);
    out[12] = (char)ver_cmd;
    out[13] = (char)fam;
    out[14] = (char)(blen >> 8);
    out[15] = (char)blen;
    if (blen > 0)
        memcpy(out + 16, body, blen);
    return 16 + blen;
}

static void
test_v2_good(void **st)
{
    (void)st;
    char h[512];
    struct gh_pp_info i;
    uint8_t a4[] = {192, 0, 2, 1, 198, 51, 100, 2, 0x12, 0x67, 0, 80};
    size_t n = v2(h, 0x21, 0x11, a4, sizeof(a4));
    memcpy(h + n, "GET", 3); /* behind it: not the header's */
    assert_int_equal(parse_all_ways(h, n + 3, &i), (int)n);
    assert_int_equal(i.version, 2);
    check_v4(&i.src, "192.0.2.1", 4711);
    check_v4(&i.dst, "198.51.100.2", 80);
    uint8_t a6[36 + 3 + 5] = {0x20, 0x01, 0x0d, 0xb8};
    a6[15] = 1;
    a6[31] = 1;
    a6[32] = 0x12;
    a6[33] = 0x67;
    a6[35] = 80;
    a6[36] = 0x04; /* a NOOP TLV, empty */
    a6[39] = 0x01; /* an ALPN TLV of 2 bytes */
    a6[41] = 2;
    n = v2(h, 0x21, 0x21, a6, sizeof(a6));
    assert_int_equal(parse_all_ways(h, n, &i), (int)n);
    check_v6(&i.src, "2001:db8::1", 4711);
    check_v6(&i.dst, "::1", 80);
    /* LOCAL: whatever follows is skipped; UNSPEC and UNIX: the connection's addresses */
    n = v2(h, 0x20, 0x00, a4, 5);
    assert_int_equal(parse_all_ways(h, n, &i), (int)n);
    assert_true(i.local);
    uint8_t un[216] = {0};
    n = v2(h, 0x21, 0x31, un, sizeof(un));
    assert_int_equal(parse_all_ways(h, n, &i), (int)n);
    assert_true(i.local);
    n = v2(h, 0x21, 0x00, NULL, 0);
    assert_int_equal(parse_all_ways(h, n, &i), (int)n);
    assert_true(i.local);
}

static void
test_v2_bad(void **st)
{
    (void)st;
    char h[8192];
    struct gh_pp_info i;
    uint8_t a4[16] = {192, 0, 2, 1, 198, 51, 100, 2, 0x12, 0x67, 0, 80};
    assert_int_equal(parse_all_ways(h, v2(h, 0x11, 0x11, a4, 12), &i), GH_BAD); /* version 1 */
    assert_int_equal(parse_all_ways(h, v2(h, 0x22, 0x11, a4, 12), &i), GH_BAD); /* command */
    assert_int_equal(parse_all_ways(h, v2(h, 0x21, 0x11, a4, 11), &i), GH_BAD); /* too short */
    assert_int_equal(parse_all_ways(h, v2(h, 0x21, 0x12, a4, 12), &i), GH_BAD); /* dgram */
    assert_int_equal(parse_all_ways(h, v2(h, 0x21, 0x41, a4, 12), &i), GH_BAD); /* family */
    assert_int_equal(parse_all_ways(h, v2(h, 0x21, 0x13, a4, 12), &i), GH_BAD); /* transport */
    /* a TLV running past the end, and a TLV header cut short */
    a4[12] = 1, a4[13] = 0, a4[14] = 9;
    assert_int_equal(parse_all_ways(h, v2(h, 0x21, 0x11, a4, 16), &i), GH_BAD);
    assert_int_equal(parse_all_ways(h, v2(h, 0x21, 0x11, a4, 14), &i), GH_BAD);
    /* longer than the limit */
    static uint8_t big[GH_PP_V2_MAX_LEN + 1];
    size_t n = v2(h, 0x20, 0, big, sizeof(big));
    const char *why;
    assert_int_equal(gh_pp_parse(h, n, &i, &why), GH_BAD);
    n = v2(h, 0x20, 0, big, GH_PP_V2_MAX_LEN);
    assert_int_equal(gh_pp_parse(h, n, &i, &why), (int)n);
    /* a wrong signature byte */
    n = v2(h, 0x21, 0x11, a4, 12);
    h[6] = 'X';
    assert_int_equal(parse_all_ways(h, n, &i), GH_BAD);
}

static struct sockaddr_storage
addr(const char *ip, int port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
        s->sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &s->sin6_addr);
        s->sin6_port = htons((uint16_t)port);
    } else {
        struct sockaddr_in *s = (struct sockaddr_in *)&ss;
        s->sin_family = AF_INET;
        inet_pton(AF_INET, ip, &s->sin_addr);
        s->sin_port = htons((uint16_t)port);
    }
    return ss;
}

static void
test_write(void **st)
{
    (void)st;
    char b[GH_PP_V1_MAX];
    struct gh_pp_info i;
    const char *why;
    struct sockaddr_storage s = addr("192.0.2.1", 4711), d = addr("198.51.100.2", 80);
    size_t n = gh_pp_write(b, sizeof(b), 1, &s, &d);
    assert_int_equal(n, strlen("PROXY TCP4 192.0.2.1 198.51.100.2 4711 80\r\n"));
    assert_memory_equal(b, "PROXY TCP4 192.0.2.1 198.51.100.2 4711 80\r\n", n);
    n = gh_pp_write(b, sizeof(b), 2, &s, &d);
    assert_int_equal(n, 28);
    assert_int_equal(gh_pp_parse(b, n, &i, &why), 28);
    check_v4(&i.src, "192.0.2.1", 4711);
    /* an IPv4 client on an IPv6 listener goes out as IPv4 */
    s = addr("::ffff:192.0.2.9", 1);
    d = addr("::ffff:127.0.0.1", 2);
    n = gh_pp_write(b, sizeof(b), 1, &s, &d);
    assert_memory_equal(b, "PROXY TCP4 192.0.2.9 127.0.0.1 1 2\r\n", n);
    s = addr("2001:db8::7", 1);
    d = addr("127.0.0.1", 2);
    n = gh_pp_write(b, sizeof(b), 1, &s, &d);
    assert_memory_equal(b, "PROXY UNKNOWN\r\n", n);
    n = gh_pp_write(b, sizeof(b), 2, &s, &d);
    assert_int_equal(gh_pp_parse(b, n, &i, &why), (int)n);
    assert_true(i.local);
    s = addr("2001:db8::7", 1);
    d = addr("2001:db8::8", 2);
    n = gh_pp_write(b, sizeof(b), 2, &s, &d);
    assert_int_equal(n, 52);
    assert_int_equal(gh_pp_parse(b, n, &i, &why), 52);
    check_v6(&i.dst, "2001:db8::8", 2);
    assert_int_equal(gh_pp_write(b, 20, 1, &s, &d), 0);
    assert_int_equal(gh_pp_write(b, 51, 2, &s, &d), 0);
}

static void
test_recv(void **st)
{
    (void)st;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    char buf[GH_PP_MAX];
    struct gh_pp_info i;
    const char *why;
    assert_int_equal(gh_pp_recv(sv[0], buf, sizeof(buf), &i, &why), GH_AGAIN);
    const char *h = "PROXY TCP4 192.0.2.1 198.51.100.2 4711 80\r\n";
    assert_int_equal(write(sv[1], h, 20), 20);
    assert_int_equal(gh_pp_recv(sv[0], buf, sizeof(buf), &i, &why), GH_AGAIN);
    assert_int_equal(write(sv[1], h + 20, strlen(h) - 20), (ssize_t)strlen(h) - 20);
    assert_int_equal(write(sv[1], "\x16\x03\x01", 3), 3); /* a TLS hello behind it */
    assert_int_equal(gh_pp_recv(sv[0], buf, sizeof(buf), &i, &why), (int)strlen(h));
    check_v4(&i.src, "192.0.2.1", 4711);
    assert_int_equal(read(sv[0], buf, sizeof(buf)), 3); /* still there, untouched */
    assert_memory_equal(buf, "\x16\x03\x01", 3);
    assert_int_equal(write(sv[1], "GET / HTTP/1.1\r\n", 16), 16);
    assert_int_equal(gh_pp_recv(sv[0], buf, sizeof(buf), &i, &why), GH_BAD);
    close(sv[1]);
    assert_int_equal(read(sv[0], buf, sizeof(buf)), 16);
    assert_int_equal(gh_pp_recv(sv[0], buf, sizeof(buf), &i, &why), 0);
    close(sv[0]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_good), cmocka_unit_test(test_v1_bad),
        cmocka_unit_test(test_v2_good), cmocka_unit_test(test_v2_bad),
        cmocka_unit_test(test_write),   cmocka_unit_test(test_recv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
