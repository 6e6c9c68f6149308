/*
 * Fixed-size I/O buffers from a per-thread free list. A buffer is a window
 * [r, w) of valid bytes in data[0, cap). A full buffer means "stop reading the
 * other side": that is the proxy's back-pressure. Buffers of an idle
 * connection go back to the free list, so idle connections cost no buffer.
 */
#ifndef GH_COMMON_BUF_H
#define GH_COMMON_BUF_H

#include <stddef.h>
#include <string.h>

#define GH_BUF_SIZE (16 * 1024)

struct gh_buf {
    char *data; /* owned (from the pool, or malloc for large heads) */
    size_t cap;
    size_t r; /* first valid byte */
    size_t w; /* one past the last valid byte */
};

/* buf.c */
/* Gives b storage of GH_BUF_SIZE from this thread's free list, unless it
 * already has storage (then nothing changes). */
void gh_buf_get(struct gh_buf *b);
/* Grows b's storage to cap bytes keeping its content (for large heads). */
void gh_buf_grow(struct gh_buf *b, size_t cap);
/* Returns b's storage; b becomes empty with no storage. */
void gh_buf_put(struct gh_buf *b);
/* Frees this thread's cached buffers (thread exit). */
void gh_buf_pool_drain(void);

static inline size_t gh_buf_len(const struct gh_buf *b)
{
    return b->w - b->r;
}

static inline size_t gh_buf_room(const struct gh_buf *b)
{
    return b->cap - b->w;
}

/* Moves valid bytes to the front so the tail has room. */
static inline void gh_buf_compact(struct gh_buf *b)
{
    if (b->r == 0)
        return;
    if (b->r != b->w)
        memmove(b->data, b->data + b->r, b->w - b->r);
    b->w -= b->r;
    b->r = 0;
}

static inline void gh_buf_consume(struct gh_buf *b, size_t n)
{
    b->r += n;
    if (b->r == b->w)
        b->r = b->w = 0;
}

/* Appends n bytes; the caller checked the room. */
static inline void gh_buf_append(struct gh_buf *b, const void *p, size_t n)
{
    memcpy(b->data + b->w, p, n);
    b->w += n;
}

#endif
