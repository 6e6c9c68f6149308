/* libFuzzer target: the config parser; whatever parses must write back to
 * text that parses to the same canonical text, and must have an outline
 * (the editors' view of the same syntax). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    struct gh_conf *c = gh_conf_parse("fuzz", (const char *)data, size, err, sizeof(err));

    struct gh_conf_outline o;
    char oerr[512];
    int outlined = gh_conf_outline((const char *)data, size, &o, oerr, sizeof(oerr)) == 0;

    if (outlined)
        gh_conf_outline_free(&o);
    if (c != NULL) {
        char *t1 = gh_conf_write(c);
        if (!outlined)
            abort();
        struct gh_conf *c2 = gh_conf_parse("w", t1, strlen(t1), err, sizeof(err));
        char *t2;
        if (c2 == NULL)
            abort();
        t2 = gh_conf_write(c2);
        if (strcmp(t1, t2) != 0)
            abort();
        free(t1);
        free(t2);
        gh_conf_free(c2);
        gh_conf_free(c);
    } else if (strncmp(err, "fuzz:", 5) != 0) {
        abort(); /* every error is located */
    }
    return 0;
}
