/*
 * rules — what may pass: allowed virtual hosts (and SNI), the path
 * normaliser and allowed directories, pcre2 rule sets, per-source limits
 * (through the shared key-value store). Refusals are named by the reason
 * codes of common/reason.h. Everything here works on bytes handed in; no
 * sockets.
 */
#ifndef GH_RULES_RULES_H
#define GH_RULES_RULES_H

#include "../common/reason.h"

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
/* The same with ASCII letters matched whatever their case
 * (allowed-dirs-case insensitive). */
int rules_glob_match_nocase(const char *pat, const char *s, size_t slen);

/* ruleset.c */
enum rules_action { RULES_NONE, RULES_DENY, RULES_ALLOW, RULES_REDIRECT, RULES_LOG };

/* The request as the rules see it; spans are not NUL-terminated. */
struct rules_req {
    const char *method, *path, *query;
    size_t method_len, path_len, query_len;
    const struct sockaddr *source;
    /* The idx-th line (from 0) of header name: 0 with *v, *vlen set, or -1
     * when there are no more. */
    int (*header)(void *ctx, const char *name, unsigned idx, const char **v, size_t *vlen);
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
 * counts as a match for deny rules (fail closed) and not for others. A
 * header sent several times is matched line by line, the way that fails
 * closed: a deny, redirect or log rule matches when any line does, an
 * allow rule only when every line does. */
void rules_set_eval(const struct rules_set *s, const struct rules_req *r,
                    struct rules_verdict *v);
size_t rules_set_count(const struct rules_set *s);
/* Frees this thread's pcre2 scratch (worker exit). */
void rules_thread_fini(void);

/* policy.c: the firewall of one service in one call */
struct gh_conf;
struct gh_conf_service;
struct rules_policy;

/* The request as the firewall sees it; spans are not NUL-terminated. */
struct rules_http_req {
    const char *method, *target, *host;
    size_t method_len, target_len, host_len; /* target: origin-form path[?query] or "*";
                                              * host_len 0: no Host (HTTP/1.0) */
    const char *sni;                         /* TLS server name; NULL or "": none */
    const struct sockaddr *source;           /* the client the limits count */
    /* request-rate-per-source: 0 counted here (this process's tables); 1
     * or -1 decided already by the caller (a cluster's shared bucket):
     * allowed, or over. */
    int rate_verdict;
    /* The idx-th line of header name, or -1 (for the rule set). */
    int (*header)(void *ctx, const char *name, unsigned idx, const char **v, size_t *vlen);
    void *ctx;
};

/* A redirect's Location as pieces: text of the configured target and the
 * request's host, path and query, which rules_location_write escapes where
 * the URI syntax needs it. The pieces borrow from the request (its head and
 * the caller's out buffer), the decision and the policy: valid while they
 * are. */
#define RULES_LOCATION_MAX (15 * 1024) /* longer: refused, limit:request-line */
#define RULES_LOCATION_PIECES 16
struct rules_location {
    int status; /* 0: no redirect; else 301, 302, 303, 307 or 308 */
    size_t n;
    struct rules_piece {
        const char *p;
        size_t len;
        int esc; /* percent-encode what a URI may not hold */
    } v[RULES_LOCATION_PIECES];
};
/* Writes the Location, NUL-terminated, into out (room for
 * RULES_LOCATION_MAX + 1 bytes) and returns its length; with out NULL only
 * the length. */
size_t rules_location_write(const struct rules_location *l, char *out);

struct rules_decision {
    enum gh_reason why;        /* GH_REASON_NONE: forward, unless redirect.status is set */
    const char *target;        /* the normalised target (the caller's out buffer) */
    size_t target_len, path_len;
    struct rules_verdict rule; /* the rule set's verdict: deny/redirect, log-only ids */
    /* The answer instead of forwarding: with why RULE, a redirect rule's
     * location ($names expanded); with why NONE, a `redirect https`
     * service's (the request's host, path and query over https). */
    struct rules_location redirect;
    char host[300]; /* the normalised Host ("" without one); pieces borrow it */
};

/* Builds the policy of service cs (host patterns normalised, rule set
 * compiled). NULL with "file:line:col: message" in err. cs and conf must
 * outlive the policy. */
struct rules_policy *rules_policy_new(const char *file, const struct gh_conf *conf,
                                      const struct gh_conf_service *cs, char *err,
                                      size_t errlen);
void rules_policy_free(struct rules_policy *p);
/* Decides one request; see policy.c for the order. out must have room for
 * r->target_len + 2 bytes and receives the normalised target. Returns
 * d->why; a request is forwarded only when that is GH_REASON_NONE and
 * d->redirect.status is 0. */
enum gh_reason rules_policy_check(const struct rules_policy *p, const struct rules_http_req *r,
                                  char *out, struct rules_decision *d);
/* The normalisation alone (no limits counted, nothing logged): for writing
 * a checked request's head again. out as for rules_policy_check. */
enum gh_reason rules_policy_normalise(const struct rules_policy *p, const char *target,
                                      size_t len, char *out, const char **t, size_t *tlen);
/* True when a normalised name is among the service's allowed hosts. */
int rules_policy_host_allowed(const struct rules_policy *p, const char *name);

/* limits.c */
/* Per-source limits through the shared key-value store; scope separates
 * services. Each returns 0 (allowed) or -1 (over the limit). */
int rules_limit_conn_open(uint32_t scope, const struct sockaddr *src, long max_conns,
                          long conn_rate);
void rules_limit_conn_close(uint32_t scope, const struct sockaddr *src, long max_conns);
/* The connections src has open here now (what conn_open counted). */
long rules_limit_conn_count(uint32_t scope, const struct sockaddr *src);
int rules_limit_request(uint32_t scope, const struct sockaddr *src, long rate, long burst);
/* The key a limit counts src under (type 'q': requests, 'r': new
 * connections, 'c': concurrent ones), for a caller that counts it in a
 * shared store instead. */
#define RULES_LIMIT_KEY_LEN 22
void rules_limit_key(char type, uint32_t scope, const struct sockaddr *src, unsigned char *k);
uint32_t rules_scope(const char *service_name);

#endif
