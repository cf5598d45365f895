/*
 * test_fwd_head.c - the heads the proxy writes, byte for byte: the request
 * head for the origin (hop-by-hop fields out, forwarding fields, Via, rules,
 * framing, upgrade, target forms, Host) and the response head for the client
 * (Date, rules, Via, framing and connection), and what does not fit.
 *
 * Requests and responses are parsed from text with the real parser, so field
 * ids and flags are what a connection would hand over; the exchange and the
 * proxy settings are built by hand.
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

#include "http/uri.h"
#include "proxy/exchange.h"
#include "proxy/fwd_head.h"

#define WALL 1700000000
#define DATE "Tue, 14 Nov 2023 22:13:20 GMT"

/* ---- helpers ---- */

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
assert_head(const char *got, size_t len, const char *want)
{
    if (len != strlen(want) || memcmp(got, want, len) != 0) {
        print_escaped("want", want, strlen(want));
        print_escaped("got ", got, len);
        fail();
    }
}

struct req {
    struct gh_h1_header hdrs[64];
    struct gh_request r;
    uint16_t ex_flags; /* as the downstream sets them */
};

/* Parse head as a connection would and fill the request as h1_server.c does. */
static void
parse_req(const char *head, struct req *q)
{
    struct gh_h1_request pr = {.headers = q->hdrs, .max_headers = 64};
    struct gh_h1_limits lim = {8192, 8192, 64, 65536};
    int rc = gh_h1_parse_request(head, strlen(head), &pr, &lim);
    if (rc != (int)strlen(head))
        fail_msg("parse: %d %s", rc, pr.err.reason ? pr.err.reason : "");
    q->r = (struct gh_request){.method = pr.method,
                               .method_len = pr.method_len,
                               .method_id = pr.method_id,
                               .target_form = pr.target_form,
                               .version = pr.version,
                               .h1flags = pr.flags,
                               .target = pr.target,
                               .target_len = pr.target_len,
                               .host = pr.host,
                               .host_len = pr.host_len,
                               .fields = q->hdrs,
                               .n_fields = pr.num_headers};
    if (pr.flags & GH_H1_F_CHUNKED) {
        q->r.body = GH_H1_BODY_CHUNKED;
    } else if (pr.flags & GH_H1_F_HAS_CL) {
        q->r.body = GH_H1_BODY_LENGTH;
        q->r.content_length = (uint64_t)pr.content_length;
    }
    q->ex_flags = 0;
    if ((pr.flags & GH_H1_F_UPGRADE) && (pr.flags & GH_H1_F_CONN_UPGRADE) && pr.version == 11)
        q->ex_flags |= GH_EX_UPGRADE;
}

static struct gh_client_addr
client4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    struct gh_client_addr ca = {.family = AF_INET, .port = 40000};
    ca.ip[0] = a;
    ca.ip[1] = b;
    ca.ip[2] = c;
    ca.ip[3] = d;
    return ca;
}

static struct gh_client_addr
client6(const char *text)
{
    struct gh_client_addr ca = {.family = AF_INET6, .port = 40000};
    assert_int_equal(inet_pton(AF_INET6, text, ca.ip), 1);
    return ca;
}

/* The origin the exchange picked (its address text is the Host of last resort). */
static struct gh_upstream_server origin_srv = {.addr = {.text = "10.0.0.9:8080"}, .weight = 1};
static struct gh_upstream_conf origin_ups = {.name = "app", .servers = &origin_srv, .n_servers = 1};

static struct gh_exchange
exchange(const struct gh_proxy_conf *pc, const struct gh_client_addr *client, const struct req *q)
{
    struct gh_exchange ex;
    memset(&ex, 0, sizeof(ex));
    ex.pc = pc;
    ex.client = client;
    ex.peer = client;
    ex.flags = q->ex_flags;
    ex.up.ups = &origin_ups;
    ex.up.server = 0;
    return ex;
}

/* The request head for the origin, with host and path worked out as the exchange does. */
static size_t
fwd_req(char *out, size_t cap, const struct gh_proxy_conf *pc, const struct gh_client_addr *client,
        const char *head)
{
    struct req q;
    parse_req(head, &q);
    struct gh_exchange ex = exchange(pc, client, &q);
    const char *host = q.r.host, *path = q.r.target;
    size_t host_len = q.r.host_len, path_len = q.r.target_len;
    if (q.r.target_form == GH_TARGET_ABSOLUTE)
        gh_uri_split_absolute(q.r.target, q.r.target_len, &host, &host_len, &path, &path_len);
    q.r.host = host; /* the exchange's start puts the authority there */
    q.r.host_len = (uint32_t)host_len;
    ex.target = path;
    ex.target_len = (uint32_t)path_len;
    return gh_fwd_req_head(out, cap, &ex, &q.r);
}

static char out[8192];

#define CLIENT client4(10, 1, 22, 3)

/* Forward head with the settings pc from a client at 10.1.22.3: must be exactly want. */
static void
expect_req(const struct gh_proxy_conf *pc, const char *head, const char *want)
{
    struct gh_client_addr c = CLIENT;
    size_t n = fwd_req(out, sizeof(out), pc, &c, head);
    assert_head(out, n, want);
}

#define XF(host)                                                                                   \
    "X-Forwarded-For: 10.1.22.3\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: " host "\r\n"

/* ---- request heads ---- */

static void
test_req_hop_by_hop_dropped(void **state)
{
    (void)state;
    struct gh_proxy_conf pc = {0};
    expect_req(&pc,
               "GET /a?b=1 HTTP/1.1\r\n"
               "Host: example.com\r\n"
               "User-Agent: t\r\n"
               "Connection: keep-alive, X-Hop, x-other\r\n"
               "Keep-Alive: timeout=5\r\n"
               "X-Hop: 1\r\n"
               "TE: trailers\r\n"
               "Trailer: X-T\r\n"
               "X-Other: 2\r\n"
               "Proxy-Authorization: Basic c2VjcmV0\r\n"
               "Proxy-Connection: keep-alive\r\n"
               "Accept: */*\r\n"
               "Upgrade: h2c\r\n"
               "X-Keep: 3\r\n"
               "\r\n",
               "GET /a?b=1 HTTP/1.1\r\n"
               "Host: example.com\r\n"
               "User-Agent: t\r\n"
               "Accept: */*\r\n"
               "X-Keep: 3\r\n" XF("example.com") "\r\n");
    /* Expect is the proxy's to answer; the request's own framing is re-declared */
    expect_req(&pc,
               "PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n"
               "X-A: a\r\n\r\n",
               "PUT /u HTTP/1.1\r\nHost: h\r\nX-A: a\r\n" XF("h") "Content-Length: 5\r\n\r\n");
}

static void
test_req_x_forwarded(void **state)
{
    (void)state;
    struct gh_proxy_conf pc = {.forwarded = GH_FWD_XFF};
    /* appended to what came (two fields become one list); Proto and Host are ours */
    expect_req(&pc,
               "GET / HTTP/1.1\r\n"
               "Host: h\r\n"
               "X-Forwarded-For: 1.1.1.1\r\n"
               "X-Forwarded-Proto: https\r\n"
               "X-Forwarded-For: 2.2.2.2, 3.3.3.3\r\n"
               "X-Forwarded-Host: spoofed\r\n"
               "\r\n",
               "GET / HTTP/1.1\r\n"
               "Host: h\r\n"
               "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.1.22.3\r\n"
               "X-Forwarded-Proto: http\r\n"
               "X-Forwarded-Host: h\r\n"
               "\r\n");
    /* IPv6 clients: plain in X-Forwarded-For */
    struct gh_client_addr c6 = client6("2001:db8::1");
    size_t n = fwd_req(out, sizeof(out), &pc, &c6, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_head(out, n,
                "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 2001:db8::1\r\n"
                "X-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n\r\n");
    /* off: what came passes untouched, nothing is added */
    struct gh_proxy_conf off = {.forwarded = GH_FWD_OFF};
    expect_req(&off,
               "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\n"
               "X-Forwarded-Proto: https\r\nForwarded: for=1.1.1.1\r\n\r\n",
               "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\n"
               "X-Forwarded-Proto: https\r\nForwarded: for=1.1.1.1\r\n\r\n");
}

/* With real_ip_from the client's address is the one the proxy in front gave; what goes on is
 * the chain as received plus the connection's address (the proxy in front), not the client
 * again (nginx's $proxy_add_x_forwarded_for would repeat it). */
static void
test_req_x_forwarded_real_ip(void **state)
{
    (void)state;
    struct gh_proxy_conf pc = {.forwarded = GH_FWD_BOTH};
    struct req q;
    parse_req("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 6.6.6.6, 203.0.113.7\r\n\r\n", &q);
    struct gh_client_addr real = client4(203, 0, 113, 7), peer = client6("2001:db8::2");
    struct gh_exchange ex = exchange(&pc, &real, &q);
    ex.peer = &peer;
    ex.target = q.r.target;
    ex.target_len = q.r.target_len;
    size_t n = gh_fwd_req_head(out, sizeof(out), &ex, &q.r);
    assert_head(out, n,
                "GET / HTTP/1.1\r\nHost: h\r\n"
                "X-Forwarded-For: 6.6.6.6, 203.0.113.7, 2001:db8::2\r\n"
                "X-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n"
                "Forwarded: for=\"[2001:db8::2]\";proto=http;host=\"h\"\r\n\r\n");
}

static void
test_req_forwarded_rfc7239(void **state)
{
    (void)state;
    struct gh_proxy_conf pc = {.forwarded = GH_FWD_RFC7239};
    struct gh_client_addr c6 = client6("2001:db8::1");
    static const char head[] = "GET / HTTP/1.1\r\n"
                               "Host: h:8080\r\n"
                               "Forwarded: for=192.0.2.1\r\n"
                               "X-Forwarded-For: 5.5.5.5\r\n"
                               "\r\n";
    /* an IPv6 node is bracketed and quoted (RFC 7239 §6); X-Forwarded-For is not ours here */
    size_t n = fwd_req(out, sizeof(out), &pc, &c6, head);
    assert_head(out, n,
                "GET / HTTP/1.1\r\n"
                "Host: h:8080\r\n"
                "X-Forwarded-For: 5.5.5.5\r\n"
                "Forwarded: for=192.0.2.1, for=\"[2001:db8::1]\";proto=http;host=\"h:8080\"\r\n"
                "\r\n");
    /* IPv4: bare */
    expect_req(
        &pc, "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nForwarded: for=10.1.22.3;proto=http;host=\"h\"\r\n\r\n");
    /* both */
    pc.forwarded = GH_FWD_BOTH;
    n = fwd_req(out, sizeof(out), &pc, &c6, head);
    assert_head(out, n,
                "GET / HTTP/1.1\r\n"
                "Host: h:8080\r\n"
                "X-Forwarded-For: 5.5.5.5, 2001:db8::1\r\n"
                "X-Forwarded-Proto: http\r\n"
                "X-Forwarded-Host: h:8080\r\n"
                "Forwarded: for=192.0.2.1, for=\"[2001:db8::1]\";proto=http;host=\"h:8080\"\r\n"
                "\r\n");
}

static void
test_req_via(void **state)
{
    (void)state;
    struct gh_proxy_conf pc = {.forwarded = GH_FWD_OFF, .via = true};
    expect_req(
        &pc, "GET / HTTP/1.1\r\nHost: h\r\nVia: 1.1 edge, 1.0 old\r\nX: y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: y\r\nVia: 1.1 edge, 1.0 old, 1.1 gatehouse\r\n\r\n");
    /* received as HTTP/1.0: this hop is 1.0 (and without Host, the origin's address names it) */
    expect_req(&pc, "GET /old HTTP/1.0\r\nUser-Agent: u\r\n\r\n",
               "GET /old HTTP/1.1\r\nHost: 10.0.0.9:8080\r\nUser-Agent: u\r\n"
               "Via: 1.0 gatehouse\r\n\r\n");
    /* off: Via passes as it came, nothing added */
    pc.via = false;
    expect_req(&pc, "GET / HTTP/1.1\r\nHost: h\r\nVia: 1.1 edge\r\n\r\n",
               "GET / HTTP/1.1\r\nHost: h\r\nVia: 1.1 edge\r\n\r\n");
}

static void
test_req_rules(void **state)
{
    (void)state;
    static const struct gh_hdr_rule rules[] = {
        {GH_HDR_SET, "x-a", "1 2", 3, 3, NULL},
        {GH_HDR_ADD, "X-B", "b", 3, 1, NULL},
        {GH_HDR_REMOVE, "X-C", NULL, 3, 0, NULL},
        {GH_HDR_SET, "User-Agent", "gatehouse-test", 10, 14, NULL},
    };
    struct gh_proxy_conf pc = {.req_rules = rules, .n_req_rules = 4};
    /* set replaces (whatever the case), add adds to what came, remove removes */
    expect_req(
        &pc,
        "GET / HTTP/1.1\r\nHost: h\r\nX-A: old\r\nX-B: keep\r\nx-c: gone\r\n"
        "User-Agent: ua\r\nX-A: older\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-B: keep\r\n" XF("h") "x-a: 1 2\r\nX-B: b\r\n"
                                                             "User-Agent: gatehouse-test\r\n\r\n");
}

static void
test_req_body_framing(void **state)
{
    (void)state;
    struct gh_proxy_conf pc = {.forwarded = GH_FWD_OFF};
    expect_req(&pc, "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n",
               "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n");
    expect_req(&pc, "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
               "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    expect_req(&pc, "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: h\r\n\r\n",
               "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
    /* a list of equal lengths is one length */
    expect_req(&pc, "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 7, 7\r\n\r\n",
               "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\n\r\n");
    expect_req(&pc, "GET /p HTTP/1.1\r\nHost: h\r\n\r\n", "GET /p HTTP/1.1\r\nHost: h\r\n\r\n");
}

static void
test_req_upgrade(void **state)
{
    (void)state;
    struct gh_proxy_conf pc = {.forwarded = GH_FWD_OFF};
    /* an upgrade request keeps Upgrade and says so in Connection */
    expect_req(&pc,
               "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\n\r\n",
               "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n"
               "Sec-WebSocket-Version: 13\r\nConnection: upgrade\r\n\r\n");
    /* Upgrade without Connection: upgrade is not an upgrade request */
    expect_req(&pc, "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
               "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    /* HTTP/1.0 cannot upgrade */
    expect_req(&pc,
               "GET / HTTP/1.0\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
               "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
}

/*
 * BUG (src/proxy/fwd_head.c, copy_req_fields / field_passes): when the Connection field of an
 * upgrade request names another token besides "upgrade" (the h2c upgrade sends
 * "Connection: Upgrade, HTTP2-Settings"; any "Connection: Upgrade, X-Foo" does), the parser sets
 * GH_H1_F_CONN_OTHER and the Upgrade field, being named by Connection, is dropped as hop-by-hop:
 * the origin gets "Connection: upgrade" with no Upgrade field and cannot switch protocols.
 * The same happens to the Upgrade field of a 101 response whose Connection names another token
 * (gh_fwd_resp_head; see test_resp_upgrade_with_other_connection_token).
 */
static void
test_req_upgrade_with_other_connection_token(void **state)
{
    (void)state;
    struct gh_proxy_conf pc = {.forwarded = GH_FWD_OFF};
    expect_req(&pc,
               "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade, X-Trace\r\nX-Trace: 1\r\n\r\n",
               "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n");
}

static void
test_req_targets_and_host(void **state)
{
    (void)state;
    struct gh_proxy_conf pc = {.forwarded = GH_FWD_OFF};
    /* absolute form: origin-form path, the authority is the host */
    expect_req(&pc, "GET http://example.com:8080/p?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
               "GET /p?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
    expect_req(&pc, "GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n",
               "GET /?q HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_req(&pc, "GET http://h HTTP/1.1\r\nHost: h\r\n\r\n",
               "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_req(&pc, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
               "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
    /* X-Forwarded-Host is the host the client asked for: the authority of an absolute form */
    struct gh_proxy_conf xff = {.forwarded = GH_FWD_XFF};
    expect_req(&xff, "GET http://a.test/p HTTP/1.1\r\nHost: a.test\r\n\r\n",
               "GET /p HTTP/1.1\r\nHost: a.test\r\n" XF("a.test") "\r\n");
    /* upstream_host overrides Host; the client's host is still what X-Forwarded-Host says */
    xff.upstream_host = "backend.internal:9000";
    xff.upstream_host_len = (uint32_t)strlen(xff.upstream_host);
    expect_req(&xff, "GET /p HTTP/1.1\r\nHost: public.test\r\n\r\n",
               "GET /p HTTP/1.1\r\nHost: backend.internal:9000\r\n" XF("public.test") "\r\n");
    expect_req(&xff, "GET /p HTTP/1.0\r\n\r\n",
               "GET /p HTTP/1.1\r\nHost: backend.internal:9000\r\n"
               "X-Forwarded-For: 10.1.22.3\r\nX-Forwarded-Proto: http\r\n\r\n");
}

/* Every cap short of the head gives 0 (and writes nothing past cap); the exact length fits. */
static void
test_req_overflow(void **state)
{
    (void)state;
    static const struct gh_hdr_rule rules[] = {{GH_HDR_ADD, "X-R", "r", 3, 1, NULL}};
    struct gh_proxy_conf pc = {
        .forwarded = GH_FWD_BOTH, .via = true, .req_rules = rules, .n_req_rules = 1};
    static const char head[] = "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                               "Connection: upgrade\r\nX-Forwarded-For: 1.1.1.1\r\nVia: 1.1 a\r\n"
                               "Forwarded: for=1.1.1.1\r\n\r\n";
    struct gh_client_addr c = CLIENT;
    size_t full = fwd_req(out, sizeof(out), &pc, &c, head);
    assert_true(full > 0);
    char want[1024];
    assert_true(full < sizeof(want));
    memcpy(want, out, full);
    for (size_t cap = 0; cap < full; cap++) {
        char *buf = malloc(cap + 1); /* exactly cap bytes (ASan sees a write past them) */
        assert_int_equal(fwd_req(buf, cap, &pc, &c, head), 0);
        free(buf);
    }
    char *buf = malloc(full);
    assert_int_equal(fwd_req(buf, full, &pc, &c, head), full);
    assert_memory_equal(buf, want, full);
    free(buf);
}

/* ---- response heads ---- */

struct resp {
    struct gh_h1_header hdrs[64];
    struct gh_resp r;
};

/* Parse an origin's response head into what the origin source hands the downstream. */
static void
parse_resp(const char *head, struct resp *s)
{
    struct gh_h1_response pr = {.headers = s->hdrs, .max_headers = 64};
    struct gh_h1_limits lim = {0, 8192, 64, 65536};
    int rc = gh_h1_parse_response(head, strlen(head), &pr, &lim);
    if (rc != (int)strlen(head))
        fail_msg("parse: %d %s", rc, pr.err.reason ? pr.err.reason : "");
    s->r = (struct gh_resp){.status = pr.status,
                            .version = pr.version,
                            .h1flags = pr.flags,
                            .reason = pr.reason,
                            .reason_len = pr.reason_len,
                            .fields = s->hdrs,
                            .n_fields = pr.num_headers,
                            .content_length = pr.content_length};
}

static void
expect_resp(const char *head, const struct gh_proxy_conf *pc, bool te_chunked,
            enum gh_fwd_conn conn, const char *want)
{
    struct resp s;
    parse_resp(head, &s);
    size_t n = gh_fwd_resp_head(out, sizeof(out), &s.r, pc, NULL, WALL, te_chunked, conn);
    assert_head(out, n, want);
}

static void
test_resp_fields_and_date(void **state)
{
    (void)state;
    /* hop-by-hop and framing fields dropped, Date added, the framing is ours */
    expect_resp("HTTP/1.1 200 OK\r\n"
                "Server: o\r\n"
                "Connection: keep-alive, X-Hop\r\n"
                "X-Hop: 1\r\n"
                "Keep-Alive: timeout=5\r\n"
                "Transfer-Encoding: chunked\r\n"
                "Trailer: X-T\r\n"
                "Proxy-Connection: keep-alive\r\n"
                "Content-Type: text/plain\r\n"
                "\r\n",
                NULL, true, GH_FWD_CONN_NONE,
                "HTTP/1.1 200 OK\r\n"
                "Server: o\r\n"
                "Content-Type: text/plain\r\n"
                "Date: " DATE "\r\n"
                "Transfer-Encoding: chunked\r\n"
                "\r\n");
    /* a Date that came is kept, and not doubled */
    expect_resp("HTTP/1.1 404 Nope\r\ndate: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
                "Content-Length: 3\r\n\r\n",
                NULL, false, GH_FWD_CONN_NONE,
                "HTTP/1.1 404 Nope\r\ndate: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
                "Content-Length: 3\r\n\r\n");
    /* an empty reason gets the standard phrase */
    expect_resp("HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n", NULL, false, GH_FWD_CONN_NONE,
                "HTTP/1.1 503 Service Unavailable\r\nDate: " DATE "\r\nContent-Length: 0\r\n\r\n");
}

static void
test_resp_framing_and_connection(void **state)
{
    (void)state;
    static const char cl[] = "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n";
    static const char none[] = "HTTP/1.1 200 OK\r\n\r\n";
    /* a declared length wins over chunking */
    expect_resp(cl, NULL, true, GH_FWD_CONN_NONE,
                "HTTP/1.1 200 OK\r\nDate: " DATE "\r\nContent-Length: 42\r\n\r\n");
    expect_resp(cl, NULL, false, GH_FWD_CONN_CLOSE,
                "HTTP/1.1 200 OK\r\nDate: " DATE
                "\r\nContent-Length: 42\r\nConnection: close\r\n\r\n");
    expect_resp(cl, NULL, false, GH_FWD_CONN_KEEPALIVE,
                "HTTP/1.1 200 OK\r\nDate: " DATE
                "\r\nContent-Length: 42\r\nConnection: keep-alive\r\n\r\n");
    /* no length: chunked, or delimited by the close */
    expect_resp(none, NULL, true, GH_FWD_CONN_NONE,
                "HTTP/1.1 200 OK\r\nDate: " DATE "\r\nTransfer-Encoding: chunked\r\n\r\n");
    expect_resp(none, NULL, false, GH_FWD_CONN_CLOSE,
                "HTTP/1.1 200 OK\r\nDate: " DATE "\r\nConnection: close\r\n\r\n");
    /* 101: Upgrade passes, no framing at all */
    expect_resp("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                "Sec-WebSocket-Accept: a\r\n\r\n",
                NULL, true, GH_FWD_CONN_UPGRADE,
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: "
                "a\r\nDate: " DATE "\r\nConnection: upgrade\r\n\r\n");
    /* Upgrade in any other response does not pass */
    expect_resp("HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n", NULL, false,
                GH_FWD_CONN_NONE, "HTTP/1.1 200 OK\r\nDate: " DATE "\r\nContent-Length: 0\r\n\r\n");
}

/* BUG: see test_req_upgrade_with_other_connection_token (the same in the response direction). */
static void
test_resp_upgrade_with_other_connection_token(void **state)
{
    (void)state;
    expect_resp("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade, X-Trace\r\nX-Trace: 1\r\n\r\n",
                NULL, false, GH_FWD_CONN_UPGRADE,
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nDate: " DATE
                "\r\nConnection: upgrade\r\n\r\n");
}

static void
test_resp_rules_and_via(void **state)
{
    (void)state;
    static const struct gh_hdr_rule rules[] = {
        {GH_HDR_SET, "cache-control", "no-store", 13, 8, NULL},
        {GH_HDR_REMOVE, "Server", NULL, 6, 0, NULL},
        {GH_HDR_ADD, "X-Added", "1", 7, 1, NULL},
    };
    struct gh_proxy_conf pc = {.via = true, .resp_rules = rules, .n_resp_rules = 3};
    expect_resp("HTTP/1.1 200 OK\r\nServer: o\r\nCache-Control: max-age=60\r\nX-Added: 0\r\n"
                "Via: 1.1 cdn\r\nContent-Length: 1\r\n\r\n",
                &pc, false, GH_FWD_CONN_NONE,
                "HTTP/1.1 200 OK\r\nX-Added: 0\r\nDate: " DATE "\r\n"
                "Via: 1.1 cdn, 1.1 gatehouse\r\ncache-control: no-store\r\nX-Added: 1\r\n"
                "Content-Length: 1\r\n\r\n");
    /* an HTTP/1.0 origin: this hop received 1.0 */
    struct gh_proxy_conf via = {.via = true};
    expect_resp("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", &via, false, GH_FWD_CONN_CLOSE,
                "HTTP/1.1 200 OK\r\nDate: " DATE "\r\nVia: 1.0 gatehouse\r\n"
                "Content-Length: 1\r\nConnection: close\r\n\r\n");
    /* no Via without pc or with via off: the origin's passes as it came */
    expect_resp("HTTP/1.1 200 OK\r\nVia: 1.1 cdn\r\nContent-Length: 1\r\n\r\n", NULL, false,
                GH_FWD_CONN_NONE,
                "HTTP/1.1 200 OK\r\nVia: 1.1 cdn\r\nDate: " DATE "\r\nContent-Length: 1\r\n\r\n");
}

/* Fields written by Gatehouse (a generated answer) are not filtered as received ones; a
 * generated answer (version 0) gets no Via. */
static void
test_resp_own_fields(void **state)
{
    (void)state;
    static const struct gh_h1_header f[] = {
        {"Server", "gatehouse", 6, 9, GH_HDR_SERVER},
        {"Date", DATE, 4, 29, GH_HDR_DATE},
        {"Content-Length", "12", 14, 2, GH_HDR_CONTENT_LENGTH},
        {"Connection", "x", 10, 1, GH_HDR_CONNECTION},
    };
    struct gh_resp r = {.status = 302,
                        .version = 0,
                        .h1flags = GH_H1_F_CONN_OTHER,
                        .flags = GH_RESP_OWN_FIELDS,
                        .fields = f,
                        .n_fields = 4,
                        .content_length = -1};
    struct gh_proxy_conf via = {.via = true};
    size_t n =
        gh_fwd_resp_head(out, sizeof(out), &r, &via, NULL, WALL + 3600, false, GH_FWD_CONN_NONE);
    assert_head(out, n,
                "HTTP/1.1 302 Found\r\nServer: gatehouse\r\nDate: " DATE
                "\r\nContent-Length: 12\r\nConnection: x\r\n\r\n");
}

static void
test_interim_head(void **state)
{
    (void)state;
    struct resp s;
    parse_resp("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nConnection: X-Hop\r\n"
               "X-Hop: 1\r\nUpgrade: h2c\r\nKeep-Alive: 1\r\nLink: </b.js>\r\n\r\n",
               &s);
    size_t n = gh_fwd_interim_head(out, sizeof(out), &s.r);
    assert_head(out, n,
                "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nLink: </b.js>\r\n\r\n");
    for (size_t cap = 0; cap < n; cap++)
        assert_int_equal(gh_fwd_interim_head(out, cap, &s.r), 0);
}

static void
test_resp_overflow(void **state)
{
    (void)state;
    static const struct gh_hdr_rule rules[] = {{GH_HDR_ADD, "X-R", "r", 3, 1, NULL}};
    struct gh_proxy_conf pc = {.via = true, .resp_rules = rules, .n_resp_rules = 1};
    struct resp s;
    parse_resp("HTTP/1.1 200 OK\r\nServer: o\r\nVia: 1.1 a\r\n\r\n", &s);
    size_t full =
        gh_fwd_resp_head(out, sizeof(out), &s.r, &pc, NULL, WALL, true, GH_FWD_CONN_CLOSE);
    assert_true(full > 0);
    for (size_t cap = 0; cap < full; cap++) {
        char *buf = malloc(cap + 1);
        assert_int_equal(gh_fwd_resp_head(buf, cap, &s.r, &pc, NULL, WALL, true, GH_FWD_CONN_CLOSE),
                         0);
        free(buf);
    }
    char *buf = malloc(full);
    assert_int_equal(gh_fwd_resp_head(buf, full, &s.r, &pc, NULL, WALL, true, GH_FWD_CONN_CLOSE),
                     full);
    assert_memory_equal(buf, out, full);
    free(buf);
}

/*
 * BUG (minor; src/http/h1_write.c gh_h1w_content_length, used by both heads): the Content-Length
 * writer asks for room for the longest possible line (38 bytes) before writing, so a head that
 * declares a length and fits its buffer exactly (or within ~17 bytes) is reported as not fitting
 * (0), against "0 when the head does not fit". In the proxy this turns a request head within a
 * few bytes of GH_BUF_SIZE into a spurious 431.
 */
static void
test_head_with_length_fits_exactly(void **state)
{
    (void)state;
    struct resp s;
    parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", &s);
    size_t resp_full =
        gh_fwd_resp_head(out, sizeof(out), &s.r, NULL, NULL, WALL, false, GH_FWD_CONN_NONE);
    assert_true(resp_full > 0);
    char *buf = malloc(resp_full); /* exactly the head's length */
    size_t resp_got =
        gh_fwd_resp_head(buf, resp_full, &s.r, NULL, NULL, WALL, false, GH_FWD_CONN_NONE);
    free(buf);

    struct gh_proxy_conf pc = {.forwarded = GH_FWD_OFF};
    static const char head[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
    struct gh_client_addr c = CLIENT;
    size_t req_full = fwd_req(out, sizeof(out), &pc, &c, head);
    assert_true(req_full > 0);
    buf = malloc(req_full);
    size_t req_got = fwd_req(buf, req_full, &pc, &c, head);
    free(buf);
    if (resp_got != resp_full || req_got != req_full)
        fail_msg("a head that fits exactly: response %zu of %zu, request %zu of %zu", resp_got,
                 resp_full, req_got, req_full);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_req_hop_by_hop_dropped),
        cmocka_unit_test(test_req_x_forwarded),
        cmocka_unit_test(test_req_x_forwarded_real_ip),
        cmocka_unit_test(test_req_forwarded_rfc7239),
        cmocka_unit_test(test_req_via),
        cmocka_unit_test(test_req_rules),
        cmocka_unit_test(test_req_body_framing),
        cmocka_unit_test(test_req_upgrade),
        cmocka_unit_test(test_req_upgrade_with_other_connection_token),
        cmocka_unit_test(test_req_targets_and_host),
        cmocka_unit_test(test_req_overflow),
        cmocka_unit_test(test_resp_fields_and_date),
        cmocka_unit_test(test_resp_framing_and_connection),
        cmocka_unit_test(test_resp_upgrade_with_other_connection_token),
        cmocka_unit_test(test_resp_rules_and_via),
        cmocka_unit_test(test_resp_own_fields),
        cmocka_unit_test(test_interim_head),
        cmocka_unit_test(test_resp_overflow),
        cmocka_unit_test(test_head_with_length_fits_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
