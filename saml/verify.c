/*
 * XML signature verification for responses and assertions. Before xmlsec1
 * sees a signature its shape is checked by hand: one Reference, whose URI
 * is "#" + the ID of the element the Signature sits directly in, and which
 * resolves (IDs are unique, see xml.c) to that very element; only the
 * enveloped-signature and exclusive c14n transforms; allowed algorithms
 * only. The key is set on the context, so xmlsec never reads a key or a
 * certificate from KeyInfo: an attacker's own certificate there is ignored.
 * Together this closes signature wrapping: what was verified is what is read.
 */
#include <string.h>
#include <xmlsec/crypto.h>
#include <xmlsec/transforms.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>

#include "../common/common.h"
#include "saml_int.h"

#define EXC_C14N "http://www.w3.org/2001/10/xml-exc-c14n#"
#define ENVELOPED "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

static const char *const strong_sig[] = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
};
static const char *const strong_digest[] = {
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
};
#define SHA1_SIG "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
#define SHA1_DIGEST "http://www.w3.org/2000/09/xmldsig#sha1"

static int in(const char *v, const char *const *list, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(v, list[i]) == 0)
            return 1;
    return 0;
}

/* 1 strong, 0 SHA-1 (allowed or not by the caller), -1 unknown. */
static int alg_class(xmlNodePtr n, const char *const *strong, size_t ns, const char *sha1)
{
    char alg[256];

    if (saml__attr(n, "Algorithm", alg, sizeof(alg)) == -1)
        return -1;
    if (in(alg, strong, ns))
        return 1;
    return strcmp(alg, sha1) == 0 ? 0 : -1;
}

static int element_children(xmlNodePtr n)
{
    xmlNodePtr c;
    int k = 0;

    for (c = n->children; c != NULL; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            k++;
    return k;
}

static enum saml_reason check_shape(const struct saml_idp *idp, xmlDocPtr doc, xmlNodePtr el,
                                    xmlNodePtr sig, char *detail, size_t dlen)
{
    xmlNodePtr si, c14n, sm, ref, tr, dm, c;
    char id[256], uri[300];
    int dups, k;
    xmlAttrPtr target;

    si = saml__child(sig, SAML_NS_DS, "SignedInfo", &dups);
    if (si == NULL || dups || saml__child(sig, SAML_NS_DS, "SignatureValue", NULL) == NULL)
        return SAML_SIGNATURE_SHAPE;
    for (c = sig->children; c != NULL; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !saml__is(c, SAML_NS_DS, "SignedInfo") &&
            !saml__is(c, SAML_NS_DS, "SignatureValue") && !saml__is(c, SAML_NS_DS, "KeyInfo")) {
            snprintf(detail, dlen, "Signature holds %s", (const char *)c->name);
            return SAML_SIGNATURE_SHAPE; /* ds:Object: where wrapped copies hide */
        }
    c14n = saml__child(si, SAML_NS_DS, "CanonicalizationMethod", NULL);
    sm = saml__child(si, SAML_NS_DS, "SignatureMethod", NULL);
    ref = saml__child(si, SAML_NS_DS, "Reference", &dups);
    if (c14n == NULL || sm == NULL || ref == NULL || dups || element_children(si) != 3)
        return SAML_SIGNATURE_SHAPE;
    if (saml__attr(c14n, "Algorithm", uri, sizeof(uri)) == -1 || strcmp(uri, EXC_C14N) != 0) {
        snprintf(detail, dlen, "canonicalization");
        return SAML_WEAK_ALGORITHM;
    }
    k = alg_class(sm, strong_sig, GH_ARRAY_LEN(strong_sig), SHA1_SIG);
    if (k < 0 || (k == 0 && !idp->allow_sha1)) {
        snprintf(detail, dlen, "signature method");
        return SAML_WEAK_ALGORITHM;
    }
    dm = saml__child(ref, SAML_NS_DS, "DigestMethod", NULL);
    if (dm == NULL || saml__child(ref, SAML_NS_DS, "DigestValue", NULL) == NULL)
        return SAML_SIGNATURE_SHAPE;
    k = alg_class(dm, strong_digest, GH_ARRAY_LEN(strong_digest), SHA1_DIGEST);
    if (k < 0 || (k == 0 && !idp->allow_sha1)) {
        snprintf(detail, dlen, "digest method");
        return SAML_WEAK_ALGORITHM;
    }
    tr = saml__child(ref, SAML_NS_DS, "Transforms", NULL);
    if (tr != NULL)
        for (c = tr->children; c != NULL; c = c->next) {
            if (c->type != XML_ELEMENT_NODE)
                continue;
            if (!saml__is(c, SAML_NS_DS, "Transform") ||
                saml__attr(c, "Algorithm", uri, sizeof(uri)) == -1 ||
                (strcmp(uri, ENVELOPED) != 0 && strcmp(uri, EXC_C14N) != 0)) {
                snprintf(detail, dlen, "transform");
                return SAML_WEAK_ALGORITHM;
            }
        }
    /* The reference names the element the signature sits in, and that ID
     * resolves to nothing else. */
    if (saml__attr(el, "ID", id, sizeof(id)) == -1 ||
        saml__attr(ref, "URI", uri, sizeof(uri)) == -1 || uri[0] != '#' ||
        strcmp(uri + 1, id) != 0) {
        snprintf(detail, dlen, "reference is not the signed element");
        return SAML_SIGNATURE_REF;
    }
    target = xmlGetID(doc, (const xmlChar *)id);
    if (target == NULL || target->parent != el)
        return SAML_SIGNATURE_REF;
    return SAML_OK;
}

static void enable_transforms(xmlSecDSigCtxPtr ctx)
{
    xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformExclC14NId);
    xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformEnvelopedId);
    xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha1Id);
    xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha256Id);
    xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha384Id);
    xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha512Id);
    xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformExclC14NId);
    xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha1Id);
    xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha256Id);
    xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha384Id);
    xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha512Id);
    xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformEcdsaSha256Id);
    xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformEcdsaSha384Id);
    xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformEcdsaSha512Id);
    ctx->enabledReferenceUris = xmlSecTransformUriTypeSameDocument;
}

enum saml_reason saml__verify(const struct saml_idp *idp, xmlDocPtr doc, xmlNodePtr el,
                              xmlNodePtr sig, char *detail, size_t dlen)
{
    enum saml_reason r = check_shape(idp, doc, el, sig, detail, dlen);
    size_t i;

    if (r != SAML_OK)
        return r;
    /* Any of the configured keys (rollover): the first that verifies. The
     * key is lent to the context, not copied: xmlsec only takes a reference
     * to its EVP_PKEY (read-only, shared safely between threads), while a
     * duplicate deep-copies the key and cost 4/5 of a check. */
    for (i = 0; i < idp->nidp_keys; i++) {
        xmlSecDSigCtxPtr ctx = xmlSecDSigCtxCreate(NULL);
        int ok;
        if (ctx == NULL)
            return SAML_INTERNAL;
        enable_transforms(ctx);
        ctx->signKey = idp->idp_keys[i];
        ok = ctx->signKey != NULL && xmlSecDSigCtxVerify(ctx, sig) == 0 &&
             ctx->status == xmlSecDSigStatusSucceeded;
        ctx->signKey = NULL;
        xmlSecDSigCtxDestroy(ctx);
        if (ok)
            return SAML_OK;
    }
    snprintf(detail, dlen, "no configured key verifies it");
    return SAML_BAD_SIGNATURE;
}
