/*
 * Session-ticket keys for every listener: one process-wide ring of a
 * current and a previous key, drawn at random and rotated every
 * CERTS_TICKET_ROTATE_S seconds. All workers and all contexts use it, so a
 * ticket issued by one worker resumes on another and across reloads (new
 * SSL_CTXs), and a stolen key stops being useful within two periods.
 * Tickets under the previous key are accepted and renewed.
 *
 * A TLS 1.3 client uses a ticket once (RFC 8446, C.4: OpenSSL, browsers
 * and wrk all do), so every TLS 1.3 resumption is answered with a fresh
 * ticket: without one, the client's next connection is a full handshake
 * and half of all reconnections pay for the certificate's signature.
 */
#include "certs.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

struct tkey {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    time_t born;
};

static struct tkey ring[2]; /* [0] current, [1] previous */
static int ready;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static int fresh(struct tkey *k)
{
    k->born = time(NULL);
    return RAND_bytes(k->name, sizeof(k->name)) == 1 && RAND_bytes(k->aes, sizeof(k->aes)) == 1 &&
           RAND_bytes(k->hmac, sizeof(k->hmac)) == 1;
}

/* Copies the key to use (enc) or the one named (dec) out of the ring;
 * returns 1 (current), 2 (previous: renew) or 0 (unknown). */
static int pick(int enc, const unsigned char *name, struct tkey *out)
{
    int r = 0;

    pthread_mutex_lock(&mu);
    if (!ready || time(NULL) - ring[0].born >= CERTS_TICKET_ROTATE_S) {
        if (ready) {
            ring[1] = ring[0];
        }
        if (fresh(&ring[0]))
            ready = 1;
        if (ready && ring[1].born == 0)
            ring[1] = ring[0];
    }
    if (ready) {
        if (enc) {
            *out = ring[0];
            r = 1;
        } else if (memcmp(name, ring[0].name, 16) == 0) {
            *out = ring[0];
            r = 1;
        } else if (memcmp(name, ring[1].name, 16) == 0) {
            *out = ring[1];
            r = 2;
        }
    }
    pthread_mutex_unlock(&mu);
    return r;
}

static int ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv,
                     EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx, int enc)
{
    struct tkey k;
    OSSL_PARAM params[3];
    int r;

    r = pick(enc, key_name, &k);
    if (r == 0)
        return 0; /* unknown or expired key: a full handshake */
    if (!enc && SSL_version(s) >= TLS1_3_VERSION)
        r = 2; /* decrypted and renewed: the client has no other ticket */
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)(uintptr_t) "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (enc) {
        if (RAND_bytes(iv, 16) != 1)
            r = -1;
        else {
            memcpy(key_name, k.name, 16);
            if (EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1 ||
                EVP_MAC_CTX_set_params(hctx, params) != 1)
                r = -1;
        }
    } else if (EVP_MAC_CTX_set_params(hctx, params) != 1 ||
               EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1) {
        r = -1;
    }
    OPENSSL_cleanse(&k, sizeof(k));
    return r;
}

void certs_tickets_attach(SSL_CTX *ctx)
{
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
}

void certs_tickets_wipe(void)
{
    pthread_mutex_lock(&mu);
    OPENSSL_cleanse(ring, sizeof(ring));
    ready = 0;
    pthread_mutex_unlock(&mu);
}
