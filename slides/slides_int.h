/* Private to slides/. */
#ifndef GH_SLIDES_SLIDES_INT_H
#define GH_SLIDES_SLIDES_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "slides.h"

struct slides_store {
    pthread_mutex_t mu;
    sqlite3 *db;
    char content_dir[1024];
};

/* store.c */
void slides__random_hex(char *out, size_t bytes);
int slides__resource_insert(struct slides_store *st, const char *id, int64_t meeting,
                            const char *name, int64_t size, int64_t stored,
                            const unsigned char key[16]);
int slides__resource_known(struct slides_store *st, const char *id);

/* content.c */
void slides__content_sweep(struct slides_store *st);
void slides__content_unlink(struct slides_store *st, const char *id);

#endif
