/*
 * Process-wide counters for services and real servers, and the metrics
 * writers (Prometheus text and JSON). Entries are found by key when a
 * generation is built and never freed, so a reload keeps the counters and
 * the health of every server that stays. Only a committed generation
 * creates entries (proxy__gen_bind_stats), so the server table grows with
 * the servers ever run, not with candidates refused.
 */
#include "proxy_int.h"

#include "../certs/certs.h"
#include "../store/store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


const unsigned proxy__lat_ms[PROXY_LAT_BUCKETS - 1] = {1,   5,   10,   25,   50,   100,
                                                       250, 500, 1000, 2500, 5000};

static struct proxy_srv_stats **srvs;
static struct proxy_svc_stats **svcs;
static size_t nsrv, srvcap, nsvc, svccap;
static pthread_mutex_t tmu = PTHREAD_MUTEX_INITIALIZER;

struct proxy_srv_stats *proxy__srv_stats(const char *key, const char *service,
                                         const char *name, const char *addr, int start_up)
{
    struct proxy_srv_stats *s = NULL;
    size_t i;

    pthread_mutex_lock(&tmu);
    for (i = 0; i < nsrv; i++)
        if (strcmp(srvs[i]->key, key) == 0 && strcmp(srvs[i]->service, service) == 0)
            s = srvs[i];
    if (s == NULL) {
        s = gh_calloc(1, sizeof(*s));
        snprintf(s->key, sizeof(s->key), "%s", key);
        pthread_mutex_init(&s->mu, NULL);
        atomic_store(&s->up, start_up);
        snprintf(s->last_result, sizeof(s->last_result), "%s", start_up ? "not checked yet"
                                                                         : "down until checked");
        if (nsrv == srvcap) {
            srvcap = srvcap ? srvcap * 2 : 64;
            srvs = gh_realloc(srvs, srvcap * sizeof(*srvs));
        }
        srvs[nsrv++] = s;
    }
    snprintf(s->service, sizeof(s->service), "%s", service);
    snprintf(s->name, sizeof(s->name), "%s", name);
    snprintf(s->addr, sizeof(s->addr), "%s", addr);
    pthread_mutex_unlock(&tmu);
    return s;
}

struct proxy_svc_stats *proxy__svc_stats(const char *name)
{
    struct proxy_svc_stats *s = NULL;
    size_t i;

    pthread_mutex_lock(&tmu);
    for (i = 0; i < nsvc; i++)
        if (strcmp(svcs[i]->name, name) == 0)
            s = svcs[i];
    if (s == NULL) {
        s = gh_calloc(1, sizeof(*s));
        snprintf(s->name, sizeof(s->name), "%s", name);
        if (nsvc == svccap) {
            svccap = svccap ? svccap * 2 : 16;
            svcs = gh_realloc(svcs, svccap * sizeof(*svcs));
        }
        svcs[nsvc++] = s;
    }
    pthread_mutex_unlock(&tmu);
    return s;
}

static size_t lat_bucket(uint64_t ms)
{
    size_t b;

    for (b = 0; b < PROXY_LAT_BUCKETS - 1; b++)
        if (ms <= proxy__lat_ms[b])
            return b;
    return PROXY_LAT_BUCKETS - 1;
}

void proxy__stats_request(struct proxy_svc_stats *svc, struct proxy_srv_stats *srv, int status,
                          uint64_t bytes_in, uint64_t bytes_out, uint64_t ms)
{
    int cls = status >= 100 && status < 600 ? status / 100 : 0;
    size_t b = lat_bucket(ms);

    atomic_fetch_add(&svc->requests[cls], 1);
    atomic_fetch_add(&svc->bytes_in, bytes_in);
    atomic_fetch_add(&svc->bytes_out, bytes_out);
    atomic_fetch_add(&svc->lat[b], 1);
    atomic_fetch_add(&svc->lat_sum_ms, ms);
    if (srv == NULL)
        return;
    atomic_fetch_add(&srv->requests[cls], 1);
    atomic_fetch_add(&srv->bytes_in, bytes_in);
    atomic_fetch_add(&srv->bytes_out, bytes_out);
    atomic_fetch_add(&srv->lat[b], 1);
    atomic_fetch_add(&srv->lat_sum_ms, ms);
}


static const char *const classes[6] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};

static void histogram(struct gh_sbuf *o, const char *metric, const char *labels,
                      _Atomic unsigned long long *lat, unsigned long long sum_ms)
{
    unsigned long long cum = 0;
    size_t b;

    for (b = 0; b < PROXY_LAT_BUCKETS; b++) {
        cum += atomic_load(&lat[b]);
        if (b < PROXY_LAT_BUCKETS - 1)
            gh_sbuf_printf(o, "%s_bucket{%s,le=\"%g\"} %llu\n", metric, labels, proxy__lat_ms[b] / 1000.0,
                 cum);
        else
            gh_sbuf_printf(o, "%s_bucket{%s,le=\"+Inf\"} %llu\n", metric, labels, cum);
    }
    gh_sbuf_printf(o, "%s_sum{%s} %.3f\n%s_count{%s} %llu\n", metric, labels, sum_ms / 1000.0, metric,
         labels, cum);
}

/* A label value in the Prometheus text format: \\, \" and \n escaped (names
 * come from the config and may hold any of them). Rotating thread-local
 * buffers, as one line names at most two. */
static const char *pl(const char *s)
{
    static __thread char buf[4][520];
    static __thread unsigned k;
    char *o = buf[k++ % 4];
    size_t n = 0;

    for (; *s && n + 3 < sizeof(buf[0]); s++) {
        if (*s == '\\' || *s == '"') {
            o[n++] = '\\';
            o[n++] = *s;
        } else if (*s == '\n') {
            o[n++] = '\\';
            o[n++] = 'n';
        } else {
            o[n++] = *s;
        }
    }
    o[n] = '\0';
    return o;
}

static const char *const udp_drops[PROXY_UDP_DROP_MAX] = {
#define PROXY_UDP_DROP_WORD(e, word) word,
    PROXY_UDP_DROPS(PROXY_UDP_DROP_WORD)
#undef PROXY_UDP_DROP_WORD
};

/* mode udp services: flows and datagrams (their bytes are in
 * gatehouse_service_bytes_total, their servers' in-flight flows in
 * gatehouse_server_active). Rows for udp services only. */
static void udp_prometheus(struct gh_sbuf *o, struct proxy_gen *g)
{
    size_t i, c;

    gh_sbuf_printf(o, "# HELP gatehouse_udp_flows UDP flows open now.\n"
                      "# TYPE gatehouse_udp_flows gauge\n");
    for (i = 0; i < g->nsvcs; i++)
        if (g->svcs[i].udp)
            gh_sbuf_printf(o, "gatehouse_udp_flows{service=\"%s\"} %ld\n",
                           pl(g->svcs[i].st->name), atomic_load(&g->svcs[i].st->udp_flows));
    gh_sbuf_printf(o, "# HELP gatehouse_udp_flows_total UDP flows opened.\n"
                      "# TYPE gatehouse_udp_flows_total counter\n");
    for (i = 0; i < g->nsvcs; i++)
        if (g->svcs[i].udp)
            gh_sbuf_printf(o, "gatehouse_udp_flows_total{service=\"%s\"} %llu\n",
                           pl(g->svcs[i].st->name), atomic_load(&g->svcs[i].st->udp_flows_total));
    gh_sbuf_printf(o, "# HELP gatehouse_udp_flows_refused_total Datagrams dropped because they "
                      "would open a flow past max-flows.\n"
                      "# TYPE gatehouse_udp_flows_refused_total counter\n");
    for (i = 0; i < g->nsvcs; i++)
        if (g->svcs[i].udp)
            gh_sbuf_printf(o, "gatehouse_udp_flows_refused_total{service=\"%s\"} %llu\n",
                           pl(g->svcs[i].st->name),
                           atomic_load(&g->svcs[i].st->udp_flows_refused));
    gh_sbuf_printf(o, "# HELP gatehouse_udp_datagrams_total Datagrams from clients (in) and to "
                      "clients (out).\n# TYPE gatehouse_udp_datagrams_total counter\n");
    for (i = 0; i < g->nsvcs; i++)
        if (g->svcs[i].udp) {
            gh_sbuf_printf(o, "gatehouse_udp_datagrams_total{service=\"%s\",direction=\"in\"} "
                              "%llu\n",
                           pl(g->svcs[i].st->name), atomic_load(&g->svcs[i].st->udp_dgrams_in));
            gh_sbuf_printf(o, "gatehouse_udp_datagrams_total{service=\"%s\",direction=\"out\"} "
                              "%llu\n",
                           pl(g->svcs[i].st->name), atomic_load(&g->svcs[i].st->udp_dgrams_out));
        }
    gh_sbuf_printf(o, "# HELP gatehouse_udp_datagrams_dropped_total Datagrams dropped, by reason "
                      "(max-flows apart).\n"
                      "# TYPE gatehouse_udp_datagrams_dropped_total counter\n");
    for (i = 0; i < g->nsvcs; i++)
        for (c = 0; g->svcs[i].udp && c < PROXY_UDP_DROP_MAX; c++)
            gh_sbuf_printf(o, "gatehouse_udp_datagrams_dropped_total{service=\"%s\","
                              "reason=\"%s\"} %llu\n",
                           pl(g->svcs[i].st->name), udp_drops[c],
                           atomic_load(&g->svcs[i].st->udp_dropped[c]));
}

/* The "udp" object of a mode udp service in /api/v1/stats. */
static void udp_json(struct gh_sbuf *o, const struct proxy_service *svc)
{
    const struct proxy_svc_stats *v = svc->st;
    size_t c;

    gh_sbuf_printf(o, ",\"udp\":{\"flows\":%ld,\"flows_total\":%llu,\"flows_refused\":%llu,"
                      "\"datagrams_in\":%llu,\"datagrams_out\":%llu,\"dropped\":{",
                   atomic_load(&v->udp_flows), atomic_load(&v->udp_flows_total),
                   atomic_load(&v->udp_flows_refused), atomic_load(&v->udp_dgrams_in),
                   atomic_load(&v->udp_dgrams_out));
    for (c = 0; c < PROXY_UDP_DROP_MAX; c++)
        gh_sbuf_printf(o, "%s\"%s\":%llu", c ? "," : "", udp_drops[c],
                       atomic_load(&v->udp_dropped[c]));
    gh_sbuf_printf(o, "}}");
}

/* The shared store's counters: how often it was asked, and how it failed
 * (an outage is counted, not only logged). */
static void store_prometheus(struct gh_sbuf *o)
{
    const struct store *st = store_current();
    const char *e = store_engine_name(st);
    struct store_stats v;

    store_stats(st, &v);
    gh_sbuf_printf(o, "# HELP gatehouse_store_operations_total Operations asked of the shared "
                      "store.\n# TYPE gatehouse_store_operations_total counter\n"
                      "gatehouse_store_operations_total{engine=\"%s\"} %llu\n", e,
                   (unsigned long long)v.ops);
    gh_sbuf_printf(o, "# HELP gatehouse_store_failures_total Operations the shared store did not "
                      "answer as asked, by why.\n# TYPE gatehouse_store_failures_total counter\n");
    gh_sbuf_printf(o, "gatehouse_store_failures_total{engine=\"%s\",reason=\"timeout\"} %llu\n"
                      "gatehouse_store_failures_total{engine=\"%s\",reason=\"down\"} %llu\n"
                      "gatehouse_store_failures_total{engine=\"%s\",reason=\"error\"} %llu\n"
                      "gatehouse_store_failures_total{engine=\"%s\",reason=\"not-durable\"} %llu\n",
                   e, (unsigned long long)v.timeouts, e, (unsigned long long)v.down, e,
                   (unsigned long long)v.errors, e, (unsigned long long)v.not_durable);
    gh_sbuf_printf(o, "# HELP gatehouse_store_connects_total Connections to the engine begun "
                      "(first and again).\n# TYPE gatehouse_store_connects_total counter\n"
                      "gatehouse_store_connects_total{engine=\"%s\"} %llu\n"
                      "# HELP gatehouse_store_connected Connections to the engine ready now.\n"
                      "# TYPE gatehouse_store_connected gauge\n"
                      "gatehouse_store_connected{engine=\"%s\"} %d\n",
                   e, (unsigned long long)v.reconnects, e, v.connected);
}

static void prometheus(struct gh_sbuf *o, struct proxy_gen *g)
{
    size_t i, j, c;
    char l[256];

    gh_sbuf_printf(o, "# HELP gatehouse_certificate_expiry_seconds Seconds until the certificate "
            "expires.\n# TYPE gatehouse_certificate_expiry_seconds gauge\n");
    for (i = 0; i < g->conf->ncerts; i++) {
        const struct gh_conf_cert *cc = &g->conf->certs[i];
        struct certs_source src = {cc->cert, cc->key, cc->pkcs12, cc->passphrase_file};
        long long left = certs_expiry_seconds(&src);
        if (left != INT64_MIN)
            gh_sbuf_printf(o, "gatehouse_certificate_expiry_seconds{certificate=\"%s\"} %lld\n",
                 pl(g->conf->certs[i].name), left);
    }

    gh_sbuf_printf(o, "# HELP gatehouse_service_connections Client connections open now.\n"
            "# TYPE gatehouse_service_connections gauge\n");
    for (i = 0; i < g->nsvcs; i++)
        gh_sbuf_printf(o, "gatehouse_service_connections{service=\"%s\"} %ld\n", pl(g->svcs[i].st->name),
             atomic_load(&g->svcs[i].st->conns_active));
    gh_sbuf_printf(o, "# HELP gatehouse_service_queue Requests waiting for a real-server slot.\n"
            "# TYPE gatehouse_service_queue gauge\n");
    for (i = 0; i < g->nsvcs; i++)
        gh_sbuf_printf(o, "gatehouse_service_queue{service=\"%s\"} %ld\n", pl(g->svcs[i].st->name),
             atomic_load(&g->svcs[i].st->queued));
    gh_sbuf_printf(o, "# HELP gatehouse_tunnels_active WebSocket tunnels open now.\n"
            "# TYPE gatehouse_tunnels_active gauge\n");
    for (i = 0; i < g->nsvcs; i++)
        gh_sbuf_printf(o, "gatehouse_tunnels_active{service=\"%s\"} %ld\n", pl(g->svcs[i].st->name),
             atomic_load(&g->svcs[i].st->tunnels_active));
    gh_sbuf_printf(o, "# HELP gatehouse_tunnels_total WebSocket tunnels opened (after a checked "
            "101).\n# TYPE gatehouse_tunnels_total counter\n");
    for (i = 0; i < g->nsvcs; i++)
        gh_sbuf_printf(o, "gatehouse_tunnels_total{service=\"%s\"} %llu\n", pl(g->svcs[i].st->name),
             atomic_load(&g->svcs[i].st->tunnels_total));
    gh_sbuf_printf(o, "# HELP gatehouse_internal_errors_total Connections closed because the proxy "
            "caught itself in an illegal state transition.\n"
            "# TYPE gatehouse_internal_errors_total counter\n");
    for (i = 0; i < g->nsvcs; i++)
        gh_sbuf_printf(o, "gatehouse_internal_errors_total{service=\"%s\"} %llu\n",
             pl(g->svcs[i].st->name), atomic_load(&g->svcs[i].st->internal_errors));
    gh_sbuf_printf(o, "# HELP gatehouse_service_connections_total Client connections accepted.\n"
            "# TYPE gatehouse_service_connections_total counter\n");
    for (i = 0; i < g->nsvcs; i++)
        gh_sbuf_printf(o, "gatehouse_service_connections_total{service=\"%s\"} %llu\n",
             pl(g->svcs[i].st->name), atomic_load(&g->svcs[i].st->conns_total));
    gh_sbuf_printf(o, "# HELP gatehouse_service_requests_total Requests answered, by status class.\n"
            "# TYPE gatehouse_service_requests_total counter\n");
    for (i = 0; i < g->nsvcs; i++)
        for (c = 1; c < 6; c++)
            gh_sbuf_printf(o, "gatehouse_service_requests_total{service=\"%s\",code=\"%s\"} %llu\n",
                 pl(g->svcs[i].st->name), classes[c], atomic_load(&g->svcs[i].st->requests[c]));
    gh_sbuf_printf(o, "# HELP gatehouse_service_bytes_total Bytes from clients (in) and to clients (out).\n"
            "# TYPE gatehouse_service_bytes_total counter\n");
    for (i = 0; i < g->nsvcs; i++) {
        gh_sbuf_printf(o, "gatehouse_service_bytes_total{service=\"%s\",direction=\"in\"} %llu\n",
             pl(g->svcs[i].st->name), atomic_load(&g->svcs[i].st->bytes_in));
        gh_sbuf_printf(o, "gatehouse_service_bytes_total{service=\"%s\",direction=\"out\"} %llu\n",
             pl(g->svcs[i].st->name), atomic_load(&g->svcs[i].st->bytes_out));
    }
    gh_sbuf_printf(o, "# HELP gatehouse_service_rejections_total Requests or connections refused, by "
            "reason.\n# TYPE gatehouse_service_rejections_total counter\n");
    for (i = 0; i < g->nsvcs; i++)
        for (c = 1; c < GH_REASON_MAX; c++) {
            unsigned long long v = atomic_load(&g->svcs[i].st->refused[c]);
            if (v)
                gh_sbuf_printf(o, "gatehouse_service_rejections_total{service=\"%s\",reason=\"%s\"} %llu\n",
                     pl(g->svcs[i].st->name), gh_reason_name((enum gh_reason)c), v);
        }
    gh_sbuf_printf(o, "# HELP gatehouse_edge_tokens_total Requests a validate-join-token service "
            "forwarded with an edge token (its refusals are rejections, by reason).\n"
            "# TYPE gatehouse_edge_tokens_total counter\n");
    for (i = 0; i < g->nsvcs; i++)
        if (g->svcs[i].validate_join)
            gh_sbuf_printf(o, "gatehouse_edge_tokens_total{service=\"%s\"} %llu\n",
                           pl(g->svcs[i].st->name), atomic_load(&g->svcs[i].st->edge_tokens));
    /* Every reason row, zeros too: a rate() over a row that appears only
     * with its first failure misses that failure. */
    gh_sbuf_printf(o, "# HELP gatehouse_tls_handshake_failures_total Client TLS handshakes that "
            "failed, by reason.\n# TYPE gatehouse_tls_handshake_failures_total counter\n");
    for (i = 0; i < g->nsvcs; i++)
        for (c = 0; c < PROXY_TLS_FAIL_MAX; c++)
            gh_sbuf_printf(o, "gatehouse_tls_handshake_failures_total{service=\"%s\","
                    "reason=\"%s\"} %llu\n",
                 pl(g->svcs[i].st->name), proxy__tls_fail_name((enum proxy_tls_fail)c),
                 atomic_load(&g->svcs[i].st->tls_failed[c]));
    proxy__app_refusals_prometheus(o);
    gh_sbuf_printf(o, "# HELP gatehouse_tls_handshakes_total Client TLS handshakes completed, "
            "full or resumed.\n# TYPE gatehouse_tls_handshakes_total counter\n");
    for (i = 0; i < g->nsvcs; i++)
        for (c = 0; c < 2; c++)
            gh_sbuf_printf(o, "gatehouse_tls_handshakes_total{service=\"%s\",resumed=\"%s\"} "
                    "%llu\n", pl(g->svcs[i].st->name), c ? "yes" : "no",
                 atomic_load(&g->svcs[i].st->tls_done[c]));
    gh_sbuf_printf(o, "# HELP gatehouse_service_request_duration_seconds Time from request head to the "
            "end of the response.\n# TYPE gatehouse_service_request_duration_seconds "
            "histogram\n");
    for (i = 0; i < g->nsvcs; i++) {
        snprintf(l, sizeof(l), "service=\"%s\"", pl(g->svcs[i].st->name));
        histogram(o, "gatehouse_service_request_duration_seconds", l, g->svcs[i].st->lat,
                  atomic_load(&g->svcs[i].st->lat_sum_ms));
    }
    gh_sbuf_printf(o, "# HELP gatehouse_server_up Health: 1 up, 0 down.\n"
            "# TYPE gatehouse_server_up gauge\n");
    for (i = 0; i < g->nsvcs; i++)
        for (j = 0; j < g->svcs[i].nservers; j++) {
            struct proxy_server *s = &g->svcs[i].servers[j];
            gh_sbuf_printf(o, "gatehouse_server_up{service=\"%s\",server=\"%s\",state=\"%s\"} %d\n",
                 pl(s->st->service), pl(s->st->name), s->admin == 0 ? "up" : s->admin == 1 ? "drain" : "maint",
                 atomic_load(&s->st->up));
        }
    gh_sbuf_printf(o, "# HELP gatehouse_server_active Requests in flight to the server.\n"
            "# TYPE gatehouse_server_active gauge\n");
    for (i = 0; i < g->nsvcs; i++)
        for (j = 0; j < g->svcs[i].nservers; j++) {
            struct proxy_server *s = &g->svcs[i].servers[j];
            gh_sbuf_printf(o, "gatehouse_server_active{service=\"%s\",server=\"%s\"} %ld\n",
                 pl(s->st->service), pl(s->st->name), atomic_load(&s->st->active));
        }
    gh_sbuf_printf(o, "# HELP gatehouse_server_connections Connections open to the server (in use or "
            "pooled).\n# TYPE gatehouse_server_connections gauge\n");
    for (i = 0; i < g->nsvcs; i++)
        for (j = 0; j < g->svcs[i].nservers; j++) {
            struct proxy_server *s = &g->svcs[i].servers[j];
            gh_sbuf_printf(o, "gatehouse_server_connections{service=\"%s\",server=\"%s\"} %ld\n",
                 pl(s->st->service), pl(s->st->name), atomic_load(&s->st->conns));
        }
    gh_sbuf_printf(o, "# HELP gatehouse_server_connections_total Connections opened to the server.\n"
            "# TYPE gatehouse_server_connections_total counter\n");
    for (i = 0; i < g->nsvcs; i++)
        for (j = 0; j < g->svcs[i].nservers; j++) {
            struct proxy_server *s = &g->svcs[i].servers[j];
            gh_sbuf_printf(o, "gatehouse_server_connections_total{service=\"%s\",server=\"%s\"} %llu\n",
                 pl(s->st->service), pl(s->st->name), atomic_load(&s->st->conns_total));
        }
    gh_sbuf_printf(o, "# HELP gatehouse_server_requests_total Requests sent, by response status class.\n"
            "# TYPE gatehouse_server_requests_total counter\n");
    for (i = 0; i < g->nsvcs; i++)
        for (j = 0; j < g->svcs[i].nservers; j++)
            for (c = 1; c < 6; c++) {
                struct proxy_server *s = &g->svcs[i].servers[j];
                gh_sbuf_printf(o, "gatehouse_server_requests_total{service=\"%s\",server=\"%s\",code=\"%s\"} "
                        "%llu\n",
                     pl(s->st->service), pl(s->st->name), classes[c], atomic_load(&s->st->requests[c]));
            }
    gh_sbuf_printf(o, "# HELP gatehouse_server_checks_total Active health checks, by result.\n"
            "# TYPE gatehouse_server_checks_total counter\n");
    for (i = 0; i < g->nsvcs; i++)
        for (j = 0; j < g->svcs[i].nservers; j++) {
            struct proxy_server *s = &g->svcs[i].servers[j];
            gh_sbuf_printf(o, "gatehouse_server_checks_total{service=\"%s\",server=\"%s\",result=\"ok\"} "
                    "%llu\n",
                 pl(s->st->service), pl(s->st->name), atomic_load(&s->st->checks_ok));
            gh_sbuf_printf(o, "gatehouse_server_checks_total{service=\"%s\",server=\"%s\",result=\"fail\"} "
                    "%llu\n",
                 pl(s->st->service), pl(s->st->name), atomic_load(&s->st->checks_fail));
        }
    gh_sbuf_printf(o, "# HELP gatehouse_server_bytes_total Bytes to the server (out) and from it (in).\n"
            "# TYPE gatehouse_server_bytes_total counter\n");
    for (i = 0; i < g->nsvcs; i++)
        for (j = 0; j < g->svcs[i].nservers; j++) {
            struct proxy_server *s = &g->svcs[i].servers[j];
            gh_sbuf_printf(o, "gatehouse_server_bytes_total{service=\"%s\",server=\"%s\",direction=\"in\"} "
                    "%llu\n",
                 pl(s->st->service), pl(s->st->name), atomic_load(&s->st->bytes_in));
            gh_sbuf_printf(o, "gatehouse_server_bytes_total{service=\"%s\",server=\"%s\",direction=\"out\"} "
                    "%llu\n",
                 pl(s->st->service), pl(s->st->name), atomic_load(&s->st->bytes_out));
        }
    gh_sbuf_printf(o, "# HELP gatehouse_server_request_duration_seconds Time from request head to the end "
            "of the response.\n# TYPE gatehouse_server_request_duration_seconds histogram\n");
    for (i = 0; i < g->nsvcs; i++)
        for (j = 0; j < g->svcs[i].nservers; j++) {
            struct proxy_server *s = &g->svcs[i].servers[j];
            snprintf(l, sizeof(l), "service=\"%s\",server=\"%s\"", pl(s->st->service), pl(s->st->name));
            histogram(o, "gatehouse_server_request_duration_seconds", l, s->st->lat,
                      atomic_load(&s->st->lat_sum_ms));
        }
    udp_prometheus(o, g);
    store_prometheus(o);
}

static void json(struct gh_sbuf *o, struct proxy_gen *g)
{
    size_t i, j, c;
    int first;

    gh_sbuf_printf(o, "{\"generation\":%llu,\"services\":[", (unsigned long long)g->id);
    for (i = 0; i < g->nsvcs; i++) {
        struct proxy_svc_stats *v = g->svcs[i].st;
        /* Names come from the config and may hold anything a string can. */
        gh_sbuf_printf(o, "%s{\"name\":", i ? "," : "");
        gh_json_str(o, v->name);
        gh_sbuf_printf(o, ",\"listen\":\"%s\",\"enabled\":%s,\"listening\":%s,"
                "\"app\":%s%s%s,\"queue\":%ld,\"connections\":%ld,"
                "\"connections_total\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,\"requests\":{",
             g->svcs[i].conf->listen,
             g->svcs[i].disabled ? "false" : "true", g->svcs[i].lidx >= 0 ? "true" : "false",
             g->svcs[i].conf->app ? "\"" : "",
             g->svcs[i].conf->app ? g->svcs[i].conf->app : "null",
             g->svcs[i].conf->app ? "\"" : "", atomic_load(&v->queued),
             atomic_load(&v->conns_active),
             atomic_load(&v->conns_total), atomic_load(&v->bytes_in),
             atomic_load(&v->bytes_out));
        for (c = 1; c < 6; c++)
            gh_sbuf_printf(o, "%s\"%s\":%llu", c > 1 ? "," : "", classes[c], atomic_load(&v->requests[c]));
        gh_sbuf_printf(o, "},\"rejections\":{");
        first = 1;
        for (c = 1; c < GH_REASON_MAX; c++) {
            unsigned long long n = atomic_load(&v->refused[c]);
            if (n) {
                gh_sbuf_printf(o, "%s\"%s\":%llu", first ? "" : ",", gh_reason_name((enum gh_reason)c), n);
                first = 0;
            }
        }
        gh_sbuf_printf(o, "},\"tls_failures\":{");
        for (c = 0; c < PROXY_TLS_FAIL_MAX; c++)
            gh_sbuf_printf(o, "%s\"%s\":%llu", c ? "," : "",
                 proxy__tls_fail_name((enum proxy_tls_fail)c), atomic_load(&v->tls_failed[c]));
        gh_sbuf_printf(o, "},\"tls_handshakes\":{\"full\":%llu,\"resumed\":%llu",
             atomic_load(&v->tls_done[0]), atomic_load(&v->tls_done[1]));
        gh_sbuf_printf(o, "},\"tunnels\":%llu,\"tunnels_active\":%ld,\"internal_errors\":%llu,"
             "\"latency_sum_ms\":%llu",
             atomic_load(&v->tunnels_total), atomic_load(&v->tunnels_active),
             atomic_load(&v->internal_errors), atomic_load(&v->lat_sum_ms));
        if (g->svcs[i].udp)
            udp_json(o, &g->svcs[i]);
        gh_sbuf_printf(o, ",\"servers\":[");
        for (j = 0; j < g->svcs[i].nservers; j++) {
            struct proxy_server *s = &g->svcs[i].servers[j];
            struct proxy_srv_stats *t = s->st;
            char last[200];
            pthread_mutex_lock(&t->mu);
            gh_json_put(last, sizeof(last), t->last_result, strlen(t->last_result), 96);
            pthread_mutex_unlock(&t->mu);
            gh_sbuf_printf(o, "%s{\"name\":", j ? "," : "");
            gh_json_str(o, t->name);
            gh_sbuf_printf(o, ",\"address\":\"%s\",\"weight\":%ld,\"state\":\"%s\","
                    "\"health\":\"%s\",\"checked\":%s,\"last_check\":\"%s\",\"checks_ok\":%llu,"
                    "\"checks_fail\":%llu,\"transitions\":%llu,\"active\":%ld,\"connections\":%ld,"
                    "\"connections_total\":%llu,\"bytes_in\":%llu,"
                    "\"bytes_out\":%llu,\"requests\":{",
                 t->addr, s->weight,
                 s->admin == 0 ? "up" : s->admin == 1 ? "drain" : "maint",
                 atomic_load(&t->up) ? "up" : "down", atomic_load(&t->checked) ? "true" : "false",
                 last, atomic_load(&t->checks_ok), atomic_load(&t->checks_fail),
                 atomic_load(&t->transitions), atomic_load(&t->active),
                 atomic_load(&t->conns), atomic_load(&t->conns_total),
                 atomic_load(&t->bytes_in), atomic_load(&t->bytes_out));
            for (c = 1; c < 6; c++)
                gh_sbuf_printf(o, "%s\"%s\":%llu", c > 1 ? "," : "", classes[c],
                     atomic_load(&t->requests[c]));
            gh_sbuf_printf(o, "},\"latency_sum_ms\":%llu}", atomic_load(&t->lat_sum_ms));
        }
        gh_sbuf_printf(o, "]}");
    }
    {
        const struct store *st = store_current();
        struct store_stats v;
        store_stats(st, &v);
        gh_sbuf_printf(o, "],\"store\":{\"engine\":\"%s\",\"operations\":%llu,\"timeouts\":%llu,"
                          "\"down\":%llu,\"errors\":%llu,\"not_durable\":%llu,\"connects\":%llu,"
                          "\"connected\":%d}}\n",
                       store_engine_name(st), (unsigned long long)v.ops,
                       (unsigned long long)v.timeouts, (unsigned long long)v.down,
                       (unsigned long long)v.errors, (unsigned long long)v.not_durable,
                       (unsigned long long)v.reconnects, v.connected);
    }
}

char *proxy_metrics(int as_json, size_t *len)
{
    struct gh_sbuf o = {NULL, 0, 0};
    struct proxy_gen *g = proxy__gen_current();

    gh_sbuf_printf(&o, "%s", "");
    if (g != NULL) {
        if (as_json)
            json(&o, g);
        else
            prometheus(&o, g);
        proxy_gen_unref(g);
    }
    *len = o.len;
    return o.p;
}
