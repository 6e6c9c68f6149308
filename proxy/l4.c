/*
 * Layer-4 services (mode tcp): after the listener's TLS is terminated (or
 * with none), or once the ClientHello of a pass-through listener has been
 * read, the service is chosen by the TLS server name among those sharing
 * the listener, the real server by persistence and the scheduler, and from
 * then on bytes are copied both ways (tunnel.c), the ClientHello first when
 * it was only read. One access-log line per connection, at its end.
 *
 * A service's allowed-hosts, when it has any, bound the server names it
 * takes: a client naming another is refused (sni-not-allowed) before any
 * server is chosen. A client naming none is served by the listener's first
 * service, unless that one says `sni-default off`.
 *
 * In a cluster (store redis), a service with persistence source-ip asks
 * the store for its client's entry before choosing (STORE_WAIT, nothing
 * read meanwhile but what is already in), and writes it once chosen: the
 * appliances share one entry per client, as for HTTP.
 */
#include "proxy_int.h"

#include <string.h>

/* The service whose allowed-hosts name the server name, else the first. */
static struct proxy_service *service_for_sni(struct proxy_conn *c, const char *name)
{
    struct proxy_service *s;

    if (name[0] != '\0')
        for (s = c->lsvc; s != NULL; s = s->lnext)
            if (rules_policy_host_allowed(s->policy, name))
                return s;
    return c->lsvc;
}

/* Reads the ClientHello into cin without answering it. GH_OK with c->sni
 * set, GH_AGAIN, or GH_ERR (closed: not TLS, or the client left). */
static int read_hello(struct proxy_conn *c)
{
    char sni[256];

    for (;;) {
        long n;
        if (c->cin.data != NULL && gh_buf_len(&c->cin) > 0) {
            switch (tls_hello_scan((const unsigned char *)c->cin.data + c->cin.r,
                                   gh_buf_len(&c->cin), &c->hello, sni, sizeof(sni))) {
            case TLS_HELLO_OK:
                if (gh_strlcpy(c->sni, sni, sizeof(c->sni)) == -1) {
                    proxy__conn_refuse(c, GH_REASON_BAD_CLIENT_HELLO); /* not whole: refused */
                    return GH_ERR;
                }
                return GH_OK;
            case TLS_HELLO_BAD:
                proxy__conn_refuse(c, GH_REASON_BAD_CLIENT_HELLO);
                return GH_ERR;
            case TLS_HELLO_AGAIN:
                break;
            }
            if (gh_buf_len(&c->cin) > TLS_HELLO_MAX + 4 * 5 + 64) {
                proxy__conn_refuse(c, GH_REASON_BAD_CLIENT_HELLO); /* no end in sight */
                return GH_ERR;
            }
        }
        if (!c->cli.rd)
            return GH_AGAIN;
        if (c->cin.data == NULL)
            gh_buf_get(&c->cin);
        if (gh_buf_room(&c->cin) == 0)
            gh_buf_grow(&c->cin, TLS_HELLO_MAX + 1024);
        n = proxy__ep_read(&c->cli, &c->cin);
        if (n > 0) {
            c->bytes_in += (uint64_t)n;
            continue;
        }
        if (n == GH_AGAIN)
            continue;
        c->why = GH_REASON_CLIENT_CLOSED;
        proxy__log_access(c);
        proxy__conn_close(c);
        return GH_ERR;
    }
}

/* The service is chosen and checked: its server, once the store (in a
 * cluster, for persistence source-ip) has said where the client was. */
static int to_server(struct proxy_conn *c)
{
    int asked;

    if (c->ask_st == ASK_IDLE && (asked = proxy__shared_ask_l4(c)) != -1)
        return asked;
    if (proxy__shared_spend(c) == -1)
        return proxy__conn_refuse(c, GH_REASON_INTERNAL);
    return proxy__conn_to_server(c);
}

int proxy__l4_step(struct proxy_conn *c)
{
    struct proxy_service *s;
    char name[300] = "";

    if (c->ask_st == ASK_ANSWERED) /* back from STORE_WAIT: chosen and checked before it */
        return to_server(c);
    if (c->lsvc->passthrough) {
        int rc = read_hello(c);
        if (rc == GH_AGAIN)
            return RUN_WAIT;
        if (rc == GH_ERR)
            return RUN_CONTINUE;
    }
    if (c->sni[0] != '\0' && rules_host_norm(c->sni, strlen(c->sni), name, sizeof(name)) == -1)
        name[0] = '\0';
    s = service_for_sni(c, name);
    proxy__conn_use_service(c, s);
    c->t_start = c->w->now_ms;
    gh_strlcpy(c->method, c->lsvc->passthrough ? "TLS" : "TCP", sizeof(c->method));
    gh_strlcpy(c->path, c->sni[0] ? c->sni : "-", sizeof(c->path));
    if (c->sni[0] != '\0' && s->conf->allowed_hosts.n > 0 &&
        !rules_policy_host_allowed(s->policy, name))
        return proxy__conn_refuse(c, GH_REASON_SNI_NOT_ALLOWED);
    if (c->sni[0] == '\0' && c->lsvc->passthrough &&
        strcmp(c->lsvc->conf->sni_default, "off") == 0)
        return proxy__conn_refuse(c, GH_REASON_SNI_NOT_ALLOWED);
    return to_server(c);
}

void proxy__l4_begin(struct proxy_conn *c)
{
    c->tun_up = c->tun_down = TUN_OPEN;
    c->status = 0;
    proxy__conn_set_state(c, ST_TUNNEL);
}
