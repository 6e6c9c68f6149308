/*
 * Admin sessions in the shared store: 256 random bits (a fresh id at every
 * login), an idle timeout of 15 minutes and an absolute one of 8 hours, and
 * a CSRF token per session that every state-changing request must carry.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../common/common.h"
#include "../store/store.h"
#include "webui_int.h"

/* Which sessions exist, for admins to list and end: the store itself
 * cannot list. Entries whose session has gone from the store are dropped
 * when met. A session is shown by a handle (a hash of its id), never by
 * the id, which is a credential. */
#define REGISTRY 1024
static struct {
    char id[65];
    char user[64];
    int64_t created;
} registry[REGISTRY];
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;

static void handle_of(const char *id, char out[17])
{
    webui__sha256_hex(id, strlen(id), 8, out);
}

static int key_of(const char *id, unsigned char key[33])
{
    size_t i;

    if (strlen(id) != 64 || strspn(id, "0123456789abcdef") != 64)
        return -1;
    key[0] = 'A';
    for (i = 0; i < 32; i++)
        key[1 + i] = (unsigned char)(gh_hexval((unsigned char)id[2 * i]) << 4 |
                                     gh_hexval((unsigned char)id[2 * i + 1]));
    return 0;
}

static void rand_hex(char *out, size_t bytes)
{
    unsigned char b[32];
    size_t i;

    if (RAND_bytes(b, (int)bytes) != 1)
        abort();
    for (i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    gh_wipe(b, sizeof(b));
}

/* 0 and s filled, -1 no such session, -2 the store did not answer. */
static int get_rec(const unsigned char key[33], struct webui_session *s)
{
    size_t n = 0;

    switch (store_sync_get(key, 33, s, sizeof(*s), &n, NULL, 0)) {
    case STORE_OK:
        return n == sizeof(*s) ? 0 : -1;
    case STORE_ABSENT:
        return -1;
    default:
        return -2;
    }
}

int webui_session_new(const struct webui_user *usr, int64_t now, char id[65],
                      struct webui_session *s)
{
    unsigned char key[33];

    memset(s, 0, sizeof(*s));
    gh_strlcpy(s->user, usr->name, sizeof(s->user));
    s->role = usr->role;
    rand_hex(s->csrf, 32);
    s->created = s->last_seen = now;
    rand_hex(id, 32);
    key_of(id, key);
    if (store_sync_set(key, sizeof(key), s, sizeof(*s), webui_policy().idle * 1000LL, STORE_NX) !=
        STORE_OK)
        return -1;
    {
        int i, slot = -1;
        struct webui_session tmp;
        unsigned char k2[33];
        pthread_mutex_lock(&reg_mu);
        for (i = 0; i < REGISTRY && slot == -1; i++)
            if (registry[i].id[0] == '\0' ||
                (key_of(registry[i].id, k2) == 0 &&
                 store_sync_get(k2, sizeof(k2), &tmp, sizeof(tmp), NULL, NULL, 0) ==
                     STORE_ABSENT))
                slot = i;
        if (slot != -1) {
            gh_strlcpy(registry[slot].id, id, sizeof(registry[slot].id));
            gh_strlcpy(registry[slot].user, usr->name, sizeof(registry[slot].user));
            registry[slot].created = now;
        }
        pthread_mutex_unlock(&reg_mu);
    }
    return 0;
}

int webui_session_list(void (*fn)(const char *handle, const struct webui_session *s, void *arg),
                       void *arg)
{
    int i, n = 0;

    pthread_mutex_lock(&reg_mu);
    for (i = 0; i < REGISTRY; i++) {
        unsigned char key[33];
        struct webui_session s;
        char h[17];
        if (registry[i].id[0] == '\0' || key_of(registry[i].id, key) == -1)
            continue;
        switch (get_rec(key, &s)) {
        case 0:
            break;
        case -1:
            gh_wipe(&registry[i], sizeof(registry[i]));
            continue;
        default:
            continue; /* the store did not answer: keep it listed next time */
        }
        handle_of(registry[i].id, h);
        fn(h, &s, arg);
        n++;
    }
    pthread_mutex_unlock(&reg_mu);
    return n;
}

int webui_session_end_handle(const char *handle)
{
    int i, found = -1;

    pthread_mutex_lock(&reg_mu);
    for (i = 0; i < REGISTRY; i++) {
        char h[17];
        unsigned char key[33];
        if (registry[i].id[0] == '\0')
            continue;
        handle_of(registry[i].id, h);
        if (strcmp(h, handle) == 0 && key_of(registry[i].id, key) == 0) {
            enum store_status st = store_sync_del(key, sizeof(key));
            if (st != STORE_OK && st != STORE_ABSENT) {
                found = -2; /* kept listed: the admin may try again */
                continue;
            }
            gh_wipe(&registry[i], sizeof(registry[i]));
            found = 0;
        }
    }
    pthread_mutex_unlock(&reg_mu);
    return found;
}

static pthread_mutex_t policy_mu = PTHREAD_MUTEX_INITIALIZER;
static struct webui_policy policy = {WEBUI_IDLE_SECONDS, WEBUI_ABSOLUTE_SECONDS,
                                     WEBUI_LOCK_SECONDS, WEBUI_MAX_FAILURES};

void webui_set_policy(const struct webui_policy *p)
{
    pthread_mutex_lock(&policy_mu);
    policy = *p;
    pthread_mutex_unlock(&policy_mu);
}

struct webui_policy webui_policy(void)
{
    struct webui_policy p;

    pthread_mutex_lock(&policy_mu);
    p = policy;
    pthread_mutex_unlock(&policy_mu);
    return p;
}

int webui_session_get(const char *id, int64_t now, int activity, struct webui_session *s)
{
    unsigned char key[33];
    struct webui_policy p = webui_policy();
    int64_t left;

    int rc;

    if (key_of(id, key) == -1)
        return -1;
    rc = get_rec(key, s);
    if (rc != 0)
        return rc; /* none (-1), or the store did not answer (-2): not signed in */
    if (now - s->last_seen >= p.idle || now - s->created >= p.lifetime) {
        store_sync_del(key, sizeof(key));
        return -1;
    }
    if (!activity)
        return 0;
    s->last_seen = now;
    left = p.lifetime - (now - s->created);
    if (left > p.idle)
        left = p.idle;
    /* Only while it exists: a logout or an admin's "end" that lands
     * between the read above and this write stays done. */
    if (store_sync_set(key, sizeof(key), s, sizeof(*s), left * 1000, STORE_XX) == STORE_ABSENT)
        return -1;
    return 0;
}

int webui_session_end(const char *id)
{
    unsigned char key[33];
    enum store_status st;

    if (key_of(id, key) == -1)
        return 0;
    st = store_sync_del(key, sizeof(key));
    return st == STORE_OK || st == STORE_ABSENT ? 0 : -1;
}

int webui_csrf_ok(const struct webui_session *s, const char *presented)
{
    return presented != NULL && strlen(presented) == 64 &&
           CRYPTO_memcmp(presented, s->csrf, 64) == 0;
}
