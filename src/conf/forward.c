/*
 * forward.c - `forward_proxy { }`: a server block whose requests are relayed to
 * the destinations they name (CONNECT now; absolute-form HTTP next), with the
 * forward proxy's own settings: the resolver, the ports a CONNECT may reach,
 * and whether private addresses may be reached. Server settings (listen with
 * tls, timeouts, header rules) work in it as in a server; what only a reverse
 * proxy's server has (routes, proxy, return, rewrite) is an error.
 */
#include <string.h>

#include "conf/parse_int.h"

#define DEFAULT_RESOLVER_TIMEOUT_MS 2500

static bool
in_forward(struct build *b, struct blk *k, const struct cnode *n)
{
    if (k->srv != NULL && k->srv->is_forward)
        return true;
    conf_err(b->st, &n->name.pos, "'%s' belongs in a forward_proxy block", n->name.text);
    return false;
}

/* `resolver ADDR[:PORT] ...;` into c-ares's "ADDR:PORT,..." form (port 53 by default). */
static void
on_resolver(struct build *b, struct psrv *s, const struct cnode *n)
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
            return;
        }
        if (i > 0)
            strcat(csv, ",");
        strcat(csv, text);
    }
    s->fwd.resolver = csv;
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

void
conf_on_forward_setting(struct build *b, struct blk *k, const struct cnode *n)
{
    if (!in_forward(b, k, n))
        return;
    struct psrv *s = k->srv;
    if (conf_tok_is(&n->name, "resolver")) {
        on_resolver(b, s, n);
    } else if (conf_tok_is(&n->name, "resolver_timeout")) {
        uint64_t ms;
        if (conf_duration_arg(b, &n->args[0], "resolver_timeout", &ms) && ms > 0)
            s->fwd.resolver_timeout_ms = (uint32_t)ms;
        else if (ms == 0)
            conf_err(b->st, &n->args[0].pos, "'resolver_timeout' must be more than 0");
    } else if (conf_tok_is(&n->name, "connect_ports")) {
        on_connect_ports(b, s, n);
    } else {
        conf_on_off(b, n, &s->fwd.allow_private);
    }
}

void
conf_forward_finish(struct build *b, struct psrv *s, const struct blk *k, const struct cnode *n)
{
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
