/*
 * sock.c - TCP socket helpers.
 */
#include "net/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <unistd.h>

int
gh_sock_listen(const struct sockaddr *addr, socklen_t len, int backlog)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
        goto fail;
    if (addr->sa_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
        goto fail;
    if (bind(fd, addr, len) == -1 || listen(fd, backlog) == -1)
        goto fail;
    return fd;
fail:;
    int e = errno;
    close(fd);
    return -e;
}

int
gh_sock_probe_free(const struct sockaddr *addr, socklen_t len)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -errno;
    int one = 1, rc = 0;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (addr->sa_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, addr, len) == -1)
        rc = -errno;
    close(fd);
    return rc;
}

int
gh_sock_connect(const struct sockaddr *addr, socklen_t len)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -errno;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, addr, len) == -1 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int
gh_sock_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
        return errno;
    return err;
}

size_t
gh_sock_ip_str(const struct sockaddr *addr, char *out, size_t cap)
{
    const void *src;
    if (addr->sa_family == AF_INET)
        src = &((const struct sockaddr_in *)addr)->sin_addr;
    else if (addr->sa_family == AF_INET6)
        src = &((const struct sockaddr_in6 *)addr)->sin6_addr;
    else
        return 0;
    if (inet_ntop(addr->sa_family, src, out, (socklen_t)cap) == NULL)
        return 0;
    size_t n = 0;
    while (out[n] != '\0')
        n++;
    return n;
}

size_t
gh_sock_addr_str(const struct sockaddr *addr, char *out, size_t cap)
{
    char ip[64];
    if (gh_sock_ip_str(addr, ip, sizeof(ip)) == 0)
        return 0;
    int port = ntohs(addr->sa_family == AF_INET ? ((const struct sockaddr_in *)addr)->sin_port
                                                : ((const struct sockaddr_in6 *)addr)->sin6_port);
    int n = snprintf(out, cap, addr->sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}
