/*
 * Heads as they leave the proxy. The request head for a real server is
 * rebuilt from the parsed one: the normalised target, every end-to-end
 * header in its original order, hop-by-hop headers (and those named in
 * Connection) removed, X-Forwarded-* set by us (never trusted from the
 * Internet), Via appended and our own framing header. The response head for
 * the client is rebuilt the same way. Error pages are fixed texts.
 */
#include "proxy_int.h"

#include <stdio.h>
#include <string.h>

static void put(struct gh_buf *b, const char *s, size_t n)
{
    gh_buf_append(b, s, n);
}

static void puts_(struct gh_buf *b, const char *s)
{
    gh_buf_append(b, s, strlen(s));
}

/* Makes room for need more bytes in b (heads can exceed one buffer). */
static void reserve(struct gh_buf *b, size_t need)
{
    if (b->data == NULL)
        gh_buf_get(b);
    if (gh_buf_room(b) < need) {
        gh_buf_compact(b);
        if (gh_buf_room(b) < need)
            gh_buf_grow(b, b->w + need);
    }
}

static int is_named(const char *head, const struct http1_hdr *h, const char *name)
{
    return gh_strncaseeq(head + h->name.off, h->name.len, name);
}

static void copy_fields(struct gh_buf *b, const char *head, const struct http1_msg *m,
                        const char *const *drop, struct http1_span *upgrade)
{
    unsigned i;
    size_t k;

    upgrade->len = 0;
    for (i = 0; i < m->nhdrs; i++) {
        const struct http1_hdr *h = &m->hdrs[i];
        int skip = 0;
        if (is_named(head, h, "upgrade"))
            *upgrade = h->value;
        if (http1_is_hop(head, m, head + h->name.off, h->name.len))
            continue;
        for (k = 0; drop[k] != NULL && !skip; k++)
            skip = is_named(head, h, drop[k]);
        if (skip)
            continue;
        put(b, head + h->name.off, h->name.len);
        put(b, ": ", 2);
        put(b, head + h->value.off, h->value.len);
        put(b, "\r\n", 2);
    }
}

int proxy__write_req_head(struct proxy_conn *c, const char *head, const struct http1_msg *m,
                          const char *target, size_t tlen)
{
    static const char *const drop[] = {"x-forwarded-for", "x-forwarded-proto",
                                       "x-forwarded-host", NULL};
    struct gh_buf *b = &c->uout;
    struct http1_span upg;

    reserve(b, m->head_len + tlen + 512);
    put(b, head + m->method.off, m->method.len);
    put(b, " ", 1);
    put(b, target, tlen);
    puts_(b, " HTTP/1.1\r\n");
    copy_fields(b, head, m, drop, &upg);
    if (m->host.len == 0) {
        /* HTTP/1.0 may omit Host; what we send is HTTP/1.1, which may not.
         * The name the client asked for in TLS, else the address it reached. */
        puts_(b, "Host: ");
        puts_(b, c->sni[0] ? c->sni : c->svc->conf->listen);
        puts_(b, "\r\n");
    }
    puts_(b, "X-Forwarded-For: ");
    puts_(b, c->ip);
    puts_(b, c->svc->tls ? "\r\nX-Forwarded-Proto: https\r\n" : "\r\nX-Forwarded-Proto: http\r\n");
    if (m->host.len) {
        puts_(b, "X-Forwarded-Host: ");
        put(b, head + m->host.off, m->host.len);
        puts_(b, "\r\n");
    }
    puts_(b, "Via: 1.1 gatehouse\r\n");
    if (m->framing == HTTP1_BODY_CHUNKED)
        puts_(b, "Transfer-Encoding: chunked\r\n");
    if ((m->flags & HTTP1_F_UPGRADE) && upg.len) {
        puts_(b, "Connection: Upgrade\r\nUpgrade: ");
        put(b, head + upg.off, upg.len);
        puts_(b, "\r\n");
    }
    puts_(b, "\r\n");
    return 0;
}

int proxy__write_resp_head(struct proxy_conn *c, const char *head, const struct http1_msg *m)
{
    /* Our Strict-Transport-Security replaces a real server's. */
    static const char *const both[] = {"server", "strict-transport-security", NULL};
    static const char *const server_only[] = {"server", NULL};
    int hsts = c->svc->tls != NULL && c->svc->conf->hsts_max_age > 0;
    const char *const *drop = c->svc->strip_server ? (hsts ? both : server_only)
                                                   : (hsts ? both + 1 : both + 2);
    struct gh_buf *b = &c->cout;
    struct http1_span upg;
    char line[64];

    reserve(b, m->head_len + 256);
    snprintf(line, sizeof(line), "HTTP/1.1 %03d ", m->status);
    puts_(b, line);
    put(b, head + m->reason.off, m->reason.len);
    puts_(b, "\r\n");
    copy_fields(b, head, m, drop, &upg);
    if (m->status == 101) {
        puts_(b, "Connection: Upgrade\r\nUpgrade: ");
        put(b, head + upg.off, upg.len);
        puts_(b, "\r\n\r\n");
        return 0;
    }
    if (m->status < 200) {
        puts_(b, "\r\n");
        return 0;
    }
    if (m->framing == HTTP1_BODY_CHUNKED || c->resp_chunk_out)
        puts_(b, "Transfer-Encoding: chunked\r\n");
    if (hsts) {
        snprintf(line, sizeof(line), "Strict-Transport-Security: max-age=%lld\r\n",
                 c->svc->conf->hsts_max_age);
        puts_(b, line);
    }
    {
        char cookie[256];
        int n = proxy__persist_set_cookie(c, cookie, sizeof(cookie));
        if (n > 0 && (size_t)n < sizeof(cookie))
            put(b, cookie, (size_t)n);
    }
    if (c->close_after)
        puts_(b, "Connection: close\r\n");
    else if (c->req.version == 10)
        puts_(b, "Connection: keep-alive\r\n");
    puts_(b, "\r\n");
    return 0;
}

void proxy__write_redirect(struct proxy_conn *c, int status, const char *location)
{
    struct gh_buf *b = &c->cout;
    char head[512];
    int n;

    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d Redirect\r\nLocation: %s\r\nContent-Length: 0\r\n"
                 "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                 status, location);
    if (n < 0 || (size_t)n >= sizeof(head))
        n = snprintf(head, sizeof(head), "HTTP/1.1 500 Error\r\nContent-Length: 0\r\n"
                                         "Connection: close\r\n\r\n");
    reserve(b, (size_t)n);
    put(b, head, (size_t)n);
    c->status = status;
    c->close_after = 1;
}

void proxy__write_error(struct proxy_conn *c, int status)
{
    struct gh_buf *b = &c->cout;
    const char *text, *body;
    unsigned len;
    char head[256];
    int n;

    body = rules_status_page(status, &text, &len);
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
                 "Content-Length: %u\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
                 status, text, len);
    reserve(b, (size_t)n + len);
    put(b, head, (size_t)n);
    if (!(c->req.flags & HTTP1_F_HEAD) || c->st == ST_READ_HEAD)
        put(b, body, len); /* a HEAD gets the length, not the body */
    c->status = status;
    c->close_after = 1;
}
