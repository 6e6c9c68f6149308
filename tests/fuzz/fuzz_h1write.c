/* libFuzzer target: what was checked is what is sent. A head that parses
 * is written again the way the proxy writes heads (http1_write.c: request
 * line or status line, Host first, only end-to-end fields, gatehouse's own
 * framing header), and the written head must parse again to the same
 * message: method, target, Host, status, every end-to-end field in order,
 * framing and length. The written head may carry no hop-by-hop field, no
 * field a Connection header named, and at most one framing header. Both
 * for requests and for responses (the first input byte picks).
 *
 * Each head is then written a second time with a service's header rules
 * (proxy/header_rules.c: add, set, remove, version stripping, rewrite-host)
 * and must still parse, with the same framing, one Host first, nothing
 * hop-by-hop, the rules' lines present just before the framing header and
 * no received line of a removed or replaced name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/common.h"
#include "common/conf.h"
#include "proxy/header_rules.h"
#include "proxy/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct http1_limits lim = {8192, 65536, 100, 1024};
static struct http1_hdr h1[100], h2[100];
static char tbuf[70000];

/* The rules of the second writing, and what they say. */
static const char rules_conf[] =
    "certificate c {\n cert c.pem\n key c.key\n}\n"
    "service s {\n listen 0.0.0.0:443\n certificate c\n server a 127.0.0.1:2\n"
    " request-header set X-A 1\n request-header remove cookie\n"
    " request-header add X-B \"two words\"\n"
    " response-header remove X-Internal\n response-header set X-Frame-Options DENY\n"
    " response-header add X-C 3\n"
    " rewrite-host fe1.contoso.local meet.example.com\n"
    " rewrite-host [fd00::5] meet.example.com:8443\n}\n";
static const char req_added[] = "X-A: 1\r\nX-B: two words\r\n";
static const char *const req_gone[] = {"x-a", "cookie"};
static const char resp_added[] = "X-Frame-Options: DENY\r\nX-C: 3\r\n";
static const char *const resp_gone[] = {"x-internal", "x-frame-options", "x-powered-by",
                                        "x-aspnet-version", "x-aspnetmvc-version"};
static struct gh_conf *rconf;
static struct proxy_hdr_rules *rules;

static void rules_init(void)
{
    char err[256];

    if (rules != NULL)
        return;
    rconf = gh_conf_parse("fuzz.conf", rules_conf, sizeof(rules_conf) - 1, err, sizeof(err));
    if (rconf == NULL)
        abort();
    rules = proxy__hdr_rules_new("fuzz.conf", &rconf->services[0], err, sizeof(err));
    if (rules == NULL)
        abort();
}

/* No received line of a name in gone[] survived, unless it is one the
 * rules wrote (they are the last end-to-end lines, given in added); the
 * added block is there, whole, before the framing header. */
static void rules_applied(const char *b, size_t blen, const struct http1_msg *n,
                          const char *const *gone, size_t ngone, const char *added)
{
    unsigned i, k, first_added = n->nhdrs;
    size_t alen = strlen(added), nadded = 0;
    const char *p;

    for (p = added; (p = strstr(p, "\r\n")) != NULL; p += 2)
        nadded++;
    if (n->status < 100 || n->status >= 200) {
        /* the added lines: the last nadded end-to-end lines */
        unsigned seen = 0;
        for (i = n->nhdrs; i-- > 0 && seen < nadded;)
            if (n->hdrs[i].kind == HTTP1_H_E2E) {
                first_added = i;
                seen++;
            }
        if (seen != nadded || memmem(b, blen, added, alen) == NULL)
            abort();
    }
    for (i = 0; i < first_added; i++)
        for (k = 0; k < ngone; k++)
            if (gh_strncaseeq(b + n->hdrs[i].name.off, n->hdrs[i].name.len, gone[k]) &&
                (n->status < 100 || n->status >= 200 || k >= 2))
                abort();
}

/* The end-to-end fields of m, in order, equal those of n. */
static void same_fields(const char *a, const struct http1_msg *m, unsigned keep, const char *b,
                        const struct http1_msg *n)
{
    unsigned i = 0, j = 0;

    for (;;) {
        while (i < m->nhdrs && !(keep & HTTP1_KEEP(m->hdrs[i].kind)))
            i++;
        while (j < n->nhdrs && !(keep & HTTP1_KEEP(n->hdrs[j].kind)))
            j++;
        if (i == m->nhdrs || j == n->nhdrs)
            break;
        if (m->hdrs[i].name.len != n->hdrs[j].name.len ||
            m->hdrs[i].value.len != n->hdrs[j].value.len || m->hdrs[i].kind != n->hdrs[j].kind ||
            memcmp(a + m->hdrs[i].name.off, b + n->hdrs[j].name.off, m->hdrs[i].name.len) != 0 ||
            memcmp(a + m->hdrs[i].value.off, b + n->hdrs[j].value.off, m->hdrs[i].value.len) != 0)
            abort();
        i++, j++;
    }
    if (i != m->nhdrs || j != n->nhdrs)
        abort(); /* one side has more end-to-end fields */
}

/* Nothing in a written head that gatehouse would not write. */
static void clean(const char *b, const struct http1_msg *n, int request)
{
    unsigned i, framing = 0, host = 0;

    for (i = 0; i < n->nhdrs; i++) {
        switch (n->hdrs[i].kind) {
        case HTTP1_H_FRAMING:
            framing++;
            break;
        case HTTP1_H_HOST:
            host++;
            if (i != 0)
                abort(); /* Host comes first */
            break;
        case HTTP1_H_HOP:
        case HTTP1_H_PROXY:
        case HTTP1_H_UNDERSCORE:
        case HTTP1_H_IGNORED:
            abort();
        case HTTP1_H_E2E:
        case HTTP1_H_EXPECT:
        case HTTP1_H_SERVER:
        case HTTP1_H_HSTS:
            break;
        }
    }
    (void)b;
    if (framing > 1 || (request && host != 1))
        abort();
}

static void request(const char *buf, size_t size)
{
    struct http1_msg m, n;
    struct gh_buf out = {0};
    const char *host, *target;
    size_t hlen, tlen;
    unsigned keep = HTTP1_KEEP(HTTP1_H_E2E) | HTTP1_KEEP(HTTP1_H_EXPECT);

    memset(&m, 0, sizeof(m));
    m.hdrs = h1;
    if (http1_parse_request(buf, size, &lim, &m) != GH_OK)
        return;
    host = m.host.len ? buf + m.host.off : "fuzz.invalid";
    hlen = m.host.len ? m.host.len : 12;
    /* An absolute target with no path ("http://h", "http://h?q") goes on
     * with "/" in front, as the firewall's normaliser makes it. */
    target = buf + m.path.off;
    tlen = m.path.len;
    if (tlen == 0 || target[0] == '?') {
        if (tlen + 1 > sizeof(tbuf))
            return;
        tbuf[0] = '/';
        memcpy(tbuf + 1, target, tlen);
        target = tbuf;
        tlen++;
    }
    http1_write_request_line(&out, buf, &m, target, tlen, host, hlen);
    http1_write_fields(&out, buf, &m, keep);
    http1_write_req_framing(&out, &m);
    http1_write_end(&out);
    memset(&n, 0, sizeof(n));
    n.hdrs = h2;
    if (http1_parse_request(out.data + out.r, gh_buf_len(&out), &lim, &n) != GH_OK) {
        /* Only limits may refuse what we wrote (we add Host and framing). */
        if (n.why != GH_REASON_HEADERS_TOO_LARGE && n.why != GH_REASON_TOO_MANY_HEADERS &&
            n.why != GH_REASON_URI_TOO_LONG)
            abort();
        gh_buf_put(&out);
        return;
    }
    {
        const char *b = out.data + out.r;
        if (n.version != 11 || n.framing != m.framing || n.content_length != m.content_length ||
            n.method.len != m.method.len || memcmp(b + n.method.off, buf + m.method.off, m.method.len) ||
            n.target.len != tlen || memcmp(b + n.target.off, target, tlen) ||
            n.host.len != hlen || memcmp(b + n.host.off, host, hlen) ||
            (n.flags & HTTP1_F_UPGRADE))
            abort();
        same_fields(buf, &m, keep, b, &n);
        clean(b, &n, 1);
    }
    gh_buf_put(&out);

    /* Again, with the rules. */
    http1_write_request_line(&out, buf, &m, target, tlen, host, hlen);
    proxy__hdr_write_req_fields(&out, buf, &m, keep, rules);
    http1_write_req_framing(&out, &m);
    http1_write_end(&out);
    memset(&n, 0, sizeof(n));
    n.hdrs = h2;
    if (http1_parse_request(out.data + out.r, gh_buf_len(&out), &lim, &n) != GH_OK) {
        if (n.why != GH_REASON_HEADERS_TOO_LARGE && n.why != GH_REASON_TOO_MANY_HEADERS &&
            n.why != GH_REASON_URI_TOO_LONG)
            abort();
        gh_buf_put(&out);
        return;
    }
    {
        const char *b = out.data + out.r;
        if (n.framing != m.framing || n.content_length != m.content_length ||
            n.host.len != hlen || memcmp(b + n.host.off, host, hlen) || (n.flags & HTTP1_F_UPGRADE))
            abort();
        clean(b, &n, 1);
        n.status = 0;
        rules_applied(b, gh_buf_len(&out), &n, req_gone, 2, req_added);
    }
    gh_buf_put(&out);
}

static void response(const char *buf, size_t size, unsigned req_flags)
{
    struct http1_msg m, n;
    struct gh_buf out = {0};
    unsigned keep = HTTP1_KEEP(HTTP1_H_E2E) | HTTP1_KEEP(HTTP1_H_SERVER) | HTTP1_KEEP(HTTP1_H_HSTS);

    memset(&m, 0, sizeof(m));
    m.hdrs = h1;
    if (http1_parse_response(buf, size, &lim, req_flags, &m) != GH_OK)
        return;
    http1_write_status_line(&out, buf, &m);
    http1_write_fields(&out, buf, &m, keep);
    http1_write_resp_framing(&out, &m, m.framing);
    http1_write_end(&out);
    memset(&n, 0, sizeof(n));
    n.hdrs = h2;
    if (http1_parse_response(out.data + out.r, gh_buf_len(&out), &lim, req_flags, &n) != GH_OK) {
        if (m.nhdrs < lim.max_headers)
            abort();
        gh_buf_put(&out);
        return;
    }
    {
        const char *b = out.data + out.r;
        if (n.status != m.status || n.framing != m.framing ||
            (m.framing == HTTP1_BODY_LENGTH && n.content_length != m.content_length) ||
            n.reason.len != m.reason.len || memcmp(b + n.reason.off, buf + m.reason.off, m.reason.len))
            abort();
        same_fields(buf, &m, keep, b, &n);
        clean(b, &n, 0);
    }
    gh_buf_put(&out);

    /* Again, with the rules (Server kept: it has its own kind). */
    http1_write_status_line(&out, buf, &m);
    proxy__hdr_write_resp_fields(&out, buf, &m, keep, rules);
    http1_write_resp_framing(&out, &m, m.framing);
    http1_write_end(&out);
    memset(&n, 0, sizeof(n));
    n.hdrs = h2;
    if (http1_parse_response(out.data + out.r, gh_buf_len(&out), &lim, req_flags, &n) != GH_OK) {
        if (m.nhdrs + 1 < lim.max_headers)
            abort();
        gh_buf_put(&out);
        return;
    }
    {
        const char *b = out.data + out.r;
        unsigned i;
        if (n.status != m.status || n.framing != m.framing ||
            (m.framing == HTTP1_BODY_LENGTH && n.content_length != m.content_length))
            abort();
        clean(b, &n, 0);
        rules_applied(b, gh_buf_len(&out), &n, resp_gone, GH_ARRAY_LEN(resp_gone), resp_added);
        /* a final response names no internal host in an absolute URL */
        for (i = 0; m.status >= 200 && i < n.nhdrs; i++) {
            const char *v = b + n.hdrs[i].value.off;
            size_t vl = n.hdrs[i].value.len;
            if (!gh_strncaseeq(b + n.hdrs[i].name.off, n.hdrs[i].name.len, "location"))
                continue;
            if ((vl >= 25 && gh_strncaseeq(v, 25, "http://fe1.contoso.local/")) ||
                (vl >= 26 && gh_strncaseeq(v, 26, "https://fe1.contoso.local/")))
                abort();
        }
    }
    gh_buf_put(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf;

    if (size < 1 || size > 70000)
        return 0;
    rules_init();
    buf = malloc(size);
    memcpy(buf, data + 1, size - 1);
    if (data[0] & 1)
        response(buf, size - 1, (data[0] & 2) ? HTTP1_F_HEAD : 0);
    else
        request(buf, size - 1);
    free(buf);
    return 0;
}
