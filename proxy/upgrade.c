/*
 * Protocol upgrades. A request may leave HTTP only as a WebSocket that
 * gatehouse has checked (RFC 6455 4.1/4.2): GET on HTTP/1.1 without a
 * body, Connection listing upgrade, Upgrade exactly "websocket", a
 * Sec-WebSocket-Key that is base64 of 16 bytes and Sec-WebSocket-Version
 * 13, and only where the service allows WebSocket. The 101 that comes back
 * must name websocket in Upgrade, list upgrade in Connection and carry the
 * Sec-WebSocket-Accept derived from that key; only then does the
 * connection become a tunnel. Any other Upgrade (h2c, made-up tokens, a
 * list) is removed and the request is served as plain HTTP/1.1, or refused
 * where the service says so: a server that switched protocols on a request
 * gatehouse did not check would open a tunnel past the firewall.
 */
#include "proxy_int.h"

#include <string.h>

#include <openssl/evp.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static int is_websocket(const char *head, struct http1_span v)
{
    return gh_strncaseeq(head + v.off, v.len, "websocket");
}

/* base64 of exactly 16 bytes, written canonically (re-encoding gives the
 * same text), so no two keys stand for one nonce. */
static int valid_key(const char *k, size_t n)
{
    unsigned char raw[24];
    char again[32];

    if (n != 24 || EVP_DecodeBlock(raw, (const unsigned char *)k, 24) != 18 || k[22] != '=' ||
        k[23] != '=')
        return 0;
    EVP_EncodeBlock((unsigned char *)again, raw, 16);
    return memcmp(again, k, 24) == 0;
}

/* base64(SHA-1(key + GUID)) into out (29 bytes with the NUL). */
static int accept_for(const char *key, size_t n, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE], in[24 + sizeof(WS_GUID)];
    unsigned mdlen = 0;

    memcpy(in, key, n);
    memcpy(in + n, WS_GUID, sizeof(WS_GUID) - 1);
    if (EVP_Digest(in, n + sizeof(WS_GUID) - 1, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, md, 20);
    return 0;
}

enum gh_reason proxy__upgrade_request(struct proxy_conn *c, const char *head,
                                      const struct http1_msg *m)
{
    const struct proxy_service *svc = c->svc;

    c->upgrade = PROXY_UPGRADE_NONE;
    if (!(m->flags & HTTP1_F_UPGRADE) || m->upgrade.len == 0)
        return GH_REASON_NONE; /* an Upgrade without Connection: upgrade is just removed */
    if (is_websocket(head, m->upgrade) && svc->ws_allowed) {
        if (m->version != 11 || !http1_method_is(head, m, "GET") ||
            m->framing != HTTP1_BODY_NONE || (m->flags & HTTP1_F_WS_DUP) ||
            !valid_key(head + m->ws_key.off, m->ws_key.len) ||
            !gh_strncaseeq(head + m->ws_version.off, m->ws_version.len, "13"))
            return GH_REASON_BAD_WEBSOCKET;
        if (accept_for(head + m->ws_key.off, m->ws_key.len, c->ws_accept) == -1)
            return GH_REASON_INTERNAL;
        c->upgrade = PROXY_UPGRADE_WEBSOCKET;
        return GH_REASON_NONE;
    }
    /* h2c, other protocols, lists, WebSocket where it is not allowed. */
    return svc->upgrade_refuse ? GH_REASON_UPGRADE_REFUSED : GH_REASON_NONE;
}

enum gh_reason proxy__upgrade_response(const struct proxy_conn *c, const char *head,
                                       const struct http1_msg *m)
{
    if (c->upgrade != PROXY_UPGRADE_WEBSOCKET || !(m->flags & HTTP1_F_UPGRADE) ||
        (m->flags & HTTP1_F_WS_DUP) || !is_websocket(head, m->upgrade) ||
        m->ws_accept.len != 28 || memcmp(head + m->ws_accept.off, c->ws_accept, 28) != 0)
        return GH_REASON_UPSTREAM_BAD_UPGRADE;
    return GH_REASON_NONE;
}
