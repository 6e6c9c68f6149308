/*
 * What the configuration declares, as JSON for the pages:
 *
 *   GET /api/v1/services       every virtual service: address, certificates,
 *                              scheduler, persistence, timeouts, ESP filters,
 *                              rules, health check, real servers
 *   GET /api/v1/certificates   every certificate block: subject, SANs, issuer,
 *                              key type, not-after, days left (never a key)
 *
 * Both read the file as it is now (the single source of truth), with the
 * version as ETag, so a page and a later change agree on what they saw.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../certs/certs.h"
#include "../common/common.h"
#include "webui_int.h"

static void jlist(struct gh_sbuf *o, const struct gh_conf_list *l)
{
    size_t i;

    gh_sbuf_printf(o, "[");
    for (i = 0; i < l->n; i++) {
        if (i)
            gh_sbuf_printf(o, ",");
        gh_json_str(o, l->v[i]);
    }
    gh_sbuf_printf(o, "]");
}

static enum MHD_Result services(struct MHD_Connection *conn)
{
    char ver[17], err[1024], etag[24];
    struct gh_conf *c = webui__conf_current(ver, err, sizeof(err));
    struct gh_sbuf o = {NULL, 0, 0};
    size_t i, j;

    if (c == NULL)
        return webui__json(conn, 409, "error", err);
    gh_sbuf_printf(&o, "{\"version\":\"%s\",\"services\":[", ver);
    for (i = 0; i < c->nservices; i++) {
        const struct gh_conf_service *s = &c->services[i];
        gh_sbuf_printf(&o, "%s{\"name\":", i ? "," : "");
        gh_json_str(&o, s->name);
        gh_sbuf_printf(&o, ",\"listen\":");
        gh_json_str(&o, s->listen);
        gh_sbuf_printf(&o, ",\"enabled\":%s", strcmp(s->enabled, "off") == 0 ? "false" : "true");
        gh_sbuf_printf(&o, ",\"certificates\":");
        jlist(&o, &s->certificates);
        gh_sbuf_printf(&o, ",\"tls_versions\":");
        jlist(&o, &s->tls_versions);
        gh_sbuf_printf(&o, ",\"app\":");
        gh_json_str(&o, s->app);
        gh_sbuf_printf(&o, ",\"scheduler\":");
        gh_json_str(&o, s->scheduler);
        gh_sbuf_printf(&o, ",\"persistence\":");
        gh_json_str(&o, s->persistence);
        gh_sbuf_printf(&o, ",\"persistence_timeout_ms\":%lld,\"idle_timeout_ms\":%lld,"
                           "\"reencrypt\":",
                       s->persist_timeout, s->idle_timeout);
        gh_json_str(&o, s->reencrypt);
        gh_sbuf_printf(&o, ",\"allowed_hosts\":");
        jlist(&o, &s->allowed_hosts);
        gh_sbuf_printf(&o, ",\"allowed_dirs\":");
        jlist(&o, &s->allowed_dirs);
        gh_sbuf_printf(&o, ",\"rule_set\":");
        gh_json_str(&o, s->rule_set);
        gh_sbuf_printf(&o, ",\"check\":");
        if (s->check.enabled) {
            gh_sbuf_printf(&o, "{\"url\":");
            gh_json_str(&o, s->check.url);
            gh_sbuf_printf(&o, ",\"port\":%lld,\"interval_ms\":%lld,\"rise\":%lld,\"fall\":%lld}",
                           s->check.port, s->check.interval, s->check.rise, s->check.fall);
        } else {
            gh_sbuf_printf(&o, "null");
        }
        gh_sbuf_printf(&o, ",\"servers\":[");
        for (j = 0; j < s->nservers; j++) {
            const struct gh_conf_server *sv = &s->servers[j];
            gh_sbuf_printf(&o, "%s{\"name\":", j ? "," : "");
            gh_json_str(&o, sv->name);
            gh_sbuf_printf(&o, ",\"address\":");
            gh_json_str(&o, sv->addr);
            gh_sbuf_printf(&o, ",\"weight\":%lld,\"maxconn\":%lld,\"state\":", sv->weight,
                           sv->maxconn);
            gh_json_str(&o, sv->state);
            gh_sbuf_printf(&o, "}");
        }
        gh_sbuf_printf(&o, "]}");
    }
    gh_sbuf_printf(&o, "]}\n");
    gh_conf_free(c);
    snprintf(etag, sizeof(etag), "\"%s\"", ver);
    return webui__send(conn, 200, "application/json", o.p, o.len, etag);
}

static enum MHD_Result certificates(struct MHD_Connection *conn)
{
    char ver[17], err[1024], etag[24];
    struct gh_conf *c = webui__conf_current(ver, err, sizeof(err));
    struct gh_sbuf o = {NULL, 0, 0};
    static const char *const fields[] = {"subject", "sans", "issuer", "key", "not_after",
                                         "days_left"};
    size_t i;

    if (c == NULL)
        return webui__json(conn, 409, "error", err);
    gh_sbuf_printf(&o, "{\"version\":\"%s\",\"certificates\":[", ver);
    for (i = 0; i < c->ncerts; i++) {
        const struct gh_conf_cert *cc = &c->certs[i];
        struct certs_source src = {cc->cert, cc->key, cc->pkcs12, cc->passphrase_file};
        char line[4096], *p = line, *tab;
        size_t f;
        certs_describe(&src, line, sizeof(line));
        gh_sbuf_printf(&o, "%s{\"name\":", i ? "," : "");
        gh_json_str(&o, cc->name);
        gh_sbuf_printf(&o, ",\"file\":");
        gh_json_str(&o, cc->pkcs12 ? cc->pkcs12 : cc->cert);
        /* The describe line is tab-separated in a fixed order; a file that
         * cannot be read gives one message instead. */
        for (f = 0; f < GH_ARRAY_LEN(fields); f++) {
            tab = p ? strchr(p, '\t') : NULL;
            if (tab)
                *tab = '\0';
            gh_sbuf_printf(&o, ",\"%s\":", fields[f]);
            gh_json_str(&o, p ? p : "");
            p = tab ? tab + 1 : NULL;
        }
        gh_sbuf_printf(&o, "}");
    }
    gh_sbuf_printf(&o, "]}\n");
    gh_conf_free(c);
    snprintf(etag, sizeof(etag), "\"%s\"", ver);
    return webui__send(conn, 200, "application/json", o.p, o.len, etag);
}

enum MHD_Result webui__r_services(struct webui_call *c)
{
    return services(c->conn);
}

enum MHD_Result webui__r_certificates(struct webui_call *c)
{
    return certificates(c->conn);
}
