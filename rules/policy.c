/*
 * The firewall of one service, decided in one call. A policy is built once
 * per configuration generation from the service's directives (allowed
 * methods, hosts, directories, the rule set, path options, per-source
 * request rate); rules_policy_check() takes a parsed request and returns
 * the verdict with its reason. The data plane asks and obeys; it composes
 * nothing itself, so the whole policy can be read, tested and fuzzed here.
 *
 * Order of the checks, each refusing with its own reason:
 *   request rate of the source  -> rate-limit
 *   method allow-list           -> method
 *   Host against allowed-hosts  -> host-not-allowed (malformed:host)
 *   SNI against allowed-hosts, and SNI equal to Host (no domain fronting)
 *                               -> sni-not-allowed, sni-host-mismatch
 *   path normalised             -> malformed:path-*
 *   normalised path against allowed-dirs -> dir-not-allowed
 *   the rule set (pcre2)        -> rule (deny, redirect); log rules noted
 * The normalised target (path plus the raw query) is written to the
 * caller's buffer: what was checked is what the proxy forwards.
 */
#include "rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "../common/conf.h"

struct rules_policy {
    const struct gh_conf_service *cs; /* borrowed: lives as long as the generation */
    char **hosts;                     /* owned: normalised allowed-hosts patterns */
    size_t nhosts;
    struct rules_set *rules;          /* owned; NULL: none */
    struct rules_path_opts path_opts;
    uint32_t scope;
    int sni_strict;
};

/* A pattern of allowed-hosts normalised once: "*", "*.domain" or a name. */
static char *host_pattern(const char *p)
{
    size_t len = strlen(p);
    char *norm = gh_calloc(1, len + 2);
    int ok;

    if (strcmp(p, "*") == 0) {
        ok = 1;
        memcpy(norm, p, len);
    } else if (p[0] == '*' && p[1] == '.') {
        norm[0] = '*';
        norm[1] = '.';
        ok = rules_host_norm(p + 2, len - 2, norm + 2, len) == 0 && norm[2] != '[';
    } else {
        ok = rules_host_norm(p, len, norm, len + 1) == 0;
    }
    if (!ok) {
        free(norm);
        return NULL;
    }
    return norm;
}

struct rules_policy *rules_policy_new(const char *file, const struct gh_conf *conf,
                                      const struct gh_conf_service *cs, char *err,
                                      size_t errlen)
{
    struct rules_policy *p = gh_calloc(1, sizeof(*p));
    size_t i;

    p->cs = cs;
    p->scope = rules_scope(cs->name);
    p->path_opts.merge_slashes = strcmp(cs->merge_slashes, "on") == 0;
    p->path_opts.allow_encoded_slash = strcmp(cs->encoded_slash, "allow") == 0;
    p->sni_strict = strcmp(cs->sni_host_match, "on") == 0;
    p->hosts = gh_calloc(cs->allowed_hosts.n + 1, sizeof(char *));
    for (i = 0; i < cs->allowed_hosts.n; i++) {
        char *norm = host_pattern(cs->allowed_hosts.v[i]);
        if (norm == NULL) {
            snprintf(err, errlen,
                     "%s:%d:%d: allowed-hosts: '%s' is not a host name, address, "
                     "'*' or '*.domain'",
                     file, cs->allowed_hosts.loc.line, cs->allowed_hosts.loc.col,
                     cs->allowed_hosts.v[i]);
            goto fail;
        }
        p->hosts[p->nhosts++] = norm;
    }
    for (i = 0; i < cs->allowed_dirs.n; i++)
        if (cs->allowed_dirs.v[i][0] != '/' && strcmp(cs->allowed_dirs.v[i], "*") != 0) {
            snprintf(err, errlen, "%s:%d:%d: allowed-dirs: '%s' must start with '/'", file,
                     cs->allowed_dirs.loc.line, cs->allowed_dirs.loc.col, cs->allowed_dirs.v[i]);
            goto fail;
        }
    if (cs->rule_set != NULL) {
        p->rules = rules_set_new(file, gh_conf_ruleset_find(conf, cs->rule_set), err, errlen);
        if (p->rules == NULL)
            goto fail;
    }
    return p;
fail:
    rules_policy_free(p);
    return NULL;
}

void rules_policy_free(struct rules_policy *p)
{
    size_t i;

    if (p == NULL)
        return;
    for (i = 0; i < p->nhosts; i++)
        free(p->hosts[i]);
    free(p->hosts);
    rules_set_free(p->rules);
    free(p);
}

int rules_policy_host_allowed(const struct rules_policy *p, const char *name)
{
    return rules_host_match(p->hosts, p->nhosts, name);
}

static int list_has(const struct gh_conf_list *l, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (strlen(l->v[i]) == n && memcmp(l->v[i], s, n) == 0)
            return 1;
    return 0;
}

/* Normalises the path of t[0, len) into out and appends the raw query. */
static enum gh_reason normalise_target(const struct rules_policy *p, const char *t, size_t len,
                                       char *out, struct rules_decision *d)
{
    const char *q;
    size_t pl, n;
    enum gh_reason why;

    if (len == 1 && t[0] == '*') { /* OPTIONS * */
        memcpy(out, "*", 2);
        d->target_len = d->path_len = 1;
        return GH_REASON_NONE;
    }
    q = memchr(t, '?', len);
    pl = q ? (size_t)(q - t) : len;
    if (pl == 0) { /* absolute-form with no path: "http://host?x" */
        out[0] = '/';
        n = 1;
    } else {
        why = rules_path_norm(t, pl, &p->path_opts, out, len + 2, &n);
        if (why != GH_REASON_NONE)
            return why;
    }
    d->path_len = n;
    if (q != NULL) {
        memcpy(out + n, q, len - pl); /* normalising never grows: it fits */
        n += len - pl;
    }
    out[n] = '\0';
    d->target_len = n;
    return GH_REASON_NONE;
}

enum gh_reason rules_policy_normalise(const struct rules_policy *p, const char *target,
                                      size_t len, char *out, const char **t, size_t *tlen)
{
    struct rules_decision d;
    enum gh_reason why = normalise_target(p, target, len, out, &d);

    *t = out;
    *tlen = d.target_len;
    return why;
}

enum gh_reason rules_policy_check(const struct rules_policy *p, const struct rules_http_req *r,
                                  char *out, struct rules_decision *d)
{
    const struct gh_conf_service *cf = p->cs;
    char host[300], sni[300];
    enum gh_reason why;
    size_t i;
    int ok = 0;

    memset(d, 0, sizeof(*d));
    d->target = out;
    if (cf->request_rate_per_source > 0 &&
        rules_limit_request(p->scope, r->source, (long)cf->request_rate_per_source,
                            (long)cf->request_burst_per_source) == -1)
        return d->why = GH_REASON_RATE_LIMIT;
    if (!list_has(&cf->allowed_methods, r->method, r->method_len))
        return d->why = GH_REASON_METHOD_NOT_ALLOWED;
    if (r->host_len == 0)
        host[0] = '\0'; /* HTTP/1.0 without Host: only "*" lets it through */
    else if (rules_host_norm(r->host, r->host_len, host, sizeof(host)) == -1)
        return d->why = GH_REASON_BAD_HOST;
    if (!rules_host_match(p->hosts, p->nhosts, host)) /* "" matches only "*" */
        return d->why = GH_REASON_HOST_NOT_ALLOWED;
    if (r->sni != NULL && r->sni[0] != '\0') {
        if (rules_host_norm(r->sni, strlen(r->sni), sni, sizeof(sni)) == -1 ||
            !rules_host_match(p->hosts, p->nhosts, sni))
            return d->why = GH_REASON_SNI_NOT_ALLOWED;
        /* HTTP/1.0 without Host names nothing that could differ from SNI */
        if (p->sni_strict && host[0] != '\0' && strcmp(sni, host) != 0)
            return d->why = GH_REASON_SNI_HOST_MISMATCH;
    }
    if ((why = normalise_target(p, r->target, r->target_len, out, d)) != GH_REASON_NONE)
        return d->why = why;
    for (i = 0; i < cf->allowed_dirs.n && !ok; i++)
        ok = rules_glob_match(cf->allowed_dirs.v[i], out, d->path_len);
    if (!ok)
        return d->why = GH_REASON_DIR_NOT_ALLOWED;
    if (p->rules != NULL) {
        struct rules_req q;
        const char *qm = memchr(r->target, '?', r->target_len);
        memset(&q, 0, sizeof(q));
        q.method = r->method;
        q.method_len = r->method_len;
        q.path = out;
        q.path_len = d->path_len;
        q.query = qm ? qm + 1 : "";
        q.query_len = qm ? (size_t)(r->target + r->target_len - qm - 1) : 0;
        q.source = r->source;
        q.header = r->header;
        q.ctx = r->ctx;
        rules_set_eval(p->rules, &q, &d->rule);
        if (d->rule.action == RULES_DENY || d->rule.action == RULES_REDIRECT)
            return d->why = GH_REASON_RULE;
    }
    return d->why = GH_REASON_NONE;
}
