/* Inside the store module: the operation queue both engines share, and
 * each engine's half of a connection. */
#ifndef GH_STORE_STORE_INT_H
#define GH_STORE_STORE_INT_H

#include "store.h"

#include <stdatomic.h>

enum store_kind { OP_GET, OP_TAKE, OP_SET, OP_DEL, OP_INCR, OP_BUCKET, OP_CONNS };

struct store_op {
    enum store_kind kind;
    int flags;
    int64_t n2;           /* OP_CONNS: the limit (0: only write) */
    int64_t n3;           /* OP_CONNS: the write's sequence number */
    store_done_fn done;
    void *arg;
    uint64_t deadline;    /* monotonic ms */
    int replies;          /* redis: replies this operation is answered by */
    int durable_ok;       /* redis, STORE_DURABLE: the WAIT said enough */
    struct store_reply r; /* the answer, once known (local, or failed early) */
    unsigned char *val;   /* owned copy of r.val for an answer kept until delivery */
};

/* A FIFO of operations: sent ones first, answered in order. */
struct store_fifo {
    struct store_op *ops;
    size_t head, n, cap;
};
struct store_op *store__fifo_push(struct store_fifo *f);
struct store_op *store__fifo_head(struct store_fifo *f);
void store__fifo_pop(struct store_fifo *f);
void store__fifo_free(struct store_fifo *f);

struct store {
    struct store_conf conf;
    _Atomic uint64_t ops, timeouts, down, errors, reconnects, discoveries, not_durable;
    _Atomic int connected;
    _Atomic uint64_t last_ready_ms; /* a connection's hello last went through */
};

struct redis_conn;
struct store_conn {
    struct store *s;
    struct store_fifo ready; /* answered, waiting for store_conn_io to deliver */
    struct redis_conn *rc;   /* STORE_REDIS only */
    int delivering;          /* store_conn_io is running callbacks */
};

/* Queues op's answer for the next store_conn_io (the caller's loop). */
void store__answer_later(struct store_conn *c, const struct store_op *op,
                         enum store_status st);
/* Runs op's callback now with r and frees what op owns. */
void store__deliver(struct store_conn *c, struct store_op *op, const struct store_reply *r);

/* local.c: answers at once, into c->ready. */
/* For OP_BUCKET, n is the rate a minute and ttl_ms the burst; for OP_CONNS,
 * val the member, n its count, op->n2 the limit, ttl_ms its entry's life. */
void store__local_submit(struct store_conn *c, struct store_op *op, const void *key, size_t klen,
                         const void *val, size_t vlen, int64_t n, int64_t ttl_ms);

/* redis.c */
struct redis_conn *store__redis_new(struct store_conn *c);
void store__redis_free(struct redis_conn *rc);
/* 0 queued (answered later), -1 refused now. */
int store__redis_submit(struct redis_conn *rc, struct store_op *op, const void *key, size_t klen,
                        const void *val, size_t vlen, int64_t n, int64_t ttl_ms);
int store__redis_fd(const struct redis_conn *rc);
unsigned store__redis_sockgen(const struct redis_conn *rc);
unsigned store__redis_events(const struct redis_conn *rc);
void store__redis_io(struct redis_conn *rc, unsigned revents);
int64_t store__redis_timeout_ms(const struct redis_conn *rc);
size_t store__redis_pending(const struct redis_conn *rc);

#endif
