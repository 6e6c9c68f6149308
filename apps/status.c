/*
 * The status application: GET /healthcheck.html answers 200 while the
 * process is healthy (every worker's event loop turned within 3 s and the
 * process is not draining) and 503 otherwise, which is what load-balancer
 * probes act on. GET / shows a small status page. The management variant
 * (cls points at a non-zero int) also serves /metrics and /api/v1/stats.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "apps_int.h"

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)(uintptr_t)body,
                                        MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result apps__status_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **con_cls)
{
    struct apps_status st;
    char page[2048];

    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) {
        /* First call carries only the head; answer on the second. */
        *con_cls = conn;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, 405, "text/plain", "method not allowed\n");
    memset(&st, 0, sizeof(st));
    apps__hooks->status(&st);
    if (strcmp(url, "/healthcheck.html") == 0)
        return st.healthy ? reply(conn, 200, "text/html", "<html><body>OK</body></html>\n")
                          : reply(conn, 503, "text/html",
                                  "<html><body>UNAVAILABLE</body></html>\n");
    if (*(const int *)cls && (strcmp(url, "/metrics") == 0 || strcmp(url, "/api/v1/stats") == 0)) {
        size_t len = 0;
        int json = url[1] == 'a';
        char *body = apps__hooks->metrics(json, &len);
        struct MHD_Response *r =
            MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        enum MHD_Result ret;
        if (r == NULL) {
            free(body);
            return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type",
                                json ? "application/json"
                                     : "text/plain; version=0.0.4; charset=utf-8");
        MHD_add_response_header(r, "Cache-Control", "no-store");
        ret = MHD_queue_response(conn, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (strcmp(url, "/") == 0 || strcmp(url, "/status") == 0) {
        snprintf(page, sizeof(page),
                 "<!DOCTYPE html><html><head><title>gatehouse status</title></head><body>"
                 "<h1>gatehouse %s</h1><table>"
                 "<tr><th>health</th><td>%s</td></tr>"
                 "<tr><th>uptime</th><td>%llu s</td></tr>"
                 "<tr><th>workers</th><td>%d of %d turning</td></tr>"
                 "<tr><th>connections</th><td>%llu open, %llu accepted</td></tr>"
                 "<tr><th>requests</th><td>%llu</td></tr>"
                 "<tr><th>refused</th><td>%llu</td></tr>"
                 "<tr><th>configuration</th><td>generation %llu</td></tr>"
                 "</table></body></html>\n",
                 GH_VERSION, st.healthy ? "healthy" : "UNHEALTHY",
                 (unsigned long long)((gh_now_ms() - apps__started_ms) / 1000), st.healthy_workers,
                 st.workers, (unsigned long long)st.conns_active,
                 (unsigned long long)st.conns_total, (unsigned long long)st.requests,
                 (unsigned long long)st.refused, (unsigned long long)st.generation);
        return reply(conn, 200, "text/html; charset=utf-8", page);
    }
    return reply(conn, 404, "text/plain", "not found\n");
}
