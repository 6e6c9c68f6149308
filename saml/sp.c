/*
 * The SP model built from a config: one record per identity-provider block
 * with its keys loaded (our key and certificate through certs, so they get
 * the same permission and match checks as a listener's), the IdP's public
 * keys as xmlsec keys, and the ACS URLs, configured ones first and then
 * those derived from every FQDN a TLS service answers to. Built once per
 * config generation and shared read-only between threads.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xmlsec/crypto.h>
#include <xmlsec/xmlsec.h>

#include "../certs/certs.h"
#include "../common/common.h"
#include "saml_int.h"

static pthread_mutex_t refs_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *const reason_names[] = {
#define SAML_NAME(e, s) s,
    SAML_REASONS(SAML_NAME)
#undef SAML_NAME
};

const char *saml_reason_name(enum saml_reason r)
{
    return (unsigned)r < SAML_REASON_MAX ? reason_names[r] : "saml-internal";
}

static void push(char ***v, size_t *n, const char *s)
{
    size_t i;
    char **p;

    for (i = 0; i < *n; i++)
        if (strcmp((*v)[i], s) == 0)
            return;
    p = realloc(*v, (*n + 1) * sizeof(*p));
    if (p == NULL)
        abort();
    *v = p;
    (*v)[(*n)++] = gh_strdup(s);
}

/* A host name (not an address, not a wildcard) a service answers to. */
static int is_fqdn(const char *h)
{
    unsigned char b[16];

    if (strchr(h, '*') != NULL || inet_pton(AF_INET, h, b) == 1 ||
        inet_pton(AF_INET6, h, b) == 1 || h[0] == '[')
        return 0;
    return h[0] != '\0';
}

/* 1 when some service forwards to this listen address: an internal hop
 * (a conference node behind the edge), which clients never reach. */
static int is_inner(const struct gh_conf *c, const char *listen)
{
    size_t i, k;

    for (i = 0; i < c->nservices; i++)
        for (k = 0; k < c->services[i].nservers; k++)
            if (strcmp(c->services[i].servers[k].addr, listen) == 0)
                return 1;
    return 0;
}

/* ACS URLs for the names of the services that face clients: TLS, a proxy
 * or the conference itself, and not the real server of another service
 * (its address is internal; publishing it would send participants, and
 * the IdP's posts, to an address only the edge can reach). */
static void derive_acs(struct saml_idp *p, const struct gh_conf *c)
{
    size_t i, j;

    for (i = 0; i < c->nservices; i++) {
        const struct gh_conf_service *s = &c->services[i];
        char host[64], url[1024];
        uint16_t port;
        if (s->certificate == NULL ||
            (s->app != NULL && strcmp(s->app, "conference") != 0) || is_inner(c, s->listen) ||
            gh_split_hostport(s->listen, host, sizeof(host), &port) == -1)
            continue;
        for (j = 0; j < s->allowed_hosts.n; j++) {
            const char *h = s->allowed_hosts.v[j];
            if (!is_fqdn(h))
                continue;
            if (port == 443)
                snprintf(url, sizeof(url), "https://%s/api/v1/samlconsumer/%s", h, p->uuid);
            else
                snprintf(url, sizeof(url), "https://%s:%u/api/v1/samlconsumer/%s", h,
                         (unsigned)port, p->uuid);
            push(&p->acs, &p->nacs, url);
        }
    }
}

static char *pem_of(int (*w)(BIO *, const void *), const void *obj, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    long n;

    if (b != NULL && w(b, obj) == 1 && (n = BIO_get_mem_data(b, &data)) > 0) {
        out = gh_strndup(data, (size_t)n);
        *len = (size_t)n;
    }
    BIO_free(b);
    return out;
}

static int write_cert(BIO *b, const void *x)
{
    return PEM_write_bio_X509(b, (X509 *)(uintptr_t)x);
}

static int write_key(BIO *b, const void *k)
{
    return PEM_write_bio_PrivateKey(b, (EVP_PKEY *)(uintptr_t)k, NULL, NULL, 0, NULL, NULL);
}

static int load_idp_certs(struct saml_idp *p, const char *file, char *err, size_t errlen)
{
    BIO *in = BIO_new_file(file, "r");
    X509 *x;
    int n = 0;

    if (in == NULL) {
        snprintf(err, errlen, "identity-provider '%s': idp-certificate %s: cannot read it",
                 p->name, file);
        return -1;
    }
    while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
        size_t len = 0;
        char *pem = pem_of(write_cert, x, &len);
        xmlSecKeyPtr k = pem ? xmlSecCryptoAppKeyLoadMemory((const xmlSecByte *)pem,
                                                            (xmlSecSize)len,
                                                            xmlSecKeyDataFormatCertPem, NULL,
                                                            NULL, NULL)
                             : NULL;
        free(pem);
        X509_free(x);
        if (k == NULL) {
            BIO_free(in);
            snprintf(err, errlen, "identity-provider '%s': idp-certificate %s: unusable key",
                     p->name, file);
            return -1;
        }
        p->idp_keys = realloc(p->idp_keys, (p->nidp_keys + 1) * sizeof(*p->idp_keys));
        if (p->idp_keys == NULL)
            abort();
        p->idp_keys[p->nidp_keys++] = k;
        n++;
    }
    ERR_clear_error();
    BIO_free(in);
    if (n == 0) {
        snprintf(err, errlen, "identity-provider '%s': idp-certificate %s holds no PEM "
                              "certificate", p->name, file);
        return -1;
    }
    return 0;
}

static const struct {
    const char *name, *uri;
} sig_algs[] = {
    {"rsa-sha256", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"},
    {"rsa-sha384", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"},
    {"rsa-sha512", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"},
    {"rsa-sha1", "http://www.w3.org/2000/09/xmldsig#rsa-sha1"},
},
  digest_algs[] = {
      {"sha256", "http://www.w3.org/2001/04/xmlenc#sha256"},
      {"sha384", "http://www.w3.org/2001/04/xmldsig-more#sha384"},
      {"sha512", "http://www.w3.org/2001/04/xmlenc#sha512"},
      {"sha1", "http://www.w3.org/2000/09/xmldsig#sha1"},
};

static int build_idp(struct saml_idp *p, const struct gh_conf_idp *ci, const struct gh_conf *c,
                     char *err, size_t errlen)
{
    const struct gh_conf_cert *cc = gh_conf_cert_find(c, ci->sp_certificate);
    struct certs_source src;
    size_t i;

    p->name = gh_strdup(ci->name);
    p->uuid = gh_strdup(ci->uuid);
    p->sp_entity_id = gh_strdup(ci->sp_entity_id);
    p->idp_entity_id = gh_strdup(ci->idp_entity_id);
    p->sso_url = gh_strdup(ci->idp_sso_url);
    if (strncasecmp(p->sso_url, "https://", 8) != 0)
        gh_log_warn("identity-provider '%s': idp-sso-url %s is not HTTPS: the signed "
                    "AuthnRequest, and the participant's sign-in if the IdP serves it there, "
                    "travel in clear",
                    ci->name, p->sso_url);
    p->display_attr = gh_strdup(ci->display_name_attribute);
    p->allow_sha1 = strcmp(ci->allow_sha1, "on") == 0;
    p->require_encryption = strcmp(ci->require_encryption, "on") == 0;
    p->skew_s = ci->clock_skew / 1000;
    p->session_s = ci->session_timeout / 1000;
    p->max_response = (size_t)ci->max_response_size;
    for (i = 0; i < GH_ARRAY_LEN(sig_algs); i++)
        if (strcmp(ci->signature_algorithm, sig_algs[i].name) == 0)
            p->sig_uri = sig_algs[i].uri;
    for (i = 0; i < GH_ARRAY_LEN(digest_algs); i++)
        if (strcmp(ci->digest_algorithm, digest_algs[i].name) == 0)
            p->digest_uri = digest_algs[i].uri;
    p->md = strcmp(ci->signature_algorithm, "rsa-sha1") == 0     ? EVP_sha1()
            : strcmp(ci->signature_algorithm, "rsa-sha384") == 0 ? EVP_sha384()
            : strcmp(ci->signature_algorithm, "rsa-sha512") == 0 ? EVP_sha512()
                                                                  : EVP_sha256();
    for (i = 0; i < ci->acs_urls.n; i++)
        push(&p->acs, &p->nacs, ci->acs_urls.v[i]);
    if (strcmp(ci->acs_from_services, "on") == 0)
        derive_acs(p, c);
    if (p->nacs == 0) {
        snprintf(err, errlen, "identity-provider '%s': acs-from-services found no FQDN in any "
                              "TLS service's allowed-hosts; add an acs-url", ci->name);
        return -1;
    }
    memset(&src, 0, sizeof(src));
    src.cert = cc->cert;
    src.key = cc->key;
    src.p12 = cc->pkcs12;
    src.pass = cc->passphrase_file;
    if (certs_load_keypair(&src, &p->sp_cert, &p->sp_key, err, errlen) == -1) {
        char e[512];
        snprintf(e, sizeof(e), "identity-provider '%s': sp-certificate '%s': %s", ci->name,
                 ci->sp_certificate, err);
        gh_strlcpy(err, e, errlen);
        return -1;
    }
    if (EVP_PKEY_get_base_id(p->sp_key) != EVP_PKEY_RSA) {
        snprintf(err, errlen, "identity-provider '%s': sp-certificate '%s' must hold an RSA key "
                              "(IdPs encrypt assertions to it with RSA-OAEP)",
                 ci->name, ci->sp_certificate);
        return -1;
    }
    p->sp_key_pem = pem_of(write_key, p->sp_key, &p->sp_key_pem_len);
    p->sp_cert_pem = pem_of(write_cert, p->sp_cert, &p->sp_cert_pem_len);
    if (p->sp_key_pem == NULL || p->sp_cert_pem == NULL) {
        snprintf(err, errlen, "identity-provider '%s': cannot encode the SP key", ci->name);
        return -1;
    }
    for (i = 0; i < ci->idp_certificates.n; i++)
        if (load_idp_certs(p, ci->idp_certificates.v[i], err, errlen) == -1)
            return -1;
    return 0;
}

static void free_idp(struct saml_idp *p)
{
    size_t i;

    free(p->name);
    free(p->uuid);
    free(p->sp_entity_id);
    free(p->idp_entity_id);
    free(p->sso_url);
    free(p->display_attr);
    for (i = 0; i < p->nacs; i++)
        free(p->acs[i]);
    free(p->acs);
    EVP_PKEY_free(p->sp_key);
    X509_free(p->sp_cert);
    if (p->sp_key_pem != NULL) {
        gh_wipe(p->sp_key_pem, p->sp_key_pem_len);
        free(p->sp_key_pem);
    }
    free(p->sp_cert_pem);
    for (i = 0; i < p->nidp_keys; i++)
        xmlSecKeyDestroy(p->idp_keys[i]);
    free(p->idp_keys);
}

static void sp_free(struct saml_sp *sp)
{
    size_t i;

    for (i = 0; i < sp->nidps; i++)
        free_idp(&sp->idps[i]);
    free(sp->idps);
    for (i = 0; i < sp->ngroups; i++) {
        free(sp->groups[i].name);
        free(sp->groups[i].members);
    }
    free(sp->groups);
    free(sp);
}

struct saml_sp *saml_sp_new(const struct gh_conf *c, char *err, size_t errlen)
{
    struct saml_sp *sp = gh_calloc(1, sizeof(*sp));
    size_t i, j, k;

    sp->refs = 1;
    sp->idps = gh_calloc(c->nidps ? c->nidps : 1, sizeof(*sp->idps));
    sp->nidps = c->nidps;
    for (i = 0; i < c->nidps; i++) {
        sp->idps[i].sp = sp;
        if (build_idp(&sp->idps[i], &c->idps[i], c, err, errlen) == -1) {
            sp_free(sp);
            return NULL;
        }
    }
    sp->groups = gh_calloc(c->nidp_groups ? c->nidp_groups : 1, sizeof(*sp->groups));
    sp->ngroups = c->nidp_groups;
    for (i = 0; i < c->nidp_groups; i++) {
        const struct gh_conf_idp_group *g = &c->idp_groups[i];
        sp->groups[i].name = gh_strdup(g->name);
        sp->groups[i].members = gh_calloc(g->members.n, sizeof(size_t));
        for (j = 0; j < g->members.n; j++)
            for (k = 0; k < c->nidps; k++)
                if (strcmp(c->idps[k].name, g->members.v[j]) == 0) {
                    sp->groups[i].members[sp->groups[i].n++] = k;
                    sp->idps[k].in_group = 1;
                }
    }
    return sp;
}

void saml_sp_ref(struct saml_sp *sp)
{
    pthread_mutex_lock(&refs_mu);
    sp->refs++;
    pthread_mutex_unlock(&refs_mu);
}

void saml_sp_unref(struct saml_sp *sp)
{
    int last;

    if (sp == NULL)
        return;
    pthread_mutex_lock(&refs_mu);
    last = --sp->refs == 0;
    pthread_mutex_unlock(&refs_mu);
    if (last)
        sp_free(sp);
}

const struct saml_idp *saml_idp_by_uuid(const struct saml_sp *sp, const char *uuid)
{
    size_t i;

    for (i = 0; i < sp->nidps; i++)
        if (strcmp(sp->idps[i].uuid, uuid) == 0)
            return &sp->idps[i];
    return NULL;
}

const struct saml_idp *saml_idp_by_name(const struct saml_sp *sp, const char *name)
{
    size_t i;

    for (i = 0; i < sp->nidps; i++)
        if (strcmp(sp->idps[i].name, name) == 0)
            return &sp->idps[i];
    return NULL;
}

const char *saml_idp_name(const struct saml_idp *idp)
{
    return idp->name;
}

const char *saml_idp_uuid(const struct saml_idp *idp)
{
    return idp->uuid;
}

int saml_idp_usable(const struct saml_idp *idp)
{
    return idp->in_group;
}

static const struct saml_group *group(const struct saml_sp *sp, const char *name)
{
    size_t i;

    for (i = 0; i < sp->ngroups; i++)
        if (strcmp(sp->groups[i].name, name) == 0)
            return &sp->groups[i];
    return NULL;
}

int saml_group_exists(const struct saml_sp *sp, const char *name)
{
    return group(sp, name) != NULL;
}

const struct saml_idp *saml_group_idp(const struct saml_sp *sp, const char *name, size_t i)
{
    const struct saml_group *g = group(sp, name);

    return g != NULL && i < g->n ? &sp->idps[g->members[i]] : NULL;
}

int saml_group_has(const struct saml_sp *sp, const char *name, const struct saml_idp *idp)
{
    const struct saml_idp *p;
    size_t i;

    for (i = 0; (p = saml_group_idp(sp, name, i)) != NULL; i++)
        if (p == idp)
            return 1;
    return 0;
}

const char *saml_acs_for_host(const struct saml_idp *idp, const char *host)
{
    char url[1024];
    size_t i, hl = strlen(host);

    if (hl == 0 || hl > 255)
        return NULL;
    snprintf(url, sizeof(url), "https://%s/api/v1/samlconsumer/%s", host, idp->uuid);
    for (i = 8; i < 8 + hl; i++)
        url[i] = (char)tolower((unsigned char)url[i]);
    for (i = 0; i < idp->nacs; i++)
        if (strcasecmp(idp->acs[i], url) == 0)
            return idp->acs[i];
    return NULL;
}

const char *saml_acs_url(const struct saml_idp *idp, size_t i)
{
    return i < idp->nacs ? idp->acs[i] : NULL;
}
