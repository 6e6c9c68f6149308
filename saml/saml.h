/*
 * saml — the SAML 2.0 service provider that participant authentication
 * (the seeds' Pexip "Identity Providers") runs on: identity-provider records
 * and groups from the config, signed SP metadata, IdP metadata import,
 * AuthnRequests over the HTTP-Redirect binding, the assertion consumer for
 * the HTTP-POST binding, and participant sessions.
 *
 * Every byte of a response is hostile. The consumer parses with libxml2
 * without DTDs, entities or network, verifies XML signatures with xmlsec1
 * (OpenSSL) against the configured IdP keys only, checks that the signature
 * covers the one Assertion it reads, and keeps request IDs, the replay cache
 * and sessions in the shared key-value store (common/kv.h), never privately.
 *
 * saml depends on common and certs only.
 */
#ifndef GH_SAML_SAML_H
#define GH_SAML_SAML_H

#include <stddef.h>
#include <stdint.h>

#include "../common/conf.h"

/* Why a response was refused: name as written to the security log. */
#define SAML_REASONS(X)                                                                            \
    X(OK, "ok")                                                                                    \
    X(TOO_LARGE, "saml-too-large")                                                                 \
    X(ENCODING, "saml-encoding")                                                                   \
    X(XML_MALFORMED, "saml-xml-malformed")                                                         \
    X(XML_DOCTYPE, "saml-xml-doctype")                                                             \
    X(XML_COMMENT, "saml-xml-comment")                                                             \
    X(NOT_RESPONSE, "saml-not-response")                                                           \
    X(DUPLICATE_ID, "saml-duplicate-id")                                                           \
    X(ASSERTION_COUNT, "saml-assertion-count")                                                     \
    X(UNSIGNED, "saml-unsigned")                                                                   \
    X(SIGNATURE_SHAPE, "saml-signature-shape")                                                     \
    X(SIGNATURE_REF, "saml-signature-reference")                                                   \
    X(WEAK_ALGORITHM, "saml-weak-algorithm")                                                       \
    X(BAD_SIGNATURE, "saml-bad-signature")                                                         \
    X(NOT_ENCRYPTED, "saml-not-encrypted")                                                         \
    X(DECRYPT, "saml-decrypt")                                                                     \
    X(ISSUER, "saml-issuer")                                                                       \
    X(DESTINATION, "saml-destination")                                                             \
    X(RECIPIENT, "saml-recipient")                                                                 \
    X(STATUS, "saml-status")                                                                       \
    X(EXPIRED, "saml-expired")                                                                     \
    X(NOT_YET_VALID, "saml-not-yet-valid")                                                         \
    X(AUDIENCE, "saml-audience")                                                                   \
    X(SUBJECT, "saml-subject")                                                                     \
    X(NO_DISPLAY_NAME, "saml-no-display-name")                                                     \
    X(REPLAY, "saml-replay")                                                                       \
    X(REQUEST_UNKNOWN, "saml-request-unknown")                                                     \
    X(REQUEST_REUSED, "saml-request-reused")                                                       \
    X(REQUEST_IDP, "saml-request-idp")                                                             \
    X(REQUEST_BROWSER, "saml-request-browser")                                                     \
    X(UNKNOWN_IDP, "saml-unknown-idp")                                                             \
    X(NOT_IN_GROUP, "saml-idp-not-in-group")                                                       \
    X(STORE, "saml-store-unavailable") /* the shared store did not answer: 503 */                 \
    X(INTERNAL, "saml-internal")

#define SAML_ENUM(e, s) SAML_##e,
enum saml_reason { SAML_REASONS(SAML_ENUM) SAML_REASON_MAX };
#undef SAML_ENUM

const char *saml_reason_name(enum saml_reason r);

/* The runtime model built from a config: keys loaded, ACS URLs derived. */
struct saml_sp;
struct saml_idp;

/* init.c */
/* Process-wide set-up of libxml2 and xmlsec1 (OpenSSL); once, before threads. */
int saml_global_init(void);
void saml_global_fini(void);

/* sp.c */
/* Builds the SP model: every sp-certificate and idp-certificate loaded and
 * checked. NULL with err naming the identity provider and file. */
struct saml_sp *saml_sp_new(const struct gh_conf *c, char *err, size_t errlen);
void saml_sp_ref(struct saml_sp *sp);
void saml_sp_unref(struct saml_sp *sp);
const struct saml_idp *saml_idp_by_uuid(const struct saml_sp *sp, const char *uuid);
const struct saml_idp *saml_idp_by_name(const struct saml_sp *sp, const char *name);
const char *saml_idp_name(const struct saml_idp *idp);
const char *saml_idp_uuid(const struct saml_idp *idp);
/* 1 when the IdP belongs to at least one group (the seeds: else unusable). */
int saml_idp_usable(const struct saml_idp *idp);
/* The IdPs of a group in config order: idp i, or NULL past the end or when
 * the group does not exist. */
const struct saml_idp *saml_group_idp(const struct saml_sp *sp, const char *group, size_t i);
int saml_group_exists(const struct saml_sp *sp, const char *group);
/* 1 when idp is a member of group. */
int saml_group_has(const struct saml_sp *sp, const char *group, const struct saml_idp *idp);
/* The ACS URL for a request that arrived with this Host header: the
 * configured URL on that host, else NULL. */
const char *saml_acs_for_host(const struct saml_idp *idp, const char *host);
/* The ACS URLs (configured, then derived), i-th or NULL. */
const char *saml_acs_url(const struct saml_idp *idp, size_t i);

/* metadata.c */
/* SP metadata for one IdP record: an EntityDescriptor with the signing and
 * encryption keys and every ACS URL, signed with the configured algorithms.
 * malloc'd, or NULL with err. */
char *saml_sp_metadata(const struct saml_idp *idp, size_t *len, char *err, size_t errlen);

/* What IdP metadata gives an identity-provider record. */
struct saml_idp_meta {
    char entity_id[1024];
    char sso_url[2048]; /* HTTP-Redirect SingleSignOnService */
    char *certs_pem;    /* malloc'd; every signing certificate, PEM, concatenated */
    size_t ncerts;
};
/* Reads IdP metadata (an EntityDescriptor, or the first IdP in an
 * EntitiesDescriptor). 0, or -1 with a message saying what it lacks. */
int saml_idp_meta_parse(const char *xml, size_t len, struct saml_idp_meta *m, char *err,
                        size_t errlen);
void saml_idp_meta_free(struct saml_idp_meta *m);

/* authn.c */
/* A RelayState is accepted only as a local path: "/" then no "//", no "\",
 * no scheme, no control bytes, at most 512 bytes. */
int saml_relay_ok(const char *relay);
/* The browser-binding value of a login: a random cookie the login start
 * sets, of which the request keeps the digest. */
#define SAML_BINDING_HEX 32
/* Registers a fresh AuthnRequest ID (with relay, the IdP and the digest of
 * the browser's binding cookie, SAML_BINDING_HEX hex digits) in the shared
 * store and returns the IdP's SSO URL with the signed HTTP-Redirect query,
 * malloc'd; NULL with err. host picks the ACS URL: a Host without an
 * acs-url of this IdP is refused (never another host's ACS). When the
 * store did not take the request, err starts with SAML_STORE_DOWN_TEXT. */
#define SAML_STORE_DOWN_TEXT "the shared store did not take the request ID"
char *saml_login_url(const struct saml_idp *idp, const char *host, const char *relay,
                     const char *binding, char *err, size_t errlen);

/* response.c */
struct saml_result {
    enum saml_reason reason;
    char detail[160];       /* for the log: what did not match */
    char name_id[256];
    char display_name[256]; /* empty: the participant types one */
    int name_from_idp;      /* display name came from the IdP: it is fixed */
    char idp_uuid[40];
    char relay[520];        /* the RelayState kept with the request */
    char assertion_id[256];
    char in_response_to[256];
    int64_t expires;        /* unix seconds: the session ends then at the latest */
    int64_t assertion_expires; /* unix seconds: keep the assertion ID till then */
};
/* Checks a posted SAMLResponse (base64 as posted) for idp, arriving on the
 * ACS URL for host, at unix time now. Pure: touches no shared state, so the
 * benchmark and the fuzzer call it directly. Returns r->reason. */
enum saml_reason saml_response_check(const struct saml_idp *idp, const char *host,
                                     const char *b64, size_t b64len, int64_t now,
                                     struct saml_result *r);
/* The stateful half: every check that can refuse first (the request is
 * known and unused, went to this IdP, from this browser: binding is the
 * value of its binding cookie, NULL when it sent none; the assertion is
 * not a replay), and only then the request ID consumed (once) and the
 * assertion ID marked. Returns r->reason. */
enum saml_reason saml_response_commit(const struct saml_idp *idp, const char *binding,
                                      struct saml_result *r);

/* session.c */
struct saml_session {
    char name_id[256];
    char display_name[256];
    int name_from_idp;
    char idp_uuid[40];
    int64_t expires; /* unix seconds */
};
#define SAML_SESSION_ID_HEX 64
/* Starts a session from a consumed response; id receives 64 hex digits. */
int saml_session_create(const struct saml_result *r, char id[SAML_SESSION_ID_HEX + 1]);
/* 0 a live session, -1 none, -2 the shared store did not answer and this
 * appliance did not verify the session within the session cache's window. */
int saml_session_get(const char *id, struct saml_session *s);
/* The session cache's window (session-cache; 0: none). */
void saml_session_cache_set(int64_t ms);
/* Sets the name a participant typed; -1 when the IdP gave it (fixed). */
int saml_session_set_name(const char *id, const char *name);
/* 0 ended (or none), -1 the store did not answer: it may live on. */
int saml_session_end(const char *id);

/* A fresh random (version 4) UUID, lower case. */
void saml_uuid(char out[37]);

#endif
