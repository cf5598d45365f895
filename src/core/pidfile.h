/*
 * pidfile.h - the file a running instance writes its process id to (`pid FILE;`),
 * and the reading side used by `gatehouse -s SIGNAL`.
 *
 * The format is nginx's: the decimal pid and a line feed. Writing replaces
 * whatever the file held (as nginx does; the caller warns when that named a
 * live process), removing takes it away only while it still names the caller,
 * so an instance never deletes the pid file of another one.
 */
#ifndef GH_CORE_PIDFILE_H
#define GH_CORE_PIDFILE_H

#include <sys/types.h>

/* Write pid to path (created 0644, or truncated). Returns 0 or -errno. */
int gh_pidfile_write(const char *path, pid_t pid);

/* Read the pid in path. Returns 0 with *pid set (> 0), -errno when it cannot be read, or
 * -EINVAL when it does not hold one process id (empty, not a number, trailing junk). */
int gh_pidfile_read(const char *path, pid_t *pid);

/* Remove path if it holds pid. Returns 0 (removed, or held another pid / was gone) or -errno. */
int gh_pidfile_remove(const char *path, pid_t pid);

/* 1 when a process pid exists (even one we may not signal), 0 when not. */
int gh_pid_alive(pid_t pid);

#endif
