/*
 * fuzz_tls_server.c - libFuzzer target for the server side of the TLS layer
 * (net/tls.c, net/tls_ctx.c): whatever a client sends before and during a
 * handshake. The input is what the client writes, cut into pieces at 0xff
 * 0x00 markers so that records and ClientHellos arrive split across reads; the
 * layer reads it through its own BIO from a socketpair, as an accepted
 * connection does, with SNI names on the listener (exact and wildcard, so the
 * ClientHello callback's SNI parsing runs) and client certificates optional.
 *
 * Checked: nothing crashes, leaks or stalls (every receive makes progress or
 * says GH_AGAIN with CAN_READ cleared, the contract of xprt.h), and OpenSSL's
 * per-thread error queue is left empty. The certificate is made in-process once
 * (nothing secret in the corpus or the tree).
 */
#include <fcntl.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static struct gh_tls_listen *listen_tbl;

static void
report(void *arg, enum gh_tls_item item, uint32_t idx, bool warning, const char *msg)
{
    (void)arg;
    (void)item;
    (void)idx;
    if (!warning) {
        fprintf(stderr, "fuzz_tls_server: context: %s\n", msg);
        abort();
    }
}

/* A self-signed P-256 certificate for name, written as PEM files in dir. */
static void
make_cert(const char *dir, const char *name, char *cert, char *key, size_t cap)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    CHECK(pk != NULL && x != NULL);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_set_pubkey(x, pk);
    CHECK(X509_sign(x, pk, EVP_sha256()) > 0);
    snprintf(cert, cap, "%s/%s.pem", dir, name);
    snprintf(key, cap, "%s/%s.key", dir, name);
    FILE *f = fopen(cert, "w");
    CHECK(f != NULL && PEM_write_X509(f, x) == 1);
    fclose(f);
    f = fopen(key, "w");
    CHECK(f != NULL && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(pk);
}

static struct gh_tls_ctx *
server_ctx(const char *cert, const char *key, const char *ca)
{
    const char *certs[1] = {cert}, *keys[1] = {key};
    struct gh_tls_server_opts o = {
        .certs = certs,
        .keys = keys,
        .n_certs = 1,
        .protocols = GH_TLS_V12 | GH_TLS_V13,
        .prefer_server = true,
        .session_cache = 100,
        .session_timeout_s = 300,
        .tickets = true,
        .client_ca = ca,
        .verify_client = ca != NULL ? GH_TLS_VERIFY_OPTIONAL : GH_TLS_VERIFY_OFF,
        .verify_depth = 1,
    };
    struct gh_tls_ctx *c = gh_tls_server_ctx_new(&o, report, NULL);
    CHECK(c != NULL);
    return c;
}

static void
setup(void)
{
    char dir[] = "/tmp/gh-fuzz-tls-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char c1[256], k1[256], c2[256], k2[256];
    make_cert(dir, "a.test", c1, k1, sizeof(c1));
    make_cert(dir, "b.test", c2, k2, sizeof(c2));
    struct gh_tls_ctx *a = server_ctx(c1, k1, NULL);
    struct gh_tls_ctx *b = server_ctx(c2, k2, c1);
    struct gh_tls_sni names[2] = {{"a.test", 6, false, a}, {".b.test", 7, true, b}};
    listen_tbl = gh_tls_listen_new(a, names, 2);
    CHECK(listen_tbl != NULL);
    gh_tls_ctx_free(a); /* the table holds its own references */
    gh_tls_ctx_free(b);
    unlink(c1), unlink(k1), unlink(c2), unlink(k2), rmdir(dir);
}

/* Receive what was sent (one readiness event): every call moves bytes or says why it cannot. */
static void
drain(struct gh_xprt *x, char *buf, size_t cap)
{
    gh_xprt_on_events(x, EPOLLIN | EPOLLOUT);
    for (int i = 0; i < 64 && gh_xprt_is(x, GH_XPRT_CAN_READ); i++) {
        ssize_t r = gh_xprt_recv(x, buf, cap);
        if (r == GH_AGAIN) {
            CHECK(!gh_xprt_is(x, GH_XPRT_CAN_READ));
            return;
        }
        if (r <= 0)
            return;
        /* a request came through a finished handshake: answer it, as the server would */
        struct iovec iov = {(void *)"HTTP/1.1 200 OK\r\n\r\n", 19};
        CHECK(gh_xprt_sendv(x, &iov, 1, iov.iov_len) >= 0);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (listen_tbl == NULL)
        setup();
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    struct gh_xprt x;
    gh_xprt_init(&x, sv[0], NULL, GH_XPRT_CAN_WRITE);
    CHECK(gh_tls_accept(&x, listen_tbl) == 0);
    char buf[4096];
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        bool cut = i == size || (i + 1 < size && data[i] == 0xff && data[i + 1] == 0x00);
        if (!cut)
            continue;
        if (i > start) {
            ssize_t w = write(sv[1], data + start, i - start);
            (void)w; /* a full socket drops the rest: a client that sends too much */
        }
        drain(&x, buf, sizeof(buf));
        char sink[4096]; /* what the server sent: read and dropped */
        while (read(sv[1], sink, sizeof(sink)) > 0) {
        }
        start = i + 2;
        i++;
    }
    shutdown(sv[1], SHUT_WR);
    drain(&x, buf, sizeof(buf));
    gh_xprt_close(&x);
    close(sv[1]);
    CHECK(ERR_peek_error() == 0);
    return 0;
}
