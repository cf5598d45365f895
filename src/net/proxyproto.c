/*
 * proxyproto.c - PROXY protocol v1 and v2 headers: parse (pure), write, and
 * read one off a socket without taking a byte past it.
 *
 * The specification: haproxy.org's proxy-protocol.txt (2.0).
 */
#include "net/proxyproto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/common.h"

static const char v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* ---- version 1: "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n" ---- */

/* One field of a v1 line: bytes up to the next space (or the end). */
static size_t
field_len(const char *p, size_t n)
{
    const char *sp = memchr(p, ' ', n);
    return sp != NULL ? (size_t)(sp - p) : n;
}

/* A port: 1..5 digits, no leading zero unless "0", at most 65535. -1 when invalid. */
static int
v1_port(const char *p, size_t n)
{
    if (n == 0 || n > 5 || (n > 1 && p[0] == '0'))
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v <= 65535 ? v : -1;
}

static int
v1_addr(const char *p, size_t n, int family, struct sockaddr_storage *ss)
{
    char tmp[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    memset(ss, 0, sizeof(*ss));
    ss->ss_family = (sa_family_t)family;
    void *dst = family == AF_INET ? (void *)&((struct sockaddr_in *)ss)->sin_addr
                                  : (void *)&((struct sockaddr_in6 *)ss)->sin6_addr;
    return inet_pton(family, tmp, dst) == 1 ? 0 : -1;
}

static void
set_port(struct sockaddr_storage *ss, int port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

/* The four fields after "TCP4 " / "TCP6 " in line[0..n) (the CRLF excluded). */
static int
v1_fields(const char *line, size_t n, int family, struct gh_pp_info *out, const char **why)
{
    const char *f[4];
    size_t fl[4];
    size_t at = 0;
    for (int i = 0; i < 4; i++) {
        if (at > n) {
            *why = "PROXY v1: too few fields";
            return GH_BAD;
        }
        f[i] = line + at;
        fl[i] = field_len(f[i], n - at);
        at += fl[i] + 1; /* the single space after it */
    }
    if (at != n + 1) {
        *why = "PROXY v1: too many fields or a double space";
        return GH_BAD;
    }
    if (v1_addr(f[0], fl[0], family, &out->src) != 0 ||
        v1_addr(f[1], fl[1], family, &out->dst) != 0) {
        *why = "PROXY v1: bad address for its family";
        return GH_BAD;
    }
    int sp = v1_port(f[2], fl[2]), dp = v1_port(f[3], fl[3]);
    if (sp < 0 || dp < 0) {
        *why = "PROXY v1: bad port";
        return GH_BAD;
    }
    set_port(&out->src, sp);
    set_port(&out->dst, dp);
    return 0;
}

static int
parse_v1(const char *p, size_t n, struct gh_pp_info *out, const char **why)
{
    static const char pfx[] = "PROXY ";
    size_t k = GH_MIN(n, sizeof(pfx) - 1);
    if (memcmp(p, pfx, k) != 0) {
        *why = "not a PROXY protocol header";
        return GH_BAD;
    }
    size_t lim = GH_MIN(n, (size_t)GH_PP_V1_MAX);
    const char *lf = memchr(p, '\n', lim);
    if (lf == NULL) {
        if (n >= GH_PP_V1_MAX) {
            *why = "PROXY v1: no CRLF within 107 bytes";
            return GH_BAD;
        }
        return GH_INCOMPLETE;
    }
    size_t len = (size_t)(lf - p) + 1;
    if (len < sizeof(pfx) + 1 || lf[-1] != '\r') {
        *why = "PROXY v1: line does not end with CRLF";
        return GH_BAD;
    }
    const char *proto = p + sizeof(pfx) - 1;
    size_t rest = len - 2 - (sizeof(pfx) - 1); /* up to the CR */
    if (memchr(proto, '\r', rest) != NULL || memchr(proto, '\0', rest) != NULL) {
        *why = "PROXY v1: stray CR or NUL";
        return GH_BAD;
    }
    out->version = 1;
    out->local = false;
    if (rest >= 7 && memcmp(proto, "UNKNOWN", 7) == 0 && (rest == 7 || proto[7] == ' ')) {
        out->local = true; /* the receiver ignores what follows (the specification) */
        return (int)len;
    }
    int family = 0;
    if (rest > 5 && memcmp(proto, "TCP4 ", 5) == 0)
        family = AF_INET;
    else if (rest > 5 && memcmp(proto, "TCP6 ", 5) == 0)
        family = AF_INET6;
    if (family == 0) {
        *why = "PROXY v1: protocol is not TCP4, TCP6 or UNKNOWN";
        return GH_BAD;
    }
    int rc = v1_fields(proto + 5, rest - 5, family, out, why);
    return rc != 0 ? rc : (int)len;
}

/* ---- version 2: binary ---- */

/* TLVs must exactly fill p[0..n): type (1), length (2, network order), value. */
static bool
tlvs_ok(const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (n < 3)
            return false;
        size_t l = (size_t)p[1] << 8 | p[2];
        if (l > n - 3)
            return false;
        p += 3 + l;
        n -= 3 + l;
    }
    return true;
}

/* The addresses of a v2 PROXY command with family fam at a[0..len). */
static int
v2_addrs(const uint8_t *a, size_t len, uint8_t fam, struct gh_pp_info *out, const char **why)
{
    uint8_t af = fam >> 4, tr = fam & 0x0f;
    if (af > 3 || tr > 2) {
        *why = "PROXY v2: unknown address family or transport";
        return GH_BAD;
    }
    if (af != 0 && tr != 1) {
        *why = "PROXY v2: not a stream transport";
        return GH_BAD;
    }
    static const size_t need[] = {0, 12, 36, 216};
    if (len < need[af]) {
        *why = "PROXY v2: length too short for the addresses";
        return GH_BAD;
    }
    if (!tlvs_ok(a + need[af], len - need[af])) {
        *why = "PROXY v2: malformed TLV";
        return GH_BAD;
    }
    if (af != 1 && af != 2) { /* UNSPEC, UNIX: the connection's own addresses stand */
        out->local = true;
        return 0;
    }
    memset(&out->src, 0, sizeof(out->src));
    memset(&out->dst, 0, sizeof(out->dst));
    if (af == 1) {
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src,
                           *d = (struct sockaddr_in *)&out->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&d->sin_addr, a + 4, 4);
        memcpy(&s->sin_port, a + 8, 2);
        memcpy(&d->sin_port, a + 10, 2);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src,
                            *d = (struct sockaddr_in6 *)&out->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
        memcpy(&d->sin6_addr, a + 16, 16);
        memcpy(&s->sin6_port, a + 32, 2);
        memcpy(&d->sin6_port, a + 34, 2);
    }
    return 0;
}

static int
parse_v2(const uint8_t *p, size_t n, struct gh_pp_info *out, const char **why)
{
    if (memcmp(p, v2_sig, GH_MIN(n, sizeof(v2_sig))) != 0) {
        *why = "not a PROXY protocol header";
        return GH_BAD;
    }
    if (n >= 13 && (p[12] >> 4) != 2) {
        *why = "PROXY v2: version is not 2";
        return GH_BAD;
    }
    if (n >= 13 && (p[12] & 0x0f) > 1) {
        *why = "PROXY v2: command is neither LOCAL nor PROXY";
        return GH_BAD;
    }
    if (n < 16)
        return GH_INCOMPLETE;
    size_t len = (size_t)p[14] << 8 | p[15];
    if (len > GH_PP_V2_MAX_LEN) {
        *why = "PROXY v2: header longer than 4096 bytes";
        return GH_BAD;
    }
    if (n < 16 + len)
        return GH_INCOMPLETE;
    out->version = 2;
    out->local = (p[12] & 0x0f) == 0;
    if (out->local) /* LOCAL (health checks): addresses and TLVs are skipped unread */
        return (int)(16 + len);
    int rc = v2_addrs(p + 16, len, p[13], out, why);
    return rc != 0 ? rc : (int)(16 + len);
}

int
gh_pp_parse(const char *p, size_t n, struct gh_pp_info *out, const char **why)
{
    *why = NULL;
    if (n == 0)
        return GH_INCOMPLETE;
    if (p[0] == 'P')
        return parse_v1(p, n, out, why);
    if (p[0] == v2_sig[0])
        return parse_v2((const uint8_t *)p, n, out, why);
    *why = "not a PROXY protocol header";
    return GH_BAD;
}

/* ---- writing ---- */

/* ss as plain IPv4 when it is an IPv4-mapped IPv6 address. */
static void
unmap(const struct sockaddr_storage *ss, struct sockaddr_storage *o)
{
    *o = *ss;
    if (ss->ss_family != AF_INET6)
        return;
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    if (!IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
        return;
    struct sockaddr_in *s4 = (struct sockaddr_in *)o;
    in_port_t port = s6->sin6_port;
    uint8_t a[4];
    memcpy(a, &s6->sin6_addr.s6_addr[12], 4);
    memset(o, 0, sizeof(*o));
    s4->sin_family = AF_INET;
    s4->sin_port = port;
    memcpy(&s4->sin_addr, a, 4);
}

static size_t
write_v1(char *buf, size_t cap, const struct sockaddr_storage *s, const struct sockaddr_storage *d)
{
    char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
    int fam = s->ss_family;
    if (fam != d->ss_family || (fam != AF_INET && fam != AF_INET6)) {
        static const char unk[] = "PROXY UNKNOWN\r\n";
        if (cap < sizeof(unk) - 1)
            return 0;
        memcpy(buf, unk, sizeof(unk) - 1);
        return sizeof(unk) - 1;
    }
    const void *sp = fam == AF_INET ? (const void *)&((const struct sockaddr_in *)s)->sin_addr
                                    : (const void *)&((const struct sockaddr_in6 *)s)->sin6_addr;
    const void *dp = fam == AF_INET ? (const void *)&((const struct sockaddr_in *)d)->sin_addr
                                    : (const void *)&((const struct sockaddr_in6 *)d)->sin6_addr;
    unsigned sport = ntohs(fam == AF_INET ? ((const struct sockaddr_in *)s)->sin_port
                                          : ((const struct sockaddr_in6 *)s)->sin6_port);
    unsigned dport = ntohs(fam == AF_INET ? ((const struct sockaddr_in *)d)->sin_port
                                          : ((const struct sockaddr_in6 *)d)->sin6_port);
    inet_ntop(fam, sp, sa, sizeof(sa));
    inet_ntop(fam, dp, da, sizeof(da));
    int k = snprintf(buf, cap, "PROXY TCP%c %s %s %u %u\r\n", fam == AF_INET ? '4' : '6', sa, da,
                     sport, dport);
    return k > 0 && (size_t)k < cap ? (size_t)k : 0;
}

static size_t
write_v2(char *buf, size_t cap, const struct sockaddr_storage *s, const struct sockaddr_storage *d)
{
    int fam = s->ss_family;
    bool proxy = fam == d->ss_family && (fam == AF_INET || fam == AF_INET6);
    size_t alen = !proxy ? 0 : fam == AF_INET ? 12 : 36;
    if (cap < 16 + alen)
        return 0;
    uint8_t *b = (uint8_t *)buf;
    memcpy(b, v2_sig, sizeof(v2_sig));
    b[12] = proxy ? 0x21 : 0x20;
    b[13] = !proxy ? 0x00 : fam == AF_INET ? 0x11 : 0x21;
    b[14] = 0;
    b[15] = (uint8_t)alen;
    if (fam == AF_INET && proxy) {
        const struct sockaddr_in *si = (const struct sockaddr_in *)s;
        const struct sockaddr_in *di = (const struct sockaddr_in *)d;
        memcpy(b + 16, &si->sin_addr, 4);
        memcpy(b + 20, &di->sin_addr, 4);
        memcpy(b + 24, &si->sin_port, 2);
        memcpy(b + 26, &di->sin_port, 2);
    } else if (proxy) {
        const struct sockaddr_in6 *si = (const struct sockaddr_in6 *)s;
        const struct sockaddr_in6 *di = (const struct sockaddr_in6 *)d;
        memcpy(b + 16, &si->sin6_addr, 16);
        memcpy(b + 32, &di->sin6_addr, 16);
        memcpy(b + 48, &si->sin6_port, 2);
        memcpy(b + 50, &di->sin6_port, 2);
    }
    return 16 + alen;
}

size_t
gh_pp_write(char *buf, size_t cap, int version, const struct sockaddr_storage *src,
            const struct sockaddr_storage *dst)
{
    struct sockaddr_storage s, d;
    unmap(src, &s);
    unmap(dst, &d);
    if (s.ss_family != d.ss_family) { /* one mapped, one not: as they are */
        s = *src;
        d = *dst;
    }
    return version == 2 ? write_v2(buf, cap, &s, &d) : write_v1(buf, cap, &s, &d);
}

/* ---- reading from a socket ---- */

int
gh_pp_recv(int fd, char *buf, size_t cap, struct gh_pp_info *out, const char **why)
{
    ssize_t n = recv(fd, buf, GH_MIN(cap, (size_t)GH_PP_MAX), MSG_PEEK);
    if (n == -1 && (errno == EAGAIN || errno == EINTR))
        return GH_AGAIN;
    if (n <= 0) {
        *why = n == 0 ? NULL : strerror(errno);
        return 0;
    }
    int rc = gh_pp_parse(buf, (size_t)n, out, why);
    if (rc == GH_INCOMPLETE)
        return GH_AGAIN;
    if (rc < 0)
        return rc;
    /* take exactly the header: what follows is the client's */
    ssize_t got = recv(fd, buf, (size_t)rc, 0);
    if (got != rc) {
        *why = "PROXY header could not be taken off the socket";
        return 0;
    }
    return rc;
}
