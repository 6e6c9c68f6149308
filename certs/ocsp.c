/*
 * OCSP stapling from response files. An administrator (or a cron job with
 * `openssl ocsp`) keeps a DER response per certificate on disk; it is read
 * when the configuration is built, so SIGHUP picks up a fresh one. The
 * status callback staples the response of the certificate OpenSSL chose
 * (an ECDSA and an RSA certificate can share a context).
 */
#include "certs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/ocsp.h>

#include "certs_int.h"

#define MAX_RESP 8
#define MAX_DER (256 * 1024)

struct certs_ocsp {
    size_t n;
    X509 *leaf[MAX_RESP];          /* owned */
    unsigned char *der[MAX_RESP];  /* owned */
    long len[MAX_RESP];
};

struct certs_ocsp *certs_ocsp_new(void)
{
    struct certs_ocsp *o = calloc(1, sizeof(*o));

    if (o == NULL)
        abort();
    return o;
}

int certs_ocsp_add(struct certs_ocsp *o, const struct certs_source *src, const char *der_file,
                   char *err, size_t errlen)
{
    const unsigned char *p;
    OCSP_RESPONSE *resp;
    unsigned char *buf;
    FILE *f;
    long n;

    if (o->n == MAX_RESP) {
        snprintf(err, errlen, "%s: too many OCSP responses for one name", der_file);
        return -1;
    }
    f = fopen(der_file, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open the OCSP response", der_file);
        return -1;
    }
    buf = malloc(MAX_DER);
    if (buf == NULL)
        abort();
    n = (long)fread(buf, 1, MAX_DER, f);
    fclose(f);
    p = buf;
    resp = n > 0 ? d2i_OCSP_RESPONSE(NULL, &p, n) : NULL;
    if (resp == NULL ||
        OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        snprintf(err, errlen, "%s: not a successful DER OCSP response", der_file);
        OCSP_RESPONSE_free(resp);
        free(buf);
        return -1;
    }
    OCSP_RESPONSE_free(resp);
    o->leaf[o->n] = certs__read_leaf(src, err, errlen);
    if (o->leaf[o->n] == NULL) {
        free(buf);
        return -1;
    }
    o->der[o->n] = buf;
    o->len[o->n++] = n;
    return 0;
}

static int status_cb(SSL *ssl, void *arg)
{
    const struct certs_ocsp *o = arg;
    X509 *chosen = SSL_get_certificate(ssl);
    size_t i;

    for (i = 0; o != NULL && chosen != NULL && i < o->n; i++)
        if (X509_cmp(chosen, o->leaf[i]) == 0) {
            unsigned char *copy = OPENSSL_memdup(o->der[i], (size_t)o->len[i]);
            if (copy != NULL)
                SSL_set_tlsext_status_ocsp_resp(ssl, copy, o->len[i]);
            return SSL_TLSEXT_ERR_OK;
        }
    return SSL_TLSEXT_ERR_NOACK;
}

void certs_ocsp_attach(SSL_CTX *ctx, struct certs_ocsp *o)
{
    SSL_CTX_set_tlsext_status_cb(ctx, status_cb);
    SSL_CTX_set_tlsext_status_arg(ctx, o);
}

void certs_ocsp_free(struct certs_ocsp *o)
{
    size_t i;

    if (o == NULL)
        return;
    for (i = 0; i < o->n; i++) {
        X509_free(o->leaf[i]);
        free(o->der[i]);
    }
    free(o);
}
