/*
 * Tunnels: what a connection becomes after gatehouse checked a WebSocket
 * handshake both ways (upgrade.c). Bytes are copied each way unchanged
 * through the same four buffers, with the same back-pressure as bodies,
 * under tunnel-timeout (which follows idle-timeout unless set). A tunnel
 * is counted while it lives and logged when it ends, with the bytes it
 * carried, since one tunnel can outlive thousands of requests.
 */
#include "proxy_int.h"

/* Copies bytes one way; returns >0 moved, 0 nothing, -1 end or error. */
static int relay(struct proxy_ep *from, struct gh_buf *in, struct proxy_ep *to,
                 struct gh_buf *out, uint64_t *count)
{
    int moved = 0;
    long n;

    if (in->data == NULL)
        gh_buf_get(in);
    if (out->data == NULL)
        gh_buf_get(out);
    if (from->rd && gh_buf_room(in) > 0) {
        n = proxy__ep_read(from, in);
        if (n == 0 || n == GH_ERR)
            return -1;
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
    return moved;
}

void proxy__tunnel_begin(struct proxy_conn *c)
{
    atomic_fetch_add(&c->svc->st->tunnels_total, 1);
    atomic_fetch_add(&c->svc->st->tunnels_active, 1);
    proxy__log_access(c); /* the 101 itself */
    c->t_start = gh_now_ms();
    c->bytes_in = c->bytes_out = 0;
}

void proxy__tunnel_end(struct proxy_conn *c)
{
    atomic_fetch_sub(&c->svc->st->tunnels_active, 1);
    proxy__log_tunnel(c);
}

int proxy__tunnel_step(struct proxy_conn *c)
{
    uint64_t up_bytes = 0;
    int a = relay(&c->cli, &c->cin, &c->up->ep, &c->uout, &up_bytes);
    int b = a < 0 ? -1 : relay(&c->up->ep, &c->uin, &c->cli, &c->cout, &c->bytes_out);

    c->bytes_in += up_bytes;
    if (a < 0 || b < 0) {
        /* Flush what the server said last, then close both sides. */
        if (b >= 0 || gh_buf_len(&c->cout) > 0) {
            proxy__tunnel_end(c);
            proxy__conn_uncount(c);
            proxy__up_close(c);
            proxy__conn_set_state(c, ST_CLOSING);
            return RUN_CONTINUE;
        }
        proxy__conn_close(c); /* ends the tunnel's count and logs it */
        return RUN_CONTINUE;
    }
    if (a || b) {
        proxy__conn_arm(c, c->svc->conf->tunnel_timeout);
        return RUN_CONTINUE;
    }
    return RUN_WAIT;
}
