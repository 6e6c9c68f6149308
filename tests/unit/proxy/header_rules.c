/* Table-driven tests of proxy/header_rules.c: a service's rules (read from
 * config text by the real parser), a raw head parsed by http1_parse.c, and
 * the header lines written the way headers.c writes them. Each row gives
 * the exact lines expected; every written head is then parsed again and
 * must keep the writer's invariants: it parses, one Host and first
 * (requests), the same framing with at most one framing header, nothing
 * hop-by-hop or proxy-owned, and the rules' lines before the framing. */
#include "../../../proxy/header_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../common/common.h"
#include "../unit.h"

static const struct http1_limits lim = {8192, 65536, 100, 1024};

struct row {
    const char *name;
    const char *listen; /* NULL: 127.0.0.1:8080 */
    int tls;
    const char *rules; /* service lines */
    const char *head;  /* a request (starts with a method) or a response */
    const char *want;  /* the header lines written, in order */
};

#define RQ(x) "GET / HTTP/1.1\r\nHost: a.example\r\n" x "\r\n"
#define RS(x) "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" x "\r\n"
#define VERSIONS                                                                                   \
    "Server: Microsoft-IIS/10.0\r\nX-Powered-By: ASP.NET\r\nX-AspNet-Version: 4.0.30319\r\n"       \
    "X-AspNetMvc-Version: 5.2\r\nX-Keep: 1\r\n"
#define REWRITE " rewrite-host fe1.contoso.local meet.example.com\n"
#define LOC(v) RS("Location: " v "\r\n")

static const struct row rows[] = {
    /* request rules */
    {"no rules: the client's lines as they came", NULL, 0, "", RQ("X-A: 1\r\nAccept: */*\r\n"),
     "X-A: 1\r\nAccept: */*\r\n"},
    {"add goes after the client's lines", NULL, 0, " request-header add X-Site edge1\n",
     RQ("X-A: 1\r\nAccept: */*\r\n"), "X-A: 1\r\nAccept: */*\r\nX-Site: edge1\r\n"},
    {"add keeps the client's own copy", NULL, 0, " request-header add X-Site edge1\n",
     RQ("X-Site: evil\r\n"), "X-Site: evil\r\nX-Site: edge1\r\n"},
    {"set replaces every copy, any case", NULL, 0, " request-header set X-Site edge1\n",
     RQ("X-Site: a\r\nAccept: */*\r\nx-SITE: b\r\n"), "Accept: */*\r\nX-Site: edge1\r\n"},
    {"remove drops every copy, any case", NULL, 0, " request-header remove cookie\n",
     RQ("Cookie: a=1\r\nX-A: 1\r\nCOOKIE: b=2\r\n"), "X-A: 1\r\n"},
    {"add then remove: nothing", NULL, 0, " request-header add X-A 1\n request-header remove X-A\n",
     RQ("X-A: client\r\nX-B: 2\r\n"), "X-B: 2\r\n"},
    {"remove then add: only the rule's", NULL, 0,
     " request-header remove X-A\n request-header add X-A 2\n", RQ("X-A: client\r\n"),
     "X-A: 2\r\n"},
    {"set twice: the last", NULL, 0, " request-header set X-A 1\n request-header set x-a 2\n",
     RQ("X-A: client\r\n"), "x-a: 2\r\n"},
    {"add twice: both, in order", NULL, 0, " request-header add X-A 1\n request-header add X-A 2\n",
     RQ(""), "X-A: 1\r\nX-A: 2\r\n"},
    {"set after add drops that addition only", NULL, 0,
     " request-header add X-A 1\n request-header add X-B 1\n request-header set X-A 3\n", RQ(""),
     "X-B: 1\r\nX-A: 3\r\n"},
    {"empty value", NULL, 0, " request-header add X-Empty \"\"\n", RQ(""), "X-Empty: \r\n"},
    {"inner space and tab kept", NULL, 0, " request-header add X-A \"a b\tc\"\n", RQ(""),
     "X-A: a b\tc\r\n"},
    {"the client's hop-by-hop lines stay out", NULL, 0, " request-header add X-B 2\n",
     RQ("Connection: x-a\r\nX-A: 1\r\nTE: trailers\r\nX-Forwarded-For: 6.6.6.6\r\n"), "X-B: 2\r\n"},
    {"chunked request: rules, then the one framing header", NULL, 0, " request-header set X-A 2\n",
     "POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n",
     "X-A: 2\r\n"},
    {"request with a length: rules, then the length", NULL, 0, " request-header add X-A 2\n",
     "POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\n\r\n", "X-A: 2\r\n"},
    {"response rules do not touch requests", NULL, 0, " response-header remove X-A\n",
     RQ("X-A: 1\r\n"), "X-A: 1\r\n"},
    {"request rules leave the request's Location alone", NULL, 0, REWRITE,
     RQ("Location: http://fe1.contoso.local/\r\n"), "Location: http://fe1.contoso.local/\r\n"},

    /* version headers and response rules */
    {"version headers stripped by default", NULL, 0, "", RS(VERSIONS), "X-Keep: 1\r\n"},
    {"strip-version-headers off keeps all four", NULL, 0, " strip-version-headers off\n",
     RS(VERSIONS), VERSIONS},
    {"off, with server-header strip: Server goes", NULL, 0,
     " strip-version-headers off\n server-header strip\n", RS(VERSIONS),
     "X-Powered-By: ASP.NET\r\nX-AspNet-Version: 4.0.30319\r\nX-AspNetMvc-Version: 5.2\r\n"
     "X-Keep: 1\r\n"},
    {"on, with server-header pass: Server stays", NULL, 0, " server-header pass\n", RS(VERSIONS),
     "Server: Microsoft-IIS/10.0\r\nX-Keep: 1\r\n"},
    {"version names in any case", NULL, 0, "", RS("x-powered-by: PHP/8\r\nX-ASPNET-VERSION: 2\r\n"),
     ""},
    {"set replaces the server's line", NULL, 0, " response-header set X-Frame-Options DENY\n",
     RS("X-Frame-Options: SAMEORIGIN\r\nX-A: 1\r\n"), "X-A: 1\r\nX-Frame-Options: DENY\r\n"},
    {"a rule may add a version header back", NULL, 0,
     " response-header add X-Powered-By gatehouse\n", RS("X-Powered-By: ASP.NET\r\n"),
     "X-Powered-By: gatehouse\r\n"},
    {"set Server with server-header pass", NULL, 0,
     " server-header pass\n response-header set Server edge\n", RS("Server: IIS\r\nX-A: 1\r\n"),
     "X-A: 1\r\nServer: edge\r\n"},
    {"remove Set-Cookie drops the server's cookies", NULL, 0,
     " response-header remove Set-Cookie\n", RS("Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-A: 1\r\n"),
     "X-A: 1\r\n"},
    {"chunked response: rules, then the framing", NULL, 0, " response-header add X-A 1\n",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-B: 2\r\n\r\n", "X-B: 2\r\nX-A: 1\r\n"},
    {"304 gets the rules", NULL, 0, " response-header add X-A 1\n",
     "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", "ETag: \"x\"\r\nX-A: 1\r\n"},
    {"interim response: no rules", NULL, 0,
     " response-header remove X-A\n response-header add X-B 1\n",
     "HTTP/1.1 100 Continue\r\nX-A: 1\r\n\r\n", "X-A: 1\r\n"},
    {"interim response: versions still stripped", NULL, 0, " response-header add X-B 1\n",
     "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nX-Powered-By: PHP\r\n\r\n",
     "Link: </a.css>; rel=preload\r\n"},
    {"request rules do not touch responses", NULL, 0, " request-header remove X-A\n",
     RS("X-A: 1\r\n"), "X-A: 1\r\n"},

    /* rewrite-host: Location and Content-Location */
    {"absolute http with the internal port", "0.0.0.0:443", 1, REWRITE,
     LOC("http://fe1.contoso.local:4443/meet/abc?x=1"),
     "Location: https://meet.example.com/meet/abc?x=1\r\n"},
    {"scheme and host in any case", "0.0.0.0:443", 1, REWRITE, LOC("HTTPS://FE1.Contoso.Local/x"),
     "Location: https://meet.example.com/x\r\n"},
    {"no path", "0.0.0.0:443", 1, REWRITE, LOC("http://fe1.contoso.local"),
     "Location: https://meet.example.com\r\n"},
    {"fully-qualified internal name (trailing dot)", "0.0.0.0:443", 1, REWRITE,
     LOC("http://fe1.contoso.local./x"), "Location: https://meet.example.com/x\r\n"},
    {"two trailing dots are not a name", "0.0.0.0:443", 1, REWRITE,
     LOC("http://fe1.contoso.local../x"), "Location: http://fe1.contoso.local../x\r\n"},
    {"query right after the host", "0.0.0.0:443", 1, REWRITE, LOC("http://fe1.contoso.local?x"),
     "Location: https://meet.example.com?x\r\n"},
    {"fragment right after the port", "0.0.0.0:443", 1, REWRITE,
     LOC("http://fe1.contoso.local:80#top"), "Location: https://meet.example.com#top\r\n"},
    {"scheme-relative", "0.0.0.0:443", 1, REWRITE, LOC("//fe1.contoso.local:80/a"),
     "Location: //meet.example.com/a\r\n"},
    {"Content-Location too", "0.0.0.0:443", 1, REWRITE,
     RS("Content-Location: http://fe1.contoso.local/a.html\r\n"),
     "Content-Location: https://meet.example.com/a.html\r\n"},
    {"another host is left alone", "0.0.0.0:443", 1, REWRITE, LOC("http://fe2.contoso.local/x"),
     "Location: http://fe2.contoso.local/x\r\n"},
    {"a longer name is not a match", "0.0.0.0:443", 1, REWRITE, LOC("http://xfe1.contoso.local/x"),
     "Location: http://xfe1.contoso.local/x\r\n"},
    {"an internal name as a prefix is not a match", "0.0.0.0:443", 1, REWRITE,
     LOC("http://fe1.contoso.local.evil.example/x"),
     "Location: http://fe1.contoso.local.evil.example/x\r\n"},
    {"a relative reference is left alone", "0.0.0.0:443", 1, REWRITE, LOC("/meet/abc"),
     "Location: /meet/abc\r\n"},
    {"the name in the path is left alone", "0.0.0.0:443", 1, REWRITE,
     LOC("https://meet.example.com/r?u=http://fe1.contoso.local/"),
     "Location: https://meet.example.com/r?u=http://fe1.contoso.local/\r\n"},
    {"userinfo is left alone", "0.0.0.0:443", 1, REWRITE, LOC("http://u@fe1.contoso.local/"),
     "Location: http://u@fe1.contoso.local/\r\n"},
    {"another scheme is left alone", "0.0.0.0:443", 1, REWRITE, LOC("ftp://fe1.contoso.local/"),
     "Location: ftp://fe1.contoso.local/\r\n"},
    {"a port that is not digits is left alone", "0.0.0.0:443", 1, REWRITE,
     LOC("http://fe1.contoso.local:44x/"), "Location: http://fe1.contoso.local:44x/\r\n"},
    {"IPv6 internal address", "0.0.0.0:443", 1, " rewrite-host [fd00::5] meet.example.com\n",
     LOC("http://[FD00::5]:8080/x"), "Location: https://meet.example.com/x\r\n"},
    {"IPv4 internal address", "0.0.0.0:443", 1, " rewrite-host 10.0.0.5 meet.example.com\n",
     LOC("http://10.0.0.5:8080/x"), "Location: https://meet.example.com/x\r\n"},
    {"a TLS listener not on 443 keeps its port", "0.0.0.0:8443", 1, REWRITE,
     LOC("http://fe1.contoso.local/x"), "Location: https://meet.example.com:8443/x\r\n"},
    {"the published port is written (NAT)", "0.0.0.0:8443", 1,
     " rewrite-host fe1.contoso.local meet.example.com:443\n", LOC("http://fe1.contoso.local/x"),
     "Location: https://meet.example.com/x\r\n"},
    {"a published port other than 443", "0.0.0.0:443", 1,
     " rewrite-host fe1.contoso.local meet.example.com:4443\n", LOC("http://fe1.contoso.local/x"),
     "Location: https://meet.example.com:4443/x\r\n"},
    {"a plain service on 80", "0.0.0.0:80", 0, REWRITE, LOC("https://fe1.contoso.local/x"),
     "Location: http://meet.example.com/x\r\n"},
    {"a plain service on 8080", NULL, 0, REWRITE, LOC("https://fe1.contoso.local/x"),
     "Location: http://meet.example.com:8080/x\r\n"},
    {"several names, each its own", "0.0.0.0:443", 1,
     REWRITE " rewrite-host fe2.contoso.local dialin.example.com\n",
     RS("Location: http://fe2.contoso.local/d\r\nContent-Location: http://fe1.contoso.local/m\r\n"),
     "Location: https://dialin.example.com/d\r\nContent-Location: https://meet.example.com/m\r\n"},
    {"a rule's Location is not rewritten", "0.0.0.0:443", 1,
     REWRITE " response-header set Location http://fe1.contoso.local/rule\n",
     LOC("http://fe1.contoso.local/server"), "Location: http://fe1.contoso.local/rule\r\n"},
    {"interim responses are not rewritten", "0.0.0.0:443", 1, REWRITE,
     "HTTP/1.1 103 Early Hints\r\nLocation: http://fe1.contoso.local/x\r\n\r\n",
     "Location: http://fe1.contoso.local/x\r\n"},

    /* rewrite-host: Set-Cookie Domain */
    {"Domain=internal", "0.0.0.0:443", 1, REWRITE,
     RS("Set-Cookie: s=1; Domain=fe1.contoso.local; Path=/; Secure; HttpOnly\r\n"),
     "Set-Cookie: s=1; Domain=meet.example.com; Path=/; Secure; HttpOnly\r\n"},
    {"Domain=.internal, spaces and case kept", "0.0.0.0:443", 1, REWRITE,
     RS("Set-Cookie: s=1;path=/; domain = .FE1.contoso.local ;secure\r\n"),
     "Set-Cookie: s=1;path=/; domain = .meet.example.com ;secure\r\n"},
    {"Domain last", "0.0.0.0:443", 1, REWRITE, RS("Set-Cookie: s=1; DOMAIN=fe1.contoso.local\r\n"),
     "Set-Cookie: s=1; DOMAIN=meet.example.com\r\n"},
    {"two Domain attributes", "0.0.0.0:443", 1, REWRITE,
     RS("Set-Cookie: s=1; Domain=fe1.contoso.local; Domain=.fe1.contoso.local\r\n"),
     "Set-Cookie: s=1; Domain=meet.example.com; Domain=.meet.example.com\r\n"},
    {"the cookie itself is not looked into", "0.0.0.0:443", 1, REWRITE,
     RS("Set-Cookie: Domain=fe1.contoso.local; Path=/\r\n"),
     "Set-Cookie: Domain=fe1.contoso.local; Path=/\r\n"},
    {"another Domain is left alone", "0.0.0.0:443", 1, REWRITE,
     RS("Set-Cookie: s=1; Domain=contoso.local; Path=/fe1.contoso.local\r\n"),
     "Set-Cookie: s=1; Domain=contoso.local; Path=/fe1.contoso.local\r\n"},
    {"a Domain flag without a value", "0.0.0.0:443", 1, REWRITE,
     RS("Set-Cookie: s=1; Domain; Secure\r\n"), "Set-Cookie: s=1; Domain; Secure\r\n"},
    {"Domain never gets a port", "0.0.0.0:8443", 1, REWRITE,
     RS("Set-Cookie: s=1; Domain=fe1.contoso.local\r\n"),
     "Set-Cookie: s=1; Domain=meet.example.com\r\n"},
    {"cookies stay in order with the others", "0.0.0.0:443", 1, REWRITE,
     RS("Set-Cookie: a=1\r\nX-A: 1\r\nSet-Cookie: b=2; Domain=fe1.contoso.local\r\n"),
     "Set-Cookie: a=1\r\nX-A: 1\r\nSet-Cookie: b=2; Domain=meet.example.com\r\n"},
};

static struct gh_conf *conf_for(const struct row *r, char *err, size_t errlen)
{
    char text[4096];

    snprintf(text, sizeof(text),
             "certificate c {\n cert c.pem\n key c.key\n}\n"
             "service s {\n listen %s\n%s server a 127.0.0.1:2\n%s}\n",
             r->listen ? r->listen : "127.0.0.1:8080", r->tls ? " certificate c\n" : "", r->rules);
    return gh_conf_parse("t.conf", text, strlen(text), err, errlen);
}

/* Nothing gatehouse would not write; framing as the original. */
static void check_written(const char *name, const char *w, size_t wl, int request,
                          const struct http1_msg *m, const char *want)
{
    struct http1_hdr h[100];
    struct http1_msg n;
    unsigned i, host = 0, framing = 0;
    int rc;
    const char *fields, *fr;

    memset(&n, 0, sizeof(n));
    n.hdrs = h;
    rc = request ? http1_parse_request(w, wl, &lim, &n) : http1_parse_response(w, wl, &lim, 0, &n);
    CHECK_EQ(rc, GH_OK, name);
    if (rc != GH_OK)
        return;
    for (i = 0; i < n.nhdrs; i++) {
        switch (h[i].kind) {
        case HTTP1_H_HOST:
            host++;
            CHECK_EQ(i, 0, name); /* Host first */
            break;
        case HTTP1_H_FRAMING:
            framing++;
            break;
        case HTTP1_H_HOP:
        case HTTP1_H_PROXY:
        case HTTP1_H_UNDERSCORE:
        case HTTP1_H_IGNORED:
            fprintf(stderr, "[%s] written head carries a line of kind %d\n", name, h[i].kind);
            unit_failures++;
            break;
        default:
            break;
        }
    }
    CHECK_EQ(host, request ? 1 : 0, name);
    CHECK(framing <= 1);
    CHECK_EQ(n.framing, m->framing, name);
    CHECK_EQ(n.content_length, m->content_length, name);
    /* the rules' lines sit with the end-to-end ones, before the framing */
    fields = want[0] ? strstr(w, want) : w;
    CHECK(fields != NULL);
    fr = strstr(w, m->framing == HTTP1_BODY_CHUNKED ? "Transfer-Encoding:" : "Content-Length:");
    if (fields != NULL && fr != NULL && fr < fields + strlen(want)) {
        fprintf(stderr, "[%s] the framing header is not after the rules' lines:\n%s\n", name, w);
        unit_failures++;
    }
}

TEST(proxy_header_rules_table)
{
    char err[512];
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(rows); i++) {
        const struct row *r = &rows[i];
        struct gh_conf *c = conf_for(r, err, sizeof(err));
        struct proxy_hdr_rules *hr;
        struct http1_hdr h[100];
        struct http1_msg m;
        struct gh_buf f = {0}, w = {0};
        int request = strncmp(r->head, "HTTP/", 5) != 0, rc;
        unsigned keep;
        char *got;

        if (c == NULL) {
            fprintf(stderr, "[%s] config: %s\n", r->name, err);
            unit_failures++;
            continue;
        }
        hr = proxy__hdr_rules_new(c->file, &c->services[0], err, sizeof(err));
        CHECK(hr != NULL);
        memset(&m, 0, sizeof(m));
        m.hdrs = h;
        rc = request ? http1_parse_request(r->head, strlen(r->head), &lim, &m)
                     : http1_parse_response(r->head, strlen(r->head), &lim, 0, &m);
        CHECK_EQ(rc, GH_OK, r->name);
        if (hr == NULL || rc != GH_OK) {
            proxy__hdr_rules_free(hr);
            gh_conf_free(c);
            continue;
        }
        /* As headers.c writes them. */
        if (request) {
            keep = HTTP1_KEEP(HTTP1_H_E2E) | HTTP1_KEEP(HTTP1_H_EXPECT);
            proxy__hdr_write_req_fields(&f, r->head, &m, keep, hr);
            http1_write_request_line(&w, r->head, &m, "/", 1, "a.example", 9);
            proxy__hdr_write_req_fields(&w, r->head, &m, keep, hr);
            http1_write_req_framing(&w, &m);
        } else {
            keep = HTTP1_KEEP(HTTP1_H_E2E) | HTTP1_KEEP(HTTP1_H_HSTS);
            if (strcmp(c->services[0].server_header, "pass") == 0)
                keep |= HTTP1_KEEP(HTTP1_H_SERVER);
            proxy__hdr_write_resp_fields(&f, r->head, &m, keep, hr);
            http1_write_status_line(&w, r->head, &m);
            proxy__hdr_write_resp_fields(&w, r->head, &m, keep, hr);
            if (m.status >= 200)
                http1_write_resp_framing(&w, &m, m.framing);
        }
        http1_write_end(&w);
        got = gh_strndup(f.data ? f.data + f.r : "", f.data ? gh_buf_len(&f) : 0);
        CHECK_STR(got, r->want, r->name);
        free(got);
        got = gh_strndup(w.data + w.r, gh_buf_len(&w));
        check_written(r->name, got, strlen(got), request, &m, r->want);
        free(got);
        gh_buf_put(&f);
        gh_buf_put(&w);
        proxy__hdr_rules_free(hr);
        gh_conf_free(c);
    }
}
