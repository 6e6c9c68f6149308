/*
 * Bodies on their way through: bytes of the message machine m move from an
 * input buffer to the opposite output buffer, decoded by the framing they
 * came with and written in the framing gatehouse announced. A
 * Content-Length body is copied up to its length and no further (the next
 * bytes belong to the next message); a chunked body is decoded and written
 * again with our own chunk sizes, no extensions and no trailers, so only
 * what the decoder accepted reaches the other side (an HTTP/1.0 client gets
 * it decoded, until close); a body that ends when the server closes is
 * copied, or chunked for an HTTP/1.1 client. A full
 * output buffer stops the pump: that is the back-pressure.
 */
#include "proxy_int.h"

#include <stdio.h>

/* Appends one chunk (size line, data, CRLF); room was checked. */
static void put_chunk(struct gh_buf *out, const char *d, size_t n)
{
    char line[24];
    int l = snprintf(line, sizeof(line), "%zx\r\n", n);

    gh_buf_append(out, line, (size_t)l);
    gh_buf_append(out, d, n);
    gh_buf_append(out, "\r\n", 2);
}

static void finish(struct http1_m *m, struct gh_buf *out)
{
    if (m->out == HTTP1_BODY_CHUNKED)
        gh_buf_append(out, "0\r\n\r\n", 5);
    (void)http1_m_set(m, H1M_DONE); /* every BODY_* state may end */
}

/* Copies a body of known length, or one delimited by close. With trade:
 * a body passed on as it came that fills all of in, while out is empty,
 * makes the two buffers trade places instead of moving its bytes (a
 * 64 KiB response was otherwise copied once more than nginx copies it). */
static long copy_body(struct http1_m *m, struct gh_buf *in, struct gh_buf *out, int trade)
{
    size_t n = gh_buf_len(in), room = gh_buf_room(out);

    if (m->out == HTTP1_BODY_CHUNKED)
        room = room > 32 ? room - 32 : 0;
    if (n > room)
        n = room;
    if (m->st == H1M_BODY_LENGTH && n > m->left)
        n = (size_t)m->left;
    if (n == 0)
        return 0;
    if (trade && m->out != HTTP1_BODY_CHUNKED && gh_buf_len(out) == 0 && n == gh_buf_len(in)) {
        struct gh_buf t = *out;
        t.r = t.w = 0;
        *out = *in;
        *in = t;
    } else {
        if (m->out == HTTP1_BODY_CHUNKED)
            put_chunk(out, in->data + in->r, n);
        else
            gh_buf_append(out, in->data + in->r, n);
        gh_buf_consume(in, n);
    }
    if (m->st == H1M_BODY_LENGTH) {
        m->left -= n;
        if (m->left == 0)
            finish(m, out);
    }
    return (long)n;
}

long proxy__body_pump(struct http1_m *m, struct gh_buf *in, struct gh_buf *out,
                      const struct http1_limits *lim, int trade, enum gh_reason *why)
{
    long moved = 0;

    if (!http1_m_in_body(m))
        return 0;
    if (out->data == NULL)
        gh_buf_get(out);
    if (gh_buf_room(out) < 64)
        gh_buf_compact(out);
    if (m->st != H1M_BODY_CHUNKED)
        return copy_body(m, in, out, trade);
    while (gh_buf_len(in) > 0 && m->st == H1M_BODY_CHUNKED) {
        size_t room = gh_buf_room(out), lim_in, used, dlen;
        const char *d;
        int rc, done = 0;
        if (room < 64) {
            gh_buf_compact(out);
            room = gh_buf_room(out);
            if (room < 64)
                break;
        }
        lim_in = gh_buf_len(in);
        if (lim_in > room - 32)
            lim_in = room - 32;
        rc = http1_chunk_decode(&m->ck, in->data + in->r, lim_in, lim, &used, &d, &dlen, &done,
                                why);
        if (rc == GH_ERR)
            return -1;
        if (dlen && m->out == HTTP1_BODY_CHUNKED)
            put_chunk(out, d, dlen);
        else if (dlen)
            gh_buf_append(out, d, dlen); /* decoded, for a client that knows no chunks */
        gh_buf_consume(in, used);
        moved += (long)used;
        if (done)
            finish(m, out);
        if (used == 0)
            break;
    }
    return moved;
}

int proxy__body_closed(struct http1_m *m, struct gh_buf *out)
{
    if (m->st != H1M_BODY_CLOSE)
        return -1;
    if (out->data == NULL)
        gh_buf_get(out);
    if (gh_buf_room(out) < 5)
        gh_buf_compact(out);
    if (gh_buf_room(out) < 5)
        gh_buf_grow(out, out->cap + 64);
    finish(m, out);
    return 0;
}
