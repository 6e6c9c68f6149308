#include "join_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

int gh_join_key(const char *tok, size_t len, unsigned char key[GH_JOIN_KEY_LEN])
{
    char t[GH_JOIN_TOKEN_HEX + 1];

    if (len != GH_JOIN_TOKEN_HEX)
        return -1;
    memcpy(t, tok, len);
    t[len] = '\0';
    key[0] = 'j';
    return gh_unhex(t, key + 1, GH_JOIN_TOKEN_HEX / 2);
}

void gh_join_participant(const char *tok, char id[33])
{
    unsigned char d[32];
    char buf[64];
    unsigned int n = sizeof(d);
    int len = snprintf(buf, sizeof(buf), "gatehouse participant:%.32s", tok);

    /* Domain-separated: the id cannot be turned back into the token, nor
     * matched against digests made for anything else. */
    EVP_Digest(buf, (size_t)len, d, &n, EVP_sha256(), NULL);
    gh_wipe(buf, sizeof(buf));
    gh_hex(d, 16, id);
}

void gh_meeting_epoch_key(int64_t meeting, int64_t epoch,
                          unsigned char key[GH_MEETING_EPOCH_KEY_LEN])
{
    key[0] = 'E';
    memcpy(key + 1, &meeting, 8);
    memcpy(key + 9, &epoch, 8);
}

/* In place: "//" as "/", "." segments dropped, ".." taking the segment
 * before it (none above the root). Returns the new length. */
static size_t canonical(char *p, size_t n)
{
    size_t r = 0, w = 0;

    while (r < n) {
        size_t seg, sl;
        while (r < n && p[r] == '/')
            r++; /* one slash is written before each segment */
        seg = r;
        while (r < n && p[r] != '/')
            r++;
        sl = r - seg;
        if (sl == 0) {
            if (w == 0 || p[w - 1] != '/')
                p[w++] = '/'; /* the path ends in a slash */
            break;
        }
        if (sl == 1 && p[seg] == '.') {
            if (r == n && (w == 0 || p[w - 1] != '/'))
                p[w++] = '/';
            continue;
        }
        if (sl == 2 && p[seg] == '.' && p[seg + 1] == '.') {
            while (w > 0 && p[w - 1] != '/')
                w--;
            if (w > 0)
                w--; /* its slash */
            if (r == n || w == 0)
                p[w++] = '/';
            continue;
        }
        if (w == 0 || p[w - 1] != '/')
            p[w++] = '/';
        memmove(p + w, p + seg, sl);
        w += sl;
    }
    if (w == 0)
        p[w++] = '/';
    p[w] = '\0';
    return w;
}

enum gh_join_resource gh_join_resource(const char *path, size_t len, int decode, char *out,
                                       size_t outlen, size_t *outn)
{
    size_t i, n = 0;
    int hi, lo;

    *outn = 0;
    if (outlen < len + 2) /* the canonical form of "" is "/" */
        return GH_JOIN_RES_NONE;
    for (i = 0; i < len; i++) {
        if (decode && path[i] == '%' && len - i >= 3 &&
            (hi = gh_hexval((unsigned char)path[i + 1])) >= 0 &&
            (lo = gh_hexval((unsigned char)path[i + 2])) >= 0) {
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[n++] = path[i];
        }
    }
    out[n] = '\0';
    n = strlen(out); /* a server written in C reads up to a NUL */
    if (out[0] != '/') {
        *outn = n;
        return GH_JOIN_RES_NONE; /* not an origin-form path: no resource of ours */
    }
    n = canonical(out, n);
    *outn = n;
    if (n == 25 && memcmp(out, "/api/v1/meetings/manifest", 25) == 0)
        return GH_JOIN_RES_MANIFEST;
    if (n >= 16 && memcmp(out, "/api/v1/content/", 16) == 0)
        return GH_JOIN_RES_CONTENT;
    return GH_JOIN_RES_NONE;
}

/* The mac as 64 hex digits: 0, or -1 when the library failed (then no
 * token is made, and none verifies). */
static int mac_of(const unsigned char key[32], long long meeting, const char *participant,
                  long long expires, const char *resource, size_t rlen, char hex[65])
{
    unsigned char d[32];
    char head[128];
    int hl = snprintf(head, sizeof(head), "gatehouse edge token 1\n%lld\n%.32s\n%lld\n", meeting,
                      participant, expires);
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *cx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM ps[2];
    size_t outl = 0;
    int ok;

    ps[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)(uintptr_t) "SHA256", 0);
    ps[1] = OSSL_PARAM_construct_end();
    ok = cx != NULL && hl > 0 && EVP_MAC_init(cx, key, 32, ps) == 1 &&
         EVP_MAC_update(cx, (const unsigned char *)head, (size_t)hl) == 1 &&
         EVP_MAC_update(cx, (const unsigned char *)resource, rlen) == 1 &&
         EVP_MAC_final(cx, d, &outl, sizeof(d)) == 1 && outl == sizeof(d);
    EVP_MAC_CTX_free(cx);
    EVP_MAC_free(mac);
    if (!ok)
        return -1;
    gh_hex(d, sizeof(d), hex);
    return 0;
}

static int participant_ok(const char *p)
{
    size_t i;

    for (i = 0; i < 32; i++)
        if (gh_hexval((unsigned char)p[i]) < 0 || (p[i] >= 'A' && p[i] <= 'F'))
            return 0;
    return p[32] == '\0' || p[32] == '.';
}

int gh_edge_token_make(const unsigned char key[32], int64_t meeting, const char *participant,
                       const char *resource, size_t rlen, int64_t expires, char *out,
                       size_t outlen)
{
    char mac[65];
    int n;

    if (meeting < 0 || expires < 0 || !participant_ok(participant) ||
        mac_of(key, (long long)meeting, participant, (long long)expires, resource, rlen, mac) ==
            -1)
        return -1;
    n = snprintf(out, outlen, "1.%lld.%.32s.%lld.%s", (long long)meeting, participant,
                 (long long)expires, mac);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

/* A decimal of 1 to 18 digits, no sign, no leading zero (one spelling),
 * ended by '.'; *p moves past the dot. */
static int field_num(const char **p, long long *v)
{
    const char *s = *p;
    long long x = 0;
    size_t n = 0;

    if (s[0] == '0' && s[1] != '.')
        return -1;
    while (s[n] >= '0' && s[n] <= '9' && n < 18)
        x = x * 10 + (s[n++] - '0');
    if (n == 0 || s[n] != '.')
        return -1;
    *v = x;
    *p = s + n + 1;
    return 0;
}

enum gh_edge_check gh_edge_token_check(const unsigned char key[32], const char *tok,
                                       int64_t meeting, const char *participant,
                                       const char *resource, size_t rlen, int64_t now)
{
    const char *p = tok, *part;
    long long m, exp;
    char mac[65];
    size_t i;

    if (tok == NULL || tok[0] == '\0')
        return GH_EDGE_MISSING;
    if (strlen(tok) >= GH_EDGE_TOKEN_MAX || strncmp(p, "1.", 2) != 0)
        return GH_EDGE_MALFORMED;
    p += 2;
    if (field_num(&p, &m) == -1 || !participant_ok(p) || p[32] != '.')
        return GH_EDGE_MALFORMED;
    part = p;
    p += 33;
    if (field_num(&p, &exp) == -1 || strlen(p) != 64)
        return GH_EDGE_MALFORMED;
    for (i = 0; i < 64; i++)
        if (gh_hexval((unsigned char)p[i]) < 0 || (p[i] >= 'A' && p[i] <= 'F'))
            return GH_EDGE_MALFORMED;
    if (exp > (long long)now + 2 * GH_EDGE_TOKEN_TTL_S)
        return GH_EDGE_MALFORMED; /* nobody holding our key makes these */
    if (mac_of(key, m, part, exp, resource, rlen, mac) == -1 || CRYPTO_memcmp(mac, p, 64) != 0)
        return GH_EDGE_FORGED;
    if (exp < (long long)now)
        return GH_EDGE_EXPIRED;
    if (m != (long long)meeting || participant == NULL || memcmp(part, participant, 32) != 0)
        return GH_EDGE_OTHER;
    return GH_EDGE_OK;
}

const char *gh_edge_check_name(enum gh_edge_check c)
{
    switch (c) {
    case GH_EDGE_OK:
        return "edge-token:ok";
    case GH_EDGE_MISSING:
        return "edge-token:missing";
    case GH_EDGE_MALFORMED:
        return "edge-token:malformed";
    case GH_EDGE_FORGED:
        return "edge-token:forged";
    case GH_EDGE_EXPIRED:
        return "edge-token:expired";
    case GH_EDGE_OTHER:
        return "edge-token:other";
    }
    return "edge-token:?";
}
