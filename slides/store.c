/*
 * The meeting store, on one of two engines (db.h). SQLite (the default): a
 * file in WAL mode with synchronous=FULL, so a committed row survives
 * kill -9 and power loss, and secure_delete, so a shredded resource key is
 * overwritten in the file rather than left in a free page. PostgreSQL
 * (meetings-store postgresql): the database several appliances share, with
 * the slide content itself in it (chunks, content.c); a shredded key there
 * is a dead row until VACUUM, and the key-encryption key it was wrapped
 * under is in no database. One connection behind a mutex: meetings change
 * at human pace.
 *
 *   meetings   the virtual meeting rooms: alias, URI, the verifiers of the
 *              conference key and the PINs, authentication, IdP group,
 *              Other participants, epoch (bumped when a meeting ends, which
 *              revokes every join token)
 *   resources  slide files: 128-bit random id (also the file name), the
 *              meeting, name, sizes, and the AES-128 key wrapped under the
 *              key-encryption key (secrets.c)
 *   chunks     (PostgreSQL) the stored form of each resource, 64 KiB a row
 *   waiting    the waiting room: who waits, and whether a Host admitted them
 *              (or the meeting ended while they waited)
 *   participants  who holds a join token now (role, display name), under an
 *              id derived from the token (a digest: no token is stored)
 *
 * PRAGMA user_version 2 marks a SQLite database whose secrets are verifiers
 * and wrapped keys; one from before (0) is migrated when it is opened. The
 * PostgreSQL schema began with verifiers.
 */
#include <errno.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../common/common.h"
#include "../common/join_token.h"
#include "../common/conf.h"
#include "slides_int.h"

static const char sqlite_schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "PRAGMA secure_delete=ON;"
    "PRAGMA foreign_keys=ON;"
    "CREATE TABLE IF NOT EXISTS meetings("
    " id INTEGER PRIMARY KEY, alias TEXT NOT NULL UNIQUE, uri TEXT NOT NULL UNIQUE,"
    " conference_key TEXT NOT NULL, host_pin TEXT NOT NULL, guest_pin TEXT NOT NULL,"
    " auth INTEGER NOT NULL, other INTEGER NOT NULL, idp_group TEXT NOT NULL,"
    " epoch INTEGER NOT NULL DEFAULT 1, created INTEGER NOT NULL,"
    " ended INTEGER NOT NULL DEFAULT 0, reception INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS resources("
    " id TEXT PRIMARY KEY, meeting INTEGER NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL, size INTEGER NOT NULL, stored INTEGER NOT NULL, key BLOB NOT NULL,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS waiting("
    " id TEXT PRIMARY KEY, meeting INTEGER NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,"
    " epoch INTEGER NOT NULL, name TEXT NOT NULL, state INTEGER NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS participants("
    " id TEXT PRIMARY KEY, meeting INTEGER NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,"
    " epoch INTEGER NOT NULL, role INTEGER NOT NULL, name TEXT NOT NULL, name_fixed INTEGER NOT"
    " NULL, joined INTEGER NOT NULL, expires INTEGER NOT NULL);";

/* The same tables; "seq" is the order rows went in (SQLite's rowid). The
 * chunks of an upload go in before its resource row, in one transaction:
 * the reference is checked at commit. Chunks are ciphertext, which TOAST
 * would try to compress in vain (EXTERNAL: stored out of line, as is). */
static const char pg_schema[] =
    "BEGIN;"
    "SELECT pg_advisory_xact_lock(4731952006);"
    "CREATE TABLE IF NOT EXISTS meetings("
    " id BIGSERIAL PRIMARY KEY, alias TEXT NOT NULL UNIQUE, uri TEXT NOT NULL UNIQUE,"
    " conference_key TEXT NOT NULL, host_pin TEXT NOT NULL, guest_pin TEXT NOT NULL,"
    " auth INTEGER NOT NULL, other INTEGER NOT NULL, idp_group TEXT NOT NULL,"
    " epoch BIGINT NOT NULL DEFAULT 1, created BIGINT NOT NULL,"
    " ended BIGINT NOT NULL DEFAULT 0, reception INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS resources("
    " seq BIGSERIAL, id TEXT PRIMARY KEY,"
    " meeting BIGINT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL, size BIGINT NOT NULL, stored BIGINT NOT NULL, key BYTEA NOT NULL,"
    " created BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS chunks("
    " resource TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE"
    " DEFERRABLE INITIALLY DEFERRED, n INTEGER NOT NULL, data BYTEA NOT NULL,"
    " PRIMARY KEY(resource, n));"
    "ALTER TABLE chunks ALTER COLUMN data SET STORAGE EXTERNAL;"
    "CREATE TABLE IF NOT EXISTS waiting("
    " seq BIGSERIAL, id TEXT PRIMARY KEY,"
    " meeting BIGINT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,"
    " epoch BIGINT NOT NULL, name TEXT NOT NULL, state INTEGER NOT NULL, created BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS participants("
    " seq BIGSERIAL, id TEXT PRIMARY KEY,"
    " meeting BIGINT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,"
    " epoch BIGINT NOT NULL, role INTEGER NOT NULL, name TEXT NOT NULL, name_fixed INTEGER NOT"
    " NULL, joined BIGINT NOT NULL, expires BIGINT NOT NULL);"
    "COMMIT;";

#define SECRETS_VERSION 2
#define SECRETS_VERSION_SQL "PRAGMA user_version = 2" /* the same number */

static void hex(const unsigned char *b, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

void slides__random_hex(char *out, size_t bytes)
{
    unsigned char b[32];

    if (bytes > sizeof(b) || RAND_bytes(b, (int)bytes) != 1)
        abort();
    hex(b, bytes, out);
}

/* A row reader for sdb_query: the first column as a number. */
static int row_int(const struct sdb_row *r, void *arg)
{
    *(int64_t *)arg = sdb_int(r, 0);
    return 1;
}

static int user_version(struct sdb *db)
{
    int64_t v = -1;

    return sdb_query(db, "PRAGMA user_version", NULL, 0, row_int, &v) == 1 ? (int)v : -1;
}

/* A statement that selects one row still to migrate: each step below
 * migrates that row, so it drops out of the next select and the loop ends
 * when none is left (no update runs under an open select). */
#define OLD_MEETING                                                                            \
    "SELECT id, conference_key, host_pin, guest_pin FROM meetings WHERE"                       \
    " substr(conference_key, 1, 3) != 's1$' OR (host_pin != '' AND substr(host_pin, 1, 3) !="  \
    " 's1$') OR (guest_pin != '' AND substr(guest_pin, 1, 3) != 's1$') LIMIT 1"
#define OLD_RESOURCE "SELECT id, key FROM resources WHERE length(key) = 16 LIMIT 1"

struct old_meeting {
    int64_t id;
    char v[3][SLIDES_VERIFIER_MAX];
    int found;
};

static int row_old_meeting(const struct sdb_row *r, void *arg)
{
    static const unsigned costs[] = {SLIDES_KEY_COST, SLIDES_PIN_COST, SLIDES_PIN_COST};
    struct old_meeting *o = arg;
    char clear[SLIDES_VERIFIER_MAX];
    int i;

    o->found = 1;
    o->id = sdb_int(r, 0);
    for (i = 0; i < 3; i++) {
        gh_strlcpy(clear, sdb_text(r, i + 1), sizeof(clear));
        if (clear[0] == '\0' || slides_secret_is_verifier(clear))
            gh_strlcpy(o->v[i], clear, sizeof(o->v[i]));
        else if (slides_secret_hash(clear, costs[i], o->v[i]) == -1)
            o->found = -1;
    }
    gh_wipe(clear, sizeof(clear));
    return 1;
}

/* Each secret of one meeting still in clear becomes its verifier: 1 when a
 * row was migrated, 0 when none is left, -1 with err. */
static int migrate_meeting(struct sdb *db, char *err, size_t errlen)
{
    struct old_meeting o;
    int64_t n;

    memset(&o, 0, sizeof(o));
    sdb_query(db, OLD_MEETING, NULL, 0, row_old_meeting, &o);
    if (o.found <= 0) {
        if (o.found < 0)
            snprintf(err, errlen, "migration: no verifier for meeting %lld", (long long)o.id);
        return o.found;
    }
    n = sdb_exec(db, "UPDATE meetings SET conference_key = ?, host_pin = ?, guest_pin = ?"
                     " WHERE id = ?",
                 (struct sdb_arg[]){SDB_S(o.v[0]), SDB_S(o.v[1]), SDB_S(o.v[2]), SDB_I(o.id)},
                 4);
    /* Exactly this row, else the loop would meet it again for ever. */
    if (n != 1) {
        snprintf(err, errlen, "migration: meeting %lld: %s", (long long)o.id,
                 n < 0 ? sdb_error(db) : "its secrets cannot be rewritten");
        return -1;
    }
    return 1;
}

struct old_resource {
    struct slides_store *st;
    char id[33];
    unsigned char w[SLIDES_WRAPPED_LEN];
    int found;
};

static int row_old_resource(const struct sdb_row *r, void *arg)
{
    struct old_resource *o = arg;
    unsigned char key[SLIDES_KEY_LEN];
    size_t len = 0;
    const void *k = sdb_blob(r, 1, &len);

    gh_strlcpy(o->id, sdb_text(r, 0), sizeof(o->id));
    if (len != sizeof(key)) {
        o->found = -1;
        return 1;
    }
    memcpy(key, k, sizeof(key));
    o->found = slides__key_wrap(o->st->kek, o->id, key, o->w) == 0 ? 1 : -1;
    gh_wipe(key, sizeof(key));
    return 1;
}

/* The same for one resource key still in clear: wrapped. */
static int migrate_resource(struct slides_store *st, char *err, size_t errlen)
{
    struct old_resource o;
    int64_t n;

    memset(&o, 0, sizeof(o));
    o.st = st;
    sdb_query(st->db, OLD_RESOURCE, NULL, 0, row_old_resource, &o);
    if (o.found <= 0) {
        if (o.found < 0)
            snprintf(err, errlen, "migration: cannot wrap the key of %s", o.id);
        return o.found;
    }
    n = sdb_exec(st->db, "UPDATE resources SET key = ? WHERE id = ?",
                 (struct sdb_arg[]){SDB_B(o.w, sizeof(o.w)), SDB_S(o.id)}, 2);
    if (n != 1) {
        snprintf(err, errlen, "migration: resource %s: %s", o.id,
                 n < 0 ? sdb_error(st->db) : "its key cannot be rewritten");
        return -1;
    }
    return 1;
}

static int no_row(const struct sdb_row *r, void *arg)
{
    (void)r;
    (void)arg;
    return 1;
}

static int add_column(struct slides_store *st, const char *col, char *err, size_t errlen)
{
    char sql[120];

    snprintf(sql, sizeof(sql), "SELECT %s FROM meetings LIMIT 0", col);
    if (sdb_query(st->db, sql, NULL, 0, no_row, NULL) >= 0)
        return 0;
    snprintf(sql, sizeof(sql), "ALTER TABLE meetings ADD COLUMN %s INTEGER NOT NULL DEFAULT 0",
             col);
    if (sdb_exec(st->db, sql, NULL, 0) < 0) {
        snprintf(err, errlen, "migration: %s", sdb_error(st->db));
        return -1;
    }
    return 0;
}

/* Clear secrets of a database from before SECRETS_VERSION become verifiers
 * and wrapped keys, all in one transaction (a failure leaves the database
 * as it was, and the store does not open); secure_delete overwrites the old
 * cells, and the WAL, which still holds them, is truncated. */
static int migrate(struct slides_store *st, char *err, size_t errlen)
{
    int rc = 0, meetings = 0, resources = 0;

    /* Columns of later versions, added to a table made before them: when
     * the meeting ended (unix seconds), whether the Virtual Reception
     * reaches it. */
    if (add_column(st, "ended", err, errlen) == -1 || add_column(st, "reception", err, errlen) == -1)
        return -1;
    if (user_version(st->db) >= SECRETS_VERSION)
        return 0;
    if (sdb_begin(st->db) == -1) {
        snprintf(err, errlen, "migration: %s", sdb_error(st->db));
        return -1;
    }
    while ((rc = migrate_meeting(st->db, err, errlen)) == 1)
        meetings++;
    if (rc == 0)
        while ((rc = migrate_resource(st, err, errlen)) == 1)
            resources++;
    if (rc == 0 &&
        (sdb_exec(st->db, SECRETS_VERSION_SQL, NULL, 0) < 0 || sdb_commit(st->db) == -1)) {
        snprintf(err, errlen, "migration: %s", sdb_error(st->db));
        rc = -1;
    }
    if (rc != 0) {
        sdb_rollback(st->db);
        return -1;
    }
    sqlite3_wal_checkpoint_v2(sdb_sqlite_handle(st->db), NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
                              NULL);
    if (meetings + resources > 0)
        gh_log_info("conference: migrated %d meeting(s) to PIN and key verifiers and wrapped %d "
                    "slide key(s)",
                    meetings, resources);
    return 0;
}

/* On each new PostgreSQL connection: the tables, made only when one is
 * missing (the ALTER among them takes an exclusive lock on chunks, which
 * would queue behind every upload in flight and stall every download of
 * the cluster behind itself). */
static int pg_tables(struct sdb *db, void *arg)
{
    int64_t have = 0;

    (void)arg;
    if (sdb_query(db, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND"
                      " tablename IN ('meetings', 'resources', 'chunks', 'waiting',"
                      " 'participants')",
                  NULL, 0, row_int, &have) != 1)
        return -1;
    if (have == 5)
        return 0;
    if (sdb_exec(db, pg_schema, NULL, 0) < 0) {
        sdb_exec(db, "ROLLBACK", NULL, 0);
        return -1;
    }
    return 0;
}

static struct slides_store *open_fail(struct slides_store *st)
{
    sdb_close(st->db);
    gh_wipe(st->kek, sizeof(st->kek));
    free(st);
    return NULL;
}

struct slides_store *slides_store_open(const char *dir, const char *kek_file,
                                       const struct slides_pg *pg, char *err, size_t errlen)
{
    struct slides_store *st;
    char path[1024];

    if (gh_mkdir_p(dir, 0700) == -1) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    st = gh_calloc(1, sizeof(*st));
    if (slides__kek_load(dir, kek_file, st->kek, err, errlen) == -1) {
        free(st);
        return NULL;
    }
    if (pg != NULL) {
        st->db = sdb_open_pg(pg, pg_tables, NULL, err, errlen);
        if (st->db == NULL)
            return open_fail(st);
        if (err[0] != '\0') /* lazy, and the database did not answer */
            gh_log_warn("%s; the conference answers 503 until it does", err);
        pthread_mutex_init(&st->mu, NULL);
        return st;
    }
    snprintf(st->content_dir, sizeof(st->content_dir), "%s/content", dir);
    if (mkdir(st->content_dir, 0700) == -1 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", st->content_dir, strerror(errno));
        return open_fail(st);
    }
    snprintf(path, sizeof(path), "%s/meetings.db", dir);
    st->db = sdb_open_sqlite(path, 0, err, errlen);
    if (st->db == NULL)
        return open_fail(st);
    if (sdb_exec(st->db, sqlite_schema, NULL, 0) < 0) {
        snprintf(err, errlen, "%s: %s", path, sdb_error(st->db));
        return open_fail(st);
    }
    chmod(path, 0600);
    pthread_mutex_init(&st->mu, NULL);
    if (migrate(st, err, errlen) == -1) {
        slides_store_close(st);
        return NULL;
    }
    slides__content_sweep(st);
    return st;
}

int slides_store_shared(const struct slides_store *st)
{
    return sdb_engine(st->db) == SDB_POSTGRESQL;
}

struct scan {
    void (*fn)(const char *alias, const char *group, void *arg);
    void *arg;
};

static int row_scan(const struct sdb_row *r, void *arg)
{
    struct scan *sc = arg;

    sc->fn(sdb_text(r, 0), sdb_text(r, 1), sc->arg);
    return 0;
}

int slides_rooms_scan(const char *dir, const struct slides_pg *pg,
                      void (*fn)(const char *alias, const char *group, void *arg), void *arg,
                      char *err, size_t errlen)
{
    char path[1100];
    struct sdb *db;
    struct scan sc = {fn, arg};
    struct stat sb;
    int64_t none = 0;
    int rc;

    if (pg != NULL) {
        db = sdb_open_pg(pg, NULL, NULL, err, errlen);
        if (db == NULL)
            return -1;
        /* No tables yet: no rooms (the first start makes them). */
        if (sdb_query(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'meetings'", NULL,
                      0, row_int, &none) == 1 &&
            none == 0) {
            sdb_close(db);
            return 0;
        }
    } else {
        snprintf(path, sizeof(path), "%s/meetings.db", dir);
        if (stat(path, &sb) == -1 && errno == ENOENT)
            return 0; /* no rooms yet */
        db = sdb_open_sqlite(path, 1, err, errlen);
        if (db == NULL)
            return -1;
    }
    rc = sdb_query(db, "SELECT alias, idp_group FROM meetings ORDER BY alias", NULL, 0, row_scan,
                   &sc);
    if (rc < 0)
        snprintf(err, errlen, "%s: %s", pg ? "meetings-store postgresql" : path, sdb_error(db));
    sdb_close(db);
    return rc < 0 ? -1 : 0;
}

void slides_store_close(struct slides_store *st)
{
    if (st == NULL)
        return;
    sdb_close(st->db);
    pthread_mutex_destroy(&st->mu);
    gh_wipe(st->kek, sizeof(st->kek));
    free(st);
}

static void read_meeting(const struct sdb_row *r, struct slides_meeting *m)
{
    memset(m, 0, sizeof(*m));
    m->id = sdb_int(r, 0);
    gh_strlcpy(m->alias, sdb_text(r, 1), sizeof(m->alias));
    gh_strlcpy(m->uri, sdb_text(r, 2), sizeof(m->uri));
    gh_strlcpy(m->key_v, sdb_text(r, 3), sizeof(m->key_v));
    gh_strlcpy(m->policy.host_pin_v, sdb_text(r, 4), sizeof(m->policy.host_pin_v));
    gh_strlcpy(m->policy.guest_pin_v, sdb_text(r, 5), sizeof(m->policy.guest_pin_v));
    m->policy.auth = (enum slides_auth)sdb_int(r, 6);
    m->policy.other = (enum slides_other)sdb_int(r, 7);
    gh_strlcpy(m->idp_group, sdb_text(r, 8), sizeof(m->idp_group));
    m->epoch = sdb_int(r, 9);
    m->created = sdb_int(r, 10);
    m->ended = sdb_int(r, 11);
    m->reception = (int)sdb_int(r, 12);
}

#define MEETING_COLS "id, alias, uri, conference_key, host_pin, guest_pin, auth, other, " \
                     "idp_group, epoch, created, ended, reception"

static int valid_pin(const char *p)
{
    size_t i, n;

    if (p == NULL)
        return 1;
    n = strlen(p);
    if (n > 20)
        return 0;
    for (i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return 1;
}

/* A PIN after the change: the typed one (new), or the room's verifier. */
struct pin_after {
    const char *typed; /* NULL: kept */
    const char *verifier;
};

static int pin_set(const struct pin_after *p)
{
    return p->typed ? p->typed[0] != '\0' : p->verifier[0] != '\0';
}

/* Whether the two PINs after the change are equal: compared in clear when
 * both are typed, else the typed one against the other's verifier. */
static int pins_equal(const struct pin_after *a, const struct pin_after *b)
{
    if (a->typed && b->typed)
        return strcmp(a->typed, b->typed) == 0;
    if (a->typed)
        return slides_secret_check(b->verifier, a->typed);
    if (b->typed)
        return slides_secret_check(a->verifier, b->typed);
    return 0; /* both kept: checked when they were set */
}

/* The join policy's own rules, for a new room and a changed one alike:
 * m->policy holds the verifiers before the change, pins what changes. */
static int check_policy(const struct slides_meeting *m, const struct pin_after *host,
                        const struct pin_after *guest, char *err, size_t errlen)
{
    if (!valid_pin(host->typed) || !valid_pin(guest->typed)) {
        snprintf(err, errlen, "PINs are up to 20 digits");
        return -1;
    }
    if (pin_set(guest) && !pin_set(host)) {
        snprintf(err, errlen, "a Guest PIN needs a Host PIN");
        return -1;
    }
    if (pin_set(guest) && pins_equal(host, guest)) {
        snprintf(err, errlen, "the Guest PIN must differ from the Host PIN");
        return -1;
    }
    /* The Virtual Reception skips the invitation's key: the room must ask
     * every Host for something else, a Host PIN or a sign-in of Hosts
     * (without a Host PIN everyone is a Host). */
    if (m->reception && !pin_set(host) && m->policy.auth != SLIDES_AUTH_HOSTS &&
        m->policy.auth != SLIDES_AUTH_BOTH) {
        snprintf(err, errlen, "a room open to the Virtual Reception needs a Host PIN or "
                              "authentication of Hosts");
        return -1;
    }
    if (m->policy.auth != SLIDES_AUTH_NONE && m->idp_group[0] == '\0') {
        snprintf(err, errlen, "participant authentication needs an identity provider group");
        return -1;
    }
    return 0;
}

/* The verifier a PIN gets: a typed one is hashed ("" stays none), a kept
 * one stays. 0, or -1. */
static int pin_verifier(const struct pin_after *p, char out[SLIDES_VERIFIER_MAX])
{
    if (p->typed == NULL) {
        gh_strlcpy(out, p->verifier, SLIDES_VERIFIER_MAX);
        return 0;
    }
    if (p->typed[0] == '\0') {
        out[0] = '\0';
        return 0;
    }
    return slides_secret_hash(p->typed, SLIDES_PIN_COST, out);
}

int slides_meeting_key_ok(const struct slides_meeting *m, const char *key)
{
    return slides_secret_check(m->key_v, key);
}

int slides_meeting_update(struct slides_store *st, struct slides_meeting *m,
                          const struct slides_pins *pins, int revoke_tokens, char *err,
                          size_t errlen)
{
    struct pin_after host = {pins ? pins->host : NULL, m->policy.host_pin_v};
    struct pin_after guest = {pins ? pins->guest : NULL, m->policy.guest_pin_v};
    char hv[SLIDES_VERIFIER_MAX], gv[SLIDES_VERIFIER_MAX];
    int64_t n, epoch = 0;

    if (check_policy(m, &host, &guest, err, errlen) == -1)
        return -1;
    if (pin_verifier(&host, hv) == -1 || pin_verifier(&guest, gv) == -1) {
        snprintf(err, errlen, "no PIN verifier (scrypt failed)");
        return -1;
    }
    memcpy(m->policy.host_pin_v, hv, sizeof(hv));
    memcpy(m->policy.guest_pin_v, gv, sizeof(gv));
    pthread_mutex_lock(&st->mu);
    /* The epoch the database bumped, not the caller's copy: an end may have
     * come between the read and this write. */
    n = sdb_query(st->db,
                  "UPDATE meetings SET host_pin = ?, guest_pin = ?, auth = ?, other = ?,"
                  " idp_group = ?, epoch = epoch + ?, reception = ? WHERE id = ? RETURNING epoch",
                  (struct sdb_arg[]){SDB_S(m->policy.host_pin_v), SDB_S(m->policy.guest_pin_v),
                                     SDB_I(m->policy.auth), SDB_I(m->policy.other),
                                     SDB_S(m->idp_group), SDB_I(revoke_tokens ? 1 : 0),
                                     SDB_I(m->reception ? 1 : 0), SDB_I(m->id)},
                  8, row_int, &epoch);
    if (n < 0)
        snprintf(err, errlen, "store: %s", sdb_error(st->db));
    else if (n != 1)
        snprintf(err, errlen, "no such meeting");
    pthread_mutex_unlock(&st->mu);
    if (n == 1 && revoke_tokens)
        slides_token_epoch_mark(m->id, epoch - 1, GH_EPOCH_GONE);
    return n == 1 ? 0 : -1;
}

int slides_meeting_create(struct slides_store *st, struct slides_meeting *m,
                          const struct slides_pins *pins, char *err, size_t errlen)
{
    struct pin_after host = {pins && pins->host ? pins->host : "", ""};
    struct pin_after guest = {pins && pins->guest ? pins->guest : "", ""};
    char rnd[33];
    int rc;

    if (m->alias[0] == '\0' || strlen(m->alias) > 64) {
        snprintf(err, errlen, "alias: 1 to 64 characters");
        return -1;
    }
    if (!gh_name_ok(m->alias, 64)) {
        snprintf(err, errlen, "alias: lower-case letters, digits, '-', '_' and '.' only");
        return -1;
    }
    if (check_policy(m, &host, &guest, err, errlen) == -1)
        return -1;
    /* The URI and the key of the invitation: unique, random, not HTTP. */
    slides__random_hex(rnd, 8);
    snprintf(m->uri, sizeof(m->uri), "gh-meet:%s.%s", m->alias, rnd);
    slides__random_hex(m->conference_key, 16);
    if (slides_secret_hash(m->conference_key, SLIDES_KEY_COST, m->key_v) == -1 ||
        pin_verifier(&host, m->policy.host_pin_v) == -1 ||
        pin_verifier(&guest, m->policy.guest_pin_v) == -1) {
        snprintf(err, errlen, "no verifier (scrypt failed)");
        return -1;
    }
    m->created = (int64_t)time(NULL);
    /* A first epoch of its own: a room given the id of a deleted one (SQLite
     * hands out the highest id again) shares no epoch with it, so none of
     * the old room's tokens, nor their marks, is the new room's. */
    if (RAND_bytes((unsigned char *)&m->epoch, sizeof(m->epoch)) != 1) {
        snprintf(err, errlen, "no randomness for the room's epoch");
        return -1;
    }
    m->epoch = (int64_t)((uint64_t)m->epoch >> 2) + 1; /* 1 .. 2^62: room to bump */
    pthread_mutex_lock(&st->mu);
    rc = sdb_query(st->db,
                   "INSERT INTO meetings(alias, uri, conference_key, host_pin, guest_pin,"
                   " auth, other, idp_group, epoch, created, reception)"
                   " VALUES(?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                   (struct sdb_arg[]){SDB_S(m->alias), SDB_S(m->uri), SDB_S(m->key_v),
                                      SDB_S(m->policy.host_pin_v), SDB_S(m->policy.guest_pin_v),
                                      SDB_I(m->policy.auth), SDB_I(m->policy.other),
                                      SDB_S(m->idp_group), SDB_I(m->epoch), SDB_I(m->created),
                                      SDB_I(m->reception ? 1 : 0)},
                   11, row_int, &m->id);
    if (rc == SDB_CONFLICT)
        snprintf(err, errlen, "alias '%s' exists already", m->alias);
    else if (rc != 1)
        snprintf(err, errlen, "store: %s", sdb_error(st->db));
    pthread_mutex_unlock(&st->mu);
    return rc == 1 ? 0 : -1;
}

static int row_meeting(const struct sdb_row *r, void *arg)
{
    read_meeting(r, arg);
    return 1;
}

static __thread int unavailable;

int slides_store_unavailable(void)
{
    return unavailable;
}

void slides_store_clear_unavailable(void)
{
    unavailable = 0;
}

static int get_one(struct slides_store *st, const char *where, struct sdb_arg key,
                   struct slides_meeting *m)
{
    char sql[256];
    int n;

    snprintf(sql, sizeof(sql), "SELECT " MEETING_COLS " FROM meetings WHERE %s", where);
    pthread_mutex_lock(&st->mu);
    n = sdb_query(st->db, sql, &key, 1, row_meeting, m);
    pthread_mutex_unlock(&st->mu);
    unavailable = n < 0;
    return n == 1 ? 0 : -1;
}

int slides_meeting_by_uri(struct slides_store *st, const char *uri, struct slides_meeting *m)
{
    return get_one(st, "uri = ?", SDB_S(uri), m);
}

int slides_meeting_by_alias(struct slides_store *st, const char *alias, struct slides_meeting *m)
{
    return get_one(st, "alias = ?", SDB_S(alias), m);
}

int slides_meeting_by_id(struct slides_store *st, int64_t id, struct slides_meeting *m)
{
    return get_one(st, "id = ?", SDB_I(id), m);
}

/* A list's rows go to a copy before the caller sees them: fn may call the
 * store again, and the store's mutex is not held while it runs. */
struct meetings_out {
    struct slides_meeting *m;
    size_t n, cap;
};

static int row_meeting_push(const struct sdb_row *r, void *arg)
{
    struct meetings_out *o = arg;

    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 16;
        o->m = gh_realloc(o->m, o->cap * sizeof(*o->m));
    }
    read_meeting(r, &o->m[o->n++]);
    return 0;
}

int slides_meeting_list(struct slides_store *st,
                        void (*fn)(const struct slides_meeting *m, void *arg), void *arg)
{
    struct meetings_out o = {NULL, 0, 0};
    size_t i;

    pthread_mutex_lock(&st->mu);
    sdb_query(st->db, "SELECT " MEETING_COLS " FROM meetings ORDER BY alias", NULL, 0,
              row_meeting_push, &o);
    pthread_mutex_unlock(&st->mu);
    for (i = 0; i < o.n; i++)
        fn(&o.m[i], arg);
    free(o.m);
    return (int)o.n;
}

static int64_t exec1(struct slides_store *st, const char *sql, int64_t a)
{
    return sdb_exec(st->db, sql, (struct sdb_arg[]){SDB_I(a)}, 1);
}

struct ids_out {
    char (*ids)[33];
    size_t n, cap;
};

static int row_id_push(const struct sdb_row *r, void *arg)
{
    struct ids_out *o = arg;

    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 64;
        o->ids = gh_realloc(o->ids, o->cap * sizeof(*o->ids));
    }
    gh_strlcpy(o->ids[o->n++], sdb_text(r, 0), sizeof(o->ids[0]));
    return 0;
}

int slides_meeting_end(struct slides_store *st, int64_t id, int delete_room,
                       struct slides_end_report *rep)
{
    struct slides_end_report r = {0, 0, 0};
    struct ids_out ids = {NULL, 0, 0};
    struct slides_meeting was;
    int64_t n;
    size_t i;
    int rc;

    /* The epoch that ends here, for its mark (outside the lock, which this
     * lookup takes itself). */
    if (slides_meeting_by_id(st, id, &was) == -1)
        was.epoch = -1;
    pthread_mutex_lock(&st->mu);
    if (!slides_store_shared(st))
        sdb_query(st->db, "SELECT id FROM resources WHERE meeting = ?",
                  (struct sdb_arg[]){SDB_I(id)}, 1, row_id_push, &ids);
    /* The meeting's row first: on PostgreSQL that is the lock an upload
     * finishing now holds too (content.c), so either its resource is in
     * before the delete below sees the table, or it finds the meeting ended.
     * Then the keys (crypto-shredding: without them the content is noise),
     * then the files; the epoch bump revokes every token at once. Those
     * still waiting are told the meeting ended (state 3) until it reopens. */
    rc = sdb_begin(st->db);
    if (rc == 0)
        rc = sdb_exec(st->db, "UPDATE meetings SET epoch = epoch + 1, ended = ? WHERE id = ?",
                      (struct sdb_arg[]){SDB_I(time(NULL)), SDB_I(id)}, 2) == 1
                 ? 0
                 : -1;
    if (rc == 0)
        rc = (n = exec1(st, "DELETE FROM resources WHERE meeting = ?", id)) >= 0 ? 0 : -1;
    r.resources = rc == 0 ? (int)n : 0;
    if (rc == 0)
        rc = (n = exec1(st, delete_room ? "DELETE FROM waiting WHERE meeting = ?"
                                        : "UPDATE waiting SET state = 3 WHERE meeting = ?"
                                          " AND state != 3",
                        id)) >= 0
                 ? 0
                 : -1;
    r.waiting = rc == 0 ? (int)n : 0;
    if (rc == 0)
        rc = exec1(st, "DELETE FROM participants WHERE meeting = ?", id) >= 0 ? 0 : -1;
    if (rc == 0 && delete_room)
        rc = exec1(st, "DELETE FROM meetings WHERE id = ?", id) == 1 ? 0 : -1;
    if (rc == 0 && sdb_commit(st->db) == -1)
        rc = -1;
    if (rc == -1)
        sdb_rollback(st->db);
    else if (!slides_store_shared(st))
        sqlite3_wal_checkpoint_v2(sdb_sqlite_handle(st->db), NULL, SQLITE_CHECKPOINT_TRUNCATE,
                                  NULL, NULL);
    pthread_mutex_unlock(&st->mu);
    for (i = 0; rc == 0 && i < ids.n; i++)
        slides__content_unlink(st, ids.ids[i]);
    free(ids.ids);
    if (rc == 0) {
        struct slides_meeting m;
        r.epoch = !delete_room && slides_meeting_by_id(st, id, &m) == 0 ? m.epoch : 0;
        if (was.epoch != -1)
            slides_token_epoch_mark(id, was.epoch, delete_room ? GH_EPOCH_GONE : GH_EPOCH_ENDED);
        if (rep != NULL)
            *rep = r;
    }
    return rc;
}

int slides_meeting_reopen(struct slides_store *st, int64_t id)
{
    int rc;

    pthread_mutex_lock(&st->mu);
    rc = sdb_begin(st->db) == 0 &&
                 exec1(st, "UPDATE meetings SET ended = 0 WHERE id = ? AND ended != 0", id) == 1 &&
                 exec1(st, "DELETE FROM waiting WHERE meeting = ? AND state = 3", id) >= 0 &&
                 sdb_commit(st->db) == 0
             ? 0
             : -1;
    if (rc == -1)
        sdb_rollback(st->db);
    pthread_mutex_unlock(&st->mu);
    if (rc == 0) {
        struct slides_meeting m;
        /* The ended epoch's tokens stay dead, as unknown now (404), not
         * ended: the room is open again. */
        if (slides_meeting_by_id(st, id, &m) == 0)
            slides_token_epoch_mark(id, m.epoch - 1, GH_EPOCH_GONE);
    }
    return rc;
}

int slides__resource_insert(struct slides_store *st, struct sdb *db, const char *id,
                            int64_t meeting, int64_t epoch, const char *name, int64_t size,
                            int64_t stored, const unsigned char key[16])
{
    unsigned char w[SLIDES_WRAPPED_LEN];
    int64_t n;

    if (slides__key_wrap(st->kek, id, key, w) == -1)
        return -1;
    if (db == NULL)
        pthread_mutex_lock(&st->mu);
    /* Only into the meeting as the upload found it: one that ended (or
     * ended and reopened) meanwhile must not get content back that its end
     * said was shredded. */
    n = sdb_exec(db ? db : st->db,
                 "INSERT INTO resources(id, meeting, name, size, stored, key, created)"
                 " SELECT ?,?,?,?,?,?,? WHERE EXISTS (SELECT 1 FROM meetings WHERE"
                 " id = ?2 AND epoch = ?8 AND ended = 0)",
                 (struct sdb_arg[]){SDB_S(id), SDB_I(meeting), SDB_S(name), SDB_I(size),
                                    SDB_I(stored), SDB_B(w, sizeof(w)), SDB_I(time(NULL)),
                                    SDB_I(epoch)},
                 8);
    if (db == NULL)
        pthread_mutex_unlock(&st->mu);
    return n < 0 ? -1 : n == 1 ? 0 : 1;
}

struct resources_out {
    struct slides_resource *r;
    size_t n, cap;
    struct slides_store *st;
};

static int row_resource(const struct sdb_row *row, void *arg)
{
    struct slides_resource *r = arg;

    memset(r, 0, sizeof(*r));
    gh_strlcpy(r->id, sdb_text(row, 0), sizeof(r->id));
    r->meeting = sdb_int(row, 1);
    gh_strlcpy(r->name, sdb_text(row, 2), sizeof(r->name));
    r->size = sdb_int(row, 3);
    r->stored = sdb_int(row, 4);
    return 1;
}

static int row_resource_push(const struct sdb_row *row, void *arg)
{
    struct resources_out *o = arg;
    struct slides_resource *r;
    size_t len = 0;
    const void *w;

    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 16;
        o->r = gh_realloc(o->r, o->cap * sizeof(*o->r));
    }
    r = &o->r[o->n];
    row_resource(row, r);
    w = sdb_blob(row, 5, &len);
    if (slides__key_unwrap(o->st->kek, r->id, w, len, r->key) == -1) {
        gh_log_err("conference: the key of resource %s does not unwrap (another "
                   "key-encryption key?); left out",
                   r->id);
        return 0;
    }
    o->n++;
    return 0;
}

int slides_resource_list(struct slides_store *st, int64_t meeting,
                         void (*fn)(const struct slides_resource *r, void *arg), void *arg)
{
    struct resources_out o = {NULL, 0, 0, st};
    size_t i;

    pthread_mutex_lock(&st->mu);
    sdb_query(st->db,
              "SELECT id, meeting, name, size, stored, key FROM resources"
              " WHERE meeting = ? ORDER BY rowid",
              (struct sdb_arg[]){SDB_I(meeting)}, 1, row_resource_push, &o);
    pthread_mutex_unlock(&st->mu);
    for (i = 0; i < o.n; i++)
        fn(&o.r[i], arg);
    if (o.r != NULL)
        gh_wipe(o.r, o.cap * sizeof(*o.r)); /* unwrapped keys */
    free(o.r);
    return (int)o.n;
}

int slides_resource_get(struct slides_store *st, const char *id, struct slides_resource *r)
{
    int n;

    pthread_mutex_lock(&st->mu);
    n = sdb_query(st->db, "SELECT id, meeting, name, size, stored FROM resources WHERE id = ?",
                  (struct sdb_arg[]){SDB_S(id)}, 1, row_resource, r);
    pthread_mutex_unlock(&st->mu);
    unavailable = n < 0;
    return n == 1 ? 0 : -1;
}

int slides__resource_known(struct slides_store *st, const char *id)
{
    struct slides_resource r;

    return slides_resource_get(st, id, &r) == 0;
}

/* ---- waiting room ---- */

int slides_waiting_add(struct slides_store *st, const struct slides_meeting *m, const char *name,
                       char id[33])
{
    int64_t n;

    slides__random_hex(id, 16);
    pthread_mutex_lock(&st->mu);
    n = sdb_exec(st->db,
                 "INSERT INTO waiting(id, meeting, epoch, name, state, created)"
                 " VALUES(?,?,?,?,0,?)",
                 (struct sdb_arg[]){SDB_S(id), SDB_I(m->id), SDB_I(m->epoch), SDB_S(name),
                                    SDB_I(time(NULL))},
                 5);
    pthread_mutex_unlock(&st->mu);
    return n == 1 ? 0 : -1;
}

struct waiters_out {
    struct slides_waiter *w;
    size_t n, cap;
};

static int row_waiter(const struct sdb_row *r, void *arg)
{
    struct slides_waiter *w = arg;

    memset(w, 0, sizeof(*w));
    gh_strlcpy(w->id, sdb_text(r, 0), sizeof(w->id));
    w->meeting = sdb_int(r, 1);
    w->epoch = sdb_int(r, 2);
    gh_strlcpy(w->name, sdb_text(r, 3), sizeof(w->name));
    w->state = (int)sdb_int(r, 4);
    return 1;
}

static int row_waiter_push(const struct sdb_row *r, void *arg)
{
    struct waiters_out *o = arg;

    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 16;
        o->w = gh_realloc(o->w, o->cap * sizeof(*o->w));
    }
    row_waiter(r, &o->w[o->n++]);
    return 0;
}

int slides_waiting_list(struct slides_store *st, int64_t meeting,
                        void (*fn)(const struct slides_waiter *w, void *arg), void *arg)
{
    struct waiters_out o = {NULL, 0, 0};
    size_t i;

    pthread_mutex_lock(&st->mu);
    sdb_query(st->db,
              "SELECT id, meeting, epoch, name, state FROM waiting"
              " WHERE meeting = ? AND state = 0 ORDER BY rowid",
              (struct sdb_arg[]){SDB_I(meeting)}, 1, row_waiter_push, &o);
    pthread_mutex_unlock(&st->mu);
    for (i = 0; i < o.n; i++)
        fn(&o.w[i], arg);
    free(o.w);
    return (int)o.n;
}

int slides_waiting_get(struct slides_store *st, const char *id, struct slides_waiter *w)
{
    int n;

    pthread_mutex_lock(&st->mu);
    n = sdb_query(st->db, "SELECT id, meeting, epoch, name, state FROM waiting WHERE id = ?",
                  (struct sdb_arg[]){SDB_S(id)}, 1, row_waiter, w);
    pthread_mutex_unlock(&st->mu);
    return n == 1 ? 0 : -1;
}

int slides_waiting_set(struct slides_store *st, int64_t meeting, const char *id, int state)
{
    int64_t n;

    pthread_mutex_lock(&st->mu);
    n = sdb_exec(st->db, "UPDATE waiting SET state = ? WHERE id = ? AND meeting = ? AND state = 0",
                 (struct sdb_arg[]){SDB_I(state), SDB_S(id), SDB_I(meeting)}, 3);
    pthread_mutex_unlock(&st->mu);
    return n == 1 ? 0 : -1;
}

/* Collected once taken: an admitted waiter gets one token, not many. */
int slides_waiting_take(struct slides_store *st, const char *id)
{
    int64_t n;

    pthread_mutex_lock(&st->mu);
    n = sdb_exec(st->db, "DELETE FROM waiting WHERE id = ? AND state = 1",
                 (struct sdb_arg[]){SDB_S(id)}, 1);
    pthread_mutex_unlock(&st->mu);
    return n == 1 ? 0 : -1;
}

/* ---- participants ---- */

int slides_participant_add(struct slides_store *st, const struct slides_participant *p)
{
    int64_t n;

    pthread_mutex_lock(&st->mu);
    /* Those whose tokens have expired go on the way: the table holds only
     * who is in. */
    exec1(st, "DELETE FROM participants WHERE expires <= ?", (int64_t)time(NULL));
    n = sdb_exec(st->db,
                 "INSERT INTO participants(id, meeting, epoch, role, name, name_fixed, joined,"
                 " expires) VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET"
                 " meeting = excluded.meeting, epoch = excluded.epoch, role = excluded.role,"
                 " name = excluded.name, name_fixed = excluded.name_fixed,"
                 " joined = excluded.joined, expires = excluded.expires",
                 (struct sdb_arg[]){SDB_S(p->id), SDB_I(p->meeting), SDB_I(p->epoch),
                                    SDB_I(p->role), SDB_S(p->name), SDB_I(p->name_fixed),
                                    SDB_I(p->joined), SDB_I(p->expires)},
                 8);
    pthread_mutex_unlock(&st->mu);
    return n == 1 ? 0 : -1;
}

void slides_participant_remove(struct slides_store *st, const char *id)
{
    pthread_mutex_lock(&st->mu);
    sdb_exec(st->db, "DELETE FROM participants WHERE id = ?", (struct sdb_arg[]){SDB_S(id)}, 1);
    pthread_mutex_unlock(&st->mu);
}

#define PARTICIPANT_COLS "id, meeting, epoch, role, name, name_fixed, joined, expires"

static int row_participant(const struct sdb_row *r, void *arg)
{
    struct slides_participant *p = arg;

    memset(p, 0, sizeof(*p));
    gh_strlcpy(p->id, sdb_text(r, 0), sizeof(p->id));
    p->meeting = sdb_int(r, 1);
    p->epoch = sdb_int(r, 2);
    p->role = (enum slides_role)sdb_int(r, 3);
    gh_strlcpy(p->name, sdb_text(r, 4), sizeof(p->name));
    p->name_fixed = (int)sdb_int(r, 5);
    p->joined = sdb_int(r, 6);
    p->expires = sdb_int(r, 7);
    return 1;
}

struct participants_out {
    struct slides_participant *p;
    size_t n, cap;
};

static int row_participant_push(const struct sdb_row *r, void *arg)
{
    struct participants_out *o = arg;

    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 16;
        o->p = gh_realloc(o->p, o->cap * sizeof(*o->p));
    }
    row_participant(r, &o->p[o->n++]);
    return 0;
}

int slides_participant_list(struct slides_store *st, const struct slides_meeting *m,
                            void (*fn)(const struct slides_participant *p, void *arg), void *arg)
{
    struct participants_out o = {NULL, 0, 0};
    size_t i;

    pthread_mutex_lock(&st->mu);
    sdb_query(st->db,
              "SELECT " PARTICIPANT_COLS " FROM participants"
              " WHERE meeting = ? AND epoch = ? AND expires > ? ORDER BY rowid",
              (struct sdb_arg[]){SDB_I(m->id), SDB_I(m->epoch), SDB_I(time(NULL))}, 3,
              row_participant_push, &o);
    pthread_mutex_unlock(&st->mu);
    for (i = 0; i < o.n; i++)
        fn(&o.p[i], arg);
    free(o.p);
    return (int)o.n;
}

int slides_participant_get(struct slides_store *st, const char *id, struct slides_participant *p)
{
    int n;

    pthread_mutex_lock(&st->mu);
    n = sdb_query(st->db,
                  "SELECT " PARTICIPANT_COLS " FROM participants WHERE id = ? AND expires > ?",
                  (struct sdb_arg[]){SDB_S(id), SDB_I(time(NULL))}, 2, row_participant, p);
    pthread_mutex_unlock(&st->mu);
    return n == 1 ? 0 : -1;
}

int slides_participant_set_role(struct slides_store *st, const char *id, enum slides_role role)
{
    int64_t n;

    pthread_mutex_lock(&st->mu);
    n = sdb_exec(st->db, "UPDATE participants SET role = ? WHERE id = ?",
                 (struct sdb_arg[]){SDB_I(role), SDB_S(id)}, 2);
    pthread_mutex_unlock(&st->mu);
    return n == 1 ? 0 : -1;
}

const struct slides_pg *slides_pg_of(const struct gh_conf *c, struct slides_pg *pg)
{
    const struct gh_conf_mstore *k = &c->meetings_store;

    if (k->engine == NULL || strcmp(k->engine, "postgresql") != 0)
        return NULL;
    pg->conninfo = k->conninfo;
    pg->password_file = k->password_file;
    pg->timeout_ms = k->timeout;
    return pg;
}
