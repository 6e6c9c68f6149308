/*
 * Header rules, compiled once per generation (gen.c) and applied by the
 * head writers (headers.c) while they copy a parsed message's lines.
 *
 * The rules of one direction become two things at build time. A list of
 * names whose received lines are dropped (every name a `remove` or `set`
 * rule names, wherever it stands in the list: the received lines exist
 * before any rule runs). And one block of bytes, "Name: value\r\n" lines,
 * written after the copied end-to-end lines: the rules run in order over
 * an empty list (`add` appends, `set` drops the earlier additions of its
 * name and appends, `remove` drops them), so the result does not depend
 * on the message and costs nothing per request to work out.
 *
 * The parser (common/conf_headers.c) has refused every name gatehouse
 * frames by or writes itself and every value with a control byte, so the
 * lines these rules add or remove cannot change how a head is framed: it
 * still has one Host first and one framing header, which gatehouse writes
 * after these lines.
 *
 * rewrite-host maps internal names to the published one in the real
 * servers' final responses: the authority of an absolute http(s) URL (or a
 * scheme-relative one) in Location and Content-Location whose host is an
 * internal name, any port, becomes the service's scheme and the published
 * name (with the port the clients use, left out when it is the scheme's
 * default); a Set-Cookie Domain attribute equal to an internal name (with
 * or without its leading dot) becomes the published name. Nothing else in
 * the value changes.
 */
#include "header_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/common.h"

struct name {
    char *s; /* owned; as written (matched in any case) */
    size_t n;
};

struct dir {
    struct name *drop; /* owned array: names whose received lines are dropped */
    size_t ndrop;
    char *added; /* owned: the rules' own lines, "Name: value\r\n" each */
    size_t nadded;
};

struct map {
    char *internal; /* owned, lower-case */
    size_t ilen;
    char *host; /* owned: the published name (Domain=) */
    size_t hlen;
    char *auth; /* owned: scheme and authority, "https://name[:port]" */
    size_t alen;
    size_t slen; /* bytes of auth before the name: "https://" */
};

struct proxy_hdr_rules {
    struct dir req, resp;
    int strip_versions;
    struct map *maps; /* owned array */
    size_t nmaps;
};

static int name_eq(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && strncasecmp(a, b, an) == 0;
}

/* Stripped by strip-version-headers; Server has its own kind (server-header
 * follows strip-version-headers unless written). */
static int is_version(const char *s, size_t n)
{
    return name_eq(s, n, "x-powered-by", 12) || name_eq(s, n, "x-aspnet-version", 16) ||
           name_eq(s, n, "x-aspnetmvc-version", 19);
}

static int in_names(const struct name *v, size_t n, const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (name_eq(v[i].s, v[i].n, s, len))
            return 1;
    return 0;
}

static void sbuf_put(struct gh_sbuf *o, const char *s)
{
    gh_sbuf_append(o, s, strlen(s));
}

/* The drop list and the added block of one direction's rules. */
static void build_dir(struct dir *d, const struct gh_conf_hdr_rule *r, size_t n)
{
    const struct gh_conf_hdr_rule **pending = gh_calloc(n + 1, sizeof(*pending));
    struct gh_sbuf o = {NULL, 0, 0};
    size_t i, k, np = 0;

    d->drop = gh_calloc(n + 1, sizeof(*d->drop));
    for (i = 0; i < n; i++) {
        size_t len = strlen(r[i].name);
        if (r[i].op != GH_HDR_ADD && !in_names(d->drop, d->ndrop, r[i].name, len)) {
            d->drop[d->ndrop].s = gh_strdup(r[i].name);
            d->drop[d->ndrop++].n = len;
        }
        if (r[i].op != GH_HDR_ADD) {
            size_t w = 0;
            for (k = 0; k < np; k++)
                if (strcasecmp(pending[k]->name, r[i].name) != 0)
                    pending[w++] = pending[k];
            np = w;
        }
        if (r[i].op != GH_HDR_REMOVE)
            pending[np++] = &r[i];
    }
    for (k = 0; k < np; k++) {
        sbuf_put(&o, pending[k]->name);
        sbuf_put(&o, ": ");
        sbuf_put(&o, pending[k]->value);
        sbuf_put(&o, "\r\n");
    }
    d->added = o.p;
    d->nadded = o.len;
    free(pending);
}

struct proxy_hdr_rules *proxy__hdr_rules_new(const char *file, const struct gh_conf_service *cs,
                                             char *err, size_t errlen)
{
    struct proxy_hdr_rules *r = gh_calloc(1, sizeof(*r));
    int tls = cs->certificates.n > 0;
    char lhost[64];
    uint16_t lport;
    size_t i;

    if (gh_split_hostport(cs->listen, lhost, sizeof(lhost), &lport) == -1) {
        snprintf(err, errlen, "%s:%d:%d: listen %s: no port", file, cs->listen_loc.line,
                 cs->listen_loc.col, cs->listen);
        free(r);
        return NULL;
    }
    build_dir(&r->req, cs->headers.req, cs->headers.nreq);
    build_dir(&r->resp, cs->headers.resp, cs->headers.nresp);
    r->strip_versions = strcmp(cs->strip_version_headers, "on") == 0;
    r->maps = gh_calloc(cs->headers.nrewrites + 1, sizeof(*r->maps));
    for (i = 0; i < cs->headers.nrewrites; i++) {
        const struct gh_conf_host_rewrite *w = &cs->headers.rewrites[i];
        struct map *m = &r->maps[r->nmaps++];
        long long port = w->public_port ? w->public_port : lport;
        char auth[320];
        int n;
        if (port == (tls ? 443 : 80))
            n = snprintf(auth, sizeof(auth), "%s://%s", tls ? "https" : "http", w->public_host);
        else
            n = snprintf(auth, sizeof(auth), "%s://%s:%lld", tls ? "https" : "http", w->public_host,
                         port);
        if (n < 0 || (size_t)n >= sizeof(auth)) {
            snprintf(err, errlen, "%s:%d:%d: rewrite-host: name too long", file, w->loc.line,
                     w->loc.col);
            proxy__hdr_rules_free(r);
            return NULL;
        }
        m->internal = gh_strdup(w->internal);
        m->ilen = strlen(m->internal);
        m->host = gh_strdup(w->public_host);
        m->hlen = strlen(m->host);
        m->auth = gh_strdup(auth);
        m->alen = (size_t)n;
        m->slen = tls ? 8 : 7;
    }
    return r;
}

void proxy__hdr_rules_free(struct proxy_hdr_rules *r)
{
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->req.ndrop; i++)
        free(r->req.drop[i].s);
    for (i = 0; i < r->resp.ndrop; i++)
        free(r->resp.drop[i].s);
    free(r->req.drop);
    free(r->resp.drop);
    free(r->req.added);
    free(r->resp.added);
    for (i = 0; i < r->nmaps; i++) {
        free(r->maps[i].internal);
        free(r->maps[i].host);
        free(r->maps[i].auth);
    }
    free(r->maps);
    free(r);
}

static const struct map *find_map(const struct proxy_hdr_rules *r, const char *h, size_t n)
{
    size_t i;

    if (n > 1 && h[n - 1] == '.')
        n--; /* the fully-qualified spelling names the same host: it leaks the same */
    for (i = 0; i < r->nmaps; i++)
        if (name_eq(r->maps[i].internal, r->maps[i].ilen, h, n))
            return &r->maps[i];
    return NULL;
}

/* A URL value v: when it is absolute http(s) or scheme-relative and its
 * host is an internal name, writes it with the published scheme and
 * authority and returns 1; otherwise writes nothing and returns 0. */
static int put_url(struct gh_buf *b, const char *v, size_t n, const struct proxy_hdr_rules *r)
{
    size_t a, e, he, k;
    const struct map *m;
    int relative = 0;

    if (n >= 7 && strncasecmp(v, "http://", 7) == 0)
        a = 7;
    else if (n >= 8 && strncasecmp(v, "https://", 8) == 0)
        a = 8;
    else if (n >= 2 && v[0] == '/' && v[1] == '/')
        a = 2, relative = 1;
    else
        return 0;
    for (e = a; e < n && v[e] != '/' && v[e] != '?' && v[e] != '#'; e++)
        if (v[e] == '@')
            return 0; /* userinfo: not ours to reinterpret */
    if (e > a && v[a] == '[') {
        for (he = a; he < e && v[he] != ']'; he++)
            ;
        if (he == e)
            return 0;
        he++;
    } else {
        for (he = a; he < e && v[he] != ':'; he++)
            ;
    }
    if (he < e && v[he] != ':')
        return 0;
    for (k = he + 1; k < e; k++)
        if (v[k] < '0' || v[k] > '9')
            return 0;
    m = find_map(r, v + a, he - a);
    if (m == NULL)
        return 0;
    if (relative)
        http1_put(b, m->auth + m->slen - 2, m->alen - m->slen + 2); /* "//name[:port]" */
    else
        http1_put(b, m->auth, m->alen);
    http1_put(b, v + e, n - e);
    return 1;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* A Set-Cookie value: every Domain attribute naming an internal host (a
 * leading dot kept) gets the published name; the rest is copied. */
static void put_cookie(struct gh_buf *b, const char *v, size_t n, const struct proxy_hdr_rules *r)
{
    size_t done = 0, p;

    for (p = 0; p < n && v[p] != ';'; p++)
        ; /* the cookie-pair itself is never looked into */
    while (p < n) {
        size_t ns, ne, vs, ve;
        const struct map *m;
        p++; /* the ';' */
        while (p < n && is_ows(v[p]))
            p++;
        ns = p;
        while (p < n && v[p] != '=' && v[p] != ';')
            p++;
        ne = p;
        while (ne > ns && is_ows(v[ne - 1]))
            ne--;
        if (p == n || v[p] != '=')
            continue; /* a flag such as Secure */
        p++;
        while (p < n && is_ows(v[p]))
            p++;
        vs = p;
        while (p < n && v[p] != ';')
            p++;
        ve = p;
        while (ve > vs && is_ows(v[ve - 1]))
            ve--;
        if (!name_eq(v + ns, ne - ns, "domain", 6))
            continue;
        if (vs < ve && v[vs] == '.')
            vs++;
        m = find_map(r, v + vs, ve - vs);
        if (m == NULL)
            continue;
        http1_put(b, v + done, vs - done);
        http1_put(b, m->host, m->hlen);
        done = ve;
    }
    http1_put(b, v + done, n - done);
}

static void put_line(struct gh_buf *b, const char *head, const struct http1_hdr *h)
{
    http1_put_field(b, head, h->name.off, h->name.len, h->value.off, h->value.len);
}

void proxy__hdr_write_req_fields(struct gh_buf *b, const char *head, const struct http1_msg *m,
                                 unsigned keep, const struct proxy_hdr_rules *r)
{
    unsigned i;

    for (i = 0; i < m->nhdrs; i++) {
        const struct http1_hdr *h = &m->hdrs[i];
        if (!(keep & HTTP1_KEEP(h->kind)) ||
            in_names(r->req.drop, r->req.ndrop, head + h->name.off, h->name.len))
            continue;
        put_line(b, head, h);
    }
    if (r->req.nadded > 0)
        http1_put(b, r->req.added, r->req.nadded);
}

void proxy__hdr_write_resp_fields(struct gh_buf *b, const char *head, const struct http1_msg *m,
                                  unsigned keep, const struct proxy_hdr_rules *r)
{
    int final = m->status >= 200;
    unsigned i;

    for (i = 0; i < m->nhdrs; i++) {
        const struct http1_hdr *h = &m->hdrs[i];
        const char *nm = head + h->name.off, *v = head + h->value.off;
        size_t nl = h->name.len;
        if (!(keep & HTTP1_KEEP(h->kind)) || (r->strip_versions && is_version(nm, nl)) ||
            (final && in_names(r->resp.drop, r->resp.ndrop, nm, nl)))
            continue;
        if (final && r->nmaps > 0 &&
            (name_eq(nm, nl, "location", 8) || name_eq(nm, nl, "content-location", 16))) {
            http1_put(b, nm, nl);
            http1_put(b, ": ", 2);
            if (!put_url(b, v, h->value.len, r))
                http1_put(b, v, h->value.len);
            http1_put(b, "\r\n", 2);
            continue;
        }
        if (final && r->nmaps > 0 && name_eq(nm, nl, "set-cookie", 10)) {
            http1_put(b, nm, nl);
            http1_put(b, ": ", 2);
            put_cookie(b, v, h->value.len, r);
            http1_put(b, "\r\n", 2);
            continue;
        }
        put_line(b, head, h);
    }
    if (final && r->resp.nadded > 0)
        http1_put(b, r->resp.added, r->resp.nadded);
}
