/* The two kinds of state machine the data plane runs on: the message
 * machine of each direction (proxy/http1_msg.c) and the connection
 * machine (proxy/conn.c). Every pair of states is a row: legal or not. */
#include "../../../proxy/proxy_int.h"

#include <string.h>

#include "../unit.h"

TEST(http1_message_machine_transitions)
{
    /* from -> the states it may go to */
    static const struct {
        enum http1_mstate from;
        const char *to;
    } want[] = {
        {H1M_HEAD, "BODY_LENGTH BODY_CHUNKED BODY_CLOSE DONE TUNNEL"},
        {H1M_BODY_LENGTH, "DONE"},
        {H1M_BODY_CHUNKED, "DONE"},
        {H1M_BODY_CLOSE, "DONE"},
        {H1M_DONE, "HEAD TUNNEL"},
        {H1M_TUNNEL, ""},
    };
    size_t i;
    int to;

    for (i = 0; i < GH_ARRAY_LEN(want); i++)
        for (to = H1M_HEAD; to <= H1M_TUNNEL; to++) {
            struct http1_m m;
            char row[64];
            const char *name = http1_m_name((enum http1_mstate)to);
            const char *hit = strstr(want[i].to, name);
            int expect = hit != NULL && (hit[strlen(name)] == ' ' || hit[strlen(name)] == '\0') &&
                         (hit == want[i].to || hit[-1] == ' ');
            http1_m_init(&m);
            m.st = want[i].from;
            snprintf(row, sizeof(row), "%s -> %s", http1_m_name(want[i].from), name);
            CHECK_EQ(http1_m_set(&m, (enum http1_mstate)to) == 0, expect, row);
            CHECK_EQ(m.st, expect ? (enum http1_mstate)to : want[i].from, row);
        }
    {
        /* begin picks the body state from the head's framing */
        struct http1_msg h;
        struct http1_m m;
        memset(&h, 0, sizeof(h));
        http1_m_init(&m);
        h.framing = HTTP1_BODY_LENGTH;
        h.content_length = 7;
        CHECK_EQ(http1_m_begin(&m, &h, HTTP1_BODY_LENGTH), 0, "begin length");
        CHECK_EQ(m.st, H1M_BODY_LENGTH, "length");
        CHECK_EQ(m.left, 7, "left");
        CHECK_EQ(http1_m_begin(&m, &h, HTTP1_BODY_LENGTH), -1, "begin twice");
        http1_m_init(&m);
        h.framing = HTTP1_BODY_NONE;
        CHECK_EQ(http1_m_begin(&m, &h, HTTP1_BODY_NONE), 0, "begin none");
        CHECK_EQ(m.st, H1M_DONE, "no body: done at once");
        CHECK_EQ(http1_m_set(&m, H1M_HEAD), 0, "next message");
        h.framing = HTTP1_BODY_CLOSE;
        CHECK_EQ(http1_m_begin(&m, &h, HTTP1_BODY_CHUNKED), 0, "begin close");
        CHECK_EQ(m.out, HTTP1_BODY_CHUNKED, "re-framed out");
        CHECK(http1_m_in_body(&m));
    }
}

TEST(conn_machine_transitions)
{
    /* The legal moves, written out here independently of conn.c's table. */
    static const char *const want[ST_COUNT] = {
        [ST_TLS_HANDSHAKE] = "READ_HEAD L4_CHOOSE CLOSED",
        [ST_L4_CHOOSE] = "STORE_WAIT QUEUED CONNECT CLOSING CLOSED",
        [ST_READ_HEAD] = "STORE_WAIT HOLD_BODY QUEUED CONNECT EXCHANGE CLOSING CLOSED",
        [ST_STORE_WAIT] = "READ_HEAD L4_CHOOSE CLOSING CLOSED",
        [ST_ADMIT_WAIT] = "TLS_HANDSHAKE L4_CHOOSE READ_HEAD CLOSED",
        [ST_HOLD_BODY] = "QUEUED CONNECT EXCHANGE CLOSING CLOSED",
        [ST_QUEUED] = "QUEUED CONNECT EXCHANGE CLOSING CLOSED",
        [ST_CONNECT] = "CONNECT EXCHANGE TUNNEL QUEUED CLOSING CLOSED",
        [ST_EXCHANGE] = "READ_HEAD TUNNEL CONNECT EXCHANGE QUEUED CLOSING CLOSED",
        [ST_TUNNEL] = "CLOSING CLOSED",
        [ST_CLOSING] = "CLOSED",
        [ST_CLOSED] = "",
    };
    int from, to, n = 0;

    for (from = 0; from < ST_COUNT; from++)
        for (to = 0; to < ST_COUNT; to++) {
            char list[128], name[32], row[80];
            snprintf(list, sizeof(list), " %s ", want[from]);
            snprintf(name, sizeof(name), " %s ", proxy__state_name((enum proxy_state)to));
            snprintf(row, sizeof(row), "%s -> %s", proxy__state_name((enum proxy_state)from),
                     proxy__state_name((enum proxy_state)to));
            CHECK_EQ(proxy__conn_legal((enum proxy_state)from, (enum proxy_state)to),
                     strstr(list, name) != NULL, row);
            n++;
        }
    CHECK_EQ(n, ST_COUNT * ST_COUNT, "every pair");
    /* Nothing leaves CLOSED; nothing but CLOSED follows CLOSING; a tunnel never
     * goes back to HTTP. */
    CHECK(!proxy__conn_legal(ST_TUNNEL, ST_READ_HEAD));
    CHECK(!proxy__conn_legal(ST_CLOSED, ST_READ_HEAD));
    /* a request waiting for the store goes nowhere but back to its head */
    CHECK(!proxy__conn_legal(ST_STORE_WAIT, ST_CONNECT));
    CHECK(!proxy__conn_legal(ST_STORE_WAIT, ST_EXCHANGE));
}
