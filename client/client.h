/*
 * The participant's HTTPS client: what `gatehouse join` uses to talk to a
 * conference service it does not trust any more than a browser would.
 *
 * Transport is libcurl (HTTP/1.1, TLS 1.2+, peer and name verified, no
 * redirects, no content decoding); replies are read into memory under hard
 * limits (header bytes, body bytes, low speed, total time), so a hostile
 * server can make a request fail with a clear message but not make the
 * client grow, hang or crash. JSON is read with jansson.
 *
 * Nothing here writes to disk: decrypted content lives in jc_buf memory that
 * jc_buf_free wipes.
 */
#ifndef GH_CLIENT_H
#define GH_CLIENT_H

#include <stddef.h>
#include <stdio.h>

#include "../common/common.h"

/* Upper bounds for one reply. */
#define JC_MAX_HEADER_BYTES (64 * 1024)
#define JC_MAX_JSON_BYTES (1024 * 1024)
#define JC_MAX_RESOURCE_BYTES (1024L * 1024 * 1024)
#define JC_MAX_TOKEN 512 /* a bearer token the client sends; longer: refused */

struct jc_client;

struct jc_buf {
    unsigned char *p;
    size_t len, cap;
};

struct jc_reply {
    long status;
    struct jc_buf body;
};

struct jc_options {
    const char *server;     /* https://HOST[:PORT], no path */
    const char *cacert;     /* NULL: the system's trust store */
    const char *session;    /* __Host-gh-sp cookie value, or NULL */
    const char *proxy;      /* a proxy URL the user named, or NULL: none (the environment's
                             * https_proxy is not followed without being asked) */
    long timeout_s;         /* whole request; 0: 600 */
    int plain_http;         /* fuzzing only: http:// instead of https:// */
};

/* One global init per process (libcurl's). */
int jc_global_init(void);

/* NULL with err filled when the options are not usable. */
struct jc_client *jc_new(const struct jc_options *o, char *err, size_t errlen);
void jc_free(struct jc_client *c);

/* One request; form is a urlencoded body (POST) or NULL. max_body bounds the
 * reply's body. 0 on a complete reply (any status), -1 with err set (a
 * transport failure, a reply over a limit, or one cut short). */
int jc_request(struct jc_client *c, const char *method, const char *path, const char *bearer,
               const char *form, size_t max_body, struct jc_reply *out, char *err, size_t errlen);

void jc_buf_free(struct jc_buf *b);
/* Appends, -1 past limit (nothing appended). */
int jc_buf_add(struct jc_buf *b, const void *p, size_t n, size_t limit);

/* An application/x-www-form-urlencoded pair, appended to f. */
void jc_form_add(struct gh_sbuf *f, const char *k, const char *v);

/* --- the conference service's replies --------------------------------- */

struct jc_resource {
    char *name;         /* the server's name: only ever printed escaped */
    char *path;         /* checked: /api/v1/content/<id> on the same server */
    unsigned char key[16];
    long long size;     /* plaintext bytes, as the server says */
    long long stored;   /* encrypted bytes, the exact reply length required */
};

struct jc_manifest {
    char *meeting, *role, *display_name;
    struct jc_resource *res;
    size_t n;
};

/* Reads a manifest reply body; -1 with err on anything not as specified. */
int jc_manifest_parse(const void *body, size_t len, struct jc_manifest *m, char *err,
                      size_t errlen);
void jc_manifest_free(struct jc_manifest *m);

/* The string field `name` of a JSON object body, or NULL (absent, not a
 * string, not JSON). Caller frees. */
char *jc_json_field(const void *body, size_t len, const char *name);

/* Downloads one resource and decrypts it into plain (wiped by
 * jc_buf_free). -1 with err when refused, over its size, or not decrypting
 * to its stated size under its key. */
int jc_fetch_resource(struct jc_client *c, const char *bearer, const struct jc_resource *r,
                      struct jc_buf *plain, char *err, size_t errlen);

/* What a resource's bytes look like: "pdf", "png", "jpeg", "gif", "text" or
 * "data". */
const char *jc_sniff(const unsigned char *p, size_t n);

/* s with control characters and non-ASCII escaped (\xNN), for terminals. */
void jc_print_safe(FILE *f, const char *s);

#endif
