/*
 * Active health checks. One thread, never a worker, walks the installed
 * generation every 100 ms and checks each server whose interval has come:
 * TCP connect to the check port, TLS with the same verification as traffic
 * when the service re-encrypts, "METHOD URL HTTP/1.1" with Connection: close,
 * then the status line (and a body substring if asked). rise consecutive
 * successes bring a server up, fall consecutive failures take it down; each
 * change is logged and counted. PROXY_CHECK_THREADS checker threads share
 * the work: a thread claims a server whose time has come by swapping its
 * next-check time for UINT64_MAX, so each server has one check at a time
 * and a hung or silent server holds up one checker for at most its
 * timeout per step, not the checks of everyone else; workers never wait on
 * a check.
 */
#include "proxy_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "../certs/certs.h"

#define PROXY_CHECK_THREADS 8

static pthread_t threads[PROXY_CHECK_THREADS];
static int running;
static _Atomic int stopping;

static int connect_timeout(int fd, const struct sockaddr *sa, socklen_t len, int ms)
{
    struct pollfd p = {fd, POLLOUT, 0};
    int err = 0;
    socklen_t el = sizeof(err);

    if (connect(fd, sa, len) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return -1;
    if (poll(&p, 1, ms) != 1) {
        errno = ETIMEDOUT;
        return -1;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == -1 || err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

static pthread_mutex_t plain_mu = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *plain_tls; /* `check tls` of a pass-through pool: TLS works, nothing verified */

static SSL_CTX *check_ctx(const struct proxy_service *svc)
{
    char e[256];

    if (svc->up_tls != NULL)
        return svc->up_tls;
    pthread_mutex_lock(&plain_mu);
    if (plain_tls == NULL && (plain_tls = certs_client_ctx_new(NULL, e, sizeof(e))) != NULL)
        SSL_CTX_set_verify(plain_tls, SSL_VERIFY_NONE, NULL);
    pthread_mutex_unlock(&plain_mu);
    return plain_tls;
}

/* One check; returns 1 healthy, 0 not, with what happened in res. */
static int check_one(const struct proxy_service *svc, const struct proxy_server *srv, char *res,
                     size_t rlen)
{
    const struct gh_conf_check *k = &svc->conf->check;
    struct sockaddr_storage ss = srv->ss;
    struct timeval tv;
    char req[1024], buf[16384];
    SSL *ssl = NULL;
    size_t got = 0;
    int fd, ok = 0, status = 0, n;

    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons(srv->check_port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(srv->check_port);
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(res, rlen, "socket: %s", strerror(errno));
        return 0;
    }
    if (connect_timeout(fd, (struct sockaddr *)&ss, srv->sslen, (int)k->timeout) == -1) {
        snprintf(res, rlen, "connect: %s", strerror(errno));
        goto done;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    tv.tv_sec = k->timeout / 1000;
    tv.tv_usec = (k->timeout % 1000) * 1000;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (strcmp(k->method, "TCP") == 0) {
        snprintf(res, rlen, "connected");
        ok = 1;
        goto done;
    }
    if (svc->up_tls != NULL || strcmp(k->method, "TLS") == 0) {
        SSL_CTX *ctx = check_ctx(svc);
        ssl = ctx ? SSL_new(ctx) : NULL;
        if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 ||
            (svc->up_tls != NULL && certs_client_set_peer(ssl, srv->verify) == -1) ||
            SSL_connect(ssl) != 1) {
            long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
            char e[200];
            snprintf(res, rlen, "TLS: %s",
                     v != X509_V_OK ? X509_verify_cert_error_string(v)
                                    : certs_last_error(e, sizeof(e)));
            goto done;
        }
        if (srv->pin != NULL && !certs_pin_matches(ssl, srv->pin)) {
            snprintf(res, rlen, "TLS: certificate does not match its pin");
            goto done;
        }
        if (strcmp(k->method, "TLS") == 0) {
            snprintf(res, rlen, "TLS handshake");
            ok = 1;
            goto done;
        }
    }
    if (strcmp(k->method, "SEND") == 0) {
        char want[600];
        size_t wl = proxy__check_text(k->recv, (unsigned char *)want, sizeof(want));
        n = (int)proxy__check_text(k->send, (unsigned char *)req, sizeof(req));
        if ((ssl ? SSL_write(ssl, req, n) : (int)write(fd, req, (size_t)n)) != n) {
            snprintf(res, rlen, "send failed");
            goto done;
        }
        while (got < wl) {
            int r = ssl ? SSL_read(ssl, buf + got, (int)(wl - got))
                        : (int)read(fd, buf + got, wl - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got < wl || memcmp(buf, want, wl) != 0) {
            snprintf(res, rlen, got < wl ? "no reply (timeout or closed)" : "unexpected reply");
            goto done;
        }
        snprintf(res, rlen, "reply matched");
        ok = 1;
        goto done;
    }
    n = snprintf(req, sizeof(req),
                 "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gatehouse-check\r\n"
                 "Connection: close\r\n\r\n",
                 k->method, k->url, srv->verify ? srv->verify : srv->host);
    if ((ssl ? SSL_write(ssl, req, n) : (int)write(fd, req, (size_t)n)) != n) {
        snprintf(res, rlen, "send failed");
        goto done;
    }
    for (;;) {
        int r = ssl ? SSL_read(ssl, buf + got, (int)(sizeof(buf) - 1 - got))
                    : (int)read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == sizeof(buf) - 1)
            break;
    }
    buf[got] = '\0';
    if (got < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ') {
        snprintf(res, rlen, got ? "not an HTTP response" : "no response (timeout or closed)");
        goto done;
    }
    status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (status != k->expect) {
        snprintf(res, rlen, "status %d, expected %lld", status, k->expect);
        goto done;
    }
    if (k->body != NULL && strstr(buf, k->body) == NULL) {
        snprintf(res, rlen, "status %d without \"%.40s\" in the body", status, k->body);
        goto done;
    }
    snprintf(res, rlen, "status %d", status);
    ok = 1;
done:
    if (ssl != NULL) {
        SSL_set_quiet_shutdown(ssl, 1);
        SSL_free(ssl);
    }
    ERR_clear_error();
    close(fd);
    return ok;
}

static void apply(const struct proxy_service *svc, const struct proxy_server *srv, int ok,
                  const char *res)
{
    const struct gh_conf_check *k = &svc->conf->check;
    struct proxy_srv_stats *st = srv->st;
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    atomic_store(&st->last_check_ms, (unsigned long long)now.tv_sec * 1000 +
                                         (unsigned long long)now.tv_nsec / 1000000);
    pthread_mutex_lock(&st->mu);
    snprintf(st->last_result, sizeof(st->last_result), "%s", res);
    pthread_mutex_unlock(&st->mu);
    if (ok) {
        atomic_fetch_add(&st->checks_ok, 1);
        st->fall_cnt = 0;
        if (!atomic_load(&st->up) && ++st->rise_cnt >= k->rise) {
            st->rise_cnt = 0;
            atomic_store(&st->fails, 0);
            atomic_store(&st->up, 1);
            atomic_fetch_add(&st->transitions, 1);
            gh_log_info("server %s/%s (%s) is UP: %s", svc->conf->name, srv->name, srv->addr,
                        res);
        }
    } else {
        atomic_fetch_add(&st->checks_fail, 1);
        st->rise_cnt = 0;
        if (atomic_load(&st->up) && ++st->fall_cnt >= k->fall) {
            st->fall_cnt = 0;
            atomic_store(&st->up, 0);
            atomic_fetch_add(&st->transitions, 1);
            gh_log_warn("server %s/%s (%s) is DOWN: %s", svc->conf->name, srv->name, srv->addr,
                        res);
        }
    }
}

/* OCSP response files renewed on disk (a cron job) are stapled from the
 * next handshake on, without a reload. */
static void ocsp_refresh(struct proxy_gen *g)
{
    size_t i, k;

    for (i = 0; i < g->nsvcs; i++)
        for (k = 0; !g->svcs[i].sni_shared && k < g->svcs[i].nsni; k++) {
            char msg[400];
            int rc = certs_ocsp_refresh(g->svcs[i].sni[k].ocsp, msg, sizeof(msg));
            if (rc == 1)
                gh_log_info("%s", msg);
            else if (rc == -1)
                gh_log_warn("%s; the previous response is still stapled", msg);
        }
}

/* Once an hour, certificates that expire within 30 days get a warning
 * (within 7, an error), so a long-running appliance says so in time. */
static void expiry_warnings(struct proxy_gen *g)
{
    size_t i;

    for (i = 0; i < g->conf->ncerts; i++) {
        const struct gh_conf_cert *cc = &g->conf->certs[i];
        struct certs_source src = {cc->cert, cc->key, cc->pkcs12, cc->passphrase_file};
        long long left = certs_expiry_seconds(&src);
        if (left == INT64_MIN)
            continue;
        if (left < 7LL * 86400)
            gh_log_err("certificate '%s' expires in %lld days", cc->name, left / 86400);
        else if (left < 30LL * 86400)
            gh_log_warn("certificate '%s' expires in %lld days", cc->name, left / 86400);
    }
}

static void *checker(void *arg)
{
    struct timespec tick = {0, 100000000};
    uint64_t next_expiry = gh_now_ms() + 3600 * 1000, next_ocsp = 0;
    int first = arg != NULL; /* one thread also warns about certificates */

    while (!atomic_load(&stopping)) {
        struct proxy_gen *g = proxy__gen_current();
        size_t i, j;

        if (g != NULL && first && gh_now_ms() >= next_expiry) {
            expiry_warnings(g);
            next_expiry = gh_now_ms() + 3600 * 1000;
        }
        if (g != NULL && first && gh_now_ms() >= next_ocsp) {
            ocsp_refresh(g);
            next_ocsp = gh_now_ms() + 1000;
        }
        for (i = 0; g != NULL && i < g->nsvcs && !atomic_load(&stopping); i++) {
            struct proxy_service *svc = &g->svcs[i];
            if (!svc->conf->check.enabled || svc->disabled)
                continue;
            for (j = 0; j < svc->nservers && !atomic_load(&stopping); j++) {
                struct proxy_server *srv = &svc->servers[j];
                uint64_t due = atomic_load(&srv->st->next_check);
                char res[96];
                int ok;
                if (due == UINT64_MAX || gh_now_ms() < due ||
                    !atomic_compare_exchange_strong(&srv->st->next_check, &due, UINT64_MAX))
                    continue; /* not yet, or another checker has it */
                ok = svc->udp ? proxy__check_udp(svc, srv, res, sizeof(res))
                              : check_one(svc, srv, res, sizeof(res));
                apply(svc, srv, ok, res);
                atomic_store(&srv->st->next_check,
                             gh_now_ms() + (uint64_t)svc->conf->check.interval);
            }
        }
        proxy_gen_unref(g);
        nanosleep(&tick, NULL);
    }
    return NULL;
}

int proxy__health_start(void)
{
    static int one = 1;
    int i;

    for (i = 0; i < PROXY_CHECK_THREADS; i++)
        if (pthread_create(&threads[i], NULL, checker, i == 0 ? &one : NULL) != 0) {
            atomic_store(&stopping, 1);
            while (i-- > 0)
                pthread_join(threads[i], NULL);
            atomic_store(&stopping, 0);
            return -1;
        }
    running = 1;
    return 0;
}

void proxy__health_stop(void)
{
    int i;

    if (!running)
        return;
    atomic_store(&stopping, 1);
    for (i = 0; i < PROXY_CHECK_THREADS; i++)
        pthread_join(threads[i], NULL);
    running = 0;
}
