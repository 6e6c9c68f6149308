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
    {"rules", GH_CTX_MAIN, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"source-table-size", GH_CTX_MAIN, GH_T_INT, M(source_table_size), "65536", 1024, 16777216,
     NULL},
    {"rule", GH_CTX_RULES, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},

    {"cert", GH_CTX_CERT, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"key", GH_CTX_CERT, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"pkcs12", GH_CTX_CERT, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"passphrase-file", GH_CTX_CERT, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"ocsp-response", GH_CTX_CERT, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"file", GH_CTX_CA, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},

    {"listen", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"certificate", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"tls-versions", GH_CTX_SERVICE, GH_T_LIST, S(tls_versions), "1.2 1.3", 0, 0, NULL},
    {"hsts-max-age", GH_CTX_SERVICE, GH_T_INT, S(hsts_max_age), "0", 0, 100000000, NULL},
    {"app", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, "status management"},
    {"server", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"check", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"persistence", GH_CTX_SERVICE, GH_T_SPECIAL, 0, "off", 0, 0, NULL},
    {"reencrypt", GH_CTX_SERVICE, GH_T_SPECIAL, 0, "off", 0, 0, NULL},
    {"client-certificate", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"scheduler", GH_CTX_SERVICE, GH_T_STR, S(scheduler), "least-conn", 0, 0,
     "least-conn round-robin source-hash"},
    {"client-header-timeout", GH_CTX_SERVICE, GH_T_DURATION, S(client_header_timeout), "10s", 1,
     DAY, NULL},
    {"keepalive-timeout", GH_CTX_SERVICE, GH_T_DURATION, S(keepalive_timeout), "75s", 1, DAY,
     NULL},
    {"idle-timeout", GH_CTX_SERVICE, GH_T_DURATION, S(idle_timeout), "1800s", 1, DAY, NULL},
    {"tunnel-timeout", GH_CTX_SERVICE, GH_T_DURATION, S(tunnel_timeout), "1800s", 1, DAY, NULL},
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
    {"queue-size", GH_CTX_SERVICE, GH_T_INT, S(queue_size), "1024", 0, 1000000, NULL},
    {"queue-timeout", GH_CTX_SERVICE, GH_T_DURATION, S(queue_timeout), "5s", 1, DAY, NULL},
    {"allowed-hosts", GH_CTX_SERVICE, GH_T_LIST, S(allowed_hosts), NULL, 0, 0, NULL},
    {"allowed-dirs", GH_CTX_SERVICE, GH_T_LIST, S(allowed_dirs), NULL, 0, 0, NULL},
    {"allowed-methods", GH_CTX_SERVICE, GH_T_LIST, S(allowed_methods),
     "GET HEAD POST PUT DELETE OPTIONS PATCH", 0, 0, NULL},
    {"rule-set", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"sni-host-match", GH_CTX_SERVICE, GH_T_STR, S(sni_host_match), "on", 0, 0, "on off"},
    {"merge-slashes", GH_CTX_SERVICE, GH_T_STR, S(merge_slashes), "on", 0, 0, "on off"},
    {"encoded-slash", GH_CTX_SERVICE, GH_T_STR, S(encoded_slash), "refuse", 0, 0,
     "refuse allow"},
    {"server-header", GH_CTX_SERVICE, GH_T_STR, S(server_header), "strip", 0, 0, "strip pass"},
    {"max-conns-per-source", GH_CTX_SERVICE, GH_T_INT, S(max_conns_per_source), "0", 0, 1000000,
     NULL},
    {"conn-rate-per-source", GH_CTX_SERVICE, GH_T_INT, S(conn_rate_per_source), "0", 0, 1000000,
     NULL},
    {"request-rate-per-source", GH_CTX_SERVICE, GH_T_INT, S(request_rate_per_source), "0", 0,
     1000000, NULL},
    {"request-burst-per-source", GH_CTX_SERVICE, GH_T_INT, S(request_burst_per_source), "0", 0,
     10000000, NULL},
    {"limit-action", GH_CTX_SERVICE, GH_T_STR, S(limit_action), "429", 0, 0, "429 close"},
};
const size_t gh_conf_ndirectives = sizeof(gh_conf_directives) / sizeof(gh_conf_directives[0]);
