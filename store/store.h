/*
 * store — the shared state with time-to-live, as operations that complete on
 * the caller's event loop. Two engines behind one contract: "local" (the
 * in-process tables of common/kv.h, one appliance) and "redis" (a Redis
 * primary, found directly or through Sentinel, shared by several
 * appliances). One conformance suite runs on both (tests/unit/store/).
 *
 * Nothing here blocks: an operation is queued on a connection and its
 * callback runs later, from store_conn_io(), on the thread that owns the
 * connection. Each event loop (a proxy worker, an application thread) owns
 * one connection; operations on it are pipelined and answered in order.
 * Every operation is answered exactly once: with its result, or with
 * STORE_TIMEOUT when the engine did not answer within the connection's
 * timeout, or STORE_DOWN when there is no engine to ask (the connection is
 * being re-established: nothing waits for it).
 *
 * Keys are 1..STORE_KEY_MAX bytes of anything, values 0..STORE_VAL_MAX
 * bytes. A key holds a record (set, get, take) or a counter (incr), never
 * both; del removes either.
 */
#ifndef GH_STORE_STORE_H
#define GH_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_KEY_MAX 40
#define STORE_VAL_MAX 1024
/* Operations queued and not yet answered, per connection: a caller that
 * would go past it is refused at once (store_* returns -1). */
#define STORE_MAX_PENDING 4096

enum store_status {
    STORE_OK,          /* done; for get/take the value is in the reply */
    STORE_ABSENT,      /* get/take/del: no such live key */
    STORE_EXISTS,      /* set with STORE_NX: the key was there, nothing stored */
    STORE_NOT_DURABLE, /* a STORE_DURABLE write the replicas did not confirm in time */
    STORE_TIMEOUT,     /* asked, no answer within the timeout */
    STORE_DOWN,        /* no engine to ask */
    STORE_ERROR,       /* the engine refused the operation (logged) */
};

/* Valid during the callback only. */
struct store_reply {
    enum store_status status;
    const void *val; /* get, take */
    size_t vlen;
    int64_t n;       /* incr: the new value */
    int64_t ttl_ms;  /* get, take, incr: time the key had left; -1 unknown */
};

typedef void (*store_done_fn)(void *arg, const struct store_reply *r);

enum store_engine { STORE_LOCAL, STORE_REDIS };

#define STORE_MAX_SENTINELS 8

struct store_conf {
    enum store_engine engine;
    /* redis: either an address, or sentinels and the master's name */
    char address[128];                         /* "host:port" */
    char sentinels[STORE_MAX_SENTINELS][128];  /* "host:port" each */
    int nsentinels;
    char master[64];
    char user[64];
    char password[256];  /* read from the password file by the caller */
    char prefix[64];     /* before every key, so appliances may share a server */
    int64_t timeout_ms;  /* per operation; also the connect and discovery bound */
    int durable_replicas; /* STORE_DURABLE waits for this many (WAIT n), 0: none */
};

/* Write flags. */
#define STORE_NX 1      /* only when absent */
#define STORE_DURABLE 2 /* answered only once durable_replicas have the write */
#define STORE_XX 4      /* only when present (STORE_ABSENT when not): a refresh
                         * never brings back what was deleted meanwhile */

/* The process-wide store: the configuration and what every connection
 * shares (the master's address once discovered, counters). */
struct store;
struct store *store_new(const struct store_conf *conf, char *err, size_t errlen);
void store_free(struct store *s);
const char *store_engine_name(const struct store *s);

/* One event loop's connection. */
struct store_conn;
struct store_conn *store_conn_new(struct store *s);
/* Answers every pending operation (with its answer when one is in, else
 * STORE_DOWN), then frees. */
void store_conn_free(struct store_conn *c);

/* The operations: 0 queued (the callback will run), -1 refused now (too
 * many pending, or a key or value out of bounds; no callback). */
int store_get(struct store_conn *c, const void *key, size_t klen, store_done_fn done, void *arg);
/* get and delete in one step: of two takers exactly one gets the value. */
int store_take(struct store_conn *c, const void *key, size_t klen, store_done_fn done,
               void *arg);
int store_set(struct store_conn *c, const void *key, size_t klen, const void *val, size_t vlen,
              int64_t ttl_ms, int flags, store_done_fn done, void *arg);
int store_del(struct store_conn *c, const void *key, size_t klen, store_done_fn done, void *arg);
/* Adds delta (creating the counter at 0); the time-to-live is set by the
 * write that creates the counter and never extended, so a window of N per
 * minute ends a minute after its first hit. */
int store_incr(struct store_conn *c, const void *key, size_t klen, int64_t delta, int64_t ttl_ms,
               store_done_fn done, void *arg);

/* Takes one token from the bucket at key: it holds up to burst tokens and
 * refills at per_minute a minute (on the engine's clock: one clock for
 * every appliance sharing a Redis). The reply's n is 0 when a token was
 * taken, else the milliseconds until one will be there. */
int store_bucket(struct store_conn *c, const void *key, size_t klen, int64_t per_minute,
                 int64_t burst, store_done_fn done, void *arg);
/* A count kept per member under key (an appliance's open connections from
 * one source: each appliance writes its own, and one that is gone stops
 * counting once its entry's ttl_ms passes). With limit > 0 the member's
 * count is written only if it and every other member's live count add up
 * to at most limit; the reply's n is 0 when written, else 1 + the
 * others' sum. With limit 0 it is written (0 removes the member). seq
 * orders one member's writes (they may come on several connections): one
 * older than the member's last leaves its entry as it is. member: 1 to 64
 * of [A-Za-z0-9._-]; at most 64 members are kept. */
#define STORE_MEMBER_MAX 64
int store_conns(struct store_conn *c, const void *key, size_t klen, const char *member,
                int64_t count, int64_t limit, int64_t ttl_ms, int64_t seq, store_done_fn done,
                void *arg);
/* The same bucket in this process's own tables, at once (what the local
 * engine answers with; a caller's fallback while Redis is away). The
 * milliseconds to wait, 0 when a token was taken. */
int64_t store_local_bucket(const void *key, size_t klen, int64_t per_minute, int64_t burst);

/* A record in this process's own tables, at once (what the local engine's
 * get answers, for a worker that may not wait): its length, or -1 when
 * absent, expired or larger than cap. */
long store_local_get(const void *key, size_t klen, void *buf, size_t cap);

/* Event-loop integration. The loop watches store_conn_fd() (it may change
 * after any store_conn_io: compare each time) for store_conn_events()
 * (POLLIN/POLLOUT bits), and calls store_conn_io() with what it saw, or
 * with 0 once store_conn_timeout_ms() has passed. Callbacks run from
 * store_conn_io() only. */
int store_conn_fd(const struct store_conn *c);
/* Changes whenever the connection's socket is replaced: a loop that keeps
 * the descriptor registered (epoll) registers it again even when the new
 * socket got the old one's number. */
unsigned store_conn_socket_gen(const struct store_conn *c);
unsigned store_conn_events(const struct store_conn *c);
void store_conn_io(struct store_conn *c, unsigned revents);
/* Milliseconds until store_conn_io(c, 0) is due (a deadline or a
 * reconnection), or -1 when nothing is. */
int64_t store_conn_timeout_ms(const struct store_conn *c);
/* One turn without waiting: what has arrived is read, what is due is done
 * (a connection nobody ran for a while catches up before it is asked). */
void store_conn_poll(struct store_conn *c);
/* Operations queued and not yet answered. */
size_t store_conn_pending(const struct store_conn *c);
/* For a thread that has nothing else to do meanwhile (never a proxy
 * worker): runs the connection until nothing is pending or max_ms passed.
 * 0 all answered, -1 some still pending. */
int store_conn_wait(struct store_conn *c, int64_t max_ms);

/*
 * Blocking calls, for threads that may wait (the applications' threads):
 * each thread has its own connection to the process's store, made at first
 * use. They return as soon as the answer is in, at the latest after the
 * store's timeout. A proxy worker calls store_forbid_blocking() at start;
 * a blocking call on its thread then aborts (a bug, never a stall).
 */
/* The store every blocking call uses (main sets it once at start); with
 * none set, a local one. */
void store_use(struct store *s);
struct store *store_current(void);
void store_forbid_blocking(void);
/* get (take 0) or take (1): the value into buf (cap bytes; larger is
 * STORE_ERROR), its length and TTL left. */
enum store_status store_sync_get(const void *key, size_t klen, void *buf, size_t cap,
                                 size_t *vlen, int64_t *ttl_ms, int take);
enum store_status store_sync_set(const void *key, size_t klen, const void *val, size_t vlen,
                                 int64_t ttl_ms, int flags);
enum store_status store_sync_del(const void *key, size_t klen);
enum store_status store_sync_incr(const void *key, size_t klen, int64_t delta, int64_t ttl_ms,
                                  int64_t *n, int64_t *ttl_left_ms);
/* store_bucket, waiting: *wait_ms 0 when a token was taken. */
enum store_status store_sync_bucket(const void *key, size_t klen, int64_t per_minute,
                                    int64_t burst, int64_t *wait_ms);
/* Frees this thread's connection (before a thread ends; threads that just
 * end have theirs freed too). */
void store_thread_done(void);

/* Process-wide counters, for the metrics. */
struct store_stats {
    uint64_t ops, timeouts, down, errors, reconnects, discoveries, not_durable;
    int connected; /* connections to the engine now */
};
void store_stats(const struct store *s, struct store_stats *out);

#endif
