/*
 * test_listener.c - the listener table (plan / commit / drop across reloads,
 * checked on the real descriptors) and the accepting side (gh_lsock: what
 * waits at open, the callback's arguments, batches, EMFILE, and its lifetime
 * through the loop's deferred free).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#ifdef HAVE_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* included for ACCEPT_BATCH and ACCEPT_RETRY_MS */
#include "net/listener.c"

#define THREADS 3

/* ---- helpers ---- */

/* A loopback address with a port nobody uses right now. */
static void
free_addr(struct sockaddr_storage *ss, socklen_t *len)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(sa);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &l), 0);
    close(s);
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &sa, sizeof(sa));
    *len = sizeof(sa);
}

static uint16_t
port_of(const struct sockaddr_storage *ss)
{
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static struct gh_listen_spec
spec_of(const struct sockaddr_storage *ss, socklen_t len)
{
    return (struct gh_listen_spec){ss, len, 64, 0, "test address"};
}

static bool
fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

static int
open_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* fds is a listening socket bound to ss, non-blocking, close-on-exec, SO_REUSEPORT. */
static void
assert_listening_on(int fd, const struct sockaddr_storage *ss)
{
    int v = 0;
    socklen_t vl = sizeof(v);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl), 0);
    assert_int_equal(v, 1);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, &vl), 0);
    assert_int_equal(v, 1);
    struct sockaddr_storage got;
    socklen_t gl = sizeof(got);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&got, &gl), 0);
    assert_int_equal(port_of(&got), port_of(ss));
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

static void
close_all(const int *fds)
{
    for (int i = 0; i < THREADS; i++)
        close(fds[i]);
}

/* A socket that holds ss the way another program would (reuseport: another Gatehouse). */
static int
occupy(const struct sockaddr_storage *ss, socklen_t len, bool reuseport)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (reuseport)
        assert_int_equal(setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
    assert_int_equal(bind(s, (const struct sockaddr *)ss, len), 0);
    assert_int_equal(listen(s, 4), 0);
    return s;
}

/* ---- the table ---- */

static void
test_plan_opens_one_socket_per_thread(void **state)
{
    (void)state;
    struct gh_listeners *t = gh_listeners_new(THREADS);
    struct sockaddr_storage a;
    socklen_t alen;
    free_addr(&a, &alen);
    struct gh_listen_spec s = spec_of(&a, alen);
    int before = open_fd_count();
    struct gh_listen_plan p;
    assert_int_equal(gh_listeners_plan(t, &s, 1, &p), 0);
    assert_int_equal(p.n, 1);
    assert_false(p.g[0].reused);
    assert_int_equal(p.g[0].len, alen);
    assert_memory_equal(&p.g[0].ss, &a, alen);
    assert_int_equal(open_fd_count(), before + THREADS);
    int fds[THREADS];
    for (int i = 0; i < THREADS; i++) {
        fds[i] = p.g[0].fds[i];
        assert_listening_on(fds[i], &a);
        for (int j = 0; j < i; j++)
            assert_int_not_equal(fds[i], fds[j]);
    }
    gh_listeners_commit(t, &p);
    assert_int_equal(p.n, 0);
    assert_null(p.g);
    for (int i = 0; i < THREADS; i++)
        assert_true(fd_is_open(fds[i]));
    /* the table's sockets are the threads' to close */
    close_all(fds);
    gh_listeners_free(t);
}

static void
test_second_plan_reuses_kept_addresses(void **state)
{
    (void)state;
    struct gh_listeners *t = gh_listeners_new(THREADS);
    struct sockaddr_storage a, b;
    socklen_t alen, blen;
    free_addr(&a, &alen);
    free_addr(&b, &blen);
    struct gh_listen_spec sa = spec_of(&a, alen), sb = spec_of(&b, blen);
    struct gh_listen_plan p;
    assert_int_equal(gh_listeners_plan(t, &sa, 1, &p), 0);
    int afds[THREADS];
    memcpy(afds, p.g[0].fds, sizeof(afds));
    gh_listeners_commit(t, &p);

    /* reload: B first, then A kept */
    struct gh_listen_spec two[2] = {sb, sa};
    int before = open_fd_count();
    assert_int_equal(gh_listeners_plan(t, two, 2, &p), 0);
    assert_int_equal(p.n, 2);
    assert_false(p.g[0].reused);
    assert_true(p.g[1].reused);
    assert_memory_equal(p.g[1].fds, afds, sizeof(afds)); /* the very same sockets */
    assert_int_equal(open_fd_count(), before + THREADS); /* only B's are new */
    int bfds[THREADS];
    memcpy(bfds, p.g[0].fds, sizeof(bfds));
    for (int i = 0; i < THREADS; i++)
        assert_listening_on(bfds[i], &b);
    gh_listeners_commit(t, &p);

    /* reload again without A: B's sockets are kept; A's are left to their threads */
    assert_int_equal(gh_listeners_plan(t, &sb, 1, &p), 0);
    assert_true(p.g[0].reused);
    assert_memory_equal(p.g[0].fds, bfds, sizeof(bfds));
    gh_listeners_commit(t, &p);
    for (int i = 0; i < THREADS; i++) {
        assert_true(fd_is_open(afds[i]));
        assert_true(fd_is_open(bfds[i]));
    }
    close_all(afds);
    close_all(bfds);
    gh_listeners_free(t);
}

static void
test_drop_closes_only_what_the_plan_opened(void **state)
{
    (void)state;
    struct gh_listeners *t = gh_listeners_new(THREADS);
    struct sockaddr_storage a, b;
    socklen_t alen, blen;
    free_addr(&a, &alen);
    free_addr(&b, &blen);
    struct gh_listen_spec sa = spec_of(&a, alen), sb = spec_of(&b, blen);
    struct gh_listen_plan p;
    assert_int_equal(gh_listeners_plan(t, &sa, 1, &p), 0);
    int afds[THREADS];
    memcpy(afds, p.g[0].fds, sizeof(afds));
    gh_listeners_commit(t, &p);

    struct gh_listen_spec two[2] = {sa, sb};
    assert_int_equal(gh_listeners_plan(t, two, 2, &p), 0);
    int bfds[THREADS];
    memcpy(bfds, p.g[1].fds, sizeof(bfds));
    gh_listeners_drop(t, &p);
    assert_int_equal(p.n, 0);
    assert_null(p.g);
    for (int i = 0; i < THREADS; i++) {
        assert_false(fd_is_open(bfds[i])); /* opened by the plan: closed */
        assert_true(fd_is_open(afds[i]));  /* the table's: untouched */
        assert_listening_on(afds[i], &a);
    }
    /* the table is unchanged: A is still found, B is free again */
    assert_int_equal(gh_listeners_plan(t, two, 2, &p), 0);
    assert_true(p.g[0].reused);
    assert_memory_equal(p.g[0].fds, afds, sizeof(afds));
    assert_false(p.g[1].reused);
    gh_listeners_drop(t, &p);

    close_all(afds);
    gh_listeners_free(t);
}

static void
test_plan_fails_on_address_in_use(void **state)
{
    (void)state;
    struct gh_listeners *t = gh_listeners_new(THREADS);
    struct sockaddr_storage a, b, busy;
    socklen_t alen, blen, busylen;
    free_addr(&a, &alen);
    free_addr(&b, &blen);
    free_addr(&busy, &busylen);
    struct gh_listen_spec sa = spec_of(&a, alen), sb = spec_of(&b, blen);
    struct gh_listen_spec sbusy = spec_of(&busy, busylen);
    struct gh_listen_plan p;
    assert_int_equal(gh_listeners_plan(t, &sa, 1, &p), 0);
    int afds[THREADS];
    memcpy(afds, p.g[0].fds, sizeof(afds));
    gh_listeners_commit(t, &p);

    /* a plain listener and one with SO_REUSEPORT (as another Gatehouse would hold it): a
     * reuseport socket of ours could share the second silently, the probe refuses both */
    for (int reuseport = 0; reuseport < 2; reuseport++) {
        int other = occupy(&busy, busylen, reuseport);
        int before = open_fd_count();
        /* B is opened before the busy address fails: it must be closed again */
        struct gh_listen_spec three[3] = {sa, sb, sbusy};
        assert_int_equal(gh_listeners_plan(t, three, 3, &p), -EADDRINUSE);
        assert_int_equal(p.n, 0);
        assert_null(p.g);
        assert_int_equal(open_fd_count(), before);
        /* the busy one alone, first */
        assert_int_equal(gh_listeners_plan(t, &sbusy, 1, &p), -EADDRINUSE);
        assert_int_equal(open_fd_count(), before);
        close(other);
    }
    /* the table is unchanged */
    for (int i = 0; i < THREADS; i++)
        assert_listening_on(afds[i], &a);
    assert_int_equal(gh_listeners_plan(t, &sa, 1, &p), 0);
    assert_true(p.g[0].reused);
    assert_memory_equal(p.g[0].fds, afds, sizeof(afds));
    gh_listeners_drop(t, &p);
    /* and the address that was busy can be had once it is free */
    assert_int_equal(gh_listeners_plan(t, &sbusy, 1, &p), 0);
    gh_listeners_drop(t, &p);

    close_all(afds);
    gh_listeners_free(t);
}

/* A reload (not the start) logs each address: opened, kept, closed. */
static void
test_commit_logs_what_changed(void **state)
{
    (void)state;
    char path[] = "/tmp/gh_listener_log.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    gh_log_set(fd, GH_LL_INFO); /* the log takes fd */

    struct gh_listeners *t = gh_listeners_new(1);
    struct sockaddr_storage a, b, c;
    socklen_t alen, blen, clen;
    free_addr(&a, &alen);
    free_addr(&b, &blen);
    free_addr(&c, &clen);
    struct gh_listen_spec sa = {&a, alen, 64, 0, "127.0.0.1:1001"};
    struct gh_listen_spec sb = {&b, blen, 64, 0, "127.0.0.1:1002"};
    struct gh_listen_spec sc = {&c, clen, 64, 0, "127.0.0.1:1003"};
    struct gh_listen_plan p;
    int fds[3];
    struct gh_listen_spec ab[2] = {sa, sb};
    assert_int_equal(gh_listeners_plan(t, ab, 2, &p), 0); /* the start: main.c logs it */
    fds[0] = p.g[0].fds[0];
    fds[1] = p.g[1].fds[0];
    gh_listeners_commit(t, &p);
    struct gh_listen_spec cb[2] = {sc, sb};
    assert_int_equal(gh_listeners_plan(t, cb, 2, &p), 0);
    fds[2] = p.g[0].fds[0];
    /* a plan that is dropped logs nothing */
    struct gh_listen_plan dropped;
    assert_int_equal(gh_listeners_plan(t, &sa, 1, &dropped), 0);
    gh_listeners_drop(t, &dropped);
    gh_listeners_commit(t, &p);

    char buf[2048] = "";
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(path);
    gh_log_set(2, GH_LL_INFO); /* back to stderr */
    const char *want[] = {
        "[info] listener opened: 127.0.0.1:1003\n",
        "[info] listener kept: 127.0.0.1:1002\n",
        "[info] listener closed: 127.0.0.1:1001 (connections accepted there finish their "
        "current request)\n",
    };
    const char *at = buf;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const char *hit = strstr(at, want[i]);
        if (hit == NULL)
            fprintf(stderr, "# want %s# in:\n%s", want[i], buf);
        assert_non_null(hit);
        at = hit + strlen(want[i]);
    }
    int lines = 0; /* nothing else: not the start, not the dropped plan */
    for (const char *q = buf; *q != '\0'; q++)
        lines += *q == '\n';
    assert_int_equal(lines, 3);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    gh_listeners_free(t);
}

/* ---- the accepting side ---- */

struct accepted {
    int n;
    int fd[8];
    struct sockaddr_storage peer[8];
    struct gh_lsock *ls;
    void *data;
    bool close_listener; /* the callback closes the lsock (draining) */
    bool count_conn;     /* the callback counts the connection on the lsock */
    bool keep;           /* keep the fds (else closed at once) */
};

static struct accepted acc;

static void
on_conn(struct gh_lsock *ls, int fd, const struct sockaddr_storage *peer)
{
    assert_true(fd >= 0);
    acc.ls = ls;
    acc.data = ls->data;
    if (acc.keep && acc.n < 8) {
        acc.fd[acc.n] = fd;
        acc.peer[acc.n] = *peer;
    } else {
        close(fd);
    }
    acc.n++;
    if (acc.count_conn)
        gh_lsock_conn_opened(ls);
    if (acc.close_listener)
        gh_lsock_close(ls);
}

static int
listen_any(struct sockaddr_in *sa)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = gh_sock_listen((struct sockaddr *)&a, sizeof(a), 511);
    assert_true(fd >= 0);
    socklen_t len = sizeof(*sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)sa, &len), 0);
    return fd;
}

/* A blocking client connected to sa (the handshake completes in the backlog). */
static int
client_to(const struct sockaddr_in *sa)
{
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c >= 0);
    assert_int_equal(connect(c, (const struct sockaddr *)sa, sizeof(*sa)), 0);
    return c;
}

static void
assert_peer_is(const struct sockaddr_storage *peer, int client)
{
    struct sockaddr_in me;
    socklen_t len = sizeof(me);
    assert_int_equal(getsockname(client, (struct sockaddr *)&me, &len), 0);
    const struct sockaddr_in *p = (const struct sockaddr_in *)peer;
    assert_int_equal(p->sin_family, AF_INET);
    assert_int_equal(p->sin_port, me.sin_port);
    assert_int_equal(p->sin_addr.s_addr, me.sin_addr.s_addr);
}

static bool
freed_by_now(const void *p)
{
#ifdef HAVE_ASAN
    return __asan_address_is_poisoned(p) != 0;
#else
    (void)p;
    return true;
#endif
}

static void
test_lsock_accepts_what_waits_at_open(void **state)
{
    (void)state;
    memset(&acc, 0, sizeof(acc));
    acc.keep = true;
    struct gh_loop *l = gh_loop_new();
    struct sockaddr_in sa;
    int lfd = listen_any(&sa);
    int c1 = client_to(&sa);
    int tag;
    struct gh_lsock *ls = gh_lsock_open(l, lfd, 7, on_conn, &tag);
    assert_non_null(ls);
    /* accepted during the open, before any loop turn */
    assert_int_equal(acc.n, 1);
    assert_ptr_equal(acc.ls, ls);
    assert_ptr_equal(acc.data, &tag);
    assert_int_equal(ls->idx, 7);
    assert_peer_is(&acc.peer[0], c1);
    assert_true(fcntl(acc.fd[0], F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(acc.fd[0], F_GETFD) & FD_CLOEXEC);
    /* it is the client's connection */
    assert_int_equal(write(acc.fd[0], "hi", 2), 2);
    char b[2];
    assert_int_equal(read(c1, b, 2), 2);
    assert_memory_equal(b, "hi", 2);

    /* the next one comes through the loop */
    int c2 = client_to(&sa);
    for (int i = 0; i < 100 && acc.n < 2; i++)
        assert_true(gh_loop_run_once(l, 1000) >= 0);
    assert_int_equal(acc.n, 2);
    assert_peer_is(&acc.peer[1], c2);

    close(acc.fd[0]);
    close(acc.fd[1]);
    close(c1);
    close(c2);
    gh_lsock_close(ls);
    assert_int_equal(ls->io.fd, -1);
    assert_false(fd_is_open(lfd));
    gh_loop_free(l); /* runs the deferred free */
}

static void
test_lsock_freed_after_close_and_last_conn(void **state)
{
    (void)state;
    memset(&acc, 0, sizeof(acc));
    acc.count_conn = true;
    struct gh_loop *l = gh_loop_new();
    struct sockaddr_in sa;
    int lfd = listen_any(&sa);
    int c1 = client_to(&sa), c2 = client_to(&sa);
    struct gh_lsock *ls = gh_lsock_open(l, lfd, 0, on_conn, NULL);
    assert_non_null(ls);
    assert_int_equal(acc.n, 2);
    assert_int_equal(ls->conns, 2);

    gh_lsock_close(ls);
    assert_int_equal(ls->idx, -1);
    assert_int_equal(ls->io.fd, -1);
    assert_false(ls->freed); /* its connections still point at it */
    assert_int_equal(gh_loop_run_once(l, 0), 0);
    assert_false(freed_by_now(ls));
    gh_lsock_conn_closed(ls);
    assert_false(ls->freed);
    assert_int_equal(gh_loop_run_once(l, 0), 0);
    assert_false(freed_by_now(ls));
    gh_lsock_conn_closed(ls);
    /* handed to the loop: still intact until the batch ends */
    assert_true(ls->freed);
    assert_false(freed_by_now(ls));
    assert_int_equal(gh_loop_run_once(l, 0), 0);
    assert_true(freed_by_now(ls));
    close(c1);
    close(c2);
    gh_loop_free(l);
}

static void
test_lsock_lives_while_listening(void **state)
{
    (void)state;
    memset(&acc, 0, sizeof(acc));
    acc.count_conn = true;
    struct gh_loop *l = gh_loop_new();
    struct sockaddr_in sa;
    int lfd = listen_any(&sa);
    int c1 = client_to(&sa);
    struct gh_lsock *ls = gh_lsock_open(l, lfd, 0, on_conn, NULL);
    assert_int_equal(acc.n, 1);
    /* its last connection goes while it still listens: it stays */
    gh_lsock_conn_closed(ls);
    assert_int_equal(ls->conns, 0);
    assert_false(ls->freed);
    assert_int_equal(gh_loop_run_once(l, 0), 0);
    assert_false(freed_by_now(ls));
    int c2 = client_to(&sa);
    for (int i = 0; i < 100 && acc.n < 2; i++)
        assert_true(gh_loop_run_once(l, 1000) >= 0);
    assert_int_equal(acc.n, 2);
    gh_lsock_conn_closed(ls);
    /* closed with no connection: freed after the batch */
    gh_lsock_close(ls);
    assert_true(ls->freed);
    assert_false(freed_by_now(ls));
    assert_int_equal(gh_loop_run_once(l, 0), 0);
    assert_true(freed_by_now(ls));
    close(c1);
    close(c2);
    gh_loop_free(l);
}

static void
test_lsock_callback_may_close_it(void **state)
{
    (void)state;
    memset(&acc, 0, sizeof(acc));
    acc.close_listener = true;
    struct gh_loop *l = gh_loop_new();
    struct sockaddr_in sa;
    int lfd = listen_any(&sa);
    int c1 = client_to(&sa), c2 = client_to(&sa);
    struct gh_lsock *ls = gh_lsock_open(l, lfd, 0, on_conn, NULL);
    assert_non_null(ls);
    /* the first connection's callback closed it: the second is not accepted */
    assert_int_equal(acc.n, 1);
    assert_true(ls->freed);
    assert_int_equal(ls->io.fd, -1);
    gh_loop_run_once(l, 0);
    assert_true(freed_by_now(ls));
    close(c1);
    close(c2);
    gh_loop_free(l);
}

/* More connections than one turn accepts: the rest are taken on a later turn, without a new
 * event from the socket (edge-triggered: none would come). */
static void
test_lsock_batch_then_rest(void **state)
{
    (void)state;
    memset(&acc, 0, sizeof(acc));
    struct gh_loop *l = gh_loop_new();
    struct sockaddr_in sa;
    int lfd = listen_any(&sa);
    struct gh_lsock *ls = gh_lsock_open(l, lfd, 0, on_conn, NULL);
    assert_int_equal(acc.n, 0);
    enum { N = ACCEPT_BATCH + 44 };
    int *cl = malloc(N * sizeof(int));
    for (int i = 0; i < N; i++)
        cl[i] = client_to(&sa);
    assert_true(gh_loop_run_once(l, 1000) >= 1);
    assert_true(acc.n >= ACCEPT_BATCH);
    for (int i = 0; i < 10 && acc.n < N; i++)
        assert_true(gh_loop_run_once(l, 1000) >= 0);
    assert_int_equal(acc.n, N);
    for (int i = 0; i < N; i++)
        close(cl[i]);
    free(cl);
    gh_lsock_close(ls);
    gh_loop_free(l);
}

/* Out of descriptors: the connection waits in the backlog and is accepted on a retry. */
static void
test_lsock_emfile_retries(void **state)
{
    (void)state;
    memset(&acc, 0, sizeof(acc));
    struct gh_loop *l = gh_loop_new();
    struct sockaddr_in sa;
    int lfd = listen_any(&sa);
    int c1 = client_to(&sa);
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = open("/dev/null", O_RDONLY); /* the lowest free descriptor number */
    assert_true(lowest >= 0);
    close(lowest);
    low = old;
    low.rlim_cur = (rlim_t)lowest;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    struct gh_lsock *ls = gh_lsock_open(l, lfd, 0, on_conn, NULL);
    assert_non_null(ls);
    assert_int_equal(acc.n, 0);
    assert_true(gh_timer_active(&ls->retry));
    /* the readiness the registration reported is spent on a second EMFILE */
    assert_int_equal(gh_loop_run_once(l, 0), 1);
    assert_int_equal(acc.n, 0);
    assert_true(gh_timer_active(&ls->retry));
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    /* no new event will come for the waiting connection: only the retry can take it */
    for (int i = 0; i < 10 && acc.n < 1; i++)
        assert_true(gh_loop_run_once(l, 2 * ACCEPT_RETRY_MS) >= 0);
    assert_int_equal(acc.n, 1);
    close(c1);
    gh_lsock_close(ls);
    assert_false(gh_timer_active(&ls->retry));
    gh_loop_free(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_opens_one_socket_per_thread),
        cmocka_unit_test(test_second_plan_reuses_kept_addresses),
        cmocka_unit_test(test_drop_closes_only_what_the_plan_opened),
        cmocka_unit_test(test_plan_fails_on_address_in_use),
        cmocka_unit_test(test_lsock_accepts_what_waits_at_open),
        cmocka_unit_test(test_lsock_freed_after_close_and_last_conn),
        cmocka_unit_test(test_lsock_lives_while_listening),
        cmocka_unit_test(test_lsock_callback_may_close_it),
        cmocka_unit_test(test_lsock_batch_then_rest),
        cmocka_unit_test(test_lsock_emfile_retries),
        cmocka_unit_test(test_commit_logs_what_changed), /* last: it redirects the log */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
