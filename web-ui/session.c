/*
 * Admin sessions in the shared store: 256 random bits (a fresh id at every
 * login), an idle timeout of 15 minutes and an absolute one of 8 hours, and
 * a CSRF token per session that every state-changing request must carry.
 */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "../common/common.h"
#include "../common/kv.h"
#include "webui.h"

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
    return gh_kv_rec_put(key, sizeof(key), s, sizeof(*s), WEBUI_IDLE_SECONDS * 1000LL, 1) == 1
               ? 0
               : -1;
}

int webui_session_get(const char *id, int64_t now, struct webui_session *s)
{
    unsigned char key[33];
    int64_t left;

    if (key_of(id, key) == -1 ||
        gh_kv_rec_get(key, sizeof(key), s, sizeof(*s), 0, NULL) != (long)sizeof(*s))
        return -1;
    if (now - s->last_seen >= WEBUI_IDLE_SECONDS || now - s->created >= WEBUI_ABSOLUTE_SECONDS) {
        gh_kv_rec_del(key, sizeof(key));
        return -1;
    }
    s->last_seen = now;
    left = WEBUI_ABSOLUTE_SECONDS - (now - s->created);
    if (left > WEBUI_IDLE_SECONDS)
        left = WEBUI_IDLE_SECONDS;
    gh_kv_rec_put(key, sizeof(key), s, sizeof(*s), left * 1000, 0);
    return 0;
}

void webui_session_end(const char *id)
{
    unsigned char key[33];

    if (key_of(id, key) == 0)
        gh_kv_rec_del(key, sizeof(key));
}

int webui_csrf_ok(const struct webui_session *s, const char *presented)
{
    return presented != NULL && strlen(presented) == 64 &&
           CRYPTO_memcmp(presented, s->csrf, 64) == 0;
}
