/* The persistence-cookie key file: its parser as a table of good and broken
 * texts, the writer read back, and the file checks (missing, corrupt,
 * readable by others, a symbolic link). */
#include "../../../proxy/proxy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../unit.h"

#define H "gatehouse-cookie-keys 1\n"
#define K0 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define K1 "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define CUR "current 1718000000 " K0 "\n"
#define PREV "previous 1717913600 " K1 "\n"

struct krow {
    const char *name;
    const char *text;
    int ok;
    int have_prev;
    const char *why; /* a part of the reason, for refused rows */
};

static const struct krow krows[] = {
    {"current only", H CUR, 1, 0, NULL},
    {"current and previous", H CUR PREV, 1, 1, NULL},
    {"same creation time", H CUR "previous 1718000000 " K1 "\n", 1, 1, NULL},
    {"time zero", H "current 0 " K0 "\n", 1, 0, NULL},
    {"empty", "", 0, 0, "empty"},
    {"truncated header", "gatehouse-cookie", 0, 0, "truncated"},
    {"header only", H, 0, 0, "no current key"},
    {"truncated in the key", H "current 1718000000 0001020304", 0, 0, "truncated"},
    {"no final newline", H "current 1718000000 " K0, 0, 0, "truncated"},
    {"truncated previous", H CUR "previous 17179", 0, 0, "truncated"},
    {"wrong version", "gatehouse-cookie-keys 2\n" CUR, 0, 0, "version"},
    {"another file", "-----BEGIN PRIVATE KEY-----\n", 0, 0, "not a gatehouse"},
    {"crlf header", "gatehouse-cookie-keys 1\r\n" CUR, 0, 0, "version"},
    {"key 62 digits",
     H "current 1718000000 0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 0, 0,
     "62 hex digits"},
    {"key 66 digits", H "current 1718000000 " K0 "00\n", 0, 0, "66 hex digits"},
    {"key upper case",
     H "current 1718000000 000102030405060708090A0B0C0D0E0F101112131415161718191a1b1c1d1e1f\n", 0,
     0, "lower-case"},
    {"key not hex",
     H "current 1718000000 g00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 0,
     0, "lower-case"},
    {"crlf line", H "current 1718000000 " K0 "\r\n", 0, 0, "65 hex digits"},
    {"time leading zero", H "current 01718000000 " K0 "\n", 0, 0, "creation time"},
    {"time negative", H "current -1 " K0 "\n", 0, 0, "creation time"},
    {"time missing", H "current  " K0 "\n", 0, 0, "creation time"},
    {"time too large", H "current 999999999999999999999 " K0 "\n", 0, 0, "creation time"},
    {"two spaces", H "current 1718000000  " K0 "\n", 0, 0, "65 hex digits"},
    {"tab", H "current\t1718000000 " K0 "\n", 0, 0, "expected 'current"},
    {"previous first", H PREV CUR, 0, 0, "expected 'current"},
    {"current twice", H CUR CUR, 0, 0, "expected 'previous"},
    {"three keys", H CUR PREV PREV, 0, 0, "bytes after the keys"},
    {"extra newline", H CUR PREV "\n", 0, 0, "1 bytes after the keys"},
    {"extra bytes", H CUR "x", 0, 0, "truncated"},
    {"nul in file", H CUR "\0", 0, 0, "truncated"},
    {"previous newer",
     H "current 1717913600 " K0 "\n"
       "previous 1718000000 " K1 "\n",
     0, 0, "newer"},
};

TEST(persist_key_file_table)
{
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(krows); i++) {
        const struct krow *r = &krows[i];
        struct proxy_persist_keyset ks;
        char why[256] = "";
        /* rows with an embedded NUL count it */
        size_t len = strcmp(r->name, "nul in file") == 0 ? strlen(r->text) + 1 : strlen(r->text);
        int rc = proxy__persist_keys_parse(r->text, len, &ks, why, sizeof(why));
        CHECK_EQ(rc, r->ok ? 0 : -1, r->name);
        if (r->ok) {
            CHECK_EQ(ks.have_prev, r->have_prev, r->name);
            CHECK_EQ(ks.cur.k[1], 1, r->name);
        } else {
            CHECK(ks.have_prev == 0 && ks.cur.k[1] == 0); /* wiped */
            if (strstr(why, r->why) == NULL) {
                fprintf(stderr, "[%s] reason '%s' lacks '%s'\n", r->name, why, r->why);
                unit_failures++;
            }
            /* the reason never repeats key material */
            CHECK(strstr(why, "0a0b0c") == NULL && strstr(why, "ffeedd") == NULL);
        }
    }
}

TEST(persist_key_file_fields_and_roundtrip)
{
    struct proxy_persist_keyset ks, back;
    char text[PROXY_PERSIST_KEYS_TEXT_MAX], why[256];
    int n;

    CHECK_EQ(proxy__persist_keys_parse(H CUR PREV, strlen(H CUR PREV), &ks, why, sizeof(why)), 0,
             "parse");
    CHECK_EQ(ks.cur.created, 1718000000, "current created");
    CHECK_EQ(ks.prev.created, 1717913600, "previous created");
    CHECK_EQ(ks.cur.k[0], 0x00, "k0");
    CHECK_EQ(ks.cur.k[31], 0x1f, "k31");
    CHECK_EQ(ks.prev.k[0], 0xff, "p0");
    CHECK_EQ(ks.prev.k[31], 0x00, "p31");
    n = proxy__persist_keys_format(&ks, text, sizeof(text));
    CHECK_EQ(n, (long long)strlen(H CUR PREV), "format length");
    CHECK_STR(text, H CUR PREV, "format is the same text");
    CHECK_EQ(proxy__persist_keys_parse(text, (size_t)n, &back, why, sizeof(why)), 0, "back");
    CHECK(memcmp(&back.cur, &ks.cur, sizeof(ks.cur)) == 0);
    ks.have_prev = 0;
    n = proxy__persist_keys_format(&ks, text, sizeof(text));
    CHECK_STR(text, H CUR, "no previous line");
    CHECK_EQ(proxy__persist_keys_format(&ks, text, 100), -1, "buffer too small");
    ks.cur.created = -5;
    CHECK_EQ(proxy__persist_keys_format(&ks, text, sizeof(text)), -1, "negative time");
}

static void put(const char *path, const char *text, size_t len, mode_t mode)
{
    FILE *f = fopen(path, "wb");

    CHECK(f != NULL);
    if (f == NULL)
        return;
    fwrite(text, 1, len, f);
    fclose(f);
    chmod(path, mode);
}

TEST(persist_key_file_read_and_write)
{
    char dir[] = "/tmp/gh-unit-pk-XXXXXX", path[256], link_path[256], why[512], *big;
    struct proxy_persist_keyset ks, back;
    struct stat st;

    if (mkdtemp(dir) == NULL) {
        CHECK(0);
        return;
    }
    snprintf(path, sizeof(path), "%s/persist/cookie.key", dir);
    CHECK_EQ(proxy__persist_keyfile_read(path, &ks, why, sizeof(why)), 1, "missing");
    memset(&ks, 0, sizeof(ks));
    ks.cur.created = 1718000000;
    ks.cur.k[0] = 7;
    CHECK_EQ(proxy__persist_keyfile_write(path, &ks, why, sizeof(why)), 0, "write");
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    snprintf(link_path, sizeof(link_path), "%s/persist", dir);
    CHECK(stat(link_path, &st) == 0 && (st.st_mode & 0777) == 0700);
    CHECK_EQ(proxy__persist_keyfile_read(path, &back, why, sizeof(why)), 0, "read back");
    CHECK(back.cur.k[0] == 7 && back.cur.created == 1718000000 && !back.have_prev);

    chmod(path, 0644);
    CHECK_EQ(proxy__persist_keyfile_read(path, &back, why, sizeof(why)), -1, "0644 refused");
    CHECK(strstr(why, path) != NULL && strstr(why, "mode 644") != NULL &&
          strstr(why, "chmod 600") != NULL);
    chmod(path, 0640);
    CHECK_EQ(proxy__persist_keyfile_read(path, &back, why, sizeof(why)), -1, "0640 refused");

    put(path, H "current 1718000000 00", strlen(H "current 1718000000 00"), 0600);
    CHECK_EQ(proxy__persist_keyfile_read(path, &back, why, sizeof(why)), 2, "truncated");
    CHECK(strstr(why, "truncated") != NULL);

    big = calloc(1, 5000);
    CHECK(big != NULL);
    if (big != NULL) {
        memcpy(big, H CUR, strlen(H CUR));
        put(path, big, 5000, 0600);
        CHECK_EQ(proxy__persist_keyfile_read(path, &back, why, sizeof(why)), 2, "too long");
        free(big);
    }

    /* a symbolic link is refused: a rotation would replace it with a file */
    snprintf(link_path, sizeof(link_path), "%s/other.key", dir);
    put(link_path, H CUR, strlen(H CUR), 0600);
    unlink(path);
    CHECK(symlink(link_path, path) == 0);
    CHECK_EQ(proxy__persist_keyfile_read(path, &back, why, sizeof(why)), -1, "symlink");
    CHECK(strstr(why, "symbolic link") != NULL);
    unlink(path);
    unlink(link_path);

    /* a folder where the file should be */
    CHECK(mkdir(path, 0700) == 0);
    CHECK_EQ(proxy__persist_keyfile_read(path, &back, why, sizeof(why)), -1, "a folder");
    rmdir(path);
    snprintf(link_path, sizeof(link_path), "%s/persist", dir);
    rmdir(link_path);
    rmdir(dir);
}
