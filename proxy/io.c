/*
 * Reads and writes on an endpoint, TLS or plain, with one vocabulary:
 * bytes, 0 for the end of the stream, GH_AGAIN, GH_ERR. The readiness flag
 * is cleared when the kernel or OpenSSL says it would block, or when a read
 * came back short with nothing left inside OpenSSL: the kernel's queue was
 * empty then, and with edge-triggered epoll the next byte brings an edge
 * (unless the peer's end of stream was announced already, EPOLLRDHUP, or
 * it sent urgent data, EPOLLPRI: Linux ends a read at the urgent mark with
 * the bytes behind it queued and no new edge to come).
 */
#include "proxy_int.h"

#include <errno.h>
#include <openssl/err.h>
#include <sys/epoll.h>
#include <unistd.h>

/* OpenSSL's SSL_MODE_RELEASE_BUFFERS gives an endpoint's read and write
 * buffers (~17 KiB each) back after every record, so a keep-alive request
 * paid four malloc/free pairs of them, ~2,400 instructions (callgrind),
 * and touched cold memory each time. Without the mode the buffers stay
 * for the connection's life: 34 KiB more per idle connection. So an
 * endpoint going idle keeps them while fewer than PROXY_TLS_WARM of this
 * worker's idle endpoints do (the next request reuses them), and gives
 * them back otherwise: memory held by idle connections stays bounded
 * (~2 MiB a worker), and a busy worker with up to that many keep-alive
 * clients allocates nothing per request. Connections never change
 * worker, so a thread-local count is the worker's. */
#define PROXY_TLS_WARM 64
static __thread unsigned warm_eps;

static void ep_busy(struct proxy_ep *ep)
{
    if (ep->warm) {
        ep->warm = 0;
        warm_eps--;
    }
}

void proxy__ep_idle(struct proxy_ep *ep)
{
    if (ep->ssl == NULL || ep->warm)
        return;
    if (warm_eps < PROXY_TLS_WARM) {
        ep->warm = 1;
        warm_eps++;
        return;
    }
    /* Refused (0) while a partial record is buffered: kept until the next
     * idle moment. */
    (void)SSL_free_buffers(ep->ssl);
}

long proxy__ep_read(struct proxy_ep *ep, struct gh_buf *b)
{
    size_t room;

    if (gh_buf_room(b) < 1024 && b->r > 0)
        gh_buf_compact(b);
    room = gh_buf_room(b);
    if (room == 0)
        return GH_AGAIN;
    if (ep->ssl != NULL) {
        int n;
        /* Only a kernel read made inside this SSL_read may say the socket
         * is drained: an SSL_read served from what OpenSSL already held
         * says nothing of bytes that came (and spent their edge) since
         * (found by a hostile review: a pipelined 16 KiB record that did
         * not fit, then a request behind it, waited for the timeout). */
        ep->drained = 0;
        n = SSL_read(ep->ssl, b->data + b->w, room > INT32_MAX ? INT32_MAX : (int)room);
        if (n > 0) {
            b->w += (size_t)n;
            ep_busy(ep);
            /* The kernel had nothing more and OpenSSL holds nothing:
             * the next byte brings an edge, so the read that would end in
             * WANT_READ is skipped. Not after a half-close, whose end of
             * stream has had its edge already, nor after urgent data
             * (read_to_eagain). */
            if (ep->drained && !ep->read_to_eagain && !SSL_has_pending(ep->ssl))
                ep->rd = 0;
            return n;
        }
        switch (SSL_get_error(ep->ssl, n)) {
        case SSL_ERROR_WANT_READ:
            ep->rd = 0;
            return GH_AGAIN;
        case SSL_ERROR_WANT_WRITE:
            /* A read that must write first: both wait for the write edge,
             * else a loop on rd would spin on it. */
            ep->rd = ep->wr = 0;
            ep->rd_on_wr = 1;
            return GH_AGAIN;
        case SSL_ERROR_ZERO_RETURN:
            return 0;
        default:
            ERR_clear_error();
            return GH_ERR;
        }
    }
    for (;;) {
        ssize_t n = read(ep->fd, b->data + b->w, room);
        if (n > 0) {
            b->w += (size_t)n;
            if ((size_t)n < room && !ep->read_to_eagain)
                ep->rd = 0; /* drained: the next byte brings an edge (see above) */
            return n;
        }
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            ep->rd = 0;
            return GH_AGAIN;
        }
        return GH_ERR;
    }
}

long proxy__ep_write(struct proxy_ep *ep, struct gh_buf *b)
{
    size_t len = gh_buf_len(b);

    if (len == 0)
        return 0;
    if (ep->ssl != NULL) {
        int n = SSL_write(ep->ssl, b->data + b->r, len > INT32_MAX ? INT32_MAX : (int)len);
        if (n > 0) {
            gh_buf_consume(b, (size_t)n);
            return n;
        }
        switch (SSL_get_error(ep->ssl, n)) {
        case SSL_ERROR_WANT_WRITE:
            ep->wr = 0;
            return GH_AGAIN;
        case SSL_ERROR_WANT_READ:
            ep->rd = ep->wr = 0;
            ep->wr_on_rd = 1;
            return GH_AGAIN;
        default:
            ERR_clear_error();
            return GH_ERR;
        }
    }
    for (;;) {
        ssize_t n = write(ep->fd, b->data + b->r, len);
        if (n >= 0) {
            gh_buf_consume(b, (size_t)n);
            return n;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            ep->wr = 0;
            return GH_AGAIN;
        }
        return GH_ERR;
    }
}

void proxy__ep_tls_ready(struct proxy_ep *ep)
{
    /* The handshake step read without our readiness asking for it (any
     * event of the connection drives it) and, with read-ahead, may have
     * taken records after the handshake's end: their edge is spent, so
     * readiness says so. A partial record only costs one read that ends in
     * WANT_READ, after which its remainder gets an edge of its own. */
    if (ep->ssl != NULL && !ep->rd && !ep->rd_on_wr && SSL_has_pending(ep->ssl))
        ep->rd = 1;
}

void proxy__ep_close(struct proxy_worker *w, struct proxy_ep *ep)
{
    if (ep->fd == -1)
        return;
    proxy__ep_del(w, ep);
    ep_busy(ep);
    if (ep->ssl != NULL) {
        /* One non-blocking attempt at close_notify, so a client reading to
         * the end of the stream can tell a clean end from a cut; we never
         * wait for the peer's. */
        if (SSL_is_init_finished(ep->ssl) && !(SSL_get_shutdown(ep->ssl) & SSL_SENT_SHUTDOWN))
            SSL_shutdown(ep->ssl);
        ERR_clear_error();
        SSL_free(ep->ssl);
        ep->ssl = NULL;
    }
    close(ep->fd);
    ep->fd = -1;
    ep->rd = ep->wr = ep->hup = ep->rd_on_wr = ep->wr_on_rd = ep->warm = 0;
    ep->read_to_eagain = ep->drained = 0;
}
