/*
 * The per-direction message machine. Legal moves:
 *
 *   HEAD -> BODY_LENGTH | BODY_CHUNKED | BODY_CLOSE | DONE | TUNNEL (a 101)
 *   BODY_* -> DONE
 *   DONE -> HEAD (the next message on a kept-alive connection)
 *   DONE -> TUNNEL (the request, once its 101 came back)
 *
 * Anything else is refused with -1 and logged by the caller as an internal
 * error: a message that went back from a body to its head, or out of a
 * tunnel, would mean the proxy lost track of where one message ends.
 */
#include "http1.h"

#include "../common/common.h"

static const char *const names[] = {
#define HTTP1_MSTATE_NAME(n) #n,
    HTTP1_MSTATES(HTTP1_MSTATE_NAME)
#undef HTTP1_MSTATE_NAME
};

#define B(s) (1u << H1M_##s)
static const unsigned legal[] = {
    [H1M_HEAD] = B(BODY_LENGTH) | B(BODY_CHUNKED) | B(BODY_CLOSE) | B(DONE) | B(TUNNEL),
    [H1M_BODY_LENGTH] = B(DONE),
    [H1M_BODY_CHUNKED] = B(DONE),
    [H1M_BODY_CLOSE] = B(DONE),
    [H1M_DONE] = B(HEAD) | B(TUNNEL),
    [H1M_TUNNEL] = 0,
};
#undef B

const char *http1_m_name(enum http1_mstate st)
{
    return (unsigned)st < GH_ARRAY_LEN(names) ? names[st] : "?";
}

void http1_m_init(struct http1_m *m)
{
    m->st = H1M_HEAD;
    m->out = HTTP1_BODY_NONE;
    m->left = 0;
    http1_chunk_init(&m->ck);
}

int http1_m_set(struct http1_m *m, enum http1_mstate st)
{
    if ((unsigned)m->st >= GH_ARRAY_LEN(legal) || !(legal[m->st] & (1u << st)))
        return -1;
    if (st == H1M_HEAD) {
        http1_m_init(m);
        return 0;
    }
    m->st = st;
    return 0;
}

int http1_m_begin(struct http1_m *m, const struct http1_msg *h, enum http1_framing out)
{
    enum http1_mstate st = H1M_DONE;

    switch (h->framing) {
    case HTTP1_BODY_NONE:
        st = H1M_DONE;
        break;
    case HTTP1_BODY_LENGTH:
        st = H1M_BODY_LENGTH;
        break;
    case HTTP1_BODY_CHUNKED:
        st = H1M_BODY_CHUNKED;
        break;
    case HTTP1_BODY_CLOSE:
        st = H1M_BODY_CLOSE;
        break;
    }
    if (m->st != H1M_HEAD || http1_m_set(m, st) == -1)
        return -1;
    m->out = out;
    m->left = h->content_length;
    http1_chunk_init(&m->ck);
    return 0;
}
