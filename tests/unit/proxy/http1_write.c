/* Table-driven tests of the numbers proxy/http1_write.c formats itself
 * (status codes, Content-Length), at their bounds. */
#include "../../../proxy/http1.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../../common/common.h"
#include "../unit.h"

static const struct http1_limits lim = {8192, 65536, 100, 1024};

static void text_of(struct gh_buf *b, char *out, size_t len)
{
    size_t n = gh_buf_len(b) < len - 1 ? gh_buf_len(b) : len - 1;
    memcpy(out, b->data + b->r, n);
    out[n] = '\0';
}

TEST(http1_write_status_lines)
{
    static const struct {
        const char *in, *want;
    } rows[] = {
        {"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 100 Continue\r\n"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 200 OK\r\n"},
        {"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 404 Not Found\r\n"},
        {"HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 599 \r\n"},
        {"HTTP/1.1 308 x\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 308 x\r\n"},
    };
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(rows); i++) {
        struct http1_hdr hdrs[100];
        struct http1_msg m;
        struct gh_buf b = {0};
        char got[128];
        int rc;

        memset(&m, 0, sizeof(m));
        m.hdrs = hdrs;
        rc = http1_parse_response(rows[i].in, strlen(rows[i].in), &lim, 0, &m);
        CHECK_EQ(rc, GH_OK, rows[i].in);
        if (rc != GH_OK)
            continue;
        http1_write_status_line(&b, rows[i].in, &m);
        text_of(&b, got, sizeof(got));
        CHECK_STR(got, rows[i].want, rows[i].in);
        gh_buf_put(&b);
    }
}

TEST(http1_write_content_lengths)
{
    static const struct {
        uint64_t len;
        const char *want;
    } rows[] = {
        {0, "Content-Length: 0\r\n"},
        {9, "Content-Length: 9\r\n"},
        {10, "Content-Length: 10\r\n"},
        {1024, "Content-Length: 1024\r\n"},
        {999999999999999999ULL, "Content-Length: 999999999999999999\r\n"},
        {UINT64_MAX, "Content-Length: 18446744073709551615\r\n"},
    };
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(rows); i++) {
        struct gh_buf b = {0};
        char got[64];

        http1_write_framing(&b, HTTP1_BODY_LENGTH, rows[i].len);
        text_of(&b, got, sizeof(got));
        CHECK_STR(got, rows[i].want, rows[i].want);
        gh_buf_put(&b);
    }
}
