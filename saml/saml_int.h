/* Private to saml/. */
#ifndef GH_SAML_SAML_INT_H
#define GH_SAML_SAML_INT_H

#include <libxml/tree.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <xmlsec/keys.h>

#include "saml.h"

#define SAML_NS_P "urn:oasis:names:tc:SAML:2.0:protocol"
#define SAML_NS_A "urn:oasis:names:tc:SAML:2.0:assertion"
#define SAML_NS_MD "urn:oasis:names:tc:SAML:2.0:metadata"
#define SAML_NS_DS "http://www.w3.org/2000/09/xmldsig#"
#define SAML_NS_XENC "http://www.w3.org/2001/04/xmlenc#"
#define SAML_BEARER "urn:oasis:names:tc:SAML:2.0:cm:bearer"
#define SAML_SUCCESS "urn:oasis:names:tc:SAML:2.0:status:Success"
#define SAML_POST "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
#define SAML_REDIRECT "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"

/* How long an AuthnRequest stays outstanding. */
#define SAML_REQUEST_TTL_MS (10 * 60 * 1000)

struct saml_idp {
    const struct saml_sp *sp;
    char *name, *uuid, *sp_entity_id, *idp_entity_id, *sso_url, *display_attr;
    char **acs;           /* configured, then derived */
    size_t nacs;
    int allow_sha1, require_encryption, in_group;
    int64_t skew_s, session_s;
    size_t max_response;
    const char *sig_uri;  /* SignatureMethod / SigAlg */
    const char *digest_uri;
    const EVP_MD *md;     /* for the redirect signature */
    EVP_PKEY *sp_key;     /* owned */
    X509 *sp_cert;        /* owned */
    char *sp_key_pem, *sp_cert_pem; /* owned; what xmlsec loads its signing key from */
    size_t sp_key_pem_len, sp_cert_pem_len;
    xmlSecKeyPtr *idp_keys; /* owned; one per idp-certificate */
    size_t nidp_keys;
};

struct saml_group {
    char *name;
    size_t *members; /* indexes into idps */
    size_t n;
};

struct saml_sp {
    int refs; /* guarded by a lock in sp.c */
    struct saml_idp *idps;
    size_t nidps;
    struct saml_group *groups;
    size_t ngroups;
};

/* xml.c */
/* Parses untrusted bytes: no DTD (a DOCTYPE stops the parser), no entity
 * substitution, no network, bounded depth. NULL with *why set. */
xmlDocPtr saml__parse(const char *buf, size_t len, enum saml_reason *why);
/* Walks a subtree: refuses comments and processing instructions, registers
 * every ID attribute (ID, xml:id) refusing duplicates, counts elements named
 * (ns, name) into *count. */
enum saml_reason saml__walk(xmlDocPtr doc, xmlNodePtr top, const char *ns, const char *name,
                            const char *ns2, const char *name2, int *count);
int saml__is(xmlNodePtr n, const char *ns, const char *name);
/* The only element child (ns, name), or NULL; *dups counts extra ones. */
xmlNodePtr saml__child(xmlNodePtr parent, const char *ns, const char *name, int *dups);
/* The whole text content (every text node, so a comment cannot cut it),
 * trimmed, into out; -1 when it does not fit or holds anything but text. */
int saml__text(xmlNodePtr n, char *out, size_t outlen);
/* An attribute value without namespace into out; -1 when absent or too long. */
int saml__attr(xmlNodePtr n, const char *name, char *out, size_t outlen);
/* xs:dateTime in UTC ("Z") to unix seconds; -1 when malformed. */
int saml__time(const char *s, int64_t *out);
void saml__time_fmt(int64_t t, char out[32]);
/* Base64 allowing white space between groups; -1 on any other byte. */
long saml__b64dec(const char *in, size_t inlen, unsigned char *out, size_t outcap);
char *saml__b64enc(const unsigned char *in, size_t len);

/* verify.c */
/* Verifies the Signature that is the direct child of el and must sign el by
 * its ID, with the IdP's keys only. */
enum saml_reason saml__verify(const struct saml_idp *idp, xmlDocPtr doc, xmlNodePtr el,
                              xmlNodePtr sig, char *detail, size_t dlen);

/* decrypt.c */
/* Replaces an EncryptedAssertion by the Assertion inside it; *out is it. */
enum saml_reason saml__decrypt(const struct saml_idp *idp, xmlDocPtr doc, xmlNodePtr enc,
                               xmlNodePtr *out, char *detail, size_t dlen);

#endif
