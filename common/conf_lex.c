/*
 * Lexer for the config syntax. Words run until white space, '{', '}', ';',
 * '#' or a quote; strings are double-quoted with \" and \\ escapes and may not
 * span lines. A newline or ';' ends a directive. Columns count bytes from 1.
 */
#include "conf_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

void gh__conf_error(char *err, size_t errlen, const char *file, struct gh_loc loc,
                    const char *fmt, ...)
{
    int n;
    va_list ap;

    n = snprintf(err, errlen, "%s:%d:%d: ", file, loc.line, loc.col);
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

void gh__lex_init(struct gh_lexer *lx, const char *file, const char *text, size_t len, char *err,
                  size_t errlen)
{
    lx->file = file;
    lx->start = text;
    lx->p = text;
    lx->end = text + len;
    lx->line = 1;
    lx->col = 1;
    lx->err = err;
    lx->errlen = errlen;
}

static int is_word_byte(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '{' && c != '}' && c != ';' && c != '#' && c != '"';
}

static void advance(struct gh_lexer *lx)
{
    if (*lx->p == '\n') {
        lx->line++;
        lx->col = 1;
    } else {
        lx->col++;
    }
    lx->p++;
}

int gh__lex_next(struct gh_lexer *lx, struct gh_tok *t)
{
    char buf[GH_CONF_MAX_TOKEN];
    size_t n = 0;

    t->text = NULL;
    for (;;) {
        if (lx->p >= lx->end) {
            t->type = GH_TOK_EOF;
            t->off = t->end = (size_t)(lx->p - lx->start);
            t->loc.line = lx->line;
            t->loc.col = lx->col;
            return 0;
        }
        if (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r') {
            if (*lx->p == '\r' && (lx->p + 1 >= lx->end || lx->p[1] != '\n')) {
                struct gh_loc l = {lx->line, lx->col};
                gh__conf_error(lx->err, lx->errlen, lx->file, l, "bare carriage return");
                return -1;
            }
            advance(lx);
        } else if (*lx->p == '#') {
            while (lx->p < lx->end && *lx->p != '\n')
                advance(lx);
        } else {
            break;
        }
    }
    t->loc.line = lx->line;
    t->loc.col = lx->col;
    t->off = (size_t)(lx->p - lx->start);
    t->end = t->off + 1;
    switch (*lx->p) {
    case '\n':
    case ';':
        t->type = GH_TOK_END;
        advance(lx);
        return 0;
    case '{':
        t->type = GH_TOK_LBRACE;
        advance(lx);
        return 0;
    case '}':
        t->type = GH_TOK_RBRACE;
        advance(lx);
        return 0;
    case '"':
        advance(lx);
        for (;;) {
            if (lx->p >= lx->end || *lx->p == '\n') {
                gh__conf_error(lx->err, lx->errlen, lx->file, t->loc, "unterminated string");
                return -1;
            }
            if (*lx->p == '"') {
                advance(lx);
                break;
            }
            if (*lx->p == '\\') {
                advance(lx);
                if (lx->p >= lx->end || (*lx->p != '"' && *lx->p != '\\')) {
                    struct gh_loc l = {lx->line, lx->col};
                    gh__conf_error(lx->err, lx->errlen, lx->file, l,
                                   "unknown escape in string (only \\\" and \\\\)");
                    return -1;
                }
            }
            if ((unsigned char)*lx->p < 0x20 && *lx->p != '\t') {
                struct gh_loc l = {lx->line, lx->col};
                gh__conf_error(lx->err, lx->errlen, lx->file, l, "control character in string");
                return -1;
            }
            if (n + 1 >= sizeof(buf)) {
                gh__conf_error(lx->err, lx->errlen, lx->file, t->loc, "string too long");
                return -1;
            }
            buf[n++] = *lx->p;
            advance(lx);
        }
        t->type = GH_TOK_STRING;
        t->end = (size_t)(lx->p - lx->start);
        t->text = gh_strndup(buf, n);
        return 0;
    default:
        if (!is_word_byte((unsigned char)*lx->p)) {
            gh__conf_error(lx->err, lx->errlen, lx->file, t->loc,
                           "unexpected byte 0x%02x", (unsigned char)*lx->p);
            return -1;
        }
        while (lx->p < lx->end && is_word_byte((unsigned char)*lx->p)) {
            if (n + 1 >= sizeof(buf)) {
                gh__conf_error(lx->err, lx->errlen, lx->file, t->loc, "word too long");
                return -1;
            }
            buf[n++] = *lx->p;
            advance(lx);
        }
        t->type = GH_TOK_WORD;
        t->end = (size_t)(lx->p - lx->start);
        t->text = gh_strndup(buf, n);
        return 0;
    }
}
