/*
 * The local engine: the in-process tables of common/kv.h, answered at once
 * but delivered, like the Redis engine's answers, from the owner's next
 * store_conn_io. Records go to the record table, counters to the counter
 * table (so a flood of per-source counters cannot evict a session).
 */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "../common/kv.h"

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
        switch (gh_kv_rec_put(key, klen, val, vlen, ttl_ms, (op->flags & STORE_NX) != 0)) {
        case 1:
            break;
        case 0:
            st = STORE_EXISTS;
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
    }
    store__answer_later(c, op, st);
}
