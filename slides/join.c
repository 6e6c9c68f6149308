/*
 * Who may join a meeting, and as what: the rules of the seeds (Pexip
 * "About participant authentication") as one pure function. Nothing here
 * reads a clock, a store or the network; the caller gathers the facts
 * (entered PIN, session, device registration, transfer chain) and acts on
 * the outcome.
 */
#include <string.h>

#include "slides.h"

static int role_needs_sso(enum slides_auth auth, enum slides_role role)
{
    return auth == SLIDES_AUTH_BOTH || (auth == SLIDES_AUTH_HOSTS && role == SLIDES_HOST) ||
           (auth == SLIDES_AUTH_GUESTS && role == SLIDES_GUEST);
}

/* The PIN step: with PINs configured the PIN decides the role; without,
 * everyone is a Host. Returns the outcome, with the role set on success
 * and *matched when a PIN was checked and right. */
static enum slides_outcome by_pin(const struct slides_policy *m, const char *pin,
                                  enum slides_role *role, int *matched)
{
    if (m->host_pin_v[0] == '\0') {
        *role = SLIDES_HOST;
        return SLIDES_JOIN;
    }
    if (pin == NULL)
        return SLIDES_NEED_PIN;
    /* Verifiers only (secrets.c): the store holds no PIN to compare with. */
    if (slides_secret_check(m->host_pin_v, pin)) {
        *role = SLIDES_HOST;
        *matched = 1;
        return SLIDES_JOIN;
    }
    if (m->guest_pin_v[0] != '\0' && slides_secret_check(m->guest_pin_v, pin)) {
        *role = SLIDES_GUEST;
        *matched = 1;
        return SLIDES_JOIN;
    }
    return SLIDES_BAD_PIN;
}

enum slides_outcome slides_join_decide(const struct slides_policy *m,
                                       const struct slides_join_req *q,
                                       struct slides_decision *d)
{
    enum slides_outcome o;
    enum slides_role role = SLIDES_NO_ROLE;

    memset(d, 0, sizeof(*d));
    if (q->client == SLIDES_CLIENT_DEVICE) {
        /* SIP/H.323 and other devices. Other participants applies only
         * where authentication is enabled; registered devices of a room
         * set to Allowed if trusted go by PIN (Host without PINs), all
         * others wait to be admitted, without a PIN, as Guests. A device
         * transfer fails instead of waiting. */
        if (m->auth != SLIDES_AUTH_NONE &&
            !(m->other == SLIDES_OTHER_ALLOWED_IF_TRUSTED && q->registered)) {
            d->outcome = q->transfer ? SLIDES_TRANSFER_REFUSED : SLIDES_WAITING_ROOM;
            d->role = SLIDES_GUEST;
            return d->outcome;
        }
        o = by_pin(m, q->pin, &role, &d->pin_matched);
        d->outcome = o;
        d->role = role;
        return o;
    }
    /* Web clients. A transfer carries the role the transferring Host gave;
     * a direct join goes through the PIN first. */
    if (q->transfer) {
        role = q->transfer_role == SLIDES_GUEST ? SLIDES_GUEST : SLIDES_HOST;
    } else {
        o = by_pin(m, q->pin, &role, &d->pin_matched);
        if (o != SLIDES_JOIN) {
            d->outcome = o;
            return o;
        }
    }
    d->role = role;
    if (!role_needs_sso(m->auth, role)) {
        d->outcome = SLIDES_JOIN;
        return d->outcome;
    }
    if (q->transfer) {
        /* Into an SSO room only with an identity from an IdP that this
         * room's group holds, carried from the room that required it
         * (possibly through rooms that did not): no re-authentication. */
        d->outcome = q->authenticated && q->idp_in_group ? SLIDES_JOIN : SLIDES_TRANSFER_REFUSED;
        d->sso_done = d->outcome == SLIDES_JOIN;
        return d->outcome;
    }
    if (!q->sso_capable) {
        d->outcome = SLIDES_CLIENT_NO_SSO;
        return d->outcome;
    }
    if (q->authenticated && q->idp_in_group) {
        d->outcome = SLIDES_JOIN; /* signed in already with one of the group's IdPs */
        d->sso_done = 1;
        return d->outcome;
    }
    d->outcome = SLIDES_NEED_SSO;
    return d->outcome;
}

enum slides_role slides_escalate(enum slides_role current)
{
    /* A Guest can be made a Host by a Host, without authentication. */
    return current == SLIDES_GUEST || current == SLIDES_HOST ? SLIDES_HOST : SLIDES_NO_ROLE;
}

const char *slides_outcome_message(enum slides_outcome o)
{
    switch (o) {
    case SLIDES_JOIN:
        return "joined";
    case SLIDES_NEED_PIN:
        return "enter the meeting PIN";
    case SLIDES_BAD_PIN:
        return "the PIN is not correct";
    case SLIDES_NEED_SSO:
        return "sign in with your identity provider";
    case SLIDES_CLIENT_NO_SSO:
        return "your client does not support SSO-protected meetings; please upgrade your client";
    case SLIDES_WAITING_ROOM:
        return "please wait to be admitted by a Host";
    case SLIDES_TRANSFER_REFUSED:
        return "the transfer was not initiated; you remain in the original meeting";
    }
    return "refused";
}

int slides_display_name(const struct slides_decision *d, const char *idp_name,
                        int idp_name_given, const char *typed, char *out, size_t outlen)
{
    const char *n;
    size_t len;

    if (d->sso_done && idp_name_given && idp_name != NULL && idp_name[0] != '\0') {
        n = idp_name;
    } else {
        n = typed != NULL && typed[0] != '\0' ? typed : "Participant";
        idp_name_given = 0;
    }
    len = strlen(n);
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, n, len);
    out[len] = '\0';
    return d->sso_done && idp_name_given;
}
