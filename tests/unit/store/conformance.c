/* The store contract, one table run on both engines: the local tables and
 * a real redis-server (started here on a free port, stopped by PID). Then
 * what only the network engine has to survive: a paused and a killed
 * server, a replica where the master should be, a wrong password, discovery
 * through a real redis-sentinel, and a hostile server's answers. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../../common/common.h"
#include "../../../common/kv.h"
#include "../../../store/store.h"
#include "../unit.h"

struct got {
    int done, seq;
    struct store_reply r;
    unsigned char val[STORE_VAL_MAX];
};

static int seq_counter;

static void got_cb(void *arg, const struct store_reply *r)
{
    struct got *g = arg;

    g->done++;
    g->seq = ++seq_counter;
    g->r = *r;
    if (r->val != NULL)
        memcpy(g->val, r->val, r->vlen);
    g->r.val = g->val;
}

enum step_op { GET, TAKE, SET, SETNX, SETXX, DEL, INCR, SLEEP };

/* One step: the operation and what it must answer. val NULL: don't care
 * about the value. n: incr's value. ttl_min/max: the TTL bounds (-2: don't
 * care). */
static const struct step {
    enum step_op op;
    const char *key, *val;
    int64_t n, ttl;
    enum store_status want;
    const char *want_val;
    int64_t want_n, ttl_min, ttl_max;
} steps[] = {
    {GET, "a", NULL, 0, 0, STORE_ABSENT, NULL, 0, -2, -2},
    {SET, "a", "one", 0, 60000, STORE_OK, NULL, 0, -2, -2},
    {GET, "a", NULL, 0, 0, STORE_OK, "one", 0, 55000, 60000},
    {SETNX, "a", "two", 0, 60000, STORE_EXISTS, NULL, 0, -2, -2},
    {GET, "a", NULL, 0, 0, STORE_OK, "one", 0, -2, -2},
    {SET, "a", "two", 0, 30000, STORE_OK, NULL, 0, -2, -2},
    {GET, "a", NULL, 0, 0, STORE_OK, "two", 0, 25000, 30000},
    {TAKE, "a", NULL, 0, 0, STORE_OK, "two", 0, 25000, 30000},
    {TAKE, "a", NULL, 0, 0, STORE_ABSENT, NULL, 0, -2, -2},
    {GET, "a", NULL, 0, 0, STORE_ABSENT, NULL, 0, -2, -2},
    {SETNX, "a", "three", 0, 60000, STORE_OK, NULL, 0, -2, -2},
    {GET, "a", NULL, 0, 0, STORE_OK, "three", 0, -2, -2},
    {DEL, "b", NULL, 0, 0, STORE_ABSENT, NULL, 0, -2, -2},
    {SETXX, "b", "back", 0, 60000, STORE_ABSENT, NULL, 0, -2, -2}, /* a refresh creates nothing */
    {GET, "b", NULL, 0, 0, STORE_ABSENT, NULL, 0, -2, -2},
    {SET, "b", "", 0, 60000, STORE_OK, NULL, 0, -2, -2}, /* an empty value is a value */
    {SETXX, "b", "", 0, 50000, STORE_OK, NULL, 0, -2, -2},
    {GET, "b", NULL, 0, 0, STORE_OK, "", 0, 45000, 50000},
    {GET, "b", NULL, 0, 0, STORE_OK, "", 0, -2, -2},
    {DEL, "b", NULL, 0, 0, STORE_OK, NULL, 0, -2, -2},
    {GET, "b", NULL, 0, 0, STORE_ABSENT, NULL, 0, -2, -2},
    {INCR, "c", NULL, 1, 60000, STORE_OK, NULL, 1, 55000, 60000},
    {INCR, "c", NULL, 5, 1000, STORE_OK, NULL, 6, 55000, 60000}, /* the first write's TTL */
    {INCR, "c", NULL, -10, 1000, STORE_OK, NULL, -4, 55000, 60000},
    {DEL, "c", NULL, 0, 0, STORE_OK, NULL, 0, -2, -2},
    {INCR, "c", NULL, 2, 1000, STORE_OK, NULL, 2, 500, 1000}, /* a new window */
    {SET, "e", "short", 0, 100, STORE_OK, NULL, 0, -2, -2},
    {INCR, "f", NULL, 7, 100, STORE_OK, NULL, 7, 1, 100},
    {SLEEP, NULL, NULL, 250, 0, STORE_OK, NULL, 0, -2, -2}, /* the TTL itself is under test */
    {GET, "e", NULL, 0, 0, STORE_ABSENT, NULL, 0, -2, -2},
    {TAKE, "e", NULL, 0, 0, STORE_ABSENT, NULL, 0, -2, -2},
    {INCR, "f", NULL, 1, 100, STORE_OK, NULL, 1, 1, 100},
};

static int ask(struct store_conn *c, enum step_op op, const void *key, size_t klen,
               const void *val, size_t vlen, int64_t n, int64_t ttl, int flags, struct got *g)
{
    switch (op) {
    case GET:
        return store_get(c, key, klen, got_cb, g);
    case TAKE:
        return store_take(c, key, klen, got_cb, g);
    case SET:
        return store_set(c, key, klen, val, vlen, ttl, flags, got_cb, g);
    case SETNX:
        return store_set(c, key, klen, val, vlen, ttl, flags | STORE_NX, got_cb, g);
    case SETXX:
        return store_set(c, key, klen, val, vlen, ttl, flags | STORE_XX, got_cb, g);
    case DEL:
        return store_del(c, key, klen, got_cb, g);
    case INCR:
        return store_incr(c, key, klen, n, ttl, got_cb, g);
    case SLEEP:
        break;
    }
    return -1;
}

static void run_table(struct store_conn *c, const char *engine)
{
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(steps); i++) {
        const struct step *s = &steps[i];
        struct got g = {0};
        char ctx[96];
        snprintf(ctx, sizeof(ctx), "%s step %zu", engine, i);
        if (s->op == SLEEP) {
            struct timespec ts = {0, s->n * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        CHECK_EQ(ask(c, s->op, s->key, strlen(s->key), s->val, s->val ? strlen(s->val) : 0, s->n,
                     s->ttl, 0, &g),
                 0, ctx);
        CHECK_EQ(g.done, 0, ctx); /* never answered from inside the call */
        CHECK_EQ(store_conn_wait(c, 3000), 0, ctx);
        CHECK_EQ(g.done, 1, ctx);
        CHECK_EQ(g.r.status, s->want, ctx);
        if (s->want_val != NULL) {
            CHECK_EQ(g.r.vlen, strlen(s->want_val), ctx);
            CHECK(memcmp(g.val, s->want_val, strlen(s->want_val)) == 0);
        }
        if (s->op == INCR)
            CHECK_EQ(g.r.n, s->want_n, ctx);
        if (s->ttl_min != -2) {
            if (g.r.ttl_ms < s->ttl_min || g.r.ttl_ms > s->ttl_max)
                fprintf(stderr, "[%s] ttl %lld not in [%lld, %lld]\n", ctx,
                        (long long)g.r.ttl_ms, (long long)s->ttl_min, (long long)s->ttl_max);
            CHECK(g.r.ttl_ms >= s->ttl_min && g.r.ttl_ms <= s->ttl_max);
        }
    }
}

/* Bounds, binary keys and values, order under pipelining, two takers,
 * asking again from a callback. */
static struct store_conn *again_conn;
static struct got again_second;

static void again_cb(void *arg, const struct store_reply *r)
{
    got_cb(arg, r);
    CHECK_EQ(store_get(again_conn, "k2", 2, got_cb, &again_second), 0, "again");
    CHECK_EQ(again_second.done, 0, "again: not from inside");
}

static void run_more(struct store *s, struct store_conn *c, const char *engine)
{
    unsigned char key[STORE_KEY_MAX + 1], val[STORE_VAL_MAX + 1];
    static struct got many[1000];
    struct got g = {0}, t1 = {0}, t2 = {0};
    struct store_conn *c2;
    int i, ordered = 1;

    for (i = 0; i < (int)sizeof(key); i++)
        key[i] = (unsigned char)(i * 37);
    key[3] = 0;
    for (i = 0; i < (int)sizeof(val); i++)
        val[i] = (unsigned char)(i * 11);
    val[0] = 0;
    CHECK_EQ(store_set(c, key, STORE_KEY_MAX + 1, "x", 1, 1000, 0, got_cb, &g), -1, engine);
    CHECK_EQ(store_set(c, key, 0, "x", 1, 1000, 0, got_cb, &g), -1, engine);
    CHECK_EQ(store_set(c, key, 4, val, STORE_VAL_MAX + 1, 1000, 0, got_cb, &g), -1, engine);
    CHECK_EQ(store_set(c, key, 4, "x", 1, 0, 0, got_cb, &g), -1, engine);
    CHECK_EQ(store_incr(c, key, 4, 1, -5, got_cb, &g), -1, engine);
    CHECK_EQ(g.done, 0, engine);
    CHECK_EQ(store_set(c, key, STORE_KEY_MAX, val, STORE_VAL_MAX, 60000, 0, got_cb, &g), 0,
             engine);
    CHECK_EQ(store_get(c, key, STORE_KEY_MAX, got_cb, &t1), 0, engine);
    CHECK_EQ(store_conn_wait(c, 3000), 0, engine);
    CHECK_EQ(g.r.status, STORE_OK, engine);
    CHECK_EQ(t1.r.status, STORE_OK, engine);
    CHECK_EQ(t1.r.vlen, STORE_VAL_MAX, engine);
    CHECK(memcmp(t1.val, val, STORE_VAL_MAX) == 0);
    /* 1000 in flight at once: answered in the order asked, counting 1..1000 */
    seq_counter = 0;
    for (i = 0; i < 1000; i++) {
        memset(&many[i], 0, sizeof(many[i]));
        CHECK_EQ(store_incr(c, "pipe", 4, 1, 60000, got_cb, &many[i]), 0, engine);
    }
    CHECK_EQ(store_conn_pending(c), 1000, engine);
    CHECK_EQ(store_conn_wait(c, 5000), 0, engine);
    for (i = 0; i < 1000; i++)
        if (many[i].done != 1 || many[i].r.status != STORE_OK || many[i].r.n != i + 1 ||
            many[i].seq != i + 1)
            ordered = 0;
    CHECK(ordered);
    /* two takers on two connections: exactly one gets it */
    c2 = store_conn_new(s);
    memset(&g, 0, sizeof(g));
    CHECK_EQ(store_set(c, "tk", 2, "once", 4, 60000, 0, got_cb, &g), 0, engine);
    CHECK_EQ(store_conn_wait(c, 3000), 0, engine);
    CHECK_EQ(store_take(c, "tk", 2, got_cb, &t1), 0, engine);
    CHECK_EQ(store_take(c2, "tk", 2, got_cb, &t2), 0, engine);
    CHECK_EQ(store_conn_wait(c, 3000), 0, engine);
    CHECK_EQ(store_conn_wait(c2, 3000), 0, engine);
    CHECK_EQ((t1.r.status == STORE_OK) + (t2.r.status == STORE_OK), 1, engine);
    CHECK_EQ((t1.r.status == STORE_ABSENT) + (t2.r.status == STORE_ABSENT), 1, engine);
    store_conn_free(c2);
    /* a bucket of 3, refilled at 60 a minute: three go, the fourth waits
     * about a second, on another connection too (one bucket) */
    {
        struct got b[5];
        memset(b, 0, sizeof(b));
        for (i = 0; i < 4; i++)
            CHECK_EQ(store_bucket(c, "bk", 2, 60, 3, got_cb, &b[i]), 0, engine);
        CHECK_EQ(store_bucket(c, "bk", 2, 0, 3, got_cb, &b[4]), -1, engine); /* no rate */
        CHECK_EQ(store_conn_wait(c, 3000), 0, engine);
        for (i = 0; i < 3; i++) {
            CHECK_EQ(b[i].r.status, STORE_OK, engine);
            CHECK_EQ(b[i].r.n, 0, engine);
        }
        CHECK_EQ(b[3].r.status, STORE_OK, engine);
        CHECK(b[3].r.n > 900 && b[3].r.n <= 1001);
        c2 = store_conn_new(s);
        memset(&b[4], 0, sizeof(b[4]));
        CHECK_EQ(store_bucket(c2, "bk", 2, 60, 3, got_cb, &b[4]), 0, engine);
        CHECK_EQ(store_conn_wait(c2, 3000), 0, engine);
        CHECK(b[4].r.status == STORE_OK && b[4].r.n > 800);
        store_conn_free(c2);
        /* a fast bucket refills: 60000 a minute is one a millisecond */
        memset(b, 0, sizeof(b));
        CHECK_EQ(store_bucket(c, "bf", 2, 60000, 1, got_cb, &b[0]), 0, engine);
        CHECK_EQ(store_bucket(c, "bf", 2, 60000, 1, got_cb, &b[1]), 0, engine);
        CHECK_EQ(store_conn_wait(c, 3000), 0, engine);
        CHECK(b[0].r.n == 0 && b[1].r.n <= 2);
        poll(NULL, 0, 20);
        CHECK_EQ(store_bucket(c, "bf", 2, 60000, 1, got_cb, &b[2]), 0, engine);
        CHECK_EQ(store_conn_wait(c, 3000), 0, engine);
        CHECK_EQ(b[2].r.n, 0, engine);
    }
    /* connections per member: A has 2, B asks for its 3rd within a limit
     * of 4 (refused: the sum would be 5, and the reply says A's 2), then
     * for 2 (written); A gone (its entry lapses) leaves B's alone; a count
     * of 0 removes a member; bad members refused at once */
    {
        struct got k[8];
        memset(k, 0, sizeof(k));
        CHECK_EQ(store_conns(c, "cn", 2, "appl-a", 2, 4, 300, 10, got_cb, &k[0]), 0, engine);
        CHECK_EQ(store_conns(c, "cn", 2, "appl-b", 3, 4, 60000, 20, got_cb, &k[1]), 0, engine);
        CHECK_EQ(store_conns(c, "cn", 2, "appl-b", 2, 4, 60000, 30, got_cb, &k[2]), 0, engine);
        CHECK_EQ(store_conns(c, "cn", 2, "appl-a", 1, 4, 300, 40, got_cb, &k[3]), 0, engine);
        CHECK_EQ(store_conn_wait(c, 3000), 0, engine);
        for (i = 0; i < 4; i++)
            CHECK_EQ(k[i].r.status, STORE_OK, engine);
        CHECK_EQ(k[0].r.n, 0, engine);
        CHECK_EQ(k[1].r.n, 3, engine); /* 1 + A's 2 */
        CHECK_EQ(k[2].r.n, 0, engine);
        CHECK_EQ(k[3].r.n, 0, engine); /* A's own 1 replaces its 2: 1 + 2 <= 4 */
        poll(NULL, 0, 400);            /* A's entry lapses */
        CHECK_EQ(store_conns(c, "cn", 2, "appl-b", 4, 4, 60000, 50, got_cb, &k[4]), 0, engine);
        CHECK_EQ(store_conns(c, "cn", 2, "appl-c", 1, 4, 60000, 60, got_cb, &k[5]), 0, engine);
        CHECK_EQ(store_conns(c, "cn", 2, "appl-b", 0, 0, 60000, 70, got_cb, &k[6]), 0, engine);
        CHECK_EQ(store_conns(c, "cn", 2, "appl-c", 1, 1, 60000, 80, got_cb, &k[7]), 0, engine);
        CHECK_EQ(store_conn_wait(c, 3000), 0, engine);
        CHECK_EQ(k[4].r.n, 0, engine);
        CHECK_EQ(k[5].r.n, 5, engine); /* 1 + B's 4 */
        CHECK_EQ(k[6].r.n, 0, engine);
        CHECK_EQ(k[7].r.n, 0, engine); /* B removed: C's 1 alone */
        /* a member's late write (an older seq, come on another connection)
         * leaves its newer entry: C's 3 stays, so D's 2 does not fit in 4 */
        memset(k, 0, sizeof(k));
        CHECK_EQ(store_conns(c, "cs", 2, "appl-c", 3, 0, 60000, 500, got_cb, &k[0]), 0, engine);
        CHECK_EQ(store_conns(c, "cs", 2, "appl-c", 1, 0, 60000, 400, got_cb, &k[1]), 0, engine);
        CHECK_EQ(store_conns(c, "cs", 2, "appl-d", 2, 4, 60000, 1, got_cb, &k[2]), 0, engine);
        CHECK_EQ(store_conns(c, "cs", 2, "appl-c", 1, 0, 60000, 600, got_cb, &k[3]), 0, engine);
        CHECK_EQ(store_conns(c, "cs", 2, "appl-d", 2, 4, 60000, 2, got_cb, &k[4]), 0, engine);
        CHECK_EQ(store_conn_wait(c, 3000), 0, engine);
        CHECK_EQ(k[2].r.n, 4, engine); /* 1 + C's 3, the late 1 ignored */
        CHECK_EQ(k[4].r.n, 0, engine); /* C's newer 1: 1 + 2 fits */
        CHECK_EQ(store_conns(c, "cn", 2, "a", 1, 1, 1000, -1, got_cb, &k[0]), -1, engine);
        CHECK_EQ(store_conns(c, "cn", 2, "a b", 1, 1, 1000, 90, got_cb, &k[0]), -1, engine);
        CHECK_EQ(store_conns(c, "cn", 2, "a;b", 1, 1, 1000, 100, got_cb, &k[0]), -1, engine);
        CHECK_EQ(store_conns(c, "cn", 2, "", 1, 1, 1000, 110, got_cb, &k[0]), -1, engine);
        CHECK_EQ(store_conns(c, "cn", 2, "a", -1, 1, 1000, 120, got_cb, &k[0]), -1, engine);
        CHECK_EQ(store_conns(c, "cn", 2, "a", 1, 1, 0, 130, got_cb, &k[0]), -1, engine);
    }
    /* a callback that asks again */
    memset(&g, 0, sizeof(g));
    memset(&again_second, 0, sizeof(again_second));
    again_conn = c;
    CHECK_EQ(store_get(c, "k1", 2, again_cb, &g), 0, engine);
    CHECK_EQ(store_conn_wait(c, 3000), 0, engine);
    CHECK_EQ(g.done, 1, engine);
    CHECK_EQ(again_second.done, 1, engine);
    CHECK_EQ(again_second.r.status, STORE_ABSENT, engine);
    /* freeing a connection answers what it holds, once */
    c2 = store_conn_new(s);
    memset(&t1, 0, sizeof(t1));
    CHECK_EQ(store_get(c2, "k1", 2, got_cb, &t1), 0, engine);
    store_conn_free(c2);
    CHECK_EQ(t1.done, 1, engine);
    CHECK(t1.r.status == STORE_DOWN || (s == NULL || strcmp(store_engine_name(s), "local") == 0
                                            ? t1.r.status == STORE_ABSENT
                                            : 0));
}

TEST(store_conformance_local)
{
    struct store_conf k = {.engine = STORE_LOCAL};
    char err[256];
    struct store *s;
    struct store_conn *c;
    struct got g = {0};

    gh_kv_init(4096);
    gh_kv_rec_init(4096);
    s = store_new(&k, err, sizeof(err));
    CHECK(s != NULL);
    if (s == NULL)
        return;
    c = store_conn_new(s);
    CHECK_EQ(store_conn_fd(c), -1, "local: no socket");
    run_table(c, "local");
    run_more(s, c, "local");
    CHECK_EQ(store_set(c, "d", 1, "v", 1, 1000, STORE_DURABLE, got_cb, &g), 0, "local durable");
    CHECK_EQ(store_conn_wait(c, 1000), 0, "local durable");
    CHECK_EQ(g.r.status, STORE_OK, "local durable: one appliance, nothing to wait for");
    store_conn_free(c);
    store_free(s);
    gh_kv_fini();
    gh_kv_rec_fini();
}

/* ---- a real redis-server ---- */

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

/* PING answered within 10 s, or -1. A readiness check, not a sleep. */
static int wait_ping(int port)
{
    int i;

    for (i = 0; i < 200; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        char buf[64];
        struct pollfd p = {fd, POLLIN, 0};
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
            write(fd, "PING\r\n", 6) == 6 && poll(&p, 1, 500) == 1 &&
            read(fd, buf, sizeof(buf)) > 0 && (buf[0] == '+' || buf[0] == '-')) {
            close(fd);
            return 0;
        }
        close(fd);
        poll(NULL, 0, 50);
    }
    return -1;
}

static pid_t start_server(const char *prog, const char *dir, int port, const char *const *more)
{
    char ports[16];
    const char *argv[32];
    int n = 0;
    pid_t pid;

    snprintf(ports, sizeof(ports), "%d", port);
    argv[n++] = prog;
    if (strcmp(prog, "redis-sentinel") == 0)
        argv[n++] = more[0], more++;
    argv[n++] = "--port";
    argv[n++] = ports;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--dir";
    argv[n++] = dir;
    argv[n++] = "--logfile";
    argv[n++] = "";
    while (more != NULL && *more != NULL && n < 30)
        argv[n++] = *more++;
    argv[n] = NULL;
    pid = fork();
    if (pid == 0) {
        char *args[32];
        int devnull = open("/dev/null", O_WRONLY), i;
        for (i = 0; i <= n; i++)
            args[i] = argv[i] ? gh_strdup(argv[i]) : NULL;
        dup2(devnull, 1);
        execvp(prog, args);
        _exit(127);
    }
    if (pid > 0 && wait_ping(port) == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

static void stop_server(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGCONT);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static struct store *redis_store(const char *addr, const char *password, int64_t timeout_ms)
{
    struct store_conf k = {.engine = STORE_REDIS, .timeout_ms = timeout_ms};
    char err[256];

    snprintf(k.address, sizeof(k.address), "%s", addr);
    snprintf(k.password, sizeof(k.password), "%s", password ? password : "");
    snprintf(k.prefix, sizeof(k.prefix), "gh-test:%d:", (int)getpid());
    return store_new(&k, err, sizeof(err));
}

/* Asks until an answer is OK or max_ms passed: recovery without restart. */
static int recovers(struct store_conn *c, int64_t max_ms)
{
    uint64_t end = gh_now_ms() + (uint64_t)max_ms;

    while (gh_now_ms() < end) {
        struct got g = {0};
        if (store_set(c, "rec", 3, "v", 1, 10000, 0, got_cb, &g) == 0 &&
            store_conn_wait(c, 2000) == 0 && g.r.status == STORE_OK)
            return 0;
        poll(NULL, 0, 20);
    }
    return -1;
}

TEST(store_conformance_redis)
{
    char dir[] = "/tmp/gh-redis-XXXXXX", addr[64];
    const char *const pass[] = {"--requirepass", "s3cret", NULL};
    int port = free_port();
    pid_t pid;
    struct store *s;
    struct store_conn *c;
    struct got g = {0};
    uint64_t t0;

    CHECK(mkdtemp(dir) != NULL);
    pid = start_server("redis-server", dir, port, pass);
    CHECK(pid > 0);
    if (pid <= 0) {
        fprintf(stderr, "redis-server did not start (is it installed? scripts/deps.sh test)\n");
        return;
    }
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    s = redis_store(addr, "s3cret", 400);
    c = store_conn_new(s);
    CHECK(store_conn_fd(c) >= 0);
    run_table(c, "redis");
    run_more(s, c, "redis");
    {
        /* durable: no replica confirms, so the write is not called durable */
        struct store_conf k;
        struct store *sd;
        struct store_conn *cd;
        char err[128];
        memset(&k, 0, sizeof(k));
        k.engine = STORE_REDIS;
        k.timeout_ms = 400;
        k.durable_replicas = 1;
        snprintf(k.address, sizeof(k.address), "%s", addr);
        snprintf(k.password, sizeof(k.password), "s3cret");
        sd = store_new(&k, err, sizeof(err));
        cd = store_conn_new(sd);
        memset(&g, 0, sizeof(g));
        CHECK_EQ(store_set(cd, "dur", 3, "v", 1, 10000, STORE_DURABLE, got_cb, &g), 0, "durable");
        CHECK_EQ(store_conn_wait(cd, 2000), 0, "durable");
        CHECK_EQ(g.r.status, STORE_NOT_DURABLE, "durable without a replica");
        memset(&g, 0, sizeof(g));
        CHECK_EQ(store_set(cd, "dur2", 4, "v", 1, 10000, 0, got_cb, &g), 0, "not durable");
        CHECK_EQ(store_conn_wait(cd, 2000), 0, "not durable");
        CHECK_EQ(g.r.status, STORE_OK, "a plain write after it");
        store_conn_free(cd);
        store_free(sd);
    }
    {
        /* a wrong password: refused, answered, nothing hangs */
        struct store *sw = redis_store(addr, "wrong", 400);
        struct store_conn *cw = store_conn_new(sw);
        memset(&g, 0, sizeof(g));
        CHECK_EQ(store_get(cw, "a", 1, got_cb, &g), 0, "wrong password");
        CHECK_EQ(store_conn_wait(cw, 2000), 0, "wrong password");
        CHECK_EQ(g.r.status, STORE_DOWN, "wrong password");
        store_conn_free(cw);
        store_free(sw);
    }
    /* paused server: answered TIMEOUT within the timeout, then DOWN at once */
    kill(pid, SIGSTOP);
    memset(&g, 0, sizeof(g));
    t0 = gh_now_ms();
    CHECK_EQ(store_get(c, "a", 1, got_cb, &g), 0, "paused");
    CHECK_EQ(store_conn_wait(c, 3000), 0, "paused");
    CHECK_EQ(g.r.status, STORE_TIMEOUT, "paused");
    CHECK(gh_now_ms() - t0 < 400 + 300);
    memset(&g, 0, sizeof(g));
    t0 = gh_now_ms();
    CHECK_EQ(store_get(c, "a", 1, got_cb, &g), 0, "paused, down");
    CHECK_EQ(store_conn_wait(c, 3000), 0, "paused, down");
    CHECK_EQ(g.r.status, STORE_DOWN, "paused, down");
    CHECK(gh_now_ms() - t0 < 50);
    kill(pid, SIGCONT);
    CHECK_EQ(recovers(c, 5000), 0, "recovers after the pause");
    /* killed and started again on the same port */
    stop_server(pid);
    memset(&g, 0, sizeof(g));
    CHECK_EQ(store_get(c, "a", 1, got_cb, &g), 0, "killed");
    CHECK_EQ(store_conn_wait(c, 3000), 0, "killed");
    CHECK(g.r.status == STORE_TIMEOUT || g.r.status == STORE_DOWN);
    pid = start_server("redis-server", dir, port, pass);
    CHECK(pid > 0);
    CHECK_EQ(recovers(c, 5000), 0, "recovers after a restart");
    {
        struct store_stats st;
        store_stats(s, &st);
        CHECK(st.timeouts >= 1 && st.down >= 1 && st.reconnects >= 3 && st.connected == 1);
    }
    {
        /* a replica where the master should be: ROLE says so, refused */
        int rport = free_port();
        char raddr[64], rdir[] = "/tmp/gh-redis-XXXXXX", pstr[16];
        const char *more[] = {"--replicaof", "127.0.0.1", pstr, "--masterauth", "s3cret",
                              "--requirepass", "s3cret", NULL};
        pid_t rpid;
        CHECK(mkdtemp(rdir) != NULL);
        snprintf(pstr, sizeof(pstr), "%d", port);
        rpid = start_server("redis-server", rdir, rport, more);
        CHECK(rpid > 0);
        snprintf(raddr, sizeof(raddr), "127.0.0.1:%d", rport);
        {
            struct store *sr = redis_store(raddr, "s3cret", 400);
            struct store_conn *cr = store_conn_new(sr);
            memset(&g, 0, sizeof(g));
            CHECK_EQ(store_set(cr, "x", 1, "v", 1, 1000, 0, got_cb, &g), 0, "replica");
            CHECK_EQ(store_conn_wait(cr, 2000), 0, "replica");
            CHECK_EQ(g.r.status, STORE_DOWN, "a replica is not written to");
            store_conn_free(cr);
            store_free(sr);
        }
        {
            /* a sentinel that knows the master: discovered, then used */
            int sport = free_port();
            char sconf[128], sdir[] = "/tmp/gh-sent-XXXXXX";
            FILE *f;
            const char *smore[] = {sconf, NULL};
            pid_t spid;
            CHECK(mkdtemp(sdir) != NULL);
            snprintf(sconf, sizeof(sconf), "%s/sentinel.conf", sdir);
            f = fopen(sconf, "w");
            fprintf(f, "sentinel monitor gm 127.0.0.1 %d 1\nsentinel auth-pass gm s3cret\n", port);
            fclose(f);
            spid = start_server("redis-sentinel", sdir, sport, smore);
            CHECK(spid > 0);
            {
                struct store_conf k;
                struct store *ss;
                struct store_conn *cs;
                char err[128];
                memset(&k, 0, sizeof(k));
                k.engine = STORE_REDIS;
                k.timeout_ms = 400;
                snprintf(k.sentinels[0], sizeof(k.sentinels[0]), "127.0.0.1:%d", free_port());
                snprintf(k.sentinels[1], sizeof(k.sentinels[1]), "127.0.0.1:%d", sport);
                k.nsentinels = 2; /* the first is not there: the next is asked */
                snprintf(k.master, sizeof(k.master), "gm");
                snprintf(k.password, sizeof(k.password), "s3cret");
                ss = store_new(&k, err, sizeof(err));
                cs = store_conn_new(ss);
                CHECK_EQ(recovers(cs, 5000), 0, "through the sentinel");
                {
                    struct store_stats st;
                    store_stats(ss, &st);
                    CHECK(st.discoveries >= 1);
                }
                store_conn_free(cs);
                store_free(ss);
            }
            stop_server(spid);
        }
        stop_server(rpid);
    }
    store_conn_free(c);
    store_free(s);
    stop_server(pid);
    {
        /* A server that closes idle connections (its own timeout 1 s): the
         * first question after the close connects again and is answered,
         * not refused. */
        const char *const idle_more[] = {"--timeout", "1", NULL};
        struct store *si;
        struct store_conn *ci;
        int iport = free_port();
        char iaddr[64];
        pid = start_server("redis-server", dir, iport, idle_more);
        CHECK(pid > 0);
        snprintf(iaddr, sizeof(iaddr), "127.0.0.1:%d", iport);
        si = redis_store(iaddr, NULL, 400);
        ci = store_conn_new(si);
        CHECK_EQ(recovers(ci, 3000), 0, "idle server up");
        poll(NULL, 0, 2600); /* the server's idle timeout is what is under test */
        for (int k = 0; k < 2; k++) {
            store_conn_poll(ci); /* what a loop watching the socket sees: the close */
            memset(&g, 0, sizeof(g));
            CHECK_EQ(store_get(ci, "rec", 3, got_cb, &g), 0, "after idle");
            CHECK_EQ(store_conn_wait(ci, 2000), 0, "after idle");
            CHECK_EQ(g.r.status, STORE_OK, "after the server closed an idle connection");
            if (k == 0)
                poll(NULL, 0, 2600); /* and once more */
        }
        store_conn_free(ci);
        store_free(si);
        stop_server(pid);
    }
}

/* A hostile server: answers with a bulk bigger than any of ours, and an
 * array of a billion elements. Refused and answered, no memory taken. */
TEST(store_redis_hostile_answers)
{
    static const char *const answers[] = {
        "$100000000\r\n",
        "*1000000000\r\n",
        ":1\r\n",          /* an integer for a script that answers arrays */
        "+OK\r\n+OK\r\n",  /* more answers than questions */
        "-ERR no\r\n",     /* the hello refused */
        NULL,              /* 60 arrays of 60: 3661 objects, every one small */
    };
    static char nested[60 * (6 + 60 * 4) + 8];
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(answers); i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof(a);
        int lfd = socket(AF_INET, SOCK_STREAM, 0), cfd;
        char addr[64], junk[4096];
        struct store *s;
        struct store_conn *c;
        struct got g = {0};
        char ctx[32];
        snprintf(ctx, sizeof(ctx), "hostile %zu", i);
        bind(lfd, (struct sockaddr *)&a, sizeof(a));
        listen(lfd, 1);
        getsockname(lfd, (struct sockaddr *)&a, &l);
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(a.sin_port));
        s = redis_store(addr, NULL, 300);
        c = store_conn_new(s);
        cfd = accept(lfd, NULL, NULL);
        CHECK_EQ(store_get(c, "k", 1, got_cb, &g), 0, ctx);
        store_conn_io(c, POLLOUT); /* connected: the hello and the get go out */
        if (answers[i] == NULL) {
            size_t at = (size_t)snprintf(nested, sizeof(nested), "*60\r\n");
            for (int k = 0; k < 60; k++) {
                at += (size_t)snprintf(nested + at, sizeof(nested) - at, "*60\r\n");
                for (int m = 0; m < 60; m++)
                    at += (size_t)snprintf(nested + at, sizeof(nested) - at, ":1\r\n");
            }
            CHECK(write(cfd, nested, at) == (ssize_t)at);
        } else if (i == 0) {
            /* the size line, then more than any answer of ours */
            memset(junk, 'x', sizeof(junk));
            CHECK(write(cfd, answers[i], strlen(answers[i])) > 0);
            for (int k = 0; k < 4; k++)
                CHECK(write(cfd, junk, sizeof(junk)) > 0);
        } else {
            CHECK(write(cfd, answers[i], strlen(answers[i])) > 0);
        }
        CHECK_EQ(store_conn_wait(c, 2000), 0, ctx);
        CHECK_EQ(g.done, 1, ctx);
        CHECK(g.r.status == STORE_DOWN || g.r.status == STORE_TIMEOUT);
        store_conn_free(c);
        store_free(s);
        close(cfd);
        close(lfd);
    }
}

/* What a raw client sees of port's answer to cmd (AUTH first when
 * password): whether it holds needle, asked for at most max_ms. */
static int answers_with(int port, const char *password, const char *cmd, const char *needle,
                        int64_t max_ms)
{
    uint64_t end = gh_now_ms() + (uint64_t)max_ms;

    while (gh_now_ms() < end) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int fd = socket(AF_INET, SOCK_STREAM, 0), found = 0;
        char req[256], buf[16384];
        size_t got = 0;
        int n = password ? snprintf(req, sizeof(req), "AUTH %s\r\n%s\r\n", password, cmd)
                         : snprintf(req, sizeof(req), "%s\r\n", cmd);
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && write(fd, req, (size_t)n) == n) {
            struct pollfd p = {fd, POLLIN, 0};
            while (got < sizeof(buf) - 1 && poll(&p, 1, 300) == 1) {
                ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
                if (r <= 0)
                    break;
                got += (size_t)r;
                buf[got] = '\0';
                if (strstr(buf, needle) != NULL) {
                    found = 1;
                    break;
                }
            }
        }
        close(fd);
        if (found)
            return 1;
        poll(NULL, 0, 100);
    }
    return 0;
}

/*
 * A primary, two replicas and three Sentinels (quorum 2, down after 1 s).
 * One connection writes durable records (WAIT 1) one after another while
 * the primary is killed (SIGKILL): the gap between the last write
 * acknowledged before and the first after is measured, and every write
 * that was acknowledged is read back from the promoted replica.
 */
#define FO_MAX 20000
TEST(store_redis_sentinel_failover_keeps_acknowledged_writes)
{
    char dir[] = "/tmp/gh-fo-XXXXXX", sdirs[3][64], sconf[3][96];
    int ports[3], sports[3], i;
    pid_t pids[3] = {0}, spids[3] = {0};
    static signed char acked[FO_MAX]; /* 1 acknowledged, 0 not asked, -1 answered otherwise */
    struct store_conf k;
    struct store *s;
    struct store_conn *c;
    char err[128];
    uint64_t t0, killed = 0, last_before = 0, first_after = 0, end;
    int n = 0, lost = 0, failed = 0;

    CHECK(mkdtemp(dir) != NULL);
    for (i = 0; i < 3; i++)
        ports[i] = free_port();
    for (i = 0; i < 3; i++) {
        char of[16];
        const char *more[] = {"--requirepass", "s3cret", "--masterauth", "s3cret",
                              i ? "--replicaof" : NULL, "127.0.0.1", of, NULL};
        snprintf(of, sizeof(of), "%d", ports[0]);
        pids[i] = start_server("redis-server", dir, ports[i], more);
        CHECK(pids[i] > 0);
    }
    for (i = 1; i < 3; i++)
        CHECK(answers_with(ports[i], "s3cret", "INFO replication", "master_link_status:up", 10000));
    for (i = 0; i < 3; i++) {
        FILE *f;
        const char *more[] = {sconf[i], NULL};
        snprintf(sdirs[i], sizeof(sdirs[i]), "%s/s%d", dir, i);
        mkdir(sdirs[i], 0700);
        snprintf(sconf[i], sizeof(sconf[i]), "%s/sentinel.conf", sdirs[i]);
        f = fopen(sconf[i], "w");
        fprintf(f, "sentinel monitor gm 127.0.0.1 %d 2\nsentinel auth-pass gm s3cret\n"
                   "sentinel down-after-milliseconds gm 1000\nsentinel failover-timeout gm 10000\n"
                   "sentinel parallel-syncs gm 2\n", ports[0]);
        fclose(f);
        sports[i] = free_port();
        spids[i] = start_server("redis-sentinel", sdirs[i], sports[i], more);
        CHECK(spids[i] > 0);
    }
    /* a failover needs the Sentinels to know each other (and the replicas) */
    for (i = 0; i < 3; i++)
        CHECK(answers_with(sports[i], NULL, "SENTINEL MASTER gm",
                           "num-other-sentinels\r\n$1\r\n2\r\n", 15000));
    memset(&k, 0, sizeof(k));
    k.engine = STORE_REDIS;
    k.timeout_ms = 300;
    k.durable_replicas = 1;
    for (i = 0; i < 3; i++)
        snprintf(k.sentinels[i], sizeof(k.sentinels[i]), "127.0.0.1:%d", sports[i]);
    k.nsentinels = 3;
    snprintf(k.master, sizeof(k.master), "gm");
    snprintf(k.password, sizeof(k.password), "s3cret");
    snprintf(k.prefix, sizeof(k.prefix), "gh-fo:%d:", (int)getpid());
    s = store_new(&k, err, sizeof(err));
    CHECK(s != NULL);
    c = store_conn_new(s);
    CHECK_EQ(recovers(c, 5000), 0, "through the Sentinels");

    t0 = gh_now_ms();
    end = t0 + 30000;
    while (n < FO_MAX && gh_now_ms() < end) {
        struct got g = {0};
        char key[16], val[16];
        uint64_t now = gh_now_ms();
        int kl = snprintf(key, sizeof(key), "d%d", n), vl = snprintf(val, sizeof(val), "%d", n);
        if (killed == 0 && now - t0 >= 1500) {
            kill(pids[0], SIGKILL);
            waitpid(pids[0], NULL, 0);
            pids[0] = 0;
            killed = gh_now_ms();
        }
        if (store_set(c, key, (size_t)kl, val, (size_t)vl, 600000, STORE_DURABLE, got_cb, &g) !=
                0 ||
            store_conn_wait(c, 2000) != 0) {
            acked[n++] = -1;
            continue;
        }
        acked[n] = g.r.status == STORE_OK ? 1 : -1;
        if (acked[n] == 1 && killed == 0)
            last_before = gh_now_ms();
        if (acked[n] == 1 && killed != 0 && first_after == 0) {
            first_after = gh_now_ms();
            end = first_after + 1000; /* a second of writes on the new primary */
        }
        if (acked[n] != 1) {
            failed++;
            poll(NULL, 0, 10); /* a refused write comes back at once: do not spin */
        }
        n++;
    }
    CHECK(killed != 0 && last_before != 0 && first_after != 0);
    /* every acknowledged write is on the promoted replica */
    for (i = 0; i < n; i++) {
        struct got g = {0};
        char key[16], val[16];
        int kl = snprintf(key, sizeof(key), "d%d", i), vl = snprintf(val, sizeof(val), "%d", i);
        if (acked[i] != 1)
            continue;
        if (store_get(c, key, (size_t)kl, got_cb, &g) != 0 || store_conn_wait(c, 2000) != 0 ||
            g.r.status != STORE_OK || g.r.vlen != (size_t)vl || memcmp(g.val, val, (size_t)vl)) {
            if (g.r.status == STORE_TIMEOUT || g.r.status == STORE_DOWN)
                i--; /* asked again: a read refused is not a write lost */
            else
                lost++;
        }
    }
    fprintf(stderr, "    (Sentinel failover, primary killed: writes acknowledged again after "
                    "%.2f s (from the last acknowledged before: %.2f s); %d writes, %d not "
                    "acknowledged, %d acknowledged lost)\n",
            (double)(first_after - killed) / 1000.0, (double)(first_after - last_before) / 1000.0,
            n, failed, lost);
    CHECK_EQ(lost, 0, "acknowledged writes lost in the failover");
    CHECK(first_after - killed < 15000);
    store_conn_free(c);
    store_free(s);
    for (i = 0; i < 3; i++) {
        stop_server(pids[i]);
        stop_server(spids[i]);
    }
}
