/* Table-driven tests of proxy/http1_parse.c: one row per case, hostile rows
 * named for the attack they stand for. */
#include "../../../proxy/http1.h"

#include <stdio.h>
#include <string.h>

#include "../../../common/common.h"
#include "../unit.h"

static const struct http1_limits lim = {8192, 65536, 100, 1024};

#define H "Host: a.example\r\n"
#define L(s) s, sizeof(s) - 1

struct row {
    const char *name;
    const char *raw;
    size_t len;
    int rc;                /* GH_OK, GH_AGAIN, GH_ERR */
    enum gh_reason why;    /* when GH_ERR */
    int framing;           /* when GH_OK */
    int status;            /* HTTP status of the refusal */
};

#define OK(n, s, f) {n, L(s), GH_OK, GH_REASON_NONE, f, 200}
#define BAD(n, s, r) {n, L(s), GH_ERR, GH_REASON_##r, 0, 0}
#define AGAIN(n, s) {n, L(s), GH_AGAIN, GH_REASON_NONE, 0, 0}

static const struct row rows[] = {
    OK("simple get", "GET / HTTP/1.1\r\n" H "\r\n", HTTP1_BODY_NONE),
    OK("http/1.0 without host", "GET / HTTP/1.0\r\n\r\n", HTTP1_BODY_NONE),
    OK("content-length body", "POST /u HTTP/1.1\r\n" H "Content-Length: 5\r\n\r\n", HTTP1_BODY_LENGTH),
    OK("content-length zero", "POST /u HTTP/1.1\r\n" H "Content-Length: 0\r\n\r\n", HTTP1_BODY_NONE),
    OK("chunked", "POST /u HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n", HTTP1_BODY_CHUNKED),
    OK("chunked any case", "POST /u HTTP/1.1\r\n" H "transfer-encoding: ChUnKeD\r\n\r\n", HTTP1_BODY_CHUNKED),
    OK("options star", "OPTIONS * HTTP/1.1\r\n" H "\r\n", HTTP1_BODY_NONE),
    OK("absolute form matching host", "GET http://a.example/x?y HTTP/1.1\r\n" H "\r\n", HTTP1_BODY_NONE),
    OK("absolute form https", "GET https://A.EXAMPLE/ HTTP/1.1\r\n" H "\r\n", HTTP1_BODY_NONE),
    OK("value with obs-text", "GET / HTTP/1.1\r\n" H "X-A: caf\xc3\xa9\r\n\r\n", HTTP1_BODY_NONE),
    OK("empty header value", "GET / HTTP/1.1\r\n" H "X-Empty:\r\n\r\n", HTTP1_BODY_NONE),
    OK("host with port", "GET / HTTP/1.1\r\nHost: a.example:8443\r\n\r\n", HTTP1_BODY_NONE),
    OK("ipv6 host", "GET / HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n", HTTP1_BODY_NONE),
    OK("expect continue", "PUT /u HTTP/1.1\r\n" H "Expect: 100-continue\r\nContent-Length: 3\r\n\r\n", HTTP1_BODY_LENGTH),
    AGAIN("partial request line", "GET / HTT"),
    AGAIN("partial headers", "GET / HTTP/1.1\r\nHost: a"),
    AGAIN("no final empty line", "GET / HTTP/1.1\r\n" H),
    /* framing that reads two ways */
    BAD("cl and te", "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", CL_AND_TE),
    BAD("te and cl", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", CL_AND_TE),
    BAD("two content-lengths equal", "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", DUP_CL),
    BAD("two content-lengths differ", "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", DUP_CL),
    BAD("content-length list", "POST / HTTP/1.1\r\n" H "Content-Length: 5, 5\r\n\r\n", BAD_CL),
    BAD("content-length sign", "POST / HTTP/1.1\r\n" H "Content-Length: +5\r\n\r\n", BAD_CL),
    BAD("content-length negative", "POST / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n", BAD_CL),
    BAD("content-length hex", "POST / HTTP/1.1\r\n" H "Content-Length: 0x10\r\n\r\n", BAD_CL),
    BAD("content-length empty", "POST / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n", BAD_CL),
    BAD("content-length overflow", "POST / HTTP/1.1\r\n" H "Content-Length: 99999999999999999999999\r\n\r\n", BAD_CL),
    BAD("content-length inner space", "POST / HTTP/1.1\r\n" H "Content-Length: 1 2\r\n\r\n", BAD_CL),
    BAD("te gzip chunked", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n", BAD_TE),
    BAD("te chunked gzip", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, gzip\r\n\r\n", BAD_TE),
    BAD("te chunked twice", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, chunked\r\n\r\n", BAD_TE),
    BAD("te two headers", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", BAD_TE),
    BAD("te identity", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: identity\r\n\r\n", BAD_TE),
    BAD("te xchunked", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: xchunked\r\n\r\n", BAD_TE),
    BAD("te chunked with param", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked;q=1\r\n\r\n", BAD_TE),
    BAD("te empty element", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: ,chunked\r\n\r\n", BAD_TE),
    BAD("te empty", "POST / HTTP/1.1\r\n" H "Transfer-Encoding:\r\n\r\n", BAD_TE),
    BAD("te vertical tab", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: \x0b" "chunked\r\n\r\n", CTL_CHAR),
    BAD("te in http/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", TE_HTTP10),
    /* header syntax */
    BAD("obs-fold", "GET / HTTP/1.1\r\n" H "X-A: a\r\n b\r\n\r\n", OBS_FOLD),
    BAD("obs-fold tab", "GET / HTTP/1.1\r\n" H "X-A: a\r\n\tb\r\n\r\n", OBS_FOLD),
    BAD("space before colon", "GET / HTTP/1.1\r\n" H "Content-Length : 5\r\n\r\n", WS_BEFORE_COLON),
    BAD("tab before colon", "GET / HTTP/1.1\r\n" H "Transfer-Encoding\t: chunked\r\n\r\n", WS_BEFORE_COLON),
    BAD("first line folded", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", OBS_FOLD),
    BAD("bare lf in headers", "GET / HTTP/1.1\r\nHost: a\n\r\n", BARE_LF),
    BAD("bare lf request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", BARE_LF),
    BAD("bare lf only", "GET / HTTP/1.1\n\n", BARE_LF),
    BAD("bare cr in value", "GET / HTTP/1.1\r\n" H "X-A: a\rb\r\n\r\n", BARE_CR),
    BAD("nul in value", "GET / HTTP/1.1\r\n" H "X-A: a\0b\r\n\r\n", CTL_CHAR),
    BAD("nul in name", "GET / HTTP/1.1\r\n" H "X\0A: b\r\n\r\n", CTL_CHAR),
    BAD("esc in value", "GET / HTTP/1.1\r\n" H "X-A: \x1b[31m\r\n\r\n", CTL_CHAR),
    BAD("del in value", "GET / HTTP/1.1\r\n" H "X-A: \x7f\r\n\r\n", CTL_CHAR),
    BAD("no colon", "GET / HTTP/1.1\r\n" H "X-A\r\n\r\n", BAD_HEADER_NAME),
    BAD("empty name", "GET / HTTP/1.1\r\n" H ": v\r\n\r\n", BAD_HEADER_NAME),
    BAD("slash in name", "GET / HTTP/1.1\r\n" H "X/A: v\r\n\r\n", BAD_HEADER_NAME),
    BAD("high byte in name", "GET / HTTP/1.1\r\n" H "X\xc3\xa9: v\r\n\r\n", BAD_HEADER_NAME),
    /* host */
    BAD("missing host 1.1", "GET / HTTP/1.1\r\n\r\n", NO_HOST),
    BAD("duplicate host", "GET / HTTP/1.1\r\n" H H "\r\n", DUP_HOST),
    BAD("duplicate host differing", "GET / HTTP/1.1\r\n" H "Host: b.example\r\n\r\n", DUP_HOST),
    BAD("empty host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", BAD_HOST),
    BAD("host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", BAD_HOST),
    BAD("host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", BAD_HOST),
    BAD("host with at", "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", BAD_HOST),
    BAD("absolute authority differs", "GET http://b.example/ HTTP/1.1\r\n" H "\r\n", HOST_MISMATCH),
    BAD("absolute with userinfo", "GET http://u@a.example/ HTTP/1.1\r\n" H "\r\n", BAD_TARGET),
    BAD("absolute empty authority", "GET http:/// HTTP/1.1\r\n" H "\r\n", BAD_TARGET),
    /* request line */
    BAD("lowercase version", "GET / http/1.1\r\n" H "\r\n", BAD_VERSION),
    BAD("http/2.0", "GET / HTTP/2.0\r\n" H "\r\n", VERSION_UNSUPPORTED),
    BAD("http/1.2", "GET / HTTP/1.2\r\n" H "\r\n", VERSION_UNSUPPORTED),
    BAD("http/0.9 style", "GET /\r\n\r\n", BAD_TARGET),
    BAD("version garbage", "GET / HTTP/1.1x\r\n" H "\r\n", BAD_VERSION),
    BAD("two spaces", "GET  / HTTP/1.1\r\n" H "\r\n", BAD_TARGET),
    BAD("tab separator", "GET\t/ HTTP/1.1\r\n" H "\r\n", CTL_CHAR),
    BAD("empty method", " / HTTP/1.1\r\n" H "\r\n", BAD_METHOD),
    BAD("method with slash", "GE/T / HTTP/1.1\r\n" H "\r\n", BAD_METHOD),
    BAD("target with space", "GET /a b HTTP/1.1\r\n" H "\r\n", BAD_VERSION),
    BAD("target with fragment", "GET /a#b HTTP/1.1\r\n" H "\r\n", BAD_TARGET),
    BAD("target with nul", "GET /a\0b HTTP/1.1\r\n" H "\r\n", CTL_CHAR),
    BAD("target with high byte", "GET /caf\xc3\xa9 HTTP/1.1\r\n" H "\r\n", BAD_TARGET),
    BAD("target relative", "GET a/b HTTP/1.1\r\n" H "\r\n", BAD_TARGET),
    BAD("star for get", "GET * HTTP/1.1\r\n" H "\r\n", BAD_TARGET),
    BAD("connect", "CONNECT a.example:443 HTTP/1.1\r\n" H "\r\n", METHOD_NOT_ALLOWED),
    BAD("leading empty line", "\r\nGET / HTTP/1.1\r\n" H "\r\n", BAD_REQUEST_LINE),
    BAD("expect other", "GET / HTTP/1.1\r\n" H "Expect: 200-ok\r\n\r\n", BAD_EXPECT),
};

TEST(http1_request_table)
{
    struct http1_hdr hdrs[100];
    struct http1_msg m;
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(rows); i++) {
        const struct row *r = &rows[i];
        int rc;

        memset(&m, 0, sizeof(m));
        m.hdrs = hdrs;
        rc = http1_parse_request(r->raw, r->len, &lim, &m);
        CHECK_EQ(rc, r->rc, r->name);
        if (rc == GH_ERR && r->rc == GH_ERR)
            CHECK_STR(gh_reason_name(m.why), gh_reason_name(r->why), r->name);
        if (rc == GH_OK && r->rc == GH_OK) {
            CHECK_EQ(m.framing, r->framing, r->name);
            CHECK_EQ(m.head_len, r->len, r->name);
        }
    }
}

TEST(http1_request_fields)
{
    static const char req[] = "GET http://a.example/p?q HTTP/1.1\r\nHost: a.example\r\n"
                              "Connection: close, X-Hop\r\nAuthorization: NTLM abc\r\n"
                              "Upgrade: websocket\r\n\r\nNEXT";
    struct http1_hdr hdrs[10];
    struct http1_msg m;

    memset(&m, 0, sizeof(m));
    m.hdrs = hdrs;
    CHECK_EQ(http1_parse_request(req, sizeof(req) - 1, &lim, &m), GH_OK, "fields");
    CHECK_EQ(m.head_len, sizeof(req) - 1 - 4, "head stops before pipelined bytes");
    CHECK(gh_strncaseeq(req + m.path.off, m.path.len, "/p?q"));
    CHECK(m.flags & HTTP1_F_CONN_CLOSE);
    CHECK(m.flags & HTTP1_F_WINAUTH);
    CHECK(m.flags & HTTP1_F_ABSOLUTE);
    CHECK(!(m.flags & HTTP1_F_UPGRADE)); /* Upgrade not listed in Connection */
    CHECK_EQ(m.nhdrs, 4, "header count");
    CHECK_EQ(hdrs[0].kind, HTTP1_H_HOST, "host");
    CHECK_EQ(hdrs[1].kind, HTTP1_H_HOP, "connection");
    CHECK_EQ(hdrs[2].kind, HTTP1_H_E2E, "authorization");
    CHECK_EQ(hdrs[3].kind, HTTP1_H_HOP, "upgrade");

    /* Methods are case-sensitive (RFC 9110 9.1): "head" is an unknown
     * method, whose answer has a body, not HEAD; "connect" and "options"
     * are not CONNECT and OPTIONS either. */
    {
        static const struct {
            const char *raw;
            int rc, head;
        } mrows[] = {
            {"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", GH_OK, 1},
            {"head / HTTP/1.1\r\nHost: a\r\n\r\n", GH_OK, 0},
            {"Head / HTTP/1.1\r\nHost: a\r\n\r\n", GH_OK, 0},
            /* not CONNECT: an authority-form target for another method */
            {"connect a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", GH_ERR, 0},
            /* not OPTIONS: "*" is OPTIONS' target only */
            {"options * HTTP/1.1\r\nHost: a\r\n\r\n", GH_ERR, 0},
        };
        size_t i;
        for (i = 0; i < GH_ARRAY_LEN(mrows); i++) {
            memset(&m, 0, sizeof(m));
            m.hdrs = hdrs;
            CHECK_EQ(http1_parse_request(mrows[i].raw, strlen(mrows[i].raw), &lim, &m),
                     mrows[i].rc, mrows[i].raw);
            if (mrows[i].rc == GH_ERR)
                CHECK_STR(gh_reason_name(m.why), gh_reason_name(GH_REASON_BAD_TARGET),
                          mrows[i].raw);
            else
                CHECK_EQ(!!(m.flags & HTTP1_F_HEAD), mrows[i].head, mrows[i].raw);
        }
    }
    /* HTTP/1.0 closes unless it asks for keep-alive. */
    {
        static const char r10[] = "GET / HTTP/1.0\r\n\r\n";
        static const char r10ka[] = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        memset(&m, 0, sizeof(m));
        m.hdrs = hdrs;
        CHECK_EQ(http1_parse_request(r10, sizeof(r10) - 1, &lim, &m), GH_OK, "1.0");
        CHECK(m.flags & HTTP1_F_CONN_CLOSE);
        memset(&m, 0, sizeof(m));
        m.hdrs = hdrs;
        CHECK_EQ(http1_parse_request(r10ka, sizeof(r10ka) - 1, &lim, &m), GH_OK, "1.0 ka");
        CHECK(!(m.flags & HTTP1_F_CONN_CLOSE));
    }
}

/* Field values are checked eight bytes at a time (skip_plain_value): every
 * byte value at every position of a 24-byte value, with the value starting
 * at each alignment, gets what the byte-by-byte rule says (RFC 9110 5.5:
 * field-vchar, SP, HTAB, obs-text), and an accepted value keeps its exact
 * span, SP/HTAB around it trimmed. Two bad bytes: the first one decides. */
TEST(http1_value_bytes_every_position)
{
    struct http1_hdr hdrs[8];
    struct http1_msg m;
    char req[128], ctx[64];
    unsigned c, k, a, bad = 0;

    for (a = 0; a < 8; a++)
        for (k = 0; k < 24; k++)
            for (c = 0; c < 256; c++) {
                char val[24];
                enum gh_reason want = GH_REASON_NONE;
                size_t n, vlen = 24;
                int rc;

                memset(val, 'v', sizeof(val));
                val[k] = (char)c;
                if (c == '\n')
                    want = GH_REASON_BARE_LF;
                else if (c == '\r')
                    want = GH_REASON_BARE_CR;
                else if ((c < 0x20 && c != '\t') || c == 0x7f)
                    want = GH_REASON_CTL_CHAR;
                else if ((k == 0 || k == 23) && (c == ' ' || c == '\t'))
                    vlen = 23; /* OWS around a value is not part of it */
                n = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: a\r\nX%.*s: ",
                                     (int)a, "abcdefgh");
                memcpy(req + n, val, sizeof(val));
                n += sizeof(val);
                memcpy(req + n, "\r\n\r\n", 4);
                n += 4;
                memset(&m, 0, sizeof(m));
                m.hdrs = hdrs;
                rc = http1_parse_request(req, n, &lim, &m);
                snprintf(ctx, sizeof(ctx), "byte 0x%02x at %u, alignment %u", c, k, a);
                if (want != GH_REASON_NONE) {
                    bad += rc != GH_ERR || m.why != want;
                    CHECK_EQ(rc, GH_ERR, ctx);
                    if (rc == GH_ERR)
                        CHECK_STR(gh_reason_name(m.why), gh_reason_name(want), ctx);
                    continue;
                }
                bad += rc != GH_OK;
                CHECK_EQ(rc, GH_OK, ctx);
                if (rc != GH_OK)
                    continue;
                CHECK_EQ(m.nhdrs, 2, ctx);
                CHECK_EQ(hdrs[1].value.len, vlen, ctx);
                CHECK(memcmp(req + hdrs[1].value.off, val + (vlen < 24 && k == 0), vlen) == 0);
            }
    CHECK_EQ(bad, 0, "value bytes");
    {
        /* a DEL after a NUL, a NUL after a DEL, a CR after a tab */
        static const struct {
            const char *v;
            size_t len;
            enum gh_reason why;
        } two[] = {
            {L("abcdefg\0hij\x7fklmnop"), GH_REASON_CTL_CHAR},
            {L("abcdefgh\x7fijk\0lmnop"), GH_REASON_CTL_CHAR},
            {L("abc\tdefghijk\rlmnop"), GH_REASON_BARE_CR},
            {L("\x80\xff\x9f\xa0\xc3\xa9\x7e\x20\x01"), GH_REASON_CTL_CHAR},
        };
        for (k = 0; k < GH_ARRAY_LEN(two); k++) {
            size_t n = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
            memcpy(req + n, two[k].v, two[k].len);
            n += two[k].len;
            memcpy(req + n, "\r\n\r\n", 4);
            memset(&m, 0, sizeof(m));
            m.hdrs = hdrs;
            CHECK_EQ(http1_parse_request(req, n + 4, &lim, &m), GH_ERR, "two bad bytes");
            CHECK_STR(gh_reason_name(m.why), gh_reason_name(two[k].why), "two bad bytes");
        }
    }
}

/* Limits apply while bytes arrive, and a head fed one byte at a time parses
 * the same as one fed whole. */
TEST(http1_request_incremental)
{
    static const struct http1_limits small = {32, 128, 3, 16};
    static const char req[] = "GET /abc HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n";
    char big[300];
    struct http1_hdr hdrs[10];
    struct http1_msg m;
    size_t i;
    int rc = GH_AGAIN;

    memset(&m, 0, sizeof(m));
    m.hdrs = hdrs;
    for (i = 1; i <= sizeof(req) - 1; i++) {
        rc = http1_parse_request(req, i, &small, &m);
        if (i < sizeof(req) - 1)
            CHECK_EQ(rc, GH_AGAIN, "prefix");
    }
    CHECK_EQ(rc, GH_OK, "whole after bytewise");

    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /", 5);
    memset(&m, 0, sizeof(m));
    m.hdrs = hdrs;
    rc = http1_parse_request(big, 40, &small, &m);
    CHECK_EQ(rc, GH_ERR, "long request line before its end arrives");
    CHECK_EQ(m.why, GH_REASON_URI_TOO_LONG, "414");
    CHECK_EQ(gh_reason_status(m.why), 414, "414 status");

    memcpy(big, "GET / HTTP/1.1\r\nHost: a\r\nX: ", 28);
    memset(&m, 0, sizeof(m));
    m.hdrs = hdrs;
    rc = http1_parse_request(big, 200, &small, &m);
    CHECK_EQ(rc, GH_ERR, "head over max_header_size");
    CHECK_EQ(gh_reason_status(m.why), 431, "431 status");
    {
        static const char many[] = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        memset(&m, 0, sizeof(m));
        m.hdrs = hdrs;
        CHECK_EQ(http1_parse_request(many, sizeof(many) - 1, &small, &m), GH_ERR, "count");
        CHECK_EQ(m.why, GH_REASON_TOO_MANY_HEADERS, "too many headers");
    }
    /* A 48 KiB Kerberos token fits the default limits. */
    {
        static char krb[50000];
        size_t n = 0;
        n += (size_t)snprintf(krb, sizeof(krb), "GET / HTTP/1.1\r\nHost: a\r\n"
                                                "Authorization: Negotiate ");
        memset(krb + n, 'Y', 48 * 1024 - n);
        n = 48 * 1024;
        memcpy(krb + n, "\r\n\r\n", 4);
        memset(&m, 0, sizeof(m));
        m.hdrs = hdrs;
        CHECK_EQ(http1_parse_request(krb, n + 4, &lim, &m), GH_OK, "48k negotiate header");
        CHECK(m.flags & HTTP1_F_WINAUTH);
    }
}

struct resp_row {
    const char *name;
    const char *raw;
    size_t len;
    unsigned req_flags;
    int rc;
    int framing;
    int status;
};

static const struct resp_row resp_rows[] = {
    {"200 cl", L("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"), 0, GH_OK, HTTP1_BODY_LENGTH, 200},
    {"200 chunked", L("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), 0, GH_OK, HTTP1_BODY_CHUNKED, 200},
    {"200 until close", L("HTTP/1.1 200 OK\r\n\r\n"), 0, GH_OK, HTTP1_BODY_CLOSE, 200},
    {"204", L("HTTP/1.1 204 No Content\r\n\r\n"), 0, GH_OK, HTTP1_BODY_NONE, 204},
    {"304 with cl", L("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"), 0, GH_OK, HTTP1_BODY_NONE, 304},
    {"head response cl", L("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"), HTTP1_F_HEAD, GH_OK, HTTP1_BODY_NONE, 200},
    {"100 continue", L("HTTP/1.1 100 Continue\r\n\r\n"), 0, GH_OK, HTTP1_BODY_NONE, 100},
    {"101 switching", L("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"), 0, GH_OK, HTTP1_BODY_NONE, 101},
    {"no reason phrase", L("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"), 0, GH_OK, HTTP1_BODY_NONE, 200},
    {"http/1.0", L("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n"), 0, GH_OK, HTTP1_BODY_LENGTH, 200},
    {"cl and te", L("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"), 0, GH_ERR, 0, 0},
    {"two cl", L("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"), 0, GH_ERR, 0, 0},
    {"te gzip", L("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), 0, GH_ERR, 0, 0},
    {"204 with body", L("HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n"), 0, GH_ERR, 0, 0},
    {"status 600", L("HTTP/1.1 600 X\r\n\r\n"), 0, GH_ERR, 0, 0},
    {"status 2 digits", L("HTTP/1.1 20 OK\r\n\r\n"), 0, GH_ERR, 0, 0},
    {"not http", L("ICY 200 OK\r\n\r\n\r\n\r\n"), 0, GH_ERR, 0, 0},
    {"http/2", L("HTTP/2.0 200 OK\r\n\r\n"), 0, GH_ERR, 0, 0},
    {"obs-fold", L("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"), 0, GH_ERR, 0, 0},
    {"bare lf", L("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"), 0, GH_ERR, 0, 0},
    {"nul in header", L("HTTP/1.1 200 OK\r\nX: a\0b\r\nContent-Length: 0\r\n\r\n"), 0, GH_ERR, 0, 0},
    {"ctl in reason", L("HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n"), 0, GH_ERR, 0, 0},
};

TEST(http1_response_table)
{
    struct http1_hdr hdrs[100];
    struct http1_msg m;
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(resp_rows); i++) {
        const struct resp_row *r = &resp_rows[i];
        int rc;

        memset(&m, 0, sizeof(m));
        m.hdrs = hdrs;
        rc = http1_parse_response(r->raw, r->len, &lim, r->req_flags, &m);
        CHECK_EQ(rc, r->rc, r->name);
        if (rc == GH_OK && r->rc == GH_OK) {
            CHECK_EQ(m.framing, r->framing, r->name);
            CHECK_EQ(m.status, r->status, r->name);
        }
        if (rc == GH_ERR)
            CHECK_EQ(gh_reason_status(m.why), 502, r->name);
    }
    {
        static const char ntlm[] = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM\r\n"
                                   "Content-Length: 0\r\n\r\n";
        memset(&m, 0, sizeof(m));
        m.hdrs = hdrs;
        CHECK_EQ(http1_parse_response(ntlm, sizeof(ntlm) - 1, &lim, 0, &m), GH_OK, "ntlm");
        CHECK(m.flags & HTTP1_F_WINAUTH);
    }
}

TEST(http1_hop_by_hop)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, x-secret\r\n"
                              "Connection: foo\r\nX-Secret: 1\r\nFoo: 2\r\nKeep-Alive: 5\r\n"
                              "TE: trailers\r\nX-Keep: 3\r\n\r\n";
    struct http1_hdr hdrs[20];
    struct http1_msg m;
    unsigned i, hop = 0;

    memset(&m, 0, sizeof(m));
    m.hdrs = hdrs;
    CHECK_EQ(http1_parse_request(req, sizeof(req) - 1, &lim, &m), GH_OK, "hop");
    for (i = 0; i < m.nhdrs; i++)
        hop += hdrs[i].kind == HTTP1_H_HOP;
    /* both Connection lines, X-Secret, Foo, Keep-Alive, TE */
    CHECK_EQ(hop, 6, "hop-by-hop count");
    CHECK_EQ(hdrs[7].kind, HTTP1_H_E2E, "x-keep stays");
}

/* What each header line is to the proxy (issue 13): one row per header,
 * the kind the parser gives it inside a request or a response. */
struct kind_row {
    const char *name;
    const char *raw;
    size_t len;
    int response;
    unsigned idx;           /* header index checked */
    enum http1_hkind kind;
};

#define KREQ(n, hdrs, i, k) {n, L("GET / HTTP/1.1\r\nHost: a\r\n" hdrs "\r\n"), 0, i, k}
#define KREQ10(n, hdrs, i, k) {n, L("POST / HTTP/1.0\r\n" hdrs "\r\n"), 0, i, k}
#define KRESP(n, hdrs, i, k) {n, L("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" hdrs "\r\n"), 1, i, k}

static const struct kind_row kind_rows[] = {
    KREQ("host", "", 0, HTTP1_H_HOST),
    KREQ("plain", "X-A: 1\r\n", 1, HTTP1_H_E2E),
    KREQ("content-length", "Content-Length: 3\r\n", 1, HTTP1_H_FRAMING),
    KREQ("transfer-encoding", "Transfer-Encoding: chunked\r\n", 1, HTTP1_H_FRAMING),
    KREQ("connection", "Connection: close\r\n", 1, HTTP1_H_HOP),
    KREQ("proxy-connection", "Proxy-Connection: keep-alive\r\n", 1, HTTP1_H_HOP),
    KREQ("trailer", "Trailer: X\r\n", 1, HTTP1_H_HOP),
    KREQ("te", "TE: trailers\r\n", 1, HTTP1_H_HOP),
    KREQ("upgrade without connection", "Upgrade: h2c\r\n", 1, HTTP1_H_HOP),
    KREQ("named in connection", "Connection: x-a\r\nX-A: 1\r\n", 2, HTTP1_H_HOP),
    KREQ("named in a second connection", "Connection: close\r\nConnection: X-A\r\nX-A: 1\r\n", 3, HTTP1_H_HOP),
    KREQ("named case-insensitively, in a list", "Connection: foo , X-a\r\nX-A: 1\r\n", 2, HTTP1_H_HOP),
    KREQ("not named", "Connection: x-ab\r\nX-A: 1\r\n", 2, HTTP1_H_E2E),
    KREQ("x-forwarded-for", "X-Forwarded-For: 6.6.6.6\r\n", 1, HTTP1_H_PROXY),
    KREQ("x-forwarded-proto", "X-Forwarded-Proto: http\r\n", 1, HTTP1_H_PROXY),
    KREQ("x-forwarded-host", "X-Forwarded-Host: evil\r\n", 1, HTTP1_H_PROXY),
    KREQ("forwarded", "Forwarded: for=6.6.6.6\r\n", 1, HTTP1_H_PROXY),
    KREQ("x-real-ip", "X-Real-IP: 6.6.6.6\r\n", 1, HTTP1_H_PROXY),
    KREQ("proxy-authorization", "Proxy-Authorization: Basic eA==\r\n", 1, HTTP1_H_PROXY),
    KREQ("gatehouse-edge-token", "Gatehouse-Edge-Token: 1.1.x.1.x\r\n", 1, HTTP1_H_PROXY),
    KREQ("gatehouse-edge-token any case", "gATEHOUSE-edge-TOKEN: 1\r\n", 1, HTTP1_H_PROXY),
    KREQ("gatehouse-edge-tokens is another", "Gatehouse-Edge-Tokens: 1\r\n", 1, HTTP1_H_E2E),
    KREQ("via stays", "Via: 1.1 other\r\n", 1, HTTP1_H_E2E),
    KREQ("underscore te", "Transfer_Encoding: chunked\r\n", 1, HTTP1_H_UNDERSCORE),
    KREQ("underscore cl", "Content_Length: 5\r\n", 1, HTTP1_H_UNDERSCORE),
    KREQ("underscore xff", "X_Forwarded_For: 1.2.3.4\r\n", 1, HTTP1_H_UNDERSCORE),
    KREQ("expect 1.1", "Expect: 100-continue\r\n", 1, HTTP1_H_EXPECT),
    KREQ10("expect 1.0 ignored", "Expect: 100-continue\r\nContent-Length: 1\r\n", 0, HTTP1_H_IGNORED),
    KREQ10("any expect 1.0 ignored", "Expect: something-else\r\n", 0, HTTP1_H_IGNORED),
    KREQ("websocket key is end-to-end", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", 1, HTTP1_H_E2E),
    KRESP("server", "Server: IIS\r\n", 1, HTTP1_H_SERVER),
    KRESP("hsts", "Strict-Transport-Security: max-age=1\r\n", 1, HTTP1_H_HSTS),
    KRESP("response cl", "", 0, HTTP1_H_FRAMING),
    KRESP("response named in connection", "Connection: X-Internal\r\nX-Internal: s\r\n", 2, HTTP1_H_HOP),
    KRESP("response x-forwarded-for is not ours", "X-Forwarded-For: 1\r\n", 1, HTTP1_H_E2E),
    KRESP("response underscore kept", "X_A: 1\r\n", 1, HTTP1_H_E2E),
};

TEST(http1_header_kind_table)
{
    struct http1_hdr hdrs[20];
    struct http1_msg m;
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(kind_rows); i++) {
        const struct kind_row *r = &kind_rows[i];
        int rc;
        memset(&m, 0, sizeof(m));
        m.hdrs = hdrs;
        rc = r->response ? http1_parse_response(r->raw, r->len, &lim, 0, &m)
                         : http1_parse_request(r->raw, r->len, &lim, &m);
        CHECK_EQ(rc, GH_OK, r->name);
        if (rc == GH_OK) {
            CHECK(r->idx < m.nhdrs);
            CHECK_EQ(hdrs[r->idx].kind, r->kind, r->name);
        }
    }
}

/* Header names are classified eight bytes at a time (name_eq): for names
 * of every length the classifier knows (2 to 25 bytes, across the word
 * boundaries), every tchar at every position, in both cases, gives the
 * special kind exactly when it is the name's own letter in either case,
 * and the plain kind otherwise (a '_' the underscore kind). */
TEST(http1_header_names_every_byte)
{
    static const struct {
        const char *name;
        int response;
        enum http1_hkind kind;
    } names[] = {
        {"te", 0, HTTP1_H_HOP},
        {"server", 1, HTTP1_H_SERVER},
        {"trailer", 0, HTTP1_H_HOP},
        {"forwarded", 0, HTTP1_H_PROXY},
        {"x-real-ip", 0, HTTP1_H_PROXY},
        {"keep-alive", 0, HTTP1_H_HOP},
        {"x-forwarded-for", 0, HTTP1_H_PROXY},
        {"proxy-connection", 0, HTTP1_H_HOP},
        {"x-forwarded-host", 0, HTTP1_H_PROXY},
        {"x-forwarded-proto", 0, HTTP1_H_PROXY},
        {"proxy-authorization", 0, HTTP1_H_PROXY},
        {"gatehouse-edge-token", 0, HTTP1_H_PROXY},
        {"strict-transport-security", 1, HTTP1_H_HSTS},
    };
    static const char tchars[] = "!#$%&'*+-.^_`|~0123456789"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    struct http1_hdr hdrs[8];
    struct http1_msg m;
    char raw[160], nm[32], ctx[96];
    size_t i, k, t;
    unsigned bad = 0, tried = 0;

    for (i = 0; i < GH_ARRAY_LEN(names); i++) {
        size_t nlen = strlen(names[i].name);
        for (k = 0; k < nlen; k++)
            for (t = 0; t < sizeof(tchars) - 1; t++) {
                unsigned char c = (unsigned char)tchars[t];
                enum http1_hkind want = HTTP1_H_E2E;
                size_t n;
                int rc;

                memcpy(nm, names[i].name, nlen + 1);
                nm[k] = (char)c;
                if (k % 2 == 1) /* the letters around in upper case on odd rows */
                    for (n = 0; n < nlen; n++)
                        if (n != k && nm[n] >= 'a' && nm[n] <= 'z')
                            nm[n] = (char)(nm[n] - 32);
                if ((c | 0x20) == (unsigned char)names[i].name[k] &&
                    (c == '-' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
                    want = names[i].kind;
                else if (!names[i].response && c == '_')
                    want = HTTP1_H_UNDERSCORE;
                n = (size_t)snprintf(raw, sizeof(raw),
                                     names[i].response ? "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                                                         "%s: x\r\n\r\n"
                                                       : "GET / HTTP/1.1\r\nHost: a\r\n%s: x\r\n\r\n",
                                     nm);
                memset(&m, 0, sizeof(m));
                m.hdrs = hdrs;
                rc = names[i].response ? http1_parse_response(raw, n, &lim, 0, &m)
                                       : http1_parse_request(raw, n, &lim, &m);
                snprintf(ctx, sizeof(ctx), "%s: 0x%02x at %zu", nm, c, k);
                tried++;
                if (rc != GH_OK || m.nhdrs != 2 || hdrs[1].kind != want) {
                    bad++;
                    CHECK_EQ(rc, GH_OK, ctx);
                    if (rc == GH_OK && m.nhdrs == 2)
                        CHECK_EQ(hdrs[1].kind, want, ctx);
                }
            }
    }
    CHECK(tried > 10000);
    CHECK_EQ(bad, 0, "header names");
}

/* Connection options naming framing or Host (issue 13 items 1-2): refused
 * both ways; other facts the proxy decides on. */
TEST(http1_connection_options_and_upgrade_fields)
{
    static const struct {
        const char *name, *raw;
        size_t len;
        int response;
        int rc;
        enum gh_reason why;
    } crows[] = {
        {"connection: content-length", L("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 43\r\nConnection: Content-Length\r\n\r\n"), 0, GH_ERR, GH_REASON_CONN_OPTION},
        {"connection: transfer-encoding", L("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: transfer-encoding\r\n\r\n"), 0, GH_ERR, GH_REASON_CONN_OPTION},
        {"connection: host", L("GET / HTTP/1.1\r\nHost: a\r\nConnection: Host\r\n\r\n"), 0, GH_ERR, GH_REASON_CONN_OPTION},
        {"in a list", L("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, HOST\r\n\r\n"), 0, GH_ERR, GH_REASON_CONN_OPTION},
        {"second connection header", L("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nConnection: content-length\r\n\r\n"), 0, GH_ERR, GH_REASON_CONN_OPTION},
        {"http/1.0 too", L("GET / HTTP/1.0\r\nConnection: keep-alive, content-length\r\n\r\n"), 0, GH_ERR, GH_REASON_CONN_OPTION},
        {"not a framing name", L("GET / HTTP/1.1\r\nHost: a\r\nConnection: content-lengthy\r\n\r\n"), 0, GH_OK, GH_REASON_NONE},
        {"response connection: content-length", L("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: content-length\r\n\r\n"), 1, GH_ERR, GH_REASON_UPSTREAM_CONN_OPTION},
        {"response connection: transfer-encoding", L("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, Transfer-Encoding\r\n\r\n"), 1, GH_ERR, GH_REASON_UPSTREAM_CONN_OPTION},
        {"response other option", L("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: x-a\r\n\r\n"), 1, GH_OK, GH_REASON_NONE},
        {"expect 1.0 not checked", L("GET / HTTP/1.0\r\nExpect: nonsense\r\n\r\n"), 0, GH_OK, GH_REASON_NONE},
        {"expect 1.1 checked", L("GET / HTTP/1.1\r\nHost: a\r\nExpect: nonsense\r\n\r\n"), 0, GH_ERR, GH_REASON_BAD_EXPECT},
    };
    static const char ws[] = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                             "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n";
    static const char ws2[] = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                              "Upgrade: websocket\r\nSec-WebSocket-Key: a\r\nSec-WebSocket-Key: b\r\n\r\n";
    static const char wsnamed[] = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, Sec-WebSocket-Key\r\n"
                                  "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    struct http1_hdr hdrs[20];
    struct http1_msg m;
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(crows); i++) {
        int rc;
        memset(&m, 0, sizeof(m));
        m.hdrs = hdrs;
        rc = crows[i].response ? http1_parse_response(crows[i].raw, crows[i].len, &lim, 0, &m)
                              : http1_parse_request(crows[i].raw, crows[i].len, &lim, &m);
        CHECK_EQ(rc, crows[i].rc, crows[i].name);
        if (rc == GH_ERR)
            CHECK_EQ(m.why, crows[i].why, crows[i].name);
    }
    memset(&m, 0, sizeof(m));
    m.hdrs = hdrs;
    CHECK_EQ(http1_parse_request(ws, sizeof(ws) - 1, &lim, &m), GH_OK, "ws");
    CHECK(m.flags & HTTP1_F_UPGRADE);
    CHECK(gh_strncaseeq(ws + m.upgrade.off, m.upgrade.len, "websocket"));
    CHECK(gh_strncaseeq(ws + m.ws_key.off, m.ws_key.len, "dGhlIHNhbXBsZSBub25jZQ=="));
    CHECK(gh_strncaseeq(ws + m.ws_version.off, m.ws_version.len, "13"));
    CHECK(!(m.flags & HTTP1_F_WS_DUP));
    memset(&m, 0, sizeof(m));
    m.hdrs = hdrs;
    CHECK_EQ(http1_parse_request(ws2, sizeof(ws2) - 1, &lim, &m), GH_OK, "ws2");
    CHECK(m.flags & HTTP1_F_WS_DUP); /* two keys read two ways */
    memset(&m, 0, sizeof(m));
    m.hdrs = hdrs;
    CHECK_EQ(http1_parse_request(wsnamed, sizeof(wsnamed) - 1, &lim, &m), GH_OK, "wsnamed");
    CHECK_EQ(m.ws_key.len, 0, "a key the sender named in Connection is gone");
}
