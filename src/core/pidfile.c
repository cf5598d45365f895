/*
 * pidfile.c - write, read and remove the pid file.
 */
#include "core/pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

int
gh_pidfile_write(const char *path, pid_t pid)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%ld\n", (long)pid);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd == -1)
        return -errno;
    int rc = gh_write_all(fd, text, (size_t)n);
    if (close(fd) == -1 && rc == 0)
        rc = -errno;
    return rc;
}

int
gh_pidfile_read(const char *path, pid_t *pid)
{
    char text[32];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd == -1)
        return -errno;
    ssize_t r;
    do
        r = read(fd, text, sizeof(text) - 1);
    while (r == -1 && errno == EINTR);
    int err = errno;
    close(fd);
    if (r == -1)
        return -err;
    size_t len = (size_t)r, i = 0;
    long v = 0;
    while (i < len && text[i] >= '0' && text[i] <= '9' && v <= 99999999) /* pid_max < 2^22 */
        v = v * 10 + (text[i++] - '0');
    if (i == 0 || v <= 0 || v > 99999999)
        return -EINVAL;
    while (i < len && (text[i] == '\n' || text[i] == '\r' || text[i] == ' ' || text[i] == '\t'))
        i++;
    if (i != len)
        return -EINVAL;
    *pid = (pid_t)v;
    return 0;
}

int
gh_pidfile_remove(const char *path, pid_t pid)
{
    pid_t held;
    int rc = gh_pidfile_read(path, &held);
    if (rc == -ENOENT || (rc == 0 && held != pid) || rc == -EINVAL)
        return 0;
    if (rc != 0)
        return rc;
    if (unlink(path) == -1 && errno != ENOENT)
        return -errno;
    return 0;
}

int
gh_pid_alive(pid_t pid)
{
    return kill(pid, 0) == 0 || errno == EPERM;
}
