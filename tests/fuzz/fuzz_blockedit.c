/* libFuzzer target: the config outline and the directive-level block
 * editor. Input: a config text, then NUL, a directive, NUL, its value.
 * Whatever the editor accepts must outline again with the same top-level
 * statements, the edited block's other directives untouched in number,
 * and every new statement of the directive inside that block. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/conf.h"
#include "web-ui/webui_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count_children(const struct gh_conf_outline *o, int b, const char *skip)
{
    size_t i, n = 0;

    for (i = 0; i < o->n; i++)
        if (o->v[i].parent == b && (skip == NULL || strcmp(o->v[i].name, skip) != 0))
            n++;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data, *d, *v, *end = text + size;
    struct gh_conf_outline o, o2;
    struct webui_field f;
    char err[512], *out;
    unsigned status = 422;
    size_t tlen, i, j;
    int b = -1, b2;

    d = memchr(text, '\0', size);
    if (d == NULL)
        return 0;
    tlen = (size_t)(d - text);
    d++;
    v = memchr(d, '\0', (size_t)(end - d));
    if (v == NULL || memchr(v + 1, '\0', (size_t)(end - v - 1)) != NULL)
        return 0;
    v++;
    if (gh_conf_outline(text, tlen, &o, err, sizeof(err)) == -1)
        return 0;
    for (i = 0; i < o.n && b == -1; i++)
        if (o.v[i].parent == -1 && o.v[i].has_block && o.v[i].arg0 != NULL)
            b = (int)i;
    if (b == -1) {
        gh_conf_outline_free(&o);
        return 0;
    }
    /* the value is NUL-terminated by the input's end: copy it */
    {
        char *val = gh_strndup(v, (size_t)(end - v)), *dir = gh_strdup(d);
        f.key = dir;
        f.value = val;
        out = webui__block_set(text, tlen, o.v[b].name, o.v[b].arg0, &f, 1, &status, err,
                               sizeof(err));
        if (out != NULL) {
            if (gh_conf_outline(out, strlen(out), &o2, err, sizeof(err)) == -1)
                abort();
            b2 = gh_conf_outline_find(&o2, o.v[b].name, strcmp(dir, "_name") == 0 ? val
                                                                                     : o.v[b].arg0);
            if (b2 == -1)
                abort();
            for (i = 0, j = 0; i < o.n; i++)
                j += o.v[i].parent == -1;
            for (i = 0; i < o2.n; i++)
                j -= o2.v[i].parent == -1;
            if (j != 0) /* the same number of top-level statements */
                abort();
            if (strcmp(dir, "_name") != 0 &&
                count_children(&o, b, dir) != count_children(&o2, b2, dir))
                abort();
            gh_conf_outline_free(&o2);
            free(out);
        }
        free(dir);
        free(val);
    }
    gh_conf_outline_free(&o);
    return 0;
}
