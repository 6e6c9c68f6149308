/*
 * The SQLite engine of the meeting store: one connection, opened in
 * serialized mode, with a busy timeout so a CLI writing beside the running
 * appliance waits for the lock rather than failing.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "db_int.h"

struct sdb *sdb_open_sqlite(const char *path, int read_only, char *err, size_t errlen)
{
    struct sdb *db = gh_calloc(1, sizeof(*db));
    int flags = read_only ? SQLITE_OPEN_READONLY
                          : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;

    db->engine = SDB_SQLITE;
    if (sqlite3_open_v2(path, &db->db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, db->db ? sqlite3_errmsg(db->db) : "cannot open");
        sqlite3_close(db->db);
        free(db);
        return NULL;
    }
    sqlite3_busy_timeout(db->db, 5000);
    return db;
}

void sdb_close(struct sdb *db)
{
    if (db == NULL)
        return;
    if (db->engine == SDB_SQLITE) {
        sqlite3_close(db->db);
        free(db);
        return;
    }
    sdb__pg_close(db);
}

enum sdb_engine sdb_engine(const struct sdb *db)
{
    return db->engine;
}

struct sqlite3 *sdb_sqlite_handle(struct sdb *db)
{
    return db->engine == SDB_SQLITE ? db->db : NULL;
}

static int bind_all(sqlite3_stmt *s, const struct sdb_arg *args, int nargs)
{
    int i, rc = SQLITE_OK;

    for (i = 0; i < nargs && rc == SQLITE_OK; i++) {
        switch (args[i].type) {
        case SDB_INT:
            rc = sqlite3_bind_int64(s, i + 1, args[i].i);
            break;
        case SDB_TEXT:
            rc = sqlite3_bind_text(s, i + 1, args[i].s ? args[i].s : "", -1, SQLITE_STATIC);
            break;
        case SDB_BLOB:
            rc = sqlite3_bind_blob(s, i + 1, args[i].b, (int)args[i].n, SQLITE_STATIC);
            break;
        }
    }
    return rc;
}

static void set_err(struct sdb *db)
{
    gh_strlcpy(db->err, sqlite3_errmsg(db->db), sizeof(db->err));
}

int64_t sdb_exec(struct sdb *db, const char *sql, const struct sdb_arg *args, int nargs)
{
    sqlite3_stmt *s = NULL;
    int rc;

    if (db->engine != SDB_SQLITE)
        return sdb__pg_exec(db, sql, args, nargs);
    if (nargs == 0 && strchr(sql, ';') != NULL) {
        char *msg = NULL;
        rc = sqlite3_exec(db->db, sql, NULL, NULL, &msg);
        gh_strlcpy(db->err, msg ? msg : sqlite3_errmsg(db->db), sizeof(db->err));
        sqlite3_free(msg);
        return rc == SQLITE_OK ? sqlite3_changes(db->db) : -1;
    }
    rc = sqlite3_prepare_v2(db->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = bind_all(s, args, nargs);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) /* a statement with RETURNING that nobody reads */
        while ((rc = sqlite3_step(s)) == SQLITE_ROW)
            ;
    if (rc != SQLITE_DONE)
        set_err(db);
    sqlite3_finalize(s);
    if (rc == SQLITE_DONE)
        return sqlite3_changes(db->db);
    return (rc & 0xff) == SQLITE_CONSTRAINT && strstr(db->err, "UNIQUE") != NULL ? SDB_CONFLICT
                                                                                 : -1;
}

int sdb_query(struct sdb *db, const char *sql, const struct sdb_arg *args, int nargs,
              int (*fn)(const struct sdb_row *r, void *arg), void *arg)
{
    struct sdb_row row;
    int rc, n = 0, stop = 0;

    if (db->engine != SDB_SQLITE)
        return sdb__pg_query(db, sql, args, nargs, fn, arg);
    memset(&row, 0, sizeof(row));
    rc = sqlite3_prepare_v2(db->db, sql, -1, &row.s, NULL);
    if (rc == SQLITE_OK)
        rc = bind_all(row.s, args, nargs);
    while (rc == SQLITE_OK && (rc = sqlite3_step(row.s)) == SQLITE_ROW) {
        n++;
        if (!stop)
            stop = fn(&row, arg);
        rc = stop ? SQLITE_DONE : SQLITE_OK;
    }
    if (rc != SQLITE_DONE)
        set_err(db);
    sqlite3_finalize(row.s);
    if (rc == SQLITE_DONE)
        return n;
    return (rc & 0xff) == SQLITE_CONSTRAINT && strstr(db->err, "UNIQUE") != NULL ? SDB_CONFLICT
                                                                                 : -1;
}

int64_t sdb_int(const struct sdb_row *r, int col)
{
    if (r->s == NULL)
        return sdb__pg_int(r, col);
    return sqlite3_column_int64(r->s, col);
}

const char *sdb_text(const struct sdb_row *r, int col)
{
    const unsigned char *t;

    if (r->s == NULL)
        return sdb__pg_text(r, col);
    t = sqlite3_column_text(r->s, col);
    return t ? (const char *)t : "";
}

const void *sdb_blob(const struct sdb_row *r, int col, size_t *len)
{
    if (r->s == NULL)
        return sdb__pg_blob(r, col, len);
    *len = (size_t)sqlite3_column_bytes(r->s, col);
    return sqlite3_column_blob(r->s, col);
}

const char *sdb_error(struct sdb *db)
{
    return db->err;
}

int sdb_begin(struct sdb *db)
{
    if (sdb_exec(db, db->engine == SDB_SQLITE ? "BEGIN IMMEDIATE" : "BEGIN", NULL, 0) < 0)
        return -1;
    db->in_tx = 1;
    return 0;
}

int sdb_commit(struct sdb *db)
{
    int rc = sdb_exec(db, "COMMIT", NULL, 0) >= 0 ? 0 : -1;

    db->in_tx = 0; /* committed, or (failed) over with the connection or rolled back */
    return rc;
}

void sdb_rollback(struct sdb *db)
{
    char keep[sizeof(db->err)];

    /* The error worth reporting is the one that led here. */
    memcpy(keep, db->err, sizeof(keep));
    if (db->engine == SDB_SQLITE || db->pg != NULL)
        sdb_exec(db, "ROLLBACK", NULL, 0);
    db->in_tx = 0;
    memcpy(db->err, keep, sizeof(keep));
}
