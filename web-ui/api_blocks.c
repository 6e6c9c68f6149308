/*
 * Named blocks of the configuration, directive by directive (admins):
 *
 *   GET  /api/v1/blocks/<kind>/<name>          its directives as written
 *   POST /api/v1/blocks/<kind>/<name>          form: DIRECTIVE=lines ... [_name=new name]
 *   POST /api/v1/blocks/<kind>                 form: _name=NAME DIRECTIVE=lines ...
 *   POST /api/v1/blocks/<kind>/<name>/delete
 *
 * kind: service, identity-provider, identity-provider-group or rules. Each
 * field replaces every line of that directive in the block with its own
 * lines (one per line; empty removes it); directives not sent stay as they
 * are, so a form that shows only some of them drops nothing. A new
 * identity provider gets a fresh UUID unless one is sent. Writes go
 * through webui__apply: If-Match, validation (422 with file:line:col),
 * history, atomic write, reload, audit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "../saml/saml.h"
#include "webui_int.h"

static const char *const kinds[] = {"service", "identity-provider", "identity-provider-group",
                                    "rules"};

struct block_op {
    const char *what, *kind, *name;
    struct webui_fields *fm;
};

static char *block_transform(const char *text, size_t len, void *ctx, unsigned *status,
                             char *err, size_t errlen)
{
    const struct block_op *op = ctx;

    if (strcmp(op->what, "add") == 0)
        return webui__block_add(text, len, op->kind, op->fm->f, op->fm->n, status, err, errlen);
    if (strcmp(op->what, "delete") == 0)
        return webui__block_delete(text, len, op->kind, op->name, status, err, errlen);
    return webui__block_set(text, len, op->kind, op->name, op->fm->f, op->fm->n, status, err,
                            errlen);
}

static enum MHD_Result change(struct MHD_Connection *conn, const struct webui_session *s,
                              const char *what, const char *kind, const char *name,
                              const char *body, size_t blen)
{
    struct webui_fields fm;
    struct block_op op = {what, kind, name, &fm};
    struct webui_change ch = {0};
    char obj[300], uuid[37], changed[300] = "";
    enum MHD_Result ret;
    size_t i, what_len;

    memset(&fm, 0, sizeof(fm));
    if (strcmp(what, "delete") != 0 && webui__fields_parse(body, blen, &fm) == -1) {
        webui__fields_free(&fm);
        return webui__json(conn, 422, "error", "the form is malformed or has too many fields");
    }
    if (strcmp(what, "add") == 0 && strcmp(kind, "identity-provider") == 0) {
        for (i = 0; i < fm.n && strcmp(fm.f[i].key, "uuid") != 0; i++)
            ;
        if (i == fm.n) {
            saml_uuid(uuid);
            webui__fields_add(&fm, "uuid", uuid);
        }
    }
    if (strcmp(what, "add") == 0)
        for (i = 0; i < fm.n; i++)
            if (strcmp(fm.f[i].key, "_name") == 0)
                name = fm.f[i].value;
    snprintf(obj, sizeof(obj), "%s %.200s", kind, name ? name : "");
    /* The audit names the directives changed (not their values). */
    for (i = 0, what_len = 0; i < fm.n && what_len < sizeof(changed) - 2; i++)
        what_len += (size_t)snprintf(changed + what_len, sizeof(changed) - what_len, "%s%s",
                                     i ? " " : "", fm.f[i].key);
    ch.after = strcmp(what, "delete") == 0 ? "deleted" : changed;
    ch.action = strcmp(what, "add") == 0      ? "block-add"
                : strcmp(what, "delete") == 0 ? "block-delete"
                                              : "block-change";
    ch.object = obj;
    ch.transform = block_transform;
    ch.ctx = &op;
    ch.ok_status = strcmp(what, "add") == 0 ? 201 : 200;
    ret = webui__apply(conn, s, &ch);
    webui__fields_free(&fm);
    return ret;
}

static enum MHD_Result get(struct MHD_Connection *conn, const char *kind, const char *name)
{
    char err[1024], ver[17], etag[24];
    struct gh_sbuf o = {NULL, 0, 0};
    size_t len = 0;
    char *text;

    if (webui__conf_path() == NULL)
        return webui__json(conn, 409, "error", "running the embedded default topology");
    text = webui__read_file(webui__conf_path(), &len);
    if (text == NULL)
        return webui__json(conn, 500, "error", "cannot read the configuration");
    webui__version(text, len, ver);
    snprintf(etag, sizeof(etag), "\"%s\"", ver);
    gh_sbuf_printf(&o, "{\"version\":\"%s\",", ver);
    if (webui__block_json(text, len, kind, name, &o, err, sizeof(err)) == -1) {
        free(o.p);
        free(text);
        return webui__json(conn, 404, "error", err);
    }
    gh_sbuf_printf(&o, "}\n");
    free(text);
    return webui__send(conn, 200, "application/json", o.p, o.len, etag);
}

/* The kind a route names, as the table spells it; NULL for any other. */
static const char *kind_of(const char *k)
{
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(kinds); i++)
        if (strcmp(k, kinds[i]) == 0)
            return kinds[i];
    return NULL;
}

enum MHD_Result webui__r_block_add(struct webui_call *c)
{
    const char *kind = kind_of(c->arg[0]);

    if (kind == NULL)
        return webui__json(c->conn, 404, "error", "not found");
    return change(c->conn, c->s, "add", kind, NULL, c->body, c->blen);
}

enum MHD_Result webui__r_block_get(struct webui_call *c)
{
    const char *kind = kind_of(c->arg[0]);

    if (kind == NULL)
        return webui__json(c->conn, 404, "error", "not found");
    return get(c->conn, kind, c->arg[1]);
}

enum MHD_Result webui__r_block_modify(struct webui_call *c)
{
    const char *kind = kind_of(c->arg[0]);

    if (kind == NULL)
        return webui__json(c->conn, 404, "error", "not found");
    return change(c->conn, c->s, "modify", kind, c->arg[1], c->body, c->blen);
}

enum MHD_Result webui__r_block_delete(struct webui_call *c)
{
    const char *kind = kind_of(c->arg[0]);

    if (kind == NULL)
        return webui__json(c->conn, 404, "error", "not found");
    return change(c->conn, c->s, "delete", kind, c->arg[1], c->body, c->blen);
}
