/* libFuzzer target: the path normaliser and host normaliser. Invariants: the
 * output never grows, contains no dot segment, no "//" when merging, and
 * normalising it again changes nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct rules_path_opts opts[2] = {{1, 0}, {0, 1}};
    char *out, *again, host[300];
    size_t n, m, i;
    int k;

    if (size > 4096)
        return 0;
    out = malloc(size + 1);
    again = malloc(size + 1);
    for (k = 0; k < 2; k++) {
        if (rules_path_norm((const char *)data, size, &opts[k], out, size + 1, &n) !=
            GH_REASON_NONE)
            continue;
        if (n > size || out[0] != '/' || strlen(out) != n)
            abort();
        if (strstr(out, "/../") || strstr(out, "/./") ||
            (n >= 3 && memcmp(out + n - 3, "/..", 3) == 0) ||
            (n >= 2 && memcmp(out + n - 2, "/.", 2) == 0))
            abort();
        if (k == 0 && strstr(out, "//"))
            abort();
        if (rules_path_norm(out, n, &opts[k], again, size + 1, &m) != GH_REASON_NONE ||
            m != n || memcmp(out, again, n) != 0)
            abort(); /* not idempotent: the backend could read it differently */
        for (i = 0; i < n; i++)
            if ((unsigned char)out[i] <= 0x20 || (unsigned char)out[i] >= 0x7f ||
                out[i] == '\\')
                abort();
    }
    if (size < 290 && rules_host_norm((const char *)data, size, host, sizeof(host)) == 0) {
        for (i = 0; host[i]; i++)
            if (host[i] >= 'A' && host[i] <= 'Z')
                abort();
    }
    free(out);
    free(again);
    return 0;
}
