/* The seeds' two tokens as both sides must read them: the protected paths
 * however they are spelled, and the edge token against every way a
 * hostile client or a careless operator could get one wrong. */
#include "../../../common/join_token.h"

#include <stdio.h>
#include <string.h>

#include "../../../common/common.h"
#include "../unit.h"

static const struct {
    const char *path;
    enum gh_join_resource want;
    const char *decoded;
} paths[] = {
    {"/api/v1/meetings/manifest", GH_JOIN_RES_MANIFEST, "/api/v1/meetings/manifest"},
    {"/api/v1/meetings/%6danifest", GH_JOIN_RES_MANIFEST, "/api/v1/meetings/manifest"},
    {"/api/v1/meetings/%6Danifest", GH_JOIN_RES_MANIFEST, "/api/v1/meetings/manifest"},
    {"/api/v1/meetings%2Fmanifest", GH_JOIN_RES_MANIFEST, "/api/v1/meetings/manifest"},
    {"%2Fapi%2Fv1%2Fcontent%2Fab", GH_JOIN_RES_CONTENT, "/api/v1/content/ab"},
    {"/api/v1/content/0123", GH_JOIN_RES_CONTENT, "/api/v1/content/0123"},
    {"/api/v1/content/", GH_JOIN_RES_CONTENT, "/api/v1/content/"},
    {"/api/v1/content", GH_JOIN_RES_NONE, "/api/v1/content"},
    {"/api/v1/meetings/manifest/", GH_JOIN_RES_NONE, "/api/v1/meetings/manifest/"},
    {"/api/v1/meetings/manifestx", GH_JOIN_RES_NONE, "/api/v1/meetings/manifestx"},
    {"/API/v1/meetings/manifest", GH_JOIN_RES_NONE, "/API/v1/meetings/manifest"},
    {"/api/v1/meetings/join", GH_JOIN_RES_NONE, "/api/v1/meetings/join"},
    {"/api/v1/meetings/manifest%", GH_JOIN_RES_NONE, "/api/v1/meetings/manifest%"},
    {"/api/v1/meetings/manifest%0", GH_JOIN_RES_NONE, "/api/v1/meetings/manifest%0"},
    {"/api/v1/meetings/manifes%zz", GH_JOIN_RES_NONE, "/api/v1/meetings/manifes%zz"},
    /* a server in C reads up to the NUL: the manifest */
    {"/api/v1/meetings/manifest%00.png", GH_JOIN_RES_MANIFEST, "/api/v1/meetings/manifest"},
    /* whatever the hops' own options: slashes and dot segments */
    {"//api/v1/meetings/manifest", GH_JOIN_RES_MANIFEST, "/api/v1/meetings/manifest"},
    {"/api/v1/meetings//manifest", GH_JOIN_RES_MANIFEST, "/api/v1/meetings/manifest"},
    {"/api//v1/content/abc", GH_JOIN_RES_CONTENT, "/api/v1/content/abc"},
    {"/api/v1/x/../content/abc", GH_JOIN_RES_CONTENT, "/api/v1/content/abc"},
    {"/api/v1/meetings/./manifest", GH_JOIN_RES_MANIFEST, "/api/v1/meetings/manifest"},
    {"/api/v1/%2e%2e/v1/meetings/manifest", GH_JOIN_RES_MANIFEST, "/api/v1/meetings/manifest"},
    {"/../../api/v1/meetings/manifest", GH_JOIN_RES_MANIFEST, "/api/v1/meetings/manifest"},
    {"/api/v1/meetings/manifest/..", GH_JOIN_RES_NONE, "/api/v1/meetings/"},
    {"/api/v1/meetings/manifest/.", GH_JOIN_RES_NONE, "/api/v1/meetings/manifest/"},
    {"/a/..", GH_JOIN_RES_NONE, "/"},
    {"", GH_JOIN_RES_NONE, ""},
    {"api/v1/meetings/manifest", GH_JOIN_RES_NONE, "api/v1/meetings/manifest"},
    {"%", GH_JOIN_RES_NONE, "%"},
};

TEST(join_token_protected_paths)
{
    char out[128];
    size_t i, n;

    for (i = 0; i < GH_ARRAY_LEN(paths); i++) {
        enum gh_join_resource r = gh_join_resource(paths[i].path, strlen(paths[i].path), 1, out,
                                                   sizeof(out), &n);
        CHECK_EQ(r, paths[i].want, paths[i].path);
        if (paths[i].decoded != NULL)
            CHECK_STR(out, paths[i].decoded, paths[i].path);
    }
    /* No room for the decoded path: never protected, never written past. */
    CHECK_EQ(gh_join_resource("/api/v1/content/x", 17, 1, out, 17, &n), GH_JOIN_RES_NONE, "room");
    /* A path the server already decoded is not decoded again. */
    CHECK_EQ(gh_join_resource("/api/v1/content/%41", 19, 0, out, sizeof(out), &n),
             GH_JOIN_RES_CONTENT, "decoded");
    CHECK_STR(out, "/api/v1/content/%41", "decoded once");
}

static const unsigned char KEY[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char OTHER_KEY[32] = "fedcba9876543210fedcba9876543210";
#define PID "00112233445566778899aabbccddeeff"
#define RES "/api/v1/content/0a0b"
#define NOW 1800000000LL

TEST(join_token_edge_tokens)
{
    char tok[GH_EDGE_TOKEN_MAX], bad[GH_EDGE_TOKEN_MAX * 2], mac[65];
    size_t rl = strlen(RES), i;
    const char *dot;

    CHECK(gh_edge_token_make(KEY, 42, PID, RES, rl, NOW + 30, tok, sizeof(tok)) == 0);
    CHECK(strncmp(tok, "1.42." PID ".1800000030.", 5 + 32 + 12) == 0);
    CHECK(strlen(tok) == 5 + 32 + 12 + 64);
    CHECK_EQ(gh_edge_token_check(KEY, tok, 42, PID, RES, rl, NOW), GH_EDGE_OK, "good");
    CHECK_EQ(gh_edge_token_check(KEY, tok, 42, PID, RES, rl, NOW + 30), GH_EDGE_OK, "last second");
    CHECK_EQ(gh_edge_token_check(KEY, tok, 42, PID, RES, rl, NOW + 31), GH_EDGE_EXPIRED, "expired");
    CHECK_EQ(gh_edge_token_check(KEY, tok, 43, PID, RES, rl, NOW), GH_EDGE_OTHER, "other meeting");
    CHECK_EQ(gh_edge_token_check(KEY, tok, 42, "00112233445566778899aabbccddeefe", RES, rl, NOW),
             GH_EDGE_OTHER, "other participant");
    CHECK_EQ(gh_edge_token_check(KEY, tok, 42, PID, "/api/v1/content/0a0c", rl, NOW),
             GH_EDGE_FORGED, "other resource");
    CHECK_EQ(gh_edge_token_check(KEY, tok, 42, PID, "/api/v1/meetings/manifest", 25, NOW),
             GH_EDGE_FORGED, "the manifest with a content token");
    CHECK_EQ(gh_edge_token_check(OTHER_KEY, tok, 42, PID, RES, rl, NOW), GH_EDGE_FORGED,
             "another key");
    CHECK_EQ(gh_edge_token_check(KEY, NULL, 42, PID, RES, rl, NOW), GH_EDGE_MISSING, "none");
    CHECK_EQ(gh_edge_token_check(KEY, "", 42, PID, RES, rl, NOW), GH_EDGE_MISSING, "empty");
    /* A far expiry is refused before the mac is even computed: nobody who
     * holds the key makes one, so whoever sent it does not. */
    CHECK(gh_edge_token_make(KEY, 42, PID, RES, rl, NOW + 3600, bad, sizeof(bad)) == 0);
    CHECK_EQ(gh_edge_token_check(KEY, bad, 42, PID, RES, rl, NOW), GH_EDGE_MALFORMED, "an hour");
    /* The meeting or expiry changed by hand: the mac covers both. */
    snprintf(bad, sizeof(bad), "1.43.%s", tok + 5);
    CHECK_EQ(gh_edge_token_check(KEY, bad, 43, PID, RES, rl, NOW), GH_EDGE_FORGED, "meeting");
    dot = strrchr(tok, '.');
    memcpy(mac, dot + 1, 65);
    snprintf(bad, sizeof(bad), "1.42.%s.1800000031.%s", PID, mac);
    CHECK_EQ(gh_edge_token_check(KEY, bad, 42, PID, RES, rl, NOW), GH_EDGE_FORGED, "expiry");
    /* Every single byte changed somewhere: never OK. */
    for (i = 0; i < strlen(tok); i++) {
        char c;
        snprintf(bad, sizeof(bad), "%s", tok);
        c = bad[i];
        bad[i] = c == '0' ? '1' : c == '.' ? '-' : '0';
        CHECK(gh_edge_token_check(KEY, bad, 42, PID, RES, rl, NOW) != GH_EDGE_OK);
    }
    {
        static const char *const malformed[] = {
            "2.42." PID ".1800000030.", "1..", "1.042." PID ".1800000030.", "1.-1." PID ".1.",
            "1.42." PID "0.1800000030.", "1.42.00112233445566778899AABBCCDDEEFF.1800000030.",
            "1.42." PID ".1800000030", "1.42." PID ".1800000030.abc",
            "1.4200000000000000000000." PID ".1.", " 1.42." PID ".1800000030.",
        };
        for (i = 0; i < GH_ARRAY_LEN(malformed); i++) {
            snprintf(bad, sizeof(bad), "%s%s", malformed[i], strchr(malformed[i], '.') &&
                     malformed[i][strlen(malformed[i]) - 1] == '.' ? mac : "");
            CHECK_EQ(gh_edge_token_check(KEY, bad, 42, PID, RES, rl, NOW), GH_EDGE_MALFORMED,
                     malformed[i]);
        }
        memset(bad, 'a', sizeof(bad) - 1);
        bad[sizeof(bad) - 1] = '\0';
        CHECK_EQ(gh_edge_token_check(KEY, bad, 42, PID, RES, rl, NOW), GH_EDGE_MALFORMED, "long");
    }
    /* The maker refuses what it could not spell back. */
    CHECK(gh_edge_token_make(KEY, -1, PID, RES, rl, NOW, tok, sizeof(tok)) == -1);
    CHECK(gh_edge_token_make(KEY, 1, "short", RES, rl, NOW, tok, sizeof(tok)) == -1);
    CHECK(gh_edge_token_make(KEY, 1, PID, RES, rl, NOW, tok, 20) == -1);
    CHECK_STR(gh_edge_check_name(GH_EDGE_FORGED), "edge-token:forged", "name");
}

TEST(join_token_keys_and_participants)
{
    unsigned char k[GH_JOIN_KEY_LEN];
    char a[33], b[33];

    CHECK(gh_join_key("00112233445566778899aabbccddeeff", 32, k) == 0 && k[0] == 'j' &&
          k[1] == 0x00 && k[16] == 0xff);
    CHECK(gh_join_key("00112233445566778899AABBCCDDEEFF", 32, k) == -1); /* one spelling */
    CHECK(gh_join_key("00112233445566778899aabbccddeef", 31, k) == -1);
    CHECK(gh_join_key("00112233445566778899aabbccddeefg", 32, k) == -1);
    gh_join_participant("00112233445566778899aabbccddeeff", a);
    gh_join_participant("00112233445566778899aabbccddeefe", b);
    CHECK(strlen(a) == 32 && strcmp(a, b) != 0 && strcmp(a, "00112233445566778899aabbccddeeff"));
}
