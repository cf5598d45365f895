/*
 * log.c - the error log.
 */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Lines go to log_fd: 2 until the first log file is set, then own_fd for good. The number
 * own_fd never changes afterwards: a later destination (another file, or stderr again) is moved
 * onto it with dup3(), which swaps what the number refers to in one step. A thread writing at
 * that instant writes to the old file or the new one, never to a closed or reused number, and
 * the process holds one descriptor for the error log however often it is reopened. */
static int log_fd = 2;
static int own_fd = -1;
static int log_level = GH_LL_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
gh_log_set(int fd, int level)
{
    __atomic_store_n(&log_level, level, __ATOMIC_RELEASE);
    if (own_fd == -1) {
        if (fd != 2) {
            own_fd = fd;
            __atomic_store_n(&log_fd, fd, __ATOMIC_RELEASE);
        }
        return;
    }
    if (fd == own_fd)
        return;
    /* fd 2 is duplicated, never closed: stderr stays what it was for everyone else */
    int rc = dup3(fd, own_fd, O_CLOEXEC);
    int err = errno;
    if (fd != 2)
        close(fd);
    if (rc == -1)
        gh_log_error("cannot switch the error log: %s; still writing to the previous one",
                     strerror(err));
}

int
gh_log_level(void)
{
    return __atomic_load_n(&log_level, __ATOMIC_ACQUIRE);
}

int
gh_log_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    return fd == -1 ? -errno : fd;
}

int
gh_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w == -1) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void
gh_log(int level, const char *fmt, ...)
{
    if (level > gh_log_level())
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d/%02d/%02d %02d:%02d:%02d [%s] ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     level_names[level < 0   ? 0
                                 : level > 3 ? 3
                                             : level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len =
        (size_t)n +
        ((size_t)m < sizeof(line) - (size_t)n - 1 ? (size_t)m : sizeof(line) - (size_t)n - 2);
    line[len++] = '\n';
    int saved = errno;
    gh_write_all(__atomic_load_n(&log_fd, __ATOMIC_ACQUIRE), line, len);
    errno = saved;
}
