/*
 * realip.c - reading forwarded client addresses (see realip.h).
 */
#include "policy/realip.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

static bool
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

int
gh_realip_parse_one(const char *s, size_t len, struct gh_realip_addr *out)
{
    while (len > 0 && is_ows(s[0])) {
        s++;
        len--;
    }
    while (len > 0 && is_ows(s[len - 1]))
        len--;
    struct gh_realip_addr a = {0};
    const char *host = s;
    size_t hlen = len;
    if (len > 0 && s[0] == '[') { /* [v6] or [v6]:port */
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return -EINVAL;
        host = s + 1;
        hlen = (size_t)(close - host);
        size_t after = len - (size_t)(close + 1 - s);
        if (after > 0 && (close[1] != ':' || gh_parse_port(close + 2, after - 1, &a.port) != 0))
            return -EINVAL;
        if (memchr(host, ':', hlen) == NULL) /* brackets are for IPv6 only */
            return -EINVAL;
    } else {
        const char *colon = memchr(s, ':', len);
        if (colon != NULL && memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)) == NULL) {
            hlen = (size_t)(colon - s); /* one colon: IPv4 with a port */
            if (gh_parse_port(colon + 1, len - hlen - 1, &a.port) != 0)
                return -EINVAL;
        }
    }
    if (gh_ip_parse(host, hlen, &a.family, a.ip) != 0)
        return -EINVAL;
    *out = a;
    return 0;
}

int
gh_realip_walk_list(const struct gh_cidr_set *trusted, const char *v, size_t len,
                    struct gh_realip_addr *addr)
{
    size_t end = len;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && v[start - 1] != ',')
            start--;
        const char *e = v + start;
        size_t elen = end - start;
        end = start > 0 ? start - 1 : 0;
        size_t k = 0;
        while (k < elen && is_ows(e[k]))
            k++;
        if (k == elen)
            continue; /* an empty entry */
        struct gh_realip_addr a;
        if (gh_realip_parse_one(e, elen, &a) != 0)
            return GH_REALIP_DONE;
        *addr = a;
        if (gh_cidr_set_find(trusted, a.family, a.ip) == GH_CIDR_NONE)
            return GH_REALIP_DONE;
        if (start == 0)
            break;
    }
    return GH_REALIP_MORE;
}
