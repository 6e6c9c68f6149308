/*
 * HTTP/1.1 message heads and body framing (RFC 9112), with no I/O: bytes in,
 * a parsed head or a reason out. Module-private to proxy/ (and its tests).
 * Everything that decides how a message is framed is decided here, once;
 * anything that could be read two ways is refused.
 */
#ifndef GH_PROXY_HTTP1_H
#define GH_PROXY_HTTP1_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/reason.h"

#define HTTP1_MAX_HEADERS_HARD 1000

struct http1_limits {
    size_t max_request_line; /* 414 past this */
    size_t max_header_size;  /* whole head; 431 past this */
    size_t max_headers;      /* 431 past this */
    size_t max_chunk_ext;
};

struct http1_span {
    uint32_t off; /* from the start of the head */
    uint32_t len;
};

/* What a header line is to the proxy, decided once by the parser. Only
 * HTTP1_H_E2E lines (and, by the proxy's choice, SERVER and HSTS) are ever
 * copied into a head gatehouse writes; everything else is either rewritten
 * from the parsed model (Host, framing) or never forwarded. */
enum http1_hkind {
    HTTP1_H_E2E,        /* end-to-end: forwarded as it came */
    HTTP1_H_HOST,       /* requests: Host, written from m->host */
    HTTP1_H_FRAMING,    /* Content-Length, Transfer-Encoding: the writer computes its own */
    HTTP1_H_HOP,        /* Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade, and
                         * any header a Connection header names */
    HTTP1_H_PROXY,      /* requests: X-Forwarded-*, Forwarded, X-Real-IP, Proxy-Authorization,
                         * Gatehouse-Edge-Token;
                         * a client's copies are never believed, the proxy sets its own */
    HTTP1_H_UNDERSCORE, /* requests: a name with '_', which CGI-style servers read as '-' */
    HTTP1_H_EXPECT,     /* requests: Expect: 100-continue on HTTP/1.1 (dropped when the proxy
                         * answered the 100 itself) */
    HTTP1_H_IGNORED,    /* requests: Expect on HTTP/1.0, to be ignored (RFC 9110 10.1.1) */
    HTTP1_H_SERVER,     /* responses: Server */
    HTTP1_H_HSTS,       /* responses: Strict-Transport-Security */
};
#define HTTP1_KEEP(k) (1u << (k))

struct http1_hdr {
    struct http1_span name, value;
    enum http1_hkind kind;
};

enum http1_framing {
    HTTP1_BODY_NONE,
    HTTP1_BODY_LENGTH,
    HTTP1_BODY_CHUNKED,
    HTTP1_BODY_CLOSE, /* responses only: until the server closes */
};

#define HTTP1_F_CONN_CLOSE 0x01      /* Connection: close (or 1.0 without keep-alive) */
#define HTTP1_F_UPGRADE 0x02         /* Connection lists upgrade and an Upgrade header is there */
#define HTTP1_F_EXPECT_CONTINUE 0x04 /* Expect: 100-continue on HTTP/1.1 */
#define HTTP1_F_WINAUTH 0x08         /* NTLM/Negotiate in Authorization or WWW-Authenticate */
#define HTTP1_F_ABSOLUTE 0x10        /* absolute-form target */
#define HTTP1_F_HEAD 0x20            /* request method is HEAD */
#define HTTP1_F_HAS_CL 0x40          /* a Content-Length header was present (even 0) */
#define HTTP1_F_UNDERSCORE 0x80      /* some header name holds '_' */
#define HTTP1_F_WS_DUP 0x100         /* Upgrade or a Sec-WebSocket-Key/-Version/-Accept twice */

struct http1_msg {
    size_t head_len; /* bytes of the head including the final CRLF */
    int version;     /* 10 or 11 */
    /* requests */
    struct http1_span method, target, path; /* path: origin part of an absolute target */
    struct http1_span host;                 /* Host value */
    /* responses */
    int status;
    struct http1_span reason;
    enum http1_framing framing;
    uint64_t content_length;
    unsigned flags;
    /* The Upgrade value and the WebSocket handshake fields, when present and
     * not removed by Connection (len 0 otherwise). */
    struct http1_span upgrade, ws_key, ws_version, ws_accept;
    unsigned nhdrs;
    struct http1_hdr *hdrs; /* borrowed from the caller, room for max_headers */
    enum gh_reason why;     /* when GH_ERR */
};

/* http1_parse.c */
/* Parses a request head from buf[0, len). Returns GH_OK (head complete),
 * GH_AGAIN (need more bytes; nothing wrong so far) or GH_ERR with m->why.
 * A Connection header naming Content-Length, Transfer-Encoding or Host is
 * GH_REASON_CONN_OPTION: honouring it would let the sender strip the very
 * headers the next hop frames the message by. */
int http1_parse_request(const char *buf, size_t len, const struct http1_limits *lim,
                        struct http1_msg *m);
/* Parses a response head; req_flags carries HTTP1_F_HEAD of the request so
 * framing is decided right. Errors are GH_REASON_BAD_RESPONSE, or
 * GH_REASON_UPSTREAM_CONN_OPTION for a Connection naming a framing header. */
int http1_parse_response(const char *buf, size_t len, const struct http1_limits *lim,
                         unsigned req_flags, struct http1_msg *m);
/* True when the comma-separated list in v contains token tok (any case). */
int http1_list_has(const char *v, size_t vlen, const char *tok);
/* True when m's method (in head) is exactly lit: methods are case-sensitive
 * (RFC 9110 9.1), so "head" is an unknown method, not HEAD, and its answer
 * has a body. */
static inline int http1_method_is(const char *head, const struct http1_msg *m, const char *lit)
{
    return m->method.len == strlen(lit) && memcmp(head + m->method.off, lit, m->method.len) == 0;
}

/* The chunked decoder's state (http1_chunk.c). */
struct http1_chunk {
    int state;
    unsigned lines;     /* chunk-size lines read so far */
    uint64_t remaining; /* data bytes left in the current chunk */
    size_t count;       /* bytes of size digits, extension or trailer seen */
    size_t trailer;     /* bytes of trailer section seen */
};

/* One direction of an exchange (HAProxy's h1m, in spirit): where the
 * message stands and how its body is framed on the way in and out. The
 * connection state machine asks these, never a flag. */
#define HTTP1_MSTATES(X)                                                                           \
    X(HEAD)         /* waiting for or parsing the head */                                         \
    X(BODY_LENGTH)  /* body of known length: left bytes still to come */                          \
    X(BODY_CHUNKED) /* chunked body being decoded (and re-framed) */                              \
    X(BODY_CLOSE)   /* response body that ends when the server closes */                          \
    X(DONE)         /* the whole message went through */                                          \
    X(TUNNEL)       /* after an accepted 101: bytes both ways, no HTTP */

enum http1_mstate {
#define HTTP1_MSTATE_ENUM(n) H1M_##n,
    HTTP1_MSTATES(HTTP1_MSTATE_ENUM)
#undef HTTP1_MSTATE_ENUM
};

struct http1_m {
    enum http1_mstate st;
    enum http1_framing out; /* how the body leaves: LENGTH or CLOSE copied, CHUNKED re-framed */
    uint64_t left;          /* BODY_LENGTH: bytes still to come */
    struct http1_chunk ck;  /* BODY_CHUNKED: the decoder */
};

/* http1_msg.c */
/* A fresh message, waiting for its head. */
void http1_m_init(struct http1_m *m);
/* Moves m to st when the transition table allows it; -1 (m unchanged) when
 * it does not, which is a bug in the caller, never the peer's doing. */
int http1_m_set(struct http1_m *m, enum http1_mstate st);
/* Leaves HEAD for the body state of h's framing (DONE when it has none);
 * the body is sent framed as out. -1 on an illegal transition. */
int http1_m_begin(struct http1_m *m, const struct http1_msg *h, enum http1_framing out);
const char *http1_m_name(enum http1_mstate st);
/* True from the head's end until DONE: body bytes are still owed. */
static inline int http1_m_in_body(const struct http1_m *m)
{
    return m->st == H1M_BODY_LENGTH || m->st == H1M_BODY_CHUNKED || m->st == H1M_BODY_CLOSE;
}

/* http1_write.c: heads written from a parsed message (no I/O) */
/* Makes room for need more bytes in b (getting its buffer first). */
void http1_reserve_slow(struct gh_buf *b, size_t need);
/* Appends n bytes. Inline: a head is written as some forty small pieces,
 * most of them literals whose length and copy the compiler then folds;
 * as calls they were ~2,000 instructions a keep-alive request (callgrind). */
static inline void http1_put(struct gh_buf *b, const char *s, size_t n)
{
    if (b->data == NULL || gh_buf_room(b) < n)
        http1_reserve_slow(b, n);
    gh_buf_append(b, s, n);
}
static inline void http1_puts(struct gh_buf *b, const char *s)
{
    http1_put(b, s, __builtin_strlen(s));
}
/* "name: value\r\n" from a parsed header, with one check for room. */
static inline void http1_put_field(struct gh_buf *b, const char *head, uint32_t noff,
                                   uint32_t nlen, uint32_t voff, uint32_t vlen)
{
    size_t need = (size_t)nlen + vlen + 4;
    char *o;

    if (b->data == NULL || gh_buf_room(b) < need)
        http1_reserve_slow(b, need);
    o = b->data + b->w;
    memcpy(o, head + noff, nlen);
    o[nlen] = ':';
    o[nlen + 1] = ' ';
    memcpy(o + nlen + 2, head + voff, vlen);
    o[nlen + 2 + vlen] = '\r';
    o[nlen + 3 + vlen] = '\n';
    b->w += need;
}
/* "METHOD target HTTP/1.1" and then "Host: host": Host always comes first. */
void http1_write_request_line(struct gh_buf *b, const char *head, const struct http1_msg *m,
                              const char *target, size_t tlen, const char *host, size_t hlen);
/* "HTTP/1.1 NNN reason" of a parsed response. */
void http1_write_status_line(struct gh_buf *b, const char *head, const struct http1_msg *m);
/* Every header line of m whose kind is in keep (HTTP1_KEEP bits), in order. */
void http1_write_fields(struct gh_buf *b, const char *head, const struct http1_msg *m,
                        unsigned keep);
void http1_write_field(struct gh_buf *b, const char *name, const char *v, size_t vlen);
/* The one framing header for a body sent as f: Content-Length: len, or
 * Transfer-Encoding: chunked, or nothing (no body; until close). */
void http1_write_framing(struct gh_buf *b, enum http1_framing f, uint64_t len);
/* A request's framing as received (its body is forwarded whole, re-chunked
 * when chunked); an explicit "Content-Length: 0" is kept. */
void http1_write_req_framing(struct gh_buf *b, const struct http1_msg *m);
/* A response's framing when its body is sent as out; HEAD and 304
 * responses keep the length they announced. */
void http1_write_resp_framing(struct gh_buf *b, const struct http1_msg *m,
                              enum http1_framing out);
void http1_write_end(struct gh_buf *b);

/* http1_chunk.c */
void http1_chunk_init(struct http1_chunk *ck);
/* True once the first chunk-size line has been read whole. */
int http1_chunk_started(const struct http1_chunk *ck);
/* Decodes chunked framing from p[0, len). Returns GH_OK with *used bytes
 * consumed; when a data span is found, *data and *dlen point at it inside p (it is
 * part of *used) and the call returns at once. GH_AGAIN: all of p consumed,
 * message not finished. A finished message sets *done. GH_ERR: malformed,
 * *why set. */
int http1_chunk_decode(struct http1_chunk *ck, const char *p, size_t len,
                       const struct http1_limits *lim, size_t *used, const char **data,
                       size_t *dlen, int *done, enum gh_reason *why);

#endif
