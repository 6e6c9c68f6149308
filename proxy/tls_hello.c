/*
 * Reading the server name out of a ClientHello without terminating TLS, for
 * `tls passthrough`. The client's bytes are forwarded unchanged afterwards;
 * this only decides which service, so it refuses whatever it cannot read
 * one way: records that are not handshake records, a handshake that is not
 * a ClientHello, lengths that disagree, a second server_name extension, a
 * name with anything but letters, digits, '-' and '.'. The handshake may
 * span several records (large key shares); it is gathered up to
 * TLS_HELLO_MAX bytes.
 */
#include "tls_hello.h"

#include <stdint.h>
#include <string.h>

struct rd {
    const unsigned char *p;
    size_t len, at;
};

static int u8(struct rd *r, unsigned *v)
{
    if (r->at + 1 > r->len)
        return -1;
    *v = r->p[r->at++];
    return 0;
}

static int u16(struct rd *r, unsigned *v)
{
    if (r->at + 2 > r->len)
        return -1;
    *v = (unsigned)r->p[r->at] << 8 | r->p[r->at + 1];
    r->at += 2;
    return 0;
}

static int skip(struct rd *r, size_t n)
{
    if (r->at + n > r->len)
        return -1;
    r->at += n;
    return 0;
}

/* The host_name of a server_name extension body. */
static enum tls_hello_result server_name(struct rd *e, char *sni, size_t sni_len)
{
    unsigned list, type, n;
    size_t i;

    if (u16(e, &list) == -1 || list != e->len - e->at || u8(e, &type) == -1 || type != 0 ||
        u16(e, &n) == -1 || n == 0 || n > 255 || n >= sni_len || e->at + n != e->len)
        return TLS_HELLO_BAD; /* exactly one host_name, nothing after it */
    for (i = 0; i < n; i++) {
        unsigned char c = e->p[e->at + i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return TLS_HELLO_BAD;
        sni[i] = (char)c;
    }
    sni[n] = '\0';
    if (sni[0] == '.' || sni[n - 1] == '.' || strstr(sni, "..") != NULL)
        return TLS_HELLO_BAD;
    return TLS_HELLO_OK;
}

static enum tls_hello_result client_hello(const unsigned char *h, size_t len, char *sni,
                                          size_t sni_len)
{
    struct rd r = {h, len, 0};
    unsigned v, n, ext_len;
    int seen_sni = 0;

    sni[0] = '\0';
    if (u16(&r, &v) == -1 || (v >> 8) != 3 || skip(&r, 32) == -1) /* legacy_version, random */
        return TLS_HELLO_BAD;
    if (u8(&r, &n) == -1 || n > 32 || skip(&r, n) == -1) /* legacy_session_id */
        return TLS_HELLO_BAD;
    if (u16(&r, &n) == -1 || n < 2 || n % 2 != 0 || skip(&r, n) == -1) /* cipher_suites */
        return TLS_HELLO_BAD;
    if (u8(&r, &n) == -1 || n < 1 || skip(&r, n) == -1) /* compression_methods */
        return TLS_HELLO_BAD;
    if (r.at == r.len)
        return TLS_HELLO_OK; /* no extensions: no server name */
    if (u16(&r, &ext_len) == -1 || ext_len != r.len - r.at)
        return TLS_HELLO_BAD;
    while (r.at < r.len) {
        unsigned type, elen;
        if (u16(&r, &type) == -1 || u16(&r, &elen) == -1 || r.at + elen > r.len)
            return TLS_HELLO_BAD;
        if (type == 0) {
            struct rd e = {r.p + r.at, elen, 0};
            if (seen_sni++ || server_name(&e, sni, sni_len) != TLS_HELLO_OK)
                return TLS_HELLO_BAD;
        }
        r.at += elen;
    }
    return TLS_HELLO_OK;
}

/* Walks the whole records of p[0, len) from where st left off, keeping the
 * handshake header (which tiny records may split) and the handshake bytes
 * counted. OK once the ClientHello is all there (st->need its length, its
 * 4-byte header included), AGAIN before, BAD when a record or the
 * handshake header is not what a ClientHello comes in. Nothing is copied
 * and no record is walked twice, so a client dribbling its hello in tiny
 * records costs each read its new bytes, not all it sent so far. */
static enum tls_hello_result walk(const unsigned char *p, size_t len, struct tls_hello_scan *st)
{
    while (st->at < len) {
        size_t at = st->at, rec, i;
        if (len - at < 5)
            return TLS_HELLO_AGAIN;
        /* handshake record, TLS 1.0..1.3 legacy version, length within bounds */
        if (p[at] != 22 || p[at + 1] != 3 || p[at + 2] > 4)
            return TLS_HELLO_BAD;
        rec = (size_t)p[at + 3] << 8 | p[at + 4];
        if (rec == 0 || rec > 16384)
            return TLS_HELLO_BAD;
        if (len - at - 5 < rec)
            return TLS_HELLO_AGAIN;
        if (st->have + rec > TLS_HELLO_MAX + 4)
            return TLS_HELLO_BAD;
        for (i = 0; st->nh4 < 4 && i < rec; i++)
            st->h4[st->nh4++] = p[at + 5 + i];
        st->have += rec;
        st->at = at + 5 + rec;
        if (st->need == 0 && st->nh4 == 4) {
            if (st->h4[0] != 1) /* client_hello */
                return TLS_HELLO_BAD;
            st->need = 4 + ((size_t)st->h4[1] << 16 | (size_t)st->h4[2] << 8 | st->h4[3]);
            if (st->need > TLS_HELLO_MAX + 4 || st->need < 4 + 38)
                return TLS_HELLO_BAD;
        }
        if (st->need != 0 && st->have >= st->need)
            /* more handshake bytes than the hello: not ours to read */
            return st->have > st->need ? TLS_HELLO_BAD : TLS_HELLO_OK;
    }
    return TLS_HELLO_AGAIN;
}

enum tls_hello_result tls_hello_scan(const unsigned char *p, size_t len,
                                     struct tls_hello_scan *st, char *sni, size_t sni_len)
{
    unsigned char hs[TLS_HELLO_MAX + 4];
    enum tls_hello_result r;
    size_t at = 0, have = 0;

    if ((r = walk(p, len, st)) != TLS_HELLO_OK)
        return r;
    /* all there: the handshake bytes copied out of their records, once */
    while (at < st->at) {
        size_t rec = (size_t)p[at + 3] << 8 | p[at + 4];
        memcpy(hs + have, p + at + 5, rec);
        have += rec;
        at += 5 + rec;
    }
    return client_hello(hs + 4, st->need - 4, sni, sni_len);
}

enum tls_hello_result tls_hello_sni(const unsigned char *p, size_t len, char *sni,
                                    size_t sni_len)
{
    struct tls_hello_scan st;

    memset(&st, 0, sizeof(st));
    return tls_hello_scan(p, len, &st, sni, sni_len);
}
