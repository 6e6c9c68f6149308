/*
 * A certificate made elsewhere, brought onto the box: a PEM upload (the
 * chain and its private key, in any order, the key optionally encrypted)
 * or a PKCS#12 file. Both become the same two files a generated pair is:
 * the chain as PEM, leaf first then each issuer, and the key as PEM
 * without a passphrase, mode 0600 (the box must start unattended; the key
 * file's mode is what protects it, as for every other key here). The
 * passphrase is never stored.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "certs.h"

#define MAX_CHAIN 10

static int write_all(const char *path, STACK_OF(X509) *chain, EVP_PKEY *key, char *err,
                     size_t errlen)
{
    char tmp[1100];
    FILE *f;
    int fd, ok = 1, i;

    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, key ? 0600 : 0644);
    if (fd == -1 || (f = fdopen(fd, "w")) == NULL) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        if (fd != -1)
            close(fd);
        return -1;
    }
    if (key)
        ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
    for (i = 0; chain && ok && i < sk_X509_num(chain); i++)
        ok = PEM_write_X509(f, sk_X509_value(chain, i)) == 1;
    if (!ok || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        snprintf(err, errlen, "%s: write failed", tmp);
        fclose(f);
        unlink(tmp);
        return -1;
    }
    fclose(f);
    /* link() refuses to replace an existing file, where rename() would not */
    if (link(tmp, path) == -1) {
        snprintf(err, errlen, "%s: %s", path, errno == EEXIST ? "exists; not overwriting"
                                                             : strerror(errno));
        unlink(tmp);
        return -1;
    }
    unlink(tmp);
    return 0;
}

/* The certificates in order from the one matching key to the last issuer
 * given; every certificate given must be on that path. */
static STACK_OF(X509) *order(STACK_OF(X509) *all, EVP_PKEY *key, char *err, size_t errlen)
{
    STACK_OF(X509) *out = sk_X509_new_null();
    X509 *cur = NULL;
    int i, n = sk_X509_num(all);

    for (i = 0; i < n && cur == NULL; i++)
        if (X509_check_private_key(sk_X509_value(all, i), key) == 1)
            cur = sk_X509_value(all, i);
    if (cur == NULL) {
        snprintf(err, errlen, "no certificate in the upload matches its private key");
        goto bad;
    }
    while (cur != NULL) {
        X509 *next = NULL;
        sk_X509_push(out, cur);
        if (X509_check_issued(cur, cur) == X509_V_OK)
            break; /* self-signed: the end of the chain */
        for (i = 0; i < n && next == NULL; i++) {
            X509 *c = sk_X509_value(all, i);
            int j, seen = 0;
            for (j = 0; j < sk_X509_num(out); j++)
                seen |= X509_cmp(sk_X509_value(out, j), c) == 0;
            if (!seen && X509_check_issued(c, cur) == X509_V_OK)
                next = c;
        }
        cur = next;
    }
    if (sk_X509_num(out) != n) {
        snprintf(err, errlen, "%d of the %d certificates uploaded are not in the chain of the "
                 "one matching the key", n - sk_X509_num(out), n);
        goto bad;
    }
    return out;
bad:
    sk_X509_free(out);
    return NULL;
}

static int from_pem(const void *data, size_t len, const char *pass, STACK_OF(X509) *all,
                    EVP_PKEY **key, char *err, size_t errlen)
{
    BIO *b = BIO_new_mem_buf(data, (int)len);
    X509 *x;

    /* Each read skips blocks of other types, so the order of the upload
     * does not matter: certificates in one pass, the key in another. */
    while (b != NULL && sk_X509_num(all) <= MAX_CHAIN &&
           (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
        sk_X509_push(all, x);
    BIO_free(b);
    ERR_clear_error();
    b = BIO_new_mem_buf(data, (int)len);
    *key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)(uintptr_t)(pass ? pass : "")) : NULL;
    BIO_free(b);
    if (sk_X509_num(all) == 0) {
        snprintf(err, errlen, "no PEM certificate in the upload");
        return -1;
    }
    if (*key == NULL) {
        snprintf(err, errlen, "no private key in the upload, or its passphrase is wrong");
        return -1;
    }
    return 0;
}

static int from_pkcs12(const void *data, size_t len, const char *pass, STACK_OF(X509) *all,
                       EVP_PKEY **key, char *err, size_t errlen)
{
    const unsigned char *p = data;
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
    X509 *leaf = NULL;
    STACK_OF(X509) *ca = NULL;
    int rc = -1;

    if (p12 == NULL) {
        snprintf(err, errlen, "neither PEM nor a PKCS#12 file");
        return -1;
    }
    if (PKCS12_parse(p12, pass ? pass : "", key, &leaf, &ca) != 1 || *key == NULL ||
        leaf == NULL) {
        snprintf(err, errlen, "the PKCS#12 file does not open with that passphrase, or holds "
                 "no key and certificate");
        goto done;
    }
    sk_X509_push(all, leaf);
    leaf = NULL;
    while (ca != NULL && sk_X509_num(ca) > 0 && sk_X509_num(all) <= MAX_CHAIN)
        sk_X509_push(all, sk_X509_shift(ca));
    rc = 0;
done:
    X509_free(leaf);
    sk_X509_pop_free(ca, X509_free);
    PKCS12_free(p12);
    return rc;
}

int certs_import(const void *data, size_t len, const char *pass, const char *cert_out,
                 const char *key_out, char *err, size_t errlen)
{
    STACK_OF(X509) *all = sk_X509_new_null(), *chain = NULL;
    EVP_PKEY *key = NULL;
    int pem = len >= 11 && memmem(data, len, "-----BEGIN ", 11) != NULL, rc = -1;

    if (all == NULL || len == 0 || len > 512 * 1024) {
        snprintf(err, errlen, "an upload of 1 byte to 512 KiB is needed");
        goto done;
    }
    if ((pem ? from_pem : from_pkcs12)(data, len, pass, all, &key, err, errlen) == -1)
        goto done;
    if (sk_X509_num(all) > MAX_CHAIN) {
        snprintf(err, errlen, "more than %d certificates", MAX_CHAIN);
        goto done;
    }
    chain = order(all, key, err, errlen);
    if (chain == NULL)
        goto done;
    if (write_all(key_out, NULL, key, err, errlen) == -1)
        goto done;
    if (write_all(cert_out, chain, NULL, err, errlen) == -1) {
        unlink(key_out);
        goto done;
    }
    rc = 0;
done:
    ERR_clear_error();
    sk_X509_free(chain);
    sk_X509_pop_free(all, X509_free);
    EVP_PKEY_free(key);
    return rc;
}
