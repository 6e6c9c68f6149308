/*
 * web-ui — the admin application: users and roles, password hashing,
 * sessions, CSRF, lockout, the audit log, config write-back, and the pages
 * and JSON API under /api/v1 that administrators and operators use. It runs
 * like every built-in application behind gatehouse's own TLS listener
 * (app admin); what it needs of the running process (metrics, validation
 * of a config, reload) comes through the hooks main hands it, so web-ui
 * never includes proxy.
 */
#ifndef GH_WEBUI_WEBUI_H
#define GH_WEBUI_WEBUI_H

#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "../common/conf.h"

/* Roles, in increasing power; checked in one place (webui_allowed). */
enum webui_role { WEBUI_READ_ONLY, WEBUI_OPERATOR, WEBUI_ADMIN, WEBUI_USER_ADMIN };

/* What an action needs. */
enum webui_action {
    WEBUI_VIEW,          /* pages, GET API */
    WEBUI_SERVER_STATE,  /* enable, disable, drain a real server */
    WEBUI_CONFIG_WRITE,  /* change the configuration */
    WEBUI_USERS,         /* manage users and sessions */
};
int webui_allowed(enum webui_role role, enum webui_action a);
const char *webui_role_name(enum webui_role r);
int webui_role_parse(const char *s, enum webui_role *r);

/* app.c: the HTTP side. */
enum webui_apply_result {
    WEBUI_APPLIED,           /* written and running */
    WEBUI_APPLY_REFUSED,     /* the text does not parse or a module could not prepare it */
    WEBUI_APPLY_NOT_WRITTEN, /* prepared, but write failed: nothing changed */
};
struct webui_hooks {
    /* Metrics as Prometheus text (json 0) or JSON (json 1); malloc'd. */
    char *(*metrics)(int json, size_t *len);
    /* Makes text the running configuration in one step: parsed once,
     * every module prepared from that one model, then write(ctx) (the
     * history and the file), then every module committed. Anything that
     * fails before the commit leaves the file and the running state as
     * they were; err says why. */
    enum webui_apply_result (*apply)(const char *text, size_t len,
                                     int (*write)(void *ctx, char *err, size_t errlen),
                                     void *ctx, char *err, size_t errlen);
    const char *conf_path; /* NULL: the embedded default, which cannot be edited */
    /* The cluster's appliances and versions as JSON (malloc'd), or NULL. */
    char *(*cluster)(size_t *len);
};
/* Held by anyone else who writes the configuration file (the cluster's
 * versions): an admin change checks If-Match and writes under it, so it
 * never writes over a version that came in between. */
void webui_file_lock(void);
void webui_file_unlock(void);
/* The version of a configuration text (16 hex digits of its SHA-256), as
 * the API's ETags and the history name it. */
void webui_version(const char *text, size_t len, char out[17]);
/* What runs: the version of the running configuration and, after a
 * reload that was refused, the version it tried and why (NULLs: the
 * last reload succeeded). Shown by the UI beside the file's version. */
void webui_note_running(const char *running, const char *failed, const char *why);
/* At each reload: the parts of the config the admin application follows
 * live (the session and lockout policy). */
void webui_reconfigure(const struct gh_conf *c);
int webui_configure(const struct webui_hooks *h, const struct gh_conf *c, char *err,
                    size_t errlen);
void webui_stop(void);
enum MHD_Result webui_handler(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **con_cls);
void webui_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                enum MHD_RequestTerminationCode toe);

/* password.c */
/* PBKDF2-HMAC-SHA256 (OpenSSL 3 EVP_KDF), 600,000 iterations, 16-byte
 * random salt, stored as "pbkdf2-sha256$600000$<salt hex>$<hash hex>". */
#define WEBUI_PBKDF2_ITER 600000
int webui_hash_password(const char *password, char *out, size_t outlen);
/* 1 when password matches stored (constant-time compare), 0 otherwise. */
int webui_check_password(const char *password, const char *stored);
/* At least 12 bytes, not all one class of character: 0, or -1 with why. */
int webui_password_ok(const char *password, const char **why);

/* users.c: the user store, SQLite in state-dir/admin/admin.db. */
struct webui_users;
struct webui_user {
    char name[64];
    enum webui_role role;
    int failures;
    int64_t locked_until; /* unix seconds; 0 not locked */
};
struct webui_users *webui_users_open(const char *dir, char *err, size_t errlen);
void webui_users_close(struct webui_users *u);
int webui_user_add(struct webui_users *u, const char *name, enum webui_role role,
                   const char *password, char *err, size_t errlen);
int webui_user_set_password(struct webui_users *u, const char *name, const char *password,
                            char *err, size_t errlen);
int webui_user_delete(struct webui_users *u, const char *name);
int webui_user_unlock(struct webui_users *u, const char *name);
int webui_user_count(struct webui_users *u);
int webui_user_list(struct webui_users *u, void (*fn)(const struct webui_user *, void *),
                    void *arg);
/* The outcome of a login attempt: the same answer to the client whatever
 * the reason, a precise one for the audit log. */
enum webui_login { WEBUI_LOGIN_OK, WEBUI_LOGIN_BAD, WEBUI_LOGIN_LOCKED };
enum webui_login webui_login(struct webui_users *u, const char *name, const char *password,
                             int64_t now, struct webui_user *out);
/* API bearer tokens, stored as SHA-256. */
int webui_token_add(struct webui_users *u, const char *user, char out[65], char *err,
                    size_t errlen);
int webui_token_check(struct webui_users *u, const char *token, struct webui_user *out);

/* session.c: sessions in the shared store (common/kv.h). */
#define WEBUI_IDLE_SECONDS (15 * 60)     /* defaults of the policy below */
#define WEBUI_ABSOLUTE_SECONDS (8 * 3600)
#define WEBUI_MAX_FAILURES 5
#define WEBUI_LOCK_SECONDS (15 * 60)
/* The session and lockout policy (admin-session-idle, -lifetime,
 * admin-lockout-failures, -time), set at start and each reload; sessions
 * already open follow the new one from their next request. */
struct webui_policy {
    int64_t idle, lifetime, lock; /* seconds */
    int failures;
};
void webui_set_policy(const struct webui_policy *p);
struct webui_policy webui_policy(void);
struct webui_session {
    char user[64];
    enum webui_role role;
    char csrf[65];  /* per-session CSRF token (hex) */
    int64_t created, last_seen;
};
int webui_session_new(const struct webui_user *usr, int64_t now, char id[65],
                      struct webui_session *s);
/* Checks idle and absolute timeouts; with activity (a person's request,
 * not a page's background poll) also refreshes last_seen, so polling alone
 * never keeps a session alive. */
/* 0, -1 no such live session, -2 the shared store did not answer. */
int webui_session_get(const char *id, int64_t now, int activity, struct webui_session *s);
/* 0 ended (or there was none), -1 the store did not answer: it may live. */
int webui_session_end(const char *id);
/* Live sessions, each shown by a handle (never its id); ending by handle:
 * 0, -1 no such handle, -2 the store did not answer (still listed). */
int webui_session_list(void (*fn)(const char *handle, const struct webui_session *s, void *arg),
                       void *arg);
int webui_session_end_handle(const char *handle);
/* Constant-time comparison of a presented CSRF token with the session's. */
int webui_csrf_ok(const struct webui_session *s, const char *presented);

/* audit.c: append-only JSON lines, also to syslog. */
int webui_audit_open(const char *path);
void webui_audit(const char *user, const char *role, const char *ip, const char *action,
                 const char *object, const char *before, const char *after, const char *result);
/* The same with the reason of a refusal or failure (why may be NULL). */
void webui_audit_why(const char *user, const char *role, const char *ip, const char *action,
                     const char *object, const char *before, const char *after,
                     const char *result, const char *why);
void webui_audit_close(void);

#endif
