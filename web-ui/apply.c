/*
 * The one path every configuration change takes: under the write lock,
 * read the file, check If-Match against its version, let the change
 * compute the new text, and hand it to main's pipeline, which parses it
 * once, prepares every module from that model, calls back here to keep
 * the old file in the history and write the new one atomically, and only
 * then commits every module; audit, and answer with the new version as
 * ETag. Keeping the sequence in one place is what makes "stale → 412 with
 * the current version, refused → 422 and nothing changed, file or
 * running" true for every endpoint, not most of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "webui_int.h"

static enum MHD_Result with_version(struct MHD_Connection *conn, unsigned status,
                                    const char *msg, const char *ver)
{
    struct gh_sbuf o = {NULL, 0, 0};
    char etag[24];

    snprintf(etag, sizeof(etag), "\"%s\"", ver);
    gh_sbuf_printf(&o, "{\"error\":");
    gh_json_str(&o, msg);
    gh_sbuf_printf(&o, ",\"version\":\"%s\"}\n", ver);
    return webui__send(conn, status, "application/json", o.p, o.len, etag);
}

struct write_ctx {
    const char *old;
    size_t oldlen;
    const char *text;
    size_t len;
    const char *meta;
};

/* Called by the pipeline once every module has prepared the new text. */
static int write_file(void *ctx, char *err, size_t errlen)
{
    struct write_ctx *w = ctx;

    return webui__commit(webui__conf_path(), webui__history_dir(), w->old, w->oldlen, w->text,
                         w->len, w->meta, err, errlen);
}

enum MHD_Result webui__apply(struct MHD_Connection *conn, const struct webui_session *s,
                             struct webui_change *ch)
{
    const char *im = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-Match");
    char ver[17], nv[17], etag[24], err[1024] = "";
    const char *after = ch->after ? ch->after : "";
    struct gh_sbuf o = {NULL, 0, 0}, meta = {NULL, 0, 0};
    unsigned status = 422;
    size_t len = 0, nlen;
    char *text, *nt = NULL;
    enum MHD_Result ret;

    if (webui__conf_path() == NULL)
        return webui__json(conn, 409, "error",
                           "running the embedded default topology: start with -c FILE to "
                           "manage a configuration");
    webui__lock();
    text = webui__read_file(webui__conf_path(), &len);
    if (text == NULL) {
        ret = webui__json(conn, 500, "error", "cannot read the configuration");
        goto done;
    }
    webui__version(text, len, ver);
    snprintf(etag, sizeof(etag), "\"%s\"", ver);
    if (im == NULL || strcmp(im, etag) != 0) {
        webui__audit(conn, s, ch->action, ch->object, ver, after, "stale");
        ret = with_version(conn, im ? 412 : 428,
                           im ? "the configuration changed since you read it"
                              : "If-Match required (the version from any GET's ETag)",
                           ver);
        goto done;
    }
    nt = ch->transform(text, len, ch->ctx, &status, err, sizeof(err));
    if (nt == NULL) {
        webui__audit(conn, s, ch->action, ch->object, ver, after, "invalid");
        ret = webui__json(conn, status, "error", err[0] ? err : "the change cannot be made");
        goto done;
    }
    nlen = strlen(nt);
    {
        /* Who replaced this version, with what: the history's note. */
        char changed[512];
        webui__changed_directives(text, nt, changed, sizeof(changed));
        webui__version(nt, nlen, nv);
        gh_sbuf_printf(&meta, "{\"user\":");
        gh_json_str(&meta, s->user);
        gh_sbuf_printf(&meta, ",\"role\":\"%s\",\"action\":", webui_role_name(s->role));
        gh_json_str(&meta, ch->action);
        gh_sbuf_printf(&meta, ",\"object\":");
        gh_json_str(&meta, ch->object ? ch->object : "");
        gh_sbuf_printf(&meta, ",\"changed\":");
        gh_json_str(&meta, changed);
        gh_sbuf_printf(&meta, ",\"new_version\":\"%s\"}\n", nv);
    }
    {
        struct write_ctx w = {text, len, nt, nlen, meta.p};
        enum webui_apply_result r = webui__apply_text(nt, nlen, write_file, &w, err, sizeof(err));
        if (r != WEBUI_APPLIED) {
            if (ch->undo)
                ch->undo(ch->ctx);
            webui__audit_why(conn, s, ch->action, ch->object, ver, after,
                             r == WEBUI_APPLY_REFUSED ? "invalid" : "failed", err);
            if (r == WEBUI_APPLY_REFUSED) {
                /* Which version runs now, in words the page can show. */
                char msg[1400], run[17];
                webui__running_version(run);
                /* After a refused SIGHUP the file's version is not the
                 * running one: say both rather than claim it runs. */
                if (run[0] == '\0' || strcmp(run, ver) == 0)
                    snprintf(msg, sizeof(msg),
                             "%s (nothing was changed: version %s stays in the file and running)",
                             err, ver);
                else
                    snprintf(msg, sizeof(msg),
                             "%s (nothing was changed: version %s stays in the file; version %s "
                             "keeps running)",
                             err, ver, run);
                ret = webui__json(conn, 422, "error", msg);
            } else {
                ret = webui__json(conn, 500, "error", err);
            }
            goto done;
        }
    }
    ch->committed = 1;
    webui__audit(conn, s, ch->action, ch->object, ver, ch->after ? ch->after : nv, "ok");
    snprintf(etag, sizeof(etag), "\"%s\"", nv);
    gh_sbuf_printf(&o, "{\"version\":\"%s\"%s%s}\n", nv, ch->extra ? "," : "",
                   ch->extra ? ch->extra : "");
    ret = webui__send(conn, ch->ok_status ? ch->ok_status : 200, "application/json", o.p, o.len,
                      etag);
done:
    webui__unlock();
    free(text);
    free(nt);
    free(meta.p);
    return ret;
}
