/*
 * socks5_wire.c - the SOCKS5 handshake's messages (see socks5_wire.h).
 */
#include "proxy/socks5_wire.h"

#include <arpa/inet.h>
#include <string.h>

int
gh_s5_greeting(const uint8_t *p, size_t n, uint8_t method, bool *offered)
{
    if (n >= 1 && p[0] != 5)
        return GH_S5_EVERSION;
    if (n < 2 || n < 2u + p[1])
        return 0;
    *offered = memchr(p + 2, method, p[1]) != NULL;
    return 2 + p[1];
}

int
gh_s5_login(const uint8_t *p, size_t n, struct gh_s5_login *out)
{
    if (n >= 1 && p[0] != 1)
        return GH_S5_EVERSION;
    if (n < 2)
        return 0;
    size_t ul = p[1];
    if (n < 3 + ul)
        return 0;
    size_t pl = p[2 + ul];
    if (n < 3 + ul + pl)
        return 0;
    out->user = p + 2;
    out->user_len = (uint8_t)ul;
    out->pass = p + 3 + ul;
    out->pass_len = (uint8_t)pl;
    return (int)(3 + ul + pl);
}

/* The name at p[0..l) as host text, if every byte may be in a host name as clients write it. */
static bool
name_ok(const uint8_t *p, size_t l, char *host)
{
    if (l == 0)
        return false;
    for (size_t i = 0; i < l; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7f)
            return false;
    memcpy(host, p, l);
    host[l] = '\0';
    return true;
}

int
gh_s5_request(const uint8_t *p, size_t n, struct gh_s5_request *out)
{
    if (n >= 1 && p[0] != 5)
        return GH_S5_EVERSION;
    if (n < 5)
        return 0;
    size_t need;
    out->cmd = p[1];
    out->atyp = p[3];
    switch (p[3]) {
    case GH_S5_ATYP_V4:
        need = 4 + 4 + 2;
        break;
    case GH_S5_ATYP_V6:
        need = 4 + 16 + 2;
        break;
    case GH_S5_ATYP_NAME:
        need = 5 + (size_t)p[4] + 2;
        break;
    default:
        return GH_S5_EATYP;
    }
    if (n < need)
        return 0;
    if (p[3] == GH_S5_ATYP_V4)
        inet_ntop(AF_INET, p + 4, out->host, sizeof(out->host));
    else if (p[3] == GH_S5_ATYP_V6)
        inet_ntop(AF_INET6, p + 4, out->host, sizeof(out->host));
    else if (!name_ok(p + 5, p[4], out->host))
        return GH_S5_ENAME;
    out->port = (uint16_t)(p[need - 2] << 8 | p[need - 1]);
    return (int)need;
}
