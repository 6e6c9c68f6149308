/* Table-driven tests of the header-rule directives (common/conf_headers.c):
 * every refused rule gives its file:line:col and names the reason; every
 * name gatehouse frames by or writes itself has a row of its own, per side;
 * the accepted rules read into the model in order and write back. */
#include "../../../common/conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../common/common.h"
#include "../unit.h"

/* The rule lines start at line 4 of the file, column 2. */
#define HSVC(x) "service s {\n listen 127.0.0.1:1\n server a 127.0.0.1:2\n" x "}\n"
/* " request-header set NAME v": NAME at column 21; response-header: 22 */
#define RQ(n) HSVC(" request-header set " n " v\n")
#define RS(n) HSVC(" response-header set " n " v\n")
#define OWNED_RQ(n, why)                                                                           \
    {                                                                                              \
        "request " n, RQ(n), 0, "4:21: 'request-header': " n " is not for rules: " why             \
    }
#define OWNED_RS(n, why)                                                                           \
    {                                                                                              \
        "response " n, RS(n), 0, "4:22: 'response-header': " n " is not for rules: " why           \
    }
#define FWD "gatehouse sets the forwarding headers itself"
#define FRAMING "gatehouse writes the one framing header itself"
#define HOPW "it is hop-by-hop; gatehouse writes its own"
#define HOPN "it is hop-by-hop and never forwarded"

static const struct {
    const char *name;
    const char *text;
    size_t len;      /* 0: strlen */
    const char *err; /* expected prefix after "t.conf:" */
} errs[] = {
    {"no action", HSVC(" request-header\n"), 0,
     "4:2: 'request-header' takes add NAME VALUE, set NAME VALUE or remove NAME"},
    {"unknown action", HSVC(" request-header append X-A b\n"), 0,
     "4:17: 'request-header': unknown action 'append' (add, set, remove)"},
    {"add without a name", HSVC(" request-header add\n"), 0,
     "4:17: 'request-header add' needs a header name"},
    {"add without a value", HSVC(" request-header add X-A\n"), 0,
     "4:21: 'request-header add' needs a value (\"\" for an empty one)"},
    {"set without a value", HSVC(" response-header set X-A\n"), 0,
     "4:22: 'response-header set' needs a value"},
    {"remove with a value", HSVC(" request-header remove X-A b\n"), 0,
     "4:28: 'request-header remove' takes a name and no value"},
    {"add with two values", HSVC(" response-header add X-A b c\n"), 0,
     "4:28: 'response-header add' takes a name and one value"},
    {"with a block", HSVC(" request-header add X-A b {\n }\n"), 0,
     "4:2: 'request-header' takes no block"},
    {"name with a space", HSVC(" request-header add \"X A\" b\n"), 0,
     "4:21: 'request-header': 'X A' is not a header name"},
    {"name with a colon", HSVC(" request-header add X-A: b\n"), 0,
     "4:21: 'request-header': 'X-A:' is not a header name"},
    {"name with a slash", HSVC(" response-header remove X/A\n"), 0,
     "4:25: 'response-header': 'X/A' is not a header name"},
    {"empty name", HSVC(" request-header add \"\" b\n"), 0,
     "4:21: 'request-header': a header name has 1 to 128 characters"},
    {"value with CR", HSVC(" request-header add X-A \"a\rb\"\n"), 0,
     "4:27: control character in string"},
    {"value with LF", HSVC(" request-header add X-A \"a\nb\"\n"), 0, "4:25: unterminated string"},
    {"value with NUL", HSVC(" request-header add X-A \"a\0b\"\n"),
     sizeof(HSVC(" request-header add X-A \"a\0b\"\n")) - 1, "1:1: file contains a NUL byte"},
    {"value with 0x01", HSVC(" response-header add X-A \"a\001b\"\n"), 0,
     "4:28: control character in string"},
    {"value with DEL", HSVC(" request-header add X-A \"a\177b\"\n"), 0,
     "4:25: 'request-header': byte 0x7f in the value: printable ASCII, spaces and tabs only "
     "(no CR, LF, NUL or other control bytes)"},
    {"value with UTF-8", HSVC(" response-header set X-A \"caf\303\251\"\n"), 0,
     "4:26: 'response-header': byte 0xc3 in the value"},
    {"value with a leading space", HSVC(" request-header add X-A \" a\"\n"), 0,
     "4:25: 'request-header': the value may not begin or end with a space or tab"},
    {"value with a trailing tab", HSVC(" response-header add X-A \"a\t\"\n"), 0,
     "4:26: 'response-header': the value may not begin or end with a space or tab"},

    /* Names gatehouse frames by, writes itself or checks: request side. */
    OWNED_RQ("Host", "gatehouse writes Host from the checked request"),
    OWNED_RQ("Content-Length", FRAMING),
    OWNED_RQ("Transfer-Encoding", FRAMING),
    OWNED_RQ("Connection", HOPW),
    OWNED_RQ("Keep-Alive", HOPW),
    OWNED_RQ("Proxy-Connection", HOPN),
    OWNED_RQ("TE", HOPN),
    OWNED_RQ("Trailer", HOPN),
    OWNED_RQ("Upgrade", "gatehouse decides upgrades itself (allowed-upgrades)"),
    OWNED_RQ("Sec-WebSocket-Key", "gatehouse checks the WebSocket handshake"),
    OWNED_RQ("X-Forwarded-For", FWD),
    OWNED_RQ("X-Forwarded-Proto", FWD),
    OWNED_RQ("X-Forwarded-Host", FWD),
    OWNED_RQ("X-Forwarded-Anything", FWD),
    OWNED_RQ("Forwarded", FWD),
    OWNED_RQ("X-Real-IP", FWD),
    OWNED_RQ("Via", FWD),
    OWNED_RQ("Proxy-Authorization", "it is meant for proxies and never forwarded"),
    OWNED_RQ("Expect", "gatehouse answers Expect: 100-continue itself"),
    OWNED_RQ("X_Forwarded_For", "servers may read '_' as '-' (underscore-headers)"),
    OWNED_RQ("HoSt", "gatehouse writes Host from the checked request"),
    {"request remove x-forwarded-for", HSVC(" request-header remove x-forwarded-for\n"), 0,
     "4:24: 'request-header': x-forwarded-for is not for rules: " FWD},
    {"request add content-length", HSVC(" request-header add content-length 5\n"), 0,
     "4:21: 'request-header': content-length is not for rules: " FRAMING},
    /* Response side. */
    OWNED_RS("Host", "gatehouse writes Host from the checked request"),
    OWNED_RS("Content-Length", FRAMING),
    OWNED_RS("Transfer-Encoding", FRAMING),
    OWNED_RS("Connection", HOPW),
    OWNED_RS("Keep-Alive", HOPW),
    OWNED_RS("Proxy-Connection", HOPN),
    OWNED_RS("TE", HOPN),
    OWNED_RS("Trailer", HOPN),
    OWNED_RS("Upgrade", "gatehouse decides upgrades itself (allowed-upgrades)"),
    OWNED_RS("Sec-WebSocket-Accept", "gatehouse checks the WebSocket handshake"),
    OWNED_RS("Strict-Transport-Security", "hsts-max-age sets it"),
    {"response add transfer-encoding", HSVC(" response-header add Transfer-Encoding chunked\n"), 0,
     "4:22: 'response-header': Transfer-Encoding is not for rules: " FRAMING},
    {"persistence cookie by a rule",
     HSVC(" persistence cookie MS-WSMAN\n response-header add Set-Cookie \"MS-WSMAN=x; Path=/\"\n"),
     0,
     "5:2: 'response-header': Set-Cookie MS-WSMAN is not for rules: it is the persistence "
     "cookie gatehouse signs"},
    {"persistence cookie by a rule written first, any case",
     HSVC(" response-header set Set-Cookie \"ms-wsman=x\"\n persistence cookie MS-WSMAN\n"), 0,
     "4:2: 'response-header': Set-Cookie MS-WSMAN is not for rules"},

    {"rewrite-host alone", HSVC(" rewrite-host fe1.contoso.local\n"), 0,
     "4:2: 'rewrite-host' takes INTERNAL PUBLIC[:PORT]"},
    {"rewrite-host three", HSVC(" rewrite-host fe1 meet.example.com x\n"), 0,
     "4:36: 'rewrite-host' takes INTERNAL PUBLIC[:PORT]"},
    {"rewrite-host internal with a scheme", HSVC(" rewrite-host http://fe1 meet.example.com\n"), 0,
     "4:15: 'rewrite-host': 'http://fe1' is not a host name or address (no scheme, no port)"},
    {"rewrite-host internal with a port", HSVC(" rewrite-host fe1:4443 meet.example.com\n"), 0,
     "4:15: 'rewrite-host': 'fe1:4443' is not a host name or address"},
    {"rewrite-host internal empty label", HSVC(" rewrite-host fe1..local meet.example.com\n"), 0,
     "4:15: 'rewrite-host': 'fe1..local' is not a host name"},
    {"rewrite-host public port 0", HSVC(" rewrite-host fe1 meet.example.com:0\n"), 0,
     "4:19: 'rewrite-host': 'meet.example.com:0' is not a published name, or name:port"},
    {"rewrite-host public port too big", HSVC(" rewrite-host fe1 meet.example.com:65536\n"), 0,
     "4:19: 'rewrite-host': 'meet.example.com:65536' is not a published name"},
    {"rewrite-host public with a path", HSVC(" rewrite-host fe1 meet.example.com/x\n"), 0,
     "4:19: 'rewrite-host': 'meet.example.com/x' is not a published name"},
    {"rewrite-host twice",
     HSVC(" rewrite-host fe1.local a.example\n rewrite-host FE1.Local b.example\n"), 0,
     "5:15: 'rewrite-host': FE1.Local is already rewritten at line 4"},
    {"strip-version-headers maybe", HSVC(" strip-version-headers maybe\n"), 0,
     "4:24: 'strip-version-headers' must be one of: on off"},
    {"strip-version-headers twice", HSVC(" strip-version-headers on\n strip-version-headers off\n"),
     0, "5:2: duplicate 'strip-version-headers'"},
};

TEST(conf_header_rules_error_table)
{
    char err[512], want[512];
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(errs); i++) {
        size_t len = errs[i].len ? errs[i].len : strlen(errs[i].text);
        struct gh_conf *c = gh_conf_parse("t.conf", errs[i].text, len, err, sizeof(err));
        CHECK(c == NULL);
        gh_conf_free(c);
        snprintf(want, sizeof(want), "t.conf:%s", errs[i].err);
        if (strncmp(err, want, strlen(want)) != 0) {
            fprintf(stderr, "[%s] got \"%s\"\n  want prefix \"%s\"\n", errs[i].name, err, want);
            unit_failures++;
        }
    }
}

/* Bounds: 64 rules a direction, 2048 bytes a value, 128 a name. */
TEST(conf_header_rules_bounds)
{
    struct gh_sbuf o = {NULL, 0, 0};
    char err[512], big[2100];
    struct gh_conf *c;
    int i;

    gh_sbuf_printf(&o, "service s {\n listen 127.0.0.1:1\n server a 127.0.0.1:2\n");
    for (i = 0; i < 64; i++)
        gh_sbuf_printf(&o, " request-header add X-N%d v\n", i);
    gh_sbuf_printf(&o, "}\n");
    c = gh_conf_parse("t.conf", o.p, o.len, err, sizeof(err));
    CHECK(c != NULL && c->services[0].headers.nreq == 64);
    gh_conf_free(c);
    o.len -= 2; /* a 65th */
    gh_sbuf_printf(&o, " request-header add X-Last v\n}\n");
    c = gh_conf_parse("t.conf", o.p, o.len, err, sizeof(err));
    CHECK(c == NULL);
    CHECK(strstr(err, "t.conf:68:2: 'request-header': at most 64 rules a service") == err);
    gh_conf_free(c);
    free(o.p);

    memset(big, 'v', sizeof(big));
    big[2049] = '\0';
    o.p = NULL, o.len = o.cap = 0;
    gh_sbuf_printf(&o, HSVC(" response-header add X-Big %s\n"), big);
    c = gh_conf_parse("t.conf", o.p, o.len, err, sizeof(err));
    CHECK(c == NULL &&
          strstr(err, "t.conf:4:28: 'response-header': a value has at most 2048") == err);
    gh_conf_free(c);
    free(o.p);
    big[2048] = '\0';
    o.p = NULL, o.len = o.cap = 0;
    gh_sbuf_printf(&o, HSVC(" response-header add X-Big %s\n"), big);
    c = gh_conf_parse("t.conf", o.p, o.len, err, sizeof(err));
    CHECK(c != NULL);
    gh_conf_free(c);
    free(o.p);
    big[129] = '\0';
    o.p = NULL, o.len = o.cap = 0;
    gh_sbuf_printf(&o, HSVC(" request-header remove %s\n"), big);
    c = gh_conf_parse("t.conf", o.p, o.len, err, sizeof(err));
    CHECK(c == NULL &&
          strstr(err, "t.conf:4:24: 'request-header': a header name has 1 to 128") == err);
    gh_conf_free(c);
    free(o.p);
}

static const char rules_ok[] =
    "service s {\n listen 0.0.0.0:443\n server a 127.0.0.1:2\n"
    " request-header add X-Site edge1\n"
    " request-header set Authorization \"Basic dXNlcjpwdw==\"\n"
    " request-header remove Cookie\n"
    " request-header add \"X#Hash\" \"a b\tc\"\n"
    " request-header add X-Empty \"\"\n"
    " response-header remove X-Internal\n"
    " response-header set X-Frame-Options DENY\n"
    " response-header add Set-Cookie \"other=1; Path=/\"\n"
    " response-header set Via edge\n"          /* only the request's Via is gatehouse's */
    " response-header set X-Forwarded-For x\n" /* likewise */
    " response-header set Server gatehouse\n"
    " rewrite-host FE1.Contoso.Local meet.example.com\n"
    " rewrite-host [FD00::5] meet.example.com:8443\n"
    " rewrite-host 10.0.0.5 Meet.Example.COM\n"
    " persistence cookie MS-WSMAN\n"
    "}\n";

TEST(conf_header_rules_model_and_roundtrip)
{
    char err[512];
    struct gh_conf *a = gh_conf_parse("t.conf", rules_ok, sizeof(rules_ok) - 1, err, sizeof(err));
    const struct gh_conf_headers *h;
    struct gh_conf *b;
    char *t1, *t2;

    CHECK(a != NULL);
    if (a == NULL) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    h = &a->services[0].headers;
    CHECK_EQ(h->nreq, 5, "request rules");
    CHECK_EQ(h->nresp, 6, "response rules");
    CHECK_EQ(h->nrewrites, 3, "rewrites");
    if (h->nreq == 5 && h->nresp == 6 && h->nrewrites == 3) {
        CHECK(h->req[0].op == GH_HDR_ADD && strcmp(h->req[0].name, "X-Site") == 0 &&
              strcmp(h->req[0].value, "edge1") == 0 && h->req[0].loc.line == 4);
        CHECK(h->req[2].op == GH_HDR_REMOVE && h->req[2].value == NULL);
        CHECK_STR(h->req[3].value, "a b\tc", "inner space and tab kept");
        CHECK_STR(h->req[4].value, "", "empty value");
        CHECK(h->resp[1].op == GH_HDR_SET);
        CHECK_STR(h->rewrites[0].internal, "fe1.contoso.local", "internal lower-cased");
        CHECK_STR(h->rewrites[1].internal, "[fd00::5]", "IPv6 internal");
        CHECK_EQ(h->rewrites[1].public_port, 8443, "public port");
        CHECK_STR(h->rewrites[2].public_host, "meet.example.com", "public lower-cased");
        CHECK_EQ(h->rewrites[0].public_port, 0, "no public port");
    }
    CHECK_STR(a->services[0].strip_version_headers, "on", "default strip-version-headers");
    t1 = gh_conf_write(a);
    b = gh_conf_parse("w.conf", t1, strlen(t1), err, sizeof(err));
    CHECK(b != NULL);
    if (b == NULL) {
        fprintf(stderr, "%s\n%s\n", err, t1);
    } else {
        t2 = gh_conf_write(b);
        CHECK_STR(t2, t1, "write(parse(write(x))) == write(x)");
        CHECK(strstr(t1, "    request-header add \"X#Hash\" \"a b\tc\"\n") != NULL);
        CHECK(strstr(t1, "    request-header add X-Empty \"\"\n") != NULL);
        CHECK(strstr(t1, "    response-header set X-Frame-Options DENY\n") != NULL);
        CHECK(strstr(t1, "    rewrite-host [fd00::5] meet.example.com:8443\n") != NULL);
        CHECK(strstr(t1, "strip-version-headers") == NULL); /* the default is left out */
        CHECK_EQ(b->services[0].headers.nresp, 6, "rules read back");
        free(t2);
    }
    free(t1);
    gh_conf_free(a);
    gh_conf_free(b);
}

/* Server is a version header too: unless server-header is written, it
 * follows strip-version-headers. */
TEST(conf_server_header_follows_strip_version_headers)
{
    static const struct {
        const char *lines, *server_header, *strip;
    } rows[] = {
        {"", "strip", "on"},
        {" strip-version-headers off\n", "pass", "off"},
        {" strip-version-headers on\n", "strip", "on"},
        {" strip-version-headers off\n server-header strip\n", "strip", "off"},
        {" server-header strip\n strip-version-headers off\n", "strip", "off"},
        {" server-header pass\n", "pass", "on"},
        {" strip-version-headers on\n server-header pass\n", "pass", "on"},
    };
    char err[512], text[512];
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(rows); i++) {
        struct gh_conf *c, *d;
        char *w;
        snprintf(text, sizeof(text), HSVC("%s"), rows[i].lines);
        c = gh_conf_parse("t.conf", text, strlen(text), err, sizeof(err));
        CHECK(c != NULL);
        if (c == NULL)
            continue;
        CHECK_STR(c->services[0].server_header, rows[i].server_header, rows[i].lines);
        CHECK_STR(c->services[0].strip_version_headers, rows[i].strip, rows[i].lines);
        w = gh_conf_write(c);
        d = gh_conf_parse("w.conf", w, strlen(w), err, sizeof(err));
        CHECK(d != NULL && strcmp(d->services[0].server_header, rows[i].server_header) == 0 &&
              strcmp(d->services[0].strip_version_headers, rows[i].strip) == 0);
        free(w);
        gh_conf_free(c);
        gh_conf_free(d);
    }
}
