/*
 * The persistence-cookie keys that persist.c signs and checks cookies with.
 * They live in STATE-DIR/persist/cookie.key (mode 0600, folder 0700), so a
 * cookie outlives a restart or a reload of the process that issued it and
 * the seeds' MS-WSMAN clients are not re-balanced by maintenance.
 *
 * Two keys. The current one signs new cookies; the previous one still
 * checks cookies (whose clients get a new cookie under the current key) until
 * the next rotation drops it. Rotation runs every persistence-key-rotation
 * (24h) on a thread of its own: it writes the new file (temp, fsync, rename)
 * and only then installs the keys, so a crash never leaves cookies signed
 * with a key the disk does not hold. Since a rotation drops the previous key,
 * the period is stretched to the longest cookie timeout of any service: a
 * cookie signed just before one rotation has expired before the next.
 *
 * Workers never wait for the file or the rotation: per cookie they read a
 * version counter (an atomic load) and, when it moved, copy the keys under a
 * mutex held only for that copy, then re-key their own HMAC contexts.
 *
 * The file is text, parsed strictly:
 *
 *   gatehouse-cookie-keys 1
 *   current CREATED HEX
 *   previous CREATED HEX       (absent until the first rotation)
 *
 * CREATED is the key's birth in seconds since the epoch, HEX the 32-byte key
 * as 64 lower-case hex digits; each line ends in one LF and nothing follows.
 * Anything else is corrupt: at start a fresh key replaces it (cookies issued
 * before stop working, and the log says so); at reload the running keys are
 * written back. A file group or others may read, a symbolic link or anything
 * but a plain file is refused: start fails, a reload is refused.
 *
 * Where the keys are kept is behind struct key_store (the file, here).
 * Key material is never logged and is wiped when replaced.
 *
 * In a cluster (store redis) the keys are the cluster's: they are also kept
 * in the shared store, so a cookie from one appliance holds at every other.
 * The cluster's keys win: an appliance adopts them, at start and whenever
 * they change. It gives the cluster its own only when the store has none
 * (set only if absent, so two starting at once agree), or when its own are
 * the rotation of the cluster's (a failover lost the rotation's write). The rotation thread looks again every FOLLOW_MS. A
 * rotation is done by one appliance, the one that takes the rotation lock
 * in the store; the others adopt its keys when they next look. With the
 * store away nothing rotates (keys made alone would split the cluster):
 * each appliance keeps the keys it has, from its file at a start.
 */
#include "proxy_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "../store/store.h"

#define HEADER "gatehouse-cookie-keys 1\n"
#define FILE_MAX 4096
#define MAX_CREATED 253402300799LL /* 9999-12-31T23:59:59Z */
#define RETRY_S 60                 /* a rotation that could not be written is tried again */
#define WAKE_MS 60000              /* the wall clock is looked at again at least this often */
#define FOLLOW_MS 5000             /* a cluster's keys are looked at again this often */
#define SHARED_KEY "persist-cookie-keys"
#define LOCK_KEY "persist-cookie-rotating"
#define LOCK_MS 30000

/* ---- the file format: no I/O, tested by tests/unit/proxy/persist_key.c ---- */

/* One line "WORD CREATED HEX\n" at *pp (line number n, for messages). */
static int parse_line(const char **pp, const char *end, const char *word, int n,
                      struct proxy_persist_key *k, char *why, size_t whylen)
{
    const char *p = *pp, *lf = memchr(p, '\n', (size_t)(end - p));
    size_t wl = strlen(word), i;
    long long t = 0;
    int digits = 0;

    if (lf == NULL) {
        snprintf(why, whylen, "truncated: line %d has no end", n);
        return -1;
    }
    if ((size_t)(lf - p) < wl + 1 || memcmp(p, word, wl) != 0 || p[wl] != ' ') {
        snprintf(why, whylen, "line %d: expected '%s CREATED KEY'", n, word);
        return -1;
    }
    p += wl + 1;
    for (; p < lf && *p >= '0' && *p <= '9'; p++, digits++) {
        if (digits == 1 && t == 0)
            break; /* a leading zero */
        t = t * 10 + (*p - '0');
        if (t > MAX_CREATED)
            break;
    }
    if (digits == 0 || t > MAX_CREATED || p == lf || *p != ' ') {
        snprintf(why, whylen, "line %d: the creation time is not a number of seconds", n);
        return -1;
    }
    p++;
    if (lf - p != 2 * PROXY_PERSIST_KEY_LEN) {
        snprintf(why, whylen, "line %d: the key is %ld hex digits, not %d", n, (long)(lf - p),
                 2 * PROXY_PERSIST_KEY_LEN);
        return -1;
    }
    for (i = 0; i < PROXY_PERSIST_KEY_LEN; i++) {
        int hi = gh_hexval((unsigned char)p[2 * i]), lo = gh_hexval((unsigned char)p[2 * i + 1]);
        /* lower case only: one key, one spelling, so two files compare as text */
        if (hi < 0 || lo < 0 || (p[2 * i] >= 'A' && p[2 * i] <= 'F') ||
            (p[2 * i + 1] >= 'A' && p[2 * i + 1] <= 'F')) {
            snprintf(why, whylen, "line %d: the key is not lower-case hex", n);
            return -1;
        }
        k->k[i] = (unsigned char)(hi << 4 | lo);
    }
    k->created = t;
    *pp = lf + 1;
    return 0;
}

int proxy__persist_keys_parse(const char *text, size_t len, struct proxy_persist_keyset *ks,
                              char *why, size_t whylen)
{
    const char *p = text, *end = text + len;
    size_t hl = strlen(HEADER);

    memset(ks, 0, sizeof(*ks));
    if (len == 0) {
        snprintf(why, whylen, "empty");
        return -1;
    }
    if (len < hl && memcmp(text, HEADER, len) == 0) {
        snprintf(why, whylen, "truncated in its first line");
        return -1;
    }
    if (len < hl || memcmp(text, HEADER, hl) != 0) {
        if (len > 22 && memcmp(text, "gatehouse-cookie-keys ", 22) == 0)
            snprintf(why, whylen, "unsupported format version (this build reads version 1)");
        else
            snprintf(why, whylen, "not a gatehouse cookie key file");
        return -1;
    }
    p += hl;
    if (p == end) {
        snprintf(why, whylen, "truncated: no current key");
        goto bad;
    }
    if (parse_line(&p, end, "current", 2, &ks->cur, why, whylen) == -1)
        goto bad;
    if (p < end) {
        if (parse_line(&p, end, "previous", 3, &ks->prev, why, whylen) == -1)
            goto bad;
        ks->have_prev = 1;
    }
    if (p != end) {
        snprintf(why, whylen, "%zu bytes after the keys", (size_t)(end - p));
        goto bad;
    }
    if (ks->have_prev && ks->prev.created > ks->cur.created) {
        snprintf(why, whylen, "the previous key is newer than the current one");
        goto bad;
    }
    return 0;
bad:
    OPENSSL_cleanse(ks, sizeof(*ks));
    return -1;
}

static size_t format_line(char *out, const char *word, const struct proxy_persist_key *k)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = (size_t)snprintf(out, 64, "%s %lld ", word, (long long)k->created), i;

    for (i = 0; i < PROXY_PERSIST_KEY_LEN; i++) {
        out[n++] = hex[k->k[i] >> 4];
        out[n++] = hex[k->k[i] & 15];
    }
    out[n++] = '\n';
    return n;
}

int proxy__persist_keys_format(const struct proxy_persist_keyset *ks, char *out, size_t outlen)
{
    size_t n = strlen(HEADER);

    /* a creation time is at most 12 digits: every line fits in 96 bytes */
    if (outlen < PROXY_PERSIST_KEYS_TEXT_MAX || ks->cur.created < 0 ||
        ks->cur.created > MAX_CREATED || ks->prev.created < 0 || ks->prev.created > MAX_CREATED)
        return -1;
    memcpy(out, HEADER, n);
    n += format_line(out + n, "current", &ks->cur);
    if (ks->have_prev)
        n += format_line(out + n, "previous", &ks->prev);
    out[n] = '\0';
    return (int)n;
}

/* ---- the file ---- */

int proxy__persist_keyfile_read(const char *path, struct proxy_persist_keyset *ks, char *why,
                                size_t whylen)
{
    char buf[FILE_MAX + 1], e[256];
    struct stat st;
    size_t len = 0;
    ssize_t n;
    int fd, rc;

    memset(ks, 0, sizeof(*ks));
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd == -1) {
        if (errno == ENOENT)
            return 1;
        if (errno == ELOOP)
            snprintf(why, whylen,
                     "%s: is a symbolic link; the persistence key file must be a "
                     "plain file of its own",
                     path);
        else
            snprintf(why, whylen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) == -1) {
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "%s: not a plain file", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(why, whylen,
                 "%s: persistence key file is accessible by group or others "
                 "(mode %03o); chmod 600 it",
                 path, (unsigned)(st.st_mode & 0777));
        close(fd);
        return -1;
    }
    while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
        if (n == -1) {
            if (errno == EINTR)
                continue;
            snprintf(why, whylen, "%s: %s", path, strerror(errno));
            close(fd);
            OPENSSL_cleanse(buf, len);
            return -1;
        }
        len += (size_t)n;
    }
    close(fd);
    if (len > FILE_MAX) {
        snprintf(why, whylen, "longer than %d bytes", FILE_MAX);
        rc = 2;
    } else {
        rc = proxy__persist_keys_parse(buf, len, ks, e, sizeof(e)) == 0 ? 0 : 2;
        if (rc == 2)
            snprintf(why, whylen, "%s", e);
    }
    OPENSSL_cleanse(buf, len);
    return rc;
}

int proxy__persist_keyfile_write(const char *path, const struct proxy_persist_keyset *ks, char *why,
                                 size_t whylen)
{
    char text[PROXY_PERSIST_KEYS_TEXT_MAX], dir[1100];
    const char *slash = strrchr(path, '/');
    int n, rc = 0;

    if (slash != NULL) {
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
        if (dir[0] != '\0' && gh_mkdir_p(dir, 0700) == -1) {
            snprintf(why, whylen, "%s: %s", dir, strerror(errno));
            return -1;
        }
    }
    n = proxy__persist_keys_format(ks, text, sizeof(text));
    if (n < 0) {
        snprintf(why, whylen, "%s: keys out of range", path);
        return -1;
    }
    if (gh_write_file(path, text, (size_t)n, 0600, 1) == -1) {
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        rc = -1;
    }
    OPENSSL_cleanse(text, sizeof(text));
    return rc;
}

/* ---- where the keys are kept ---- */

/* The cluster store (issue 18) will be another one of these. */
struct key_store {
    /* 0: keys read; 1: none kept yet; 2: kept but unusable; -1: refused.
     * why says what, for 2 and -1. */
    int (*load)(struct proxy_persist_keyset *ks, char *why, size_t whylen);
    /* 0 once the keys are durable, or -1 with why. */
    int (*save)(const struct proxy_persist_keyset *ks, char *why, size_t whylen);
};

static char path[1100]; /* STATE-DIR/persist/cookie.key; fixed at start, like state-dir */

static int file_load(struct proxy_persist_keyset *ks, char *why, size_t whylen)
{
    return proxy__persist_keyfile_read(path, ks, why, whylen);
}

static int file_save(const struct proxy_persist_keyset *ks, char *why, size_t whylen)
{
    return proxy__persist_keyfile_write(path, ks, why, whylen);
}

static const struct key_store file_store = {file_load, file_save};
static const struct key_store *store = &file_store;

/* ---- the installed keys, as the workers see them ---- */

static pthread_mutex_t keys_mu = PTHREAD_MUTEX_INITIALIZER; /* held for a copy only */
static struct proxy_persist_keyset installed;
static _Atomic uint64_t version; /* bumped at every change; 0: no keys yet */

static void install(const struct proxy_persist_keyset *ks)
{
    pthread_mutex_lock(&keys_mu);
    OPENSSL_cleanse(&installed, sizeof(installed));
    installed = *ks;
    atomic_fetch_add(&version, 1);
    pthread_mutex_unlock(&keys_mu);
}

uint64_t proxy__persist_keys_version(void)
{
    return atomic_load_explicit(&version, memory_order_acquire);
}

uint64_t proxy__persist_keys_get(struct proxy_persist_keyset *ks)
{
    uint64_t v;

    pthread_mutex_lock(&keys_mu);
    *ks = installed;
    v = atomic_load(&version);
    pthread_mutex_unlock(&keys_mu);
    return v;
}

static int same_keys(const struct proxy_persist_keyset *a, const struct proxy_persist_keyset *b)
{
    return a->cur.created == b->cur.created && a->have_prev == b->have_prev &&
           CRYPTO_memcmp(a->cur.k, b->cur.k, sizeof(a->cur.k)) == 0 &&
           (!a->have_prev || (a->prev.created == b->prev.created &&
                              CRYPTO_memcmp(a->prev.k, b->prev.k, sizeof(a->prev.k)) == 0));
}

static int fresh_key(struct proxy_persist_key *k)
{
    k->created = (int64_t)time(NULL);
    return RAND_bytes(k->k, sizeof(k->k)) == 1 ? 0 : -1;
}

static void fmt_time(char *out, size_t len, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL || strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, len, "%lld", (long long)t);
}

static void fmt_duration(char *out, size_t len, long long ms)
{
    if (ms % 86400000 == 0)
        snprintf(out, len, "%lldd", ms / 86400000);
    else if (ms % 3600000 == 0)
        snprintf(out, len, "%lldh", ms / 3600000);
    else if (ms % 60000 == 0)
        snprintf(out, len, "%lldm", ms / 60000);
    else if (ms % 1000 == 0)
        snprintf(out, len, "%llds", ms / 1000);
    else
        snprintf(out, len, "%lldms", ms);
}

/* ---- loading (start, reload) and rotating ---- */

static pthread_mutex_t file_mu = PTHREAD_MUTEX_INITIALIZER; /* the store and the schedule */
static pthread_cond_t wake;
static pthread_t rotator_thread;
static int running, stopping;
static long long period_ms, longest_ms; /* persistence-key-rotation; longest cookie timeout */
static char longest_svc[128];
static int shared; /* store redis: the keys are the cluster's (set at the first load) */

static int64_t period_s(void);
static int64_t current_created(void);

/* ---- the cluster's keys (store redis); called with file_mu held ---- */

static enum store_status shared_put(const struct proxy_persist_keyset *ks, int flags)
{
    char text[FILE_MAX];
    int n = proxy__persist_keys_format(ks, text, sizeof(text));
    enum store_status st;

    if (n <= 0 || n > STORE_VAL_MAX)
        return STORE_ERROR;
    int64_t per = period_s() > 86400 ? period_s() : 86400; /* 0 before the first schedule */

    /* Kept for three rotations (three days at least): an idle cluster's
     * keys do not vanish between two, and a cluster gone longer is seeded
     * again. */
    st = store_sync_set(SHARED_KEY, strlen(SHARED_KEY), text, (size_t)n, per * 3000,
                        flags | STORE_DURABLE);
    OPENSSL_cleanse(text, sizeof(text));
    return st;
}

/* The cluster's keys into ks: 0, 1 none there, -1 the store did not
 * answer (or holds something unusable, logged). */
static int shared_get(struct proxy_persist_keyset *ks)
{
    char text[FILE_MAX], why[256];
    size_t n = 0;
    int64_t ttl;
    enum store_status st = store_sync_get(SHARED_KEY, strlen(SHARED_KEY), text, sizeof(text),
                                          &n, &ttl, 0);
    int rc = -1;

    if (st == STORE_ABSENT)
        return 1;
    if (st == STORE_OK) {
        rc = proxy__persist_keys_parse(text, n, ks, why, sizeof(why));
        if (rc != 0)
            gh_log_err("persistence keys: the cluster's copy in the store is unusable (%s); "
                       "this appliance's keys are written over it", why);
        rc = rc == 0 ? 0 : 1;
    }
    OPENSSL_cleanse(text, sizeof(text));
    return rc;
}

/* a's keys are a rotation of b's: a's previous key is b's current one. */
static int successor(const struct proxy_persist_keyset *a, const struct proxy_persist_keyset *b)
{
    return a->have_prev && a->prev.created == b->cur.created &&
           CRYPTO_memcmp(a->prev.k, b->cur.k, sizeof(a->prev.k)) == 0;
}

/* Brings this appliance and the cluster to the newest keys. start: log
 * what the store's absence means for a starting appliance; tries: how
 * often another appliance's seed may be taken instead of ours. */
static void follow_n(int start, int tries)
{
    struct proxy_persist_keyset theirs, mine;
    char why[768], when[32];
    int st;

    if (!shared)
        return;
    memset(&theirs, 0, sizeof(theirs));
    proxy__persist_keys_get(&mine);
    st = shared_get(&theirs);
    if (st == -1) {
        if (start)
            gh_log_warn("persistence keys: the cluster's keys cannot be read (the store is "
                        "away): this appliance uses its own until the store is back, and "
                        "cookies from other appliances may not hold meanwhile");
    } else if (st == 0 && same_keys(&theirs, &mine)) {
        /* agreed */
    } else if (st == 0 && !successor(&mine, &theirs)) {
        if (store->save(&theirs, why, sizeof(why)) == -1)
            gh_log_err("persistence keys: cannot keep a copy of the cluster's keys: %s", why);
        install(&theirs);
        fmt_time(when, sizeof(when), theirs.cur.created);
        gh_log_info("persistence keys: adopted the cluster's keys (current key made %s)", when);
    } else {
        /* none there, or ours rotated theirs (a failover lost that write) */
        enum store_status w = shared_put(&mine, st == 1 ? STORE_NX : 0);
        if (w == STORE_EXISTS && tries > 0) /* another appliance seeded first: take its keys */
            follow_n(start, tries - 1);
        else if (w != STORE_OK)
            gh_log_warn("persistence keys: cannot give the cluster this appliance's keys (%s)",
                        w == STORE_NOT_DURABLE ? "no replica confirmed them"
                        : w == STORE_ERROR     ? "refused by the store"
                                               : "the store is away");
        else
            gh_log_info("persistence keys: the cluster's keys are now this appliance's");
    }
    OPENSSL_cleanse(&theirs, sizeof(theirs));
    OPENSSL_cleanse(&mine, sizeof(mine));
}

static void follow(int start)
{
    follow_n(start, 2);
}

/* A cluster's rotation is one appliance's: 0 this one may rotate now, -1
 * another rotated already (adopted here), holds the lock, or the store is
 * away (tried again later). */
static int may_rotate(void)
{
    if (!shared)
        return 0;
    follow(0);
    if (current_created() + period_s() > (int64_t)time(NULL))
        return -1; /* adopted a rotation: rotating again would drop a live key */
    return store_sync_set(LOCK_KEY, strlen(LOCK_KEY), "1", 1, LOCK_MS, STORE_NX) == STORE_OK
               ? 0
               : -1;
}

int proxy_persist_keys_load(const struct gh_conf *c, char *err, size_t errlen)
{
    struct proxy_persist_keyset ks;
    char why[768], when[32];
    int have, st, rc = -1;

    memset(&ks, 0, sizeof(ks));
    pthread_mutex_lock(&file_mu);
    have = proxy__persist_keys_version() != 0;
    if (!have)
        shared = strcmp(c->store.engine, "redis") == 0;
    if (path[0] == '\0' && (size_t)snprintf(path, sizeof(path), "%s/persist/cookie.key",
                                            c->state_dir) >= sizeof(path)) {
        path[0] = '\0';
        snprintf(err, errlen, "state-dir '%s': too long", c->state_dir);
        goto done;
    }
    st = store->load(&ks, why, sizeof(why));
    if (st == -1) {
        snprintf(err, errlen, "%s", why);
        goto done;
    }
    if (st == 0) {
        if (!have || !same_keys(&ks, &installed)) {
            fmt_time(when, sizeof(when), ks.cur.created);
            install(&ks);
            gh_log_info("persistence keys: %s %s (current key made %s%s)",
                        have ? "adopted the changed" : "loaded", path, when,
                        ks.have_prev ? ", previous key still accepted" : "");
        }
        rc = 0;
        goto done;
    }
    if (st == 2)
        gh_log_err("persistence keys: %s is unusable (%s): %s", path, why,
                   have ? "the running keys are written back, cookies keep working"
                        : "a fresh key replaces it, so existing persistence cookies stop "
                          "working and their clients are balanced again");
    if (have) {
        proxy__persist_keys_get(&ks);
    } else {
        memset(&ks, 0, sizeof(ks));
        if (fresh_key(&ks.cur) == -1) {
            snprintf(err, errlen, "persistence keys: no random bytes for a key");
            goto done;
        }
    }
    if (store->save(&ks, why, sizeof(why)) == -1) {
        snprintf(err, errlen, "persistence keys: cannot write %s", why);
        goto done;
    }
    if (!have)
        install(&ks);
    if (st == 1 && have)
        gh_log_warn("persistence keys: %s was missing; written again from the running keys", path);
    else if (st == 1)
        gh_log_info("persistence keys: created %s", path);
    rc = 0;
done:
    if (rc == 0 && !have)
        follow(1);
    OPENSSL_cleanse(&ks, sizeof(ks));
    pthread_mutex_unlock(&file_mu);
    return rc;
}

struct proxy_keys_next {
    int adopt; /* the file holds other keys than the running ones */
    uint64_t version; /* of the running keys when the file was read */
    struct proxy_persist_keyset ks;
};

struct proxy_keys_next *proxy_persist_keys_prepare(const struct gh_conf *c, char *err,
                                                   size_t errlen)
{
    struct proxy_keys_next *n;
    char why[768];
    int st;

    if (proxy__persist_keys_version() == 0) /* nothing runs yet: the start path */
        return proxy_persist_keys_load(c, err, errlen) == -1 ? NULL
                                                              : gh_calloc(1, sizeof(*n));
    n = gh_calloc(1, sizeof(*n));
    pthread_mutex_lock(&file_mu);
    st = store->load(&n->ks, why, sizeof(why));
    n->version = proxy__persist_keys_version();
    if (st == 0) {
        n->adopt = !same_keys(&n->ks, &installed);
    } else if (st == 1 || st == 2) {
        /* Writing the running keys back changes nothing that runs, so it
         * may happen before the reload is decided. */
        if (st == 2)
            gh_log_err("persistence keys: %s is unusable (%s): the running keys are written "
                       "back, cookies keep working", path, why);
        proxy__persist_keys_get(&n->ks);
        if (store->save(&n->ks, why, sizeof(why)) == -1) {
            snprintf(err, errlen, "persistence keys: cannot write %s", why);
            st = -1;
        } else if (st == 1) {
            gh_log_warn("persistence keys: %s was missing; written again from the running keys",
                        path);
        }
    } else {
        snprintf(err, errlen, "%s", why);
    }
    pthread_mutex_unlock(&file_mu);
    if (st == -1) {
        proxy_persist_keys_abort(n);
        return NULL;
    }
    return n;
}

void proxy_persist_keys_commit(struct proxy_keys_next *n, const struct gh_conf *c)
{
    if (n->adopt) {
        char when[32];
        pthread_mutex_lock(&file_mu);
        /* A rotation between prepare and commit wrote newer keys than the
         * ones read: installing those read would take a key back. */
        if (proxy__persist_keys_version() != n->version) {
            gh_log_info("persistence keys: rotated while the reload was prepared; the "
                        "rotated keys stay");
        } else {
            fmt_time(when, sizeof(when), n->ks.cur.created);
            install(&n->ks);
            gh_log_info("persistence keys: adopted the changed %s (current key made %s%s)", path,
                        when, n->ks.have_prev ? ", previous key still accepted" : "");
        }
        pthread_mutex_unlock(&file_mu);
    }
    proxy_persist_keys_abort(n);
    proxy_persist_keys_schedule(c);
}

void proxy_persist_keys_abort(struct proxy_keys_next *n)
{
    if (n == NULL)
        return;
    OPENSSL_cleanse(n, sizeof(*n));
    free(n);
}

/* Seconds between rotations: the period, or the longest cookie timeout
 * when that is longer (the previous key must outlive every cookie). */
static int64_t period_s(void)
{
    long long ms = longest_ms > period_ms ? longest_ms : period_ms;
    return (int64_t)((ms + 999) / 1000);
}

static int64_t current_created(void)
{
    int64_t t;

    pthread_mutex_lock(&keys_mu);
    t = installed.cur.created;
    pthread_mutex_unlock(&keys_mu);
    return t;
}

/* Called with file_mu held: a new current key, the current one becomes the
 * previous one, the old previous one is dropped. Durable before installed. */
static int rotate(void)
{
    struct proxy_persist_keyset old, next;
    char why[768], per[32];
    int rc = -1;

    proxy__persist_keys_get(&old);
    memset(&next, 0, sizeof(next));
    next.prev = old.cur;
    next.have_prev = 1;
    if (fresh_key(&next.cur) == -1) {
        gh_log_err("persistence keys: no random bytes for a new key; rotation tried again in "
                   "%d s",
                   RETRY_S);
        goto done;
    }
    if (store->save(&next, why, sizeof(why)) == -1) {
        gh_log_err("persistence keys: rotation postponed, cannot write %s; the current key "
                   "stays, tried again in %d s",
                   why, RETRY_S);
        goto done;
    }
    install(&next);
    if (shared && shared_put(&next, 0) != STORE_OK)
        gh_log_warn("persistence keys: the rotated keys did not reach the cluster's store; "
                    "they are given again when it answers");
    if (shared)
        store_sync_del(LOCK_KEY, strlen(LOCK_KEY)); /* the next rotation is anyone's again */
    fmt_duration(per, sizeof(per), (long long)period_s() * 1000);
    gh_log_info("persistence key rotated (%s): new cookies use the new key, the previous one "
                "is still accepted until the next rotation in %s",
                path, per);
    rc = 0;
done:
    OPENSSL_cleanse(&old, sizeof(old));
    OPENSSL_cleanse(&next, sizeof(next));
    return rc;
}

static long long realtime_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The rotation thread: sleeps until the current key is due, in steps of at
 * most WAKE_MS so that a wall clock set forward is noticed. */
static void *rotator(void *arg)
{
    int64_t retry_at = 0;

    (void)arg;
    pthread_mutex_lock(&file_mu);
    while (!stopping) {
        int64_t now = (int64_t)time(NULL), per = period_s(), created = current_created(),
                due = created + per, target;
        long long wait;
        struct timespec ts;

        /* a clock set back by more than a period would hold the key for as long */
        if (created > now + per)
            due = now;
        if (proxy__persist_keys_version() == 0)
            due = now + RETRY_S; /* not loaded: nothing to rotate (never happens) */
        if (now >= due && now >= retry_at) {
            if (may_rotate() == -1)
                retry_at = now + FOLLOW_MS / 1000; /* another's rotation, adopted when seen */
            else if (rotate() == -1)
                retry_at = now + RETRY_S;
            continue;
        }
        target = now >= due ? retry_at : due;
        wait = (long long)target * 1000 - realtime_ms();
        wait = wait < 10 ? 10 : wait > WAKE_MS ? WAKE_MS : wait;
        if (shared && wait > FOLLOW_MS)
            wait = FOLLOW_MS;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(wait / 1000);
        ts.tv_nsec += (long)(wait % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (pthread_cond_timedwait(&wake, &file_mu, &ts) != 0)
            follow(0); /* woken by the time, not by a reload or the end */
    }
    pthread_mutex_unlock(&file_mu);
    return NULL;
}

int proxy_persist_keys_schedule(const struct gh_conf *c)
{
    long long longest = 0;
    const char *who = "";
    char a[32], b[32];
    size_t i;
    int rc = 0;

    for (i = 0; i < c->nservices; i++)
        if (strcmp(c->services[i].persistence, "cookie") == 0 &&
            c->services[i].persist_timeout > longest) {
            longest = c->services[i].persist_timeout;
            who = c->services[i].name;
        }
    pthread_mutex_lock(&file_mu);
    if (!running || c->persist_key_rotation != period_ms || longest != longest_ms ||
        strcmp(who, longest_svc) != 0) {
        period_ms = c->persist_key_rotation;
        longest_ms = longest;
        gh_strlcpy(longest_svc, who, sizeof(longest_svc));
        fmt_duration(a, sizeof(a), period_ms);
        fmt_duration(b, sizeof(b), longest_ms);
        if (longest_ms > period_ms)
            gh_log_warn("persistence-key-rotation %s is shorter than the cookie timeout of "
                        "service %s (%s): keys rotate every %s, so that the previous key "
                        "outlives every cookie",
                        a, longest_svc, b, b);
        else
            gh_log_info("persistence keys rotate every %s", a);
    }
    if (!running) {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&wake, &ca);
        pthread_condattr_destroy(&ca);
        if (pthread_create(&rotator_thread, NULL, rotator, NULL) != 0) {
            pthread_cond_destroy(&wake);
            rc = -1;
        } else {
            running = 1;
        }
    } else {
        pthread_cond_signal(&wake); /* the period may have changed */
    }
    pthread_mutex_unlock(&file_mu);
    return rc;
}

void proxy_persist_wipe(void)
{
    int was;

    pthread_mutex_lock(&file_mu);
    stopping = 1;
    was = running;
    if (running)
        pthread_cond_signal(&wake);
    pthread_mutex_unlock(&file_mu);
    if (was) {
        pthread_join(rotator_thread, NULL);
        pthread_cond_destroy(&wake);
        running = 0;
    }
    pthread_mutex_lock(&keys_mu);
    OPENSSL_cleanse(&installed, sizeof(installed));
    pthread_mutex_unlock(&keys_mu);
}
