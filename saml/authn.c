/*
 * Login: an AuthnRequest over the HTTP-Redirect binding (SAML bindings
 * 3.4.4.1): the XML is raw-DEFLATEd, base64'd and URL-encoded, and the
 * signature is over the exact octets "SAMLRequest=...&RelayState=...&SigAlg=..."
 * as they appear in the query. The request ID is kept in the shared store
 * with the IdP and the RelayState, so the consumer can tell an unsolicited
 * or replayed response from ours, and sends the participant back only to
 * where we recorded, never to a URL taken from the response.
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../common/common.h"
#include "../common/kv.h"
#include "saml_int.h"
#include "state.h"

int saml_relay_ok(const char *r)
{
    const unsigned char *p;
    size_t n = strlen(r);

    if (n == 0 || n > 512 || r[0] != '/' || r[1] == '/' || r[1] == '\\')
        return 0;
    for (p = (const unsigned char *)r; *p; p++)
        if (*p < 0x21 || *p >= 0x7f || *p == '\\' || *p == '"' || *p == '<' || *p == '>')
            return 0;
    /* "/x//evil" is still local, but "/\t/" and "/%2F/evil" tricks are not
     * let through either: nothing percent-decodes to a slash or backslash. */
    return strstr(r, "%2f") == NULL && strstr(r, "%2F") == NULL && strstr(r, "%5c") == NULL &&
           strstr(r, "%5C") == NULL && strstr(r, "%09") == NULL;
}

void saml_uuid(char out[37])
{
    unsigned char b[16];

    if (RAND_bytes(b, sizeof(b)) != 1)
        abort();
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

static void xml_escape(struct gh_sbuf *o, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '&': gh_sbuf_printf(o, "&amp;"); break;
        case '<': gh_sbuf_printf(o, "&lt;"); break;
        case '>': gh_sbuf_printf(o, "&gt;"); break;
        case '"': gh_sbuf_printf(o, "&quot;"); break;
        default: gh_sbuf_printf(o, "%c", *s);
        }
}

static void url_escape(struct gh_sbuf *o, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            gh_sbuf_printf(o, "%c", c);
        else
            gh_sbuf_printf(o, "%%%02X", c);
    }
}

static unsigned char *deflate_raw(const char *in, size_t len, size_t *outlen)
{
    z_stream z;
    size_t cap = compressBound((uLong)len) + 64;
    unsigned char *out = gh_calloc(1, cap);

    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(out);
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
        deflateEnd(&z);
        free(out);
        return NULL;
    }
    *outlen = z.total_out;
    deflateEnd(&z);
    return out;
}

char *saml_login_url(const struct saml_idp *idp, const char *host, const char *relay,
                     const char *binding, char *err, size_t errlen)
{
    struct gh_sbuf x = {NULL, 0, 0}, q = {NULL, 0, 0}, u = {NULL, 0, 0};
    unsigned char rid[20], *defl = NULL, sig[1024];
    char id[48], now[32], *b64 = NULL, *sigb64 = NULL;
    const char *acs = saml_acs_for_host(idp, host ? host : "");
    struct saml__request rq;
    size_t dlen = 0, siglen = sizeof(sig), i;
    EVP_MD_CTX *mc = NULL;
    char *out = NULL;

    if (relay != NULL && !saml_relay_ok(relay)) {
        snprintf(err, errlen, "RelayState must be a local path");
        return NULL;
    }
    if (acs == NULL) {
        /* Another host's ACS would send the participant, and the cookie
         * that binds the login, somewhere else: refused instead. */
        snprintf(err, errlen, "Host %.100s has no acs-url of identity provider %.100s",
                 host && host[0] ? host : "(none)", idp->name);
        return NULL;
    }
    if (binding == NULL || strlen(binding) != SAML_BINDING_HEX) {
        snprintf(err, errlen, "no browser binding");
        return NULL;
    }
    if (RAND_bytes(rid, sizeof(rid)) != 1) {
        snprintf(err, errlen, "no randomness");
        return NULL;
    }
    /* An xs:ID must not start with a digit: "_" then 160 random bits. */
    id[0] = '_';
    for (i = 0; i < sizeof(rid); i++)
        snprintf(id + 1 + 2 * i, 3, "%02x", rid[i]);
    saml__time_fmt((int64_t)time(NULL), now);
    gh_sbuf_printf(&x, "<samlp:AuthnRequest xmlns:samlp=\"" SAML_NS_P "\" xmlns:saml=\""
                       SAML_NS_A "\" ID=\"%s\" Version=\"2.0\" IssueInstant=\"%s\" Destination=\"",
                   id, now);
    xml_escape(&x, idp->sso_url);
    gh_sbuf_printf(&x, "\" AssertionConsumerServiceURL=\"");
    xml_escape(&x, acs);
    gh_sbuf_printf(&x, "\" ProtocolBinding=\"" SAML_POST "\"><saml:Issuer>");
    xml_escape(&x, idp->sp_entity_id);
    gh_sbuf_printf(&x, "</saml:Issuer><samlp:NameIDPolicy AllowCreate=\"true\"/>"
                       "</samlp:AuthnRequest>");
    defl = deflate_raw(x.p, x.len, &dlen);
    if (defl == NULL) {
        snprintf(err, errlen, "deflate failed");
        goto done;
    }
    b64 = saml__b64enc(defl, dlen);
    gh_sbuf_printf(&q, "SAMLRequest=");
    url_escape(&q, b64, strlen(b64));
    if (relay != NULL) {
        gh_sbuf_printf(&q, "&RelayState=");
        url_escape(&q, relay, strlen(relay));
    }
    gh_sbuf_printf(&q, "&SigAlg=");
    url_escape(&q, idp->sig_uri, strlen(idp->sig_uri));
    mc = EVP_MD_CTX_new();
    if (mc == NULL || EVP_DigestSignInit(mc, NULL, idp->md, NULL, idp->sp_key) != 1 ||
        EVP_DigestSign(mc, sig, &siglen, (const unsigned char *)q.p, q.len) != 1) {
        snprintf(err, errlen, "signing the request failed");
        goto done;
    }
    sigb64 = saml__b64enc(sig, siglen);
    gh_sbuf_printf(&q, "&Signature=");
    url_escape(&q, sigb64, strlen(sigb64));
    memset(&rq, 0, sizeof(rq));
    gh_strlcpy(rq.uuid, idp->uuid, sizeof(rq.uuid));
    gh_strlcpy(rq.relay, relay ? relay : "", sizeof(rq.relay));
    saml__binding_digest(binding, rq.binding);
    if (saml__request_put(id, &rq) == -1) {
        snprintf(err, errlen, "%s", SAML_STORE_DOWN_TEXT);
        goto done;
    }
    gh_sbuf_printf(&u, "%s%c%s", idp->sso_url, strchr(idp->sso_url, '?') ? '&' : '?', q.p);
    out = u.p;
    u.p = NULL;
done:
    EVP_MD_CTX_free(mc);
    free(x.p);
    free(q.p);
    free(u.p);
    free(defl);
    free(b64);
    free(sigb64);
    return out;
}
