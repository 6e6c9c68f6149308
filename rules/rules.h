/*
 * rules — what may pass. For now: the reason codes every refusal carries,
 * mapped in one table to the HTTP status and the word the security log
 * prints. The parser, its tests and the log share these words.
 * (Allowed hosts/directories, rule sets and per-source limits come next.)
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
    X(BAD_RESPONSE, 502, "upstream:malformed-response")                                            \
    X(UPSTREAM_CONNECT, 502, "upstream:connect")                                                   \
    X(UPSTREAM_TLS, 502, "upstream:tls")                                                           \
    X(UPSTREAM_CLOSED, 502, "upstream:closed")                                                     \
    X(UPSTREAM_TIMEOUT, 504, "upstream:timeout")                                                   \
    X(NO_SERVER, 503, "upstream:no-server")

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

#endif
