/* libFuzzer target: the assertion consumer's response check (parse,
 * shape, signature verification with xmlsec1, decryption, every condition)
 * and the IdP metadata reader, on arbitrary bytes. The SP and IdP keys are
 * generated once at start in a temporary folder. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "certs/certs.h"
#include "common/common.h"
#include "common/conf.h"
#include "common/kv.h"
#include "saml/saml_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define UUID "0f5e2a36-6c1e-4d0b-9c41-5b7a2f0e9d11"

static const struct saml_idp *idp;
static char tmpdir[] = "/tmp/gh-fuzz-saml-XXXXXX";

static void cleanup(void)
{
    static const char *const names[] = {"sp.pem", "sp.key", "idp.pem", "idp.key"};
    char p[300];
    size_t i;

    for (i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s/%s", tmpdir, names[i]);
        unlink(p);
    }
    rmdir(tmpdir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char *dir = tmpdir, a[300], b[300], c[300], d[300], err[512];
    struct certs_req r = {"sp", NULL, 2048, 30};
    struct gh_sbuf conf = {NULL, 0, 0};
    struct gh_conf *cf;
    struct saml_sp *sp;

    (void)argc;
    (void)argv;
    if (mkdtemp(dir) == NULL || saml_global_init() == -1)
        abort();
    atexit(cleanup);
    gh_kv_rec_init(4096);
    snprintf(a, sizeof(a), "%s/sp.pem", dir);
    snprintf(b, sizeof(b), "%s/sp.key", dir);
    snprintf(c, sizeof(c), "%s/idp.pem", dir);
    snprintf(d, sizeof(d), "%s/idp.key", dir);
    if (certs_gen_selfsigned(a, b, &r, err, sizeof(err)) == -1 ||
        certs_gen_selfsigned(c, d, &r, err, sizeof(err)) == -1) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    gh_sbuf_printf(&conf,
                   "certificate sp { cert %s\n key %s }\n"
                   "identity-provider i {\n uuid " UUID "\n sp-certificate sp\n"
                   " sp-entity-id https://localhost/saml\n"
                   " acs-url https://localhost/api/v1/samlconsumer/" UUID "\n"
                   " idp-sso-url https://idp.example/sso\n idp-entity-id https://idp.example\n"
                   " idp-certificate %s\n}\n"
                   "identity-provider-group g { identity-providers i }\n",
                   a, b, c);
    cf = gh_conf_parse("fuzz", conf.p, conf.len, err, sizeof(err));
    sp = cf ? saml_sp_new(cf, err, sizeof(err)) : NULL;
    if (sp == NULL) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    idp = saml_idp_by_uuid(sp, UUID);
    free(conf.p);
    gh_conf_free(cf);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct saml_result res;
    struct saml_idp_meta m;
    char err[256];
    char *b64 = saml__b64enc(data, size);

    saml_response_check(idp, "localhost", b64, strlen(b64), (int64_t)time(NULL), &res);
    free(b64);
    /* The raw bytes as posted (base64 with junk) too. */
    saml_response_check(idp, "localhost", (const char *)data, size, (int64_t)time(NULL), &res);
    if (saml_idp_meta_parse((const char *)data, size, &m, err, sizeof(err)) == 0)
        saml_idp_meta_free(&m);
    return 0;
}
