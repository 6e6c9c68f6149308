/* Private to apps/. */
#ifndef GH_APPS_APPS_INT_H
#define GH_APPS_APPS_INT_H

#include <microhttpd.h>

#include "apps.h"

extern const struct apps_hooks *apps__hooks;
extern uint64_t apps__started_ms;

/* status.c */
enum MHD_Result apps__status_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **con_cls);

#endif
