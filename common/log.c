/*
 * Error log and whole-line log files. The error log is a single descriptor
 * (stderr by default); reopening for log rotation dup2()s the new file onto
 * it, so a thread writing concurrently writes to either the old or the new
 * file, never to a closed descriptor.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int gh_log_level = GH_LOG_INFO;
static int log_fd = 2;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int gh_log_open(const char *path)
{
    int fd;

    if (path == NULL || strcmp(path, "stderr") == 0)
        return 0;
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd == -1)
        return -1;
    if (log_fd == 2) {
        log_fd = fd;
        return 0;
    }
    if (dup2(fd, log_fd) == -1) {
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

void gh_log(int level, int with_errno, const char *fmt, ...)
{
    char line[2048], ts[40];
    int saved = errno, n, m;
    va_list ap;

    if (level > gh_log_level)
        return;
    gh_time_rfc3339(ts, sizeof(ts));
    n = snprintf(line, sizeof(line), "%s [%s] ", ts, level_names[level]);
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += m;
    if ((size_t)n >= sizeof(line) - 64)
        n = (int)sizeof(line) - 64;
    if (with_errno)
        n += snprintf(line + n, sizeof(line) - (size_t)n, ": %s", strerror(saved));
    line[n++] = '\n';
    if (write(log_fd, line, (size_t)n) == -1) {
        /* Nowhere left to report a failing error log. */
    }
    errno = saved;
}

void gh_fatal(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gh_log_err("%s", msg);
    exit(1);
}

int gh_logfile_open(struct gh_logfile *lf, const char *path)
{
    lf->fd = -1;
    lf->path = NULL;
    if (path == NULL || strcmp(path, "off") == 0)
        return 0;
    if (strcmp(path, "stderr") == 0) {
        lf->fd = 2;
        return 0;
    }
    lf->path = gh_strdup(path);
    lf->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (lf->fd == -1) {
        free(lf->path);
        lf->path = NULL;
        return -1;
    }
    return 0;
}

int gh_logfile_reopen(struct gh_logfile *lf)
{
    int fd;

    if (lf->path == NULL)
        return 0;
    fd = open(lf->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd == -1)
        return -1;
    if (dup2(fd, lf->fd) == -1) {
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

void gh_logfile_write(struct gh_logfile *lf, const char *line, size_t len)
{
    if (lf->fd == -1)
        return;
    if (write(lf->fd, line, len) == -1) {
        /* A full disk must not stop the data plane; the error log says so once. */
        static _Atomic int warned;
        if (atomic_exchange(&warned, 1) == 0)
            gh_log_warn_errno("log write failed");
    }
}

void gh_logfile_close(struct gh_logfile *lf)
{
    if (lf->fd > 2)
        close(lf->fd);
    lf->fd = -1;
    free(lf->path);
    lf->path = NULL;
}
