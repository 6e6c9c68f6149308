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

/* conference.c */
enum MHD_Result apps__conference_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                         const char *method, const char *version,
                                         const char *upload_data, size_t *upload_data_size,
                                         void **con_cls);
void apps__conference_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe);
int apps__conference_configure(const struct gh_conf *c, char *err, size_t errlen);
void apps__conference_stop(void);

#endif
