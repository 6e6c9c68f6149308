/* libFuzzer target: the request and response head parsers, whole and in
 * two pieces (the second pass resumes from the first's offset). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "proxy/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The byte rules, written the slow way, to hold the parser's word-at-a-time
 * value scan and table-driven name scan to them. */
static int ref_value_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int ref_name_byte(unsigned char c)
{
    return c > 0x20 && c < 0x7f && strchr("\"(),/:;<=>?@[\\]{}", c) == NULL;
}

static void check_fields(const char *buf, const struct http1_msg *m)
{
    unsigned i;
    uint32_t k;

    for (i = 0; i < m->nhdrs; i++) {
        const struct http1_hdr *h = &m->hdrs[i];
        if (h->name.len == 0)
            abort();
        for (k = 0; k < h->name.len; k++)
            if (!ref_name_byte((unsigned char)buf[h->name.off + k]))
                abort();
        for (k = 0; k < h->value.len; k++)
            if (!ref_value_byte((unsigned char)buf[h->value.off + k]))
                abort();
        /* the line ends where the value (and its trailing OWS) does */
        k = h->value.off + h->value.len;
        while (buf[k] == ' ' || buf[k] == '\t')
            k++;
        if (buf[k] != '\r' || buf[k + 1] != '\n')
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct http1_limits lim = {8192, 65536, 100, 1024};
    static struct http1_hdr hdrs[100];
    struct http1_msg m;
    char *buf;
    int rc;
    unsigned i;

    if (size > 70000)
        return 0;
    buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    memset(&m, 0, sizeof(m));
    m.hdrs = hdrs;
    rc = http1_parse_request(buf, size / 2, &lim, &m);
    if (rc == GH_AGAIN)
        rc = http1_parse_request(buf, size, &lim, &m);
    if (rc == GH_OK) {
        /* Every span the parser returns lies inside the head. */
        if (m.head_len > size || m.method.off + m.method.len > m.head_len ||
            m.target.off + m.target.len > m.head_len || m.path.off + m.path.len > m.head_len)
            abort();
        for (i = 0; i < m.nhdrs; i++) {
            if (hdrs[i].value.off + hdrs[i].value.len > m.head_len)
                abort();
            if (hdrs[i].kind > HTTP1_H_HSTS)
                abort(); /* every line has a kind */
        }
        if (m.framing == HTTP1_BODY_CHUNKED && m.content_length != 0)
            abort(); /* framing read two ways */
        check_fields(buf, &m);
    }
    memset(&m, 0, sizeof(m));
    m.hdrs = hdrs;
    if (http1_parse_response(buf, size, &lim, 0, &m) == GH_OK)
        check_fields(buf, &m);
    free(buf);
    return 0;
}
