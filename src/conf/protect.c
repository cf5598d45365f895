/*
 * protect.c - directives against slow and hostile clients (handlers for the
 * table in parse.c), and the checks of a listener that takes the PROXY
 * protocol:
 *
 *   request_buffering on|off [SIZE];     main, server, route (default on 16k)
 *   client_body_temp_path DIR;           main, server, route (default /tmp)
 *   client_body_min_rate SIZE [GRACE];   main, server, route (default none; grace 5s)
 *   listen ... proxy_protocol;           needs proxy_protocol_from on its default server
 */
#include <string.h>

#include "conf/parse_int.h"

/* The largest SIZE kept in memory per request: beyond it the body goes to a file anyway. */
#define MAX_BUFFER_SIZE (64u * 1024 * 1024)

void
conf_on_request_buffering(struct build *b, struct blk *k, const struct cnode *n)
{
    conf_on_off(b, n, &k->pc->request_buffering);
    if (n->n_args < 2)
        return;
    if (!k->pc->request_buffering) {
        conf_err(b->st, &n->args[1].pos, "'request_buffering off' takes no size");
        return;
    }
    uint64_t v;
    if (conf_size_arg(b, &n->args[1], "request_buffering", 0, MAX_BUFFER_SIZE, &v))
        k->pc->request_buffer_size = (uint32_t)v;
}

void
conf_on_body_temp_path(struct build *b, struct blk *k, const struct cnode *n)
{
    const struct conf_tok *t = &n->args[0];
    if (!conf_check_path(b, n, t))
        return;
    k->pc->client_body_temp_path = conf_path_arg(b, n, t);
}

void
conf_on_body_min_rate(struct build *b, struct blk *k, const struct cnode *n)
{
    uint64_t v, ms;
    if (conf_size_arg(b, &n->args[0], "client_body_min_rate", 0, UINT32_MAX, &v))
        k->pc->client_body_min_rate = (uint32_t)v;
    if (n->n_args > 1 && conf_duration_arg(b, &n->args[1], "client_body_min_rate", &ms)) {
        if (ms > UINT32_MAX)
            conf_err(b->st, &n->args[1].pos, "grace of 'client_body_min_rate' out of range");
        else
            k->pc->client_body_min_rate_grace_ms = (uint32_t)ms;
    }
}

void
conf_check_listener(struct build *b, struct gh_listen_conf *lc, const struct conf_pos *pos)
{
    if (lc->proxy_protocol && lc->default_server->proxy_protocol_from == NULL)
        conf_err(b->st, pos,
                 "'listen %s proxy_protocol' needs 'proxy_protocol_from CIDR...;' (at top "
                 "level or in its default server): the addresses allowed to send the header",
                 lc->addr.text);
    if (lc->proxy_protocol && lc->socks5)
        conf_err(b->st, pos, "'proxy_protocol' on a socks5 listener is not supported yet");
}
