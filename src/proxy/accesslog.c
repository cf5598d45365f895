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
#include "proxy/vars.h"
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

/* "2026-11-26T18:44:14Z", formatted once a second. */
static const char *
log_time_iso(struct gh_worker *w)
{
    int64_t now = gh_loop_wall(w->loop);
    if (now != w->log_time_sec) {
        time_t t = (time_t)now;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(w->log_time, sizeof(w->log_time), "%Y-%m-%dT%H:%M:%SZ", &tm);
        w->log_time_sec = now;
    }
    return w->log_time;
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

/* combined: $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
 * "$http_referer"
 * "$http_user_agent", as nginx's */
#define LIT(s)                                                                                     \
    {                                                                                              \
        s, sizeof(s) - 1, GH_VAR_NONE                                                              \
    }
#define VAR(v)                                                                                     \
    {                                                                                              \
        NULL, 0, GH_VAR_##v                                                                        \
    }
static const struct gh_tmpl_part combined_parts[] = {
    VAR(REMOTE_ADDR),
    LIT(" - "),
    VAR(REMOTE_USER),
    LIT(" ["),
    VAR(TIME_LOCAL),
    LIT("] \""),
    VAR(REQUEST),
    LIT("\" "),
    VAR(STATUS),
    LIT(" "),
    VAR(BODY_BYTES_SENT),
    LIT(" \""),
    {"referer", 7, GH_VAR_HTTP_},
    LIT("\" \""),
    {"user-agent", 10, GH_VAR_HTTP_},
    LIT("\"\n"),
};
/* forward: $remote_addr $remote_user [$time_local] "$request" $status $proxy_verdict
 * $proxy_group $proxy_dest $body_bytes_sent $tunnel_bytes_sent $request_time "$http_user_agent":
 * who, as which group, went where, what the proxy made of it, and the bytes each way */
static const struct gh_tmpl_part forward_parts[] = {
    VAR(REMOTE_ADDR),
    LIT(" "),
    VAR(REMOTE_USER),
    LIT(" ["),
    VAR(TIME_LOCAL),
    LIT("] \""),
    VAR(REQUEST),
    LIT("\" "),
    VAR(STATUS),
    LIT(" "),
    VAR(PROXY_VERDICT),
    LIT(" "),
    VAR(PROXY_GROUP),
    LIT(" "),
    VAR(PROXY_DEST),
    LIT(" "),
    VAR(BODY_BYTES_SENT),
    LIT(" "),
    VAR(TUNNEL_BYTES_SENT),
    LIT(" "),
    VAR(REQUEST_TIME),
    LIT(" \""),
    {"user-agent", 10, GH_VAR_HTTP_},
    LIT("\"\n"),
};
#undef LIT
#undef VAR
static const struct gh_tmpl combined = {combined_parts, GH_ARRAY_LEN(combined_parts),
                                        GH_TMPL_REQ | GH_TMPL_VARS};
static const struct gh_tmpl forward = {forward_parts, GH_ARRAY_LEN(forward_parts),
                                       GH_TMPL_REQ | GH_TMPL_VARS};

/* A time of the exchange in ms from its start, -1 when it did not happen. */
static void
wr_ms(struct gh_wr *w, const char *key, uint64_t at, uint64_t start)
{
    gh_wr_str(w, key);
    if (at == 0) {
        GH_WR_LIT(w, "-1");
        return;
    }
    gh_wr_u64(w, at >= start ? at - start : 0);
}

/* The JSON line's keys for a forward proxy's request. */
static void
json_forward(struct gh_exchange *ex, struct gh_wr *w)
{
    GH_WR_LIT(w, ",\"remote_user\":\"");
    gh_vars_put(ex, GH_VAR_REMOTE_USER, NULL, 0, w, GH_ESC_JSON);
    GH_WR_LIT(w, "\",\"proxy_verdict\":\"");
    gh_vars_put(ex, GH_VAR_PROXY_VERDICT, NULL, 0, w, GH_ESC_JSON);
    GH_WR_LIT(w, "\",\"proxy_group\":\"");
    gh_vars_put(ex, GH_VAR_PROXY_GROUP, NULL, 0, w, GH_ESC_JSON);
    GH_WR_LIT(w, "\",\"proxy_dest\":\"");
    gh_vars_put(ex, GH_VAR_PROXY_DEST, NULL, 0, w, GH_ESC_JSON);
    GH_WR_LIT(w, "\",\"tunnel_bytes_sent\":");
    gh_wr_u64(w, ex->tunnel_up);
}

/* The built-in JSON line (keys as in the docs; values escaped for JSON, UTF-8 kept). */
static void
json_line(struct gh_exchange *ex, struct gh_wr *w)
{
    const struct gh_request *r = ex->req;
    GH_WR_LIT(w, "{\"time\":\"");
    gh_wr_str(w, log_time_iso(ex->w));
    GH_WR_LIT(w, "\",\"remote_addr\":\"");
    gh_vars_put(ex, GH_VAR_REMOTE_ADDR, NULL, 0, w, GH_ESC_JSON);
    GH_WR_LIT(w, "\",\"request\":\"");
    gh_vars_put(ex, GH_VAR_REQUEST, NULL, 0, w, GH_ESC_JSON);
    GH_WR_LIT(w, "\",\"host\":\"");
    if (r != NULL && r->host != NULL)
        gh_vars_escape(w, r->host, r->host_len, GH_ESC_JSON);
    GH_WR_LIT(w, "\",\"status\":");
    gh_wr_u64(w, ex->status);
    GH_WR_LIT(w, ",\"bytes_sent\":");
    gh_wr_u64(w, ex->bytes_out);
    GH_WR_LIT(w, ",\"body_bytes_sent\":");
    gh_vars_put(ex, GH_VAR_BODY_BYTES_SENT, NULL, 0, w, GH_ESC_JSON);
    GH_WR_LIT(w, ",\"upstream\":\"");
    if (ex->up.ups != NULL)
        gh_wr_str(w, gh_ups_server(&ex->up)->addr.text);
    GH_WR_LIT(w, "\",\"user_agent\":\"");
    gh_vars_put(ex, GH_VAR_HTTP_, "user-agent", 10, w, GH_ESC_JSON);
    GH_WR_LIT(w, "\",\"referer\":\"");
    gh_vars_put(ex, GH_VAR_HTTP_, "referer", 7, w, GH_ESC_JSON);
    GH_WR_LIT(w, "\"");
    if (ex->fwd_verdict != GH_FWD_NONE)
        json_forward(ex, w);
    GH_WR_LIT(w, ",\"request_id\":\"");
    gh_vars_put(ex, GH_VAR_REQUEST_ID, NULL, 0, w, GH_ESC_JSON);
    GH_WR_LIT(w, "\"");
    wr_ms(w, ",\"t_headers_ms\":", ex->t_head, ex->t_start);
    wr_ms(w, ",\"t_connect_ms\":", ex->t_connect, ex->t_start);
    wr_ms(w, ",\"t_first_byte_ms\":", ex->t_first_byte, ex->t_start);
    wr_ms(w, ",\"t_total_ms\":", gh_loop_now(ex->w->loop), ex->t_start);
    GH_WR_LIT(w, "}\n");
}

static void
render(struct gh_exchange *ex, struct gh_wr *w)
{
    const struct gh_config *cfg = ex->wc->cfg;
    if (cfg->access_log_format == GH_LOG_JSON) {
        json_line(ex, w);
    } else if (cfg->access_log_format == GH_LOG_CUSTOM) {
        static const enum gh_vars_esc esc[] = {[GH_LOG_ESC_DEFAULT] = GH_ESC_LOG,
                                               [GH_LOG_ESC_JSON] = GH_ESC_JSON,
                                               [GH_LOG_ESC_NONE] = GH_ESC_NONE};
        gh_vars_expand(cfg->access_log_tmpl, ex, w, esc[cfg->access_log_escape], NULL);
        GH_WR_LIT(w, "\n");
    } else {
        gh_vars_expand(cfg->access_log_format == GH_LOG_FORWARD ? &forward : &combined, ex, w,
                       GH_ESC_LOG, NULL);
    }
}

static void
write_line(struct gh_exchange *ex)
{
    char line[ALOG_LINE];
    struct gh_wr w = {line, 0, sizeof(line) - 1, 0};
    render(ex, &w);
    if (gh_unlikely(w.overflow)) {
        /* again with shorter values, so the line keeps its shape (a JSON line stays JSON) */
        static const size_t limits[] = {1024, 256, 64, 16};
        for (size_t i = 0; i < GH_ARRAY_LEN(limits) && w.overflow; i++) {
            gh_vars_limit_values(limits[i]);
            w = (struct gh_wr){line, 0, sizeof(line) - 1, 0};
            render(ex, &w);
        }
        gh_vars_limit_values(SIZE_MAX);
    }
    if (w.overflow) /* a format with very many values: cut where the writer stopped, still a line */
        line[w.len++] = '\n';
    alog_append(ex->w, line, w.len);
}

void
gh_alog_exchange(struct gh_exchange *ex)
{
    if (!ex->wc->cfg->access_log_on)
        return;
    if ((ex->flags & GH_EX_CUT) && ex->status == 0)
        ex->status = 444; /* cut at the drain deadline with nothing sent, as nginx's 444 */
    write_line(ex);
}

void
gh_alog_rejected(struct gh_worker *w, const struct gh_client_addr *client,
                 const struct gh_listen_conf *lc, int status, const char *p, size_t n,
                 uint64_t t_first, uint64_t bytes_out, uint32_t head_bytes)
{
    if (!w->cur->cfg->access_log_on)
        return;
    /* no request came of it: an exchange of its own for the line, with the raw first line */
    struct gh_exchange ex;
    memset(&ex, 0, sizeof(ex));
    ex.w = w;
    ex.wc = w->cur;
    ex.client = client;
    ex.peer = client;
    ex.listener = lc;
    size_t k = 0;
    while (p != NULL && k < n && k < 500 && p[k] != '\r' && p[k] != '\n')
        k++;
    ex.raw_line = p;
    ex.raw_line_len = (uint32_t)k;
    ex.status = (uint16_t)status;
    ex.bytes_out = bytes_out;
    ex.head_bytes = head_bytes;
    ex.t_head = gh_loop_now(w->loop);
    ex.t_start = t_first ? t_first : ex.t_head;
    write_line(&ex);
}

void
gh_alog_tunnel(struct gh_worker *w, const struct gh_alog_tunnel *t)
{
    if (!w->cur->cfg->access_log_on)
        return;
    struct gh_exchange ex;
    memset(&ex, 0, sizeof(ex));
    ex.w = w;
    ex.wc = w->cur;
    ex.client = t->client;
    ex.peer = t->client;
    ex.listener = t->listener;
    ex.raw_line = t->line;
    ex.raw_line_len = (uint32_t)t->line_len;
    ex.user = t->user;
    ex.user_len = t->user != NULL ? (uint32_t)strlen(t->user) : 0;
    ex.fwd_group = t->group;
    ex.fwd_verdict = t->verdict;
    ex.status = (uint16_t)t->status;
    ex.bytes_out = t->bytes_down;
    ex.tunnel_up = t->bytes_up;
    ex.t_head = ex.t_start = t->t_start;
    write_line(&ex);
}
