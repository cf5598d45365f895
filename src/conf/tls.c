/*
 * tls.c - the TLS directives and, once a config is assembled, its TLS
 * contexts: one per distinct set of server settings on a TLS listener (servers
 * that only inherit the top-level ones share it), a name table per TLS
 * listener for SNI, and one client context per upstream with TLS servers.
 *
 * Certificates and keys are read here, so `-t` reports a missing file, a key
 * that does not match its certificate or an expired certificate with the
 * position of the directive that names it; a reload reads them again.
 * Untrusted text (GH_CONF_NO_INCLUDE: fuzzing) reads no files: its contexts
 * are not built.
 */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "conf/parse_int.h"

/* ---- directives ---- */

static struct pfile *
new_file(struct build *b, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    if (!conf_check_path(b, n, t))
        return NULL;
    struct pfile *f = gh_arena_alloc(b->arena, sizeof(*f));
    f->path = conf_path_arg(b, n, t);
    f->pos = t->pos;
    return f;
}

void
conf_on_tls_file(struct build *b, struct blk *k, const struct cnode *n)
{
    struct ptls *t = k->tls;
    struct pfile *f = new_file(b, n);
    if (f == NULL)
        return;
    if (conf_tok_is(&n->name, "tls_certificate") || conf_tok_is(&n->name, "tls_key")) {
        if (!t->own_certs) { /* a block's own certificates replace the inherited ones */
            t->certs = (struct vec){0};
            t->keys = (struct vec){0};
            t->own_certs = true;
        }
        conf_vec_push(b, conf_tok_is(&n->name, "tls_key") ? &t->keys : &t->certs, f);
    } else if (conf_tok_is(&n->name, "tls_session_ticket_key")) {
        if (!t->own_ticket_keys) {
            t->ticket_keys = (struct vec){0};
            t->own_ticket_keys = true;
        }
        conf_vec_push(b, &t->ticket_keys, f);
    } else if (conf_tok_is(&n->name, "tls_ocsp_response")) {
        t->ocsp = *f;
    } else {
        t->client_ca = *f;
    }
}

void
conf_on_tls_protocols(struct build *b, struct blk *k, const struct cnode *n)
{
    unsigned p = 0;
    for (uint32_t i = 0; i < n->n_args; i++) {
        const struct conf_tok *t = &n->args[i];
        if (conf_tok_is(t, "TLSv1.2"))
            p |= GH_TLS_V12;
        else if (conf_tok_is(t, "TLSv1.3"))
            p |= GH_TLS_V13;
        else if (conf_tok_is(t, "TLSv1") || conf_tok_is(t, "TLSv1.1") || conf_tok_is(t, "SSLv3") ||
                 conf_tok_is(t, "SSLv2"))
            conf_err(b->st, &t->pos,
                     "'%s' is not supported: it is broken (RFC 8996); TLSv1.2 and TLSv1.3 are",
                     conf_show_tok(b, t));
        else
            conf_err(b->st, &t->pos, "unknown protocol '%s' (expected TLSv1.2 and/or TLSv1.3)",
                     conf_show_tok(b, t));
    }
    if (p != 0) {
        k->tls->protocols = p;
        k->tls->protocols_pos = n->args[0].pos;
    }
}

void
conf_on_tls_ciphers(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    if (t->len == 0 || memchr(t->text, '\0', t->len) != NULL) {
        conf_err(b->st, &t->pos, "invalid value for '%s'", n->name.text);
        return;
    }
    if (conf_tok_is(&n->name, "tls_ciphers")) {
        k->tls->ciphers = t->text;
        k->tls->ciphers_pos = t->pos;
    } else {
        k->tls->suites = t->text;
        k->tls->suites_pos = t->pos;
    }
}

void
conf_on_tls_flag(struct build *b, struct blk *k, const struct cnode *n)
{
    conf_on_off(b, n,
                conf_tok_is(&n->name, "tls_session_tickets") ? &k->tls->tickets
                                                             : &k->tls->prefer_server);
}

void
conf_on_tls_number(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    uint64_t v;
    if (conf_tok_is(&n->name, "tls_session_cache")) {
        if (conf_tok_is(t, "off"))
            k->tls->session_cache = 0;
        else if (conf_number_arg(b, t, "tls_session_cache", 1, 10000000, &v))
            k->tls->session_cache = (uint32_t)v;
    } else if (conf_tok_is(&n->name, "tls_session_timeout")) {
        if (!conf_duration_arg(b, t, "tls_session_timeout", &v))
            return;
        if (v < 1000)
            conf_err(b->st, &t->pos, "'tls_session_timeout' must be at least 1s");
        else
            k->tls->session_timeout_s = (uint32_t)(v / 1000);
    } else if (conf_number_arg(b, t, "tls_verify_depth", 1, 100, &v)) {
        k->tls->verify_depth = (uint32_t)v;
    }
}

void
conf_on_tls_verify_client(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    if (conf_tok_is(t, "on"))
        k->tls->verify_client = GH_TLS_VERIFY_ON;
    else if (conf_tok_is(t, "optional"))
        k->tls->verify_client = GH_TLS_VERIFY_OPTIONAL;
    else if (conf_tok_is(t, "off"))
        k->tls->verify_client = GH_TLS_VERIFY_OFF;
    else
        conf_err(b->st, &t->pos,
                 "invalid value '%s' for 'tls_verify_client' (expected on, optional or off)",
                 conf_show_tok(b, t));
    k->tls->verify_pos = t->pos;
}

/* `hsts max-age=SECONDS [includeSubDomains] [preload];` or `hsts off;` */
void
conf_on_hsts(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    if (conf_tok_is(t, "off") && n->n_args == 1) {
        k->sc->hsts = NULL;
        k->sc->hsts_len = 0;
        return;
    }
    uint64_t age;
    if (t->len <= 8 || strncasecmp(t->text, "max-age=", 8) != 0) {
        conf_err(b->st, &t->pos, "'hsts' starts with max-age=SECONDS (e.g. max-age=31536000)");
        return;
    }
    struct conf_tok v = *t;
    v.text += 8;
    v.len -= 8;
    v.pos.col += 8;
    if (!conf_number_arg(b, &v, "hsts max-age", 0, UINT32_MAX, &age))
        return;
    bool sub = false, preload = false;
    for (uint32_t i = 1; i < n->n_args; i++) {
        const struct conf_tok *p = &n->args[i];
        if (p->len == 17 && strncasecmp(p->text, "includeSubDomains", 17) == 0)
            sub = true;
        else if (p->len == 7 && strncasecmp(p->text, "preload", 7) == 0)
            preload = true;
        else
            conf_err(b->st, &p->pos,
                     "unknown parameter '%s' in 'hsts' (expected includeSubDomains or preload)",
                     conf_show_tok(b, p));
    }
    k->sc->hsts = gh_arena_sprintf(b->arena, "max-age=%llu%s%s", (unsigned long long)age,
                                   sub ? "; includeSubDomains" : "", preload ? "; preload" : "");
    k->sc->hsts_len = (uint32_t)strlen(k->sc->hsts);
}

/* `redirect_to_https [301|302|303|307|308] [port=N];` or `redirect_to_https off;` */
void
conf_on_redirect_to_https(struct build *b, struct blk *k, const struct cnode *n)
{
    uint16_t code = 1, port = 0;
    for (uint32_t i = 0; i < n->n_args; i++) {
        const struct conf_tok *p = &n->args[i];
        uint64_t v;
        if (conf_tok_is(p, "off") && n->n_args == 1) {
            k->sc->redirect_https = 0;
            k->sc->redirect_https_port = 0;
            return;
        }
        if (p->len > 5 && memcmp(p->text, "port=", 5) == 0) {
            struct conf_tok pv = *p;
            pv.text += 5;
            pv.len -= 5;
            pv.pos.col += 5;
            if (conf_number_arg(b, &pv, "redirect_to_https port", 1, 65535, &v))
                port = (uint16_t)v;
        } else if (conf_tok_is(p, "301") || conf_tok_is(p, "302") || conf_tok_is(p, "303") ||
                   conf_tok_is(p, "307") || conf_tok_is(p, "308")) {
            code = (uint16_t)((p->text[0] - '0') * 100 + (p->text[2] - '0'));
        } else {
            conf_err(b->st, &p->pos,
                     "unknown parameter '%s' in 'redirect_to_https' (expected 301, 302, 303, "
                     "307, 308 or port=N)",
                     conf_show_tok(b, p));
        }
    }
    k->sc->redirect_https = code;
    k->sc->redirect_https_port = port;
}

/* tls_trusted_ca, tls_verify, tls_name, tls_client_certificate, tls_client_key */
void
conf_on_up_tls(struct build *b, struct blk *k, const struct cnode *n)
{
    struct pups_tls *u = k->ups != NULL ? &k->ups->tls : &b->main_up_tls;
    const struct conf_tok *t = &n->args[0];
    if (conf_tok_is(&n->name, "tls_verify")) {
        bool on = true;
        conf_on_off(b, n, &on);
        u->verify = on ? 1 : 0;
        return;
    }
    if (conf_tok_is(&n->name, "tls_name")) {
        for (uint32_t i = 0; i < t->len; i++)
            if ((unsigned char)t->text[i] <= ' ' || t->text[i] == '/' || t->text[i] == 0x7f) {
                conf_err(b->st, &t->pos, "invalid name '%s' for 'tls_name'", conf_show_tok(b, t));
                return;
            }
        if (t->len == 0) {
            conf_err(b->st, &t->pos, "empty 'tls_name'");
            return;
        }
        u->name = t->text;
        u->name_pos = t->pos;
        return;
    }
    struct pfile *f = new_file(b, n);
    if (f == NULL)
        return;
    if (conf_tok_is(&n->name, "tls_trusted_ca"))
        u->ca = *f;
    else if (conf_tok_is(&n->name, "tls_client_certificate"))
        u->cert = *f;
    else
        u->key = *f;
}

void
conf_tls_defaults(struct ptls *t)
{
    memset(t, 0, sizeof(*t));
    t->protocols = GH_TLS_V12 | GH_TLS_V13;
    t->prefer_server = true;
    t->tickets = true;
    t->session_cache = 20000;
    t->session_timeout_s = 3600;
    t->verify_client = GH_TLS_VERIFY_OFF;
    t->verify_depth = 1;
}

/* ---- contexts ---- */

struct srv_report {
    struct build *b;
    const struct ptls *t;
    const struct conf_pos *listen_pos;
};

static const struct conf_pos *
file_pos(const struct vec *v, uint32_t idx, const struct conf_pos *dflt)
{
    if (v->n == 0)
        return dflt;
    return &((const struct pfile *)v->v[idx < v->n ? idx : v->n - 1])->pos;
}

static void
srv_report(void *arg, enum gh_tls_item item, uint32_t idx, bool warning, const char *msg)
{
    struct srv_report *r = arg;
    const struct ptls *t = r->t;
    const struct conf_pos *pos = r->listen_pos;
    switch (item) {
    case GH_TLS_I_CERT:
        pos = file_pos(&t->certs, idx, pos);
        break;
    case GH_TLS_I_KEY:
        pos = file_pos(&t->keys, idx, pos);
        break;
    case GH_TLS_I_TICKET_KEY:
        pos = file_pos(&t->ticket_keys, idx, pos);
        break;
    case GH_TLS_I_CIPHERS:
        pos = &t->ciphers_pos;
        break;
    case GH_TLS_I_SUITES:
        pos = &t->suites_pos;
        break;
    case GH_TLS_I_PROTOCOLS:
        pos = t->protocols_pos.file != NULL ? &t->protocols_pos : pos;
        break;
    case GH_TLS_I_OCSP:
        pos = &t->ocsp.pos;
        break;
    case GH_TLS_I_CLIENT_CA:
        pos = &t->client_ca.pos;
        break;
    case GH_TLS_I_OTHER:
        break;
    }
    if (warning)
        conf_warn(r->b->st, pos, "%s", msg);
    else
        conf_err(r->b->st, pos, "%s", msg);
}

static const char *const *
paths(struct build *b, const struct vec *v)
{
    const char **a = gh_arena_alloc(b->arena, (v->n + 1) * sizeof(*a));
    for (uint32_t i = 0; i < v->n; i++)
        a[i] = ((const struct pfile *)v->v[i])->path;
    return a;
}

/* Servers whose settings are the same (all inherited, typically) share a context. */
static bool
same_tls(const struct ptls *a, const struct ptls *c)
{
    return a->certs.v == c->certs.v && a->certs.n == c->certs.n && a->keys.v == c->keys.v &&
           a->keys.n == c->keys.n && a->protocols == c->protocols && a->ciphers == c->ciphers &&
           a->suites == c->suites && a->prefer_server == c->prefer_server &&
           a->tickets == c->tickets && a->session_cache == c->session_cache &&
           a->session_timeout_s == c->session_timeout_s && a->ticket_keys.v == c->ticket_keys.v &&
           a->ticket_keys.n == c->ticket_keys.n && a->ocsp.path == c->ocsp.path &&
           a->client_ca.path == c->client_ca.path && a->verify_client == c->verify_client &&
           a->verify_depth == c->verify_depth;
}

static struct gh_tls_ctx *
server_ctx(struct build *b, struct psrv *ps, const struct plisten *tl)
{
    const struct ptls *t = &ps->tls;
    for (uint32_t i = 0; i < b->servers.n; i++) {
        struct psrv *o = b->servers.v[i];
        if (o == ps)
            break;
        if (o->tls_ctx != NULL && same_tls(&o->tls, t))
            return o->tls_ctx;
    }
    if (t->certs.n == 0) {
        conf_err(b->st, &tl->pos,
                 "no 'tls_certificate' for this server on the TLS listener %s (give "
                 "tls_certificate and tls_key in the server or at top level)",
                 tl->addr.text);
        return NULL;
    }
    if (t->certs.n != t->keys.n) {
        conf_err(b->st, file_pos(&t->keys, t->keys.n, file_pos(&t->certs, t->certs.n, &tl->pos)),
                 "%u 'tls_certificate' but %u 'tls_key': each certificate needs its key, in the "
                 "same order",
                 t->certs.n, t->keys.n);
        return NULL;
    }
    if (t->client_ca.path == NULL && t->verify_client != GH_TLS_VERIFY_OFF) {
        conf_err(b->st, &t->verify_pos, "'tls_verify_client' needs 'tls_client_ca'");
        return NULL;
    }
    struct gh_tls_server_opts o = {
        .certs = paths(b, &t->certs),
        .keys = paths(b, &t->keys),
        .n_certs = t->certs.n,
        .protocols = t->protocols,
        .ciphers = t->ciphers,
        .ciphersuites = t->suites,
        .prefer_server = t->prefer_server,
        .session_cache = t->session_cache,
        .session_timeout_s = t->session_timeout_s,
        .tickets = t->tickets,
        .ticket_keys = paths(b, &t->ticket_keys),
        .n_ticket_keys = t->ticket_keys.n,
        .ocsp_file = t->ocsp.path,
        .client_ca = t->client_ca.path,
        .verify_client = (enum gh_tls_verify)t->verify_client,
        .verify_depth = t->verify_depth,
    };
    struct srv_report r = {b, t, &tl->pos};
    struct gh_tls_ctx *ctx = gh_tls_server_ctx_new(&o, srv_report, &r);
    if (ctx != NULL)
        gh_arena_add_cleanup(b->arena, gh_tls_ctx_free, ctx);
    return ctx;
}

static void
build_listener(struct build *b, struct gh_listen_conf *lc)
{
    struct psrv *dflt = b->servers.v[lc->default_server->index];
    if (dflt->tls_ctx == NULL)
        return; /* reported */
    struct gh_tls_sni *names = gh_arena_alloc(b->arena, (lc->n_names + 1) * sizeof(*names));
    for (uint32_t i = 0; i < lc->n_names; i++) {
        const struct psrv *ps = b->servers.v[lc->names[i].server->index];
        if (ps->tls_ctx == NULL)
            return; /* reported */
        names[i] = (struct gh_tls_sni){lc->names[i].name, lc->names[i].len, lc->names[i].wildcard,
                                       ps->tls_ctx};
    }
    lc->tls_ctx = gh_tls_listen_new(dflt->tls_ctx, names, lc->n_names);
    if (lc->tls_ctx == NULL)
        conf_err(b->st, &dflt->pos, "out of memory");
    else
        gh_arena_add_cleanup(b->arena, gh_tls_listen_unref, lc->tls_ctx);
}

struct up_report {
    struct build *b;
    const struct pups_tls *t;
    const struct conf_pos *pos;
};

static void
up_report(void *arg, enum gh_tls_item item, uint32_t idx, bool warning, const char *msg)
{
    struct up_report *r = arg;
    const struct conf_pos *pos = r->pos;
    if (item == GH_TLS_I_CLIENT_CA)
        pos = &r->t->ca.pos;
    else if (item == GH_TLS_I_CERT)
        pos = &r->t->cert.pos;
    else if (item == GH_TLS_I_KEY)
        pos = &r->t->key.pos;
    if (warning)
        conf_warn(r->b->st, pos, "%s", msg);
    else
        conf_err(r->b->st, pos, "%s", msg);
}

/* The host of an address's text: "127.0.0.1:9443" -> "127.0.0.1", "[::1]:443" -> "::1". */
static const char *
addr_host(struct build *b, const char *text)
{
    const char *colon = strrchr(text, ':');
    size_t len = colon != NULL ? (size_t)(colon - text) : strlen(text);
    if (len >= 2 && text[0] == '[' && text[len - 1] == ']')
        return gh_arena_sprintf(b->arena, "%.*s", (int)len - 2, text + 1);
    return gh_arena_sprintf(b->arena, "%.*s", (int)len, text);
}

static void
build_upstream(struct build *b, struct pups *pu, struct gh_upstream_conf *uc)
{
    struct pups_tls t = pu->tls, *m = &b->main_up_tls;
    if (t.ca.path == NULL)
        t.ca = m->ca;
    if (t.cert.path == NULL && t.key.path == NULL) {
        t.cert = m->cert;
        t.key = m->key;
    }
    if (t.verify < 0)
        t.verify = m->verify < 0 ? 1 : m->verify;
    if (t.name == NULL) {
        t.name = m->name;
        t.name_pos = m->name_pos;
    }
    if ((t.cert.path == NULL) != (t.key.path == NULL)) {
        conf_err(b->st, t.cert.path != NULL ? &t.cert.pos : &t.key.pos,
                 "'tls_client_certificate' and 'tls_client_key' go together");
        return;
    }
    struct gh_tls_client_opts o = {t.ca.path, t.verify == 1, t.cert.path, t.key.path};
    struct up_report r = {b, &t, &pu->pos};
    struct gh_tls_ctx *ctx = gh_tls_client_ctx_new(&o, up_report, &r);
    if (ctx == NULL)
        return;
    gh_arena_add_cleanup(b->arena, gh_tls_ctx_free, ctx);
    for (uint32_t i = 0; i < uc->n_servers; i++) {
        struct gh_upstream_server *s = &uc->servers[i];
        if (!s->tls_on)
            continue;
        struct gh_tls_client *c = gh_arena_alloc(b->arena, sizeof(*c));
        c->ctx = ctx;
        c->name = t.name != NULL ? t.name : addr_host(b, s->addr.text);
        const char *key = gh_arena_sprintf(b->arena, "%s|%d|%s|%s|%s", t.ca.path ? t.ca.path : "-",
                                           t.verify, c->name, t.cert.path ? t.cert.path : "-",
                                           t.key.path ? t.key.path : "-");
        c->xprt_id = gh_tls_client_id(key);
        s->tls = c;
    }
}

void
conf_tls_build(struct build *b)
{
    if (b->st->flags & GH_CONF_NO_INCLUDE)
        return; /* untrusted text reads no files */
    for (uint32_t i = 0; i < b->servers.n && !b->st->stop; i++) {
        struct psrv *ps = b->servers.v[i];
        for (uint32_t j = 0; j < ps->listens.n; j++) {
            const struct plisten *pl = ps->listens.v[j];
            if (pl->tls) {
                ps->tls_ctx = server_ctx(b, ps, pl);
                break;
            }
        }
    }
    if (b->st->n_errors > 0)
        return;
    for (uint32_t i = 0; i < b->servers.n; i++) {
        const struct psrv *ps = b->servers.v[i];
        b->cfg->servers[i].tls_ctx = ps->tls_ctx;
        b->cfg->servers[i].tls_verify_client =
            ps->tls_ctx != NULL && ps->tls.verify_client != GH_TLS_VERIFY_OFF;
    }
    for (uint32_t i = 0; i < b->cfg->n_listeners; i++)
        if (b->cfg->listeners[i].tls)
            build_listener(b, &b->cfg->listeners[i]);
    for (uint32_t i = 0; i < b->upstreams.n && !b->st->stop; i++) {
        struct pups *pu = b->upstreams.v[i];
        if (pu->has_tls)
            build_upstream(b, pu, &b->cfg->upstreams[i]);
    }
}
