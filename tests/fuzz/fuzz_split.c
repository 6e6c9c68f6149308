/* libFuzzer target: a config text split into an appliance's own part and
 * the cluster's (main/cluster_split.c). Whatever splits must split again,
 * from its own part followed by its shared part, into the same two parts:
 * an appliance that takes a version writes exactly that, and a file must
 * not grow or lose statements from one version to the next. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "main/main_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gh_sbuf l = {0}, s = {0}, both = {0}, l2 = {0}, s2 = {0};
    char err[256];

    if (main_cluster_split((const char *)data, size, &l, &s, err, sizeof(err)) == 0) {
        gh_sbuf_append(&both, l.p ? l.p : "", l.len);
        gh_sbuf_append(&both, s.p ? s.p : "", s.len);
        if (main_cluster_split(both.p ? both.p : "", both.len, &l2, &s2, err, sizeof(err)) != 0 ||
            l2.len != l.len || s2.len != s.len || (l.len && memcmp(l.p, l2.p, l.len)) ||
            (s.len && memcmp(s.p, s2.p, s.len)))
            abort();
        /* nothing is lost: every byte is in one part (own statements may
         * gain the newline that ends their line) */
        if (l.len + s.len < size)
            abort();
    }
    free(l.p);
    free(s.p);
    free(both.p);
    free(l2.p);
    free(s2.p);
    return 0;
}
