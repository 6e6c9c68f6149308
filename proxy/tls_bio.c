/*
 * The socket under an endpoint's TLS: a BIO of our own instead of
 * OpenSSL's socket BIO, for one fact the socket BIO keeps to itself:
 * whether the last read from the kernel came back short. A short read
 * (or EAGAIN) means the socket's receive queue was empty at that moment
 * (but for TCP urgent data, whose mark ends a read early: proxy/io.c
 * keeps reading after EPOLLPRI), so with edge-triggered epoll any later
 * byte brings an edge of its own;
 * proxy__ep_read then stops without the SSL_read that would only end in
 * WANT_READ (one system call and ~1,000 instructions a request, strace
 * and callgrind). Everything else behaves as the socket BIO does: read
 * and write on the descriptor, retry flags on EAGAIN/EINTR, the EOF flag
 * OpenSSL consults to tell an unexpected end from an error, and the
 * descriptor left open on free (SSL_set_fd's BIO_NOCLOSE).
 */
#include "proxy_int.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

static BIO_METHOD *method;
static pthread_once_t method_once = PTHREAD_ONCE_INIT;

static int retryable(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

static int ep_bio_read(BIO *b, char *buf, int len)
{
    struct proxy_ep *ep = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    n = read(ep->fd, buf, (size_t)len);
    if (n > 0) {
        ep->drained = n < len;
        return (int)n;
    }
    ep->drained = 1;
    if (n == 0)
        BIO_set_flags(b, BIO_FLAGS_IN_EOF);
    else if (retryable())
        BIO_set_retry_read(b);
    return (int)n;
}

static int ep_bio_write(BIO *b, const char *buf, int len)
{
    struct proxy_ep *ep = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    n = write(ep->fd, buf, (size_t)len);
    if (n < 0 && retryable())
        BIO_set_retry_write(b);
    return (int)n;
}

static long ep_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct proxy_ep *ep;

    (void)num;
    switch (cmd) { /* ~20 calls a keep-alive request: the common ones cost a compare */
    case BIO_CTRL_EOF:
        return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    case BIO_CTRL_FLUSH:
    case BIO_CTRL_DUP:
        return 1;
    case BIO_C_GET_FD:
        ep = BIO_get_data(b);
        if (ep == NULL)
            return -1;
        if (ptr != NULL)
            *(int *)ptr = ep->fd;
        return ep->fd;
    default:
        /* Pending counts, kTLS queries, close flags: a socket has none
         * (the socket BIO answers 0 to these too, without kTLS). */
        return 0;
    }
}

static int ep_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void make_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "gatehouse endpoint");

    if (m == NULL || BIO_meth_set_read(m, ep_bio_read) != 1 ||
        BIO_meth_set_write(m, ep_bio_write) != 1 || BIO_meth_set_ctrl(m, ep_bio_ctrl) != 1 ||
        BIO_meth_set_create(m, ep_bio_create) != 1) {
        BIO_meth_free(m);
        return;
    }
    method = m;
}

int proxy__ep_attach_ssl(struct proxy_ep *ep)
{
    BIO *b;

    pthread_once(&method_once, make_method);
    if (method == NULL || ep->ssl == NULL || ep->fd < 0 || (b = BIO_new(method)) == NULL)
        return -1;
    BIO_set_data(b, ep);
    ep->drained = 0;
    SSL_set_bio(ep->ssl, b, b); /* the SSL owns b from here */
    return 0;
}
