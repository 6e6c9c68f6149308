/*
 * Password hashing: PBKDF2-HMAC-SHA256 through OpenSSL 3's EVP_KDF, 600,000
 * iterations (the OWASP 2023 figure for SHA-256), a 16-byte random salt, and
 * a constant-time comparison. The stored form names the algorithm and the
 * count, so they can be raised later without invalidating old hashes.
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "webui_int.h"

static int pbkdf2(const char *pw, const unsigned char *salt, size_t saltlen, unsigned iter,
                  unsigned char *out, size_t outlen)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "PBKDF2", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM p[5];
    int ok;

    p[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)(uintptr_t)pw,
                                             strlen(pw));
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)salt,
                                             saltlen);
    p[2] = OSSL_PARAM_construct_uint(OSSL_KDF_PARAM_ITER, &iter);
    p[3] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)(uintptr_t)"SHA256",
                                            0);
    p[4] = OSSL_PARAM_construct_end();
    ok = ctx != NULL && EVP_KDF_derive(ctx, out, outlen, p) == 1;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ok ? 0 : -1;
}

static void hex(const unsigned char *b, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int unhex(const char *s, unsigned char *out, size_t n)
{
    size_t i;

    if (strlen(s) < 2 * n)
        return -1;
    for (i = 0; i < n; i++) {
        int hi = gh_hexval((unsigned char)s[2 * i]), lo = gh_hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int webui_hash_password(const char *password, char *out, size_t outlen)
{
    unsigned char salt[16], h[32];
    char sh[33], hh[65];

    if (RAND_bytes(salt, sizeof(salt)) != 1 ||
        pbkdf2(password, salt, sizeof(salt), WEBUI_PBKDF2_ITER, h, sizeof(h)) == -1)
        return -1;
    hex(salt, sizeof(salt), sh);
    hex(h, sizeof(h), hh);
    gh_wipe(h, sizeof(h));
    return snprintf(out, outlen, "pbkdf2-sha256$%u$%s$%s", WEBUI_PBKDF2_ITER, sh, hh) <
                   (int)outlen
               ? 0
               : -1;
}

int webui_check_password(const char *password, const char *stored)
{
    unsigned char salt[16], want[32], got[32];
    unsigned long iter;
    const char *p;
    char *end;
    int ok;

    if (strncmp(stored, "pbkdf2-sha256$", 14) != 0)
        return 0;
    iter = strtoul(stored + 14, &end, 10);
    if (*end != '$' || iter < 100000 || iter > 10000000)
        return 0;
    p = end + 1;
    if (unhex(p, salt, 16) == -1 || p[32] != '$' || unhex(p + 33, want, 32) == -1 ||
        p[33 + 64] != '\0')
        return 0;
    if (pbkdf2(password, salt, sizeof(salt), (unsigned)iter, got, sizeof(got)) == -1)
        return 0;
    ok = CRYPTO_memcmp(got, want, sizeof(got)) == 0;
    gh_wipe(got, sizeof(got));
    return ok;
}

int webui_password_ok(const char *pw, const char **why)
{
    int lower = 0, upper = 0, digit = 0, other = 0;
    const char *p;

    if (strlen(pw) < 12) {
        *why = "at least 12 characters";
        return -1;
    }
    if (strlen(pw) > 256) {
        *why = "at most 256 characters";
        return -1;
    }
    for (p = pw; *p; p++) {
        if (*p >= 'a' && *p <= 'z')
            lower = 1;
        else if (*p >= 'A' && *p <= 'Z')
            upper = 1;
        else if (*p >= '0' && *p <= '9')
            digit = 1;
        else
            other = 1;
    }
    if (lower + upper + digit + other < 2) {
        *why = "mix at least two kinds of characters";
        return -1;
    }
    return 0;
}

void webui__sha256_hex(const void *p, size_t len, size_t bytes, char *out)
{
    unsigned char h[32];
    unsigned n = 32;
    size_t i;

    EVP_Digest(p, len, h, &n, EVP_sha256(), NULL);
    for (i = 0; i < bytes && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}
