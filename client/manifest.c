/*
 * Reading the conference service's JSON (jansson) and its resources. The
 * server is not trusted: every field is checked for type and range, a
 * resource's URL must be a content path on the same server (never a host or
 * scheme of the server's choosing), and a resource must arrive at exactly the
 * length the manifest states and decrypt to exactly its stated size.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "../slides/slides.h"
#include "client.h"

#define MAX_RESOURCES 10000
#define CONTENT_PREFIX "/api/v1/content/"

static json_t *load(const void *body, size_t len)
{
    json_error_t e;

    return json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
}

/* A string field without NUL bytes inside, at most max bytes; NULL if not. */
static const char *str_field(json_t *o, const char *name, size_t max)
{
    json_t *v = json_object_get(o, name);
    const char *s;

    if (!json_is_string(v))
        return NULL;
    s = json_string_value(v);
    if (strlen(s) != json_string_length(v) || strlen(s) > max)
        return NULL;
    return s;
}

char *jc_json_field(const void *body, size_t len, const char *name)
{
    json_t *j = len ? load(body, len) : NULL;
    const char *s = json_is_object(j) ? str_field(j, name, 4096) : NULL;
    char *r = s ? gh_strdup(s) : NULL;

    json_decref(j);
    return r;
}

static int path_ok(const char *p)
{
    size_t n = strlen(CONTENT_PREFIX), id;

    if (strncmp(p, CONTENT_PREFIX, n) != 0)
        return 0;
    id = strspn(p + n, "0123456789abcdefABCDEF");
    return id > 0 && id <= 128 && p[n + id] == '\0';
}

static int key_ok(const char *k64, unsigned char key[16])
{
    unsigned char raw[18];

    /* 16 bytes are 24 base64 characters, the last two '='. */
    if (strlen(k64) != 24 || strcmp(k64 + 22, "==") != 0 ||
        strspn(k64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") != 22 ||
        EVP_DecodeBlock(raw, (const unsigned char *)k64, 24) != 18)
        return 0;
    memcpy(key, raw, 16);
    gh_wipe(raw, sizeof(raw));
    return 1;
}

static int int_field(json_t *o, const char *name, long long max, long long *out)
{
    json_t *v = json_object_get(o, name);

    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
        return 0;
    *out = json_integer_value(v);
    return 1;
}

static int resource(json_t *e, struct jc_resource *r, char *err, size_t errlen, size_t i)
{
    const char *name, *url, *key;
    unsigned char k[16];

    name = json_is_object(e) ? str_field(e, "name", 255) : NULL;
    url = name ? str_field(e, "url", 256) : NULL;
    key = url ? str_field(e, "key", 64) : NULL;
    if (name == NULL || name[0] == '\0' || url == NULL || key == NULL) {
        snprintf(err, errlen, "the manifest's resource %zu lacks a name, url or key", i + 1);
        return -1;
    }
    if (!path_ok(url)) {
        snprintf(err, errlen, "the manifest's resource %zu points outside %s", i + 1,
                 CONTENT_PREFIX);
        return -1;
    }
    if (!key_ok(key, k)) {
        snprintf(err, errlen, "the manifest's resource %zu has no 16-byte key", i + 1);
        return -1;
    }
    if (!int_field(e, "size", JC_MAX_RESOURCE_BYTES, &r->size) ||
        !int_field(e, "stored", JC_MAX_RESOURCE_BYTES, &r->stored)) {
        snprintf(err, errlen, "the manifest's resource %zu has no size within %ld bytes", i + 1,
                 JC_MAX_RESOURCE_BYTES);
        gh_wipe(k, sizeof(k));
        return -1;
    }
    /* Only a whole entry holds a key: the caller wipes those it counted. */
    memcpy(r->key, k, sizeof(k));
    gh_wipe(k, sizeof(k));
    r->name = gh_strdup(name);
    r->path = gh_strdup(url);
    return 0;
}

int jc_manifest_parse(const void *body, size_t len, struct jc_manifest *m, char *err,
                      size_t errlen)
{
    json_t *j = load(body, len), *list;
    const char *meeting, *role, *shown;
    size_t i, n;
    int rc = -1;

    memset(m, 0, sizeof(*m));
    list = json_is_object(j) ? json_object_get(j, "resources") : NULL;
    meeting = json_is_object(j) ? str_field(j, "meeting", 255) : NULL;
    role = json_is_object(j) ? str_field(j, "role", 16) : NULL;
    shown = json_is_object(j) ? str_field(j, "display_name", 255) : NULL;
    if (!json_is_array(list) || meeting == NULL || role == NULL || shown == NULL) {
        snprintf(err, errlen, "the manifest is not the conference service's JSON");
        goto done;
    }
    n = json_array_size(list);
    if (n > MAX_RESOURCES) {
        snprintf(err, errlen, "the manifest lists %zu resources (at most %d)", n, MAX_RESOURCES);
        goto done;
    }
    m->meeting = gh_strdup(meeting);
    m->role = gh_strdup(role);
    m->display_name = gh_strdup(shown);
    m->res = gh_calloc(n ? n : 1, sizeof(*m->res));
    for (i = 0; i < n; i++) {
        if (resource(json_array_get(list, i), &m->res[i], err, errlen, i) == -1)
            goto done;
        m->n++;
    }
    rc = 0;
done:
    json_decref(j);
    if (rc == -1)
        jc_manifest_free(m);
    return rc;
}

void jc_manifest_free(struct jc_manifest *m)
{
    size_t i;

    for (i = 0; i < m->n; i++) {
        gh_wipe(m->res[i].key, sizeof(m->res[i].key));
        free(m->res[i].name);
        free(m->res[i].path);
    }
    free(m->res);
    free(m->meeting);
    free(m->role);
    free(m->display_name);
    memset(m, 0, sizeof(*m));
}

int jc_fetch_resource(struct jc_client *c, const char *bearer, const struct jc_resource *r,
                      struct jc_buf *plain, char *err, size_t errlen)
{
    struct jc_reply rep;
    unsigned char *p;
    size_t plen = 0;

    memset(plain, 0, sizeof(*plain));
    if (jc_request(c, "GET", r->path, bearer, NULL, (size_t)r->stored, &rep, err, errlen) == -1)
        return -1;
    if (rep.status != 200 || rep.body.len != (size_t)r->stored) {
        snprintf(err, errlen, "%s: %ld with %zu of %lld bytes", r->path, rep.status, rep.body.len,
                 r->stored);
        jc_buf_free(&rep.body);
        return -1;
    }
    p = slides_decrypt(rep.body.p, rep.body.len, r->key, (size_t)r->size, &plen);
    jc_buf_free(&rep.body);
    if (p == NULL || plen != (size_t)r->size) {
        if (p != NULL) {
            gh_wipe(p, plen);
            free(p);
        }
        snprintf(err, errlen, "%s does not decrypt with its key to %lld bytes", r->path, r->size);
        return -1;
    }
    plain->p = p;
    plain->len = plain->cap = plen;
    return 0;
}

const char *jc_sniff(const unsigned char *p, size_t n)
{
    size_t i;

    if (n >= 5 && memcmp(p, "%PDF-", 5) == 0)
        return "pdf";
    if (n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
        return "png";
    if (n >= 3 && memcmp(p, "\xff\xd8\xff", 3) == 0)
        return "jpeg";
    if (n >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0))
        return "gif";
    for (i = 0; i < n && i < 4096; i++)
        if (p[i] < 0x09 || (p[i] > 0x0d && p[i] < 0x20) || p[i] == 0x7f)
            return "data";
    return "text";
}

void jc_print_safe(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch >= 0x7f || ch == '\\')
            fprintf(f, "\\x%02x", ch);
        else
            fputc(ch, f);
    }
}
