/*
 * Secrets at rest. The meeting store keeps no secret a copy of the state
 * folder could use:
 *
 *   PINs and the conference key  verifiers only: "s1$<log2 N>$<salt>$<dk>",
 *       scrypt (r 8, p 1) over a 128-bit salt, compared in constant time.
 *       A PIN is a few digits, so its cost is high (2^14: 16 MiB and tens of
 *       ms a guess); the conference key is 128 random bits that no guessing
 *       reaches, so its cost is low (2^10) and a join costs little CPU.
 *   slide keys  wrapped: AES-256-GCM under the key-encryption key, with the
 *       resource id as additional data, so a wrapped key moved to another
 *       row does not unwrap. Stored form: 0x01, IV (12), key (16), tag (16).
 *   the key-encryption key  64 hex digits in a file only its owner may read
 *       (STATE-DIR/conference/slides.kek, made on first start, or the
 *       operator's file), never in the database.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/common.h"
#include "../common/secret_file.h"
#include "slides_int.h"

#define V_PREFIX "s1$"
#define SALT_LEN 16
#define DK_LEN 32
/* scrypt needs 128 * r * N bytes and a little more: 2^15 with r 8 is 32
 * MiB, the most a verifier may ask (SLIDES_COST_MAX). */
#define SCRYPT_MAXMEM (64u << 20)
#define WRAP_AAD "gatehouse slide key 1:"

/* Exactly 2n lower-case hex digits of s (slen of them) into b; 0, or -1. */
static int unhex(const char *s, size_t slen, unsigned char *b, size_t n)
{
    char buf[2 * 64 + 1];
    int rc;

    if (slen != 2 * n || slen >= sizeof(buf))
        return -1;
    memcpy(buf, s, slen);
    buf[slen] = '\0';
    rc = gh_unhex(buf, b, n);
    gh_wipe(buf, sizeof(buf));
    return rc;
}

static int scrypt(const char *secret, const unsigned char salt[SALT_LEN], unsigned log2n,
                  unsigned char dk[DK_LEN])
{
    return EVP_PBE_scrypt(secret, strlen(secret), salt, SALT_LEN, (uint64_t)1 << log2n, 8, 1,
                          SCRYPT_MAXMEM, dk, DK_LEN) == 1
               ? 0
               : -1;
}

int slides_secret_hash(const char *secret, unsigned log2n, char out[SLIDES_VERIFIER_MAX])
{
    unsigned char salt[SALT_LEN], dk[DK_LEN];
    char s[2 * SALT_LEN + 1], d[2 * DK_LEN + 1];

    if (log2n < SLIDES_COST_MIN || log2n > SLIDES_COST_MAX ||
        RAND_bytes(salt, sizeof(salt)) != 1 || scrypt(secret, salt, log2n, dk) == -1)
        return -1;
    gh_hex(salt, sizeof(salt), s);
    gh_hex(dk, sizeof(dk), d);
    gh_wipe(dk, sizeof(dk));
    snprintf(out, SLIDES_VERIFIER_MAX, V_PREFIX "%u$%s$%s", log2n, s, d);
    return 0;
}

int slides_secret_is_verifier(const char *v)
{
    return strncmp(v, V_PREFIX, strlen(V_PREFIX)) == 0;
}

int slides_secret_check(const char *verifier, const char *secret)
{
    unsigned char salt[SALT_LEN], want[DK_LEN], got[DK_LEN];
    const char *p = verifier + strlen(V_PREFIX), *salt_end, *dk_end;
    char *end;
    unsigned long log2n;
    int ok;

    if (secret == NULL || !slides_secret_is_verifier(verifier))
        return 0;
    log2n = strtoul(p, &end, 10);
    if (end == p || *end != '$' || log2n < SLIDES_COST_MIN || log2n > SLIDES_COST_MAX)
        return 0;
    salt_end = strchr(end + 1, '$');
    if (salt_end == NULL || unhex(end + 1, (size_t)(salt_end - end - 1), salt, SALT_LEN) == -1)
        return 0;
    dk_end = salt_end + 1 + strlen(salt_end + 1);
    if (unhex(salt_end + 1, (size_t)(dk_end - salt_end - 1), want, DK_LEN) == -1 ||
        scrypt(secret, salt, (unsigned)log2n, got) == -1)
        return 0;
    ok = CRYPTO_memcmp(want, got, DK_LEN) == 0;
    gh_wipe(got, sizeof(got));
    return ok;
}

/* ---- the key-encryption key ---- */

#define KEK_WHAT "the slide key-encryption key"

int slides_kek_check(const char *path, char *err, size_t errlen)
{
    unsigned char kek[SLIDES_KEK_LEN];
    int rc = gh_secret_read(path, KEK_WHAT, kek, err, errlen);

    gh_wipe(kek, sizeof(kek));
    return rc;
}

int slides__kek_load(const char *dir, const char *path, unsigned char kek[SLIDES_KEK_LEN],
                     char *err, size_t errlen)
{
    char own[1100];

    snprintf(own, sizeof(own), "%s/slides.kek", dir);
    return gh_secret_load(path, own, KEK_WHAT, kek, err, errlen);
}

/* ---- wrapped slide keys ---- */

static int gcm(int enc, const unsigned char kek[SLIDES_KEK_LEN], const char *id,
               const unsigned char iv[12], const unsigned char *in, unsigned char *out,
               unsigned char tag[16])
{
    EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
    char aad[80];
    int n = 0, ok, alen = snprintf(aad, sizeof(aad), WRAP_AAD "%s", id);

    ok = cx != NULL && alen > 0 && (size_t)alen < sizeof(aad) &&
         EVP_CipherInit_ex2(cx, EVP_aes_256_gcm(), kek, iv, enc, NULL) == 1 &&
         EVP_CipherUpdate(cx, NULL, &n, (const unsigned char *)aad, alen) == 1 &&
         EVP_CipherUpdate(cx, out, &n, in, SLIDES_KEY_LEN) == 1 && n == SLIDES_KEY_LEN &&
         (enc || EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_AEAD_SET_TAG, 16, tag) == 1) &&
         EVP_CipherFinal_ex(cx, out + n, &n) == 1 && n == 0 &&
         (!enc || EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_AEAD_GET_TAG, 16, tag) == 1);
    EVP_CIPHER_CTX_free(cx);
    return ok ? 0 : -1;
}

int slides__key_wrap(const unsigned char kek[SLIDES_KEK_LEN], const char *id,
                     const unsigned char key[SLIDES_KEY_LEN], unsigned char out[SLIDES_WRAPPED_LEN])
{
    out[0] = 1;
    if (RAND_bytes(out + 1, 12) != 1 ||
        gcm(1, kek, id, out + 1, key, out + 13, out + 13 + SLIDES_KEY_LEN) == -1)
        return -1;
    return 0;
}

int slides__key_unwrap(const unsigned char kek[SLIDES_KEK_LEN], const char *id,
                       const unsigned char *w, size_t wlen, unsigned char key[SLIDES_KEY_LEN])
{
    unsigned char tag[16];

    if (wlen != SLIDES_WRAPPED_LEN || w[0] != 1)
        return -1;
    memcpy(tag, w + 13 + SLIDES_KEY_LEN, 16);
    if (gcm(0, kek, id, w + 1, w + 13, key, tag) == -1) {
        gh_wipe(key, SLIDES_KEY_LEN);
        return -1;
    }
    return 0;
}
