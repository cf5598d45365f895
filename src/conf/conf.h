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
struct gh_cidr_set;
struct gh_htpasswd;
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
};

/* `retry_on ...;` what an attempt may fail with and still go to another server. */
#define GH_RETRY_CONNECT 0x01 /* connect_failure: refused, unreachable, connect timed out */
#define GH_RETRY_TIMEOUT 0x02 /* timeout: no response head within first_byte_timeout */
#define GH_RETRY_ERROR 0x04   /* error: connection broken or malformed response before its head */
#define GH_RETRY_500 0x08     /* the origin answered 500 (likewise 502, 503, 504) */
#define GH_RETRY_502 0x10
#define GH_RETRY_503 0x20
#define GH_RETRY_504 0x40

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
    bool tls_on;                     /* speaks TLS */
    const struct gh_tls_client *tls; /* its TLS context (NULL: plain, or not built: -t of
                                        untrusted text) */
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
    uint32_t max_fails;             /* consecutive failures that eject a server; 0: never */
    uint32_t fail_timeout_ms;       /* the first ejection's length (doubles, up to 5 min) */
    uint32_t retries;               /* further servers a failed request may go to */
    uint32_t retry_on;              /* GH_RETRY_* */
    const char *file;               /* where it was defined */
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

/* One `allow` or `deny` prefix (`all` is two: 0.0.0.0/0 and ::/0). */
struct gh_access_rule {
    uint16_t status; /* 0: allow; else the status a deny answers with (default 403) */
    const char *at;  /* "access denied by the rule at FILE:LINE", for the log */
};

/* A block's `allow` / `deny` list, compiled: set's prefix i is rules[i]; the first prefix
 * (in file order) that contains the client's address decides; none: allowed. */
struct gh_access {
    const struct gh_cidr_set *set;
    const struct gh_access_rule *rules;
    uint32_t n_rules;
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
    uint32_t send_timeout_ms;        /* between two successful writes to the client (60s) */
    uint32_t connect_timeout_ms;     /* upstream connect (default 5s) */
    uint32_t first_byte_timeout_ms;  /* request sent -> first response byte (60s) */
    uint32_t read_timeout_ms;        /* between two reads from upstream (60s) */
    uint32_t tunnel_idle_timeout_ms; /* upgraded connection with no traffic (300s) */
    uint64_t client_max_body_size;   /* 0 = unlimited (default); over it: 413 */

    enum gh_forwarded_mode forwarded; /* `forwarded xff|rfc7239|both|off;` */
    bool via;                         /* `via on|off;` default off */
    bool splice;                      /* `splice on|off;` default on */
    const char *upstream_host;        /* `upstream_host NAME;` NULL: Host as received */
    uint32_t upstream_host_len;

    /* `allow` / `deny`: a block with its own list replaces the inherited one (nginx). NULL:
     * every address is allowed. */
    const struct gh_access *access;
    uint32_t limit_conn; /* `limit_conn N;` requests in progress per client address; 0: none */

    /* the cache (`cache NAME;`, NULL: none) and how it is used */
    const struct gh_cache_conf *cache;
    const struct gh_tmpl *cache_key;          /* `cache_key`: NULL: scheme, host, path and query */
    const struct gh_tmpl *cache_bypass;       /* `cache_bypass`: non-empty and not "0": bypass */
    const struct gh_cache_valid *cache_valid; /* a block with its own replaces the inherited */
    uint32_t n_cache_valid;
    bool cache_status;                          /* `cache_status on;` adds Cache-Status */
    const struct gh_cidr_set *cache_purge_from; /* `cache_purge_from`: who may send PURGE */

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
struct gh_fwd_group {
    const char *name;
    const struct gh_cidr_set *clients; /* policy/cidr.h; NULL: none by address */
    const char *const *users;          /* logins, sorted (strcmp) */
    uint32_t n_users;
    const struct gh_domains *block_domains, *allow_domains;
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

enum gh_log_format { GH_LOG_COMBINED = 0, GH_LOG_JSON, GH_LOG_CUSTOM };
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
