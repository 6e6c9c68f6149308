/*
 * The client's transport on libcurl. One easy handle per client, so
 * requests to the same server reuse the connection. Every reply is read
 * through our two callbacks, which are where the limits hold: libcurl parses
 * HTTP/1.1 (chunks, lengths, status) and we refuse to store more than asked.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "client.h"

struct jc_client {
    CURL *h;
    char base[300];
    char *cookie;
    const char *cacert, *proxy;
    long timeout_s;
    int plain;
};

/* Per request: where the reply goes and what stopped it. */
struct sink {
    struct jc_buf *body;
    size_t max_body, header_bytes;
    int over_body, over_header;
};

int jc_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void jc_buf_free(struct jc_buf *b)
{
    if (b->p != NULL)
        gh_wipe(b->p, b->cap);
    free(b->p);
    memset(b, 0, sizeof(*b));
}

int jc_buf_add(struct jc_buf *b, const void *p, size_t n, size_t limit)
{
    if (n > limit || b->len > limit - n)
        return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        unsigned char *q;
        while (cap < b->len + n + 1)
            cap *= 2;
        /* Not realloc: the old block may hold plaintext, wiped before it goes. */
        q = malloc(cap);
        if (q == NULL)
            return -1;
        if (b->len)
            memcpy(q, b->p, b->len);
        if (b->p != NULL)
            gh_wipe(b->p, b->cap);
        free(b->p);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;

    if (jc_buf_add(s->body, p, size * n, s->max_body) == -1) {
        s->over_body = 1;
        return 0; /* libcurl stops the transfer */
    }
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;

    (void)p;
    s->header_bytes += size * n;
    if (s->header_bytes > JC_MAX_HEADER_BYTES) {
        s->over_header = 1;
        return 0;
    }
    return size * n;
}

/* https://HOST[:PORT] and nothing else: no user, path, query or fragment. */
static int server_ok(const char *s, const char *scheme)
{
    size_t sl = strlen(scheme);
    const char *h;

    if (strncmp(s, scheme, sl) != 0)
        return 0;
    h = s + sl;
    if (*h == '\0' || strlen(h) > 260)
        return 0;
    for (; *h; h++)
        if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
              *h == '.' || *h == '-' || *h == ':' || *h == '[' || *h == ']'))
            return 0;
    return 1;
}

struct jc_client *jc_new(const struct jc_options *o, char *err, size_t errlen)
{
    struct jc_client *c;
    const char *scheme = o->plain_http ? "http://" : "https://";

    if (!server_ok(o->server, scheme)) {
        snprintf(err, errlen, "--server must be %sHOST[:PORT] (got \"%s\")", scheme, o->server);
        return NULL;
    }
    if (o->session != NULL && (o->session[0] == '\0' ||
                               strspn(o->session, "0123456789abcdef") != strlen(o->session))) {
        snprintf(err, errlen, "--session must be the cookie's hexadecimal value");
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->h = curl_easy_init()) == NULL) {
        free(c);
        snprintf(err, errlen, "libcurl could not start");
        return NULL;
    }
    gh_strlcpy(c->base, o->server, sizeof(c->base));
    if (o->session != NULL) {
        size_t n = strlen(o->session) + 16;
        c->cookie = malloc(n);
        if (c->cookie == NULL)
            abort();
        snprintf(c->cookie, n, "__Host-gh-sp=%s", o->session);
    }
    c->cacert = o->cacert;
    c->proxy = o->proxy;
    c->timeout_s = o->timeout_s > 0 ? o->timeout_s : 600;
    c->plain = o->plain_http;
    return c;
}

void jc_free(struct jc_client *c)
{
    if (c == NULL)
        return;
    curl_easy_cleanup(c->h);
    if (c->cookie != NULL) {
        gh_wipe(c->cookie, strlen(c->cookie));
        free(c->cookie);
    }
    free(c);
}

static void setup(struct jc_client *c, struct sink *s, char *errbuf)
{
    CURL *h = c->h;

    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, c->plain ? "http" : "https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROXY, c->proxy ? c->proxy : "");
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (c->cacert != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s);
    /* A server that trickles (endless headers a byte at a time) is cut off. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->max_body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "gatehouse-join/" GH_VERSION);
    if (c->cookie != NULL)
        curl_easy_setopt(h, CURLOPT_COOKIE, c->cookie);
}

int jc_request(struct jc_client *c, const char *method, const char *path, const char *bearer,
               const char *form, size_t max_body, struct jc_reply *out, char *err, size_t errlen)
{
    char url[2048], errbuf[CURL_ERROR_SIZE] = "", auth[JC_MAX_TOKEN + 32];
    struct curl_slist *hdrs = NULL;
    struct sink s;
    CURLcode rc;

    memset(out, 0, sizeof(*out));
    memset(&s, 0, sizeof(s));
    s.body = &out->body;
    s.max_body = max_body;
    if (path[0] != '/' || path[1] == '/' || strlen(path) > 1024 ||
        strcspn(path, " \t\r\n\\#") != strlen(path)) {
        snprintf(err, errlen, "%s: not a path on the server", path);
        return -1;
    }
    snprintf(url, sizeof(url), "%s%s", c->base, path);
    setup(c, &s, errbuf);
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (bearer != NULL && strlen(bearer) > JC_MAX_TOKEN) {
        snprintf(err, errlen, "%s %s: the token is longer than %d bytes", method, path,
                 JC_MAX_TOKEN);
        return -1;
    }
    if (bearer != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
        hdrs = curl_slist_append(hdrs, auth);
        gh_wipe(auth, sizeof(auth));
    }
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hdrs);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c->h, CURLOPT_POST, 1L);
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, form ? form : "");
    } else {
        curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
    }
    rc = curl_easy_perform(c->h);
    for (struct curl_slist *l = hdrs; l != NULL; l = l->next)
        gh_wipe(l->data, strlen(l->data)); /* the bearer token */
    curl_slist_free_all(hdrs);
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &out->status);
    if (rc == CURLE_OK && out->status >= 100)
        return 0;
    if (s.over_header)
        snprintf(err, errlen, "%s %s: the server's headers exceed %d bytes", method, path,
                 JC_MAX_HEADER_BYTES);
    else if (s.over_body || rc == CURLE_FILESIZE_EXCEEDED)
        snprintf(err, errlen, "%s %s: the reply exceeds %zu bytes", method, path, max_body);
    else if (rc == CURLE_PARTIAL_FILE)
        snprintf(err, errlen, "%s %s: the reply was cut short (%s)", method, path,
                 errbuf[0] ? errbuf : curl_easy_strerror(rc));
    else
        snprintf(err, errlen, "%s %s: %s", method, path,
                 errbuf[0] ? errbuf : curl_easy_strerror(rc));
    jc_buf_free(&out->body);
    return -1;
}

void jc_form_add(struct gh_sbuf *f, const char *k, const char *v)
{
    gh_sbuf_printf(f, "%s%s=", f->len ? "&" : "", k);
    for (; *v; v++) {
        unsigned char ch = (unsigned char)*v;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~')
            gh_sbuf_printf(f, "%c", ch);
        else
            gh_sbuf_printf(f, "%%%02X", ch);
    }
}
