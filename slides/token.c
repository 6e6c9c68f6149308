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
#include "../store/store.h"
#include "slides_int.h"

static int token_key(const char *tok, unsigned char key[17])
{
    size_t i;

    if (strlen(tok) != SLIDES_TOKEN_HEX)
        return -1;
    key[0] = 'j';
    for (i = 0; i < 32; i++)
        if (tok[i] >= 'A' && tok[i] <= 'F')
            return -1; /* one spelling per token: lower-case, as issued */
    for (i = 0; i < 16; i++) {
        int hi = gh_hexval((unsigned char)tok[2 * i]), lo = gh_hexval((unsigned char)tok[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        key[1 + i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int slides_token_issue(const struct slides_token *t, int64_t ttl_ms,
                       char out[SLIDES_TOKEN_HEX + 1])
{
    unsigned char raw[16], key[17];
    struct slides_token v = *t;
    size_t i;

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    for (i = 0; i < sizeof(raw); i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
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
    unsigned char key[17];
    size_t n = 0;

    if (token_key(tok, key) == -1 ||
        store_sync_get(key, sizeof(key), t, sizeof(*t), &n, NULL, 0) != STORE_OK ||
        n != sizeof(*t))
        return -1;
    t->name[sizeof(t->name) - 1] = '\0';
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
    unsigned char d[32];
    char buf[64];
    unsigned int n = sizeof(d);
    int len = snprintf(buf, sizeof(buf), "gatehouse participant:%.32s", tok);

    /* A domain-separated digest: the id cannot be turned back into the
     * token, nor matched against digests made for anything else. */
    EVP_Digest(buf, (size_t)len, d, &n, EVP_sha256(), NULL);
    gh_wipe(buf, sizeof(buf));
    gh_hex(d, 16, id);
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
