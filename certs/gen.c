/*
 * Certificate generation for the embedded default: a private CA and a
 * server certificate it signs, ECDSA P-256. Files are written to a temp
 * name, fsynced and renamed, keys with mode 0600, so a crash never leaves a
 * half-written key behind.
 */
#include "certs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

static int add_ext(X509 *issuer, X509 *cert, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ex;
    int ok;

    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    ex = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (ex == NULL)
        return -1;
    ok = X509_add_ext(cert, ex, -1);
    X509_EXTENSION_free(ex);
    return ok == 1 ? 0 : -1;
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       int is_ca, const char *sans, long days)
{
    X509 *x = X509_new();
    X509_NAME *name;
    unsigned char serial[16];
    BIGNUM *bn = NULL;

    if (x == NULL)
        return NULL;
    X509_set_version(x, 2);
    if (RAND_bytes(serial, sizeof(serial)) != 1)
        goto fail;
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
        goto fail;
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), days * 86400L);
    X509_set_pubkey(x, key);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"gatehouse", -1,
                               -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    if (is_ca) {
        if (add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") == -1 ||
            add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") == -1 ||
            add_ext(x, x, NID_subject_key_identifier, "hash") == -1)
            goto fail;
    } else {
        if (add_ext(issuer, x, NID_basic_constraints, "critical,CA:FALSE") == -1 ||
            add_ext(issuer, x, NID_key_usage, "critical,digitalSignature") == -1 ||
            add_ext(issuer, x, NID_ext_key_usage, "serverAuth,clientAuth") == -1 ||
            add_ext(issuer, x, NID_subject_alt_name, sans) == -1 ||
            add_ext(issuer, x, NID_authority_key_identifier, "keyid") == -1)
            goto fail;
    }
    if (X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) == 0)
        goto fail;
    BN_free(bn);
    return x;
fail:
    BN_free(bn);
    X509_free(x);
    return NULL;
}

/* Writes through a temp file and renames it into place. */
static int write_pem(const char *dir, const char *file, EVP_PKEY *key, X509 *cert, char *err,
                     size_t errlen)
{
    char path[1024], tmp[1100];
    FILE *f;
    int fd, ok;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, key ? 0600 : 0644);
    if (fd == -1 || (f = fdopen(fd, "w")) == NULL) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        if (fd != -1)
            close(fd);
        return -1;
    }
    ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
             : PEM_write_X509(f, cert);
    if (ok != 1 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        snprintf(err, errlen, "%s: write failed", tmp);
        fclose(f);
        unlink(tmp);
        return -1;
    }
    fclose(f);
    if (rename(tmp, path) == -1) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int exists(const char *dir, const char *file)
{
    char path[1024];

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    return access(path, R_OK) == 0;
}

int certs_ensure_default(const char *dir, const char *sans, char *err, size_t errlen)
{
    EVP_PKEY *cakey = NULL, *key = NULL;
    X509 *ca = NULL, *crt = NULL;
    int rc = -1, dfd;

    if (exists(dir, "ca.pem") && exists(dir, "ca.key") && exists(dir, "server.pem") &&
        exists(dir, "server.key"))
        return 0;
    if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    cakey = EVP_EC_gen("P-256");
    key = EVP_EC_gen("P-256");
    if (cakey == NULL || key == NULL) {
        snprintf(err, errlen, "key generation failed");
        goto done;
    }
    ca = make_cert(cakey, "gatehouse throwaway CA", NULL, NULL, 1, NULL, 3650);
    crt = ca ? make_cert(key, "localhost", ca, cakey, 0, sans, 825) : NULL;
    if (ca == NULL || crt == NULL) {
        snprintf(err, errlen, "certificate generation failed");
        goto done;
    }
    if (write_pem(dir, "ca.key", cakey, NULL, err, errlen) == -1 ||
        write_pem(dir, "ca.pem", NULL, ca, err, errlen) == -1 ||
        write_pem(dir, "server.key", key, NULL, err, errlen) == -1 ||
        write_pem(dir, "server.pem", NULL, crt, err, errlen) == -1)
        goto done;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd != -1) {
        fsync(dfd);
        close(dfd);
    }
    rc = 0;
done:
    ERR_clear_error();
    X509_free(ca);
    X509_free(crt);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(key);
    return rc;
}
