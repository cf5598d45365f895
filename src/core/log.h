/*
 * log.h - the error log: leveled lines "YYYY/MM/DD HH:MM:SS [level] message".
 *
 * Each line is formatted on the stack and written with one write(2), so lines
 * from several threads never interleave. The destination and level can be
 * changed at run time (reload) from one thread while others log.
 */
#ifndef GH_CORE_LOG_H
#define GH_CORE_LOG_H

#include <stddef.h>

#define GH_LL_ERROR 0
#define GH_LL_WARN 1
#define GH_LL_INFO 2
#define GH_LL_DEBUG 3

/* Set where lines go and the max level shown. Takes ownership of fd unless it is 2 (stderr,
 * which is never closed). Safe while other threads log: after the first file, lines always go
 * to the same descriptor number and a new destination is dup3()'d onto it (fd is then closed),
 * so reloads and reopens never add a descriptor. Call from one thread at a time. */
void gh_log_set(int fd, int level);
/* Current max level, to skip formatting work for lines that would be dropped. */
int gh_log_level(void);

void gh_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define gh_log_error(...) gh_log(GH_LL_ERROR, __VA_ARGS__)
#define gh_log_warn(...) gh_log(GH_LL_WARN, __VA_ARGS__)
#define gh_log_info(...) gh_log(GH_LL_INFO, __VA_ARGS__)
#define gh_log_debug(...)                                                                          \
    do {                                                                                           \
        if (gh_log_level() >= GH_LL_DEBUG)                                                         \
            gh_log(GH_LL_DEBUG, __VA_ARGS__);                                                      \
    } while (0)

/* Open a log file for appending, creating it (0644) if need be. Returns the fd or -errno. */
int gh_log_open(const char *path);

/* Write a whole buffer to fd, retrying on EINTR/short writes (for log files). Returns 0 or -errno.
 */
int gh_write_all(int fd, const char *p, size_t n);

#endif
