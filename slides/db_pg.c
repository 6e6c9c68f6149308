/*
 * The PostgreSQL engine of the meeting store, on libpq (Debian's libpq5:
 * the server's own client library, which speaks its protocol, TLS and
 * multi-host failover, so none of that is ours to write).
 *
 * Statements go as PQexecParams with numbers and text as text parameters
 * and bytes as binary ones, each typed (int8, text, bytea: a parameter in
 * an INSERT ... SELECT list has no column to take a type from), and come
 * back in binary, so a bytea chunk of
 * slide content is its bytes with no hex decoding. A connection that
 * broke (the primary was killed) or that reached a server which is now a
 * standby (SQLSTATE 25006, read-only) is reset — libpq then tries each host
 * of the conninfo, and "target_session_attrs=read-write" makes it take the
 * new primary — and a statement outside a transaction is tried once more;
 * inside one it fails, and the caller's transaction with it.
 *
 * Every statement is sent and awaited with our own deadline (the
 * meetings-store timeout; libpq's blocking calls have none): a server that
 * stopped answering (SIGSTOP, a cut link) costs a caller that long, then
 * the connection is dropped, and for a second after a failed connection
 * callers are told at once instead of each waiting again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/common.h"
#include "db_int.h"

#define MAX_ARGS 16
#define RETRY_MS 1000 /* after a failed connection, callers fail at once this long */

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg; /* NOTICEs ("relation exists, skipping") are not worth a log line */
}

static char *read_password(const char *file, char *err, size_t errlen)
{
    char buf[512];
    size_t n;
    struct stat sb;
    FILE *f = fopen(file, "re");

    if (f == NULL) {
        snprintf(err, errlen, "meetings-store password-file %s: %s", file, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &sb) == -1 || (sb.st_mode & 077) != 0) {
        snprintf(err, errlen, "meetings-store password-file %s: group or others may read it "
                              "(chmod 600)", file);
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (buf[0] == '\0') {
        snprintf(err, errlen, "meetings-store password-file %s: empty", file);
        return NULL;
    }
    {
        char *p = gh_strdup(buf);
        gh_wipe(buf, sizeof(buf));
        return p;
    }
}

static int word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

static int connect_now(struct sdb *db, char *err, size_t errlen)
{
    char ct[24], opts[96];
    /* Later keywords override what the conninfo (expanded from "dbname")
     * says: the password from its file; the defaults before it are
     * overridden by the conninfo. Keepalives find a primary that vanished
     * without a reset (a cut cable) within seconds, not hours. */
    /* lock_timeout: a statement waiting for a lock gives up within our
     * deadline too; idle_in_transaction: an upload whose client went quiet
     * (or an appliance that vanished mid-transaction) frees its connection
     * slot and locks within a minute. */
    const char *kw[] = {"connect_timeout", "keepalives_idle", "keepalives_interval",
                        "keepalives_count", "tcp_user_timeout", "application_name", "options",
                        "dbname", "password", NULL};
    const char *val[] = {ct, "5", "2", "3", "10000", "gatehouse", opts, db->conninfo,
                         db->password, NULL};

    /* libpq's connect_timeout is whole seconds (at least 2 are used). */
    snprintf(ct, sizeof(ct), "%lld", (long long)(db->timeout_ms + 999) / 1000);
    snprintf(opts, sizeof(opts), "-c lock_timeout=%lld -c idle_in_transaction_session_timeout=60000",
             (long long)db->timeout_ms);
    if (db->password == NULL)
        kw[8] = NULL;
    db->pg = PQconnectdbParams(kw, val, 1);
    if (db->pg == NULL || PQstatus(db->pg) != CONNECTION_OK) {
        const char *m = db->pg ? PQerrorMessage(db->pg) : "out of memory";
        snprintf(err, errlen, "meetings-store postgresql: %.*s", (int)strcspn(m, "\n"), m);
        PQfinish(db->pg);
        db->pg = NULL;
        db->retry_at = gh_now_ms() + RETRY_MS;
        return -1;
    }
    PQsetNoticeProcessor(db->pg, quiet, NULL);
    if (db->on_connect != NULL) {
        int rc;
        db->connecting = 1;
        rc = db->on_connect(db, db->on_connect_arg);
        db->connecting = 0;
        if (rc == -1) {
            snprintf(err, errlen, "meetings-store postgresql: %s", db->err);
            PQfinish(db->pg);
            db->pg = NULL;
            db->retry_at = gh_now_ms() + RETRY_MS;
            return -1;
        }
    }
    return 0;
}

int slides_pg_check(const struct slides_pg *pg, char *err, size_t errlen)
{
    PQconninfoOption *o, *all;
    char *msg = NULL, *pw;

    all = PQconninfoParse(pg->conninfo, &msg);
    if (all == NULL) {
        const char *m = msg ? msg : "out of memory";
        snprintf(err, errlen, "meetings-store conninfo: %.*s", (int)strcspn(m, "\n"), m);
        PQfreemem(msg);
        return -1;
    }
    for (o = all; o->keyword != NULL; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0') {
            /* also a URI's user:password@ and ?password= */
            PQconninfoFree(all);
            snprintf(err, errlen, "meetings-store conninfo holds a password; put it in "
                                  "password-file");
            return -1;
        }
    PQconninfoFree(all);
    if (pg->password_file == NULL)
        return 0;
    pw = read_password(pg->password_file, err, errlen);
    if (pw == NULL)
        return -1;
    gh_wipe(pw, strlen(pw));
    free(pw);
    return 0;
}

struct sdb *sdb_open_pg(const struct slides_pg *pg, int (*on_connect)(struct sdb *db, void *arg),
                        void *arg, char *err, size_t errlen)
{
    struct sdb *db = gh_calloc(1, sizeof(*db));

    if (slides_pg_check(pg, err, errlen) == -1) {
        free(db);
        return NULL;
    }
    db->engine = SDB_POSTGRESQL;
    db->conninfo = gh_strdup(pg->conninfo);
    db->timeout_ms = pg->timeout_ms > 0 ? pg->timeout_ms : 5000;
    if (pg->password_file != NULL &&
        (db->password = read_password(pg->password_file, err, errlen)) == NULL) {
        sdb__pg_close(db);
        return NULL;
    }
    db->on_connect = on_connect;
    db->on_connect_arg = arg;
    if (connect_now(db, err, errlen) == -1) {
        if (pg->lazy) {
            db->retry_at = 0; /* the first use tries at once */
            return db;
        }
        sdb__pg_close(db);
        return NULL;
    }
    err[0] = '\0';
    return db;
}

struct sdb *sdb_open_again(struct sdb *db, char *err, size_t errlen)
{
    struct sdb *o;

    if (db->engine != SDB_POSTGRESQL) {
        snprintf(err, errlen, "one SQLite connection only");
        return NULL;
    }
    o = gh_calloc(1, sizeof(*o));
    o->engine = SDB_POSTGRESQL;
    o->conninfo = gh_strdup(db->conninfo);
    o->timeout_ms = db->timeout_ms;
    o->password = db->password ? gh_strdup(db->password) : NULL;
    if (connect_now(o, err, errlen) == -1) {
        sdb__pg_close(o);
        return NULL;
    }
    return o;
}

void sdb__pg_close(struct sdb *db)
{
    PQfinish(db->pg);
    free(db->conninfo);
    if (db->password != NULL) {
        gh_wipe(db->password, strlen(db->password));
        free(db->password);
    }
    free(db);
}

/* Well-formed UTF-8 (RFC 3629: no overlongs, surrogates or past U+10FFFF). */
static int utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        unsigned c = *p, n, cp, i;
        if (c < 0x80) {
            p++;
            continue;
        }
        n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 ? 1 : 0;
        if (n == 0 || c > 0xf4)
            return 0;
        cp = c & (0x3f >> n);
        for (i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        p += n + 1;
    }
    return 1;
}

/* A copy with each byte that is not part of a well-formed sequence as '?'. */
static char *utf8_repair(const char *s)
{
    size_t n = strlen(s), i = 0;
    char *out = gh_calloc(1, n + 1), one[5];

    while (i < n) {
        size_t k = 1;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            if (i + k > n)
                k = n - i;
            memcpy(one, s + i, k);
            one[k] = '\0';
            if (!utf8_ok(one)) {
                out[i++] = '?';
                continue;
            }
        }
        memcpy(out + i, s + i, k);
        i += k;
    }
    return out;
}

/* "?" and "?N" become "$N" (outside quotes), the word "rowid" "seq"; NULL
 * for a number past MAX_ARGS. The statements are ours and constant: no
 * comments or E'' strings in them. */
static char *translate(const char *sql, int *nparams)
{
    size_t n = strlen(sql), o = 0;
    char *out = gh_calloc(1, 3 * n + 16);
    int next = 0, max = 0;
    const char *p = sql;
    char q = 0;

    while (*p != '\0') {
        if (q != 0) {
            if (*p == q)
                q = 0;
            out[o++] = *p++;
        } else if (*p == '\'' || *p == '"') {
            q = *p;
            out[o++] = *p++;
        } else if (*p == '?') {
            int num;
            p++;
            if (*p >= '0' && *p <= '9') {
                num = 0;
                while (*p >= '0' && *p <= '9' && num < 1000)
                    num = num * 10 + (*p++ - '0');
                if (num > next)
                    next = num;
            } else {
                num = ++next;
            }
            if (num < 1 || num > MAX_ARGS) { /* "$NN" then fits where "?" was, 3 to 1 */
                free(out);
                return NULL;
            }
            if (num > max)
                max = num;
            o += (size_t)snprintf(out + o, 3 * n + 16 - o, "$%d", num);
        } else if (strncmp(p, "rowid", 5) == 0 && (p == sql || !word_char(p[-1])) &&
                   !word_char(p[5])) {
            memcpy(out + o, "seq", 3);
            o += 3;
            p += 5;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    *nparams = max;
    return out;
}

static void set_err(struct sdb *db, const PGresult *res)
{
    const char *m = res ? PQresultErrorMessage(res) : "";

    if (m == NULL || m[0] == '\0')
        m = PQerrorMessage(db->pg);
    snprintf(db->err, sizeof(db->err), "%.*s", (int)strcspn(m, "\n"), m);
}

/* The connection is worth a reset: broken, or on a server that is a
 * standby now. */
static int stale(struct sdb *db, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    return PQstatus(db->pg) == CONNECTION_BAD || (state && strcmp(state, "25006") == 0);
}

/* multi: several statements, no parameters, text results (the schema). */
/* Waits for the connection's socket (events) until the deadline: 0 ready,
 * -1 the deadline passed. */
static int wait_socket(struct sdb *db, short events, uint64_t deadline)
{
    struct pollfd p = {PQsocket(db->pg), events, 0};
    uint64_t now;
    int r;

    for (;;) {
        now = gh_now_ms();
        if (now >= deadline)
            return -1;
        r = poll(&p, 1, (int)(deadline - now));
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* The statement sent and its result awaited by the deadline; the last
 * result (the first failed one, of several statements). NULL with db->err
 * when the server did not answer in time: the connection is dropped then,
 * since its state is unknown. */
static PGresult *exec_timed(struct sdb *db, const char *q, int multi, int nargs,
                            const Oid *types, const char *const *vals, const int *lens,
                            const int *fmts)
{
    uint64_t deadline = gh_now_ms() + (uint64_t)db->timeout_ms;
    PGresult *last = NULL, *r;
    int f;

    if (!(multi ? PQsendQuery(db->pg, q)
                : PQsendQueryParams(db->pg, q, nargs, types, vals, lens, fmts, 1))) {
        set_err(db, NULL);
        return NULL;
    }
    while ((f = PQflush(db->pg)) == 1)
        if (wait_socket(db, POLLOUT, deadline) == -1)
            goto late;
    for (;;) {
        while (PQisBusy(db->pg)) {
            if (wait_socket(db, POLLIN, deadline) == -1)
                goto late;
            if (!PQconsumeInput(db->pg))
                break; /* the connection broke: PQgetResult says so */
        }
        r = PQgetResult(db->pg);
        if (r == NULL)
            break;
        if (last != NULL && !(PQresultStatus(last) == PGRES_COMMAND_OK ||
                              PQresultStatus(last) == PGRES_TUPLES_OK)) {
            PQclear(r); /* keep the first failure */
        } else {
            PQclear(last);
            last = r;
        }
        if (PQstatus(db->pg) == CONNECTION_BAD)
            break;
    }
    return last;
late:
    PQclear(last);
    snprintf(db->err, sizeof(db->err), "no answer within %lld ms", (long long)db->timeout_ms);
    PQfinish(db->pg);
    db->pg = NULL;
    db->retry_at = gh_now_ms() + RETRY_MS;
    return NULL;
}

static PGresult *run(struct sdb *db, const char *sql, const struct sdb_arg *args, int nargs,
                     int multi)
{
    char nums[MAX_ARGS][24], *fixed[MAX_ARGS];
    const char *vals[MAX_ARGS];
    int nfixed = 0;
    int lens[MAX_ARGS], fmts[MAX_ARGS];
    Oid types[MAX_ARGS];
    char *q;
    PGresult *res = NULL;
    int i, np = 0, tries, idle;

    if (nargs > MAX_ARGS) {
        snprintf(db->err, sizeof(db->err), "too many parameters");
        return NULL;
    }
    for (i = 0; i < nargs; i++) {
        switch (args[i].type) {
        case SDB_INT:
            snprintf(nums[i], sizeof(nums[i]), "%lld", (long long)args[i].i);
            vals[i] = nums[i];
            lens[i] = 0;
            fmts[i] = 0;
            types[i] = 20; /* int8 */
            break;
        case SDB_TEXT:
            vals[i] = args[i].s ? args[i].s : "";
            lens[i] = 0;
            fmts[i] = 0;
            types[i] = 25; /* text */
            break;
        case SDB_BLOB:
            vals[i] = args[i].b;
            lens[i] = (int)args[i].n;
            fmts[i] = 1;
            types[i] = 17; /* bytea */
            break;
        }
    }
    q = translate(sql, &np);
    if (q == NULL) {
        snprintf(db->err, sizeof(db->err), "a statement with more than %d parameters", MAX_ARGS);
        return NULL;
    }
    for (i = 0; i < nargs; i++)
        if (args[i].type == SDB_TEXT && !utf8_ok(vals[i])) {
            /* The database is UTF-8 and refuses anything else; SQLite keeps
             * the bytes. A name a client typed in another encoding is
             * kept readable rather than refused (its bytes become '?'). */
            vals[i] = fixed[nfixed++] = utf8_repair(vals[i]);
        }
    for (tries = 0; tries < 2; tries++) {
        if (db->pg != NULL && PQstatus(db->pg) == CONNECTION_BAD) {
            PQfinish(db->pg);
            db->pg = NULL;
        }
        if (db->pg == NULL) {
            char e[256];
            if (db->connecting) {
                snprintf(db->err, sizeof(db->err), "the connection went while it was set up");
                break;
            }
            if (db->in_tx) {
                /* BEGIN was on the connection that went: a new one would
                 * run the rest outside the caller's transaction. */
                snprintf(db->err, sizeof(db->err), "the connection was lost in a transaction");
                break;
            }
            if (gh_now_ms() < db->retry_at) {
                if (db->err[0] == '\0')
                    snprintf(db->err, sizeof(db->err), "no connection");
                break;
            }
            if (connect_now(db, e, sizeof(e)) == -1) {
                gh_strlcpy(db->err, e, sizeof(db->err));
                break;
            }
        }
        idle = PQtransactionStatus(db->pg) == PQTRANS_IDLE;
        PQclear(res);
        res = exec_timed(db, q, multi, nargs, types, vals, lens, fmts);
        if (res == NULL)
            break; /* no answer in time: db->err says so */
        if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK)
            break;
        set_err(db, res);
        if (!stale(db, res))
            break;
        PQfinish(db->pg); /* broken, or a standby now: find the primary */
        db->pg = NULL;
        if (!idle)
            break; /* the transaction is lost with the connection */
    }
    free(q);
    while (nfixed > 0)
        free(fixed[--nfixed]);
    if (np != nargs && !multi)
        gh_log_err("meetings-store: a statement with %d parameters given %d", np, nargs);
    return res;
}

static int ok(const PGresult *res)
{
    return res != NULL &&
           (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK);
}

int64_t sdb__pg_exec(struct sdb *db, const char *sql, const struct sdb_arg *args, int nargs)
{
    PGresult *res = run(db, sql, args, nargs, nargs == 0 && strchr(sql, ';') != NULL);
    int64_t n;

    if (!ok(res)) {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        n = state && strcmp(state, "23505") == 0 ? SDB_CONFLICT : -1;
    } else {
        const char *t = PQcmdTuples(res);
        n = t && t[0] ? strtoll(t, NULL, 10) : 0;
    }
    PQclear(res);
    return n;
}

int sdb__pg_query(struct sdb *db, const char *sql, const struct sdb_arg *args, int nargs,
                  int (*fn)(const struct sdb_row *r, void *arg), void *arg)
{
    struct sdb_row row;
    PGresult *res;
    int n;

    res = run(db, sql, args, nargs, 0);
    if (!ok(res) || PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        n = state && strcmp(state, "23505") == 0 ? SDB_CONFLICT : -1;
        PQclear(res);
        return n;
    }
    memset(&row, 0, sizeof(row));
    row.res = res;
    n = PQntuples(res);
    for (row.row = 0; row.row < n; row.row++)
        if (fn(&row, arg) != 0)
            break;
    PQclear(res);
    return n;
}

int64_t sdb__pg_int(const struct sdb_row *r, int col)
{
    const unsigned char *v;
    int len;
    uint64_t x = 0;
    int i;

    Oid t = PQftype(r->res, col);

    if (PQgetisnull(r->res, r->row, col))
        return 0;
    v = (const unsigned char *)PQgetvalue(r->res, r->row, col);
    len = PQgetlength(r->res, r->row, col);
    /* bool, int8, int2, int4 only: another type's bits are not a number */
    if ((t != 16 && t != 20 && t != 21 && t != 23) ||
        (len != 1 && len != 2 && len != 4 && len != 8)) {
        gh_log_err("meetings-store: column %d is not an integer (type %u)", col, (unsigned)t);
        return 0;
    }
    for (i = 0; i < len; i++)
        x = (x << 8) | v[i];
    if (len < 8 && (v[0] & 0x80) != 0) /* sign-extend int2 and int4 */
        x |= ~(uint64_t)0 << (8 * len);
    return (int64_t)x;
}

const char *sdb__pg_text(const struct sdb_row *r, int col)
{
    /* Binary text is its bytes, and libpq ends every value with a NUL. */
    if (PQgetisnull(r->res, r->row, col))
        return "";
    return PQgetvalue(r->res, r->row, col);
}

const void *sdb__pg_blob(const struct sdb_row *r, int col, size_t *len)
{
    *len = (size_t)PQgetlength(r->res, r->row, col);
    return PQgetvalue(r->res, r->row, col);
}
