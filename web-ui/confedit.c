/*
 * Config write-back. The file stays the single source of truth: a change
 * rewrites only the directive it touches (every other byte, comments
 * included, stays), the result must pass the same validation as
 * `gatehouse -t`, and it is written atomically (temp, fsync, rename, fsync
 * of the folder) after the previous version was copied to the history.
 * The version is a hash of the file's bytes, so a hand edit shows as a new
 * version too.
 */
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/common.h"
#include "webui_int.h"

void webui__version(const char *text, size_t len, char out[17])
{
    webui__sha256_hex(text, len, 8, out);
}

void webui_version(const char *text, size_t len, char out[17])
{
    webui__version(text, len, out);
}

int webui__file_version(const char *path, char out[17])
{
    /* Every API GET names the version: hash the file again only when it
     * changed (a write renames a new file in, a hand edit moves mtime). */
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static struct stat seen;
    static char cached[17];
    struct stat st;
    size_t len = 0;
    char *text;
    int rc = 0;

    if (stat(path, &st) == -1)
        return -1;
    pthread_mutex_lock(&mu);
    if (cached[0] == '\0' || st.st_ino != seen.st_ino || st.st_dev != seen.st_dev ||
        st.st_size != seen.st_size || st.st_mtim.tv_sec != seen.st_mtim.tv_sec ||
        st.st_mtim.tv_nsec != seen.st_mtim.tv_nsec) {
        text = webui__read_file(path, &len);
        if (text == NULL) {
            rc = -1;
        } else {
            webui__version(text, len, cached);
            seen = st;
            free(text);
        }
    }
    if (rc == 0)
        memcpy(out, cached, 17);
    pthread_mutex_unlock(&mu);
    return rc;
}

struct gh_conf *webui__conf_current(char ver[17], char *err, size_t errlen)
{
    struct gh_conf *c;
    size_t len = 0;
    char *text;

    if (webui__conf_path() == NULL) {
        snprintf(err, errlen, "running the embedded default topology");
        return NULL;
    }
    text = webui__read_file(webui__conf_path(), &len);
    if (text == NULL) {
        snprintf(err, errlen, "cannot read the configuration");
        return NULL;
    }
    webui__version(text, len, ver);
    c = gh_conf_parse(webui__conf_path(), text, len, err, errlen);
    free(text);
    return c;
}

char *webui__read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *buf;

    if (f == NULL)
        return NULL;
    if (fstat(fileno(f), &st) == -1 || st.st_size > 4 * 1024 * 1024) {
        fclose(f);
        return NULL;
    }
    buf = gh_calloc(1, (size_t)st.st_size + 1);
    *len = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    buf[*len] = '\0';
    return buf;
}

char *webui__read_file_tail(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *buf, *start;
    size_t n;

    if (f == NULL)
        return NULL;
    if (fstat(fileno(f), &st) == -1) {
        fclose(f);
        return NULL;
    }
    if ((size_t)st.st_size > max)
        fseek(f, (long)((size_t)st.st_size - max), SEEK_SET);
    buf = gh_calloc(1, max + 1);
    n = fread(buf, 1, max, f);
    fclose(f);
    buf[n] = '\0';
    start = (size_t)st.st_size > max ? strchr(buf, '\n') : NULL;
    if (start != NULL) {
        memmove(buf, start + 1, n - (size_t)(start + 1 - buf) + 1);
        n -= (size_t)(start + 1 - buf);
    }
    *len = n;
    return buf;
}

/* The offset of line (1-based), col (1-based) in text, or -1. */
static long offset_of(const char *text, size_t len, int line, int col)
{
    size_t i = 0;
    int l = 1;

    while (l < line && i < len) {
        if (text[i] == '\n')
            l++;
        i++;
    }
    if (l != line || i + (size_t)col - 1 > len)
        return -1;
    return (long)(i + (size_t)col - 1);
}

char *webui__set_server(const char *text, size_t len, const char *svc, const char *server,
                        const char *state, long long weight, char *err, size_t errlen)
{
    struct gh_conf *c = gh_conf_parse("config", text, len, err, errlen);
    const struct gh_conf_service *s;
    const struct gh_conf_server *sv = NULL;
    struct gh_sbuf o = {NULL, 0, 0};
    long start, end;
    size_t i;
    char quote = 0;

    if (c == NULL)
        return NULL;
    s = gh_conf_service_find(c, svc);
    for (i = 0; s != NULL && i < s->nservers; i++)
        if (strcmp(s->servers[i].name, server) == 0)
            sv = &s->servers[i];
    if (sv == NULL) {
        snprintf(err, errlen, "no server '%s' in service '%s'", server, svc);
        gh_conf_free(c);
        return NULL;
    }
    start = offset_of(text, len, sv->loc.line, sv->loc.col);
    if (start < 0 || strncmp(text + start, "server", 6) != 0) {
        snprintf(err, errlen, "cannot locate the server line");
        gh_conf_free(c);
        return NULL;
    }
    /* The directive runs to the end of its line or a comment; one that
     * shares its line with another directive is left to a hand edit. */
    for (end = start; (size_t)end < len && text[end] != '\n'; end++) {
        if (quote) {
            if (text[end] == '\\' && (size_t)end + 1 < len)
                end++;
            else if (text[end] == '"')
                quote = 0;
            continue;
        }
        if (text[end] == '"')
            quote = '"';
        else if (text[end] == '#')
            break;
        else if (text[end] == ';' || text[end] == '}') {
            snprintf(err, errlen, "server '%s' shares its line (%d) with another directive; "
                                  "edit the file by hand", server, sv->loc.line);
            gh_conf_free(c);
            return NULL;
        }
    }
    while (end > start && (text[end - 1] == ' ' || text[end - 1] == '\t'))
        end--;
    gh_sbuf_printf(&o, "%.*s", (int)start, text);
    gh_conf_write_server(&o, sv, state, weight);
    gh_sbuf_printf(&o, "%.*s", (int)(len - (size_t)end), text + end);
    gh_conf_free(c);
    return o.p;
}

static int is_conf(const struct dirent *d)
{
    size_t n = strlen(d->d_name);

    return n > 5 && strcmp(d->d_name + n - 5, ".conf") == 0;
}

/* Keeps the newest `keep` versions of the history folder, each with its
 * .meta (who made the change that replaced it, and what). */
static void prune(const char *dir, int keep)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, is_conf, alphasort), i;

    for (i = 0; i < n; i++) {
        if (i < n - keep) {
            char p[1400];
            size_t l;
            snprintf(p, sizeof(p), "%s/%s", dir, list[i]->d_name);
            unlink(p);
            l = strlen(p);
            memcpy(p + l - 5, ".meta", 5);
            unlink(p);
        }
        free(list[i]);
    }
    free(list);
}

void webui__changed_span(const char *a, const char *b, size_t *pre_out, size_t *suf_out)
{
    size_t la = strlen(a), lb = strlen(b), pre = 0, suf = 0;

    while (pre < la && pre < lb && a[pre] == b[pre])
        pre++;
    while (pre > 0 && a[pre - 1] != '\n')
        pre--;
    while (suf < la - pre && suf < lb - pre && a[la - 1 - suf] == b[lb - 1 - suf])
        suf++;
    /* Whole lines on both sides: "weight 5" -> "max-weight 5" shares
     * "weight 5" as bytes but not as a line of b. */
    while (suf > 0 && ((la - suf > 0 && a[la - suf - 1] != '\n') ||
                       (lb - suf > 0 && b[lb - suf - 1] != '\n')))
        suf--;
    *pre_out = pre;
    *suf_out = suf;
}

void webui__changed_directives(const char *a, const char *b, char *out, size_t outlen)
{
    size_t la = strlen(a), lb = strlen(b), pre, suf, used = 0;
    const char *spans[2][2];
    int k;

    out[0] = '\0';
    webui__changed_span(a, b, &pre, &suf);
    spans[0][0] = a + pre;
    spans[0][1] = a + la - suf;
    spans[1][0] = b + pre;
    spans[1][1] = b + lb - suf;
    /* The first word of every changed line that is a directive, once each. */
    for (k = 0; k < 2; k++) {
        const char *p = spans[k][0], *end = spans[k][1];
        while (p < end) {
            const char *q = memchr(p, '\n', (size_t)(end - p)), *w, *we;
            char word[64];
            q = q ? q : end;
            for (w = p; w < q && (*w == ' ' || *w == '\t'); w++)
                ;
            for (we = w; we < q && *we != ' ' && *we != '\t' && *we != ';' && *we != '{'; we++)
                ;
            if (we > w && *w != '#' && *w != '}' && (size_t)(we - w) < sizeof(word)) {
                char pat[70];
                memcpy(word, w, (size_t)(we - w));
                word[we - w] = '\0';
                snprintf(pat, sizeof(pat), " %s ", word);
                if (strstr(out, pat) == NULL && used + strlen(word) + 2 < outlen) {
                    if (used == 0)
                        out[used++] = ' ';
                    used += (size_t)snprintf(out + used, outlen - used, "%s ", word);
                }
            }
            p = q < end ? q + 1 : q;
        }
    }
    /* " a b " -> "a b" */
    if (used > 0) {
        memmove(out, out + 1, used);
        used--;
        if (used > 0)
            out[used - 1] = '\0';
    }
}

int webui__commit(const char *conf_path, const char *history_dir, const char *old,
                  size_t oldlen, const char *text, size_t len, const char *meta, char *err,
                  size_t errlen)
{
    char ver[17], hist[1400];
    struct stat st;

    if (mkdir(history_dir, 0700) == -1 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", history_dir, strerror(errno));
        return -1;
    }
    webui__version(old, oldlen, ver);
    {
        /* The lock keeps other admins out, not an editor on the box: a
         * file changed by hand since it was read is not overwritten. */
        size_t nowlen = 0;
        char *now = webui__read_file(conf_path, &nowlen);
        int same = now != NULL && nowlen == oldlen && memcmp(now, old, oldlen) == 0;
        free(now);
        if (!same) {
            snprintf(err, errlen, "%s changed on disk since this change was checked (edited by "
                     "hand?): nothing was written; read it again and redo the change", conf_path);
            return -1;
        }
    }
    {
        /* Seconds and nanoseconds: names sort in the order changes were
         * made, even several in one second. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(hist, sizeof(hist), "%s/%010lld%09ld-%s.conf", history_dir,
                 (long long)ts.tv_sec, ts.tv_nsec, ver);
    }
    if (gh_write_file(hist, old, oldlen, 0600, 1) == -1) {
        snprintf(err, errlen, "history %s: %s", hist, strerror(errno));
        return -1;
    }
    if (meta != NULL) {
        size_t l = strlen(hist);
        memcpy(hist + l - 5, ".meta", 5);
        gh_write_file(hist, meta, strlen(meta), 0600, 1); /* a lost note loses no change */
    }
    prune(history_dir, WEBUI_HISTORY_KEEP);
    if (gh_write_file(conf_path, text, len,
                      stat(conf_path, &st) == 0 ? (st.st_mode & 07777) : 0644, 1) == -1) {
        snprintf(err, errlen, "%s: %s", conf_path, strerror(errno));
        return -1;
    }
    return 0;
}
