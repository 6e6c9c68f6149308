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

/* Where a certificate and its key come from: PEM files, or a PKCS#12 file
 * whose passphrase is the first line of pass_file. */
struct certs_source {
    const char *cert, *key; /* PEM chain and key, or NULL */
    const char *p12, *pass; /* PKCS#12 and passphrase file, or NULL */
};

/* tls_ctx.c */
/* TLS versions a listener offers: a bit per version. */
#define CERTS_TLS10 0x1
#define CERTS_TLS11 0x2
#define CERTS_TLS12 0x4
#define CERTS_TLS13 0x8

/* A server context holding one or more certificate/key pairs (one per key
 * type: an ECDSA and an RSA certificate for the same names, so OpenSSL
 * answers each client with what it supports). Each key file must not be
 * readable by group or others; each certificate must match its key and be
 * valid now. versions is a CERTS_TLS* mask. NULL with err naming the file. */
SSL_CTX *certs_server_ctx_new(const struct certs_source *src, size_t n, unsigned versions,
                              char *err, size_t errlen);
/* The names a certificate is picked by for a client's SNI: its SAN
 * dNSNames (lower case) and addresses, else its CN (san.c, read like
 * certs_san_names). A malloc'd array of malloc'd strings. -1 when it
 * cannot be read. */
int certs_names(const struct certs_source *src, char ***names, size_t *n, char *err,
                size_t errlen);
/* Seconds until the leaf certificate in cert_file expires (negative when it
 * has); INT64_MIN when it cannot be read. */
long long certs_expiry_seconds(const struct certs_source *src);
/* A client context verifying peers against ca_file (PEM bundle); ca_file
 * NULL gives a context for plain-text targets (never used for TLS). */
SSL_CTX *certs_client_ctx_new(const char *ca_file, char *err, size_t errlen);
/* Configures ssl (from a client context) to verify name, an IP literal or
 * DNS name, and to send it as SNI when it is a DNS name. */
int certs_client_set_peer(SSL *ssl, const char *name);
/* Adds a certificate chain and key to ctx (a client context showing a
 * certificate to real servers), with the same checks as server ones. */
int certs_ctx_use_pair(SSL_CTX *ctx, const struct certs_source *src, char *err, size_t errlen);
/* The leaf certificate and private key of a source, with every check a
 * listener's pair has: permissions, match, order, validity. Caller frees. */
int certs_load_keypair(const struct certs_source *src, X509 **cert, EVP_PKEY **key, char *err,
                       size_t errlen);
/* True when the peer's certificate has this SHA-256 fingerprint (64
 * lower-case hex digits). */
int certs_pin_matches(SSL *ssl, const char *pin_hex);
/* The last OpenSSL error as text, for logs. */
const char *certs_last_error(char *buf, size_t len);

/* ocsp.c */
struct certs_ocsp;
struct certs_ocsp *certs_ocsp_new(void);
/* Reads a DER OCSP response for the certificate of src; -1 with err. */
int certs_ocsp_add(struct certs_ocsp *o, const struct certs_source *src, const char *der_file,
                   char *err, size_t errlen);
/* Reads again each response file that changed since it was read (stat);
 * a response that fails its checks leaves the last good one in place.
 * 1 when one was replaced, -1 when a changed file was refused, 0 when
 * nothing changed; msg says which file. Safe beside handshakes. */
int certs_ocsp_refresh(struct certs_ocsp *o, char *msg, size_t msglen);
/* Staples, on ctx, the response of whichever certificate is chosen. */
void certs_ocsp_attach(SSL_CTX *ctx, struct certs_ocsp *o);
void certs_ocsp_free(struct certs_ocsp *o);

/* tickets.c */
#define CERTS_TICKET_ROTATE_S (12 * 3600)
/* Makes ctx issue and accept tickets under the process-wide rotating keys. */
void certs_tickets_attach(SSL_CTX *ctx);
/* Clears the ticket keys from memory (exit). */
void certs_tickets_wipe(void);

/* gen.c */
struct certs_req {
    const char *cn;   /* subject common name */
    const char *sans; /* "DNS:a.example.com,IP:10.0.0.1"; NULL: DNS:<cn> */
    int rsa_bits;     /* 0: ECDSA P-256; else 2048, 3072 or 4096 */
    int days;         /* validity */
};
/* Each writes PEM files through a temp name and refuses to overwrite;
 * keys are mode 0600. 0 or -1 with err naming the file. */
int certs_gen_ca(const char *cert_out, const char *key_out, const struct certs_req *r, char *err,
                 size_t errlen);
int certs_gen_server(const char *ca_cert, const char *ca_key, const char *cert_out,
                     const char *key_out, const struct certs_req *r, char *err, size_t errlen);
int certs_gen_selfsigned(const char *cert_out, const char *key_out, const struct certs_req *r,
                         char *err, size_t errlen);
int certs_gen_csr(const char *csr_out, const char *key_out, const struct certs_req *r, char *err,
                  size_t errlen);
/* san.c */
/* The names a client can verify the certificate of src against: its SAN
 * dNSNames, lower case, and its IP SANs as "IP:" and the address in text
 * form (inet_ntop); never the subject CN. A malloc'd array of malloc'd
 * strings (certs_san_names_free). -1 with err when it cannot be read. */
int certs_san_names(const struct certs_source *src, char ***names, size_t *n, char *err,
                    size_t errlen);
void certs_san_names_free(char **names, size_t n);
/* True when a certificate with these names covers host, a normalised name
 * (lower case, no port), "*.domain", or an address ("[v6]" in brackets):
 * a name or wildcard equal to it, a wildcard "*.d" for one label before
 * ".d", or an IP SAN equal to an address. */
int certs_san_covers(char *const *names, size_t n, const char *host);

/* import.c */
/* A certificate made elsewhere: PEM text holding a chain and its private
 * key (any order; the key may be encrypted with pass), or PKCS#12 bytes
 * opened with pass. Writes the chain (leaf first, each issuer after it)
 * to cert_out and the key, unencrypted, to key_out (0600); refuses to
 * overwrite, a key matching no certificate, and certificates outside the
 * leaf's chain. 0 or -1 with err. */
int certs_import(const void *data, size_t len, const char *pass, const char *cert_out,
                 const char *key_out, char *err, size_t errlen);
/* One line describing a certificate file: subject, SANs, issuer, key type,
 * not-after and days left (tab-separated). */
int certs_describe(const struct certs_source *src, char *out, size_t outlen);
/* Creates dir/ca.pem, ca.key, server.pem, server.key when missing: an
 * ECDSA P-256 CA and a server certificate for the given SANs
 * ("DNS:localhost,IP:127.0.0.1"), signed by it. Keys are written 0600. */
int certs_ensure_default(const char *dir, const char *sans, char *err, size_t errlen);

#endif
