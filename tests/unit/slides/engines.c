/* One suite for the meeting store on both engines: SQLite in a folder, and
 * a real PostgreSQL 15 (tests/pg_server.sh, a free port, stopped by PID).
 * Each runs with two stores on one database, as two appliances would (two
 * opens of the folder for SQLite): what one writes, the other reads,
 * content included. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../../common/common.h"
#include "../../../slides/slides.h"
#include "../unit.h"
#include "slides_test.h"

#define PG_PASS "unit-pw-7f3a"

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &l);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* The postmaster's PID once it takes connections, or -1. */
static pid_t pg_start(const char *dir, int port)
{
    char cmd[512], line[64] = "";
    FILE *p;

    snprintf(cmd, sizeof(cmd), "tests/pg_server.sh start %s %d %s", dir, port, PG_PASS);
    p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    if (fgets(line, sizeof(line), p) == NULL)
        line[0] = '\0';
    if (pclose(p) != 0)
        return -1;
    return (pid_t)atoi(line) > 0 ? (pid_t)atoi(line) : -1;
}

/* Immediate shutdown (SIGQUIT: the postmaster takes its backends with it),
 * then until the PID is gone: not our child, so no waitpid. */
static void pg_stop(pid_t pid)
{
    int i;

    if (pid <= 0)
        return;
    kill(pid, SIGQUIT);
    for (i = 0; i < 200 && kill(pid, 0) == 0; i++)
        usleep(25000);
    if (kill(pid, 0) == 0)
        kill(pid, SIGKILL);
}

static void grab(const struct slides_resource *r, void *arg)
{
    *(struct slides_resource *)arg = *r;
}

static void count(const void *x, void *arg)
{
    (void)x;
    (*(int *)arg)++;
}

static void count_w(const struct slides_waiter *w, void *arg)
{
    count(w, arg);
}

static void count_p(const struct slides_participant *p, void *arg)
{
    count(p, arg);
}

static void count_m(const struct slides_meeting *m, void *arg)
{
    count(m, arg);
}

static int upload(struct slides_store *st, int64_t meeting, const unsigned char *d, size_t n,
                  char id[33], char *err, size_t errlen)
{
    struct slides_upload *up = slides_upload_begin(st, meeting, "deck.bin", err, errlen);
    size_t off = 0;

    if (up == NULL)
        return -1;
    while (off < n) {
        size_t k = n - off < 10007 ? n - off : 10007;
        if (slides_upload_write(up, d + off, k, err, errlen) == -1)
            return -1; /* freed by the failed write's caller: abort */
        off += k;
    }
    return slides_upload_finish(up, id, err, errlen);
}

/* The suite: a and b are two stores on one database. */
static void conformance(struct slides_store *a, struct slides_store *b, const char *engine)
{
    struct slides_meeting m, got, other;
    struct slides_pins pins = {"4321", NULL};
    struct slides_resource r;
    struct slides_participant p, pg;
    struct slides_upload *late;
    struct slides_end_report rep;
    unsigned char *data = gh_calloc(1, 300000), *stored, *plain, piece[20];
    char err[256], id[33], wid[33], alias[64];
    struct slides_reader *rd;
    int64_t size = 0;
    size_t i, plen = 0;
    int64_t e0;
    int n;

    fprintf(stderr, "  engine %s\n", engine);
    memset(&m, 0, sizeof(m));
    snprintf(alias, sizeof(alias), "room-%s", engine);
    gh_strlcpy(m.alias, alias, sizeof(m.alias));
    CHECK_EQ(slides_meeting_create(a, &m, &pins, err, sizeof(err)), 0, engine);
    /* a first epoch of its own (random), so a room given a deleted room's id
     * shares none of its epochs */
    CHECK(m.id > 0 && m.epoch >= 1 && strncmp(m.uri, "gh-meet:", 8) == 0);
    e0 = m.epoch;
    memset(&other, 0, sizeof(other));
    gh_strlcpy(other.alias, alias, sizeof(other.alias));
    CHECK_EQ(slides_meeting_create(b, &other, NULL, err, sizeof(err)), -1, "duplicate alias");
    CHECK(strstr(err, "exists already") != NULL);
    /* b sees what a made: by alias, URI and id. */
    CHECK_EQ(slides_meeting_by_alias(b, alias, &got), 0, "by alias on b");
    CHECK(got.id == m.id && strcmp(got.uri, m.uri) == 0);
    CHECK_EQ(slides_meeting_key_ok(&got, m.conference_key), 1, "key verifier on b");
    CHECK_EQ(slides_secret_check(got.policy.host_pin_v, "4321"), 1, "PIN verifier on b");
    CHECK_EQ(slides_meeting_by_uri(b, m.uri, &got), 0, "by uri");
    CHECK_EQ(slides_meeting_by_id(b, m.id, &got), 0, "by id");
    CHECK_EQ(slides_meeting_by_alias(b, "no-such-room", &got), -1, "unknown alias");
    /* An update on b, with tokens revoked, is a's room too. */
    pins.host = NULL;
    got.policy.other = SLIDES_OTHER_DISALLOW_ALL;
    CHECK_EQ(slides_meeting_update(b, &got, &pins, 1, err, sizeof(err)), 0, "update on b");
    CHECK_EQ(slides_meeting_by_id(a, m.id, &m), 0, "re-read on a");
    CHECK(m.epoch == e0 + 1 && m.policy.other == SLIDES_OTHER_DISALLOW_ALL);
    CHECK_EQ(slides_secret_check(m.policy.host_pin_v, "4321"), 1, "PIN kept");
    n = 0;
    slides_meeting_list(b, count_m, &n);
    CHECK(n >= 1);

    /* Content: several chunks' worth (300 kB, part random so the stored
     * form is larger than one 64 KiB chunk), uploaded on a, read on b. */
    for (i = 0; i < 300000; i++)
        data[i] = (unsigned char)(i % 3 ? (i * 2654435761u) >> 13 : i);
    CHECK_EQ(upload(a, m.id, data, 300000, id, err, sizeof(err)), 0, "upload on a");
    memset(&r, 0, sizeof(r));
    CHECK_EQ(slides_resource_list(b, m.id, grab, &r), 1, "listed on b");
    CHECK(strcmp(r.id, id) == 0 && r.size == 300000 && r.stored > 65536 * 2);
    stored = unit_slides_read(b, id, &size);
    CHECK(stored != NULL && size == r.stored);
    plain = stored ? slides_decrypt(stored, (size_t)size, r.key, 1 << 20, &plen) : NULL;
    CHECK(plain != NULL && plen == 300000 && memcmp(plain, data, plen) == 0);
    /* A read across a chunk edge gives the same bytes as the whole. */
    rd = slides_content_reader(b, id, &size);
    CHECK(rd != NULL);
    if (rd != NULL && stored != NULL) {
        long k = slides_reader_pread(rd, 65530, piece, sizeof(piece));
        /* A file gives all 20; chunks stop at the edge (a short read). */
        CHECK(k == 20 || (k == 6 && slides_store_shared(b)));
        if (k == 6)
            k += slides_reader_pread(rd, 65536, piece + 6, sizeof(piece) - 6);
        CHECK_EQ(k, 20, "across the edge");
        CHECK(memcmp(piece, stored + 65530, 20) == 0);
        CHECK_EQ(slides_reader_pread(rd, size, piece, sizeof(piece)), 0, "at the end");
    }
    slides_reader_close(rd);
    free(plain);
    free(stored);
    CHECK(slides_content_reader(b, "../../etc/passwd", &size) == NULL);
    CHECK(slides_content_reader(b, "0123456789abcdef0123456789abcdef", &size) == NULL);
    /* An aborted upload leaves nothing. */
    late = slides_upload_begin(a, m.id, "half.bin", err, sizeof(err));
    CHECK(late != NULL && slides_upload_write(late, data, 70000, err, sizeof(err)) == 0);
    slides_upload_abort(late);
    CHECK_EQ(slides_resource_list(b, m.id, grab, &r), 1, "abort stored nothing");

    /* Waiting room and participants, across the two. */
    CHECK_EQ(slides_waiting_add(a, &m, "Wendy", wid), 0, "wait on a");
    n = 0;
    slides_waiting_list(b, m.id, count_w, &n);
    CHECK_EQ(n, 1, "waiting on b");
    CHECK_EQ(slides_waiting_set(b, m.id, wid, 1), 0, "admitted on b");
    CHECK_EQ(slides_waiting_set(b, m.id, wid, 1), -1, "admitted once");
    CHECK_EQ(slides_waiting_take(a, wid), 0, "taken on a");
    CHECK_EQ(slides_waiting_take(a, wid), -1, "taken once");
    memset(&p, 0, sizeof(p));
    gh_strlcpy(p.id, "00112233445566778899aabbccddeeff", sizeof(p.id));
    p.meeting = m.id;
    p.epoch = m.epoch;
    p.role = SLIDES_GUEST;
    gh_strlcpy(p.name, "Gus", sizeof(p.name));
    p.joined = (int64_t)time(NULL);
    p.expires = p.joined + 600;
    CHECK_EQ(slides_participant_add(a, &p), 0, "participant on a");
    gh_strlcpy(p.name, "Gus B.", sizeof(p.name));
    CHECK_EQ(slides_participant_add(a, &p), 0, "the same id again replaces");
    CHECK_EQ(slides_participant_set_role(b, p.id, SLIDES_HOST), 0, "escalated on b");
    CHECK_EQ(slides_participant_get(a, p.id, &pg), 0, "read on a");
    CHECK(pg.role == SLIDES_HOST && strcmp(pg.name, "Gus B.") == 0 && pg.expires == p.expires);
    n = 0;
    slides_participant_list(b, &m, count_p, &n);
    CHECK_EQ(n, 1, "one participant");

    /* An upload begun before the end and finished after it stores nothing;
     * the end shreds the rest and says so. */
    late = slides_upload_begin(a, m.id, "late.bin", err, sizeof(err));
    CHECK(late != NULL && slides_upload_write(late, data, 100000, err, sizeof(err)) == 0);
    CHECK_EQ(slides_meeting_end(b, m.id, 0, &rep), 0, "end on b");
    CHECK(rep.resources == 1 && rep.epoch == e0 + 2);
    if (late != NULL) {
        CHECK_EQ(slides_upload_finish(late, id, err, sizeof(err)), -1, "late upload");
        CHECK(strstr(err, "ended") != NULL);
    }
    CHECK(slides_content_reader(a, r.id, &size) == NULL);
    CHECK_EQ(slides_resource_list(a, m.id, grab, &r), 0, "shredded");
    n = 0;
    slides_participant_list(a, &m, count_p, &n);
    CHECK_EQ(n, 0, "nobody in an ended meeting");
    CHECK_EQ(slides_meeting_by_id(a, m.id, &got), 0, "room stays");
    CHECK(got.ended > 0);
    CHECK_EQ(slides_meeting_reopen(a, m.id), 0, "reopen");
    CHECK_EQ(slides_meeting_reopen(a, m.id), -1, "reopen once");
    CHECK_EQ(slides_meeting_end(a, m.id, 1, NULL), 0, "delete");
    CHECK_EQ(slides_meeting_by_alias(b, alias, &got), -1, "deleted for b");
    free(data);
}

TEST(slides_engines_sqlite)
{
    char dir[] = "/tmp/gh-unit-eng-XXXXXX", err[256], cmd[300];
    struct slides_store *a, *b;

    CHECK(mkdtemp(dir) != NULL);
    a = slides_store_open(dir, NULL, NULL, err, sizeof(err));
    b = slides_store_open(dir, NULL, NULL, err, sizeof(err));
    CHECK(a != NULL && b != NULL);
    if (a != NULL && b != NULL) {
        CHECK_EQ(slides_store_shared(a), 0, "sqlite");
        conformance(a, b, "sqlite");
    }
    slides_store_close(a);
    slides_store_close(b);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

static void room_seen(const char *alias, const char *group, void *arg)
{
    (void)group;
    if (strcmp(alias, "scan-me") == 0)
        (*(int *)arg)++;
}

TEST(slides_engines_postgresql)
{
    char dir[] = "/tmp/gh-unit-pg-XXXXXX", err[256], cmd[300], conninfo[200], pgdir[200],
        pwfile[240], kdir[240];
    struct slides_pg pg = {conninfo, pwfile, 3000, 0};
    struct slides_store *a, *b;
    struct slides_meeting m;
    int port = free_port(), seen = 0;
    FILE *f;
    pid_t pid;

    CHECK(mkdtemp(dir) != NULL);
    chmod(dir, 0755); /* the postgres user reaches its folder inside */
    snprintf(pgdir, sizeof(pgdir), "%s/pg", dir);
    pid = pg_start(pgdir, port);
    if (pid == -1) {
        fprintf(stderr, "postgresql did not start (installed? scripts/deps.sh test)\n");
        CHECK(pid != -1);
        return;
    }
    snprintf(conninfo, sizeof(conninfo),
             "host=127.0.0.1 port=%d dbname=gatehouse user=gatehouse", port);
    snprintf(pwfile, sizeof(pwfile), "%s/pgpass", dir);
    f = fopen(pwfile, "w");
    fputs("wrong\n", f);
    fclose(f);
    snprintf(kdir, sizeof(kdir), "%s/a", dir);
    /* A password file others may read: refused before any connection. */
    chmod(pwfile, 0644);
    CHECK(slides_store_open(kdir, NULL, &pg, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "chmod 600") != NULL);
    chmod(pwfile, 0600);
    /* A wrong password: refused, with the server's reason. */
    CHECK(slides_store_open(kdir, NULL, &pg, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "password authentication failed") != NULL);
    f = fopen(pwfile, "w");
    fputs(PG_PASS "\n", f);
    fclose(f);
    a = slides_store_open(kdir, NULL, &pg, err, sizeof(err));
    CHECK(a != NULL);
    /* The second appliance has the same key-encryption key (the file each
     * mounts): here the first one's. */
    snprintf(cmd, sizeof(cmd), "%s/a/slides.kek", dir);
    b = slides_store_open(dir, cmd, &pg, err, sizeof(err));
    CHECK(b != NULL);
    if (a != NULL && b != NULL) {
        CHECK_EQ(slides_store_shared(a), 1, "postgresql");
        conformance(a, b, "postgresql");
        /* No content folder and no database file: all of it is on the server. */
        snprintf(cmd, sizeof(cmd), "%s/a/content", dir);
        CHECK(access(cmd, F_OK) == -1);
        snprintf(cmd, sizeof(cmd), "%s/a/meetings.db", dir);
        CHECK(access(cmd, F_OK) == -1);
        memset(&m, 0, sizeof(m));
        gh_strlcpy(m.alias, "scan-me", sizeof(m.alias));
        CHECK_EQ(slides_meeting_create(a, &m, NULL, err, sizeof(err)), 0, "scan room");
        CHECK_EQ(slides_rooms_scan(dir, &pg, room_seen, &seen, err, sizeof(err)), 0, "scan");
        CHECK_EQ(seen, 1, "room seen by the scan");
        /* Sixteen uploads at once hold sixteen connections; the 17th is
         * told the store is busy, and once one ends another may begin. */
        {
            struct slides_upload *ups[17];
            int i, began = 0;
            for (i = 0; i < 16; i++)
                began += (ups[i] = slides_upload_begin(a, m.id, "u.bin", err, sizeof(err))) != NULL;
            CHECK_EQ(began, 16, "sixteen uploads at once");
            ups[16] = slides_upload_begin(b, m.id, "u.bin", err, sizeof(err));
            CHECK(ups[16] == NULL && strstr(err, "busy") != NULL);
            slides_upload_abort(ups[0]);
            ups[0] = slides_upload_begin(b, m.id, "u.bin", err, sizeof(err));
            CHECK(ups[0] != NULL);
            for (i = 0; i < 16; i++)
                slides_upload_abort(ups[i]);
        }
    }
    /* A server that stops answering (SIGSTOP to the postmaster and its
     * backends, one of which serves this connection): a lookup fails after the
     * timeout (3 s here) and says the store did not answer; the next one,
     * within a second, fails at once; answering again, it works again. */
    if (a != NULL) {
        uint64_t t0;
        snprintf(cmd, sizeof(cmd), "pkill -STOP -P %d", (int)pid);
        kill(pid, SIGSTOP);
        CHECK(system(cmd) == 0);
        t0 = gh_now_ms();
        CHECK_EQ(slides_meeting_by_alias(a, "scan-me", &m), -1, "stopped server");
        CHECK(slides_store_unavailable() == 1);
        CHECK(gh_now_ms() - t0 >= 2900 && gh_now_ms() - t0 < 6000);
        t0 = gh_now_ms();
        CHECK_EQ(slides_meeting_by_alias(a, "scan-me", &m), -1, "at once after");
        CHECK(gh_now_ms() - t0 < 500);
        snprintf(cmd, sizeof(cmd), "pkill -CONT -P %d", (int)pid);
        CHECK(system(cmd) == 0);
        kill(pid, SIGCONT);
        usleep(1100 * 1000); /* the one-second hold-off of the engine, on purpose */
        CHECK_EQ(slides_meeting_by_alias(a, "scan-me", &m), 0, "answering again");
        CHECK(slides_store_unavailable() == 0);
        CHECK_EQ(slides_meeting_by_alias(a, "no-such", &m), -1, "none");
        CHECK(slides_store_unavailable() == 0);
    }
    slides_store_close(a);
    slides_store_close(b);
    /* A server that is gone: open fails with libpq's reason, no hang. */
    pg_stop(pid);
    a = slides_store_open(kdir, NULL, &pg, err, sizeof(err));
    CHECK(a == NULL && strstr(err, "meetings-store postgresql") != NULL);
    slides_store_close(a);
    /* Lazy (as the appliance opens it): a store all the same, whose
     * lookups say the database did not answer. */
    pg.lazy = 1;
    a = slides_store_open(kdir, NULL, &pg, err, sizeof(err));
    CHECK(a != NULL && strstr(err, "meetings-store postgresql") != NULL);
    if (a != NULL) {
        CHECK_EQ(slides_meeting_by_alias(a, "scan-me", &m), -1, "lazy, no server");
        CHECK(slides_store_unavailable() == 1);
    }
    slides_store_close(a);
    /* A password in the conninfo, as a keyword or in a URI, is refused
     * before any connection; so is one that does not parse. */
    {
        static const char *const bad[] = {
            "host=127.0.0.1 password=pw", "postgresql://gatehouse:pw@127.0.0.1/gatehouse",
            "postgresql://gatehouse@127.0.0.1/gatehouse?%70assword=pw", "host=a nonsense=1",
            "host='unterminated"};
        size_t i;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            struct slides_pg bp = {bad[i], NULL, 1000, 1};
            CHECK_EQ(slides_pg_check(&bp, err, sizeof(err)), -1, bad[i]);
            CHECK(slides_store_open(kdir, NULL, &bp, err, sizeof(err)) == NULL);
        }
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}
