/* The static files built into the binary (generated from apps/web/ by
 * scripts/embed.sh into the build folder). Private to apps/. */
#ifndef GH_APPS_ASSETS_H
#define GH_APPS_ASSETS_H

#include <stddef.h>

struct apps_asset {
    const char *path; /* "/join.js" */
    const char *type;
    const unsigned char *data;
    size_t len;
};
/* Ends with a NULL path. */
extern const struct apps_asset apps_assets[];

#endif
