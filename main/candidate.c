/*
 * The one configuration pipeline. A text is parsed once into a model; the
 * model is checked and every module builds its next state from it (the
 * certificates, the SAML service provider, the persistence keys, the proxy
 * generation with its listeners) while nothing that runs changes. Only when
 * all of that succeeded does the caller write the file (an admin change)
 * and commit: each module swaps to what it prepared, and no commit step can
 * fail. `gatehouse -t` builds the same candidate and throws it away, so the
 * check and the reload cannot disagree about what a text means.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../apps/apps.h"
#include "../certs/certs.h"
#include "../common/common.h"
#include "../common/secret_file.h"
#include "../common/conf.h"
#include "../proxy/proxy.h"
#include "../slides/slides.h"
#include "../web-ui/webui.h"
#include "main_int.h"

/* In check mode applications are not started; any known name resolves. */
static int check_resolver(const char *name, struct sockaddr_storage *ss, socklen_t *len)
{
    (void)name;
    memset(ss, 0, sizeof(*ss));
    ss->ss_family = AF_INET;
    *len = sizeof(struct sockaddr_in);
    return 0;
}

/* Every certificate block loads (key matches, chain in order, valid now),
 * used by a service or not: a block added for later must not hide a
 * broken pair until the day a service names it. */
static int check_certificates(const struct gh_conf *c, char *err, size_t errlen)
{
    size_t i;

    for (i = 0; i < c->ncerts; i++) {
        const struct gh_conf_cert *cc = &c->certs[i];
        struct certs_source src = {cc->cert, cc->key, cc->pkcs12, cc->passphrase_file};
        X509 *x = NULL;
        EVP_PKEY *k = NULL;
        char e[768];
        if (certs_load_keypair(&src, &x, &k, e, sizeof(e)) == -1) {
            snprintf(err, errlen, "%s:%d:%d: certificate '%s': %s", c->file, cc->loc.line,
                     cc->loc.col, cc->name, e);
            return -1;
        }
        X509_free(x);
        EVP_PKEY_free(k);
    }
    return 0;
}

struct rooms_check {
    const struct gh_conf *c;
    char *err;
    size_t errlen;
    int bad;
};

static void room_group(const char *alias, const char *group, void *arg)
{
    struct rooms_check *rc = arg;

    if (rc->bad || group == NULL || group[0] == '\0' || gh_conf_idp_group_find(rc->c, group))
        return;
    snprintf(rc->err, rc->errlen,
             "%s/conference/meetings.db: room '%s' names identity-provider-group '%s', which "
             "the configuration does not define (nobody could join it by SSO)",
             rc->c->state_dir, alias, group);
    rc->bad = 1;
}

/* The rooms of the state folder against the groups of this configuration:
 * a group removed while a room still names it fails -t (a running
 * appliance logs it at commit instead: its rooms are already open). */
static int check_rooms(const struct gh_conf *c, char *err, size_t errlen)
{
    struct rooms_check rc = {c, err, errlen, 0};
    struct slides_pg pg;
    const struct slides_pg *shared = slides_pg_of(c, &pg);
    char dir[1100];

    snprintf(dir, sizeof(dir), "%s/conference", c->state_dir);
    if (shared != NULL && slides_pg_check(shared, err, errlen) == -1)
        return -1; /* this appliance's own mistake: no database needed to see it */
    if (slides_rooms_scan(dir, shared, room_group, &rc, err, errlen) == -1) {
        /* A database that does not answer now says nothing about this
         * configuration: a change must not wait for PostgreSQL. */
        if (shared == NULL)
            return -1;
        gh_log_warn("rooms not checked against identity-provider groups: %s", err);
        err[0] = '\0';
        return 0;
    }
    return rc.bad ? -1 : 0;
}

/* The edge token key, when a service validates join tokens or the
 * conference service requires edge tokens: -t reads an operator's file;
 * a run reads it, or makes STATE-DIR/edge-token.key (copy it to the
 * appliances on the other side: both sides hold the same key). */
static int edge_key(struct gh_conf *c, enum main_cand_mode mode, char *err, size_t errlen)
{
    char own[1100], e[768];
    size_t i;
    int need = strcmp(c->require_edge_token, "on") == 0;

    for (i = 0; i < c->nservices; i++)
        need |= strcmp(c->services[i].validate_join_token, "on") == 0;
    if (!need)
        return 0;
    snprintf(own, sizeof(own), "%s/edge-token.key", c->state_dir);
    if (mode == MAIN_CAND_CHECK) {
        if (c->edge_token_key_file == NULL ||
            gh_secret_read(c->edge_token_key_file, "the edge token key", c->edge_key, e,
                           sizeof(e)) == 0)
            return 0;
    } else if (gh_secret_load(c->edge_token_key_file, own, "the edge token key", c->edge_key, e,
                              sizeof(e)) == 0) {
        c->edge_key_loaded = 1;
        return 0;
    }
    snprintf(err, errlen, "edge-token-key-file: %s", e);
    return -1;
}

int main_cand_build(struct gh_conf *c, const char *text, size_t len, enum main_cand_mode mode,
                    struct main_cand *k, char *err, size_t errlen)
{
    memset(k, 0, sizeof(*k));
    webui_version(text, len, k->version);
    k->c = c;
    if (check_certificates(c, err, errlen) == -1)
        goto fail;
    if (main_store_check(c, mode == MAIN_CAND_RUN, err, errlen) == -1 ||
        main_cluster_check(c, err, errlen) == -1)
        goto fail;
    if (edge_key(c, mode, err, errlen) == -1)
        goto fail;
    if (mode == MAIN_CAND_CHECK) {
        if (check_rooms(c, err, errlen) == -1)
            goto fail;
        if (c->slides_kek_file != NULL) {
            char e[768];
            if (slides_kek_check(c->slides_kek_file, e, sizeof(e)) == -1) {
                snprintf(err, errlen, "slides-kek-file: %s", e);
                goto fail;
            }
        }
    }
    k->apps = apps_prepare(c, err, errlen);
    if (k->apps == NULL)
        goto fail;
    if (mode == MAIN_CAND_RUN) {
        k->keys = proxy_persist_keys_prepare(c, err, errlen);
        if (k->keys == NULL)
            goto fail;
    }
    k->g = proxy_gen_new(c, mode == MAIN_CAND_RUN ? apps_resolve : check_resolver, err, errlen);
    if (k->g == NULL)
        goto fail;
    /* The last step that can fail, and the only one that touches the
     * process's sockets: the listeners a new service needs (an address
     * in use fails here, with everything else already built). */
    if (mode == MAIN_CAND_RUN && proxy_prepare(k->g, err, errlen) == -1)
        goto fail;
    return 0;
fail:
    main_cand_abort(k);
    return -1;
}

void main_cand_commit(struct main_cand *k, void (*also)(const struct gh_conf *c))
{
    const struct gh_conf *c = k->c; /* lives with the generation from here */

    if (also != NULL)
        also(c);
    apps_commit(k->apps);
    webui_reconfigure(c);
    proxy_persist_keys_commit(k->keys, c);
    proxy_commit(k->g);
    memset(k, 0, sizeof(*k));
}

void main_cand_abort(struct main_cand *k)
{
    apps_abort(k->apps);
    proxy_persist_keys_abort(k->keys);
    if (k->g != NULL)
        proxy_abort(k->g); /* frees the model with it */
    else
        gh_conf_free(k->c);
    memset(k, 0, sizeof(*k));
}
