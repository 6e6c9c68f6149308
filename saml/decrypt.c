/*
 * EncryptedAssertion: the key transport and the content decryption are done
 * with OpenSSL directly, so that only RSA-OAEP (never PKCS#1 v1.5, the
 * Bleichenbacher oracle) and AES-CBC or AES-GCM are possible, every failure
 * looks the same from outside, and the plaintext goes through the same
 * parser restrictions as the rest of the response (in the context of the
 * EncryptedAssertion, so namespace prefixes resolve as the IdP meant).
 */
#include <libxml/parser.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "saml_int.h"

#define XENC11 "http://www.w3.org/2009/xmlenc11#"
#define MAX_CIPHER (4 * 1024 * 1024)

struct cipher {
    const char *uri;
    const char *name; /* for EVP_CIPHER_fetch */
    int gcm;
    size_t keylen;
};

static const struct cipher ciphers[] = {
    {SAML_NS_XENC "aes128-cbc", "AES-128-CBC", 0, 16},
    {SAML_NS_XENC "aes192-cbc", "AES-192-CBC", 0, 24},
    {SAML_NS_XENC "aes256-cbc", "AES-256-CBC", 0, 32},
    {XENC11 "aes128-gcm", "AES-128-GCM", 1, 16},
    {XENC11 "aes192-gcm", "AES-192-GCM", 1, 24},
    {XENC11 "aes256-gcm", "AES-256-GCM", 1, 32},
};

static const EVP_MD *md_for(const char *uri)
{
    if (uri == NULL || strcmp(uri, "http://www.w3.org/2000/09/xmldsig#sha1") == 0)
        return EVP_sha1();
    if (strcmp(uri, "http://www.w3.org/2001/04/xmlenc#sha256") == 0)
        return EVP_sha256();
    if (strcmp(uri, "http://www.w3.org/2001/04/xmlenc#sha512") == 0)
        return EVP_sha512();
    return NULL;
}

static const EVP_MD *mgf_for(const char *uri)
{
    if (uri == NULL || strcmp(uri, XENC11 "mgf1sha1") == 0)
        return EVP_sha1();
    if (strcmp(uri, XENC11 "mgf1sha256") == 0)
        return EVP_sha256();
    if (strcmp(uri, XENC11 "mgf1sha512") == 0)
        return EVP_sha512();
    return NULL;
}

/* The base64 CipherValue of a CipherData child; malloc'd bytes or NULL. */
static unsigned char *cipher_value(xmlNodePtr parent, size_t *len)
{
    xmlNodePtr cd = saml__child(parent, SAML_NS_XENC, "CipherData", NULL), cv;
    xmlChar *txt;
    unsigned char *out;
    long n;

    if (cd == NULL || (cv = saml__child(cd, SAML_NS_XENC, "CipherValue", NULL)) == NULL)
        return NULL;
    txt = xmlNodeGetContent(cv);
    if (txt == NULL)
        return NULL;
    n = (long)strlen((const char *)txt);
    if (n > MAX_CIPHER * 2) {
        xmlFree(txt);
        return NULL;
    }
    out = gh_calloc(1, (size_t)n);
    n = saml__b64dec((const char *)txt, (size_t)n, out, (size_t)n);
    xmlFree(txt);
    if (n <= 0) {
        free(out);
        return NULL;
    }
    *len = (size_t)n;
    return out;
}

static char *alg_of(xmlNodePtr n)
{
    xmlNodePtr m = saml__child(n, SAML_NS_XENC, "EncryptionMethod", NULL);
    xmlChar *a = m ? xmlGetNoNsProp(m, (const xmlChar *)"Algorithm") : NULL;
    char *s = a ? gh_strdup((const char *)a) : NULL;

    xmlFree(a);
    return s;
}

/* RSA-OAEP key transport with our SP key; 0 with the key in out. */
static enum saml_reason unwrap(const struct saml_idp *idp, xmlNodePtr ek, unsigned char *out,
                               size_t want, char *detail, size_t dlen)
{
    xmlNodePtr em = saml__child(ek, SAML_NS_XENC, "EncryptionMethod", NULL), dm, mgf;
    char *alg = alg_of(ek);
    xmlChar *dmu = NULL, *mgfu = NULL;
    const EVP_MD *md, *mgfmd;
    unsigned char *ct, buf[512];
    size_t ctlen = 0, outlen = sizeof(buf);
    EVP_PKEY_CTX *pc;
    int ok;

    if (alg == NULL || em == NULL) {
        free(alg);
        return SAML_DECRYPT;
    }
    if (strcmp(alg, SAML_NS_XENC "rsa-oaep-mgf1p") != 0 && strcmp(alg, XENC11 "rsa-oaep") != 0) {
        snprintf(detail, dlen, "key transport %s", alg);
        free(alg);
        return SAML_WEAK_ALGORITHM; /* rsa-1_5 among others */
    }
    if (saml__child(em, SAML_NS_XENC, "OAEPparams", NULL) != NULL) {
        free(alg);
        return SAML_DECRYPT;
    }
    dm = saml__child(em, SAML_NS_DS, "DigestMethod", NULL);
    mgf = saml__child(em, XENC11, "MGF", NULL);
    if (dm)
        dmu = xmlGetNoNsProp(dm, (const xmlChar *)"Algorithm");
    if (mgf && strcmp(alg, XENC11 "rsa-oaep") == 0)
        mgfu = xmlGetNoNsProp(mgf, (const xmlChar *)"Algorithm");
    md = md_for((const char *)dmu);
    mgfmd = mgf_for((const char *)mgfu);
    xmlFree(dmu);
    xmlFree(mgfu);
    free(alg);
    if (md == NULL || mgfmd == NULL)
        return SAML_WEAK_ALGORITHM;
    ct = cipher_value(ek, &ctlen);
    if (ct == NULL)
        return SAML_DECRYPT;
    pc = EVP_PKEY_CTX_new(idp->sp_key, NULL);
    ok = pc != NULL && EVP_PKEY_decrypt_init(pc) == 1 &&
         EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_oaep_md(pc, md) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(pc, mgfmd) == 1 &&
         EVP_PKEY_decrypt(pc, buf, &outlen, ct, ctlen) == 1 && outlen == want;
    EVP_PKEY_CTX_free(pc);
    free(ct);
    if (ok)
        memcpy(out, buf, want);
    gh_wipe(buf, sizeof(buf));
    return ok ? SAML_OK : SAML_DECRYPT;
}

static unsigned char *decrypt_data(const struct cipher *c, const unsigned char *key,
                                   const unsigned char *in, size_t inlen, size_t *outlen)
{
    size_t ivlen = c->gcm ? 12 : 16, taglen = c->gcm ? 16 : 0, ctlen;
    EVP_CIPHER *ci = EVP_CIPHER_fetch(NULL, c->name, NULL);
    EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
    unsigned char *out = NULL;
    int n = 0, f = 0, ok;

    if (ci == NULL || cx == NULL || inlen < ivlen + taglen + (c->gcm ? 0 : 16))
        goto done;
    ctlen = inlen - ivlen - taglen;
    out = gh_calloc(1, ctlen + 32);
    ok = EVP_DecryptInit_ex2(cx, ci, NULL, NULL, NULL) == 1 &&
         (!c->gcm || EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_IVLEN, (int)ivlen, NULL) == 1) &&
         EVP_DecryptInit_ex2(cx, NULL, key, in, NULL) == 1 &&
         EVP_CIPHER_CTX_set_padding(cx, 0) == 1 &&
         EVP_DecryptUpdate(cx, out, &n, in + ivlen, (int)ctlen) == 1 &&
         (!c->gcm || EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_TAG, (int)taglen,
                                         (void *)(uintptr_t)(in + inlen - taglen)) == 1) &&
         EVP_DecryptFinal_ex(cx, out + n, &f) == 1;
    if (!ok) {
        free(out);
        out = NULL;
        goto done;
    }
    n += f;
    if (!c->gcm) {
        /* XML Encryption padding: the last byte counts the padding bytes. */
        unsigned pad = n > 0 ? out[n - 1] : 0;
        if (pad == 0 || pad > 16 || (int)pad > n) {
            free(out);
            out = NULL;
            goto done;
        }
        n -= (int)pad;
    }
    *outlen = (size_t)n;
done:
    EVP_CIPHER_CTX_free(cx);
    EVP_CIPHER_free(ci);
    return out;
}

enum saml_reason saml__decrypt(const struct saml_idp *idp, xmlDocPtr doc, xmlNodePtr enc,
                               xmlNodePtr *out, char *detail, size_t dlen)
{
    xmlNodePtr ed, ki, c, list = NULL, assertion = NULL, next;
    const struct cipher *ci = NULL;
    unsigned char key[32], *ct = NULL, *pt = NULL;
    size_t ctlen = 0, ptlen = 0, i;
    enum saml_reason r = SAML_DECRYPT;
    char *alg;
    int dups, tried = 0;

    (void)doc;
    ed = saml__child(enc, SAML_NS_XENC, "EncryptedData", &dups);
    if (ed == NULL || dups)
        return SAML_DECRYPT;
    alg = alg_of(ed);
    for (i = 0; alg != NULL && i < GH_ARRAY_LEN(ciphers); i++)
        if (strcmp(alg, ciphers[i].uri) == 0)
            ci = &ciphers[i];
    if (ci == NULL) {
        snprintf(detail, dlen, "content cipher %s", alg ? alg : "(none)");
        free(alg);
        return SAML_WEAK_ALGORITHM;
    }
    free(alg);
    /* The wrapped key sits in the EncryptedData's KeyInfo, or beside it. */
    ki = saml__child(ed, SAML_NS_DS, "KeyInfo", NULL);
    for (c = ki ? ki->children : NULL; c != NULL && r != SAML_OK; c = c->next)
        if (saml__is(c, SAML_NS_XENC, "EncryptedKey")) {
            tried = 1;
            r = unwrap(idp, c, key, ci->keylen, detail, dlen);
            if (r == SAML_WEAK_ALGORITHM)
                return r;
        }
    for (c = enc->children; c != NULL && r != SAML_OK; c = c->next)
        if (saml__is(c, SAML_NS_XENC, "EncryptedKey")) {
            tried = 1;
            r = unwrap(idp, c, key, ci->keylen, detail, dlen);
            if (r == SAML_WEAK_ALGORITHM)
                return r;
        }
    if (!tried || r != SAML_OK) {
        gh_wipe(key, sizeof(key));
        return SAML_DECRYPT;
    }
    ct = cipher_value(ed, &ctlen);
    if (ct != NULL)
        pt = decrypt_data(ci, key, ct, ctlen, &ptlen);
    gh_wipe(key, sizeof(key));
    free(ct);
    if (pt == NULL)
        return SAML_DECRYPT;
    if (xmlParseInNodeContext(enc, (const char *)pt, (int)ptlen,
                              XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING,
                              &list) != XML_ERR_OK) {
        gh_wipe(pt, ptlen);
        free(pt);
        xmlFreeNodeList(list);
        /* The same answer as a padding or tag failure: telling them apart
         * is what CBC padding-oracle attacks on XML Encryption feed on. */
        snprintf(detail, dlen, "plaintext is not XML");
        return SAML_DECRYPT;
    }
    gh_wipe(pt, ptlen);
    free(pt);
    r = SAML_OK;
    for (c = list; c != NULL; c = c->next) {
        if (c->type == XML_TEXT_NODE && xmlIsBlankNode(c))
            continue;
        if (saml__is(c, SAML_NS_A, "Assertion") && assertion == NULL)
            assertion = c;
        else
            r = SAML_DECRYPT;
    }
    if (assertion == NULL || r != SAML_OK) {
        xmlFreeNodeList(list);
        snprintf(detail, dlen, "plaintext is not one Assertion");
        return SAML_DECRYPT;
    }
    /* Put the Assertion where the EncryptedAssertion was. */
    for (c = list; c != NULL; c = next) {
        next = c->next;
        c->next = c->prev = NULL;
        c->parent = NULL;
        if (c != assertion)
            xmlFreeNode(c);
    }
    xmlAddPrevSibling(enc, assertion);
    xmlUnlinkNode(enc);
    xmlFreeNode(enc);
    *out = assertion;
    return SAML_OK;
}
