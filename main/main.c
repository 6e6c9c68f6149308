/*
 * gatehouse: arguments, start-up, the signal loop and reload.
 *
 *   gatehouse                 run the embedded default topology on loopback
 *   gatehouse -c FILE         run FILE
 *   gatehouse -t [-c FILE]    check the configuration (files included), exit 0/1
 *   gatehouse -p [-c FILE]    print the configuration in canonical form
 *   gatehouse certs default DIR   create a throwaway CA and server certificate
 *   gatehouse saml ...        identity-provider helpers (saml_cmd.c)
 *   gatehouse meeting ...     virtual meeting rooms (meeting_cmd.c)
 *   gatehouse join URI ...    join a meeting and decrypt its slides (join_cmd.c)
 *   gatehouse admin ...       users and API tokens of the admin application (admin_cmd.c)
 */
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../apps/apps.h"
#include "../certs/certs.h"
#include "../common/common.h"
#include "../common/conf.h"
#include "../common/kv.h"
#include "../proxy/proxy.h"
#include "../saml/saml.h"
#include "../slides/slides.h"
#include "../web-ui/webui.h"
#include "main_int.h"

static const char *conf_path; /* NULL: the embedded default */
static volatile int draining;

static void usage(FILE *f)
{
    fprintf(f, "usage: gatehouse [-c FILE] [-t] [-p] [-v]\n"
               "       gatehouse certs default DIR\n"
               "       gatehouse certs ca --out PREFIX [--cn NAME] [--rsa BITS] [--days N]\n"
               "       gatehouse certs server --ca PREFIX --out PREFIX --cn NAME [--san LIST]\n"
               "                              [--rsa BITS] [--days N]\n"
               "       gatehouse certs selfsigned --out PREFIX --cn NAME [--san LIST] ...\n"
               "       gatehouse certs csr --out PREFIX --cn NAME [--san LIST] [--rsa BITS]\n"
               "       gatehouse certs list [-c FILE]\n"
               "       gatehouse saml uuid | metadata [-c FILE] NAME | import METADATA ...\n"
               "       gatehouse meeting create ALIAS [options] | list | end ALIAS | delete ALIAS\n"
               "       gatehouse join URI --key KEY --server https://HOST:PORT [--pin PIN] ...\n"
               "       gatehouse admin user add NAME --role ROLE | user list | token add NAME\n"
               "  PREFIX names PREFIX.pem (or .csr) and PREFIX.key; LIST is like\n"
               "  DNS:meet.example.com,IP:192.0.2.10; keys are ECDSA P-256 unless --rsa\n"
               "  -c FILE  configuration file (default: the embedded loopback topology)\n"
               "  -t       check the configuration and exit 0 (ok) or 1\n"
               "  -p       print the configuration in canonical form and exit\n"
               "  -v       print the version\n");
}

static struct gh_conf *load(char *err, size_t errlen)
{
    struct gh_conf *c;

    if (conf_path != NULL)
        return gh_conf_load(conf_path, err, errlen);
    c = gh_conf_parse("(default)", main_default_conf, strlen(main_default_conf), err, errlen);
    if (c != NULL && certs_ensure_default(c->state_dir, main_default_sans, err, errlen) == -1) {
        gh_conf_free(c);
        return NULL;
    }
    return c;
}

/* In check mode applications are not started; any known name resolves. */
static int check_resolver(const char *name, struct sockaddr_storage *ss, socklen_t *len)
{
    (void)name;
    memset(ss, 0, sizeof(*ss));
    ss->ss_family = AF_INET;
    *len = sizeof(struct sockaddr_in);
    return 0;
}

static struct gh_conf *load_path(const char *path, char *err, size_t errlen)
{
    conf_path = path;
    return load(err, errlen);
}

static void status_hook(struct apps_status *st)
{
    struct proxy_stats ps;

    proxy_stats_get(&ps);
    st->workers = ps.workers;
    st->healthy_workers = ps.healthy_workers;
    st->conns_active = ps.conns_active;
    st->conns_total = ps.conns_total;
    st->requests = ps.requests;
    st->refused = ps.refused;
    st->generation = ps.generation;
    st->healthy = !draining && ps.workers > 0 && ps.healthy_workers == ps.workers;
}

static void apply_log_level(const struct gh_conf *c)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    int i;

    for (i = 0; i < 4; i++)
        if (strcmp(c->log_level, names[i]) == 0)
            gh_log_level = i;
}

/* One reload at a time: SIGHUP and the admin application both come here. */
static pthread_mutex_t reload_mu = PTHREAD_MUTEX_INITIALIZER;

static int reload_locked(char *err, size_t errlen)
{
    struct gh_conf *c = load(err, errlen);
    struct proxy_gen *g;

    if (c == NULL)
        return -1;
    if (proxy_persist_keys_load(c, err, errlen) == -1) {
        gh_conf_free(c);
        return -1;
    }
    if (apps_configure(c, err, errlen) == -1) {
        gh_conf_free(c);
        return -1;
    }
    webui_reconfigure(c); /* the admin session policy */
    g = proxy_gen_new(c, apps_resolve, err, errlen);
    if (g == NULL) {
        gh_conf_free(c);
        return -1;
    }
    if (proxy_install(g, err, errlen) == -1) {
        proxy_gen_unref(g);
        return -1;
    }
    proxy_persist_keys_schedule(c); /* c lives with the installed generation */
    return 0;
}

static int reload_with_err(char *err, size_t errlen)
{
    int rc;

    pthread_mutex_lock(&reload_mu);
    rc = reload_locked(err, errlen);
    pthread_mutex_unlock(&reload_mu);
    if (rc == -1)
        gh_log_err("reload refused, previous configuration stays: %s", err);
    else
        gh_log_info("configuration reloaded");
    return rc;
}

static void reload(void)
{
    char err[1024];

    reload_with_err(err, sizeof(err));
}

/* Every certificate block loads (key matches, chain in order, valid now),
 * used by a service or not: a block added for later must not hide a
 * broken pair until the day a service names it. */
struct rooms_check {
    const struct gh_conf *c;
    char *err;
    size_t errlen;
    int bad;
};

static void room_group(const char *alias, const char *group, void *arg)
{
    struct rooms_check *rc = arg;

    if (rc->bad || group == NULL || group[0] == '\0' || gh_conf_idp_group_find(rc->c, group))
        return;
    snprintf(rc->err, rc->errlen,
             "%s/conference/meetings.db: room '%s' names identity-provider-group '%s', which "
             "the configuration does not define (nobody could join it by SSO)",
             rc->c->state_dir, alias, group);
    rc->bad = 1;
}

/* The rooms of the state folder against the groups of this configuration:
 * a group removed while a room still names it fails -t. */
static int check_rooms(const struct gh_conf *c, char *err, size_t errlen)
{
    struct rooms_check rc = {c, err, errlen, 0};
    char dir[1100];

    snprintf(dir, sizeof(dir), "%s/conference", c->state_dir);
    if (slides_rooms_scan(dir, room_group, &rc, err, errlen) == -1)
        return -1;
    return rc.bad ? -1 : 0;
}

static int check_certificates(const struct gh_conf *c, char *err, size_t errlen)
{
    size_t i;

    for (i = 0; i < c->ncerts; i++) {
        const struct gh_conf_cert *cc = &c->certs[i];
        struct certs_source src = {cc->cert, cc->key, cc->pkcs12, cc->passphrase_file};
        X509 *x = NULL;
        EVP_PKEY *k = NULL;
        char e[768];
        if (certs_load_keypair(&src, &x, &k, e, sizeof(e)) == -1) {
            snprintf(err, errlen, "%s:%d:%d: certificate '%s': %s", c->file, cc->loc.line,
                     cc->loc.col, cc->name, e);
            return -1;
        }
        X509_free(x);
        EVP_PKEY_free(k);
    }
    return 0;
}

/* What `gatehouse -t` checks, on text the admin application is about to
 * write: the model, the SAML keys, and a proxy generation built and thrown
 * away (certificates, CAs, rules). */
static int validate_text(const char *text, size_t len, char *err, size_t errlen)
{
    struct gh_conf *c = gh_conf_parse(conf_path ? conf_path : "(default)", text, len, err, errlen);
    struct saml_sp *sp;
    struct proxy_gen *g;

    if (c == NULL)
        return -1;
    if (check_certificates(c, err, errlen) == -1) {
        gh_conf_free(c);
        return -1;
    }
    sp = saml_sp_new(c, err, errlen);
    if (sp == NULL) {
        gh_conf_free(c);
        return -1;
    }
    saml_sp_unref(sp);
    g = proxy_gen_new(c, check_resolver, err, errlen);
    if (g == NULL) {
        gh_conf_free(c); /* on failure the model stays the caller's */
        return -1;
    }
    proxy_gen_unref(g);
    return 0;
}

static struct webui_hooks webui_hooks = {proxy_metrics, validate_text, reload_with_err, NULL};

static int run(void)
{
    char err[1024];
    struct apps_hooks hooks = {status_hook, proxy_metrics, proxy_log_security_app};
    struct gh_conf *c;
    struct proxy_gen *g;
    long long drain_ms;
    int workers;
    size_t i;

    main_signals_block();
    c = load(err, sizeof(err));
    if (c == NULL)
        gh_fatal("%s", err);
    apply_log_level(c);
    if (gh_log_open(c->error_log) == -1)
        gh_fatal("error-log %s: %s", c->error_log, strerror(errno));
    gh_kv_init((size_t)c->source_table_size); /* changing its size needs a restart */
    gh_kv_rec_init((size_t)c->session_table_size);
    if (proxy_persist_keys_load(c, err, sizeof(err)) == -1)
        gh_fatal("%s", err);
    if (proxy_persist_keys_schedule(c) == -1)
        gh_fatal("the persistence key rotation did not start");
    if (saml_global_init() == -1)
        gh_fatal("the XML security libraries did not start");
    if (apps_configure(c, err, sizeof(err)) == -1)
        gh_fatal("%s", err);
    webui_hooks.conf_path = conf_path;
    if (webui_configure(&webui_hooks, c, err, sizeof(err)) == -1)
        gh_fatal("admin: %s", err);
    if (apps_start(&hooks) == -1)
        gh_fatal("built-in applications did not start");
    workers = (int)c->workers;
    drain_ms = c->drain_timeout;
    g = proxy_gen_new(c, apps_resolve, err, sizeof(err));
    if (g == NULL)
        gh_fatal("%s", err);
    for (i = 0; i < c->nservices; i++)
        gh_log_info("service %s on %s%s", c->services[i].name, c->services[i].listen,
                    c->services[i].certificate ? " (TLS)" : "");
    if (proxy_install(g, err, sizeof(err)) == -1)
        gh_fatal("%s", err);
    if (proxy_start(workers) == -1)
        gh_fatal("workers did not start");
    gh_log_info("gatehouse %s ready (pid %d, %s)", GH_VERSION, (int)getpid(),
                conf_path ? conf_path : "embedded default topology");
    for (;;) {
        int sig = main_signals_wait();
        switch (sig) {
        case SIGHUP:
            gh_log_info("SIGHUP: reloading %s", conf_path ? conf_path : "the default");
            reload();
            break;
        case SIGUSR1:
            gh_log_info("SIGUSR1: reopening logs");
            proxy_reopen_logs();
            break;
        default:
            gh_log_info("signal %d: draining (at most %lld ms)", sig, drain_ms);
            draining = 1;
            proxy_drain(drain_ms);
            apps_stop();
            webui_stop();
            gh_kv_fini();
            gh_kv_rec_fini();
            saml_global_fini();
            certs_tickets_wipe();
            proxy_persist_wipe();
            gh_log_info("stopped");
            return 0;
        }
    }
}

/* gatehouse certs ...: generation and inventory. */
static int certs_cmd(int argc, char **argv)
{
    struct certs_req r = {NULL, NULL, 0, 825};
    const char *out = NULL, *ca = NULL, *conf = NULL;
    char err[1024], a[1100], b[1100], c[1100], d[1100];
    const char *cmd = argc > 2 ? argv[2] : "";
    long v;
    int i, rc;

    if (main_help_asked(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "default") == 0 && argc == 4) {
        if (certs_ensure_default(argv[3], main_default_sans, err, sizeof(err)) == -1)
            goto fail;
        return 0;
    }
    for (i = 3; i < argc; i++) {
        const char *o = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "-c") == 0 && val)
            conf = val;
        else if (strcmp(o, "--out") == 0 && val)
            out = val;
        else if (strcmp(o, "--ca") == 0 && val)
            ca = val;
        else if (strcmp(o, "--cn") == 0 && val)
            r.cn = val;
        else if (strcmp(o, "--san") == 0 && val)
            r.sans = val;
        else if (strcmp(o, "--rsa") == 0 && val && gh_parse_long(val, 1, 8192, &v) == 0)
            r.rsa_bits = (int)v;
        else if (strcmp(o, "--days") == 0 && val && gh_parse_long(val, 1, 3650, &v) == 0)
            r.days = (int)v;
        else {
            fprintf(stderr, "gatehouse certs: bad or incomplete option '%s'\n", o);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (strcmp(cmd, "list") == 0) {
        struct gh_conf *cf;
        size_t k;
        conf_path = conf;
        cf = load(err, sizeof(err));
        if (cf == NULL)
            goto fail;
        printf("name\tsubject\tSANs\tissuer\tkey\tnot after\tdays left\n");
        for (k = 0; k < cf->ncerts; k++) {
            char line[2048];
            const struct gh_conf_cert *cc = &cf->certs[k];
            struct certs_source src = {cc->cert, cc->key, cc->pkcs12, cc->passphrase_file};
            certs_describe(&src, line, sizeof(line));
            printf("%s\t%s\n", cf->certs[k].name, line);
        }
        gh_conf_free(cf);
        return 0;
    }
    if (out == NULL) {
        fprintf(stderr, "gatehouse certs %s: --out PREFIX is required\n", cmd);
        return 2;
    }
    snprintf(a, sizeof(a), "%s.pem", out);
    snprintf(b, sizeof(b), "%s.key", out);
    if (strcmp(cmd, "ca") == 0) {
        if (r.cn == NULL)
            r.cn = "gatehouse internal CA";
        if (r.days == 825)
            r.days = 3650;
        rc = certs_gen_ca(a, b, &r, err, sizeof(err));
    } else if (strcmp(cmd, "server") == 0) {
        if (ca == NULL) {
            fprintf(stderr, "gatehouse certs server: --ca PREFIX is required\n");
            return 2;
        }
        snprintf(c, sizeof(c), "%s.pem", ca);
        snprintf(d, sizeof(d), "%s.key", ca);
        rc = certs_gen_server(c, d, a, b, &r, err, sizeof(err));
    } else if (strcmp(cmd, "selfsigned") == 0) {
        rc = certs_gen_selfsigned(a, b, &r, err, sizeof(err));
    } else if (strcmp(cmd, "csr") == 0) {
        snprintf(a, sizeof(a), "%s.csr", out);
        rc = certs_gen_csr(a, b, &r, err, sizeof(err));
    } else {
        usage(stderr);
        return 2;
    }
    if (rc == -1)
        goto fail;
    printf("%s\n%s\n", a, b);
    return 0;
fail:
    fprintf(stderr, "gatehouse certs: %s\n", err);
    return 1;
}

int main(int argc, char **argv)
{
    int opt, check = 0, print = 0;

    if (argc >= 2 && strcmp(argv[1], "certs") == 0)
        return certs_cmd(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "saml") == 0)
        return main_saml_cmd(argc, argv, load_path);
    if (argc >= 2 && strcmp(argv[1], "meeting") == 0)
        return main_meeting_cmd(argc, argv, load_path);
    if (argc >= 2 && strcmp(argv[1], "join") == 0)
        return main_join_cmd(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "admin") == 0)
        return main_admin_cmd(argc, argv, load_path);
    if (argc >= 2 && main_help_asked(argc, argv)) {
        usage(stdout);
        return 0;
    }
    while ((opt = getopt(argc, argv, "c:tpvh")) != -1) {
        switch (opt) {
        case 'c':
            conf_path = optarg;
            break;
        case 't':
            check = 1;
            break;
        case 'p':
            print = 1;
            break;
        case 'v':
            printf("gatehouse %s\n", GH_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (check || print) {
        char err[1024];
        struct gh_conf *c = load(err, sizeof(err));
        struct proxy_gen *g;
        if (c == NULL) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        if (print) {
            char *t = gh_conf_write(c);
            fputs(t, stdout);
            free(t);
        }
        if (check) {
            struct saml_sp *sp;
            if (saml_global_init() == -1) {
                gh_conf_free(c);
                return 1;
            }
            if (check_certificates(c, err, sizeof(err)) == -1) {
                fprintf(stderr, "%s\n", err);
                gh_conf_free(c);
                return 1;
            }
            sp = saml_sp_new(c, err, sizeof(err));
            if (sp == NULL) {
                fprintf(stderr, "%s\n", err);
                gh_conf_free(c);
                return 1;
            }
            saml_sp_unref(sp);
            if (check_rooms(c, err, sizeof(err)) == -1) {
                fprintf(stderr, "%s\n", err);
                gh_conf_free(c);
                return 1;
            }
            if (c->slides_kek_file != NULL &&
                slides_kek_check(c->slides_kek_file, err, sizeof(err)) == -1) {
                fprintf(stderr, "slides-kek-file: %s\n", err);
                gh_conf_free(c);
                return 1;
            }
            g = proxy_gen_new(c, check_resolver, err, sizeof(err));
            if (g == NULL) {
                fprintf(stderr, "%s\n", err);
                gh_conf_free(c);
                return 1;
            }
            proxy_gen_unref(g);
            fprintf(stderr, "%s: configuration ok\n", conf_path ? conf_path : "(default)");
        } else {
            gh_conf_free(c);
        }
        return 0;
    }
    return run();
}
