/* libFuzzer target: the admin router's pattern matcher. The input is a
 * pattern, a NUL, and a path. Invariants: a match's {} segments are
 * non-empty, hold no '/', fit their buffer and are not "." or ".."; and
 * the pattern with its segments put back is the path, byte for byte (the
 * matcher neither skips nor invents a byte). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "web-ui/webui_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* router.c's role check is not under test here (users.c would bring the
 * user store): only the matcher is called. */
int webui_allowed(enum webui_role role, enum webui_action a)
{
    (void)role;
    (void)a;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char arg[WEBUI_ROUTE_ARGS][WEBUI_ROUTE_ARG], *buf, *url, *back;
    const char *p;
    size_t bl = 0;
    int k = 0;

    if (size > 4096)
        return 0;
    buf = malloc(size + 2);
    memcpy(buf, data, size);
    buf[size] = '\0';
    buf[size + 1] = '\0';
    url = buf + strlen(buf) + 1;
    if (url > buf + size) {
        free(buf);
        return 0;
    }
    memset(arg, 0, sizeof(arg));
    if (webui__route_match(buf, url, arg)) {
        back = malloc(strlen(buf) + WEBUI_ROUTE_ARGS * WEBUI_ROUTE_ARG + 1);
        for (p = buf; *p; p++) {
            if (p[0] == '{' && p[1] == '}' && (p == buf || p[-1] == '/') &&
                (p[2] == '/' || p[2] == '\0')) {
                size_t al = strlen(arg[k]);
                if (k >= WEBUI_ROUTE_ARGS || al == 0 || al >= WEBUI_ROUTE_ARG ||
                    strchr(arg[k], '/') || strcmp(arg[k], ".") == 0 || strcmp(arg[k], "..") == 0)
                    abort();
                memcpy(back + bl, arg[k++], al);
                bl += al;
                p++;
            } else {
                back[bl++] = *p;
            }
        }
        back[bl] = '\0';
        if (strcmp(back, url) != 0)
            abort();
        free(back);
    }
    free(buf);
    return 0;
}
