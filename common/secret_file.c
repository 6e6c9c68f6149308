#include "secret_file.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

int gh_secret_read(const char *path, const char *what, unsigned char key[GH_SECRET_LEN],
                   char *err, size_t errlen)
{
    char buf[2 * GH_SECRET_LEN + 4];
    struct stat sb;
    ssize_t n;
    size_t len;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd == -1) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) || (sb.st_mode & 077) != 0 ||
        sb.st_uid != geteuid()) {
        snprintf(err, errlen,
                 "%s: %s must be a regular file of this user that only its owner may read "
                 "(chmod 600)",
                 path, what);
        close(fd);
        return -1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    len = n > 0 ? (size_t)n : 0;
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    buf[len] = '\0';
    if (n < 0 || len != 2 * GH_SECRET_LEN || gh_unhex(buf, key, GH_SECRET_LEN) == -1) {
        snprintf(err, errlen, "%s: %s is not 64 lower-case hex digits (openssl rand -hex 32)",
                 path, what);
        gh_wipe(buf, sizeof(buf));
        return -1;
    }
    gh_wipe(buf, sizeof(buf));
    return 0;
}

int gh_secret_load(const char *given, const char *own, const char *what,
                   unsigned char key[GH_SECRET_LEN], char *err, size_t errlen)
{
    char text[2 * GH_SECRET_LEN + 2];

    if (given != NULL)
        return gh_secret_read(given, what, key, err, errlen);
    if (access(own, F_OK) == 0 || errno != ENOENT)
        return gh_secret_read(own, what, key, err, errlen);
    if (RAND_bytes(key, GH_SECRET_LEN) != 1) {
        snprintf(err, errlen, "no randomness for %s", what);
        return -1;
    }
    gh_hex(key, GH_SECRET_LEN, text);
    text[2 * GH_SECRET_LEN] = '\n';
    /* Without replace: a second opener that raced us keeps the first key. */
    if (gh_write_file(own, text, 2 * GH_SECRET_LEN + 1, 0600, 0) == -1 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", own, strerror(errno));
        gh_wipe(text, sizeof(text));
        return -1;
    }
    gh_wipe(text, sizeof(text));
    return gh_secret_read(own, what, key, err, errlen);
}
