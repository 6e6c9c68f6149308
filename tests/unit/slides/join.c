/* The join rules of the seeds (Pexip, "About participant authentication"),
 * one row per rule: the meeting's PINs, authentication and Other
 * participants setting, what the participant brings, and the outcome. */
#include <stdio.h>
#include <string.h>

#include "../../../common/common.h"
#include "../../../slides/slides.h"
#include "../unit.h"

#define NONE SLIDES_AUTH_NONE
#define HOSTS SLIDES_AUTH_HOSTS
#define GUESTS SLIDES_AUTH_GUESTS
#define BOTH SLIDES_AUTH_BOTH
#define TRUSTED SLIDES_OTHER_ALLOWED_IF_TRUSTED
#define DISALLOW SLIDES_OTHER_DISALLOW_ALL
#define WEB SLIDES_CLIENT_WEB
#define DEV SLIDES_CLIENT_DEVICE
#define H SLIDES_HOST
#define G SLIDES_GUEST
#define NR SLIDES_NO_ROLE

static const struct {
    const char *rule;
    const char *host_pin, *guest_pin;
    enum slides_auth auth;
    enum slides_other other;
    enum slides_client client;
    int sso_capable, registered;
    const char *pin;
    int authenticated, idp_in_group, transfer;
    enum slides_role transfer_role;
    enum slides_outcome outcome;
    enum slides_role role;
} rows[] = {
    /* PINs */
    {"no PINs: everyone is a Host", "", "", NONE, TRUSTED, WEB, 1, 0, NULL, 0, 0, 0, NR,
     SLIDES_JOIN, H},
    {"PINs configured: the PIN comes first", "1234", "5678", NONE, TRUSTED, WEB, 1, 0, NULL, 0,
     0, 0, NR, SLIDES_NEED_PIN, NR},
    {"host PIN makes a Host", "1234", "5678", NONE, TRUSTED, WEB, 1, 0, "1234", 0, 0, 0, NR,
     SLIDES_JOIN, H},
    {"guest PIN makes a Guest", "1234", "5678", NONE, TRUSTED, WEB, 1, 0, "5678", 0, 0, 0, NR,
     SLIDES_JOIN, G},
    {"wrong PIN refused", "1234", "5678", NONE, TRUSTED, WEB, 1, 0, "0000", 0, 0, 0, NR,
     SLIDES_BAD_PIN, NR},
    {"PIN prefix is not the PIN", "1234", "5678", NONE, TRUSTED, WEB, 1, 0, "123", 0, 0, 0, NR,
     SLIDES_BAD_PIN, NR},
    {"host PIN only: the guest PIN field is no PIN", "1234", "", NONE, TRUSTED, WEB, 1, 0, "", 0,
     0, 0, NR, SLIDES_BAD_PIN, NR},
    /* SSO for the role the PIN decided */
    {"SSO for Hosts: a Host must sign in", "1234", "5678", HOSTS, TRUSTED, WEB, 1, 0, "1234", 0,
     0, 0, NR, SLIDES_NEED_SSO, H},
    {"SSO for Hosts: a Guest joins without", "1234", "5678", HOSTS, TRUSTED, WEB, 1, 0, "5678",
     0, 0, 0, NR, SLIDES_JOIN, G},
    {"SSO for Guests: a Guest must sign in", "1234", "5678", GUESTS, TRUSTED, WEB, 1, 0, "5678",
     0, 0, 0, NR, SLIDES_NEED_SSO, G},
    {"SSO for Guests: a Host joins without", "1234", "5678", GUESTS, TRUSTED, WEB, 1, 0, "1234",
     0, 0, 0, NR, SLIDES_JOIN, H},
    {"SSO for both, no PINs: everyone signs in as a Host", "", "", BOTH, TRUSTED, WEB, 1, 0,
     NULL, 0, 0, 0, NR, SLIDES_NEED_SSO, H},
    {"signed in with an IdP of the group: straight in", "", "", BOTH, TRUSTED, WEB, 1, 0, NULL, 1,
     1, 0, NR, SLIDES_JOIN, H},
    {"signed in with an IdP outside the group: sign in again", "", "", BOTH, TRUSTED, WEB, 1, 0,
     NULL, 1, 0, 0, NR, SLIDES_NEED_SSO, H},
    {"PIN before SSO even when signed in", "1234", "", BOTH, TRUSTED, WEB, 1, 0, NULL, 1, 1, 0,
     NR, SLIDES_NEED_PIN, NR},
    /* Clients that cannot do SSO */
    {"old client, SSO needed for its role: the seed's message", "", "", BOTH, TRUSTED, WEB, 0, 0,
     NULL, 0, 0, 0, NR, SLIDES_CLIENT_NO_SSO, H},
    {"old client, no SSO required", "", "", NONE, TRUSTED, WEB, 0, 0, NULL, 0, 0, 0, NR,
     SLIDES_JOIN, H},
    {"old client, SSO for Hosts, joining as Guest", "1234", "5678", HOSTS, TRUSTED, WEB, 0, 0,
     "5678", 0, 0, 0, NR, SLIDES_JOIN, G},
    {"old client, SSO for Guests, joining as Host", "1234", "5678", GUESTS, TRUSTED, WEB, 0, 0,
     "1234", 0, 0, 0, NR, SLIDES_JOIN, H},
    /* Other devices */
    {"device, registered, Allowed if trusted, PINs: PIN decides", "1234", "5678", BOTH, TRUSTED,
     DEV, 0, 1, "5678", 0, 0, 0, NR, SLIDES_JOIN, G},
    {"device, registered, Allowed if trusted, PINs, none entered", "1234", "5678", BOTH, TRUSTED,
     DEV, 0, 1, NULL, 0, 0, 0, NR, SLIDES_NEED_PIN, NR},
    {"device, registered, Allowed if trusted, no PINs: Host", "", "", BOTH, TRUSTED, DEV, 0, 1,
     NULL, 0, 0, 0, NR, SLIDES_JOIN, H},
    {"device, unregistered: waiting room, as Guest, no PIN", "1234", "5678", BOTH, TRUSTED, DEV,
     0, 0, NULL, 0, 0, 0, NR, SLIDES_WAITING_ROOM, G},
    {"device, registered, Disallow all: waiting room", "1234", "5678", HOSTS, DISALLOW, DEV, 0, 1,
     "1234", 0, 0, 0, NR, SLIDES_WAITING_ROOM, G},
    {"device, room without authentication: PIN rules only", "1234", "5678", NONE, DISALLOW, DEV,
     0, 0, "1234", 0, 0, 0, NR, SLIDES_JOIN, H},
    /* Transfers */
    {"transfer into SSO room, same IdP, no re-authentication", "", "", BOTH, TRUSTED, WEB, 1, 0,
     NULL, 1, 1, 1, H, SLIDES_JOIN, H},
    {"transfer into SSO room from a room without SSO", "", "", BOTH, TRUSTED, WEB, 1, 0, NULL, 0,
     0, 1, H, SLIDES_TRANSFER_REFUSED, H},
    {"transfer into SSO room, different IdP", "", "", BOTH, TRUSTED, WEB, 1, 0, NULL, 1, 0, 1, H,
     SLIDES_TRANSFER_REFUSED, H},
    {"transfer out of SSO into a room without", "", "", NONE, TRUSTED, WEB, 1, 0, NULL, 1, 1, 1,
     G, SLIDES_JOIN, G},
    {"three rooms: A(SSO) -> B(none) -> C(SSO, A's IdP)", "", "", BOTH, TRUSTED, WEB, 1, 0, NULL,
     1, 1, 1, H, SLIDES_JOIN, H},
    {"three rooms: A(SSO) -> B(none) -> C(SSO, other IdP)", "", "", BOTH, TRUSTED, WEB, 1, 0,
     NULL, 1, 0, 1, H, SLIDES_TRANSFER_REFUSED, H},
    {"transfer as Guest into SSO-for-Hosts room", "1234", "5678", HOSTS, TRUSTED, WEB, 1, 0, NULL,
     0, 0, 1, G, SLIDES_JOIN, G},
    {"device transfer, registered, Allowed if trusted: PIN still", "1234", "5678", BOTH, TRUSTED,
     DEV, 0, 1, NULL, 0, 0, 1, H, SLIDES_NEED_PIN, NR},
    {"device transfer, unregistered: fails", "", "", BOTH, TRUSTED, DEV, 0, 0, NULL, 0, 0, 1, H,
     SLIDES_TRANSFER_REFUSED, G},
    {"device transfer, Disallow all: fails", "", "", GUESTS, DISALLOW, DEV, 0, 1, NULL, 0, 0, 1, H,
     SLIDES_TRANSFER_REFUSED, G},
};

TEST(slides_join_rules_table)
{
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(rows); i++) {
        struct slides_policy m;
        struct slides_join_req q;
        struct slides_decision d;
        memset(&m, 0, sizeof(m));
        memset(&q, 0, sizeof(q));
        /* The store keeps verifiers only; the cheapest cost keeps the table fast. */
        if (rows[i].host_pin[0] != '\0')
            CHECK_EQ(slides_secret_hash(rows[i].host_pin, SLIDES_COST_MIN, m.host_pin_v), 0,
                     rows[i].rule);
        if (rows[i].guest_pin[0] != '\0')
            CHECK_EQ(slides_secret_hash(rows[i].guest_pin, SLIDES_COST_MIN, m.guest_pin_v), 0,
                     rows[i].rule);
        m.auth = rows[i].auth;
        m.other = rows[i].other;
        q.client = rows[i].client;
        q.sso_capable = rows[i].sso_capable;
        q.registered = rows[i].registered;
        q.pin = rows[i].pin;
        q.authenticated = rows[i].authenticated;
        q.idp_in_group = rows[i].idp_in_group;
        q.transfer = rows[i].transfer;
        q.transfer_role = rows[i].transfer_role;
        CHECK_EQ(slides_join_decide(&m, &q, &d), rows[i].outcome, rows[i].rule);
        CHECK_EQ(d.role, rows[i].role, rows[i].rule);
    }
}

TEST(slides_escalation_and_names)
{
    struct slides_decision d;
    char out[64];

    CHECK_EQ(slides_escalate(SLIDES_GUEST), SLIDES_HOST, "a Guest escalated without SSO");
    CHECK_EQ(slides_escalate(SLIDES_NO_ROLE), SLIDES_NO_ROLE, "nobody is not escalated");
    memset(&d, 0, sizeof(d));
    d.sso_done = 1;
    CHECK_EQ(slides_display_name(&d, "Alice Liddell", 1, "Mallory", out, sizeof(out)), 1,
             "IdP name fixed");
    CHECK_STR(out, "Alice Liddell", "IdP name wins over the typed one");
    CHECK_EQ(slides_display_name(&d, "", 0, "Alice", out, sizeof(out)), 0, "attribute empty");
    CHECK_STR(out, "Alice", "typed name when the IdP gives none");
    d.sso_done = 0;
    CHECK_EQ(slides_display_name(&d, "Alice Liddell", 1, "Al", out, sizeof(out)), 0,
             "no SSO for this role: the name is the participant's");
    CHECK_STR(out, "Al", "typed");
    CHECK_EQ(slides_display_name(&d, NULL, 0, "", out, sizeof(out)), 0, "nothing typed");
    CHECK_STR(out, "Participant", "default name");
    CHECK(strstr(slides_outcome_message(SLIDES_CLIENT_NO_SSO), "does not support SSO") != NULL);
}
