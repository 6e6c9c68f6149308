/*
 * The store for threads that may wait: the applications' threads (SAML,
 * the admin application, the conference service), never a proxy worker.
 * Each such thread gets its own connection at first use; a call asks, then
 * runs that connection until the answer is in, which the connection's own
 * timeout bounds. A proxy worker marks its thread at start, and a blocking
 * call from it is a bug caught here, not a stall.
 */
#include "store_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"

static struct store *_Atomic current;
static struct store *fallback; /* local, for a process (a unit test) that set none */
static pthread_mutex_t fallback_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t conn_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static __thread int forbidden;

static void conn_gone(void *p)
{
    store_conn_free(p);
}

static void make_key(void)
{
    if (pthread_key_create(&conn_key, conn_gone) != 0)
        gh_fatal("store: no thread key");
}

void store_use(struct store *s)
{
    struct store *was = NULL;

    /* Once, at start: a thread's connection points at its store, which
     * must outlive it. */
    if (!atomic_compare_exchange_strong(&current, &was, s) && was != s)
        gh_fatal("store_use: the process's store is set once, at start");
}

struct store *store_current(void)
{
    struct store *s = atomic_load(&current);

    if (s != NULL)
        return s;
    pthread_mutex_lock(&fallback_mu);
    if (fallback == NULL) {
        struct store_conf k;
        char err[64];
        memset(&k, 0, sizeof(k));
        k.engine = STORE_LOCAL;
        fallback = store_new(&k, err, sizeof(err));
    }
    pthread_mutex_unlock(&fallback_mu);
    return fallback;
}

void store_forbid_blocking(void)
{
    forbidden = 1;
}

static struct store_conn *thread_conn(void)
{
    struct store *s = store_current();
    struct store_conn *c;

    if (forbidden)
        gh_fatal("store: a blocking call on a thread that may not wait (a proxy worker)");
    pthread_once(&key_once, make_key);
    c = pthread_getspecific(conn_key);
    if (c != NULL && c->s != s) { /* the store was replaced: a test, or a restart's start */
        store_conn_free(c);
        c = NULL;
    }
    if (c == NULL) {
        c = store_conn_new(s);
        pthread_setspecific(conn_key, c);
    }
    store_conn_poll(c); /* idle since its last call: catch up first */
    return c;
}

struct answer {
    int done;
    struct store_reply r;
    void *buf;
    size_t cap;
};

static void take_answer(void *arg, const struct store_reply *r)
{
    struct answer *a = arg;

    a->done = 1;
    a->r = *r;
    a->r.val = NULL;
    if (r->status == STORE_OK && r->val != NULL) {
        if (a->buf == NULL || r->vlen > a->cap)
            a->r.status = STORE_ERROR; /* not what the caller stored there */
        else
            memcpy(a->buf, r->val, r->vlen);
    }
}

/* Waits for a's answer: the connection's timeout answers it in time, the
 * bound here is only against a bug. */
static enum store_status finish(struct store_conn *c, struct answer *a, int asked)
{
    if (asked == -1)
        return STORE_ERROR;
    store_conn_wait(c, c->s->conf.timeout_ms * 4 + 1000);
    if (!a->done)
        gh_fatal("store: an operation was not answered within its timeout");
    return a->r.status;
}

enum store_status store_sync_get(const void *key, size_t klen, void *buf, size_t cap,
                                 size_t *vlen, int64_t *ttl_ms, int take)
{
    struct store_conn *c = thread_conn();
    struct answer a = {0, {0}, buf, cap};
    enum store_status st;

    st = finish(c, &a,
                take ? store_take(c, key, klen, take_answer, &a)
                     : store_get(c, key, klen, take_answer, &a));
    if (vlen != NULL)
        *vlen = st == STORE_OK ? a.r.vlen : 0;
    if (ttl_ms != NULL)
        *ttl_ms = st == STORE_OK ? a.r.ttl_ms : -1;
    return st;
}

enum store_status store_sync_set(const void *key, size_t klen, const void *val, size_t vlen,
                                 int64_t ttl_ms, int flags)
{
    struct store_conn *c = thread_conn();
    struct answer a = {0, {0}, NULL, 0};

    return finish(c, &a, store_set(c, key, klen, val, vlen, ttl_ms, flags, take_answer, &a));
}

enum store_status store_sync_del(const void *key, size_t klen)
{
    struct store_conn *c = thread_conn();
    struct answer a = {0, {0}, NULL, 0};

    return finish(c, &a, store_del(c, key, klen, take_answer, &a));
}

enum store_status store_sync_incr(const void *key, size_t klen, int64_t delta, int64_t ttl_ms,
                                  int64_t *n, int64_t *ttl_left_ms)
{
    struct store_conn *c = thread_conn();
    struct answer a = {0, {0}, NULL, 0};
    enum store_status st = finish(c, &a, store_incr(c, key, klen, delta, ttl_ms, take_answer, &a));

    if (n != NULL)
        *n = st == STORE_OK ? a.r.n : 0;
    if (ttl_left_ms != NULL)
        *ttl_left_ms = st == STORE_OK ? a.r.ttl_ms : -1;
    return st;
}

enum store_status store_sync_bucket(const void *key, size_t klen, int64_t per_minute,
                                    int64_t burst, int64_t *wait_ms)
{
    struct store_conn *c = thread_conn();
    struct answer a = {0, {0}, NULL, 0};
    enum store_status st =
        finish(c, &a, store_bucket(c, key, klen, per_minute, burst, take_answer, &a));

    *wait_ms = st == STORE_OK ? a.r.n : 0;
    return st;
}

void store_thread_done(void)
{
    struct store_conn *c;

    pthread_once(&key_once, make_key);
    c = pthread_getspecific(conn_key);
    if (c != NULL) {
        pthread_setspecific(conn_key, NULL);
        store_conn_free(c);
    }
}
