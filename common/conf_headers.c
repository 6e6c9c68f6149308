/*
 * The header rules of a service, as read from the config (Kemp's "Add HTTP
 * Headers"):
 *
 *   request-header  add|set NAME VALUE | remove NAME
 *   response-header add|set NAME VALUE | remove NAME
 *   rewrite-host    INTERNAL PUBLIC[:PORT]
 *   strip-version-headers on|off        (a typed directive, conf_table.c)
 *
 * Everything a rule could use to break a message is refused here, at -t,
 * with the rule's file:line:col: a name that is not a token, a value with a
 * control byte (CR, LF and NUL never get past the lexer; DEL and the rest
 * stop here), and any name gatehouse frames a message by or writes itself.
 * What is left can only add, replace or remove end-to-end lines, which is
 * what proxy/header_rules.c applies. The lists are kept in order: rules
 * apply in the order written.
 */
#include "conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "conf_int.h"

#define MAX_RULES 64 /* per direction: each is looked at for every line of every head */
#define MAX_REWRITES 64
#define MAX_NAME 128
#define MAX_VALUE 2048

#define REQ 1u
#define RESP 2u

/* Names no rule may touch, and why: gatehouse frames messages by them,
 * writes them itself from the checked message, or checks them. A row with
 * prefix set covers every name that begins with it. */
static const struct {
    const char *name; /* lower-case */
    int prefix;
    unsigned sides;
    const char *why;
} owned[] = {
    {"host", 0, REQ | RESP, "gatehouse writes Host from the checked request"},
    {"content-length", 0, REQ | RESP, "gatehouse writes the one framing header itself"},
    {"transfer-encoding", 0, REQ | RESP, "gatehouse writes the one framing header itself"},
    {"connection", 0, REQ | RESP, "it is hop-by-hop; gatehouse writes its own"},
    {"keep-alive", 0, REQ | RESP, "it is hop-by-hop; gatehouse writes its own"},
    {"proxy-connection", 0, REQ | RESP, "it is hop-by-hop and never forwarded"},
    {"te", 0, REQ | RESP, "it is hop-by-hop and never forwarded"},
    {"trailer", 0, REQ | RESP, "it is hop-by-hop and never forwarded"},
    {"upgrade", 0, REQ | RESP, "gatehouse decides upgrades itself (allowed-upgrades)"},
    {"sec-websocket-", 1, REQ | RESP, "gatehouse checks the WebSocket handshake"},
    {"x-forwarded-", 1, REQ, "gatehouse sets the forwarding headers itself"},
    {"forwarded", 0, REQ, "gatehouse sets the forwarding headers itself"},
    {"x-real-ip", 0, REQ, "gatehouse sets the forwarding headers itself"},
    {"via", 0, REQ, "gatehouse sets the forwarding headers itself"},
    {"proxy-authorization", 0, REQ, "it is meant for proxies and never forwarded"},
    {"expect", 0, REQ, "gatehouse answers Expect: 100-continue itself"},
    {"strict-transport-security", 0, RESP, "hsts-max-age sets it"},
};

#define ERR(loc, ...) gh__conf_error(err, errlen, file, (loc), __VA_ARGS__)

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int starts_with_ci(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);

    return strlen(s) >= n && strncasecmp(s, prefix, n) == 0;
}

/* A header name a rule may use on sides, or -1 with the error set. */
static int check_name(const char *d, const struct gh_tok *t, unsigned side, const char *file,
                      char *err, size_t errlen)
{
    const char *n = t->text;
    size_t i, len = strlen(n);

    if (len == 0 || len > MAX_NAME) {
        ERR(t->loc, "'%s': a header name has 1 to %d characters", d, MAX_NAME);
        return -1;
    }
    for (i = 0; i < len; i++)
        if (!is_tchar((unsigned char)n[i])) {
            ERR(t->loc,
                "'%s': '%s' is not a header name (letters, digits and "
                "!#$%%&'*+-.^_`|~ only)",
                d, n);
            return -1;
        }
    for (i = 0; i < GH_ARRAY_LEN(owned); i++) {
        if (!(owned[i].sides & side))
            continue;
        if (owned[i].prefix ? starts_with_ci(n, owned[i].name)
                            : strcasecmp(n, owned[i].name) == 0) {
            ERR(t->loc, "'%s': %s is not for rules: %s", d, n, owned[i].why);
            return -1;
        }
    }
    if (side == REQ && strchr(n, '_') != NULL) {
        /* CGI-style servers read '_' as '-': X_Forwarded_For would be
         * X-Forwarded-For to them (and clients' such names are dropped). */
        ERR(t->loc, "'%s': %s is not for rules: servers may read '_' as '-' (underscore-headers)",
            d, n);
        return -1;
    }
    return 0;
}

/* A value that cannot break a head: printable ASCII, with spaces and tabs
 * inside only (a parser trims them at the ends, so the value would not read
 * back as written). */
static int check_value(const char *d, const struct gh_tok *t, const char *file, char *err,
                       size_t errlen)
{
    const char *v = t->text;
    size_t i, len = strlen(v);

    if (len > MAX_VALUE) {
        ERR(t->loc, "'%s': a value has at most %d characters", d, MAX_VALUE);
        return -1;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c >= 0x7f) {
            ERR(t->loc,
                "'%s': byte 0x%02x in the value: printable ASCII, spaces and tabs only "
                "(no CR, LF, NUL or other control bytes)",
                d, c);
            return -1;
        }
    }
    if (len > 0 && (v[0] == ' ' || v[0] == '\t' || v[len - 1] == ' ' || v[len - 1] == '\t')) {
        ERR(t->loc, "'%s': the value may not begin or end with a space or tab", d);
        return -1;
    }
    return 0;
}

static void *grow(void *arr, size_t n, size_t size)
{
    char *p = realloc(arr, (n + 1) * size);

    if (p == NULL)
        abort();
    memset(p + n * size, 0, size);
    return p;
}

static int rule(struct gh_conf_headers *h, const struct gh_tok *name, const struct gh_tok *a,
                int nargs, const char *file, char *err, size_t errlen)
{
    const char *d = name->text;
    unsigned side = strcmp(d, "request-header") == 0 ? REQ : RESP;
    struct gh_conf_hdr_rule **arr = side == REQ ? &h->req : &h->resp;
    size_t *n = side == REQ ? &h->nreq : &h->nresp;
    struct gh_conf_hdr_rule *r;
    enum gh_conf_hdr_op op;
    int want;

    if (nargs == 0) {
        ERR(name->loc, "'%s' takes add NAME VALUE, set NAME VALUE or remove NAME", d);
        return -1;
    }
    if (strcmp(a[0].text, "add") == 0)
        op = GH_HDR_ADD;
    else if (strcmp(a[0].text, "set") == 0)
        op = GH_HDR_SET;
    else if (strcmp(a[0].text, "remove") == 0)
        op = GH_HDR_REMOVE;
    else {
        ERR(a[0].loc, "'%s': unknown action '%s' (add, set, remove)", d, a[0].text);
        return -1;
    }
    want = op == GH_HDR_REMOVE ? 2 : 3;
    if (nargs != want) {
        if (nargs > want)
            ERR(a[want].loc, "'%s %s' takes %s", d, a[0].text,
                op == GH_HDR_REMOVE ? "a name and no value" : "a name and one value");
        else
            ERR(a[nargs - 1].loc, "'%s %s' needs %s", d, a[0].text,
                nargs == 1 ? "a header name" : "a value (\"\" for an empty one)");
        return -1;
    }
    if (check_name(d, &a[1], side, file, err, errlen) == -1 ||
        (op != GH_HDR_REMOVE && check_value(d, &a[2], file, err, errlen) == -1))
        return -1;
    if (*n >= MAX_RULES) {
        ERR(name->loc, "'%s': at most %d rules a service", d, MAX_RULES);
        return -1;
    }
    *arr = grow(*arr, *n, sizeof(**arr));
    r = &(*arr)[(*n)++];
    r->op = op;
    r->name = gh_strdup(a[1].text);
    r->value = op == GH_HDR_REMOVE ? NULL : gh_strdup(a[2].text);
    r->loc = name->loc;
    return 0;
}

/* A DNS name or an IPv4 address (letters, digits, '-', '.'; no empty
 * label), or an IPv6 address in brackets; lower-cased into out. */
static int host_name(const char *s, size_t n, char *out, size_t outlen)
{
    size_t i;

    if (n == 0 || n >= outlen)
        return -1;
    if (s[0] == '[') {
        if (n < 4 || s[n - 1] != ']')
            return -1;
        for (i = 1; i + 1 < n; i++)
            if (gh_hexval((unsigned char)s[i]) < 0 && s[i] != ':' && s[i] != '.')
                return -1;
    } else {
        if (s[0] == '.' || s[0] == '-' || s[n - 1] == '.')
            return -1;
        for (i = 0; i < n; i++) {
            char c = s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.') ||
                (c == '.' && s[i + 1] == '.'))
                return -1;
        }
    }
    for (i = 0; i < n; i++)
        out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    out[n] = '\0';
    return 0;
}

static int rewrite(struct gh_conf_headers *h, const struct gh_tok *name, const struct gh_tok *a,
                   int nargs, const char *file, char *err, size_t errlen)
{
    char in[256], pub[256];
    const char *p = nargs == 2 ? a[1].text : NULL, *colon;
    struct gh_conf_host_rewrite *w;
    long port = 0;
    size_t i, hl;

    if (nargs != 2) {
        ERR(nargs > 2 ? a[2].loc : name->loc, "'rewrite-host' takes INTERNAL PUBLIC[:PORT]");
        return -1;
    }
    if (host_name(a[0].text, strlen(a[0].text), in, sizeof(in)) == -1) {
        ERR(a[0].loc, "'rewrite-host': '%s' is not a host name or address (no scheme, no port)",
            a[0].text);
        return -1;
    }
    colon = strrchr(p, ':');
    if (colon != NULL && p[0] == '[' && strchr(colon, ']') != NULL)
        colon = NULL; /* inside the brackets of an IPv6 address */
    hl = colon ? (size_t)(colon - p) : strlen(p);
    if (host_name(p, hl, pub, sizeof(pub)) == -1 ||
        (colon != NULL && gh_parse_long(colon + 1, 1, 65535, &port) == -1)) {
        ERR(a[1].loc, "'rewrite-host': '%s' is not a published name, or name:port", p);
        return -1;
    }
    for (i = 0; i < h->nrewrites; i++)
        if (strcmp(h->rewrites[i].internal, in) == 0) {
            ERR(a[0].loc, "'rewrite-host': %s is already rewritten at line %d", a[0].text,
                h->rewrites[i].loc.line);
            return -1;
        }
    if (h->nrewrites >= MAX_REWRITES) {
        ERR(name->loc, "'rewrite-host': at most %d a service", MAX_REWRITES);
        return -1;
    }
    h->rewrites = grow(h->rewrites, h->nrewrites, sizeof(*h->rewrites));
    w = &h->rewrites[h->nrewrites++];
    w->internal = gh_strdup(in);
    w->public_host = gh_strdup(pub);
    w->public_port = port;
    w->loc = name->loc;
    return 0;
}

int gh__conf_headers_own(const char *directive)
{
    return strcmp(directive, "request-header") == 0 || strcmp(directive, "response-header") == 0 ||
           strcmp(directive, "rewrite-host") == 0;
}

int gh__conf_headers_stmt(struct gh_conf_service *sv, const struct gh_tok *name,
                          const struct gh_tok *args, int nargs, int has_block, const char *file,
                          char *err, size_t errlen)
{
    if (has_block) {
        ERR(name->loc, "'%s' takes no block", name->text);
        return -1;
    }
    if (strcmp(name->text, "rewrite-host") == 0)
        return rewrite(&sv->headers, name, args, nargs, file, err, errlen);
    return rule(&sv->headers, name, args, nargs, file, err, errlen);
}

int gh__conf_headers_finish(struct gh_conf_service *sv, const unsigned char *seen, const char *file,
                            char *err, size_t errlen)
{
    size_t i;

    /* Server is a version header too: unless server-header is written,
     * it goes with the others. */
    for (i = 0; i < gh_conf_ndirectives; i++)
        if (gh_conf_directives[i].ctx == GH_CTX_SERVICE &&
            strcmp(gh_conf_directives[i].name, "server-header") == 0)
            break;
    if (i < gh_conf_ndirectives && !seen[i] && strcmp(sv->strip_version_headers, "off") == 0) {
        free(sv->server_header);
        sv->server_header = gh_strdup("pass");
    }
    /* A rule may not hand out the persistence cookie: that one is signed by
     * gatehouse and names a server. */
    for (i = 0; sv->cookie_name != NULL && i < sv->headers.nresp; i++) {
        const struct gh_conf_hdr_rule *r = &sv->headers.resp[i];
        size_t n = strlen(sv->cookie_name);
        const char *v = r->value;
        if (r->op == GH_HDR_REMOVE || strcasecmp(r->name, "set-cookie") != 0)
            continue;
        while (*v == ' ' || *v == '\t')
            v++;
        if (strncasecmp(v, sv->cookie_name, n) == 0 &&
            (v[n] == '=' || v[n] == ' ' || v[n] == '\t' || v[n] == '\0')) {
            ERR(r->loc,
                "'response-header': Set-Cookie %s is not for rules: it is the "
                "persistence cookie gatehouse signs",
                sv->cookie_name);
            return -1;
        }
    }
    return 0;
}

void gh__conf_headers_free(struct gh_conf_headers *h)
{
    size_t i;

    for (i = 0; i < h->nreq; i++) {
        free(h->req[i].name);
        free(h->req[i].value);
    }
    for (i = 0; i < h->nresp; i++) {
        free(h->resp[i].name);
        free(h->resp[i].value);
    }
    for (i = 0; i < h->nrewrites; i++) {
        free(h->rewrites[i].internal);
        free(h->rewrites[i].public_host);
    }
    free(h->req);
    free(h->resp);
    free(h->rewrites);
    memset(h, 0, sizeof(*h));
}

static void write_rules(struct gh_sbuf *o, const char *d, const struct gh_conf_hdr_rule *r,
                        size_t n)
{
    static const char *const ops[] = {"add", "set", "remove"};
    size_t i;

    for (i = 0; i < n; i++) {
        gh_sbuf_printf(o, "    %s %s ", d, ops[r[i].op]);
        gh__conf_write_value(o, r[i].name); /* a token may hold '#' */
        if (r[i].value != NULL) {
            gh_sbuf_printf(o, " ");
            gh__conf_write_value(o, r[i].value);
        }
        gh_sbuf_printf(o, "\n");
    }
}

void gh__conf_headers_write(struct gh_sbuf *o, const struct gh_conf_service *s)
{
    size_t i;

    /* The writer leaves out defaults, but with strip-version-headers off an
     * unwritten server-header would read back as pass. */
    if (strcmp(s->strip_version_headers, "off") == 0 && strcmp(s->server_header, "strip") == 0)
        gh_sbuf_printf(o, "    server-header strip\n");
    write_rules(o, "request-header", s->headers.req, s->headers.nreq);
    write_rules(o, "response-header", s->headers.resp, s->headers.nresp);
    for (i = 0; i < s->headers.nrewrites; i++) {
        const struct gh_conf_host_rewrite *w = &s->headers.rewrites[i];
        gh_sbuf_printf(o, "    rewrite-host %s %s", w->internal, w->public_host);
        if (w->public_port)
            gh_sbuf_printf(o, ":%lld", w->public_port);
        gh_sbuf_printf(o, "\n");
    }
}
