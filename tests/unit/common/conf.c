/* Table-driven tests of the config parser: each hostile or mistaken input
 * must give its file:line:col and a message naming the problem. */
#include "../../../common/conf.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../common/common.h"
#include "../unit.h"

#define SVC_OK "service s {\n listen 127.0.0.1:1\n app status\n}\n"
#define UU "0f5e2a36-6c1e-4d0b-9c41-5b7a2f0e9d11"
#define IDP_HEAD(u)                                                                                \
    "identity-provider i {\n uuid " u "\n sp-certificate sp\n sp-entity-id https://m.example/sp\n" \
    " idp-sso-url https://idp.example/sso\n idp-entity-id https://idp.example\n"
#define IDP_OK                                                                                     \
    IDP_HEAD(UU) " idp-certificate c.pem\n acs-url https://m.example/api/v1/samlconsumer/" UU       \
                 "\n}\n"

#define RSVC(x) "service s {\n listen 127.0.0.1:1\n" x "}\n"
/* The location starts at column 18 of line 2. */
#define RULE_TO(u) "rules r {\n rule a redirect " u " if path exact /a\n}\n"

static const struct {
    const char *name;
    const char *text;
    const char *err; /* expected prefix after "t.conf:" */
} errs[] = {
    {"unknown top directive", "wrokers 2\n", "1:1: unknown directive 'wrokers' at top level"},
    {"unknown in service", "service s {\n listen 127.0.0.1:1\n bogus 1\n}\n",
     "3:2: unknown directive 'bogus' in a service block"},
    {"bad workers", "workers many\n", "1:9: 'workers' needs a whole number"},
    {"workers zero", "workers 0\n", "1:9: 'workers' needs a whole number"},
    {"workers too many", "workers 100000\n", "1:9:"},
    {"duplicate workers", "workers 2\nworkers 3\n", "2:1: duplicate 'workers'"},
    {"missing argument", "workers\n", "1:1: 'workers' takes 1 argument"},
    {"extra argument", "workers 1 2\n", "1:11: 'workers' takes 1 argument"},
    {"unclosed block", "service s {\n listen 127.0.0.1:1\n", "1:1: block opened here is not closed"},
    {"stray close", "}\n", "1:1: '}' without an open block"},
    {"lone open", "{\n", "1:1: '{' without a directive name"},
    {"unterminated string", "state-dir \"abc\n", "1:11: unterminated string"},
    {"bad escape", "state-dir \"a\\nb\"\n", "1:14: unknown escape"},
    {"control char", "workers \x01\n", "1:9: unexpected byte 0x01"},
    {"bare cr", "workers 2\rfoo\n", "1:10: bare carriage return"},
    {"nul byte", "workers 2\n\0", "1:1: file contains a NUL byte"},
    {"bad duration", "service s {\n listen 127.0.0.1:1\n app status\n idle-timeout 10x\n}\n",
     "4:15: 'idle-timeout' needs a duration"},
    {"duration overflow",
     "service s {\n listen 127.0.0.1:1\n app status\n idle-timeout 99999999999999999999s\n}\n",
     "4:15: 'idle-timeout' needs a duration"},
    {"client-body-timeout zero",
     "service s {\n listen 127.0.0.1:1\n app status\n client-body-timeout 0s\n}\n",
     "4:22: 'client-body-timeout' needs a duration"},
    {"duplicate keepalive-timeout",
     "service s {\n listen 127.0.0.1:1\n app status\n keepalive-timeout 2s\n"
     " keepalive-timeout 3s\n}\n",
     "5:2: duplicate 'keepalive-timeout'"},
    {"size too small", "service s {\n listen 127.0.0.1:1\n app status\n max-header-size 10\n}\n",
     "4:18: 'max-header-size' needs a size"},
    {"bad enum", "service s {\n listen 127.0.0.1:1\n app status\n scheduler random\n}\n",
     "4:12: 'scheduler' must be one of"},
    {"bad listen", "service s {\n listen localhost\n app status\n}\n", "2:9: listen needs an IP"},
    {"bad listen port", "service s {\n listen 127.0.0.1:99999\n app status\n}\n", "2:9: listen"},
    {"no listen", "service s {\n app status\n}\n", "1:1: service 's' needs 'listen'"},
    {"no target", "service s {\n listen 127.0.0.1:1\n}\n", "1:1: service 's' has no target"},
    {"both targets", "service s {\n listen 127.0.0.1:1\n app status\n server a 127.0.0.1:2\n}\n",
     "1:1: service 's' has both"},
    {"unknown app", "service s {\n listen 127.0.0.1:1\n app chat\n}\n",
     "3:6: unknown application 'chat'"},
    {"dup service", SVC_OK "service s {\n listen 127.0.0.1:2\n app status\n}\n",
     "5:9: service 's' already defined at line 1"},
    /* services may share a listener, but not a name, nor the listener's settings */
    {"shared listener, one name twice",
     "service s {\n listen 127.0.0.1:1\n allowed-hosts a.example\n app status\n}\n"
     "service t {\n listen 127.0.0.1:1\n allowed-hosts b.example A.example.\n app status\n}\n",
     "8:2: service 't' allows 'A.example.', which overlaps 'a.example' of service 's' "
     "(t.conf:3:2) on the same listener 127.0.0.1:1"},
    {"shared listener, wildcard over a name",
     "service s {\n listen 127.0.0.1:1\n allowed-hosts meet.example.com\n app status\n}\n"
     "service t {\n listen 127.0.0.1:1\n allowed-hosts *.example.com\n app status\n}\n",
     "8:2: service 't' allows '*.example.com', which overlaps 'meet.example.com'"},
    {"shared listener, other head limits",
     "service s {\n listen 127.0.0.1:1\n allowed-hosts a.example\n app status\n}\n"
     "service t {\n listen 127.0.0.1:1\n allowed-hosts b.example\n max-headers 50\n app status\n}\n",
     "7:2: service 't' shares 127.0.0.1:1 with service 's' (t.conf:2:2) but not its "
     "max-request-line, max-header-size, max-headers and max-chunk-ext"},
    /* a UDP address carries one service; a UDP and a TCP port may share one */
    {"udp listener shared",
     "service s {\n listen 127.0.0.1:1\n mode udp\n server a 127.0.0.1:2\n}\n"
     "service t {\n listen 127.0.0.1:1\n mode udp\n server a 127.0.0.1:3\n}\n",
     "7:2: service 't' listens on UDP 127.0.0.1:1 like service 's' (t.conf:2:2)"},
    {"udp check not send",
     "service s {\n listen 127.0.0.1:1\n mode udp\n server a 127.0.0.1:2\n check tls\n}\n",
     "5:2: service 's': a UDP pool is checked with send ... recv ..."},
    {"missing cert ref",
     "service s {\n listen 127.0.0.1:1\n certificate web\n app status\n}\n",
     "3:2: service 's': no certificate named 'web'"},
    {"missing ca ref",
     "service s {\n listen 127.0.0.1:1\n reencrypt verify int\n server a 127.0.0.1:2\n}\n",
     "3:2: service 's': no ca named 'int'"},
    {"reencrypt bad", "service s {\n listen 127.0.0.1:1\n reencrypt maybe\n}\n",
     "3:12: 'reencrypt' takes 'off', 'pinned' or 'verify CA-NAME'"},
    {"server bad addr", "service s {\n listen 127.0.0.1:1\n server a nowhere\n}\n", "3:11: server"},
    {"server bad weight", "service s {\n listen 127.0.0.1:1\n server a 127.0.0.1:2 weight 0\n}\n",
     "3:30: weight must be"},
    {"server unknown option",
     "service s {\n listen 127.0.0.1:1\n server a 127.0.0.1:2 backup yes\n}\n",
     "3:23: unknown server option 'backup'"},
    {"dup server", "service s {\n listen 127.0.0.1:1\n server a 127.0.0.1:2\n server a 127.0.0.1:3\n}\n",
     "4:9: server 'a' already defined at line 3"},
    {"certificate without key", "certificate c {\n cert a.pem\n}\n",
     "1:1: certificate 'c' needs both 'cert' and 'key'"},
    {"ca without file", "ca c {\n}\n", "1:1: ca 'c' needs 'file'"},
    {"certificate block missing", "certificate c\n", "1:1: 'certificate' needs a { block }"},
    {"string as directive", "\"workers\" 2\n", "1:1: a directive name must be a plain word"},
    {"service in service", "service s {\n service t {\n }\n}\n",
     "2:2: unknown directive 'service' in a service block"},
    {"idp without uuid", "identity-provider i {\n}\n",
     "1:1: identity-provider 'i' needs 'uuid'"},
    {"idp bad uuid", IDP_HEAD("0F5E2A36-6C1E-4D0B-9C41-5B7A2F0E9D11") "}\n",
     "1:1: identity-provider 'i': uuid '0F5E2A36-6C1E-4D0B-9C41-5B7A2F0E9D11' is not"},
    {"idp no idp cert", IDP_HEAD(UU) " acs-url https://m.example/api/v1/samlconsumer/" UU "\n}\n",
     "1:1: identity-provider 'i' needs 'idp-certificate'"},
    {"idp acs wrong uuid",
     IDP_HEAD(UU) " idp-certificate c.pem\n acs-url https://m.example/api/v1/samlconsumer/x\n}\n",
     "8:2: identity-provider 'i': acs-url 'https://m.example/api/v1/samlconsumer/x' is not"},
    {"idp acs http",
     IDP_HEAD(UU) " idp-certificate c.pem\n acs-url http://m.example/api/v1/samlconsumer/" UU
     "\n}\n",
     "8:2: identity-provider 'i': acs-url"},
    {"idp no acs", IDP_HEAD(UU) " idp-certificate c.pem\n}\n",
     "1:1: identity-provider 'i' needs 'acs-url' or 'acs-from-services on'"},
    {"idp sha1 refused",
     IDP_HEAD(UU) " idp-certificate c.pem\n acs-from-services on\n digest-algorithm sha1\n}\n",
     "1:1: identity-provider 'i': SHA-1 is refused unless 'allow-sha1 on'"},
    {"idp bad signature algorithm",
     IDP_HEAD(UU) " signature-algorithm dsa-sha1\n}\n", "7:22: 'signature-algorithm' must be"},
    {"idp unknown sp cert", IDP_OK "", "1:1: identity-provider 'i': no certificate named 'sp'"},
    {"group unknown member",
     "identity-provider-group g {\n identity-providers nobody\n}\n",
     "2:2: identity-provider-group 'g': no identity-provider named 'nobody'"},
    {"group empty", "identity-provider-group g {\n description x\n}\n",
     "1:1: identity-provider-group 'g' needs 'identity-providers'"},
    {"idp in service", "service s {\n listen 127.0.0.1:1\n app status\n uuid x\n}\n",
     "4:2: unknown directive 'uuid' in a service block"},
    /* issue 14: redirect https on a plain service */
    {"redirect not https", RSVC(" redirect http\n"), "3:11: 'redirect' takes 'https'"},
    {"redirect code 303", RSVC(" redirect https code 303\n"),
     "3:22: redirect code must be 301, 302, 307 or 308"},
    {"redirect code not a number", RSVC(" redirect https code x\n"),
     "3:22: redirect code must be 301, 302, 307 or 308"},
    {"redirect port 0", RSVC(" redirect https port 0\n"),
     "3:22: redirect port must be from 1 to 65535"},
    {"redirect port too big", RSVC(" redirect https port 65536\n"),
     "3:22: redirect port must be from 1 to 65535"},
    {"redirect unknown option", RSVC(" redirect https to 8443\n"),
     "3:17: unknown redirect option 'to' (code, port)"},
    {"redirect option without value", RSVC(" redirect https code\n"), "3:17: 'code' needs a value"},
    {"redirect twice", RSVC(" redirect https\n redirect https code 308\n"),
     "4:2: duplicate 'redirect'"},
    {"redirect on a tls service",
     "certificate c { cert a.pem; key a.key }\nservice s {\n listen 127.0.0.1:1\n certificate c\n"
     " redirect https\n}\n",
     "5:2: service 's': 'redirect https' is for a plain service; this one has 'certificate'"},
    {"redirect with servers", RSVC(" redirect https\n server a 127.0.0.1:2\n"),
     "3:2: service 's' answers every request with a redirect: it takes no 'server'"},
    {"redirect with app", RSVC(" app status\n redirect https\n"),
     "4:2: service 's' answers every request with a redirect: it takes no 'app'"},
    {"redirect with check", RSVC(" redirect https\n check get /h\n"),
     "4:2: 'check' does not apply to a 'redirect https' service"},
    /* rule redirect locations: $host, $path, $query, checked where they stand */
    {"location unknown name", RULE_TO("https://$hots/x"),
     "2:26: unknown '$hots' in a redirect location (known: $host, $path, $query"},
    {"location unknown name in a string", RULE_TO("\"https://x/$p\""), "2:29: unknown '$p'"},
    {"location name runs on", RULE_TO("/a$paths"), "2:20: unknown '$paths'"},
    {"location lone dollar", RULE_TO("/x$"), "2:20: unknown '$'"},
    {"location $path as the host", RULE_TO("https://$path/x"),
     "2:26: '$path' may only stand where the location's path begins"},
    {"location $path in a protocol-relative host", RULE_TO("//$path"),
     "2:20: '$path' may only stand where"},
    {"location $path after userinfo", RULE_TO("https://u@$path"), "2:28: '$path' may only stand"},
    {"location $path after a port colon", RULE_TO("https://h:$path"), "2:28: '$path' may only"},
    {"location $path in the query", RULE_TO("/login?r=$path"), "2:27: '$path' may only stand"},
    {"location $query outside the query", RULE_TO("/x/$query"),
     "2:21: '$query' may only stand after a '?'"},
    {"location too many names", RULE_TO("/$host$host$host$host$host$host$host$host"),
     "2:54: at most 7 $names in one redirect location"},
    /* one real server, one line */
    {"duplicate server address",
     "service s {\n listen 127.0.0.1:1\n server a 127.0.0.1:2\n server b 127.0.0.1:2\n}\n",
     "4:2: service 's': server 'b' has the address 127.0.0.1:2 of server 'a' (t.conf:3:2)"},
    {"duplicate server address, other spelling",
     "service s {\n listen 127.0.0.1:1\n server a [::1]:80 weight 2\n server c 127.0.0.1:80\n"
     " server b [0:0::1]:80\n}\n",
     "5:2: service 's': server 'b' has the address [0:0::1]:80 of server 'a' (t.conf:3:2)"},
    /* every name a block refers to is defined, reported where it is named */
    {"missing client-certificate",
     "service s {\n listen 127.0.0.1:1\n server a 127.0.0.1:2\n client-certificate cc\n}\n",
     "4:2: service 's': no certificate named 'cc' (client-certificate)"},
    {"client-certificate twice",
     "certificate cc { cert a.pem; key a.key }\nservice s {\n listen 127.0.0.1:1\n"
     " client-certificate cc\n client-certificate cc\n server a 127.0.0.1:2\n}\n",
     "5:2: duplicate 'client-certificate'"},
    {"missing rule set", "service s {\n listen 127.0.0.1:1\n rule-set nope\n app status\n}\n",
     "3:2: service 's': no rules named 'nope'"},
    {"missing second certificate",
     "certificate a { cert a.pem; key a.key }\nservice s {\n listen 127.0.0.1:1\n"
     " certificate a b\n app status\n}\n",
     "4:2: service 's': no certificate named 'b'"},
    {"bad allowed-dirs-case", RSVC(" app status\n allowed-dirs-case upper\n"),
     "4:20: 'allowed-dirs-case' must be one of: sensitive insensitive"},
    {"bad certificate-coverage", RSVC(" app status\n certificate-coverage maybe\n"),
     "4:23: 'certificate-coverage' must be one of: error warn"},
    {"store engine unknown", "store memcached\n", "1:7: store: 'local' or 'redis', not 'memcached'"},
    {"store local with a block", "store local {\n}\n", "1:1: 'store' takes no block"},
    {"store redis without a block", "store redis\n", "1:1: 'store' needs a { block }"},
    {"store twice", "store local\nstore local\n", "2:1: duplicate 'store' (first at line 1)"},
    {"store no argument", "store\n", "1:1: 'store' takes 1 argument"},
    {"store redis empty", "store redis {\n}\n", "1:1: store redis: 'address IP:PORT' or"},
    {"store both address and sentinels",
     "store redis {\n address 127.0.0.1:6379\n sentinels 127.0.0.1:26379\n master m\n}\n",
     "1:1: store redis: 'address IP:PORT' or"},
    {"store sentinels without master", "store redis {\n sentinels 127.0.0.1:26379\n}\n",
     "1:1: store redis: 'sentinels' needs 'master NAME'"},
    {"store address is a name", "store redis {\n address redis.internal:6379\n}\n",
     "1:1: store redis: 'address' needs an IP address and port"},
    {"store sentinel without port", "store redis {\n sentinels 127.0.0.1\n master m\n}\n",
     "2:2: store redis: each sentinel needs an IP address and port"},
    {"store user without password", "store redis {\n address 127.0.0.1:6379\n user gh\n}\n",
     "1:1: store redis: 'user' needs 'password-file'"},
    {"store timeout zero", "store redis {\n address 127.0.0.1:6379\n timeout 0ms\n}\n",
     "3:10:"},
    {"store timeout too long", "store redis {\n address 127.0.0.1:6379\n timeout 1m\n}\n",
     "3:10:"},
    {"store wait-replicas 9", "store redis {\n address 127.0.0.1:6379\n wait-replicas 9\n}\n",
     "3:16:"},
    {"store unknown directive", "store redis {\n address 127.0.0.1:6379\n host x\n}\n",
     "3:2: unknown directive 'host' in a store block"},
    {"store prefix too long",
     "store redis {\n address 127.0.0.1:6379\n prefix 0123456789012345678901234567890123\n}\n",
     "1:1: store redis: 'prefix' is at most 32 bytes"},
    {"store user too long",
     "store redis {\n address 127.0.0.1:6379\n password-file p\n"
     " user u123456789012345678901234567890123456789012345678901234567890123\n}\n",
     "1:1: store redis: 'prefix' is at most 32 bytes, 'master' and 'user' 63"},
};

TEST(conf_error_table)
{
    char err[512], want[512];
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(errs); i++) {
        size_t len = strlen(errs[i].text);
        struct gh_conf *c;
        if (strcmp(errs[i].name, "nul byte") == 0)
            len += 1;
        c = gh_conf_parse("t.conf", errs[i].text, len, err, sizeof(err));
        CHECK(c == NULL);
        gh_conf_free(c);
        snprintf(want, sizeof(want), "t.conf:%s", errs[i].err);
        if (strncmp(err, want, strlen(want)) != 0) {
            fprintf(stderr, "[%s] got \"%s\"\n  want prefix \"%s\"\n", errs[i].name, err, want);
            unit_failures++;
        }
    }
}

static const char full[] =
    "# a comment\n"
    "workers 2   # trailing comment\n"
    "state-dir \"/var/lib/gate house\"\n"
    "access-log /var/log/gh/access.log\n"
    "certificate web {\n cert /etc/gh/web.pem; key /etc/gh/web.key\n}\n"
    "ca internal { file /etc/gh/ca.pem }\n"
    "service meet-ext {\n"
    "    listen 0.0.0.0:443\n"
    "    certificate web\n"
    "    reencrypt verify internal\n"
    "    idle-timeout 40m\n"
    "    max-header-size 128k\n"
    "    server fe1 10.154.201.2:4443 weight 3 verify-name fe1.example.com\n"
    "    server fe2 10.154.201.3:4443\n"
    "    server fe3 10.154.201.3:4444\n" /* same address, another port: another server */
    "    allowed-dirs-case insensitive\n"
    "    certificate-coverage warn\n"
    "}\n"
    "service status { listen [::1]:9443; app status }\n"
    "service web80 {\n"
    "    listen 0.0.0.0:80\n"
    "    allowed-hosts meet.example.com\n"
    "    allowed-dirs /*\n"
    "    redirect https code 308 port 8443\n"
    "}\n"
    "service web8080 { listen 0.0.0.0:8080; redirect https }\n"
    "rules moves {\n"
    "    rule a redirect 301 https://$host/new$path?$query if path prefix /old\n"
    "    rule b redirect \"/$path\" if path prefix /x\n"
    "    rule c redirect https://$host$path if path prefix /y\n"
    "    rule d redirect https://[::1]:8443$path?from=$host&$query if path prefix /z\n"
    "}\n"
    "identity-provider \"Contoso staff\" {\n"
    "    description \"Contoso's ADFS\"\n"
    "    uuid " UU "\n"
    "    sp-certificate web\n"
    "    sp-entity-id https://meet.example.com/saml\n"
    "    acs-url https://meet.example.com/api/v1/samlconsumer/" UU "\n"
    "    acs-from-services on\n"
    "    idp-sso-url https://sts.contoso.com/adfs/ls/\n"
    "    idp-entity-id https://sts.contoso.com/adfs/services/trust\n"
    "    idp-certificate /etc/gh/old.pem /etc/gh/new.pem\n"
    "    display-name-attribute \"\"\n"
    "    clock-skew 2m\n"
    "}\n"
    "identity-provider-group staff { identity-providers \"Contoso staff\" }\n"
    "store redis {\n sentinels 10.0.0.1:26379 10.0.0.2:26379 [fd00::3]:26379\n master gh\n"
    " user gatehouse\n password-file /etc/gh/redis.pw\n timeout 80ms\n wait-replicas 2\n}\n";

TEST(conf_valid_and_defaults)
{
    char err[512];
    struct gh_conf *c = gh_conf_parse("t.conf", full, sizeof(full) - 1, err, sizeof(err));
    const struct gh_conf_service *s;

    CHECK(c != NULL);
    if (c == NULL) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    CHECK_EQ(c->workers, 2, "workers");
    CHECK_STR(c->state_dir, "/var/lib/gate house", "quoted string");
    CHECK_STR(c->store.engine, "redis", "store");
    CHECK_EQ(c->store.sentinels.n, 3, "store sentinels");
    CHECK_STR(c->store.sentinels.v[2], "[fd00::3]:26379", "store sentinel v6");
    CHECK_STR(c->store.master, "gh", "store master");
    CHECK_STR(c->store.prefix, "gatehouse:", "store prefix default");
    CHECK_EQ(c->store.timeout, 80, "store timeout");
    CHECK_EQ(c->store.wait_replicas, 2, "store wait-replicas");
    CHECK_EQ(c->nservices, 4, "services");
    s = gh_conf_service_find(c, "meet-ext");
    CHECK(s != NULL);
    if (s) {
        CHECK_EQ(s->idle_timeout, 40 * 60 * 1000, "idle-timeout");
        CHECK_EQ(s->max_header_size, 128 * 1024, "max-header-size");
        CHECK_EQ(s->client_header_timeout, 10000, "default client-header-timeout");
        CHECK_EQ(s->nservers, 3, "servers");
        CHECK_STR(s->allowed_dirs_case, "insensitive", "allowed-dirs-case");
        CHECK_STR(s->certificate_coverage, "warn", "certificate-coverage");
        CHECK_EQ(s->redirect_https, 0, "no redirect");
        CHECK_EQ(s->servers[0].weight, 3, "weight");
        CHECK_STR(s->servers[0].verify_name, "fe1.example.com", "verify-name");
        CHECK_STR(s->reencrypt, "internal", "reencrypt");
        CHECK_STR(s->scheduler, "least-conn", "default scheduler");
    }
    s = gh_conf_service_find(c, "status");
    CHECK(s != NULL && s->app != NULL && strcmp(s->reencrypt, "off") == 0);
    if (s) {
        CHECK_STR(s->allowed_dirs_case, "sensitive", "default allowed-dirs-case");
        CHECK_STR(s->certificate_coverage, "error", "default certificate-coverage");
    }
    s = gh_conf_service_find(c, "web80");
    CHECK(s != NULL && s->app == NULL && s->nservers == 0);
    if (s) {
        CHECK_EQ(s->redirect_https, 308, "redirect code");
        CHECK_EQ(s->redirect_https_port, 8443, "redirect port");
        CHECK_EQ(s->redirect_loc.line, 26, "redirect line");
    }
    s = gh_conf_service_find(c, "web8080");
    CHECK(s != NULL && s->redirect_https == 301 && s->redirect_https_port == 0);
    CHECK_EQ(c->ncerts, 1, "certs");
    CHECK_EQ(c->ncas, 1, "cas");
    CHECK_EQ(c->nidps, 1, "identity providers");
    if (c->nidps == 1) {
        const struct gh_conf_idp *p = gh_conf_idp_find(c, "Contoso staff");
        CHECK(p != NULL && p == gh_conf_idp_find_uuid(c, UU));
        if (p) {
            CHECK_STR(p->display_name_attribute, "", "empty display-name-attribute");
            CHECK_STR(p->signature_algorithm, "rsa-sha256", "default signature algorithm");
            CHECK_STR(p->digest_algorithm, "sha256", "default digest algorithm");
            CHECK_EQ(p->idp_certificates.n, 2, "two IdP certificates (rollover)");
            CHECK_EQ(p->clock_skew, 120000, "clock-skew");
            CHECK_EQ(p->session_timeout, 8 * 3600 * 1000, "default session-timeout");
        }
        CHECK(gh_conf_idp_group_find(c, "staff") != NULL &&
              gh_conf_idp_group_find(c, "staff")->members.n == 1);
    }
    gh_conf_free(c);
}

TEST(conf_roundtrip)
{
    char err[512];
    struct gh_conf *a, *b;
    char *t1, *t2;

    a = gh_conf_parse("t.conf", full, sizeof(full) - 1, err, sizeof(err));
    CHECK(a != NULL);
    if (a == NULL)
        return;
    t1 = gh_conf_write(a);
    b = gh_conf_parse("w.conf", t1, strlen(t1), err, sizeof(err));
    CHECK(b != NULL);
    if (b == NULL) {
        fprintf(stderr, "%s\n%s\n", err, t1);
    } else {
        t2 = gh_conf_write(b);
        CHECK_STR(t2, t1, "write(parse(write(x))) == write(x)");
        CHECK(strstr(t1, "idle-timeout 40m") != NULL);
        CHECK(strstr(t1, "    redirect https code 308 port 8443\n") != NULL);
        CHECK(strstr(t1, "    redirect https\n") != NULL);
        CHECK(strstr(t1, "    allowed-dirs-case insensitive\n") != NULL);
        CHECK(strstr(t1, "    certificate-coverage warn\n") != NULL);
        CHECK(strstr(t1, "allowed-dirs-case sensitive") == NULL); /* the default */
        CHECK(strstr(t1, "https://$host/new$path?$query") != NULL);
        CHECK(strstr(t1, "max-headers") == NULL); /* defaults left out */
        /* ... but not the timeouts: each with its effective value */
        CHECK(strstr(t1, "    client-header-timeout 10s\n") != NULL);
        CHECK(strstr(t1, "    keepalive-timeout 40m\n") != NULL);  /* meet-ext's idle */
        CHECK(strstr(t1, "    keepalive-timeout 30m\n") != NULL);  /* status: 1800s */
        CHECK(strstr(t1, "    client-body-timeout 40m\n") != NULL);
        CHECK(strstr(t1, "state-dir \"/var/lib/gate house\"") != NULL);
        free(t2);
    }
    free(t1);
    gh_conf_free(a);
    gh_conf_free(b);
}

/* The service timeouts (issue 13): idle-timeout bounds every wait; the
 * narrower ones apply where written and otherwise take the service's
 * idle-timeout; client-header, connect and queue keep their own defaults.
 * Each row: a config, the service to look at, and what it must resolve to. */
#define TSVC(x) "service s {\n listen 127.0.0.1:1\n app status\n" x "}\n"
#define TTWO                                                                                       \
    "service a {\n listen 127.0.0.1:1\n app status\n idle-timeout 20s\n}\n"                        \
    "service b {\n listen 127.0.0.1:2\n app status\n idle-timeout 90s\n server-timeout 3s\n}\n"    \
    "service c {\n listen 127.0.0.1:3\n app status\n}\n"
#define M30 (30 * 60 * 1000LL)
static const struct {
    const char *name, *text, *service;
    long long keepalive, server, tunnel, body, idle, header, connect, queue; /* ms */
} touts[] = {
    {"nothing written", TSVC(""), "s", M30, M30, M30, M30, M30, 10000, 5000, 5000},
    {"only idle-timeout 1800s (the seeds)", TSVC(" idle-timeout 1800s\n"), "s", M30, M30, M30,
     M30, M30, 10000, 5000, 5000},
    {"idle 20s, keepalive 2s", TSVC(" idle-timeout 20s\n keepalive-timeout 2s\n"), "s", 2000,
     20000, 20000, 20000, 20000, 10000, 5000, 5000},
    {"keepalive written before idle", TSVC(" keepalive-timeout 2s\n idle-timeout 20s\n"), "s",
     2000, 20000, 20000, 20000, 20000, 10000, 5000, 5000},
    {"server-timeout larger than idle is used as written",
     TSVC(" idle-timeout 20s\n server-timeout 5m\n"), "s", 20000, 300000, 20000, 20000, 20000,
     10000, 5000, 5000},
    {"keepalive-timeout alone", TSVC(" keepalive-timeout 2s\n"), "s", 2000, M30, M30, M30, M30,
     10000, 5000, 5000},
    {"server-timeout alone", TSVC(" server-timeout 60s\n"), "s", M30, 60000, M30, M30, M30,
     10000, 5000, 5000},
    {"tunnel-timeout alone", TSVC(" tunnel-timeout 1h\n"), "s", M30, M30, 3600000, M30, M30,
     10000, 5000, 5000},
    {"client-body-timeout alone", TSVC(" client-body-timeout 30s\n"), "s", M30, M30, M30, 30000,
     M30, 10000, 5000, 5000},
    {"client-header-timeout alone", TSVC(" client-header-timeout 3s\n"), "s", M30, M30, M30,
     M30, M30, 3000, 5000, 5000},
    {"connect-timeout alone", TSVC(" connect-timeout 250ms\n"), "s", M30, M30, M30, M30, M30,
     10000, 250, 5000},
    {"queue-timeout alone", TSVC(" queue-timeout 1s\n"), "s", M30, M30, M30, M30, M30, 10000,
     5000, 1000},
    {"client-header-timeout does not follow idle", TSVC(" idle-timeout 2s\n"), "s", 2000, 2000,
     2000, 2000, 2000, 10000, 5000, 5000},
    {"two services: a", TTWO, "a", 20000, 20000, 20000, 20000, 20000, 10000, 5000, 5000},
    {"two services: b", TTWO, "b", 90000, 3000, 90000, 90000, 90000, 10000, 5000, 5000},
    {"two services: c after them", TTWO, "c", M30, M30, M30, M30, M30, 10000, 5000, 5000},
};

static void check_touts(size_t i, const struct gh_conf *c, const char *what)
{
    const struct gh_conf_service *s = gh_conf_service_find(c, touts[i].service);
    char ctx[160];

    snprintf(ctx, sizeof(ctx), "%s, %s", touts[i].name, what);
    CHECK(s != NULL);
    if (s == NULL)
        return;
    CHECK_EQ(s->keepalive_timeout, touts[i].keepalive, ctx);
    CHECK_EQ(s->server_timeout, touts[i].server, ctx);
    CHECK_EQ(s->tunnel_timeout, touts[i].tunnel, ctx);
    CHECK_EQ(s->client_body_timeout, touts[i].body, ctx);
    CHECK_EQ(s->idle_timeout, touts[i].idle, ctx);
    CHECK_EQ(s->client_header_timeout, touts[i].header, ctx);
    CHECK_EQ(s->connect_timeout, touts[i].connect, ctx);
    CHECK_EQ(s->queue_timeout, touts[i].queue, ctx);
}

TEST(conf_timeout_table)
{
    char err[512], needle[128];
    size_t i, k;

    for (i = 0; i < GH_ARRAY_LEN(touts); i++) {
        struct gh_conf *a = gh_conf_parse("t.conf", touts[i].text, strlen(touts[i].text), err,
                                          sizeof(err));
        struct gh_conf *b;
        char *t;
        CHECK(a != NULL);
        if (a == NULL) {
            fprintf(stderr, "[%s] %s\n", touts[i].name, err);
            continue;
        }
        check_touts(i, a, "parsed");
        /* -p prints every timeout of every service, and what it prints
         * parses back to the same values. */
        t = gh_conf_write(a);
        for (k = 0; k < gh_conf_ntimeouts; k++) {
            const char *p = t;
            size_t n = 0;
            snprintf(needle, sizeof(needle), "\n    %s ", gh_conf_timeouts[k].name);
            while ((p = strstr(p, needle)) != NULL) {
                n++;
                p++;
            }
            CHECK_EQ(n, a->nservices, needle);
        }
        b = gh_conf_parse("w.conf", t, strlen(t), err, sizeof(err));
        CHECK(b != NULL);
        if (b != NULL)
            check_touts(i, b, "written and parsed back");
        else
            fprintf(stderr, "[%s] %s\n%s\n", touts[i].name, err, t);
        free(t);
        gh_conf_free(a);
        gh_conf_free(b);
    }
}

/* gh_conf_timeouts lists exactly the service durations; a row that follows
 * names a row before it that follows nothing; only the rows that follow
 * lack a default of their own. */
TEST(conf_timeouts_match_directives)
{
    size_t i, k, n = 0;

    for (i = 0; i < gh_conf_ndirectives; i++) {
        const struct gh_conf_directive *d = &gh_conf_directives[i];
        const struct gh_conf_timeout *t;
        if (d->ctx != GH_CTX_SERVICE || d->type != GH_T_DURATION)
            continue;
        n++;
        t = gh_conf_timeout_find(d->name);
        CHECK(t != NULL);
        if (t == NULL) {
            fprintf(stderr, "service duration %s is not in gh_conf_timeouts\n", d->name);
            continue;
        }
        CHECK((t->follows == NULL) == (d->def != NULL));
    }
    CHECK_EQ(n, gh_conf_ntimeouts, "one row per service duration");
    for (i = 0; i < gh_conf_ntimeouts; i++) {
        const char *f = gh_conf_timeouts[i].follows;
        int before = 0;
        if (f == NULL)
            continue;
        for (k = 0; k < i; k++)
            if (strcmp(gh_conf_timeouts[k].name, f) == 0 && gh_conf_timeouts[k].follows == NULL)
                before = 1;
        CHECK(before);
    }
    CHECK(gh_conf_timeout_find("drain-timeout") == NULL);
}

/* docs/config.md must document every directive of the table with its
 * default. The test runs from the repository root. */
TEST(conf_docs_cover_table)
{
    FILE *f = fopen("docs/config.md", "r");
    static char doc[262144];
    size_t n, i;
    char needle[128];

    CHECK(f != NULL);
    if (f == NULL)
        return;
    n = fread(doc, 1, sizeof(doc) - 1, f);
    doc[n] = '\0';
    fclose(f);
    for (i = 0; i < gh_conf_ndirectives; i++) {
        const struct gh_conf_directive *d = &gh_conf_directives[i];
        snprintf(needle, sizeof(needle), "### `%s`", d->name);
        if (strstr(doc, needle) == NULL) {
            fprintf(stderr, "docs/config.md lacks a section %s\n", needle);
            unit_failures++;
            continue;
        }
        if (d->def != NULL) {
            snprintf(needle, sizeof(needle), "`%s %s`", d->name, d->def);
            if (strstr(doc, needle) == NULL) {
                fprintf(stderr, "docs/config.md does not give the default %s\n", needle);
                unit_failures++;
            }
        }
    }
    /* One table of every timeout, its default first: a value, or the
     * directive it follows. */
    for (i = 0; i < gh_conf_ntimeouts; i++) {
        const struct gh_conf_timeout *t = &gh_conf_timeouts[i];
        const char *def = t->follows;
        size_t k;
        for (k = 0; def == NULL && k < gh_conf_ndirectives; k++)
            if (gh_conf_directives[k].ctx == GH_CTX_SERVICE &&
                strcmp(gh_conf_directives[k].name, t->name) == 0)
                def = gh_conf_directives[k].def;
        snprintf(needle, sizeof(needle), "| `%s` | `%s` |", t->name, def ? def : "?");
        if (strstr(doc, needle) == NULL) {
            fprintf(stderr, "docs/config.md's timeout table lacks the row %s\n", needle);
            unit_failures++;
        }
    }
}

/* Every configuration snippet in the README and docs/ parses: a fenced
 * block whose first directive is a top-level one is configuration, and a
 * reader who copies it must get a working file. */
TEST(conf_docs_snippets_parse)
{
    static const char *const files[] = {"README.md", "docs/config.md", "docs/performance.md",
                                        "docs/internals/proxy.md", "docs/internals/rules.md",
                                        "docs/internals/saml.md", "docs/internals/slides.md",
                                        "docs/internals/web-ui.md", "docs/examples/README.md",
                                        "docs/cluster.md"};
    size_t f, checked = 0;

    for (f = 0; f < GH_ARRAY_LEN(files); f++) {
        FILE *fp = fopen(files[f], "r");
        char line[1024], *block = NULL, err[512];
        size_t len = 0, cap = 0;
        int in = 0, start = 0, lineno = 0;

        if (fp == NULL)
            continue; /* not every page exists in every tree */
        while (fgets(line, sizeof(line), fp) != NULL) {
            lineno++;
            if (strncmp(line, "```", 3) == 0) {
                if (in && block != NULL) {
                    /* the first word of the first line that is not a comment */
                    char word[64] = "";
                    const char *p = block;
                    size_t i;
                    while (*p == '#' || *p == '\n' || *p == ' ') {
                        if (*p == '#')
                            p = strchr(p, '\n') ? strchr(p, '\n') : p + strlen(p);
                        else
                            p++;
                    }
                    for (i = 0; i + 1 < sizeof(word) && p[i] && p[i] != ' ' && p[i] != '\n'; i++)
                        word[i] = p[i];
                    word[i] = '\0';
                    for (i = 0; i < gh_conf_ndirectives; i++)
                        if (gh_conf_directives[i].ctx == GH_CTX_MAIN &&
                            strcmp(gh_conf_directives[i].name, word) == 0)
                            break;
                    if (i < gh_conf_ndirectives) {
                        struct gh_conf *c = gh_conf_parse(files[f], block, len, err, sizeof(err));
                        char where[128];
                        snprintf(where, sizeof(where), "%s: block at line %d", files[f], start);
                        if (c == NULL)
                            fprintf(stderr, "%s: %s\n", where, err);
                        CHECK_EQ(c != NULL, 1, where);
                        gh_conf_free(c);
                        checked++;
                    }
                }
                in = !in;
                len = 0;
                start = lineno + 1;
                continue;
            }
            if (in) {
                size_t n = strlen(line);
                if (len + n + 1 > cap) {
                    cap = (len + n + 1) * 2;
                    block = realloc(block, cap);
                }
                memcpy(block + len, line, n + 1);
                len += n;
            }
        }
        fclose(fp);
        free(block);
    }
    CHECK(checked >= 5); /* the README and config.md have at least these */
}

/* The example sites parse; tests/integration/t_y_examples.py also runs
 * `gatehouse -t` on them with their certificates. */
TEST(conf_examples_parse)
{
    DIR *d = opendir("docs/examples");
    struct dirent *e;
    size_t checked = 0;

    CHECK(d != NULL);
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char path[512], err[512];
        struct gh_conf *c;
        if (n < 6 || strcmp(e->d_name + n - 5, ".conf") != 0)
            continue;
        snprintf(path, sizeof(path), "docs/examples/%s", e->d_name);
        c = gh_conf_load(path, err, sizeof(err));
        if (c == NULL)
            fprintf(stderr, "%s\n", err);
        CHECK_EQ(c != NULL, 1, path);
        gh_conf_free(c);
        checked++;
    }
    closedir(d);
    CHECK(checked >= 3); /* the reverse proxy, the Edge pool, Pexip */
}
