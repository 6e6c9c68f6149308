/* Private to apps/. */
#ifndef GH_APPS_APPS_INT_H
#define GH_APPS_APPS_INT_H

#include <microhttpd.h>

#include "../common/common.h"
#include "apps.h"

extern const struct apps_hooks *apps__hooks;
extern uint64_t apps__started_ms;

/* status.c */
enum MHD_Result apps__status_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **con_cls);

struct saml_sp;
struct saml_session;
struct slides_upload;

/* Per-request state of the conference application. */
struct apps__req {
    int admin_socket;    /* came in on conference-admin.sock, not through a service */
    struct gh_sbuf body; /* a form body, bounded */
    int too_big;
    int started;         /* a streamed upload saw its head */
    int status;          /* an upload's refusal, once decided */
    char err[256];
    struct slides_upload *up;
};

/* conference.c */
void apps__security(struct MHD_Connection *conn, const char *method, const char *url, int status,
                    const char *reason, const char *detail);
/* 0 a live session (s filled), -1 none, -2 the shared store did not answer. */
int apps__session_of(struct MHD_Connection *conn, char *id, struct saml_session *s);
/* The client as the proxy in front vouches for it: X-Real-IP (with
 * trusted-proxies, the client behind an edge gatehouse), else the last
 * X-Forwarded-For entry. a: 16 bytes (IPv4 mapped), zeros when unknown. */
void apps__client_addr(struct MHD_Connection *conn, unsigned char a[16], char *text, size_t tlen);
char *apps__b64(const unsigned char *p, size_t n);

/* api_tokens.c */
/* Reads STATE-DIR/conference/api-tokens from now on, after turning an
 * admin.token of earlier versions into the token admin-token. */
int apps__api_tokens_open(const char *dir, char *err, size_t errlen);
/* 0 when bearer is a token with every scope of scope (name receives its
 * name); -2 a token without them (name set); -1 no token. */
int apps__api_token_check(const char *bearer, unsigned scope, char name[65]);
/* One JSON line per call of the admin API in STATE-DIR/conference/audit.log. */
void apps__api_audit(const char *token, const char *method, const char *path, int status,
                     const char *detail);

/* meetings.c */
/* The meeting store, opened once (at start); the settings, at every commit. */
int apps__meetings_open(const struct gh_conf *c, char *err, size_t errlen);
void apps__meetings_commit(const struct gh_conf *c);
/* The warnings for rooms whose identity-provider-group c lacks, one per
 * line (malloc'd), or NULL. */
char *apps__meetings_room_warnings(const struct gh_conf *c);
void apps__meetings_stop(void);
enum MHD_Result apps__meetings_handler(struct MHD_Connection *conn, const char *url,
                                       const char *method, const char *data, size_t *size,
                                       struct apps__req *rq, struct saml_sp *sp);

enum MHD_Result apps__conference_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                         const char *method, const char *version,
                                         const char *upload_data, size_t *upload_data_size,
                                         void **con_cls);
void apps__conference_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe);
/* The SAML SP a configuration makes (NULL with err), installed at commit. */
struct saml_sp *apps__conference_prepare(const struct gh_conf *c, char *err, size_t errlen);
void apps__conference_commit(const struct gh_conf *c, struct saml_sp *sp);
void apps__conference_stop(void);

#endif
