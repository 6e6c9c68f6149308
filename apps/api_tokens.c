/*
 * The conference admin API's tokens: one per caller, each with the scopes
 * of the operations it may do, kept as SHA-256 digests (a token is 256
 * random bits, so a digest is a sufficient verifier) in
 * STATE-DIR/conference/api-tokens, 0600, one line per token:
 *
 *   NAME SCOPE[,SCOPE...] SHA256-HEX
 *
 * Scopes: meetings-read (list), meetings-write (create, delete, reopen),
 * pin-reset, devices (vouch that a device is registered here), or all.
 * The file is read again whenever it changes, so `gatehouse meeting token
 * add` takes effect on a running appliance at once. The single admin.token
 * of earlier versions becomes the token "admin-token" with every scope.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/common.h"
#include "apps.h"
#include "apps_int.h"

#define MAX_TOKENS 256
#define LINE_MAX_LEN 400

static const char *const scope_names[] = {"meetings-read", "meetings-write", "pin-reset",
                                          "devices"};

struct token {
    char name[65];
    unsigned scopes;
    unsigned char digest[32];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct token tokens[MAX_TOKENS];
static size_t ntokens;
static char path[1100];
static struct stat seen;

static void digest(const char *tok, unsigned char out[32])
{
    unsigned int n = 32;

    EVP_Digest(tok, strlen(tok), out, &n, EVP_sha256(), NULL);
}

int apps_scopes_parse(const char *text, unsigned *out)
{
    char buf[200], *save = NULL, *w;
    size_t i;

    *out = 0;
    if (gh_strlcpy(buf, text, sizeof(buf)) == -1)
        return -1;
    for (w = strtok_r(buf, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save)) {
        if (strcmp(w, "all") == 0) {
            *out |= APPS_SCOPE_ALL;
            continue;
        }
        for (i = 0; i < GH_ARRAY_LEN(scope_names) && strcmp(w, scope_names[i]) != 0; i++)
            ;
        if (i == GH_ARRAY_LEN(scope_names))
            return -1;
        *out |= 1u << i;
    }
    return *out != 0 ? 0 : -1;
}

static void scopes_text(unsigned s, char *out, size_t len)
{
    size_t i;

    out[0] = '\0';
    for (i = 0; i < GH_ARRAY_LEN(scope_names); i++)
        if (s & (1u << i))
            snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? "," : "",
                     scope_names[i]);
}

/* Parses the file's text into t; -1 with err naming the line. */
static int parse(const char *text, struct token *t, size_t *n, char *err, size_t errlen)
{
    const char *p = text;
    int line = 0;

    *n = 0;
    while (*p) {
        const char *e = strchr(p, '\n');
        char l[LINE_MAX_LEN], name[80], scopes[220], hex[80];
        size_t len = e ? (size_t)(e - p) : strlen(p);
        line++;
        if (len >= sizeof(l)) {
            snprintf(err, errlen, "%s:%d: line too long", path, line);
            return -1;
        }
        memcpy(l, p, len);
        l[len] = '\0';
        p += len + (e != NULL);
        if (l[0] == '\0' || l[0] == '#')
            continue;
        if (*n == MAX_TOKENS || sscanf(l, "%64s %200s %70s", name, scopes, hex) != 3 ||
            strlen(hex) != 64 || apps_scopes_parse(scopes, &t[*n].scopes) == -1 ||
            gh_unhex(hex, t[*n].digest, 32) == -1) {
            snprintf(err, errlen, "%s:%d: not NAME SCOPE[,SCOPE] SHA256-HEX", path, line);
            return -1;
        }
        gh_strlcpy(t[*n].name, name, sizeof(t[*n].name));
        (*n)++;
    }
    return 0;
}

/* Reads the file again when it changed since (mu held). */
static void refresh(void)
{
    struct stat sb;
    char *text, err[300];
    size_t len = 0, n = 0;
    static struct token fresh[MAX_TOKENS];

    if (stat(path, &sb) == -1) {
        ntokens = 0;
        memset(&seen, 0, sizeof(seen));
        return;
    }
    if (sb.st_ino == seen.st_ino && sb.st_mtim.tv_sec == seen.st_mtim.tv_sec &&
        sb.st_mtim.tv_nsec == seen.st_mtim.tv_nsec && sb.st_size == seen.st_size)
        return;
    text = gh_read_file_max(path, 1 << 20, &len);
    if (text == NULL || parse(text, fresh, &n, err, sizeof(err)) == -1) {
        /* Fail closed: an operator who removed a token by hand and slipped
         * elsewhere must not leave that token working. */
        gh_log_err("conference: %s; no admin API token works until it is fixed",
                   text ? err : path);
        free(text);
        ntokens = 0;
        seen = sb; /* said once, not at every request */
        return;
    }
    free(text);
    memcpy(tokens, fresh, n * sizeof(*fresh));
    ntokens = n;
    seen = sb;
}

int apps__api_token_check(const char *bearer, unsigned scope, char name[65])
{
    unsigned char d[32];
    size_t i;
    int found = 0;

    name[0] = '\0';
    if (bearer == NULL || strlen(bearer) != 64)
        return -1;
    digest(bearer, d);
    pthread_mutex_lock(&mu);
    refresh();
    for (i = 0; i < ntokens; i++)
        if (CRYPTO_memcmp(d, tokens[i].digest, 32) == 0) {
            gh_strlcpy(name, tokens[i].name, 65);
            found = (tokens[i].scopes & scope) == scope ? 1 : -2;
            break;
        }
    pthread_mutex_unlock(&mu);
    return found == 1 ? 0 : found == -2 ? -2 : -1;
}

/* The whole file, rewritten atomically with line (NULL: without name). */
static int rewrite(const char *file, const char *name, const char *line, char *err,
                   size_t errlen)
{
    char *text;
    struct gh_sbuf o = {NULL, 0, 0};
    size_t len = 0;
    const char *p;
    int rc, had = 0;

    text = gh_read_file_max(file, 1 << 20, &len);
    for (p = text ? text : ""; *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p), nl = strlen(name);
        if (l > nl && strncmp(p, name, nl) == 0 && p[nl] == ' ')
            had = 1;
        else if (l > 0)
            gh_sbuf_printf(&o, "%.*s\n", (int)l, p);
        p += l + (e != NULL);
    }
    free(text);
    if (line != NULL && had) {
        snprintf(err, errlen, "a token named %s exists already", name);
        free(o.p);
        return -1;
    }
    if (line == NULL && !had) {
        snprintf(err, errlen, "no token named %s", name);
        free(o.p);
        return -1;
    }
    if (line != NULL)
        gh_sbuf_printf(&o, "%s\n", line);
    rc = gh_write_file(file, o.p ? o.p : "", o.len, 0600, 1);
    if (rc == -1)
        snprintf(err, errlen, "%s: %s", file, strerror(errno));
    free(o.p);
    return rc;
}

static void file_of(const char *state_dir, char *out, size_t len)
{
    snprintf(out, len, "%s/conference/api-tokens", state_dir);
}

int apps_api_token_add(const char *state_dir, const char *name, const char *scopes,
                       char token[65], char *err, size_t errlen)
{
    unsigned char raw[32], d[32];
    char file[1100], dhex[65], line[LINE_MAX_LEN], st[200];
    unsigned s;

    if (!gh_name_ok(name, 64)) {
        snprintf(err, errlen, "a token name is 1 to 64 of a-z 0-9 - _ .");
        return -1;
    }
    if (apps_scopes_parse(scopes, &s) == -1) {
        snprintf(err, errlen, "scopes: meetings-read, meetings-write, pin-reset, devices or all, "
                              "comma-separated");
        return -1;
    }
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        snprintf(err, errlen, "no randomness");
        return -1;
    }
    gh_hex(raw, sizeof(raw), token);
    gh_wipe(raw, sizeof(raw));
    digest(token, d);
    gh_hex(d, sizeof(d), dhex);
    scopes_text(s, st, sizeof(st));
    snprintf(line, sizeof(line), "%s %s %s", name, st, dhex);
    snprintf(file, sizeof(file), "%s/conference", state_dir);
    if (gh_mkdir_p(file, 0700) == -1) { /* a CLI before the first start */
        snprintf(err, errlen, "%s: %s", file, strerror(errno));
        return -1;
    }
    file_of(state_dir, file, sizeof(file));
    return rewrite(file, name, line, err, errlen);
}

int apps_api_token_remove(const char *state_dir, const char *name, char *err, size_t errlen)
{
    char file[1100];

    file_of(state_dir, file, sizeof(file));
    return rewrite(file, name, NULL, err, errlen);
}

int apps_api_token_list(const char *state_dir, void (*fn)(const char *name, const char *scopes,
                                                           void *arg),
                        void *arg, char *err, size_t errlen)
{
    static struct token t[MAX_TOKENS];
    char file[1100], st[200], *text, saved[sizeof(path)];
    size_t len = 0, n = 0, i;
    int rc;

    file_of(state_dir, file, sizeof(file));
    text = gh_read_file_max(file, 1 << 20, &len);
    if (text == NULL)
        return 0;
    gh_strlcpy(saved, path, sizeof(saved));
    gh_strlcpy(path, file, sizeof(path)); /* for the line numbers in err */
    rc = parse(text, t, &n, err, errlen);
    gh_strlcpy(path, saved, sizeof(path));
    free(text);
    for (i = 0; rc == 0 && i < n; i++) {
        scopes_text(t[i].scopes, st, sizeof(st));
        fn(t[i].name, st, arg);
    }
    return rc;
}

int apps__api_tokens_open(const char *dir, char *err, size_t errlen)
{
    char legacy[1100], tok[80], line[LINE_MAX_LEN], dhex[65];
    unsigned char d[32];
    FILE *f;

    snprintf(path, sizeof(path), "%s/api-tokens", dir);
    snprintf(legacy, sizeof(legacy), "%s/admin.token", dir);
    f = fopen(legacy, "r");
    if (f == NULL)
        return 0;
    if (fgets(tok, sizeof(tok), f) == NULL)
        tok[0] = '\0';
    fclose(f);
    tok[strcspn(tok, "\r\n")] = '\0';
    if (strlen(tok) != 64) {
        snprintf(err, errlen, "%s: not a 64-hex-digit token", legacy);
        return -1;
    }
    digest(tok, d);
    gh_wipe(tok, sizeof(tok));
    gh_hex(d, sizeof(d), dhex);
    snprintf(line, sizeof(line), "admin-token meetings-read,meetings-write,pin-reset,devices %s",
             dhex);
    if (rewrite(path, "admin-token", line, err, errlen) == -1 && strstr(err, "exists") == NULL)
        return -1;
    unlink(legacy);
    gh_log_warn("conference: %s became the token admin-token in %s, with every scope; it now "
                "works only on the conference-admin socket (gatehouse meeting token add makes "
                "tokens with fewer scopes)",
                legacy, path);
    return 0;
}

void apps__api_audit(const char *token, const char *method, const char *path_, int status,
                     const char *detail)
{
    char file[1100], t[65], p[400], d[400], line[1400];
    int fd;

    if (path[0] == '\0')
        return;
    snprintf(file, sizeof(file), "%.*s/audit.log", (int)(strlen(path) - strlen("/api-tokens")),
             path);
    gh_json_put(t, sizeof(t), token, strlen(token), 64);
    gh_json_put(p, sizeof(p), path_, strlen(path_), 200);
    gh_json_put(d, sizeof(d), detail, strlen(detail), 200);
    snprintf(line, sizeof(line),
             "{\"time\":%lld,\"token\":\"%s\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,"
             "\"detail\":\"%s\"}\n",
             (long long)time(NULL), t, strcmp(method, "POST") == 0 || strcmp(method, "GET") == 0 ||
                                              strcmp(method, "DELETE") == 0
                                          ? method
                                          : "other",
             p, status, d);
    fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd == -1 || write(fd, line, strlen(line)) != (ssize_t)strlen(line))
        gh_log_err("conference: the admin API's audit log %s: %s", file, strerror(errno));
    if (fd != -1)
        close(fd);
}
