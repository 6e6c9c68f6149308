/*
 * Heads as they leave the proxy, written from the parsed, checked message
 * (http1_write.c) and never passed through.
 *
 * Towards the real server: the method, the normalised target (the one the
 * directory check saw), Host, the client's end-to-end headers in order
 * (less those the service's request-header rules remove or set), the
 * rules' own lines (header_rules.c), then gatehouse's own: X-Forwarded-For (the client's chain only when it
 * came from a trusted proxy), X-Forwarded-Proto, X-Forwarded-Host,
 * X-Real-IP, Gatehouse-Edge-Token (edge.c), Forwarded, Via, and the
 * framing header for the body it will send. Whatever the client said about those (or in Connection) is gone
 * before they are written, so nothing a client sends can remove or forge
 * them.
 *
 * Towards the client: the status line, the server's end-to-end headers
 * (Server and the other version headers dropped unless configured, its
 * HSTS replaced by ours, response-header rules and rewrite-host applied),
 * the rules' own lines, our framing, HSTS, persistence cookie and
 * Connection. Error pages and redirects are fixed texts: rules never
 * apply to them.
 */
#include "proxy_int.h"

#include <stdio.h>
#include <string.h>

static int needs_quotes(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("!#$%&'*+-.^_`|~", ch) != NULL))
            return 1;
    }
    return 0;
}

/* Forwarded: for=<client>;proto=<scheme>;host=<Host> (RFC 7239), values
 * quoted where they are not tokens (IPv6 addresses, a Host with a port). */
static void write_forwarded(struct gh_buf *b, const struct proxy_conn *c, const char *host,
                            size_t hlen)
{
    int v6 = strchr(c->ip, ':') != NULL;

    http1_puts(b, "Forwarded: for=");
    http1_puts(b, v6 ? "\"[" : "");
    http1_puts(b, c->ip);
    http1_puts(b, v6 ? "]\"" : "");
    http1_puts(b, c->svc->tls ? ";proto=https" : ";proto=http");
    if (hlen > 0) {
        int q = needs_quotes(host, hlen);
        http1_puts(b, q ? ";host=\"" : ";host=");
        http1_put(b, host, hlen);
        http1_puts(b, q ? "\"" : "");
    }
    http1_puts(b, "\r\n");
}

/* X-Forwarded-For: from a trusted proxy its chain (every X-Forwarded-For
 * line, in order) and then that proxy's own address; from anyone else the
 * client's address alone. */
static void write_xff(struct gh_buf *b, const struct proxy_conn *c, const char *head,
                      const struct http1_msg *m)
{
    unsigned i;
    int any = 0;

    http1_puts(b, "X-Forwarded-For: ");
    if (c->peer_trusted)
        for (i = 0; i < m->nhdrs; i++) {
            const struct http1_hdr *h = &m->hdrs[i];
            if (h->kind != HTTP1_H_PROXY || h->value.len == 0 ||
                !gh_strncaseeq(head + h->name.off, h->name.len, "x-forwarded-for"))
                continue;
            http1_put(b, head + h->value.off, h->value.len);
            http1_puts(b, ", ");
            any = 1;
        }
    http1_puts(b, any ? c->peer_ip : c->ip);
    http1_puts(b, "\r\n");
}

/* Gatehouse-Edge-Token: the one this appliance made (validate-join-token),
 * else the one line a trusted proxy sent (an edge gatehouse in front of
 * this one: the conference service behind us checks it); a client's is
 * never passed on. */
static void write_edge_token(struct gh_buf *b, const struct proxy_conn *c, const char *head,
                             const struct http1_msg *m)
{
    const struct http1_hdr *found = NULL;
    unsigned i;

    if (c->edge_token[0] != '\0') {
        http1_write_field(b, GH_EDGE_HEADER, c->edge_token, strlen(c->edge_token));
        return;
    }
    if (!c->peer_trusted || c->svc->validate_join)
        return;
    for (i = 0; i < m->nhdrs; i++) {
        const struct http1_hdr *h = &m->hdrs[i];
        if (h->kind != HTTP1_H_PROXY ||
            !gh_strncaseeq(head + h->name.off, h->name.len, "gatehouse-edge-token"))
            continue;
        if (found != NULL)
            return; /* two: neither is the edge's word */
        found = h;
    }
    if (found != NULL && found->value.len > 0 && found->value.len < GH_EDGE_TOKEN_MAX)
        http1_write_field(b, GH_EDGE_HEADER, head + found->value.off, found->value.len);
}

int proxy__write_req_head(struct proxy_conn *c, const char *head, const struct http1_msg *m,
                          const char *target, size_t tlen)
{
    struct gh_buf *b = &c->uout;
    const char *host = head + m->host.off;
    size_t hlen = m->host.len;

    if (hlen == 0) {
        /* HTTP/1.0 may omit Host; what we send is HTTP/1.1, which may not.
         * The name the client asked for in TLS, else the address it reached. */
        host = c->sni[0] ? c->sni : c->svc->conf->listen;
        hlen = strlen(host);
    }
    http1_write_request_line(b, head, m, target, tlen, host, hlen);
    proxy__hdr_write_req_fields(b, head, m,
                                HTTP1_KEEP(HTTP1_H_E2E) |
                                    (c->continue_sent ? 0 : HTTP1_KEEP(HTTP1_H_EXPECT)),
                                c->svc->hdr);
    write_xff(b, c, head, m);
    http1_puts(b, c->svc->tls ? "X-Forwarded-Proto: https\r\n" : "X-Forwarded-Proto: http\r\n");
    if (m->host.len)
        http1_write_field(b, "X-Forwarded-Host", head + m->host.off, m->host.len);
    http1_write_field(b, "X-Real-IP", c->ip, strlen(c->ip));
    write_edge_token(b, c, head, m);
    write_forwarded(b, c, head + m->host.off, m->host.len);
    http1_puts(b, "Via: 1.1 gatehouse\r\n");
    http1_write_req_framing(b, m);
    if (c->upgrade == PROXY_UPGRADE_WEBSOCKET)
        http1_puts(b, "Connection: Upgrade\r\nUpgrade: websocket\r\n");
    http1_write_end(b);
    return 0;
}

int proxy__write_resp_head(struct proxy_conn *c, const char *head, const struct http1_msg *m)
{
    int hsts = c->svc->tls != NULL && c->svc->conf->hsts_max_age > 0;
    unsigned keep = HTTP1_KEEP(HTTP1_H_E2E);
    struct gh_buf *b = &c->cout;
    char line[64];

    /* Our Strict-Transport-Security replaces a real server's. */
    if (!c->svc->strip_server)
        keep |= HTTP1_KEEP(HTTP1_H_SERVER);
    if (!hsts)
        keep |= HTTP1_KEEP(HTTP1_H_HSTS);
    http1_write_status_line(b, head, m);
    proxy__hdr_write_resp_fields(b, head, m, keep, c->svc->hdr);
    if (m->status == 101) {
        http1_puts(b, "Connection: Upgrade\r\nUpgrade: websocket\r\n");
        http1_write_end(b);
        return 0;
    }
    if (m->status < 200) {
        http1_write_end(b);
        return 0;
    }
    http1_write_resp_framing(b, m, c->rs.out);
    if (hsts) {
        snprintf(line, sizeof(line), "Strict-Transport-Security: max-age=%lld\r\n",
                 c->svc->conf->hsts_max_age);
        http1_puts(b, line);
    }
    {
        char cookie[256];
        int n = proxy__persist_set_cookie(c, cookie, sizeof(cookie));
        if (n > 0 && (size_t)n < sizeof(cookie))
            http1_put(b, cookie, (size_t)n);
    }
    if (c->close_after)
        http1_puts(b, "Connection: close\r\n");
    else if (c->req.version == 10)
        http1_puts(b, "Connection: keep-alive\r\n");
    http1_write_end(b);
    return 0;
}

/* The Location comes from the policy as pieces (rules_location_write
 * escapes what a URI may not hold), so it is one valid header value
 * whatever the request was; the policy refused any longer than
 * RULES_LOCATION_MAX. */
void proxy__write_redirect(struct proxy_conn *c, const struct rules_location *loc)
{
    struct gh_buf *b = &c->cout;
    char location[RULES_LOCATION_MAX + 1], line[64];
    const char *text = loc->status == 301   ? "Moved Permanently"
                       : loc->status == 302 ? "Found"
                       : loc->status == 303 ? "See Other"
                       : loc->status == 307 ? "Temporary Redirect"
                                            : "Permanent Redirect";
    size_t n = rules_location_write(loc, location);

    if (n > RULES_LOCATION_MAX || loc->status < 300 || loc->status > 308) {
        proxy__write_error(c, 500);
        return;
    }
    snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\nLocation: ", loc->status, text);
    http1_puts(b, line);
    http1_put(b, location, n);
    http1_puts(b, "\r\nContent-Length: 0\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n");
    c->status = loc->status;
    c->close_after = 1;
}

void proxy__write_error(struct proxy_conn *c, int status)
{
    struct gh_buf *b = &c->cout;
    const char *text, *body;
    unsigned len;
    char head[256];
    int n;

    body = gh_status_page(status, &text, &len);
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
                 "Content-Length: %u\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
                 status, text, len);
    http1_put(b, head, (size_t)n);
    if (!(c->req.flags & HTTP1_F_HEAD) || c->st == ST_READ_HEAD)
        http1_put(b, body, len); /* a HEAD gets the length, not the body */
    c->status = status;
    c->close_after = 1;
}
