/*
 * apps — built-in applications. Each runs on libmicrohttpd bound to a
 * loopback socket on an ephemeral port; a service whose target is "app NAME"
 * forwards to it like to any real server, so there is one TLS stack, one
 * policy and one log format. apps never include proxy: what they show of
 * the process comes through the hooks main hands them.
 *
 *   status      GET /healthcheck.html (probes), GET / (a status page)
 *   management  the same, plus GET /metrics (Prometheus) and
 *               GET /api/v1/stats (JSON); for a management listener only
 *   conference  participant authentication: the SAML 2.0 service provider
 *               (metadata, login, assertion consumer, sessions); see
 *               apps/conference.c for its paths
 *   conference-admin  the same application with its admin API, on
 *               state-dir/run/conference-admin.sock only: no service can
 *               name it, so nothing from a listener reaches the admin API
 */
#ifndef GH_APPS_APPS_H
#define GH_APPS_APPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../common/conf.h"

struct apps_status {
    int healthy; /* every worker's loop turned recently, not draining */
    int workers, healthy_workers;
    uint64_t conns_active, conns_total, requests, refused, generation;
};

struct apps_hooks {
    void (*status)(struct apps_status *st);
    /* Metrics as Prometheus text (json 0) or JSON (json 1); malloc'd. */
    char *(*metrics)(int json, size_t *len);
    /* A refusal by an application, for the security log. */
    void (*security)(const char *service, const char *client, const char *host,
                     const char *method, const char *path, int status, const char *reason,
                     const char *detail);
};

/* apps.c */
/* Starts every built-in application. 0 or -1 (logged). */
int apps_start(const struct apps_hooks *hooks);
/* At start, before apps_start: the state folder's stores (meetings, API
 * tokens) and where the sockets go. 0, or -1 with err. */
int apps_open(const struct gh_conf *c, char *err, size_t errlen);
/* A configuration for the applications in two halves, so that main can
 * prepare every module before it changes any: prepare builds what c needs
 * (the SAML service provider) and changes nothing that runs (NULL with
 * err); commit installs it and cannot fail; abort forgets it. c must
 * outlive the commit (it lives with the proxy generation). */
struct apps_next;
struct apps_next *apps_prepare(const struct gh_conf *c, char *err, size_t errlen);
void apps_commit(struct apps_next *n);
void apps_abort(struct apps_next *n);
/* The local address of a running application (a unix socket); -1 if unknown. */
int apps_resolve(const char *name, struct sockaddr_storage *ss, socklen_t *len);
void apps_stop(void);

/* api_tokens.c: the conference admin API's tokens (gatehouse meeting token). */
#define APPS_SCOPE_MEETINGS_READ 1u
#define APPS_SCOPE_MEETINGS_WRITE 2u
#define APPS_SCOPE_PIN_RESET 4u
#define APPS_SCOPE_DEVICES 8u
#define APPS_SCOPE_ALL 15u
/* "meetings-read,devices" or "all" into a scope set: 0, or -1. */
int apps_scopes_parse(const char *text, unsigned *out);
/* A new token NAME with scopes; token receives it (64 hex digits, shown
 * once: only its digest is kept). 0, or -1 with err. */
int apps_api_token_add(const char *state_dir, const char *name, const char *scopes,
                       char token[65], char *err, size_t errlen);
int apps_api_token_remove(const char *state_dir, const char *name, char *err, size_t errlen);
int apps_api_token_list(const char *state_dir,
                        void (*fn)(const char *name, const char *scopes, void *arg), void *arg,
                        char *err, size_t errlen);

#endif
