/* The decoder of check texts (proxy/health_udp.c): what the parser accepted
 * (common/conf_parse.c check_text) becomes the bytes sent and expected. */
#include "../../../proxy/proxy_int.h"

#include <string.h>

#include "../unit.h"

TEST(proxy_check_text_table)
{
    static const struct {
        const char *text;
        const char *want; /* decoded bytes */
        size_t wlen;
    } rows[] = {
        {"PING", "PING", 4},
        {"PING\\r\\n", "PING\r\n", 6},
        {"a\\tb\\\\c", "a\tb\\c", 5},
        {"\\x00\\x01\\x21\\x12\\xa4\\x42", "\x00\x01\x21\x12\xa4\x42", 6},
        {"\\xFFz", "\xff" "z", 2},
        {"\\x4", "\\x4", 3}, /* never accepted by the parser: copied as written */
        {"end\\", "end\\", 4},
    };
    unsigned char out[64];
    size_t i, n;

    for (i = 0; i < GH_ARRAY_LEN(rows); i++) {
        n = proxy__check_text(rows[i].text, out, sizeof(out));
        CHECK_EQ(n, rows[i].wlen, rows[i].text);
        CHECK(n == rows[i].wlen && memcmp(out, rows[i].want, n) == 0);
    }
    /* the output is bounded by cap */
    n = proxy__check_text("abcdef", out, 3);
    CHECK_EQ(n, 3, "cap");
}
