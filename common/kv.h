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
void gh_kv_del(const void *key, size_t klen);
/* Entries evicted while still live because the table was full. */
uint64_t gh_kv_evictions(void);

#endif
