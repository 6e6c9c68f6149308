/*
 * gatehouse meeting ...: virtual meeting rooms from the command line, on
 * the same store the conference application uses (SQLite takes care of a
 * running appliance next to it).
 *
 *   gatehouse meeting create ALIAS [--host-pin P] [--guest-pin P]
 *        [--auth none|hosts|guests|both] [--idp-group G]
 *        [--other allowed-if-trusted|disallow-all] [--reception on|off] [-c FILE]
 *   gatehouse meeting set ALIAS [the options of create] [--revoke-tokens] [-c FILE]
 *        changes only what is given ("" removes a PIN); the alias and the
 *        invitation stay; --revoke-tokens makes everyone join again
 *   gatehouse meeting list [-c FILE]
 *        the conference key is printed once, by create (the store keeps
 *        only its verifier); PINs are shown as set or "-", never again
 *   gatehouse meeting end ALIAS [-c FILE]      keys and content shredded, says how much;
 *        joins, tokens and waiters then get meeting-ended
 *   gatehouse meeting reopen ALIAS [-c FILE]   an ended meeting takes joins again
 *   gatehouse meeting delete ALIAS [-c FILE]   the room too
 *   gatehouse meeting token add NAME --scope S[,S] | list | remove NAME [-c FILE]
 *        tokens of the conference admin API (on conference-admin.sock only)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "../common/conf.h"
#include "../apps/apps.h"
#include "../slides/slides.h"
#include "main_int.h"

static const char *const auth_names[] = {"none", "hosts", "guests", "both"};

static void print_meeting(const struct slides_meeting *m, void *arg)
{
    (void)arg;
    printf("%s\t%s\t%s\thost-pin=%s\tguest-pin=%s\tauth=%s\tidp-group=%s\tother=%s\tstate=%s"
           "\treception=%s\n",
           m->alias,
           m->uri, m->conference_key[0] ? m->conference_key : "-",
           m->policy.host_pin_v[0] ? "set" : "-", m->policy.guest_pin_v[0] ? "set" : "-",
           auth_names[m->policy.auth & 3],
           m->idp_group[0] ? m->idp_group : "-",
           m->policy.other == SLIDES_OTHER_DISALLOW_ALL ? "disallow-all" : "allowed-if-trusted",
           m->ended ? "ended" : "open", m->reception ? "on" : "off");
}

static void print_token(const char *name, const char *scopes, void *arg)
{
    (void)arg;
    printf("%s\t%s\n", name, scopes);
}

/* gatehouse meeting token add NAME --scope S[,S] | list | remove NAME [-c FILE] */
static int token_cmd(int argc, char **argv,
                     struct gh_conf *(*load)(const char *path, char *err, size_t errlen))
{
    const char *sub = argc > 3 ? argv[3] : "", *name = NULL, *scopes = NULL, *path = NULL;
    char err[1024], tok[65];
    struct gh_conf *c;
    int i, rc = 1;

    if (main_help_asked(argc, argv))
        goto usage;
    for (i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--scope") == 0 && i + 1 < argc)
            scopes = argv[++i];
        else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (argv[i][0] != '-' && name == NULL)
            name = argv[i];
        else
            goto usage;
    }
    if (!((strcmp(sub, "add") == 0 && name && scopes) || (strcmp(sub, "remove") == 0 && name) ||
          (strcmp(sub, "list") == 0 && !name)))
        goto usage;
    c = load(path, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "gatehouse meeting token: %s\n", err);
        return 1;
    }
    if (strcmp(sub, "add") == 0 && apps_api_token_add(c->state_dir, name, scopes, tok, err,
                                                      sizeof(err)) == 0) {
        /* Shown once: only its digest is kept. */
        printf("%s\n", tok);
        gh_wipe(tok, sizeof(tok));
        rc = 0;
    } else if (strcmp(sub, "remove") == 0 &&
               apps_api_token_remove(c->state_dir, name, err, sizeof(err)) == 0) {
        rc = 0;
    } else if (strcmp(sub, "list") == 0 &&
               apps_api_token_list(c->state_dir, print_token, NULL, err, sizeof(err)) == 0) {
        rc = 0;
    }
    if (rc != 0)
        fprintf(stderr, "gatehouse meeting token: %s\n", err);
    gh_conf_free(c);
    return rc;
usage:
    fprintf(main_usage_out(argc, argv), "usage: gatehouse meeting token add NAME --scope S[,S...] [-c FILE]\n"
                    "       gatehouse meeting token list|remove NAME [-c FILE]\n"
                    "  scopes: meetings-read meetings-write pin-reset devices all\n");
    return main_usage_rc(argc, argv);
}

int main_meeting_cmd(int argc, char **argv,
                     struct gh_conf *(*load)(const char *path, char *err, size_t errlen))
{
    const char *cmd = argc > 2 ? argv[2] : "", *alias = NULL, *path = NULL;
    struct slides_meeting m;
    struct slides_store *st;
    struct gh_conf *c;
    char err[1024], dir[1100], *kek = NULL, hpin[33] = "", gpin[33] = "";
    struct slides_pins pins = {NULL, NULL};
    struct slides_pg pg;
    int i, rc = 1, revoke = 0;
    unsigned given = 0; /* which options set gives: a bit per field below */
    size_t k;

    if (strcmp(cmd, "token") == 0)
        return token_cmd(argc, argv, load);
    memset(&m, 0, sizeof(m));
    if (main_help_asked(argc, argv))
        goto usage;
    for (i = 3; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (o[0] != '-' && alias == NULL) {
            alias = o;
            continue;
        }
        if (strcmp(o, "--revoke-tokens") == 0) {
            revoke = 1;
            continue;
        }
        if (v == NULL)
            goto usage;
        if (strcmp(o, "-c") == 0)
            path = v;
        else if (strcmp(o, "--host-pin") == 0)
            given |= 1, gh_strlcpy(hpin, v, sizeof(hpin)), pins.host = hpin;
        else if (strcmp(o, "--guest-pin") == 0)
            given |= 2, gh_strlcpy(gpin, v, sizeof(gpin)), pins.guest = gpin;
        else if (strcmp(o, "--idp-group") == 0)
            given |= 4, gh_strlcpy(m.idp_group, v, sizeof(m.idp_group));
        else if (strcmp(o, "--reception") == 0 && (strcmp(v, "on") == 0 || strcmp(v, "off") == 0))
            given |= 32, m.reception = strcmp(v, "on") == 0;
        else if (strcmp(o, "--other") == 0 && strcmp(v, "disallow-all") == 0)
            given |= 8, m.policy.other = SLIDES_OTHER_DISALLOW_ALL;
        else if (strcmp(o, "--other") == 0 && strcmp(v, "allowed-if-trusted") == 0)
            given |= 8, m.policy.other = SLIDES_OTHER_ALLOWED_IF_TRUSTED;
        else if (strcmp(o, "--auth") == 0) {
            for (k = 0; k < 4 && strcmp(v, auth_names[k]) != 0; k++)
                ;
            if (k == 4)
                goto usage;
            given |= 16;
            m.policy.auth = (enum slides_auth)k;
        } else {
            goto usage;
        }
        i++;
    }
    c = load(path, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "gatehouse meeting: %s\n", err);
        return 1;
    }
    /* A room naming a group the configuration lacks could never be joined
     * by SSO: refused here, as by the admin APIs and gatehouse -t. */
    if ((given & 4) && m.idp_group[0] != '\0' && gh_conf_idp_group_find(c, m.idp_group) == NULL) {
        fprintf(stderr,
                "gatehouse meeting: identity-provider-group '%s' is not defined in the "
                "configuration\n",
                m.idp_group);
        gh_conf_free(c);
        return 1;
    }
    /* The shared store the running appliances use: an end, a delete or a
     * change that revokes tokens marks the epoch there, where an edge with
     * validate-join-token looks (with store local that is the running
     * process's own memory, out of reach: its conference service still
     * refuses the tokens). */
    if (strcmp(c->store.engine, "redis") == 0 && main_store_attach(c, err, sizeof(err)) == NULL) {
        fprintf(stderr, "gatehouse meeting: %s\n", err);
        gh_conf_free(c);
        return 1;
    }
    snprintf(dir, sizeof(dir), "%s/conference", c->state_dir);
    kek = c->slides_kek_file ? gh_strdup(c->slides_kek_file) : NULL;
    st = slides_store_open(dir, kek, slides_pg_of(c, &pg), err, sizeof(err));
    gh_conf_free(c);
    free(kek);
    if (st == NULL) {
        fprintf(stderr, "gatehouse meeting: %s\n", err);
        return 1;
    }
    if (strcmp(cmd, "create") == 0 && alias != NULL) {
        gh_strlcpy(m.alias, alias, sizeof(m.alias));
        if (slides_meeting_create(st, &m, &pins, err, sizeof(err)) == 0) {
            print_meeting(&m, NULL);
            rc = 0;
        } else {
            fprintf(stderr, "gatehouse meeting: %s\n", err);
        }
    } else if (strcmp(cmd, "set") == 0 && alias != NULL) {
        struct slides_meeting cur;
        if (slides_meeting_by_alias(st, alias, &cur) == -1) {
            fprintf(stderr, "gatehouse meeting: no meeting '%s'\n", alias);
        } else {
            if (given & 4)
                memcpy(cur.idp_group, m.idp_group, sizeof(cur.idp_group));
            if (given & 8)
                cur.policy.other = m.policy.other;
            if (given & 16)
                cur.policy.auth = m.policy.auth;
            if (given & 32)
                cur.reception = m.reception;
            if (slides_meeting_update(st, &cur, &pins, revoke, err, sizeof(err)) == 0) {
                print_meeting(&cur, NULL);
                rc = 0;
            } else {
                fprintf(stderr, "gatehouse meeting: %s\n", err);
            }
        }
        gh_wipe(&cur, sizeof(cur));
    } else if (strcmp(cmd, "list") == 0) {
        slides_meeting_list(st, print_meeting, NULL);
        rc = 0;
    } else if ((strcmp(cmd, "end") == 0 || strcmp(cmd, "delete") == 0) && alias != NULL) {
        struct slides_end_report er;
        if (slides_meeting_by_alias(st, alias, &m) == -1) {
            fprintf(stderr, "gatehouse meeting: no meeting '%s'\n", alias);
        } else if (slides_meeting_end(st, m.id, cmd[0] == 'd', &er) == 0) {
            /* Say what went, so the operator knows the end took. */
            printf("%s %s: %d resource(s) shredded (keys and files), %d waiting participant(s) "
                   "%s, every join token revoked%s\n",
                   cmd[0] == 'd' ? "deleted" : "ended", alias, er.resources, er.waiting,
                   cmd[0] == 'd' ? "removed" : "told it ended",
                   cmd[0] == 'd' ? "; the room is gone" : "; joins now get meeting-ended");
            rc = 0;
        } else {
            fprintf(stderr, "gatehouse meeting: the store refused\n");
        }
    } else if (strcmp(cmd, "reopen") == 0 && alias != NULL) {
        if (slides_meeting_by_alias(st, alias, &m) == -1)
            fprintf(stderr, "gatehouse meeting: no meeting '%s'\n", alias);
        else if (slides_meeting_reopen(st, m.id) == 0)
            rc = printf("reopened %s: joins are taken again\n", alias) > 0 ? 0 : 1;
        else
            fprintf(stderr, "gatehouse meeting: '%s' has not ended\n", alias);
    } else {
        slides_store_close(st);
        goto usage;
    }
    slides_store_close(st);
    gh_wipe(hpin, sizeof(hpin));
    gh_wipe(gpin, sizeof(gpin));
    gh_wipe(&m, sizeof(m));
    return rc;
usage:
    fprintf(main_usage_out(argc, argv), "usage: gatehouse meeting create ALIAS [--host-pin P] [--guest-pin P]\n"
                    "         [--auth none|hosts|guests|both] [--idp-group G]\n"
                    "         [--other allowed-if-trusted|disallow-all] [--reception on|off]\n"
                    "         [-c FILE]\n"
                    "       gatehouse meeting set ALIAS [the options of create] [--revoke-tokens]\n"
                    "         [-c FILE]\n"
                    "       gatehouse meeting list|end ALIAS|reopen ALIAS|delete ALIAS [-c FILE]\n"
                    "       gatehouse meeting token add|list|remove ... (gatehouse meeting token "
                    "--help)\n");
    return main_usage_rc(argc, argv);
}
