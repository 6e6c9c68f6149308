/* The store interface's own cost: operations per second and latency
 * (p50/p99, from asking to the answer) of one connection, one operation in
 * flight and 64 pipelined, on the local engine or a Redis server.
 * usage: store_bench local|HOST:PORT SECONDS
 * Prints one line per mode: "MODE ops_per_s p50_us p99_us" (latency
 * sampled for the first operations of a run). The mix is
 * what the proxy asks most: a rate-limit counter (incr) and a session read
 * (get) per request, half each. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/common.h"
#include "../../common/kv.h"
#include "../../store/store.h"

#define MAX_SAMPLES (16 * 1000 * 1000) /* the first ones: enough for p99 */

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct slot {
    uint64_t asked;
    int busy;
};

static uint32_t *samples;
static size_t nsamples;
static uint64_t failed, answered;

static void done(void *arg, const struct store_reply *r)
{
    struct slot *s = arg;

    if (r->status != STORE_OK && r->status != STORE_ABSENT)
        failed++;
    answered++;
    if (nsamples < MAX_SAMPLES)
        samples[nsamples++] = (uint32_t)(now_ns() - s->asked); /* < 4 s */
    s->busy = 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static void ask(struct store_conn *c, struct slot *s, unsigned i)
{
    char key[24];
    int n = snprintf(key, sizeof(key), "bench:%u", i % 1000);

    s->busy = 1;
    s->asked = now_ns();
    if ((i & 1 ? store_get(c, key, (size_t)n, done, s)
               : store_incr(c, key + 6, (size_t)n - 6, 1, 60000, done, s)) == -1) {
        failed++;
        s->busy = 0;
    }
}

static void run(struct store *st, int depth, double seconds, const char *mode)
{
    struct store_conn *c = store_conn_new(st);
    struct slot slots[64];
    uint64_t start, end;
    unsigned i = 0;
    int k;

    memset(slots, 0, sizeof(slots));
    store_conn_wait(c, 1000);
    nsamples = 0;
    failed = answered = 0;
    start = now_ns();
    end = start + (uint64_t)(seconds * 1e9);
    while (now_ns() < end) {
        for (k = 0; k < depth; k++)
            if (!slots[k].busy)
                ask(c, &slots[k], i++);
        {
            /* one turn of an event loop: what a worker does between events */
            struct pollfd p = {store_conn_fd(c), (short)store_conn_events(c), 0};
            int64_t t = store_conn_timeout_ms(c);
            int r = p.fd >= 0 ? poll(&p, 1, t < 0 ? 100 : (int)t) : 0;
            store_conn_io(c, r > 0 ? (unsigned)p.revents : 0);
        }
    }
    store_conn_wait(c, 2000);
    {
        double secs = (double)(now_ns() - start) / 1e9;
        qsort(samples, nsamples, sizeof(*samples), cmp_u32);
        printf("%s %.0f %.2f %.2f\n", mode, (double)answered / secs,
               nsamples ? samples[nsamples / 2] / 1000.0 : 0,
               nsamples ? samples[nsamples * 99 / 100] / 1000.0 : 0);
        if (failed)
            fprintf(stderr, "%s: %llu operations failed\n", mode, (unsigned long long)failed);
    }
    store_conn_free(c);
}

int main(int argc, char **argv)
{
    struct store_conf k;
    struct store *st;
    char err[256];
    double seconds;

    if (argc != 3) {
        fprintf(stderr, "usage: store_bench local|HOST:PORT SECONDS\n");
        return 2;
    }
    seconds = atof(argv[2]);
    memset(&k, 0, sizeof(k));
    if (strcmp(argv[1], "local") == 0) {
        k.engine = STORE_LOCAL;
        gh_kv_init(1 << 16);
        gh_kv_rec_init(1 << 14);
    } else {
        k.engine = STORE_REDIS;
        snprintf(k.address, sizeof(k.address), "%s", argv[1]);
        snprintf(k.prefix, sizeof(k.prefix), "bench:");
        k.timeout_ms = 1000;
    }
    st = store_new(&k, err, sizeof(err));
    if (st == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    samples = calloc(MAX_SAMPLES, sizeof(*samples));
    run(st, 1, seconds, "one-in-flight");
    run(st, 64, seconds, "pipelined-64");
    store_free(st);
    free(samples);
    return 0;
}
