/*
 * validate-join-token: the Web Conferencing Edge of the seeds' call
 * sequence (step 6). For the manifest and content paths a validating
 * service looks the participant's join token up in the shared store
 * itself, and forwards only a live one, with a second token of its own
 * (common/join_token.h) that the conference service requires: bound to
 * the token's meeting, its participant and the one resource asked for,
 * and good for GH_EDGE_TOKEN_TTL_S seconds. Anything else on those paths
 * stops here with the same 404 (410 for a meeting that has ended, 503 when
 * the store cannot say), counted by reason and in the security log; the
 * conference service never sees it.
 *
 * The path is judged as the conference service will read it: normalised
 * as the firewall forwards it, then every %XX decoded (what its HTTP
 * library does), so no spelling of a protected path passes unchecked.
 * With store redis the lookups ride the request's store question
 * (shared.c: the record, then its meeting's epoch mark); with store local
 * they are this process's tables, read at once.
 */
#include "proxy_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../store/store.h"

/* The one Authorization line's Bearer token: 0 with tok filled, -1 when
 * there is none, more than one line (which would the server read?), or
 * it is not a token as issued. */
static int bearer_of(const char *head, const struct http1_msg *m, char tok[GH_JOIN_TOKEN_HEX + 1])
{
    const struct http1_hdr *found = NULL;
    unsigned i;

    for (i = 0; i < m->nhdrs; i++) {
        const struct http1_hdr *h = &m->hdrs[i];
        if (!gh_strncaseeq(head + h->name.off, h->name.len, "authorization"))
            continue;
        if (found != NULL)
            return -1;
        found = h;
    }
    if (found == NULL || found->value.len != 7 + GH_JOIN_TOKEN_HEX ||
        memcmp(head + found->value.off, "Bearer ", 7) != 0)
        return -1;
    memcpy(tok, head + found->value.off + 7, GH_JOIN_TOKEN_HEX);
    tok[GH_JOIN_TOKEN_HEX] = '\0';
    return 0;
}

void proxy__join_classify(const struct proxy_conn *c, const char *head,
                          const struct http1_msg *m, struct proxy_join_req *q)
{
    const char *t, *qm;
    size_t tlen, plen;
    char *norm;

    memset(q, 0, sizeof(*q));
    if (!c->svc->validate_join)
        return;
    norm = gh_calloc(1, m->path.len + 2);
    /* A target the firewall will refuse is not forwarded at all. */
    if (rules_policy_normalise(c->svc->policy, head + m->path.off, m->path.len, norm, &t,
                               &tlen) != GH_REASON_NONE) {
        free(norm);
        return;
    }
    qm = memchr(t, '?', tlen);
    plen = qm != NULL ? (size_t)(qm - t) : tlen;
    q->res = gh_calloc(1, plen + 2);
    q->prot = gh_join_resource(t, plen, 1, q->res, plen + 2, &q->rlen) != GH_JOIN_RES_NONE;
    free(norm);
    if (!q->prot) {
        proxy__join_req_free(q);
        return;
    }
    q->bearer_ok = bearer_of(head, m, q->tok) == 0 &&
                   gh_join_key(q->tok, GH_JOIN_TOKEN_HEX, q->key) == 0;
}

void proxy__join_req_free(struct proxy_join_req *q)
{
    free(q->res);
    q->res = NULL;
    gh_wipe(q->tok, sizeof(q->tok));
}

enum proxy_join_verdict proxy__join_record(const void *v, size_t n, int64_t now_s,
                                           int64_t *meeting, int64_t *epoch)
{
    struct gh_join_record r;
    int64_t expires;

    if (n != sizeof(r))
        return PJ_UNKNOWN;
    memcpy(&r, v, sizeof(r));
    *meeting = r.meeting;
    *epoch = r.epoch;
    expires = r.expires;
    gh_wipe(&r, sizeof(r)); /* the display name is the participant's */
    return expires <= now_s ? PJ_EXPIRED : PJ_OK;
}

enum proxy_join_verdict proxy__join_epoch(const void *v, size_t n)
{
    int64_t state;

    if (n != sizeof(state))
        return PJ_UNKNOWN; /* not a mark we write: not let through on it */
    memcpy(&state, v, sizeof(state));
    return state == GH_EPOCH_ENDED ? PJ_ENDED : PJ_UNKNOWN;
}

/* With store local: the same two lookups in this process's tables. */
static enum proxy_join_verdict local_verdict(const struct proxy_join_req *q, int64_t *meeting)
{
    struct gh_join_record r;
    int64_t e;
    unsigned char ek[GH_MEETING_EPOCH_KEY_LEN];
    int64_t epoch = 0;
    long n = store_local_get(q->key, sizeof(q->key), &r, sizeof(r));
    enum proxy_join_verdict v;

    if (n < 0)
        return PJ_UNKNOWN;
    v = proxy__join_record(&r, (size_t)n, (int64_t)time(NULL), meeting, &epoch);
    gh_wipe(&r, sizeof(r));
    if (v != PJ_OK)
        return v;
    gh_meeting_epoch_key(*meeting, epoch, ek);
    n = store_local_get(ek, sizeof(ek), &e, sizeof(e));
    return n < 0 ? PJ_OK : proxy__join_epoch(&e, (size_t)n);
}

enum gh_reason proxy__join_decide(struct proxy_conn *c, const char *head,
                                  const struct http1_msg *m)
{
    struct proxy_join_req q;
    enum proxy_join_verdict v;
    int64_t meeting = c->ask_join_meeting;
    char pid[33];
    enum gh_reason r = GH_REASON_NONE;

    c->edge_token[0] = '\0';
    proxy__join_classify(c, head, m, &q);
    if (!q.prot)
        return GH_REASON_NONE;
    if (!q.bearer_ok) {
        proxy__join_req_free(&q);
        return GH_REASON_JOIN_TOKEN_MISSING;
    }
    v = c->req_shared ? c->ask_join : local_verdict(&q, &meeting);
    switch (v) {
    case PJ_OK:
        gh_join_participant(q.tok, pid);
        if (!c->gen->conf->edge_key_loaded ||
            gh_edge_token_make(c->gen->conf->edge_key, meeting, pid, q.res, q.rlen,
                               (int64_t)time(NULL) + GH_EDGE_TOKEN_TTL_S, c->edge_token,
                               sizeof(c->edge_token)) == -1) {
            c->edge_token[0] = '\0';
            r = GH_REASON_INTERNAL;
        } else {
            atomic_fetch_add(&c->svc->st->edge_tokens, 1);
        }
        break;
    case PJ_EXPIRED:
        r = GH_REASON_JOIN_TOKEN_EXPIRED;
        break;
    case PJ_ENDED:
        r = GH_REASON_JOIN_TOKEN_ENDED;
        break;
    case PJ_AWAY:
        r = GH_REASON_JOIN_TOKEN_AWAY;
        break;
    case PJ_NONE: /* asked nothing although it should have: never forwarded unchecked */
    case PJ_UNKNOWN:
        r = GH_REASON_JOIN_TOKEN_UNKNOWN;
        break;
    }
    proxy__join_req_free(&q);
    return r;
}

int proxy__join_write_error(struct proxy_conn *c, enum gh_reason why)
{
    static const char away[] = "{\"error\":\"join tokens cannot be checked now; retry "
                               "shortly\"}\n";
    const char *body, *text;
    struct gh_buf *b = &c->cout;
    char head[320];
    int status = gh_reason_status(why), n;
    unsigned len;

    switch (why) {
    case GH_REASON_JOIN_TOKEN_MISSING:
    case GH_REASON_JOIN_TOKEN_UNKNOWN:
    case GH_REASON_JOIN_TOKEN_EXPIRED:
        body = GH_JOIN_NOT_FOUND_JSON;
        break;
    case GH_REASON_JOIN_TOKEN_ENDED:
        body = GH_JOIN_ENDED_JSON;
        break;
    case GH_REASON_JOIN_TOKEN_AWAY:
        body = away;
        break;
    default:
        return 0;
    }
    gh_status_page(status, &text, &len);
    len = (unsigned)strlen(body);
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                 "Content-Length: %u\r\nCache-Control: no-store\r\n"
                 "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
                 status, text, len);
    http1_put(b, head, (size_t)n);
    if (!(c->req.flags & HTTP1_F_HEAD))
        http1_put(b, body, len); /* a HEAD gets the length, not the body */
    c->status = status;
    c->close_after = 1;
    return 1;
}
