/*
 * Access and security logs. Access lines are buffered per worker and
 * written whole (at 16 KiB or once a second), so logging costs no system
 * call per request. Security lines are JSON and written at once: they are
 * the record of a refusal and should survive a crash right after it.
 *
 * Access line fields, space-separated, in this order:
 *   time service client "METHOD path HTTP/1.x" status bytes_in bytes_out
 *   server total_ms upstream_ms reason
 * A field without a value is "-". Paths are truncated at 255 bytes and
 * bytes outside printable ASCII are escaped as \xHH.
 */
#include "proxy_int.h"

#include <stdio.h>
#include <string.h>

void proxy__log_flush(struct proxy_worker *w)
{
    if (w->loglen > 0) {
        gh_logfile_write(&proxy__access_log, w->logbuf, w->loglen);
        w->loglen = 0;
    }
    w->log_flushed = gh_now_ms();
}

/* Escapes what a log reader's terminal or parser could misread. */
static void esc(char *dst, size_t len, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (; *s && o + 5 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        } else {
            dst[o++] = (char)c;
        }
    }
    dst[o] = '\0';
}

void proxy__log_access(struct proxy_conn *c)
{
    struct proxy_worker *w = c->w;
    char ts[40], path[1100], line[1600], up[32];
    uint64_t now = gh_now_ms();
    int n;

    if (proxy__access_log.fd == -1)
        return;
    gh_time_rfc3339(ts, sizeof(ts));
    esc(path, sizeof(path), c->path[0] ? c->path : "-");
    if (c->t_up)
        snprintf(up, sizeof(up), "%llu", (unsigned long long)(now - c->t_up));
    else
        snprintf(up, sizeof(up), "-");
    n = snprintf(line, sizeof(line), "%s %s %s \"%s %s HTTP/1.%d\" %d %llu %llu %s %llu %s %s\n",
                 ts, c->svc->conf->name, c->peer, c->method[0] ? c->method : "-", path,
                 c->req.version == 10 ? 0 : 1, c->status, (unsigned long long)c->bytes_in,
                 (unsigned long long)c->bytes_out, c->srv ? c->srv->name : "-",
                 (unsigned long long)(now - c->t_start), up,
                 c->why != GH_REASON_NONE ? rules_reason_name(c->why) : "-");
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = (int)sizeof(line) - 1;
    if (w->loglen + (size_t)n > sizeof(w->logbuf))
        proxy__log_flush(w);
    memcpy(w->logbuf + w->loglen, line, (size_t)n);
    w->loglen += (size_t)n;
}

void proxy__log_security(struct proxy_conn *c, enum gh_reason why, int status)
{
    char ts[40], line[2048], path[600], sni[300], method[64];
    int n;

    atomic_fetch_add(&c->w->n_refused, 1);
    if (proxy__security_log.fd == -1)
        return;
    gh_time_rfc3339(ts, sizeof(ts));
    gh_json_escape(path, sizeof(path), c->path, strlen(c->path), 256);
    gh_json_escape(sni, sizeof(sni), c->sni, strlen(c->sni), 128);
    gh_json_escape(method, sizeof(method), c->method, strlen(c->method), 16);
    n = snprintf(line, sizeof(line),
                 "{\"time\":\"%s\",\"service\":\"%s\",\"client\":\"%s\",\"sni\":\"%s\","
                 "\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,\"reason\":\"%s\"}\n",
                 ts, c->svc->conf->name, c->peer, sni, method, path, status,
                 rules_reason_name(why));
    if (n > 0 && (size_t)n < sizeof(line))
        gh_logfile_write(&proxy__security_log, line, (size_t)n);
}
