/* Static files built into the binary: scripts/embed.sh turns a folder of
 * pages, scripts and styles into a table of these (apps/web/ into
 * apps_assets, web-ui/web/ into webui_assets), so the single binary carries
 * its user interfaces. */
#ifndef GH_COMMON_ASSET_H
#define GH_COMMON_ASSET_H

#include <stddef.h>

struct apps_asset {
    const char *path; /* "/join.js" */
    const char *type;
    const unsigned char *data;
    size_t len;
};
/* Each table ends with a NULL path. */
extern const struct apps_asset apps_assets[];
extern const struct apps_asset webui_assets[];

#endif
