/*
 * The registry of built-in applications and their libmicrohttpd daemons.
 * Each binds 127.0.0.1 on a port the kernel picks, so two gatehouse
 * processes (or a test next to a running appliance) never collide.
 */
#include "apps.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "../common/common.h"
#include "../web-ui/webui.h"
#include "apps_int.h"

const struct apps_hooks *apps__hooks;
uint64_t apps__started_ms;

struct app {
    const char *name;
    MHD_AccessHandlerCallback handler;
    MHD_RequestCompletedCallback done;
    unsigned threads; /* 0: one internal thread */
    int management; /* serves metrics too */
    struct MHD_Daemon *d;
    struct sockaddr_in addr;
};

static struct app apps[] = {
    {"status", apps__status_handler, NULL, 0, 0, NULL, {0}},
    {"management", apps__status_handler, NULL, 0, 1, NULL, {0}},
    /* Signature checks are CPU work: a small pool keeps one slow client
     * from holding up the others. */
    {"conference", apps__conference_handler, apps__conference_done, 4, 0, NULL, {0}},
    /* Password hashing takes a third of a second on purpose: a pool keeps
     * one sign-in from stalling the others. */
    {"admin", webui_handler, webui_done, 2, 0, NULL, {0}},
};

int apps_start(const struct apps_hooks *hooks)
{
    size_t i;

    apps__hooks = hooks;
    apps__started_ms = gh_now_ms();
    for (i = 0; i < GH_ARRAY_LEN(apps); i++) {
        struct app *a = &apps[i];
        const union MHD_DaemonInfo *info;
        struct sockaddr_in sa;

        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = 0;
        /* A pool size of 1 draws a warning: leave the option out then. */
        a->d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                                a->handler, &a->management, MHD_OPTION_SOCK_ADDR, &sa,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
                                MHD_OPTION_NOTIFY_COMPLETED, a->done, NULL,
                                a->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
                                a->threads, MHD_OPTION_END);
        if (a->d == NULL) {
            gh_log_err("application %s: cannot start", a->name);
            return -1;
        }
        info = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
        if (info == NULL || info->port == 0) {
            gh_log_err("application %s: no port", a->name);
            return -1;
        }
        a->addr = sa;
        a->addr.sin_port = htons(info->port);
        gh_log_info("application %s on 127.0.0.1:%u", a->name, (unsigned)info->port);
    }
    return 0;
}

int apps_resolve(const char *name, struct sockaddr_storage *ss, socklen_t *len)
{
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(apps); i++)
        if (strcmp(apps[i].name, name) == 0 && apps[i].d != NULL) {
            memset(ss, 0, sizeof(*ss));
            memcpy(ss, &apps[i].addr, sizeof(apps[i].addr));
            *len = sizeof(apps[i].addr);
            return 0;
        }
    return -1;
}

int apps_configure(const struct gh_conf *c, char *err, size_t errlen)
{
    return apps__conference_configure(c, err, errlen);
}

void apps_stop(void)
{
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(apps); i++)
        if (apps[i].d != NULL) {
            MHD_stop_daemon(apps[i].d);
            apps[i].d = NULL;
        }
    apps__conference_stop();
}
