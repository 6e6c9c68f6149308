/*
 * Chunked transfer coding (RFC 9112 section 7.1), decoded while streaming.
 * The proxy re-frames what it forwards (its own chunk sizes, no extensions,
 * no trailers), so only what this decoder accepted ever reaches the other
 * side. Sizes are hex without sign or white space, at most 15 digits;
 * extensions are bounded; every line ends in CRLF.
 */
#include "http1.h"

#include "../common/common.h"

enum {
    CK_SIZE_FIRST, /* expecting the first hex digit */
    CK_SIZE,       /* more hex digits, ';' or CR */
    CK_EXT,        /* inside an extension, until CR */
    CK_SIZE_LF,
    CK_DATA,
    CK_DATA_CR,
    CK_DATA_LF,
    CK_TRAILER_START, /* after the last chunk: CR (end) or a trailer field */
    CK_TRAILER,       /* inside a trailer line */
    CK_TRAILER_LF,
    CK_END_LF,
    CK_DONE,
};

void http1_chunk_init(struct http1_chunk *ck)
{
    ck->state = CK_SIZE_FIRST;
    ck->lines = 0;
    ck->remaining = 0;
    ck->count = 0;
    ck->trailer = 0;
}

int http1_chunk_started(const struct http1_chunk *ck)
{
    return ck->lines > 0;
}

int http1_chunk_decode(struct http1_chunk *ck, const char *p, size_t len,
                       const struct http1_limits *lim, size_t *used, const char **data,
                       size_t *dlen, int *done, enum gh_reason *why)
{
    size_t i = 0;

    *data = NULL;
    *dlen = 0;
    *done = 0;
    while (i < len) {
        unsigned char c = (unsigned char)p[i];
        int h;

        switch (ck->state) {
        case CK_SIZE_FIRST:
            if ((h = gh_hexval(c)) < 0)
                goto bad;
            ck->remaining = (uint64_t)h;
            ck->count = 1;
            ck->state = CK_SIZE;
            break;
        case CK_SIZE:
            if ((h = gh_hexval(c)) >= 0) {
                if (++ck->count > 15)
                    goto bad;
                ck->remaining = ck->remaining * 16 + (uint64_t)h;
            } else if (c == ';') {
                ck->count = 0;
                ck->state = CK_EXT;
            } else if (c == '\r') {
                ck->state = CK_SIZE_LF;
            } else {
                goto bad;
            }
            break;
        case CK_EXT:
            if (c == '\r') {
                ck->state = CK_SIZE_LF;
            } else if (c == '\t' || (c >= 0x20 && c != 0x7f)) {
                if (++ck->count > lim->max_chunk_ext) {
                    *why = GH_REASON_CHUNK_EXT_TOO_LONG;
                    return GH_ERR;
                }
            } else {
                goto bad;
            }
            break;
        case CK_SIZE_LF:
            if (c != '\n')
                goto bad;
            ck->lines++;
            ck->state = ck->remaining ? CK_DATA : CK_TRAILER_START;
            break;
        case CK_DATA: {
            size_t n = len - i;
            if (n > ck->remaining)
                n = (size_t)ck->remaining;
            *data = p + i;
            *dlen = n;
            ck->remaining -= n;
            if (ck->remaining == 0)
                ck->state = CK_DATA_CR;
            *used = i + n;
            return GH_OK;
        }
        case CK_DATA_CR:
            if (c != '\r')
                goto bad;
            ck->state = CK_DATA_LF;
            break;
        case CK_DATA_LF:
            if (c != '\n')
                goto bad;
            ck->state = CK_SIZE_FIRST;
            break;
        case CK_TRAILER_START:
            if (c == '\r') {
                ck->state = CK_END_LF;
                break;
            }
            if (c == ' ' || c == '\t' || c == ':')
                goto bad; /* obs-fold or empty field name */
            ck->state = CK_TRAILER;
            /* FALLTHROUGH */
        case CK_TRAILER:
            if (c == '\r')
                ck->state = CK_TRAILER_LF;
            else if (!(c == '\t' || (c >= 0x20 && c != 0x7f)))
                goto bad;
            if (++ck->trailer > lim->max_header_size) {
                *why = GH_REASON_HEADERS_TOO_LARGE;
                return GH_ERR;
            }
            break;
        case CK_TRAILER_LF:
            if (c != '\n')
                goto bad;
            ck->state = CK_TRAILER_START;
            break;
        case CK_END_LF:
            if (c != '\n')
                goto bad;
            ck->state = CK_DONE;
            *used = i + 1;
            *done = 1;
            return GH_OK;
        case CK_DONE:
            *used = i;
            *done = 1;
            return GH_OK;
        }
        i++;
    }
    *used = i;
    return GH_AGAIN;
bad:
    *why = GH_REASON_BAD_CHUNK;
    return GH_ERR;
}
