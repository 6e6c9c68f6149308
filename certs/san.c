/*
 * The names a client verifies a certificate against (RFC 6125): its SAN
 * dNSNames and IP addresses, never the subject CN, which browsers and the
 * mobile Lync/Skype clients ignore when SANs are present and which a
 * certificate authority no longer vouches for. The -t and reload check
 * that every allowed host of a service is covered by a certificate the
 * service can present (proxy/cover.c) reads them from the files here.
 */
#include "certs.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "../common/common.h"
#include "certs_int.h"

static void push(char ***names, size_t *n, const char *prefix, const char *s, size_t len)
{
    size_t pl = strlen(prefix), i;
    char **v = realloc(*names, (*n + 1) * sizeof(char *));
    char *c = malloc(pl + len + 1);

    if (v == NULL || c == NULL)
        abort();
    memcpy(c, prefix, pl);
    for (i = 0; i < len; i++)
        c[pl + i] = (char)tolower((unsigned char)s[i]);
    c[pl + len] = '\0';
    v[*n] = c;
    *names = v;
    (*n)++;
}

/* The SAN names of x; ip_prefix: written before each address ("IP:" for
 * the coverage check, "" for SNI selection, where a client naming an
 * address sends the address itself). */
static void san_names(X509 *x, const char *ip_prefix, char ***names, size_t *n)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int i;

    for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS) {
            const char *d = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
            size_t len = (size_t)ASN1_STRING_length(g->d.dNSName);
            /* An embedded NUL would make "a.com\0.evil" read as "a.com". */
            if (memchr(d, '\0', len) == NULL)
                push(names, n, "", d, len);
        } else if (g->type == GEN_IPADD &&
                   (g->d.iPAddress->length == 4 || g->d.iPAddress->length == 16)) {
            char ip[INET6_ADDRSTRLEN];
            int af = g->d.iPAddress->length == 4 ? AF_INET : AF_INET6;
            if (inet_ntop(af, ASN1_STRING_get0_data(g->d.iPAddress), ip, sizeof(ip)) != NULL)
                push(names, n, ip_prefix, ip, strlen(ip));
        }
    }
    GENERAL_NAMES_free(sans);
}

int certs_san_names(const struct certs_source *src, char ***names, size_t *n, char *err,
                    size_t errlen)
{
    X509 *x = certs__read_leaf(src, err, errlen);

    *names = NULL;
    *n = 0;
    if (x == NULL) {
        ERR_clear_error();
        return -1;
    }
    san_names(x, "IP:", names, n);
    X509_free(x);
    ERR_clear_error();
    return 0;
}

int certs_names(const struct certs_source *src, char ***names, size_t *n, char *err,
                size_t errlen)
{
    X509 *x = certs__read_leaf(src, err, errlen);

    *names = NULL;
    *n = 0;
    if (x == NULL) {
        ERR_clear_error();
        return -1;
    }
    san_names(x, "", names, n);
    if (*n == 0) {
        /* No SAN at all: the subject CN is the only name it can be picked by */
        char cn[256];
        int l = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                                          sizeof(cn));
        if (l > 0)
            push(names, n, "", cn, (size_t)l);
    }
    X509_free(x);
    ERR_clear_error();
    return 0;
}

void certs_san_names_free(char **names, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* host as an address: 4 or 16 bytes in b, or 0 when it is a name. */
static int host_addr(const char *host, unsigned char b[16])
{
    char v6[64];
    size_t len = strlen(host);

    if (inet_pton(AF_INET, host, b) == 1)
        return 4;
    if (len > 2 && len - 2 < sizeof(v6) && host[0] == '[' && host[len - 1] == ']') {
        memcpy(v6, host + 1, len - 2);
        v6[len - 2] = '\0';
        if (inet_pton(AF_INET6, v6, b) == 1)
            return 16;
    }
    return 0;
}

int certs_san_covers(char *const *names, size_t n, const char *host)
{
    unsigned char want[16], have[16];
    int alen = host_addr(host, want);
    const char *dot = strchr(host, '.');
    size_t i;

    for (i = 0; i < n; i++) {
        const char *nm = names[i];
        if (strncmp(nm, "IP:", 3) == 0) {
            int af = strchr(nm + 3, ':') != NULL ? AF_INET6 : AF_INET;
            if (alen != 0 && alen == (af == AF_INET ? 4 : 16) &&
                inet_pton(af, nm + 3, have) == 1 && memcmp(want, have, (size_t)alen) == 0)
                return 1;
            continue;
        }
        if (alen != 0)
            continue; /* an address is verified against IP SANs only */
        if (strcmp(nm, host) == 0)
            return 1; /* the same name, or the same wildcard */
        /* "*.example.com" covers exactly one label before ".example.com" */
        if (nm[0] == '*' && nm[1] == '.' && host[0] != '*' && dot != NULL && dot != host &&
            strcmp(nm + 1, dot) == 0)
            return 1;
    }
    return 0;
}
