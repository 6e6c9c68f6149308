/*
 * The assertion consumer's checks (SAML core 2.0, profiles 4.1.4.3), in an
 * order that reads nothing from an assertion before its signature is known
 * to cover it:
 *   size, base64, XML (no DOCTYPE, comments or duplicate IDs), shape (one
 *   Response root, exactly one Assertion or EncryptedAssertion anywhere in
 *   the document, and it a direct child of the Response), Destination,
 *   Status, the Response signature, decryption, the Assertion signature,
 *   at least one of the two covering the Assertion, then Issuer, Subject,
 *   bearer confirmation (Recipient, InResponseTo, time), Conditions (time,
 *   audience), and the display name.
 * The stateful part (replay cache, request consumed once) is in commit.
 */
#include <libxml/tree.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/common.h"
#include "saml_int.h"
#include "state.h"

/* Keeps a detail a callee already wrote, else writes this one. */
#define FAIL_KEEP(res, why, what)                                                                  \
    do {                                                                                           \
        (res)->reason = (why);                                                                     \
        if ((res)->detail[0] == '\0')                                                             \
            gh_strlcpy((res)->detail, (what), sizeof((res)->detail));                              \
        goto done;                                                                                 \
    } while (0)
#define FAIL(res, why, ...)                                                                        \
    do {                                                                                           \
        (res)->reason = (why);                                                                     \
        snprintf((res)->detail, sizeof((res)->detail), __VA_ARGS__);                               \
        goto done;                                                                                 \
    } while (0)

/* A direct ds:Signature child, counting extra ones. */
static xmlNodePtr signature_of(xmlNodePtr el, int *dups)
{
    return saml__child(el, SAML_NS_DS, "Signature", dups);
}

static int check_time_window(xmlNodePtr n, int64_t now, int64_t skew, struct saml_result *r,
                             int need_end)
{
    char v[64];
    int64_t t;

    if (saml__attr(n, "NotBefore", v, sizeof(v)) == 0) {
        if (saml__time(v, &t) == -1) {
            r->reason = SAML_NOT_YET_VALID;
            snprintf(r->detail, sizeof(r->detail), "NotBefore malformed");
            return -1;
        }
        if (now + skew < t) {
            r->reason = SAML_NOT_YET_VALID;
            snprintf(r->detail, sizeof(r->detail), "%.40s NotBefore %.40s", (const char *)n->name, v);
            return -1;
        }
    }
    if (saml__attr(n, "NotOnOrAfter", v, sizeof(v)) == 0) {
        if (saml__time(v, &t) == -1) {
            r->reason = SAML_EXPIRED;
            snprintf(r->detail, sizeof(r->detail), "NotOnOrAfter malformed");
            return -1;
        }
        if (now - skew >= t) {
            r->reason = SAML_EXPIRED;
            snprintf(r->detail, sizeof(r->detail), "%s NotOnOrAfter %s", (const char *)n->name,
                     v);
            return -1;
        }
        if (t > r->assertion_expires)
            r->assertion_expires = t;
    } else if (need_end) {
        r->reason = SAML_EXPIRED;
        snprintf(r->detail, sizeof(r->detail), "%s without NotOnOrAfter", (const char *)n->name);
        return -1;
    }
    return 0;
}

static int issuer_ok(xmlNodePtr parent, const char *want, int required)
{
    int dups;
    xmlNodePtr is = saml__child(parent, SAML_NS_A, "Issuer", &dups);
    char v[1024], fmt[256];

    if (is == NULL)
        return !required;
    if (dups || saml__text(is, v, sizeof(v)) == -1 || strcmp(v, want) != 0)
        return 0;
    if (saml__attr(is, "Format", fmt, sizeof(fmt)) == 0 &&
        strcmp(fmt, "urn:oasis:names:tc:SAML:2.0:nameid-format:entity") != 0)
        return 0;
    return 1;
}

/* The bearer SubjectConfirmation (profiles 4.1.4.2): Recipient is our ACS,
 * InResponseTo is the Response's, and the window holds now. */
static int check_subject(const struct saml_idp *idp, xmlNodePtr subj, const char *acs,
                         const char *irt, int64_t now, struct saml_result *r)
{
    xmlNodePtr c, nid;
    int dups, bearer = 0;

    nid = saml__child(subj, SAML_NS_A, "NameID", &dups);
    if (nid == NULL || dups) {
        r->reason = SAML_SUBJECT;
        snprintf(r->detail, sizeof(r->detail), nid ? "several NameIDs" : "no NameID");
        return -1;
    }
    if (saml__text(nid, r->name_id, sizeof(r->name_id)) == -1 || r->name_id[0] == '\0') {
        r->reason = SAML_SUBJECT;
        snprintf(r->detail, sizeof(r->detail), "NameID is not plain text");
        return -1;
    }
    for (c = subj->children; c != NULL; c = c->next) {
        xmlNodePtr d;
        char v[1024];
        if (!saml__is(c, SAML_NS_A, "SubjectConfirmation"))
            continue;
        if (saml__attr(c, "Method", v, sizeof(v)) == -1 || strcmp(v, SAML_BEARER) != 0)
            continue;
        bearer = 1;
        d = saml__child(c, SAML_NS_A, "SubjectConfirmationData", &dups);
        if (d == NULL || dups) {
            r->reason = SAML_SUBJECT;
            snprintf(r->detail, sizeof(r->detail), "bearer confirmation without data");
            return -1;
        }
        if (saml__attr(d, "Recipient", v, sizeof(v)) == -1 || strcmp(v, acs) != 0) {
            r->reason = SAML_RECIPIENT;
            snprintf(r->detail, sizeof(r->detail), "Recipient is not %s", acs);
            return -1;
        }
        if (saml__attr(d, "InResponseTo", v, sizeof(v)) == 0 && strcmp(v, irt) != 0) {
            r->reason = SAML_REQUEST_UNKNOWN;
            snprintf(r->detail, sizeof(r->detail), "confirmation InResponseTo differs");
            return -1;
        }
        if (saml__attr(d, "NotBefore", v, sizeof(v)) == 0) {
            r->reason = SAML_SUBJECT; /* profiles 4.1.4.2: bearer data MUST NOT have it */
            snprintf(r->detail, sizeof(r->detail), "bearer confirmation with NotBefore");
            return -1;
        }
        if (check_time_window(d, now, idp->skew_s, r, 1) == -1)
            return -1;
    }
    if (!bearer) {
        r->reason = SAML_SUBJECT;
        snprintf(r->detail, sizeof(r->detail), "no bearer confirmation");
        return -1;
    }
    return 0;
}

static int check_conditions(const struct saml_idp *idp, xmlNodePtr a, int64_t now,
                            struct saml_result *r)
{
    int dups, restrictions = 0;
    xmlNodePtr cond = saml__child(a, SAML_NS_A, "Conditions", &dups), c, au;

    if (cond == NULL || dups) {
        r->reason = SAML_AUDIENCE;
        snprintf(r->detail, sizeof(r->detail), "no Conditions");
        return -1;
    }
    if (check_time_window(cond, now, idp->skew_s, r, 0) == -1)
        return -1;
    /* Every AudienceRestriction must name us (core 2.5.1.4). */
    for (c = cond->children; c != NULL; c = c->next) {
        int mine = 0;
        if (!saml__is(c, SAML_NS_A, "AudienceRestriction"))
            continue;
        restrictions++;
        for (au = c->children; au != NULL; au = au->next) {
            char v[1024];
            if (saml__is(au, SAML_NS_A, "Audience") && saml__text(au, v, sizeof(v)) == 0 &&
                strcmp(v, idp->sp_entity_id) == 0)
                mine = 1;
        }
        if (!mine) {
            r->reason = SAML_AUDIENCE;
            snprintf(r->detail, sizeof(r->detail), "audience is not %s", idp->sp_entity_id);
            return -1;
        }
    }
    if (restrictions == 0) {
        r->reason = SAML_AUDIENCE;
        snprintf(r->detail, sizeof(r->detail), "no AudienceRestriction");
        return -1;
    }
    return 0;
}

static int display_name(const struct saml_idp *idp, xmlNodePtr a, struct saml_result *r)
{
    xmlNodePtr st, at, v;

    if (idp->display_attr[0] == '\0') {
        r->display_name[0] = '\0';
        r->name_from_idp = 0; /* the participant types one */
        return 0;
    }
    r->name_from_idp = 1;
    if (strcmp(idp->display_attr, "NameID") == 0) {
        gh_strlcpy(r->display_name, r->name_id, sizeof(r->display_name));
        return 0;
    }
    for (st = a->children; st != NULL; st = st->next) {
        if (!saml__is(st, SAML_NS_A, "AttributeStatement"))
            continue;
        for (at = st->children; at != NULL; at = at->next) {
            char name[512];
            if (!saml__is(at, SAML_NS_A, "Attribute") ||
                saml__attr(at, "Name", name, sizeof(name)) == -1 ||
                strcmp(name, idp->display_attr) != 0)
                continue;
            v = saml__child(at, SAML_NS_A, "AttributeValue", NULL);
            if (v != NULL && saml__text(v, r->display_name, sizeof(r->display_name)) == 0 &&
                r->display_name[0] != '\0')
                return 0;
        }
    }
    r->reason = SAML_NO_DISPLAY_NAME;
    snprintf(r->detail, sizeof(r->detail), "no attribute %.100s", idp->display_attr);
    return -1;
}

enum saml_reason saml_response_check(const struct saml_idp *idp, const char *host,
                                     const char *b64, size_t b64len, int64_t now,
                                     struct saml_result *r)
{
    unsigned char *raw = NULL;
    long rawlen;
    xmlDocPtr doc = NULL;
    xmlNodePtr root, a = NULL, c, sig, subj, authn;
    const char *acs;
    char v[1024];
    int n = 0, dups, response_signed = 0, assertion_signed = 0, encrypted;
    enum saml_reason why;

    memset(r, 0, sizeof(*r));
    r->reason = SAML_OK;
    gh_strlcpy(r->idp_uuid, idp->uuid, sizeof(r->idp_uuid));
    if (b64len > idp->max_response / 3 * 4 + 4096)
        FAIL(r, SAML_TOO_LARGE, "%zu bytes posted", b64len);
    raw = gh_calloc(1, b64len / 4 * 3 + 3);
    rawlen = saml__b64dec(b64, b64len, raw, b64len / 4 * 3 + 3);
    if (rawlen <= 0)
        FAIL(r, SAML_ENCODING, "not base64");
    if ((size_t)rawlen > idp->max_response)
        FAIL(r, SAML_TOO_LARGE, "%ld bytes", rawlen);
    doc = saml__parse((const char *)raw, (size_t)rawlen, &why);
    if (doc == NULL)
        FAIL(r, why, "parse");
    root = xmlDocGetRootElement(doc);
    if ((why = saml__walk(doc, root, SAML_NS_A, "Assertion", SAML_NS_A, "EncryptedAssertion",
                          &n)) != SAML_OK)
        FAIL(r, why, "document");
    if (!saml__is(root, SAML_NS_P, "Response") || saml__attr(root, "Version", v, sizeof(v)) ||
        strcmp(v, "2.0") != 0 || saml__attr(root, "ID", v, sizeof(v)) == -1)
        FAIL(r, SAML_NOT_RESPONSE, "root is not a SAML 2.0 Response");
    /* Exactly one assertion in the whole document, directly in the root:
     * every wrapping attack needs a second one somewhere. */
    for (c = root->children; c != NULL; c = c->next)
        if (saml__is(c, SAML_NS_A, "Assertion") || saml__is(c, SAML_NS_A, "EncryptedAssertion"))
            a = c;
    if (n != 1 || a == NULL)
        FAIL(r, SAML_ASSERTION_COUNT, "%d assertions", n);
    encrypted = saml__is(a, SAML_NS_A, "EncryptedAssertion");
    acs = saml_acs_for_host(idp, host);
    if (acs == NULL)
        FAIL(r, SAML_DESTINATION, "host %.100s has no ACS URL for this IdP", host);
    if (saml__attr(root, "Destination", v, sizeof(v)) == -1 || strcmp(v, acs) != 0)
        FAIL(r, SAML_DESTINATION, "Destination is not %.120s", acs);
    if (!issuer_ok(root, idp->idp_entity_id, 0))
        FAIL(r, SAML_ISSUER, "Response Issuer");
    {
        xmlNodePtr st = saml__child(root, SAML_NS_P, "Status", NULL), code;
        code = st ? saml__child(st, SAML_NS_P, "StatusCode", NULL) : NULL;
        if (code == NULL || saml__attr(code, "Value", v, sizeof(v)) == -1 ||
            strcmp(v, SAML_SUCCESS) != 0) {
            xmlNodePtr sub = code ? saml__child(code, SAML_NS_P, "StatusCode", NULL) : NULL;
            char sv[256] = "";
            if (sub != NULL)
                saml__attr(sub, "Value", sv, sizeof(sv));
            FAIL(r, SAML_STATUS, "%.100s %.50s", v, sv);
        }
    }
    if (saml__attr(root, "InResponseTo", r->in_response_to, sizeof(r->in_response_to)) == -1)
        FAIL(r, SAML_REQUEST_UNKNOWN, "unsolicited (no InResponseTo)");
    sig = signature_of(root, &dups);
    if (dups)
        FAIL(r, SAML_SIGNATURE_SHAPE, "several Response signatures");
    if (sig != NULL) {
        if ((why = saml__verify(idp, doc, root, sig, r->detail, sizeof(r->detail))) != SAML_OK)
            FAIL_KEEP(r, why, "Response signature");
        response_signed = 1;
    }
    if (encrypted) {
        xmlNodePtr dec = NULL;
        int m = 0;
        if ((why = saml__decrypt(idp, doc, a, &dec, r->detail, sizeof(r->detail))) != SAML_OK)
            FAIL_KEEP(r, why, "EncryptedAssertion");
        a = dec;
        if ((why = saml__walk(doc, a, SAML_NS_A, "Assertion", SAML_NS_A, "EncryptedAssertion",
                              &m)) != SAML_OK)
            FAIL(r, why, "decrypted assertion");
        if (m != 1)
            FAIL(r, SAML_ASSERTION_COUNT, "decrypted content holds %d assertions", m);
    } else if (idp->require_encryption) {
        FAIL(r, SAML_NOT_ENCRYPTED, "plain Assertion");
    }
    if (saml__attr(a, "Version", v, sizeof(v)) || strcmp(v, "2.0") != 0 ||
        saml__attr(a, "ID", r->assertion_id, sizeof(r->assertion_id)) == -1)
        FAIL(r, SAML_NOT_RESPONSE, "Assertion without Version 2.0 or ID");
    sig = signature_of(a, &dups);
    if (dups)
        FAIL(r, SAML_SIGNATURE_SHAPE, "several Assertion signatures");
    if (sig != NULL) {
        if ((why = saml__verify(idp, doc, a, sig, r->detail, sizeof(r->detail))) != SAML_OK)
            FAIL_KEEP(r, why, "Assertion signature");
        assertion_signed = 1;
    }
    /* Our metadata says WantAssertionsSigned: a signed Response around an
     * unsigned Assertion is not what we asked for. */
    if (!assertion_signed)
        FAIL(r, SAML_UNSIGNED, response_signed ? "the Assertion is not signed (only the Response)"
                                               : "neither the Response nor the Assertion is signed");
    if (!issuer_ok(a, idp->idp_entity_id, 1))
        FAIL(r, SAML_ISSUER, "Assertion Issuer is not %.100s", idp->idp_entity_id);
    subj = saml__child(a, SAML_NS_A, "Subject", &dups);
    if (subj == NULL || dups)
        FAIL(r, SAML_SUBJECT, "no Subject");
    if (check_subject(idp, subj, acs, r->in_response_to, now, r) == -1)
        goto done;
    if (check_conditions(idp, a, now, r) == -1)
        goto done;
    if (display_name(idp, a, r) == -1)
        goto done;
    r->expires = now + idp->session_s;
    authn = saml__child(a, SAML_NS_A, "AuthnStatement", NULL);
    if (authn != NULL && saml__attr(authn, "SessionNotOnOrAfter", v, sizeof(v)) == 0) {
        int64_t t;
        if (saml__time(v, &t) == -1)
            FAIL(r, SAML_EXPIRED, "SessionNotOnOrAfter malformed");
        if (t <= now)
            FAIL(r, SAML_EXPIRED, "SessionNotOnOrAfter %.40s", v);
        if (t < r->expires)
            r->expires = t;
    }
    if (r->assertion_expires < now + 60)
        r->assertion_expires = now + 60;
done:
    if (doc != NULL)
        xmlFreeDoc(doc);
    free(raw);
    return r->reason;
}

static enum saml_reason refuse(struct saml_result *r, enum saml_reason why, const char *detail)
{
    r->reason = why;
    gh_strlcpy(r->detail, detail, sizeof(r->detail));
    return why;
}

/* The request as it was stored: known, unused, sent to this IdP, from
 * this browser. Neither consumes anything. */
static enum saml_reason request_ok(const struct saml_idp *idp, const char *binding,
                                   struct saml_result *r, struct saml__request *rq)
{
    unsigned char d[32];
    char detail[160];
    int rc = saml__request_peek(r->in_response_to, rq);

    snprintf(detail, sizeof(detail), "InResponseTo %.100s", r->in_response_to);
    if (rc == -3)
        return refuse(r, SAML_STORE, "the outstanding request could not be read");
    if (rc != 0)
        return refuse(r, rc == -2 ? SAML_REQUEST_REUSED : SAML_REQUEST_UNKNOWN, detail);
    if (strcmp(rq->uuid, idp->uuid) != 0)
        return refuse(r, SAML_REQUEST_IDP, "request went to another IdP");
    if (binding == NULL || strlen(binding) != SAML_BINDING_HEX)
        return refuse(r, SAML_REQUEST_BROWSER, "posted without the login's binding cookie");
    saml__binding_digest(binding, d);
    if (CRYPTO_memcmp(d, rq->binding, sizeof(d)) != 0)
        return refuse(r, SAML_REQUEST_BROWSER, "posted by another browser than started it");
    return SAML_OK;
}

enum saml_reason saml_response_commit(const struct saml_idp *idp, const char *binding,
                                      struct saml_result *r)
{
    struct saml__request rq;
    char detail[160];
    int rc;

    if (r->reason != SAML_OK)
        return r->reason;
    if (!idp->in_group)
        return refuse(r, SAML_NOT_IN_GROUP, "");
    /* Every check that can refuse comes before anything is consumed, so a
     * refused post (a forgery from another browser, a response of another
     * IdP) cannot spend the genuine response's request. */
    snprintf(detail, sizeof(detail), "assertion %.100s seen before", r->assertion_id);
    rc = saml__replay_seen(idp->uuid, r->assertion_id);
    if (rc == -3)
        return refuse(r, SAML_STORE, "the replay cache could not be read");
    if (rc != 0)
        return refuse(r, SAML_REPLAY, detail);
    if (request_ok(idp, binding, r, &rq) != SAML_OK)
        return r->reason;
    /* Then the request is consumed (atomically: of two posts one wins),
     * and only then the assertion ID marked, set-if-absent. */
    rc = saml__request_take(r->in_response_to, &rq);
    if (rc == -3)
        return refuse(r, SAML_STORE, "the outstanding request could not be taken");
    if (rc != 0) {
        snprintf(detail, sizeof(detail), "InResponseTo %.100s", r->in_response_to);
        return refuse(r, rc == -2 ? SAML_REQUEST_REUSED : SAML_REQUEST_UNKNOWN, detail);
    }
    rc = saml__replay_mark(idp->uuid, r->assertion_id, r->assertion_expires);
    if (rc == -3)
        return refuse(r, SAML_STORE, "the assertion could not be marked used durably");
    if (rc != 1) {
        snprintf(detail, sizeof(detail), "assertion %.100s seen before", r->assertion_id);
        return refuse(r, SAML_REPLAY, detail);
    }
    gh_strlcpy(r->relay, rq.relay, sizeof(r->relay));
    return SAML_OK;
}
