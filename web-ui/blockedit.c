/*
 * Directive-level edits of one named block: the structured forms (a
 * service in sections, an identity provider, a group, a rule set) send
 * only the directives they changed, and everything else in the block
 * (directives the form does not show, comments, order) stays byte for
 * byte. A directive's new lines replace its old ones in place; a new
 * directive goes before the closing brace; no lines remove it.
 *
 * Each value line is read back by the config lexer as "DIRECTIVE LINE"
 * and must be exactly one statement without a block, ending with its last
 * token, so a value cannot smuggle a second directive, a brace or a
 * comment (which would swallow a brace on the same line) into the file;
 * what the directive means is for the validator of the whole file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/common.h"
#include "webui_int.h"

#define MAX_EDITS 4096

struct edit {
    size_t off, end;
    char *rep;
    int seq;
};

struct edits {
    struct edit v[MAX_EDITS];
    int n;
};

static int add_edit(struct edits *e, size_t off, size_t end, char *rep)
{
    if (e->n == MAX_EDITS) {
        free(rep);
        return -1;
    }
    e->v[e->n].off = off;
    e->v[e->n].end = end;
    e->v[e->n].rep = rep;
    e->v[e->n].seq = e->n;
    e->n++;
    return 0;
}

static int edit_cmp(const void *a, const void *b)
{
    const struct edit *x = a, *y = b;
    int xi = x->end == x->off, yi = y->end == y->off;

    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    if (xi != yi) /* an insertion goes before a removal starting there */
        return xi ? -1 : 1;
    return x->seq - y->seq;
}

static void edits_free(struct edits *e)
{
    int i;

    for (i = 0; i < e->n; i++)
        free(e->v[i].rep);
    e->n = 0;
}

/* The text with every edit made; NULL if two overlap. */
static char *edits_apply(struct edits *e, const char *text, size_t len)
{
    struct gh_sbuf o = {NULL, 0, 0};
    size_t pos = 0;
    int i;

    qsort(e->v, (size_t)e->n, sizeof(e->v[0]), edit_cmp);
    for (i = 0; i < e->n; i++) {
        if (e->v[i].off < pos || e->v[i].end > len) {
            free(o.p);
            return NULL;
        }
        gh_sbuf_append(&o, text + pos, e->v[i].off - pos);
        gh_sbuf_append(&o, e->v[i].rep, strlen(e->v[i].rep));
        pos = e->v[i].end;
    }
    gh_sbuf_append(&o, text + pos, len - pos);
    if (o.p == NULL)
        o.p = gh_strdup("");
    return o.p;
}

static size_t line_start(const char *t, size_t off)
{
    while (off > 0 && t[off - 1] != '\n')
        off--;
    return off;
}

/* Whether only blanks come between the start of off's line and off. */
static int blank_before(const char *t, size_t off)
{
    size_t i;

    for (i = line_start(t, off); i < off; i++)
        if (t[i] != ' ' && t[i] != '\t')
            return 0;
    return 1;
}

/* If only blanks, one ';' and a comment follow off to the end of its line,
 * the offset just after that line's '\n' (or len); else 0. */
static size_t rest_of_line_empty(const char *t, size_t len, size_t off)
{
    size_t i = off;

    while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\r'))
        i++;
    if (i < len && t[i] == ';')
        i++;
    while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\r'))
        i++;
    if (i < len && t[i] == '#')
        while (i < len && t[i] != '\n')
            i++;
    if (i == len)
        return len;
    return t[i] == '\n' ? i + 1 : 0;
}

static int alone_on_line(const char *t, size_t len, const struct gh_conf_stmt *s)
{
    return blank_before(t, s->start) && rest_of_line_empty(t, len, s->args_end) != 0;
}

static char *indent_of(const char *t, size_t off)
{
    size_t ls = line_start(t, off);

    return gh_strndup(t + ls, off - ls);
}

int webui__conf_word(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    if (*p == '\0')
        return 0;
    for (; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '{' || *p == '}' || *p == ';' || *p == '#' ||
            *p == '"')
            return 0;
    return 1;
}

int webui__conf_quote(struct gh_sbuf *o, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    for (; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return -1;
    if (webui__conf_word(s)) {
        gh_sbuf_printf(o, "%s", s);
        return 0;
    }
    gh_sbuf_printf(o, "\"");
    for (p = (const unsigned char *)s; *p; p++)
        gh_sbuf_printf(o, (*p == '"' || *p == '\\') ? "\\%c" : "%c", *p);
    gh_sbuf_printf(o, "\"");
    return 0;
}

/* Whether c ends a word for the lexer (so a token may touch it). */
static int separates(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '{' || c == '}' || c == ';' ||
           c == '#';
}

static int valid_directive(const char *d)
{
    size_t i, n = strlen(d);

    if (n == 0 || n > 40 || d[0] < 'a' || d[0] > 'z')
        return 0;
    for (i = 0; i < n; i++)
        if (!((d[i] >= 'a' && d[i] <= 'z') || (d[i] >= '0' && d[i] <= '9') || d[i] == '-'))
            return 0;
    return 1;
}

/* Splits a field's value into its non-empty lines, each checked to be one
 * plain statement of directive d; the count, or -1 with err. */
static int value_lines(const char *d, const char *value, char ***out, char *err, size_t errlen)
{
    const char *p = value;
    char **v = NULL;
    int n = 0;

    *out = NULL;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        const char *a = p, *z = p + l;
        while (a < z && (*a == ' ' || *a == '\t'))
            a++;
        while (z > a && (z[-1] == ' ' || z[-1] == '\t' || z[-1] == '\r'))
            z--;
        if (z > a) {
            struct gh_sbuf probe = {NULL, 0, 0};
            struct gh_conf_outline o;
            char e2[256];
            int ok;
            if (n == 10000 || z - a > 4000) {
                snprintf(err, errlen, "%s: too many or too long lines", d);
                goto bad;
            }
            gh_sbuf_printf(&probe, "%s %.*s\n", d, (int)(z - a), a);
            ok = gh_conf_outline(probe.p, probe.len, &o, e2, sizeof(e2)) == 0;
            if (ok) {
                /* ...ending with its last token: a trailing comment would
                 * swallow what follows it once the line is joined inline */
                ok = o.n == 1 && !o.v[0].has_block && strcmp(o.v[0].name, d) == 0 &&
                     o.v[0].args_end == probe.len - 1;
                gh_conf_outline_free(&o);
            }
            free(probe.p);
            if (!ok) {
                snprintf(err, errlen,
                         "%s: \"%.*s\" is not one value (no ; { } #comment or open quote)", d,
                         (int)(z - a > 200 ? 200 : z - a), a);
                goto bad;
            }
            v = realloc(v, (size_t)(n + 1) * sizeof(*v));
            if (v == NULL)
                gh_fatal("out of memory");
            v[n++] = gh_strndup(a, (size_t)(z - a));
        }
        p = e ? e + 1 : p + l;
    }
    *out = v;
    return n;
bad:
    while (n > 0)
        free(v[--n]);
    free(v);
    return -1;
}

static void lines_free(char **v, int n)
{
    while (n > 0)
        free(v[--n]);
    free(v);
}

/* Edits for one directive of block b: its statements' lines become v. */
static int set_directive(const char *t, size_t len, const struct gh_conf_outline *o, int b,
                         const char *d, char **v, int nv, struct edits *e, char *err,
                         size_t errlen)
{
    size_t i;
    int first = -1, k;

    for (i = (size_t)b + 1; i < o->n; i++) {
        const struct gh_conf_stmt *s = &o->v[i];
        if (s->parent != b || strcmp(s->name, d) != 0)
            continue;
        if (s->has_block) {
            snprintf(err, errlen, "%s is a block here: edit the block's text instead", d);
            return -1;
        }
        if (first == -1 && nv > 0) {
            struct gh_sbuf r = {NULL, 0, 0};
            size_t next = rest_of_line_empty(t, len, s->args_end);
            first = (int)i;
            gh_sbuf_printf(&r, "%s %s", d, v[0]);
            add_edit(e, s->start, s->args_end, r.p);
            if (nv > 1 && next != 0 && blank_before(t, s->start)) {
                /* the other lines follow on lines of their own */
                struct gh_sbuf m = {NULL, 0, 0};
                char *ind = indent_of(t, s->start);
                if (next == len && (len == 0 || t[len - 1] != '\n'))
                    gh_sbuf_printf(&m, "\n");
                for (k = 1; k < nv; k++)
                    gh_sbuf_printf(&m, "%s%s %s\n", ind, d, v[k]);
                free(ind);
                add_edit(e, next, next, m.p);
            } else if (nv > 1) {
                struct gh_sbuf m = {NULL, 0, 0};
                for (k = 1; k < nv; k++)
                    gh_sbuf_printf(&m, "; %s %s", d, v[k]);
                add_edit(e, s->args_end, s->args_end, m.p);
            }
            continue;
        }
        if (alone_on_line(t, len, s)) {
            add_edit(e, line_start(t, s->start), rest_of_line_empty(t, len, s->args_end),
                     gh_strdup(""));
        } else {
            size_t end = s->args_end, j = end;
            while (j < len && (t[j] == ' ' || t[j] == '\t'))
                j++;
            if (j < len && t[j] == ';')
                end = j + 1;
            add_edit(e, s->start, end, gh_strdup(""));
        }
    }
    if (first == -1 && nv > 0) {
        /* new here: before the closing brace, indented like the others */
        const struct gh_conf_stmt *blk = &o->v[b];
        struct gh_sbuf m = {NULL, 0, 0};
        char *ind = NULL;
        for (i = (size_t)b + 1; i < o->n && ind == NULL; i++)
            if (o->v[i].parent == b && blank_before(t, o->v[i].start))
                ind = indent_of(t, o->v[i].start);
        if (ind == NULL)
            ind = gh_strdup("    ");
        if (blank_before(t, blk->close)) {
            for (k = 0; k < nv; k++)
                gh_sbuf_printf(&m, "%s%s %s\n", ind, d, v[k]);
            add_edit(e, line_start(t, blk->close), line_start(t, blk->close), m.p);
        } else {
            for (k = 0; k < nv; k++)
                gh_sbuf_printf(&m, "; %s %s", d, v[k]);
            gh_sbuf_printf(&m, " ");
            add_edit(e, blk->close, blk->close, m.p);
        }
        free(ind);
    }
    if (e->n == MAX_EDITS) {
        snprintf(err, errlen, "too many changes at once");
        return -1;
    }
    return 0;
}

char *webui__block_set(const char *text, size_t len, const char *kind, const char *name,
                       const struct webui_field *f, size_t nf, unsigned *status, char *err,
                       size_t errlen)
{
    struct gh_conf_outline o;
    struct edits *e = gh_calloc(1, sizeof(*e));
    char *out = NULL;
    size_t i, j;
    int b;

    if (gh_conf_outline(text, len, &o, err, errlen) == -1) {
        free(e);
        return NULL;
    }
    b = gh_conf_outline_find(&o, kind, name);
    if (b == -1) {
        *status = 404;
        snprintf(err, errlen, "no %s '%.200s'", kind, name);
        goto done;
    }
    for (i = 0; i < nf; i++) {
        char **v;
        int nv;
        for (j = 0; j < i; j++)
            if (strcmp(f[j].key, f[i].key) == 0) {
                snprintf(err, errlen, "%.60s: given twice (send its lines in one field)",
                         f[i].key);
                goto done;
            }
        if (strcmp(f[i].key, "_name") == 0) {
            struct gh_sbuf q = {NULL, 0, 0};
            if (f[i].value[0] == '\0' || strlen(f[i].value) > 120 ||
                webui__conf_quote(&q, f[i].value) == -1) {
                free(q.p);
                snprintf(err, errlen, "name: 1 to 120 printable characters");
                goto done;
            }
            if (strcmp(f[i].value, name) != 0 && gh_conf_outline_find(&o, kind, f[i].value) != -1) {
                free(q.p);
                *status = 409;
                snprintf(err, errlen, "a %s named '%.200s' exists already", kind, f[i].value);
                goto done;
            }
            {
                /* a quoted name may touch its neighbours (kind"a"b): keep a
                 * bare one apart from them */
                size_t nx = o.v[b].arg0_end, pv = o.v[b].arg0_off;
                struct gh_sbuf r = {NULL, 0, 0};
                gh_sbuf_printf(&r, "%s%s%s", pv > 0 && separates(text[pv - 1]) ? "" : " ", q.p,
                               nx >= len || separates(text[nx]) ? "" : " ");
                free(q.p);
                add_edit(e, o.v[b].arg0_off, o.v[b].arg0_end, r.p);
            }
            continue;
        }
        if (!valid_directive(f[i].key)) {
            snprintf(err, errlen, "'%.60s' is not a directive name", f[i].key);
            goto done;
        }
        nv = value_lines(f[i].key, f[i].value, &v, err, errlen);
        if (nv < 0)
            goto done;
        if (set_directive(text, len, &o, b, f[i].key, v, nv, e, err, errlen) == -1) {
            lines_free(v, nv);
            goto done;
        }
        lines_free(v, nv);
    }
    out = edits_apply(e, text, len);
    if (out == NULL)
        snprintf(err, errlen, "the changes overlap");
done:
    edits_free(e);
    free(e);
    gh_conf_outline_free(&o);
    return out;
}

char *webui__block_add(const char *text, size_t len, const char *kind,
                       const struct webui_field *f, size_t nf, unsigned *status, char *err,
                       size_t errlen)
{
    struct gh_sbuf nt = {NULL, 0, 0};
    const char *name = NULL;
    size_t i;
    char *out;

    for (i = 0; i < nf; i++)
        if (strcmp(f[i].key, "_name") == 0)
            name = f[i].value;
    if (name == NULL || name[0] == '\0') {
        snprintf(err, errlen, "name: needed");
        return NULL;
    }
    /* An empty block first, then the fields through the same path as an
     * edit, so both check values alike. */
    gh_sbuf_printf(&nt, "%.*s%s\n%s ", (int)len, text, len && text[len - 1] != '\n' ? "\n" : "",
                   kind);
    if (strlen(name) > 120 || webui__conf_quote(&nt, name) == -1) {
        free(nt.p);
        snprintf(err, errlen, "name: 1 to 120 printable characters");
        return NULL;
    }
    gh_sbuf_printf(&nt, " {\n}\n");
    {
        struct gh_conf_outline o;
        if (gh_conf_outline(text, len, &o, err, errlen) == -1) {
            free(nt.p);
            return NULL;
        }
        if (gh_conf_outline_find(&o, kind, name) != -1) {
            gh_conf_outline_free(&o);
            free(nt.p);
            *status = 409;
            snprintf(err, errlen, "a %s named '%.200s' exists already", kind, name);
            return NULL;
        }
        gh_conf_outline_free(&o);
    }
    {
        /* _name is the block's own name now: leave it out of the edit */
        struct webui_field *g = gh_calloc(nf + 1, sizeof(*g));
        size_t n = 0;
        for (i = 0; i < nf; i++)
            if (strcmp(f[i].key, "_name") != 0)
                g[n++] = f[i];
        out = webui__block_set(nt.p, nt.len, kind, name, g, n, status, err, errlen);
        free(g);
    }
    free(nt.p);
    return out;
}

char *webui__block_delete(const char *text, size_t len, const char *kind, const char *name,
                          unsigned *status, char *err, size_t errlen)
{
    struct gh_conf_outline o;
    struct gh_sbuf nt = {NULL, 0, 0};
    size_t start, end;
    int b;

    if (gh_conf_outline(text, len, &o, err, errlen) == -1)
        return NULL;
    b = gh_conf_outline_find(&o, kind, name);
    if (b == -1) {
        gh_conf_outline_free(&o);
        *status = 404;
        snprintf(err, errlen, "no %s '%.200s'", kind, name);
        return NULL;
    }
    start = o.v[b].start;
    end = o.v[b].close + 1;
    if (blank_before(text, start) && rest_of_line_empty(text, len, end) != 0) {
        start = line_start(text, start);
        end = rest_of_line_empty(text, len, end);
    }
    gh_conf_outline_free(&o);
    gh_sbuf_printf(&nt, "%.*s%.*s", (int)start, text, (int)(len - end), text + end);
    if (nt.p == NULL)
        nt.p = gh_strdup("");
    return nt.p;
}

int webui__block_json(const char *text, size_t len, const char *kind, const char *name,
                      struct gh_sbuf *out, char *err, size_t errlen)
{
    struct gh_conf_outline o;
    size_t i;
    int b, first = 1;

    if (gh_conf_outline(text, len, &o, err, errlen) == -1)
        return -1;
    b = gh_conf_outline_find(&o, kind, name);
    if (b == -1) {
        gh_conf_outline_free(&o);
        snprintf(err, errlen, "no %s '%.200s'", kind, name);
        return -1;
    }
    gh_sbuf_printf(out, "\"kind\":");
    gh_json_str(out, kind);
    gh_sbuf_printf(out, ",\"name\":");
    gh_json_str(out, name);
    gh_sbuf_printf(out, ",\"line\":%d,\"directives\":[", o.v[b].line);
    for (i = (size_t)b + 1; i < o.n; i++) {
        const struct gh_conf_stmt *s = &o.v[i];
        size_t vs, ve;
        char *val;
        if (s->parent != b)
            continue;
        vs = s->arg0 ? s->arg0_off : s->args_end;
        ve = s->has_block ? s->close + 1 : s->args_end;
        val = gh_strndup(text + vs, ve - vs);
        gh_sbuf_printf(out, "%s{\"name\":", first ? "" : ",");
        gh_json_str(out, s->name);
        gh_sbuf_printf(out, ",\"value\":");
        gh_json_str(out, val);
        gh_sbuf_printf(out, ",\"line\":%d,\"block\":%s}", s->line, s->has_block ? "true" : "false");
        free(val);
        first = 0;
    }
    gh_sbuf_printf(out, "]");
    gh_conf_outline_free(&o);
    return 0;
}

static int collect(const char *key, const char *value, void *ctx)
{
    struct webui_fields *fm = ctx;

    if (strcmp(key, "csrf") == 0)
        return 0;
    return webui__fields_add(fm, key, value);
}

int webui__fields_add(struct webui_fields *fm, const char *key, const char *value)
{
    if (fm->n == WEBUI_MAX_FIELDS)
        return -1;
    fm->keys[fm->n] = gh_strdup(key);
    fm->values[fm->n] = gh_strdup(value);
    fm->f[fm->n].key = fm->keys[fm->n];
    fm->f[fm->n].value = fm->values[fm->n];
    fm->n++;
    return 0;
}

int webui__fields_parse(const char *body, size_t blen, struct webui_fields *fm)
{
    memset(fm, 0, sizeof(*fm));
    return gh_form_each(body, blen, collect, fm);
}

void webui__fields_free(struct webui_fields *fm)
{
    size_t i;

    for (i = 0; i < fm->n; i++) {
        free(fm->keys[i]);
        free(fm->values[i]);
    }
    fm->n = 0;
}
