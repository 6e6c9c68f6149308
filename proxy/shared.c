/*
 * The proxy's side of a cluster store (store redis): each worker's one
 * pipelined connection, on its own epoll loop, and what a request asks of
 * it before the firewall decides: its client's request-rate bucket and its
 * source-ip persistence entry, both in the same round trip. The connection
 * waits in STORE_WAIT meanwhile; the worker serves everyone else. When the
 * answer is in, the head (still at the front of cin) is parsed again and
 * the request goes on with the answers in c->ask_*.
 *
 * A client the store has no entry for gets its first server by rendezvous
 * hashing on its persistence key (persist.c), not by the scheduler: its
 * parallel first requests, on any worker of any appliance seeing the same
 * servers up, agree before any entry is written. When the store does not
 * answer (down, or not within its timeout), the request is not held up and
 * is not let through unchecked: the rate is counted in this process at its
 * share (rate / appliances), and persistence takes that same rendezvous
 * choice, so a client placed by it stays where it is.
 *
 * With store local none of this runs: the firewall and persistence call the
 * process's tables directly, as they never wait.
 */
#include "proxy_int.h"

#include <ctype.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "../store/store.h"

/* How long an appliance's count of a source's connections counts in the
 * store without being written again: its connections are written again
 * every CONNS_REFRESH_MS, so an appliance that died stops counting within
 * CONNS_TTL_MS. */
#define CONNS_TTL_MS 60000
#define CONNS_REFRESH_MS 20000

static void conns_refresh(struct proxy_worker *w);
static void written(void *arg, const struct store_reply *r);

/* One request's questions, owned by the callbacks still to come. */
struct proxy_ask {
    struct proxy_conn *c; /* NULL once c no longer waits (closed, or its backstop fired) */
    struct proxy_worker *w;
    int pending;          /* answers still to come (a request's; a connection's has one) */
    int limit;            /* 0 allowed, -1 over */
    int persist_away;     /* the persistence question got no answer */
    int64_t server, ttl_ms;
    enum proxy_join_verdict join; /* validate-join-token (edge.c) */
    int64_t join_meeting, join_epoch;
};

#define A(s) (1u << ASK_##s)
static const unsigned ask_legal[] = {
    [ASK_IDLE] = A(WAITING) | A(ANSWERED),
    [ASK_WAITING] = A(ANSWERED) | A(IDLE), /* IDLE: the connection closed meanwhile */
    [ASK_ANSWERED] = A(IDLE),
};
#undef A

static int ask_set(struct proxy_conn *c, enum proxy_ask_state st)
{
    if (!(ask_legal[c->ask_st] & (1u << st))) {
        atomic_fetch_add(&c->svc->st->internal_errors, 1);
        gh_log_err("internal error: service %s, conn %s: illegal store question move %d -> %d",
                   c->svc->conf->name, c->peer, (int)c->ask_st, (int)st);
        return -1;
    }
    c->ask_st = st;
    return 0;
}

/* ---- the worker's connection ---- */

int proxy__cluster(void)
{
    static _Atomic int cluster = -1; /* the store is chosen once, before the workers */
    int v = atomic_load(&cluster);

    if (v == -1) {
        v = strcmp(store_engine_name(store_current()), "redis") == 0;
        atomic_store(&cluster, v);
    }
    return v;
}

void proxy__shared_init(struct proxy_worker *w)
{
    struct store *s = store_current();

    w->scep.kind = EP_STORE;
    w->scep.fd = -1;
    w->scep.owner = w;
    if (strcmp(store_engine_name(s), "redis") == 0)
        w->sc = store_conn_new(s); /* which may have begun to connect */
    proxy__shared_sync(w);
}

void proxy__shared_fini(struct proxy_worker *w)
{
    store_conn_free(w->sc); /* what is still pending is answered DOWN */
    w->sc = NULL;
}

/* The store closes a socket it replaces, which takes it out of the epoll
 * set by itself; deleting by number could hit the socket that was given
 * the number since (a real server's, in the same set). So a new socket is
 * only ever added, and an unchanged one modified. */
void proxy__shared_sync(struct proxy_worker *w)
{
    struct epoll_event ev;
    int fd;
    unsigned want, gen;

    if (w->sc == NULL)
        return;
    fd = store_conn_fd(w->sc);
    gen = store_conn_socket_gen(w->sc);
    want = store_conn_events(w->sc);
    memset(&ev, 0, sizeof(ev));
    ev.events = (want & POLLIN ? EPOLLIN : 0u) | (want & POLLOUT ? EPOLLOUT : 0u);
    ev.data.ptr = &w->scep;
    if (fd != w->scep.fd || gen != w->sc_gen) {
        w->scep.fd = fd;
        w->sc_gen = gen;
        if (fd >= 0 && epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) == -1 &&
            epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev) == -1)
            gh_log_warn_errno("worker %d: the store's socket", w->id);
        w->sc_events = want;
    } else if (fd >= 0 && want != w->sc_events) {
        if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev) == -1)
            gh_log_warn_errno("worker %d: the store's socket", w->id);
        w->sc_events = want;
    }
}

void proxy__shared_event(struct proxy_worker *w, uint32_t events)
{
    unsigned r = 0;

    if (w->sc == NULL)
        return;
    if (events & EPOLLIN)
        r |= POLLIN;
    if (events & EPOLLOUT)
        r |= POLLOUT;
    if (events & EPOLLERR)
        r |= POLLERR;
    if (events & EPOLLHUP)
        r |= POLLHUP;
    store_conn_io(w->sc, r);
    proxy__shared_sync(w);
}

int64_t proxy__shared_tick(struct proxy_worker *w)
{
    int64_t t;

    if (w->sc == NULL)
        return -1;
    if (w->now_ms >= w->conns_refresh_at) {
        w->conns_refresh_at = w->now_ms + CONNS_REFRESH_MS;
        w->conns_round++;
        w->conns_round_open = 1;
    }
    if (w->conns_round_open)
        conns_refresh(w);
    if (store_conn_timeout_ms(w->sc) == 0) {
        store_conn_io(w->sc, 0);
        proxy__shared_sync(w);
    }
    t = store_conn_timeout_ms(w->sc);
    return t;
}

/* ---- a request's questions ---- */

/* The request rate as this appliance's share, in this process, under a key
 * of its own ('Q': the local limiter's buckets keep another layout). */
static int limit_local_share(const struct proxy_conn *c)
{
    const struct gh_conf_service *cf = c->svc->conf;
    long long n = c->gen->conf->store.appliances > 0 ? c->gen->conf->store.appliances : 1;
    long long burst = cf->request_burst_per_source > 0 ? cf->request_burst_per_source
                                                       : cf->request_rate_per_source;
    int64_t per_min = (int64_t)(cf->request_rate_per_source * 60 / n);
    unsigned char k[RULES_LIMIT_KEY_LEN];

    rules_limit_key('Q', c->svc->scope, (const struct sockaddr *)&c->client_ss, k);
    return store_local_bucket(k, sizeof(k), per_min > 0 ? per_min : 1,
                              burst / n > 0 ? burst / n : 1) == 0
               ? 0
               : -1;
}

static void answer(struct proxy_conn *c, const struct proxy_ask *a)
{
    c->ask_limit = a->limit;
    c->ask_server = a->server;
    c->ask_ttl_ms = a->ttl_ms;
    c->ask_away = a->persist_away;
    c->ask_join = a->join;
    c->ask_join_meeting = a->join_meeting;
}

static void one_answered(struct proxy_ask *a)
{
    struct proxy_conn *c = a->c;

    if (--a->pending > 0)
        return;
    if (c != NULL)
        answer(c, a);
    free(a);
    if (c == NULL)
        return;
    c->ask = NULL;
    if (ask_set(c, ASK_ANSWERED) == -1) {
        proxy__conn_close(c);
        return;
    }
    proxy__conn_resume(c);
}

static void limit_cb(void *arg, const struct store_reply *r)
{
    struct proxy_ask *a = arg;

    if (r->status == STORE_OK)
        a->limit = r->n == 0 ? 0 : -1;
    else if (a->c != NULL)
        a->limit = limit_local_share(a->c);
    one_answered(a);
}

/* A persistence entry's value: the server's id as 16 hex digits. */
static int parse_id(const void *v, size_t n, int64_t *id)
{
    const unsigned char *p = v;
    uint64_t x = 0;
    size_t i;
    int h;

    if (n != 16)
        return -1;
    for (i = 0; i < n; i++) {
        if ((h = gh_hexval(p[i])) < 0)
            return -1;
        x = x << 4 | (uint64_t)h;
    }
    *id = (int64_t)x;
    return 0;
}

static void persist_cb(void *arg, const struct store_reply *r)
{
    struct proxy_ask *a = arg;

    if (r->status == STORE_OK) {
        if (parse_id(r->val, r->vlen, &a->server) == -1)
            a->server = 0; /* not ours: balanced again, and written over */
        a->ttl_ms = r->ttl_ms;
    } else if (r->status != STORE_ABSENT) {
        a->persist_away = 1;
    }
    one_answered(a);
}

/* The mark of the token's epoch, asked once its record is in. */
static void epoch_cb(void *arg, const struct store_reply *r)
{
    struct proxy_ask *a = arg;

    if (r->status == STORE_OK)
        a->join = proxy__join_epoch(r->val, r->vlen);
    else if (r->status != STORE_ABSENT)
        a->join = PJ_AWAY;
    one_answered(a);
}

static void join_cb(void *arg, const struct store_reply *r)
{
    struct proxy_ask *a = arg;
    unsigned char ek[GH_MEETING_EPOCH_KEY_LEN];

    if (r->status == STORE_OK)
        a->join = proxy__join_record(r->val, r->vlen, (int64_t)time(NULL), &a->join_meeting,
                                     &a->join_epoch);
    else
        a->join = r->status == STORE_ABSENT ? PJ_UNKNOWN : PJ_AWAY;
    if (a->join == PJ_OK && a->c != NULL) {
        /* Still inside store_conn_io: queued now, sent when it returns. */
        gh_meeting_epoch_key(a->join_meeting, a->join_epoch, ek);
        if (store_get(a->w->sc, ek, sizeof(ek), epoch_cb, a) == 0)
            a->pending++;
        else
            a->join = PJ_AWAY;
    }
    one_answered(a);
}

static struct proxy_ask *ask_new(struct proxy_conn *c)
{
    struct proxy_ask *a = gh_calloc(1, sizeof(*a));

    c->ask_t0 = c->w->now_ms;
    a->c = c;
    a->w = c->w;
    a->ttl_ms = -1;
    return a;
}

/* The questions of a are out, or none could be (pending 0: too much
 * pending, the fallbacks answered): c waits in STORE_WAIT, or goes on at
 * once (-1). A RUN_ value otherwise. */
static int wait_for(struct proxy_conn *c, struct proxy_ask *a)
{
    if (a->pending == 0) {
        answer(c, a);
        free(a);
        return ask_set(c, ASK_ANSWERED) == -1 ? proxy__conn_refuse(c, GH_REASON_INTERNAL) : -1;
    }
    proxy__shared_sync(c->w);
    c->ask = a;
    if (ask_set(c, ASK_WAITING) == -1)
        return proxy__conn_refuse(c, GH_REASON_INTERNAL);
    proxy__conn_set_state(c, ST_STORE_WAIT);
    /* run() steps STORE_WAIT once: a reset that came in the same edge as
     * the question is seen now, when no later event would show it. */
    return RUN_CONTINUE;
}

int proxy__shared_ask(struct proxy_conn *c, const char *head, const struct http1_msg *m)
{
    struct proxy_worker *w = c->w;
    const struct gh_conf_service *cf = c->svc->conf;
    int lim = cf->request_rate_per_source > 0, per = cf->persistence[0] == 's';
    unsigned char lk[RULES_LIMIT_KEY_LEN], pk[PROXY_PERSIST_SKEY];
    struct proxy_join_req q;
    struct proxy_ask *a;

    if (w->sc == NULL)
        return -1; /* the local tables, at once */
    proxy__join_classify(c, head, m, &q);
    if (!lim && !per && !q.bearer_ok) {
        proxy__join_req_free(&q);
        return -1;
    }
    a = ask_new(c);
    if (q.bearer_ok) {
        if (store_get(w->sc, q.key, sizeof(q.key), join_cb, a) == 0)
            a->pending++;
        else
            a->join = PJ_AWAY;
    }
    proxy__join_req_free(&q);
    if (lim) {
        long long burst = cf->request_burst_per_source > 0 ? cf->request_burst_per_source
                                                           : cf->request_rate_per_source;
        rules_limit_key('q', c->svc->scope, (const struct sockaddr *)&c->client_ss, lk);
        if (store_bucket(w->sc, lk, sizeof(lk), (int64_t)cf->request_rate_per_source * 60,
                         (int64_t)burst, limit_cb, a) == 0)
            a->pending++;
        else
            a->limit = limit_local_share(c);
    }
    if (per) {
        size_t kl = proxy__persist_source_key(c->svc, &c->client_ss, pk);
        if (store_get(w->sc, pk, kl, persist_cb, a) == 0)
            a->pending++;
        else
            a->persist_away = 1;
    }
    return wait_for(c, a);
}

/* mode tcp with persistence source-ip: the connection's one question, its
 * client's entry, asked once the service is chosen and before any server
 * is; c waits in STORE_WAIT and comes back to L4_CHOOSE with the answer. A
 * client moved by a server's failure at one appliance is then followed by
 * the others, as HTTP's clients are. */
int proxy__shared_ask_l4(struct proxy_conn *c)
{
    struct proxy_worker *w = c->w;
    unsigned char pk[PROXY_PERSIST_SKEY];
    struct proxy_ask *a;
    size_t kl;

    if (w->sc == NULL || c->svc->conf->persistence[0] != 's')
        return -1;
    a = ask_new(c);
    kl = proxy__persist_source_key(c->svc, &c->client_ss, pk);
    if (store_get(w->sc, pk, kl, persist_cb, a) == 0)
        a->pending = 1;
    else
        a->persist_away = 1; /* too much pending: the rendezvous choice, at once */
    return wait_for(c, a);
}

/* ---- a new UDP flow's question (worker 0) ---- */

struct flow_ask {
    proxy_flow_asked_fn done;
    void *arg;
};

static void flow_cb(void *arg, const struct store_reply *r)
{
    struct flow_ask *q = arg;
    int64_t id = 0;
    int away = 0;

    if (r->status == STORE_OK) {
        if (parse_id(r->val, r->vlen, &id) == -1)
            id = 0; /* not ours: placed again, and written over */
    } else if (r->status != STORE_ABSENT) {
        away = 1;
    }
    q->done(q->arg, id, away);
    free(q);
}

int proxy__shared_flow_ask(struct proxy_worker *w, const struct proxy_service *svc,
                           const struct sockaddr_storage *ss, proxy_flow_asked_fn done, void *arg)
{
    unsigned char pk[PROXY_PERSIST_SKEY];
    struct flow_ask *q;
    size_t kl;

    if (w->sc == NULL)
        return -1;
    q = gh_calloc(1, sizeof(*q));
    q->done = done;
    q->arg = arg;
    kl = proxy__persist_source_key(svc, ss, pk);
    if (store_get(w->sc, pk, kl, flow_cb, q) == -1) {
        free(q);
        return -1;
    }
    proxy__shared_sync(w);
    return 0;
}

void proxy__shared_flow_remember(struct proxy_worker *w, const struct proxy_service *svc,
                                 const struct sockaddr_storage *ss, const struct proxy_server *srv)
{
    unsigned char pk[PROXY_PERSIST_SKEY];
    size_t kl = proxy__persist_source_key(svc, ss, pk);
    char v[17];

    snprintf(v, sizeof(v), "%016llx", (unsigned long long)srv->id);
    if (store_set(w->sc, pk, kl, v, 16, (int64_t)svc->conf->persist_timeout, 0, written, NULL) == 0)
        proxy__shared_sync(w);
}

/* The answers the callbacks left are copied when the last one comes; this
 * is what begin_request calls once they are: the request takes them. */
int proxy__shared_spend(struct proxy_conn *c)
{
    if (c->ask_st != ASK_ANSWERED) {
        c->req_shared = 0;
        return 0;
    }
    c->req_shared = 1;
    return ask_set(c, ASK_IDLE);
}

void proxy__shared_abandon(struct proxy_conn *c)
{
    struct proxy_ask *a = c->ask;

    if (a != NULL) {
        a->c = NULL; /* its callbacks still come, and find nobody */
        c->ask = NULL;
    }
    c->ask_limit = c->svc->mode == PROXY_MODE_HTTP && c->svc->conf->request_rate_per_source > 0
                       ? limit_local_share(c)
                       : 0;
    c->ask_server = 0;
    c->ask_ttl_ms = -1;
    c->ask_away = 1;
    c->ask_join = PJ_AWAY; /* a token nobody could look up is not forwarded */
    if (ask_set(c, ASK_ANSWERED) == -1) {
        proxy__conn_close(c);
        return;
    }
    proxy__conn_resume(c);
}

/* ---- a new connection's question ---- */

/* conn-rate-per-source at this appliance's share, under a key of its own
 * ('R': the local limiter's 'r' buckets keep another layout). */
static int conn_rate_local_share(const struct proxy_conn *c)
{
    long long n = c->gen->conf->store.appliances > 0 ? c->gen->conf->store.appliances : 1;
    long long rate = c->svc->conf->conn_rate_per_source;
    unsigned char k[RULES_LIMIT_KEY_LEN];

    rules_limit_key('R', c->svc->scope, (const struct sockaddr *)&c->peer_ss, k);
    return store_local_bucket(k, sizeof(k), rate * 60 / n > 0 ? rate * 60 / n : 1,
                              rate / n > 0 ? rate / n : 1) == 0
               ? 0
               : -1;
}

/* This process in the store's per-source counts: the store block's name
 * (else the host name) as [A-Za-z0-9._-], and 64 random bits drawn once at
 * its start. Two appliances given one name (containers of one image, two
 * instances on a host) still count each other; a restarted one's old count
 * lapses in CONNS_TTL_MS, holding its clients back the longer meanwhile. */
static char nonce[17];
static pthread_once_t nonce_once = PTHREAD_ONCE_INIT;

static void nonce_make(void)
{
    unsigned char r[8];

    if (RAND_bytes(r, sizeof(r)) != 1)
        gh_fatal("no randomness for this process's name in the store");
    gh_hex(r, sizeof(r), nonce);
}

static void member_name(const struct proxy_conn *c, char out[STORE_MEMBER_MAX + 1])
{
    const char *n = c->gen->conf->store.name;
    char host[STORE_MEMBER_MAX + 1] = "";
    size_t i;

    pthread_once(&nonce_once, nonce_make);
    if (n == NULL || n[0] == '\0') {
        if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
            snprintf(host, sizeof(host), "gatehouse");
        n = host;
    }
    for (i = 0; n[i] != '\0' && i < STORE_MEMBER_MAX - 17; i++)
        out[i] = (char)(isalnum((unsigned char)n[i]) || strchr("._-", n[i]) ? n[i] : '-');
    out[i] = '.';
    memcpy(out + i + 1, nonce, 17);
}

/* max-conns-per-source at this appliance's share (the store away). */
static int conns_local_share(const struct proxy_conn *c)
{
    long long n = c->gen->conf->store.appliances > 0 ? c->gen->conf->store.appliances : 1;
    long long max = c->svc->conf->max_conns_per_source, share = max / n > 0 ? max / n : 1;

    return rules_limit_conn_count(c->lsvc->scope, (const struct sockaddr *)&c->peer_ss) > share
               ? -1
               : 0;
}

static void admitted(struct proxy_ask *a)
{
    struct proxy_conn *c = a->c;
    int verdict = a->limit == -1 || a->persist_away == -1 ? -1 : 0;

    if (--a->pending > 0)
        return;
    free(a);
    if (c == NULL)
        return; /* closed, or its backstop decided */
    c->ask = NULL;
    proxy__conn_admitted(c, verdict);
}

static void admit_cb(void *arg, const struct store_reply *r)
{
    struct proxy_ask *a = arg;

    if (r->status == STORE_OK)
        a->limit = r->n == 0 ? 0 : -1;
    else if (a->c != NULL)
        a->limit = conn_rate_local_share(a->c);
    admitted(a);
}

/* The cluster's count of the source's connections; persist_away is this
 * question's verdict here (-1 over). */
static void conns_cb(void *arg, const struct store_reply *r)
{
    struct proxy_ask *a = arg;

    if (r->status == STORE_OK)
        a->persist_away = r->n == 0 ? 0 : -1;
    else if (a->c != NULL)
        a->persist_away = conns_local_share(a->c);
    admitted(a);
}

/* The count and its write's sequence number, taken together: of two
 * workers' writes (on two connections, arriving in either order) the store
 * keeps the one that read the count later. */
static pthread_mutex_t conns_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t conns_seq;

static int64_t conns_key_and_count(const struct proxy_conn *c,
                                   unsigned char k[RULES_LIMIT_KEY_LEN], int64_t *seq)
{
    int64_t n;

    rules_limit_key('C', c->lsvc->scope, (const struct sockaddr *)&c->peer_ss, k);
    pthread_mutex_lock(&conns_mu);
    n = rules_limit_conn_count(c->lsvc->scope, (const struct sockaddr *)&c->peer_ss);
    *seq = ++conns_seq;
    pthread_mutex_unlock(&conns_mu);
    return n;
}

int proxy__shared_admit(struct proxy_conn *c)
{
    struct proxy_worker *w = c->w;
    long long rate = c->svc->conf->conn_rate_per_source;
    long long max = c->limited ? c->svc->conf->max_conns_per_source : 0;
    unsigned char k[RULES_LIMIT_KEY_LEN];
    char me[STORE_MEMBER_MAX + 1];
    struct proxy_ask *a;
    int over = 0;

    if (w->sc == NULL)
        return (rate > 0 && conn_rate_local_share(c) == -1) ||
                       (max > 0 && conns_local_share(c) == -1)
                   ? -1
                   : 0;
    a = gh_calloc(1, sizeof(*a));
    a->c = c;
    a->pending = 1; /* ours, given back below: no answer completes it meanwhile */
    if (rate > 0) {
        rules_limit_key('r', c->svc->scope, (const struct sockaddr *)&c->peer_ss, k);
        if (store_bucket(w->sc, k, sizeof(k), (int64_t)rate * 60, (int64_t)rate, admit_cb, a) ==
            0)
            a->pending++;
        else
            over |= conn_rate_local_share(c) == -1;
    }
    if (max > 0) {
        int64_t seq, n = conns_key_and_count(c, k, &seq);
        member_name(c, me);
        if (store_conns(w->sc, k, sizeof(k), me, n, max, CONNS_TTL_MS, seq, conns_cb, a) == 0)
            a->pending++;
        else
            over |= conns_local_share(c) == -1;
    }
    if (a->pending == 1) { /* nothing asked (refused at once): the shares decided */
        free(a);
        return over ? -1 : 0;
    }
    if (over)
        a->limit = -1;
    a->pending--;
    proxy__shared_sync(w);
    c->ask = a;
    return 1;
}

void proxy__shared_admit_abandon(struct proxy_conn *c)
{
    int v = 0;

    if (c->ask != NULL) {
        c->ask->c = NULL; /* its callbacks still come, and find nobody */
        c->ask = NULL;
    }
    if (c->svc->conf->conn_rate_per_source > 0)
        v |= conn_rate_local_share(c);
    if (c->limited && c->svc->conf->max_conns_per_source > 0)
        v |= conns_local_share(c);
    proxy__conn_admitted(c, v == 0 ? 0 : -1);
}

static void conns_written(void *arg, const struct store_reply *r)
{
    (void)arg;
    (void)r; /* a count not written lapses in CONNS_TTL_MS; the next write says it again */
}

void proxy__shared_conns_publish(struct proxy_conn *c)
{
    unsigned char k[RULES_LIMIT_KEY_LEN];
    char me[STORE_MEMBER_MAX + 1];
    int64_t n, seq;

    if (c->w->sc == NULL || !c->limited || c->lsvc->conf->max_conns_per_source <= 0)
        return;
    n = conns_key_and_count(c, k, &seq);
    member_name(c, me);
    if (store_conns(c->w->sc, k, sizeof(k), me, n, 0, CONNS_TTL_MS, seq, conns_written, NULL) ==
        0)
        proxy__shared_sync(c->w);
}

/* Every CONNS_REFRESH_MS each worker writes again the counts of the
 * sources it holds connections of (each once a round), so long connections
 * keep counting and a dead appliance's stop. A round that meets a full
 * queue goes on at the next turn with the connections it has not written
 * yet, so every source is written, however many there are. */
static void conns_refresh(struct proxy_worker *w)
{
    struct proxy_conn *c;
    unsigned char *seen;
    size_t cap = 64, i;
    int done = 1;

    while (cap < 2 * w->nconns)
        cap *= 2;
    seen = gh_calloc(cap, RULES_LIMIT_KEY_LEN + 1); /* a used byte, then the key */
    for (c = w->conns; c != NULL; c = c->next) {
        unsigned char k[RULES_LIMIT_KEY_LEN], *e;
        uint64_t h = 1469598103934665603ULL;
        if (!c->limited || c->st == ST_CLOSED || c->lsvc->conf->max_conns_per_source <= 0 ||
            c->conns_round == w->conns_round)
            continue;
        rules_limit_key('C', c->lsvc->scope, (const struct sockaddr *)&c->peer_ss, k);
        for (i = 0; i < sizeof(k); i++)
            h = (h ^ k[i]) * 1099511628211ULL;
        for (i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
            e = seen + i * (RULES_LIMIT_KEY_LEN + 1);
            if (e[0] == 0 || memcmp(e + 1, k, sizeof(k)) == 0)
                break;
        }
        if (e[0] == 0) {
            if (store_conn_pending(w->sc) >= STORE_MAX_PENDING / 2) {
                done = 0; /* the rest at the next turn; requests' questions come first */
                break;
            }
            e[0] = 1;
            memcpy(e + 1, k, sizeof(k));
            proxy__shared_conns_publish(c);
        }
        c->conns_round = w->conns_round;
    }
    free(seen);
    w->conns_round_open = !done;
}

void proxy__shared_forget(struct proxy_conn *c)
{
    if (c->ask != NULL) {
        c->ask->c = NULL;
        c->ask = NULL;
    }
    c->ask_st = ASK_IDLE;
}

static void written(void *arg, const struct store_reply *r)
{
    (void)arg; /* a lost write costs one re-balance; the store counts it */
    (void)r;
}

/* The entry is written again only when it names another server or has
 * lived a sixteenth of its time: a busy client costs a write every
 * timeout/16, and its entry outlives its last request by at least 15/16 of
 * the timeout. */
void proxy__shared_remember(struct proxy_conn *c, const struct proxy_server *srv,
                            const unsigned char *key, size_t klen)
{
    int64_t t = (int64_t)c->svc->conf->persist_timeout;
    char v[17];

    if (c->ask_away || c->w->sc == NULL)
        return; /* the rendezvous choice stands in for the store meanwhile */
    if (c->ask_server == (int64_t)srv->id && c->ask_ttl_ms > t - t / 16)
        return;
    snprintf(v, sizeof(v), "%016llx", (unsigned long long)srv->id);
    if (store_set(c->w->sc, key, klen, v, 16, t, 0, written, NULL) == 0)
        proxy__shared_sync(c->w);
    c->ask_server = (int64_t)srv->id;
    c->ask_ttl_ms = t;
}
