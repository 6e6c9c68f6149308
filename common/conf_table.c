/*
 * Every directive gatehouse understands, with its context, type, default and
 * bounds. The parser, the writer and the docs test all read this table, so a
 * directive cannot exist in one and be forgotten in the others.
 */
#include "conf.h"

#include <limits.h>
#include <stddef.h>

#define M(f) offsetof(struct gh_conf, f)
#define S(f) offsetof(struct gh_conf_service, f)
#define DAY (86400LL * 1000)

const struct gh_conf_directive gh_conf_directives[] = {
    {"workers", GH_CTX_MAIN, GH_T_WORKERS, M(workers), "auto", 1, 256, NULL},
    {"state-dir", GH_CTX_MAIN, GH_T_STR, M(state_dir), "gatehouse-state", 0, 0, NULL},
    {"error-log", GH_CTX_MAIN, GH_T_STR, M(error_log), "stderr", 0, 0, NULL},
    {"access-log", GH_CTX_MAIN, GH_T_STR, M(access_log), "stderr", 0, 0, NULL},
    {"security-log", GH_CTX_MAIN, GH_T_STR, M(security_log), "stderr", 0, 0, NULL},
    {"log-level", GH_CTX_MAIN, GH_T_STR, M(log_level), "info", 0, 0, "error warn info debug"},
    {"drain-timeout", GH_CTX_MAIN, GH_T_DURATION, M(drain_timeout), "30s", 0, DAY, NULL},
    {"certificate", GH_CTX_MAIN, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"ca", GH_CTX_MAIN, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"service", GH_CTX_MAIN, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},

    {"cert", GH_CTX_CERT, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"key", GH_CTX_CERT, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"file", GH_CTX_CA, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},

    {"listen", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"certificate", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"app", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, "status"},
    {"server", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"reencrypt", GH_CTX_SERVICE, GH_T_SPECIAL, 0, "off", 0, 0, NULL},
    {"scheduler", GH_CTX_SERVICE, GH_T_STR, S(scheduler), "least-conn", 0, 0,
     "least-conn round-robin"},
    {"client-header-timeout", GH_CTX_SERVICE, GH_T_DURATION, S(client_header_timeout), "10s", 1,
     DAY, NULL},
    {"keepalive-timeout", GH_CTX_SERVICE, GH_T_DURATION, S(keepalive_timeout), "75s", 1, DAY,
     NULL},
    {"idle-timeout", GH_CTX_SERVICE, GH_T_DURATION, S(idle_timeout), "1800s", 1, DAY, NULL},
    {"connect-timeout", GH_CTX_SERVICE, GH_T_DURATION, S(connect_timeout), "5s", 1, DAY, NULL},
    {"server-timeout", GH_CTX_SERVICE, GH_T_DURATION, S(server_timeout), "60s", 1, DAY, NULL},
    {"max-request-line", GH_CTX_SERVICE, GH_T_SIZE, S(max_request_line), "8k", 64, 1024 * 1024,
     NULL},
    {"max-header-size", GH_CTX_SERVICE, GH_T_SIZE, S(max_header_size), "64k", 1024,
     1024 * 1024, NULL},
    {"max-headers", GH_CTX_SERVICE, GH_T_INT, S(max_headers), "100", 1, 1000, NULL},
    {"max-chunk-ext", GH_CTX_SERVICE, GH_T_SIZE, S(max_chunk_ext), "1k", 0, 64 * 1024, NULL},
    {"server-keepalive", GH_CTX_SERVICE, GH_T_INT, S(server_keepalive), "64", 0, 10000, NULL},
    {"retries", GH_CTX_SERVICE, GH_T_INT, S(retries), "1", 0, 10, NULL},
};
const size_t gh_conf_ndirectives = sizeof(gh_conf_directives) / sizeof(gh_conf_directives[0]);
