/*
 * The part of a store connection both engines share: checking an
 * operation's bounds, the queue of answers waiting for the owner's loop,
 * and the loop's entry points. Answers are never given from inside
 * store_get() and friends: a caller may hold a lock or be half-way through
 * its own state change when it asks.
 */
#include "store_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"

struct store *store_new(const struct store_conf *conf, char *err, size_t errlen)
{
    struct store *s;

    if (conf->engine == STORE_REDIS && conf->address[0] == '\0' &&
        (conf->nsentinels == 0 || conf->master[0] == '\0')) {
        snprintf(err, errlen, "store redis: an address, or sentinels and a master name");
        return NULL;
    }
    if (conf->engine == STORE_REDIS && conf->timeout_ms <= 0) {
        snprintf(err, errlen, "store redis: timeout must be positive");
        return NULL;
    }
    s = gh_calloc(1, sizeof(*s));
    s->conf = *conf;
    return s;
}

void store_free(struct store *s)
{
    if (s == NULL)
        return;
    gh_wipe(s->conf.password, sizeof(s->conf.password));
    free(s);
}

const char *store_engine_name(const struct store *s)
{
    return s->conf.engine == STORE_REDIS ? "redis" : "local";
}

struct store_conn *store_conn_new(struct store *s)
{
    struct store_conn *c = gh_calloc(1, sizeof(*c));

    c->s = s;
    if (s->conf.engine == STORE_REDIS)
        c->rc = store__redis_new(c);
    return c;
}

void store_conn_free(struct store_conn *c)
{
    struct store_op *op;

    if (c == NULL)
        return;
    store__redis_free(c->rc); /* answers what it holds into c->ready */
    while ((op = store__fifo_head(&c->ready)) != NULL) {
        struct store_op o = *op;
        store__fifo_pop(&c->ready);
        store__deliver(c, &o, &o.r);
    }
    store__fifo_free(&c->ready);
    free(c);
}

/* ---- the FIFO ---- */

struct store_op *store__fifo_push(struct store_fifo *f)
{
    struct store_op *op;

    if (f->n == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 16, i;
        struct store_op *n = gh_calloc(ncap, sizeof(*n));
        for (i = 0; i < f->n; i++)
            n[i] = f->ops[(f->head + i) % f->cap];
        free(f->ops);
        f->ops = n;
        f->cap = ncap;
        f->head = 0;
    }
    op = &f->ops[(f->head + f->n) % f->cap];
    f->n++;
    memset(op, 0, sizeof(*op));
    return op;
}

struct store_op *store__fifo_head(struct store_fifo *f)
{
    return f->n ? &f->ops[f->head] : NULL;
}

void store__fifo_pop(struct store_fifo *f)
{
    f->head = (f->head + 1) % f->cap;
    f->n--;
}

void store__fifo_free(struct store_fifo *f)
{
    free(f->ops);
    memset(f, 0, sizeof(*f));
}

/* ---- answers ---- */

void store__answer_later(struct store_conn *c, const struct store_op *op, enum store_status st)
{
    struct store_op *a = store__fifo_push(&c->ready);

    *a = *op;
    a->r.status = st;
    if (st != STORE_OK) {
        free(a->val);
        a->val = NULL;
        a->r.val = NULL;
        a->r.vlen = 0;
    }
}

void store__deliver(struct store_conn *c, struct store_op *op, const struct store_reply *r)
{
    switch (r->status) {
    case STORE_TIMEOUT:
        atomic_fetch_add(&c->s->timeouts, 1);
        break;
    case STORE_DOWN:
        atomic_fetch_add(&c->s->down, 1);
        break;
    case STORE_ERROR:
        atomic_fetch_add(&c->s->errors, 1);
        break;
    case STORE_NOT_DURABLE:
        atomic_fetch_add(&c->s->not_durable, 1);
        break;
    default:
        break;
    }
    op->done(op->arg, r);
    if (op->val != NULL) {
        gh_wipe(op->val, op->r.vlen); /* sessions and tokens pass through here */
        free(op->val);
        op->val = NULL;
    }
}

/* ---- operations ---- */

static int submit2(struct store_conn *c, enum store_kind kind, const void *key, size_t klen,
                   const void *val, size_t vlen, int64_t n, int64_t n2, int64_t n3,
                   int64_t ttl_ms, int flags, store_done_fn done, void *arg)
{
    struct store_op op;

    if (klen == 0 || klen > STORE_KEY_MAX || vlen > STORE_VAL_MAX || done == NULL ||
        store_conn_pending(c) >= STORE_MAX_PENDING ||
        ((kind == OP_SET || kind == OP_INCR || kind == OP_BUCKET) && ttl_ms <= 0) ||
        (kind == OP_BUCKET && (n <= 0 || n > 100000000 || ttl_ms > 100000000)) ||
        (flags & STORE_NX && flags & STORE_XX))
        return -1;
    memset(&op, 0, sizeof(op));
    op.kind = kind;
    op.flags = flags;
    op.n2 = n2;
    op.n3 = n3;
    op.done = done;
    op.arg = arg;
    op.r.ttl_ms = -1;
    atomic_fetch_add(&c->s->ops, 1);
    if (c->rc == NULL) {
        store__local_submit(c, &op, key, klen, val, vlen, n, ttl_ms);
        return 0;
    }
    return store__redis_submit(c->rc, &op, key, klen, val, vlen, n, ttl_ms);
}

static int submit(struct store_conn *c, enum store_kind kind, const void *key, size_t klen,
                  const void *val, size_t vlen, int64_t n, int64_t ttl_ms, int flags,
                  store_done_fn done, void *arg)
{
    return submit2(c, kind, key, klen, val, vlen, n, 0, 0, ttl_ms, flags, done, arg);
}

int store_conns(struct store_conn *c, const void *key, size_t klen, const char *member,
                int64_t count, int64_t limit, int64_t ttl_ms, int64_t seq, store_done_fn done,
                void *arg)
{
    size_t i, ml = member != NULL ? strlen(member) : 0;

    if (ml == 0 || ml > STORE_MEMBER_MAX || count < 0 || count > 1000000000 || limit < 0 ||
        limit > 1000000000 || ttl_ms <= 0 || ttl_ms > 86400000 || seq < 0 ||
        seq > 1000000000000000LL) /* Lua's numbers hold integers to 2^53 exactly */
        return -1;
    for (i = 0; i < ml; i++) /* the entries are "member count expiry;" */
        if (!((member[i] >= 'a' && member[i] <= 'z') || (member[i] >= 'A' && member[i] <= 'Z') ||
              (member[i] >= '0' && member[i] <= '9') || strchr("._-", member[i]) != NULL))
            return -1;
    return submit2(c, OP_CONNS, key, klen, member, ml, count, limit, seq, ttl_ms, 0, done, arg);
}

int store_get(struct store_conn *c, const void *key, size_t klen, store_done_fn done, void *arg)
{
    return submit(c, OP_GET, key, klen, NULL, 0, 0, 0, 0, done, arg);
}

int store_take(struct store_conn *c, const void *key, size_t klen, store_done_fn done, void *arg)
{
    return submit(c, OP_TAKE, key, klen, NULL, 0, 0, 0, 0, done, arg);
}

int store_set(struct store_conn *c, const void *key, size_t klen, const void *val, size_t vlen,
              int64_t ttl_ms, int flags, store_done_fn done, void *arg)
{
    return submit(c, OP_SET, key, klen, val, vlen, 0, ttl_ms, flags, done, arg);
}

int store_del(struct store_conn *c, const void *key, size_t klen, store_done_fn done, void *arg)
{
    return submit(c, OP_DEL, key, klen, NULL, 0, 0, 0, 0, done, arg);
}

int store_incr(struct store_conn *c, const void *key, size_t klen, int64_t delta, int64_t ttl_ms,
               store_done_fn done, void *arg)
{
    return submit(c, OP_INCR, key, klen, NULL, 0, delta, ttl_ms, 0, done, arg);
}

int store_bucket(struct store_conn *c, const void *key, size_t klen, int64_t per_minute,
                 int64_t burst, store_done_fn done, void *arg)
{
    return submit(c, OP_BUCKET, key, klen, NULL, 0, per_minute, burst, 0, done, arg);
}

/* ---- the loop ---- */

int store_conn_fd(const struct store_conn *c)
{
    return c->rc ? store__redis_fd(c->rc) : -1;
}

unsigned store_conn_socket_gen(const struct store_conn *c)
{
    return c->rc ? store__redis_sockgen(c->rc) : 0;
}

unsigned store_conn_events(const struct store_conn *c)
{
    return c->rc ? store__redis_events(c->rc) : 0;
}

void store_conn_io(struct store_conn *c, unsigned revents)
{
    size_t n;

    if (c->delivering)
        return; /* called from a callback: the outer call goes on */
    c->delivering = 1;
    if (c->rc != NULL)
        store__redis_io(c->rc, revents);
    /* Only the answers queued before this call: a callback that asks again
     * is answered at the next one, so no caller can keep this loop busy. */
    for (n = c->ready.n; n > 0; n--) {
        struct store_op o = *store__fifo_head(&c->ready);
        store__fifo_pop(&c->ready);
        store__deliver(c, &o, &o.r);
    }
    c->delivering = 0;
}

int64_t store_conn_timeout_ms(const struct store_conn *c)
{
    if (c->ready.n > 0)
        return 0;
    return c->rc ? store__redis_timeout_ms(c->rc) : -1;
}

size_t store_conn_pending(const struct store_conn *c)
{
    return c->ready.n + (c->rc ? store__redis_pending(c->rc) : 0);
}

int store_conn_wait(struct store_conn *c, int64_t max_ms)
{
    uint64_t end = gh_now_ms() + (uint64_t)(max_ms > 0 ? max_ms : 0);

    while (store_conn_pending(c) > 0) {
        uint64_t now = gh_now_ms();
        int64_t t = store_conn_timeout_ms(c), left = (int64_t)(end - now);
        struct pollfd p = {store_conn_fd(c), (short)store_conn_events(c), 0};
        int r;
        if (now >= end)
            return -1;
        if (t < 0 || t > left)
            t = left;
        r = p.fd >= 0 ? poll(&p, 1, (int)t) : (t > 0 ? poll(NULL, 0, (int)t) : 0);
        if (r == -1 && errno != EINTR)
            return -1;
        store_conn_io(c, r > 0 ? (unsigned)p.revents : 0);
    }
    return 0;
}

void store_conn_poll(struct store_conn *c)
{
    struct pollfd p = {store_conn_fd(c), (short)store_conn_events(c), 0};
    int r = p.fd >= 0 ? poll(&p, 1, 0) : 0;

    store_conn_io(c, r > 0 ? (unsigned)p.revents : 0);
}

void store_stats(const struct store *s, struct store_stats *out)
{
    out->ops = atomic_load(&s->ops);
    out->timeouts = atomic_load(&s->timeouts);
    out->down = atomic_load(&s->down);
    out->errors = atomic_load(&s->errors);
    out->reconnects = atomic_load(&s->reconnects);
    out->discoveries = atomic_load(&s->discoveries);
    out->not_durable = atomic_load(&s->not_durable);
    out->connected = atomic_load(&s->connected);
}
