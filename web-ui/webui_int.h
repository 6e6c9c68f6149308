/* Private to web-ui/. */
#ifndef GH_WEBUI_WEBUI_INT_H
#define GH_WEBUI_WEBUI_INT_H

#include <stddef.h>

#include "webui.h"

/* Previous versions of the config kept in state-dir/admin/history. */
#define WEBUI_HISTORY_KEEP 20

/* confedit.c */
/* 16 hex digits of SHA-256 over the file's bytes: the ETag. */
void webui__version(const char *text, size_t len, char out[17]);
char *webui__read_file(const char *path, size_t *len);
/* The text with one server's directive rewritten with a new state (not
 * NULL) and/or weight (> 0), every other byte kept; NULL with err. */
char *webui__set_server(const char *text, size_t len, const char *svc, const char *server,
                        const char *state, long long weight, char *err, size_t errlen);
/* Copies old into the history, then writes text atomically in place. */
int webui__commit(const char *conf_path, const char *history_dir, const char *old,
                  size_t oldlen, const char *text, size_t len, char *err, size_t errlen);

/* app.c */
struct webui_users *webui__users(void);

#endif
