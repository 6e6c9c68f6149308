/* Number, duration and size parsers with hostile inputs. */
#include "../../../common/common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../unit.h"

static int form_seen(const char *k, const char *v, void *ctx)
{
    gh_sbuf_printf(ctx, "[%s=%s]", k, v);
    return 0;
}

TEST(str_parsers)
{
    long long v;
    long l;
    char host[64], buf[64];
    uint16_t port;

    CHECK(gh_parse_duration_ms("10s", &v) == 0 && v == 10000);
    CHECK(gh_parse_duration_ms("250ms", &v) == 0 && v == 250);
    CHECK(gh_parse_duration_ms("20m", &v) == 0 && v == 1200000);
    CHECK(gh_parse_duration_ms("5", &v) == 0 && v == 5000);
    CHECK(gh_parse_duration_ms("-5s", &v) == -1);
    CHECK(gh_parse_duration_ms("s", &v) == -1);
    CHECK(gh_parse_duration_ms("5 s", &v) == -1);
    CHECK(gh_parse_duration_ms("9999999999999999999s", &v) == -1);
    CHECK(gh_parse_size("64k", &v) == 0 && v == 65536);
    CHECK(gh_parse_size("1M", &v) == 0 && v == 1048576);
    CHECK(gh_parse_size("1x", &v) == -1);
    CHECK(gh_parse_long("42", 0, 100, &l) == 0 && l == 42);
    CHECK(gh_parse_long("101", 0, 100, &l) == -1);
    CHECK(gh_parse_long(" 1", 0, 100, &l) == -1);
    CHECK(gh_parse_long("1a", 0, 100, &l) == -1);
    CHECK(gh_parse_long("", 0, 100, &l) == -1);
    CHECK(gh_split_hostport("127.0.0.1:8443", host, sizeof(host), &port) == 0 && port == 8443 &&
          strcmp(host, "127.0.0.1") == 0);
    CHECK(gh_split_hostport("[::1]:443", host, sizeof(host), &port) == 0 &&
          strcmp(host, "::1") == 0);
    CHECK(gh_split_hostport("[::1]443", host, sizeof(host), &port) == -1);
    CHECK(gh_split_hostport("a:0", host, sizeof(host), &port) == -1);
    CHECK(gh_strlcpy(buf, "0123456789", 4) == -1 && strcmp(buf, "012") == 0);
    {
        /* the entry our proxy appended is the last; the rest is the client's word */
        static const struct { const char *in, *want; } xff[] = {
            {"203.0.113.9", "203.0.113.9"}, {"1.1.1.1, 203.0.113.9", "203.0.113.9"},
            {"spoofed,  \t10.0.0.1", "10.0.0.1"}, {NULL, "-"}, {"", "-"}, {"a,", "-"},
            {"1.2.3.4,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "-"},
        };
        size_t i;
        for (i = 0; i < GH_ARRAY_LEN(xff); i++) {
            gh_xff_last(xff[i].in, buf, sizeof(buf));
            CHECK_STR(buf, xff[i].want, xff[i].in ? xff[i].in : "(none)");
        }
    }
    {
        /* each field decoded, in order; a NUL stops the walk */
        struct gh_sbuf seen = {NULL, 0, 0};
        const char *body = "a=1&b%2Dc=x+y%0Az&&d=&e";
        CHECK(gh_form_each(body, strlen(body), form_seen, &seen) == 0);
        CHECK_STR(seen.p, "[a=1][b-c=x y\nz][d=][e=]", "form_each");
        free(seen.p);
        CHECK(gh_form_each("a=%00", 5, form_seen, &seen) == -1);
    }
}

TEST(fs_write_file)
{
    char dir[] = "/tmp/gh-unit-XXXXXX", path[200], tmp[240], buf[16] = "";
    FILE *f;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/a.conf", dir);
    CHECK(gh_write_file(path, "one", 3, 0600, 0) == 0);
    CHECK(gh_write_file(path, "two", 3, 0600, 0) == -1 && errno == EEXIST);
    /* a link planted where the temp file goes is not followed */
    snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid());
    CHECK(symlink("/nonexistent-gh-target", tmp) == 0);
    CHECK(gh_write_file(path, "three", 5, 0600, 1) == 0);
    f = fopen(path, "r");
    CHECK(f != NULL && fread(buf, 1, sizeof(buf) - 1, f) == 5);
    if (f)
        fclose(f);
    CHECK_STR(buf, "three", "replaced");
    CHECK(access(tmp, F_OK) == -1 && access("/nonexistent-gh-target", F_OK) == -1);
    unlink(path);
    rmdir(dir);
}

/* gh_unhex reads values that come from clients (the SAML login's binding
 * cookie) and from files: exactly 2n lower-case digits, one spelling per
 * value, nothing after them. */
static const struct {
    const char *in;
    size_t n;
    int rc;
} unhex_rows[] = {
    {"00ff10", 3, 0},
    {"00FF10", 3, -1},   /* upper case: a second spelling */
    {"00ff1", 3, -1},    /* short */
    {"00ff100", 3, -1},  /* one digit more */
    {"00ff10 ", 3, -1},  /* trailing space */
    {"0xff10", 3, -1},
    {"", 1, -1},
    {"", 0, 0},
    {"g0ff10", 3, -1},
    {"00ff\n0", 3, -1},
};

TEST(str_hex_table)
{
    unsigned char b[8];
    char out[17];
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(unhex_rows); i++)
        CHECK_EQ(gh_unhex(unhex_rows[i].in, b, unhex_rows[i].n), unhex_rows[i].rc,
                 unhex_rows[i].in);
    CHECK(gh_unhex("00ff10", b, 3) == 0 && b[0] == 0 && b[1] == 0xff && b[2] == 0x10);
    gh_hex(b, 3, out);
    CHECK_STR(out, "00ff10", "round trip");
    b[0] = 0xab;
    gh_hex(b, 1, out);
    CHECK_STR(out, "ab", "lower case");
}

/* The one rule for user, token and room names. */
TEST(str_name_ok_table)
{
    static const struct {
        const char *s;
        size_t max;
        int ok;
    } rows[] = {
        {"board", 64, 1},     {"a.b-c_d9", 64, 1}, {"", 64, 0},        {"Board", 64, 0},
        {"a b", 64, 0},       {"a/b", 64, 0},      {"caf\xc3\xa9", 64, 0}, {"abc", 2, 0},
        {"ab", 2, 1},         {"a\n", 64, 0},
    };
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(rows); i++)
        CHECK_EQ(gh_name_ok(rows[i].s, rows[i].max), rows[i].ok, rows[i].s);
}
