/*
 * gatehouse join: the participant's side of the seeds' call sequence,
 * through the public service like any client. Join (PIN and/or a SAML
 * session), receive the token, fetch the manifest (URLs and keys), download
 * every resource, decrypt and inflate it in memory, write the slides.
 *
 *   gatehouse join URI --key KEY --server https://HOST[:PORT] [--pin PIN]
 *        [--name NAME] [--session SESSION] [--cacert FILE] [--out DIR]
 *        [--wait SECONDS] [--client web|web-legacy|device]
 *
 * SESSION is the value of the __Host-gh-sp cookie a browser sign-in left
 * (the CLI does not drive an identity provider's login page). Exit status:
 * 0 slides written, 1 refused or failed, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../certs/certs.h"
#include "../common/common.h"
#include "../slides/slides.h"
#include "main_int.h"

#define MAX_BODY (1024L * 1024 * 1024)

struct target {
    char host[256], port[8];
    SSL_CTX *ctx;
    const char *session;
};

struct reply {
    int status;
    char *body;
    size_t len;
};

static int dial(const struct target *t)
{
    struct addrinfo hints, *res = NULL, *a;
    int fd = -1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(t->host, t->port, &hints, &res) != 0)
        return -1;
    for (a = res; a != NULL && fd == -1; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd != -1 && connect(fd, a->ai_addr, a->ai_addrlen) == -1) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

static int read_all(SSL *ssl, struct gh_sbuf *in)
{
    char buf[65536];

    for (;;) {
        int n = SSL_read(ssl, buf, sizeof(buf));
        if (n <= 0) {
            int e = SSL_get_error(ssl, n);
            return e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ? 0 : -1;
        }
        if (in->len + (size_t)n > (size_t)MAX_BODY)
            return -1;
        if (in->len + (size_t)n + 1 > in->cap) {
            size_t cap = in->cap ? in->cap : 65536;
            char *p;
            while (cap < in->len + (size_t)n + 1)
                cap *= 2;
            p = realloc(in->p, cap);
            if (p == NULL)
                abort();
            in->p = p;
            in->cap = cap;
        }
        memcpy(in->p + in->len, buf, (size_t)n);
        in->len += (size_t)n;
        in->p[in->len] = '\0';
    }
}

/* Un-chunks a body in place; -1 when malformed. */
static long dechunk(char *b, size_t len)
{
    size_t r = 0, w = 0;

    for (;;) {
        char *end;
        unsigned long n = strtoul(b + r, &end, 16);
        char *crlf = strstr(b + r, "\r\n");
        if (end == b + r || crlf == NULL)
            return -1;
        r = (size_t)(crlf - b) + 2;
        if (n == 0)
            return (long)w;
        if (r + n + 2 > len)
            return -1;
        memmove(b + w, b + r, n);
        w += n;
        r += n + 2;
    }
}

/* One request on a fresh connection (Connection: close). */
static int http(const struct target *t, const char *method, const char *path, const char *token,
                const char *form, struct reply *out)
{
    struct gh_sbuf req = {NULL, 0, 0}, in = {NULL, 0, 0};
    SSL *ssl = NULL;
    int fd = dial(t), rc = -1;
    char *hdr_end, *cl, *te;
    size_t hlen;

    memset(out, 0, sizeof(*out));
    if (fd == -1) {
        fprintf(stderr, "gatehouse join: cannot connect to %s:%s\n", t->host, t->port);
        return -1;
    }
    ssl = SSL_new(t->ctx);
    if (ssl == NULL || certs_client_set_peer(ssl, t->host) == -1 || SSL_set_fd(ssl, fd) != 1 ||
        SSL_connect(ssl) != 1) {
        char e[256];
        fprintf(stderr, "gatehouse join: TLS with %s failed: %s\n", t->host,
                certs_last_error(e, sizeof(e)));
        goto done;
    }
    gh_sbuf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n"
                         "User-Agent: gatehouse-join/%s\r\n",
                   method, path, t->host, t->port, GH_VERSION);
    if (token)
        gh_sbuf_printf(&req, "Authorization: Bearer %s\r\n", token);
    if (t->session)
        gh_sbuf_printf(&req, "Cookie: __Host-gh-sp=%s\r\n", t->session);
    if (form)
        gh_sbuf_printf(&req, "Content-Type: application/x-www-form-urlencoded\r\n"
                             "Content-Length: %zu\r\n\r\n%s",
                       strlen(form), form);
    else if (strcmp(method, "POST") == 0)
        gh_sbuf_printf(&req, "Content-Length: 0\r\n\r\n");
    else
        gh_sbuf_printf(&req, "\r\n");
    if (SSL_write(ssl, req.p, (int)req.len) != (int)req.len || read_all(ssl, &in) == -1 ||
        in.p == NULL) {
        fprintf(stderr, "gatehouse join: %s %s: the connection failed\n", method, path);
        goto done;
    }
    hdr_end = strstr(in.p, "\r\n\r\n");
    if (hdr_end == NULL || sscanf(in.p, "HTTP/1.%*d %d", &out->status) != 1)
        goto bad;
    hlen = (size_t)(hdr_end - in.p) + 4;
    *hdr_end = '\0';
    cl = strcasestr(in.p, "\r\nContent-Length:");
    te = strcasestr(in.p, "\r\nTransfer-Encoding: chunked");
    out->len = in.len - hlen;
    out->body = malloc(out->len + 1);
    if (out->body == NULL)
        abort();
    memcpy(out->body, in.p + hlen, out->len);
    out->body[out->len] = '\0';
    if (te != NULL) {
        long n = dechunk(out->body, out->len);
        if (n < 0)
            goto bad;
        out->len = (size_t)n;
        out->body[n] = '\0';
    } else if (cl != NULL && strtoul(cl + 17, NULL, 10) != out->len) {
        goto bad; /* cut short */
    }
    rc = 0;
    goto done;
bad:
    fprintf(stderr, "gatehouse join: %s %s: malformed response\n", method, path);
    free(out->body);
    out->body = NULL;
done:
    if (ssl != NULL) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    close(fd);
    free(req.p);
    free(in.p);
    return rc;
}

/* The string value of "field" in our own JSON (escapes \" \\ \/ \uXXXX
 * for ASCII); NULL when absent. Starts looking at from. */
static char *json_str(const char *from, const char *field, const char **after)
{
    char pat[64];
    const char *p;
    struct gh_sbuf o = {NULL, 0, 0};

    snprintf(pat, sizeof(pat), "\"%s\":\"", field);
    p = strstr(from, pat);
    if (p == NULL)
        return NULL;
    p += strlen(pat);
    gh_sbuf_printf(&o, "%s", "");
    while (*p && *p != '"') {
        if (*p == '\\' && p[1]) {
            p++;
            if (*p == 'u' && strlen(p) >= 5) {
                unsigned v = (unsigned)strtoul((char[5]){p[1], p[2], p[3], p[4], 0}, NULL, 16);
                gh_sbuf_printf(&o, "%c", v < 0x80 ? (char)v : '?');
                p += 5;
                continue;
            }
            gh_sbuf_printf(&o, "%c", *p == 'n' ? '\n' : *p == 't' ? '\t' : *p);
            p++;
            continue;
        }
        gh_sbuf_printf(&o, "%c", *p++);
    }
    if (after)
        *after = p;
    return o.p;
}

static void form_add(struct gh_sbuf *f, const char *k, const char *v)
{
    gh_sbuf_printf(f, "%s%s=", f->len ? "&" : "", k);
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~' || c == ':')
            gh_sbuf_printf(f, "%c", c);
        else
            gh_sbuf_printf(f, "%%%02X", c);
    }
}

static int write_file(const char *dir, const char *name, const unsigned char *p, size_t n)
{
    char path[2048], safe[256];
    size_t i;
    int fd;

    /* The name is the server's: keep it a plain file name in DIR. */
    gh_strlcpy(safe, name, sizeof(safe));
    for (i = 0; safe[i]; i++)
        if (safe[i] == '/' || safe[i] == '\\' || (unsigned char)safe[i] < 0x20)
            safe[i] = '_';
    if (safe[0] == '.' || safe[0] == '\0')
        safe[0] = '_';
    snprintf(path, sizeof(path), "%s/%s", dir, safe);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd == -1 || write(fd, p, n) != (ssize_t)n || fsync(fd) == -1) {
        fprintf(stderr, "gatehouse join: %s: %s\n", path, strerror(errno));
        if (fd != -1)
            close(fd);
        return -1;
    }
    close(fd);
    printf("%s\t%zu bytes\n", path, n);
    return 0;
}

static int fetch_all(const struct target *t, const char *token, const char *dir)
{
    struct reply r;
    const char *p;
    int rc = 0, n = 0;

    if (http(t, "GET", "/api/v1/meetings/manifest", token, NULL, &r) == -1)
        return -1;
    if (r.status != 200) {
        fprintf(stderr, "gatehouse join: the manifest was refused (%d)\n", r.status);
        free(r.body);
        return -1;
    }
    if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
        fprintf(stderr, "gatehouse join: %s: %s\n", dir, strerror(errno));
        free(r.body);
        return -1;
    }
    p = strstr(r.body, "\"resources\":[");
    while (p != NULL && rc == 0) {
        char *name = json_str(p, "name", &p), *url = name ? json_str(p, "url", &p) : NULL;
        char *key64 = url ? json_str(p, "key", &p) : NULL;
        unsigned char key[32], *plain = NULL;
        struct reply c;
        size_t plen = 0;
        if (key64 == NULL) {
            free(name);
            free(url);
            break;
        }
        if (EVP_DecodeBlock(key, (const unsigned char *)key64, (int)strlen(key64)) < 16 ||
            http(t, "GET", url, token, NULL, &c) == -1) {
            rc = -1;
        } else {
            if (c.status == 200)
                plain = slides_decrypt((const unsigned char *)c.body, c.len, key, &plen);
            if (plain == NULL) {
                fprintf(stderr, "gatehouse join: %s does not decrypt with its key (%d)\n", name,
                        c.status);
                rc = -1;
            } else {
                rc = write_file(dir, name, plain, plen);
                gh_wipe(plain, plen);
                n++;
            }
            free(plain);
            free(c.body);
        }
        gh_wipe(key, sizeof(key));
        gh_wipe(key64, strlen(key64));
        free(name);
        free(url);
        free(key64);
    }
    free(r.body);
    if (rc == 0)
        printf("%d resource%s decrypted into %s\n", n, n == 1 ? "" : "s", dir);
    return rc;
}

int main_join_cmd(int argc, char **argv)
{
    const char *uri = NULL, *key = NULL, *server = NULL, *pin = NULL, *name = NULL;
    const char *cacert = NULL, *out = "slides", *client = "web";
    struct target t;
    struct gh_sbuf form = {NULL, 0, 0};
    struct reply r;
    char err[512], *token = NULL, *outcome;
    long wait_s = 300;
    int i, rc = 1;

    memset(&t, 0, sizeof(t));
    for (i = 2; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (o[0] != '-' && uri == NULL) {
            uri = o;
            continue;
        }
        if (v == NULL)
            goto usage;
        if (strcmp(o, "--key") == 0)
            key = v;
        else if (strcmp(o, "--server") == 0)
            server = v;
        else if (strcmp(o, "--pin") == 0)
            pin = v;
        else if (strcmp(o, "--name") == 0)
            name = v;
        else if (strcmp(o, "--session") == 0)
            t.session = v;
        else if (strcmp(o, "--cacert") == 0)
            cacert = v;
        else if (strcmp(o, "--out") == 0)
            out = v;
        else if (strcmp(o, "--client") == 0)
            client = v;
        else if (strcmp(o, "--wait") != 0 || gh_parse_long(v, 0, 86400, &wait_s) == -1)
            goto usage;
        i++;
    }
    if (uri == NULL || key == NULL || server == NULL || strncmp(server, "https://", 8) != 0)
        goto usage;
    {
        const char *h = server + 8, *colon = strrchr(h, ':'), *slash = strchr(h, '/');
        size_t hl = colon ? (size_t)(colon - h) : slash ? (size_t)(slash - h) : strlen(h);
        if (hl == 0 || hl >= sizeof(t.host))
            goto usage;
        memcpy(t.host, h, hl);
        gh_strlcpy(t.port, colon ? colon + 1 : "443", sizeof(t.port));
        t.port[strcspn(t.port, "/")] = '\0';
    }
    if (t.session && strspn(t.session, "0123456789abcdef") != strlen(t.session))
        goto usage;
    t.ctx = certs_client_ctx_new(cacert, err, sizeof(err));
    if (t.ctx == NULL) {
        fprintf(stderr, "gatehouse join: %s\n", err);
        return 1;
    }
    form_add(&form, "uri", uri);
    form_add(&form, "key", key);
    form_add(&form, "client", client);
    if (pin)
        form_add(&form, "pin", pin);
    if (name)
        form_add(&form, "name", name);
    if (http(&t, "POST", "/api/v1/meetings/join", NULL, form.p, &r) == -1)
        goto done;
    outcome = json_str(r.body, "outcome", NULL);
    if (outcome != NULL && strcmp(outcome, "waiting-room") == 0) {
        char *wid = json_str(r.body, "waiting", NULL), path[128];
        long waited = 0;
        printf("in the waiting room: a Host must admit you\n");
        fflush(stdout);
        snprintf(path, sizeof(path), "/api/v1/meetings/waiting/%s", wid ? wid : "-");
        free(wid);
        while (r.status == 202 && waited++ < wait_s) {
            sleep(1); /* a person decides; poll once a second */
            free(r.body);
            free(outcome);
            if (http(&t, "GET", path, NULL, NULL, &r) == -1)
                goto done;
            outcome = json_str(r.body, "outcome", NULL);
        }
    }
    if (r.status != 200 || (token = json_str(r.body, "token", NULL)) == NULL) {
        char *msg = json_str(r.body ? r.body : "", "message", NULL);
        char *login = json_str(r.body ? r.body : "", "login", NULL);
        fprintf(stderr, "gatehouse join: refused (%d %s)%s%s\n", r.status,
                outcome ? outcome : "?", msg ? ": " : "", msg ? msg : "");
        if (login)
            fprintf(stderr, "  sign in at %s%s in a browser, then pass the __Host-gh-sp cookie "
                            "with --session\n", server, login);
        free(msg);
        free(login);
        free(outcome);
        free(r.body);
        goto done;
    }
    {
        char *role = json_str(r.body, "role", NULL), *shown = json_str(r.body, "display_name", NULL);
        printf("joined as %s (%s)\n", role ? role : "?", shown ? shown : "?");
        free(role);
        free(shown);
    }
    free(outcome);
    free(r.body);
    rc = fetch_all(&t, token, out) == 0 ? 0 : 1;
    if (http(&t, "POST", "/api/v1/meetings/leave", token, NULL, &r) == 0)
        free(r.body);
    gh_wipe(token, strlen(token));
    free(token);
done:
    free(form.p);
    SSL_CTX_free(t.ctx);
    return rc;
usage:
    fprintf(stderr, "usage: gatehouse join URI --key KEY --server https://HOST[:PORT] [--pin PIN]\n"
                    "         [--name NAME] [--session SESSION] [--cacert FILE] [--out DIR]\n"
                    "         [--wait SECONDS] [--client web|web-legacy|device]\n");
    return 2;
}
