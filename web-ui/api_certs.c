/*
 * Certificates from the admin application (admins). Keys are made here and
 * never leave the box: no answer ever carries one.
 *
 *   POST /api/v1/certificates/selfsigned   name, cn, sans, rsa (0 = ECDSA P-256), days
 *   POST /api/v1/certificates/csr          name, cn, sans, rsa -> the CSR (PEM) to send to a CA
 *   POST /api/v1/certificates/<name>/issued  body: the CA's chain (PEM), leaf first
 *   POST /api/v1/certificates/<name>/import  body: PEM (chain and key, any order) or
 *                                            PKCS#12; X-Passphrase: the key's or the file's
 *
 * Files go to state-dir/admin/certs/<name>.{key,csr,pem}; self-signed and
 * issued certificates are added as a `certificate` block (validated: the
 * key must match, the chain be in order and valid now), written atomically
 * and reloaded, all with If-Match like every change.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../certs/certs.h"
#include "../common/common.h"
#include "webui_int.h"

static int valid_name(const char *n)
{
    size_t i, len = strlen(n);

    if (len == 0 || len > 60)
        return 0;
    for (i = 0; i < len; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '-' ||
              n[i] == '_'))
            return 0;
    return 1;
}

static void dir_of(char *out, size_t len)
{
    snprintf(out, len, "%s/../certs", webui__history_dir());
}

struct cert_block {
    const char *name, *cert, *key;
};

static char *cert_transform(const char *text, size_t len, void *ctx, unsigned *status, char *err,
                            size_t errlen)
{
    const struct cert_block *cb = ctx;
    struct gh_sbuf nt = {NULL, 0, 0};

    (void)status;
    (void)err;
    (void)errlen;
    gh_sbuf_printf(&nt, "%.*s%s\ncertificate %s {\n    cert \"%s\"\n    key \"%s\"\n}\n", (int)len,
                   text, len && text[len - 1] != '\n' ? "\n" : "", cb->name, cb->cert, cb->key);
    return nt.p;
}

/* Appends a certificate block for name and commits it (If-Match checked). */
static enum MHD_Result add_block(struct MHD_Connection *conn, const struct webui_session *s,
                                 const char *name, const char *cert, const char *key,
                                 int *committed)
{
    struct cert_block cb = {name, cert, key};
    struct webui_change ch = {0};
    enum MHD_Result ret;

    ch.action = "certificate-add";
    ch.object = name;
    ch.transform = cert_transform;
    ch.ctx = &cb;
    ch.ok_status = 201;
    ret = webui__apply(conn, s, &ch);
    *committed = ch.committed;
    return ret;
}

static int req_from(const char *body, size_t blen, struct certs_req *r, char **cn, char **sans,
                    char *err, size_t errlen)
{
    char *rsa = gh_form_get(body, blen, "rsa"), *days = gh_form_get(body, blen, "days");
    long v;

    memset(r, 0, sizeof(*r));
    r->days = 825;
    *cn = gh_form_get(body, blen, "cn");
    *sans = gh_form_get(body, blen, "sans");
    if (*cn == NULL || **cn == '\0') {
        snprintf(err, errlen, "cn (the common name) is needed");
        goto bad;
    }
    if (rsa && *rsa) {
        if (gh_parse_long(rsa, 0, 4096, &v) == -1 ||
            (v != 0 && v != 2048 && v != 3072 && v != 4096)) {
            snprintf(err, errlen, "rsa: 0 (ECDSA P-256), 2048, 3072 or 4096");
            goto bad;
        }
        r->rsa_bits = (int)v;
    }
    if (days && *days) {
        if (gh_parse_long(days, 1, 3650, &v) == -1) {
            snprintf(err, errlen, "days: 1 to 3650");
            goto bad;
        }
        r->days = (int)v;
    }
    r->cn = *cn;
    r->sans = *sans && **sans ? *sans : NULL;
    free(rsa);
    free(days);
    return 0;
bad:
    free(rsa);
    free(days);
    return -1;
}

static enum MHD_Result generate(struct MHD_Connection *conn, const struct webui_session *s,
                                int csr, const char *body, size_t blen)
{
    char *name = gh_form_get(body, blen, "name"), *cn = NULL, *sans = NULL;
    char dir[1300], cert[1400], key[1400], err[1024];
    struct certs_req r;
    enum MHD_Result ret;
    int committed = 0;

    if (name == NULL || !valid_name(name)) {
        ret = webui__json(conn, 422, "error", "name: 1-60 of a-z 0-9 - _");
        goto done;
    }
    if (req_from(body, blen, &r, &cn, &sans, err, sizeof(err)) == -1) {
        ret = webui__json(conn, 422, "error", err);
        goto done;
    }
    dir_of(dir, sizeof(dir));
    if (gh_mkdir_p(dir, 0700) == -1) {
        snprintf(err, sizeof(err), "%.900s: %s", dir, strerror(errno));
        ret = webui__json(conn, 500, "error", err);
        goto done;
    }
    snprintf(cert, sizeof(cert), "%s/%s.%s", dir, name, csr ? "csr" : "pem");
    snprintf(key, sizeof(key), "%s/%s.key", dir, name);
    if ((csr ? certs_gen_csr(cert, key, &r, err, sizeof(err))
             : certs_gen_selfsigned(cert, key, &r, err, sizeof(err))) == -1) {
        ret = webui__json(conn, 422, "error", err); /* e.g. the files exist already */
        goto done;
    }
    if (csr) {
        size_t len = 0;
        char *pem = webui__read_file(cert, &len);
        webui__audit(conn, s, "csr", name, "", r.cn, pem ? "ok" : "failed");
        ret = pem ? webui__send(conn, 201, "application/pkcs10", pem, len, NULL)
                  : webui__json(conn, 500, "error", "the CSR vanished");
        goto done;
    }
    ret = add_block(conn, s, name, cert, key, &committed);
    if (!committed) { /* a refused block would leave files nobody references */
        unlink(cert);
        unlink(key);
    }
done:
    free(name);
    free(cn);
    free(sans);
    return ret;
}

static enum MHD_Result issued(struct MHD_Connection *conn, const struct webui_session *s,
                              const char *name, const char *body, size_t blen)
{
    char dir[1300], cert[1400], key[1400], err[1024];

    if (!valid_name(name))
        return webui__json(conn, 404, "error", "not found");
    dir_of(dir, sizeof(dir));
    snprintf(cert, sizeof(cert), "%s/%s.pem", dir, name);
    snprintf(key, sizeof(key), "%s/%s.key", dir, name);
    if (access(key, F_OK) == -1)
        return webui__json(conn, 404, "error", "no CSR was made under that name here");
    if (blen == 0 || blen > 64 * 1024 || memmem(body, blen, "PRIVATE KEY", 11) != NULL)
        return webui__json(conn, 422, "error", "send the issued certificate chain (PEM), no key");
    if (gh_write_file(cert, body, blen, 0644, 0) == -1) {
        snprintf(err, sizeof(err), "%.900s: %s", cert, strerror(errno));
        return webui__json(conn, 409, "error", err);
    }
    {
        int committed = 0;
        enum MHD_Result ret = add_block(conn, s, name, cert, key, &committed);
        if (!committed) /* the chain stays on disk only if the block was accepted */
            unlink(cert);
        return ret;
    }
}

/* A pair made elsewhere: converted to our two files (the passphrase is
 * used once and not kept), then added like a generated one. */
static enum MHD_Result import(struct MHD_Connection *conn, const struct webui_session *s,
                              const char *name, const char *body, size_t blen)
{
    const char *pass = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Passphrase");
    char dir[1300], cert[1400], key[1400], err[1024];
    int committed = 0;
    enum MHD_Result ret;

    if (!valid_name(name))
        return webui__json(conn, 422, "error", "name: 1-60 of a-z 0-9 - _");
    dir_of(dir, sizeof(dir));
    if (gh_mkdir_p(dir, 0700) == -1) {
        snprintf(err, sizeof(err), "%.900s: %s", dir, strerror(errno));
        return webui__json(conn, 500, "error", err);
    }
    snprintf(cert, sizeof(cert), "%s/%s.pem", dir, name);
    snprintf(key, sizeof(key), "%s/%s.key", dir, name);
    if (certs_import(body, blen, pass, cert, key, err, sizeof(err)) == -1) {
        webui__audit(conn, s, "certificate-import", name, "", "", "invalid");
        return webui__json(conn, 422, "error", err);
    }
    ret = add_block(conn, s, name, cert, key, &committed);
    if (!committed) { /* refused (stale, expired, in use...): nothing stays */
        unlink(cert);
        unlink(key);
    }
    return ret;
}

static int embedded(struct MHD_Connection *conn, enum MHD_Result *ret)
{
    if (webui__conf_path() != NULL)
        return 0;
    *ret = webui__json(conn, 409, "error", "running the embedded default topology");
    return 1;
}

enum MHD_Result webui__r_cert_selfsigned(struct webui_call *c)
{
    enum MHD_Result ret;

    return embedded(c->conn, &ret) ? ret : generate(c->conn, c->s, 0, c->body, c->blen);
}

enum MHD_Result webui__r_cert_csr(struct webui_call *c)
{
    enum MHD_Result ret;

    return embedded(c->conn, &ret) ? ret : generate(c->conn, c->s, 1, c->body, c->blen);
}

enum MHD_Result webui__r_cert_issued(struct webui_call *c)
{
    enum MHD_Result ret;

    if (strlen(c->arg[0]) >= 80)
        return webui__json(c->conn, 404, "error", "not found");
    return embedded(c->conn, &ret) ? ret : issued(c->conn, c->s, c->arg[0], c->body, c->blen);
}

enum MHD_Result webui__r_cert_import(struct webui_call *c)
{
    enum MHD_Result ret;

    if (strlen(c->arg[0]) >= 80)
        return webui__json(c->conn, 404, "error", "not found");
    return embedded(c->conn, &ret) ? ret : import(c->conn, c->s, c->arg[0], c->body, c->blen);
}
