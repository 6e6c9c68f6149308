/*
 * In-process key-value store: 64 shards, each an open-addressing table with
 * a short probe window. An insert takes the first free or expired slot of
 * the window, else evicts the entry closest to expiry: memory is fixed at
 * init and a flood of new keys costs evictions, not growth.
 */
#include "kv.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define SHARDS 64
#define PROBE 8

struct entry {
    uint64_t hash; /* 0: free */
    uint64_t expires;
    int64_t v[2];
    uint8_t klen;
    char key[GH_KV_KEY_MAX];
};

struct shard {
    pthread_mutex_t mu;
    struct entry *e; /* owned */
    size_t n;        /* entries; a power of two */
};

static struct shard shards[SHARDS];
static _Atomic uint64_t evictions;

static uint64_t hash(const void *key, size_t len)
{
    /* FNV-1a, then a final mix so shard and slot bits are independent. */
    uint64_t h = gh_fnv1a(key, len);

    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h ? h : 1;
}

int gh_kv_init(size_t capacity)
{
    size_t per = 16, i;

    gh_kv_fini();
    while (per * SHARDS < capacity)
        per *= 2;
    for (i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&shards[i].mu, NULL);
        shards[i].e = gh_calloc(per, sizeof(struct entry));
        shards[i].n = per;
    }
    return 0;
}

void gh_kv_fini(void)
{
    size_t i;

    for (i = 0; i < SHARDS; i++) {
        if (shards[i].e == NULL)
            continue;
        free(shards[i].e);
        shards[i].e = NULL;
        pthread_mutex_destroy(&shards[i].mu);
    }
}

/* Finds key in its window, or the slot to put it in. Caller holds the lock. */
static struct entry *find(struct shard *s, uint64_t h, const void *key, size_t klen,
                          uint64_t now, int *found)
{
    struct entry *victim = NULL, *free_slot = NULL;
    size_t i;

    *found = 0;
    for (i = 0; i < PROBE; i++) {
        struct entry *e = &s->e[(h + i) & (s->n - 1)];
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) {
            if (e->expires > now) {
                *found = 1;
                return e;
            }
            return e; /* expired: reuse in place */
        }
        if (e->hash == 0 || e->expires <= now) {
            if (free_slot == NULL)
                free_slot = e;
        } else if (victim == NULL || e->expires < victim->expires) {
            victim = e;
        }
    }
    if (free_slot != NULL)
        return free_slot;
    atomic_fetch_add(&evictions, 1);
    return victim;
}

enum gh_kv_op gh_kv_update(const void *key, size_t klen, int64_t ttl_ms, gh_kv_update_fn fn,
                           void *arg)
{
    uint64_t h = hash(key, klen), now = gh_now_ms();
    struct shard *s = &shards[h % SHARDS];
    struct entry *e;
    int64_t v[2] = {0, 0};
    enum gh_kv_op op;
    int found;

    if (klen > GH_KV_KEY_MAX || s->e == NULL)
        return GH_KV_LEAVE;
    pthread_mutex_lock(&s->mu);
    e = find(s, h / SHARDS ? h / SHARDS : 1, key, klen, now, &found);
    if (found)
        memcpy(v, e->v, sizeof(v));
    op = fn(v, found, arg);
    if (op == GH_KV_STORE) {
        e->hash = h / SHARDS ? h / SHARDS : 1;
        e->klen = (uint8_t)klen;
        memcpy(e->key, key, klen);
        memcpy(e->v, v, sizeof(v));
        e->expires = now + (uint64_t)ttl_ms;
    } else if (op == GH_KV_DELETE && found) {
        e->hash = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return op;
}

static enum gh_kv_op incr_fn(int64_t v[2], int exists, void *arg)
{
    (void)exists;
    v[0] += *(int64_t *)arg;
    *(int64_t *)arg = v[0];
    return GH_KV_STORE;
}

int64_t gh_kv_incr(const void *key, size_t klen, int64_t delta, int64_t ttl_ms)
{
    int64_t d = delta;

    gh_kv_update(key, klen, ttl_ms, incr_fn, &d);
    return d;
}

static enum gh_kv_op get_fn(int64_t v[2], int exists, void *arg)
{
    if (exists)
        *(int64_t *)arg = v[0];
    return GH_KV_LEAVE;
}

int gh_kv_get(const void *key, size_t klen, int64_t *out)
{
    uint64_t h = hash(key, klen), now = gh_now_ms();
    struct shard *s = &shards[h % SHARDS];
    int found = 0;

    if (klen > GH_KV_KEY_MAX || s->e == NULL)
        return -1;
    pthread_mutex_lock(&s->mu);
    {
        struct entry *e = find(s, h / SHARDS ? h / SHARDS : 1, key, klen, now, &found);
        if (found)
            get_fn(e->v, 1, out);
    }
    pthread_mutex_unlock(&s->mu);
    return found ? 0 : -1;
}

static enum gh_kv_op setnx_fn(int64_t v[2], int exists, void *arg)
{
    if (exists)
        return GH_KV_LEAVE;
    v[0] = *(int64_t *)arg;
    v[1] = 0;
    return GH_KV_STORE;
}

int gh_kv_set_nx(const void *key, size_t klen, int64_t v, int64_t ttl_ms)
{
    return gh_kv_update(key, klen, ttl_ms, setnx_fn, &v) == GH_KV_STORE;
}

static enum gh_kv_op del_fn(int64_t v[2], int exists, void *arg)
{
    (void)v;
    (void)exists;
    (void)arg;
    return GH_KV_DELETE;
}

int gh_kv_del(const void *key, size_t klen)
{
    int64_t v;

    if (gh_kv_get(key, klen, &v) == -1)
        return 0;
    gh_kv_update(key, klen, 0, del_fn, NULL);
    return 1;
}

int64_t gh_kv_incr_window(const void *key, size_t klen, int64_t delta, int64_t ttl_ms,
                          int64_t *ttl_left_ms)
{
    uint64_t h = hash(key, klen), now = gh_now_ms();
    struct shard *s = &shards[h % SHARDS];
    struct entry *e;
    int64_t v;
    int found;

    *ttl_left_ms = -1;
    if (klen > GH_KV_KEY_MAX || s->e == NULL)
        return 0;
    pthread_mutex_lock(&s->mu);
    e = find(s, h / SHARDS ? h / SHARDS : 1, key, klen, now, &found);
    if (!found) {
        e->hash = h / SHARDS ? h / SHARDS : 1;
        e->klen = (uint8_t)klen;
        memcpy(e->key, key, klen);
        e->v[0] = e->v[1] = 0;
        e->expires = now + (uint64_t)ttl_ms;
    }
    v = e->v[0] += delta;
    *ttl_left_ms = (int64_t)(e->expires - now);
    pthread_mutex_unlock(&s->mu);
    return v;
}

uint64_t gh_kv_evictions(void)
{
    return atomic_load(&evictions);
}
