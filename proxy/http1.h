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

#include "../rules/rules.h"

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

struct http1_hdr {
    struct http1_span name, value;
};

enum http1_framing {
    HTTP1_BODY_NONE,
    HTTP1_BODY_LENGTH,
    HTTP1_BODY_CHUNKED,
    HTTP1_BODY_CLOSE, /* responses only: until the server closes */
};

#define HTTP1_F_CONN_CLOSE 0x01      /* Connection: close (or 1.0 without keep-alive) */
#define HTTP1_F_UPGRADE 0x02         /* Connection: upgrade and an Upgrade header */
#define HTTP1_F_EXPECT_CONTINUE 0x04 /* Expect: 100-continue */
#define HTTP1_F_WINAUTH 0x08         /* NTLM/Negotiate in Authorization or WWW-Authenticate */
#define HTTP1_F_ABSOLUTE 0x10        /* absolute-form target */
#define HTTP1_F_HEAD 0x20            /* request method is HEAD */

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
    unsigned nhdrs;
    struct http1_hdr *hdrs; /* borrowed from the caller, room for max_headers */
    enum gh_reason why;     /* when GH_ERR */
};

/* http1_parse.c */
/* Parses a request head from buf[0, len). Returns GH_OK (head complete),
 * GH_AGAIN (need more bytes; nothing wrong so far) or GH_ERR with m->why. */
int http1_parse_request(const char *buf, size_t len, const struct http1_limits *lim,
                        struct http1_msg *m);
/* Parses a response head; req_flags carries HTTP1_F_HEAD of the request so
 * framing is decided right. Errors are GH_REASON_BAD_RESPONSE. */
int http1_parse_response(const char *buf, size_t len, const struct http1_limits *lim,
                         unsigned req_flags, struct http1_msg *m);
/* True when the comma-separated list in v contains token tok (any case). */
int http1_list_has(const char *v, size_t vlen, const char *tok);
/* True for a hop-by-hop header name, or one listed in the message's Connection. */
int http1_is_hop(const char *head, const struct http1_msg *m, const char *name, size_t nlen);

/* http1_chunk.c */
struct http1_chunk {
    int state;
    uint64_t remaining; /* data bytes left in the current chunk */
    size_t count;       /* bytes of size digits, extension or trailer seen */
    size_t trailer;     /* bytes of trailer section seen */
};
void http1_chunk_init(struct http1_chunk *ck);
/* Decodes chunked framing from p[0, len). Returns GH_OK with *used bytes
 * consumed; when a data span is found, *data and *dlen point at it inside p (it is
 * part of *used) and the call returns at once. GH_AGAIN: all of p consumed,
 * message not finished. A finished message sets *done. GH_ERR: malformed,
 * *why set. */
int http1_chunk_decode(struct http1_chunk *ck, const char *p, size_t len,
                       const struct http1_limits *lim, size_t *used, const char **data,
                       size_t *dlen, int *done, enum gh_reason *why);

#endif
