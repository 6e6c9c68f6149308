/* Private to slides/. */
#ifndef GH_SLIDES_SLIDES_INT_H
#define GH_SLIDES_SLIDES_INT_H

#include <pthread.h>

#include "db.h"
#include "slides.h"

struct slides_store {
    pthread_mutex_t mu;
    struct sdb *db;
    char content_dir[1024]; /* SQLite only: "" on PostgreSQL, where content is in chunks */
    unsigned char kek[SLIDES_KEK_LEN];
};

/* store.c */
void slides__random_hex(char *out, size_t bytes);
/* 0 recorded; 1 the meeting is no longer at that epoch (ended, or its
 * tokens revoked); -1 the store failed. db: an upload's own connection, in
 * its transaction; NULL: the store's. */
int slides__resource_insert(struct slides_store *st, struct sdb *db, const char *id,
                            int64_t meeting, int64_t epoch, const char *name, int64_t size,
                            int64_t stored, const unsigned char key[16]);
int slides__resource_known(struct slides_store *st, const char *id);

/* secrets.c */
int slides__kek_load(const char *dir, const char *path, unsigned char kek[SLIDES_KEK_LEN],
                     char *err, size_t errlen);
int slides__key_wrap(const unsigned char kek[SLIDES_KEK_LEN], const char *id,
                     const unsigned char key[SLIDES_KEY_LEN], unsigned char out[SLIDES_WRAPPED_LEN]);
/* 0 with key, or -1 (wrong key-encryption key, another row's key, damage). */
int slides__key_unwrap(const unsigned char kek[SLIDES_KEK_LEN], const char *id,
                       const unsigned char *w, size_t wlen, unsigned char key[SLIDES_KEY_LEN]);

/* content.c */
void slides__content_sweep(struct slides_store *st);
void slides__content_unlink(struct slides_store *st, const char *id);

#endif
