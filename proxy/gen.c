/*
 * Generations: everything built from one config (TLS contexts, servers,
 * limits), reference-counted. A connection holds its generation from accept
 * to close, so a reload never changes the rules under a request in flight;
 * the old generation is freed with its last connection.
 */
#include "proxy_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../certs/certs.h"

static _Atomic uint64_t next_id = 1;

struct proxy_gen *proxy__gen_ref(struct proxy_gen *g)
{
    atomic_fetch_add(&g->refs, 1);
    return g;
}

static void gen_free(struct proxy_gen *g)
{
    size_t i;

    for (i = 0; i < g->nsvcs; i++) {
        size_t k;
        free(g->svcs[i].wrr);
        rules_policy_free(g->svcs[i].policy);
        free(g->svcs[i].trusted);
        proxy__hdr_rules_free(g->svcs[i].hdr);
        for (k = 0; !g->svcs[i].sni_shared && k < g->svcs[i].nsni; k++) {
            size_t m;
            for (m = 0; m < g->svcs[i].sni[k].nnames; m++)
                free(g->svcs[i].sni[k].names[m]);
            free(g->svcs[i].sni[k].names);
            SSL_CTX_free(g->svcs[i].sni[k].ctx);
            certs_ocsp_free(g->svcs[i].sni[k].ocsp);
        }
        if (!g->svcs[i].sni_shared)
            free(g->svcs[i].sni);
        SSL_CTX_free(g->svcs[i].up_tls);
        free(g->svcs[i].servers);
    }
    free(g->svcs);
    gh_conf_free(g->conf);
    free(g);
}

void proxy_gen_unref(struct proxy_gen *g)
{
    if (g != NULL && atomic_fetch_sub(&g->refs, 1) == 1)
        gen_free(g);
}

static int set_addr(struct proxy_server *s, const char *hostport)
{
    uint16_t port;

    if (gh_split_hostport(hostport, s->host, sizeof(s->host), &port) == -1)
        return -1;
    memset(&s->ss, 0, sizeof(s->ss));
    if (strchr(s->host, ':') == NULL) {
        struct sockaddr_in *a = (struct sockaddr_in *)&s->ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        if (inet_pton(AF_INET, s->host, &a->sin_addr) != 1)
            return -1;
        s->sslen = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&s->ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        if (inet_pton(AF_INET6, s->host, &a->sin6_addr) != 1)
            return -1;
        s->sslen = sizeof(*a);
    }
    snprintf(s->addr, sizeof(s->addr), "%s", hostport);
    return 0;
}

/* The weighted round-robin schedule, computed once by the smooth algorithm
 * (each step adds every weight to its server's credit, picks the largest
 * and charges it the total), so weights 5,1,1 give a a b a c a a rather
 * than a a a a a b c. */
static void build_wrr(struct proxy_service *svc)
{
    long total = 0, cur[256];
    size_t i, k, n = svc->nservers < 256 ? svc->nservers : 256;

    for (i = 0; i < n; i++) {
        total += svc->servers[i].weight;
        cur[i] = 0;
    }
    svc->nwrr = (size_t)total;
    svc->wrr = gh_calloc(svc->nwrr ? svc->nwrr : 1, sizeof(*svc->wrr));
    for (k = 0; k < svc->nwrr; k++) {
        size_t best = 0;
        for (i = 0; i < n; i++) {
            cur[i] += svc->servers[i].weight;
            if (cur[i] > cur[best])
                best = i;
        }
        cur[best] -= total;
        svc->wrr[k] = (uint16_t)best;
    }
}

/* The firewall policy (rules/policy.c) and the protocol hygiene options,
 * built once per generation. */
static int build_filters(const struct gh_conf *conf, struct proxy_service *svc,
                         const struct gh_conf_service *cs, char *err, size_t errlen)
{
    size_t i;

    svc->scope = rules_scope(cs->name);
    svc->mode = strcmp(cs->mode, "tcp") == 0   ? PROXY_MODE_TCP
                : strcmp(cs->mode, "udp") == 0 ? PROXY_MODE_UDP
                                               : PROXY_MODE_HTTP;
    svc->passthrough = svc->mode == PROXY_MODE_TCP && strcmp(cs->tls_mode, "passthrough") == 0;
    svc->udp = svc->mode == PROXY_MODE_UDP; /* no hosts or paths: datagrams (udp.c) */
    svc->strip_server = strcmp(cs->server_header, "strip") == 0;
    svc->limit_close = strcmp(cs->limit_action, "close") == 0;
    svc->upgrade_refuse = strcmp(cs->upgrade_action, "refuse") == 0;
    svc->underscore_refuse = strcmp(cs->underscore_headers, "refuse") == 0;
    svc->validate_join = strcmp(cs->validate_join_token, "on") == 0;
    for (i = 0; i < cs->allowed_upgrades.n; i++)
        if (strcmp(cs->allowed_upgrades.v[i], "websocket") == 0)
            svc->ws_allowed = 1;
    svc->trusted = gh_calloc(cs->trusted_proxies.n + 1, sizeof(*svc->trusted));
    for (i = 0; i < cs->trusted_proxies.n; i++)
        if (gh_cidr_parse(cs->trusted_proxies.v[i], &svc->trusted[svc->ntrusted++]) == -1) {
            snprintf(err, errlen, "%s:%d:%d: trusted-proxies: '%s' is not an address range",
                     conf->file, cs->trusted_proxies.loc.line, cs->trusted_proxies.loc.col,
                     cs->trusted_proxies.v[i]);
            return -1;
        }
    if (svc->mode == PROXY_MODE_HTTP && (cs->allowed_hosts.n == 0 || cs->allowed_dirs.n == 0))
        gh_log_warn("%s:%d:%d: service '%s' has no allowed-%s: it refuses every request",
                    conf->file, cs->loc.line, cs->loc.col, cs->name,
                    cs->allowed_hosts.n == 0 ? "hosts" : "dirs");
    svc->policy = rules_policy_new(conf->file, conf, cs, err, errlen);
    return svc->policy == NULL ? -1 : 0;
}

/* The context of the listener's services whose certificate names name
 * (lower case): exact names first, in the order services and certificates
 * are listed, then wildcards (one label); NULL when none does. */
static SSL_CTX *sni_find(const struct proxy_service *head, const char *name)
{
    const struct proxy_service *s;
    const char *dot = strchr(name, '.');
    size_t i, k;

    for (s = head; s != NULL; s = s->lnext)
        for (i = 0; i < s->nsni; i++)
            for (k = 0; k < s->sni[i].nnames; k++)
                if (strcmp(s->sni[i].names[k], name) == 0)
                    return s->sni[i].ctx;
    for (s = head; dot != NULL && s != NULL; s = s->lnext)
        for (i = 0; i < s->nsni; i++)
            for (k = 0; k < s->sni[i].nnames; k++)
                if (s->sni[i].names[k][0] == '*' && strcmp(s->sni[i].names[k] + 1, dot) == 0)
                    return s->sni[i].ctx;
    return NULL;
}

/* The TLS server name picks the certificate among every service on the
 * listener (the connection names its listener's first service); a name no
 * certificate answers gets the listener's default, or, with `sni-default
 * off`, the unrecognized_name alert. */
static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    const struct proxy_conn *c = SSL_get_app_data(ssl);
    const struct proxy_service *head = c != NULL ? c->lsvc : arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    int strict = strcmp(head->conf->sni_default, "off") == 0;
    char lower[256];
    size_t i, n;
    SSL_CTX *ctx;

    if (name == NULL || (head->lnext == NULL && head->nsni < 2 && !strict))
        return SSL_TLSEXT_ERR_OK;
    if ((n = strlen(name)) >= sizeof(lower))
        goto unknown;
    for (i = 0; i <= n; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    if (n > 0 && lower[n - 1] == '.')
        lower[--n] = '\0';
    if ((ctx = sni_find(head, lower)) != NULL) {
        if (ctx != SSL_get_SSL_CTX(ssl))
            SSL_set_SSL_CTX(ssl, ctx);
        return SSL_TLSEXT_ERR_OK;
    }
unknown:
    if (!strict)
        return SSL_TLSEXT_ERR_OK; /* the default certificate */
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Groups the service's certificates by the names they answer for, builds a
 * context per group (several key types in one), and installs SNI selection
 * on the default (the group of the first certificate listed). */
static int build_sni(const struct gh_conf *conf, struct proxy_service *svc,
                     const struct gh_conf_service *cs, char *err, size_t errlen)
{
    unsigned versions = 0;
    size_t i, k;
    char e[512];
    struct group {
        char key[2048];
        char **names;
        size_t nnames;
        struct certs_source src[16];
        const char *ocsp[16];
        const struct gh_conf_cert *first;
        size_t n;
    } *groups = gh_calloc(cs->certificates.n, sizeof(*groups));
    size_t ng = 0;
    int rc = -1;

    for (i = 0; i < cs->tls_versions.n; i++) {
        const char *v = cs->tls_versions.v[i];
        versions |= strcmp(v, "1.0") == 0   ? CERTS_TLS10
                    : strcmp(v, "1.1") == 0 ? CERTS_TLS11
                    : strcmp(v, "1.2") == 0 ? CERTS_TLS12
                                            : CERTS_TLS13;
    }
    for (i = 0; i < cs->certificates.n; i++) {
        const struct gh_conf_cert *cc = gh_conf_cert_find(conf, cs->certificates.v[i]);
        struct certs_source one = {cc->cert, cc->key, cc->pkcs12, cc->passphrase_file};
        char **names;
        size_t nn, len = 0;
        char key[2048];
        if (certs_names(&one, &names, &nn, e, sizeof(e)) == -1) {
            snprintf(err, errlen, "%s:%d:%d: certificate '%s': %s", conf->file, cc->loc.line,
                     cc->loc.col, cc->name, e);
            goto done;
        }
        qsort(names, nn, sizeof(*names), cmp_str);
        key[0] = '\0';
        for (k = 0; k < nn && len + strlen(names[k]) + 2 < sizeof(key); k++)
            len += (size_t)snprintf(key + len, sizeof(key) - len, "%s ", names[k]);
        for (k = 0; k < ng && strcmp(groups[k].key, key) != 0; k++)
            ;
        if (k == ng) {
            ng++;
            snprintf(groups[k].key, sizeof(groups[k].key), "%s", key);
            groups[k].names = names;
            groups[k].nnames = nn;
            groups[k].first = cc;
        } else {
            size_t m;
            for (m = 0; m < nn; m++)
                free(names[m]);
            free(names);
        }
        if (groups[k].n == 16) {
            snprintf(err, errlen, "%s:%d:%d: more than 16 certificates for the same names",
                     conf->file, cc->loc.line, cc->loc.col);
            goto done;
        }
        groups[k].ocsp[groups[k].n] = cc->ocsp_response;
        groups[k].src[groups[k].n++] = one;
    }
    svc->sni = gh_calloc(ng, sizeof(*svc->sni));
    for (k = 0; k < ng; k++) {
        struct proxy_sni *s = &svc->sni[svc->nsni++];
        s->names = groups[k].names;
        s->nnames = groups[k].nnames;
        groups[k].names = NULL;
        s->ctx = certs_server_ctx_new(groups[k].src, groups[k].n, versions, e, sizeof(e));
        if (s->ctx == NULL) {
            snprintf(err, errlen, "%s:%d:%d: certificate '%s': %s", conf->file,
                     groups[k].first->loc.line, groups[k].first->loc.col, groups[k].first->name,
                     e);
            goto done;
        }
        for (i = 0; i < groups[k].n; i++) {
            if (groups[k].ocsp[i] == NULL)
                continue;
            if (s->ocsp == NULL) {
                s->ocsp = certs_ocsp_new();
                certs_ocsp_attach(s->ctx, s->ocsp);
            }
            if (certs_ocsp_add(s->ocsp, &groups[k].src[i], groups[k].ocsp[i], e, sizeof(e)) == -1) {
                snprintf(err, errlen, "%s:%d:%d: certificate '%s': %s", conf->file,
                         groups[k].first->loc.line, groups[k].first->loc.col,
                         groups[k].first->name, e);
                goto done;
            }
        }
        for (i = 0; i < groups[k].n; i++) {
            const struct certs_source *c = &groups[k].src[i];
            long long left = certs_expiry_seconds(c);
            const char *f = c->p12 ? c->p12 : c->cert;
            if (left < 7LL * 86400)
                gh_log_err("certificate %s expires in %lld days", f, left / 86400);
            else if (left < 30LL * 86400)
                gh_log_warn("certificate %s expires in %lld days", f, left / 86400);
        }
    }
    svc->tls = svc->sni[0].ctx;
    SSL_CTX_set_tlsext_servername_callback(svc->tls, sni_cb);
    SSL_CTX_set_tlsext_servername_arg(svc->tls, svc);
    rc = 0;
done:
    for (k = 0; k < cs->certificates.n; k++)
        if (groups[k].names != NULL) {
            size_t m;
            for (m = 0; m < groups[k].nnames; m++)
                free(groups[k].names[m]);
            free(groups[k].names);
        }
    free(groups);
    return rc;
}

/* Services with the same certificates and TLS versions share one set of
 * contexts: the SNI groups, names and OCSP would be built identically, and
 * a context costs a millisecond of OpenSSL set-up (a thousand services on
 * one certificate reload in a fraction of the time). The SNI callback only
 * reads that shared set, so the first service's copy serves them all. */
static int share_sni(struct proxy_gen *g, struct proxy_service *svc,
                     const struct gh_conf_service *cs)
{
    size_t i;

    for (i = 0; &g->svcs[i] != svc; i++) {
        const struct proxy_service *o = &g->svcs[i];
        if (o->tls == NULL || o->sni_shared ||
            !gh_conf_list_equal(&o->conf->certificates, &cs->certificates) ||
            !gh_conf_list_equal(&o->conf->tls_versions, &cs->tls_versions))
            continue;
        svc->sni = o->sni;
        svc->nsni = o->nsni;
        svc->tls = o->tls;
        svc->sni_shared = 1;
        return 1;
    }
    return 0;
}

static int build_service(struct proxy_gen *g, struct proxy_service *svc,
                         const struct gh_conf_service *cs, proxy_app_resolver apps, char *err,
                         size_t errlen)
{
    const struct gh_conf *conf = g->conf;
    char e[512];
    size_t i;

    svc->conf = cs;
    svc->lidx = -1;
    svc->disabled = strcmp(cs->enabled, "off") == 0;
    svc->st = proxy__svc_stats(cs->name);
    svc->lim.max_request_line = (size_t)cs->max_request_line;
    svc->lim.max_header_size = (size_t)cs->max_header_size;
    svc->lim.max_headers = (size_t)cs->max_headers;
    svc->lim.max_chunk_ext = (size_t)cs->max_chunk_ext;
    if (build_filters(conf, svc, cs, err, errlen) == -1)
        return -1;
    if ((svc->hdr = proxy__hdr_rules_new(conf->file, cs, err, errlen)) == NULL)
        return -1;
    if (cs->certificates.n > 0 && !share_sni(g, svc, cs) &&
        build_sni(conf, svc, cs, err, errlen) == -1)
        return -1;
    if (strcmp(cs->reencrypt, "pinned") == 0) {
        /* Self-signed real servers: each one's certificate fingerprint is
         * the trust, checked after the handshake. */
        svc->up_tls = certs_client_ctx_new(NULL, e, sizeof(e));
        if (svc->up_tls == NULL) {
            snprintf(err, errlen, "%s:%d:%d: %s", conf->file, cs->loc.line, cs->loc.col, e);
            return -1;
        }
        SSL_CTX_set_verify(svc->up_tls, SSL_VERIFY_NONE, NULL);
    } else if (strcmp(cs->reencrypt, "off") != 0) {
        const struct gh_conf_ca *ca = gh_conf_ca_find(conf, cs->reencrypt);
        svc->up_tls = certs_client_ctx_new(ca->file, e, sizeof(e));
        if (svc->up_tls == NULL) {
            snprintf(err, errlen, "%s:%d:%d: ca '%s': %s", conf->file, ca->file_loc.line,
                     ca->file_loc.col, ca->name, e);
            return -1;
        }
    }
    if (cs->client_certificate != NULL && svc->up_tls != NULL) {
        const struct gh_conf_cert *cc = gh_conf_cert_find(conf, cs->client_certificate);
        struct certs_source src = {cc->cert, cc->key, cc->pkcs12, cc->passphrase_file};
        if (certs_ctx_use_pair(svc->up_tls, &src, e, sizeof(e)) == -1) {
            snprintf(err, errlen, "%s:%d:%d: certificate '%s' (client-certificate): %s",
                     conf->file, cc->loc.line, cc->loc.col, cc->name, e);
            return -1;
        }
    }
    if (cs->app != NULL) {
        struct proxy_server *s;
        char host[INET6_ADDRSTRLEN];
        svc->servers = s = gh_calloc(1, sizeof(*s));
        svc->nservers = 1;
        s->name = cs->app;
        s->weight = 1;
        if (apps == NULL || apps(cs->app, &s->ss, &s->sslen) == -1) {
            snprintf(err, errlen, "%s:%d:%d: application '%s' is not running", conf->file,
                     cs->app_loc.line, cs->app_loc.col, cs->app);
            return -1;
        }
        if (s->ss.ss_family == AF_UNIX) {
            snprintf(s->host, sizeof(s->host), "localhost");
            snprintf(s->addr, sizeof(s->addr), "unix:%s.sock", cs->app);
        } else { /* the check resolver of -t */
            inet_ntop(AF_INET, &((struct sockaddr_in *)&s->ss)->sin_addr, host, sizeof(host));
            snprintf(s->host, sizeof(s->host), "%s", host);
            snprintf(s->addr, sizeof(s->addr), "%s:%u", host,
                     ntohs(((struct sockaddr_in *)&s->ss)->sin_port));
        }
        snprintf(s->key, sizeof(s->key), "app|%s", s->addr);
        return 0; /* its statistics entry is bound at commit (proxy__gen_bind_stats) */
    }
    svc->servers = gh_calloc(cs->nservers, sizeof(*svc->servers));
    svc->nservers = cs->nservers;
    for (i = 0; i < cs->nservers; i++) {
        const struct gh_conf_server *c = &cs->servers[i];
        struct proxy_server *s = &svc->servers[i];
        s->name = c->name;
        s->weight = (long)c->weight;
        if (set_addr(s, c->addr) == -1) {
            snprintf(err, errlen, "%s:%d:%d: server '%s': bad address", conf->file, c->loc.line,
                     c->loc.col, c->name);
            return -1;
        }
        if (svc->up_tls != NULL)
            s->verify = c->verify_name ? c->verify_name : s->host;
        /* Everything that changes what a connection proves goes in the key:
         * a pooled connection or resumed session is never handed to a
         * service with other trust or another client certificate. */
        if (snprintf(s->key, sizeof(s->key), "%s|%s|%s|%s|%s", s->addr,
                     s->verify ? s->verify : "-", svc->up_tls ? cs->reencrypt : "plain",
                     cs->client_certificate ? cs->client_certificate : "-",
                     c->pin ? c->pin : "-") >= (int)sizeof(s->key)) {
            snprintf(err, errlen, "%s:%d:%d: server '%s': names too long", conf->file,
                     c->loc.line, c->loc.col, c->name);
            return -1;
        }
        s->id = proxy__server_id(s->key);
        s->maxconn = (long)c->maxconn;
        s->pin = c->pin;
        s->admin = strcmp(c->state, "drain") == 0 ? 1 : strcmp(c->state, "maint") == 0 ? 2 : 0;
        s->fall = cs->check.enabled ? (int)cs->check.fall : 3;
        s->check_port = cs->check.port ? (uint16_t)cs->check.port
                                       : (uint16_t)ntohs(s->ss.ss_family == AF_INET
                                                             ? ((struct sockaddr_in *)&s->ss)->sin_port
                                                             : ((struct sockaddr_in6 *)&s->ss)->sin6_port);
    }
    svc->sched = strcmp(cs->scheduler, "round-robin") == 0   ? 1
                 : strcmp(cs->scheduler, "source-hash") == 0 ? 2
                                                             : 0;
    build_wrr(svc);
    return 0;
}

/* The process-wide entries hold the health the running servers have, so
 * a candidate binds to them only when it becomes the running one: a
 * generation that is refused after it was built leaves no entry and no
 * server's state changed. */
void proxy__gen_bind_stats(struct proxy_gen *g)
{
    size_t i, j;

    for (i = 0; i < g->nsvcs; i++) {
        const struct gh_conf_service *cs = g->svcs[i].conf;
        for (j = 0; j < g->svcs[i].nservers; j++) {
            struct proxy_server *s = &g->svcs[i].servers[j];
            int checked = cs->app == NULL && cs->check.enabled;
            s->st = proxy__srv_stats(s->key, cs->name, s->name, s->addr,
                                     checked ? cs->check.start_up : 1);
            if (!checked)
                atomic_store(&s->st->up, 1); /* no checks: only passive holds apply */
            atomic_store(&s->st->checked, checked);
        }
    }
}

/* Services naming one listen address form its chain, in config order; the
 * first is the one a connection starts with. */
static void link_listeners(struct proxy_gen *g)
{
    size_t i, j;

    for (i = 0; i < g->nsvcs; i++) {
        struct proxy_service *s = &g->svcs[i];
        s->lhead = s;
        if (s->disabled)
            continue; /* not in any chain: nothing reaches it */
        for (j = 0; j < i; j++)
            if (!g->svcs[j].disabled && strcmp(g->svcs[j].conf->listen, s->conf->listen) == 0 &&
                g->svcs[j].udp == s->udp) { /* a UDP and a TCP port are two listeners */
                struct proxy_service *t = g->svcs[j].lhead;
                s->lhead = t;
                while (t->lnext != NULL)
                    t = t->lnext;
                t->lnext = s;
                break;
            }
    }
}

/* A conference service behind another service that trusts no proxy sees
 * every client as the front service's address: its per-source limits (PIN
 * back-off, saml-rate-per-source) would then throttle everyone together.
 * Said at -t, start and reload; the configuration stays valid. */
static const char *front_of(const struct gh_conf *conf, const char *listen)
{
    size_t j, k;

    for (j = 0; j < conf->nservices; j++)
        for (k = 0; k < conf->services[j].nservers; k++)
            if (strcmp(conf->services[j].servers[k].addr, listen) == 0)
                return conf->services[j].name;
    return NULL;
}

static void warn_untrusted_hops(const struct gh_conf *conf)
{
    const char *front;
    size_t i;

    for (i = 0; i < conf->nservices; i++) {
        const struct gh_conf_service *s = &conf->services[i];
        if (s->app == NULL || strcmp(s->app, "conference") != 0 || s->trusted_proxies.n > 0 ||
            (front = front_of(conf, s->listen)) == NULL)
            continue;
        gh_log_warn("service '%s' is a real server of service '%s' but has no trusted-proxies: "
                    "every client reaches it as %s's address, so its per-source limits (PIN "
                    "back-off, saml-rate-per-source) would hold them all back together",
                    s->name, front, front);
    }
}

/* The two ways validate-join-token and require-edge-token fail to make
 * each other's promise on one appliance: said at -t, start and reload. */
static void warn_edge_tokens(const struct gh_conf *conf)
{
    const char *edge = NULL;
    int require = strcmp(conf->require_edge_token, "on") == 0;
    size_t i;

    for (i = 0; i < conf->nservices && edge == NULL; i++)
        if (strcmp(conf->services[i].validate_join_token, "on") == 0)
            edge = conf->services[i].name;
    for (i = 0; i < conf->nservices; i++) {
        const struct gh_conf_service *s = &conf->services[i];
        if (s->app == NULL || strcmp(s->app, "conference") != 0)
            continue;
        if (edge != NULL && !require)
            gh_log_warn("service '%s' validates join tokens, but require-edge-token is off: "
                        "the conference service '%s' also answers manifest and content "
                        "requests that did not come through it", edge, s->name);
        else if (require && s->trusted_proxies.n == 0)
            gh_log_warn("require-edge-token is on, but service '%s' has no trusted-proxies: "
                        "no edge's token is passed on to it, so it refuses every manifest and "
                        "content request", s->name);
    }
}

struct proxy_gen *proxy_gen_new(struct gh_conf *conf, proxy_app_resolver apps, char *err,
                                size_t errlen)
{
    struct proxy_gen *g = gh_calloc(1, sizeof(*g));
    size_t i;

    atomic_init(&g->refs, 1);
    g->id = atomic_fetch_add(&next_id, 1);
    g->conf = conf;
    g->svcs = gh_calloc(conf->nservices, sizeof(*g->svcs));
    g->nsvcs = conf->nservices;
    for (i = 0; i < conf->nservices; i++)
        if (build_service(g, &g->svcs[i], &conf->services[i], apps, err, errlen) == -1)
            goto fail;
    link_listeners(g);
    if (proxy__check_coverage(conf, err, errlen) == -1)
        goto fail;
    warn_untrusted_hops(conf);
    warn_edge_tokens(conf);
    return g;
fail:
    g->conf = NULL; /* the caller still owns conf on failure */
    gen_free(g);
    return NULL;
}
