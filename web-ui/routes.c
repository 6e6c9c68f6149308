/*
 * Every path of the admin application, who may use it and what handles it.
 * Read top to bottom it is the API's map; router.c matches it. GET routes
 * answer HEAD too. A role below a route's need gets 403 with the route's
 * words; a path no route has gets 404, a known path with another method
 * 405, and neither is told to a caller that is not signed in.
 */
#include "webui_int.h"

#define CFG "your role may not change the configuration"
#define OPS "your role may not do this"
#define PUB WEBUI_NEED_PUBLIC
#define ANY WEBUI_NEED_SIGNED_IN

const struct webui_route webui__routes[] = {
    /* probes, the sign-in page and the page's files: before any session */
    {"GET", "/healthcheck.html", PUB, NULL, webui__r_health},
    {"GET", "/metrics", PUB, NULL, webui__r_metrics}, /* the listener's metrics guard applies */
    {"GET", "/login", PUB, NULL, webui__r_login_page},
    {"POST", "/login", PUB, NULL, webui__r_login},
    {"GET", "/admin.css", PUB, NULL, webui__r_asset},
    {"GET", "/admin.js", PUB, NULL, webui__r_asset},
    {"GET", "/admin-forms.js", PUB, NULL, webui__r_asset},
    {"GET", "/favicon.ico", PUB, NULL, webui__r_favicon},

    {"GET", "/", ANY, NULL, webui__r_home},
    {"POST", "/logout", ANY, NULL, webui__r_logout},
    {"POST", "/api/v1/password", ANY, NULL, webui__r_password}, /* one's own, re-authenticated */
    {"GET", "/api/v1/whoami", ANY, NULL, webui__r_whoami},
    {"GET", "/api/v1/session", ANY, NULL, webui__r_session},
    {"GET", "/api/v1/stats", ANY, NULL, webui__r_stats},
    {"GET", "/api/v1/stats/history", ANY, NULL, webui__r_stats_history},
    {"GET", "/api/v1/config", ANY, NULL, webui__r_config},
    {"GET", "/api/v1/cluster", ANY, NULL, webui__r_cluster},
    {"GET", "/api/v1/config/history", ANY, NULL, webui__r_history},
    {"GET", "/api/v1/config/history/{}", ANY, NULL, webui__r_history_get},
    {"POST", "/api/v1/config/rollback", WEBUI_NEED_CONFIG, CFG, webui__r_rollback},

    {"POST", "/api/v1/servers/{}/{}/state", WEBUI_NEED_SERVER_STATE, OPS, webui__r_server_state},
    {"POST", "/api/v1/servers/{}/{}/weight", WEBUI_NEED_CONFIG, OPS, webui__r_server_weight},

    {"GET", "/api/v1/services", ANY, NULL, webui__r_services},
    {"POST", "/api/v1/services", WEBUI_NEED_CONFIG, CFG, webui__r_service_add},
    {"GET", "/api/v1/services/{}/block", ANY, NULL, webui__r_service_block},
    {"POST", "/api/v1/services/{}/block", WEBUI_NEED_CONFIG, CFG, webui__r_service_replace},
    {"POST", "/api/v1/services/{}/delete", WEBUI_NEED_CONFIG, CFG, webui__r_service_delete},

    {"POST", "/api/v1/blocks/{}", WEBUI_NEED_CONFIG, CFG, webui__r_block_add},
    {"GET", "/api/v1/blocks/{}/{}", ANY, NULL, webui__r_block_get},
    {"POST", "/api/v1/blocks/{}/{}", WEBUI_NEED_CONFIG, CFG, webui__r_block_modify},
    {"POST", "/api/v1/blocks/{}/{}/delete", WEBUI_NEED_CONFIG, CFG, webui__r_block_delete},

    {"POST", "/api/v1/transactions", WEBUI_NEED_CONFIG, CFG, webui__r_tx_open},
    {"GET", "/api/v1/transactions/{}", WEBUI_NEED_CONFIG, CFG, webui__r_tx_get},
    {"POST", "/api/v1/transactions/{}", WEBUI_NEED_CONFIG, CFG, webui__r_tx_stage},
    {"POST", "/api/v1/transactions/{}/commit", WEBUI_NEED_CONFIG, CFG, webui__r_tx_commit},
    {"POST", "/api/v1/transactions/{}/discard", WEBUI_NEED_CONFIG, CFG, webui__r_tx_discard},

    {"GET", "/api/v1/rule-sets", ANY, NULL, webui__r_rule_sets},
    {"POST", "/api/v1/rules/test", ANY, NULL, webui__r_rules_test}, /* changes nothing */

    {"GET", "/api/v1/certificates", ANY, NULL, webui__r_certificates},
    {"POST", "/api/v1/certificates/selfsigned", WEBUI_NEED_CONFIG,
     "your role may not change certificates", webui__r_cert_selfsigned},
    {"POST", "/api/v1/certificates/csr", WEBUI_NEED_CONFIG,
     "your role may not change certificates", webui__r_cert_csr},
    {"POST", "/api/v1/certificates/{}/issued", WEBUI_NEED_CONFIG,
     "your role may not change certificates", webui__r_cert_issued},
    {"POST", "/api/v1/certificates/{}/import", WEBUI_NEED_CONFIG,
     "your role may not change certificates", webui__r_cert_import},

    {"GET", "/api/v1/identity-providers", ANY, NULL, webui__r_idps},
    {"GET", "/api/v1/identity-providers/{}/metadata", ANY, NULL, webui__r_idp_metadata},
    {"POST", "/api/v1/identity-providers/import", WEBUI_NEED_CONFIG, CFG, webui__r_idp_import},

    {"GET", "/api/v1/meetings", ANY, NULL, webui__r_meetings},
    {"POST", "/api/v1/meetings", WEBUI_NEED_CONFIG, "your role may not create meetings",
     webui__r_meeting_create},
    {"POST", "/api/v1/meetings/{}", WEBUI_NEED_CONFIG, "your role may not change meetings",
     webui__r_meeting_modify},
    {"POST", "/api/v1/meetings/{}/waiting/{}/admit", WEBUI_NEED_SERVER_STATE, OPS,
     webui__r_meeting_admit},
    {"POST", "/api/v1/meetings/{}/waiting/{}/refuse", WEBUI_NEED_SERVER_STATE, OPS,
     webui__r_meeting_refuse},
    {"POST", "/api/v1/meetings/{}/pin-reset", WEBUI_NEED_SERVER_STATE, OPS,
     webui__r_meeting_pin_reset},
    {"POST", "/api/v1/meetings/{}/end", WEBUI_NEED_SERVER_STATE, OPS, webui__r_meeting_end},
    {"POST", "/api/v1/meetings/{}/reopen", WEBUI_NEED_SERVER_STATE, OPS, webui__r_meeting_reopen},
    {"POST", "/api/v1/meetings/{}/delete", WEBUI_NEED_CONFIG, OPS, webui__r_meeting_delete},

    {"GET", "/api/v1/logs/security", ANY, NULL, webui__r_log_security},
    {"GET", "/api/v1/logs/audit", WEBUI_NEED_USERS_OR_CONFIG,
     "the audit log is for admins and user admins", webui__r_log_audit},

    {"GET", "/api/v1/users", WEBUI_NEED_USERS, "only user admins manage users", webui__r_users},
    {"POST", "/api/v1/users", WEBUI_NEED_USERS, "only user admins manage users",
     webui__r_user_add},
    {"POST", "/api/v1/users/{}/unlock", WEBUI_NEED_USERS, "only user admins manage users",
     webui__r_user_unlock},
    {"POST", "/api/v1/users/{}/delete", WEBUI_NEED_USERS, "only user admins manage users",
     webui__r_user_delete},
    {"GET", "/api/v1/sessions", WEBUI_NEED_USERS_OR_CONFIG,
     "sessions are for admins and user admins", webui__r_sessions},
    {"POST", "/api/v1/sessions/{}/end", WEBUI_NEED_USERS_OR_CONFIG,
     "sessions are for admins and user admins", webui__r_session_end},

    {"POST", "/api/v1/system/backup", WEBUI_NEED_CONFIG, "backup and restore are for admins",
     webui__r_backup},
    {"POST", "/api/v1/system/restore", WEBUI_NEED_CONFIG, "backup and restore are for admins",
     webui__r_restore},
};

const size_t webui__nroutes = sizeof(webui__routes) / sizeof(webui__routes[0]);
