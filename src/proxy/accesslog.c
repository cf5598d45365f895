/*
 * accesslog.c - access-log lines and their destination.
 */
#include "proxy/accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "http/h1_write.h"
#include "proxy/exchange.h"
#include "proxy/worker.h"

#define ALOG_CAP (64 * 1024) /* per-thread buffer, written at batch end or when full */
#define ALOG_LINE 4096       /* longest line; longer ones are cut */

static int alog_fd = -1; /* the destination: a stable number once set */

int
gh_alog_open(const struct gh_config *cfg)
{
    int fd = 2;
    if (cfg->access_log_on && cfg->access_log_path != NULL) {
        fd = gh_log_open(cfg->access_log_path);
        if (fd < 0) {
            gh_log_error("%s: cannot open access_log '%s': %s", cfg->access_log_at,
                         cfg->access_log_path, strerror(-fd));
            return fd;
        }
    }
    int rc = 0;
    if (alog_fd < 0) {
        int nfd = fd == 2 ? fcntl(2, F_DUPFD_CLOEXEC, 3) : fd;
        if (nfd == -1)
            rc = -errno;
        else
            __atomic_store_n(&alog_fd, nfd, __ATOMIC_RELEASE);
        return rc;
    }
    /* workers may be writing to alog_fd right now: replace what it refers to in one step */
    if (dup3(fd, alog_fd, O_CLOEXEC) == -1) {
        rc = -errno;
        gh_log_error("cannot switch the access log: %s", strerror(errno));
    }
    if (fd != 2)
        close(fd);
    return rc;
}

void
gh_alog_close(void)
{
    if (alog_fd >= 0)
        close(alog_fd);
    alog_fd = -1;
}

/* Access-log timestamp of the current second: "[26/Nov/2026:18:44:14 +0000]" (json=0) or
 * "2026-11-26T18:44:14Z" (json=1). Formatted once a second: localtime_r takes a lock. */
static const char *
log_time(struct gh_worker *w, int json)
{
    int64_t now = gh_loop_wall(w->loop);
    if (now != w->log_time_sec) {
        time_t t = (time_t)now;
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(w->log_time[0], sizeof(w->log_time[0]), "[%d/%b/%Y:%H:%M:%S %z]", &tm);
        gmtime_r(&t, &tm);
        strftime(w->log_time[1], sizeof(w->log_time[1]), "%Y-%m-%dT%H:%M:%SZ", &tm);
        w->log_time_sec = now;
    }
    return w->log_time[json ? 1 : 0];
}

void
gh_alog_flush(struct gh_worker *w)
{
    if (w->alog_len == 0)
        return;
    int fd = __atomic_load_n(&alog_fd, __ATOMIC_ACQUIRE);
    gh_write_all(fd >= 0 ? fd : 2, w->alog, w->alog_len);
    w->alog_len = 0;
}

static void
flush_hook(void *arg)
{
    gh_alog_flush(arg);
}

static void
alog_append(struct gh_worker *w, const char *line, size_t len)
{
    if (w->alog == NULL) {
        w->alog = malloc(ALOG_CAP);
        if (w->alog == NULL)
            return;
    }
    if (w->alog_len + len > ALOG_CAP)
        gh_alog_flush(w);
    if (len > ALOG_CAP)
        len = ALOG_CAP;
    memcpy(w->alog + w->alog_len, line, len);
    w->alog_len += (uint32_t)len;
    gh_loop_at_batch_end(w->loop, flush_hook, w);
}

/* Copy a slice into a fixed field, cut to fit, NUL-terminated. */
static void
copy_field(char *dst, size_t cap, const char *p, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, p, n);
    dst[n] = '\0';
}

void
gh_alog_capture(struct gh_exchange *ex, const struct gh_request *req)
{
    if (!ex->wc->cfg->access_log_on)
        return;
    struct gh_log_info *li = gh_freelist_get(&ex->w->log_fl);
    if (li == NULL)
        return;
    struct gh_wr w = {li->request, 0, sizeof(li->request) - 1, 0};
    size_t mlen = GH_MIN(req->method_len, 64);
    gh_wr_put(&w, req->method, mlen);
    GH_WR_LIT(&w, " ");
    /* room left for the target once " HTTP/1.x" is reserved */
    gh_wr_put(&w, req->target, GH_MIN(req->target_len, sizeof(li->request) - 1 - 10 - mlen));
    gh_wr_str(&w, req->version == 10 ? " HTTP/1.0" : " HTTP/1.1");
    li->request[w.len] = '\0';
    li->referer[0] = li->agent[0] = li->host[0] = '\0';
    for (uint32_t i = 0; i < req->n_fields; i++) {
        const struct gh_h1_header *h = &req->fields[i];
        if (h->name_len == 7 && gh_strncaseeq(h->name, "referer", 7) && li->referer[0] == '\0')
            copy_field(li->referer, sizeof(li->referer), h->value, h->value_len);
        else if (h->name_len == 10 && gh_strncaseeq(h->name, "user-agent", 10) &&
                 li->agent[0] == '\0')
            copy_field(li->agent, sizeof(li->agent), h->value, h->value_len);
    }
    if (req->host != NULL)
        copy_field(li->host, sizeof(li->host), req->host, req->host_len);
    ex->log = li;
}

/* Escape for a quoted field of the combined format or a JSON string. */
static void
wr_escaped(struct gh_wr *w, const char *s, int json)
{
    if (s == NULL || *s == '\0') {
        if (!json)
            GH_WR_LIT(w, "-");
        return;
    }
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x7f) {
            char esc[8];
            int n = json ? snprintf(esc, sizeof(esc), "\\u%04x", ch)
                         : snprintf(esc, sizeof(esc), "\\x%02X", ch);
            gh_wr_put(w, esc, (size_t)n);
        } else {
            gh_wr_put(w, s, 1);
        }
    }
}

/* What a line says. */
struct rec {
    const struct gh_client_addr *client;
    const struct gh_log_info *li;
    const char *upstream; /* NULL: none */
    uint16_t status;
    uint64_t bytes_out;
    uint64_t t_start, t_head, t_connect, t_first_byte;
};

static void
write_line(struct gh_worker *w, const struct gh_config *cfg, const struct rec *r)
{
    char line[ALOG_LINE];
    struct gh_wr wr = {line, 0, sizeof(line) - 1, 0};
    char ip[64];
    if (gh_client_ip_str(r->client, ip, sizeof(ip)) == 0)
        strcpy(ip, "-");
    const struct gh_log_info *li = r->li;
    uint64_t now = gh_loop_now(w->loop);
    if (cfg->access_log_format == GH_LOG_JSON) {
        GH_WR_LIT(&wr, "{\"time\":\"");
        gh_wr_str(&wr, log_time(w, 1));
        GH_WR_LIT(&wr, "\",\"remote_addr\":\"");
        gh_wr_str(&wr, ip);
        GH_WR_LIT(&wr, "\",\"request\":\"");
        wr_escaped(&wr, li ? li->request : NULL, 1);
        GH_WR_LIT(&wr, "\",\"host\":\"");
        wr_escaped(&wr, li ? li->host : NULL, 1);
        GH_WR_LIT(&wr, "\",\"status\":");
        gh_wr_u64(&wr, r->status);
        GH_WR_LIT(&wr, ",\"bytes_sent\":");
        gh_wr_u64(&wr, r->bytes_out);
        GH_WR_LIT(&wr, ",\"upstream\":\"");
        if (r->upstream != NULL)
            gh_wr_str(&wr, r->upstream);
        GH_WR_LIT(&wr, "\",\"user_agent\":\"");
        wr_escaped(&wr, li ? li->agent : NULL, 1);
        GH_WR_LIT(&wr, "\",\"referer\":\"");
        wr_escaped(&wr, li ? li->referer : NULL, 1);
        char tb[160];
        int n = snprintf(tb, sizeof(tb),
                         "\",\"t_headers_ms\":%lld,\"t_connect_ms\":%lld,\"t_first_byte_ms\":%lld,"
                         "\"t_total_ms\":%llu}\n",
                         (long long)(r->t_head - r->t_start),
                         r->t_connect ? (long long)(r->t_connect - r->t_start) : -1LL,
                         r->t_first_byte ? (long long)(r->t_first_byte - r->t_start) : -1LL,
                         (unsigned long long)(now - r->t_start));
        gh_wr_put(&wr, tb, (size_t)n);
    } else {
        gh_wr_str(&wr, ip);
        GH_WR_LIT(&wr, " - - ");
        gh_wr_str(&wr, log_time(w, 0));
        GH_WR_LIT(&wr, " \"");
        wr_escaped(&wr, li ? li->request : NULL, 0);
        GH_WR_LIT(&wr, "\" ");
        gh_wr_u64(&wr, r->status);
        GH_WR_LIT(&wr, " ");
        gh_wr_u64(&wr, r->bytes_out);
        GH_WR_LIT(&wr, " \"");
        wr_escaped(&wr, li ? li->referer : NULL, 0);
        GH_WR_LIT(&wr, "\" \"");
        wr_escaped(&wr, li ? li->agent : NULL, 0);
        GH_WR_LIT(&wr, "\"\n");
    }
    if (wr.overflow) {
        wr.len = wr.cap;
        line[wr.len++] = '\n';
    }
    alog_append(w, line, wr.len);
}

void
gh_alog_exchange(struct gh_exchange *ex)
{
    const struct gh_config *cfg = ex->wc->cfg;
    if (!cfg->access_log_on || ((ex->flags & GH_EX_CUT) && ex->status == 0))
        return;
    struct rec r = {
        ex->client, ex->log,       ex->up.ups != NULL ? gh_ups_server(&ex->up)->addr.text : NULL,
        ex->status, ex->bytes_out, ex->t_start,
        ex->t_head, ex->t_connect, ex->t_first_byte};
    write_line(ex->w, cfg, &r);
}

void
gh_alog_rejected(struct gh_worker *w, const struct gh_client_addr *client, int status,
                 const char *p, size_t n, uint64_t t_first, uint64_t bytes_out)
{
    const struct gh_config *cfg = w->cur->cfg;
    if (!cfg->access_log_on)
        return;
    struct gh_log_info li;
    size_t k = 0;
    while (p != NULL && k < n && k < 500 && p[k] != '\r' && p[k] != '\n')
        k++;
    if (p != NULL)
        memcpy(li.request, p, k);
    li.request[k] = '\0';
    li.referer[0] = li.agent[0] = li.host[0] = '\0';
    uint64_t now = gh_loop_now(w->loop);
    struct rec r = {client, &li, NULL, (uint16_t)status, bytes_out, t_first ? t_first : now,
                    now,    0,   0};
    write_line(w, cfg, &r);
}
