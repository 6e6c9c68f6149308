/*
 * Identity providers in the admin application (the seeds' Pexip pages):
 *
 *   GET  /api/v1/identity-providers                  records and groups
 *   GET  /api/v1/identity-providers/<uuid>/metadata  "Download service metadata"
 *   POST /api/v1/identity-providers/import?name=N&sp_certificate=C&sp_entity_id=E
 *        body: the IdP's metadata XML ("Upload file"); admins only, If-Match
 *
 * An import writes the IdP's signing certificates to
 * state-dir/admin/idp/<uuid>.pem and appends an identity-provider block
 * (ACS URLs derived from the services) to the configuration: every existing
 * byte stays, the result is validated, written atomically and reloaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/common.h"
#include "../saml/saml.h"
#include "webui_int.h"

static enum MHD_Result list(struct MHD_Connection *conn)
{
    char ver[17], err[1024];
    size_t i, j;
    struct gh_conf *c = webui__conf_current(ver, err, sizeof(err));
    struct gh_sbuf o = {NULL, 0, 0};

    if (c == NULL)
        return webui__json(conn, 409, "error", err);
    gh_sbuf_printf(&o, "{\"version\":\"%s\",\"identity_providers\":[", ver);
    for (i = 0; i < c->nidps; i++) {
        const struct gh_conf_idp *p = &c->idps[i];
        gh_sbuf_printf(&o, "%s{\"name\":", i ? "," : "");
        gh_json_str(&o, p->name);
        gh_sbuf_printf(&o, ",\"uuid\":\"%s\",\"description\":", p->uuid);
        gh_json_str(&o, p->description);
        gh_sbuf_printf(&o, ",\"sp_entity_id\":");
        gh_json_str(&o, p->sp_entity_id);
        gh_sbuf_printf(&o, ",\"idp_entity_id\":");
        gh_json_str(&o, p->idp_entity_id);
        gh_sbuf_printf(&o, ",\"idp_sso_url\":");
        gh_json_str(&o, p->idp_sso_url);
        gh_sbuf_printf(&o, ",\"display_name_attribute\":");
        gh_json_str(&o, p->display_name_attribute);
        gh_sbuf_printf(&o, ",\"signature_algorithm\":\"%s\",\"digest_algorithm\":\"%s\"}",
                       p->signature_algorithm, p->digest_algorithm);
    }
    gh_sbuf_printf(&o, "],\"groups\":[");
    for (i = 0; i < c->nidp_groups; i++) {
        gh_sbuf_printf(&o, "%s{\"name\":", i ? "," : "");
        gh_json_str(&o, c->idp_groups[i].name);
        gh_sbuf_printf(&o, ",\"identity_providers\":[");
        for (j = 0; j < c->idp_groups[i].members.n; j++) {
            if (j)
                gh_sbuf_printf(&o, ",");
            gh_json_str(&o, c->idp_groups[i].members.v[j]);
        }
        gh_sbuf_printf(&o, "]}");
    }
    gh_sbuf_printf(&o, "]}\n");
    gh_conf_free(c);
    return webui__send(conn, 200, "application/json", o.p, o.len, NULL);
}

static enum MHD_Result metadata(struct MHD_Connection *conn, const char *uuid)
{
    char ver[17], err[1024];
    char *xml;
    size_t xlen = 0;
    struct gh_conf *c = webui__conf_current(ver, err, sizeof(err));
    struct saml_sp *sp;
    const struct saml_idp *idp;
    enum MHD_Result ret;

    if (c == NULL)
        return webui__json(conn, 409, "error", err);
    sp = saml_sp_new(c, err, sizeof(err));
    gh_conf_free(c);
    if (sp == NULL)
        return webui__json(conn, 500, "error", err);
    idp = saml_idp_by_uuid(sp, uuid);
    xml = idp ? saml_sp_metadata(idp, &xlen, err, sizeof(err)) : NULL;
    saml_sp_unref(sp);
    if (xml == NULL)
        return webui__json(conn, idp ? 500 : 404, "error", idp ? err : "not found");
    ret = webui__send_download(conn, xml, xlen, "application/samlmetadata+xml", uuid);
    return ret;
}

static void quoted(struct gh_sbuf *o, const char *s)
{
    gh_sbuf_printf(o, "\"");
    for (; *s; s++)
        gh_sbuf_printf(o, (*s == '"' || *s == '\\') ? "\\%c" : "%c", *s);
    gh_sbuf_printf(o, "\"");
}

struct idp_import {
    const char *name, *spc, *spe, *user;
    struct saml_idp_meta m;
    char uuid[37], pem[1400], extra[160];
};

static char *import_transform(const char *text, size_t len, void *ctx, unsigned *status,
                              char *err, size_t errlen)
{
    struct idp_import *im = ctx;
    struct gh_sbuf nt = {NULL, 0, 0};
    char dir[1300];

    saml_uuid(im->uuid);
    snprintf(dir, sizeof(dir), "%s/../idp", webui__history_dir());
    snprintf(im->pem, sizeof(im->pem), "%s/%s.pem", dir, im->uuid);
    if (gh_mkdir_p(dir, 0700) == -1 || gh_write_file(im->pem, im->m.certs_pem, strlen(im->m.certs_pem), 0644, 0) == -1) {
        snprintf(err, errlen, "%.900s: %s", im->pem, strerror(errno));
        *status = 500;
        return NULL;
    }
    gh_sbuf_printf(&nt, "%.*s%s\n# imported from metadata by %s\nidentity-provider ", (int)len,
                   text, len && text[len - 1] != '\n' ? "\n" : "", im->user);
    quoted(&nt, im->name);
    gh_sbuf_printf(&nt, " {\n    uuid %s\n    sp-certificate ", im->uuid);
    quoted(&nt, im->spc);
    gh_sbuf_printf(&nt, "\n    sp-entity-id ");
    quoted(&nt, im->spe);
    gh_sbuf_printf(&nt, "\n    acs-from-services on\n    idp-entity-id ");
    quoted(&nt, im->m.entity_id);
    gh_sbuf_printf(&nt, "\n    idp-sso-url ");
    quoted(&nt, im->m.sso_url);
    gh_sbuf_printf(&nt, "\n    idp-certificate ");
    quoted(&nt, im->pem);
    gh_sbuf_printf(&nt, "\n}\n");
    snprintf(im->extra, sizeof(im->extra), "\"uuid\":\"%s\",\"certificates\":%zu", im->uuid,
             im->m.ncerts);
    return nt.p;
}

static void import_undo(void *ctx)
{
    unlink(((struct idp_import *)ctx)->pem);
}

static enum MHD_Result import(struct MHD_Connection *conn, const struct webui_session *s,
                              const char *body, size_t blen)
{
    struct idp_import im;
    struct webui_change ch = {0};
    char err[1024];
    enum MHD_Result ret;

    memset(&im, 0, sizeof(im));
    im.name = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "name");
    im.spc = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "sp_certificate");
    im.spe = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "sp_entity_id");
    im.user = s->user;
    if (im.name == NULL || im.spc == NULL || im.spe == NULL || !*im.name || !*im.spc || !*im.spe)
        return webui__json(conn, 422, "error", "name, sp_certificate and sp_entity_id are needed");
    if (saml_idp_meta_parse(body, blen, &im.m, err, sizeof(err)) == -1)
        return webui__json(conn, 422, "error", err);
    ch.action = "idp-import";
    ch.object = im.name;
    ch.transform = import_transform;
    ch.undo = import_undo;
    ch.ctx = &im;
    ch.ok_status = 201;
    ch.extra = im.extra;
    ret = webui__apply(conn, s, &ch);
    saml_idp_meta_free(&im.m);
    return ret;
}

enum MHD_Result webui__r_idps(struct webui_call *c)
{
    return list(c->conn);
}

enum MHD_Result webui__r_idp_metadata(struct webui_call *c)
{
    if (strlen(c->arg[0]) != 36)
        return webui__json(c->conn, 404, "error", "not found");
    return metadata(c->conn, c->arg[0]);
}

enum MHD_Result webui__r_idp_import(struct webui_call *c)
{
    return import(c->conn, c->s, c->body, c->blen);
}
