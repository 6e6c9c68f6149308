/* The firewall of a service decided in one call (rules/policy.c): one row
 * per request, the verdict and the normalised target it forwards. */
#include "../../../rules/rules.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "../../../common/common.h"
#include "../../../common/conf.h"
#include "../../../common/kv.h"
#include "../unit.h"

static const char conf_text[] =
    "rules edge {\n"
    "    rule no-admin deny 403 if path prefix /admin\n"
    "    rule old redirect 301 https://meet.example.com/new if path exact /meet/old\n"
    "    rule ua log if header User-Agent regex \"(?i)curl\"\n"
    "}\n"
    "service meet {\n"
    "    listen 127.0.0.1:1\n"
    "    server a 127.0.0.1:9\n"
    "    allowed-hosts meet.example.com *.lync.example.com 192.0.2.1\n"
    "    allowed-dirs /meet/* /abs/* /healthcheck.html\n"
    "    allowed-methods GET POST OPTIONS\n"
    "    rule-set edge\n"
    "    request-rate-per-source 1\n"
    "    request-burst-per-source 3\n"
    "}\n"
    "service open {\n"
    "    listen 127.0.0.1:2\n"
    "    server a 127.0.0.1:9\n"
    "    allowed-hosts *\n"
    "    allowed-dirs /*\n"
    "    sni-host-match off\n"
    "}\n"
    /* issue 14 */
    "service iis {\n"
    "    listen 127.0.0.1:3\n"
    "    server a 127.0.0.1:9\n"
    "    allowed-hosts *\n"
    "    allowed-dirs /autodiscover/* /abs/*\n"
    "    allowed-dirs-case insensitive\n"
    "}\n"
    "service plain80 {\n"
    "    listen 127.0.0.1:4\n"
    "    allowed-hosts meet.example.com [::1] 192.0.2.1\n"
    "    allowed-dirs /*\n"
    "    redirect https\n"
    "}\n"
    "service plain8080 {\n"
    "    listen 127.0.0.1:5\n"
    "    allowed-hosts *\n"
    "    allowed-dirs /meet/* /admin/*\n"
    "    rule-set edge\n"
    "    redirect https code 308 port 8443\n"
    "}\n"
    "rules moves {\n"
    "    rule m1 redirect 301 https://$host/new$path?$query if path prefix /old/\n"
    "    rule m2 redirect \"/$path\" if path prefix /rel/\n"
    "    rule m3 redirect https://$host$path if path prefix /noq/\n"
    "    rule m4 redirect https://x.example/?$query if path prefix /onlyq\n"
    "    rule m5 redirect 308 https://$host/a?b=1&$query if path prefix /amp\n"
    "    rule m6 redirect /$path if path prefix //e\n"
    "    rule m7 redirect $path if path prefix //a\n"
    "    rule m8 redirect https://$host/n?$query&x=1 if path prefix /mid\n"
    "}\n"
    "service moves {\n"
    "    listen 127.0.0.1:6\n"
    "    server a 127.0.0.1:9\n"
    "    allowed-hosts *\n"
    "    allowed-dirs /*\n"
    "    merge-slashes off\n"
    "    rule-set moves\n"
    "}\n";
#define NSVC 6

struct prow {
    const char *name;
    int svc; /* 0 meet, 1 open, 2 iis (allowed-dirs-case insensitive) */
    const char *method, *target, *host, *sni, *ua;
    enum gh_reason why;
    const char *forwarded; /* the normalised target, when forwarded */
    int logged;            /* log-only rules that matched */
};

#define M 0
#define O 1
#define I 2
#define P80 3
#define P8080 4
#define MV 5
static const struct prow prows[] = {
    {"allowed", M, "GET", "/meet/x", "meet.example.com", "meet.example.com", NULL, GH_REASON_NONE, "/meet/x", 0},
    {"host with port and case", M, "GET", "/meet/x", "MEET.example.com:443", "meet.example.com", NULL, GH_REASON_NONE, "/meet/x", 0},
    {"wildcard one label", M, "GET", "/abs/a", "pool.lync.example.com", "pool.lync.example.com", NULL, GH_REASON_NONE, "/abs/a", 0},
    {"wildcard two labels", M, "GET", "/abs/a", "a.b.lync.example.com", "", NULL, GH_REASON_HOST_NOT_ALLOWED, NULL, 0},
    {"address host", M, "GET", "/meet/", "192.0.2.1", "", NULL, GH_REASON_NONE, "/meet/", 0},
    {"host not allowed", M, "GET", "/meet/x", "intranet.corp", "", NULL, GH_REASON_HOST_NOT_ALLOWED, NULL, 0},
    {"no host (http/1.0)", M, "GET", "/meet/x", "", "", NULL, GH_REASON_HOST_NOT_ALLOWED, NULL, 0},
    {"no host, open service", O, "GET", "/x", "", "", NULL, GH_REASON_NONE, "/x", 0},
    {"bad host bytes", M, "GET", "/meet/x", "meet.example.com@evil", "", NULL, GH_REASON_BAD_HOST, NULL, 0},
    {"sni not allowed", M, "GET", "/meet/x", "meet.example.com", "evil.example.net", NULL, GH_REASON_SNI_NOT_ALLOWED, NULL, 0},
    {"domain fronting", M, "GET", "/abs/a", "pool.lync.example.com", "meet.example.com", NULL, GH_REASON_SNI_HOST_MISMATCH, NULL, 0},
    {"fronting allowed where sni-host-match off", O, "GET", "/x", "a.example", "b.example", NULL, GH_REASON_NONE, "/x", 0},
    {"method not allowed", M, "DELETE", "/meet/x", "meet.example.com", "", NULL, GH_REASON_METHOD_NOT_ALLOWED, NULL, 0},
    {"method case matters", M, "get", "/meet/x", "meet.example.com", "", NULL, GH_REASON_METHOD_NOT_ALLOWED, NULL, 0},
    {"dir not allowed", M, "GET", "/secret/passwd", "meet.example.com", "", NULL, GH_REASON_DIR_NOT_ALLOWED, NULL, 0},
    {"traversal out of an allowed dir", M, "GET", "/meet/../secret", "meet.example.com", "", NULL, GH_REASON_DIR_NOT_ALLOWED, NULL, 0},
    {"encoded traversal resolved", M, "GET", "/meet/%2e%2e/abs/a", "meet.example.com", "", NULL, GH_REASON_NONE, "/abs/a", 0},
    {"traversal above the root", M, "GET", "/meet/../../etc", "meet.example.com", "", NULL, GH_REASON_PATH_TRAVERSAL, NULL, 0},
    {"encoded slash", M, "GET", "/meet%2f..%2fsecret", "meet.example.com", "", NULL, GH_REASON_PATH_ENCODED_SLASH, NULL, 0},
    {"nul", M, "GET", "/meet/%00", "meet.example.com", "", NULL, GH_REASON_PATH_NUL, NULL, 0},
    {"query kept raw", M, "GET", "/meet/a?x=%2e%2e&y=1", "meet.example.com", "", NULL, GH_REASON_NONE, "/meet/a?x=%2e%2e&y=1", 0},
    {"query not checked as path", M, "GET", "/meet/a?/secret", "meet.example.com", "", NULL, GH_REASON_NONE, "/meet/a?/secret", 0},
    {"empty path of an absolute target", O, "GET", "?q", "a", "", NULL, GH_REASON_NONE, "/?q", 0},
    {"options star", M, "OPTIONS", "*", "meet.example.com", "", NULL, GH_REASON_DIR_NOT_ALLOWED, NULL, 0},
    {"options star needs allowed-dirs *", O, "OPTIONS", "*", "a", "", NULL, GH_REASON_DIR_NOT_ALLOWED, NULL, 0},
    {"rule deny", O, "GET", "/admin/x", "a", "", NULL, GH_REASON_NONE, "/admin/x", 0},
    {"rule redirect", M, "GET", "/meet/old", "meet.example.com", "", NULL, GH_REASON_RULE, NULL, 0},
    {"rule deny on the normalised path", M, "GET", "/meet/../admin/x", "meet.example.com", "", NULL, GH_REASON_DIR_NOT_ALLOWED, NULL, 0},
    {"log rule goes on", M, "GET", "/meet/x", "meet.example.com", "", "curl/8", GH_REASON_NONE, "/meet/x", 1},
    /* allowed-dirs-case insensitive: matching only, the path goes on as sent */
    {"dirs case-sensitive by default", M, "GET", "/MEET/x", "meet.example.com", "", NULL, GH_REASON_DIR_NOT_ALLOWED, NULL, 0},
    {"iis Autodiscover", I, "GET", "/Autodiscover/Autodiscover.xml", "a", "", NULL, GH_REASON_NONE, "/Autodiscover/Autodiscover.xml", 0},
    {"iis ABS with query", I, "GET", "/ABS/Handler/x?Q=A", "a", "", NULL, GH_REASON_NONE, "/ABS/Handler/x?Q=A", 0},
    {"iis lower case", I, "GET", "/abs/x", "a", "", NULL, GH_REASON_NONE, "/abs/x", 0},
    {"iis escape decoded, case kept", I, "GET", "/%41bs/x", "a", "", NULL, GH_REASON_NONE, "/Abs/x", 0},
    {"iis other dir", I, "GET", "/Secret/x", "a", "", NULL, GH_REASON_DIR_NOT_ALLOWED, NULL, 0},
    {"iis no trailing slash", I, "GET", "/ABS", "a", "", NULL, GH_REASON_DIR_NOT_ALLOWED, NULL, 0},
    {"iis traversal out", I, "GET", "/ABS/../Secret", "a", "", NULL, GH_REASON_DIR_NOT_ALLOWED, NULL, 0},
    {"iis prefix is not a dir", I, "GET", "/ABSX/y", "a", "", NULL, GH_REASON_DIR_NOT_ALLOWED, NULL, 0},
};

/* Redirects that keep the request: what the policy answers instead of
 * forwarding, as the Location the proxy writes. */
struct lrow {
    const char *name;
    int svc;
    const char *method, *target, *host;
    enum gh_reason why;
    int status;           /* 0: no redirect */
    const char *location; /* as written, when status */
};

static const struct lrow lrows[] = {
    /* redirect https: host (normalised, no port), then path and query as sent */
    {"keeps path and query", P80, "GET", "/user/ID?x=1", "meet.example.com", GH_REASON_NONE, 301, "https://meet.example.com/user/ID?x=1"},
    {"host port and case dropped", P80, "GET", "/user/ID?x=1", "MEET.Example.com.:80", GH_REASON_NONE, 301, "https://meet.example.com/user/ID?x=1"},
    {"raw path, not the normalised one", P80, "GET", "/u/%41/./c/../d?q=1", "meet.example.com", GH_REASON_NONE, 301, "https://meet.example.com/u/%41/./c/../d?q=1"},
    {"encoded bytes kept", P80, "GET", "/caf%C3%A9/%20x?n=%E2%82%AC", "meet.example.com", GH_REASON_NONE, 301, "https://meet.example.com/caf%C3%A9/%20x?n=%E2%82%AC"},
    {"query bytes a URI may not hold", P80, "GET", "/x?a=\"<b>\"|\\^`{}&c=%zz%4", "meet.example.com", GH_REASON_NONE, 301, "https://meet.example.com/x?a=%22%3Cb%3E%22%7C%5C%5E%60%7B%7D&c=%25zz%254"},
    {"path bytes a URI may not hold", P80, "GET", "/a<b>|{c}", "meet.example.com", GH_REASON_NONE, 301, "https://meet.example.com/a%3Cb%3E%7C%7Bc%7D"},
    {"empty query kept as sent", P80, "GET", "/x?", "meet.example.com", GH_REASON_NONE, 301, "https://meet.example.com/x?"},
    {"absolute-form without a path", P80, "GET", "?q", "meet.example.com", GH_REASON_NONE, 301, "https://meet.example.com/?q"},
    {"root", P80, "GET", "/", "meet.example.com", GH_REASON_NONE, 301, "https://meet.example.com/"},
    {"POST redirected too", P80, "POST", "/api?x", "meet.example.com", GH_REASON_NONE, 301, "https://meet.example.com/api?x"},
    {"HEAD", P80, "HEAD", "/h", "meet.example.com", GH_REASON_NONE, 301, "https://meet.example.com/h"},
    {"IPv6 literal host", P80, "GET", "/x", "[::1]:80", GH_REASON_NONE, 301, "https://[::1]/x"},
    {"address host", P80, "GET", "/x", "192.0.2.1:80", GH_REASON_NONE, 301, "https://192.0.2.1/x"},
    {"leading double slash stays behind the host", P80, "GET", "//evil.example/x", "meet.example.com", GH_REASON_NONE, 301, "https://meet.example.com//evil.example/x"},
    {"refused path is not redirected", P80, "GET", "/a/../../etc", "meet.example.com", GH_REASON_PATH_TRAVERSAL, 0, NULL},
    {"encoded slash is not redirected", P80, "GET", "/a%2fb", "meet.example.com", GH_REASON_PATH_ENCODED_SLASH, 0, NULL},
    {"nul is not redirected", P80, "GET", "/a%00", "meet.example.com", GH_REASON_PATH_NUL, 0, NULL},
    {"bad host is not redirected", P80, "GET", "/x", "evil.example@meet.example.com", GH_REASON_BAD_HOST, 0, NULL},
    {"other host is not redirected", P80, "GET", "/x", "evil.example", GH_REASON_HOST_NOT_ALLOWED, 0, NULL},
    {"method refused first", P80, "TRACE", "/x", "meet.example.com", GH_REASON_METHOD_NOT_ALLOWED, 0, NULL},
    {"port and code", P8080, "GET", "/meet/x?y", "a.example:8080", GH_REASON_NONE, 308, "https://a.example:8443/meet/x?y"},
    {"http/1.0 without host", P8080, "GET", "/meet/x", "", GH_REASON_NO_HOST, 0, NULL},
    {"directories first", P8080, "GET", "/other", "a.example", GH_REASON_DIR_NOT_ALLOWED, 0, NULL},
    {"a redirect rule first", P8080, "GET", "/meet/old", "a.example", GH_REASON_RULE, 301, "https://meet.example.com/new"},
    {"a deny rule first", P8080, "GET", "/admin/x", "a.example", GH_REASON_RULE, 0, NULL},
    /* rule targets with $host, $path (normalised), $query (raw, no '?') */
    {"all three", MV, "GET", "/old/a/b?x=1&y=2", "Meet.Example.com:443", GH_REASON_RULE, 301, "https://meet.example.com/new/old/a/b?x=1&y=2"},
    {"no query: no dangling ?", MV, "GET", "/old/a", "h.example", GH_REASON_RULE, 301, "https://h.example/new/old/a"},
    {"empty query: no dangling ?", MV, "GET", "/old/a?", "h.example", GH_REASON_RULE, 301, "https://h.example/new/old/a"},
    {"$path is the normalised path", MV, "GET", "/old/x/%2e%2e/b%7e", "h.example", GH_REASON_RULE, 301, "https://h.example/new/old/b~"},
    {"$path keeps escapes", MV, "GET", "/old/caf%c3%a9", "h.example", GH_REASON_RULE, 301, "https://h.example/new/old/caf%C3%A9"},
    {"$query escaped", MV, "GET", "/old/q?a=\"<x>\"", "h.example", GH_REASON_RULE, 301, "https://h.example/new/old/q?a=%22%3Cx%3E%22"},
    {"relative, one slash", MV, "GET", "/rel/a", "h.example", GH_REASON_RULE, 302, "/rel/a"},
    {"/$path never protocol-relative", MV, "GET", "//evil.example/x", "h.example", GH_REASON_RULE, 302, "/evil.example/x"},
    {"$path never protocol-relative, alone", MV, "GET", "//alone//x", "h.example", GH_REASON_RULE, 302, "/alone//x"},
    {"query dropped where not asked for", MV, "GET", "/noq/a?x=1", "h.example", GH_REASON_RULE, 302, "https://h.example/noq/a"},
    {"only the query, empty", MV, "GET", "/onlyq", "h.example", GH_REASON_RULE, 302, "https://x.example/"},
    {"only the query", MV, "GET", "/onlyq?a=1", "h.example", GH_REASON_RULE, 302, "https://x.example/?a=1"},
    {"empty query after &", MV, "GET", "/amp", "h.example", GH_REASON_RULE, 308, "https://h.example/a?b=1"},
    {"query after &", MV, "GET", "/amp?c=2", "h.example", GH_REASON_RULE, 308, "https://h.example/a?b=1&c=2"},
    {"empty query in the middle keeps the ?", MV, "GET", "/mid", "h.example", GH_REASON_RULE, 302, "https://h.example/n?&x=1"},
    {"$host without a host", MV, "GET", "/old/a", "", GH_REASON_NO_HOST, 0, NULL},
};

static const char *ua_now;

static int header(void *ctx, const char *name, unsigned idx, const char **v, size_t *vlen)
{
    (void)ctx;
    if (strcmp(name, "User-Agent") != 0 || ua_now == NULL || idx > 0)
        return -1;
    *v = ua_now;
    *vlen = strlen(ua_now);
    return 0;
}

static void fill(struct rules_http_req *r, const char *method, const char *target,
                 const char *host, const char *sni, const struct sockaddr *src)
{
    memset(r, 0, sizeof(*r));
    r->method = method;
    r->method_len = strlen(method);
    r->target = target;
    r->target_len = strlen(target);
    r->host = host;
    r->host_len = strlen(host);
    r->sni = sni;
    r->source = src;
    r->header = header;
}

TEST(rules_policy_table)
{
    static char out[20000];
    char err[256];
    struct gh_conf *c = gh_conf_parse("t.conf", conf_text, sizeof(conf_text) - 1, err, sizeof(err));
    struct rules_policy *p[NSVC] = {NULL};
    struct sockaddr_in a;
    struct rules_http_req r;
    struct rules_decision d;
    size_t i;
    int k, refused = 0;

    gh_kv_init(4096);
    CHECK(c != NULL);
    if (c == NULL) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    CHECK_EQ(c->nservices, NSVC, "services");
    for (k = 0; k < NSVC; k++) {
        p[k] = rules_policy_new("t.conf", c, &c->services[k], err, sizeof(err));
        CHECK(p[k] != NULL);
        if (p[k] == NULL)
            fprintf(stderr, "%s\n", err);
    }
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    for (i = 0; i < GH_ARRAY_LEN(prows); i++) {
        const struct prow *w = &prows[i];
        char ip[32];
        /* A source of its own per row: the rate limit is a row of its own. */
        snprintf(ip, sizeof(ip), "198.51.100.%zu", i + 1);
        inet_pton(AF_INET, ip, &a.sin_addr);
        ua_now = w->ua;
        fill(&r, w->method, w->target, w->host, w->sni, (struct sockaddr *)&a);
        CHECK_EQ(rules_policy_check(p[w->svc], &r, out, &d), w->why, w->name);
        CHECK_EQ(d.why, w->why, w->name);
        if (w->why == GH_REASON_NONE && w->forwarded != NULL) {
            CHECK_EQ(d.target_len, strlen(w->forwarded), w->name);
            CHECK(d.target_len == strlen(w->forwarded) &&
                  memcmp(d.target, w->forwarded, d.target_len) == 0);
        }
        CHECK_EQ(d.rule.nlogged, w->logged, w->name);
        if (w->why != GH_REASON_RULE)
            CHECK_EQ(d.redirect.status, 0, w->name);
    }
    for (i = 0; i < GH_ARRAY_LEN(lrows); i++) {
        const struct lrow *w = &lrows[i];
        char ip[32], loc[RULES_LOCATION_MAX + 1];
        size_t n, j;
        snprintf(ip, sizeof(ip), "198.51.101.%zu", i + 1);
        inet_pton(AF_INET, ip, &a.sin_addr);
        ua_now = NULL;
        fill(&r, w->method, w->target, w->host, "", (struct sockaddr *)&a);
        CHECK_EQ(rules_policy_check(p[w->svc], &r, out, &d), w->why, w->name);
        CHECK_EQ(d.redirect.status, w->status, w->name);
        if (w->status == 0 || d.redirect.status == 0)
            continue;
        n = rules_location_write(&d.redirect, loc);
        CHECK_EQ(n, rules_location_write(&d.redirect, NULL), w->name);
        CHECK_STR(loc, w->location, w->name);
        for (j = 0; j < n; j++) /* one valid header value, one URI */
            CHECK((unsigned char)loc[j] > 0x20 && (unsigned char)loc[j] < 0x7f);
    }
    /* A location that would pass RULES_LOCATION_MAX is refused, 414. */
    {
        static char big[16000];
        memset(big, 'a', sizeof(big) - 1);
        memcpy(big, "/old/", 5);
        fill(&r, "GET", big, "h.example", "", (struct sockaddr *)&a);
        CHECK_EQ(rules_policy_check(p[MV], &r, out, &d), GH_REASON_URI_TOO_LONG, "long rule");
        CHECK_EQ(d.redirect.status, 0, "long rule: no redirect");
        memset(big + 5, '"', 6000); /* escaped, three bytes each */
        fill(&r, "GET", big, "meet.example.com", "", (struct sockaddr *)&a);
        CHECK_EQ(rules_policy_check(p[P80], &r, out, &d), GH_REASON_URI_TOO_LONG, "long https");
        memset(big + 5, 'a', 6000);
        memset(big + 5, '"', 2000); /* 6000 + 8000 bytes: fits */
        big[10000] = '\0';
        fill(&r, "GET", big, "meet.example.com", "", (struct sockaddr *)&a);
        CHECK_EQ(rules_policy_check(p[P80], &r, out, &d), GH_REASON_NONE, "10k: fits");
    }
    /* "rule deny" row above runs on the open service; on meet the deny
     * comes after the directory check, so test it on an allowed dir. */
    inet_pton(AF_INET, "203.0.113.9", &a.sin_addr);
    fill(&r, "GET", "/meet/old", "meet.example.com", "", (struct sockaddr *)&a);
    CHECK_EQ(rules_policy_check(p[0], &r, out, &d), GH_REASON_RULE, "redirect verdict");
    CHECK_EQ(d.rule.action, RULES_REDIRECT, "redirect action");
    CHECK_STR(d.rule.target, "https://meet.example.com/new", "redirect target");
    /* The rate limit comes first: burst 3, then refused, whatever the request. */
    inet_pton(AF_INET, "203.0.113.10", &a.sin_addr);
    for (k = 0; k < 6; k++) {
        fill(&r, "GET", k % 2 ? "/meet/x" : "/secret", "meet.example.com", "",
             (struct sockaddr *)&a);
        refused += rules_policy_check(p[0], &r, out, &d) == GH_REASON_RATE_LIMIT;
    }
    CHECK_EQ(refused, 3, "rate limit after the burst, before any other check");
    /* The normalisation alone gives the same target and counts nothing. */
    {
        const char *t;
        size_t tlen;
        CHECK_EQ(rules_policy_normalise(p[0], "/meet/%2e%2e/abs/a?q", 20, out, &t, &tlen),
                 GH_REASON_NONE, "normalise");
        CHECK(tlen == 8 && memcmp(t, "/abs/a?q", 8) == 0);
    }
    for (k = 0; k < NSVC; k++)
        rules_policy_free(p[k]);
    gh_conf_free(c);
    rules_thread_fini();
    gh_kv_fini();
}
