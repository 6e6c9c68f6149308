/*
 * HTTP/1.1 head parser (RFC 9112), request and response. Two passes over the
 * head: the first finds its end one line at a time, refusing bare LF at once
 * and enforcing the request-line and head-size limits while the bytes are
 * still arriving (so a slow client cannot make us keep unbounded input); the
 * second validates every byte of the complete head with explicit character
 * classes and decides the framing. No I/O and no allocation: header
 * positions are offsets into the caller's buffer.
 */
#include "http1.h"

#include <string.h>
#include <strings.h>

#include "../common/common.h"

/* RFC 9110 tchar, as a table: header names are scanned a byte at a time
 * on every request and response, and a lookup is a few instructions where
 * the range tests and the switch were about ten (callgrind). */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

static inline int is_tchar(unsigned char c)
{
    return tchar[c];
}

/* field-vchar / obs-text / SP / HTAB */
static inline int is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

#define ONES ((uint64_t)0x0101010101010101u)
#define HIGHS ((uint64_t)0x8080808080808080u)

/* The first byte from p that is not a field-vchar, SP or obs-text (CR,
 * HTAB, any other CTL, DEL), looked for eight bytes at a time; fewer than
 * eight bytes before end are left to the caller. In a word, "some byte
 * below 0x20" and "some byte is DEL" are exact (a byte >= 0x80 keeps its
 * high bit out of the result, and a borrow only runs upwards from a byte
 * that is one), so the lowest flagged byte is the first such byte. Values
 * are most of a head: this is several times fewer instructions than the
 * byte loop (callgrind). */
static size_t skip_plain_value(const char *b, size_t p, size_t end)
{
    while (p + 8 <= end) {
        uint64_t w, del, hit;
        memcpy(&w, b + p, 8);
        del = w ^ (ONES * 0x7f); /* a zero byte where w has DEL */
        hit = (((w - ONES * 0x20) & ~w) | ((del - ONES) & ~del)) & HIGHS;
        if (hit != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return p + (size_t)(__builtin_ctzll(hit) >> 3);
#else
            return p; /* the caller's byte loop finds it */
#endif
        }
        p += 8;
    }
    return p;
}

static int is_host_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return strchr("-._~!$&'()*+,;=%:[]", c) != NULL && c != '\0';
}

/* A header name (parse_fields let only tchar through) against a literal
 * of lowercase letters and '-', eight bytes at a time: OR-ing 0x20 into a
 * byte maps both cases of a letter onto the lowercase one and nothing else
 * onto a letter or '-' that is a tchar (0x0d | 0x20 is '-', but CR is not a
 * tchar). Every field of every head is classified by name: this is a
 * third of the byte loop's instructions (callgrind). Inline, so the
 * literal's words and length fold to constants. */
static inline int name_eq(const char *b, struct http1_span s, const char *lit)
{
    const size_t n = __builtin_strlen(lit);
    const char *a = b + s.off;
    uint64_t x = 0, y = 0;
    size_t i;

    if (s.len != n)
        return 0;
    if (n < 8) {
        memcpy(&x, a, n);
        memcpy(&y, lit, n);
        return (x | ONES * 0x20) == (y | ONES * 0x20);
    }
    for (i = 0; i + 8 < n; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, lit + i, 8);
        if ((x | ONES * 0x20) != y)
            return 0;
    }
    memcpy(&x, a + n - 8, 8);
    memcpy(&y, lit + n - 8, 8);
    return (x | ONES * 0x20) == y;
}

int http1_list_has(const char *v, size_t vlen, const char *tok)
{
    size_t i = 0, s, e;

    while (i < vlen) {
        while (i < vlen && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        s = i;
        while (i < vlen && v[i] != ',')
            i++;
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > s && gh_strncaseeq(v + s, e - s, tok))
            return 1;
    }
    return 0;
}

/* First pass: finds the end of the head. Returns GH_OK with m->head_len,
 * GH_AGAIN, or GH_ERR. m->head_len doubles as the resume offset (always at
 * a line start) so bytes arriving one by one are scanned once. */
static int find_end(const char *buf, size_t len, size_t max_line, size_t max_head,
                    struct http1_msg *m, size_t *resume)
{
    size_t pos = *resume;

    for (;;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t i;

        if (nl == NULL) {
            if (pos == 0 && len > max_line) {
                m->why = GH_REASON_URI_TOO_LONG;
                return GH_ERR;
            }
            if (len > max_head) {
                m->why = GH_REASON_HEADERS_TOO_LARGE;
                return GH_ERR;
            }
            *resume = pos;
            return GH_AGAIN;
        }
        i = (size_t)(nl - buf);
        if (i == 0 || buf[i - 1] != '\r') {
            m->why = GH_REASON_BARE_LF;
            return GH_ERR;
        }
        if (pos == 0 && i + 1 > max_line) {
            m->why = GH_REASON_URI_TOO_LONG;
            return GH_ERR;
        }
        if (i + 1 > max_head) {
            m->why = GH_REASON_HEADERS_TOO_LARGE;
            return GH_ERR;
        }
        if (i + 1 - pos == 2) {
            if (pos == 0) {
                m->why = GH_REASON_BAD_REQUEST_LINE; /* a head cannot start empty */
                return GH_ERR;
            }
            m->head_len = i + 1;
            *resume = 0;
            return GH_OK;
        }
        pos = i + 1;
    }
}

/* Parses header lines from p to the end of the head; on error returns the
 * reason. */
static enum gh_reason parse_fields(const char *b, size_t p, size_t end, size_t max_headers,
                                   struct http1_msg *m)
{
    while (p + 2 <= end) {
        size_t ns, ne, vs, ve;
        struct http1_hdr *h;

        if (b[p] == '\r')
            return p + 2 == end ? GH_REASON_NONE : GH_REASON_BARE_CR;
        if (b[p] == ' ' || b[p] == '\t')
            return GH_REASON_OBS_FOLD;
        ns = p;
        while (p + 4 <= end && (tchar[(unsigned char)b[p]] & tchar[(unsigned char)b[p + 1]] &
                                tchar[(unsigned char)b[p + 2]] & tchar[(unsigned char)b[p + 3]]))
            p += 4;
        while (p < end && is_tchar((unsigned char)b[p]))
            p++;
        ne = p;
        if (b[p] == ' ' || b[p] == '\t')
            return ns == ne ? GH_REASON_OBS_FOLD : GH_REASON_WS_BEFORE_COLON;
        if (ns == ne || b[p] != ':')
            return ((unsigned char)b[p] < 0x20 && b[p] != '\r') || b[p] == 0x7f
                       ? GH_REASON_CTL_CHAR
                       : GH_REASON_BAD_HEADER_NAME;
        p++;
        while (b[p] == ' ' || b[p] == '\t')
            p++;
        vs = p;
        for (;;) {
            unsigned char c;
            p = skip_plain_value(b, p, end);
            c = (unsigned char)b[p]; /* the head ends in CRLF CRLF: a CR comes before end */
            if (c == '\r') {
                if (b[p + 1] != '\n')
                    return GH_REASON_BARE_CR;
                break;
            }
            if (!is_value_char(c))
                return GH_REASON_CTL_CHAR;
            p++;
        }
        ve = p;
        while (ve > vs && (b[ve - 1] == ' ' || b[ve - 1] == '\t'))
            ve--;
        if (m->nhdrs >= max_headers)
            return GH_REASON_TOO_MANY_HEADERS;
        h = &m->hdrs[m->nhdrs++];
        h->name.off = (uint32_t)ns;
        h->name.len = (uint32_t)(ne - ns);
        h->value.off = (uint32_t)vs;
        h->value.len = (uint32_t)(ve - vs);
        p += 2;
    }
    return GH_REASON_BARE_CR;
}

/* Content-Length: 1*DIGIT, no sign, no list, bounded. */
static int parse_cl(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    size_t i;

    if (n == 0 || n > 18)
        return -1;
    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return 0;
}

/* Transfer-Encoding: we support exactly one coding, "chunked". Anything
 * else (gzip, chunked twice, empty elements, parameters) reads two ways
 * between implementations and is refused. */
static int te_add(const char *v, size_t n, int *codings, int *chunked)
{
    size_t i = 0, s, e;

    for (;;) {
        while (i < n && (v[i] == ' ' || v[i] == '\t'))
            i++;
        s = i;
        while (i < n && v[i] != ',')
            i++;
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e == s)
            return -1;
        (*codings)++;
        if (gh_strncaseeq(v + s, e - s, "chunked"))
            (*chunked)++;
        else
            return -1;
        if (i >= n)
            return 0;
        i++; /* the comma */
    }
}

static int is_winauth(const char *v, size_t n)
{
    return (n >= 4 && strncasecmp(v, "NTLM", 4) == 0 && (n == 4 || v[4] == ' ')) ||
           (n >= 9 && strncasecmp(v, "Negotiate", 9) == 0 && (n == 9 || v[9] == ' '));
}

struct fields_info {
    int hosts, cls, tes, te_codings, te_chunked, conn_close, conn_ka, conn_upgrade, conn_other;
    int upgrades;
    enum gh_reason bad;
};

/* Steps through a comma-separated list: the next element (trimmed) is
 * v[*s, *e). Returns 0 at the end of the list. */
static int next_elem(const char *v, size_t vl, size_t *i, size_t *s, size_t *e)
{
    while (*i < vl && (v[*i] == ' ' || v[*i] == '\t' || v[*i] == ','))
        (*i)++;
    if (*i >= vl)
        return 0;
    *s = *i;
    while (*i < vl && v[*i] != ',')
        (*i)++;
    *e = *i;
    while (*e > *s && (v[*e - 1] == ' ' || v[*e - 1] == '\t'))
        (*e)--;
    return 1;
}

/* The options of one Connection header. Naming a framing header or Host is
 * refused outright: a proxy that honoured "Connection: Content-Length"
 * would forward a body with nothing left to say where it ends. */
static void scan_connection(const char *v, size_t vl, struct fields_info *fi, int is_request)
{
    size_t i = 0, s, e;

    while (next_elem(v, vl, &i, &s, &e)) {
        const char *t = v + s;
        size_t n = e - s;
        if (gh_strncaseeq(t, n, "close"))
            fi->conn_close = 1;
        else if (gh_strncaseeq(t, n, "keep-alive"))
            fi->conn_ka = 1;
        else if (gh_strncaseeq(t, n, "upgrade"))
            fi->conn_upgrade = 1;
        else if (gh_strncaseeq(t, n, "content-length") ||
                 gh_strncaseeq(t, n, "transfer-encoding") || gh_strncaseeq(t, n, "host"))
            fi->bad = is_request ? GH_REASON_CONN_OPTION : GH_REASON_UPSTREAM_CONN_OPTION;
        else
            fi->conn_other = 1;
    }
}

static int has_underscore(const char *n, size_t len)
{
    return memchr(n, '_', len) != NULL;
}

/* Classifies one header by name and records what framing and the proxy
 * need from it. */
static void scan_field(const char *b, struct http1_msg *m, struct http1_hdr *h,
                       struct fields_info *fi, int is_request)
{
    const char *v = b + h->value.off;
    size_t vl = h->value.len, k;
    struct http1_span nm = h->name;

    h->kind = HTTP1_H_E2E;
    switch (nm.len) {
    case 2:
        if (name_eq(b, nm, "te"))
            h->kind = HTTP1_H_HOP;
        break;
    case 4:
        if (is_request && name_eq(b, nm, "host")) {
            h->kind = HTTP1_H_HOST;
            if (++fi->hosts > 1) {
                fi->bad = GH_REASON_DUP_HOST;
                break;
            }
            if (vl == 0)
                fi->bad = GH_REASON_BAD_HOST;
            for (k = 0; k < vl; k++)
                if (!is_host_char((unsigned char)v[k]))
                    fi->bad = GH_REASON_BAD_HOST;
            m->host = h->value;
        }
        break;
    case 6:
        if (is_request && name_eq(b, nm, "expect")) {
            if (m->version == 10)
                h->kind = HTTP1_H_IGNORED;
            else if (gh_strncaseeq(v, vl, "100-continue"))
                m->flags |= HTTP1_F_EXPECT_CONTINUE, h->kind = HTTP1_H_EXPECT;
            else
                fi->bad = GH_REASON_BAD_EXPECT;
        } else if (!is_request && name_eq(b, nm, "server")) {
            h->kind = HTTP1_H_SERVER;
        }
        break;
    case 7:
        if (name_eq(b, nm, "upgrade")) {
            h->kind = HTTP1_H_HOP;
            fi->upgrades++;
        } else if (name_eq(b, nm, "trailer")) {
            h->kind = HTTP1_H_HOP;
        }
        break;
    case 9:
        if (is_request && (name_eq(b, nm, "forwarded") || name_eq(b, nm, "x-real-ip")))
            h->kind = HTTP1_H_PROXY;
        break;
    case 10:
        if (name_eq(b, nm, "connection")) {
            h->kind = HTTP1_H_HOP;
            scan_connection(v, vl, fi, is_request);
        } else if (name_eq(b, nm, "keep-alive")) {
            h->kind = HTTP1_H_HOP;
        }
        break;
    case 13:
        if (is_request && name_eq(b, nm, "authorization") && is_winauth(v, vl))
            m->flags |= HTTP1_F_WINAUTH;
        break;
    case 14:
        if (name_eq(b, nm, "content-length")) {
            h->kind = HTTP1_H_FRAMING;
            m->flags |= HTTP1_F_HAS_CL;
            if (++fi->cls > 1)
                fi->bad = GH_REASON_DUP_CL;
            else if (parse_cl(v, vl, &m->content_length) == -1)
                fi->bad = GH_REASON_BAD_CL;
        }
        break;
    case 15:
        if (is_request && name_eq(b, nm, "x-forwarded-for"))
            h->kind = HTTP1_H_PROXY;
        break;
    case 16:
        if (!is_request && name_eq(b, nm, "www-authenticate") && is_winauth(v, vl))
            m->flags |= HTTP1_F_WINAUTH;
        else if (name_eq(b, nm, "proxy-connection"))
            h->kind = HTTP1_H_HOP;
        else if (is_request && name_eq(b, nm, "x-forwarded-host"))
            h->kind = HTTP1_H_PROXY;
        break;
    case 17:
        if (name_eq(b, nm, "transfer-encoding")) {
            h->kind = HTTP1_H_FRAMING;
            fi->tes++;
            if (te_add(v, vl, &fi->te_codings, &fi->te_chunked) == -1)
                fi->bad = GH_REASON_BAD_TE;
        } else if (is_request && name_eq(b, nm, "x-forwarded-proto")) {
            h->kind = HTTP1_H_PROXY;
        }
        break;
    case 19:
        if (is_request && name_eq(b, nm, "proxy-authorization"))
            h->kind = HTTP1_H_PROXY;
        break;
    case 20:
        if (is_request && name_eq(b, nm, "gatehouse-edge-token"))
            h->kind = HTTP1_H_PROXY; /* an edge's own (edge.c): a client's word counts for nothing */
        break;
    case 25:
        if (!is_request && name_eq(b, nm, "strict-transport-security"))
            h->kind = HTTP1_H_HSTS;
        break;
    }
    if (is_request && h->kind == HTTP1_H_E2E && has_underscore(b + nm.off, nm.len)) {
        h->kind = HTTP1_H_UNDERSCORE;
        m->flags |= HTTP1_F_UNDERSCORE;
    }
}

/* True when some Connection header of m lists the name n. */
static int named_in_connection(const char *b, const struct http1_msg *m, const char *n,
                               size_t nl)
{
    unsigned k;

    for (k = 0; k < m->nhdrs; k++) {
        const struct http1_hdr *c = &m->hdrs[k];
        size_t i = 0, s, e;
        if (c->name.len != 10 || !name_eq(b, c->name, "connection"))
            continue;
        while (next_elem(b + c->value.off, c->value.len, &i, &s, &e))
            if (e - s == nl && strncasecmp(b + c->value.off + s, n, nl) == 0)
                return 1;
    }
    return 0;
}

/* Records one WebSocket handshake field; a second copy marks the message,
 * since two keys (or two Upgrade headers) can be read two ways. */
static void ws_span(struct http1_msg *m, struct http1_span *dst, struct http1_span v)
{
    if (dst->len != 0 || dst->off != 0)
        m->flags |= HTTP1_F_WS_DUP;
    *dst = v;
}

static void scan_semantics(const char *b, struct http1_msg *m, struct fields_info *fi,
                           int is_request)
{
    unsigned i;

    memset(fi, 0, sizeof(*fi));
    for (i = 0; i < m->nhdrs && fi->bad == GH_REASON_NONE; i++)
        scan_field(b, m, &m->hdrs[i], fi, is_request);
    if (fi->bad == GH_REASON_NONE && fi->tes && (fi->te_codings != 1 || fi->te_chunked != 1))
        fi->bad = GH_REASON_BAD_TE;
    if (fi->bad != GH_REASON_NONE)
        return;
    /* Options naming other headers remove the sender's copies (RFC 9110
     * 7.6.1). It happens here, before the proxy adds anything, so no option
     * can ever remove a header gatehouse writes itself. */
    if (fi->conn_other)
        for (i = 0; i < m->nhdrs; i++) {
            struct http1_hdr *h = &m->hdrs[i];
            if (h->kind != HTTP1_H_HOP && h->kind != HTTP1_H_FRAMING && h->kind != HTTP1_H_HOST &&
                named_in_connection(b, m, b + h->name.off, h->name.len))
                h->kind = HTTP1_H_HOP;
        }
    /* The WebSocket fields matter only beside an Upgrade header (every
     * reader checks m->upgrade first): most heads have none. */
    if (fi->upgrades == 0)
        return;
    for (i = 0; i < m->nhdrs; i++) {
        const struct http1_hdr *h = &m->hdrs[i];
        struct http1_span nm = h->name;
        if (name_eq(b, nm, "upgrade")) {
            ws_span(m, &m->upgrade, h->value);
            continue;
        }
        if (h->kind != HTTP1_H_E2E || nm.len < 17)
            continue;
        if (name_eq(b, nm, "sec-websocket-key"))
            ws_span(m, &m->ws_key, h->value);
        else if (name_eq(b, nm, "sec-websocket-version"))
            ws_span(m, &m->ws_version, h->value);
        else if (name_eq(b, nm, "sec-websocket-accept"))
            ws_span(m, &m->ws_accept, h->value);
    }
}

/* Checks the target's form; for absolute-form, its authority must be the
 * Host and the rest becomes the path forwarded. */
static enum gh_reason check_target(const char *b, struct http1_msg *m)
{
    const char *t = b + m->target.off;
    size_t n = m->target.len, skip, a;

    m->path = m->target;
    if (t[0] == '/')
        return GH_REASON_NONE;
    if (n == 1 && t[0] == '*')
        return http1_method_is(b, m, "OPTIONS") ? GH_REASON_NONE : GH_REASON_BAD_TARGET;
    if (n > 7 && strncasecmp(t, "http://", 7) == 0)
        skip = 7;
    else if (n > 8 && strncasecmp(t, "https://", 8) == 0)
        skip = 8;
    else
        return GH_REASON_BAD_TARGET;
    for (a = skip; a < n && t[a] != '/' && t[a] != '?'; a++)
        if (t[a] == '@')
            return GH_REASON_BAD_TARGET; /* userinfo is never forwarded */
    if (a == skip)
        return GH_REASON_BAD_TARGET;
    if (m->host.len != a - skip || strncasecmp(b + m->host.off, t + skip, a - skip) != 0)
        return GH_REASON_HOST_MISMATCH;
    m->flags |= HTTP1_F_ABSOLUTE;
    m->path.off = m->target.off + (uint32_t)a;
    m->path.len = (uint32_t)(n - a);
    return GH_REASON_NONE;
}

static void reset(struct http1_msg *m)
{
    struct http1_hdr *h = m->hdrs;

    memset(m, 0, sizeof(*m));
    m->hdrs = h;
}

int http1_parse_request(const char *b, size_t len, const struct http1_limits *lim,
                        struct http1_msg *m)
{
    size_t resume = m->head_len, p = 0;
    struct fields_info fi;
    enum gh_reason r;
    int rc;

    reset(m);
    rc = find_end(b, len, lim->max_request_line, lim->max_header_size, m, &resume);
    if (rc != GH_OK) {
        if (rc == GH_AGAIN)
            m->head_len = resume;
        return rc;
    }
    /* method SP request-target SP HTTP-version CRLF */
    while (is_tchar((unsigned char)b[p]))
        p++;
    m->method.len = (uint32_t)p;
    if (p == 0 || b[p] != ' ') {
        m->why = (unsigned char)b[p] < 0x20 && b[p] != '\r' ? GH_REASON_CTL_CHAR
                                                            : GH_REASON_BAD_METHOD;
        return GH_ERR;
    }
    m->target.off = (uint32_t)++p;
    while ((unsigned char)b[p] > 0x20 && (unsigned char)b[p] < 0x7f && b[p] != '#')
        p++;
    m->target.len = (uint32_t)(p - m->target.off);
    if (b[p] != ' ' || m->target.len == 0) {
        m->why = (unsigned char)b[p] < 0x20 && b[p] != '\r' && m->target.len
                     ? GH_REASON_CTL_CHAR
                     : GH_REASON_BAD_TARGET;
        return GH_ERR;
    }
    p++;
    if (m->head_len - p < 12) {
        m->why = GH_REASON_BAD_VERSION;
        return GH_ERR;
    }
    if (memcmp(b + p, "HTTP/1.1\r\n", 10) == 0)
        m->version = 11;
    else if (memcmp(b + p, "HTTP/1.0\r\n", 10) == 0)
        m->version = 10;
    else {
        m->why = memcmp(b + p, "HTTP/", 5) == 0 && b[p + 5] >= '0' && b[p + 5] <= '9' &&
                         b[p + 6] == '.' && b[p + 7] >= '0' && b[p + 7] <= '9' &&
                         b[p + 8] == '\r'
                     ? GH_REASON_VERSION_UNSUPPORTED
                     : GH_REASON_BAD_VERSION;
        return GH_ERR;
    }
    p += 10;
    r = parse_fields(b, p, m->head_len, lim->max_headers, m);
    if (r != GH_REASON_NONE)
        goto bad;
    scan_semantics(b, m, &fi, 1);
    if ((r = fi.bad) != GH_REASON_NONE)
        goto bad;
    if (m->version == 11 && fi.hosts == 0) {
        r = GH_REASON_NO_HOST;
        goto bad;
    }
    if (http1_method_is(b, m, "CONNECT")) {
        r = GH_REASON_METHOD_NOT_ALLOWED;
        goto bad;
    }
    if (http1_method_is(b, m, "HEAD"))
        m->flags |= HTTP1_F_HEAD;
    if ((r = check_target(b, m)) != GH_REASON_NONE)
        goto bad;
    if (fi.tes) {
        if (m->version == 10) {
            r = GH_REASON_TE_HTTP10;
            goto bad;
        }
        if (fi.cls) {
            r = GH_REASON_CL_AND_TE;
            goto bad;
        }
        m->framing = HTTP1_BODY_CHUNKED;
    } else if (fi.cls && m->content_length > 0) {
        m->framing = HTTP1_BODY_LENGTH;
    } else {
        m->framing = HTTP1_BODY_NONE;
    }
    if (fi.conn_close || (m->version == 10 && !fi.conn_ka))
        m->flags |= HTTP1_F_CONN_CLOSE;
    if (fi.conn_upgrade && fi.upgrades)
        m->flags |= HTTP1_F_UPGRADE;
    return GH_OK;
bad:
    m->why = r;
    return GH_ERR;
}

int http1_parse_response(const char *b, size_t len, const struct http1_limits *lim,
                         unsigned req_flags, struct http1_msg *m)
{
    size_t resume = m->head_len, p;
    struct fields_info fi;
    int rc;

    reset(m);
    rc = find_end(b, len, lim->max_header_size, lim->max_header_size, m, &resume);
    if (rc != GH_OK) {
        if (rc == GH_AGAIN)
            m->head_len = resume;
        else
            m->why = GH_REASON_BAD_RESPONSE;
        return rc;
    }
    m->why = GH_REASON_BAD_RESPONSE;
    if (m->head_len < 16 || memcmp(b, "HTTP/1.", 7) != 0 || (b[7] != '0' && b[7] != '1') || b[8] != ' ')
        return GH_ERR;
    m->version = b[7] == '1' ? 11 : 10;
    if (b[9] < '1' || b[9] > '5' || b[10] < '0' || b[10] > '9' || b[11] < '0' || b[11] > '9')
        return GH_ERR;
    m->status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
    p = 12;
    if (b[p] == ' ') {
        m->reason.off = (uint32_t)++p;
        while (b[p] != '\r') {
            if (!is_value_char((unsigned char)b[p]))
                return GH_ERR;
            p++;
        }
        m->reason.len = (uint32_t)(p - m->reason.off);
    }
    if (b[p] != '\r' || b[p + 1] != '\n')
        return GH_ERR;
    p += 2;
    if (parse_fields(b, p, m->head_len, lim->max_headers, m) != GH_REASON_NONE)
        return GH_ERR;
    scan_semantics(b, m, &fi, 0);
    if (fi.bad != GH_REASON_NONE) {
        if (fi.bad == GH_REASON_UPSTREAM_CONN_OPTION)
            m->why = fi.bad;
        return GH_ERR;
    }
    if (m->status != 401)
        m->flags &= ~HTTP1_F_WINAUTH;
    if (m->status < 200 || m->status == 204 || m->status == 304 || (req_flags & HTTP1_F_HEAD)) {
        /* No body whatever the headers say; a 1xx or 204 claiming one is broken. */
        if ((m->status < 200 || m->status == 204) && (fi.tes || (fi.cls && m->content_length)))
            return GH_ERR;
        m->framing = HTTP1_BODY_NONE;
    } else if (fi.tes) {
        if (fi.cls)
            return GH_ERR;
        m->framing = HTTP1_BODY_CHUNKED;
    } else if (fi.cls) {
        m->framing = m->content_length ? HTTP1_BODY_LENGTH : HTTP1_BODY_NONE;
    } else {
        m->framing = HTTP1_BODY_CLOSE;
    }
    if (fi.conn_close || (m->version == 10 && !fi.conn_ka) || m->framing == HTTP1_BODY_CLOSE)
        m->flags |= HTTP1_F_CONN_CLOSE;
    if (fi.conn_upgrade && fi.upgrades)
        m->flags |= HTTP1_F_UPGRADE;
    m->why = GH_REASON_NONE;
    return GH_OK;
}
