/* Secrets at rest: verifiers against right, wrong and malformed input (a
 * table), the key-encryption key file's rules, and the store's files read
 * byte by byte for the PINs, the conference key and the slide key after
 * creation, change, upload and the migration of an old database. */
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../../common/common.h"
#include "../../../slides/slides.h"
#include "../unit.h"
#include "slides_test.h"

/* Verifiers as the store could find them: each row is tried with the
 * secret "2468"; only a well-formed verifier of that secret matches. */
static const struct {
    const char *what, *verifier; /* NULL: made here from "2468" */
    int match;
} vrows[] = {
    {"genuine", NULL, 1},
    {"empty", "", 0},
    {"no prefix", "14$00112233445566778899aabbccddeeff$00", 0},
    {"other scheme", "s2$10$00112233445566778899aabbccddeeff$" /* dk */, 0},
    {"cost below the floor", "s1$9$00112233445566778899aabbccddeeff$00", 0},
    {"cost above the ceiling (memory)", "s1$31$00112233445566778899aabbccddeeff$00", 0},
    {"cost one above the ceiling", "s1$16$00112233445566778899aabbccddeeff$00", 0},
    {"cost not a number", "s1$x$00112233445566778899aabbccddeeff$00", 0},
    {"short salt", "s1$10$0011$00", 0},
    {"upper-case salt", "s1$10$00112233445566778899AABBCCDDEEFF$00", 0},
    {"no digest", "s1$10$00112233445566778899aabbccddeeff$", 0},
    {"no separator", "s1$10$00112233445566778899aabbccddeeff", 0},
};

TEST(slides_secret_verifier_table)
{
    char v[SLIDES_VERIFIER_MAX], w[SLIDES_VERIFIER_MAX], bad[SLIDES_VERIFIER_MAX];
    size_t i, n;

    CHECK_EQ(slides_secret_hash("2468", SLIDES_COST_MIN, v), 0, "hash");
    CHECK_EQ(slides_secret_hash("2468", SLIDES_COST_MIN, w), 0, "hash again");
    CHECK(strcmp(v, w) != 0); /* a fresh salt each time */
    CHECK(strstr(v, "2468") == NULL);
    CHECK_EQ(slides_secret_hash("2468", SLIDES_COST_MIN - 1, w), -1, "cost floor");
    CHECK_EQ(slides_secret_hash("2468", SLIDES_COST_MAX + 1, w), -1, "cost ceiling");
    /* The ceiling itself fits scrypt's memory bound: made and checked. */
    CHECK_EQ(slides_secret_hash("2468", SLIDES_COST_MAX, w), 0, "the dearest cost");
    CHECK_EQ(slides_secret_check(w, "2468"), 1, "checked at the dearest cost");
    for (i = 0; i < GH_ARRAY_LEN(vrows); i++)
        CHECK_EQ(slides_secret_check(vrows[i].verifier ? vrows[i].verifier : v, "2468"),
                 vrows[i].match, vrows[i].what);
    CHECK_EQ(slides_secret_check(v, "2469"), 0, "wrong secret");
    CHECK_EQ(slides_secret_check(v, "246"), 0, "prefix of the secret");
    CHECK_EQ(slides_secret_check(v, "24680"), 0, "secret with a digit more");
    CHECK_EQ(slides_secret_check(v, ""), 0, "empty secret");
    CHECK_EQ(slides_secret_check(v, NULL), 0, "no secret");
    /* The same salt with its cost raised, and each digest byte flipped. */
    gh_strlcpy(bad, v, sizeof(bad));
    bad[4] = '1';
    CHECK_EQ(slides_secret_check(bad, "2468"), 0, "cost changed");
    n = strlen(v);
    for (i = n - 64; i < n; i++) {
        gh_strlcpy(bad, v, sizeof(bad));
        bad[i] = bad[i] == '0' ? '1' : '0';
        CHECK_EQ(slides_secret_check(bad, "2468"), 0, "digest changed");
    }
    gh_strlcpy(bad, v, sizeof(bad));
    bad[n - 1] = '\0';
    CHECK_EQ(slides_secret_check(bad, "2468"), 0, "digest cut");
}

/* Whether the bytes of needle (len) occur in the file at path; -1 when the
 * file cannot be read (a missing WAL counts as not holding it). */
static int file_has(const char *path, const void *needle, size_t len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    size_t n, i;
    long sz;
    int found = 0;

    if (f == NULL)
        return 0;
    fseek(f, 0, SEEK_END);
    sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = gh_calloc(1, (size_t)sz + 1);
    n = fread(buf, 1, (size_t)sz, f);
    fclose(f);
    for (i = 0; !found && len <= n && i <= n - len; i++)
        found = memcmp(buf + i, needle, len) == 0;
    free(buf);
    return found;
}

/* The database and its WAL, for a string and for raw bytes. */
static int store_has(const char *dir, const void *needle, size_t len)
{
    char p[300];

    snprintf(p, sizeof(p), "%s/meetings.db", dir);
    if (file_has(p, needle, len))
        return 1;
    snprintf(p, sizeof(p), "%s/meetings.db-wal", dir);
    return file_has(p, needle, len);
}

static void hexs(const unsigned char *b, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void grab(const struct slides_resource *r, void *arg)
{
    memcpy(arg, r, sizeof(*r));
}

static void ignore(const struct slides_resource *r, void *arg)
{
    (void)r;
    (void)arg;
}

/* One resource uploaded into meeting m: its id, and its key as listed. */
static void upload(struct slides_store *st, int64_t m, char id[33], struct slides_resource *r)
{
    char err[256];
    struct slides_upload *up = slides_upload_begin(st, m, "slide.png", err, sizeof(err));

    CHECK(up != NULL);
    if (up == NULL)
        return;
    CHECK_EQ(slides_upload_write(up, "slide bytes, slide bytes", 24, err, sizeof(err)), 0,
             "write");
    CHECK_EQ(slides_upload_finish(up, id, err, sizeof(err)), 0, "finish");
    memset(r, 0, sizeof(*r));
    slides_resource_list(st, m, grab, r);
}

TEST(slides_store_keeps_no_secret_in_its_files)
{
    char dir[] = "/tmp/gh-unit-secrets-XXXXXX", err[256], id[33], keyhex[33], path[300];
    struct slides_pins pins = {"73910584622", "84620193755"};
    struct slides_meeting m, got;
    struct slides_resource r;
    struct slides_store *st;
    unsigned char zero[16] = {0};
    struct stat sb;

    CHECK(mkdtemp(dir) != NULL);
    st = slides_store_open(dir, NULL, NULL, err, sizeof(err));
    CHECK(st != NULL);
    if (st == NULL)
        return;
    snprintf(path, sizeof(path), "%s/slides.kek", dir);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    memset(&m, 0, sizeof(m));
    gh_strlcpy(m.alias, "vault", sizeof(m.alias));
    CHECK_EQ(slides_meeting_create(st, &m, &pins, err, sizeof(err)), 0, err);
    CHECK_EQ((long long)strlen(m.conference_key), 32, "the key is given once");
    upload(st, m.id, id, &r);
    CHECK(memcmp(r.key, zero, 16) != 0);
    hexs(r.key, 16, keyhex);
    /* Joins still work from the verifiers. */
    CHECK_EQ(slides_meeting_by_alias(st, "vault", &got), 0, "read back");
    CHECK_STR(got.conference_key, "", "no key read back");
    CHECK_EQ(slides_meeting_key_ok(&got, m.conference_key), 1, "conference key");
    CHECK_EQ(slides_meeting_key_ok(&got, "00000000000000000000000000000000"), 0, "other key");
    CHECK_EQ(slides_secret_check(got.policy.host_pin_v, "73910584622"), 1, "host PIN");
    CHECK_EQ(slides_secret_check(got.policy.guest_pin_v, "84620193755"), 1, "guest PIN");
    /* A change: the new Host PIN, then a Guest PIN equal to it, refused by
     * the verifier alone; "" removes the Guest PIN. */
    pins.host = "51302468971";
    pins.guest = NULL;
    CHECK_EQ(slides_meeting_update(st, &got, &pins, 0, err, sizeof(err)), 0, err);
    CHECK_EQ(slides_meeting_by_alias(st, "vault", &got), 0, "read back");
    CHECK_EQ(slides_secret_check(got.policy.host_pin_v, "73910584622"), 0, "old host PIN");
    CHECK_EQ(slides_secret_check(got.policy.host_pin_v, "51302468971"), 1, "new host PIN");
    CHECK_EQ(slides_secret_check(got.policy.guest_pin_v, "84620193755"), 1, "guest PIN kept");
    pins.host = NULL;
    pins.guest = "51302468971";
    CHECK_EQ(slides_meeting_update(st, &got, &pins, 0, err, sizeof(err)), -1,
             "guest PIN equal to the kept host PIN");
    CHECK(strstr(err, "differ") != NULL);
    pins.host = "";
    pins.guest = NULL;
    CHECK_EQ(slides_meeting_update(st, &got, &pins, 0, err, sizeof(err)), -1,
             "host PIN removed under a kept guest PIN");
    pins.guest = "";
    CHECK_EQ(slides_meeting_update(st, &got, &pins, 0, err, sizeof(err)), 0, "both removed");
    CHECK_EQ(slides_meeting_by_alias(st, "vault", &got), 0, "read back");
    CHECK_STR(got.policy.host_pin_v, "", "no host PIN");
    slides_store_close(st);
    /* What a copy of the folder would give away. */
    CHECK_EQ(store_has(dir, "73910584622", 11), 0, "first host PIN in the files");
    CHECK_EQ(store_has(dir, "84620193755", 11), 0, "guest PIN in the files");
    CHECK_EQ(store_has(dir, "51302468971", 11), 0, "second host PIN in the files");
    CHECK_EQ(store_has(dir, m.conference_key, 32), 0, "conference key in the files");
    CHECK_EQ(store_has(dir, r.key, 16), 0, "slide key (bytes) in the files");
    CHECK_EQ(store_has(dir, keyhex, 32), 0, "slide key (hex) in the files");
    CHECK_EQ(store_has(dir, "vault", 5), 1, "the search itself finds what is there");
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    CHECK(system(path) == 0);
}

/* Turns the store's rows back into the clear form of a database from
 * before verifiers (as an older gatehouse wrote it). */
static void make_old(const char *dir, int64_t meeting, const char *id, const unsigned char key[16],
                     const char *conf_key)
{
    char p[300], sql[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;

    snprintf(p, sizeof(p), "%s/meetings.db", dir);
    CHECK(sqlite3_open(p, &db) == SQLITE_OK);
    snprintf(sql, sizeof(sql),
             "UPDATE meetings SET conference_key = '%s', host_pin = '90817263545', guest_pin = '46372819056'"
             " WHERE id = %lld; PRAGMA user_version = 0;",
             conf_key, (long long)meeting);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(db, "UPDATE resources SET key = ? WHERE id = ?", -1, &s, NULL) ==
          SQLITE_OK);
    sqlite3_bind_blob(s, 1, key, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
    CHECK(sqlite3_step(s) == SQLITE_DONE);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

TEST(slides_store_migrates_an_old_database)
{
    char dir[] = "/tmp/gh-unit-migrate-XXXXXX", err[256], id[33], conf_key[33], path[300];
    struct slides_pins pins = {NULL, NULL};
    struct slides_meeting m, got;
    struct slides_resource r, again;
    struct slides_store *st;
    unsigned char *stored, *plain;
    size_t plen = 0;
    int64_t size = 0;

    CHECK(mkdtemp(dir) != NULL);
    st = slides_store_open(dir, NULL, NULL, err, sizeof(err));
    CHECK(st != NULL);
    if (st == NULL)
        return;
    memset(&m, 0, sizeof(m));
    gh_strlcpy(m.alias, "old-room", sizeof(m.alias));
    CHECK_EQ(slides_meeting_create(st, &m, &pins, err, sizeof(err)), 0, err);
    gh_strlcpy(conf_key, m.conference_key, sizeof(conf_key));
    upload(st, m.id, id, &r);
    slides_store_close(st);
    make_old(dir, m.id, id, r.key, conf_key);
    CHECK_EQ(store_has(dir, "46372819056", 11) + store_has(dir, r.key, 16), 2, "the old form");
    st = slides_store_open(dir, NULL, NULL, err, sizeof(err));
    CHECK(st != NULL);
    if (st == NULL)
        return;
    CHECK_EQ(slides_meeting_by_alias(st, "old-room", &got), 0, "migrated room");
    CHECK_EQ(slides_meeting_key_ok(&got, conf_key), 1, "conference key after migration");
    CHECK_EQ(slides_secret_check(got.policy.host_pin_v, "90817263545"), 1,
             "host PIN after migration");
    CHECK_EQ(slides_secret_check(got.policy.guest_pin_v, "46372819056"), 1,
             "guest PIN after migration");
    memset(&again, 0, sizeof(again));
    CHECK_EQ(slides_resource_list(st, m.id, grab, &again), 1, "resource after migration");
    CHECK(memcmp(again.key, r.key, 16) == 0);
    stored = unit_slides_read(st, id, &size);
    CHECK(stored != NULL);
    if (stored != NULL) {
        plain = slides_decrypt(stored, (size_t)size, again.key, 1 << 20, &plen);
        CHECK(plain != NULL && plen == 24 && memcmp(plain, "slide bytes, slide bytes", 24) == 0);
        free(plain);
        free(stored);
    }
    slides_store_close(st);
    CHECK_EQ(store_has(dir, "90817263545", 11), 0, "host PIN left after migration");
    CHECK_EQ(store_has(dir, "46372819056", 11), 0, "guest PIN left after migration");
    CHECK_EQ(store_has(dir, r.key, 16), 0, "slide key left after migration");
    CHECK_EQ(store_has(dir, conf_key, 32), 0, "conference key left after migration");
    /* Opening again migrates nothing twice: the verifiers still match. */
    st = slides_store_open(dir, NULL, NULL, err, sizeof(err));
    CHECK(st != NULL && slides_meeting_by_alias(st, "old-room", &got) == 0 &&
          slides_secret_check(got.policy.guest_pin_v, "46372819056") == 1);
    slides_store_close(st);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    CHECK(system(path) == 0);
}

static int write_text(const char *path, const char *text, unsigned mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode), ok;

    if (fd == -1)
        return -1;
    ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    close(fd);
    return chmod(path, mode) == 0 && ok ? 0 : -1;
}

static void swap_keys(const char *dir)
{
    char p[300];
    sqlite3 *db = NULL;

    snprintf(p, sizeof(p), "%s/meetings.db", dir);
    CHECK(sqlite3_open(p, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db,
                       "CREATE TEMP TABLE k AS SELECT rowid AS r, key FROM resources;"
                       "UPDATE resources SET key = (SELECT key FROM k WHERE k.r != resources.rowid"
                       " LIMIT 1);",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
}

TEST(slides_kek_file_rules)
{
    char dir[] = "/tmp/gh-unit-kek-XXXXXX", err[256], id[33], kek[300], cmd[300];
    struct slides_pins pins = {NULL, NULL};
    struct slides_meeting m;
    struct slides_resource r;
    struct slides_store *st;
    static const char K1[] = "0101010101010101010101010101010101010101010101010101010101010101\n";
    static const char K2[] = "0202020202020202020202020202020202020202020202020202020202020202\n";

    CHECK(mkdtemp(dir) != NULL);
    snprintf(kek, sizeof(kek), "%s/operator.kek", dir);
    st = slides_store_open(dir, kek, NULL, err, sizeof(err));
    CHECK(st == NULL && strstr(err, "operator.kek") != NULL);
    CHECK(access(kek, F_OK) == -1); /* a named file is never made */
    CHECK(write_text(kek, K1, 0644) == 0);
    st = slides_store_open(dir, kek, NULL, err, sizeof(err));
    CHECK(st == NULL && strstr(err, "chmod 600") != NULL);
    CHECK(write_text(kek, K1, 0600) == 0 && chown(kek, 65534, 65534) == 0);
    st = slides_store_open(dir, kek, NULL, err, sizeof(err));
    CHECK(st == NULL && strstr(err, "of this user") != NULL); /* another user's file */
    unlink(kek);
    CHECK(write_text(kek, "0101\n", 0600) == 0);
    st = slides_store_open(dir, kek, NULL, err, sizeof(err));
    CHECK(st == NULL && strstr(err, "64 lower-case hex") != NULL);
    CHECK(write_text(kek, K1, 0600) == 0);
    st = slides_store_open(dir, kek, NULL, err, sizeof(err));
    CHECK(st != NULL);
    if (st == NULL)
        return;
    memset(&m, 0, sizeof(m));
    gh_strlcpy(m.alias, "k", sizeof(m.alias));
    CHECK_EQ(slides_meeting_create(st, &m, &pins, err, sizeof(err)), 0, err);
    upload(st, m.id, id, &r);
    CHECK_EQ(slides_resource_list(st, m.id, ignore, NULL), 1, "under its own key");
    slides_store_close(st);
    snprintf(cmd, sizeof(cmd), "%s/slides.kek", dir);
    CHECK(access(cmd, F_OK) == -1); /* the operator's file was used, none made */
    /* Another key-encryption key: the resource is left out, not garbage. */
    CHECK(write_text(kek, K2, 0600) == 0);
    st = slides_store_open(dir, kek, NULL, err, sizeof(err));
    CHECK(st != NULL);
    CHECK(st != NULL && slides_resource_list(st, m.id, ignore, NULL) == 0);
    slides_store_close(st);
    /* Back to the right key, with two resources whose wrapped keys trade
     * rows: the resource id is bound in, so neither unwraps. */
    CHECK(write_text(kek, K1, 0600) == 0);
    st = slides_store_open(dir, kek, NULL, err, sizeof(err));
    CHECK(st != NULL);
    if (st == NULL)
        return;
    upload(st, m.id, id, &r);
    CHECK_EQ(slides_resource_list(st, m.id, ignore, NULL), 2, "two resources");
    slides_store_close(st);
    swap_keys(dir);
    st = slides_store_open(dir, kek, NULL, err, sizeof(err));
    CHECK(st != NULL && slides_resource_list(st, m.id, ignore, NULL) == 0);
    slides_store_close(st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* A snapshot restores into a store of the same key-encryption key; an image
 * with a trigger, of another version, or damaged is refused and nothing
 * changes. */
TEST(slides_snapshot_restore_checks_the_image)
{
    char dir[] = "/tmp/gh-unit-snap-XXXXXX", err[256], id[33];
    struct slides_pins pins = {"31415926", NULL};
    struct slides_meeting m, got;
    struct slides_resource r;
    struct slides_store *st;
    unsigned char *img, *bad;
    sqlite3 *db = NULL;
    sqlite3_int64 n = 0;
    size_t len = 0;

    CHECK(mkdtemp(dir) != NULL);
    st = slides_store_open(dir, NULL, NULL, err, sizeof(err));
    CHECK(st != NULL);
    if (st == NULL)
        return;
    memset(&m, 0, sizeof(m));
    gh_strlcpy(m.alias, "snap", sizeof(m.alias));
    CHECK_EQ(slides_meeting_create(st, &m, &pins, err, sizeof(err)), 0, err);
    upload(st, m.id, id, &r);
    img = slides_store_snapshot(st, &len, err, sizeof(err));
    CHECK(img != NULL && len > 512);
    CHECK_EQ(slides_store_restore(st, img, len, 1, err, sizeof(err)), 0, err);
    /* The same image with a trigger added: refused, the store as it was. */
    CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
    bad = sqlite3_malloc64(len);
    memcpy(bad, img, len);
    CHECK(sqlite3_deserialize(db, "main", bad, (sqlite3_int64)len, (sqlite3_int64)len,
                              SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) ==
          SQLITE_OK);
    CHECK(sqlite3_exec(db, "CREATE TRIGGER t AFTER INSERT ON meetings BEGIN "
                           "DELETE FROM resources; END", NULL, NULL, NULL) == SQLITE_OK);
    bad = sqlite3_serialize(db, "main", &n, 0);
    sqlite3_close(db);
    CHECK(bad != NULL);
    CHECK_EQ(slides_store_restore(st, bad, (size_t)n, 0, err, sizeof(err)), -1, "a trigger");
    CHECK(strstr(err, "views or triggers") != NULL);
    sqlite3_free(bad);
    /* A byte of the header changed: not a database. */
    img[0] ^= 1;
    CHECK_EQ(slides_store_restore(st, img, len, 0, err, sizeof(err)), -1, "damaged");
    img[0] ^= 1;
    CHECK_EQ(slides_meeting_by_alias(st, "snap", &got), 0, "the room is still there");
    CHECK_EQ(slides_store_restore(st, img, len, 0, err, sizeof(err)), 0, err);
    free(img);
    slides_store_close(st);
}
