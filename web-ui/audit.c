/*
 * The audit log: one JSON object per line, appended with O_APPEND (a line
 * is one write, so lines from several threads never interleave), also sent
 * to syslog (LOG_AUTHPRIV). Secrets never reach it: callers pass objects
 * and before/after values with passwords and keys already left out.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "../common/common.h"
#include "webui.h"

static int fd = -1;

int webui_audit_open(const char *path)
{
    if (fd != -1)
        close(fd);
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    openlog("gatehouse-admin", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
    return fd == -1 ? -1 : 0;
}

void webui_audit_close(void)
{
    if (fd != -1)
        close(fd);
    fd = -1;
    closelog();
}

void webui_audit(const char *user, const char *role, const char *ip, const char *action,
                 const char *object, const char *before, const char *after, const char *result)
{
    webui_audit_why(user, role, ip, action, object, before, after, result, NULL);
}

void webui_audit_why(const char *user, const char *role, const char *ip, const char *action,
                     const char *object, const char *before, const char *after,
                     const char *result, const char *why)
{
    char ts[40], u[200], r[64], i[100], a[200], o[600], b[1200], f[1200], res[200], w[1600];
    char line[6144];
    int n;

    gh_time_rfc3339(ts, sizeof(ts));
    gh_json_put(u, sizeof(u), user, strlen(user), 64);
    gh_json_put(r, sizeof(r), role, strlen(role), 16);
    gh_json_put(i, sizeof(i), ip, strlen(ip), 46);
    gh_json_put(a, sizeof(a), action, strlen(action), 64);
    gh_json_put(o, sizeof(o), object, strlen(object), 200);
    gh_json_put(b, sizeof(b), before, strlen(before), 400);
    gh_json_put(f, sizeof(f), after, strlen(after), 400);
    gh_json_put(res, sizeof(res), result, strlen(result), 64);
    if (why != NULL)
        gh_json_put(w, sizeof(w), why, strlen(why), 500);
    n = snprintf(line, sizeof(line),
                 "{\"time\":\"%s\",\"user\":\"%s\",\"role\":\"%s\",\"ip\":\"%s\",\"action\":\"%s\","
                 "\"object\":\"%s\",\"before\":\"%s\",\"after\":\"%s\",\"result\":\"%s\"%s%s%s}\n",
                 ts, u, r, i, a, o, b, f, res, why ? ",\"reason\":\"" : "", why ? w : "",
                 why ? "\"" : "");
    if (n <= 0 || (size_t)n >= sizeof(line))
        return;
    if (fd != -1 && write(fd, line, (size_t)n) != n)
        gh_log_warn("audit log write failed");
    syslog(LOG_NOTICE, "%.*s", n - 1, line);
}
