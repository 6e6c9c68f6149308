/* Private to the two engines of db.h. */
#ifndef GH_SLIDES_DB_INT_H
#define GH_SLIDES_DB_INT_H

#include <stdint.h>

#include "db.h"

struct sqlite3_stmt;
struct pg_conn;
struct pg_result;

struct sdb {
    enum sdb_engine engine;
    char err[256];
    struct sqlite3 *db;   /* SDB_SQLITE */
    struct pg_conn *pg;   /* SDB_POSTGRESQL */
    char *conninfo;       /* owned: to reconnect, and for sdb_open_again */
    char *password;       /* owned, wiped when freed; NULL without a password file */
    long long timeout_ms; /* PostgreSQL: a statement's answer, and a connection */
    uint64_t retry_at;    /* PostgreSQL: no new connection before (after a failed one) */
    int in_tx;            /* between sdb_begin and sdb_commit or sdb_rollback */
    /* PostgreSQL: run on each new connection before its first statement
     * (the store's tables); its failure fails the connection. */
    int (*on_connect)(struct sdb *db, void *arg);
    void *on_connect_arg;
    int connecting;       /* on_connect running: its statements use the new connection */
};

struct sdb_row {
    struct sqlite3_stmt *s; /* SQLite; NULL on PostgreSQL */
    struct pg_result *res;
    int row;
};

/* db_pg.c */
void sdb__pg_close(struct sdb *db);
int64_t sdb__pg_exec(struct sdb *db, const char *sql, const struct sdb_arg *args, int nargs);
int sdb__pg_query(struct sdb *db, const char *sql, const struct sdb_arg *args, int nargs,
                  int (*fn)(const struct sdb_row *r, void *arg), void *arg);
int64_t sdb__pg_int(const struct sdb_row *r, int col);
const char *sdb__pg_text(const struct sdb_row *r, int col);
const void *sdb__pg_blob(const struct sdb_row *r, int col, size_t *len);

#endif
