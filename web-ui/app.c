/*
 * The admin application's HTTP side:
 *
 *   GET  /login, POST /login, POST /logout       sessions (cookie __Host-gh-admin)
 *   GET  /                                       the administration page
 *   GET  /api/v1/whoami                          user, role, CSRF token
 *   GET  /api/v1/session                         seconds left before sign-out
 *   GET  /api/v1/stats                           the proxy's counters (JSON)
 *   GET  /api/v1/stats/history                   the last hour of them (graphs.c)
 *   GET  /api/v1/config                          {version, text}, ETag
 *   POST /api/v1/servers/<service>/<server>/state  state=up|drain|maint, If-Match
 *   GET  /healthcheck.html, /metrics             for probes and scrapers
 *
 * Browsers use the session cookie (SameSite=Strict) and must send the
 * session's CSRF token and a same-origin Origin on every POST; API clients
 * use a per-user bearer token (stored hashed). Roles are checked in one
 * place (webui_allowed). Every login, failure, lockout and change goes to
 * the audit log.
 */
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/asset.h"
#include "../common/common.h"
#include "../common/kv.h"
#include "webui_int.h"

#define COOKIE "__Host-gh-admin"
#define LOGIN_COOKIE "__Host-gh-login"
#define LOGIN_IP_LIMIT 20 /* attempts per source address per 5 minutes */

static const struct webui_hooks *hooks;
static struct webui_users *users;
static char state_dir[1024];
static char history_dir[1200], audit_path[1200], security_log[1024];
static int64_t started;
static pthread_mutex_t write_mu = PTHREAD_MUTEX_INITIALIZER;

void webui__lock(void)
{
    pthread_mutex_lock(&write_mu);
}

void webui__unlock(void)
{
    pthread_mutex_unlock(&write_mu);
}

void webui_file_lock(void)
{
    webui__lock();
}

void webui_file_unlock(void)
{
    webui__unlock();
}

struct wreq {
    struct gh_sbuf body;
    int too_big;
};

void webui_reconfigure(const struct gh_conf *c)
{
    struct webui_policy p;

    p.idle = c->admin_session_idle / 1000;
    p.lifetime = c->admin_session_lifetime / 1000;
    p.lock = c->admin_lockout_time / 1000;
    p.failures = (int)c->admin_lockout_failures;
    webui_set_policy(&p);
    webui__meetings_groups(c);
}

int webui_configure(const struct webui_hooks *h, const struct gh_conf *c, char *err,
                    size_t errlen)
{
    char dir[1100], audit[1200];

    hooks = h;
    webui_reconfigure(c);
    if (users != NULL)
        return 0; /* the state folder is read at start only */
    started = (int64_t)time(NULL);
    snprintf(dir, sizeof(dir), "%s/admin", c->state_dir);
    users = webui_users_open(dir, err, errlen);
    if (users == NULL)
        return -1;
    snprintf(history_dir, sizeof(history_dir), "%s/history", dir);
    gh_strlcpy(state_dir, c->state_dir, sizeof(state_dir));
    snprintf(audit, sizeof(audit), "%s/audit.log", dir);
    gh_strlcpy(audit_path, audit, sizeof(audit_path));
    if (c->security_log && strcmp(c->security_log, "stderr") != 0 &&
        strcmp(c->security_log, "off") != 0)
        gh_strlcpy(security_log, c->security_log, sizeof(security_log));
    if (webui_audit_open(audit) == -1) {
        snprintf(err, errlen, "%s: cannot open", audit);
        return -1;
    }
    if (webui__meetings_open(c, err, errlen) == -1)
        return -1;
    if (webui__graphs_start(h->metrics) == -1)
        gh_log_warn("admin: the statistics history could not start (no graphs)");
    if (webui_user_count(users) == 0)
        gh_log_warn("admin: no users yet; create one with "
                    "gatehouse admin user add NAME --role admin (there is no default password)");
    return 0;
}

void webui_stop(void)
{
    webui__graphs_stop();
    webui__meetings_close();
    webui_users_close(users);
    users = NULL;
    webui_audit_close();
}

struct webui_users *webui__users(void)
{
    return users;
}

const char *webui__history_dir(void)
{
    return history_dir;
}

const char *webui__state_dir(void)
{
    return state_dir;
}

const char *webui__conf_path(void)
{
    return hooks ? hooks->conf_path : NULL;
}

const char *webui__audit_path(void)
{
    return audit_path;
}

const char *webui__security_log_path(void)
{
    return security_log[0] ? security_log : NULL;
}

enum webui_apply_result webui__apply_text(const char *text, size_t len,
                                          int (*write)(void *ctx, char *err, size_t errlen),
                                          void *ctx, char *err, size_t errlen)
{
    return hooks->apply(text, len, write, ctx, err, errlen);
}

static pthread_mutex_t running_mu = PTHREAD_MUTEX_INITIALIZER;
static char running_ver[17], failed_ver[17], failed_why[600];
static int64_t failed_at;

void webui_note_running(const char *running, const char *failed, const char *why)
{
    pthread_mutex_lock(&running_mu);
    gh_strlcpy(running_ver, running, sizeof(running_ver));
    gh_strlcpy(failed_ver, failed ? failed : "", sizeof(failed_ver));
    gh_strlcpy(failed_why, why ? why : "", sizeof(failed_why));
    failed_at = failed ? (int64_t)time(NULL) : 0;
    pthread_mutex_unlock(&running_mu);
}

void webui__running_version(char out[17])
{
    pthread_mutex_lock(&running_mu);
    memcpy(out, running_ver, 17);
    pthread_mutex_unlock(&running_mu);
}

void webui__running_json(struct gh_sbuf *o)
{
    pthread_mutex_lock(&running_mu);
    gh_sbuf_printf(o, "\"running_version\":");
    gh_json_str(o, running_ver);
    if (failed_ver[0] != '\0') {
        gh_sbuf_printf(o, ",\"reload_failed\":{\"version\":");
        gh_json_str(o, failed_ver);
        gh_sbuf_printf(o, ",\"reason\":");
        gh_json_str(o, failed_why);
        gh_sbuf_printf(o, ",\"time\":%lld}", (long long)failed_at);
    }
    pthread_mutex_unlock(&running_mu);
}

void webui_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                enum MHD_RequestTerminationCode toe)
{
    struct wreq *r = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (r != NULL) {
        if (r->body.p)
            gh_wipe(r->body.p, r->body.len); /* may hold a password */
        free(r->body.p);
        free(r);
        *con_cls = NULL;
    }
}

static void headers(struct MHD_Response *r, const char *type)
{
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'none'; script-src 'self'; style-src 'self'; "
                            "connect-src 'self'; img-src 'self'; form-action 'self'; "
                            "base-uri 'none'; frame-ancestors 'none'");
}

/* The configuration's version for this request's GET answers (every API
 * GET carries it as ETag, so a client can send it back as If-Match). Set
 * by the handler per request; one request per thread at a time. */
static __thread char req_etag[24];

static enum MHD_Result send_buf(struct MHD_Connection *conn, unsigned status, const char *type,
                                char *body, size_t len, const char *etag, const char *cookie,
                                const char *location)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret;

    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    headers(r, type);
    if (etag == NULL && status == 200 && req_etag[0] != '\0')
        etag = req_etag;
    if (etag)
        MHD_add_response_header(r, "ETag", etag);
    if (cookie)
        MHD_add_response_header(r, "Set-Cookie", cookie);
    if (location)
        MHD_add_response_header(r, "Location", location);
    ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result webui__send(struct MHD_Connection *conn, unsigned status, const char *type,
                            char *body, size_t len, const char *etag)
{
    return send_buf(conn, status, type, body, len, etag, NULL, NULL);
}

enum MHD_Result webui__send_download(struct MHD_Connection *conn, char *body, size_t len,
                                     const char *type, const char *name)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    char disp[160];
    enum MHD_Result ret;

    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    headers(r, type);
    snprintf(disp, sizeof(disp), "attachment; filename=\"gatehouse-sp-%.40s.xml\"", name);
    MHD_add_response_header(r, "Content-Disposition", disp);
    ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* A constant text body. */
static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status, const char *type,
                                 const char *text, const char *cookie, const char *location)
{
    return send_buf(conn, status, type, gh_strdup(text), strlen(text), NULL, cookie, location);
}

enum MHD_Result webui__json(struct MHD_Connection *conn, unsigned status, const char *key,
                                const char *msg)
{
    struct gh_sbuf o = {NULL, 0, 0};

    gh_sbuf_printf(&o, "{\"%s\":", key);
    gh_json_str(&o, msg);
    gh_sbuf_printf(&o, "}\n");
    return send_buf(conn, status, "application/json", o.p, o.len, NULL, NULL, NULL);
}

static enum MHD_Result asset(struct MHD_Connection *conn, const char *path)
{
    const struct apps_asset *a;

    for (a = webui_assets; a->path != NULL; a++)
        if (strcmp(a->path, path) == 0) {
            struct MHD_Response *r = MHD_create_response_from_buffer(
                a->len, (void *)(uintptr_t)a->data, MHD_RESPMEM_PERSISTENT);
            enum MHD_Result ret;
            if (r == NULL)
                return MHD_NO;
            headers(r, a->type);
            ret = MHD_queue_response(conn, 200, r);
            MHD_destroy_response(r);
            return ret;
        }
    return webui__json(conn, 404, "error", "not found");
}

static void client_ip(struct MHD_Connection *conn, char *out, size_t len)
{
    gh_xff_last(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For"), out, len);
}

void webui__audit(struct MHD_Connection *conn, const struct webui_session *s, const char *action,
                  const char *object, const char *before, const char *after, const char *result)
{
    char ip[64];

    client_ip(conn, ip, sizeof(ip));
    webui_audit(s->user, webui_role_name(s->role), ip, action, object, before, after, result);
}

void webui__audit_why(struct MHD_Connection *conn, const struct webui_session *s,
                      const char *action, const char *object, const char *before,
                      const char *after, const char *result, const char *why)
{
    char ip[64];

    client_ip(conn, ip, sizeof(ip));
    webui_audit_why(s->user, webui_role_name(s->role), ip, action, object, before, after, result,
                    why);
}

/* Who is asking: a session (cookie) or an API token (bearer). 0 found. */
/* A page's own polling (X-GH-Background: 1) reads but is not a
 * person's activity: it must not hold an untouched tab signed in. */
static int background(struct MHD_Connection *conn)
{
    const char *b = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-GH-Background");

    return b != NULL && strcmp(b, "1") == 0;
}

static int caller(struct MHD_Connection *conn, struct webui_session *s, int *via_cookie,
                  char sid[65])
{
    const char *a = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    const char *c = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, COOKIE);
    struct webui_user u;

    *via_cookie = 0;
    if (a != NULL && strncmp(a, "Bearer ", 7) == 0) {
        if (webui_token_check(users, a + 7, &u) == -1)
            return -1;
        memset(s, 0, sizeof(*s));
        gh_strlcpy(s->user, u.name, sizeof(s->user));
        s->role = u.role;
        return 0;
    }
    int rc;

    if (c == NULL || gh_strlcpy(sid, c, 65) == -1)
        return -1;
    rc = webui_session_get(sid, (int64_t)time(NULL), !background(conn), s);
    if (rc != 0)
        return rc;
    *via_cookie = 1;
    return 0;
}

/* An Origin header, when present, names us. "null" is what a browser sends
 * for a form post from a page with Referrer-Policy no-referrer; the token
 * checked next is what protects those. */
static int origin_ok(struct MHD_Connection *conn)
{
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");

    if (origin == NULL || strcmp(origin, "null") == 0)
        return 1;
    return host != NULL && strncmp(origin, "https://", 8) == 0 && strcmp(origin + 8, host) == 0;
}

/* A browser's state change must carry the session's CSRF token and come
 * from our own origin. */
static int csrf_ok(struct MHD_Connection *conn, const struct webui_session *s, struct wreq *rq)
{
    const char *tok = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-CSRF-Token");
    char *form = NULL;
    int ok;

    if (!origin_ok(conn))
        return 0;
    if (tok == NULL)
        tok = form = gh_form_get(rq->body.p ? rq->body.p : "", rq->body.len, "csrf");
    ok = webui_csrf_ok(s, tok);
    free(form);
    return ok;
}

static enum MHD_Result login(struct MHD_Connection *conn, const char *body, size_t blen)
{
    char *user = gh_form_get(body, blen, "user");
    char *pw = gh_form_get(body, blen, "password");
    char *ltok = gh_form_get(body, blen, "login_token");
    const char *lcookie = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, LOGIN_COOKIE);
    char ip[64], key[80], id[65], cookie[256];
    struct webui_user u;
    struct webui_session s;
    enum webui_login r;
    enum MHD_Result ret;

    client_ip(conn, ip, sizeof(ip));
    snprintf(key, sizeof(key), "admin-login:%s", ip);
    /* Login CSRF: the form's token must equal the SameSite=Strict cookie the
     * login page set, which a cross-site post cannot carry. */
    if (!origin_ok(conn) || ltok == NULL || lcookie == NULL || strlen(ltok) != 32 ||
        strlen(lcookie) != 32 || CRYPTO_memcmp(ltok, lcookie, 32) != 0) {
        ret = webui__json(conn, 403, "error", "cross-origin sign-in refused");
        goto done;
    }
    if (gh_kv_incr(key, strlen(key), 1, 5 * 60 * 1000) > LOGIN_IP_LIMIT) {
        webui_audit(user ? user : "", "", ip, "login", "", "", "", "rate-limited");
        ret = webui__json(conn, 429, "error", "too many attempts; try again later");
        goto done;
    }
    r = user && pw ? webui_login(users, user, pw, (int64_t)time(NULL), &u) : WEBUI_LOGIN_BAD;
    if (r != WEBUI_LOGIN_OK) {
        webui_audit(user ? user : "", "", ip, "login", user ? user : "", "", "",
                    r == WEBUI_LOGIN_LOCKED ? "locked" : "failed");
        /* The same answer for a wrong password, an unknown user and a lock. */
        ret = send_text(conn, 401, "text/html; charset=utf-8",
                       ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                                 "<title>gatehouse</title><link rel=\"stylesheet\" "
                                 "href=\"/admin.css\"></head><body><main class=\"login\">"
                                 "<p id=\"error\">Wrong user name or password, or the account "
                                 "is locked.</p><p><a href=\"/login\">Try again</a></p></main>"
                                 "</body></html>\n"),
                       NULL, NULL);
        goto done;
    }
    if (webui_session_new(&u, (int64_t)time(NULL), id, &s) == -1) {
        ret = webui__json(conn, 503, "error", "the session store is full");
        goto done;
    }
    snprintf(cookie, sizeof(cookie), COOKIE "=%s; Path=/; Secure; HttpOnly; SameSite=Strict; "
                                            "Max-Age=%lld", id, (long long)webui_policy().lifetime);
    webui_audit(u.name, webui_role_name(u.role), ip, "login", u.name, "", "", "ok");
    ret = send_text(conn, 303, "text/plain", "signed in\n", cookie, "/");
    gh_wipe(id, sizeof(id));
done:
    if (pw)
        gh_wipe(pw, strlen(pw));
    free(pw);
    free(user);
    free(ltok);
    return ret;
}

/* The sign-in page with a fresh login token in its form and its cookie. */
static enum MHD_Result login_page(struct MHD_Connection *conn)
{
    const struct apps_asset *a;
    char tok[33], cookie[160];
    unsigned char raw[16];
    const char *mark;
    struct gh_sbuf o = {NULL, 0, 0};
    size_t i;

    for (a = webui_assets; a->path != NULL && strcmp(a->path, "/login.html") != 0; a++)
        ;
    if (a->path == NULL || RAND_bytes(raw, sizeof(raw)) != 1)
        return webui__json(conn, 500, "error", "no login page");
    for (i = 0; i < sizeof(raw); i++)
        snprintf(tok + 2 * i, 3, "%02x", raw[i]);
    gh_sbuf_printf(&o, "%.*s", (int)a->len, (const char *)a->data);
    mark = strstr(o.p, "@LOGIN_TOKEN@");
    if (mark == NULL) {
        free(o.p);
        return webui__json(conn, 500, "error", "no login page");
    }
    {
        struct gh_sbuf p = {NULL, 0, 0};
        size_t at = (size_t)(mark - o.p);
        gh_sbuf_printf(&p, "%.*s%s%s", (int)at, o.p, tok, o.p + at + strlen("@LOGIN_TOKEN@"));
        free(o.p);
        o = p;
    }
    snprintf(cookie, sizeof(cookie), LOGIN_COOKIE "=%s; Path=/; Secure; HttpOnly; "
                                                  "SameSite=Strict; Max-Age=600", tok);
    return send_buf(conn, 200, "text/html; charset=utf-8", o.p, o.len, NULL, cookie, NULL);
}

static enum MHD_Result config_get(struct MHD_Connection *conn)
{
    size_t len = 0;
    char *text, ver[17], etag[24];
    struct gh_sbuf o = {NULL, 0, 0};

    if (hooks->conf_path == NULL)
        return webui__json(conn, 409, "error", "running the embedded default topology: start with "
                                            "-c FILE to manage a configuration");
    text = webui__read_file(hooks->conf_path, &len);
    if (text == NULL)
        return webui__json(conn, 500, "error", "cannot read the configuration");
    webui__version(text, len, ver);
    snprintf(etag, sizeof(etag), "\"%s\"", ver);
    gh_sbuf_printf(&o, "{\"version\":\"%s\",", ver);
    webui__running_json(&o);
    gh_sbuf_printf(&o, ",\"path\":");
    gh_json_str(&o, hooks->conf_path);
    gh_sbuf_printf(&o, ",\"text\":");
    gh_json_strn(&o, text, len);
    gh_sbuf_printf(&o, "}\n");
    free(text);
    return send_buf(conn, 200, "application/json", o.p, o.len, etag, NULL, NULL);
}

struct server_op {
    char svc[128], srv[128];
    const char *state;
    long weight;
};

static char *server_transform(const char *text, size_t len, void *ctx, unsigned *status,
                              char *err, size_t errlen)
{
    const struct server_op *op = ctx;

    (void)status;
    return webui__set_server(text, len, op->svc, op->srv, op->state, op->weight, err, errlen);
}

/* POST /api/v1/servers/<service>/<server>/state (state=up|drain|maint) or
 * .../weight (weight=1..1000). */
static enum MHD_Result server_change(struct webui_call *c, int is_state)
{
    struct MHD_Connection *conn = c->conn;
    const struct webui_session *s = c->s;
    char obj[300], wtxt[24], extra[64];
    struct server_op op = {{0}, {0}, NULL, 0};
    struct webui_change ch = {0};
    char *state = NULL, *weight_s;
    enum MHD_Result ret;

    if (strlen(c->arg[0]) >= sizeof(op.svc) || strlen(c->arg[1]) >= sizeof(op.srv))
        return webui__json(conn, 404, "error", "not found");
    gh_strlcpy(op.svc, c->arg[0], sizeof(op.svc));
    gh_strlcpy(op.srv, c->arg[1], sizeof(op.srv));
    snprintf(obj, sizeof(obj), "server %s/%s", op.svc, op.srv);
    if (is_state) {
        state = gh_form_get(c->body, c->blen, "state");
        if (state == NULL ||
            (strcmp(state, "up") && strcmp(state, "drain") && strcmp(state, "maint"))) {
            free(state);
            return webui__json(conn, 422, "error", "state: up, drain or maint");
        }
        gh_strlcpy(wtxt, state, sizeof(wtxt));
        op.state = state;
    } else {
        weight_s = gh_form_get(c->body, c->blen, "weight");
        if (weight_s == NULL || gh_parse_long(weight_s, 1, 1000, &op.weight) == -1) {
            free(weight_s);
            return webui__json(conn, 422, "error", "weight: a whole number from 1 to 1000");
        }
        snprintf(wtxt, sizeof(wtxt), "weight %ld", op.weight);
        free(weight_s);
    }
    snprintf(extra, sizeof(extra), "\"change\":\"%s\"", wtxt);
    ch.action = is_state ? "server-state" : "server-weight";
    ch.object = obj;
    ch.after = wtxt;
    ch.transform = server_transform;
    ch.ctx = &op;
    ch.extra = extra;
    ret = webui__apply(conn, s, &ch);
    free(state);
    return ret;
}

/* The handlers of routes.c that live here. */
enum MHD_Result webui__r_health(struct webui_call *c)
{
    return send_text(c->conn, 200, "text/html", "<html><body>OK</body></html>\n", NULL, NULL);
}

enum MHD_Result webui__r_metrics(struct webui_call *c)
{
    size_t len = 0;
    char *m = hooks->metrics(0, &len);

    return send_buf(c->conn, 200, "text/plain; version=0.0.4; charset=utf-8", m, len, NULL, NULL,
                    NULL);
}

enum MHD_Result webui__r_login_page(struct webui_call *c)
{
    return login_page(c->conn);
}

enum MHD_Result webui__r_login(struct webui_call *c)
{
    return login(c->conn, c->body, c->blen);
}

enum MHD_Result webui__r_asset(struct webui_call *c)
{
    return asset(c->conn, c->url);
}

enum MHD_Result webui__r_favicon(struct webui_call *c)
{
    return send_text(c->conn, 204, "image/x-icon", "", NULL, NULL);
}

enum MHD_Result webui__r_home(struct webui_call *c)
{
    return asset(c->conn, "/admin.html");
}

enum MHD_Result webui__r_logout(struct webui_call *c)
{
    char ip[64];

    client_ip(c->conn, ip, sizeof(ip));
    if (c->via_cookie && webui_session_end(c->sid) == -1) {
        /* Saying "signed out" would be false: the session lives on. */
        webui_audit(c->s->user, webui_role_name(c->s->role), ip, "logout", c->s->user, "", "",
                    "failed");
        return send_text(c->conn, 503, "text/plain",
                         "not signed out: the shared store did not answer; try again\n", NULL,
                         NULL);
    }
    webui_audit(c->s->user, webui_role_name(c->s->role), ip, "logout", c->s->user, "", "", "ok");
    return send_text(c->conn, 303, "text/plain", "signed out\n",
                     COOKIE "=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0", "/login");
}

enum MHD_Result webui__r_whoami(struct webui_call *c)
{
    struct gh_sbuf o = {NULL, 0, 0};
    struct webui_policy p = webui_policy();
    const struct webui_session *s = c->s;

    gh_sbuf_printf(&o, "{\"user\":");
    gh_json_str(&o, s->user);
    gh_sbuf_printf(&o, ",\"role\":\"%s\",\"csrf\":\"%s\",\"version\":\"%s\","
                       "\"uptime\":%lld,\"policy\":{\"session_idle\":%lld,"
                       "\"session_lifetime\":%lld,\"lockout_failures\":%d,"
                       "\"lockout_time\":%lld}}\n",
                   webui_role_name(s->role), s->csrf, GH_VERSION,
                   (long long)((int64_t)time(NULL) - started), (long long)p.idle,
                   (long long)p.lifetime, p.failures, (long long)p.lock);
    return send_buf(c->conn, 200, "application/json", o.p, o.len, NULL, NULL, NULL);
}

/* What is left before the idle and absolute limits end this session: the
 * page warns before it happens. */
enum MHD_Result webui__r_session(struct webui_call *c)
{
    struct gh_sbuf o = {NULL, 0, 0};
    struct webui_policy p = webui_policy();
    long long now = (long long)time(NULL), idle = 0, life = 0;

    if (c->via_cookie) {
        idle = (long long)(c->s->last_seen + p.idle) - now;
        life = (long long)(c->s->created + p.lifetime) - now;
    }
    gh_sbuf_printf(&o, "{\"idle_left\":%lld,\"lifetime_left\":%lld,\"idle\":%lld}\n",
                   idle < 0 ? 0 : idle, life < 0 ? 0 : life, (long long)p.idle);
    return send_buf(c->conn, 200, "application/json", o.p, o.len, NULL, NULL, NULL);
}

enum MHD_Result webui__r_stats_history(struct webui_call *c)
{
    size_t len = 0;
    char *m = webui__graphs_json(&len);

    return send_buf(c->conn, 200, "application/json", m, len, NULL, NULL, NULL);
}

enum MHD_Result webui__r_stats(struct webui_call *c)
{
    size_t len = 0;
    char *m = hooks->metrics(1, &len);

    return send_buf(c->conn, 200, "application/json", m, len, NULL, NULL, NULL);
}

/* Each appliance of the cluster and the version it runs (main's). */
enum MHD_Result webui__r_cluster(struct webui_call *c)
{
    size_t len = 0;
    char *m = hooks->cluster ? hooks->cluster(&len) : NULL;

    if (m == NULL) {
        m = gh_strdup("{\"shared\":false}");
        len = strlen(m);
    }
    return send_buf(c->conn, 200, "application/json", m, len, NULL, NULL, NULL);
}

enum MHD_Result webui__r_config(struct webui_call *c)
{
    return config_get(c->conn);
}

enum MHD_Result webui__r_server_state(struct webui_call *c)
{
    return server_change(c, 1);
}

enum MHD_Result webui__r_server_weight(struct webui_call *c)
{
    return server_change(c, 0);
}

/* The route table's dispatch: the caller is looked up only for routes
 * that need one, and a caller that is not signed in learns nothing of
 * which paths exist. */
static enum MHD_Result route(struct MHD_Connection *conn, const char *url, const char *method,
                             struct wreq *rq)
{
    const struct webui_route *hit = NULL;
    struct webui_session s;
    struct webui_call c;
    char sid[65] = "";
    int via_cookie = 0, known = 0, rc, post = strcmp(method, "POST") == 0;
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    size_t i;

    memset(&c, 0, sizeof(c));
    c.conn = conn;
    c.url = url;
    c.method = method;
    c.body = rq->body.p ? rq->body.p : "";
    c.blen = rq->body.len;
    for (i = 0; i < webui__nroutes && hit == NULL; i++) {
        const struct webui_route *r = &webui__routes[i];
        if (!webui__route_match(r->pattern, url, c.arg))
            continue;
        known = 1;
        if ((post && strcmp(r->method, "POST") == 0) || (get && strcmp(r->method, "GET") == 0))
            hit = r;
    }
    if (hit != NULL && hit->need == WEBUI_NEED_PUBLIC)
        return hit->fn(&c);
    rc = caller(conn, &s, &via_cookie, sid);
    if (rc == -2) /* the session could not be checked: neither signed in nor out */
        return webui__json(conn, 503, "error",
                           "the shared store did not answer, so the session cannot be checked; "
                           "try again shortly");
    if (rc != 0) {
        if (get && strncmp(url, "/api/", 5) != 0)
            return send_text(conn, 303, "text/plain", "sign in\n", NULL, "/login");
        return webui__json(conn, 401, "error", "sign in, or send a bearer token");
    }
    if (post && via_cookie && !csrf_ok(conn, &s, rq)) {
        char ip[64];
        client_ip(conn, ip, sizeof(ip));
        webui_audit(s.user, webui_role_name(s.role), ip, "csrf", url, "", "", "refused");
        return webui__json(conn, 403, "error", "missing or wrong CSRF token, or cross-origin");
    }
    if (hit == NULL)
        return known ? webui__json(conn, 405, "error", "method not allowed")
                     : webui__json(conn, 404, "error", "not found");
    if (!webui__need_met(s.role, hit->need))
        return webui__json(conn, 403, "error", hit->refusal ? hit->refusal : "your role may not do this");
    c.s = &s;
    c.via_cookie = via_cookie;
    c.sid = sid;
    return hit->fn(&c);
}

enum MHD_Result webui_handler(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **con_cls)
{
    struct wreq *rq = *con_cls;
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

    (void)cls;
    (void)version;
    if (rq == NULL) {
        *con_cls = gh_calloc(1, sizeof(struct wreq));
        return MHD_YES;
    }
    if (*size != 0) {
        if (rq->body.len + *size > (strcmp(url, "/api/v1/system/restore") == 0
                                        ? WEBUI_BUNDLE_MAX : WEBUI_BODY_MAX))
            rq->too_big = 1;
        else
            gh_sbuf_append(&rq->body, data, *size);
        *size = 0;
        return MHD_YES;
    }
    if (rq->too_big)
        return webui__json(conn, 413, "error", "request body too large");
    req_etag[0] = '\0';
    if (get && strncmp(url, "/api/", 5) == 0 && hooks != NULL && hooks->conf_path != NULL) {
        char ver[17];
        if (webui__file_version(hooks->conf_path, ver) == 0)
            snprintf(req_etag, sizeof(req_etag), "\"%s\"", ver);
    }
    if (users == NULL)
        return webui__json(conn, 503, "error", "admin unavailable");
    return route(conn, url, method, rq);
}
