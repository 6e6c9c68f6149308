/* JSON strings for every answer of web-ui/ (a file of its own: the block
 * editor's fuzz target builds it without the HTTP side). */
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "webui_int.h"

void webui__js(struct gh_sbuf *o, const char *s)
{
    size_t n = s ? strlen(s) : 0, cap = n * 6 + 16;
    char *buf = gh_calloc(1, cap);

    gh_json_escape(buf, cap, s ? s : "", n, n);
    gh_sbuf_printf(o, "\"%s\"", buf);
    free(buf);
}
