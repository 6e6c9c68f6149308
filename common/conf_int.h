/* Private to the configuration files of common/. */
#ifndef GH_COMMON_CONF_INT_H
#define GH_COMMON_CONF_INT_H

#include <stddef.h>

#include "conf.h"

enum gh_tok_type { GH_TOK_WORD, GH_TOK_STRING, GH_TOK_LBRACE, GH_TOK_RBRACE, GH_TOK_END,
                   GH_TOK_EOF };

struct gh_tok {
    enum gh_tok_type type;
    char *text; /* owned; the word, or the string with escapes resolved */
    struct gh_loc loc;
    size_t off, end; /* bytes [off, end) of the text it came from */
};

struct gh_lexer {
    const char *file;
    const char *start, *p, *end;
    int line, col;
    char *err;
    size_t errlen;
};

#define GH_CONF_MAX_TOKEN 4096
/* Bound of the directive table; a unit test checks the table fits. */
#define GH_CONF_MAX_DIRECTIVES 256

/* conf_lex.c */
void gh__lex_init(struct gh_lexer *lx, const char *file, const char *text, size_t len, char *err,
                  size_t errlen);
/* Returns 0 with *t filled (caller frees t->text) or -1 with the error set. */
int gh__lex_next(struct gh_lexer *lx, struct gh_tok *t);
void gh__conf_error(char *err, size_t errlen, const char *file, struct gh_loc loc,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* conf_write.c */
/* Formats a duration or size in the largest exact unit. */
void gh__conf_fmt_duration(char *buf, size_t len, long long ms);
void gh__conf_fmt_size(char *buf, size_t len, long long bytes);
struct gh_sbuf;
/* Writes v as a bare word when the lexer reads it back as one, else quoted. */
void gh__conf_write_value(struct gh_sbuf *o, const char *v);

/* conf_headers.c: request-header, response-header, rewrite-host */
/* True when directive is one of the three whose grammar conf_headers.c reads. */
int gh__conf_headers_own(const char *directive);
/* Reads one of them into sv->headers; -1 with "file:line:col: ..." in err. */
int gh__conf_headers_stmt(struct gh_conf_service *sv, const struct gh_tok *name,
                          const struct gh_tok *args, int nargs, int has_block, const char *file,
                          char *err, size_t errlen);
/* After the service block: what needs the whole block (server-header
 * follows strip-version-headers unless seen[] says it was written; no rule
 * sets the persistence cookie). -1 with err set. */
int gh__conf_headers_finish(struct gh_conf_service *sv, const unsigned char *seen,
                            const char *file, char *err, size_t errlen);
void gh__conf_headers_free(struct gh_conf_headers *h);
/* The service's rules, canonically, one per line with a 4-space indent. */
void gh__conf_headers_write(struct gh_sbuf *o, const struct gh_conf_service *s);

#endif
