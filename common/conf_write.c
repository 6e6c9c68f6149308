/*
 * Canonical writer: the model back to text in a fixed order, values in their
 * largest exact unit, defaults left out (but every service timeout written).
 * It is what `gatehouse -t -p` prints and what the admin UI will write;
 * parsing its output gives the same model.
 */
#include "conf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "conf_int.h"


/* Writes a value as a bare word when the lexer would read it back as one. */
static void outv(struct gh_sbuf *o, const char *v)
{
    const char *p;
    int plain = *v != '\0';

    for (p = v; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr("{};#\"", *p))
            plain = 0;
    if (plain) {
        gh_sbuf_printf(o, "%s", v);
        return;
    }
    gh_sbuf_printf(o, "\"");
    for (p = v; *p; p++)
        gh_sbuf_printf(o, (*p == '"' || *p == '\\') ? "\\%c" : "%c", *p);
    gh_sbuf_printf(o, "\"");
}

void gh__conf_write_value(struct gh_sbuf *o, const char *v)
{
    outv(o, v);
}

void gh__conf_fmt_duration(char *buf, size_t len, long long ms)
{
    if (ms != 0 && ms % 86400000 == 0)
        snprintf(buf, len, "%lldd", ms / 86400000);
    else if (ms != 0 && ms % 3600000 == 0)
        snprintf(buf, len, "%lldh", ms / 3600000);
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(buf, len, "%lldm", ms / 60000);
    else if (ms % 1000 == 0)
        snprintf(buf, len, "%llds", ms / 1000);
    else
        snprintf(buf, len, "%lldms", ms);
}

void gh__conf_fmt_size(char *buf, size_t len, long long b)
{
    if (b != 0 && b % (1024 * 1024) == 0)
        snprintf(buf, len, "%lldm", b / (1024 * 1024));
    else if (b != 0 && b % 1024 == 0)
        snprintf(buf, len, "%lldk", b / 1024);
    else
        snprintf(buf, len, "%lld", b);
}

/* Writes every typed directive of ctx whose value differs from its default,
 * and every service timeout whatever its value: several of them follow
 * idle-timeout, so the effective value is the only one that says what bounds
 * a wait, and a file written from this output parses back to the same. */
static void typed(struct gh_sbuf *o, enum gh_conf_ctx ctx, const void *base, const char *indent)
{
    size_t i;
    char v[64], d[64];

    for (i = 0; i < gh_conf_ndirectives; i++) {
        const struct gh_conf_directive *dir = &gh_conf_directives[i];
        const char *field = (const char *)base + dir->off;
        long long n;
        int always;

        if (dir->ctx != ctx || dir->type == GH_T_SPECIAL)
            continue;
        if (dir->type == GH_T_LIST) {
            const struct gh_conf_list *l = (const struct gh_conf_list *)(const void *)field;
            size_t k, len = 0;
            char joined[4096];
            joined[0] = '\0';
            for (k = 0; k < l->n && len + strlen(l->v[k]) + 2 < sizeof(joined); k++)
                len += (size_t)snprintf(joined + len, sizeof(joined) - len, "%s%s",
                                        k ? " " : "", l->v[k]);
            if (dir->def != NULL && strcmp(joined, dir->def) == 0)
                continue;
            if (l->n == 0 && dir->def == NULL)
                continue;
            gh_sbuf_printf(o, "%s%s", indent, dir->name);
            for (k = 0; k < l->n; k++) {
                /* A line takes at most 32 words and repeated lines append:
                 * a long list goes on several lines. */
                if (k > 0 && k % 16 == 0)
                    gh_sbuf_printf(o, "\n%s%s", indent, dir->name);
                gh_sbuf_printf(o, " ");
                outv(o, l->v[k]);
            }
            gh_sbuf_printf(o, "\n");
            continue;
        }
        if (dir->type == GH_T_STR) {
            const char *s = *(char *const *)(const void *)field;
            if (s == NULL || (dir->def && strcmp(s, dir->def) == 0))
                continue;
            gh_sbuf_printf(o, "%s%s ", indent, dir->name);
            outv(o, s);
            gh_sbuf_printf(o, "\n");
            continue;
        }
        n = *(const long long *)(const void *)field;
        if (dir->type == GH_T_DURATION)
            gh__conf_fmt_duration(v, sizeof(v), n);
        else if (dir->type == GH_T_SIZE)
            gh__conf_fmt_size(v, sizeof(v), n);
        else if (dir->type == GH_T_WORKERS && n == 0)
            snprintf(v, sizeof(v), "auto");
        else
            snprintf(v, sizeof(v), "%lld", n);
        /* Compare canonical forms so "1800s" and "30m" count as the same. */
        d[0] = '\0';
        if (dir->def != NULL) {
            long long dv = 0;
            if (dir->type == GH_T_DURATION && gh_parse_duration_ms(dir->def, &dv) == 0)
                gh__conf_fmt_duration(d, sizeof(d), dv);
            else if (dir->type == GH_T_SIZE && gh_parse_size(dir->def, &dv) == 0)
                gh__conf_fmt_size(d, sizeof(d), dv);
            else
                snprintf(d, sizeof(d), "%s", dir->def);
        }
        always = ctx == GH_CTX_SERVICE && gh_conf_timeout_find(dir->name) != NULL;
        if (always || strcmp(v, d) != 0)
            gh_sbuf_printf(o, "%s%s %s\n", indent, dir->name, v);
    }
}

void gh_conf_write_server(struct gh_sbuf *o, const struct gh_conf_server *sv, const char *state,
                          long long weight)
{
    const char *st = state ? state : sv->state;
    long long w = weight > 0 ? weight : sv->weight;

    gh_sbuf_printf(o, "server ");
    outv(o, sv->name);
    gh_sbuf_printf(o, " %s", sv->addr);
    if (w != 1)
        gh_sbuf_printf(o, " weight %lld", w);
    if (sv->verify_name) {
        gh_sbuf_printf(o, " verify-name ");
        outv(o, sv->verify_name);
    }
    if (strcmp(st, "up") != 0)
        gh_sbuf_printf(o, " state %s", st);
    if (sv->maxconn)
        gh_sbuf_printf(o, " maxconn %lld", sv->maxconn);
    if (sv->pin)
        gh_sbuf_printf(o, " pin sha256:%s", sv->pin);
}

char *gh_conf_write(const struct gh_conf *c)
{
    struct gh_sbuf o = {NULL, 0, 0};
    size_t i, j;

    gh_sbuf_printf(&o, "# gatehouse configuration (canonical form)\n");
    typed(&o, GH_CTX_MAIN, c, "");
    for (i = 0; i < c->ncerts; i++) {
        gh_sbuf_printf(&o, "\ncertificate ");
        outv(&o, c->certs[i].name);
        if (c->certs[i].pkcs12) {
            gh_sbuf_printf(&o, " {\n    pkcs12 ");
            outv(&o, c->certs[i].pkcs12);
            if (c->certs[i].passphrase_file) {
                gh_sbuf_printf(&o, "\n    passphrase-file ");
                outv(&o, c->certs[i].passphrase_file);
            }
        } else {
            gh_sbuf_printf(&o, " {\n    cert ");
            outv(&o, c->certs[i].cert);
            gh_sbuf_printf(&o, "\n    key ");
            outv(&o, c->certs[i].key);
        }
        if (c->certs[i].ocsp_response) {
            gh_sbuf_printf(&o, "\n    ocsp-response ");
            outv(&o, c->certs[i].ocsp_response);
        }
        gh_sbuf_printf(&o, "\n}\n");
    }
    for (i = 0; i < c->ncas; i++) {
        gh_sbuf_printf(&o, "\nca ");
        outv(&o, c->cas[i].name);
        gh_sbuf_printf(&o, " {\n    file ");
        outv(&o, c->cas[i].file);
        gh_sbuf_printf(&o, "\n}\n");
    }
    for (i = 0; i < c->nrulesets; i++) {
        const struct gh_conf_ruleset *r = &c->rulesets[i];
        gh_sbuf_printf(&o, "\nrules ");
        outv(&o, r->name);
        gh_sbuf_printf(&o, " {\n");
        for (j = 0; j < r->nrules; j++) {
            const struct gh_conf_rule *u = &r->rules[j];
            gh_sbuf_printf(&o, "    rule ");
            outv(&o, u->id);
            gh_sbuf_printf(&o, " %s", u->action);
            if (strcmp(u->action, "deny") == 0 && u->status != 403)
                gh_sbuf_printf(&o, " %lld", u->status);
            if (strcmp(u->action, "redirect") == 0) {
                if (u->status != 302)
                    gh_sbuf_printf(&o, " %lld", u->status);
                gh_sbuf_printf(&o, " ");
                outv(&o, u->target);
            }
            gh_sbuf_printf(&o, " if %s", u->field);
            if (u->header) {
                gh_sbuf_printf(&o, " ");
                outv(&o, u->header);
            }
            if (strcmp(u->op, "cidr") != 0)
                gh_sbuf_printf(&o, " %s", u->op);
            gh_sbuf_printf(&o, " ");
            outv(&o, u->value);
            gh_sbuf_printf(&o, "\n");
        }
        gh_sbuf_printf(&o, "}\n");
    }
    if (c->store.engine != NULL && strcmp(c->store.engine, "redis") == 0) {
        gh_sbuf_printf(&o, "\nstore redis {\n");
        typed(&o, GH_CTX_STORE, &c->store, "    ");
        gh_sbuf_printf(&o, "}\n");
    }
    if (c->meetings_store.engine != NULL && strcmp(c->meetings_store.engine, "postgresql") == 0) {
        gh_sbuf_printf(&o, "\nmeetings-store postgresql {\n");
        typed(&o, GH_CTX_MSTORE, &c->meetings_store, "    ");
        gh_sbuf_printf(&o, "}\n");
    }
    for (i = 0; i < c->nidps; i++) {
        gh_sbuf_printf(&o, "\nidentity-provider ");
        outv(&o, c->idps[i].name);
        gh_sbuf_printf(&o, " {\n");
        typed(&o, GH_CTX_IDP, &c->idps[i], "    ");
        gh_sbuf_printf(&o, "}\n");
    }
    for (i = 0; i < c->nidp_groups; i++) {
        gh_sbuf_printf(&o, "\nidentity-provider-group ");
        outv(&o, c->idp_groups[i].name);
        gh_sbuf_printf(&o, " {\n");
        typed(&o, GH_CTX_IDP_GROUP, &c->idp_groups[i], "    ");
        gh_sbuf_printf(&o, "}\n");
    }
    for (i = 0; i < c->nservices; i++) {
        const struct gh_conf_service *s = &c->services[i];
        gh_sbuf_printf(&o, "\nservice ");
        outv(&o, s->name);
        gh_sbuf_printf(&o, " {\n    listen %s\n", s->listen);
        if (s->certificates.n) {
            gh_sbuf_printf(&o, "    certificate");
            for (j = 0; j < s->certificates.n; j++) {
                gh_sbuf_printf(&o, " ");
                outv(&o, s->certificates.v[j]);
            }
            gh_sbuf_printf(&o, "\n");
        }
        if (s->app)
            gh_sbuf_printf(&o, "    app %s\n", s->app);
        if (s->rule_set) {
            gh_sbuf_printf(&o, "    rule-set ");
            outv(&o, s->rule_set);
            gh_sbuf_printf(&o, "\n");
        }
        if (strcmp(s->reencrypt, "pinned") == 0) {
            gh_sbuf_printf(&o, "    reencrypt pinned\n");
        } else if (strcmp(s->reencrypt, "off") != 0) {
            gh_sbuf_printf(&o, "    reencrypt verify ");
            outv(&o, s->reencrypt);
            gh_sbuf_printf(&o, "\n");
        }
        if (s->client_certificate) {
            gh_sbuf_printf(&o, "    client-certificate ");
            outv(&o, s->client_certificate);
            gh_sbuf_printf(&o, "\n");
        }
        if (s->redirect_https != 0) {
            gh_sbuf_printf(&o, "    redirect https");
            if (s->redirect_https != 301)
                gh_sbuf_printf(&o, " code %lld", s->redirect_https);
            if (s->redirect_https_port != 0)
                gh_sbuf_printf(&o, " port %lld", s->redirect_https_port);
            gh_sbuf_printf(&o, "\n");
        }
        typed(&o, GH_CTX_SERVICE, s, "    ");
        gh__conf_headers_write(&o, s);
        if (strcmp(s->persistence, "off") != 0) {
            char to[32];
            gh__conf_fmt_duration(to, sizeof(to), s->persist_timeout);
            gh_sbuf_printf(&o, "    persistence %s", s->persistence);
            if (s->cookie_name)
                gh_sbuf_printf(&o, " %s", s->cookie_name);
            if (s->persist_mask)
                gh_sbuf_printf(&o, " mask %lld", s->persist_mask);
            gh_sbuf_printf(&o, " timeout %s\n", to);
        }
        if (s->check.enabled) {
            char iv[32], to[32];
            const struct gh_conf_check *k = &s->check;
            gh__conf_fmt_duration(iv, sizeof(iv), k->interval);
            gh__conf_fmt_duration(to, sizeof(to), k->timeout);
            if (k->url != NULL) {
                gh_sbuf_printf(&o, "    check %s %s", k->method[0] == 'G' ? "get" : "head", k->url);
            } else if (k->send != NULL) {
                gh_sbuf_printf(&o, "    check send ");
                outv(&o, k->send);
                gh_sbuf_printf(&o, " recv ");
                outv(&o, k->recv);
            } else {
                gh_sbuf_printf(&o, "    check %s", strcmp(k->method, "TCP") == 0 ? "tcp" : "tls");
            }
            if (k->port)
                gh_sbuf_printf(&o, " port %lld", k->port);
            gh_sbuf_printf(&o, " interval %s timeout %s rise %lld fall %lld expect %lld", iv, to, k->rise,
                 k->fall, k->expect);
            if (k->body) {
                gh_sbuf_printf(&o, " body ");
                outv(&o, k->body);
            }
            gh_sbuf_printf(&o, " start %s\n", k->start_up ? "up" : "down");
        }
        for (j = 0; j < s->nservers; j++) {
            gh_sbuf_printf(&o, "    ");
            gh_conf_write_server(&o, &s->servers[j], NULL, 0);
            gh_sbuf_printf(&o, "\n");
        }
        gh_sbuf_printf(&o, "}\n");
    }
    return o.p;
}
