/* Private to proxy/: the structures shared by its files. */
#ifndef GH_PROXY_PROXY_INT_H
#define GH_PROXY_PROXY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "../certs/certs.h"

#include "../common/buf.h"
#include "../common/common.h"
#include "../common/conf.h"
#include "../common/join_token.h"
#include "../rules/rules.h"
#include "header_rules.h"
#include "http1.h"
#include "proxy.h"
#include "tls_hello.h"

struct store_conn;

#define PROXY_MAX_LISTENERS 2048 /* a thousand virtual services, each its own address */
#define PROXY_KEY_LEN 384
#define PROXY_MAGIC_CONN 0x47484331u
#define PROXY_MAGIC_DEAD 0xdeadc0deu

enum proxy_ep_kind {
    EP_LISTENER, EP_EVENT, EP_CLIENT, EP_UPSTREAM,
    EP_UDP,  /* a mode udp listener (worker 0 only; udp.c) */
    EP_FLOW, /* a UDP flow's socket connected to its real server (udp.c) */
    EP_STORE, /* the worker's connection to the shared store (shared.c) */
};

/* One socket in an epoll set. Readiness is edge-triggered: rd/wr stay set
 * until an operation reports it would block, so data OpenSSL has already
 * decrypted is never stranded waiting for an edge that will not come. */
struct proxy_ep {
    enum proxy_ep_kind kind;
    int fd;         /* owned, -1 when none */
    SSL *ssl;       /* owned; NULL for plain text */
    unsigned rd : 1, wr : 1, hup : 1;
    /* TLS may need to write to read (a KeyUpdate reply) or read to write:
     * the blocked operation waits for the other direction's edge. */
    unsigned rd_on_wr : 1, wr_on_rd : 1;
    unsigned warm : 1; /* idle and keeping its OpenSSL buffers (io.c) */
    /* A short read no longer means "wait for the next edge": the peer
     * half-closed (EPOLLRDHUP: the end of the stream is to be read), or
     * sent TCP urgent data (EPOLLPRI: a read stops short at the urgent
     * mark with bytes still queued behind it). Sticky: reads go on until
     * EAGAIN for the rest of the endpoint's life. */
    unsigned read_to_eagain : 1;
    /* The last read from the kernel under TLS came back short or would
     * have blocked: the receive queue was empty then (tls_bio.c). */
    unsigned drained : 1;
    void *owner;    /* borrowed: the conn, upconn or listener */
};

#define PROXY_LAT_BUCKETS 12
/* Upper bounds of the latency histogram, in ms; the last bucket is +Inf. */
extern const unsigned proxy__lat_ms[PROXY_LAT_BUCKETS - 1];

/* Counters and health of one real server, kept for the life of the process
 * (keyed like pooled connections) so reloads neither reset nor lose them. */
struct proxy_srv_stats {
    char key[PROXY_KEY_LEN];
    char service[64], name[64], addr[64]; /* labels, from the latest generation */
    _Atomic int up;        /* health: 1 up, 0 down */
    _Atomic int checked;   /* active checks configured in the current generation */
    _Atomic long active;   /* requests in flight */
    _Atomic int fails;     /* consecutive failed connects (passive health) */
    _Atomic long conns;    /* connections open to it (in use or pooled) */
    _Atomic unsigned long long conns_total; /* connections opened to it */
    _Atomic unsigned long long checks_ok, checks_fail, transitions, last_check_ms;
    _Atomic unsigned long long requests[6]; /* by status class: [1] 1xx .. [5] 5xx, [0] none */
    _Atomic unsigned long long bytes_in, bytes_out, lat_sum_ms;
    _Atomic unsigned long long lat[PROXY_LAT_BUCKETS];
    pthread_mutex_t mu;     /* guards last_result */
    char last_result[96];
    int rise_cnt, fall_cnt;         /* the checker holding the claim's own */
    _Atomic uint64_t next_check;    /* UINT64_MAX: a checker has claimed it */
};

/* Why a client's TLS handshake failed: the word in the metrics and, as
 * tls:WORD, in the security log. tls_fail.c maps OpenSSL's codes to them.
 * (CLOSED, not EOF, which stdio.h defines.) */
#define PROXY_TLS_FAILS(X)                                                                         \
    X(NO_SHARED_CIPHER, "no-shared-cipher")    /* no suite of ours offered */                     \
    X(PROTOCOL_VERSION, "protocol-version")    /* a TLS version not enabled */                    \
    X(NO_APP_PROTOCOL, "no-application-protocol") /* ALPN without http/1.x */                     \
    X(HTTP_ON_TLS, "http-on-tls")              /* plain HTTP sent to a TLS port */                \
    X(CLIENT_CERT, "client-certificate")       /* mutual TLS: missing or refused */               \
    X(CLOSED, "eof")                           /* the peer closed or reset mid-handshake */       \
    X(TIMEOUT, "timeout")                      /* client-header-timeout expired */                \
    X(OTHER, "other")

enum proxy_tls_fail {
#define PROXY_TLS_FAIL_ENUM(e, word) PROXY_TLS_FAIL_##e,
    PROXY_TLS_FAILS(PROXY_TLS_FAIL_ENUM)
#undef PROXY_TLS_FAIL_ENUM
    PROXY_TLS_FAIL_MAX
};

/* Why mode udp dropped a datagram (besides max-flows, counted apart): the
 * reason label of gatehouse_udp_datagrams_dropped_total. */
#define PROXY_UDP_DROPS(X)                                                                         \
    X(NO_SERVER, "no-server")     /* no real server could take a new flow */                     \
    X(NO_SOCKET, "no-socket")     /* a flow's socket could not be made (descriptors) */          \
    X(SERVER_SEND, "server-send") /* the datagram could not be written towards the server */     \
    X(CLIENT_SEND, "client-send") /* a reply could not be written back to the client */         \
    X(STORE_WAIT, "store-wait")   /* a new flow's datagram past those it holds while the */      \
                                  /* cluster's store is asked where its client was */

enum proxy_udp_drop {
#define PROXY_UDP_DROP_ENUM(e, word) PROXY_UDP_DROP_##e,
    PROXY_UDP_DROPS(PROXY_UDP_DROP_ENUM)
#undef PROXY_UDP_DROP_ENUM
    PROXY_UDP_DROP_MAX
};

/* Counters of one service, by name, for the life of the process. */
struct proxy_svc_stats {
    char name[64];
    _Atomic long conns_active;
    _Atomic long queued; /* requests waiting for a server slot, all workers */
    _Atomic unsigned long long conns_total, bytes_in, bytes_out, lat_sum_ms;
    _Atomic unsigned long long requests[6];
    _Atomic unsigned long long lat[PROXY_LAT_BUCKETS];
    _Atomic unsigned long long refused[GH_REASON_MAX];
    _Atomic unsigned long long tls_failed[PROXY_TLS_FAIL_MAX]; /* client handshakes */
    _Atomic unsigned long long tls_done[2]; /* client handshakes done: [0] full, [1] resumed */
    _Atomic unsigned long long tunnels_total;
    _Atomic long tunnels_active;
    _Atomic unsigned long long internal_errors; /* illegal state transitions caught */
    _Atomic unsigned long long edge_tokens; /* validate-join-token: requests forwarded with one */
    /* mode udp (udp.c; written by worker 0 only, read by the metrics) */
    _Atomic long udp_flows;                        /* flows open now */
    _Atomic unsigned long long udp_flows_total;    /* flows opened */
    _Atomic unsigned long long udp_flows_refused;  /* datagrams dropped at max-flows */
    _Atomic unsigned long long udp_dgrams_in, udp_dgrams_out; /* from clients, to clients */
    _Atomic unsigned long long udp_dropped[PROXY_UDP_DROP_MAX];
};

/* What a service speaks. */
enum proxy_mode { PROXY_MODE_HTTP, PROXY_MODE_TCP, PROXY_MODE_UDP };

struct proxy_server {
    const char *name; /* borrowed from the config */
    struct sockaddr_storage ss;
    socklen_t sslen;
    char addr[64];       /* "ip:port", for logs */
    char host[64];       /* the IP alone */
    const char *verify;  /* borrowed: name or IP to verify and send as SNI; NULL: plain */
    long weight;
    int admin;               /* 0 up, 1 drain (no new clients), 2 maint (out) */
    uint64_t id;             /* hash of key: how persistence names the server */
    char key[PROXY_KEY_LEN]; /* identity of a reusable connection or TLS session */
    struct proxy_srv_stats *st; /* borrowed from the process-wide table */
    uint16_t check_port;     /* port health checks go to */
    int fall;                /* passive: failed connects that mark it down (checked pools) */
    long maxconn;            /* 0: unlimited */
    const char *pin;         /* borrowed: SHA-256 hex the certificate must have, or NULL */
    _Atomic unsigned long long fail_until; /* monotonic ms; skipped until then */
};

/* Certificates of a listener with the same names share one context (an
 * ECDSA and an RSA certificate, say); SNI picks the context. */
struct proxy_sni {
    SSL_CTX *ctx;  /* owned */
    struct certs_ocsp *ocsp; /* owned; responses to staple, or NULL */
    char **names;  /* owned: lower-case DNS names and IPs, "*.x" wildcards */
    size_t nnames;
};

struct proxy_service {
    const struct gh_conf_service *conf; /* borrowed from the generation's config */
    SSL_CTX *tls;                       /* borrowed: sni[0].ctx, the default; NULL: plain */
    struct proxy_sni *sni;              /* owned, unless sni_shared */
    size_t nsni;
    int sni_shared;                     /* sni and tls borrowed from an earlier service */
    SSL_CTX *up_tls;                    /* owned; NULL: plain-text real servers */
    struct proxy_server *servers;       /* owned array */
    size_t nservers;
    struct http1_limits lim;
    int lidx; /* listener slot, set by proxy_prepare */
    _Atomic unsigned rr;
    uint16_t *wrr;             /* owned: weighted round-robin schedule (server indexes) */
    size_t nwrr;
    int sched;                 /* 0 least-conn, 1 round-robin, 2 source-hash */
    struct rules_policy *policy; /* owned: the firewall of this service */
    enum proxy_mode mode;
    int passthrough;           /* mode tcp, tls passthrough: the ClientHello is read, not answered */
    struct proxy_service *lhead; /* borrowed: the first service on this listener (maybe self) */
    struct proxy_service *lnext; /* borrowed: the next service on this listener, or NULL */
    uint32_t scope;            /* per-source limit keys of this service */
    int strip_server, limit_close;
    int ws_allowed;            /* allowed-upgrades websocket */
    int upgrade_refuse;        /* upgrade-action refuse: other upgrades get 400 */
    int underscore_refuse;     /* underscore-headers refuse: names with '_' get 400 */
    struct gh_cidr *trusted;   /* owned: trusted-proxies */
    size_t ntrusted;
    struct proxy_hdr_rules *hdr; /* owned: request-header, response-header, rewrite-host */
    struct proxy_svc_stats *st; /* borrowed from the process-wide table */
    int udp;                    /* mode udp: udp.c forwards its datagrams */
    int disabled;               /* enabled off: built and checked, no listener, no checks */
    int validate_join;          /* validate-join-token on (edge.c) */
};

struct proxy_gen {
    _Atomic long refs;
    uint64_t id;
    struct gh_conf *conf; /* owned */
    struct proxy_service *svcs;
    size_t nsvcs;
    struct gh_logfile access, security; /* borrowed from worker.c's globals */
    /* Between proxy_prepare and proxy_commit: the listener slots this
     * generation opened, closed again if it is aborted. */
    int opened[PROXY_MAX_LISTENERS], nopened, prepared;
};

/* The connection state machine; see conn.c's top comment. */
#define PROXY_STATES(X)                                                                            \
    X(TLS_HANDSHAKE)   /* client TLS handshake under way */                                       \
    X(L4_CHOOSE)       /* Layer 4: choosing the service and server (for tls passthrough, after */ \
                       /* reading the ClientHello's server name) */                                \
    X(READ_HEAD)       /* waiting for a complete request head */                                  \
    X(STORE_WAIT)      /* a complete head waits for the shared store (limit, persistence) */     \
    X(ADMIT_WAIT)      /* a new connection waits for the cluster's word on its source's */        \
                       /* connection rate; nothing read, no TLS yet */                             \
    X(HOLD_BODY)       /* a chunked request waits for its first chunk line; nothing chosen or sent */ \
    X(QUEUED)          /* every server is at maxconn: waiting for a slot */                       \
    X(CONNECT)         /* a real-server connection is being made (TCP, then TLS) */               \
    X(EXCHANGE)        /* request sent or streaming; response awaited or streaming */             \
    X(TUNNEL)          /* after a 101: bytes copied both ways untouched */                        \
    X(CLOSING)         /* flushing the last bytes to the client, then close */                    \
    X(CLOSED)          /* fd out of epoll; freed at the end of the event */

enum proxy_state {
#define PROXY_STATE_ENUM(n) ST_##n,
    PROXY_STATES(PROXY_STATE_ENUM)
#undef PROXY_STATE_ENUM
    ST_COUNT
};

/* Where a request stands with the shared store (shared.c). */
enum proxy_ask_state {
    ASK_IDLE,     /* nothing asked for the request at the front of cin */
    ASK_WAITING,  /* asked; the connection is in STORE_WAIT */
    ASK_ANSWERED, /* the answers (or the fallback's) are in ask_*: the next
                   * begin_request spends them */
};

/* The edge's word on a request's join token (edge.c), from the shared
 * store or this process's tables. */
enum proxy_join_verdict {
    PJ_NONE,    /* nothing asked: not a protected path, or no token to look up */
    PJ_OK,      /* live, of its meeting's epoch: forwarded with an edge token */
    PJ_UNKNOWN, /* not in the store (never issued, or revoked), or of a reopened room's past */
    PJ_EXPIRED,
    PJ_ENDED,   /* its meeting has ended since */
    PJ_AWAY,    /* the store did not answer: refused, never let through unchecked */
};

/* What a step of the state machine tells run(). */
#define RUN_CONTINUE 0
#define RUN_WAIT 1

/* The real-server connection's own progress. */
enum proxy_up_state {
    UP_CONNECTING, /* TCP connect under way */
    UP_HANDSHAKE,  /* TLS handshake under way */
    UP_READY,      /* usable: attached to a request, or pooled */
};

/* What an exchange waits for: it picks the timeout that bounds the wait
 * and names who was too slow when it expires. */
enum proxy_wait {
    WAIT_CLIENT_BODY, /* the client owes body: client-body-timeout, then 408 */
    WAIT_SERVER_READ, /* the server does not read what we hold for it: idle-timeout, 504 */
    WAIT_RESPONSE,    /* the request is out, no final response yet: server-timeout, 504 */
    WAIT_STREAM,      /* the response streams: idle-timeout, then a cut */
};

/* One direction of a tunnel. */
enum proxy_tun {
    TUN_OPEN, /* bytes flow */
    TUN_EOF,  /* its sender ended: what is buffered still goes */
    TUN_SHUT, /* all of it went and the receiver's write side is shut */
};

/* What the current request asked to become. */
enum proxy_upgrade { PROXY_UPGRADE_NONE, PROXY_UPGRADE_WEBSOCKET };

struct proxy_worker;
struct proxy_conn;

/* A connection to a real server. It is its own object, registered in epoll
 * once for its whole life, so handing it from a client connection to the
 * worker's pool and back moves pointers and makes no system call. */
struct proxy_upconn {
    struct proxy_ep ep;            /* kind EP_UPSTREAM, owner this */
    struct proxy_conn *conn;       /* borrowed: the client connection using it; NULL: pooled */
    struct proxy_upconn *next, *prev; /* the worker's pool, while pooled */
    struct proxy_server *srv;      /* borrowed; only while attached (generations change) */
    char key[PROXY_KEY_LEN];
    struct proxy_srv_stats *st;    /* borrowed: process-wide, outlives generations */
    uint64_t since;                /* pooled at, monotonic ms */
    enum proxy_up_state st_up;
    int reused;                    /* came from the pool for the current request */
};

struct proxy_conn {
    unsigned magic;
    struct proxy_ep cli;
    struct proxy_upconn *up;   /* owned while attached; NULL: none */
    struct proxy_worker *w;    /* borrowed */
    struct proxy_gen *gen;     /* ref */
    struct proxy_service *svc; /* borrowed from gen: the service of the current request */
    struct proxy_service *lsvc; /* borrowed from gen: the first service of the listener */
    struct proxy_server *srv;  /* borrowed from gen; the server of this exchange */
    enum proxy_state st;
    struct gh_buf cin, cout, uin, uout; /* owned */
    struct http1_msg req;  /* the current request's parsed head (hdrs NULL) */
    struct http1_msg resp; /* the current response's */
    struct http1_m rq, rs; /* where the request and the response stand */
    enum proxy_upgrade upgrade;
    enum proxy_wait wait;  /* the wait the exchange's timer was last armed for */
    enum proxy_tun tun_up, tun_down; /* client to server, server to client */
    char ws_accept[32];    /* the Sec-WebSocket-Accept the 101 must carry */
    size_t kept;           /* bytes at the front of cin: a body-less request's head, kept
                            * so it can be sent again; 0: none */
    uint64_t up_sent;      /* bytes of this request written to the current real server */
    unsigned close_after : 1, up_private : 1, counted : 1, queued : 1, lingering : 1,
        shut_done : 1, continue_sent : 1, peer_trusted : 1;
    int tries;             /* retries on another server, against the service's retries */
    unsigned nreq;
    uint64_t deadline; /* monotonic ms; 0: none */
    size_t heap_idx;   /* position in the worker's timer heap, or SIZE_MAX */
    uint64_t t_start, t_up;
    uint64_t bytes_in, bytes_out;
    int status;
    enum gh_reason why;
    char method[16];
    char path[256];
    char peer[64];    /* TCP peer "ip:port" */
    char peer_ip[48]; /* TCP peer address */
    char client[64];  /* the logs' client: the peer, or the real client behind a trusted proxy */
    char ip[48];      /* the real client's address (X-Real-IP, Forwarded, limits) */
    char host[128];   /* Host as sent (for the logs) */
    const char *rule_id; /* borrowed from gen: the rule that refused, for the logs */
    struct sockaddr_storage peer_ss;   /* TCP peer */
    struct sockaddr_storage client_ss; /* the real client (== peer_ss unless trusted chain) */
    int limited; /* counted by max-conns-per-source (released at close) */
    int persist_fresh; /* the request carried a valid cookie that need not be renewed */
    struct proxy_server *persist_srv; /* borrowed: the server that cookie names */
    /* The shared store's answers for the request at the front of cin
     * (shared.c): asked once per request, read by the firewall's limit and
     * by persistence, then spent. */
    enum proxy_ask_state ask_st;
    struct proxy_ask *ask;   /* owned with the callbacks: while ASK_WAITING */
    int ask_limit;           /* request-rate verdict: 0 allowed, -1 over */
    int64_t ask_server;      /* source-ip: the server id the store names; 0: none */
    int64_t ask_ttl_ms;      /* and the time its entry had left; -1: unknown */
    int ask_away;            /* the store did not answer: the fallbacks decide */
    int req_shared;          /* the current request's limit and persistence are in ask_* */
    uint64_t ask_t0;         /* when the request asked (its start, for the logs) */
    uint64_t conns_round;    /* the last round of count writes that wrote this one's source */
    enum proxy_join_verdict ask_join; /* validate-join-token: the store's word */
    int64_t ask_join_meeting;         /* and the token's meeting, when PJ_OK */
    char edge_token[GH_EDGE_TOKEN_MAX]; /* "" or the one this request is forwarded with */
    /* The TLS server name, whole: a DNS name has at most 255 bytes (RFC 6066;
     * OpenSSL and tls_hello.c refuse longer), and a truncated one would be
     * matched against allowed-hosts as a name the client never sent. */
    char sni[256];
    struct tls_hello_scan hello; /* tls passthrough: how far the ClientHello was read */
    struct proxy_conn *next, *prev; /* the worker's list */
    struct proxy_conn *qnext;       /* the worker's run-again queue */
    struct proxy_conn *wnext;       /* the worker's queue of requests waiting for a slot */
};


struct proxy_sess {
    char key[PROXY_KEY_LEN];
    SSL_SESSION *s; /* owned */
};

/* A worker's security-log lines for failed handshakes: at most
 * PROXY_TLS_LOG_PER_SEC a second, the rest counted as suppressed; the last
 * suppressed failure is kept so a quiet second can still report the count. */
#define PROXY_TLS_LOG_PER_SEC 20
struct proxy_tls_log {
    uint64_t sec;                  /* monotonic second the lines are counted in */
    unsigned lines;                /* lines written in it */
    unsigned long long suppressed; /* failures without a line since the last line */
    enum proxy_tls_fail last_why;  /* the last suppressed failure, */
    char last_service[128], last_client[64], last_sni[256]; /* copied: may outlive it */
};

#define PROXY_MAX_SESS 64
#define PROXY_LOGBUF 16384

struct proxy_worker {
    int id;
    pthread_t th;
    int epfd, evfd;
    struct proxy_ep evep;
    struct proxy_gen *gen; /* ref: what new connections get */
    struct proxy_conn *conns;
    _Atomic size_t nconns; /* read by the status application's thread */
    struct proxy_conn **heap;
    size_t heap_n, heap_cap;
    struct proxy_upconn *idle; /* pooled real-server connections, most recent first */
    size_t nidle;
    struct proxy_sess sess[PROXY_MAX_SESS];
    size_t nsess;
    int reg_fd[PROXY_MAX_LISTENERS]; /* listener fds in this epoll set */
    _Atomic uint64_t acked;          /* listener version this worker has applied */
    _Atomic uint64_t heartbeat;
    /* The monotonic clock in ms, read after each epoll_wait and after the
     * pass over the ready events: a request read it ~8 times, a vDSO call
     * each (callgrind: ~30 instructions, and more cycles on a VM), and
     * timers, log durations and the hold on failed servers work in
     * milliseconds. Behind by at most one pass over the ready events. */
    uint64_t now_ms;
    struct http1_hdr *scratch; /* header index, HTTP1_MAX_HEADERS_HARD entries */
    char *target;              /* scratch for the normalised target */
    size_t target_cap;
    char logbuf[PROXY_LOGBUF];
    size_t loglen;
    uint64_t log_flushed;
    int draining;
    int reserve_fd; /* spent when accept() runs out of descriptors */
    struct proxy_conn *queue; /* connections to run again before sleeping */
    struct proxy_conn *waitq, *waitq_tail; /* QUEUED connections, oldest first */
    void **grave;             /* freed after the current batch of events */
    size_t ngrave, grave_cap;
    _Atomic uint64_t n_conns_total, n_requests, n_refused;
    struct proxy_tls_log tls_log;
    /* The shared store when it is not this process's (store redis): one
     * pipelined connection on this loop. NULL: the local tables, called at
     * once (they never wait). */
    struct store_conn *sc; /* owned */
    struct proxy_ep scep;  /* its socket in the epoll set; fd -1: none */
    unsigned sc_events;    /* what scep is registered for */
    unsigned sc_gen;       /* the store socket scep was registered as */
    uint64_t conns_refresh_at; /* the next round of writing this worker's connection counts */
    uint64_t conns_round;      /* that round's number; open until every source is written */
    int conns_round_open;
};

/* worker.c */
void proxy__conn_list_remove(struct proxy_worker *w, struct proxy_conn *c);
int proxy__ep_add(struct proxy_worker *w, struct proxy_ep *ep);
void proxy__ep_del(struct proxy_worker *w, struct proxy_ep *ep);
/* Frees p (a conn or upconn) after the current batch of events, since
 * a later event of the batch may still name it. */
void proxy__defer_free(struct proxy_worker *w, void *p);
extern _Atomic int proxy__draining;
extern struct gh_logfile proxy__access_log, proxy__security_log;

/* shared.c */
/* 1 when this process is one appliance of a cluster (store redis). */
int proxy__cluster(void);
void proxy__shared_init(struct proxy_worker *w);
void proxy__shared_fini(struct proxy_worker *w);
/* Brings the store socket's epoll registration up to date: after any
 * operation was queued and after each turn of the store connection. */
void proxy__shared_sync(struct proxy_worker *w);
void proxy__shared_event(struct proxy_worker *w, uint32_t events);
/* One turn when nothing came: deadlines, reconnection, writes queued in
 * this pass. Returns the ms until the next is due, or -1. */
int64_t proxy__shared_tick(struct proxy_worker *w);
/* For the request whose head is at the front of cin (c->svc and
 * c->client_ss decided): a RUN_ value when c now waits for the store (in
 * STORE_WAIT) or was refused, else -1: go on (nothing to ask, or the
 * fallbacks answered at once). */
int proxy__shared_ask(struct proxy_conn *c, const char *head, const struct http1_msg *m);
/* The same for a mode tcp connection (l4.c), its service chosen: its
 * client's source-ip entry. The answer brings it back to L4_CHOOSE. */
int proxy__shared_ask_l4(struct proxy_conn *c);
/* mode udp with persistence source-ip in a cluster (worker 0): the store
 * is asked for ss's entry of svc; done comes later, from the store's turn,
 * exactly once: with the server's id (0: no entry), or away 1 when the
 * store did not answer. -1: not asked (no store, or too much pending). */
typedef void (*proxy_flow_asked_fn)(void *arg, int64_t id, int away);
int proxy__shared_flow_ask(struct proxy_worker *w, const struct proxy_service *svc,
                           const struct sockaddr_storage *ss, proxy_flow_asked_fn done, void *arg);
/* Writes that ss's flows of svc go to srv, in the store. */
void proxy__shared_flow_remember(struct proxy_worker *w, const struct proxy_service *svc,
                                 const struct sockaddr_storage *ss, const struct proxy_server *srv);
/* The request takes the answers: req_shared says whether there are any. */
int proxy__shared_spend(struct proxy_conn *c);
/* c is closing: callbacks still to come find nobody. */
void proxy__shared_forget(struct proxy_conn *c);
/* STORE_WAIT's timer ran out before the store answered (it always does,
 * within its own timeout; this is the backstop): the fallback decides. */
void proxy__shared_abandon(struct proxy_conn *c);
/* In a cluster, a new connection of a service with conn-rate-per-source or
 * max-conns-per-source: 1 when the cluster's bucket and count were asked (the caller puts c in ADMIT_WAIT;
 * the answer calls proxy__conn_admitted), 0 allowed at once, -1 over (by
 * this appliance's share, the store being away). */
int proxy__shared_admit(struct proxy_conn *c);
/* ADMIT_WAIT's backstop: this appliance's share decides. */
void proxy__shared_admit_abandon(struct proxy_conn *c);
/* In a cluster, c's source's count of connections here, written for the
 * others (max-conns-per-source): after a close, and again every 20 s. */
void proxy__shared_conns_publish(struct proxy_conn *c);
/* Records that c's client is persistent to srv (source-ip), in the store
 * c's worker uses. */
void proxy__shared_remember(struct proxy_conn *c, const struct proxy_server *srv,
                            const unsigned char *key, size_t klen);

/* conn.c */
void proxy__conn_accept(struct proxy_worker *w, int fd, struct sockaddr_storage *ss,
                        struct proxy_gen *g, struct proxy_service *svc);
void proxy__conn_event(struct proxy_conn *c, struct proxy_ep *ep, uint32_t events);
void proxy__conn_timeout(struct proxy_conn *c);
/* Runs a connection queued because it still had work after its turn. */
void proxy__conn_requeue(struct proxy_conn *c);
/* Gives waiting requests the slots that freed up, oldest first. */
void proxy__waitq_dispatch(struct proxy_worker *w);
/* Ends an idle keep-alive connection (drain); in-flight ones finish first. */
void proxy__conn_drain(struct proxy_conn *c);
void proxy__conn_free(struct proxy_conn *c);
const char *proxy__state_name(enum proxy_state st);
/* True when the connection machine may move from one state to the other. */
int proxy__conn_legal(enum proxy_state from, enum proxy_state to);
/* Moves c to st if the transition table allows it, arming st's timer; an
 * illegal move is logged as an internal error and closes c. */
void proxy__conn_set_state(struct proxy_conn *c, enum proxy_state st);
/* (Re)arms c's timer ms from now. */
void proxy__conn_arm(struct proxy_conn *c, long long ms);
/* Closes c at once: both sockets, its buffers; freed after the batch. */
void proxy__conn_close(struct proxy_conn *c);
/* The exchange no longer counts against its server's in-flight requests. */
void proxy__conn_uncount(struct proxy_conn *c);
/* The connection now serves s (counters, trust, private connections follow). */
void proxy__conn_use_service(struct proxy_conn *c, struct proxy_service *s);
/* Chooses c's real server (source-ip persistence, then the scheduler) and
 * connects, queues or refuses: a RUN_ value. */
int proxy__conn_to_server(struct proxy_conn *c);
/* The shared store answered c (STORE_WAIT): its head is read again. */
void proxy__conn_resume(struct proxy_conn *c);
/* The verdict on a connection in ADMIT_WAIT: 0 it goes on (TLS, or its
 * first read), -1 it is closed (conn-limit). */
void proxy__conn_admitted(struct proxy_conn *c, int verdict);
/* Refuses what c asked for: an error page for HTTP, a close for Layer 4. */
int proxy__conn_refuse(struct proxy_conn *c, enum gh_reason why);

/* edge.c: validate-join-token (the seeds' call sequence, step 6) */
/* What a request of a validating service presents: prot 0 for a path that
 * is not the manifest's or content's; else key is the token's store key
 * when bearer_ok, and res the decoded path (malloc'd: proxy__join_req_free). */
struct proxy_join_req {
    int prot, bearer_ok;
    unsigned char key[GH_JOIN_KEY_LEN];
    char tok[GH_JOIN_TOKEN_HEX + 1];
    char *res;
    size_t rlen;
};
void proxy__join_classify(const struct proxy_conn *c, const char *head,
                          const struct http1_msg *m, struct proxy_join_req *q);
void proxy__join_req_free(struct proxy_join_req *q);
/* A join record as the store gave it: PJ_OK (meeting and epoch set),
 * PJ_UNKNOWN (not one) or PJ_EXPIRED. */
enum proxy_join_verdict proxy__join_record(const void *v, size_t n, int64_t now_s,
                                           int64_t *meeting, int64_t *epoch);
/* The mark of the token's epoch, when there is one: PJ_ENDED, or
 * PJ_UNKNOWN (a reopened or deleted room's past). */
enum proxy_join_verdict proxy__join_epoch(const void *v, size_t n);
/* After the firewall let the request through: GH_REASON_NONE (c->edge_token
 * set for a protected path) or the join-token refusal. */
enum gh_reason proxy__join_decide(struct proxy_conn *c, const char *head,
                                  const struct http1_msg *m);
/* For a join-token refusal, the conference service's own answer (its
 * JSON, byte for byte), so a client cannot tell which of the two refused:
 * 1 written, 0 not one of those reasons. */
int proxy__join_write_error(struct proxy_conn *c, enum gh_reason why);

/* l4.c */
/* One turn of L4_CHOOSE: RUN_CONTINUE or RUN_WAIT. */
int proxy__l4_step(struct proxy_conn *c);
/* The real server is connected: the bytes flow (TUNNEL). */
void proxy__l4_begin(struct proxy_conn *c);

/* body.c */
/* Moves body bytes of m from in to out, decoded by their framing and
 * written as m->out; m becomes DONE when the body ends. Returns input bytes
 * consumed (0: none could move), or -1 on malformed chunked input (*why).
 * trade: in and out may swap storage (nothing else may point into in). */
long proxy__body_pump(struct http1_m *m, struct gh_buf *in, struct gh_buf *out,
                      const struct http1_limits *lim, int trade, enum gh_reason *why);
/* The server closed a close-delimited body: ends it (the last chunk for a
 * chunked client). -1 when m was not such a body. */
int proxy__body_closed(struct http1_m *m, struct gh_buf *out);

/* tunnel.c */
/* One turn of an upgraded connection: RUN_CONTINUE or RUN_WAIT. */
int proxy__tunnel_step(struct proxy_conn *c);
/* The 101 went out: counts the tunnel and logs its start. */
void proxy__tunnel_begin(struct proxy_conn *c);
/* The tunnel ends (either side closed, or timed out): logs and uncounts it. */
void proxy__tunnel_end(struct proxy_conn *c);

/* upgrade.c */
/* Decides the Upgrade of request m: c->upgrade becomes WEBSOCKET (checked,
 * c->ws_accept computed) or NONE (no upgrade, or one removed); returns a
 * refusal reason or GH_REASON_NONE. */
enum gh_reason proxy__upgrade_request(struct proxy_conn *c, const char *head,
                                      const struct http1_msg *m);
/* A 101 for c's request: GH_REASON_NONE when it is the WebSocket switch we
 * checked and forwarded, else GH_REASON_UPSTREAM_BAD_UPGRADE. */
enum gh_reason proxy__upgrade_response(const struct proxy_conn *c, const char *head,
                                       const struct http1_msg *m);

/* client.c */
/* Sets c's real client for this request: the TCP peer, or, when the peer
 * is a trusted proxy, the rightmost untrusted address of its
 * X-Forwarded-For chain. */
void proxy__client_from_request(struct proxy_conn *c, const char *head,
                                const struct http1_msg *m);
/* True when ss is inside the service's trusted-proxies. */
int proxy__is_trusted(const struct proxy_service *svc, const struct sockaddr_storage *ss);

/* io.c */
/* Reads into b's free room. >0 bytes, 0 end of stream, GH_AGAIN, GH_ERR. */
long proxy__ep_read(struct proxy_ep *ep, struct gh_buf *b);
/* Writes b's bytes. >=0 bytes written (may be partial), GH_AGAIN, GH_ERR. */
long proxy__ep_write(struct proxy_ep *ep, struct gh_buf *b);
/* After a handshake step succeeded: readiness for what OpenSSL already holds. */
void proxy__ep_tls_ready(struct proxy_ep *ep);
/* tls_bio.c: puts ep->ssl on ep->fd through the endpoint BIO (in place
 * of SSL_set_fd). 0, or -1 when OpenSSL could not make the BIO. */
int proxy__ep_attach_ssl(struct proxy_ep *ep);
/* Closes fd and frees SSL (quiet shutdown); ep becomes empty. */
void proxy__ep_close(struct proxy_worker *w, struct proxy_ep *ep);
/* ep has nothing to do until its next edge: it keeps its OpenSSL buffers
 * while the worker's budget of warm endpoints allows, else gives them back. */
void proxy__ep_idle(struct proxy_ep *ep);

/* upstream.c */
/* Picks a server by the service's scheduler (src feeds source-hash),
 * skipping exclude; NULL if none can take a request. now: the caller's
 * clock (proxy_worker.now_ms on a worker). */
struct proxy_server *proxy__pick_server(struct proxy_service *svc, struct proxy_server *exclude,
                                        const struct sockaddr_storage *src, int *full,
                                        uint64_t now);
/* The usable server with the highest rendezvous score for key, or NULL. */
struct proxy_server *proxy__pick_rendezvous(struct proxy_service *svc, struct proxy_server *exclude,
                                            const void *key, size_t klen, uint64_t now);
/* Takes a slot on srv unless it is at maxconn: 0 taken, -1 full. */
int proxy__server_take(struct proxy_server *srv);
/* Starts a connection to srv into c->up: a pooled one (returns 1, unless
 * fresh) or a new non-blocking connect (returns 0). -1 on immediate failure. */
int proxy__up_open(struct proxy_conn *c, struct proxy_server *srv, int fresh);
/* Drives connect and TLS handshake. GH_OK when ready, GH_AGAIN, GH_ERR. */
int proxy__up_progress(struct proxy_conn *c);
/* Gives c->up back to the worker's pool (or closes it); c->up becomes NULL. */
void proxy__up_release(struct proxy_conn *c, int reusable);
/* Closes c->up, if any; c->up becomes NULL. */
void proxy__up_close(struct proxy_conn *c);
/* An event on a pooled connection: the server closed it or sent unasked bytes. */
void proxy__idle_event(struct proxy_worker *w, struct proxy_upconn *u, uint32_t events);
void proxy__idle_expire(struct proxy_worker *w, uint64_t now);
void proxy__idle_close_all(struct proxy_worker *w);
void proxy__sess_clear(struct proxy_worker *w);
/* Remembers a failing server so that others are tried first for a while. */
void proxy__server_failed(struct proxy_server *s);

/* headers.c */
/* Writes the request head for the real server into c->uout, with target
 * (the normalised path and the query) in place of the client's. */
int proxy__write_req_head(struct proxy_conn *c, const char *head, const struct http1_msg *m,
                          const char *target, size_t tlen);
/* Queues a redirect (the policy's status and Location) with Connection: close. */
void proxy__write_redirect(struct proxy_conn *c, const struct rules_location *loc);
/* Writes the response head for the client into c->cout. */
int proxy__write_resp_head(struct proxy_conn *c, const char *head, const struct http1_msg *m);
/* Queues a plain error page with status for r, and Connection: close. */
void proxy__write_error(struct proxy_conn *c, int status);

/* timer.c */
void proxy__timer_set(struct proxy_worker *w, struct proxy_conn *c, uint64_t deadline);
void proxy__timer_clear(struct proxy_worker *w, struct proxy_conn *c);
/* Earliest deadline, or 0 when no timer runs. */
uint64_t proxy__timer_next(struct proxy_worker *w);
struct proxy_conn *proxy__timer_pop_expired(struct proxy_worker *w, uint64_t now);

/* accesslog.c */
void proxy__log_access(struct proxy_conn *c);
/* The access line of a tunnel that ended (the request was counted at its 101). */
void proxy__log_tunnel(struct proxy_conn *c);
void proxy__log_security(struct proxy_conn *c, enum gh_reason why, int status);
/* A refusal before there is a connection object (accept-time limits). */
/* gatehouse_app_refusals_total, for the metrics. */
void proxy__app_refusals_prometheus(struct gh_sbuf *o);
void proxy__log_security_accept(struct proxy_service *svc, const struct sockaddr_storage *ss,
                                enum gh_reason why);
/* A request a log-only rule flagged (it goes on). */
void proxy__log_flagged(struct proxy_conn *c, const char *rule_id);
void proxy__log_flush(struct proxy_worker *w);
/* Adds a line snprintf wrote into a buffer of cap bytes (n its return) to
 * the worker's batch, flushed first when it would not fit. */
void proxy__log_append(struct proxy_worker *w, const char *line, int n, size_t cap);
/* A failed client TLS handshake; suppressed > 0 adds "suppressed":N (that
 * many earlier failures got no line of their own). */
void proxy__log_security_tls(const char *service, const char *client, const char *sni,
                             const char *word, unsigned long long suppressed);

/* tls_fail.c */
/* A client handshake failed: ssl_error is SSL_get_error's result, and the
 * OpenSSL error queue (and errno) must still be as the failure left them.
 * Counts the reason for c's service, writes a rate-limited security-log
 * line and clears the error queue. The caller closes c. */
void proxy__tls_failed(struct proxy_conn *c, int ssl_error);
/* client-header-timeout expired during c's handshake; as above. */
void proxy__tls_timed_out(struct proxy_conn *c);
/* Once a second: the line for failures suppressed in an earlier second
 * that no later line has reported yet. */
void proxy__tls_log_tick(struct proxy_worker *w, uint64_t now);
const char *proxy__tls_fail_name(enum proxy_tls_fail why);

/* gen.c */
struct proxy_gen *proxy__gen_ref(struct proxy_gen *g);
/* Points g's servers at their process-wide entries (health, counters),
 * creating those of new servers: proxy_commit's first step. */
void proxy__gen_bind_stats(struct proxy_gen *g);

/* worker.c */
/* A reference to the installed generation (NULL before the first). */
struct proxy_gen *proxy__gen_current(void);

/* stats.c */
struct proxy_srv_stats *proxy__srv_stats(const char *key, const char *service,
                                         const char *name, const char *addr, int start_up);
struct proxy_svc_stats *proxy__svc_stats(const char *name);
/* Records one finished request against its service and server (may be NULL). */
void proxy__stats_request(struct proxy_svc_stats *svc, struct proxy_srv_stats *srv, int status,
                          uint64_t bytes_in, uint64_t bytes_out, uint64_t ms);

/* persist.c */
uint64_t proxy__server_id(const char *key);
/* The server the client is persistent to, if it can take the request. */
struct proxy_server *proxy__persist_find(struct proxy_conn *c, const char *head,
                                         const struct http1_msg *m);
/* source-ip: records c->srv for this client (refreshing the timeout). */
void proxy__persist_remember(struct proxy_conn *c);
/* The source-ip persistence key of ss in svc (PROXY_PERSIST_SKEY bytes). */
#define PROXY_PERSIST_SKEY 22
size_t proxy__persist_source_key(const struct proxy_service *svc,
                                 const struct sockaddr_storage *ss, unsigned char *k);
/* source-ip for a client address without a connection (mode udp): the
 * server ss is persistent to if usable, else NULL; and recording srv. */
struct proxy_server *proxy__persist_source_find(struct proxy_service *svc,
                                                const struct sockaddr_storage *ss);
/* The usable server of svc whose id a shared store's entry names, or NULL. */
struct proxy_server *proxy__persist_server_by_id(struct proxy_service *svc, int64_t id);
/* proxy__persist_source_find, and in a cluster, for a client without an
 * entry here, the rendezvous choice on the same key (a mode udp flow whose
 * store did not answer, or whose entry names no usable server: appliances
 * that see the same servers up agree without asking anyone). */
struct proxy_server *proxy__persist_source_l4(struct proxy_service *svc,
                                              const struct sockaddr_storage *ss, uint64_t now);
void proxy__persist_source_remember(struct proxy_service *svc, const struct sockaddr_storage *ss,
                                    const struct proxy_server *srv);
/* cookie: writes a Set-Cookie header line for c->srv when one is due;
 * returns its length or 0. */
int proxy__persist_set_cookie(struct proxy_conn *c, char *out, size_t outlen);
/* Frees this thread's MAC contexts (worker exit). */
void proxy__persist_thread_fini(void);

/* persist_key.c */
#define PROXY_PERSIST_KEY_LEN 32
#define PROXY_PERSIST_KEYS_TEXT_MAX 256 /* the key file's text, with its NUL */
/* One cookie key and when it was made (seconds since the epoch). */
struct proxy_persist_key {
    unsigned char k[PROXY_PERSIST_KEY_LEN];
    int64_t created;
};
/* cur signs new cookies; prev (when have_prev) still checks them. */
struct proxy_persist_keyset {
    struct proxy_persist_key cur, prev;
    int have_prev;
};
/* The key file's text (len bytes, not NUL-terminated) into ks: 0, or -1
 * with why (no key material in it) and ks wiped. Strict: see the file. */
int proxy__persist_keys_parse(const char *text, size_t len, struct proxy_persist_keyset *ks,
                              char *why, size_t whylen);
/* ks as the key file's text into out (at least PROXY_PERSIST_KEYS_TEXT_MAX
 * bytes, NUL-terminated); returns its length, or -1. The caller wipes out. */
int proxy__persist_keys_format(const struct proxy_persist_keyset *ks, char *out, size_t outlen);
/* Reads path: 0 with ks; 1 no such file; 2 corrupt (why says how); -1
 * refused: readable by group or others, not a plain file, an I/O error. */
int proxy__persist_keyfile_read(const char *path, struct proxy_persist_keyset *ks, char *why,
                                size_t whylen);
/* Writes ks to path durably, mode 0600, making its folder (0700): 0 or -1. */
int proxy__persist_keyfile_write(const char *path, const struct proxy_persist_keyset *ks,
                                 char *why, size_t whylen);
/* The installed keys' version: moves whenever they change; 0 before any.
 * One atomic load: workers call it per cookie. */
uint64_t proxy__persist_keys_version(void);
/* Copies the installed keys into ks (the caller wipes it) and returns
 * their version. */
uint64_t proxy__persist_keys_get(struct proxy_persist_keyset *ks);

/* health.c */
int proxy__health_start(void);
void proxy__health_stop(void);

/* cover.c */
/* Every allowed host of every TLS service is covered by one of its
 * certificates (read from the files). 0, or -1 with "file:line:col: ..."
 * in err; with certificate-coverage warn the message is logged instead. */
int proxy__check_coverage(const struct gh_conf *conf, char *err, size_t errlen);

/* health_udp.c */
/* Decodes a check text as written (\r \n \t \\ \xHH, validated by the
 * parser) into out; returns its length (at most cap). */
size_t proxy__check_text(const char *text, unsigned char *out, size_t cap);
/* One `check send TEXT recv TEXT` of a mode udp server: the decoded send
 * text as a datagram to the check port, then a datagram starting with the
 * decoded recv text within the check's timeout. 1 healthy, 0 not (res says
 * what happened). Runs on a checker thread; blocks at most the timeout. */
int proxy__check_udp(const struct proxy_service *svc, const struct proxy_server *srv, char *res,
                     size_t rlen);

/* udp.c: mode udp. Worker 0 owns every UDP socket of the process (the
 * listeners and each flow's socket to its server); every function here
 * runs on worker 0 alone, so the flow table needs no lock. */
struct proxy_flow;
/* The UDP listener in slot (socket fd) is readable: reads up to a budget of
 * datagrams, each forwarded on its client's flow (opened if need be). */
void proxy__udp_listener_event(struct proxy_worker *w, int slot, int fd);
/* A flow's socket is readable (its server's replies) or reports an error
 * (ICMP port unreachable): replies go back to the client. */
void proxy__udp_flow_event(struct proxy_worker *w, struct proxy_flow *f);
/* Worker 0's generation changed, or draining began: each flow moves to the
 * new generation's service and server, or ends (listener or server gone,
 * server in maint, shutdown). Call while the previous generation is alive. */
void proxy__udp_sync(struct proxy_worker *w);
/* The earlier of next and the first flow deadline (0: none). */
uint64_t proxy__udp_next(uint64_t next);
/* Ends idle flows, and flows whose server is down (once a second). */
void proxy__udp_expire(struct proxy_worker *w, uint64_t now);
/* Worker exit: frees the flow table and the datagram buffer. */
void proxy__udp_fini(void);

#endif
