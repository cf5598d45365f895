/*
 * tls_ctx.c - TLS contexts: built when a config loads (main thread), used by
 * every worker thread. Certificates and keys, protocols and ciphers, the
 * session cache and tickets (keys shared by all threads and contexts, rotated
 * here unless read from files), OCSP stapling, client certificates, SNI (the
 * listener's name table switches the context), ALPN, and the client side to
 * origins (verification, client certificate, sessions kept per peer).
 */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"
#include "net/tls_int.h"

int gh_tls_ex_conn = -1;
int gh_tls_ex_ctxdata = -1;

/* Mozilla's "intermediate" TLS 1.2 list: forward secrecy and AEAD only */
#define DEFAULT_CIPHERS                                                                            \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define SID_CTX "gatehouse"

static struct tls_keyset rotating = {.mu = PTHREAD_MUTEX_INITIALIZER, .rotate = true};

static void
ctxdata_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    struct tls_ctxdata *d = ptr;
    if (d == NULL)
        return;
    if (d->keys != NULL) {
        pthread_mutex_destroy(&d->keys->mu);
        OPENSSL_cleanse(d->keys, sizeof(*d->keys));
        free(d->keys);
    }
    free(d->ocsp);
    free(d->ciphers);
    free(d->suites);
    free(d);
}

static void
global_init_once(void)
{
    gh_tls_ex_conn = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    gh_tls_ex_ctxdata = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctxdata_free);
}

void
gh_tls_global_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init_once);
}

void
gh_tls_ctx_free(void *ctx)
{
    SSL_CTX_free(ctx);
}

/* The reason of OpenSSL's last error ("no start line"), cleared. */
static const char *
ossl_reason(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, cap, "%s", r != NULL ? r : "unknown error");
    ERR_clear_error();
    return buf;
}

/* Report that path cannot be read (with errno's words) and return false; true if it can. */
static bool
readable(const char *path, enum gh_tls_item item, uint32_t idx, gh_tls_report_fn rep, void *arg)
{
    char msg[512];
    struct stat st;
    FILE *f = fopen(path, "r");
    if (f != NULL && fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        snprintf(msg, sizeof(msg), "cannot read '%s': it is a directory", path);
        rep(arg, item, idx, false, msg);
        return false;
    }
    if (f != NULL) {
        fclose(f);
        return true;
    }
    snprintf(msg, sizeof(msg), "cannot read '%s': %s", path, strerror(errno));
    rep(arg, item, idx, false, msg);
    return false;
}

/* Why a PEM file did not load, in words for a config's author; NULL when the key is not the
 * certificate's (the caller says that). OpenSSL's error queue is emptied. */
static const char *
pem_reason(char *buf, size_t cap)
{
    bool no_start = false, pem = false, mismatch = false;
    const char *last = NULL;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        int r = ERR_GET_REASON(e);
        no_start = no_start || (ERR_GET_LIB(e) == ERR_LIB_PEM && r == PEM_R_NO_START_LINE);
        pem = pem || ERR_GET_LIB(e) == ERR_LIB_PEM;
        mismatch = mismatch || r == X509_R_KEY_VALUES_MISMATCH;
        if (last == NULL)
            last = ERR_reason_error_string(e);
    }
    if (mismatch)
        return NULL;
    if (no_start)
        snprintf(buf, cap, "not a PEM file of that kind (no BEGIN line for it)");
    else if (pem)
        snprintf(buf, cap, "bad PEM data (%s)", last != NULL ? last : "?");
    else
        snprintf(buf, cap, "%s", last != NULL ? last : "unknown error");
    return buf;
}

/* ---- session tickets ---- */

static uint64_t
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec;
}

static void
key_make(struct tls_tkey *k)
{
    RAND_bytes(k->name, sizeof(k->name));
    RAND_bytes(k->hmac, sizeof(k->hmac));
    RAND_bytes(k->aes, sizeof(k->aes));
    k->aes_bits = 256;
    k->created_s = now_s();
}

/* Made keys: a new one every timeout, the two before it still decrypt. Called locked. */
static void
keys_rotate(struct tls_keyset *ks, uint32_t timeout_s)
{
    uint64_t now = now_s();
    if (ks->n > 0 && now - ks->k[0].created_s < timeout_s)
        return;
    memmove(&ks->k[1], &ks->k[0], (TLS_TICKET_KEYS - 1) * sizeof(ks->k[0]));
    key_make(&ks->k[0]);
    if (ks->n < TLS_TICKET_KEYS)
        ks->n++;
}

static int
set_mac(EVP_MAC_CTX *hctx, unsigned char *key)
{
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params);
}

static int
ticket_cb(SSL *s, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *ectx,
          EVP_MAC_CTX *hctx, int enc)
{
    struct tls_ctxdata *d = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), gh_tls_ex_ctxdata);
    struct tls_keyset *ks = d != NULL && d->keys != NULL ? d->keys : &rotating;
    struct tls_tkey k;
    int rc = 1;
    pthread_mutex_lock(&ks->mu);
    if (ks->rotate)
        keys_rotate(ks, d != NULL && d->timeout_s > 0 ? d->timeout_s : 3600);
    if (enc) {
        k = ks->k[0];
    } else {
        uint32_t i = 0;
        while (i < ks->n && memcmp(ks->k[i].name, name, 16) != 0)
            i++;
        if (i == ks->n) {
            pthread_mutex_unlock(&ks->mu);
            return 0; /* unknown key: a full handshake */
        }
        k = ks->k[i];
        /* 2: decrypt and issue a new ticket: under an older key, and always in TLS 1.3,
         * whose clients use a ticket once (without a new one every other connection would
         * be a full handshake) */
        rc = i == 0 && SSL_version(s) != TLS1_3_VERSION ? 1 : 2;
    }
    pthread_mutex_unlock(&ks->mu);
    const EVP_CIPHER *c = k.aes_bits == 128 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
    if (enc) {
        memcpy(name, k.name, 16);
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(c)) != 1 ||
            EVP_EncryptInit_ex(ectx, c, NULL, k.aes, iv) != 1)
            rc = -1;
    } else if (EVP_DecryptInit_ex(ectx, c, NULL, k.aes, iv) != 1) {
        rc = -1;
    }
    if (rc > 0 && set_mac(hctx, k.hmac) != 1)
        rc = -1;
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}

/* Ticket keys from files of 80 bytes (name, HMAC key, AES-256 key) or 48 (AES-128), as nginx's
 * ssl_session_ticket_key reads them. NULL after reporting. */
static struct tls_keyset *
keys_load(const struct gh_tls_server_opts *o, gh_tls_report_fn rep, void *arg)
{
    struct tls_keyset *ks = calloc(1, sizeof(*ks));
    if (ks == NULL)
        return NULL;
    pthread_mutex_init(&ks->mu, NULL);
    for (uint32_t i = 0; i < o->n_ticket_keys && i < TLS_TICKET_KEYS; i++) {
        char msg[512];
        unsigned char buf[81];
        FILE *f = fopen(o->ticket_keys[i], "rb");
        size_t n = f != NULL ? fread(buf, 1, sizeof(buf), f) : 0;
        if (f == NULL) {
            snprintf(msg, sizeof(msg), "cannot read '%s': %s", o->ticket_keys[i], strerror(errno));
        } else if (n != 80 && n != 48) {
            snprintf(msg, sizeof(msg), "'%s' must hold 80 or 48 bytes, not %s", o->ticket_keys[i],
                     n > 80 ? "more" : "fewer");
        }
        if (f != NULL)
            fclose(f);
        if (f == NULL || (n != 80 && n != 48)) {
            rep(arg, GH_TLS_I_TICKET_KEY, i, false, msg);
            pthread_mutex_destroy(&ks->mu);
            free(ks);
            return NULL;
        }
        struct tls_tkey *k = &ks->k[ks->n++];
        size_t half = n == 80 ? 32 : 16;
        memcpy(k->name, buf, 16);
        memcpy(k->hmac, buf + 16, half);
        memcpy(k->aes, buf + 16 + half, half);
        k->aes_bits = n == 80 ? 256 : 128;
        OPENSSL_cleanse(buf, sizeof(buf));
    }
    if (o->n_ticket_keys > TLS_TICKET_KEYS)
        rep(arg, GH_TLS_I_TICKET_KEY, TLS_TICKET_KEYS, true,
            "only the first 3 ticket keys are used");
    return ks;
}

/* ---- stapling, SNI, ALPN ---- */

static int
status_cb(SSL *s, void *arg)
{
    struct tls_ctxdata *d = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), gh_tls_ex_ctxdata);
    if (d == NULL || d->ocsp == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    unsigned char *copy = OPENSSL_malloc(d->ocsp_len);
    if (copy == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    memcpy(copy, d->ocsp, d->ocsp_len);
    SSL_set_tlsext_status_ocsp_resp(s, copy, (long)d->ocsp_len);
    return SSL_TLSEXT_ERR_OK;
}

static bool
ocsp_load(struct tls_ctxdata *d, const char *path, gh_tls_report_fn rep, void *arg)
{
    char msg[512];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(msg, sizeof(msg), "cannot read '%s': %s", path, strerror(errno));
        rep(arg, GH_TLS_I_OCSP, 0, false, msg);
        return false;
    }
    d->ocsp = malloc(65536);
    size_t n = d->ocsp != NULL ? fread(d->ocsp, 1, 65536, f) : 0;
    fclose(f);
    const unsigned char *p = d->ocsp;
    OCSP_RESPONSE *r = n > 0 && n < 65536 ? d2i_OCSP_RESPONSE(NULL, &p, (long)n) : NULL;
    if (r == NULL) {
        snprintf(msg, sizeof(msg), "'%s' is not a DER-encoded OCSP response", path);
        rep(arg, GH_TLS_I_OCSP, 0, false, msg);
        ERR_clear_error();
        return false;
    }
    OCSP_RESPONSE_free(r);
    d->ocsp_len = n;
    return true;
}

/* The SNI host name in a ClientHello's server_name extension (RFC 6066 3), or false. */
static bool
hello_sni(SSL *s, const char **name, size_t *len)
{
    const unsigned char *p;
    size_t n;
    if (SSL_client_hello_get0_ext(s, TLSEXT_TYPE_server_name, &p, &n) != 1 || n < 5)
        return false;
    size_t list = (size_t)p[0] << 8 | p[1];
    if (list + 2 != n || p[2] != TLSEXT_NAMETYPE_host_name)
        return false;
    size_t nl = (size_t)p[3] << 8 | p[4];
    if (nl == 0 || nl + 5 > n)
        return false;
    *name = (const char *)p + 5;
    *len = nl;
    return true;
}

/* The context of the server that name selects on l: exact, then wildcards, else NULL. */
static SSL_CTX *
sni_find(const struct gh_tls_listen *l, const char *name, size_t len)
{
    while (len > 0 && name[len - 1] == '.')
        len--;
    for (uint32_t i = 0; i < l->n; i++) {
        const struct gh_tls_sni *e = &l->names[i];
        if (!e->wildcard ? (e->len == len && strncasecmp(e->name, name, len) == 0)
                         : (len > e->len && strncasecmp(e->name, name + len - e->len, e->len) == 0))
            return (SSL_CTX *)e->ctx;
    }
    return NULL;
}

/*
 * Switch to the context of the server named by SNI, before OpenSSL looks at anything else in
 * the ClientHello: so that server's protocols, ciphers, client-certificate rule, ticket keys and
 * session id context decide (a session made for another server is not resumed here: it could
 * skip a client certificate this server requires). The default server's stays otherwise.
 */
static int
hello_cb(SSL *s, int *alert, void *arg)
{
    struct tls_conn *t = SSL_get_ex_data(s, gh_tls_ex_conn);
    const char *name;
    size_t len;
    if (t == NULL || t->l == NULL || !hello_sni(s, &name, &len))
        return SSL_CLIENT_HELLO_SUCCESS;
    SSL_CTX *ctx = sni_find(t->l, name, len);
    if (ctx == NULL || ctx == SSL_get_SSL_CTX(s))
        return SSL_CLIENT_HELLO_SUCCESS;
    SSL_set_SSL_CTX(s, ctx);
    /* what SSL_set_SSL_CTX leaves as the default context set it */
    SSL_set_verify(s, SSL_CTX_get_verify_mode(ctx), SSL_CTX_get_verify_callback(ctx));
    SSL_set_verify_depth(s, SSL_CTX_get_verify_depth(ctx));
    SSL_clear_options(s, SSL_get_options(s) ^ SSL_CTX_get_options(ctx));
    SSL_set_options(s, SSL_CTX_get_options(ctx));
    SSL_set_min_proto_version(s, SSL_CTX_get_min_proto_version(ctx));
    SSL_set_max_proto_version(s, SSL_CTX_get_max_proto_version(ctx));
    struct tls_ctxdata *d = SSL_CTX_get_ex_data(ctx, gh_tls_ex_ctxdata);
    if (d != NULL && d->ciphers != NULL)
        SSL_set_cipher_list(s, d->ciphers);
    if (d != NULL && d->suites != NULL)
        SSL_set_ciphersuites(s, d->suites);
    return SSL_CLIENT_HELLO_SUCCESS;
}

static const unsigned char alpn_ours[] = "\x08http/1.1";

static int
alpn_cb(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
        unsigned inlen, void *arg)
{
    unsigned char *o;
    if (SSL_select_next_proto(&o, outlen, alpn_ours, sizeof(alpn_ours) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* nothing in common: go on without ALPN */
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

/* ---- server contexts ---- */

static bool
load_pairs(SSL_CTX *ctx, const struct gh_tls_server_opts *o, gh_tls_report_fn rep, void *arg)
{
    char msg[600], why[200];
    for (uint32_t i = 0; i < o->n_certs; i++) {
        if (!readable(o->certs[i], GH_TLS_I_CERT, i, rep, arg) ||
            !readable(o->keys[i], GH_TLS_I_KEY, i, rep, arg))
            return false;
        if (SSL_CTX_use_certificate_chain_file(ctx, o->certs[i]) != 1) {
            const char *r = pem_reason(why, sizeof(why));
            snprintf(msg, sizeof(msg), "cannot load certificate '%s': %s", o->certs[i],
                     r != NULL ? r : "unusable");
            rep(arg, GH_TLS_I_CERT, i, false, msg);
            return false;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, o->keys[i], SSL_FILETYPE_PEM) != 1) {
            const char *r = pem_reason(why, sizeof(why));
            if (r != NULL)
                snprintf(msg, sizeof(msg), "cannot load key '%s': %s", o->keys[i], r);
            else
                snprintf(msg, sizeof(msg), "key '%s' does not match certificate '%s'", o->keys[i],
                         o->certs[i]);
            rep(arg, GH_TLS_I_KEY, i, false, msg);
            return false;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            ERR_clear_error();
            snprintf(msg, sizeof(msg), "key '%s' does not match certificate '%s'", o->keys[i],
                     o->certs[i]);
            rep(arg, GH_TLS_I_KEY, i, false, msg);
            return false;
        }
        X509 *x = SSL_CTX_get0_certificate(ctx);
        const ASN1_TIME *na = x != NULL ? X509_get0_notAfter(x) : NULL;
        if (na != NULL && X509_cmp_current_time(na) < 0) {
            char date[64] = "?";
            BIO *m = BIO_new(BIO_s_mem());
            if (m != NULL && ASN1_TIME_print(m, na) == 1) {
                int n = BIO_read(m, date, sizeof(date) - 1);
                date[n > 0 ? n : 0] = '\0';
            }
            BIO_free(m);
            snprintf(msg, sizeof(msg), "certificate '%s' expired on %s", o->certs[i], date);
            rep(arg, GH_TLS_I_CERT, i, true, msg);
        }
    }
    return true;
}

static bool
set_protocols(SSL_CTX *ctx, unsigned protocols)
{
    int lo = protocols & GH_TLS_V12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    int hi = protocols & GH_TLS_V13 ? TLS1_3_VERSION : TLS1_2_VERSION;
    return SSL_CTX_set_min_proto_version(ctx, lo) == 1 &&
           SSL_CTX_set_max_proto_version(ctx, hi) == 1;
}

static bool
set_ciphers(SSL_CTX *ctx, struct tls_ctxdata *d, const struct gh_tls_server_opts *o,
            gh_tls_report_fn rep, void *arg)
{
    char msg[600], why[200];
    const char *c = o->ciphers != NULL ? o->ciphers : DEFAULT_CIPHERS;
    if (SSL_CTX_set_cipher_list(ctx, c) != 1) {
        snprintf(msg, sizeof(msg), "invalid cipher list '%s': %s", c,
                 ossl_reason(why, sizeof(why)));
        rep(arg, GH_TLS_I_CIPHERS, 0, false, msg);
        return false;
    }
    if (o->ciphersuites != NULL && SSL_CTX_set_ciphersuites(ctx, o->ciphersuites) != 1) {
        snprintf(msg, sizeof(msg), "invalid TLS 1.3 cipher suites '%s': %s", o->ciphersuites,
                 ossl_reason(why, sizeof(why)));
        rep(arg, GH_TLS_I_SUITES, 0, false, msg);
        return false;
    }
    d->ciphers = strdup(c);
    d->suites = o->ciphersuites != NULL ? strdup(o->ciphersuites) : NULL;
    return true;
}

static bool
set_client_ca(SSL_CTX *ctx, const struct gh_tls_server_opts *o, gh_tls_report_fn rep, void *arg)
{
    char msg[600], why[200];
    if (o->client_ca == NULL || o->verify_client == GH_TLS_VERIFY_OFF)
        return true;
    if (!readable(o->client_ca, GH_TLS_I_CLIENT_CA, 0, rep, arg))
        return false;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->client_ca);
    if (names == NULL || SSL_CTX_load_verify_locations(ctx, o->client_ca, NULL) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        snprintf(msg, sizeof(msg), "cannot load CA certificates from '%s': %s", o->client_ca,
                 ossl_reason(why, sizeof(why)));
        rep(arg, GH_TLS_I_CLIENT_CA, 0, false, msg);
        return false;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    int mode = SSL_VERIFY_PEER;
    if (o->verify_client == GH_TLS_VERIFY_ON)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, NULL);
    SSL_CTX_set_verify_depth(ctx, (int)o->verify_depth);
    return true;
}

static SSL_CTX *
ctx_base(bool client)
{
    gh_tls_global_init();
    SSL_CTX *ctx = SSL_CTX_new(client ? TLS_client_method() : TLS_server_method());
    struct tls_ctxdata *d = ctx != NULL ? calloc(1, sizeof(*d)) : NULL;
    if (d == NULL) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_ex_data(ctx, gh_tls_ex_ctxdata, d);
    d->client = client;
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_read_ahead(ctx, 1);
    return ctx;
}

/* A session id context per set of settings that decide who may resume (certificates, client
 * CAs and their rule): a session is resumed only by a server of the same settings. */
static void
set_sid_ctx(SSL_CTX *ctx, const struct gh_tls_server_opts *o)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    bool ok = m != NULL && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1;
    for (uint32_t i = 0; ok && i < o->n_certs; i++)
        ok = EVP_DigestUpdate(m, o->certs[i], strlen(o->certs[i]) + 1) == 1;
    char rule[64];
    snprintf(rule, sizeof(rule), "|%d|%u|", (int)o->verify_client, o->verify_depth);
    ok = ok && EVP_DigestUpdate(m, rule, strlen(rule)) == 1;
    if (ok && o->client_ca != NULL)
        ok = EVP_DigestUpdate(m, o->client_ca, strlen(o->client_ca)) == 1;
    ok = ok && EVP_DigestFinal_ex(m, md, &mdlen) == 1;
    EVP_MD_CTX_free(m);
    if (ok && mdlen >= SSL_MAX_SID_CTX_LENGTH)
        SSL_CTX_set_session_id_context(ctx, md, SSL_MAX_SID_CTX_LENGTH);
    else
        SSL_CTX_set_session_id_context(ctx, (const unsigned char *)SID_CTX, sizeof(SID_CTX) - 1);
}

static void
server_sessions(SSL_CTX *ctx, struct tls_ctxdata *d, const struct gh_tls_server_opts *o)
{
    d->timeout_s = o->session_timeout_s;
    set_sid_ctx(ctx, o);
    SSL_CTX_set_timeout(ctx, (long)o->session_timeout_s);
    if (o->session_cache > 0) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, (long)o->session_cache);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    if (o->tickets) {
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
        SSL_CTX_set_num_tickets(ctx, 1);
    } else {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        if (o->session_cache == 0)
            SSL_CTX_set_num_tickets(ctx, 0);
    }
}

struct gh_tls_ctx *
gh_tls_server_ctx_new(const struct gh_tls_server_opts *o, gh_tls_report_fn rep, void *arg)
{
    SSL_CTX *ctx = ctx_base(false);
    if (ctx == NULL) {
        rep(arg, GH_TLS_I_OTHER, 0, false, "cannot create a TLS context (out of memory)");
        return NULL;
    }
    struct tls_ctxdata *d = SSL_CTX_get_ex_data(ctx, gh_tls_ex_ctxdata);
    if (o->prefer_server)
        SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    bool ok = set_protocols(ctx, o->protocols) && set_ciphers(ctx, d, o, rep, arg) &&
              load_pairs(ctx, o, rep, arg) && set_client_ca(ctx, o, rep, arg);
    if (ok && o->n_ticket_keys > 0 && o->tickets)
        ok = (d->keys = keys_load(o, rep, arg)) != NULL;
    if (ok && o->ocsp_file != NULL) {
        ok = ocsp_load(d, o->ocsp_file, rep, arg);
        SSL_CTX_set_tlsext_status_cb(ctx, status_cb);
    }
    if (!ok) {
        SSL_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    server_sessions(ctx, d, o);
    SSL_CTX_set_client_hello_cb(ctx, hello_cb, NULL);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    return (struct gh_tls_ctx *)ctx;
}

/* ---- listeners ---- */

struct gh_tls_listen *
gh_tls_listen_new(struct gh_tls_ctx *dflt, const struct gh_tls_sni *names, uint32_t n)
{
    struct gh_tls_listen *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->names = calloc(n + 1, sizeof(*l->names));
    if (l->names == NULL) {
        free(l);
        return NULL;
    }
    l->refs = 1;
    l->dflt = (SSL_CTX *)dflt;
    SSL_CTX_up_ref(l->dflt);
    for (uint32_t i = 0; i < n; i++) {
        /* a copy: a connection holds the table until its handshake ends, which may be after
         * a reload freed the config the names came from */
        char *copy = strndup(names[i].name, names[i].len);
        if (copy == NULL) {
            gh_tls_listen_unref(l);
            return NULL;
        }
        l->names[i] = names[i];
        l->names[i].name = copy;
        SSL_CTX_up_ref((SSL_CTX *)names[i].ctx);
        l->n = i + 1;
    }
    return l;
}

void
gh_tls_listen_unref(void *p)
{
    struct gh_tls_listen *l = p;
    if (l == NULL || __atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    for (uint32_t i = 0; i < l->n; i++) {
        SSL_CTX_free((SSL_CTX *)l->names[i].ctx);
        free((char *)l->names[i].name);
    }
    SSL_CTX_free(l->dflt);
    free(l->names);
    free(l);
}

/* ---- client contexts ---- */

/* A new session from an origin: kept in the peer's slot for the next connection. */
static int
new_session_cb(SSL *s, SSL_SESSION *sess)
{
    struct tls_conn *t = SSL_get_ex_data(s, gh_tls_ex_conn);
    if (t == NULL || t->sess == NULL)
        return 0;
    SSL_SESSION_free(*t->sess);
    *t->sess = sess;
    return 1; /* we keep the reference */
}

struct gh_tls_ctx *
gh_tls_client_ctx_new(const struct gh_tls_client_opts *o, gh_tls_report_fn rep, void *arg)
{
    char msg[600], why[200];
    SSL_CTX *ctx = ctx_base(true);
    if (ctx == NULL) {
        rep(arg, GH_TLS_I_OTHER, 0, false, "cannot create a TLS context (out of memory)");
        return NULL;
    }
    bool ok = set_protocols(ctx, GH_TLS_V12 | GH_TLS_V13);
    if (ok && o->ca_file != NULL) {
        ok = readable(o->ca_file, GH_TLS_I_CLIENT_CA, 0, rep, arg);
        if (ok && SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1) {
            snprintf(msg, sizeof(msg), "cannot load CA certificates from '%s': %s", o->ca_file,
                     ossl_reason(why, sizeof(why)));
            rep(arg, GH_TLS_I_CLIENT_CA, 0, false, msg);
            ok = false;
        }
    } else if (ok && o->verify) {
        SSL_CTX_set_default_verify_paths(ctx);
    }
    if (ok && o->cert != NULL) {
        const char *certs[1] = {o->cert}, *keys[1] = {o->key};
        struct gh_tls_server_opts so = {.certs = certs, .keys = keys, .n_certs = 1};
        ok = load_pairs(ctx, &so, rep, arg);
    }
    if (!ok) {
        SSL_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    SSL_CTX_set_verify(ctx, o->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    SSL_CTX_set_alpn_protos(ctx, alpn_ours, sizeof(alpn_ours) - 1);
    return (struct gh_tls_ctx *)ctx;
}

/* ---- client ids ---- */

static char **ids;
static uint32_t n_ids;

uint32_t
gh_tls_client_id(const char *key)
{
    for (uint32_t i = 0; i < n_ids; i++)
        if (strcmp(ids[i], key) == 0)
            return i + 1;
    char **a = gh_xmalloc((n_ids + 1) * sizeof(*a));
    if (n_ids > 0)
        memcpy(a, ids, n_ids * sizeof(*a));
    free(ids);
    ids = a;
    ids[n_ids] = strdup(key);
    GH_ASSERT(ids[n_ids] != NULL);
    return ++n_ids;
}
