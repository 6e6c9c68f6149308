/*
 * gatehouse admin ...: the users of the admin application. There is no
 * default password: the first administrator is made here, on the box.
 * Passwords are read from standard input (one line), never from arguments,
 * so they do not show in the process list or the shell history.
 *
 *   gatehouse admin user add NAME --role read-only|operator|admin|user-admin [-c FILE]
 *   gatehouse admin user password NAME [-c FILE]
 *   gatehouse admin user delete|unlock NAME [-c FILE]
 *   gatehouse admin user list [-c FILE]
 *   gatehouse admin token add NAME [-c FILE]       prints an API bearer token once
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/common.h"
#include "../common/conf.h"
#include "../web-ui/webui.h"
#include "main_int.h"

static void print_user(const struct webui_user *u, void *arg)
{
    (void)arg;
    printf("%s\t%s\t%s\n", u->name, webui_role_name(u->role),
           u->locked_until > (int64_t)time(NULL) ? "locked" : "-");
}

static int read_password(char *buf, size_t len)
{
    if (fgets(buf, (int)len, stdin) == NULL)
        return -1;
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

int main_admin_cmd(int argc, char **argv,
                   struct gh_conf *(*load)(const char *path, char *err, size_t errlen))
{
    const char *what = argc > 2 ? argv[2] : "", *cmd = argc > 3 ? argv[3] : "";
    const char *name = NULL, *path = NULL, *role_s = NULL;
    struct webui_users *u;
    struct gh_conf *c;
    enum webui_role role = WEBUI_READ_ONLY;
    char err[1024], dir[1100], pw[300], tok[65];
    int i, rc = 1;

    if (main_help_asked(argc, argv))
        goto usage;
    for (i = 4; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            role_s = argv[++i];
        else if (argv[i][0] != '-' && name == NULL)
            name = argv[i];
        else
            goto usage;
    }
    if (role_s != NULL && webui_role_parse(role_s, &role) == -1)
        goto usage;
    c = load(path, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "gatehouse admin: %s\n", err);
        return 1;
    }
    snprintf(dir, sizeof(dir), "%s/admin", c->state_dir);
    gh_conf_free(c);
    u = webui_users_open(dir, err, sizeof(err));
    if (u == NULL) {
        fprintf(stderr, "gatehouse admin: %s\n", err);
        return 1;
    }
    if (strcmp(what, "user") == 0 && strcmp(cmd, "list") == 0) {
        webui_user_list(u, print_user, NULL);
        rc = 0;
    } else if (strcmp(what, "user") == 0 && strcmp(cmd, "add") == 0 && name && role_s) {
        if (read_password(pw, sizeof(pw)) == -1)
            fprintf(stderr, "gatehouse admin: give the password on standard input\n");
        else if (webui_user_add(u, name, role, pw, err, sizeof(err)) == -1)
            fprintf(stderr, "gatehouse admin: %s\n", err);
        else
            rc = 0;
    } else if (strcmp(what, "user") == 0 && strcmp(cmd, "password") == 0 && name) {
        if (read_password(pw, sizeof(pw)) == -1 ||
            webui_user_set_password(u, name, pw, err, sizeof(err)) == -1)
            fprintf(stderr, "gatehouse admin: %s\n", err);
        else
            rc = 0;
    } else if (strcmp(what, "user") == 0 && strcmp(cmd, "delete") == 0 && name) {
        rc = webui_user_delete(u, name) == 0 ? 0 : 1;
    } else if (strcmp(what, "user") == 0 && strcmp(cmd, "unlock") == 0 && name) {
        rc = webui_user_unlock(u, name) == 0 ? 0 : 1;
    } else if (strcmp(what, "token") == 0 && strcmp(cmd, "add") == 0 && name) {
        if (webui_token_add(u, name, tok, err, sizeof(err)) == -1) {
            fprintf(stderr, "gatehouse admin: %s\n", err);
        } else {
            printf("%s\n", tok);
            gh_wipe(tok, sizeof(tok));
            rc = 0;
        }
    } else {
        webui_users_close(u);
        goto usage;
    }
    gh_wipe(pw, sizeof(pw));
    webui_users_close(u);
    return rc;
usage:
    fprintf(main_usage_out(argc, argv), "usage: gatehouse admin user add NAME --role read-only|operator|admin|"
                    "user-admin [-c FILE]   (password on standard input)\n"
                    "       gatehouse admin user password|delete|unlock NAME [-c FILE]\n"
                    "       gatehouse admin user list [-c FILE]\n"
                    "       gatehouse admin token add NAME [-c FILE]\n");
    return main_usage_rc(argc, argv);
}
