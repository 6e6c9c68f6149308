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

struct proxy_server *proxy__pick_server(struct proxy_service *svc, struct proxy_server *exclude)
{
    uint64_t now = gh_now_ms();
    unsigned start = atomic_fetch_add(&svc->rr, 1);
    int rr = svc->conf->scheduler[0] == 'r';
    struct proxy_server *best = NULL, *fallback = NULL;
    size_t k, n = svc->nservers;

    for (k = 0; k < n; k++) {
        struct proxy_server *s = &svc->servers[(start + k) % n];
        if (s == exclude && n > 1)
            continue;
        if (atomic_load(&s->fail_until) > now) {
            if (fallback == NULL)
                fallback = s;
            continue;
        }
        if (rr)
            return s;
        /* Weighted least connections: compare active/weight by cross
         * multiplication; ties go to the rotating start point. */
        if (best == NULL ||
            atomic_load(&s->active) * best->weight < atomic_load(&best->active) * s->weight)
            best = s;
    }
    /* Every server failed recently: try one anyway rather than refuse. */
    return best ? best : fallback;
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

static void idle_unlink(struct proxy_worker *w, struct proxy_idle *i)
{
    if (i->prev)
        i->prev->next = i->next;
    else
        w->idle = i->next;
    if (i->next)
        i->next->prev = i->prev;
    w->nidle--;
}

int proxy__up_open(struct proxy_conn *c, struct proxy_server *srv)
{
    struct proxy_worker *w = c->w;
    struct proxy_idle *i;
    int fd, one = 1;

    c->srv = srv;
    for (i = w->idle; i != NULL; i = i->next) {
        if (strcmp(i->key, srv->key) != 0)
            continue;
        idle_unlink(w, i);
        c->up = i->ep;
        c->up.kind = EP_UPSTREAM;
        c->up.owner = c;
        c->up.rd = 0;
        c->up.wr = 1;
        free(i);
        if (proxy__ep_mod(w, &c->up) == -1) {
            proxy__ep_close(w, &c->up);
            return -1;
        }
        c->up_reused = 1;
        c->up_phase = 3;
        return 1;
    }
    c->up_reused = 0;
    fd = socket(srv->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&srv->ss, srv->sslen) == -1 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    c->up.kind = EP_UPSTREAM;
    c->up.fd = fd;
    c->up.owner = c;
    c->up.rd = c->up.wr = c->up.hup = 0;
    c->up.ssl = NULL;
    if (c->svc->up_tls != NULL) {
        SSL_SESSION *s;
        c->up.ssl = SSL_new(c->svc->up_tls);
        if (c->up.ssl == NULL || SSL_set_fd(c->up.ssl, fd) != 1 ||
            certs_client_set_peer(c->up.ssl, srv->verify) == -1) {
            ERR_clear_error();
            proxy__ep_close(w, &c->up);
            return -1;
        }
        SSL_set_connect_state(c->up.ssl);
        if ((s = sess_get(w, srv->key)) != NULL)
            SSL_set_session(c->up.ssl, s);
    }
    if (proxy__ep_add(w, &c->up) == -1) {
        proxy__ep_close(w, &c->up);
        return -1;
    }
    c->up_phase = 1;
    return 0;
}

int proxy__up_progress(struct proxy_conn *c)
{
    if (c->up_phase == 1) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (!c->up.wr && !c->up.hup)
            return GH_AGAIN;
        if (getsockopt(c->up.fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err != 0) {
            errno = err;
            return GH_ERR;
        }
        c->up_phase = c->up.ssl ? 2 : 3;
    }
    if (c->up_phase == 2) {
        int n = SSL_do_handshake(c->up.ssl);
        if (n != 1) {
            switch (SSL_get_error(c->up.ssl, n)) {
            case SSL_ERROR_WANT_READ:
                c->up.rd = 0;
                return GH_AGAIN;
            case SSL_ERROR_WANT_WRITE:
                c->up.wr = 0;
                return GH_AGAIN;
            default: {
                long v = SSL_get_verify_result(c->up.ssl);
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
        c->up_phase = 3;
    }
    return GH_OK;
}

void proxy__up_release(struct proxy_conn *c, int reusable)
{
    struct proxy_worker *w = c->w;
    struct proxy_idle *i, *it;
    long same = 0;

    if (c->up.fd == -1)
        return;
    if (c->up.ssl != NULL && c->up_phase == 3) {
        SSL_SESSION *s = SSL_get1_session(c->up.ssl);
        if (s != NULL && SSL_SESSION_is_resumable(s))
            sess_put(w, c->srv->key, s);
        else
            SSL_SESSION_free(s);
    }
    if (!reusable || w->draining || c->up_phase != 3 || c->up.hup) {
        proxy__ep_close(w, &c->up);
        return;
    }
    for (it = w->idle; it != NULL; it = it->next)
        same += strcmp(it->key, c->srv->key) == 0;
    if (same >= c->svc->conf->server_keepalive) {
        proxy__ep_close(w, &c->up);
        return;
    }
    i = gh_calloc(1, sizeof(*i));
    i->ep = c->up;
    i->ep.kind = EP_IDLE;
    i->ep.owner = i;
    snprintf(i->key, sizeof(i->key), "%s", c->srv->key);
    i->since = gh_now_ms();
    c->up.fd = -1;
    c->up.ssl = NULL;
    if (proxy__ep_mod(w, &i->ep) == -1) {
        proxy__ep_close(w, &i->ep);
        free(i);
        return;
    }
    i->next = w->idle;
    i->prev = NULL;
    if (w->idle)
        w->idle->prev = i;
    w->idle = i;
    w->nidle++;
}

/* Any event on an idle connection means the server closed it or sent bytes
 * nobody asked for; either way it cannot carry a request. */
void proxy__idle_event(struct proxy_worker *w, struct proxy_idle *i)
{
    idle_unlink(w, i);
    proxy__ep_close(w, &i->ep);
    free(i);
}

void proxy__idle_expire(struct proxy_worker *w, uint64_t now)
{
    struct proxy_idle *i = w->idle, *n;

    for (; i != NULL; i = n) {
        n = i->next;
        if (now - i->since > IDLE_MAX_AGE_MS)
            proxy__idle_event(w, i);
    }
}

void proxy__idle_close_all(struct proxy_worker *w)
{
    while (w->idle != NULL)
        proxy__idle_event(w, w->idle);
}

void proxy__server_failed(struct proxy_server *s)
{
    atomic_store(&s->fail_until, gh_now_ms() + FAIL_HOLD_MS);
}
