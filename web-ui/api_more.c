/*
 * The rest of the admin JSON API:
 *
 *   GET  /api/v1/config/history            previous versions, newest first
 *   GET  /api/v1/config/history/<id>       one of them, with a diff to the current file
 *   POST /api/v1/config/rollback           id=..., If-Match: the current version
 *   GET  /api/v1/logs/audit?limit=N        the audit log's last entries (admins, user admins)
 *   GET  /api/v1/logs/security?reason=&host=&ip=&limit=N
 *   GET  /api/v1/users                     (user admins)
 *   POST /api/v1/users                     name, role, password, current_password
 *   POST /api/v1/users/<name>/unlock|delete  current_password
 *
 * Changes to users ask for the acting user's password again.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/common.h"
#include "webui_int.h"

static enum MHD_Result reply_json(struct MHD_Connection *conn, unsigned status, char *body,
                                  const char *etag)
{
    return webui__send(conn, status, "application/json", body, strlen(body), etag);
}

static int valid_history_id(const char *id)
{
    size_t n = strlen(id);

    return n > 5 && n < 64 && strspn(id, "0123456789abcdef-") == n - 5 &&
           strcmp(id + n - 5, ".conf") == 0;
}

static enum MHD_Result history_list(struct MHD_Connection *conn)
{
    struct dirent **list = NULL;
    struct gh_sbuf o = {NULL, 0, 0};
    int n = scandir(webui__history_dir(), &list, NULL, alphasort), i, first = 1;

    gh_sbuf_printf(&o, "{\"versions\":[");
    for (i = n - 1; i >= 0; i--) {
        const char *d = list[i]->d_name;
        if (valid_history_id(d)) {
            char secs[11];
            long long t;
            memcpy(secs, d, 10);
            secs[10] = '\0';
            t = strtoll(secs, NULL, 10);
            const char *dash = strchr(d, '-');
            char mp[1400], *meta;
            size_t ml = 0;
            gh_sbuf_printf(&o, "%s{\"id\":\"%s\",\"time\":%lld,\"version\":\"%.16s\"",
                           first ? "" : ",", d, t, dash ? dash + 1 : "");
            /* The note written with it: who replaced this version and
             * what changed (it is our own JSON object, embedded as is). */
            snprintf(mp, sizeof(mp), "%s/%.*s.meta", webui__history_dir(),
                     (int)(strlen(d) - 5), d);
            meta = webui__read_file(mp, &ml);
            while (meta != NULL && ml > 0 && (meta[ml - 1] == '\n' || meta[ml - 1] == ' '))
                meta[--ml] = '\0';
            if (meta != NULL && ml > 2 && meta[0] == '{' && meta[ml - 1] == '}' &&
                memchr(meta, '\n', ml) == NULL)
                gh_sbuf_printf(&o, ",\"change\":%s", meta);
            free(meta);
            gh_sbuf_printf(&o, "}");
            first = 0;
        }
        free(list[i]);
    }
    free(list);
    gh_sbuf_printf(&o, "]}\n");
    return reply_json(conn, 200, o.p, NULL);
}

/* A line diff good for the edits the UI makes: the common head and tail
 * (whole lines) are skipped, the middle is shown as removed and added. */
static void emit(struct gh_sbuf *o, const char *p, const char *end, const char *sign, int *first)
{
    while (p < end) {
        const char *q = memchr(p, '\n', (size_t)(end - p));
        struct gh_sbuf line = {NULL, 0, 0};
        q = q ? q : end;
        gh_sbuf_printf(&line, "%s", sign);
        gh_sbuf_append(&line, p, (size_t)(q - p));
        gh_sbuf_printf(o, "%s", *first ? "" : ",");
        gh_json_strn(o, line.p, line.len);
        free(line.p);
        *first = 0;
        p = q < end ? q + 1 : q;
    }
}

static void diff(struct gh_sbuf *o, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), pre, suf;
    int first = 1;

    webui__changed_span(a, b, &pre, &suf);
    emit(o, a + pre, a + la - suf, "- ", &first);
    emit(o, b + pre, b + lb - suf, "+ ", &first);
}

static enum MHD_Result history_get(struct MHD_Connection *conn, const char *id)
{
    char path[1400];
    size_t len = 0, clen = 0;
    char *text, *cur;
    struct gh_sbuf o = {NULL, 0, 0};

    if (!valid_history_id(id))
        return webui__json(conn, 404, "error", "not found");
    snprintf(path, sizeof(path), "%s/%s", webui__history_dir(), id);
    text = webui__read_file(path, &len);
    if (text == NULL)
        return webui__json(conn, 404, "error", "not found");
    cur = webui__conf_path() ? webui__read_file(webui__conf_path(), &clen) : NULL;
    gh_sbuf_printf(&o, "{\"id\":\"%s\",\"text\":", id);
    gh_json_strn(&o, text, len);
    gh_sbuf_printf(&o, ",\"diff_to_current\":[");
    if (cur != NULL)
        diff(&o, text, cur);
    gh_sbuf_printf(&o, "]}\n");
    free(text);
    free(cur);
    return reply_json(conn, 200, o.p, NULL);
}

static char *rollback_transform(const char *text, size_t len, void *ctx, unsigned *status,
                                char *err, size_t errlen)
{
    size_t hlen = 0;
    char *old = webui__read_file(ctx, &hlen);

    (void)text;
    (void)len;
    if (old == NULL) {
        *status = 404;
        snprintf(err, errlen, "no such version in the history");
    }
    return old;
}

static enum MHD_Result rollback(struct MHD_Connection *conn, const struct webui_session *s,
                                const char *body, size_t blen)
{
    char *id = gh_form_get(body, blen, "id"), path[1400];
    struct webui_change ch = {0};
    enum MHD_Result ret;

    if (id == NULL || !valid_history_id(id) || webui__conf_path() == NULL) {
        free(id);
        return webui__json(conn, 404, "error", "not found");
    }
    snprintf(path, sizeof(path), "%s/%s", webui__history_dir(), id);
    ch.action = "rollback";
    ch.object = id;
    ch.transform = rollback_transform;
    ch.ctx = path;
    ret = webui__apply(conn, s, &ch);
    free(id);
    return ret;
}

/* The last `limit` lines of a JSON-lines file that contain every needle. */
static enum MHD_Result tail_json(struct MHD_Connection *conn, const char *path, long limit,
                                 const char *const *needles, size_t nneedles)
{
    size_t len = 0;
    char *text = path ? webui__read_file_tail(path, 4 * 1024 * 1024, &len) : NULL;
    struct gh_sbuf o = {NULL, 0, 0};
    const char **lines;
    size_t n = 0, cap = 1024, i, k;
    char *p;
    long shown = 0;

    gh_sbuf_printf(&o, "{\"entries\":[");
    if (text != NULL) {
        lines = gh_calloc(cap, sizeof(*lines));
        p = text;
        while (*p) {
            char *nl = strchr(p, '\n');
            if (nl)
                *nl = '\0';
            if (p[0] == '{') {
                int keep = 1;
                for (k = 0; k < nneedles; k++)
                    if (needles[k] && !strstr(p, needles[k]))
                        keep = 0;
                if (keep) {
                    if (n == cap) {
                        cap *= 2;
                        lines = realloc(lines, cap * sizeof(*lines));
                        if (lines == NULL)
                            abort();
                    }
                    lines[n++] = p;
                }
            }
            if (!nl)
                break;
            p = nl + 1;
        }
        for (i = n; i > 0 && shown < limit; i--, shown++)
            gh_sbuf_printf(&o, "%s%s", shown ? "," : "", lines[i - 1]);
        free(lines);
        free(text);
    }
    gh_sbuf_printf(&o, "]}\n");
    return reply_json(conn, 200, o.p, NULL);
}

static enum MHD_Result logs(struct MHD_Connection *conn, const char *which)
{
    const char *l = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
    long limit = 100;
    char nr[160], nh[300], ni[120];
    const char *needles[3] = {NULL, NULL, NULL};
    const char *q;

    if (l != NULL && gh_parse_long(l, 1, 10000, &limit) == -1)
        return webui__json(conn, 422, "error", "limit: 1 to 10000");
    if (strcmp(which, "audit") == 0) /* the route allows admins and user admins only */
        return tail_json(conn, webui__audit_path(), limit, needles, 0);
    /* Filters match the JSON fields exactly as the proxy writes them. */
    if ((q = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "reason")) && *q) {
        snprintf(nr, sizeof(nr), "\"reason\":\"%.100s", q);
        needles[0] = nr;
    }
    if ((q = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "host")) && *q) {
        snprintf(nh, sizeof(nh), "\"host\":\"%.200s\"", q);
        needles[1] = nh;
    }
    if ((q = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "ip")) && *q) {
        /* Entries carry ip:port ([v6]:port): an address alone matches every
         * port of it; ip:port (or [v6]:port) matches that one. */
        int v6 = strchr(q, ':') != NULL && strchr(q, '.') == NULL && q[0] != '[';
        int exact = q[0] == '[' || (strchr(q, ':') != NULL && strchr(q, '.') != NULL);
        if (strchr(q, '"') != NULL || strchr(q, '\\') != NULL)
            return webui__json(conn, 422, "error", "ip: an address, or address:port");
        if (exact)
            snprintf(ni, sizeof(ni), "\"client\":\"%.60s\"", q);
        else
            snprintf(ni, sizeof(ni), "\"client\":\"%s%.60s%s:", v6 ? "[" : "", q, v6 ? "]" : "");
        needles[2] = ni;
    }
    return tail_json(conn, webui__security_log_path(), limit, needles, 3);
}

struct ulist {
    struct gh_sbuf *o;
    int n;
};

static void add_user(const struct webui_user *u, void *arg)
{
    struct ulist *l = arg;

    gh_sbuf_printf(l->o, "%s{\"name\":", l->n++ ? "," : "");
    gh_json_str(l->o, u->name);
    gh_sbuf_printf(l->o, ",\"role\":\"%s\",\"locked\":%s}", webui_role_name(u->role),
                   u->locked_until > (int64_t)time(NULL) ? "true" : "false");
}

/* Re-authentication for user changes: the acting user's password, again. */
static int reauth(struct webui_call *c)
{
    char *cur = gh_form_get(c->body, c->blen, "current_password");
    int ok = cur != NULL && webui_login(webui__users(), c->s->user, cur, (int64_t)time(NULL),
                                        NULL) == WEBUI_LOGIN_OK;

    if (cur)
        gh_wipe(cur, strlen(cur));
    free(cur);
    if (!ok)
        webui__audit(c->conn, c->s, "reauth", c->s->user, "", "", "failed");
    return ok;
}

enum MHD_Result webui__r_users(struct webui_call *c)
{
    struct gh_sbuf o = {NULL, 0, 0};
    struct ulist l = {&o, 0};

    gh_sbuf_printf(&o, "{\"users\":[");
    webui_user_list(webui__users(), add_user, &l);
    gh_sbuf_printf(&o, "]}\n");
    return reply_json(c->conn, 200, o.p, NULL);
}

enum MHD_Result webui__r_user_add(struct webui_call *c)
{
    struct MHD_Connection *conn = c->conn;
    struct gh_sbuf o = {NULL, 0, 0};
    char err[256], *name, *role, *pw;
    enum webui_role r;
    enum MHD_Result ret;

    if (!reauth(c))
        return webui__json(conn, 403, "error", "give your own password again (current_password)");
    name = gh_form_get(c->body, c->blen, "name");
    role = gh_form_get(c->body, c->blen, "role");
    pw = gh_form_get(c->body, c->blen, "password");
    if (name == NULL || role == NULL || pw == NULL || webui_role_parse(role, &r) == -1) {
        ret = webui__json(conn, 422, "error", "name, role (read-only, operator, admin, user-admin) and "
                             "password are needed");
    } else if (webui_user_add(webui__users(), name, r, pw, err, sizeof(err)) == -1) {
        webui__audit(conn, c->s, "user-add", name, "", role, "invalid");
        ret = webui__json(conn, 422, "error", err);
    } else {
        webui__audit(conn, c->s, "user-add", name, "", role, "ok");
        gh_sbuf_printf(&o, "{\"created\":");
        gh_json_str(&o, name);
        gh_sbuf_printf(&o, "}\n");
        ret = reply_json(conn, 201, o.p, NULL);
    }
    if (pw)
        gh_wipe(pw, strlen(pw));
    free(name);
    free(role);
    free(pw);
    return ret;
}

static enum MHD_Result user_act(struct webui_call *c, int del)
{
    const char *who = c->arg[0];
    int ok;

    if (!reauth(c))
        return webui__json(c->conn, 403, "error",
                           "give your own password again (current_password)");
    if (strlen(who) >= 64 || (del && strcmp(who, c->s->user) == 0))
        return webui__json(c->conn, 404, "error", "not found");
    ok = (del ? webui_user_delete(webui__users(), who) : webui_user_unlock(webui__users(), who)) ==
         0;
    webui__audit(c->conn, c->s, del ? "delete" : "unlock", who, "", "", ok ? "ok" : "failed");
    return ok ? reply_json(c->conn, 200, gh_strdup("{\"done\":true}\n"), NULL)
              : webui__json(c->conn, 404, "error", "no such user");
}

enum MHD_Result webui__r_user_unlock(struct webui_call *c)
{
    return user_act(c, 0);
}

enum MHD_Result webui__r_user_delete(struct webui_call *c)
{
    return user_act(c, 1);
}

static void add_session(const char *handle, const struct webui_session *s, void *arg)
{
    struct ulist *l = arg;

    gh_sbuf_printf(l->o, "%s{\"handle\":\"%s\",\"user\":", l->n++ ? "," : "", handle);
    gh_json_str(l->o, s->user);
    gh_sbuf_printf(l->o, ",\"role\":\"%s\",\"created\":%lld,\"last_seen\":%lld}",
                   webui_role_name(s->role), (long long)s->created, (long long)s->last_seen);
}

/* GET /api/v1/sessions, POST /api/v1/sessions/<handle>/end: user admins
 * and admins (the route says so). */
enum MHD_Result webui__r_sessions(struct webui_call *c)
{
    struct gh_sbuf o = {NULL, 0, 0};
    struct ulist l = {&o, 0};

    gh_sbuf_printf(&o, "{\"sessions\":[");
    webui_session_list(add_session, &l);
    gh_sbuf_printf(&o, "]}\n");
    return reply_json(c->conn, 200, o.p, NULL);
}

enum MHD_Result webui__r_session_end(struct webui_call *c)
{
    int rc = strlen(c->arg[0]) == 16 ? webui_session_end_handle(c->arg[0]) : -1;

    if (rc == -2) {
        webui__audit(c->conn, c->s, "session-end", c->arg[0], "", "", "failed");
        return webui__json(c->conn, 503, "error",
                           "the shared store did not answer: the session may still be valid; "
                           "try again");
    }
    if (rc == -1)
        return webui__json(c->conn, 404, "error", "no such session");
    webui__audit(c->conn, c->s, "session-end", c->arg[0], "", "", "ok");
    return reply_json(c->conn, 200, gh_strdup("{\"ended\":true}\n"), NULL);
}

/* POST /api/v1/password: current_password, new_password (anyone, for
 * themselves; the old password is asked again). */
static enum MHD_Result password_api(struct MHD_Connection *conn, const struct webui_session *s,
                                    const char *body, size_t blen)
{
    char *cur = gh_form_get(body, blen, "current_password");
    char *nw = gh_form_get(body, blen, "new_password"), err[256];
    enum MHD_Result ret;

    if (cur == NULL || webui_login(webui__users(), s->user, cur, (int64_t)time(NULL), NULL) !=
                           WEBUI_LOGIN_OK) {
        webui__audit(conn, s, "password-change", s->user, "", "", "reauth-failed");
        ret = webui__json(conn, 403, "error", "give your current password (current_password)");
    } else if (nw == NULL ||
               webui_user_set_password(webui__users(), s->user, nw, err, sizeof(err)) == -1) {
        ret = webui__json(conn, 422, "error", nw ? err : "new_password is needed");
    } else {
        webui__audit(conn, s, "password-change", s->user, "", "", "ok");
        ret = reply_json(conn, 200, gh_strdup("{\"changed\":true}\n"), NULL);
    }
    if (cur)
        gh_wipe(cur, strlen(cur));
    if (nw)
        gh_wipe(nw, strlen(nw));
    free(cur);
    free(nw);
    return ret;
}

enum MHD_Result webui__r_history(struct webui_call *c)
{
    return history_list(c->conn);
}

enum MHD_Result webui__r_history_get(struct webui_call *c)
{
    return history_get(c->conn, c->arg[0]);
}

enum MHD_Result webui__r_rollback(struct webui_call *c)
{
    return rollback(c->conn, c->s, c->body, c->blen);
}

enum MHD_Result webui__r_log_audit(struct webui_call *c)
{
    return logs(c->conn, "audit");
}

enum MHD_Result webui__r_log_security(struct webui_call *c)
{
    return logs(c->conn, "security");
}

enum MHD_Result webui__r_password(struct webui_call *c)
{
    return password_api(c->conn, c->s, c->body, c->blen);
}
