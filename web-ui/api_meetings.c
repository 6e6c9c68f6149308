/*
 * Meetings (virtual meeting rooms) in the admin application, on the same
 * SQLite store the conference application uses (state-dir/conference):
 *
 *   GET  /api/v1/meetings                    rooms, with their live waiting room, content
 *                                            and participants; the join page's URL
 *   POST /api/v1/meetings                    alias, host_pin, guest_pin, authentication,
 *                                            idp_group, other_participants, reception
 *                                            (on|off) (admins)
 *   POST /api/v1/meetings/<alias>            modify (admins): any of host_pin, guest_pin
 *                                            ("" removes), authentication, idp_group,
 *                                            other_participants; revoke_tokens=1 makes
 *                                            everyone join again under the new rules
 *   POST /api/v1/meetings/<alias>/end        keys and content shredded, tokens revoked
 *                                            (operators and admins)
 *   POST /api/v1/meetings/<alias>/delete     the room too (admins)
 *   POST /api/v1/meetings/<alias>/reopen     an ended meeting takes joins again (operators
 *                                            and admins)
 *   POST /api/v1/meetings/<alias>/pin-reset  every source's PIN back-off forgotten
 *                                            (operators and admins)
 *   POST /api/v1/meetings/<alias>/waiting/<id>/admit|refuse   (operators and admins)
 *
 * Content is listed by name and size only: resource keys never leave the
 * conference application's manifest.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "../slides/slides.h"
#include "webui_int.h"

static struct slides_store *store;

/* The identity-provider groups of the running configuration: a room may
 * name only one of them (set at start and at every reload). */
static pthread_mutex_t groups_mu = PTHREAD_MUTEX_INITIALIZER;
static char **groups;
static size_t ngroups;
/* Where participants join, for the invitation text: the service that faces
 * them (one whose real server is a conference service), else the
 * conference service itself; "" without one. Under groups_mu. */
static char join_url[400];

static void find_join_url(const struct gh_conf *c)
{
    const struct gh_conf_service *conf = NULL, *face = NULL;
    const char *host, *colon;
    size_t i, j;

    join_url[0] = '\0';
    for (i = 0; i < c->nservices && conf == NULL; i++)
        if (c->services[i].app != NULL && strcmp(c->services[i].app, "conference") == 0)
            conf = &c->services[i];
    if (conf == NULL)
        return;
    for (i = 0; i < c->nservices && face == NULL; i++)
        for (j = 0; j < c->services[i].nservers; j++)
            if (strcmp(c->services[i].servers[j].addr, conf->listen) == 0)
                face = &c->services[i];
    if (face == NULL)
        face = conf;
    host = NULL;
    for (i = 0; i < face->allowed_hosts.n && host == NULL; i++)
        if (strchr(face->allowed_hosts.v[i], '*') == NULL)
            host = face->allowed_hosts.v[i];
    colon = strrchr(face->listen, ':');
    if (host == NULL || colon == NULL)
        return;
    snprintf(join_url, sizeof(join_url), "https://%s%s%s/join", host,
             strcmp(colon, ":443") == 0 ? "" : ":", strcmp(colon, ":443") == 0 ? "" : colon + 1);
}

void webui__meetings_groups(const struct gh_conf *c)
{
    size_t i;

    pthread_mutex_lock(&groups_mu);
    for (i = 0; i < ngroups; i++)
        free(groups[i]);
    free(groups);
    groups = c->nidp_groups ? gh_calloc(c->nidp_groups, sizeof(*groups)) : NULL;
    for (i = 0; i < c->nidp_groups; i++)
        groups[i] = gh_strdup(c->idp_groups[i].name);
    ngroups = c->nidp_groups;
    find_join_url(c);
    pthread_mutex_unlock(&groups_mu);
}

static void add_join_url(struct gh_sbuf *o)
{
    pthread_mutex_lock(&groups_mu);
    gh_sbuf_printf(o, "\"join_url\":");
    gh_json_str(o, join_url);
    pthread_mutex_unlock(&groups_mu);
}

static int group_known(const char *g)
{
    size_t i;
    int found = g[0] == '\0';

    pthread_mutex_lock(&groups_mu);
    for (i = 0; !found && i < ngroups; i++)
        found = strcmp(groups[i], g) == 0;
    pthread_mutex_unlock(&groups_mu);
    return found;
}

#define NO_GROUP "the configuration defines no identity-provider-group of that name"

int webui__meetings_open(const struct gh_conf *c, char *err, size_t errlen)
{
    const struct slides_pg *shared;
    struct slides_pg pg;
    char dir[1100];

    if (store != NULL)
        return 0;
    snprintf(dir, sizeof(dir), "%s/conference", c->state_dir);
    shared = slides_pg_of(c, &pg);
    pg.lazy = 1; /* as the conference's: a database away is no reason not to start */
    store = slides_store_open(dir, c->slides_kek_file, shared, err, errlen);
    return store ? 0 : -1;
}

unsigned char *webui__meetings_snapshot(size_t *len, char *err, size_t errlen)
{
    if (store == NULL) {
        snprintf(err, errlen, "no meeting store");
        return NULL;
    }
    return slides_store_snapshot(store, len, err, errlen);
}

int webui__meetings_restore(const unsigned char *data, size_t len, int dry_run, char *err,
                            size_t errlen)
{
    if (store == NULL) {
        snprintf(err, errlen, "the bundle has a meeting store but this appliance has none open");
        return -1;
    }
    return slides_store_restore(store, data, len, dry_run, err, errlen);
}

void webui__meetings_close(void)
{
    size_t i;

    slides_store_close(store);
    store = NULL;
    pthread_mutex_lock(&groups_mu);
    for (i = 0; i < ngroups; i++)
        free(groups[i]);
    free(groups);
    groups = NULL;
    ngroups = 0;
    pthread_mutex_unlock(&groups_mu);
}

struct ctx {
    struct gh_sbuf *o;
    int n;
};

static void add_res(const struct slides_resource *r, void *arg)
{
    struct ctx *c = arg;

    gh_sbuf_printf(c->o, "%s{\"name\":", c->n++ ? "," : "");
    gh_json_str(c->o, r->name);
    gh_sbuf_printf(c->o, ",\"size\":%lld}", (long long)r->size);
}

static void add_participant(const struct slides_participant *p, void *arg)
{
    static const char *const role[] = {"guest", "host"};
    struct ctx *c = arg;

    gh_sbuf_printf(c->o, "%s{\"role\":\"%s\",\"display_name\":", c->n++ ? "," : "",
                   role[p->role == SLIDES_HOST]);
    gh_json_str(c->o, p->name);
    gh_sbuf_printf(c->o, ",\"name_from_idp\":%s,\"joined\":%lld}",
                   p->name_fixed ? "true" : "false", (long long)p->joined);
}

static void add_waiter(const struct slides_waiter *w, void *arg)
{
    struct ctx *c = arg;

    gh_sbuf_printf(c->o, "%s{\"id\":\"%s\",\"name\":", c->n++ ? "," : "", w->id);
    gh_json_str(c->o, w->name);
    gh_sbuf_printf(c->o, "}");
}

struct collected {
    struct slides_meeting *v;
    size_t n;
};

/* The store's lock is held during a listing: gather first, then look up
 * each meeting's content and waiting room after it is released. */
static void collect(const struct slides_meeting *m, void *arg)
{
    struct collected *c = arg;
    struct slides_meeting *p = realloc(c->v, (c->n + 1) * sizeof(*p));

    if (p == NULL)
        abort();
    c->v = p;
    c->v[c->n++] = *m;
}

static void add_meeting(const struct slides_meeting *m, void *arg)
{
    static const char *const auth[] = {"none", "hosts", "guests", "both"};
    struct ctx *c = arg, r = {c->o, 0}, w = {c->o, 0}, p = {c->o, 0};

    gh_sbuf_printf(c->o, "%s{\"alias\":", c->n++ ? "," : "");
    gh_json_str(c->o, m->alias);
    gh_sbuf_printf(c->o, ",\"uri\":");
    gh_json_str(c->o, m->uri);
    gh_sbuf_printf(c->o, ",\"host_pin_set\":%s,\"guest_pin_set\":%s,\"authentication\":\"%s\","
                         "\"idp_group\":",
                   m->policy.host_pin_v[0] ? "true" : "false",
                   m->policy.guest_pin_v[0] ? "true" : "false", auth[m->policy.auth & 3]);
    gh_json_str(c->o, m->idp_group);
    gh_sbuf_printf(c->o, ",\"other_participants\":\"%s\",\"ended\":%lld,\"reception\":%s,"
                         "\"content\":[",
                   m->policy.other == SLIDES_OTHER_DISALLOW_ALL ? "disallow-all"
                                                                : "allowed-if-trusted",
                   (long long)m->ended, m->reception ? "true" : "false");
    slides_resource_list(store, m->id, add_res, &r);
    gh_sbuf_printf(c->o, "],\"waiting\":[");
    slides_waiting_list(store, m->id, add_waiter, &w);
    gh_sbuf_printf(c->o, "],\"participants\":[");
    slides_participant_list(store, m, add_participant, &p);
    gh_sbuf_printf(c->o, "]}");
}

/* 1 when the field was sent (copied into dst), 0 when not, -1 too long. */
static int field(const char *body, size_t blen, const char *key, char *dst, size_t cap)
{
    char *v = gh_form_get(body, blen, key);
    int rc = 0;

    if (v != NULL)
        rc = gh_strlcpy(dst, v, cap) == -1 ? -1 : 1;
    if (v != NULL)
        gh_wipe(v, strlen(v)); /* may be a PIN */
    free(v);
    return rc;
}

static enum MHD_Result create(struct MHD_Connection *conn, const struct webui_session *s,
                              const char *body, size_t blen)
{
    static const char *const auth[] = {"none", "hosts", "guests", "both"};
    struct slides_meeting m;
    char a[16] = "none", other[32] = "allowed-if-trusted", err[256], hpin[33] = "",
         gpin[33] = "", rec[8] = "off";
    struct slides_pins pins = {hpin, gpin};
    struct gh_sbuf o = {NULL, 0, 0};
    enum MHD_Result ret;
    size_t i;
    int rc;

    memset(&m, 0, sizeof(m));
    if (field(body, blen, "alias", m.alias, sizeof(m.alias)) == -1 ||
        field(body, blen, "host_pin", hpin, sizeof(hpin)) == -1 ||
        field(body, blen, "guest_pin", gpin, sizeof(gpin)) == -1 ||
        field(body, blen, "idp_group", m.idp_group, sizeof(m.idp_group)) == -1 ||
        field(body, blen, "authentication", a, sizeof(a)) == -1 ||
        field(body, blen, "reception", rec, sizeof(rec)) == -1 ||
        field(body, blen, "other_participants", other, sizeof(other)) == -1) {
        gh_wipe(hpin, sizeof(hpin));
        gh_wipe(gpin, sizeof(gpin));
        return webui__json(conn, 422, "error", "a field is too long");
    }
    for (i = 0; i < 4 && strcmp(a, auth[i]) != 0; i++)
        ;
    if (i == 4)
        return webui__json(conn, 422, "error", "authentication: none, hosts, guests or both");
    m.policy.auth = (enum slides_auth)i;
    m.reception = strcmp(rec, "on") == 0;
    if (!group_known(m.idp_group)) {
        gh_wipe(hpin, sizeof(hpin));
        gh_wipe(gpin, sizeof(gpin));
        return webui__json(conn, 422, "error", NO_GROUP);
    }
    if (strcmp(other, "disallow-all") == 0)
        m.policy.other = SLIDES_OTHER_DISALLOW_ALL;
    else if (strcmp(other, "allowed-if-trusted") != 0)
        return webui__json(conn, 422, "error", "other_participants: allowed-if-trusted or disallow-all");
    rc = slides_meeting_create(store, &m, &pins, err, sizeof(err));
    gh_wipe(hpin, sizeof(hpin));
    gh_wipe(gpin, sizeof(gpin));
    if (rc == -1) {
        webui__audit(conn, s, "meeting-create", m.alias, "", "", "invalid");
        return webui__json(conn, 422, "error", err);
    }
    /* The PINs are in the audit's "after" only as set / not set. */
    webui__audit(conn, s, "meeting-create", m.alias, "", a, "ok");
    gh_sbuf_printf(&o, "{\"alias\":");
    gh_json_str(&o, m.alias);
    gh_sbuf_printf(&o, ",\"uri\":");
    gh_json_str(&o, m.uri);
    /* The only time the key is known: the store keeps its verifier. */
    gh_sbuf_printf(&o, ",\"conference_key\":\"%s\",", m.conference_key);
    add_join_url(&o);
    gh_sbuf_printf(&o, "}\n");
    gh_wipe(m.conference_key, sizeof(m.conference_key));
    ret = webui__send(conn, 201, "application/json", o.p, o.len, NULL);
    return ret;
}

/* Fields not sent stay as they are; the alias, URI and key never change
 * (they are in the invitations already sent). */
static enum MHD_Result modify(struct MHD_Connection *conn, const struct webui_session *s,
                              const char *alias, const char *body, size_t blen)
{
    static const char *const auth[] = {"none", "hosts", "guests", "both"};
    struct slides_meeting m;
    char a[16] = "", other[32] = "", revoke[4] = "", err[256], after[160], hpin[33], gpin[33],
         rec[8] = "";
    struct slides_pins pins = {NULL, NULL};
    size_t i;
    int hp, gp, rc;

    if (slides_meeting_by_alias(store, alias, &m) == -1)
        return webui__json(conn, 404, "error", "no such meeting");
    hp = field(body, blen, "host_pin", hpin, sizeof(hpin));
    gp = field(body, blen, "guest_pin", gpin, sizeof(gpin));
    pins.host = hp == 1 ? hpin : NULL;
    pins.guest = gp == 1 ? gpin : NULL;
    if (hp == -1 || gp == -1 ||
        field(body, blen, "idp_group", m.idp_group, sizeof(m.idp_group)) == -1 ||
        field(body, blen, "authentication", a, sizeof(a)) == -1 ||
        field(body, blen, "other_participants", other, sizeof(other)) == -1 ||
        field(body, blen, "revoke_tokens", revoke, sizeof(revoke)) == -1 ||
        field(body, blen, "reception", rec, sizeof(rec)) == -1) {
        gh_wipe(&m, sizeof(m));
        return webui__json(conn, 422, "error", "a field is too long");
    }
    if (!group_known(m.idp_group)) {
        gh_wipe(&m, sizeof(m));
        return webui__json(conn, 422, "error", NO_GROUP);
    }
    if (rec[0] != '\0')
        m.reception = strcmp(rec, "on") == 0;
    if (a[0] != '\0') {
        for (i = 0; i < 4 && strcmp(a, auth[i]) != 0; i++)
            ;
        if (i == 4) {
            gh_wipe(&m, sizeof(m));
            return webui__json(conn, 422, "error", "authentication: none, hosts, guests or both");
        }
        m.policy.auth = (enum slides_auth)i;
    }
    if (strcmp(other, "disallow-all") == 0) {
        m.policy.other = SLIDES_OTHER_DISALLOW_ALL;
    } else if (strcmp(other, "allowed-if-trusted") == 0) {
        m.policy.other = SLIDES_OTHER_ALLOWED_IF_TRUSTED;
    } else if (other[0] != '\0') {
        gh_wipe(&m, sizeof(m));
        return webui__json(conn, 422, "error",
                           "other_participants: allowed-if-trusted or disallow-all");
    }
    /* PINs appear in the audit only as changed or not. */
    snprintf(after, sizeof(after), "authentication %s, host PIN %s, guest PIN %s%s",
             auth[m.policy.auth & 3], hp ? "changed" : "kept", gp ? "changed" : "kept",
             revoke[0] == '1' ? ", tokens revoked" : "");
    rc = slides_meeting_update(store, &m, &pins, revoke[0] == '1', err, sizeof(err));
    if (hp == 1)
        gh_wipe(hpin, sizeof(hpin));
    if (gp == 1)
        gh_wipe(gpin, sizeof(gpin));
    if (rc == -1) {
        gh_wipe(&m, sizeof(m));
        webui__audit(conn, s, "meeting-modify", alias, "", after, "invalid");
        return webui__json(conn, 422, "error", err);
    }
    gh_wipe(&m, sizeof(m));
    webui__audit(conn, s, "meeting-modify", alias, "", after, "ok");
    return webui__json(conn, 200, "modified", alias);
}

static int closed(struct MHD_Connection *conn, enum MHD_Result *ret)
{
    if (store != NULL)
        return 0;
    *ret = webui__json(conn, 503, "error", "the meeting store is not open");
    return 1;
}

/* The alias a route names, as the store keeps it (shorter than 80). */
static int alias_ok(struct webui_call *c, enum MHD_Result *ret)
{
    if (closed(c->conn, ret))
        return 0;
    if (strlen(c->arg[0]) < 80)
        return 1;
    *ret = webui__json(c->conn, 404, "error", "not found");
    return 0;
}

enum MHD_Result webui__r_meetings(struct webui_call *c)
{
    struct gh_sbuf o = {NULL, 0, 0};
    struct ctx x = {&o, 0};
    struct collected all = {NULL, 0};
    enum MHD_Result ret;
    size_t i;

    if (closed(c->conn, &ret))
        return ret;
    slides_meeting_list(store, collect, &all);
    gh_sbuf_printf(&o, "{");
    add_join_url(&o);
    gh_sbuf_printf(&o, ",\"meetings\":[");
    for (i = 0; i < all.n; i++) {
        add_meeting(&all.v[i], &x);
        gh_wipe(&all.v[i], sizeof(all.v[i])); /* PINs and keys */
    }
    free(all.v);
    gh_sbuf_printf(&o, "]}\n");
    return webui__send(c->conn, 200, "application/json", o.p, o.len, NULL);
}

enum MHD_Result webui__r_meeting_create(struct webui_call *c)
{
    enum MHD_Result ret;

    return closed(c->conn, &ret) ? ret : create(c->conn, c->s, c->body, c->blen);
}

enum MHD_Result webui__r_meeting_modify(struct webui_call *c)
{
    enum MHD_Result ret;

    return alias_ok(c, &ret) ? modify(c->conn, c->s, c->arg[0], c->body, c->blen) : ret;
}

/* Admitted from the waiting room: a Guest (the seeds); the participant
 * collects the token by polling, as with a Host. */
static enum MHD_Result waiting(struct webui_call *c, int admit)
{
    struct slides_meeting m;
    enum MHD_Result ret;

    if (!alias_ok(c, &ret))
        return ret;
    if (strlen(c->arg[1]) >= 40 || slides_meeting_by_alias(store, c->arg[0], &m) == -1 ||
        slides_waiting_set(store, m.id, c->arg[1], admit ? 1 : 2) == -1)
        return webui__json(c->conn, 404, "error", "nobody with that id waits in that meeting");
    webui__audit(c->conn, c->s, admit ? "waiting-admit" : "waiting-refuse", c->arg[0], "",
                 c->arg[1], "ok");
    return webui__json(c->conn, 200, admit ? "admitted" : "refused", c->arg[1]);
}

enum MHD_Result webui__r_meeting_admit(struct webui_call *c)
{
    return waiting(c, 1);
}

enum MHD_Result webui__r_meeting_refuse(struct webui_call *c)
{
    return waiting(c, 0);
}

/* Every source's PIN back-off of the room forgotten at once. */
enum MHD_Result webui__r_meeting_pin_reset(struct webui_call *c)
{
    struct slides_meeting m;
    enum MHD_Result ret;

    if (!alias_ok(c, &ret))
        return ret;
    if (slides_meeting_by_alias(store, c->arg[0], &m) == -1)
        return webui__json(c->conn, 404, "error", "no such meeting");
    slides_pin_backoff_reset(m.id);
    webui__audit(c->conn, c->s, "meeting-pin-reset", c->arg[0], "", "", "ok");
    return webui__json(c->conn, 200, "pin_reset", c->arg[0]);
}

enum MHD_Result webui__r_meeting_reopen(struct webui_call *c)
{
    struct slides_meeting m;
    enum MHD_Result ret;

    if (!alias_ok(c, &ret))
        return ret;
    if (slides_meeting_by_alias(store, c->arg[0], &m) == -1)
        return webui__json(c->conn, 404, "error", "no such meeting");
    if (slides_meeting_reopen(store, m.id) == -1) {
        webui__audit(c->conn, c->s, "meeting-reopen", c->arg[0], "", "", "not ended");
        return webui__json(c->conn, 409, "error", "the meeting has not ended");
    }
    webui__audit(c->conn, c->s, "meeting-reopen", c->arg[0], "", "", "ok");
    return webui__json(c->conn, 200, "reopened", c->arg[0]);
}

static enum MHD_Result end_or_delete(struct webui_call *c, int del)
{
    struct slides_meeting m;
    struct slides_end_report er;
    struct gh_sbuf o = {NULL, 0, 0};
    const char *alias = c->arg[0];
    enum MHD_Result ret;
    char after[120];

    if (!alias_ok(c, &ret))
        return ret;
    if (slides_meeting_by_alias(store, alias, &m) == -1)
        return webui__json(c->conn, 404, "error", "no such meeting");
    if (slides_meeting_end(store, m.id, del, &er) == -1) {
        webui__audit(c->conn, c->s, del ? "meeting-delete" : "meeting-end", alias, "", "",
                     "failed");
        return webui__json(c->conn, 500, "error", "the store refused");
    }
    snprintf(after, sizeof(after), "%d resource(s) shredded, %d waiting told, tokens revoked",
             er.resources, er.waiting);
    webui__audit(c->conn, c->s, del ? "meeting-delete" : "meeting-end", alias, "", after, "ok");
    gh_sbuf_printf(&o, "{\"%s\":", del ? "deleted" : "ended");
    gh_json_str(&o, alias);
    gh_sbuf_printf(&o, ",\"resources_shredded\":%d,\"waiting_told\":%d,"
                       "\"tokens_revoked\":true}\n",
                   er.resources, er.waiting);
    return webui__send(c->conn, 200, "application/json", o.p, o.len, NULL);
}

enum MHD_Result webui__r_meeting_end(struct webui_call *c)
{
    return end_or_delete(c, 0);
}

enum MHD_Result webui__r_meeting_delete(struct webui_call *c)
{
    return end_or_delete(c, 1);
}
