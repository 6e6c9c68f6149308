/*
 * common — small shared pieces every module may use: logging, buffers, time,
 * string helpers and the configuration model. Nothing here knows about
 * sockets, TLS or HTTP.
 */
#ifndef GH_COMMON_COMMON_H
#define GH_COMMON_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define GH_VERSION "0.1.0"

/* Return values of anything that may need more bytes or would block. */
#define GH_OK 0
#define GH_AGAIN (-2)
#define GH_ERR (-1)

#define GH_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* log.c */
enum gh_log_level { GH_LOG_ERR, GH_LOG_WARN, GH_LOG_INFO, GH_LOG_DEBUG };
extern int gh_log_level;
/* Opens (or reopens, for SIGUSR1) the error log; NULL or "stderr" means stderr.
 * Reopening dup2()s onto the same descriptor so other threads never see a gap. */
int gh_log_open(const char *path);
void gh_log(int level, int with_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define gh_log_err(...) gh_log(GH_LOG_ERR, 0, __VA_ARGS__)
#define gh_log_err_errno(...) gh_log(GH_LOG_ERR, 1, __VA_ARGS__)
#define gh_log_warn(...) gh_log(GH_LOG_WARN, 0, __VA_ARGS__)
#define gh_log_warn_errno(...) gh_log(GH_LOG_WARN, 1, __VA_ARGS__)
#define gh_log_info(...) gh_log(GH_LOG_INFO, 0, __VA_ARGS__)
#define gh_log_debug(...)                                                                          \
    do {                                                                                           \
        if (gh_log_level >= GH_LOG_DEBUG)                                                          \
            gh_log(GH_LOG_DEBUG, 0, __VA_ARGS__);                                                  \
    } while (0)
/* Start-up only: a running worker never calls it. */
void gh_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A log file that is written in whole lines by several threads (access and
 * security logs). Lines up to PIPE_BUF-ish sizes are written with one write()
 * on an O_APPEND descriptor, which keeps them whole. */
struct gh_logfile {
    int fd;     /* owned; -1 when disabled */
    char *path; /* owned; NULL for stderr */
};
int gh_logfile_open(struct gh_logfile *lf, const char *path);
int gh_logfile_reopen(struct gh_logfile *lf);
void gh_logfile_write(struct gh_logfile *lf, const char *line, size_t len);
void gh_logfile_close(struct gh_logfile *lf);

/* time.c */
/* Monotonic milliseconds, for timers and durations. */
uint64_t gh_now_ms(void);
/* Wall-clock time formatted as RFC 3339 UTC with milliseconds; buf >= 32. */
void gh_time_rfc3339(char *buf, size_t len);

/* str.c */
/* Copy with truncation check: returns -1 when src did not fit. */
int gh_strlcpy(char *dst, const char *src, size_t size);
char *gh_strdup(const char *s);
char *gh_strndup(const char *s, size_t n);
void *gh_calloc(size_t n, size_t size);
/* realloc that aborts when memory is out, as gh_calloc does. */
void *gh_realloc(void *p, size_t size);
/* Parses a decimal integer within [min, max]; returns 0 or -1. */
int gh_parse_long(const char *s, long min, long max, long *out);
/* "10s", "5m", "1800s", "250ms", "2h" -> milliseconds. */
int gh_parse_duration_ms(const char *s, long long *out);
/* "64k", "1m", "4096" -> bytes. */
int gh_parse_size(const char *s, long long *out);
/* cidr.c */
struct sockaddr;
struct gh_cidr {
    int family; /* 4 or 6 */
    int bits;   /* prefix length */
    unsigned char addr[16];
};
/* "10.0.0.0/8", "192.0.2.7", "2001:db8::/32": 0, or -1 when it is none of these. */
int gh_cidr_parse(const char *s, struct gh_cidr *out);
/* True when the address of sa (AF_INET or AF_INET6) lies in c. */
int gh_cidr_match(const struct gh_cidr *c, const struct sockaddr *sa);

/* fs.c */
/* mkdir -p: 0, or -1 with errno. */
int gh_mkdir_p(const char *path, unsigned mode);
/* Writes a whole file so that a crash leaves the old one or the new one:
 * a temp file beside it (O_EXCL|O_NOFOLLOW), fsync, then rename over path
 * (replace) or link to it (no replace: EEXIST when path exists), then
 * fsync of the folder. 0 once path holds the new text (a folder fsync that
 * fails then is only logged), or -1 with errno and nothing changed. */
int gh_write_file(const char *path, const void *data, size_t len, unsigned mode, int replace);
/* A whole file of at most max bytes, NUL-ended (malloc'd), or NULL with
 * errno (EFBIG when larger). */
char *gh_read_file_max(const char *path, size_t max, size_t *len);

/* One field of an application/x-www-form-urlencoded body, decoded (+ and
 * %XX); NULL when absent or when it decodes to a NUL byte. Caller frees. */
char *gh_form_get(const char *body, size_t len, const char *key);
/* Calls fn(key, value, ctx) for each field of a form-encoded body, both
 * decoded, in order; -1 as soon as fn returns -1 or a field decodes to a
 * NUL. */
/* The last entry of an X-Forwarded-For value into out: the address our
 * own proxy appended for the built-in applications behind it (entries
 * before it are the client's word). "-" when absent, empty or too long. */
void gh_xff_last(const char *xff, char *out, size_t len);
int gh_form_each(const char *body, size_t len,
                 int (*fn)(const char *key, const char *value, void *ctx), void *ctx);
/* Zeroes memory holding a secret in a way the compiler cannot drop. */
void gh_wipe(void *p, size_t n);
/* Wipes and frees a malloc'd string that may hold a secret (NULL is fine). */
void gh_free_secret(char *s);
/* A name of 1 to max bytes of a-z 0-9 '-' '_' '.' (users, tokens, rooms). */
int gh_name_ok(const char *s, size_t max);
/* The value of a hex digit, or -1. */
int gh_hexval(unsigned char c);
/* n bytes as 2n lower-case hex digits and a NUL. */
void gh_hex(const void *b, size_t n, char *out);
/* Exactly 2n lower-case hex digits (then the string's end) into n bytes:
 * 0, or -1 (one spelling per value). */
int gh_unhex(const char *s, unsigned char *out, size_t n);
/* ASCII lower case of c; every other byte as it is (what strncasecmp does
 * in the C locale, without the locale lookup). */
static inline unsigned char gh_ascii_lower(unsigned char c)
{
    return (unsigned char)(c + ((unsigned)(c - 'A') < 26u ? 32 : 0));
}

/* Case-insensitive comparison of a counted string with a C string. Inline
 * because the header classifier calls it for every field of every head:
 * the length of a literal b folds to a constant and most names differ in
 * length, so most calls cost one compare (callgrind: strlen+strncasecmp
 * were ~60 instructions a call). */
static inline int gh_strncaseeq(const char *a, size_t alen, const char *b)
{
    size_t i;

    if (alen != __builtin_strlen(b))
        return 0;
    for (i = 0; i < alen; i++)
        if (gh_ascii_lower((unsigned char)a[i]) != gh_ascii_lower((unsigned char)b[i]))
            return 0;
    return 1;
}
/* A growable string: printf-style appends, storage owned by p (malloc'd;
 * the caller frees it). Start from {NULL, 0, 0}. Aborts when out of memory. */
struct gh_sbuf {
    char *p;
    size_t len, cap;
};
void gh_sbuf_printf(struct gh_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends n bytes as they are (NUL bytes included); the buffer stays
 * NUL-terminated after them. */
void gh_sbuf_append(struct gh_sbuf *b, const void *data, size_t n);
/* json.c: the one JSON string writer (see its top comment for the rules). */
#define GH_JSON_CUT "...(cut)"
/* s (slen bytes, NULL as "") escaped, without quotes, into dst: at most max
 * bytes of s and what dstlen holds; a shortened string ends with
 * GH_JSON_CUT. Always NUL-terminated; returns the length written. For the
 * bounded fields of log lines. */
size_t gh_json_put(char *dst, size_t dstlen, const char *s, size_t slen, size_t max);
/* s as a whole JSON string, quoted, appended to o (NULL as ""). */
void gh_json_str(struct gh_sbuf *o, const char *s);
void gh_json_strn(struct gh_sbuf *o, const char *s, size_t n);
/* FNV-1a over len bytes: hashing for tables and names, not for secrets. */
uint64_t gh_fnv1a(const void *p, size_t len);
/* Splits "host:port" / "[v6]:port" into host and port. */
int gh_split_hostport(const char *s, char *host, size_t hostlen, uint16_t *port);

#endif
