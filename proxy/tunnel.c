/*
 * Tunnels: what a connection becomes after gatehouse checked a WebSocket
 * handshake both ways (upgrade.c). Bytes are copied each way unchanged
 * through the same four buffers, with the same back-pressure as bodies,
 * under tunnel-timeout (which follows idle-timeout unless set). Either side
 * may end its direction first (a half-close): the other direction goes on
 * until it ends too. A tunnel
 * is counted while it lives and logged when it ends, with the bytes it
 * carried, since one tunnel can outlive thousands of requests.
 */
#include "proxy_int.h"

#include <sys/socket.h>

#include <openssl/err.h>

/* Shuts the write side of ep once a direction has ended and everything
 * was flushed: a TLS close_notify, or a TCP FIN. The other direction goes
 * on (a half-close), since either side may still have something to say. */
static void shut_write(struct proxy_ep *ep)
{
    if (ep->ssl != NULL) {
        SSL_shutdown(ep->ssl);
        ERR_clear_error();
    } else {
        shutdown(ep->fd, SHUT_WR);
    }
}

/* Copies bytes one way; returns >0 moved, 0 nothing, -1 error (both sides
 * are then closed). *st follows the direction: OPEN, EOF once `from` ended
 * (what is buffered still goes), SHUT once that reached `to` and its write
 * side was shut. */
static int relay(struct proxy_ep *from, struct gh_buf *in, struct proxy_ep *to,
                 struct gh_buf *out, uint64_t *count, enum proxy_tun *st)
{
    int moved = 0;
    long n;

    if (*st == TUN_SHUT)
        return 0;
    if (in->data == NULL)
        gh_buf_get(in);
    if (out->data == NULL)
        gh_buf_get(out);
    if (*st == TUN_OPEN && from->rd && gh_buf_room(in) > 0) {
        n = proxy__ep_read(from, in);
        if (n == GH_ERR)
            return -1;
        if (n == 0) {
            *st = TUN_EOF;
            moved = 1;
        }
        moved |= n > 0;
    }
    if (gh_buf_len(in) > 0) {
        size_t k = gh_buf_len(in);
        if (gh_buf_room(out) < k)
            gh_buf_compact(out);
        if (k > gh_buf_room(out))
            k = gh_buf_room(out);
        gh_buf_append(out, in->data + in->r, k);
        gh_buf_consume(in, k);
        moved |= k > 0;
    }
    if (gh_buf_len(out) > 0 && to->wr) {
        n = proxy__ep_write(to, out);
        if (n == GH_ERR)
            return -1;
        if (n > 0)
            *count += (uint64_t)n;
        moved |= n > 0;
    }
    if (*st == TUN_EOF && gh_buf_len(in) == 0 && gh_buf_len(out) == 0) {
        shut_write(to);
        *st = TUN_SHUT;
        moved = 1;
    }
    return moved;
}

void proxy__tunnel_begin(struct proxy_conn *c)
{
    c->tun_up = c->tun_down = TUN_OPEN;
    atomic_fetch_add(&c->svc->st->tunnels_total, 1);
    atomic_fetch_add(&c->svc->st->tunnels_active, 1);
    proxy__log_access(c); /* the 101 itself */
    c->t_start = c->w->now_ms;
    c->bytes_in = c->bytes_out = 0;
}

void proxy__tunnel_end(struct proxy_conn *c)
{
    if (c->svc->mode == PROXY_MODE_TCP) {
        /* A Layer-4 connection is counted once, when it ends: bytes both
         * ways and how long it lived. */
        proxy__log_access(c);
        return;
    }
    atomic_fetch_sub(&c->svc->st->tunnels_active, 1);
    proxy__log_tunnel(c);
}

int proxy__tunnel_step(struct proxy_conn *c)
{
    uint64_t up_bytes = 0;
    int a = relay(&c->cli, &c->cin, &c->up->ep, &c->uout, &up_bytes, &c->tun_up);
    int b = a < 0 ? -1 : relay(&c->up->ep, &c->uin, &c->cli, &c->cout, &c->bytes_out, &c->tun_down);

    c->bytes_in += up_bytes;
    if (a < 0 || b < 0 || (c->tun_up == TUN_SHUT && c->tun_down == TUN_SHUT)) {
        proxy__conn_close(c); /* ends the tunnel's count and logs it */
        return RUN_CONTINUE;
    }
    if (a || b) {
        proxy__conn_arm(c, c->svc->conf->tunnel_timeout);
        return RUN_CONTINUE;
    }
    /* A quiet tunnel (a WebSocket between messages) may live for hours. */
    proxy__ep_idle(&c->cli);
    proxy__ep_idle(&c->up->ep);
    return RUN_WAIT;
}
