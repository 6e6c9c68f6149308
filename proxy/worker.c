/*
 * Workers and listeners. Each worker is a thread with its own epoll set,
 * timers, buffer pool and real-server connection pool; nothing on the data
 * path is shared between workers except atomic counters and the read-only
 * generation. Listening sockets are shared: each worker adds every listener
 * to its set with EPOLLEXCLUSIVE, so one wakes per new connection.
 *
 * Reload: main installs a new generation under lmu and pokes every worker's
 * eventfd; each worker swaps its generation reference and re-syncs its
 * listener registrations, then acknowledges. Listeners no longer used are
 * closed only after every worker has removed them from its set.
 *
 * mode udp listeners sit in the same table (keyed by protocol and address,
 * so a reload keeps their sockets too) but only worker 0 registers them:
 * it owns every UDP socket (udp.c says why).
 */
#include "proxy_int.h"

#include "../store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

_Atomic int proxy__draining;
struct gh_logfile proxy__access_log = {-1, NULL};
struct gh_logfile proxy__security_log = {-1, NULL};

struct listener {
    int fd; /* owned; -1 when the slot is free */
    int udp; /* a datagram socket (mode udp), registered by worker 0 alone */
    char addr[64];
    int used; /* referenced by the current generation */
    struct proxy_ep ep;
};

static struct listener listeners[PROXY_MAX_LISTENERS];
static pthread_mutex_t lmu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t lversion = 1;
static struct proxy_gen *current; /* ref; under lmu */
static struct proxy_worker *workers;
static int nworkers;
static _Atomic int nrunning;
static int logs_open;

int proxy__ep_add(struct proxy_worker *w, struct proxy_ep *ep)
{
    struct epoll_event ev;

    /* EPOLLPRI: urgent data ends a read short (proxy/io.c) */
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;
    ev.data.ptr = ep;
    return epoll_ctl(w->epfd, EPOLL_CTL_ADD, ep->fd, &ev);
}

void proxy__ep_del(struct proxy_worker *w, struct proxy_ep *ep)
{
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, ep->fd, NULL);
}

void proxy__defer_free(struct proxy_worker *w, void *p)
{
    if (w->ngrave == w->grave_cap) {
        w->grave_cap = w->grave_cap ? w->grave_cap * 2 : 64;
        w->grave = gh_realloc(w->grave, w->grave_cap * sizeof(*w->grave));
        if (w->grave == NULL)
            abort();
    }
    w->grave[w->ngrave++] = p;
}

void proxy__conn_list_remove(struct proxy_worker *w, struct proxy_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    w->nconns--;
}

static int open_listener(const char *addr, int udp, char *err, size_t errlen)
{
    char host[64];
    uint16_t port;
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, one = 1;

    memset(&ss, 0, sizeof(ss));
    if (gh_split_hostport(addr, host, sizeof(host), &port) == -1)
        goto bad;
    if (strchr(host, ':') == NULL) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
            goto bad;
        len = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            goto bad;
        len = sizeof(*a);
    }
    fd = socket(ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(err, errlen, "listen %s: socket: %s", addr, strerror(errno));
        return -1;
    }
    if (udp) {
        /* No SO_REUSEADDR: on UDP it would let a second socket bind the same
         * address and silently take its datagrams. A larger receive buffer
         * rides out bursts while worker 0 is busy (capped by rmem_max). */
        int rcv = 4 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
        if (ss.ss_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        /* On a wildcard address a reply would leave from whatever address
         * the route picks, not the one the client wrote to, and a client
         * (or its NAT) drops it: each datagram says where it arrived
         * (udp.c replies from there). */
        if (ss.ss_family == AF_INET
                ? ((struct sockaddr_in *)&ss)->sin_addr.s_addr == htonl(INADDR_ANY)
                : IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr))
            if (setsockopt(fd, ss.ss_family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6,
                           ss.ss_family == AF_INET ? IP_PKTINFO : IPV6_RECVPKTINFO, &one,
                           sizeof(one)) == -1) {
                snprintf(err, errlen, "listen %s (udp): IP_PKTINFO: %s", addr, strerror(errno));
                close(fd);
                return -1;
            }
        if (bind(fd, (struct sockaddr *)&ss, len) == -1) {
            snprintf(err, errlen, "listen %s (udp): %s", addr, strerror(errno));
            close(fd);
            return -1;
        }
        return fd;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) == -1 || listen(fd, 4096) == -1) {
        snprintf(err, errlen, "listen %s: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
bad:
    snprintf(err, errlen, "listen %s: bad address", addr);
    return -1;
}

static void notify_all(void)
{
    uint64_t one = 1;
    int i;

    for (i = 0; i < nworkers; i++)
        if (write(workers[i].evfd, &one, sizeof(one)) == -1)
            gh_log_warn_errno("worker %d: notify", i);
}

/* Waits (bounded) until every running worker applied listener version v. */
static void wait_acks(uint64_t v)
{
    struct timespec ts = {0, 1000000};
    int i, tries;

    for (tries = 0; tries < 5000; tries++) {
        int all = 1;
        for (i = 0; i < nworkers; i++)
            if (atomic_load(&workers[i].acked) < v && atomic_load(&workers[i].heartbeat) != 0)
                all = 0;
        if (all)
            return;
        nanosleep(&ts, NULL);
    }
    gh_log_warn("workers did not acknowledge the new configuration within 5 s");
}

/* The listeners g's preparation opened and nothing uses yet (lmu held). */
static void close_opened(struct proxy_gen *g)
{
    int i;

    for (i = 0; i < g->nopened; i++) {
        struct listener *l = &listeners[g->opened[i]];
        close(l->fd);
        l->fd = -1;
        l->used = 0;
        l->addr[0] = '\0';
    }
    g->nopened = 0;
    g->prepared = 0;
}

int proxy_prepare(struct proxy_gen *g, char *err, size_t errlen)
{
    int i;
    size_t s;

    g->nopened = 0;
    pthread_mutex_lock(&lmu);
    for (s = 0; s < g->nsvcs; s++) {
        const char *addr = g->svcs[s].conf->listen;
        int slot = -1, free_slot = -1, udp = g->svcs[s].udp;
        if (g->svcs[s].disabled)
            continue; /* its address is not listened on (unless another service's) */
        for (i = 0; i < PROXY_MAX_LISTENERS; i++) {
            if (listeners[i].fd != -1 && listeners[i].udp == udp &&
                strcmp(listeners[i].addr, addr) == 0)
                slot = i;
            else if (listeners[i].fd == -1 && free_slot == -1)
                free_slot = i;
        }
        if (slot == -1) {
            int fd;
            if (free_slot == -1) {
                snprintf(err, errlen, "too many listeners (at most %d)", PROXY_MAX_LISTENERS);
                goto fail;
            }
            fd = open_listener(addr, udp, err, errlen);
            if (fd == -1)
                goto fail;
            slot = free_slot;
            /* Not 'used' until commit: no worker accepts on it before. */
            listeners[slot].fd = fd;
            listeners[slot].used = 0;
            listeners[slot].udp = udp;
            snprintf(listeners[slot].addr, sizeof(listeners[slot].addr), "%s", addr);
            listeners[slot].ep.kind = udp ? EP_UDP : EP_LISTENER;
            listeners[slot].ep.fd = fd;
            listeners[slot].ep.owner = &listeners[slot];
            g->opened[g->nopened++] = slot;
        }
        g->svcs[s].lidx = slot;
    }
    if (logs_open && (strcmp(g->conf->access_log, current->conf->access_log) != 0 ||
                      strcmp(g->conf->security_log, current->conf->security_log) != 0))
        gh_log_warn("a changed access-log or security-log path takes effect on restart");
    if (!logs_open) {
        if (gh_logfile_open(&proxy__access_log, g->conf->access_log) == -1) {
            snprintf(err, errlen, "access-log %s: %s", g->conf->access_log, strerror(errno));
            goto fail;
        }
        if (gh_logfile_open(&proxy__security_log, g->conf->security_log) == -1) {
            snprintf(err, errlen, "security-log %s: %s", g->conf->security_log, strerror(errno));
            gh_logfile_close(&proxy__access_log);
            goto fail;
        }
        logs_open = 1;
    }
    g->prepared = 1;
    pthread_mutex_unlock(&lmu);
    return 0;
fail:
    close_opened(g);
    pthread_mutex_unlock(&lmu);
    return -1;
}

void proxy_commit(struct proxy_gen *g)
{
    int i, to_close[PROXY_MAX_LISTENERS], nclose = 0;
    struct proxy_gen *old;
    uint64_t v;
    size_t s;

    if (!g->prepared)
        gh_fatal("proxy_commit of a generation that was not prepared");
    proxy__gen_bind_stats(g);
    pthread_mutex_lock(&lmu);
    for (i = 0; i < PROXY_MAX_LISTENERS; i++) {
        int want = 0;
        for (s = 0; s < g->nsvcs; s++)
            want |= g->svcs[s].lidx == i;
        if (listeners[i].addr[0] != '\0' && !want)
            to_close[nclose++] = i;
        listeners[i].used = want;
    }
    g->nopened = 0; /* the listeners are the table's now */
    old = current;
    current = g;
    v = atomic_fetch_add(&lversion, 1) + 1;
    pthread_mutex_unlock(&lmu);
    notify_all();
    if (nworkers > 0)
        wait_acks(v);
    pthread_mutex_lock(&lmu);
    for (i = 0; i < nclose; i++) {
        struct listener *l = &listeners[to_close[i]];
        if (!l->used) {
            close(l->fd);
            l->fd = -1;
            l->addr[0] = '\0';
        }
    }
    pthread_mutex_unlock(&lmu);
    proxy_gen_unref(old);
}

void proxy_abort(struct proxy_gen *g)
{
    if (g == NULL)
        return;
    pthread_mutex_lock(&lmu);
    close_opened(g);
    pthread_mutex_unlock(&lmu);
    proxy_gen_unref(g);
}

struct proxy_gen *proxy__gen_current(void)
{
    struct proxy_gen *g;

    pthread_mutex_lock(&lmu);
    g = current ? proxy__gen_ref(current) : NULL;
    pthread_mutex_unlock(&lmu);
    return g;
}

static void worker_sync(struct proxy_worker *w)
{
    struct proxy_gen *old = NULL;
    int i, draining = atomic_load(&proxy__draining);

    pthread_mutex_lock(&lmu);
    if (w->gen != current) {
        old = w->gen;
        w->gen = proxy__gen_ref(current);
    }
    for (i = 0; i < PROXY_MAX_LISTENERS; i++) {
        int want = listeners[i].used && !draining && (!listeners[i].udp || w->id == 0)
                       ? listeners[i].fd
                       : -1;
        if (w->reg_fd[i] == want)
            continue;
        if (w->reg_fd[i] != -1)
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->reg_fd[i], NULL);
        w->reg_fd[i] = -1;
        if (want != -1) {
            struct epoll_event ev;
            /* UDP: level-triggered, read up to a budget per wake-up */
            ev.events = listeners[i].udp ? EPOLLIN : EPOLLIN | EPOLLEXCLUSIVE;
            ev.data.ptr = &listeners[i].ep;
            if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, want, &ev) == 0)
                w->reg_fd[i] = want;
            else
                gh_log_warn_errno("worker %d: listener %s", w->id, listeners[i].addr);
        }
    }
    atomic_store(&w->acked, atomic_load(&lversion));
    pthread_mutex_unlock(&lmu);
    if (w->id == 0)
        proxy__udp_sync(w); /* flows move to the new generation while the old one lives */
    proxy_gen_unref(old);
    if (draining && !w->draining) {
        struct proxy_conn *c, *n;
        w->draining = 1;
        for (c = w->conns; c != NULL; c = n) {
            n = c->next;
            proxy__conn_drain(c);
        }
        proxy__idle_close_all(w);
    }
}

static void accept_some(struct proxy_worker *w, struct listener *l)
{
    int k;

    for (k = 0; k < 64; k++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        struct proxy_service *svc = NULL;
        int fd = accept4(l->ep.fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        size_t s;
        int one = 1;

        if (fd == -1) {
            if (errno == EMFILE || errno == ENFILE) {
                static _Atomic uint64_t last;
                uint64_t now = gh_now_ms();
                if (now - atomic_load(&last) > 5000) {
                    atomic_store(&last, now);
                    gh_log_err_errno("accept on %s (shedding new connections)", l->addr);
                }
                /* Out of descriptors: the listener stays readable and would
                 * wake us forever. Spend the reserve descriptor to take one
                 * connection off the queue and close it, then re-arm. */
                if (w->reserve_fd != -1) {
                    close(w->reserve_fd);
                    fd = accept4(l->ep.fd, NULL, NULL, SOCK_CLOEXEC);
                    if (fd != -1)
                        close(fd);
                    w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                }
            }
            return;
        }
        /* The listener's first service: the TLS server name and then Host
         * choose among the services that share it. */
        for (s = 0; s < w->gen->nsvcs && svc == NULL; s++)
            if (w->gen->svcs[s].lidx == (int)(l - listeners))
                svc = w->gen->svcs[s].lhead;
        if (svc == NULL || w->draining) {
            close(fd);
            continue;
        }
        /* A trusted proxy carries many clients: they are limited per request,
         * by their own addresses, not as one source. */
        if ((svc->conf->max_conns_per_source > 0 || svc->conf->conn_rate_per_source > 0) &&
            !proxy__is_trusted(svc, &ss) &&
            rules_limit_conn_open(svc->scope, (struct sockaddr *)&ss,
                                  (long)svc->conf->max_conns_per_source,
                                  /* at the full rate also in a cluster: a source over it
                                   * here is over it anywhere, and a flood then costs no
                                   * question to the store (which every other client's
                                   * questions would queue behind) */
                                  (long)svc->conf->conn_rate_per_source) == -1) {
            /* Before any TLS work: a flood costs an accept and a close. */
            proxy__log_security_accept(svc, &ss, GH_REASON_CONN_LIMIT);
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        proxy__conn_accept(w, fd, &ss, w->gen, svc);
    }
}

static void bury(struct proxy_worker *w)
{
    struct proxy_conn **pp = &w->queue;
    size_t i;

    /* A closed connection may still sit in the run-again queue. */
    while (*pp != NULL) {
        if ((*pp)->st == ST_CLOSED)
            *pp = (*pp)->qnext;
        else
            pp = &(*pp)->qnext;
    }
    for (i = 0; i < w->ngrave; i++) {
        unsigned *magic = w->grave[i];
        if (*magic == PROXY_MAGIC_CONN)
            proxy__conn_free(w->grave[i]);
        else
            free(w->grave[i]);
    }
    w->ngrave = 0;
}

static void *worker_main(void *arg)
{
    struct proxy_worker *w = arg;
    struct epoll_event evs[256];
    uint64_t last_tick = 0;

    store_forbid_blocking(); /* a worker never waits on the shared store */
    proxy__shared_init(w);
    w->now_ms = gh_now_ms();
    worker_sync(w);
    for (;;) {
        uint64_t now = w->now_ms, next; /* read at the end of the last pass */
        int timeout = 1000, n, i;
        int64_t st_ms = proxy__shared_tick(w);
        struct proxy_conn *q, *c;

        atomic_store(&w->heartbeat, now);
        next = proxy__timer_next(w);
        if (w->id == 0)
            next = proxy__udp_next(next);
        if (w->queue != NULL)
            timeout = 0;
        else if (w->waitq != NULL && timeout > 10)
            timeout = 10; /* slots free on other workers too: look again soon */
        else if (next != 0)
            timeout = next <= now ? 0 : (next - now < 1000 ? (int)(next - now) : 1000);
        if (st_ms >= 0 && st_ms < timeout)
            timeout = (int)st_ms;
        n = epoll_wait(w->epfd, evs, 256, timeout);
        w->now_ms = gh_now_ms();
        if (n == -1 && errno != EINTR)
            gh_log_err_errno("worker %d: epoll_wait", w->id);
        for (i = 0; i < n; i++) {
            struct proxy_ep *ep = evs[i].data.ptr;
            switch (ep->kind) {
            case EP_LISTENER:
                accept_some(w, ep->owner);
                break;
            case EP_UDP:
                proxy__udp_listener_event(w, (int)((struct listener *)ep->owner - listeners),
                                          ep->fd);
                break;
            case EP_FLOW:
                proxy__udp_flow_event(w, ep->owner);
                break;
            case EP_EVENT: {
                uint64_t v;
                if (read(w->evfd, &v, sizeof(v)) == -1 && errno != EAGAIN)
                    gh_log_warn_errno("worker %d: eventfd", w->id);
                worker_sync(w);
                break;
            }
            case EP_CLIENT:
                proxy__conn_event(ep->owner, ep, evs[i].events);
                break;
            case EP_STORE:
                proxy__shared_event(w, evs[i].events);
                break;
            case EP_UPSTREAM: {
                struct proxy_upconn *u = ep->owner;
                if (u->conn != NULL)
                    proxy__conn_event(u->conn, ep, evs[i].events);
                else
                    proxy__idle_event(w, u, evs[i].events);
                break;
            }
            }
        }
        q = w->queue;
        w->queue = NULL;
        while (q != NULL) {
            c = q;
            q = q->qnext;
            proxy__conn_requeue(c);
        }
        if (w->waitq != NULL)
            proxy__waitq_dispatch(w);
        now = w->now_ms = gh_now_ms();
        while ((c = proxy__timer_pop_expired(w, now)) != NULL)
            proxy__conn_timeout(c);
        if (w->id == 0)
            proxy__udp_expire(w, now);
        bury(w);
        if (now - last_tick >= 1000) {
            last_tick = now;
            proxy__idle_expire(w, now);
            proxy__log_flush(w);
            proxy__tls_log_tick(w, now);
        }
        if (w->draining && w->nconns == 0)
            break;
    }
    proxy__log_flush(w);
    proxy__idle_close_all(w);
    bury(w);
    proxy__sess_clear(w);
    proxy__shared_fini(w);
    bury(w);
    if (w->id == 0)
        proxy__udp_fini();
    rules_thread_fini();
    proxy__persist_thread_fini();
    free(w->target);
    gh_buf_pool_drain();
    atomic_fetch_sub(&nrunning, 1);
    return NULL;
}

int proxy_start(int n)
{
    int i;

    if (n <= 0)
        n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0)
        n = 1;
    workers = gh_calloc((size_t)n, sizeof(*workers));
    for (i = 0; i < n; i++) {
        struct proxy_worker *w = &workers[i];
        int k;
        w->id = i;
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (w->epfd == -1 || w->evfd == -1) {
            gh_log_err_errno("worker %d: epoll/eventfd", i);
            return -1;
        }
        w->evep.kind = EP_EVENT;
        w->evep.fd = w->evfd;
        w->evep.owner = w;
        {
            struct epoll_event ev;
            ev.events = EPOLLIN;
            ev.data.ptr = &w->evep;
            epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev);
        }
        for (k = 0; k < PROXY_MAX_LISTENERS; k++)
            w->reg_fd[k] = -1;
        w->scratch = gh_calloc(HTTP1_MAX_HEADERS_HARD, sizeof(*w->scratch));
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        w->log_flushed = gh_now_ms();
    }
    nworkers = n;
    for (i = 0; i < n; i++) {
        atomic_fetch_add(&nrunning, 1);
        if (pthread_create(&workers[i].th, NULL, worker_main, &workers[i]) != 0) {
            gh_log_err("cannot start worker %d", i);
            return -1;
        }
    }
    gh_log_info("%d workers started", n);
    if (proxy__health_start() == -1) {
        gh_log_err("cannot start the health checker");
        return -1;
    }
    return 0;
}

void proxy_drain(long long timeout_ms)
{
    uint64_t deadline = gh_now_ms() + (uint64_t)timeout_ms;
    struct timespec ts = {0, 10000000};
    int i;

    atomic_store(&proxy__draining, 1);
    notify_all(); /* listeners close first; the checker may be mid-check */
    proxy__health_stop();
    while (atomic_load(&nrunning) > 0 && gh_now_ms() < deadline)
        nanosleep(&ts, NULL);
    if (atomic_load(&nrunning) > 0) {
        gh_log_warn("drain timeout: %d workers still had connections", atomic_load(&nrunning));
        return;
    }
    for (i = 0; i < nworkers; i++)
        pthread_join(workers[i].th, NULL);
    gh_logfile_close(&proxy__access_log);
    gh_logfile_close(&proxy__security_log);
}

void proxy_reopen_logs(void)
{
    if (gh_logfile_reopen(&proxy__access_log) == -1)
        gh_log_warn_errno("reopen access log");
    if (gh_logfile_reopen(&proxy__security_log) == -1)
        gh_log_warn_errno("reopen security log");
}

void proxy_stats_get(struct proxy_stats *st)
{
    uint64_t now = gh_now_ms();
    int i;

    memset(st, 0, sizeof(*st));
    st->workers = nworkers;
    for (i = 0; i < nworkers; i++) {
        struct proxy_worker *w = &workers[i];
        uint64_t hb = atomic_load(&w->heartbeat);
        if (hb != 0 && now - hb < 3000)
            st->healthy_workers++;
        st->conns_total += atomic_load(&w->n_conns_total);
        st->requests += atomic_load(&w->n_requests);
        st->refused += atomic_load(&w->n_refused);
        st->conns_active += w->nconns; /* read without a lock: a gauge */
    }
    pthread_mutex_lock(&lmu);
    st->generation = current ? current->id : 0;
    pthread_mutex_unlock(&lmu);
}

/* Slots start empty: fd -1, which a static initializer cannot say. */
__attribute__((constructor)) static void listeners_init(void)
{
    int i;

    for (i = 0; i < PROXY_MAX_LISTENERS; i++)
        listeners[i].fd = -1;
}
