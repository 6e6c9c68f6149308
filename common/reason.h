/*
 * Reason codes: why a request or a response was refused, or why no answer
 * could be had. One X-macro list gives each code its HTTP status, the word
 * the security and access logs print, and its kind:
 *
 *   CLIENT    the client sent something gatehouse refuses (security log)
 *   SERVER    a real server sent something gatehouse refuses; the client
 *             gets a 5xx and the refusal goes to the security log, since a
 *             server that tries to frame or upgrade its way past the proxy
 *             is as much an attack as a client doing it
 *   UPSTREAM  no usable answer could be had (connect, TLS, timeout, no
 *             server): the error log's business, not a security event
 *
 * The HTTP parser, the firewall and the data plane all speak these words,
 * so they live here, below all of them.
 */
#ifndef GH_COMMON_REASON_H
#define GH_COMMON_REASON_H

enum gh_reason_kind { GH_RK_CLIENT, GH_RK_SERVER, GH_RK_UPSTREAM };

#define GH_REASONS(X)                                                                              \
    X(NONE, 200, CLIENT, "none")                                                                   \
    X(BAD_METHOD, 400, CLIENT, "malformed:method")                                                 \
    X(BAD_TARGET, 400, CLIENT, "malformed:target")                                                 \
    X(BAD_VERSION, 400, CLIENT, "malformed:version")                                               \
    X(VERSION_UNSUPPORTED, 505, CLIENT, "malformed:version-unsupported")                           \
    X(BAD_REQUEST_LINE, 400, CLIENT, "malformed:request-line")                                     \
    X(BARE_LF, 400, CLIENT, "malformed:bare-lf")                                                   \
    X(BARE_CR, 400, CLIENT, "malformed:bare-cr")                                                   \
    X(CTL_CHAR, 400, CLIENT, "malformed:control-char")                                             \
    X(BAD_HEADER_NAME, 400, CLIENT, "malformed:header-name")                                       \
    X(UNDERSCORE_HEADER, 400, CLIENT, "malformed:header-underscore")                               \
    X(WS_BEFORE_COLON, 400, CLIENT, "malformed:space-before-colon")                                \
    X(OBS_FOLD, 400, CLIENT, "malformed:obs-fold")                                                 \
    X(NO_HOST, 400, CLIENT, "malformed:missing-host")                                              \
    X(DUP_HOST, 400, CLIENT, "malformed:duplicate-host")                                           \
    X(BAD_HOST, 400, CLIENT, "malformed:host")                                                     \
    X(HOST_MISMATCH, 400, CLIENT, "malformed:authority-host-mismatch")                             \
    X(BAD_CL, 400, CLIENT, "malformed:content-length")                                             \
    X(DUP_CL, 400, CLIENT, "malformed:duplicate-content-length")                                   \
    X(CL_AND_TE, 400, CLIENT, "malformed:content-length-and-transfer-encoding")                    \
    X(BAD_TE, 400, CLIENT, "malformed:transfer-encoding")                                          \
    X(TE_HTTP10, 400, CLIENT, "malformed:transfer-encoding-http10")                                \
    X(CONN_OPTION, 400, CLIENT, "malformed:connection-option")                                     \
    X(BAD_CLIENT_HELLO, 400, CLIENT, "malformed:client-hello")                                     \
    X(BAD_CHUNK, 400, CLIENT, "malformed:chunk")                                                   \
    X(CHUNK_EXT_TOO_LONG, 400, CLIENT, "malformed:chunk-extension-too-long")                       \
    X(BAD_EXPECT, 417, CLIENT, "malformed:expect")                                                 \
    X(BAD_WEBSOCKET, 400, CLIENT, "upgrade:bad-websocket")                                         \
    X(UPGRADE_REFUSED, 400, CLIENT, "upgrade:not-allowed")                                         \
    X(METHOD_NOT_ALLOWED, 405, CLIENT, "method")                                                   \
    X(URI_TOO_LONG, 414, CLIENT, "limit:request-line")                                             \
    X(HEADERS_TOO_LARGE, 431, CLIENT, "limit:header-size")                                         \
    X(TOO_MANY_HEADERS, 431, CLIENT, "limit:header-count")                                         \
    X(CLIENT_TIMEOUT, 408, CLIENT, "timeout:client-header")                                        \
    X(BODY_TIMEOUT, 408, CLIENT, "timeout:client-body")                                            \
    X(CLIENT_CLOSED, 499, CLIENT, "client:closed") /* logged, never answered */                    \
    X(HOST_NOT_ALLOWED, 403, CLIENT, "host-not-allowed")                                           \
    X(SNI_NOT_ALLOWED, 421, CLIENT, "sni-not-allowed")                                             \
    X(SNI_HOST_MISMATCH, 421, CLIENT, "sni-host-mismatch")                                         \
    X(DIR_NOT_ALLOWED, 403, CLIENT, "dir-not-allowed")                                             \
    X(PATH_NUL, 400, CLIENT, "malformed:path-nul")                                                 \
    X(PATH_ENCODED_SLASH, 400, CLIENT, "malformed:path-encoded-slash")                             \
    X(PATH_BACKSLASH, 400, CLIENT, "malformed:path-backslash")                                     \
    X(PATH_BAD_ESCAPE, 400, CLIENT, "malformed:path-bad-escape")                                   \
    X(PATH_BAD_UTF8, 400, CLIENT, "malformed:path-utf8")                                           \
    X(PATH_DOUBLE_ENCODING, 400, CLIENT, "malformed:path-double-encoding")                         \
    X(PATH_TRAVERSAL, 400, CLIENT, "malformed:path-traversal")                                     \
    X(RULE, 403, CLIENT, "rule")                                                                   \
    X(METRICS_NOT_ALLOWED, 403, CLIENT, "metrics-not-allowed")                                     \
    X(RATE_LIMIT, 429, CLIENT, "rate-limit")                                                       \
    X(CONN_LIMIT, 429, CLIENT, "conn-limit")                                                       \
    X(JOIN_TOKEN_MISSING, 404, CLIENT, "join-token:missing")                                       \
    X(JOIN_TOKEN_UNKNOWN, 404, CLIENT, "join-token:unknown")                                       \
    X(JOIN_TOKEN_EXPIRED, 404, CLIENT, "join-token:expired")                                       \
    X(JOIN_TOKEN_ENDED, 410, CLIENT, "join-token:meeting-ended")                                   \
    /* not the client's doing, but a refusal the edge made in its place: */                        \
    /* with the others, so one log has every request it kept back */                               \
    X(JOIN_TOKEN_AWAY, 503, CLIENT, "join-token:store-unavailable")                                \
    X(BAD_RESPONSE, 502, SERVER, "upstream:malformed-response")                                    \
    X(UPSTREAM_CONN_OPTION, 502, SERVER, "upstream:connection-option")                             \
    X(UPSTREAM_BAD_UPGRADE, 502, SERVER, "upstream:bad-upgrade")                                   \
    X(UPSTREAM_CONNECT, 502, UPSTREAM, "upstream:connect")                                         \
    X(UPSTREAM_TLS, 502, UPSTREAM, "upstream:tls")                                                 \
    X(UPSTREAM_CLOSED, 502, UPSTREAM, "upstream:closed")                                           \
    X(UPSTREAM_TIMEOUT, 504, UPSTREAM, "upstream:timeout")                                         \
    X(NO_SERVER, 503, UPSTREAM, "upstream:no-server")                                              \
    X(QUEUE_FULL, 503, UPSTREAM, "upstream:queue-full")                                            \
    X(QUEUE_TIMEOUT, 503, UPSTREAM, "upstream:queue-timeout")                                      \
    X(INTERNAL, 500, UPSTREAM, "internal")

enum gh_reason {
#define GH_REASON_ENUM(n, s, k, w) GH_REASON_##n,
    GH_REASONS(GH_REASON_ENUM)
#undef GH_REASON_ENUM
    GH_REASON_MAX
};

/* reason.c */
/* The HTTP status a refusal for this reason answers with. */
int gh_reason_status(enum gh_reason r);
/* The word logged for this reason ("malformed:obs-fold"). */
const char *gh_reason_name(enum gh_reason r);
enum gh_reason_kind gh_reason_kind(enum gh_reason r);
/* True for the refusals that belong in the security log (CLIENT and SERVER). */
int gh_reason_is_security(enum gh_reason r);
/* The plain body for a status: identical for every refusal of that status,
 * naming nothing internal. Sets *text (the reason phrase) and *len. */
const char *gh_status_page(int status, const char **text, unsigned *len);

#endif
