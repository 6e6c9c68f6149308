/* The single table from reason code to HTTP status, kind and log word. */
#include "reason.h"

#include <stddef.h>
#include <string.h>

static const struct {
    int status;
    enum gh_reason_kind kind;
    const char *name;
} reasons[] = {
#define GH_REASON_ROW(n, s, k, w) {s, GH_RK_##k, w},
    GH_REASONS(GH_REASON_ROW)
#undef GH_REASON_ROW
};

int gh_reason_status(enum gh_reason r)
{
    return (unsigned)r < GH_REASON_MAX ? reasons[r].status : 500;
}

const char *gh_reason_name(enum gh_reason r)
{
    return (unsigned)r < GH_REASON_MAX ? reasons[r].name : "unknown";
}

enum gh_reason_kind gh_reason_kind(enum gh_reason r)
{
    return (unsigned)r < GH_REASON_MAX ? reasons[r].kind : GH_RK_UPSTREAM;
}

int gh_reason_is_security(enum gh_reason r)
{
    return r != GH_REASON_NONE && gh_reason_kind(r) != GH_RK_UPSTREAM;
}

const char *gh_status_page(int status, const char **text, unsigned *len)
{
    static const struct {
        int status;
        const char *text;
        const char *body;
    } pages[] = {
#define PAGE(s, t) {s, t, "<!DOCTYPE html><html><head><title>" #s " " t "</title></head><body><h1>" #s " " t "</h1></body></html>\n"}
        PAGE(400, "Bad Request"),
        PAGE(403, "Forbidden"),
        PAGE(404, "Not Found"),
        PAGE(405, "Method Not Allowed"),
        PAGE(408, "Request Timeout"),
        PAGE(410, "Gone"),
        PAGE(414, "URI Too Long"),
        PAGE(417, "Expectation Failed"),
        PAGE(421, "Misdirected Request"),
        PAGE(429, "Too Many Requests"),
        PAGE(431, "Request Header Fields Too Large"),
        PAGE(500, "Internal Server Error"),
        PAGE(501, "Not Implemented"),
        PAGE(502, "Bad Gateway"),
        PAGE(503, "Service Unavailable"),
        PAGE(504, "Gateway Timeout"),
        PAGE(505, "HTTP Version Not Supported"),
#undef PAGE
    };
    size_t i;

    for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
        if (pages[i].status == status) {
            *text = pages[i].text;
            *len = (unsigned)strlen(pages[i].body);
            return pages[i].body;
        }
    *text = "Error";
    *len = 0;
    return "";
}
