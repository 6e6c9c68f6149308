/*
 * Join tokens (the seeds' call sequence, steps 4-6): 128 random bits,
 * handed to a participant once the join decision lets them in, kept in the
 * shared key-value store with the meeting, its epoch, the role and the
 * display name. A token dies when it expires, when the participant leaves
 * (revoked), or when the meeting ends (the epoch moves on). Tokens and the
 * Host marks go through store/ (shared by the appliances of a cluster; a
 * token is answered only once replicas have it); a store that does not
 * answer makes every token check fail (closed). The PIN back-off
 * generation stays in this process's tables for now.
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../common/common.h"
#include "../common/join_token.h"
#include "../store/store.h"
#include "slides_int.h"

/* Longer than any token lives (join-token-timeout is at most a day). */
#define EPOCH_MARK_TTL_MS (2LL * 86400 * 1000)

static int token_key(const char *tok, unsigned char key[GH_JOIN_KEY_LEN])
{
    return gh_join_key(tok, strlen(tok), key);
}

int slides_token_issue(const struct slides_token *t, int64_t ttl_ms,
                       char out[SLIDES_TOKEN_HEX + 1])
{
    unsigned char raw[16], key[GH_JOIN_KEY_LEN];
    struct gh_join_record v;
    size_t i;

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    for (i = 0; i < sizeof(raw); i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    memset(&v, 0, sizeof(v));
    v.meeting = t->meeting;
    v.epoch = t->epoch;
    v.role = (int32_t)t->role;
    v.name_fixed = t->name_fixed;
    snprintf(v.name, sizeof(v.name), "%s", t->name);
    v.expires = (int64_t)time(NULL) + ttl_ms / 1000;
    token_key(out, key);
    return store_sync_set(key, sizeof(key), &v, sizeof(v), ttl_ms, STORE_NX | STORE_DURABLE) ==
                   STORE_OK
               ? 0
               : -1;
}

/* A Host made this token's holder a Host (slides_token_promote): the mark
 * is kept beside the token, under its participant id, since the Host does
 * not hold the token. */
static int promoted(const char *tok)
{
    unsigned char key[17] = {'U'};
    char pid[33], mark;

    slides_token_participant(tok, pid);
    return gh_unhex(pid, key + 1, 16) == 0 &&
           store_sync_get(key, sizeof(key), &mark, 1, NULL, NULL, 0) == STORE_OK;
}

int slides_token_promote(const char *participant, int64_t ttl_ms)
{
    unsigned char key[17] = {'U'};
    char mark = 1;

    if (gh_unhex(participant, key + 1, 16) == -1)
        return -1;
    return store_sync_set(key, sizeof(key), &mark, 1, ttl_ms, STORE_DURABLE) == STORE_OK ? 0 : -1;
}

int slides_token_check(struct slides_store *st, const char *tok, struct slides_token *t,
                       struct slides_meeting *m)
{
    unsigned char key[GH_JOIN_KEY_LEN];
    struct gh_join_record v;
    size_t n = 0;

    if (token_key(tok, key) == -1 ||
        store_sync_get(key, sizeof(key), &v, sizeof(v), &n, NULL, 0) != STORE_OK ||
        n != sizeof(v))
        return -1;
    memset(t, 0, sizeof(*t));
    t->meeting = v.meeting;
    t->epoch = v.epoch;
    t->role = v.role == SLIDES_HOST ? SLIDES_HOST : v.role == SLIDES_GUEST ? SLIDES_GUEST
                                                                           : SLIDES_NO_ROLE;
    t->name_fixed = v.name_fixed != 0;
    v.name[sizeof(v.name) - 1] = '\0';
    snprintf(t->name, sizeof(t->name), "%s", v.name);
    t->expires = v.expires;
    if (t->expires <= (int64_t)time(NULL) || slides_meeting_by_id(st, t->meeting, m) == -1)
        return -1;
    if (m->epoch != t->epoch)
        return m->ended != 0 ? SLIDES_ENDED : -1;
    if (t->role == SLIDES_GUEST && promoted(tok))
        t->role = SLIDES_HOST;
    return 0;
}

int slides_token_revoke(const char *tok)
{
    unsigned char key[17];
    enum store_status st;

    if (token_key(tok, key) == -1)
        return 0;
    st = store_sync_del(key, sizeof(key));
    return st == STORE_OK || st == STORE_ABSENT ? 0 : -1;
}

void slides_token_participant(const char *tok, char id[33])
{
    gh_join_participant(tok, id);
}

void slides_token_epoch_mark(int64_t meeting, int64_t epoch, int state)
{
    unsigned char key[GH_MEETING_EPOCH_KEY_LEN];
    int64_t v = state;

    gh_meeting_epoch_key(meeting, epoch, key);
    if (store_sync_set(key, sizeof(key), &v, sizeof(v), EPOCH_MARK_TTL_MS, STORE_DURABLE) !=
        STORE_OK)
        gh_log_warn("meeting %lld: the end of its epoch is not in the shared store: an edge "
                    "with validate-join-token lets its old tokens through to the conference "
                    "service, which refuses them", (long long)meeting);
}

/* The generation is part of every PIN back-off key: moving it on forgets
 * every source's count at once, without finding them. */
#define GENERATION_TTL_MS (366LL * 86400 * 1000)

static void generation_key(int64_t meeting, unsigned char g[9])
{
    g[0] = 'G';
    memcpy(g + 1, &meeting, 8);
}

int64_t slides_pin_generation(int64_t meeting)
{
    unsigned char g[9];
    int64_t gen = 0;

    generation_key(meeting, g);
    store_sync_incr(g, sizeof(g), 0, GENERATION_TTL_MS, &gen, NULL);
    return gen;
}

void slides_pin_backoff_reset(int64_t meeting)
{
    unsigned char g[9];
    int64_t gen;

    generation_key(meeting, g);
    store_sync_incr(g, sizeof(g), 1, GENERATION_TTL_MS, &gen, NULL);
}
