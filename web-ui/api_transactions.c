/*
 * Transactions: several configuration changes staged, then committed at
 * once (one validation, one write, one reload), or discarded.
 *
 *   POST /api/v1/transactions                     -> {"id"}
 *   POST /api/v1/transactions/<id>                stage one change (form):
 *        op=server-state  service, server, state
 *        op=server-weight service, server, weight
 *        op=service-block service, block        (replace a service block)
 *        op=service-add   block
 *        op=service-delete service
 *        op=block-set     kind, name, fields   (directives of a named block, as
 *                                               /api/v1/blocks takes them, form-encoded)
 *        op=block-add     kind, fields
 *        op=block-delete  kind, name
 *   GET  /api/v1/transactions/<id>                the staged changes
 *   POST /api/v1/transactions/<id>/commit         If-Match; 422 names the change that failed
 *   POST /api/v1/transactions/<id>/discard
 *
 * A transaction belongs to the user who opened it, lives in this process
 * (at most 64 open, an hour each) and holds at most 100 changes.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "../common/common.h"
#include "webui_int.h"

#define MAX_TX 64
#define MAX_OPS 100

static pthread_mutex_t tx_mu = PTHREAD_MUTEX_INITIALIZER;

struct op {
    char kind[16], service[128], server[128], state[8], *block;
    long weight;
};

struct tx {
    char id[33], user[64];
    int64_t created;
    struct op ops[MAX_OPS];
    int nops;
};

static struct tx *txs[MAX_TX];

static void tx_free(int i)
{
    int k;

    if (txs[i] == NULL)
        return;
    for (k = 0; k < txs[i]->nops; k++)
        free(txs[i]->ops[k].block);
    free(txs[i]);
    txs[i] = NULL;
}

/* Called under tx_mu. */
static int find(const char *id, const struct webui_session *s)
{
    int i;
    int64_t now = (int64_t)time(NULL);

    for (i = 0; i < MAX_TX; i++) {
        if (txs[i] != NULL && now - txs[i]->created > 3600)
            tx_free(i);
        if (txs[i] != NULL && strcmp(txs[i]->id, id) == 0 && strcmp(txs[i]->user, s->user) == 0)
            return i;
    }
    return -1;
}

static int field(const char *body, size_t blen, const char *key, char *dst, size_t cap)
{
    char *v = gh_form_get(body, blen, key);
    int rc = v != NULL && gh_strlcpy(dst, v, cap) == 0 ? 0 : -1;

    free(v);
    return rc;
}

static int stage(struct tx *t, const char *body, size_t blen, char *err, size_t errlen)
{
    struct op o;
    char w[16];

    memset(&o, 0, sizeof(o));
    if (t->nops == MAX_OPS) {
        snprintf(err, errlen, "at most %d changes in one transaction", MAX_OPS);
        return -1;
    }
    if (field(body, blen, "op", o.kind, sizeof(o.kind)) == -1) {
        snprintf(err, errlen, "op is needed");
        return -1;
    }
    if (strcmp(o.kind, "server-state") == 0) {
        if (field(body, blen, "service", o.service, sizeof(o.service)) == -1 ||
            field(body, blen, "server", o.server, sizeof(o.server)) == -1 ||
            field(body, blen, "state", o.state, sizeof(o.state)) == -1 ||
            (strcmp(o.state, "up") && strcmp(o.state, "drain") && strcmp(o.state, "maint"))) {
            snprintf(err, errlen, "server-state needs service, server and state up|drain|maint");
            return -1;
        }
    } else if (strcmp(o.kind, "server-weight") == 0) {
        if (field(body, blen, "service", o.service, sizeof(o.service)) == -1 ||
            field(body, blen, "server", o.server, sizeof(o.server)) == -1 ||
            field(body, blen, "weight", w, sizeof(w)) == -1 ||
            gh_parse_long(w, 1, 1000, &o.weight) == -1) {
            snprintf(err, errlen, "server-weight needs service, server and weight 1-1000");
            return -1;
        }
    } else if (strcmp(o.kind, "service-block") == 0 || strcmp(o.kind, "service-add") == 0 ||
               strcmp(o.kind, "service-delete") == 0) {
        if (strcmp(o.kind, "service-add") != 0 &&
            field(body, blen, "service", o.service, sizeof(o.service)) == -1) {
            snprintf(err, errlen, "%s needs service", o.kind);
            return -1;
        }
        if (strcmp(o.kind, "service-delete") != 0 &&
            (o.block = gh_form_get(body, blen, "block")) == NULL) {
            snprintf(err, errlen, "%s needs block", o.kind);
            return -1;
        }
    } else if (strcmp(o.kind, "block-set") == 0 || strcmp(o.kind, "block-add") == 0 ||
               strcmp(o.kind, "block-delete") == 0) {
        /* kind in server, name in service, the fields (form-encoded) in block */
        if (field(body, blen, "kind", o.server, sizeof(o.server)) == -1 ||
            (strcmp(o.server, "service") && strcmp(o.server, "identity-provider") &&
             strcmp(o.server, "identity-provider-group") && strcmp(o.server, "rules")) ||
            (strcmp(o.kind, "block-add") != 0 &&
             field(body, blen, "name", o.service, sizeof(o.service)) == -1) ||
            (strcmp(o.kind, "block-delete") != 0 &&
             (o.block = gh_form_get(body, blen, "fields")) == NULL)) {
            free(o.block);
            snprintf(err, errlen, "%s needs kind (service, identity-provider, "
                     "identity-provider-group, rules)%s%s", o.kind,
                     strcmp(o.kind, "block-add") ? ", name" : "",
                     strcmp(o.kind, "block-delete") ? ", fields" : "");
            return -1;
        }
    } else {
        snprintf(err, errlen, "unknown op '%s'", o.kind);
        return -1;
    }
    t->ops[t->nops++] = o;
    return 0;
}

static char *apply(const struct op *o, const char *text, size_t len, char *err, size_t errlen)
{
    if (strcmp(o->kind, "server-state") == 0)
        return webui__set_server(text, len, o->service, o->server, o->state, 0, err, errlen);
    if (strcmp(o->kind, "server-weight") == 0)
        return webui__set_server(text, len, o->service, o->server, NULL, o->weight, err, errlen);
    if (strcmp(o->kind, "service-add") == 0)
        return webui__service_op(text, len, "add", NULL, o->block, strlen(o->block), err, errlen);
    if (strcmp(o->kind, "service-delete") == 0)
        return webui__service_op(text, len, "delete", o->service, "", 0, err, errlen);
    if (strncmp(o->kind, "block-", 6) == 0) {
        struct webui_fields *fm = gh_calloc(1, sizeof(*fm));
        unsigned status = 422;
        char *out = NULL;
        if (strcmp(o->kind, "block-delete") == 0)
            out = webui__block_delete(text, len, o->server, o->service, &status, err, errlen);
        else if (webui__fields_parse(o->block, strlen(o->block), fm) == -1)
            snprintf(err, errlen, "fields: malformed or too many");
        else if (strcmp(o->kind, "block-add") == 0)
            out = webui__block_add(text, len, o->server, fm->f, fm->n, &status, err, errlen);
        else
            out = webui__block_set(text, len, o->server, o->service, fm->f, fm->n, &status, err,
                                   errlen);
        webui__fields_free(fm);
        free(fm);
        return out;
    }
    return webui__service_op(text, len, "modify", o->service, o->block, strlen(o->block), err,
                             errlen);
}

static char *tx_transform(const char *text, size_t len, void *ctx, unsigned *status, char *err,
                          size_t errlen)
{
    const struct tx *t = ctx;
    char *cur = gh_strndup(text, len), e[900];
    int k;

    (void)status;
    for (k = 0; k < t->nops; k++) {
        char *next = apply(&t->ops[k], cur, strlen(cur), e, sizeof(e));
        free(cur);
        if (next == NULL) {
            snprintf(err, errlen, "change %d (%s): %s", k + 1, t->ops[k].kind, e);
            return NULL;
        }
        cur = next;
    }
    return cur;
}

/* Called with tx_mu held; apply takes the write lock after it (never the
 * other way round). A stale or refused transaction stays open to be fixed
 * or discarded. */
static enum MHD_Result commit(struct MHD_Connection *conn, const struct webui_session *s, int i)
{
    struct webui_change ch = {0};
    char what[64];
    enum MHD_Result ret;

    snprintf(what, sizeof(what), "%d changes", txs[i]->nops);
    ch.action = "transaction";
    ch.object = txs[i]->id;
    ch.after = what;
    ch.transform = tx_transform;
    ch.ctx = txs[i];
    ret = webui__apply(conn, s, &ch);
    if (ch.committed)
        tx_free(i);
    return ret;
}

enum MHD_Result webui__api_transactions(struct MHD_Connection *conn, const char *url,
                                        const char *method, const struct webui_session *s,
                                        const char *body, size_t blen)
{
    const char *rest = url + strlen("/api/v1/transactions");
    char id[40], err[512];
    const char *slash;
    enum MHD_Result ret;
    int i;

    if (!webui_allowed(s->role, WEBUI_CONFIG_WRITE))
        return webui__json(conn, 403, "error", "your role may not change the configuration");
    if (webui__conf_path() == NULL)
        return webui__json(conn, 409, "error", "running the embedded default topology");
    pthread_mutex_lock(&tx_mu);
    if (strcmp(method, "POST") == 0 && *rest == '\0') {
        unsigned char r[16];
        size_t k;
        for (i = 0; i < MAX_TX && txs[i] != NULL; i++)
            ;
        if (i == MAX_TX || RAND_bytes(r, sizeof(r)) != 1) {
            ret = webui__json(conn, 503, "error", "too many open transactions");
            goto done;
        }
        txs[i] = gh_calloc(1, sizeof(struct tx));
        for (k = 0; k < sizeof(r); k++)
            snprintf(txs[i]->id + 2 * k, 3, "%02x", r[k]);
        gh_strlcpy(txs[i]->user, s->user, sizeof(txs[i]->user));
        txs[i]->created = (int64_t)time(NULL);
        ret = webui__json(conn, 201, "id", txs[i]->id);
        goto done;
    }
    if (rest[0] != '/' || strlen(rest + 1) < 32) {
        ret = webui__json(conn, 404, "error", "not found");
        goto done;
    }
    snprintf(id, sizeof(id), "%.32s", rest + 1);
    slash = rest + 33;
    i = find(id, s);
    if (i == -1 || (*slash != '\0' && *slash != '/')) {
        ret = webui__json(conn, 404, "error", "no such transaction");
        goto done;
    }
    if (strcmp(method, "GET") == 0 && *slash == '\0') {
        struct gh_sbuf o = {NULL, 0, 0};
        int k;
        gh_sbuf_printf(&o, "{\"id\":\"%s\",\"changes\":[", id);
        for (k = 0; k < txs[i]->nops; k++) {
            char sv[300], sr[300];
            gh_json_escape(sv, sizeof(sv), txs[i]->ops[k].service, strlen(txs[i]->ops[k].service),
                           128);
            gh_json_escape(sr, sizeof(sr), txs[i]->ops[k].server, strlen(txs[i]->ops[k].server),
                           128);
            gh_sbuf_printf(&o, "%s{\"op\":\"%s\",\"service\":\"%s\",\"server\":\"%s\"}",
                           k ? "," : "", txs[i]->ops[k].kind, sv, sr);
        }
        gh_sbuf_printf(&o, "]}\n");
        ret = webui__send(conn, 200, "application/json", o.p, o.len, NULL);
    } else if (strcmp(method, "POST") == 0 && *slash == '\0') {
        ret = stage(txs[i], body, blen, err, sizeof(err)) == 0
                  ? webui__json(conn, 200, "staged", txs[i]->ops[txs[i]->nops - 1].kind)
                  : webui__json(conn, 422, "error", err);
    } else if (strcmp(method, "POST") == 0 && strcmp(slash, "/commit") == 0) {
        ret = commit(conn, s, i);
    } else if (strcmp(method, "POST") == 0 && strcmp(slash, "/discard") == 0) {
        tx_free(i);
        ret = webui__json(conn, 200, "discarded", id);
    } else {
        ret = webui__json(conn, 404, "error", "not found");
    }
done:
    pthread_mutex_unlock(&tx_mu);
    return ret;
}
