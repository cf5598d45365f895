/*
 * forward.c - `forward_proxy { }`: a server block whose requests are relayed to
 * the destinations they name (CONNECT now; absolute-form HTTP next), with the
 * forward proxy's own settings: the resolver, the ports a CONNECT may reach,
 * and whether private addresses may be reached. Server settings (listen with
 * tls, timeouts, header rules) work in it as in a server; what only a reverse
 * proxy's server has (routes, proxy, return, rewrite) is an error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/parse_int.h"
#include "policy/cidr.h"
#include "policy/domains.h"
#include "policy/htpasswd.h"

#define DEFAULT_RESOLVER_TIMEOUT_MS 2500

static bool
in_forward(struct build *b, struct blk *k, const struct cnode *n)
{
    if (k->srv != NULL && k->srv->is_forward)
        return true;
    conf_err(b->st, &n->name.pos, "'%s' belongs in a forward_proxy block", n->name.text);
    return false;
}

/* `resolver ADDR[:PORT] ...;` into c-ares's "ADDR:PORT,..." form (port 53 by default); NULL
 * after reporting. */
const char *
conf_resolver_csv(struct build *b, const struct cnode *n)
{
    size_t cap = 1;
    for (uint32_t i = 0; i < n->n_args; i++)
        cap += n->args[i].len + 8;
    char *csv = gh_arena_alloc(b->arena, cap);
    csv[0] = '\0';
    for (uint32_t i = 0; i < n->n_args; i++) {
        const struct conf_tok *t = &n->args[i];
        struct gh_addr a;
        bool bare =
            t->text[0] == '[' ? t->text[t->len - 1] == ']' : memchr(t->text, ':', t->len) == NULL;
        const char *text = bare ? gh_arena_sprintf(b->arena, "%s:53", t->text) : t->text;
        if (gh_conf_parse_addr(text, strlen(text), &a) != 0) {
            conf_err(b->st, &t->pos,
                     "invalid address '%s' in 'resolver' (expected an IP address with an optional "
                     "port: 127.0.0.1, 10.0.0.2:5353, [::1]:53)",
                     conf_show_tok(b, t));
            return NULL;
        }
        if (i > 0)
            strcat(csv, ",");
        strcat(csv, text);
    }
    return csv;
}

static void
on_connect_ports(struct build *b, struct psrv *s, const struct cnode *n)
{
    s->ports = (struct vec){0};
    for (uint32_t i = 0; i < n->n_args; i++) {
        uint64_t port;
        if (conf_number_arg(b, &n->args[i], "connect_ports", 1, 65535, &port))
            conf_vec_push(b, &s->ports, (void *)(uintptr_t)port);
    }
}

/* `block_domains` / `allow_domains NAME_OR_FILE ...;`: an argument with a '/' is a file of
 * names (one per line), anything else a name. */
static void
on_domains(struct build *b, struct psrv *s, const struct cnode *n, struct gh_domains **setp)
{
    if (*setp == NULL) {
        *setp = gh_domains_new();
        if (*setp == NULL) {
            conf_err(b->st, &n->name.pos, "out of memory");
            return;
        }
        gh_arena_add_cleanup(b->arena, gh_domains_free, *setp);
    }
    uint32_t tag = s->domain_rules.n;
    conf_vec_push(b, &s->domain_rules,
                  (void *)gh_arena_sprintf(b->arena, "%s:%u", n->name.pos.file, n->name.pos.line));
    for (uint32_t i = 0; i < n->n_args; i++) {
        const struct conf_tok *t = &n->args[i];
        if (memchr(t->text, '/', t->len) == NULL) {
            int rc = gh_domains_add(*setp, t->text, t->len, tag);
            if (rc == -EINVAL)
                conf_err(b->st, &t->pos, "invalid domain name '%s' in '%s'", conf_show_tok(b, t),
                         n->name.text);
            else if (rc != 0)
                conf_err(b->st, &t->pos, "out of memory");
            continue;
        }
        if (b->st->flags & GH_CONF_NO_INCLUDE) {
            conf_err(b->st, &t->pos, "files are not read here");
            continue;
        }
        uint32_t bad = 0;
        const char *path = conf_path_arg(b, n, t);
        long rc = gh_domains_add_file(*setp, path, tag, &bad);
        if (rc < 0)
            conf_err(b->st, &t->pos, "cannot read '%s': %s", path, strerror((int)-rc));
        else if (bad != 0)
            conf_warn(b->st, &t->pos, "%s:%u: not a domain name (lines like it are skipped)", path,
                      bad);
    }
}

/* `block_urls REGEX ...;`: added to r (an arena array, grown). */
static void
on_urls(struct build *b, struct psrv *s, const struct cnode *n, struct gh_url_rules *r)
{
    uint32_t tag = s->domain_rules.n;
    conf_vec_push(b, &s->domain_rules,
                  (void *)gh_arena_sprintf(b->arena, "%s:%u", n->name.pos.file, n->name.pos.line));
    struct gh_url_rule *v = gh_arena_alloc(b->arena, (r->n + n->n_args) * sizeof(*v));
    if (r->n > 0)
        memcpy(v, r->v, r->n * sizeof(*v));
    uint32_t k = r->n;
    for (uint32_t i = 0; i < n->n_args; i++) {
        const struct pcre2_real_code_8 *re = conf_regex(b->st, &n->args[i], true, "block_urls");
        if (re != NULL)
            v[k++] = (struct gh_url_rule){re, n->args[i].text, tag};
    }
    r->v = v;
    r->n = k;
}

/* `auth basic FILE [realm=TEXT];` */
static void
on_auth(struct build *b, struct psrv *s, const struct cnode *n)
{
    const struct conf_tok *kind = &n->args[0], *file = &n->args[1];
    if (!conf_tok_is(kind, "basic")) {
        conf_err(b->st, &kind->pos, "unknown auth scheme '%s' (expected basic)",
                 conf_show_tok(b, kind));
        return;
    }
    const char *realm = "Gatehouse proxy";
    if (n->n_args == 3) {
        const struct conf_tok *r = &n->args[2];
        bool ok = r->len > 6 && memcmp(r->text, "realm=", 6) == 0;
        for (uint32_t i = 6; ok && i < r->len; i++)
            ok = r->text[i] >= ' ' && r->text[i] != '"' && r->text[i] != '\\' && r->text[i] != 0x7f;
        if (!ok) {
            conf_err(b->st, &r->pos, "expected realm=TEXT (no quotes or backslashes) in 'auth'");
            return;
        }
        realm = r->text + 6;
    }
    if (!conf_check_path(b, n, file))
        return;
    s->fwd.auth_challenge =
        gh_arena_sprintf(b->arena, "Basic realm=\"%s\", charset=\"UTF-8\"", realm);
    s->fwd.auth_challenge_len = (uint32_t)strlen(s->fwd.auth_challenge);
    if (b->st->flags & GH_CONF_NO_INCLUDE)
        return; /* untrusted text reads no files */
    char err[512];
    uint32_t bad = 0;
    const char *path = conf_path_arg(b, n, file);
    struct gh_htpasswd *h = gh_htpasswd_load(path, err, sizeof(err), &bad);
    if (h == NULL) {
        if (bad != 0)
            conf_err(b->st, &file->pos, "%s:%u: %s", path, bad, err);
        else
            conf_err(b->st, &file->pos, "%s", err);
        return;
    }
    if (gh_htpasswd_count(h) == 0)
        conf_warn(b->st, &file->pos, "'%s' has no users: nobody can log in", path);
    gh_arena_add_cleanup(b->arena, gh_htpasswd_free, h);
    s->fwd.auth = h;
}

/* `block_page FILE;`: the page, read now (at most 64 KiB). */
static void
on_block_page(struct build *b, struct psrv *s, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    if (!conf_check_path(b, n, t) || (b->st->flags & GH_CONF_NO_INCLUDE))
        return;
    const char *path = conf_path_arg(b, n, t);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        conf_err(b->st, &t->pos, "cannot read '%s': %s", path, strerror(errno));
        return;
    }
    char *page = gh_arena_alloc(b->arena, 65536 + 1);
    size_t len = fread(page, 1, 65536 + 1, f);
    fclose(f);
    if (len > 65536) {
        conf_err(b->st, &t->pos, "'%s' is larger than 64 KiB", path);
        return;
    }
    s->fwd.block_page = page;
    s->fwd.block_page_len = (uint32_t)len;
}

static int
by_str(const void *a, const void *c)
{
    return strcmp(*(const char *const *)a, *(const char *const *)c);
}

/* `clients CIDR ...;` of a group into its prefix list. */
static void
group_clients(struct build *b, const struct cnode *c, struct vec *prefixes)
{
    for (uint32_t i = 0; i < c->n_args; i++) {
        const struct conf_tok *t = &c->args[i];
        struct gh_cidr *p = gh_arena_alloc(b->arena, sizeof(*p));
        bool host_bits = false;
        const char *why = NULL;
        if (gh_cidr_parse(t->text, t->len, p, &host_bits, &why) != 0) {
            conf_err(b->st, &t->pos, "invalid address '%s' in 'clients': %s", conf_show_tok(b, t),
                     why != NULL ? why : "expected an address or CIDR");
            continue;
        }
        conf_vec_push(b, prefixes, p);
    }
}

/* `group NAME { clients ...; users ...; block_domains ...; allow_domains ...; block_urls ...; }` */
static void
on_group(struct build *b, struct psrv *s, const struct cnode *n)
{
    struct gh_fwd_group *g = gh_arena_alloc(b->arena, sizeof(*g));
    g->name = n->args[0].text;
    struct vec prefixes = {0}, users = {0};
    for (const struct cnode *c = n->children; c != NULL; c = c->next) {
        if (c->has_block || (c->n_args == 0)) {
            conf_err(b->st, &c->name.pos, "'%s' in a group takes arguments and no block",
                     c->name.text);
        } else if (conf_tok_is(&c->name, "clients")) {
            group_clients(b, c, &prefixes);
        } else if (conf_tok_is(&c->name, "users")) {
            for (uint32_t i = 0; i < c->n_args; i++)
                conf_vec_push(b, &users, (void *)c->args[i].text);
        } else if (conf_tok_is(&c->name, "block_domains")) {
            on_domains(b, s, c, (struct gh_domains **)&g->block_domains);
        } else if (conf_tok_is(&c->name, "allow_domains")) {
            on_domains(b, s, c, (struct gh_domains **)&g->allow_domains);
        } else if (conf_tok_is(&c->name, "block_urls")) {
            on_urls(b, s, c, &g->block_urls);
        } else {
            conf_err(b->st, &c->name.pos,
                     "unknown directive '%s' in a group (expected clients, users, "
                     "block_domains, allow_domains or block_urls)",
                     conf_show_tok(b, &c->name));
        }
    }
    if (prefixes.n == 0 && users.n == 0)
        conf_warn(b->st, &n->name.pos, "group '%s' has neither clients nor users: nobody is in it",
                  g->name);
    if (prefixes.n > 0) {
        struct gh_cidr *p = gh_arena_alloc(b->arena, prefixes.n * sizeof(*p));
        for (uint32_t i = 0; i < prefixes.n; i++)
            p[i] = *(const struct gh_cidr *)prefixes.v[i];
        g->clients = gh_cidr_set_build(b->arena, p, prefixes.n);
    }
    if (users.n > 0) {
        const char **u = gh_arena_alloc(b->arena, users.n * sizeof(*u));
        for (uint32_t i = 0; i < users.n; i++)
            u[i] = users.v[i];
        qsort(u, users.n, sizeof(*u), by_str);
        g->users = u;
        g->n_users = users.n;
    }
    conf_vec_push(b, &s->groups, g);
}

void
conf_on_forward_setting(struct build *b, struct blk *k, const struct cnode *n)
{
    if (!in_forward(b, k, n))
        return;
    struct psrv *s = k->srv;
    if (conf_tok_is(&n->name, "resolver")) {
        s->fwd.resolver = conf_resolver_csv(b, n);
    } else if (conf_tok_is(&n->name, "resolver_timeout")) {
        uint64_t ms;
        if (conf_duration_arg(b, &n->args[0], "resolver_timeout", &ms) && ms > 0)
            s->fwd.resolver_timeout_ms = (uint32_t)ms;
        else if (ms == 0)
            conf_err(b->st, &n->args[0].pos, "'resolver_timeout' must be more than 0");
    } else if (conf_tok_is(&n->name, "connect_ports")) {
        on_connect_ports(b, s, n);
    } else if (conf_tok_is(&n->name, "block_domains")) {
        on_domains(b, s, n, (struct gh_domains **)&s->fwd.block_domains);
    } else if (conf_tok_is(&n->name, "allow_domains")) {
        on_domains(b, s, n, (struct gh_domains **)&s->fwd.allow_domains);
    } else if (conf_tok_is(&n->name, "block_urls")) {
        on_urls(b, s, n, &s->fwd.block_urls);
    } else if (conf_tok_is(&n->name, "group")) {
        on_group(b, s, n);
    } else if (conf_tok_is(&n->name, "block_page")) {
        on_block_page(b, s, n);
    } else if (conf_tok_is(&n->name, "auth")) {
        on_auth(b, s, n);
    } else if (conf_tok_is(&n->name, "anonymous")) {
        conf_on_off(b, n, &s->fwd.anonymous);
    } else if (conf_tok_is(&n->name, "strip_headers")) {
        for (uint32_t i = 0; i < n->n_args; i++)
            conf_vec_push(b, &s->strip, (void *)&n->args[i]);
    } else {
        conf_on_off(b, n, &s->fwd.allow_private);
    }
}

/* Names the site must not see with `anonymous on` (RFC 7239 and the de facto fields that carry
 * the client's address or identity). */
static const char *const identifying[] = {
    "Forwarded",
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "X-Real-IP",
    "Via",
    "From",
    "Client-IP",
    "True-Client-IP",
    "X-Client-IP",
    "X-Originating-IP",
    "Proxy-Authorization",
    "Proxy-Connection",
};

/* `anonymous on` and `strip_headers`: request_header remove rules after the block's own, and
 * no forwarding fields or Via of ours. */
static void
anonymity(struct build *b, struct psrv *s)
{
    struct gh_proxy_conf *pc = &s->sc.pc;
    uint32_t extra = s->strip.n + (s->fwd.anonymous ? GH_ARRAY_LEN(identifying) : 0);
    if (extra == 0)
        return;
    if (s->fwd.anonymous) {
        pc->forwarded = GH_FWD_OFF;
        pc->via = false;
    }
    struct gh_hdr_rule *r = gh_arena_alloc(b->arena, (pc->n_req_rules + extra) * sizeof(*r));
    if (pc->n_req_rules > 0)
        memcpy(r, pc->req_rules, pc->n_req_rules * sizeof(*r));
    uint32_t n = pc->n_req_rules;
    for (uint32_t i = 0; s->fwd.anonymous && i < GH_ARRAY_LEN(identifying); i++)
        r[n++] = (struct gh_hdr_rule){.op = GH_HDR_REMOVE,
                                      .name = identifying[i],
                                      .name_len = (uint32_t)strlen(identifying[i])};
    for (uint32_t i = 0; i < s->strip.n; i++) {
        const struct conf_tok *t = s->strip.v[i];
        bool ok = t->len > 0;
        for (uint32_t j = 0; j < t->len && ok; j++)
            ok = t->text[j] > ' ' && t->text[j] < 0x7f &&
                 strchr("()<>@,;:\\\"/[]?={}", t->text[j]) == NULL;
        if (!ok) {
            conf_err(b->st, &t->pos, "invalid header name '%s' in 'strip_headers'",
                     conf_show_tok(b, t));
            continue;
        }
        r[n++] = (struct gh_hdr_rule){.op = GH_HDR_REMOVE, .name = t->text, .name_len = t->len};
    }
    pc->req_rules = r;
    pc->n_req_rules = n;
}

void
conf_forward_finish(struct build *b, struct psrv *s, const struct blk *k, const struct cnode *n)
{
    for (uint32_t i = 0; i < s->listens.n; i++) {
        const struct plisten *pl = s->listens.v[i];
        if (pl->socks5 && pl->tls)
            conf_err(b->st, &pl->pos, "'listen' takes socks5 or tls, not both");
    }
    if (s->routes.n > 0)
        conf_err(b->st, s->route_pos.v[0],
                 "a forward_proxy block has no routes: requests go where they say");
    if (k->proxy_at != NULL)
        conf_err(b->st, &k->proxy_at->name.pos,
                 "'proxy' has no place in a forward_proxy block: requests go where they say");
    if (k->return_at != NULL)
        conf_err(b->st, &k->return_at->name.pos, "'return' has no place in a forward_proxy block");
    if (s->sc.pc.n_rewrites > 0)
        conf_err(b->st, &n->name.pos, "'rewrite' has no place in a forward_proxy block");
    if (s->fwd.resolver_timeout_ms == 0)
        s->fwd.resolver_timeout_ms = DEFAULT_RESOLVER_TIMEOUT_MS;
    /* HTTP goes through the origin source with an upstream of its own: one placeholder server
     * (TEST-NET-1, never connected to) whose place each request's destination takes, found at
     * run time (gh_ups_try.direct), with the pool and retry settings of an upstream */
    struct pups *u = conf_new_upstream(b, "forward_proxy", &n->name.pos);
    u->anonymous = true;
    u->server_seen = true;
    struct gh_upstream_server *ph = gh_arena_alloc(b->arena, sizeof(*ph));
    const char *text = "192.0.2.1:9";
    if (gh_conf_parse_addr(text, strlen(text), &ph->addr) == 0) {
        ph->weight = 1;
        conf_vec_push(b, &u->servers, ph);
    }
    s->sc.pc.upstream = &u->uc;
    s->fwd.domain_rule_at = gh_arena_alloc(b->arena, (s->domain_rules.n + 1) * sizeof(char *));
    for (uint32_t i = 0; i < s->domain_rules.n; i++)
        s->fwd.domain_rule_at[i] = s->domain_rules.v[i];
    anonymity(b, s);
    struct gh_fwd_group *gs = gh_arena_alloc(b->arena, (s->groups.n + 1) * sizeof(*gs));
    for (uint32_t i = 0; i < s->groups.n; i++)
        gs[i] = *(const struct gh_fwd_group *)s->groups.v[i];
    s->fwd.groups = gs;
    s->fwd.n_groups = s->groups.n;
    uint16_t *ports;
    if (s->ports.n == 0) {
        ports = gh_arena_alloc(b->arena, sizeof(*ports));
        ports[0] = 443;
        s->fwd.n_connect_ports = 1;
    } else {
        ports = gh_arena_alloc(b->arena, s->ports.n * sizeof(*ports));
        for (uint32_t i = 0; i < s->ports.n; i++)
            ports[i] = (uint16_t)(uintptr_t)s->ports.v[i];
        s->fwd.n_connect_ports = s->ports.n;
    }
    s->fwd.connect_ports = ports;
}
