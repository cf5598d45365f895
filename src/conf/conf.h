/*
 * conf.h - the compiled runtime configuration.
 *
 * A config file (or string) is lexed, parsed and validated into one immutable
 * struct gh_config. Everything it points to lives in the config's own arena and
 * is freed at once when the last reference is dropped (design principle 7:
 * config is data, swapped atomically on reload; requests in flight keep the
 * snapshot they started with by holding a reference).
 *
 * Inheritance: settings in struct gh_proxy_conf may be given at top level, in a
 * server block or in a route block; an inner block starts from a copy of its
 * enclosing block's values (so a route sees its server's and the global ones
 * unless it overrides them). Header rules are inherited only when the inner
 * block defines none of its own kind (request_* / response_*), as in nginx.
 */
#ifndef GH_CONF_CONF_H
#define GH_CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/tmpl.h"
#include "core/common.h"

struct gh_config;
struct gh_cidr_set; /* policy/cidr.h */
struct gh_tls_ctx;
struct gh_tls_listen;
struct gh_domains;
struct gh_htpasswd;
struct gh_rl_zone;        /* policy/ratelimit.h */
struct gh_lpm;            /* policy/lpm.h */
struct gh_cache_store;    /* cache/store.h */
struct pcre2_real_code_8; /* pcre2_code, without including pcre2.h here */

/* One address with its text form as written (for logs; never shown to clients). */
struct gh_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    const char *text; /* "127.0.0.1:3000", "[::1]:8080" */
};

/* `balance ...;` in an upstream (docs/config.md#balance). */
enum gh_balance {
    GH_BALANCE_ROUND_ROBIN = 0, /* smooth weighted round robin */
    GH_BALANCE_LEAST_CONN,      /* fewest in flight per weight; ties by round robin */
    GH_BALANCE_RANDOM,          /* power of two weighted random choices, fewer in flight */
    GH_BALANCE_HASH,            /* a key's hash: modulo the weights, or a ring (consistent) */
    GH_BALANCE_EWMA,            /* peak EWMA of response time x (in flight + 1), two choices */
    GH_BALANCE_GEO,             /* the client's region first (balance geo KEY [ewma]) */
};

/* `retry_on ...;` what an attempt may fail with and still go to another server. */
#define GH_RETRY_CONNECT 0x01 /* connect_failure: refused, unreachable, connect timed out */
#define GH_RETRY_TIMEOUT 0x02 /* timeout: no response head within first_byte_timeout */
#define GH_RETRY_ERROR 0x04   /* error: connection broken or malformed response before its head */
#define GH_RETRY_500 0x08     /* the origin answered 500 (likewise 502, 503, 504) */
#define GH_RETRY_502 0x10
#define GH_RETRY_503 0x20
#define GH_RETRY_504 0x40

/* `fail_on ...;` what else than a connect failure counts toward max_fails (passive health) */
#define GH_FAIL_TIMEOUT 0x01 /* no response head within first_byte_timeout (default) */
#define GH_FAIL_ERROR 0x02   /* connection broken or malformed response before its head */
#define GH_FAIL_500 0x04     /* the origin answered 500 (likewise 502, 503, 504) */
#define GH_FAIL_502 0x08
#define GH_FAIL_503 0x10
#define GH_FAIL_504 0x20
#define GH_FAIL_5XX 0x40 /* any 5xx status */

/* `health_check PATH [interval=] [timeout=] [rise=] [fall=] [expect=] [host=];` */
struct gh_health_check {
    const char *path; /* the request target, from '/' */
    const char *host; /* the Host value; NULL: the server's address as written */
    uint32_t interval_ms;
    uint32_t timeout_ms; /* the whole check: connect, request and response head */
    uint32_t rise, fall; /* consecutive passes to come up, failures to go down */
    uint16_t expect_lo, expect_hi;
};

/* `geo $NAME { CIDR VALUE; include FILE; maxmind FILE FIELD...; default VALUE; }`: client
 * address -> value (a region) */
struct gh_geo {
    const char *name;          /* without the '$' */
    const struct gh_lpm *map;  /* policy/lpm.h: prefix -> index in values */
    const char *const *values; /* distinct values; values[0] is the default */
    const uint32_t *value_lens;
    uint32_t n_values;
    const struct gh_geoip *geoip; /* `maxmind`: asked when no prefix matches (policy/geoip.h) */
};

/* TLS toward one origin server (`server ADDR tls;`, `proxy https://...`). */
struct gh_tls_client {
    struct gh_tls_ctx *ctx; /* net/tls.h */
    const char *name;       /* SNI and the name its certificate must carry */
    uint32_t xprt_id;       /* the settings' id: upstream peers are keyed by it */
};

struct gh_upstream_server {
    struct gh_addr addr;
    uint32_t weight;                 /* 1..1000, default 1 */
    uint32_t max_conns;              /* requests in flight per worker thread; 0: no limit */
    bool backup;                     /* used only when no other server can be */
    uint8_t send_proxy;              /* `send_proxy` 1, `send_proxy_v2` 2: the PROXY protocol
                                        header written first on every new connection; 0: none */
    bool tls_on;                     /* speaks TLS */
    const struct gh_tls_client *tls; /* its TLS context (NULL: plain, or not built: -t of
                                        untrusted text) */
    uint32_t slow_start_ms;          /* weight ramps up over this long after it comes back */
    const char *region;              /* `region=NAME` (NULL: none) */
    const char *host;      /* `server NAME:PORT resolve;`: the name (NULL: an address). addr then
                              holds only a key of its own (AF_UNSPEC), never connected to */
    uint16_t port;         /* with host: the port */
    const char *sticky_id; /* `sticky cookie`: its cookie value (16 hex digits of a
                              hash of the upstream's name and the address) */
    uint32_t region_idx;   /* its index in the upstream's regions (n_regions: none) */
};

/* `sticky cookie NAME [expires=D] [path=P];` */
struct gh_sticky {
    const char *name; /* the cookie's name */
    uint32_t name_len;
    const char *attrs; /* what follows NAME=ID in Set-Cookie: "; Path=/; Max-Age=N; HttpOnly" */
    uint32_t attrs_len;
};

/* `region_fallback REGION NEXT...;` where the clients of REGION go when it has no server left */
struct gh_region_fallback {
    uint32_t from;        /* region index */
    const uint32_t *next; /* region indexes, in order */
    uint32_t n_next;
};

struct gh_upstream_conf {
    const char *name; /* "app"; for an address used directly in `proxy`, the address text */
    struct gh_upstream_server *servers;
    uint32_t n_servers;
    uint32_t keepalive;            /* max idle connections kept per thread per server; 0 = none */
    uint32_t keepalive_timeout_ms; /* idle time before a pooled connection is closed */
    enum gh_balance balance;
    const struct gh_tmpl *hash_key; /* `balance hash KEY`: the key (GH_TC_KEY) */
    bool hash_consistent;           /* `balance hash KEY consistent`: a ring */
    uint32_t hash_bound_pct;   /* `... consistent bounded=F`: at most F x the mean load, in % */
    uint32_t max_fails;        /* consecutive failures that eject a server; 0: never */
    uint32_t fail_timeout_ms;  /* the first ejection's length (doubles, up to 5 min) */
    uint32_t retries;          /* further servers a failed request may go to */
    uint32_t retry_on;         /* GH_RETRY_* */
    uint32_t fail_on;          /* GH_FAIL_*: counted toward max_fails besides connects */
    uint32_t queue_max;        /* `queue N`: requests waiting per thread when every server is at
                                  max_conns; 0: none (503 at once) */
    uint32_t queue_timeout_ms; /* `queue N timeout=D` (default 60s) */
    const struct gh_health_check *health; /* `health_check` (NULL: none) */
    const struct gh_sticky *sticky;       /* `sticky cookie` (NULL: none) */
    const char *resolver;                 /* `resolver` for named servers ("ADDR:PORT,...";
                                             NULL: the system's) */
    uint32_t resolver_timeout_ms;
    bool slow_start; /* a server has slow_start= */
    /* `balance geo KEY [ewma]`: the regions named by servers (region=) and the fallbacks */
    const char *const *regions;
    uint32_t n_regions;
    const struct gh_region_fallback *fallbacks;
    uint32_t n_fallbacks;
    bool geo_ewma;    /* `balance geo KEY ewma`: ewma inside a region, else round robin */
    const char *file; /* where it was defined */
    uint32_t line;
    uint32_t index; /* position in gh_config.upstreams (for per-thread state arrays) */
};

enum gh_hdr_op { GH_HDR_SET = 0, GH_HDR_ADD, GH_HDR_REMOVE };

struct gh_hdr_rule {
    enum gh_hdr_op op;
    const char *name;  /* validated token */
    const char *value; /* validated field value; NULL for remove */
    uint32_t name_len;
    uint32_t value_len;
    const struct gh_tmpl *tmpl; /* the value when it has variables (else NULL: value as is) */
};

/* `rewrite REGEX REPLACEMENT [last|break|redirect|permanent];` */
enum gh_rewrite_flag {
    GH_RW_NEXT = 0,  /* go on with the next rewrite, on the new path */
    GH_RW_LAST,      /* stop rewriting here; the routes are searched again with the new path */
    GH_RW_BREAK,     /* stop rewriting; stay in the route */
    GH_RW_REDIRECT,  /* answer 302 with the result as Location */
    GH_RW_PERMANENT, /* answer 301 */
};

struct gh_rewrite {
    struct pcre2_real_code_8 *re; /* matched against the normalised path */
    const struct gh_tmpl *repl;   /* with $1..$9 and variables */
    uint8_t flag;                 /* enum gh_rewrite_flag */
    bool sets_query;              /* the replacement has a '?': it gives a query */
    bool drops_args;              /* it ended with '?' (taken off): the request's query is not
                                     added after it (nginx: else it is, after '&') */
    const char *at;               /* "FILE:LINE" for log lines */
};

enum gh_forwarded_mode {
    GH_FWD_XFF = 0, /* X-Forwarded-For / -Proto / -Host (default) */
    GH_FWD_RFC7239, /* Forwarded: for=...;proto=...;host=... */
    GH_FWD_BOTH,
    GH_FWD_OFF,
};

enum gh_access_action { GH_ACC_ALLOW = 0, GH_ACC_DENY, GH_ACC_REDIRECT, GH_ACC_RETURN };

/* What an access rule does when it matches: `allow`, `deny [STATUS]`, `redirect CODE URL`,
 * `return CODE [TEXT]`. */
struct gh_access_rule {
    uint16_t status;  /* 0: allow; else the status to answer with (deny: default 403) */
    uint8_t action;   /* enum gh_access_action */
    const char *at;   /* "access denied by the rule at FILE:LINE", for the log */
    const char *text; /* redirect: the URL; return: the body (NULL: none) */
    uint32_t text_len;
    const struct gh_tmpl *tmpl; /* the text when it has variables (else NULL) */
};

struct gh_rule_cond; /* policy/rules.h */

/* One step of a block's access rules. A run of plain address rules (`allow CIDR;`,
 * `deny CIDR;`) is one prefix set: set's prefix i is rules[i], the first (in file order)
 * that contains the client's address decides. A rule with conditions is a step of its own
 * (set NULL): rule decides when all of conds hold. No step decides: allowed. */
struct gh_access_step {
    const struct gh_cidr_set *set;
    const struct gh_access_rule *rules;
    const struct gh_rule_cond *conds;
    uint32_t n_conds;
    struct gh_access_rule rule;
};

/* A block's access rules, compiled, in file order. */
struct gh_access {
    const struct gh_access_step *steps;
    uint32_t n_steps;
    bool conds;     /* a step has conditions (for tests and stats) */
    bool needs_tls; /* a condition looks at the SNI or the client certificate */
};

/* `rate_limit KEY RATE [burst=N] [status=N] [zone=NAME];` (docs/config.md#rate_limit) */
struct gh_rate_limit {
    const struct gh_tmpl *key; /* GH_TC_KEY; an empty expansion is not limited */
    struct gh_rl_zone *zone;   /* NULL: not built (untrusted text) */
    uint64_t interval_ns;      /* the period over the rate */
    uint32_t burst;            /* requests beyond the rate that may come at once */
    uint32_t rate;             /* as written: rate per period_s (for RateLimit-Policy) */
    uint32_t period_s;
    uint16_t status;    /* the answer to a refused request (default 429) */
    const char *policy; /* the RateLimit-Policy item: "\"NAME\";q=RATE;w=PERIOD" */
    uint32_t policy_len;
    const char *at; /* "rate_limit at FILE:LINE", for the log */
};

/* A header name (validated token) in a list: hide_header, pass_header. */
struct gh_hdr_name {
    const char *name;
    uint32_t len;
};

/* `proxy_redirect FROM TO;` a Location (Refresh, Content-Location) starting with from gets
 * to in its place. */
struct gh_redirect_map {
    const char *from, *to;
    uint32_t from_len, to_len;
};

enum gh_proxy_redirect {
    GH_PREDIR_DEFAULT = 0, /* the origin's address (or upstream_host) -> what the client used */
    GH_PREDIR_OFF,
    GH_PREDIR_MAP, /* the block's proxy_redirect FROM TO list */
};

/* `error_page CODE... FILE;` the page (file contents) for a status. */
struct gh_error_page {
    uint16_t status;
    const char *body;
    uint32_t body_len;
};

/* `cache NAME { memory SIZE; max_object SIZE; }` (docs/config.md#cache): a store of its own
 * (cache/store.h), process-wide and kept across reloads by name. */
struct gh_cache_conf {
    const char *name;
    uint64_t memory;              /* the store's byte budget */
    uint64_t max_object;          /* the largest body stored */
    uint32_t lock_timeout_ms;     /* how long a request waits for the same object being fetched */
    struct gh_cache_store *store; /* NULL only when out of memory at load */
};

/* `cache_valid STATUS... DURATION;` (status 0: any) */
struct gh_cache_valid {
    uint16_t status;
    uint32_t seconds;
};

/* Settings that inherit top level -> server -> route. */
struct gh_proxy_conf {
    const struct gh_upstream_conf *upstream; /* `proxy NAME|ADDR;` NULL: no proxy here */
    /* `return CODE ["text"];` : answer directly (upstream must be NULL). 0 = unset. */
    uint32_t return_status;
    const char *return_body;
    uint32_t return_body_len;
    const struct gh_tmpl *return_tmpl; /* the body (or URL) when it has variables */
    /* `proxy NAME PATH;`: the prefix its block matched (proxy_strip bytes of the normalised
     * path) is replaced with proxy_path. NULL: the target goes as received. */
    const char *proxy_path;
    uint32_t proxy_path_len;
    uint32_t proxy_strip;
    const struct gh_rewrite *rewrites; /* applied in order to the normalised path */
    uint32_t n_rewrites;

    uint32_t client_body_timeout_ms; /* between two reads of a request body (default 60s) */
    /* `client_body_min_rate RATE [GRACE];` after GRACE (default 5s) from the end of the head,
     * a request body must have come at RATE bytes a second on average; 0: no minimum */
    uint32_t client_body_min_rate;
    uint32_t client_body_min_rate_grace_ms;
    uint32_t send_timeout_ms;        /* between two successful writes to the client (60s) */
    uint32_t connect_timeout_ms;     /* upstream connect (default 5s) */
    uint32_t first_byte_timeout_ms;  /* request sent -> first response byte (60s) */
    uint32_t read_timeout_ms;        /* between two reads from upstream (60s) */
    uint32_t tunnel_idle_timeout_ms; /* upgraded connection with no traffic (300s) */
    uint32_t tunnel_timeout_ms;      /* a tunnel's whole life from its request (0: no limit) */
    uint64_t client_max_body_size;   /* 0 = unlimited (default); over it: 413 */
    /* `request_buffering on|off [SIZE];` a request body is read whole before an origin is
     * chosen: its first request_buffer_size bytes in memory, the rest in an unlinked file in
     * client_body_temp_path (default on, 16k, /tmp) */
    bool request_buffering;
    uint32_t request_buffer_size;
    const char *client_body_temp_path;

    enum gh_forwarded_mode forwarded; /* `forwarded xff|rfc7239|both|off;` */
    bool via;                         /* `via on|off;` default off */
    bool splice;                      /* `splice on|off;` default on */
    const char *upstream_host;        /* `upstream_host NAME;` NULL: Host as received */
    uint32_t upstream_host_len;

    /* `allow` / `deny`: a block with its own list replaces the inherited one (nginx). NULL:
     * every address is allowed. */
    const struct gh_access *access;
    uint32_t limit_conn; /* `limit_conn N;` requests in progress per client address; 0: none */
    /* `rate_limit`: every one applies; a block with its own replaces the inherited ones */
    const struct gh_rate_limit *rate_limits;
    uint32_t n_rate_limits;
    bool rate_limit_headers; /* `rate_limit_headers on;` RateLimit fields on passing answers */

    /* origin hiding (docs/config.md#hide_header): response fields of a reverse proxy's origin
     * that never reach the client besides GH_HIDE_DEFAULT (a block's own list replaces the
     * inherited one), and those of GH_HIDE_DEFAULT that do */
    const struct gh_hdr_name *hide;
    uint32_t n_hide;
    const struct gh_hdr_name *pass;
    uint32_t n_pass;
    bool server_tokens_off; /* `server_tokens off;` no Server field, no name on pages */
    uint8_t proxy_redirect; /* enum gh_proxy_redirect */
    const struct gh_redirect_map *redirects;
    uint32_t n_redirects;
    const struct gh_error_page *error_pages; /* `error_page`; a block's own replace them */
    uint32_t n_error_pages;
    bool intercept_errors; /* `intercept_errors on;` an origin's 4xx/5xx answered with ours */

    /* the cache (`cache NAME;`, NULL: none) and how it is used */
    const struct gh_cache_conf *cache;
    const struct gh_tmpl *cache_key;          /* `cache_key`: NULL: scheme, host, path and query */
    const struct gh_tmpl *cache_bypass;       /* `cache_bypass`: non-empty and not "0": bypass */
    const struct gh_cache_valid *cache_valid; /* a block with its own replaces the inherited */
    uint32_t n_cache_valid;
    bool cache_status;                          /* `cache_status on;` adds Cache-Status */
    const struct gh_cidr_set *cache_purge_from; /* `cache_purge_from`: who may send PURGE */
    const struct gh_cache_conf *cache_admin;    /* `cache_purge_api NAME;` (NULL: none) */

    const struct gh_hdr_rule *req_rules; /* `request_header set|add|remove NAME [VALUE];` */
    uint32_t n_req_rules;
    const struct gh_hdr_rule *resp_rules; /* `response_header ...` */
    uint32_t n_resp_rules;
};

enum gh_route_kind {
    GH_ROUTE_PREFIX = 0, /* route /path/ { }    longest prefix wins */
    GH_ROUTE_EXACT,      /* route = /path { }  exact path match wins over everything */
    GH_ROUTE_REGEX,      /* route ~ "re" { }   PCRE2, tried in file order after exact */
};

struct gh_route {
    enum gh_route_kind kind;
    const char *path; /* the prefix / exact path / regex source */
    uint32_t path_len;
    struct pcre2_real_code_8 *re; /* compiled regex (GH_ROUTE_REGEX) */
    struct gh_proxy_conf pc;
    const char *file;
    uint32_t line;
};

/* `group NAME { clients CIDR...; users NAME...; block_domains ...; allow_domains ...; }` in a
 * forward_proxy: who belongs (by address or login) and their own domain rules. */
/* `block_urls REGEX ...;`: URL patterns refused (case-insensitive), tried in file order; tag
 * indexes gh_forward_conf.domain_rule_at as a domain rule's does */
struct gh_url_rule {
    const struct pcre2_real_code_8 *re;
    const char *text;
    uint32_t tag;
};
struct gh_url_rules {
    const struct gh_url_rule *v;
    uint32_t n;
};

struct gh_fwd_group {
    const char *name;
    const struct gh_cidr_set *clients; /* policy/cidr.h; NULL: none by address */
    const char *const *users;          /* logins, sorted (strcmp) */
    uint32_t n_users;
    const struct gh_domains *block_domains, *allow_domains;
    struct gh_url_rules block_urls;
};

/* `forward_proxy { }`: what a forward proxy's server block adds (docs/config.md). */
struct gh_forward_conf {
    const uint16_t *connect_ports; /* ports a CONNECT may reach (default 443) */
    uint32_t n_connect_ports;
    bool allow_private;           /* `allow_private_destinations on;` */
    const char *resolver;         /* "ADDR:PORT,..." for c-ares; NULL: the system's */
    uint32_t resolver_timeout_ms; /* one try of a lookup (default 5s over two tries) */
    /* `block_domains` / `allow_domains`: policy/domains.h sets (NULL: none); a match's tag
     * indexes domain_rule_at ("FILE:LINE" of the directive, for the log) */
    const struct gh_domains *block_domains;
    const struct gh_domains *allow_domains;
    struct gh_url_rules block_urls;
    const char **domain_rule_at;
    bool anonymous; /* `anonymous on;` */
    /* `auth basic FILE [realm=TEXT];` the logins (policy/htpasswd.h; NULL: none) and the
     * challenge sent with 407 ("Basic realm=\"...\", charset=\"UTF-8\"") */
    const struct gh_htpasswd *auth;
    const char *auth_challenge;
    uint32_t auth_challenge_len;
    const struct gh_fwd_group *groups; /* in file order: the first a client belongs to applies */
    uint32_t n_groups;
    const char *block_page; /* `block_page FILE;` its HTML (NULL: the built-in text) */
    uint32_t block_page_len;
};

/* Defaults of the server-level limits (docs/config.md); the hard caps are the parser's. */
#define GH_CONF_DEFAULT_HEADER_TIMEOUT_MS 10000
#define GH_CONF_DEFAULT_MAX_REQUEST_LINE 8192
#define GH_CONF_DEFAULT_MAX_HEADER_LINE 8192
#define GH_CONF_DEFAULT_MAX_HEADERS 100
#define GH_CONF_DEFAULT_MAX_HEAD_SIZE 32768

struct gh_server_conf {
    const char **names; /* server_name values, lower-cased: "a.test", "*.a.test" */
    uint32_t *name_lens;
    uint32_t n_names;
    bool is_default; /* `listen ADDR default;` made it the default for that listener */
    /* Routes sorted for matching: exact first, then regex in file order, then prefix by
     * length descending. A server with no route behaves as `route / {}` with its pc. */
    struct gh_route *routes;
    uint32_t n_routes;
    struct gh_proxy_conf pc; /* server-level values (after inheriting from top level) */

    uint32_t client_header_timeout_ms; /* whole request head (default 10s) */
    uint32_t keepalive_timeout_ms;     /* idle between requests (default 75s); 0: no keep-alive */
    uint32_t keepalive_requests;       /* max requests on one connection (default 10000) */
    uint32_t max_request_line;         /* default 8192 */
    uint32_t max_header_line;          /* default 8192 */
    uint32_t max_headers;              /* default 100 (hard cap 256) */
    uint32_t max_head_size;            /* default 32768 (hard cap 65536) */
    /* `hsts max-age=N [includeSubDomains] [preload];` the Strict-Transport-Security value sent
     * on responses over TLS; NULL: none */
    const char *hsts;
    uint32_t hsts_len;
    /* `redirect_to_https [CODE] [port=N];` 0: off, 1: 301 for GET/HEAD and 308 for the rest,
     * else the code to use; port 0: none in the URL */
    uint16_t redirect_https;
    uint16_t redirect_https_port;
    /* on a TLS listener: its context (for the SNI check), and whether it asks for client
     * certificates (`tls_verify_client on|optional`) */
    struct gh_tls_ctx *tls_ctx;
    bool tls_verify_client;
    /* a `forward_proxy` block: the forward proxy's settings (NULL: a reverse proxy's server) */
    const struct gh_forward_conf *forward;
    /* `real_ip_from CIDR...;` the proxies trusted to say who the client is (NULL: none), and
     * `real_ip_header NAME;` where they say it (default X-Real-IP, as nginx); real_ip_list:
     * the header is X-Forwarded-For, read as a list from the right */
    const struct gh_cidr_set *real_ip_from;
    const char *real_ip_header;
    uint32_t real_ip_header_len;
    bool real_ip_list;
    /* `proxy_protocol_from CIDR...;` who may send a PROXY protocol header on a listener with
     * `proxy_protocol` (the listener's default server's list counts; NULL: nobody), and
     * `proxy_protocol_timeout` for the header to arrive (default 10s) */
    const struct gh_cidr_set *proxy_protocol_from;
    uint32_t proxy_protocol_timeout_ms;
    const char *file;
    uint32_t line;
    uint32_t index; /* position in gh_config.servers */
};

/* One server_name of a listener, flattened for gh_conf_find_server. */
struct gh_server_name {
    const char *name; /* lower-case; for a wildcard "*.a.test" the suffix ".a.test" */
    uint32_t len;
    bool wildcard;
    const struct gh_server_conf *server;
};

struct gh_listen_conf {
    struct gh_addr addr;
    int backlog;                     /* default 511 */
    bool tls;                        /* `listen ADDR tls;` */
    bool socks5;                     /* `listen ADDR socks5;` (a forward proxy's) */
    bool proxy_protocol;             /* `listen ADDR proxy_protocol;` a PROXY header comes first */
    int defer_accept_s;              /* `listen ADDR deferred;` TCP_DEFER_ACCEPT seconds; 0: off */
    struct gh_tls_listen *tls_ctx;   /* its contexts by SNI (NULL: not built, -t of untrusted
                                        text) */
    struct gh_server_conf **servers; /* servers listening here, in file order */
    uint32_t n_servers;
    struct gh_server_conf *default_server; /* explicit default, else the first */
    /* Every server_name of every server here: exact names first, then wildcards by
     * length descending, so the first match is the right one. */
    const struct gh_server_name *names;
    uint32_t n_names;
};

enum gh_log_format { GH_LOG_COMBINED = 0, GH_LOG_JSON, GH_LOG_FORWARD, GH_LOG_CUSTOM };
/* How a log_format writes variable values: escape=default (nginx's \xXX), json, none. */
enum gh_log_escape { GH_LOG_ESC_DEFAULT = 0, GH_LOG_ESC_JSON, GH_LOG_ESC_NONE };
enum gh_log_level { GH_LOG_ERROR = 0, GH_LOG_WARN, GH_LOG_INFO, GH_LOG_DEBUG };

struct gh_config {
    int refcount;       /* atomic; use gh_conf_ref / gh_conf_unref */
    void *arena;        /* owns everything below */
    const char *source; /* file name or "<embedded>" */

    uint32_t threads;          /* `threads auto|N;` 0 = auto (one per CPU) */
    uint32_t drain_timeout_ms; /* `drain_timeout 10s;` on SIGTERM/SIGINT */
    uint32_t max_connections;  /* `max_connections N;` client connections open at once across
                                  every thread; 0: no limit */

    /* `access_log off|stderr|FILE [combined|json];` */
    bool access_log_on;
    const char *access_log_path; /* NULL = stderr */
    enum gh_log_format access_log_format;
    const struct gh_tmpl *access_log_tmpl; /* GH_LOG_CUSTOM: the log_format's line */
    enum gh_log_escape access_log_escape;
    /* keep a copy of each request's head for templates used after it is gone
     * (response_header values with request variables, the access log) */
    bool keep_request;
    const char *hostname; /* the machine's, for $hostname */
    /* `error_log stderr|FILE [error|warn|info|debug];` default stderr info */
    const char *error_log_path; /* NULL = stderr */
    enum gh_log_level error_log_level;
    /* "FILE:LINE:COL" of the path argument of each, for messages when it cannot be opened */
    const char *access_log_at;
    const char *error_log_at;
    /* `pid FILE;` where the running instance writes its process id (relative to the config
     * file's directory); NULL: no pid file. pid_at is "FILE:LINE:COL" of the path. */
    const char *pid_path;
    const char *pid_at;

    /* top-level values (upstream NULL): what a request that reaches no server is answered with
     * (its listener went away in a reload) */
    struct gh_proxy_conf pc;

    struct gh_listen_conf *listeners;
    uint32_t n_listeners;
    struct gh_server_conf *servers;
    uint32_t n_servers;
    struct gh_upstream_conf *upstreams; /* named ones and anonymous ones from `proxy ADDR` */
    uint32_t n_upstreams;
    const struct gh_geo *geos; /* `geo $NAME { }` maps ($NAME in templates) */
    uint32_t n_geos;
};

/* Collected diagnostics: each is "FILE:LINE:COL: message". All are gathered before giving up. */
struct gh_conf_diag {
    char **msgs;
    uint32_t n;
};

/*
 * Load and compile a config file (following `include` directives, with glob
 * patterns relative to the including file's directory).
 * Returns a new config with refcount 1, or NULL with diagnostics in *diag
 * (caller frees them with gh_conf_diag_free).
 */
struct gh_config *gh_conf_load_file(const char *path, struct gh_conf_diag *diag);

/* Same from a string; name is used in diagnostics ("<embedded>", "<command line>").
 * Relative include paths resolve against the current directory. */
struct gh_config *gh_conf_load_string(const char *name, const char *text, size_t len,
                                      struct gh_conf_diag *diag);

/* gh_conf_load_string with flags: GH_CONF_NO_INCLUDE makes `include` an error (for
 * untrusted text such as fuzz input, which must not read arbitrary files). */
#define GH_CONF_NO_INCLUDE 0x1u
struct gh_config *gh_conf_load_string_flags(const char *name, const char *text, size_t len,
                                            unsigned flags, struct gh_conf_diag *diag);

/* In every load function *diag is (re)initialized first; it may be NULL to discard
 * diagnostics. At most GH_CONF_MAX_ERRORS errors are reported, then one
 * "too many errors" line, then loading stops. */
#define GH_CONF_MAX_ERRORS 20

/* Print every diagnostic to f, one per line. */
void gh_conf_diag_print(const struct gh_conf_diag *diag, FILE *f);
void gh_conf_diag_free(struct gh_conf_diag *diag);

/* Take a reference (atomic). Returns cfg. */
struct gh_config *gh_conf_ref(struct gh_config *cfg);
/* Drop a reference; frees everything when it was the last (atomic). */
void gh_conf_unref(struct gh_config *cfg);

/*
 * Find the server for a request on listener lc with Host value host (may be NULL,
 * may carry ":port", case-insensitive). Exact names first, then the longest
 * matching wildcard ("*.a.test" matches "x.a.test" and "x.y.a.test" but not
 * "a.test"), else the listener's default server. Never NULL.
 */
const struct gh_server_conf *gh_conf_find_server(const struct gh_listen_conf *lc, const char *host,
                                                 size_t host_len);

/*
 * Find the route for path (the request target up to '?', not decoded) in server s.
 * Returns the route's proxy settings, or the server's own when no route matches
 * (then *route is NULL). *route may be NULL pointer if not wanted.
 */
const struct gh_proxy_conf *gh_conf_find_route(const struct gh_server_conf *s, const char *path,
                                               size_t path_len, const struct gh_route **route);

/*
 * Match re against s[0..len) with this thread's bounded match data. Returns the
 * number of pairs set in *ovector (start, end offsets; up to 10 pairs, valid
 * until the next match on this thread), 0 for no match, -1 when the match
 * hit its limits.
 */
int gh_conf_regex_match(const struct pcre2_real_code_8 *re, const char *s, size_t len,
                        const size_t **ovector);

/* Parse "1.2.3.4:80", "[::1]:80", "localhost:80" (numeric hosts and "localhost" only; named
 * origins come with DNS later), "*:80" or ":80" (all IPv4). Returns 0 or -EINVAL.
 * The port must be 1..65535. out->ss is zeroed first; out->text borrows text (it is
 * NUL-terminated only if text is). */
int gh_conf_parse_addr(const char *text, size_t len, struct gh_addr *out);

/*
 * Why text[0..len) is not an address to connect to, when there is more to say than that it
 * is invalid: a URL ("http://..." or "https://...") where an address or name belongs, or a
 * host name (DNS is not there yet). what is the directive or option it was given to ("server",
 * "proxy", "--to"). Returns the explanation, written to buf (size bytes), or NULL.
 */
const char *gh_conf_addr_hint(const char *text, size_t len, const char *what, char *buf,
                              size_t size);

#endif
