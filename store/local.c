/*
 * The local engine: the in-process tables of common/kv.h, answered at once
 * but delivered, like the Redis engine's answers, from the owner's next
 * store_conn_io. Records go to the record table, counters to the counter
 * table (so a flood of per-source counters cannot evict a session).
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "../common/kv.h"

struct bucket {
    int64_t now, rate, burst, wait;
};

/* Milli-tokens: v[0] the level, v[1] when it was last filled. */
static enum gh_kv_op take_token(int64_t v[2], int exists, void *arg)
{
    struct bucket *b = arg;
    int64_t full = b->burst * 1000;

    if (!exists) {
        v[0] = full;
        v[1] = b->now;
    }
    if (b->now > v[1])
        v[0] += (b->now - v[1]) * b->rate / 60; /* rate a minute = rate/60 milli-tokens a ms */
    if (v[0] > full)
        v[0] = full;
    v[1] = b->now;
    if (v[0] >= 1000) {
        v[0] -= 1000;
        b->wait = 0;
    } else {
        b->wait = (1000 - v[0]) * 60 / b->rate + 1;
    }
    return GH_KV_STORE;
}

int64_t store_local_bucket(const void *key, size_t klen, int64_t per_minute, int64_t burst)
{
    struct bucket b = {(int64_t)gh_now_ms(), per_minute, burst, 0};

    if (per_minute <= 0 || burst <= 0)
        return 0;
    /* kept until it would be full again, and a second more */
    gh_kv_update(key, klen, burst * 60000 / per_minute + 1000, take_token, &b);
    return b.wait;
}

long store_local_get(const void *key, size_t klen, void *buf, size_t cap)
{
    return gh_kv_rec_get(key, klen, buf, cap, 0, NULL);
}

/* store_conns on this process's tables, in the Redis script's format. Not
 * atomic across threads: with store local the proxy counts connections in
 * its own counters and never asks this (the conformance suite does). */
static int64_t conns_local(const void *key, size_t klen, const char *me, size_t ml, int64_t own,
                           int64_t lim, int64_t ttl_ms, int64_t seq, enum store_status *st)
{
    char in[GH_KV_REC_MAX + 1], out[GH_KV_REC_MAX + 1], mine[GH_KV_REC_MAX + 1] = "", *seg,
        *save = NULL;
    int64_t now = (int64_t)gh_now_ms(), others = 0;
    long got = gh_kv_rec_get(key, klen, in, GH_KV_REC_MAX, 0, NULL);
    size_t ol = 0;
    int kept = 0, w;

    in[got > 0 ? got : 0] = '\0';
    out[0] = '\0';
    for (seg = strtok_r(in, ";", &save); seg != NULL; seg = strtok_r(NULL, ";", &save)) {
        char name[STORE_MEMBER_MAX + 1];
        long long n, e, q;
        if (sscanf(seg, "%64s %lld %lld %lld", name, &n, &e, &q) != 4 || e <= now)
            continue;
        if (strlen(name) == ml && memcmp(name, me, ml) == 0) {
            if (q > seq) /* a newer write of ours is in: this one is late */
                snprintf(mine, sizeof(mine), "%s %lld %lld %lld;", name, n, e, q);
            continue;
        }
        if (kept >= STORE_MEMBER_MAX - 1)
            continue;
        others += n;
        w = snprintf(out + ol, sizeof(out) - ol, "%s %lld %lld %lld;", name, n, e, q);
        if (w < 0 || (size_t)w >= sizeof(out) - ol)
            break;
        ol += (size_t)w;
        kept++;
    }
    if (lim > 0 && others + own > lim)
        return others + 1;
    if (mine[0] != '\0')
        w = snprintf(out + ol, sizeof(out) - ol, "%s", mine);
    else if (own > 0)
        w = snprintf(out + ol, sizeof(out) - ol, "%.*s %lld %lld %lld;", (int)ml, me,
                     (long long)own, (long long)(now + ttl_ms), (long long)seq);
    else
        w = 0;
    if (w < 0 || (size_t)w >= sizeof(out) - ol) {
        *st = STORE_ERROR;
        return 0;
    }
    ol += (size_t)w;
    if (ol == 0)
        gh_kv_rec_del(key, klen);
    else if (gh_kv_rec_put(key, klen, out, ol, ttl_ms, 0) != 1)
        *st = STORE_ERROR;
    return 0;
}

void store__local_submit(struct store_conn *c, struct store_op *op, const void *key, size_t klen,
                         const void *val, size_t vlen, int64_t n, int64_t ttl_ms)
{
    unsigned char buf[STORE_VAL_MAX];
    enum store_status st = STORE_OK;
    long got;

    switch (op->kind) {
    case OP_GET:
    case OP_TAKE:
        got = gh_kv_rec_get(key, klen, buf, sizeof(buf), op->kind == OP_TAKE, &op->r.ttl_ms);
        if (got < 0) {
            st = STORE_ABSENT;
            op->r.ttl_ms = -1;
            break;
        }
        op->val = gh_calloc(1, (size_t)got);
        memcpy(op->val, buf, (size_t)got);
        gh_wipe(buf, (size_t)got);
        op->r.val = op->val;
        op->r.vlen = (size_t)got;
        break;
    case OP_SET:
        switch (gh_kv_rec_put(key, klen, val, vlen, ttl_ms,
                              op->flags & STORE_NX ? 1 : op->flags & STORE_XX ? 2 : 0)) {
        case 1:
            break;
        case 0:
            st = op->flags & STORE_NX ? STORE_EXISTS : STORE_ABSENT;
            break;
        default:
            st = STORE_ERROR;
        }
        break;
    case OP_DEL:
        st = gh_kv_rec_del(key, klen) | gh_kv_del(key, klen) ? STORE_OK : STORE_ABSENT;
        break;
    case OP_INCR:
        op->r.n = gh_kv_incr_window(key, klen, n, ttl_ms, &op->r.ttl_ms);
        break;
    case OP_BUCKET:
        op->r.n = store_local_bucket(key, klen, n, ttl_ms);
        break;
    case OP_CONNS:
        op->r.n = conns_local(key, klen, val, vlen, n, op->n2, ttl_ms, op->n3, &st);
        break;
    }
    store__answer_later(c, op, st);
}
