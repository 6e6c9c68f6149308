/* libFuzzer target: the firewall of a service in one call
 * (rules_policy_check). The input is split at NUL bytes into method,
 * target, Host and SNI, decided against a fixed policy with wildcard hosts,
 * narrow directories and a rule set. Whatever is forwarded must be what the
 * checks saw: a normalised path starting with '/', inside an allowed
 * directory, with no dot segment, no "//" and no NUL, that normalises to
 * itself again; Host and SNI must have been allowed. The same input is
 * also decided by a `redirect https` service and by redirect rules with
 * $host, $path and $query: a Location is one header value of printable
 * ASCII whose escapes are all valid, https://HOST:8443/... for the former,
 * and never protocol-relative ("//elsewhere") for "/$path". */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/conf.h"
#include "common/kv.h"
#include "rules/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char conf_text[] =
    "rules edge {\n"
    "    rule no-admin deny 403 if path prefix /meet/admin\n"
    "    rule sqli deny 400 if query regex \"(?i)union.*select\"\n"
    "}\n"
    "service meet {\n"
    "    listen 127.0.0.1:1\n"
    "    server a 127.0.0.1:9\n"
    "    allowed-hosts meet.example.com *.lync.example.com\n"
    "    allowed-dirs /meet/* /abs/*.aspx /healthcheck.html\n"
    "    rule-set edge\n"
    "}\n"
    "service r80 {\n"
    "    listen 127.0.0.1:2\n"
    "    allowed-hosts meet.example.com *.lync.example.com\n"
    "    allowed-dirs /*\n"
    "    merge-slashes off\n"
    "    redirect https port 8443\n"
    "}\n"
    "rules moves {\n"
    "    rule abs redirect https://$host/x$path?$query if path prefix /a\n"
    "    rule rel redirect 307 /$path?k=1&$query if path regex ^/[^a]\n"
    "    rule top redirect $path if path exact /\n"
    "}\n"
    "service mv {\n"
    "    listen 127.0.0.1:3\n"
    "    server a 127.0.0.1:9\n"
    "    allowed-hosts *\n"
    "    allowed-dirs /*\n"
    "    merge-slashes off\n"
    "    rule-set moves\n"
    "}\n";

static struct gh_conf *conf;
static struct rules_policy *pol, *pol80, *polmv;

static int header(void *ctx, const char *name, unsigned idx, const char **v, size_t *vlen)
{
    (void)ctx;
    (void)name;
    (void)idx;
    (void)v;
    (void)vlen;
    return -1;
}

static int dirs_ok(const char *p, size_t n)
{
    return rules_glob_match("/meet/*", p, n) || rules_glob_match("/abs/*.aspx", p, n) ||
           rules_glob_match("/healthcheck.html", p, n);
}

/* A Location as the proxy writes it: printable ASCII, escapes valid. */
static size_t check_location(const struct rules_decision *d, char *loc)
{
    size_t n = rules_location_write(&d->redirect, loc), i;

    if (n > RULES_LOCATION_MAX || n != strlen(loc))
        abort();
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)loc[i];
        if (c <= 0x20 || c >= 0x7f || c == '#' || c == '"' || c == '<' || c == '>' || c == '\\')
            abort();
        if (c == '%' && (i + 2 >= n || gh_hexval((unsigned char)loc[i + 1]) < 0 ||
                         gh_hexval((unsigned char)loc[i + 2]) < 0))
            abort();
    }
    return n;
}

static void check_redirects(const struct rules_http_req *r, char *out)
{
    static char loc[RULES_LOCATION_MAX + 1];
    struct rules_decision d;
    char h[300];
    size_t n, hl;

    if (rules_policy_check(pol80, r, out, &d) == GH_REASON_NONE) {
        if (d.redirect.status != 301 || rules_host_norm(r->host, r->host_len, h, sizeof(h)) != 0)
            abort();
        n = check_location(&d, loc);
        hl = strlen(h);
        if (n < 8 + hl + 6 || memcmp(loc, "https://", 8) != 0 || memcmp(loc + 8, h, hl) != 0 ||
            memcmp(loc + 8 + hl, ":8443/", 6) != 0)
            abort();
    } else if (d.redirect.status != 0) {
        abort();
    }
    if (rules_policy_check(polmv, r, out, &d) == GH_REASON_RULE && d.redirect.status != 0) {
        n = check_location(&d, loc);
        if (n >= 2 && loc[0] == '/' && loc[1] == '/')
            abort(); /* protocol-relative: another host */
        if (loc[0] == 'h' && (strncmp(loc, "https://", 8) != 0 ||
                              rules_host_norm(r->host, r->host_len, h, sizeof(h)) != 0 ||
                              strncmp(loc + 8, h, strlen(h)) != 0 || loc[8 + strlen(h)] != '/'))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *part[4] = {"", "", "", ""};
    size_t plen[4] = {0, 0, 0, 0}, i, k = 0, start = 0;
    char *buf, out[4200], sni[256];
    struct rules_http_req r;
    struct rules_decision d;
    struct sockaddr_in sa;
    char err[256];

    if (conf == NULL) {
        gh_kv_init(4096);
        conf = gh_conf_parse("f", conf_text, sizeof(conf_text) - 1, err, sizeof(err));
        pol = conf ? rules_policy_new("f", conf, &conf->services[0], err, sizeof(err)) : NULL;
        pol80 = conf ? rules_policy_new("f", conf, &conf->services[1], err, sizeof(err)) : NULL;
        polmv = conf ? rules_policy_new("f", conf, &conf->services[2], err, sizeof(err)) : NULL;
        if (pol == NULL || pol80 == NULL || polmv == NULL)
            abort();
    }
    if (size > 4096)
        return 0;
    buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    for (i = 0; i <= size && k < 4; i++)
        if (i == size || buf[i] == '\0') {
            part[k] = buf + start;
            plen[k++] = i - start;
            start = i + 1;
        }
    if (plen[1] == 0) {
        free(buf);
        return 0;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    memset(&r, 0, sizeof(r));
    r.method = part[0];
    r.method_len = plen[0];
    r.target = part[1];
    r.target_len = plen[1];
    r.host = part[2];
    r.host_len = plen[2];
    if (plen[3] >= sizeof(sni))
        plen[3] = sizeof(sni) - 1;
    memcpy(sni, part[3], plen[3]);
    sni[plen[3]] = '\0';
    r.sni = sni;
    r.source = (struct sockaddr *)&sa;
    r.header = header;
    check_redirects(&r, out);
    if (rules_policy_check(pol, &r, out, &d) == GH_REASON_NONE) {
        const char *t;
        size_t tlen;
        char again[4200];
        if (d.target != out || d.path_len > d.target_len || d.target_len > plen[1] + 1 ||
            out[0] != '/' || memchr(out, '\0', d.path_len) != NULL ||
            !dirs_ok(out, d.path_len))
            abort();
        for (i = 0; i + 1 < d.path_len; i++)
            if (out[i] == '/' && out[i + 1] == '/')
                abort();
        for (i = 0; i + 2 < d.path_len; i++)
            if (out[i] == '/' && out[i + 1] == '.' &&
                (out[i + 2] == '/' || (out[i + 2] == '.' && (i + 3 == d.path_len || out[i + 3] == '/'))))
                abort();
        /* what is forwarded normalises to itself */
        if (rules_policy_normalise(pol, out, d.target_len, again, &t, &tlen) != GH_REASON_NONE ||
            tlen != d.target_len || memcmp(again, out, tlen) != 0)
            abort();
        /* the Host it went with was allowed */
        if (plen[2] > 0) {
            char h[300];
            if (rules_host_norm(part[2], plen[2], h, sizeof(h)) != 0 ||
                !rules_policy_host_allowed(pol, h))
                abort();
        }
    }
    free(buf);
    return 0;
}
