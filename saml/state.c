/*
 * The shared-store records of the SP: outstanding requests (used once; a
 * marker remembers a used one so a second response to it is told apart from
 * an unknown one), the assertion replay cache, and sessions. Keys are short
 * binary strings: a type byte then raw ID bytes or a SHA-256. They go
 * through store/ (blocking calls: the SP runs on the applications'
 * threads), so several appliances sharing a Redis share them; when the
 * store does not answer, every check fails closed (-3: the caller answers
 * 503, never accepts unchecked).
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../common/common.h"
#include "../store/store.h"
#include "saml_int.h"
#include "state.h"

#define USED_TTL_MS (60 * 60 * 1000)

static int id_key(char type, const char *id, unsigned char key[21])
{
    size_t i;

    if (strlen(id) != 41 || id[0] != '_')
        return -1;
    key[0] = (unsigned char)type;
    for (i = 0; i < 20; i++) {
        int hi = gh_hexval((unsigned char)id[1 + 2 * i]), lo = gh_hexval((unsigned char)id[2 + 2 * i]);
        if (hi < 0 || lo < 0)
            return -1;
        key[1 + i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int saml__request_put(const char *id, const struct saml__request *rq)
{
    unsigned char key[21];

    if (id_key('q', id, key) == -1)
        return -1;
    return store_sync_set(key, sizeof(key), rq, sizeof(*rq), SAML_REQUEST_TTL_MS, STORE_NX) ==
                   STORE_OK
               ? 0
               : -1;
}

static int request_get(const char *id, struct saml__request *rq, int take)
{
    unsigned char key[21], used[21];
    char mark = 1;
    size_t n = 0;
    enum store_status st;

    if (id_key('q', id, key) == -1)
        return -1;
    memcpy(used, key, sizeof(used));
    used[0] = 'u';
    st = store_sync_get(key, sizeof(key), rq, sizeof(*rq), &n, NULL, take);
    if (st == STORE_ABSENT) {
        st = store_sync_get(used, sizeof(used), &mark, 1, &n, NULL, 0);
        return st == STORE_OK ? -2 : st == STORE_ABSENT ? -1 : -3;
    }
    if (st != STORE_OK)
        return -3;
    if (n != sizeof(*rq))
        return -1;
    rq->uuid[sizeof(rq->uuid) - 1] = '\0';
    rq->relay[sizeof(rq->relay) - 1] = '\0';
    if (take) /* a lost marker only makes a later reuse say "unknown" */
        store_sync_set(used, sizeof(used), &mark, 1, USED_TTL_MS, 0);
    return 0;
}

int saml__request_take(const char *id, struct saml__request *rq)
{
    return request_get(id, rq, 1);
}

int saml__request_peek(const char *id, struct saml__request *rq)
{
    return request_get(id, rq, 0);
}

void saml__binding_digest(const char *binding, unsigned char out[32])
{
    unsigned int n = 32;

    EVP_Digest(binding, strlen(binding), out, &n, EVP_sha256(), NULL);
}

static int replay_key(const char *uuid, const char *assertion_id, unsigned char key[33])
{
    unsigned int n = 32;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int ok;

    key[0] = 'a';
    ok = m != NULL && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(m, uuid, strlen(uuid) + 1) == 1 &&
         EVP_DigestUpdate(m, assertion_id, strlen(assertion_id)) == 1 &&
         EVP_DigestFinal_ex(m, key + 1, &n) == 1;
    EVP_MD_CTX_free(m);
    return ok ? 0 : -1;
}

int saml__replay_seen(const char *uuid, const char *assertion_id)
{
    unsigned char key[33];
    char one;

    if (replay_key(uuid, assertion_id, key) == -1)
        return -3; /* fail closed */
    switch (store_sync_get(key, sizeof(key), &one, 1, NULL, NULL, 0)) {
    case STORE_OK:
        return 1;
    case STORE_ABSENT:
        return 0;
    default:
        return -3;
    }
}

int saml__replay_mark(const char *uuid, const char *assertion_id, int64_t expires)
{
    unsigned char key[1 + 32];
    int64_t ttl = (expires - (int64_t)time(NULL)) * 1000;
    char one = 1;

    if (replay_key(uuid, assertion_id, key) == -1)
        return -3; /* fail closed */
    if (ttl < 60000)
        ttl = 60000;
    /* Durable: a failover may not forget a mark it acknowledged, or the
     * response could be replayed at the next primary. */
    switch (store_sync_set(key, sizeof(key), &one, 1, ttl, STORE_NX | STORE_DURABLE)) {
    case STORE_OK:
        return 1;
    case STORE_EXISTS:
        return 0;
    default:
        return -3;
    }
}

static int session_key(const char *id, unsigned char key[33])
{
    size_t i;

    if (strlen(id) != SAML_SESSION_ID_HEX)
        return -1;
    key[0] = 's';
    for (i = 0; i < 32; i++) {
        int hi = gh_hexval((unsigned char)id[2 * i]), lo = gh_hexval((unsigned char)id[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        key[1 + i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int saml_session_create(const struct saml_result *r, char id[SAML_SESSION_ID_HEX + 1])
{
    unsigned char raw[32], key[33];
    struct saml_session s;
    int64_t now = (int64_t)time(NULL);
    size_t i;

    if (r->expires <= now || RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    for (i = 0; i < sizeof(raw); i++)
        snprintf(id + 2 * i, 3, "%02x", raw[i]);
    memset(&s, 0, sizeof(s));
    gh_strlcpy(s.name_id, r->name_id, sizeof(s.name_id));
    gh_strlcpy(s.display_name, r->display_name, sizeof(s.display_name));
    s.name_from_idp = r->name_from_idp;
    gh_strlcpy(s.idp_uuid, r->idp_uuid, sizeof(s.idp_uuid));
    s.expires = r->expires;
    session_key(id, key);
    gh_wipe(raw, sizeof(raw));
    return store_sync_set(key, sizeof(key), &s, sizeof(s), (r->expires - now) * 1000, STORE_NX) ==
                   STORE_OK
               ? 0
               : -1;
}

int saml_session_get(const char *id, struct saml_session *s)
{
    unsigned char key[33];
    size_t n = 0;
    enum store_status st;

    if (session_key(id, key) == -1)
        return -1;
    st = store_sync_get(key, sizeof(key), s, sizeof(*s), &n, NULL, 0);
    if (st != STORE_OK && st != STORE_ABSENT) {
        if (saml__cache_get(key, s) == -1)
            return -2;
        return s->expires > (int64_t)time(NULL) ? 0 : -1;
    }
    if (st != STORE_OK || n != sizeof(*s)) {
        saml__cache_drop(key); /* ended elsewhere */
        return -1;
    }
    s->name_id[sizeof(s->name_id) - 1] = '\0';
    s->display_name[sizeof(s->display_name) - 1] = '\0';
    s->idp_uuid[sizeof(s->idp_uuid) - 1] = '\0';
    if (s->expires <= (int64_t)time(NULL))
        return -1;
    saml__cache_put(key, s);
    return 0;
}

int saml_session_set_name(const char *id, const char *name)
{
    unsigned char key[33];
    struct saml_session s;
    int64_t left = 0;
    size_t n = 0;

    if (session_key(id, key) == -1 ||
        store_sync_get(key, sizeof(key), &s, sizeof(s), &n, &left, 0) != STORE_OK ||
        n != sizeof(s) || left <= 0)
        return -1;
    if (s.name_from_idp || name[0] == '\0' || strlen(name) >= sizeof(s.display_name))
        return -1;
    gh_strlcpy(s.display_name, name, sizeof(s.display_name));
    if (store_sync_set(key, sizeof(key), &s, sizeof(s), left, STORE_XX) != STORE_OK)
        return -1; /* ended meanwhile (or the store is away): not brought back */
    saml__cache_put(key, &s);
    return 0;
}

int saml_session_end(const char *id)
{
    unsigned char key[33];
    enum store_status st;

    if (session_key(id, key) == -1)
        return 0;
    saml__cache_drop(key);
    st = store_sync_del(key, sizeof(key));
    return st == STORE_OK || st == STORE_ABSENT ? 0 : -1;
}
