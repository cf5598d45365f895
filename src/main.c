/*
 * main.c - command line, signals, threads; nothing else.
 *
 *   gatehouse                         run the embedded default config
 *   gatehouse -c FILE                 run FILE
 *   gatehouse -t -c FILE              check FILE and exit (0 ok, 1 with FILE:LINE:COL errors)
 *   gatehouse -s SIGNAL [-c FILE]     signal the instance whose pid file FILE names
 *   gatehouse reverse-proxy --from ADDR:PORT --to ADDR:PORT [--to ...]
 *   gatehouse --version | --help
 *
 * Signals: SIGHUP reloads the config (a bad one is logged and the old one
 * kept), SIGUSR1 reopens the log files, SIGTERM/SIGINT/SIGQUIT stop accepting,
 * drain requests in flight and exit 0.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cache/store.h"
#include "conf/conf.h"
#include "core/log.h"
#include "core/pidfile.h"
#include "net/tls.h"
#include "proxy/proxy.h"

#define GH_VERSION "0.1.0"

static const char embedded_default[] =
    "# Gatehouse embedded default: a status answer on 127.0.0.1:9901, and a forward proxy on\n"
    "# 127.0.0.1:3128 (public destinations only, CONNECT to port 443).\n"
    "threads auto;\n"
    "access_log stderr forward;\n"
    "server {\n"
    "    listen 127.0.0.1:9901;\n"
    "    route / { return 200 \"Gatehouse " GH_VERSION " is running.\\n"
    "Forward proxy: curl -x http://127.0.0.1:3128 https://example.org/\\n"
    "Reverse proxy: gatehouse reverse-proxy --from 127.0.0.1:8080 --to 127.0.0.1:3000\\n"
    "or:            gatehouse -c examples/reverse-proxy.conf\\n\"; }\n"
    "}\n"
    "forward_proxy {\n"
    "    listen 127.0.0.1:3128;\n"
    "}\n";

static void
usage(FILE *f)
{
    fprintf(f,
            "Gatehouse %s - reverse and forward proxy\n"
            "\n"
            "usage:\n"
            "  gatehouse                      run the embedded default (status on "
            "127.0.0.1:9901,\n"
            "                                 forward proxy on 127.0.0.1:3128)\n"
            "  gatehouse -c FILE              run with a config file\n"
            "  gatehouse -t -c FILE           check a config file and exit\n"
            "  gatehouse -s SIGNAL [-c FILE]  signal the running instance, found by the 'pid'\n"
            "                                 file of FILE: reload, reopen (the log files),\n"
            "                                 stop or quit (both drain requests, then exit)\n"
            "  gatehouse reverse-proxy --from ADDR:PORT --to ADDR:PORT [--to ADDR:PORT ...]\n"
            "            [--threads N] [--access-log]\n"
            "  gatehouse forward-proxy --listen ADDR:PORT [--resolver ADDR[:PORT] ...]\n"
            "            [--connect-port N ...] [--allow-private] [--threads N] [--access-log]\n"
            "  gatehouse -v | --version | -h | --help\n"
            "\n"
            "signals: HUP reloads the config, USR1 reopens the log files,\n"
            "         TERM/INT/QUIT drain and exit.\n"
            "exit status: 0 ok, 1 failure (config, listener, signal), 2 command-line mistake.\n"
            "docs: docs/config.md, docs/operations.md, man gatehouse\n",
            GH_VERSION);
}

struct source {
    const char *path; /* config file, or NULL */
    char *text;       /* generated config text when no file */
    const char *name;
};

static struct gh_config *
load(const struct source *src, int quiet_ok)
{
    struct gh_conf_diag diag = {0};
    struct gh_config *cfg =
        src->path != NULL ? gh_conf_load_file(src->path, &diag)
                          : gh_conf_load_string(src->name, src->text, strlen(src->text), &diag);
    if (cfg == NULL) {
        for (uint32_t i = 0; i < diag.n; i++)
            gh_log_error("%s", diag.msgs[i]);
        if (diag.n == 0)
            gh_log_error("%s: cannot load config", src->path ? src->path : src->name);
    } else if (!quiet_ok) {
        for (uint32_t i = 0; i < diag.n; i++)
            gh_log_warn("%s", diag.msgs[i]);
    }
    gh_conf_diag_free(&diag);
    return cfg;
}

/* Point the error log at cfg's error_log (start, reload, SIGUSR1). The file is opened anew
 * each time (after rotation it is a new file); gh_log_set() moves it onto the one descriptor
 * the log keeps, so no call adds a descriptor. Returns 0, or -1 (logged) with the log unchanged. */
static int
apply_error_log(const struct gh_config *cfg)
{
    int fd = 2;
    if (cfg->error_log_path != NULL) {
        fd = gh_log_open(cfg->error_log_path);
        if (fd < 0) {
            gh_log_error("%s: cannot open error_log '%s': %s", cfg->error_log_at,
                         cfg->error_log_path, strerror(-fd));
            return -1;
        }
    }
    gh_log_set(fd, (int)cfg->error_log_level);
    return 0;
}

/* `-t` also checks that the log files can be opened for appending (creating
 * them if need be, as starting would), as `nginx -t` does. Returns 0 or 1. */
static int
check_log_files(const struct gh_config *cfg)
{
    const char *paths[2] = {cfg->access_log_on ? cfg->access_log_path : NULL, cfg->error_log_path};
    const char *what[2] = {"access_log", "error_log"};
    const char *at[2] = {cfg->access_log_at, cfg->error_log_at};
    int bad = 0;
    for (int i = 0; i < 2; i++) {
        if (paths[i] == NULL)
            continue;
        int fd = gh_log_open(paths[i]);
        if (fd < 0) {
            fprintf(stderr, "%s: cannot open %s '%s': %s\n", at[i], what[i], paths[i],
                    strerror(-fd));
            bad = 1;
        } else {
            close(fd);
        }
    }
    return bad;
}

/* An address for --from/--to: what the config accepts, checked here so that a
 * mistake is reported as one on the command line. */
static int
valid_cli_addr(const char *opt, const char *v)
{
    struct gh_addr a;
    char buf[80];
    /* --from also takes a bare port (every IPv4 interface), as `listen` does */
    int bare_port =
        strcmp(opt, "--from") == 0 && v[0] != '\0' && strspn(v, "0123456789") == strlen(v);
    int n = snprintf(buf, sizeof(buf), bare_port ? "*:%s" : "%s", v);
    if (n <= 0 || (size_t)n >= sizeof(buf) || gh_conf_parse_addr(buf, (size_t)n, &a) != 0) {
        char hint[256];
        if (strcmp(opt, "--to") == 0 &&
            gh_conf_addr_hint(v, strlen(v), opt, hint, sizeof(hint)) != NULL) {
            fprintf(stderr, "gatehouse: invalid address for --to: '%s': %s\n", v, hint);
            return 0;
        }
        fprintf(stderr,
                "gatehouse: invalid address for %s: '%s' (expected e.g. 127.0.0.1:8080 or "
                "[::1]:8080%s)\n",
                opt, v, strcmp(opt, "--from") == 0 ? " or 8080" : "");
        return 0;
    }
    return 1;
}

/* Build a config from `reverse-proxy` arguments. Returns 0 or prints why not and returns 2. */
static int
reverse_proxy_args(int argc, char **argv, struct source *src)
{
    const char *from = NULL;
    const char *threads = "auto";
    int access_log = 0;
    size_t cap = 1024;
    for (int i = 0; i < argc; i++)
        cap += strlen(argv[i]) + 64;
    char *ups = calloc(1, cap);
    if (ups == NULL)
        return 2;
    int n_to = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if ((strcmp(a, "--from") == 0 || strcmp(a, "--to") == 0 || strcmp(a, "--threads") == 0) &&
            v == NULL) {
            fprintf(stderr, "gatehouse: %s needs a value\n", a);
            free(ups);
            return 2;
        }
        /* values become config words: refuse what could break out of a word */
        if (v != NULL && strpbrk(v, " \t\r\n;{}\"#\\") != NULL &&
            (strcmp(a, "--from") == 0 || strcmp(a, "--to") == 0 || strcmp(a, "--threads") == 0)) {
            fprintf(stderr, "gatehouse: invalid value for %s: '%s'\n", a, v);
            free(ups);
            return 2;
        }
        if ((strcmp(a, "--from") == 0 || strcmp(a, "--to") == 0) && !valid_cli_addr(a, v)) {
            free(ups);
            return 2;
        }
        if (strcmp(a, "--from") == 0) {
            from = v;
            i++;
        } else if (strcmp(a, "--to") == 0) {
            char line[128];
            snprintf(line, sizeof(line), "    server %s;\n", v);
            if (strstr(ups, line) != NULL) {
                fprintf(stderr, "gatehouse: --to %s is given twice\n", v);
                free(ups);
                return 2;
            }
            strcat(ups, "    server ");
            strcat(ups, v);
            strcat(ups, ";\n");
            n_to++;
            i++;
        } else if (strcmp(a, "--threads") == 0) {
            threads = v;
            i++;
        } else if (strcmp(a, "--access-log") == 0) {
            access_log = 1;
        } else {
            fprintf(stderr, "gatehouse: unknown option for reverse-proxy: '%s'\n", a);
            free(ups);
            return 2;
        }
    }
    if (from == NULL || n_to == 0) {
        fprintf(stderr, "gatehouse: reverse-proxy needs --from ADDR:PORT and at least one --to "
                        "ADDR:PORT\n");
        free(ups);
        return 2;
    }
    size_t len = strlen(ups) + strlen(from) + strlen(threads) + 256;
    src->text = malloc(len);
    if (src->text == NULL) {
        free(ups);
        return 2;
    }
    snprintf(src->text, len,
             "threads %s;\naccess_log %s;\nupstream origin {\n%s}\nserver {\n    listen %s;\n"
             "    proxy origin;\n}\n",
             threads, access_log ? "stderr combined" : "off", ups, from);
    src->name = "<command line>";
    free(ups);
    return 0;
}

/* What `-s NAME` sends, and what the running instance does with it (serve()). */
static const struct {
    const char *name;
    int sig;
    const char *sig_name;
} cli_signals[] = {
    {"reload", SIGHUP, "SIGHUP"},   /* load the config again */
    {"reopen", SIGUSR1, "SIGUSR1"}, /* reopen the log files */
    {"stop", SIGTERM, "SIGTERM"},   /* drain, exit 0 */
    {"quit", SIGQUIT, "SIGQUIT"},   /* the same: there is no faster stop than a drain */
};

/* Read the command line into src. Returns -1 to go on, else the exit code. *signal_idx is
 * set by `-s NAME` (an entry of cli_signals). */
/* A word of config from a command-line value: nothing that could end or open a directive. */
static bool
cli_word(const char *opt, const char *v)
{
    if (v == NULL) {
        fprintf(stderr, "gatehouse: %s needs a value\n", opt);
        return false;
    }
    if (*v == '\0' || strpbrk(v, " \t\r\n;{}\"#\\$'") != NULL) {
        fprintf(stderr, "gatehouse: invalid value for %s: '%s'\n", opt, v);
        return false;
    }
    return true;
}

/* `gatehouse forward-proxy --listen ADDR [--resolver ADDR]... [--connect-port N]...
 * [--allow-private] [--threads N] [--access-log]`: a config made from the command line. */
static int
forward_proxy_args(int argc, char **argv, struct source *src)
{
    char listen[160] = "", resolvers[512] = "", ports[256] = "";
    const char *threads = "auto";
    bool allow_private = false, access_log = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = strcmp(a, "--listen") == 0 || strcmp(a, "--resolver") == 0 ||
                     strcmp(a, "--connect-port") == 0 || strcmp(a, "--threads") == 0;
        if (takes && !cli_word(a, v))
            return 2;
        if (takes && strlen(v) > 100) {
            fprintf(stderr, "gatehouse: value for %s too long\n", a);
            return 2;
        }
        if (strcmp(a, "--listen") == 0) {
            if (!valid_cli_addr(a, v))
                return 2;
            snprintf(listen + strlen(listen), sizeof(listen) - strlen(listen), "    listen %s;\n",
                     v);
        } else if (strcmp(a, "--resolver") == 0 &&
                   strlen(resolvers) + strlen(v) + 2 < sizeof(resolvers)) {
            strcat(resolvers, " ");
            strcat(resolvers, v);
        } else if (strcmp(a, "--connect-port") == 0 &&
                   strlen(ports) + strlen(v) + 2 < sizeof(ports)) {
            strcat(ports, " ");
            strcat(ports, v);
        } else if (strcmp(a, "--threads") == 0) {
            threads = v;
        } else if (strcmp(a, "--allow-private") == 0) {
            allow_private = true;
        } else if (strcmp(a, "--access-log") == 0) {
            access_log = true;
        } else {
            fprintf(stderr, "gatehouse: unknown option for forward-proxy: '%s'\n", a);
            return 2;
        }
        i += takes;
    }
    if (listen[0] == '\0') {
        fprintf(stderr, "gatehouse: forward-proxy needs --listen ADDR:PORT\n");
        return 2;
    }
    size_t len = 1024 + strlen(listen) + strlen(resolvers) + strlen(ports);
    src->text = malloc(len);
    if (src->text == NULL)
        return 2;
    snprintf(src->text, len,
             "threads %s;\naccess_log %s;\nforward_proxy {\n%s%s%s%s%s%s%s    "
             "allow_private_destinations %s;\n}\n",
             threads, access_log ? "stderr forward" : "off", listen,
             resolvers[0] ? "    resolver" : "", resolvers, resolvers[0] ? ";\n" : "",
             ports[0] ? "    connect_ports" : "", ports, ports[0] ? ";\n" : "",
             allow_private ? "on" : "off");
    src->name = "<command line>";
    return 0;
}

static int
parse_cli(int argc, char **argv, struct source *src, int *test_only, int *signal_idx)
{
    if (argc >= 2 && strcmp(argv[1], "reverse-proxy") == 0)
        return reverse_proxy_args(argc - 2, argv + 2, src) != 0 ? 2 : -1;
    if (argc >= 2 && strcmp(argv[1], "forward-proxy") == 0)
        return forward_proxy_args(argc - 2, argv + 2, src) != 0 ? 2 : -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-c") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "gatehouse: -c needs a config file\n");
                return 2;
            }
            src->path = argv[++i];
        } else if (strcmp(a, "-t") == 0) {
            *test_only = 1;
        } else if (strcmp(a, "-s") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "gatehouse: -s needs a signal: reload, reopen, stop or quit\n");
                return 2;
            }
            const char *v = argv[++i];
            *signal_idx = -1;
            for (int k = 0; k < (int)GH_ARRAY_LEN(cli_signals); k++)
                if (strcmp(v, cli_signals[k].name) == 0)
                    *signal_idx = k;
            if (*signal_idx < 0) {
                fprintf(stderr,
                        "gatehouse: unknown signal '%s' for -s (expected reload, reopen, stop or "
                        "quit)\n",
                        v);
                return 2;
            }
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
            printf("gatehouse %s\n", GH_VERSION);
            return 0;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "gatehouse: unknown argument '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (*test_only && *signal_idx >= 0) {
        fprintf(stderr, "gatehouse: -t and -s do not go together\n");
        return 2;
    }
    if (src->path == NULL)
        src->text = strdup(embedded_default);
    return -1;
}

/*
 * `-s NAME`: send the signal to the instance whose process id is in the pid file that the
 * config names (as `nginx -s` does). The config is loaded in full first, so `-s reload` of a
 * file with errors reports them and signals nothing. Returns the exit code (0 sent, 1 not).
 */
static int
signal_instance(const struct source *src, int idx)
{
    const char *name = cli_signals[idx].name;
    if (src->path == NULL) {
        fprintf(stderr,
                "gatehouse: -s %s: no -c FILE, and the embedded default config has no 'pid' "
                "directive, so there is no running instance to find; give the config it runs "
                "with (-c FILE, with 'pid FILE;')\n",
                name);
        return 1;
    }
    struct gh_conf_diag diag = {0};
    struct gh_config *cfg = gh_conf_load_file(src->path, &diag);
    gh_conf_diag_print(&diag, stderr);
    gh_conf_diag_free(&diag);
    if (cfg == NULL) {
        fprintf(stderr, "gatehouse: -s %s: %s has errors; nothing was signalled\n", name,
                src->path);
        return 1;
    }
    int code = 1;
    pid_t pid = 0;
    const char *pf = cfg->pid_path;
    if (pf == NULL) {
        fprintf(stderr,
                "gatehouse: -s %s: %s has no 'pid' directive, so the running instance cannot be "
                "found (add e.g. 'pid /run/gatehouse.pid;' and restart it, or use kill)\n",
                name, src->path);
        goto out;
    }
    int rc = gh_pidfile_read(pf, &pid);
    if (rc == -ENOENT) {
        fprintf(stderr,
                "gatehouse: -s %s: pid file '%s' does not exist: gatehouse is not running with "
                "this config (or was started before 'pid' was added)\n",
                name, pf);
        goto out;
    }
    if (rc == -EINVAL) {
        fprintf(stderr, "gatehouse: -s %s: pid file '%s' does not hold a process id\n", name, pf);
        goto out;
    }
    if (rc != 0) {
        fprintf(stderr, "gatehouse: -s %s: cannot read pid file '%s': %s\n", name, pf,
                strerror(-rc));
        goto out;
    }
    if (kill(pid, cli_signals[idx].sig) == -1) {
        if (errno == ESRCH)
            fprintf(stderr,
                    "gatehouse: -s %s: no process %ld: the pid file '%s' is stale (gatehouse is "
                    "not running)\n",
                    name, (long)pid, pf);
        else if (errno == EPERM)
            fprintf(stderr,
                    "gatehouse: -s %s: not permitted to signal process %ld (from '%s'): run as "
                    "the user gatehouse runs as, or as root\n",
                    name, (long)pid, pf);
        else
            fprintf(stderr, "gatehouse: -s %s: kill(%ld, %s): %s\n", name, (long)pid,
                    cli_signals[idx].sig_name, strerror(errno));
        goto out;
    }
    code = 0;
out:
    gh_conf_unref(cfg);
    return code;
}

/* `-t`: check the config (and that its log files open) and say so. Returns the exit code. */
static int
check_only(const struct source *src)
{
    struct gh_conf_diag diag = {0};
    struct gh_config *cfg =
        src->path ? gh_conf_load_file(src->path, &diag)
                  : gh_conf_load_string(src->name, src->text, strlen(src->text), &diag);
    gh_conf_diag_print(&diag, stderr);
    gh_conf_diag_free(&diag);
    if (cfg == NULL)
        return 1;
    int bad = check_log_files(cfg);
    if (!bad)
        printf("%s: configuration is valid\n", src->path ? src->path : src->name);
    gh_conf_unref(cfg);
    return bad ? 1 : 0;
}

static unsigned
thread_count(const struct gh_config *cfg)
{
    if (cfg->threads != 0)
        return cfg->threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* Write our pid to cfg's pid file (if it names one). An existing file is replaced, as nginx
 * does, with a warning when it named another process that still runs. Returns 0 or -1 (logged). */
static int
pidfile_create(const struct gh_config *cfg)
{
    if (cfg->pid_path == NULL)
        return 0;
    pid_t old;
    if (gh_pidfile_read(cfg->pid_path, &old) == 0 && old != getpid() && gh_pid_alive(old))
        gh_log_warn("pid file '%s' named process %ld, which is running; replacing it (that "
                    "process can no longer be signalled through it)",
                    cfg->pid_path, (long)old);
    int rc = gh_pidfile_write(cfg->pid_path, getpid());
    if (rc != 0) {
        gh_log_error("%s: cannot write pid file '%s': %s", cfg->pid_at, cfg->pid_path,
                     strerror(-rc));
        return -1;
    }
    return 0;
}

/* Remove the pid file of cfg (if any) while it still holds our pid. */
static void
pidfile_delete(const struct gh_config *cfg)
{
    if (cfg == NULL || cfg->pid_path == NULL)
        return;
    int rc = gh_pidfile_remove(cfg->pid_path, getpid());
    if (rc != 0)
        gh_log_warn("cannot remove pid file '%s': %s", cfg->pid_path, strerror(-rc));
}

static bool
same_pid_path(const struct gh_config *a, const struct gh_config *b)
{
    if (a->pid_path == NULL || b->pid_path == NULL)
        return a->pid_path == b->pid_path;
    return strcmp(a->pid_path, b->pid_path) == 0;
}

/* SIGHUP: load src again and swap it in. Returns the config now running (cfg when that fails). */
static struct gh_config *
reload(const struct source *src, struct gh_config *cfg, unsigned nthreads)
{
    gh_log_info("reloading %s", src->path ? src->path : src->name);
    struct gh_config *ncfg = load(src, 0);
    if (ncfg == NULL) {
        gh_log_error("reload failed; the previous configuration keeps running");
        return cfg;
    }
    unsigned nt = thread_count(ncfg);
    if (nt != nthreads)
        gh_log_warn("threads changed to %u: takes effect after a restart", nt);
    /* A pid file that moved is written before the swap (a reload that cannot write it fails,
     * as in nginx) and the old one removed after. */
    bool pid_moved = !same_pid_path(cfg, ncfg);
    if (pid_moved && pidfile_create(ncfg) != 0) {
        gh_log_error("reload failed; the previous configuration keeps running");
        gh_conf_unref(ncfg);
        return cfg;
    }
    if (gh_proxy_reload(ncfg) != 0) {
        gh_log_error("reload failed; the previous configuration keeps running");
        if (pid_moved)
            pidfile_delete(ncfg);
        gh_conf_unref(ncfg);
        return cfg;
    }
    if (pid_moved)
        pidfile_delete(cfg);
    apply_error_log(ncfg);
    if (gh_cache_disk_start() != 0)
        gh_log_error(
            "a cache's disk could not be opened: that cache keeps the disk it had, if any");
    gh_conf_unref(cfg);
    gh_log_info("reload complete");
    return ncfg;
}

/* Take SIGHUP (reload), SIGUSR1 (reopen logs) and SIGUSR2 until SIGTERM, SIGINT or SIGQUIT;
 * *cfgp follows reloads. Returns the exit code. */
static int
take_signals(const sigset_t *set, const struct source *src, struct gh_config **cfgp,
             unsigned nthreads)
{
    int code = 0;
    struct gh_config *cfg = *cfgp;
    for (;;) {
        int sig = sigwaitinfo(set, NULL);
        if (sig == -1) {
            if (errno == EINTR)
                continue;
            gh_log_error("sigwaitinfo: %s", strerror(errno));
            code = 1;
            break;
        }
        if (sig == SIGUSR1) {
            /* as in nginx: reopen the log files (after rotation) */
            gh_log_info("SIGUSR1: reopening log files");
            apply_error_log(cfg);
            if (gh_proxy_reopen_logs(cfg) != 0)
                gh_log_error("cannot reopen the access log; still writing to the old one");
        } else if (sig == SIGUSR2) {
            gh_log_warn("SIGUSR2 ignored (binary upgrade is not supported)");
        } else if (sig == SIGHUP) {
            cfg = reload(src, cfg, nthreads);
        } else {
            gh_log_info("received %s: draining (at most %u ms)",
                        sig == SIGINT    ? "SIGINT"
                        : sig == SIGQUIT ? "SIGQUIT"
                                         : "SIGTERM",
                        cfg->drain_timeout_ms);
            break;
        }
    }
    *cfgp = cfg;
    return code;
}

/* The defences' counters that moved, one line each, at stop. */
static void
log_protect_stats(const struct gh_proxy_stats *st)
{
#define GH_PC_LOG(name, text)                                                                      \
    if (st->name > 0)                                                                              \
        gh_log_info("counter %s: %" PRIu64 " %s", #name, st->name, text);
    GH_PROTECT_COUNTERS(GH_PC_LOG)
#undef GH_PC_LOG
}

/* Run until SIGTERM/SIGINT: start the workers, then take signals. Returns the exit code. */
static int
serve(const struct source *src)
{
    struct gh_config *cfg = load(src, 0);
    if (cfg == NULL)
        return 1;
    if (apply_error_log(cfg) != 0) {
        gh_conf_unref(cfg);
        return 1;
    }

    /* Workers inherit this mask; only the main thread takes these signals. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    unsigned nthreads = thread_count(cfg);
    if (gh_cache_disk_start() != 0 || gh_proxy_start(cfg, nthreads) != 0) {
        gh_log_error("start-up failed");
        gh_proxy_stop(0, NULL);
        gh_cache_disk_stop();
        gh_conf_unref(cfg);
        return 1;
    }
    /* after the listeners: an instance that cannot start leaves a running one's file alone */
    if (pidfile_create(cfg) != 0) {
        gh_log_error("start-up failed");
        gh_proxy_stop(0, NULL);
        gh_cache_disk_stop();
        gh_conf_unref(cfg);
        return 1;
    }
    for (uint32_t i = 0; i < cfg->n_listeners; i++)
        gh_log_info("listening on %s", cfg->listeners[i].addr.text);
    gh_log_info("gatehouse %s started (pid %d): %u worker thread(s), config %s", GH_VERSION,
                (int)getpid(), nthreads, src->path ? src->path : src->name);

    int code = take_signals(&set, src, &cfg, nthreads);
    struct gh_proxy_stats st;
    gh_proxy_stop(cfg->drain_timeout_ms, &st);
    pidfile_delete(cfg);
    if (st.cut > 0)
        gh_log_warn("stopped: %" PRIu64 " connection(s), %" PRIu64 " request(s), %" PRIu64
                    " cut off at the drain deadline",
                    st.accepted, st.requests, st.cut);
    else
        gh_log_info("stopped: %" PRIu64 " connection(s), %" PRIu64 " request(s)", st.accepted,
                    st.requests);
    if (st.no_server > 0)
        gh_log_warn("%" PRIu64 " request(s) answered 503: no server of their upstream available",
                    st.no_server);
    log_protect_stats(&st);
    struct gh_tls_stats ts;
    gh_tls_get_stats(&ts);
    if (ts.handshakes > 0 || ts.failed > 0)
        gh_log_info("TLS: %" PRIu64 " handshake(s), %" PRIu64 " resumed, %" PRIu64 " failed",
                    ts.handshakes, ts.resumed, ts.failed);
    gh_cache_log_stats();
    gh_cache_disk_stop();
    gh_conf_unref(cfg);
    return code;
}

int
main(int argc, char **argv)
{
    struct source src = {NULL, NULL, "<embedded>"};
    int test_only = 0, signal_idx = -1;
    int code = parse_cli(argc, argv, &src, &test_only, &signal_idx);
    if (code < 0 && signal_idx >= 0)
        code = signal_instance(&src, signal_idx);
    else if (code < 0)
        code = test_only ? check_only(&src) : serve(&src);
    free(src.text);
    return code;
}
