/*
 * Configuration: a hand-written lexer and parser for the block syntax, the
 * model it produces, the checks that need the whole model (references), and a
 * canonical writer. Parsing has no side effects: no file other than the
 * config itself is opened, no socket is made. Errors are "file:line:col: msg".
 *
 *   # comment
 *   workers auto
 *   certificate web { cert /etc/gh/web.pem  key /etc/gh/web.key }
 *   service meet-ext {
 *       listen 0.0.0.0:443
 *       certificate web
 *       server fe1 10.0.0.2:4443 weight 2
 *   }
 *
 * Directives are declared in one table (conf_table.c) with their context,
 * type, default and bounds; docs/config.md is checked against that table.
 */
#ifndef GH_COMMON_CONF_H
#define GH_COMMON_CONF_H

#include <stddef.h>

struct gh_loc {
    int line;
    int col;
};

struct gh_conf_server {
    char *name;       /* owned */
    char *addr;       /* owned; "ip:port" */
    char *verify_name; /* owned; NULL: verify the address itself */
    char *state;      /* owned; "up", "drain" or "maint" */
    long long weight;
    long long maxconn; /* requests in flight at most; 0: unlimited */
    char *pin;        /* owned; lower-case hex SHA-256 of the server's certificate, or NULL */
    struct gh_loc loc;
};

/* A list of words from one or more lines of the same directive. */
struct gh_conf_list {
    char **v; /* owned, each owned */
    size_t n;
    int set;  /* the directive appeared */
    struct gh_loc loc;
};

struct gh_conf_rule {
    char *id;       /* owned */
    char *action;   /* owned: deny, allow, redirect, log */
    long long status; /* deny: 400-599; redirect: 301, 302, 303, 307, 308 */
    char *target;   /* owned: redirect location, or NULL */
    char *field;    /* owned: method, path, query, header, source */
    char *header;   /* owned: header name for field header, or NULL */
    char *op;       /* owned: exact, prefix, regex, cidr */
    char *value;    /* owned */
    struct gh_loc loc, value_loc;
};

struct gh_conf_ruleset {
    char *name; /* owned */
    struct gh_conf_rule *rules;
    size_t nrules;
    struct gh_loc loc;
};

/* Active health check of a service's real servers. */
struct gh_conf_check {
    int enabled;
    char *method;  /* owned; GET or HEAD (HTTP), TCP (connect), TLS (handshake), SEND (send,
                    * then expect a reply starting with recv) */
    char *url;     /* owned; HTTP checks, else NULL */
    char *send, *recv; /* owned; SEND checks: as written, \r \n \t \\ \xHH escapes */
    long long port; /* 0: the server's own port */
    long long interval, timeout; /* ms */
    long long rise, fall, expect;
    char *body;    /* owned; substring the body must hold, or NULL */
    int start_up;  /* servers start up (1) or down until proven up (0) */
    struct gh_loc loc;
};

/* Header rules of one service (conf_headers.c), each list in the order
 * written: request-header and response-header lines, and rewrite-host. */
enum gh_conf_hdr_op { GH_HDR_ADD, GH_HDR_SET, GH_HDR_REMOVE };
struct gh_conf_hdr_rule {
    enum gh_conf_hdr_op op;
    char *name;  /* owned; a token, as written */
    char *value; /* owned; NULL for remove */
    struct gh_loc loc;
};
struct gh_conf_host_rewrite {
    char *internal;        /* owned; lower-case host name or address, no port */
    char *public_host;     /* owned; lower-case */
    long long public_port; /* 0: the service's listening port */
    struct gh_loc loc;
};
struct gh_conf_headers {
    struct gh_conf_hdr_rule *req, *resp; /* owned arrays */
    size_t nreq, nresp;
    struct gh_conf_host_rewrite *rewrites; /* owned array */
    size_t nrewrites;
};

struct gh_conf_service {
    char *name;        /* owned */
    char *listen;      /* owned; "ip:port" */
    char *certificate; /* owned; the default (first) certificate; NULL: plain HTTP */
    struct gh_conf_list certificates; /* all of them, chosen by SNI */
    struct gh_conf_list tls_versions; /* "1.2 1.3" by default */
    long long hsts_max_age;           /* seconds; 0: no Strict-Transport-Security */
    char *certificate_coverage;       /* owned; "error" or "warn": an allowed host that no
                                       * certificate of the service covers */
    char *app;         /* owned; built-in application target, or NULL */
    char *scheduler;   /* owned; "least-conn" or "round-robin" */
    char *reencrypt;   /* owned; "off", "pinned", or the name of a ca block to verify with */
    char *client_certificate; /* owned; certificate shown to real servers (mutual TLS) */
    struct gh_loc client_certificate_loc;
    /* Timeouts, ms, each the effective value (gh_conf_timeouts in conf_table.c):
     * one not written in the block has taken the service's idle_timeout
     * already when it follows idle-timeout, its own default otherwise. */
    long long client_header_timeout; /* TLS handshake and a request head */
    long long keepalive_timeout;     /* an idle client connection between requests */
    long long idle_timeout;          /* any wait for the other side once in use */
    long long tunnel_timeout;        /* silence both ways in a WebSocket tunnel */
    long long connect_timeout;       /* TCP + TLS to a real server */
    long long server_timeout;        /* a real server starting its response */
    long long client_body_timeout;   /* silence in a request body from the client */
    long long max_request_line;
    long long max_header_size;
    long long max_headers;
    long long max_chunk_ext;
    long long server_keepalive;      /* idle real-server connections kept per worker */
    long long retries;
    long long queue_size;    /* requests waiting for a server slot, across workers */
    long long queue_timeout; /* ms */
    struct gh_conf_list allowed_hosts;   /* empty refuses everything; "*" allows all */
    struct gh_conf_list allowed_dirs;    /* globs on the normalised path */
    char *allowed_dirs_case;             /* owned; "sensitive" or "insensitive" matching */
    struct gh_conf_list allowed_methods;
    char *rule_set;                      /* owned; NULL: none */
    char *sni_host_match;                /* owned; "on" or "off" */
    char *sni_default;                   /* owned; "on": the listener's first certificate answers
                                          * a server name no certificate names; "off": refused */
    char *merge_slashes;                 /* owned; "on" or "off" */
    char *encoded_slash;                 /* owned; "refuse" or "allow" */
    char *server_header;                 /* owned; "strip" or "pass" */
    char *strip_version_headers;         /* owned; "on" or "off" (conf_headers.c) */
    struct gh_conf_headers headers;      /* request-header, response-header, rewrite-host */
    long long max_conns_per_source;      /* 0: unlimited */
    long long conn_rate_per_source;      /* new connections per second; 0: unlimited */
    long long request_rate_per_source;   /* requests per second; 0: unlimited */
    long long request_burst_per_source;  /* bucket size; 0: equal to the rate */
    char *limit_action;                  /* owned; "429" or "close" */
    long long redirect_https;            /* 0: off; else the status of `redirect https` */
    long long redirect_https_port;       /* 0: not written (443, left out of Location) */
    struct gh_loc redirect_loc;
    struct gh_conf_list allowed_upgrades; /* "websocket" (default) or "none" */
    char *upgrade_action;                /* owned; "strip" or "refuse" other upgrades */
    char *underscore_headers;            /* owned; "drop" or "refuse" names with '_' */
    struct gh_conf_list trusted_proxies; /* CIDRs whose X-Forwarded-For is believed */
    struct gh_conf_list metrics_allow;   /* CIDRs that may scrape /metrics without a token */
    char *metrics_token_file;            /* owned; a bearer token for /metrics, or NULL */
    struct gh_loc rule_set_loc;
    struct gh_conf_check check;
    char *mode;               /* owned; "http" (default), "tcp" or "udp" */
    char *enabled;            /* owned; "on" (default) or "off": checked, kept, not served */
    char *validate_join_token; /* owned; "off" (default) or "on": the edge's join token check */
    char *tls_mode;           /* owned; tcp: "terminate" (default) or "passthrough" */
    long long flow_timeout;   /* udp: ms a flow lives without a datagram */
    long long max_flows;      /* udp: flows kept at most, per service */
    char *persistence;        /* owned; "off", "source-ip" or "cookie" */
    char *cookie_name;        /* owned; cookie persistence */
    long long persist_mask;   /* source-ip: prefix bits kept (IPv4; IPv6 uses 64 if unset) */
    long long persist_timeout; /* ms */
    struct gh_conf_server *servers; /* owned array */
    size_t nservers;
    struct gh_loc loc;
    struct gh_loc end_loc; /* just after the block's closing brace */
    struct gh_loc cert_loc, app_loc, reencrypt_loc, listen_loc;
};

struct gh_conf_cert {
    char *name; /* owned */
    char *cert; /* owned; PEM chain, or NULL with pkcs12 */
    char *key;  /* owned; PEM key, or NULL with pkcs12 */
    char *pkcs12;          /* owned; PKCS#12 file, or NULL */
    char *passphrase_file; /* owned; its passphrase on the first line, or NULL */
    char *ocsp_response;   /* owned; DER OCSP response to staple, or NULL */
    struct gh_loc loc, cert_loc, key_loc;
};

struct gh_conf_ca {
    char *name; /* owned */
    char *file; /* owned; PEM bundle */
    struct gh_loc loc, file_loc;
};

/* A SAML 2.0 identity provider, with the fields of the seeds (Pexip
 * "Identity Providers"). The block name is the name shown to participants. */
struct gh_conf_idp {
    char *name;        /* owned; shown to participants */
    char *description; /* owned */
    char *uuid;        /* owned; lower-case 8-4-4-4-12 hex; names the ACS URL */
    char *sp_certificate; /* owned; certificate block: our signing and decryption key (RSA) */
    struct gh_conf_list acs_urls;   /* https://<webapp_FQDN>/api/v1/samlconsumer/<uuid> */
    char *acs_from_services;        /* owned; "on": add one per FQDN the services answer to */
    char *sp_entity_id;             /* owned; "SAML 2.0 Entity ID for this service" */
    char *signature_algorithm;      /* owned; rsa-sha256 ... */
    char *digest_algorithm;         /* owned; sha256 ... */
    char *allow_sha1;               /* owned; "on" accepts SHA-1 from the IdP and for us */
    struct gh_conf_list idp_certificates; /* PEM files; several for key rollover */
    char *idp_sso_url;              /* owned; HTTP-Redirect SingleSignOnService */
    char *idp_entity_id;            /* owned */
    char *display_name_attribute;   /* owned; "NameID", "" (participant types it) or a name */
    char *require_encryption;       /* owned; "on": plain assertions are refused */
    long long clock_skew;           /* ms */
    long long session_timeout;      /* ms; SessionNotOnOrAfter may shorten it */
    long long max_response_size;    /* bytes of the decoded SAMLResponse */
    struct gh_loc loc;
};

struct gh_conf_idp_group {
    char *name;        /* owned */
    char *description; /* owned */
    struct gh_conf_list members; /* identity-provider names */
    struct gh_loc loc;
};

/* Where shared state lives: "local" (in this process) or "redis". */
struct gh_conf_store {
    char *engine;                   /* owned; "local" or "redis" */
    struct gh_conf_list sentinels;  /* "ip:port" each; with master */
    char *master;                   /* owned; the name the sentinels monitor */
    char *address;                  /* owned; "ip:port" of one server, instead of sentinels */
    char *user;                     /* owned; ACL user, or NULL (the default user) */
    char *password_file;            /* owned; the password, read at start */
    char *prefix;                   /* owned; before every key */
    long long timeout;              /* ms; per operation, connect and discovery */
    long long wait_replicas;        /* replicas a replay mark or token write waits for */
    long long session_cache;        /* ms a verified session is served while the store is away */
    long long appliances;           /* sharing the store: a limit's local share is 1/appliances */
    char *name;                     /* owned; this appliance in the cluster; NULL: the host name */
    char *share_config;             /* owned; "on": the configuration is the cluster's */
    struct gh_loc loc;
};

/* Where the conference application keeps rooms, keys and slide content:
 * "sqlite" (the state folder) or "postgresql" (a database appliances share). */
struct gh_conf_mstore {
    char *engine;        /* owned; "sqlite" or "postgresql" */
    char *conninfo;      /* owned; a libpq connection string */
    char *password_file; /* owned; the password, read at start; NULL: conninfo or ~/.pgpass */
    long long timeout;   /* ms a statement's answer (and a connection) may take */
    struct gh_loc loc;
};

struct gh_conf {
    char *file;        /* owned; name used in messages */
    struct gh_conf_store store;
    struct gh_conf_mstore meetings_store;
    long long workers; /* 0 = auto, one per core */
    char *state_dir;   /* owned */
    char *slides_kek_file; /* owned; NULL: STATE-DIR/conference/slides.kek, made when missing */
    char *edge_token_key_file; /* owned; NULL: STATE-DIR/edge-token.key, made when missing */
    char *require_edge_token;  /* owned; "off" (default) or "on" */
    /* Not a directive: the edge token key, read (or made) by the start or a
     * reload once some service validates join tokens or require-edge-token
     * is on; wiped with the model. */
    unsigned char edge_key[32];
    int edge_key_loaded;
    char *error_log;   /* owned */
    char *access_log;  /* owned */
    char *security_log; /* owned */
    char *log_level;   /* owned */
    long long drain_timeout; /* ms */
    struct gh_conf_cert *certs;
    size_t ncerts;
    struct gh_conf_ca *cas;
    size_t ncas;
    struct gh_conf_service *services;
    size_t nservices;
    struct gh_conf_ruleset *rulesets;
    size_t nrulesets;
    long long source_table_size; /* entries of the shared per-source state */
    long long session_table_size; /* entries of the shared session and request state */
    long long join_token_timeout; /* ms a join token lives */
    long long persist_key_rotation; /* ms between persistence-cookie key rotations */
    long long max_upload_size;    /* bytes of one slide resource */
    long long saml_rate_per_source; /* logins and assertion posts per minute per source; 0 off */
    long long admin_session_idle;     /* ms an admin session lives unused */
    long long admin_session_lifetime; /* ms an admin session lives at most */
    long long admin_lockout_failures; /* failed sign-ins that lock a user */
    long long admin_lockout_time;     /* ms the lock lasts */
    struct gh_conf_idp *idps;
    size_t nidps;
    struct gh_conf_idp_group *idp_groups;
    size_t nidp_groups;
};

/* conf_parse.c */
/* Parses text (len bytes, named file in messages). Returns a model or NULL
 * with "file:line:col: message" in err. */
struct gh_conf *gh_conf_parse(const char *file, const char *text, size_t len, char *err,
                              size_t errlen);
/* Reads and parses a file (at most 4 MiB). */
struct gh_conf *gh_conf_load(const char *path, char *err, size_t errlen);
/* The text gh_conf_load parses (a regular file of at most 4 MiB), with a
 * NUL after it; malloc'd, or NULL with err. */
char *gh_conf_read(const char *path, size_t *len, char *err, size_t errlen);
void gh_conf_free(struct gh_conf *c);

/* The statements of a text with their byte spans, in order, for editors
 * that change one directive and keep every other byte. Only the syntax is
 * checked (tokens, braces), not the directives. */
struct gh_conf_stmt {
    char *name;               /* owned: the directive */
    char *arg0;               /* owned: its first argument, escapes resolved; or NULL */
    int parent;               /* index of the enclosing block's statement; -1: top level */
    int has_block;
    int line;
    size_t start, args_end;   /* the name's first byte; just after the last argument */
    size_t arg0_off, arg0_end;
    size_t open, close;       /* with a block: offsets of its '{' and '}' */
};
struct gh_conf_outline {
    struct gh_conf_stmt *v;
    size_t n;
};
int gh_conf_outline(const char *text, size_t len, struct gh_conf_outline *o, char *err,
                    size_t errlen);
void gh_conf_outline_free(struct gh_conf_outline *o);
/* The index of the top-level block `kind name { }`, or -1. */
int gh_conf_outline_find(const struct gh_conf_outline *o, const char *kind, const char *name);
/* The same words in the same order. */
int gh_conf_list_equal(const struct gh_conf_list *a, const struct gh_conf_list *b);
const struct gh_conf_service *gh_conf_service_find(const struct gh_conf *c, const char *name);
const struct gh_conf_cert *gh_conf_cert_find(const struct gh_conf *c, const char *name);
const struct gh_conf_ca *gh_conf_ca_find(const struct gh_conf *c, const char *name);
const struct gh_conf_ruleset *gh_conf_ruleset_find(const struct gh_conf *c, const char *name);
const struct gh_conf_idp *gh_conf_idp_find(const struct gh_conf *c, const char *name);
const struct gh_conf_idp *gh_conf_idp_find_uuid(const struct gh_conf *c, const char *uuid);
const struct gh_conf_idp_group *gh_conf_idp_group_find(const struct gh_conf *c, const char *name);

/* conf_write.c */
/* Writes the model canonically: fixed order, defaults omitted, one directive
 * per line; the service timeouts are the exception, printed always with
 * their effective values so the output says what each wait is bounded by.
 * Returns a malloc'd string the caller frees. Parsing the output yields an
 * equal model. */
char *gh_conf_write(const struct gh_conf *c);
struct gh_sbuf;
/* One server directive, canonically, without indent or newline; state (not
 * NULL) and weight (> 0) override the server's own. */
void gh_conf_write_server(struct gh_sbuf *o, const struct gh_conf_server *sv, const char *state,
                          long long weight);

/* conf_table.c */
enum gh_conf_ctx { GH_CTX_MAIN, GH_CTX_SERVICE, GH_CTX_CERT, GH_CTX_CA, GH_CTX_RULES, GH_CTX_IDP,
                   GH_CTX_IDP_GROUP, GH_CTX_STORE, GH_CTX_MSTORE };
enum gh_conf_type {
    GH_T_STR,      /* one word */
    GH_T_DURATION, /* 10s, 250ms, 20m */
    GH_T_SIZE,     /* 64k */
    GH_T_INT,
    GH_T_WORKERS,  /* auto | N */
    GH_T_LIST,     /* one or more words; repeated lines append */
    GH_T_SPECIAL,  /* a block or a directive with its own grammar */
};
struct gh_conf_directive {
    const char *name;
    enum gh_conf_ctx ctx;
    enum gh_conf_type type;
    size_t off;       /* offset of the field in the context's struct */
    const char *def;  /* default as written in the config; NULL: required, none, or
                       * another directive's value (gh_conf_timeouts) */
    long long min, max;
    const char *enums; /* space-separated allowed words for GH_T_STR, or NULL */
};
extern const struct gh_conf_directive gh_conf_directives[];
extern const size_t gh_conf_ndirectives;

/* The service timeouts, one documented set (docs/config.md, "Timeouts").
 * A row with follows takes, when not written in the service, the effective
 * value of that directive in the same service; a row without keeps its own
 * default from gh_conf_directives. */
struct gh_conf_timeout {
    const char *name;    /* a GH_T_DURATION directive of GH_CTX_SERVICE */
    const char *follows; /* NULL, or the directive whose value is the default */
};
extern const struct gh_conf_timeout gh_conf_timeouts[];
extern const size_t gh_conf_ntimeouts;
/* The row of a service timeout, or NULL when name is not one. */
const struct gh_conf_timeout *gh_conf_timeout_find(const char *name);

/* The $names a rule's redirect location may use, expanded per request by
 * rules/policy.c and checked here when the config is read. */
#define GH_CONF_LOCVARS_MAX 7
enum gh_conf_locvar { GH_LOCVAR_HOST, GH_LOCVAR_PATH, GH_LOCVAR_QUERY, GH_LOCVAR_UNKNOWN };
/* s points at a '$': the variable it starts, with *len its length ("$path"
 * is 5); GH_LOCVAR_UNKNOWN with *len the length of the unknown name. */
enum gh_conf_locvar gh_conf_locvar(const char *s, size_t *len);

#endif
