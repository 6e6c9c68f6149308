/*
 * Certificate generation for the embedded default: a private CA and a
 * server certificate it signs, ECDSA P-256. Files are written to a temp
 * name, fsynced and renamed, keys with mode 0600, so a crash never leaves a
 * half-written key behind.
 */
#include "certs.h"

#include "certs_int.h"

#include <arpa/inet.h>
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
        X509 *iss = issuer ? issuer : x; /* self-signed: its own issuer */
        if (add_ext(iss, x, NID_basic_constraints, "critical,CA:FALSE") == -1 ||
            add_ext(iss, x, NID_key_usage, "critical,digitalSignature,keyEncipherment") == -1 ||
            add_ext(iss, x, NID_ext_key_usage, "serverAuth,clientAuth") == -1 ||
            add_ext(iss, x, NID_subject_alt_name, sans) == -1 ||
            (issuer != NULL && add_ext(iss, x, NID_authority_key_identifier, "keyid") == -1))
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
static int write_pem_path(const char *path, EVP_PKEY *key, X509 *cert, X509_REQ *req, char *err,
                          size_t errlen);

static int write_pem(const char *dir, const char *file, EVP_PKEY *key, X509 *cert, char *err,
                     size_t errlen)
{
    char path[1024];

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    return write_pem_path(path, key, cert, NULL, err, errlen);
}

static int write_pem_path(const char *path, EVP_PKEY *key, X509 *cert, X509_REQ *req, char *err,
                          size_t errlen)
{
    char tmp[1100];
    FILE *f;
    int fd, ok;

    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, key ? 0600 : 0644);
    if (fd == -1 || (f = fdopen(fd, "w")) == NULL) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        if (fd != -1)
            close(fd);
        return -1;
    }
    ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
         : req ? PEM_write_X509_REQ(f, req)
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

static EVP_PKEY *new_key(const struct certs_req *r)
{
    return r->rsa_bits ? EVP_RSA_gen((unsigned)r->rsa_bits) : EVP_EC_gen("P-256");
}

static int refuse_existing(const char *a, const char *b, char *err, size_t errlen)
{
    if (access(a, F_OK) == 0 || access(b, F_OK) == 0) {
        snprintf(err, errlen, "%s: exists; not overwriting", access(a, F_OK) == 0 ? a : b);
        return -1;
    }
    return 0;
}

/* Every item of a SAN list names its kind: a plain name is the most
 * common mistake, and OpenSSL's own refusal does not say so. */
static int san_list_ok(const char *sans, char *err, size_t errlen)
{
    const char *p = sans;

    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        const char *q = p;
        while (q < p + n && *q == ' ')
            q++;
        if (!((strncmp(q, "DNS:", 4) == 0 && (size_t)(p + n - q) > 4) ||
              (strncmp(q, "IP:", 3) == 0 && (size_t)(p + n - q) > 3))) {
            char item[256], b[16];
            snprintf(item, sizeof(item), "%.*s", (int)(p + n - q), q);
            snprintf(err, errlen, "SAN '%s': say what it is, %s:%s (a list is items such as "
                     "DNS:meet.example.com,IP:192.0.2.10)", item,
                     inet_pton(AF_INET, item, b) == 1 || inet_pton(AF_INET6, item, b) == 1
                         ? "IP" : "DNS", item);
            return -1;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

static int check_req(const struct certs_req *r, char *err, size_t errlen)
{
    if (r->cn == NULL || r->cn[0] == '\0') {
        snprintf(err, errlen, "a common name (--cn) is required");
        return -1;
    }
    if (r->rsa_bits && r->rsa_bits != 2048 && r->rsa_bits != 3072 && r->rsa_bits != 4096) {
        snprintf(err, errlen, "RSA keys are 2048, 3072 or 4096 bits");
        return -1;
    }
    if (r->days < 1 || r->days > 3650) {
        snprintf(err, errlen, "validity must be 1 to 3650 days");
        return -1;
    }
    if (r->sans != NULL && san_list_ok(r->sans, err, errlen) == -1)
        return -1;
    return 0;
}

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k;

    if (f == NULL)
        return NULL;
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

static int gen_signed(const char *ca_cert, const char *ca_key, const char *cert_out,
                      const char *key_out, const struct certs_req *r, int is_ca, char *err,
                      size_t errlen)
{
    EVP_PKEY *key = NULL, *cakey = NULL;
    X509 *ca = NULL, *crt = NULL;
    char sans[1024];
    int rc = -1;

    if (check_req(r, err, errlen) == -1 || refuse_existing(cert_out, key_out, err, errlen) == -1)
        return -1;
    snprintf(sans, sizeof(sans), "%s", r->sans ? r->sans : "");
    if (r->sans == NULL)
        snprintf(sans, sizeof(sans), "DNS:%s", r->cn);
    if (ca_cert != NULL) {
        struct certs_source src = {ca_cert, NULL, NULL, NULL};
        ca = certs__read_leaf(&src, err, errlen);
        cakey = read_key(ca_key);
        if (ca == NULL || cakey == NULL || X509_check_private_key(ca, cakey) != 1) {
            snprintf(err, errlen, "%s / %s: cannot read a matching CA certificate and key",
                     ca_cert, ca_key);
            goto done;
        }
    }
    key = new_key(r);
    if (key == NULL) {
        snprintf(err, errlen, "key generation failed");
        goto done;
    }
    crt = make_cert(key, r->cn, ca, cakey, is_ca, is_ca ? NULL : sans, r->days);
    if (crt == NULL) {
        snprintf(err, errlen, "certificate generation failed (check the SAN syntax: %s)", sans);
        goto done;
    }
    if (write_pem_path(key_out, key, NULL, NULL, err, errlen) == -1 ||
        write_pem_path(cert_out, NULL, crt, NULL, err, errlen) == -1)
        goto done;
    rc = 0;
done:
    ERR_clear_error();
    X509_free(ca);
    X509_free(crt);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(key);
    return rc;
}

int certs_gen_ca(const char *cert_out, const char *key_out, const struct certs_req *r, char *err,
                 size_t errlen)
{
    return gen_signed(NULL, NULL, cert_out, key_out, r, 1, err, errlen);
}

int certs_gen_server(const char *ca_cert, const char *ca_key, const char *cert_out,
                     const char *key_out, const struct certs_req *r, char *err, size_t errlen)
{
    return gen_signed(ca_cert, ca_key, cert_out, key_out, r, 0, err, errlen);
}

int certs_gen_selfsigned(const char *cert_out, const char *key_out, const struct certs_req *r,
                         char *err, size_t errlen)
{
    return gen_signed(NULL, NULL, cert_out, key_out, r, 0, err, errlen);
}

int certs_gen_csr(const char *csr_out, const char *key_out, const struct certs_req *r, char *err,
                  size_t errlen)
{
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_EXTENSION *ex;
    char sans[1024];
    int rc = -1;

    if (check_req(r, err, errlen) == -1 || refuse_existing(csr_out, key_out, err, errlen) == -1)
        return -1;
    if (r->sans)
        snprintf(sans, sizeof(sans), "%s", r->sans);
    else
        snprintf(sans, sizeof(sans), "DNS:%s", r->cn);
    key = new_key(r);
    req = X509_REQ_new();
    if (key == NULL || req == NULL)
        goto fail;
    X509_REQ_set_version(req, 0);
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                               (const unsigned char *)r->cn, -1, -1, 0);
    X509_REQ_set_pubkey(req, key);
    exts = sk_X509_EXTENSION_new_null();
    ex = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, sans);
    if (exts == NULL || ex == NULL) {
        snprintf(err, errlen, "bad SAN list: %s", sans);
        X509_EXTENSION_free(ex);
        goto done;
    }
    sk_X509_EXTENSION_push(exts, ex);
    if (X509_REQ_add_extensions(req, exts) != 1 || X509_REQ_sign(req, key, EVP_sha256()) == 0)
        goto fail;
    if (write_pem_path(key_out, key, NULL, NULL, err, errlen) == -1 ||
        write_pem_path(csr_out, NULL, NULL, req, err, errlen) == -1)
        goto done;
    rc = 0;
    goto done;
fail:
    snprintf(err, errlen, "CSR generation failed");
done:
    ERR_clear_error();
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return rc;
}

int certs_describe(const struct certs_source *src, char *out, size_t outlen)
{
    char e[256];
    X509 *x = certs__read_leaf(src, e, sizeof(e));
    char subj[256], iss[256], sans[512], keyt[64], na[64];
    GENERAL_NAMES *g;
    EVP_PKEY *k;
    BIO *b;
    int i, days = 0, secs = 0;
    size_t sl = 0;

    if (x == NULL) {
        snprintf(out, outlen, "unreadable: %s", e);
        ERR_clear_error();
        return -1;
    }
    X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
    X509_NAME_oneline(X509_get_issuer_name(x), iss, sizeof(iss));
    sans[0] = '\0';
    g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (i = 0; g != NULL && i < sk_GENERAL_NAME_num(g); i++) {
        const GENERAL_NAME *n = sk_GENERAL_NAME_value(g, i);
        if (n->type == GEN_DNS && sl < sizeof(sans) - 2)
            sl += (size_t)snprintf(sans + sl, sizeof(sans) - sl, "%sDNS:%s", sl ? "," : "",
                                   (const char *)ASN1_STRING_get0_data(n->d.dNSName));
        else if (n->type == GEN_IPADD && n->d.iPAddress->length == 4 && sl < sizeof(sans) - 2) {
            const unsigned char *a = ASN1_STRING_get0_data(n->d.iPAddress);
            sl += (size_t)snprintf(sans + sl, sizeof(sans) - sl, "%sIP:%u.%u.%u.%u",
                                   sl ? "," : "", a[0], a[1], a[2], a[3]);
        }
    }
    GENERAL_NAMES_free(g);
    k = X509_get0_pubkey(x);
    if (k != NULL && EVP_PKEY_get_base_id(k) == EVP_PKEY_EC)
        snprintf(keyt, sizeof(keyt), "ECDSA %d", EVP_PKEY_get_bits(k));
    else if (k != NULL && EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA)
        snprintf(keyt, sizeof(keyt), "RSA %d", EVP_PKEY_get_bits(k));
    else
        snprintf(keyt, sizeof(keyt), "other");
    b = BIO_new(BIO_s_mem());
    na[0] = '\0';
    if (b != NULL && ASN1_TIME_print(b, X509_get0_notAfter(x)) == 1) {
        int n = BIO_read(b, na, sizeof(na) - 1);
        na[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
    ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x));
    snprintf(out, outlen, "%s\t%s\t%s\t%s\t%s\t%d", subj, sans[0] ? sans : "-", iss, keyt, na,
             days);
    X509_free(x);
    ERR_clear_error();
    return 0;
}
