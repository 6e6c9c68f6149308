/*
 * The meeting store: SQLite in WAL mode with synchronous=FULL, so a
 * committed row survives kill -9 and power loss, and secure_delete, so a
 * shredded resource key is overwritten in the file rather than left in a
 * free page. One connection behind a mutex: meetings change at human pace,
 * and the content itself never goes through SQLite.
 *
 *   meetings   the virtual meeting rooms: alias, URI, conference key, PINs,
 *              authentication, IdP group, Other participants, epoch (bumped
 *              when a meeting ends, which revokes every join token)
 *   resources  slide files: 128-bit random id (also the file name), the
 *              meeting, name, sizes, and the AES-128 key
 *   waiting    the waiting room: who waits, and whether a Host admitted them
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
    " epoch INTEGER NOT NULL DEFAULT 1, created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS resources("
    " id TEXT PRIMARY KEY, meeting INTEGER NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL, size INTEGER NOT NULL, stored INTEGER NOT NULL, key BLOB NOT NULL,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS waiting("
    " id TEXT PRIMARY KEY, meeting INTEGER NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,"
    " epoch INTEGER NOT NULL, name TEXT NOT NULL, state INTEGER NOT NULL, created INTEGER NOT NULL);";

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

struct slides_store *slides_store_open(const char *dir, char *err, size_t errlen)
{
    struct slides_store *st;
    char path[1024], *msg = NULL;

    if (gh_mkdir_p(dir, 0700) == -1) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    st = gh_calloc(1, sizeof(*st));
    pthread_mutex_init(&st->mu, NULL);
    snprintf(st->content_dir, sizeof(st->content_dir), "%s/content", dir);
    if (mkdir(st->content_dir, 0700) == -1 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", st->content_dir, strerror(errno));
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
        free(st);
        return NULL;
    }
    sqlite3_busy_timeout(st->db, 5000);
    chmod(path, 0600);
    slides__content_sweep(st);
    return st;
}

void slides_store_close(struct slides_store *st)
{
    if (st == NULL)
        return;
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static void read_meeting(sqlite3_stmt *s, struct slides_meeting *m)
{
    memset(m, 0, sizeof(*m));
    m->id = sqlite3_column_int64(s, 0);
    gh_strlcpy(m->alias, (const char *)sqlite3_column_text(s, 1), sizeof(m->alias));
    gh_strlcpy(m->uri, (const char *)sqlite3_column_text(s, 2), sizeof(m->uri));
    gh_strlcpy(m->conference_key, (const char *)sqlite3_column_text(s, 3),
               sizeof(m->conference_key));
    gh_strlcpy(m->policy.host_pin, (const char *)sqlite3_column_text(s, 4),
               sizeof(m->policy.host_pin));
    gh_strlcpy(m->policy.guest_pin, (const char *)sqlite3_column_text(s, 5),
               sizeof(m->policy.guest_pin));
    m->policy.auth = (enum slides_auth)sqlite3_column_int(s, 6);
    m->policy.other = (enum slides_other)sqlite3_column_int(s, 7);
    gh_strlcpy(m->idp_group, (const char *)sqlite3_column_text(s, 8), sizeof(m->idp_group));
    m->epoch = sqlite3_column_int64(s, 9);
    m->created = sqlite3_column_int64(s, 10);
}

#define MEETING_COLS "id, alias, uri, conference_key, host_pin, guest_pin, auth, other, " \
                     "idp_group, epoch, created"

static int valid_pin(const char *p)
{
    size_t i, n = strlen(p);

    if (n > 20)
        return 0;
    for (i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return 1;
}

/* The join policy's own rules, for a new room and a changed one alike. */
static int check_policy(const struct slides_meeting *m, char *err, size_t errlen)
{
    if (!valid_pin(m->policy.host_pin) || !valid_pin(m->policy.guest_pin)) {
        snprintf(err, errlen, "PINs are up to 20 digits");
        return -1;
    }
    if (m->policy.guest_pin[0] != '\0' && m->policy.host_pin[0] == '\0') {
        snprintf(err, errlen, "a Guest PIN needs a Host PIN");
        return -1;
    }
    if (m->policy.guest_pin[0] != '\0' && strcmp(m->policy.guest_pin, m->policy.host_pin) == 0) {
        snprintf(err, errlen, "the Guest PIN must differ from the Host PIN");
        return -1;
    }
    if (m->policy.auth != SLIDES_AUTH_NONE && m->idp_group[0] == '\0') {
        snprintf(err, errlen, "participant authentication needs an identity provider group");
        return -1;
    }
    return 0;
}

int slides_meeting_update(struct slides_store *st, const struct slides_meeting *m,
                          int revoke_tokens, char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    int rc;

    if (check_policy(m, err, errlen) == -1)
        return -1;
    pthread_mutex_lock(&st->mu);
    rc = sqlite3_prepare_v2(st->db,
                            "UPDATE meetings SET host_pin = ?, guest_pin = ?, auth = ?, other = ?,"
                            " idp_group = ?, epoch = epoch + ? WHERE id = ?",
                            -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, m->policy.host_pin, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, m->policy.guest_pin, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 3, (int)m->policy.auth);
        sqlite3_bind_int(s, 4, (int)m->policy.other);
        sqlite3_bind_text(s, 5, m->idp_group, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 6, revoke_tokens ? 1 : 0);
        sqlite3_bind_int64(s, 7, m->id);
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

int slides_meeting_create(struct slides_store *st, struct slides_meeting *m, char *err,
                          size_t errlen)
{
    sqlite3_stmt *s = NULL;
    const char *p;
    char rnd[33];
    int rc;

    if (m->alias[0] == '\0' || strlen(m->alias) > 64) {
        snprintf(err, errlen, "alias: 1 to 64 characters");
        return -1;
    }
    for (p = m->alias; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
              *p == '_')) {
            snprintf(err, errlen, "alias: lower-case letters, digits, '-', '_' and '.' only");
            return -1;
        }
    if (check_policy(m, err, errlen) == -1)
        return -1;
    /* The URI and the key of the invitation: unique, random, not HTTP. */
    slides__random_hex(rnd, 8);
    snprintf(m->uri, sizeof(m->uri), "gh-meet:%s.%s", m->alias, rnd);
    slides__random_hex(m->conference_key, 16);
    m->created = (int64_t)time(NULL);
    m->epoch = 1;
    pthread_mutex_lock(&st->mu);
    rc = sqlite3_prepare_v2(st->db,
                            "INSERT INTO meetings(alias, uri, conference_key, host_pin, guest_pin,"
                            " auth, other, idp_group, epoch, created) VALUES(?,?,?,?,?,?,?,?,1,?)",
                            -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, m->alias, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, m->uri, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, m->conference_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, m->policy.host_pin, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, m->policy.guest_pin, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 6, (int)m->policy.auth);
        sqlite3_bind_int(s, 7, (int)m->policy.other);
        sqlite3_bind_text(s, 8, m->idp_group, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 9, m->created);
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

int slides_meeting_end(struct slides_store *st, int64_t id, int delete_room)
{
    sqlite3_stmt *s = NULL;
    char ids[256][33];
    int n = 0, i, rc;

    pthread_mutex_lock(&st->mu);
    if (sqlite3_prepare_v2(st->db, "SELECT id FROM resources WHERE meeting = ?", -1, &s, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_int64(s, 1, id);
        while (n < 256 && sqlite3_step(s) == SQLITE_ROW)
            gh_strlcpy(ids[n++], (const char *)sqlite3_column_text(s, 0), sizeof(ids[0]));
    }
    sqlite3_finalize(s);
    /* Keys first (crypto-shredding: without them the files are noise),
     * then the files; the epoch bump revokes every token at once. */
    rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK &&
                 exec1(st, "DELETE FROM resources WHERE meeting = ?", id) == 0 &&
                 exec1(st, "DELETE FROM waiting WHERE meeting = ?", id) == 0 &&
                 exec1(st, delete_room ? "DELETE FROM meetings WHERE id = ?"
                                       : "UPDATE meetings SET epoch = epoch + 1 WHERE id = ?",
                       id) == 0 &&
                 sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK
             ? 0
             : -1;
    if (rc == -1)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    else
        sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    pthread_mutex_unlock(&st->mu);
    for (i = 0; rc == 0 && i < n; i++)
        slides__content_unlink(st, ids[i]);
    return rc;
}

int slides__resource_insert(struct slides_store *st, const char *id, int64_t meeting,
                            const char *name, int64_t size, int64_t stored,
                            const unsigned char key[16])
{
    sqlite3_stmt *s = NULL;
    int rc;

    pthread_mutex_lock(&st->mu);
    rc = sqlite3_prepare_v2(st->db,
                            "INSERT INTO resources(id, meeting, name, size, stored, key, created)"
                            " VALUES(?,?,?,?,?,?,?)",
                            -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, meeting);
        sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, size);
        sqlite3_bind_int64(s, 5, stored);
        sqlite3_bind_blob(s, 6, key, 16, SQLITE_STATIC);
        sqlite3_bind_int64(s, 7, (int64_t)time(NULL));
        rc = sqlite3_step(s);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&st->mu);
    return rc == SQLITE_DONE ? 0 : -1;
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
            if (sqlite3_column_bytes(s, 5) == 16)
                memcpy(r.key, sqlite3_column_blob(s, 5), 16);
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
