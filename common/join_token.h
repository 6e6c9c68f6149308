/*
 * The seeds' two tokens (call sequence, step 6): the join token a
 * participant presents, as the shared store keeps it, and the short-lived
 * internal token an edge gatehouse forwards in its place of trust. The
 * conference service (slides/, apps/) writes join tokens; an edge service
 * (proxy/) reads them on a worker that may not wait and mints edge tokens,
 * which the conference service checks. Both sides live above common/, so
 * what they must agree on byte for byte is here: the record's layout and
 * key, the participant id, the meeting's epoch mark, which paths are the
 * protected ones, and the edge token itself.
 */
#ifndef GH_COMMON_JOIN_TOKEN_H
#define GH_COMMON_JOIN_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define GH_JOIN_TOKEN_HEX 32
#define GH_JOIN_KEY_LEN 17

/* A join token in the shared store, under gh_join_key. */
struct gh_join_record {
    int64_t meeting, epoch;
    int32_t role;       /* enum slides_role */
    char name[128];
    int32_t name_fixed; /* the display name is the IdP's */
    int64_t expires;    /* unix seconds */
}; /* the layout of earlier versions' records, field for field: tokens live
    * across an upgrade, and appliances of two versions share them */

/* 'j' and the token's 16 bytes: 0, or -1 when tok is not 32 lower-case hex
 * digits (one spelling per token, as issued). */
int gh_join_key(const char *tok, size_t len, unsigned char key[GH_JOIN_KEY_LEN]);
/* 32 hex digits of a domain-separated digest of the token: names the
 * participant to Hosts and in edge tokens without being the token. */
void gh_join_participant(const char *tok, char id[33]);

/* An epoch of a meeting that is over leaves a mark under
 * gh_meeting_epoch_key(meeting, epoch), so an edge can tell its tokens are
 * dead without the meetings database: GH_EPOCH_ENDED while the meeting
 * has ended (410), GH_EPOCH_GONE once it was reopened or deleted (404).
 * Keyed by the epoch too, since a room's id may be given again to a new
 * room, whose first epoch is random: no mark of the old one touches it. */
#define GH_MEETING_EPOCH_KEY_LEN 17
#define GH_EPOCH_ENDED 1
#define GH_EPOCH_GONE 2
void gh_meeting_epoch_key(int64_t meeting, int64_t epoch,
                          unsigned char key[GH_MEETING_EPOCH_KEY_LEN]);

/* The answers the conference service gives for an unknown and an ended
 * meeting's token; an edge that refuses one answers with the same bytes. */
#define GH_JOIN_NOT_FOUND_JSON "{\"error\":\"not found\"}\n"
#define GH_JOIN_ENDED_JSON \
    "{\"outcome\":\"meeting-ended\",\"message\":\"This meeting has ended.\"}\n"

/* The protected resources: the manifest and content paths. path[0, len)
 * is decoded the way the conference service's HTTP library decodes it
 * (every %XX; decode 0 for a path that library already decoded), then
 * made canonical whatever any hop's options (repeated slashes as one, dot
 * segments resolved), so no spelling reaches it unchecked; the canonical
 * path goes to out (outlen >= len + 2). */
enum gh_join_resource { GH_JOIN_RES_NONE, GH_JOIN_RES_MANIFEST, GH_JOIN_RES_CONTENT };
enum gh_join_resource gh_join_resource(const char *path, size_t len, int decode, char *out,
                                       size_t outlen, size_t *outn);

/*
 * The edge token: "1.<meeting>.<participant>.<expires>.<mac>", the mac an
 * HMAC-SHA256 under the key both sides hold over those fields and the
 * resource (the decoded path) it was made for. It lives GH_EDGE_TOKEN_TTL_S
 * seconds and is good for that meeting, participant and resource only.
 */
#define GH_EDGE_TOKEN_TTL_S 30
#define GH_EDGE_TOKEN_MAX 160
#define GH_EDGE_HEADER "Gatehouse-Edge-Token"
int gh_edge_token_make(const unsigned char key[32], int64_t meeting, const char *participant,
                       const char *resource, size_t rlen, int64_t expires, char *out,
                       size_t outlen);
enum gh_edge_check {
    GH_EDGE_OK,
    GH_EDGE_MISSING,   /* no token */
    GH_EDGE_MALFORMED, /* not one, or expiring further ahead than any we make */
    GH_EDGE_FORGED,    /* its mac does not verify under our key (or it was made for
                        * another resource: the resource is in the mac) */
    GH_EDGE_EXPIRED,
    GH_EDGE_OTHER,     /* made for another meeting or participant */
};
enum gh_edge_check gh_edge_token_check(const unsigned char key[32], const char *tok,
                                       int64_t meeting, const char *participant,
                                       const char *resource, size_t rlen, int64_t now);
/* "edge-token:missing" and so on, for the security log. */
const char *gh_edge_check_name(enum gh_edge_check c);

#endif
