/*
 * The shape of a config text without its meaning: every statement with the
 * byte span of its name, first argument, arguments and block. Editors use
 * it to rewrite one directive and keep every other byte, comments
 * included. The same lexer as the parser reads it, so a span here is
 * exactly what the parser will see.
 */
#include "conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "conf_int.h"

#define OUTLINE_MAX_STMTS 200000
#define OUTLINE_MAX_DEPTH 8

static int push(struct gh_conf_outline *o, size_t *cap, const struct gh_tok *t, int parent)
{
    struct gh_conf_stmt *s;

    if (o->n == OUTLINE_MAX_STMTS)
        return -1;
    if (o->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        o->v = realloc(o->v, *cap * sizeof(*o->v));
        if (o->v == NULL)
            gh_fatal("out of memory");
    }
    s = &o->v[o->n++];
    memset(s, 0, sizeof(*s));
    s->name = t->text;
    s->parent = parent;
    s->start = t->off;
    s->args_end = t->end;
    s->line = t->loc.line;
    return 0;
}

int gh_conf_outline(const char *text, size_t len, struct gh_conf_outline *o, char *err,
                    size_t errlen)
{
    struct gh_lexer lx;
    struct gh_tok t;
    int stack[OUTLINE_MAX_DEPTH], depth = 0, cur = -1;
    size_t cap = 0;

    memset(o, 0, sizeof(*o));
    gh__lex_init(&lx, "config", text, len, err, errlen);
    for (;;) {
        if (gh__lex_next(&lx, &t) == -1)
            goto fail;
        switch (t.type) {
        case GH_TOK_WORD:
        case GH_TOK_STRING:
            if (cur == -1) {
                if (push(o, &cap, &t, depth ? stack[depth - 1] : -1) == -1) {
                    gh__conf_error(err, errlen, "config", t.loc, "too many statements");
                    free(t.text);
                    goto fail;
                }
                cur = (int)o->n - 1;
                break;
            }
            if (o->v[cur].arg0 == NULL) {
                o->v[cur].arg0 = t.text;
                o->v[cur].arg0_off = t.off;
                o->v[cur].arg0_end = t.end;
            } else {
                free(t.text);
            }
            o->v[cur].args_end = t.end;
            break;
        case GH_TOK_END:
            cur = -1;
            break;
        case GH_TOK_LBRACE:
            if (cur == -1) {
                gh__conf_error(err, errlen, "config", t.loc, "a block needs a directive");
                goto fail;
            }
            if (depth == OUTLINE_MAX_DEPTH) {
                gh__conf_error(err, errlen, "config", t.loc, "blocks nested too deep");
                goto fail;
            }
            o->v[cur].has_block = 1;
            o->v[cur].open = t.off;
            stack[depth++] = cur;
            cur = -1;
            break;
        case GH_TOK_RBRACE:
            if (depth == 0) {
                gh__conf_error(err, errlen, "config", t.loc, "'}' without '{'");
                goto fail;
            }
            o->v[stack[--depth]].close = t.off;
            cur = -1;
            break;
        case GH_TOK_EOF:
            if (depth != 0) {
                gh__conf_error(err, errlen, "config", t.loc, "block not closed");
                goto fail;
            }
            return 0;
        }
    }
fail:
    gh_conf_outline_free(o);
    return -1;
}

void gh_conf_outline_free(struct gh_conf_outline *o)
{
    size_t i;

    for (i = 0; i < o->n; i++) {
        free(o->v[i].name);
        free(o->v[i].arg0);
    }
    free(o->v);
    memset(o, 0, sizeof(*o));
}

int gh_conf_outline_find(const struct gh_conf_outline *o, const char *kind, const char *name)
{
    size_t i;

    for (i = 0; i < o->n; i++)
        if (o->v[i].parent == -1 && o->v[i].has_block && strcmp(o->v[i].name, kind) == 0 &&
            o->v[i].arg0 != NULL && strcmp(o->v[i].arg0, name) == 0)
            return (int)i;
    return -1;
}
