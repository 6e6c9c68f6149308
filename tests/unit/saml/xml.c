/* Table-driven tests of what the SAML consumer reads before any signature
 * is checked: the XML parser's refusals (DTDs and entities in every form,
 * comments, duplicate IDs, depth), the xs:dateTime, base64 and RelayState
 * readers, and the text reader that a comment cannot cut short. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../common/common.h"
#include "../../../common/kv.h"
#include "../../../saml/saml_int.h"
#include "../../../saml/state.h"
#include "../unit.h"

#define P "xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\""
#define A "xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\""

static const struct {
    const char *name;
    const char *xml;
    size_t len; /* 0: strlen */
    enum saml_reason parse, walk; /* walk is checked when parse is OK */
    int assertions;
} docs[] = {
    {"plain", "<samlp:Response " P " ID=\"_1\"/>", 0, SAML_OK, SAML_OK, 0},
    {"one assertion", "<samlp:Response " P " " A " ID=\"_1\"><saml:Assertion ID=\"_2\"/>"
                      "</samlp:Response>", 0, SAML_OK, SAML_OK, 1},
    {"nested assertions counted", "<r " A "><saml:Assertion ID=\"_2\"><x><saml:Assertion "
                                  "ID=\"_3\"/></x></saml:Assertion></r>", 0, SAML_OK, SAML_OK, 2},
    {"encrypted assertion counted", "<r " A "><saml:EncryptedAssertion/><saml:Assertion "
                                    "ID=\"_3\"/></r>", 0, SAML_OK, SAML_OK, 2},
    {"same local name, other namespace", "<r><Assertion ID=\"_2\"/></r>", 0, SAML_OK, SAML_OK,
     0},
    {"doctype", "<!DOCTYPE r><r/>", 0, SAML_XML_DOCTYPE, SAML_OK, 0},
    {"doctype with internal subset", "<!DOCTYPE r [<!ELEMENT r ANY>]><r/>", 0,
     SAML_XML_DOCTYPE, SAML_OK, 0},
    {"billion laughs",
     "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\">"
     "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;\">"
     "<!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]><l>&d;&d;&d;&d;</l>",
     0, SAML_XML_DOCTYPE, SAML_OK, 0},
    {"external entity", "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>", 0,
     SAML_XML_DOCTYPE, SAML_OK, 0},
    {"external dtd", "<!DOCTYPE r SYSTEM \"http://127.0.0.1:1/evil.dtd\"><r/>", 0,
     SAML_XML_DOCTYPE, SAML_OK, 0},
    {"parameter entity", "<!DOCTYPE r [<!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p;]><r/>", 0,
     SAML_XML_DOCTYPE, SAML_OK, 0},
    {"utf-16 doctype",
     "\xff\xfe<\0!\0D\0O\0C\0T\0Y\0P\0E\0 \0r\0>\0<\0r\0/\0>\0", 34, SAML_XML_DOCTYPE, SAML_OK,
     0},
    {"undefined entity", "<r>&x;</r>", 0, SAML_XML_MALFORMED, SAML_OK, 0},
    {"predefined entities fine", "<r>&lt;&amp;&gt;</r>", 0, SAML_OK, SAML_OK, 0},
    {"unclosed", "<r>", 0, SAML_XML_MALFORMED, SAML_OK, 0},
    {"empty", "", 0, SAML_XML_MALFORMED, SAML_OK, 0},
    {"two roots", "<a/><b/>", 0, SAML_XML_MALFORMED, SAML_OK, 0},
    {"nul inside", "<r>a\0b</r>", 10, SAML_XML_MALFORMED, SAML_OK, 0},
    {"not xml", "SAMLResponse", 0, SAML_XML_MALFORMED, SAML_OK, 0},
    {"comment", "<r><!-- hi --></r>", 0, SAML_OK, SAML_XML_COMMENT, 0},
    {"comment in text", "<r " A "><saml:NameID>al<!---->ice</saml:NameID></r>", 0, SAML_OK,
     SAML_XML_COMMENT, 0},
    {"processing instruction", "<r><?evil x?></r>", 0, SAML_OK, SAML_XML_COMMENT, 0},
    {"duplicate ID", "<r ID=\"_1\"><a ID=\"_1\"/></r>", 0, SAML_OK, SAML_DUPLICATE_ID, 0},
    {"ID against xml:id", "<r ID=\"_1\"><a xml:id=\"_1\"/></r>", 0, SAML_OK, SAML_DUPLICATE_ID,
     0},
    {"ID against Id", "<r ID=\"_1\"><a Id=\"_1\"/></r>", 0, SAML_OK, SAML_DUPLICATE_ID, 0},
    {"empty ID", "<r ID=\"\"/>", 0, SAML_OK, SAML_DUPLICATE_ID, 0},
    {"cdata is text", "<r><![CDATA[x]]></r>", 0, SAML_OK, SAML_OK, 0},
    {"xinclude not processed", "<r xmlns:xi=\"http://www.w3.org/2001/XInclude\">"
                               "<xi:include href=\"file:///etc/passwd\"/></r>", 0, SAML_OK,
     SAML_OK, 0},
};

TEST(saml_xml_table)
{
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(docs); i++) {
        enum saml_reason why = SAML_INTERNAL;
        size_t len = docs[i].len ? docs[i].len : strlen(docs[i].xml);
        xmlDocPtr d = saml__parse(docs[i].xml, len, &why);
        CHECK_EQ(why, docs[i].parse, docs[i].name);
        CHECK((d != NULL) == (docs[i].parse == SAML_OK));
        if (d != NULL) {
            int n = 0;
            enum saml_reason w = saml__walk(d, xmlDocGetRootElement(d), SAML_NS_A, "Assertion",
                                            SAML_NS_A, "EncryptedAssertion", &n);
            CHECK_EQ(w, docs[i].walk, docs[i].name);
            if (w == SAML_OK)
                CHECK_EQ(n, docs[i].assertions, docs[i].name);
            xmlFreeDoc(d);
        }
    }
}

TEST(saml_depth_and_text)
{
    static char deep[64 * 7 + 64];
    char out[64];
    size_t i, n = 0;
    enum saml_reason why;
    xmlDocPtr d;

    for (i = 0; i < 60; i++)
        n += (size_t)snprintf(deep + n, sizeof(deep) - n, "<a>");
    for (i = 0; i < 60; i++)
        n += (size_t)snprintf(deep + n, sizeof(deep) - n, "</a>");
    d = saml__parse(deep, n, &why);
    CHECK(d != NULL);
    if (d != NULL) {
        CHECK_EQ(saml__walk(d, xmlDocGetRootElement(d), SAML_NS_A, "Assertion", NULL, NULL,
                            NULL),
                 SAML_XML_MALFORMED, "depth 60 refused");
        xmlFreeDoc(d);
    }
    /* The whole text, trimmed; anything but text makes it unreadable. */
    d = saml__parse("<n>  alice\n</n>", 15, &why);
    CHECK(d != NULL && saml__text(xmlDocGetRootElement(d), out, sizeof(out)) == 0 &&
          strcmp(out, "alice") == 0);
    xmlFreeDoc(d);
    d = saml__parse("<n>al<b/>ice</n>", 16, &why);
    CHECK(d != NULL && saml__text(xmlDocGetRootElement(d), out, sizeof(out)) == -1);
    xmlFreeDoc(d);
    d = saml__parse("<n>al<!---->ice</n>", 19, &why);
    CHECK(d != NULL && saml__text(xmlDocGetRootElement(d), out, sizeof(out)) == -1);
    xmlFreeDoc(d);
    d = saml__parse("<n>alice<![CDATA[.evil]]></n>", 29, &why);
    CHECK(d != NULL && saml__text(xmlDocGetRootElement(d), out, sizeof(out)) == 0 &&
          strcmp(out, "alice.evil") == 0);
    xmlFreeDoc(d);
    d = saml__parse("<n>0123456789012345678901234567890123456789012345678901234567890123456789</n>",
                    77, &why);
    CHECK(d != NULL && saml__text(xmlDocGetRootElement(d), out, sizeof(out)) == -1);
    xmlFreeDoc(d);
}

static const struct {
    const char *in;
    long long want; /* -1: refused */
} times[] = {
    {"1970-01-01T00:00:00Z", 0},
    {"2026-11-22T01:02:03Z", 1795309323},
    {"2026-11-22T01:02:03.123456Z", 1795309323},
    {"2026-11-22T01:02:03", -1},
    {"2026-11-22T01:02:03+00:00", -1},
    {"2026-11-22T01:02:03.Z", -1},
    {"2026-13-22T01:02:03Z", -1},
    {"2026-11-22 01:02:03Z", -1},
    {"2026-11-22T24:02:03Z", -1},
    {"1969-12-31T23:59:59Z", -1},
    {"", -1},
    {"2026-11-22T01:02:03Zjunk", -1},
};

static const struct {
    const char *in;
    long want; /* decoded length, -1 refused */
} b64s[] = {
    {"YWxpY2U=", 5},
    {"YWxp\r\nY2U=", 5},
    {"YWxpY2U", 5},
    {"YWxpY2U==", -1},
    {"YWxpY2U=YQ==", -1},
    {"YWxp*2U=", -1},
    {"", 0},
    {"Y", -1},
};

static const struct {
    const char *in;
    int ok;
} relays[] = {
    {"/", 1},
    {"/room/42?pin=1", 1},
    {"/a//b", 1},
    {"", 0},
    {"//evil.example/", 0},
    {"/\\evil.example", 0},
    {"https://evil.example/", 0},
    {"javascript:alert(1)", 0},
    {"/x\ty", 0},
    {"/x/%2F%2Fevil", 0},
    {"/x/%5cevil", 0},
    {"/\"><script>", 0},
    {"room", 0},
};

TEST(saml_readers_table)
{
    size_t i;
    unsigned char buf[64];

    for (i = 0; i < GH_ARRAY_LEN(times); i++) {
        int64_t t = -2;
        int rc = saml__time(times[i].in, &t);
        CHECK_EQ(rc == 0 ? (long long)t : -1, times[i].want, times[i].in);
    }
    for (i = 0; i < GH_ARRAY_LEN(b64s); i++)
        CHECK_EQ(saml__b64dec(b64s[i].in, strlen(b64s[i].in), buf, sizeof(buf)), b64s[i].want,
                 b64s[i].in);
    CHECK_EQ(saml__b64dec("YWxpY2U=", 8, buf, 4), -1, "output bound");
    for (i = 0; i < GH_ARRAY_LEN(relays); i++)
        CHECK_EQ(saml_relay_ok(relays[i].in), relays[i].ok, relays[i].in);
}

TEST(saml_request_and_replay_state)
{
    struct saml__request rq, got;
    const char *id = "_0123456789abcdef0123456789abcdef01234567";

    gh_kv_rec_init(2048);
    memset(&rq, 0, sizeof(rq));
    gh_strlcpy(rq.uuid, "u", sizeof(rq.uuid));
    CHECK_EQ(saml__request_put(id, &rq), 0, "put");
    CHECK_EQ(saml__request_put("not-an-id", &rq), -1, "malformed id");
    saml__binding_digest("00112233445566778899aabbccddeeff", rq.binding);
    CHECK_EQ(saml__request_put(id, &rq), -1, "put twice");
    /* Peeking, as the checks before consumption do, leaves it in place. */
    CHECK_EQ(saml__request_peek(id, &got), 0, "peek");
    CHECK_EQ(saml__request_peek(id, &got), 0, "peek again");
    CHECK_STR(got.uuid, "u", "peeked IdP");
    CHECK_EQ(saml__request_take(id, &got), 0, "first take");
    CHECK_EQ(saml__request_take(id, &got), -2, "second take: reused");
    CHECK_EQ(saml__request_peek(id, &got), -2, "peek after the take: reused");
    CHECK_EQ(saml__request_take("_ffffffffffffffffffffffffffffffffffffffff", &got), -1,
             "unknown");
    CHECK_EQ(saml__replay_seen("u", "_a1"), 0, "not seen");
    CHECK_EQ(saml__replay_mark("u", "_a1", 4102444800LL), 1, "first mark");
    CHECK_EQ(saml__replay_seen("u", "_a1"), 1, "seen");
    CHECK_EQ(saml__replay_mark("u", "_a1", 4102444800LL), 0, "second mark");
    CHECK_EQ(saml__replay_seen("v", "_a1"), 0, "per IdP");
    gh_kv_rec_fini();
}

/* The stateful half's order: every refusal (another IdP's request, another
 * browser, a replay) comes before the request is consumed, so the genuine
 * response, from the right IdP and browser, still signs in afterwards. */
TEST(saml_commit_refuses_before_it_consumes)
{
    static const char bind[] = "00112233445566778899aabbccddeeff";
    static const char other[] = "ffeeddccbbaa99887766554433221100";
    const char *id = "_00112233445566778899aabbccddeeff00112233";
    struct saml_idp a, b;
    struct saml__request rq;
    struct saml_result r;

    gh_kv_rec_init(2048);
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.uuid = (char *)(uintptr_t)"idp-a";
    b.uuid = (char *)(uintptr_t)"idp-b";
    a.in_group = b.in_group = 1;
    memset(&rq, 0, sizeof(rq));
    gh_strlcpy(rq.uuid, "idp-a", sizeof(rq.uuid));
    gh_strlcpy(rq.relay, "/room", sizeof(rq.relay));
    saml__binding_digest(bind, rq.binding);
    CHECK_EQ(saml__request_put(id, &rq), 0, "put");
    memset(&r, 0, sizeof(r));
    gh_strlcpy(r.in_response_to, id, sizeof(r.in_response_to));
    gh_strlcpy(r.assertion_id, "_assertion-1", sizeof(r.assertion_id));
    r.assertion_expires = 4102444800LL;
    CHECK_EQ(saml_response_commit(&b, bind, &r), SAML_REQUEST_IDP, "another IdP");
    r.reason = SAML_OK;
    CHECK_EQ(saml_response_commit(&a, NULL, &r), SAML_REQUEST_BROWSER, "no binding cookie");
    r.reason = SAML_OK;
    CHECK_EQ(saml_response_commit(&a, other, &r), SAML_REQUEST_BROWSER, "another browser");
    r.reason = SAML_OK;
    CHECK_EQ(saml_response_commit(&a, "0011", &r), SAML_REQUEST_BROWSER, "a short cookie");
    r.reason = SAML_OK;
    CHECK_EQ(saml_response_commit(&a, bind, &r), SAML_OK, "the genuine post after them");
    CHECK_STR(r.relay, "/room", "relay");
    r.reason = SAML_OK;
    CHECK_EQ(saml_response_commit(&a, bind, &r), SAML_REPLAY, "the same again");
    gh_kv_rec_fini();
}

