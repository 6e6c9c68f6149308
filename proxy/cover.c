/*
 * Certificate coverage, checked whenever a generation is built (`gatehouse
 * -t`, start-up, every reload): each allowed host of a TLS service (an exact
 * name; for a wildcard, the wildcard itself) must be among the names one of
 * the service's certificates answers for, read from the certificate files
 * (certs/san.c: SAN dNSName or IP SAN). Otherwise a client asking for that
 * host fails its handshake in production, as the mobile Lync client does on
 * lyncdiscover when the certificate lacks the name. `allowed-hosts *`
 * names no host and is not checked. `certificate-coverage warn` logs the
 * same message instead of refusing, for a roll-out where the new
 * certificate comes later.
 *
 * An address is never a TLS server name (RFC 6066): a client connecting
 * by address sends none and gets the listener's default certificate, the
 * first one of the listener's first service. So an allowed address must be
 * covered by that one; another of the service's certificates naming it is
 * never shown to such a client.
 */
#include "proxy_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cover_cache {
    char **names; /* owned; SAN names of conf->certs[i] */
    size_t n;
    int loaded;
};

/* Names of the certificate block at index i, read once per generation. */
static int cached(const struct gh_conf *conf, struct cover_cache *cc, size_t i, char *err,
                  size_t errlen)
{
    const struct gh_conf_cert *c = &conf->certs[i];
    struct certs_source src = {c->cert, c->key, c->pkcs12, c->passphrase_file};
    char e[512];

    if (cc[i].loaded)
        return 0;
    if (certs_san_names(&src, &cc[i].names, &cc[i].n, e, sizeof(e)) == -1) {
        snprintf(err, errlen, "%s:%d:%d: certificate '%s': %s", conf->file, c->loc.line,
                 c->loc.col, c->name, e);
        return -1;
    }
    cc[i].loaded = 1;
    return 0;
}

/* "certificate 'a' (names: x, y)" or "certificates 'a' (names: x), 'b'
 * (names: none)", the way an operator compares them with the host. */
static void describe(struct gh_sbuf *o, const struct gh_conf *conf,
                     const struct gh_conf_service *cs, const struct cover_cache *cc)
{
    size_t i, k;

    gh_sbuf_printf(o, "certificate%s ", cs->certificates.n > 1 ? "s" : "");
    for (i = 0; i < cs->certificates.n; i++) {
        const struct gh_conf_cert *c = gh_conf_cert_find(conf, cs->certificates.v[i]);
        const struct cover_cache *e = &cc[c - conf->certs];
        gh_sbuf_printf(o, "%s'%s' (names: ", i ? ", " : "", c->name);
        for (k = 0; k < e->n && k < 8; k++)
            gh_sbuf_printf(o, "%s%s", k ? ", " : "", e->names[k]);
        gh_sbuf_printf(o, "%s)", e->n == 0 ? "none" : k < e->n ? ", ..." : "");
    }
}

/* The allowed host as the check compares it: normalised like the policy
 * does (rules_host_norm), a wildcard's suffix likewise. NULL for "*" or a
 * pattern the policy refuses itself. */
static int host_form(const char *h, char *out, size_t outlen)
{
    size_t len = strlen(h);

    if (strcmp(h, "*") == 0 || len + 1 > outlen)
        return -1;
    if (h[0] == '*' && h[1] == '.') {
        out[0] = '*';
        out[1] = '.';
        return rules_host_norm(h + 2, len - 2, out + 2, outlen - 2);
    }
    return rules_host_norm(h, len, out, outlen);
}

/* An IPv4 address or a bracketed IPv6 one, as rules_host_norm leaves it. */
static int is_address(const char *h)
{
    unsigned char b[16];

    return h[0] == '[' || inet_pton(AF_INET, h, b) == 1;
}

/* The certificate block a client sending no server name gets on cs's
 * listener: the first certificate of the listener's first service. */
static size_t default_cert(const struct gh_conf *conf, const struct gh_conf_service *cs)
{
    size_t i;

    for (i = 0; i < conf->nservices; i++)
        if (strcmp(conf->services[i].listen, cs->listen) == 0 &&
            strcmp(conf->services[i].mode, "udp") != 0 && conf->services[i].certificates.n > 0)
            break;
    if (i == conf->nservices)
        i = (size_t)(cs - conf->services); /* cs itself is one: not reached */
    return (size_t)(gh_conf_cert_find(conf, conf->services[i].certificates.v[0]) - conf->certs);
}

int proxy__check_coverage(const struct gh_conf *conf, char *err, size_t errlen)
{
    struct cover_cache *cc = gh_calloc(conf->ncerts + 1, sizeof(*cc));
    size_t i, j, k;
    int rc = -1;

    for (i = 0; i < conf->nservices; i++) {
        const struct gh_conf_service *cs = &conf->services[i];
        for (j = 0; j < cs->allowed_hosts.n && cs->certificates.n > 0; j++) {
            char host[300];
            struct gh_sbuf msg = {NULL, 0, 0};
            int covered = 0;
            if (host_form(cs->allowed_hosts.v[j], host, sizeof(host)) == -1)
                continue;
            if (is_address(host)) {
                size_t ci = default_cert(conf, cs);
                if (cached(conf, cc, ci, err, errlen) == -1)
                    goto done;
                if (certs_san_covers(cc[ci].names, cc[ci].n, host))
                    continue;
                gh_sbuf_printf(&msg,
                               "%s:%d:%d: service '%s': allowed host '%s' is an address, so "
                               "clients send no server name and get the listener's default "
                               "certificate '%s' (names: ",
                               conf->file, cs->allowed_hosts.loc.line, cs->allowed_hosts.loc.col,
                               cs->name, cs->allowed_hosts.v[j], conf->certs[ci].name);
                for (k = 0; k < cc[ci].n && k < 8; k++)
                    gh_sbuf_printf(&msg, "%s%s", k ? ", " : "", cc[ci].names[k]);
                gh_sbuf_printf(&msg, "%s), which does not cover it (list one that does first)",
                               cc[ci].n == 0 ? "none" : k < cc[ci].n ? ", ..." : "");
                goto report;
            }
            for (k = 0; k < cs->certificates.n; k++) {
                size_t ci = (size_t)(gh_conf_cert_find(conf, cs->certificates.v[k]) - conf->certs);
                if (cached(conf, cc, ci, err, errlen) == -1)
                    goto done;
                covered |= certs_san_covers(cc[ci].names, cc[ci].n, host);
            }
            if (covered)
                continue;
            gh_sbuf_printf(&msg, "%s:%d:%d: service '%s': allowed host '%s' is not covered by ",
                           conf->file, cs->allowed_hosts.loc.line, cs->allowed_hosts.loc.col,
                           cs->name, cs->allowed_hosts.v[j]);
            describe(&msg, conf, cs, cc);
        report:
            if (strcmp(cs->certificate_coverage, "warn") == 0) {
                gh_log_warn("%s (certificate-coverage warn)", msg.p);
                free(msg.p);
                continue;
            }
            snprintf(err, errlen, "%s", msg.p);
            free(msg.p);
            goto done;
        }
    }
    rc = 0;
done:
    for (i = 0; i < conf->ncerts; i++)
        certs_san_names_free(cc[i].names, cc[i].n);
    free(cc);
    return rc;
}
