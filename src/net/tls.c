/*
 * tls.c - the TLS layer of a transport: receive, send, readiness, shutdown,
 * close, the drained check, and the facts variables read.
 *
 * The handshake needs no state of its own: the first receive (server) or send
 * (client) drives it through SSL_read / SSL_write. Readiness follows xprt.h:
 * CAN_READ is cleared when OpenSSL wants more bytes and the socket gave none
 * (or gave a short read: TLS_F_SOCK_EMPTY), CAN_WRITE while records wait in
 * the pending buffer; a receive that waits for the socket to take bytes, or a
 * send that waits for the peer's (a client's handshake), is mapped back by
 * on_events.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "core/log.h"
#include "net/tls_int.h"

/* plaintext per record (the TLS maximum), and the room a record may need beyond it */
#define TLS_CHUNK 16384
#define TLS_RECORD_ROOM (TLS_CHUNK + 1024)

static struct gh_tls_stats stats; /* atomics */

static __thread char stage[TLS_CHUNK]; /* a record's plaintext gathered from several pieces */

/* ---- the pending buffer ---- */

/* Write what pend holds. 0 when it is empty (and released), GH_AGAIN, or -errno. */
static int
pend_flush(struct tls_conn *t)
{
    struct gh_buf *b = t->pend;
    if (b == NULL)
        return 0;
    while (gh_buf_len(b) > 0) {
        ssize_t w = write(t->x->io.fd, gh_buf_head(b), gh_buf_len(b));
        if (w > 0) {
            gh_buf_consume(b, (size_t)w);
            continue;
        }
        if (w == -1 && errno == EINTR)
            continue;
        if (w == -1 && errno == EAGAIN)
            return GH_AGAIN;
        t->werr = w == -1 ? errno : EPIPE;
        return -t->werr;
    }
    gh_buf_put(b);
    t->pend = NULL;
    if (t->flags & TLS_F_SHUT_PENDING) {
        t->flags &= ~TLS_F_SHUT_PENDING;
        (void)shutdown(t->x->io.fd, SHUT_WR);
    }
    return 0;
}

static size_t
pend_room(const struct tls_conn *t)
{
    if (t->pend == NULL)
        return GH_BUF_SIZE;
    return GH_BUF_SIZE - gh_buf_len(t->pend);
}

/* ---- failures ---- */

static void
peer_text(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *s = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
            port = ntohs(s->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
            port = ntohs(s->sin6_port);
        }
    }
    snprintf(out, cap, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
}

/* Remember why OpenSSL failed (err: its SSL_get_error code): a protocol failure is kept for
 * gh_tls_error; a broken or closed socket is not a TLS error. Returns -EPROTO or -errno. */
static int
failed(struct tls_conn *t, int err, int sys_errno)
{
    unsigned long e = ERR_peek_last_error();
    char why[sizeof(t->err)];
    int rc = -EPROTO;
    if (err == SSL_ERROR_SYSCALL && e == 0) {
        rc = sys_errno != 0 ? -sys_errno : -ECONNRESET;
        snprintf(why, sizeof(why), "%s", strerror(-rc));
    } else if (ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        long v = SSL_get_verify_result(t->ssl);
        snprintf(why, sizeof(why), "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
    } else {
        const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
        snprintf(why, sizeof(why), "%s", r != NULL ? r : "protocol error");
    }
    ERR_clear_error();
    if (rc == -EPROTO)
        memcpy(t->err, why, sizeof(why));
    /* a failed handshake, as server; a client that connected and closed without a byte (a TCP
     * health check, a port probe) did not try one */
    if ((t->flags & (TLS_F_HS_DONE | TLS_F_FAILED | TLS_F_CLIENT | TLS_F_GOT_BYTES)) ==
        TLS_F_GOT_BYTES) {
        __atomic_add_fetch(&stats.failed, 1, __ATOMIC_RELAXED);
        if (gh_log_level() >= GH_LL_DEBUG) {
            char who[64];
            peer_text(t->x->io.fd, who, sizeof(who));
            gh_log_debug("TLS handshake with %s failed: %s", who, why);
        }
    }
    t->flags |= TLS_F_FAILED;
    return rc;
}

/* After each call into OpenSSL: note a finished handshake. */
static inline void
hs_check(struct tls_conn *t)
{
    if (gh_likely(t->flags & TLS_F_HS_DONE) || !SSL_is_init_finished(t->ssl))
        return;
    t->flags |= TLS_F_HS_DONE;
    if (!(t->flags & TLS_F_CLIENT)) {
        __atomic_add_fetch(&stats.handshakes, 1, __ATOMIC_RELAXED);
        if (SSL_session_reused(t->ssl))
            __atomic_add_fetch(&stats.resumed, 1, __ATOMIC_RELAXED);
    }
    if (t->l != NULL) {
        gh_tls_listen_unref(t->l);
        t->l = NULL;
    }
}

/* ---- the layer's operations ---- */

static ssize_t
tls_recv(struct gh_xprt *x, char *p, size_t n)
{
    struct tls_conn *t = (struct tls_conn *)x->layer;
    if (t->rerr != 0) {
        x->io.ready &= ~GH_XPRT_CAN_READ;
        return t->rerr;
    }
    int fr = pend_flush(t);
    if (fr < 0 && fr != GH_AGAIN)
        return fr;
    size_t got = 0;
    ssize_t rc = 0;
    while (got < n) {
        int want = n - got > INT32_MAX ? INT32_MAX : (int)(n - got);
        errno = 0;
        ERR_clear_error(); /* the queue is the thread's: another connection's must not count */
        int r = SSL_read(t->ssl, p + got, want);
        if (r > 0) {
            got += (size_t)r;
            if (!SSL_has_pending(t->ssl) && (t->flags & TLS_F_SOCK_EMPTY) &&
                !(x->io.ready & GH_XPRT_RDHUP)) {
                x->io.ready &= ~GH_XPRT_CAN_READ;
                break;
            }
            continue;
        }
        int err = SSL_get_error(t->ssl, r);
        if (err == SSL_ERROR_WANT_READ) {
            x->io.ready &= ~GH_XPRT_CAN_READ;
            rc = GH_AGAIN;
        } else if (err == SSL_ERROR_WANT_WRITE) {
            t->flags |= TLS_F_RD_WANTS_WR;
            x->io.ready &= ~(GH_XPRT_CAN_READ | GH_XPRT_CAN_WRITE);
            rc = GH_AGAIN;
        } else if (err == SSL_ERROR_ZERO_RETURN) {
            if (got == 0)
                x->io.ready = (x->io.ready | GH_XPRT_EOF) & ~GH_XPRT_CAN_READ;
            rc = 0;
        } else {
            int e = errno;
            rc = failed(t, err, e); /* also empties OpenSSL's queue */
            if (got > 0)
                t->rerr = (int)rc; /* the bytes now, the failure with the next receive */
            else
                x->io.ready &= ~GH_XPRT_CAN_READ;
        }
        break;
    }
    hs_check(t);
    /* the handshake, tickets or alerts may have left records to send */
    if (t->pend != NULL && pend_flush(t) == GH_AGAIN)
        x->io.ready &= ~GH_XPRT_CAN_WRITE;
    return got > 0 ? (ssize_t)got : rc;
}

/* The next record's plaintext from iov at offset off: a pointer into a piece when one holds it
 * all, else gathered into the thread's stage. */
static const char *
gather(const struct iovec *iov, int cnt, size_t off, size_t total, size_t *len)
{
    size_t want = total - off < TLS_CHUNK ? total - off : TLS_CHUNK;
    int i = 0;
    while (i < cnt && off >= iov[i].iov_len) {
        off -= iov[i].iov_len;
        i++;
    }
    GH_ASSERT(i < cnt);
    if (iov[i].iov_len - off >= want) {
        *len = want;
        return (const char *)iov[i].iov_base + off;
    }
    size_t k = 0;
    for (; i < cnt && k < want; i++, off = 0) {
        size_t c = iov[i].iov_len - off;
        if (c > want - k)
            c = want - k;
        memcpy(stage + k, (const char *)iov[i].iov_base + off, c);
        k += c;
    }
    *len = k;
    return stage;
}

static ssize_t
tls_sendv(struct gh_xprt *x, const struct iovec *iov, int cnt, size_t total)
{
    struct tls_conn *t = (struct tls_conn *)x->layer;
    if (t->werr != 0)
        return -t->werr;
    size_t taken = 0;
    for (;;) {
        int fr = pend_flush(t);
        if (fr == GH_AGAIN) {
            x->io.ready &= ~GH_XPRT_CAN_WRITE;
            break;
        }
        if (fr < 0)
            return taken > 0 ? (ssize_t)taken : fr;
        /* every record made so far is on the socket: its plaintext is taken */
        taken += t->pend_plain;
        t->pend_plain = 0;
        GH_ASSERT(taken <= total);
        if (taken == total)
            break;
        bool stop = false;
        while (taken + t->pend_plain < total && pend_room(t) >= TLS_RECORD_ROOM) {
            size_t len;
            const char *p = gather(iov, cnt, taken + t->pend_plain, total, &len);
            errno = 0;
            ERR_clear_error();
            int r = SSL_write(t->ssl, p, (int)len);
            hs_check(t);
            if (r > 0) {
                t->pend_plain += (uint32_t)r;
                continue;
            }
            int err = SSL_get_error(t->ssl, r);
            if (err == SSL_ERROR_WANT_READ) {
                t->flags |= TLS_F_WR_WANTS_RD;
                x->io.ready &= ~GH_XPRT_CAN_WRITE;
            } else if (err == SSL_ERROR_WANT_WRITE) {
                x->io.ready &= ~GH_XPRT_CAN_WRITE;
            } else {
                int e = errno;
                int rc = failed(t, err, e);
                if (taken == 0 && t->pend_plain == 0) {
                    (void)pend_flush(t); /* the alert OpenSSL made, if the socket takes it */
                    return rc;
                }
            }
            stop = true;
            break;
        }
        if (stop) {
            /* what was made goes out; its plaintext counts at the next send */
            if (pend_flush(t) == 0) {
                taken += t->pend_plain;
                t->pend_plain = 0;
            }
            break;
        }
    }
    return (ssize_t)taken;
}

static void
tls_on_events(struct gh_xprt *x, uint32_t events)
{
    struct tls_conn *t = (struct tls_conn *)x->layer;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        x->io.ready |= GH_XPRT_CAN_READ;
        t->flags &= ~TLS_F_SOCK_EMPTY;
        if (t->flags & TLS_F_WR_WANTS_RD) {
            t->flags &= ~TLS_F_WR_WANTS_RD;
            x->io.ready |= GH_XPRT_CAN_WRITE;
        }
    }
    if (events & (EPOLLRDHUP | EPOLLHUP))
        x->io.ready |= GH_XPRT_RDHUP;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
        int fr = pend_flush(t);
        if (fr != GH_AGAIN) { /* empty, or broken: either way the caller may go on and see */
            x->io.ready |= GH_XPRT_CAN_WRITE;
            if (t->flags & TLS_F_RD_WANTS_WR) {
                t->flags &= ~TLS_F_RD_WANTS_WR;
                x->io.ready |= GH_XPRT_CAN_READ;
            }
        }
    }
}

static int
tls_shutdown(struct gh_xprt *x)
{
    struct tls_conn *t = (struct tls_conn *)x->layer;
    if ((t->flags & (TLS_F_HS_DONE | TLS_F_FAILED)) == TLS_F_HS_DONE && t->werr == 0) {
        (void)SSL_shutdown(t->ssl); /* close_notify, into pend */
        ERR_clear_error();
    }
    int fr = pend_flush(t);
    if (fr == GH_AGAIN) {
        t->flags |= TLS_F_SHUT_PENDING;
        x->io.ready &= ~GH_XPRT_CAN_WRITE;
        return 0;
    }
    return shutdown(x->io.fd, SHUT_WR) == -1 ? -errno : 0;
}

static bool
tls_drained(struct gh_xprt *x)
{
    struct tls_conn *t = (struct tls_conn *)x->layer;
    if (SSL_pending(t->ssl) > 0)
        return false;
    /* records that carry no data (a TLS 1.3 session ticket) may follow a response */
    for (int i = 0; i < 4; i++) {
        if (!SSL_has_pending(t->ssl)) {
            char b;
            ssize_t k = recv(x->io.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
            if (k == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                x->io.ready &= ~GH_XPRT_CAN_READ;
                t->flags |= TLS_F_SOCK_EMPTY;
                return true;
            }
            if (k <= 0)
                return false;
        }
        char b;
        int r = SSL_read(t->ssl, &b, 1);
        if (r > 0 || SSL_get_error(t->ssl, r) != SSL_ERROR_WANT_READ) {
            ERR_clear_error();
            return false; /* stray data, a close, or an error */
        }
    }
    return false;
}

static void
tls_free(struct gh_xprt *x)
{
    struct tls_conn *t = (struct tls_conn *)x->layer;
    if ((t->flags & (TLS_F_HS_DONE | TLS_F_FAILED)) == TLS_F_HS_DONE && t->werr == 0 &&
        t->pend == NULL && x->io.fd >= 0 && !(x->io.ready & GH_XPRT_WR_SHUT)) {
        /* a courtesy close_notify when it goes out at once (never waited for) */
        (void)SSL_shutdown(t->ssl);
        (void)pend_flush(t);
    }
    ERR_clear_error();
    SSL_free(t->ssl);
    gh_buf_put(t->pend);
    if (t->l != NULL)
        gh_tls_listen_unref(t->l);
    free(t->client_dn);
    free(t);
}

static const struct gh_xprt_layer_ops tls_ops = {
    .name = "tls",
    .recv = tls_recv,
    .sendv = tls_sendv,
    .on_events = tls_on_events,
    .shutdown = tls_shutdown,
    .drained = tls_drained,
    .free = tls_free,
};

/* ---- the BIO: ciphertext to and from the socket ---- */

static int
bio_read(BIO *b, char *buf, int len)
{
    struct tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t r;
    do
        r = read(t->x->io.fd, buf, (size_t)len);
    while (r == -1 && errno == EINTR);
    if (r == 0)
        t->flags |= TLS_F_SOCK_EOF;
    if (r > 0) {
        t->flags |= TLS_F_GOT_BYTES;
        if (r < len)
            t->flags |= TLS_F_SOCK_EMPTY;
        else
            t->flags &= ~TLS_F_SOCK_EMPTY;
        return (int)r;
    }
    if (r == -1 && errno == EAGAIN) {
        t->flags |= TLS_F_SOCK_EMPTY;
        BIO_set_retry_read(b);
    }
    return (int)r;
}

static int
bio_write(BIO *b, const char *buf, int len)
{
    struct tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (t->werr != 0) {
        errno = t->werr;
        return -1;
    }
    if (t->pend == NULL && (t->pend = gh_buf_get()) == NULL) {
        errno = ENOMEM;
        return -1;
    }
    size_t room = gh_buf_reserve(t->pend, (size_t)len);
    if (room < (size_t)len) {
        BIO_set_retry_write(b);
        return -1;
    }
    memcpy(gh_buf_tail(t->pend), buf, (size_t)len);
    gh_buf_commit(t->pend, (size_t)len);
    return len;
}

static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    if (cmd == BIO_CTRL_EOF) { /* so that an end of stream without close_notify is one */
        const struct tls_conn *t = BIO_get_data(b);
        return (t->flags & TLS_F_SOCK_EOF) != 0;
    }
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static BIO_METHOD *bio_method;

static void
bio_method_init(void)
{
    bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "gatehouse");
    GH_ASSERT(bio_method != NULL);
    BIO_meth_set_read(bio_method, bio_read);
    BIO_meth_set_write(bio_method, bio_write);
    BIO_meth_set_ctrl(bio_method, bio_ctrl);
}

/* ---- attaching ---- */

static struct tls_conn *
conn_new(struct gh_xprt *x, SSL_CTX *ctx)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, bio_method_init);
    struct tls_conn *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->ssl = SSL_new(ctx);
    BIO *bio = t->ssl != NULL ? BIO_new(bio_method) : NULL;
    if (bio == NULL) {
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_data(bio, t);
    BIO_set_init(bio, 1);
    SSL_set_bio(t->ssl, bio, bio);
    SSL_set_ex_data(t->ssl, gh_tls_ex_conn, t);
    t->base.ops = &tls_ops;
    t->x = x;
    x->layer = &t->base;
    return t;
}

int
gh_tls_accept(struct gh_xprt *x, struct gh_tls_listen *l)
{
    struct tls_conn *t = conn_new(x, l->dflt);
    if (t == NULL)
        return -ENOMEM;
    __atomic_add_fetch(&l->refs, 1, __ATOMIC_RELAXED);
    t->l = l;
    SSL_set_accept_state(t->ssl);
    return 0;
}

static bool
is_ip_literal(const char *name)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

int
gh_tls_connect(struct gh_xprt *x, struct gh_tls_ctx *ctx, const char *name, void **sess)
{
    struct tls_conn *t = conn_new(x, (SSL_CTX *)ctx);
    if (t == NULL)
        return -ENOMEM;
    t->flags |= TLS_F_CLIENT;
    t->sess = sess;
    SSL_set_connect_state(t->ssl);
    if (name != NULL && name[0] != '\0') {
        if (is_ip_literal(name)) {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name);
        } else {
            SSL_set_tlsext_host_name(t->ssl, name);
            SSL_set1_host(t->ssl, name);
        }
    }
    if (sess != NULL && *sess != NULL)
        SSL_set_session(t->ssl, (SSL_SESSION *)*sess);
    ERR_clear_error();
    return 0;
}

void
gh_tls_session_free(void *sess)
{
    SSL_SESSION_free(sess);
}

/* ---- facts ---- */

static struct tls_conn *
conn_of(const struct gh_xprt *x)
{
    if (x == NULL || x->layer == NULL || x->layer->ops != &tls_ops)
        return NULL;
    return (struct tls_conn *)x->layer;
}

bool
gh_tls_is(const struct gh_xprt *x)
{
    return conn_of(x) != NULL;
}

const char *
gh_tls_protocol(const struct gh_xprt *x)
{
    struct tls_conn *t = conn_of(x);
    return t != NULL && (t->flags & TLS_F_HS_DONE) ? SSL_get_version(t->ssl) : NULL;
}

const char *
gh_tls_cipher(const struct gh_xprt *x)
{
    struct tls_conn *t = conn_of(x);
    return t != NULL && (t->flags & TLS_F_HS_DONE) ? SSL_get_cipher_name(t->ssl) : NULL;
}

const char *
gh_tls_server_name(const struct gh_xprt *x)
{
    struct tls_conn *t = conn_of(x);
    return t != NULL ? SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

const char *
gh_tls_alpn(const struct gh_xprt *x, uint32_t *len)
{
    struct tls_conn *t = conn_of(x);
    const unsigned char *p = NULL;
    unsigned n = 0;
    if (t != NULL)
        SSL_get0_alpn_selected(t->ssl, &p, &n);
    *len = n;
    return n > 0 ? (const char *)p : NULL;
}

bool
gh_tls_reused(const struct gh_xprt *x)
{
    struct tls_conn *t = conn_of(x);
    return t != NULL && SSL_session_reused(t->ssl);
}

const char *
gh_tls_client_dn(const struct gh_xprt *x)
{
    struct tls_conn *t = conn_of(x);
    if (t == NULL)
        return NULL;
    if (t->client_dn == NULL) {
        X509 *c = SSL_get0_peer_certificate(t->ssl);
        BIO *m = c != NULL ? BIO_new(BIO_s_mem()) : NULL;
        if (m == NULL)
            return NULL;
        if (X509_NAME_print_ex(m, X509_get_subject_name(c), 0, XN_FLAG_RFC2253) >= 0) {
            char *p;
            long n = BIO_get_mem_data(m, &p);
            t->client_dn = malloc((size_t)n + 1);
            if (t->client_dn != NULL) {
                memcpy(t->client_dn, p, (size_t)n);
                t->client_dn[n] = '\0';
            }
        }
        BIO_free(m);
    }
    return t->client_dn;
}

const char *
gh_tls_client_verify(const struct gh_xprt *x)
{
    struct tls_conn *t = conn_of(x);
    if (t == NULL)
        return NULL;
    if (SSL_get0_peer_certificate(t->ssl) == NULL)
        return "NONE";
    /* a certificate that fails verification fails the handshake: what is left is a success */
    return SSL_get_verify_result(t->ssl) == X509_V_OK ? "SUCCESS" : "FAILED";
}

struct gh_tls_ctx *
gh_tls_ctx_of(const struct gh_xprt *x)
{
    struct tls_conn *t = conn_of(x);
    return t != NULL ? (struct gh_tls_ctx *)SSL_get_SSL_CTX(t->ssl) : NULL;
}

const char *
gh_tls_error(const struct gh_xprt *x)
{
    struct tls_conn *t = conn_of(x);
    return t != NULL && t->err[0] != '\0' ? t->err : NULL;
}

void
gh_tls_get_stats(struct gh_tls_stats *st)
{
    st->handshakes = __atomic_load_n(&stats.handshakes, __ATOMIC_RELAXED);
    st->resumed = __atomic_load_n(&stats.resumed, __ATOMIC_RELAXED);
    st->failed = __atomic_load_n(&stats.failed, __ATOMIC_RELAXED);
}
