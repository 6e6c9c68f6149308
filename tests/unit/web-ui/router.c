/* The admin application's router: the pattern matcher against hostile
 * paths, and the route table itself (nothing public or writable by a
 * viewer by accident, no route twice, every pattern well formed). */
#include <stdio.h>
#include <string.h>

#include "../../../web-ui/webui_int.h"
#include "../unit.h"

static const struct {
    const char *pattern, *url;
    int match;
    const char *a0, *a1;
} cases[] = {
    {"/", "/", 1, NULL, NULL},
    {"/", "", 0, NULL, NULL},
    {"/", "//", 0, NULL, NULL},
    {"/api/v1/stats", "/api/v1/stats", 1, NULL, NULL},
    {"/api/v1/stats", "/api/v1/stats/", 0, NULL, NULL},        /* no trailing slash */
    {"/api/v1/stats", "/api/v1/stats/history", 0, NULL, NULL}, /* no prefixes */
    {"/api/v1/stats", "/api/v1//stats", 0, NULL, NULL},
    {"/api/v1/stats", "/API/v1/stats", 0, NULL, NULL},
    {"/api/v1/stats", "api/v1/stats", 0, NULL, NULL},
    {"/api/v1/stats", "/api/v1/stat", 0, NULL, NULL},
    {"/api/v1/stats", "/api/v1/statsx", 0, NULL, NULL},
    {"/api/v1/blocks/{}/{}", "/api/v1/blocks/service/public", 1, "service", "public"},
    {"/api/v1/blocks/{}/{}", "/api/v1/blocks/service/Corp SSO", 1, "service", "Corp SSO"},
    {"/api/v1/blocks/{}/{}", "/api/v1/blocks/service/", 0, NULL, NULL},   /* empty segment */
    {"/api/v1/blocks/{}/{}", "/api/v1/blocks//public", 0, NULL, NULL},
    {"/api/v1/blocks/{}/{}", "/api/v1/blocks/service/public/", 0, NULL, NULL},
    {"/api/v1/blocks/{}/{}", "/api/v1/blocks/service/public/delete", 0, NULL, NULL},
    {"/api/v1/blocks/{}/{}", "/api/v1/blocks/service/..", 0, NULL, NULL},
    {"/api/v1/blocks/{}/{}", "/api/v1/blocks/./x", 0, NULL, NULL},
    {"/api/v1/blocks/{}/{}", "/api/v1/blocks/service/...", 1, "service", "..."},
    {"/api/v1/blocks/{}/{}/delete", "/api/v1/blocks/rules/edge/delete", 1, "rules", "edge"},
    {"/api/v1/blocks/{}/{}/delete", "/api/v1/blocks/rules/edge/delete/x", 0, NULL, NULL},
    {"/api/v1/meetings/{}/waiting/{}/admit", "/api/v1/meetings/m1/waiting/w9/admit", 1, "m1",
     "w9"},
    {"/api/v1/meetings/{}/waiting/{}/admit", "/api/v1/meetings/m1/waiting/w9/refuse", 0, NULL,
     NULL},
};

TEST(webui_router_matches_only_whole_segments)
{
    char arg[WEBUI_ROUTE_ARGS][WEBUI_ROUTE_ARG], ctx[300], longseg[400];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(arg, 0, sizeof(arg));
        snprintf(ctx, sizeof(ctx), "%s vs %s", cases[i].pattern, cases[i].url);
        CHECK_EQ(webui__route_match(cases[i].pattern, cases[i].url, arg), cases[i].match, ctx);
        if (cases[i].match && cases[i].a0)
            CHECK_STR(arg[0], cases[i].a0, ctx);
        if (cases[i].match && cases[i].a1)
            CHECK_STR(arg[1], cases[i].a1, ctx);
    }
    /* A segment too long for a handler's buffer is no match (404), not cut. */
    memset(longseg, 'a', sizeof(longseg));
    memcpy(longseg, "/api/v1/blocks/service/", 23);
    longseg[23 + WEBUI_ROUTE_ARG] = '\0';
    CHECK_EQ(webui__route_match("/api/v1/blocks/{}/{}", longseg, arg), 0, "long segment");
    longseg[23 + WEBUI_ROUTE_ARG - 1] = '\0';
    CHECK_EQ(webui__route_match("/api/v1/blocks/{}/{}", longseg, arg), 1, "longest segment");
    CHECK_EQ((int)strlen(arg[1]), WEBUI_ROUTE_ARG - 1, "kept whole");
}

/* The routes that may be reached before sign-in, and the writes a viewer
 * may make (they change nothing shared). Anything else is a mistake. */
static const char *const public_ok[] = {"/healthcheck.html", "/metrics", "/login", "/admin.css",
                                        "/admin.js", "/admin-forms.js", "/favicon.ico"};
static const char *const viewer_posts[] = {"/logout", "/api/v1/password", "/api/v1/rules/test"};

static int listed(const char *p, const char *const *l, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(p, l[i]) == 0)
            return 1;
    return 0;
}

TEST(webui_route_table_guards_every_route)
{
    size_t i, j;

    CHECK(webui__nroutes > 40);
    for (i = 0; i < webui__nroutes; i++) {
        const struct webui_route *r = &webui__routes[i];
        const char *p = r->pattern;
        CHECK(r->fn != NULL);
        CHECK(strcmp(r->method, "GET") == 0 || strcmp(r->method, "POST") == 0);
        CHECK_EQ(p[0], '/', p);
        CHECK_EQ(strstr(p, "//") == NULL, 1, p);
        if (r->need == WEBUI_NEED_PUBLIC)
            CHECK_EQ(listed(p, public_ok, sizeof(public_ok) / sizeof(public_ok[0])), 1, p);
        if (strcmp(r->method, "POST") == 0 && r->need <= WEBUI_NEED_SIGNED_IN &&
            strcmp(p, "/login") != 0)
            CHECK_EQ(listed(p, viewer_posts, sizeof(viewer_posts) / sizeof(viewer_posts[0])), 1,
                     p);
        if (r->need > WEBUI_NEED_SIGNED_IN)
            CHECK_EQ(r->refusal != NULL, 1, p);
        for (j = 0; j < i; j++)
            CHECK_EQ(strcmp(webui__routes[j].method, r->method) == 0 &&
                         strcmp(webui__routes[j].pattern, p) == 0, 0, p);
    }
    /* Roles against needs, in one place. */
    CHECK_EQ(webui__need_met(WEBUI_READ_ONLY, WEBUI_NEED_SERVER_STATE), 0, "viewer drains");
    CHECK_EQ(webui__need_met(WEBUI_OPERATOR, WEBUI_NEED_SERVER_STATE), 1, "operator drains");
    CHECK_EQ(webui__need_met(WEBUI_OPERATOR, WEBUI_NEED_CONFIG), 0, "operator writes");
    CHECK_EQ(webui__need_met(WEBUI_USER_ADMIN, WEBUI_NEED_CONFIG), 0, "user admin writes");
    CHECK_EQ(webui__need_met(WEBUI_ADMIN, WEBUI_NEED_USERS), 0, "admin manages users");
    CHECK_EQ(webui__need_met(WEBUI_ADMIN, WEBUI_NEED_USERS_OR_CONFIG), 1, "admin sessions");
    CHECK_EQ(webui__need_met(WEBUI_USER_ADMIN, WEBUI_NEED_USERS_OR_CONFIG), 1, "ua sessions");
    CHECK_EQ(webui__need_met(WEBUI_OPERATOR, WEBUI_NEED_USERS_OR_CONFIG), 0, "ops sessions");
}
