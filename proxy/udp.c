/*
 * mode udp: datagrams forwarded per flow.
 *
 * A flow is one client address and port on one UDP listener. Its first
 * datagram picks a real server (source-ip persistence first, then the
 * service's scheduler; least connections counts flows as in flight) and
 * opens a UDP socket connected to that server, so the server's replies come
 * back on that socket (and only the server's: the kernel filters a
 * connected socket by its peer), and go to the client with sendmsg() on the
 * listener's socket, from the address the client wrote to (on a wildcard
 * listener, the one its last datagram arrived at: IP_PKTINFO). Either direction
 * refreshes the flow; `flow-timeout` of silence ends it, with one
 * access-log line.
 *
 * Ownership: worker 0 owns every UDP socket of the process, the listeners
 * and the flows' sockets, and this file runs on worker 0 alone. So the flow
 * table needs no lock, and datagrams of one flow are never reordered by two
 * threads forwarding them at once. Sharding listeners across workers (by
 * SO_REUSEPORT's hash) would spread the load, but the kernel re-hashes
 * flows whenever the set of sockets changes (a reload, a worker count),
 * moving live flows to a worker that does not know them. One worker forwards
 * a few hundred thousand datagrams a second, more than an Edge pool's media
 * relay sends; HTTP on worker 0 shares that core, and the other workers
 * take its connections when it is busy (the listeners are EPOLLEXCLUSIVE).
 *
 * Bounds: at most `max-flows` flows per service; a datagram that would
 * open one more is dropped before anything is allocated, and counted, so a
 * flood of spoofed source ports costs a hash lookup and a counter each. The
 * table is keyed by SipHash under a key drawn at start, so those ports
 * cannot be chosen to collide into one chain. One 64 KiB buffer carries
 * every datagram (a UDP payload is at most 65,507 bytes over IPv4): nothing
 * is allocated per datagram. Each flow holds one descriptor; past the
 * process's limit new flows are dropped (reason no-socket).
 *
 * Health: a flow whose server is down (its check, or an ICMP port
 * unreachable on the flow's socket) or in maint ends; the client's next
 * datagram opens a new flow on a server that is up, so a client moves
 * having lost only what the dead server lost. A server in drain keeps its
 * flows and, as for HTTP, its persistent clients. A reload keeps the
 * listener's socket and every flow whose service and server remain.
 */
#include "proxy_int.h"

#include <assert.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

#define UDP_MAX_DGRAM 65536 /* more than any UDP payload: none is ever truncated */
#define UDP_BUDGET 64       /* datagrams per socket per wake-up: a busy flow cannot starve others */
#define UDP_SWEEP_MS 1000   /* how often flows of servers that went down are ended */
#define UDP_WARN_MS 5000    /* at most one max-flows warning per service this often */
#define UDP_ASK_MAX 4096    /* new flows waiting for the store at once; past it, placed here */
#define UDP_ASK_HELD 8      /* datagrams one waiting flow keeps; later ones are dropped */
#define UDP_ASK_BYTES (8u << 20) /* what every waiting flow keeps, in all */
#define UDP_ASK_BUCKETS 1024

union udp_addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

struct udp_port;

/* Where a client's datagram arrived on a wildcard listener (IP_PKTINFO,
 * worker.c): replies leave from there, the address the client wrote to.
 * family 0: the listener is bound to one address, which says it already. */
struct udp_local {
    int family;
    union {
        struct in_addr v4;
        struct in6_addr v6;
    } a;
};

/* Room for the one control message either way (IPv4 or IPv6 pktinfo). */
union udp_cmsg {
    struct cmsghdr align;
    char b[CMSG_SPACE(sizeof(struct in6_pktinfo))];
};

struct proxy_flow {
    struct proxy_ep ep;          /* kind EP_FLOW, owner this; first, so bury() frees it plainly */
    struct proxy_flow *hnext;    /* the hash chain */
    struct proxy_flow *prev, *next; /* the port's flows, least recently active first */
    struct udp_port *port;       /* borrowed */
    union udp_addr peer;         /* the client */
    socklen_t peerlen;
    struct udp_local local;      /* the address its last datagram was sent to */
    uint64_t hash;
    struct proxy_service *svc;   /* borrowed from worker 0's generation; rebound by sync */
    struct proxy_server *srv;    /* borrowed likewise */
    struct proxy_srv_stats *st;  /* process-wide: names the server across generations */
    struct proxy_svc_stats *svst; /* process-wide */
    uint64_t t_start, t_last, t_reply, t_persist; /* monotonic ms; t_reply 0: no reply yet */
    uint64_t dg_in, dg_out, bytes_in, bytes_out;
    int shared;                  /* its client's entry is the cluster's (store), not this process's */
    char client[64];             /* "ip:port", for the log */
};

/* A new flow while the cluster's store is asked where its client was
 * (persistence source-ip): its datagrams so far, in order, and nothing
 * else (no socket, no server, no slot taken). Every datagram of its client
 * comes here until the answer, so it cannot race a flow of its own. */
struct udp_ask {
    struct udp_ask *hnext;
    struct proxy_worker *w;
    struct udp_port *port;
    union udp_addr peer;
    socklen_t plen;
    uint64_t hash;
    struct udp_local local;
    unsigned nheld;
    size_t held_len[UDP_ASK_HELD];
    unsigned char *held[UDP_ASK_HELD];
};

/* One UDP listener slot (worker.c's listener table) and its flows. */
struct udp_port {
    int slot;
    int fd;                     /* borrowed: the listener's socket, from its last event */
    struct proxy_service *svc;  /* borrowed from worker 0's generation; NULL: none now */
    int persist;                /* persistence source-ip */
    struct proxy_flow *head, *tail;
    size_t nflows;
    size_t nasks;               /* flows waiting for the store: they count against max-flows */
    uint64_t warned;            /* ms of the last max-flows warning */
    unsigned long long refused; /* refusals since that warning */
};

static struct udp_port *ports[PROXY_MAX_LISTENERS]; /* allocated once per slot used */
static int used_slots[PROXY_MAX_LISTENERS];          /* slots with a port, in order */
static size_t nused;
static struct proxy_flow **table; /* owned: hash buckets, a power of two */
static size_t table_size, nflows;
static uint64_t sip_key[2];
static unsigned char *dgram; /* owned: the one datagram buffer */
static uint64_t last_sweep;
static struct udp_ask *ask_table[UDP_ASK_BUCKETS]; /* by the flow's hash */
static size_t nasks, ask_bytes;

/* SipHash-1-3 (Aumasson and Bernstein): keyed, so a client choosing its
 * source ports cannot make them share a bucket. */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

static uint64_t siphash(const unsigned char *in, size_t len)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ sip_key[0], v1 = 0x646f72616e646f6dULL ^ sip_key[1];
    uint64_t v2 = 0x6c7967656e657261ULL ^ sip_key[0], v3 = 0x7465646279746573ULL ^ sip_key[1];
    uint64_t b = (uint64_t)len << 56, m;
    size_t i, left = len & 7;

    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&m, in + i, 8);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (m = 0; left > 0; left--)
        m |= (uint64_t)in[i + left - 1] << (8 * (left - 1));
    b |= m;
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t flow_hash(int slot, const union udp_addr *a)
{
    unsigned char k[24];
    size_t n;

    memset(k, 0, sizeof(k));
    k[0] = (unsigned char)(slot & 0xff);
    k[1] = (unsigned char)(slot >> 8);
    if (a->sa.sa_family == AF_INET) {
        k[2] = 4;
        memcpy(k + 4, &a->in.sin_port, 2);
        memcpy(k + 6, &a->in.sin_addr, 4);
        n = 10;
    } else {
        k[2] = 6;
        memcpy(k + 4, &a->in6.sin6_port, 2);
        memcpy(k + 6, &a->in6.sin6_addr, 16);
        n = 22;
    }
    return siphash(k, n);
}

static int same_peer(const union udp_addr *a, const union udp_addr *b)
{
    if (a->sa.sa_family != b->sa.sa_family)
        return 0;
    if (a->sa.sa_family == AF_INET)
        return a->in.sin_port == b->in.sin_port &&
               a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
    return a->in6.sin6_port == b->in6.sin6_port &&
           memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16) == 0;
}

static struct proxy_flow *flow_find(const struct udp_port *p, const union udp_addr *a, uint64_t h)
{
    struct proxy_flow *f;

    if (table == NULL)
        return NULL;
    for (f = table[h & (table_size - 1)]; f != NULL; f = f->hnext)
        if (f->hash == h && f->port == p && same_peer(&f->peer, a))
            return f;
    return NULL;
}

/* Doubles the buckets when flows outnumber them; runs when a flow opens,
 * never per datagram. */
static void table_grow(void)
{
    size_t n = table_size ? table_size * 2 : 1024, i;
    struct proxy_flow **t;

    if (table != NULL && nflows < table_size)
        return;
    t = gh_calloc(n, sizeof(*t));
    for (i = 0; i < table_size; i++)
        while (table[i] != NULL) {
            struct proxy_flow *f = table[i];
            table[i] = f->hnext;
            f->hnext = t[f->hash & (n - 1)];
            t[f->hash & (n - 1)] = f;
        }
    free(table);
    table = t;
    table_size = n;
}

static void table_remove(struct proxy_flow *f)
{
    struct proxy_flow **pp = &table[f->hash & (table_size - 1)];

    while (*pp != f)
        pp = &(*pp)->hnext;
    *pp = f->hnext;
    f->hnext = NULL;
}

static void list_unlink(struct udp_port *p, struct proxy_flow *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        p->head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        p->tail = f->prev;
    f->prev = f->next = NULL;
}

static void list_append(struct udp_port *p, struct proxy_flow *f)
{
    f->prev = p->tail;
    f->next = NULL;
    if (p->tail)
        p->tail->next = f;
    else
        p->head = f;
    p->tail = f;
}

/* A datagram moved the flow: it becomes the most recently active. */
static void touch(struct proxy_flow *f, uint64_t now)
{
    f->t_last = now;
    if (f->port->tail != f) {
        list_unlink(f->port, f);
        list_append(f->port, f);
    }
}

static void peer_ss(const struct proxy_flow *f, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &f->peer, f->peerlen);
}

/* The access line of a flow that ended, in the documented field order
 * (accesslog.c): the request is "UDP IN/OUT -" with the datagrams from and
 * to the client, status "-", the bytes from and to the client, the server,
 * the flow's duration, the time to the server's first reply ("-": none),
 * and why it ended ("-": flow-timeout, its normal end). */
static void flow_log(struct proxy_worker *w, const struct proxy_flow *f, const char *why,
                     uint64_t now)
{
    char ts[40], up[32], line[800];
    int n;

    if (proxy__access_log.fd == -1)
        return;
    gh_time_rfc3339(ts, sizeof(ts));
    if (f->t_reply)
        snprintf(up, sizeof(up), "%llu", (unsigned long long)(f->t_reply - f->t_start));
    else
        snprintf(up, sizeof(up), "-");
    n = snprintf(line, sizeof(line), "%s %s %s \"UDP %llu/%llu -\" - %llu %llu %s %llu %s %s\n",
                 ts, f->svc->conf->name, f->client, (unsigned long long)f->dg_in,
                 (unsigned long long)f->dg_out, (unsigned long long)f->bytes_in,
                 (unsigned long long)f->bytes_out, f->srv->name,
                 (unsigned long long)(now - f->t_start), up, why);
    proxy__log_append(w, line, n, sizeof(line));
}

/* Ends f: its line, its counts, its socket; freed after the event batch,
 * since a later event of the batch may still name it. */
static void flow_end(struct proxy_worker *w, struct proxy_flow *f, const char *why, uint64_t now)
{
    struct udp_port *p = f->port;

    flow_log(w, f, why, now);
    table_remove(f);
    list_unlink(p, f);
    p->nflows--;
    nflows--;
    atomic_fetch_sub(&f->st->active, 1);
    atomic_fetch_sub(&f->st->conns, 1);
    atomic_fetch_sub(&f->svst->udp_flows, 1);
    proxy__ep_del(w, &f->ep);
    close(f->ep.fd);
    f->ep.fd = -1;
    proxy__defer_free(w, f);
}

/* A flow may go on while its server is up and not in maint. */
static const char *flow_unusable(const struct proxy_flow *f)
{
    if (f->srv->admin == 2)
        return "upstream:maint";
    if (!atomic_load(&f->st->up))
        return "upstream:down";
    return NULL;
}

/* The server for a new flow, with a slot taken on it (maxconn), or NULL.
 * want: the server the cluster's store named (0: none, or no answer). */
static struct proxy_server *pick(struct udp_port *p, const struct sockaddr_storage *ss,
                                 int64_t want)
{
    struct proxy_server *s = NULL;

    if (p->persist && want != 0)
        s = proxy__persist_server_by_id(p->svc, want);
    if (p->persist && s == NULL)
        s = proxy__persist_source_l4(p->svc, ss, gh_now_ms());
    if (s != NULL && proxy__server_take(s) == 0)
        return s;
    s = proxy__pick_server(p->svc, NULL, ss, NULL, gh_now_ms());
    if (s != NULL && proxy__server_take(s) == 0)
        return s;
    return NULL;
}

static void refused(struct udp_port *p, uint64_t now)
{
    struct proxy_service *svc = p->svc;

    atomic_fetch_add(&svc->st->udp_flows_refused, 1);
    p->refused++;
    if (now - p->warned >= UDP_WARN_MS) {
        gh_log_warn("service %s: max-flows %lld reached: datagrams of new flows are dropped "
                    "(%llu since the last report)",
                    svc->conf->name, svc->conf->max_flows, p->refused);
        p->warned = now;
        p->refused = 0;
    }
}

/* Where f's client is persistent to: in the cluster's store when the
 * store placed it, else in this process's table. */
static void remember(struct proxy_worker *w, const struct proxy_flow *f)
{
    struct sockaddr_storage ss;

    peer_ss(f, &ss);
    if (f->shared)
        proxy__shared_flow_remember(w, f->svc, &ss, f->srv);
    else
        proxy__persist_source_remember(f->svc, &ss, f->srv);
}

/* want and shared: the store's answer (its server's id, 0 none) and
 * whether there was one. */
static struct proxy_flow *flow_open(struct proxy_worker *w, struct udp_port *p,
                                    const union udp_addr *peer, socklen_t plen, uint64_t h,
                                    uint64_t now, int64_t want, int shared)
{
    struct proxy_service *svc = p->svc;
    struct sockaddr_storage ss;
    struct proxy_server *srv;
    struct proxy_flow *f;
    struct epoll_event ev;
    char ip[INET6_ADDRSTRLEN];
    int fd;

    if (p->nflows + p->nasks >= (size_t)svc->conf->max_flows) {
        refused(p, now);
        return NULL;
    }
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, peer, plen);
    if ((srv = pick(p, &ss, want)) == NULL) {
        atomic_fetch_add(&svc->st->udp_dropped[PROXY_UDP_DROP_NO_SERVER], 1);
        return NULL;
    }
    fd = socket(srv->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* connect() on a UDP socket only records the peer: it never blocks */
    if (fd != -1 && connect(fd, (const struct sockaddr *)&srv->ss, srv->sslen) == -1) {
        close(fd);
        fd = -1;
    }
    if (fd == -1) {
        static uint64_t warned;
        if (now - warned >= UDP_WARN_MS) {
            gh_log_warn_errno("service %s: a UDP flow's socket to %s", svc->conf->name, srv->addr);
            warned = now;
        }
        atomic_fetch_sub(&srv->st->active, 1);
        atomic_fetch_add(&svc->st->udp_dropped[PROXY_UDP_DROP_NO_SOCKET], 1);
        return NULL;
    }
    f = gh_calloc(1, sizeof(*f));
    f->ep.kind = EP_FLOW;
    f->ep.fd = fd;
    f->ep.owner = f;
    /* Level-triggered: a flow read up to its budget is woken again. */
    ev.events = EPOLLIN;
    ev.data.ptr = &f->ep;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
        gh_log_warn_errno("service %s: epoll of a UDP flow", svc->conf->name);
        close(fd);
        free(f);
        atomic_fetch_sub(&srv->st->active, 1);
        atomic_fetch_add(&svc->st->udp_dropped[PROXY_UDP_DROP_NO_SOCKET], 1);
        return NULL;
    }
    f->port = p;
    f->peer = *peer;
    f->peerlen = plen;
    f->hash = h;
    f->svc = svc;
    f->srv = srv;
    f->st = srv->st;
    f->svst = svc->st;
    f->t_start = f->t_last = f->t_persist = now;
    f->shared = shared;
    if (peer->sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &peer->in.sin_addr, ip, sizeof(ip));
        snprintf(f->client, sizeof(f->client), "%s:%u", ip, ntohs(peer->in.sin_port));
    } else {
        inet_ntop(AF_INET6, &peer->in6.sin6_addr, ip, sizeof(ip));
        snprintf(f->client, sizeof(f->client), "[%s]:%u", ip, ntohs(peer->in6.sin6_port));
    }
    nflows++;
    table_grow();
    f->hnext = table[h & (table_size - 1)];
    table[h & (table_size - 1)] = f;
    list_append(p, f);
    p->nflows++;
    atomic_fetch_add(&srv->st->conns, 1);
    atomic_fetch_add(&srv->st->conns_total, 1);
    atomic_fetch_add(&svc->st->udp_flows, 1);
    atomic_fetch_add(&svc->st->udp_flows_total, 1);
    if (p->persist)
        remember(w, f);
    return f;
}

/* Writes one client datagram towards f's server: 0 sent, -1 dropped
 * (counted), 1 the server's port is closed (an ICMP error was pending). */
static int to_server(struct proxy_worker *w, struct proxy_flow *f, const unsigned char *buf,
                     size_t n, uint64_t now)
{
    if (send(f->ep.fd, buf, n, 0) == -1) {
        if (errno == ECONNREFUSED)
            return 1;
        atomic_fetch_add(&f->svst->udp_dropped[PROXY_UDP_DROP_SERVER_SEND], 1);
        return -1;
    }
    f->dg_in++;
    f->bytes_in += n;
    atomic_fetch_add(&f->svst->udp_dgrams_in, 1);
    atomic_fetch_add(&f->svst->bytes_in, n);
    atomic_fetch_add(&f->st->bytes_out, n);
    touch(f, now);
    /* source-ip persistence runs from the client's last traffic: refreshed
     * a few times per timeout while the flow lives. */
    if (f->port->persist && now - f->t_persist > (uint64_t)f->svc->conf->persist_timeout / 4) {
        remember(w, f);
        f->t_persist = now;
    }
    return 0;
}

/* One client datagram to f (NULL: a new flow, placed by want and shared
 * as flow_open says). Returns the flow it went to, or NULL. */
static struct proxy_flow *deliver(struct proxy_worker *w, struct udp_port *p,
                                  struct proxy_flow *f, const union udp_addr *peer,
                                  socklen_t plen, uint64_t h, const struct udp_local *to,
                                  const unsigned char *buf, size_t n, uint64_t now,
                                  int64_t want, int shared)
{
    int tries;

    for (tries = 0; tries < 2; tries++) {
        if (f == NULL && (f = flow_open(w, p, peer, plen, h, now, want, shared)) == NULL)
            return NULL;
        f->local = *to;
        if (to_server(w, f, buf, n, now) != 1)
            return f;
        /* The server's port is closed: it is failed (passive health), the
         * flow ends, and this datagram tries a new flow on another server. */
        proxy__server_failed(f->srv);
        flow_end(w, f, "upstream:refused", now);
        f = NULL;
        want = 0; /* the store's server it was */
    }
    return NULL;
}

static struct udp_ask *ask_find(const struct udp_port *p, const union udp_addr *a, uint64_t h)
{
    struct udp_ask *q;

    for (q = ask_table[h % UDP_ASK_BUCKETS]; q != NULL; q = q->hnext)
        if (q->hash == h && q->port == p && same_peer(&q->peer, a))
            return q;
    return NULL;
}

/* Out of the table and the counts: the flow it becomes counts from here. */
static void ask_unlink(struct udp_ask *q)
{
    struct udp_ask **pp = &ask_table[q->hash % UDP_ASK_BUCKETS];

    while (*pp != q)
        pp = &(*pp)->hnext;
    *pp = q->hnext;
    nasks--;
    q->port->nasks--;
}

static void ask_free(struct udp_ask *q)
{
    unsigned i;

    for (i = 0; i < q->nheld; i++) {
        ask_bytes -= q->held_len[i];
        free(q->held[i]);
    }
    free(q);
}

/* The store's answer for a waiting flow: the flow opens on the server it
 * named (when usable), else where this appliance's rendezvous sends it,
 * and takes its datagrams in the order they came. */
static void asked(void *arg, int64_t id, int away)
{
    struct udp_ask *q = arg;
    struct udp_port *p = q->port;
    struct proxy_worker *w = q->w;
    struct proxy_flow *f = NULL;
    uint64_t now = gh_now_ms();
    unsigned i;

    ask_unlink(q);
    for (i = 0; p->svc != NULL && !w->draining && !atomic_load(&proxy__draining) && i < q->nheld;
         i++)
        f = deliver(w, p, f, &q->peer, q->plen, q->hash, &q->local, q->held[i], q->held_len[i],
                    now, away ? 0 : id, !away);
    ask_free(q);
}

/* A datagram of a client without a flow, in a cluster with source-ip
 * persistence: held while the store is asked where the client was. -1:
 * not held (too many waiting, or the store cannot be asked): placed now. */
static int ask_hold(struct proxy_worker *w, struct udp_port *p, const union udp_addr *peer,
                    socklen_t plen, uint64_t h, const struct udp_local *to, size_t n,
                    uint64_t now)
{
    struct udp_ask *q = ask_find(p, peer, h);
    struct sockaddr_storage ss;

    if (q == NULL) {
        if (nasks >= UDP_ASK_MAX)
            return -1;
        if (p->nflows + p->nasks >= (size_t)p->svc->conf->max_flows) {
            refused(p, now);
            return 0;
        }
        q = gh_calloc(1, sizeof(*q));
        q->w = w;
        q->port = p;
        q->peer = *peer;
        q->plen = plen;
        q->hash = h;
        memset(&ss, 0, sizeof(ss));
        memcpy(&ss, peer, plen);
        if (proxy__shared_flow_ask(w, p->svc, &ss, asked, q) == -1) {
            free(q);
            return -1;
        }
        q->hnext = ask_table[h % UDP_ASK_BUCKETS];
        ask_table[h % UDP_ASK_BUCKETS] = q;
        nasks++;
        p->nasks++;
    }
    q->local = *to;
    if (q->nheld == UDP_ASK_HELD || ask_bytes + n > UDP_ASK_BYTES) {
        atomic_fetch_add(&p->svc->st->udp_dropped[PROXY_UDP_DROP_STORE_WAIT], 1);
        return 0;
    }
    q->held[q->nheld] = gh_calloc(1, n > 0 ? n : 1);
    memcpy(q->held[q->nheld], dgram, n);
    q->held_len[q->nheld++] = n;
    ask_bytes += n;
    return 0;
}

static void from_client(struct proxy_worker *w, struct udp_port *p, const union udp_addr *peer,
                        socklen_t plen, const struct udp_local *to, size_t n, uint64_t now)
{
    uint64_t h = flow_hash(p->slot, peer);
    struct proxy_flow *f = flow_find(p, peer, h);
    const char *why;

    if (f != NULL && (why = flow_unusable(f)) != NULL) {
        flow_end(w, f, why, now);
        f = NULL;
    }
    if (f == NULL && p->persist && proxy__cluster() &&
        ask_hold(w, p, peer, plen, h, to, n, now) == 0)
        return;
    deliver(w, p, f, peer, plen, h, to, dgram, n, now, 0, 0);
}

static struct udp_port *port_get(int slot)
{
    if (ports[slot] == NULL) {
        ports[slot] = gh_calloc(1, sizeof(*ports[slot]));
        ports[slot]->slot = slot;
        ports[slot]->fd = -1;
        used_slots[nused++] = slot;
    }
    return ports[slot];
}

/* The local address a datagram was delivered to, from recvmsg's control
 * messages (only wildcard listeners ask for them). For IPv4 ipi_spec_dst,
 * the local address, not the header's (which may be a broadcast); an IPv6
 * multicast destination is no address to answer from. */
static void local_of(struct msghdr *mh, struct udp_local *to)
{
    struct cmsghdr *cm;

    to->family = 0;
    for (cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
            to->family = AF_INET;
            to->a.v4 = pi.ipi_spec_dst;
        } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
            if (!IN6_IS_ADDR_MULTICAST(&pi.ipi6_addr)) {
                to->family = AF_INET6;
                to->a.v6 = pi.ipi6_addr;
            }
        }
    }
}

/* Sends dgram[0, n) to f's client on the listener's socket, from the
 * address the client wrote to. */
static ssize_t to_client(struct proxy_flow *f, size_t n)
{
    union udp_cmsg cb;
    struct iovec iov;
    struct msghdr mh;
    struct cmsghdr *cm;

    iov.iov_base = dgram;
    iov.iov_len = n;
    memset(&mh, 0, sizeof(mh));
    mh.msg_name = &f->peer;
    mh.msg_namelen = f->peerlen;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (f->local.family != 0) {
        memset(&cb, 0, sizeof(cb));
        mh.msg_control = cb.b;
        mh.msg_controllen = f->local.family == AF_INET ? CMSG_SPACE(sizeof(struct in_pktinfo))
                                                       : CMSG_SPACE(sizeof(struct in6_pktinfo));
        cm = CMSG_FIRSTHDR(&mh);
        if (f->local.family == AF_INET) {
            struct in_pktinfo pi;
            memset(&pi, 0, sizeof(pi));
            pi.ipi_spec_dst = f->local.a.v4; /* ifindex 0: the route picks the interface */
            cm->cmsg_level = IPPROTO_IP;
            cm->cmsg_type = IP_PKTINFO;
            cm->cmsg_len = CMSG_LEN(sizeof(pi));
            memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
        } else {
            struct in6_pktinfo pi;
            memset(&pi, 0, sizeof(pi));
            pi.ipi6_addr = f->local.a.v6;
            cm->cmsg_level = IPPROTO_IPV6;
            cm->cmsg_type = IPV6_PKTINFO;
            cm->cmsg_len = CMSG_LEN(sizeof(pi));
            memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
        }
    }
    return sendmsg(f->port->fd, &mh, 0);
}

void proxy__udp_listener_event(struct proxy_worker *w, int slot, int fd)
{
    struct udp_port *p = ports[slot];
    uint64_t now = gh_now_ms();
    int k;

    assert(w->id == 0);
    if (dgram == NULL)
        dgram = gh_calloc(1, UDP_MAX_DGRAM);
    for (k = 0; k < UDP_BUDGET; k++) {
        union udp_addr peer;
        union udp_cmsg cb;
        struct udp_local to;
        struct iovec iov;
        struct msghdr mh;
        socklen_t plen;
        ssize_t n;

        iov.iov_base = dgram;
        iov.iov_len = UDP_MAX_DGRAM;
        memset(&mh, 0, sizeof(mh));
        mh.msg_name = &peer;
        mh.msg_namelen = sizeof(peer);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = cb.b;
        mh.msg_controllen = sizeof(cb.b);
        n = recvmsg(fd, &mh, 0);
        plen = mh.msg_namelen;

        if (n == -1) {
            if (errno == EINTR)
                continue;
            return; /* EAGAIN: drained (level-triggered: woken again if more come) */
        }
        if (p == NULL || p->svc == NULL || plen > sizeof(peer) ||
            (peer.sa.sa_family != AF_INET && peer.sa.sa_family != AF_INET6))
            continue;
        p->fd = fd;
        local_of(&mh, &to);
        from_client(w, p, &peer, plen, &to, (size_t)n, now);
    }
}

void proxy__udp_flow_event(struct proxy_worker *w, struct proxy_flow *f)
{
    uint64_t now = gh_now_ms();
    int k;

    if (f->ep.fd == -1)
        return; /* ended earlier in this batch */
    if (dgram == NULL)
        dgram = gh_calloc(1, UDP_MAX_DGRAM);
    for (k = 0; k < UDP_BUDGET; k++) {
        ssize_t n = recv(f->ep.fd, dgram, UDP_MAX_DGRAM, 0);

        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == ECONNREFUSED)
                proxy__server_failed(f->srv);
            flow_end(w, f, errno == ECONNREFUSED ? "upstream:refused" : "upstream:error", now);
            return;
        }
        if (to_client(f, (size_t)n) == -1) {
            atomic_fetch_add(&f->svst->udp_dropped[PROXY_UDP_DROP_CLIENT_SEND], 1);
            continue;
        }
        if (f->t_reply == 0)
            f->t_reply = now;
        f->dg_out++;
        f->bytes_out += (uint64_t)n;
        atomic_fetch_add(&f->svst->udp_dgrams_out, 1);
        atomic_fetch_add(&f->svst->bytes_out, (unsigned long long)n);
        atomic_fetch_add(&f->st->bytes_in, (unsigned long long)n);
        touch(f, now);
    }
}

/* f's server in svc (the same process-wide entry: address, trust and
 * service unchanged), or NULL. */
static struct proxy_server *server_in(struct proxy_service *svc, const struct proxy_flow *f)
{
    size_t i;

    for (i = 0; i < svc->nservers; i++)
        if (svc->servers[i].st == f->st)
            return &svc->servers[i];
    return NULL;
}

void proxy__udp_sync(struct proxy_worker *w)
{
    int draining = atomic_load(&proxy__draining);
    uint64_t now = gh_now_ms();
    size_t i, s;

    assert(w->id == 0);
    if (sip_key[0] == 0 && sip_key[1] == 0 &&
        RAND_bytes((unsigned char *)sip_key, sizeof(sip_key)) != 1)
        gh_fatal("cannot draw the UDP flow table's key");
    for (i = 0; i < nused; i++)
        ports[used_slots[i]]->svc = NULL;
    for (s = 0; !draining && w->gen != NULL && s < w->gen->nsvcs; s++) {
        struct proxy_service *svc = &w->gen->svcs[s];
        struct udp_port *p;
        if (!svc->udp || svc->lidx < 0)
            continue;
        p = port_get(svc->lidx);
        p->svc = svc;
        p->persist = strcmp(svc->conf->persistence, "source-ip") == 0;
    }
    for (i = 0; i < nused; i++) {
        struct udp_port *p = ports[used_slots[i]];
        struct proxy_flow *f = p->head, *next;
        for (; f != NULL; f = next) {
            struct proxy_server *srv = p->svc ? server_in(p->svc, f) : NULL;
            next = f->next;
            if (p->svc == NULL) {
                flow_end(w, f, draining ? "shutdown" : "service:gone", now);
            } else if (srv == NULL) {
                flow_end(w, f, "upstream:gone", now);
            } else {
                f->svc = p->svc;
                f->srv = srv;
                if (srv->admin == 2)
                    flow_end(w, f, "upstream:maint", now);
            }
        }
    }
}

uint64_t proxy__udp_next(uint64_t next)
{
    size_t i;

    for (i = 0; i < nused; i++) {
        const struct udp_port *p = ports[used_slots[i]];
        uint64_t d;
        if (p->head == NULL || p->svc == NULL)
            continue;
        d = p->head->t_last + (uint64_t)p->svc->conf->flow_timeout;
        if (d > last_sweep + UDP_SWEEP_MS)
            d = last_sweep + UDP_SWEEP_MS;
        if (next == 0 || d < next)
            next = d;
    }
    return next;
}

void proxy__udp_expire(struct proxy_worker *w, uint64_t now)
{
    int sweep = now - last_sweep >= UDP_SWEEP_MS;
    size_t i;

    if (sweep)
        last_sweep = now;
    for (i = 0; i < nused; i++) {
        struct udp_port *p = ports[used_slots[i]];
        struct proxy_flow *f, *next;
        if (p->svc == NULL)
            continue;
        while (p->head != NULL &&
               now - p->head->t_last >= (uint64_t)p->svc->conf->flow_timeout) {
            f = p->head;
            if (p->persist) /* persistence runs from the last datagram */
                remember(w, f);
            flow_end(w, f, "-", now);
        }
        for (f = sweep ? p->head : NULL; f != NULL; f = next) {
            const char *why = flow_unusable(f);
            next = f->next;
            if (why != NULL)
                flow_end(w, f, why, now);
        }
    }
}

void proxy__udp_fini(void)
{
    size_t i;

    for (i = 0; i < nused; i++) {
        free(ports[used_slots[i]]);
        ports[used_slots[i]] = NULL;
    }
    nused = 0;
    free(table);
    table = NULL;
    table_size = 0;
    free(dgram);
    dgram = NULL;
}
