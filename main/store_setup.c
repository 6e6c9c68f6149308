/*
 * The shared store from the configuration: store local (the process's own
 * tables) or store redis { ... } (a Redis primary, by address or through
 * Sentinel). Read at start; a reload that changes it says the change waits
 * for a restart, since every connection and record lives in it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/common.h"
#include "../common/conf.h"
#include "../store/store.h"
#include "main_int.h"

/* The password: one line of a file only its owner may read. */
static int read_password(const char *file, char *out, size_t cap, char *err, size_t errlen)
{
    struct stat sb;
    size_t n = 0;
    char *text;

    if (stat(file, &sb) == -1) {
        snprintf(err, errlen, "store redis: password-file %s: %s", file, strerror(errno));
        return -1;
    }
    if (sb.st_mode & 077) {
        snprintf(err, errlen, "store redis: password-file %s is readable by others (chmod 600)",
                 file);
        return -1;
    }
    text = gh_read_file_max(file, 4096, &n);
    if (text == NULL) {
        snprintf(err, errlen, "store redis: password-file %s: %s", file, strerror(errno));
        return -1;
    }
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    if (n == 0 || n >= cap || memchr(text, '\n', n) != NULL || memchr(text, '\0', n) != NULL) {
        gh_wipe(text, n);
        free(text);
        snprintf(err, errlen, "store redis: password-file %s: one line of 1 to %zu bytes", file,
                 cap - 1);
        return -1;
    }
    memcpy(out, text, n);
    out[n] = '\0';
    gh_wipe(text, n);
    free(text);
    return 0;
}

int main_store_conf(const struct gh_conf *c, struct store_conf *k, char *err, size_t errlen)
{
    const struct gh_conf_store *s = &c->store;
    char e[768];
    size_t i;

    memset(k, 0, sizeof(*k));
    if (strcmp(s->engine, "redis") != 0) {
        k->engine = STORE_LOCAL;
        return 0;
    }
    k->engine = STORE_REDIS;
    if (s->address != NULL)
        snprintf(k->address, sizeof(k->address), "%s", s->address);
    for (i = 0; i < s->sentinels.n && i < STORE_MAX_SENTINELS; i++)
        snprintf(k->sentinels[i], sizeof(k->sentinels[i]), "%s", s->sentinels.v[i]);
    k->nsentinels = (int)i;
    if (s->master != NULL)
        snprintf(k->master, sizeof(k->master), "%s", s->master);
    if (s->user != NULL)
        snprintf(k->user, sizeof(k->user), "%s", s->user);
    snprintf(k->prefix, sizeof(k->prefix), "%s", s->prefix);
    k->timeout_ms = s->timeout;
    k->durable_replicas = (int)s->wait_replicas;
    if (s->password_file != NULL &&
        read_password(s->password_file, k->password, sizeof(k->password), e, sizeof(e)) == -1) {
        /* where the block is, as for every configuration error */
        snprintf(err, errlen, "%s:%d:%d: %s", c->file, s->loc.line, s->loc.col, e);
        return -1;
    }
    return 0;
}

struct store *main_store_attach(const struct gh_conf *c, char *err, size_t errlen)
{
    struct store_conf k;
    struct store *s;

    if (main_store_conf(c, &k, err, errlen) == -1)
        return NULL;
    s = store_new(&k, err, errlen);
    gh_wipe(k.password, sizeof(k.password));
    if (s != NULL)
        store_use(s);
    return s;
}

struct store *main_store_open(const struct gh_conf *c, char *err, size_t errlen)
{
    struct store *s = main_store_attach(c, err, errlen);

    if (s == NULL)
        return NULL;
    if (strcmp(store_engine_name(s), "redis") == 0) {
        /* One question now, so the log says at start whether it answers;
         * an answer or not, the appliance starts (it recovers by itself). */
        const struct gh_conf_store *b = &c->store;
        char buf[8];
        enum store_status st = store_sync_get("\x01probe", 6, buf, sizeof(buf), NULL, NULL, 0);
        if (st == STORE_OK || st == STORE_ABSENT)
            gh_log_info("store redis: %s answers", b->sentinels.n ? "the master" : b->address);
        else
            gh_log_warn("store redis: %s does not answer yet: sign-ins and sessions answer 503 "
                        "until it does", b->sentinels.n ? "no master found" : b->address);
        store_thread_done();
    }
    return s;
}

static struct store_conf started;
static int have_started;

int main_store_check(const struct gh_conf *c, int running, char *err, size_t errlen)
{
    struct store_conf k;
    char e[512];
    int rc;

    if (!running) /* gatehouse -t: the password file must be there and private */
        return main_store_conf(c, &k, err, errlen) == -1 ? -1 : (gh_wipe(&k, sizeof(k)), 0);
    rc = main_store_conf(c, &k, e, sizeof(e));
    if (!have_started) {
        started = k;
        have_started = 1;
    } else if (rc == -1) {
        gh_log_warn("%s: the running store stays", e);
    } else if (memcmp(&k, &started, sizeof(k)) != 0) {
        gh_log_warn("a changed 'store' takes effect on restart: the running one stays");
    }
    gh_wipe(&k, sizeof(k));
    return 0;
}
