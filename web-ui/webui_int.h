/* Private to web-ui/. */
#ifndef GH_WEBUI_WEBUI_INT_H
#define GH_WEBUI_WEBUI_INT_H

#include <stddef.h>

#include "webui.h"

/* Previous versions of the config kept in state-dir/admin/history. */
#define WEBUI_HISTORY_KEEP 20
/* Request bodies: 1 MiB (IdP metadata, certificates), except a restore,
 * whose bundle carries the config, certificates and IdP files. */
#define WEBUI_BODY_MAX (1024 * 1024)
#define WEBUI_BUNDLE_MAX (16 * 1024 * 1024)

/* password.c: the first `bytes` bytes of SHA-256(p) as hex, NUL-ended
 * (out holds 2 * bytes + 1). */
void webui__sha256_hex(const void *p, size_t len, size_t bytes, char *out);

/* confedit.c */
/* 16 hex digits of SHA-256 over the file's bytes: the ETag. */
void webui__version(const char *text, size_t len, char out[17]);
char *webui__read_file(const char *path, size_t *len);
/* The configuration file now, parsed, and its version; NULL with err
 * (the embedded default, unreadable, or not parsing). */
struct gh_conf *webui__conf_current(char ver[17], char *err, size_t errlen);
/* The version of the file now, cached while the file is unchanged. */
int webui__file_version(const char *path, char out[17]);
/* The text with one server's directive rewritten with a new state (not
 * NULL) and/or weight (> 0), every other byte kept; NULL with err. */
char *webui__set_server(const char *text, size_t len, const char *svc, const char *server,
                        const char *state, long long weight, char *err, size_t errlen);
/* Copies old into the history (with meta, a JSON note of who changed it
 * and what, beside it when not NULL), then writes text atomically in place. */
int webui__commit(const char *conf_path, const char *history_dir, const char *old,
                  size_t oldlen, const char *text, size_t len, const char *meta, char *err,
                  size_t errlen);
/* The lines that differ between a and b: the common head and tail, in whole
 * lines of both, are pre and suf bytes long (for the history's diffs). */
void webui__changed_span(const char *a, const char *b, size_t *pre, size_t *suf);
/* The directives (first words) of the lines that differ between a and b,
 * space-separated, each once. */
void webui__changed_directives(const char *a, const char *b, char *out, size_t outlen);

/* apply.c: one configuration change. transform returns the whole new text
 * (malloc'd) or NULL with *status (404, 409 or 422; 422 is preset) and err;
 * undo, when set, reverts side effects of transform (files it wrote) if
 * the text is then refused or cannot be written. The reply is
 * {"version":"NEW"[,extra]} with the new ETag and ok_status (200 if 0);
 * 428 without If-Match, 412 with the current version when stale. The
 * caller checks the role first. */
struct webui_change {
    const char *action, *object; /* audit */
    const char *after;           /* audit summary, secrets left out; NULL: new version */
    char *(*transform)(const char *text, size_t len, void *ctx, unsigned *status, char *err,
                       size_t errlen);
    void (*undo)(void *ctx);
    void *ctx;
    unsigned ok_status;
    const char *extra; /* JSON members for the reply, filled by transform via ctx */
    int committed;     /* set by webui__apply when the change is in place */
};
enum MHD_Result webui__apply(struct MHD_Connection *conn, const struct webui_session *s,
                             struct webui_change *ch);

/* The last max bytes of a file (from a line start), malloc'd. */
char *webui__read_file_tail(const char *path, size_t max, size_t *len);

/* app.c: what the other API files use of the application's state. */
struct webui_users *webui__users(void);
const char *webui__history_dir(void);
const char *webui__state_dir(void);
const char *webui__conf_path(void); /* NULL: the embedded default */
const char *webui__audit_path(void);
const char *webui__security_log_path(void); /* NULL: none or stderr */
void webui__lock(void);   /* one config change at a time */
void webui__unlock(void);
/* main's pipeline (webui_hooks.apply). */
enum webui_apply_result webui__apply_text(const char *text, size_t len,
                                          int (*write)(void *ctx, char *err, size_t errlen),
                                          void *ctx, char *err, size_t errlen);
/* What runs (webui_note_running), as JSON members:
 * "running_version":"…"[,"reload_failed":{"version","reason","time"}]. */
void webui__running_json(struct gh_sbuf *o);
/* The version the proxy runs ("" before the first note). */
void webui__running_version(char out[17]);
void webui__audit(struct MHD_Connection *conn, const struct webui_session *s, const char *action,
                  const char *object, const char *before, const char *after, const char *result);
void webui__audit_why(struct MHD_Connection *conn, const struct webui_session *s,
                      const char *action, const char *object, const char *before,
                      const char *after, const char *result, const char *why);
enum MHD_Result webui__send(struct MHD_Connection *conn, unsigned status, const char *type,
                            char *body, size_t len, const char *etag);
/* {"key":"msg"} with msg JSON-escaped: errors and one-word outcomes. */
enum MHD_Result webui__json(struct MHD_Connection *conn, unsigned status, const char *key,
                            const char *msg);

enum MHD_Result webui__send_download(struct MHD_Connection *conn, char *body, size_t len,
                                     const char *type, const char *name);

/* blockedit.c: directive-level edits of the top-level block `kind name`. */
struct webui_field {
    const char *key;   /* a directive, or "_name" (the block's own name) */
    const char *value; /* its lines, one statement each; "" removes it */
};
/* The text with each field's directive lines replacing the old ones (in
 * place; new ones before the closing brace), every other byte kept. NULL
 * with err and *status (404 no block, 409 name taken; else left as is). */
char *webui__block_set(const char *text, size_t len, const char *kind, const char *name,
                       const struct webui_field *f, size_t nf, unsigned *status, char *err,
                       size_t errlen);
/* The text with a new block appended (its name from the _name field). */
char *webui__block_add(const char *text, size_t len, const char *kind,
                       const struct webui_field *f, size_t nf, unsigned *status, char *err,
                       size_t errlen);
char *webui__block_delete(const char *text, size_t len, const char *kind, const char *name,
                          unsigned *status, char *err, size_t errlen);
/* "kind":..,"name":..,"line":N,"directives":[{"name","value","line","block"}]
 * appended to out (the value as written, quotes included). */
int webui__block_json(const char *text, size_t len, const char *kind, const char *name,
                      struct gh_sbuf *out, char *err, size_t errlen);
/* A form's fields in order (csrf left out), for block edits. */
#define WEBUI_MAX_FIELDS 128
struct webui_fields {
    struct webui_field f[WEBUI_MAX_FIELDS];
    char *keys[WEBUI_MAX_FIELDS], *values[WEBUI_MAX_FIELDS];
    size_t n;
};
/* -1 when malformed (a NUL) or more than WEBUI_MAX_FIELDS; free in any case. */
int webui__fields_parse(const char *body, size_t blen, struct webui_fields *fm);
int webui__fields_add(struct webui_fields *fm, const char *key, const char *value);
void webui__fields_free(struct webui_fields *fm);
/* Whether s can be written bare; s written bare or quoted (-1: control bytes). */
int webui__conf_word(const char *s);
int webui__conf_quote(struct gh_sbuf *o, const char *s);

/* api_meetings.c */
int webui__meetings_open(const struct gh_conf *c, char *err, size_t errlen);
/* The running configuration's identity-provider groups, for room checks. */
void webui__meetings_groups(const struct gh_conf *c);
void webui__meetings_close(void);
/* graphs.c: the last hour of the statistics, sampled by a thread of its own. */
int webui__graphs_start(char *(*source)(int json, size_t *len));
void webui__graphs_stop(void);
char *webui__graphs_json(size_t *len);
/* The meeting database for a backup (verifiers and wrapped keys only), or
 * NULL with err; and its restore (slides_store_restore). */
unsigned char *webui__meetings_snapshot(size_t *len, char *err, size_t errlen);
int webui__meetings_restore(const unsigned char *data, size_t len, int dry_run, char *err,
                            size_t errlen);

/* api_services.c */
/* The text after one service-block operation: what is "add" (body is the
 * block), "modify" (name's block replaced by body) or "delete". NULL with
 * err ("no service ..." when name does not exist). */
char *webui__service_op(const char *text, size_t len, const char *what, const char *name,
                        const char *body, size_t blen, char *err, size_t errlen);

/* api_rules.c */
enum MHD_Result webui__api_rules(struct MHD_Connection *conn, const char *body, size_t blen);
enum MHD_Result webui__api_rule_sets(struct MHD_Connection *conn);


/* router.c and routes.c: every path of the admin application in one table
 * (method, pattern, the role it needs, handler); see router.c. */
enum webui_need {
    WEBUI_NEED_PUBLIC,          /* no sign-in (probes, the sign-in page, assets) */
    WEBUI_NEED_SIGNED_IN,       /* any role */
    WEBUI_NEED_SERVER_STATE,    /* operators and admins */
    WEBUI_NEED_CONFIG,          /* admins */
    WEBUI_NEED_USERS,           /* user admins */
    WEBUI_NEED_USERS_OR_CONFIG, /* admins and user admins */
};
#define WEBUI_ROUTE_ARGS 3
#define WEBUI_ROUTE_ARG 200
struct webui_call {
    struct MHD_Connection *conn;
    const char *url, *method;
    const struct webui_session *s; /* the caller; NULL on public routes */
    const char *body;              /* the request body, NUL-terminated */
    size_t blen;
    int via_cookie;  /* a browser session (not a bearer token) */
    const char *sid; /* its id, when via_cookie */
    char arg[WEBUI_ROUTE_ARGS][WEBUI_ROUTE_ARG]; /* what the {} segments matched */
};
struct webui_route {
    const char *method;  /* "GET" (HEAD too) or "POST" */
    const char *pattern; /* literal segments and {} (one segment) */
    enum webui_need need;
    const char *refusal; /* the 403's words when the role does not meet need */
    enum MHD_Result (*fn)(struct webui_call *c);
};
extern const struct webui_route webui__routes[];
extern const size_t webui__nroutes;
/* 1 when url matches pattern (the {} segments copied to arg), else 0. */
int webui__route_match(const char *pattern, const char *url,
                       char arg[WEBUI_ROUTE_ARGS][WEBUI_ROUTE_ARG]);
int webui__need_met(enum webui_role r, enum webui_need n);

/* The handlers, by file. */
enum MHD_Result webui__r_health(struct webui_call *c);
enum MHD_Result webui__r_metrics(struct webui_call *c);
enum MHD_Result webui__r_login_page(struct webui_call *c);
enum MHD_Result webui__r_login(struct webui_call *c);
enum MHD_Result webui__r_asset(struct webui_call *c);
enum MHD_Result webui__r_favicon(struct webui_call *c);
enum MHD_Result webui__r_home(struct webui_call *c);
enum MHD_Result webui__r_logout(struct webui_call *c);
enum MHD_Result webui__r_whoami(struct webui_call *c);
enum MHD_Result webui__r_session(struct webui_call *c);
enum MHD_Result webui__r_stats(struct webui_call *c);
enum MHD_Result webui__r_cluster(struct webui_call *c);
enum MHD_Result webui__r_stats_history(struct webui_call *c);
enum MHD_Result webui__r_config(struct webui_call *c);
enum MHD_Result webui__r_server_state(struct webui_call *c);
enum MHD_Result webui__r_server_weight(struct webui_call *c);
enum MHD_Result webui__r_rule_sets(struct webui_call *c);           /* api_rules.c */
enum MHD_Result webui__r_rules_test(struct webui_call *c);
enum MHD_Result webui__r_backup(struct webui_call *c);              /* backup.c */
enum MHD_Result webui__r_restore(struct webui_call *c);
enum MHD_Result webui__r_cert_selfsigned(struct webui_call *c);     /* api_certs.c */
enum MHD_Result webui__r_cert_csr(struct webui_call *c);
enum MHD_Result webui__r_cert_issued(struct webui_call *c);
enum MHD_Result webui__r_cert_import(struct webui_call *c);
enum MHD_Result webui__r_tx_open(struct webui_call *c);             /* api_transactions.c */
enum MHD_Result webui__r_tx_get(struct webui_call *c);
enum MHD_Result webui__r_tx_stage(struct webui_call *c);
enum MHD_Result webui__r_tx_commit(struct webui_call *c);
enum MHD_Result webui__r_tx_discard(struct webui_call *c);
enum MHD_Result webui__r_meetings(struct webui_call *c);            /* api_meetings.c */
enum MHD_Result webui__r_meeting_create(struct webui_call *c);
enum MHD_Result webui__r_meeting_modify(struct webui_call *c);
enum MHD_Result webui__r_meeting_admit(struct webui_call *c);
enum MHD_Result webui__r_meeting_refuse(struct webui_call *c);
enum MHD_Result webui__r_meeting_pin_reset(struct webui_call *c);
enum MHD_Result webui__r_meeting_end(struct webui_call *c);
enum MHD_Result webui__r_meeting_reopen(struct webui_call *c);
enum MHD_Result webui__r_meeting_delete(struct webui_call *c);
enum MHD_Result webui__r_idps(struct webui_call *c);                /* api_idp.c */
enum MHD_Result webui__r_idp_metadata(struct webui_call *c);
enum MHD_Result webui__r_idp_import(struct webui_call *c);
enum MHD_Result webui__r_block_add(struct webui_call *c);           /* api_blocks.c */
enum MHD_Result webui__r_block_get(struct webui_call *c);
enum MHD_Result webui__r_block_modify(struct webui_call *c);
enum MHD_Result webui__r_block_delete(struct webui_call *c);
enum MHD_Result webui__r_service_add(struct webui_call *c);         /* api_services.c */
enum MHD_Result webui__r_service_block(struct webui_call *c);
enum MHD_Result webui__r_service_replace(struct webui_call *c);
enum MHD_Result webui__r_service_delete(struct webui_call *c);
enum MHD_Result webui__r_services(struct webui_call *c);            /* api_inventory.c */
enum MHD_Result webui__r_certificates(struct webui_call *c);
enum MHD_Result webui__r_history(struct webui_call *c);             /* api_more.c */
enum MHD_Result webui__r_history_get(struct webui_call *c);
enum MHD_Result webui__r_rollback(struct webui_call *c);
enum MHD_Result webui__r_log_audit(struct webui_call *c);
enum MHD_Result webui__r_log_security(struct webui_call *c);
enum MHD_Result webui__r_users(struct webui_call *c);
enum MHD_Result webui__r_user_add(struct webui_call *c);
enum MHD_Result webui__r_user_unlock(struct webui_call *c);
enum MHD_Result webui__r_user_delete(struct webui_call *c);
enum MHD_Result webui__r_sessions(struct webui_call *c);
enum MHD_Result webui__r_session_end(struct webui_call *c);
enum MHD_Result webui__r_password(struct webui_call *c);

#endif
