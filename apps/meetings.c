/*
 * The conference application's meetings (the seeds' call sequence):
 *
 *   POST /api/v1/meetings/join              uri, key (from the invitation), pin, name,
 *                                           client (web, web-legacy, device) -> token
 *   POST /api/v1/meetings/reception         alias, pin, name, client: the Virtual Reception,
 *                                           for rooms open to it (reception on)
 *   GET  /api/v1/meetings/waiting/<id>      a waiting participant polls: token once admitted
 *   GET  /api/v1/meetings/manifest          Bearer token -> resource URLs and keys
 *   GET  /api/v1/content/<128-bit id>       Bearer token -> the encrypted resource (Range)
 *   POST /api/v1/meetings/content?name=N    Bearer Host token, body = the file -> 201
 *   GET  /api/v1/meetings/waiting           Bearer Host token -> who waits
 *   GET  /api/v1/meetings/participants      Bearer Host token -> who is in: role, display name
 *                                           (the IdP's or typed), when they joined
 *   POST /api/v1/meetings/participants/<id>/host   Bearer Host token: that Guest is a Host now
 *   POST /api/v1/meetings/waiting/<id>/admit|refuse
 *   POST /api/v1/meetings/escalate          Bearer Guest token, pin=the Host PIN -> a Host
 *                                           token (the seeds: no re-authentication)
 *   POST /api/v1/meetings/transfer          Bearer Host token: participant=<id>, to=<alias>,
 *                                           role -> an offer the participant takes with
 *   GET  /api/v1/meetings/transfer          Bearer token: into the room the offer names, if
 *                                           the seeds' transfer rules allow; else they stay
 *   POST /api/v1/meetings/leave             Bearer token: revoked
 *   POST /api/v1/meetings/end               Bearer Host token: keys and content shredded
 *   POST /api/v1/meetings/pin-reset         Bearer Host token: every source's PIN back-off
 *                                           of the room forgotten
 *   GET|POST /api/v1/admin/meetings, DELETE /api/v1/admin/meetings/<alias>,
 *   POST /api/v1/admin/meetings/<alias>/reopen|pin-reset
 *                                           on conference-admin.sock only, Bearer token with
 *                                           the call's scope (api_tokens.c), audited
 *
 * Anything that does not name a meeting, token or resource the caller may
 * see answers the same 404, so URLs and meetings cannot be enumerated. A
 * meeting that has ended answers 410 meeting-ended to its invitation, its
 * tokens and its waiting room until it is reopened.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/common.h"
#include "../common/join_token.h"
#include "../saml/saml.h"
#include "../slides/slides.h"
#include "../store/store.h"
#include "apps_int.h"

static struct slides_store *store;
/* require-edge-token: the key an edge gatehouse makes its tokens with. */
static pthread_mutex_t edge_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char edge_key[32];
static int edge_required;
static char opened_as[600]; /* the meetings-store's conninfo at the open ("" SQLite) */
static int64_t token_ttl_ms = 15 * 60 * 1000;
static int64_t max_upload = 64 * 1024 * 1024;

#define NOT_FOUND GH_JOIN_NOT_FOUND_JSON
/* PIN guessing: each source has PIN_FREE wrong PINs per room, then waits
 * 1 s, 2 s, 4 s ... (at most PIN_MAX_DELAY_MS) before each next try; while
 * a room takes more than PIN_ROOM_CEILING wrong PINs a window (a guessing
 * wave from many sources) a source has PIN_FREE_BUSY. Nobody else is
 * locked out: a participant's first right PIN always gets through. */
#define PIN_FREE 3
#define PIN_FREE_BUSY 1
#define PIN_ROOM_CEILING 50
#define PIN_WINDOW_MS (5 * 60 * 1000)
#define PIN_MAX_DELAY_MS (15 * 60 * 1000)
/* A source's count lives this long from its first attempt (the store's
 * increment sets the TTL on the first write only): a day, so a guesser
 * starts afresh at most once a day. */
#define PIN_STATE_MS (24 * 60 * 60 * 1000LL)

struct room_warnings {
    const struct gh_conf *c;
    struct gh_sbuf *out;
};

static void warn_room(const struct slides_meeting *m, void *arg)
{
    struct room_warnings *w = arg;

    if (m->idp_group[0] != '\0' && gh_conf_idp_group_find(w->c, m->idp_group) == NULL)
        gh_sbuf_printf(w->out, "conference: room %s names identity-provider-group '%s', which "
                       "the configuration does not define: nobody can join it by SSO\n",
                       m->alias, m->idp_group);
}

/* Rooms the configuration (a new one, at a reload) would leave without
 * their group, one line each: the start goes on and the log says which
 * (gatehouse -t refuses). Read while the candidate is prepared, so the
 * commit does no database work. */
char *apps__meetings_room_warnings(const struct gh_conf *c)
{
    struct gh_sbuf out = {0};
    struct room_warnings w = {c, &out};

    if (store != NULL)
        slides_meeting_list(store, warn_room, &w);
    return out.p;
}

int apps__meetings_open(const struct gh_conf *c, char *err, size_t errlen)
{
    const struct slides_pg *shared;
    struct slides_pg pg;
    char dir[1024];

    shared = slides_pg_of(c, &pg);
    if (store != NULL) {
        /* The state folder and the meetings-store are read at start only. */
        char now[600];
        snprintf(now, sizeof(now), "%s", shared ? shared->conninfo : "");
        if (strcmp(now, opened_as) != 0)
            gh_log_warn("meetings-store: the change waits for a restart (the conference keeps "
                        "the store it opened)");
        return 0;
    }
    snprintf(opened_as, sizeof(opened_as), "%s", shared ? shared->conninfo : "");
    snprintf(dir, sizeof(dir), "%s/conference", c->state_dir);
    if (mkdir(c->state_dir, 0700) == -1 && errno != EEXIST) {
        snprintf(err, errlen, "state-dir %s: %s", c->state_dir, strerror(errno));
        return -1;
    }
    /* A database that does not answer at the start keeps nothing else from
     * starting: the conference answers 503 until it does. */
    pg.lazy = 1;
    store = slides_store_open(dir, c->slides_kek_file, shared, err, errlen);
    if (store == NULL)
        return -1;
    return apps__api_tokens_open(dir, err, errlen);
}

void apps__meetings_commit(const struct gh_conf *c)
{
    token_ttl_ms = c->join_token_timeout;
    max_upload = c->max_upload_size;
    pthread_mutex_lock(&edge_mu);
    edge_required = strcmp(c->require_edge_token, "on") == 0 && c->edge_key_loaded;
    memcpy(edge_key, c->edge_key, sizeof(edge_key));
    pthread_mutex_unlock(&edge_mu);
}

void apps__meetings_stop(void)
{
    slides_store_close(store);
    store = NULL;
}

/* A JSON answer (body is taken), with one more header when name is set. */
static enum MHD_Result json_h(struct MHD_Connection *conn, unsigned status, char *body,
                              const char *name, const char *value)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body,
                                                             MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret;

    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (name != NULL)
        MHD_add_response_header(r, name, value);
    ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result json(struct MHD_Connection *conn, unsigned status, char *body)
{
    return json_h(conn, status, body, NULL, NULL);
}

/* The same 404 for everything a caller may not know exists; but when the
 * lookup failed for want of a database (meetings-store postgresql away), a
 * 503: "no such meeting" would tell a participant their room is gone. */
static enum MHD_Result not_found(struct MHD_Connection *conn)
{
    if (slides_store_unavailable())
        return json(conn, 503, gh_strdup("{\"error\":\"the meeting store does not answer; "
                                         "try again\"}\n"));
    return json(conn, 404, gh_strdup(NOT_FOUND));
}

#define ENDED GH_JOIN_ENDED_JSON

/* 410 for whoever comes to a meeting that has ended: the invitation, a
 * token or a waiting-room entry of it; logged like every refusal. */
static enum MHD_Result ended(struct MHD_Connection *conn, const char *method, const char *url,
                             const struct slides_meeting *m)
{
    apps__security(conn, method, url, 410, "meeting-ended", m->alias);
    return json(conn, 410, gh_strdup(ENDED));
}

static const char *bearer(struct MHD_Connection *conn)
{
    const char *a = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");

    if (a == NULL || strncmp(a, "Bearer ", 7) != 0)
        return NULL;
    return a + 7;
}

/* require-edge-token (the seeds' call sequence, step 6): the manifest and
 * content only for a request an edge forwarded with its token for this
 * meeting, participant and path. 0 to go on; -1 refused (logged), as the
 * same 404 as anything unknown. */
static int edge_refused(struct MHD_Connection *conn, const char *url, const char *tok,
                        int64_t meeting)
{
    unsigned char key[32];
    char pid[33];
    enum gh_edge_check r;
    int req;

    pthread_mutex_lock(&edge_mu);
    req = edge_required;
    memcpy(key, edge_key, sizeof(key));
    pthread_mutex_unlock(&edge_mu);
    if (!req) {
        gh_wipe(key, sizeof(key));
        return 0;
    }
    gh_join_participant(tok, pid);
    {
        /* The path as the edge judged it: canonical, already decoded here. */
        size_t ul = strlen(url), rl;
        char *res = gh_calloc(1, ul + 2);
        gh_join_resource(url, ul, 0, res, ul + 2, &rl);
        r = gh_edge_token_check(key, MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                                 GH_EDGE_HEADER),
                                meeting, pid, res, rl, (int64_t)time(NULL));
        free(res);
    }
    gh_wipe(key, sizeof(key));
    if (r == GH_EDGE_OK)
        return 0;
    apps__security(conn, "GET", url, 404, gh_edge_check_name(r),
                   "require-edge-token");
    return -1;
}

/* 0, SLIDES_ENDED (m filled) or -1, as slides_token_check. */
static int token_of(struct MHD_Connection *conn, struct slides_token *t, struct slides_meeting *m)
{
    const char *b = bearer(conn);

    return b != NULL ? slides_token_check(store, b, t, m) : -1;
}

static const char *role_name(enum slides_role r)
{
    return r == SLIDES_HOST ? "host" : r == SLIDES_GUEST ? "guest" : "none";
}

static enum MHD_Result issue(struct MHD_Connection *conn, const struct slides_meeting *m,
                             enum slides_role role, const char *name, int fixed)
{
    struct slides_token t;
    char tok[SLIDES_TOKEN_HEX + 1];
    struct gh_sbuf o = {NULL, 0, 0};

    memset(&t, 0, sizeof(t));
    t.meeting = m->id;
    t.epoch = m->epoch;
    t.role = role;
    t.name_fixed = fixed;
    gh_strlcpy(t.name, name, sizeof(t.name));
    if (slides_token_issue(&t, token_ttl_ms, tok) == -1)
        return json(conn, 503, gh_strdup("{\"error\":\"the shared store is full\"}\n"));
    {
        struct slides_participant p;
        memset(&p, 0, sizeof(p));
        slides_token_participant(tok, p.id);
        p.meeting = m->id;
        p.epoch = m->epoch;
        p.role = role;
        gh_strlcpy(p.name, name, sizeof(p.name));
        p.name_fixed = fixed;
        p.joined = (int64_t)time(NULL);
        p.expires = p.joined + token_ttl_ms / 1000;
        if (slides_participant_add(store, &p) == -1)
            gh_log_warn("conference: participant %.8s joined %s but the participant list "
                        "refused them",
                        p.id, m->alias);
    }
    gh_sbuf_printf(&o, "{\"outcome\":\"joined\",\"role\":\"%s\",\"token\":\"%s\",\"meeting\":",
                   role_name(role), tok);
    gh_json_str(&o, m->alias);
    gh_sbuf_printf(&o, ",\"display_name\":");
    gh_json_str(&o, name);
    gh_sbuf_printf(&o, ",\"name_fixed\":%s,\"expires_in\":%lld}\n", fixed ? "true" : "false",
                   (long long)(token_ttl_ms / 1000));
    gh_wipe(tok, sizeof(tok));
    return json(conn, 200, o.p);
}

/* A token revoked, and its holder off the participant list. */
static int token_revoke(const char *tok)
{
    char id[33];

    if (slides_token_revoke(tok) == -1)
        return -1; /* still valid: the caller says so, and issues nothing */
    slides_token_participant(tok, id);
    slides_participant_remove(store, id);
    return 0;
}

#define NOT_REVOKED "{\"outcome\":\"unavailable\",\"message\":\"The shared store did not " \
                    "answer; try again.\"}\n"

/* POST /api/v1/meetings/participants/<id>/host: a Host makes a Guest of
 * their room a Host (the seeds: no authentication needed). */
static enum MHD_Result promote(struct MHD_Connection *conn, const char *url, const char *rest,
                               const struct slides_meeting *m)
{
    struct slides_participant p;
    char pid[33];

    if (strlen(rest) != 37 || strcmp(rest + 32, "/host") != 0)
        return not_found(conn);
    memcpy(pid, rest, 32);
    pid[32] = '\0';
    if (slides_participant_get(store, pid, &p) == -1 || p.meeting != m->id ||
        p.epoch != m->epoch || p.role != SLIDES_GUEST) {
        apps__security(conn, "POST", url, 404, "meeting-promote", "no such Guest here");
        return not_found(conn);
    }
    if (slides_token_promote(pid, (p.expires - (int64_t)time(NULL)) * 1000 + 1000) == -1 ||
        slides_participant_set_role(store, pid, SLIDES_HOST) == -1)
        return json(conn, 503, gh_strdup("{\"error\":\"the shared store is full\"}\n"));
    {
        char shown[400]; /* a typed name: escaped, so it cannot forge log lines */
        gh_json_put(shown, sizeof(shown), p.name, strlen(p.name), 128);
        gh_log_info("conference: participant %.8s (%s) is a Host of %s now (made so by a Host)",
                    pid, shown, m->alias);
    }
    return json(conn, 200, gh_strdup("{\"role\":\"host\"}\n"));
}

/* Keys of a room's PIN state, in the shared store (so the back-off holds
 * on every appliance): 'P' + kind + room + generation (+ the source). A
 * Host's reset moves the generation on, which forgets every source at once.
 *   src    a source's attempts not yet taken back by a right PIN (a counter)
 *   block  present while the source must wait (its TTL is the wait)
 *   room   wrong PINs in the room in one window of PIN_WINDOW_MS (a wave);
 *          + the window's number. The store's counters take a TTL on their
 *          first write only, so a window is a fixed one: the room is busy
 *          by this window's count and the last one's, and a wave that goes
 *          on keeps it busy. */
struct pin_keys {
    unsigned char src[34], block[34], room[26];
};

static void room_window(struct pin_keys *k, int64_t w)
{
    memcpy(k->room + 18, &w, 8);
}

static void pin_keys(const struct slides_meeting *m, const unsigned char addr[16],
                     struct pin_keys *k)
{
    int64_t gen = slides_pin_generation(m->id);

    k->src[0] = 'P';
    k->src[1] = 's';
    memcpy(k->src + 2, &m->id, 8);
    memcpy(k->src + 10, &gen, 8);
    memcpy(k->src + 18, addr, 16);
    memcpy(k->block, k->src, sizeof(k->block));
    k->block[1] = 'b';
    k->room[0] = 'P';
    k->room[1] = 'r';
    memcpy(k->room + 2, &m->id, 8);
    memcpy(k->room + 10, &gen, 8);
}

/* The wait after the over-th attempt beyond the free ones: 1 s, doubling,
 * at most PIN_MAX_DELAY_MS. */
static int64_t pin_delay(int64_t over)
{
    if (over >= 20 || (1000LL << over) >= PIN_MAX_DELAY_MS)
        return PIN_MAX_DELAY_MS;
    return 1000LL << over;
}

/* One PIN attempt of a source, counted before the PIN is checked (so a
 * burst of concurrent guesses is counted, and a refused one costs no
 * scrypt): while the block key lives, refused with its TTL as the wait;
 * else counted, and an attempt beyond the free ones lets itself in only by
 * setting the block (NX: of concurrent ones past the line, one goes in).
 * 0 to go on, or the ms to wait; a store that does not answer refuses (a
 * guess is never let through uncounted). */
static int64_t pin_attempt(const struct pin_keys *pk, int64_t free_tries)
{
    int64_t ttl = 0, n = 0, over;
    size_t vlen = 0;
    char v[8];
    enum store_status st;

    st = store_sync_get(pk->block, sizeof(pk->block), v, sizeof(v), &vlen, &ttl, 0);
    if (st == STORE_OK)
        return ttl > 0 ? ttl : 1;
    if (st != STORE_ABSENT)
        return 1000;
    if (store_sync_incr(pk->src, sizeof(pk->src), 1, PIN_STATE_MS, &n, NULL) != STORE_OK)
        return 1000;
    over = n - free_tries;
    if (over < 0)
        return 0;
    st = store_sync_set(pk->block, sizeof(pk->block), "1", 1, pin_delay(over), STORE_NX);
    return st == STORE_OK ? 0 : st == STORE_EXISTS ? pin_delay(over) : 1000;
}

/* Counts one PIN attempt of the caller's source in room m before the PIN
 * is checked: 0 (keys in pk) to go on, or -1 with *ret the 429 of the
 * back-off (with Retry-After, RFC 9110 10.2.3, and a security line). */
static int pin_gate(struct MHD_Connection *conn, const struct slides_meeting *m, const char *url,
                    struct pin_keys *pk, enum MHD_Result *ret)
{
    unsigned char addr[16];
    char src[64], detail[200];
    struct gh_sbuf o = {NULL, 0, 0};
    int64_t busy = 0, wait;

    apps__client_addr(conn, addr, src, sizeof(src));
    pin_keys(m, addr, pk);
    {
        int64_t w = (int64_t)gh_now_ms() / PIN_WINDOW_MS, n = 0;
        room_window(pk, w - 1);
        if (store_sync_incr(pk->room, sizeof(pk->room), 0, 2 * PIN_WINDOW_MS, &n, NULL) ==
            STORE_OK)
            busy += n;
        room_window(pk, w);
        if (store_sync_incr(pk->room, sizeof(pk->room), 0, 2 * PIN_WINDOW_MS, &n, NULL) ==
            STORE_OK)
            busy += n;
    }
    wait = pin_attempt(pk, busy > PIN_ROOM_CEILING ? PIN_FREE_BUSY : PIN_FREE);
    if (wait == 0)
        return 0;
    snprintf(detail, sizeof(detail), "%s from %s, %lld ms to wait", m->alias, src,
             (long long)wait);
    apps__security(conn, "POST", url, 429, "meeting-pin-backoff", detail);
    gh_sbuf_printf(&o, "{\"outcome\":\"too-many-attempts\",\"retry_after\":%lld}\n",
                   (long long)(wait + 999) / 1000);
    snprintf(detail, sizeof(detail), "%lld", (long long)(wait + 999) / 1000);
    *ret = json_h(conn, 429, o.p, "Retry-After", detail);
    return -1;
}

/* A right PIN takes back its own attempt, and only that: the wrong ones
 * before it stay counted, so knowing one PIN (the Guest's) does not wipe
 * the back-off on guessing the other, and a participant who joins again
 * and again with the right PIN never waits. The wait it may have set goes:
 * it was let in, so any wait before it had passed. */
static void pin_right(const struct pin_keys *pk)
{
    int64_t n = 0;

    if (store_sync_incr(pk->src, sizeof(pk->src), -1, PIN_STATE_MS, &n, NULL) == STORE_OK &&
        n < 0)
        store_sync_incr(pk->src, sizeof(pk->src), 1, PIN_STATE_MS, &n, NULL);
    store_sync_del(pk->block, sizeof(pk->block));
}

/* A wrong PIN of a counted attempt also counts for the room (a wave). */
static void pin_wrong(const struct pin_keys *pk)
{
    int64_t n;

    store_sync_incr(pk->room, sizeof(pk->room), 1, 2 * PIN_WINDOW_MS, &n, NULL);
}

/* The seeds: a Guest can later be escalated to a Host without
 * authentication, here by entering the Host PIN (counted like any PIN
 * try). The Guest's token is spent; a Host token with the same name comes
 * back. */
static enum MHD_Result escalate(struct MHD_Connection *conn, struct apps__req *rq,
                                const char *url, const struct slides_token *t,
                                const struct slides_meeting *m)
{
    char *pin = gh_form_get(rq->body.p ? rq->body.p : "", rq->body.len, "pin");
    struct pin_keys pk;
    enum MHD_Result ret;

    if (t->role != SLIDES_GUEST || m->policy.host_pin_v[0] == '\0' || pin == NULL) {
        gh_free_secret(pin);
        return not_found(conn);
    }
    if (pin_gate(conn, m, url, &pk, &ret) == -1) {
        gh_free_secret(pin);
        return ret;
    }
    if (!slides_secret_check(m->policy.host_pin_v, pin)) {
        pin_wrong(&pk);
        apps__security(conn, "POST", url, 403, "meeting-bad-pin", m->alias);
        ret = json(conn, 403, gh_strdup("{\"outcome\":\"bad-pin\"}\n"));
    } else {
        pin_right(&pk);
        ret = token_revoke(bearer(conn)) == -1 ? json(conn, 503, gh_strdup(NOT_REVOKED))
                                               : issue(conn, m, SLIDES_HOST, t->name,
                                                       t->name_fixed);
    }
    gh_free_secret(pin);
    return ret;
}

/* A Host's transfer of a participant, waiting for the participant to take
 * it (they hold the token; the Host knows only the id): the destination
 * room and epoch, and the role the Host gave. */
struct transfer_offer {
    int64_t meeting, epoch;
    enum slides_role role;
};

static void offer_key(const char *pid, unsigned char key[17])
{
    key[0] = 'T';
    if (gh_unhex(pid, key + 1, 16) == -1)
        memset(key + 1, 0, 16);
}

/* Whether pin lets a transfer into m carry role: a room with PINs asks
 * the PIN of that role (the Host PIN serves for a Guest too), as a join
 * would; a room without asks none. */
static int pin_allows(const struct slides_meeting *m, const char *pin, enum slides_role role)
{
    if (m->policy.host_pin_v[0] == '\0')
        return 1;
    if (slides_secret_check(m->policy.host_pin_v, pin))
        return 1;
    return role == SLIDES_GUEST && m->policy.guest_pin_v[0] != '\0' &&
           slides_secret_check(m->policy.guest_pin_v, pin);
}

/* POST /api/v1/meetings/transfer (a Host of the room the participant is
 * in): participant=<id>, the destination's invitation (uri, key) and, if
 * it has PINs, the PIN of the role given (role=host|guest, default: as
 * now), so a Host moves people only where they could send them by
 * invitation, never themselves. Every refusal is the same 404. */
static enum MHD_Result transfer_offer(struct MHD_Connection *conn, struct apps__req *rq,
                                      const char *url, const struct slides_meeting *from)
{
    const char *body = rq->body.p ? rq->body.p : "";
    char *pid = gh_form_get(body, rq->body.len, "participant");
    char *uri = gh_form_get(body, rq->body.len, "uri");
    char *key = gh_form_get(body, rq->body.len, "key");
    char *pin = gh_form_get(body, rq->body.len, "pin");
    char *role = gh_form_get(body, rq->body.len, "role");
    char self[33];
    struct slides_participant p;
    struct slides_meeting dest;
    struct transfer_offer t;
    struct pin_keys pk;
    unsigned char okey[17];
    enum MHD_Result ret;
    int ok;

    slides_token_participant(bearer(conn), self);
    ok = pid != NULL && uri != NULL && key != NULL && strlen(pid) == 32 &&
         strcmp(pid, self) != 0 && slides_participant_get(store, pid, &p) == 0 &&
         p.meeting == from->id && p.epoch == from->epoch &&
         slides_meeting_by_uri(store, uri, &dest) == 0 && slides_meeting_key_ok(&dest, key) &&
         dest.id != from->id && dest.ended == 0 &&
         (role == NULL || strcmp(role, "host") == 0 || strcmp(role, "guest") == 0);
    if (ok) {
        t.meeting = dest.id;
        t.epoch = dest.epoch;
        t.role = role == NULL ? p.role : strcmp(role, "host") == 0 ? SLIDES_HOST : SLIDES_GUEST;
        if (dest.policy.host_pin_v[0] != '\0') {
            if (pin_gate(conn, &dest, url, &pk, &ret) == -1)
                goto done;
            if (!(ok = pin != NULL && pin_allows(&dest, pin, t.role)))
                pin_wrong(&pk);
            else
                pin_right(&pk);
        }
    }
    if (!ok) {
        apps__security(conn, "POST", url, 404, "meeting-transfer",
                       "no such participant here, or a destination it may not go to");
        ret = not_found(conn);
        goto done;
    }
    offer_key(pid, okey);
    /* In the shared store: the participant may poll another appliance. */
    if (store_sync_set(okey, sizeof(okey), &t, sizeof(t), 2 * 60 * 1000, STORE_DURABLE) !=
        STORE_OK) {
        ret = json(conn, 503, gh_strdup("{\"error\":\"the shared store did not take the "
                                        "offer\"}\n"));
    } else {
        gh_log_info("conference: a Host of %s offers participant %.8s a transfer to %s",
                    from->alias, pid, dest.alias);
        ret = json(conn, 202, gh_strdup("{\"offered\":true}\n"));
    }
done:
    free(pid);
    free(uri);
    gh_free_secret(key);
    gh_free_secret(pin);
    free(role);
    return ret;
}

/* GET /api/v1/meetings/transfer (the participant, with their token): the
 * offer, if any, decided by the seeds' transfer rules: into a room whose
 * role needs SSO only with a session from an IdP of its group (carried, no
 * sign-in again); otherwise the participant stays where they are. */
static enum MHD_Result transfer_take(struct MHD_Connection *conn, struct saml_sp *sp,
                                     const char *url, const struct slides_token *tk)
{
    struct transfer_offer t;
    struct slides_meeting dest;
    struct slides_join_req q;
    struct slides_decision d;
    struct saml_session s;
    const struct saml_idp *idp;
    char pid[33], sid[SAML_SESSION_ID_HEX + 1], detail[200];
    unsigned char key[17];

    slides_token_participant(bearer(conn), pid);
    offer_key(pid, key);
    {
        size_t n = 0;
        enum store_status st = store_sync_get(key, sizeof(key), &t, sizeof(t), &n, NULL, 1);
        if (st != STORE_OK && st != STORE_ABSENT)
            return json(conn, 503, gh_strdup("{\"error\":\"the shared store does not "
                                             "answer\"}\n"));
        if (st != STORE_OK || n != sizeof(t))
            return json(conn, 200, gh_strdup("{\"outcome\":\"no-transfer\"}\n"));
    }
    if (slides_meeting_by_id(store, t.meeting, &dest) == -1 || dest.epoch != t.epoch ||
        dest.ended != 0)
        return json(conn, 200, gh_strdup("{\"outcome\":\"no-transfer\"}\n"));
    memset(&q, 0, sizeof(q));
    q.client = SLIDES_CLIENT_WEB;
    q.sso_capable = 1;
    q.transfer = 1;
    q.transfer_role = t.role;
    if (apps__session_of(conn, sid, &s) == 0 && (idp = saml_idp_by_uuid(sp, s.idp_uuid)) != NULL) {
        q.authenticated = 1;
        q.idp_in_group = dest.idp_group[0] && saml_group_has(sp, dest.idp_group, idp);
    }
    if (slides_join_decide(&dest.policy, &q, &d) != SLIDES_JOIN) {
        snprintf(detail, sizeof(detail), "%s into %s", tk->name, dest.alias);
        apps__security(conn, "GET", url, 403, "meeting-transfer-refused", detail);
        return json(conn, 403, gh_strdup("{\"outcome\":\"transfer-refused\",\"message\":\"The "
                                         "room you were sent to needs a sign-in you do not have; "
                                         "you stay where you are.\"}\n"));
    }
    if (token_revoke(bearer(conn)) == -1)
        return json(conn, 503, gh_strdup(NOT_REVOKED));
    return issue(conn, &dest, d.role, tk->name, tk->name_fixed);
}


static void pin_reset(const struct slides_meeting *m)
{
    slides_pin_backoff_reset(m->id);
}

/* A join by the invitation (uri and key), or by the Virtual Reception
 * (reception: the room's alias alone, for rooms open to it). */
static enum MHD_Result join(struct MHD_Connection *conn, struct apps__req *rq,
                            struct saml_sp *sp, const char *url, int reception)
{
    const char *body = rq->body.p ? rq->body.p : "";
    char *alias = reception ? gh_form_get(body, rq->body.len, "alias") : NULL;
    char *uri = gh_form_get(body, rq->body.len, "uri");
    char *key = gh_form_get(body, rq->body.len, "key");
    char *pin = gh_form_get(body, rq->body.len, "pin");
    char *name = gh_form_get(body, rq->body.len, "name");
    char *client = gh_form_get(body, rq->body.len, "client");
    char *registered = gh_form_get(body, rq->body.len, "registered");
    struct slides_meeting m;
    struct slides_join_req q;
    struct slides_decision d;
    struct saml_session s;
    char sid[SAML_SESSION_ID_HEX + 1], shown[128];
    const struct saml_idp *idp = NULL;
    struct gh_sbuf o = {NULL, 0, 0};
    enum MHD_Result ret;
    int have_session, fixed, counted = 0;
    char tname[65];
    struct pin_keys pk;

    /* A room not open to the reception looks like none at all there. */
    if (reception ? alias == NULL || slides_meeting_by_alias(store, alias, &m) == -1 ||
                        !m.reception
                  : uri == NULL || key == NULL || slides_meeting_by_uri(store, uri, &m) == -1 ||
                        !slides_meeting_key_ok(&m, key)) {
        apps__security(conn, "POST", url, 404, "meeting-unknown",
                       reception ? "alias (Virtual Reception)" : "URI or conference key");
        ret = not_found(conn);
        goto done;
    }
    if (m.ended != 0) {
        ret = ended(conn, "POST", url, &m);
        goto done;
    }
    memset(&q, 0, sizeof(q));
    q.client = client && strcmp(client, "device") == 0 ? SLIDES_CLIENT_DEVICE : SLIDES_CLIENT_WEB;
    q.sso_capable = !(client && strcmp(client, "web-legacy") == 0);
    /* Only the internal side (admin token: the call-control gateway) can
     * vouch that a device is registered here. */
    q.registered = registered && strcmp(registered, "1") == 0 && rq->admin_socket &&
                   apps__api_token_check(bearer(conn), APPS_SCOPE_DEVICES, tname) == 0;
    if (q.registered)
        apps__api_audit(tname, "POST", url, 0, "vouched a registered device");
    q.pin = pin;
    have_session = apps__session_of(conn, sid, &s) == 0;
    if (have_session) {
        idp = saml_idp_by_uuid(sp, s.idp_uuid);
        q.authenticated = idp != NULL;
        q.idp_in_group = idp != NULL && m.idp_group[0] && saml_group_has(sp, m.idp_group, idp);
    }
    if (pin != NULL && m.policy.host_pin_v[0] != '\0') {
        if (pin_gate(conn, &m, url, &pk, &ret) == -1)
            goto done;
        counted = 1;
    }
    slides_join_decide(&m.policy, &q, &d);
    if (counted && d.pin_matched)
        pin_right(&pk);
    switch (d.outcome) {
    case SLIDES_JOIN:
        fixed = slides_display_name(&d, have_session ? s.display_name : NULL,
                                    have_session && s.name_from_idp, name, shown, sizeof(shown));
        ret = issue(conn, &m, d.role, shown, fixed);
        break;
    case SLIDES_NEED_PIN:
        ret = json(conn, 401, gh_strdup("{\"outcome\":\"need-pin\"}\n"));
        break;
    case SLIDES_BAD_PIN:
        if (counted)
            pin_wrong(&pk);
        apps__security(conn, "POST", url, 403, "meeting-bad-pin", m.alias);
        ret = json(conn, 403, gh_strdup("{\"outcome\":\"bad-pin\"}\n"));
        break;
    case SLIDES_NEED_SSO:
        gh_sbuf_printf(&o, "{\"outcome\":\"need-sso\",\"login\":\"/api/v1/samllogin/%s\"}\n",
                       m.idp_group);
        ret = json(conn, 401, o.p);
        break;
    case SLIDES_CLIENT_NO_SSO:
        gh_sbuf_printf(&o, "{\"outcome\":\"client-no-sso\",\"message\":");
        gh_json_str(&o, slides_outcome_message(d.outcome));
        gh_sbuf_printf(&o, "}\n");
        ret = json(conn, 403, o.p);
        break;
    case SLIDES_WAITING_ROOM: {
        char wid[33];
        if (slides_waiting_add(store, &m, name && name[0] ? name : "Participant", wid) == -1) {
            ret = json(conn, 503, gh_strdup("{\"error\":\"store unavailable\"}\n"));
            break;
        }
        gh_sbuf_printf(&o, "{\"outcome\":\"waiting-room\",\"waiting\":\"%s\"}\n", wid);
        ret = json(conn, 202, o.p);
        break;
    }
    default:
        ret = json(conn, 409, gh_strdup("{\"outcome\":\"transfer-refused\"}\n"));
        break;
    }
done:
    free(alias);
    free(uri);
    gh_free_secret(key);
    gh_free_secret(pin);
    free(name);
    free(client);
    free(registered);
    return ret;
}

static enum MHD_Result waiting_poll(struct MHD_Connection *conn, const char *wid)
{
    struct slides_waiter w;
    struct slides_meeting m;

    if (slides_waiting_get(store, wid, &w) == -1 ||
        slides_meeting_by_id(store, w.meeting, &m) == -1)
        return not_found(conn);
    if (w.state == 3)
        return ended(conn, "GET", "/api/v1/meetings/waiting/", &m);
    if (m.epoch != w.epoch)
        return not_found(conn);
    if (w.state == 0)
        return json(conn, 202, gh_strdup("{\"outcome\":\"waiting-room\"}\n"));
    if (w.state == 2)
        return json(conn, 403, gh_strdup("{\"outcome\":\"refused\"}\n"));
    if (slides_waiting_take(store, wid) == -1)
        return not_found(conn);
    /* Admitted from the waiting room: a Guest, without a PIN (the seeds). */
    return issue(conn, &m, SLIDES_GUEST, w.name, 0);
}

struct list_ctx {
    struct gh_sbuf *o;
    int n;
};

static void add_resource(const struct slides_resource *r, void *arg)
{
    struct list_ctx *c = arg;
    char *k = apps__b64(r->key, sizeof(r->key));

    gh_sbuf_printf(c->o, "%s{\"name\":", c->n++ ? "," : "");
    gh_json_str(c->o, r->name);
    gh_sbuf_printf(c->o, ",\"size\":%lld,\"stored\":%lld,\"url\":\"/api/v1/content/%s\","
                         "\"key\":\"%s\"}",
                   (long long)r->size, (long long)r->stored, r->id, k);
    gh_wipe(k, strlen(k));
    free(k);
}

static enum MHD_Result manifest(struct MHD_Connection *conn, const struct slides_token *t,
                                const struct slides_meeting *m)
{
    struct gh_sbuf o = {NULL, 0, 0};
    struct list_ctx c = {&o, 0};

    gh_sbuf_printf(&o, "{\"meeting\":");
    gh_json_str(&o, m->alias);
    gh_sbuf_printf(&o, ",\"role\":\"%s\",\"display_name\":", role_name(t->role));
    gh_json_str(&o, t->name);
    gh_sbuf_printf(&o, ",\"cipher\":\"AES-128-GCM\",\"compression\":\"zlib\","
                       "\"format\":\"GHS1 | iv(12) | ciphertext | tag(16)\",\"resources\":[");
    slides_resource_list(store, m->id, add_resource, &c);
    gh_sbuf_printf(&o, "]}\n");
    return json(conn, 200, o.p);
}

static void add_waiter(const struct slides_waiter *w, void *arg)
{
    struct list_ctx *c = arg;

    gh_sbuf_printf(c->o, "%s{\"id\":\"%s\",\"name\":", c->n++ ? "," : "", w->id);
    gh_json_str(c->o, w->name);
    gh_sbuf_printf(c->o, "}");
}

static void add_participant(const struct slides_participant *p, void *arg)
{
    struct list_ctx *c = arg;

    gh_sbuf_printf(c->o, "%s{\"id\":\"%s\",\"role\":\"%s\",\"display_name\":", c->n++ ? "," : "",
                   p->id, role_name(p->role));
    gh_json_str(c->o, p->name);
    gh_sbuf_printf(c->o, ",\"name_from_idp\":%s,\"joined\":%lld}", p->name_fixed ? "true" : "false",
                   (long long)p->joined);
}

/* A download streams from the store (a file, or PostgreSQL's chunks) on
 * the conference application's thread: never whole in memory. */
struct download {
    struct slides_reader *rd;
    int64_t off; /* where the response's byte 0 is in the stored form */
};

static ssize_t download_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct download *dl = cls;
    long n = slides_reader_pread(dl->rd, dl->off + (int64_t)pos, buf, max);

    /* Short of what the headers promised (the meeting ended under it, or
     * the database went away): the connection is cut, not padded. */
    return n > 0 ? (ssize_t)n : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void download_free(void *cls)
{
    struct download *dl = cls;

    slides_reader_close(dl->rd);
    free(dl);
}

static enum MHD_Result content(struct MHD_Connection *conn, const char *url, const char *id)
{
    struct slides_token t;
    struct slides_meeting m;
    struct slides_resource r;
    struct MHD_Response *resp;
    int64_t size = 0, off = 0, len = 0;
    struct download *dl;
    struct slides_reader *rd = NULL;
    enum MHD_Result ret;
    int whole, rc;

    /* Token, resource, and the two of the same meeting; else the same 404
     * (410 to a token of a meeting that has ended: its content is gone). */
    rc = token_of(conn, &t, &m);
    if (rc != -1 && edge_refused(conn, url, bearer(conn), m.id) == -1)
        return not_found(conn);
    if (rc == SLIDES_ENDED)
        return ended(conn, "GET", "/api/v1/content/", &m);
    if (rc == -1 || slides_resource_get(store, id, &r) == -1 || r.meeting != m.id ||
        (rd = slides_content_reader(store, id, &size)) == NULL)
        return not_found(conn);
    whole = slides_parse_range(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Range"), size,
                               &off, &len);
    if (whole == -1) {
        char cr[64];
        slides_reader_close(rd);
        resp = MHD_create_response_from_buffer(0, (void *)(uintptr_t)"", MHD_RESPMEM_PERSISTENT);
        snprintf(cr, sizeof(cr), "bytes */%lld", (long long)size);
        MHD_add_response_header(resp, "Content-Range", cr);
        ret = MHD_queue_response(conn, 416, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    if (whole == 1) {
        off = 0;
        len = size;
    }
    dl = gh_calloc(1, sizeof(*dl));
    dl->rd = rd;
    dl->off = off;
    resp = MHD_create_response_from_callback((uint64_t)len, 64 * 1024, download_read, dl,
                                             download_free);
    if (resp == NULL) {
        download_free(dl);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "Accept-Ranges", "bytes");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (whole == 0) {
        char cr[96];
        snprintf(cr, sizeof(cr), "bytes %lld-%lld/%lld", (long long)off,
                 (long long)(off + len - 1), (long long)size);
        MHD_add_response_header(resp, "Content-Range", cr);
    }
    ret = MHD_queue_response(conn, whole == 0 ? 206 : 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Streaming upload: called for the head (no data yet), each chunk, and the
 * end. The token is checked before a byte is stored. */
static enum MHD_Result upload(struct MHD_Connection *conn, struct apps__req *rq, const char *url,
                              const char *data, size_t *size)
{
    struct slides_token t;
    struct slides_meeting m;
    char id[33];

    if (!rq->started) {
        const char *name = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "name");
        rq->started = 1;
        int rc = token_of(conn, &t, &m);
        if (rc == SLIDES_ENDED) {
            rq->status = 410;
            gh_strlcpy(rq->err, m.alias, sizeof(rq->err)); /* for the log at the end */
        } else if (rc == -1 && slides_store_unavailable()) {
            rq->status = 503;
            snprintf(rq->err, sizeof(rq->err), "the meeting store does not answer");
        } else if (rc == -1 || t.role != SLIDES_HOST) {
            rq->status = 404;
        } else if (name == NULL || name[0] == '\0' || strlen(name) > 200 || strchr(name, '/') ||
                   strchr(name, '\\')) {
            rq->status = 400;
            snprintf(rq->err, sizeof(rq->err), "name: 1 to 200 bytes, no slashes");
        } else {
            rq->up = slides_upload_begin(store, m.id, name, rq->err, sizeof(rq->err));
            if (rq->up == NULL)
                rq->status = errno == ENOSPC ? 507 : strstr(rq->err, "busy") ? 503 : 500;
        }
        /* MHD's first call (the head) went to conference.c; this one holds
         * the first data, or is the end of an empty body: go on. */
    }
    if (*size != 0) {
        if (rq->up != NULL && rq->status == 0) {
            if (slides_upload_size(rq->up) + (int64_t)*size > max_upload) {
                rq->status = 413;
                snprintf(rq->err, sizeof(rq->err), "larger than max-upload-size");
                slides_upload_abort(rq->up);
                rq->up = NULL;
            } else if (slides_upload_write(rq->up, data, *size, rq->err, sizeof(rq->err)) == -1) {
                rq->status = strstr(rq->err, "full") ? 507 : 500;
                slides_upload_abort(rq->up);
                rq->up = NULL;
            }
        }
        *size = 0;
        return MHD_YES;
    }
    if (rq->status == 404)
        return not_found(conn);
    if (rq->status == 410) {
        apps__security(conn, "POST", url, 410, "meeting-ended", rq->err);
        return json(conn, 410, gh_strdup(ENDED));
    }
    if (rq->status != 0 || rq->up == NULL) {
        struct gh_sbuf o = {NULL, 0, 0};
        if (rq->status == 507 || rq->status == 500)
            gh_log_err("conference: upload refused: %s", rq->err);
        apps__security(conn, "POST", url, rq->status ? rq->status : 500, "upload-refused",
                       rq->err);
        gh_sbuf_printf(&o, "{\"error\":");
        gh_json_str(&o, rq->err[0] ? rq->err : "upload failed");
        gh_sbuf_printf(&o, "}\n");
        return json(conn, rq->status ? (unsigned)rq->status : 500, o.p);
    }
    {
        struct slides_upload *up = rq->up;
        rq->up = NULL;
        if (slides_upload_finish(up, id, rq->err, sizeof(rq->err)) == -1) {
            struct gh_sbuf o = {NULL, 0, 0};
            int st = strstr(rq->err, "full") ? 507 : strstr(rq->err, "ended") ? 410 : 500;
            if (st != 410)
                gh_log_err("conference: upload not stored: %s", rq->err);
            gh_sbuf_printf(&o, "{\"error\":");
            gh_json_str(&o, rq->err);
            gh_sbuf_printf(&o, "}\n");
            return json(conn, (unsigned)st, o.p);
        }
    }
    {
        struct gh_sbuf o = {NULL, 0, 0};
        gh_sbuf_printf(&o, "{\"id\":\"%s\"}\n", id);
        return json(conn, 201, o.p);
    }
}

static void add_meeting(const struct slides_meeting *m, void *arg)
{
    struct list_ctx *c = arg;
    static const char *const auth[] = {"none", "hosts", "guests", "both"};

    gh_sbuf_printf(c->o, "%s{\"alias\":", c->n++ ? "," : "");
    gh_json_str(c->o, m->alias);
    gh_sbuf_printf(c->o, ",\"uri\":");
    gh_json_str(c->o, m->uri);
    /* The key only in the answer to a creation: afterwards the store has
     * its verifier alone, and PINs are never shown again. */
    if (m->conference_key[0] != '\0')
        gh_sbuf_printf(c->o, ",\"conference_key\":\"%s\"", m->conference_key);
    gh_sbuf_printf(c->o, ",\"host_pin_set\":%s,\"guest_pin_set\":%s,\"reception\":%s",
                   m->policy.host_pin_v[0] ? "true" : "false",
                   m->policy.guest_pin_v[0] ? "true" : "false", m->reception ? "true" : "false");
    gh_sbuf_printf(c->o, ",\"authentication\":\"%s\",\"idp_group\":", auth[m->policy.auth & 3]);
    gh_json_str(c->o, m->idp_group);
    gh_sbuf_printf(c->o, ",\"other_participants\":\"%s\"}",
                   m->policy.other == SLIDES_OTHER_DISALLOW_ALL ? "disallow-all"
                                                                : "allowed-if-trusted");
}

/* The PINs of a form, in clear only here, on their way to verifiers. */
struct typed_pins {
    char host[33], guest[33];
};

static int meeting_from_form(const char *body, size_t len, struct slides_meeting *m,
                             struct typed_pins *pins, char *err, size_t errlen)
{
    static const char *const auth[] = {"none", "hosts", "guests", "both"};
    const char *names[] = {"alias", "host_pin", "guest_pin", "idp_group"};
    char *dst[] = {m->alias, pins->host, pins->guest, m->idp_group};
    size_t sizes[] = {sizeof(m->alias), sizeof(pins->host), sizeof(pins->guest),
                      sizeof(m->idp_group)};
    char *v;
    size_t i;

    memset(m, 0, sizeof(*m));
    memset(pins, 0, sizeof(*pins));
    for (i = 0; i < 4; i++) {
        v = gh_form_get(body, len, names[i]);
        if (v != NULL && gh_strlcpy(dst[i], v, sizes[i]) == -1) {
            snprintf(err, errlen, "%s is too long", names[i]);
            gh_wipe(v, strlen(v));
            free(v);
            return -1;
        }
        if (v != NULL)
            gh_wipe(v, strlen(v));
        free(v);
    }
    v = gh_form_get(body, len, "authentication");
    m->policy.auth = SLIDES_AUTH_NONE;
    for (i = 0; v != NULL && i < 4; i++)
        if (strcmp(v, auth[i]) == 0)
            m->policy.auth = (enum slides_auth)i;
    if (v != NULL && strcmp(v, auth[m->policy.auth]) != 0) {
        snprintf(err, errlen, "authentication: none, hosts, guests or both");
        free(v);
        return -1;
    }
    free(v);
    v = gh_form_get(body, len, "reception");
    if (v != NULL && strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
        snprintf(err, errlen, "reception: on or off");
        free(v);
        return -1;
    }
    m->reception = v != NULL && strcmp(v, "on") == 0;
    free(v);
    v = gh_form_get(body, len, "other_participants");
    if (v != NULL && strcmp(v, "disallow-all") != 0 && strcmp(v, "allowed-if-trusted") != 0) {
        snprintf(err, errlen, "other_participants: allowed-if-trusted or disallow-all");
        free(v);
        return -1;
    }
    m->policy.other = v && strcmp(v, "disallow-all") == 0 ? SLIDES_OTHER_DISALLOW_ALL
                                                          : SLIDES_OTHER_ALLOWED_IF_TRUSTED;
    free(v);
    return 0;
}

/* A room may name only a group the running configuration defines: else
 * nobody could ever join it by SSO. 1 with err when missing. */
static int group_missing(const struct saml_sp *sp, const char *group, char *err, size_t errlen)
{
    if (group[0] == '\0' || (sp != NULL && saml_group_exists(sp, group)))
        return 0;
    snprintf(err, errlen, "identity-provider-group '%s' is not defined in the configuration",
             group);
    return 1;
}

/* An answer of the admin API: its status and body, sent and audited in one
 * place (reply). */
struct admin_answer {
    unsigned status;
    char *body;
    char detail[120];
};

static void answer(struct admin_answer *a, unsigned status, char *body, const char *detail)
{
    a->status = status;
    a->body = body;
    gh_strlcpy(a->detail, detail, sizeof(a->detail));
}

/* The scope an admin call needs (0: no such call). */
static unsigned admin_scope(const char *method, const char *rest)
{
    const char *act = rest[0] == '/' ? strchr(rest + 1, '/') : NULL;

    if (rest[0] == '\0')
        return strcmp(method, "GET") == 0    ? APPS_SCOPE_MEETINGS_READ
               : strcmp(method, "POST") == 0 ? APPS_SCOPE_MEETINGS_WRITE
                                             : 0;
    if (rest[0] != '/')
        return 0;
    if (strcmp(method, "DELETE") == 0 && act == NULL)
        return APPS_SCOPE_MEETINGS_WRITE;
    if (strcmp(method, "POST") == 0 && act != NULL && strcmp(act, "/reopen") == 0)
        return APPS_SCOPE_MEETINGS_WRITE;
    if (strcmp(method, "POST") == 0 && act != NULL && strcmp(act, "/pin-reset") == 0)
        return APPS_SCOPE_PIN_RESET;
    return 0;
}

static void admin_op(const char *method, const char *rest, struct apps__req *rq,
                     const struct saml_sp *sp, struct admin_answer *a)
{
    struct gh_sbuf o = {NULL, 0, 0};
    struct list_ctx c = {&o, 0};
    struct slides_meeting m;
    struct typed_pins tp;
    struct slides_pins pins = {tp.host, tp.guest};
    char err[256], alias[80];
    const char *act;

    if (rest[0] == '\0' && strcmp(method, "GET") == 0) {
        gh_sbuf_printf(&o, "{\"meetings\":[");
        slides_meeting_list(store, add_meeting, &c);
        gh_sbuf_printf(&o, "]}\n");
        answer(a, 200, o.p, "list");
        return;
    }
    if (rest[0] == '\0') {
        if (meeting_from_form(rq->body.p ? rq->body.p : "", rq->body.len, &m, &tp, err,
                              sizeof(err)) == -1 ||
            group_missing(sp, m.idp_group, err, sizeof(err)) ||
            slides_meeting_create(store, &m, &pins, err, sizeof(err)) == -1) {
            gh_wipe(&tp, sizeof(tp));
            gh_sbuf_printf(&o, "{\"error\":");
            gh_json_str(&o, err);
            gh_sbuf_printf(&o, "}\n");
            answer(a, 422, o.p, err);
            return;
        }
        gh_wipe(&tp, sizeof(tp));
        add_meeting(&m, &c);
        gh_sbuf_printf(&o, "\n");
        gh_wipe(m.conference_key, sizeof(m.conference_key));
        answer(a, 201, o.p, m.alias);
        return;
    }
    act = strchr(rest + 1, '/');
    snprintf(alias, sizeof(alias), "%.*s", act ? (int)(act - rest - 1) : (int)strlen(rest + 1),
             rest + 1);
    if (slides_meeting_by_alias(store, alias, &m) == -1) {
        answer(a, 404, gh_strdup(NOT_FOUND), alias);
    } else if (act == NULL) { /* DELETE */
        if (slides_meeting_end(store, m.id, 1, NULL) == -1)
            answer(a, 500, gh_strdup("{\"error\":\"store\"}\n"), alias);
        else
            answer(a, 200, gh_strdup("{\"deleted\":true}\n"), alias);
    } else if (strcmp(act, "/pin-reset") == 0) {
        pin_reset(&m);
        answer(a, 200, gh_strdup("{\"pin_reset\":true}\n"), alias);
    } else if (slides_meeting_reopen(store, m.id) == -1) {
        answer(a, 409, gh_strdup("{\"error\":\"the meeting has not ended\"}\n"), alias);
    } else {
        gh_log_info("conference: meeting %s reopened by the admin API", m.alias);
        answer(a, 200, gh_strdup("{\"reopened\":true}\n"), alias);
    }
}

/* The conference admin API: only on the conference-admin socket (through a
 * listener it is the 404 of anything unknown), each call with a token that
 * has the call's scope, and each call audited with the token's name. */
static enum MHD_Result admin(struct MHD_Connection *conn, const char *method, const char *url,
                             const char *rest, struct apps__req *rq, const struct saml_sp *sp)
{
    struct admin_answer a = {0, NULL, ""};
    unsigned scope = admin_scope(method, rest);
    char name[65] = "";
    int rc;

    if (!rq->admin_socket)
        return not_found(conn);
    rc = apps__api_token_check(bearer(conn), scope, name);
    if (rc == -1)
        answer(&a, 401, gh_strdup("{\"error\":\"a token of the admin API is needed\"}\n"),
               "no or unknown token");
    else if (scope == 0)
        answer(&a, 404, gh_strdup(NOT_FOUND), "no such call");
    else if (rc == -2)
        answer(&a, 403, gh_strdup("{\"error\":\"the token lacks the scope of this call\"}\n"),
               "scope");
    else
        admin_op(method, rest, rq, sp, &a);
    apps__api_audit(name[0] ? name : "-", method, url, (int)a.status, a.detail);
    return json(conn, a.status, a.body);
}

enum MHD_Result apps__meetings_handler(struct MHD_Connection *conn, const char *url,
                                       const char *method, const char *data, size_t *size,
                                       struct apps__req *rq, struct saml_sp *sp)
{
    int post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0, rc;
    struct slides_token t;
    struct slides_meeting m;
    struct slides_end_report er;

    if (store == NULL)
        return json(conn, 503, gh_strdup("{\"error\":\"meetings unavailable\"}\n"));
    slides_store_clear_unavailable(); /* only lookups made in this call decide */
    if (post && strcmp(url, "/api/v1/meetings/content") == 0)
        return upload(conn, rq, url, data, size);
    if (*size != 0) { /* a form body: gather it (bounded) */
        if (rq->body.len + *size > 65536)
            rq->too_big = 1;
        else
            gh_sbuf_append(&rq->body, data, *size);
        *size = 0;
        return MHD_YES;
    }
    if (rq->too_big)
        return json(conn, 413, gh_strdup("{\"error\":\"form too large\"}\n"));
    if (strncmp(url, "/api/v1/admin/meetings", 22) == 0)
        return admin(conn, method, url, url + 22, rq, sp);
    if (post && strcmp(url, "/api/v1/meetings/join") == 0)
        return join(conn, rq, sp, url, 0);
    if (post && strcmp(url, "/api/v1/meetings/reception") == 0)
        return join(conn, rq, sp, url, 1);
    if (get && strncmp(url, "/api/v1/meetings/waiting/", 25) == 0 && strchr(url + 25, '/') == NULL)
        return waiting_poll(conn, url + 25);
    if (get && strncmp(url, "/api/v1/content/", 16) == 0)
        return content(conn, url, url + 16);
    rc = token_of(conn, &t, &m);
    if (rc != -1 && get && strcmp(url, "/api/v1/meetings/manifest") == 0 &&
        edge_refused(conn, url, bearer(conn), m.id) == -1)
        return not_found(conn);
    if (rc == SLIDES_ENDED)
        return ended(conn, method, url, &m);
    if (rc == -1)
        return not_found(conn);
    if (get && strcmp(url, "/api/v1/meetings/manifest") == 0)
        return manifest(conn, &t, &m);
    if (post && strcmp(url, "/api/v1/meetings/escalate") == 0)
        return escalate(conn, rq, url, &t, &m);
    if (get && strcmp(url, "/api/v1/meetings/transfer") == 0)
        return transfer_take(conn, sp, url, &t);
    if (post && strcmp(url, "/api/v1/meetings/leave") == 0) {
        if (token_revoke(bearer(conn)) == -1)
            return json(conn, 503, gh_strdup(NOT_REVOKED));
        return json(conn, 200, gh_strdup("{\"left\":true}\n"));
    }
    if (t.role != SLIDES_HOST)
        return not_found(conn);
    if (post && strcmp(url, "/api/v1/meetings/transfer") == 0)
        return transfer_offer(conn, rq, url, &m);
    if (post && strncmp(url, "/api/v1/meetings/participants/", 30) == 0)
        return promote(conn, url, url + 30, &m);
    if (get && strcmp(url, "/api/v1/meetings/participants") == 0) {
        struct gh_sbuf o = {NULL, 0, 0};
        struct list_ctx c = {&o, 0};
        gh_sbuf_printf(&o, "{\"participants\":[");
        slides_participant_list(store, &m, add_participant, &c);
        gh_sbuf_printf(&o, "]}\n");
        return json(conn, 200, o.p);
    }
    if (get && strcmp(url, "/api/v1/meetings/waiting") == 0) {
        struct gh_sbuf o = {NULL, 0, 0};
        struct list_ctx c = {&o, 0};
        gh_sbuf_printf(&o, "{\"waiting\":[");
        slides_waiting_list(store, m.id, add_waiter, &c);
        gh_sbuf_printf(&o, "]}\n");
        return json(conn, 200, o.p);
    }
    if (post && strncmp(url, "/api/v1/meetings/waiting/", 25) == 0) {
        char wid[40];
        const char *act = strchr(url + 25, '/');
        if (act == NULL || (size_t)(act - (url + 25)) >= sizeof(wid))
            return not_found(conn);
        memcpy(wid, url + 25, (size_t)(act - (url + 25)));
        wid[act - (url + 25)] = '\0';
        if ((strcmp(act, "/admit") != 0 && strcmp(act, "/refuse") != 0) ||
            slides_waiting_set(store, m.id, wid, act[1] == 'a' ? 1 : 2) == -1)
            return not_found(conn);
        return json(conn, 200, gh_strdup(act[1] == 'a' ? "{\"admitted\":true}\n"
                                                        : "{\"refused\":true}\n"));
    }
    if (post && strcmp(url, "/api/v1/meetings/pin-reset") == 0) {
        pin_reset(&m);
        gh_log_info("conference: PIN back-off of meeting %s reset by a Host", m.alias);
        return json(conn, 200, gh_strdup("{\"pin_reset\":true}\n"));
    }
    if (post && strcmp(url, "/api/v1/meetings/end") == 0) {
        struct gh_sbuf o = {NULL, 0, 0};
        if (slides_meeting_end(store, m.id, 0, &er) == -1)
            return json(conn, 500, gh_strdup("{\"error\":\"store\"}\n"));
        gh_log_info("conference: meeting %s ended by a Host: %d resource(s) shredded (keys and "
                    "files), %d waiting participant(s) told, every join token revoked",
                    m.alias, er.resources, er.waiting);
        gh_sbuf_printf(&o, "{\"ended\":true,\"resources_shredded\":%d,\"waiting_told\":%d}\n",
                       er.resources, er.waiting);
        return json(conn, 200, o.p);
    }
    return not_found(conn);
}
