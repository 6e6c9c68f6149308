/*
 * SSL_CTX construction with the appliance's TLS policy. One context per
 * listener (shared by every worker: SSL_CTX is thread-safe for SSL_new) and
 * one per re-encrypting service for its real servers.
 */
#include "certs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
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

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    static const unsigned char h11[] = "\x08http/1.1";
    unsigned i = 0;

    (void)ssl;
    (void)arg;
    while (i < inlen) {
        unsigned n = in[i];
        if (i + 1 + n > inlen)
            break;
        if (n == 8 && memcmp(in + i + 1, h11 + 1, 8) == 0) {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    /* A client offering only h2 gets no ALPN and speaks HTTP/1.1 to us. */
    return SSL_TLSEXT_ERR_NOACK;
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
    /* Our buffers move when compacted and writes may be partial. Idle
     * connections give their OpenSSL buffers back. */
    /* No read-ahead: with it OpenSSL can pull the next record into its own
     * buffer while finishing a handshake, leaving a readable connection that
     * an edge-triggered loop never hears about again. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
}

SSL_CTX *certs_server_ctx_new(const char *cert_file, const char *key_file, char *err,
                              size_t errlen)
{
    SSL_CTX *ctx;
    char e[256];

    if (access(cert_file, R_OK) == -1) {
        snprintf(err, errlen, "%s: %s", cert_file, strerror(errno));
        return NULL;
    }
    if (check_key_perms(key_file, err, errlen) == -1)
        return NULL;
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "SSL_CTX_new: %s", certs_last_error(e, sizeof(e)));
        return NULL;
    }
    common_policy(ctx);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        snprintf(err, errlen, "%s: cannot load certificate chain: %s", cert_file,
                 certs_last_error(e, sizeof(e)));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "%s: cannot load private key: %s", key_file,
                 certs_last_error(e, sizeof(e)));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "%s: private key does not match certificate %s", key_file,
                 cert_file);
        ERR_clear_error();
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"gatehouse", 9);
    SSL_CTX_sess_set_cache_size(ctx, 20000);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
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
