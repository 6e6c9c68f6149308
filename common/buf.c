/* Per-thread free list of GH_BUF_SIZE buffers; larger ones are plain malloc. */
#include "buf.h"

#include <stdlib.h>

#include "common.h"

#define POOL_MAX 256

struct free_buf {
    struct free_buf *next;
};

static __thread struct free_buf *pool;
static __thread int pool_n;

void gh_buf_get(struct gh_buf *b)
{
    if (b->data != NULL)
        return;
    b->r = b->w = 0;
    if (pool != NULL) {
        b->data = (char *)pool;
        pool = pool->next;
        pool_n--;
    } else {
        b->data = malloc(GH_BUF_SIZE);
        if (b->data == NULL) {
            gh_log_err("out of memory");
            abort();
        }
    }
    b->cap = GH_BUF_SIZE;
}

void gh_buf_grow(struct gh_buf *b, size_t cap)
{
    char *p;

    if (cap <= b->cap)
        return;
    p = malloc(cap);
    if (p == NULL) {
        gh_log_err("out of memory");
        abort();
    }
    if (b->w > b->r)
        memcpy(p, b->data + b->r, b->w - b->r);
    b->w -= b->r;
    b->r = 0;
    {
        struct gh_buf old = *b;
        old.r = old.w = 0;
        gh_buf_put(&old);
    }
    b->data = p;
    b->cap = cap;
}

void gh_buf_put(struct gh_buf *b)
{
    if (b->data == NULL)
        return;
    if (b->cap == GH_BUF_SIZE && pool_n < POOL_MAX) {
        struct free_buf *f = (struct free_buf *)(void *)b->data;
        f->next = pool;
        pool = f;
        pool_n++;
    } else {
        free(b->data);
    }
    b->data = NULL;
    b->cap = b->r = b->w = 0;
}

void gh_buf_pool_drain(void)
{
    while (pool != NULL) {
        struct free_buf *f = pool;
        pool = f->next;
        free(f);
    }
    pool_n = 0;
}
