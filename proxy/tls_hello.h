/*
 * The TLS ClientHello as a pass-through listener sees it: bytes in, the
 * server name out, nothing terminated (RFC 8446 4.1.2, RFC 6066 3). No I/O,
 * no allocation. Module-private to proxy/ (and its tests).
 */
#ifndef GH_PROXY_TLS_HELLO_H
#define GH_PROXY_TLS_HELLO_H

#include <stddef.h>

#define TLS_HELLO_MAX 16384 /* handshake bytes read at most before deciding */

enum tls_hello_result {
    TLS_HELLO_OK,    /* a whole ClientHello: *sni set ("" when it names no server) */
    TLS_HELLO_AGAIN, /* not all of it yet */
    TLS_HELLO_BAD,   /* not a TLS ClientHello, malformed, or too large */
};

/* How far tls_hello_scan got in the bytes a client sent so far; all zero
 * before the first call. Owned by the caller (the connection), no pointers. */
struct tls_hello_scan {
    size_t at;           /* bytes of whole records walked */
    size_t have;         /* handshake bytes in them */
    size_t need;         /* the ClientHello's length with its header; 0: not known yet */
    unsigned char h4[4]; /* the handshake header */
    size_t nh4;
};

/* tls_hello.c */
/* Reads the ClientHello from p[0, len), the first bytes a client sent,
 * across TLS records if it spans several. The server name is lower-cased
 * into sni (sni_len >= 256); a name that is not a DNS host name is BAD. */
enum tls_hello_result tls_hello_sni(const unsigned char *p, size_t len, char *sni,
                                    size_t sni_len);
/* The same, called again as bytes arrive: p[0, len) is everything the
 * client sent (the earlier bytes unchanged), st where the last call left
 * off. Each call walks only the records it has not seen, so a hello in
 * many tiny records costs no more than one. */
enum tls_hello_result tls_hello_scan(const unsigned char *p, size_t len,
                                     struct tls_hello_scan *st, char *sni, size_t sni_len);

#endif
