/*
 * gatehouse saml ...: what an administrator does by hand around identity
 * providers (the admin UI will offer the same through the API).
 *
 *   gatehouse saml uuid
 *   gatehouse saml metadata [-c FILE] NAME        SP metadata of one record
 *   gatehouse saml import METADATA --name NAME --cert-out FILE
 *            [--uuid U] [--sp-certificate C] [--sp-entity-id ID]
 *            [--acs-url URL]... [--acs-from-services]
 *       reads IdP metadata, writes its signing certificates to FILE (never
 *       over an existing file) and prints an identity-provider block.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/common.h"
#include "../common/conf.h"
#include "../saml/saml.h"
#include "main_int.h"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n = 0, cap = 1 << 16;

    if (f == NULL)
        return NULL;
    buf = gh_calloc(1, cap + 1);
    while (!feof(f) && !ferror(f)) {
        size_t r;
        if (n == cap) {
            if (cap >= 8u << 20)
                break;
            cap *= 2;
            buf = realloc(buf, cap + 1);
            if (buf == NULL)
                abort();
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* A value for the config as a quoted string, escaped for our lexer. */
static void quoted(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        putchar(*s);
    }
    putchar('"');
}

static int import(int argc, char **argv)
{
    const char *file = NULL, *name = NULL, *out = NULL, *uuid = NULL, *spc = NULL, *spe = NULL;
    const char *acs[16];
    int nacs = 0, from_services = 0, i, fd;
    char err[1024], fresh[37];
    struct saml_idp_meta m;
    size_t len = 0;
    char *xml;

    if (main_help_asked(argc, argv))
        goto usage;
    for (i = 3; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--acs-from-services") == 0) {
            from_services = 1;
            continue;
        }
        if (o[0] != '-' && file == NULL) {
            file = o;
            continue;
        }
        if (v == NULL)
            goto usage;
        if (strcmp(o, "--name") == 0)
            name = v;
        else if (strcmp(o, "--cert-out") == 0)
            out = v;
        else if (strcmp(o, "--uuid") == 0)
            uuid = v;
        else if (strcmp(o, "--sp-certificate") == 0)
            spc = v;
        else if (strcmp(o, "--sp-entity-id") == 0)
            spe = v;
        else if (strcmp(o, "--acs-url") == 0 && nacs < 16)
            acs[nacs++] = v;
        else
            goto usage;
        i++;
    }
    if (file == NULL || name == NULL || out == NULL)
        goto usage;
    xml = read_file(file, &len);
    if (xml == NULL) {
        fprintf(stderr, "gatehouse saml import: %s: %s\n", file, strerror(errno));
        return 1;
    }
    if (saml_idp_meta_parse(xml, len, &m, err, sizeof(err)) == -1) {
        free(xml);
        fprintf(stderr, "gatehouse saml import: %s: %s\n", file, err);
        return 1;
    }
    free(xml);
    fd = open(out, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd == -1 || write(fd, m.certs_pem, strlen(m.certs_pem)) != (ssize_t)strlen(m.certs_pem) ||
        fsync(fd) == -1) {
        fprintf(stderr, "gatehouse saml import: %s: %s\n", out, strerror(errno));
        if (fd != -1)
            close(fd);
        saml_idp_meta_free(&m);
        return 1;
    }
    close(fd);
    if (uuid == NULL) {
        saml_uuid(fresh);
        uuid = fresh;
    }
    printf("identity-provider ");
    quoted(name);
    printf(" {\n    uuid %s\n", uuid);
    if (spc) {
        printf("    sp-certificate ");
        quoted(spc);
        printf("\n");
    }
    if (spe) {
        printf("    sp-entity-id ");
        quoted(spe);
        printf("\n");
    }
    for (i = 0; i < nacs; i++) {
        printf("    acs-url ");
        quoted(acs[i]);
        printf("\n");
    }
    if (from_services)
        printf("    acs-from-services on\n");
    printf("    idp-entity-id ");
    quoted(m.entity_id);
    printf("\n    idp-sso-url ");
    quoted(m.sso_url);
    printf("\n    idp-certificate ");
    quoted(out);
    printf("\n}\n");
    fprintf(stderr, "gatehouse saml import: %zu signing certificate%s written to %s\n", m.ncerts,
            m.ncerts == 1 ? "" : "s", out);
    saml_idp_meta_free(&m);
    return 0;
usage:
    fprintf(main_usage_out(argc, argv), "usage: gatehouse saml import METADATA --name NAME --cert-out FILE "
                    "[--uuid U] [--sp-certificate C] [--sp-entity-id ID] [--acs-url URL]... "
                    "[--acs-from-services]\n");
    return main_usage_rc(argc, argv);
}

int main_saml_cmd(int argc, char **argv, struct gh_conf *(*load)(const char *path, char *err,
                                                                  size_t errlen))
{
    const char *cmd = argc > 2 ? argv[2] : "";

    if (strcmp(cmd, "uuid") == 0 && argc == 3) {
        char u[37];
        saml_uuid(u);
        printf("%s\n", u);
        return 0;
    }
    if (saml_global_init() == -1)
        return 1;
    if (strcmp(cmd, "import") == 0)
        return import(argc, argv);
    if (strcmp(cmd, "metadata") == 0) {
        const char *path = NULL, *name = NULL;
        char err[1024];
        struct gh_conf *c;
        struct saml_sp *sp;
        const struct saml_idp *idp;
        int i, rc = 1;
        for (i = 3; i < argc; i++) {
            if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
                path = argv[++i];
            else if (name == NULL)
                name = argv[i];
            else
                name = NULL, i = argc;
        }
        if (name == NULL || main_help_asked(argc, argv)) {
            fprintf(main_usage_out(argc, argv), "usage: gatehouse saml metadata [-c FILE] "
                                                "NAME|UUID\n");
            return main_usage_rc(argc, argv);
        }
        c = load(path, err, sizeof(err));
        sp = c ? saml_sp_new(c, err, sizeof(err)) : NULL;
        if (sp == NULL) {
            fprintf(stderr, "gatehouse saml metadata: %s\n", err);
            gh_conf_free(c);
            return 1;
        }
        idp = saml_idp_by_name(sp, name);
        if (idp == NULL)
            idp = saml_idp_by_uuid(sp, name);
        if (idp == NULL) {
            fprintf(stderr, "gatehouse saml metadata: no identity-provider '%s'\n", name);
        } else {
            size_t len = 0;
            char *xml = saml_sp_metadata(idp, &len, err, sizeof(err));
            if (xml != NULL) {
                fwrite(xml, 1, len, stdout);
                free(xml);
                rc = 0;
            } else {
                fprintf(stderr, "gatehouse saml metadata: %s\n", err);
            }
        }
        saml_sp_unref(sp);
        gh_conf_free(c);
        return rc;
    }
    fprintf(main_usage_out(argc, argv),
            "usage: gatehouse saml uuid | metadata [-c FILE] NAME | import ... (each with "
            "--help)\n");
    return main_usage_rc(argc, argv);
}
