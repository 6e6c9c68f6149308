/*
 * Recursive-descent parser from tokens to the model. A directive is a word,
 * its arguments, and either the end of the line or a block. The table in
 * conf_table.c says which directives exist where; generic ones are set by
 * type, the few with their own grammar by a function here. After parsing,
 * references between blocks are checked; no file named in the config is
 * opened here (that is the build step's job, with the same located errors).
 */
#include "conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "conf_int.h"

#define MAX_ARGS 32
#define MAX_DEPTH 4
#define MAX_ITEMS 4096

struct parser {
    struct gh_lexer lx;
    struct gh_tok pending;
    int has_pending;
    char *err;
    size_t errlen;
    const char *file;
};

struct stmt {
    struct gh_tok name;
    struct gh_tok args[MAX_ARGS];
    int nargs;
    int has_block;
};

static const char *const app_names[] = {"status", "management", "conference", "admin"};

static int next(struct parser *ps, struct gh_tok *t)
{
    if (ps->has_pending) {
        *t = ps->pending;
        ps->has_pending = 0;
        return 0;
    }
    return gh__lex_next(&ps->lx, t);
}

static void stmt_free(struct stmt *s)
{
    int i;

    free(s->name.text);
    for (i = 0; i < s->nargs; i++)
        free(s->args[i].text);
    s->nargs = 0;
    s->name.text = NULL;
}

#define ERR(ps, loc, ...) gh__conf_error((ps)->err, (ps)->errlen, (ps)->file, (loc), __VA_ARGS__)

/* Reads one statement's arguments after its name; stops before a block. */
static int read_args(struct parser *ps, struct stmt *s)
{
    struct gh_tok t;

    s->nargs = 0;
    s->has_block = 0;
    for (;;) {
        if (next(ps, &t) == -1)
            return -1;
        switch (t.type) {
        case GH_TOK_WORD:
        case GH_TOK_STRING:
            if (s->nargs == MAX_ARGS) {
                free(t.text);
                ERR(ps, t.loc, "too many arguments to '%s'", s->name.text);
                return -1;
            }
            s->args[s->nargs++] = t;
            break;
        case GH_TOK_LBRACE:
            s->has_block = 1;
            return 0;
        case GH_TOK_END:
            return 0;
        case GH_TOK_RBRACE:
        case GH_TOK_EOF:
            ps->pending = t;
            ps->has_pending = 1;
            return 0;
        }
    }
}

static const struct gh_conf_directive *lookup(enum gh_conf_ctx ctx, const char *name)
{
    size_t i;

    for (i = 0; i < gh_conf_ndirectives; i++)
        if (gh_conf_directives[i].ctx == ctx && strcmp(gh_conf_directives[i].name, name) == 0)
            return &gh_conf_directives[i];
    return NULL;
}

static int word_in(const char *w, const char *list)
{
    size_t n = strlen(w);
    const char *p = list;

    while (*p) {
        const char *e = strchr(p, ' ');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && strncmp(p, w, n) == 0)
            return 1;
        if (e == NULL)
            break;
        p = e + 1;
    }
    return 0;
}

static void list_push(struct gh_conf_list *l, const char *w)
{
    char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

    if (v == NULL)
        abort();
    l->v = v;
    l->v[l->n++] = gh_strdup(w);
}

static void list_clear(struct gh_conf_list *l)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Sets a typed field from its text. Used for defaults too (loc.line 0). */
static int set_value(struct parser *ps, const struct gh_conf_directive *d, void *base,
                     const char *v, struct gh_loc loc)
{
    char *field = (char *)base + d->off;
    long long n;

    switch (d->type) {
    case GH_T_STR:
        if (d->enums != NULL && !word_in(v, d->enums)) {
            ERR(ps, loc, "'%s' must be one of: %s", d->name, d->enums);
            return -1;
        }
        free(*(char **)(void *)field);
        *(char **)(void *)field = gh_strdup(v);
        return 0;
    case GH_T_WORKERS:
        if (strcmp(v, "auto") == 0) {
            *(long long *)(void *)field = 0;
            return 0;
        }
        /* FALLTHROUGH */
    case GH_T_INT: {
        long l;
        if (gh_parse_long(v, (long)d->min, (long)d->max, &l) == -1) {
            ERR(ps, loc, "'%s' needs a whole number from %lld to %lld", d->name, d->min, d->max);
            return -1;
        }
        *(long long *)(void *)field = l;
        return 0;
    }
    case GH_T_DURATION:
        if (gh_parse_duration_ms(v, &n) == -1 || n < d->min || n > d->max) {
            char lo[32], hi[32];
            gh__conf_fmt_duration(lo, sizeof(lo), d->min);
            gh__conf_fmt_duration(hi, sizeof(hi), d->max);
            ERR(ps, loc, "'%s' needs a duration such as 250ms, 10s, 20m (%s to %s)", d->name, lo,
                hi);
            return -1;
        }
        *(long long *)(void *)field = n;
        return 0;
    case GH_T_SIZE:
        if (gh_parse_size(v, &n) == -1 || n < d->min || n > d->max) {
            ERR(ps, loc, "'%s' needs a size from %lld to %lld bytes (k and m suffixes allowed)",
                d->name, d->min, d->max);
            return -1;
        }
        *(long long *)(void *)field = n;
        return 0;
    case GH_T_LIST: {
        /* Defaults: space-separated words. */
        struct gh_conf_list *l = (struct gh_conf_list *)(void *)field;
        const char *p = v;
        while (*p) {
            const char *e = strchr(p, ' ');
            size_t wl = e ? (size_t)(e - p) : strlen(p);
            char *w = gh_strndup(p, wl);
            list_push(l, w);
            free(w);
            p += wl;
            while (*p == ' ')
                p++;
        }
        return 0;
    }
    case GH_T_SPECIAL:
        break;
    }
    return -1;
}

static void apply_defaults(struct parser *ps, enum gh_conf_ctx ctx, void *base)
{
    static const struct gh_loc none = {0, 0};
    size_t i;

    for (i = 0; i < gh_conf_ndirectives; i++) {
        const struct gh_conf_directive *d = &gh_conf_directives[i];
        if (d->ctx == ctx && d->type != GH_T_SPECIAL && d->def != NULL)
            if (set_value(ps, d, base, d->def, none) == -1)
                abort(); /* a default that does not parse is a bug in the table */
    }
}

static int check_addr(struct parser *ps, const char *v, struct gh_loc loc, const char *what)
{
    char host[64];
    unsigned char b[16];
    uint16_t port;

    if (gh_split_hostport(v, host, sizeof(host), &port) == -1 ||
        (inet_pton(AF_INET, host, b) != 1 && inet_pton(AF_INET6, host, b) != 1)) {
        ERR(ps, loc, "%s needs an IP address and port, such as 127.0.0.1:8443 or [::1]:8443",
            what);
        return -1;
    }
    return 0;
}

static int want_args(struct parser *ps, struct stmt *s, int min, int max, int block)
{
    if (s->has_block != block) {
        ERR(ps, s->name.loc, block ? "'%s' needs a { block }" : "'%s' takes no block",
            s->name.text);
        return -1;
    }
    if (s->nargs < min || s->nargs > max) {
        struct gh_loc l = s->nargs > max ? s->args[max].loc : s->name.loc;
        if (min == max)
            ERR(ps, l, "'%s' takes %d argument%s", s->name.text, min, min == 1 ? "" : "s");
        else
            ERR(ps, l, "'%s' takes %d to %d arguments", s->name.text, min, max);
        return -1;
    }
    return 0;
}

static int parse_block(struct parser *ps, enum gh_conf_ctx ctx, void *base, struct gh_conf *conf,
                       int depth, struct gh_loc open, unsigned char *seen);

static int set_str_once(struct parser *ps, char **field, struct stmt *s, struct gh_loc *loc)
{
    if (*field != NULL && loc != NULL && loc->line != 0) {
        ERR(ps, s->name.loc, "duplicate '%s'", s->name.text);
        return -1;
    }
    free(*field);
    *field = gh_strdup(s->args[0].text);
    if (loc != NULL)
        *loc = s->name.loc;
    return 0;
}

static int grow(struct parser *ps, void **arr, size_t *n, size_t size, struct gh_loc loc)
{
    void *p;

    if (*n >= MAX_ITEMS) {
        ERR(ps, loc, "too many entries (at most %d)", MAX_ITEMS);
        return -1;
    }
    p = realloc(*arr, (*n + 1) * size);
    if (p == NULL)
        abort();
    memset((char *)p + *n * size, 0, size);
    *arr = p;
    (*n)++;
    return 0;
}

static int is_uuid(const char *u)
{
    size_t i;

    if (strlen(u) != 36)
        return 0;
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (u[i] != '-')
                return 0;
        } else if (!((u[i] >= '0' && u[i] <= '9') || (u[i] >= 'a' && u[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

/* An https URL with a host, no fragment, no white space or quotes. */
static int is_https_url(const char *u)
{
    const char *p;

    if (strncmp(u, "https://", 8) != 0 || u[8] == '\0' || u[8] == '/')
        return 0;
    for (p = u; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr("\"'<>#\\", *p))
            return 0;
    return 1;
}

/* What one identity-provider block needs on its own; references are
 * checked once the whole file is read. */
static int check_idp(struct parser *ps, struct gh_conf_idp *p)
{
    static const char *const required[][2] = {
        {"uuid", "uuid"},           {"sp-certificate", "sp-certificate"},
        {"sp-entity-id", "sp-entity-id"}, {"idp-sso-url", "idp-sso-url"},
        {"idp-entity-id", "idp-entity-id"}};
    const char *vals[5];
    size_t i;

    vals[0] = p->uuid;
    vals[1] = p->sp_certificate;
    vals[2] = p->sp_entity_id;
    vals[3] = p->idp_sso_url;
    vals[4] = p->idp_entity_id;
    for (i = 0; i < 5; i++)
        if (vals[i] == NULL || vals[i][0] == '\0') {
            ERR(ps, p->loc, "identity-provider '%s' needs '%s'%s", p->name, required[i][0],
                i == 0 ? " (gatehouse saml uuid prints a fresh one)" : "");
            return -1;
        }
    if (!is_uuid(p->uuid)) {
        ERR(ps, p->loc, "identity-provider '%s': uuid '%s' is not of the form "
            "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (lower-case hex)", p->name, p->uuid);
        return -1;
    }
    if (p->idp_certificates.n == 0) {
        ERR(ps, p->loc, "identity-provider '%s' needs 'idp-certificate' (the IdP's public key)",
            p->name);
        return -1;
    }
    if (strncmp(p->idp_sso_url, "https://", 8) != 0 && strncmp(p->idp_sso_url, "http://", 7) != 0) {
        ERR(ps, p->loc, "identity-provider '%s': idp-sso-url must be an http(s) URL", p->name);
        return -1;
    }
    if (strchr(p->idp_sso_url, '#') != NULL) {
        ERR(ps, p->loc, "identity-provider '%s': idp-sso-url may not carry a fragment", p->name);
        return -1;
    }
    for (i = 0; i < p->acs_urls.n; i++) {
        const char *u = p->acs_urls.v[i];
        const char *tail = strstr(u, "/api/v1/samlconsumer/");
        if (!is_https_url(u) || tail == NULL || strcmp(tail + 21, p->uuid) != 0) {
            ERR(ps, p->acs_urls.loc,
                "identity-provider '%s': acs-url '%s' is not "
                "https://<webapp_FQDN>/api/v1/samlconsumer/%s", p->name, u, p->uuid);
            return -1;
        }
    }
    if (p->acs_urls.n == 0 && strcmp(p->acs_from_services, "on") != 0) {
        ERR(ps, p->loc, "identity-provider '%s' needs 'acs-url' or 'acs-from-services on'",
            p->name);
        return -1;
    }
    if (strcmp(p->allow_sha1, "on") != 0 &&
        (strcmp(p->signature_algorithm, "rsa-sha1") == 0 ||
         strcmp(p->digest_algorithm, "sha1") == 0)) {
        ERR(ps, p->loc, "identity-provider '%s': SHA-1 is refused unless 'allow-sha1 on'",
            p->name);
        return -1;
    }
    return 0;
}

/* A service timeout the block did not write takes the value its row in
 * gh_conf_timeouts follows (the service's idle-timeout), so that one
 * `idle-timeout 1800s`, as the seeds set it, bounds every wait. The rows are
 * in order: a followed value is final before it is copied. */
static void resolve_timeouts(struct gh_conf_service *sv, const unsigned char *seen)
{
    size_t i;

    for (i = 0; i < gh_conf_ntimeouts; i++) {
        const struct gh_conf_timeout *t = &gh_conf_timeouts[i];
        const struct gh_conf_directive *d, *f;
        if (t->follows == NULL)
            continue;
        d = lookup(GH_CTX_SERVICE, t->name);
        f = lookup(GH_CTX_SERVICE, t->follows);
        if (d == NULL || f == NULL || d->type != GH_T_DURATION || f->type != GH_T_DURATION)
            abort(); /* a row that names no service duration is a bug in the table */
        if (!seen[d - gh_conf_directives])
            *(long long *)(void *)((char *)sv + d->off) =
                *(const long long *)(const void *)((const char *)sv + f->off);
    }
}

/* What a Layer-4 service (mode tcp or udp) can be: servers, no HTTP. */
static int check_mode(struct parser *ps, struct gh_conf_service *sv, const struct stmt *s)
{
    int tcp = strcmp(sv->mode, "tcp") == 0, udp = strcmp(sv->mode, "udp") == 0;
    int pass = strcmp(sv->tls_mode, "passthrough") == 0;

    if (!tcp && pass) {
        ERR(ps, s->name.loc, "service '%s': 'tls passthrough' needs 'mode tcp'", sv->name);
        return -1;
    }
    if (!tcp && !udp)
        return 0;
    if (strcmp(sv->validate_join_token, "on") == 0) {
        ERR(ps, s->name.loc, "service '%s': 'validate-join-token' needs 'mode http'", sv->name);
        return -1;
    }
    if (sv->app != NULL) {
        ERR(ps, sv->app_loc, "service '%s': 'app' needs 'mode http'", sv->name);
        return -1;
    }
    if (sv->rule_set != NULL) {
        ERR(ps, sv->rule_set_loc, "service '%s': a rule set needs 'mode http'", sv->name);
        return -1;
    }
    if (strcmp(sv->persistence, "cookie") == 0) {
        ERR(ps, s->name.loc, "service '%s': cookie persistence needs 'mode http' (use source-ip)",
            sv->name);
        return -1;
    }
    if (sv->check.enabled && sv->check.url != NULL) {
        ERR(ps, sv->check.loc, "service '%s': an HTTP check needs 'mode http' (use tcp, tls or "
                               "send ... recv ...)", sv->name);
        return -1;
    }
    if ((udp || pass) && sv->certificate != NULL) {
        ERR(ps, sv->cert_loc, "service '%s': %s does not terminate TLS: no 'certificate'",
            sv->name, udp ? "mode udp" : "tls passthrough");
        return -1;
    }
    if ((udp || pass) && strcmp(sv->reencrypt, "off") != 0) {
        ERR(ps, sv->reencrypt_loc, "service '%s': %s forwards bytes as they come: no 'reencrypt'",
            sv->name, udp ? "mode udp" : "tls passthrough");
        return -1;
    }
    if (udp && sv->check.enabled && strcmp(sv->check.method, "SEND") != 0) {
        ERR(ps, sv->check.loc, "service '%s': a UDP pool is checked with send ... recv ...",
            sv->name);
        return -1;
    }
    return 0;
}

/* store redis { ... }: one server or sentinels, every address an IP and
 * port (no name is resolved on a worker). */
static int check_store(struct parser *ps, const struct gh_conf_store *k)
{
    size_t i;

    if ((k->address != NULL) == (k->sentinels.n > 0)) {
        ERR(ps, k->loc, "store redis: 'address IP:PORT' or 'sentinels IP:PORT ...', one of them");
        return -1;
    }
    if (k->sentinels.n > 0 && k->master == NULL) {
        ERR(ps, k->loc, "store redis: 'sentinels' needs 'master NAME' (the name they monitor)");
        return -1;
    }
    if (k->address != NULL && k->master != NULL) {
        ERR(ps, k->loc, "store redis: 'master' names what 'sentinels' monitor; with 'address' "
                        "there is nothing to ask");
        return -1;
    }
    if (k->sentinels.n > 8) {
        ERR(ps, k->sentinels.loc, "store redis: at most 8 sentinels");
        return -1;
    }
    if (k->address != NULL && check_addr(ps, k->address, k->loc, "store redis: 'address'") == -1)
        return -1;
    for (i = 0; i < k->sentinels.n; i++)
        if (check_addr(ps, k->sentinels.v[i], k->sentinels.loc, "store redis: each sentinel") ==
            -1)
            return -1;
    if (k->user != NULL && k->password_file == NULL) {
        ERR(ps, k->loc, "store redis: 'user' needs 'password-file'");
        return -1;
    }
    if (strlen(k->prefix) > 32 || (k->master != NULL && strlen(k->master) > 63) ||
        (k->user != NULL && strlen(k->user) > 63)) {
        ERR(ps, k->loc, "store redis: 'prefix' is at most 32 bytes, 'master' and 'user' 63");
        return -1;
    }
    return 0;
}

static int special_main(struct parser *ps, struct stmt *s, struct gh_conf *conf, int depth)
{
    const char *n = s->name.text;
    size_t i;

    if (strcmp(n, "store") != 0 && strcmp(n, "meetings-store") != 0 &&
        want_args(ps, s, 1, 1, 1) == -1)
        return -1;
    if (strcmp(n, "store") == 0 && (s->nargs != 1)) {
        ERR(ps, s->name.loc, "'store' takes 1 argument: local, or redis { ... }");
        return -1;
    }
    if (strcmp(n, "meetings-store") == 0 && (s->nargs != 1)) {
        ERR(ps, s->name.loc,
            "'meetings-store' takes 1 argument: sqlite, or postgresql { conninfo ...; }");
        return -1;
    }
    if (strcmp(n, "certificate") == 0) {
        struct gh_conf_cert *c;
        for (i = 0; i < conf->ncerts; i++)
            if (strcmp(conf->certs[i].name, s->args[0].text) == 0) {
                ERR(ps, s->args[0].loc, "certificate '%s' already defined at line %d",
                    s->args[0].text, conf->certs[i].loc.line);
                return -1;
            }
        if (grow(ps, (void **)&conf->certs, &conf->ncerts, sizeof(*c), s->name.loc) == -1)
            return -1;
        c = &conf->certs[conf->ncerts - 1];
        c->name = gh_strdup(s->args[0].text);
        c->loc = s->name.loc;
        if (parse_block(ps, GH_CTX_CERT, c, conf, depth + 1, s->name.loc, NULL) == -1)
            return -1;
        if (c->pkcs12 != NULL && (c->cert != NULL || c->key != NULL)) {
            ERR(ps, s->name.loc, "certificate '%s': use 'pkcs12' or 'cert' and 'key', not both",
                c->name);
            return -1;
        }
        if (c->pkcs12 == NULL && (c->cert == NULL || c->key == NULL)) {
            ERR(ps, s->name.loc, "certificate '%s' needs both 'cert' and 'key'", c->name);
            return -1;
        }
        return 0;
    }
    if (strcmp(n, "ca") == 0) {
        struct gh_conf_ca *c;
        for (i = 0; i < conf->ncas; i++)
            if (strcmp(conf->cas[i].name, s->args[0].text) == 0) {
                ERR(ps, s->args[0].loc, "ca '%s' already defined at line %d", s->args[0].text,
                    conf->cas[i].loc.line);
                return -1;
            }
        if (grow(ps, (void **)&conf->cas, &conf->ncas, sizeof(*c), s->name.loc) == -1)
            return -1;
        c = &conf->cas[conf->ncas - 1];
        c->name = gh_strdup(s->args[0].text);
        c->loc = s->name.loc;
        if (parse_block(ps, GH_CTX_CA, c, conf, depth + 1, s->name.loc, NULL) == -1)
            return -1;
        if (c->file == NULL) {
            ERR(ps, s->name.loc, "ca '%s' needs 'file'", c->name);
            return -1;
        }
        return 0;
    }
    if (strcmp(n, "identity-provider") == 0) {
        struct gh_conf_idp *p;
        if (gh_conf_idp_find(conf, s->args[0].text) != NULL) {
            ERR(ps, s->args[0].loc, "identity-provider '%s' already defined", s->args[0].text);
            return -1;
        }
        if (grow(ps, (void **)&conf->idps, &conf->nidps, sizeof(*p), s->name.loc) == -1)
            return -1;
        p = &conf->idps[conf->nidps - 1];
        p->name = gh_strdup(s->args[0].text);
        p->loc = s->name.loc;
        apply_defaults(ps, GH_CTX_IDP, p);
        if (parse_block(ps, GH_CTX_IDP, p, conf, depth + 1, s->name.loc, NULL) == -1)
            return -1;
        return check_idp(ps, p);
    }
    if (strcmp(n, "store") == 0) {
        struct gh_conf_store *k = &conf->store;
        const char *e = s->args[0].text;
        if (k->loc.line != 0) {
            ERR(ps, s->name.loc, "duplicate 'store' (first at line %d)", k->loc.line);
            return -1;
        }
        if (strcmp(e, "local") != 0 && strcmp(e, "redis") != 0) {
            ERR(ps, s->args[0].loc, "store: 'local' or 'redis', not '%s'", e);
            return -1;
        }
        if (want_args(ps, s, 1, 1, strcmp(e, "redis") == 0) == -1)
            return -1;
        free(k->engine);
        k->engine = gh_strdup(e);
        k->loc = s->name.loc;
        if (strcmp(e, "local") == 0)
            return 0;
        if (parse_block(ps, GH_CTX_STORE, k, conf, depth + 1, s->name.loc, NULL) == -1)
            return -1;
        return check_store(ps, k);
    }
    if (strcmp(n, "meetings-store") == 0) {
        struct gh_conf_mstore *k = &conf->meetings_store;
        const char *e = s->args[0].text;
        if (k->loc.line != 0) {
            ERR(ps, s->name.loc, "duplicate 'meetings-store' (first at line %d)", k->loc.line);
            return -1;
        }
        if (strcmp(e, "sqlite") != 0 && strcmp(e, "postgresql") != 0) {
            ERR(ps, s->args[0].loc, "meetings-store: 'sqlite' or 'postgresql', not '%s'", e);
            return -1;
        }
        if (want_args(ps, s, 1, 1, strcmp(e, "postgresql") == 0) == -1)
            return -1;
        free(k->engine);
        k->engine = gh_strdup(e);
        k->loc = s->name.loc;
        if (strcmp(e, "sqlite") == 0)
            return 0;
        if (parse_block(ps, GH_CTX_MSTORE, k, conf, depth + 1, s->name.loc, NULL) == -1)
            return -1;
        if (k->conninfo == NULL || k->conninfo[0] == '\0') {
            ERR(ps, s->name.loc, "meetings-store postgresql needs 'conninfo'");
            return -1;
        }
        /* A password in the configuration would be shown to every admin
         * and go into backups and the shared configuration: it has its own
         * file. */
        if (strstr(k->conninfo, "password") != NULL) {
            ERR(ps, s->name.loc,
                "meetings-store postgresql: no password in 'conninfo'; use 'password-file'");
            return -1;
        }
        return 0;
    }
    if (strcmp(n, "identity-provider-group") == 0) {
        struct gh_conf_idp_group *g;
        if (gh_conf_idp_group_find(conf, s->args[0].text) != NULL) {
            ERR(ps, s->args[0].loc, "identity-provider-group '%s' already defined",
                s->args[0].text);
            return -1;
        }
        if (grow(ps, (void **)&conf->idp_groups, &conf->nidp_groups, sizeof(*g), s->name.loc) ==
            -1)
            return -1;
        g = &conf->idp_groups[conf->nidp_groups - 1];
        g->name = gh_strdup(s->args[0].text);
        g->loc = s->name.loc;
        if (parse_block(ps, GH_CTX_IDP_GROUP, g, conf, depth + 1, s->name.loc, NULL) == -1)
            return -1;
        if (g->members.n == 0) {
            ERR(ps, s->name.loc, "identity-provider-group '%s' needs 'identity-providers'",
                g->name);
            return -1;
        }
        return 0;
    }
    if (strcmp(n, "rules") == 0) {
        struct gh_conf_ruleset *r;
        if (gh_conf_ruleset_find(conf, s->args[0].text) != NULL) {
            ERR(ps, s->args[0].loc, "rules '%s' already defined", s->args[0].text);
            return -1;
        }
        if (grow(ps, (void **)&conf->rulesets, &conf->nrulesets, sizeof(*r), s->name.loc) == -1)
            return -1;
        r = &conf->rulesets[conf->nrulesets - 1];
        r->name = gh_strdup(s->args[0].text);
        r->loc = s->name.loc;
        return parse_block(ps, GH_CTX_RULES, r, conf, depth + 1, s->name.loc, NULL);
    }
    /* service */
    {
        unsigned char seen[GH_CONF_MAX_DIRECTIVES] = {0};
        struct gh_conf_service *sv;
        for (i = 0; i < conf->nservices; i++)
            if (strcmp(conf->services[i].name, s->args[0].text) == 0) {
                ERR(ps, s->args[0].loc, "service '%s' already defined at line %d",
                    s->args[0].text, conf->services[i].loc.line);
                return -1;
            }
        if (grow(ps, (void **)&conf->services, &conf->nservices, sizeof(*sv), s->name.loc) == -1)
            return -1;
        sv = &conf->services[conf->nservices - 1];
        sv->name = gh_strdup(s->args[0].text);
        sv->loc = s->name.loc;
        sv->reencrypt = gh_strdup("off");
        sv->persistence = gh_strdup("off");
        sv->persist_timeout = 20 * 60 * 1000; /* the seeds' 20 minutes */
        apply_defaults(ps, GH_CTX_SERVICE, sv);
        if (parse_block(ps, GH_CTX_SERVICE, sv, conf, depth + 1, s->name.loc, seen) == -1)
            return -1;
        resolve_timeouts(sv, seen);
        if (gh__conf_headers_finish(sv, seen, ps->file, ps->err, ps->errlen) == -1)
            return -1;
        sv->end_loc.line = ps->lx.line;
        sv->end_loc.col = ps->lx.col;
        if (sv->listen == NULL) {
            ERR(ps, s->name.loc, "service '%s' needs 'listen'", sv->name);
            return -1;
        }
        if (sv->redirect_https == 0 && (sv->app != NULL) == (sv->nservers > 0)) {
            ERR(ps, s->name.loc,
                sv->app ? "service '%s' has both 'app' and 'server' targets; choose one"
                        : "service '%s' has no target: add 'server' lines or 'app'",
                sv->name);
            return -1;
        }
        if (sv->app != NULL && sv->check.enabled) {
            ERR(ps, sv->check.loc, "'check' does not apply to an 'app' target");
            return -1;
        }
        if (sv->app != NULL && strcmp(sv->reencrypt, "off") != 0) {
            ERR(ps, sv->reencrypt_loc, "'reencrypt' does not apply to an 'app' target");
            return -1;
        }
        return check_mode(ps, sv, s);
    }
}

static int special_server(struct parser *ps, struct stmt *s, struct gh_conf_service *sv)
{
    struct gh_conf_server *srv;
    int i;
    size_t k;

    if (want_args(ps, s, 2, 12, 0) == -1)
        return -1;
    for (k = 0; k < sv->nservers; k++)
        if (strcmp(sv->servers[k].name, s->args[0].text) == 0) {
            ERR(ps, s->args[0].loc, "server '%s' already defined at line %d", s->args[0].text,
                sv->servers[k].loc.line);
            return -1;
        }
    if (check_addr(ps, s->args[1].text, s->args[1].loc, "server") == -1)
        return -1;
    if (grow(ps, (void **)&sv->servers, &sv->nservers, sizeof(*srv), s->name.loc) == -1)
        return -1;
    srv = &sv->servers[sv->nservers - 1];
    srv->name = gh_strdup(s->args[0].text);
    srv->addr = gh_strdup(s->args[1].text);
    srv->weight = 1;
    srv->state = gh_strdup("up");
    srv->loc = s->name.loc;
    for (i = 2; i < s->nargs; i += 2) {
        const char *opt = s->args[i].text;
        if (i + 1 >= s->nargs) {
            ERR(ps, s->args[i].loc, "'%s' needs a value", opt);
            return -1;
        }
        if (strcmp(opt, "weight") == 0) {
            long w;
            if (gh_parse_long(s->args[i + 1].text, 1, 256, &w) == -1) {
                ERR(ps, s->args[i + 1].loc, "weight must be a whole number from 1 to 256");
                return -1;
            }
            srv->weight = w;
        } else if (strcmp(opt, "verify-name") == 0) {
            free(srv->verify_name);
            srv->verify_name = gh_strdup(s->args[i + 1].text);
        } else if (strcmp(opt, "pin") == 0) {
            const char *v = s->args[i + 1].text;
            char hex[65];
            size_t q, h = 0;
            if (strncmp(v, "sha256:", 7) != 0) {
                ERR(ps, s->args[i + 1].loc, "pin must be sha256:HEX (64 hex digits, ':' allowed)");
                return -1;
            }
            for (q = 7; v[q] && h < 65; q++) {
                if (v[q] == ':')
                    continue;
                if (gh_hexval((unsigned char)v[q]) < 0)
                    break;
                hex[h++] = (char)(v[q] >= 'A' && v[q] <= 'F' ? v[q] + 32 : v[q]);
            }
            if (v[q] != '\0' || h != 64) {
                ERR(ps, s->args[i + 1].loc, "pin must be sha256:HEX (64 hex digits, ':' allowed)");
                return -1;
            }
            hex[64] = '\0';
            free(srv->pin);
            srv->pin = gh_strdup(hex);
        } else if (strcmp(opt, "maxconn") == 0) {
            long mc;
            if (gh_parse_long(s->args[i + 1].text, 0, 1000000, &mc) == -1) {
                ERR(ps, s->args[i + 1].loc, "maxconn must be a whole number from 0 to 1000000");
                return -1;
            }
            srv->maxconn = mc;
        } else if (strcmp(opt, "state") == 0) {
            const char *v = s->args[i + 1].text;
            if (strcmp(v, "up") != 0 && strcmp(v, "drain") != 0 && strcmp(v, "maint") != 0) {
                ERR(ps, s->args[i + 1].loc, "server state must be up, drain or maint");
                return -1;
            }
            free(srv->state);
            srv->state = gh_strdup(v);
        } else {
            ERR(ps, s->args[i].loc, "unknown server option '%s' (weight, verify-name, state, maxconn, pin)",
                opt);
            return -1;
        }
    }
    return 0;
}

static int check_cidr(const char *v)
{
    char addr[64];
    const char *slash = strchr(v, '/');
    unsigned char b[16];
    long bits = -1;
    int v6;
    size_t n = slash ? (size_t)(slash - v) : strlen(v);

    if (n == 0 || n >= sizeof(addr))
        return -1;
    memcpy(addr, v, n);
    addr[n] = '\0';
    v6 = strchr(addr, ':') != NULL;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, b) != 1)
        return -1;
    if (slash && gh_parse_long(slash + 1, 0, v6 ? 128 : 32, &bits) == -1)
        return -1;
    return 0;
}

/* Where byte i of a token's text is in the file: exact for a word and for
 * a string without escapes, the token's start otherwise. */
static struct gh_loc tok_loc_at(const struct gh_tok *t, size_t i)
{
    struct gh_loc l = t->loc;

    if (t->type == GH_TOK_WORD)
        l.col += (int)i;
    else if (t->end - t->off == strlen(t->text) + 2)
        l.col += (int)i + 1;
    return l;
}

/* A redirect location's $names (expanded per request by rules/policy.c):
 * each one known, at most GH_CONF_LOCVARS_MAX of them, $query only after a
 * '?', and $path where a path begins or goes on: after the host part, or
 * ending it right after $host or a host's last character
 * ("https://$host$path", "https://a.example:8443$path"). So nothing a
 * client sends can become the scheme or host it is sent to: "https://$path"
 * would make "/evil.example/x" a host. */
static int check_location(struct parser *ps, const struct gh_tok *t)
{
    const char *v = t->text;
    size_t i, n, auth = 0, k = 0, nvars = 0;
    int in_auth, in_query = 0;

    /* "scheme://" or "//" opens a host part; it ends at '/' or '?'. */
    if (v[0] == '/' && v[1] == '/') {
        auth = 2;
    } else if ((v[0] >= 'a' && v[0] <= 'z') || (v[0] >= 'A' && v[0] <= 'Z')) {
        while ((v[k] >= 'a' && v[k] <= 'z') || (v[k] >= 'A' && v[k] <= 'Z') ||
               (v[k] >= '0' && v[k] <= '9') || v[k] == '+' || v[k] == '-' || v[k] == '.')
            k++;
        if (strncmp(v + k, "://", 3) == 0)
            auth = k + 3;
    }
    in_auth = auth > 0;
    for (i = 0; v[i]; i++) {
        enum gh_conf_locvar var;
        if (i >= auth && (v[i] == '/' || v[i] == '?'))
            in_auth = 0;
        if (v[i] == '?')
            in_query = 1;
        if (v[i] != '$')
            continue;
        var = gh_conf_locvar(v + i, &n);
        if (var == GH_LOCVAR_UNKNOWN) {
            ERR(ps, tok_loc_at(t, i),
                "unknown '%.*s' in a redirect location (known: $host, $path, $query; write "
                "%%24 for a '$')", (int)n, v + i);
            return -1;
        }
        if (var == GH_LOCVAR_PATH && in_auth) {
            /* the path begins here when a host stands right before it */
            char b = i > auth ? v[i - 1] : '\0';
            int after_host = i >= auth + 5 && strncmp(v + i - 5, "$host", 5) == 0;
            if (after_host || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
                (b >= '0' && b <= '9') || b == '.' || b == '-' || b == ']')
                in_auth = 0;
        }
        if (var == GH_LOCVAR_PATH && (in_auth || in_query)) {
            ERR(ps, tok_loc_at(t, i), "'$path' may only stand where the location's path begins "
                "or goes on (after the host, before any '?')");
            return -1;
        }
        if (var == GH_LOCVAR_QUERY && !in_query) {
            ERR(ps, tok_loc_at(t, i), "'$query' may only stand after a '?' in the location");
            return -1;
        }
        if (++nvars > GH_CONF_LOCVARS_MAX) {
            ERR(ps, tok_loc_at(t, i), "at most %d $names in one redirect location",
                GH_CONF_LOCVARS_MAX);
            return -1;
        }
        i += n - 1;
    }
    return 0;
}

/* redirect https [code 301|302|307|308] [port N]: every request the
 * firewall lets through is answered with a redirect to the same host,
 * path and query over https (rules/policy.c builds the Location). */
static int special_redirect(struct parser *ps, struct stmt *s, struct gh_conf_service *sv)
{
    int i;
    long v;

    if (want_args(ps, s, 1, 5, 0) == -1)
        return -1;
    if (sv->redirect_https != 0) {
        ERR(ps, s->name.loc, "duplicate 'redirect'");
        return -1;
    }
    if (strcmp(s->args[0].text, "https") != 0) {
        ERR(ps, s->args[0].loc, "'redirect' takes 'https' [code 301|302|307|308] [port N] (a "
            "redirect of some requests only is a rule: rule ID redirect URL if ...)");
        return -1;
    }
    sv->redirect_https = 301;
    sv->redirect_loc = s->name.loc;
    for (i = 1; i < s->nargs; i += 2) {
        const char *opt = s->args[i].text;
        if (i + 1 >= s->nargs) {
            ERR(ps, s->args[i].loc, "'%s' needs a value", opt);
            return -1;
        }
        if (strcmp(opt, "code") == 0) {
            if (gh_parse_long(s->args[i + 1].text, 301, 308, &v) == -1 ||
                (v != 301 && v != 302 && v != 307 && v != 308)) {
                ERR(ps, s->args[i + 1].loc, "redirect code must be 301, 302, 307 or 308");
                return -1;
            }
            sv->redirect_https = v;
        } else if (strcmp(opt, "port") == 0) {
            if (gh_parse_long(s->args[i + 1].text, 1, 65535, &v) == -1) {
                ERR(ps, s->args[i + 1].loc, "redirect port must be from 1 to 65535");
                return -1;
            }
            sv->redirect_https_port = v;
        } else {
            ERR(ps, s->args[i].loc, "unknown redirect option '%s' (code, port)", opt);
            return -1;
        }
    }
    return 0;
}

/* rule ID ACTION [STATUS] [URL] if FIELD [HEADER] OP VALUE
 *   ACTION: deny [STATUS] | allow | log | redirect [STATUS] URL
 *   FIELD:  method | path | query | header NAME | source (then just a CIDR) */
static int special_rule(struct parser *ps, struct stmt *s, struct gh_conf_ruleset *rs)
{
    struct gh_conf_rule *r;
    int i = 1;
    size_t k;
    long st;

    if (want_args(ps, s, 4, 9, 0) == -1)
        return -1;
    for (k = 0; k < rs->nrules; k++)
        if (strcmp(rs->rules[k].id, s->args[0].text) == 0) {
            ERR(ps, s->args[0].loc, "rule '%s' already defined at line %d", s->args[0].text,
                rs->rules[k].loc.line);
            return -1;
        }
    if (grow(ps, (void **)&rs->rules, &rs->nrules, sizeof(*r), s->name.loc) == -1)
        return -1;
    r = &rs->rules[rs->nrules - 1];
    r->id = gh_strdup(s->args[0].text);
    r->loc = s->name.loc;
    r->action = gh_strdup(s->args[i].text);
    if (strcmp(r->action, "deny") == 0) {
        r->status = 403;
        if (i + 1 < s->nargs && strcmp(s->args[i + 1].text, "if") != 0) {
            if (gh_parse_long(s->args[i + 1].text, 400, 599, &st) == -1) {
                ERR(ps, s->args[i + 1].loc, "deny status must be from 400 to 599");
                return -1;
            }
            r->status = st;
            i++;
        }
    } else if (strcmp(r->action, "redirect") == 0) {
        r->status = 302;
        if (i + 1 < s->nargs && gh_parse_long(s->args[i + 1].text, 300, 399, &st) == 0) {
            if (st != 301 && st != 302 && st != 303 && st != 307 && st != 308) {
                ERR(ps, s->args[i + 1].loc, "redirect status must be 301, 302, 303, 307 or 308");
                return -1;
            }
            r->status = st;
            i++;
        }
        if (i + 1 >= s->nargs || strcmp(s->args[i + 1].text, "if") == 0) {
            ERR(ps, s->args[i].loc, "redirect needs a location");
            return -1;
        }
        r->target = gh_strdup(s->args[++i].text);
        for (k = 0; r->target[k]; k++)
            if ((unsigned char)r->target[k] <= 0x20 || (unsigned char)r->target[k] >= 0x7f) {
                ERR(ps, s->args[i].loc, "redirect location must be printable ASCII without spaces");
                return -1;
            }
        if (check_location(ps, &s->args[i]) == -1)
            return -1;
    } else if (strcmp(r->action, "allow") != 0 && strcmp(r->action, "log") != 0) {
        ERR(ps, s->args[i].loc, "unknown rule action '%s' (deny, allow, redirect, log)", r->action);
        return -1;
    }
    i++;
    if (i >= s->nargs || strcmp(s->args[i].text, "if") != 0) {
        ERR(ps, i < s->nargs ? s->args[i].loc : s->name.loc, "rule needs 'if FIELD OP VALUE'");
        return -1;
    }
    i++;
    if (i >= s->nargs) {
        ERR(ps, s->args[i - 1].loc, "rule needs a field after 'if'");
        return -1;
    }
    r->field = gh_strdup(s->args[i].text);
    if (strcmp(r->field, "source") == 0) {
        if (i + 2 != s->nargs || check_cidr(s->args[i + 1].text) == -1) {
            ERR(ps, i + 1 < s->nargs ? s->args[i + 1].loc : s->args[i].loc,
                "'source' takes one address or CIDR, such as 10.0.0.0/8");
            return -1;
        }
        r->op = gh_strdup("cidr");
        r->value = gh_strdup(s->args[i + 1].text);
        r->value_loc = s->args[i + 1].loc;
        return 0;
    }
    if (strcmp(r->field, "header") == 0) {
        if (i + 1 >= s->nargs) {
            ERR(ps, s->args[i].loc, "'header' needs a header name");
            return -1;
        }
        r->header = gh_strdup(s->args[++i].text);
    } else if (strcmp(r->field, "method") != 0 && strcmp(r->field, "path") != 0 &&
               strcmp(r->field, "query") != 0) {
        ERR(ps, s->args[i].loc, "unknown rule field '%s' (method, path, query, header, source)",
            r->field);
        return -1;
    }
    if (i + 3 != s->nargs) {
        ERR(ps, i + 1 < s->nargs ? s->args[i + 1].loc : s->args[i].loc,
            "rule needs an operator (exact, prefix, regex) and one value");
        return -1;
    }
    r->op = gh_strdup(s->args[i + 1].text);
    if (strcmp(r->op, "exact") != 0 && strcmp(r->op, "prefix") != 0 &&
        strcmp(r->op, "regex") != 0) {
        ERR(ps, s->args[i + 1].loc, "unknown operator '%s' (exact, prefix, regex)", r->op);
        return -1;
    }
    r->value = gh_strdup(s->args[i + 2].text);
    r->value_loc = s->args[i + 2].loc;
    return 0;
}

/* A check's send or recv text: printable, escapes \r \n \t \\ and \xHH only
 * (decoded when the check runs), at most 512 bytes. */
static int check_text(struct parser *ps, const struct gh_tok *t)
{
    const char *p = t->text;
    size_t n = strlen(p), i;

    if (n == 0 || n > 512) {
        ERR(ps, t->loc, "check text must be 1 to 512 characters");
        return -1;
    }
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch < 0x20 || ch == 0x7f) {
            ERR(ps, t->loc, "check text may not hold control characters (write \\r, \\n, \\xHH)");
            return -1;
        }
        if (ch != '\\')
            continue;
        if (p[i + 1] == 'r' || p[i + 1] == 'n' || p[i + 1] == 't' || p[i + 1] == '\\') {
            i++;
        } else if (p[i + 1] == 'x' && gh_hexval((unsigned char)p[i + 2]) >= 0 &&
                   gh_hexval((unsigned char)p[i + 3]) >= 0) {
            i += 3;
        } else {
            ERR(ps, t->loc, "check text: unknown escape (\\r, \\n, \\t, \\\\, \\xHH)");
            return -1;
        }
    }
    return 0;
}

/* check get|head URL [options]
 * check tcp [options]                 the server accepts a connection
 * check tls [options]                 and completes a verified TLS handshake
 * check send TEXT recv TEXT [options] and answers TEXT with a reply starting with TEXT
 * options: [port N] [interval D] [timeout D] [rise N] [fall N] [expect STATUS]
 *          [body TEXT] [start up|down] */
static int special_check(struct parser *ps, struct stmt *s, struct gh_conf_service *sv)
{
    struct gh_conf_check *c = &sv->check;
    const char *kind;
    int i, first;
    long v;

    if (want_args(ps, s, 1, 20, 0) == -1)
        return -1;
    if (c->enabled) {
        ERR(ps, s->name.loc, "duplicate 'check'");
        return -1;
    }
    kind = s->args[0].text;
    c->loc = s->name.loc;
    if (strcmp(kind, "tcp") == 0 || strcmp(kind, "tls") == 0) {
        c->method = gh_strdup(kind[1] == 'c' ? "TCP" : "TLS");
        first = 1;
    } else if (strcmp(kind, "send") == 0) {
        if (s->nargs < 4 || strcmp(s->args[2].text, "recv") != 0) {
            ERR(ps, s->args[0].loc, "check send needs: send TEXT recv TEXT");
            return -1;
        }
        if (check_text(ps, &s->args[1]) == -1 || check_text(ps, &s->args[3]) == -1)
            return -1;
        c->method = gh_strdup("SEND");
        c->send = gh_strdup(s->args[1].text);
        c->recv = gh_strdup(s->args[3].text);
        first = 4;
    } else if (strcmp(kind, "get") == 0 || strcmp(kind, "head") == 0) {
        if (s->nargs < 2 || s->args[1].text[0] != '/') {
            ERR(ps, s->nargs < 2 ? s->args[0].loc : s->args[1].loc, "check URL must start with '/'");
            return -1;
        }
        for (i = 0; s->args[1].text[i]; i++)
            if ((unsigned char)s->args[1].text[i] <= 0x20 ||
                (unsigned char)s->args[1].text[i] >= 0x7f) {
                ERR(ps, s->args[1].loc, "check URL must be printable ASCII without spaces");
                return -1;
            }
        c->method = gh_strdup(kind[0] == 'g' ? "GET" : "HEAD");
        c->url = gh_strdup(s->args[1].text);
        first = 2;
    } else {
        ERR(ps, s->args[0].loc, "check must be get, head, tcp, tls or send");
        return -1;
    }
    c->enabled = 1;
    c->interval = 5000;
    c->timeout = 2000;
    c->rise = 2;
    c->fall = 3;
    c->expect = 200;
    c->start_up = 0;
    for (i = first; i < s->nargs; i += 2) {
        const char *opt = s->args[i].text, *val;
        struct gh_loc vl;
        long long d;
        if (i + 1 >= s->nargs) {
            ERR(ps, s->args[i].loc, "'%s' needs a value", opt);
            return -1;
        }
        val = s->args[i + 1].text;
        vl = s->args[i + 1].loc;
        if (strcmp(opt, "port") == 0) {
            if (gh_parse_long(val, 1, 65535, &v) == -1) {
                ERR(ps, vl, "check port must be from 1 to 65535");
                return -1;
            }
            c->port = v;
        } else if (strcmp(opt, "interval") == 0 || strcmp(opt, "timeout") == 0) {
            if (gh_parse_duration_ms(val, &d) == -1 || d < 100 || d > 3600000) {
                ERR(ps, vl, "check %s needs a duration from 100ms to 1h", opt);
                return -1;
            }
            if (opt[0] == 'i')
                c->interval = d;
            else
                c->timeout = d;
        } else if (strcmp(opt, "rise") == 0 || strcmp(opt, "fall") == 0) {
            if (gh_parse_long(val, 1, 100, &v) == -1) {
                ERR(ps, vl, "check %s must be from 1 to 100", opt);
                return -1;
            }
            if (opt[0] == 'r')
                c->rise = v;
            else
                c->fall = v;
        } else if (strcmp(opt, "expect") == 0) {
            if (gh_parse_long(val, 100, 599, &v) == -1) {
                ERR(ps, vl, "check expect must be an HTTP status");
                return -1;
            }
            c->expect = v;
        } else if (strcmp(opt, "body") == 0) {
            free(c->body);
            c->body = gh_strdup(val);
        } else if (strcmp(opt, "start") == 0) {
            if (strcmp(val, "up") != 0 && strcmp(val, "down") != 0) {
                ERR(ps, vl, "check start must be up or down");
                return -1;
            }
            c->start_up = val[0] == 'u';
        } else {
            ERR(ps, s->args[i].loc,
                "unknown check option '%s' (port, interval, timeout, rise, fall, expect, body, "
                "start)", opt);
            return -1;
        }
    }
    if (c->timeout > c->interval) {
        ERR(ps, s->name.loc, "check timeout must not exceed its interval");
        return -1;
    }
    return 0;
}

/* persistence off | source-ip [mask BITS] [timeout D] | cookie NAME [timeout D] */
static int special_persistence(struct parser *ps, struct stmt *s, struct gh_conf_service *sv)
{
    int i = 1;
    long v;
    long long d;

    if (want_args(ps, s, 1, 6, 0) == -1)
        return -1;
    free(sv->persistence);
    sv->persistence = gh_strdup(s->args[0].text);
    if (strcmp(s->args[0].text, "off") == 0) {
        if (s->nargs != 1) {
            ERR(ps, s->args[1].loc, "'persistence off' takes nothing more");
            return -1;
        }
        return 0;
    }
    if (strcmp(s->args[0].text, "cookie") == 0) {
        const char *c;
        if (s->nargs < 2) {
            ERR(ps, s->args[0].loc, "'persistence cookie' needs a cookie name");
            return -1;
        }
        for (c = s->args[1].text; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                  *c == '-' || *c == '_')) {
                ERR(ps, s->args[1].loc, "cookie name: letters, digits, '-' and '_' only");
                return -1;
            }
        free(sv->cookie_name);
        sv->cookie_name = gh_strdup(s->args[1].text);
        i = 2;
    } else if (strcmp(s->args[0].text, "source-ip") != 0) {
        ERR(ps, s->args[0].loc, "persistence is off, source-ip or cookie NAME");
        return -1;
    }
    for (; i < s->nargs; i += 2) {
        if (i + 1 >= s->nargs) {
            ERR(ps, s->args[i].loc, "'%s' needs a value", s->args[i].text);
            return -1;
        }
        if (strcmp(s->args[i].text, "timeout") == 0) {
            if (gh_parse_duration_ms(s->args[i + 1].text, &d) == -1 || d < 1000 ||
                d > 7LL * 86400000) {
                ERR(ps, s->args[i + 1].loc, "persistence timeout: 1s to 7d");
                return -1;
            }
            sv->persist_timeout = d;
        } else if (strcmp(s->args[i].text, "mask") == 0 && sv->cookie_name == NULL) {
            if (gh_parse_long(s->args[i + 1].text, 1, 128, &v) == -1) {
                ERR(ps, s->args[i + 1].loc, "mask: prefix bits from 1 to 128");
                return -1;
            }
            sv->persist_mask = v;
        } else {
            ERR(ps, s->args[i].loc, "unknown persistence option '%s'", s->args[i].text);
            return -1;
        }
    }
    return 0;
}

static int special_service(struct parser *ps, struct stmt *s, struct gh_conf_service *sv)
{
    const char *n = s->name.text;
    size_t i;

    if (strcmp(n, "check") == 0)
        return special_check(ps, s, sv);
    if (strcmp(n, "persistence") == 0)
        return special_persistence(ps, s, sv);

    if (strcmp(n, "server") == 0)
        return special_server(ps, s, sv);
    if (gh__conf_headers_own(n))
        return gh__conf_headers_stmt(sv, &s->name, s->args, s->nargs, s->has_block, ps->file,
                                     ps->err, ps->errlen);
    if (strcmp(n, "redirect") == 0)
        return special_redirect(ps, s, sv);
    if (strcmp(n, "reencrypt") == 0) {
        if (want_args(ps, s, 1, 2, 0) == -1)
            return -1;
        if ((strcmp(s->args[0].text, "off") == 0 || strcmp(s->args[0].text, "pinned") == 0) &&
            s->nargs == 1) {
            free(sv->reencrypt);
            sv->reencrypt = gh_strdup(s->args[0].text);
        } else if (strcmp(s->args[0].text, "verify") == 0 && s->nargs == 2) {
            free(sv->reencrypt);
            sv->reencrypt = gh_strdup(s->args[1].text);
        } else {
            ERR(ps, s->args[0].loc, "'reencrypt' takes 'off', 'pinned' or 'verify CA-NAME'");
            return -1;
        }
        sv->reencrypt_loc = s->name.loc;
        return 0;
    }
    if (strcmp(n, "certificate") == 0) {
        int k;
        if (want_args(ps, s, 1, 16, 0) == -1)
            return -1;
        if (sv->certificate != NULL) {
            ERR(ps, s->name.loc, "duplicate 'certificate' (list them on one line)");
            return -1;
        }
        sv->certificate = gh_strdup(s->args[0].text);
        sv->cert_loc = s->name.loc;
        for (k = 0; k < s->nargs; k++)
            list_push(&sv->certificates, s->args[k].text);
        sv->certificates.set = 1;
        sv->certificates.loc = s->name.loc;
        return 0;
    }
    if (want_args(ps, s, 1, 1, 0) == -1)
        return -1;
    if (strcmp(n, "rule-set") == 0)
        return set_str_once(ps, &sv->rule_set, s, &sv->rule_set_loc);
    if (strcmp(n, "client-certificate") == 0)
        return set_str_once(ps, &sv->client_certificate, s, &sv->client_certificate_loc);
    if (strcmp(n, "listen") == 0) {
        if (check_addr(ps, s->args[0].text, s->args[0].loc, "listen") == -1)
            return -1;
        return set_str_once(ps, &sv->listen, s, &sv->listen_loc);
    }
    /* app */
    for (i = 0; i < GH_ARRAY_LEN(app_names); i++)
        if (strcmp(s->args[0].text, app_names[i]) == 0)
            return set_str_once(ps, &sv->app, s, &sv->app_loc);
    ERR(ps, s->args[0].loc, "unknown application '%s' (known: status, management, conference, admin)",
        s->args[0].text);
    return -1;
}

static int dispatch(struct parser *ps, enum gh_conf_ctx ctx, void *base, struct gh_conf *conf,
                    int depth, struct stmt *s, unsigned char *seen)
{
    const struct gh_conf_directive *d = lookup(ctx, s->name.text);
    /* One name per context, by index: a context added without its name
     * does not compile. */
    static const char *const ctx_names[] = {
        [GH_CTX_MAIN] = "at top level",
        [GH_CTX_SERVICE] = "in a service block",
        [GH_CTX_CERT] = "in a certificate block",
        [GH_CTX_CA] = "in a ca block",
        [GH_CTX_RULES] = "in a rules block",
        [GH_CTX_IDP] = "in an identity-provider block",
        [GH_CTX_IDP_GROUP] = "in an identity-provider-group block",
        [GH_CTX_STORE] = "in a store block",
        [GH_CTX_MSTORE] = "in a meetings-store block"};
    _Static_assert(sizeof(ctx_names) / sizeof(ctx_names[0]) == GH_CTX_MSTORE + 1,
                   "a name for every configuration context");

    if (d == NULL) {
        ERR(ps, s->name.loc, "unknown directive '%s' %s", s->name.text, ctx_names[ctx]);
        return -1;
    }
    if (d->type == GH_T_LIST) {
        struct gh_conf_list *l = (struct gh_conf_list *)(void *)((char *)base + d->off);
        int i;
        if (want_args(ps, s, 1, MAX_ARGS, 0) == -1)
            return -1;
        if (!l->set) {
            list_clear(l); /* the first line replaces the default */
            l->set = 1;
            l->loc = s->name.loc;
        }
        for (i = 0; i < s->nargs; i++) {
            if (l->n >= MAX_ITEMS) {
                ERR(ps, s->args[i].loc, "too many entries (at most %d)", MAX_ITEMS);
                return -1;
            }
            list_push(l, s->args[i].text);
        }
        return 0;
    }
    if (d->type != GH_T_SPECIAL) {
        size_t idx = (size_t)(d - gh_conf_directives);
        if (idx >= GH_CONF_MAX_DIRECTIVES)
            abort(); /* the table outgrew the seen[] bound: raise it */
        if (want_args(ps, s, 1, 1, 0) == -1)
            return -1;
        if (seen[idx]) {
            ERR(ps, s->name.loc, "duplicate '%s'", s->name.text);
            return -1;
        }
        seen[idx] = 1;
        return set_value(ps, d, base, s->args[0].text, s->args[0].loc);
    }
    switch (ctx) {
    case GH_CTX_MAIN:
        return special_main(ps, s, conf, depth);
    case GH_CTX_SERVICE:
        return special_service(ps, s, base);
    case GH_CTX_CERT: {
        struct gh_conf_cert *c = base;
        if (want_args(ps, s, 1, 1, 0) == -1)
            return -1;
        if (strcmp(s->name.text, "cert") == 0)
            return set_str_once(ps, &c->cert, s, &c->cert_loc);
        if (strcmp(s->name.text, "pkcs12") == 0)
            return set_str_once(ps, &c->pkcs12, s, &c->cert_loc);
        if (strcmp(s->name.text, "passphrase-file") == 0)
            return set_str_once(ps, &c->passphrase_file, s, NULL);
        if (strcmp(s->name.text, "ocsp-response") == 0)
            return set_str_once(ps, &c->ocsp_response, s, NULL);
        return set_str_once(ps, &c->key, s, &c->key_loc);
    }
    case GH_CTX_CA: {
        struct gh_conf_ca *c = base;
        if (want_args(ps, s, 1, 1, 0) == -1)
            return -1;
        return set_str_once(ps, &c->file, s, &c->file_loc);
    }
    case GH_CTX_RULES:
        return special_rule(ps, s, base);
    case GH_CTX_IDP:
    case GH_CTX_IDP_GROUP:
    case GH_CTX_STORE:
    case GH_CTX_MSTORE:
        break; /* every directive there is typed */
    }
    return -1;
}

/* Parses statements up to the block's '}' (or the end, at depth 0). seen,
 * GH_CONF_MAX_DIRECTIVES zeroed bytes or NULL, marks the typed directives the
 * block wrote, for a caller that resolves defaults afterwards. */
static int parse_block(struct parser *ps, enum gh_conf_ctx ctx, void *base, struct gh_conf *conf,
                       int depth, struct gh_loc open, unsigned char *seen)
{
    unsigned char own[GH_CONF_MAX_DIRECTIVES];
    struct stmt s;
    struct gh_tok t;

    if (seen == NULL) {
        memset(own, 0, sizeof(own));
        seen = own;
    }
    if (depth > MAX_DEPTH) {
        ERR(ps, open, "blocks nested too deeply");
        return -1;
    }
    for (;;) {
        if (next(ps, &t) == -1)
            return -1;
        switch (t.type) {
        case GH_TOK_END:
            continue;
        case GH_TOK_EOF:
            if (depth > 0) {
                ERR(ps, open, "block opened here is not closed with '}'");
                return -1;
            }
            return 0;
        case GH_TOK_RBRACE:
            if (depth == 0) {
                ERR(ps, t.loc, "'}' without an open block");
                return -1;
            }
            return 0;
        case GH_TOK_LBRACE:
            ERR(ps, t.loc, "'{' without a directive name");
            return -1;
        case GH_TOK_STRING:
            ERR(ps, t.loc, "a directive name must be a plain word, not a string");
            free(t.text);
            return -1;
        case GH_TOK_WORD:
            break;
        }
        memset(&s, 0, sizeof(s));
        s.name = t;
        if (read_args(ps, &s) == -1 || dispatch(ps, ctx, base, conf, depth, &s, seen) == -1) {
            stmt_free(&s);
            return -1;
        }
        stmt_free(&s);
    }
}

/* A pattern of allowed-hosts, lower-cased, without a trailing dot. */
static void host_pat(const char *p, char *out, size_t len)
{
    size_t i;

    for (i = 0; p[i] && i + 1 < len; i++)
        out[i] = (char)tolower((unsigned char)p[i]);
    out[i] = '\0';
    if (i > 0 && out[i - 1] == '.')
        out[i - 1] = '\0';
}

/* Two allowed-hosts patterns overlap when some name matches both: "*"
 * matches everything, "*.d" exactly one label before d. */
static int hosts_overlap(const char *a, const char *b)
{
    char x[300], y[300];

    host_pat(a, x, sizeof(x));
    host_pat(b, y, sizeof(y));
    if (strcmp(x, "*") == 0 || strcmp(y, "*") == 0 || strcmp(x, y) == 0)
        return 1;
    if (x[0] == '*' && x[1] == '.' && y[0] != '*') {
        const char *dot = strchr(y, '.');
        return dot != NULL && strcmp(dot, x + 1) == 0;
    }
    if (y[0] == '*' && y[1] == '.' && x[0] != '*') {
        const char *dot = strchr(x, '.');
        return dot != NULL && strcmp(dot, y + 1) == 0;
    }
    return 0;
}

/* An "ip:port" as its family, address and port; -1 when it is not one. */
struct sock_addr {
    int v6;
    unsigned char a[16];
    uint16_t port;
};

static int sock_addr(const char *v, struct sock_addr *sa)
{
    char host[64];

    memset(sa, 0, sizeof(*sa));
    if (gh_split_hostport(v, host, sizeof(host), &sa->port) == -1)
        return -1;
    if (inet_pton(AF_INET, host, sa->a) == 1)
        return 0;
    sa->v6 = 1;
    return inet_pton(AF_INET6, host, sa->a) == 1 ? 0 : -1;
}

static int is_udp(const struct gh_conf_service *sv)
{
    return strcmp(sv->mode, "udp") == 0;
}

/* 0 when services sv and o (of one transport) listen on different
 * addresses, 1 when on the same one as written, -1 (error set) when on the
 * same one written another way ("[::1]:443" and "[0::1]:443"): the
 * listeners are matched by their text, so the second would be a socket of
 * its own, which bind() refuses at start though -t let it pass. */
static int same_listen(struct parser *ps, const struct gh_conf_service *sv,
                       const struct gh_conf_service *o)
{
    struct sock_addr a, b;

    if (strcmp(o->listen, sv->listen) == 0)
        return 1;
    if (sock_addr(sv->listen, &a) == -1 || sock_addr(o->listen, &b) == -1 || a.v6 != b.v6 ||
        a.port != b.port || memcmp(a.a, b.a, sizeof(a.a)) != 0)
        return 0;
    ERR(ps, sv->listen_loc,
        "service '%s' listens on %s, the address of service '%s' (%s:%d:%d) written as %s: "
        "write one address the same way in every service",
        sv->name, sv->listen, o->name, ps->file, o->listen_loc.line, o->listen_loc.col, o->listen);
    return -1;
}

/* A UDP address carries one service: a datagram names no host, so nothing
 * could choose between two. (A mode udp service and a TCP one may share an
 * address: those are two ports.) */
static int check_udp_listeners(struct parser *ps, const struct gh_conf *c)
{
    size_t i, j;

    for (i = 0; i < c->nservices; i++)
        for (j = 0; j < i && is_udp(&c->services[i]); j++) {
            const struct gh_conf_service *sv = &c->services[i], *o = &c->services[j];
            int same;
            if (!is_udp(o) || (same = same_listen(ps, sv, o)) == 0)
                continue;
            if (same == -1)
                return -1;
            ERR(ps, sv->listen_loc,
                "service '%s' listens on UDP %s like service '%s' (%s:%d:%d): a UDP address "
                "carries one service (a datagram names no host to choose by)",
                sv->name, sv->listen, o->name, ps->file, o->listen_loc.line, o->listen_loc.col);
            return -1;
        }
    return 0;
}

/* Services may share a listener (the TLS server name, then Host, choose
 * among them). What is decided before a request names its service is the
 * listener's, so the services on one listener must agree on it; and no
 * name may be allowed by two of them, or Host could not choose. */
static int check_listeners(struct parser *ps, struct gh_conf *c)
{
    size_t i, j, a, b;

    for (i = 0; i < c->nservices; i++) {
        const struct gh_conf_service *sv = &c->services[i];
        for (j = 0; j < i; j++) {
            const struct gh_conf_service *o = &c->services[j];
            const char *what = NULL;
            int same;
            if (is_udp(o) != is_udp(sv) || (same = same_listen(ps, sv, o)) == 0)
                continue; /* a UDP port and a TCP port are two listeners */
            if (same == -1)
                return -1;
            if (strcmp(o->mode, sv->mode) != 0 || strcmp(o->tls_mode, sv->tls_mode) != 0)
                what = "mode (and tls terminate or passthrough)";
            else if ((o->certificate == NULL) != (sv->certificate == NULL))
                what = "TLS (certificate) or plain HTTP";
            else if (!gh_conf_list_equal(&o->tls_versions, &sv->tls_versions))
                what = "tls-versions";
            else if (o->client_header_timeout != sv->client_header_timeout)
                what = "client-header-timeout";
            else if (o->max_request_line != sv->max_request_line ||
                     o->max_header_size != sv->max_header_size ||
                     o->max_headers != sv->max_headers || o->max_chunk_ext != sv->max_chunk_ext)
                what = "max-request-line, max-header-size, max-headers and max-chunk-ext";
            else if (o->max_conns_per_source != sv->max_conns_per_source ||
                     o->conn_rate_per_source != sv->conn_rate_per_source)
                what = "max-conns-per-source and conn-rate-per-source";
            else if (strcmp(o->sni_default, sv->sni_default) != 0)
                what = "sni-default";
            if (what != NULL) {
                ERR(ps, sv->listen_loc,
                    "service '%s' shares %s with service '%s' (%s:%d:%d) but not its %s, which "
                    "apply before a request names its service",
                    sv->name, sv->listen, o->name, ps->file, o->listen_loc.line,
                    o->listen_loc.col, what);
                return -1;
            }
            for (a = 0; a < sv->allowed_hosts.n; a++)
                for (b = 0; b < o->allowed_hosts.n; b++)
                    if (hosts_overlap(sv->allowed_hosts.v[a], o->allowed_hosts.v[b])) {
                        ERR(ps, sv->allowed_hosts.loc,
                            "service '%s' allows '%s', which overlaps '%s' of service '%s' "
                            "(%s:%d:%d) on the same listener %s: Host could not choose",
                            sv->name, sv->allowed_hosts.v[a], o->allowed_hosts.v[b], o->name,
                            ps->file, o->allowed_hosts.loc.line, o->allowed_hosts.loc.col,
                            sv->listen);
                        return -1;
                    }
        }
    }
    return 0;
}

/* Checks between blocks: every name that refers to another block exists. */
static int check_refs(struct parser *ps, struct gh_conf *c)
{
    size_t i, j;

    for (i = 0; i < c->nidps; i++) {
        const struct gh_conf_idp *p = &c->idps[i];
        if (gh_conf_cert_find(c, p->sp_certificate) == NULL) {
            ERR(ps, p->loc, "identity-provider '%s': no certificate named '%s'", p->name,
                p->sp_certificate);
            return -1;
        }
        for (j = 0; j < i; j++)
            if (strcmp(c->idps[j].uuid, p->uuid) == 0) {
                ERR(ps, p->loc, "identity-provider '%s' has the uuid of '%s'", p->name,
                    c->idps[j].name);
                return -1;
            }
    }
    for (i = 0; i < c->nidp_groups; i++) {
        const struct gh_conf_idp_group *g = &c->idp_groups[i];
        for (j = 0; j < g->members.n; j++)
            if (gh_conf_idp_find(c, g->members.v[j]) == NULL) {
                ERR(ps, g->members.loc, "identity-provider-group '%s': no identity-provider "
                    "named '%s'", g->name, g->members.v[j]);
                return -1;
            }
    }

    for (i = 0; i < c->nservices; i++) {
        struct gh_conf_service *sv = &c->services[i];
        for (j = 0; j < sv->certificates.n; j++)
            if (gh_conf_cert_find(c, sv->certificates.v[j]) == NULL) {
                ERR(ps, sv->cert_loc, "service '%s': no certificate named '%s'", sv->name,
                    sv->certificates.v[j]);
                return -1;
            }
        for (j = 0; j < sv->tls_versions.n; j++) {
            const char *v = sv->tls_versions.v[j];
            if (strcmp(v, "1.0") != 0 && strcmp(v, "1.1") != 0 && strcmp(v, "1.2") != 0 &&
                strcmp(v, "1.3") != 0) {
                ERR(ps, sv->tls_versions.loc, "tls-versions: '%s' is not 1.0, 1.1, 1.2 or 1.3", v);
                return -1;
            }
        }
        for (j = 0; j < sv->allowed_upgrades.n; j++) {
            const char *v = sv->allowed_upgrades.v[j];
            if ((strcmp(v, "websocket") != 0 && strcmp(v, "none") != 0) ||
                (strcmp(v, "none") == 0 && sv->allowed_upgrades.n > 1)) {
                ERR(ps, sv->allowed_upgrades.loc,
                    "allowed-upgrades: '%s': only 'websocket' or 'none' (gatehouse checks the "
                    "WebSocket handshake; h2c and other protocols are never tunnelled)", v);
                return -1;
            }
        }
        for (j = 0; j < sv->trusted_proxies.n; j++) {
            struct gh_cidr cidr;
            if (gh_cidr_parse(sv->trusted_proxies.v[j], &cidr) == -1) {
                ERR(ps, sv->trusted_proxies.loc,
                    "trusted-proxies: '%s' is not an address or ADDRESS/PREFIX",
                    sv->trusted_proxies.v[j]);
                return -1;
            }
        }
        for (j = 0; j < sv->metrics_allow.n; j++) {
            struct gh_cidr cidr;
            if (strcmp(sv->metrics_allow.v[j], "none") == 0 && sv->metrics_allow.n == 1)
                continue;
            if (gh_cidr_parse(sv->metrics_allow.v[j], &cidr) == -1) {
                ERR(ps, sv->metrics_allow.loc,
                    "metrics-allow: '%s' is not an address or ADDRESS/PREFIX (or 'none' alone)",
                    sv->metrics_allow.v[j]);
                return -1;
            }
        }
        if (sv->rule_set && gh_conf_ruleset_find(c, sv->rule_set) == NULL) {
            ERR(ps, sv->rule_set_loc, "service '%s': no rules named '%s'", sv->name, sv->rule_set);
            return -1;
        }
        if (sv->client_certificate && gh_conf_cert_find(c, sv->client_certificate) == NULL) {
            ERR(ps, sv->client_certificate_loc,
                "service '%s': no certificate named '%s' (client-certificate)",
                sv->name, sv->client_certificate);
            return -1;
        }
        if (strcmp(sv->reencrypt, "pinned") == 0)
            for (j = 0; j < sv->nservers; j++)
                if (sv->servers[j].pin == NULL) {
                    ERR(ps, sv->servers[j].loc,
                        "server '%s': 'reencrypt pinned' needs a pin on every server",
                        sv->servers[j].name);
                    return -1;
                }
        if (strcmp(sv->reencrypt, "off") != 0 && strcmp(sv->reencrypt, "pinned") != 0 &&
            gh_conf_ca_find(c, sv->reencrypt) == NULL) {
            ERR(ps, sv->reencrypt_loc, "service '%s': no ca named '%s'", sv->name, sv->reencrypt);
            return -1;
        }
    }
    return check_udp_listeners(ps, c) == -1 ? -1 : check_listeners(ps, c);
}

/* The bytes of "ip:port" for comparison: [::1]:80 and [0::1]:80 are one
 * address. -1 when it is not one (check_addr refused it already). */
static int addr_bytes(const char *v, unsigned char b[18])
{
    char host[64];
    uint16_t port;

    memset(b, 0, 18);
    if (gh_split_hostport(v, host, sizeof(host), &port) == -1 ||
        (inet_pton(AF_INET, host, b) != 1 && inet_pton(AF_INET6, host, b) != 1))
        return -1;
    b[16] = (unsigned char)(port >> 8);
    b[17] = (unsigned char)port;
    return 0;
}

static int is_loopback(const struct sock_addr *sa)
{
    static const unsigned char v6_loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

    return sa->v6 ? memcmp(sa->a, v6_loop, 16) == 0 : sa->a[0] == 127;
}

/* Whether a connection to server srv reaches listener lst: the same
 * address, a wildcard listener's port through loopback, or the unspecified
 * address, which Linux connects to the host's loopback. Other addresses of
 * the host would too, but the configuration does not say which they are. */
static int reaches(const struct sock_addr *srv, const struct sock_addr *lst)
{
    static const unsigned char zero[16];
    int srv_any = memcmp(srv->a, zero, 16) == 0, lst_any = memcmp(lst->a, zero, 16) == 0;

    if (srv->v6 != lst->v6 || srv->port != lst->port)
        return 0; /* IPv6 listeners are IPV6_V6ONLY: no family reaches the other */
    return memcmp(srv->a, lst->a, 16) == 0 || (lst_any && is_loopback(srv)) ||
           (srv_any && is_loopback(lst));
}

/* A server that is the service's own listener would have every connection
 * or datagram it forwards come back to it as a new client, again and
 * again: one datagram to a mode udp service opened flows until max-flows
 * and the process's descriptors ran out. (Another service's listener is a
 * chain, as the default topology's public service in front of its
 * applications; a cycle through several services is not looked for.) */
static int check_loops(struct parser *ps, const struct gh_conf *c)
{
    size_t i, j;

    for (i = 0; i < c->nservices; i++) {
        const struct gh_conf_service *sv = &c->services[i];
        struct sock_addr a, b;
        if (sock_addr(sv->listen, &b) == -1)
            continue;
        for (j = 0; j < sv->nservers; j++) {
            if (sock_addr(sv->servers[j].addr, &a) == -1 || !reaches(&a, &b))
                continue;
            ERR(ps, sv->servers[j].loc,
                "service '%s': server '%s' (%s) is the service's own listener %s (%s:%d:%d): "
                "what it forwards would come back to it without end",
                sv->name, sv->servers[j].name, sv->servers[j].addr, sv->listen, ps->file,
                sv->listen_loc.line, sv->listen_loc.col);
            return -1;
        }
    }
    return 0;
}

/* Checks for publishing a whole site from one appliance (issue 14) that
 * need a whole service block: a `redirect https` service is plain and has
 * no target of its own; no two real servers of one pool share an address
 * (the metrics would show one server under two names, and draining one
 * would leave the other sending to it). */
static int check_site(struct parser *ps, struct gh_conf *c)
{
    size_t i, j, k;

    for (i = 0; i < c->nservices; i++) {
        const struct gh_conf_service *sv = &c->services[i];
        if (sv->redirect_https != 0) {
            if (sv->certificate != NULL) {
                ERR(ps, sv->redirect_loc,
                    "service '%s': 'redirect https' is for a plain service; this one has "
                    "'certificate'", sv->name);
                return -1;
            }
            if (sv->app != NULL || sv->nservers > 0) {
                ERR(ps, sv->redirect_loc,
                    "service '%s' answers every request with a redirect: it takes no '%s'",
                    sv->name, sv->app != NULL ? "app" : "server");
                return -1;
            }
            if (sv->check.enabled) {
                ERR(ps, sv->check.loc, "'check' does not apply to a 'redirect https' service");
                return -1;
            }
        }
        for (j = 0; j < sv->nservers; j++) {
            unsigned char a[18], b[18];
            if (addr_bytes(sv->servers[j].addr, a) == -1)
                continue;
            for (k = 0; k < j; k++)
                if (addr_bytes(sv->servers[k].addr, b) == 0 && memcmp(a, b, sizeof(a)) == 0) {
                    ERR(ps, sv->servers[j].loc,
                        "service '%s': server '%s' has the address %s of server '%s' (%s:%d:%d)",
                        sv->name, sv->servers[j].name, sv->servers[j].addr, sv->servers[k].name,
                        ps->file, sv->servers[k].loc.line, sv->servers[k].loc.col);
                    return -1;
                }
        }
    }
    return 0;
}

static void site_fields_free(struct gh_conf_service *s)
{
    free(s->certificate_coverage);
    free(s->allowed_dirs_case);
}

struct gh_conf *gh_conf_parse(const char *file, const char *text, size_t len, char *err,
                              size_t errlen)
{
    struct parser ps;
    struct gh_conf *c = gh_calloc(1, sizeof(*c));
    static const struct gh_loc top = {1, 1};

    memset(&ps, 0, sizeof(ps));
    ps.err = err;
    ps.errlen = errlen;
    ps.file = file;
    err[0] = '\0';
    gh__lex_init(&ps.lx, file, text, len, err, errlen);
    c->file = gh_strdup(file);
    apply_defaults(&ps, GH_CTX_MAIN, c);
    apply_defaults(&ps, GH_CTX_STORE, &c->store);
    c->store.engine = gh_strdup("local");
    apply_defaults(&ps, GH_CTX_MSTORE, &c->meetings_store);
    c->meetings_store.engine = gh_strdup("sqlite");
    if (memchr(text, '\0', len) != NULL) {
        gh__conf_error(err, errlen, file, top, "file contains a NUL byte");
        goto fail;
    }
    if (parse_block(&ps, GH_CTX_MAIN, c, c, 0, top, NULL) == -1 || check_refs(&ps, c) == -1 ||
        check_site(&ps, c) == -1 || check_loops(&ps, c) == -1)
        goto fail;
    return c;
fail:
    if (ps.has_pending)
        free(ps.pending.text);
    gh_conf_free(c);
    return NULL;
}

char *gh_conf_read(const char *path, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    char *text;
    ssize_t n;
    size_t got = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size > 4 * 1024 * 1024) {
        snprintf(err, errlen, "%s: not a regular file of at most 4 MiB", path);
        close(fd);
        return NULL;
    }
    text = gh_calloc(1, (size_t)st.st_size + 1);
    while (got < (size_t)st.st_size) {
        n = read(fd, text + got, (size_t)st.st_size - got);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return text;
}

struct gh_conf *gh_conf_load(const char *path, char *err, size_t errlen)
{
    struct gh_conf *c;
    size_t len;
    char *text = gh_conf_read(path, &len, err, errlen);

    if (text == NULL)
        return NULL;
    c = gh_conf_parse(path, text, len, err, errlen);
    free(text);
    return c;
}

void gh_conf_free(struct gh_conf *c)
{
    size_t i, j;

    if (c == NULL)
        return;
    for (i = 0; i < c->nservices; i++) {
        struct gh_conf_service *s = &c->services[i];
        for (j = 0; j < s->nservers; j++) {
            free(s->servers[j].name);
            free(s->servers[j].addr);
            free(s->servers[j].verify_name);
            free(s->servers[j].state);
            free(s->servers[j].pin);
        }
        free(s->servers);
        free(s->client_certificate);
        free(s->persistence);
        free(s->cookie_name);
        free(s->check.method);
        free(s->check.url);
        free(s->check.body);
        free(s->check.send);
        free(s->check.recv);
        free(s->mode);
        free(s->tls_mode);
        list_clear(&s->certificates);
        list_clear(&s->tls_versions);
        list_clear(&s->allowed_hosts);
        list_clear(&s->allowed_dirs);
        list_clear(&s->allowed_methods);
        free(s->rule_set);
        free(s->sni_host_match);
        free(s->sni_default);
        free(s->enabled);
        free(s->validate_join_token);
        free(s->merge_slashes);
        free(s->encoded_slash);
        free(s->server_header);
        free(s->strip_version_headers);
        gh__conf_headers_free(&s->headers);
        free(s->limit_action);
        site_fields_free(s);
        list_clear(&s->allowed_upgrades);
        free(s->upgrade_action);
        free(s->underscore_headers);
        list_clear(&s->trusted_proxies);
        list_clear(&s->metrics_allow);
        free(s->metrics_token_file);
        free(s->name);
        free(s->listen);
        free(s->certificate);
        free(s->app);
        free(s->scheduler);
        free(s->reencrypt);
    }
    for (i = 0; i < c->ncerts; i++) {
        free(c->certs[i].name);
        free(c->certs[i].cert);
        free(c->certs[i].key);
        free(c->certs[i].pkcs12);
        free(c->certs[i].passphrase_file);
        free(c->certs[i].ocsp_response);
    }
    for (i = 0; i < c->ncas; i++) {
        free(c->cas[i].name);
        free(c->cas[i].file);
    }
    for (i = 0; i < c->nrulesets; i++) {
        struct gh_conf_ruleset *r = &c->rulesets[i];
        for (j = 0; j < r->nrules; j++) {
            struct gh_conf_rule *u = &r->rules[j];
            free(u->id);
            free(u->action);
            free(u->target);
            free(u->field);
            free(u->header);
            free(u->op);
            free(u->value);
        }
        free(r->rules);
        free(r->name);
    }
    free(c->rulesets);
    for (i = 0; i < c->nidps; i++) {
        struct gh_conf_idp *p = &c->idps[i];
        free(p->name);
        free(p->description);
        free(p->uuid);
        free(p->sp_certificate);
        list_clear(&p->acs_urls);
        free(p->acs_from_services);
        free(p->sp_entity_id);
        free(p->signature_algorithm);
        free(p->digest_algorithm);
        free(p->allow_sha1);
        list_clear(&p->idp_certificates);
        free(p->idp_sso_url);
        free(p->idp_entity_id);
        free(p->display_name_attribute);
        free(p->require_encryption);
    }
    free(c->idps);
    for (i = 0; i < c->nidp_groups; i++) {
        free(c->idp_groups[i].name);
        free(c->idp_groups[i].description);
        list_clear(&c->idp_groups[i].members);
    }
    free(c->idp_groups);
    free(c->store.engine);
    list_clear(&c->store.sentinels);
    free(c->store.master);
    free(c->store.address);
    free(c->store.user);
    free(c->store.password_file);
    free(c->store.prefix);
    free(c->store.name);
    free(c->store.share_config);
    free(c->meetings_store.engine);
    free(c->meetings_store.conninfo);
    free(c->meetings_store.password_file);
    free(c->services);
    free(c->certs);
    free(c->cas);
    free(c->file);
    free(c->state_dir);
    free(c->slides_kek_file);
    free(c->edge_token_key_file);
    gh_wipe(c->edge_key, sizeof(c->edge_key));
    free(c->require_edge_token);
    free(c->error_log);
    free(c->access_log);
    free(c->security_log);
    free(c->log_level);
    free(c);
}

int gh_conf_list_equal(const struct gh_conf_list *a, const struct gh_conf_list *b)
{
    size_t i;

    if (a->n != b->n)
        return 0;
    for (i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return 0;
    return 1;
}

const struct gh_conf_service *gh_conf_service_find(const struct gh_conf *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->nservices; i++)
        if (strcmp(c->services[i].name, name) == 0)
            return &c->services[i];
    return NULL;
}

const struct gh_conf_cert *gh_conf_cert_find(const struct gh_conf *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->ncerts; i++)
        if (strcmp(c->certs[i].name, name) == 0)
            return &c->certs[i];
    return NULL;
}

const struct gh_conf_ruleset *gh_conf_ruleset_find(const struct gh_conf *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->nrulesets; i++)
        if (strcmp(c->rulesets[i].name, name) == 0)
            return &c->rulesets[i];
    return NULL;
}

const struct gh_conf_ca *gh_conf_ca_find(const struct gh_conf *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->ncas; i++)
        if (strcmp(c->cas[i].name, name) == 0)
            return &c->cas[i];
    return NULL;
}

const struct gh_conf_idp *gh_conf_idp_find(const struct gh_conf *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->nidps; i++)
        if (strcmp(c->idps[i].name, name) == 0)
            return &c->idps[i];
    return NULL;
}

const struct gh_conf_idp *gh_conf_idp_find_uuid(const struct gh_conf *c, const char *uuid)
{
    size_t i;

    for (i = 0; i < c->nidps; i++)
        if (strcmp(c->idps[i].uuid, uuid) == 0)
            return &c->idps[i];
    return NULL;
}

const struct gh_conf_idp_group *gh_conf_idp_group_find(const struct gh_conf *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->nidp_groups; i++)
        if (strcmp(c->idp_groups[i].name, name) == 0)
            return &c->idp_groups[i];
    return NULL;
}
