/*
 * Metadata both ways. Ours: an SPSSODescriptor for one identity-provider
 * record (each record has its own ACS URLs and may have its own key), with
 * the certificate for signing and for encryption and every ACS URL, signed
 * (enveloped, exclusive c14n) with the record's signature and digest
 * algorithms, so an IdP that checks metadata signatures can. Theirs: read
 * with the same safe parser as responses; we take the entity ID, the
 * HTTP-Redirect SSO URL and the signing certificates, and say exactly what
 * is missing when metadata cannot be used.
 */
#include <libxml/tree.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xmlsec/crypto.h>
#include <xmlsec/templates.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>

#include "../common/common.h"
#include "saml_int.h"

#define METADATA_VALID_DAYS 30

static char *cert_b64(X509 *x)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    char *out;

    if (n <= 0)
        return NULL;
    out = saml__b64enc(der, (size_t)n);
    OPENSSL_free(der);
    return out;
}

static void key_descriptor(xmlNodePtr sso, xmlNsPtr md, xmlNsPtr ds, const char *use,
                           const char *b64)
{
    xmlNodePtr kd = xmlNewChild(sso, md, (const xmlChar *)"KeyDescriptor", NULL);
    xmlNodePtr ki = xmlNewChild(kd, ds, (const xmlChar *)"KeyInfo", NULL);
    xmlNodePtr xd = xmlNewChild(ki, ds, (const xmlChar *)"X509Data", NULL);

    xmlNewProp(kd, (const xmlChar *)"use", (const xmlChar *)use);
    xmlNewTextChild(xd, ds, (const xmlChar *)"X509Certificate", (const xmlChar *)b64);
    if (strcmp(use, "encryption") == 0) {
        static const char *const algs[] = {"http://www.w3.org/2009/xmlenc11#aes128-gcm",
                                           "http://www.w3.org/2009/xmlenc11#aes256-gcm",
                                           "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
                                           "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
                                           "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"};
        size_t i;
        for (i = 0; i < GH_ARRAY_LEN(algs); i++) {
            xmlNodePtr em = xmlNewChild(kd, md, (const xmlChar *)"EncryptionMethod", NULL);
            xmlNewProp(em, (const xmlChar *)"Algorithm", (const xmlChar *)algs[i]);
        }
    }
}

static xmlSecTransformId sig_transform(const struct saml_idp *idp)
{
    if (strstr(idp->sig_uri, "rsa-sha384"))
        return xmlSecTransformRsaSha384Id;
    if (strstr(idp->sig_uri, "rsa-sha512"))
        return xmlSecTransformRsaSha512Id;
    if (strstr(idp->sig_uri, "rsa-sha1"))
        return xmlSecTransformRsaSha1Id;
    return xmlSecTransformRsaSha256Id;
}

static xmlSecTransformId digest_transform(const struct saml_idp *idp)
{
    if (strstr(idp->digest_uri, "sha384"))
        return xmlSecTransformSha384Id;
    if (strstr(idp->digest_uri, "sha512"))
        return xmlSecTransformSha512Id;
    if (strstr(idp->digest_uri, "#sha1"))
        return xmlSecTransformSha1Id;
    return xmlSecTransformSha256Id;
}

static int sign(const struct saml_idp *idp, xmlDocPtr doc, xmlNodePtr root, const char *id,
                char *err, size_t errlen)
{
    xmlNodePtr sig, ref, ki;
    xmlSecDSigCtxPtr ctx;
    char uri[64];
    int rc = -1;

    sig = xmlSecTmplSignatureCreate(doc, xmlSecTransformExclC14NId, sig_transform(idp), NULL);
    if (sig == NULL)
        goto fail;
    /* The schema puts ds:Signature first in an EntityDescriptor. */
    if (root->children != NULL)
        xmlAddPrevSibling(root->children, sig);
    else
        xmlAddChild(root, sig);
    snprintf(uri, sizeof(uri), "#%s", id);
    ref = xmlSecTmplSignatureAddReference(sig, digest_transform(idp), NULL,
                                          (const xmlChar *)uri, NULL);
    if (ref == NULL || xmlSecTmplReferenceAddTransform(ref, xmlSecTransformEnvelopedId) == NULL ||
        xmlSecTmplReferenceAddTransform(ref, xmlSecTransformExclC14NId) == NULL)
        goto fail;
    ki = xmlSecTmplSignatureEnsureKeyInfo(sig, NULL);
    if (ki == NULL || xmlSecTmplKeyInfoAddX509Data(ki) == NULL)
        goto fail;
    ctx = xmlSecDSigCtxCreate(NULL);
    if (ctx == NULL)
        goto fail;
    ctx->signKey = xmlSecCryptoAppKeyLoadMemory((const xmlSecByte *)idp->sp_key_pem,
                                                (xmlSecSize)idp->sp_key_pem_len,
                                                xmlSecKeyDataFormatPem, NULL, NULL, NULL);
    if (ctx->signKey != NULL &&
        xmlSecCryptoAppKeyCertLoadMemory(ctx->signKey, (const xmlSecByte *)idp->sp_cert_pem,
                                         (xmlSecSize)idp->sp_cert_pem_len,
                                         xmlSecKeyDataFormatPem) == 0 &&
        xmlSecDSigCtxSign(ctx, sig) == 0)
        rc = 0;
    xmlSecDSigCtxDestroy(ctx);
    if (rc == 0)
        return 0;
fail:
    snprintf(err, errlen, "identity-provider '%s': signing the metadata failed", idp->name);
    return -1;
}

char *saml_sp_metadata(const struct saml_idp *idp, size_t *len, char *err, size_t errlen)
{
    xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
    xmlNodePtr root, sso, n;
    xmlNsPtr md, ds;
    unsigned char rnd[16];
    char id[40], until[32], idx[24], *b64;
    xmlChar *mem = NULL;
    int memlen = 0;
    size_t i;
    char *out = NULL;

    root = xmlNewNode(NULL, (const xmlChar *)"EntityDescriptor");
    md = xmlNewNs(root, (const xmlChar *)SAML_NS_MD, (const xmlChar *)"md");
    ds = xmlNewNs(root, (const xmlChar *)SAML_NS_DS, (const xmlChar *)"ds");
    xmlSetNs(root, md);
    xmlDocSetRootElement(doc, root);
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        abort();
    id[0] = '_';
    for (i = 0; i < sizeof(rnd); i++)
        snprintf(id + 1 + 2 * i, 3, "%02x", rnd[i]);
    saml__time_fmt((int64_t)time(NULL) + METADATA_VALID_DAYS * 86400LL, until);
    xmlNewProp(root, (const xmlChar *)"entityID", (const xmlChar *)idp->sp_entity_id);
    xmlAddID(NULL, doc, (const xmlChar *)id, xmlNewProp(root, (const xmlChar *)"ID", (const xmlChar *)id));
    xmlNewProp(root, (const xmlChar *)"validUntil", (const xmlChar *)until);
    sso = xmlNewChild(root, md, (const xmlChar *)"SPSSODescriptor", NULL);
    xmlNewProp(sso, (const xmlChar *)"AuthnRequestsSigned", (const xmlChar *)"true");
    xmlNewProp(sso, (const xmlChar *)"WantAssertionsSigned", (const xmlChar *)"true");
    xmlNewProp(sso, (const xmlChar *)"protocolSupportEnumeration", (const xmlChar *)SAML_NS_P);
    b64 = cert_b64(idp->sp_cert);
    if (b64 == NULL) {
        snprintf(err, errlen, "identity-provider '%s': cannot encode the certificate", idp->name);
        xmlFreeDoc(doc);
        return NULL;
    }
    key_descriptor(sso, md, ds, "signing", b64);
    key_descriptor(sso, md, ds, "encryption", b64);
    free(b64);
    xmlNewTextChild(sso, md, (const xmlChar *)"NameIDFormat",
                    (const xmlChar *)"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent");
    for (i = 0; i < idp->nacs; i++) {
        n = xmlNewChild(sso, md, (const xmlChar *)"AssertionConsumerService", NULL);
        snprintf(idx, sizeof(idx), "%zu", i);
        xmlNewProp(n, (const xmlChar *)"Binding", (const xmlChar *)SAML_POST);
        xmlNewProp(n, (const xmlChar *)"Location", (const xmlChar *)idp->acs[i]);
        xmlNewProp(n, (const xmlChar *)"index", (const xmlChar *)idx);
        if (i == 0)
            xmlNewProp(n, (const xmlChar *)"isDefault", (const xmlChar *)"true");
    }
    if (sign(idp, doc, root, id, err, errlen) == 0) {
        xmlDocDumpFormatMemoryEnc(doc, &mem, &memlen, "UTF-8", 0);
        if (mem != NULL) {
            out = gh_strndup((const char *)mem, (size_t)memlen);
            *len = (size_t)memlen;
            xmlFree(mem);
        }
    }
    xmlFreeDoc(doc);
    return out;
}

/* ---- import ---- */

static xmlNodePtr find_idp_descriptor(xmlNodePtr n, xmlNodePtr *entity)
{
    xmlNodePtr c, d;

    if (saml__is(n, SAML_NS_MD, "EntityDescriptor")) {
        d = saml__child(n, SAML_NS_MD, "IDPSSODescriptor", NULL);
        if (d != NULL) {
            *entity = n;
            return d;
        }
        return NULL;
    }
    if (!saml__is(n, SAML_NS_MD, "EntitiesDescriptor"))
        return NULL;
    for (c = n->children; c != NULL; c = c->next)
        if (c->type == XML_ELEMENT_NODE && (d = find_idp_descriptor(c, entity)) != NULL)
            return d;
    return NULL;
}

static int add_cert(struct saml_idp_meta *m, const char *b64)
{
    size_t n = strlen(b64);
    unsigned char *der = gh_calloc(1, n);
    const unsigned char *p = der;
    long dlen = saml__b64dec(b64, n, der, n);
    X509 *x = dlen > 0 ? d2i_X509(NULL, &p, dlen) : NULL;
    BIO *b;
    char *data;
    long blen;

    free(der);
    if (x == NULL)
        return -1;
    b = BIO_new(BIO_s_mem());
    if (b == NULL || PEM_write_bio_X509(b, x) != 1 || (blen = BIO_get_mem_data(b, &data)) <= 0) {
        BIO_free(b);
        X509_free(x);
        return -1;
    }
    {
        size_t old = m->certs_pem ? strlen(m->certs_pem) : 0;
        char *np = realloc(m->certs_pem, old + (size_t)blen + 1);
        if (np == NULL)
            abort();
        memcpy(np + old, data, (size_t)blen);
        np[old + (size_t)blen] = '\0';
        m->certs_pem = np;
        m->ncerts++;
    }
    BIO_free(b);
    X509_free(x);
    return 0;
}

int saml_idp_meta_parse(const char *xml, size_t len, struct saml_idp_meta *m, char *err,
                        size_t errlen)
{
    enum saml_reason why;
    xmlDocPtr doc;
    xmlNodePtr root, entity = NULL, idp, c;
    int rc = -1;

    memset(m, 0, sizeof(*m));
    doc = saml__parse(xml, len, &why);
    if (doc == NULL) {
        snprintf(err, errlen, "metadata is not usable XML (%s)", saml_reason_name(why));
        return -1;
    }
    root = xmlDocGetRootElement(doc);
    idp = find_idp_descriptor(root, &entity);
    if (idp == NULL) {
        snprintf(err, errlen, "metadata holds no md:EntityDescriptor with an IDPSSODescriptor");
        goto done;
    }
    if (saml__attr(entity, "entityID", m->entity_id, sizeof(m->entity_id)) == -1 ||
        m->entity_id[0] == '\0') {
        snprintf(err, errlen, "the EntityDescriptor has no entityID");
        goto done;
    }
    for (c = idp->children; c != NULL; c = c->next) {
        char binding[256];
        if (!saml__is(c, SAML_NS_MD, "SingleSignOnService") ||
            saml__attr(c, "Binding", binding, sizeof(binding)) == -1 ||
            strcmp(binding, SAML_REDIRECT) != 0)
            continue;
        if (saml__attr(c, "Location", m->sso_url, sizeof(m->sso_url)) == 0)
            break;
    }
    if (m->sso_url[0] == '\0') {
        snprintf(err, errlen, "the IdP offers no SingleSignOnService with the HTTP-Redirect "
                              "binding (the only one gatehouse sends requests with)");
        goto done;
    }
    if (strncmp(m->sso_url, "https://", 8) != 0 && strncmp(m->sso_url, "http://", 7) != 0) {
        snprintf(err, errlen, "the SingleSignOnService Location is not an http(s) URL");
        goto done;
    }
    for (c = idp->children; c != NULL; c = c->next) {
        char use[32];
        xmlNodePtr ki, xd, xc;
        if (!saml__is(c, SAML_NS_MD, "KeyDescriptor"))
            continue;
        if (saml__attr(c, "use", use, sizeof(use)) == 0 && strcmp(use, "signing") != 0)
            continue;
        ki = saml__child(c, SAML_NS_DS, "KeyInfo", NULL);
        for (xd = ki ? ki->children : NULL; xd != NULL; xd = xd->next) {
            if (!saml__is(xd, SAML_NS_DS, "X509Data"))
                continue;
            for (xc = xd->children; xc != NULL; xc = xc->next) {
                xmlChar *t;
                if (!saml__is(xc, SAML_NS_DS, "X509Certificate"))
                    continue;
                t = xmlNodeGetContent(xc);
                if (t == NULL || add_cert(m, (const char *)t) == -1) {
                    xmlFree(t);
                    snprintf(err, errlen, "a signing X509Certificate does not decode");
                    goto done;
                }
                xmlFree(t);
            }
        }
    }
    if (m->ncerts == 0) {
        snprintf(err, errlen, "the IdP metadata has no signing certificate (KeyDescriptor "
                              "with X509Certificate)");
        goto done;
    }
    rc = 0;
done:
    if (rc == -1)
        saml_idp_meta_free(m);
    xmlFreeDoc(doc);
    return rc;
}

void saml_idp_meta_free(struct saml_idp_meta *m)
{
    free(m->certs_pem);
    m->certs_pem = NULL;
    m->ncerts = 0;
}
