/*
 * The meeting store's SQL engines, private to slides/: SQLite (a file in the
 * state folder, db_sqlite.c) or PostgreSQL (a server the appliances share,
 * db_pg.c), behind one small interface so store.c holds each query once.
 *
 * Statements are written in the dialect both accept (SQLite 3.40 and
 * PostgreSQL 15 share upserts, RETURNING and CAST); parameters are "?" or
 * "?N", which the PostgreSQL engine renumbers as "$N"; "rowid", the order
 * rows went in, is SQLite's own column and the PostgreSQL schema's "seq".
 * Results are read by column number as numbers, text or bytes.
 *
 * One connection is not thread-safe: the store serialises its calls (its
 * mutex), and an upload to PostgreSQL holds a connection of its own for the
 * one transaction it is.
 */
#ifndef GH_SLIDES_DB_H
#define GH_SLIDES_DB_H

#include <stddef.h>
#include <stdint.h>

#include "slides.h"

enum sdb_engine { SDB_SQLITE, SDB_POSTGRESQL };

enum sdb_type { SDB_INT, SDB_TEXT, SDB_BLOB };

struct sdb_arg {
    enum sdb_type type;
    int64_t i;
    const char *s;   /* SDB_TEXT: NUL-terminated */
    const void *b;   /* SDB_BLOB */
    size_t n;
};
#define SDB_I(x) ((struct sdb_arg){SDB_INT, (int64_t)(x), NULL, NULL, 0})
#define SDB_S(x) ((struct sdb_arg){SDB_TEXT, 0, (x), NULL, 0})
#define SDB_B(p, len) ((struct sdb_arg){SDB_BLOB, 0, NULL, (p), (len)})

struct sdb;
struct sdb_row;


/* SQLite: path, made when missing (schema applied by the caller). */
struct sdb *sdb_open_sqlite(const char *path, int read_only, char *err, size_t errlen);
/* on_connect (may be NULL) runs on every new connection before anything
 * else; with pg->lazy a server that does not answer now still gives a
 * handle (err says why, for a warning), which connects at first use. */
struct sdb *sdb_open_pg(const struct slides_pg *pg, int (*on_connect)(struct sdb *db, void *arg),
                        void *arg, char *err, size_t errlen);
/* A second connection to the same database (PostgreSQL only: an upload's
 * own transaction), or NULL with err. */
struct sdb *sdb_open_again(struct sdb *db, char *err, size_t errlen);
void sdb_close(struct sdb *db);
enum sdb_engine sdb_engine(const struct sdb *db);

/* Runs one statement: the number of rows it changed (>= 0), or -1 with
 * sdb_error; SDB_CONFLICT when a UNIQUE or PRIMARY KEY constraint refused
 * it. Several statements separated by ';' only without arguments. */
#define SDB_CONFLICT (-2)
int64_t sdb_exec(struct sdb *db, const char *sql, const struct sdb_arg *args, int nargs);
/* Runs a query, calling fn for each row until it returns non-zero: the
 * number of rows seen, or -1 (SDB_CONFLICT as sdb_exec) with sdb_error. */
int sdb_query(struct sdb *db, const char *sql, const struct sdb_arg *args, int nargs,
              int (*fn)(const struct sdb_row *r, void *arg), void *arg);
int64_t sdb_int(const struct sdb_row *r, int col);
/* Never NULL ("" for NULL); valid while fn runs. */
const char *sdb_text(const struct sdb_row *r, int col);
const void *sdb_blob(const struct sdb_row *r, int col, size_t *len);
const char *sdb_error(struct sdb *db);

/* A transaction that takes the write lock at once (SQLite BEGIN IMMEDIATE;
 * PostgreSQL BEGIN, locks taken by the statements). */
int sdb_begin(struct sdb *db);
int sdb_commit(struct sdb *db);
void sdb_rollback(struct sdb *db);

/* The SQLite handle, for what only SQLite has (backups, checkpoints): NULL
 * on PostgreSQL. */
struct sqlite3;
struct sqlite3 *sdb_sqlite_handle(struct sdb *db);

#endif
