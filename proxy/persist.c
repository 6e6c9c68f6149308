/*
 * Persistence: keep a client on the real server it started with, for
 * `timeout` after its last request (the seeds' 20 minutes).
 *
 * source-ip: the client address (masked: /24 keeps a NATed office together)
 * maps to the server in the shared key-value store, so every worker agrees.
 *
 * cookie: the proxy inserts NAME=EXPIRY.MAC where MAC is an HMAC-SHA256
 * (truncated to 96 bits) over the server's identity, the expiry and the
 * service. The cookie names no address and cannot be forged to pick a
 * server; a cookie for a server that is down, in maintenance or gone is
 * ignored, the client is balanced again and gets a cookie for its new
 * server. The keys come from persist_key.c: kept in the state folder, so a
 * cookie survives restarts and reloads, and rotated. A cookie signed with
 * the previous key still holds and is re-issued under the current one, so
 * clients move on before that key is dropped.
 *
 * A server in drain keeps its persistent clients; maint and down do not.
 */
#include "proxy_int.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include "../common/kv.h"

uint64_t proxy__server_id(const char *key)
{
    return gh_fnv1a(key, strlen(key));
}

/* A server a client may stay with: not in maint, up, and not held back
 * after a failed connect (its clients go elsewhere, and are re-pinned). */
static int usable(const struct proxy_server *s)
{
    return s->admin != 2 && atomic_load(&s->st->up) && atomic_load(&s->fail_until) <= gh_now_ms();
}

/* Eight hex digits, as the cookie writes its expiry; -1 for anything else. */
static int parse_expiry(const char *v, unsigned long *out)
{
    unsigned long x = 0;
    int i, h;

    for (i = 0; i < 8; i++) {
        if ((h = gh_hexval((unsigned char)v[i])) < 0)
            return -1;
        x = x * 16 + (unsigned long)h;
    }
    *out = x;
    return 0;
}

/* source-ip key: type, service scope, family, masked address. A client is
 * an address (the real client behind a trusted proxy, or a UDP datagram's
 * source), so HTTP connections and mode udp flows share this one key. */
size_t proxy__persist_source_key(const struct proxy_service *svc,
                                 const struct sockaddr_storage *ss, unsigned char *k)
{
    long bits = (long)svc->conf->persist_mask;
    size_t alen = ss->ss_family == AF_INET ? 4 : 16, i;
    const unsigned char *a = ss->ss_family == AF_INET
                                 ? (const unsigned char *)&((const struct sockaddr_in *)ss)->sin_addr
                                 : (const unsigned char *)&((const struct sockaddr_in6 *)ss)->sin6_addr;

    if (bits == 0)
        bits = ss->ss_family == AF_INET ? 32 : 64;
    if (bits > (long)alen * 8)
        bits = (long)alen * 8;
    memset(k, 0, PROXY_PERSIST_SKEY);
    k[0] = 'p';
    memcpy(k + 1, &svc->scope, 4);
    k[5] = (unsigned char)ss->ss_family;
    for (i = 0; i < alen; i++) {
        long keep = bits - (long)i * 8;
        unsigned char m = keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
        k[6 + i] = a[i] & m;
    }
    return PROXY_PERSIST_SKEY;
}

/* Each worker keeps one HMAC context per key, re-keyed only when the keys
 * change: OpenSSL 3's one-shot HMAC() fetches the algorithm on every call,
 * which cost a quarter of the throughput when every response carries a
 * cookie. */
static __thread struct {
    uint64_t version;    /* of the keys the contexts hold; 0: none */
    int n;               /* contexts keyed: 1, or 2 with the previous key */
    EVP_MAC_CTX *ctx[2]; /* owned: [0] the current key, [1] the previous */
} tk;

void proxy__persist_thread_fini(void)
{
    EVP_MAC_CTX_free(tk.ctx[0]); /* each clears its copy of the key */
    EVP_MAC_CTX_free(tk.ctx[1]);
    memset(&tk, 0, sizeof(tk));
}

static int rekey(EVP_MAC_CTX **ctx, const unsigned char *key)
{
    OSSL_PARAM params[2];

    if (*ctx == NULL) {
        EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (m == NULL)
            return -1;
        *ctx = EVP_MAC_CTX_new(m);
        EVP_MAC_free(m);
        if (*ctx == NULL)
            return -1;
    }
    params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)(uintptr_t) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    return EVP_MAC_init(*ctx, key, PROXY_PERSIST_KEY_LEN, params) == 1 ? 0 : -1;
}

/* The number of keys this thread can use (0: none, or OpenSSL failed and
 * the next call tries again); follows the installed keys: an atomic load
 * per call, a copy and a re-key after each rotation or reload. */
static int keys_ready(void)
{
    struct proxy_persist_keyset ks;
    uint64_t v = proxy__persist_keys_version();

    if (v == tk.version)
        return tk.n;
    v = proxy__persist_keys_get(&ks);
    tk.n = 0;
    if (v != 0 && rekey(&tk.ctx[0], ks.cur.k) == 0) {
        tk.n = 1;
        if (ks.have_prev && rekey(&tk.ctx[1], ks.prev.k) == 0)
            tk.n = 2;
    }
    tk.version = tk.n ? v : 0;
    OPENSSL_cleanse(&ks, sizeof(ks));
    return tk.n;
}

/* The cookie MAC of server s under ctx, as 24 hex digits: 0, or -1 when
 * OpenSSL failed (then nothing matches: a MAC of zeros must not). */
static int mac(EVP_MAC_CTX *ctx, const struct proxy_conn *c, const struct proxy_server *s,
               const char *expiry, char out[25])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE], msg[PROXY_KEY_LEN + 128];
    size_t mdlen = 0;
    int n = snprintf((char *)msg, sizeof(msg), "%s|%s|%s", s->key, expiry, c->svc->conf->name);
    int i;

    /* A NULL key re-initialises with the key already set: no allocation. */
    if (n < 0 || (size_t)n >= sizeof(msg) || EVP_MAC_init(ctx, NULL, 0, NULL) != 1 ||
        EVP_MAC_update(ctx, msg, (size_t)n) != 1 ||
        EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) != 1 || mdlen < 12)
        return -1;
    for (i = 0; i < 12; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[24] = '\0';
    return 0;
}

/* The value of cookie name in the request, or NULL. */
static const char *find_cookie(const char *head, const struct http1_msg *m, const char *name,
                               size_t *vlen)
{
    size_t nl = strlen(name);
    unsigned i;

    for (i = 0; i < m->nhdrs; i++) {
        const char *v = head + m->hdrs[i].value.off, *end = v + m->hdrs[i].value.len;
        if (!gh_strncaseeq(head + m->hdrs[i].name.off, m->hdrs[i].name.len, "cookie"))
            continue;
        while (v < end) {
            const char *semi = memchr(v, ';', (size_t)(end - v)), *e = semi ? semi : end;
            while (v < e && *v == ' ')
                v++;
            if ((size_t)(e - v) > nl && memcmp(v, name, nl) == 0 && v[nl] == '=') {
                *vlen = (size_t)(e - v - (long)nl - 1);
                return v + nl + 1;
            }
            v = semi ? semi + 1 : end;
        }
    }
    return NULL;
}

/* source-ip through a shared store: the server its answer names, if
 * usable. Otherwise (no entry yet, its server unusable, or the store away)
 * the rendezvous choice on the same key: a client's parallel first
 * requests, on any worker of any appliance that sees the same servers up,
 * go to one server before any entry is written, and a client placed so
 * stays where it is while the store is away. */
static struct proxy_server *shared_find(struct proxy_conn *c)
{
    struct proxy_service *svc = c->svc;
    struct proxy_server *s = c->ask_away ? NULL : proxy__persist_server_by_id(svc, c->ask_server);
    unsigned char k[PROXY_PERSIST_SKEY];

    if (s != NULL)
        return s;
    return proxy__pick_rendezvous(svc, NULL, k, proxy__persist_source_key(svc, &c->client_ss, k),
                                  c->w->now_ms);
}

struct proxy_server *proxy__persist_server_by_id(struct proxy_service *svc, int64_t id)
{
    size_t i;

    for (i = 0; id != 0 && i < svc->nservers; i++)
        if ((int64_t)svc->servers[i].id == id && usable(&svc->servers[i]))
            return &svc->servers[i];
    return NULL;
}

struct proxy_server *proxy__persist_find(struct proxy_conn *c, const char *head,
                                         const struct http1_msg *m)
{
    const struct gh_conf_service *cf = c->svc->conf;
    size_t i;

    c->persist_fresh = 0;
    c->persist_srv = NULL;
    if (cf->persistence[0] == 's' && c->req_shared)
        return shared_find(c);
    if (cf->persistence[0] == 's')
        return proxy__persist_source_l4(c->svc, &c->client_ss, c->w->now_ms);
    if (cf->persistence[0] == 'c') {
        const char *v;
        size_t vl;
        char expiry[16], want[25];
        unsigned long exp;
        int nk, k;
        v = find_cookie(head, m, cf->cookie_name, &vl);
        if (v == NULL || vl != 8 + 1 + 24 || v[8] != '.' || (nk = keys_ready()) == 0)
            return NULL;
        memcpy(expiry, v, 8);
        expiry[8] = '\0';
        if (parse_expiry(expiry, &exp) == -1 || (time_t)exp < time(NULL))
            return NULL;
        for (k = 0; k < nk; k++)
            for (i = 0; i < c->svc->nservers; i++) {
                if (mac(tk.ctx[k], c, &c->svc->servers[i], expiry, want) == -1 ||
                    CRYPTO_memcmp(want, v + 9, 24) != 0)
                    continue;
                if (!usable(&c->svc->servers[i]))
                    return NULL;
                /* refresh the cookie once half its life has passed, and at
                 * once when the previous key signed it */
                c->persist_fresh = k == 0 && (time_t)exp - time(NULL) >
                                                 (time_t)(cf->persist_timeout / 2000);
                c->persist_srv = &c->svc->servers[i];
                return &c->svc->servers[i];
            }
    }
    return NULL;
}

struct proxy_server *proxy__persist_source_l4(struct proxy_service *svc,
                                              const struct sockaddr_storage *ss, uint64_t now)
{
    unsigned char k[PROXY_PERSIST_SKEY];
    struct proxy_server *s = proxy__persist_source_find(svc, ss);

    if (s != NULL || !proxy__cluster())
        return s;
    return proxy__pick_rendezvous(svc, NULL, k, proxy__persist_source_key(svc, ss, k), now);
}

static enum gh_kv_op remember_fn(int64_t v[2], int exists, void *arg)
{
    (void)exists;
    v[0] = *(int64_t *)arg;
    return GH_KV_STORE;
}

struct proxy_server *proxy__persist_source_find(struct proxy_service *svc,
                                                const struct sockaddr_storage *ss)
{
    unsigned char k[PROXY_PERSIST_SKEY];
    int64_t id;
    size_t i;

    if (gh_kv_get(k, proxy__persist_source_key(svc, ss, k), &id) == 0)
        for (i = 0; i < svc->nservers; i++)
            if ((int64_t)svc->servers[i].id == id && usable(&svc->servers[i]))
                return &svc->servers[i];
    return NULL;
}

void proxy__persist_source_remember(struct proxy_service *svc, const struct sockaddr_storage *ss,
                                    const struct proxy_server *srv)
{
    unsigned char k[PROXY_PERSIST_SKEY];
    int64_t id = (int64_t)srv->id;

    gh_kv_update(k, proxy__persist_source_key(svc, ss, k), svc->conf->persist_timeout, remember_fn, &id);
}

void proxy__persist_remember(struct proxy_conn *c)
{
    unsigned char k[PROXY_PERSIST_SKEY];

    if (c->svc->conf->persistence[0] != 's' || c->srv == NULL)
        return;
    if (c->req_shared)
        proxy__shared_remember(c, c->srv, k, proxy__persist_source_key(c->svc, &c->client_ss, k));
    else
        proxy__persist_source_remember(c->svc, &c->client_ss, c->srv);
}

int proxy__persist_set_cookie(struct proxy_conn *c, char *out, size_t outlen)
{
    const struct gh_conf_service *cf = c->svc->conf;
    char expiry[16], m[25];
    long ttl = (long)(cf->persist_timeout / 1000);

    /* A fresh cookie for the server that answered stays as it is; one that
     * named another (a failover) is replaced: the client is re-pinned. */
    if (cf->persistence[0] != 'c' || (c->persist_fresh && c->srv == c->persist_srv) ||
        c->srv == NULL || c->srv->st == NULL)
        return 0;
    if (keys_ready() == 0)
        return 0;
    snprintf(expiry, sizeof(expiry), "%08lx", (unsigned long)(time(NULL) + ttl) & 0xffffffffUL);
    if (mac(tk.ctx[0], c, c->srv, expiry, m) == -1)
        return 0;
    return snprintf(out, outlen, "Set-Cookie: %s=%s.%s; Path=/; Max-Age=%ld; HttpOnly; "
                                 "SameSite=Lax%s\r\n",
                    cf->cookie_name, expiry, m, ttl, c->svc->tls ? "; Secure" : "");
}
