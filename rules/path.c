/*
 * The path normaliser. What is checked against allowed directories and
 * rules is exactly what is forwarded, so a real server can never read a
 * path differently from the firewall. Two passes:
 *
 * 1. Escapes: unreserved characters (ALPHA DIGIT - . _ ~) are decoded, so
 *    "%2e%2E" is "..", and every other escape is kept with upper-case hex.
 *    Refused: %00, "%2F" and "%5C" (unless allowed; never "%5C"), a raw
 *    backslash, malformed escapes (including IIS's "%u"), double encoding
 *    ("%25" followed by two hex digits) and percent-encoded bytes that are
 *    not valid, shortest-form UTF-8 (overlong dots and slashes, surrogates).
 * 2. Segments: "." and ".." are resolved (RFC 3986 5.2.4), but a ".." that
 *    would climb above the root is refused rather than clamped, and so is a
 *    dot segment hidden behind ";" parameters ("/..;/"), which some servers
 *    strip before resolving. Empty segments merge when merge_slashes is set.
 */
#include "rules.h"

#include <string.h>

#include "../common/common.h"

static int is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* UTF-8 validator fed one byte at a time; tracks what the next byte may be. */
struct utf8 {
    int need;             /* continuation bytes still expected */
    unsigned char lo, hi; /* allowed range of the next continuation byte */
};

static int utf8_step(struct utf8 *u, unsigned char b)
{
    if (u->need > 0) {
        if (b < u->lo || b > u->hi)
            return -1;
        u->need--;
        u->lo = 0x80;
        u->hi = 0xbf;
        return 0;
    }
    u->lo = 0x80;
    u->hi = 0xbf;
    if (b < 0x80)
        return 0;
    if (b >= 0xc2 && b <= 0xdf) {
        u->need = 1;
    } else if (b >= 0xe0 && b <= 0xef) {
        u->need = 2;
        if (b == 0xe0)
            u->lo = 0xa0; /* overlong */
        else if (b == 0xed)
            u->hi = 0x9f; /* surrogates */
    } else if (b >= 0xf0 && b <= 0xf4) {
        u->need = 3;
        if (b == 0xf0)
            u->lo = 0x90; /* overlong */
        else if (b == 0xf4)
            u->hi = 0x8f; /* above U+10FFFF */
    } else {
        return -1; /* 0x80-0xc1 as a lead, or 0xf5-0xff */
    }
    return 0;
}

/* Pass 1: escapes. Writes into out; returns a reason. */
static enum gh_reason decode(const char *in, size_t len, const struct rules_path_opts *o,
                             char *out, size_t *n)
{
    static const char hex[] = "0123456789ABCDEF";
    struct utf8 u = {0, 0x80, 0xbf};
    size_t i, w = 0;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        int hi, lo, v;

        if (c == '\\')
            return GH_REASON_PATH_BACKSLASH;
        if (c != '%') {
            if (c >= 0x80)
                return GH_REASON_PATH_BAD_UTF8; /* raw bytes never pass */
            if (c < 0x21 || c == 0x7f)
                return GH_REASON_CTL_CHAR;
            if (u.need > 0)
                return GH_REASON_PATH_BAD_UTF8; /* a sequence cut short */
            out[w++] = (char)c;
            continue;
        }
        if (i + 2 >= len || (hi = gh_hexval((unsigned char)in[i + 1])) < 0 ||
            (lo = gh_hexval((unsigned char)in[i + 2])) < 0)
            return GH_REASON_PATH_BAD_ESCAPE;
        v = hi * 16 + lo;
        i += 2;
        if (utf8_step(&u, (unsigned char)v) == -1)
            return GH_REASON_PATH_BAD_UTF8;
        if (v == 0)
            return GH_REASON_PATH_NUL;
        if (v == '\\')
            return GH_REASON_PATH_BACKSLASH;
        if (v == '/' && !o->allow_encoded_slash)
            return GH_REASON_PATH_ENCODED_SLASH;
        if (v == '%' && i + 2 < len && gh_hexval((unsigned char)in[i + 1]) >= 0 &&
            gh_hexval((unsigned char)in[i + 2]) >= 0)
            return GH_REASON_PATH_DOUBLE_ENCODING;
        if (is_unreserved((unsigned char)v)) {
            out[w++] = (char)v;
            continue;
        }
        out[w++] = '%';
        out[w++] = hex[v >> 4];
        out[w++] = hex[v & 15];
    }
    if (u.need > 0)
        return GH_REASON_PATH_BAD_UTF8;
    /* "%25" followed by what decoded into two hex digits ("%25%32%65") is a
     * double encoding assembled in two steps: the output must not hold one. */
    for (i = 0; i + 4 < w; i++)
        if (out[i] == '%' && out[i + 1] == '2' && out[i + 2] == '5' &&
            gh_hexval((unsigned char)out[i + 3]) >= 0 && gh_hexval((unsigned char)out[i + 4]) >= 0)
            return GH_REASON_PATH_DOUBLE_ENCODING;
    *n = w;
    return GH_REASON_NONE;
}

/* The part of a segment before its ";" parameters. */
static size_t seg_base(const char *s, size_t n)
{
    const char *semi = memchr(s, ';', n);

    return semi ? (size_t)(semi - s) : n;
}

enum gh_reason rules_path_norm(const char *in, size_t len, const struct rules_path_opts *o,
                               char *out, size_t outlen, size_t *outn)
{
    char *buf = out; /* decoding never grows the path; segments are resolved in place */
    size_t n = 0, i, w = 0;
    enum gh_reason r;

    if (outlen < len + 1 || len == 0 || in[0] != '/')
        return GH_REASON_BAD_TARGET;
    r = decode(in, len, o, buf, &n);
    if (r != GH_REASON_NONE)
        return r;
    /* Pass 2: segments, written back into out as a stack (w is its top);
     * w never passes the read position, so memmove suffices. */
    i = 1;
    w = 1; /* out[0] is already the leading '/' */
    while (i <= n) {
        size_t s = i, sl, b;
        while (i < n && buf[i] != '/')
            i++;
        sl = i - s;
        b = seg_base(buf + s, sl);
        if (b == 1 && buf[s] == '.') {
            if (b != sl)
                return GH_REASON_PATH_TRAVERSAL;
        } else if (b == 2 && buf[s] == '.' && buf[s + 1] == '.') {
            if (b != sl)
                return GH_REASON_PATH_TRAVERSAL;
            if (w == 1)
                return GH_REASON_PATH_TRAVERSAL; /* above the root */
            /* pop the last segment: out is "/a/b/", drop "b/" */
            w--;
            while (w > 0 && out[w - 1] != '/')
                w--;
        } else if (sl == 0) {
            if (i < n && !o->merge_slashes)
                out[w++] = '/';
        } else {
            memmove(out + w, buf + s, sl);
            w += sl;
            if (i < n)
                out[w++] = '/';
        }
        i++;
    }
    out[w] = '\0';
    *outn = w;
    return GH_REASON_NONE;
}
