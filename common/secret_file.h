/*
 * 32-byte secrets kept in files (the slide key-encryption key, the edge
 * token key): 64 lower-case hex digits and a newline, in a regular file of
 * this user that only its owner may read. Shared by the modules that keep
 * one, so every such file is checked by the same rule and refused with the
 * same words.
 */
#ifndef GH_COMMON_SECRET_FILE_H
#define GH_COMMON_SECRET_FILE_H

#include <stddef.h>

#define GH_SECRET_LEN 32

/* The secret in path; what names it in an error ("the edge token key"). 0,
 * or -1 with err set: missing, readable by others, not this user's, or not
 * 64 lower-case hex digits. */
int gh_secret_read(const char *path, const char *what, unsigned char key[GH_SECRET_LEN],
                   char *err, size_t errlen);
/* given (the operator's file) is read and never made; without one, own is
 * read, or made (0600, without replacing a file another opener made first)
 * when it does not exist. */
int gh_secret_load(const char *given, const char *own, const char *what,
                   unsigned char key[GH_SECRET_LEN], char *err, size_t errlen);

#endif
