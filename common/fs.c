/* Small file-system helpers shared by the stores. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"

int gh_mkdir_p(const char *path, unsigned mode)
{
    char p[1024];
    size_t i;

    if (gh_strlcpy(p, path, sizeof(p)) == -1)
        return -1;
    for (i = 1; p[i]; i++)
        if (p[i] == '/') {
            p[i] = '\0';
            if (mkdir(p, (mode_t)mode) == -1 && errno != EEXIST)
                return -1;
            p[i] = '/';
        }
    if (mkdir(p, (mode_t)mode) == -1 && errno != EEXIST)
        return -1;
    return 0;
}
