/*
 * tls_int.h - private to src/net/tls*.c: a TLS connection's layer state and the per-context
 * data the callbacks read.
 */
#ifndef GH_NET_TLS_INT_H
#define GH_NET_TLS_INT_H

#include <openssl/ssl.h>
#include <pthread.h>

#include "net/tls.h"

/* session ticket keys: the first encrypts, all decrypt */
#define TLS_TICKET_KEYS 3
struct tls_tkey {
    unsigned char name[16];
    unsigned char hmac[32];
    unsigned char aes[32];
    int aes_bits; /* 128 or 256 */
    uint64_t created_s;
};

struct tls_keyset {
    pthread_mutex_t mu;
    struct tls_tkey k[TLS_TICKET_KEYS];
    uint32_t n;
    bool rotate; /* made here (rotated every session timeout), not read from files */
};

/* Attached to every SSL_CTX we make (ex_data, freed with it). */
struct tls_ctxdata {
    struct tls_keyset *keys; /* NULL: the process-wide rotating set */
    uint32_t timeout_s;
    unsigned char *ocsp; /* DER response to staple */
    size_t ocsp_len;
    char *ciphers; /* applied to a connection when SNI switches to this context */
    char *suites;
    bool client; /* a context to origins */
};

struct gh_tls_listen {
    int refs; /* atomic */
    SSL_CTX *dflt;
    struct gh_tls_sni *names; /* ctx references held */
    uint32_t n;
};

#define TLS_F_HS_DONE 0x01
#define TLS_F_RD_WANTS_WR 0x02 /* a receive waits for the socket to take bytes */
#define TLS_F_WR_WANTS_RD 0x04 /* a send waits for the peer's bytes (handshake) */
#define TLS_F_SOCK_EMPTY 0x08  /* a read came back short and no EPOLLIN since */
#define TLS_F_SHUT_PENDING 0x10
#define TLS_F_FAILED 0x20
#define TLS_F_CLIENT 0x40
#define TLS_F_SOCK_EOF 0x80   /* a read of the socket returned 0 (BIO_eof) */
#define TLS_F_GOT_BYTES 0x100 /* the peer sent something (a connect-and-close probe did not) */

struct tls_conn {
    struct gh_xprt_layer base;
    struct gh_xprt *x;
    SSL *ssl;
    struct gh_buf *pend;     /* ciphertext the socket has not taken */
    uint32_t pend_plain;     /* the caller's bytes whose records are all in pend */
    uint32_t flags;          /* TLS_F_* */
    int werr;                /* a write to the socket failed (errno) */
    int rerr;                /* a receive failed after returning bytes: the next one says so */
    struct gh_tls_listen *l; /* held until the handshake is over (server) */
    void **sess;             /* the peer's session slot (client) */
    char *client_dn;         /* made on first use */
    char err[120];           /* why the last operation failed */
};

extern int gh_tls_ex_conn;    /* SSL ex_data: struct tls_conn * */
extern int gh_tls_ex_ctxdata; /* SSL_CTX ex_data: struct tls_ctxdata * */

/* tls_ctx.c: set up the ex_data indexes and the BIO method once per process. */
void gh_tls_global_init(void);

#endif
