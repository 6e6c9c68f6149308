/* libFuzzer target: the request and response head parsers, whole and in
 * two pieces (the second pass resumes from the first's offset). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "proxy/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    }
    memset(&m, 0, sizeof(m));
    m.hdrs = hdrs;
    (void)http1_parse_response(buf, size, &lim, 0, &m);
    free(buf);
    return 0;
}
