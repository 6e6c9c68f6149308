/* Rule sets (pcre2) and per-source limits over the shared store. */
#include "../../../rules/rules.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "../../../common/common.h"
#include "../../../common/conf.h"
#include "../../../common/kv.h"
#include "../unit.h"

static const char ruleset_text[] =
    "rules edge {\n"
    "    rule log-ua log if header User-Agent regex \"(?i)sqlmap|nikto\"\n"
    "    rule internal allow if source 10.0.0.0/8\n"
    "    rule no-admin deny 403 if path prefix /admin\n"
    "    rule sqli deny 400 if query regex \"(?i)union(\\\\s|%20|\\\\+)+select\"\n"
    "    rule old redirect 301 https://meet.example.com/new if path exact /old\n"
    "    rule no-trace deny 405 if method exact TRACE\n"
    "    rule redos deny 400 if query regex \"^(a+)+$\"\n"
    "    rule v6 deny if source 2001:db8::/32\n"
    "    rule role deny 403 if header X-Role exact admin\n"
    "    rule trusted allow if header X-Trust exact yes\n"
    "    rule after-trust deny 403 if path prefix /trust\n"
    "}\n";

struct hdrs {
    const char *lines; /* "Name=value|value..." : the lines of one header, or NULL */
};

static int header(void *ctx, const char *name, unsigned idx, const char **v, size_t *vlen)
{
    struct hdrs *h = ctx;
    const char *p, *e;
    size_t n = strlen(name);

    if (h->lines == NULL || strncmp(h->lines, name, n) != 0 || h->lines[n] != '=')
        return -1;
    for (p = h->lines + n + 1; idx > 0; idx--) {
        if ((p = strchr(p, '|')) == NULL)
            return -1;
        p++;
    }
    e = strchr(p, '|');
    *v = p;
    *vlen = e ? (size_t)(e - p) : strlen(p);
    return 0;
}

static const struct {
    const char *name, *method, *path, *query, *hdr, *src;
    const char *id; /* deciding rule, or NULL */
    int nlogged;
} cases[] = {
    {"plain get", "GET", "/meet/x", "", NULL, "192.0.2.1", NULL, 0},
    {"admin", "GET", "/admin/users", "", NULL, "192.0.2.1", "no-admin", 0},
    {"admin from inside", "GET", "/admin/users", "", NULL, "10.1.2.3", "internal", 0},
    {"sqli", "GET", "/x", "id=1 UNION  SELECT pw", NULL, "192.0.2.1", "sqli", 0},
    {"sqli encoded", "GET", "/x", "id=1%20union%20select", NULL, "192.0.2.1", "sqli", 0},
    {"redirect", "GET", "/old", "", NULL, "192.0.2.1", "old", 0},
    {"not exact", "GET", "/old/x", "", NULL, "192.0.2.1", NULL, 0},
    {"trace", "TRACE", "/", "", NULL, "192.0.2.1", "no-trace", 0},
    {"scanner logged", "GET", "/", "", "User-Agent=Mozilla sqlmap/1.0", "192.0.2.1", NULL, 1},
    {"scanner logged then denied", "GET", "/admin", "", "User-Agent=Nikto", "192.0.2.1", "no-admin", 1},
    {"redos fails closed", "GET", "/", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", NULL, "192.0.2.1", "redos", 0},
    {"v6 cidr", "GET", "/", "", NULL, "2001:db8::5", "v6", 0},
    {"v6 outside", "GET", "/", "", NULL, "2001:db9::5", NULL, 0},
    /* a header sent twice is matched line by line, failing closed */
    {"header deny on the first line", "GET", "/", "", "X-Role=admin", "192.0.2.1", "role", 0},
    {"header deny on a second line", "GET", "/", "", "X-Role=user|admin", "192.0.2.1", "role", 0},
    {"header deny, no line matches", "GET", "/", "", "X-Role=user|guest", "192.0.2.1", NULL, 0},
    {"allow needs every line", "GET", "/trust", "", "X-Trust=yes|no", "192.0.2.1", "after-trust", 0},
    {"allow with every line", "GET", "/trust", "", "X-Trust=yes|yes", "192.0.2.1", "trusted", 0},
    {"log rule on any line", "GET", "/", "", "User-Agent=ok|sqlmap", "192.0.2.1", NULL, 1},
};

TEST(rules_set_eval_table)
{
    char err[512];
    struct gh_conf *c = gh_conf_parse("r.conf", ruleset_text, sizeof(ruleset_text) - 1, err,
                                      sizeof(err));
    struct rules_set *s;
    size_t i;

    CHECK(c != NULL);
    if (c == NULL) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    s = rules_set_new("r.conf", &c->rulesets[0], err, sizeof(err));
    CHECK(s != NULL);
    if (s == NULL) {
        fprintf(stderr, "%s\n", err);
        gh_conf_free(c);
        return;
    }
    CHECK_EQ(rules_set_count(s), 11, "rules compiled");
    for (i = 0; i < GH_ARRAY_LEN(cases); i++) {
        struct sockaddr_storage ss;
        struct rules_req q;
        struct rules_verdict v;
        struct hdrs h = {cases[i].hdr};
        memset(&ss, 0, sizeof(ss));
        if (strchr(cases[i].src, ':')) {
            ss.ss_family = AF_INET6;
            inet_pton(AF_INET6, cases[i].src, &((struct sockaddr_in6 *)&ss)->sin6_addr);
        } else {
            ss.ss_family = AF_INET;
            inet_pton(AF_INET, cases[i].src, &((struct sockaddr_in *)&ss)->sin_addr);
        }
        memset(&q, 0, sizeof(q));
        q.method = cases[i].method;
        q.method_len = strlen(q.method);
        q.path = cases[i].path;
        q.path_len = strlen(q.path);
        q.query = cases[i].query;
        q.query_len = strlen(q.query);
        q.source = (struct sockaddr *)&ss;
        q.header = header;
        q.ctx = &h;
        rules_set_eval(s, &q, &v);
        if (cases[i].id == NULL)
            CHECK_EQ(v.action, RULES_NONE, cases[i].name);
        else
            CHECK_STR(v.id, cases[i].id, cases[i].name);
        CHECK_EQ(v.nlogged, cases[i].nlogged, cases[i].name);
    }
    rules_set_free(s);
    gh_conf_free(c);

    /* A pattern that does not compile is a located config error. */
    {
        static const char bad[] = "rules r {\n    rule x deny if path regex \"a(b\"\n}\n";
        c = gh_conf_parse("b.conf", bad, sizeof(bad) - 1, err, sizeof(err));
        CHECK(c != NULL);
        if (c != NULL) {
            s = rules_set_new("b.conf", &c->rulesets[0], err, sizeof(err));
            CHECK(s == NULL);
            CHECK(strncmp(err, "b.conf:2:", 9) == 0 && strstr(err, "missing closing parenthesis"));
            gh_conf_free(c);
        }
    }
    rules_thread_fini();
}

TEST(rules_limits_and_kv)
{
    struct sockaddr_in a, b;
    uint32_t scope = rules_scope("svc");
    int i, ok = 0;
    int64_t v;

    gh_kv_init(4096);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.7", &a.sin_addr);
    b = a;
    inet_pton(AF_INET, "192.0.2.8", &b.sin_addr);
    /* concurrent connections */
    CHECK_EQ(rules_limit_conn_open(scope, (struct sockaddr *)&a, 2, 0), 0, "first");
    CHECK_EQ(rules_limit_conn_open(scope, (struct sockaddr *)&a, 2, 0), 0, "second");
    CHECK_EQ(rules_limit_conn_open(scope, (struct sockaddr *)&a, 2, 0), -1, "third refused");
    CHECK_EQ(rules_limit_conn_open(scope, (struct sockaddr *)&b, 2, 0), 0, "other address");
    CHECK_EQ(rules_limit_conn_open(rules_scope("other"), (struct sockaddr *)&a, 2, 0), 0,
             "other service");
    rules_limit_conn_close(scope, (struct sockaddr *)&a, 2);
    CHECK_EQ(rules_limit_conn_open(scope, (struct sockaddr *)&a, 2, 0), 0, "after a close");
    /* request token bucket: burst 5 at 1/s */
    for (i = 0; i < 10; i++)
        ok += rules_limit_request(scope, (struct sockaddr *)&a, 1, 5) == 0;
    CHECK_EQ(ok, 5, "burst then refused");
    /* the store itself */
    CHECK_EQ(gh_kv_set_nx("k", 1, 7, 10000), 1, "set");
    CHECK_EQ(gh_kv_set_nx("k", 1, 8, 10000), 0, "exists");
    CHECK(gh_kv_get("k", 1, &v) == 0 && v == 7);
    CHECK_EQ(gh_kv_incr("k", 1, 3, 10000), 10, "incr");
    gh_kv_del("k", 1);
    CHECK_EQ(gh_kv_get("k", 1, &v), -1, "deleted");
    CHECK_EQ(gh_kv_set_nx("t", 1, 1, 0), 1, "zero ttl");
    CHECK_EQ(gh_kv_get("t", 1, &v), -1, "expired at once");
    /* a spraying flood: the table stays its size and keeps working */
    for (i = 0; i < 100000; i++) {
        char key[16];
        int n = snprintf(key, sizeof(key), "s%d", i);
        gh_kv_incr(key, (size_t)n, 1, 60000);
    }
    CHECK(gh_kv_evictions() > 0);
    CHECK_EQ(gh_kv_incr("fresh", 5, 1, 60000), 1, "still usable after the flood");
    gh_kv_fini();
}
