/*
 * certs — TLS contexts and certificates. Builds the SSL_CTX a listener
 * serves with (policy: TLS 1.2 and 1.3, AEAD ciphers with forward secrecy,
 * server preference, ALPN http/1.1, session cache and tickets) and the one
 * used to verify real servers; generates the throwaway CA and server
 * certificates of the embedded default. Messages name the file at fault.
 */
#ifndef GH_CERTS_CERTS_H
#define GH_CERTS_CERTS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* tls_ctx.c */
/* A server context from a PEM chain and key. The key file must not be
 * readable by group or others. NULL with err set on failure. */
SSL_CTX *certs_server_ctx_new(const char *cert_file, const char *key_file, char *err,
                              size_t errlen);
/* A client context verifying peers against ca_file (PEM bundle); ca_file
 * NULL gives a context for plain-text targets (never used for TLS). */
SSL_CTX *certs_client_ctx_new(const char *ca_file, char *err, size_t errlen);
/* Configures ssl (from a client context) to verify name, an IP literal or
 * DNS name, and to send it as SNI when it is a DNS name. */
int certs_client_set_peer(SSL *ssl, const char *name);
/* The last OpenSSL error as text, for logs. */
const char *certs_last_error(char *buf, size_t len);

/* gen.c */
/* Creates dir/ca.pem, ca.key, server.pem, server.key when missing: an
 * ECDSA P-256 CA and a server certificate for the given SANs
 * ("DNS:localhost,IP:127.0.0.1"), signed by it. Keys are written 0600. */
int certs_ensure_default(const char *dir, const char *sans, char *err, size_t errlen);

#endif
