/*
 * rules — what may pass: allowed virtual hosts (and SNI), the path
 * normaliser and allowed directories, pcre2 rule sets, per-source limits
 * (through the shared key-value store), and the reason codes every refusal
 * carries, mapped in one table to the HTTP status and the word the security
 * log prints. Everything here works on bytes handed in; no sockets.
 */
#ifndef GH_RULES_RULES_H
#define GH_RULES_RULES_H

#define GH_REASONS(X)                                                                              \
    X(NONE, 200, "none")                                                                           \
    X(BAD_METHOD, 400, "malformed:method")                                                         \
    X(BAD_TARGET, 400, "malformed:target")                                                         \
    X(BAD_VERSION, 400, "malformed:version")                                                       \
    X(VERSION_UNSUPPORTED, 505, "malformed:version-unsupported")                                   \
    X(BAD_REQUEST_LINE, 400, "malformed:request-line")                                             \
    X(BARE_LF, 400, "malformed:bare-lf")                                                           \
    X(BARE_CR, 400, "malformed:bare-cr")                                                           \
    X(CTL_CHAR, 400, "malformed:control-char")                                                     \
    X(BAD_HEADER_NAME, 400, "malformed:header-name")                                               \
    X(WS_BEFORE_COLON, 400, "malformed:space-before-colon")                                        \
    X(OBS_FOLD, 400, "malformed:obs-fold")                                                         \
    X(NO_HOST, 400, "malformed:missing-host")                                                      \
    X(DUP_HOST, 400, "malformed:duplicate-host")                                                   \
    X(BAD_HOST, 400, "malformed:host")                                                             \
    X(HOST_MISMATCH, 400, "malformed:authority-host-mismatch")                                     \
    X(BAD_CL, 400, "malformed:content-length")                                                     \
    X(DUP_CL, 400, "malformed:duplicate-content-length")                                           \
    X(CL_AND_TE, 400, "malformed:content-length-and-transfer-encoding")                            \
    X(BAD_TE, 400, "malformed:transfer-encoding")                                                  \
    X(TE_HTTP10, 400, "malformed:transfer-encoding-http10")                                        \
    X(BAD_CHUNK, 400, "malformed:chunk")                                                           \
    X(CHUNK_EXT_TOO_LONG, 400, "malformed:chunk-extension-too-long")                               \
    X(BAD_EXPECT, 417, "malformed:expect")                                                         \
    X(METHOD_NOT_ALLOWED, 405, "method")                                                           \
    X(URI_TOO_LONG, 414, "limit:request-line")                                                     \
    X(HEADERS_TOO_LARGE, 431, "limit:header-size")                                                 \
    X(TOO_MANY_HEADERS, 431, "limit:header-count")                                                 \
    X(CLIENT_TIMEOUT, 408, "timeout:client-header")                                                \
    X(HOST_NOT_ALLOWED, 403, "host-not-allowed")                                                   \
    X(SNI_NOT_ALLOWED, 421, "sni-not-allowed")                                                     \
    X(SNI_HOST_MISMATCH, 421, "sni-host-mismatch")                                                 \
    X(DIR_NOT_ALLOWED, 403, "dir-not-allowed")                                                     \
    X(PATH_NUL, 400, "malformed:path-nul")                                                         \
    X(PATH_ENCODED_SLASH, 400, "malformed:path-encoded-slash")                                     \
    X(PATH_BACKSLASH, 400, "malformed:path-backslash")                                             \
    X(PATH_BAD_ESCAPE, 400, "malformed:path-bad-escape")                                           \
    X(PATH_BAD_UTF8, 400, "malformed:path-utf8")                                                   \
    X(PATH_DOUBLE_ENCODING, 400, "malformed:path-double-encoding")                                 \
    X(PATH_TRAVERSAL, 400, "malformed:path-traversal")                                             \
    X(RULE, 403, "rule")                                                                           \
    X(RATE_LIMIT, 429, "rate-limit")                                                               \
    X(CONN_LIMIT, 429, "conn-limit")                                                               \
    X(BAD_RESPONSE, 502, "upstream:malformed-response")                                            \
    X(UPSTREAM_CONNECT, 502, "upstream:connect")                                                   \
    X(UPSTREAM_TLS, 502, "upstream:tls")                                                           \
    X(UPSTREAM_CLOSED, 502, "upstream:closed")                                                     \
    X(UPSTREAM_TIMEOUT, 504, "upstream:timeout")                                                   \
    X(NO_SERVER, 503, "upstream:no-server")                                                        \
    X(QUEUE_FULL, 503, "upstream:queue-full")                                                      \
    X(QUEUE_TIMEOUT, 503, "upstream:queue-timeout")

enum gh_reason {
#define GH_REASON_ENUM(n, s, w) GH_REASON_##n,
    GH_REASONS(GH_REASON_ENUM)
#undef GH_REASON_ENUM
    GH_REASON_MAX
};

/* reason.c */
/* The HTTP status a refusal for this reason answers with. */
int rules_reason_status(enum gh_reason r);
/* The word logged for this reason ("malformed:obs-fold"). */
const char *rules_reason_name(enum gh_reason r);
/* The plain body for a status: identical for every refusal of that status,
 * naming nothing internal. Sets *len. */
const char *rules_status_page(int status, const char **text, unsigned *len);

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct gh_conf_ruleset;

/* host.c */
/* Normalises a Host value or SNI name into out: lower case, port and a
 * trailing dot removed; IPv6 literals keep their brackets. 0, or -1 when it
 * is not a host name or address literal. */
int rules_host_norm(const char *in, size_t len, char *out, size_t outlen);
/* True when the normalised name matches one of the normalised patterns:
 * "*" (anything), "*.example.com" (exactly one label before the suffix), or
 * an exact name. An empty list matches nothing. */
int rules_host_match(char *const *pats, size_t n, const char *name);

/* path.c */
struct rules_path_opts {
    int merge_slashes;       /* "//" becomes "/" */
    int allow_encoded_slash; /* %2F kept (encoded) instead of refused */
};
/* Normalises the path in[0, len) (no query) into out (outlen >= len + 1):
 * unreserved escapes decoded, other escapes upper-cased, dot segments
 * resolved. Returns GH_REASON_NONE, or the reason it is refused: NUL,
 * encoded or raw backslash, encoded slash (unless allowed), bad or double
 * escapes, invalid or overlong UTF-8, traversal above the root (also via
 * ";" parameters). *outn gets the length. */
enum gh_reason rules_path_norm(const char *in, size_t len, const struct rules_path_opts *o,
                               char *out, size_t outlen, size_t *outn);

/* dirs.c */
/* Glob match of a normalised path: '*' matches any run of bytes, '/'
 * included; everything else matches itself. */
int rules_glob_match(const char *pat, const char *s, size_t slen);

/* ruleset.c */
enum rules_action { RULES_NONE, RULES_DENY, RULES_ALLOW, RULES_REDIRECT, RULES_LOG };

/* The request as the rules see it; spans are not NUL-terminated. */
struct rules_req {
    const char *method, *path, *query;
    size_t method_len, path_len, query_len;
    const struct sockaddr *source;
    /* First value of header name, or -1. */
    int (*header)(void *ctx, const char *name, const char **v, size_t *vlen);
    void *ctx;
};

#define RULES_MAX_LOGGED 4
struct rules_verdict {
    enum rules_action action; /* RULES_NONE: no deciding rule matched */
    int status;
    const char *id;     /* borrowed from the set */
    const char *target; /* redirect location */
    const char *logged[RULES_MAX_LOGGED]; /* ids of log-only rules that matched */
    int nlogged;
};

struct rules_set;
/* Compiles a rule set (pcre2 with JIT and match limits). NULL with
 * "file:line:col: message" in err when a pattern does not compile. */
struct rules_set *rules_set_new(const char *file, const struct gh_conf_ruleset *rs, char *err,
                                size_t errlen);
void rules_set_free(struct rules_set *s);
/* Evaluates in order: log rules are recorded and evaluation goes on; the
 * first deny, allow or redirect decides. A regex that hits its match limit
 * counts as a match for deny rules (fail closed) and not for others. */
void rules_set_eval(const struct rules_set *s, const struct rules_req *r,
                    struct rules_verdict *v);
size_t rules_set_count(const struct rules_set *s);
/* Frees this thread's pcre2 scratch (worker exit). */
void rules_thread_fini(void);

/* limits.c */
/* Per-source limits through the shared key-value store; scope separates
 * services. Each returns 0 (allowed) or -1 (over the limit). */
int rules_limit_conn_open(uint32_t scope, const struct sockaddr *src, long max_conns,
                          long conn_rate);
void rules_limit_conn_close(uint32_t scope, const struct sockaddr *src, long max_conns);
int rules_limit_request(uint32_t scope, const struct sockaddr *src, long rate, long burst);
uint32_t rules_scope(const char *service_name);

#endif
