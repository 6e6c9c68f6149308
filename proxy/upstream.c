/*
 * Real-server side: choosing a server, connecting without blocking, the TLS
 * handshake with verification, and the per-worker pool of idle keep-alive
 * connections and TLS sessions. Pooled connections and sessions are keyed by
 * address, verified name and CA, so a reload that keeps a server keeps its
 * warm connections, and one that changes its trust does not.
 */
#include "proxy_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/err.h>

#include "../certs/certs.h"

#define IDLE_MAX_AGE_MS 30000
#define FAIL_HOLD_MS 2000

static int has_room(const struct proxy_server *s);

static int eligible(const struct proxy_server *s, uint64_t now)
{
    /* drain and maint take no new clients; down servers none at all */
    return s->admin == 0 && atomic_load(&s->st->up) && atomic_load(&s->fail_until) <= now;
}

static int usable_now(const struct proxy_server *s, uint64_t now)
{
    return eligible(s, now) && has_room(s);
}

/* Rendezvous hashing: each (client, server) pair gets a score and the
 * highest eligible server wins, so a server going down moves only its own
 * clients. Servers are named by their id (a hash of their identity, not
 * their place in the list), so appliances that see the same servers up
 * agree on the winner. */
struct proxy_server *proxy__pick_rendezvous(struct proxy_service *svc, struct proxy_server *exclude,
                                            const void *key, size_t klen, uint64_t now)
{
    struct proxy_server *best = NULL;
    uint64_t best_score = 0, base = gh_fnv1a(key, klen);
    size_t i;

    for (i = 0; i < svc->nservers; i++) {
        struct proxy_server *s = &svc->servers[i];
        uint64_t h = (base ^ s->id) * 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        h *= (uint64_t)s->weight;
        if (s == exclude || !usable_now(s, now))
            continue;
        if (best == NULL || h > best_score) {
            best = s;
            best_score = h;
        }
    }
    return best;
}

static struct proxy_server *pick_hash(struct proxy_service *svc, struct proxy_server *exclude,
                                      const struct sockaddr_storage *src, uint64_t now)
{
    if (src->ss_family == AF_INET)
        return proxy__pick_rendezvous(svc, exclude, &((const struct sockaddr_in *)src)->sin_addr,
                                      4, now);
    if (src->ss_family == AF_INET6)
        return proxy__pick_rendezvous(svc, exclude,
                                      &((const struct sockaddr_in6 *)src)->sin6_addr, 16, now);
    return proxy__pick_rendezvous(svc, exclude, src, sizeof(*src), now);
}

int proxy__server_take(struct proxy_server *srv)
{
    long cur = atomic_load(&srv->st->active);

    do {
        if (srv->maxconn > 0 && cur >= srv->maxconn)
            return -1;
    } while (!atomic_compare_exchange_weak(&srv->st->active, &cur, cur + 1));
    return 0;
}

static int has_room(const struct proxy_server *s)
{
    return s->maxconn == 0 || atomic_load(&s->st->active) < s->maxconn;
}

struct proxy_server *proxy__pick_server(struct proxy_service *svc, struct proxy_server *exclude,
                                        const struct sockaddr_storage *src, int *full,
                                        uint64_t now)
{
    struct proxy_server *best = NULL, *held = NULL;
    size_t k, n = svc->nservers;
    int any_full = 0;

    if (full != NULL)
        *full = 0;
    if (n == 1)
        exclude = NULL;
    for (k = 0; k < n; k++)
        if (eligible(&svc->servers[k], now) && !has_room(&svc->servers[k]))
            any_full = 1;
    if (svc->sched == 2 && src != NULL) {
        if ((best = pick_hash(svc, exclude, src, now)) != NULL)
            return best;
    } else if (svc->sched == 1 && svc->nwrr > 0) {
        unsigned start = atomic_fetch_add(&svc->rr, 1);
        for (k = 0; k < svc->nwrr; k++) {
            struct proxy_server *s = &svc->servers[svc->wrr[(start + k) % svc->nwrr]];
            if (s != exclude && usable_now(s, now))
                return s;
        }
    } else {
        unsigned start = atomic_fetch_add(&svc->rr, 1);
        for (k = 0; k < n; k++) {
            struct proxy_server *s = &svc->servers[(start + k) % n];
            if (s == exclude || !usable_now(s, now))
                continue;
            /* Weighted least connections: active/weight compared by cross
             * multiplication; ties go to the rotating start point. */
            if (best == NULL || atomic_load(&s->st->active) * best->weight <
                                    atomic_load(&best->st->active) * s->weight)
                best = s;
        }
        if (best != NULL)
            return best;
    }
    if (any_full) {
        /* Healthy servers exist but all are at maxconn: the caller queues. */
        if (full != NULL)
            *full = 1;
        return NULL;
    }
    /* Nothing eligible: a server held back only for a recent connect failure
     * (not down, not drained) is tried rather than refusing. */
    for (k = 0; k < n && held == NULL; k++) {
        struct proxy_server *s = &svc->servers[k];
        if (s != exclude && s->admin == 0 && atomic_load(&s->st->up) && has_room(s))
            held = s;
    }
    return held;
}

static SSL_SESSION *sess_get(struct proxy_worker *w, const char *key)
{
    size_t i;

    for (i = 0; i < w->nsess; i++)
        if (strcmp(w->sess[i].key, key) == 0)
            return w->sess[i].s;
    return NULL;
}

static void sess_put(struct proxy_worker *w, const char *key, SSL_SESSION *s)
{
    size_t i;

    for (i = 0; i < w->nsess; i++)
        if (strcmp(w->sess[i].key, key) == 0) {
            SSL_SESSION_free(w->sess[i].s);
            w->sess[i].s = s;
            return;
        }
    if (w->nsess == PROXY_MAX_SESS) {
        SSL_SESSION_free(w->sess[0].s);
        memmove(&w->sess[0], &w->sess[1], (PROXY_MAX_SESS - 1) * sizeof(w->sess[0]));
        w->nsess--;
    }
    snprintf(w->sess[w->nsess].key, PROXY_KEY_LEN, "%s", key);
    w->sess[w->nsess++].s = s;
}

void proxy__sess_clear(struct proxy_worker *w)
{
    size_t i;

    for (i = 0; i < w->nsess; i++)
        SSL_SESSION_free(w->sess[i].s);
    w->nsess = 0;
}

static void idle_unlink(struct proxy_worker *w, struct proxy_upconn *u)
{
    if (u->prev)
        u->prev->next = u->next;
    else
        w->idle = u->next;
    if (u->next)
        u->next->prev = u->prev;
    u->next = u->prev = NULL;
    w->nidle--;
}

static void upconn_free(struct proxy_worker *w, struct proxy_upconn *u)
{
    if (u->st != NULL)
        atomic_fetch_sub(&u->st->conns, 1);
    proxy__ep_close(w, &u->ep);
    proxy__defer_free(w, u); /* a later event of this batch may still name it */
}

int proxy__up_open(struct proxy_conn *c, struct proxy_server *srv, int fresh)
{
    struct proxy_worker *w = c->w;
    struct proxy_upconn *u;
    int fd, one = 1;

    c->srv = srv;
    if (!fresh) {
        for (u = w->idle; u != NULL; u = u->next) {
            if (strcmp(u->key, srv->key) != 0)
                continue;
            idle_unlink(w, u);
            if (u->ep.ssl != NULL && SSL_has_pending(u->ep.ssl)) {
                /* Bytes inside OpenSSL that no edge announced (the pool
                 * takes none such, this is the check of last resort): an
                 * alert or a record nobody asked for, not a fresh start. */
                upconn_free(w, u);
                return proxy__up_open(c, srv, fresh);
            }
            u->conn = c;
            u->srv = srv;
            u->ep.rd = 0; /* a pooled connection with input was closed when it came */
            u->ep.wr = 1;
            u->reused = 1;
            c->up = u;
            return 1;
        }
    }
    fd = socket(srv->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&srv->ss, srv->sslen) == -1 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    u = gh_calloc(1, sizeof(*u));
    u->ep.kind = EP_UPSTREAM;
    u->ep.fd = fd;
    u->ep.owner = u;
    u->conn = c;
    u->srv = srv;
    u->st_up = UP_CONNECTING;
    u->reused = 0;
    u->st = srv->st;
    atomic_fetch_add(&u->st->conns, 1);
    atomic_fetch_add(&u->st->conns_total, 1);
    snprintf(u->key, sizeof(u->key), "%s", srv->key);
    c->up = u;
    if (c->svc->up_tls != NULL) {
        SSL_SESSION *s;
        u->ep.ssl = SSL_new(c->svc->up_tls);
        if (u->ep.ssl == NULL || proxy__ep_attach_ssl(&u->ep) == -1 ||
            certs_client_set_peer(u->ep.ssl, srv->verify) == -1) {
            ERR_clear_error();
            proxy__up_close(c);
            return -1;
        }
        SSL_set_connect_state(u->ep.ssl);
        if ((s = sess_get(w, srv->key)) != NULL)
            SSL_set_session(u->ep.ssl, s);
    }
    if (proxy__ep_add(w, &u->ep) == -1) {
        proxy__up_close(c);
        return -1;
    }
    return 0;
}

int proxy__up_progress(struct proxy_conn *c)
{
    struct proxy_upconn *u = c->up;

    if (u->st_up == UP_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (!u->ep.wr && !u->ep.hup)
            return GH_AGAIN;
        if (getsockopt(u->ep.fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err != 0) {
            errno = err;
            return GH_ERR;
        }
        u->st_up = u->ep.ssl ? UP_HANDSHAKE : UP_READY;
    }
    if (u->st_up == UP_HANDSHAKE) {
        int n = SSL_do_handshake(u->ep.ssl);
        if (n != 1) {
            switch (SSL_get_error(u->ep.ssl, n)) {
            case SSL_ERROR_WANT_READ:
                u->ep.rd = 0;
                return GH_AGAIN;
            case SSL_ERROR_WANT_WRITE:
                u->ep.wr = 0;
                return GH_AGAIN;
            default: {
                long v = SSL_get_verify_result(u->ep.ssl);
                char e[256];
                gh_log_warn("service %s: server %s (%s): TLS handshake failed: %s",
                            c->svc->conf->name, c->srv->name, c->srv->addr,
                            v != X509_V_OK ? X509_verify_cert_error_string(v)
                                           : certs_last_error(e, sizeof(e)));
                ERR_clear_error();
                c->why = GH_REASON_UPSTREAM_TLS;
                return GH_ERR;
            }
            }
        }
        if (c->srv->pin != NULL && !certs_pin_matches(u->ep.ssl, c->srv->pin)) {
            gh_log_warn("service %s: server %s (%s): certificate does not match its pin",
                        c->svc->conf->name, c->srv->name, c->srv->addr);
            c->why = GH_REASON_UPSTREAM_TLS;
            return GH_ERR;
        }
        proxy__ep_tls_ready(&u->ep);
        u->st_up = UP_READY;
    }
    atomic_store(&c->srv->st->fails, 0);
    return GH_OK;
}

void proxy__up_close(struct proxy_conn *c)
{
    if (c->up == NULL)
        return;
    c->up->conn = NULL;
    upconn_free(c->w, c->up);
    c->up = NULL;
}

void proxy__up_release(struct proxy_conn *c, int reusable)
{
    struct proxy_worker *w = c->w;
    struct proxy_upconn *u = c->up, *it;
    long same = 0;

    if (u == NULL)
        return;
    if (u->ep.ssl != NULL && u->st_up == UP_READY) {
        SSL_SESSION *s = SSL_get1_session(u->ep.ssl);
        if (s != NULL && SSL_SESSION_is_resumable(s))
            sess_put(w, u->key, s);
        else
            SSL_SESSION_free(s);
    }
    if (!reusable || w->draining || u->st_up != UP_READY || u->ep.hup) {
        proxy__up_close(c);
        return;
    }
    for (it = w->idle; it != NULL; it = it->next)
        same += strcmp(it->key, u->key) == 0;
    if (same >= c->svc->conf->server_keepalive) {
        proxy__up_close(c);
        return;
    }
    c->up = NULL;
    u->conn = NULL;
    u->srv = NULL;
    u->since = w->now_ms;
    proxy__ep_idle(&u->ep);
    u->prev = NULL;
    u->next = w->idle;
    if (w->idle)
        w->idle->prev = u;
    w->idle = u;
    w->nidle++;
}

void proxy__idle_event(struct proxy_worker *w, struct proxy_upconn *u, uint32_t events)
{
    if (u->ep.fd == -1)
        return;
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI))) {
        u->ep.wr = 1; /* just writable: nothing to do while pooled */
        return;
    }
    idle_unlink(w, u);
    upconn_free(w, u);
}

void proxy__idle_expire(struct proxy_worker *w, uint64_t now)
{
    struct proxy_upconn *u = w->idle, *n;

    for (; u != NULL; u = n) {
        n = u->next;
        if (now - u->since > IDLE_MAX_AGE_MS) {
            idle_unlink(w, u);
            upconn_free(w, u);
        }
    }
}

void proxy__idle_close_all(struct proxy_worker *w)
{
    while (w->idle != NULL) {
        struct proxy_upconn *u = w->idle;
        idle_unlink(w, u);
        upconn_free(w, u);
    }
}

void proxy__server_failed(struct proxy_server *s)
{
    atomic_store(&s->fail_until, gh_now_ms() + FAIL_HOLD_MS);
    /* Passive health: with active checks, enough consecutive failures take
     * the server down ahead of the next check, which alone brings it back. */
    if (atomic_fetch_add(&s->st->fails, 1) + 1 >= s->fall && atomic_load(&s->st->checked) &&
        atomic_exchange(&s->st->up, 0) == 1) {
        atomic_fetch_add(&s->st->transitions, 1);
        gh_log_warn("server %s/%s (%s) is DOWN: %d consecutive failed connections",
                    s->st->service, s->st->name, s->addr, s->fall);
    }
}
