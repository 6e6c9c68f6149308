/*
 * Heads as gatehouse writes them. Nothing is passed through: a head is
 * written from the parsed message, line by line, keeping only the header
 * lines whose kind the caller asks for (end-to-end ones, in their order),
 * and the framing header is computed from the body the writer's caller
 * will send, never copied. So a head this file writes carries exactly one
 * Host, at most one framing header, and nothing a Connection header named.
 * No I/O: bytes go into a buffer that grows as needed.
 */
#include "http1.h"

#include <string.h>

#include "../common/common.h"

void http1_reserve_slow(struct gh_buf *b, size_t need)
{
    if (b->data == NULL)
        gh_buf_get(b);
    if (gh_buf_room(b) < need) {
        gh_buf_compact(b);
        if (gh_buf_room(b) < need)
            gh_buf_grow(b, b->w + need + 256);
    }
}

static inline void reserve(struct gh_buf *b, size_t need)
{
    if (b->data == NULL || gh_buf_room(b) < need)
        http1_reserve_slow(b, need);
}

void http1_write_request_line(struct gh_buf *b, const char *head, const struct http1_msg *m,
                              const char *target, size_t tlen, const char *host, size_t hlen)
{
    reserve(b, m->head_len + tlen + hlen + 512);
    http1_put(b, head + m->method.off, m->method.len);
    http1_put(b, " ", 1);
    http1_put(b, target, tlen);
    http1_puts(b, " HTTP/1.1\r\nHost: ");
    http1_put(b, host, hlen);
    http1_put(b, "\r\n", 2);
}

/* v in decimal, at least min digits (zero-padded). Every response head
 * carries a status and most a length: snprintf cost ~800 instructions a
 * call here (callgrind), this a few dozen. */
static void put_dec(struct gh_buf *b, uint64_t v, int min)
{
    char d[20];
    int n = 0;

    do {
        d[sizeof(d) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 && n < (int)sizeof(d));
    while (n < min && n < (int)sizeof(d))
        d[sizeof(d) - 1 - n++] = '0';
    http1_put(b, d + sizeof(d) - n, (size_t)n);
}

void http1_write_status_line(struct gh_buf *b, const char *head, const struct http1_msg *m)
{
    reserve(b, m->head_len + 512);
    http1_put(b, "HTTP/1.1 ", 9);
    put_dec(b, m->status > 0 ? (uint64_t)m->status : 0, 3);
    http1_put(b, " ", 1);
    http1_put(b, head + m->reason.off, m->reason.len);
    http1_put(b, "\r\n", 2);
}

void http1_write_field(struct gh_buf *b, const char *name, const char *v, size_t vlen)
{
    http1_puts(b, name);
    http1_put(b, ": ", 2);
    http1_put(b, v, vlen);
    http1_put(b, "\r\n", 2);
}

void http1_write_fields(struct gh_buf *b, const char *head, const struct http1_msg *m,
                        unsigned keep)
{
    unsigned i;

    for (i = 0; i < m->nhdrs; i++) {
        const struct http1_hdr *h = &m->hdrs[i];
        if (!(keep & HTTP1_KEEP(h->kind)))
            continue;
        http1_put_field(b, head, h->name.off, h->name.len, h->value.off, h->value.len);
    }
}

void http1_write_framing(struct gh_buf *b, enum http1_framing f, uint64_t len)
{
    switch (f) {
    case HTTP1_BODY_LENGTH:
        http1_put(b, "Content-Length: ", 16);
        put_dec(b, len, 1);
        http1_put(b, "\r\n", 2);
        break;
    case HTTP1_BODY_CHUNKED:
        http1_puts(b, "Transfer-Encoding: chunked\r\n");
        break;
    case HTTP1_BODY_NONE:
    case HTTP1_BODY_CLOSE:
        break;
    }
}

void http1_write_req_framing(struct gh_buf *b, const struct http1_msg *m)
{
    if (m->framing == HTTP1_BODY_NONE && (m->flags & HTTP1_F_HAS_CL))
        http1_write_framing(b, HTTP1_BODY_LENGTH, 0); /* "Content-Length: 0" stays said */
    else
        http1_write_framing(b, m->framing, m->content_length);
}

void http1_write_resp_framing(struct gh_buf *b, const struct http1_msg *m,
                              enum http1_framing out)
{
    if (m->status < 200 || m->status == 204)
        return;
    if (out == HTTP1_BODY_NONE && (m->flags & HTTP1_F_HAS_CL)) {
        /* HEAD and 304: the length says what a GET would carry; no body follows. */
        http1_write_framing(b, HTTP1_BODY_LENGTH, m->content_length);
        return;
    }
    http1_write_framing(b, out, m->content_length);
}

void http1_write_end(struct gh_buf *b)
{
    http1_put(b, "\r\n", 2);
}
