/*
 * Who the client is. Normally the TCP peer. Behind a chain of proxies the
 * operator trusts (trusted-proxies, seed 002's reverse proxy chain), the
 * peer is a proxy and the client is named in X-Forwarded-For: the real
 * client is the rightmost address of the chain (plus the peer) that is not
 * itself a trusted proxy, so a client cannot pick its own address by
 * putting one at the left of the header. That address is used for the
 * per-source limits, source-ip persistence, X-Real-IP and Forwarded, and
 * the logs. From anyone else X-Forwarded-For is not believed at all.
 */
#include "proxy_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int proxy__is_trusted(const struct proxy_service *svc, const struct sockaddr_storage *ss)
{
    size_t i;

    for (i = 0; i < svc->ntrusted; i++)
        if (gh_cidr_match(&svc->trusted[i], (const struct sockaddr *)ss))
            return 1;
    return 0;
}

/* One element of X-Forwarded-For: an address, possibly [v6] or with a
 * port ("a.b.c.d:p", "[v6]:p"). 0 with *ss set, -1 when it is none. */
static int parse_elem(const char *s, size_t n, struct sockaddr_storage *ss, char *text,
                      size_t textlen)
{
    char a[64];
    const char *colon;

    if (n == 0 || n >= sizeof(a))
        return -1;
    if (s[0] == '[') {
        const char *e = memchr(s, ']', n);
        if (e == NULL)
            return -1;
        s++;
        n = (size_t)(e - s);
    } else if ((colon = memchr(s, ':', n)) != NULL && memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)) == NULL) {
        n = (size_t)(colon - s); /* "a.b.c.d:port" */
    }
    if (n == 0 || n >= sizeof(a))
        return -1;
    memcpy(a, s, n);
    a[n] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, a, &((struct sockaddr_in *)ss)->sin_addr) == 1)
        ss->ss_family = AF_INET;
    else if (inet_pton(AF_INET6, a, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1)
        ss->ss_family = AF_INET6;
    else
        return -1;
    gh_strlcpy(text, a, textlen);
    return 0;
}

void proxy__client_from_request(struct proxy_conn *c, const char *head,
                                const struct http1_msg *m)
{
    int i;

    c->client_ss = c->peer_ss;
    gh_strlcpy(c->ip, c->peer_ip, sizeof(c->ip));
    gh_strlcpy(c->client, c->peer, sizeof(c->client));
    if (!c->peer_trusted || m == NULL)
        return;
    /* Right to left over every X-Forwarded-For line and element. */
    for (i = (int)m->nhdrs - 1; i >= 0; i--) {
        const struct http1_hdr *h = &m->hdrs[i];
        const char *v = head + h->value.off;
        size_t e = h->value.len;
        if (h->kind != HTTP1_H_PROXY ||
            !gh_strncaseeq(head + h->name.off, h->name.len, "x-forwarded-for"))
            continue;
        while (e > 0) {
            size_t s = e, a, b;
            struct sockaddr_storage ss;
            char text[48];
            while (s > 0 && v[s - 1] != ',')
                s--;
            a = s;
            b = e;
            while (a < b && (v[a] == ' ' || v[a] == '\t'))
                a++;
            while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
                b--;
            e = s > 0 ? s - 1 : 0;
            if (a == b)
                continue;
            if (parse_elem(v + a, b - a, &ss, text, sizeof(text)) == -1)
                return; /* junk: the last address we could trust stays the client */
            c->client_ss = ss;
            gh_strlcpy(c->ip, text, sizeof(c->ip));
            gh_strlcpy(c->client, text, sizeof(c->client));
            if (!proxy__is_trusted(c->svc, &ss))
                return;
        }
    }
}
