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
    char esc[2400];

    while (p < end) {
        const char *q = memchr(p, '\n', (size_t)(end - p));
        q = q ? q : end;
        gh_json_escape(esc, sizeof(esc), p, (size_t)(q - p), 1000);
        gh_sbuf_printf(o, "%s\"%s%s\"", *first ? "" : ",", sign, esc);
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
    char *text, *cur, *esc;
    struct gh_sbuf o = {NULL, 0, 0};

    if (!valid_history_id(id))
        return webui__json(conn, 404, "error", "not found");
    snprintf(path, sizeof(path), "%s/%s", webui__history_dir(), id);
    text = webui__read_file(path, &len);
    if (text == NULL)
        return webui__json(conn, 404, "error", "not found");
    cur = webui__conf_path() ? webui__read_file(webui__conf_path(), &clen) : NULL;
    esc = gh_calloc(1, len * 6 + 16);
    gh_json_escape(esc, len * 6 + 16, text, len, len);
    gh_sbuf_printf(&o, "{\"id\":\"%s\",\"text\":\"%s\",\"diff_to_current\":[", id, esc);
    if (cur != NULL)
        diff(&o, text, cur);
    gh_sbuf_printf(&o, "]}\n");
    free(esc);
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

    if (!webui_allowed(s->role, WEBUI_CONFIG_WRITE)) {
        free(id);
        return webui__json(conn, 403, "error", "your role may not change the configuration");
    }
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

static enum MHD_Result logs(struct MHD_Connection *conn, const struct webui_session *s,
                            const char *which)
{
    const char *l = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
    long limit = 100;
    char nr[160], nh[300], ni[120];
    const char *needles[3] = {NULL, NULL, NULL};
    const char *q;

    if (l != NULL && gh_parse_long(l, 1, 10000, &limit) == -1)
        return webui__json(conn, 422, "error", "limit: 1 to 10000");
    if (strcmp(which, "audit") == 0) {
        if (!webui_allowed(s->role, WEBUI_CONFIG_WRITE) && !webui_allowed(s->role, WEBUI_USERS))
            return webui__json(conn, 403, "error", "the audit log is for admins and user admins");
        return tail_json(conn, webui__audit_path(), limit, needles, 0);
    }
    if (strcmp(which, "security") != 0)
        return webui__json(conn, 404, "error", "not found");
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

    gh_sbuf_printf(l->o, "%s{\"name\":\"%s\",\"role\":\"%s\",\"locked\":%s}", l->n++ ? "," : "",
                   u->name, webui_role_name(u->role),
                   u->locked_until > (int64_t)time(NULL) ? "true" : "false");
}

static enum MHD_Result users_api(struct MHD_Connection *conn, const struct webui_session *s,
                                 const char *method, const char *rest, const char *body,
                                 size_t blen)
{
    struct gh_sbuf o = {NULL, 0, 0};
    struct ulist l = {&o, 0};
    char err[256], *cur, *name, *role, *pw;
    enum webui_role r;
    enum MHD_Result ret;
    int ok;

    if (!webui_allowed(s->role, WEBUI_USERS))
        return webui__json(conn, 403, "error", "only user admins manage users");
    if (strcmp(method, "GET") == 0 && rest[0] == '\0') {
        gh_sbuf_printf(&o, "{\"users\":[");
        webui_user_list(webui__users(), add_user, &l);
        gh_sbuf_printf(&o, "]}\n");
        return reply_json(conn, 200, o.p, NULL);
    }
    if (strcmp(method, "POST") != 0)
        return webui__json(conn, 405, "error", "method not allowed");
    /* Re-authentication: the acting user's password, again. */
    cur = gh_form_get(body, blen, "current_password");
    ok = cur != NULL && webui_login(webui__users(), s->user, cur, (int64_t)time(NULL), NULL) ==
                            WEBUI_LOGIN_OK;
    if (cur)
        gh_wipe(cur, strlen(cur));
    free(cur);
    if (!ok) {
        webui__audit(conn, s, "reauth", s->user, "", "", "failed");
        return webui__json(conn, 403, "error", "give your own password again (current_password)");
    }
    if (rest[0] == '\0') {
        name = gh_form_get(body, blen, "name");
        role = gh_form_get(body, blen, "role");
        pw = gh_form_get(body, blen, "password");
        if (name == NULL || role == NULL || pw == NULL || webui_role_parse(role, &r) == -1) {
            ret = webui__json(conn, 422, "error", "name, role (read-only, operator, admin, user-admin) and "
                                 "password are needed");
        } else if (webui_user_add(webui__users(), name, r, pw, err, sizeof(err)) == -1) {
            webui__audit(conn, s, "user-add", name, "", role, "invalid");
            ret = webui__json(conn, 422, "error", err);
        } else {
            webui__audit(conn, s, "user-add", name, "", role, "ok");
            gh_sbuf_printf(&o, "{\"created\":\"%s\"}\n", name);
            ret = reply_json(conn, 201, o.p, NULL);
        }
        if (pw)
            gh_wipe(pw, strlen(pw));
        free(name);
        free(role);
        free(pw);
        return ret;
    }
    {
        char who[64];
        const char *act = strchr(rest + 1, '/');
        if (rest[0] != '/' || act == NULL || (size_t)(act - rest - 1) >= sizeof(who))
            return webui__json(conn, 404, "error", "not found");
        snprintf(who, sizeof(who), "%.*s", (int)(act - rest - 1), rest + 1);
        if (strcmp(act, "/unlock") == 0)
            ok = webui_user_unlock(webui__users(), who) == 0;
        else if (strcmp(act, "/delete") == 0 && strcmp(who, s->user) != 0)
            ok = webui_user_delete(webui__users(), who) == 0;
        else
            return webui__json(conn, 404, "error", "not found");
        webui__audit(conn, s, act + 1, who, "", "", ok ? "ok" : "failed");
        return ok ? reply_json(conn, 200, gh_strdup("{\"done\":true}\n"), NULL)
                  : webui__json(conn, 404, "error", "no such user");
    }
}

static void add_session(const char *handle, const struct webui_session *s, void *arg)
{
    struct ulist *l = arg;

    gh_sbuf_printf(l->o, "%s{\"handle\":\"%s\",\"user\":\"%s\",\"role\":\"%s\","
                         "\"created\":%lld,\"last_seen\":%lld}",
                   l->n++ ? "," : "", handle, s->user, webui_role_name(s->role),
                   (long long)s->created, (long long)s->last_seen);
}

/* GET /api/v1/sessions, POST /api/v1/sessions/<handle>/end: user admins
 * and admins. */
static enum MHD_Result sessions_api(struct MHD_Connection *conn, const struct webui_session *s,
                                    const char *method, const char *rest)
{
    struct gh_sbuf o = {NULL, 0, 0};
    struct ulist l = {&o, 0};
    char handle[20];

    if (!webui_allowed(s->role, WEBUI_USERS) && !webui_allowed(s->role, WEBUI_CONFIG_WRITE))
        return webui__json(conn, 403, "error", "sessions are for admins and user admins");
    if (strcmp(method, "GET") == 0 && *rest == '\0') {
        gh_sbuf_printf(&o, "{\"sessions\":[");
        webui_session_list(add_session, &l);
        gh_sbuf_printf(&o, "]}\n");
        return reply_json(conn, 200, o.p, NULL);
    }
    if (strcmp(method, "POST") == 0 && rest[0] == '/' && strlen(rest) == 1 + 16 + 4 &&
        strcmp(rest + 17, "/end") == 0) {
        snprintf(handle, sizeof(handle), "%.16s", rest + 1);
        if (webui_session_end_handle(handle) == -1)
            return webui__json(conn, 404, "error", "no such session");
        webui__audit(conn, s, "session-end", handle, "", "", "ok");
        return reply_json(conn, 200, gh_strdup("{\"ended\":true}\n"), NULL);
    }
    return webui__json(conn, 404, "error", "not found");
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

enum MHD_Result webui__api_more(struct MHD_Connection *conn, const char *url, const char *method,
                                const struct webui_session *s, const char *body, size_t blen)
{
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;

    if (get && strcmp(url, "/api/v1/config/history") == 0)
        return history_list(conn);
    if (get && strncmp(url, "/api/v1/config/history/", 23) == 0)
        return history_get(conn, url + 23);
    if (post && strcmp(url, "/api/v1/config/rollback") == 0)
        return rollback(conn, s, body, blen);
    if (get && strncmp(url, "/api/v1/logs/", 13) == 0)
        return logs(conn, s, url + 13);
    if (strncmp(url, "/api/v1/users", 13) == 0)
        return users_api(conn, s, method, url + 13, body, blen);
    if (strncmp(url, "/api/v1/sessions", 16) == 0)
        return sessions_api(conn, s, method, url + 16);
    if (post && strcmp(url, "/api/v1/password") == 0)
        return password_api(conn, s, body, blen);
    return webui__json(conn, 404, "error", "not found");
}
