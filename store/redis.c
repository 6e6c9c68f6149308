/*
 * The Redis engine: one non-blocking connection per event loop, commands
 * pipelined and answered in order. hiredis (Debian's libhiredis 0.14) only
 * formats commands and parses replies; the socket, the states and the
 * timeouts are ours, so nothing ever waits on the network and every
 * deadline comes from the owner's loop.
 *
 * A connection goes DOWN -> (SENTINEL_CONNECTING -> SENTINEL_ASKING ->)
 * CONNECTING -> READY and back to DOWN on any failure; from DOWN it tries
 * again after a back-off (doubling to 2 s, with jitter, so a hundred
 * workers do not reconnect in step). The Sentinel rules: ask a sentinel
 * for the master's address, check with ROLE that it is the master, and ask
 * again after any error or a -READONLY answer (a failover happened).
 *
 * Operations asked while connecting are queued behind the hello (AUTH,
 * ROLE, the scripts) and bounded by their own deadline; operations asked
 * while DOWN are answered STORE_DOWN at once: nothing waits for a server
 * that is not there.
 */
#include "store_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/common.h"

/* A reply bigger than this is not one of ours: the connection is refused
 * rather than buffered without end. */
#define MAX_REPLY (2 * STORE_VAL_MAX + 4096)
/* One reply, parsed: at most this many objects (a ROLE with its replicas
 * is the largest of ours), elements in one array, and string bytes. */
#define MAX_OBJECTS 256
#define MAX_ELEMENTS 64
#define MAX_REPLY_BYTES (16 * 1024)
/* Bytes read in one store_conn_io: a server that keeps sending cannot
 * keep the thread there; the loop comes back for the rest. */
#define MAX_READ_PER_IO (64 * 1024)
#define BACKOFF_MIN_MS 25
#define BACKOFF_MAX_MS 2000

enum rstate { R_DOWN, R_SENTINEL_CONNECTING, R_SENTINEL_ASKING, R_CONNECTING, R_READY };

static const char *const rstate_name[] = {"down", "sentinel-connecting", "sentinel-asking",
                                          "connecting", "ready"};

/* What each state may become: anything else is a bug, caught here. */
static const unsigned rstate_next[] = {
    [R_DOWN] = 1u << R_SENTINEL_CONNECTING | 1u << R_CONNECTING,
    [R_SENTINEL_CONNECTING] = 1u << R_DOWN | 1u << R_SENTINEL_ASKING,
    [R_SENTINEL_ASKING] = 1u << R_DOWN | 1u << R_CONNECTING,
    [R_CONNECTING] = 1u << R_DOWN | 1u << R_READY,
    [R_READY] = 1u << R_DOWN,
};

/* The hello's answers, in the order they come back. */
enum hello { H_AUTH, H_ROLE, H_SCRIPT };

/* Scripts: atomic read-with-TTL, take, and increment with a first-write
 * TTL. Loaded at hello, called by SHA. */
enum script { S_GET, S_TAKE, S_INCR, S_BUCKET, S_CONNS, S_COUNT };
static const char *const scripts[S_COUNT] = {
    "local v=redis.call('GET',KEYS[1]) if not v then return false end "
    "return {v,redis.call('PTTL',KEYS[1])}",
    "local v=redis.call('GET',KEYS[1]) if not v then return false end "
    "local t=redis.call('PTTL',KEYS[1]) redis.call('DEL',KEYS[1]) return {v,t}",
    "local v=redis.call('INCRBY',KEYS[1],ARGV[1]) local t=redis.call('PTTL',KEYS[1]) "
    "if t<0 then redis.call('PEXPIRE',KEYS[1],ARGV[2]) t=tonumber(ARGV[2]) end return {v,t}",
    /* the local engine's bucket, on the server's clock, kept as "level time" */
    "local c=redis.call('TIME') local now=c[1]*1000+math.floor(c[2]/1000) "
    "local rate=tonumber(ARGV[1]) local full=tonumber(ARGV[2])*1000 "
    "local lv,tm=full,now local s=redis.call('GET',KEYS[1]) "
    "if s then local a,b=string.match(s,'^(%-?%d+) (%d+)$') "
    "if a then lv=tonumber(a) tm=tonumber(b) end end "
    "if now>tm then lv=lv+math.floor((now-tm)*rate/60) end if lv>full then lv=full end "
    "local w=0 if lv>=1000 then lv=lv-1000 else w=math.floor((1000-lv)*60/rate)+1 end "
    "redis.call('SET',KEYS[1],string.format('%d %d',lv,now),'PX',"
    "math.floor(tonumber(ARGV[2])*60000/rate)+1000) return w",
    /* store_conns: "member count expiry seq;" entries; the others' live
     * ones summed, ours written only within the limit and when newer */
    "local c=redis.call('TIME') local now=c[1]*1000+math.floor(c[2]/1000) "
    "local me=ARGV[1] local own=tonumber(ARGV[2]) local lim=tonumber(ARGV[3]) "
    "local ttl=tonumber(ARGV[4]) local seq=tonumber(ARGV[5]) "
    "local s=redis.call('GET',KEYS[1]) or '' local others=0 local out={} local mine=nil "
    "for m,n,e,q in string.gmatch(s,'([%w%._%-]+) (%d+) (%d+) (%d+);') do "
    "if tonumber(e)>now then if m==me then "
    "if tonumber(q)>seq then mine=string.format('%s %d %d %d;',m,tonumber(n),tonumber(e),"
    "tonumber(q)) end "
    "elseif #out<63 then others=others+tonumber(n) "
    "out[#out+1]=string.format('%s %d %d %d;',m,tonumber(n),tonumber(e),tonumber(q)) end end end "
    "if lim>0 and others+own>lim then return others+1 end "
    "if mine then out[#out+1]=mine "
    "elseif own>0 then out[#out+1]=string.format('%s %d %d %d;',me,own,now+ttl,seq) end "
    "if #out==0 then redis.call('DEL',KEYS[1]) return 0 end "
    "redis.call('SET',KEYS[1],table.concat(out),'PX',ttl) return 0",
};

struct redis_conn {
    struct store_conn *c;
    struct store *s;
    enum rstate st;
    int fd;
    unsigned sockgen; /* counts the sockets fd has been */
    redisReader *rd;
    redisReplyObjectFunctions fns; /* hiredis's own, with bounds */
    struct gh_buf_lite {
        char *p;
        size_t len, cap, off;
    } out, pre; /* pre: the hello, written before anything in out */
    struct store_fifo sent;
    enum hello hello[2 + S_COUNT];
    int nhello, hello_at;
    uint64_t deadline, retry_at;
    int64_t backoff_ms;
    int sentinel_idx;
    char master[128]; /* "ip:port" from the sentinel */
    char sha[S_COUNT][41];
    size_t reply_objs, reply_bytes; /* of the reply being parsed */
    uint64_t dropped_ms; /* when it last went DOWN */
    uint64_t ready_ms;   /* when its hello last went through */
};

static void set_state(struct redis_conn *rc, enum rstate to)
{
    if (!(rstate_next[rc->st] & (1u << to)))
        gh_fatal("store redis: %s -> %s", rstate_name[rc->st], rstate_name[to]);
    if (to == R_READY)
        atomic_fetch_add(&rc->s->connected, 1);
    else if (rc->st == R_READY)
        atomic_fetch_sub(&rc->s->connected, 1);
    rc->st = to;
}

static void buf_add(struct gh_buf_lite *b, const char *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = gh_realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void buf_reset(struct gh_buf_lite *b)
{
    if (b->p != NULL)
        gh_wipe(b->p, b->len); /* values (sessions, tokens) were in here */
    b->len = b->off = 0;
}

static void command(struct gh_buf_lite *b, int argc, const char **argv, const size_t *lens)
{
    char *cmd;
    int n = redisFormatCommandArgv(&cmd, argc, argv, lens);

    if (n < 0)
        gh_fatal("store redis: out of memory formatting a command");
    buf_add(b, cmd, (size_t)n);
    gh_wipe(cmd, (size_t)n);
    redisFreeCommand(cmd);
}

/* ---- hiredis's objects, bounded ---- */

static redisReplyObjectFunctions *hiredis_fns;
/* The connection whose reader is parsing, on this thread (a reader is only
 * ever run by its connection's owner). */
static __thread struct redis_conn *parsing;

/* Counts one object of the reply being parsed: -1 past the bounds (the
 * reader then reports an error and we drop the connection). */
static int count(size_t bytes)
{
    struct redis_conn *rc = parsing;

    if (rc == NULL)
        return 0;
    rc->reply_objs++;
    rc->reply_bytes += bytes;
    return rc->reply_objs > MAX_OBJECTS || rc->reply_bytes > MAX_REPLY_BYTES ? -1 : 0;
}

static void *bounded_array(const redisReadTask *t, int n)
{
    if (n > MAX_ELEMENTS || count(0) == -1)
        return NULL;
    return hiredis_fns->createArray(t, n);
}

static void *bounded_string(const redisReadTask *t, char *s, size_t n)
{
    if (n > STORE_VAL_MAX + 256 || count(n) == -1)
        return NULL;
    return hiredis_fns->createString(t, s, n);
}

static void *bounded_integer(const redisReadTask *t, long long v)
{
    return count(0) == -1 ? NULL : hiredis_fns->createInteger(t, v);
}

static void *bounded_nil(const redisReadTask *t)
{
    return count(0) == -1 ? NULL : hiredis_fns->createNil(t);
}

static redisReader *reader_new(struct redis_conn *rc)
{
    redisReader *r = redisReaderCreate();

    if (r == NULL)
        gh_fatal("store redis: out of memory");
    if (hiredis_fns == NULL)
        hiredis_fns = r->fn; /* the library's defaults, same for every reader */
    rc->fns = *hiredis_fns;
    rc->fns.createArray = bounded_array;
    rc->fns.createString = bounded_string;
    rc->fns.createInteger = bounded_integer;
    rc->fns.createNil = bounded_nil;
    r->fn = &rc->fns;
    rc->reply_objs = rc->reply_bytes = 0;
    return r;
}

/* ---- failing, and trying again ---- */

static void answer_all(struct redis_conn *rc, enum store_status st)
{
    struct store_op *op;

    while ((op = store__fifo_head(&rc->sent)) != NULL) {
        struct store_op o = *op;
        store__fifo_pop(&rc->sent);
        store__answer_later(rc->c, &o, st);
    }
}

static void drop(struct redis_conn *rc, enum store_status st, const char *why)
{
    uint64_t now = gh_now_ms();
    unsigned char j = 0;
    /* A server closing a connection nobody was using (its idle timeout, a
     * restart, a balancer in between) is no outage: the next question
     * connects again at once instead of being refused. */
    int idle = rc->st == R_READY && rc->sent.n == 0 && rc->hello_at >= rc->nhello &&
               now - rc->ready_ms >= 1000; /* a server that closes every new one backs off */

    if (rc->fd != -1)
        close(rc->fd);
    rc->fd = -1;
    if (idle) {
        gh_log_debug("store redis: idle connection to %s closed: %s", rc->master, why);
        answer_all(rc, st);
        buf_reset(&rc->out);
        buf_reset(&rc->pre);
        redisReaderFree(rc->rd);
        rc->rd = reader_new(rc);
        rc->nhello = rc->hello_at = 0;
        set_state(rc, R_DOWN);
        rc->dropped_ms = now;
        rc->retry_at = now;
        return;
    }
    /* The first failure in a row is a warning; the retries that follow
     * (every worker, every back-off) would only flood the log. */
    if (why != NULL && rc->backoff_ms == BACKOFF_MIN_MS)
        gh_log_warn("store redis: %s (%s): %s", rc->st == R_READY ? "connection lost"
                    : rc->st == R_SENTINEL_CONNECTING || rc->st == R_SENTINEL_ASKING
                        ? "sentinel"
                        : "connect",
                    rc->st == R_SENTINEL_CONNECTING || rc->st == R_SENTINEL_ASKING
                        ? rc->s->conf.sentinels[rc->sentinel_idx]
                        : rc->master,
                    why);
    answer_all(rc, st);
    buf_reset(&rc->out);
    buf_reset(&rc->pre);
    redisReaderFree(rc->rd);
    rc->rd = reader_new(rc);
    rc->nhello = rc->hello_at = 0;
    set_state(rc, R_DOWN);
    rc->dropped_ms = now;
    RAND_bytes(&j, 1);
    rc->retry_at = now + (uint64_t)(rc->backoff_ms / 2 + rc->backoff_ms * j / 512);
    rc->backoff_ms = rc->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rc->backoff_ms * 2;
    if (rc->s->conf.nsentinels > 0)
        rc->sentinel_idx = (rc->sentinel_idx + 1) % rc->s->conf.nsentinels;
}

/* "ip:port" or "[ip6]:port": numeric only, so nothing is resolved on a
 * worker. */
static int parse_addr(const char *a, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    const char *colon = strrchr(a, ':');
    long port;
    size_t hl;

    if (colon == NULL || gh_parse_long(colon + 1, 1, 65535, &port) == -1)
        return -1;
    hl = (size_t)(colon - a);
    if (hl >= 2 && a[0] == '[' && a[hl - 1] == ']') {
        a++;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(host))
        return -1;
    memcpy(host, a, hl);
    host[hl] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
        *len = sizeof(struct sockaddr_in);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
        *len = sizeof(struct sockaddr_in6);
        return 0;
    }
    return -1;
}

static int open_to(struct redis_conn *rc, const char *addr)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;

    if (parse_addr(addr, &ss, &len) == -1) {
        drop(rc, STORE_DOWN, "not an IP address and port");
        return -1;
    }
    rc->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    rc->sockgen++;
    if (rc->fd == -1) {
        drop(rc, STORE_DOWN, strerror(errno));
        return -1;
    }
    setsockopt(rc->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(rc->fd, (struct sockaddr *)&ss, len) == -1 && errno != EINPROGRESS) {
        drop(rc, STORE_DOWN, strerror(errno));
        return -1;
    }
    rc->deadline = gh_now_ms() + (uint64_t)rc->s->conf.timeout_ms;
    return 0;
}

static void start(struct redis_conn *rc)
{
    const struct store_conf *k = &rc->s->conf;

    atomic_fetch_add(&rc->s->reconnects, 1);
    if (k->nsentinels > 0) {
        set_state(rc, R_SENTINEL_CONNECTING);
        open_to(rc, k->sentinels[rc->sentinel_idx]);
    } else {
        snprintf(rc->master, sizeof(rc->master), "%s", k->address);
        set_state(rc, R_CONNECTING);
        open_to(rc, rc->master);
    }
}

/* Its back-off is over, or another connection of this process got a whole
 * hello through since this one went down: the server is back, so waiting
 * out the rest of the back-off would only refuse questions. */
static int retry_due(const struct redis_conn *rc)
{
    return gh_now_ms() >= rc->retry_at || atomic_load(&rc->s->last_ready_ms) > rc->dropped_ms;
}

/* The master answers: AUTH, ROLE, the scripts, then what was queued. */
static void hello(struct redis_conn *rc)
{
    const struct store_conf *k = &rc->s->conf;
    int i;

    buf_reset(&rc->pre);
    rc->nhello = rc->hello_at = 0;
    if (k->password[0] != '\0') {
        const char *argv[3] = {"AUTH", k->user, k->password};
        size_t lens[3] = {4, strlen(k->user), strlen(k->password)};
        if (k->user[0] != '\0')
            command(&rc->pre, 3, argv, lens);
        else {
            argv[1] = k->password;
            lens[1] = lens[2];
            command(&rc->pre, 2, argv, lens);
        }
        rc->hello[rc->nhello++] = H_AUTH;
    }
    {
        const char *argv[1] = {"ROLE"};
        size_t lens[1] = {4};
        command(&rc->pre, 1, argv, lens);
        rc->hello[rc->nhello++] = H_ROLE;
    }
    for (i = 0; i < S_COUNT; i++) {
        const char *argv[3] = {"SCRIPT", "LOAD", scripts[i]};
        size_t lens[3] = {6, 4, strlen(scripts[i])};
        command(&rc->pre, 3, argv, lens);
        rc->hello[rc->nhello++] = H_SCRIPT;
    }
}

/* ---- operations ---- */

static void key_arg(const struct redis_conn *rc, const void *key, size_t klen, char *out,
                    size_t *olen)
{
    size_t pl = strlen(rc->s->conf.prefix);

    memcpy(out, rc->s->conf.prefix, pl);
    memcpy(out + pl, key, klen);
    *olen = pl + klen;
}

int store__redis_submit(struct redis_conn *rc, struct store_op *op, const void *key, size_t klen,
                        const void *val, size_t vlen, int64_t n, int64_t ttl_ms)
{
    char k[sizeof(rc->s->conf.prefix) + STORE_KEY_MAX], num[2][24];
    size_t kl;
    struct store_op *q;

    /* A connection nobody ran meanwhile (an idle application thread) tries
     * again when asked, once its back-off is over. */
    if (rc->st == R_DOWN && retry_due(rc))
        start(rc);
    if (rc->st == R_DOWN) {
        store__answer_later(rc->c, op, STORE_DOWN);
        return 0;
    }
    key_arg(rc, key, klen, k, &kl);
    op->replies = 1;
    op->deadline = gh_now_ms() + (uint64_t)rc->s->conf.timeout_ms;
    switch (op->kind) {
    case OP_GET:
    case OP_TAKE: {
        const char *argv[4] = {"EVALSHA", rc->sha[op->kind == OP_GET ? S_GET : S_TAKE], "1", k};
        size_t lens[4] = {7, 40, 1, kl};
        command(&rc->out, 4, argv, lens);
        break;
    }
    case OP_SET: {
        const char *argv[6] = {"SET", k, val, "PX", num[0], op->flags & STORE_NX ? "NX" : "XX"};
        size_t lens[6] = {3, kl, vlen, 2, 0, 2};
        lens[4] = (size_t)snprintf(num[0], sizeof(num[0]), "%lld", (long long)ttl_ms);
        command(&rc->out, op->flags & (STORE_NX | STORE_XX) ? 6 : 5, argv, lens);
        if ((op->flags & STORE_DURABLE) && rc->s->conf.durable_replicas > 0) {
            /* Half the timeout, so WAIT's own answer is in before ours ends. */
            const char *wv[3] = {"WAIT", num[0], num[1]};
            size_t wl[3] = {4, 0, 0};
            int64_t wt = rc->s->conf.timeout_ms / 2;
            wl[1] = (size_t)snprintf(num[0], sizeof(num[0]), "%d", rc->s->conf.durable_replicas);
            wl[2] = (size_t)snprintf(num[1], sizeof(num[1]), "%lld", (long long)(wt ? wt : 1));
            command(&rc->out, 3, wv, wl);
            op->replies = 2;
        }
        break;
    }
    case OP_DEL: {
        const char *argv[2] = {"DEL", k};
        size_t lens[2] = {3, kl};
        command(&rc->out, 2, argv, lens);
        break;
    }
    case OP_CONNS: {
        char n3[24], n4[24];
        const char *argv[9] = {"EVALSHA", rc->sha[S_CONNS], "1", k, (const char *)val, num[0],
                               num[1], n3, n4};
        size_t lens[9] = {7, 40, 1, kl, vlen, 0, 0, 0, 0};
        lens[5] = (size_t)snprintf(num[0], sizeof(num[0]), "%lld", (long long)n);
        lens[6] = (size_t)snprintf(num[1], sizeof(num[1]), "%lld", (long long)op->n2);
        lens[7] = (size_t)snprintf(n3, sizeof(n3), "%lld", (long long)ttl_ms);
        lens[8] = (size_t)snprintf(n4, sizeof(n4), "%lld", (long long)op->n3);
        command(&rc->out, 9, argv, lens);
        break;
    }
    case OP_BUCKET: /* the two scripts of two numbers: delta and TTL, rate and burst */
    case OP_INCR: {
        const char *argv[6] = {"EVALSHA", rc->sha[op->kind == OP_INCR ? S_INCR : S_BUCKET], "1",
                               k, num[0], num[1]};
        size_t lens[6] = {7, 40, 1, kl, 0, 0};
        lens[4] = (size_t)snprintf(num[0], sizeof(num[0]), "%lld", (long long)n);
        lens[5] = (size_t)snprintf(num[1], sizeof(num[1]), "%lld", (long long)ttl_ms);
        command(&rc->out, 6, argv, lens);
        break;
    }
    }
    q = store__fifo_push(&rc->sent);
    *q = *op;
    return 0;
}

/* A value-with-TTL script answer: nil, or {value, pttl}. */
static enum store_status value_reply(const redisReply *r, struct store_reply *out)
{
    if (r->type == REDIS_REPLY_NIL)
        return STORE_ABSENT;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len > STORE_VAL_MAX ||
        r->element[1]->type != REDIS_REPLY_INTEGER)
        return STORE_ERROR;
    out->val = r->element[0]->str;
    out->vlen = r->element[0]->len;
    out->ttl_ms = r->element[1]->integer >= 0 ? r->element[1]->integer : -1;
    return STORE_OK;
}

/* SET's answer: +OK stored; nil not stored (it existed with NX, it did
 * not with XX). */
static enum store_status set_status(const redisReply *r, int flags)
{
    if (r->type == REDIS_REPLY_STATUS)
        return STORE_OK;
    if (r->type == REDIS_REPLY_NIL)
        return flags & STORE_XX ? STORE_ABSENT : STORE_EXISTS;
    return STORE_ERROR;
}

/* One reply for the head operation. 0, or -1 when the connection must go
 * (the master is a replica now). */
static int op_reply(struct redis_conn *rc, redisReply *r)
{
    struct store_op *head = store__fifo_head(&rc->sent), o;

    if (head == NULL)
        return -1; /* an answer nobody asked for */
    if (r->type == REDIS_REPLY_ERROR &&
        (strncmp(r->str, "READONLY", 8) == 0 || strncmp(r->str, "MASTERDOWN", 10) == 0 ||
         strncmp(r->str, "LOADING", 7) == 0 || strncmp(r->str, "NOSCRIPT", 8) == 0))
        return -1;
    if (--head->replies > 0) { /* the write of a durable set: WAIT's answer follows */
        head->r.status = set_status(r, head->flags);
        return 0;
    }
    o = *head;
    store__fifo_pop(&rc->sent);
    o.r.ttl_ms = -1;
    if (r->type == REDIS_REPLY_ERROR) {
        gh_log_warn("store redis: %.*s", (int)(r->len > 200 ? 200 : r->len), r->str);
        o.r.status = STORE_ERROR;
    } else {
        switch (o.kind) {
        case OP_GET:
        case OP_TAKE:
            o.r.status = value_reply(r, &o.r);
            break;
        case OP_SET:
            if (o.replies == 0 && (o.flags & STORE_DURABLE) && rc->s->conf.durable_replicas > 0) {
                /* r is WAIT's count; o.r.status the write's own answer */
                if (o.r.status == STORE_OK &&
                    (r->type != REDIS_REPLY_INTEGER || r->integer < rc->s->conf.durable_replicas))
                    o.r.status = STORE_NOT_DURABLE;
            } else {
                o.r.status = set_status(r, o.flags);
            }
            break;
        case OP_DEL:
            o.r.status = r->type != REDIS_REPLY_INTEGER ? STORE_ERROR
                         : r->integer > 0               ? STORE_OK
                                                        : STORE_ABSENT;
            break;
        case OP_BUCKET:
        case OP_CONNS:
            if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
                o.r.status = STORE_OK;
                o.r.n = r->integer;
            } else {
                o.r.status = STORE_ERROR;
            }
            break;
        case OP_INCR:
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                r->element[0]->type == REDIS_REPLY_INTEGER &&
                r->element[1]->type == REDIS_REPLY_INTEGER) {
                o.r.status = STORE_OK;
                o.r.n = r->element[0]->integer;
                o.r.ttl_ms = r->element[1]->integer;
            } else {
                o.r.status = STORE_ERROR;
            }
            break;
        }
    }
    store__deliver(rc->c, &o, &o.r);
    return 0;
}

/* 0, or -1 with why filled: the hello failed. */
static int hello_reply(struct redis_conn *rc, redisReply *r, char *why, size_t whylen)
{
    enum hello h = rc->hello[rc->hello_at++];

    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, whylen, "%s refused: %.*s",
                 h == H_AUTH ? "AUTH" : h == H_ROLE ? "ROLE" : "SCRIPT LOAD",
                 (int)(r->len > 200 ? 200 : r->len), r->str);
        return -1;
    }
    if (h == H_ROLE && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
                        r->element[0]->type != REDIS_REPLY_STRING ||
                        strcmp(r->element[0]->str, "master") != 0)) {
        snprintf(why, whylen, "not the master (ROLE %s)",
                 r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                         r->element[0]->type == REDIS_REPLY_STRING
                     ? r->element[0]->str
                     : "?");
        return -1;
    }
    if (h == H_SCRIPT && (r->type != REDIS_REPLY_STRING || r->len != 40 ||
                          memcmp(r->str, rc->sha[rc->hello_at - 1 - (rc->nhello - S_COUNT)],
                                 40) != 0)) {
        snprintf(why, whylen, "SCRIPT LOAD answered another digest");
        return -1;
    }
    if (rc->hello_at == rc->nhello) {
        rc->backoff_ms = BACKOFF_MIN_MS; /* a whole hello: the next failure starts over */
        rc->ready_ms = gh_now_ms();
        atomic_store(&rc->s->last_ready_ms, rc->ready_ms);
    }
    return 0;
}

/* The sentinel's answer: the master's address, or nil. */
static int sentinel_reply(struct redis_conn *rc, redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
        return -1;
    if (strchr(r->element[0]->str, ':') != NULL)
        snprintf(rc->master, sizeof(rc->master), "[%s]:%s", r->element[0]->str,
                 r->element[1]->str);
    else
        snprintf(rc->master, sizeof(rc->master), "%s:%s", r->element[0]->str,
                 r->element[1]->str);
    atomic_fetch_add(&rc->s->discoveries, 1);
    close(rc->fd);
    rc->fd = -1;
    redisReaderFree(rc->rd);
    rc->rd = reader_new(rc);
    set_state(rc, R_CONNECTING);
    return open_to(rc, rc->master) == -1 ? 1 : 0;
}

/* ---- the loop ---- */

static int flush(struct redis_conn *rc)
{
    struct gh_buf_lite *b[2] = {&rc->pre, &rc->out};
    int i, nb = rc->st == R_SENTINEL_ASKING ? 1 : 2; /* operations go to the master only */

    for (i = 0; i < nb; i++) {
        while (b[i]->off < b[i]->len) {
            ssize_t n = send(rc->fd, b[i]->p + b[i]->off, b[i]->len - b[i]->off, MSG_NOSIGNAL);
            if (n > 0) {
                b[i]->off += (size_t)n;
                continue;
            }
            if (n == -1 && (errno == EAGAIN || errno == EINTR))
                return 0;
            return -1;
        }
        buf_reset(b[i]);
    }
    return 0;
}

static void on_connected(struct redis_conn *rc)
{
    int e = 0;
    socklen_t el = sizeof(e);

    if (getsockopt(rc->fd, SOL_SOCKET, SO_ERROR, &e, &el) == -1 || e != 0) {
        drop(rc, STORE_DOWN, strerror(e ? e : errno));
        return;
    }
    if (rc->st == R_SENTINEL_CONNECTING) {
        const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", rc->s->conf.master};
        size_t lens[3] = {8, 23, strlen(rc->s->conf.master)};
        buf_reset(&rc->pre);
        command(&rc->pre, 3, argv, lens);
        set_state(rc, R_SENTINEL_ASKING);
        rc->deadline = gh_now_ms() + (uint64_t)rc->s->conf.timeout_ms;
        return;
    }
    hello(rc);
    set_state(rc, R_READY);
    rc->deadline = gh_now_ms() + (uint64_t)rc->s->conf.timeout_ms; /* the hello's own */
}

static void read_replies(struct redis_conn *rc)
{
    char buf[16384], why[300];
    size_t total = 0;

    for (; total < MAX_READ_PER_IO;) {
        ssize_t n = recv(rc->fd, buf, sizeof(buf), 0);
        void *reply;
        int got;
        if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
            drop(rc, STORE_TIMEOUT, n == 0 ? "closed by the server" : strerror(errno));
            return;
        }
        if (n == -1)
            return;
        total += (size_t)n;
        redisReaderFeed(rc->rd, buf, (size_t)n);
        for (;;) {
            int failed = 0;
            parsing = rc;
            got = redisReaderGetReply(rc->rd, &reply);
            parsing = NULL;
            if (got != REDIS_OK) {
                drop(rc, STORE_TIMEOUT, rc->rd->errstr[0] ? rc->rd->errstr : "protocol error");
                return;
            }
            if (reply == NULL)
                break;
            rc->reply_objs = rc->reply_bytes = 0; /* the next reply starts */
            if (rc->st == R_SENTINEL_ASKING) {
                int r = sentinel_reply(rc, reply);
                freeReplyObject(reply);
                if (r == -1)
                    drop(rc, STORE_DOWN, "the sentinel does not know the master");
                return; /* a new socket, or down */
            }
            if (rc->hello_at < rc->nhello) {
                failed = hello_reply(rc, reply, why, sizeof(why));
            } else if (op_reply(rc, reply) == -1) {
                snprintf(why, sizeof(why), "%s", ((redisReply *)reply)->type == REDIS_REPLY_ERROR
                                                     ? ((redisReply *)reply)->str
                                                     : "an answer nobody asked for");
                failed = -1;
            }
            freeReplyObject(reply);
            if (failed) {
                drop(rc, STORE_DOWN, why);
                return;
            }
        }
        if (rc->rd->len - rc->rd->pos > MAX_REPLY) {
            drop(rc, STORE_TIMEOUT, "an answer longer than any of ours");
            return;
        }
    }
}

void store__redis_io(struct redis_conn *rc, unsigned revents)
{
    uint64_t now = gh_now_ms();
    struct store_op *head;

    if (rc->st == R_DOWN) {
        if (retry_due(rc))
            start(rc);
        return;
    }
    if (revents & (POLLERR | POLLHUP) && !(revents & POLLIN) &&
        (rc->st == R_SENTINEL_CONNECTING || rc->st == R_CONNECTING)) {
        on_connected(rc); /* reports the connect's error */
        return;
    }
    if ((rc->st == R_SENTINEL_CONNECTING || rc->st == R_CONNECTING) && (revents & POLLOUT)) {
        on_connected(rc);
        if (rc->st == R_DOWN)
            return;
    }
    if (revents & POLLIN) {
        read_replies(rc);
        if (rc->st == R_DOWN || rc->fd == -1)
            return;
    }
    if (rc->st == R_READY || rc->st == R_SENTINEL_ASKING) {
        if (flush(rc) == -1) {
            drop(rc, STORE_TIMEOUT, strerror(errno));
            return;
        }
    }
    now = gh_now_ms();
    head = store__fifo_head(&rc->sent);
    /* An operation's own deadline holds in every state: one asked while
     * connecting is not kept past it by a slow connect or discovery. */
    if (rc->st != R_READY && head != NULL && now >= head->deadline)
        drop(rc, STORE_DOWN, "no master in time");
    else if (rc->st != R_READY && now >= rc->deadline)
        drop(rc, STORE_DOWN, "no answer in time");
    else if (rc->st == R_READY && head != NULL && now >= head->deadline)
        drop(rc, STORE_TIMEOUT, "no answer in time");
    else if (rc->st == R_READY && rc->hello_at < rc->nhello && now >= rc->deadline)
        drop(rc, STORE_DOWN, "no answer to the hello in time");
}

int store__redis_fd(const struct redis_conn *rc)
{
    return rc->fd;
}

unsigned store__redis_sockgen(const struct redis_conn *rc)
{
    return rc->sockgen;
}

unsigned store__redis_events(const struct redis_conn *rc)
{
    switch (rc->st) {
    case R_DOWN:
        return 0;
    case R_SENTINEL_CONNECTING:
    case R_CONNECTING:
        return POLLOUT;
    case R_SENTINEL_ASKING:
        return POLLIN | (rc->pre.off < rc->pre.len ? POLLOUT : 0);
    default:
        return POLLIN | (rc->pre.off < rc->pre.len || rc->out.off < rc->out.len ? POLLOUT : 0);
    }
}

int64_t store__redis_timeout_ms(const struct redis_conn *rc)
{
    uint64_t now = gh_now_ms(), due;
    const struct store_op *head = rc->sent.n ? &rc->sent.ops[rc->sent.head] : NULL;

    if (rc->st == R_DOWN)
        due = rc->retry_at;
    else if (rc->st != R_READY || rc->hello_at < rc->nhello)
        due = head != NULL && head->deadline < rc->deadline ? head->deadline : rc->deadline;
    else if (head != NULL)
        due = head->deadline;
    else
        return -1;
    return due > now ? (int64_t)(due - now) : 0;
}

size_t store__redis_pending(const struct redis_conn *rc)
{
    return rc->sent.n;
}

static void sha1_hex(const char *s, char out[41])
{
    unsigned char md[20];
    unsigned int len = 0;
    int i;

    if (EVP_Digest(s, strlen(s), md, &len, EVP_sha1(), NULL) != 1 || len != 20)
        gh_fatal("store redis: no SHA-1 for the scripts");
    for (i = 0; i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

struct redis_conn *store__redis_new(struct store_conn *c)
{
    struct redis_conn *rc = gh_calloc(1, sizeof(*rc));
    int i;

    rc->c = c;
    rc->s = c->s;
    rc->fd = -1;
    rc->st = R_DOWN;
    rc->backoff_ms = BACKOFF_MIN_MS;
    rc->rd = reader_new(rc);
    for (i = 0; i < S_COUNT; i++)
        sha1_hex(scripts[i], rc->sha[i]);
    start(rc); /* connect now: the first operations queue behind the hello */
    return rc;
}

void store__redis_free(struct redis_conn *rc)
{
    if (rc == NULL)
        return;
    if (rc->fd != -1)
        close(rc->fd);
    if (rc->st == R_READY)
        atomic_fetch_sub(&rc->s->connected, 1);
    answer_all(rc, STORE_DOWN);
    buf_reset(&rc->out);
    buf_reset(&rc->pre);
    free(rc->out.p);
    free(rc->pre.p);
    redisReaderFree(rc->rd);
    store__fifo_free(&rc->sent);
    free(rc);
}
