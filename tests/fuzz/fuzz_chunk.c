/* libFuzzer target: the chunked decoder, fed in pieces whose sizes come from
 * the first input byte; decoded data can never exceed the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "proxy/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct http1_limits lim = {8192, 4096, 100, 64};
    struct http1_chunk ck;
    size_t off = 1, step, total = 0;
    enum gh_reason why;

    if (size < 1)
        return 0;
    step = (size_t)data[0] % 17 + 1;
    http1_chunk_init(&ck);
    while (off < size) {
        size_t n = size - off < step ? size - off : step, used;
        const char *d;
        size_t dlen;
        int done, rc = http1_chunk_decode(&ck, (const char *)data + off, n, &lim, &used, &d,
                                          &dlen, &done, &why);
        if (rc == GH_ERR || done)
            break;
        if (used > n || (dlen && (d < (const char *)data + off || d + dlen > (const char *)data + off + n)))
            abort();
        total += dlen;
        off += used;
        if (used == 0 && rc != GH_AGAIN)
            abort(); /* no progress and no request for more: a stall */
    }
    if (total > size)
        abort();
    return 0;
}
