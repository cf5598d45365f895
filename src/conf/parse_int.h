/*
 * parse_int.h - private to parse.c and the directive modules beside it (tls.c): the state of
 * a config being built, the directive table's shape, and the helpers handlers share.
 */
#ifndef GH_CONF_PARSE_INT_H
#define GH_CONF_PARSE_INT_H

#include "conf/conf_int.h"
#include "net/tls.h"

enum { CTX_MAIN = 1, CTX_UPSTREAM = 2, CTX_SERVER = 4, CTX_ROUTE = 8 };
#define CTX_ANY (CTX_MAIN | CTX_UPSTREAM | CTX_SERVER | CTX_ROUTE)
#define CTX_PROXY (CTX_MAIN | CTX_SERVER | CTX_ROUTE)
#define CTX_SRVLVL (CTX_MAIN | CTX_SERVER)

#define DF_BLOCK 0x1u  /* takes a { } block */
#define DF_MULTI 0x2u  /* may repeat in one block */
#define DF_EARLY 0x4u  /* phase 0 */
#define DF_LATE 0x8u   /* phase 2 */
#define DF_FIRST 0x10u /* before phase 0: `geo` maps (templates anywhere may use them) */
#define NARGS_ANY 255

enum vkind { V_NONE = 0, V_DUR, V_SIZE, V_NUM };
enum vtarget { TGT_CFG = 0, TGT_PC, TGT_SC, TGT_UC };

#define DEFAULT_KEEPALIVE 128
#define DEFAULT_UPSTREAM_KEEPALIVE_TIMEOUT 60000
#define DEFAULT_BACKLOG 511

struct vec {
    void **v;
    uint32_t n, cap;
};

/* A file named by a directive, resolved against its config file's directory. */
struct pfile {
    const char *path; /* NULL: not given */
    struct conf_pos pos;
};

/* Server-side TLS settings of a block (top level: the defaults every server starts from). */
struct ptls {
    struct vec certs, keys; /* struct pfile * */
    bool own_certs;         /* this block gave its own (the inherited ones are dropped) */
    unsigned protocols;
    const char *ciphers, *suites;
    struct conf_pos ciphers_pos, suites_pos, protocols_pos;
    bool prefer_server;
    bool tickets;
    uint32_t session_cache;
    uint32_t session_timeout_s;
    struct vec ticket_keys; /* struct pfile * */
    bool own_ticket_keys;
    struct pfile ocsp, client_ca;
    uint8_t verify_client; /* enum gh_tls_verify */
    struct conf_pos verify_pos;
    uint32_t verify_depth;
};

/* TLS settings toward origins (an upstream's, or the top-level defaults). */
struct pups_tls {
    struct pfile ca, cert, key;
    int8_t verify; /* -1: not given */
    const char *name;
    struct conf_pos name_pos;
};

struct pups { /* an upstream being built */
    struct gh_upstream_conf uc;
    struct vec servers; /* struct gh_upstream_server * */
    struct conf_pos pos;
    bool anonymous;
    bool server_seen; /* even an invalid one */
    struct pups_tls tls;
    bool has_tls;         /* a server speaks TLS */
    struct vec fallbacks; /* `region_fallback` directives (const struct cnode *) */
};

struct plisten {
    struct gh_addr addr;
    bool is_default;
    int backlog; /* 0: not given */
    bool tls;
    bool socks5;
    bool proxy_protocol;
    bool deferred;
    struct conf_pos pos;
};

struct pname {
    const char *name;
    uint32_t len;
    struct conf_pos pos;
};

struct psrv { /* a server being built */
    struct ptls tls;
    bool is_forward;            /* a forward_proxy block */
    struct gh_forward_conf fwd; /* its settings */
    struct vec ports;           /* connect_ports, as (uintptr_t) port numbers */
    struct vec domain_rules;    /* "FILE:LINE" of each block_domains / allow_domains */
    struct vec strip;           /* strip_headers names (const struct conf_tok *) */
    struct vec groups;          /* struct gh_fwd_group * */
    struct gh_tls_ctx *tls_ctx; /* built when it is on a TLS listener */
    struct gh_server_conf sc;
    struct vec listens; /* struct plisten * */
    struct vec names;   /* struct pname * */
    struct vec routes;  /* struct gh_route * */
    struct vec route_pos;
    struct conf_pos pos;
    bool listen_seen; /* even an invalid one: no "has no 'listen'" on top of its error */
};

struct plogfmt { /* a log_format */
    const char *name;
    const struct gh_tmpl *tmpl;
    enum gh_log_escape esc;
    struct conf_pos pos;
};

struct build {
    struct conf_state *st;
    struct gh_arena *arena;
    struct gh_config *cfg;
    struct vec upstreams;             /* struct pups * */
    struct vec servers;               /* struct psrv * */
    struct vec log_formats;           /* struct plogfmt * */
    const struct conf_tok *log_named; /* access_log's format when it is not a built-in one */
    struct ptls main_tls;             /* top-level TLS settings: every server starts from them */
    struct pups_tls main_up_tls;      /* top-level settings toward origins */
    struct vec rl_zones;              /* struct prlzone * (ratelimit.c) */
    struct vec geos;                  /* struct gh_geo * */
    struct vec caches;                /* struct pcache * (cache.c) */
};

/* The state of one block being walked. */
struct blk {
    unsigned ctx;
    struct gh_proxy_conf *pc;          /* main, server, route */
    struct gh_server_conf *sc;         /* main (the template), server */
    struct pups *ups;                  /* upstream */
    struct psrv *srv;                  /* server */
    struct ptls *tls;                  /* main, server */
    struct vec req, resp;              /* struct gh_hdr_rule * */
    struct vec rw;                     /* struct gh_rewrite * */
    struct vec acl;                    /* struct pacl * (access.c) */
    struct vec real_ip;                /* struct gh_cidr * (access.c) */
    struct vec pp_from;                /* struct gh_cidr *: proxy_protocol_from (access.c) */
    struct vec rl;                     /* struct gh_rate_limit * (ratelimit.c) */
    struct vec hide, pass;             /* struct gh_hdr_name * (hide.c) */
    struct vec redirects;              /* struct gh_redirect_map * (hide.c) */
    struct vec error_pages;            /* struct gh_error_page * (hide.c) */
    const struct cnode *redirect_mode; /* `proxy_redirect off|default;` given (hide.c) */
    const struct gh_route *route;      /* the route block being walked */
    const struct cnode **seen;         /* per table entry: first occurrence in this block */
    const struct cnode *proxy_at, *return_at;
    struct vec cache_valid; /* struct gh_cache_valid * (cache.c) */
};

typedef void (*dir_fn)(struct build *b, struct blk *k, const struct cnode *n);

struct dir {
    const char *name;
    unsigned ctx;
    uint8_t min_args, max_args;
    uint8_t flags;
    dir_fn fn; /* NULL: a plain value stored at off in target */
    uint8_t kind, target, width;
    size_t off;
    uint64_t vmin, vmax;
};

void conf_vec_push(struct build *b, struct vec *v, void *item);
/* An upstream being built, with the defaults (parse.c). */
struct pups *conf_new_upstream(struct build *b, const char *name, const struct conf_pos *pos);
bool conf_tok_is(const struct conf_tok *t, const char *s);
/* s[0..len) is an HTTP token (RFC 9110 §5.6.2: a field name, a method), not empty */
bool conf_is_token(const char *s, size_t len);
/* One of n's arguments up to i starts a later line than the token before it (most likely the
 * next directive, its ';' forgotten): report "missing ';'" there and return true */
bool conf_missing_semi(struct build *b, const struct cnode *n, uint32_t i);
/* t is a URL to send in Location: not empty, no spaces or control bytes; false after
 * reporting (what: the directive) */
bool conf_url_arg(struct build *b, const struct conf_tok *t, const char *what);
const char *conf_show_tok(struct build *b, const struct conf_tok *t);
const char *conf_where(struct build *b, const struct conf_pos *pos, const char *file);
bool conf_number_arg(struct build *b, const struct conf_tok *t, const char *what, uint64_t lo,
                     uint64_t hi, uint64_t *out);
const char *conf_path_arg(struct build *b, const struct cnode *n, const struct conf_tok *t);
bool conf_check_path(struct build *b, const struct cnode *n, const struct conf_tok *t);
void conf_on_off(struct build *b, const struct cnode *n, bool *dst);
/* a size argument ("16k", "1m") within lo..hi bytes; false after reporting */
bool conf_size_arg(struct build *b, const struct conf_tok *t, const char *what, uint64_t lo,
                   uint64_t hi, uint64_t *out);
/* a duration argument in milliseconds; false after reporting */
bool conf_duration_arg(struct build *b, const struct conf_tok *t, const char *what, uint64_t *ms);

/* forward.c: `resolver ADDR...` as c-ares's "ADDR:PORT,..." (arena); NULL after reporting */
const char *conf_resolver_csv(struct build *b, const struct cnode *n);
/* balance.c: `resolver` / `resolver_timeout` in an upstream (named servers) */
void conf_on_ups_resolver(struct build *b, struct blk *k, const struct cnode *n);
/* balance.c: `server NAME:PORT ... resolve;` into s (false after reporting) */
bool conf_named_server(struct build *b, const struct conf_tok *t, struct gh_upstream_server *s);
/* forward.c: the forward proxy's directives, and its block's checks and defaults */
void conf_on_forward_setting(struct build *b, struct blk *k, const struct cnode *n);
void conf_forward_finish(struct build *b, struct psrv *s, const struct blk *k,
                         const struct cnode *n);
/* access.c: allow / deny, real_ip_from / real_ip_header, limit_conn */
void conf_on_access(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_real_ip_from(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_real_ip_header(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_limit_conn(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_proxy_protocol_from(struct build *b, struct blk *k, const struct cnode *n);
/* protect.c: request_buffering, client_body_temp_path; the checks of proxy_protocol listeners */
void conf_on_request_buffering(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_body_temp_path(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_body_min_rate(struct build *b, struct blk *k, const struct cnode *n);
struct gh_listen_conf;
void conf_check_listener(struct build *b, struct gh_listen_conf *lc, const struct conf_pos *pos);
/* access.c: `redirect CODE URL [if ...];`, and `return CODE [TEXT] if ...;` (n's arguments hold
 * an `if`) */
void conf_on_redirect(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_return_rule(struct build *b, struct blk *k, const struct cnode *n);
/* access.c: the index of n's `if` argument, or n->n_args */
uint32_t conf_if_at(const struct cnode *n);
/* cond.c: the conditions in n's arguments from `from` on (after `if`), compiled into *out
 * (arena) and *n_out; false after reporting */
struct gh_rule_cond;
bool conf_cond_parse(struct build *b, const struct cnode *n, uint32_t from,
                     const struct gh_rule_cond **out, uint32_t *n_out);
/* access.c: at the end of a block's settings, compile its own lists (they replace the
 * inherited ones) */
void conf_access_finish(struct build *b, struct blk *k);

/* ratelimit.c: `rate_limit`, `rate_limit_zone`; at the end of a block's settings, its own
 * rate limits replace the inherited ones */
void conf_on_rate_limit(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_rate_limit_zone(struct build *b, struct blk *k, const struct cnode *n);
void conf_ratelimit_finish(struct build *b, struct blk *k);

/* hide.c: origin hiding (hide_header, pass_header, server_tokens, proxy_redirect, error_page,
 * intercept_errors); at the end of a block's settings, its own lists replace the inherited */
void conf_on_hide(struct build *b, struct blk *k, const struct cnode *n);
void conf_hide_finish(struct build *b, struct blk *k);

/* cache.c: `cache NAME { }` at top level, `cache NAME|off`, cache_key, cache_valid,
 * cache_bypass, cache_status, cache_purge_from; at the end of a block's settings its own
 * cache_valid list */
void conf_on_cache_block(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_cache_setting(struct build *b, struct blk *k, const struct cnode *n);
void conf_cache_finish(struct build *b, struct blk *k);

/* tls.c: the TLS directives (handlers for the table in parse.c) */
void conf_on_tls_file(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_tls_protocols(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_tls_ciphers(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_tls_flag(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_tls_number(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_tls_verify_client(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_hsts(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_redirect_to_https(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_up_tls(struct build *b, struct blk *k, const struct cnode *n);
/* balance.c: `balance`, `retry_on`, the parameters of an upstream's `server`, and the checks
 * of an upstream once its block is walked */
void conf_on_balance(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_retry_on(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_queue(struct build *b, struct blk *k, const struct cnode *n);
void conf_server_param(struct build *b, const struct conf_tok *p, struct gh_upstream_server *s);
void conf_on_health_check(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_fail_on(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_region_fallback(struct build *b, struct blk *k, const struct cnode *n);
void conf_on_sticky(struct build *b, struct blk *k, const struct cnode *n);
/* geo.c: `geo $NAME { }` at top level */
void conf_on_geo(struct build *b, struct blk *k, const struct cnode *n);
/* geo.c: the index of geo map name[0..len) built so far, or -1 */
int conf_geo_index(struct build *b, const char *name, size_t len);

void conf_check_upstream(struct build *b, struct pups *u);
/* tls.c: default server-side settings */
void conf_tls_defaults(struct ptls *t);
/* tls.c: after assembly, build the contexts of TLS listeners and TLS upstream servers */
void conf_tls_build(struct build *b);

#endif
