/*
 * The user store: SQLite (WAL, synchronous=FULL) in state-dir/admin/. A
 * login does the same PBKDF2 work whether the user exists or not, so
 * neither the answer nor its timing tells an attacker which names exist;
 * five failures lock a user for fifteen minutes. API tokens are stored as
 * their SHA-256 only.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/common.h"
#include "webui_int.h"

struct webui_users {
    pthread_mutex_t mu;
    sqlite3 *db;
    char dummy[160]; /* a hash to check against when the user is unknown */
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "PRAGMA secure_delete=ON;"
    "CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, role INTEGER NOT NULL,"
    " hash TEXT NOT NULL, failures INTEGER NOT NULL DEFAULT 0,"
    " locked_until INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS tokens(hash TEXT PRIMARY KEY, user TEXT NOT NULL"
    " REFERENCES users(name) ON DELETE CASCADE);"
    "PRAGMA foreign_keys=ON;";

static const char *const role_names[] = {"read-only", "operator", "admin", "user-admin"};

const char *webui_role_name(enum webui_role r)
{
    return (unsigned)r < 4 ? role_names[r] : "read-only";
}

int webui_role_parse(const char *s, enum webui_role *r)
{
    int i;

    for (i = 0; i < 4; i++)
        if (strcmp(s, role_names[i]) == 0) {
            *r = (enum webui_role)i;
            return 0;
        }
    return -1;
}

int webui_allowed(enum webui_role role, enum webui_action a)
{
    switch (a) {
    case WEBUI_VIEW:
        return 1;
    case WEBUI_SERVER_STATE:
        return role == WEBUI_OPERATOR || role == WEBUI_ADMIN;
    case WEBUI_CONFIG_WRITE:
        return role == WEBUI_ADMIN;
    case WEBUI_USERS:
        return role == WEBUI_USER_ADMIN;
    }
    return 0;
}

struct webui_users *webui_users_open(const char *dir, char *err, size_t errlen)
{
    struct webui_users *u;
    char path[1100], *msg = NULL;

    if (gh_mkdir_p(dir, 0700) == -1) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    u = gh_calloc(1, sizeof(*u));
    pthread_mutex_init(&u->mu, NULL);
    snprintf(path, sizeof(path), "%s/admin.db", dir);
    if (sqlite3_open_v2(path, &u->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                          SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK ||
        sqlite3_exec(u->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(u->db));
        sqlite3_free(msg);
        sqlite3_close(u->db);
        free(u);
        return NULL;
    }
    sqlite3_busy_timeout(u->db, 5000);
    chmod(path, 0600);
    if (webui_hash_password("not a password of anyone", u->dummy, sizeof(u->dummy)) == -1) {
        snprintf(err, errlen, "password hashing is unavailable");
        webui_users_close(u);
        return NULL;
    }
    return u;
}

void webui_users_close(struct webui_users *u)
{
    if (u == NULL)
        return;
    sqlite3_close(u->db);
    pthread_mutex_destroy(&u->mu);
    free(u);
}

static int run(struct webui_users *u, const char *sql, const char *a, const char *b, int64_t n,
               int64_t m)
{
    sqlite3_stmt *s = NULL;
    int rc;

    rc = sqlite3_prepare_v2(u->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        int i = 1;
        if (a)
            sqlite3_bind_text(s, i++, a, -1, SQLITE_STATIC);
        if (b)
            sqlite3_bind_text(s, i++, b, -1, SQLITE_STATIC);
        if (n != INT64_MIN)
            sqlite3_bind_int64(s, i++, n);
        if (m != INT64_MIN)
            sqlite3_bind_int64(s, i++, m);
        rc = sqlite3_step(s);
    }
    sqlite3_finalize(s);
    return rc;
}

int webui_user_add(struct webui_users *u, const char *name, enum webui_role role,
                   const char *password, char *err, size_t errlen)
{
    char hash[160];
    const char *why;
    int rc;

    if (!gh_name_ok(name, 63)) {
        snprintf(err, errlen, "user names are 1-63 of a-z 0-9 - _ .");
        return -1;
    }
    if (webui_password_ok(password, &why) == -1) {
        snprintf(err, errlen, "password: %s", why);
        return -1;
    }
    if (webui_hash_password(password, hash, sizeof(hash)) == -1) {
        snprintf(err, errlen, "hashing failed");
        return -1;
    }
    pthread_mutex_lock(&u->mu);
    rc = run(u, "INSERT INTO users(name, hash, role) VALUES(?,?,?)", name, hash, role, INT64_MIN);
    pthread_mutex_unlock(&u->mu);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, rc == SQLITE_CONSTRAINT ? "user '%s' exists" : "store error (%s)",
                 name);
        return -1;
    }
    return 0;
}

int webui_user_set_password(struct webui_users *u, const char *name, const char *password,
                            char *err, size_t errlen)
{
    char hash[160];
    const char *why;
    int rc;

    if (webui_password_ok(password, &why) == -1) {
        snprintf(err, errlen, "password: %s", why);
        return -1;
    }
    if (webui_hash_password(password, hash, sizeof(hash)) == -1)
        return -1;
    pthread_mutex_lock(&u->mu);
    rc = run(u, "UPDATE users SET hash = ?, failures = 0, locked_until = 0 WHERE name = ?", hash,
             name, INT64_MIN, INT64_MIN);
    rc = rc == SQLITE_DONE && sqlite3_changes(u->db) == 1 ? 0 : -1;
    pthread_mutex_unlock(&u->mu);
    if (rc == -1)
        snprintf(err, errlen, "no user '%s'", name);
    return rc;
}

int webui_user_delete(struct webui_users *u, const char *name)
{
    int rc;

    pthread_mutex_lock(&u->mu);
    rc = run(u, "DELETE FROM users WHERE name = ?", name, NULL, INT64_MIN, INT64_MIN);
    rc = rc == SQLITE_DONE && sqlite3_changes(u->db) == 1 ? 0 : -1;
    pthread_mutex_unlock(&u->mu);
    return rc;
}

int webui_user_unlock(struct webui_users *u, const char *name)
{
    int rc;

    pthread_mutex_lock(&u->mu);
    rc = run(u, "UPDATE users SET failures = 0, locked_until = 0 WHERE name = ?", name, NULL,
             INT64_MIN, INT64_MIN);
    rc = rc == SQLITE_DONE && sqlite3_changes(u->db) == 1 ? 0 : -1;
    pthread_mutex_unlock(&u->mu);
    return rc;
}

int webui_user_count(struct webui_users *u)
{
    sqlite3_stmt *s = NULL;
    int n = -1;

    pthread_mutex_lock(&u->mu);
    if (sqlite3_prepare_v2(u->db, "SELECT COUNT(*) FROM users", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    pthread_mutex_unlock(&u->mu);
    return n;
}

int webui_user_list(struct webui_users *u, void (*fn)(const struct webui_user *, void *),
                    void *arg)
{
    sqlite3_stmt *s = NULL;
    struct webui_user w;
    int n = 0;

    pthread_mutex_lock(&u->mu);
    if (sqlite3_prepare_v2(u->db, "SELECT name, role, failures, locked_until FROM users"
                                  " ORDER BY name", -1, &s, NULL) == SQLITE_OK)
        while (sqlite3_step(s) == SQLITE_ROW) {
            memset(&w, 0, sizeof(w));
            gh_strlcpy(w.name, (const char *)sqlite3_column_text(s, 0), sizeof(w.name));
            w.role = (enum webui_role)sqlite3_column_int(s, 1);
            w.failures = sqlite3_column_int(s, 2);
            w.locked_until = sqlite3_column_int64(s, 3);
            fn(&w, arg);
            n++;
        }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&u->mu);
    return n;
}

static int get_user(struct webui_users *u, const char *name, struct webui_user *w, char *hash,
                    size_t hlen)
{
    sqlite3_stmt *s = NULL;
    int found = -1;

    if (sqlite3_prepare_v2(u->db, "SELECT name, role, failures, locked_until, hash FROM users"
                                  " WHERE name = ?", -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW) {
            memset(w, 0, sizeof(*w));
            gh_strlcpy(w->name, (const char *)sqlite3_column_text(s, 0), sizeof(w->name));
            w->role = (enum webui_role)sqlite3_column_int(s, 1);
            w->failures = sqlite3_column_int(s, 2);
            w->locked_until = sqlite3_column_int64(s, 3);
            gh_strlcpy(hash, (const char *)sqlite3_column_text(s, 4), hlen);
            found = 0;
        }
    }
    sqlite3_finalize(s);
    return found;
}

enum webui_login webui_login(struct webui_users *u, const char *name, const char *password,
                             int64_t now, struct webui_user *out)
{
    char hash[160];
    struct webui_user w;
    int known, ok;

    pthread_mutex_lock(&u->mu);
    known = get_user(u, name, &w, hash, sizeof(hash)) == 0;
    pthread_mutex_unlock(&u->mu);
    /* The hash work is done in every case: same time, same answer. */
    ok = webui_check_password(password, known ? hash : u->dummy) && known;
    if (!known)
        return WEBUI_LOGIN_BAD;
    if (w.locked_until > now)
        return WEBUI_LOGIN_LOCKED;
    pthread_mutex_lock(&u->mu);
    if (ok) {
        run(u, "UPDATE users SET failures = 0, locked_until = 0 WHERE name = ?", name, NULL,
            INT64_MIN, INT64_MIN);
    } else {
        struct webui_policy p = webui_policy();
        int lock = w.failures + 1 >= p.failures;
        {
            sqlite3_stmt *s = NULL;
            if (sqlite3_prepare_v2(u->db, "UPDATE users SET failures = ?, locked_until = ?"
                                          " WHERE name = ?", -1, &s, NULL) == SQLITE_OK) {
                sqlite3_bind_int(s, 1, lock ? 0 : w.failures + 1);
                sqlite3_bind_int64(s, 2, lock ? now + p.lock : 0);
                sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
                sqlite3_step(s);
            }
            sqlite3_finalize(s);
        }
        if (lock) {
            pthread_mutex_unlock(&u->mu);
            return WEBUI_LOGIN_LOCKED;
        }
    }
    pthread_mutex_unlock(&u->mu);
    if (ok && out != NULL)
        *out = w;
    return ok ? WEBUI_LOGIN_OK : WEBUI_LOGIN_BAD;
}

static void sha256_hex(const char *s, char out[65])
{
    webui__sha256_hex(s, strlen(s), 32, out);
}

int webui_token_add(struct webui_users *u, const char *user, char out[65], char *err,
                    size_t errlen)
{
    unsigned char raw[32];
    char h[65];
    size_t i;
    int rc;

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    for (i = 0; i < sizeof(raw); i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    gh_wipe(raw, sizeof(raw));
    sha256_hex(out, h);
    pthread_mutex_lock(&u->mu);
    rc = run(u, "INSERT INTO tokens(hash, user) VALUES(?,?)", h, user, INT64_MIN, INT64_MIN);
    pthread_mutex_unlock(&u->mu);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "no user '%s'", user);
        return -1;
    }
    return 0;
}

int webui_token_check(struct webui_users *u, const char *token, struct webui_user *out)
{
    sqlite3_stmt *s = NULL;
    char h[65], name[64] = "", hash[160];
    int found = -1;

    if (strlen(token) != 64 || strspn(token, "0123456789abcdef") != 64)
        return -1;
    sha256_hex(token, h);
    pthread_mutex_lock(&u->mu);
    if (sqlite3_prepare_v2(u->db, "SELECT user FROM tokens WHERE hash = ?", -1, &s, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(s, 1, h, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW) {
            gh_strlcpy(name, (const char *)sqlite3_column_text(s, 0), sizeof(name));
            found = 0;
        }
    }
    sqlite3_finalize(s);
    if (found == 0)
        found = get_user(u, name, out, hash, sizeof(hash));
    pthread_mutex_unlock(&u->mu);
    return found;
}
