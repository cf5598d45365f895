/*
 * test_pidfile.c - the pid file: written, read back, refused when it holds no pid, and
 * removed only while it names the caller.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/pidfile.h"

static char dir[64];
static char path[128];

static int
setup(void **state)
{
    strcpy(dir, "/tmp/gh_pidfile_test.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/gatehouse.pid", dir);
    return 0;
}

static int
teardown(void **state)
{
    unlink(path);
    return rmdir(dir);
}

static void
put(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void
test_write_read(void **state)
{
    pid_t pid = 0;
    assert_int_equal(gh_pidfile_read(path, &pid), -ENOENT);
    assert_int_equal(gh_pidfile_write(path, 4242), 0);
    char buf[32] = "";
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    assert_string_equal(buf, "4242\n"); /* nginx's format */
    assert_int_equal(gh_pidfile_read(path, &pid), 0);
    assert_int_equal(pid, 4242);
    /* a second write replaces it (as nginx does) */
    assert_int_equal(gh_pidfile_write(path, 17), 0);
    assert_int_equal(gh_pidfile_read(path, &pid), 0);
    assert_int_equal(pid, 17);
    /* no newline, or CRLF, is fine */
    put("123");
    assert_int_equal(gh_pidfile_read(path, &pid), 0);
    assert_int_equal(pid, 123);
    put("124\r\n");
    assert_int_equal(gh_pidfile_read(path, &pid), 0);
    assert_int_equal(pid, 124);
}

static void
test_read_refuses_what_is_not_a_pid(void **state)
{
    static const char *const bad[] = {"",      "\n",      "0\n",   "-5\n",
                                      "abc\n", "12 34\n", "12x\n", "999999999999\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pid_t pid = 99;
        put(bad[i]);
        assert_int_equal(gh_pidfile_read(path, &pid), -EINVAL);
        assert_int_equal(pid, 99);
    }
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/no/such.pid", dir);
    pid_t pid;
    assert_int_equal(gh_pidfile_write(missing, 1), -ENOENT);
    assert_int_equal(gh_pidfile_read(missing, &pid), -ENOENT);
}

static void
test_remove_only_own(void **state)
{
    assert_int_equal(gh_pidfile_write(path, 555), 0);
    assert_int_equal(gh_pidfile_remove(path, 556), 0); /* another instance's: left alone */
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(gh_pidfile_remove(path, 555), 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(gh_pidfile_remove(path, 555), 0); /* already gone: fine */
}

static void
test_pid_alive(void **state)
{
    assert_true(gh_pid_alive(getpid()));
    assert_true(gh_pid_alive(1)); /* init: exists even if we may not signal it */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(0);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_false(gh_pid_alive(child)); /* reaped: no such process (pids are not reused so soon) */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_refuses_what_is_not_a_pid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_only_own, setup, teardown),
        cmocka_unit_test(test_pid_alive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
