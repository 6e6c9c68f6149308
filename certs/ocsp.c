/*
 * OCSP stapling from response files. An administrator (or a cron job with
 * `openssl ocsp`) keeps a DER response per certificate on disk; it is read
 * when the configuration is built, and read again whenever the file
 * changes (certs_ocsp_refresh, called by the proxy every second), so a
 * renewed response is stapled without a reload. A response past its
 * nextUpdate is not stapled: a stale one is worse than none to a client
 * that checks. The status callback staples the response of the
 * certificate OpenSSL chose (an ECDSA and an RSA certificate can share a
 * context).
 */
#include "certs.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/ocsp.h>

#include "certs_int.h"

#define MAX_RESP 8
#define MAX_DER (256 * 1024)

struct certs_ocsp {
    pthread_mutex_t mu; /* der, len and next_update change under it */
    size_t n;
    X509 *leaf[MAX_RESP];          /* owned */
    unsigned char *der[MAX_RESP];  /* owned */
    long len[MAX_RESP];
    time_t next_update[MAX_RESP];  /* 0: the response names none */
    char *file[MAX_RESP];          /* owned */
    struct stat seen[MAX_RESP];    /* of the file last read */
};

struct certs_ocsp *certs_ocsp_new(void)
{
    struct certs_ocsp *o = calloc(1, sizeof(*o));

    if (o == NULL)
        abort();
    pthread_mutex_init(&o->mu, NULL);
    return o;
}

/* The nextUpdate of the first single response, 0 when absent. */
static time_t next_update_of(OCSP_RESPONSE *resp)
{
    OCSP_BASICRESP *bs = OCSP_response_get1_basic(resp);
    OCSP_SINGLERESP *one = bs ? OCSP_resp_get0(bs, 0) : NULL;
    ASN1_GENERALIZEDTIME *this_upd = NULL, *next_upd = NULL, *rev = NULL;
    struct tm tm;
    time_t t = 0;
    int reason;

    if (one != NULL && OCSP_single_get0_status(one, &reason, &rev, &this_upd, &next_upd) != -1 &&
        next_upd != NULL && ASN1_TIME_to_tm(next_upd, &tm) == 1)
        t = timegm(&tm);
    OCSP_BASICRESP_free(bs);
    return t;
}

/* Reads and checks one response file; 0 with *der (malloc'd), -1 with err. */
static int read_response(const char *file, unsigned char **der, long *len, time_t *next,
                         struct stat *st, char *err, size_t errlen)
{
    const unsigned char *p;
    OCSP_RESPONSE *resp;
    unsigned char *buf;
    FILE *f;
    long n;

    f = fopen(file, "rb");
    if (f == NULL || fstat(fileno(f), st) == -1) {
        if (f != NULL)
            fclose(f);
        snprintf(err, errlen, "%s: cannot open the OCSP response", file);
        return -1;
    }
    buf = malloc(MAX_DER);
    if (buf == NULL)
        abort();
    n = (long)fread(buf, 1, MAX_DER, f);
    fclose(f);
    p = buf;
    resp = n > 0 ? d2i_OCSP_RESPONSE(NULL, &p, n) : NULL;
    if (resp == NULL || OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        snprintf(err, errlen, "%s: not a successful DER OCSP response", file);
        OCSP_RESPONSE_free(resp);
        free(buf);
        return -1;
    }
    *next = next_update_of(resp);
    OCSP_RESPONSE_free(resp);
    *der = buf;
    *len = n;
    return 0;
}

int certs_ocsp_add(struct certs_ocsp *o, const struct certs_source *src, const char *der_file,
                   char *err, size_t errlen)
{
    if (o->n == MAX_RESP) {
        snprintf(err, errlen, "%s: too many OCSP responses for one name", der_file);
        return -1;
    }
    if (read_response(der_file, &o->der[o->n], &o->len[o->n], &o->next_update[o->n],
                      &o->seen[o->n], err, errlen) == -1)
        return -1;
    o->leaf[o->n] = certs__read_leaf(src, err, errlen);
    if (o->leaf[o->n] == NULL) {
        free(o->der[o->n]);
        o->der[o->n] = NULL;
        return -1;
    }
    o->file[o->n] = strdup(der_file);
    if (o->file[o->n] == NULL)
        abort();
    o->n++;
    return 0;
}

int certs_ocsp_refresh(struct certs_ocsp *o, char *msg, size_t msglen)
{
    int rc = 0;
    size_t i;

    for (i = 0; o != NULL && i < o->n; i++) {
        struct stat st;
        unsigned char *der;
        long len;
        time_t next;
        if (stat(o->file[i], &st) == -1 ||
            (st.st_ino == o->seen[i].st_ino && st.st_size == o->seen[i].st_size &&
             st.st_mtim.tv_sec == o->seen[i].st_mtim.tv_sec &&
             st.st_mtim.tv_nsec == o->seen[i].st_mtim.tv_nsec))
            continue;
        if (read_response(o->file[i], &der, &len, &next, &st, msg, msglen) == -1) {
            o->seen[i] = st; /* said once; the last good response stays */
            rc = -1;
            continue;
        }
        pthread_mutex_lock(&o->mu);
        free(o->der[i]);
        o->der[i] = der;
        o->len[i] = len;
        o->next_update[i] = next;
        pthread_mutex_unlock(&o->mu);
        o->seen[i] = st;
        if (rc == 0) {
            snprintf(msg, msglen, "%s: OCSP response read again", o->file[i]);
            rc = 1;
        }
    }
    return rc;
}

static int status_cb(SSL *ssl, void *arg)
{
    struct certs_ocsp *o = arg;
    X509 *chosen = SSL_get_certificate(ssl);
    size_t i;

    for (i = 0; o != NULL && chosen != NULL && i < o->n; i++)
        if (X509_cmp(chosen, o->leaf[i]) == 0) {
            unsigned char *copy = NULL;
            long len = 0;
            pthread_mutex_lock(&o->mu);
            if (o->next_update[i] == 0 || o->next_update[i] > time(NULL)) {
                copy = OPENSSL_memdup(o->der[i], (size_t)o->len[i]);
                len = o->len[i];
            }
            pthread_mutex_unlock(&o->mu);
            if (copy == NULL)
                return SSL_TLSEXT_ERR_NOACK; /* expired: staple nothing */
            SSL_set_tlsext_status_ocsp_resp(ssl, copy, len);
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
        free(o->file[i]);
    }
    pthread_mutex_destroy(&o->mu);
    free(o);
}
