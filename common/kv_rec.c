/*
 * Records in the in-process key-value store: the layout of kv.c (64 shards,
 * open addressing, a probe window, eviction of the entry closest to expiry)
 * with a value of up to GH_KV_REC_MAX bytes. Memory is fixed at init:
 * capacity x about 1.1 KiB.
 */
#include "kv.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define SHARDS 64
#define PROBE 8

struct rec {
    uint64_t hash; /* 0: free */
    uint64_t expires;
    uint16_t vlen;
    uint8_t klen;
    char key[GH_KV_KEY_MAX];
    unsigned char val[GH_KV_REC_MAX];
};

struct rshard {
    pthread_mutex_t mu;
    struct rec *e; /* owned */
    size_t n;      /* a power of two */
};

static struct rshard shards[SHARDS];
static _Atomic uint64_t evictions;

static uint64_t rhash(const void *key, size_t len)
{
    uint64_t h = gh_fnv1a(key, len);

    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h ? h : 1;
}

int gh_kv_rec_init(size_t capacity)
{
    size_t per = 16, i;

    gh_kv_rec_fini();
    while (per * SHARDS < capacity)
        per *= 2;
    for (i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&shards[i].mu, NULL);
        shards[i].e = gh_calloc(per, sizeof(struct rec));
        shards[i].n = per;
    }
    return 0;
}

void gh_kv_rec_fini(void)
{
    size_t i;

    for (i = 0; i < SHARDS; i++) {
        if (shards[i].e == NULL)
            continue;
        /* Sessions and keys may sit here: wipe before giving memory back. */
        gh_wipe(shards[i].e, shards[i].n * sizeof(struct rec));
        free(shards[i].e);
        shards[i].e = NULL;
        pthread_mutex_destroy(&shards[i].mu);
    }
}

static struct rec *find(struct rshard *s, uint64_t h, const void *key, size_t klen, uint64_t now,
                        int *found, int for_insert)
{
    struct rec *victim = NULL, *free_slot = NULL;
    size_t i;

    *found = 0;
    for (i = 0; i < PROBE; i++) {
        struct rec *e = &s->e[(h + i) & (s->n - 1)];
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) {
            *found = e->expires > now;
            return e;
        }
        if (e->hash == 0 || e->expires <= now) {
            if (free_slot == NULL)
                free_slot = e;
        } else if (victim == NULL || e->expires < victim->expires) {
            victim = e;
        }
    }
    if (!for_insert)
        return NULL;
    if (free_slot != NULL)
        return free_slot;
    atomic_fetch_add(&evictions, 1);
    return victim;
}

int gh_kv_rec_put(const void *key, size_t klen, const void *val, size_t vlen, int64_t ttl_ms,
                  int nx)
{
    uint64_t h = rhash(key, klen), now = gh_now_ms();
    struct rshard *s = &shards[h % SHARDS];
    uint64_t slot = h / SHARDS ? h / SHARDS : 1;
    struct rec *e;
    int found;

    if (klen > GH_KV_KEY_MAX || vlen > GH_KV_REC_MAX || s->e == NULL)
        return -1;
    pthread_mutex_lock(&s->mu);
    e = find(s, slot, key, klen, now, &found, 1);
    if ((found && nx == 1) || (!found && nx == 2)) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    e->hash = slot;
    e->klen = (uint8_t)klen;
    memcpy(e->key, key, klen);
    e->vlen = (uint16_t)vlen;
    memcpy(e->val, val, vlen);
    e->expires = now + (uint64_t)(ttl_ms > 0 ? ttl_ms : 0);
    pthread_mutex_unlock(&s->mu);
    return 1;
}

long gh_kv_rec_get(const void *key, size_t klen, void *buf, size_t cap, int take,
                   int64_t *ttl_left_ms)
{
    uint64_t h = rhash(key, klen), now = gh_now_ms();
    struct rshard *s = &shards[h % SHARDS];
    struct rec *e;
    long n = -1;
    int found;

    if (klen > GH_KV_KEY_MAX || s->e == NULL)
        return -1;
    pthread_mutex_lock(&s->mu);
    e = find(s, h / SHARDS ? h / SHARDS : 1, key, klen, now, &found, 0);
    if (e != NULL && found && e->vlen <= cap) {
        memcpy(buf, e->val, e->vlen);
        n = e->vlen;
        if (ttl_left_ms != NULL)
            *ttl_left_ms = (int64_t)(e->expires - now);
        if (take) {
            e->hash = 0;
            gh_wipe(e->val, e->vlen);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

int gh_kv_rec_del(const void *key, size_t klen)
{
    uint64_t h = rhash(key, klen), now = gh_now_ms();
    struct rshard *s = &shards[h % SHARDS];
    struct rec *e;
    int found;

    if (klen > GH_KV_KEY_MAX || s->e == NULL)
        return 0;
    pthread_mutex_lock(&s->mu);
    e = find(s, h / SHARDS ? h / SHARDS : 1, key, klen, now, &found, 0);
    if (e != NULL) {
        e->hash = 0;
        gh_wipe(e->val, e->vlen);
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}

uint64_t gh_kv_rec_evictions(void)
{
    return atomic_load(&evictions);
}
