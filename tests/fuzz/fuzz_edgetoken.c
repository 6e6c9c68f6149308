/* libFuzzer target: what the conference service reads from the network for
 * the seeds' second token, the Gatehouse-Edge-Token value, and the path
 * both sides judge protected. Invariants: the checker never reads past its
 * input, accepts only what the maker makes (a token made for this input's
 * fields verifies, any other byte string does not), and the path decoder
 * never writes past its room nor grows the path. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/join_token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char KEY[32] = "fuzz-key-fuzz-key-fuzz-key-fuzz";
#define PID "00112233445566778899aabbccddeeff"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s, made[GH_EDGE_TOKEN_MAX], out[512];
    size_t n;
    enum gh_edge_check c;
    enum gh_join_resource r;

    if (size > 400)
        return 0;
    s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    c = gh_edge_token_check(KEY, s, 7, PID, "/api/v1/meetings/manifest", 25, 1800000000);
    if (gh_edge_token_make(KEY, 7, PID, "/api/v1/meetings/manifest", 25, 1800000010, made,
                           sizeof(made)) != 0)
        abort();
    if (c == GH_EDGE_OK && strcmp(s, made) != 0)
        abort(); /* something not made with the key, taken as if it were */
    if (gh_edge_token_check(KEY, made, 7, PID, "/api/v1/meetings/manifest", 25, 1800000000) !=
        GH_EDGE_OK)
        abort();
    r = gh_join_resource(s, size, 1, out, sizeof(out), &n);
    if (n > size + 1 || (r != GH_JOIN_RES_NONE && n < 16) || strlen(out) != n)
        abort();
    if (n > 0 && out[0] == '/' &&
        (strstr(out, "//") != NULL || strstr(out, "/./") != NULL || strstr(out, "/../") != NULL))
        abort(); /* an origin-form path left other than canonical */
    free(s);
    return 0;
}
