/* make bench: assertion-consumer verifications per second. Builds a
 * response like SimpleSAMLphp's (one Assertion signed with RSA-SHA256 by a
 * fresh 2048-bit IdP key, exclusive c14n, SHA-256 digest) and runs the
 * whole stateless check on it (base64, parse, shape, signature, every
 * condition) for a fixed time on one thread. The raw RSA-2048 verification
 * rate of OpenSSL on the same machine is measured alongside, so the XML
 * overhead reads as a ratio. Prints "key value" lines for bench.py. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xmlsec/crypto.h>
#include <xmlsec/templates.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>

#include "../../certs/certs.h"
#include "../../common/common.h"
#include "../../common/conf.h"
#include "../../saml/saml_int.h"

#define UUID "0f5e2a36-6c1e-4d0b-9c41-5b7a2f0e9d11"
#define ACS "https://meet.example.com/api/v1/samlconsumer/" UUID

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *signed_response(const char *key_pem_file, const char *cert_file)
{
    char t0[32], t1[32], t2[32];
    int64_t t = (int64_t)time(NULL);
    struct gh_sbuf x = {NULL, 0, 0};
    xmlDocPtr doc;
    xmlNodePtr a, iss, sig, ref;
    xmlSecDSigCtxPtr ctx;
    xmlChar *out = NULL;
    int outlen = 0;
    char *b64;

    saml__time_fmt(t, t0);
    saml__time_fmt(t - 30, t1);
    saml__time_fmt(t + 300, t2);
    gh_sbuf_printf(&x,
        "<samlp:Response xmlns:samlp=\"" SAML_NS_P "\" xmlns:saml=\"" SAML_NS_A "\" "
        "ID=\"_r1\" Version=\"2.0\" IssueInstant=\"%s\" Destination=\"" ACS "\" "
        "InResponseTo=\"_0123456789abcdef0123456789abcdef01234567\">"
        "<saml:Issuer>https://idp.example</saml:Issuer>"
        "<samlp:Status><samlp:StatusCode Value=\"" SAML_SUCCESS "\"/></samlp:Status>"
        "<saml:Assertion xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" "
        "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" ID=\"_a1\" Version=\"2.0\" "
        "IssueInstant=\"%s\"><saml:Issuer>https://idp.example</saml:Issuer>"
        "<saml:Subject><saml:NameID Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent\">"
        "alice</saml:NameID><saml:SubjectConfirmation Method=\"" SAML_BEARER "\">"
        "<saml:SubjectConfirmationData NotOnOrAfter=\"%s\" Recipient=\"" ACS "\" "
        "InResponseTo=\"_0123456789abcdef0123456789abcdef01234567\"/></saml:SubjectConfirmation>"
        "</saml:Subject><saml:Conditions NotBefore=\"%s\" NotOnOrAfter=\"%s\">"
        "<saml:AudienceRestriction><saml:Audience>https://meet.example.com/saml</saml:Audience>"
        "</saml:AudienceRestriction></saml:Conditions>"
        "<saml:AuthnStatement AuthnInstant=\"%s\" SessionIndex=\"_s1\"><saml:AuthnContext>"
        "<saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password"
        "</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"
        "<saml:AttributeStatement><saml:Attribute Name=\"displayName\">"
        "<saml:AttributeValue xsi:type=\"xs:string\">Alice Liddell</saml:AttributeValue>"
        "</saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>",
        t0, t0, t2, t1, t2, t0);
    doc = xmlReadMemory(x.p, (int)x.len, NULL, NULL, 0);
    free(x.p);
    a = xmlDocGetRootElement(doc)->children;
    while (!saml__is(a, SAML_NS_A, "Assertion"))
        a = a->next;
    xmlAddID(NULL, doc, (const xmlChar *)"_a1", xmlHasProp(a, (const xmlChar *)"ID"));
    iss = a->children;
    sig = xmlSecTmplSignatureCreate(doc, xmlSecTransformExclC14NId, xmlSecTransformRsaSha256Id,
                                    NULL);
    xmlAddNextSibling(iss, sig);
    ref = xmlSecTmplSignatureAddReference(sig, xmlSecTransformSha256Id, NULL,
                                          (const xmlChar *)"#_a1", NULL);
    xmlSecTmplReferenceAddTransform(ref, xmlSecTransformEnvelopedId);
    xmlSecTmplReferenceAddTransform(ref, xmlSecTransformExclC14NId);
    xmlSecTmplKeyInfoAddX509Data(xmlSecTmplSignatureEnsureKeyInfo(sig, NULL));
    ctx = xmlSecDSigCtxCreate(NULL);
    ctx->signKey = xmlSecCryptoAppKeyLoad(key_pem_file, xmlSecKeyDataFormatPem, NULL, NULL, NULL);
    if (ctx->signKey == NULL ||
        xmlSecCryptoAppKeyCertLoad(ctx->signKey, cert_file, xmlSecKeyDataFormatPem) < 0 ||
        xmlSecDSigCtxSign(ctx, sig) < 0) {
        fprintf(stderr, "saml_bench: signing failed\n");
        exit(1);
    }
    xmlSecDSigCtxDestroy(ctx);
    xmlDocDumpMemory(doc, &out, &outlen);
    b64 = saml__b64enc(out, (size_t)outlen);
    xmlFree(out);
    xmlFreeDoc(doc);
    return b64;
}

static double rsa_verifies_per_s(const char *key_file, double secs)
{
    FILE *f = fopen(key_file, "r");
    EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    unsigned char sig[512], msg[32] = {0};
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    double t0, t;
    long n = 0;

    if (f)
        fclose(f);
    if (k == NULL || EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, k) != 1 ||
        EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) != 1)
        return 0;
    t0 = now_s();
    do {
        EVP_MD_CTX_reset(m);
        if (EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, k) != 1 ||
            EVP_DigestVerify(m, sig, siglen, msg, sizeof(msg)) != 1)
            return 0;
        n++;
    } while ((t = now_s() - t0) < secs);
    EVP_MD_CTX_free(m);
    EVP_PKEY_free(k);
    return (double)n / t;
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/gh-saml-bench-XXXXXX", a[300], b[300], c[300], d[300], err[512];
    struct certs_req r = {"bench", NULL, 2048, 30};
    double secs = argc > 1 ? atof(argv[1]) : 3.0, t0, t;
    struct gh_sbuf conf = {NULL, 0, 0};
    struct saml_result res;
    struct gh_conf *cf;
    struct saml_sp *sp;
    const struct saml_idp *idp;
    char *b64;
    long n = 0;

    if (mkdtemp(dir) == NULL || saml_global_init() == -1)
        return 1;
    snprintf(a, sizeof(a), "%s/sp.pem", dir);
    snprintf(b, sizeof(b), "%s/sp.key", dir);
    snprintf(c, sizeof(c), "%s/idp.pem", dir);
    snprintf(d, sizeof(d), "%s/idp.key", dir);
    if (certs_gen_selfsigned(a, b, &r, err, sizeof(err)) == -1 ||
        certs_gen_selfsigned(c, d, &r, err, sizeof(err)) == -1) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    gh_sbuf_printf(&conf,
                   "certificate sp { cert %s\n key %s }\n"
                   "identity-provider i {\n uuid " UUID "\n sp-certificate sp\n"
                   " sp-entity-id https://meet.example.com/saml\n acs-url " ACS "\n"
                   " idp-sso-url https://idp.example/sso\n idp-entity-id https://idp.example\n"
                   " idp-certificate %s\n display-name-attribute displayName\n}\n",
                   a, b, c);
    cf = gh_conf_parse("bench", conf.p, conf.len, err, sizeof(err));
    sp = cf ? saml_sp_new(cf, err, sizeof(err)) : NULL;
    if (sp == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    idp = saml_idp_by_uuid(sp, UUID);
    b64 = signed_response(d, c);
    if (saml_response_check(idp, "meet.example.com", b64, strlen(b64), (int64_t)time(NULL),
                            &res) != SAML_OK) {
        fprintf(stderr, "saml_bench: the response does not verify: %s %s\n",
                saml_reason_name(res.reason), res.detail);
        return 1;
    }
    t0 = now_s();
    do {
        saml_response_check(idp, "meet.example.com", b64, strlen(b64), (int64_t)time(NULL), &res);
        if (res.reason != SAML_OK)
            return 1;
        n++;
    } while ((t = now_s() - t0) < secs);
    printf("response_bytes %zu\n", strlen(b64) / 4 * 3);
    printf("acs_checks_per_s %.0f\n", (double)n / t);
    printf("rsa2048_verifies_per_s %.0f\n", rsa_verifies_per_s(d, secs));
    free(b64);
    free(conf.p);
    saml_sp_unref(sp);
    gh_conf_free(cf);
    unlink(a);
    unlink(b);
    unlink(c);
    unlink(d);
    rmdir(dir);
    return 0;
}
