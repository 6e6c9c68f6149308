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
 *   normalised path against allowed-dirs (allowed-dirs-case) -> dir-not-allowed
 *   the rule set (pcre2)        -> rule (deny, redirect); log rules noted
 *   `redirect https`            -> NONE with d->redirect set: answered, not
 *                                  forwarded (the whole firewall came first,
 *                                  so a port-80 service refuses what its
 *                                  https twin would, and never redirects a
 *                                  path the normaliser refused)
 * The normalised target (path plus the raw query) is written to the
 * caller's buffer: what was checked is what the proxy forwards.
 *
 * Redirect locations are built here too, as pieces the proxy writes out
 * (rules_location_write): a redirect rule's target with $host (the
 * normalised Host), $path (the normalised path) and $query (the raw query,
 * without '?') expanded; and for `redirect https`, https://HOST[:PORT]
 * followed by the path and query exactly as the client sent them, once they
 * have passed the parser and the normaliser. Bytes a URI may not hold are
 * percent-encoded on the way out, so the Location is always one valid
 * header value.
 */
#include "rules.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

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
    int dirs_nocase;  /* allowed-dirs-case insensitive */
    int redirect;     /* `redirect https`: its status; 0: none */
    char port[8];     /* ":PORT" of `redirect https port`, or "" */
    /* Scrapes of an application's metrics (/metrics; the management
     * application's /api/v1/stats too): from metrics-allow, or with the
     * token whose SHA-256 this is. */
    int metrics_app;  /* 1: any app; 2: the management app */
    struct gh_cidr *metrics_allow;
    size_t nmetrics_allow;
    unsigned char metrics_token[32];
    int has_metrics_token;
};

/* The token of metrics-token-file: its first line, at least 16 bytes, in a
 * file that group and others cannot read. */
static int metrics_token(const char *file, const struct gh_conf_service *cs,
                         unsigned char digest[32], char *err, size_t errlen)
{
    const char *path = cs->metrics_token_file;
    char *text, *nl;
    size_t len = 0;
    struct stat sb;
    unsigned int dl = 0;
    int ok;

    if (stat(path, &sb) == -1 || (text = gh_read_file_max(path, 4096, &len)) == NULL) {
        snprintf(err, errlen, "%s:%d:%d: metrics-token-file %s: %s", file, cs->loc.line,
                 cs->loc.col, path, strerror(errno));
        return -1;
    }
    if ((sb.st_mode & 077) != 0) {
        snprintf(err, errlen, "%s:%d:%d: metrics-token-file %s: group or others may read it "
                 "(chmod 600)", file, cs->loc.line, cs->loc.col, path);
        gh_wipe(text, len);
        free(text);
        return -1;
    }
    nl = memchr(text, '\n', len);
    if (nl != NULL)
        len = (size_t)(nl - text);
    while (len > 0 && (text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    ok = len >= 16 && EVP_Digest(text, len, digest, &dl, EVP_sha256(), NULL) == 1;
    gh_wipe(text, len);
    free(text);
    if (!ok)
        snprintf(err, errlen, "%s:%d:%d: metrics-token-file %s: the token (first line) must be "
                 "at least 16 characters", file, cs->loc.line, cs->loc.col, path);
    return ok ? 0 : -1;
}

/* Whether a scrape of the metrics may pass: a source in metrics-allow, or
 * the token (compared as digests, in constant time). */
static int metrics_ok(const struct rules_policy *p, const struct rules_http_req *r)
{
    const char *v;
    size_t i, vlen;
    unsigned char d[32];
    unsigned int dl = 0;

    for (i = 0; i < p->nmetrics_allow; i++)
        if (r->source != NULL && gh_cidr_match(&p->metrics_allow[i], r->source))
            return 1;
    if (!p->has_metrics_token || r->header == NULL ||
        r->header(r->ctx, "authorization", 0, &v, &vlen) == -1 || vlen < 8 ||
        strncasecmp(v, "Bearer ", 7) != 0)
        return 0;
    if (EVP_Digest(v + 7, vlen - 7, d, &dl, EVP_sha256(), NULL) != 1)
        return 0;
    return CRYPTO_memcmp(d, p->metrics_token, sizeof(d)) == 0;
}

/* The metrics paths in any spelling an application might also take for
 * them: any case, a trailing '/', ';' parameters. */
static int is_metrics_path(const struct rules_policy *p, const char *path, size_t n)
{
    const char *semi = memchr(path, ';', n);

    if (semi != NULL)
        n = (size_t)(semi - path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    return (n == 8 && strncasecmp(path, "/metrics", 8) == 0) ||
           (p->metrics_app == 2 && n == 13 && strncasecmp(path, "/api/v1/stats", 13) == 0);
}

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
    p->dirs_nocase = strcmp(cs->allowed_dirs_case, "insensitive") == 0;
    p->redirect = (int)cs->redirect_https;
    if (cs->redirect_https_port != 0 && cs->redirect_https_port != 443)
        snprintf(p->port, sizeof(p->port), ":%lld", cs->redirect_https_port);
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
    if (cs->app != NULL) {
        p->metrics_app = strcmp(cs->app, "management") == 0 ? 2 : 1;
        p->metrics_allow = gh_calloc(cs->metrics_allow.n + 1, sizeof(*p->metrics_allow));
        for (i = 0; i < cs->metrics_allow.n; i++)
            if (strcmp(cs->metrics_allow.v[i], "none") != 0 &&
                gh_cidr_parse(cs->metrics_allow.v[i], &p->metrics_allow[p->nmetrics_allow++]) ==
                    -1) {
                snprintf(err, errlen, "%s:%d:%d: metrics-allow: '%s' is not an address range",
                         file, cs->metrics_allow.loc.line, cs->metrics_allow.loc.col,
                         cs->metrics_allow.v[i]);
                goto fail;
            }
        if (cs->metrics_token_file != NULL) {
            if (metrics_token(file, cs, p->metrics_token, err, errlen) == -1)
                goto fail;
            p->has_metrics_token = 1;
        }
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
    free(p->metrics_allow);
    gh_wipe(p->metrics_token, sizeof(p->metrics_token));
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

/* Bytes a URI's path or query holds as they are: unreserved, sub-delims,
 * ':', '@', '/', '?', and '%' (a valid escape, checked by the caller). The
 * rest (quotes, '<', '>', '\\', '^', '`', '{', '|', '}', '#', and anything
 * outside printable ASCII) is percent-encoded. */
static int uri_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("-._~!$&'()*+,;=:@/?%", c) != NULL);
}

size_t rules_location_write(const struct rules_location *l, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i, k, n = 0;

    for (i = 0; i < l->n; i++) {
        const struct rules_piece *pc = &l->v[i];
        for (k = 0; k < pc->len; k++) {
            unsigned char c = (unsigned char)pc->p[k];
            int keep = !pc->esc || (uri_byte(c) && c != '%');
            if (pc->esc && c == '%') /* kept only as the start of a valid escape */
                keep = k + 2 < pc->len && gh_hexval((unsigned char)pc->p[k + 1]) >= 0 &&
                       gh_hexval((unsigned char)pc->p[k + 2]) >= 0;
            if (keep) {
                if (out != NULL && n < RULES_LOCATION_MAX)
                    out[n] = (char)c;
                n++;
                continue;
            }
            if (out != NULL && n + 3 <= RULES_LOCATION_MAX) {
                out[n] = '%';
                out[n + 1] = hex[c >> 4];
                out[n + 2] = hex[c & 15];
            }
            n += 3;
        }
    }
    if (out != NULL)
        out[n < RULES_LOCATION_MAX ? n : RULES_LOCATION_MAX] = '\0';
    return n;
}

/* Appends a piece; a full table counts as a location too long to write
 * (the parser bounds the $names of a target, so it does not happen). */
static int piece(struct rules_location *l, const char *p, size_t len, int esc)
{
    if (len == 0)
        return 0;
    if (l->n == RULES_LOCATION_PIECES)
        return -1;
    l->v[l->n].p = p;
    l->v[l->n].len = len;
    l->v[l->n].esc = esc;
    l->n++;
    return 0;
}

static enum gh_reason location_done(struct rules_location *l, int overflow)
{
    if (overflow || rules_location_write(l, NULL) > RULES_LOCATION_MAX) {
        l->status = 0;
        return GH_REASON_URI_TOO_LONG;
    }
    return GH_REASON_NONE;
}

/* A redirect rule's target with its $names expanded. $path after a '/'
 * drops its own leading '/', and its leading run of '/' (merge-slashes
 * off) counts as one, so neither "/$path" nor "$path" can become "//host"
 * (a protocol-relative location, elsewhere). An empty $query at the end
 * takes the '?' or '&' before it along. */
static enum gh_reason rule_location(struct rules_decision *d, const char *path, size_t plen,
                                    const char *query, size_t qlen)
{
    struct rules_location *l = &d->redirect;
    const char *t = d->rule.target;
    size_t i = 0, start = 0, n;
    int bad = 0;

    l->status = d->rule.status;
    if (plen == 1 && path[0] == '*') /* OPTIONS *: no path to keep */
        path = "/";
    while (t[i] != '\0') {
        if (t[i] != '$') {
            i++;
            continue;
        }
        bad |= piece(l, t + start, i - start, 0);
        switch (gh_conf_locvar(t + i, &n)) {
        case GH_LOCVAR_HOST:
            if (d->host[0] == '\0') {
                l->status = 0;
                return GH_REASON_NO_HOST; /* HTTP/1.0 without Host: nothing to keep */
            }
            bad |= piece(l, d->host, strlen(d->host), 0);
            break;
        case GH_LOCVAR_PATH: {
            const char *pp = path;
            size_t pn = plen;
            const struct rules_piece *last = l->n ? &l->v[l->n - 1] : NULL;
            while (pn > 1 && pp[1] == '/') {
                pp++;
                pn--;
            }
            if (last != NULL && last->p[last->len - 1] == '/') {
                pp++;
                pn--;
            }
            bad |= piece(l, pp, pn, 1);
            break;
        }
        case GH_LOCVAR_QUERY:
            if (qlen == 0 && t[i + n] == '\0' && l->n > 0) {
                struct rules_piece *last = &l->v[l->n - 1];
                if (!last->esc && (last->p[last->len - 1] == '?' || last->p[last->len - 1] == '&') &&
                    --last->len == 0)
                    l->n--;
            }
            bad |= piece(l, query, qlen, 1);
            break;
        case GH_LOCVAR_UNKNOWN:
            bad |= piece(l, t + i, n, 0); /* the parser refuses these */
            break;
        }
        i += n;
        start = i;
    }
    bad |= piece(l, t + start, i - start, 0);
    return location_done(l, bad);
}

/* `redirect https`: https://HOST[:PORT] then the path and query as sent.
 * r->target passed the parser (no control bytes, spaces or '#') and its path
 * the normaliser; what a URI may not hold is escaped on the way out. */
static enum gh_reason https_location(const struct rules_policy *p, const struct rules_http_req *r,
                                     struct rules_decision *d)
{
    struct rules_location *l = &d->redirect;
    const char *q = memchr(r->target, '?', r->target_len);
    size_t pl = q ? (size_t)(q - r->target) : r->target_len;
    int bad = 0;

    if (d->host[0] == '\0')
        return GH_REASON_NO_HOST; /* HTTP/1.0 without Host: nothing to keep */
    l->status = p->redirect;
    bad |= piece(l, "https://", 8, 0);
    bad |= piece(l, d->host, strlen(d->host), 0);
    bad |= piece(l, p->port, strlen(p->port), 0);
    if (pl == 0 || (r->target_len == 1 && r->target[0] == '*'))
        bad |= piece(l, "/", 1, 0);
    else
        bad |= piece(l, r->target, pl, 1);
    if (q != NULL)
        bad |= piece(l, q, r->target_len - pl, 1);
    return location_done(l, bad);
}

enum gh_reason rules_policy_check(const struct rules_policy *p, const struct rules_http_req *r,
                                  char *out, struct rules_decision *d)
{
    const struct gh_conf_service *cf = p->cs;
    char *host = d->host, sni[300];
    enum gh_reason why;
    size_t i;
    int ok = 0;

    memset(d, 0, sizeof(*d));
    d->target = out;
    if (cf->request_rate_per_source > 0 &&
        (r->rate_verdict != 0 ? r->rate_verdict
                              : rules_limit_request(p->scope, r->source,
                                                    (long)cf->request_rate_per_source,
                                                    (long)cf->request_burst_per_source)) == -1)
        return d->why = GH_REASON_RATE_LIMIT;
    if (!list_has(&cf->allowed_methods, r->method, r->method_len))
        return d->why = GH_REASON_METHOD_NOT_ALLOWED;
    if (r->host_len == 0)
        host[0] = '\0'; /* HTTP/1.0 without Host: only "*" lets it through */
    else if (rules_host_norm(r->host, r->host_len, host, sizeof(d->host)) == -1)
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
        ok = p->dirs_nocase ? rules_glob_match_nocase(cf->allowed_dirs.v[i], out, d->path_len)
                            : rules_glob_match(cf->allowed_dirs.v[i], out, d->path_len);
    if (!ok)
        return d->why = GH_REASON_DIR_NOT_ALLOWED;
    if (p->metrics_app && is_metrics_path(p, out, d->path_len) && !metrics_ok(p, r))
        return d->why = GH_REASON_METRICS_NOT_ALLOWED;
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
        if (d->rule.action == RULES_DENY)
            return d->why = GH_REASON_RULE;
        if (d->rule.action == RULES_REDIRECT) {
            why = rule_location(d, q.path, q.path_len, q.query, q.query_len);
            return d->why = why != GH_REASON_NONE ? why : GH_REASON_RULE;
        }
    }
    if (p->redirect != 0)
        return d->why = https_location(p, r, d);
    return d->why = GH_REASON_NONE;
}
