/*
 * POST /api/v1/rules/test   set=<rules name>, request=<a pasted HTTP request>
 *
 * Shows which rule of a set decides a request, and which log-only rules
 * match, the way the proxy evaluates it: the request line's method, path
 * and query, the headers by name (first value), the source 127.0.0.1. The
 * pasted text is read loosely (LF or CRLF); it is a tool for writing rules,
 * not a second HTTP parser: the proxy's strict one decides what passes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/common.h"
#include "../rules/rules.h"
#include "webui_int.h"

struct pasted {
    const char *text;
    size_t len;
};

static int header(void *ctx, const char *name, unsigned idx, const char **v, size_t *vlen)
{
    const struct pasted *p = ctx;
    const char *line = memchr(p->text, '\n', p->len), *end = p->text + p->len;
    size_t nl = strlen(name);

    while (line != NULL && line + 1 < end) {
        const char *l = line + 1, *e = memchr(l, '\n', (size_t)(end - l)), *colon;
        size_t ll = (size_t)((e ? e : end) - l);
        if (ll > 0 && l[ll - 1] == '\r')
            ll--;
        if (ll == 0)
            break; /* end of the head */
        colon = memchr(l, ':', ll);
        if (colon != NULL && (size_t)(colon - l) == nl && strncasecmp(l, name, nl) == 0 &&
            idx-- == 0) {
            const char *val = colon + 1;
            while (val < l + ll && (*val == ' ' || *val == '\t'))
                val++;
            *v = val;
            *vlen = (size_t)(l + ll - val);
            return 0;
        }
        line = e;
    }
    return -1;
}

enum MHD_Result webui__api_rules(struct MHD_Connection *conn, const char *body, size_t blen)
{
    char *set = gh_form_get(body, blen, "set"), *req = gh_form_get(body, blen, "request");
    char err[1024], ver[17];
    const struct gh_conf_ruleset *rs;
    struct gh_conf *c = NULL;
    struct rules_set *compiled = NULL;
    struct rules_req r;
    struct rules_verdict v;
    struct pasted p;
    struct sockaddr_in src;
    struct gh_sbuf o = {NULL, 0, 0};
    const char *sp1, *sp2, *q, *eol;
    int i;
    enum MHD_Result ret;

    if (set == NULL || req == NULL || webui__conf_path() == NULL) {
        ret = webui__json(conn, 422, "error", "set and request are needed");
        goto done;
    }
    c = webui__conf_current(ver, err, sizeof(err));
    rs = c ? gh_conf_ruleset_find(c, set) : NULL;
    compiled = rs ? rules_set_new(c->file, rs, err, sizeof(err)) : NULL;
    eol = strchr(req, '\n');
    sp1 = strchr(req, ' ');
    sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (compiled == NULL || sp1 == NULL || sp2 == NULL || (eol && sp2 > eol)) {
        ret = webui__json(conn, 422, "error", compiled ? "the request line is not METHOD TARGET VERSION"
                                  : "no such rule set");
        goto done;
    }
    memset(&r, 0, sizeof(r));
    memset(&src, 0, sizeof(src));
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r.method = req;
    r.method_len = (size_t)(sp1 - req);
    r.path = sp1 + 1;
    q = memchr(r.path, '?', (size_t)(sp2 - r.path));
    r.path_len = (size_t)((q ? q : sp2) - r.path);
    r.query = q ? q + 1 : "";
    r.query_len = q ? (size_t)(sp2 - q - 1) : 0;
    r.source = (const struct sockaddr *)&src;
    p.text = req;
    p.len = strlen(req);
    r.header = header;
    r.ctx = &p;
    memset(&v, 0, sizeof(v));
    rules_set_eval(compiled, &r, &v);
    gh_sbuf_printf(&o, "{\"set\":");
    gh_json_str(&o, set);
    gh_sbuf_printf(&o, ",\"decided_by\":");
    if (v.action == RULES_NONE || v.id == NULL) {
        gh_sbuf_printf(&o, "null,\"action\":\"none\"");
    } else {
        gh_json_str(&o, v.id);
        gh_sbuf_printf(&o, ",\"action\":\"%s\",\"status\":%d",
                       v.action == RULES_DENY ? "deny" : v.action == RULES_ALLOW ? "allow"
                                                                                  : "redirect",
                       v.status);
    }
    gh_sbuf_printf(&o, ",\"logged\":[");
    for (i = 0; i < v.nlogged; i++) {
        gh_sbuf_printf(&o, "%s", i ? "," : "");
        gh_json_str(&o, v.logged[i]);
    }
    gh_sbuf_printf(&o, "]}\n");
    ret = webui__send(conn, 200, "application/json", o.p, o.len, NULL);
done:
    rules_set_free(compiled);
    gh_conf_free(c);
    free(set);
    free(req);
    return ret;
}

/* GET /api/v1/rule-sets: each set, its rule count and the services using it. */
enum MHD_Result webui__api_rule_sets(struct MHD_Connection *conn)
{
    char err[1024], ver[17];
    size_t i, j;
    struct gh_conf *c = webui__conf_current(ver, err, sizeof(err));
    struct gh_sbuf o = {NULL, 0, 0};

    if (c == NULL)
        return webui__json(conn, 409, "error", err);
    gh_sbuf_printf(&o, "{\"rule_sets\":[");
    for (i = 0; i < c->nrulesets; i++) {
        int first = 1;
        gh_sbuf_printf(&o, "%s{\"name\":", i ? "," : "");
        gh_json_str(&o, c->rulesets[i].name);
        gh_sbuf_printf(&o, ",\"rules\":%zu,\"used_by\":[", c->rulesets[i].nrules);
        for (j = 0; j < c->nservices; j++)
            if (c->services[j].rule_set && strcmp(c->services[j].rule_set,
                                                  c->rulesets[i].name) == 0) {
                gh_sbuf_printf(&o, "%s", first ? "" : ",");
                gh_json_str(&o, c->services[j].name);
                first = 0;
            }
        gh_sbuf_printf(&o, "]}");
    }
    gh_sbuf_printf(&o, "]}\n");
    gh_conf_free(c);
    return webui__send(conn, 200, "application/json", o.p, o.len, NULL);
}

enum MHD_Result webui__r_rule_sets(struct webui_call *c)
{
    return webui__api_rule_sets(c->conn);
}

enum MHD_Result webui__r_rules_test(struct webui_call *c)
{
    return webui__api_rules(c->conn, c->body, c->blen);
}
