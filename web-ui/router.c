/*
 * The admin application's router: a request's path is matched against the
 * route table (routes.c), segment by segment, and the route says which
 * method, which role and which handler. One table means one place to read
 * what the API is and who may call each part of it, and a unit test that
 * walks it (every change needs more than a signature; nothing is public by
 * accident).
 *
 * A pattern is "/"-separated segments: a literal matches itself exactly,
 * "{}" matches one non-empty segment shorter than WEBUI_ROUTE_ARG (kept in
 * arg[] for the handler). Nothing else: no prefixes, no "..", no empty
 * segment, no trailing "/" unless the pattern has one.
 */
#include <string.h>

#include "webui_int.h"

int webui__route_match(const char *pattern, const char *url,
                       char arg[WEBUI_ROUTE_ARGS][WEBUI_ROUTE_ARG])
{
    const char *p = pattern, *u = url;
    int n = 0;

    if (*p != '/' || *u != '/')
        return 0;
    while (*p != '\0' && *u != '\0') {
        size_t pl, ul;
        p++;
        u++;
        pl = strcspn(p, "/");
        ul = strcspn(u, "/");
        if (pl == 2 && p[0] == '{' && p[1] == '}') {
            if (ul == 0 || ul >= WEBUI_ROUTE_ARG || n == WEBUI_ROUTE_ARGS)
                return 0;
            /* "." and ".." name no object: refused here, not in each handler */
            if ((ul == 1 && u[0] == '.') || (ul == 2 && u[0] == '.' && u[1] == '.'))
                return 0;
            memcpy(arg[n], u, ul);
            arg[n][ul] = '\0';
            n++;
        } else if (pl != ul || memcmp(p, u, pl) != 0) {
            return 0;
        }
        p += pl;
        u += ul;
    }
    return *p == '\0' && *u == '\0';
}

int webui__need_met(enum webui_role r, enum webui_need n)
{
    switch (n) {
    case WEBUI_NEED_PUBLIC:
    case WEBUI_NEED_SIGNED_IN:
        return 1;
    case WEBUI_NEED_SERVER_STATE:
        return webui_allowed(r, WEBUI_SERVER_STATE);
    case WEBUI_NEED_CONFIG:
        return webui_allowed(r, WEBUI_CONFIG_WRITE);
    case WEBUI_NEED_USERS:
        return webui_allowed(r, WEBUI_USERS);
    case WEBUI_NEED_USERS_OR_CONFIG:
        return webui_allowed(r, WEBUI_USERS) || webui_allowed(r, WEBUI_CONFIG_WRITE);
    }
    return 0;
}
