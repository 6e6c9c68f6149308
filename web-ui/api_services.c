/*
 * Virtual services as blocks of the configuration (admins):
 *
 *   GET  /api/v1/services/<name>/block          the block's text as written
 *   POST /api/v1/services/<name>/block          body: the new text of the block
 *   POST /api/v1/services                       body: a new block, appended
 *   POST /api/v1/services/<name>/delete         the block removed
 *
 * Every change needs If-Match, replaces exactly the bytes of that one block
 * (comments and the rest of the file stay), must leave a file that passes
 * the `gatehouse -t` checks (422 with file:line:col otherwise), and is
 * written atomically, kept in the history and reloaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "webui_int.h"

static long offset_of(const char *text, size_t len, struct gh_loc l)
{
    size_t i = 0;
    int line = 1;

    while (line < l.line && i < len) {
        if (text[i] == '\n')
            line++;
        i++;
    }
    if (line != l.line || i + (size_t)l.col - 1 > len)
        return -1;
    return (long)(i + (size_t)l.col - 1);
}

/* The byte span of service name's block in text: [start, end). */
static int span(const char *text, size_t len, const char *name, long *start, long *end, char *err,
                size_t errlen)
{
    struct gh_conf *c = gh_conf_parse("config", text, len, err, errlen);
    const struct gh_conf_service *s;

    if (c == NULL)
        return -1;
    s = gh_conf_service_find(c, name);
    if (s == NULL) {
        snprintf(err, errlen, "no service '%s'", name);
        gh_conf_free(c);
        return -1;
    }
    *start = offset_of(text, len, s->loc);
    *end = offset_of(text, len, s->end_loc);
    gh_conf_free(c);
    if (*start < 0 || *end <= *start) {
        snprintf(err, errlen, "cannot locate service '%s'", name);
        return -1;
    }
    return 0;
}

/* Skips white space and comments. */
static size_t skip(const char *b, size_t n, size_t i)
{
    while (i < n) {
        if (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r')
            i++;
        else if (b[i] == '#')
            while (i < n && b[i] != '\n')
                i++;
        else
            break;
    }
    return i;
}

/* The new text must be exactly one service block and nothing else (no
 * top-level directive smuggled in beside it); whether it is a valid one
 * is for the validator, on the whole file. */
static int one_block(const char *b, size_t n, char *err, size_t errlen)
{
    size_t i = skip(b, n, 0);
    int depth = 0, seen = 0;
    char quote = 0;

    if (n - i < 8 || strncmp(b + i, "service", 7) != 0 || (b[i + 7] != ' ' && b[i + 7] != '\t'))
        goto bad;
    for (; i < n; i++) {
        char ch = b[i];
        if (quote) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                quote = 0;
            continue;
        }
        if (ch == '"')
            quote = 1;
        else if (ch == '#')
            while (i + 1 < n && b[i + 1] != '\n')
                i++;
        else if (ch == '{')
            depth++, seen = 1;
        else if (ch == '}' && --depth == 0)
            break;
        else if (ch == '\0' || depth < 0)
            goto bad;
    }
    if (!seen || depth != 0 || skip(b, n, i + 1) != n)
        goto bad;
    return 0;
bad:
    snprintf(err, errlen, "send exactly one service block and nothing else");
    return -1;
}

char *webui__service_op(const char *text, size_t len, const char *what, const char *name,
                        const char *body, size_t blen, char *err, size_t errlen)
{
    struct gh_sbuf nt = {NULL, 0, 0};
    long start = 0, end = 0;

    if (strcmp(what, "delete") != 0 && one_block(body, blen, err, errlen) == -1)
        return NULL;
    if (strcmp(what, "add") == 0) {
        gh_sbuf_printf(&nt, "%.*s%s\n%.*s\n", (int)len, text,
                       len && text[len - 1] != '\n' ? "\n" : "", (int)blen, body);
        return nt.p;
    }
    if (span(text, len, name, &start, &end, err, errlen) == -1)
        return NULL;
    if (strcmp(what, "delete") == 0 && (size_t)end < len && text[end] == '\n')
        end++; /* the line the block ended */
    gh_sbuf_printf(&nt, "%.*s%.*s%.*s", (int)start, text,
                   strcmp(what, "delete") == 0 ? 0 : (int)blen, body, (int)(len - (size_t)end),
                   text + end);
    return nt.p;
}

struct svc_op {
    const char *what, *name, *body;
    size_t blen;
};

static char *svc_transform(const char *text, size_t len, void *ctx, unsigned *status, char *err,
                           size_t errlen)
{
    const struct svc_op *op = ctx;
    char *nt = webui__service_op(text, len, op->what, op->name, op->body, op->blen, err, errlen);

    if (nt == NULL && strncmp(err, "no service", 10) == 0)
        *status = 404;
    return nt;
}

static enum MHD_Result change(struct MHD_Connection *conn, const struct webui_session *s,
                              const char *what, const char *name, const char *body, size_t blen)
{
    struct svc_op op = {what, name, body, blen};
    struct webui_change ch = {0};
    char err[256];

    if (strcmp(what, "delete") != 0 && one_block(body, blen, err, sizeof(err)) == -1)
        return webui__json(conn, 422, "error", err);
    ch.action = "service-change";
    ch.object = name ? name : "";
    ch.after = what;
    ch.transform = svc_transform;
    ch.ctx = &op;
    ch.ok_status = strcmp(what, "add") == 0 ? 201 : 200;
    return webui__apply(conn, s, &ch);
}

static enum MHD_Result block_get(struct MHD_Connection *conn, const char *name)
{
    char err[1024], ver[17], etag[24];
    size_t len = 0;
    long start, end;
    char *text;
    struct gh_sbuf o = {NULL, 0, 0};

    if (webui__conf_path() == NULL)
        return webui__json(conn, 409, "error", "running the embedded default topology");
    text = webui__read_file(webui__conf_path(), &len);
    if (text == NULL)
        return webui__json(conn, 500, "error", "cannot read the configuration");
    if (span(text, len, name, &start, &end, err, sizeof(err)) == -1) {
        free(text);
        return webui__json(conn, 404, "error", err);
    }
    webui__version(text, len, ver);
    snprintf(etag, sizeof(etag), "\"%s\"", ver);
    gh_sbuf_printf(&o, "{\"version\":\"%s\",\"block\":", ver);
    gh_json_strn(&o, text + start, (size_t)(end - start));
    gh_sbuf_printf(&o, "}\n");
    free(text);
    return webui__send(conn, 200, "application/json", o.p, o.len, etag);
}

enum MHD_Result webui__r_service_add(struct webui_call *c)
{
    return change(c->conn, c->s, "add", NULL, c->body, c->blen);
}

enum MHD_Result webui__r_service_block(struct webui_call *c)
{
    return block_get(c->conn, c->arg[0]);
}

enum MHD_Result webui__r_service_replace(struct webui_call *c)
{
    return change(c->conn, c->s, "modify", c->arg[0], c->body, c->blen);
}

enum MHD_Result webui__r_service_delete(struct webui_call *c)
{
    return change(c->conn, c->s, "delete", c->arg[0], c->body, c->blen);
}
