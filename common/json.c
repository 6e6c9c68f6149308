/*
 * The one JSON string writer of the program (RFC 8259): every answer, log
 * line and page datum that carries a string goes through gh_json_put (into
 * a fixed buffer) or gh_json_str (into a growable one). One set of rules:
 * '"' and '\' escaped; control bytes, DEL and U+2028/U+2029 (which end a
 * line in JavaScript) as \uXXXX; well-formed UTF-8 kept as it is, so a
 * display name in any script reads right; a byte that is not part of
 * well-formed UTF-8 (hostile input need not be text) as \u00XX, so the
 * output is always valid JSON in valid UTF-8. Nothing is cut silently: a
 * bounded field that had to be shortened ends with GH_JSON_CUT.
 */
#include <string.h>

#include "common.h"

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0 when the
 * bytes there are not one (overlong, surrogate, beyond U+10FFFF, cut). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))
            return 0; /* overlong, or a UTF-16 surrogate */
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
            return 0;
        return 4;
    }
    return 0;
}

/* The escaped form of the unit at s[0..]: its bytes in out (at most 12),
 * how many input bytes it took in *used. */
static size_t unit(const unsigned char *s, size_t n, char out[12], size_t *used)
{
    static const char hex[] = "0123456789abcdef";
    unsigned c = s[0];
    size_t l;

    if (c == '"' || c == '\\') {
        out[0] = '\\';
        out[1] = (char)c;
        *used = 1;
        return 2;
    }
    l = utf8_len(s, n);
    if (l == 3 && c == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9)) {
        memcpy(out, s[2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
        *used = 3;
        return 6;
    }
    if (l == 0 || c < 0x20 || c == 0x7f) {
        memcpy(out, "\\u00", 4);
        out[4] = hex[c >> 4];
        out[5] = hex[c & 15];
        *used = 1;
        return 6;
    }
    memcpy(out, s, l);
    *used = l;
    return l;
}

size_t gh_json_put(char *dst, size_t dstlen, const char *s, size_t slen, size_t max)
{
    const unsigned char *u = (const unsigned char *)(s ? s : "");
    size_t i = 0, o = 0, room;
    char e[12];

    if (dstlen == 0)
        return 0;
    if (s == NULL)
        slen = 0;
    /* What is kept must leave room for the mark and the NUL. */
    room = dstlen > sizeof(GH_JSON_CUT) ? dstlen - sizeof(GH_JSON_CUT) : 0;
    while (i < slen) {
        size_t used, el = unit(u + i, slen - i, e, &used);
        if (i + used > max || o + el > room)
            break;
        memcpy(dst + o, e, el);
        o += el;
        i += used;
    }
    if (i < slen && dstlen > sizeof(GH_JSON_CUT)) {
        memcpy(dst + o, GH_JSON_CUT, sizeof(GH_JSON_CUT) - 1);
        o += sizeof(GH_JSON_CUT) - 1;
    }
    dst[o] = '\0';
    return o;
}

void gh_json_strn(struct gh_sbuf *o, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)(s ? s : "");
    size_t i = 0, start = 0;
    char e[12];

    if (s == NULL)
        n = 0;
    gh_sbuf_append(o, "\"", 1);
    while (i < n) {
        size_t used, el = unit(u + i, n - i, e, &used);
        /* Runs that need no escape are appended whole. */
        if (el == used && memcmp(e, u + i, el) == 0) {
            i += used;
            continue;
        }
        gh_sbuf_append(o, u + start, i - start);
        gh_sbuf_append(o, e, el);
        i += used;
        start = i;
    }
    gh_sbuf_append(o, u + start, i - start);
    gh_sbuf_append(o, "\"", 1);
}

void gh_json_str(struct gh_sbuf *o, const char *s)
{
    gh_json_strn(o, s, s ? strlen(s) : 0);
}
