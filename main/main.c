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

/* The configuration text: the file, or the embedded default. */
static char *conf_text(size_t *len, char *err, size_t errlen)
{
    if (conf_path != NULL)
        return gh_conf_read(conf_path, len, err, errlen);
    *len = strlen(main_default_conf);
    return gh_strdup(main_default_conf);
}

static struct gh_conf *parse_text(const char *text, size_t len, char *err, size_t errlen)
{
    struct gh_conf *c = gh_conf_parse(conf_path ? conf_path : "(default)", text, len, err, errlen);

    if (c != NULL && conf_path == NULL &&
        certs_ensure_default(c->state_dir, main_default_sans, err, errlen) == -1) {
        gh_conf_free(c);
        return NULL;
    }
    return c;
}

static struct gh_conf *load(char *err, size_t errlen)
{
    size_t len;
    char *text = conf_text(&len, err, errlen);
    struct gh_conf *c;

    if (text == NULL)
        return NULL;
    c = parse_text(text, len, err, errlen);
    free(text);
    return c;
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

/* One reload at a time: SIGHUP and the admin application both come here.
 * running_version is the version of the text the running generation was
 * built from, which a failed reload after a hand edit leaves behind the
 * file's (the admin UI says so). */
static pthread_mutex_t reload_mu = PTHREAD_MUTEX_INITIALIZER;
static char running_version[17];

/* Under reload_mu: text becomes the running configuration, all modules or
 * none. write, when set, puts the text in the file once every module has
 * prepared and before any commits. */
static enum webui_apply_result reload_text(const char *text, size_t len,
                                           int (*write)(void *ctx, char *err, size_t errlen),
                                           void *ctx, char *err, size_t errlen)
{
    struct gh_conf *c = parse_text(text, len, err, errlen);
    struct main_cand k;

    if (c == NULL || main_cand_build(c, text, len, MAIN_CAND_RUN, &k, err, errlen) == -1)
        return WEBUI_APPLY_REFUSED;
    if (write != NULL && write(ctx, err, errlen) == -1) {
        main_cand_abort(&k);
        return WEBUI_APPLY_NOT_WRITTEN;
    }
    memcpy(running_version, k.version, sizeof(running_version));
    main_cand_commit(&k, apply_log_level);
    webui_note_running(running_version, NULL, NULL);
    return WEBUI_APPLIED;
}

/* The admin application's changes: its text, its file write. */
static enum webui_apply_result apply_hook(const char *text, size_t len,
                                          int (*write)(void *ctx, char *err, size_t errlen),
                                          void *ctx, char *err, size_t errlen)
{
    enum webui_apply_result r;

    pthread_mutex_lock(&reload_mu);
    r = reload_text(text, len, write, ctx, err, errlen);
    if (r == WEBUI_APPLIED)
        main_cluster_changed(text, len);
    pthread_mutex_unlock(&reload_mu);
    if (r == WEBUI_APPLIED)
        gh_log_info("configuration changed by the admin application (version %s)",
                    running_version);
    else
        gh_log_err("admin change refused, the running configuration stays: %s", err);
    return r;
}

/* SIGHUP: the file as it is now. A refusal leaves the previous generation
 * running whole; the log, the audit log and the admin UI say which version
 * runs and why the file's does not. */
static void reload(void)
{
    char err[1024] = "", tried[17] = "", running[17];
    enum webui_apply_result r = WEBUI_APPLY_REFUSED;
    const char *what = conf_path ? conf_path : "(default)";
    size_t len;
    char *text;

    pthread_mutex_lock(&reload_mu);
    text = conf_text(&len, err, sizeof(err));
    if (text != NULL) {
        webui_version(text, len, tried);
        r = reload_text(text, len, NULL, NULL, err, sizeof(err));
        if (r == WEBUI_APPLIED)
            main_cluster_changed(text, len);
        free(text);
    }
    memcpy(running, running_version, sizeof(running));
    if (r != WEBUI_APPLIED)
        webui_note_running(running, tried[0] ? tried : "unreadable", err);
    pthread_mutex_unlock(&reload_mu);
    if (r == WEBUI_APPLIED) {
        gh_log_info("configuration reloaded (version %s)", running);
        webui_audit("(SIGHUP)", "system", "", "reload", what, "", running, "ok");
        return;
    }
    gh_log_err("reload refused, previous configuration stays: %s (version %s keeps running)", err,
               running);
    webui_audit_why("(SIGHUP)", "system", "", "reload", what, tried, running, "failed", err);
}

/* The cluster's version (cluster_conf.c): written to the file as part of
 * the one pipeline, like an admin change. */
struct file_write {
    const char *text;
    size_t len;
};

static int write_conf(void *ctx, char *err, size_t errlen)
{
    const struct file_write *f = ctx;

    if (gh_write_file(conf_path, f->text, f->len, 0600, 1) == -1) {
        snprintf(err, errlen, "%s: %s", conf_path, strerror(errno));
        return -1;
    }
    return 0;
}

static int cluster_apply(const char *text, size_t len, char *err, size_t errlen)
{
    struct file_write f = {text, len};
    enum webui_apply_result r;

    webui_file_lock(); /* the admin application's order: the file, then the reload */
    pthread_mutex_lock(&reload_mu);
    r = reload_text(text, len, write_conf, &f, err, errlen);
    pthread_mutex_unlock(&reload_mu);
    webui_file_unlock();
    if (r == WEBUI_APPLIED) {
        gh_log_info("configuration changed by the cluster (version %s)", running_version);
        webui_audit("(cluster)", "system", "", "reload", conf_path, "", running_version, "ok");
    }
    return r == WEBUI_APPLIED ? 0 : -1;
}

static struct webui_hooks webui_hooks = {proxy_metrics, apply_hook, NULL, main_cluster_json};

static int run(void)
{
    char err[1024];
    struct apps_hooks hooks = {status_hook, proxy_metrics, proxy_log_security_app};
    struct gh_conf *c;
    struct main_cand k;
    long long drain_ms;
    char *text;
    int workers;
    size_t i, len;

    main_signals_block();
    text = conf_text(&len, err, sizeof(err));
    c = text ? parse_text(text, len, err, sizeof(err)) : NULL;
    if (c == NULL)
        gh_fatal("%s", err);
    apply_log_level(c);
    if (gh_log_open(c->error_log) == -1)
        gh_fatal("error-log %s: %s", c->error_log, strerror(errno));
    gh_kv_init((size_t)c->source_table_size); /* changing its size needs a restart */
    gh_kv_rec_init((size_t)c->session_table_size);
    if (main_store_open(c, err, sizeof(err)) == NULL)
        gh_fatal("%s", err);
    if (proxy_persist_keys_load(c, err, sizeof(err)) == -1)
        gh_fatal("%s", err);
    if (proxy_persist_keys_schedule(c) == -1)
        gh_fatal("the persistence key rotation did not start");
    if (saml_global_init() == -1)
        gh_fatal("the XML security libraries did not start");
    if (apps_open(c, err, sizeof(err)) == -1)
        gh_fatal("%s", err);
    webui_hooks.conf_path = conf_path;
    if (webui_configure(&webui_hooks, c, err, sizeof(err)) == -1)
        gh_fatal("admin: %s", err);
    if (apps_start(&hooks) == -1)
        gh_fatal("built-in applications did not start");
    workers = (int)c->workers;
    drain_ms = c->drain_timeout;
    for (i = 0; i < c->nservices; i++)
        gh_log_info("service %s on %s%s", c->services[i].name, c->services[i].listen,
                    c->services[i].certificate ? " (TLS)" : "");
    main_cluster_prepare(c);
    /* The start builds the same candidate as every reload. */
    if (main_cand_build(c, text, len, MAIN_CAND_RUN, &k, err, sizeof(err)) == -1)
        gh_fatal("%s", err);
    memcpy(running_version, k.version, sizeof(running_version));
    main_cand_commit(&k, NULL);
    webui_note_running(running_version, NULL, NULL);
    if (proxy_start(workers) == -1)
        gh_fatal("workers did not start");
    {
        struct main_cluster_hooks ch = {cluster_apply};
        if (main_cluster_start(conf_path, text, len, &ch) == -1)
            gh_fatal("the cluster configuration did not start");
    }
    free(text);
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
            main_cluster_stop();
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
        struct main_cand k;
        size_t len;
        char *text = conf_text(&len, err, sizeof(err));
        struct gh_conf *c = text ? parse_text(text, len, err, sizeof(err)) : NULL;
        if (c == NULL) {
            fprintf(stderr, "%s\n", err);
            free(text);
            return 1;
        }
        if (print) {
            char *t = gh_conf_write(c);
            fputs(t, stdout);
            free(t);
        }
        if (!check) {
            gh_conf_free(c);
            free(text);
            return 0;
        }
        /* The candidate a reload would build, without the listeners. */
        if (saml_global_init() == -1) {
            gh_conf_free(c);
            free(text);
            return 1;
        }
        if (main_cand_build(c, text, len, MAIN_CAND_CHECK, &k, err, sizeof(err)) == -1) {
            fprintf(stderr, "%s\n", err);
            free(text);
            return 1;
        }
        main_cand_abort(&k);
        free(text);
        fprintf(stderr, "%s: configuration ok\n", conf_path ? conf_path : "(default)");
        return 0;
    }
    return run();
}
