/*
 * The cluster's configuration (store redis { share-config on }). Every
 * appliance's file has two parts: what is its own (where its state and
 * logs are, its workers, the store block that says how it reaches the
 * cluster: LOCAL below) and everything else, the shared part: services,
 * certificates, rule sets, identity providers, rooms. The shared part is
 * the cluster's, published in the shared store with a sequence number:
 *
 *   config-head        "SEQ VERSION CHUNKS LENGTH" (VERSION: 16 hex digits
 *                      of the SHA-256 of the shared text)
 *   config:SEQ:I       the text, in chunks of at most CHUNK bytes
 *   config-claim:SEQ   set only if absent: who publishes SEQ
 *   member:SLOT        "NAME RUNNING SEQ STATE [WHY]" of each appliance,
 *                      refreshed every POLL_MS, gone MEMBER_TTL_MS after
 *
 * A change made on an appliance (the admin application, a SIGHUP) whose
 * shared part differs from the cluster's is published as the next
 * sequence number; a thread on every appliance looks every POLL_MS and
 * applies a newer one: its own part, then the cluster's text, through the
 * same pipeline as every reload (parsed once, every module prepared, the
 * file written, all committed, or none). An appliance that cannot apply it
 * (say, a certificate file it does not have) keeps running what it ran and
 * says why in its member record, its log and its audit log, and tries it
 * again every RETRY_MS and at a reload. A starting appliance takes the
 * cluster's version; it publishes its own only when the store holds none
 * (and a running one gives its version again when the store lost them
 * all). A change is published only onto the version it was made on: of
 * two changes made on two appliances at once, the one that claims the
 * next sequence number first is the cluster's, and the other appliance
 * takes it and logs (and audits) that its own change was replaced; so
 * does an appliance whose change was made on a version that is no longer
 * the newest, or that has not run the newest (a refused one).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "../common/common.h"
#include "../common/conf.h"
#include "../store/store.h"
#include "../web-ui/webui.h"
#include "main_int.h"

#define POLL_MS 2000
#define CHUNK 1000
#define MAX_TEXT (512 * 1024)
#define TEXT_TTL_MS (30LL * 86400 * 1000)
#define CLAIM_TTL_MS 30000 /* a publisher that died between claim and head blocks no longer */
#define MEMBER_TTL_MS 10000
#define SLOTS 64

/* ---- the thread ---- */

enum member_state {
    M_IN_STEP,  /* runs the cluster's version */
    M_APPLYING, /* a newer one is being read or applied */
    M_REFUSED,  /* the newest could not be applied here: the previous runs */
    M_AWAY,     /* the store does not answer, or holds no usable head: what runs stays */
    M_PENDING,  /* a change made here waits to be published */
};
static const char *const state_words[] = {"in-step", "applying", "refused", "store-away",
                                          "publishing"};

#define RETRY_MS 30000 /* a refused version is tried again this often (and at a SIGHUP) */
#define SEQ_MAX (1LL << 60)

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    int share, running, stopping;
    struct main_cluster_hooks hooks;
    char name[64];
    char conf_path[1024];
    /* the poller's own (no lock) */
    int slot;              /* member:SLOT is ours; -1: none yet */
    long long other_claim; /* the sequence another appliance claimed before ours; 0: none */
    /* under mu */
    uint64_t retry_at;     /* a refused version is tried again from then */
    long long seq;         /* the cluster's sequence number this appliance runs, or tried */
    long long running_seq; /* the one it runs (a refused newer one is only tried) */
    char version[17];      /* of the shared part that runs here */
    char *running_text;    /* owned: that shared part, given again if the store lost it */
    char publish[17];      /* a local change's shared version to publish; "": none */
    char *publish_text;    /* owned: its text */
    long long publish_base; /* the sequence it was made on */
    int publish_if_none;   /* publish only if the store holds no version (the start's) */
    enum member_state st;
    char why[256];
} cl = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void version_of(const char *t, size_t n, char out[17])
{
    webui_version(t, n, out);
}

static int kget(const char *key, char *buf, size_t cap, size_t *n)
{
    int64_t ttl;
    enum store_status st = store_sync_get(key, strlen(key), buf, cap - 1, n, &ttl, 0);

    if (st == STORE_OK) {
        buf[*n] = '\0';
        return 0;
    }
    return st == STORE_ABSENT ? 1 : -1;
}

/* The head: 0 with its fields, 1 none, -1 the store did not answer, -2 it
 * holds something that is not a head (logged). */
static int read_head(long long *seq, char ver[17], long long *chunks, long long *len)
{
    char buf[128];
    size_t n;
    int rc = kget("config-head", buf, sizeof(buf), &n);

    if (rc != 0)
        return rc;
    if (sscanf(buf, "%lld %16s %lld %lld", seq, ver, chunks, len) != 4 || *seq <= 0 ||
        *seq >= SEQ_MAX || strlen(ver) != 16 || *chunks < 0 || *len < 0 || *len > MAX_TEXT ||
        *chunks != (*len + CHUNK - 1) / CHUNK) {
        gh_log_err("cluster config: the store's config-head is not one: %.60s", buf);
        return -2;
    }
    return 0;
}

static int read_text(long long seq, long long chunks, long long len, const char *want,
                     char **out)
{
    char *t = gh_calloc(1, (size_t)len + 1), key[64], ver[17];
    long long i;
    size_t got = 0;

    for (i = 0; i < chunks; i++) {
        size_t n = 0;
        snprintf(key, sizeof(key), "config:%lld:%lld", seq, i);
        if (kget(key, t + got, (size_t)len - got + 1, &n) != 0 || got + n > (size_t)len) {
            free(t);
            return -1;
        }
        got += n;
    }
    version_of(t, got, ver);
    if (got != (size_t)len || strcmp(ver, want) != 0) {
        free(t);
        return -1;
    }
    *out = t;
    return 0;
}

/* Publishes text as sequence seq: claimed first, the chunks, then the head
 * (a reader never sees a head whose text is not complete). 0, 1 another
 * appliance claimed seq first, -1 the store failed. A claim of our own
 * (an earlier try that failed half-way) is ours to go on with. */
static int publish(long long seq, const char *text, size_t len, const char *ver)
{
    char key[64], head[128], who[80];
    long long i, chunks = ((long long)len + CHUNK - 1) / CHUNK;
    enum store_status st;
    size_t n;

    snprintf(key, sizeof(key), "config-claim:%lld", seq);
    st = store_sync_set(key, strlen(key), cl.name, strlen(cl.name), CLAIM_TTL_MS,
                        STORE_NX | STORE_DURABLE);
    if (st == STORE_EXISTS && (kget(key, who, sizeof(who), &n) != 0 || strcmp(who, cl.name) != 0))
        return 1;
    if (st != STORE_OK && st != STORE_EXISTS)
        return -1;
    for (i = 0; i < chunks; i++) {
        size_t off = (size_t)i * CHUNK, m = len - off < CHUNK ? len - off : CHUNK;
        snprintf(key, sizeof(key), "config:%lld:%lld", seq, i);
        if (store_sync_set(key, strlen(key), text + off, m, TEXT_TTL_MS, STORE_DURABLE) !=
            STORE_OK)
            return -1;
    }
    snprintf(head, sizeof(head), "%lld %s %lld %zu", seq, ver, chunks, len);
    return store_sync_set("config-head", 11, head, strlen(head), TEXT_TTL_MS, STORE_DURABLE) ==
                   STORE_OK
               ? 0
               : -1;
}

/* This appliance's part of its file now, and the cluster's text after it. */
static char *combine(const char *shared, size_t slen, size_t *out_len, char *err, size_t errlen)
{
    struct gh_sbuf local = {0}, mine = {0}, all = {0};
    size_t len = 0;
    char *text = gh_conf_read(cl.conf_path, &len, err, errlen);

    if (text == NULL)
        return NULL;
    if (main_cluster_split(text, len, &local, &mine, err, errlen) == -1) {
        free(text);
        free(local.p);
        free(mine.p);
        return NULL;
    }
    free(text);
    gh_sbuf_append(&all, local.p ? local.p : "", local.len);
    gh_sbuf_append(&all, shared, slen);
    free(local.p);
    free(mine.p);
    *out_len = all.len;
    return all.p ? all.p : gh_strdup("");
}

/* Under cl.mu. */
static void set_state(enum member_state st, const char *why)
{
    cl.st = st;
    gh_strlcpy(cl.why, why ? why : "", sizeof(cl.why));
}

/* Under cl.mu: text (taken) is what runs here now, as sequence seq. */
static void now_running(long long seq, const char *ver, char *text)
{
    cl.seq = cl.running_seq = seq;
    memcpy(cl.version, ver, sizeof(cl.version));
    free(cl.running_text);
    cl.running_text = text;
}

/* Under cl.mu: a change made here and not published is replaced by the
 * cluster's version (it was made on an older one, or a newer one ran
 * since): said, never silently lost. */
static void drop_pending(const char *why, const char *theirs)
{
    if (cl.publish[0] == '\0')
        return;
    gh_log_warn("cluster config: a change made here (version %s) is not published: %s; the "
                "cluster's version %s replaces it", cl.publish, why, theirs);
    webui_audit_why("(cluster)", "system", "", "cluster-publish", cl.publish, cl.publish, theirs,
                    "replaced", why);
    cl.publish[0] = '\0';
    free(cl.publish_text);
    cl.publish_text = NULL;
}

/* Called without cl.mu: the apply takes the file's and the reload's locks. */
static void adopt(long long seq, const char *ver, long long chunks, long long len)
{
    char *shared = NULL, *text = NULL, err[512] = "";
    size_t tlen = 0;
    int r = -1;

    pthread_mutex_lock(&cl.mu);
    set_state(M_APPLYING, NULL);
    pthread_mutex_unlock(&cl.mu);
    if (read_text(seq, chunks, len, ver, &shared) == -1) {
        pthread_mutex_lock(&cl.mu);
        set_state(M_AWAY, "the cluster's text could not be read whole");
        pthread_mutex_unlock(&cl.mu);
        return;
    }
    {
        /* The shared part never holds an appliance's own statements: one
         * that does (written into the store by hand) would set them. */
        struct gh_sbuf l = {0}, sh = {0};
        if (main_cluster_split(shared, (size_t)len, &l, &sh, err, sizeof(err)) == 0 && l.len > 0)
            snprintf(err, sizeof(err), "the cluster's version holds statements that are each "
                     "appliance's own (%.40s...)", l.p);
        free(sh.p);
        free(l.p);
    }
    if (err[0] == '\0')
        text = combine(shared, (size_t)len, &tlen, err, sizeof(err));
    if (text != NULL)
        r = cl.hooks.apply(text, tlen, err, sizeof(err));
    free(text);
    pthread_mutex_lock(&cl.mu);
    if (r == 0) {
        drop_pending("a newer version of the cluster came in first", ver);
        now_running(seq, ver, shared);
        shared = NULL;
        set_state(M_IN_STEP, NULL);
        gh_log_info("cluster config: version %s (sequence %lld) runs here", ver, seq);
    } else {
        cl.seq = seq; /* tried: again at RETRY_MS or a SIGHUP, or a newer one */
        cl.retry_at = gh_now_ms() + RETRY_MS;
        set_state(M_REFUSED, err);
        gh_log_err("cluster config: version %s (sequence %lld) refused here, the previous "
                   "configuration stays: %s", ver, seq, err);
        webui_audit_why("(cluster)", "system", "", "cluster-apply", ver, cl.version, cl.version,
                        "failed", err);
    }
    pthread_mutex_unlock(&cl.mu);
    free(shared);
}

/* The member record, written without cl.mu (rec is a copy). A slot is
 * claimed only if absent, and ours is checked before it is refreshed, so
 * two appliances never share one. */
static void write_member(const char *rec)
{
    char key[32], buf[512];
    size_t n, nl = strlen(cl.name);
    int i;

    if (cl.slot >= 0) {
        snprintf(key, sizeof(key), "member:%d", cl.slot);
        if (kget(key, buf, sizeof(buf), &n) == 0 && n > nl && memcmp(buf, cl.name, nl) == 0 &&
            buf[nl] == ' ' &&
            store_sync_set(key, strlen(key), rec, strlen(rec), MEMBER_TTL_MS, STORE_XX) ==
                STORE_OK)
            return;
        cl.slot = -1; /* expired meanwhile (the store was away), or taken: claimed again */
    }
    for (i = 0; i < SLOTS && cl.slot < 0; i++) {
        enum store_status st;
        snprintf(key, sizeof(key), "member:%d", i);
        st = store_sync_set(key, strlen(key), rec, strlen(rec), MEMBER_TTL_MS, STORE_NX);
        if (st == STORE_OK)
            cl.slot = i;
        else if (st != STORE_EXISTS)
            return; /* the store is away (its own warning said so): the next turn claims */
        else if (kget(key, buf, sizeof(buf), &n) == 0 && n > nl &&
                 memcmp(buf, cl.name, nl) == 0 && buf[nl] == ' ')
            cl.slot = i; /* ours from before a restart */
    }
    if (cl.slot < 0)
        gh_log_warn("cluster config: all %d member slots are taken: this appliance is not "
                    "listed", SLOTS);
}

static void turn(void)
{
    long long seq = 0, chunks = 0, len = 0;
    char ver[17] = "", pub[17] = "";
    int h = read_head(&seq, ver, &chunks, &len), p = 0, adopt_it = 0;
    char *ptext = NULL;

    if (h < 0) {
        pthread_mutex_lock(&cl.mu);
        if (cl.st != M_REFUSED)
            set_state(M_AWAY, h == -1 ? "the store does not answer"
                                      : "the store's config-head is not one (see the log)");
        pthread_mutex_unlock(&cl.mu);
        return;
    }
    pthread_mutex_lock(&cl.mu);
    if (cl.publish_if_none && h == 0) { /* a starting appliance takes the cluster's version */
        cl.publish[0] = '\0';
        free(cl.publish_text);
        cl.publish_text = NULL;
    }
    cl.publish_if_none = 0;
    if (cl.publish[0] != '\0' && h == 0 && seq != cl.publish_base)
        drop_pending("it was made on another version than the cluster's newest", ver);
    if (cl.publish[0] != '\0' && h == 0 && strcmp(cl.publish, ver) == 0)
        drop_pending("the cluster has it already", ver);
    if (cl.publish[0] == '\0' && h == 1 && cl.running_text != NULL && cl.seq > 0) {
        /* the store lost every version (a restart without persistence):
         * what runs here is given again */
        memcpy(cl.publish, cl.version, sizeof(cl.publish));
        cl.publish_text = gh_strdup(cl.running_text);
    }
    if (cl.publish[0] != '\0') {
        memcpy(pub, cl.publish, sizeof(pub));
        ptext = cl.publish_text;
        cl.publish_text = NULL;
        cl.publish[0] = '\0';
    }
    pthread_mutex_unlock(&cl.mu);
    if (ptext != NULL) {
        long long want = h == 1 ? 1 : seq + 1;
        p = publish(want, ptext, strlen(ptext), pub);
        if (p == 1)
            cl.other_claim = want; /* its head comes, or its claim expires (CLAIM_TTL_MS) */
        else
            cl.other_claim = 0;
        pthread_mutex_lock(&cl.mu);
        if (p == 0) {
            now_running(want, pub, ptext);
            ptext = NULL;
            set_state(M_IN_STEP, NULL);
            gh_log_info("cluster config: this appliance's change published as version %s "
                        "(sequence %lld)", pub, want);
        } else if (cl.publish[0] == '\0') {
            /* tried again at the next turn (unless a newer change made
             * here meanwhile is to go instead) */
            memcpy(cl.publish, pub, sizeof(cl.publish));
            cl.publish_text = ptext;
            ptext = NULL;
            set_state(M_PENDING, p == 1 ? "another appliance is publishing the same sequence"
                                        : "the store did not take it yet");
        }
        pthread_mutex_unlock(&cl.mu);
        free(ptext);
        return;
    }
    pthread_mutex_lock(&cl.mu);
    if (h == 0 && strcmp(ver, cl.version) == 0) {
        /* the same text (under a newer number, or after the store lost some) */
        cl.seq = cl.running_seq = seq;
        if (cl.st != M_PENDING)
            set_state(M_IN_STEP, NULL);
    } else if (h == 0 && (seq != cl.seq || (cl.st == M_REFUSED && gh_now_ms() >= cl.retry_at))) {
        if (seq < cl.seq)
            gh_log_warn("cluster config: the cluster's sequence went back from %lld to %lld "
                        "(the store lost versions): its version %s is taken", cl.seq, seq, ver);
        adopt_it = 1;
    }
    pthread_mutex_unlock(&cl.mu);
    if (adopt_it)
        adopt(seq, ver, chunks, len);
}

static void *poller(void *arg)
{
    char rec[512];
    int i;

    (void)arg;
    pthread_mutex_lock(&cl.mu);
    while (!cl.stopping) {
        struct timespec ts;
        pthread_mutex_unlock(&cl.mu);
        turn();
        pthread_mutex_lock(&cl.mu);
        snprintf(rec, sizeof(rec), "%s %s %lld %s %s", cl.name,
                 cl.version[0] ? cl.version : "-", cl.seq, state_words[cl.st], cl.why);
        pthread_mutex_unlock(&cl.mu);
        for (i = 0; rec[i]; i++)
            if (rec[i] == '\n' || rec[i] == '\r')
                rec[i] = ' ';
        write_member(rec);
        pthread_mutex_lock(&cl.mu);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += POLL_MS / 1000;
        ts.tv_nsec += (long)(POLL_MS % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (!cl.stopping)
            pthread_cond_timedwait(&cl.cv, &cl.mu, &ts);
    }
    pthread_mutex_unlock(&cl.mu);
    store_thread_done();
    return NULL;
}

int main_cluster_check(const struct gh_conf *c, char *err, size_t errlen)
{
    const char *n = c->store.name;
    size_t i;

    if (strcmp(c->store.share_config, "on") == 0 && strcmp(c->store.engine, "redis") != 0) {
        snprintf(err, errlen, "%s:%d:%d: share-config on needs store redis", c->file,
                 c->store.loc.line, c->store.loc.col);
        return -1;
    }
    for (i = 0; n != NULL && n[i]; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') ||
              (n[i] >= '0' && n[i] <= '9') || n[i] == '-' || n[i] == '.' || n[i] == '_'))
            break;
    if (n != NULL && (n[i] != '\0' || i == 0 || i > 63)) {
        snprintf(err, errlen, "%s:%d:%d: store name '%s': 1 to 63 letters, digits, '-', '.' "
                 "or '_'", c->file, c->store.loc.line, c->store.loc.col, n);
        return -1;
    }
    return 0;
}

void main_cluster_prepare(const struct gh_conf *c)
{
    cl.share = strcmp(c->store.share_config, "on") == 0;
    if (c->store.name != NULL)
        gh_strlcpy(cl.name, c->store.name, sizeof(cl.name));
    else if (gethostname(cl.name, sizeof(cl.name) - 1) != 0 || cl.name[0] == '\0')
        gh_strlcpy(cl.name, "appliance", sizeof(cl.name));
}

int main_cluster_start(const char *conf_path, const char *text, size_t len,
                       const struct main_cluster_hooks *hooks)
{
    struct gh_sbuf local = {0}, shared = {0};
    char err[256];

    if (!cl.share || conf_path == NULL)
        return 0;
    if (main_cluster_split(text, len, &local, &shared, err, sizeof(err)) == -1) {
        gh_log_err("cluster config: %s", err);
        return -1;
    }
    cl.hooks = *hooks;
    cl.slot = -1;
    gh_strlcpy(cl.conf_path, conf_path, sizeof(cl.conf_path));
    /* What runs here, published only when the store holds no version. */
    version_of(shared.p ? shared.p : "", shared.len, cl.version);
    memcpy(cl.publish, cl.version, sizeof(cl.publish));
    cl.publish_if_none = 1;
    cl.publish_text = shared.p ? shared.p : gh_strdup("");
    cl.running_text = gh_strdup(cl.publish_text);
    cl.seq = cl.running_seq = cl.publish_base = 0;
    free(local.p);
    {
        pthread_condattr_t ca; /* the turns are timed on the monotonic clock */
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&cl.cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    pthread_mutex_lock(&cl.mu);
    if (pthread_create(&cl.th, NULL, poller, NULL) != 0) {
        pthread_mutex_unlock(&cl.mu);
        return -1;
    }
    cl.running = 1;
    pthread_mutex_unlock(&cl.mu);
    gh_log_info("cluster config: shared through the store as appliance %s", cl.name);
    return 0;
}

void main_cluster_changed(const char *text, size_t len)
{
    struct gh_sbuf local = {0}, shared = {0};
    char err[256], ver[17];

    if (!cl.share || main_cluster_split(text, len, &local, &shared, err, sizeof(err)) == -1) {
        free(local.p);
        free(shared.p);
        return;
    }
    version_of(shared.p ? shared.p : "", shared.len, ver);
    pthread_mutex_lock(&cl.mu);
    if (cl.running && strcmp(ver, cl.version) != 0) {
        memcpy(cl.publish, ver, sizeof(cl.publish));
        free(cl.publish_text);
        cl.publish_text = shared.p ? shared.p : gh_strdup("");
        shared.p = NULL;
        /* made on what runs here: published only if that is still the
         * cluster's newest */
        cl.publish_base = cl.running_seq;
        cl.publish_if_none = 0;
    }
    cl.retry_at = 0; /* a reload: a refused version is tried again too */
    if (cl.running)
        pthread_cond_signal(&cl.cv); /* now, not at the next turn */
    pthread_mutex_unlock(&cl.mu);
    free(local.p);
    free(shared.p);
}

void main_cluster_stop(void)
{
    int was;

    pthread_mutex_lock(&cl.mu);
    was = cl.running;
    cl.stopping = 1;
    if (was)
        pthread_cond_signal(&cl.cv);
    pthread_mutex_unlock(&cl.mu);
    if (!was)
        return;
    pthread_join(cl.th, NULL);
    pthread_mutex_lock(&cl.mu);
    if (cl.publish[0] != '\0')
        gh_log_warn("cluster config: stopping with a change made here (version %s) not "
                    "published", cl.publish);
    cl.running = 0;
    free(cl.publish_text);
    free(cl.running_text);
    cl.publish_text = cl.running_text = NULL;
    pthread_mutex_unlock(&cl.mu);
}

/* {"appliances":[...],"cluster":{...}} for the admin application. */
char *main_cluster_json(size_t *len)
{
    struct gh_sbuf o = {0};
    long long seq = 0, chunks, tlen;
    char ver[17] = "", buf[512], key[32];
    int i, first = 1, h;
    size_t n;

    pthread_mutex_lock(&cl.mu);
    h = cl.running;
    pthread_mutex_unlock(&cl.mu);
    gh_sbuf_printf(&o, "{\"shared\":%s", h ? "true" : "false");
    if (h) {
        h = read_head(&seq, ver, &chunks, &tlen);
        gh_sbuf_printf(&o, ",\"cluster\":");
        if (h == 0) {
            gh_sbuf_printf(&o, "{\"sequence\":%lld,\"version\":", seq);
            gh_json_str(&o, ver);
            gh_sbuf_printf(&o, "}");
        } else {
            gh_sbuf_printf(&o, "null");
        }
        gh_sbuf_printf(&o, ",\"this\":");
        gh_json_str(&o, cl.name);
        gh_sbuf_printf(&o, ",\"appliances\":[");
        for (i = 0; i < SLOTS; i++) {
            char name[64], run[20], st[20];
            long long s;
            int used = 0;
            snprintf(key, sizeof(key), "member:%d", i);
            if (kget(key, buf, sizeof(buf), &n) != 0 ||
                sscanf(buf, "%63s %19s %lld %19s %n", name, run, &s, st, &used) < 4)
                continue;
            gh_sbuf_printf(&o, "%s{\"name\":", first ? "" : ",");
            gh_json_str(&o, name);
            gh_sbuf_printf(&o, ",\"running\":");
            gh_json_str(&o, run);
            gh_sbuf_printf(&o, ",\"sequence\":%lld,\"state\":", s);
            gh_json_str(&o, st);
            gh_sbuf_printf(&o, ",\"why\":");
            gh_json_str(&o, used > 0 && (size_t)used <= n ? buf + used : "");
            gh_sbuf_printf(&o, "}");
            first = 0;
        }
        gh_sbuf_printf(&o, "]");
    }
    gh_sbuf_printf(&o, "}");
    *len = o.len;
    return o.p;
}
