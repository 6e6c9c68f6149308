/*
 * The sessions this appliance verified lately, for when the shared store
 * does not answer: a participant seen within `session-cache` (default 30 s)
 * keeps being served from here, so a Redis failover does not sign everyone
 * out; anyone else gets 503. The window is also the longest a logout made
 * on another appliance can go unseen here while the store is away, which
 * is why it is short. Direct-mapped by the session ID (random): a
 * collision only forgets an entry. Allocated at first use, wiped on drop.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "state.h"

#define SLOTS 4096

struct slot {
    unsigned char key[33];
    int used;
    uint64_t verified_ms;
    struct saml_session s;
};

static struct slot *slots;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int64_t window_ms = 30000;

void saml_session_cache_set(int64_t ms)
{
    atomic_store(&window_ms, ms);
}

static struct slot *slot_of(const unsigned char key[33])
{
    uint32_t i;

    memcpy(&i, key + 1, sizeof(i));
    return &slots[i % SLOTS];
}

void saml__cache_put(const unsigned char key[33], const struct saml_session *s)
{
    struct slot *e;

    if (atomic_load(&window_ms) == 0)
        return;
    pthread_mutex_lock(&mu);
    if (slots == NULL)
        slots = gh_calloc(SLOTS, sizeof(*slots));
    e = slot_of(key);
    memcpy(e->key, key, sizeof(e->key));
    e->s = *s;
    e->used = 1;
    e->verified_ms = gh_now_ms();
    pthread_mutex_unlock(&mu);
}

int saml__cache_get(const unsigned char key[33], struct saml_session *s)
{
    uint64_t now = gh_now_ms();
    int64_t w = atomic_load(&window_ms);
    int hit = 0;
    struct slot *e;

    pthread_mutex_lock(&mu);
    if (slots != NULL) {
        e = slot_of(key);
        if (e->used && memcmp(e->key, key, sizeof(e->key)) == 0 &&
            now - e->verified_ms < (uint64_t)w) {
            *s = e->s;
            hit = 1;
        }
    }
    pthread_mutex_unlock(&mu);
    return hit ? 0 : -1;
}

void saml__cache_drop(const unsigned char key[33])
{
    struct slot *e;

    pthread_mutex_lock(&mu);
    if (slots != NULL) {
        e = slot_of(key);
        if (e->used && memcmp(e->key, key, sizeof(e->key)) == 0)
            gh_wipe(e, sizeof(*e));
    }
    pthread_mutex_unlock(&mu);
}
