/*
 * The meeting store: SQLite in WAL mode with synchronous=FULL, so a
 * committed row survives kill -9 and power loss, and secure_delete, so a
 * shredded resource key is overwritten in the file rather than left in a
 * free page. One connection behind a mutex: meetings change at human pace,
 * and the content itself never goes through SQLite.
 *
 *   meetings   the virtual meeting rooms: alias, URI, the verifiers of the
 *              conference key and the PINs, authentication, IdP group,
 *              Other participants, epoch (bumped when a meeting ends, which
 *              revokes every join token)
 *   resources  slide files: 128-bit random id (also the file name), the
 *              meeting, name, sizes, and the AES-128 key wrapped under the
 *              key-encryption key (secrets.c)
 *
 * PRAGMA user_version 2 marks a database whose secrets are verifiers and
 * wrapped keys; one from before (0) is migrated when it is opened.
 *   waiting    the waiting room: who waits, and whether a Host admitted them
 *              (or the meeting ended while they waited)
 *   participants  who holds a join token now (role, display name), under an
 *              id derived from the token (a digest: no token is stored)
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
#include "slides_int.h"

static const char schema[] =
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

static int user_version(sqlite3 *db)
{
    sqlite3_stmt *s = NULL;
    int v = -1;

    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* A statement that selects one row still to migrate: each step below
 * migrates that row, so it drops out of the next select and the loop ends
 * when none is left (no update runs under an open select). */
#define OLD_MEETING                                                                            \
    "SELECT id, conference_key, host_pin, guest_pin FROM meetings WHERE"                       \
    " substr(conference_key, 1, 3) != 's1$' OR (host_pin != '' AND substr(host_pin, 1, 3) !="  \
    " 's1$') OR (guest_pin != '' AND substr(guest_pin, 1, 3) != 's1$') LIMIT 1"
#define OLD_RESOURCE "SELECT id, key FROM resources WHERE length(key) = 16 LIMIT 1"

/* Each secret of one meeting still in clear becomes its verifier: 1 when a
 * row was migrated, 0 when none is left, -1 with err. */
static int migrate_meeting(sqlite3 *db, char *err, size_t errlen)
{
    static const unsigned costs[] = {SLIDES_KEY_COST, SLIDES_PIN_COST, SLIDES_PIN_COST};
    char v[3][SLIDES_VERIFIER_MAX], clear[SLIDES_VERIFIER_MAX];
    sqlite3_stmt *s = NULL;
    int64_t id = 0;
    int i, rc, found = 0;

    if (sqlite3_prepare_v2(db, OLD_MEETING, -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        found = 1;
        id = sqlite3_column_int64(s, 0);
        for (i = 0; i < 3; i++) {
            const char *c = (const char *)sqlite3_column_text(s, i + 1);
            gh_strlcpy(clear, c ? c : "", sizeof(clear));
            if (clear[0] == '\0' || slides_secret_is_verifier(clear))
                gh_strlcpy(v[i], clear, sizeof(v[i]));
            else if (slides_secret_hash(clear, costs[i], v[i]) == -1)
                found = -1;
        }
        gh_wipe(clear, sizeof(clear));
    }
    sqlite3_finalize(s);
    if (found <= 0) {
        if (found < 0)
            snprintf(err, errlen, "migration: no verifier for meeting %lld", (long long)id);
        return found;
    }
    s = NULL;
    rc = sqlite3_prepare_v2(db,
                            "UPDATE meetings SET conference_key = ?, host_pin = ?, guest_pin = ?"
                            " WHERE id = ?",
                            -1, &s, NULL);
    if (rc == SQLITE_OK) {
        for (i = 0; i < 3; i++)
            sqlite3_bind_text(s, i + 1, v[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, id);
        rc = sqlite3_step(s);
    }
    sqlite3_finalize(s);
    /* Exactly this row, else the loop would meet it again for ever. */
    if (rc != SQLITE_DONE || sqlite3_changes(db) != 1) {
        snprintf(err, errlen, "migration: meeting %lld: %s", (long long)id,
                 rc != SQLITE_DONE ? sqlite3_errmsg(db) : "its secrets cannot be rewritten");
        return -1;
    }
    return 1;
}

/* The same for one resource key still in clear: wrapped. */
static int migrate_resource(struct slides_store *st, char *err, size_t errlen)
{
    unsigned char key[SLIDES_KEY_LEN], w[SLIDES_WRAPPED_LEN];
    char id[33];
    sqlite3_stmt *s = NULL;
    int rc, found = 0;

    if (sqlite3_prepare_v2(st->db, OLD_RESOURCE, -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        const char *rid = (const char *)sqlite3_column_text(s, 0);
        gh_strlcpy(id, rid ? rid : "", sizeof(id));
        memcpy(key, sqlite3_column_blob(s, 1), sizeof(key));
        found = slides__key_wrap(st->kek, id, key, w) == 0 ? 1 : -1;
        gh_wipe(key, sizeof(key));
    }
    sqlite3_finalize(s);
    if (found <= 0) {
        if (found < 0)
            snprintf(err, errlen, "migration: cannot wrap the key of %s", id);
        return found;
    }
    s = NULL;
    rc = sqlite3_prepare_v2(st->db, "UPDATE resources SET key = ? WHERE id = ?", -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_blob(s, 1, w, sizeof(w), SQLITE_STATIC);
        sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE || sqlite3_changes(st->db) != 1) {
        snprintf(err, errlen, "migration: resource %s: %s", id,
                 rc != SQLITE_DONE ? sqlite3_errmsg(st->db) : "its key cannot be rewritten");
        return -1;
    }
    return 1;
}

static int add_column(struct slides_store *st, const char *col, char *err, size_t errlen)
{
    char sql[120];
    sqlite3_stmt *s = NULL;
    int have;

    snprintf(sql, sizeof(sql), "SELECT %s FROM meetings LIMIT 0", col);
    have = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) == SQLITE_OK;
    sqlite3_finalize(s);
    if (have)
        return 0;
    snprintf(sql, sizeof(sql), "ALTER TABLE meetings ADD COLUMN %s INTEGER NOT NULL DEFAULT 0",
             col);
    if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "migration: %s", sqlite3_errmsg(st->db));
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
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "migration: %s", sqlite3_errmsg(st->db));
        return -1;
    }
    while ((rc = migrate_meeting(st->db, err, errlen)) == 1)
        meetings++;
    if (rc == 0)
        while ((rc = migrate_resource(st, err, errlen)) == 1)
            resources++;
    if (rc == 0 && (sqlite3_exec(st->db, SECRETS_VERSION_SQL, NULL, NULL, NULL) != SQLITE_OK ||
                    sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)) {
        snprintf(err, errlen, "migration: %s", sqlite3_errmsg(st->db));
        rc = -1;
    }
    if (rc != 0) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    if (meetings + resources > 0)
        gh_log_info("conference: migrated %d meeting(s) to PIN and key verifiers and wrapped %d "
                    "slide key(s)",
                    meetings, resources);
    return 0;
}

struct slides_store *slides_store_open(const char *dir, const char *kek_file, char *err,
                                       size_t errlen)
{
    struct slides_store *st;
    char path[1024], *msg = NULL;

    if (gh_mkdir_p(dir, 0700) == -1) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    st = gh_calloc(1, sizeof(*st));
    if (slides__kek_load(dir, kek_file, st->kek, err, errlen) == -1) {
        free(st);
        return NULL;
    }
    pthread_mutex_init(&st->mu, NULL);
    snprintf(st->content_dir, sizeof(st->content_dir), "%s/content", dir);
    if (mkdir(st->content_dir, 0700) == -1 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", st->content_dir, strerror(errno));
        gh_wipe(st->kek, sizeof(st->kek));
        free(st);
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/meetings.db", dir);
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                            SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK ||
        sqlite3_exec(st->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        sqlite3_close(st->db);
        gh_wipe(st->kek, sizeof(st->kek));
        free(st);
        return NULL;
    }
    sqlite3_busy_timeout(st->db, 5000);
    chmod(path, 0600);
    if (migrate(st, err, errlen) == -1) {
        slides_store_close(st);
        return NULL;
    }
    slides__content_sweep(st);
    return st;
}

int slides_rooms_scan(const char *dir,
                      void (*fn)(const char *alias, const char *group, void *arg), void *arg,
                      char *err, size_t errlen)
{
    char path[1100];
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    struct stat sb;
    int rc;

    snprintf(path, sizeof(path), "%s/meetings.db", dir);
    if (stat(path, &sb) == -1 && errno == ENOENT)
        return 0; /* no rooms yet */
    rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "SELECT alias, idp_group FROM meetings ORDER BY alias", -1,
                                &s, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        fn((const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1), arg);
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_DONE)
        snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc == SQLITE_DONE ? 0 : -1;
}

void slides_store_close(struct slides_store *st)
{
    if (st == NULL)
        return;
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->mu);
    gh_wipe(st->kek, sizeof(st->kek));
    free(st);
}

static void read_meeting(sqlite3_stmt *s, struct slides_meeting *m)
{
    memset(m, 0, sizeof(*m));
    m->id = sqlite3_column_int64(s, 0);
    gh_strlcpy(m->alias, (const char *)sqlite3_column_text(s, 1), sizeof(m->alias));
    gh_strlcpy(m->uri, (const char *)sqlite3_column_text(s, 2), sizeof(m->uri));
    gh_strlcpy(m->key_v, (const char *)sqlite3_column_text(s, 3), sizeof(m->key_v));
    gh_strlcpy(m->policy.host_pin_v, (const char *)sqlite3_column_text(s, 4),
               sizeof(m->policy.host_pin_v));
    gh_strlcpy(m->policy.guest_pin_v, (const char *)sqlite3_column_text(s, 5),
               sizeof(m->policy.guest_pin_v));
    m->policy.auth = (enum slides_auth)sqlite3_column_int(s, 6);
    m->policy.other = (enum slides_other)sqlite3_column_int(s, 7);
    gh_strlcpy(m->idp_group, (const char *)sqlite3_column_text(s, 8), sizeof(m->idp_group));
    m->epoch = sqlite3_column_int64(s, 9);
    m->created = sqlite3_column_int64(s, 10);
    m->ended = sqlite3_column_int64(s, 11);
    m->reception = sqlite3_column_int(s, 12);
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
    sqlite3_stmt *s = NULL;
    int rc;

    if (check_policy(m, &host, &guest, err, errlen) == -1)
        return -1;
    if (pin_verifier(&host, hv) == -1 || pin_verifier(&guest, gv) == -1) {
        snprintf(err, errlen, "no PIN verifier (scrypt failed)");
        return -1;
    }
    memcpy(m->policy.host_pin_v, hv, sizeof(hv));
    memcpy(m->policy.guest_pin_v, gv, sizeof(gv));
    pthread_mutex_lock(&st->mu);
    rc = sqlite3_prepare_v2(st->db,
                            "UPDATE meetings SET host_pin = ?, guest_pin = ?, auth = ?, other = ?,"
                            " idp_group = ?, epoch = epoch + ?, reception = ? WHERE id = ?",
                            -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, m->policy.host_pin_v, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, m->policy.guest_pin_v, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 3, (int)m->policy.auth);
        sqlite3_bind_int(s, 4, (int)m->policy.other);
        sqlite3_bind_text(s, 5, m->idp_group, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 6, revoke_tokens ? 1 : 0);
        sqlite3_bind_int(s, 7, m->reception ? 1 : 0);
        sqlite3_bind_int64(s, 8, m->id);
        rc = sqlite3_step(s);
    }
    if (rc != SQLITE_DONE)
        snprintf(err, errlen, "store: %s", sqlite3_errmsg(st->db));
    else if (sqlite3_changes(st->db) != 1)
        snprintf(err, errlen, "no such meeting");
    rc = rc == SQLITE_DONE && sqlite3_changes(st->db) == 1 ? 0 : -1;
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int slides_meeting_create(struct slides_store *st, struct slides_meeting *m,
                          const struct slides_pins *pins, char *err, size_t errlen)
{
    struct pin_after host = {pins && pins->host ? pins->host : "", ""};
    struct pin_after guest = {pins && pins->guest ? pins->guest : "", ""};
    sqlite3_stmt *s = NULL;
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
    m->epoch = 1;
    pthread_mutex_lock(&st->mu);
    rc = sqlite3_prepare_v2(st->db,
                            "INSERT INTO meetings(alias, uri, conference_key, host_pin, guest_pin,"
                            " auth, other, idp_group, epoch, created, reception)"
                            " VALUES(?,?,?,?,?,?,?,?,1,?,?)",
                            -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, m->alias, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, m->uri, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, m->key_v, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, m->policy.host_pin_v, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, m->policy.guest_pin_v, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 6, (int)m->policy.auth);
        sqlite3_bind_int(s, 7, (int)m->policy.other);
        sqlite3_bind_text(s, 8, m->idp_group, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 9, m->created);
        sqlite3_bind_int(s, 10, m->reception ? 1 : 0);
        rc = sqlite3_step(s);
    }
    if (rc == SQLITE_DONE)
        m->id = sqlite3_last_insert_rowid(st->db);
    else
        snprintf(err, errlen, rc == SQLITE_CONSTRAINT ? "alias '%s' exists already" : "store: %s",
                 rc == SQLITE_CONSTRAINT ? m->alias : sqlite3_errmsg(st->db));
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int get_one(struct slides_store *st, const char *where, const char *text, int64_t num,
                   struct slides_meeting *m)
{
    sqlite3_stmt *s = NULL;
    char sql[256];
    int found = -1;

    snprintf(sql, sizeof(sql), "SELECT " MEETING_COLS " FROM meetings WHERE %s", where);
    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) == SQLITE_OK) {
        if (text != NULL)
            sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(s, 1, num);
        if (sqlite3_step(s) == SQLITE_ROW) {
            read_meeting(s, m);
            found = 0;
        }
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return found;
}

int slides_meeting_by_uri(struct slides_store *st, const char *uri, struct slides_meeting *m)
{
    return get_one(st, "uri = ?", uri, 0, m);
}

int slides_meeting_by_alias(struct slides_store *st, const char *alias, struct slides_meeting *m)
{
    return get_one(st, "alias = ?", alias, 0, m);
}

int slides_meeting_by_id(struct slides_store *st, int64_t id, struct slides_meeting *m)
{
    return get_one(st, "id = ?", NULL, id, m);
}

int slides_meeting_list(struct slides_store *st,
                        void (*fn)(const struct slides_meeting *m, void *arg), void *arg)
{
    sqlite3_stmt *s = NULL;
    struct slides_meeting m;
    int n = 0;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "SELECT " MEETING_COLS " FROM meetings ORDER BY alias", -1,
                           &s, NULL) == SQLITE_OK)
        while (sqlite3_step(s) == SQLITE_ROW) {
            read_meeting(s, &m);
            fn(&m, arg);
            n++;
        }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return n;
}

static int exec1(struct slides_store *st, const char *sql, int64_t a)
{
    sqlite3_stmt *s = NULL;
    int rc;

    rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, a);
        rc = sqlite3_step(s);
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* exec1 with the number of rows it changed, or -1. */
static int exec1_n(struct slides_store *st, const char *sql, int64_t a)
{
    return exec1(st, sql, a) == 0 ? sqlite3_changes(st->db) : -1;
}

int slides_meeting_end(struct slides_store *st, int64_t id, int delete_room,
                       struct slides_end_report *rep)
{
    struct slides_end_report r = {0, 0, 0};
    sqlite3_stmt *s = NULL;
    char (*ids)[33] = NULL;
    size_t n = 0, cap = 0, i;
    int rc;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "SELECT id FROM resources WHERE meeting = ?", -1, &s, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_int64(s, 1, id);
        while (sqlite3_step(s) == SQLITE_ROW) {
            if (n == cap) {
                void *more = realloc(ids, (cap ? 2 * cap : 64) * sizeof(*ids));
                if (more == NULL)
                    abort();
                ids = more;
                cap = cap ? 2 * cap : 64;
            }
            gh_strlcpy(ids[n++], (const char *)sqlite3_column_text(s, 0), sizeof(ids[0]));
        }
    }
    sqlite3_finalize(s);
    /* Keys first (crypto-shredding: without them the files are noise),
     * then the files; the epoch bump revokes every token at once. Those
     * still waiting are told the meeting ended (state 3) until it reopens. */
    rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
    if (rc == 0)
        rc = r.resources = exec1_n(st, "DELETE FROM resources WHERE meeting = ?", id);
    if (rc >= 0)
        rc = r.waiting = exec1_n(st, delete_room ? "DELETE FROM waiting WHERE meeting = ?"
                                                 : "UPDATE waiting SET state = 3 WHERE meeting = ?"
                                                   " AND state != 3",
                                 id);
    if (rc >= 0)
        rc = exec1_n(st, "DELETE FROM participants WHERE meeting = ?", id) >= 0 ? 0 : -1;
    if (rc >= 0 && delete_room)
        rc = exec1_n(st, "DELETE FROM meetings WHERE id = ?", id) == 1 ? 0 : -1;
    else if (rc >= 0)
        rc = exec1_n(st, "UPDATE meetings SET epoch = epoch + 1, ended = CAST(strftime('%s')"
                         " AS INTEGER) WHERE id = ?",
                     id) == 1
                 ? 0
                 : -1;
    if (rc == 0 && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = -1;
    if (rc == -1)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    else
        sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    pthread_mutex_unlock(&st->mu);
    for (i = 0; rc == 0 && i < n; i++)
        slides__content_unlink(st, ids[i]);
    free(ids);
    if (rc == 0 && rep != NULL) {
        struct slides_meeting m;
        r.epoch = !delete_room && slides_meeting_by_id(st, id, &m) == 0 ? m.epoch : 0;
        *rep = r;
    }
    return rc;
}

int slides_meeting_reopen(struct slides_store *st, int64_t id)
{
    int rc;

    pthread_mutex_lock(&st->mu);
    rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK &&
                 exec1_n(st, "UPDATE meetings SET ended = 0 WHERE id = ? AND ended != 0", id) ==
                     1 &&
                 exec1_n(st, "DELETE FROM waiting WHERE meeting = ? AND state = 3", id) >= 0 &&
                 sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK
             ? 0
             : -1;
    if (rc == -1)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int slides__resource_insert(struct slides_store *st, const char *id, int64_t meeting,
                            int64_t epoch, const char *name, int64_t size, int64_t stored,
                            const unsigned char key[16])
{
    unsigned char w[SLIDES_WRAPPED_LEN];
    sqlite3_stmt *s = NULL;
    int rc;

    if (slides__key_wrap(st->kek, id, key, w) == -1)
        return -1;
    pthread_mutex_lock(&st->mu);
    /* Only into the meeting as the upload found it: one that ended (or
     * ended and reopened) meanwhile must not get content back that its end
     * said was shredded. */
    rc = sqlite3_prepare_v2(st->db,
                            "INSERT INTO resources(id, meeting, name, size, stored, key, created)"
                            " SELECT ?,?,?,?,?,?,? WHERE EXISTS (SELECT 1 FROM meetings WHERE"
                            " id = ?2 AND epoch = ?8 AND ended = 0)",
                            -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, meeting);
        sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, size);
        sqlite3_bind_int64(s, 5, stored);
        sqlite3_bind_blob(s, 6, w, sizeof(w), SQLITE_STATIC);
        sqlite3_bind_int64(s, 7, (int64_t)time(NULL));
        sqlite3_bind_int64(s, 8, epoch);
        rc = sqlite3_step(s);
    }
    sqlite3_finalize(s);
    rc = rc != SQLITE_DONE ? -1 : sqlite3_changes(st->db) == 1 ? 0 : 1;
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int slides_resource_list(struct slides_store *st, int64_t meeting,
                         void (*fn)(const struct slides_resource *r, void *arg), void *arg)
{
    sqlite3_stmt *s = NULL;
    struct slides_resource r;
    int n = 0;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT id, meeting, name, size, stored, key FROM resources"
                           " WHERE meeting = ? ORDER BY rowid",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, meeting);
        while (sqlite3_step(s) == SQLITE_ROW) {
            memset(&r, 0, sizeof(r));
            gh_strlcpy(r.id, (const char *)sqlite3_column_text(s, 0), sizeof(r.id));
            r.meeting = sqlite3_column_int64(s, 1);
            gh_strlcpy(r.name, (const char *)sqlite3_column_text(s, 2), sizeof(r.name));
            r.size = sqlite3_column_int64(s, 3);
            r.stored = sqlite3_column_int64(s, 4);
            if (slides__key_unwrap(st->kek, r.id, sqlite3_column_blob(s, 5),
                                   (size_t)sqlite3_column_bytes(s, 5), r.key) == -1) {
                gh_log_err("conference: the key of resource %s does not unwrap (another "
                           "key-encryption key?); left out",
                           r.id);
                continue;
            }
            fn(&r, arg);
            gh_wipe(r.key, sizeof(r.key));
            n++;
        }
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return n;
}

int slides_resource_get(struct slides_store *st, const char *id, struct slides_resource *r)
{
    sqlite3_stmt *s = NULL;
    int found = -1;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT id, meeting, name, size, stored FROM resources WHERE id = ?",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW) {
            memset(r, 0, sizeof(*r));
            gh_strlcpy(r->id, (const char *)sqlite3_column_text(s, 0), sizeof(r->id));
            r->meeting = sqlite3_column_int64(s, 1);
            gh_strlcpy(r->name, (const char *)sqlite3_column_text(s, 2), sizeof(r->name));
            r->size = sqlite3_column_int64(s, 3);
            r->stored = sqlite3_column_int64(s, 4);
            found = 0;
        }
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return found;
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
    sqlite3_stmt *s = NULL;
    int rc;

    slides__random_hex(id, 16);
    pthread_mutex_lock(&st->mu);
    rc = sqlite3_prepare_v2(st->db,
                            "INSERT INTO waiting(id, meeting, epoch, name, state, created)"
                            " VALUES(?,?,?,?,0,?)",
                            -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, m->id);
        sqlite3_bind_int64(s, 3, m->epoch);
        sqlite3_bind_text(s, 4, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 5, (int64_t)time(NULL));
        rc = sqlite3_step(s);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return rc == SQLITE_DONE ? 0 : -1;
}

int slides_waiting_list(struct slides_store *st, int64_t meeting,
                        void (*fn)(const struct slides_waiter *w, void *arg), void *arg)
{
    sqlite3_stmt *s = NULL;
    struct slides_waiter w;
    int n = 0;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT id, meeting, epoch, name, state, created FROM waiting"
                           " WHERE meeting = ? AND state = 0 ORDER BY rowid",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, meeting);
        while (sqlite3_step(s) == SQLITE_ROW) {
            memset(&w, 0, sizeof(w));
            gh_strlcpy(w.id, (const char *)sqlite3_column_text(s, 0), sizeof(w.id));
            w.meeting = sqlite3_column_int64(s, 1);
            w.epoch = sqlite3_column_int64(s, 2);
            gh_strlcpy(w.name, (const char *)sqlite3_column_text(s, 3), sizeof(w.name));
            w.state = sqlite3_column_int(s, 4);
            fn(&w, arg);
            n++;
        }
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return n;
}

int slides_waiting_get(struct slides_store *st, const char *id, struct slides_waiter *w)
{
    sqlite3_stmt *s = NULL;
    int found = -1;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT id, meeting, epoch, name, state FROM waiting WHERE id = ?", -1,
                           &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW) {
            memset(w, 0, sizeof(*w));
            gh_strlcpy(w->id, (const char *)sqlite3_column_text(s, 0), sizeof(w->id));
            w->meeting = sqlite3_column_int64(s, 1);
            w->epoch = sqlite3_column_int64(s, 2);
            gh_strlcpy(w->name, (const char *)sqlite3_column_text(s, 3), sizeof(w->name));
            w->state = sqlite3_column_int(s, 4);
            found = 0;
        }
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return found;
}

int slides_waiting_set(struct slides_store *st, int64_t meeting, const char *id, int state)
{
    sqlite3_stmt *s = NULL;
    int rc, changed = 0;

    pthread_mutex_lock(&st->mu);
    rc = sqlite3_prepare_v2(st->db,
                            "UPDATE waiting SET state = ? WHERE id = ? AND meeting = ? AND state = 0",
                            -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(s, 1, state);
        sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, meeting);
        if (sqlite3_step(s) == SQLITE_DONE)
            changed = sqlite3_changes(st->db);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return changed == 1 ? 0 : -1;
}

/* Collected once taken: an admitted waiter gets one token, not many. */
int slides_waiting_take(struct slides_store *st, const char *id)
{
    sqlite3_stmt *s = NULL;
    int changed = 0;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "DELETE FROM waiting WHERE id = ? AND state = 1", -1, &s,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_DONE)
            changed = sqlite3_changes(st->db);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return changed == 1 ? 0 : -1;
}

/* ---- participants ---- */

int slides_participant_add(struct slides_store *st, const struct slides_participant *p)
{
    sqlite3_stmt *s = NULL;
    int rc;

    pthread_mutex_lock(&st->mu);
    /* Those whose tokens have expired go on the way: the table holds only
     * who is in. */
    exec1(st, "DELETE FROM participants WHERE expires <= ?", (int64_t)time(NULL));
    rc = sqlite3_prepare_v2(st->db,
                            "INSERT OR REPLACE INTO participants(id, meeting, epoch, role, name,"
                            " name_fixed, joined, expires) VALUES(?,?,?,?,?,?,?,?)",
                            -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, p->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, p->meeting);
        sqlite3_bind_int64(s, 3, p->epoch);
        sqlite3_bind_int(s, 4, (int)p->role);
        sqlite3_bind_text(s, 5, p->name, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 6, p->name_fixed);
        sqlite3_bind_int64(s, 7, p->joined);
        sqlite3_bind_int64(s, 8, p->expires);
        rc = sqlite3_step(s);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return rc == SQLITE_DONE ? 0 : -1;
}

void slides_participant_remove(struct slides_store *st, const char *id)
{
    sqlite3_stmt *s = NULL;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "DELETE FROM participants WHERE id = ?", -1, &s, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        sqlite3_step(s);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
}

#define PARTICIPANT_COLS "id, meeting, epoch, role, name, name_fixed, joined, expires"

static void read_participant(sqlite3_stmt *s, struct slides_participant *p)
{
    const char *id = (const char *)sqlite3_column_text(s, 0);
    const char *name = (const char *)sqlite3_column_text(s, 4);

    memset(p, 0, sizeof(*p));
    gh_strlcpy(p->id, id ? id : "", sizeof(p->id));
    p->meeting = sqlite3_column_int64(s, 1);
    p->epoch = sqlite3_column_int64(s, 2);
    p->role = (enum slides_role)sqlite3_column_int(s, 3);
    gh_strlcpy(p->name, name ? name : "", sizeof(p->name));
    p->name_fixed = sqlite3_column_int(s, 5);
    p->joined = sqlite3_column_int64(s, 6);
    p->expires = sqlite3_column_int64(s, 7);
}

int slides_participant_list(struct slides_store *st, const struct slides_meeting *m,
                            void (*fn)(const struct slides_participant *p, void *arg), void *arg)
{
    struct slides_participant p;
    sqlite3_stmt *s = NULL;
    int n = 0;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT " PARTICIPANT_COLS " FROM participants"
                           " WHERE meeting = ? AND epoch = ? AND expires > ? ORDER BY rowid",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, m->id);
        sqlite3_bind_int64(s, 2, m->epoch);
        sqlite3_bind_int64(s, 3, (int64_t)time(NULL));
        while (sqlite3_step(s) == SQLITE_ROW) {
            read_participant(s, &p);
            fn(&p, arg);
            n++;
        }
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return n;
}

int slides_participant_get(struct slides_store *st, const char *id, struct slides_participant *p)
{
    sqlite3_stmt *s = NULL;
    int found = -1;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db,
                           "SELECT " PARTICIPANT_COLS " FROM participants WHERE id = ? AND"
                           " expires > ?",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (int64_t)time(NULL));
        if (sqlite3_step(s) == SQLITE_ROW) {
            read_participant(s, p);
            found = 0;
        }
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return found;
}

int slides_participant_set_role(struct slides_store *st, const char *id, enum slides_role role)
{
    sqlite3_stmt *s = NULL;
    int changed = 0;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "UPDATE participants SET role = ? WHERE id = ?", -1, &s,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_int(s, 1, (int)role);
        sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_DONE)
            changed = sqlite3_changes(st->db);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return changed == 1 ? 0 : -1;
}
