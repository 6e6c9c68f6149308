/*
 * The client connection state machine. One entry per wake-up: an epoll
 * event sets the endpoint's readiness and calls run(), which loops on the
 * state until nothing more can be done without waiting.
 *
 *   TLS_HANDSHAKE -> READ_HEAD -> [STORE_WAIT -> READ_HEAD] -> [HOLD_BODY] -> [QUEUED]
 *     -> CONNECT -> EXCHANGE
 *   [TLS_HANDSHAKE] -> L4_CHOOSE -> [STORE_WAIT -> L4_CHOOSE] -> [QUEUED] -> CONNECT -> TUNNEL
 *   EXCHANGE -> READ_HEAD (keep-alive) | TUNNEL (a checked 101) | CLOSING -> CLOSED
 *
 * READ_HEAD reads until the head is complete and parses it (http1_parse.c
 * decides framing and what every header line is, once). The firewall then
 * decides in one call (rules_policy_check); the upgrade is decided
 * (upgrade.c). With a cluster store, a request whose service limits its
 * client's rate or keeps it by source address first asks the store
 * (shared.c) and waits in STORE_WAIT; its head is parsed again when the
 * answer is in. A chunked request waits in HOLD_BODY until its first chunk
 * line has parsed and what is buffered of its body is valid, so the common
 * malformed bodies never reach the application. Only then is the head for
 * the real server written, from the parsed model (headers.c), and a server
 * chosen: a pooled connection or a new one (CONNECT). EXCHANGE runs both
 * directions at once, each an explicit message machine (c->rq, c->rs:
 * HEAD, BODY_*, DONE, TUNNEL; http1_msg.c) whose bodies body.c pumps
 * between the buffers. A full buffer stops reading the side that fills it:
 * that is back-pressure, and it bounds memory per connection to four
 * buffers. When both messages are DONE the real-server connection goes back
 * to the pool (or stays private to this client after NTLM/Negotiate) and
 * the client connection waits for the next request.
 *
 * Every move goes through proxy__conn_set_state(), checked against legal[]:
 * an illegal one is an internal error, logged, counted and the connection
 * closed, never a silent jump.
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

#define RUN_STEPS 64
#define CLOSING_MS 5000
#define LINGER_MAX (1024 * 1024)

static const char *const state_names[] = {
#define PROXY_STATE_NAME(n) #n,
    PROXY_STATES(PROXY_STATE_NAME)
#undef PROXY_STATE_NAME
};

#define B(s) (1u << ST_##s)
static const unsigned legal[ST_COUNT] = {
    [ST_ADMIT_WAIT] = B(TLS_HANDSHAKE) | B(L4_CHOOSE) | B(READ_HEAD) | B(CLOSED),
    [ST_TLS_HANDSHAKE] = B(READ_HEAD) | B(L4_CHOOSE) | B(CLOSED),
    [ST_L4_CHOOSE] = B(STORE_WAIT) | B(QUEUED) | B(CONNECT) | B(CLOSING) | B(CLOSED),
    [ST_READ_HEAD] = B(STORE_WAIT) | B(HOLD_BODY) | B(QUEUED) | B(CONNECT) | B(EXCHANGE) |
                     B(CLOSING) | B(CLOSED),
    [ST_STORE_WAIT] = B(READ_HEAD) | B(L4_CHOOSE) | B(CLOSING) | B(CLOSED),
    [ST_HOLD_BODY] = B(QUEUED) | B(CONNECT) | B(EXCHANGE) | B(CLOSING) | B(CLOSED),
    /* QUEUED again: the slot it was given went to another worker first. */
    [ST_QUEUED] = B(QUEUED) | B(CONNECT) | B(EXCHANGE) | B(CLOSING) | B(CLOSED),
    /* CONNECT and EXCHANGE go to CONNECT or EXCHANGE again when a request
     * moves to another (or a fresh) real-server connection. */
    [ST_CONNECT] = B(CONNECT) | B(EXCHANGE) | B(TUNNEL) | B(QUEUED) | B(CLOSING) | B(CLOSED),
    [ST_EXCHANGE] = B(READ_HEAD) | B(TUNNEL) | B(CONNECT) | B(EXCHANGE) | B(QUEUED) | B(CLOSING) |
                    B(CLOSED),
    [ST_TUNNEL] = B(CLOSING) | B(CLOSED),
    [ST_CLOSING] = B(CLOSED),
    [ST_CLOSED] = 0,
};
#undef B

int proxy__conn_legal(enum proxy_state from, enum proxy_state to)
{
    return (unsigned)from < ST_COUNT && (unsigned)to < ST_COUNT && (legal[from] & (1u << to));
}

const char *proxy__state_name(enum proxy_state st)
{
    return (unsigned)st < ST_COUNT ? state_names[st] : "?";
}

void proxy__conn_arm(struct proxy_conn *c, long long ms)
{
    proxy__timer_set(c->w, c, c->w->now_ms + (uint64_t)ms);
}

/* What the exchange waits for now, from both message machines and the
 * buffers: while a body goes up, a full uout means the server is not
 * reading (it is not the client's silence). */
static enum proxy_wait exchange_wait(const struct proxy_conn *c)
{
    if (c->rs.st != H1M_HEAD && c->rs.st != H1M_DONE)
        return WAIT_STREAM;
    if (gh_buf_len(&c->uout) >= GH_BUF_SIZE / 2 ||
        (!http1_m_in_body(&c->rq) && gh_buf_len(&c->uout) > 0))
        return WAIT_SERVER_READ;
    if (http1_m_in_body(&c->rq))
        return WAIT_CLIENT_BODY;
    return c->rs.st == H1M_DONE ? WAIT_STREAM : WAIT_RESPONSE;
}

/* Arms the bound on the exchange's current wait: a response streaming by
 * idle-timeout, a request still on its way (each move re-arms these: they
 * bound silence), and a response not yet begun by
 * server-timeout, armed once when the request is out, so that a server
 * trickling interim responses cannot stretch it. */
static void exchange_arm(struct proxy_conn *c, int entering)
{
    const struct gh_conf_service *cf = c->svc->conf;
    enum proxy_wait w = exchange_wait(c);

    if (w == WAIT_RESPONSE && c->wait == WAIT_RESPONSE && !entering)
        return;
    c->wait = w;
    proxy__conn_arm(c, w == WAIT_CLIENT_BODY ? cf->client_body_timeout
                       : w == WAIT_RESPONSE  ? cf->server_timeout
                                             : cf->idle_timeout);
}

static void internal_error(struct proxy_conn *c, const char *what)
{
    atomic_fetch_add(&c->svc->st->internal_errors, 1);
    gh_log_err("internal error: service %s, conn %s: %s (state %s, request %s, response %s)",
               c->svc->conf->name, c->peer, what, state_names[c->st], http1_m_name(c->rq.st),
               http1_m_name(c->rs.st));
}

void proxy__conn_set_state(struct proxy_conn *c, enum proxy_state st)
{
    const struct gh_conf_service *cf = c->svc->conf;

    assert(c->st != ST_CLOSED);
    if (!(legal[c->st] & (1u << st))) {
        char what[96];
        snprintf(what, sizeof(what), "illegal transition %s -> %s", state_names[c->st],
                 state_names[st]);
        internal_error(c, what);
        proxy__conn_close(c);
        return;
    }
    gh_log_debug("conn %p %s: %s -> %s", (void *)c, c->peer, state_names[c->st],
                 state_names[st]);
    c->st = st;
    switch (st) {
    case ST_TLS_HANDSHAKE:
    case ST_HOLD_BODY:
    case ST_L4_CHOOSE:
        proxy__conn_arm(c, cf->client_header_timeout);
        break;
    case ST_READ_HEAD:
        proxy__conn_arm(c, c->nreq > 0 && gh_buf_len(&c->cin) == 0 ? cf->keepalive_timeout
                                                                   : cf->client_header_timeout);
        break;
    case ST_STORE_WAIT:
    case ST_ADMIT_WAIT:
        /* The store answers within its own timeout; this only backs it. */
        proxy__conn_arm(c, cf->client_header_timeout);
        break;
    case ST_QUEUED:
        proxy__conn_arm(c, cf->queue_timeout);
        break;
    case ST_CONNECT:
        proxy__conn_arm(c, cf->connect_timeout);
        break;
    case ST_EXCHANGE:
        exchange_arm(c, 1);
        break;
    case ST_TUNNEL:
        proxy__conn_arm(c, cf->tunnel_timeout);
        break;
    case ST_CLOSING:
        proxy__conn_arm(c, CLOSING_MS);
        break;
    case ST_CLOSED:
        proxy__timer_clear(c->w, c);
        break;
    case ST_COUNT:
        break;
    }
}

/* A message machine refused a move: the same kind of bug as an illegal
 * state transition. */
static int msg_set(struct proxy_conn *c, struct http1_m *m, enum http1_mstate st)
{
    if (http1_m_set(m, st) == 0)
        return 0;
    internal_error(c, m == &c->rq ? "illegal request message transition"
                                  : "illegal response message transition");
    return -1;
}

void proxy__conn_uncount(struct proxy_conn *c)
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

void proxy__conn_close(struct proxy_conn *c)
{
    struct proxy_worker *w = c->w;

    if (c->st == ST_CLOSED)
        return;
    if (c->st == ST_QUEUED)
        waitq_remove(c);
    if (c->st == ST_TUNNEL)
        proxy__tunnel_end(c);
    proxy__shared_forget(c);
    c->st = ST_CLOSING; /* CLOSED is legal from here, whatever came before */
    proxy__conn_set_state(c, ST_CLOSED);
    proxy__conn_uncount(c);
    atomic_fetch_sub(&c->svc->st->conns_active, 1);
    if (c->limited) {
        rules_limit_conn_close(c->lsvc->scope, (struct sockaddr *)&c->peer_ss,
                               (long)c->lsvc->conf->max_conns_per_source);
        proxy__shared_conns_publish(c);
    }
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

/* Answers the current request with an error page and closes after it.
 * Whatever the real server got of this request, its connection is closed:
 * it is never reused after a refusal. */
static int refuse(struct proxy_conn *c, enum gh_reason why)
{
    int status = gh_reason_status(why);

    c->why = why;
    proxy__conn_uncount(c);
    proxy__up_close(c);
    gh_buf_put(&c->uout);
    gh_buf_put(&c->uin);
    if (gh_reason_is_security(why))
        proxy__log_security(c, why, c->svc->mode == PROXY_MODE_HTTP ? status : 0);
    if (c->svc->mode != PROXY_MODE_HTTP) {
        /* Layer 4 has no page to answer with: the refusal is a close. */
        proxy__log_access(c);
        proxy__conn_close(c);
        return RUN_CONTINUE;
    }
    if (c->rs.st != H1M_HEAD) {
        /* Part of a response is out: the only honest signal left is a cut. */
        proxy__log_access(c);
        proxy__conn_close(c);
        return RUN_CONTINUE;
    }
    gh_buf_put(&c->cout);
    if (!proxy__join_write_error(c, why))
        proxy__write_error(c, status);
    c->bytes_out += gh_buf_len(&c->cout);
    proxy__log_access(c);
    /* Unread request bytes are drained before closing so the client sees
     * the answer rather than a reset. */
    c->lingering = c->rq.st != H1M_DONE || c->st == ST_READ_HEAD;
    proxy__conn_set_state(c, ST_CLOSING);
    return RUN_CONTINUE;
}

/* A deny or redirect rule decided, or a `redirect https` service answers:
 * a fixed page or a Location, then close. Only a rule is a security event. */
static int refuse_rule(struct proxy_conn *c, const struct rules_decision *d)
{
    if (d->why == GH_REASON_RULE) {
        c->why = GH_REASON_RULE;
        c->rule_id = d->rule.id;
        proxy__log_security(c, GH_REASON_RULE, d->rule.status);
    }
    gh_buf_put(&c->cout);
    if (d->why == GH_REASON_RULE && d->rule.action == RULES_DENY)
        proxy__write_error(c, d->rule.status);
    else
        proxy__write_redirect(c, &d->redirect);
    c->bytes_out += gh_buf_len(&c->cout);
    proxy__log_access(c);
    c->lingering = c->rq.st != H1M_DONE;
    proxy__conn_set_state(c, ST_CLOSING);
    return RUN_CONTINUE;
}

int proxy__conn_refuse(struct proxy_conn *c, enum gh_reason why)
{
    return refuse(c, why);
}

static int st_handshake(struct proxy_conn *c)
{
    int n = SSL_do_handshake(c->cli.ssl), e;

    if (n == 1) {
        const char *sni = SSL_get_servername(c->cli.ssl, TLSEXT_NAMETYPE_host_name);
        if (sni != NULL && gh_strlcpy(c->sni, sni, sizeof(c->sni)) == -1) {
            proxy__conn_close(c); /* OpenSSL takes at most 255 bytes: never happens */
            return RUN_CONTINUE;
        }
        /* Full against resumed tells an operator (and the bench) whether
         * clients get the cheap handshake they asked for. */
        atomic_fetch_add(&c->svc->st->tls_done[SSL_session_reused(c->cli.ssl) ? 1 : 0], 1);
        proxy__ep_tls_ready(&c->cli);
        proxy__conn_set_state(c, c->lsvc->mode == PROXY_MODE_TCP ? ST_L4_CHOOSE : ST_READ_HEAD);
        return RUN_CONTINUE;
    }
    switch ((e = SSL_get_error(c->cli.ssl, n))) {
    case SSL_ERROR_WANT_READ:
        c->cli.rd = 0;
        proxy__ep_idle(&c->cli); /* a stalled handshake holds no buffers past the budget */
        return RUN_WAIT;
    case SSL_ERROR_WANT_WRITE:
        c->cli.wr = 0;
        return RUN_WAIT;
    default:
        proxy__tls_failed(c, e); /* counts, logs, clears the error queue */
        proxy__conn_close(c);
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

static int dispatch(struct proxy_conn *c, const char *head, struct http1_msg *m);
static int to_server(struct proxy_conn *c, struct proxy_server *srv);
static int watch_client(struct proxy_conn *c);
static int start_upstream(struct proxy_conn *c, struct proxy_server *srv, int fresh);
static int enqueue(struct proxy_conn *c);
static void run(struct proxy_conn *c);

struct hdr_ctx {
    const char *head;
    const struct http1_msg *m;
    const struct proxy_conn *c;
};

/* True for a line the real server will get from the client: Host, the
 * end-to-end lines, a checked WebSocket Upgrade, a trusted proxy's
 * X-Forwarded-For chain. Gatehouse's own lines are not the client's to
 * match. */
static int forwarded_line(const struct hdr_ctx *h, const struct http1_hdr *f)
{
    const char *n = h->head + f->name.off;

    switch (f->kind) {
    case HTTP1_H_E2E:
    case HTTP1_H_EXPECT:
    case HTTP1_H_HOST:
        return 1;
    case HTTP1_H_PROXY:
        return h->c->peer_trusted && gh_strncaseeq(n, f->name.len, "x-forwarded-for");
    case HTTP1_H_HOP:
        return h->c->upgrade == PROXY_UPGRADE_WEBSOCKET && gh_strncaseeq(n, f->name.len, "upgrade");
    default:
        return 0;
    }
}

/* The rule set's view of headers: the idx-th line of a name among those
 * the real server will get from the client: a rule checks what is sent. */
static int rules_header(void *ctx, const char *name, unsigned idx, const char **v, size_t *vlen)
{
    const struct hdr_ctx *h = ctx;
    unsigned i;

    for (i = 0; i < h->m->nhdrs; i++) {
        const struct http1_hdr *f = &h->m->hdrs[i];
        if (!forwarded_line(h, f))
            continue;
        if (gh_strncaseeq(h->head + f->name.off, f->name.len, name) && idx-- == 0) {
            *v = h->head + f->value.off;
            *vlen = f->value.len;
            return 0;
        }
    }
    return -1;
}

/* Room for the normalised target in the worker's scratch. */
static char *target_room(struct proxy_worker *w, size_t len)
{
    if (w->target_cap < len + 2) {
        free(w->target);
        w->target_cap = len + 64;
        w->target = gh_calloc(1, w->target_cap);
    }
    return w->target;
}

/* Asks the firewall about the request at the front of cin. NONE with d
 * filled (the normalised target in the worker's scratch), or the reason. */
static enum gh_reason check_request(struct proxy_conn *c, const char *head,
                                    const struct http1_msg *m, struct rules_decision *d)
{
    struct hdr_ctx hc = {head, m, c};
    struct rules_http_req r;
    int k;

    memset(&r, 0, sizeof(r));
    r.method = head + m->method.off;
    r.method_len = m->method.len;
    r.target = head + m->path.off;
    r.target_len = m->path.len;
    r.host = head + m->host.off;
    r.host_len = m->host.len;
    r.sni = c->sni;
    r.source = (struct sockaddr *)&c->client_ss;
    r.rate_verdict = !c->req_shared ? 0 : c->ask_limit == -1 ? -1 : 1;
    r.header = rules_header;
    r.ctx = &hc;
    rules_policy_check(c->svc->policy, &r, target_room(c->w, m->path.len), d);
    for (k = 0; k < d->rule.nlogged; k++)
        proxy__log_flagged(c, d->rule.logged[k]);
    return d->why;
}

/* A fresh exchange: both message machines at HEAD, nothing counted yet. */
static void exchange_reset(struct proxy_conn *c)
{
    if (c->rq.st != H1M_HEAD && msg_set(c, &c->rq, H1M_HEAD) == -1)
        http1_m_init(&c->rq);
    if (c->rs.st != H1M_HEAD && msg_set(c, &c->rs, H1M_HEAD) == -1)
        http1_m_init(&c->rs);
    c->t_start = c->w->now_ms;
    c->t_up = 0;
    c->bytes_in = c->req.head_len;
    c->bytes_out = 0;
    c->status = 0;
    c->why = GH_REASON_NONE;
    c->tries = 0;
    c->up_sent = 0;
    c->kept = 0;
    c->continue_sent = 0;
    c->upgrade = PROXY_UPGRADE_NONE;
    c->rule_id = NULL;
    c->edge_token[0] = '\0';
}

/* The service of a request on a shared listener: the one whose allowed
 * hosts name its Host; without such a one, the one whose allowed hosts
 * name the TLS server name, else the listener's first (whose firewall then
 * refuses the Host). */
static struct proxy_service *service_for(const struct proxy_conn *c, const char *head,
                                         const struct http1_msg *m)
{
    struct proxy_service *s;
    char name[300];

    if (c->lsvc->lnext == NULL)
        return c->lsvc;
    if (m->host.len > 0 && rules_host_norm(head + m->host.off, m->host.len, name, sizeof(name)) == 0)
        for (s = c->lsvc; s != NULL; s = s->lnext)
            if (rules_policy_host_allowed(s->policy, name))
                return s;
    if (c->sni[0] != '\0' && rules_host_norm(c->sni, strlen(c->sni), name, sizeof(name)) == 0)
        for (s = c->lsvc; s != NULL; s = s->lnext)
            if (rules_policy_host_allowed(s->policy, name))
                return s;
    return c->lsvc;
}

/* The connection now serves s: its counters follow it, a private real-
 * server connection of another service is not carried over, and trust in
 * the peer is s's to give. */
void proxy__conn_use_service(struct proxy_conn *c, struct proxy_service *s)
{
    if (s == c->svc)
        return;
    atomic_fetch_sub(&c->svc->st->conns_active, 1);
    atomic_fetch_add(&s->st->conns_active, 1);
    atomic_fetch_add(&s->st->conns_total, 1);
    if (c->up != NULL) {
        proxy__up_close(c);
        c->up_private = 0;
        c->srv = NULL;
    }
    c->svc = s;
    c->peer_trusted = proxy__is_trusted(s, &c->peer_ss);
}

/* A complete, valid request head is at the front of cin. */
static int begin_request(struct proxy_conn *c)
{
    struct proxy_worker *w = c->w;
    const char *head = c->cin.data + c->cin.r;
    struct http1_msg *m = &c->req;
    struct rules_decision d;
    enum gh_reason r, r_up;
    int asked;

    /* Service and client first: they are what the shared store is asked
     * about; the head is parsed again when it has answered. */
    proxy__conn_use_service(c, service_for(c, head, m));
    proxy__client_from_request(c, head, m);
    if (c->ask_st == ASK_IDLE && (asked = proxy__shared_ask(c, head, m)) != -1)
        return asked;
    c->nreq++;
    atomic_fetch_add(&w->n_requests, 1);
    exchange_reset(c);
    if (proxy__shared_spend(c) == -1)
        return refuse(c, GH_REASON_INTERNAL);
    if (c->req_shared)
        c->t_start = c->ask_t0; /* the wait for the store is the request's time too */
    copy_for_log(c->method, sizeof(c->method), head + m->method.off, m->method.len);
    copy_for_log(c->path, sizeof(c->path), head + m->path.off, m->path.len);
    copy_for_log(c->host, sizeof(c->host), head + m->host.off, m->host.len);
    c->close_after = (m->flags & HTTP1_F_CONN_CLOSE) || w->draining;
    /* The request's body is owed from here: a refusal drains it. */
    if (http1_m_begin(&c->rq, m, m->framing) == -1) {
        internal_error(c, "request message did not start at HEAD");
        return refuse(c, GH_REASON_INTERNAL);
    }
    /* The upgrade is decided first, so the rules see the Upgrade line only
     * when it is forwarded; its refusal comes after the firewall's. */
    r_up = proxy__upgrade_request(c, head, m);
    r = check_request(c, head, m, &d);
    if (r == GH_REASON_RULE) {
        m->hdrs = NULL;
        return refuse_rule(c, &d);
    }
    if (r == GH_REASON_RATE_LIMIT && c->svc->limit_close) {
        proxy__log_security(c, r, 0);
        c->why = r;
        proxy__log_access(c);
        proxy__conn_close(c);
        return RUN_CONTINUE;
    }
    if (r == GH_REASON_NONE && (m->flags & HTTP1_F_UNDERSCORE) && c->svc->underscore_refuse)
        r = GH_REASON_UNDERSCORE_HEADER;
    if (r == GH_REASON_NONE)
        r = r_up;
    if (r != GH_REASON_NONE) {
        m->hdrs = NULL;
        return refuse(c, r);
    }
    if (d.redirect.status != 0) { /* redirect https: answered here, never forwarded */
        m->hdrs = NULL;
        return refuse_rule(c, &d);
    }
    if ((r = proxy__join_decide(c, head, m)) != GH_REASON_NONE) {
        m->hdrs = NULL;
        return refuse(c, r);
    }
    copy_for_log(c->path, sizeof(c->path), d.target, d.target_len);
    if (m->flags & HTTP1_F_WINAUTH)
        c->up_private = 1;
    if (m->framing == HTTP1_BODY_CHUNKED) {
        /* The client that waits for 100 before sending its body gets it
         * from us: the server is not asked anything before the body's
         * first line has been checked. */
        if ((m->flags & HTTP1_F_EXPECT_CONTINUE) && gh_buf_len(&c->cin) == m->head_len &&
            c->req.version == 11) {
            http1_puts(&c->cout, "HTTP/1.1 100 Continue\r\n\r\n");
            c->continue_sent = 1;
        }
        /* The head stays parsed in the worker's scratch only until we return. */
        m->hdrs = NULL;
        proxy__conn_set_state(c, ST_HOLD_BODY);
        return RUN_CONTINUE;
    }
    proxy__write_req_head(c, head, m, d.target, d.target_len);
    return dispatch(c, head, m);
}

/* Result of looking at the start of a held chunked body. */
static int body_start_checked(struct proxy_conn *c, enum gh_reason *why)
{
    struct http1_chunk ck;
    const char *p = c->cin.data + c->cin.r + c->req.head_len, *d;
    size_t len = gh_buf_len(&c->cin) - c->req.head_len, used, dlen;
    int done = 0, rc = GH_AGAIN;

    /* A throwaway decoder over everything buffered: the real pump later
     * decodes the same bytes the same way. */
    http1_chunk_init(&ck);
    while (len > 0 && !done) {
        rc = http1_chunk_decode(&ck, p, len, &c->svc->lim, &used, &d, &dlen, &done, why);
        if (rc == GH_ERR)
            return GH_ERR;
        p += used;
        len -= used;
        if (used == 0)
            break;
    }
    return done || http1_chunk_started(&ck) ? GH_OK : GH_AGAIN;
}

static int st_hold_body(struct proxy_conn *c)
{
    for (;;) {
        enum gh_reason why = GH_REASON_BAD_CHUNK;
        long n;
        int rc;

        if (gh_buf_len(&c->cout) > 0 && c->cli.wr) {
            n = proxy__ep_write(&c->cli, &c->cout);
            if (n == GH_ERR) {
                proxy__conn_close(c);
                return RUN_CONTINUE;
            }
            if (n > 0)
                c->bytes_out += (uint64_t)n;
        }
        rc = body_start_checked(c, &why);
        if (rc == GH_ERR)
            return refuse(c, why);
        if (rc == GH_OK && gh_buf_len(&c->cout) == 0)
            break;
        if (rc == GH_AGAIN && gh_buf_room(&c->cin) == 0) {
            gh_buf_compact(&c->cin);
            if (gh_buf_room(&c->cin) == 0)
                return refuse(c, GH_REASON_BAD_CHUNK); /* a chunk line longer than a buffer */
        }
        if (rc == GH_OK || !c->cli.rd) {
            if (!c->cli.rd && !c->cli.rd_on_wr && c->cli.ssl != NULL && SSL_pending(c->cli.ssl) > 0) {
                c->cli.rd = 1;
                continue;
            }
            return RUN_WAIT; /* waiting for bytes, or for the 100 to leave */
        }
        n = proxy__ep_read(&c->cli, &c->cin);
        if (n > 0) {
            c->bytes_in += (uint64_t)n;
            continue;
        }
        if (n == GH_AGAIN)
            continue;
        c->why = GH_REASON_BODY_TIMEOUT;
        proxy__log_access(c);
        proxy__conn_close(c); /* the client gave up before its body began */
        return RUN_CONTINUE;
    }
    {
        /* Parse the head again (the scratch index was another request's
         * meanwhile) and write it for the real server. */
        struct http1_msg m;
        const char *head = c->cin.data + c->cin.r;
        const char *t;
        size_t tlen;
        memset(&m, 0, sizeof(m));
        m.hdrs = c->w->scratch;
        if (http1_parse_request(head, c->req.head_len, &c->svc->lim, &m) != GH_OK ||
            rules_policy_normalise(c->svc->policy, head + m.path.off, m.path.len,
                                   target_room(c->w, m.path.len), &t, &tlen) != GH_REASON_NONE) {
            internal_error(c, "a held request no longer parses");
            return refuse(c, GH_REASON_INTERNAL);
        }
        proxy__write_req_head(c, head, &m, t, tlen);
        return dispatch(c, head, &m);
    }
}

/* The head for the real server is in uout; m is the request's parsed head
 * at the front of cin (its index in the worker's scratch): choose where it
 * goes. */
static int dispatch(struct proxy_conn *c, const char *head, struct http1_msg *m)
{
    struct proxy_server *srv = NULL;

    if (c->up == NULL && c->svc->conf->persistence[0] != 'o')
        srv = proxy__persist_find(c, head, m);
    m->hdrs = NULL;
    c->req.hdrs = NULL;
    /* Without a body the head stays in cin until the exchange ends, so a
     * request that met a dead pooled connection can be sent again. */
    if (c->req.framing == HTTP1_BODY_NONE)
        c->kept = c->req.head_len;
    else
        gh_buf_consume(&c->cin, c->req.head_len);
    if (c->up != NULL) {
        /* Private real-server connection (Windows authentication). */
        atomic_fetch_add(&c->srv->st->active, 1);
        c->counted = 1;
        c->t_up = c->w->now_ms;
        c->up->reused = 1;
        proxy__conn_set_state(c, ST_EXCHANGE);
        return RUN_CONTINUE;
    }
    return to_server(c, srv);
}

/* srv (from persistence) or the scheduler's choice: connect, queue or refuse. */
static int to_server(struct proxy_conn *c, struct proxy_server *srv)
{
    if (srv == NULL) {
        int full;
        srv = proxy__pick_server(c->svc, NULL, &c->client_ss, &full, c->w->now_ms);
        if (srv == NULL)
            return full ? enqueue(c) : refuse(c, GH_REASON_NO_SERVER);
    }
    return start_upstream(c, srv, 0);
}

int proxy__conn_to_server(struct proxy_conn *c)
{
    struct proxy_server *srv = NULL;

    if (strcmp(c->svc->conf->persistence, "source-ip") == 0)
        srv = proxy__persist_find(c, NULL, NULL);
    return to_server(c, srv);
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
    proxy__conn_set_state(c, ST_QUEUED);
    return RUN_WAIT;
}

void proxy__waitq_dispatch(struct proxy_worker *w)
{
    while (w->waitq != NULL) {
        struct proxy_conn *c = w->waitq;
        int full;
        struct proxy_server *srv = proxy__pick_server(c->svc, NULL, &c->client_ss, &full, c->w->now_ms);
        if (srv == NULL && full)
            return; /* still no slot: the oldest keeps its place */
        waitq_remove(c);
        if (srv == NULL)
            refuse(c, GH_REASON_NO_SERVER);
        else
            start_upstream(c, srv, 0);
        run(c);
    }
}

static int start_upstream(struct proxy_conn *c, struct proxy_server *srv, int fresh)
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
    c->t_up = c->w->now_ms;
    c->up_sent = 0;
    /* A Layer-4 connection is its client's alone: never pooled, never reused. */
    r = proxy__up_open(c, srv, fresh || c->svc->mode != PROXY_MODE_HTTP);
    if (r == -1) {
        gh_log_warn_errno("service %s: server %s (%s): connect", c->svc->conf->name, srv->name,
                          srv->addr);
        proxy__server_failed(srv);
        proxy__conn_uncount(c);
        return refuse(c, GH_REASON_UPSTREAM_CONNECT);
    }
    proxy__conn_set_state(c, r == 1 ? ST_EXCHANGE : ST_CONNECT);
    return RUN_CONTINUE;
}

/* Methods a client expects may be sent twice (RFC 9110 9.2.2). */
static int idempotent(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0 ||
           strcmp(m, "PUT") == 0 || strcmp(m, "DELETE") == 0;
}

/* Writes the kept head for the real server again (what was written of it
 * went to a connection that died). */
static int rewrite_kept_head(struct proxy_conn *c)
{
    struct http1_msg m;
    const char *head = c->cin.data + c->cin.r, *t;
    size_t tlen;

    memset(&m, 0, sizeof(m));
    m.hdrs = c->w->scratch;
    if (http1_parse_request(head, c->kept, &c->svc->lim, &m) != GH_OK ||
        rules_policy_normalise(c->svc->policy, head + m.path.off, m.path.len,
                               target_room(c->w, m.path.len), &t, &tlen) != GH_REASON_NONE)
        return -1;
    c->uout.r = c->uout.w = 0;
    proxy__write_req_head(c, head, &m, t, tlen);
    return 0;
}

/* The real server failed before a response began.
 *   - A request that can have acted (bytes of a body, or a method that is
 *     not idempotent, reached the server) is refused: 502/504.
 *   - A pooled connection found dead is replaced by a fresh connection to
 *     the same server; that is not the server's failure, nor a retry.
 *   - Otherwise the server is marked failed at once and the request goes to
 *     a different server, up to the service's retries. */
static int upstream_failed(struct proxy_conn *c, enum gh_reason why)
{
    struct proxy_server *old = c->srv, *srv;
    /* A private (NTLM) connection the server closed while idle is as benign
     * as a pooled one: a fresh connection, the client re-authenticates. */
    int reused = c->up != NULL && c->up->reused;
    int resendable = c->up_sent == 0 || (c->kept > 0 && idempotent(c->method));

    proxy__conn_uncount(c);
    proxy__up_close(c);
    gh_buf_put(&c->uin);
    if (c->rs.st != H1M_HEAD || !resendable) {
        if (!reused)
            proxy__server_failed(old);
        return refuse(c, why);
    }
    if (c->up_sent > 0 && rewrite_kept_head(c) == -1)
        return refuse(c, why);
    c->up_private = 0;
    if (reused) {
        gh_log_debug("service %s: pooled connection to %s was closed; a fresh one",
                     c->svc->conf->name, old->name);
        return start_upstream(c, old, 1);
    }
    proxy__server_failed(old);
    if (c->tries >= c->svc->conf->retries)
        return refuse(c, why);
    c->tries++;
    srv = proxy__pick_server(c->svc, old, &c->client_ss, NULL, c->w->now_ms);
    if (srv == NULL)
        return refuse(c, why);
    gh_log_info("service %s: retrying request on %s after %s from %s", c->svc->conf->name,
                srv->name, gh_reason_name(why), old->name);
    return start_upstream(c, srv, 1);
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
                exchange_reset(c);
                proxy__client_from_request(c, NULL, NULL);
                log_request_line(c);
                return refuse(c, c->req.why);
            }
            if (gh_buf_room(&c->cin) == 0 && c->cin.r == 0)
                gh_buf_grow(&c->cin, c->svc->lim.max_header_size + 1024);
        }
        if (!c->cli.rd && !c->cli.rd_on_wr && c->cli.ssl != NULL && SSL_pending(c->cli.ssl) > 0)
            c->cli.rd = 1; /* decrypted bytes waiting inside OpenSSL: no edge will come */
        if (!c->cli.rd) {
            if (gh_buf_len(&c->cin) == 0) {
                gh_buf_put(&c->cin); /* idle connections hold no buffer */
                proxy__ep_idle(&c->cli);
            }
            return RUN_WAIT;
        }
        if (c->cin.data == NULL)
            gh_buf_get(&c->cin);
        n = proxy__ep_read(&c->cli, &c->cin);
        if (n > 0) {
            if ((size_t)n == gh_buf_len(&c->cin) && c->nreq > 0)
                proxy__conn_arm(c, c->svc->conf->client_header_timeout); /* first byte after keep-alive */
            continue;
        }
        if (n == GH_AGAIN)
            continue; /* rd was cleared: the check above waits */
        proxy__conn_close(c); /* end of stream or error between requests */
        return RUN_CONTINUE;
    }
}

/* The store's answer moves c on (proxy__conn_resume); meanwhile a client
 * that leaves is noticed, so nothing is sent on its behalf. Its request
 * never began: closed as between requests, with no access-log line. */
static int st_store_wait(struct proxy_conn *c)
{
    long n;

    if (c->svc->mode == PROXY_MODE_TCP) /* as in QUEUED and CONNECT: its bytes wait for the tunnel */
        return watch_client(c) < 0 ? RUN_CONTINUE : RUN_WAIT;
    if (!c->cli.rd || c->cin.data == NULL || gh_buf_room(&c->cin) == 0)
        return RUN_WAIT;
    n = proxy__ep_read(&c->cli, &c->cin);
    if (n > 0)
        return RUN_CONTINUE;
    if (n == GH_AGAIN)
        return RUN_WAIT;
    proxy__conn_close(c);
    return RUN_CONTINUE;
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
    if (c->svc->mode == PROXY_MODE_TCP) {
        proxy__l4_begin(c);
        return RUN_CONTINUE;
    }
    proxy__conn_set_state(c, ST_EXCHANGE);
    return RUN_CONTINUE;
}

/* The final response head m is parsed: decide how its body reaches the
 * client, and write the head. */
static int begin_response(struct proxy_conn *c, const struct http1_msg *m)
{
    enum http1_framing out = m->framing;

    c->resp = *m;
    c->resp.hdrs = NULL;
    c->status = m->status;
    if (m->framing == HTTP1_BODY_CLOSE) {
        /* Until close: an HTTP/1.1 client keeps its connection, chunked. */
        if (c->req.version == 11)
            out = HTTP1_BODY_CHUNKED;
        else
            c->close_after = 1;
    } else if (m->framing == HTTP1_BODY_CHUNKED && c->req.version == 10) {
        /* HTTP/1.0 knows no chunked coding (RFC 9112 7.1): the decoded body
         * goes out until close. */
        out = HTTP1_BODY_CLOSE;
        c->close_after = 1;
    }
    if (http1_m_begin(&c->rs, m, out) == -1) {
        internal_error(c, "response message did not start at HEAD");
        return -1;
    }
    if (m->flags & HTTP1_F_WINAUTH)
        c->up_private = 1;
    if (c->w->draining)
        c->close_after = 1;
    proxy__write_resp_head(c, c->uin.data + c->uin.r, m);
    gh_buf_consume(&c->uin, m->head_len);
    return 0;
}

static void finish_exchange(struct proxy_conn *c)
{
    int done = c->rq.st == H1M_DONE;
    /* DONE means the request was copied out of cin, not that it reached the
     * server: a connection with request bytes still in uout (a server that
     * answered before reading everything) would start the next client's
     * request in the middle of this one's body. */
    int reusable = done && c->rs.st == H1M_DONE && !(c->resp.flags & HTTP1_F_CONN_CLOSE) &&
                   gh_buf_len(&c->uout) == 0 && gh_buf_len(&c->uin) == 0 && c->up != NULL &&
                   (c->up->ep.ssl == NULL || !SSL_has_pending(c->up->ep.ssl));

    proxy__log_access(c);
    proxy__conn_uncount(c);
    if (c->up_private && reusable && !c->close_after) {
        /* Stays with this client: an authenticated connection is never
         * handed to anyone else. */
    } else {
        proxy__up_release(c, reusable && !c->up_private);
        if (c->up_private)
            c->up_private = 0, c->srv = NULL;
    }
    if (c->kept > 0) {
        gh_buf_consume(&c->cin, c->kept);
        c->kept = 0;
    }
    gh_buf_put(&c->uin);
    gh_buf_put(&c->uout);
    gh_buf_put(&c->cout); /* empty here: an idle connection keeps no buffer */
    if (c->close_after || !done) {
        /* What the client still sends of its body is read and dropped, so
         * it sees the answer rather than a reset. */
        c->lingering = !done;
        proxy__conn_set_state(c, ST_CLOSING);
        return;
    }
    if (msg_set(c, &c->rq, H1M_HEAD) == -1 || msg_set(c, &c->rs, H1M_HEAD) == -1) {
        proxy__conn_set_state(c, ST_CLOSING);
        return;
    }
    memset(&c->req, 0, sizeof(c->req));
    proxy__conn_set_state(c, ST_READ_HEAD);
}

/* A step that ended the exchange returns ENDED(the RUN_ value for run()). */
#define ENDED(r) (-1 - (r))

/* The whole request is out of the client: keep reading it (pipelined
 * requests wait in cin, bounded by its room) so that a client that goes
 * away is noticed at once and its real-server connection closed, rather
 * than held until the server answers a request nobody waits for. */
static int watch_client(struct proxy_conn *c)
{
    long n;

    if (!c->cli.rd || c->cin.data == NULL || gh_buf_room(&c->cin) == 0 ||
        c->rq.st == H1M_TUNNEL)
        return 0;
    n = proxy__ep_read(&c->cli, &c->cin);
    if (n > 0) {
        if (c->st != ST_EXCHANGE)
            c->bytes_in += (uint64_t)n; /* body bytes, pumped once the server is there */
        return 0; /* or the next request: read now, parsed after this exchange */
    }
    if (n == GH_AGAIN)
        return 0;
    c->why = GH_REASON_CLIENT_CLOSED;
    proxy__log_access(c);
    proxy__conn_close(c);
    return ENDED(RUN_CONTINUE);
}

/* The request towards the real server: write what is queued, pump the
 * body, read more of it. Returns 1 on progress, 0 none, or a RUN_ value
 * (negated, minus one) when the step ended the exchange. */
static int exchange_request(struct proxy_conn *c)
{
    const struct http1_limits *lim = &c->svc->lim;
    enum gh_reason why = GH_REASON_NONE;
    int progress = 0, r;
    long n;

    if (c->rs.st == H1M_DONE && c->up->ep.hup)
        return 0; /* answered, and gone: the rest of the body has nowhere to go */
    if (gh_buf_len(&c->uout) > 0 && c->up->ep.wr) {
        n = proxy__ep_write(&c->up->ep, &c->uout);
        if (n == GH_ERR && c->rs.st == H1M_DONE) {
            c->up->ep.hup = 1; /* it answered early and stopped listening */
            return 1;
        }
        if (n == GH_ERR)
            return ENDED(upstream_failed(c, GH_REASON_UPSTREAM_CLOSED));
        if (n > 0) {
            c->up_sent += (uint64_t)n;
            progress = 1;
        }
    }
    if (!http1_m_in_body(&c->rq))
        return (r = watch_client(c)) < 0 ? r : progress;
    if (gh_buf_len(&c->cin) > 0) {
        /* cin may keep the head for a retry (c->kept): never traded */
        n = proxy__body_pump(&c->rq, &c->cin, &c->uout, lim, 0, &why);
        if (n < 0)
            return ENDED(refuse(c, why)); /* the real server's connection is closed with it */
        if (n > 0)
            progress = 1;
    }
    if (http1_m_in_body(&c->rq) && c->cli.rd && gh_buf_len(&c->cin) < GH_BUF_SIZE / 2) {
        if (c->cin.data == NULL)
            gh_buf_get(&c->cin);
        n = proxy__ep_read(&c->cli, &c->cin);
        if (n > 0) {
            c->bytes_in += (uint64_t)n;
            progress = 1;
        } else if (n == 0 || n == GH_ERR) {
            /* The client gave up in the middle of its body. */
            c->why = GH_REASON_BODY_TIMEOUT;
            proxy__log_access(c);
            proxy__conn_close(c);
            return ENDED(RUN_CONTINUE);
        }
    }
    return progress;
}

/* A head from the real server is at the front of uin. */
static int response_head(struct proxy_conn *c, const struct http1_msg *m)
{
    const char *head = c->uin.data + c->uin.r;

    if (m->status == 101) {
        enum gh_reason why = proxy__upgrade_response(c, head, m);
        if (why != GH_REASON_NONE) {
            gh_log_warn("service %s: server %s switched protocols without the checked "
                        "WebSocket handshake", c->svc->conf->name, c->srv->name);
            return ENDED(refuse(c, why));
        }
        c->status = 101;
        if (msg_set(c, &c->rs, H1M_TUNNEL) == -1 || msg_set(c, &c->rq, H1M_TUNNEL) == -1)
            return ENDED(refuse(c, GH_REASON_INTERNAL));
        proxy__write_resp_head(c, head, m);
        gh_buf_consume(&c->uin, m->head_len);
        if (c->kept > 0) {
            gh_buf_consume(&c->cin, c->kept);
            c->kept = 0;
        }
        proxy__tunnel_begin(c);
        proxy__conn_set_state(c, ST_TUNNEL);
        return ENDED(RUN_CONTINUE);
    }
    if (m->status < 200) {
        /* Interim responses go to HTTP/1.1 clients only. */
        if (c->req.version == 11)
            proxy__write_resp_head(c, head, m);
        gh_buf_consume(&c->uin, m->head_len);
        return 1;
    }
    if (begin_response(c, m) == -1)
        return ENDED(refuse(c, GH_REASON_INTERNAL));
    return 1;
}

/* The response from the real server: read, parse its head, pump its body. */
static int exchange_response(struct proxy_conn *c)
{
    const struct http1_limits *lim = &c->svc->lim;
    enum gh_reason why = GH_REASON_NONE;
    int progress = 0, r;
    long n;

    if (c->up->ep.rd && (c->uin.data == NULL || gh_buf_room(&c->uin) > 0 || c->uin.r > 0)) {
        if (c->uin.data == NULL)
            gh_buf_get(&c->uin);
        n = proxy__ep_read(&c->up->ep, &c->uin);
        if (n > 0) {
            progress = 1;
        } else if (n == 0 || n == GH_ERR) {
            if (c->rs.st == H1M_BODY_CLOSE && n == 0 && gh_buf_len(&c->uin) == 0) {
                proxy__body_closed(&c->rs, &c->cout);
                c->up->ep.hup = 1; /* not reusable */
                progress = 1;
            } else if (c->rs.st == H1M_DONE) {
                if (!c->up->ep.hup)
                    progress = 1;
                c->up->ep.hup = 1; /* closed after its answer: done with it */
            } else if (c->rs.st == H1M_HEAD && gh_buf_len(&c->uin) == 0) {
                return ENDED(upstream_failed(c, GH_REASON_UPSTREAM_CLOSED));
            } else if (c->rs.st != H1M_DONE && !(c->rs.st == H1M_BODY_CLOSE && n == 0)) {
                return ENDED(refuse(c, c->rs.st != H1M_HEAD ? GH_REASON_UPSTREAM_CLOSED
                                                            : GH_REASON_BAD_RESPONSE));
            }
        }
    }
    /* A head waits while the client has not taken the last ones: a server
     * sending interim responses without end meets back-pressure like a body. */
    while (c->rs.st == H1M_HEAD && gh_buf_len(&c->uin) > 0 && gh_buf_len(&c->cout) < GH_BUF_SIZE) {
        struct http1_msg m;
        int rc;
        memset(&m, 0, sizeof(m));
        m.hdrs = c->w->scratch;
        rc = http1_parse_response(c->uin.data + c->uin.r, gh_buf_len(&c->uin), lim,
                                  c->req.flags & HTTP1_F_HEAD, &m);
        if (rc == GH_ERR) {
            gh_log_warn("service %s: server %s sent a response head refused as %s",
                        c->svc->conf->name, c->srv->name, gh_reason_name(m.why));
            return ENDED(refuse(c, m.why));
        }
        if (rc == GH_AGAIN) {
            if (gh_buf_room(&c->uin) == 0 && c->uin.r == 0)
                gh_buf_grow(&c->uin, lim->max_header_size + 1024);
            break;
        }
        progress = 1;
        if ((r = response_head(c, &m)) < 0)
            return r;
    }
    if (http1_m_in_body(&c->rs) && gh_buf_len(&c->uin) > 0) {
        n = proxy__body_pump(&c->rs, &c->uin, &c->cout, lim, 1, &why);
        if (n < 0) {
            gh_log_warn("service %s: server %s sent malformed chunked framing",
                        c->svc->conf->name, c->srv->name);
            return ENDED(refuse(c, GH_REASON_BAD_RESPONSE));
        }
        if (n > 0)
            progress = 1;
    }
    return progress;
}

static int st_exchange(struct proxy_conn *c)
{
    int progress, r;
    long n;

    if ((r = exchange_request(c)) < 0)
        return ENDED(r);
    progress = r;
    if ((r = exchange_response(c)) < 0)
        return ENDED(r);
    progress |= r;
    /* towards the client */
    if (gh_buf_len(&c->cout) > 0 && c->cli.wr) {
        n = proxy__ep_write(&c->cli, &c->cout);
        if (n == GH_ERR) {
            proxy__log_access(c);
            proxy__conn_close(c);
            return RUN_CONTINUE;
        }
        if (n > 0) {
            c->bytes_out += (uint64_t)n;
            progress = 1;
        }
    }
    /* The exchange ends when the response is out and the request reached
     * the server whole; a server that answered before reading all of the
     * body gets the rest while it reads (an NTLM 401 to a POST keeps its
     * connection), unless it went away. */
    if (c->rs.st == H1M_DONE && gh_buf_len(&c->cout) == 0 &&
        ((c->rq.st == H1M_DONE && gh_buf_len(&c->uout) == 0) || c->up->ep.hup)) {
        finish_exchange(c);
        return RUN_CONTINUE;
    }
    if (progress) {
        exchange_arm(c, 0);
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
            proxy__conn_close(c);
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
            c->bytes_in = 0;
        }
        gh_buf_get(&c->cin);
        while (c->cli.rd) {
            c->cin.r = c->cin.w = 0;
            n = proxy__ep_read(&c->cli, &c->cin);
            if (n == 0 || n == GH_ERR || c->bytes_in > LINGER_MAX) {
                proxy__conn_close(c);
                return RUN_CONTINUE;
            }
            if (n > 0)
                c->bytes_in += (uint64_t)n;
        }
        return RUN_WAIT;
    }
    proxy__conn_close(c);
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
        case ST_L4_CHOOSE:
            r = proxy__l4_step(c);
            break;
        case ST_READ_HEAD:
            r = st_read_head(c);
            break;
        case ST_STORE_WAIT:
            r = st_store_wait(c);
            break;
        case ST_ADMIT_WAIT:
            /* Nothing is read before the verdict; a client gone meanwhile
             * is closed now, and the answer finds nobody. */
            if (c->cli.hup)
                proxy__conn_close(c);
            r = c->cli.hup ? RUN_CONTINUE : RUN_WAIT;
            break;
        case ST_HOLD_BODY:
            r = st_hold_body(c);
            break;
        case ST_QUEUED:
            /* proxy__waitq_dispatch moves it on; a client that leaves meanwhile
             * leaves nothing behind at the server. */
            r = watch_client(c) < 0 ? RUN_CONTINUE : RUN_WAIT;
            break;
        case ST_CONNECT:
            r = watch_client(c) < 0 ? RUN_CONTINUE : st_connect(c);
            break;
        case ST_EXCHANGE:
            r = st_exchange(c);
            break;
        case ST_TUNNEL:
            r = proxy__tunnel_step(c);
            break;
        case ST_CLOSING:
            r = st_closing(c);
            break;
        case ST_CLOSED:
        case ST_COUNT:
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
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP | EPOLLPRI)) {
        ep->rd = 1;
        if (ep->wr_on_rd)
            ep->wr = 1, ep->wr_on_rd = 0;
    }
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
        ep->wr = 1;
        if (ep->rd_on_wr)
            ep->rd = 1, ep->rd_on_wr = 0;
    }
    if (events & (EPOLLHUP | EPOLLERR))
        ep->hup = 1;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI))
        ep->read_to_eagain = 1;
    run(c);
}

void proxy__conn_resume(struct proxy_conn *c)
{
    if (c->st != ST_STORE_WAIT)
        return;
    if (c->svc->mode == PROXY_MODE_TCP) {
        proxy__conn_set_state(c, ST_L4_CHOOSE); /* its service chosen: a server now */
        run(c);
        return;
    }
    /* The parser resumes its search for the head's end where it stopped:
     * from the start again, as for a head it has not seen. */
    memset(&c->req, 0, sizeof(c->req));
    proxy__conn_set_state(c, ST_READ_HEAD);
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
        proxy__conn_close(c);
        return;
    case ST_L4_CHOOSE:
        refuse(c, GH_REASON_CLIENT_TIMEOUT); /* no ClientHello in time */
        return;
    case ST_READ_HEAD:
        if (gh_buf_len(&c->cin) > 0) {
            c->nreq++;
            refuse(c, GH_REASON_CLIENT_TIMEOUT);
            break;
        }
        /* FALLTHROUGH */
    case ST_CLOSING:
        proxy__conn_close(c);
        return;
    case ST_STORE_WAIT:
        proxy__shared_abandon(c);
        return;
    case ST_ADMIT_WAIT:
        proxy__shared_admit_abandon(c);
        return;
    case ST_TUNNEL:
        proxy__conn_close(c); /* which ends the tunnel's count and logs it */
        return;
    case ST_HOLD_BODY:
        refuse(c, GH_REASON_BODY_TIMEOUT);
        break;
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
        switch (c->wait) {
        case WAIT_STREAM:
            proxy__log_access(c);
            proxy__conn_close(c);
            return;
        case WAIT_CLIENT_BODY:
            refuse(c, GH_REASON_BODY_TIMEOUT);
            break;
        case WAIT_SERVER_READ:
        case WAIT_RESPONSE:
            gh_log_warn("service %s: server %s (%s): %s in time", c->svc->conf->name,
                        c->srv->name, c->srv->addr,
                        c->wait == WAIT_RESPONSE ? "no response" : "the request was not read");
            refuse(c, GH_REASON_UPSTREAM_TIMEOUT);
            break;
        }
        break;
    case ST_CLOSED:
    case ST_COUNT:
        return;
    }
    if (c->st != ST_CLOSED)
        run(c);
}

void proxy__conn_drain(struct proxy_conn *c)
{
    if (c->st == ST_READ_HEAD && gh_buf_len(&c->cin) == 0 && c->nreq > 0)
        proxy__conn_close(c);
    else
        c->close_after = 1;
}

/* The service's first state: the TLS handshake, or the first read (Layer
 * 4 chooses; HTTP reads a head). checked: from ADMIT_WAIT, a move the
 * state table checks; else the connection's first state. -1: closed. */
static int begin_service(struct proxy_conn *c, int checked)
{
    struct proxy_service *svc = c->svc;
    enum proxy_state st = svc->tls != NULL            ? ST_TLS_HANDSHAKE
                          : svc->mode == PROXY_MODE_TCP ? ST_L4_CHOOSE
                                                        : ST_READ_HEAD;

    if (svc->tls != NULL) {
        c->cli.ssl = SSL_new(svc->tls);
        if (c->cli.ssl == NULL || proxy__ep_attach_ssl(&c->cli) == -1) {
            ERR_clear_error();
            proxy__conn_close(c);
            return -1;
        }
        SSL_set_accept_state(c->cli.ssl);
        SSL_set_app_data(c->cli.ssl, c); /* the SNI callback looks at c's listener */
    }
    if (checked) {
        proxy__conn_set_state(c, st); /* arms the new state's timer */
        return c->st == ST_CLOSED ? -1 : 0;
    }
    c->st = st;
    proxy__conn_arm(c, svc->conf->client_header_timeout);
    return 0;
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
    c->lsvc = svc;
    c->heap_idx = SIZE_MAX;
    c->cli.kind = EP_CLIENT;
    c->cli.fd = fd;
    c->cli.owner = c;
    c->cli.rd = c->cli.wr = 1; /* optimistic: data often arrives with the accept */
    c->t_start = c->w->now_ms;
    c->peer_ss = *ss;
    c->client_ss = *ss;
    c->peer_trusted = proxy__is_trusted(svc, ss);
    c->limited = svc->conf->max_conns_per_source > 0 && !c->peer_trusted;
    http1_m_init(&c->rq);
    http1_m_init(&c->rs);
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
    gh_strlcpy(c->peer_ip, ip, sizeof(c->peer_ip));
    gh_strlcpy(c->ip, ip, sizeof(c->ip));
    gh_strlcpy(c->client, c->peer, sizeof(c->client));
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    atomic_fetch_add(&w->n_conns_total, 1);
    atomic_fetch_add(&svc->st->conns_active, 1);
    atomic_fetch_add(&svc->st->conns_total, 1);
    /* In a cluster the source's connection rate and count are the
     * cluster's: asked before any TLS work, the answers (or this
     * appliance's shares) decide. */
    if ((svc->conf->conn_rate_per_source > 0 || c->limited) && !c->peer_trusted &&
        proxy__cluster()) {
        int v = proxy__shared_admit(c);
        if (v == -1) {
            proxy__log_security_accept(svc, ss, GH_REASON_CONN_LIMIT);
            proxy__conn_close(c);
            return;
        }
        if (v == 1) {
            /* The store answers within its own timeout; the backstop is
             * never shorter than that, or it would always decide first. */
            long long backstop = svc->conf->client_header_timeout;
            if (backstop < 2 * g->conf->store.timeout + 100)
                backstop = 2 * g->conf->store.timeout + 100;
            c->st = ST_ADMIT_WAIT;
            proxy__conn_arm(c, backstop);
            if (proxy__ep_add(w, &c->cli) == -1)
                proxy__conn_close(c);
            return;
        }
    }
    if (begin_service(c, 0) == -1)
        return;
    if (proxy__ep_add(w, &c->cli) == -1) {
        proxy__conn_close(c);
        return;
    }
    run(c);
}

void proxy__conn_admitted(struct proxy_conn *c, int verdict)
{
    if (c->st != ST_ADMIT_WAIT)
        return;
    if (verdict == -1) {
        proxy__log_security_accept(c->svc, &c->peer_ss, GH_REASON_CONN_LIMIT);
        proxy__conn_close(c);
        return;
    }
    if (begin_service(c, 1) == -1)
        return;
    run(c);
}
