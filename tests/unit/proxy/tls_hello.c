/* The ClientHello reader of tls passthrough (proxy/tls_hello.c): a hello
 * is built field by field and each row breaks one field the way an
 * attacker (or a confused client) would. */
#include "../../../proxy/tls_hello.h"

#include <stdio.h>
#include <string.h>

#include "../../../common/common.h"
#include "../unit.h"

struct hello_opts {
    const char *sni;      /* NULL: no server_name extension */
    int two_sni;          /* a second server_name extension */
    int name_type;        /* 0: host_name */
    int list_delta;       /* added to the server_name list length */
    int ext_delta;        /* added to the extensions length */
    int hs_delta;         /* added to the handshake length */
    int rec_delta;        /* added to the record length (bytes follow accordingly) */
    int split;            /* split the handshake over two records at this offset (0: no) */
    int hs_type;          /* handshake type, 1 = client_hello */
    int rec_type;         /* record type, 22 = handshake */
    int session_len;      /* legacy_session_id length */
    int ciphers_len;      /* cipher_suites length */
};

static size_t put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    return 2;
}

/* Writes a record (or two) holding one ClientHello into out; returns its length. */
static size_t build(const struct hello_opts *o, unsigned char *out)
{
    unsigned char body[2048], ext[1024];
    size_t b = 0, e = 0, i, hs_len, n;
    int k;

    for (k = 0; k < (o->two_sni ? 2 : (o->sni ? 1 : 0)); k++) {
        size_t nl = strlen(o->sni);
        e += put16(ext + e, 0); /* server_name */
        e += put16(ext + e, (unsigned)(nl + 5));
        e += put16(ext + e, (unsigned)((int)nl + 3 + o->list_delta));
        ext[e++] = (unsigned char)o->name_type;
        e += put16(ext + e, (unsigned)nl);
        memcpy(ext + e, o->sni, nl);
        e += nl;
    }
    e += put16(ext + e, 10); /* supported_groups, to have something after */
    e += put16(ext + e, 4);
    e += put16(ext + e, 2);
    e += put16(ext + e, 29);
    body[b++] = 3, body[b++] = 3;       /* legacy_version */
    memset(body + b, 0xab, 32), b += 32; /* random */
    body[b++] = (unsigned char)o->session_len;
    memset(body + b, 1, (size_t)o->session_len), b += (size_t)o->session_len;
    b += put16(body + b, (unsigned)o->ciphers_len);
    for (i = 0; i < (size_t)o->ciphers_len; i++)
        body[b++] = (unsigned char)(i % 2 ? 0x01 : 0x13);
    body[b++] = 1, body[b++] = 0; /* compression: null */
    b += put16(body + b, (unsigned)((int)e + o->ext_delta));
    memcpy(body + b, ext, e), b += e;
    hs_len = b;
    {
        unsigned char hs[4096];
        size_t h = 0, first, rec;
        hs[h++] = (unsigned char)o->hs_type;
        hs[h++] = 0;
        h += put16(hs + h, (unsigned)((int)hs_len + o->hs_delta));
        memcpy(hs + h, body, b), h += b;
        first = o->split ? (size_t)o->split : h;
        n = 0;
        out[n++] = (unsigned char)o->rec_type, out[n++] = 3, out[n++] = 1;
        rec = (size_t)((int)first + o->rec_delta);
        n += put16(out + n, (unsigned)rec);
        memcpy(out + n, hs, first), n += first;
        if (o->split) {
            out[n++] = 22, out[n++] = 3, out[n++] = 1;
            n += put16(out + n, (unsigned)(h - first));
            memcpy(out + n, hs + first, h - first), n += h - first;
        }
    }
    return n;
}

#define BASE {NULL, 0, 0, 0, 0, 0, 0, 0, 1, 22, 32, 4}

TEST(tls_hello_table)
{
    static const struct {
        const char *name;
        struct hello_opts o;
        enum tls_hello_result want;
        const char *sni;
    } rows[] = {
        {"with a name", {"meet.example.com", 0, 0, 0, 0, 0, 0, 0, 1, 22, 32, 4}, TLS_HELLO_OK, "meet.example.com"},
        {"upper case lowered", {"Meet.Example.COM", 0, 0, 0, 0, 0, 0, 0, 1, 22, 32, 4}, TLS_HELLO_OK, "meet.example.com"},
        {"no name", BASE, TLS_HELLO_OK, ""},
        {"empty session id", {"a.example", 0, 0, 0, 0, 0, 0, 0, 1, 22, 0, 2}, TLS_HELLO_OK, "a.example"},
        {"split over two records", {"split.example", 0, 0, 0, 0, 0, 0, 40, 1, 22, 32, 4}, TLS_HELLO_OK, "split.example"},
        {"two server_name extensions", {"a.example", 1, 0, 0, 0, 0, 0, 0, 1, 22, 32, 4}, TLS_HELLO_BAD, NULL},
        {"name type not host_name", {"a.example", 0, 1, 0, 0, 0, 0, 0, 1, 22, 32, 4}, TLS_HELLO_BAD, NULL},
        {"list length too long", {"a.example", 0, 0, 1, 0, 0, 0, 0, 1, 22, 32, 4}, TLS_HELLO_BAD, NULL},
        {"list length too short (a second name hidden)", {"a.example", 0, 0, -1, 0, 0, 0, 0, 1, 22, 32, 4}, TLS_HELLO_BAD, NULL},
        {"extensions length off", {"a.example", 0, 0, 0, 1, 0, 0, 0, 1, 22, 32, 4}, TLS_HELLO_BAD, NULL},
        {"handshake longer than sent", {"a.example", 0, 0, 0, 0, 5, 0, 0, 1, 22, 32, 4}, TLS_HELLO_AGAIN, NULL},
        {"handshake shorter than its record", {"a.example", 0, 0, 0, 0, -5, 0, 0, 1, 22, 32, 4}, TLS_HELLO_BAD, NULL},
        {"not a client hello", {"a.example", 0, 0, 0, 0, 0, 0, 0, 2, 22, 32, 4}, TLS_HELLO_BAD, NULL},
        {"not a handshake record", {"a.example", 0, 0, 0, 0, 0, 0, 0, 1, 23, 32, 4}, TLS_HELLO_BAD, NULL},
        {"session id too long", {"a.example", 0, 0, 0, 0, 0, 0, 0, 1, 22, 33, 4}, TLS_HELLO_BAD, NULL},
        {"odd cipher suites", {"a.example", 0, 0, 0, 0, 0, 0, 0, 1, 22, 32, 3}, TLS_HELLO_BAD, NULL},
        {"a name with a space", {"a .example", 0, 0, 0, 0, 0, 0, 0, 1, 22, 32, 4}, TLS_HELLO_BAD, NULL},
        {"a name with NUL-like bytes", {"a\x01.example", 0, 0, 0, 0, 0, 0, 0, 1, 22, 32, 4}, TLS_HELLO_BAD, NULL},
        {"a name with '..'", {"a..example", 0, 0, 0, 0, 0, 0, 0, 1, 22, 32, 4}, TLS_HELLO_BAD, NULL},
        {"a trailing dot", {"a.example.", 0, 0, 0, 0, 0, 0, 0, 1, 22, 32, 4}, TLS_HELLO_BAD, NULL},
    };
    unsigned char buf[8192];
    char sni[256];
    size_t i, n, k;

    for (i = 0; i < GH_ARRAY_LEN(rows); i++) {
        enum tls_hello_result r;
        n = build(&rows[i].o, buf);
        r = tls_hello_sni(buf, n, sni, sizeof(sni));
        CHECK_EQ(r, rows[i].want, rows[i].name);
        if (r == TLS_HELLO_OK && rows[i].sni != NULL)
            CHECK_STR(sni, rows[i].sni, rows[i].name);
    }
    /* Byte by byte, a good hello is AGAIN until its last byte, then OK. */
    {
        struct hello_opts o = {"bytes.example", 0, 0, 0, 0, 0, 0, 0, 1, 22, 32, 4};
        n = build(&o, buf);
        for (k = 1; k < n; k++)
            CHECK_EQ(tls_hello_sni(buf, k, sni, sizeof(sni)), TLS_HELLO_AGAIN, "prefix");
        CHECK_EQ(tls_hello_sni(buf, n, sni, sizeof(sni)), TLS_HELLO_OK, "whole");
    }
    /* Plain HTTP to a pass-through port is not TLS. */
    CHECK_EQ(tls_hello_sni((const unsigned char *)"GET / HTTP/1.1\r\n", 16, sni, sizeof(sni)),
             TLS_HELLO_BAD, "http");
    /* A record claiming more than TLS allows. */
    {
        const unsigned char big[5] = {22, 3, 1, 0x40, 0x01};
        CHECK_EQ(tls_hello_sni(big, 5, sni, sizeof(sni)), TLS_HELLO_BAD, "record over 16 KiB");
    }
}

/* tls_hello_scan, called as a pass-through connection calls it (everything
 * so far, one state): the same answers as reading it all at once, for a
 * hello re-framed into one-byte records fed byte by byte (the shape that
 * made every read walk and copy all that came before) and for a broken
 * record found late. */
TEST(tls_hello_scan_incremental)
{
    struct hello_opts o = {"tiny.example", 0, 0, 0, 0, 0, 0, 0, 1, 22, 32, 4};
    static unsigned char one[8192], tiny[8192 * 6];
    struct tls_hello_scan st;
    char sni[256];
    size_t n, t = 0, i, k;

    n = build(&o, one);
    for (i = 5; i < n; i++) { /* the handshake bytes, one record each */
        tiny[t++] = 22, tiny[t++] = 3, tiny[t++] = 1, tiny[t++] = 0, tiny[t++] = 1;
        tiny[t++] = one[i];
    }
    CHECK_EQ(tls_hello_sni(tiny, t, sni, sizeof(sni)), TLS_HELLO_OK, "tiny records, at once");
    CHECK_STR(sni, "tiny.example", "tiny records, at once");
    memset(&st, 0, sizeof(st));
    for (k = 1; k < t; k++)
        CHECK_EQ(tls_hello_scan(tiny, k, &st, sni, sizeof(sni)), TLS_HELLO_AGAIN, "tiny prefix");
    CHECK_EQ(tls_hello_scan(tiny, t, &st, sni, sizeof(sni)), TLS_HELLO_OK, "tiny, by bytes");
    CHECK_STR(sni, "tiny.example", "tiny, by bytes");
    CHECK(st.at == t);
    /* a record of another type after many good ones: BAD when it arrives */
    tiny[t - 6] = 23;
    memset(&st, 0, sizeof(st));
    for (k = 1; k < t - 6; k++)
        CHECK_EQ(tls_hello_scan(tiny, k, &st, sni, sizeof(sni)), TLS_HELLO_AGAIN, "good part");
    CHECK_EQ(tls_hello_scan(tiny, t - 1, &st, sni, sizeof(sni)), TLS_HELLO_BAD, "bad record");
}
