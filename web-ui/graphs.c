/*
 * The last hour of the counters /metrics serves, in memory, for the
 * admin page's graphs: a thread samples the proxy's JSON statistics every
 * GRAPH_STEP seconds and keeps, per service and per real server, the
 * cumulative requests, 5xx responses and latency sum, and whether the server
 * was up. Rates are the page's arithmetic on consecutive samples; a counter
 * that goes back (a reload that started a service anew) is a new start, not
 * a negative rate.
 *
 *   GET /api/v1/stats/history   {"step":5,"series":[{"service","server",
 *                               "points":[[t,requests,errors,latency_ms,up],...]}]}
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/common.h"
#include "webui_int.h"

#define GRAPH_STEP 5
#define GRAPH_POINTS (3600 / GRAPH_STEP)
#define GRAPH_SERIES 128

struct point {
    int64_t t;
    long long requests, errors, latency_ms;
    int up; /* 1, 0, or -1 for a service (no health of its own) */
};

struct series {
    char service[129], server[129];
    struct point p[GRAPH_POINTS];
    size_t head, n; /* ring: the oldest at (head - n) */
    int64_t seen;   /* the last sample it appeared in */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct series *all;
static size_t nall;
static pthread_t thread;
static int running, stopping;
static char *(*metrics)(int json, size_t *len);

static struct series *find(const char *service, const char *server, int64_t now)
{
    size_t i;

    /* Names longer than a series keeps have no series (compared whole they
     * would never match the cut copy, and would fill the table). */
    if (strlen(service) >= sizeof(all[0].service) || strlen(server) >= sizeof(all[0].server))
        return NULL;
    for (i = 0; i < nall; i++)
        if (strcmp(all[i].service, service) == 0 && strcmp(all[i].server, server) == 0)
            return &all[i];
    if (nall == GRAPH_SERIES) {
        /* Full: the series gone longest from the statistics makes room. */
        size_t old = 0;
        for (i = 1; i < nall; i++)
            if (all[i].seen < all[old].seen)
                old = i;
        if (all[old].seen >= now - 3600)
            return NULL;
        i = old;
    } else {
        i = nall++;
    }
    memset(&all[i], 0, sizeof(all[i]));
    gh_strlcpy(all[i].service, service, sizeof(all[i].service));
    gh_strlcpy(all[i].server, server, sizeof(all[i].server));
    return &all[i];
}

static long long sum_requests(json_t *req, long long *errors)
{
    const char *k;
    json_t *v;
    long long n = 0;

    json_object_foreach(req, k, v) {
        if (!json_is_integer(v))
            continue;
        n += json_integer_value(v);
        if (strcmp(k, "5xx") == 0)
            *errors = json_integer_value(v);
    }
    return n;
}

static void add(const char *service, const char *server, json_t *o, int up, int64_t now)
{
    struct series *s = find(service, server, now);
    struct point *p;

    if (s == NULL)
        return;
    p = &s->p[s->head];
    memset(p, 0, sizeof(*p));
    p->t = now;
    p->requests = sum_requests(json_object_get(o, "requests"), &p->errors);
    p->latency_ms = json_integer_value(json_object_get(o, "latency_sum_ms"));
    p->up = up;
    s->head = (s->head + 1) % GRAPH_POINTS;
    if (s->n < GRAPH_POINTS)
        s->n++;
    s->seen = now;
}

static void sample(void)
{
    size_t len = 0, i, j;
    char *text = metrics(1, &len);
    json_error_t e;
    json_t *root = text ? json_loadb(text, len, 0, &e) : NULL;
    json_t *svcs = json_object_get(root, "services");
    int64_t now = (int64_t)time(NULL);

    free(text);
    pthread_mutex_lock(&mu);
    for (i = 0; i < json_array_size(svcs); i++) {
        json_t *sv = json_array_get(svcs, i), *srvs = json_object_get(sv, "servers");
        const char *name = json_string_value(json_object_get(sv, "name"));
        if (name == NULL)
            continue;
        add(name, "", sv, -1, now);
        for (j = 0; j < json_array_size(srvs); j++) {
            json_t *r = json_array_get(srvs, j);
            const char *rn = json_string_value(json_object_get(r, "name"));
            const char *h = json_string_value(json_object_get(r, "health"));
            if (rn != NULL)
                add(name, rn, r, h != NULL && strcmp(h, "up") == 0, now);
        }
    }
    pthread_mutex_unlock(&mu);
    json_decref(root);
}

static void *run(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!stopping) {
        struct timespec ts;
        pthread_mutex_unlock(&mu);
        sample();
        pthread_mutex_lock(&mu);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += GRAPH_STEP;
        while (!stopping && pthread_cond_timedwait(&wake, &mu, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

int webui__graphs_start(char *(*source)(int json, size_t *len))
{
    if (running || source == NULL)
        return 0;
    metrics = source;
    all = gh_calloc(GRAPH_SERIES, sizeof(*all));
    stopping = 0;
    if (pthread_create(&thread, NULL, run, NULL) != 0) {
        free(all);
        all = NULL;
        return -1;
    }
    running = 1;
    return 0;
}

void webui__graphs_stop(void)
{
    if (!running)
        return;
    pthread_mutex_lock(&mu);
    stopping = 1;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&mu);
    pthread_join(thread, NULL);
    running = 0;
    pthread_mutex_lock(&mu);
    free(all);
    all = NULL;
    nall = 0;
    pthread_mutex_unlock(&mu);
}

char *webui__graphs_json(size_t *len)
{
    struct gh_sbuf o = {NULL, 0, 0};
    size_t i, k;

    gh_sbuf_printf(&o, "{\"step\":%d,\"series\":[", GRAPH_STEP);
    pthread_mutex_lock(&mu);
    for (i = 0; i < nall; i++) {
        const struct series *s = &all[i];
        gh_sbuf_printf(&o, "%s{\"service\":", i ? "," : "");
        gh_json_str(&o, s->service);
        gh_sbuf_printf(&o, ",\"server\":");
        gh_json_str(&o, s->server);
        gh_sbuf_printf(&o, ",\"points\":[");
        for (k = 0; k < s->n; k++) {
            const struct point *p = &s->p[(s->head + GRAPH_POINTS - s->n + k) % GRAPH_POINTS];
            gh_sbuf_printf(&o, "%s[%lld,%lld,%lld,%lld,%d]", k ? "," : "", (long long)p->t,
                           p->requests, p->errors, p->latency_ms, p->up);
        }
        gh_sbuf_printf(&o, "]}");
    }
    pthread_mutex_unlock(&mu);
    gh_sbuf_printf(&o, "]}\n");
    *len = o.len;
    return o.p;
}
