/*
 * Per-worker timers: a binary min-heap of connections by deadline. Each
 * connection has at most one deadline (the one its state needs), so the
 * heap never holds more entries than the worker has connections.
 */
#include "proxy_int.h"

#include <stdlib.h>

static void swap(struct proxy_worker *w, size_t a, size_t b)
{
    struct proxy_conn *t = w->heap[a];

    w->heap[a] = w->heap[b];
    w->heap[b] = t;
    w->heap[a]->heap_idx = a;
    w->heap[b]->heap_idx = b;
}

static void up(struct proxy_worker *w, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (w->heap[p]->deadline <= w->heap[i]->deadline)
            break;
        swap(w, i, p);
        i = p;
    }
}

static void down(struct proxy_worker *w, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->heap_n && w->heap[l]->deadline < w->heap[m]->deadline)
            m = l;
        if (r < w->heap_n && w->heap[r]->deadline < w->heap[m]->deadline)
            m = r;
        if (m == i)
            return;
        swap(w, i, m);
        i = m;
    }
}

void proxy__timer_clear(struct proxy_worker *w, struct proxy_conn *c)
{
    size_t i = c->heap_idx;

    if (i == SIZE_MAX)
        return;
    w->heap_n--;
    if (i != w->heap_n) {
        w->heap[i] = w->heap[w->heap_n];
        w->heap[i]->heap_idx = i;
        up(w, i);
        down(w, i);
    }
    c->heap_idx = SIZE_MAX;
    c->deadline = 0;
}

void proxy__timer_set(struct proxy_worker *w, struct proxy_conn *c, uint64_t deadline)
{
    if (c->heap_idx != SIZE_MAX) {
        uint64_t old = c->deadline;
        c->deadline = deadline;
        if (deadline < old)
            up(w, c->heap_idx);
        else
            down(w, c->heap_idx);
        return;
    }
    if (w->heap_n == w->heap_cap) {
        w->heap_cap = w->heap_cap ? w->heap_cap * 2 : 256;
        w->heap = gh_realloc(w->heap, w->heap_cap * sizeof(*w->heap));
        if (w->heap == NULL)
            abort();
    }
    c->deadline = deadline;
    c->heap_idx = w->heap_n;
    w->heap[w->heap_n++] = c;
    up(w, c->heap_idx);
}

uint64_t proxy__timer_next(struct proxy_worker *w)
{
    return w->heap_n ? w->heap[0]->deadline : 0;
}

struct proxy_conn *proxy__timer_pop_expired(struct proxy_worker *w, uint64_t now)
{
    struct proxy_conn *c;

    if (w->heap_n == 0 || w->heap[0]->deadline > now)
        return NULL;
    c = w->heap[0];
    proxy__timer_clear(w, c);
    return c;
}
