/* Table-driven tests of the chunked decoder, whole and byte by byte. */
#include "../../../proxy/http1.h"

#include <string.h>

#include "../../../common/common.h"
#include "../unit.h"

static const struct http1_limits lim = {8192, 1024, 100, 16};

struct crow {
    const char *name;
    const char *raw;
    size_t len;
    int ok;              /* 1: decodes to data, 0: refused, 2: incomplete */
    const char *data;
};

#define L(s) s, sizeof(s) - 1

static const struct crow crows[] = {
    {"one chunk", L("5\r\nhello\r\n0\r\n\r\n"), 1, "hello"},
    {"two chunks", L("2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"), 1, "hello"},
    {"hex upper", L("A\r\n0123456789\r\n0\r\n\r\n"), 1, "0123456789"},
    {"extension", L("5;name=val\r\nhello\r\n0\r\n\r\n"), 1, "hello"},
    {"trailer", L("5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"), 1, "hello"},
    {"leading zeros", L("005\r\nhello\r\n0\r\n\r\n"), 1, "hello"},
    {"empty body", L("0\r\n\r\n"), 1, ""},
    {"incomplete", L("5\r\nhel"), 2, NULL},
    {"no final crlf", L("5\r\nhello\r\n0\r\n"), 2, NULL},
    {"negative size", L("-5\r\nhello\r\n0\r\n\r\n"), 0, NULL},
    {"plus size", L("+5\r\nhello\r\n0\r\n\r\n"), 0, NULL},
    {"0x prefix", L("0x5\r\nhello\r\n0\r\n\r\n"), 0, NULL},
    {"space before size", L(" 5\r\nhello\r\n0\r\n\r\n"), 0, NULL},
    {"space after size", L("5 \r\nhello\r\n0\r\n\r\n"), 0, NULL},
    {"ws before ext", L("5 ;a\r\nhello\r\n0\r\n\r\n"), 0, NULL},
    {"bare lf after size", L("5\nhello\r\n0\r\n\r\n"), 0, NULL},
    {"bare lf after data", L("5\r\nhello\n0\r\n\r\n"), 0, NULL},
    {"data longer than size", L("3\r\nhello\r\n0\r\n\r\n"), 0, NULL},
    {"size overflow", L("fffffffffffffffff\r\n"), 0, NULL},
    {"16 digits", L("0000000000000005\r\nhello\r\n0\r\n\r\n"), 0, NULL},
    {"extension too long", L("5;aaaaaaaaaaaaaaaaaaaaaaaaa\r\nhello\r\n0\r\n\r\n"), 0, NULL},
    {"ctl in extension", L("5;a\x01\r\nhello\r\n0\r\n\r\n"), 0, NULL},
    {"empty size", L("\r\nhello\r\n0\r\n\r\n"), 0, NULL},
    {"trailer obs-fold", L("0\r\nX: 1\r\n  y\r\n\r\n"), 0, NULL},
    {"trailer bare lf", L("0\r\nX: 1\n\r\n"), 0, NULL},
};

static int run(const struct crow *r, size_t step, char *out, size_t *olen)
{
    struct http1_chunk ck;
    size_t off = 0, fed = 0;
    enum gh_reason why;

    http1_chunk_init(&ck);
    *olen = 0;
    while (fed < r->len) {
        size_t avail = fed + step > r->len ? r->len : fed + step;
        while (off < avail) {
            const char *d;
            size_t used, dlen;
            int done, rc;
            rc = http1_chunk_decode(&ck, r->raw + off, avail - off, &lim, &used, &d, &dlen, &done,
                                    &why);
            if (rc == GH_ERR)
                return 0;
            if (dlen > 0)
                memcpy(out + *olen, d, dlen);
            *olen += dlen;
            off += used;
            if (done)
                return off == r->len ? 1 : 0;
            if (rc == GH_AGAIN)
                break;
        }
        fed = avail;
    }
    return 2;
}

TEST(http1_chunk_table)
{
    char out[256];
    size_t i, olen;

    for (i = 0; i < GH_ARRAY_LEN(crows); i++) {
        int got = run(&crows[i], crows[i].len, out, &olen);
        CHECK_EQ(got, crows[i].ok, crows[i].name);
        if (got == 1 && crows[i].ok == 1) {
            out[olen] = '\0';
            CHECK_STR(out, crows[i].data, crows[i].name);
        }
    }
}

TEST(http1_chunk_bytewise)
{
    char out[256];
    size_t i, olen;

    for (i = 0; i < GH_ARRAY_LEN(crows); i++) {
        int got = run(&crows[i], 1, out, &olen);
        CHECK_EQ(got, crows[i].ok, crows[i].name);
    }
}
