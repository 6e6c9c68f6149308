/*
 * Access and security logs. Access lines are buffered per worker and
 * written whole (at 16 KiB or once a second), so logging costs no system
 * call per request. Security lines are JSON and written at once: they are
 * the record of a refusal and should survive a crash right after it.
 *
 * Access line fields, space-separated, in this order:
 *   time service client "METHOD path HTTP/1.x" status bytes_in bytes_out
 *   server total_ms upstream_ms reason
 * A Layer-4 connection (mode tcp) writes one line when it ends, with
 * "TCP name L4" (or "TLS name L4" for tls passthrough; name the TLS server
 * name or "-") and status 0.
 * A field without a value is "-". Paths are truncated at 255 bytes and
 * bytes outside printable ASCII are escaped as \xHH.
 */
#include "proxy_int.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <netinet/in.h>
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

void proxy__log_append(struct proxy_worker *w, const char *line, int n, size_t cap)
{
    if (n < 0)
        return;
    if ((size_t)n >= cap)
        n = (int)cap - 1; /* snprintf cut it: the line keeps what fitted */
    if (w->loglen + (size_t)n > sizeof(w->logbuf))
        proxy__log_flush(w);
    memcpy(w->logbuf + w->loglen, line, (size_t)n);
    w->loglen += (size_t)n;
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

static void access_line(struct proxy_conn *c, uint64_t now)
{
    struct proxy_worker *w = c->w;
    char ts[40], path[1100], line[1700], up[32], reason[80];
    int n;

    if (proxy__access_log.fd == -1)
        return;
    gh_time_rfc3339(ts, sizeof(ts));
    esc(path, sizeof(path), c->path[0] ? c->path : "-");
    if (c->t_up)
        snprintf(up, sizeof(up), "%llu", (unsigned long long)(now - c->t_up));
    else
        snprintf(up, sizeof(up), "-");
    if (c->why == GH_REASON_RULE && c->rule_id != NULL)
        snprintf(reason, sizeof(reason), "rule:%.60s", c->rule_id);
    else
        snprintf(reason, sizeof(reason), "%s",
                 c->why != GH_REASON_NONE ? gh_reason_name(c->why) : "-");
    n = snprintf(line, sizeof(line), "%s %s %s \"%s %s %s\" %d %llu %llu %s %llu %s %s\n",
                 ts, c->svc->conf->name, c->client, c->method[0] ? c->method : "-", path,
                 c->svc->mode == PROXY_MODE_TCP ? "L4" : c->req.version == 10 ? "HTTP/1.0" : "HTTP/1.1",
                 c->status, (unsigned long long)c->bytes_in,
                 (unsigned long long)c->bytes_out, c->srv ? c->srv->name : "-",
                 (unsigned long long)(now - c->t_start), up, reason);
    proxy__log_append(w, line, n, sizeof(line));
}

void proxy__log_access(struct proxy_conn *c)
{
    uint64_t now = c->w->now_ms;

    /* Every finished request passes here once: the metrics count it too. */
    proxy__stats_request(c->svc->st, c->srv ? c->srv->st : NULL, c->status, c->bytes_in,
                         c->bytes_out, now - c->t_start);
    access_line(c, now);
}

void proxy__log_tunnel(struct proxy_conn *c)
{
    access_line(c, c->w->now_ms);
}

/* One JSON object per line; fields in this order: time, service, client,
 * sni, host, method, path, status, reason, action, and suppressed when
 * positive (failed handshakes whose own lines the rate limit dropped). */
static void security_line(const char *service, const char *client, const char *sni_in,
                          const char *host_in, const char *method_in, const char *path_in,
                          int status, const char *reason, const char *detail, const char *action,
                          unsigned long long suppressed)
{
    char more[48] = "";
    char ts[40], line[2400], path[600], sni[300], host[300], method[64], det[700];
    int n;

    if (proxy__security_log.fd == -1)
        return;
    gh_time_rfc3339(ts, sizeof(ts));
    gh_json_put(path, sizeof(path), path_in, strlen(path_in), 256);
    gh_json_put(sni, sizeof(sni), sni_in, strlen(sni_in), 128);
    gh_json_put(host, sizeof(host), host_in, strlen(host_in), 128);
    gh_json_put(method, sizeof(method), method_in, strlen(method_in), 16);
    gh_json_put(det, sizeof(det), detail, strlen(detail), 160);
    if (suppressed > 0)
        snprintf(more, sizeof(more), ",\"suppressed\":%llu", suppressed);
    n = snprintf(line, sizeof(line),
                 "{\"time\":\"%s\",\"service\":\"%s\",\"client\":\"%s\",\"sni\":\"%s\","
                 "\"host\":\"%s\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,"
                 "\"reason\":\"%s%s%s\",\"action\":\"%s\"%s}\n",
                 ts, service, client, sni, host, method, path, status, reason,
                 det[0] ? ":" : "", det, action, more);
    if (n > 0 && (size_t)n < sizeof(line))
        gh_logfile_write(&proxy__security_log, line, (size_t)n);
}

void proxy__log_security(struct proxy_conn *c, enum gh_reason why, int status)
{
    atomic_fetch_add(&c->w->n_refused, 1);
    if ((unsigned)why < GH_REASON_MAX)
        atomic_fetch_add(&c->svc->st->refused[why], 1);
    security_line(c->svc->conf->name, c->client, c->sni, c->host, c->method, c->path, status,
                  gh_reason_name(why), why == GH_REASON_RULE && c->rule_id ? c->rule_id : "",
                  status == 0 ? "close" : status < 400 ? "redirect" : "refuse", 0);
}

/* Refusals by the built-in applications, counted by application and by
 * reason (the part before ':'): a fixed table, the last row catching what
 * does not fit, since reasons come from code, not from clients. */
#define APP_REFUSALS 64
static struct {
    char app[32], reason[48];
    unsigned long long n;
} app_refusals[APP_REFUSALS];
static size_t napp_refusals;
static pthread_mutex_t app_mu = PTHREAD_MUTEX_INITIALIZER;

static void count_app_refusal(const char *app, const char *reason)
{
    size_t i, len = strcspn(reason, ":");

    pthread_mutex_lock(&app_mu);
    for (i = 0; i < napp_refusals; i++)
        if (strcmp(app_refusals[i].app, app) == 0 &&
            strncmp(app_refusals[i].reason, reason, len) == 0 &&
            app_refusals[i].reason[len] == '\0')
            break;
    if (i == napp_refusals && napp_refusals < APP_REFUSALS) {
        gh_strlcpy(app_refusals[i].app, app, sizeof(app_refusals[i].app));
        if (i == APP_REFUSALS - 1)
            gh_strlcpy(app_refusals[i].reason, "other", sizeof(app_refusals[i].reason));
        else
            snprintf(app_refusals[i].reason, sizeof(app_refusals[i].reason), "%.*s", (int)len,
                     reason);
        napp_refusals++;
    } else if (i == napp_refusals) {
        i = APP_REFUSALS - 1;
    }
    app_refusals[i].n++;
    pthread_mutex_unlock(&app_mu);
}

void proxy__app_refusals_prometheus(struct gh_sbuf *o)
{
    size_t i;

    gh_sbuf_printf(o, "# HELP gatehouse_app_refusals_total Requests a built-in application "
                      "refused, by reason (as in the security log).\n"
                      "# TYPE gatehouse_app_refusals_total counter\n");
    pthread_mutex_lock(&app_mu);
    for (i = 0; i < napp_refusals; i++)
        gh_sbuf_printf(o, "gatehouse_app_refusals_total{app=\"%s\",reason=\"%s\"} %llu\n",
                       app_refusals[i].app, app_refusals[i].reason, app_refusals[i].n);
    pthread_mutex_unlock(&app_mu);
}

void proxy_log_security_app(const char *service, const char *client, const char *host,
                            const char *method, const char *path, int status, const char *reason,
                            const char *detail)
{
    if (status >= 400)
        count_app_refusal(service, reason);
    security_line(service, client, "", host, method, path, status, reason, detail,
                  status < 400 ? "redirect" : "refuse", 0);
}

void proxy__log_flagged(struct proxy_conn *c, const char *rule_id)
{
    security_line(c->svc->conf->name, c->client, c->sni, c->host, c->method, c->path, 0, "rule",
                  rule_id, "log", 0);
}

void proxy__log_security_accept(struct proxy_service *svc, const struct sockaddr_storage *ss,
                                enum gh_reason why)
{
    char ip[64] = "?";

    atomic_fetch_add(&svc->st->refused[why], 1);
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)ss)->sin_addr, ip,
                  sizeof(ip));
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr, ip,
                  sizeof(ip));
    security_line(svc->conf->name, ip, "", "", "", "", 0, gh_reason_name(why), "", "close",
                  0);
}

void proxy__log_security_tls(const char *service, const char *client, const char *sni,
                             const char *word, unsigned long long suppressed)
{
    security_line(service, client, sni, "", "", "", 0, "tls", word, "close", suppressed);
}
