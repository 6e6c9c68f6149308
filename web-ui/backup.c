/*
 * Backup and restore (admins): the configuration and every file it names
 * that makes the appliance what it is (certificates and keys, PKCS#12 and
 * passphrase files, OCSP responses, CA bundles, IdP certificates), and the
 * meeting database (rooms, verifiers, wrapped slide keys: never the
 * key-encryption key, never the slides), in one bundle encrypted under a
 * passphrase.
 *
 *   POST /api/v1/system/backup    passphrase (12+) -> the bundle (download)
 *   POST /api/v1/system/restore   body: the bundle; X-Backup-Passphrase,
 *                                 X-Current-Password (asked again), If-Match
 *
 * Bundle: "GHB1", salt (16), IV (12), AES-256-GCM(entries), tag (16); the key
 * is PBKDF2-HMAC-SHA256(passphrase, salt, 600,000). An entry is a 4-byte
 * path length, the path ("@config" for the configuration, "@meetings" for
 * the meeting database), an 8-byte data length and the data, big-endian. A restore keeps every file it replaces
 * in state-dir/admin/restore-<time>/ and puts them back if the restored
 * configuration does not validate.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/common.h"
#include "webui_int.h"

#define MAGIC "GHB1"
#define MAX_FILES 512

static int derive(const char *pass, const unsigned char salt[16], unsigned char key[32])
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "PBKDF2", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    unsigned iter = WEBUI_PBKDF2_ITER;
    OSSL_PARAM p[5];
    int ok;

    p[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)(uintptr_t)pass,
                                             strlen(pass));
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)salt, 16);
    p[2] = OSSL_PARAM_construct_uint(OSSL_KDF_PARAM_ITER, &iter);
    p[3] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)(uintptr_t)"SHA256",
                                            0);
    p[4] = OSSL_PARAM_construct_end();
    ok = ctx != NULL && EVP_KDF_derive(ctx, key, 32, p) == 1;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ok ? 0 : -1;
}

static void be(struct gh_sbuf *o, uint64_t v, int bytes)
{
    int i;

    for (i = bytes - 1; i >= 0; i--) {
        char b = (char)((v >> (8 * i)) & 0xff);
        gh_sbuf_append(o, &b, 1);
    }
}

static void add_entry(struct gh_sbuf *o, const char *path, const char *data, size_t len)
{
    size_t pl = strlen(path);

    be(o, pl, 4);
    gh_sbuf_append(o, path, pl);
    be(o, len, 8);
    gh_sbuf_append(o, data, len);
}

static void add_file(struct gh_sbuf *o, const char *path, int *n)
{
    size_t len = 0;
    char *data;

    if (path == NULL || *n >= MAX_FILES)
        return;
    data = webui__read_file(path, &len);
    if (data == NULL)
        return;
    add_entry(o, path, data, len);
    gh_wipe(data, len); /* keys among them */
    free(data);
    (*n)++;
}

static enum MHD_Result backup(struct MHD_Connection *conn, const struct webui_session *s,
                              const char *body, size_t blen)
{
    char *pass = gh_form_get(body, blen, "passphrase"), err[512];
    struct gh_sbuf plain = {NULL, 0, 0};
    unsigned char salt[16], iv[12], key[32], tag[16];
    size_t len = 0, i, j;
    char *text = NULL, *out = NULL;
    struct gh_conf *c = NULL;
    EVP_CIPHER_CTX *cx = NULL;
    int n = 0, outl = 0, fl = 0;
    const char *why;
    enum MHD_Result ret;

    if (pass == NULL || webui_password_ok(pass, &why) == -1) {
        ret = webui__json(conn, 422, "error", "passphrase: at least 12 characters, two kinds");
        goto done;
    }
    text = webui__read_file(webui__conf_path(), &len);
    c = text ? gh_conf_parse(webui__conf_path(), text, len, err, sizeof(err)) : NULL;
    if (c == NULL) {
        ret = webui__json(conn, 500, "error", "the configuration does not read back");
        goto done;
    }
    add_entry(&plain, "@config", text, len);
    {
        size_t ml = 0;
        unsigned char *db = webui__meetings_snapshot(&ml, err, sizeof(err));
        if (db != NULL) {
            add_entry(&plain, "@meetings", (const char *)db, ml);
            gh_wipe(db, ml);
            free(db);
        }
    }
    for (i = 0; i < c->ncerts; i++) {
        add_file(&plain, c->certs[i].cert, &n);
        add_file(&plain, c->certs[i].key, &n);
        add_file(&plain, c->certs[i].pkcs12, &n);
        add_file(&plain, c->certs[i].passphrase_file, &n);
        add_file(&plain, c->certs[i].ocsp_response, &n);
    }
    for (i = 0; i < c->ncas; i++)
        add_file(&plain, c->cas[i].file, &n);
    for (i = 0; i < c->nidps; i++)
        for (j = 0; j < c->idps[i].idp_certificates.n; j++)
            add_file(&plain, c->idps[i].idp_certificates.v[j], &n);
    if (48 + plain.len > WEBUI_BUNDLE_MAX) { /* it could never be restored */
        ret = webui__json(conn, 507, "error", "the backup would be larger than a restore "
                                              "accepts (16 MiB)");
        goto done;
    }
    out = gh_calloc(1, 4 + 16 + 12 + plain.len + 16);
    cx = EVP_CIPHER_CTX_new();
    if (RAND_bytes(salt, 16) != 1 || RAND_bytes(iv, 12) != 1 || derive(pass, salt, key) == -1 ||
        cx == NULL || EVP_EncryptInit_ex2(cx, EVP_aes_256_gcm(), key, iv, NULL) != 1 ||
        EVP_EncryptUpdate(cx, (unsigned char *)out + 32, &outl, (unsigned char *)plain.p,
                          (int)plain.len) != 1 ||
        EVP_EncryptFinal_ex(cx, (unsigned char *)out + 32 + outl, &fl) != 1 ||
        EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1) {
        ret = webui__json(conn, 500, "error", "encryption failed");
        goto done;
    }
    memcpy(out, MAGIC, 4);
    memcpy(out + 4, salt, 16);
    memcpy(out + 20, iv, 12);
    memcpy(out + 32 + outl + fl, tag, 16);
    {
        char what[32];
        snprintf(what, sizeof(what), "%d files", n);
        webui__audit(conn, s, "backup", "configuration", "", what, "ok");
    }
    ret = webui__send_download(conn, out, 32 + (size_t)(outl + fl) + 16,
                               "application/octet-stream", "backup");
    out = NULL;
done:
    gh_wipe(key, sizeof(key));
    if (plain.p)
        gh_wipe(plain.p, plain.len);
    free(plain.p);
    if (pass)
        gh_wipe(pass, strlen(pass));
    free(pass);
    free(text);
    free(out);
    gh_conf_free(c);
    EVP_CIPHER_CTX_free(cx);
    return ret;
}

struct entry {
    char *path;
    const char *data;
    size_t len;
};

static uint64_t rd(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

/* Whether dir (resolved) is root or under it. */
static int under(const char *dir, const char *root)
{
    char r[PATH_MAX];
    size_t n;

    if (realpath(root, r) == NULL)
        return 0;
    n = strlen(r);
    return strncmp(dir, r, n) == 0 && (dir[n] == '\0' || dir[n] == '/' || strcmp(r, "/") == 0);
}

/* A restored file may land only in the state folder or the config file's
 * folder (where gatehouse and its installer keep certificates, keys and
 * IdP files): the bundle names its own paths, and a restore must not be
 * a way to write, say, /etc/cron.d as the appliance's user. The folder
 * must exist already and is resolved (symbolic links included). */
static int restore_path_ok(const char *path)
{
    char dir[PATH_MAX], real[PATH_MAX], conf_dir[PATH_MAX];
    const char *base = strrchr(path, '/');
    size_t dl;

    if (path[0] == '\0' || strstr(path, "/../") || strncmp(path, "../", 3) == 0 ||
        strlen(path) >= sizeof(dir))
        return 0;
    if (base == NULL) {
        gh_strlcpy(dir, ".", sizeof(dir));
        base = path;
    } else {
        dl = (size_t)(base - path);
        snprintf(dir, sizeof(dir), "%.*s", (int)(dl ? dl : 1), path);
        base++;
    }
    if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 ||
        realpath(dir, real) == NULL)
        return 0;
    gh_strlcpy(conf_dir, webui__conf_path(), sizeof(conf_dir));
    {
        char *slash = strrchr(conf_dir, '/');
        if (slash == NULL)
            gh_strlcpy(conf_dir, ".", sizeof(conf_dir));
        else if (slash == conf_dir)
            conf_dir[1] = '\0';
        else
            *slash = '\0';
    }
    return under(real, webui__state_dir()) || under(real, conf_dir);
}

struct restore_state {
    struct entry *e;
    size_t ne;
    const char *config;
    size_t config_len;
    const struct entry *meetings; /* the bundle's meeting database, or NULL */
    unsigned char *old_meetings;  /* the one it replaced, for the undo */
    size_t old_meetings_len;
    char *old_data[MAX_FILES + 1];
    size_t old_len[MAX_FILES + 1];
};

/* Nothing of a refused restore stays: every file it replaced goes back. */
static void restore_undo(void *ctx)
{
    struct restore_state *rs = ctx;
    size_t i;

    if (rs->old_meetings != NULL) {
        char err[512];
        if (webui__meetings_restore(rs->old_meetings, rs->old_meetings_len, 0, err,
                                    sizeof(err)) == -1)
            gh_log_err("restore: the meeting database could not be put back: %s", err);
    }
    for (i = 0; i < rs->ne; i++) {
        if (rs->e[i].path[0] == '@')
            continue;
        if (rs->old_data[i] != NULL)
            gh_write_file(rs->e[i].path, rs->old_data[i], rs->old_len[i], 0600, 1);
        else
            unlink(rs->e[i].path);
    }
}

/* Puts the bundle's files in place (keeping what they replace, in memory
 * for the undo and on disk beside the history) and gives its config. */
static char *restore_transform(const char *text, size_t len, void *ctx, unsigned *status,
                               char *err, size_t errlen)
{
    struct restore_state *rs = ctx;
    char saved[1300];
    size_t i;

    (void)text;
    (void)len;
    for (i = 0; i < rs->ne; i++)
        if (rs->e[i].path[0] != '@' && !restore_path_ok(rs->e[i].path)) {
            snprintf(err, errlen, "%.300s: outside the state folder and the configuration's "
                     "folder; nothing was restored (copy such files by hand)", rs->e[i].path);
            return NULL;
        }
    if (rs->meetings != NULL &&
        webui__meetings_restore((const unsigned char *)rs->meetings->data, rs->meetings->len, 1,
                                err, errlen) == -1)
        return NULL;
    snprintf(saved, sizeof(saved), "%s/../restore-%lld", webui__history_dir(),
             (long long)time(NULL));
    gh_mkdir_p(saved, 0700);
    for (i = 0; i < rs->ne; i++) {
        size_t ol = 0;
        char *old, sp[2600], *q;
        if (rs->e[i].path[0] == '@')
            continue;
        old = webui__read_file(rs->e[i].path, &ol);
        if (old != NULL) {
            snprintf(sp, sizeof(sp), "%s/%s", saved, rs->e[i].path);
            for (q = sp + strlen(saved) + 1; *q; q++)
                if (*q == '/')
                    *q = '_';
            gh_write_file(sp, old, ol, 0600, 1);
            rs->old_data[i] = old;
            rs->old_len[i] = ol;
        }
        /* 0600 for all: keys and passphrase files must be, the rest may be. */
        if (gh_write_file(rs->e[i].path, rs->e[i].data, rs->e[i].len, 0600, 1) == -1) {
            snprintf(err, errlen, "%.900s: %s", rs->e[i].path, strerror(errno));
            restore_undo(rs);
            *status = 500;
            return NULL;
        }
    }
    if (rs->meetings != NULL) {
        char sp[1400];
        rs->old_meetings = webui__meetings_snapshot(&rs->old_meetings_len, err, errlen);
        if (rs->old_meetings != NULL) {
            snprintf(sp, sizeof(sp), "%s/meetings.db", saved);
            gh_write_file(sp, (const char *)rs->old_meetings, rs->old_meetings_len, 0600, 1);
        }
        if (rs->old_meetings == NULL ||
            webui__meetings_restore((const unsigned char *)rs->meetings->data, rs->meetings->len,
                                    0, err, errlen) == -1) {
            free(rs->old_meetings);
            rs->old_meetings = NULL; /* nothing of the meeting store changed */
            restore_undo(rs);
            *status = 500;
            return NULL;
        }
    }
    return gh_strndup(rs->config, rs->config_len);
}

static enum MHD_Result restore(struct MHD_Connection *conn, const struct webui_session *s,
                               const char *body, size_t blen)
{
    const char *pass = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Backup-Passphrase");
    const char *cur = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Current-Password");
    const unsigned char *b = (const unsigned char *)body;
    unsigned char key[32];
    unsigned char *plain = NULL;
    struct entry e[MAX_FILES + 1];
    struct restore_state rs;
    struct webui_change ch = {0};
    size_t ne = 0, off = 0, clen, i;
    const char *config = NULL;
    size_t config_len = 0;
    EVP_CIPHER_CTX *cx = NULL;
    int outl = 0, fl = 0, ok;
    enum MHD_Result ret;

    memset(&rs, 0, sizeof(rs));
    if (cur == NULL || webui_login(webui__users(), s->user, cur, (int64_t)time(NULL), NULL) !=
                           WEBUI_LOGIN_OK) {
        webui__audit(conn, s, "reauth", s->user, "", "", "failed");
        return webui__json(conn, 403, "error", "give your own password again (X-Current-Password)");
    }
    if (pass == NULL || blen < 48 || blen > WEBUI_BUNDLE_MAX || memcmp(body, MAGIC, 4) != 0)
        return webui__json(conn, 422, "error", "not a gatehouse backup, or no passphrase");
    clen = blen - 48;
    plain = gh_calloc(1, clen + 16);
    cx = EVP_CIPHER_CTX_new();
    ok = derive(pass, b + 4, key) == 0 && cx != NULL &&
         EVP_DecryptInit_ex2(cx, EVP_aes_256_gcm(), key, b + 20, NULL) == 1 &&
         EVP_DecryptUpdate(cx, plain, &outl, b + 32, (int)clen) == 1 &&
         EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_TAG, 16,
                             (void *)(uintptr_t)(b + blen - 16)) == 1 &&
         EVP_DecryptFinal_ex(cx, plain + outl, &fl) == 1;
    EVP_CIPHER_CTX_free(cx);
    gh_wipe(key, sizeof(key));
    if (!ok) {
        free(plain);
        webui__audit(conn, s, "restore", "configuration", "", "", "wrong-passphrase");
        return webui__json(conn, 422, "error", "the backup does not decrypt with that passphrase");
    }
    clen = (size_t)(outl + fl);
    while (off < clen && ne < MAX_FILES + 1) {
        uint64_t pl, dl;
        if (clen - off < 4 || (pl = rd(plain + off, 4)) == 0 || pl > 1024 ||
            clen - off - 4 < pl + 8)
            break;
        dl = rd(plain + off + 4 + pl, 8);
        if (dl > clen - off - 12 - pl)
            break;
        e[ne].path = gh_strndup((const char *)plain + off + 4, (size_t)pl);
        e[ne].data = (const char *)plain + off + 12 + pl;
        e[ne].len = (size_t)dl;
        if (strcmp(e[ne].path, "@config") == 0) {
            config = e[ne].data;
            config_len = e[ne].len;
        } else if (strcmp(e[ne].path, "@meetings") == 0) {
            rs.meetings = &e[ne];
        } else if (e[ne].path[0] == '@') {
            ne++;
            off = clen + 1; /* an entry this version does not know: refused */
            break;
        }
        ne++;
        off += 12 + pl + dl;
    }
    if (off != clen || config == NULL) {
        ret = webui__json(conn, 422, "error", "the backup is damaged");
        goto done;
    }
    rs.e = e;
    rs.ne = ne;
    rs.config = config;
    rs.config_len = config_len;
    ch.action = "restore";
    ch.object = "configuration";
    ch.transform = restore_transform;
    ch.undo = restore_undo;
    ch.ctx = &rs;
    ret = webui__apply(conn, s, &ch);
done:
    free(rs.old_meetings);
    for (i = 0; i < ne; i++) {
        free(e[i].path);
        if (rs.old_data[i] != NULL) {
            gh_wipe(rs.old_data[i], rs.old_len[i]);
            free(rs.old_data[i]);
        }
    }
    gh_wipe(plain, clen);
    free(plain);
    return ret;
}

static enum MHD_Result system_op(struct webui_call *c, int is_backup)
{
    if (webui__conf_path() == NULL)
        return webui__json(c->conn, 409, "error", "running the embedded default topology");
    return is_backup ? backup(c->conn, c->s, c->body, c->blen)
                     : restore(c->conn, c->s, c->body, c->blen);
}

enum MHD_Result webui__r_backup(struct webui_call *c)
{
    return system_op(c, 1);
}

enum MHD_Result webui__r_restore(struct webui_call *c)
{
    return system_op(c, 0);
}
