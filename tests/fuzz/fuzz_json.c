/* libFuzzer target: the one JSON string writer. Invariants: whatever the
 * bytes, gh_json_strn's output parses (jansson) as one string; when the
 * input is well-formed UTF-8 it reads back byte for byte; gh_json_put never
 * writes past its buffer, always terminates, and a shortened field ends
 * with the cut mark. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gh_sbuf o = {NULL, 0, 0}, arr = {NULL, 0, 0};
    char small[40];
    json_error_t e;
    json_t *j, *u;
    size_t n;

    if (size > 8192)
        return 0;
    gh_json_strn(&o, (const char *)data, size);
    gh_sbuf_printf(&arr, "[%s]", o.p);
    j = json_loads(arr.p, JSON_ALLOW_NUL, &e);
    if (j == NULL || !json_is_string(json_array_get(j, 0)))
        abort();
    /* jansson refuses invalid UTF-8: when it takes the input as it is, the
     * writer must have kept it as it is. */
    u = json_stringn((const char *)data, size);
    if (u != NULL && (json_string_length(json_array_get(j, 0)) != size ||
                      memcmp(json_string_value(json_array_get(j, 0)), data, size) != 0))
        abort();
    json_decref(u);
    json_decref(j);
    n = gh_json_put(small, sizeof(small), (const char *)data, size, size / 2);
    if (n >= sizeof(small) || strlen(small) != n)
        abort();
    if (size / 2 < size && size > 0 &&
        (n < sizeof(GH_JSON_CUT) - 1 || strcmp(small + n - (sizeof(GH_JSON_CUT) - 1), GH_JSON_CUT)))
        abort();
    free(o.p);
    free(arr.p);
    return 0;
}
