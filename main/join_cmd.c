/*
 * gatehouse join: the participant's side of the seeds' call sequence,
 * through the public service like any client (client/, on libcurl). Join
 * (PIN and/or a SAML session), receive the token, fetch the manifest (URLs
 * and keys), download and decrypt every resource in memory.
 *
 * Seed 000: "the meeting content and the key are only stored in process and
 * are not physically stored on the end user's hard drive". So by default the
 * slides are summarised (name, type, size, SHA-256) and wiped; --show hands
 * one to stdout (a viewer's pipe); only --write-plaintext DIR puts decrypted
 * files on disk, and says so. The process is made non-dumpable, so a crash
 * leaves no core file with the keys in it.
 *
 * SESSION is the value of the __Host-gh-sp cookie a browser sign-in left
 * (the CLI does not drive an identity provider's login page). Exit status:
 * 0 joined and every resource decrypted, 1 refused or failed, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../client/client.h"
#include "../common/common.h"
#include "main_int.h"

static const char usage_text[] =
    "usage: gatehouse join URI --key KEY --server https://HOST[:PORT]\n"
    "         [--pin PIN | --pin-file FILE] [--name NAME] [--session SESSION]\n"
    "         [--cacert FILE] [--wait SECONDS] [--timeout SECONDS]\n"
    "         [--client web|web-legacy|device] [--show NAME | --write-plaintext DIR]\n"
    "         [--proxy URL]\n"
    "Joins the meeting and decrypts its resources in memory: prints each one's name,\n"
    "type, size and SHA-256 and writes nothing to disk.\n"
    "  --show NAME            the decrypted resource NAME on stdout (for a viewer's pipe)\n"
    "  --write-plaintext DIR  also write the DECRYPTED files into DIR (0600): they are then\n"
    "                         on this disk, which the seeds' design avoids\n"
    "  --pin-file FILE        read the PIN from FILE's first line (- for stdin), so it is\n"
    "                         not in the process list\n"
    "  --proxy URL            through this proxy (https_proxy from the environment is not\n"
    "                         followed unless named here)\n";

struct join_args {
    const char *uri, *key, *pin, *name, *show, *plain_dir, *client;
    long wait_s;
    struct jc_options o;
};

/* Where messages go: stderr with --show, whose stdout holds only the
 * resource (a viewer's pipe), else stdout. */
static FILE *messages(const struct join_args *a)
{
    return a->show ? stderr : stdout;
}

static int usage(int rc)
{
    fputs(usage_text, rc == 0 ? stdout : stderr);
    return rc;
}

static int read_pin(const char *file, char *pin, size_t n)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "re");

    if (f == NULL || fgets(pin, (int)n, f) == NULL) {
        fprintf(stderr, "gatehouse join: %s: cannot read a PIN\n", file);
        if (f != NULL && f != stdin)
            fclose(f);
        return -1;
    }
    if (f != stdin)
        fclose(f);
    pin[strcspn(pin, "\r\n")] = '\0';
    return 0;
}

static int parse(int argc, char **argv, struct join_args *a, char *pinbuf, size_t pinlen)
{
    const char *pin_file = NULL;
    int i;

    memset(a, 0, sizeof(*a));
    a->client = "web";
    a->wait_s = 300;
    for (i = 2; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0)
            return 0;
        if (o[0] != '-' && a->uri == NULL) {
            a->uri = o;
            continue;
        }
        if (strcmp(o, "--out") == 0) {
            fprintf(stderr, "gatehouse join: --out is gone: slides stay in memory; "
                            "--write-plaintext DIR writes them decrypted to disk\n");
            return 2;
        }
        if (v == NULL)
            return 2;
        if (strcmp(o, "--key") == 0)
            a->key = v;
        else if (strcmp(o, "--server") == 0)
            a->o.server = v;
        else if (strcmp(o, "--pin") == 0)
            a->pin = v;
        else if (strcmp(o, "--pin-file") == 0)
            pin_file = v;
        else if (strcmp(o, "--name") == 0)
            a->name = v;
        else if (strcmp(o, "--session") == 0)
            a->o.session = v;
        else if (strcmp(o, "--cacert") == 0)
            a->o.cacert = v;
        else if (strcmp(o, "--show") == 0)
            a->show = v;
        else if (strcmp(o, "--write-plaintext") == 0)
            a->plain_dir = v;
        else if (strcmp(o, "--client") == 0)
            a->client = v;
        else if (strcmp(o, "--proxy") == 0)
            a->o.proxy = v;
        else if (strcmp(o, "--timeout") == 0) {
            if (gh_parse_long(v, 1, 86400, &a->o.timeout_s) == -1)
                return 2;
        } else if (strcmp(o, "--wait") != 0 || gh_parse_long(v, 0, 86400, &a->wait_s) == -1)
            return 2;
        i++;
    }
    if (a->uri == NULL || a->key == NULL || a->o.server == NULL || (a->pin && pin_file) ||
        (a->show && a->plain_dir))
        return 2;
    if (pin_file != NULL) {
        if (read_pin(pin_file, pinbuf, pinlen) == -1)
            return 1;
        a->pin = pinbuf;
    }
    return -1; /* go on */
}

static void sha256_hex(const unsigned char *p, size_t n, char out[65])
{
    unsigned char d[32];
    unsigned int dl = 0;
    int i;

    EVP_Digest(p, n, d, &dl, EVP_sha256(), NULL);
    for (i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The server's name as a plain file name in dir, never replacing a file. */
static int write_plain(const char *dir, const char *name, const struct jc_buf *b, FILE *log)
{
    char path[2048], safe[256];
    size_t i, off = 0;
    int fd;

    gh_strlcpy(safe, name, sizeof(safe));
    for (i = 0; safe[i]; i++)
        if (safe[i] == '/' || safe[i] == '\\' || (unsigned char)safe[i] < 0x20 ||
            (unsigned char)safe[i] == 0x7f)
            safe[i] = '_';
    if (safe[0] == '.' || safe[0] == '\0')
        safe[0] = '_';
    snprintf(path, sizeof(path), "%s/%s", dir, safe);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    while (fd != -1 && off < b->len) {
        ssize_t w = write(fd, b->p + off, b->len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (fd == -1 || off != b->len || fsync(fd) == -1) {
        fprintf(stderr, "gatehouse join: %s: %s\n", path, strerror(errno ? errno : EIO));
        if (fd != -1)
            close(fd);
        return -1;
    }
    close(fd);
    fprintf(log, "  written in plaintext to %s\n", path);
    return 0;
}

static int fetch_all(struct jc_client *c, const struct join_args *a, const char *token)
{
    struct jc_reply r;
    struct jc_manifest m;
    char err[512];
    FILE *log = messages(a);
    size_t i, n = 0, shown = 0;
    int rc = 0;

    if (jc_request(c, "GET", "/api/v1/meetings/manifest", token, NULL, JC_MAX_JSON_BYTES, &r,
                   err, sizeof(err)) == -1) {
        fprintf(stderr, "gatehouse join: %s\n", err);
        return -1;
    }
    if (r.status != 200 || jc_manifest_parse(r.body.p, r.body.len, &m, err, sizeof(err)) == -1) {
        if (r.status != 200)
            fprintf(stderr, "gatehouse join: the manifest was refused (%ld)\n", r.status);
        else
            fprintf(stderr, "gatehouse join: %s\n", err);
        jc_buf_free(&r.body);
        return -1;
    }
    jc_buf_free(&r.body);
    if (a->plain_dir != NULL && mkdir(a->plain_dir, 0700) == -1 && errno != EEXIST) {
        fprintf(stderr, "gatehouse join: %s: %s\n", a->plain_dir, strerror(errno));
        jc_manifest_free(&m);
        return -1;
    }
    for (i = 0; i < m.n && rc == 0; i++) {
        struct jc_buf plain;
        char hex[65];
        if (a->show != NULL && strcmp(a->show, m.res[i].name) != 0)
            continue;
        if (jc_fetch_resource(c, token, &m.res[i], &plain, err, sizeof(err)) == -1) {
            fprintf(stderr, "gatehouse join: ");
            jc_print_safe(stderr, m.res[i].name);
            fprintf(stderr, ": %s\n", err);
            rc = -1;
            break;
        }
        sha256_hex(plain.p, plain.len, hex);
        jc_print_safe(log, m.res[i].name);
        fprintf(log, "\t%s\t%zu bytes\tsha256 %s\n", jc_sniff(plain.p, plain.len), plain.len, hex);
        if (a->show != NULL) {
            if (fwrite(plain.p, 1, plain.len, stdout) != plain.len || fflush(stdout) != 0)
                rc = -1;
            shown++;
        } else if (a->plain_dir != NULL) {
            rc = write_plain(a->plain_dir, m.res[i].name, &plain, log);
        }
        jc_buf_free(&plain);
        n++;
    }
    jc_manifest_free(&m);
    if (rc == 0 && a->show != NULL && shown == 0) {
        fprintf(stderr, "gatehouse join: the meeting has no resource named \"%s\"\n", a->show);
        return -1;
    }
    if (rc == 0)
        fprintf(log, "%zu resource%s decrypted in memory; %s\n", n, n == 1 ? "" : "s",
                a->plain_dir ? "plaintext copies written to disk as listed"
                             : "nothing written to disk");
    return rc;
}

/* POST the join; follow the waiting room until admitted or refused. */
static int join(struct jc_client *c, const struct join_args *a, struct jc_reply *r)
{
    struct gh_sbuf form = {NULL, 0, 0};
    char err[512], *outcome;
    long waited = 0;
    int rc;

    jc_form_add(&form, "uri", a->uri);
    jc_form_add(&form, "key", a->key);
    jc_form_add(&form, "client", a->client);
    if (a->pin)
        jc_form_add(&form, "pin", a->pin);
    if (a->name)
        jc_form_add(&form, "name", a->name);
    rc = jc_request(c, "POST", "/api/v1/meetings/join", NULL, form.p, JC_MAX_JSON_BYTES, r, err,
                    sizeof(err));
    gh_wipe(form.p, form.len);
    free(form.p);
    if (rc == -1) {
        fprintf(stderr, "gatehouse join: %s\n", err);
        return -1;
    }
    outcome = jc_json_field(r->body.p, r->body.len, "outcome");
    if (outcome != NULL && strcmp(outcome, "waiting-room") == 0) {
        char *wid = jc_json_field(r->body.p, r->body.len, "waiting"), path[160];
        fprintf(messages(a), "in the waiting room: a Host must admit you\n");
        fflush(messages(a));
        snprintf(path, sizeof(path), "/api/v1/meetings/waiting/%s",
                 wid && strspn(wid, "0123456789abcdef") == strlen(wid) && strlen(wid) < 100
                     ? wid
                     : "-");
        free(wid);
        while (r->status == 202 && waited++ < a->wait_s) {
            sleep(1); /* a person decides; poll once a second */
            jc_buf_free(&r->body);
            if (jc_request(c, "GET", path, NULL, NULL, JC_MAX_JSON_BYTES, r, err,
                           sizeof(err)) == -1) {
                fprintf(stderr, "gatehouse join: %s\n", err);
                free(outcome);
                return -1;
            }
        }
    }
    free(outcome);
    return 0;
}

static void refused(const struct jc_reply *r, const char *server)
{
    char *outcome = jc_json_field(r->body.p, r->body.len, "outcome");
    char *msg = jc_json_field(r->body.p, r->body.len, "message");
    char *login = jc_json_field(r->body.p, r->body.len, "login");

    if (outcome == NULL) {
        fprintf(stderr, "gatehouse join: refused (%ld): the reply is not the conference "
                        "service's JSON\n", r->status);
        free(msg);
        free(login);
        return;
    }
    if (r->status == 200) {
        fprintf(stderr, "gatehouse join: refused (200): the reply's join token is malformed\n");
        free(outcome);
        free(msg);
        free(login);
        return;
    }
    fprintf(stderr, "gatehouse join: refused (%ld ", r->status);
    jc_print_safe(stderr, outcome);
    fprintf(stderr, ")");
    if (msg) {
        fprintf(stderr, ": ");
        jc_print_safe(stderr, msg);
    }
    fprintf(stderr, "\n");
    if (login && login[0] == '/') {
        fprintf(stderr, "  sign in at %s", server);
        jc_print_safe(stderr, login);
        fprintf(stderr, " in a browser, then pass the __Host-gh-sp cookie with --session\n");
    }
    free(outcome);
    free(msg);
    free(login);
}

int main_join_cmd(int argc, char **argv)
{
    struct join_args a;
    struct jc_client *c = NULL;
    struct jc_reply r;
    char err[512], pinbuf[256] = "", *token = NULL;
    int rc = parse(argc, argv, &a, pinbuf, sizeof(pinbuf));

    if (rc == 0 || rc == 2)
        return usage(rc);
    if (rc == 1)
        return 1;
    rc = 1;
    /* Keys and slides are in this process's memory only: no core file. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
    if (jc_global_init() == -1 || (c = jc_new(&a.o, err, sizeof(err))) == NULL) {
        fprintf(stderr, "gatehouse join: %s\n", c == NULL ? err : "libcurl could not start");
        goto done;
    }
    if (join(c, &a, &r) == -1)
        goto done;
    if (r.status != 200 ||
        (token = jc_json_field(r.body.p, r.body.len, "token")) == NULL || token[0] == '\0' ||
        strlen(token) > JC_MAX_TOKEN || strspn(token, "0123456789abcdefABCDEF-_.") != strlen(token)) {
        refused(&r, a.o.server);
        jc_buf_free(&r.body);
        goto done;
    }
    {
        char *role = jc_json_field(r.body.p, r.body.len, "role");
        char *shown = jc_json_field(r.body.p, r.body.len, "display_name");
        FILE *log = messages(&a);
        fprintf(log, "joined as ");
        jc_print_safe(log, role ? role : "?");
        fprintf(log, " (");
        jc_print_safe(log, shown ? shown : "?");
        fprintf(log, ")\n");
        free(role);
        free(shown);
    }
    jc_buf_free(&r.body);
    rc = fetch_all(c, &a, token) == 0 ? 0 : 1;
    if (jc_request(c, "POST", "/api/v1/meetings/leave", token, NULL, JC_MAX_JSON_BYTES, &r, err,
                   sizeof(err)) == 0)
        jc_buf_free(&r.body);
done:
    if (token != NULL) {
        gh_wipe(token, strlen(token));
        free(token);
    }
    gh_wipe(pinbuf, sizeof(pinbuf));
    jc_free(c);
    return rc;
}
