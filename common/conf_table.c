/*
 * Every directive gatehouse understands, with its context, type, default and
 * bounds. The parser, the writer and the docs test all read this table, so a
 * directive cannot exist in one and be forgotten in the others.
 */
#include "conf.h"

#include <limits.h>
#include <stddef.h>
#include <string.h>

#define M(f) offsetof(struct gh_conf, f)
#define S(f) offsetof(struct gh_conf_service, f)
#define I(f) offsetof(struct gh_conf_idp, f)
#define G(f) offsetof(struct gh_conf_idp_group, f)
#define T(f) offsetof(struct gh_conf_store, f)
#define Q(f) offsetof(struct gh_conf_mstore, f)
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
    {"session-table-size", GH_CTX_MAIN, GH_T_INT, M(session_table_size), "16384", 1024,
     4194304, NULL},
    {"join-token-timeout", GH_CTX_MAIN, GH_T_DURATION, M(join_token_timeout), "15m", 1000, DAY,
     NULL},
    /* 1s at least so tests can watch rotations; production values are hours. */
    {"persistence-key-rotation", GH_CTX_MAIN, GH_T_DURATION, M(persist_key_rotation), "24h", 1000,
     365 * DAY, NULL},
    {"slides-kek-file", GH_CTX_MAIN, GH_T_STR, M(slides_kek_file), NULL, 0, 0, NULL},
    {"edge-token-key-file", GH_CTX_MAIN, GH_T_STR, M(edge_token_key_file), NULL, 0, 0, NULL},
    {"require-edge-token", GH_CTX_MAIN, GH_T_STR, M(require_edge_token), "off", 0, 0, "on off"},
    {"saml-rate-per-source", GH_CTX_MAIN, GH_T_INT, M(saml_rate_per_source), "60", 0, 100000,
     NULL},
    {"max-upload-size", GH_CTX_MAIN, GH_T_SIZE, M(max_upload_size), "64m", 1024,
     1024LL * 1024 * 1024, NULL},
    {"admin-session-idle", GH_CTX_MAIN, GH_T_DURATION, M(admin_session_idle), "15m", 60000,
     DAY, NULL},
    {"admin-session-lifetime", GH_CTX_MAIN, GH_T_DURATION, M(admin_session_lifetime), "8h",
     300000, 7 * DAY, NULL},
    {"admin-lockout-failures", GH_CTX_MAIN, GH_T_INT, M(admin_lockout_failures), "5", 1, 100,
     NULL},
    {"admin-lockout-time", GH_CTX_MAIN, GH_T_DURATION, M(admin_lockout_time), "15m", 60000, DAY,
     NULL},
    {"identity-provider", GH_CTX_MAIN, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"identity-provider-group", GH_CTX_MAIN, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"store", GH_CTX_MAIN, GH_T_SPECIAL, 0, "local", 0, 0, "local redis"},
    {"meetings-store", GH_CTX_MAIN, GH_T_SPECIAL, 0, "sqlite", 0, 0, "sqlite postgresql"},
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
    {"certificate-coverage", GH_CTX_SERVICE, GH_T_STR, S(certificate_coverage), "error", 0, 0,
     "error warn"},
    {"app", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, "status management conference admin"},
    {"server", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"check", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"persistence", GH_CTX_SERVICE, GH_T_SPECIAL, 0, "off", 0, 0, NULL},
    {"mode", GH_CTX_SERVICE, GH_T_STR, S(mode), "http", 0, 0, "http tcp udp"},
    {"enabled", GH_CTX_SERVICE, GH_T_STR, S(enabled), "on", 0, 0, "on off"},
    {"validate-join-token", GH_CTX_SERVICE, GH_T_STR, S(validate_join_token), "off", 0, 0,
     "on off"},
    {"tls", GH_CTX_SERVICE, GH_T_STR, S(tls_mode), "terminate", 0, 0, "terminate passthrough"},
    {"flow-timeout", GH_CTX_SERVICE, GH_T_DURATION, S(flow_timeout), "60s", 1000, DAY, NULL},
    {"max-flows", GH_CTX_SERVICE, GH_T_INT, S(max_flows), "65536", 16, 16777216, NULL},
    {"reencrypt", GH_CTX_SERVICE, GH_T_SPECIAL, 0, "off", 0, 0, NULL},
    {"client-certificate", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"scheduler", GH_CTX_SERVICE, GH_T_STR, S(scheduler), "least-conn", 0, 0,
     "least-conn round-robin source-hash"},
    /* Timeouts. keepalive, tunnel, server and client-body have no default of their
     * own: they follow the service's idle-timeout (gh_conf_timeouts, below). */
    {"client-header-timeout", GH_CTX_SERVICE, GH_T_DURATION, S(client_header_timeout), "10s", 1,
     DAY, NULL},
    {"keepalive-timeout", GH_CTX_SERVICE, GH_T_DURATION, S(keepalive_timeout), NULL, 1, DAY,
     NULL},
    {"idle-timeout", GH_CTX_SERVICE, GH_T_DURATION, S(idle_timeout), "1800s", 1, DAY, NULL},
    {"tunnel-timeout", GH_CTX_SERVICE, GH_T_DURATION, S(tunnel_timeout), NULL, 1, DAY, NULL},
    {"connect-timeout", GH_CTX_SERVICE, GH_T_DURATION, S(connect_timeout), "5s", 1, DAY, NULL},
    {"server-timeout", GH_CTX_SERVICE, GH_T_DURATION, S(server_timeout), NULL, 1, DAY, NULL},
    {"client-body-timeout", GH_CTX_SERVICE, GH_T_DURATION, S(client_body_timeout), NULL, 1, DAY,
     NULL},
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
    {"allowed-dirs-case", GH_CTX_SERVICE, GH_T_STR, S(allowed_dirs_case), "sensitive", 0, 0,
     "sensitive insensitive"},
    {"allowed-methods", GH_CTX_SERVICE, GH_T_LIST, S(allowed_methods),
     "GET HEAD POST PUT DELETE OPTIONS PATCH", 0, 0, NULL},
    {"rule-set", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"sni-host-match", GH_CTX_SERVICE, GH_T_STR, S(sni_host_match), "on", 0, 0, "on off"},
    {"sni-default", GH_CTX_SERVICE, GH_T_STR, S(sni_default), "on", 0, 0, "on off"},
    {"merge-slashes", GH_CTX_SERVICE, GH_T_STR, S(merge_slashes), "on", 0, 0, "on off"},
    {"encoded-slash", GH_CTX_SERVICE, GH_T_STR, S(encoded_slash), "refuse", 0, 0,
     "refuse allow"},
    {"server-header", GH_CTX_SERVICE, GH_T_STR, S(server_header), "strip", 0, 0, "strip pass"},
    {"request-header", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"response-header", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"rewrite-host", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"strip-version-headers", GH_CTX_SERVICE, GH_T_STR, S(strip_version_headers), "on", 0, 0,
     "on off"},
    {"max-conns-per-source", GH_CTX_SERVICE, GH_T_INT, S(max_conns_per_source), "0", 0, 1000000,
     NULL},
    {"conn-rate-per-source", GH_CTX_SERVICE, GH_T_INT, S(conn_rate_per_source), "0", 0, 1000000,
     NULL},
    {"request-rate-per-source", GH_CTX_SERVICE, GH_T_INT, S(request_rate_per_source), "0", 0,
     1000000, NULL},
    {"request-burst-per-source", GH_CTX_SERVICE, GH_T_INT, S(request_burst_per_source), "0", 0,
     10000000, NULL},
    {"limit-action", GH_CTX_SERVICE, GH_T_STR, S(limit_action), "429", 0, 0, "429 close"},
    {"redirect", GH_CTX_SERVICE, GH_T_SPECIAL, 0, NULL, 0, 0, NULL},
    {"allowed-upgrades", GH_CTX_SERVICE, GH_T_LIST, S(allowed_upgrades), "websocket", 0, 0, NULL},
    {"upgrade-action", GH_CTX_SERVICE, GH_T_STR, S(upgrade_action), "strip", 0, 0,
     "strip refuse"},
    {"underscore-headers", GH_CTX_SERVICE, GH_T_STR, S(underscore_headers), "drop", 0, 0,
     "drop refuse"},
    {"trusted-proxies", GH_CTX_SERVICE, GH_T_LIST, S(trusted_proxies), NULL, 0, 0, NULL},
    {"metrics-allow", GH_CTX_SERVICE, GH_T_LIST, S(metrics_allow), "127.0.0.0/8 ::1", 0, 0,
     NULL},
    {"metrics-token-file", GH_CTX_SERVICE, GH_T_STR, S(metrics_token_file), NULL, 0, 0, NULL},

    {"description", GH_CTX_IDP, GH_T_STR, I(description), NULL, 0, 0, NULL},
    {"uuid", GH_CTX_IDP, GH_T_STR, I(uuid), NULL, 0, 0, NULL},
    {"sp-certificate", GH_CTX_IDP, GH_T_STR, I(sp_certificate), NULL, 0, 0, NULL},
    {"acs-url", GH_CTX_IDP, GH_T_LIST, I(acs_urls), NULL, 0, 0, NULL},
    {"acs-from-services", GH_CTX_IDP, GH_T_STR, I(acs_from_services), "off", 0, 0, "on off"},
    {"sp-entity-id", GH_CTX_IDP, GH_T_STR, I(sp_entity_id), NULL, 0, 0, NULL},
    {"signature-algorithm", GH_CTX_IDP, GH_T_STR, I(signature_algorithm), "rsa-sha256", 0, 0,
     "rsa-sha256 rsa-sha384 rsa-sha512 rsa-sha1"},
    {"digest-algorithm", GH_CTX_IDP, GH_T_STR, I(digest_algorithm), "sha256", 0, 0,
     "sha256 sha384 sha512 sha1"},
    {"allow-sha1", GH_CTX_IDP, GH_T_STR, I(allow_sha1), "off", 0, 0, "on off"},
    {"idp-certificate", GH_CTX_IDP, GH_T_LIST, I(idp_certificates), NULL, 0, 0, NULL},
    {"idp-sso-url", GH_CTX_IDP, GH_T_STR, I(idp_sso_url), NULL, 0, 0, NULL},
    {"idp-entity-id", GH_CTX_IDP, GH_T_STR, I(idp_entity_id), NULL, 0, 0, NULL},
    {"display-name-attribute", GH_CTX_IDP, GH_T_STR, I(display_name_attribute), "NameID", 0, 0,
     NULL},
    {"require-encryption", GH_CTX_IDP, GH_T_STR, I(require_encryption), "off", 0, 0, "on off"},
    {"clock-skew", GH_CTX_IDP, GH_T_DURATION, I(clock_skew), "90s", 0, 3600 * 1000, NULL},
    {"session-timeout", GH_CTX_IDP, GH_T_DURATION, I(session_timeout), "8h", 60 * 1000, DAY,
     NULL},
    {"max-response-size", GH_CTX_IDP, GH_T_SIZE, I(max_response_size), "256k", 4096,
     4 * 1024 * 1024, NULL},

    {"description", GH_CTX_IDP_GROUP, GH_T_STR, G(description), NULL, 0, 0, NULL},
    {"identity-providers", GH_CTX_IDP_GROUP, GH_T_LIST, G(members), NULL, 0, 0, NULL},

    {"sentinels", GH_CTX_STORE, GH_T_LIST, T(sentinels), NULL, 0, 0, NULL},
    {"master", GH_CTX_STORE, GH_T_STR, T(master), NULL, 0, 0, NULL},
    {"address", GH_CTX_STORE, GH_T_STR, T(address), NULL, 0, 0, NULL},
    {"user", GH_CTX_STORE, GH_T_STR, T(user), NULL, 0, 0, NULL},
    {"password-file", GH_CTX_STORE, GH_T_STR, T(password_file), NULL, 0, 0, NULL},
    {"prefix", GH_CTX_STORE, GH_T_STR, T(prefix), "gatehouse:", 0, 0, NULL},
    {"timeout", GH_CTX_STORE, GH_T_DURATION, T(timeout), "50ms", 1, 10000, NULL},
    {"wait-replicas", GH_CTX_STORE, GH_T_INT, T(wait_replicas), "1", 0, 8, NULL},
    {"appliances", GH_CTX_STORE, GH_T_INT, T(appliances), "1", 1, 64, NULL},
    {"session-cache", GH_CTX_STORE, GH_T_DURATION, T(session_cache), "30s", 0, 3600 * 1000, NULL},
    {"name", GH_CTX_STORE, GH_T_STR, T(name), NULL, 0, 0, NULL},
    {"share-config", GH_CTX_STORE, GH_T_STR, T(share_config), "off", 0, 0, "on off"},

    {"conninfo", GH_CTX_MSTORE, GH_T_STR, Q(conninfo), NULL, 0, 0, NULL},
    {"password-file", GH_CTX_MSTORE, GH_T_STR, Q(password_file), NULL, 0, 0, NULL},
    {"timeout", GH_CTX_MSTORE, GH_T_DURATION, Q(timeout), "5s", 100, 60000, NULL},
};
const size_t gh_conf_ndirectives = sizeof(gh_conf_directives) / sizeof(gh_conf_directives[0]);

/*
 * The seeds set one number per virtual service, "1800 in the Idle Connection
 * Timeout", and Lync and Pexip long polls last minutes: so idle-timeout bounds
 * every wait for the other side once a connection is in use, and the narrower
 * bounds below apply only where a service writes them. A written value may be
 * larger than idle-timeout; it is used as written. The parser resolves these
 * after each service block (conf_parse.c), the writer prints every row, and
 * docs/config.md has one table of them, checked against this one.
 * A follows target comes before the rows that follow it.
 */
const struct gh_conf_timeout gh_conf_timeouts[] = {
    {"idle-timeout", NULL},
    {"keepalive-timeout", "idle-timeout"},
    {"server-timeout", "idle-timeout"},
    {"tunnel-timeout", "idle-timeout"},
    {"client-body-timeout", "idle-timeout"},
    {"client-header-timeout", NULL}, /* against slowloris: its own short default */
    {"connect-timeout", NULL},
    {"queue-timeout", NULL},
    {"flow-timeout", NULL}, /* mode udp: a datagram flow, not a connection */
};
const size_t gh_conf_ntimeouts = sizeof(gh_conf_timeouts) / sizeof(gh_conf_timeouts[0]);

const struct gh_conf_timeout *gh_conf_timeout_find(const char *name)
{
    size_t i;

    for (i = 0; i < gh_conf_ntimeouts; i++)
        if (strcmp(gh_conf_timeouts[i].name, name) == 0)
            return &gh_conf_timeouts[i];
    return NULL;
}

/* The variables of a redirect location. A name runs over letters, digits
 * and '_', so "$paths" is an unknown name rather than "$path" and an "s". */
enum gh_conf_locvar gh_conf_locvar(const char *s, size_t *len)
{
    static const char *const names[] = {"host", "path", "query"};
    size_t n = 1, i;

    while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
           (s[n] >= '0' && s[n] <= '9') || s[n] == '_')
        n++;
    *len = n;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == n - 1 && memcmp(names[i], s + 1, n - 1) == 0)
            return (enum gh_conf_locvar)i;
    return GH_LOCVAR_UNKNOWN;
}
