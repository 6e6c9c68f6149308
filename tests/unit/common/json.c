/* The one JSON string writer: a table of inputs, hostile ones among them
 * (bytes that are not UTF-8, overlong forms, surrogates, JavaScript line
 * ends, NUL), each with the exact output; every output parsed back with
 * jansson; bounded fields cut only at a character boundary and marked. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../../../common/common.h"
#include "../unit.h"

static const struct {
    const char *in;
    size_t len;
    const char *out;
    int same; /* well-formed UTF-8: jansson reads back exactly in */
} cases[] = {
    {"plain", 5, "\"plain\"", 1},
    {"", 0, "\"\"", 1},
    {"a\"b\\c", 5, "\"a\\\"b\\\\c\"", 1},
    {"tab\there\nnl\r", 12, "\"tab\\u0009here\\u000anl\\u000d\"", 1},
    {"del\x7f", 4, "\"del\\u007f\"", 1},
    {"nul\0x", 5, "\"nul\\u0000x\"", 1},
    {"caf\xc3\xa9", 5, "\"caf\xc3\xa9\"", 1},                 /* U+00E9 kept */
    {"\xe2\x82\xac", 3, "\"\xe2\x82\xac\"", 1},                 /* U+20AC */
    {"\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\"", 1},         /* U+1F600 */
    {"\xe2\x80\xa8|\xe2\x80\xa9", 7, "\"\\u2028|\\u2029\"", 1}, /* JS line ends */
    {"\x80", 1, "\"\\u0080\"", 0},                             /* lone continuation */
    {"\xff\xfe", 2, "\"\\u00ff\\u00fe\"", 0},
    {"\xc0\x80", 2, "\"\\u00c0\\u0080\"", 0},                  /* overlong NUL */
    {"\xe0\x80\xaf", 3, "\"\\u00e0\\u0080\\u00af\"", 0},       /* overlong '/' */
    {"\xed\xa0\x80", 3, "\"\\u00ed\\u00a0\\u0080\"", 0},       /* surrogate D800 */
    {"\xf4\x90\x80\x80", 4, "\"\\u00f4\\u0090\\u0080\\u0080\"", 0}, /* > U+10FFFF */
    {"ab\xc3", 3, "\"ab\\u00c3\"", 0},                         /* cut sequence at the end */
    {"\xc3(", 2, "\"\\u00c3(\"", 0},
};

TEST(common_json_writer_one_set_of_rules)
{
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gh_sbuf o = {NULL, 0, 0}, arr = {NULL, 0, 0};
        json_error_t e;
        json_t *j;
        char ctx[40];
        snprintf(ctx, sizeof(ctx), "case %zu", i);
        gh_json_strn(&o, cases[i].in, cases[i].len);
        CHECK_STR(o.p, cases[i].out, ctx);
        gh_sbuf_printf(&arr, "[%s]", o.p);
        j = json_loads(arr.p, JSON_ALLOW_NUL, &e);
        CHECK_EQ(j != NULL, 1, ctx); /* always valid JSON */
        if (j != NULL && cases[i].same) {
            json_t *s = json_array_get(j, 0);
            CHECK_EQ(json_string_length(s), cases[i].len, ctx);
            CHECK_EQ(memcmp(json_string_value(s), cases[i].in, cases[i].len), 0, ctx);
        }
        json_decref(j);
        free(o.p);
        free(arr.p);
    }
    {
        struct gh_sbuf o = {NULL, 0, 0};
        gh_json_str(&o, NULL);
        CHECK_STR(o.p, "\"\"", "NULL");
        free(o.p);
    }
}

TEST(common_json_put_cuts_visibly_at_a_character)
{
    char buf[64];
    size_t n;

    n = gh_json_put(buf, sizeof(buf), "short", 5, 100);
    CHECK_STR(buf, "short", "whole");
    CHECK_EQ(n, (size_t)5, "length");
    /* max 4 of "caf\xc3\xa9!": the 2-byte character is not split */
    gh_json_put(buf, sizeof(buf), "caf\xc3\xa9!", 6, 4);
    CHECK_STR(buf, "caf" GH_JSON_CUT, "cut before a character");
    gh_json_put(buf, sizeof(buf), "caf\xc3\xa9!", 6, 5);
    CHECK_STR(buf, "caf\xc3\xa9" GH_JSON_CUT, "cut after it");
    /* the buffer bounds it too: never a split escape */
    gh_json_put(buf, 16, "\"\"\"\"\"\"\"\"\"\"", 10, 100);
    CHECK_STR(buf, "\\\"\\\"\\\"" GH_JSON_CUT, "buffer-bound");
    gh_json_put(buf, sizeof(buf), NULL, 3, 10);
    CHECK_STR(buf, "", "NULL");
    gh_json_put(buf, sizeof(buf), "abc", 3, 0);
    CHECK_STR(buf, GH_JSON_CUT, "max 0");
}
