/*
 * The client connection state machine. One entry per wake-up: an epoll
 * event sets the endpoint's readiness and calls run(), which loops on the
 * state until nothing more can be done without waiting.
 *
 *   TLS_HANDSHAKE -> READ_HEAD -> CONNECT -> EXCHANGE -> READ_HEAD (keep-alive)
 *                                    |          |-> TUNNEL (after a 101)
 *                                    '----------'-> CLOSING -> CLOSED
 *
 * READ_HEAD reads until the head is complete and parses it (http1_parse.c
 * decides framing, once). CONNECT takes a pooled real-server connection or
 * makes one. EXCHANGE runs both directions at once: the request body is
 * decoded and re-framed into the real server's buffer while the response
 * head is awaited, then the response body flows back the same way. A full
 * buffer stops reading the side that fills it: that is back-pressure, and
 * it bounds memory per connection to four buffers. When the response ends
 * the real-server connection goes back to the pool (or stays private to
 * this client after NTLM/Negotiate) and the client connection waits for the
 * next request.
 */
#include "proxy_int.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#define RUN_CONTINUE 0
#define RUN_WAIT 1
#define RUN_STEPS 64
#define CLOSING_MS 5000
#define LINGER_MAX (1024 * 1024)

static const char *const state_names[] = {
#define PROXY_STATE_NAME(n) #n,
    PROXY_STATES(PROXY_STATE_NAME)
#undef PROXY_STATE_NAME
};

const char *proxy__state_name(enum proxy_state st)
{
    return state_names[st];
}

static void arm(struct proxy_conn *c, long long ms)
{
    proxy__timer_set(c->w, c, gh_now_ms() + (uint64_t)ms);
}

static void set_state(struct proxy_conn *c, enum proxy_state st)
{
    const struct gh_conf_service *cf = c->svc->conf;

    assert(c->st != ST_CLOSED);
    gh_log_debug("conn %p %s: %s -> %s", (void *)c, c->peer, state_names[c->st],
                 state_names[st]);
    c->st = st;
    switch (st) {
    case ST_TLS_HANDSHAKE:
        arm(c, cf->client_header_timeout);
        break;
    case ST_READ_HEAD:
        arm(c, c->nreq > 0 && gh_buf_len(&c->cin) == 0 ? cf->keepalive_timeout
                                                       : cf->client_header_timeout);
        break;
    case ST_QUEUED:
        arm(c, cf->queue_timeout);
        break;
    case ST_CONNECT:
        arm(c, cf->connect_timeout);
        break;
    case ST_EXCHANGE:
        arm(c, cf->server_timeout);
        break;
    case ST_TUNNEL:
        arm(c, cf->tunnel_timeout);
        break;
    case ST_CLOSING:
        arm(c, CLOSING_MS);
        break;
    case ST_CLOSED:
        proxy__timer_clear(c->w, c);
        break;
    }
}

static void uncount(struct proxy_conn *c)
{
    if (c->counted) {
        atomic_fetch_sub(&c->srv->st->active, 1);
        c->counted = 0;
    }
}

static void waitq_remove(struct proxy_conn *c)
{
    struct proxy_worker *w = c->w;
    struct proxy_conn **pp = &w->waitq, *prev = NULL;

    while (*pp != NULL && *pp != c) {
        prev = *pp;
        pp = &(*pp)->wnext;
    }
    if (*pp == NULL)
        return;
    *pp = c->wnext;
    if (w->waitq_tail == c)
        w->waitq_tail = prev;
    c->wnext = NULL;
    atomic_fetch_sub(&c->svc->st->queued, 1);
}

static void conn_close(struct proxy_conn *c)
{
    struct proxy_worker *w = c->w;

    if (c->st == ST_CLOSED)
        return;
    if (c->st == ST_QUEUED)
        waitq_remove(c);
    set_state(c, ST_CLOSED);
    uncount(c);
    atomic_fetch_sub(&c->svc->st->conns_active, 1);
    if (c->limited)
        rules_limit_conn_close(c->svc->scope, (struct sockaddr *)&c->peer_ss,
                               (long)c->svc->conf->max_conns_per_source);
    proxy__up_close(c);
    proxy__ep_close(w, &c->cli);
    gh_buf_put(&c->cin);
    gh_buf_put(&c->cout);
    gh_buf_put(&c->uin);
    gh_buf_put(&c->uout);
    proxy__conn_list_remove(w, c);
    proxy__defer_free(w, c);
}

void proxy__conn_free(struct proxy_conn *c)
{
    assert(c->magic == PROXY_MAGIC_CONN);
    c->magic = PROXY_MAGIC_DEAD;
    proxy_gen_unref(c->gen);
    free(c);
}

/* Answers the current request with an error page and closes after it. */
static int refuse(struct proxy_conn *c, enum gh_reason why)
{
    int status = rules_reason_status(why);

    c->why = why;
    uncount(c);
    proxy__up_close(c);
    gh_buf_put(&c->uout);
    gh_buf_put(&c->uin);
    if (c->resp_started) {
        /* Part of a response is out: the only honest signal left is a cut. */
        proxy__log_access(c);
        conn_close(c);
        return RUN_CONTINUE;
    }
    /* Refusals of what a client sent are security events; a real server's
     * failure is the error log's business. */
    if (why < GH_REASON_BAD_RESPONSE || why == GH_REASON_NO_SERVER)
        proxy__log_security(c, why, status);
    gh_buf_put(&c->cout);
    proxy__write_error(c, status);
    c->bytes_out += gh_buf_len(&c->cout);
    proxy__log_access(c);
    /* Unread request bytes are drained before closing so the client sees
     * the answer rather than a reset. */
    c->lingering = !c->req_done || c->st == ST_READ_HEAD;
    set_state(c, ST_CLOSING);
    return RUN_CONTINUE;
}

/* A deny or redirect rule decided: a fixed page or a Location, then close. */
static int refuse_rule(struct proxy_conn *c, const struct rules_verdict *v)
{
    c->why = GH_REASON_RULE;
    uncount(c);
    proxy__log_security(c, GH_REASON_RULE, v->status);
    gh_buf_put(&c->cout);
    if (v->action == RULES_DENY)
        proxy__write_error(c, v->status);
    else
        proxy__write_redirect(c, v->status, v->target);
    c->bytes_out += gh_buf_len(&c->cout);
    proxy__log_access(c);
    c->lingering = !c->req_done;
    set_state(c, ST_CLOSING);
    return RUN_CONTINUE;
}

static int st_handshake(struct proxy_conn *c)
{
    int n = SSL_do_handshake(c->cli.ssl), e;

    if (n == 1) {
        const char *sni = SSL_get_servername(c->cli.ssl, TLSEXT_NAMETYPE_host_name);
        if (sni != NULL)
            gh_strlcpy(c->sni, sni, sizeof(c->sni));
        set_state(c, ST_READ_HEAD);
        return RUN_CONTINUE;
    }
    switch ((e = SSL_get_error(c->cli.ssl, n))) {
    case SSL_ERROR_WANT_READ:
        c->cli.rd = 0;
        return RUN_WAIT;
    case SSL_ERROR_WANT_WRITE:
        c->cli.wr = 0;
        return RUN_WAIT;
    default:
        proxy__tls_failed(c, e); /* counts, logs, clears the error queue */
        conn_close(c);
        return RUN_CONTINUE;
    }
}

static void copy_for_log(char *dst, size_t len, const char *src, size_t n)
{
    if (n >= len)
        n = len - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int start_upstream(struct proxy_conn *c, struct proxy_server *srv);
static int enqueue(struct proxy_conn *c);
static void run(struct proxy_conn *c);

/* Normalises the request's path into the worker's scratch and appends the
 * raw query: the target that is checked is the target that is forwarded.
 * Returns the reason it is refused, or NONE with *t and *tlen set. */
static enum gh_reason prepare_target(struct proxy_conn *c, const char *head,
                                     const struct http1_msg *m, const char **t, size_t *tlen,
                                     size_t *plen)
{
    struct proxy_worker *w = c->w;
    const char *p = head + m->path.off, *q;
    size_t len = m->path.len, pl, n;
    enum gh_reason r;

    if (w->target_cap < len + 2) {
        free(w->target);
        w->target_cap = len + 64;
        w->target = gh_calloc(1, w->target_cap);
    }
    if (len == 1 && p[0] == '*') { /* OPTIONS * */
        memcpy(w->target, "*", 2);
        *t = w->target;
        *tlen = *plen = 1;
        return GH_REASON_NONE;
    }
    q = memchr(p, '?', len);
    pl = q ? (size_t)(q - p) : len;
    if (pl == 0) { /* absolute-form with no path: "http://host?x" */
        w->target[0] = '/';
        n = 1;
    } else {
        r = rules_path_norm(p, pl, &c->svc->path_opts, w->target, w->target_cap, &n);
        if (r != GH_REASON_NONE)
            return r;
    }
    *plen = n;
    if (q != NULL) {
        memcpy(w->target + n, q, len - pl); /* normalising never grows: it fits */
        n += len - pl;
    }
    w->target[n] = '\0';
    *t = w->target;
    *tlen = n;
    return GH_REASON_NONE;
}

struct hdr_ctx {
    const char *head;
    const struct http1_msg *m;
};

static int rules_header(void *ctx, const char *name, const char **v, size_t *vlen)
{
    const struct hdr_ctx *h = ctx;
    unsigned i;

    for (i = 0; i < h->m->nhdrs; i++)
        if (gh_strncaseeq(h->head + h->m->hdrs[i].name.off, h->m->hdrs[i].name.len, name)) {
            *v = h->head + h->m->hdrs[i].value.off;
            *vlen = h->m->hdrs[i].value.len;
            return 0;
        }
    return -1;
}

static int list_has(const struct gh_conf_list *l, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (strlen(l->v[i]) == n && memcmp(l->v[i], s, n) == 0)
            return 1;
    return 0;
}

/* The firewall: rate, method, host and SNI, path and directories, rules.
 * Returns NONE to forward, or the reason to refuse (c->rule_id and the
 * redirect set for rules). */
static enum gh_reason check_request(struct proxy_conn *c, const char *head,
                                    const struct http1_msg *m, const char *path, size_t plen,
                                    struct rules_verdict *v)
{
    const struct proxy_service *svc = c->svc;
    const struct gh_conf_service *cf = svc->conf;
    char host[300], sni[300];
    size_t i;
    int ok = 0;

    v->action = RULES_NONE;
    if (cf->request_rate_per_source > 0 &&
        rules_limit_request(svc->scope, (struct sockaddr *)&c->peer_ss,
                            (long)cf->request_rate_per_source,
                            (long)cf->request_burst_per_source) == -1)
        return GH_REASON_RATE_LIMIT;
    if (!list_has(&cf->allowed_methods, head + m->method.off, m->method.len))
        return GH_REASON_METHOD_NOT_ALLOWED;
    if (m->host.len == 0) {
        host[0] = '\0'; /* HTTP/1.0 without Host: only "*" lets it through */
    } else if (rules_host_norm(head + m->host.off, m->host.len, host, sizeof(host)) == -1) {
        return GH_REASON_BAD_HOST;
    }
    if (!rules_host_match(svc->hosts, svc->nhosts, host)) /* "" matches only "*" */
        return GH_REASON_HOST_NOT_ALLOWED;
    if (c->sni[0] != '\0') {
        if (rules_host_norm(c->sni, strlen(c->sni), sni, sizeof(sni)) == -1 ||
            !rules_host_match(svc->hosts, svc->nhosts, sni))
            return GH_REASON_SNI_NOT_ALLOWED;
        /* HTTP/1.0 without Host names nothing that could differ from SNI */
        if (svc->sni_strict && host[0] != '\0' && strcmp(sni, host) != 0)
            return GH_REASON_SNI_HOST_MISMATCH;
    }
    for (i = 0; i < cf->allowed_dirs.n && !ok; i++)
        ok = rules_glob_match(cf->allowed_dirs.v[i], path, plen);
    if (!ok)
        return GH_REASON_DIR_NOT_ALLOWED;
    if (svc->rules != NULL) {
        struct hdr_ctx hc = {head, m};
        struct rules_req q;
        const char *qm = memchr(head + m->path.off, '?', m->path.len);
        int k;
        memset(&q, 0, sizeof(q));
        q.method = head + m->method.off;
        q.method_len = m->method.len;
        q.path = path;
        q.path_len = plen;
        q.query = qm ? qm + 1 : "";
        q.query_len = qm ? (size_t)(head + m->path.off + m->path.len - qm - 1) : 0;
        q.source = (struct sockaddr *)&c->peer_ss;
        q.header = rules_header;
        q.ctx = &hc;
        rules_set_eval(svc->rules, &q, v);
        for (k = 0; k < v->nlogged; k++)
            proxy__log_flagged(c, v->logged[k]);
        if (v->action == RULES_DENY || v->action == RULES_REDIRECT) {
            c->rule_id = v->id;
            return GH_REASON_RULE;
        }
    }
    return GH_REASON_NONE;
}

/* A complete, valid request head is at the front of cin. */
static int begin_request(struct proxy_conn *c)
{
    struct proxy_worker *w = c->w;
    const char *head = c->cin.data + c->cin.r;
    struct http1_msg *m = &c->req;
    struct proxy_server *srv;

    c->nreq++;
    atomic_fetch_add(&w->n_requests, 1);
    c->t_start = gh_now_ms();
    c->t_up = 0;
    c->bytes_in = m->head_len;
    c->bytes_out = 0;
    c->status = 0;
    c->why = GH_REASON_NONE;
    c->tries = 0;
    c->resp_started = c->resp_done = c->resp_chunk_out = 0;
    c->up_written = 0;
    c->no_pool = 0;
    copy_for_log(c->method, sizeof(c->method), head + m->method.off, m->method.len);
    copy_for_log(c->path, sizeof(c->path), head + m->path.off, m->path.len);
    c->req_done = m->framing == HTTP1_BODY_NONE;
    c->req_left = m->content_length;
    http1_chunk_init(&c->req_ck);
    c->close_after = (m->flags & HTTP1_F_CONN_CLOSE) || w->draining;
    c->rule_id = NULL;
    copy_for_log(c->host, sizeof(c->host), head + m->host.off, m->host.len);
    {
        const char *t;
        size_t tlen, plen;
        struct rules_verdict v;
        enum gh_reason r = prepare_target(c, head, m, &t, &tlen, &plen);
        if (r == GH_REASON_NONE)
            r = check_request(c, head, m, t, plen, &v);
        if (r != GH_REASON_NONE) {
            m->hdrs = NULL;
            if (r == GH_REASON_RULE)
                return refuse_rule(c, &v);
            if (r == GH_REASON_RATE_LIMIT && c->svc->limit_close) {
                proxy__log_security(c, r, 0);
                c->why = r;
                proxy__log_access(c);
                conn_close(c);
                return RUN_CONTINUE;
            }
            return refuse(c, r);
        }
        copy_for_log(c->path, sizeof(c->path), t, tlen);
        if (m->flags & HTTP1_F_WINAUTH)
            c->up_private = 1;
        proxy__write_req_head(c, head, m, t, tlen);
    }
    /* Without a body the head stays in cin until the exchange ends, so a
     * request that met a dead pooled connection can be sent again. */
    c->head_kept = m->framing == HTTP1_BODY_NONE;
    if (!c->head_kept)
        gh_buf_consume(&c->cin, m->head_len);
    m->hdrs = NULL;
    if (c->up != NULL) {
        /* Private real-server connection (Windows authentication). */
        atomic_fetch_add(&c->srv->st->active, 1);
        c->counted = 1;
        c->t_up = gh_now_ms();
        set_state(c, ST_EXCHANGE);
        return RUN_CONTINUE;
    }
    srv = NULL;
    if (c->svc->conf->persistence[0] != 'o') {
        c->req.hdrs = c->w->scratch; /* the parsed index is still in scratch */
        srv = proxy__persist_find(c, head, m);
    }
    if (srv == NULL) {
        int full;
        srv = proxy__pick_server(c->svc, NULL, &c->peer_ss, &full);
        if (srv == NULL)
            return full ? enqueue(c) : refuse(c, GH_REASON_NO_SERVER);
    }
    return start_upstream(c, srv);
}

/* Every healthy server is at maxconn: wait, bounded in number and time. */
static int enqueue(struct proxy_conn *c)
{
    struct proxy_worker *w = c->w;

    if (atomic_fetch_add(&c->svc->st->queued, 1) >= c->svc->conf->queue_size) {
        atomic_fetch_sub(&c->svc->st->queued, 1);
        return refuse(c, GH_REASON_QUEUE_FULL);
    }
    c->wnext = NULL;
    if (w->waitq_tail)
        w->waitq_tail->wnext = c;
    else
        w->waitq = c;
    w->waitq_tail = c;
    set_state(c, ST_QUEUED);
    return RUN_WAIT;
}

void proxy__waitq_dispatch(struct proxy_worker *w)
{
    while (w->waitq != NULL) {
        struct proxy_conn *c = w->waitq;
        int full;
        struct proxy_server *srv = proxy__pick_server(c->svc, NULL, &c->peer_ss, &full);
        if (srv == NULL && full)
            return; /* still no slot: the oldest keeps its place */
        waitq_remove(c);
        if (srv == NULL)
            refuse(c, GH_REASON_NO_SERVER);
        else
            start_upstream(c, srv);
        run(c);
    }
}

static int start_upstream(struct proxy_conn *c, struct proxy_server *srv)
{
    int r;

    if (proxy__server_take(srv) == -1) {
        /* Filled up since it was picked (another worker took the slot). */
        if (c->svc->nservers > 0 && srv->maxconn > 0)
            return enqueue(c);
    }
    c->srv = srv;
    c->counted = 1;
    proxy__persist_remember(c); /* a failover re-pins the client to the new server */
    c->t_up = gh_now_ms();
    r = proxy__up_open(c, srv); /* no_pool: a retry after a pooled connection died */
    if (r == -1) {
        gh_log_warn_errno("service %s: server %s (%s): connect", c->svc->conf->name, srv->name,
                          srv->addr);
        proxy__server_failed(srv);
        uncount(c);
        return refuse(c, GH_REASON_UPSTREAM_CONNECT);
    }
    set_state(c, r == 1 ? ST_EXCHANGE : ST_CONNECT);
    return RUN_CONTINUE;
}

/* The real server failed before a response began. Retries on another server
 * when nothing of the request is lost: nothing was sent yet, or the request
 * has no body and its head is still in cin. */
static int idempotent(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0 ||
           strcmp(m, "PUT") == 0 || strcmp(m, "DELETE") == 0;
}

static int upstream_failed(struct proxy_conn *c, enum gh_reason why)
{
    struct proxy_server *old = c->srv;
    int pooled_race = c->up_reused && c->head_kept;

    if (!pooled_race)
        proxy__server_failed(old);
    uncount(c);
    proxy__up_close(c);
    gh_buf_put(&c->uin);
    /* Once bytes reached the server, only a request that is idempotent and
     * still whole in cin (no body) may go again: a POST might have acted. */
    if (c->resp_started || c->tries >= c->svc->conf->retries + (pooled_race ? 1 : 0) ||
        (c->up_written && (!c->head_kept || !idempotent(c->method))))
        return refuse(c, why);
    c->tries++;
    if (c->up_written) {
        /* Rebuild the request head from the copy kept in cin. */
        struct http1_msg m;
        memset(&m, 0, sizeof(m));
        m.hdrs = c->w->scratch;
        if (http1_parse_request(c->cin.data + c->cin.r, gh_buf_len(&c->cin), &c->svc->lim,
                                &m) != GH_OK)
            return refuse(c, why);
        {
            const char *t;
            size_t tlen, plen;
            if (prepare_target(c, c->cin.data + c->cin.r, &m, &t, &tlen, &plen) !=
                GH_REASON_NONE)
                return refuse(c, why);
            c->uout.r = c->uout.w = 0;
            proxy__write_req_head(c, c->cin.data + c->cin.r, &m, t, tlen);
        }
        c->up_written = 0;
    }
    c->no_pool = 1;
    gh_log_info("service %s: retrying request on another server after %s from %s",
                c->svc->conf->name, rules_reason_name(why), old->name);
    {
        struct proxy_server *srv =
            proxy__pick_server(c->svc, pooled_race ? NULL : old, &c->peer_ss, NULL);
        if (srv == NULL)
            return refuse(c, why);
        return start_upstream(c, srv);
    }
}

/* For the logs of a refused head: the method and target as sent, up to the
 * first space each, whatever bytes they are (the logs escape them). */
static void log_request_line(struct proxy_conn *c)
{
    const char *p = c->cin.data + c->cin.r, *end = p + gh_buf_len(&c->cin);
    size_t i = 0, j;

    while (p + i < end && p[i] != ' ' && p[i] != '\r' && p[i] != '\n' && i < 15)
        i++;
    copy_for_log(c->method, sizeof(c->method), p, i);
    if (p + i >= end || p[i] != ' ') {
        c->path[0] = '\0';
        return;
    }
    for (j = i + 1; p + j < end && p[j] != ' ' && p[j] != '\r' && p[j] != '\n'; j++)
        if (j - i > 255)
            break;
    copy_for_log(c->path, sizeof(c->path), p + i + 1, j - i - 1);
}

static int st_read_head(struct proxy_conn *c)
{
    for (;;) {
        long n;
        if (gh_buf_len(&c->cin) > 0) {
            int rc;
            c->req.hdrs = c->w->scratch;
            rc = http1_parse_request(c->cin.data + c->cin.r, gh_buf_len(&c->cin), &c->svc->lim,
                                     &c->req);
            if (rc == GH_OK)
                return begin_request(c);
            if (rc == GH_ERR) {
                c->nreq++;
                c->t_start = gh_now_ms();
                log_request_line(c);
                return refuse(c, c->req.why);
            }
            if (gh_buf_room(&c->cin) == 0 && c->cin.r == 0)
                gh_buf_grow(&c->cin, c->svc->lim.max_header_size + 1024);
        }
        if (!c->cli.rd && c->cli.ssl != NULL && SSL_pending(c->cli.ssl) > 0)
            c->cli.rd = 1; /* decrypted bytes waiting inside OpenSSL: no edge will come */
        if (!c->cli.rd) {
            if (gh_buf_len(&c->cin) == 0)
                gh_buf_put(&c->cin); /* idle connections hold no buffer */
            return RUN_WAIT;
        }
        if (c->cin.data == NULL)
            gh_buf_get(&c->cin);
        n = proxy__ep_read(&c->cli, &c->cin);
        if (n > 0) {
            if ((size_t)n == gh_buf_len(&c->cin) && c->nreq > 0)
                arm(c, c->svc->conf->client_header_timeout); /* first byte after keep-alive */
            continue;
        }
        if (n == GH_AGAIN)
            continue; /* rd was cleared: the check above waits */
        conn_close(c); /* end of stream or error between requests */
        return RUN_CONTINUE;
    }
}

static int st_connect(struct proxy_conn *c)
{
    int rc = proxy__up_progress(c);

    if (rc == GH_AGAIN)
        return RUN_WAIT;
    if (rc == GH_ERR) {
        if (c->why != GH_REASON_UPSTREAM_TLS)
            gh_log_warn_errno("service %s: server %s (%s): connect", c->svc->conf->name,
                              c->srv->name, c->srv->addr);
        return upstream_failed(c, c->why == GH_REASON_UPSTREAM_TLS ? GH_REASON_UPSTREAM_TLS
                                                                  : GH_REASON_UPSTREAM_CONNECT);
    }
    set_state(c, ST_EXCHANGE);
    return RUN_CONTINUE;
}

/* Appends one chunk (size line, data, CRLF); room was checked. */
static void put_chunk(struct gh_buf *out, const char *d, size_t n)
{
    char line[24];
    int l = snprintf(line, sizeof(line), "%zx\r\n", n);

    gh_buf_append(out, line, (size_t)l);
    gh_buf_append(out, d, n);
    gh_buf_append(out, "\r\n", 2);
}

/* Moves body bytes from in to out under framing f. Returns bytes of input
 * consumed, or -1 on malformed chunked input (*why set). Sets *done. */
static long pump(struct gh_buf *in, struct gh_buf *out, enum http1_framing f, uint64_t *left,
                 struct http1_chunk *ck, int chunk_out, const struct http1_limits *lim,
                 int *done, enum gh_reason *why)
{
    long moved = 0;

    if (out->data == NULL)
        gh_buf_get(out);
    if (gh_buf_room(out) < 64)
        gh_buf_compact(out);
    if (f == HTTP1_BODY_LENGTH || f == HTTP1_BODY_CLOSE) {
        size_t n = gh_buf_len(in), room = gh_buf_room(out);
        if (chunk_out)
            room = room > 32 ? room - 32 : 0;
        if (n > room)
            n = room;
        if (f == HTTP1_BODY_LENGTH && n > *left)
            n = (size_t)*left;
        if (n == 0)
            return 0;
        if (chunk_out)
            put_chunk(out, in->data + in->r, n);
        else
            gh_buf_append(out, in->data + in->r, n);
        gh_buf_consume(in, n);
        if (f == HTTP1_BODY_LENGTH) {
            *left -= n;
            *done = *left == 0;
        }
        return (long)n;
    }
    /* chunked in, chunked out (re-framed) */
    while (gh_buf_len(in) > 0 && !*done) {
        size_t room = gh_buf_room(out), lim_in, used, dlen;
        const char *d;
        int rc;
        if (room < 64) {
            gh_buf_compact(out);
            room = gh_buf_room(out);
            if (room < 64)
                break;
        }
        lim_in = gh_buf_len(in);
        if (lim_in > room - 32)
            lim_in = room - 32;
        rc = http1_chunk_decode(ck, in->data + in->r, lim_in, lim, &used, &d, &dlen, done, why);
        if (rc == GH_ERR)
            return -1;
        if (dlen)
            put_chunk(out, d, dlen);
        gh_buf_consume(in, used);
        moved += (long)used;
        if (*done)
            gh_buf_append(out, "0\r\n\r\n", 5);
        if (used == 0)
            break;
    }
    return moved;
}

/* The final response head is parsed; decide how it reaches the client. */
static int begin_response(struct proxy_conn *c, const struct http1_msg *m)
{
    c->resp = *m;
    c->resp.hdrs = NULL;
    c->status = m->status;
    c->resp_started = 1;
    c->resp_left = m->content_length;
    http1_chunk_init(&c->resp_ck);
    if (m->framing == HTTP1_BODY_CLOSE) {
        if (c->req.version == 11)
            c->resp_chunk_out = 1;
        else
            c->close_after = 1;
    }
    if (m->flags & HTTP1_F_WINAUTH)
        c->up_private = 1;
    if (c->w->draining)
        c->close_after = 1;
    proxy__write_resp_head(c, c->uin.data + c->uin.r, m);
    gh_buf_consume(&c->uin, m->head_len);
    c->resp_done = m->framing == HTTP1_BODY_NONE;
    return 0;
}

static void finish_exchange(struct proxy_conn *c)
{
    int reusable = c->req_done && c->resp_done && !(c->resp.flags & HTTP1_F_CONN_CLOSE) &&
                   gh_buf_len(&c->uin) == 0 && c->up != NULL &&
                   (c->up->ep.ssl == NULL || !SSL_has_pending(c->up->ep.ssl));

    proxy__log_access(c);
    uncount(c);
    if (c->up_private && reusable && !c->close_after) {
        /* Stays with this client: an authenticated connection is never
         * handed to anyone else. */
    } else {
        proxy__up_release(c, reusable && !c->up_private);
        if (c->up_private)
            c->up_private = 0, c->srv = NULL;
    }
    if (c->head_kept) {
        gh_buf_consume(&c->cin, c->req.head_len);
        c->head_kept = 0;
    }
    gh_buf_put(&c->uin);
    gh_buf_put(&c->uout);
    gh_buf_put(&c->cout); /* empty here: an idle connection keeps no buffer */
    if (c->close_after || !c->req_done) {
        set_state(c, ST_CLOSING);
        return;
    }
    memset(&c->req, 0, sizeof(c->req));
    set_state(c, ST_READ_HEAD);
}

static int st_exchange(struct proxy_conn *c)
{
    const struct http1_limits *lim = &c->svc->lim;
    int progress = 0, done;
    enum gh_reason why = GH_REASON_NONE;
    long n;

    /* request towards the real server */
    if (gh_buf_len(&c->uout) > 0 && c->up->ep.wr) {
        n = proxy__ep_write(&c->up->ep, &c->uout);
        if (n == GH_ERR)
            return upstream_failed(c, GH_REASON_UPSTREAM_CLOSED);
        if (n > 0) {
            c->up_written = 1;
            progress = 1;
        }
    }
    if (!c->req_done) {
        if (gh_buf_len(&c->cin) > 0) {
            done = 0;
            n = pump(&c->cin, &c->uout, c->req.framing, &c->req_left, &c->req_ck, 0, lim, &done,
                     &why);
            if (n < 0)
                return refuse(c, why);
            if (n > 0)
                progress = 1;
            if (done)
                c->req_done = 1;
        }
        if (!c->req_done && c->cli.rd && gh_buf_len(&c->cin) < GH_BUF_SIZE / 2) {
            if (c->cin.data == NULL)
                gh_buf_get(&c->cin);
            n = proxy__ep_read(&c->cli, &c->cin);
            if (n > 0) {
                c->bytes_in += (uint64_t)n;
                progress = 1;
            } else if (n == 0 || n == GH_ERR) {
                /* The client gave up in the middle of its body. */
                c->why = GH_REASON_CLIENT_TIMEOUT;
                proxy__log_access(c);
                conn_close(c);
                return RUN_CONTINUE;
            }
        }
    }
    /* response from the real server */
    if (c->up->ep.rd && (c->uin.data == NULL || gh_buf_room(&c->uin) > 0 || c->uin.r > 0)) {
        if (c->uin.data == NULL)
            gh_buf_get(&c->uin);
        n = proxy__ep_read(&c->up->ep, &c->uin);
        if (n > 0) {
            progress = 1;
        } else if (n == 0 || n == GH_ERR) {
            if (c->resp_started && c->resp.framing == HTTP1_BODY_CLOSE && !c->resp_done &&
                n == 0) {
                c->resp_done = 1;
                if (c->resp_chunk_out) {
                    if (gh_buf_room(&c->cout) < 5)
                        gh_buf_compact(&c->cout);
                    if (gh_buf_room(&c->cout) < 5)
                        gh_buf_grow(&c->cout, c->cout.cap + 64);
                    gh_buf_append(&c->cout, "0\r\n\r\n", 5);
                }
                c->up->ep.hup = 1; /* not reusable */
                progress = 1;
            } else if (!c->resp_started && gh_buf_len(&c->uin) == 0) {
                return upstream_failed(c, GH_REASON_UPSTREAM_CLOSED);
            } else if (!c->resp_done) {
                return refuse(c, c->resp_started ? GH_REASON_UPSTREAM_CLOSED
                                                 : GH_REASON_BAD_RESPONSE);
            }
        }
    }
    while (!c->resp_started && gh_buf_len(&c->uin) > 0) {
        struct http1_msg m;
        int rc;
        memset(&m, 0, sizeof(m));
        m.hdrs = c->w->scratch;
        rc = http1_parse_response(c->uin.data + c->uin.r, gh_buf_len(&c->uin), lim,
                                  c->req.flags & HTTP1_F_HEAD, &m);
        if (rc == GH_ERR) {
            gh_log_warn("service %s: server %s sent a malformed response head",
                        c->svc->conf->name, c->srv->name);
            return refuse(c, GH_REASON_BAD_RESPONSE);
        }
        if (rc == GH_AGAIN) {
            if (gh_buf_room(&c->uin) == 0 && c->uin.r == 0)
                gh_buf_grow(&c->uin, lim->max_header_size + 1024);
            break;
        }
        progress = 1;
        if (m.status == 101) {
            if (!(c->req.flags & HTTP1_F_UPGRADE))
                return refuse(c, GH_REASON_BAD_RESPONSE);
            c->status = 101;
            c->resp_started = 1;
            proxy__write_resp_head(c, c->uin.data + c->uin.r, &m);
            gh_buf_consume(&c->uin, m.head_len);
            if (c->head_kept) {
                gh_buf_consume(&c->cin, c->req.head_len);
                c->head_kept = 0;
            }
            proxy__log_access(c);
            set_state(c, ST_TUNNEL);
            return RUN_CONTINUE;
        }
        if (m.status < 200) {
            /* Interim responses go to HTTP/1.1 clients only. */
            if (c->req.version == 11)
                proxy__write_resp_head(c, c->uin.data + c->uin.r, &m);
            gh_buf_consume(&c->uin, m.head_len);
            continue;
        }
        begin_response(c, &m);
    }
    if (c->resp_started && !c->resp_done && gh_buf_len(&c->uin) > 0) {
        done = 0;
        n = pump(&c->uin, &c->cout, c->resp.framing, &c->resp_left, &c->resp_ck,
                 c->resp_chunk_out, lim, &done, &why);
        if (n < 0) {
            gh_log_warn("service %s: server %s sent malformed chunked framing",
                        c->svc->conf->name, c->srv->name);
            return refuse(c, GH_REASON_BAD_RESPONSE);
        }
        if (n > 0)
            progress = 1;
        if (done)
            c->resp_done = 1;
    }
    /* towards the client */
    if (gh_buf_len(&c->cout) > 0 && c->cli.wr) {
        n = proxy__ep_write(&c->cli, &c->cout);
        if (n == GH_ERR) {
            proxy__log_access(c);
            conn_close(c);
            return RUN_CONTINUE;
        }
        if (n > 0) {
            c->bytes_out += (uint64_t)n;
            progress = 1;
        }
    }
    if (c->resp_done && gh_buf_len(&c->cout) == 0) {
        finish_exchange(c);
        return RUN_CONTINUE;
    }
    if (progress) {
        const struct gh_conf_service *cf = c->svc->conf;
        arm(c, c->resp_started || !c->req_done ? cf->idle_timeout : cf->server_timeout);
        return RUN_CONTINUE;
    }
    return RUN_WAIT;
}

/* Copies bytes one way for the tunnel; returns >0 moved, 0 nothing, -1 end. */
static int relay(struct proxy_ep *from, struct gh_buf *in, struct proxy_ep *to, struct gh_buf *out)
{
    int moved = 0;
    long n;

    if (in->data == NULL)
        gh_buf_get(in);
    if (out->data == NULL)
        gh_buf_get(out);
    if (from->rd && gh_buf_room(in) > 0) {
        n = proxy__ep_read(from, in);
        if (n == 0 || n == GH_ERR)
            return -1;
        moved |= n > 0;
    }
    if (gh_buf_len(in) > 0) {
        size_t k = gh_buf_len(in);
        if (gh_buf_room(out) < k)
            gh_buf_compact(out);
        if (k > gh_buf_room(out))
            k = gh_buf_room(out);
        gh_buf_append(out, in->data + in->r, k);
        gh_buf_consume(in, k);
        moved |= k > 0;
    }
    if (gh_buf_len(out) > 0 && to->wr) {
        n = proxy__ep_write(to, out);
        if (n == GH_ERR)
            return -1;
        moved |= n > 0;
    }
    return moved;
}

static int st_tunnel(struct proxy_conn *c)
{
    int a = relay(&c->cli, &c->cin, &c->up->ep, &c->uout);
    int b = a < 0 ? -1 : relay(&c->up->ep, &c->uin, &c->cli, &c->cout);

    if (a < 0 || b < 0) {
        /* Flush what the server said last, then close both sides. */
        if (b >= 0 || gh_buf_len(&c->cout) > 0) {
            uncount(c);
            proxy__up_close(c);
            set_state(c, ST_CLOSING);
            return RUN_CONTINUE;
        }
        conn_close(c);
        return RUN_CONTINUE;
    }
    if (a || b) {
        arm(c, c->svc->conf->tunnel_timeout);
        return RUN_CONTINUE;
    }
    return RUN_WAIT;
}

static int st_closing(struct proxy_conn *c)
{
    if (gh_buf_len(&c->cout) > 0) {
        long n;
        if (!c->cli.wr)
            return RUN_WAIT;
        n = proxy__ep_write(&c->cli, &c->cout);
        if (n == GH_ERR) {
            conn_close(c);
            return RUN_CONTINUE;
        }
        return RUN_CONTINUE; /* a partial write cleared wr: the next pass waits */
    }
    if (c->lingering) {
        /* Half-close and read what the client still sends, bounded in
         * bytes and time, so our answer is not lost to a reset. */
        long n;
        if (!c->shut_done) {
            if (c->cli.ssl)
                SSL_shutdown(c->cli.ssl);
            ERR_clear_error();
            shutdown(c->cli.fd, SHUT_WR);
            c->shut_done = 1;
            c->req_left = 0;
        }
        gh_buf_get(&c->cin);
        while (c->cli.rd) {
            c->cin.r = c->cin.w = 0;
            n = proxy__ep_read(&c->cli, &c->cin);
            if (n == 0 || n == GH_ERR || c->req_left > LINGER_MAX) {
                conn_close(c);
                return RUN_CONTINUE;
            }
            if (n > 0)
                c->req_left += (uint64_t)n;
        }
        return RUN_WAIT;
    }
    conn_close(c);
    return RUN_CONTINUE;
}

static void run(struct proxy_conn *c)
{
    int i, r = RUN_WAIT;

    assert(c->magic == PROXY_MAGIC_CONN);
    for (i = 0; i < RUN_STEPS && c->st != ST_CLOSED; i++) {
        switch (c->st) {
        case ST_TLS_HANDSHAKE:
            r = st_handshake(c);
            break;
        case ST_READ_HEAD:
            r = st_read_head(c);
            break;
        case ST_QUEUED:
            r = RUN_WAIT; /* proxy__waitq_dispatch moves it on */
            break;
        case ST_CONNECT:
            r = st_connect(c);
            break;
        case ST_EXCHANGE:
            r = st_exchange(c);
            break;
        case ST_TUNNEL:
            r = st_tunnel(c);
            break;
        case ST_CLOSING:
            r = st_closing(c);
            break;
        case ST_CLOSED:
            return;
        }
        if (r == RUN_WAIT)
            return;
    }
    if (c->st != ST_CLOSED && !c->queued) {
        /* Still work to do: run again after other connections had a turn,
         * since with edge-triggered events nothing else would wake us. */
        c->queued = 1;
        c->qnext = c->w->queue;
        c->w->queue = c;
    }
}

void proxy__conn_event(struct proxy_conn *c, struct proxy_ep *ep, uint32_t events)
{
    if (c->st == ST_CLOSED || ep->fd == -1)
        return;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
        ep->rd = 1;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        ep->wr = 1;
    if (events & (EPOLLHUP | EPOLLERR))
        ep->hup = 1;
    run(c);
}

void proxy__conn_requeue(struct proxy_conn *c)
{
    c->queued = 0;
    if (c->st != ST_CLOSED)
        run(c);
}

void proxy__conn_timeout(struct proxy_conn *c)
{
    switch (c->st) {
    case ST_TLS_HANDSHAKE:
        proxy__tls_timed_out(c);
        conn_close(c);
        return;
    case ST_READ_HEAD:
        if (gh_buf_len(&c->cin) > 0) {
            c->nreq++;
            refuse(c, GH_REASON_CLIENT_TIMEOUT);
            break;
        }
        /* FALLTHROUGH */
    case ST_TUNNEL:
    case ST_CLOSING:
        conn_close(c);
        return;
    case ST_QUEUED:
        waitq_remove(c);
        refuse(c, GH_REASON_QUEUE_TIMEOUT);
        break;
    case ST_CONNECT:
        gh_log_warn("service %s: server %s (%s): connect timed out", c->svc->conf->name,
                    c->srv->name, c->srv->addr);
        upstream_failed(c, GH_REASON_UPSTREAM_TIMEOUT);
        break;
    case ST_EXCHANGE:
        if (!c->resp_started) {
            gh_log_warn("service %s: server %s (%s): no response in time", c->svc->conf->name,
                        c->srv->name, c->srv->addr);
            refuse(c, GH_REASON_UPSTREAM_TIMEOUT);
        } else {
            proxy__log_access(c);
            conn_close(c);
            return;
        }
        break;
    case ST_CLOSED:
        return;
    }
    if (c->st != ST_CLOSED)
        run(c);
}

void proxy__conn_drain(struct proxy_conn *c)
{
    if (c->st == ST_READ_HEAD && gh_buf_len(&c->cin) == 0 && c->nreq > 0)
        conn_close(c);
    else
        c->close_after = 1;
}

void proxy__conn_accept(struct proxy_worker *w, int fd, struct sockaddr_storage *ss,
                        struct proxy_gen *g, struct proxy_service *svc)
{
    struct proxy_conn *c = gh_calloc(1, sizeof(*c));
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    c->magic = PROXY_MAGIC_CONN;
    c->w = w;
    c->gen = proxy__gen_ref(g);
    c->svc = svc;
    c->heap_idx = SIZE_MAX;
    c->cli.kind = EP_CLIENT;
    c->cli.fd = fd;
    c->cli.owner = c;
    c->cli.rd = c->cli.wr = 1; /* optimistic: data often arrives with the accept */
    c->t_start = gh_now_ms();
    c->peer_ss = *ss;
    c->limited = svc->conf->max_conns_per_source > 0;
    if (ss->ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        port = ntohs(a->sin_port);
        snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, port);
    } else if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
        snprintf(c->peer, sizeof(c->peer), "[%s]:%u", ip, port);
    }
    gh_strlcpy(c->ip, ip, sizeof(c->ip));
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    atomic_fetch_add(&w->n_conns_total, 1);
    atomic_fetch_add(&svc->st->conns_active, 1);
    atomic_fetch_add(&svc->st->conns_total, 1);
    if (svc->tls != NULL) {
        c->cli.ssl = SSL_new(svc->tls);
        if (c->cli.ssl == NULL || SSL_set_fd(c->cli.ssl, fd) != 1) {
            ERR_clear_error();
            c->st = ST_TLS_HANDSHAKE;
            conn_close(c);
            return;
        }
        SSL_set_accept_state(c->cli.ssl);
        c->st = ST_TLS_HANDSHAKE;
        set_state(c, ST_TLS_HANDSHAKE);
    } else {
        c->st = ST_READ_HEAD;
        set_state(c, ST_READ_HEAD);
    }
    if (proxy__ep_add(w, &c->cli) == -1) {
        conn_close(c);
        return;
    }
    run(c);
}
