/*
 * The slide-content store. An upload streams through zlib and AES-128-GCM
 * into a temp file in the content folder (".up-<random>.tmp", never a name
 * a download could ask for); at the end the tag is written, the file is
 * fsynced, renamed to its 128-bit random id, the folder is fsynced, and
 * only then the row with the key is committed. A crash at any point leaves
 * either a temp file or a file without a row, both swept at the next start,
 * and nothing acknowledged is lost. The key is made here, stored only in
 * the row, and given out only in a manifest.
 *
 * On PostgreSQL the same stream goes into rows of PG_CHUNK bytes (the last
 * shorter) on a connection of the upload's own, in one transaction with
 * the resource row and synchronous_commit on: a crash or a lost primary
 * before COMMIT leaves nothing, and a COMMIT that returned is on the
 * standby too when the primary names it in synchronous_standby_names
 * (docs/cluster.md). At most one chunk is in memory, up or down.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../common/common.h"
#include "slides_int.h"

#define CHUNK 65536
#define PG_CHUNK 65536 /* bytes of stored form per row of chunks: a download's unit */
/* Uploads to PostgreSQL at once, per process: each holds a connection and
 * a transaction while its client streams, and the server's connection
 * slots are the cluster's (max_connections, 100 by default). */
#define PG_UPLOADS_MAX 16
static int pg_uploads;

struct slides_upload {
    struct slides_store *st;
    int64_t meeting, epoch; /* the meeting as the upload began: it must still be so */
    char name[256];
    char tmp[1100];
    int fd;
    struct sdb *db;         /* PostgreSQL: this upload's connection, in its transaction */
    char id[33];            /* PostgreSQL: chosen at the start, the chunks' resource */
    unsigned char *chunk;   /* PG_CHUNK bytes */
    size_t chunk_len;
    int64_t chunk_n;
    z_stream z;
    EVP_CIPHER_CTX *cx;
    unsigned char key[16], iv[12];
    int64_t in_bytes, out_bytes;
    unsigned char zbuf[CHUNK], cbuf[CHUNK + 32];
};

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static void io_error(char *err, size_t errlen, const char *what)
{
    if (errno == ENOSPC || errno == EDQUOT)
        snprintf(err, errlen, "the content store is full (%s); nothing was stored", what);
    else
        snprintf(err, errlen, "content store: %s: %s", what, strerror(errno));
}

static int chunk_flush(struct slides_upload *up, char *err, size_t errlen)
{
    if (up->chunk_len == 0)
        return 0;
    if (sdb_exec(up->db, "INSERT INTO chunks(resource, n, data) VALUES(?,?,?)",
                 (struct sdb_arg[]){SDB_S(up->id), SDB_I(up->chunk_n),
                                    SDB_B(up->chunk, up->chunk_len)},
                 3) != 1) {
        snprintf(err, errlen, "content store: %s", sdb_error(up->db));
        return -1;
    }
    up->chunk_n++;
    up->chunk_len = 0;
    return 0;
}

/* The stored form's next bytes: to the temp file, or into chunks. */
static int sink(struct slides_upload *up, const unsigned char *p, size_t n, char *err,
                size_t errlen)
{
    if (up->db == NULL) {
        if (write_all(up->fd, p, n) == -1) {
            io_error(err, errlen, "write");
            return -1;
        }
        return 0;
    }
    while (n > 0) {
        size_t k = PG_CHUNK - up->chunk_len;
        if (k > n)
            k = n;
        memcpy(up->chunk + up->chunk_len, p, k);
        up->chunk_len += k;
        p += k;
        n -= k;
        if (up->chunk_len == PG_CHUNK && chunk_flush(up, err, errlen) == -1)
            return -1;
    }
    return 0;
}

void slides_upload_abort(struct slides_upload *up)
{
    if (up == NULL)
        return;
    if (up->fd != -1) {
        close(up->fd);
        unlink(up->tmp);
    }
    if (up->db != NULL) {
        sdb_rollback(up->db);
        sdb_close(up->db);
    }
    if (up->chunk != NULL) /* counted among the PostgreSQL uploads */
        __atomic_sub_fetch(&pg_uploads, 1, __ATOMIC_RELAXED);
    free(up->chunk);
    deflateEnd(&up->z);
    EVP_CIPHER_CTX_free(up->cx);
    gh_wipe(up->key, sizeof(up->key));
    free(up);
}

struct slides_upload *slides_upload_begin(struct slides_store *st, int64_t meeting,
                                          const char *name, char *err, size_t errlen)
{
    struct slides_upload *up = gh_calloc(1, sizeof(*up));
    char rnd[33];
    unsigned char head[SLIDES_HEADER];

    struct slides_meeting m;

    up->st = st;
    up->meeting = meeting;
    up->epoch = slides_meeting_by_id(st, meeting, &m) == 0 && m.ended == 0 ? m.epoch : -1;
    up->fd = -1;
    gh_strlcpy(up->name, name, sizeof(up->name));
    if (RAND_bytes(up->key, sizeof(up->key)) != 1 || RAND_bytes(up->iv, sizeof(up->iv)) != 1 ||
        deflateInit(&up->z, 6) != Z_OK) {
        snprintf(err, errlen, "content store: no randomness or memory");
        free(up);
        return NULL;
    }
    up->cx = EVP_CIPHER_CTX_new();
    if (up->cx == NULL ||
        EVP_EncryptInit_ex2(up->cx, EVP_aes_128_gcm(), up->key, up->iv, NULL) != 1) {
        snprintf(err, errlen, "content store: cipher set-up failed");
        slides_upload_abort(up);
        return NULL;
    }
    slides__random_hex(rnd, 16);
    if (slides_store_shared(st)) {
        char e[256];
        memcpy(up->id, rnd, sizeof(up->id));
        if (__atomic_add_fetch(&pg_uploads, 1, __ATOMIC_RELAXED) > PG_UPLOADS_MAX) {
            __atomic_sub_fetch(&pg_uploads, 1, __ATOMIC_RELAXED);
            snprintf(err, errlen, "the content store is busy (%d uploads at once); try again",
                     PG_UPLOADS_MAX);
            slides_upload_abort(up);
            return NULL;
        }
        up->chunk = gh_calloc(1, PG_CHUNK);
        up->db = sdb_open_again(st->db, e, sizeof(e));
        if (up->db == NULL || sdb_begin(up->db) == -1 ||
            sdb_exec(up->db, "SET LOCAL synchronous_commit = on", NULL, 0) < 0) {
            snprintf(err, errlen, "content store: %s", up->db ? sdb_error(up->db) : e);
            slides_upload_abort(up);
            return NULL;
        }
    } else {
        snprintf(up->tmp, sizeof(up->tmp), "%s/.up-%s.tmp", st->content_dir, rnd);
        up->fd = open(up->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (up->fd == -1) {
            io_error(err, errlen, "create");
            slides_upload_abort(up);
            return NULL;
        }
    }
    memcpy(head, SLIDES_MAGIC, 4);
    memcpy(head + 4, up->iv, 12);
    if (sink(up, head, sizeof(head), err, errlen) == -1) {
        slides_upload_abort(up);
        return NULL;
    }
    up->out_bytes = sizeof(head);
    return up;
}

static int pump(struct slides_upload *up, int flush, char *err, size_t errlen)
{
    int zr;

    do {
        int n = 0;
        size_t have;
        up->z.next_out = up->zbuf;
        up->z.avail_out = CHUNK;
        zr = deflate(&up->z, flush);
        if (zr == Z_STREAM_ERROR) {
            snprintf(err, errlen, "content store: compression failed");
            return -1;
        }
        have = CHUNK - up->z.avail_out;
        if (have > 0) {
            if (EVP_EncryptUpdate(up->cx, up->cbuf, &n, up->zbuf, (int)have) != 1) {
                snprintf(err, errlen, "content store: encryption failed");
                return -1;
            }
            if (sink(up, up->cbuf, (size_t)n, err, errlen) == -1)
                return -1;
            up->out_bytes += n;
        }
    } while (up->z.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
    return 0;
}

int slides_upload_write(struct slides_upload *up, const void *data, size_t len, char *err,
                        size_t errlen)
{
    up->z.next_in = (Bytef *)(uintptr_t)data;
    up->z.avail_in = (uInt)len;
    up->in_bytes += (int64_t)len;
    return pump(up, Z_NO_FLUSH, err, errlen);
}

int64_t slides_upload_size(const struct slides_upload *up)
{
    return up->in_bytes;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

    if (fd == -1)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

static int row_any(const struct sdb_row *r, void *arg)
{
    (void)r;
    (void)arg;
    return 1;
}

/* The last chunk, then the meeting's row locked (FOR SHARE: a meeting end
 * updates it first, so it waits for this COMMIT or this finds it ended),
 * the resource row, COMMIT. */
static int finish_pg(struct slides_upload *up, char id[33], char *err, size_t errlen)
{
    int n, rc = -1;

    if (chunk_flush(up, err, errlen) == -1)
        goto out;
    n = sdb_query(up->db, "SELECT 1 FROM meetings WHERE id = ? AND epoch = ? AND ended = 0"
                          " FOR SHARE",
                  (struct sdb_arg[]){SDB_I(up->meeting), SDB_I(up->epoch)}, 2, row_any, NULL);
    if (n == 0) {
        snprintf(err, errlen, "content store: the meeting ended while this was uploading");
        goto out;
    }
    if (n < 0 ||
        (rc = slides__resource_insert(up->st, up->db, up->id, up->meeting, up->epoch, up->name,
                                      up->in_bytes, up->out_bytes, up->key)) != 0) {
        snprintf(err, errlen, rc == 1 ? "content store: the meeting ended while this was uploading"
                                      : "content store: the resource could not be recorded: %s",
                 sdb_error(up->db));
        rc = -1;
        goto out;
    }
    if (sdb_commit(up->db) == -1) {
        /* Not acknowledged: whether it committed is unknown to us (the
         * primary died in COMMIT), and the client is told to send again. */
        snprintf(err, errlen, "content store: the resource could not be recorded: %s",
                 sdb_error(up->db));
        rc = -1;
        goto out;
    }
    memcpy(id, up->id, 33);
    rc = 0;
out:
    slides_upload_abort(up); /* after COMMIT the rollback is a no-op */
    return rc;
}

int slides_upload_finish(struct slides_upload *up, char id[33], char *err, size_t errlen)
{
    unsigned char tag[SLIDES_TAG];
    char final[1100];
    int n = 0, rc = -1;

    up->z.next_in = NULL;
    up->z.avail_in = 0;
    if (pump(up, Z_FINISH, err, errlen) == -1)
        goto fail;
    if (EVP_EncryptFinal_ex(up->cx, up->cbuf, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(up->cx, EVP_CTRL_GCM_GET_TAG, SLIDES_TAG, tag) != 1) {
        snprintf(err, errlen, "content store: encryption failed");
        goto fail;
    }
    if ((n > 0 && sink(up, up->cbuf, (size_t)n, err, errlen) == -1) ||
        sink(up, tag, sizeof(tag), err, errlen) == -1)
        goto fail;
    up->out_bytes += n + SLIDES_TAG;
    if (up->db != NULL)
        return finish_pg(up, id, err, errlen);
    if (fsync(up->fd) == -1) {
        io_error(err, errlen, "fsync");
        goto fail;
    }
    close(up->fd);
    up->fd = -1;
    slides__random_hex(id, 16);
    snprintf(final, sizeof(final), "%s/%s", up->st->content_dir, id);
    if (rename(up->tmp, final) == -1) {
        io_error(err, errlen, "rename");
        unlink(up->tmp);
        goto fail;
    }
    if (fsync_dir(up->st->content_dir) == -1 ||
        (rc = slides__resource_insert(up->st, NULL, id, up->meeting, up->epoch, up->name, up->in_bytes,
                                      up->out_bytes, up->key)) != 0) {
        if (rc == 1)
            snprintf(err, errlen, "content store: the meeting ended while this was uploading");
        else if (errno == ENOSPC)
            io_error(err, errlen, "commit");
        else
            snprintf(err, errlen, "content store: the resource could not be recorded");
        unlink(final);
        goto fail;
    }
    slides_upload_abort(up); /* frees; the file is no longer the temp one */
    return 0;
fail:
    slides_upload_abort(up);
    return -1;
}

static int is_id(const char *s)
{
    size_t i;

    for (i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[32] == '\0';
}

void slides__content_sweep(struct slides_store *st)
{
    DIR *d = st->content_dir[0] ? opendir(st->content_dir) : NULL;
    struct dirent *e;
    char p[1400];
    int removed = 0;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (is_id(e->d_name) && slides__resource_known(st, e->d_name))
            continue;
        /* An interrupted upload, or a file whose row never committed: it was
         * never acknowledged, so it goes. */
        snprintf(p, sizeof(p), "%s/%s", st->content_dir, e->d_name);
        if (unlink(p) == 0)
            removed++;
    }
    closedir(d);
    if (removed > 0) {
        fsync_dir(st->content_dir);
        gh_log_info("content store: removed %d file(s) of interrupted uploads", removed);
    }
}

void slides__content_unlink(struct slides_store *st, const char *id)
{
    char p[1100];

    if (!is_id(id) || st->content_dir[0] == '\0')
        return; /* PostgreSQL: the chunks went with the row */
    snprintf(p, sizeof(p), "%s/%s", st->content_dir, id);
    unlink(p);
    fsync_dir(st->content_dir);
}

struct slides_reader {
    struct slides_store *st;
    int fd;                /* SQLite: the file */
    char id[33];
    int64_t size;
    unsigned char *chunk;  /* PostgreSQL: the chunk last read */
    size_t chunk_len;
    int64_t chunk_n;       /* -1: none */
};

struct slides_reader *slides_content_reader(struct slides_store *st, const char *id,
                                            int64_t *size)
{
    struct slides_resource r;
    struct slides_reader *rd;
    char p[1100];
    struct stat sb;

    if (!is_id(id) || slides_resource_get(st, id, &r) == -1)
        return NULL;
    rd = gh_calloc(1, sizeof(*rd));
    rd->st = st;
    rd->fd = -1;
    rd->chunk_n = -1;
    gh_strlcpy(rd->id, id, sizeof(rd->id));
    if (slides_store_shared(st)) {
        rd->size = r.stored;
        rd->chunk = gh_calloc(1, PG_CHUNK);
    } else {
        snprintf(p, sizeof(p), "%s/%s", st->content_dir, id);
        rd->fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (rd->fd == -1 || fstat(rd->fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
            slides_reader_close(rd);
            return NULL;
        }
        rd->size = (int64_t)sb.st_size;
    }
    *size = rd->size;
    return rd;
}

static int row_chunk(const struct sdb_row *r, void *arg)
{
    struct slides_reader *rd = arg;
    size_t len = 0;
    const void *d = sdb_blob(r, 0, &len);

    if (len > PG_CHUNK)
        return 1; /* not a chunk we wrote: chunk_len stays 0, the read fails */
    memcpy(rd->chunk, d, len);
    rd->chunk_len = len;
    return 1;
}

long slides_reader_pread(struct slides_reader *rd, int64_t off, void *buf, size_t len)
{
    int64_t n;
    size_t at, k;

    if (off < 0 || off >= rd->size || len == 0)
        return 0;
    if ((int64_t)len > rd->size - off)
        len = (size_t)(rd->size - off);
    if (rd->fd != -1) {
        ssize_t r;
        do
            r = pread(rd->fd, buf, len, (off_t)off);
        while (r < 0 && errno == EINTR);
        return (long)r;
    }
    n = off / PG_CHUNK;
    if (n != rd->chunk_n) {
        int rows;
        rd->chunk_len = 0;
        rd->chunk_n = -1;
        pthread_mutex_lock(&rd->st->mu);
        rows = sdb_query(rd->st->db, "SELECT data FROM chunks WHERE resource = ? AND n = ?",
                         (struct sdb_arg[]){SDB_S(rd->id), SDB_I(n)}, 2, row_chunk, rd);
        pthread_mutex_unlock(&rd->st->mu);
        if (rows != 1 || rd->chunk_len == 0)
            return -1;
        rd->chunk_n = n;
    }
    at = (size_t)(off - n * PG_CHUNK);
    if (at >= rd->chunk_len)
        return -1; /* a chunk shorter than the resource's size says */
    k = rd->chunk_len - at;
    if (k > len)
        k = len;
    memcpy(buf, rd->chunk + at, k);
    return (long)k;
}

void slides_reader_close(struct slides_reader *rd)
{
    if (rd == NULL)
        return;
    if (rd->fd != -1)
        close(rd->fd);
    free(rd->chunk);
    free(rd);
}

static void wipe_free(void *p, size_t n)
{
    gh_wipe(p, n);
    free(p);
}

unsigned char *slides_decrypt(const unsigned char *stored, size_t len, const unsigned char key[16],
                              size_t max_out, size_t *outlen)
{
    EVP_CIPHER_CTX *cx;
    unsigned char *z = NULL, *out = NULL;
    size_t clen, cap;
    int n = 0, f = 0, ok;
    z_stream zs;

    if (len < SLIDES_HEADER + SLIDES_TAG || memcmp(stored, SLIDES_MAGIC, 4) != 0 ||
        len - SLIDES_HEADER - SLIDES_TAG > (size_t)INT_MAX || max_out >= SIZE_MAX / 2)
        return NULL;
    clen = len - SLIDES_HEADER - SLIDES_TAG;
    cx = EVP_CIPHER_CTX_new();
    z = gh_calloc(1, clen + 16);
    ok = cx != NULL && EVP_DecryptInit_ex2(cx, EVP_aes_128_gcm(), key, stored + 4, NULL) == 1 &&
         EVP_DecryptUpdate(cx, z, &n, stored + SLIDES_HEADER, (int)clen) == 1 &&
         EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_TAG, SLIDES_TAG,
                             (void *)(uintptr_t)(stored + len - SLIDES_TAG)) == 1 &&
         EVP_DecryptFinal_ex(cx, z + n, &f) == 1;
    EVP_CIPHER_CTX_free(cx);
    if (!ok) {
        wipe_free(z, clen + 16);
        return NULL; /* wrong key or a changed byte: GCM's tag says no */
    }
    memset(&zs, 0, sizeof(zs));
    if (inflateInit(&zs) != Z_OK) {
        wipe_free(z, clen + 16);
        return NULL;
    }
    cap = (size_t)(n + f) * 4 + 1024;
    if (cap > max_out + 1)
        cap = max_out + 1;
    out = gh_calloc(1, cap);
    zs.next_in = z;
    zs.avail_in = (uInt)(n + f);
    for (;;) {
        int r;
        zs.next_out = out + zs.total_out;
        zs.avail_out = (uInt)(cap - zs.total_out);
        r = inflate(&zs, Z_NO_FLUSH);
        if (r == Z_STREAM_END && zs.total_out <= max_out)
            break;
        /* More than max_out (one byte of room is kept to see it): a bomb,
         * or not what the manifest said. */
        if ((r != Z_OK && r != Z_BUF_ERROR) || (r == Z_BUF_ERROR && zs.avail_in == 0) ||
            zs.total_out > max_out) {
            wipe_free(out, cap);
            out = NULL;
            break;
        }
        if (zs.avail_out == 0) {
            /* Grown by copy, not realloc: the old block holds plaintext. */
            size_t ncap = cap > (max_out + 1) / 2 ? max_out + 1 : cap * 2;
            unsigned char *np = gh_calloc(1, ncap);
            memcpy(np, out, zs.total_out);
            wipe_free(out, cap);
            out = np;
            cap = ncap;
        }
    }
    if (out != NULL)
        *outlen = zs.total_out;
    inflateEnd(&zs);
    wipe_free(z, clen + 16);
    return out;
}

int slides_parse_range(const char *h, int64_t size, int64_t *off, int64_t *len)
{
    long long a, b = -1;
    const char *p;
    char *end;

    if (h == NULL || strncmp(h, "bytes=", 6) != 0 || strchr(h, ',') != NULL)
        return 1;
    p = h + 6;
    if (*p == '-') {
        if (p[1] < '0' || p[1] > '9')
            return -1;
        errno = 0;
        b = strtoll(p + 1, &end, 10);
        if (*end != '\0' || b <= 0 || errno == ERANGE || size == 0)
            return -1;
        if (b > size)
            b = size;
        *off = size - b;
        *len = b;
        return 0;
    }
    if (*p < '0' || *p > '9')
        return -1;
    errno = 0;
    a = strtoll(p, &end, 10);
    if (*end != '-' || errno == ERANGE)
        return -1;
    if (end[1] != '\0') {
        const char *q = end + 1;
        if (*q < '0' || *q > '9')
            return -1;
        b = strtoll(q, &end, 10);
        if (*end != '\0' || b < a || errno == ERANGE)
            return -1;
    }
    if (a >= size)
        return -1;
    if (b < 0 || b >= size)
        b = size - 1;
    *off = a;
    *len = b - a + 1;
    return 0;
}
