/* String and number helpers with explicit bounds (no atoi, no strcpy). */
#include "common.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int gh_strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = strlen(src);

    if (size == 0)
        return -1;
    if (n >= size) {
        memcpy(dst, src, size - 1);
        dst[size - 1] = '\0';
        return -1;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

void *gh_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL) {
        gh_log_err("out of memory");
        abort();
    }
    return p;
}

void *gh_realloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);

    if (q == NULL) {
        gh_log_err("out of memory");
        abort();
    }
    return q;
}

char *gh_strndup(const char *s, size_t n)
{
    char *p = gh_calloc(1, n + 1);

    memcpy(p, s, n);
    return p;
}

char *gh_strdup(const char *s)
{
    return gh_strndup(s, strlen(s));
}

int gh_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    if (*s == '\0' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Splits a number and a unit suffix; the number must be plain decimal. */
static int number_unit(const char *s, long long *num, const char **unit)
{
    long long v = 0;
    const char *p = s;

    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        if (v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    *num = v;
    *unit = p;
    return 0;
}

int gh_parse_duration_ms(const char *s, long long *out)
{
    static const struct {
        const char *unit;
        long long mul;
    } units[] = {{"ms", 1}, {"s", 1000}, {"", 1000}, {"m", 60000}, {"h", 3600000},
                 {"d", 86400000}};
    const char *unit;
    long long v;
    size_t i;

    if (number_unit(s, &v, &unit) == -1)
        return -1;
    for (i = 0; i < GH_ARRAY_LEN(units); i++) {
        if (strcmp(unit, units[i].unit) == 0) {
            if (v > INT64_MAX / units[i].mul)
                return -1;
            *out = v * units[i].mul;
            return 0;
        }
    }
    return -1;
}

int gh_parse_size(const char *s, long long *out)
{
    const char *unit;
    long long v, mul;

    if (number_unit(s, &v, &unit) == -1)
        return -1;
    if (*unit == '\0')
        mul = 1;
    else if (strcasecmp(unit, "k") == 0)
        mul = 1024;
    else if (strcasecmp(unit, "m") == 0)
        mul = 1024 * 1024;
    else if (strcasecmp(unit, "g") == 0)
        mul = 1024LL * 1024 * 1024;
    else
        return -1;
    if (v > INT64_MAX / mul)
        return -1;
    *out = v * mul;
    return 0;
}

void gh_sbuf_printf(struct gh_sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        /* an empty buffer has no pointer to offset yet (NULL + 0 is UB) */
        n = vsnprintf(b->p ? b->p + b->len : NULL, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)(n > 0 ? n : 0) + 256;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL) {
            gh_log_err("out of memory");
            abort();
        }
    }
}

uint64_t gh_fnv1a(const void *p, size_t len)
{
    const unsigned char *c = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= c[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

int gh_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void gh_hex(const void *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    const unsigned char *p = b;
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

int gh_unhex(const char *s, unsigned char *out, size_t n)
{
    size_t i;

    for (i = 0; i < 2 * n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return -1; /* also the end of a string shorter than 2n */
    if (s[2 * n] != '\0')
        return -1;
    for (i = 0; i < n; i++)
        out[i] = (unsigned char)(gh_hexval((unsigned char)s[2 * i]) << 4 |
                                 gh_hexval((unsigned char)s[2 * i + 1]));
    return 0;
}

int gh_split_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon;
    size_t hl;
    long p;

    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        hl = (size_t)(close - s - 1);
        s++;
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen)
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (gh_parse_long(colon + 1, 1, 65535, &p) == -1)
        return -1;
    *port = (uint16_t)p;
    return 0;
}

void gh_wipe(void *p, size_t n)
{
    explicit_bzero(p, n);
}

/* One form-encoded component, decoded; NULL when it decodes to a NUL. */
static char *form_decode(const char *v, size_t vl)
{
    char *out = gh_calloc(1, vl + 1);
    size_t j, o = 0;

    for (j = 0; j < vl; j++) {
        if (v[j] == '+') {
            out[o++] = ' ';
        } else if (v[j] == '%' && j + 2 < vl && gh_hexval((unsigned char)v[j + 1]) >= 0 &&
                   gh_hexval((unsigned char)v[j + 2]) >= 0) {
            out[o++] = (char)(gh_hexval((unsigned char)v[j + 1]) << 4 |
                              gh_hexval((unsigned char)v[j + 2]));
            j += 2;
        } else {
            out[o++] = v[j];
        }
    }
    out[o] = '\0';
    if (strlen(out) != o) { /* a NUL inside: refuse the field */
        free(out);
        return NULL;
    }
    return out;
}

char *gh_form_get(const char *body, size_t len, const char *key)
{
    size_t kl = strlen(key), i = 0;

    while (i < len) {
        size_t e = i;
        while (e < len && body[e] != '&')
            e++;
        if (e - i > kl && memcmp(body + i, key, kl) == 0 && body[i + kl] == '=')
            return form_decode(body + i + kl + 1, e - (i + kl + 1));
        i = e + 1;
    }
    return NULL;
}

int gh_form_each(const char *body, size_t len,
                 int (*fn)(const char *key, const char *value, void *ctx), void *ctx)
{
    size_t i = 0;

    while (i < len) {
        size_t e = i, eq;
        char *k, *v;
        int rc;
        while (e < len && body[e] != '&')
            e++;
        for (eq = i; eq < e && body[eq] != '='; eq++)
            ;
        if (e > i) {
            k = form_decode(body + i, eq - i);
            v = form_decode(body + (eq < e ? eq + 1 : e), eq < e ? e - eq - 1 : 0);
            rc = k && v ? fn(k, v, ctx) : -1;
            free(k);
            free(v);
            if (rc == -1)
                return -1;
        }
        i = e + 1;
    }
    return 0;
}

void gh_sbuf_append(struct gh_sbuf *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (p == NULL)
            abort();
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void gh_xff_last(const char *xff, char *out, size_t len)
{
    const char *p = xff ? strrchr(xff, ',') : NULL;

    p = p ? p + 1 : xff;
    while (p && (*p == ' ' || *p == '\t'))
        p++;
    if (p == NULL || *p == '\0' || gh_strlcpy(out, p, len) == -1)
        gh_strlcpy(out, "-", len);
}

void gh_free_secret(char *s)
{
    if (s == NULL)
        return;
    gh_wipe(s, strlen(s));
    free(s);
}

int gh_name_ok(const char *s, size_t max)
{
    size_t i, len = strlen(s);

    if (len == 0 || len > max)
        return 0;
    for (i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
              s[i] == '_' || s[i] == '.'))
            return 0;
    return 1;
}
