/* Small file-system helpers shared by the stores. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

int gh_mkdir_p(const char *path, unsigned mode)
{
    char p[1024];
    size_t i;

    if (gh_strlcpy(p, path, sizeof(p)) == -1)
        return -1;
    for (i = 1; p[i]; i++)
        if (p[i] == '/') {
            p[i] = '\0';
            if (mkdir(p, (mode_t)mode) == -1 && errno != EEXIST)
                return -1;
            p[i] = '/';
        }
    if (mkdir(p, (mode_t)mode) == -1 && errno != EEXIST)
        return -1;
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char dir[1100];
    const char *slash = strrchr(path, '/');
    int fd, rc;

    if (slash == NULL)
        gh_strlcpy(dir, ".", sizeof(dir));
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash == path ? 1 : slash - path), path);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int gh_write_file(const char *path, const void *data, size_t len, unsigned mode, int replace)
{
    char tmp[1200];
    int fd;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid()) >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    unlink(tmp); /* left by a process that was killed */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
    if (fd == -1)
        return -1;
    if (write(fd, data, len) != (ssize_t)len || fsync(fd) == -1) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e ? e : EIO;
        return -1;
    }
    close(fd);
    /* link() refuses an existing name where rename() replaces it */
    if ((replace ? rename(tmp, path) : link(tmp, path)) == -1) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    if (!replace)
        unlink(tmp);
    /* The new text has its name now and every reader sees it: a caller
     * told "not written" would act on a file that did change. */
    if (fsync_dir_of(path) == -1)
        gh_log_warn_errno("%s: written, but its directory could not be synced", path);
    return 0;
}

char *gh_read_file_max(const char *path, size_t max, size_t *len)
{
    /* No FIFO to block on, no link to follow: a regular file or nothing. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat sb;
    char *buf;
    ssize_t n;
    size_t got = 0;

    if (fd == -1)
        return NULL;
    if (fstat(fd, &sb) == -1) {
        int e = errno;
        close(fd);
        errno = e;
        return NULL;
    }
    if (!S_ISREG(sb.st_mode) || (size_t)sb.st_size > max) {
        close(fd);
        errno = S_ISREG(sb.st_mode) ? EFBIG : EINVAL;
        return NULL;
    }
    /* What the file held when it was opened: one that grows meanwhile is
     * cut there, never read past max. */
    buf = gh_calloc(1, (size_t)sb.st_size + 1);
    while (got < (size_t)sb.st_size && (n = read(fd, buf + got, (size_t)sb.st_size - got)) > 0)
        got += (size_t)n;
    close(fd);
    *len = got;
    return buf;
}
