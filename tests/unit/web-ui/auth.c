/* The admin application's security pieces: password hashing and checking
 * (including malformed stored hashes), password rules, roles checked in one
 * place, CSRF comparison, sessions' timeouts, and the config line editor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../common/common.h"
#include "../../../common/kv.h"
#include "../../../web-ui/webui_int.h"
#include "../unit.h"

TEST(webui_password_hashing)
{
    char h[160], h2[160];
    const char *why;

    CHECK_EQ(webui_hash_password("correct horse 42", h, sizeof(h)), 0, "hash");
    CHECK(strncmp(h, "pbkdf2-sha256$600000$", 21) == 0);
    CHECK_EQ(webui_check_password("correct horse 42", h), 1, "right password");
    CHECK_EQ(webui_check_password("correct horse 43", h), 0, "wrong password");
    CHECK_EQ(webui_check_password("", h), 0, "empty password");
    CHECK_EQ(webui_hash_password("correct horse 42", h2, sizeof(h2)), 0, "hash again");
    CHECK(strcmp(h, h2) != 0); /* salted */
    /* Malformed or weakened stored hashes never verify. */
    CHECK_EQ(webui_check_password("x", "plain"), 0, "not a hash");
    CHECK_EQ(webui_check_password("x", "pbkdf2-sha256$1$00$00"), 0, "tiny count refused");
    h[strlen(h) - 1] = 'g';
    CHECK_EQ(webui_check_password("correct horse 42", h), 0, "bad hex");
    CHECK_EQ(webui_password_ok("short", &why), -1, "short");
    CHECK_EQ(webui_password_ok("aaaaaaaaaaaaaaaa", &why), -1, "one class");
    CHECK_EQ(webui_password_ok("admin password 1", &why), 0, "fine");
}

static const struct {
    enum webui_role role;
    enum webui_action action;
    int allowed;
} rules[] = {
    {WEBUI_READ_ONLY, WEBUI_VIEW, 1},         {WEBUI_READ_ONLY, WEBUI_SERVER_STATE, 0},
    {WEBUI_READ_ONLY, WEBUI_CONFIG_WRITE, 0}, {WEBUI_READ_ONLY, WEBUI_USERS, 0},
    {WEBUI_OPERATOR, WEBUI_SERVER_STATE, 1},  {WEBUI_OPERATOR, WEBUI_CONFIG_WRITE, 0},
    {WEBUI_OPERATOR, WEBUI_USERS, 0},         {WEBUI_ADMIN, WEBUI_SERVER_STATE, 1},
    {WEBUI_ADMIN, WEBUI_CONFIG_WRITE, 1},     {WEBUI_ADMIN, WEBUI_USERS, 0},
    {WEBUI_USER_ADMIN, WEBUI_USERS, 1},       {WEBUI_USER_ADMIN, WEBUI_CONFIG_WRITE, 0},
    {WEBUI_USER_ADMIN, WEBUI_SERVER_STATE, 0},
};

TEST(webui_roles_and_sessions)
{
    struct webui_user u;
    struct webui_session s, got;
    char id[65];
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(rules); i++)
        CHECK_EQ(webui_allowed(rules[i].role, rules[i].action), rules[i].allowed,
                 webui_role_name(rules[i].role));
    gh_kv_rec_init(2048);
    memset(&u, 0, sizeof(u));
    gh_strlcpy(u.name, "ops", sizeof(u.name));
    u.role = WEBUI_OPERATOR;
    CHECK_EQ(webui_session_new(&u, 1000, id, &s), 0, "new");
    CHECK_EQ(webui_session_get(id, 1000 + 60, 1, &got), 0, "within idle");
    CHECK(got.role == WEBUI_OPERATOR && strcmp(got.user, "ops") == 0);
    CHECK_EQ(webui_csrf_ok(&got, s.csrf), 1, "csrf");
    CHECK_EQ(webui_csrf_ok(&got, "00"), 0, "short csrf");
    CHECK_EQ(webui_csrf_ok(&got, NULL), 0, "no csrf");
    CHECK_EQ(webui_session_get(id, 1060 + WEBUI_IDLE_SECONDS, 1, &got), -1, "idle timeout");
    CHECK_EQ(webui_session_new(&u, 1000, id, &s), 0, "new 2");
    for (i = 1; i <= 40; i++) /* active every 14 min: only the absolute limit ends it */
        if (webui_session_get(id, 1000 + (int64_t)i * 14 * 60, 1, &got) == -1)
            break;
    CHECK(i > 1 && (int64_t)i * 14 * 60 >= WEBUI_ABSOLUTE_SECONDS);
    /* A page polling every minute is not a person: the idle limit holds. */
    CHECK_EQ(webui_session_new(&u, 1000, id, &s), 0, "new 3");
    for (i = 1; i <= 30; i++)
        if (webui_session_get(id, 1000 + (int64_t)i * 60, 0, &got) == -1)
            break;
    CHECK_EQ((int64_t)i * 60 >= WEBUI_IDLE_SECONDS && (int64_t)(i - 1) * 60 < WEBUI_IDLE_SECONDS,
             1, "background polls end at the idle limit");
    CHECK_EQ(got.last_seen, 1000, "a poll does not move last_seen");
    CHECK_EQ(webui_session_get("zz", 1000, 1, &got), -1, "malformed id");
    gh_kv_rec_fini();
}

static const struct {
    const char *name;
    const char *text;
    const char *state;
    const char *want; /* NULL: refused */
} edits[] = {
    {"simple", "service s {\n listen 127.0.0.1:1\n server a 127.0.0.1:2\n}\n", "drain",
     "service s {\n listen 127.0.0.1:1\n server a 127.0.0.1:2 state drain\n}\n"},
    {"comment kept", "service s {\n listen 127.0.0.1:1\n server a 127.0.0.1:2 weight 3 # main\n}\n",
     "maint", "service s {\n listen 127.0.0.1:1\n server a 127.0.0.1:2 weight 3 state maint # main\n}\n"},
    {"back up", "service s {\n listen 127.0.0.1:1\n server a 127.0.0.1:2 state drain\n}\n", "up",
     "service s {\n listen 127.0.0.1:1\n server a 127.0.0.1:2\n}\n"},
    {"shared line", "service s { listen 127.0.0.1:1; server a 127.0.0.1:2 }\n", "drain", NULL},
    {"quoted hash", "service s {\n listen 127.0.0.1:1\n server \"a#b\" 127.0.0.1:2\n}\n", "drain",
     NULL},
};

TEST(webui_config_line_editor)
{
    char err[256];
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(edits); i++) {
        const char *server = strcmp(edits[i].name, "quoted hash") == 0 ? "a#b" : "a";
        char *out = webui__set_server(edits[i].text, strlen(edits[i].text), "s", server,
                                      edits[i].state, 0, err, sizeof(err));
        if (edits[i].want == NULL) {
            if (strcmp(edits[i].name, "quoted hash") == 0) {
                /* a quoted name with '#' is not a comment: the edit works */
                CHECK(out != NULL && strstr(out, "\"a#b\" 127.0.0.1:2 state drain") != NULL);
            } else {
                CHECK(out == NULL);
            }
        } else {
            CHECK_STR(out, edits[i].want, edits[i].name);
        }
        free(out);
    }
    CHECK(webui__set_server("x", 1, "s", "a", "up", 0, err, sizeof(err)) == NULL);
    {
        const char *t = "service s {\n listen 127.0.0.1:1\n server a 127.0.0.1:2 state drain\n}\n";
        char *out = webui__set_server(t, strlen(t), "s", "a", NULL, 5, err, sizeof(err));
        CHECK_STR(out, "service s {\n listen 127.0.0.1:1\n server a 127.0.0.1:2 weight 5 state "
                       "drain\n}\n", "weight only");
        free(out);
    }
}
