/*
 * test_tls.c - the TLS transport layer (net/tls.c, net/tls_ctx.c) over real
 * sockets, driven the way the proxy drives it: the real edge-triggered loop
 * (core/loop.c), gh_xprt_on_events first in each callback, then receive and
 * send only while the readiness bits allow, gh_xprt_watch_writes after each
 * turn. Every receive and send checks the transport contract of net/xprt.h
 * (GH_AGAIN clears CAN_READ, 0 comes with EOF, a short send clears
 * CAN_WRITE); with edge-triggered events a bit cleared too early shows as a
 * stall, which the pump reports.
 *
 * Certificates are made here at start-up (EC P-256, a CA and leaves with
 * subjectAltName DNS/IP, a second CA nobody trusts, a self-signed one, an
 * expired one) and written to a temporary directory removed at the end.
 *
 * Tests marked "KNOWN BUG" fail until the bug they describe is fixed in src/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/loop.h"
#include "net/tls.h"
#include "net/tls_int.h"
#include "net/xprt.h"

/* ---- certificates, made at start-up ---- */

static char dir[64];

/* file paths in dir */
static char p_ca[128], p_ca2[128];
static char p_leaf[128], p_leaf_key[128];   /* a.test, localhost, 127.0.0.1, ::1 (CA) */
static char p_wild[128], p_wild_key[128];   /* *.b.test (CA) */
static char p_exact[128], p_exact_key[128]; /* c.test (CA) */
static char p_self[128], p_self_key[128];   /* a.test, self-signed */
static char p_alien[128], p_alien_key[128]; /* a.test, issued by CA2 (not trusted) */
static char p_exp[128], p_exp_key[128];     /* a.test, expired */
static char p_other_key[128];               /* a key no certificate has */
static char p_garbage[128];
static char p_tkey80[128], p_tkey10[128]; /* ticket key files of 80 and 10 bytes */

static long serial = 1;

static void
path_in(char *out, const char *name)
{
    snprintf(out, 128, "%s/%s", dir, name);
}

static void
add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* A certificate for key: self-signed when issuer is NULL; valid from now+from_s to now+to_s. */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer, EVP_PKEY *ikey, long from_s,
          long to_s, bool ca)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), from_s));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), to_s));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509_NAME *n = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(
                         n, "O", MBSTRING_ASC, (const unsigned char *)"Gatehouse tests", -1, -1, 0),
                     1);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0), 1);
    assert_int_equal(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : n),
                     1);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    add_ext(x, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, &v3, NID_subject_key_identifier, "hash");
    if (ca) {
        add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, &v3, NID_key_usage, "critical,digitalSignature");
        add_ext(x, &v3, NID_ext_key_usage, "serverAuth,clientAuth");
    }
    if (issuer != NULL)
        add_ext(x, &v3, NID_authority_key_identifier, "keyid:always");
    if (san != NULL)
        add_ext(x, &v3, NID_subject_alt_name, san);
    assert_true(X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()) > 0);
    return x;
}

static void
write_cert(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    assert_int_equal(fclose(f), 0);
}

static void
write_key(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(f), 0);
}

static void
write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* A leaf issued by (ca, cakey) or self-signed, and its key, to files. */
static void
leaf(const char *cert_path, const char *key_path, const char *cn, const char *san, X509 *ca,
     EVP_PKEY *cakey, long from_s, long to_s)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    X509 *x = make_cert(k, cn, san, ca, cakey, from_s, to_s, false);
    write_cert(cert_path, x);
    write_key(key_path, k);
    X509_free(x);
    EVP_PKEY_free(k);
}

static int
group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof(dir), "/tmp/gh-test-tls-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    path_in(p_ca, "ca.pem");
    path_in(p_ca2, "ca2.pem");
    path_in(p_leaf, "leaf.pem");
    path_in(p_leaf_key, "leaf.key");
    path_in(p_wild, "wild.pem");
    path_in(p_wild_key, "wild.key");
    path_in(p_exact, "exact.pem");
    path_in(p_exact_key, "exact.key");
    path_in(p_self, "self.pem");
    path_in(p_self_key, "self.key");
    path_in(p_alien, "alien.pem");
    path_in(p_alien_key, "alien.key");
    path_in(p_exp, "expired.pem");
    path_in(p_exp_key, "expired.key");
    path_in(p_other_key, "other.key");
    path_in(p_garbage, "garbage.pem");
    path_in(p_tkey80, "ticket80.key");
    path_in(p_tkey10, "ticket10.key");

    const long day = 86400;
    EVP_PKEY *cak = EVP_EC_gen("P-256"), *ca2k = EVP_EC_gen("P-256");
    assert_non_null(cak);
    assert_non_null(ca2k);
    X509 *ca = make_cert(cak, "Gatehouse Test CA", NULL, NULL, NULL, -day, 30 * day, true);
    X509 *ca2 = make_cert(ca2k, "Untrusted Test CA", NULL, NULL, NULL, -day, 30 * day, true);
    write_cert(p_ca, ca);
    write_cert(p_ca2, ca2);
    leaf(p_leaf, p_leaf_key, "a.test", "DNS:a.test,DNS:localhost,IP:127.0.0.1,IP:::1", ca, cak,
         -day, 30 * day);
    leaf(p_wild, p_wild_key, "wild.b.test", "DNS:*.b.test", ca, cak, -day, 30 * day);
    leaf(p_exact, p_exact_key, "c.test", "DNS:c.test", ca, cak, -day, 30 * day);
    leaf(p_self, p_self_key, "a.test", "DNS:a.test", NULL, NULL, -day, 30 * day);
    leaf(p_alien, p_alien_key, "a.test", "DNS:a.test", ca2, ca2k, -day, 30 * day);
    leaf(p_exp, p_exp_key, "a.test", "DNS:a.test", ca, cak, -3 * day, -day);
    EVP_PKEY *ok = EVP_EC_gen("P-256");
    assert_non_null(ok);
    write_key(p_other_key, ok);
    EVP_PKEY_free(ok);
    write_bytes(p_garbage, "this is not PEM\n", 16);
    unsigned char tk[80];
    for (int i = 0; i < 80; i++)
        tk[i] = (unsigned char)(i * 7 + 1);
    write_bytes(p_tkey80, tk, 80);
    write_bytes(p_tkey10, tk, 10);
    X509_free(ca);
    X509_free(ca2);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(ca2k);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    const char *files[] = {p_ca,    p_ca2,       p_leaf,      p_leaf_key, p_wild,   p_wild_key,
                           p_exact, p_exact_key, p_self,      p_self_key, p_alien,  p_alien_key,
                           p_exp,   p_exp_key,   p_other_key, p_garbage,  p_tkey80, p_tkey10};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlink(files[i]);
    rmdir(dir);
    gh_buf_cache_drain();
    return 0;
}

/* ---- contexts ---- */

struct report {
    enum gh_tls_item item;
    uint32_t idx;
    bool warning;
    char msg[600];
};

struct reports {
    int n;
    struct report r[8];
};

static void
rep(void *arg, enum gh_tls_item item, uint32_t idx, bool warning, const char *msg)
{
    struct reports *rs = arg;
    assert_true(rs->n < 8);
    struct report *r = &rs->r[rs->n++];
    r->item = item;
    r->idx = idx;
    r->warning = warning;
    snprintf(r->msg, sizeof(r->msg), "%s", msg);
}

static struct gh_tls_server_opts
sopts(const char *const *cert, const char *const *key)
{
    struct gh_tls_server_opts o = {
        .certs = cert,
        .keys = key,
        .n_certs = 1,
        .protocols = GH_TLS_V12 | GH_TLS_V13,
        .prefer_server = true,
        .session_cache = 0,
        .session_timeout_s = 300,
        .tickets = true,
    };
    return o;
}

/* A server context that must build without any report. */
static struct gh_tls_ctx *
server_ctx_o(const struct gh_tls_server_opts *o)
{
    struct reports rs = {0};
    struct gh_tls_ctx *c = gh_tls_server_ctx_new(o, rep, &rs);
    if (rs.n > 0)
        fail_msg("unexpected report: %s", rs.r[0].msg);
    assert_non_null(c);
    return c;
}

static struct gh_tls_ctx *
server_ctx(const char *cert, const char *key)
{
    const char *c[1] = {cert}, *k[1] = {key};
    struct gh_tls_server_opts o = sopts(c, k);
    return server_ctx_o(&o);
}

static struct gh_tls_ctx *
client_ctx(const char *ca, bool verify)
{
    struct reports rs = {0};
    struct gh_tls_client_opts o = {.ca_file = ca, .verify = verify};
    struct gh_tls_ctx *c = gh_tls_client_ctx_new(&o, rep, &rs);
    if (rs.n > 0)
        fail_msg("unexpected report: %s", rs.r[0].msg);
    assert_non_null(c);
    return c;
}

/* A listener with only a default context (its reference is the listener's own). */
static struct gh_tls_listen *
listen_of(struct gh_tls_ctx *dflt)
{
    struct gh_tls_listen *l = gh_tls_listen_new(dflt, NULL, 0);
    assert_non_null(l);
    return l;
}

/* ---- deterministic data ---- */

static uint64_t
rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static unsigned char *
make_data(size_t n, uint64_t seed)
{
    unsigned char *p = malloc(n);
    assert_non_null(p);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = rnd(&s);
        size_t k = n - i < 8 ? n - i : 8;
        memcpy(p + i, &v, k);
    }
    return p;
}

static void
sha256(const void *p, size_t n, unsigned char out[32])
{
    unsigned int len = 32;
    assert_int_equal(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL), 1);
}

/* ---- the two ends, driven by the real loop ---- */

struct pair;

struct ep {
    struct gh_xprt x;
    struct pair *p;
    const char *name;
    bool hold_reads; /* the owner does not read (the test receives by hand) */
    bool send_first; /* in a turn, send before receiving */
    /* sending: out[out_off..out_len) is not taken yet */
    const unsigned char *out;
    size_t out_len, out_off;
    uint64_t split;  /* 0: one piece per send; else the seed of pseudo-random piece sizes */
    size_t send_max; /* 0: everything left; else at most this much per send */
    bool shut_when_sent, shut;
    /* receiving */
    unsigned char *in;
    size_t in_cap, in_len;
    uint64_t rd_seed; /* 0: recv asks for all the room; else pseudo-random sizes */
    bool eof;
    int err;   /* what a failed recv / sendv returned */
    int recvs; /* calls */
    int sends;
    int shorts; /* sends that took fewer bytes than presented */
    int again;  /* receives that returned GH_AGAIN */
};

struct pair {
    struct gh_loop *loop;
    struct ep c, s; /* client (connects), server (accepted) */
};

static void ep_work(struct ep *e);

static void
on_io(struct gh_io *io, uint32_t events)
{
    struct ep *e = gh_container_of(io, struct ep, x.io);
    gh_xprt_on_events(&e->x, events);
    ep_work(e);
}

static void
ep_recv_once(struct ep *e)
{
    size_t room = e->in_cap - e->in_len;
    assert_true(room > 0);
    size_t n = room;
    if (e->rd_seed != 0) {
        static const size_t sizes[] = {1, 5, 100, 1000, 4096, 16383, 16384, 16385, 40000, 70000};
        n = sizes[rnd(&e->rd_seed) % (sizeof(sizes) / sizeof(sizes[0]))];
        if (n > room)
            n = room;
    }
    ssize_t r = gh_xprt_recv(&e->x, (char *)e->in + e->in_len, n);
    e->recvs++;
    if (r > 0) {
        assert_true((size_t)r <= n);
        e->in_len += (size_t)r;
    } else if (r == 0) {
        assert_true(gh_xprt_is(&e->x, GH_XPRT_EOF));
        assert_false(gh_xprt_is(&e->x, GH_XPRT_CAN_READ));
        e->eof = true;
    } else if (r == GH_AGAIN) {
        assert_false(gh_xprt_is(&e->x, GH_XPRT_CAN_READ));
        e->again++;
    } else {
        e->err = (int)r;
    }
}

/* Present out[out_off..] as up to 8 pieces (sizes from e->split), as a caller that keeps what was
 * not taken and presents it again, split differently. Returns what sendv returned. */
static ssize_t
ep_send_once(struct ep *e)
{
    struct iovec iov[8];
    int cnt = 0;
    size_t left = e->out_len - e->out_off;
    if (e->send_max != 0 && left > e->send_max)
        left = e->send_max;
    size_t total = 0;
    const unsigned char *p = e->out + e->out_off;
    while (total < left && cnt < 8) {
        size_t k = left - total;
        if (e->split != 0 && cnt < 7) {
            size_t want = 1 + rnd(&e->split) % 40000;
            if (want < k)
                k = want;
        }
        iov[cnt].iov_base = (void *)(p + total);
        iov[cnt].iov_len = k;
        cnt++;
        total += k;
    }
    ssize_t r = gh_xprt_sendv(&e->x, iov, cnt, total);
    e->sends++;
    if (r < 0) {
        e->err = (int)r;
        return r;
    }
    assert_true((size_t)r <= total);
    if ((size_t)r < total) {
        e->shorts++;
        assert_false(gh_xprt_is(&e->x, GH_XPRT_CAN_WRITE));
    }
    e->out_off += (size_t)r;
    return r;
}

/* One turn of an owner's work: receive while CAN_READ, send while CAN_WRITE and something is
 * left, shut down writing once everything is taken (when asked). */
static void
ep_work(struct ep *e)
{
    for (int guard = 0;; guard++) {
        assert_true(guard < 100000);
        bool moved = false;
        if (e->send_first && e->err == 0 && e->out_off < e->out_len &&
            gh_xprt_is(&e->x, GH_XPRT_CAN_WRITE))
            moved |= ep_send_once(e) > 0;
        if (!e->hold_reads && e->err == 0 && !e->eof && gh_xprt_is(&e->x, GH_XPRT_CAN_READ)) {
            size_t before = e->in_len;
            ep_recv_once(e);
            moved |= e->in_len > before || e->eof;
        }
        if (e->err == 0 && e->out_off < e->out_len && gh_xprt_is(&e->x, GH_XPRT_CAN_WRITE))
            moved |= ep_send_once(e) > 0;
        if (e->err == 0 && e->shut_when_sent && !e->shut && e->out_off == e->out_len) {
            e->shut = true;
            assert_int_equal(gh_xprt_shutdown(&e->x), 0);
        }
        if (!moved || e->err != 0)
            break;
    }
    if (e->x.io.fd >= 0)
        assert_int_equal(gh_xprt_watch_writes(e->p->loop, &e->x), 0);
}

/* Hand e bytes to send (they must live until taken) and do a turn of work, as an owner does when
 * it has something new to say. */
static void
ep_send(struct ep *e, const void *data, size_t n)
{
    e->out = data;
    e->out_len = n;
    e->out_off = 0;
    ep_work(e);
}

static void
ep_init(struct ep *e, struct pair *p, const char *name, int fd, uint32_t ready, size_t in_cap)
{
    memset(e, 0, sizeof(*e));
    e->p = p;
    e->name = name;
    gh_xprt_init(&e->x, fd, on_io, ready);
    e->in_cap = in_cap;
    e->in = malloc(in_cap);
    assert_non_null(e->in);
}

static void
set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl != -1);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* A loopback TCP pair (a connects, b accepted), both non-blocking; bufsz, when not 0, is set as
 * SO_SNDBUF and SO_RCVBUF on both before connecting (small windows, many short writes). */
static void
tcp_pair(int *a, int *b, int bufsz)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (bufsz != 0)
        assert_int_equal(setsockopt(l, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz)), 0);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    *a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(*a >= 0);
    if (bufsz != 0) {
        assert_int_equal(setsockopt(*a, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz)), 0);
        assert_int_equal(setsockopt(*a, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz)), 0);
    }
    assert_int_equal(connect(*a, (struct sockaddr *)&sa, sizeof(sa)), 0);
    *b = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    assert_true(*b >= 0);
    if (bufsz != 0)
        assert_int_equal(setsockopt(*b, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz)), 0);
    int one = 1;
    assert_int_equal(setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
    assert_int_equal(setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
    set_nonblock(*a);
    close(l);
}

enum { UNIX_PAIR = 0, TCP_PAIR = 1 };

/* Two connected transports, plain for now: the client as upstream/h1client.c makes it (no
 * readiness yet, EPOLLOUT watched from the start), the server as proxy/h1_server.c (CAN_WRITE,
 * EPOLLOUT only once a send falls short). Not registered with the loop yet. */
static void
pair_open(struct pair *p, int kind, int bufsz, size_t in_cap)
{
    memset(p, 0, sizeof(*p));
    p->loop = gh_loop_new();
    assert_non_null(p->loop);
    int a, b;
    if (kind == TCP_PAIR) {
        tcp_pair(&a, &b, bufsz);
    } else {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        a = sv[0];
        b = sv[1];
        if (bufsz != 0) {
            assert_int_equal(setsockopt(a, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz)), 0);
            assert_int_equal(setsockopt(b, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz)), 0);
        }
    }
    ep_init(&p->c, p, "client", a, 0, in_cap);
    ep_init(&p->s, p, "server", b, GH_XPRT_CAN_WRITE, in_cap);
}

static void
pair_watch(struct pair *p)
{
    assert_int_equal(gh_xprt_watch(p->loop, &p->s.x, EPOLLIN | EPOLLRDHUP), 0);
    assert_int_equal(gh_xprt_watch(p->loop, &p->c.x, EPOLLIN | EPOLLOUT | EPOLLRDHUP), 0);
}

/* Put TLS on both ends and register them with the loop. */
static void
pair_tls(struct pair *p, struct gh_tls_listen *l, struct gh_tls_ctx *cctx, const char *name,
         void **sess)
{
    assert_int_equal(gh_tls_accept(&p->s.x, l), 0);
    assert_int_equal(gh_tls_connect(&p->c.x, cctx, name, sess), 0);
    assert_true(gh_tls_is(&p->s.x));
    assert_true(gh_tls_is(&p->c.x));
    pair_watch(p);
}

static void
pair_close(struct pair *p)
{
    gh_xprt_close(&p->c.x);
    gh_xprt_close(&p->s.x);
    gh_loop_free(p->loop);
    free(p->c.in);
    free(p->s.in);
}

/*
 * Run the loop until done(p) or nothing happens any more (a turn that waited 2 s for an event
 * and got none: with edge-triggered events and a readiness bit cleared too early, that is a
 * stall). Returns done(p).
 */
static void
ep_dump(const struct ep *e)
{
    const struct tls_conn *t =
        e->x.layer != NULL ? (const struct tls_conn *)(const void *)e->x.layer : NULL;
    print_message("%s: ready=%#x sent %zu/%zu received %zu eof=%d err=%d recvs=%d sends=%d "
                  "shorts=%d again=%d tls flags=%#x pend=%u pend_plain=%u\n",
                  e->name, e->x.io.ready, e->out_off, e->out_len, e->in_len, e->eof, e->err,
                  e->recvs, e->sends, e->shorts, e->again, t != NULL ? t->flags : 0,
                  t != NULL && t->pend != NULL ? (unsigned)gh_buf_len(t->pend) : 0,
                  t != NULL ? t->pend_plain : 0);
}

static bool
pump(struct pair *p, bool (*done)(struct pair *p), int max_turns)
{
    int i = 0;
    for (; i < max_turns; i++) {
        if (done(p))
            return true;
        int n = gh_loop_run_once(p->loop, 2000);
        assert_true(n >= 0);
        if (n == 0)
            break;
    }
    if (done(p))
        return true;
    print_message("pump: %s after %d turns\n", i < max_turns ? "stalled" : "gave up", i);
    ep_dump(&p->c);
    ep_dump(&p->s);
    return false;
}

/* Events already there are processed (a turn that waits 0 ms and finds none ends it). */
static void
settle(struct pair *p)
{
    for (int i = 0; i < 1000; i++)
        if (gh_loop_run_once(p->loop, 0) == 0)
            return;
    fail_msg("the loop does not settle");
}

static size_t want_c, want_s; /* bytes the client / the server waits for */

static bool
got_wanted(struct pair *p)
{
    return (p->c.in_len >= want_c && p->s.in_len >= want_s) || p->c.err != 0 || p->s.err != 0;
}

/* The client sends req, the server reads it, answers resp, the client reads it. */
static void
exchange(struct pair *p, const char *req, const char *resp)
{
    size_t c0 = p->c.in_len, s0 = p->s.in_len;
    want_c = c0;
    want_s = s0 + strlen(req);
    ep_send(&p->c, req, strlen(req));
    assert_true(pump(p, got_wanted, 1000));
    assert_int_equal(p->c.err, 0);
    assert_int_equal(p->s.err, 0);
    assert_memory_equal(p->s.in + s0, req, strlen(req));
    want_c = c0 + strlen(resp);
    ep_send(&p->s, resp, strlen(resp));
    assert_true(pump(p, got_wanted, 1000));
    assert_int_equal(p->c.err, 0);
    assert_int_equal(p->s.err, 0);
    assert_memory_equal(p->c.in + c0, resp, strlen(resp));
}

static bool
server_done(struct pair *p)
{
    return p->s.err != 0 || p->s.eof;
}

static bool
client_eof(struct pair *p)
{
    return p->c.eof || p->c.err != 0;
}

static bool
server_eof(struct pair *p)
{
    return p->s.eof || p->s.err != 0;
}

static bool
client_can_read(struct pair *p)
{
    return gh_xprt_is(&p->c.x, GH_XPRT_CAN_READ);
}

/* The subject CN of the certificate the client got from the server. */
static void
peer_cn(struct gh_xprt *x, char *out, size_t cap)
{
    struct tls_conn *t = (struct tls_conn *)x->layer;
    X509 *c = SSL_get0_peer_certificate(t->ssl);
    assert_non_null(c);
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, out, (int)cap) >
                0);
}

/* ---- handshake, facts, data ---- */

static void
test_handshake_and_data(void **state)
{
    (void)state;
    struct gh_tls_ctx *sctx = server_ctx(p_leaf, p_leaf_key);
    struct gh_tls_ctx *cctx = client_ctx(p_ca, true);
    struct gh_tls_listen *l = listen_of(sctx);
    struct gh_tls_stats st0, st1;
    gh_tls_get_stats(&st0);

    struct pair p;
    pair_open(&p, UNIX_PAIR, 0, 1 << 16);
    /* a plain transport is no TLS one */
    assert_false(gh_tls_is(&p.c.x));
    assert_null(gh_tls_protocol(&p.c.x));
    assert_null(gh_tls_cipher(&p.c.x));
    assert_null(gh_tls_error(&p.c.x));
    uint32_t alen = 99;
    assert_null(gh_tls_alpn(&p.c.x, &alen));
    assert_int_equal(alen, 0);
    pair_tls(&p, l, cctx, "a.test", NULL);
    /* nothing negotiated before the handshake */
    assert_null(gh_tls_protocol(&p.c.x));
    assert_null(gh_tls_cipher(&p.s.x));

    exchange(&p, "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n");
    for (struct gh_xprt *x = &p.c.x; x != NULL; x = x == &p.c.x ? &p.s.x : NULL) {
        assert_true(gh_tls_is(x));
        assert_string_equal(gh_tls_protocol(x), "TLSv1.3");
        const char *c = gh_tls_cipher(x);
        assert_non_null(c);
        assert_true(strncmp(c, "TLS_", 4) == 0);
        const char *a = gh_tls_alpn(x, &alen);
        assert_int_equal(alen, 8);
        assert_memory_equal(a, "http/1.1", 8);
        assert_false(gh_tls_reused(x));
        assert_null(gh_tls_error(x));
    }
    assert_string_equal(gh_tls_cipher(&p.c.x), gh_tls_cipher(&p.s.x));
    assert_string_equal(gh_tls_server_name(&p.s.x), "a.test");
    assert_string_equal(gh_tls_server_name(&p.c.x), "a.test");
    assert_null(gh_tls_client_dn(&p.s.x)); /* no client certificate */
    assert_string_equal(gh_tls_client_verify(&p.s.x), "NONE");
    char cn[64];
    peer_cn(&p.c.x, cn, sizeof(cn));
    assert_string_equal(cn, "a.test");
    gh_tls_get_stats(&st1);
    assert_int_equal(st1.handshakes, st0.handshakes + 1);
    assert_int_equal(st1.resumed, st0.resumed);
    assert_int_equal(st1.failed, st0.failed);

    /* more rounds, both ways, on the same connection */
    exchange(&p, "second request", "second response");
    exchange(&p, "x", "y");
    gh_tls_get_stats(&st1);
    assert_int_equal(st1.handshakes, st0.handshakes + 1);

    pair_close(&p);
    gh_tls_listen_unref(l);
    gh_tls_ctx_free(sctx);
    gh_tls_ctx_free(cctx);
}

/* An established TLS pair over a unix socket pair (one exchange done). */
struct fixture {
    struct gh_tls_ctx *sctx, *cctx;
    struct gh_tls_listen *l;
    struct pair p;
};

static void
fx_open(struct fixture *f, int kind, int bufsz, size_t in_cap)
{
    f->sctx = server_ctx(p_leaf, p_leaf_key);
    f->cctx = client_ctx(p_ca, true);
    f->l = listen_of(f->sctx);
    pair_open(&f->p, kind, bufsz, in_cap);
    pair_tls(&f->p, f->l, f->cctx, "a.test", NULL);
    exchange(&f->p, "hello?", "hello!");
}

static void
fx_close(struct fixture *f)
{
    pair_close(&f->p);
    gh_tls_listen_unref(f->l);
    gh_tls_ctx_free(f->sctx);
    gh_tls_ctx_free(f->cctx);
}

static void
test_readiness_contract(void **state)
{
    (void)state;
    struct fixture f;
    fx_open(&f, UNIX_PAIR, 0, 1 << 20);
    struct pair *p = &f.p;
    p->c.hold_reads = true; /* the client receives by hand below */
    size_t c0 = p->c.in_len;
    char b[70000];

    /* a receive that emptied the socket clears CAN_READ (no extra call for GH_AGAIN) */
    ep_send(&p->s, "hello", 5);
    assert_true(pump(p, client_can_read, 100));
    assert_int_equal(gh_xprt_recv(&p->c.x, b, sizeof(b)), 5);
    assert_memory_equal(b, "hello", 5);
    assert_false(gh_xprt_is(&p->c.x, GH_XPRT_CAN_READ));
    assert_false(gh_xprt_is(&p->c.x, GH_XPRT_EOF));

    /* a spurious wake-up: nothing there, GH_AGAIN and CAN_READ cleared */
    gh_xprt_on_events(&p->c.x, EPOLLIN);
    assert_true(gh_xprt_is(&p->c.x, GH_XPRT_CAN_READ));
    assert_int_equal(gh_xprt_recv(&p->c.x, b, sizeof(b)), GH_AGAIN);
    assert_false(gh_xprt_is(&p->c.x, GH_XPRT_CAN_READ));
    assert_false(gh_xprt_is(&p->c.x, GH_XPRT_EOF));

    /* a receive that fills the caller's buffer keeps CAN_READ: the rest is decrypted or
     * waiting; it comes without a new event */
    unsigned char *d = make_data(40000, 7);
    ep_send(&p->s, d, 40000);
    assert_int_equal(p->s.out_off, 40000);
    assert_true(pump(p, client_can_read, 100));
    settle(p);
    size_t got = 0;
    while (gh_xprt_is(&p->c.x, GH_XPRT_CAN_READ)) {
        ssize_t r = gh_xprt_recv(&p->c.x, b + got, 100);
        if (r == GH_AGAIN) {
            settle(p); /* more ciphertext may still be on its way */
            continue;
        }
        assert_true(r > 0 && r <= 100);
        got += (size_t)r;
        if (r < 100)
            assert_int_equal(got, 40000);
        if (!gh_xprt_is(&p->c.x, GH_XPRT_CAN_READ) && got < 40000)
            assert_true(pump(p, client_can_read, 100));
    }
    assert_int_equal(got, 40000);
    assert_memory_equal(b, d, 40000);
    free(d);

    /* the peer's shutdown: 0 with EOF, CAN_READ cleared; again 0 */
    p->c.hold_reads = false;
    p->s.shut_when_sent = true;
    ep_work(&p->s);
    assert_true(p->s.shut);
    assert_true(pump(p, client_eof, 100));
    assert_int_equal(p->c.err, 0);
    assert_true(gh_xprt_is(&p->c.x, GH_XPRT_EOF));
    assert_false(gh_xprt_is(&p->c.x, GH_XPRT_CAN_READ));
    assert_int_equal(gh_xprt_recv(&p->c.x, b, sizeof(b)), 0);
    assert_true(gh_xprt_is(&p->c.x, GH_XPRT_EOF));
    assert_int_equal(p->c.in_len, c0);

    /* half-closed: the client still sends, then shuts down too */
    want_c = 0;
    want_s = p->s.in_len + 3;
    ep_send(&p->c, "bye", 3);
    assert_true(pump(p, got_wanted, 100));
    assert_memory_equal(p->s.in + p->s.in_len - 3, "bye", 3);
    p->c.shut_when_sent = true;
    ep_work(&p->c);
    assert_true(pump(p, server_eof, 100));
    assert_int_equal(p->s.err, 0);
    assert_true(gh_xprt_is(&p->s.x, GH_XPRT_EOF));
    fx_close(&f);
}

/* Data and the close_notify in one read: the data, then 0 with EOF. */
static void
test_data_then_close_notify(void **state)
{
    (void)state;
    struct fixture f;
    fx_open(&f, UNIX_PAIR, 0, 1 << 16);
    struct pair *p = &f.p;
    p->c.hold_reads = true;
    p->s.shut_when_sent = true;
    ep_send(&p->s, "last words", 10);
    assert_true(p->s.shut);
    assert_true(pump(p, client_can_read, 100));
    char b[100];
    assert_int_equal(gh_xprt_recv(&p->c.x, b, sizeof(b)), 10);
    assert_memory_equal(b, "last words", 10);
    /* it may report the end now or in the next receive, never lose it */
    if (gh_xprt_is(&p->c.x, GH_XPRT_CAN_READ))
        assert_int_equal(gh_xprt_recv(&p->c.x, b, sizeof(b)), 0);
    assert_true(gh_xprt_is(&p->c.x, GH_XPRT_EOF));
    assert_false(gh_xprt_is(&p->c.x, GH_XPRT_CAN_READ));
    fx_close(&f);
}

/*
 * KNOWN BUG: the peer closes its TCP side without a close_notify (many servers and clients do).
 * The contexts set SSL_OP_IGNORE_UNEXPECTED_EOF so that this reads as the end of the stream, but
 * OpenSSL applies that option only when BIO_eof() says the BIO reached the end, and the
 * layer's BIO answers 0 to BIO_CTRL_EOF: the receive fails with -ECONNRESET instead.
 */
static void
test_eof_without_close_notify(void **state)
{
    (void)state;
    struct fixture f;
    fx_open(&f, UNIX_PAIR, 0, 1 << 16);
    struct pair *p = &f.p;
    assert_int_equal(shutdown(p->s.x.io.fd, SHUT_WR), 0); /* a bare FIN */
    assert_true(pump(p, client_eof, 100));
    int err = p->c.err;
    bool eof = gh_xprt_is(&p->c.x, GH_XPRT_EOF);
    char why[128];
    snprintf(why, sizeof(why), "%s", gh_tls_error(&p->c.x) ? gh_tls_error(&p->c.x) : "-");
    fx_close(&f);
    if (err != 0)
        fail_msg("KNOWN BUG (BIO_CTRL_EOF): a FIN without close_notify gave %d (%s), not 0/EOF",
                 err, why);
    assert_true(eof);
}

/* ---- bulk transfers through small socket buffers ---- */

/* After a first exchange (the client speaks first, as HTTP does), send n pseudo-random bytes
 * client->server (c2s), server->client (s2c) or both at once, with sends presented as several
 * pieces split differently each time and receives of varied sizes. */
static void
bulk(size_t n, bool c2s, bool s2c, size_t send_max, int kind)
{
    struct gh_tls_ctx *sctx = server_ctx(p_leaf, p_leaf_key);
    struct gh_tls_ctx *cctx = client_ctx(p_ca, true);
    struct gh_tls_listen *l = listen_of(sctx);
    struct pair p;
    pair_open(&p, kind, 4096, n + 64);
    pair_tls(&p, l, cctx, "a.test", NULL);
    exchange(&p, "start", "go");
    size_t c0 = p.c.in_len, s0 = p.s.in_len;
    unsigned char *dc = make_data(n, 11), *ds = make_data(n, 23);
    p.c.split = 5;
    p.s.split = 6;
    p.c.rd_seed = 7;
    p.s.rd_seed = 8;
    p.c.send_max = send_max;
    p.s.send_max = send_max;
    want_s = s0 + (c2s ? n : 0);
    want_c = c0 + (s2c ? n : 0);
    if (c2s)
        ep_send(&p.c, dc, n);
    if (s2c)
        ep_send(&p.s, ds, n);
    assert_true(pump(&p, got_wanted, 1000000));
    assert_int_equal(p.c.err, 0);
    assert_int_equal(p.s.err, 0);
    unsigned char h1[32], h2[32];
    if (c2s) {
        assert_int_equal(p.c.out_off, n);
        assert_int_equal(p.s.in_len, s0 + n);
        sha256(dc, n, h1);
        sha256(p.s.in + s0, n, h2);
        assert_memory_equal(h1, h2, 32);
        assert_true(p.c.shorts > 0); /* the small buffers did push back */
    }
    if (s2c) {
        assert_int_equal(p.s.out_off, n);
        assert_int_equal(p.c.in_len, c0 + n);
        sha256(ds, n, h1);
        sha256(p.c.in + c0, n, h2);
        assert_memory_equal(h1, h2, 32);
        assert_true(p.s.shorts > 0);
    }
    if (getenv("TLS_TEST_VERBOSE") != NULL) {
        ep_dump(&p.c);
        ep_dump(&p.s);
    }
    /* nothing more arrives */
    settle(&p);
    assert_int_equal(p.s.in_len, s0 + (c2s ? n : 0));
    assert_int_equal(p.c.in_len, c0 + (s2c ? n : 0));
    free(dc);
    free(ds);
    pair_close(&p);
    gh_tls_listen_unref(l);
    gh_tls_ctx_free(sctx);
    gh_tls_ctx_free(cctx);
}

static void
test_bulk_client_to_server(void **state)
{
    (void)state;
    bulk(4u << 20, true, false, 0, TCP_PAIR);
}

static void
test_bulk_server_to_client(void **state)
{
    (void)state;
    bulk(4u << 20, false, true, 0, TCP_PAIR);
}

static void
test_bulk_both_ways(void **state)
{
    (void)state;
    bulk(3u << 20, true, true, 0, TCP_PAIR);
}

/* sends of at most 5000 bytes (records smaller than the maximum), over a unix pair */
static void
test_bulk_small_sends_unix(void **state)
{
    (void)state;
    bulk(1u << 20, true, true, 5000, UNIX_PAIR);
}

/* ---- verification of the origin's certificate (client side) ---- */

static bool
client_failed_or_done(struct pair *p)
{
    return p->c.err != 0 || p->s.err != 0 || p->s.in_len > 0;
}

/* The client (verifying with CA p_ca, SNI/name `name`) talks to a server with cert/key: returns
 * the client's error (0 when the request got through) and copies gh_tls_error. */
static bool verify_send_first;

static int
try_verify(const char *cert, const char *key, const char *name, char *why, size_t cap,
           char *server_why, size_t scap)
{
    struct gh_tls_ctx *sctx = server_ctx(cert, key);
    struct gh_tls_ctx *cctx = client_ctx(p_ca, true);
    struct gh_tls_listen *l = listen_of(sctx);
    struct pair p;
    pair_open(&p, TCP_PAIR, 0, 1 << 16);
    pair_tls(&p, l, cctx, name, NULL);
    p.c.send_first = verify_send_first;
    ep_send(&p.c, "GET / HTTP/1.1\r\n\r\n", 18);
    assert_true(pump(&p, client_failed_or_done, 1000));
    int err = p.c.err;
    const char *e = gh_tls_error(&p.c.x);
    snprintf(why, cap, "%s", e != NULL ? e : "");
    if (err == 0) {
        assert_null(e);
        assert_int_equal(p.s.err, 0);
        assert_int_equal(p.s.in_len, 18);
    } else {
        assert_int_equal(p.s.in_len, 0);
        /* what the server learns: the client's alert, or the connection closing */
        gh_xprt_close(&p.c.x);
        assert_true(pump(&p, server_done, 1000));
    }
    e = gh_tls_error(&p.s.x);
    snprintf(server_why, scap, "%s", e != NULL ? e : "");
    pair_close(&p);
    gh_tls_listen_unref(l);
    gh_tls_ctx_free(sctx);
    gh_tls_ctx_free(cctx);
    return err;
}

static void
test_verify_self_signed(void **state)
{
    (void)state;
    char why[128], swhy[128];
    struct gh_tls_stats st0, st1;
    gh_tls_get_stats(&st0);
    int err = try_verify(p_self, p_self_key, "a.test", why, sizeof(why), swhy, sizeof(swhy));
    assert_int_equal(err, -EPROTO);
    print_message("self-signed: client '%s', server '%s'\n", why, swhy);
    assert_true(strncmp(why, "certificate verify failed: ", 27) == 0);
    assert_non_null(strstr(why, "self"));
    assert_non_null(strstr(why, "signed certificate"));
    /* the client's alert reached the server, which counts a failed handshake */
    assert_string_equal(swhy, "tlsv1 alert unknown ca");
    gh_tls_get_stats(&st1);
    assert_int_equal(st1.handshakes, st0.handshakes);
    assert_int_equal(st1.failed, st0.failed + 1);
}

/*
 * KNOWN BUG: the same failure found by a send (the client's owner sends its request before
 * looking for a response, as upstream/h1client.c does) leaves OpenSSL's alert in the pending
 * buffer: tls_sendv returns the error without flushing it, so the origin never learns why and
 * sees the connection just close.
 */
static void
test_verify_failure_alert_from_send(void **state)
{
    (void)state;
    char why[128], swhy[128];
    verify_send_first = true;
    int err = try_verify(p_self, p_self_key, "a.test", why, sizeof(why), swhy, sizeof(swhy));
    verify_send_first = false;
    assert_int_equal(err, -EPROTO);
    assert_true(strncmp(why, "certificate verify failed: ", 27) == 0);
    if (strcmp(swhy, "tlsv1 alert unknown ca") != 0)
        fail_msg("KNOWN BUG (alert left in pend by tls_sendv): the server saw '%s'", swhy);
}

static void
test_verify_unknown_issuer(void **state)
{
    (void)state;
    char why[128], swhy[128];
    int err = try_verify(p_alien, p_alien_key, "a.test", why, sizeof(why), swhy, sizeof(swhy));
    assert_int_equal(err, -EPROTO);
    print_message("unknown issuer: client '%s', server '%s'\n", why, swhy);
    assert_string_equal(why, "certificate verify failed: unable to get local issuer certificate");
}

static void
test_verify_name_mismatch(void **state)
{
    (void)state;
    char why[128], swhy[128];
    int err = try_verify(p_leaf, p_leaf_key, "other.test", why, sizeof(why), swhy, sizeof(swhy));
    assert_int_equal(err, -EPROTO);
    assert_string_equal(why, "certificate verify failed: hostname mismatch");
    /* the right name and one of the other DNS names pass */
    assert_int_equal(try_verify(p_leaf, p_leaf_key, "a.test", why, sizeof(why), swhy, sizeof(swhy)),
                     0);
    assert_int_equal(
        try_verify(p_leaf, p_leaf_key, "localhost", why, sizeof(why), swhy, sizeof(swhy)), 0);
    /* a wildcard covers one label */
    assert_int_equal(
        try_verify(p_wild, p_wild_key, "x.b.test", why, sizeof(why), swhy, sizeof(swhy)), 0);
    assert_int_equal(
        try_verify(p_wild, p_wild_key, "y.x.b.test", why, sizeof(why), swhy, sizeof(swhy)),
        -EPROTO);
    assert_string_equal(why, "certificate verify failed: hostname mismatch");
}

static void
test_verify_ip_literal(void **state)
{
    (void)state;
    char why[128], swhy[128];
    assert_int_equal(
        try_verify(p_leaf, p_leaf_key, "127.0.0.1", why, sizeof(why), swhy, sizeof(swhy)), 0);
    assert_int_equal(try_verify(p_leaf, p_leaf_key, "::1", why, sizeof(why), swhy, sizeof(swhy)),
                     0);
    int err = try_verify(p_leaf, p_leaf_key, "127.0.0.2", why, sizeof(why), swhy, sizeof(swhy));
    assert_int_equal(err, -EPROTO);
    assert_string_equal(why, "certificate verify failed: IP address mismatch");
    /* a DNS SAN that reads like the address does not count for an IP name */
    err = try_verify(p_wild, p_wild_key, "127.0.0.1", why, sizeof(why), swhy, sizeof(swhy));
    assert_int_equal(err, -EPROTO);
}

/* No SNI for an IP literal; verification off accepts any certificate. */
static void
test_ip_literal_sends_no_sni_and_verify_off(void **state)
{
    (void)state;
    struct gh_tls_ctx *sctx = server_ctx(p_self, p_self_key);
    struct gh_tls_ctx *cctx = client_ctx(NULL, false);
    struct gh_tls_listen *l = listen_of(sctx);
    struct pair p;
    pair_open(&p, UNIX_PAIR, 0, 1 << 16);
    pair_tls(&p, l, cctx, "127.0.0.1", NULL);
    exchange(&p, "q", "a");
    assert_null(gh_tls_server_name(&p.s.x));
    assert_null(gh_tls_error(&p.c.x));
    pair_close(&p);
    gh_tls_listen_unref(l);
    gh_tls_ctx_free(sctx);
    gh_tls_ctx_free(cctx);
}

/* ---- SNI ---- */

/* Connect with SNI `name` (verification off), exchange, and return the CN the client got. */
static void
sni_cn(struct gh_tls_listen *l, struct gh_tls_ctx *cctx, const char *name, char *cn, size_t cap)
{
    struct pair p;
    pair_open(&p, UNIX_PAIR, 0, 1 << 16);
    pair_tls(&p, l, cctx, name, NULL);
    exchange(&p, "q", "a");
    peer_cn(&p.c.x, cn, cap);
    assert_string_equal(gh_tls_server_name(&p.s.x), name);
    uint32_t alen;
    assert_non_null(gh_tls_alpn(&p.s.x, &alen));
    assert_int_equal(alen, 8);
    pair_close(&p);
}

static void
test_sni_picks_context(void **state)
{
    (void)state;
    struct gh_tls_ctx *dflt = server_ctx(p_leaf, p_leaf_key);
    struct gh_tls_ctx *exact = server_ctx(p_exact, p_exact_key);
    struct gh_tls_ctx *wild = server_ctx(p_wild, p_wild_key);
    struct gh_tls_sni names[] = {{"c.test", 6, false, exact}, {".b.test", 7, true, wild}};
    struct gh_tls_listen *l = gh_tls_listen_new(dflt, names, 2);
    assert_non_null(l);
    /* the listener holds its own references */
    gh_tls_ctx_free(dflt);
    gh_tls_ctx_free(exact);
    gh_tls_ctx_free(wild);
    struct gh_tls_ctx *cctx = client_ctx(NULL, false);
    char cn[64];
    sni_cn(l, cctx, "c.test", cn, sizeof(cn));
    assert_string_equal(cn, "c.test");
    sni_cn(l, cctx, "C.Test", cn, sizeof(cn));
    assert_string_equal(cn, "c.test");
    sni_cn(l, cctx, "x.b.test", cn, sizeof(cn));
    assert_string_equal(cn, "wild.b.test");
    sni_cn(l, cctx, "deep.x.b.test", cn, sizeof(cn));
    assert_string_equal(cn, "wild.b.test");
    sni_cn(l, cctx, "b.test", cn, sizeof(cn)); /* the wildcard needs a label before */
    assert_string_equal(cn, "a.test");
    sni_cn(l, cctx, "xc.test", cn, sizeof(cn));
    assert_string_equal(cn, "a.test");
    sni_cn(l, cctx, "a.test", cn, sizeof(cn));
    assert_string_equal(cn, "a.test");
    sni_cn(l, cctx, "unknown.test", cn, sizeof(cn));
    assert_string_equal(cn, "a.test");
    gh_tls_ctx_free(cctx);

    /* with verification: the picked certificate passes for its names */
    cctx = client_ctx(p_ca, true);
    sni_cn(l, cctx, "c.test", cn, sizeof(cn));
    assert_string_equal(cn, "c.test");
    sni_cn(l, cctx, "y.b.test", cn, sizeof(cn));
    assert_string_equal(cn, "wild.b.test");
    gh_tls_ctx_free(cctx);
    gh_tls_listen_unref(l);
}

/*
 * KNOWN BUG: gh_tls_listen_new copies the gh_tls_sni entries but not the names they point to
 * (in conf/tls.c, the config's arena). A connection holds the listener until its handshake is
 * over, which may be after the config that made it is freed (a reload while a client has
 * connected but not sent its ClientHello yet): sni_cb then reads freed memory. Here the names'
 * memory is overwritten instead of freed (the test must not crash): the SNI no longer matches.
 */
static void
test_sni_names_outlive_config(void **state)
{
    (void)state;
    struct gh_tls_ctx *dflt = server_ctx(p_leaf, p_leaf_key);
    struct gh_tls_ctx *exact = server_ctx(p_exact, p_exact_key);
    char *arena = strdup("c.test");
    assert_non_null(arena);
    struct gh_tls_sni names[] = {{arena, 6, false, exact}};
    struct gh_tls_listen *l = gh_tls_listen_new(dflt, names, 1);
    gh_tls_ctx_free(dflt);
    gh_tls_ctx_free(exact);
    struct gh_tls_ctx *cctx = client_ctx(NULL, false);
    struct pair p;
    pair_open(&p, UNIX_PAIR, 0, 1 << 16);
    pair_tls(&p, l, cctx, "c.test", NULL);
    /* the config goes away: its reference, then its memory */
    gh_tls_listen_unref(l);
    memset(arena, 'x', 6);
    exchange(&p, "q", "a");
    char cn[64];
    peer_cn(&p.c.x, cn, sizeof(cn));
    pair_close(&p);
    free(arena);
    gh_tls_ctx_free(cctx);
    if (strcmp(cn, "c.test") != 0)
        fail_msg("KNOWN BUG (listener borrows its names): SNI c.test got '%s'", cn);
}

/* ---- sessions ---- */

/* One connection with the session slot sess; returns whether the server resumed. */
static bool
conn_with_slot(struct gh_tls_listen *l, struct gh_tls_ctx *cctx, const char *name, void **sess,
               const char *proto)
{
    struct pair p;
    pair_open(&p, UNIX_PAIR, 0, 1 << 16);
    pair_tls(&p, l, cctx, name, sess);
    exchange(&p, "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    assert_string_equal(gh_tls_protocol(&p.c.x), proto);
    bool reused = gh_tls_reused(&p.s.x);
    assert_true(gh_tls_reused(&p.c.x) == reused);
    pair_close(&p);
    return reused;
}

/*
 * Three connections with one slot: a full handshake, then resumptions. Each connection must
 * leave a session the next one can resume: in TLS 1.3 a client uses a ticket once (OpenSSL
 * marks the session not resumable once used), so a resumed connection needs a new ticket.
 */
static void
resume(unsigned protocols, bool tickets, uint32_t cache, const char *proto)
{
    const char *c[1] = {p_leaf}, *k[1] = {p_leaf_key};
    struct gh_tls_server_opts o = sopts(c, k);
    o.protocols = protocols;
    o.tickets = tickets;
    o.session_cache = cache;
    struct gh_tls_ctx *sctx = server_ctx_o(&o);
    struct gh_tls_listen *l = listen_of(sctx);
    gh_tls_ctx_free(sctx);
    struct gh_tls_ctx *cctx = client_ctx(p_ca, true);
    struct gh_tls_stats st0, st1;
    gh_tls_get_stats(&st0);
    void *sess = NULL;
    assert_false(conn_with_slot(l, cctx, "a.test", &sess, proto));
    /* TLS 1.3: the ticket came after the handshake and was read with the response */
    assert_non_null(sess);
    assert_true(SSL_SESSION_is_resumable(sess));
    assert_true(conn_with_slot(l, cctx, "a.test", &sess, proto));
    assert_non_null(sess);
    bool renewed = SSL_SESSION_is_resumable(sess);
    bool third = conn_with_slot(l, cctx, "a.test", &sess, proto);
    gh_tls_get_stats(&st1);
    assert_int_equal(st1.handshakes, st0.handshakes + 3);
    /* without the slot: a full handshake */
    assert_false(conn_with_slot(l, cctx, "a.test", NULL, proto));
    gh_tls_session_free(sess);
    gh_tls_ctx_free(cctx);
    gh_tls_listen_unref(l);
    if (!renewed || !third)
        fail_msg("KNOWN BUG (TLS 1.3 tickets not renewed on resumption): after a resumed "
                 "connection the slot holds %s session, the next connection %s resumed",
                 renewed ? "a resumable" : "a used-up", third ? "is" : "is not");
    assert_int_equal(st1.resumed, st0.resumed + 2);
}

/*
 * KNOWN BUG: ticket_cb (tls_ctx.c) returns 1 ("valid, do not renew") when a ticket was made
 * with the current key, and under TLS 1.3 OpenSSL then sends no new ticket after a resumed
 * handshake. The client has used up its ticket (single use), so every other connection is a
 * full handshake. nginx's callback returns 2 (renew) under TLS 1.3 for this reason.
 */
static void
test_resume_tls13_tickets(void **state)
{
    (void)state;
    resume(GH_TLS_V12 | GH_TLS_V13, true, 0, "TLSv1.3");
}

static void
test_resume_tls13_cache(void **state)
{
    (void)state;
    resume(GH_TLS_V13, false, 100, "TLSv1.3");
}

static void
test_resume_tls12_tickets(void **state)
{
    (void)state;
    resume(GH_TLS_V12, true, 0, "TLSv1.2");
}

static void
test_resume_tls12_cache(void **state)
{
    (void)state;
    resume(GH_TLS_V12, false, 100, "TLSv1.2");
}

/* Ticket keys read from a file: tickets made by one context resume at another with the same
 * key file (two processes, or a reload). */
static void
test_resume_ticket_key_file(void **state)
{
    (void)state;
    const char *c[1] = {p_leaf}, *k[1] = {p_leaf_key}, *tk[1] = {p_tkey80};
    struct gh_tls_server_opts o = sopts(c, k);
    o.ticket_keys = tk;
    o.n_ticket_keys = 1;
    struct gh_tls_ctx *s1 = server_ctx_o(&o), *s2 = server_ctx_o(&o);
    struct gh_tls_listen *l1 = listen_of(s1), *l2 = listen_of(s2);
    gh_tls_ctx_free(s1);
    gh_tls_ctx_free(s2);
    struct gh_tls_ctx *cctx = client_ctx(p_ca, true);
    void *sess = NULL;
    assert_false(conn_with_slot(l1, cctx, "a.test", &sess, "TLSv1.3"));
    assert_true(conn_with_slot(l2, cctx, "a.test", &sess, "TLSv1.3"));
    gh_tls_session_free(sess);
    gh_tls_ctx_free(cctx);
    gh_tls_listen_unref(l1);
    gh_tls_listen_unref(l2);
}

/*
 * KNOWN BUG (security): every server context has the same session id context ("gatehouse") and
 * the made ticket keys are process-wide, and the SNI switch happens after OpenSSL has picked
 * the session to resume. A session made at a server without client certificates resumes at a
 * server of the same listener that requires them (tls_verify_client on): the client gets in
 * without a certificate.
 */
static void
test_resume_across_servers_skips_client_cert(void **state)
{
    (void)state;
    const char *c[1] = {p_exact}, *k[1] = {p_exact_key};
    struct gh_tls_server_opts o = sopts(c, k);
    o.client_ca = p_ca;
    o.verify_client = GH_TLS_VERIFY_ON;
    o.verify_depth = 2;
    struct gh_tls_ctx *mtls = server_ctx_o(&o);
    struct gh_tls_ctx *dflt = server_ctx(p_leaf, p_leaf_key);
    struct gh_tls_sni names[] = {{"c.test", 6, false, mtls}};
    struct gh_tls_listen *l = gh_tls_listen_new(dflt, names, 1);
    gh_tls_ctx_free(dflt);
    gh_tls_ctx_free(mtls);
    struct gh_tls_ctx *cctx = client_ctx(p_ca, true); /* no client certificate */

    /* without a session, c.test refuses the client */
    struct pair p;
    pair_open(&p, UNIX_PAIR, 0, 1 << 16);
    pair_tls(&p, l, cctx, "c.test", NULL);
    want_c = 0;
    want_s = 1;
    ep_send(&p.c, "q", 1);
    assert_true(pump(&p, got_wanted, 1000));
    assert_true(p.s.err != 0);
    assert_int_equal(p.s.in_len, 0);
    print_message("c.test without a certificate: server '%s'\n", gh_tls_error(&p.s.x));
    pair_close(&p);

    /* a session from a.test, then c.test with it */
    void *sess = NULL;
    assert_false(conn_with_slot(l, cctx, "a.test", &sess, "TLSv1.3"));
    assert_non_null(sess);
    pair_open(&p, UNIX_PAIR, 0, 1 << 16);
    pair_tls(&p, l, cctx, "c.test", &sess);
    want_c = 0;
    want_s = 1;
    ep_send(&p.c, "q", 1);
    assert_true(pump(&p, got_wanted, 1000));
    bool got_in = p.s.in_len == 1;
    bool reused = gh_tls_reused(&p.s.x);
    const char *verify = gh_tls_client_verify(&p.s.x);
    print_message("c.test with a.test's session: got in %d, reused %d, client_verify %s\n", got_in,
                  reused, verify);
    pair_close(&p);
    gh_tls_session_free(sess);
    gh_tls_ctx_free(cctx);
    gh_tls_listen_unref(l);
    if (got_in)
        fail_msg("KNOWN BUG (session id context shared by all servers): a client without a "
                 "certificate got into a server with tls_verify_client on (resumed %d)",
                 reused);
}

/* ---- client certificates ---- */

static void
test_client_certificate(void **state)
{
    (void)state;
    const char *c[1] = {p_leaf}, *k[1] = {p_leaf_key};
    struct gh_tls_server_opts o = sopts(c, k);
    o.client_ca = p_ca;
    o.verify_client = GH_TLS_VERIFY_ON;
    o.verify_depth = 2;
    struct gh_tls_ctx *sctx = server_ctx_o(&o);
    struct gh_tls_listen *l = listen_of(sctx);
    gh_tls_ctx_free(sctx);
    struct reports rs = {0};
    struct gh_tls_client_opts co = {
        .ca_file = p_ca, .verify = true, .cert = p_exact, .key = p_exact_key};
    struct gh_tls_ctx *cctx = gh_tls_client_ctx_new(&co, rep, &rs);
    assert_non_null(cctx);
    assert_int_equal(rs.n, 0);
    struct pair p;
    pair_open(&p, UNIX_PAIR, 0, 1 << 16);
    pair_tls(&p, l, cctx, "a.test", NULL);
    exchange(&p, "q", "a");
    assert_string_equal(gh_tls_client_verify(&p.s.x), "SUCCESS");
    assert_string_equal(gh_tls_client_dn(&p.s.x), "CN=c.test,O=Gatehouse tests");
    assert_ptr_equal(gh_tls_client_dn(&p.s.x), gh_tls_client_dn(&p.s.x)); /* made once */
    pair_close(&p);
    gh_tls_ctx_free(cctx);
    gh_tls_listen_unref(l);
}

/* ---- building contexts: what is reported ---- */

static struct gh_tls_ctx *
try_server(const struct gh_tls_server_opts *o, struct reports *rs)
{
    memset(rs, 0, sizeof(*rs));
    return gh_tls_server_ctx_new(o, rep, rs);
}

static void
test_server_ctx_errors(void **state)
{
    (void)state;
    struct reports rs;
    char missing[160], msg[600];
    snprintf(missing, sizeof(missing), "%s/none.pem", dir);

    /* a certificate file that is not there: named in the message */
    const char *c[2] = {missing, NULL}, *k[2] = {p_leaf_key, NULL};
    struct gh_tls_server_opts o = sopts(c, k);
    assert_null(try_server(&o, &rs));
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].item, GH_TLS_I_CERT);
    assert_int_equal(rs.r[0].idx, 0);
    assert_false(rs.r[0].warning);
    snprintf(msg, sizeof(msg), "cannot read '%s': No such file or directory", missing);
    assert_string_equal(rs.r[0].msg, msg);

    /* the key file */
    c[0] = p_leaf;
    k[0] = missing;
    assert_null(try_server(&o, &rs));
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].item, GH_TLS_I_KEY);
    assert_string_equal(rs.r[0].msg, msg);

    /* the second pair: its index */
    c[1] = missing;
    k[0] = p_leaf_key;
    k[1] = p_leaf_key;
    o.n_certs = 2;
    assert_null(try_server(&o, &rs));
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].item, GH_TLS_I_CERT);
    assert_int_equal(rs.r[0].idx, 1);
    o.n_certs = 1;

    /* not PEM */
    c[0] = p_garbage;
    assert_null(try_server(&o, &rs));
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].item, GH_TLS_I_CERT);
    snprintf(msg, sizeof(msg), "cannot load certificate '%s': ", p_garbage);
    assert_true(strncmp(rs.r[0].msg, msg, strlen(msg)) == 0);

    /* a key that does not match the certificate */
    c[0] = p_leaf;
    k[0] = p_other_key;
    assert_null(try_server(&o, &rs));
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].item, GH_TLS_I_KEY);
    assert_false(rs.r[0].warning);
    assert_non_null(strstr(rs.r[0].msg, p_other_key));
    assert_true(strstr(rs.r[0].msg, "mismatch") != NULL ||
                strstr(rs.r[0].msg, "does not match") != NULL);

    /* an expired certificate: a warning, the context is built */
    c[0] = p_exp;
    k[0] = p_exp_key;
    struct gh_tls_ctx *ctx = try_server(&o, &rs);
    assert_non_null(ctx);
    gh_tls_ctx_free(ctx);
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].item, GH_TLS_I_CERT);
    assert_int_equal(rs.r[0].idx, 0);
    assert_true(rs.r[0].warning);
    snprintf(msg, sizeof(msg), "certificate '%s' expired on ", p_exp);
    assert_true(strncmp(rs.r[0].msg, msg, strlen(msg)) == 0);
    assert_non_null(strstr(rs.r[0].msg, "GMT"));

    /* cipher lists */
    c[0] = p_leaf;
    k[0] = p_leaf_key;
    o.ciphers = "NOT-A-CIPHER";
    assert_null(try_server(&o, &rs));
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].item, GH_TLS_I_CIPHERS);
    assert_string_equal(rs.r[0].msg, "invalid cipher list 'NOT-A-CIPHER': no cipher match");
    o.ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384";
    o.ciphersuites = "TLS_NOT_A_SUITE";
    assert_null(try_server(&o, &rs));
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].item, GH_TLS_I_SUITES);
    assert_true(strncmp(rs.r[0].msg, "invalid TLS 1.3 cipher suites 'TLS_NOT_A_SUITE'", 47) == 0);
    o.ciphersuites = NULL;

    /* ticket keys */
    const char *tk[1] = {p_tkey10};
    o.ticket_keys = tk;
    o.n_ticket_keys = 1;
    assert_null(try_server(&o, &rs));
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].item, GH_TLS_I_TICKET_KEY);
    snprintf(msg, sizeof(msg), "'%s' must hold 80 or 48 bytes, not fewer", p_tkey10);
    assert_string_equal(rs.r[0].msg, msg);
    o.n_ticket_keys = 0;

    /* client CA, OCSP */
    o.client_ca = missing;
    o.verify_client = GH_TLS_VERIFY_ON;
    assert_null(try_server(&o, &rs));
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].item, GH_TLS_I_CLIENT_CA);
    o.client_ca = NULL;
    o.ocsp_file = p_garbage;
    assert_null(try_server(&o, &rs));
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].item, GH_TLS_I_OCSP);
    snprintf(msg, sizeof(msg), "'%s' is not a DER-encoded OCSP response", p_garbage);
    assert_string_equal(rs.r[0].msg, msg);
    o.ocsp_file = NULL;

    /* all well again */
    ctx = try_server(&o, &rs);
    assert_non_null(ctx);
    assert_int_equal(rs.n, 0);
    gh_tls_ctx_free(ctx);
    assert_int_equal(ERR_peek_error(), 0); /* nothing left in OpenSSL's queue */
}

static void
test_client_ctx_errors(void **state)
{
    (void)state;
    struct reports rs = {0};
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/none.pem", dir);
    struct gh_tls_client_opts o = {.ca_file = missing, .verify = true};
    assert_null(gh_tls_client_ctx_new(&o, rep, &rs));
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].item, GH_TLS_I_CLIENT_CA);
    assert_non_null(strstr(rs.r[0].msg, missing));
    rs.n = 0;
    o.ca_file = p_garbage;
    assert_null(gh_tls_client_ctx_new(&o, rep, &rs));
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].item, GH_TLS_I_CLIENT_CA);
    assert_true(strncmp(rs.r[0].msg, "cannot load CA certificates from", 32) == 0);
    rs.n = 0;
    /* a client certificate: a key that does not match, then an expired one (a warning) */
    o.ca_file = p_ca;
    o.cert = p_leaf;
    o.key = p_other_key;
    assert_null(gh_tls_client_ctx_new(&o, rep, &rs));
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.r[0].item, GH_TLS_I_KEY);
    rs.n = 0;
    o.cert = p_exp;
    o.key = p_exp_key;
    struct gh_tls_ctx *ctx = gh_tls_client_ctx_new(&o, rep, &rs);
    assert_non_null(ctx);
    assert_int_equal(rs.n, 1);
    assert_true(rs.r[0].warning);
    gh_tls_ctx_free(ctx);
    assert_int_equal(ERR_peek_error(), 0);
}

/* ---- the drained check with a ticket behind a response ---- */

static void
server_new_ticket(struct pair *p)
{
    struct tls_conn *t = (struct tls_conn *)p->s.x.layer;
    assert_int_equal(SSL_new_session_ticket(t->ssl), 1);
    assert_int_equal(SSL_do_handshake(t->ssl), 1); /* the ticket goes into the pending buffer */
    gh_xprt_on_events(&p->s.x, EPOLLOUT);          /* and out */
    assert_null(t->pend);
}

static void
test_drained_with_ticket_after_response(void **state)
{
    (void)state;
    struct gh_tls_ctx *sctx = server_ctx(p_leaf, p_leaf_key);
    struct gh_tls_listen *l = listen_of(sctx);
    gh_tls_ctx_free(sctx);
    struct gh_tls_ctx *cctx = client_ctx(p_ca, true);
    void *sess = NULL;
    struct pair p;
    pair_open(&p, UNIX_PAIR, 0, 1 << 16);
    pair_tls(&p, l, cctx, "a.test", &sess);
    exchange(&p, "GET /1", "resp 1");
    assert_non_null(sess);
    p.c.hold_reads = true;
    char b[100];

    for (int round = 0; round < 2; round++) {
        /* round 0: the ticket is there with the response; round 1: it comes after the
         * response was read */
        void *before = sess;
        ep_send(&p.s, "response", 8);
        if (round == 0)
            server_new_ticket(&p);
        assert_true(pump(&p, client_can_read, 100));
        settle(&p);
        assert_int_equal(gh_xprt_recv(&p.c.x, b, 8), 8);
        assert_memory_equal(b, "response", 8);
        if (round == 1) {
            assert_false(gh_xprt_is(&p.c.x, GH_XPRT_CAN_READ)); /* the socket was empty */
            server_new_ticket(&p);
            assert_true(pump(&p, client_can_read, 100));
        }
        assert_true(gh_xprt_is(&p.c.x, GH_XPRT_CAN_READ));
        assert_true(gh_xprt_drained(&p.c.x));
        assert_false(gh_xprt_is(&p.c.x, GH_XPRT_CAN_READ));
        /* the ticket was taken in: a new session in the slot */
        assert_non_null(sess);
        assert_ptr_not_equal(sess, before);
        assert_true(SSL_SESSION_is_resumable(sess));
        /* and the connection goes on (as a pooled one would) */
        p.c.hold_reads = false;
        exchange(&p, "GET /2", "resp 2");
        p.c.hold_reads = true;
    }

    /* stray application data after a response: not drained */
    ep_send(&p.s, "responseEXTRA", 13);
    assert_true(pump(&p, client_can_read, 100));
    settle(&p);
    assert_int_equal(gh_xprt_recv(&p.c.x, b, 8), 8);
    assert_true(gh_xprt_is(&p.c.x, GH_XPRT_CAN_READ));
    assert_false(gh_xprt_drained(&p.c.x));
    pair_close(&p);

    /* the session from the ticket resumes */
    pair_open(&p, UNIX_PAIR, 0, 1 << 16);
    pair_tls(&p, l, cctx, "a.test", &sess);
    exchange(&p, "GET /3", "resp 3");
    assert_true(gh_tls_reused(&p.s.x));
    pair_close(&p);
    gh_tls_session_free(sess);
    gh_tls_ctx_free(cctx);
    gh_tls_listen_unref(l);
}

/* ---- one connection's failure and another's receive ---- */

/*
 * KNOWN BUG: when SSL_read fails after a receive already got bytes (a record that does not
 * decrypt right behind good ones), tls_recv returns the bytes and leaves the failure in
 * OpenSSL's per-thread error queue. SSL_get_error looks at that queue first, so the next
 * receive of ANOTHER connection of the thread that finds nothing (SSL_ERROR_WANT_READ) is taken
 * for a failure (SSL_ERROR_SSL) and that connection is broken.
 */
static void
test_failure_stays_with_its_connection(void **state)
{
    (void)state;
    struct fixture a, b;
    fx_open(&a, UNIX_PAIR, 0, 1 << 16);
    fx_open(&b, UNIX_PAIR, 0, 1 << 16);
    a.p.c.hold_reads = true;
    /* a good record, then one that does not decrypt */
    ep_send(&a.p.s, "hello", 5);
    static const unsigned char bad[5 + 32] = {0x17, 0x03, 0x03, 0x00, 0x20, 1, 2, 3};
    assert_int_equal(write(a.p.s.x.io.fd, bad, sizeof(bad)), (ssize_t)sizeof(bad));
    assert_true(pump(&a.p, client_can_read, 100));
    settle(&a.p);
    char buf[100];
    assert_int_equal(gh_xprt_recv(&a.p.c.x, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "hello", 5);

    /* b has nothing to read: a spurious wake-up must give GH_AGAIN */
    gh_xprt_on_events(&b.p.c.x, EPOLLIN);
    ssize_t r = gh_xprt_recv(&b.p.c.x, buf, sizeof(buf));
    char why[128];
    snprintf(why, sizeof(why), "%s", gh_tls_error(&b.p.c.x) ? gh_tls_error(&b.p.c.x) : "-");

    /* a's failure comes with its next receive */
    ssize_t ra = gh_xprt_recv(&a.p.c.x, buf, sizeof(buf));
    ERR_clear_error();
    fx_close(&a);
    fx_close(&b);
    if (r != GH_AGAIN)
        fail_msg("KNOWN BUG (error queue left behind by tls_recv): an idle connection's receive "
                 "gave %zd (%s) because another one failed",
                 r, why);
    assert_true(ra < 0 && ra != GH_AGAIN);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_data),
        cmocka_unit_test(test_readiness_contract),
        cmocka_unit_test(test_data_then_close_notify),
        cmocka_unit_test(test_eof_without_close_notify),
        cmocka_unit_test(test_bulk_client_to_server),
        cmocka_unit_test(test_bulk_server_to_client),
        cmocka_unit_test(test_bulk_both_ways),
        cmocka_unit_test(test_bulk_small_sends_unix),
        cmocka_unit_test(test_verify_self_signed),
        cmocka_unit_test(test_verify_failure_alert_from_send),
        cmocka_unit_test(test_verify_unknown_issuer),
        cmocka_unit_test(test_verify_name_mismatch),
        cmocka_unit_test(test_verify_ip_literal),
        cmocka_unit_test(test_ip_literal_sends_no_sni_and_verify_off),
        cmocka_unit_test(test_sni_picks_context),
        cmocka_unit_test(test_sni_names_outlive_config),
        cmocka_unit_test(test_resume_tls13_tickets),
        cmocka_unit_test(test_resume_tls13_cache),
        cmocka_unit_test(test_resume_tls12_tickets),
        cmocka_unit_test(test_resume_tls12_cache),
        cmocka_unit_test(test_resume_ticket_key_file),
        cmocka_unit_test(test_resume_across_servers_skips_client_cert),
        cmocka_unit_test(test_client_certificate),
        cmocka_unit_test(test_server_ctx_errors),
        cmocka_unit_test(test_client_ctx_errors),
        cmocka_unit_test(test_drained_with_ticket_after_response),
        cmocka_unit_test(test_failure_stays_with_its_connection),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
