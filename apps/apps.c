/*
 * The registry of built-in applications and their libmicrohttpd daemons.
 * Each listens on a unix socket in state-dir/run/ (the folder 0700, the
 * socket 0600), reached only through gatehouse's own listeners: no other
 * local user can talk to an application directly, around the TLS, the
 * firewall and the X-Forwarded-For the proxy vouches for.
 */
#include "apps.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/common.h"
#include "../saml/saml.h"
#include "../web-ui/webui.h"
#include "apps_int.h"

const struct apps_hooks *apps__hooks;
uint64_t apps__started_ms;

struct app {
    const char *name;
    MHD_AccessHandlerCallback handler;
    MHD_RequestCompletedCallback done;
    unsigned threads; /* 0: one internal thread */
    /* The handler's cls: status apps, 1 when they serve metrics too; the
     * conference, 1 on the admin socket. */
    int flag;
    int local_only; /* no service may name it (apps_resolve does not know it) */
    struct MHD_Daemon *d;
    struct sockaddr_un addr;
};

static char run_dir[sizeof(((struct sockaddr_un *)0)->sun_path)];

static struct app apps[] = {
    {"status", apps__status_handler, NULL, 0, 0, 0, NULL, {0, {0}}},
    {"management", apps__status_handler, NULL, 0, 1, 0, NULL, {0, {0}}},
    /* Signature checks are CPU work: a small pool keeps one slow client
     * from holding up the others. */
    {"conference", apps__conference_handler, apps__conference_done, 4, 0, 0, NULL, {0, {0}}},
    /* The conference admin API: for local callers (call control, scripts)
     * with a scoped token, never behind a listener. */
    {"conference-admin", apps__conference_handler, apps__conference_done, 2, 1, 1, NULL,
     {0, {0}}},
    /* Password hashing takes a third of a second on purpose: a pool keeps
     * one sign-in from stalling the others. */
    {"admin", webui_handler, webui_done, 2, 0, 0, NULL, {0, {0}}},
};

/* A listening unix socket at dir/name.sock, 0600; -1 logged. */
static int listen_unix(const char *name, struct sockaddr_un *sa)
{
    int fd;

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if ((size_t)snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s.sock", run_dir, name) >=
        sizeof(sa->sun_path)) {
        gh_log_err("application %s: %s/%s.sock is longer than a socket path may be (%zu); "
                   "choose a shorter state-dir", name, run_dir, name, sizeof(sa->sun_path) - 1);
        return -1;
    }
    unlink(sa->sun_path); /* left by a process that was killed */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1 || bind(fd, (struct sockaddr *)sa, sizeof(*sa)) == -1 ||
        chmod(sa->sun_path, 0600) == -1 || listen(fd, 1024) == -1) {
        gh_log_err("application %s: %s: %s", name, sa->sun_path, strerror(errno));
        if (fd != -1)
            close(fd);
        return -1;
    }
    return fd;
}

int apps_start(const struct apps_hooks *hooks)
{
    struct stat st;
    size_t i;

    apps__hooks = hooks;
    apps__started_ms = gh_now_ms();
    if (gh_mkdir_p(run_dir, 0700) == -1 || chmod(run_dir, 0700) == -1 ||
        stat(run_dir, &st) == -1 || st.st_uid != geteuid()) {
        gh_log_err("applications: %s: not a folder of ours (%s)", run_dir, strerror(errno));
        return -1;
    }
    for (i = 0; i < GH_ARRAY_LEN(apps); i++) {
        struct app *a = &apps[i];
        int fd = listen_unix(a->name, &a->addr);

        if (fd == -1)
            return -1;
        /* A pool size of 1 draws a warning: leave the option out then. */
        a->d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                                a->handler, &a->flag, MHD_OPTION_LISTEN_SOCKET, fd,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
                                MHD_OPTION_NOTIFY_COMPLETED, a->done, NULL,
                                a->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
                                a->threads, MHD_OPTION_END);
        if (a->d == NULL) {
            gh_log_err("application %s: cannot start", a->name);
            close(fd);
            return -1;
        }
        gh_log_info("application %s on %s", a->name, a->addr.sun_path);
    }
    return 0;
}

int apps_resolve(const char *name, struct sockaddr_storage *ss, socklen_t *len)
{
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(apps); i++)
        if (strcmp(apps[i].name, name) == 0 && apps[i].d != NULL && !apps[i].local_only) {
            memset(ss, 0, sizeof(*ss));
            memcpy(ss, &apps[i].addr, sizeof(apps[i].addr));
            *len = sizeof(apps[i].addr);
            return 0;
        }
    return -1;
}

struct apps_next {
    const struct gh_conf *c;
    struct saml_sp *sp;
    char *warnings; /* logged when committed */
};

struct apps_next *apps_prepare(const struct gh_conf *c, char *err, size_t errlen)
{
    struct apps_next *n;
    struct saml_sp *sp = apps__conference_prepare(c, err, errlen);

    if (sp == NULL)
        return NULL;
    n = gh_calloc(1, sizeof(*n));
    n->c = c;
    n->sp = sp;
    n->warnings = apps__meetings_room_warnings(c);
    return n;
}

void apps_commit(struct apps_next *n)
{
    char *line, *save = NULL;

    apps__meetings_commit(n->c);
    apps__conference_commit(n->c, n->sp); /* takes the SP */
    for (line = n->warnings ? strtok_r(n->warnings, "\n", &save) : NULL; line != NULL;
         line = strtok_r(NULL, "\n", &save))
        gh_log_warn("%s", line);
    free(n->warnings);
    free(n);
}

void apps_abort(struct apps_next *n)
{
    if (n == NULL)
        return;
    saml_sp_unref(n->sp);
    free(n->warnings);
    free(n);
}

int apps_open(const struct gh_conf *c, char *err, size_t errlen)
{
    if (run_dir[0] == '\0') /* where the sockets are is fixed at start */
        snprintf(run_dir, sizeof(run_dir), "%.*s/run", (int)sizeof(run_dir) - 5, c->state_dir);
    return apps__meetings_open(c, err, errlen);
}

void apps_stop(void)
{
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(apps); i++)
        if (apps[i].d != NULL) {
            MHD_stop_daemon(apps[i].d);
            apps[i].d = NULL;
            unlink(apps[i].addr.sun_path);
        }
    apps__conference_stop();
}
