/*
 * A configuration text as an appliance's own statements and the rest, the
 * part a cluster shares (cluster_conf.c). Only the outline is read (the
 * statements and their spans), so any text that outlines splits; the own
 * part is every top-level statement LOCAL names, each with the blanks
 * before it on its line and the rest of its line, and the shared part is
 * every other byte, in order. Splitting the own part followed by the
 * shared part gives both back unchanged (tests/unit/main/cluster_split.c,
 * fuzz_split).
 */
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "../common/conf.h"
#include "main_int.h"

static const char *const local_kinds[] = {
    "state-dir", "access-log", "security-log", "error-log", "workers", "log-level",
    "store", "meetings-store", "source-table-size", "session-table-size", "slides-kek-file",
};

static int is_local(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(local_kinds) / sizeof(local_kinds[0]); i++)
        if (strcmp(name, local_kinds[i]) == 0)
            return 1;
    return 0;
}

/* The byte after a statement: past its block or arguments, and past the
 * rest of its line when nothing but blanks and a ';' follow. */
static size_t stmt_end(const char *t, size_t len, const struct gh_conf_stmt *s)
{
    size_t e = s->has_block ? s->close + 1 : s->args_end;

    while (e < len && (t[e] == ' ' || t[e] == '\t' || t[e] == ';'))
        e++;
    if (e < len && t[e] == '\r')
        e++;
    if (e < len && t[e] == '\n')
        e++;
    return e;
}

int main_cluster_split(const char *text, size_t len, struct gh_sbuf *local, struct gh_sbuf *shared,
                       char *err, size_t errlen)
{
    struct gh_conf_outline o;
    size_t i, at = 0;

    if (gh_conf_outline(text, len, &o, err, errlen) == -1)
        return -1;
    for (i = 0; i < o.n; i++) {
        const struct gh_conf_stmt *s = &o.v[i];
        size_t b, e;
        if (s->parent != -1 || !is_local(s->name))
            continue;
        /* From the start of its line when only blanks come before it on
         * that line; else from its own first byte (the line's start is
         * another statement's, or a brace's). */
        for (b = s->start; b > at && (text[b - 1] == ' ' || text[b - 1] == '\t');)
            b--;
        if (b > at && text[b - 1] != '\n')
            b = s->start;
        e = stmt_end(text, len, s);
        gh_sbuf_append(shared, text + at, b - at);
        gh_sbuf_append(local, text + b, e - b);
        if (e > b && text[e - 1] != '\n')
            gh_sbuf_append(local, "\n", 1);
        at = e;
    }
    gh_sbuf_append(shared, text + at, len - at);
    gh_conf_outline_free(&o);
    return 0;
}
