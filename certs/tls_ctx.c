/*
 * SSL_CTX construction with the appliance's TLS policy. One context per
 * listener (shared by every worker: SSL_CTX is thread-safe for SSL_new) and
 * one per re-encrypting service for its real servers.
 */
#include "certs.h"

#include <openssl/pkcs12.h>

#include "certs_int.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

/* TLS 1.2 suites: ECDHE only (forward secrecy), AEAD only. TLS 1.3 suites
 * are all AEAD with forward secrecy by construction. */
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

const char *certs_last_error(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();

    if (e == 0)
        snprintf(buf, len, "unknown TLS error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

/* Picks http/1.1, else http/1.0, from the client's ALPN list. A client
 * that offers ALPN but neither of them (only h2, say) would speak a protocol
 * we do not: RFC 7301 section 3.2 says to end the handshake with the fatal
 * no_application_protocol alert rather than go on with something else. A
 * client without ALPN never gets here and is unaffected. OpenSSL has checked
 * the list's framing before calling us; the bounds check stays anyway. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    const unsigned char *h10 = NULL;
    unsigned i = 0;

    (void)ssl;
    (void)arg;
    while (i < inlen) {
        unsigned n = in[i];
        if (i + 1 + n > inlen)
            break;
        if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
        if (n == 8 && h10 == NULL && memcmp(in + i + 1, "http/1.0", 8) == 0)
            h10 = in + i + 1;
        i += 1 + n;
    }
    if (h10 != NULL) {
        *out = h10;
        *outlen = 8;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int check_key_perms(const char *key_file, char *err, size_t errlen)
{
    struct stat st;

    if (stat(key_file, &st) == -1) {
        snprintf(err, errlen, "%s: %s", key_file, strerror(errno));
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen, "%s: private key is accessible by group or others (mode %03o); "
                              "chmod 600 it",
                 key_file, (unsigned)(st.st_mode & 0777));
        return -1;
    }
    return 0;
}

static void common_policy(SSL_CTX *ctx)
{
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS);
    /* Our buffers move when compacted and writes may be partial. No
     * SSL_MODE_RELEASE_BUFFERS: proxy/io.c decides when an idle
     * connection gives its OpenSSL buffers back (SSL_free_buffers). */
    /* Read-ahead: one read() takes whole records (and more) instead of a
     * 5-byte header and then a body. OpenSSL then holds bytes the kernel no
     * longer has, so no edge will come for them: the proxy clears an
     * endpoint's readiness only on WANT_READ (the kernel was drained), and
     * wherever OpenSSL may have read without being asked to (a handshake
     * step, a pooled connection) it looks with SSL_has_pending first. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

/* Reads a PKCS#12 file with the passphrase on the first line of pass_file;
 * both hold secrets and must not be readable by group or others. */
static int load_p12(const char *p12_file, const char *pass_file, EVP_PKEY **key, X509 **cert,
                    STACK_OF(X509) **ca, char *err, size_t errlen)
{
    char pass[1024] = "";
    PKCS12 *p12 = NULL;
    FILE *f;
    int rc = -1;
    size_t n;

    if (check_key_perms(p12_file, err, errlen) == -1)
        return -1;
    if (pass_file != NULL) {
        if (check_key_perms(pass_file, err, errlen) == -1)
            return -1;
        f = fopen(pass_file, "r");
        if (f == NULL || fgets(pass, sizeof(pass), f) == NULL) {
            snprintf(err, errlen, "%s: cannot read the passphrase", pass_file);
            if (f)
                fclose(f);
            return -1;
        }
        fclose(f);
        n = strlen(pass);
        while (n > 0 && (pass[n - 1] == '\n' || pass[n - 1] == '\r'))
            pass[--n] = '\0';
    }
    f = fopen(p12_file, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", p12_file, strerror(errno));
        goto done;
    }
    p12 = d2i_PKCS12_fp(f, NULL);
    fclose(f);
    if (p12 == NULL || PKCS12_parse(p12, pass, key, cert, ca) != 1 || *key == NULL ||
        *cert == NULL) {
        snprintf(err, errlen, "%s: cannot read PKCS#12 (wrong passphrase, or no key and "
                              "certificate in it)",
                 p12_file);
        goto done;
    }
    rc = 0;
done:
    OPENSSL_cleanse(pass, sizeof(pass));
    PKCS12_free(p12);
    ERR_clear_error();
    return rc;
}

X509 *certs__read_leaf(const struct certs_source *src, char *err, size_t errlen)
{
    if (src->p12 != NULL) {
        EVP_PKEY *k = NULL;
        X509 *x = NULL;
        STACK_OF(X509) *ca = NULL;
        if (load_p12(src->p12, src->pass, &k, &x, &ca, err, errlen) == -1)
            return NULL;
        EVP_PKEY_free(k);
        sk_X509_pop_free(ca, X509_free);
        return x;
    }
    {
        FILE *f = fopen(src->cert, "r");
        X509 *x;
        if (f == NULL) {
            snprintf(err, errlen, "%s: %s", src->cert, strerror(errno));
            return NULL;
        }
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        if (x == NULL)
            snprintf(err, errlen, "%s: cannot read a PEM certificate", src->cert);
        return x;
    }
}

/* Loads one certificate chain and key into ctx after checking the key's
 * permissions, that the key matches, that the chain is ordered and that the
 * leaf is valid now. */
static int load_pair(SSL_CTX *ctx, const struct certs_source *src, char *err, size_t errlen)
{
    const char *cert_file = src->p12 ? src->p12 : src->cert;
    const char *key_file = src->p12 ? src->p12 : src->key;
    char e[256];
    X509 *leaf;

    if (src->p12 != NULL) {
        EVP_PKEY *k = NULL;
        X509 *x = NULL;
        STACK_OF(X509) *ca = NULL;
        int i, ok;
        if (load_p12(src->p12, src->pass, &k, &x, &ca, err, errlen) == -1)
            return -1;
        ok = SSL_CTX_use_certificate(ctx, x) == 1 && SSL_CTX_use_PrivateKey(ctx, k) == 1;
        SSL_CTX_clear_chain_certs(ctx);
        for (i = 0; ok && ca != NULL && i < sk_X509_num(ca); i++)
            ok = SSL_CTX_add1_chain_cert(ctx, sk_X509_value(ca, i)) == 1;
        EVP_PKEY_free(k);
        X509_free(x);
        sk_X509_pop_free(ca, X509_free);
        if (!ok) {
            snprintf(err, errlen, "%s: cannot use the certificate and key in it: %s", src->p12,
                     certs_last_error(e, sizeof(e)));
            return -1;
        }
    } else {
        if (access(cert_file, R_OK) == -1) {
            snprintf(err, errlen, "%s: %s", cert_file, strerror(errno));
            return -1;
        }
        if (check_key_perms(key_file, err, errlen) == -1)
            return -1;
        if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
            snprintf(err, errlen, "%s: cannot load certificate chain: %s", cert_file,
                     certs_last_error(e, sizeof(e)));
            return -1;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
            snprintf(err, errlen, "%s: cannot load private key (or it does not match %s): %s",
                     key_file, cert_file, certs_last_error(e, sizeof(e)));
            return -1;
        }
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "%s: private key does not match certificate %s", key_file,
                 cert_file);
        ERR_clear_error();
        return -1;
    }
    leaf = SSL_CTX_get0_certificate(ctx);
    {
        /* The chain file must go leaf first, then each issuer in turn:
         * clients that do not reorder would fail to build the path. */
        STACK_OF(X509) *chain = NULL;
        X509 *cur = leaf;
        int i;
        SSL_CTX_get0_chain_certs(ctx, &chain);
        for (i = 0; leaf != NULL && chain != NULL && i < sk_X509_num(chain); i++) {
            X509 *next = sk_X509_value(chain, i);
            if (X509_check_issued(next, cur) != X509_V_OK) {
                snprintf(err, errlen, "%s: chain is not in order (certificate %d does not issue "
                                      "the one before it; put the leaf first, then each issuer)",
                         cert_file, i + 2);
                return -1;
            }
            cur = next;
        }
    }
    if (leaf != NULL && X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
        snprintf(err, errlen, "%s: certificate has expired", cert_file);
        return -1;
    }
    if (leaf != NULL && X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
        snprintf(err, errlen, "%s: certificate is not valid yet", cert_file);
        return -1;
    }
    return 0;
}

int certs_ctx_use_pair(SSL_CTX *ctx, const struct certs_source *src, char *err, size_t errlen)
{
    return load_pair(ctx, src, err, errlen);
}

int certs_load_keypair(const struct certs_source *src, X509 **cert, EVP_PKEY **key, char *err,
                       size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    int rc = -1;

    if (ctx == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (load_pair(ctx, src, err, errlen) == 0) {
        *cert = SSL_CTX_get0_certificate(ctx);
        *key = SSL_CTX_get0_privatekey(ctx);
        if (*cert != NULL && *key != NULL && X509_up_ref(*cert) == 1 &&
            EVP_PKEY_up_ref(*key) == 1)
            rc = 0;
    }
    SSL_CTX_free(ctx);
    return rc;
}

int certs_pin_matches(SSL *ssl, const char *pin_hex)
{
    static const char hex[] = "0123456789abcdef";
    X509 *peer = SSL_get0_peer_certificate(ssl);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0, i;
    char got[2 * EVP_MAX_MD_SIZE + 1];

    if (peer == NULL || X509_digest(peer, EVP_sha256(), md, &len) != 1 || len != 32)
        return 0;
    for (i = 0; i < len; i++) {
        got[2 * i] = hex[md[i] >> 4];
        got[2 * i + 1] = hex[md[i] & 15];
    }
    got[2 * len] = '\0';
    return CRYPTO_memcmp(got, pin_hex, 64) == 0;
}

SSL_CTX *certs_server_ctx_new(const struct certs_source *src, size_t n, unsigned versions,
                              char *err, size_t errlen)
{
    SSL_CTX *ctx;
    char e[256];
    size_t i;
    int lo = versions & CERTS_TLS10   ? TLS1_VERSION
             : versions & CERTS_TLS11 ? TLS1_1_VERSION
             : versions & CERTS_TLS12 ? TLS1_2_VERSION
                                      : TLS1_3_VERSION;
    int hi = versions & CERTS_TLS13 ? TLS1_3_VERSION
             : versions & CERTS_TLS12 ? TLS1_2_VERSION
             : versions & CERTS_TLS11 ? TLS1_1_VERSION
                                      : TLS1_VERSION;

    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "SSL_CTX_new: %s", certs_last_error(e, sizeof(e)));
        return NULL;
    }
    common_policy(ctx);
    SSL_CTX_set_min_proto_version(ctx, lo);
    SSL_CTX_set_max_proto_version(ctx, hi);
    if (lo < TLS1_2_VERSION) {
        /* Asked for explicitly: the old versions need CBC suites and SHA-1
         * signatures, which OpenSSL 3 only allows at security level 0. */
        SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS ":ECDHE-ECDSA-AES128-SHA:"
                                                   "ECDHE-RSA-AES128-SHA:@SECLEVEL=0");
    }
    for (i = 0; i < n; i++)
        if (load_pair(ctx, &src[i], err, errlen) == -1)
            goto fail;
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    certs_tickets_attach(ctx);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"gatehouse", 9);
    SSL_CTX_sess_set_cache_size(ctx, 20000);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

long long certs_expiry_seconds(const struct certs_source *src)
{
    char e[256];
    X509 *x = certs__read_leaf(src, e, sizeof(e));
    int days = 0, secs = 0;

    if (x == NULL || ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) != 1) {
        X509_free(x);
        ERR_clear_error();
        return INT64_MIN;
    }
    X509_free(x);
    return (long long)days * 86400 + secs;
}

SSL_CTX *certs_client_ctx_new(const char *ca_file, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char e[256];

    if (ctx == NULL) {
        snprintf(err, errlen, "SSL_CTX_new: %s", certs_last_error(e, sizeof(e)));
        return NULL;
    }
    common_policy(ctx);
    /* Many real servers close without close_notify; our framing, not the
     * TLS shutdown, decides whether a response was complete. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (ca_file != NULL && access(ca_file, R_OK) == -1) {
        snprintf(err, errlen, "%s: %s", ca_file, strerror(errno));
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (ca_file != NULL && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        snprintf(err, errlen, "%s: cannot load CA bundle: %s", ca_file,
                 certs_last_error(e, sizeof(e)));
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* Sessions are kept by the proxy per real server, not in OpenSSL's
     * client cache, so resumption works across connections of a worker. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return ctx;
}

static int inet_pton_any(const char *s, unsigned char *buf)
{
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int certs_client_set_peer(SSL *ssl, const char *name)
{
    unsigned char ip[16];
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

    if (inet_pton_any(name, ip))
        return X509_VERIFY_PARAM_set1_ip_asc(vp, name) == 1 ? 0 : -1;
    if (SSL_set1_host(ssl, name) != 1)
        return -1;
    return SSL_set_tlsext_host_name(ssl, name) == 1 ? 0 : -1;
}
