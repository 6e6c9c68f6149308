/*
 * The key-value store with time-to-live that state shared by workers (and,
 * later, by several appliances) goes through: per-source counters now,
 * sessions, request IDs and join tokens later. No module keeps such state
 * privately. This is the in-process store: sharded, a mutex per shard, a
 * fixed number of entries allocated once, so an address-spraying flood can
 * only evict, never grow memory. A Redis-backed store can implement the same
 * calls (update maps to a script).
 *
 * Keys are at most GH_KV_KEY_MAX bytes of anything; values are two 64-bit
 * integers (a counter, or a token bucket's level and time).
 */
#ifndef GH_COMMON_KV_H
#define GH_COMMON_KV_H

#include <stddef.h>
#include <stdint.h>

#define GH_KV_KEY_MAX 40

/* What an update callback asks the store to do with the entry. */
enum gh_kv_op { GH_KV_STORE, GH_KV_DELETE, GH_KV_LEAVE };

/* Called under the shard lock with the current values (zero when absent). */
typedef enum gh_kv_op (*gh_kv_update_fn)(int64_t v[2], int exists, void *arg);

/* kv.c */
/* Sizes the store (entries, rounded up); call once before workers start.
 * Calling again resizes and clears it. */
int gh_kv_init(size_t capacity);
void gh_kv_fini(void);
/* Atomically applies fn to key's values; a stored entry lives ttl_ms from now.
 * Returns fn's decision. */
enum gh_kv_op gh_kv_update(const void *key, size_t klen, int64_t ttl_ms, gh_kv_update_fn fn,
                           void *arg);
/* Adds delta to v[0] (creating it at 0) and returns the new value. */
int64_t gh_kv_incr(const void *key, size_t klen, int64_t delta, int64_t ttl_ms);
/* 0 with v[0] in *out, or -1 when absent or expired. */
int gh_kv_get(const void *key, size_t klen, int64_t *out);
/* Stores v unless the key exists: 1 stored, 0 existed. */
int gh_kv_set_nx(const void *key, size_t klen, int64_t v, int64_t ttl_ms);
/* 1 deleted, 0 there was no live entry. */
int gh_kv_del(const void *key, size_t klen);
/* Adds delta to v[0] like gh_kv_incr, but the time-to-live is set by the
 * write that creates the entry and never extended (a fixed window);
 * *ttl_left_ms receives what the window has left. */
int64_t gh_kv_incr_window(const void *key, size_t klen, int64_t delta, int64_t ttl_ms,
                          int64_t *ttl_left_ms);
/* Entries evicted while still live because the table was full. */
uint64_t gh_kv_evictions(void);

/*
 * Records: the same store for values of up to GH_KV_REC_MAX bytes (sessions,
 * outstanding SAML requests, the assertion replay cache, join tokens). A
 * separate fixed table, so a flood of per-source counters cannot evict a
 * session and the other way round.
 */
#define GH_KV_REC_MAX 1024

/* kv_rec.c */
int gh_kv_rec_init(size_t capacity);
void gh_kv_rec_fini(void);
/* Stores val: nx 0 replacing, 1 only when absent, 2 only when present. 1
 * stored, 0 not (it existed with 1, it did not with 2), -1 too long or not
 * initialised. */
int gh_kv_rec_put(const void *key, size_t klen, const void *val, size_t vlen, int64_t ttl_ms,
                  int nx);
/* Copies the value into buf (cap bytes) and returns its length, or -1 when
 * absent, expired or larger than cap. With take the entry is deleted in the
 * same step, so of two concurrent takers exactly one gets it. *ttl_left_ms,
 * when not NULL, receives the time the entry had left. */
long gh_kv_rec_get(const void *key, size_t klen, void *buf, size_t cap, int take,
                   int64_t *ttl_left_ms);
/* 1 deleted, 0 there was no live entry. */
int gh_kv_rec_del(const void *key, size_t klen);
uint64_t gh_kv_rec_evictions(void);

#endif
