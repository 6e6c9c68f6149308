/*
 * The meeting database in and out of a backup. What leaves is a consistent
 * copy of the database (rooms, PIN and key verifiers, slide keys wrapped
 * under the key-encryption key) and never the key-encryption key itself, so
 * a bundle opens no room and decrypts no slide. What comes back replaces
 * the live database in one step through SQLite's backup API, under the
 * database's own locks, after checks that it is a meeting database of this
 * version whose every wrapped key unwraps here: a snapshot from an
 * appliance with another key-encryption key is refused before anything
 * changes, instead of leaving slides that no key opens.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "slides_int.h"

#define SNAPSHOT_VERSION 2 /* PRAGMA user_version of a database with verifiers */
/* What a meeting store's schema holds: its four tables and their automatic
 * indexes. A trigger or view in a restored image would run in the live
 * database on every later write: anything else is counted and refused. */
#define FOREIGN_SCHEMA                                                                           \
    "SELECT count(*) FROM sqlite_schema WHERE NOT ((type = 'table' AND name IN "                 \
    "('meetings', 'resources', 'waiting', 'participants')) OR (type = 'index' AND name LIKE "    \
    "'sqlite_autoindex_%'))"

unsigned char *slides_store_snapshot(struct slides_store *st, size_t *len, char *err,
                                     size_t errlen)
{
    sqlite3 *db = sdb_sqlite_handle(st->db);
    sqlite3_int64 n = 0;
    unsigned char *p, *copy = NULL;

    if (db == NULL) {
        snprintf(err, errlen, "the meeting store is PostgreSQL: back it up with pg_dump (or "
                              "pg_basebackup), not in this bundle");
        return NULL;
    }
    pthread_mutex_lock(&st->mu);
    p = sqlite3_serialize(db, "main", &n, 0);
    if (p == NULL || n < 100)
        snprintf(err, errlen, "the meeting database does not serialise: %s",
                 sqlite3_errmsg(db));
    pthread_mutex_unlock(&st->mu);
    if (p == NULL || n < 100) {
        sqlite3_free(p);
        return NULL;
    }
    /* Bytes 18 and 19 say WAL; an image read back in memory must say
     * rollback journal, or SQLite will not open it. */
    p[18] = p[19] = 1;
    copy = gh_calloc(1, (size_t)n);
    memcpy(copy, p, (size_t)n);
    gh_wipe(p, (size_t)n); /* verifiers and wrapped keys: not secret, not for the heap */
    sqlite3_free(p);
    *len = (size_t)n;
    return copy;
}

static int one_int(sqlite3 *db, const char *sql, long long *out)
{
    sqlite3_stmt *s = NULL;
    int ok = sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK &&
             sqlite3_step(s) == SQLITE_ROW;

    if (ok)
        *out = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return ok ? 0 : -1;
}

/* The image as a read-only in-memory database, checked; NULL with err. */
static sqlite3 *open_image(const unsigned char *data, size_t len,
                           long long *meetings, long long *resources, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    unsigned char *mem;
    long long v = -1, foreign = -1;
    int rc;

    if (len < 512 || len > (size_t)1 << 30 || memcmp(data, "SQLite format 3", 16) != 0) {
        snprintf(err, errlen, "the meeting store in the bundle is not an SQLite database");
        return NULL;
    }
    mem = sqlite3_malloc64(len);
    if (mem == NULL || sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        sqlite3_free(mem);
        sqlite3_close(db);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(mem, data, len);
    rc = sqlite3_deserialize(db, "main", mem, (sqlite3_int64)len, (sqlite3_int64)len,
                             SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_READONLY);
    if (rc != SQLITE_OK || one_int(db, "PRAGMA user_version", &v) == -1 ||
        v != SNAPSHOT_VERSION ||
        sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(s, 0), "ok") != 0 ||
        one_int(db, "SELECT count(*) FROM meetings", meetings) == -1 ||
        one_int(db, "SELECT count(*) FROM resources", resources) == -1 ||
        one_int(db, FOREIGN_SCHEMA, &foreign) == -1 || foreign != 0) {
        snprintf(err, errlen, "the meeting store in the bundle is damaged, of another version "
                              "(user_version %lld, this gatehouse reads %d) or holds tables, "
                              "indexes, views or triggers a meeting store does not",
                 v, SNAPSHOT_VERSION);
        sqlite3_finalize(s);
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_finalize(s);
    return db;
}

/* Every wrapped key of the image unwraps under this store's KEK. */
static int keys_unwrap(struct slides_store *st, sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    unsigned char key[16];
    int rc = 0, step = SQLITE_ERROR;

    if (sqlite3_prepare_v2(db, "SELECT id, key FROM resources", -1, &s, NULL) != SQLITE_OK)
        return -1;
    while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        if (id == NULL || slides__key_unwrap(st->kek, id, sqlite3_column_blob(s, 1),
                                             (size_t)sqlite3_column_bytes(s, 1), key) == -1) {
            snprintf(err, errlen, "the slide keys in the bundle were wrapped under another "
                                  "key-encryption key: put that appliance's slides.kek (or "
                                  "slides-kek-file) in place first; nothing was restored");
            rc = -1;
        }
    }
    /* Only a read to the end checks every key: an error midway is not "all
     * unwrap". */
    if (rc == 0 && step != SQLITE_DONE) {
        snprintf(err, errlen, "the meeting store in the bundle cannot be read through: %s",
                 sqlite3_errmsg(db));
        rc = -1;
    }
    gh_wipe(key, sizeof(key));
    sqlite3_finalize(s);
    return rc;
}

int slides_store_restore(struct slides_store *st, const unsigned char *data, size_t len,
                         int dry_run, char *err, size_t errlen)
{
    long long meetings = 0, resources = 0;
    sqlite3 *db = sdb_sqlite_handle(st->db), *img;
    sqlite3_backup *b;
    int rc;

    if (db == NULL) {
        snprintf(err, errlen, "the meeting store is PostgreSQL: restore it with pg_restore, "
                              "not from this bundle");
        return -1;
    }
    img = open_image(data, len, &meetings, &resources, err, errlen);
    if (img == NULL)
        return -1;
    if (keys_unwrap(st, img, err, errlen) == -1) {
        sqlite3_close(img);
        return -1;
    }
    if (dry_run) {
        sqlite3_close(img);
        return 0;
    }
    pthread_mutex_lock(&st->mu);
    b = sqlite3_backup_init(db, "main", img, "main");
    rc = b != NULL ? sqlite3_backup_step(b, -1) : SQLITE_ERROR;
    if (b != NULL && sqlite3_backup_finish(b) != SQLITE_OK && rc == SQLITE_DONE)
        rc = SQLITE_ERROR;
    if (rc != SQLITE_DONE)
        snprintf(err, errlen, "the meeting database was not replaced: %s",
                 sqlite3_errmsg(db));
    pthread_mutex_unlock(&st->mu);
    sqlite3_close(img);
    if (rc != SQLITE_DONE)
        return -1;
    /* Content files of meetings the restored database does not know go. */
    slides__content_sweep(st);
    gh_log_info("conference: meeting store restored (%lld meeting(s), %lld resource(s))",
                meetings, resources);
    return 0;
}
