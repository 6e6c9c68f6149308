/*
 * Rule sets: an ordered list of conditions on the method, the normalised
 * path, the raw query, a header's value or the source address, each with an
 * action. Regexes are compiled once with pcre2's JIT and run under a match
 * limit, so no input can make a worker backtrack for long (ReDoS): a match
 * that hits the limit fails closed for deny rules and open for the others.
 */
#include "rules.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "../common/conf.h"

#define MATCH_LIMIT 100000

enum field { F_METHOD, F_PATH, F_QUERY, F_HEADER, F_SOURCE };
enum op { OP_EXACT, OP_PREFIX, OP_REGEX, OP_CIDR };

struct rule {
    char *id;    /* owned */
    char *target; /* owned; redirect location */
    char *header; /* owned */
    char *value;  /* owned */
    size_t vlen;
    enum rules_action action;
    int status;
    enum field field;
    enum op op;
    pcre2_code *re; /* owned */
    int jit;        /* JIT-compiled: the fast entry point applies */
    int family;
    unsigned char addr[16];
    int bits;
};

struct rules_set {
    struct rule *r;
    size_t n;
    pcre2_match_context *mctx; /* owned */
};

static __thread pcre2_match_data *match_data;

static int parse_cidr(struct rule *r, const char *v)
{
    char a[64];
    const char *slash = strchr(v, '/');
    size_t n = slash ? (size_t)(slash - v) : strlen(v);
    long bits;

    if (n >= sizeof(a))
        return -1;
    memcpy(a, v, n);
    a[n] = '\0';
    r->family = strchr(a, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(r->family, a, r->addr) != 1)
        return -1;
    r->bits = r->family == AF_INET ? 32 : 128;
    if (slash) {
        if (gh_parse_long(slash + 1, 0, r->bits, &bits) == -1)
            return -1;
        r->bits = (int)bits;
    }
    return 0;
}

struct rules_set *rules_set_new(const char *file, const struct gh_conf_ruleset *rs, char *err,
                                size_t errlen)
{
    struct rules_set *s = gh_calloc(1, sizeof(*s));
    size_t i;

    s->r = gh_calloc(rs->nrules, sizeof(*s->r));
    s->n = rs->nrules;
    s->mctx = pcre2_match_context_create(NULL);
    if (s->mctx == NULL)
        goto fail;
    pcre2_set_match_limit(s->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(s->mctx, 10000);
    for (i = 0; i < rs->nrules; i++) {
        const struct gh_conf_rule *c = &rs->rules[i];
        struct rule *r = &s->r[i];
        r->id = gh_strdup(c->id);
        r->value = gh_strdup(c->value);
        r->vlen = strlen(c->value);
        r->status = (int)c->status;
        r->target = c->target ? gh_strdup(c->target) : NULL;
        r->header = c->header ? gh_strdup(c->header) : NULL;
        r->action = strcmp(c->action, "deny") == 0     ? RULES_DENY
                    : strcmp(c->action, "allow") == 0  ? RULES_ALLOW
                    : strcmp(c->action, "redirect") == 0 ? RULES_REDIRECT
                                                       : RULES_LOG;
        r->field = strcmp(c->field, "method") == 0  ? F_METHOD
                   : strcmp(c->field, "path") == 0  ? F_PATH
                   : strcmp(c->field, "query") == 0 ? F_QUERY
                   : strcmp(c->field, "header") == 0 ? F_HEADER
                                                     : F_SOURCE;
        r->op = strcmp(c->op, "exact") == 0    ? OP_EXACT
                : strcmp(c->op, "prefix") == 0 ? OP_PREFIX
                : strcmp(c->op, "regex") == 0  ? OP_REGEX
                                               : OP_CIDR;
        if (r->op == OP_CIDR && parse_cidr(r, c->value) == -1) {
            snprintf(err, errlen, "%s:%d:%d: rule '%s': bad address", file, c->value_loc.line,
                     c->value_loc.col, c->id);
            goto fail;
        }
        if (r->op == OP_REGEX) {
            int code;
            PCRE2_SIZE off;
            r->re = pcre2_compile((PCRE2_SPTR)c->value, PCRE2_ZERO_TERMINATED, 0, &code, &off,
                                  NULL);
            if (r->re == NULL) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(code, msg, sizeof(msg));
                /* The column points at the offending byte inside the pattern
                 * (+1 when the pattern was written in quotes). */
                snprintf(err, errlen, "%s:%d:%d: rule '%s': regex: %s", file, c->value_loc.line,
                         c->value_loc.col + (int)off, c->id, (const char *)msg);
                goto fail;
            }
            /* Without JIT (unsupported CPU) the interpreter runs under the
             * same match limit. */
            r->jit = pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE) == 0;
        }
    }
    return s;
fail:
    rules_set_free(s);
    return NULL;
}

void rules_set_free(struct rules_set *s)
{
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; i < s->n; i++) {
        free(s->r[i].id);
        free(s->r[i].target);
        free(s->r[i].header);
        free(s->r[i].value);
        pcre2_code_free(s->r[i].re);
    }
    free(s->r);
    pcre2_match_context_free(s->mctx);
    free(s);
}

size_t rules_set_count(const struct rules_set *s)
{
    return s ? s->n : 0;
}

static int cidr_match(const struct rule *r, const struct sockaddr *sa)
{
    const unsigned char *a;
    int bits = r->bits, k;

    if (sa == NULL || sa->sa_family != r->family)
        return 0;
    a = r->family == AF_INET ? (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr
                             : (const unsigned char *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    for (k = 0; bits >= 8; k++, bits -= 8)
        if (a[k] != r->addr[k])
            return 0;
    if (bits > 0) {
        unsigned char mask = (unsigned char)(0xff << (8 - bits));
        if ((a[k] & mask) != (r->addr[k] & mask))
            return 0;
    }
    return 1;
}

/* 1 match, 0 no match, -1 the regex hit its limit. */
static int match(const struct rules_set *s, const struct rule *r, const char *v, size_t n)
{
    int rc;

    switch (r->op) {
    case OP_EXACT:
        return n == r->vlen && memcmp(v, r->value, n) == 0;
    case OP_PREFIX:
        return n >= r->vlen && memcmp(v, r->value, r->vlen) == 0;
    case OP_REGEX:
        if (match_data == NULL) {
            match_data = pcre2_match_data_create(1, NULL);
            if (match_data == NULL)
                return -1;
        }
        /* pcre2_jit_match skips the argument checks of pcre2_match; both
         * honour the match limit in the context. */
        rc = r->jit ? pcre2_jit_match(r->re, (PCRE2_SPTR)(v ? v : ""), n, 0, 0, match_data,
                                      s->mctx)
                    : pcre2_match(r->re, (PCRE2_SPTR)(v ? v : ""), n, 0, 0, match_data, s->mctx);
        if (rc >= 0)
            return 1;
        if (rc == PCRE2_ERROR_NOMATCH || rc == PCRE2_ERROR_PARTIAL)
            return 0;
        return -1; /* match or depth limit, or out of memory */
    case OP_CIDR:
        return 0;
    }
    return 0;
}

/* Every line of the header, so a second copy cannot hide behind the first
 * (the server sees them all): any line for deny, redirect and log, every
 * line for allow. A line at the regex limit counts as a match for deny. */
static int header_match(const struct rules_set *s, const struct rule *r,
                        const struct rules_req *q)
{
    const char *val;
    size_t vl;
    unsigned idx;
    int all = r->action == RULES_ALLOW;

    for (idx = 0; q->header(q->ctx, r->header, idx, &val, &vl) == 0; idx++) {
        int m = match(s, r, val, vl);
        if (m == -1)
            m = r->action == RULES_DENY;
        if (all && !m)
            return 0;
        if (!all && m)
            return 1;
        if (idx > 1000)
            break; /* the parser allows fewer lines than this */
    }
    return all && idx > 0;
}

void rules_set_eval(const struct rules_set *s, const struct rules_req *q, struct rules_verdict *v)
{
    size_t i;

    memset(v, 0, sizeof(*v));
    if (s == NULL)
        return;
    for (i = 0; i < s->n; i++) {
        const struct rule *r = &s->r[i];
        const char *val = NULL;
        size_t vl = 0;
        int m;

        switch (r->field) {
        case F_METHOD:
            val = q->method, vl = q->method_len;
            break;
        case F_PATH:
            val = q->path, vl = q->path_len;
            break;
        case F_QUERY:
            val = q->query, vl = q->query_len;
            break;
        case F_HEADER:
            if (q->header == NULL || q->header(q->ctx, r->header, 0, &val, &vl) == -1)
                continue;
            break;
        case F_SOURCE:
            break;
        }
        if (r->field == F_HEADER) {
            m = header_match(s, r, q);
        } else {
            m = r->field == F_SOURCE ? cidr_match(r, q->source) : match(s, r, val, vl);
            if (m == -1)
                m = r->action == RULES_DENY; /* fail closed only where closing is the point */
        }
        if (!m)
            continue;
        if (r->action == RULES_LOG) {
            if (v->nlogged < RULES_MAX_LOGGED)
                v->logged[v->nlogged++] = r->id;
            continue;
        }
        v->action = r->action;
        v->status = r->status;
        v->id = r->id;
        v->target = r->target;
        return;
    }
}

void rules_thread_fini(void)
{
    pcre2_match_data_free(match_data);
    match_data = NULL;
}
