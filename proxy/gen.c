/*
 * Generations: everything built from one config (TLS contexts, servers,
 * limits), reference-counted. A connection holds its generation from accept
 * to close, so a reload never changes the rules under a request in flight;
 * the old generation is freed with its last connection.
 */
#include "proxy_int.h"

#include <arpa/inet.h>
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
        SSL_CTX_free(g->svcs[i].tls);
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

static int build_service(struct proxy_gen *g, struct proxy_service *svc,
                         const struct gh_conf_service *cs, proxy_app_resolver apps, char *err,
                         size_t errlen)
{
    const struct gh_conf *conf = g->conf;
    char e[512];
    size_t i;

    svc->conf = cs;
    svc->lidx = -1;
    svc->lim.max_request_line = (size_t)cs->max_request_line;
    svc->lim.max_header_size = (size_t)cs->max_header_size;
    svc->lim.max_headers = (size_t)cs->max_headers;
    svc->lim.max_chunk_ext = (size_t)cs->max_chunk_ext;
    if (cs->certificate != NULL) {
        const struct gh_conf_cert *cc = gh_conf_cert_find(conf, cs->certificate);
        svc->tls = certs_server_ctx_new(cc->cert, cc->key, e, sizeof(e));
        if (svc->tls == NULL) {
            snprintf(err, errlen, "%s:%d:%d: certificate '%s': %s", conf->file, cc->loc.line,
                     cc->loc.col, cc->name, e);
            return -1;
        }
    }
    if (strcmp(cs->reencrypt, "off") != 0) {
        const struct gh_conf_ca *ca = gh_conf_ca_find(conf, cs->reencrypt);
        svc->up_tls = certs_client_ctx_new(ca->file, e, sizeof(e));
        if (svc->up_tls == NULL) {
            snprintf(err, errlen, "%s:%d:%d: ca '%s': %s", conf->file, ca->file_loc.line,
                     ca->file_loc.col, ca->name, e);
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
        inet_ntop(AF_INET, &((struct sockaddr_in *)&s->ss)->sin_addr, host, sizeof(host));
        snprintf(s->host, sizeof(s->host), "%s", host);
        snprintf(s->addr, sizeof(s->addr), "%s:%u", host,
                 ntohs(((struct sockaddr_in *)&s->ss)->sin_port));
        snprintf(s->key, sizeof(s->key), "app|%s", s->addr);
        return 0;
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
        snprintf(s->key, sizeof(s->key), "%s|%s|%s", s->addr, s->verify ? s->verify : "-",
                 svc->up_tls ? cs->reencrypt : "plain");
    }
    return 0;
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
    return g;
fail:
    g->conf = NULL; /* the caller still owns conf on failure */
    gen_free(g);
    return NULL;
}
