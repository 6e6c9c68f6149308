/* Table-driven tests of rules/host.c, rules/path.c and rules/dirs.c: each
 * row is an input, the expected verdict and the normalised output. */
#include "../../../rules/rules.h"

#include <stdio.h>
#include <string.h>

#include "../../../common/common.h"
#include "../unit.h"

static const struct {
    const char *in;
    const char *out; /* NULL: refused */
} hosts[] = {
    {"meet.example.com", "meet.example.com"},
    {"MEET.Example.COM", "meet.example.com"},
    {"meet.example.com.", "meet.example.com"},
    {"meet.example.com:443", "meet.example.com"},
    {"meet.example.com.:8443", "meet.example.com"},
    {"localhost", "localhost"},
    {"127.0.0.1", "127.0.0.1"},
    {"127.0.0.1:8443", "127.0.0.1"},
    {"[::1]", "[::1]"},
    {"[::1]:8443", "[::1]"},
    {"[FE80::1]", "[fe80::1]"},
    {"a_b.example.com", "a_b.example.com"},
    {"xn--bcher-kva.example", "xn--bcher-kva.example"},
    {"", NULL},
    {".", NULL},
    {":443", NULL},
    {"meet.example.com:", NULL},
    {"meet.example.com:44a", NULL},
    {"meet..example.com", NULL},
    {".meet.example.com", NULL},
    {"meet.example.com..", NULL},
    {"meet example.com", NULL},
    {"meet.example.com/evil", NULL},
    {"user@meet.example.com", NULL},
    {"meet.example.com%00", NULL},
    {"meet.example.com\\evil", NULL},
    {"[::1", NULL},
    {"[::1]x", NULL},
    {"[::1]:", NULL},
    {"[]", NULL},
    {"[::g]", NULL},
    {"m\xc3\xa9" "et.example.com", NULL},
    {"*.example.com", NULL},
};

static const struct {
    const char *name;
    int allowed; /* against the list below */
} matches[] = {
    {"meet.example.com", 1},   {"dialin.example.com", 1}, {"a.lync.example.com", 1},
    {"lync.example.com", 0},   {"a.b.lync.example.com", 0}, {"example.com", 0},
    {"meet.example.com.evil.net", 0}, {"evilmeet.example.com", 0}, {"xlync.example.com", 0},
    {"127.0.0.1", 1},          {"127.0.0.2", 0},
};

/* Every byte value in the middle of a name and at its start: accepted
 * exactly when it is a letter (lowered), digit, '-' or '_' (names are
 * looked up a byte at a time in a table, rules/host.c). */
TEST(rules_host_every_byte)
{
    char in[16], out[32], want[16];
    unsigned c, bad = 0;

    for (c = 0; c < 256; c++) {
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_';
        int rc;

        memcpy(in, "ab?cd.example", 14);
        in[2] = (char)c;
        rc = rules_host_norm(in, 13, out, sizeof(out));
        memcpy(want, in, 14);
        want[2] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        if (c == '.') {
            ok = 1; /* "ab.cd.example": a separator where a label ends */
        } else if (c == ':') {
            ok = 0; /* "ab" with port "cd.example" */
        }
        bad += ok ? (rc != 0 || strcmp(out, want) != 0) : rc != -1;
        in[0] = (char)c;
        in[2] = 'x';
        rc = rules_host_norm(in, 13, out, sizeof(out));
        bad += (ok && c != '.') ? rc != 0 : rc != -1; /* a leading '.' is an empty label */
    }
    CHECK_EQ(bad, 0, "host bytes");
}

TEST(rules_host_table)
{
    char out[300];
    char *pats[] = {"meet.example.com", "dialin.example.com", "*.lync.example.com", "127.0.0.1"};
    char *all[] = {"*"};
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(hosts); i++) {
        int rc = rules_host_norm(hosts[i].in, strlen(hosts[i].in), out, sizeof(out));
        if (hosts[i].out == NULL) {
            CHECK_EQ(rc, -1, hosts[i].in);
        } else {
            CHECK_EQ(rc, 0, hosts[i].in);
            if (rc == 0)
                CHECK_STR(out, hosts[i].out, hosts[i].in);
        }
    }
    for (i = 0; i < GH_ARRAY_LEN(matches); i++) {
        CHECK_EQ(rules_host_match(pats, 4, matches[i].name), matches[i].allowed, matches[i].name);
        CHECK_EQ(rules_host_match(all, 1, matches[i].name), 1, "star allows all");
        CHECK_EQ(rules_host_match(pats, 0, matches[i].name), 0, "empty list refuses");
    }
}

#define R(x) GH_REASON_##x
static const struct {
    const char *in;
    const char *out;     /* normalised, when allowed */
    enum gh_reason why;  /* NONE when allowed */
} paths[] = {
    {"/", "/", R(NONE)},
    {"/abs/x.png", "/abs/x.png", R(NONE)},
    {"/meet/user/ABC123", "/meet/user/ABC123", R(NONE)},
    {"/a/b/", "/a/b/", R(NONE)},
    {"/a/./b", "/a/b", R(NONE)},
    {"/a/b/../c", "/a/c", R(NONE)},
    {"/a/b/..", "/a/", R(NONE)},
    {"/a/b/.", "/a/b/", R(NONE)},
    {"/a/..", "/", R(NONE)},
    {"/./", "/", R(NONE)},
    {"/a//b", "/a/b", R(NONE)},
    {"//a", "/a", R(NONE)},
    {"/a/b//", "/a/b/", R(NONE)},
    {"/%61%62%63", "/abc", R(NONE)},
    {"/%7Euser", "/~user", R(NONE)},
    {"/%2d%2E%5f", "/-._", R(NONE)},
    {"/a%20b", "/a%20b", R(NONE)},
    {"/a%2bb", "/a%2Bb", R(NONE)},
    {"/a%3fb", "/a%3Fb", R(NONE)},
    {"/caf%C3%A9", "/caf%C3%A9", R(NONE)},
    {"/caf%c3%a9", "/caf%C3%A9", R(NONE)},
    {"/%E2%82%AC", "/%E2%82%AC", R(NONE)},
    {"/%F0%9F%98%80", "/%F0%9F%98%80", R(NONE)},
    {"/%EF%BC%8E%EF%BC%8E/x", "/%EF%BC%8E%EF%BC%8E/x", R(NONE)},
    {"/a;jsessionid=1/b", "/a;jsessionid=1/b", R(NONE)},
    {"/a/b;p=1", "/a/b;p=1", R(NONE)},
    {"/api/v1/samlconsumer/6f1c", "/api/v1/samlconsumer/6f1c", R(NONE)},
    {"/...", "/...", R(NONE)},
    {"/a/.../b", "/a/.../b", R(NONE)},
    {"/.hidden", "/.hidden", R(NONE)},
    {"/a..b", "/a..b", R(NONE)},
    {"/%25", "/%25", R(NONE)},
    {"/%25zz", "/%25zz", R(NONE)},
    {"/a/b/c/../../d", "/a/d", R(NONE)},
    /* traversal in all its encodings */
    {"/..", NULL, R(PATH_TRAVERSAL)},
    {"/../etc/passwd", NULL, R(PATH_TRAVERSAL)},
    {"/a/../../etc", NULL, R(PATH_TRAVERSAL)},
    {"/%2e%2e/etc", NULL, R(PATH_TRAVERSAL)},
    {"/%2E%2E/etc", NULL, R(PATH_TRAVERSAL)},
    {"/%2e./etc", NULL, R(PATH_TRAVERSAL)},
    {"/.%2e/etc", NULL, R(PATH_TRAVERSAL)},
    {"/abs/%2e%2e/%2e%2e/x", NULL, R(PATH_TRAVERSAL)},
    {"/..;/etc", NULL, R(PATH_TRAVERSAL)},
    {"/abs/..;/..;/admin", NULL, R(PATH_TRAVERSAL)},
    {"/abs/.;x/b", NULL, R(PATH_TRAVERSAL)},
    {"/%2e%2e;/x", NULL, R(PATH_TRAVERSAL)},
    {"/a/b/../../../x", NULL, R(PATH_TRAVERSAL)},
    {"//../x", NULL, R(PATH_TRAVERSAL)},
    {"/%2e%2e%2fetc", NULL, R(PATH_ENCODED_SLASH)},
    {"/..%2f..%2fetc", NULL, R(PATH_ENCODED_SLASH)},
    {"/a%2Fb", NULL, R(PATH_ENCODED_SLASH)},
    {"/a%2fb", NULL, R(PATH_ENCODED_SLASH)},
    {"/..%5c..%5cetc", NULL, R(PATH_BACKSLASH)},
    {"/a%5Cb", NULL, R(PATH_BACKSLASH)},
    {"/a\\b", NULL, R(PATH_BACKSLASH)},
    {"/..\\..\\etc", NULL, R(PATH_BACKSLASH)},
    /* double encoding */
    {"/%252e%252e/etc", NULL, R(PATH_DOUBLE_ENCODING)},
    {"/%252f", NULL, R(PATH_DOUBLE_ENCODING)},
    {"/%255c", NULL, R(PATH_DOUBLE_ENCODING)},
    {"/%2500", NULL, R(PATH_DOUBLE_ENCODING)},
    {"/%25%32%65", NULL, R(PATH_DOUBLE_ENCODING)},
    /* NUL */
    {"/a%00b", NULL, R(PATH_NUL)},
    {"/a.php%00.png", NULL, R(PATH_NUL)},
    /* bad escapes */
    {"/a%", NULL, R(PATH_BAD_ESCAPE)},
    {"/a%2", NULL, R(PATH_BAD_ESCAPE)},
    {"/a%zz", NULL, R(PATH_BAD_ESCAPE)},
    {"/a%g0", NULL, R(PATH_BAD_ESCAPE)},
    {"/a%u002e%u002e/x", NULL, R(PATH_BAD_ESCAPE)},
    {"/%%32%65", NULL, R(PATH_BAD_ESCAPE)},
    {"/a% 20", NULL, R(PATH_BAD_ESCAPE)},
    /* UTF-8: overlong, invalid, cut short */
    {"/%C0%AE%C0%AE/etc", NULL, R(PATH_BAD_UTF8)},
    {"/%C0%AF", NULL, R(PATH_BAD_UTF8)},
    {"/%C1%9C", NULL, R(PATH_BAD_UTF8)},
    {"/%E0%80%AE", NULL, R(PATH_BAD_UTF8)},
    {"/%F0%80%80%AF", NULL, R(PATH_BAD_UTF8)},
    {"/%ED%A0%80", NULL, R(PATH_BAD_UTF8)},
    {"/%F4%90%80%80", NULL, R(PATH_BAD_UTF8)},
    {"/%F5%80%80%80", NULL, R(PATH_BAD_UTF8)},
    {"/%FF", NULL, R(PATH_BAD_UTF8)},
    {"/%80", NULL, R(PATH_BAD_UTF8)},
    {"/%C3", NULL, R(PATH_BAD_UTF8)},
    {"/%C3x", NULL, R(PATH_BAD_UTF8)},
    {"/%E2%82", NULL, R(PATH_BAD_UTF8)},
    {"/%C3%28", NULL, R(PATH_BAD_UTF8)},
    {"/%E2%28%A1", NULL, R(PATH_BAD_UTF8)},
    {"/caf\xc3\xa9", NULL, R(PATH_BAD_UTF8)},
    /* found by fuzz_path: the normaliser refuses control bytes on its own */
    {"//./" "\x7f" "/a", NULL, R(CTL_CHAR)},
    {"/a b", NULL, R(CTL_CHAR)},
    {"/a\tb", NULL, R(CTL_CHAR)},
    /* not a path */
    {"a/b", NULL, R(BAD_TARGET)},
    {"", NULL, R(BAD_TARGET)},
};

TEST(rules_path_table)
{
    static const struct rules_path_opts def = {1, 0};
    char out[512];
    size_t i, n;

    for (i = 0; i < GH_ARRAY_LEN(paths); i++) {
        enum gh_reason r = rules_path_norm(paths[i].in, strlen(paths[i].in), &def, out,
                                           sizeof(out), &n);
        CHECK_STR(gh_reason_name(r), gh_reason_name(paths[i].why), paths[i].in);
        if (r == GH_REASON_NONE && paths[i].out != NULL) {
            CHECK_STR(out, paths[i].out, paths[i].in);
            CHECK_EQ(n, strlen(paths[i].out), paths[i].in);
        }
    }
}

TEST(rules_path_options_and_idempotence)
{
    static const struct rules_path_opts keep = {0, 1};
    static const struct rules_path_opts def = {1, 0};
    char out[512], again[512];
    size_t n, m, i;

    CHECK_EQ(rules_path_norm("/a//b", 5, &keep, out, sizeof(out), &n), GH_REASON_NONE, "keep //");
    CHECK_STR(out, "/a//b", "merge off keeps empty segments");
    CHECK_EQ(rules_path_norm("/a%2fb", 6, &keep, out, sizeof(out), &n), GH_REASON_NONE, "%2f");
    CHECK_STR(out, "/a%2Fb", "allowed encoded slash stays encoded (not a separator)");
    CHECK_EQ(rules_path_norm("/a%5cb", 6, &keep, out, sizeof(out), &n), GH_REASON_PATH_BACKSLASH,
             "encoded backslash is refused even when encoded slashes are allowed");
    /* normalising a normalised path changes nothing */
    for (i = 0; i < GH_ARRAY_LEN(paths); i++) {
        if (paths[i].why != GH_REASON_NONE)
            continue;
        rules_path_norm(paths[i].in, strlen(paths[i].in), &def, out, sizeof(out), &n);
        CHECK_EQ(rules_path_norm(out, n, &def, again, sizeof(again), &m), GH_REASON_NONE, out);
        CHECK_STR(again, out, paths[i].in);
    }
    CHECK_EQ(rules_path_norm("/abc", 4, &def, out, 4, &n), GH_REASON_BAD_TARGET, "small out");
}

static const struct {
    const char *pat, *path;
    int match;
    int nocase; /* the result of rules_glob_match_nocase */
} globs[] = {
    {"/*", "/", 1, 1},
    {"/*", "/anything/at/all", 1, 1},
    {"/abs/*", "/abs/", 1, 1},
    {"/abs/*", "/abs/x/y.png", 1, 1},
    {"/abs/*", "/abs", 0, 0},
    {"/abs/*", "/absx/y", 0, 0},
    {"/abs/*", "/ABS/x", 0, 1},
    {"/abs/*", "/x/abs/y", 0, 0},
    {"/meet/*", "/meet/user/1", 1, 1},
    {"/api/v1/samlconsumer/*", "/api/v1/samlconsumer/uuid", 1, 1},
    {"/api/v1/samlconsumer/*", "/api/v1/samlconsumerx", 0, 0},
    {"/healthcheck.html", "/healthcheck.html", 1, 1},
    {"/healthcheck.html", "/healthcheck.htm", 0, 0},
    {"/healthcheck.html", "/healthcheck.html/x", 0, 0},
    {"/*.css", "/a/b.css", 1, 1},
    {"/*.css", "/a/b.css.js", 0, 0},
    {"/a*b*c", "/axxbyyc", 1, 1},
    {"/a*b*c", "/axxbyy", 0, 0},
    {"/a**", "/a", 1, 1},
    {"", "/", 0, 0},
    {"/autodiscover/*", "/Autodiscover/Autodiscover.xml", 0, 1},
    {"/Autodiscover/*", "/autodiscover/x", 0, 1},
    {"/abs/*", "/ABSX/y", 0, 0},
    {"/a%2f*", "/a%2F/x", 0, 1},
    {"/[*", "/{x", 0, 0}, /* only letters fold: '[' is not '{' */
    {"/@*", "/`", 0, 0},
};

TEST(rules_glob_table)
{
    size_t i;
    char big[5000];

    for (i = 0; i < GH_ARRAY_LEN(globs); i++) {
        CHECK_EQ(rules_glob_match(globs[i].pat, globs[i].path, strlen(globs[i].path)),
                 globs[i].match, globs[i].pat);
        CHECK_EQ(rules_glob_match_nocase(globs[i].pat, globs[i].path, strlen(globs[i].path)),
                 globs[i].nocase, globs[i].pat);
    }
    /* many stars against a long near-miss stays linear, not exponential */
    memset(big, 'a', sizeof(big));
    big[0] = '/';
    CHECK_EQ(rules_glob_match("/*a*a*a*a*a*a*a*a*b", big, sizeof(big)), 0, "no blow-up");
}
