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
    "}\n";

struct prow {
    const char *name;
    int svc; /* 0 meet, 1 open */
    const char *method, *target, *host, *sni, *ua;
    enum gh_reason why;
    const char *forwarded; /* the normalised target, when forwarded */
    int logged;            /* log-only rules that matched */
};

#define M 0
#define O 1
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
    char err[256], out[512];
    struct gh_conf *c = gh_conf_parse("t.conf", conf_text, sizeof(conf_text) - 1, err, sizeof(err));
    struct rules_policy *p[2] = {NULL, NULL};
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
    for (k = 0; k < 2; k++) {
        p[k] = rules_policy_new("t.conf", c, &c->services[k], err, sizeof(err));
        CHECK(p[k] != NULL);
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
    rules_policy_free(p[0]);
    rules_policy_free(p[1]);
    gh_conf_free(c);
    rules_thread_fini();
    gh_kv_fini();
}
