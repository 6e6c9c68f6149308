/*
 * The conference application's participant-authentication endpoints, on the
 * SAML service provider in saml/. Paths follow the seeds' ACS URL form:
 *
 *   GET  /api/v1/samlmetadata/<uuid>          SP metadata for that IdP record
 *   GET  /api/v1/samllogin/<group>[/<uuid>]   to the IdP (or a page to choose one)
 *   POST /api/v1/samlconsumer/<uuid>          the assertion consumer (HTTP-POST)
 *   GET  /api/v1/samlsession                  who this participant is (JSON)
 *   POST /api/v1/samlsession/display-name     a typed name, when the IdP gives none
 *   POST /api/v1/samllogout                   ends the session
 *
 * Every refusal is a plain page with no detail for the client, and a line in
 * the security log with the reason and what did not match.
 */
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/common.h"
#include "../saml/saml.h"
#include "../slides/slides.h"
#include "../store/store.h"
#include "apps_int.h"
#include "../common/asset.h"

#define COOKIE "__Host-gh-sp"
/* Binds a login to the browser that started it (login forgery): sent back
 * on the IdP's cross-site POST, hence SameSite=None; a random value that
 * carries no session. */
#define BINDING_COOKIE "__Host-gh-login"
#define MAX_FORM (6 * 1024 * 1024)

static pthread_mutex_t sp_mu = PTHREAD_MUTEX_INITIALIZER;
static struct saml_sp *sp_current;

static _Atomic long long saml_rate = 60; /* per minute and source; 0: no limit */
static _Atomic long long saml_appliances = 1; /* the store's appliances: the local share */

struct saml_sp *apps__conference_prepare(const struct gh_conf *c, char *err, size_t errlen)
{
    return saml_sp_new(c, err, errlen);
}

void apps__conference_commit(const struct gh_conf *c, struct saml_sp *sp)
{
    struct saml_sp *old;

    atomic_store(&saml_rate, c->saml_rate_per_source);
    atomic_store(&saml_appliances, strcmp(c->store.engine, "redis") == 0 ? c->store.appliances : 1);
    saml_session_cache_set(strcmp(c->store.engine, "redis") == 0 ? c->store.session_cache : 0);
    pthread_mutex_lock(&sp_mu);
    old = sp_current;
    sp_current = sp;
    pthread_mutex_unlock(&sp_mu);
    saml_sp_unref(old);
}

void apps__conference_stop(void)
{
    apps__meetings_stop();
    pthread_mutex_lock(&sp_mu);
    saml_sp_unref(sp_current);
    sp_current = NULL;
    pthread_mutex_unlock(&sp_mu);
}

static struct saml_sp *sp_get(void)
{
    struct saml_sp *sp;

    pthread_mutex_lock(&sp_mu);
    sp = sp_current;
    if (sp != NULL)
        saml_sp_ref(sp);
    pthread_mutex_unlock(&sp_mu);
    return sp;
}

void apps__conference_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    struct apps__req *r = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (r != NULL) {
        slides_upload_abort(r->up); /* a client that went away: nothing stored */
        free(r->body.p);
        free(r);
        *con_cls = NULL;
    }
}

char *apps__b64(const unsigned char *p, size_t n)
{
    char *out = gh_calloc(1, 4 * ((n + 2) / 3) + 1);

    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return out;
}

/* An answer (body is taken) with up to one more header of any name. */
static enum MHD_Result reply_x(struct MHD_Connection *conn, unsigned status, const char *type,
                              char *body, size_t len, const char *location, const char *cookie,
                              const char *name, const char *value)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret;

    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; style-src 'self'; frame-ancestors 'none'");
    if (location != NULL)
        MHD_add_response_header(resp, "Location", location);
    if (cookie != NULL)
        MHD_add_response_header(resp, "Set-Cookie", cookie);
    if (name != NULL)
        MHD_add_response_header(resp, name, value);
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                            char *body, size_t len, const char *location, const char *cookie)
{
    return reply_x(conn, status, type, body, len, location, cookie, NULL, NULL);
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned status, const char *msg)
{
    char *b = gh_strdup(msg);
    return reply(conn, status, "text/plain; charset=utf-8", b, strlen(b), NULL, NULL);
}

static void html_escape(struct gh_sbuf *o, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '&': gh_sbuf_printf(o, "&amp;"); break;
        case '<': gh_sbuf_printf(o, "&lt;"); break;
        case '>': gh_sbuf_printf(o, "&gt;"); break;
        case '"': gh_sbuf_printf(o, "&quot;"); break;
        case '\'': gh_sbuf_printf(o, "&#39;"); break;
        default: gh_sbuf_printf(o, "%c", *s);
        }
}

static void url_escape(struct gh_sbuf *o, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~' || c == '/')
            gh_sbuf_printf(o, "%c", c);
        else
            gh_sbuf_printf(o, "%%%02X", c);
    }
}

void apps__security(struct MHD_Connection *conn, const char *method, const char *url,
                    int status, const char *reason, const char *detail)
{
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    char client[64];

    gh_xff_last(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For"), client,
                sizeof(client));
    if (apps__hooks != NULL && apps__hooks->security != NULL)
        apps__hooks->security("conference", client, host ? host : "", method, url, status,
                              reason, detail ? detail : "");
}

/* The client as the proxy in front vouches for it: X-Real-IP (with
 * trusted-proxies, the client behind an edge gatehouse), else the last
 * X-Forwarded-For entry. 16 bytes (IPv4 mapped); zeros when unknown. */
void apps__client_addr(struct MHD_Connection *conn, unsigned char a[16], char *text, size_t tlen)
{
    const char *ip = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Real-IP");
    struct in_addr v4;
    char last[64];

    memset(a, 0, 16);
    if (ip == NULL) {
        gh_xff_last(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For"), last,
                    sizeof(last));
        ip = last;
    }
    gh_strlcpy(text, ip, tlen);
    if (inet_pton(AF_INET6, ip, a) == 1)
        return;
    if (inet_pton(AF_INET, ip, &v4) == 1) {
        a[10] = a[11] = 0xff;
        memcpy(a + 12, &v4, 4);
    }
}

int apps__session_of(struct MHD_Connection *conn, char *id, struct saml_session *s)
{
    const char *c = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, COOKIE);

    if (c == NULL || strlen(c) != SAML_SESSION_ID_HEX)
        return -1;
    memcpy(id, c, SAML_SESSION_ID_HEX + 1);
    return saml_session_get(id, s);
}

/* State-changing requests from a browser must come from our own origin. */
static int same_origin(struct MHD_Connection *conn)
{
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");

    if (origin == NULL)
        return 1; /* non-browser clients; the cookie is SameSite=Lax regardless */
    return host != NULL && strncmp(origin, "https://", 8) == 0 && strcmp(origin + 8, host) == 0;
}

/* The join page and its script and style: no inline script anywhere, so
 * the policy can forbid it. */
static enum MHD_Result asset(struct MHD_Connection *conn, const struct apps_asset *a)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        a->len, (void *)(uintptr_t)a->data, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret;

    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", a->type);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'none'; script-src 'self'; style-src 'self'; "
                            "connect-src 'self'; img-src 'self' blob:; object-src blob:; "
                            "frame-src blob:; form-action 'self'; base-uri 'none'; "
                            "frame-ancestors 'none'");
    ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result metadata(struct MHD_Connection *conn, struct saml_sp *sp, const char *uuid)
{
    const struct saml_idp *idp = saml_idp_by_uuid(sp, uuid);
    char err[512], disp[128];
    size_t len = 0;
    char *xml;
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (idp == NULL)
        return text(conn, 404, "not found\n");
    xml = saml_sp_metadata(idp, &len, err, sizeof(err));
    if (xml == NULL) {
        gh_log_err("%s", err);
        return text(conn, 500, "metadata unavailable\n");
    }
    resp = MHD_create_response_from_buffer(len, xml, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(xml);
        return MHD_NO;
    }
    snprintf(disp, sizeof(disp), "attachment; filename=\"gatehouse-sp-%s.xml\"", uuid);
    MHD_add_response_header(resp, "Content-Type", "application/samlmetadata+xml");
    MHD_add_response_header(resp, "Content-Disposition", disp);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    ret = MHD_queue_response(conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* The browser's binding value: its cookie when it has a well-formed one
 * (several logins in one browser share it), else a fresh one. */
static void binding_of(struct MHD_Connection *conn, char out[SAML_BINDING_HEX + 1])
{
    const char *c = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, BINDING_COOKIE);
    unsigned char raw[SAML_BINDING_HEX / 2];

    if (c != NULL && gh_unhex(c, raw, sizeof(raw)) == 0) {
        memcpy(out, c, SAML_BINDING_HEX + 1);
        return;
    }
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        abort();
    gh_hex(raw, sizeof(raw), out);
}

static enum MHD_Result redirect_to_idp(struct MHD_Connection *conn, const struct saml_idp *idp,
                                       const char *relay, const char *url)
{
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    char err[256], binding[SAML_BINDING_HEX + 1], cookie[160];
    char *loc;
    enum MHD_Result ret;

    binding_of(conn, binding);
    loc = saml_login_url(idp, host ? host : "", relay, binding, err, sizeof(err));
    if (loc == NULL) {
        unsigned st = strncmp(err, SAML_STORE_DOWN_TEXT, strlen(SAML_STORE_DOWN_TEXT)) == 0
                          ? 503 : 400;
        apps__security(conn, "GET", url, st, st == 503 ? "saml-store-unavailable" : "saml-login",
                       err);
        return text(conn, st, st == 503 ? "sign-in is unavailable; retry shortly\n"
                                        : "cannot start sign-in\n");
    }
    snprintf(cookie, sizeof(cookie), BINDING_COOKIE "=%s; Path=/; Secure; HttpOnly; "
                                                    "SameSite=None; Max-Age=900",
             binding);
    ret = reply(conn, 302, "text/plain; charset=utf-8", gh_strdup("to the identity provider\n"),
               25, loc, cookie);
    free(loc);
    return ret;
}

static enum MHD_Result login(struct MHD_Connection *conn, struct saml_sp *sp, const char *rest,
                             const char *url)
{
    const char *relay = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "RelayState");
    const char *slash = strchr(rest, '/');
    char group[256];
    const struct saml_idp *idp;
    struct gh_sbuf page = {NULL, 0, 0};
    size_t i, n = 0;

    if (relay != NULL && !saml_relay_ok(relay)) {
        apps__security(conn, "GET", url, 400, "saml-relay-state", "not a local path");
        return text(conn, 400, "RelayState must be a local path\n");
    }
    if (gh_strlcpy(group, rest, sizeof(group)) == -1)
        return text(conn, 404, "not found\n");
    if (slash != NULL)
        group[slash - rest] = '\0';
    if (!saml_group_exists(sp, group))
        return text(conn, 404, "not found\n");
    if (slash != NULL) {
        idp = saml_idp_by_uuid(sp, slash + 1);
        if (idp == NULL || !saml_group_has(sp, group, idp))
            return text(conn, 404, "not found\n");
        return redirect_to_idp(conn, idp, relay, url);
    }
    while (saml_group_idp(sp, group, n) != NULL)
        n++;
    if (n == 1)
        return redirect_to_idp(conn, saml_group_idp(sp, group, 0), relay, url);
    gh_sbuf_printf(&page, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                          "<title>Sign in</title></head><body><h1>Sign in with</h1><ul>");
    for (i = 0; i < n; i++) {
        idp = saml_group_idp(sp, group, i);
        gh_sbuf_printf(&page, "<li><a href=\"/api/v1/samllogin/");
        url_escape(&page, group);
        gh_sbuf_printf(&page, "/%s", saml_idp_uuid(idp));
        if (relay != NULL) {
            gh_sbuf_printf(&page, "?RelayState=");
            url_escape(&page, relay);
        }
        gh_sbuf_printf(&page, "\">");
        html_escape(&page, saml_idp_name(idp));
        gh_sbuf_printf(&page, "</a></li>");
    }
    gh_sbuf_printf(&page, "</ul></body></html>\n");
    return reply(conn, 200, "text/html; charset=utf-8", page.p, page.len, NULL, NULL);
}

/* The per-source limit on the SAML paths anyone can call unauthenticated
 * (a login start makes a request record, an assertion post costs a parse
 * and signature checks): saml-rate-per-source a minute, a burst of a third
 * of it (at least 5). A refusal is 429 with Retry-After, before any work,
 * and a security line; 0 when the request may go on. */
static int rate_limited(struct MHD_Connection *conn, char kind, const char *what,
                        const char *method, const char *url, enum MHD_Result *ret)
{
    unsigned char key[18] = {'R'};
    int64_t rate = atomic_load(&saml_rate), burst, wait = 0;
    char src[64], detail[160], ra[24], *body;

    if (rate <= 0)
        return 0;
    burst = rate / 3 > 5 ? rate / 3 : 5;
    key[1] = (unsigned char)kind;
    apps__client_addr(conn, key + 2, src, sizeof(src));
    /* One bucket for the cluster; while the store does not answer, this
     * appliance's own at its share of the rate (store's appliances). */
    if (store_sync_bucket(key, sizeof(key), rate, burst, &wait) != STORE_OK) {
        int64_t n = atomic_load(&saml_appliances);
        wait = store_local_bucket(key, sizeof(key), rate / n > 0 ? rate / n : 1,
                                  burst / n > 0 ? burst / n : 1);
    }
    if (wait == 0)
        return 0;
    snprintf(detail, sizeof(detail), "%s from %s", what, src);
    apps__security(conn, method, url, 429, "saml-rate-limited", detail);
    snprintf(ra, sizeof(ra), "%lld", (long long)(wait + 999) / 1000);
    body = gh_strdup("too many sign-in attempts from this address; retry later\n");
    *ret = reply_x(conn, 429, "text/plain; charset=utf-8", body, strlen(body), NULL, NULL,
                   "Retry-After", ra); /* RFC 9110 10.2.3 */
    return 1;
}

static enum MHD_Result consume(struct MHD_Connection *conn, struct saml_sp *sp, const char *uuid,
                               struct apps__req *rq, const char *url)
{
    const struct saml_idp *idp = saml_idp_by_uuid(sp, uuid);
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    struct saml_result res;
    char *resp, id[SAML_SESSION_ID_HEX + 1], cookie[256];
    struct gh_sbuf loc = {NULL, 0, 0};
    enum MHD_Result ret;

    if (idp == NULL) {
        apps__security(conn, "POST", url, 404, saml_reason_name(SAML_UNKNOWN_IDP), uuid);
        return text(conn, 404, "not found\n");
    }
    if (!saml_idp_usable(idp)) {
        apps__security(conn, "POST", url, 403, saml_reason_name(SAML_NOT_IN_GROUP), saml_idp_name(idp));
        return text(conn, 403, "sign-in refused\n");
    }
    if (rq->too_big) {
        apps__security(conn, "POST", url, 413, saml_reason_name(SAML_TOO_LARGE), "form body");
        return text(conn, 413, "sign-in refused\n");
    }
    resp = gh_form_get(rq->body.p ? rq->body.p : "", rq->body.len, "SAMLResponse");
    if (resp == NULL) {
        apps__security(conn, "POST", url, 400, saml_reason_name(SAML_ENCODING), "no SAMLResponse");
        return text(conn, 400, "sign-in refused\n");
    }
    saml_response_check(idp, host ? host : "", resp, strlen(resp), (int64_t)time(NULL), &res);
    free(resp);
    if (saml_response_commit(idp,
                             MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, BINDING_COOKIE),
                             &res) != SAML_OK) {
        /* The store not answering is not the response's fault: 503, and
         * nothing was accepted unchecked. */
        unsigned st = res.reason == SAML_STORE ? 503 : 403;
        apps__security(conn, "POST", url, st, saml_reason_name(res.reason), res.detail);
        return text(conn, st, st == 503 ? "sign-in is unavailable; retry shortly\n"
                                        : "sign-in refused\n");
    }
    if (saml_session_create(&res, id) == -1) {
        apps__security(conn, "POST", url, 503, "saml-session", "store refused the session");
        return text(conn, 503, "sign-in could not be completed\n");
    }
    snprintf(cookie, sizeof(cookie), COOKIE "=%s; Path=/; Secure; HttpOnly; SameSite=Lax; "
                                            "Max-Age=%lld",
             id, (long long)(res.expires - (int64_t)time(NULL)));
    gh_wipe(id, sizeof(id));
    gh_sbuf_printf(&loc, "%s", res.relay[0] ? res.relay : "/");
    gh_log_info("participant signed in with %s", saml_idp_name(idp));
    ret = reply(conn, 303, "text/plain; charset=utf-8", gh_strdup("signed in\n"), 10, loc.p,
               cookie);
    free(loc.p);
    return ret;
}

/* The caller's session, or with *ret the answer that there is none (401)
 * or that it cannot be checked now (503). */
static int signed_in(struct MHD_Connection *conn, char *id, struct saml_session *s,
                     enum MHD_Result *ret)
{
    switch (apps__session_of(conn, id, s)) {
    case 0:
        return 1;
    case -2:
        *ret = text(conn, 503, "sessions are unavailable; retry shortly\n");
        return 0;
    default:
        *ret = text(conn, 401, "no session\n");
        return 0;
    }
}

static enum MHD_Result session_json(struct MHD_Connection *conn, struct saml_sp *sp)
{
    enum MHD_Result ret;
    char id[SAML_SESSION_ID_HEX + 1];
    struct saml_session s;
    const struct saml_idp *idp;
    struct gh_sbuf o = {NULL, 0, 0};

    if (!signed_in(conn, id, &s, &ret))
        return ret;
    idp = saml_idp_by_uuid(sp, s.idp_uuid);
    gh_sbuf_printf(&o, "{\"name_id\":");
    gh_json_str(&o, s.name_id);
    gh_sbuf_printf(&o, ",\"display_name\":");
    gh_json_str(&o, s.display_name);
    gh_sbuf_printf(&o, ",\"display_name_from_idp\":%s,\"idp_uuid\":",
                   s.name_from_idp ? "true" : "false");
    gh_json_str(&o, s.idp_uuid);
    gh_sbuf_printf(&o, ",\"idp_name\":");
    gh_json_str(&o, idp ? saml_idp_name(idp) : "");
    gh_sbuf_printf(&o, ",\"expires\":%lld}\n", (long long)s.expires);
    return reply(conn, 200, "application/json", o.p, o.len, NULL, NULL);
}

static enum MHD_Result set_name(struct MHD_Connection *conn, struct apps__req *rq)
{
    enum MHD_Result ret;
    char id[SAML_SESSION_ID_HEX + 1];
    struct saml_session s;
    char *name;
    int rc;

    if (!signed_in(conn, id, &s, &ret))
        return ret;
    if (s.name_from_idp)
        return text(conn, 409, "the identity provider gives this name; it cannot be changed\n");
    name = gh_form_get(rq->body.p ? rq->body.p : "", rq->body.len, "name");
    if (name == NULL || name[0] == '\0' || strlen(name) > 200) {
        free(name);
        return text(conn, 400, "name: 1 to 200 bytes\n");
    }
    rc = saml_session_set_name(id, name);
    free(name);
    return rc == 0 ? text(conn, 204, "") : text(conn, 409, "cannot change the name\n");
}

static enum MHD_Result logout(struct MHD_Connection *conn)
{
    char id[SAML_SESSION_ID_HEX + 1];
    struct saml_session s;
    int rc = apps__session_of(conn, id, &s);

    /* "signed out" only when it is so: a session the store could not be
     * asked about, or could not delete, may live on. */
    if (rc == -2 || (rc == 0 && saml_session_end(id) == -1))
        return text(conn, 503, "not signed out: retry shortly\n");
    return reply(conn, 200, "text/plain; charset=utf-8", gh_strdup("signed out\n"), 11, NULL,
                COOKIE "=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0");
}

enum MHD_Result apps__conference_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                         const char *method, const char *version,
                                         const char *upload_data, size_t *upload_data_size,
                                         void **con_cls)
{
    struct apps__req *rq = *con_cls;
    struct saml_sp *sp;
    enum MHD_Result ret;
    int post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0 ||
                                                strcmp(method, "HEAD") == 0;

    (void)version;
    if (rq == NULL) {
        rq = gh_calloc(1, sizeof(*rq));
        rq->admin_socket = *(const int *)cls;
        *con_cls = rq;
        return MHD_YES;
    }
    if (strncmp(url, "/api/v1/meetings", 16) == 0 || strncmp(url, "/api/v1/content/", 16) == 0 ||
        strncmp(url, "/api/v1/admin/", 14) == 0) {
        sp = sp_get();
        if (sp == NULL)
            return text(conn, 503, "not configured\n");
        ret = apps__meetings_handler(conn, url, method, upload_data, upload_data_size, rq, sp);
        saml_sp_unref(sp);
        return ret;
    }
    if (*upload_data_size != 0) {
        if (rq->body.len + *upload_data_size > MAX_FORM)
            rq->too_big = 1;
        else
            gh_sbuf_append(&rq->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (get && strcmp(url, "/favicon.ico") == 0)
        return reply(conn, 204, "image/x-icon", gh_strdup(""), 0, NULL, NULL);
    if (get) {
        const char *want = strcmp(url, "/join") == 0        ? "/join.html"
                           : strcmp(url, "/reception") == 0 ? "/reception.html"
                                                             : url;
        const struct apps_asset *a;
        for (a = apps_assets; a->path != NULL; a++)
            if (strcmp(a->path, want) == 0 && strcmp(url, "/join.html") != 0 &&
                strcmp(url, "/reception.html") != 0)
                return asset(conn, a);
    }
    if (strcmp(url, "/healthcheck.html") == 0 || strcmp(url, "/") == 0)
        return apps__status_handler(cls, conn, url, method, version, upload_data,
                                    upload_data_size, con_cls);
    sp = sp_get();
    if (sp == NULL)
        return text(conn, 503, "not configured\n");
    if (get && strncmp(url, "/api/v1/samlmetadata/", 21) == 0)
        ret = metadata(conn, sp, url + 21);
    else if (get && strncmp(url, "/api/v1/samllogin/", 18) == 0)
        ret = rate_limited(conn, 'l', "login start", method, url, &ret)
                  ? ret
                  : login(conn, sp, url + 18, url);
    else if (post && strncmp(url, "/api/v1/samlconsumer/", 21) == 0)
        ret = rate_limited(conn, 'a', "assertion post", method, url, &ret)
                  ? ret
                  : consume(conn, sp, url + 21, rq, url);
    else if (get && strcmp(url, "/api/v1/samlsession") == 0)
        ret = session_json(conn, sp);
    else if (post && strcmp(url, "/api/v1/samlsession/display-name") == 0)
        ret = same_origin(conn) ? set_name(conn, rq) : text(conn, 403, "cross-origin\n");
    else if (post && strcmp(url, "/api/v1/samllogout") == 0)
        ret = same_origin(conn) ? logout(conn) : text(conn, 403, "cross-origin\n");
    else if (!get && !post)
        ret = text(conn, 405, "method not allowed\n");
    else
        ret = text(conn, 404, "not found\n");
    saml_sp_unref(sp);
    return ret;
}
