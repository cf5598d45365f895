/*
 * test_respond.c - the answer for a head that never became a request
 * (gh_respond_reject), byte for byte, and the client address as text
 * (gh_client_ip_str, whose IPv4 path is table driven).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <sys/socket.h>

#include "http/h1.h"
#include "proxy/exchange.h"
#include "proxy/respond.h"

#define WALL 1700000000
#define DATE "Tue, 14 Nov 2023 22:13:20 GMT"

static size_t head_len; /* gh_respond_reject's report of its head */

static void
print_escaped(const char *label, const char *p, size_t n)
{
    fprintf(stderr, "# %s (%zu): ", label, n);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r')
            fputs("\\r", stderr);
        else if (p[i] == '\n')
            fputs("\\n", stderr);
        else
            fputc(p[i], stderr);
    }
    fputc('\n', stderr);
}

static void
assert_bytes(const char *got, size_t len, const char *want)
{
    if (len != strlen(want) || memcmp(got, want, len) != 0) {
        print_escaped("want", want, strlen(want));
        print_escaped("got ", got, len);
        fail();
    }
}

#define PAGE(code_text)                                                                            \
    "<html>\r\n<head><title>" code_text "</title></head>\r\n<body>\r\n<center><h1>" code_text      \
    "</h1></center>\r\n<hr><center>gatehouse</center>\r\n</body>\r\n</html>\r\n"

static void
test_reject_400_exact_bytes(void **state)
{
    (void)state;
    char out[1024];
    size_t n = gh_respond_reject(out, sizeof(out), 400, WALL, &head_len);
    assert_bytes(out, n,
                 "HTTP/1.1 400 Bad Request\r\n"
                 "Server: gatehouse\r\n"
                 "Date: " DATE "\r\n"
                 "Content-Type: text/html\r\n"
                 "Content-Length: 154\r\n"
                 "Connection: close\r\n"
                 "\r\n" PAGE("400 Bad Request"));
    /* the declared length is the page's */
    assert_int_equal(sizeof(PAGE("400 Bad Request")) - 1, 154);
}

static void
test_reject_other_statuses(void **state)
{
    (void)state;
    char out[1024];
    size_t n = gh_respond_reject(out, sizeof(out), 431, WALL, &head_len);
    assert_bytes(out, n,
                 "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                 "Server: gatehouse\r\n"
                 "Date: " DATE "\r\n"
                 "Content-Type: text/html\r\n"
                 "Content-Length: 194\r\n"
                 "Connection: close\r\n"
                 "\r\n" PAGE("431 Request Header Fields Too Large"));
    /* every answer a head can get parses back as one response whose body is exactly the page */
    static const int statuses[] = {400, 408, 413, 414, 431, 501, 505};
    for (size_t i = 0; i < GH_ARRAY_LEN(statuses); i++) {
        n = gh_respond_reject(out, sizeof(out), statuses[i], WALL, &head_len);
        assert_true(n > 0);
        struct gh_h1_header h[16];
        struct gh_h1_response rs = {.headers = h, .max_headers = 16};
        struct gh_h1_limits lim = {0, 8192, 16, 8192};
        int hl = gh_h1_parse_response(out, n, &rs, &lim);
        assert_int_equal((size_t)hl, head_len); /* the head length it reports */
        assert_true(hl > 0);
        assert_int_equal(rs.status, statuses[i]);
        assert_true(rs.flags & GH_H1_F_CONN_CLOSE);
        assert_true(rs.flags & GH_H1_F_HAS_CL);
        assert_int_equal(rs.content_length, (int64_t)n - hl);
        char title[64];
        snprintf(title, sizeof(title), "<title>%d %s</title>", statuses[i],
                 gh_h1_reason(statuses[i]));
        assert_non_null(strstr(out + hl, title));
    }
}

static void
test_reject_does_not_fit(void **state)
{
    (void)state;
    char full[1024];
    size_t n = gh_respond_reject(full, sizeof(full), 400, WALL, &head_len);
    assert_true(n > 0);
    for (size_t cap = 0; cap < n; cap++) {
        char *buf = malloc(cap + 1); /* exactly cap bytes: ASan sees a write past them */
        size_t got = gh_respond_reject(buf, cap, 400, WALL, &head_len);
        free(buf);
        assert_int_equal(got, 0);
    }
    char *buf = malloc(n);
    size_t got = gh_respond_reject(buf, n, 400, WALL, &head_len);
    int same = got == n && memcmp(buf, full, n) == 0;
    free(buf);
    assert_true(same);
}

static struct gh_client_addr
v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    struct gh_client_addr ca = {.family = AF_INET};
    ca.ip[0] = a;
    ca.ip[1] = b;
    ca.ip[2] = c;
    ca.ip[3] = d;
    return ca;
}

static struct gh_client_addr
v6(const char *text)
{
    struct gh_client_addr ca = {.family = AF_INET6};
    assert_int_equal(inet_pton(AF_INET6, text, ca.ip), 1);
    return ca;
}

/* Format a into a buffer of exactly cap bytes; want NULL: must fail (0). */
static void
expect_ip(const struct gh_client_addr *a, size_t cap, const char *want)
{
    char *buf = malloc(cap);
    size_t n = gh_client_ip_str(a, buf, cap);
    char copy[64] = "";
    if (n > 0 && n < sizeof(copy))
        memcpy(copy, buf, n + 1);
    free(buf);
    if (want == NULL) {
        assert_int_equal(n, 0);
        return;
    }
    assert_int_equal(n, strlen(want));
    assert_string_equal(copy, want); /* NUL-terminated */
}

static void
test_client_ip_str(void **state)
{
    (void)state;
    struct gh_client_addr a;
    a = v4(0, 0, 0, 0);
    expect_ip(&a, 64, "0.0.0.0");
    a = v4(255, 255, 255, 255);
    expect_ip(&a, 64, "255.255.255.255");
    expect_ip(&a, 16, "255.255.255.255"); /* the exact room */
    expect_ip(&a, 15, NULL);
    a = v4(10, 1, 22, 3);
    expect_ip(&a, 16, "10.1.22.3");
    expect_ip(&a, 10, "10.1.22.3");
    expect_ip(&a, 9, NULL);
    a = v4(192, 168, 100, 9);
    expect_ip(&a, 64, "192.168.100.9");
    /* every octet value, in every position */
    for (int v = 0; v < 256; v++) {
        char want[32];
        a = v4((uint8_t)v, (uint8_t)(255 - v), (uint8_t)(v / 2), (uint8_t)(v % 10));
        snprintf(want, sizeof(want), "%d.%d.%d.%d", v, 255 - v, v / 2, v % 10);
        expect_ip(&a, 16, want);
    }
    a = v6("::1");
    expect_ip(&a, 64, "::1");
    expect_ip(&a, 4, "::1");
    expect_ip(&a, 3, NULL);
    a = v6("2001:db8::1");
    expect_ip(&a, 46, "2001:db8::1");
    a = v6("::ffff:1.2.3.4");
    expect_ip(&a, 46, "::ffff:1.2.3.4");
    a = v6("fe80::1:2:3:4");
    expect_ip(&a, 46, "fe80::1:2:3:4");
    /* not an IP family */
    struct gh_client_addr none = {.family = AF_UNIX};
    expect_ip(&none, 64, NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reject_400_exact_bytes),
        cmocka_unit_test(test_reject_other_statuses),
        cmocka_unit_test(test_reject_does_not_fit),
        cmocka_unit_test(test_client_ip_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
