/* Directive-level block edits: every other byte stays, and no value can
 * smuggle a statement, a brace or an open quote into the file. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../common/common.h"
#include "../../../web-ui/webui_int.h"
#include "../unit.h"

#define T2 "service a {\n    listen 127.0.0.1:1  # public\n    allowed-hosts *\n" \
           "    # the pool\n    server x 127.0.0.1:2\n    server y 127.0.0.1:3 weight 2\n}\n" \
           "service b { listen 127.0.0.1:9 }\n"

static const struct {
    const char *name, *text, *kind, *block;
    struct webui_field f[3];
    const char *want; /* NULL: refused */
    unsigned status;  /* when refused: 422 unless said */
} cases[] = {
    {"replace in place, comment kept", T2, "service", "a", {{"listen", "127.0.0.1:5"}},
     "service a {\n    listen 127.0.0.1:5  # public\n    allowed-hosts *\n    # the pool\n"
     "    server x 127.0.0.1:2\n    server y 127.0.0.1:3 weight 2\n}\n"
     "service b { listen 127.0.0.1:9 }\n", 0},
    {"several lines replace several", T2, "service", "a",
     {{"server", "x 127.0.0.1:2\nz 127.0.0.1:4\r\n\nw 127.0.0.1:5 maxconn 3"}},
     "service a {\n    listen 127.0.0.1:1  # public\n    allowed-hosts *\n    # the pool\n"
     "    server x 127.0.0.1:2\n    server z 127.0.0.1:4\n    server w 127.0.0.1:5 maxconn 3\n"
     "}\nservice b { listen 127.0.0.1:9 }\n", 0},
    {"empty removes every line of it", T2, "service", "a", {{"server", ""}},
     "service a {\n    listen 127.0.0.1:1  # public\n    allowed-hosts *\n    # the pool\n}\n"
     "service b { listen 127.0.0.1:9 }\n", 0},
    {"new directive before the brace, same indent", T2, "service", "a",
     {{"idle-timeout", "60s"}, {"hsts-max-age", "100"}},
     "service a {\n    listen 127.0.0.1:1  # public\n    allowed-hosts *\n    # the pool\n"
     "    server x 127.0.0.1:2\n    server y 127.0.0.1:3 weight 2\n    idle-timeout 60s\n"
     "    hsts-max-age 100\n}\nservice b { listen 127.0.0.1:9 }\n", 0},
    {"one-line block", T2, "service", "b", {{"app", "status"}, {"listen", "127.0.0.1:8"}},
     "service a {\n    listen 127.0.0.1:1  # public\n    allowed-hosts *\n    # the pool\n"
     "    server x 127.0.0.1:2\n    server y 127.0.0.1:3 weight 2\n}\n"
     "service b { listen 127.0.0.1:8 ; app status }\n", 0},
    {"rename quotes a name with a space", T2, "service", "b", {{"_name", "b 2"}},
     "service a {\n    listen 127.0.0.1:1  # public\n    allowed-hosts *\n    # the pool\n"
     "    server x 127.0.0.1:2\n    server y 127.0.0.1:3 weight 2\n}\n"
     "service \"b 2\" { listen 127.0.0.1:9 }\n", 0},
    {"a quoted # is a value, not a comment", "rules r {\n  rule a log if path exact /x\n}\n",
     "rules", "r", {{"rule", "a deny if query regex \"#x\"\nb log if method exact GET"}},
     "rules r {\n  rule a deny if query regex \"#x\"\n  rule b log if method exact GET\n}\n", 0},
    {"same name, other kind untouched", "rules s {\n}\nservice s {\n  listen 1.2.3.4:5\n}\n",
     "service", "s", {{"listen", "1.2.3.4:6"}},
     "rules s {\n}\nservice s {\n  listen 1.2.3.4:6\n}\n", 0},
    {"second statement on a line", "service s { listen 1:1; app status; }\n", "service", "s",
     {{"app", ""}}, "service s { listen 1:1;  }\n", 0},
    {"no newline at the end", "service s {\n  listen 1:1\n}", "service", "s",
     {{"allowed-dirs", "/a/*\n/b/*"}}, "service s {\n  listen 1:1\n  allowed-dirs /a/*\n"
     "  allowed-dirs /b/*\n}", 0},
    {"rename where the name touches its neighbours", "service\"b\"{ listen 1:1 }\n", "service",
     "b", {{"_name", "x"}}, "service x{ listen 1:1 }\n", 0},
    /* hostile values and names */
    {"second statement smuggled", T2, "service", "a", {{"listen", "127.0.0.1:5; app status"}},
     NULL, 422},
    {"brace smuggled", T2, "service", "a", {{"listen", "127.0.0.1:5 }\nservice evil {"}}, NULL,
     422},
    {"block opened", T2, "service", "a", {{"listen", "127.0.0.1:5 {"}}, NULL, 422},
    {"open quote", T2, "service", "a", {{"listen", "\"127.0.0.1:5"}}, NULL, 422},
    {"bad escape", T2, "service", "a", {{"listen", "\"a\\n\""}}, NULL, 422},
    {"control byte", T2, "service", "a", {{"listen", "a\x01"}}, NULL, 422},
    {"comment swallowing the brace of a one-line block", T2, "service", "b",
     {{"app", "status # }"}}, NULL, 422},
    {"a quoted # stays", T2, "service", "b", {{"app", "\"st#tus\""}},
     "service a {\n    listen 127.0.0.1:1  # public\n    allowed-hosts *\n    # the pool\n"
     "    server x 127.0.0.1:2\n    server y 127.0.0.1:3 weight 2\n}\n"
     "service b { listen 127.0.0.1:9 ; app \"st#tus\" }\n", 0},
    {"upper-case directive", T2, "service", "a", {{"Listen", "127.0.0.1:5"}}, NULL, 422},
    {"directive with a space", T2, "service", "a", {{"listen x", "1"}}, NULL, 422},
    {"empty directive", T2, "service", "a", {{"", "1"}}, NULL, 422},
    {"given twice", T2, "service", "a", {{"listen", "1:1"}, {"listen", "1:2"}}, NULL, 422},
    {"no such block", T2, "service", "c", {{"listen", "1:1"}}, NULL, 404},
    {"rename onto another", T2, "service", "b", {{"_name", "a"}}, NULL, 409},
    {"rename with a newline", T2, "service", "b", {{"_name", "x\ny"}}, NULL, 422},
    {"nested block", "rules r {\n  x {\n  }\n}\n", "rules", "r", {{"x", "1"}}, NULL, 422},
    {"broken text", "service s {\n", "service", "s", {{"listen", "1:1"}}, NULL, 422},
};

TEST(webui_block_directive_edits)
{
    char err[512];
    size_t i, nf;

    for (i = 0; i < GH_ARRAY_LEN(cases); i++) {
        unsigned status = 422;
        char *out;
        for (nf = 0; nf < 3 && cases[i].f[nf].key != NULL; nf++)
            ;
        err[0] = '\0';
        out = webui__block_set(cases[i].text, strlen(cases[i].text), cases[i].kind,
                               cases[i].block, cases[i].f, nf, &status, err, sizeof(err));
        if (cases[i].want != NULL) {
            CHECK_STR(out, cases[i].want, cases[i].name);
        } else {
            CHECK_STR(out == NULL ? "refused" : out, "refused", cases[i].name);
            CHECK_EQ(status, cases[i].status, cases[i].name);
            CHECK(err[0] != '\0');
        }
        free(out);
    }
}

TEST(webui_block_add_delete_and_listing)
{
    const char *t = "# top\nservice a {\n  listen 1:1\n}\n\nrules r {\n  rule x log if method "
                    "exact GET\n}\n";
    struct webui_field f[] = {{"_name", "new one"}, {"listen", "1:2"}, {"allowed-hosts", "*"}};
    struct gh_sbuf o = {NULL, 0, 0};
    unsigned status = 422;
    char err[512], *out;

    out = webui__block_add(t, strlen(t), "service", f, 3, &status, err, sizeof(err));
    CHECK_STR(out, "# top\nservice a {\n  listen 1:1\n}\n\nrules r {\n  rule x log if method "
                   "exact GET\n}\n\nservice \"new one\" {\n    listen 1:2\n    allowed-hosts *\n}\n",
              "add");
    free(out);
    f[0].value = "a";
    CHECK(webui__block_add(t, strlen(t), "service", f, 3, &status, err, sizeof(err)) == NULL);
    CHECK_EQ(status, 409, "add taken");
    out = webui__block_delete(t, strlen(t), "service", "a", &status, err, sizeof(err));
    CHECK_STR(out, "# top\n\nrules r {\n  rule x log if method exact GET\n}\n", "delete");
    free(out);
    status = 422;
    CHECK(webui__block_delete(t, strlen(t), "rules", "a", &status, err, sizeof(err)) == NULL);
    CHECK_EQ(status, 404, "delete missing");
    CHECK(webui__block_json(t, strlen(t), "rules", "r", &o, err, sizeof(err)) == 0);
    CHECK_STR(o.p, "\"kind\":\"rules\",\"name\":\"r\",\"line\":6,\"directives\":[{\"name\":"
                   "\"rule\",\"value\":\"x log if method exact GET\",\"line\":7,\"block\":false}]",
              "listing");
    free(o.p);
}

/* The history's "what changed": the directives of the lines that differ. */
TEST(webui_changed_directives)
{
    static const struct {
        const char *a, *b, *want;
    } diffs[] = {
        {"service s {\n    listen 1\n    idle-timeout 5s\n}\n",
         "service s {\n    listen 1\n    idle-timeout 9s\n}\n", "idle-timeout"},
        {"service s {\n    server a 1 weight 1\n    server b 2\n}\n",
         "service s {\n    server a 1 weight 7 state drain\n    server b 2\n}\n", "server"},
        {"a 1\nb 2\nc 3\n", "a 1\nb 5\nc 4\n", "b c"},
        {"x 1\n", "x 1\n", ""},
        {"x 1\n", "x 1\n# a comment\n", ""},
        {"x 1\n", "x 1\nservice new {\n    listen 2\n}\n", "service listen"},
        {"a 1\n", "", "a"},
        {"", "z 1\n", "z"},
        /* The tail "weight 5" is shared as bytes, not as a line. */
        {"a 1\nweight 5\n", "a 1\nmax-weight 5\n", "weight max-weight"},
    };
    char out[128];
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(diffs); i++) {
        webui__changed_directives(diffs[i].a, diffs[i].b, out, sizeof(out));
        CHECK_STR(out, diffs[i].want, diffs[i].b);
    }
    /* A tiny buffer truncates to whole words, never overflows. */
    webui__changed_directives("a 1\n", "bbbbbbbbbbbb 1\ncc 2\n", out, 8);
    CHECK(strlen(out) < 8);
}

/* The graphs' sampler: a service whose name is longer than a series keeps
 * gets no series (it would never match its cut copy and would fill the
 * table); the others are sampled from the first moment. */
static char *fake_metrics(int json, size_t *len)
{
    struct gh_sbuf o = {NULL, 0, 0};
    char longname[300];

    (void)json;
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    gh_sbuf_printf(&o, "{\"services\":[{\"name\":\"%s\",\"requests\":{\"2xx\":1},\"servers\":[]},"
                       "{\"name\":\"pub\",\"requests\":{\"2xx\":7,\"5xx\":2},\"latency_sum_ms\":9,"
                       "\"servers\":[{\"name\":\"w1\",\"health\":\"up\",\"requests\":{}}]}]}",
                   longname);
    *len = o.len;
    return o.p;
}

TEST(webui_graphs_sample_and_skip_overlong_names)
{
    char *j = NULL;
    size_t len = 0;
    int i;

    CHECK_EQ(webui__graphs_start(fake_metrics), 0, "start");
    for (i = 0; i < 200; i++) { /* the first sample is taken at once; 2 s at most */
        free(j);
        j = webui__graphs_json(&len);
        if (strstr(j, "\"w1\"") != NULL)
            break;
        usleep(10000);
    }
    CHECK(j != NULL && strstr(j, "{\"service\":\"pub\",\"server\":\"\",\"points\":[[") != NULL);
    CHECK(j != NULL && strstr(j, ",9,2,9,-1]") != NULL); /* 7 + 2 requests, 2 errors */
    CHECK(j != NULL && strstr(j, "\"server\":\"w1\"") != NULL && strstr(j, ",1]") != NULL);
    CHECK(j != NULL && strstr(j, "xxxxxxxx") == NULL);
    free(j);
    webui__graphs_stop();
}
