/* The content store and the meeting store on a real folder: a round trip
 * through compression and AES-128-GCM, tampering and wrong keys refused,
 * the sweep of interrupted uploads, meeting validation, Range parsing. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../../common/common.h"
#include "../../../common/kv.h"
#include "../../../slides/slides.h"
#include "../unit.h"
#include "slides_test.h"

unsigned char *unit_slides_read(struct slides_store *st, const char *id, int64_t *size)
{
    struct slides_reader *rd = slides_content_reader(st, id, size);
    unsigned char *out;
    int64_t off = 0;

    if (rd == NULL)
        return NULL;
    out = gh_calloc(1, (size_t)*size + 1);
    while (off < *size) {
        long n = slides_reader_pread(rd, off, out + off, 7777);
        if (n <= 0) {
            free(out);
            out = NULL;
            break;
        }
        off += n;
    }
    slides_reader_close(rd);
    return out;
}

static const struct {
    const char *h;
    long long size;
    int rc;
    long long off, len;
} ranges[] = {
    {NULL, 100, 1, 0, 0},
    {"bytes=0-9", 100, 0, 0, 10},
    {"bytes=90-", 100, 0, 90, 10},
    {"bytes=90-200", 100, 0, 90, 10},
    {"bytes=-10", 100, 0, 90, 10},
    {"bytes=-200", 100, 0, 0, 100},
    {"bytes=100-", 100, -1, 0, 0},
    {"bytes=5-4", 100, -1, 0, 0},
    {"bytes=-0", 100, -1, 0, 0},
    {"bytes=a-b", 100, -1, 0, 0},
    {"bytes= 1-2", 100, -1, 0, 0},
    {"bytes=1-2,5-6", 100, 1, 0, 0},
    {"items=1-2", 100, 1, 0, 0},
    {"bytes=-5", 0, -1, 0, 0},
    {"bytes=99999999999999999999-", 100, -1, 0, 0},
    {"bytes=1--2", 100, -1, 0, 0},
};

TEST(slides_range_table)
{
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(ranges); i++) {
        int64_t off = -7, len = -7;
        int rc = slides_parse_range(ranges[i].h, ranges[i].size, &off, &len);
        CHECK_EQ(rc, ranges[i].rc, ranges[i].h ? ranges[i].h : "(none)");
        if (rc == 0) {
            CHECK_EQ(off, ranges[i].off, ranges[i].h);
            CHECK_EQ(len, ranges[i].len, ranges[i].h);
        }
    }
}

static void grab(const struct slides_resource *r, void *arg)
{
    memcpy(arg, r, sizeof(*r));
}

TEST(slides_store_content_roundtrip_and_sweep)
{
    char dir[] = "/tmp/gh-unit-slides-XXXXXX", err[256], id[33], path[300];
    struct slides_meeting m;
    struct slides_pins pins = {NULL, NULL};
    struct slides_resource r;
    struct slides_store *st;
    struct slides_upload *up;
    unsigned char *plain = NULL, *stored, data[70000];
    size_t i, plen = 0;
    int64_t size = 0;
    int fd;

    CHECK(mkdtemp(dir) != NULL);
    st = slides_store_open(dir, NULL, NULL, err, sizeof(err));
    CHECK(st != NULL);
    if (st == NULL)
        return;
    memset(&m, 0, sizeof(m));
    gh_strlcpy(m.alias, "Bad Alias", sizeof(m.alias));
    CHECK_EQ(slides_meeting_create(st, &m, &pins, err, sizeof(err)), -1, "alias with a space");
    gh_strlcpy(m.alias, "ok", sizeof(m.alias));
    pins.guest = "12";
    CHECK_EQ(slides_meeting_create(st, &m, &pins, err, sizeof(err)), -1,
             "guest PIN without host PIN");
    pins.host = "12";
    CHECK_EQ(slides_meeting_create(st, &m, &pins, err, sizeof(err)), -1, "equal PINs");
    pins.host = "1x";
    CHECK_EQ(slides_meeting_create(st, &m, &pins, err, sizeof(err)), -1, "non-digit PIN");
    pins.host = pins.guest = NULL;
    m.policy.auth = SLIDES_AUTH_BOTH;
    CHECK_EQ(slides_meeting_create(st, &m, &pins, err, sizeof(err)), -1, "SSO without a group");
    m.policy.auth = SLIDES_AUTH_NONE;
    CHECK_EQ(slides_meeting_create(st, &m, &pins, err, sizeof(err)), 0, "valid meeting");
    CHECK_EQ(slides_meeting_create(st, &m, &pins, err, sizeof(err)), -1, "duplicate alias");
    for (i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i % 251 < 200 ? 'a' + i % 7 : i * 31);
    up = slides_upload_begin(st, m.id, "s.bin", err, sizeof(err));
    CHECK(up != NULL);
    if (up != NULL) {
        CHECK_EQ(slides_upload_write(up, data, 30000, err, sizeof(err)), 0, "write 1");
        CHECK_EQ(slides_upload_write(up, data + 30000, sizeof(data) - 30000, err, sizeof(err)),
                 0, "write 2");
        CHECK_EQ(slides_upload_finish(up, id, err, sizeof(err)), 0, "finish");
    }
    memset(&r, 0, sizeof(r));
    slides_resource_list(st, m.id, grab, &r);
    CHECK_EQ(r.size, (long long)sizeof(data), "plain size recorded");
    stored = unit_slides_read(st, id, &size);
    CHECK(stored != NULL && size == r.stored && size < (int64_t)sizeof(data));
    if (stored == NULL)
        stored = gh_calloc(1, (size_t)size + 1);
    plain = slides_decrypt(stored, (size_t)size, r.key, 1 << 20, &plen);
    CHECK(plain != NULL && plen == sizeof(data) && memcmp(plain, data, plen) == 0);
    free(plain);
    /* One byte more than the caller allows: refused, not cut (a deflate
     * bomb stops at the bound). */
    CHECK(slides_decrypt(stored, (size_t)size, r.key, sizeof(data) - 1, &plen) == NULL);
    plain = slides_decrypt(stored, (size_t)size, r.key, sizeof(data), &plen);
    CHECK(plain != NULL && plen == sizeof(data));
    free(plain);
    stored[size / 2] ^= 1;
    CHECK(slides_decrypt(stored, (size_t)size, r.key, 1 << 20, &plen) == NULL);
    stored[size / 2] ^= 1;
    r.key[0] ^= 1;
    CHECK(slides_decrypt(stored, (size_t)size, r.key, 1 << 20, &plen) == NULL);
    CHECK(slides_decrypt(stored, 10, r.key, 1 << 20, &plen) == NULL);
    free(stored);
    CHECK(slides_content_reader(st, "../meetings.db", &size) == NULL);
    CHECK(slides_content_reader(st, "0123456789abcdef0123456789abcdef", &size) == NULL);
    /* An interrupted upload and an orphan file vanish at the next open. */
    up = slides_upload_begin(st, m.id, "half.bin", err, sizeof(err));
    CHECK(up != NULL && slides_upload_write(up, data, 1000, err, sizeof(err)) == 0);
    snprintf(path, sizeof(path), "%s/content/0123456789abcdef0123456789abcdef", dir);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    CHECK(fd != -1);
    if (fd != -1)
        close(fd);
    slides_store_close(st);
    st = slides_store_open(dir, NULL, NULL, err, sizeof(err));
    CHECK(st != NULL);
    CHECK(access(path, F_OK) == -1);
    stored = unit_slides_read(st, id, &size);
    CHECK(stored != NULL);
    free(stored);
    /* Ending the meeting shreds rows and files. */
    CHECK_EQ(slides_meeting_end(st, m.id, 1, NULL), 0, "end");
    CHECK(slides_content_reader(st, id, &size) == NULL);
    slides_upload_abort(up); /* its temp file was swept already */
    slides_store_close(st);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    CHECK(system(path) == 0);
}

static int count_files(const char *dir)
{
    char path[300];
    struct dirent *e;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), "%s/content", dir);
    d = opendir(path);
    while (d != NULL && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    return n;
}

static void count_waiter(const struct slides_waiter *w, void *arg)
{
    (void)w;
    ++*(int *)arg;
}

/* Ending a meeting says what it shredded and told; afterwards its tokens
 * and its waiters get SLIDES_ENDED / state 3 (the 410 of the application)
 * until it reopens, and reopening does not bring an old token back. A
 * revoke by an update, without an end, stays a plain refusal. */
TEST(slides_store_end_report_ended_and_reopen)
{
    char dir[] = "/tmp/gh-unit-end-XXXXXX", err[256], id[33], tok[SLIDES_TOKEN_HEX + 1],
         tok2[SLIDES_TOKEN_HEX + 1], wid[33];
    struct slides_pins pins = {NULL, NULL};
    struct slides_end_report er = {-1, -1, -1};
    struct slides_meeting m, got;
    struct slides_token t;
    struct slides_waiter w;
    struct slides_upload *up;
    struct slides_store *st;
    int i, waiting = 0;

    CHECK(mkdtemp(dir) != NULL);
    gh_kv_rec_init(2048);
    st = slides_store_open(dir, NULL, NULL, err, sizeof(err));
    CHECK(st != NULL);
    if (st == NULL)
        return;
    memset(&m, 0, sizeof(m));
    gh_strlcpy(m.alias, "ending", sizeof(m.alias));
    CHECK_EQ(slides_meeting_create(st, &m, &pins, err, sizeof(err)), 0, err);
    for (i = 0; i < 3; i++) {
        up = slides_upload_begin(st, m.id, "r.bin", err, sizeof(err));
        CHECK(up != NULL && slides_upload_write(up, "abc", 3, err, sizeof(err)) == 0 &&
              slides_upload_finish(up, id, err, sizeof(err)) == 0);
    }
    CHECK_EQ(slides_waiting_add(st, &m, "W", wid), 0, "waiter");
    memset(&t, 0, sizeof(t));
    t.meeting = m.id;
    t.epoch = m.epoch;
    t.role = SLIDES_HOST;
    CHECK_EQ(slides_token_issue(&t, 60000, tok), 0, "token");
    CHECK_EQ(slides_token_check(st, tok, &t, &got), 0, "token before the end");
    CHECK_EQ(slides_meeting_reopen(st, m.id), -1, "reopen of an open meeting");
    /* An upload under way when the meeting ends is not stored after it. */
    up = slides_upload_begin(st, m.id, "late.bin", err, sizeof(err));
    CHECK(up != NULL && slides_upload_write(up, "late", 4, err, sizeof(err)) == 0);
    CHECK_EQ(slides_meeting_end(st, m.id, 0, &er), 0, "end");
    CHECK_EQ(slides_upload_finish(up, id, err, sizeof(err)), -1, "finished after the end");
    CHECK(strstr(err, "ended") != NULL);
    CHECK_EQ(er.resources, 3, "resources shredded");
    CHECK_EQ(er.waiting, 1, "waiters told");
    CHECK_EQ(er.epoch, m.epoch + 1, "new epoch");
    CHECK_EQ(slides_resource_list(st, m.id, NULL, NULL), 0, "no resource left");
    CHECK_EQ(slides_token_check(st, tok, &t, &got), SLIDES_ENDED, "token after the end");
    CHECK(got.ended != 0);
    CHECK_EQ(slides_waiting_get(st, wid, &w), 0, "the waiter's row stays");
    CHECK_EQ(w.state, 3, "told the meeting ended");
    CHECK_EQ(slides_waiting_list(st, m.id, count_waiter, &waiting), 0, "nobody listed as waiting");
    CHECK_EQ(count_files(dir), 0, "a file of the late upload stayed");
    CHECK_EQ(slides_meeting_end(st, m.id, 0, &er), 0, "a second end");
    CHECK_EQ(er.resources + er.waiting, 0, "a second end shreds nothing more");
    CHECK_EQ(slides_meeting_reopen(st, m.id), 0, "reopen");
    CHECK_EQ(slides_meeting_by_id(st, m.id, &got), 0, "read back");
    CHECK_EQ(got.ended, 0, "open again");
    CHECK_EQ(slides_token_check(st, tok, &t, &got), -1, "an old token after the reopen");
    CHECK_EQ(slides_waiting_get(st, wid, &w), -1, "ended waiters cleared at the reopen");
    /* Tokens revoked by a change of rules, not an end: a plain -1. */
    t.epoch = got.epoch;
    CHECK_EQ(slides_token_issue(&t, 60000, tok2), 0, "token");
    CHECK_EQ(slides_meeting_update(st, &got, &pins, 1, err, sizeof(err)), 0, err);
    CHECK_EQ(slides_token_check(st, tok2, &t, &got), -1, "revoked by an update");
    /* A room deleted and another made: SQLite gives it the deleted room's
     * id again, and none of the old room's tokens is the new room's. */
    CHECK_EQ(slides_meeting_by_id(st, m.id, &got), 0, "read back");
    t.epoch = got.epoch;
    CHECK_EQ(slides_token_issue(&t, 60000, tok2), 0, "a token of the room to be deleted");
    CHECK_EQ(slides_token_check(st, tok2, &t, &got), 0, "live before the delete");
    CHECK_EQ(slides_meeting_end(st, m.id, 1, &er), 0, "delete");
    {
        struct slides_meeting again;
        memset(&again, 0, sizeof(again));
        gh_strlcpy(again.alias, "after-a-delete", sizeof(again.alias));
        CHECK_EQ(slides_meeting_create(st, &again, &pins, err, sizeof(err)), 0, err);
        CHECK_EQ(again.id, m.id, "the id given again (what makes this case)");
        CHECK(again.epoch != t.epoch);
        CHECK_EQ(slides_token_check(st, tok2, &t, &got), -1, "the deleted room's token");
        CHECK_EQ(slides_token_check(st, tok, &t, &got), -1, "an older one");
    }
    slides_store_close(st);
    snprintf(err, sizeof(err), "rm -rf %s", dir);
    CHECK(system(err) == 0);
}
