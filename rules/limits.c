/*
 * Per-source limits, the Director's job in the seeds: absorb floods before
 * they reach internal servers. Counters live in the shared key-value store
 * (common/kv.h), so every worker sees the same numbers and memory stays
 * fixed under an address-spraying flood (the store evicts, never grows).
 *   concurrent connections: a counter per (service, address)
 *   new connections per second and requests per second: token buckets
 */
#include "rules.h"

#include <netinet/in.h>
#include <string.h>

#include "../common/common.h"
#include "../common/kv.h"

#define CONN_TTL_MS (24LL * 3600 * 1000)

/* type(1) scope(4) family(1) address(16) */
#define KEY_LEN RULES_LIMIT_KEY_LEN

void rules_limit_key(char type, uint32_t scope, const struct sockaddr *sa, unsigned char *k)
{
    memset(k, 0, KEY_LEN);
    k[0] = (unsigned char)type;
    memcpy(k + 1, &scope, 4);
    k[5] = (unsigned char)sa->sa_family;
    if (sa->sa_family == AF_INET)
        memcpy(k + 6, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    else if (sa->sa_family == AF_INET6)
        memcpy(k + 6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
}

uint32_t rules_scope(const char *name)
{
    return (uint32_t)gh_fnv1a(name, strlen(name));
}

struct bucket {
    long rate, burst;
    uint64_t now;
    int ok;
};

static enum gh_kv_op bucket_fn(int64_t v[2], int exists, void *arg)
{
    struct bucket *b = arg;
    int64_t cap = (int64_t)b->burst * 1000, level;

    if (!exists) {
        v[0] = cap;
        v[1] = (int64_t)b->now;
    }
    /* milli-tokens: rate tokens per second is rate milli-tokens per ms */
    level = v[0] + ((int64_t)b->now - v[1]) * b->rate;
    if (level > cap)
        level = cap;
    v[1] = (int64_t)b->now;
    b->ok = level >= 1000;
    v[0] = b->ok ? level - 1000 : level;
    return GH_KV_STORE;
}

static int take(char type, uint32_t scope, const struct sockaddr *src, long rate, long burst)
{
    unsigned char k[KEY_LEN];
    struct bucket b;

    if (burst <= 0)
        burst = rate;
    b.rate = rate;
    b.burst = burst;
    b.now = gh_now_ms();
    b.ok = 1;
    rules_limit_key(type, scope, src, k);
    gh_kv_update(k, KEY_LEN, burst * 1000 / rate + 1000, bucket_fn, &b);
    return b.ok ? 0 : -1;
}

static enum gh_kv_op dec_fn(int64_t v[2], int exists, void *arg)
{
    (void)arg;
    if (!exists)
        return GH_KV_LEAVE; /* evicted meanwhile: nothing to give back */
    v[0]--;
    return v[0] <= 0 ? GH_KV_DELETE : GH_KV_STORE;
}

int rules_limit_conn_open(uint32_t scope, const struct sockaddr *src, long max_conns,
                          long conn_rate)
{
    unsigned char k[KEY_LEN];

    if (conn_rate > 0 && take('r', scope, src, conn_rate, conn_rate) == -1)
        return -1;
    if (max_conns > 0) {
        rules_limit_key('c', scope, src, k);
        if (gh_kv_incr(k, KEY_LEN, 1, CONN_TTL_MS) > max_conns) {
            gh_kv_update(k, KEY_LEN, CONN_TTL_MS, dec_fn, NULL);
            return -1;
        }
    }
    return 0;
}

void rules_limit_conn_close(uint32_t scope, const struct sockaddr *src, long max_conns)
{
    unsigned char k[KEY_LEN];

    if (max_conns <= 0)
        return;
    rules_limit_key('c', scope, src, k);
    gh_kv_update(k, KEY_LEN, CONN_TTL_MS, dec_fn, NULL);
}

long rules_limit_conn_count(uint32_t scope, const struct sockaddr *src)
{
    unsigned char k[KEY_LEN];
    int64_t v = 0;

    rules_limit_key('c', scope, src, k);
    return gh_kv_get(k, KEY_LEN, &v) == 0 && v > 0 ? (long)v : 0;
}

int rules_limit_request(uint32_t scope, const struct sockaddr *src, long rate, long burst)
{
    if (rate <= 0)
        return 0;
    return take('q', scope, src, rate, burst);
}
